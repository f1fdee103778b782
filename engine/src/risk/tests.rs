//! One test per check: the order that would breach the limit is refused with its reason, and
//! the one just under it is admitted.

use super::*;
use hft_shared::config::Config;

const T: u64 = 1_723_161_255 * 1_000_000_000;

/// Limits chosen so each check can be hit alone: with BTC at 50 000, 0.02 BTC = 1 000 USDT.
const BASE: &[(&str, &str)] = &[
    ("capital.total", "10000.0"),
    ("capital.reserve", "2000.0"),
    ("risk.max_position", "1000.0"),
    ("risk.max_total_position", "3000.0"),
    ("risk.max_position_qty", "0.05"),
    ("risk.risk_per_trade", "0.25"),
    ("risk.stop_distance", "0.01"),
    ("risk.price_band", "0.02"),
    ("risk.duplicate_window_ms", "1000"),
    ("risk.orders_per_10s", "100"),
    ("risk.orders_per_day", "200000"),
    ("risk.max_open_orders", "8"),
    ("filters.tick_size", "0.01"),
    ("filters.step_size", "0.00001"),
    ("filters.min_notional", "5.0"),
    ("filters.min_qty", "0.00001"),
    ("filters.max_qty", "9000.0"),
];

/// A risk manager for two symbols with `BASE` limits, `over` (`"section.key"`, value) replacing
/// some of them.
fn rm_with(over: &[(&str, &str)]) -> RiskManager {
    let mut sections: std::collections::BTreeMap<&str, Vec<(&str, &str)>> = Default::default();
    for &(path, value) in BASE.iter().filter(|(p, _)| !over.iter().any(|(o, _)| o == p)).chain(over) {
        let (section, key) = path.split_once('.').unwrap();
        sections.entry(section).or_default().push((key, value));
    }
    let mut text = String::from("symbols = [\"BTCUSDT\", \"ETHUSDT\"]\n");
    for (section, keys) in sections {
        text.push_str(&format!("[{section}]\n"));
        for (k, v) in keys {
            text.push_str(&format!("{k} = {v}\n"));
        }
    }
    RiskManager::new(&Config::from_toml_str(&text, &|_| None).unwrap())
}

fn rm() -> RiskManager {
    rm_with(&[])
}

const FLAT: [Position; 2] = [Position { qty: Qty(0), cost: Amount(0), realized: Amount(0), fees: Amount(0) }; 2];
const MARKS: [Px; 2] = [Px::from_int(50_000), Px::from_int(2_000)];

/// A market at a 50 000 mid with nothing in the way of an order (also the restore tests').
pub(super) fn view(positions: &[Position]) -> RiskView<'_> {
    RiskView {
        positions,
        marks: &MARKS,
        mid: Px::from_int(50_000),
        open_orders: 0,
        backpressure: false,
        market_ok: true,
        sellable: None,
        spendable: None,
    }
}

fn q(s: &str) -> Qty {
    Qty::parse(s).unwrap()
}
fn px(s: &str) -> Px {
    Px::parse(s).unwrap()
}

fn buy(qty: &str) -> Intent {
    Intent { symbol: 0, side: Side::Buy, qty: q(qty), px: Px::from_int(50_000), reduce_only: false, limit: false }
}

fn long(qty: &str) -> [Position; 2] {
    let mut p = FLAT;
    p[0].on_fill(Side::Buy, Px::from_int(50_000), q(qty), Amount::ZERO);
    p
}

/// Checks `ok` is admitted and `bad` refused with `reason`, each on a fresh manager (so the
/// duplicate and rate checks of one do not affect the other).
fn edge(mk: impl Fn() -> RiskManager, v: &RiskView<'_>, ok: Intent, bad: Intent, reason: RejectReason) {
    let mut r = mk();
    assert_eq!(r.check(&ok, v, T), Ok(()), "just under the {reason:?} limit");
    let mut r = mk();
    assert_eq!(r.check(&bad, v, T), Err(reason), "over the {reason:?} limit");
    assert_eq!(r.rejects[reason.index()], 1);
    assert_eq!(r.rejects.iter().sum::<u64>(), 1);
}

#[test]
fn position_notional_per_symbol() {
    // 0.02 × 50 000 = 1 000: at the limit, admitted; one more step is over.
    edge(rm, &view(&FLAT), buy("0.02"), buy("0.02001"), RejectReason::MaxPosition);
}

#[test]
fn position_quantity_per_symbol() {
    let mk = || rm_with(&[("risk.max_position", "100000.0"), ("risk.max_total_position", "100000.0")]);
    edge(mk, &view(&FLAT), buy("0.05"), buy("0.05001"), RejectReason::MaxPosition);
    // Counting the position already held.
    let held = long("0.04");
    edge(mk, &view(&held), buy("0.01"), buy("0.01001"), RejectReason::MaxPosition);
}

#[test]
fn total_position_over_symbols() {
    // ETH position worth 2 500 at its mark; BTC may add 500 more, not 500.005.
    let mut held = FLAT;
    held[1].on_fill(Side::Buy, Px::from_int(2_000), q("1.25"), Amount::ZERO);
    edge(rm, &view(&held), buy("0.01"), buy("0.01001"), RejectReason::MaxTotalPosition);
}

#[test]
fn deployable_capital() {
    // Capital 2 000, reserve 1 200: 800 deployable, below every position limit.
    let mk = || rm_with(&[("capital.total", "2000.0"), ("capital.reserve", "1200.0")]);
    edge(mk, &view(&FLAT), buy("0.016"), buy("0.01601"), RejectReason::Capital);
}

#[test]
fn risk_per_trade_at_the_stop_distance() {
    // Deployable 8 000 × 1 % = 80 at risk; a 2 % stop allows 4 000 of notional = 0.08 BTC.
    let mk = || {
        rm_with(&[
            ("risk.max_position", "100000.0"),
            ("risk.max_total_position", "100000.0"),
            ("risk.max_position_qty", "10.0"),
            ("risk.risk_per_trade", "0.01"),
            ("risk.stop_distance", "0.02"),
        ])
    };
    edge(mk, &view(&FLAT), buy("0.08"), buy("0.08001"), RejectReason::RiskPerTrade);
    assert_eq!(mk().max_trade_qty(Px::from_int(50_000)), q("0.08"));
}

#[test]
fn price_band_around_the_mid() {
    // 2 % of 50 000 = 1 000: 51 000 is at the band, 51 000.01 beyond it; the same below.
    let at = Intent { px: Px::from_int(51_000), ..buy("0.001") };
    let beyond = Intent { px: px("51000.01"), ..buy("0.001") };
    edge(rm, &view(&FLAT), at, beyond, RejectReason::PriceBand);
    let at = Intent { px: Px::from_int(49_000), side: Side::Sell, ..buy("0.001") };
    let beyond = Intent { px: px("48999.99"), side: Side::Sell, ..buy("0.001") };
    edge(rm, &view(&FLAT), at, beyond, RejectReason::PriceBand);
}

#[test]
fn tick_size() {
    let on = Intent { px: px("50000.01"), ..buy("0.001") };
    let off = Intent { px: px("50000.005"), ..buy("0.001") };
    edge(rm, &view(&FLAT), on, off, RejectReason::TickSize);
}

#[test]
fn lot_size_step_min_and_max() {
    edge(rm, &view(&FLAT), buy("0.00012"), buy("0.000125"), RejectReason::LotSize);
    let mk = || rm_with(&[("filters.min_qty", "0.001"), ("filters.min_notional", "0.0")]);
    edge(mk, &view(&FLAT), buy("0.001"), buy("0.00099"), RejectReason::LotSize);
    let mk = || rm_with(&[("filters.max_qty", "0.01")]);
    edge(mk, &view(&FLAT), buy("0.01"), buy("0.01001"), RejectReason::LotSize);
    assert_eq!(rm().check(&buy("0"), &view(&FLAT), T), Err(RejectReason::LotSize));
}

#[test]
fn min_notional() {
    // 0.0001 × 50 000 = 5 = min notional: admitted; 0.00009 is below.
    edge(rm, &view(&FLAT), buy("0.0001"), buy("0.00009"), RejectReason::MinNotional);
}

/// With the venue's balances (live, spot): a sell of what the account holds passes, one more
/// lot is refused (it would be short, which a spot account cannot be); a buy of what the quote
/// balance pays for passes, one lot more is refused. Both, reducing or not.
#[test]
fn venue_balances() {
    let sell = |qty: &str| Intent { side: Side::Sell, ..buy(qty) };
    let positions = long("0.01");
    let held = RiskView { sellable: Some(q("0.002")), ..view(&positions) };
    edge(rm, &held, sell("0.002"), sell("0.00201"), RejectReason::MaxPosition);
    let flatten = |qty: &str| Intent { reduce_only: true, ..sell(qty) };
    edge(rm, &held, flatten("0.002"), flatten("0.00201"), RejectReason::MaxPosition);
    // 0.002 × 50 000 = 100.
    let cash = RiskView { spendable: Some(Amount::from_fixed8(100 * 100_000_000)), ..view(&FLAT) };
    edge(rm, &cash, buy("0.002"), buy("0.00201"), RejectReason::Capital);
}

/// `risk.allow_short = false`: selling a long position down to flat passes, one lot more is
/// refused; the default allows it.
#[test]
fn no_short_below_flat() {
    let sell = |qty: &str| Intent { side: Side::Sell, ..buy(qty) };
    let positions = long("0.002");
    let spot = || rm_with(&[("risk.allow_short", "false")]);
    edge(spot, &view(&positions), sell("0.002"), sell("0.00201"), RejectReason::MaxPosition);
    assert_eq!(rm().check(&sell("0.00201"), &view(&positions), T), Ok(()));
}

#[test]
fn max_open_orders() {
    let mut r = rm();
    let under = RiskView { open_orders: 7, ..view(&FLAT) };
    assert_eq!(r.check(&buy("0.001"), &under, T), Ok(()));
    let at = RiskView { open_orders: 8, ..view(&FLAT) };
    assert_eq!(r.check(&buy("0.002"), &at, T), Err(RejectReason::MaxOpenOrders));
}

#[test]
fn duplicate_within_the_window() {
    let mut r = rm();
    assert_eq!(r.check(&buy("0.001"), &view(&FLAT), T), Ok(()));
    let held = long("0.001");
    // The same order again just inside the window is a duplicate; just after, it is not.
    assert_eq!(r.check(&buy("0.001"), &view(&held), T + 999_999_999), Err(RejectReason::Duplicate));
    // A different quantity or price is a different order.
    assert_eq!(r.check(&buy("0.002"), &view(&held), T + 1), Ok(()));
    let mut r = rm();
    assert_eq!(r.check(&buy("0.001"), &view(&FLAT), T), Ok(()));
    assert_eq!(r.check(&buy("0.001"), &view(&held), T + 1_000_000_000), Ok(()));
}

#[test]
fn order_rate_limit() {
    let mut r = rm_with(&[("risk.orders_per_10s", "3"), ("risk.duplicate_window_ms", "0")]);
    for k in 0..3 {
        assert_eq!(r.check(&buy("0.001"), &view(&FLAT), T + k), Ok(()), "order {k} within the limit");
    }
    assert_eq!(r.check(&buy("0.001"), &view(&FLAT), T + 3), Err(RejectReason::RateLimit));
    assert_eq!(r.check(&buy("0.001"), &view(&FLAT), T + 10_000_000_000), Ok(()), "the window moved on");
}

#[test]
fn market_must_be_valid() {
    let mut r = rm();
    let v = RiskView { market_ok: false, ..view(&FLAT) };
    assert_eq!(r.check(&buy("0.001"), &v, T), Err(RejectReason::NoMarket));
    let v = RiskView { mid: Px::ZERO, ..view(&FLAT) };
    assert_eq!(r.check(&buy("0.001"), &v, T), Err(RejectReason::NoMarket));
}

#[test]
fn halt_blocks_new_risk_but_not_reduce_only() {
    let mut r = rm();
    r.halted = true;
    let held = long("0.01");
    assert_eq!(r.check(&buy("0.001"), &view(&held), T), Err(RejectReason::Halted));
    let strategy_sell = Intent { side: Side::Sell, ..buy("0.005") };
    assert_eq!(r.check(&strategy_sell, &view(&held), T), Err(RejectReason::Halted), "halt silences strategies");
    let flatten = Intent { side: Side::Sell, reduce_only: true, ..buy("0.01") };
    assert_eq!(r.check(&flatten, &view(&held), T), Ok(()));
    let too_far = Intent { side: Side::Sell, reduce_only: true, ..buy("0.02") };
    assert_eq!(r.check(&too_far, &view(&held), T), Err(RejectReason::MaxPosition), "reduce-only must reduce");
}

#[test]
fn backpressure_blocks_new_risk() {
    let mut r = rm();
    let v = RiskView { backpressure: true, ..view(&FLAT) };
    assert_eq!(r.check(&buy("0.001"), &v, T), Err(RejectReason::Backpressure));
}

#[test]
fn kill_switch_refuses_every_increase_until_rearmed() {
    let mut r = rm();
    let held = long("0.01");
    // Lose 5 % of 10 000 (the default capital): the daily-loss breaker trips.
    let mut loss = held[0];
    loss.realized = Amount::from_fixed8(-500 * 100_000_000);
    let u = r.mark(0, &loss, Px::from_int(50_000), T);
    assert_eq!(u.tripped, Some(KillCause::DailyLoss));
    assert_eq!(r.kill_switch(), Some(KillCause::DailyLoss));
    assert_eq!(r.check(&buy("0.001"), &view(&held), T), Err(RejectReason::KillSwitch));
    let short = Intent { side: Side::Sell, ..buy("0.02") };
    assert_eq!(r.check(&short, &view(&held), T), Err(RejectReason::KillSwitch), "flipping short increases");
    // Reducing passes, with or without reduce-only.
    let reduce = Intent { side: Side::Sell, ..buy("0.005") };
    assert_eq!(r.check(&reduce, &view(&held), T), Ok(()));
    // Resume (halt off) does not reopen; re-arm does.
    r.halted = false;
    assert_eq!(r.check(&buy("0.002"), &view(&held), T + 1), Err(RejectReason::KillSwitch));
    assert!(r.rearm());
    assert_eq!(r.check(&buy("0.002"), &view(&held), T + 2), Ok(()));
}

#[test]
fn equity_sums_every_symbol_incrementally() {
    let mut r = rm_with(&[("capital.reserve", "0.0")]);
    let mut a = FLAT[0];
    a.on_fill(Side::Buy, Px::from_int(100), q("1"), Amount::ZERO);
    let mut b = FLAT[1];
    b.on_fill(Side::Sell, Px::from_int(10), q("2"), Amount::from_fixed8(100_000_000));
    r.mark(0, &a, Px::from_int(110), T); // +10
    r.mark(1, &b, Px::from_int(12), T); // -4 - 1 fee
    r.mark(0, &a, Px::from_int(105), T); // +5
    assert_eq!(r.breaker().equity(), Amount::from_fixed8(10_000 * 100_000_000)); // 10 000 + 5 - 5
}
