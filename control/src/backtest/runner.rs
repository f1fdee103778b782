//! One backtest run: the inputs through the engine's own [`Pipeline`] (decode → book →
//! strategies → orchestrator → risk → the paper fill model, [`hft_engine::exec::sim::SimVenue`]),
//! as fast as possible, on simulated time: every frame's decision time is its recorded time
//! (a CSV trade's time), so no wall clock enters a decision. The pipeline's events (orders,
//! fills, risk events) feed a [`Ledger`]; equity is marked to each symbol's mid every second of
//! simulated time and at every fill.
//!
//! Runs on the caller's thread (the main thread, or one sweep worker per variant); allocates at
//! set-up and for the ledger's records, never per frame in the pipeline.
//!
//! What is measured with the wall clock — the pipeline's per-stage latency histograms (one
//! frame in [`TIMING_EVERY`] timed) and the throughput — goes to [`Outcome::latency`] and
//! [`Outcome::perf`], never into [`BacktestResult`], which is a pure function of the inputs and
//! the configuration.

use super::input::{Chunk, Feed, InputCounters, InputError, InputFile};
use super::metrics::{CurvePoint, Day, Fill, Ledger, Metrics, Trade, iso_time};
use hft_engine::engine::Pipeline;
use hft_shared::config::Config;
use hft_shared::msg::{Event, Percentiles, RejectReason, RiskEventKind, Stage};
use hft_shared::{Amount, Px, StrategyKind, SymbolId};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// One frame in this many has its stages timed: reading the clock at every stage would cost
/// about a quarter of the backtest's throughput; a sample still gives the distribution.
pub const TIMING_EVERY: u64 = 16;
/// Quantiles of the latency distribution kept for the report's plot.
pub const LATENCY_QUANTILES: [f64; 11] = [0.0, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 1.0];

/// The deterministic result of a backtest (what `--json` prints).
#[derive(Debug, Clone, Serialize)]
pub struct BacktestResult {
    /// Place in a sweep's ranking (1 = best); absent outside sweeps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rank: Option<usize>,
    /// Config overrides of this variant (`--sweep`), key → value as given.
    pub params: BTreeMap<String, String>,
    pub inputs: Vec<InputInfo>,
    pub symbols: Vec<String>,
    /// First and last decision time (ISO 8601 UTC, and unix ns).
    pub start: Option<String>,
    pub end: Option<String>,
    pub start_ns: u64,
    pub end_ns: u64,
    pub input: InputCounters,
    pub engine: EngineCounters,
    /// Refusals by the risk manager, by reason (non-zero ones).
    pub rejects: BTreeMap<&'static str, u64>,
    /// Times the kill switch tripped (it latches: at most once without a re-arm).
    pub kill_switch_trips: u64,
    pub kill_switch: Option<KillSwitchTrip>,
    pub metrics: Metrics,
    pub daily: Vec<Day>,
    pub strategies: Vec<StrategyRow>,
    /// Realized PnL (net of fees) of orders no strategy sent: kill-switch flattening.
    pub unattributed_realized: f64,
    pub positions: Vec<PositionRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InputInfo {
    pub path: String,
    pub format: super::input::Format,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
}

/// The pipeline's counters.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct EngineCounters {
    pub frames: u64,
    pub decode_errors: u64,
    pub unknown_symbol: u64,
    pub book_gaps: u64,
    pub stale_diffs: u64,
    pub bad_snapshots: u64,
    pub trade_gaps: u64,
    pub diffs_dropped: u64,
    pub signals: u64,
    pub orders: u64,
    /// Reduce-only orders (kill-switch flattening).
    pub flatten_orders: u64,
    pub fills: u64,
    /// Orders the fill model could not take (closed as rejected).
    pub send_failures: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct KillSwitchTrip {
    pub cause: &'static str,
    pub at: String,
    pub at_ns: u64,
}

/// Per-strategy attribution: the orchestrator's exact split of each order's realized PnL by
/// the weights when it was sent.
#[derive(Debug, Clone, Serialize)]
pub struct StrategyRow {
    pub name: &'static str,
    /// Active at the end.
    pub active: bool,
    pub weight: f64,
    pub signals: u64,
    pub orders: u64,
    /// Realized PnL net of fees attributed to it.
    pub realized: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PositionRow {
    pub symbol: String,
    pub qty: f64,
    pub avg_px: f64,
    pub mark: f64,
    pub realized: f64,
    pub unrealized: f64,
    pub fees: f64,
}

/// One stage's latency distribution (wall clock, ns; report only).
#[derive(Debug, Clone)]
pub struct StageLatency {
    pub stage: &'static str,
    pub pct: Percentiles,
    /// `(quantile, ns)` at [`LATENCY_QUANTILES`].
    pub quantiles: Vec<(f64, u64)>,
}

/// Throughput (wall clock; stderr and report only).
#[derive(Debug, Clone, Copy, Default)]
pub struct Perf {
    pub frames: u64,
    /// Time inside the pipeline loop: decode, book, strategies, risk, fill model, event
    /// handling.
    pub pipeline: Duration,
    /// CPU time of this thread inside the pipeline loop: unlike `pipeline`, not inflated by
    /// other processes taking the core away (a shared machine).
    pub pipeline_cpu: Duration,
    /// Everything: reading and decompressing the inputs included.
    pub total: Duration,
    /// The median over the read-ahead chunks (~1000 frames each) of each chunk's frames per
    /// CPU second: the pipeline's rate with a cold start and the chunks another process
    /// disturbed (a shared machine) left out. 0 without chunks.
    pub chunk_median_per_cpu_s: f64,
    /// Chunks behind the median.
    pub chunks: usize,
}

impl Perf {
    pub fn frames_per_s(&self) -> f64 {
        self.frames as f64 / self.pipeline.as_secs_f64().max(1e-9)
    }
    pub fn frames_per_cpu_s(&self) -> f64 {
        self.frames as f64 / self.pipeline_cpu.as_secs_f64().max(1e-9)
    }
    pub fn total_frames_per_s(&self) -> f64 {
        self.frames as f64 / self.total.as_secs_f64().max(1e-9)
    }
}

/// The median of `rates` (0 when empty; the upper middle of an even count).
fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates.get(rates.len() / 2).copied().unwrap_or(0.0)
}

/// Everything one run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub result: BacktestResult,
    pub curve: Vec<CurvePoint>,
    pub trades: Vec<Trade>,
    pub latency: Vec<StageLatency>,
    pub perf: Perf,
    /// Read problems worth a warning.
    pub warnings: Vec<String>,
}

/// Turns the pipeline's events into ledger entries.
#[derive(Debug, Default)]
struct Events {
    /// Decision mid of each order with fills still to come.
    decision: HashMap<u64, Px>,
    flatten_orders: u64,
    kill_trips: u64,
    first_trip: Option<KillSwitchTrip>,
}

impl Events {
    fn on_event(&mut self, e: Event, p: &Pipeline, ledger: &mut Ledger) {
        match e {
            Event::Order(o) => {
                self.decision.insert(o.id.0, o.decision_px);
                if o.reduce_only {
                    self.flatten_orders += 1;
                }
            }
            Event::Fill(f) => {
                let q = p.quote(f.symbol);
                if q.is_valid() {
                    ledger.mark(f.ts_ns, f.symbol.index(), q.mid());
                }
                ledger.fill(&Fill {
                    ts_ns: f.ts_ns,
                    order: f.order.0,
                    symbol: f.symbol.index(),
                    side: f.side,
                    px: f.px,
                    qty: f.qty,
                    fee: f.fee,
                    base_fee: f.base_fee,
                    decision_px: self.decision.get(&f.order.0).copied(),
                });
                if f.last {
                    self.decision.remove(&f.order.0);
                }
            }
            // A filled order's update comes before its last fill, which still needs the price.
            Event::OrderUpdate(u) if u.status.is_final() && u.status != hft_shared::msg::OrderStatus::Filled => {
                self.decision.remove(&u.id.0);
            }
            Event::Risk(r) => {
                if let RiskEventKind::KillSwitch(cause) = r.kind {
                    self.kill_trips += 1;
                    if self.first_trip.is_none() {
                        self.first_trip =
                            Some(KillSwitchTrip { cause: cause.code(), at: iso_time(r.ts_ns), at_ns: r.ts_ns });
                    }
                }
            }
            _ => {}
        }
    }
}

/// Runs one backtest of `cfg` over `files`; `params` are the variant's overrides (reported).
pub fn run(cfg: &Config, files: &[InputFile], params: &[(String, String)]) -> Result<Outcome, InputError> {
    let started = Instant::now();
    let n = cfg.symbols.len();
    let tick = Px::from_f64(cfg.filters.tick_size).unwrap_or(Px(1));
    let mut feed = Feed::new(files, &cfg.symbols, tick);
    let (tx, mut rx) = rtrb::RingBuffer::<Event>::new(cfg.engine.event_ring.max(1024));
    let mut p = Pipeline::new(cfg, tx);
    p.set_timing_every(TIMING_EVERY);
    let clock = p.clock().clone();
    let capital = Amount::from_f64(cfg.capital.total).unwrap_or(Amount::ZERO);
    let mut ledger = Ledger::new(capital, n);
    let mut events = Events::default();
    let mut chunk = Chunk::new();
    let (mut busy, mut busy_cpu) = (Duration::ZERO, Duration::ZERO);
    let mut chunk_rates = Vec::new();
    let (mut first_ts, mut last_ts) = (None, 0u64);
    let mut next_sample = 0u64;
    loop {
        let more = feed.fill(&mut chunk)?;
        let (t0, c0) = (Instant::now(), thread_cpu());
        for i in 0..chunk.len() {
            let (ts, kind, bytes) = chunk.get(i);
            last_ts = ts;
            if ts >= next_sample {
                first_ts.get_or_insert(ts);
                mark_all(&p, &mut ledger, n, ts);
                ledger.observe(ts);
                next_sample = ledger.next_sample_ns();
            }
            let recv = if p.next_frame_timed() { clock.raw() } else { 0 };
            let out = p.on_frame(kind, bytes, recv, ts);
            if let Some(sym) = out.resync {
                feed.request_snapshot(sym);
            }
            while let Ok(e) = rx.pop() {
                events.on_event(e, &p, &mut ledger);
            }
            p.sink().flush(ts);
        }
        if chunk.is_empty() {
            break;
        }
        busy += t0.elapsed();
        let cpu = thread_cpu().saturating_sub(c0);
        busy_cpu += cpu;
        if !cpu.is_zero() {
            chunk_rates.push(chunk.len() as f64 / cpu.as_secs_f64());
        }
        if !more {
            break;
        }
    }
    while let Ok(e) = rx.pop() {
        events.on_event(e, &p, &mut ledger);
    }
    mark_all(&p, &mut ledger, n, last_ts);
    let summary = ledger.finish(last_ts);

    let c = *p.counters();
    let engine = EngineCounters {
        frames: c.frames,
        decode_errors: c.decode_errors_total(),
        unknown_symbol: c.unknown_symbol,
        book_gaps: c.book_gaps,
        stale_diffs: c.stale_diffs,
        bad_snapshots: c.bad_snapshots,
        trade_gaps: c.trade_gaps,
        diffs_dropped: c.diffs_dropped,
        signals: c.signals,
        orders: c.orders,
        flatten_orders: events.flatten_orders,
        fills: c.fills,
        send_failures: c.send_failures,
    };
    let rejects =
        RejectReason::ALL.iter().map(|r| (r.code(), p.risk().rejects[r.index()])).filter(|(_, v)| *v > 0).collect();
    let strategies = StrategyKind::ALL
        .iter()
        .map(|&k| {
            let s = p.orchestrator().slots[k.index()];
            StrategyRow {
                name: k.name(),
                active: s.active,
                weight: s.weight,
                signals: s.signals,
                orders: s.orders,
                realized: s.realized.to_f64(),
            }
        })
        .collect();
    let positions = (0..n)
        .map(|i| {
            let sym = SymbolId(i as u16);
            let pos = p.position(sym);
            let q = p.quote(sym);
            let mark = if q.is_valid() { q.mid() } else { Px::ZERO };
            PositionRow {
                symbol: cfg.symbols[i].clone(),
                qty: pos.qty.to_f64(),
                avg_px: pos.avg_px().to_f64(),
                mark: mark.to_f64(),
                realized: pos.realized_net().to_f64(),
                unrealized: if mark.raw() > 0 { pos.unrealized(mark).to_f64() } else { 0.0 },
                fees: pos.fees.to_f64(),
            }
        })
        .collect();
    let inputs = files
        .iter()
        .map(|f| InputInfo {
            path: f.path.display().to_string(),
            format: f.format,
            symbol: f.symbol.map(|s| cfg.symbols[s.index()].clone()),
        })
        .collect();
    let start_ns = first_ts.unwrap_or(0);
    let result = BacktestResult {
        rank: None,
        params: params.iter().cloned().collect(),
        inputs,
        symbols: cfg.symbols.clone(),
        start: first_ts.map(iso_time),
        end: first_ts.map(|_| iso_time(last_ts)),
        start_ns,
        end_ns: last_ts,
        input: *feed.counters(),
        engine,
        rejects,
        kill_switch_trips: events.kill_trips,
        kill_switch: events.first_trip,
        metrics: summary.metrics,
        daily: summary.daily,
        strategies,
        unattributed_realized: p.unattributed_realized().to_f64(),
        positions,
    };
    let latency = Stage::ALL
        .iter()
        .map(|&s| {
            let pct = p.latency().percentiles(s);
            let h = p.latency().histogram(s);
            let quantiles = if h.is_empty() {
                Vec::new()
            } else {
                LATENCY_QUANTILES.iter().map(|&q| (q, h.value_at_quantile(q))).collect()
            };
            StageLatency { stage: s.name(), pct, quantiles }
        })
        .collect();
    let perf = Perf {
        frames: c.frames,
        pipeline: busy,
        pipeline_cpu: busy_cpu,
        total: started.elapsed(),
        chunks: chunk_rates.len(),
        chunk_median_per_cpu_s: median(chunk_rates),
    };
    Ok(Outcome {
        result,
        curve: summary.curve,
        trades: summary.trades,
        latency,
        perf,
        warnings: feed.warnings().to_vec(),
    })
}

/// Marks every symbol with a valid top of book at its mid.
fn mark_all(p: &Pipeline, ledger: &mut Ledger, n: usize, ts: u64) {
    for i in 0..n {
        let q = p.quote(SymbolId(i as u16));
        if q.is_valid() {
            ledger.mark(ts, i, q.mid());
        }
    }
}

/// CPU time consumed by the calling thread so far (zero if the clock is unavailable).
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one `timespec` through a pointer to a live, writable local;
    // CLOCK_THREAD_CPUTIME_ID needs nothing else.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(u64::try_from(ts.tv_sec).unwrap_or(0), u32::try_from(ts.tv_nsec).unwrap_or(0))
}
