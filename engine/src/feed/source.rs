//! Frame sources for the duty cycle. Every source yields raw frame bytes, so every mode runs
//! the same decode path. A source never blocks: `poll` returns `None` when nothing is due.
//!
//! Hot thread; allocation-free after construction.

use super::replay::{Pace, ReplayError, ReplaySource};
use super::synthetic::{SyntheticMarket, SyntheticParams};
use super::ws::{FeedNotice, WsFeed};
use hft_shared::config::{Config, MarketSource};
use hft_shared::{Px, SymbolId};

/// What a frame is, as far as the source knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    /// A combined-stream frame (self-describing).
    Stream,
    /// A REST depth snapshot body for this symbol (the body does not name its symbol).
    Snapshot(SymbolId),
}

/// The built-in market: one synthetic generator per symbol, paced at `rate` frames/s
/// (0 = as fast as possible). Snapshots are served first and whenever a resync is requested.
#[derive(Debug)]
pub struct SyntheticSource {
    gens: Vec<SyntheticMarket>,
    /// Symbols whose snapshot is owed to the engine.
    snapshot_due: Vec<bool>,
    rr: usize,
    interval_ns: u64,
    next_due_ns: u64,
}

/// The built-in market of `cfg`: one generator per symbol, each with its own seed derived from
/// `market.seed`, all starting at `market.start_price` on the `filters.tick_size` grid. Paper
/// mode and `hft venue-sim` both serve exactly this market.
pub fn synthetic_params(cfg: &Config) -> Vec<SyntheticParams> {
    let tick = Px::from_f64(cfg.filters.tick_size).filter(|t| t.raw() > 0).unwrap_or(Px(1_000_000));
    let start = Px::from_f64(cfg.market.start_price).unwrap_or(Px::from_int(1));
    let start = Px(start.raw() - start.raw() % tick.raw());
    cfg.symbols
        .iter()
        .enumerate()
        .map(|(i, s)| SyntheticParams {
            symbol: s.clone(),
            seed: cfg.market.seed.wrapping_add(i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            start_price: start,
            tick_size: tick,
            depth_levels: cfg.market.depth_levels as usize,
        })
        .collect()
}

/// When a paced source falls this far behind (a stall), it skips ahead instead of bursting.
const MAX_CATCH_UP_NS: u64 = 1_000_000_000;

impl SyntheticSource {
    pub fn new(cfg: &Config) -> Self {
        let gens = synthetic_params(cfg).iter().map(SyntheticMarket::new).collect::<Vec<_>>();
        let n = gens.len();
        let interval_ns = if cfg.market.rate == 0 { 0 } else { 1_000_000_000 / cfg.market.rate as u64 };
        Self { gens, snapshot_due: vec![true; n], rr: 0, interval_ns, next_due_ns: 0 }
    }

    /// Asks for a fresh snapshot of `symbol` (after a gap).
    pub fn request_snapshot(&mut self, symbol: SymbolId) {
        if let Some(d) = self.snapshot_due.get_mut(symbol.index()) {
            *d = true;
        }
    }

    /// The next frame if one is due at `now_ns` (engine monotonic time).
    #[inline]
    pub fn poll(&mut self, now_ns: u64) -> Option<(FrameKind, &[u8])> {
        if let Some(i) = self.snapshot_due.iter().position(|d| *d) {
            self.snapshot_due[i] = false;
            return Some((FrameKind::Snapshot(SymbolId(i as u16)), self.gens[i].snapshot()));
        }
        if self.interval_ns != 0 {
            if now_ns < self.next_due_ns {
                return None;
            }
            self.next_due_ns =
                if now_ns - self.next_due_ns > MAX_CATCH_UP_NS { now_ns } else { self.next_due_ns } + self.interval_ns;
        }
        let i = self.rr;
        self.rr = if i + 1 == self.gens.len() { 0 } else { i + 1 };
        Some((FrameKind::Stream, self.gens[i].next_frame().0))
    }
}

/// Every source the engine can poll (enum dispatch: no `dyn` on the hot thread).
#[derive(Debug)]
pub enum Source {
    Synthetic(SyntheticSource),
    Replay(ReplaySource),
    /// Live exchange WebSocket (shadow and live modes).
    Ws(Box<WsFeed>),
}

impl Source {
    /// The paper-mode market of `cfg`: synthetic, or capture files.
    pub fn paper(cfg: &Config) -> Result<Self, ReplayError> {
        match cfg.market.source {
            MarketSource::Synthetic => Ok(Source::Synthetic(SyntheticSource::new(cfg))),
            MarketSource::Replay => {
                let pace = if cfg.market.replay_speed == 0.0 {
                    Pace::AsFastAsPossible
                } else if cfg.market.replay_speed == 1.0 {
                    Pace::Recorded
                } else {
                    Pace::Scaled(cfg.market.replay_speed)
                };
                Ok(Source::Replay(ReplaySource::new(&cfg.market.replay_files, &cfg.symbols, pace)?))
            }
        }
    }

    #[inline]
    pub fn poll(&mut self, now_ns: u64) -> Option<(FrameKind, &[u8])> {
        match self {
            Source::Synthetic(s) => s.poll(now_ns),
            Source::Replay(r) => r.poll(now_ns),
            Source::Ws(w) => w.poll(now_ns),
        }
    }

    /// Connection-level news from a live source (connected, dropped, stale…).
    #[inline]
    pub fn take_notice(&mut self) -> Option<FeedNotice> {
        match self {
            Source::Ws(w) => w.take_notice(),
            _ => None,
        }
    }

    pub fn request_snapshot(&mut self, symbol: SymbolId) {
        match self {
            Source::Synthetic(s) => s.request_snapshot(symbol),
            Source::Replay(r) => r.request_snapshot(symbol),
            Source::Ws(w) => w.request_snapshot(symbol),
        }
    }

    /// A finite source that has nothing more to give.
    pub fn is_finished(&self) -> bool {
        match self {
            Source::Synthetic(_) => false,
            Source::Replay(r) => r.is_finished(),
            Source::Ws(_) => false,
        }
    }
}
