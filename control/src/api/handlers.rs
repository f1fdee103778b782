//! The REST endpoints: read-only views of the replica (`/health`, `/stats`, `/latency`) and the
//! trading commands (`/trading/halt`, `/trading/resume`) sent through the bridge.
//!
//! Runs on the tokio runtime. Handlers hold the replica's read lock only while copying what they
//! serve (never across an `.await`); replies to commands are built from the engine's
//! `CommandAck`, never from a guess.

use super::AppState;
use super::auth::Authorized;
use super::error::ApiError;
use crate::state::{self, Replica, feed_name};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hft_shared::msg::{CmdOutcome, CommandAck, CommandKind, EngineState, Percentiles, RejectReason, Stage};
use hft_shared::{Side, StrategyKind, SymbolId};
use serde::Serialize;
use serde::ser::SerializeMap;
use std::time::Instant;

/// A JSON object whose keys keep the given order (config order, pipeline order).
#[derive(Debug)]
pub struct Ordered<K, V>(pub Vec<(K, V)>);

impl<K: Serialize, V: Serialize> Serialize for Ordered<K, V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

#[derive(Serialize)]
pub struct Health {
    /// `ok` or `not_ready`.
    pub status: &'static str,
    pub ready: bool,
    pub mode: &'static str,
    /// Milliseconds since the last heartbeat arrived; `null` before the first.
    pub heartbeat_age_ms: Option<u64>,
    /// The worst feed state over all symbols.
    pub feed: &'static str,
    pub feeds: Ordered<String, &'static str>,
    pub halted: bool,
    pub uptime_s: f64,
    pub engine_running: bool,
}

/// `GET /health`: 200 when ready, 503 (same body) when not.
pub async fn health(State(app): State<AppState>) -> Response {
    let now = Instant::now();
    let r = state::read(&app.replica);
    let ready = r.ready(now);
    let body = Health {
        status: if ready { "ok" } else { "not_ready" },
        ready,
        mode: r.mode.as_str(),
        heartbeat_age_ms: r.heartbeat_age(now).map(|a| u64::try_from(a.as_millis()).unwrap_or(u64::MAX)),
        feed: r.feed_summary(),
        feeds: Ordered(r.symbols.iter().zip(&r.feeds).map(|(s, f)| (s.clone(), feed_name(*f))).collect()),
        halted: r.state.halted,
        uptime_s: now.saturating_duration_since(r.started).as_secs_f64(),
        engine_running: r.engine_running,
    };
    drop(r);
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

#[derive(Serialize)]
pub struct RingDrops {
    pub telemetry_dropped: u64,
    pub audit_parked: u64,
}

#[derive(Serialize)]
pub struct Pnl {
    pub realized: String,
    pub unrealized: String,
    pub fees: String,
    pub total: String,
}

#[derive(Serialize)]
pub struct Stats {
    pub mode: &'static str,
    pub uptime_s: f64,
    pub halted: bool,
    pub backpressure: bool,
    pub frames: u64,
    pub decode_errors: u64,
    pub signals: u64,
    /// Counted from the order events (exact as of the last drained event).
    pub orders: u64,
    pub fills: u64,
    pub rejects: u64,
    pub rejects_by_reason: Ordered<&'static str, u64>,
    pub book_gaps: u64,
    pub ring_drops: RingDrops,
    /// Signed base quantity per symbol, exact decimal.
    pub position: Ordered<String, String>,
    /// Summed over symbols, quote currency, exact decimals. `realized` is net of fees.
    pub pnl: Pnl,
}

impl Stats {
    pub fn from_replica(r: &Replica, now: Instant) -> Self {
        let snap = r.stats.unwrap_or_default();
        let (realized, unrealized, fees) = r.pnl();
        Stats {
            mode: r.mode.as_str(),
            uptime_s: now.saturating_duration_since(r.started).as_secs_f64(),
            halted: r.state.halted,
            backpressure: r.state.backpressure,
            frames: snap.frames,
            decode_errors: snap.decode_errors,
            signals: snap.signals,
            orders: r.orders,
            fills: r.fills,
            rejects: r.rejects,
            rejects_by_reason: Ordered(
                RejectReason::ALL.iter().map(|k| (k.code(), r.rejects_by_reason[k.index()])).collect(),
            ),
            book_gaps: snap.book_gaps,
            ring_drops: RingDrops { telemetry_dropped: snap.telemetry_dropped, audit_parked: snap.audit_parked },
            position: Ordered(
                r.symbols
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (s.clone(), r.position(SymbolId(i as u16)).to_string()))
                    .collect(),
            ),
            pnl: Pnl {
                realized: realized.to_string(),
                unrealized: unrealized.to_string(),
                fees: fees.to_string(),
                total: (realized + unrealized).to_string(),
            },
        }
    }
}

/// `GET /stats`.
pub async fn stats(State(app): State<AppState>) -> Json<Stats> {
    let r = state::read(&app.replica);
    Json(Stats::from_replica(&r, Instant::now()))
}

/// One stage's percentiles, ns.
#[derive(Serialize)]
pub struct Pct {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    #[serde(rename = "p99.9")]
    pub p999: u64,
    pub max: u64,
}

impl From<Percentiles> for Pct {
    fn from(p: Percentiles) -> Self {
        Pct { count: p.count, p50: p.p50, p90: p.p90, p99: p.p99, p999: p.p999, max: p.max }
    }
}

/// `GET /latency`: every stage, in pipeline order, zeros until reported.
pub async fn latency(State(app): State<AppState>) -> Json<Ordered<&'static str, Pct>> {
    let r = state::read(&app.replica);
    Json(Ordered(Stage::ALL.iter().map(|s| (s.name(), Pct::from(r.latency[s.index()]))).collect()))
}

#[derive(Serialize, Debug)]
pub struct StateJson {
    pub halted: bool,
    pub backpressure: bool,
    pub active_strategies: Vec<&'static str>,
}

impl From<EngineState> for StateJson {
    fn from(s: EngineState) -> Self {
        StateJson {
            halted: s.halted,
            backpressure: s.backpressure,
            active_strategies: StrategyKind::ALL
                .iter()
                .filter(|k| s.active_strategies & (1 << k.index()) != 0)
                .map(|k| k.name())
                .collect(),
        }
    }
}

#[derive(Serialize, Debug)]
pub struct CommandReply {
    pub ok: bool,
    /// `applied` or `unchanged`.
    pub outcome: &'static str,
    pub halted: bool,
    pub state: StateJson,
}

fn outcome_name(o: CmdOutcome) -> &'static str {
    match o {
        CmdOutcome::Applied => "applied",
        CmdOutcome::Unchanged => "unchanged",
        CmdOutcome::UnknownStrategy => "unknown_strategy",
        CmdOutcome::InvalidValue => "invalid_value",
        CmdOutcome::Unsupported => "unsupported",
    }
}

/// The HTTP reply for an acknowledged command: success only when the engine applied it or it
/// was already in force.
pub fn reply(ack: CommandAck) -> Result<Json<CommandReply>, ApiError> {
    match ack.outcome {
        CmdOutcome::Applied | CmdOutcome::Unchanged => Ok(Json(CommandReply {
            ok: true,
            outcome: outcome_name(ack.outcome),
            halted: ack.state.halted,
            state: ack.state.into(),
        })),
        refused => Err(ApiError::Refused(refused)),
    }
}

async fn send(app: &AppState, kind: CommandKind) -> Result<Json<CommandReply>, ApiError> {
    let ack = app.bridge.command(kind).await.inspect_err(|e| tracing::warn!(?kind, "command failed: {e}"))?;
    tracing::info!(?kind, outcome = outcome_name(ack.outcome), halted = ack.state.halted, "command acknowledged");
    reply(ack)
}

/// `POST /trading/halt` (token required).
pub async fn halt(_: Authorized, State(app): State<AppState>) -> Result<Json<CommandReply>, ApiError> {
    send(&app, CommandKind::Halt).await
}

/// `POST /trading/resume` (token required).
pub async fn resume(_: Authorized, State(app): State<AppState>) -> Result<Json<CommandReply>, ApiError> {
    send(&app, CommandKind::Resume).await
}

#[derive(Serialize, Debug)]
pub struct BookJson {
    pub symbol: String,
    /// Synced and not crossed. An invalid book has no levels.
    pub valid: bool,
    /// Binance update id the book reflects.
    pub update_id: u64,
    /// `[price, quantity]` best-first, as exact decimal strings.
    pub bids: Vec<[String; 2]>,
    pub asks: Vec<[String; 2]>,
}

/// `GET /book/{symbol}`: the engine's full L2 book, dumped through the ring on request.
pub async fn book(State(app): State<AppState>, Path(symbol): Path<String>) -> Result<Json<BookJson>, ApiError> {
    let name = symbol.to_ascii_uppercase();
    let id = {
        let r = state::read(&app.replica);
        r.symbols.iter().position(|s| *s == name)
    };
    let Some(id) = id else { return Err(ApiError::UnknownSymbol(symbol)) };
    let ack = app.bridge.command(CommandKind::DumpBook(SymbolId(id as u16))).await?;
    // A refusal becomes its error reply.
    let _accepted = reply(ack)?;
    // FIFO ring: every level was applied to the replica before the ack.
    let r = state::read(&app.replica);
    let d = &r.books[id];
    if !d.complete {
        return Err(ApiError::Incomplete);
    }
    let (mut bids, mut asks) = (Vec::new(), Vec::new());
    for l in &d.levels {
        let row = [l.px.to_string(), l.qty.to_string()];
        match l.side {
            Side::Buy => bids.push(row),
            Side::Sell => asks.push(row),
        }
    }
    Ok(Json(BookJson { symbol: name, valid: d.valid, update_id: d.update_id, bids, asks }))
}

/// Fallback for unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::NotFound
}
