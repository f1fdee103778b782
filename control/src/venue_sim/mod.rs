//! `hft venue-sim`: a loopback Binance spot venue — combined and raw market-data streams, REST
//! and WebSocket-API depth snapshots, and a signed WebSocket API that trades one simulated
//! account against the market it serves, with user-data events — serving a capture file or the
//! synthetic market, with fault injection (drops, sequence gaps, malformed frames, stalls) on
//! a schedule or on request. It lets the feed, resync, reconnect and order paths be tested end
//! to end without the internet, and measures the engine's wire-to-wire reaction time.
//!
//! Layout, in the order data flows: [`capture`] reads files (or [`timeline::Synthetic`]
//! generates frames) → [`wire`] parses them → [`timeline`] paces them, applies them to the
//! server [`book`]s and faults, and broadcasts them → [`streams`] writes them to subscribers
//! (stamping their send time for [`latency`]); [`api`] answers WS-API requests — snapshots from
//! the books, and through [`orders`] (checked by [`auth`]) the [`venue`]'s account, which
//! [`matching`] fills against the books; [`control`] exposes status, latency and faults.
//!
//! Runtime: a tokio runtime (2 workers) on the main thread's `block_on`, plus one std thread
//! reading captures. Allocates freely: this is a test fixture, not the hot path. Logs go to
//! stderr (the API secret never does); stdout carries exactly one line,
//! `venue-sim listening on ws://ADDR`. On SIGINT/SIGTERM the wire-to-wire percentiles are
//! written to stderr.

mod api;
mod auth;
mod book;
mod capture;
mod control;
mod latency;
mod matching;
mod orders;
mod streams;
mod timeline;
mod venue;
mod wire;

use crate::Failure;
use anyhow::{Context, anyhow};
use axum::Router;
use axum::extract::ws::Utf8Bytes;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use book::Books;
use hft_shared::config::{Config, Secret, Sources};
use serde_json::json;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use timeline::{FaultPlan, Pace, Source, Synthetic};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{broadcast, mpsc, watch};
use venue::{FeeAsset, Filters, MarketEvent, Venue, VenueConfig};

/// Events the broadcast buffer holds; a stream client further behind is disconnected.
const BROADCAST_CAPACITY: usize = 65_536;
/// Capture items read ahead of the broadcaster.
const READ_AHEAD: usize = 4096;
/// How long shutdown waits for clients to take their close frames.
const CLOSE_GRACE: Duration = Duration::from_millis(500);
/// Largest `--speed`.
const MAX_SPEED: f64 = 1e6;
/// Largest `--maker-fee` / `--taker-fee`.
const MAX_FEE: f64 = 0.01;

#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct VenueSimArgs {
    /// Capture files to serve, in order, as one timeline (`<recv_ns> <json>` per line, gzip or
    /// plain); without it, the synthetic market of the configuration's symbols is served.
    #[arg(long, num_args = 1.., value_name = "FILE")]
    pub input: Vec<PathBuf>,
    /// Address to listen on; port 0 lets the OS choose (the address is printed).
    #[arg(long, default_value = "127.0.0.1:9443", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Allow a non-loopback --listen address.
    #[arg(long)]
    pub allow_remote: bool,
    /// Capture pace: 1 = as recorded, 2 = twice as fast, 0 = as fast as the clients read
    /// [default: 1].
    #[arg(long, value_name = "F", requires = "input")]
    pub speed: Option<f64>,
    /// Start the capture over when it ends (else the stream ends and connections stay open).
    #[arg(long = "loop", requires = "input")]
    pub looping: bool,
    /// Synthetic frames per second, all symbols together; 0 = as fast as the clients read
    /// [default: config market.rate].
    #[arg(long, value_name = "N", conflicts_with = "input")]
    pub rate: Option<u32>,
    /// Seconds between the server's WebSocket pings (Binance: 20).
    #[arg(long, default_value_t = 20, value_name = "S", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub ping_interval_s: u64,
    /// Hold the first frame until this many stream clients are connected.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub wait_clients: usize,
    /// Drop every connection (TCP close, no close frame) once, after N frames.
    #[arg(long, value_name = "N")]
    pub drop_after_frames: Option<u64>,
    /// Skip the first depth diff after N frames (clients see a sequence gap; snapshots do not).
    #[arg(long, value_name = "N")]
    pub gap_after_frames: Option<u64>,
    /// Send one malformed (truncated) text message after N frames.
    #[arg(long, value_name = "N")]
    pub malformed_after_frames: Option<u64>,
    /// Stall (send nothing, answer no pings) for --stall-ms once, after N frames.
    #[arg(long, value_name = "N", requires = "stall_ms")]
    pub stall_after_frames: Option<u64>,
    /// Length of the --stall-after-frames stall, ms.
    #[arg(long, value_name = "MS", requires = "stall_after_frames",
          value_parser = clap::value_parser!(u64).range(1..=control::MAX_STALL_MS))]
    pub stall_ms: Option<u64>,
    /// API key of the simulated account, for signed WS-API requests [default: $EXCHANGE_API_KEY,
    /// else Binance's documented example key].
    #[arg(long, value_name = "KEY")]
    pub api_key: Option<String>,
    /// Its HMAC secret (never printed) [default: $EXCHANGE_API_SECRET, else Binance's
    /// documented example secret].
    #[arg(long, value_name = "SECRET", value_parser = parse_secret)]
    pub api_secret: Option<Secret>,
    /// Starting balance of an asset, repeatable: --balance USDT=10000 --balance BTC=0.5
    /// [default: USDT=10000, every other asset 0].
    #[arg(long = "balance", value_name = "ASSET=AMOUNT", value_parser = parse_balance)]
    pub balances: Vec<(String, i64)>,
    /// Commission on resting (maker) fills, fraction of what the trade pays out.
    #[arg(long, default_value_t = 0.001, value_name = "RATE")]
    pub maker_fee: f64,
    /// Commission on taking (taker) fills, fraction of what the trade pays out.
    #[arg(long, default_value_t = 0.001, value_name = "RATE")]
    pub taker_fee: f64,
    /// The asset commission is taken in: `received`, as Binance does without BNB fees (a buy
    /// pays in the base asset it receives, a sell in the quote asset), or `quote` for both.
    #[arg(long, value_enum, default_value_t = FeeAsset::Received, value_name = "ASSET")]
    pub fee_asset: FeeAsset,
    /// ORDERS limit per 10 seconds (Binance: 100); beyond it order.place answers 429, -1015.
    #[arg(long, default_value_t = 100, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub orders_per_10s: u32,
    /// ORDERS limit per UTC day (Binance: 200000).
    #[arg(long, default_value_t = 200_000, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub orders_per_day: u32,
}

fn parse_secret(s: &str) -> Result<Secret, String> {
    if s.is_empty() { Err("the secret is empty".into()) } else { Ok(Secret::new(s.to_owned())) }
}

/// `ASSET=AMOUNT`: 1–20 letters and digits (upper-cased) and a non-negative decimal with at most
/// 8 decimals.
fn parse_balance(s: &str) -> Result<(String, i64), String> {
    let (asset, amount) = s.split_once('=').ok_or("expected ASSET=AMOUNT, e.g. USDT=10000")?;
    if !(1..=20).contains(&asset.len()) || !asset.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!("{asset:?} is not an asset name (1-20 letters and digits)"));
    }
    match hft_shared::px::parse_fixed8(amount.as_bytes()) {
        Ok(v) if v >= 0 => Ok((asset.to_ascii_uppercase(), v)),
        _ => Err(format!("{amount:?} is not a non-negative decimal with at most 8 decimals")),
    }
}

/// What every connection task broadcasts and reads, in timeline order.
#[derive(Debug, Clone)]
pub enum Event {
    Frame(Arc<wire::Frame>),
    /// A malformed text message (sent to every stream client).
    Malformed(Utf8Bytes),
    /// Send nothing and read nothing (so answer no ping) for this long.
    Stall(Duration),
    /// Close the TCP connection without a close frame.
    Drop,
    /// The server is stopping: send a close frame (1001) and end.
    Shutdown,
}

/// Connection-wide signals for tasks that do not read the broadcast (WS-API connections), and
/// the stall deadline the broadcaster honours.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Signals {
    /// Drops injected so far: a connection ends when this changes.
    pub drops: u64,
    pub stall_until: Option<Instant>,
    pub shutdown: bool,
}

#[derive(Debug, Default)]
pub struct Faults {
    pub drop: AtomicU64,
    pub gap: AtomicU64,
    pub malformed: AtomicU64,
    pub stall: AtomicU64,
}

#[derive(Debug, Default)]
pub struct Stats {
    /// Frames taken from the source (a gap-skipped diff counts; snapshot lines do not).
    pub frames: AtomicU64,
    /// Faults injected.
    pub faults: Faults,
    /// Faults armed for the next frame (malformed) or next diff (gap).
    pub armed_gap: AtomicU64,
    pub armed_malformed: AtomicU64,
    pub ended: AtomicBool,
    pub loops: AtomicU64,
    pub skipped_lines: Arc<AtomicU64>,
}

/// State shared by the broadcaster and every handler.
pub struct Shared {
    /// `"capture"` or `"synthetic"`.
    pub source: &'static str,
    pub ping_every: Duration,
    pub events: broadcast::Sender<Event>,
    books: Mutex<Books>,
    pub stats: Stats,
    pub stream_clients: watch::Sender<usize>,
    pub api_clients: AtomicUsize,
    pub signals: watch::Sender<Signals>,
    /// `(minute since the epoch, weight used in it)`.
    weight: Mutex<(u64, u32)>,
    /// The simulated account and its orders. Lock order: venue, then books.
    venue: Mutex<Venue>,
    /// Who may sign requests.
    pub creds: auth::Credentials,
    /// Wire-to-wire traces and histogram.
    pub latency: latency::Recorder,
    next_conn: AtomicU64,
}

impl Shared {
    fn new(
        source: &'static str,
        ping_every: Duration,
        books: Books,
        venue: VenueConfig,
        creds: auth::Credentials,
    ) -> Arc<Self> {
        Arc::new(Self {
            source,
            ping_every,
            events: broadcast::channel(BROADCAST_CAPACITY).0,
            books: Mutex::new(books),
            stats: Stats::default(),
            stream_clients: watch::Sender::new(0),
            api_clients: AtomicUsize::new(0),
            signals: watch::Sender::new(Signals::default()),
            weight: Mutex::new((0, 0)),
            venue: Mutex::new(Venue::new(venue)),
            creds,
            latency: latency::Recorder::default(),
            next_conn: AtomicU64::new(1),
        })
    }

    #[cfg(test)]
    pub fn for_tests() -> Arc<Self> {
        Self::new(
            "synthetic",
            Duration::from_secs(20),
            Books::default(),
            VenueConfig::default(),
            auth::Credentials::test(),
        )
    }

    /// The server books. A panic while holding the lock cannot leave them half-updated in a
    /// way worse than a stale level, so a poisoned lock is used as is.
    pub fn books(&self) -> MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The venue. Take it before the books when both are needed. A poisoned lock is used as
    /// is: the simulator is a test fixture, and a half-booked fill shows in the balances.
    pub fn venue(&self) -> MutexGuard<'_, Venue> {
        self.venue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lets the venue fill resting orders of `symbol` on what the market just did.
    pub fn on_market(&self, symbol: &str, ev: MarketEvent) {
        let mut venue = self.venue();
        let books = self.books();
        venue.on_market(symbol, ev, &books, api::now_ms());
    }

    pub fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// The end of the current stall, if one is under way.
    pub fn stalled_until(&self) -> Option<Instant> {
        self.signals.borrow().stall_until.filter(|u| *u > Instant::now())
    }

    pub fn drop_all(&self) {
        self.stats.faults.drop.fetch_add(1, Ordering::Relaxed);
        let _ = self.events.send(Event::Drop);
        self.signals.send_modify(|s| s.drops += 1);
        tracing::info!(after_frames = self.stats.frames.load(Ordering::Relaxed), "fault: dropping every connection");
    }

    pub fn stall(&self, d: Duration) {
        self.stats.faults.stall.fetch_add(1, Ordering::Relaxed);
        let until = Instant::now() + d;
        self.signals.send_modify(|s| s.stall_until = Some(s.stall_until.map_or(until, |u| u.max(until))));
        let _ = self.events.send(Event::Stall(d));
        tracing::info!(
            after_frames = self.stats.frames.load(Ordering::Relaxed),
            ms = d.as_millis() as u64,
            "fault: stalling"
        );
    }

    /// Arms one gap; returns how many are armed.
    pub fn arm_gap(&self) -> u64 {
        self.stats.armed_gap.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Arms one malformed message; returns how many are armed.
    pub fn arm_malformed(&self) -> u64 {
        self.stats.armed_malformed.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Adds `weight` to this minute's request weight; returns the minute's total.
    pub fn use_weight(&self, weight: u32) -> u32 {
        let minute = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() / 60);
        let mut w = self.weight.lock().unwrap_or_else(|p| p.into_inner());
        if w.0 != minute {
            *w = (minute, 0);
        }
        w.1 = w.1.saturating_add(weight);
        w.1
    }

    fn shutdown(&self) {
        let _ = self.events.send(Event::Shutdown);
        self.signals.send_modify(|s| s.shutdown = true);
    }

    fn clients(&self) -> usize {
        *self.stream_clients.borrow() + self.api_clients.load(Ordering::Relaxed)
    }
}

/// Counts a stream connection while it lives.
pub struct StreamClient(Arc<Shared>);

impl StreamClient {
    pub fn new(shared: Arc<Shared>) -> Self {
        shared.stream_clients.send_modify(|n| *n += 1);
        Self(shared)
    }
}

impl Drop for StreamClient {
    fn drop(&mut self) {
        self.0.stream_clients.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Counts a WS-API connection while it lives.
pub struct ApiClient(Arc<Shared>);

impl ApiClient {
    pub fn new(shared: Arc<Shared>) -> Self {
        shared.api_clients.fetch_add(1, Ordering::Relaxed);
        Self(shared)
    }
}

impl Drop for ApiClient {
    fn drop(&mut self) {
        self.0.api_clients.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The server's ping schedule: first ping one period after connecting; a late tick is not
/// caught up (a stall does not end in a burst of pings).
pub fn ping_timer(every: Duration) -> tokio::time::Interval {
    let mut t = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    t
}

/// A house-style JSON error.
fn json_error(status: StatusCode, code: &str, message: String) -> Response {
    (status, axum::Json(json!({"code": code, "message": message}))).into_response()
}

pub fn bad_request(message: String) -> Response {
    json_error(StatusCode::BAD_REQUEST, "bad_request", message)
}

/// A plain HTTP request on a WebSocket endpoint.
pub fn not_websocket(e: WebSocketUpgradeRejection) -> Response {
    json_error(e.status(), "websocket_required", format!("this endpoint speaks WebSocket: {e}"))
}

async fn not_found() -> Response {
    json_error(StatusCode::NOT_FOUND, "not_found", "no such endpoint".into())
}

/// Error responses that are not JSON yet (axum's bare 405, …) get a JSON body.
async fn json_errors(res: Response) -> Response {
    let status = res.status();
    let is_json =
        res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    let code = match status {
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::NOT_FOUND => "not_found",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let message = status.canonical_reason().unwrap_or("error").to_ascii_lowercase();
    let (mut parts, _) = res.into_parts();
    let body = json_error(status, code, message);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    Response::from_parts(parts, body.into_body())
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/stream", any(streams::combined))
        .route("/ws", any(streams::raw_bare))
        .route("/ws/{*streams}", any(streams::raw))
        .route("/ws-api/v3", any(api::ws_api))
        .route("/api/v3/depth", get(api::rest_depth))
        .route("/api/v3/ping", get(api::rest_ping))
        .route("/api/v3/time", get(api::rest_time))
        .route("/control/status", get(control::status))
        .route("/control/latency", get(control::latency))
        .route("/control/drop", post(control::drop_all))
        .route("/control/gap", post(control::gap))
        .route("/control/malformed", post(control::malformed))
        .route("/control/stall", post(control::stall))
        .route("/control/withdraw", post(control::withdraw))
        .fallback(not_found)
        .layer(axum::middleware::map_response(json_errors))
        .with_state(shared)
}

/// Command-line values checked beyond what clap checks.
fn validate(args: &VenueSimArgs) -> Result<(f64, FaultPlan), Failure> {
    for (flag, fee) in [("--maker-fee", args.maker_fee), ("--taker-fee", args.taker_fee)] {
        if !(0.0..=MAX_FEE).contains(&fee) {
            return Err(Failure::usage(anyhow!("{flag} {fee}: use a fraction of notional from 0 to {MAX_FEE}")));
        }
    }
    let mut assets: Vec<&str> = args.balances.iter().map(|(a, _)| a.as_str()).collect();
    assets.sort_unstable();
    if let Some(w) = assets.windows(2).find(|w| w[0] == w[1]) {
        return Err(Failure::usage(anyhow!("--balance {} is given twice", w[0])));
    }
    if !args.listen.ip().is_loopback() && !args.allow_remote {
        return Err(Failure::usage(anyhow!(
            "--listen {} is not a loopback address: pass --allow-remote to serve beyond this host",
            args.listen
        )));
    }
    let speed = args.speed.unwrap_or(1.0);
    if !(speed == 0.0 || (1e-3..=MAX_SPEED).contains(&speed)) {
        return Err(Failure::usage(anyhow!(
            "--speed {speed}: use 0 (as fast as clients read) or 0.001 to {MAX_SPEED}"
        )));
    }
    let plan = FaultPlan {
        drop_after: args.drop_after_frames,
        gap_after: args.gap_after_frames,
        malformed_after: args.malformed_after_frames,
        stall_after: args.stall_after_frames.zip(args.stall_ms.map(Duration::from_millis)),
    };
    Ok((speed, plan))
}

/// Fixed point, 1e-8, of a configured decimal (rounded to the nearest unit).
fn fixed8(v: f64) -> i64 {
    (v * hft_shared::px::SCALE as f64).round() as i64
}

/// The venue's settings: the configuration's exchange filters, the flags' fees, limits and
/// balances.
fn venue_config(args: &VenueSimArgs, cfg: &Config) -> VenueConfig {
    let f = &cfg.filters;
    let balances = if args.balances.is_empty() { VenueConfig::default().balances } else { args.balances.clone() };
    VenueConfig {
        filters: Filters {
            tick: fixed8(f.tick_size).max(1),
            step: fixed8(f.step_size).max(1),
            min_qty: fixed8(f.min_qty),
            max_qty: fixed8(f.max_qty),
            min_notional: fixed8(f.min_notional),
        },
        maker_e8: fixed8(args.maker_fee),
        taker_e8: fixed8(args.taker_fee),
        fee_asset: args.fee_asset,
        orders_per_10s: args.orders_per_10s,
        orders_per_day: args.orders_per_day,
        balances,
    }
}

/// The account's credentials: flags, else the environment, else Binance's documented example
/// pair; and a description of where they came from (never the secret).
fn credentials(args: &VenueSimArgs, cfg: &Config) -> Result<(auth::Credentials, &'static str), Failure> {
    let key = args.api_key.clone().or_else(|| cfg.secrets.api_key.as_ref().map(|k| k.expose().to_owned()));
    let secret = args.api_secret.clone().or_else(|| cfg.secrets.api_secret.clone());
    match (key, secret) {
        (None, None) => Ok((auth::Credentials::test(), "Binance's documented example key")),
        (Some(key), Some(secret)) => {
            auth::Credentials::new(key, secret).map(|c| (c, "the configured key")).ok_or_else(|| {
                Failure::usage(anyhow!(
                    "the API key (--api-key or EXCHANGE_API_KEY) must be 1-128 ASCII letters and digits"
                ))
            })
        }
        (Some(_), None) => {
            Err(Failure::usage(anyhow!("an API key without its secret: pass --api-secret or set EXCHANGE_API_SECRET")))
        }
        (None, Some(_)) => {
            Err(Failure::usage(anyhow!("an API secret without its key: pass --api-key or set EXCHANGE_API_KEY")))
        }
    }
}

pub fn run(args: VenueSimArgs, config: Option<PathBuf>) -> Result<(), Failure> {
    let (speed, plan) = validate(&args)?;
    // The wire-to-wire clock starts before anything is sent.
    latency::now_ns();
    let sources = Sources::resolve(config, &Config::process_env);
    let cfg = Config::load(&sources, &Config::process_env)
        .map_err(|e| Failure::usage(anyhow!("invalid configuration: {e}")))?;
    let (creds, key_source) = credentials(&args, &cfg)?;
    let venue = venue_config(&args, &cfg);
    let mut books = Books::default();
    let mut reader = None;
    let (kind, source, pace) = if args.input.is_empty() {
        let rate = args.rate.unwrap_or(cfg.market.rate);
        let synthetic = Synthetic::new(&cfg, rate, &mut books).map_err(Failure::usage)?;
        tracing::info!(symbols = ?cfg.symbols, rate, "serving the synthetic market");
        let speed = if rate == 0 { 0.0 } else { 1.0 };
        ("synthetic", Source::Synthetic(synthetic), Pace { speed, wait_clients: args.wait_clients })
    } else {
        capture::check(&args.input).map_err(Failure::usage)?;
        tracing::info!(files = ?args.input, speed, looping = args.looping, "serving a capture");
        let (tx, rx) = mpsc::channel(READ_AHEAD);
        reader = Some((args.input.clone(), args.looping, tx));
        ("capture", Source::Capture(rx), Pace { speed, wait_clients: args.wait_clients })
    };
    tracing::info!(
        balances = ?venue.balances.iter().map(|(a, v)| format!("{a}={}", wire::dec8((*v).into()))).collect::<Vec<_>>(),
        maker_fee = args.maker_fee,
        taker_fee = args.taker_fee,
        fee_asset = ?args.fee_asset,
        orders_per_10s = venue.orders_per_10s,
        "signed WS-API methods accept {key_source} (the secret is never shown)"
    );
    let shared = Shared::new(kind, Duration::from_secs(args.ping_interval_s), books, venue, creds);
    if let Some((files, looping, tx)) = reader {
        // Detached: it ends on its own once the broadcaster (the receiver) is gone.
        capture::spawn(files, looping, tx, shared.stats.skipped_lines.clone())?;
    }

    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("cannot listen on {} (--listen)", args.listen))?;
    listener.set_nonblocking(true).context("cannot make the listening socket non-blocking")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("venue-sim")
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    let result = rt.block_on(serve(shared, listener, source, plan, pace));
    rt.shutdown_timeout(Duration::from_secs(1));
    result
}

async fn serve(
    shared: Arc<Shared>,
    listener: std::net::TcpListener,
    source: Source,
    plan: FaultPlan,
    pace: Pace,
) -> Result<(), Failure> {
    // Handlers before the banner: a test may signal as soon as it has read it.
    let mut sigterm = signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
    let listener = tokio::net::TcpListener::from_std(listener).context("cannot register the listening socket")?;
    let addr = listener.local_addr().context("cannot read the listening address")?;
    let app = router(shared.clone());
    let mut server = tokio::spawn(async move { axum::serve(listener, app).await });
    let mut timeline = tokio::spawn(timeline::run(shared.clone(), source, plan, pace));

    let mut out = std::io::stdout().lock();
    writeln!(out, "venue-sim listening on ws://{addr}")
        .and_then(|()| out.flush())
        .context("cannot write the banner to stdout")?;
    drop(out);

    let mut timeline_running = true;
    let result = loop {
        tokio::select! {
            _ = sigterm.recv() => {
                tracing::info!("SIGTERM: stopping");
                break Ok(());
            }
            _ = sigint.recv() => {
                tracing::info!("SIGINT: stopping");
                break Ok(());
            }
            res = &mut server => {
                let err = match res {
                    Ok(Ok(())) => anyhow!("the server stopped unexpectedly"),
                    Ok(Err(e)) => anyhow::Error::new(e).context("the server failed"),
                    Err(e) => anyhow::Error::new(e).context("the server task failed"),
                };
                break Err(Failure::runtime(err));
            }
            res = &mut timeline, if timeline_running => {
                timeline_running = false;
                match res {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => break Err(Failure::runtime(e.context("the market-data source failed"))),
                    Err(e) => break Err(Failure::runtime(anyhow::Error::new(e).context("the timeline task failed"))),
                }
            }
        }
    };

    timeline.abort();
    // Before the connections close: the one report an operator reads after a run.
    eprintln!(
        "venue-sim: wire-to-wire latency, market-data frame sent -> order.place received: {}",
        shared.latency.lock().summary()
    );
    shared.shutdown();
    let deadline = Instant::now() + CLOSE_GRACE;
    while shared.clients() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        args: VenueSimArgs,
    }

    fn parse(argv: &[&str]) -> Result<VenueSimArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("venue-sim").chain(argv.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn flags_parse_and_conflict_as_documented() {
        let a = parse(&[]).expect("defaults");
        assert_eq!(a.listen, "127.0.0.1:9443".parse::<SocketAddr>().expect("addr"));
        assert_eq!((a.ping_interval_s, a.speed, a.looping, a.wait_clients), (20, None, false, 0));
        let a = parse(&[
            "--input",
            "a.gz",
            "b.gz",
            "--speed",
            "0",
            "--loop",
            "--stall-after-frames",
            "5",
            "--stall-ms",
            "300",
        ])
        .expect("parses");
        assert_eq!(a.input, [PathBuf::from("a.gz"), PathBuf::from("b.gz")]);
        let (speed, plan) = validate(&a).expect("valid");
        assert_eq!((speed, plan.stall_after), (0.0, Some((5, Duration::from_millis(300)))));
        assert!(parse(&["--speed", "2"]).is_err(), "--speed needs --input");
        assert!(parse(&["--input", "a", "--rate", "5"]).is_err(), "--rate is for the synthetic market");
        assert!(parse(&["--stall-after-frames", "5"]).is_err(), "a stall needs its length");
        assert!(parse(&["--stall-ms", "0", "--stall-after-frames", "1"]).is_err());
        assert!(parse(&["--ping-interval-s", "0"]).is_err());
        let a = parse(&[
            "--balance",
            "usdt=10000",
            "--balance",
            "BTC=0.5",
            "--api-key",
            "k1",
            "--api-secret",
            "s3cret",
            "--maker-fee",
            "0",
            "--orders-per-10s",
            "5",
        ])
        .expect("parses");
        assert_eq!(a.balances, [("USDT".to_string(), 1_000_000_000_000), ("BTC".to_string(), 50_000_000)]);
        assert_eq!((a.api_key.as_deref(), a.maker_fee, a.taker_fee, a.orders_per_10s), (Some("k1"), 0.0, 0.001, 5));
        assert!(!format!("{a:?}").contains("s3cret"), "Debug never shows the secret");
        for bad in
            [&["--balance", "USDT"][..], &["--balance", "USDT=-1"], &["--balance", "=1"], &["--orders-per-10s", "0"]]
        {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            validate(&parse(&["--balance", "BTC=1", "--balance", "btc=2"]).expect("parses"))
                .map(|_| ())
                .map_err(|f| f.code),
            Err(2)
        );
        assert_eq!(validate(&parse(&["--taker-fee", "0.5"]).expect("parses")).map(|_| ()).map_err(|f| f.code), Err(2));
    }

    #[test]
    fn credentials_come_from_flags_then_the_environment_then_the_documented_pair() {
        let env = |k: &str, s: &str| {
            let (k, s) = (k.to_owned(), s.to_owned());
            Config::from_toml_str("", &move |name| match name {
                "EXCHANGE_API_KEY" if !k.is_empty() => Some(k.clone()),
                "EXCHANGE_API_SECRET" if !s.is_empty() => Some(s.clone()),
                _ => None,
            })
            .expect("config")
        };
        let (_, from) = credentials(&parse(&[]).expect("parses"), &env("", "")).expect("built-in");
        assert_eq!(from, "Binance's documented example key");
        let (_, from) = credentials(&parse(&[]).expect("parses"), &env("EnvKey1", "env-secret")).expect("env");
        assert_eq!(from, "the configured key");
        let flags = parse(&["--api-key", "FlagKey", "--api-secret", "x"]).expect("parses");
        assert!(credentials(&flags, &env("", "")).is_ok());
        assert_eq!(
            credentials(&parse(&["--api-key", "K"]).expect("parses"), &env("", "")).map(|_| ()).map_err(|f| f.code),
            Err(2)
        );
        assert_eq!(
            credentials(&parse(&[]).expect("parses"), &env("bad key", "s")).map(|_| ()).map_err(|f| f.code),
            Err(2)
        );
    }

    #[test]
    fn remote_addresses_and_bad_speeds_are_refused() {
        let remote = parse(&["--listen", "0.0.0.0:0"]).expect("parses");
        let f = validate(&remote).expect_err("refused");
        assert_eq!(f.code, 2);
        assert!(f.error.to_string().contains("--allow-remote"), "{}", f.error);
        assert!(validate(&parse(&["--listen", "0.0.0.0:0", "--allow-remote"]).expect("parses")).is_ok());
        assert!(validate(&parse(&["--listen", "[::1]:0"]).expect("parses")).is_ok());
        for bad in ["-1", "NaN", "inf", "0.0000001"] {
            let a = parse(&["--input", "x", &format!("--speed={bad}")]).expect("parses");
            assert_eq!(validate(&a).map(|_| ()).map_err(|f| f.code), Err(2), "{bad}");
        }
    }
}
