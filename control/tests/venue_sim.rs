//! End-to-end: the real `hft venue-sim` served over loopback, driven by WebSocket and HTTP
//! clients the way the engine's feed (and an operator) would use it.
//!
//! Each test starts its own process (`--listen 127.0.0.1:0`, a fresh temp working dir, a
//! cleared environment) and kills it on drop. Captures are generated here from the synthetic
//! market (gzip, a snapshot line first); the real corpus is used when it is present.

mod common;

use common::Running;
use flate2::Compression;
use flate2::write::GzEncoder;
use hft_engine::book::{Book, DiffOutcome};
use hft_engine::feed::decode::Level;
use hft_engine::feed::synthetic::{START_TIME_NS, SyntheticMarket, SyntheticParams};
use hft_shared::{Px, Qty};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use std::time::{Duration, Instant};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

const ALL_STREAMS: &str = "/stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker/btcusdt@trade";
/// Reads that see nothing for this long fail the test.
const READ_TIMEOUT: Duration = Duration::from_secs(15);
/// Slack for "no message for ≥ D ms" measured on the client: the client reads the last frame
/// before a stall a little after the server flushed it.
const STALL_SLACK: Duration = Duration::from_millis(50);

type Ws = WebSocket<TcpStream>;

/// The stall test measures silences on the client, which a starved client thread (two cores,
/// every other test's server and client busy) would fill with its own backlog: it runs alone
/// (write), the others together (read).
static TIMING: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn shared_cpu() -> std::sync::RwLockReadGuard<'static, ()> {
    TIMING.read().unwrap_or_else(|p| p.into_inner())
}

/// A running `hft venue-sim`: killed and reaped on drop, whatever the test did.
struct Sim {
    run: Running,
    port: u16,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Sim {
    type Target = Running;
    fn deref(&self) -> &Running {
        &self.run
    }
}

impl std::ops::DerefMut for Sim {
    fn deref_mut(&mut self) -> &mut Running {
        &mut self.run
    }
}

fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hft"));
    cmd.arg("venue-sim")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

impl Sim {
    /// Starts `hft venue-sim --listen 127.0.0.1:0 ARGS` in `dir` and waits for its banner.
    fn start(dir: tempfile::TempDir, args: &[&str]) -> Sim {
        let mut all = vec!["--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let run = Running::spawn(command(dir.path(), &all));
        let mut sim = Sim { run, port: 0, _dir: dir };
        let banner = sim
            .stdout
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no banner within 30 s; stderr:\n{}", sim.stderr_text()));
        let port = banner.strip_prefix("venue-sim listening on ws://127.0.0.1:").and_then(|p| p.parse().ok());
        sim.port = port.unwrap_or_else(|| panic!("unexpected banner {banner:?}"));
        assert_ne!(sim.port, 0);
        // Exactly one line on stdout.
        assert!(sim.stdout.recv_timeout(Duration::from_millis(100)).is_err(), "more than one line on stdout");
        sim
    }

    fn ws(&self, path: &str) -> Ws {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        stream.set_read_timeout(Some(READ_TIMEOUT)).expect("read timeout");
        stream.set_nodelay(true).expect("nodelay");
        let url = format!("ws://127.0.0.1:{}{path}", self.port);
        tungstenite::client(url.as_str(), stream).unwrap_or_else(|e| panic!("WebSocket {path}: {e}")).0
    }

    fn call(&self, method: &str, path: &str) -> (u16, Value) {
        call(self.port, method, path)
    }

    fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path)
    }

    fn post(&self, path: &str) -> Value {
        let (status, body) = self.call("POST", path);
        assert_eq!(status, 200, "POST {path}: {body}");
        body
    }

    fn status(&self) -> Value {
        let (status, body) = self.get("/control/status");
        assert_eq!(status, 200, "{body}");
        body
    }

    fn snapshot(&self, limit: u32) -> Value {
        let (status, body) = self.get(&format!("/api/v3/depth?symbol=BTCUSDT&limit={limit}"));
        assert_eq!(status, 200, "{body}");
        body
    }
}

/// One HTTP request to the simulator on `port`: status and JSON body.
fn call(port: u16, method: &str, path: &str) -> (u16, Value) {
    let agent = common::agent();
    let url = format!("http://127.0.0.1:{port}{path}");
    let res = match method {
        "GET" => agent.get(&url).call(),
        _ => agent.post(&url).send_empty(),
    };
    let mut res = res.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = res.status().as_u16();
    let body = res.body_mut().read_json::<Value>().unwrap_or_else(|e| panic!("{method} {path}: body: {e}"));
    (status, body)
}

/// A generated capture: the file and its stream frames in order.
struct Capture {
    path: PathBuf,
    frames: Vec<String>,
}

impl Capture {
    fn arg(&self) -> &str {
        self.path.to_str().expect("UTF-8 temp path")
    }
}

/// Writes `n` synthetic BTCUSDT frames, gzip, `<market ns> <json>` per line, after a snapshot
/// line.
fn write_capture(dir: &Path, n: usize, seed: u64) -> Capture {
    let mut m = SyntheticMarket::new(&SyntheticParams {
        symbol: "BTCUSDT".into(),
        seed,
        start_price: Px::from_int(60_000),
        tick_size: Px::parse("0.01").expect("tick"),
        depth_levels: 20,
    });
    let path = dir.join(format!("capture-{seed}.gz"));
    let mut gz = GzEncoder::new(std::fs::File::create(&path).expect("create capture"), Compression::fast());
    let snapshot = String::from_utf8(m.snapshot().to_vec()).expect("UTF-8");
    writeln!(gz, "{} {snapshot}", START_TIME_NS - 1_000_000).expect("write");
    let mut frames = Vec::with_capacity(n);
    for _ in 0..n {
        let (f, t) = m.next_frame();
        let f = String::from_utf8(f.to_vec()).expect("UTF-8");
        writeln!(gz, "{t} {f}").expect("write");
        frames.push(f);
    }
    gz.finish().expect("finish gzip");
    Capture { path, frames }
}

/// The next text message (server pings and pongs skipped), within [`READ_TIMEOUT`].
fn next_text(ws: &mut Ws) -> String {
    let t0 = Instant::now();
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => return t.as_str().to_owned(),
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {
                assert!(t0.elapsed() < READ_TIMEOUT, "only pings for {READ_TIMEOUT:?}");
            }
            Ok(m) => panic!("unexpected message {m:?}"),
            Err(e) => panic!("read: {e}"),
        }
    }
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn stream_of(v: &Value) -> &str {
    v["stream"].as_str().unwrap_or("")
}

/// The connection must end without a close frame. With `frames_allowed`, frames queued before
/// the fault may still arrive first (they are returned).
fn assert_dropped(ws: &mut Ws, frames_allowed: bool) -> Vec<String> {
    let mut before = Vec::new();
    loop {
        match ws.read() {
            Ok(Message::Text(t)) if frames_allowed => before.push(t.as_str().to_owned()),
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(m) => panic!("expected the connection to drop, got {m:?}"),
            Err(tungstenite::Error::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake)) => {
                return before;
            }
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::UnexpectedEof
                        | std::io::ErrorKind::BrokenPipe
                ) =>
            {
                return before;
            }
            Err(e) => panic!("expected a drop without a close frame, got {e:?}"),
        }
    }
}

fn levels(v: &Value) -> Vec<Level> {
    v.as_array()
        .unwrap_or_else(|| panic!("levels: {v}"))
        .iter()
        .map(|l| Level {
            px: Px::parse(l[0].as_str().expect("price string")).expect("price"),
            qty: Qty::parse(l[1].as_str().expect("qty string")).expect("qty"),
        })
        .collect()
}

/// A local book kept by Binance's documented procedure from a snapshot and the diffs that
/// follow it; checks its top against every bookTicker whose `u` is a diff's `u` (the ticker
/// may arrive before or after that diff).
struct Local {
    book: Book,
    ticker_checks: usize,
    applied: usize,
    /// Tickers newer than the book: `u` → (bid, ask).
    tickers: std::collections::BTreeMap<u64, (Level, Level)>,
}

impl Local {
    /// Snapshot first, then the diffs buffered before it (`u <= lastUpdateId` are dropped).
    fn new(snapshot: &Value, buffered: &[Value]) -> Local {
        let mut book = Book::with_capacity(6000);
        let id = snapshot["lastUpdateId"].as_u64().unwrap_or_else(|| panic!("lastUpdateId: {snapshot}"));
        book.apply_snapshot(id, &levels(&snapshot["bids"]), &levels(&snapshot["asks"])).expect("snapshot applies");
        let mut l = Local { book, ticker_checks: 0, applied: 0, tickers: Default::default() };
        for f in buffered {
            l.feed(f);
        }
        l
    }

    fn feed(&mut self, frame: &Value) {
        let d = &frame["data"];
        if stream_of(frame).contains("@depth") {
            let (first, last) = (d["U"].as_u64().expect("U"), d["u"].as_u64().expect("u"));
            match self.book.apply_diff(first, last, &levels(&d["b"]), &levels(&d["a"])) {
                Ok(DiffOutcome::Applied) => self.applied += 1,
                Ok(DiffOutcome::Stale) => {}
                other => panic!("diff {first}..{last} on a book at {}: {other:?}", self.book.last_update_id()),
            }
            let id = self.book.last_update_id();
            if let Some(top) = self.tickers.remove(&id) {
                self.check(top, frame);
            }
            self.tickers.retain(|&u, _| u > id);
        } else if stream_of(frame).ends_with("@bookTicker") {
            let lv = |p: &str, q: &str| Level {
                px: Px::parse(d[p].as_str().expect("px")).expect("px"),
                qty: Qty::parse(d[q].as_str().expect("qty")).expect("qty"),
            };
            let (u, top) = (d["u"].as_u64().expect("u"), (lv("b", "B"), lv("a", "A")));
            if u == self.book.last_update_id() {
                self.check(top, frame);
            } else if u > self.book.last_update_id() {
                self.tickers.insert(u, top);
            }
        }
    }

    fn check(&mut self, (bid, ask): (Level, Level), frame: &Value) {
        if self.book.is_valid() {
            assert_eq!(
                (self.book.best_bid(), self.book.best_ask()),
                (Some(bid), Some(ask)),
                "book top vs ticker at {frame}"
            );
            self.ticker_checks += 1;
        }
    }

    /// Every level, best first, as a snapshot lists them.
    fn matches(&self, snapshot: &Value) {
        assert_eq!(self.book.bids.iter().collect::<Vec<_>>(), levels(&snapshot["bids"]), "bids");
        assert_eq!(self.book.asks.iter().collect::<Vec<_>>(), levels(&snapshot["asks"]), "asks");
        assert_eq!(Some(self.book.last_update_id()), snapshot["lastUpdateId"].as_u64());
    }
}

/// A depth snapshot over the WebSocket API.
fn ws_api_depth(sim: &Sim, id: &str) -> Value {
    let mut api = sim.ws("/ws-api/v3");
    let req = json!({"id": id, "method": "depth", "params": {"symbol": "BTCUSDT", "limit": 1000}});
    api.send(Message::Text(req.to_string().into())).expect("send");
    let reply = json(&next_text(&mut api));
    assert_eq!((reply["id"].as_str(), reply["status"].as_u64()), (Some(id), Some(200)), "{reply}");
    assert_eq!(reply["rateLimits"][0]["rateLimitType"], "REQUEST_WEIGHT", "{reply}");
    let _ = api.close(None);
    reply["result"].clone()
}

fn is_diff(frame: &str) -> bool {
    frame.starts_with(r#"{"stream":"btcusdt@depth"#)
}

fn diff_ids(frame: &str) -> (u64, u64) {
    let v = json(frame);
    (v["data"]["U"].as_u64().expect("U"), v["data"]["u"].as_u64().expect("u"))
}

/// `(index, U)` of every diff whose `U` is not the previous diff's `u` + 1.
fn gaps(frames: &[String]) -> Vec<(usize, u64)> {
    let mut prev: Option<u64> = None;
    let mut out = Vec::new();
    for (i, f) in frames.iter().enumerate().filter(|(_, f)| is_diff(f)) {
        let (first, last) = diff_ids(f);
        if prev.is_some_and(|p| first != p + 1) {
            out.push((i, first));
        }
        prev = Some(last);
    }
    out
}

fn last_diff_u(frames: &[String]) -> u64 {
    frames.iter().rev().find(|f| is_diff(f)).map(|f| diff_ids(f).1).expect("a diff")
}

#[test]
fn serves_a_capture_in_order_with_consistent_snapshots() {
    let _cpu = shared_cpu();
    let t0 = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    // Long enough that the server is still mid-stream when the client takes its snapshots
    // (at speed 0 it runs ahead of the client by its buffers).
    let cap = write_capture(dir.path(), 12_000, 11);
    let mut sim =
        Sim::start(dir, &["--input", cap.arg(), "--speed", "0", "--wait-clients", "2", "--ping-interval-s", "1"]);

    // A raw-stream client for trades only, on its own thread (both are read concurrently).
    let trades: Vec<String> = cap
        .frames
        .iter()
        .filter(|f| f.starts_with(r#"{"stream":"btcusdt@trade""#))
        .map(|f| f[r#"{"stream":"btcusdt@trade","data":"#.len()..f.len() - 1].to_owned())
        .collect();
    let mut raw = sim.ws("/ws/btcusdt@trade");
    let n_trades = trades.len();
    let raw_reader = std::thread::spawn(move || (0..n_trades).map(|_| next_text(&mut raw)).collect::<Vec<_>>());

    let mut ws = sim.ws(ALL_STREAMS);
    let mut buffered = Vec::new();
    let (mut rest, mut wsapi): (Option<Local>, Option<Local>) = (None, None);
    let mut last_u = 0;
    for (i, want) in cap.frames.iter().enumerate() {
        let got = next_text(&mut ws);
        assert!(got == *want, "frame {i} differs:\n got {got}\nwant {want}");
        let v = json(&got);
        if is_diff(&got) {
            last_u = v["data"]["u"].as_u64().expect("u");
            buffered.push(v.clone());
        }
        for l in [&mut rest, &mut wsapi].into_iter().flatten() {
            l.feed(&v);
        }
        // Snapshots mid-stream: never older than what this client has received.
        if i == 500 {
            let snap = sim.snapshot(1000);
            assert!(snap["lastUpdateId"].as_u64() >= Some(last_u), "{} < {last_u}", snap["lastUpdateId"]);
            rest = Some(Local::new(&snap, &buffered));
        }
        if i == 1500 {
            let snap = ws_api_depth(&sim, "snap-1");
            assert!(snap["lastUpdateId"].as_u64() >= Some(last_u), "{} < {last_u}", snap["lastUpdateId"]);
            wsapi = Some(Local::new(&snap, &buffered));
        }
    }
    let (rest, wsapi) = (rest.expect("synced from REST"), wsapi.expect("synced from the WS-API"));
    for l in [&rest, &wsapi] {
        assert!(l.book.is_valid() && l.applied > 50 && l.ticker_checks > 5, "{} {}", l.applied, l.ticker_checks);
    }
    // At the end, the server's book is exactly what it sent.
    let fin = sim.snapshot(5000);
    assert_eq!(fin["lastUpdateId"].as_u64(), Some(last_u));
    rest.matches(&fin);
    wsapi.matches(&fin);

    assert_eq!(raw_reader.join().expect("raw reader"), trades, "raw trade stream");

    let st = sim.status();
    assert_eq!((st["frames"].as_u64(), st["ended"].as_bool()), (Some(12_000), Some(true)), "{st}");
    assert_eq!(st["last_update_id"]["BTCUSDT"].as_u64(), Some(last_u), "{st}");
    assert_eq!(st["snapshot_update_id"]["BTCUSDT"].as_u64(), Some(last_u), "{st}");
    assert_eq!(st["faults"], json!({"drop": 0, "gap": 0, "malformed": 0, "stall": 0}));

    // The stream has ended; the connection stays open and is pinged (every second here).
    let t_end = Instant::now();
    match ws.read().expect("read after the end") {
        Message::Ping(_) => {}
        m => panic!("only pings after the end, got {m:?}"),
    }
    assert!(t_end.elapsed() < Duration::from_secs(3));

    // SIGTERM: a close frame (going away), then exit 0.
    sim.signal(libc::SIGTERM);
    loop {
        match ws.read() {
            Ok(Message::Close(Some(f))) => {
                assert_eq!(f.code, CloseCode::Away);
                break;
            }
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
    assert!(sim.wait_exit(Duration::from_secs(5)).success(), "stderr:\n{}", sim.stderr_text());
    eprintln!("serves_a_capture_in_order_with_consistent_snapshots: {:?}", t0.elapsed());
}

#[test]
fn drop_fault_closes_connections_without_a_close_frame() {
    let _cpu = shared_cpu();
    let dir = tempfile::tempdir().expect("temp dir");
    let cap = write_capture(dir.path(), 3000, 12);
    let sim =
        Sim::start(dir, &["--input", cap.arg(), "--speed", "10", "--wait-clients", "1", "--drop-after-frames", "300"]);

    // Scheduled: exactly 300 frames, then the TCP connection ends without a close frame.
    let mut ws = sim.ws(ALL_STREAMS);
    for (i, want) in cap.frames[..300].iter().enumerate() {
        assert_eq!(next_text(&mut ws), *want, "frame {i}");
    }
    assert_eq!(assert_dropped(&mut ws, false), Vec::<String>::new());

    // On request: stream and WS-API connections both end; new connections are served.
    let mut ws = sim.ws(ALL_STREAMS);
    let mut api = sim.ws("/ws-api/v3");
    let first = next_text(&mut ws);
    let start = cap.frames.iter().position(|f| *f == first).expect("a frame of the capture");
    assert!(start >= 300, "{start}");
    for (i, want) in cap.frames.iter().enumerate().skip(start + 1).take(20) {
        assert_eq!(next_text(&mut ws), *want, "frame {i}");
    }
    let st = sim.status();
    assert_eq!((st["clients"].as_u64(), st["api_clients"].as_u64()), (Some(1), Some(1)), "{st}");
    let r = sim.post("/control/drop");
    assert_eq!((r["ok"].as_bool(), r["clients"].as_u64()), (Some(true), Some(2)), "{r}");
    let tail = assert_dropped(&mut ws, true);
    assert_eq!(tail, cap.frames[start + 21..start + 21 + tail.len()], "frames before the drop stay in order");
    assert_dropped(&mut api, false);
    assert_eq!(sim.status()["faults"]["drop"].as_u64(), Some(2));
}

#[test]
fn gap_fault_skips_exactly_one_diff_per_trigger() {
    let _cpu = shared_cpu();
    let dir = tempfile::tempdir().expect("temp dir");
    let cap = write_capture(dir.path(), 3000, 13);
    assert!(gaps(&cap.frames).is_empty(), "the generated capture itself is gap-free");
    let sim =
        Sim::start(dir, &["--input", cap.arg(), "--speed", "10", "--wait-clients", "1", "--gap-after-frames", "200"]);
    let mut ws = sim.ws(ALL_STREAMS);
    let last = cap.frames.last().expect("frames");
    let mut got = Vec::new();
    while got.last() != Some(last) {
        got.push(next_text(&mut ws));
        if got.len() == 1500 {
            assert_eq!(sim.post("/control/gap")["armed"].as_u64(), Some(1));
        }
    }
    // Exactly two diffs are missing: the first one after frame 200, and one after the request.
    let mut skipped = Vec::new();
    let mut j = 0;
    for g in &got {
        while cap.frames[j] != *g {
            skipped.push(j);
            j += 1;
        }
        j += 1;
    }
    let first_diff_after_200 = (200..).find(|&i| is_diff(&cap.frames[i])).expect("a diff");
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert_eq!(skipped[0], first_diff_after_200);
    assert!(skipped[1] >= 1500 && is_diff(&cap.frames[skipped[1]]), "{skipped:?}");
    let g = gaps(&got);
    assert_eq!(g.len(), 2, "the client sees U != previous u + 1 once per gap: {g:?}");
    // The server book applied the skipped diffs: a snapshot resyncs past the gap.
    assert_eq!(sim.snapshot(1000)["lastUpdateId"].as_u64(), Some(last_diff_u(&cap.frames)));
    let st = sim.status();
    assert_eq!((st["faults"]["gap"].as_u64(), st["armed"]["gap"].as_u64()), (Some(2), Some(0)), "{st}");
}

#[test]
fn malformed_fault_sends_one_invalid_text_per_trigger() {
    let _cpu = shared_cpu();
    let dir = tempfile::tempdir().expect("temp dir");
    let cap = write_capture(dir.path(), 3000, 14);
    let sim = Sim::start(
        dir,
        &["--input", cap.arg(), "--speed", "10", "--wait-clients", "1", "--malformed-after-frames", "100"],
    );
    let mut ws = sim.ws(ALL_STREAMS);
    let last = cap.frames.last().expect("frames");
    let mut valid = Vec::new();
    let mut invalid = Vec::new();
    while valid.last() != Some(last) {
        let t = next_text(&mut ws);
        if serde_json::from_str::<Value>(&t).is_ok() {
            valid.push(t);
            if valid.len() == 1000 {
                assert_eq!(sim.post("/control/malformed")["armed"].as_u64(), Some(1));
            }
        } else {
            invalid.push((valid.len(), t));
        }
    }
    assert_eq!(valid, cap.frames, "every frame still arrives, in order");
    assert_eq!(invalid.len(), 2, "{invalid:?}");
    assert_eq!(invalid[0].0, 100, "after 100 frames");
    assert!(invalid[1].0 >= 1000, "{}", invalid[1].0);
    for (at, text) in &invalid {
        assert!(!text.is_empty() && cap.frames[*at].starts_with(text.as_str()), "a truncated copy of the next frame");
    }
    assert_eq!(sim.status()["faults"]["malformed"].as_u64(), Some(2));
}

#[test]
fn stall_fault_sends_nothing_and_answers_no_ping() {
    let _cpu = TIMING.write().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().expect("temp dir");
    let cap = write_capture(dir.path(), 3000, 15);
    let stall = Duration::from_millis(1500);
    let sim = Sim::start(
        dir,
        &[
            "--input",
            cap.arg(),
            "--speed",
            "10",
            "--wait-clients",
            "1",
            "--ping-interval-s",
            "1",
            "--stall-after-frames",
            "200",
            "--stall-ms",
            "1500",
        ],
    );
    let mut ws = sim.ws(ALL_STREAMS);
    // (arrival, what): frame index, "ping" from the server, "pong" for our probe.
    let mut log: Vec<(Instant, String)> = Vec::new();
    let mut frames = 0usize;
    let mut posted = None;
    while frames < cap.frames.len() {
        let m = ws.read().unwrap_or_else(|e| panic!("read: {e}"));
        let now = Instant::now();
        match m {
            Message::Text(t) => {
                assert_eq!(t.as_str(), cap.frames[frames], "frame {frames}");
                frames += 1;
                log.push((now, format!("frame {frames}")));
                if frames == 200 {
                    ws.send(Message::Ping(b"probe".to_vec().into())).expect("probe ping");
                }
                if frames == 1000 {
                    // From another thread: this one keeps reading, so it sees the silence as
                    // it starts.
                    let port = sim.port;
                    let req = std::thread::spawn(move || call(port, "POST", "/control/stall?ms=800"));
                    // The silence may start right after this frame.
                    posted = Some((req, log.len() - 1));
                }
            }
            Message::Ping(_) => log.push((now, "ping".into())),
            Message::Pong(p) => {
                assert_eq!(&p[..], b"probe");
                log.push((now, "pong".into()));
            }
            m => panic!("unexpected {m:?}"),
        }
    }
    // Scheduled: after frame 200, nothing — no frame, no ping, no pong — for the stall.
    let at200 = log.iter().position(|(_, w)| w == "frame 200").expect("frame 200");
    let quiet = log[at200 + 1].0 - log[at200].0;
    assert!(quiet + STALL_SLACK >= stall, "only {quiet:?} of silence after frame 200");
    let pong = log.iter().position(|(_, w)| w == "pong").expect("the probe is answered after the stall");
    assert!(pong > at200 && log[pong].0 - log[at200].0 + STALL_SLACK >= stall);
    assert!(log.iter().any(|(_, w)| w == "ping"), "the server pings every second");
    // On request: a silence of ≥ 800 ms after the request, then the stream resumes.
    let (req, from) = posted.expect("posted");
    let (status, body) = req.join().expect("request thread");
    assert_eq!((status, body["ms"].as_u64()), (200, Some(800)), "{body}");
    let longest = log[from..].windows(2).map(|w| w[1].0 - w[0].0).max().expect("messages after the request");
    assert!(longest + STALL_SLACK >= Duration::from_millis(800), "{longest:?}");
    assert_eq!(sim.status()["faults"]["stall"].as_u64(), Some(2));
}

#[test]
fn loop_restarts_the_capture() {
    let _cpu = shared_cpu();
    let dir = tempfile::tempdir().expect("temp dir");
    let cap = write_capture(dir.path(), 60, 16);
    let sim = Sim::start(dir, &["--input", cap.arg(), "--speed", "0", "--loop", "--wait-clients", "1"]);
    let mut ws = sim.ws(ALL_STREAMS);
    for k in 0..200 {
        assert_eq!(next_text(&mut ws), cap.frames[k % 60], "frame {k}");
    }
    let st = sim.status();
    assert!(st["loops"].as_u64() >= Some(3) && st["ended"] == false, "{st}");
    // Each pass starts over from the capture's snapshot line; just after a restart the book
    // is briefly not ready (503), as a venue under maintenance would answer.
    let t0 = Instant::now();
    loop {
        let (status, body) = sim.get("/api/v3/depth?symbol=BTCUSDT&limit=10");
        if status == 200 {
            assert!(body["lastUpdateId"].as_u64().is_some(), "{body}");
            break;
        }
        assert_eq!((status, body["code"].as_i64()), (503, Some(-1008)), "{body}");
        assert!(t0.elapsed() < Duration::from_secs(5), "no snapshot within 5 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn synthetic_market_sync_and_bad_requests() {
    let _cpu = shared_cpu();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut sim = Sim::start(dir, &["--rate", "500"]);

    // The synthetic market syncs by the documented procedure.
    let mut ws = sim.ws("/stream?streams=btcusdt@depth/btcusdt@bookTicker");
    let mut buffered = Vec::new();
    while buffered.len() < 30 {
        buffered.push(json(&next_text(&mut ws)));
    }
    let mut local = Local::new(&sim.snapshot(1000), &buffered);
    for _ in 0..400 {
        let v = json(&next_text(&mut ws));
        assert!(matches!(stream_of(&v), "btcusdt@depth@100ms" | "btcusdt@bookTicker"), "{v}");
        local.feed(&v);
    }
    assert!(local.book.is_valid() && local.applied > 10, "{}", local.applied);

    // Live SUBSCRIBE on a bare raw connection.
    let mut raw = sim.ws("/ws");
    raw.send(Message::Text(r#"{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1}"#.into())).expect("send");
    assert_eq!(json(&next_text(&mut raw)), json!({"result": null, "id": 1}));
    assert!(next_text(&mut raw).starts_with(r#"{"e":"trade","#));

    // Errors: Binance's shape on Binance's endpoints, `{code, message}` elsewhere.
    for (path, status, code) in [
        ("/api/v3/depth", 400, json!(-1102)),
        ("/api/v3/depth?symbol=NOPE", 400, json!(-1121)),
        ("/api/v3/depth?symbol=BTCUSDT&limit=x", 400, json!(-1100)),
        ("/nope", 404, json!("not_found")),
        ("/stream?streams=btcusdt@trade", 400, json!("websocket_required")),
        ("/control/drop", 405, json!("method_not_allowed")),
    ] {
        let (s, body) = sim.get(path);
        assert_eq!((s, &body["code"]), (status, &code), "{path}: {body}");
        assert!(body["msg"].is_string() || body["message"].is_string(), "{path}: {body}");
    }
    for path in ["/control/stall?ms=0", "/control/stall?ms=x", "/control/stall"] {
        let (s, body) = sim.call("POST", path);
        assert_eq!((s, body["code"].as_str()), (400, Some("bad_request")), "{path}: {body}");
    }
    match tungstenite::client(
        format!("ws://127.0.0.1:{}/stream?streams=nosymbol", sim.port).as_str(),
        TcpStream::connect(("127.0.0.1", sim.port)).expect("connect"),
    ) {
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(res))) => assert_eq!(res.status(), 400),
        other => panic!("a bad stream name must be refused: {:?}", other.map(|_| ())),
    }
    let mut api = sim.ws("/ws-api/v3");
    api.send(Message::Text(r#"{"id":"q","method":"order.fly","params":{}}"#.into())).expect("send");
    let r = json(&next_text(&mut api));
    assert_eq!(
        (r["id"].as_str(), r["status"].as_u64(), r["error"]["code"].as_i64()),
        (Some("q"), Some(400), Some(-1100))
    );
    assert_eq!(sim.status()["source"], "synthetic");

    // SIGINT: exit 0.
    sim.signal(libc::SIGINT);
    assert!(sim.wait_exit(Duration::from_secs(5)).success(), "stderr:\n{}", sim.stderr_text());
}

#[test]
fn refuses_remote_addresses_and_missing_files() {
    let _cpu = shared_cpu();
    for args in [&["--listen", "0.0.0.0:0"][..], &["--listen", "127.0.0.1:0", "--input", "missing.gz"]] {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = command(dir.path(), args).output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--allow-remote") || err.contains("missing.gz"), "{err}");
    }
}

/// The corpus directory: `$HFT_CORPUS_DIR`, else `../shared/data/binance` beside the checkout.
fn corpus() -> Option<[PathBuf; 2]> {
    let dir = std::env::var_os("HFT_CORPUS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/binance")));
    let files = ["spot_btcusdt_20240808.gz", "spot_btcusdt_20240809.gz"].map(|f| dir.join(f));
    files.iter().all(|f| f.is_file()).then_some(files)
}

#[test]
fn serves_the_real_corpus_unchanged() {
    let _cpu = shared_cpu();
    let Some(files) = corpus() else {
        eprintln!("serves_the_real_corpus_unchanged: corpus not found (set HFT_CORPUS_DIR); skipped");
        return;
    };
    const N: usize = 4000;
    // The first N stream frames of the first file, as recorded.
    let mut want = Vec::with_capacity(N);
    let reader = BufReader::new(flate2::read::MultiGzDecoder::new(std::fs::File::open(&files[0]).expect("open")));
    for line in reader.lines() {
        let line = line.expect("read corpus");
        let json = line.split_once(' ').expect("<ns> <json>").1;
        if json.starts_with(r#"{"stream":"#) {
            want.push(json.to_owned());
        }
        if want.len() == N {
            break;
        }
    }
    let paths = files.each_ref().map(|f| f.to_str().expect("UTF-8 path"));
    let dir = tempfile::tempdir().expect("temp dir");
    let sim = Sim::start(dir, &["--input", paths[0], paths[1], "--speed", "0", "--wait-clients", "1"]);
    let mut ws = sim.ws(ALL_STREAMS);
    let mut buffered = Vec::new();
    let mut local: Option<Local> = None;
    for (i, w) in want.iter().enumerate() {
        let got = next_text(&mut ws);
        assert!(got == *w, "frame {i} differs:\n got {got}\nwant {w}");
        let v = json(&got);
        match &mut local {
            Some(l) => l.feed(&v),
            None if is_diff(&got) => buffered.push(v),
            None => {}
        }
        // The server book was initialised from the capture's snapshot line and the diffs
        // around it: a snapshot taken now syncs the rest of the stream.
        if i == 1000 {
            local = Some(Local::new(&sim.snapshot(1000), &buffered));
        }
    }
    // At full speed the server may run ahead of this reader, so the snapshot can be newer than
    // every diff read so far (they are then stale): read on until the stream passes it.
    let mut l = local.expect("synced");
    let mut extra = 0;
    while (l.applied <= 100 || l.ticker_checks <= 10) && extra < 40_000 {
        l.feed(&json(&next_text(&mut ws)));
        extra += 1;
    }
    assert!(
        l.book.is_valid() && l.applied > 100 && l.ticker_checks > 10,
        "{} {} after {extra} more",
        l.applied,
        l.ticker_checks
    );
}
