//! `hft replay`: replays capture files through the engine's own decode → book → strategy →
//! risk pipeline, then prints the final book of one symbol (`--dump-book`) or a summary.
//!
//! Runs entirely on the main thread: no hot thread, no control plane, no API. The pipeline is
//! fed by a [`ReplaySource`] (as fast as possible, or paced with `--speed`), each frame stamped
//! with its recorded receive time; the events it emits are drained and discarded as it goes.
//! Set-up allocates; the replay loop does not.
//!
//! stdout carries the result and nothing else: with `--dump-book`, the book lines
//! `B <price> <qty>` (bids best-first) then `A <price> <qty>` (asks best-first), decimals
//! without trailing zeros; without it, a short summary. Every diagnostic (counts, gaps, decode
//! errors, throughput) goes to stderr through the log.
//!
//! The dumped symbol need not be configured: it is put first in `symbols` (so it is `SymbolId`
//! 0, and a snapshot line before any depth diff is attributed to it).
//!
//! Exit codes: 0 done; 1 the dumped book is not valid at the end (a gap without a later
//! snapshot, or never synced — nothing is printed on stdout) or stdout cannot be written;
//! 2 bad configuration, symbol or speed, or an input file that cannot be opened or read.

use crate::Failure;
use anyhow::{Context, anyhow};
use hft_engine::book::SyncState;
use hft_engine::engine::{Counters, Pipeline};
use hft_engine::feed::FrameKind;
use hft_engine::feed::replay::{Pace, ReplayCounters, ReplaySource, stream_name};
use hft_shared::SymbolId;
use hft_shared::config::{Config, Sources};
use hft_shared::msg::Event;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Sleep while a paced replay waits for its next frame.
const PACED_IDLE: Duration = Duration::from_micros(100);

#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct ReplayArgs {
    /// Capture files (`<ns> <json>` per line, gzip or plain), replayed in order.
    #[arg(long, required = true, num_args = 1.., value_name = "FILE")]
    pub input: Vec<PathBuf>,
    /// Print the final book of SYMBOL (`B <price> <qty>` best-first, then `A <price> <qty>`) and
    /// nothing else on stdout.
    #[arg(long, value_name = "SYMBOL")]
    pub dump_book: Option<String>,
    /// Replay at FACTOR times the recorded pace (1 = as recorded) [default: as fast as
    /// possible].
    #[arg(long, value_name = "FACTOR")]
    pub speed: Option<f64>,
}

/// Frames delivered, by what their stream name says.
#[derive(Debug, Default, Clone, Copy)]
struct KindCounts {
    depth: u64,
    book_ticker: u64,
    trade: u64,
    agg_trade: u64,
    snapshot: u64,
    other: u64,
}

impl KindCounts {
    #[inline]
    fn count(&mut self, kind: FrameKind, frame: &[u8]) {
        if let FrameKind::Snapshot(_) = kind {
            self.snapshot += 1;
            return;
        }
        let suffix = stream_name(frame).and_then(|(s, e)| {
            let name = &frame[s..e];
            name.iter().position(|&b| b == b'@').map(|at| &name[at + 1..])
        });
        match suffix {
            Some(b"bookTicker") => self.book_ticker += 1,
            Some(b"trade") => self.trade += 1,
            Some(b"aggTrade") => self.agg_trade += 1,
            Some(k) if k == b"depth" || k.starts_with(b"depth@") => self.depth += 1,
            _ => self.other += 1,
        }
    }
}

impl std::fmt::Display for KindCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "depth {}, bookTicker {}, trade {}, aggTrade {}, snapshot {}, other {}",
            self.depth, self.book_ticker, self.trade, self.agg_trade, self.snapshot, self.other
        )
    }
}

/// What a replay did.
struct Outcome {
    pipeline: Pipeline,
    source: ReplayCounters,
    kinds: KindCounts,
    elapsed: Duration,
}

impl Outcome {
    fn frames_per_s(&self) -> f64 {
        self.source.frames as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

pub fn run(args: ReplayArgs, config: Option<PathBuf>) -> Result<(), Failure> {
    let sources = Sources::resolve(config, &Config::process_env);
    let mut cfg = Config::load(&sources, &Config::process_env)
        .map_err(|e| Failure::usage(anyhow!("invalid configuration: {e}")))?;
    let dump = args.dump_book.as_deref().map(|s| s.trim().to_ascii_uppercase());
    if let Some(sym) = &dump {
        cfg.symbols.retain(|s| s != sym);
        cfg.symbols.insert(0, sym.clone());
        cfg.validate().map_err(|e| Failure::usage(anyhow!("--dump-book {sym}: {e}")))?;
    }
    let pace = args.speed.map_or(Pace::AsFastAsPossible, Pace::Scaled);
    let source = ReplaySource::new(&args.input, &cfg.symbols, pace).map_err(|e| Failure::usage(e.into()))?;

    let out = replay(&cfg, source);
    report(&cfg, &out);
    match dump {
        Some(sym) => dump_book(&out, &sym),
        None => print_summary(&cfg, &out),
    }
}

fn replay(cfg: &Config, mut source: ReplaySource) -> Outcome {
    let (tx, mut rx) = rtrb::RingBuffer::<Event>::new(cfg.engine.event_ring);
    let mut pipeline = Pipeline::new(cfg, tx);
    let mut kinds = KindCounts::default();
    let paced = source.pace() != Pace::AsFastAsPossible;
    let start_raw = pipeline.clock().raw();
    let start = Instant::now();
    loop {
        let now_ns = if paced { pipeline.clock().delta_ns(start_raw, pipeline.clock().raw()) } else { 0 };
        let Some(frame) = source.poll_frame(now_ns) else {
            if source.is_finished() {
                break;
            }
            std::thread::sleep(PACED_IDLE);
            continue;
        };
        kinds.count(frame.kind, frame.bytes);
        let ts_ns = frame.recorded_ns;
        let recv_raw = pipeline.clock().raw();
        let res = pipeline.on_frame(frame.kind, frame.bytes, recv_raw, ts_ns);
        if let Some(sym) = res.resync {
            source.request_snapshot(sym);
        }
        while rx.pop().is_ok() {}
        pipeline.sink().flush(ts_ns);
    }
    let elapsed = start.elapsed();
    if let Some(e) = source.read_error() {
        tracing::warn!("{}; the rest of that file was skipped", chain(e));
    }
    Outcome { pipeline, source: *source.counters(), kinds, elapsed }
}

/// `error: cause: cause…` (what `{:#}` of an `anyhow::Error` shows).
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        text.push_str(": ");
        text.push_str(&s.to_string());
        src = s.source();
    }
    text
}

/// Diagnostics, to stderr.
fn report(cfg: &Config, out: &Outcome) {
    let (s, c, k) = (&out.source, out.pipeline.counters(), &out.kinds);
    tracing::info!(
        "replayed {} frames in {:.3} s ({:.0} frames/s): {k}",
        s.frames,
        out.elapsed.as_secs_f64(),
        out.frames_per_s()
    );
    tracing::info!(
        "lines {}, malformed {} (no space {}, bad time {}, empty {}), diffs held for a snapshot {}, resync requests {}",
        s.lines,
        s.malformed(),
        s.no_space,
        s.bad_ns,
        s.empty_frame,
        s.held,
        s.resync_requests
    );
    tracing::info!(
        "book gaps {}, stale diffs {}, decode errors {}, unknown symbol {}, bad snapshots {}, orders {}, fills {}",
        c.book_gaps,
        c.stale_diffs,
        c.decode_errors_total(),
        c.unknown_symbol,
        c.bad_snapshots,
        c.orders,
        c.fills
    );
    if s.malformed() > 0 || s.unattributed_snapshots > 0 || c.decode_errors_total() > 0 || c.book_gaps > 0 {
        tracing::warn!(
            malformed = s.malformed(),
            unattributed_snapshots = s.unattributed_snapshots,
            decode_errors = c.decode_errors_total(),
            book_gaps = c.book_gaps,
            "the capture is not clean"
        );
    }
    for (i, sym) in cfg.symbols.iter().enumerate() {
        let state = out.pipeline.book_state(SymbolId(i as u16));
        tracing::debug!(symbol = %sym, ?state, "final book state");
    }
}

fn dump_book(out: &Outcome, symbol: &str) -> Result<(), Failure> {
    let book = out.pipeline.book(SymbolId(0));
    if !book.is_valid() {
        let c: &Counters = out.pipeline.counters();
        let why = match book.state() {
            SyncState::AwaitingSnapshot if c.book_gaps > 0 => {
                format!("a gap in the depth diffs ({} in all) was not followed by a snapshot line", c.book_gaps)
            }
            SyncState::AwaitingSnapshot => "no snapshot line of it was found".to_owned(),
            SyncState::AwaitingFirstDiff => "no depth diff followed its last snapshot".to_owned(),
            SyncState::Synced => "it is crossed or one side is empty".to_owned(),
        };
        return Err(Failure::runtime(anyhow!(
            "the book of {symbol} is not valid at the end of the replay: {why} ({} snapshot lines, {} frames)",
            out.source.snapshots,
            out.source.frames
        )));
    }
    let mut w = std::io::BufWriter::new(std::io::stdout().lock());
    let mut write = || -> std::io::Result<()> {
        for l in book.bids.iter() {
            writeln!(w, "B {} {}", l.px, l.qty)?;
        }
        for l in book.asks.iter() {
            writeln!(w, "A {} {}", l.px, l.qty)?;
        }
        w.flush()
    };
    write().context("cannot write the book to stdout")?;
    Ok(())
}

fn print_summary(cfg: &Config, out: &Outcome) -> Result<(), Failure> {
    let (s, c) = (&out.source, out.pipeline.counters());
    let mut text = format!(
        "files {}\nframes {} ({})\nmalformed lines {}\ngaps {}\ndecode errors {}\nelapsed {:.3} s, {:.0} frames/s\n",
        s.files_done,
        s.frames,
        out.kinds,
        s.malformed(),
        c.book_gaps,
        c.decode_errors_total(),
        out.elapsed.as_secs_f64(),
        out.frames_per_s()
    );
    for (i, sym) in cfg.symbols.iter().enumerate() {
        let book = out.pipeline.book(SymbolId(i as u16));
        let line = match (book.is_valid(), book.best_bid(), book.best_ask()) {
            (true, Some(b), Some(a)) => format!("book {sym} valid, bid {} ask {}\n", b.px, a.px),
            _ => format!("book {sym} not valid\n"),
        };
        text.push_str(&line);
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).context("cannot write the summary to stdout")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_counted_by_stream_kind() {
        let mut k = KindCounts::default();
        k.count(FrameKind::Snapshot(SymbolId(0)), b"{\"lastUpdateId\":1}");
        k.count(FrameKind::Stream, br#"{"stream":"btcusdt@depth@100ms","data":{}}"#);
        k.count(FrameKind::Stream, br#"{"stream":"btcusdt@depth","data":{}}"#);
        k.count(FrameKind::Stream, br#"{"stream":"btcusdt@bookTicker","data":{}}"#);
        k.count(FrameKind::Stream, br#"{"stream":"btcusdt@trade","data":{}}"#);
        k.count(FrameKind::Stream, br#"{"stream":"btcusdt@aggTrade","data":{}}"#);
        k.count(FrameKind::Stream, br#"{"stream":"btcusdt@kline_1m","data":{}}"#);
        k.count(FrameKind::Stream, b"not json");
        assert_eq!(k.to_string(), "depth 2, bookTicker 1, trade 1, aggTrade 1, snapshot 1, other 2");
    }
}
