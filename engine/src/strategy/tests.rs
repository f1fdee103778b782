//! Orchestrator tests: aggregation against the naive pipeline, PnL shares and attribution,
//! runtime activation, and bad input.

use super::*;
use hft_shared::config::Config;
// Explicit: the prelude's `Strategy` trait would clash with `super::Strategy`.
use proptest::prelude::{Just, ProptestConfig, any, prop_assert, prop_assert_eq, prop_oneof, proptest};
use proptest::strategy::Strategy as _;

fn config(extra: &str) -> Config {
    Config::from_toml_str(extra, &|_| None).expect("config")
}

/// Short windows so random paths of a few hundred ticks exercise every strategy.
const SHORT: &str = "[strategies.momentum]\nlookback = 5\n\
    [strategies.meanreversion]\nperiod = 8\n\
    [strategies.breakout]\nperiod = 10\nvolume_period = 3\nvolume_factor = 1.0\n\
    [strategies.marketmaking]\nhalf_spread = 0.0001\n";

fn tick(bid: i64, spread: i64, bq: i64, aq: i64, volume: i64, position: i64) -> Tick {
    Tick {
        bid: Px(bid),
        ask: Px(bid + spread),
        bid_qty: Qty(bq),
        ask_qty: Qty(aq),
        volume: Qty(volume),
        position: Qty(position),
    }
}

#[test]
fn every_strategy_exists_and_config_sets_the_initial_state() {
    let cfg = config("symbols = ['BTCUSDT', 'ETHUSDT']\n");
    let o = Orchestrator::new(&cfg);
    assert_eq!(o.active_mask(), 0b0111, "momentum, meanreversion, breakout on; marketmaking off");
    for k in StrategyKind::ALL {
        assert!(o.slots[k.index()].configured);
    }
    for symbol in 0..2 {
        let s = o.strategies(symbol).expect("configured symbol");
        assert_eq!(s.meanreversion.variant(), cfg.strategies.meanreversion.variant);
    }
    let w: Vec<f64> = o.slots.iter().map(|s| s.weight).collect();
    assert_eq!(w, vec![1.0, 0.5, 0.5, 0.5]);
    assert!(o.strategies(2).is_none());
}

#[test]
fn runtime_activation_and_weights() {
    let mut o = Orchestrator::new(&config(""));
    assert_eq!(o.set_active(StrategyKind::MarketMaking, true), Some(true));
    assert_eq!(o.set_active(StrategyKind::MarketMaking, true), Some(false));
    assert_eq!(o.active_mask(), 0b1111);
    assert_eq!(o.set_weight(StrategyKind::Breakout, 2.0), Some(true));
    assert_eq!(o.set_weight(StrategyKind::Breakout, 2.0), Some(false));
    assert_eq!(o.slots[StrategyKind::Breakout.index()].weight, 2.0);
}

#[test]
fn bad_ticks_and_unknown_symbols_change_nothing() {
    let mut o = Orchestrator::new(&config(SHORT));
    let good = tick(6_000_000_000_000, 1_000_000, 1, 1, 0, 0);
    for _ in 0..50 {
        o.on_tick(0, &good);
    }
    let before = format!("{:?}", o);
    for bad in [Tick::default(), Tick { bid: Px(10), ask: Px(5), ..good }, Tick { ask: Px(i64::MAX), ..good }] {
        assert_eq!(o.on_tick(0, &bad), None);
    }
    assert_eq!(o.on_tick(7, &good), None);
    // A NaN or infinite float price never becomes a `Px`; zero and negative ones are unusable.
    assert_eq!(Px::from_f64(f64::NAN), None);
    assert_eq!(Px::from_f64(f64::INFINITY), None);
    for p in [0, -5] {
        assert_eq!(o.on_tick(0, &Tick { bid: Px(p), ask: Px(p), ..good }), None);
    }
    assert_eq!(format!("{:?}", o), before);
    assert_eq!(o.target(7), 0.0);
}

#[test]
fn a_rally_on_volume_goes_long_and_counts_signals() {
    let mut o = Orchestrator::new(&config(SHORT));
    let mut bid = 6_000_000_000_000;
    let mut first = None;
    for i in 0..40 {
        bid += if i < 20 { 0 } else { 200_000_000 }; // flat, then +2 USD a tick
        let d = o.on_tick(0, &tick(bid, 1_000_000, 5, 5, 1_000_000, 0));
        if first.is_none() {
            first = d;
        }
    }
    let d = first.expect("a decision");
    assert!(d.target > 0.0, "{d:?}");
    assert_eq!(d.contributors, 0b0111);
    assert!(o.target(0) > 0.0);
    assert!(o.slots[0].signals >= 1 && o.slots[3].signals == 0, "{:?}", o.slots);
    assert_eq!(o.slots[StrategyKind::Breakout.index()].last_signal, 1.0);
}

#[test]
fn quotes_only_while_the_market_maker_is_active() {
    let mut o = Orchestrator::new(&config(""));
    let t = tick(6_000_000_000_000, 1_000_000, 100_000_000, 100_000_000, 0, 0);
    o.on_tick(0, &t);
    assert_eq!(o.quotes(0), None);
    o.set_active(StrategyKind::MarketMaking, true);
    let q = o.quotes(0).expect("quotes");
    assert!(q.bid_px < t.bid && q.ask_px > t.ask && q.bid_qty > Qty::ZERO && q.ask_qty > Qty::ZERO, "{q:?}");
    assert_eq!(o.quotes(1), None);
}

#[test]
fn aggregation_by_hand() {
    // Inactive, zero and non-finite weights do not count.
    let (norm, mask) = normalised_weights([(true, 1.0), (true, 0.5), (false, 2.0), (true, 0.0)]);
    assert_eq!(mask, 0b0011);
    assert_eq!(norm, [1.0 / 1.5, 0.5 / 1.5, 0.0, 0.0]);
    assert_eq!(normalised_weights([(true, f64::NAN), (true, f64::INFINITY), (false, 1.0), (true, -1.0)]).1, 0);
    // (1 − 0.5) / 1.5 = 1/3 → 4/3 → level 1.
    assert_eq!(target_level(&norm, &[1.0, -1.0, 1.0, 1.0]), 1);
    // Half-way rounds away from zero, like f64::round: 0.625 × 4 = 2.5 → 3.
    let one = [1.0, 0.0, 0.0, 0.0];
    assert_eq!(target_level(&one, &[0.625, 0.0, 0.0, 0.0]), 3);
    assert_eq!(target_level(&one, &[-0.625, 0.0, 0.0, 0.0]), -3);
    assert_eq!(target_level(&one, &[0.62, 0.0, 0.0, 0.0]), 2);
    assert_eq!(target_level(&one, &[1.0, 0.0, 0.0, 0.0]), 4);
    assert_eq!(target_level(&[0.0; 4], &[1.0; 4]), 0);
    for x in [-4.5, -2.5, -0.5, -0.49999999999999994, 0.0, 0.49999999999999994, 0.5, 1.5, 3.5, 2.4999] {
        assert_eq!(round_half_away(x), x.round() as i64, "{x}");
    }
}

#[test]
fn wide_integers_convert_to_float_closely() {
    for v in [
        0i128,
        1,
        -1,
        i64::MAX as i128,
        i64::MIN as i128,
        1 << 64,
        (1 << 100) + 12345,
        -(1 << 90) - 7,
        i128::MAX,
        i128::MIN + 1,
    ] {
        let (got, want) = (i128_to_f64(v), v as f64);
        assert!((got - want).abs() <= want.abs() * 4.0 * f64::EPSILON, "{v}: {got} vs {want}");
    }
}

#[test]
fn shares_and_attribution_by_hand() {
    let mut o = Orchestrator::new(&config(""));
    // Weights 1, 0.5, 0.5: 500000 / 250000 / 250000.
    let s = o.shares(0b0111);
    assert_eq!(s, [500_000, 250_000, 250_000, 0]);
    assert_eq!(o.attribute(s, Amount(1001)), Amount::ZERO);
    // 1001 × 0.5 = 500.5 → 500; × 0.25 = 250.25 → 250; the last takes 251.
    let r: Vec<i128> = o.slots.iter().map(|s| s.realized.raw()).collect();
    assert_eq!(r, vec![500, 250, 251, 0]);
    assert_eq!(o.attribute(s, Amount(-1001)), Amount::ZERO);
    assert!(o.slots.iter().all(|s| s.realized == Amount::ZERO), "losses truncate symmetrically");
    // Thirds: 333333 + 333333 + 333334.
    o.set_weight(StrategyKind::Momentum, 0.5);
    assert_eq!(o.shares(0b0111), [333_333, 333_333, 333_334, 0]);
    // Nobody with weight: nothing attributable.
    o.set_weight(StrategyKind::Momentum, 0.0);
    assert_eq!(o.shares(0b0001), [0; 4]);
    assert_eq!(o.attribute([0; 4], Amount(77)), Amount(77));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn shares_sum_exactly_and_attribution_is_exact(
        weights in proptest::array::uniform4(prop_oneof![Just(0.0), 0.0f64..10.0]),
        mask in 0u8..16,
        deltas in proptest::collection::vec(prop_oneof![
            any::<i64>().prop_map(|v| v as i128),
            // Up to 20 of these must not overflow the running totals.
            (i128::MIN / 64..i128::MAX / 64),
            Just(i128::MIN / 64),
        ], 1..20),
    ) {
        let mut o = Orchestrator::new(&config(""));
        for k in StrategyKind::ALL {
            o.set_weight(k, weights[k.index()]);
        }
        let s = o.shares(mask);
        let eligible: Vec<usize> = (0..4).filter(|&k| mask & (1 << k) != 0 && weights[k] > 0.0).collect();
        let total: f64 = eligible.iter().map(|&k| weights[k]).sum();
        if eligible.is_empty() {
            prop_assert_eq!(s, [0; 4]);
        } else {
            prop_assert_eq!(s.iter().sum::<u32>(), SHARE_SCALE);
            for k in 0..4 {
                if eligible.contains(&k) {
                    let exact = weights[k] / total * 1e6;
                    // Floors, the last one taking up to 3 ppm of the others' rounding.
                    prop_assert!((s[k] as f64 - exact).abs() <= 4.0, "k={} {} vs {}", k, s[k], exact);
                } else {
                    prop_assert_eq!(s[k], 0);
                }
            }
        }
        let mut total_delta = 0i128;
        for &d in &deltas {
            let before: Vec<i128> = o.slots.iter().map(|s| s.realized.raw()).collect();
            let left = o.attribute(s, Amount(d));
            let parts: Vec<i128> = o.slots.iter().zip(&before).map(|(s, b)| s.realized.raw() - b).collect();
            if eligible.is_empty() {
                prop_assert_eq!(left, Amount(d));
                prop_assert!(parts.iter().all(|&p| p == 0));
            } else {
                prop_assert_eq!(left, Amount::ZERO);
                prop_assert_eq!(parts.iter().sum::<i128>(), d);
                let last = *eligible.last().unwrap();
                for &k in &eligible {
                    // Each part is delta × share / 1e6 truncated (the last: plus the rest).
                    let want = d / 1_000_000 * s[k] as i128 + (d % 1_000_000) * s[k] as i128 / 1_000_000;
                    if k != last {
                        prop_assert_eq!(parts[k], want);
                    } else {
                        prop_assert!((parts[k] - want).abs() < 4, "last part {} vs {}", parts[k], want);
                    }
                }
                total_delta += d;
            }
        }
        prop_assert_eq!(o.slots.iter().map(|s| s.realized.raw()).sum::<i128>(), total_delta);
    }

    #[test]
    fn aggregation_matches_the_naive_pipeline(
        path in proptest::collection::vec(
            (prop_oneof![3 => Just(0i64), 2 => -4i64..=4], 1i64..4, 0i64..300_000_000, 0i64..300_000_000,
             prop_oneof![2 => Just(0i64), 1 => 0i64..50_000_000], -2_000_000i64..2_000_000),
            1..400),
        weights in proptest::array::uniform4(prop_oneof![Just(0.0), 0.1f64..3.0]),
        mask in 0u8..16,
    ) {
        let mut cfg = config(SHORT);
        let mut o = Orchestrator::new(&cfg);
        for k in StrategyKind::ALL {
            o.set_active(k, mask & (1 << k.index()) != 0);
            o.set_weight(k, weights[k.index()]);
        }
        // The naive pipeline takes its weights from the config.
        let s = &mut cfg.strategies;
        (s.momentum.weight, s.meanreversion.weight, s.breakout.weight, s.marketmaking.weight) =
            (weights[0], weights[1], weights[2], weights[3]);
        let mut n = naive::Pipeline::new(&cfg, path.len());
        n.set_active_mask(mask);
        let mut bid = 6_183_763_000_000i64;
        for (i, &(step, spread, bq, aq, vol, pos)) in path.iter().enumerate() {
            bid += step * 1_000_000;
            let t = tick(bid, spread * 1_000_000, bq, aq, vol, pos);
            let got = o.on_tick(0, &t);
            let want = n.on_tick(&t);
            for k in 0..3 {
                prop_assert_eq!(o.slots[k].last_signal, n.signals[k], "i={} k={}", i, k);
            }
            prop_assert!((o.slots[3].last_signal - n.signals[3]).abs() < 1e-9, "i={} mm", i);
            // Market making is float on both sides (tolerance above); with it out of the
            // aggregate, decisions must agree exactly.
            if mask & 0b1000 == 0 {
                prop_assert_eq!(got, want, "i={}", i);
            }
        }
    }
}
