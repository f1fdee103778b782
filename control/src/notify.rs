//! systemd service notification (the `sd_notify` datagram protocol, hand-written): `READY=1`
//! once the API is bound and the hot thread has sent its first heartbeat, `STATUS=` lines when
//! the engine's state changes, `STOPPING=1` at shutdown, and the watchdog keep-alive
//! (`WATCHDOG=1`) — sent only while the hot thread's heartbeat is fresh, so a stalled or dead
//! hot thread (or a stalled control plane) stops feeding the watchdog and systemd restarts the
//! service.
//!
//! Runs on the control plane: [`Notifier::from_env`] on the thread that calls it, the
//! [`supervise`] task on the tokio runtime. Allocates (one short message per send, a few per
//! second at most); never touches the engine or its rings.
//!
//! A no-op without `$NOTIFY_SOCKET`. Send errors are logged once and never stop the process:
//! notification is a courtesy to the service manager, never a reason to stop trading.

use crate::state::{self, Replica, SharedReplica};
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often readiness is polled before `READY=1` (the first heartbeat comes within
/// `engine.heartbeat_ms` of start).
const READY_POLL: Duration = Duration::from_millis(20);
/// Status refresh period when systemd asked for no watchdog.
const STATUS_PERIOD: Duration = Duration::from_secs(1);

/// Where notifications go; `None` when `$NOTIFY_SOCKET` is unset or empty.
#[derive(Debug)]
pub struct Notifier {
    target: Option<Target>,
    /// Keep-alive period (half of `$WATCHDOG_USEC`), `None` when the watchdog is off or meant
    /// for another process.
    watchdog: Option<Duration>,
    /// A send error was logged already.
    warned: AtomicBool,
}

#[derive(Debug)]
struct Target {
    sock: UnixDatagram,
    addr: SocketAddr,
}

/// `$NOTIFY_SOCKET` parsed: a filesystem path or a Linux abstract name (`@name`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Address {
    Path(std::path::PathBuf),
    Abstract(Vec<u8>),
}

impl Address {
    fn parse(raw: &std::ffi::OsStr) -> Result<Option<Self>, String> {
        use std::os::unix::ffi::OsStrExt;
        let b = raw.as_bytes();
        match b.first() {
            None => Ok(None),
            Some(b'@') => Ok(Some(Address::Abstract(b[1..].to_vec()))),
            Some(b'/') => Ok(Some(Address::Path(raw.into()))),
            // systemd ≥ 254 may also pass `vsock:…` (for VMs); a service on the host never gets one.
            Some(_) => Err("NOTIFY_SOCKET is neither an absolute path nor an abstract name (@…)".to_owned()),
        }
    }

    fn socket_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            Address::Path(p) => SocketAddr::from_pathname(p),
            Address::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name)
            }
        }
    }
}

/// The keep-alive period for `$WATCHDOG_USEC` / `$WATCHDOG_PID`: half the timeout, as
/// `sd_watchdog_enabled(3)` advises; `None` when unset, zero, malformed, or addressed to
/// another process (`WATCHDOG_PID` names the process systemd watches).
fn watchdog_period(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    if let Some(p) = pid
        && p.trim().parse::<u32>().ok() != Some(own_pid)
    {
        return None;
    }
    Some(Duration::from_micros(usec / 2).max(Duration::from_millis(1)))
}

impl Notifier {
    /// From `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID`. Never fails: a bad
    /// variable is logged and notification is off.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok();
        let target = match std::env::var_os("NOTIFY_SOCKET").map(|raw| Address::parse(&raw)) {
            None | Some(Ok(None)) => None,
            Some(Err(e)) => {
                tracing::warn!("systemd notification off: {e}");
                None
            }
            Some(Ok(Some(addr))) => match Self::connect(&addr) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!("systemd notification off: cannot use NOTIFY_SOCKET: {e}");
                    None
                }
            },
        };
        let watchdog = target.as_ref().and(watchdog_period(
            var("WATCHDOG_USEC").as_deref(),
            var("WATCHDOG_PID").as_deref(),
            std::process::id(),
        ));
        if target.is_some() {
            tracing::info!(watchdog_ms = watchdog.map(|d| d.as_millis() as u64), "systemd notification on");
        }
        Self { target, watchdog, warned: AtomicBool::new(false) }
    }

    fn connect(addr: &Address) -> std::io::Result<Target> {
        let sock = UnixDatagram::unbound()?;
        // Never block the runtime on a full receive queue: a dropped notification is logged.
        sock.set_nonblocking(true)?;
        Ok(Target { sock, addr: addr.socket_addr()? })
    }

    /// Is anyone listening?
    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Sends one datagram of newline-separated `KEY=value` assignments.
    fn send(&self, msg: &str) {
        let Some(t) = &self.target else { return };
        if let Err(e) = t.sock.send_to_addr(msg.as_bytes(), &t.addr)
            && !self.warned.swap(true, Ordering::Relaxed)
        {
            tracing::warn!("cannot notify systemd (further errors not logged): {e}");
        }
    }

    /// `STOPPING=1`: shutdown has begun.
    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=stopping");
    }
}

/// One line for `systemctl status`: mode, symbols, and what the engine is doing. Never holds a
/// secret.
fn status_line(r: &Replica, now: Instant) -> String {
    let what = if !r.engine_running {
        "engine thread stopped: trading has stopped".to_owned()
    } else if !r.ready(now) {
        match r.heartbeat_age(now) {
            // Not the age itself: the line would change every period.
            Some(_) => format!("engine stalled: no heartbeat for over {} ms", r.ready_window.as_millis()),
            None => "starting: waiting for the engine's first heartbeat".to_owned(),
        }
    } else if let Some(k) = r.state.kill_switch {
        format!("kill switch tripped ({})", k.code())
    } else if r.state.halted {
        "halted".to_owned()
    } else if r.state.backpressure {
        "backpressure: not opening risk".to_owned()
    } else {
        "trading".to_owned()
    };
    format!("{} {} · {what}", r.mode, r.symbols.join(","))
}

/// Feeds systemd until aborted: waits for the first fresh heartbeat, sends `READY=1`, then
/// every keep-alive period sends `WATCHDOG=1` while [`Replica::ready`] holds (engine thread
/// alive, heartbeat within the readiness window) and refreshes `STATUS=` when it changes.
/// Returns at once when notification is off.
pub async fn supervise(notifier: std::sync::Arc<Notifier>, replica: SharedReplica) {
    if !notifier.enabled() {
        return;
    }
    loop {
        let (ready, status) = {
            let r = state::read(&replica);
            let now = Instant::now();
            (r.ready(now), status_line(&r, now))
        };
        if ready {
            notifier.send(&format!("READY=1\nSTATUS={status}"));
            tracing::info!("systemd notified: ready");
            break;
        }
        tokio::time::sleep(READY_POLL).await;
    }
    let period = notifier.watchdog.unwrap_or(STATUS_PERIOD);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_status = String::new();
    let mut was_fed = true;
    loop {
        tick.tick().await;
        let (fresh, status) = {
            let r = state::read(&replica);
            let now = Instant::now();
            (r.ready(now), status_line(&r, now))
        };
        let feed = fresh && notifier.watchdog.is_some();
        if notifier.watchdog.is_some() && fresh != was_fed {
            if fresh {
                tracing::info!("heartbeat fresh again: feeding the systemd watchdog");
            } else {
                tracing::error!(%status, "heartbeat stale: no longer feeding the systemd watchdog");
            }
            was_fed = fresh;
        }
        let status_changed = status != last_status;
        match (feed, status_changed) {
            (true, true) => notifier.send(&format!("WATCHDOG=1\nSTATUS={status}")),
            (true, false) => notifier.send("WATCHDOG=1"),
            (false, true) => notifier.send(&format!("STATUS={status}")),
            (false, false) => {}
        }
        if status_changed {
            last_status = status;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hft_shared::config::Config;
    use hft_shared::msg::{EngineState, Event, Heartbeat, KillCause};
    use std::ffi::OsStr;

    #[test]
    fn notify_socket_forms() {
        assert_eq!(Address::parse(OsStr::new("")), Ok(None));
        assert_eq!(
            Address::parse(OsStr::new("/run/systemd/notify")),
            Ok(Some(Address::Path("/run/systemd/notify".into())))
        );
        assert_eq!(Address::parse(OsStr::new("@hft/notify")), Ok(Some(Address::Abstract(b"hft/notify".to_vec()))));
        assert!(Address::parse(OsStr::new("vsock:2:1234")).is_err());
        assert!(Address::parse(OsStr::new("relative/sock")).is_err());
    }

    #[test]
    fn watchdog_period_is_half_the_timeout_and_only_for_us() {
        assert_eq!(watchdog_period(Some("10000000"), None, 42), Some(Duration::from_secs(5)));
        assert_eq!(watchdog_period(Some("1000000"), Some("42"), 42), Some(Duration::from_millis(500)));
        assert_eq!(watchdog_period(Some("1000000"), Some("43"), 42), None, "another process's watchdog");
        assert_eq!(watchdog_period(Some("1000000"), Some("x"), 42), None);
        assert_eq!(watchdog_period(Some("0"), None, 42), None);
        assert_eq!(watchdog_period(Some("ten"), None, 42), None);
        assert_eq!(watchdog_period(None, Some("42"), 42), None);
        assert_eq!(watchdog_period(Some("1"), None, 42), Some(Duration::from_millis(1)), "never a zero period");
    }

    fn heartbeat(state: EngineState) -> Event {
        Event::Heartbeat(Heartbeat { ts_ns: 1, seq: 1, state })
    }

    #[test]
    fn status_follows_readiness_and_engine_state() {
        let cfg = Config::from_toml_str("", &|_| None).expect("config");
        let t0 = Instant::now();
        let mut r = Replica::new(&cfg, t0);
        assert_eq!(status_line(&r, t0), "paper BTCUSDT · starting: waiting for the engine's first heartbeat");
        r.apply(&heartbeat(EngineState::default()), t0);
        assert_eq!(status_line(&r, t0), "paper BTCUSDT · trading");
        r.apply(&heartbeat(EngineState { halted: true, ..EngineState::default() }), t0);
        assert_eq!(status_line(&r, t0), "paper BTCUSDT · halted");
        let tripped = EngineState { halted: true, kill_switch: Some(KillCause::DailyLoss), ..EngineState::default() };
        r.apply(&heartbeat(tripped), t0);
        assert_eq!(
            status_line(&r, t0),
            format!("paper BTCUSDT · kill switch tripped ({})", KillCause::DailyLoss.code())
        );
        let late = t0 + r.ready_window + Duration::from_millis(1);
        assert_eq!(status_line(&r, late), "paper BTCUSDT · engine stalled: no heartbeat for over 2000 ms");
        r.engine_running = false;
        assert_eq!(status_line(&r, t0), "paper BTCUSDT · engine thread stopped: trading has stopped");
    }

    /// Receives on a bound socket what `supervise` sends, with the replica driven by hand: the
    /// watchdog is fed only while the heartbeat is fresh.
    #[tokio::test]
    async fn watchdog_is_fed_only_while_the_heartbeat_is_fresh() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify.sock");
        let rx = UnixDatagram::bind(&path).expect("bind");
        rx.set_nonblocking(true).expect("nonblocking");
        let period = Duration::from_millis(50);
        let n = std::sync::Arc::new(Notifier {
            target: Some(Notifier::connect(&Address::Path(path)).expect("connect")),
            watchdog: Some(period),
            warned: AtomicBool::new(false),
        });
        let cfg = Config::from_toml_str("", &|_| None).expect("config");
        let replica = Replica::new(&cfg, Instant::now()).shared();
        let task = tokio::spawn(supervise(n.clone(), replica.clone()));
        let drain = || {
            let mut out = Vec::new();
            let mut buf = [0u8; 512];
            while let Ok(len) = rx.recv(&mut buf) {
                out.push(String::from_utf8_lossy(&buf[..len]).into_owned());
            }
            out
        };
        let watchdogs = |msgs: &[String]| msgs.iter().filter(|m| m.starts_with("WATCHDOG=1")).count();

        // No heartbeat yet: not ready, nothing sent.
        tokio::time::sleep(period * 6).await;
        assert_eq!(drain(), Vec::<String>::new());

        state::write(&replica).apply(&heartbeat(EngineState::default()), Instant::now());
        tokio::time::sleep(period * 8).await;
        let got = drain();
        assert_eq!(got.first().map(String::as_str), Some("READY=1\nSTATUS=paper BTCUSDT · trading"), "{got:?}");
        assert!(watchdogs(&got) >= 3 && watchdogs(&got) == got.len() - 1, "{got:?}");

        // The heartbeat goes stale (the hot thread stalls): no more WATCHDOG=1; the status says why.
        {
            let mut r = state::write(&replica);
            let back = r.ready_window + Duration::from_secs(1);
            if let Some((_, at)) = r.heartbeat.as_mut() {
                *at = at.checked_sub(back).expect("monotonic clock older than the window");
            }
        }
        tokio::time::sleep(period * 10).await;
        let got = drain();
        let stalled = got.iter().position(|m| m.contains("STATUS=paper BTCUSDT · engine stalled"));
        let stalled = stalled.unwrap_or_else(|| panic!("no stalled status in {got:?}"));
        // At most one keep-alive raced the stamp's move; none after the stall was seen.
        assert_eq!(watchdogs(&got[stalled + 1..]), 0, "{got:?}");
        assert!(!got[stalled].contains("WATCHDOG"), "{got:?}");
        assert!(got.len() - stalled == 1, "the status is sent once, not per period: {got:?}");

        // Fresh again: fed again, and the status says so.
        state::write(&replica).apply(&heartbeat(EngineState::default()), Instant::now());
        tokio::time::sleep(period * 4).await;
        let got = drain();
        assert!(got.first().is_some_and(|m| m == "WATCHDOG=1\nSTATUS=paper BTCUSDT · trading"), "{got:?}");

        // The engine thread ends: never fed again, even with a fresh heartbeat.
        state::write(&replica).engine_running = false;
        tokio::time::sleep(period * 2).await;
        drain();
        state::write(&replica).apply(&heartbeat(EngineState::default()), Instant::now());
        tokio::time::sleep(period * 6).await;
        assert_eq!(watchdogs(&drain()), 0);
        task.abort();

        n.stopping();
        assert_eq!(drain(), vec!["STOPPING=1\nSTATUS=stopping".to_owned()]);
    }

    #[test]
    fn unset_socket_is_a_no_op() {
        let n = Notifier { target: None, watchdog: None, warned: AtomicBool::new(false) };
        assert!(!n.enabled());
        n.stopping();
    }

    #[test]
    fn a_vanished_listener_is_logged_once_and_not_fatal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let n = Notifier {
            target: Some(Notifier::connect(&Address::Path(dir.path().join("gone.sock"))).expect("connect")),
            watchdog: None,
            warned: AtomicBool::new(false),
        };
        n.stopping();
        assert!(n.warned.load(Ordering::Relaxed));
        n.stopping();
    }

    #[test]
    fn abstract_names_are_reachable() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("hft-notify-test-{}", std::process::id());
        let rx =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).expect("addr")).expect("bind");
        let n = Notifier {
            target: Some(Notifier::connect(&Address::Abstract(name.into_bytes())).expect("connect")),
            watchdog: None,
            warned: AtomicBool::new(false),
        };
        n.stopping();
        let mut buf = [0u8; 64];
        let len = rx.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..len], b"STOPPING=1\nSTATUS=stopping");
    }
}
