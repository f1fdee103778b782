//! Replay harness: pushes N frames through the real hot-path code (`Pipeline::on_frame`:
//! decode → book → strategy → risk → paper fill → event ring) on one thread, and prints
//! frames/s and the engine's own tick-to-order percentiles.
//!
//! Usage: `cargo run --release -p hft-benches --bin replay -- [--frames N] [--seed S]`

use hft_engine::engine::Pipeline;
use hft_engine::feed::FrameKind;
use hft_shared::SymbolId;
use hft_shared::config::Config;
use hft_shared::msg::{Event, Stage};
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let mut frames = 1_000_000usize;
    let mut seed = 7u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--frames" => {
                frames = args.next().and_then(|v| v.parse().ok()).ok_or_else(|| anyhow::anyhow!("--frames N"))?
            }
            "--seed" => seed = args.next().and_then(|v| v.parse().ok()).ok_or_else(|| anyhow::anyhow!("--seed S"))?,
            "-h" | "--help" => {
                println!("replay [--frames N] [--seed S]");
                return Ok(());
            }
            other => anyhow::bail!("unknown argument {other:?} (try --help)"),
        }
    }
    let cfg = Config::from_toml_str("[risk]\norder_cooldown_ms = 0\n", &|_| None)?;
    eprintln!("generating {frames} synthetic frames (seed {seed})…");
    let corpus = hft_benches::synthetic(&cfg.symbols[0], seed, frames);
    let bytes: usize = corpus.frames.iter().map(Vec::len).sum();

    let (tx, mut rx) = rtrb::RingBuffer::<Event>::new(1 << 16);
    let mut p = Pipeline::new(&cfg, tx);
    let clock = p.clock().clone();
    let r = clock.raw();
    p.on_frame(FrameKind::Snapshot(SymbolId(0)), &corpus.snapshot, r, clock.unix_ns_of(r));

    let mut events = 0u64;
    let start = Instant::now();
    for (n, f) in corpus.frames.iter().enumerate() {
        let r = clock.raw();
        p.on_frame(FrameKind::Stream, f, r, clock.unix_ns_of(r));
        if n % 1024 == 0 {
            while rx.pop().is_ok() {
                events += 1;
            }
        }
    }
    let el = start.elapsed();
    while rx.pop().is_ok() {
        events += 1;
    }
    let c = p.counters();
    println!("frames        {}", c.frames);
    println!("bytes         {bytes}");
    println!("elapsed       {:.3} s", el.as_secs_f64());
    println!("frames/s      {:.0}", corpus.frames.len() as f64 / el.as_secs_f64());
    println!("ns/frame      {:.1}", el.as_nanos() as f64 / corpus.frames.len() as f64);
    println!("orders        {}", c.orders);
    println!("fills         {}", c.fills);
    println!("decode errors {}", c.decode_errors_total());
    println!("events        {events}");
    println!("stage          count        p50      p90      p99    p99.9      max   (ns)");
    for s in Stage::ALL {
        let q = p.latency().percentiles(s);
        println!("{:<14} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8}", s.name(), q.count, q.p50, q.p90, q.p99, q.p999, q.max);
    }
    Ok(())
}
