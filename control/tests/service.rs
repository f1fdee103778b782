//! Running as a systemd service: the shipped unit passes `systemd-analyze verify` and its
//! offline security review, its settings are valid configuration, the real binary speaks the
//! notify protocol (READY=1 when ready, WATCHDOG=1 keep-alives, STOPPING=1 on SIGTERM), and
//! `scripts/tune-host.sh` reports without root.
//!
//! Each test that starts `hft` uses its own temp working dir, an OS-chosen port and
//! `engine.idle = sleep` (nothing spins); the process is killed on drop whatever happens.

mod common;

use common::{Running, get, hft, port_after};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

fn unit_text() -> String {
    std::fs::read_to_string(repo_root().join("scripts/hft.service")).expect("read scripts/hft.service")
}

/// The `[Service]` assignments of the shipped unit, in order (`key`, `value`).
fn service_settings() -> Vec<(String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in unit_text().lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.to_owned();
        } else if section == "[Service]"
            && !line.starts_with('#')
            && let Some((k, v)) = line.split_once('=')
        {
            out.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    out
}

fn setting(key: &str) -> Option<String> {
    service_settings().into_iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// `systemd-analyze`, or why the test is skipped.
fn systemd_analyze() -> Option<PathBuf> {
    let found =
        ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].into_iter().map(PathBuf::from).find(|p| p.exists());
    if found.is_none() {
        eprintln!("skipped: systemd-analyze is not installed here");
    }
    found
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("run systemd-analyze");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The unit as shipped, with `ExecStart` pointing at the binary under test (verify checks that
/// the command exists and is executable), written to `dir/hft.service`.
fn unit_with_built_binary(dir: &Path) -> PathBuf {
    let bin = env!("CARGO_BIN_EXE_hft");
    assert!(!bin.contains(char::is_whitespace), "binary path with spaces: {bin}");
    let text = unit_text();
    assert_eq!(text.matches("ExecStart=/usr/local/bin/hft ").count(), 1, "one ExecStart at the documented path");
    let path = dir.join("hft.service");
    std::fs::write(&path, text.replace("ExecStart=/usr/local/bin/hft ", &format!("ExecStart={bin} ")))
        .expect("write unit");
    path
}

#[test]
fn unit_verifies_cleanly() {
    let Some(sa) = systemd_analyze() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = unit_with_built_binary(dir.path());
    let (ok, stdout, stderr) = run(Command::new(&sa).args(["verify", "--man=no"]).arg(&unit));
    // Unknown keys and bad values are only warnings (exit 0): the output must be empty too.
    assert!(ok && stderr.trim().is_empty() && stdout.trim().is_empty(), "verify:\n{stdout}\n{stderr}");

    // The shipped file as is: clean apart from the binary not being installed on this machine.
    let shipped = repo_root().join("scripts/hft.service");
    let (ok, stdout, stderr) = run(Command::new(&sa).args(["verify", "--man=no"]).arg(&shipped));
    if Path::new("/usr/local/bin/hft").exists() {
        assert!(ok && stderr.trim().is_empty(), "verify (installed binary):\n{stdout}\n{stderr}");
    } else {
        let complaints: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(
            !ok && complaints.len() == 1 && complaints[0].contains("/usr/local/bin/hft is not executable"),
            "verify (shipped):\n{stdout}\n{stderr}"
        );
    }
}

#[test]
fn unit_hardening_exposure_stays_low() {
    let Some(sa) = systemd_analyze() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = unit_with_built_binary(dir.path());
    // Exposure is 0.0 (locked down) to 10.0; the threshold is in tenths. The unit scores 1.6
    // here: a network client and server that writes only its state directory.
    let (ok, stdout, stderr) =
        run(Command::new(&sa).args(["security", "--offline=true", "--threshold=20", "--man=no"]).arg(&unit));
    if stderr.contains("unrecognized option") || stderr.contains("Unknown option") {
        eprintln!("skipped: this systemd-analyze has no offline security review");
        return;
    }
    let level = stdout.lines().find(|l| l.contains("Overall exposure level")).unwrap_or("(no overall level)");
    assert!(ok, "exposure above 2.0: {level}\n{stderr}");
    eprintln!("{level}");
}

#[test]
fn unit_declares_notify_watchdog_restart_and_sandbox() {
    let want = [
        ("Type", "notify"),
        ("NotifyAccess", "main"),
        ("Restart", "on-failure"),
        ("RestartPreventExitStatus", "2"),
        ("KillSignal", "SIGTERM"),
        ("WorkingDirectory", "/var/lib/hft"),
        ("StateDirectory", "hft"),
        ("EnvironmentFile", "-/etc/hft/hft.env"),
        ("LimitMEMLOCK", "infinity"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("CapabilityBoundingSet", ""),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallFilter", "@system-service"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("StandardOutput", "null"),
    ];
    for (k, v) in want {
        assert_eq!(setting(k).as_deref(), Some(v), "{k}=");
    }
    let secs = |k: &str| -> u64 {
        let v = setting(k).unwrap_or_else(|| panic!("{k}= missing"));
        v.strip_suffix('s').and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{k}={v}: expected <n>s"))
    };
    // The watchdog must outlast the readiness window (≥ 2 s) plus a keep-alive period, and the
    // stop timeout the engine's shutdown budget (5 s engine + 2 s HTTP + 1 s runtime).
    assert!(secs("WatchdogSec") >= 6, "WatchdogSec too short for the 2 s readiness window");
    assert!(secs("TimeoutStopSec") > 8, "TimeoutStopSec shorter than the shutdown budget");
    // A real-time policy and RestrictRealtime=yes cannot both be on.
    assert!(setting("CPUSchedulingPolicy").is_none() || setting("RestrictRealtime").as_deref() != Some("yes"));
}

/// The unit's `HFT__SECTION__KEY` settings are valid configuration (a typo in a key or value
/// would stop the service at every start), and its CPU mask keeps the control plane off the
/// engine's core. The variables are applied as the TOML they stand for (`HFT__ENGINE__CORE=1`
/// → `[engine] core = 1`): the config's environment lookup cannot be given a variable list.
#[test]
fn unit_environment_is_valid_configuration() {
    let mut sections: std::collections::BTreeMap<String, String> = Default::default();
    for (_, v) in service_settings().into_iter().filter(|(k, _)| k == "Environment") {
        let (name, value) = v.split_once('=').unwrap_or_else(|| panic!("Environment={v}"));
        let Some(path) = name.strip_prefix("HFT__") else { continue };
        let (section, key) = path.split_once("__").unwrap_or_else(|| panic!("{name}: not HFT__SECTION__KEY"));
        let literal = if value.parse::<f64>().is_ok() || value == "true" || value == "false" {
            value.to_owned()
        } else {
            format!("{value:?}")
        };
        let body = sections.entry(section.to_lowercase()).or_default();
        body.push_str(&format!("{} = {literal}\n", key.to_lowercase()));
    }
    let toml: String = sections.iter().map(|(s, body)| format!("[{s}]\n{body}")).collect();
    let cfg = hft_shared::config::Config::from_toml_str(&toml, &|_| None)
        .unwrap_or_else(|e| panic!("the unit's Environment= is not valid config ({toml}): {e}"));
    let core = cfg.engine.core.expect("engine.core set by the unit");
    let affinity = setting("CPUAffinity").expect("CPUAffinity=");
    let control: Vec<usize> = affinity.split_whitespace().filter_map(|c| c.parse().ok()).collect();
    assert!(!control.is_empty() && !control.contains(&core), "CPUAffinity={affinity} overlaps engine.core={core}");
}

/// A datagram socket standing in for systemd's notify socket.
struct NotifySocket {
    sock: UnixDatagram,
    log: Vec<String>,
}

impl NotifySocket {
    fn bind(path: &Path) -> Self {
        let sock = UnixDatagram::bind(path).expect("bind notify socket");
        sock.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
        Self { sock, log: Vec::new() }
    }

    /// Datagrams until `until` returns true for one of them or `within` passes; all of them.
    fn collect(&mut self, within: Duration, until: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            if let Ok(n) = self.sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.log.push(msg.clone());
                let done = until(&msg);
                got.push(msg);
                if done {
                    break;
                }
            }
        }
        got
    }
}

fn start(dir: &Path, env: &[(&str, &str)]) -> (Running, u16) {
    let mut cmd = hft(dir);
    cmd.env("HFT__API__PORT", "0").env("HFT__ENGINE__IDLE", "sleep").env("HFT_API_TOKEN", "service-test-token");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let running = Running::spawn(cmd);
    let banner = running.line_with("API http://", Duration::from_secs(20));
    (running, port_after(&banner, "http://"))
}

#[test]
fn notify_protocol_ready_watchdog_stopping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notify.sock");
    let mut sd = NotifySocket::bind(&path);
    let (mut hft, port) =
        start(dir.path(), &[("NOTIFY_SOCKET", path.to_str().expect("utf-8 path")), ("WATCHDOG_USEC", "1000000")]);

    let got = sd.collect(Duration::from_secs(10), |m| m.lines().any(|l| l == "READY=1"));
    let ready = got.last().unwrap_or_else(|| panic!("no READY=1; stderr:\n{}", hft.stderr_text()));
    assert!(ready.lines().any(|l| l == "READY=1"), "{got:?}");
    assert!(ready.contains("STATUS=paper BTCUSDT · trading"), "{ready}");
    // READY means ready: the engine has reported and the API says so.
    let (status, health) = get(port, "/health");
    assert_eq!((status, health["ready"].as_bool()), (200, Some(true)), "{health}");

    // WATCHDOG_USEC = 1 s: a keep-alive every 500 ms while the heartbeat is fresh.
    let t0 = Instant::now();
    let got = sd.collect(Duration::from_millis(2300), |_| false);
    let keepalives = got.iter().filter(|m| m.lines().any(|l| l == "WATCHDOG=1")).count();
    assert!((3..=6).contains(&keepalives), "{keepalives} keep-alives in {:?}: {got:?}", t0.elapsed());

    hft.signal(libc::SIGTERM);
    let got = sd.collect(Duration::from_secs(5), |m| m.lines().any(|l| l == "STOPPING=1"));
    assert!(got.iter().any(|m| m.lines().any(|l| l == "STOPPING=1")), "{got:?}; stderr:\n{}", hft.stderr_text());
    let exit = hft.wait_exit(Duration::from_secs(10));
    assert!(exit.success(), "{exit:?}; stderr:\n{}", hft.stderr_text());
    // Nothing after STOPPING=1 (the keep-alive task is stopped first).
    let after = sd.collect(Duration::from_millis(300), |_| false);
    assert!(after.is_empty(), "{after:?}");
    let token_seen = sd.log.iter().any(|m| m.contains("service-test-token"));
    assert!(!token_seen, "the token was sent to the service manager");
}

/// `WATCHDOG_PID` naming another process: READY=1 and status, no keep-alives. Also covers an
/// abstract notify socket (`@name`).
#[test]
fn watchdog_for_another_pid_is_not_fed_and_abstract_sockets_work() {
    use std::os::linux::net::SocketAddrExt;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let name = format!("hft-service-test-{}-{nanos}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract addr");
    let sock = UnixDatagram::bind_addr(&addr).expect("bind abstract");
    sock.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
    let mut sd = NotifySocket { sock, log: Vec::new() };
    let dir = tempfile::tempdir().expect("tempdir");
    let notify = format!("@{name}");
    let (hft, _port) =
        start(dir.path(), &[("NOTIFY_SOCKET", &notify), ("WATCHDOG_USEC", "400000"), ("WATCHDOG_PID", "1")]);
    let got = sd.collect(Duration::from_secs(10), |m| m.lines().any(|l| l == "READY=1"));
    assert!(got.iter().any(|m| m.lines().any(|l| l == "READY=1")), "{got:?}; stderr:\n{}", hft.stderr_text());
    let got = sd.collect(Duration::from_millis(1500), |_| false);
    assert!(got.iter().all(|m| !m.contains("WATCHDOG")), "{got:?}");
}

fn tune_host(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/tune-host.sh"))
        .args(args)
        .env("LC_ALL", "C")
        .output()
        .expect("run tune-host.sh");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn tune_host_reports_every_check_and_changes_nothing() {
    let (code, out, err) = tune_host(&["--core", "1"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    let checks = [
        "isolcpus",
        "nohz_full",
        "rcu_nocbs",
        "governor",
        "thp",
        "irqbalance",
        "irq_affinity",
        "swap",
        "swappiness",
        "memlock",
        "clocksource",
    ];
    for c in checks {
        let line = out.lines().find(|l| l.split_whitespace().nth(1) == Some(c));
        let line = line.unwrap_or_else(|| panic!("no {c} line in:\n{out}"));
        let status = line.split_whitespace().next().unwrap_or("");
        assert!(["OK", "WARN", "SKIP"].contains(&status), "{line}");
    }
    // --strict fails exactly when something warned.
    let warned = out.lines().any(|l| l.starts_with("WARN"));
    let (strict, out2, _) = tune_host(&["--core", "1", "--strict"]);
    assert_eq!(strict, Some(if warned { 1 } else { 0 }), "{out2}");
    // Bad usage is refused, not guessed.
    for bad in [&["--core"][..], &["--core", "x"], &["--core", "4096"], &["--frobnicate"]] {
        let (code, out, err) = tune_host(bad);
        assert_eq!(code, Some(2), "{bad:?}: {out}\n{err}");
    }
}

/// `Cpus_allowed_list` of each thread of `pid`, by thread name.
fn thread_affinities(pid: u32) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("/proc/<pid>/task").flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default().trim().to_owned();
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        let allowed = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).unwrap_or("").trim().to_owned();
        out.push((comm, allowed));
    }
    out
}

/// Regression: the engine looked its core up among the process's allowed cores, so under
/// systemd's `CPUAffinity=0` (or isolcpus, which keeps isolated cores out of every default
/// mask) `engine.core = 1` refused to start. Started with its mask restricted to core 0, `hft`
/// pins the hot thread to core 1 and keeps every other thread on core 0.
#[test]
fn engine_pins_to_a_core_outside_the_process_cpu_mask() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 || !Path::new("/proc/self/task").exists() {
        eprintln!("skipped: needs 2 CPUs and /proc (have {cpus})");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = hft(dir.path());
    cmd.env("HFT__API__PORT", "0").env("HFT__ENGINE__IDLE", "sleep").env("HFT__ENGINE__CORE", "1");
    let restrict_to_core_0 = || {
        // SAFETY: an all-zero cpu_set_t is a valid empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: core 0 is within the set's bounds.
        unsafe { libc::CPU_SET(0, &mut set) };
        // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is the calling process.
        let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
        if rc == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
    };
    // SAFETY: the closure runs in the child between fork and exec and only makes a raw syscall
    // on its own stack data (async-signal-safe); it takes no lock and allocates nothing.
    unsafe { std::os::unix::process::CommandExt::pre_exec(&mut cmd, restrict_to_core_0) };
    let running = Running::spawn(cmd);
    let banner = running.line_with("API http://", Duration::from_secs(20));
    // The API answers before the engine's first report (503 "starting"): wait until it is ready.
    let port = port_after(&banner, "http://");
    running.wait_until("/health ready", Duration::from_secs(20), || get(port, "/health").0 == 200);
    let threads = thread_affinities(running.child.id());
    let hot: Vec<_> = threads.iter().filter(|(name, _)| name == "hft-hot").collect();
    assert_eq!(hot.len(), 1, "{threads:?}");
    assert_eq!(hot[0].1, "1", "hot thread pinned to core 1: {threads:?}");
    let others_on_0 = threads.iter().filter(|(name, _)| name != "hft-hot").all(|(_, allowed)| allowed == "0");
    assert!(others_on_0, "every other thread stays on core 0: {threads:?}");
}

/// The locked-memory limit (soft, hard) of this process.
fn memlock_limit() -> (libc::rlim_t, libc::rlim_t) {
    let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit(2) only writes the struct it is given, which lives for the call.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut l) };
    assert_eq!(rc, 0, "getrlimit: {}", std::io::Error::last_os_error());
    (l.rlim_cur, l.rlim_max)
}

/// `hft` with `HFT__ENGINE__LOCK_MEMORY=true` and its locked-memory soft limit set to `soft`
/// (the hard limit kept).
fn with_memlock_limit(dir: &Path, soft: libc::rlim_t) -> Command {
    let mut cmd = hft(dir);
    cmd.env("HFT__API__PORT", "0")
        .env("HFT__ENGINE__IDLE", "sleep")
        .env("HFT__STORE__ENABLED", "false")
        .env("HFT__ENGINE__LOCK_MEMORY", "true");
    let hard = memlock_limit().1;
    let set_limit = move || {
        let l = libc::rlimit { rlim_cur: soft, rlim_max: hard };
        // SAFETY: setrlimit(2) reads the struct it is given, which lives for the call.
        if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &l) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    // SAFETY: the closure runs in the child between fork and exec and only makes a raw syscall
    // on its own stack data (async-signal-safe); it takes no lock and allocates nothing.
    unsafe { std::os::unix::process::CommandExt::pre_exec(&mut cmd, set_limit) };
    cmd
}

/// `engine.lock_memory`: under a finite locked-memory limit the process refuses to start (exit
/// 2, naming the fix) rather than lock with `MCL_FUTURE` and fail an allocation mid-run; under
/// an unlimited one (when the hard limit allows it here) every page is locked and it runs.
#[test]
fn lock_memory_locks_every_page_or_refuses_to_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, hard) = memlock_limit();
    let finite = if hard == libc::RLIM_INFINITY { 64 << 20 } else { hard.min(64 << 20) };
    let mut refused = Running::spawn(with_memlock_limit(dir.path(), finite));
    let status = refused.wait_exit(Duration::from_secs(20));
    let err = refused.stderr_text();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("engine.lock_memory") && err.contains("LimitMEMLOCK=infinity"), "{err}");

    if hard != libc::RLIM_INFINITY {
        eprintln!("skipped the locking half: the hard locked-memory limit here is {} KiB", hard / 1024);
        return;
    }
    let running = Running::spawn(with_memlock_limit(dir.path(), libc::RLIM_INFINITY));
    let banner = running.line_with("API http://", Duration::from_secs(20));
    let port = port_after(&banner, "http://");
    running.wait_until("/health ready", Duration::from_secs(20), || get(port, "/health").0 == 200);
    let status = std::fs::read_to_string(format!("/proc/{}/status", running.child.id())).expect("status");
    let kib = |key: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("{key} in {status}"));
        line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{line}"))
    };
    // MCL_CURRENT faulted every mapped page in and locked it: what is resident is locked.
    assert!(kib("VmLck:") > 0 && kib("VmLck:") >= kib("VmRSS:") / 2, "{status}");
    assert!(running.stderr_text().contains("memory locked"), "{}", running.stderr_text());
}
