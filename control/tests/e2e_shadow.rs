//! End-to-end, issue #3's acceptance: the engine in shadow mode against `hft venue-sim` serving
//! a capture; the simulator drops the connection mid-stream and later skips a diff; the engine
//! reconnects, resyncs, ends with the same final book as `hft replay`, and denied orders while
//! its book was invalid.
//!
//! Uses the real Binance capture in `../shared/data/binance` when present, else a capture made
//! from the synthetic market. Both processes run from temp dirs with cleared environments and
//! are killed by Drop guards whatever happens.

mod common;

use common::{Running, get, hft, port_after};
use hft_engine::feed::synthetic::{SyntheticMarket, SyntheticParams};
use hft_shared::Px;
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use std::time::{Duration, Instant};

const TOKEN: &str = "shadow-test-token";

/// The capture to serve: the real corpus when present, else a synthetic one written to `dir`.
fn capture(dir: &Path) -> (Vec<PathBuf>, &'static str) {
    let corpus = std::env::var_os("HFT_CORPUS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/binance")));
    let files = [corpus.join("spot_btcusdt_20240808.gz"), corpus.join("spot_btcusdt_20240809.gz")];
    if files.iter().all(|f| f.is_file()) {
        eprintln!("e2e_shadow: serving the real Binance capture in {}", corpus.display());
        return (files.to_vec(), "real");
    }
    eprintln!("e2e_shadow: real capture absent at {}; serving a synthetic capture instead", corpus.display());
    let mut g = SyntheticMarket::new(&SyntheticParams {
        symbol: "BTCUSDT".into(),
        seed: 11,
        start_price: Px::from_int(60_000),
        tick_size: Px::parse("0.01").unwrap(),
        depth_levels: 50,
    });
    let path = dir.join("synthetic.txt");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    writeln!(out, "1717200000000000000 {}", String::from_utf8_lossy(g.snapshot())).unwrap();
    for _ in 0..40_000 {
        let (f, ns) = g.next_frame();
        writeln!(out, "{ns} {}", String::from_utf8_lossy(f)).unwrap();
    }
    out.flush().unwrap();
    (vec![path], "synthetic")
}

#[test]
fn shadow_mode_survives_a_drop_and_a_gap_and_ends_with_the_replay_book() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (files, kind) = capture(dir.path());
    let file_args: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();

    // ~100k frames (real) or 40k (synthetic) over ~20 s: faults land well inside the run.
    let (speed, drop_at, gap_at) = if kind == "real" { ("30", "20000", "60000") } else { ("15", "8000", "24000") };
    let mut sim_cmd = hft(dir.path());
    sim_cmd.args(["venue-sim", "--listen", "127.0.0.1:0", "--speed", speed, "--drop-after-frames", drop_at]);
    sim_cmd.args(["--gap-after-frames", gap_at, "--input"]).args(&file_args);
    let sim = Running::spawn(sim_cmd);
    let sim_port = port_after(&sim.line_with("venue-sim listening on", Duration::from_secs(60)), "ws://");

    let mut eng_cmd = hft(dir.path());
    eng_cmd
        .env("TRADING_MODE", "shadow")
        .env("API_PORT", "0")
        .env("HFT_API_TOKEN", TOKEN)
        .env("HFT__ENGINE__IDLE", "sleep")
        .env("HFT__FEED__URL", format!("ws://127.0.0.1:{sim_port}"))
        .env("HFT__FEED__API_URL", format!("ws://127.0.0.1:{sim_port}/ws-api/v3"))
        // The whole venue book in each resync snapshot, so the final book can equal replay's
        // level for level (a 1000-level snapshot would lose far levels a full replay keeps).
        .env("HFT__FEED__SNAPSHOT_LIMIT", "5000")
        .env("HFT__FEED__RECONNECT_MIN_MS", "50")
        .env("HFT__FEED__RECONNECT_MAX_MS", "500")
        // An eager strategy, so orders are attempted while the book is invalid.
        .env("HFT__STRATEGIES__MOMENTUM__LOOKBACK", "2")
        .env("HFT__STRATEGIES__MOMENTUM__THRESHOLD", "0.000001")
        .env("HFT__RISK__ORDER_COOLDOWN_MS", "0");
    let eng = Running::spawn(eng_cmd);
    let api = port_after(&eng.line_with("API http://", Duration::from_secs(60)), "http://");

    // Run until the simulator has sent everything and the engine has taken it all in.
    let t0 = Instant::now();
    let mut last_frames = 0;
    let mut steady_since = Instant::now();
    loop {
        assert!(t0.elapsed() < Duration::from_secs(180), "run did not finish; engine stderr:\n{}", eng.stderr_text());
        std::thread::sleep(Duration::from_millis(500));
        let (_, status) = get(sim_port, "/control/status");
        let (_, stats) = get(api, "/stats");
        let frames = stats["frames"].as_u64().unwrap_or(0);
        if frames != last_frames {
            last_frames = frames;
            steady_since = Instant::now();
        }
        if status["ended"] == true && steady_since.elapsed() > Duration::from_secs(2) {
            break;
        }
    }

    let (_, stats) = get(api, "/stats");
    eprintln!("engine stats: {stats}");
    let (_, status) = get(sim_port, "/control/status");
    eprintln!("venue-sim status: {status}");
    assert_eq!(status["faults"]["drop"], 1, "the connection was dropped once: {status}");
    assert_eq!(status["faults"]["gap"], 1, "one diff was skipped: {status}");
    // The drop came at a fifth of the run: ending on the final book (below) proves the engine
    // reconnected and resynced; the gap must have been seen as one.
    assert!(stats["book_gaps"].as_u64().unwrap_or(0) >= 1, "the skipped diff was detected as a gap: {stats}");
    assert!(
        stats["rejects_by_reason"]["no_market"].as_u64().unwrap_or(0) >= 1,
        "orders were denied while the book was invalid: {stats}"
    );
    assert_eq!(stats["decode_errors"].as_u64(), Some(0), "{stats}");

    // The engine's final book equals `hft replay` over the same files.
    let (code, book) = get(api, "/book/BTCUSDT");
    assert_eq!(code, 200, "{book}");
    assert_eq!(book["valid"], true, "engine book valid at the end: {book}");
    let mut engine_dump = String::new();
    for (key, tag) in [("bids", 'B'), ("asks", 'A')] {
        for l in book[key].as_array().unwrap() {
            engine_dump.push_str(&format!("{tag} {} {}\n", l[0].as_str().unwrap(), l[1].as_str().unwrap()));
        }
    }
    let replay =
        hft(dir.path()).args(["replay", "--dump-book", "BTCUSDT", "--input"]).args(&file_args).output().unwrap();
    assert!(replay.status.success(), "hft replay failed: {}", String::from_utf8_lossy(&replay.stderr));
    let replay_dump = String::from_utf8(replay.stdout).unwrap();
    assert!(replay_dump.lines().count() > 20, "replay book has levels");
    assert!(
        engine_dump == replay_dump,
        "engine book differs from hft replay's:\nengine:\n{engine_dump}\nreplay:\n{replay_dump}"
    );
}

/// Lines of a gzip capture.
fn capture_lines(path: &Path) -> Vec<String> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).expect("capture exists"))
        .read_to_string(&mut text)
        .expect("capture is gzip");
    text.lines().map(str::to_owned).collect()
}

fn assert_capture_replays(dir: &Path, path: &Path) {
    let lines = capture_lines(path);
    assert!(lines.len() > 100, "only {} lines captured", lines.len());
    for l in &lines {
        let (ns, json) = l.split_once(' ').unwrap_or_else(|| panic!("not `<ns> <json>`: {l}"));
        assert!(ns.parse::<u64>().is_ok_and(|n| n > 1_600_000_000_000_000_000), "bad receive time in {l}");
        serde_json::from_str::<Value>(json).unwrap_or_else(|e| panic!("bad JSON ({e}): {l}"));
    }
    assert!(lines.iter().any(|l| l.contains(r#" {"lastUpdateId":"#)), "a bare REST snapshot body was captured");
    assert!(lines.iter().any(|l| l.contains("@depth")), "depth diffs captured");
    let replay =
        hft(dir).args(["replay", "--dump-book", "BTCUSDT", "--input"]).arg(path).output().expect("run hft replay");
    assert!(replay.status.success(), "replay of the capture: {}", String::from_utf8_lossy(&replay.stderr));
    assert!(String::from_utf8_lossy(&replay.stdout).lines().count() >= 10, "the capture rebuilds a book");
}

#[test]
fn record_and_the_feed_record_switch_write_captures_replay_reads() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut sim_cmd = hft(dir.path());
    sim_cmd.args(["venue-sim", "--listen", "127.0.0.1:0", "--rate", "2000"]);
    let sim = Running::spawn(sim_cmd);
    let sim_port = port_after(&sim.line_with("venue-sim listening on", Duration::from_secs(60)), "ws://");
    let feed_env = |cmd: &mut Command| {
        cmd.env("HFT__FEED__URL", format!("ws://127.0.0.1:{sim_port}"))
            .env("HFT__FEED__API_URL", format!("ws://127.0.0.1:{sim_port}/ws-api/v3"));
    };

    // `hft record` for two seconds.
    let cap = dir.path().join("rec.gz");
    let mut rec = hft(dir.path());
    rec.args(["record", "--duration", "2", "--output"]).arg(&cap);
    feed_env(&mut rec);
    let out = rec.output().expect("run hft record");
    assert!(out.status.success(), "hft record: {}", String::from_utf8_lossy(&out.stderr));
    assert_capture_replays(dir.path(), &cap);

    // The config switch in shadow mode; the capture is complete after SIGTERM.
    let cap2 = dir.path().join("shadow.gz");
    let mut eng_cmd = hft(dir.path());
    eng_cmd
        .env("TRADING_MODE", "shadow")
        .env("API_PORT", "0")
        .env("HFT_API_TOKEN", TOKEN)
        .env("HFT__ENGINE__IDLE", "sleep")
        .env("HFT__FEED__RECORD", cap2.display().to_string());
    feed_env(&mut eng_cmd);
    let mut eng = Running::spawn(eng_cmd);
    let api = port_after(&eng.line_with("API http://", Duration::from_secs(60)), "http://");
    let t0 = Instant::now();
    while get(api, "/stats").1["frames"].as_u64().unwrap_or(0) < 2000 {
        assert!(t0.elapsed() < Duration::from_secs(60), "shadow engine took no frames: {}", eng.stderr_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    eng.signal(libc::SIGTERM);
    let status = eng.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "clean exit: {status:?}\n{}", eng.stderr_text());
    assert_capture_replays(dir.path(), &cap2);
}
