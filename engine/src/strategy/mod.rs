//! Strategies and the orchestrator that combines their signals into a target position.
//!
//! Every strategy exists for every symbol and sees every [`Tick`] (a top-of-book update), so any
//! of them can be activated at run time with its state warm. Dispatch is static (no `dyn` on the
//! hot thread): the orchestrator holds each symbol's four as typed fields ([`Strategies`]), and
//! the [`Strategy`] enum holds one on its own. Strategies are O(1) per tick (amortised O(1) for the rolling max/min), keep their
//! windows in rings allocated in `new`, and return a signal in [-1, 1]: 0 while warming up and 0
//! for a tick that is not a usable book ([`Tick::mid2`] is `None`). No input makes them panic or
//! return NaN.
//!
//! The orchestrator weights the active strategies' signals, maps the aggregate to a target
//! position in steps of `1 / TARGET_LEVELS` of the position limit, and reports the change to the
//! caller, which turns it into an order intent for the risk manager. It also keeps per-strategy
//! counters and splits realized PnL between the strategies that caused an order
//! ([`Orchestrator::shares`], [`Orchestrator::attribute`]).
//!
//! Hot thread; allocates only in `Orchestrator::new` and the strategies' `new`.

pub mod breakout;
pub mod marketmaking;
pub mod meanreversion;
pub mod momentum;
#[doc(hidden)]
pub mod naive;
pub mod window;

use hft_shared::config::Config;
use hft_shared::{Amount, Px, Qty, StrategyKind};

pub use breakout::Breakout;
pub use marketmaking::{MarketMaker, Quotes};
pub use meanreversion::MeanReversion;
pub use momentum::Momentum;

/// Highest price a tick may carry, raw (1e-8 units): 1e7 quote units per base unit. Above it
/// the tick is treated as bad data; the bound keeps `bid + ask` in `i64` and the exact running
/// sums in range (see [`meanreversion::sum_limit`]).
pub const MAX_PX_RAW: i64 = 1_000_000_000_000_000;

/// Largest volume one tick may carry, raw (1e-8 units): 1e6 base units. Larger volumes are
/// clamped to it (bad data), which keeps volume sums over 10000 ticks within `i64`.
pub const MAX_TICK_VOLUME: i64 = 100_000_000_000_000;

/// One top-of-book update of one symbol, as the strategies see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tick {
    pub bid: Px,
    pub ask: Px,
    pub bid_qty: Qty,
    pub ask_qty: Qty,
    /// Base quantity traded since the previous tick of this symbol (read through
    /// [`Tick::volume_raw`]: clamped to [0, `MAX_TICK_VOLUME`]).
    pub volume: Qty,
    /// Current position of this symbol, base quantity (signed).
    pub position: Qty,
}

impl Tick {
    /// `bid + ask` in raw units (twice the mid, so it is exact), or `None` when the top of book
    /// is not usable: a side ≤ 0, crossed (`bid > ask`), or above [`MAX_PX_RAW`].
    #[inline]
    pub fn mid2(&self) -> Option<i64> {
        let (b, a) = (self.bid.raw(), self.ask.raw());
        if b > 0 && b <= a && a <= MAX_PX_RAW { Some(b + a) } else { None }
    }

    /// The traded volume, raw, clamped to [0, [`MAX_TICK_VOLUME`]].
    #[inline]
    pub fn volume_raw(&self) -> i64 {
        self.volume.raw().clamp(0, MAX_TICK_VOLUME)
    }

    /// The mid price, when [`Tick::mid2`] is valid.
    #[inline]
    pub fn mid(&self) -> Option<f64> {
        self.mid2().map(mid2_to_f64)
    }
}

/// A doubled raw mid (`bid + ask`, 1e-8 units) as a price.
#[inline]
pub fn mid2_to_f64(mid2: i64) -> f64 {
    mid2 as f64 / (2.0 * hft_shared::px::SCALE as f64)
}

/// `x` rounded half away from zero, as `f64::round` (exactly: `x − trunc(x)` is exact), without
/// its libm call on baseline x86-64. For |x| < 2^62; NaN gives 0.
#[inline]
pub fn round_half_away(x: f64) -> i64 {
    let t = x as i64;
    let frac = x - t as f64;
    // Without branches: the fraction of an aggregate signal is a coin toss, and a branch on it
    // would be mispredicted on every other tick, after the whole chain of signals it depends on.
    t + i64::from(frac >= 0.5) - i64::from(frac <= -0.5)
}

/// `v` as `f64` without the `__floattidf` call: one conversion when `v` fits in `i64`, else high
/// and low halves (at most 2 roundings, ≤ 1.5 ulp: plenty for an indicator, and deterministic).
#[inline]
pub fn i128_to_f64(v: i128) -> f64 {
    match i64::try_from(v) {
        Ok(small) => small as f64,
        Err(_) => ((v >> 64) as i64) as f64 * 18_446_744_073_709_551_616.0 + (v as u64) as f64,
    }
}

/// Clamps a signal to [-1, 1]; NaN becomes 0.
#[inline]
pub fn clamp_signal(s: f64) -> f64 {
    if s.is_nan() { 0.0 } else { s.clamp(-1.0, 1.0) }
}

/// One strategy instance for one symbol.
#[derive(Debug, Clone)]
pub enum Strategy {
    Momentum(Momentum),
    MeanReversion(MeanReversion),
    Breakout(Breakout),
    MarketMaking(MarketMaker),
}

impl Strategy {
    /// The strategy `kind` with its parameters from `cfg`.
    pub fn new(kind: StrategyKind, cfg: &Config) -> Self {
        let s = &cfg.strategies;
        match kind {
            StrategyKind::Momentum => Strategy::Momentum(Momentum::new(&s.momentum)),
            StrategyKind::MeanReversion => Strategy::MeanReversion(MeanReversion::new(&s.meanreversion)),
            StrategyKind::Breakout => Strategy::Breakout(Breakout::new(&s.breakout)),
            StrategyKind::MarketMaking => Strategy::MarketMaking(MarketMaker::new(&s.marketmaking, &cfg.filters)),
        }
    }

    pub fn kind(&self) -> StrategyKind {
        match self {
            Strategy::Momentum(_) => StrategyKind::Momentum,
            Strategy::MeanReversion(_) => StrategyKind::MeanReversion,
            Strategy::Breakout(_) => StrategyKind::Breakout,
            Strategy::MarketMaking(_) => StrategyKind::MarketMaking,
        }
    }

    /// Feeds a tick; returns the signal in [-1, 1].
    #[inline]
    pub fn on_tick(&mut self, tick: &Tick) -> f64 {
        match self {
            Strategy::Momentum(s) => s.on_tick(tick),
            Strategy::MeanReversion(s) => s.on_tick(tick),
            Strategy::Breakout(s) => s.on_tick(tick),
            Strategy::MarketMaking(s) => s.on_tick(tick),
        }
    }
}

/// From `(active, weight)` per strategy: `weight / Σ weights` for the active strategies with a
/// positive weight (else 0), and the mask of those strategies.
pub fn normalised_weights(slots: [(bool, f64); StrategyKind::COUNT]) -> ([f64; StrategyKind::COUNT], u8) {
    let counts = |(active, w): (bool, f64)| active && w.is_finite() && w > 0.0;
    let total: f64 = slots.iter().filter(|&&s| counts(s)).map(|s| s.1).sum();
    let mut norm = [0.0; StrategyKind::COUNT];
    let mut mask = 0u8;
    for (k, &s) in slots.iter().enumerate() {
        if counts(s) {
            norm[k] = s.1 / total;
            mask |= 1 << k;
        }
    }
    (norm, mask)
}

/// The quantised target level of the signals weighted by `norm`: round(Σ norm × signal ×
/// `TARGET_LEVELS`), in [-TARGET_LEVELS, TARGET_LEVELS].
#[inline]
pub fn target_level(norm: &[f64; StrategyKind::COUNT], signals: &[f64; StrategyKind::COUNT]) -> i8 {
    let mut agg = 0.0;
    for k in 0..StrategyKind::COUNT {
        agg += norm[k] * signals[k];
    }
    // `agg` is in [-1, 1] up to rounding; the clamp makes the level range exact.
    round_half_away(clamp_signal(agg) * TARGET_LEVELS) as i8
}

/// The aggregate signal is mapped to a target of `level / TARGET_LEVELS` × the position limit.
/// Quantising gives the target hysteresis, so noise around zero does not churn orders.
pub const TARGET_LEVELS: f64 = 4.0;

/// [`Orchestrator::shares`] are parts per million: they sum to exactly this.
pub const SHARE_SCALE: u32 = 1_000_000;

/// The four strategies of one symbol as typed fields, in [`StrategyKind::ALL`] order: the
/// orchestrator calls each directly (static dispatch, no `match` per tick); [`Strategy`] holds
/// one of them on its own.
#[derive(Debug, Clone)]
pub struct Strategies {
    pub momentum: Momentum,
    pub meanreversion: MeanReversion,
    pub breakout: Breakout,
    pub marketmaking: MarketMaker,
}

impl Strategies {
    pub fn new(cfg: &Config) -> Self {
        let s = &cfg.strategies;
        Self {
            momentum: Momentum::new(&s.momentum),
            meanreversion: MeanReversion::new(&s.meanreversion),
            breakout: Breakout::new(&s.breakout),
            marketmaking: MarketMaker::new(&s.marketmaking, &cfg.filters),
        }
    }

    /// Feeds a usable tick whose `mid2` is `x` to all four; their signals, by
    /// [`StrategyKind::index`].
    #[inline]
    pub(crate) fn on_mid(&mut self, tick: &Tick, x: i64) -> [f64; StrategyKind::COUNT] {
        [
            self.momentum.on_mid(tick, x),
            self.meanreversion.on_mid(tick, x),
            self.breakout.on_mid(tick, x),
            self.marketmaking.on_mid(tick, x),
        ]
    }
}

// `Strategies::on_mid` lists the strategies in this order.
const _: () = {
    assert!(StrategyKind::Momentum.index() == 0);
    assert!(StrategyKind::MeanReversion.index() == 1);
    assert!(StrategyKind::Breakout.index() == 2);
    assert!(StrategyKind::MarketMaking.index() == 3);
};

/// Per-strategy settings and counters (shared by all symbols).
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    /// Always true: every strategy is instantiated. Kept for the API's sake.
    pub configured: bool,
    pub active: bool,
    /// 0..=10 (config and `set_weight` enforce it).
    pub weight: f64,
    /// The signal of the last tick (of whichever symbol ticked last), in [-1, 1].
    pub last_signal: f64,
    /// Target changes this strategy contributed to.
    pub signals: u64,
    /// Orders this strategy contributed to.
    pub orders: u64,
    /// Realized PnL attributed to this strategy ([`Orchestrator::attribute`]).
    pub realized: Amount,
}

/// Read `slots` freely; change `active` and `weight` only through [`Orchestrator::set_active`]
/// and [`Orchestrator::set_weight`], which keep the normalised weights in step.
#[derive(Debug)]
pub struct Orchestrator {
    /// The strategies of each symbol, by `SymbolId` index.
    per_symbol: Vec<Strategies>,
    pub slots: [Slot; StrategyKind::COUNT],
    /// `weight / Σ weights` of the active strategies with a positive weight, else 0: the
    /// aggregate is Σ norm × signal, with no division per tick.
    norm: [f64; StrategyKind::COUNT],
    /// Bit `k` set when `norm[k] > 0`.
    contributors: u8,
    /// Last quantised target level per symbol, in [-TARGET_LEVELS, TARGET_LEVELS].
    level: Vec<i8>,
}

/// A change of the desired position of one symbol.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// Desired position as a fraction of the position limit, in [-1, 1].
    pub target: f64,
    /// Bit `k` set when strategy `k` was active with non-zero weight.
    pub contributors: u8,
}

impl Orchestrator {
    pub fn new(cfg: &Config) -> Self {
        let s = &cfg.strategies;
        let initial = [
            (s.momentum.enabled, s.momentum.weight),
            (s.meanreversion.enabled, s.meanreversion.weight),
            (s.breakout.enabled, s.breakout.weight),
            (s.marketmaking.enabled, s.marketmaking.weight),
        ];
        let slots = initial.map(|(active, weight)| Slot {
            configured: true,
            active,
            weight,
            last_signal: 0.0,
            signals: 0,
            orders: 0,
            realized: Amount::ZERO,
        });
        let per_symbol = cfg.symbols.iter().map(|_| Strategies::new(cfg)).collect();
        let mut o = Self {
            per_symbol,
            slots,
            norm: [0.0; StrategyKind::COUNT],
            contributors: 0,
            level: vec![0; cfg.symbols.len()],
        };
        o.normalise();
        o
    }

    /// Recomputes `norm` and `contributors` from the slots.
    fn normalise(&mut self) {
        (self.norm, self.contributors) = normalised_weights(self.slots.map(|s| (s.active, s.weight)));
    }

    /// Bit `k` set when strategy `k` is active with a positive weight: it counts in the
    /// aggregate. Zero: no strategy has a say, so there is no target to trade toward.
    pub fn contributors(&self) -> u8 {
        self.contributors
    }

    /// Bit `k` set when strategy `k` is active.
    pub fn active_mask(&self) -> u8 {
        self.slots.iter().enumerate().filter(|(_, s)| s.active).fold(0, |m, (i, _)| m | (1 << i))
    }

    /// Feeds a tick of `symbol` to every strategy (inactive ones keep their state warm) and
    /// returns a decision when the quantised target changed. A tick that is not a usable book
    /// ([`Tick::mid2`] is `None`) and an unknown symbol change nothing and return `None`.
    #[inline]
    pub fn on_tick(&mut self, symbol: usize, tick: &Tick) -> Option<Decision> {
        let x = tick.mid2()?;
        let signals = self.per_symbol.get_mut(symbol)?.on_mid(tick, x);
        for (slot, &signal) in self.slots.iter_mut().zip(&signals) {
            slot.last_signal = signal;
        }
        let level = target_level(&self.norm, &signals);
        let contributors = self.contributors;
        if level == self.level[symbol] {
            return None;
        }
        self.level[symbol] = level;
        for k in 0..StrategyKind::COUNT {
            if contributors & (1 << k) != 0 {
                self.slots[k].signals += 1;
            }
        }
        Some(Decision { target: level as f64 / TARGET_LEVELS, contributors })
    }

    /// The last quantised target of `symbol`, as a fraction of the limit (0 for an unknown
    /// symbol).
    pub fn target(&self, symbol: usize) -> f64 {
        self.level.get(symbol).map_or(0.0, |&l| l as f64 / TARGET_LEVELS)
    }

    /// `None` if the strategy is not configured (never, today); else whether it changed.
    pub fn set_active(&mut self, kind: StrategyKind, active: bool) -> Option<bool> {
        let s = &mut self.slots[kind.index()];
        if !s.configured {
            return None;
        }
        let changed = s.active != active;
        s.active = active;
        self.normalise();
        Some(changed)
    }

    /// `weight` should be finite and in 0..=10 (the caller validates); a weight that is not a
    /// positive number takes the strategy out of the aggregate.
    pub fn set_weight(&mut self, kind: StrategyKind, weight: f64) -> Option<bool> {
        let s = &mut self.slots[kind.index()];
        if !s.configured {
            return None;
        }
        let changed = s.weight != weight;
        s.weight = weight;
        self.normalise();
        Some(changed)
    }

    pub fn count_order(&mut self, contributors: u8) {
        for k in 0..StrategyKind::COUNT {
            if contributors & (1 << k) != 0 {
                self.slots[k].orders += 1;
            }
        }
    }

    /// Each contributor's share of the current weights, in parts per million: strategies in
    /// `contributors` with a positive weight get `weight / Σ weights` rounded down, the last of
    /// them the remainder, so the shares sum to exactly [`SHARE_SCALE`]. All zero when no
    /// contributor has a positive weight. Call it when the order is sent, keep the result with
    /// the order, and hand it to [`Orchestrator::attribute`] with the PnL the order realizes.
    pub fn shares(&self, contributors: u8) -> [u32; StrategyKind::COUNT] {
        let mut shares = [0u32; StrategyKind::COUNT];
        let weight = |k: usize| {
            let w = self.slots[k].weight;
            if contributors & (1 << k) != 0 && w.is_finite() && w > 0.0 { w } else { 0.0 }
        };
        let total: f64 = (0..StrategyKind::COUNT).map(weight).sum();
        let Some(last) = (0..StrategyKind::COUNT).rev().find(|&k| weight(k) > 0.0) else {
            return shares;
        };
        let mut given = 0u32;
        for (k, share) in shares.iter_mut().enumerate().take(last) {
            // w / total ≤ 1, so the floor is ≤ SHARE_SCALE and the sum of floors is too.
            *share = ((weight(k) / total) * SHARE_SCALE as f64).floor() as u32;
            given += *share;
        }
        shares[last] = SHARE_SCALE.saturating_sub(given);
        shares
    }

    /// Splits `delta` (realized PnL of an order) between the strategies by `shares`: each gets
    /// `delta × share / SHARE_SCALE` rounded toward zero, the last strategy with a non-zero
    /// share the remainder, so the attributed parts sum to exactly `delta`. Returns the part
    /// that could not be attributed: all of `delta` when every share is zero, else zero.
    pub fn attribute(&mut self, shares: [u32; StrategyKind::COUNT], delta: Amount) -> Amount {
        let Some(last) = (0..StrategyKind::COUNT).rev().find(|&k| shares[k] > 0) else {
            return delta;
        };
        let scale = SHARE_SCALE as i128;
        let (q, r) = (delta.raw() / scale, delta.raw() % scale);
        let mut given = 0i128;
        for (k, &share) in shares.iter().enumerate().take(last) {
            let s = share.min(SHARE_SCALE) as i128;
            // trunc(delta × s / scale) without overflow: |q·s| ≤ |delta| and |r·s| < 1e12, and
            // q·s + trunc(r·s / scale) is exact because q·s and r·s have the sign of delta.
            let part = q * s + r * s / scale;
            self.slots[k].realized += Amount(part);
            // Wrapping: shares summing past SHARE_SCALE (not from `shares`) must not panic; the
            // parts still sum to `delta` (modulo 2^128).
            given = given.wrapping_add(part);
        }
        self.slots[last].realized += Amount(delta.raw().wrapping_sub(given));
        Amount::ZERO
    }

    /// The market maker's quotes for `symbol`, when it is active and has seen a usable tick.
    pub fn quotes(&self, symbol: usize) -> Option<Quotes> {
        if !self.slots[StrategyKind::MarketMaking.index()].active {
            return None;
        }
        self.per_symbol.get(symbol)?.marketmaking.quotes()
    }

    /// The strategies of `symbol` (for inspection and tests).
    pub fn strategies(&self, symbol: usize) -> Option<&Strategies> {
        self.per_symbol.get(symbol)
    }
}

#[cfg(test)]
mod tests;
