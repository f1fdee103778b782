//! `hft run`: validates the configuration, starts the hot thread, serves the control API, and
//! shuts both down in order on SIGINT/SIGTERM.
//!
//! `run` executes on the main thread up to building the tokio runtime (1–2 workers); `serve` and
//! the supervisor run on that runtime. Nothing here touches the rings except through the bridge.
//!
//! Shutdown order: `Shutdown` command → wait (≤ 5 s in all) for the hot thread to return →
//! drain the remaining events into the replica and the store → stop axum gracefully → commit the
//! store's last records (≤ 5 s) → exit.

use crate::Failure;
use crate::api::{self, AppState};
use crate::bridge::Bridge;
use crate::state::{self, Replica, SharedReplica};
use crate::store::Store;
use anyhow::{Context, anyhow};
use hft_engine::{EngineHandle, Planes, Restore};
use hft_shared::config::{Config, Sources};
use hft_shared::msg::CommandKind;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{oneshot, watch};

/// Environment variable holding the API token.
pub const TOKEN_ENV: &str = "HFT_API_TOKEN";
/// Budget for the engine to acknowledge `Shutdown` and return from its thread.
const ENGINE_STOP: Duration = Duration::from_secs(5);
/// Budget for the store to commit what it holds at shutdown.
const STORE_STOP: Duration = Duration::from_secs(5);
/// Budget for in-flight HTTP requests once the engine is down.
const HTTP_STOP: Duration = Duration::from_secs(2);

/// Where the API token came from. A supplied token is never printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    FromEnv(String),
    Generated(String),
}

impl Token {
    pub fn secret(&self) -> &str {
        match self {
            Token::FromEnv(t) | Token::Generated(t) => t,
        }
    }

    /// The banner's token part.
    pub fn banner(&self) -> String {
        match self {
            Token::FromEnv(_) => format!("token from {TOKEN_ENV}"),
            Token::Generated(t) => format!("token {t}"),
        }
    }
}

/// The API token: `HFT_API_TOKEN` when set and non-empty, else 32 random hex characters — but
/// only on loopback: a non-loopback API must be given its token.
pub fn token(cfg: &Config, env: Option<String>) -> Result<Token, Failure> {
    let supplied = env.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    match supplied {
        Some(t) => Ok(Token::FromEnv(t)),
        None if !cfg.api_is_loopback() => Err(Failure::usage(anyhow!(
            "api.host = {} is not a loopback address: set {TOKEN_ENV} to the API token before exposing the API",
            cfg.api.host
        ))),
        None => {
            let mut raw = [0u8; 16];
            getrandom::fill(&mut raw).map_err(|e| anyhow!("cannot generate an API token: {e}"))?;
            Ok(Token::Generated(raw.iter().map(|b| format!("{b:02x}")).collect()))
        }
    }
}

pub fn banner(cfg: &Config, addr: SocketAddr, token: &Token) -> String {
    format!("hft {} · mode {} · API http://{addr} · {}", env!("CARGO_PKG_VERSION"), cfg.mode, token.banner())
}

/// The second stdout line: the dashboard's address. A generated token rides in the fragment
/// (`#token=…`: browsers never send it to the server, and the page removes it from the address
/// bar); a supplied token is never printed.
pub fn dashboard_line(addr: SocketAddr, token: &Token) -> String {
    match token {
        Token::Generated(t) => format!("dashboard http://{addr}/dashboard#token={t}"),
        Token::FromEnv(_) => format!("dashboard http://{addr}/dashboard (enter the token from {TOKEN_ENV})"),
    }
}

pub fn run(config: Option<PathBuf>) -> Result<(), Failure> {
    let sources = Sources::resolve(config, &Config::process_env);
    let cfg = Config::load(&sources, &Config::process_env)
        .map_err(|e| Failure::usage(anyhow!("invalid configuration: {e}")))?;
    // Live mode needs a passing go-live gate (or its explicit override) before anything starts.
    crate::backtest::gate::check_live_start(&cfg)?;
    if cfg.engine.lock_memory {
        lock_memory().map_err(Failure::usage)?;
        tracing::info!("memory locked (mlockall: current and future pages)");
    }
    let token = token(&cfg, Config::process_env(TOKEN_ENV))?;
    if !cfg.api_is_loopback() {
        tracing::warn!(host = %cfg.api.host, "the control API is exposed beyond loopback");
    }

    // Bind before starting the engine: a taken port should not start a trading thread.
    let ip: IpAddr =
        cfg.api.host.parse().with_context(|| format!("api.host {:?} is not an IP address", cfg.api.host))?;
    let listener = std::net::TcpListener::bind(SocketAddr::new(ip, cfg.api.port))
        .with_context(|| format!("cannot bind the API to {ip}:{} (api.host, api.port)", cfg.api.port))?;
    listener.set_nonblocking(true).context("cannot make the API socket non-blocking")?;

    // The store before the engine: the engine starts from what it holds, and an unusable store
    // must not leave a trading thread running.
    let (store, restore) = open_store(&cfg)?;
    let planes = match hft_engine::spawn_with(&cfg, restore) {
        Ok(p) => p,
        Err(e) => {
            if let Some(s) = &store {
                s.close(STORE_STOP);
            }
            return Err(Failure::runtime(anyhow!("{e}")));
        }
    };

    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(2));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("hft-control")
        .enable_all()
        .build()
        .context("cannot start the control-plane runtime")?;
    let result = rt.block_on(serve(cfg, planes, listener, token, store));
    // The supervisor's blocking join may still wait on a hung engine thread: do not wait for it.
    rt.shutdown_timeout(Duration::from_secs(1));
    result
}

/// `engine.lock_memory`: every page of the process, and every page it maps later, stays in RAM.
/// Refused unless the locked-memory limit is unlimited: under a finite one, `MCL_FUTURE` makes
/// any later allocation past the limit fail, which would end the process mid-run.
fn lock_memory() -> anyhow::Result<()> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit(2) only writes the `rlimit` it is given, which lives for the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) } != 0 {
        return Err(anyhow!(
            "engine.lock_memory: cannot read the locked-memory limit: {}",
            std::io::Error::last_os_error()
        ));
    }
    if limit.rlim_cur != libc::RLIM_INFINITY {
        return Err(anyhow!(
            "engine.lock_memory = true needs an unlimited locked-memory limit, and it is {} KiB: set \
             LimitMEMLOCK=infinity in the systemd unit (scripts/hft.service does), or run `ulimit -l unlimited` \
             first (memlock in /etc/security/limits.conf)",
            limit.rlim_cur / 1024
        ));
    }
    // SAFETY: mlockall(2) takes flags only and changes no memory the program can see.
    if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } != 0 {
        return Err(anyhow!("engine.lock_memory: mlockall failed: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Opens the durable store (`None` when `store.enabled = false`) and the state the engine
/// resumes from. An unusable store is a configuration error (exit 2) naming the path.
fn open_store(cfg: &Config) -> Result<(Option<Store>, Restore), Failure> {
    match Store::open(cfg).map_err(Failure::usage)? {
        Some((store, restore)) => {
            let b = restore.breaker;
            tracing::info!(
                path = %store.path().display(),
                positions = restore.positions.iter().filter(|p| !p.position.qty.is_zero()).count(),
                kill_switch = b.and_then(|b| b.tripped).map_or("armed", |c| c.code()),
                day_start = b.map(|b| b.day_start.to_string()),
                peak = b.map(|b| b.peak.to_string()),
                next_order_id = restore.next_order_id,
                orders_today = restore.orders_sent.len(),
                "store open; engine state restored"
            );
            Ok((Some(store), restore))
        }
        None => {
            tracing::warn!("store.enabled = false: nothing is persisted and nothing was restored");
            Ok((None, Restore::default()))
        }
    }
}

/// How the hot thread ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EngineExit {
    /// `join` returned `Ok` (no panic).
    clean: bool,
    /// Ended after the control plane asked it to.
    requested: bool,
}

async fn serve(
    cfg: Config,
    planes: Planes,
    listener: std::net::TcpListener,
    token: Token,
    store: Option<Store>,
) -> Result<(), Failure> {
    let Planes { engine, commands, events } = planes;
    let replica = Replica::new(&cfg, Instant::now()).shared();
    let (bridge, _bridge_task) = Bridge::start_with_store(commands, events, replica.clone(), store.clone());
    let stopping = Arc::new(AtomicBool::new(false));
    let (exit_tx, mut exit_rx) = watch::channel(None::<EngineExit>);
    tokio::spawn(supervise(engine, replica.clone(), stopping.clone(), exit_tx));

    // Handlers before the banner: a test may signal as soon as it has read it.
    let mut sigterm = signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;

    let listener = tokio::net::TcpListener::from_std(listener).context("cannot register the API socket")?;
    let addr = listener.local_addr().context("cannot read the API socket's address")?;
    let app = api::router(AppState {
        replica: replica.clone(),
        bridge: bridge.clone(),
        token: Arc::from(token.secret()),
        audit: store.clone().map_or_else(crate::audit::Audit::log_only, |s| {
            crate::audit::Audit::new(move |a| s.record_operator_action(a))
        }),
    });
    let (stop_http, http_stopped) = oneshot::channel::<()>();
    let mut server = tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async {
                let _ = http_stopped.await;
            })
            .await
    });

    let mut out = std::io::stdout().lock();
    writeln!(out, "{}\n{}", banner(&cfg, addr, &token), dashboard_line(addr, &token))
        .and_then(|()| out.flush())
        .context("cannot write the banner to stdout")?;
    drop(out);
    tracing::info!(%addr, mode = %cfg.mode, symbols = ?cfg.symbols, "control API listening");
    // systemd (Type=notify): READY=1 at the first heartbeat, WATCHDOG=1 only while they stay fresh.
    let notifier = Arc::new(crate::notify::Notifier::from_env());
    let notify_task = tokio::spawn(crate::notify::supervise(notifier.clone(), replica.clone()));

    tokio::select! {
        _ = sigterm.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = sigint.recv() => tracing::info!("SIGINT: shutting down"),
        res = &mut server => {
            let err = match res {
                Ok(Ok(())) => anyhow!("the API server stopped unexpectedly"),
                Ok(Err(e)) => anyhow::Error::new(e).context("the API server failed"),
                Err(e) => anyhow::Error::new(e).context("the API server task failed"),
            };
            return Err(Failure::runtime(err));
        }
    }

    notify_task.abort();
    notifier.stopping();

    // 1. Ask the engine to stop (it acks, flushes, returns), unless it is already gone.
    let deadline = tokio::time::Instant::now() + ENGINE_STOP;
    stopping.store(true, Ordering::SeqCst);
    let already_gone = exit_rx.borrow().is_some();
    if !already_gone {
        match bridge.command(CommandKind::Shutdown).await {
            Ok(ack) => tracing::info!(seq = ack.seq, "engine acknowledged shutdown"),
            Err(e) => tracing::warn!("engine did not acknowledge shutdown: {e}"),
        }
    }
    // 2. Wait for the hot thread to return.
    let exit = tokio::time::timeout_at(deadline, exit_rx.wait_for(Option::is_some))
        .await
        .ok()
        .and_then(|r| r.ok().and_then(|e| *e));
    // 3. Drain what it emitted last.
    if let Err(e) = bridge.flush().await {
        tracing::warn!("cannot drain the last events: {e}");
    }
    {
        let r = state::read(&replica);
        tracing::info!(orders = r.orders, fills = r.fills, rejects = r.rejects, events = r.events, "final counts");
    }
    // 4. Stop serving.
    let _ = stop_http.send(());
    match tokio::time::timeout(HTTP_STOP, &mut server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::warn!("API server error while stopping: {e}"),
        Ok(Err(e)) => tracing::warn!("API server task failed while stopping: {e}"),
        Err(_) => {
            tracing::warn!("open API connections did not finish within {} s; closing", HTTP_STOP.as_secs());
            server.abort();
        }
    }

    // 5. Commit what the store holds (the last events, the operator actions of the shutdown),
    // and mark the run as stopped cleanly.
    if let Some(store) = store {
        let s = store.clone();
        let closed = tokio::task::spawn_blocking(move || s.close(STORE_STOP)).await.unwrap_or(false);
        let st = store.stats();
        if closed {
            tracing::info!(
                committed = st.committed,
                stored_fills = st.stored_fills,
                batches = st.batches,
                max_commit_us = st.max_commit_us,
                write_errors = st.write_errors,
                "store closed"
            );
        } else {
            tracing::error!(
                lag = st.lag,
                write_errors = st.write_errors,
                "the store did not commit its last {} records within {} s",
                st.lag,
                STORE_STOP.as_secs()
            );
        }
    }

    match exit {
        Some(EngineExit { clean: true, requested: true }) => {
            tracing::info!("stopped cleanly");
            Ok(())
        }
        Some(EngineExit { clean: false, .. }) => Err(Failure::runtime(anyhow!("the engine thread panicked"))),
        Some(EngineExit { requested: false, .. }) => {
            Err(Failure::runtime(anyhow!("the engine thread had stopped before shutdown was requested")))
        }
        None => Err(Failure::runtime(anyhow!(
            "the engine did not stop within {} s; its last events may be lost",
            ENGINE_STOP.as_secs()
        ))),
    }
}

/// Waits for the hot thread to end (a blocking join on the blocking pool), marks the replica,
/// and reports how it ended. An unrequested end keeps the API up and `/health` not ready.
async fn supervise(
    engine: EngineHandle,
    replica: SharedReplica,
    stopping: Arc<AtomicBool>,
    exit: watch::Sender<Option<EngineExit>>,
) {
    let joined = tokio::task::spawn_blocking(move || engine.join()).await;
    let requested = stopping.load(Ordering::SeqCst);
    let clean = matches!(joined, Ok(Ok(())));
    state::write(&replica).engine_running = false;
    match (requested, clean) {
        (true, true) => tracing::info!("engine thread stopped"),
        (true, false) => tracing::error!("engine thread panicked while stopping"),
        (false, _) => tracing::error!(
            panicked = !clean,
            "engine thread stopped unexpectedly: trading has stopped; the API stays up and /health reports not ready"
        ),
    }
    exit.send_replace(Some(EngineExit { clean, requested }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(host: &str) -> Config {
        Config::from_toml_str(&format!("[api]\nhost = '{host}'\n"), &|_| None).expect("config")
    }

    #[test]
    fn supplied_token_is_used_and_never_shown() {
        let t = token(&cfg("127.0.0.1"), Some("  abc  ".into())).expect("token");
        assert_eq!(t.secret(), "abc");
        let b = banner(&cfg("127.0.0.1"), "127.0.0.1:8000".parse().expect("addr"), &t);
        assert_eq!(
            b,
            format!(
                "hft {} · mode paper · API http://127.0.0.1:8000 · token from HFT_API_TOKEN",
                env!("CARGO_PKG_VERSION")
            )
        );
        assert!(!b.contains("abc"));
        let d = dashboard_line("127.0.0.1:8000".parse().expect("addr"), &t);
        assert_eq!(d, "dashboard http://127.0.0.1:8000/dashboard (enter the token from HFT_API_TOKEN)");
    }

    #[test]
    fn generated_token_is_32_hex_and_shown() {
        let t = token(&cfg("127.0.0.1"), Some(String::new())).expect("token");
        let Token::Generated(s) = &t else { panic!("expected a generated token, got {t:?}") };
        assert_eq!(s.len(), 32);
        assert!(s.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(token(&cfg("127.0.0.1"), None).expect("token"), t);
        let b = banner(&cfg("::1"), "[::1]:0".parse().expect("addr"), &t);
        assert!(b.ends_with(&format!("API http://[::1]:0 · token {s}")), "{b}");
        let d = dashboard_line("[::1]:0".parse().expect("addr"), &t);
        assert_eq!(d, format!("dashboard http://[::1]:0/dashboard#token={s}"));
    }

    #[test]
    fn non_loopback_needs_a_supplied_token() {
        let f = token(&cfg("0.0.0.0"), None).expect_err("refused");
        assert_eq!(f.code, 2);
        let msg = f.error.to_string();
        assert!(msg.contains("HFT_API_TOKEN") && msg.contains("api.host"), "{msg}");
        assert!(token(&cfg("0.0.0.0"), Some("t".into())).is_ok());
    }
}
