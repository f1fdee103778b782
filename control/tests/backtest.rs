//! End-to-end: the real `hft backtest` and `hft gate` binaries — determinism, the real BTCUSDT
//! corpus (when present) or a capture generated here, Binance trade CSVs of both timestamp
//! eras, sweeps, the HTML report rendered by headless Chromium, the go-live gate from a result
//! and from a store, and live mode's refusal to start without a passing gate.
//!
//! Each run uses a fresh temp working directory and a cleared environment. The corpus lives
//! outside the project: `HFT_CORPUS_DIR`, else `../shared/data/binance` from the repository
//! root; when it is absent the test says so and uses a capture generated from the synthetic
//! market. The browser check needs `chromium` (Debian's package); it is skipped, saying why,
//! only when `HFT_SKIP_BROWSER=1`.

mod common;

use common::hft;
use hft_engine::feed::synthetic::{SyntheticMarket, SyntheticParams};
use hft_shared::Px;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const CORPUS_FILES: [&str; 2] = ["spot_btcusdt_20240808.gz", "spot_btcusdt_20240809.gz"];

/// Strategies that trade often, so that small inputs make orders.
const EAGER: &str = "[strategies.momentum]\nlookback = 2\nthreshold = 0.000001\n[risk]\norder_cooldown_ms = 100\n";

fn run(dir: &Path, args: &[&str]) -> Output {
    hft(dir).args(args).stdin(Stdio::null()).output().expect("run hft")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json(out: &Output) -> Value {
    assert!(out.status.success(), "exit {:?}; stderr:\n{}", out.status, text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out.stdout)))
}

fn corpus_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("HFT_CORPUS_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/binance")),
    };
    CORPUS_FILES.iter().all(|f| dir.join(f).is_file()).then_some(dir)
}

/// A capture of the synthetic BTCUSDT market: its snapshot, then `frames` stream frames, each
/// stamped with its market time.
fn generated_capture(dir: &Path, frames: usize) -> PathBuf {
    let mut m = SyntheticMarket::new(&SyntheticParams {
        symbol: "BTCUSDT".into(),
        seed: 11,
        start_price: Px::from_int(60_000),
        tick_size: Px::parse("0.01").unwrap(),
        depth_levels: 50,
    });
    let mut out = Vec::new();
    let t0 = m.market_time_ns();
    out.extend_from_slice(format!("{t0} ").as_bytes());
    out.extend_from_slice(m.snapshot());
    out.push(b'\n');
    for _ in 0..frames {
        let (f, t) = m.next_frame();
        out.extend_from_slice(format!("{t} ").as_bytes());
        out.extend_from_slice(f);
        out.push(b'\n');
    }
    let path = dir.join("generated.capture");
    std::fs::write(&path, out).expect("write capture");
    path
}

/// The corpus when present (said on stderr), else a generated capture.
fn market_inputs(dir: &Path) -> Vec<String> {
    match corpus_dir() {
        Some(c) => {
            eprintln!("using the real BTCUSDT corpus in {}", c.display());
            CORPUS_FILES.iter().map(|f| c.join(f).display().to_string()).collect()
        }
        None => {
            eprintln!("corpus absent (set HFT_CORPUS_DIR or see ../shared/data/binance): using a generated capture");
            vec![generated_capture(dir, 100_000).display().to_string()]
        }
    }
}

fn backtest_args<'a>(inputs: &'a [String], extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["backtest", "--input"];
    a.extend(inputs.iter().map(String::as_str));
    a.extend_from_slice(extra);
    a
}

fn f(v: &Value, path: &str) -> f64 {
    v.pointer(path).and_then(Value::as_f64).unwrap_or_else(|| panic!("{path} missing in {v}"))
}

fn u(v: &Value, path: &str) -> u64 {
    v.pointer(path).and_then(Value::as_u64).unwrap_or_else(|| panic!("{path} missing in {v}"))
}

#[test]
fn the_same_backtest_twice_gives_identical_json_and_reports_frames_per_second() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = market_inputs(dir.path());
    let a = run(dir.path(), &backtest_args(&inputs, &["--json"]));
    let b = run(dir.path(), &backtest_args(&inputs, &["--json"]));
    let r = json(&a);
    assert_eq!(text(&a.stdout), text(&b.stdout), "two runs differ");
    let stderr = text(&a.stderr);
    let perf =
        stderr.lines().find(|l| l.contains("frames/s")).unwrap_or_else(|| panic!("no frames/s on stderr:\n{stderr}"));
    eprintln!("{perf}");
    for key in ["latency", "perf", "frames_per_s", "elapsed"] {
        assert!(!text(&a.stdout).contains(key), "a wall-clock figure ({key}) is in the JSON");
    }

    let frames = u(&r, "/engine/frames");
    assert!(frames > 10_000, "{frames}");
    assert_eq!(frames, u(&r, "/input/frames"));
    assert_eq!((u(&r, "/engine/decode_errors"), u(&r, "/engine/book_gaps")), (0, 0));
    assert!(u(&r, "/engine/orders") > 0 && u(&r, "/engine/fills") > 0, "no trading: {r}");
    assert_eq!(u(&r, "/metrics/fills"), u(&r, "/engine/fills"));
    assert!(u(&r, "/metrics/trades") > 0);
    // Money adds up: equity change = total PnL = realized + unrealized; the strategies'
    // attribution plus the unattributed part is the realized PnL.
    let m = &r["metrics"];
    let total = f(m, "/total_pnl");
    assert!((f(m, "/final_equity") - f(m, "/start_equity") - total).abs() < 1e-6);
    assert!((f(m, "/realized_pnl") + f(m, "/unrealized_pnl") - total).abs() < 1e-6);
    let attributed: f64 = r["strategies"].as_array().unwrap().iter().map(|s| s["realized"].as_f64().unwrap()).sum();
    assert!((attributed + f(&r, "/unattributed_realized") - f(m, "/realized_pnl")).abs() < 1e-6, "{r}");
    let pos_realized: f64 = r["positions"].as_array().unwrap().iter().map(|p| p["realized"].as_f64().unwrap()).sum();
    assert!((pos_realized - f(m, "/realized_pnl")).abs() < 1e-6);
    assert!(f(m, "/fees") > 0.0 && (0.0..=1.0).contains(&f(m, "/exposure")));
    let daily: f64 = r["daily"].as_array().unwrap().iter().map(|d| d["pnl"].as_f64().unwrap()).sum();
    assert!((daily - total).abs() < 1e-6, "daily PnL sums to {daily}, total {total}");

    // The human summary is the same run.
    let h = run(dir.path(), &backtest_args(&inputs, &[]));
    assert!(h.status.success());
    let s = text(&h.stdout);
    assert!(s.contains(&format!("{frames} frames")) && s.contains("Sharpe") && s.contains("momentum"), "{s}");
}

/// `n` trades of a random walk from 60000 in steps of a cent, one every 50 ms from `t0_ms`.
fn trades(n: usize, t0_ms: u64) -> Vec<(u64, String, String, u64, bool)> {
    let mut px = 6_000_000i64; // cents
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            px += (x % 5) as i64 - 2;
            let qty = format!("0.{:05}", 100 + x % 900);
            (1000 + i as u64, format!("{}.{:02}", px / 100, px % 100), qty, t0_ms + 50 * i as u64, x & 8 == 0)
        })
        .collect()
}

#[test]
fn binance_trade_csvs_of_both_timestamp_eras_replay_through_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("eager.toml"), EAGER).unwrap();
    // Spot trades in ms (2024-08-08), with a header line, plain.
    let spot = dir.path().join("BTCUSDT-trades-2024-08-08.csv");
    let mut w = std::fs::File::create(&spot).unwrap();
    writeln!(w, "id,price,qty,quote_qty,time,is_buyer_maker,is_best_match").unwrap();
    for (id, p, q, t, m) in trades(3000, 1_723_075_200_000) {
        writeln!(w, "{id},{p},{q},0,{t},{},True", if m { "True" } else { "False" }).unwrap();
    }
    drop(w);
    // aggTrades in µs (2025-01-01, after Binance's switch), no header, gzip.
    let agg = dir.path().join("BTCUSDT-aggTrades-2025-01-01.csv.gz");
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&agg).unwrap(), flate2::Compression::fast());
    for (id, p, q, t, m) in trades(3000, 1_735_689_600_000) {
        writeln!(gz, "{id},{p},{q},{id},{id},{},{m},true", t * 1000).unwrap();
    }
    gz.finish().unwrap();

    let cases = [
        (spot.display().to_string(), "trades_csv", "2024-08-08T00:00:00Z", "2024-08-08T00:02:29Z"),
        (agg.display().to_string(), "agg_trades_csv", "2025-01-01T00:00:00Z", "2025-01-01T00:02:29Z"),
    ];
    for (path, format, start, end) in &cases {
        let r = json(&run(dir.path(), &["--config", "eager.toml", "backtest", "--input", path, "--json"]));
        assert_eq!(r["inputs"][0]["format"], *format);
        assert_eq!(r["inputs"][0]["symbol"], "BTCUSDT");
        assert_eq!((r["start"].as_str(), r["end"].as_str()), (Some(*start), Some(*end)), "{path}");
        assert_eq!(u(&r, "/input/csv_rows"), 3000);
        assert_eq!(u(&r, "/input/csv_malformed"), 0);
        // A snapshot, then trade + diff + bookTicker per row.
        assert_eq!(u(&r, "/engine/frames"), 1 + 3 * 3000);
        assert_eq!(
            (u(&r, "/engine/decode_errors"), u(&r, "/engine/book_gaps"), u(&r, "/engine/trade_gaps")),
            (0, 0, 0)
        );
        assert!(u(&r, "/engine/orders") > 10 && u(&r, "/engine/fills") > 10, "{path}: {}", r["engine"]);
        assert_eq!(r["rejects"].get("no_market"), None, "the synthetic book prices orders: {}", r["rejects"]);
    }
    // Both, as one stream, in the order given.
    let r =
        json(&run(dir.path(), &["--config", "eager.toml", "backtest", "--input", &cases[0].0, &cases[1].0, "--json"]));
    assert_eq!(u(&r, "/input/csv_rows"), 6000);
    assert_eq!((r["start"].as_str(), r["end"].as_str()), (Some(cases[0].2), Some(cases[1].3)));
    let days: Vec<&str> = r["daily"].as_array().unwrap().iter().map(|d| d["date"].as_str().unwrap()).collect();
    assert_eq!(days, ["2024-08-08", "2025-01-01"], "the days with events");
}

#[test]
fn sweeps_run_the_grid_rank_it_and_refuse_bad_keys() {
    let dir = tempfile::tempdir().unwrap();
    let capture = generated_capture(dir.path(), 30_000).display().to_string();
    std::fs::write(dir.path().join("eager.toml"), EAGER).unwrap();
    let sweep = [
        "--config",
        "eager.toml",
        "backtest",
        "--input",
        &capture,
        "--sweep",
        "strategies.momentum.lookback=2,10,40",
        "--sweep",
        "risk.max_position=500,1000",
    ];
    let mut args = sweep.to_vec();
    args.push("--json");
    let all = json(&run(dir.path(), &args));
    let all = all.as_array().expect("an array");
    assert_eq!(all.len(), 6);
    let mut grid: Vec<(String, String)> = all
        .iter()
        .map(|v| {
            let p = &v["params"];
            (
                p["strategies.momentum.lookback"].as_str().unwrap().into(),
                p["risk.max_position"].as_str().unwrap().into(),
            )
        })
        .collect();
    grid.sort();
    let want: Vec<(String, String)> =
        ["10", "2", "40"].iter().flat_map(|l| ["1000", "500"].map(|m| (l.to_string(), m.to_string()))).collect();
    assert_eq!(grid, want);
    for (i, v) in all.iter().enumerate() {
        assert_eq!(u(v, "/rank"), i as u64 + 1);
    }
    // Ranked by Sharpe (undefined last), ties by total PnL.
    for w in all.windows(2) {
        let (a, b) = (&w[0]["metrics"], &w[1]["metrics"]);
        match (a["sharpe"].as_f64(), b["sharpe"].as_f64()) {
            (Some(x), Some(y)) => assert!(x > y || (x == y && f(a, "/total_pnl") >= f(b, "/total_pnl")), "{x} {y}"),
            (None, Some(_)) => panic!("an undefined Sharpe ranks last"),
            _ => {}
        }
    }
    // A variant equals the single backtest of its configuration (parallel runs share nothing).
    let v = all
        .iter()
        .find(|v| v["params"]["strategies.momentum.lookback"] == "10" && v["params"]["risk.max_position"] == "500")
        .unwrap();
    let one_cfg = EAGER.replace("lookback = 2", "lookback = 10") + "max_position = 500.0\n";
    std::fs::write(dir.path().join("one.toml"), one_cfg).unwrap();
    let one = json(&run(dir.path(), &["--config", "one.toml", "backtest", "--input", &capture, "--json"]));
    for key in ["metrics", "engine", "daily", "strategies", "positions", "kill_switch_trips"] {
        assert_eq!(v[key], one[key], "{key}");
    }
    // The report of a sweep: rank 1's plots, and the ranking.
    let mut with_report = sweep.to_vec();
    with_report.extend(["--report", "sweep.html"]);
    assert!(run(dir.path(), &with_report).status.success());
    let html = std::fs::read_to_string(dir.path().join("sweep.html")).unwrap();
    let sweep_table = &html[html.find("<table id=\"sweep\"").expect("table#sweep")..];
    assert_eq!(sweep_table[..sweep_table.find("</table>").unwrap()].matches("<tr>").count(), 7);
    let best = &all[0]["params"];
    let shown = format!(
        "param: risk.max_position = {}</p><p class=\"meta\">param: strategies.momentum.lookback = {}",
        best["risk.max_position"].as_str().unwrap(),
        best["strategies.momentum.lookback"].as_str().unwrap()
    );
    assert!(html.contains(&shown), "the report is rank 1's");
    let equity = &html[html.find("<svg id=\"equity\"").unwrap()..];
    assert!(equity[..equity.find("</svg>").unwrap()].contains("<path class=\"series\""), "rank 1 kept its curve");

    // The human table.
    let t = run(dir.path(), &sweep);
    assert!(t.status.success(), "{}", text(&t.stderr));
    let table = text(&t.stdout);
    let header = table.lines().next().unwrap();
    assert!(
        header.contains("rank")
            && header.contains("strategies.momentum.lookback")
            && header.contains("risk.max_position")
    );
    assert_eq!(table.lines().count(), 7, "{table}");
    assert!(text(&t.stderr).contains("6 variants on"), "{}", text(&t.stderr));

    for (bad, needle) in [
        ("strategies.momentum.lookbak=1,2", "strategies.momentum.lookbak"),
        ("strategies.momentum.lookback=1,20", "strategies.momentum.lookback=1"),
        ("strategies.momentum.lookback=ten", "strategies.momentum.lookback=ten"),
        ("lookback", "KEY=V1,V2"),
        ("risk.max_position=", "empty"),
    ] {
        let o = run(dir.path(), &["backtest", "--input", &capture, "--sweep", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", text(&o.stderr));
        assert!(text(&o.stderr).contains(needle), "{bad}: {}", text(&o.stderr));
        assert!(o.stdout.is_empty());
    }
}

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Runs `cmd` to its end, killed after `limit`; its stdout.
fn output_within(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut b);
        b
    });
    let t0 = Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = child.wait().expect("wait");
    Output { status, stdout: reader.join().unwrap_or_default(), stderr: Vec::new() }
}

/// The `<svg id="…">…</svg>` element of a DOM dump.
fn svg<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom.find(&format!("<svg id=\"{id}\"")).unwrap_or_else(|| panic!("no svg#{id} in the DOM"));
    let end = dom[start..].find("</svg>").map(|e| start + e).unwrap_or_else(|| panic!("svg#{id} not closed"));
    &dom[start..end]
}

#[test]
fn the_report_is_self_contained_and_headless_chromium_renders_its_plots() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("eager.toml"), EAGER).unwrap();
    let capture = generated_capture(dir.path(), 30_000).display().to_string();
    let report = dir.path().join("report.html");
    let o = run(dir.path(), &["--config", "eager.toml", "backtest", "--input", &capture, "--report", "report.html"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let html = std::fs::read_to_string(&report).expect("report written");
    for forbidden in ["<script", "<link", " src=", " href=", "url(", "@import"] {
        assert!(!html.contains(forbidden), "the report is not self-contained: {forbidden}");
    }
    if std::env::var("HFT_SKIP_BROWSER").as_deref() == Ok("1") {
        eprintln!("HFT_SKIP_BROWSER=1: the report's rendering in headless Chromium is not checked");
        return;
    }
    let browser =
        chromium().expect("chromium is needed for this test (apt-get install -y chromium), or set HFT_SKIP_BROWSER=1");
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(browser);
    cmd.args(["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", report.display()));
    let out = output_within(cmd, Duration::from_secs(60));
    assert!(out.status.success(), "chromium failed: {:?}", out.status);
    let dom = text(&out.stdout);
    for id in ["equity", "drawdown", "position", "latency"] {
        let s = svg(&dom, id);
        let paths: Vec<&str> = s.split("<path class=\"series\"").skip(1).collect();
        assert!(!paths.is_empty(), "svg#{id} has no series");
        for p in paths {
            let d = p.split(" d=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or("");
            assert!(d.starts_with('M') && d.matches('L').count() >= 1, "svg#{id}: empty path {d:?}");
        }
    }
    for id in ["metrics", "strategies", "latency-table", "daily"] {
        let start = dom.find(&format!("<table id=\"{id}\"")).unwrap_or_else(|| panic!("no table#{id}"));
        let t = &dom[start..start + dom[start..].find("</table>").unwrap()];
        assert!(t.matches("<tr>").count() >= 2, "table#{id} has no rows");
    }
    assert!(svg(&dom, "latency").contains("tick_to_order"));
}

fn gate(dir: &Path, doc: &Value) -> Output {
    std::fs::write(dir.join("result.json"), doc.to_string()).unwrap();
    run(dir, &["gate", "--result", "result.json"])
}

fn result_doc(trades: u64, sharpe: Value, dd: f64, win: Value, trips: u64) -> Value {
    serde_json::json!({
        "kill_switch_trips": trips,
        "metrics": {"trades": trades, "sharpe": sharpe, "max_drawdown": dd, "win_rate": win}
    })
}

#[test]
fn gate_on_a_failing_result_exits_non_zero_and_names_each_failed_criterion() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let all_fail = gate(d, &result_doc(5, 0.2.into(), 0.2, 0.3.into(), 0));
    assert_eq!(all_fail.status.code(), Some(1));
    let lines: Vec<String> = text(&all_fail.stdout).lines().map(str::to_string).collect();
    assert_eq!(
        lines,
        [
            "FAIL trades 5 (>= 100)",
            "FAIL sharpe 0.200 (> 1.5)",
            "FAIL max_drawdown 20.00% (< 10.00%)",
            "FAIL win_rate 30.00% (> 55.00%)",
            "FAIL kill_switch 0 (>= 1 trip)",
        ]
    );
    assert!(
        text(&all_fail.stderr).contains("trades, sharpe, max_drawdown, win_rate, kill_switch"),
        "{}",
        text(&all_fail.stderr)
    );

    let one_fails = gate(d, &result_doc(150, 2.0.into(), 0.05, 0.5.into(), 1));
    assert_eq!(one_fails.status.code(), Some(1));
    let fails: Vec<&str> = text(&one_fails.stdout).lines().filter(|l| l.starts_with("FAIL")).map(|_| "x").collect();
    assert_eq!(fails.len(), 1);
    assert!(text(&one_fails.stdout).contains("FAIL win_rate 50.00% (> 55.00%)"));
    let err = text(&one_fails.stderr);
    assert!(err.contains("gate failed: win_rate") && !err.contains("sharpe"), "{err}");

    let undefined = gate(d, &result_doc(150, Value::Null, 0.05, Value::Null, 1));
    assert_eq!(undefined.status.code(), Some(1));
    assert!(text(&undefined.stdout).contains("FAIL sharpe n/a (> 1.5)"));

    let pass = gate(d, &result_doc(150, 2.0.into(), 0.05, 0.6.into(), 1));
    assert_eq!(pass.status.code(), Some(0), "{}", text(&pass.stderr));
    assert_eq!(text(&pass.stdout).lines().filter(|l| l.starts_with("PASS ")).count(), 5);

    // Usage and input errors: 2, naming the problem.
    for (args, needle) in [
        (&["gate", "--result", "missing.json"][..], "missing.json"),
        (&["gate", "--result", "garbage.json"][..], "not JSON"),
        (&["gate", "--result", "empty.json"][..], "metrics"),
    ] {
        std::fs::write(d.join("garbage.json"), "{not json").unwrap();
        std::fs::write(d.join("empty.json"), "{}").unwrap();
        let o = run(d, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(text(&o.stderr).contains(needle), "{args:?}: {}", text(&o.stderr));
    }
}

#[test]
fn a_kill_switch_trip_is_counted_flattened_and_judged_by_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A drawdown limit the fees alone reach.
    std::fs::write(d.join("tight.toml"), format!("{EAGER}max_drawdown = 0.0005\n")).unwrap();
    let capture = generated_capture(d, 60_000).display().to_string();
    let out = run(d, &["--config", "tight.toml", "backtest", "--input", &capture, "--json"]);
    let r = json(&out);
    assert_eq!(u(&r, "/kill_switch_trips"), 1, "{}", r["metrics"]);
    assert_eq!(r["kill_switch"]["cause"], "drawdown");
    assert!(u(&r, "/engine/flatten_orders") >= 1 || r["positions"][0]["qty"].as_f64() == Some(0.0));
    assert_eq!(r["positions"][0]["qty"].as_f64(), Some(0.0), "flat after the trip");
    assert!(r["rejects"]["kill_switch"].as_u64().unwrap_or(0) > 0, "orders refused after the trip: {}", r["rejects"]);
    std::fs::write(d.join("r.json"), &out.stdout).unwrap();
    let g = run(d, &["gate", "--result", "r.json"]);
    assert!(text(&g.stdout).contains("PASS kill_switch 1 (>= 1 trip)"), "{}", text(&g.stdout));
    let failed = text(&g.stdout).lines().filter(|l| l.starts_with("FAIL")).count();
    assert_eq!(g.status.code(), Some(if failed == 0 { 0 } else { 1 }));
}

/// The store's tables and columns `hft gate` reads, as a version-1 store has them (without
/// `fills.base_fee_e8`, which the gate then takes as 0), with its application id.
const STORE_SCHEMA: &str = "
    CREATE TABLE runs (id INTEGER PRIMARY KEY, started_ms INTEGER NOT NULL, stopped_ms INTEGER, mode TEXT NOT NULL,
        version TEXT NOT NULL, symbols TEXT NOT NULL);
    CREATE TABLE orders (run_id INTEGER NOT NULL, id INTEGER NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL,
        decision_px_e8 INTEGER NOT NULL, PRIMARY KEY (run_id, id));
    CREATE TABLE fills (id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, order_id INTEGER NOT NULL,
        symbol TEXT NOT NULL, side TEXT NOT NULL, px_e8 INTEGER NOT NULL, qty_e8 INTEGER NOT NULL,
        fee TEXT NOT NULL, ts_ns INTEGER NOT NULL);
    CREATE TABLE risk_events (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, detail TEXT, value INTEGER NOT NULL,
        ts_ns INTEGER NOT NULL);
    PRAGMA application_id = 1212568625;";

/// A paper account of `n` round trips of 0.01 BTC a minute apart, the `k`-th winning 10 USDT
/// unless `lose(k)` (losing 5).
fn store_with(path: &Path, n: u64, lose: impl Fn(u64) -> bool, kill: bool) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(STORE_SCHEMA).unwrap();
    conn.execute("INSERT INTO runs VALUES (1, 0, NULL, 'paper', 'x', 'BTCUSDT')", []).unwrap();
    let t0: i64 = 1_723_075_200_000_000_000;
    for k in 0..n as i64 {
        let exit = if lose(k as u64) { 59_500 } else { 61_000 };
        for (o, side, px, dt) in [(2 * k + 1, "BUY", 60_000i64, 0i64), (2 * k + 2, "SELL", exit, 30)] {
            conn.execute(
                "INSERT INTO orders VALUES (1, ?1, 'BTCUSDT', ?2, ?3)",
                rusqlite::params![o, side, px * 100_000_000],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO fills (run_id, order_id, symbol, side, px_e8, qty_e8, fee, ts_ns) VALUES (1, ?1, 'BTCUSDT', ?2, ?3, 1000000, '0.01', ?4)",
                rusqlite::params![o, side, px * 100_000_000, t0 + (60 * k + dt) * 1_000_000_000],
            )
            .unwrap();
        }
    }
    if kill {
        conn.execute(
            "INSERT INTO risk_events (kind, detail, value, ts_ns) VALUES ('kill_switch', 'drawdown', 0, 1)",
            [],
        )
        .unwrap();
    }
}

fn live(dir: &Path) -> Command {
    let mut c = hft(dir);
    c.env("TRADING_MODE", "live").env("API_PORT", "0").env("HFT__STORE__PATH", "store.sqlite");
    c
}

/// Runs `cmd` (killed if still running after 30 s): its exit code and stderr.
fn exit_of(cmd: Command) -> (Option<i32>, String) {
    let mut p = common::Running::spawn(cmd);
    let status = p.wait_exit(Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(100));
    (status.code(), p.stderr_text())
}

fn store_gate(dir: &Path) -> Output {
    hft(dir).env("HFT__STORE__PATH", "store.sqlite").arg("gate").stdin(Stdio::null()).output().expect("run hft gate")
}

#[test]
fn live_mode_starts_only_after_a_passing_gate_verdict_or_with_the_override() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (code, err) = exit_of(live(d));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("live mode refuses to start") && err.contains("no store") && err.contains("gate_override"),
        "{err}"
    );

    // Overridden: past the gate (and stopped by the next check: no confirmation, no keys).
    let mut overridden = live(d);
    overridden.env("HFT__LIVE__GATE_OVERRIDE", "true").env("HFT__STORE__ENABLED", "false");
    let (code, err) = exit_of(overridden);
    assert!(!err.contains("refuses to start") && err.contains("gate_override = true"), "{err}");
    assert_ne!(code, Some(0), "{err}");

    // A failing paper account: the gate says so, records it, and live stays refused.
    store_with(&d.join("store.sqlite"), 50, |k| k % 2 == 0, false);
    let g = store_gate(d);
    assert_eq!(g.status.code(), Some(1), "{}", text(&g.stderr));
    let out = text(&g.stdout);
    for name in ["trades", "win_rate", "kill_switch"] {
        assert!(out.contains(&format!("FAIL {name} ")), "{out}");
    }
    assert!(out.contains("PASS max_drawdown"), "{out}");
    let (code, err) = exit_of(live(d));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("latest go-live gate verdict failed (trades,win_rate,kill_switch)"), "{err}");

    // A passing one: 150 round trips, one in four losing, and an exercised kill switch.
    std::fs::remove_file(d.join("store.sqlite")).unwrap();
    store_with(&d.join("store.sqlite"), 150, |k| k % 4 == 3, true);
    let g = store_gate(d);
    assert_eq!(g.status.code(), Some(0), "{}\n{}", text(&g.stdout), text(&g.stderr));
    assert_eq!(text(&g.stdout).lines().filter(|l| l.starts_with("PASS ")).count(), 5, "{}", text(&g.stdout));
    let conn = rusqlite::Connection::open(d.join("store.sqlite")).unwrap();
    let (n, passed): (i64, i64) =
        conn.query_row("SELECT count(*), max(passed) FROM gate_results", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    assert_eq!((n, passed), (1, 1));
    let (_, err) = exit_of(live(d));
    assert!(err.contains("go-live gate passed") && !err.contains("refuses to start"), "{err}");
}
