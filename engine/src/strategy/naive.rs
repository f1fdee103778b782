//! Naive recomputations of every strategy indicator: each call recomputes from the whole
//! window (or, for the recursive indicators, from the whole history, by their closed forms), as
//! one would without running state. They are the reference the strategies' property tests
//! compare against and the baseline of `benches/benches/strategy.rs`.
//!
//! Runs in tests and benchmarks only, never on the hot thread: O(window) to O(history²) per
//! call, and [`Pipeline`] keeps (and grows) the whole history, so it allocates. Inputs are doubled raw mids `x` (`bid + ask`, as [`Tick::mid2`]) and raw
//! per-tick volumes `v`, oldest first; the last element is the current tick.

use super::breakout::{VolumeRule, next_position};
use super::meanreversion::{signal_scale, sum_limit, zscore_from_sums};
use super::momentum::{VolumeReturn, return_signal};
use super::{Decision, MAX_TICK_VOLUME, TARGET_LEVELS, Tick, normalised_weights, target_level};
use hft_shared::config::{BreakoutConfig, Config, FiltersConfig, MarketMakingConfig, MomentumConfig, MomentumVariant};
use hft_shared::{Qty, StrategyKind};

/// A tick's volume as the strategies count it.
fn vol(v: i64) -> i64 {
    v.clamp(0, MAX_TICK_VOLUME)
}

fn clamp(s: f64) -> f64 {
    if s.is_nan() { 0.0 } else { s.clamp(-1.0, 1.0) }
}

// ---- momentum -----------------------------------------------------------------------------------

/// Return over `lookback` ticks / `threshold`; 0 until `lookback + 1` mids exist. (The final
/// formula is the strategy's own, [`return_signal`], so the two agree bit for bit; the tests
/// also compare with the textbook `mid / mid_old − 1`.)
pub fn momentum_return(x: &[i64], lookback: usize, threshold: f64) -> f64 {
    let n = x.len();
    if n <= lookback {
        return 0.0;
    }
    return_signal(x[n - 1], x[n - 1 - lookback], 1.0 / threshold)
}

/// Wilder's RSI as (RSI − 50) / 50 by its closed form: with k = (N − 1) / N over the m changes
/// so far, avg = SMA(first N) × k^(m−N) + Σ_{j>N} change_j / N × k^(m−j). 0 until N changes.
pub fn rsi(x: &[i64], period: usize) -> f64 {
    let m = x.len().saturating_sub(1);
    if period == 0 || m < period {
        return 0.0;
    }
    let n = period as f64;
    let k = (n - 1.0) / n;
    let split = |j: usize| {
        let d = (x[j] - x[j - 1]) as f64;
        if d > 0.0 { (d, 0.0) } else { (0.0, -d) }
    };
    let (mut sg, mut sl) = (0.0, 0.0);
    for j in 1..=period {
        let (g, l) = split(j);
        sg += g;
        sl += l;
    }
    let decay = k.powi((m - period) as i32);
    let (mut g, mut l) = (sg / n * decay, sl / n * decay);
    for j in period + 1..=m {
        let w = k.powi((m - j) as i32) / n;
        let (dg, dl) = split(j);
        g += w * dg;
        l += w * dl;
    }
    if g + l > 0.0 { (g - l) / (g + l) } else { 0.0 }
}

/// EMA (alpha = 2 / (period + 1), seeded with `y[0]`) of the last element, by its closed form
/// (1 − α)^t y₀ + Σ_{i=1..t} α (1 − α)^(t−i) yᵢ.
pub fn ema(y: &[f64], period: usize) -> f64 {
    let Some(t) = y.len().checked_sub(1) else { return 0.0 };
    let a = 2.0 / (period as f64 + 1.0);
    let mut acc = (1.0 - a).powi(t as i32) * y[0];
    for (i, &yi) in y.iter().enumerate().skip(1) {
        acc += a * (1.0 - a).powi((t - i) as i32) * yi;
    }
    acc
}

/// MACD histogram / (`threshold` × mid) from closed-form EMAs over the whole history (O(n²));
/// 0 until `slow + signal` mids exist.
pub fn macd(x: &[i64], fast: usize, slow: usize, signal: usize, threshold: f64) -> f64 {
    let n = x.len();
    if n < slow + signal {
        return 0.0;
    }
    let y: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let m: Vec<f64> = (1..=n).map(|t| ema(&y[..t], fast) - ema(&y[..t], slow)).collect();
    let hist = m[n - 1] - ema(&m, signal);
    clamp(hist / (threshold * x[n - 1] as f64))
}

/// MACD histogram / (`threshold` × mid) by plain EMA recursions over a window (O(window)):
/// the window's first mid seeds the EMAs, so this approximates [`macd`] once the window is a
/// few slow periods long. The benchmark's baseline for the `macd` variant.
pub fn macd_window(window: &[i64], fast: usize, slow: usize, signal: usize, threshold: f64) -> f64 {
    let n = window.len();
    if n < slow + signal {
        return 0.0;
    }
    let (af, a_s, ag) = (2.0 / (fast as f64 + 1.0), 2.0 / (slow as f64 + 1.0), 2.0 / (signal as f64 + 1.0));
    let y0 = window[0] as f64;
    let (mut f, mut s, mut g, mut m) = (y0, y0, 0.0, 0.0);
    for &x in &window[1..] {
        let y = x as f64;
        f += af * (y - f);
        s += a_s * (y - s);
        m = f - s;
        g += ag * (m - g);
    }
    clamp((m - g) / (threshold * window[n - 1] as f64))
}

fn simple_return(prev: i64, x: i64) -> f64 {
    (x as f64 / prev as f64 - 1.0).clamp(-1.0, 1.0)
}

/// Volume-weighted mean of the last `lookback` per-tick returns (float, unquantised) ×
/// `lookback` / `threshold`; 0 without volume or before `lookback` returns.
pub fn volume_return(x: &[i64], v: &[i64], lookback: usize, threshold: f64) -> f64 {
    let n = x.len();
    if n < lookback + 1 {
        return 0.0;
    }
    let (mut svr, mut sv) = (0.0, 0.0);
    for j in n - lookback..n {
        let w = vol(v[j]) as f64;
        svr += w * simple_return(x[j - 1], x[j]);
        sv += w;
    }
    if sv > 0.0 { clamp(svr / sv * lookback as f64 / threshold) } else { 0.0 }
}

/// (Σ v × quantised return, Σ v) over the last `lookback` ticks, with the strategy's quantiser.
pub fn volume_return_sums(x: &[i64], v: &[i64], lookback: usize) -> (i128, i128) {
    let n = x.len();
    let (mut svr, mut sv) = (0i128, 0i128);
    for j in n.saturating_sub(lookback).max(1)..n {
        let w = vol(v[j]) as i128;
        svr += w * VolumeReturn::quantise(x[j - 1], x[j]) as i128;
        sv += w;
    }
    (svr, sv)
}

// ---- mean reversion -----------------------------------------------------------------------------

/// (Σx, Σx²) of a window.
pub fn sums(w: &[i64]) -> (i128, i128) {
    w.iter().fold((0, 0), |(s, q), &x| (s + x as i128, q + x as i128 * x as i128))
}

/// z × `scale` (= [`signal_scale`]) of the last mid against the last `period` mids (sums
/// recomputed); 0 until `period` mids exist or when flat.
pub fn meanreversion(x: &[i64], period: usize, scale: f64) -> f64 {
    let n = x.len();
    if n < period || period == 0 {
        return 0.0;
    }
    let (s, q) = sums(&x[n - period..]);
    match zscore_from_sums(period as i128, x[n - 1], s, q, sum_limit(period as i128)) {
        Some(z) => clamp(z * scale),
        None => 0.0,
    }
}

/// The textbook two-pass z-score of the last element: float mean, then float population
/// variance about it. `None` when flat.
pub fn zscore_two_pass(w: &[i64]) -> Option<f64> {
    let n = w.len() as f64;
    let mean = w.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = w.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    if var > 0.0 { Some((*w.last()? as f64 - mean) / var.sqrt()) } else { None }
}

// ---- breakout -----------------------------------------------------------------------------------

/// (min, max) of the `period` mids before the last, by a scan; `None` until they exist.
pub fn channel(x: &[i64], period: usize) -> Option<(i64, i64)> {
    let t = x.len().checked_sub(1)?;
    if t < period {
        return None;
    }
    let w = &x[t - period..t];
    Some((*w.iter().min()?, *w.iter().max()?))
}

/// (Σ v over the last `volume_period` ticks, Σ v over the `period` ticks before the last).
pub fn breakout_volumes(v: &[i64], period: usize, volume_period: usize) -> (i64, i64) {
    let t = v.len() - 1;
    let sum = |w: &[i64]| w.iter().map(|&x| vol(x)).sum::<i64>();
    (sum(&v[(t + 1).saturating_sub(volume_period)..=t]), sum(&v[t.saturating_sub(period)..t]))
}

/// The breakout position, its channel and volumes rescanned on every tick.
#[derive(Debug, Clone)]
pub struct Breakout {
    period: usize,
    volume_period: usize,
    rule: VolumeRule,
    pos: i8,
}

impl Breakout {
    pub fn new(cfg: &BreakoutConfig) -> Self {
        Self {
            period: cfg.period as usize,
            volume_period: cfg.volume_period as usize,
            rule: VolumeRule::new(cfg.period, cfg.volume_period, cfg.volume_factor),
            pos: 0,
        }
    }

    /// Signal after the last tick of the history `x`, `v`.
    pub fn step(&mut self, x: &[i64], v: &[i64]) -> f64 {
        if let Some((support, resistance)) = channel(x, self.period) {
            let (recent, baseline) = breakout_volumes(v, self.period, self.volume_period);
            let ok = self.rule.confirms(recent, baseline);
            self.pos = next_position(self.pos, x[x.len() - 1], support, resistance, ok);
        }
        self.pos as f64
    }
}

// ---- market making ------------------------------------------------------------------------------

/// The market maker's signal and quotes, from the definitions in float (sizes in integers).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MarketMaking {
    pub signal: f64,
    pub bid_px: f64,
    pub bid_qty: Qty,
    pub ask_px: f64,
    pub ask_qty: Qty,
}

pub fn market_making(t: &Tick, cfg: &MarketMakingConfig, filters: &FiltersConfig) -> MarketMaking {
    let (bid, ask) = (t.bid.to_f64(), t.ask.to_f64());
    let (bq, aq) = (t.bid_qty.raw().max(0) as i128, t.ask_qty.raw().max(0) as i128);
    let mid = (bid + ask) / 2.0;
    // fair − mid with an exact numerator: (2 (bid·aq + ask·bq) − (bid + ask)(aq + bq)) / 2(aq + bq).
    let (b, a) = (t.bid.raw() as i128, t.ask.raw() as i128);
    let lean = if bq + aq > 0 {
        (2 * (b * aq + a * bq) - (b + a) * (aq + bq)) as f64 / (2 * (aq + bq)) as f64 / 1e8
    } else {
        0.0
    };
    let fair = mid + lean;
    let h = cfg.half_spread * mid;
    let pos = t.position.to_f64();
    // The strategy holds max_inventory as a quantity: rounded to 1e-8.
    let max_inventory = Qty::from_f64(cfg.max_inventory).map_or(1e-8, |q| q.to_f64());
    let signal = clamp(lean / h - pos / max_inventory);
    let q = (pos / max_inventory).clamp(-1.0, 1.0);
    let r = fair - cfg.skew * q * h;
    let tick = filters.tick_size;
    let bid_px = ((r - h) / tick).floor() * tick;
    let ask_px = ((r + h) / tick).ceil() * tick;
    let bid_px = bid_px.min(ask - tick);
    let ask_px = ask_px.max(bid + tick);
    let step = Qty::from_f64(filters.step_size).map_or(1, |s| s.raw().max(1));
    let max = Qty::from_f64(cfg.max_inventory).map_or(1, |s| s.raw()) as i128;
    let quote = Qty::from_f64(cfg.quote_qty).map_or(0, |s| s.raw()) as i128;
    let size = |room: i128| Qty((room.min(quote).max(0) / step as i128 * step as i128) as i64);
    let p = t.position.raw() as i128;
    let bid_qty = if bid_px > 0.0 { size(max - p) } else { Qty::ZERO };
    MarketMaking { signal, bid_px, bid_qty, ask_px, ask_qty: size(max + p) }
}

// ---- the whole pipeline -------------------------------------------------------------------------

/// The momentum signal of the last tick of the history `x`, `v` for `m`'s variant: `return` and
/// `volume` over exactly their windows, `rsi` and `macd` over the last [`WINDOW_PERIODS`] periods
/// (approximations of the incremental values: the benchmark's baseline).
pub fn momentum(m: &MomentumConfig, x: &[i64], v: &[i64]) -> f64 {
    match m.variant {
        MomentumVariant::Return => momentum_return(x, m.lookback as usize, m.threshold),
        MomentumVariant::Rsi => {
            let w = WINDOW_PERIODS * m.rsi_period as usize;
            rsi(&x[x.len().saturating_sub(w)..], m.rsi_period as usize)
        }
        MomentumVariant::Macd => {
            let w = WINDOW_PERIODS * (m.macd_slow + m.macd_signal) as usize;
            let win = &x[x.len().saturating_sub(w)..];
            let (f, s, g) = (m.macd_fast as usize, m.macd_slow as usize, m.macd_signal as usize);
            // Before the window fills, the exact warm-up; after, the window's recursion.
            if x.len() < s + g { 0.0 } else { macd_window(win, f, s, g, m.threshold) }
        }
        MomentumVariant::Volume => volume_return(x, v, m.lookback as usize, m.threshold),
    }
}

/// Every strategy of one symbol plus the orchestrator's aggregation, recomputed from the
/// history on every tick: the benchmark's baseline. `rsi` and `macd` look at the last
/// `WINDOW_PERIODS` periods only (so they approximate the incremental values), the others at
/// exactly their windows.
#[derive(Debug, Clone)]
pub struct Pipeline {
    x: Vec<i64>,
    v: Vec<i64>,
    momentum: MomentumConfig,
    mr_period: usize,
    mr_scale: f64,
    breakout: Breakout,
    mm: MarketMakingConfig,
    filters: FiltersConfig,
    slots: [(bool, f64); StrategyKind::COUNT],
    level: i8,
    /// The signals of the last tick, by `StrategyKind` index.
    pub signals: [f64; StrategyKind::COUNT],
}

/// How many periods of history the naive `rsi` and `macd` recompute over.
pub const WINDOW_PERIODS: usize = 8;

impl Pipeline {
    /// `capacity`: ticks to reserve history for (the pipeline allocates beyond it).
    pub fn new(cfg: &Config, capacity: usize) -> Self {
        let s = &cfg.strategies;
        Self {
            x: Vec::with_capacity(capacity),
            v: Vec::with_capacity(capacity),
            momentum: s.momentum.clone(),
            mr_period: s.meanreversion.period as usize,
            mr_scale: signal_scale(&s.meanreversion),
            breakout: Breakout::new(&s.breakout),
            mm: s.marketmaking.clone(),
            filters: cfg.filters.clone(),
            slots: [
                (s.momentum.enabled, s.momentum.weight),
                (s.meanreversion.enabled, s.meanreversion.weight),
                (s.breakout.enabled, s.breakout.weight),
                (s.marketmaking.enabled, s.marketmaking.weight),
            ],
            level: 0,
            signals: [0.0; StrategyKind::COUNT],
        }
    }

    fn momentum(&self) -> f64 {
        momentum(&self.momentum, &self.x, &self.v)
    }

    /// Same contract as [`super::Orchestrator::on_tick`] for one symbol.
    pub fn on_tick(&mut self, t: &Tick) -> Option<Decision> {
        let x = t.mid2()?;
        self.x.push(x);
        self.v.push(t.volume.raw());
        self.signals = [
            self.momentum(),
            meanreversion(&self.x, self.mr_period, self.mr_scale),
            self.breakout.step(&self.x, &self.v),
            market_making(t, &self.mm, &self.filters).signal,
        ];
        // The orchestrator's own aggregation (not an indicator: the same arithmetic, so a signal
        // landing exactly on a level boundary rounds the same way).
        let (norm, contributors) = normalised_weights(self.slots);
        let level = target_level(&norm, &self.signals);
        if level == self.level {
            return None;
        }
        self.level = level;
        Some(Decision { target: level as f64 / TARGET_LEVELS, contributors })
    }

    /// Sets which strategies are active (bit k = `StrategyKind` index k).
    pub fn set_active_mask(&mut self, mask: u8) {
        for (k, slot) in self.slots.iter_mut().enumerate() {
            slot.0 = mask & (1 << k) != 0;
        }
    }
}
