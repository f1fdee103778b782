//! Mean reversion: the z-score of the mid against the mean and population standard deviation of
//! the last `period` mids (the current one included), faded:
//!
//! - `bollinger`: −(mid − mean) / (`std_mult` × std), so ±1 at the bands;
//! - `zscore`: −z / `z_threshold`.
//!
//! Clamped to [-1, 1]; 0 while warming up and when the window is flat (std 0).
//!
//! The running sums are exact integers over the raw doubled mid (`bid + ask`, 1e-8 units):
//! `Σx` and `Σx²` in `i128`, so after any number of ticks they equal a fresh sum over the
//! window, and z = (n·x − Σx) / √(n·Σx² − (Σx)²) is computed from exact integers with one
//! rounding per float operation. (Float running sums drift, and the naive float variance
//! cancels catastrophically at BTC prices: x² ≈ 1.4e26 while the variance is ≈ 1e14.) Usable
//! books have 0 < x ≤ 2e15, so Σx² ≤ 2e15 · Σx; while Σx ≤ [`sum_limit`]`(n)` neither n·Σx² nor
//! (Σx)² can overflow and no product needs checking. Beyond it (a mean mid above ~4e6 quote
//! units at n = 10000, ~2e8 at n = 200) the signal is 0.
//!
//! Hot thread; allocates only in `new`.

use super::window::Ring;
use super::{MAX_PX_RAW, Tick, clamp_signal, i128_to_f64, mid2_to_f64};
use hft_shared::config::{MeanReversionConfig, MeanReversionVariant};

#[derive(Debug, Clone)]
pub struct MeanReversion {
    variant: MeanReversionVariant,
    /// −1 / (`std_mult` or `z_threshold`, by variant): −z × this is the signal.
    scale: f64,
    /// The last `period` doubled mids.
    ring: Ring<i64>,
    sum: i128,
    sum_sq: i128,
    /// [`sum_limit`] of the period.
    limit: i128,
}

/// The largest Σx for which [`zscore_from_sums`] cannot overflow with `n` values in
/// (0, 2 × `MAX_PX_RAW`]: n·Σx² ≤ n · 2·MAX_PX_RAW · Σx < 2^127, and Σx ≤ `i64::MAX` so (Σx)² < 2^126.
pub fn sum_limit(n: i128) -> i128 {
    (i128::MAX / (n.max(1) * 2 * MAX_PX_RAW as i128)).min(i64::MAX as i128)
}

/// z = (n·x − Σx) / √(n·Σx² − (Σx)²): the z-score of `x` in a window of `n` values with these
/// exact sums. `None` when the window is flat or `sum` exceeds `limit` (= [`sum_limit`]`(n)`).
#[inline]
pub fn zscore_from_sums(n: i128, x: i64, sum: i128, sum_sq: i128, limit: i128) -> Option<f64> {
    if sum > limit {
        return None;
    }
    // In range by `limit`: sum fits in i64 (a single widening multiply), n·sum_sq < 2^127.
    let s = sum as i64 as i128;
    let var_n2 = n * sum_sq - s * s;
    if var_n2 <= 0 {
        return None;
    }
    let dev_n = n * x as i128 - sum;
    Some(i128_to_f64(dev_n) / i128_to_f64(var_n2).sqrt())
}

/// The factor that turns z into the signal: −1 / `std_mult` (`bollinger`, so ±1 at the bands)
/// or −1 / `z_threshold` (`zscore`).
pub fn signal_scale(cfg: &MeanReversionConfig) -> f64 {
    -1.0 / match cfg.variant {
        MeanReversionVariant::Bollinger => cfg.std_mult,
        MeanReversionVariant::Zscore => cfg.z_threshold,
    }
}

impl MeanReversion {
    pub fn new(cfg: &MeanReversionConfig) -> Self {
        let scale = signal_scale(cfg);
        let ring = Ring::new(cfg.period as usize);
        let limit = sum_limit(ring.capacity() as i128);
        Self { variant: cfg.variant, scale, ring, sum: 0, sum_sq: 0, limit }
    }

    pub fn variant(&self) -> MeanReversionVariant {
        self.variant
    }

    /// Feeds one tick; returns the signal in [-1, 1].
    #[inline]
    pub fn on_tick(&mut self, tick: &Tick) -> f64 {
        match tick.mid2() {
            Some(x) => self.on_mid(tick, x),
            None => 0.0,
        }
    }

    /// `on_tick` for a usable tick: `x` is its `Tick::mid2` (`Some`), so in (0, 2 × `MAX_PX_RAW`].
    #[inline(always)]
    pub(crate) fn on_mid(&mut self, _tick: &Tick, x: i64) -> f64 {
        // x and the value it replaces are in (0, 2e15]: their difference and sum fit in i64, and
        // x² − old² = (x − old)(x + old) is one widening multiply.
        let old = self.ring.push(x).unwrap_or(0);
        self.sum += (x - old) as i128;
        self.sum_sq += (x - old) as i128 * (x + old) as i128;
        if !self.ring.is_full() {
            return 0.0;
        }
        match zscore_from_sums(self.ring.len() as i128, x, self.sum, self.sum_sq, self.limit) {
            Some(z) => clamp_signal(z * self.scale),
            None => 0.0,
        }
    }

    /// (Σx, Σx²) of the doubled mids in the window.
    pub fn sums(&self) -> (i128, i128) {
        (self.sum, self.sum_sq)
    }

    /// Mean and population standard deviation of the mids in the window (price units), once
    /// it is full.
    pub fn mean_std(&self) -> Option<(f64, f64)> {
        if !self.ring.is_full() {
            return None;
        }
        let n = self.ring.len() as i128;
        if self.sum > self.limit {
            return None;
        }
        let var_n2 = n * self.sum_sq - self.sum * self.sum;
        // Doubled raw units → price: the same scaling as a mid.
        Some((mid2_to_f64(1) * (self.sum as f64 / n as f64), mid2_to_f64(1) * (var_n2 as f64).sqrt() / n as f64))
    }
}

#[cfg(test)]
mod tests {
    use super::super::naive;
    use super::*;
    use hft_shared::{Px, Qty};
    use proptest::prelude::*;

    fn cfg(variant: MeanReversionVariant, period: u32) -> MeanReversionConfig {
        MeanReversionConfig { enabled: true, weight: 1.0, variant, period, std_mult: 2.0, z_threshold: 1.5 }
    }

    fn tick_raw(bid: i64, ask: i64) -> Tick {
        Tick { bid: Px(bid), ask: Px(ask), bid_qty: Qty(1), ask_qty: Qty(1), ..Tick::default() }
    }

    #[test]
    fn fades_a_move_away_from_the_mean() {
        let mut m = MeanReversion::new(&cfg(MeanReversionVariant::Bollinger, 4));
        // Mids 100, 100, 100, 104: mean 101, std √3; z = 3/√3 = √3; signal = −√3 / 2.
        for _ in 0..3 {
            assert_eq!(m.on_tick(&tick_raw(99_99000000, 100_01000000)), 0.0);
        }
        let s = m.on_tick(&tick_raw(103_99000000, 104_01000000));
        assert!((s + 3f64.sqrt() / 2.0).abs() < 1e-12, "{s}");
        let (mean, std) = m.mean_std().unwrap();
        assert!((mean - 101.0).abs() < 1e-9 && (std - 3f64.sqrt()).abs() < 1e-9, "{mean} {std}");
        // zscore variant: −√3 / 1.5, clamped to −1.
        let mut z = MeanReversion::new(&cfg(MeanReversionVariant::Zscore, 4));
        for b in [99_99000000, 99_99000000, 99_99000000] {
            z.on_tick(&tick_raw(b, b + 2000000));
        }
        assert_eq!(z.on_tick(&tick_raw(103_99000000, 104_01000000)), -1.0);
    }

    #[test]
    fn flat_window_and_bad_ticks_give_zero() {
        let mut m = MeanReversion::new(&cfg(MeanReversionVariant::Bollinger, 3));
        for _ in 0..10 {
            assert_eq!(m.on_tick(&tick_raw(6_000_000_000_000, 6_000_001_000_000)), 0.0);
        }
        let before = m.sums();
        assert_eq!(m.on_tick(&Tick::default()), 0.0);
        assert_eq!(m.on_tick(&tick_raw(5, 4)), 0.0);
        assert_eq!(m.sums(), before, "bad ticks are not part of the window");
    }

    #[test]
    fn extreme_prices_do_not_panic() {
        let mut m = MeanReversion::new(&cfg(MeanReversionVariant::Zscore, 10_000));
        for i in 0..20_000i64 {
            let b = if i % 2 == 0 { 1 } else { super::super::MAX_PX_RAW };
            let s = m.on_tick(&tick_raw(b, super::super::MAX_PX_RAW));
            assert!((-1.0..=1.0).contains(&s));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn matches_naive_recomputation(
            steps in proptest::collection::vec(prop_oneof![3 => Just(0i64), 2 => -500i64..=500], 1..300),
            spreads in proptest::collection::vec(1i64..3, 300),
            period in 2u32..40,
            zscore in any::<bool>(),
        ) {
            let variant = if zscore { MeanReversionVariant::Zscore } else { MeanReversionVariant::Bollinger };
            let c = cfg(variant, period);
            let divisor = if zscore { c.z_threshold } else { c.std_mult };
            let scale = signal_scale(&c);
            let mut m = MeanReversion::new(&c);
            let mut bid = 6_183_763_000_000i64;
            let mut x = Vec::new();
            for (i, s) in steps.iter().enumerate() {
                bid += s * 1_000_000;
                let t = tick_raw(bid, bid + spreads[i] * 1_000_000);
                x.push(t.mid2().unwrap());
                let got = m.on_tick(&t);
                let want = naive::meanreversion(&x, period as usize, scale);
                // Exact integer sums: bit-for-bit the same signal.
                prop_assert_eq!(got, want, "i={}", i);
                if x.len() >= period as usize {
                    let w = &x[x.len() - period as usize..];
                    prop_assert_eq!(m.sums(), naive::sums(w));
                    // And close to the textbook two-pass float formula.
                    let z2 = naive::zscore_two_pass(w).map_or(0.0, |z| (-z / divisor).clamp(-1.0, 1.0));
                    prop_assert!((got - z2).abs() < 1e-6, "i={} got={} two-pass={}", i, got, z2);
                }
            }
        }
    }
}
