//! Strategy step, ns per tick: the four incremental strategies (all active) plus the
//! orchestrator's aggregation (`Orchestrator::on_tick`) plus the risk manager's per-tick work vs a
//! naive baseline that recomputes every indicator from its whole window on every tick
//! (`strategy::naive::Pipeline`) followed by the same risk work, both measured in the same run
//! over the same ticks; and each momentum variant alone, incremental vs naive.
//!
//! The risk work is marking the position to the new mid (circuit breakers) on every tick, plus
//! the full pre-trade check of an order that passes every check (the slowest path) either when
//! the orchestrator decides, as the engine does (`check_on_decision`), or on every tick, the
//! worst case (`check_every_tick`).
//!
//! Ticks are the real BTCUSDT capture's bookTickers (`HFT_CORPUS_DIR`, or `../shared/data/binance`
//! from the repository root), with the volume of the trades between them; else a generated
//! random walk. stderr says which. A synthetic position path (±0.008 BTC) exercises the market
//! maker's inventory terms.
//!
//! Before timing, the run checks that (a) both paths give the same signals and decisions on
//! every tick, and (b) the incremental path allocates nothing after `Orchestrator::new` (a
//! counting global allocator watches the replay). After the criterion groups it prints one line
//! with both per-tick figures and their ratio (median of 7 alternating runs), and the cost of
//! each strategy alone (fastest of 15 runs; includes its dispatch).

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use flate2::read::GzDecoder;
use hft_engine::risk::{Intent, Position, RiskManager, RiskView};
use hft_engine::strategy::momentum::Momentum;
use hft_engine::strategy::naive::Pipeline;
use hft_engine::strategy::{Orchestrator, Strategy, Tick, naive};
use hft_shared::config::{Config, MomentumVariant};
use hft_shared::{Px, Qty, Side, StrategyKind};
use serde::Deserialize;
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

// ---- a counting allocator, to prove the incremental path allocation-free ---------------------------

struct Counting;
static WATCHING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: delegates every call unchanged to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if WATCHING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if WATCHING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

// ---- the ticks ------------------------------------------------------------------------------------

const CORPUS_FILE: &str = "spot_btcusdt_20240808.gz";

#[derive(Deserialize)]
struct Frame<T> {
    data: T,
}

#[derive(Deserialize)]
struct BookTicker<'a> {
    #[serde(borrow)]
    b: &'a str,
    #[serde(rename = "B")]
    bq: &'a str,
    a: &'a str,
    #[serde(rename = "A")]
    aq: &'a str,
}

#[derive(Deserialize)]
struct Trade<'a> {
    #[serde(borrow)]
    q: &'a str,
}

/// A slowly changing position, so the market maker's skew terms are exercised.
fn position(i: usize) -> Qty {
    Qty(((i / 1000) % 5) as i64 * 400_000 - 800_000)
}

fn corpus_ticks(path: &std::path::Path) -> std::io::Result<Vec<Tick>> {
    let f = std::fs::File::open(path)?;
    let mut ticks = Vec::new();
    let mut volume = 0i64;
    for line in BufReader::new(GzDecoder::new(f)).split(b'\n') {
        let line = line?;
        let Some(sp) = line.iter().position(|&c| c == b' ') else { continue };
        let json = &line[sp + 1..];
        let stream = &json[..json.len().min(48)];
        if stream.windows(7).any(|w| w == b"@trade\"") {
            let Ok(f) = serde_json::from_slice::<Frame<Trade<'_>>>(json) else { continue };
            volume += Qty::parse(f.data.q).map_or(0, Qty::raw);
        } else if stream.windows(12).any(|w| w == b"@bookTicker\"") {
            let Ok(f) = serde_json::from_slice::<Frame<BookTicker<'_>>>(json) else { continue };
            let d = f.data;
            let (Ok(bid), Ok(bid_qty), Ok(ask), Ok(ask_qty)) =
                (Px::parse(d.b), Qty::parse(d.bq), Px::parse(d.a), Qty::parse(d.aq))
            else {
                continue;
            };
            let i = ticks.len();
            ticks.push(Tick { bid, ask, bid_qty, ask_qty, volume: Qty(volume), position: position(i) });
            volume = 0;
        }
    }
    Ok(ticks)
}

/// A BTC-like random walk: one-cent spread, the mid moving on ~1 tick in 10, trades on ~1 in 9.
fn random_walk(n: usize) -> Vec<Tick> {
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut bid = 6_183_763_000_000i64;
    (0..n)
        .map(|i| {
            let r = next();
            if r % 10 == 0 {
                bid += ((r >> 8) % 7) as i64 * 1_000_000 - 3_000_000;
            }
            let volume = if (r >> 16) % 9 == 0 { ((r >> 24) % 5_000_000) as i64 } else { 0 };
            Tick {
                bid: Px(bid),
                ask: Px(bid + 1_000_000),
                bid_qty: Qty(((r >> 32) % 400_000_000) as i64),
                ask_qty: Qty(((r >> 40) % 400_000_000) as i64),
                volume: Qty(volume),
                position: position(i),
            }
        })
        .collect()
}

fn ticks() -> (String, Vec<Tick>) {
    let generated = |why: String| {
        eprintln!("strategy bench: {why}; using a generated random walk of 50000 ticks");
        ("generated random walk".to_string(), random_walk(50_000))
    };
    let Some(path) = hft_benches::corpus_dir(&[CORPUS_FILE]).map(|d| d.join(CORPUS_FILE)) else {
        return generated("Binance corpus not found".into());
    };
    match corpus_ticks(&path) {
        Ok(t) if t.len() > 1000 => {
            eprintln!("strategy bench: {} bookTicker ticks from the Binance corpus {}", t.len(), path.display());
            (format!("Binance corpus {CORPUS_FILE}"), t)
        }
        Ok(t) => generated(format!("only {} ticks in {}", t.len(), path.display())),
        Err(e) => generated(format!("cannot read {} ({e})", path.display())),
    }
}

// ---- checks before timing -------------------------------------------------------------------------

/// Default strategies, all four active.
/// Every strategy active; risk limits wide enough that the benchmarked order passes every check
/// (each tick's check then runs all of them, and records the order for the rate and duplicate
/// checks, as a sent order does).
fn config() -> Config {
    let text = "[strategies.marketmaking]\nenabled = true\n\
                [risk]\nduplicate_window_ms = 0\norders_per_10s = 100000\norders_per_day = 100000000\n";
    Config::from_toml_str(text, &|_| None).expect("config")
}

/// How often the benchmark runs the full pre-trade check.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Checks {
    /// As the engine does: when the orchestrator decides (its target changed).
    OnDecision,
    /// On every tick: the worst case.
    EveryTick,
}

/// The risk manager's work on one tick: mark the position to the new mid (circuit breakers)
/// and, when `check`, the full pre-trade check of a minimum-size buy at the ask (an order that
/// passes every check, so every check runs). Returns whether an order was admitted.
#[inline]
fn risk_step(risk: &mut RiskManager, t: &Tick, i: usize, check: bool) -> bool {
    let Some(mid2) = t.mid2() else { return false };
    let mid = Px(mid2 / 2);
    let pos = [Position::default()];
    // 80 ticks per second of decision time, like the capture.
    let ts_ns = 1_723_161_255_000_000_000 + i as u64 * 12_500_000;
    risk.mark(0, &pos[0], mid, ts_ns);
    if !check {
        return false;
    }
    let view = RiskView {
        positions: &pos,
        marks: &[mid],
        mid,
        open_orders: 0,
        backpressure: false,
        market_ok: true,
        sellable: None,
        spendable: None,
    };
    let intent = Intent { symbol: 0, side: Side::Buy, qty: Qty(100_000), px: t.ask, reduce_only: false, limit: false };
    risk.check(black_box(&intent), &view, ts_ns).is_ok()
}

/// Both paths agree on every tick, and the incremental one does not allocate.
fn check(cfg: &Config, ticks: &[Tick]) {
    let mut orch = Orchestrator::new(cfg);
    let mut pipe = Pipeline::new(cfg, ticks.len());
    let mut risk = RiskManager::new(cfg);
    assert_eq!(orch.active_mask(), 0b1111);
    let (mut decisions, mut signals_nonzero) = (0usize, [0usize; StrategyKind::COUNT]);
    let (mut allocs, mut admitted, mut priced) = (0, 0usize, 0usize);
    for (i, t) in ticks.iter().enumerate() {
        WATCHING.store(true, Ordering::Relaxed);
        let got = orch.on_tick(0, t);
        admitted += risk_step(&mut risk, t, i, true) as usize;
        WATCHING.store(false, Ordering::Relaxed);
        priced += t.mid2().is_some() as usize;
        allocs += ALLOCS.swap(0, Ordering::Relaxed);
        let want = pipe.on_tick(t);
        for (k, nonzero) in signals_nonzero.iter_mut().enumerate() {
            let (a, b) = (orch.slots[k].last_signal, pipe.signals[k]);
            // Market making is float on both sides; the others are bit-exact.
            let ok = if k == StrategyKind::MarketMaking.index() { (a - b).abs() < 1e-9 } else { a == b };
            assert!(ok, "tick {i}: strategy {k} incremental {a} vs naive {b}");
            *nonzero += (a != 0.0) as usize;
        }
        assert_eq!(got, want, "tick {i}: decisions differ");
        decisions += got.is_some() as usize;
    }
    assert_eq!(allocs, 0, "the incremental path allocated {allocs} times after new");
    // Every priced tick's order passed every check: the timed risk path is the full one.
    assert_eq!(admitted, priced, "risk refused some benchmark orders: {:?}", risk.rejects);
    eprintln!(
        "strategy bench: checked {} ticks: identical signals and {decisions} identical decisions; 0 allocations; \
         non-zero signals per strategy {signals_nonzero:?}",
        ticks.len()
    );
}

// ---- benchmarks -----------------------------------------------------------------------------------

fn run_incremental(cfg: &Config, ticks: &[Tick], checks: Checks) -> usize {
    let mut orch = Orchestrator::new(cfg);
    let mut risk = RiskManager::new(cfg);
    let start = Instant::now();
    let mut n = 0;
    for (i, t) in ticks.iter().enumerate() {
        let decided = orch.on_tick(0, black_box(t)).is_some();
        n += risk_step(&mut risk, t, i, decided || checks == Checks::EveryTick) as usize;
    }
    black_box(n);
    start.elapsed().as_nanos() as usize
}

fn run_naive(cfg: &Config, ticks: &[Tick], checks: Checks) -> usize {
    let mut pipe = Pipeline::new(cfg, ticks.len());
    let mut risk = RiskManager::new(cfg);
    let start = Instant::now();
    let mut n = 0;
    for (i, t) in ticks.iter().enumerate() {
        let decided = pipe.on_tick(black_box(t)).is_some();
        n += risk_step(&mut risk, t, i, decided || checks == Checks::EveryTick) as usize;
    }
    black_box(n);
    start.elapsed().as_nanos() as usize
}

/// ns per tick of strategy `kind` alone (fastest of 15 runs over all ticks: the least disturbed
/// by other work on a shared machine).
fn per_strategy(cfg: &Config, ticks: &[Tick], kind: StrategyKind) -> f64 {
    let runs: Vec<usize> = (0..15)
        .map(|_| {
            let mut s = Strategy::new(kind, cfg);
            let start = Instant::now();
            let mut acc = 0.0;
            for t in ticks {
                acc += s.on_tick(black_box(t));
            }
            black_box(acc);
            start.elapsed().as_nanos() as usize
        })
        .collect();
    runs.into_iter().min().unwrap_or(0) as f64 / ticks.len() as f64
}

fn median(mut v: Vec<usize>) -> f64 {
    v.sort_unstable();
    v[v.len() / 2] as f64
}

fn strategy_benches(c: &mut Criterion) {
    let (source, ticks) = ticks();
    let cfg = config();
    check(&cfg, &ticks);
    let n = ticks.len() as u64;

    let mut g = c.benchmark_group("strategy/tick");
    g.throughput(Throughput::Elements(n));
    for (checks, name) in [
        (Checks::OnDecision, "4_strategies+orchestrator+risk(mark,check_on_decision)"),
        (Checks::EveryTick, "4_strategies+orchestrator+risk(mark,check_every_tick)"),
    ] {
        let every = checks == Checks::EveryTick;
        g.bench_function(BenchmarkId::new("incremental", name), |b| {
            b.iter_batched(
                || (Orchestrator::new(&cfg), RiskManager::new(&cfg)),
                |(mut orch, mut risk)| {
                    let mut d = 0usize;
                    for (i, t) in ticks.iter().enumerate() {
                        let decided = orch.on_tick(0, black_box(t)).is_some();
                        d += risk_step(&mut risk, t, i, decided || every) as usize;
                    }
                    d
                },
                BatchSize::LargeInput,
            )
        });
        g.bench_function(BenchmarkId::new("naive", name), |b| {
            b.iter_batched(
                || (Pipeline::new(&cfg, ticks.len()), RiskManager::new(&cfg)),
                |(mut pipe, mut risk)| {
                    let mut d = 0usize;
                    for (i, t) in ticks.iter().enumerate() {
                        let decided = pipe.on_tick(black_box(t)).is_some();
                        d += risk_step(&mut risk, t, i, decided || every) as usize;
                    }
                    d
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();

    // Momentum alone, per variant, on the first 5000 ticks (the naive rsi and macd are slow):
    // the strategy vs `naive::momentum` over a growing history.
    let head = &ticks[..ticks.len().min(5000)];
    let mut g = c.benchmark_group("strategy/momentum");
    g.throughput(Throughput::Elements(head.len() as u64));
    for variant in [MomentumVariant::Return, MomentumVariant::Rsi, MomentumVariant::Macd, MomentumVariant::Volume] {
        let mut m = cfg.strategies.momentum.clone();
        m.variant = variant;
        if variant == MomentumVariant::Macd {
            m.threshold = 0.00002;
        }
        let name = format!("{variant:?}").to_lowercase();
        g.bench_function(BenchmarkId::new("incremental", &name), |b| {
            b.iter_batched(
                || Momentum::new(&m),
                |mut mom| head.iter().map(|t| mom.on_tick(black_box(t))).sum::<f64>(),
                BatchSize::LargeInput,
            )
        });
        g.bench_function(BenchmarkId::new("naive", &name), |b| {
            b.iter_batched(
                || (Vec::with_capacity(head.len()), Vec::with_capacity(head.len())),
                |(mut x, mut v): (Vec<i64>, Vec<i64>)| {
                    let mut acc = 0.0;
                    for t in head {
                        let Some(mid2) = black_box(t).mid2() else { continue };
                        x.push(mid2);
                        v.push(t.volume.raw());
                        acc += naive::momentum(&m, &x, &v);
                    }
                    acc
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();

    // The ratio, measured here too so it is printed in one line (median of 7 alternating runs).
    let summary = |checks: Checks| {
        let (mut inc, mut nai) = (Vec::new(), Vec::new());
        for _ in 0..7 {
            inc.push(run_incremental(&cfg, &ticks, checks));
            nai.push(run_naive(&cfg, &ticks, checks));
        }
        (median(inc) / n as f64, median(nai) / n as f64)
    };
    let (i_ns, n_ns) = summary(Checks::OnDecision);
    let (i_all, n_all) = summary(Checks::EveryTick);
    let each: Vec<String> =
        StrategyKind::ALL.iter().map(|&k| format!("{} {:.1}", k.name(), per_strategy(&cfg, &ticks, k))).collect();
    let risk_alone = (0..15)
        .map(|_| {
            let mut risk = RiskManager::new(&cfg);
            let start = Instant::now();
            let mut ok = 0usize;
            for (i, t) in ticks.iter().enumerate() {
                ok += risk_step(&mut risk, black_box(t), i, true) as usize;
            }
            black_box(ok);
            start.elapsed().as_nanos() as usize
        })
        .min()
        .unwrap_or(0) as f64
        / n as f64;
    eprintln!(
        "strategy bench: each strategy alone, ns/tick: {}; risk mark + full check alone {risk_alone:.1}",
        each.join(", ")
    );
    eprintln!(
        "strategy bench ({source}, {n} ticks), check on decision (the engine's path): incremental {i_ns:.1} \
         ns/tick, naive {n_ns:.1} ns/tick, naive / incremental = {:.1}x; check on every tick: incremental \
         {i_all:.1}, naive {n_all:.1}, {:.1}x",
        n_ns / i_ns,
        n_all / i_all
    );
}

fn criterion_config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(10)
}

criterion_group! {
    name = benches;
    config = criterion_config();
    targets = strategy_benches
}
criterion_main!(benches);
