//! The backtest's pipeline, frames per second on one core: every frame of the capture through
//! `Pipeline::on_frame` (decode → book → strategies → risk → paper fill model → event ring),
//! on recorded time, with the same stage timing as `hft backtest` (1 frame in 16), and the
//! events drained as the backtest drains them. This is `hft backtest`'s inner loop without the
//! input reading and the ledger, measured many times so the figure is a median rather than one
//! 30 ms run on a shared machine.
//!
//! In the same run, for the split: the decoder alone over the same frames (`decode_only`).
//!
//! Data: the real BTCUSDT capture when present (`HFT_CORPUS_DIR`, or `../shared/data/binance`
//! from the repository root; the REST snapshot in it is fed as the snapshot it is), else the
//! built-in market (a snapshot, then 100 000 frames); stderr says which. Frames are held in one
//! contiguous buffer, as the backtest's read-ahead chunks hold them.
//!
//! After the criterion groups it prints one line: frames/s of the full pipeline and of the
//! decoder alone (medians of 15 alternating runs).

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use flate2::read::GzDecoder;
use hft_engine::engine::{BOOK_LEVELS, Pipeline};
use hft_engine::feed::FrameKind;
use hft_engine::feed::decode::{DecodeScratch, decode};
use hft_shared::SymbolId;
use hft_shared::config::{Config, Mode};
use hft_shared::msg::Event;
use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

const CORPUS_FILES: [&str; 2] = ["spot_btcusdt_20240808.gz", "spot_btcusdt_20240809.gz"];
/// As `hft backtest` (`runner::TIMING_EVERY`).
const TIMING_EVERY: u64 = 16;

struct Frames {
    source: String,
    bytes: Vec<u8>,
    /// (recorded ns, is the REST snapshot, start, end) into `bytes`.
    frames: Vec<(u64, bool, usize, usize)>,
}

impl Frames {
    fn push(&mut self, ts: u64, snapshot: bool, body: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(body);
        self.frames.push((ts, snapshot, start, self.bytes.len()));
    }
}

fn corpus() -> Option<Frames> {
    let dir = hft_benches::corpus_dir(&CORPUS_FILES)?;
    let mut out =
        Frames { source: format!("real capture in {}", dir.display()), bytes: Vec::new(), frames: Vec::new() };
    for file in CORPUS_FILES {
        let f = std::fs::File::open(dir.join(file)).ok()?;
        for line in BufReader::new(GzDecoder::new(f)).split(b'\n') {
            let line = line.ok()?;
            let Some(sp) = line.iter().position(|&c| c == b' ') else { continue };
            let Ok(ts) = std::str::from_utf8(&line[..sp]).unwrap_or("").parse::<u64>() else { continue };
            let body = &line[sp + 1..];
            out.push(ts, body.starts_with(b"{\"lastUpdateId\""), body);
        }
    }
    Some(out)
}

fn generated() -> Frames {
    let g = hft_benches::synthetic("BTCUSDT", 1, 100_000);
    let mut out = Frames { source: "the built-in market".into(), bytes: Vec::new(), frames: Vec::new() };
    let t0 = 1_723_161_255_000_000_000u64;
    out.push(t0, true, &g.snapshot);
    for (i, frame) in g.frames.iter().enumerate() {
        out.push(t0 + (i as u64 + 1) * 5_000_000, false, frame);
    }
    out
}

fn config() -> Config {
    let mut cfg = Config::from_toml_str("", &|_| None).expect("the default config is valid");
    cfg.mode = Mode::Backtest;
    cfg
}

/// One backtest's worth of frames through a fresh pipeline (built outside the timing).
fn run_pipeline(data: &Frames, (mut p, mut rx): (Pipeline, rtrb::Consumer<Event>)) -> u64 {
    let clock = p.clock().clone();
    let mut events = 0u64;
    for &(ts, snapshot, start, end) in &data.frames {
        let kind = if snapshot { FrameKind::Snapshot(SymbolId(0)) } else { FrameKind::Stream };
        let recv = if p.next_frame_timed() { clock.raw() } else { 0 };
        black_box(p.on_frame(kind, &data.bytes[start..end], recv, ts));
        while rx.pop().is_ok() {
            events += 1;
        }
        p.sink().flush(ts);
    }
    events + p.counters().orders
}

fn fresh(cfg: &Config) -> (Pipeline, rtrb::Consumer<Event>) {
    let (tx, rx) = rtrb::RingBuffer::<Event>::new(cfg.engine.event_ring.max(1024));
    let mut p = Pipeline::new(cfg, tx);
    p.set_timing_every(TIMING_EVERY);
    (p, rx)
}

fn decode_all(data: &Frames, scratch: &mut DecodeScratch) -> u64 {
    let mut ok = 0;
    for &(_, _, start, end) in &data.frames {
        ok += decode(black_box(&data.bytes[start..end]), scratch).is_ok() as u64;
    }
    ok
}

fn bench(c: &mut Criterion) {
    let data = corpus().unwrap_or_else(|| {
        eprintln!("pipeline bench: the capture is absent; falling back to generated data");
        generated()
    });
    let n = data.frames.len() as u64;
    eprintln!("pipeline bench: {n} frames of {}", data.source);
    let cfg = config();
    // The run must do the work it claims: every frame counted, orders made.
    let check = run_pipeline(&data, fresh(&cfg));
    assert!(check > 0, "the pipeline made no order nor event over the data");

    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(n));
    g.bench_function("decode+book+strategies+risk+fill", |b| {
        b.iter_batched(|| fresh(&cfg), |pr| run_pipeline(&data, pr), BatchSize::PerIteration)
    });
    let mut scratch = DecodeScratch::with_capacity(BOOK_LEVELS);
    g.bench_function("decode_only", |b| b.iter(|| decode_all(&data, &mut scratch)));
    g.finish();

    // One line for the notes: medians of alternating runs.
    let (mut full, mut dec) = (Vec::new(), Vec::new());
    for _ in 0..15 {
        let pr = fresh(&cfg);
        let t = Instant::now();
        black_box(run_pipeline(&data, pr));
        full.push(n as f64 / t.elapsed().as_secs_f64());
        let t = Instant::now();
        black_box(decode_all(&data, &mut scratch));
        dec.push(n as f64 / t.elapsed().as_secs_f64());
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (full, dec) = (median(&mut full), median(&mut dec));
    println!(
        "pipeline: {:.2} M frames/s (decode + book + strategies + risk + fill model; {:.0} ns/frame); \
         decoder alone {:.2} M frames/s ({:.0} ns/frame, {:.0} % of the pipeline); medians of 15 runs over {n} frames",
        full / 1e6,
        1e9 / full,
        dec / 1e6,
        1e9 / dec,
        100.0 * full / dec
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
