//! Breakout: trade the mid leaving its recent channel on volume.
//!
//! The channel is the min (support) and max (resistance) of the previous `period` mids, the
//! current one excluded. The rule, evaluated on every tick once `period` previous mids exist:
//!
//! 1. mid > resistance and volume confirms → long (+1);
//! 2. else mid < support and volume confirms → short (−1);
//! 3. else a long exits (0) once mid ≤ the channel midpoint, a short once mid ≥ it;
//! 4. else the position is held.
//!
//! The channel rolls, so after a breakout it follows the price and its midpoint acts as a
//! trailing exit. Volume confirms when the base volume traded over the last `volume_period`
//! ticks (current included) is positive and ≥ `volume_factor` × the channel's average volume per
//! tick (over the same previous `period` ticks) × `volume_period`; `volume_factor = 0` turns the
//! confirmation off. The signal is the position: −1, 0 or +1.
//!
//! Rolling max/min are monotonic deques (amortised O(1)). The volume sums are differences of a
//! cumulative volume kept in wrapping `i64` arithmetic over a power-of-two ring: a window's sum
//! is exact whenever it fits in `i64`, which it does (per-tick volumes are clamped to
//! `MAX_TICK_VOLUME`, so a sum of 10000 fits). The confirmation is computed only for a mid
//! outside the channel, in integers (`volume_factor` in parts per million).
//!
//! Hot thread; allocates only in `new`.

use super::Tick;
use super::window::MonoDeque;
use hft_shared::config::BreakoutConfig;

#[derive(Debug, Clone)]
pub struct Breakout {
    period: u64,
    volume_period: usize,
    rule: VolumeRule,
    /// Index of the next tick (valid ticks seen).
    t: u64,
    hi: MonoDeque<true>,
    lo: MonoDeque<false>,
    /// Cumulative volume (wrapping) after tick `i`, at `i & mask`: the last `period + 2` are
    /// held (the ring is at least that long); slots of ticks before the first hold 0.
    cum: Vec<i64>,
    /// `cum.len() - 1`; the length is a power of two.
    mask: usize,
    /// Cumulative volume (wrapping) after the previous tick.
    total: i64,
    /// Σ volume over the last `volume_period` ticks, current included (≤ 1e18).
    recent: i64,
    /// Σ volume over the `period` ticks before the current one (≤ 1e18).
    baseline: i64,
    pos: i8,
    /// (support, resistance) the last tick was judged against, doubled raw mids.
    channel: Option<(i64, i64)>,
}

/// The volume confirmation: `recent` volume (over `volume_period` ticks) confirms a breakout of
/// a channel that traded `baseline` over `period` ticks when `recent > 0` and
/// `recent × period ≥ volume_factor × baseline × volume_period`, in integers (`volume_factor`
/// in parts per million); `volume_factor = 0` confirms everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolumeRule {
    /// period × 1e6 (≤ 1e10).
    recent_mul: i64,
    /// volume_factor × 1e6 × volume_period (≤ 1e12).
    baseline_mul: i64,
}

impl VolumeRule {
    pub fn new(period: u32, volume_period: u32, volume_factor: f64) -> Self {
        let factor_ppm = (volume_factor.clamp(0.0, 1e4) * 1e6).round() as i64;
        Self { recent_mul: period as i64 * 1_000_000, baseline_mul: factor_ppm * volume_period as i64 }
    }

    /// Volumes are sums of at most 10000 clamped tick volumes (≤ 1e18): the products fit in
    /// i128 with a single widening multiply each.
    #[inline]
    pub fn confirms(&self, recent: i64, baseline: i64) -> bool {
        self.baseline_mul == 0
            || (recent > 0 && recent as i128 * self.recent_mul as i128 >= baseline as i128 * self.baseline_mul as i128)
    }
}

/// The breakout rule (module docs) for mid `x` against the channel `[support, resistance]`.
#[inline]
pub fn next_position(pos: i8, x: i64, support: i64, resistance: i64, confirmed: bool) -> i8 {
    if confirmed && x > resistance {
        1
    } else if confirmed && x < support {
        -1
    } else {
        // 2x vs support + resistance: the midpoint without rounding (usable mids are ≤ 2e15).
        let twice_mid = support.saturating_add(resistance);
        match pos {
            1 if x.saturating_mul(2) <= twice_mid => 0,
            -1 if x.saturating_mul(2) >= twice_mid => 0,
            p => p,
        }
    }
}

impl Breakout {
    pub fn new(cfg: &BreakoutConfig) -> Self {
        let period = cfg.period.clamp(1, 10_000) as usize;
        let volume_period = (cfg.volume_period as usize).clamp(1, period);
        Self {
            period: period as u64,
            volume_period,
            rule: VolumeRule::new(period as u32, volume_period as u32, cfg.volume_factor),
            t: 0,
            hi: MonoDeque::new(period + 1),
            lo: MonoDeque::new(period + 1),
            cum: vec![0; (period + 2).next_power_of_two()],
            mask: (period + 2).next_power_of_two() - 1,
            total: 0,
            recent: 0,
            baseline: 0,
            pos: 0,
            channel: None,
        }
    }

    /// Feeds one tick; returns the position signal (−1, 0 or +1).
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
        let t = self.t;
        self.t += 1;

        // Volumes: recent = C(t) − C(t − volume_period), baseline = C(t − 1) − C(t − 1 − period),
        // with C the cumulative volume. Indices below 0 land on slots not written yet (the ring
        // holds more than period + 1), which hold 0 = C(< 0). Wrapping differences are exact.
        let at = |i: u64| i as usize & self.mask;
        let before = self.total;
        self.total = before.wrapping_add(tick.volume_raw());
        self.cum[at(t)] = self.total;
        self.recent = self.total.wrapping_sub(self.cum[at(t.wrapping_sub(self.volume_period as u64))]);
        self.baseline = before.wrapping_sub(self.cum[at(t.wrapping_sub(self.period + 1))]);

        // Channel over ticks t − period ..= t − 1, then the current mid joins it for the next.
        // The window start moves by one per tick: at most one entry leaves each deque.
        let first = t.saturating_sub(self.period);
        self.hi.evict_one_before(first);
        self.lo.evict_one_before(first);
        self.channel = None;
        if t >= self.period
            && let (Some(support), Some(resistance)) = (self.lo.extreme(), self.hi.extreme())
        {
            // Only a mid outside the channel needs the volume's verdict.
            let outside = x > resistance || x < support;
            let confirmed = outside && self.rule.confirms(self.recent, self.baseline);
            self.pos = next_position(self.pos, x, support, resistance, confirmed);
            self.channel = Some((support, resistance));
        }
        // Most ticks repeat the last mid (size-only updates): refresh instead of a pop loop.
        if !self.hi.push_repeat(t, x) {
            self.hi.push(t, x);
        }
        if !self.lo.push_repeat(t, x) {
            self.lo.push(t, x);
        }
        self.pos as f64
    }

    /// (support, resistance) of the channel the last usable tick was judged against, in doubled
    /// raw mids (`bid + ask`); `None` while warming up.
    pub fn channel(&self) -> Option<(i64, i64)> {
        self.channel
    }

    /// (volume over the last `volume_period` ticks, volume over the `period` ticks before the
    /// current), raw base quantity.
    pub fn volumes(&self) -> (i64, i64) {
        (self.recent, self.baseline)
    }

    /// The held position: −1, 0 or +1.
    pub fn position(&self) -> i8 {
        self.pos
    }
}

#[cfg(test)]
mod tests {
    use super::super::naive;
    use super::*;
    use hft_shared::{Px, Qty};
    use proptest::prelude::*;

    fn cfg(period: u32, volume_period: u32, volume_factor: f64) -> BreakoutConfig {
        BreakoutConfig { enabled: true, weight: 1.0, period, volume_period, volume_factor }
    }

    /// A tick with mid `mid` (raw; bid = ask) and `volume` raw traded.
    fn tick(mid: i64, volume: i64) -> Tick {
        Tick { bid: Px(mid), ask: Px(mid), volume: Qty(volume), ..Tick::default() }
    }

    #[test]
    fn breaks_out_on_volume_holds_then_exits_at_the_midpoint() {
        let mut b = Breakout::new(&cfg(4, 1, 2.0));
        // Channel 100..=104, 1 lot a tick.
        for m in [100, 104, 102, 101] {
            assert_eq!(b.on_tick(&tick(m, 1)), 0.0);
        }
        // Above resistance but volume 1 < 2 × average 1: no breakout.
        assert_eq!(b.on_tick(&tick(106, 1)), 0.0);
        assert_eq!(b.channel(), Some((200, 208)));
        // Above the (new) resistance 106 on volume 3 ≥ 2 × 1: long.
        assert_eq!(b.on_tick(&tick(107, 3)), 1.0);
        // Held inside the channel above its midpoint: channel 101..=107, midpoint 104.
        assert_eq!(b.on_tick(&tick(105, 0)), 1.0);
        // Channel 101..=107 (ticks 104, 102... gone): at the midpoint 104 → flat.
        assert_eq!(b.on_tick(&tick(104, 0)), 0.0);
        // Below support (104) needs volume: recent 5 vs 2 × baseline (1+3+0+0)/4 × 1 = 2.
        assert_eq!(b.on_tick(&tick(103, 5)), -1.0);
        assert_eq!(b.position(), -1);
    }

    #[test]
    fn factor_zero_needs_no_volume_and_bad_ticks_change_nothing() {
        let mut b = Breakout::new(&cfg(3, 1, 0.0));
        for m in [10, 11, 12] {
            b.on_tick(&tick(m, 0));
        }
        assert_eq!(b.on_tick(&tick(13, 0)), 1.0);
        let state = (b.channel(), b.volumes(), b.position());
        assert_eq!(b.on_tick(&Tick::default()), 0.0);
        assert_eq!(b.on_tick(&tick(-1, 5)), 0.0);
        assert_eq!((b.channel(), b.volumes(), b.position()), state);
        // And with a factor, zero volume never confirms, even over a zero-volume channel.
        let mut b = Breakout::new(&cfg(3, 1, 1.0));
        for m in [10, 11, 12, 13, 14] {
            assert_eq!(b.on_tick(&tick(m, 0)), 0.0);
        }
    }

    #[test]
    fn confirmation_and_rule_by_hand() {
        // recent 3 over 2 ticks vs baseline 10 over 10 ticks: 3 × 10 ≥ 1.5 × 10 × 2.
        let rule = VolumeRule::new(10, 2, 1.5);
        assert!(rule.confirms(3, 10));
        assert!(!rule.confirms(2, 10));
        assert!(!rule.confirms(0, 0));
        assert!(VolumeRule::new(10, 2, 0.0).confirms(0, 0));
        // Extremes do not overflow.
        assert!(VolumeRule::new(10_000, 10_000, 100.0).confirms(1_000_000_000_000_000_000, 1));
        assert!(!VolumeRule::new(10_000, 10_000, 100.0).confirms(1, 1_000_000_000_000_000_000));
        assert_eq!(next_position(0, 11, 0, 10, true), 1);
        assert_eq!(next_position(0, 11, 0, 10, false), 0);
        assert_eq!(next_position(1, 6, 0, 10, false), 1);
        assert_eq!(next_position(1, 5, 0, 10, false), 0);
        assert_eq!(next_position(-1, 4, 0, 10, false), -1);
        assert_eq!(next_position(-1, 5, 0, 11, false), -1); // midpoint 5.5: 5 < 5.5, still short
        assert_eq!(next_position(-1, 6, 0, 11, false), 0);
        assert_eq!(next_position(1, -1, 0, 10, true), -1);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn matches_naive_recomputation(
            path in proptest::collection::vec((-30i64..30, prop_oneof![2 => Just(0i64), 1 => 0i64..1000]), 1..300),
            period in 2u32..30,
            vp_frac in 0.0f64..1.0,
            factor in prop_oneof![Just(0.0), 0.0f64..4.0],
            bad_every in 5usize..50,
        ) {
            let volume_period = 1 + ((period - 1) as f64 * vp_frac) as u32;
            let c = cfg(period, volume_period, factor);
            let mut b = Breakout::new(&c);
            let mut n = naive::Breakout::new(&c);
            let (mut x, mut v) = (Vec::new(), Vec::new());
            let mut mid = 6_000_000_000_000i64;
            for (i, &(step, vol)) in path.iter().enumerate() {
                if i % bad_every == 0 {
                    // An unusable book in between: skipped by both.
                    prop_assert_eq!(b.on_tick(&Tick { bid: Px(mid), ask: Px(mid - 1), ..Tick::default() }), 0.0);
                }
                mid += step * 1_000_000;
                let t = tick(mid, vol);
                x.push(t.mid2().unwrap());
                v.push(vol);
                let got = b.on_tick(&t);
                let want = n.step(&x, &v);
                prop_assert_eq!(got, want, "i={}", i);
                prop_assert_eq!(b.channel(), naive::channel(&x, period as usize), "i={}", i);
                prop_assert_eq!(b.volumes(), naive::breakout_volumes(&v, period as usize, volume_period as usize), "i={}", i);
            }
        }
    }
}
