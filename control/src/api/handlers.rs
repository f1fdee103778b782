//! The REST endpoints: read-only views of the replica (`/`, `/health`, `/stats`, `/positions`,
//! `/latency`, `/risk`, `/strategies`) and the commands sent through the bridge
//! (`/trading/{halt,resume,flatten}`, `/risk/rearm`, `/strategies/{name}/{activate,deactivate,
//! weight}`, `/latency/reset`, `/book/{symbol}`). `/orders` and `/fills` are in `orders.rs`,
//! `/config` in `config.rs`, `/metrics` in `metrics.rs`, `/ws` in `ws.rs`.
//!
//! Runs on the tokio runtime. Handlers hold the replica's read lock only while copying what they
//! serve (never across an `.await`); replies to commands are built from the engine's
//! `CommandAck`, never from a guess. Each view is built by a `from_replica` function so that
//! `/ws` pushes exactly the bodies the GET endpoints serve.

use super::AppState;
use super::auth::Authorized;
use super::error::{ApiError, Outcome};
use crate::state::{self, Replica, feed_name};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hft_shared::config::Mode;
use hft_shared::msg::{CmdOutcome, CommandAck, CommandKind, EngineState, KillCause, Percentiles, RejectReason, Stage};
use hft_shared::{Amount, Qty, Side, StrategyKind, SymbolId};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};
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

/// `GET /`.
#[derive(Serialize)]
pub struct Root {
    pub name: &'static str,
    pub version: &'static str,
    pub mode: &'static str,
    pub uptime_s: f64,
}

/// `GET /`: what this is.
pub async fn root(State(app): State<AppState>) -> Json<Root> {
    let r = state::read(&app.replica);
    Json(Root {
        name: "hft",
        version: env!("CARGO_PKG_VERSION"),
        mode: r.mode.as_str(),
        uptime_s: Instant::now().saturating_duration_since(r.started).as_secs_f64(),
    })
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
    /// Per symbol: the engine's book is synced and uncrossed (from the feed state it reports);
    /// `null` until reported.
    pub book_valid: Ordered<String, Option<bool>>,
    /// Where orders go: `simulated` (the fill model: paper, shadow, backtest), or in live mode
    /// `unknown`: the engine reports no venue-link state to the control plane (a link that is
    /// not ready shows as `no_market` refusals).
    pub venue: &'static str,
    pub halted: bool,
    /// `null`, or why the kill switch tripped (`daily_loss`, `drawdown`); latched until re-armed.
    pub kill_switch: Option<&'static str>,
    pub uptime_s: f64,
    pub engine_running: bool,
    /// The durable store's writer: `ok`, `starting` (no counters yet), `stopped` (not ready:
    /// nothing more is being persisted) or `disabled` (`store.enabled = false`).
    pub store: &'static str,
}

impl Health {
    pub fn from_replica(r: &Replica, now: Instant) -> Self {
        let store = store_state(r);
        let ready = r.ready(now) && store != "stopped";
        Health {
            status: if ready { "ok" } else { "not_ready" },
            ready,
            mode: r.mode.as_str(),
            heartbeat_age_ms: r.heartbeat_age(now).map(|a| u64::try_from(a.as_millis()).unwrap_or(u64::MAX)),
            feed: r.feed_summary(),
            feeds: Ordered(r.symbols.iter().zip(&r.feeds).map(|(s, f)| (s.clone(), feed_name(*f))).collect()),
            book_valid: Ordered(r.symbols.iter().enumerate().map(|(i, s)| (s.clone(), r.book_valid(i))).collect()),
            venue: venue_state(r.mode),
            halted: r.state.halted,
            kill_switch: kill_code(r.state.kill_switch),
            uptime_s: now.saturating_duration_since(r.started).as_secs_f64(),
            engine_running: r.engine_running,
            store,
        }
    }
}

fn store_state(r: &Replica) -> &'static str {
    match (r.store_path.is_some(), r.store) {
        (false, _) => "disabled",
        (true, None) => "starting",
        (true, Some(s)) if !s.writer_running => "stopped",
        (true, Some(_)) => "ok",
    }
}

fn venue_state(mode: Mode) -> &'static str {
    match mode {
        Mode::Paper | Mode::Shadow | Mode::Backtest => "simulated",
        Mode::Live => "unknown",
    }
}

/// `GET /health`: 200 when ready, 503 (same body) when not.
pub async fn health(State(app): State<AppState>) -> Response {
    let body = Health::from_replica(&state::read(&app.replica), Instant::now());
    let status = if body.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
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
    pub kill_switch: Option<&'static str>,
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
    /// Live fills whose commission was charged in an asset that is neither the symbol's base nor
    /// its quote (BNB): it is not in `pnl.fees` nor the PnL.
    pub unpriced_fees: u64,
    pub ring_drops: RingDrops,
    /// Signed base quantity per symbol, exact decimal.
    pub position: Ordered<String, String>,
    /// Summed over symbols, quote currency, exact decimals. `realized` is net of fees.
    pub pnl: Pnl,
    /// The durable store's counters (`stored_fills` = acknowledged fills, `lag` = accepted and
    /// not yet committed); `null` when the store is disabled.
    pub store: Option<crate::store::StoreStats>,
}

impl Stats {
    pub fn from_replica(r: &Replica, now: Instant) -> Self {
        let snap = r.stats.unwrap_or_default();
        let (realized, unrealized, fees) = r.pnl();
        Stats {
            mode: r.mode.as_str(),
            uptime_s: now.saturating_duration_since(r.started).as_secs_f64(),
            halted: r.state.halted,
            kill_switch: kill_code(r.state.kill_switch),
            backpressure: r.state.backpressure,
            frames: snap.frames,
            decode_errors: snap.decode_errors,
            signals: snap.signals,
            orders: r.orders,
            fills: r.fills,
            rejects: r.rejects,
            rejects_by_reason: rejects_by_reason(r),
            book_gaps: snap.book_gaps,
            unpriced_fees: snap.unpriced_fees,
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
            store: r.store,
        }
    }
}

/// Every reason, in code order, with its count (zeros included).
fn rejects_by_reason(r: &Replica) -> Ordered<&'static str, u64> {
    Ordered(RejectReason::ALL.iter().map(|k| (k.code(), r.rejects_by_reason[k.index()])).collect())
}

fn kill_code(k: Option<KillCause>) -> Option<&'static str> {
    k.map(KillCause::code)
}

/// `GET /stats`.
pub async fn stats(State(app): State<AppState>) -> Json<Stats> {
    let r = state::read(&app.replica);
    Json(Stats::from_replica(&r, Instant::now()))
}

/// One symbol's position. Amounts in quote currency, quantities in base currency, exact
/// decimals.
#[derive(Serialize, Debug)]
pub struct PositionJson {
    pub symbol: String,
    /// Signed base quantity (negative: short).
    pub qty: String,
    /// Average entry price of the open position ("0" when flat).
    pub avg_px: String,
    /// Mark price (the book's mid), "0" while unknown.
    pub mark: String,
    /// Realized PnL net of fees.
    pub realized: String,
    /// Unrealized PnL at `mark`.
    pub unrealized: String,
    pub fees: String,
    /// |qty| × mark.
    pub notional: String,
    /// Engine time of the latest snapshot or fill, unix ns (null: nothing reported yet).
    pub ts_ns: Option<u64>,
}

#[derive(Serialize, Debug)]
pub struct PositionTotals {
    pub realized: String,
    pub unrealized: String,
    pub fees: String,
    /// `realized + unrealized` (realized is already net of fees).
    pub pnl: String,
    /// Sum of |qty| × mark over symbols.
    pub notional: String,
}

#[derive(Serialize, Debug)]
pub struct Positions {
    /// Every configured symbol, in config order (flat ones included).
    pub positions: Vec<PositionJson>,
    pub totals: PositionTotals,
}

impl Positions {
    /// `qty`, `realized` and `fees` include every fill drained so far; `avg_px`, `mark` and
    /// `unrealized` are the engine's latest position snapshot (at most `snapshot_ms` old).
    pub fn from_replica(r: &Replica) -> Self {
        let mut total_notional = Amount::ZERO;
        let positions = r
            .symbols
            .iter()
            .zip(&r.positions)
            .map(|(s, p)| {
                let p = p.as_ref();
                let qty = p.map_or(Qty::ZERO, |p| p.qty);
                let mark = p.map_or(hft_shared::Px::ZERO, |p| p.mark);
                let notional = Amount::notional(mark, qty.abs());
                total_notional += notional;
                let amount =
                    |f: fn(&hft_shared::msg::PositionSnapshot) -> Amount| p.map_or(Amount::ZERO, f).to_string();
                PositionJson {
                    symbol: s.clone(),
                    qty: qty.to_string(),
                    avg_px: p.map_or(hft_shared::Px::ZERO, |p| p.avg_px).to_string(),
                    mark: mark.to_string(),
                    realized: amount(|p| p.realized),
                    unrealized: amount(|p| p.unrealized),
                    fees: amount(|p| p.fees),
                    notional: notional.to_string(),
                    ts_ns: p.map(|p| p.ts_ns),
                }
            })
            .collect();
        let (realized, unrealized, fees) = r.pnl();
        Positions {
            positions,
            totals: PositionTotals {
                realized: realized.to_string(),
                unrealized: unrealized.to_string(),
                fees: fees.to_string(),
                pnl: (realized + unrealized).to_string(),
                notional: total_notional.to_string(),
            },
        }
    }
}

/// `GET /positions`: every symbol's position and PnL, and totals.
pub async fn positions(State(app): State<AppState>) -> Json<Positions> {
    Json(Positions::from_replica(&state::read(&app.replica)))
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

/// Every stage, in pipeline order.
pub type LatencyJson = Ordered<&'static str, Pct>;

pub fn latency_from_replica(r: &Replica) -> LatencyJson {
    Ordered(Stage::ALL.iter().map(|s| (s.name(), Pct::from(r.latency[s.index()]))).collect())
}

/// `GET /latency`: every stage, in pipeline order, zeros until reported (and after a reset).
pub async fn latency(State(app): State<AppState>) -> Json<LatencyJson> {
    Json(latency_from_replica(&state::read(&app.replica)))
}

/// `POST /latency/reset` and `DELETE /latency` (token required): the engine clears its
/// histograms; once it has acknowledged, the replica's view is cleared too, so `/latency` reads
/// zero counts until the engine's next snapshot of each stage.
pub async fn reset_latency(_: Authorized, State(app): State<AppState>) -> Result<CommandReply, ApiError> {
    let ack = app
        .bridge
        .command(CommandKind::ResetLatency)
        .await
        .inspect_err(|e| tracing::warn!("latency reset failed: {e}"))?;
    let reply = reply(ack)?;
    state::write(&app.replica).reset_latency(ack.ts_ns);
    tracing::info!(outcome = reply.outcome, "latency histograms reset");
    Ok(reply)
}

#[derive(Serialize, Debug)]
pub struct StateJson {
    pub halted: bool,
    pub backpressure: bool,
    pub active_strategies: Vec<&'static str>,
    /// `null`, `daily_loss` or `drawdown`.
    pub kill_switch: Option<&'static str>,
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
            kill_switch: kill_code(s.kill_switch),
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

impl IntoResponse for CommandReply {
    fn into_response(self) -> Response {
        let outcome = Outcome(self.outcome);
        let mut res = Json(self).into_response();
        res.extensions_mut().insert(outcome);
        res
    }
}

/// The HTTP reply for an acknowledged command: success only when the engine applied it or it
/// was already in force.
pub fn reply(ack: CommandAck) -> Result<CommandReply, ApiError> {
    match ack.outcome {
        CmdOutcome::Applied | CmdOutcome::Unchanged => Ok(CommandReply {
            ok: true,
            outcome: outcome_name(ack.outcome),
            halted: ack.state.halted,
            state: ack.state.into(),
        }),
        refused => Err(ApiError::Refused(refused)),
    }
}

async fn send(app: &AppState, kind: CommandKind) -> Result<CommandReply, ApiError> {
    let ack = app.bridge.command(kind).await.inspect_err(|e| tracing::warn!(?kind, "command failed: {e}"))?;
    tracing::info!(?kind, outcome = outcome_name(ack.outcome), halted = ack.state.halted, "command acknowledged");
    reply(ack)
}

/// `POST /trading/halt` (token required).
pub async fn halt(_: Authorized, State(app): State<AppState>) -> Result<CommandReply, ApiError> {
    send(&app, CommandKind::Halt).await
}

/// `POST /trading/resume` (token required).
pub async fn resume(_: Authorized, State(app): State<AppState>) -> Result<CommandReply, ApiError> {
    send(&app, CommandKind::Resume).await
}

/// `POST /trading/flatten` (token required): orders that bring every position to zero.
pub async fn flatten(_: Authorized, State(app): State<AppState>) -> Result<CommandReply, ApiError> {
    send(&app, CommandKind::Flatten).await
}

/// `POST /risk/rearm` (token required): clears a tripped kill switch (`unchanged` when not
/// tripped).
pub async fn rearm(_: Authorized, State(app): State<AppState>) -> Result<CommandReply, ApiError> {
    send(&app, CommandKind::Rearm).await
}

/// The strategy a path names; an unknown name is refused here, before any command is sent.
fn strategy_kind(name: &str) -> Result<StrategyKind, ApiError> {
    StrategyKind::from_name(name).ok_or_else(|| ApiError::UnknownStrategy(name.to_string()))
}

/// `POST /strategies/{name}/activate` (token required).
pub async fn activate(
    _: Authorized,
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> Result<CommandReply, ApiError> {
    send(&app, CommandKind::Activate(strategy_kind(&name)?)).await
}

/// `POST /strategies/{name}/deactivate` (token required).
pub async fn deactivate(
    _: Authorized,
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> Result<CommandReply, ApiError> {
    send(&app, CommandKind::Deactivate(strategy_kind(&name)?)).await
}

/// Body of `PUT /strategies/{name}/weight`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct WeightBody {
    weight: f64,
}

/// `PUT /strategies/{name}/weight` with `{"weight": <number>}` (token required). The body is
/// parsed here whatever its content type, so every malformed body is a 400; the range is the
/// engine's to check (out of range: its `invalid_value`, 422).
pub async fn set_weight(
    _: Authorized,
    State(app): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<CommandReply, ApiError> {
    let kind = strategy_kind(&name)?;
    let weight = parse_weight(&body)
        .map_err(|e| ApiError::BadRequest(format!("expected a JSON body {{\"weight\": <number>}}: {e}")))?;
    send(&app, CommandKind::SetWeight(kind, weight)).await
}

/// The weight of a `{"weight": <number>}` body. Only an object will do (serde would also take a
/// struct as a one-element array).
fn parse_weight(body: &[u8]) -> Result<f64, serde_json::Error> {
    let v: serde_json::Value = serde_json::from_slice(body)?;
    if !v.is_object() {
        return Err(serde::de::Error::custom(format!("{} is not an object", json_kind(&v))));
    }
    WeightBody::deserialize(v).map(|b| b.weight)
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[derive(Serialize, Debug)]
pub struct CapitalJson {
    pub total: String,
    pub reserve: String,
    /// `total - reserve`: what the engine may put at risk.
    pub deployable: String,
}

/// The risk limits the engine enforces, from the configuration loaded at start. Amounts in quote
/// currency and quantities in base currency as exact decimal strings (as the engine rounds them
/// to 1e-8); fractions, counts and durations as numbers.
#[derive(Serialize, Debug)]
pub struct RiskLimitsJson {
    /// Largest |position| notional per symbol.
    pub max_position: String,
    /// Largest sum of |position| notionals over all symbols.
    pub max_total_position: String,
    /// Largest |position| per symbol, base quantity.
    pub max_position_qty: String,
    pub max_open_orders: u32,
    /// Fraction of deployable capital an order may lose at `stop_distance`.
    pub risk_per_trade: f64,
    /// Fraction of price assumed as the stop for sizing.
    pub stop_distance: f64,
    /// Kill switch: loss since 00:00 UTC, fraction of total capital.
    pub daily_loss: f64,
    /// Kill switch: fall from the equity peak, fraction.
    pub max_drawdown: f64,
    /// Largest distance of an order's price from the mid, fraction.
    pub price_band: f64,
    pub orders_per_10s: u32,
    pub orders_per_day: u32,
    pub order_cooldown_ms: u64,
    pub duplicate_window_ms: u64,
    /// A trip also flattens every position.
    pub kill_flatten: bool,
    pub capital: CapitalJson,
}

/// Where the account stands against the limits. Account figures come from the engine's latest
/// risk snapshot (null until the first one, then lagging by up to `snapshot_ms`).
#[derive(Serialize, Debug)]
pub struct RiskUsageJson {
    /// Capital + realized (net of fees) + unrealized PnL.
    pub equity: Option<String>,
    /// Highest equity since start or the last re-arm.
    pub peak: Option<String>,
    /// Equity at 00:00 UTC (or the last re-arm).
    pub day_start: Option<String>,
    /// `equity - day_start`.
    pub daily_pnl: Option<String>,
    /// `(peak - equity) / peak`, a fraction (0 when the peak is not positive).
    pub drawdown: Option<f64>,
    pub orders_10s: Option<u32>,
    pub orders_today: Option<u32>,
    /// Engine time of the snapshot, unix ns.
    pub ts_ns: Option<u64>,
    /// |position| × mark per symbol; null for an open position whose mark is not known yet.
    pub position_notional: Ordered<String, Option<String>>,
    /// Sum of the above; null when one of them is.
    pub total_position_notional: Option<String>,
    /// Orders not yet final (pending, acknowledged, partially filled) among those tracked,
    /// against `limits.max_open_orders`.
    pub open_orders: usize,
}

#[derive(Serialize, Debug)]
pub struct RiskJson {
    /// `null`, or why the kill switch tripped (`daily_loss`, `drawdown`); latched until re-armed.
    pub kill_switch: Option<&'static str>,
    pub halted: bool,
    pub limits: RiskLimitsJson,
    pub usage: RiskUsageJson,
    /// Refusals counted from the reject events: the total and every reason listed.
    pub rejects: u64,
    pub rejects_by_reason: Ordered<&'static str, u64>,
}

/// A configured amount as the engine holds it (nearest 1e-16), exact decimal.
fn cfg_amount(v: f64) -> String {
    Amount::from_f64(v).unwrap_or(Amount::ZERO).to_string()
}

impl RiskJson {
    pub fn from_replica(r: &Replica) -> Self {
        let c = &r.risk_cfg;
        let limits = RiskLimitsJson {
            max_position: cfg_amount(c.max_position),
            max_total_position: cfg_amount(c.max_total_position),
            max_position_qty: Qty::from_f64(c.max_position_qty).unwrap_or(Qty::ZERO).to_string(),
            max_open_orders: c.max_open_orders,
            risk_per_trade: c.risk_per_trade,
            stop_distance: c.stop_distance,
            daily_loss: c.daily_loss,
            max_drawdown: c.max_drawdown,
            price_band: c.price_band,
            orders_per_10s: c.orders_per_10s,
            orders_per_day: c.orders_per_day,
            order_cooldown_ms: c.order_cooldown_ms,
            duplicate_window_ms: c.duplicate_window_ms,
            kill_flatten: c.kill_flatten,
            capital: CapitalJson {
                total: cfg_amount(r.capital.total),
                reserve: cfg_amount(r.capital.reserve),
                deployable: cfg_amount(r.capital.deployable()),
            },
        };
        let notionals: Vec<(String, Option<Amount>)> = r
            .symbols
            .iter()
            .zip(&r.positions)
            .map(|(s, p)| {
                let n = match p {
                    Some(p) if !p.qty.is_zero() => (!p.mark.is_zero()).then(|| Amount::notional(p.mark, p.qty.abs())),
                    _ => Some(Amount::ZERO),
                };
                (s.clone(), n)
            })
            .collect();
        let total = notionals.iter().try_fold(Amount::ZERO, |acc, (_, n)| n.map(|n| acc + n));
        let a = r.risk;
        let usage = RiskUsageJson {
            equity: a.map(|a| a.equity.to_string()),
            peak: a.map(|a| a.peak.to_string()),
            day_start: a.map(|a| a.day_start.to_string()),
            daily_pnl: a.map(|a| (a.equity - a.day_start).to_string()),
            drawdown: a
                .map(|a| if a.peak > Amount::ZERO { (a.peak - a.equity).to_f64() / a.peak.to_f64() } else { 0.0 }),
            orders_10s: a.map(|a| a.orders_10s),
            orders_today: a.map(|a| a.orders_today),
            ts_ns: a.map(|a| a.ts_ns),
            position_notional: Ordered(notionals.into_iter().map(|(s, n)| (s, n.map(|n| n.to_string()))).collect()),
            total_position_notional: total.map(|t| t.to_string()),
            open_orders: r.order_table.iter().filter(|o| !o.status.is_final()).count(),
        };
        RiskJson {
            kill_switch: kill_code(r.state.kill_switch),
            halted: r.state.halted,
            limits,
            usage,
            rejects: r.rejects,
            rejects_by_reason: rejects_by_reason(r),
        }
    }
}

/// `GET /risk`: limits, usage against them, the kill switch and refusals by reason.
pub async fn risk(State(app): State<AppState>) -> Json<RiskJson> {
    let r = state::read(&app.replica);
    Json(RiskJson::from_replica(&r))
}

#[derive(Serialize, Debug)]
pub struct StrategyJson {
    pub name: &'static str,
    /// As of the engine's latest heartbeat or acknowledgement.
    pub active: bool,
    /// Latest weight the engine reported (6 decimals after a change), else the configured one.
    pub weight: Option<f64>,
    /// Latest signal in [-1, 1]; null until the engine reports the strategy (it reports only
    /// configured strategies).
    pub signal: Option<f64>,
    /// Counters since start, from the latest report (0 until the first).
    pub signals: u64,
    pub orders: u64,
    /// Realized PnL net of fees attributed to the strategy, exact decimal ("0" until the first
    /// report).
    pub realized: String,
    /// Engine time of the latest report, unix ns.
    pub ts_ns: Option<u64>,
    /// The strategy's section of the configuration loaded at start.
    pub params: serde_json::Value,
}

/// Every strategy kind, in index order, keyed by name.
pub type StrategiesJson = Ordered<&'static str, StrategyJson>;

/// `GET /strategies`: every strategy kind, in index order, keyed by name.
pub async fn strategies(State(app): State<AppState>) -> Json<StrategiesJson> {
    Json(strategies_from_replica(&state::read(&app.replica)))
}

pub fn strategies_from_replica(r: &Replica) -> StrategiesJson {
    Ordered(
        StrategyKind::ALL
            .iter()
            .map(|&k| {
                let snap = r.strategies[k.index()];
                let s = StrategyJson {
                    name: k.name(),
                    active: r.state.active_strategies & (1 << k.index()) != 0,
                    weight: r.weights[k.index()],
                    signal: snap.map(|s| s.signal),
                    signals: snap.map_or(0, |s| s.signals),
                    orders: snap.map_or(0, |s| s.orders),
                    realized: snap.map_or(Amount::ZERO, |s| s.realized).to_string(),
                    ts_ns: snap.map(|s| s.ts_ns),
                    params: r.strategy_params.get(k.name()).cloned().unwrap_or(serde_json::Value::Null),
                };
                (k.name(), s)
            })
            .collect(),
    )
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
