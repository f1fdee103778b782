//! End-to-end: the real `hft` binary in paper mode, driven over HTTP like an operator would.
//!
//! Each test starts its own process (OS-chosen port, fresh temp working dir, cleared
//! environment, `engine.idle = sleep` so nothing spins) and kills it on failure via a Drop guard.

mod common;

use common::{Running, agent};
use serde_json::Value;
use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

use std::time::{Duration, Instant};

const TOKEN: &str = "test-token";

/// A running `hft`: killed and reaped on drop, whatever the test did.
struct Hft {
    run: Running,
    port: u16,
    banner: String,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Hft {
    type Target = Running;
    fn deref(&self) -> &Running {
        &self.run
    }
}

impl std::ops::DerefMut for Hft {
    fn deref_mut(&mut self) -> &mut Running {
        &mut self.run
    }
}

/// The binary with a clean environment, run in `dir` (so no repo `config/default.toml` or
/// `.env` leaks in), with `env` on top of the quick, non-spinning test settings.
fn command(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hft"));
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .env("API_PORT", "0")
        .env("HFT__ENGINE__IDLE", "sleep")
        .env("HFT__MARKET__RATE", "2000")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn start(env: &[(&str, &str)]) -> Hft {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = Running::spawn(command(dir.path(), env, &[]));
    let mut hft = Hft { run, port: 0, banner: String::new(), _dir: dir };
    let banner = hft.stdout.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| {
        panic!("no banner within 30 s; stderr:\n{}", hft.stderr_text());
    });
    hft.port = parse_port(&banner).unwrap_or_else(|| panic!("no port in banner {banner:?}"));
    hft.banner = banner;
    hft
}

/// `hft 0.1.0 · mode paper · API http://127.0.0.1:PORT · token …` → PORT.
fn parse_port(banner: &str) -> Option<u16> {
    let rest = banner.split("API http://").nth(1)?;
    let authority = rest.split_whitespace().next()?;
    authority.rsplit(':').next()?.parse().ok()
}

impl Hft {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let agent = agent();
        let mut res = agent.get(&self.url(path)).call().unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = res.status().as_u16();
        let body = res.body_mut().read_json::<Value>().unwrap_or_else(|e| panic!("GET {path}: body: {e}"));
        (status, body)
    }

    fn post(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let agent = agent();
        let mut req = agent.post(&self.url(path));
        if let Some(t) = token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        let mut res = req.send_empty().unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = res.status().as_u16();
        let body = res.body_mut().read_json::<Value>().unwrap_or_else(|e| panic!("POST {path}: body: {e}"));
        (status, body)
    }

    fn stats(&self) -> Value {
        let (status, body) = self.get("/stats");
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Polls `/stats` until `pred` holds, up to `within`.
    fn wait_stats(&self, what: &str, within: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let t0 = Instant::now();
        loop {
            let s = self.stats();
            if pred(&s) {
                return s;
            }
            if t0.elapsed() > within {
                panic!("{what}: not within {within:?}; last /stats {s}\nstderr:\n{}", self.stderr_text());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn n(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} is not a counter in {v}"))
}

/// Runs the binary to completion (it must refuse to start), bounded by `within`.
fn refuse(
    env: &[(&str, &str)],
    args: &[&str],
    files: &[(&str, &str)],
    within: Duration,
) -> (ExitStatus, String, Duration) {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write file");
    }
    let t0 = Instant::now();
    let mut child = command(dir.path(), env, args).spawn().expect("spawn hft");
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if t0.elapsed() > within {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = t0.elapsed();
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    (status, stderr, elapsed)
}

#[test]
fn paper_trading_halt_resume_auth_and_clean_shutdown() {
    let mut hft = start(&[("HFT_API_TOKEN", TOKEN)]);
    assert!(hft.banner.starts_with("hft "), "{}", hft.banner);
    assert!(hft.banner.contains("mode paper"), "{}", hft.banner);
    assert!(hft.banner.ends_with("token from HFT_API_TOKEN"), "{}", hft.banner);
    assert!(!hft.banner.contains(TOKEN), "the supplied token must not be printed");

    // Ready within 60 s.
    let t0 = Instant::now();
    loop {
        let (status, body) = hft.get("/health");
        if status == 200 {
            assert_eq!((body["status"].as_str(), body["ready"].as_bool()), (Some("ok"), Some(true)), "{body}");
            assert_eq!(body["engine_running"], true);
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(t0.elapsed() < Duration::from_secs(60), "not ready within 60 s: {body}\n{}", hft.stderr_text());
        std::thread::sleep(Duration::from_millis(100));
    }

    // Frames flow; at least one order and one fill.
    let first = hft.stats();
    hft.wait_stats("frames rising", Duration::from_secs(30), |s| n(s, "frames") > n(&first, "frames"));
    hft.wait_stats("an order and a fill", Duration::from_secs(120), |s| n(s, "orders") >= 1 && n(s, "fills") >= 1);

    // Halt without the token: refused, nothing changes.
    let (status, body) = hft.post("/trading/halt", None);
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["code"], "unauthorized");
    let (status, _) = hft.post("/trading/halt", Some("wrong-token"));
    assert_eq!(status, 401);
    assert_eq!(hft.stats()["halted"], false);

    // Halt with the token: no new orders while frames keep coming.
    let (status, body) = hft.post("/trading/halt", Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["ok"].as_bool(), body["halted"].as_bool()), (Some(true), Some(true)), "{body}");
    assert_eq!(body["state"]["halted"], true, "{body}");
    let at_halt = hft.stats();
    assert_eq!(at_halt["halted"], true);
    let t_halt = Instant::now();
    while t_halt.elapsed() < Duration::from_secs(5) {
        let s = hft.stats();
        assert_eq!(n(&s, "orders"), n(&at_halt, "orders"), "an order after the halt ack: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let after = hft.stats();
    assert!(n(&after, "frames") > n(&at_halt, "frames"), "frames stopped while halted: {after}");
    let (_, again) = hft.post("/trading/halt", Some(TOKEN));
    assert_eq!(again["outcome"], "unchanged", "{again}");

    // Resume: orders again.
    let (status, body) = hft.post("/trading/resume", Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["outcome"].as_str(), body["halted"].as_bool()), (Some("applied"), Some(false)), "{body}");
    hft.wait_stats("orders after resume", Duration::from_secs(60), |s| n(s, "orders") > n(&after, "orders"));

    // Latency reported for the whole path.
    let (status, lat) = hft.get("/latency");
    assert_eq!(status, 200);
    assert!(lat["tick_to_order"]["count"].as_u64().is_some_and(|c| c > 0), "{lat}");

    // JSON errors.
    let (status, body) = hft.get("/nope");
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));

    // SIGTERM: clean exit, status 0, within 10 s.
    hft.signal(libc::SIGTERM);
    let status = hft.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}; stderr:\n{}", hft.stderr_text());
}

#[test]
fn generated_token_is_printed_and_sigint_stops_cleanly() {
    let mut hft = start(&[]);
    let tok = hft.banner.rsplit("token ").next().unwrap_or_default().to_string();
    assert_eq!(tok.len(), 32, "{}", hft.banner);
    let (status, _) = hft.post("/trading/halt", Some("not-it"));
    assert_eq!(status, 401);
    assert!(!hft.stderr_text().contains(&tok), "the token must not be logged");
    hft.signal(libc::SIGINT);
    let status = hft.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}; stderr:\n{}", hft.stderr_text());
    assert!(!hft.stderr_text().contains(&tok), "the token must not be logged");
}

#[test]
fn out_of_range_env_refuses_to_start() {
    let (status, stderr, took) = refuse(&[("MAX_RISK_PER_TRADE", "1.5")], &[], &[], Duration::from_secs(10));
    assert!(!status.success());
    assert_eq!(status.code(), Some(2));
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(stderr.contains("MAX_RISK_PER_TRADE"), "{stderr}");
    assert!(stderr.contains("error: invalid configuration:"), "{stderr}");
}

#[test]
fn unknown_config_key_refuses_to_start() {
    let (status, stderr, took) =
        refuse(&[], &["--config", "bad.toml"], &[("bad.toml", "[risk]\nfoo = 1\n")], Duration::from_secs(10));
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(stderr.contains("risk.foo"), "{stderr}");
}

#[test]
fn non_loopback_api_without_token_refuses_to_start() {
    let (status, stderr, _) = refuse(&[("API_HOST", "0.0.0.0")], &[], &[], Duration::from_secs(10));
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("HFT_API_TOKEN") && stderr.contains("api.host"), "{stderr}");
}

#[test]
fn dotenv_in_the_working_dir_is_read() {
    let (status, stderr, _) = refuse(&[], &[], &[(".env", "MAX_RISK_PER_TRADE=0.9\n")], Duration::from_secs(10));
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("MAX_RISK_PER_TRADE"), "{stderr}");
    assert!(!stderr.contains("=0.9"), "{stderr}");
}

#[test]
fn banner_port_parsing() {
    assert_eq!(parse_port("hft 0.1.0 · mode paper · API http://127.0.0.1:8123 · token abc"), Some(8123));
    assert_eq!(parse_port("hft 0.1.0 · mode paper · API http://[::1]:9 · token from HFT_API_TOKEN"), Some(9));
    assert_eq!(parse_port("garbage"), None);
}

#[test]
fn book_endpoint_serves_the_engines_full_book() {
    let hft = start(&[("HFT_API_TOKEN", TOKEN)]);
    hft.wait_stats("frames flowing", Duration::from_secs(60), |s| n(s, "frames") > 200);
    // The book syncs on the first diff after the snapshot; poll until it is valid.
    let t0 = Instant::now();
    let book = loop {
        let (status, body) = hft.get("/book/btcusdt");
        assert_eq!(status, 200, "{body}");
        if body["valid"] == true {
            break body;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "book never became valid: {body}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(book["symbol"], "BTCUSDT");
    assert!(book["update_id"].as_u64().unwrap_or(0) > 0, "{book}");
    let side = |k: &str| -> Vec<(f64, f64)> {
        book[k]
            .as_array()
            .unwrap_or_else(|| panic!("{k} missing: {book}"))
            .iter()
            .map(|l| (l[0].as_str().unwrap().parse().unwrap(), l[1].as_str().unwrap().parse().unwrap()))
            .collect()
    };
    let (bids, asks) = (side("bids"), side("asks"));
    assert!(bids.len() >= 10 && asks.len() >= 10, "{} bids, {} asks", bids.len(), asks.len());
    assert!(bids.windows(2).all(|w| w[0].0 > w[1].0), "bids strictly descending");
    assert!(asks.windows(2).all(|w| w[0].0 < w[1].0), "asks strictly ascending");
    assert!(bids.iter().chain(&asks).all(|l| l.1 > 0.0), "no empty level");
    assert!(bids[0].0 < asks[0].0, "not crossed");

    let (status, body) = hft.get("/book/NOPEUSDT");
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["code"], "unknown_symbol");
}
