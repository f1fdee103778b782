//! Market making: two-sided quotes around the microprice, skewed against the inventory.
//!
//! With the top of book `bid × bid_qty / ask × ask_qty`, mid `m`, position `p`:
//!
//! - fair price `f` = microprice = (bid × ask_qty + ask × bid_qty) / (bid_qty + ask_qty) (the mid
//!   when both sizes are 0): it leans toward the side more likely to trade next;
//! - half-spread `h` = `half_spread` × m (price);
//! - inventory ratio `q` = p / `max_inventory`, clamped to [-1, 1];
//! - reservation price `r` = f − `skew` × q × h: long inventory lowers both quotes (sell sooner,
//!   buy later), short raises them;
//! - bid = r − h rounded down to the tick, ask = r + h rounded up, and never crossing the book
//!   (bid ≤ best ask − tick, ask ≥ best bid + tick), so they can rest post-only;
//! - bid size = min(`quote_qty`, `max_inventory` − p), ask size = min(`quote_qty`,
//!   `max_inventory` + p), rounded down to the lot, 0 when negative: a side that would take
//!   |position| beyond `max_inventory` is not quoted (size 0) or only up to it.
//!
//! Signal = clamp((f − m) / h − p / `max_inventory`, −1, 1): the book imbalance, leaning the
//! aggregate against the inventory.
//!
//! The signal is computed every tick in `f64` (indicators may be float); the quotes are computed
//! on demand ([`MarketMaker::quotes`]) in fixed point, as they are prices to send.
//!
//! Hot thread; allocates nothing.

use super::{Tick, clamp_signal};
use hft_shared::config::{FiltersConfig, MarketMakingConfig};
use hft_shared::{Px, Qty};

/// Two-sided quotes. A side with quantity 0 is not quoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Quotes {
    pub bid_px: Px,
    pub bid_qty: Qty,
    pub ask_px: Px,
    pub ask_qty: Qty,
}

/// Parts per 1e8 in which `half_spread` is held for the fixed-point quotes.
const FRACTION_SCALE: i128 = 100_000_000;

#[derive(Debug, Clone)]
pub struct MarketMaker {
    half_spread: f64,
    /// `half_spread` in parts per 1e8.
    half_spread_e8: i128,
    /// `skew` in parts per million.
    skew_ppm: i128,
    /// Raw base quantity, ≥ 1.
    max_inventory: i64,
    inv_max_inventory: f64,
    /// Raw, a multiple of `step`.
    quote_qty: i64,
    /// Price increment and lot step, raw, ≥ 1.
    tick: i64,
    step: i64,
    /// The last usable tick.
    last: Option<Tick>,
}

impl MarketMaker {
    pub fn new(cfg: &MarketMakingConfig, filters: &FiltersConfig) -> Self {
        let raw = |v: f64| Qty::from_f64(v).map_or(1, |q| q.raw().max(1));
        let (tick, step) = (raw(filters.tick_size), raw(filters.step_size));
        let max_inventory = raw(cfg.max_inventory);
        let q = raw(cfg.quote_qty);
        Self {
            half_spread: cfg.half_spread,
            // Clamped to the validated ranges, so no product below can overflow whatever the
            // config (NaN becomes 0).
            half_spread_e8: (cfg.half_spread.clamp(0.0, 0.05) * FRACTION_SCALE as f64).round() as i128,
            skew_ppm: (cfg.skew.clamp(0.0, 1.0) * 1e6).round() as i128,
            max_inventory,
            inv_max_inventory: 1.0 / max_inventory as f64,
            quote_qty: q - q % step,
            tick,
            step,
            last: None,
        }
    }

    /// Feeds one tick; returns the signal in [-1, 1] (0 for an unusable book, which is
    /// otherwise ignored).
    #[inline]
    pub fn on_tick(&mut self, tick: &Tick) -> f64 {
        match tick.mid2() {
            Some(x) => self.on_mid(tick, x),
            None => 0.0,
        }
    }

    /// `on_tick` for a usable tick: `x` is its `Tick::mid2` (`Some`), so in (0, 2 × `MAX_PX_RAW`].
    #[inline(always)]
    pub(crate) fn on_mid(&mut self, tick: &Tick, x: i64) -> f64 {
        self.last = Some(*tick);
        let bq = tick.bid_qty.raw().max(0) as f64;
        let aq = tick.ask_qty.raw().max(0) as f64;
        // f − m = (ask − bid)(bid_qty − ask_qty) / (2 (bid_qty + ask_qty)) and h = half_spread × x / 2,
        // so (f − m) / h = (ask − bid)(bid_qty − ask_qty) / ((bid_qty + ask_qty) × half_spread × x):
        // one division.
        let lean = if bq + aq > 0.0 {
            (tick.ask.raw() - tick.bid.raw()) as f64 * (bq - aq) / ((bq + aq) * self.half_spread * x as f64)
        } else {
            0.0
        };
        clamp_signal(lean - tick.position.raw() as f64 * self.inv_max_inventory)
    }

    /// The quotes for the last usable tick (module docs); `None` before the first.
    pub fn quotes(&self) -> Option<Quotes> {
        let t = self.last?;
        let (bid, ask) = (t.bid.raw() as i128, t.ask.raw() as i128);
        let (bq, aq) = (t.bid_qty.raw().max(0) as i128, t.ask_qty.raw().max(0) as i128);
        let mid2 = bid + ask;
        // All terms < 2^127: prices ≤ 1e15, sizes < 2^63.
        let fair = if bq + aq > 0 { (bid * aq + ask * bq) / (bq + aq) } else { mid2 / 2 };
        let h = mid2 * self.half_spread_e8 / (2 * FRACTION_SCALE);
        let max = self.max_inventory as i128;
        let p = (t.position.raw() as i128).clamp(-max, max);
        let shift = h * self.skew_ppm * p / (1_000_000 * max);
        let r = fair - shift;
        let tick = self.tick as i128;
        let floor = |v: i128| v - v.rem_euclid(tick);
        let ceil = |v: i128| floor(v + tick - 1);
        let bid_px = floor(r - h).min(floor(ask - 1));
        let ask_px = ceil(r + h).max(ceil(bid + 1));
        let size = |room: i128| {
            let q = room.clamp(0, self.quote_qty as i128) as i64;
            Qty(q - q % self.step)
        };
        let position = t.position.raw() as i128;
        let mut bid_qty = size(max - position);
        if bid_px <= 0 {
            bid_qty = Qty::ZERO;
        }
        let clamp_px = |v: i128| Px(v.clamp(0, i64::MAX as i128) as i64);
        Some(Quotes { bid_px: clamp_px(bid_px), bid_qty, ask_px: clamp_px(ask_px), ask_qty: size(max + position) })
    }
}

#[cfg(test)]
mod tests {
    use super::super::naive;
    use super::*;
    use proptest::prelude::*;

    fn cfg(half_spread: f64, skew: f64, max_inventory: f64, quote_qty: f64) -> MarketMakingConfig {
        MarketMakingConfig { enabled: true, weight: 1.0, half_spread, skew, max_inventory, quote_qty, requote_ms: 1000 }
    }

    fn filters() -> FiltersConfig {
        let mut f = hft_shared::config::Config::from_toml_str("", &|_| None).expect("defaults").filters;
        (f.tick_size, f.step_size) = (0.01, 0.00001);
        f
    }

    fn px(v: &str) -> Px {
        Px::parse(v).unwrap()
    }
    fn qty(v: &str) -> Qty {
        Qty::parse(v).unwrap()
    }

    #[test]
    fn quotes_by_hand() {
        // Book 100.00 × 3 / 100.10 × 1: microprice (100 × 1 + 100.1 × 3) / 4 = 100.075,
        // mid 100.05, half-spread 1 % of the mid = 1.0005.
        let mut mm = MarketMaker::new(&cfg(0.01, 0.5, 1.0, 0.3), &filters());
        assert_eq!(mm.quotes(), None);
        let mut t = Tick { bid: px("100"), ask: px("100.1"), bid_qty: qty("3"), ask_qty: qty("1"), ..Tick::default() };
        // Flat: (100.075 − 100.05) / 1.0005 = 0.0249875...
        let s = mm.on_tick(&t);
        assert!((s - 0.025 / 1.0005).abs() < 1e-12, "{s}");
        let q = mm.quotes().unwrap();
        // 100.075 ∓ 1.0005: bid 99.0745 → 99.07, ask 101.0755 → 101.08.
        assert_eq!(q, Quotes { bid_px: px("99.07"), bid_qty: qty("0.3"), ask_px: px("101.08"), ask_qty: qty("0.3") });

        // Long 0.8 of max 1: shift = 0.5 × 0.8 × 1.0005 = 0.4002; r = 99.6748.
        // bid 98.6743 → 98.67, ask 100.6753 → 100.68; bid size min(0.3, 0.2) = 0.2.
        t.position = qty("0.8");
        let s = mm.on_tick(&t);
        assert!((s - (0.025 / 1.0005 - 0.8)).abs() < 1e-12, "{s}");
        let q = mm.quotes().unwrap();
        assert_eq!(q, Quotes { bid_px: px("98.67"), bid_qty: qty("0.2"), ask_px: px("100.68"), ask_qty: qty("0.3") });

        // Beyond max inventory: no bid; the signal saturates.
        t.position = qty("1.5");
        assert_eq!(mm.on_tick(&t), -1.0);
        let q = mm.quotes().unwrap();
        assert_eq!(q.bid_qty, Qty::ZERO);
        assert_eq!(q.ask_qty, qty("0.3"));
        t.position = qty("-1");
        mm.on_tick(&t);
        assert_eq!(mm.quotes().unwrap().ask_qty, Qty::ZERO);
    }

    #[test]
    fn quotes_never_cross_the_book() {
        // No ask size: the microprice is the ask. Short the maximum with full skew: the
        // reservation price is ask + h, so the raw bid would be the ask itself.
        let mut mm = MarketMaker::new(&cfg(0.000001, 1.0, 1.0, 0.1), &filters());
        let mut t = Tick { bid: px("100"), ask: px("101"), bid_qty: qty("5"), position: qty("-1"), ..Tick::default() };
        mm.on_tick(&t);
        let q = mm.quotes().unwrap();
        assert_eq!((q.bid_px, q.ask_px), (px("100.99"), px("101.01")), "{q:?}");
        // Mirror: no bid size, long the maximum: the ask is held above the bid.
        t = Tick { bid: px("100"), ask: px("101"), ask_qty: qty("5"), position: qty("1"), ..Tick::default() };
        mm.on_tick(&t);
        let q = mm.quotes().unwrap();
        assert_eq!((q.bid_px, q.ask_px), (px("99.99"), px("100.01")), "{q:?}");
    }

    #[test]
    fn no_sizes_and_bad_ticks() {
        let mut mm = MarketMaker::new(&cfg(0.001, 0.5, 1.0, 0.1), &filters());
        let t = Tick { bid: px("100"), ask: px("100.02"), ..Tick::default() };
        assert_eq!(mm.on_tick(&t), 0.0);
        let q = mm.quotes().unwrap();
        // Around the mid 100.01 ± 0.10001.
        assert_eq!((q.bid_px, q.ask_px), (px("99.9"), px("100.12")));
        assert_eq!(mm.on_tick(&Tick { bid: px("5"), ask: px("4"), ..t }), 0.0);
        assert_eq!(mm.quotes(), Some(q), "a crossed book does not replace the last usable one");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn matches_naive_float_recomputation(
            bid in 1_000_000i64..10_000_000,      // 10.00 .. 100000.00 in cents
            spread in 1i64..50,
            bq in prop_oneof![Just(0i64), 0i64..1_000_000_000],
            aq in prop_oneof![Just(0i64), 0i64..1_000_000_000],
            pos in -300_000_000i64..300_000_000,  // ±3 BTC
            hs in 0.00001f64..0.01,
            skew in 0.0f64..1.0,
            max_inv in 0.01f64..2.0,
            quote in 0.00001f64..0.01,
        ) {
            let c = cfg(hs, skew, max_inv, quote);
            let mut mm = MarketMaker::new(&c, &filters());
            let t = Tick {
                bid: Px(bid * 1_000_000),
                ask: Px((bid + spread) * 1_000_000),
                bid_qty: Qty(bq),
                ask_qty: Qty(aq),
                volume: Qty(0),
                position: Qty(pos),
            };
            let got = mm.on_tick(&t);
            let want = naive::market_making(&t, &c, &filters());
            prop_assert!((got - want.signal).abs() < 1e-9, "signal {} vs {}", got, want.signal);
            let q = mm.quotes().unwrap();
            // Prices: within one tick of the float formula (rounding at a tick boundary may go
            // either way in float), and exactly on the tick grid.
            let tick = 0.01;
            prop_assert!((q.bid_px.to_f64() - want.bid_px).abs() <= tick + 1e-6, "bid {} vs {}", q.bid_px, want.bid_px);
            prop_assert!((q.ask_px.to_f64() - want.ask_px).abs() <= tick + 1e-6, "ask {} vs {}", q.ask_px, want.ask_px);
            prop_assert_eq!(q.bid_px.raw() % 1_000_000, 0);
            prop_assert_eq!(q.ask_px.raw() % 1_000_000, 0);
            prop_assert!(q.bid_px < t.ask && q.ask_px > t.bid);
            // Sizes: exact.
            prop_assert_eq!(q.bid_qty, want.bid_qty);
            prop_assert_eq!(q.ask_qty, want.ask_qty);
        }
    }
}
