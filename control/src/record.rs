//! `hft record`: connects to the market-data stream (`feed.url`, all configured symbols, with
//! depth snapshots over `feed.api_url` after every connect), and writes every received frame
//! with its receive time as `<unix ns> <json>` lines, gzip — the capture format `hft replay`,
//! `hft venue-sim` and paper mode read.
//!
//! Runs on the main thread with the engine's own non-blocking feed client and capture writer;
//! sleeps briefly when idle (a recorder has no reason to spin). Stops on SIGINT/SIGTERM or after
//! `--duration`.

use crate::Failure;
use anyhow::{Context, anyhow};
use hft_engine::feed::record::Recorder;
use hft_engine::feed::ws::{FeedNotice, LinkKind, WsFeed, WsParams};
use hft_shared::SymbolId;
use hft_shared::config::{Config, Sources};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct RecordArgs {
    /// Capture file to write (gzip).
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
    /// Stop after this many seconds (default: until SIGINT/SIGTERM).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
}

pub fn run(args: RecordArgs, config: Option<PathBuf>) -> Result<(), Failure> {
    let sources = Sources::resolve(config, &Config::process_env);
    let cfg = Config::load(&sources, &Config::process_env)
        .map_err(|e| Failure::usage(anyhow!("invalid configuration: {e}")))?;
    if let Some(d) = args.duration
        && !(d.is_finite() && d > 0.0)
    {
        return Err(Failure::usage(anyhow!("--duration must be a positive number of seconds, not {d}")));
    }
    let mut feed = WsFeed::new(WsParams::from_config(&cfg)).map_err(|e| Failure::usage(anyhow!("{e}")))?;
    let mut rec = Recorder::create(&args.output)
        .with_context(|| format!("cannot create capture file {}", args.output.display()))
        .map_err(Failure::usage)?;

    let stop = Arc::new(AtomicBool::new(false));
    watch_signals(stop.clone())?;
    tracing::info!(symbols = ?cfg.symbols, url = %cfg.feed.url, output = %args.output.display(), "recording");

    let t0 = Instant::now();
    let deadline = args.duration.map(Duration::from_secs_f64);
    let mut connects = 0u64;
    while !stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| t0.elapsed() < d) {
        let now_ns = t0.elapsed().as_nanos() as u64;
        let mut work = 0;
        while let Some((kind, bytes)) = feed.poll(now_ns) {
            rec.record(unix_ns(), kind, bytes);
            work += 1;
            if work == 256 {
                break;
            }
        }
        while let Some(n) = feed.take_notice() {
            match n {
                FeedNotice::Connected { link: LinkKind::Stream } => {
                    connects += 1;
                    tracing::info!(connects, "stream connected; requesting snapshots");
                    for i in 0..cfg.symbols.len() {
                        feed.request_snapshot(SymbolId(i as u16));
                    }
                }
                other => tracing::info!(notice = ?other, "feed"),
            }
        }
        if work == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    let frames = rec.frames();
    let summary = rec.finish().with_context(|| format!("writing {}", args.output.display()))?;
    eprintln!(
        "recorded {frames} frames ({} bytes uncompressed, {} not captured) to {} in {:.1} s",
        summary.bytes,
        summary.dropped,
        args.output.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

fn unix_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// Sets `stop` on SIGINT or SIGTERM (a small runtime on its own thread).
fn watch_signals(stop: Arc<AtomicBool>) -> Result<(), Failure> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("signal runtime")?;
    std::thread::Builder::new()
        .name("hft-signals".into())
        .spawn(move || {
            rt.block_on(async move {
                use tokio::signal::unix::{SignalKind, signal};
                let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
                else {
                    return;
                };
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                stop.store(true, Ordering::Relaxed);
            });
        })
        .context("signal thread")?;
    Ok(())
}
