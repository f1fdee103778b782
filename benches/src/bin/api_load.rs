//! Isolation harness: does control-plane load (REST polling, WebSocket subscribers) move the
//! hot thread's latency? Starts the real `hft` binary in paper mode, measures the engine's own
//! stage percentiles (`GET /latency`, tick-to-order and the stages) over a window with the API
//! idle, then over the same window under load, alternately (ABBA order: idle→loaded,
//! loaded→idle, …) for K rounds, and prints each round and the medians, with the loaded/idle
//! p99 ratio against the 1.25× target.
//!
//! Placement, as `scripts/hft.service` sets it up: this process restricts itself to the control
//! core (default 0) before starting `hft`, so `hft` inherits that mask (systemd `CPUAffinity=`)
//! and its hot thread pins itself to `engine.core` (default 1, busy-spinning). The load threads
//! run on the control core too. Nothing else on the machine is moved: without isolcpus the
//! scheduler may still run other processes on the engine core, and that noise is measured too.
//!
//! Runs on ordinary threads (main: orchestration; one per HTTP load thread and per WebSocket
//! subscriber); allocates freely. Always stops `hft` (SIGTERM, then SIGKILL) before returning.
//!
//! Usage: `cargo run --release -p hft-benches --bin api_load -- --help` (or
//! `scripts/isolation.sh`, which builds `hft` in release first).

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const STAGES: [&str; 6] = ["decode", "book", "strategy", "risk", "order_encode", "tick_to_order"];
/// Loaded p99 / idle p99 of tick-to-order must stay within this.
const TARGET_RATIO: f64 = 1.25;
const USAGE: &str = "\
api_load: tick-to-order latency of a running hft with the control API idle vs under load

usage: api_load [options]
  --hft PATH           hft binary [default: <workspace>/target/release/hft]
  --secs N             measurement window per phase, seconds [default: 20]
  --rounds K           idle/loaded pairs, run in ABBA order; medians reported [default: 3]
  --warmup N           seconds between start and the first window [default: 5]
  --rps N              GET requests per second, all threads together [default: 300]
  --http-threads N     HTTP load threads (one keep-alive connection each) [default: 3]
  --path P             endpoint the HTTP load polls [default: /stats]
  --ws N               /ws subscribers reading continuously [default: 8]
  --core N|none        engine.core: the hot thread's core [default: 1]
  --control-core N|none  core for this harness and hft's control plane [default: 0]
  --idle spin|yield|sleep  engine.idle [default: spin]
  --rate N             built-in market frames per second [default: 200]
";

#[derive(Debug, Clone)]
struct Opts {
    hft: PathBuf,
    secs: u64,
    rounds: usize,
    warmup: u64,
    rps: u32,
    http_threads: u32,
    path: String,
    ws: u32,
    core: Option<usize>,
    control_core: Option<usize>,
    idle: String,
    rate: u32,
}

fn parse_opts() -> anyhow::Result<Option<Opts>> {
    let mut o = Opts {
        hft: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release/hft")),
        secs: 20,
        rounds: 3,
        warmup: 5,
        rps: 300,
        http_threads: 3,
        path: "/stats".into(),
        ws: 8,
        core: Some(1),
        control_core: Some(0),
        idle: "spin".into(),
        rate: 200,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| anyhow::anyhow!("{a} needs a value (try --help)"));
        fn num<T: std::str::FromStr>(flag: &str, v: String) -> anyhow::Result<T> {
            v.parse().map_err(|_| anyhow::anyhow!("{flag}: not a number: {v:?}"))
        }
        fn core(flag: &str, v: String) -> anyhow::Result<Option<usize>> {
            if v == "none" { Ok(None) } else { num(flag, v).map(Some) }
        }
        match a.as_str() {
            "--hft" => o.hft = PathBuf::from(val()?),
            "--secs" => o.secs = num(&a, val()?)?,
            "--rounds" => o.rounds = num(&a, val()?)?,
            "--warmup" => o.warmup = num(&a, val()?)?,
            "--rps" => o.rps = num(&a, val()?)?,
            "--http-threads" => o.http_threads = num(&a, val()?)?,
            "--path" => o.path = val()?,
            "--ws" => o.ws = num(&a, val()?)?,
            "--core" => o.core = core(&a, val()?)?,
            "--control-core" => o.control_core = core(&a, val()?)?,
            "--idle" => o.idle = val()?,
            "--rate" => o.rate = num(&a, val()?)?,
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(None);
            }
            other => anyhow::bail!("unknown argument {other:?} (try --help)"),
        }
    }
    anyhow::ensure!(o.secs > 0 && o.rounds > 0, "--secs and --rounds must be positive");
    anyhow::ensure!(o.rps == 0 || o.http_threads > 0, "--rps needs at least one --http-threads");
    anyhow::ensure!(o.path.starts_with('/'), "--path must start with /");
    anyhow::ensure!(["spin", "yield", "sleep"].contains(&o.idle.as_str()), "--idle: spin, yield or sleep");
    anyhow::ensure!(
        o.core.is_none() || o.core != o.control_core,
        "--core and --control-core must differ (the hot thread owns its core)"
    );
    Ok(Some(o))
}

/// Restricts the calling thread (and so every thread and process it starts later) to `core`.
fn restrict_to(core: usize) -> anyhow::Result<()> {
    anyhow::ensure!(
        core_affinity::set_for_current(core_affinity::CoreId { id: core }),
        "cannot restrict this process to core {core} (--control-core)"
    );
    Ok(())
}

/// The `hft` child: stopped (SIGTERM, then SIGKILL after 15 s) and reaped on drop.
struct Hft {
    child: Child,
    port: u16,
    token: String,
    dir: PathBuf,
}

impl Hft {
    fn start(o: &Opts) -> anyhow::Result<Hft> {
        anyhow::ensure!(
            o.hft.is_file(),
            "{} not found: build it with `cargo build --release -p hft-control` (or pass --hft)",
            o.hft.display()
        );
        // Absolute: a relative program path would be looked up from the child's working dir.
        let bin = std::fs::canonicalize(&o.hft)?;
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        // A random per-run token, never printed.
        let mut raw = [0u8; 16];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut raw)?;
        let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let dir = std::env::temp_dir().join(format!("hft-api-load-{}-{nanos:x}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let log = std::fs::File::create(dir.join("hft.log"))?;
        let mut cmd = Command::new(&bin);
        cmd.current_dir(&dir)
            .env_clear()
            .env("HFT_API_TOKEN", &token)
            .env("RUST_LOG", "warn")
            .env("HFT__API__PORT", "0")
            .env("HFT__ENGINE__IDLE", &o.idle)
            .env("HFT__MARKET__RATE", o.rate.to_string())
            // An order-heavy paper run, so tick-to-order has tens of samples a second: momentum
            // on a 2-tick return with a tiny threshold, no cooldown or duplicate window, venue
            // rate limits out of the way, and capital large enough that the breakers do not
            // trip over the run (the strategy pays fees and spread on every trade).
            .env("HFT__STRATEGIES__MOMENTUM__LOOKBACK", "2")
            .env("HFT__STRATEGIES__MOMENTUM__THRESHOLD", "0.000001")
            .env("HFT__RISK__ORDER_COOLDOWN_MS", "0")
            .env("HFT__RISK__DUPLICATE_WINDOW_MS", "0")
            .env("HFT__RISK__ORDERS_PER_10S", "100000")
            .env("HFT__RISK__ORDERS_PER_DAY", "100000000")
            .env("HFT__CAPITAL__TOTAL", "10000000")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        if let Some(c) = o.core {
            cmd.env("HFT__ENGINE__CORE", c.to_string());
        }
        // If this harness dies without stopping `hft` (a signal, a kill -9), the kernel sends
        // `hft` SIGTERM: a measurement never leaves a spinning engine behind.
        let parent = std::process::id();
        let die_with_parent = move || {
            // SAFETY: prctl(PR_SET_PDEATHSIG) and getppid are plain syscalls (async-signal-safe),
            // run in the child between fork and exec with no memory handed to the kernel.
            let (rc, ppid) = unsafe { (libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM), libc::getppid()) };
            if rc != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before the prctl: then nobody would ever stop us.
            if u32::try_from(ppid).ok() != Some(parent) {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        };
        // SAFETY: the closure only makes async-signal-safe syscalls and never allocates (its
        // errors are raw OS errors).
        unsafe { std::os::unix::process::CommandExt::pre_exec(&mut cmd, die_with_parent) };
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                anyhow::bail!("cannot start {}: {e}", bin.display());
            }
        };
        // From here on, dropping `hft` stops the child whatever fails.
        let mut hft = Hft { child, port: 0, token, dir };
        let (tx, rx) = mpsc::channel();
        let stdout = hft.child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let banner = loop {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(200))
                && line.contains("API http://")
            {
                break line;
            }
            if let Ok(Some(status)) = hft.child.try_wait() {
                anyhow::bail!("hft exited at start ({status}): {}", hft.log_tail());
            }
            anyhow::ensure!(Instant::now() < deadline, "no banner within 30 s: {}", hft.log_tail());
        };
        hft.port = banner
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| c.is_whitespace() || c == '/').next())
            .and_then(|authority| authority.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no port in the banner {banner:?}"))?;
        Ok(hft)
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("hft.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// SIGTERM, wait up to 15 s, then SIGKILL. Returns how it ended.
    fn stop(&mut self) -> String {
        if let Ok(Some(status)) = self.child.try_wait() {
            return format!("had already exited ({status})");
        }
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) has no memory-safety preconditions; `pid` is our own child, not yet
            // reaped, so it cannot name another process.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return format!("stopped on SIGTERM ({status})");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        "killed: it did not stop within 15 s of SIGTERM".into()
    }
}

impl Drop for Hft {
    fn drop(&mut self) {
        let how = self.stop();
        eprintln!("hft {how}");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(5))).build(),
    )
}

/// One stage's percentiles, ns.
#[derive(Debug, Clone, Copy, Default)]
struct Pct {
    count: u64,
    p50: u64,
    p90: u64,
    p99: u64,
    p999: u64,
}

type Stages = [Pct; STAGES.len()];

fn wait_ready(hft: &Hft, within: Duration) -> anyhow::Result<()> {
    let a = agent();
    let deadline = Instant::now() + within;
    loop {
        if let Ok(r) = a.get(&hft.url("/health")).call()
            && r.status().as_u16() == 200
        {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "/health not ready within {within:?}: {}", hft.log_tail());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Clears the engine's histograms: `POST /latency/reset`, or `DELETE /latency`.
fn reset_latency(hft: &Hft) -> anyhow::Result<()> {
    let a = agent();
    let auth = format!("Bearer {}", hft.token);
    let res = a.post(&hft.url("/latency/reset")).header("Authorization", &auth).send_empty()?;
    let mut status = res.status().as_u16();
    if status == 404 || status == 405 {
        status = a.delete(&hft.url("/latency")).header("Authorization", &auth).call()?.status().as_u16();
    }
    anyhow::ensure!(status == 200, "latency reset answered {status}: this hft has no POST /latency/reset");
    Ok(())
}

fn read_latency(hft: &Hft) -> anyhow::Result<Stages> {
    let mut res = agent().get(&hft.url("/latency")).call()?;
    anyhow::ensure!(res.status().as_u16() == 200, "GET /latency answered {}", res.status());
    let v: Value = res.body_mut().read_json()?;
    let mut out = Stages::default();
    for (i, s) in STAGES.iter().enumerate() {
        let st = &v[*s];
        let f = |k: &str| st[k].as_u64().ok_or_else(|| anyhow::anyhow!("/latency: no {s}.{k} in {v}"));
        out[i] = Pct { count: f("count")?, p50: f("p50")?, p90: f("p90")?, p99: f("p99")?, p999: f("p99.9")? };
    }
    Ok(out)
}

/// What the load threads did, counted as they go.
#[derive(Default)]
struct LoadCounters {
    http_ok: AtomicU64,
    http_bad: AtomicU64,
    http_err: AtomicU64,
    ws_msgs: AtomicU64,
    ws_bytes: AtomicU64,
    ws_err: AtomicU64,
}

impl LoadCounters {
    fn snapshot(&self) -> [u64; 6] {
        [&self.http_ok, &self.http_bad, &self.http_err, &self.ws_msgs, &self.ws_bytes, &self.ws_err]
            .map(|c| c.load(Ordering::Relaxed))
    }
}

/// The running load: HTTP pollers and WebSocket subscribers until `stop`.
struct Load {
    stop: Arc<AtomicBool>,
    counters: Arc<LoadCounters>,
    http: Vec<JoinHandle<Vec<u32>>>,
    ws: Vec<JoinHandle<()>>,
}

impl Load {
    fn start(hft: &Hft, o: &Opts) -> anyhow::Result<Load> {
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(LoadCounters::default());
        let mut ws = Vec::new();
        for _ in 0..o.ws {
            let (socket, _) = tungstenite::connect(format!("ws://127.0.0.1:{}/ws", hft.port))
                .map_err(|e| anyhow::anyhow!("cannot subscribe to /ws: {e}"))?;
            let (stop, c) = (stop.clone(), counters.clone());
            ws.push(std::thread::spawn(move || subscribe(socket, &stop, &c)));
        }
        let mut http = Vec::new();
        if o.rps > 0 {
            let per_thread = f64::from(o.rps) / f64::from(o.http_threads);
            let interval = Duration::from_secs_f64(1.0 / per_thread);
            for t in 0..o.http_threads {
                let (stop, c, url) = (stop.clone(), counters.clone(), hft.url(&o.path));
                // Staggered so the threads' requests interleave instead of arriving together.
                let offset = interval.mul_f64(f64::from(t) / f64::from(o.http_threads));
                http.push(std::thread::spawn(move || poll(&url, interval, offset, &stop, &c)));
            }
        }
        Ok(Load { stop, counters, http, ws })
    }

    /// Stops every thread; the HTTP round-trip times (µs) of the whole run.
    fn stop(self) -> Vec<u32> {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.ws {
            let _ = h.join();
        }
        self.http.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    }
}

/// GETs `url` every `interval` on one keep-alive connection, on an absolute schedule (a late
/// request does not shift the next ones; after falling a second behind the schedule restarts).
fn poll(url: &str, interval: Duration, offset: Duration, stop: &AtomicBool, c: &LoadCounters) -> Vec<u32> {
    let a = agent();
    let mut rtt = Vec::with_capacity(1 << 16);
    let mut next = Instant::now() + offset;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else if now - next > Duration::from_secs(1) {
            next = now;
        }
        next += interval;
        let t0 = Instant::now();
        match a.get(url).call() {
            Ok(mut r) => {
                let ok = r.status().as_u16() == 200 && r.body_mut().read_to_vec().is_ok();
                let counter = if ok { &c.http_ok } else { &c.http_bad };
                counter.fetch_add(1, Ordering::Relaxed);
                rtt.push(t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
            }
            Err(_) => {
                c.http_err.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    rtt
}

/// Reads every pushed message until `stop`, then closes politely.
fn subscribe(
    mut socket: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>,
    stop: &AtomicBool,
    c: &LoadCounters,
) {
    use tungstenite::{Error, Message};
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = socket.get_mut() {
        let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
    }
    while !stop.load(Ordering::Relaxed) {
        match socket.read() {
            Ok(Message::Text(t)) => {
                c.ws_msgs.fetch_add(1, Ordering::Relaxed);
                c.ws_bytes.fetch_add(t.len() as u64, Ordering::Relaxed);
            }
            Ok(_) => {}
            Err(Error::Io(e)) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => {
                c.ws_err.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    }
    let _ = socket.close(None);
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        match socket.read() {
            Err(Error::Io(e)) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
            Ok(_) => {}
        }
    }
}

/// One measurement window: reset, wait, read. With load running, also what the load did in it.
fn window(hft: &Hft, secs: u64, load: Option<&LoadCounters>) -> anyhow::Result<(Stages, Option<[u64; 6]>)> {
    reset_latency(hft)?;
    let before = load.map(LoadCounters::snapshot);
    std::thread::sleep(Duration::from_secs(secs));
    let stages = read_latency(hft)?;
    let delta = load.zip(before).map(|(l, b)| {
        let a = l.snapshot();
        std::array::from_fn(|i| a[i] - b[i])
    });
    Ok((stages, delta))
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    let n = v.len();
    if n == 0 {
        0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

fn ratio(loaded: u64, idle: u64) -> f64 {
    if idle == 0 { f64::NAN } else { loaded as f64 / idle as f64 }
}

fn table(title: &str, idle: &Stages, loaded: &Stages) {
    println!("{title}");
    println!(
        "  {:<14} {:>7} {:>7} {:>7} {:>7} {:>7} | {:>7} {:>7} {:>7} {:>7} {:>7} | {:>9}",
        "stage (ns)", "idle n", "p50", "p90", "p99", "p99.9", "load n", "p50", "p90", "p99", "p99.9", "p99 ratio"
    );
    for (i, s) in STAGES.iter().enumerate() {
        let (a, b) = (idle[i], loaded[i]);
        println!(
            "  {:<14} {:>7} {:>7} {:>7} {:>7} {:>7} | {:>7} {:>7} {:>7} {:>7} {:>7} | {:>8.2}x",
            s,
            a.count,
            a.p50,
            a.p90,
            a.p99,
            a.p999,
            b.count,
            b.p50,
            b.p90,
            b.p99,
            b.p999,
            ratio(b.p99, a.p99)
        );
    }
}

fn main() -> anyhow::Result<()> {
    let Some(o) = parse_opts()? else { return Ok(()) };
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    if let Some(c) = o.control_core {
        restrict_to(c)?;
    }
    println!(
        "api_load: {} CPUs; hot thread on core {} (idle = {}); control plane and load on core {}",
        cpus,
        o.core.map_or("(not pinned)".into(), |c| c.to_string()),
        o.idle,
        o.control_core.map_or("(any)".into(), |c| c.to_string())
    );
    println!(
        "  market {} frames/s; load: {} GET {}/s over {} threads + {} /ws subscribers; windows {} s, {} rounds (ABBA)",
        o.rate, o.path, o.rps, o.http_threads, o.ws, o.secs, o.rounds
    );

    let hft = Hft::start(&o)?;
    wait_ready(&hft, Duration::from_secs(30))?;
    std::thread::sleep(Duration::from_secs(o.warmup));

    let mut rounds: Vec<(Stages, Stages)> = Vec::new();
    let mut load_rtts: Vec<u32> = Vec::new();
    let mut load_totals = [0u64; 6];
    let mut loaded_secs = 0u64;
    for r in 0..o.rounds {
        let idle_first = r % 2 == 0;
        let mut idle = None;
        let mut loaded = None;
        for phase_loaded in if idle_first { [false, true] } else { [true, false] } {
            if phase_loaded {
                let load = Load::start(&hft, &o)?;
                // Connections up and the first pushes sent before the window opens.
                std::thread::sleep(Duration::from_secs(1));
                let res = window(&hft, o.secs, Some(&load.counters));
                load_rtts.extend(load.stop());
                let (stages, delta) = res?;
                if let Some(d) = delta {
                    for (t, x) in load_totals.iter_mut().zip(d) {
                        *t += x;
                    }
                }
                loaded_secs += o.secs;
                loaded = Some(stages);
                // Let closing connections settle before an idle window.
                std::thread::sleep(Duration::from_secs(1));
            } else {
                idle = Some(window(&hft, o.secs, None)?.0);
            }
        }
        let (Some(idle), Some(loaded)) = (idle, loaded) else { unreachable!("both phases ran") };
        let order = if idle_first { "idle → loaded" } else { "loaded → idle" };
        table(&format!("round {} ({order})", r + 1), &idle, &loaded);
        rounds.push((idle, loaded));
    }

    let med = |pick: &dyn Fn(&(Stages, Stages)) -> Stages| -> Stages {
        std::array::from_fn(|i| {
            let col = |f: fn(&Pct) -> u64| median(rounds.iter().map(|r| f(&pick(r)[i])).collect());
            Pct {
                count: col(|p| p.count),
                p50: col(|p| p.p50),
                p90: col(|p| p.p90),
                p99: col(|p| p.p99),
                p999: col(|p| p.p999),
            }
        })
    };
    let (idle_med, loaded_med) = (med(&|r| r.0), med(&|r| r.1));
    println!();
    table(&format!("medians over {} rounds", o.rounds), &idle_med, &loaded_med);

    let t2o = STAGES.len() - 1;
    let per_round: Vec<String> = rounds.iter().map(|(i, l)| format!("{:.2}x", ratio(l[t2o].p99, i[t2o].p99))).collect();
    let r = ratio(loaded_med[t2o].p99, idle_med[t2o].p99);
    println!();
    println!(
        "tick_to_order p99: idle {} ns, loaded {} ns (medians) -> loaded/idle {:.2}x (per round: {}); target <= {:.2}x: {}",
        idle_med[t2o].p99,
        loaded_med[t2o].p99,
        r,
        per_round.join(", "),
        TARGET_RATIO,
        if r <= TARGET_RATIO { "met" } else { "MISSED" }
    );
    let [ok, bad, err, msgs, bytes, ws_err] = load_totals;
    let secs = loaded_secs.max(1) as f64;
    load_rtts.sort_unstable();
    let q =
        |p: f64| load_rtts.get(((load_rtts.len() as f64 * p) as usize).min(load_rtts.len().saturating_sub(1))).copied();
    println!(
        "load achieved in the loaded windows: {:.0} GET/s ({} ok, {} non-200, {} failed; round trip p50 {} µs, p99 {} µs), \
         {:.0} /ws messages/s ({:.0} kB/s, {} subscriber errors)",
        (ok + bad) as f64 / secs,
        ok,
        bad,
        err,
        q(0.5).map_or("-".into(), |v| v.to_string()),
        q(0.99).map_or("-".into(), |v| v.to_string()),
        msgs as f64 / secs,
        bytes as f64 / secs / 1000.0,
        ws_err
    );
    if bad + err + ws_err > 0 || ok == 0 && o.rps > 0 || msgs == 0 && o.ws > 0 {
        println!("warning: the load did not run cleanly; the loaded figures understate the load");
    }
    drop(hft);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(vec![3, 1, 2]), 2);
        assert_eq!(median(vec![4, 1, 3, 2]), 2);
        assert_eq!(median(vec![]), 0);
    }

    #[test]
    fn ratio_of_zero_idle_is_not_a_number() {
        assert!(ratio(5, 0).is_nan());
        assert_eq!(ratio(5, 4), 1.25);
    }
}
