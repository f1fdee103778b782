//! Strategies and the orchestrator that combines their signals into a target position.
//!
//! Strategies are enum-dispatched (no `dyn` on the hot thread), keep their state per symbol,
//! and are O(1) per tick. The orchestrator weights the active strategies' signals, maps the
//! aggregate to a target position in steps of `1 / TARGET_LEVELS` of the position limit, and
//! reports the change to the caller, which turns it into an order intent for the risk manager.
//!
//! Hot thread; allocates only in `Orchestrator::new`.

pub mod momentum;

use hft_shared::StrategyKind;
use hft_shared::config::Config;
pub use momentum::Momentum;

/// One strategy instance for one symbol.
#[derive(Debug, Clone)]
pub enum Strategy {
    Momentum(Momentum),
}

impl Strategy {
    pub fn kind(&self) -> StrategyKind {
        match self {
            Strategy::Momentum(_) => StrategyKind::Momentum,
        }
    }

    /// Feeds a top-of-book update; returns the signal in [-1, 1].
    #[inline]
    pub fn on_quote(&mut self, mid: f64) -> f64 {
        match self {
            Strategy::Momentum(m) => m.on_mid(mid),
        }
    }
}

/// The aggregate signal is mapped to a target of `level / TARGET_LEVELS` × the position limit.
/// Quantising gives the target hysteresis, so noise around zero does not churn orders.
pub const TARGET_LEVELS: f64 = 4.0;

/// Per-strategy settings and counters (shared by all symbols).
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    pub configured: bool,
    pub active: bool,
    pub weight: f64,
    pub last_signal: f64,
    /// Target changes this strategy contributed to.
    pub signals: u64,
    /// Orders this strategy contributed to.
    pub orders: u64,
}

#[derive(Debug)]
pub struct Orchestrator {
    /// `per_symbol[symbol][kind]`.
    per_symbol: Vec<[Option<Strategy>; StrategyKind::COUNT]>,
    pub slots: [Slot; StrategyKind::COUNT],
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
        let m = &cfg.strategies.momentum;
        let mut slots =
            [Slot { configured: false, active: false, weight: 0.0, last_signal: 0.0, signals: 0, orders: 0 };
                StrategyKind::COUNT];
        slots[StrategyKind::Momentum.index()] =
            Slot { configured: true, active: m.enabled, weight: m.weight, last_signal: 0.0, signals: 0, orders: 0 };
        let per_symbol = cfg
            .symbols
            .iter()
            .map(|_| {
                let mut s: [Option<Strategy>; StrategyKind::COUNT] = Default::default();
                s[StrategyKind::Momentum.index()] = Some(Strategy::Momentum(Momentum::new(m)));
                s
            })
            .collect();
        Self { per_symbol, slots, level: vec![0; cfg.symbols.len()] }
    }

    /// Bit `k` set when strategy `k` is active.
    pub fn active_mask(&self) -> u8 {
        self.slots.iter().enumerate().filter(|(_, s)| s.active).fold(0, |m, (i, _)| m | (1 << i))
    }

    /// Feeds a quote for `symbol` to every configured strategy (inactive ones keep their state
    /// warm) and returns a decision when the quantised target changed.
    #[inline]
    pub fn on_quote(&mut self, symbol: usize, mid: f64) -> Option<Decision> {
        let mut num = 0.0;
        let mut den = 0.0;
        let mut contributors = 0u8;
        for (k, strat) in self.per_symbol[symbol].iter_mut().enumerate() {
            if let Some(s) = strat {
                let sig = s.on_quote(mid);
                let slot = &mut self.slots[k];
                slot.last_signal = sig;
                if slot.active && slot.weight > 0.0 {
                    num += slot.weight * sig;
                    den += slot.weight;
                    contributors |= 1 << k;
                }
            }
        }
        let agg = if den > 0.0 { num / den } else { 0.0 };
        let level = (agg * TARGET_LEVELS).round() as i8;
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

    /// The last quantised target of `symbol`, as a fraction of the limit.
    pub fn target(&self, symbol: usize) -> f64 {
        self.level[symbol] as f64 / TARGET_LEVELS
    }

    pub fn set_active(&mut self, kind: StrategyKind, active: bool) -> Option<bool> {
        let s = &mut self.slots[kind.index()];
        if !s.configured {
            return None;
        }
        let changed = s.active != active;
        s.active = active;
        Some(changed)
    }

    pub fn set_weight(&mut self, kind: StrategyKind, weight: f64) -> Option<bool> {
        let s = &mut self.slots[kind.index()];
        if !s.configured {
            return None;
        }
        let changed = s.weight != weight;
        s.weight = weight;
        Some(changed)
    }

    pub fn count_order(&mut self, contributors: u8) {
        for k in 0..StrategyKind::COUNT {
            if contributors & (1 << k) != 0 {
                self.slots[k].orders += 1;
            }
        }
    }
}
