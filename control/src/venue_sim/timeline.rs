//! The broadcast timeline: one sequence of frames for every client, from a capture (paced by its
//! recorded times × `--speed`) or from the synthetic market (paced by its rate), with the
//! scheduled and operator-triggered faults applied on the way out.
//!
//! For each frame, in this order: wait for its time (or, at speed 0, for the slowest client to
//! be within [`HIGH_WATER`] events, yielding every [`YIELD_EVERY`] frames); sit out a stall;
//! send an armed malformed message; apply a diff (or a book ticker) to the server book (always,
//! so snapshots stay consistent with what was *sent*, gaps included); register its update id
//! for wire-to-wire tracing and send the frame unless an armed gap swallows it; let the venue
//! fill resting orders on what the frame showed (a trade, a book change); count it; fire the
//! faults scheduled after that many frames.
//!
//! Runs as one tokio task; allocates freely.

use super::book::Books;
use super::venue::MarketEvent;
use super::wire::{self, Data, Frame, Parsed, Snapshot};
use super::{Event, Shared};
use anyhow::{Context, anyhow};
use axum::extract::ws::Utf8Bytes;
use hft_engine::feed::source::synthetic_params;
use hft_engine::feed::synthetic::SyntheticMarket;
use hft_shared::config::Config;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// At speed 0, the broadcaster waits while the slowest stream client has more than this many
/// events queued: "as fast as possible" means as fast as the clients read.
pub const HIGH_WATER: usize = 1024;
/// At speed 0, the broadcaster yields to the runtime after this many frames.
const YIELD_EVERY: u64 = 64;
/// Longest single wait of a paced timeline (a far-future due time is not an overflow).
const MAX_WAIT: Duration = Duration::from_secs(86_400);

/// One step of a source.
#[derive(Debug)]
pub enum Item {
    /// A stream frame due `at_ns` of timeline time after the start of its pass.
    Frame { at_ns: u64, frame: Frame, data: Data },
    /// A capture's bare snapshot line.
    Snapshot(Snapshot),
    /// A looped capture starts over.
    Restart,
    /// The capture ended.
    End,
    /// The source cannot go on.
    Fatal(anyhow::Error),
}

/// The built-in market: one generator per configured symbol, round-robin, like paper mode.
pub struct Synthetic {
    gens: Vec<SyntheticMarket>,
    next: usize,
    /// Timeline time between two frames, ns (0: as fast as possible).
    interval_ns: u64,
    sent: u64,
}

impl Synthetic {
    /// The generators of `cfg`'s symbols (seeded and priced as paper mode's market is), and
    /// their initial books.
    pub fn new(cfg: &Config, rate: u32, books: &mut Books) -> anyhow::Result<Self> {
        let mut gens = Vec::with_capacity(cfg.symbols.len());
        for params in synthetic_params(cfg) {
            let symbol = &params.symbol;
            let mut g = SyntheticMarket::new(&params);
            let body = String::from_utf8(g.snapshot().to_vec()).context("synthetic snapshot is not UTF-8")?;
            match wire::parse(body).context("synthetic snapshot")? {
                Parsed::Snapshot(s) => books.init(symbol, &s),
                Parsed::Frame { .. } => {
                    return Err(anyhow!("the synthetic snapshot of {symbol} is not a snapshot body"));
                }
            }
            gens.push(g);
        }
        if gens.is_empty() {
            return Err(anyhow!("no symbols configured (config key `symbols`)"));
        }
        let interval_ns = if rate == 0 { 0 } else { 1_000_000_000 / u64::from(rate) };
        Ok(Self { gens, next: 0, interval_ns, sent: 0 })
    }

    fn step(&mut self) -> Item {
        let i = self.next;
        self.next = (i + 1) % self.gens.len();
        let text = match String::from_utf8(self.gens[i].next_frame().0.to_vec()) {
            Ok(t) => t,
            Err(_) => return Item::Fatal(anyhow!("a synthetic frame is not UTF-8")),
        };
        let at_ns = self.sent.saturating_mul(self.interval_ns);
        self.sent += 1;
        match wire::parse(text) {
            Ok(Parsed::Frame { frame, data }) => Item::Frame { at_ns, frame, data },
            Ok(Parsed::Snapshot(_)) => Item::Fatal(anyhow!("the synthetic market produced a snapshot as a frame")),
            Err(e) => Item::Fatal(e.context("a synthetic frame")),
        }
    }
}

/// Where frames come from.
pub enum Source {
    Capture(mpsc::Receiver<Item>),
    Synthetic(Synthetic),
}

impl Source {
    async fn next(&mut self) -> Item {
        match self {
            Source::Capture(rx) => {
                rx.recv().await.unwrap_or_else(|| Item::Fatal(anyhow!("the capture reader stopped unexpectedly")))
            }
            Source::Synthetic(s) => s.step(),
        }
    }
}

/// Faults scheduled on the command line, each fired once when the frame count reaches it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultPlan {
    pub drop_after: Option<u64>,
    pub gap_after: Option<u64>,
    pub malformed_after: Option<u64>,
    pub stall_after: Option<(u64, Duration)>,
}

impl FaultPlan {
    fn fire(&mut self, frames: u64, shared: &Shared) {
        let due = |at: &mut Option<u64>| at.take_if(|n| frames >= *n).is_some();
        if due(&mut self.gap_after) {
            shared.arm_gap();
        }
        if due(&mut self.malformed_after) {
            shared.arm_malformed();
        }
        if let Some((_, d)) = self.stall_after.take_if(|(n, _)| frames >= *n) {
            shared.stall(d);
        }
        if due(&mut self.drop_after) {
            shared.drop_all();
        }
    }
}

/// How the timeline is paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    /// Timeline ns per wall ns; 0 = as fast as the clients read.
    pub speed: f64,
    /// Hold the first frame until this many stream clients are connected.
    pub wait_clients: usize,
}

fn due(origin: Instant, at_ns: u64, speed: f64) -> Instant {
    let wait = Duration::try_from_secs_f64(at_ns as f64 / 1e9 / speed).unwrap_or(MAX_WAIT).min(MAX_WAIT * 365);
    origin.checked_add(wait).unwrap_or(origin + MAX_WAIT)
}

/// Runs the timeline to its end (`Ok`) or to a source failure (`Err`).
pub async fn run(shared: Arc<Shared>, mut source: Source, mut plan: FaultPlan, pace: Pace) -> anyhow::Result<()> {
    if pace.wait_clients > 0 {
        tracing::info!(clients = pace.wait_clients, "waiting for stream clients before the first frame");
        let mut clients = shared.stream_clients.subscribe();
        clients.wait_for(|n| *n >= pace.wait_clients).await.context("client count channel closed")?;
    }
    let mut origin = Instant::now();
    let mut frames = 0u64;
    plan.fire(0, &shared);
    loop {
        let (at_ns, frame, data) = match source.next().await {
            Item::Frame { at_ns, frame, data } => (at_ns, frame, data),
            Item::Snapshot(s) => {
                shared.books().apply_snapshot_line(s);
                continue;
            }
            Item::Restart => {
                shared.books().reset();
                shared.latency.lock().clear_traces();
                shared.stats.loops.fetch_add(1, Ordering::Relaxed);
                origin = Instant::now();
                tracing::info!("the capture starts over (--loop)");
                continue;
            }
            Item::End => {
                shared.stats.ended.store(true, Ordering::Relaxed);
                tracing::info!(frames, "the capture ended; connections stay open");
                return Ok(());
            }
            Item::Fatal(e) => return Err(e),
        };

        if pace.speed > 0.0 {
            tokio::time::sleep_until(due(origin, at_ns, pace.speed).into()).await;
        } else {
            while shared.events.len() > HIGH_WATER {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            if frames.is_multiple_of(YIELD_EVERY) {
                tokio::task::yield_now().await;
            }
        }
        if let Some(until) = shared.stalled_until() {
            let t0 = Instant::now();
            tokio::time::sleep_until(until.into()).await;
            // The recorded pace resumes where it stopped, without a burst.
            origin += t0.elapsed();
        }

        if take_one(&shared.stats.armed_malformed) {
            let bad = Utf8Bytes::from(wire::truncated(frame.text()));
            let _ = shared.events.send(Event::Malformed(bad));
            shared.stats.faults.malformed.fetch_add(1, Ordering::Relaxed);
            tracing::info!(after_frames = frames, "fault: sent a malformed frame");
        }
        let is_diff = matches!(data, Data::Diff(_));
        let market = {
            let mut books = shared.books();
            books.note_symbol(&frame.symbol);
            match data {
                Data::Diff(d) => {
                    books.apply_diff(d);
                    Some(MarketEvent::Book)
                }
                Data::Ticker(t) => {
                    books.note_ticker(&frame.symbol, t);
                    Some(MarketEvent::Book)
                }
                Data::Trade(t) => Some(MarketEvent::Trade(t)),
                Data::Other => None,
            }
        };
        let frame = Arc::new(frame);
        if is_diff && take_one(&shared.stats.armed_gap) {
            shared.stats.faults.gap.fetch_add(1, Ordering::Relaxed);
            tracing::info!(after_frames = frames, stream = &*frame.stream, "fault: skipped a depth diff");
        } else {
            // Registered before it can be sent: an order it causes may arrive at once.
            if let Some(t) = &frame.trace {
                shared.latency.lock().register(&frame.symbol, t.update_id, t.sent_ns.clone());
            }
            // No receiver (no client) is not an error.
            let _ = shared.events.send(Event::Frame(frame.clone()));
        }
        if let Some(ev) = market {
            shared.on_market(&frame.symbol, ev);
        }
        frames += 1;
        shared.stats.frames.store(frames, Ordering::Relaxed);
        plan.fire(frames, &shared);
    }
}

/// Consumes one armed fault, if any.
fn take_one(armed: &std::sync::atomic::AtomicU64) -> bool {
    armed.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times_scale_with_speed_and_never_overflow() {
        let o = Instant::now();
        assert_eq!(due(o, 2_000_000_000, 2.0), o + Duration::from_secs(1));
        assert_eq!(due(o, 1_000_000, 0.5), o + Duration::from_millis(2));
        assert!(due(o, u64::MAX, 1e-300) >= o + MAX_WAIT);
    }

    #[test]
    fn the_synthetic_source_serves_every_symbol_with_an_initial_book() {
        let cfg = Config::from_toml_str("symbols = ['BTCUSDT', 'ETHUSDT']\n[market]\ndepth_levels = 5\n", &|_| None)
            .expect("config");
        let mut books = Books::default();
        let mut s = Synthetic::new(&cfg, 100, &mut books).expect("synthetic");
        for sym in ["BTCUSDT", "ETHUSDT"] {
            assert!(books.snapshot(sym, 5).expect("ready").starts_with("{\"lastUpdateId\":"), "{sym}");
        }
        let mut streams = Vec::new();
        for k in 0..4u64 {
            let Item::Frame { at_ns, frame, .. } = s.step() else { panic!("not a frame") };
            assert_eq!(at_ns, k * 10_000_000);
            streams.push(frame.symbol.to_string());
        }
        assert_eq!(streams, ["BTCUSDT", "ETHUSDT", "BTCUSDT", "ETHUSDT"]);
    }
}
