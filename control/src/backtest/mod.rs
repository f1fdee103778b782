//! `hft backtest`: replays captures and Binance trade CSVs through the engine's own decode →
//! book → strategy → risk → fill-model pipeline on simulated time, measures the result
//! ([`metrics`]), writes a self-contained HTML report ([`report`]), sweeps parameter grids in
//! parallel ([`sweep`]); and `hft gate`, the go-live criteria ([`gate`]).
//!
//! Runs on the main thread (sweeps on worker threads); allocates freely outside the pipeline.
//!
//! stdout carries the result only: a human summary, or with `--json` one JSON document (an
//! array of them for a sweep, best first). It is deterministic: the same inputs and
//! configuration give byte-identical JSON (no wall-clock figure in it). Throughput and input
//! diagnostics go to stderr through the log; the pipeline's wall-clock latency histograms go to
//! the report only.
//!
//! Exit codes: 0 done; 1 the report or stdout cannot be written; 2 bad configuration, sweep or
//! input (a file that cannot be opened or is of no known format).

pub mod gate;
pub mod input;
pub mod metrics;
pub mod report;
pub mod runner;
pub mod store;
pub mod sweep;

use crate::Failure;
use anyhow::{Context, anyhow};
use hft_shared::config::{Config, Mode, Sources};
use runner::{BacktestResult, Outcome};
use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct BacktestArgs {
    /// Inputs, replayed in order as one stream: captures (`<ns> <json>` per line, as `hft record`
    /// writes) and Binance public-data trades/aggTrades CSVs, gzip or plain.
    #[arg(long, required = true, num_args = 1.., value_name = "FILE")]
    pub input: Vec<PathBuf>,
    /// Write a self-contained HTML report (equity, drawdown, position and latency plots, metrics
    /// and strategy tables) to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Print the result as one JSON document (a sweep: an array, best first).
    #[arg(long)]
    pub json: bool,
    /// Run a grid: KEY is a config path (e.g. strategies.momentum.lookback or
    /// risk.max_position), the values comma-separated. Repeatable: the cartesian product runs,
    /// in parallel, ranked by Sharpe (ties by total PnL).
    #[arg(long, value_name = "KEY=V1,V2,…")]
    pub sweep: Vec<String>,
}

pub fn run(args: BacktestArgs, config: Option<PathBuf>) -> Result<(), Failure> {
    let sources = Sources::resolve(config, &Config::process_env);
    let mut cfg = Config::load(&sources, &Config::process_env)
        .map_err(|e| Failure::usage(anyhow!("invalid configuration: {e}")))?;
    cfg.mode = Mode::Backtest;
    let axes = args.sweep.iter().map(|s| sweep::parse_axis(s)).collect::<Result<Vec<_>, _>>().map_err(usage)?;
    let points = sweep::grid(&axes).map_err(usage)?;
    let variants = sweep::variants(&cfg, points).map_err(usage)?;
    let files = input::inspect(&args.input, &cfg.symbols).map_err(|e| Failure::usage(e.into()))?;
    for f in &files {
        tracing::info!(path = %f.path.display(), format = ?f.format, "input");
    }

    if axes.is_empty() {
        let out = runner::run(&cfg, &files, &[]).map_err(|e| Failure::usage(e.into()))?;
        log_run(&out, None);
        if let Some(path) = &args.report {
            write_report(path, &cfg, &out, &[])?;
        }
        let text = if args.json { json(&out.result)? } else { summary(&out.result) };
        return print(&text);
    }

    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(variants.len());
    tracing::info!("sweep: {} variants on {threads} threads", variants.len());
    let started = std::time::Instant::now();
    let mut outs = Vec::with_capacity(variants.len());
    for (i, r) in sweep::run_all(&variants, &files, threads, args.report.is_some()).into_iter().enumerate() {
        let out = r.map_err(|e| Failure::usage(anyhow::Error::from(e).context(format!("variant {}", i + 1))))?;
        log_run(&out, Some(i + 1));
        outs.push(out);
    }
    let frames: u64 = outs.iter().map(|o| o.perf.frames).sum();
    let el = started.elapsed().as_secs_f64();
    tracing::info!(
        "sweep done in {el:.3} s: {frames} frames in all, {:.0} frames/s over {threads} threads",
        frames as f64 / el.max(1e-9)
    );
    sweep::rank(&mut outs);
    if let Some(path) = &args.report {
        // The best variant in detail, with the ranking.
        write_report(path, &variants_cfg(&variants, &outs[0]).unwrap_or(cfg.clone()), &outs[0], &outs)?;
    }
    let text = if args.json {
        let all: Vec<&BacktestResult> = outs.iter().map(|o| &o.result).collect();
        let mut s = serde_json::to_string_pretty(&all).context("cannot encode the result as JSON")?;
        s.push('\n');
        s
    } else {
        sweep_table(&axes, &outs)
    };
    print(&text)
}

/// The configuration of the variant behind `out`.
fn variants_cfg(variants: &[(sweep::Params, Config)], out: &Outcome) -> Option<Config> {
    variants
        .iter()
        .find(|(p, _)| p.len() == out.result.params.len() && p.iter().all(|(k, v)| out.result.params.get(k) == Some(v)))
        .map(|(_, c)| c.clone())
}

fn usage(msg: String) -> Failure {
    Failure::usage(anyhow!(msg))
}

fn json(r: &BacktestResult) -> Result<String, Failure> {
    let mut s = serde_json::to_string_pretty(r).context("cannot encode the result as JSON")?;
    s.push('\n');
    Ok(s)
}

fn print(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).context("cannot write the result to stdout")?;
    Ok(())
}

fn write_report(path: &std::path::Path, cfg: &Config, out: &Outcome, sweep: &[Outcome]) -> Result<(), Failure> {
    let html = report::render(cfg, out, sweep);
    std::fs::write(path, html).with_context(|| format!("cannot write the report to {}", path.display()))?;
    tracing::info!(path = %path.display(), "report written");
    Ok(())
}

/// Throughput and input diagnostics, to stderr.
fn log_run(out: &Outcome, variant: Option<usize>) {
    let p = &out.perf;
    let label = variant.map_or_else(String::new, |v| format!("variant {v}: "));
    tracing::info!(
        "{label}{} frames: pipeline {:.0} frames/s of CPU time ({:.3} s), {:.0} frames/s of wall time ({:.3} s) \
         (decode + book + strategies + risk + fill model, one thread); median over {} chunks {:.0} frames/s of CPU \
         time; with reading the inputs {:.3} s, {:.0} frames/s",
        p.frames,
        p.frames_per_cpu_s(),
        p.pipeline_cpu.as_secs_f64(),
        p.frames_per_s(),
        p.pipeline.as_secs_f64(),
        p.chunks,
        p.chunk_median_per_cpu_s,
        p.total.as_secs_f64(),
        p.total_frames_per_s()
    );
    let (i, e) = (&out.result.input, &out.result.engine);
    if i.capture_malformed + i.csv_malformed + i.read_errors + i.unattributed_snapshots + e.decode_errors + e.book_gaps
        > 0
    {
        tracing::warn!(
            malformed_capture_lines = i.capture_malformed,
            malformed_csv_lines = i.csv_malformed,
            read_errors = i.read_errors,
            unattributed_snapshots = i.unattributed_snapshots,
            decode_errors = e.decode_errors,
            book_gaps = e.book_gaps,
            "{label}the input is not clean"
        );
    }
    if e.unknown_symbol > 0 {
        tracing::warn!(
            frames = e.unknown_symbol,
            "{label}frames of symbols that are not configured were ignored (symbols = {:?})",
            out.result.symbols
        );
    }
    for w in &out.warnings {
        tracing::warn!("{label}{w}");
    }
}

/// A number with `d` decimals, or `n/a`.
fn num(v: Option<f64>, d: usize) -> String {
    v.filter(|x| x.is_finite()).map_or_else(|| "n/a".to_string(), |x| format!("{x:.d$}"))
}

fn pct(v: Option<f64>) -> String {
    v.filter(|x| x.is_finite()).map_or_else(|| "n/a".to_string(), |x| format!("{:.2} %", x * 100.0))
}

/// The human summary of one result.
pub fn summary(r: &BacktestResult) -> String {
    let m = &r.metrics;
    let mut s = String::new();
    let span = match (&r.start, &r.end) {
        (Some(a), Some(b)) => format!("{a} → {b} ({:.0} s)", m.span_s),
        _ => "no frames".to_string(),
    };
    let _ = writeln!(s, "backtest   {} frames of {} · {span}", r.engine.frames, r.symbols.join(", "));
    for (k, v) in &r.params {
        let _ = writeln!(s, "param      {k} = {v}");
    }
    let _ = writeln!(
        s,
        "pnl        total {} ({}) · realized {} · unrealized {} · equity {} → {}",
        num(Some(m.total_pnl), 2),
        pct(Some(m.ret)),
        num(Some(m.realized_pnl), 2),
        num(Some(m.unrealized_pnl), 2),
        num(Some(m.start_equity), 2),
        num(Some(m.final_equity), 2)
    );
    let _ = writeln!(
        s,
        "ratios     Sharpe {} · Sortino {} · Calmar {} · annualized return {} ({} one-minute bars)",
        num(m.sharpe, 2),
        num(m.sortino, 2),
        num(m.calmar, 2),
        pct(m.annualized_return),
        m.periods
    );
    let _ = writeln!(
        s,
        "drawdown   max {} ({}) · longest {:.0} s",
        pct(Some(m.max_drawdown)),
        num(Some(m.max_drawdown_amount), 2),
        m.max_drawdown_duration_s
    );
    let _ = writeln!(
        s,
        "trades     {} ({} won, {} lost, {} round trips) · win rate {} · profit factor {} · expectancy {}",
        m.trades,
        m.wins,
        m.losses,
        m.round_trips,
        pct(m.win_rate),
        num(m.profit_factor, 2),
        num(m.expectancy, 4)
    );
    let _ = writeln!(
        s,
        "costs      fees {} · slippage {} ({} bp) · volume {} · exposure {}",
        num(Some(m.fees), 2),
        num(Some(m.slippage), 2),
        num(m.slippage_bps, 2),
        num(Some(m.volume), 2),
        pct(Some(m.exposure))
    );
    let rejects: Vec<String> = r.rejects.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(
        s,
        "engine     orders {} · fills {} · rejects {}",
        r.engine.orders,
        r.engine.fills,
        if rejects.is_empty() { "none".to_string() } else { rejects.join(", ") }
    );
    let _ = match &r.kill_switch {
        Some(k) => writeln!(s, "kill       tripped {} time(s), first by {} at {}", r.kill_switch_trips, k.cause, k.at),
        None => writeln!(s, "kill       not tripped"),
    };
    let _ = writeln!(
        s,
        "strategy   {:<14} {:>6} {:>7} {:>9} {:>7} {:>12}",
        "name", "active", "weight", "signals", "orders", "realized"
    );
    for st in &r.strategies {
        let _ = writeln!(
            s,
            "           {:<14} {:>6} {:>7} {:>9} {:>7} {:>12.4}",
            st.name,
            if st.active { "yes" } else { "no" },
            st.weight,
            st.signals,
            st.orders,
            st.realized
        );
    }
    let _ = writeln!(s, "           {:<14} {:>46.4}", "unattributed", r.unattributed_realized);
    for d in &r.daily {
        let _ = writeln!(s, "day        {} pnl {:.2} ({}) · {} trades", d.date, d.pnl, pct(Some(d.ret)), d.trades);
    }
    s
}

/// The ranking of a sweep, as a table.
fn sweep_table(axes: &[sweep::Axis], outs: &[Outcome]) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "{:>4} {:>9} {:>12} {:>9} {:>9} {:>7} {:>9}",
        "rank", "sharpe", "total_pnl", "return", "max_dd", "trades", "win_rate"
    );
    for a in axes {
        let _ = write!(s, "  {}", a.key);
    }
    s.push('\n');
    for o in outs {
        let (r, m) = (&o.result, &o.result.metrics);
        let _ = write!(
            s,
            "{:>4} {:>9} {:>12.4} {:>9} {:>9} {:>7} {:>9}",
            r.rank.unwrap_or(0),
            num(m.sharpe, 3),
            m.total_pnl,
            pct(Some(m.ret)),
            pct(Some(m.max_drawdown)),
            m.trades,
            pct(m.win_rate)
        );
        for a in axes {
            let v = r.params.get(&a.key).map_or("", String::as_str);
            let _ = write!(s, "  {v:>width$}", width = a.key.len());
        }
        s.push('\n');
    }
    s
}
