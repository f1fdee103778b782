//! Momentum: one of four trend indicators of the mid, chosen by `variant` (only that one runs):
//!
//! - `return`: the return of the mid over the last `lookback` ticks / `threshold`.
//! - `rsi`: Wilder's RSI over `rsi_period` changes of the mid, as (RSI − 50) / 50.
//! - `macd`: the MACD histogram (EMA(`macd_fast`) − EMA(`macd_slow`) of the mid, minus its
//!   EMA(`macd_signal`)) / (`threshold` × mid).
//! - `volume`: the volume-weighted mean of the per-tick simple returns over the last `lookback`
//!   ticks × `lookback` / `threshold` (weights: base volume traded in each tick; no volume: 0).
//!
//! Every signal is clamped to [-1, 1] and is 0 while warming up. O(1) per tick.
//!
//! Hot thread; allocates only in `new`.

use super::window::Ring;
use super::{Tick, clamp_signal, i128_to_f64};
use hft_shared::config::{MomentumConfig, MomentumVariant};

#[derive(Debug, Clone)]
pub struct Momentum {
    threshold: f64,
    /// 1 / threshold and lookback / threshold: multiplications, not divisions, per tick.
    inv_threshold: f64,
    lookback_over_threshold: f64,
    state: State,
}

/// The `return` signal for mid `x` against the mid `old` a lookback ago (both positive):
/// (x − old) / old / threshold, clamped; the difference is exact in integers.
#[inline]
pub fn return_signal(x: i64, old: i64, inv_threshold: f64) -> f64 {
    clamp_signal((x - old) as f64 / old as f64 * inv_threshold)
}

#[derive(Debug, Clone)]
enum State {
    /// The last `lookback` doubled mids.
    Return(Ring<i64>),
    Rsi(Rsi),
    Macd(Macd),
    Volume(VolumeReturn),
}

impl Momentum {
    pub fn new(cfg: &MomentumConfig) -> Self {
        let state = match cfg.variant {
            MomentumVariant::Return => State::Return(Ring::new(cfg.lookback as usize)),
            MomentumVariant::Rsi => State::Rsi(Rsi::new(cfg.rsi_period)),
            MomentumVariant::Macd => State::Macd(Macd::new(cfg.macd_fast, cfg.macd_slow, cfg.macd_signal)),
            MomentumVariant::Volume => State::Volume(VolumeReturn::new(cfg.lookback)),
        };
        Self {
            threshold: cfg.threshold,
            inv_threshold: 1.0 / cfg.threshold,
            lookback_over_threshold: cfg.lookback as f64 / cfg.threshold,
            state,
        }
    }

    pub fn variant(&self) -> MomentumVariant {
        match self.state {
            State::Return(_) => MomentumVariant::Return,
            State::Rsi(_) => MomentumVariant::Rsi,
            State::Macd(_) => MomentumVariant::Macd,
            State::Volume(_) => MomentumVariant::Volume,
        }
    }

    /// Feeds one tick; returns the signal in [-1, 1] (0 until warmed up, 0 for an unusable
    /// book, which is otherwise ignored).
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
        match &mut self.state {
            State::Return(ring) => match ring.push(x) {
                // `old` > 0: only usable books are pushed.
                Some(old) => return_signal(x, old, self.inv_threshold),
                None => 0.0,
            },
            State::Rsi(rsi) => rsi.update(x).unwrap_or(0.0),
            State::Macd(macd) => match macd.update(x) {
                // Both in doubled raw units, so the ratio is histogram / mid.
                Some(hist) => clamp_signal(hist / (self.threshold * x as f64)),
                None => 0.0,
            },
            State::Volume(vr) => match vr.update(x, tick.volume_raw()) {
                Some(mean) => clamp_signal(mean * self.lookback_over_threshold),
                None => 0.0,
            },
        }
    }
}

/// Wilder's RSI: the first average gain/loss is the mean of the first `period` changes, then
/// `avg = (avg × (period − 1) + current) / period`. Reported as (RSI − 50) / 50, which is
/// (gain − loss) / (gain + loss): in [-1, 1], 0 when nothing moved.
#[derive(Debug, Clone)]
pub struct Rsi {
    period: u32,
    /// (period − 1) / period and 1 / period.
    keep: f64,
    inv: f64,
    /// Last input; 0 = none yet (inputs are positive).
    prev: i64,
    /// Changes seen, saturating at `period`.
    seen: u32,
    gain: f64,
    loss: f64,
}

impl Rsi {
    pub fn new(period: u32) -> Self {
        let period = period.max(1);
        let n = period as f64;
        Self { period, keep: (n - 1.0) / n, inv: 1.0 / n, prev: 0, seen: 0, gain: 0.0, loss: 0.0 }
    }

    /// Feeds a positive observation; returns (RSI − 50) / 50 once `period` changes were seen.
    #[inline]
    pub fn update(&mut self, x: i64) -> Option<f64> {
        let prev = core::mem::replace(&mut self.prev, x);
        if prev == 0 {
            return None;
        }
        // Exact: |x − prev| < 2^53 for usable books.
        let d = (x - prev) as f64;
        let (g, l) = if d > 0.0 { (d, 0.0) } else { (0.0, -d) };
        if self.seen < self.period {
            self.gain += g;
            self.loss += l;
            self.seen += 1;
            if self.seen < self.period {
                return None;
            }
            self.gain *= self.inv;
            self.loss *= self.inv;
        } else {
            self.gain = self.gain * self.keep + g * self.inv;
            self.loss = self.loss * self.keep + l * self.inv;
        }
        let sum = self.gain + self.loss;
        Some(if sum > 0.0 { (self.gain - self.loss) / sum } else { 0.0 })
    }
}

/// Exponential moving average with `alpha = 2 / (period + 1)`, seeded with the first value.
#[derive(Debug, Clone, Copy)]
pub struct Ema {
    alpha: f64,
    value: f64,
    seeded: bool,
}

impl Ema {
    pub fn new(period: u32) -> Self {
        Self { alpha: 2.0 / (period as f64 + 1.0), value: 0.0, seeded: false }
    }

    #[inline]
    pub fn update(&mut self, y: f64) -> f64 {
        if self.seeded {
            self.value += self.alpha * (y - self.value);
        } else {
            self.value = y;
            self.seeded = true;
        }
        self.value
    }

    pub fn value(&self) -> f64 {
        self.value
    }
}

/// MACD = EMA(fast) − EMA(slow) of the input; histogram = MACD − EMA(signal) of the MACD.
/// The EMAs run on `x − first x`: EMAs are affine, so the MACD is unchanged, and the small
/// numbers keep the fast − slow difference free of cancellation.
#[derive(Debug, Clone)]
pub struct Macd {
    fast: Ema,
    slow: Ema,
    signal: Ema,
    anchor: i64,
    seen: u32,
    warmup: u32,
}

impl Macd {
    pub fn new(fast: u32, slow: u32, signal: u32) -> Self {
        Self {
            fast: Ema::new(fast),
            slow: Ema::new(slow),
            signal: Ema::new(signal),
            anchor: 0,
            seen: 0,
            warmup: slow.saturating_add(signal),
        }
    }

    /// Feeds an observation; returns the histogram (input units) once `slow + signal`
    /// observations were seen.
    #[inline]
    pub fn update(&mut self, x: i64) -> Option<f64> {
        if self.seen == 0 {
            self.anchor = x;
        }
        self.seen = self.seen.saturating_add(1);
        let y = x.wrapping_sub(self.anchor) as f64;
        let macd = self.fast.update(y) - self.slow.update(y);
        let hist = macd - self.signal.update(macd);
        if self.seen < self.warmup { None } else { Some(hist) }
    }
}

/// Volume-weighted mean of per-tick simple returns over the last `lookback` ticks.
///
/// Each return is clamped to ±100 % (a larger jump is bad data) and truncated to units of 1e-12,
/// so `Σ volume × return` and `Σ volume` are exact `i128` running sums: the incremental value
/// equals a fresh recomputation over the window, however long the process runs (float running
/// sums would drift). The truncation is ≤ 1e-12 per return, far below any threshold.
#[derive(Debug, Clone)]
pub struct VolumeReturn {
    /// (return in 1e-12, volume raw) of the last `lookback` ticks.
    ring: Ring<(i64, i64)>,
    /// Last input; 0 = none yet (inputs are positive).
    prev: i64,
    sum_vr: i128,
    sum_v: i128,
}

/// Units of [`VolumeReturn`]'s quantised returns per unit of return.
pub const RETURN_SCALE: f64 = 1e12;

impl VolumeReturn {
    pub fn new(lookback: u32) -> Self {
        Self { ring: Ring::new(lookback as usize), prev: 0, sum_vr: 0, sum_v: 0 }
    }

    /// The return from `prev` to `x` in units of 1e-12, clamped to ±1e12.
    #[inline]
    pub fn quantise(prev: i64, x: i64) -> i64 {
        ((x as f64 / prev as f64 - 1.0).clamp(-1.0, 1.0) * RETURN_SCALE) as i64
    }

    /// Feeds a positive observation and the volume traded since the previous one (clamped to
    /// [0, `MAX_TICK_VOLUME`]); returns the volume-weighted mean return (0 when no volume) once
    /// `lookback` returns were seen.
    #[inline]
    pub fn update(&mut self, x: i64, volume: i64) -> Option<f64> {
        let prev = core::mem::replace(&mut self.prev, x);
        if prev == 0 {
            return None;
        }
        let r = Self::quantise(prev, x);
        let v = volume.clamp(0, super::MAX_TICK_VOLUME);
        if let Some((or, ov)) = self.ring.push((r, v)) {
            self.sum_vr -= or as i128 * ov as i128;
            self.sum_v -= ov as i128;
        }
        // |r × v| ≤ 1e12 × 1e14 and at most 10000 terms: no overflow.
        self.sum_vr += r as i128 * v as i128;
        self.sum_v += v as i128;
        if !self.ring.is_full() {
            return None;
        }
        Some(if self.sum_v > 0 { i128_to_f64(self.sum_vr) / (i128_to_f64(self.sum_v) * RETURN_SCALE) } else { 0.0 })
    }

    /// (Σ volume × quantised return, Σ volume) over the window.
    pub fn sums(&self) -> (i128, i128) {
        (self.sum_vr, self.sum_v)
    }
}

#[cfg(test)]
mod tests {
    use super::super::naive;
    use super::*;
    use hft_shared::{Px, Qty};
    use proptest::prelude::*;

    pub(crate) fn cfg(variant: MomentumVariant, lookback: u32, threshold: f64) -> MomentumConfig {
        MomentumConfig {
            enabled: true,
            weight: 1.0,
            variant,
            lookback,
            threshold,
            rsi_period: 5,
            macd_fast: 3,
            macd_slow: 7,
            macd_signal: 4,
        }
    }

    /// A tick whose mid is `mid` (whole units) with a 0.02 spread and `volume` traded.
    fn tick(mid: f64, volume: f64) -> Tick {
        let m = Px::from_f64(mid).unwrap().raw();
        Tick {
            bid: Px(m - 1_000_000),
            ask: Px(m + 1_000_000),
            volume: Qty::from_f64(volume).unwrap(),
            ..Tick::default()
        }
    }

    /// Doubled raw mids (`bid + ask`): what the strategies see.
    fn mids2(mids: &[f64]) -> Vec<i64> {
        mids.iter().map(|&m| tick(m, 0.0).mid2().unwrap()).collect()
    }

    #[test]
    fn return_is_silent_until_the_window_is_full_then_follows_the_trend() {
        let mut m = Momentum::new(&cfg(MomentumVariant::Return, 3, 0.01));
        for _ in 0..3 {
            assert_eq!(m.on_tick(&tick(100.0, 0.0)), 0.0);
        }
        // 100 -> 100.5 over 3 ticks: +0.5 % = half the threshold.
        assert!((m.on_tick(&tick(100.5, 0.0)) - 0.5).abs() < 1e-12);
        // Saturates.
        assert_eq!(m.on_tick(&tick(110.0, 0.0)), 1.0);
        assert_eq!(m.on_tick(&tick(50.0, 0.0)), -1.0);
    }

    #[test]
    fn unusable_books_give_zero_and_are_skipped() {
        for variant in [MomentumVariant::Return, MomentumVariant::Rsi, MomentumVariant::Macd, MomentumVariant::Volume] {
            let mut m = Momentum::new(&cfg(variant, 2, 0.0001));
            let mut last = 0.0;
            for i in 0..40 {
                last = m.on_tick(&tick(100.0 + i as f64, 1.0));
            }
            assert!(last > 0.0, "{variant:?} follows an up-trend: {last}");
            for bad in [
                Tick::default(),
                Tick { bid: Px(-5), ask: Px(10), ..Tick::default() },
                Tick { bid: Px(200), ask: Px(100), ..Tick::default() },
                Tick { bid: Px(i64::MAX), ask: Px(i64::MAX), ..Tick::default() },
            ] {
                assert_eq!(m.on_tick(&bad), 0.0, "{variant:?} {bad:?}");
            }
            // State untouched: the next good tick continues the trend.
            assert!(m.on_tick(&tick(140.0, 1.0)) > 0.0, "{variant:?}");
        }
    }

    #[test]
    fn rsi_is_one_when_only_rising_and_zero_when_flat() {
        let mut r = Rsi::new(3);
        assert_eq!(r.update(10), None);
        assert_eq!((r.update(11), r.update(12)), (None, None));
        assert_eq!(r.update(13), Some(1.0));
        let mut flat = Rsi::new(2);
        for _ in 0..5 {
            assert!(flat.update(7).unwrap_or(0.0) == 0.0);
        }
        // Wilder's textbook case: 2 up moves of 1 then 1 down move of 1, period 2.
        let mut w = Rsi::new(2);
        for x in [10, 11, 12] {
            w.update(x);
        }
        // gain = (1 + 1)/2 = 1 → (1·1 + 0)/2 = 0.5; loss = 0 → (0 + 1)/2 = 0.5: RSI 50.
        assert_eq!(w.update(11), Some(0.0));
    }

    #[test]
    fn volume_weighting_ignores_returns_without_volume() {
        let mut m = Momentum::new(&cfg(MomentumVariant::Volume, 2, 0.01));
        m.on_tick(&tick(100.0, 0.0));
        m.on_tick(&tick(100.5, 1.0)); // +0.5 % on volume 1
        // -10 % on no volume: weight 0. Mean = 0.5 % × 2 / 1 % = 1 (less the 1e-12 truncation).
        let s = m.on_tick(&tick(90.45, 0.0));
        assert!((s - 1.0).abs() < 1e-9, "{s}");
        let mut none = Momentum::new(&cfg(MomentumVariant::Volume, 2, 0.01));
        for mid in [100.0, 101.0, 102.0, 103.0] {
            assert_eq!(none.on_tick(&tick(mid, 0.0)), 0.0);
        }
    }

    #[test]
    fn ema_and_macd_by_hand() {
        let mut e = Ema::new(3); // alpha = 0.5
        assert_eq!(e.update(10.0), 10.0);
        assert_eq!(e.update(20.0), 15.0);
        assert_eq!(e.update(5.0), 10.0);
        // fast 1 (alpha 1) follows the input; slow 3 (alpha 0.5); signal 1 (alpha 1) follows the
        // MACD, so the histogram is always 0.
        let mut m = Macd::new(1, 3, 1);
        let got: Vec<_> = [100, 110, 90, 130].iter().map(|&x| m.update(x)).collect();
        assert_eq!(got[..3], [None, None, None]);
        assert!(got[3].is_some_and(|h| h.abs() < 1e-9), "{got:?}");
        // fast 1 (alpha 1), slow 3 and signal 3 (alpha 0.5) on y = 0, 8, 8, 8, 8, 16:
        // EMA(slow) 0, 4, 6, 7, 7.5, 11.75; MACD 0, 4, 2, 1, 0.5, 4.25;
        // signal 0, 2, 2, 1.5, 1, 2.625; histogram at the 6th (= slow + signal) is 1.625.
        let mut m = Macd::new(1, 3, 3);
        assert_eq!([100, 108, 108, 108, 108].map(|x| m.update(x)), [None; 5]);
        assert_eq!(m.update(116), Some(1.625));
    }

    fn price_path() -> impl Strategy<Value = Vec<f64>> {
        // Steps of -3..3 cents on 60000 with long flat stretches, as the real feed has.
        proptest::collection::vec(prop_oneof![3 => Just(0i64), 1 => -3i64..=3], 1..250).prop_map(|steps| {
            let mut p = 6_000_000i64;
            steps
                .iter()
                .map(|s| {
                    p += s;
                    p as f64 / 100.0
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn return_matches_naive_recomputation(mids in proptest::collection::vec(1.0f64..1000.0, 1..300), lookback in 2u32..20) {
            let mut m = Momentum::new(&cfg(MomentumVariant::Return, lookback, 0.001));
            let x = mids2(&mids);
            for (i, &mid) in mids.iter().enumerate() {
                let got = m.on_tick(&tick(mid, 0.0));
                let want = naive::momentum_return(&x[..=i], lookback as usize, 0.001);
                prop_assert_eq!(got, want, "i={}", i);
                // And against the textbook formula on the mids themselves.
                let book = if i < lookback as usize { 0.0 } else {
                    ((mid / mids[i - lookback as usize] - 1.0) / 0.001).clamp(-1.0, 1.0)
                };
                // The mids are rounded to 1e-8 on the way in: relative 1e-8, / threshold.
                prop_assert!((got - book).abs() < 1e-4, "i={} got={} book={}", i, got, book);
            }
        }

        #[test]
        fn rsi_matches_naive_closed_form(mids in price_path(), period in 2u32..30) {
            let mut c = cfg(MomentumVariant::Rsi, 10, 0.001);
            c.rsi_period = period;
            let mut m = Momentum::new(&c);
            let x = mids2(&mids);
            for i in 0..x.len() {
                let got = m.on_tick(&tick(mids[i], 0.0));
                let want = naive::rsi(&x[..=i], period as usize);
                prop_assert!((got - want).abs() < 1e-9, "i={} got={} want={}", i, got, want);
            }
        }

        #[test]
        fn macd_matches_naive_closed_form(mids in price_path(), fast in 1u32..10, extra in 1u32..15, signal in 1u32..10) {
            let slow = fast + extra;
            let mut c = cfg(MomentumVariant::Macd, 10, 0.00001);
            (c.macd_fast, c.macd_slow, c.macd_signal) = (fast, slow, signal);
            let mut m = Momentum::new(&c);
            let x = mids2(&mids);
            for i in 0..x.len() {
                let got = m.on_tick(&tick(mids[i], 0.0));
                // The closed form is O(i²): check a sample of ticks, and the last.
                if i % 7 == 0 || i + 1 == x.len() {
                    let want = naive::macd(&x[..=i], fast as usize, slow as usize, signal as usize, 0.00001);
                    prop_assert!((got - want).abs() < 1e-6, "i={} got={} want={}", i, got, want);
                }
            }
        }

        #[test]
        fn volume_return_matches_naive_recomputation(
            path in proptest::collection::vec((1.0f64..1000.0, prop_oneof![Just(0.0), 0.0f64..5.0]), 1..300),
            lookback in 2u32..25,
        ) {
            let threshold = 0.01;
            let mut m = Momentum::new(&cfg(MomentumVariant::Volume, lookback, threshold));
            let ticks: Vec<Tick> = path.iter().map(|&(mid, v)| tick(mid, v)).collect();
            let x: Vec<i64> = ticks.iter().map(|t| t.mid2().unwrap()).collect();
            let v: Vec<i64> = ticks.iter().map(|t| t.volume.raw()).collect();
            // Truncation to 1e-12 per return, scaled by lookback / threshold.
            let tol = 1e-12 * lookback as f64 / threshold + 1e-12;
            for (i, t) in ticks.iter().enumerate() {
                let got = m.on_tick(t);
                let want = naive::volume_return(&x[..=i], &v[..=i], lookback as usize, threshold);
                prop_assert!((got - want).abs() <= tol, "i={} got={} want={}", i, got, want);
                if let State::Volume(vr) = &m.state
                    && vr.ring.is_full()
                {
                    prop_assert_eq!(vr.sums(), naive::volume_return_sums(&x[..=i], &v[..=i], lookback as usize));
                }
            }
        }
    }
}
