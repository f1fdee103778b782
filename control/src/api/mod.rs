//! The control API's router: read-only views for anyone on the socket, state-changing calls
//! behind a bearer token and audited, JSON errors everywhere, bounded request bodies.
//!
//! Runs on the tokio runtime (axum). Handlers see the engine only through the bridge and the
//! replica.
//!
//! Routes: `GET /`, `/health`, `/stats`, `/positions`, `/orders`, `/fills`, `/latency`, `/risk`,
//! `/strategies`, `/config`, `/metrics`, `/book/{symbol}`, `/ws`, `/dashboard`; with the token:
//! `POST /trading/{halt,resume,flatten}`, `POST /risk/rearm`, `POST
//! /strategies/{name}/{activate,deactivate}`, `PUT /strategies/{name}/weight`, `POST
//! /latency/reset` (or `DELETE /latency`).

pub mod audit_layer;
pub mod auth;
pub mod config;
pub mod dashboard;
pub mod error;
pub mod handlers;
pub mod metrics;
pub mod orders;
pub mod performance;
pub mod ws;

use crate::audit::Audit;
use crate::bridge::Bridge;
use crate::state::SharedReplica;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use axum::{Extension, Router, middleware};
use std::sync::Arc;
use tower_http::limit::RequestBodyLimitLayer;

/// Largest request body accepted, bytes.
pub const BODY_LIMIT: usize = 64 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub replica: SharedReplica,
    pub bridge: Bridge,
    /// Bearer token for state-changing calls. Never logged or served.
    pub token: Arc<str>,
    /// Operator actions (every state-changing request) go here.
    pub audit: Audit,
}

/// The API. Dropping the router (the server has stopped) closes every `/ws` connection.
pub fn router(state: AppState) -> Router {
    router_with(state, ws::Hub::new(ws::MAX_CLIENTS))
}

fn router_with(state: AppState, hub: Arc<ws::Hub>) -> Router {
    Router::new()
        .route("/", get(handlers::root))
        .route("/dashboard", get(dashboard::page))
        .route("/health", get(handlers::health))
        .route("/performance", get(performance::performance))
        .route("/stats", get(handlers::stats))
        .route("/positions", get(handlers::positions))
        .route("/orders", get(orders::orders))
        .route("/fills", get(orders::fills))
        .route("/latency", get(handlers::latency).delete(handlers::reset_latency))
        .route("/book/{symbol}", get(handlers::book))
        .route("/risk", get(handlers::risk))
        .route("/strategies", get(handlers::strategies))
        .route("/config", get(config::config))
        .route("/metrics", get(metrics::metrics))
        .route("/ws", get(ws::upgrade))
        // State-changing: the handlers take `auth::Authorized`.
        .route("/trading/halt", post(handlers::halt))
        .route("/trading/resume", post(handlers::resume))
        .route("/trading/flatten", post(handlers::flatten))
        .route("/risk/rearm", post(handlers::rearm))
        .route("/strategies/{name}/activate", post(handlers::activate))
        .route("/strategies/{name}/deactivate", post(handlers::deactivate))
        .route("/strategies/{name}/weight", put(handlers::set_weight))
        .route("/latency/reset", post(handlers::reset_latency))
        .fallback(handlers::not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(middleware::map_response(error::json_errors))
        // Outermost: it records the final (JSON) response of every state-changing request.
        .layer(middleware::from_fn_with_state(state.clone(), audit_layer::record))
        .layer(Extension(hub))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::OperatorAction;
    use crate::bridge::fake::{self, Script};
    use crate::state::{self, Replica, fixtures};
    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode, header};
    use hft_shared::config::Config;
    use hft_shared::msg::{
        Event, FeedEvent, FeedState, KillCause, LatencySnapshot, OrderStatus, Percentiles, PositionSnapshot,
        RejectReason, RiskEventKind, Stage, StrategySnapshot,
    };
    use hft_shared::{Amount, Px, Qty, StrategyKind, SymbolId};
    use serde_json::Value;
    use std::sync::Mutex;
    use std::time::{Duration, Instant};
    use tower::ServiceExt;

    const TOKEN: &str = "s3cret-token";

    const AUTH: Option<&str> = Some("Bearer s3cret-token");

    struct Harness {
        app: Router,
        replica: SharedReplica,
        cfg: Config,
        /// Every operator action recorded, in order.
        audit: Arc<Mutex<Vec<OperatorAction>>>,
    }

    fn harness(script: Script, ack_timeout: Duration) -> Harness {
        harness_with(Config::from_toml_str("", &|_| None).expect("config"), script, ack_timeout)
    }

    fn harness_with(cfg: Config, script: Script, ack_timeout: Duration) -> Harness {
        let replica = Replica::new(&cfg, Instant::now()).shared();
        let (p, c, _eng) = fake::start(script, 64);
        let (bridge, _task) = Bridge::start_with_timeout(p, c, replica.clone(), ack_timeout);
        let audit = Arc::new(Mutex::new(Vec::new()));
        let sink = audit.clone();
        let app = router(AppState {
            replica: replica.clone(),
            bridge,
            token: Arc::from(TOKEN),
            audit: Audit::new(move |a| sink.lock().expect("audit log").push(a)),
        });
        Harness { app, replica, cfg, audit }
    }

    fn acking() -> Harness {
        harness(Script::Ack { orders_before_ack: 2 }, Duration::from_secs(2))
    }

    async fn call(app: &Router, method: Method, uri: &str, auth: Option<&str>, body: Vec<u8>) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        if !body.is_empty() {
            req = req.header(header::CONTENT_LENGTH, body.len());
        }
        let req = req.body(Body::from(body)).expect("request");
        let res = app.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let ct = res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.expect("body");
        assert!(ct.starts_with("application/json"), "{status}: content-type {ct:?}");
        let json = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {bytes:?}"));
        (status, json)
    }

    async fn get(app: &Router, uri: &str) -> (StatusCode, Value) {
        call(app, Method::GET, uri, None, Vec::new()).await
    }

    #[tokio::test]
    async fn halt_without_token_is_401_and_changes_nothing() {
        let h = acking();
        let (status, body) = call(&h.app, Method::POST, "/trading/halt", None, Vec::new()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["code"], "unauthorized");
        tokio::time::sleep(Duration::from_millis(20)).await;
        let r = state::read(&h.replica);
        assert!(!r.state.halted);
        assert_eq!((r.orders, r.last_ack), (0, None), "no command reached the engine");
    }

    #[tokio::test]
    async fn halt_with_wrong_token_is_401_and_changes_nothing() {
        let h = acking();
        for auth in ["Bearer nope", "Bearer s3cret-token-x", "Basic s3cret-token", "s3cret-token"] {
            let (status, body) = call(&h.app, Method::POST, "/trading/halt", Some(auth), Vec::new()).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth}");
            assert_eq!(body["code"], "unauthorized");
        }
        let (_, stats) = get(&h.app, "/stats").await;
        assert_eq!(stats["halted"], false);
        assert!(state::read(&h.replica).last_ack.is_none());
    }

    #[tokio::test]
    async fn halt_and_resume_reply_with_the_acked_state() {
        let h = acking();
        let auth = Some("Bearer s3cret-token");
        let (status, body) = call(&h.app, Method::POST, "/trading/halt", auth, Vec::new()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body,
            serde_json::json!({"ok": true, "outcome": "applied", "halted": true,
                "state": {"halted": true, "backpressure": false, "active_strategies": ["momentum"],
                    "kill_switch": null}})
        );
        // Orders emitted before the ack are already in /stats when the reply arrives.
        let (_, stats) = get(&h.app, "/stats").await;
        assert_eq!((stats["orders"].as_u64(), stats["halted"].as_bool()), (Some(2), Some(true)));
        let (_, body) = call(&h.app, Method::POST, "/trading/halt", auth, Vec::new()).await;
        assert_eq!(body["outcome"], "unchanged");
        let (status, body) = call(&h.app, Method::POST, "/trading/resume", auth, Vec::new()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!((body["outcome"].as_str(), body["halted"].as_bool()), (Some("applied"), Some(false)));
    }

    #[tokio::test]
    async fn no_ack_is_503_engine_unavailable() {
        let h = harness(Script::Mute, Duration::from_millis(100));
        let (status, body) = call(&h.app, Method::POST, "/trading/halt", Some("Bearer s3cret-token"), Vec::new()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["code"], "engine_unavailable");
    }

    #[tokio::test]
    async fn unknown_route_is_404_json() {
        let h = acking();
        let (status, body) = get(&h.app, "/nope").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["code"], "not_found");
        let (status, _) = call(&h.app, Method::POST, "/trading/nope", Some("Bearer s3cret-token"), Vec::new()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn wrong_method_is_405_json() {
        let h = acking();
        let (status, body) = get(&h.app, "/trading/halt").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(body["code"], "method_not_allowed");
        let (status, body) = call(&h.app, Method::DELETE, "/stats", None, Vec::new()).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(body["code"], "method_not_allowed");
    }

    #[tokio::test]
    async fn oversized_body_is_413_json_and_changes_nothing() {
        let h = acking();
        let big = vec![b'x'; BODY_LIMIT + 1];
        let (status, body) = call(&h.app, Method::POST, "/trading/halt", Some("Bearer s3cret-token"), big).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body["code"], "payload_too_large");
        assert!(state::read(&h.replica).last_ack.is_none());
    }

    #[tokio::test]
    async fn health_is_503_until_a_heartbeat_then_200() {
        let h = acking();
        let (status, body) = get(&h.app, "/health").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!((body["status"].as_str(), body["ready"].as_bool()), (Some("not_ready"), Some(false)));
        assert!(body["heartbeat_age_ms"].is_null());
        state::write(&h.replica).apply(&fixtures::heartbeat(1, false), Instant::now());
        let (status, body) = get(&h.app, "/health").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "ok");
        assert_eq!(body["mode"], "paper");
        assert_eq!(body["feeds"], serde_json::json!({"BTCUSDT": "unknown"}));
        assert_eq!(body["engine_running"], true);
        assert!(body["heartbeat_age_ms"].as_u64().is_some_and(|a| a < 2000));
        state::write(&h.replica).engine_running = false;
        let (status, body) = get(&h.app, "/health").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["engine_running"], false);
    }

    #[tokio::test]
    async fn a_stopped_store_writer_makes_health_not_ready_and_stats_show_its_counters() {
        let h = acking();
        state::write(&h.replica).apply(&fixtures::heartbeat(1, false), Instant::now());
        let (status, body) = get(&h.app, "/health").await;
        assert_eq!((status, body["store"].as_str()), (StatusCode::OK, Some("starting")));
        let running = crate::store::StoreStats { stored_fills: 7, lag: 2, writer_running: true, ..Default::default() };
        state::write(&h.replica).store = Some(running);
        let (status, body) = get(&h.app, "/health").await;
        assert_eq!((status, body["store"].as_str()), (StatusCode::OK, Some("ok")));
        let (_, stats) = get(&h.app, "/stats").await;
        assert_eq!((stats["store"]["stored_fills"].as_u64(), stats["store"]["lag"].as_u64()), (Some(7), Some(2)));
        state::write(&h.replica).store = Some(crate::store::StoreStats { writer_running: false, ..running });
        let (status, body) = get(&h.app, "/health").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!((body["store"].as_str(), body["ready"].as_bool()), (Some("stopped"), Some(false)));
        state::write(&h.replica).store_path = None;
        let (status, body) = get(&h.app, "/health").await;
        assert_eq!((status, body["store"].as_str()), (StatusCode::OK, Some("disabled")));
    }

    #[tokio::test]
    async fn stats_shape() {
        let h = acking();
        {
            let mut r = state::write(&h.replica);
            let now = Instant::now();
            r.apply(&fixtures::stats(1234, 0), now);
            r.apply(&fixtures::order(1), now);
            r.apply(
                &fixtures::fill(
                    1,
                    100,
                    hft_shared::Qty::from_raw(1_666_000),
                    -5_000_000_000_000_000,
                    1_250_000_000_000_000,
                ),
                now,
            );
            r.apply(&fixtures::reject(RejectReason::Halted, 2), now);
        }
        let (status, body) = get(&h.app, "/stats").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["frames"], 1234);
        assert_eq!(
            (body["orders"].as_u64(), body["fills"].as_u64(), body["rejects"].as_u64()),
            (Some(1), Some(1), Some(3))
        );
        assert_eq!(body["rejects_by_reason"]["halted"], 3);
        assert_eq!(body["rejects_by_reason"]["max_open_orders"], 0);
        assert_eq!(body["position"], serde_json::json!({"BTCUSDT": "0.01666"}));
        assert_eq!(
            body["pnl"],
            serde_json::json!({"realized": "-0.5", "unrealized": "0", "fees": "0.125", "total": "-0.5"})
        );
        assert_eq!(body["ring_drops"], serde_json::json!({"telemetry_dropped": 0, "audit_parked": 0}));
        for key in ["mode", "uptime_s", "halted", "backpressure", "decode_errors", "signals", "book_gaps"] {
            assert!(body.get(key).is_some(), "missing {key}");
        }
        assert_eq!(body["kill_switch"], Value::Null);
        let reasons = body["rejects_by_reason"].as_object().expect("object");
        assert_eq!(reasons.len(), RejectReason::COUNT);
    }

    #[tokio::test]
    async fn latency_lists_every_stage_in_pipeline_order() {
        let h = acking();
        let pct = Percentiles { count: 9, p50: 110, p90: 130, p99: 150, p999: 200, max: 900 };
        state::write(&h.replica)
            .apply(&Event::Latency(LatencySnapshot { stage: Stage::TickToOrder, pct, ts_ns: 1 }), Instant::now());
        let (status, body) = get(&h.app, "/latency").await;
        assert_eq!(status, StatusCode::OK);
        let keys: Vec<&str> = body.as_object().expect("object").keys().map(String::as_str).collect();
        let mut want: Vec<&str> = Stage::ALL.iter().map(|s| s.name()).collect();
        want.sort_unstable(); // serde_json::Value sorts keys; the wire order is pipeline order
        assert_eq!(keys, want);
        assert_eq!(
            body["tick_to_order"],
            serde_json::json!({"count": 9, "p50": 110, "p90": 130, "p99": 150, "p99.9": 200, "max": 900})
        );
        assert_eq!(body["decode"]["count"], 0);
    }

    async fn put_weight(
        app: &Router,
        name: &str,
        auth: Option<&str>,
        ct: Option<&str>,
        body: &str,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(Method::PUT).uri(format!("/strategies/{name}/weight"));
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        if let Some(ct) = ct {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let req = req.body(Body::from(body.to_string())).expect("request");
        let res = app.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let ct = res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.expect("body");
        assert!(ct.starts_with("application/json"), "{status}: content-type {ct:?}");
        (status, serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {bytes:?}")))
    }

    /// Proves that no refused request reached the engine: the bridge numbers commands from 1, so
    /// the next accepted command must be acknowledged as seq 1 (and the fake engine's orders
    /// before each ack must not have appeared).
    async fn assert_no_command_was_sent(h: &Harness) {
        assert_eq!(state::read(&h.replica).orders, 0, "an ack's orders arrived");
        let (status, body) = call(&h.app, Method::POST, "/trading/halt", AUTH, Vec::new()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(state::read(&h.replica).last_ack.map(|a| a.seq), Some(1), "an earlier command was sent");
    }

    fn risk_kinds(h: &Harness) -> Vec<RiskEventKind> {
        state::read(&h.replica).recent_risk.iter().map(|e| e.kind).collect()
    }

    #[tokio::test]
    async fn flatten_replies_with_the_acked_state() {
        let h = acking();
        let (status, body) = call(&h.app, Method::POST, "/trading/flatten", AUTH, Vec::new()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!((body["ok"].as_bool(), body["outcome"].as_str()), (Some(true), Some("applied")), "{body}");
        assert_eq!(body["state"]["kill_switch"], Value::Null);
        assert_eq!(risk_kinds(&h), [RiskEventKind::FlattenRequested], "the engine's event is in the replica");
    }

    #[tokio::test]
    async fn rearm_returns_the_engines_outcome() {
        let h = acking();
        let (status, body) = call(&h.app, Method::POST, "/risk/rearm", AUTH, Vec::new()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["outcome"], "unchanged", "not tripped: {body}");

        let h = harness(Script::Tripped(KillCause::Drawdown), Duration::from_secs(2));
        let (status, body) = call(&h.app, Method::POST, "/trading/halt", AUTH, Vec::new()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["state"]["kill_switch"], "drawdown", "{body}");
        let (_, health) = get(&h.app, "/health").await;
        assert_eq!(health["kill_switch"], "drawdown");
        let (status, body) = call(&h.app, Method::POST, "/risk/rearm", AUTH, Vec::new()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!((body["outcome"].as_str(), body["halted"].as_bool()), (Some("applied"), Some(true)), "{body}");
        assert_eq!(body["state"]["kill_switch"], Value::Null, "{body}");
        assert_eq!(risk_kinds(&h), [RiskEventKind::Rearmed]);
        let (_, risk) = get(&h.app, "/risk").await;
        assert_eq!(risk["kill_switch"], Value::Null);
        let (_, body) = call(&h.app, Method::POST, "/risk/rearm", AUTH, Vec::new()).await;
        assert_eq!(body["outcome"], "unchanged", "{body}");
    }

    #[tokio::test]
    async fn activate_and_deactivate_reply_with_the_acked_strategies() {
        let h = acking();
        let (status, body) = call(&h.app, Method::POST, "/strategies/breakout/activate", AUTH, Vec::new()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["outcome"], "applied");
        assert_eq!(body["state"]["active_strategies"], serde_json::json!(["momentum", "breakout"]));
        let (_, body) = call(&h.app, Method::POST, "/strategies/breakout/activate", AUTH, Vec::new()).await;
        assert_eq!(body["outcome"], "unchanged", "{body}");
        let (status, body) = call(&h.app, Method::POST, "/strategies/momentum/deactivate", AUTH, Vec::new()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!((body["outcome"].as_str(), body["ok"].as_bool()), (Some("applied"), Some(true)));
        assert_eq!(body["state"]["active_strategies"], serde_json::json!(["breakout"]));
        assert_eq!(
            risk_kinds(&h),
            [
                RiskEventKind::StrategyActivated(StrategyKind::Breakout),
                RiskEventKind::StrategyDeactivated(StrategyKind::Momentum)
            ]
        );
        let (_, list) = get(&h.app, "/strategies").await;
        assert_eq!(
            (list["momentum"]["active"].as_bool(), list["breakout"]["active"].as_bool()),
            (Some(false), Some(true))
        );
    }

    #[tokio::test]
    async fn set_weight_is_sent_and_shown() {
        let h = acking();
        let (status, body) =
            put_weight(&h.app, "meanreversion", AUTH, Some("application/json"), r#"{"weight": 2.5}"#).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["outcome"], "applied");
        assert_eq!(
            risk_kinds(&h),
            [RiskEventKind::WeightChanged(StrategyKind::MeanReversion)],
            "the engine got the command"
        );
        let (_, list) = get(&h.app, "/strategies").await;
        assert_eq!(list["meanreversion"]["weight"], 2.5, "{list}");
        // The body is parsed whatever its content type; integers are numbers too.
        let (status, body) = put_weight(&h.app, "marketmaking", AUTH, None, r#"{"weight": 0}"#).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (_, list) = get(&h.app, "/strategies").await;
        assert_eq!(list["marketmaking"]["weight"], 0.0, "{list}");
    }

    #[tokio::test]
    async fn out_of_range_weight_is_the_engines_422() {
        let h = acking();
        for w in ["10.5", "-1", "1e300"] {
            let (status, body) = put_weight(&h.app, "momentum", AUTH, None, &format!(r#"{{"weight": {w}}}"#)).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{w}: {body}");
            assert_eq!(body["code"], "invalid_value", "{w}");
            assert!(body["message"].is_string());
        }
        assert_eq!(state::read(&h.replica).last_ack.map(|a| a.seq), Some(3), "the engine judged each one");
        let (_, list) = get(&h.app, "/strategies").await;
        let params = serde_json::to_value(&h.cfg.strategies).expect("config as JSON");
        assert_eq!(list["momentum"]["weight"], params["momentum"]["weight"], "unchanged: {list}");
    }

    #[tokio::test]
    async fn malformed_weight_body_is_400_and_sends_nothing() {
        let h = acking();
        let bodies = [
            "",
            "{",
            "weight=1",
            "{}",
            "null",
            "[1.0]",
            "1.0",
            r#"{"weight": "1.0"}"#,
            r#"{"weight": null}"#,
            r#"{"weight": true}"#,
            r#"{"Weight": 1.0}"#,
            r#"{"weight": 1.0, "extra": 1}"#,
            r#"{"weight": 1.0} trailing"#,
            "{\"weight\": 1e999}",
        ];
        for b in bodies {
            for ct in [Some("application/json"), Some("text/plain"), None] {
                let (status, body) = put_weight(&h.app, "momentum", AUTH, ct, b).await;
                assert_eq!(status, StatusCode::BAD_REQUEST, "{b:?} ({ct:?}): {body}");
                assert_eq!(body["code"], "bad_request", "{b:?}");
                assert!(body["message"].as_str().is_some_and(|m| m.contains("weight")), "{body}");
            }
        }
        assert_no_command_was_sent(&h).await;
    }

    #[tokio::test]
    async fn unknown_strategy_is_404_and_sends_nothing() {
        let h = acking();
        for name in ["nope", "Momentum", "mean_reversion", "%20momentum"] {
            for uri in [format!("/strategies/{name}/activate"), format!("/strategies/{name}/deactivate")] {
                let (status, body) = call(&h.app, Method::POST, &uri, AUTH, Vec::new()).await;
                assert_eq!(status, StatusCode::NOT_FOUND, "{uri}: {body}");
                assert_eq!(body["code"], "unknown_strategy", "{uri}");
                assert!(body["message"].as_str().is_some_and(|m| m.contains("marketmaking")), "{body}");
            }
            let (status, body) = put_weight(&h.app, name, AUTH, None, r#"{"weight": 1.0}"#).await;
            assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("unknown_strategy")), "{body}");
        }
        assert_no_command_was_sent(&h).await;
    }

    #[tokio::test]
    async fn new_commands_without_a_valid_token_are_401_and_send_nothing() {
        let h = acking();
        let posts = [
            "/trading/flatten",
            "/risk/rearm",
            "/strategies/momentum/activate",
            "/strategies/momentum/deactivate",
            "/strategies/nope/activate",
        ];
        for auth in [None, Some("Bearer wrong"), Some("s3cret-token")] {
            for uri in posts {
                let (status, body) = call(&h.app, Method::POST, uri, auth, Vec::new()).await;
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri} {auth:?}: {body}");
                assert_eq!(body["code"], "unauthorized");
            }
            for (name, b) in [("momentum", r#"{"weight": 1.0}"#), ("momentum", "{"), ("nope", r#"{"weight": 1.0}"#)] {
                let (status, body) = put_weight(&h.app, name, auth, None, b).await;
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{name} {b:?} {auth:?}: {body}");
                assert_eq!(body["code"], "unauthorized");
            }
        }
        assert_no_command_was_sent(&h).await;
    }

    #[tokio::test]
    async fn strategy_routes_have_their_methods() {
        let h = acking();
        let (status, body) = get(&h.app, "/strategies/momentum/weight").await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed")));
        let (status, _) = call(&h.app, Method::POST, "/strategies/momentum/weight", AUTH, Vec::new()).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        let (status, _) = call(&h.app, Method::POST, "/strategies", AUTH, Vec::new()).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        let (status, _) = get(&h.app, "/risk/rearm").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert!(state::read(&h.replica).last_ack.is_none());
    }

    #[tokio::test]
    async fn risk_shows_limits_usage_and_refusals() {
        let h = acking();
        let (status, body) = get(&h.app, "/risk").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let c = &h.cfg;
        let amount = |v: f64| Amount::from_f64(v).expect("amount").to_string();
        let limits = &body["limits"];
        assert_eq!(limits["max_position"], amount(c.risk.max_position));
        assert_eq!(limits["max_total_position"], amount(c.risk.max_total_position));
        assert_eq!(limits["max_position_qty"], Qty::from_f64(c.risk.max_position_qty).expect("qty").to_string());
        assert_eq!(limits["max_open_orders"], c.risk.max_open_orders);
        for (key, v) in [
            ("risk_per_trade", c.risk.risk_per_trade),
            ("stop_distance", c.risk.stop_distance),
            ("daily_loss", c.risk.daily_loss),
            ("max_drawdown", c.risk.max_drawdown),
            ("price_band", c.risk.price_band),
        ] {
            assert_eq!(limits[key].as_f64(), Some(v), "{key}");
        }
        assert_eq!(
            (limits["orders_per_10s"].as_u64(), limits["orders_per_day"].as_u64()),
            (Some(u64::from(c.risk.orders_per_10s)), Some(u64::from(c.risk.orders_per_day)))
        );
        assert_eq!(
            limits["capital"],
            serde_json::json!({"total": amount(c.capital.total), "reserve": amount(c.capital.reserve),
                "deployable": amount(c.capital.total - c.capital.reserve)})
        );
        // Nothing reported yet.
        assert_eq!((body["kill_switch"].clone(), body["halted"].as_bool()), (Value::Null, Some(false)));
        for key in ["equity", "peak", "day_start", "daily_pnl", "drawdown", "orders_10s", "orders_today"] {
            assert_eq!(body["usage"][key], Value::Null, "{key}");
        }
        assert_eq!(body["usage"]["position_notional"], serde_json::json!({"BTCUSDT": "0"}));
        let reasons = body["rejects_by_reason"].as_object().expect("object");
        assert_eq!(reasons.len(), RejectReason::COUNT);
        assert!(RejectReason::ALL.iter().all(|k| reasons[k.code()] == 0));

        {
            let mut r = state::write(&h.replica);
            let now = Instant::now();
            r.apply(&fixtures::risk_state(9_500, 10_000, 9_800, None), now);
            r.apply(&fixtures::reject(RejectReason::RiskPerTrade, 4), now);
            r.apply(&fixtures::reject(RejectReason::RateLimit, 0), now);
            r.apply(
                &Event::Position(PositionSnapshot {
                    symbol: SymbolId(0),
                    qty: Qty::from_raw(-1_000_000), // -0.01
                    avg_px: Px::from_int(60_000),
                    mark: Px::from_int(60_500),
                    realized: Amount::ZERO,
                    unrealized: Amount::ZERO,
                    fees: Amount::ZERO,
                    ts_ns: 1,
                }),
                now,
            );
        }
        let (_, body) = get(&h.app, "/risk").await;
        let u = &body["usage"];
        assert_eq!(
            (u["equity"].as_str(), u["peak"].as_str(), u["day_start"].as_str(), u["daily_pnl"].as_str()),
            (Some("9500"), Some("10000"), Some("9800"), Some("-300")),
            "{body}"
        );
        assert!(u["drawdown"].as_f64().is_some_and(|d| (d - 0.05).abs() < 1e-12), "{u}");
        assert_eq!(
            (u["orders_10s"].as_u64(), u["orders_today"].as_u64(), u["ts_ns"].as_u64()),
            (Some(3), Some(42), Some(77))
        );
        assert_eq!(u["position_notional"], serde_json::json!({"BTCUSDT": "605"}));
        assert_eq!(u["total_position_notional"], "605");
        assert_eq!(body["rejects_by_reason"]["risk_per_trade"], 5);
        assert_eq!(body["rejects_by_reason"]["rate_limit"], 1);
        assert_eq!(body["rejects"], 6);
        assert_eq!(body["usage"]["open_orders"], 0);
        assert_eq!(body["kill_switch"], Value::Null);
    }

    #[tokio::test]
    async fn risk_shows_the_kill_switch_after_a_tripped_risk_state() {
        let h = acking();
        state::write(&h.replica)
            .apply(&fixtures::risk_state(9_000, 10_000, 10_000, Some(KillCause::DailyLoss)), Instant::now());
        let (status, body) = get(&h.app, "/risk").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["kill_switch"], "daily_loss", "{body}");
        assert_eq!(body["usage"]["daily_pnl"], "-1000");
        let (_, health) = get(&h.app, "/health").await;
        assert_eq!(health["kill_switch"], "daily_loss");
        let (_, stats) = get(&h.app, "/stats").await;
        assert_eq!(stats["kill_switch"], "daily_loss");
    }

    #[tokio::test]
    async fn strategies_list_every_kind_with_config_and_reports() {
        let h = acking();
        state::write(&h.replica).apply(
            &Event::Strategy(StrategySnapshot {
                kind: StrategyKind::Momentum,
                active: true,
                weight: 1.5,
                signal: -0.25,
                signals: 12,
                orders: 3,
                realized: hft_shared::Amount::from_fixed8(-150_000_000),
                ts_ns: 99,
            }),
            Instant::now(),
        );
        let (status, body) = get(&h.app, "/strategies").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let names: Vec<&str> = body.as_object().expect("object").keys().map(String::as_str).collect();
        let mut want: Vec<&str> = StrategyKind::ALL.iter().map(|k| k.name()).collect();
        want.sort_unstable(); // serde_json::Value sorts keys; the wire order is index order
        assert_eq!(names, want);
        let params = serde_json::to_value(&h.cfg.strategies).expect("config as JSON");
        for k in StrategyKind::ALL {
            let s = &body[k.name()];
            assert_eq!(s["name"], k.name());
            assert_eq!(s["params"], params[k.name()], "{k}");
            assert!(s["params"].is_object(), "{k}: {s}");
        }
        let m = &body["momentum"];
        assert_eq!(
            (m["active"].as_bool(), m["weight"].as_f64(), m["signal"].as_f64()),
            (Some(true), Some(1.5), Some(-0.25)),
            "{m}"
        );
        assert_eq!((m["signals"].as_u64(), m["orders"].as_u64(), m["ts_ns"].as_u64()), (Some(12), Some(3), Some(99)));
        assert_eq!(m["realized"], "-1.5", "attributed PnL as an exact decimal");
        let b = &body["breakout"];
        assert_eq!(b["active"], false, "only momentum is active in the fixtures");
        assert_eq!(
            (b["signal"].clone(), b["ts_ns"].clone(), b["signals"].as_u64()),
            (Value::Null, Value::Null, Some(0))
        );
        assert_eq!(b["weight"], params["breakout"]["weight"], "the configured weight until reported");
    }

    // ---- #6: root, positions, orders, fills, latency reset, config, metrics, audit, ws ----

    fn two_symbols(script: Script) -> Harness {
        let cfg = Config::from_toml_str("symbols = ['BTCUSDT', 'ETHUSDT']\n", &|_| None).expect("config");
        harness_with(cfg, script, Duration::from_secs(2))
    }

    /// Fixture order `id` on symbol `sym`, emitted at unix time `ts_ms`.
    fn order_on(id: u64, sym: u16, ts_ms: u64) -> Event {
        let Event::Order(mut o) = fixtures::order(id) else { unreachable!("an order") };
        o.symbol = SymbolId(sym);
        o.ts_ns = ts_ms * 1_000_000 + 7;
        Event::Order(o)
    }

    fn fill_on(id: u64, sym: u16, ts_ms: u64, last: bool) -> Event {
        let Event::Fill(mut f) = fixtures::fill(
            id,
            ts_ms * 1_000_000,
            Qty::from_raw(1_000_000),
            -25_000_000_000_000_000,
            6_000_000_000_000_000,
        ) else {
            unreachable!("a fill")
        };
        f.symbol = SymbolId(sym);
        f.last = last;
        Event::Fill(f)
    }

    fn apply(h: &Harness, events: &[Event]) {
        let mut r = state::write(&h.replica);
        let now = Instant::now();
        for ev in events {
            r.apply(ev, now);
        }
    }

    fn ids(body: &Value, list: &str, key: &str) -> Vec<u64> {
        body[list]
            .as_array()
            .unwrap_or_else(|| panic!("no {list}: {body}"))
            .iter()
            .map(|o| o[key].as_u64().expect("id"))
            .collect()
    }

    #[tokio::test]
    async fn root_names_the_service() {
        let h = acking();
        let (status, body) = get(&h.app, "/").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!((body["name"].as_str(), body["mode"].as_str()), (Some("hft"), Some("paper")));
        assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
        assert!(body["uptime_s"].as_f64().is_some_and(|u| (0.0..60.0).contains(&u)), "{body}");
        assert!(h.audit.lock().expect("log").is_empty(), "reads are not audited");
    }

    #[tokio::test]
    async fn health_reports_the_venue_and_each_books_validity() {
        let h = two_symbols(Script::Ack { orders_before_ack: 0 });
        let (_, body) = get(&h.app, "/health").await;
        assert_eq!(body["venue"], "simulated");
        assert_eq!(body["book_valid"], serde_json::json!({"BTCUSDT": null, "ETHUSDT": null}));
        apply(
            &h,
            &[
                fixtures::heartbeat(1, false),
                Event::Feed(FeedEvent { symbol: SymbolId(0), state: FeedState::Live, ts_ns: 1 }),
                Event::Feed(FeedEvent { symbol: SymbolId(1), state: FeedState::Resyncing, ts_ns: 1 }),
            ],
        );
        let (status, body) = get(&h.app, "/health").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["book_valid"], serde_json::json!({"BTCUSDT": true, "ETHUSDT": false}));
        assert_eq!(body["feeds"], serde_json::json!({"BTCUSDT": "live", "ETHUSDT": "resyncing"}));
        assert_eq!(body["feed"], "resyncing");

        let live = Config::from_toml_str("mode = 'live'\n", &|_| None).expect("config");
        let h = harness_with(live, Script::Ack { orders_before_ack: 0 }, Duration::from_secs(2));
        let (_, body) = get(&h.app, "/health").await;
        assert_eq!((body["mode"].as_str(), body["venue"].as_str()), (Some("live"), Some("unknown")));
    }

    #[tokio::test]
    async fn positions_list_every_symbol_with_totals() {
        let h = two_symbols(Script::Ack { orders_before_ack: 0 });
        let (status, body) = get(&h.app, "/positions").await;
        assert_eq!(status, StatusCode::OK);
        let flat = serde_json::json!({"symbol": "ETHUSDT", "qty": "0", "avg_px": "0", "mark": "0", "realized": "0",
            "unrealized": "0", "fees": "0", "notional": "0", "ts_ns": null});
        assert_eq!(body["positions"][1], flat);
        let amt = |v: i64| Amount::from_fixed8(v);
        apply(
            &h,
            &[Event::Position(PositionSnapshot {
                symbol: SymbolId(0),
                qty: Qty::from_raw(-1_000_000),
                avg_px: Px::from_int(60_000),
                mark: Px::from_int(60_500),
                realized: amt(-520_000_000),
                unrealized: amt(-500_000_000),
                fees: amt(120_000_000),
                ts_ns: 42,
            })],
        );
        let (_, body) = get(&h.app, "/positions").await;
        assert_eq!(
            body["positions"][0],
            serde_json::json!({"symbol": "BTCUSDT", "qty": "-0.01", "avg_px": "60000", "mark": "60500",
                "realized": "-5.2", "unrealized": "-5", "fees": "1.2", "notional": "605", "ts_ns": 42})
        );
        assert_eq!(body["positions"][1], flat);
        assert_eq!(
            body["totals"],
            serde_json::json!({"realized": "-5.2", "unrealized": "-5", "fees": "1.2", "pnl": "-10.2", "notional": "605"})
        );
        // A fill moves qty, realized and fees at once.
        apply(&h, &[fill_on(9, 0, 1, true)]);
        let (_, body) = get(&h.app, "/positions").await;
        assert_eq!(
            (body["positions"][0]["qty"].as_str(), body["positions"][0]["fees"].as_str()),
            (Some("0.01"), Some("1.8"))
        );
    }

    /// Six orders, odd ids on BTCUSDT and even on ETHUSDT, in every state.
    fn six_orders(h: &Harness) {
        use OrderStatus::*;
        let mut evs: Vec<Event> =
            (1..=6).map(|id| order_on(id, ((id + 1) % 2) as u16, 1_700_000_000_000 + id)).collect();
        evs.extend([
            fixtures::update(1, New, 0, 0, 1),
            fixtures::update(1, Filled, 1_000_000, 0, 2),
            fill_on(1, 0, 1_700_000_000_100, true),
            fixtures::update(2, Canceled, 0, 0, 3),
            fixtures::update(3, New, 0, 0, 4),
            fixtures::update(4, PartiallyFilled, 400_000, 0, 5),
            fill_on(4, 1, 1_700_000_000_200, false),
            fixtures::update(5, Rejected, 0, -2010, 6),
        ]);
        apply(h, &evs);
    }

    #[tokio::test]
    async fn orders_are_tracked_and_served_newest_first_filtered_and_paged() {
        let h = two_symbols(Script::Ack { orders_before_ack: 0 });
        six_orders(&h);
        let (status, body) = get(&h.app, "/orders").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            (body["total"].as_u64(), body["offset"].as_u64(), body["limit"].as_u64()),
            (Some(6), Some(0), Some(100))
        );
        assert_eq!(ids(&body, "orders", "id"), [6, 5, 4, 3, 2, 1]);
        assert_eq!(
            body["orders"][5],
            serde_json::json!({"id": 1, "symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "tif": "IOC",
                "price": "60000", "qty": "0.01", "filled": "0.01", "status": "FILLED", "strategy": "momentum",
                "reduce_only": false, "fees": "0.6", "ts": 1_700_000_000_001u64, "updated_ts": 1_700_000_000_100u64,
                "tick_to_order_ns": 150, "venue_code": 0})
        );
        let by_id =
            |id: u64| body["orders"].as_array().expect("orders").iter().find(|o| o["id"] == id).cloned().expect("row");
        assert_eq!(
            (by_id(4)["status"].as_str(), by_id(4)["filled"].as_str()),
            (Some("PARTIALLY_FILLED"), Some("0.004"))
        );
        assert_eq!((by_id(5)["status"].as_str(), by_id(5)["venue_code"].as_i64()), (Some("REJECTED"), Some(-2010)));
        assert_eq!((by_id(6)["status"].as_str(), by_id(6)["symbol"].as_str()), (Some("PENDING_NEW"), Some("ETHUSDT")));

        for (query, want, total) in [
            ("status=open", vec![6, 4, 3], 3),
            ("status=OPEN", vec![6, 4, 3], 3),
            ("status=filled", vec![1], 1),
            ("status=Canceled", vec![2], 1),
            ("status=PENDING_NEW", vec![6], 1),
            ("status=EXPIRED", vec![], 0),
            ("symbol=ethusdt", vec![6, 4, 2], 3),
            ("status=open&symbol=BTCUSDT", vec![3], 1),
            ("limit=2&offset=1", vec![5, 4], 6),
            ("offset=5", vec![1], 6),
            ("offset=6", vec![], 6),
            ("limit=1000&offset=18446744073709551615", vec![], 6),
        ] {
            let (status, body) = get(&h.app, &format!("/orders?{query}")).await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            assert_eq!(ids(&body, "orders", "id"), want, "{query}");
            assert_eq!(body["total"].as_u64(), Some(total), "{query}");
        }
        let (_, body) = get(&h.app, "/orders?limit=2&offset=1").await;
        assert_eq!((body["limit"].as_u64(), body["offset"].as_u64()), (Some(2), Some(1)));
        let (_, risk) = get(&h.app, "/risk").await;
        assert_eq!(risk["usage"]["open_orders"], 3, "pending, acknowledged and partially filled: {risk}");
    }

    #[tokio::test]
    async fn fills_are_served_newest_first_filtered_and_paged() {
        let h = two_symbols(Script::Ack { orders_before_ack: 0 });
        six_orders(&h);
        let (status, body) = get(&h.app, "/fills").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!((body["total"].as_u64(), body["limit"].as_u64()), (Some(2), Some(100)));
        assert_eq!(ids(&body, "fills", "order_id"), [4, 1]);
        assert_eq!(
            body["fills"][1],
            serde_json::json!({"order_id": 1, "symbol": "BTCUSDT", "side": "BUY", "liquidity": "taker",
                "px": "60000", "qty": "0.01", "fee": "0.6", "base_fee": "0", "position": "0.01", "realized": "-2.5",
                "last": true, "ts": 1_700_000_000_100u64})
        );
        for (query, want, total) in
            [("symbol=BTCUSDT", vec![1], 1), ("limit=1", vec![4], 2), ("limit=1&offset=1", vec![1], 2)]
        {
            let (status, body) = get(&h.app, &format!("/fills?{query}")).await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            assert_eq!((ids(&body, "fills", "order_id"), body["total"].as_u64()), (want, Some(total)), "{query}");
        }
    }

    #[tokio::test]
    async fn orders_and_fills_refuse_bad_queries_with_json() {
        let h = two_symbols(Script::Ack { orders_before_ack: 0 });
        six_orders(&h);
        for path in ["/orders", "/fills"] {
            for (query, code) in [
                ("limit=0", "bad_request"),
                ("limit=1001", "bad_request"),
                ("limit=abc", "bad_request"),
                ("limit=", "bad_request"),
                ("offset=-1", "bad_request"),
                ("offset=1e3", "bad_request"),
                ("limit=5&limit=6", "bad_request"),
                ("foo=1", "bad_request"),
                ("symbol=DOGEUSDT", "unknown_symbol"),
            ] {
                let (status, body) = get(&h.app, &format!("{path}?{query}")).await;
                let want = if code == "unknown_symbol" { StatusCode::NOT_FOUND } else { StatusCode::BAD_REQUEST };
                assert_eq!((status, body["code"].as_str()), (want, Some(code)), "{path}?{query}: {body}");
                assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
            }
        }
        for query in ["status=nope", "status=", "status=NEW,FILLED"] {
            let (status, body) = get(&h.app, &format!("/orders?{query}")).await;
            assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")), "{query}");
        }
        let (status, _) = get(&h.app, "/fills?status=NEW").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "fills have no status");
    }

    #[tokio::test]
    async fn latency_reset_needs_the_token_then_clears_the_view() {
        let h = acking();
        let pct = Percentiles { count: 9, p50: 110, p90: 130, p99: 150, p999: 200, max: 900 };
        let snap = |stage, ts_ns| Event::Latency(LatencySnapshot { stage, pct, ts_ns });
        // The fake engine acks command `seq` at engine time `seq` ns: a snapshot at 1 ns was taken
        // before the first reset, one at 1 s after it.
        apply(&h, &[snap(Stage::Decode, 1), snap(Stage::TickToOrder, 1_000_000_000)]);
        for (method, uri, auth) in [
            (Method::POST, "/latency/reset", None),
            (Method::DELETE, "/latency", None),
            (Method::POST, "/latency/reset", Some("Bearer nope")),
        ] {
            let (status, body) = call(&h.app, method, uri, auth, Vec::new()).await;
            assert_eq!((status, body["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")), "{uri}");
        }
        assert_eq!(state::read(&h.replica).last_ack, None, "nothing was sent");
        let (_, lat) = get(&h.app, "/latency").await;
        assert_eq!(lat["decode"]["count"], 9);

        let (status, body) = call(&h.app, Method::POST, "/latency/reset", AUTH, Vec::new()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!((body["ok"].as_bool(), body["outcome"].as_str()), (Some(true), Some("applied")));
        let (_, lat) = get(&h.app, "/latency").await;
        assert_eq!(lat["decode"], serde_json::json!({"count": 0, "p50": 0, "p90": 0, "p99": 0, "p99.9": 0, "max": 0}));
        assert_eq!(lat["tick_to_order"]["count"], 9, "taken after the reset: kept");

        apply(&h, &[snap(Stage::Decode, 2)]);
        let (status, body) = call(&h.app, Method::DELETE, "/latency", AUTH, Vec::new()).await;
        assert_eq!((status, body["outcome"].as_str()), (StatusCode::OK, Some("applied")), "{body}");
        let (_, lat) = get(&h.app, "/latency").await;
        assert_eq!(lat["decode"]["count"], 0);
        assert_eq!(state::read(&h.replica).last_ack.map(|a| a.seq), Some(2));

        let (status, _) = get(&h.app, "/latency/reset").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        let (status, _) = call(&h.app, Method::POST, "/latency", AUTH, Vec::new()).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    }

    #[tokio::test]
    async fn latency_reset_without_an_ack_is_503_and_keeps_the_view() {
        let h = harness(Script::Mute, Duration::from_millis(100));
        let pct = Percentiles { count: 9, p50: 110, p90: 130, p99: 150, p999: 200, max: 900 };
        apply(&h, &[Event::Latency(LatencySnapshot { stage: Stage::Decode, pct, ts_ns: 1 })]);
        let (status, body) = call(&h.app, Method::DELETE, "/latency", AUTH, Vec::new()).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("engine_unavailable")));
        let (_, lat) = get(&h.app, "/latency").await;
        assert_eq!(lat["decode"]["count"], 9);
    }

    #[tokio::test]
    async fn config_is_served_with_every_secret_redacted() {
        let env = |k: &str| match k {
            "EXCHANGE_API_KEY" => Some("KEY-abc123".to_string()),
            "EXCHANGE_API_SECRET" => Some("SECRET-xyz789".to_string()),
            _ => None,
        };
        // The token also hides in a config value: it is scrubbed there too.
        let cfg = Config::from_toml_str(&format!("[feed]\nrecord = '/tmp/{TOKEN}.gz'\n"), &env).expect("config");
        let h = harness_with(cfg, Script::Ack { orders_before_ack: 0 }, Duration::from_secs(2));
        let (status, body) = get(&h.app, "/config").await;
        assert_eq!(status, StatusCode::OK);
        let text = body.to_string();
        for secret in [TOKEN, "KEY-abc123", "SECRET-xyz789"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert_eq!(body["api"]["token"], "***");
        assert_eq!(body["secrets"], serde_json::json!({"exchange_api_key": "***", "exchange_api_secret": "***"}));
        assert_eq!(body["feed"]["record"], "***");
        assert_eq!((body["mode"].as_str(), body["symbols"].clone()), (Some("paper"), serde_json::json!(["BTCUSDT"])));
        assert_eq!(body["risk"]["max_open_orders"], h.cfg.risk.max_open_orders);
        assert_eq!(body["api"]["host"], h.cfg.api.host);

        let h = acking();
        let (_, body) = get(&h.app, "/config").await;
        assert_eq!(body["secrets"], serde_json::json!({"exchange_api_key": null, "exchange_api_secret": null}));
        assert_eq!(body["feed"]["record"], "");
    }

    async fn raw_get(app: &Router, uri: &str) -> (StatusCode, String, String) {
        let req = Request::builder().uri(uri).body(Body::empty()).expect("request");
        let res = app.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let ct = res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.expect("body");
        (status, ct, String::from_utf8(bytes.to_vec()).expect("utf-8"))
    }

    #[tokio::test]
    async fn metrics_are_valid_exposition_with_the_replicas_values() {
        let h = two_symbols(Script::Ack { orders_before_ack: 0 });
        six_orders(&h);
        let pct = Percentiles { count: 9, p50: 110, p90: 130, p99: 150, p999: 200, max: 900 };
        apply(
            &h,
            &[
                fixtures::heartbeat(1, true),
                fixtures::stats(1234, 0),
                fixtures::reject(RejectReason::Halted, 2),
                fixtures::risk_state(9_500, 10_000, 9_800, Some(KillCause::Drawdown)),
                Event::Latency(LatencySnapshot { stage: Stage::TickToOrder, pct, ts_ns: 1 }),
                Event::Feed(FeedEvent { symbol: SymbolId(1), state: FeedState::Live, ts_ns: 1 }),
            ],
        );
        let (status, ct, text) = raw_get(&h.app, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ct, "text/plain; version=0.0.4");
        let m = crate::api::metrics::check_exposition(&text);
        let v = |k: &str| *m.get(k).unwrap_or_else(|| panic!("no {k} in\n{text}"));
        assert_eq!(v("hft_frames_total{}"), 1234.0);
        assert_eq!(v("hft_orders_total{}"), 6.0);
        assert_eq!(v("hft_fills_total{}"), 2.0);
        assert_eq!(v(r#"hft_rejects_total{reason="halted"}"#), 3.0);
        assert_eq!(v(r#"hft_rejects_total{reason="rate_limit"}"#), 0.0);
        assert_eq!(v("hft_halted{}"), 1.0);
        assert_eq!(v("hft_kill_switch_tripped{}"), 1.0);
        assert_eq!(v("hft_equity{}"), 9500.0);
        assert_eq!(v("hft_daily_pnl{}"), -300.0);
        assert!((v("hft_drawdown_ratio{}") - 0.05).abs() < 1e-12);
        assert_eq!(v(r#"hft_position{symbol="BTCUSDT"}"#), 0.01);
        assert_eq!(v(r#"hft_position{symbol="ETHUSDT"}"#), 0.01);
        assert_eq!(v(r#"hft_realized_pnl{symbol="BTCUSDT"}"#), -2.5);
        assert_eq!(v(r#"hft_fees{symbol="ETHUSDT"}"#), 0.6);
        assert_eq!(v("hft_open_orders{}"), 3.0);
        assert_eq!(v(r#"hft_latency_ns{stage="tick_to_order",quantile="0.99"}"#), 150.0);
        assert_eq!(v(r#"hft_latency_ns{stage="tick_to_order",quantile="0.999"}"#), 200.0);
        assert_eq!(v(r#"hft_latency_ns_count{stage="tick_to_order"}"#), 9.0);
        assert_eq!(v(r#"hft_latency_ns_count{stage="decode"}"#), 0.0);
        assert_eq!(v(r#"hft_latency_max_ns{stage="tick_to_order"}"#), 900.0);
        assert_eq!(v(r#"hft_feed_state{symbol="ETHUSDT",state="live"}"#), 1.0);
        assert_eq!(v(r#"hft_feed_state{symbol="ETHUSDT",state="down"}"#), 0.0);
        assert_eq!(v(r#"hft_feed_state{symbol="BTCUSDT",state="unknown"}"#), 1.0);
        assert_eq!(v(r#"hft_book_valid{symbol="ETHUSDT"}"#), 1.0);
        assert!(!m.contains_key(r#"hft_book_valid{symbol="BTCUSDT"}"#), "unknown: no sample");
        assert_eq!(v(r#"hft_strategy_active{strategy="momentum"}"#), 1.0);
        assert_eq!(v("hft_ws_clients{}"), 0.0);
        assert!(v("hft_heartbeat_age_seconds{}") < 5.0);
        assert!(m.keys().all(|k| k.starts_with("hft_")));

        // A second parser agrees and has not skipped a line.
        let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("parses");
        let lines = text.lines().filter(|l| !l.starts_with('#')).count();
        let parsed: usize = scrape
            .samples
            .iter()
            .map(|s| match &s.value {
                prometheus_parse::Value::Summary(q) => q.len(),
                _ => 1,
            })
            .sum();
        assert_eq!(parsed, lines, "prometheus-parse skipped lines");
        let find = |name: &str, label: Option<(&str, &str)>| {
            scrape
                .samples
                .iter()
                .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
                .map(|s| s.value.clone())
                .unwrap_or_else(|| panic!("{name} {label:?} not parsed"))
        };
        assert_eq!(find("hft_orders_total", None), prometheus_parse::Value::Counter(6.0));
        assert_eq!(find("hft_halted", None), prometheus_parse::Value::Gauge(1.0));
        let prometheus_parse::Value::Summary(q) = find("hft_latency_ns", Some(("stage", "tick_to_order"))) else {
            panic!("not a summary")
        };
        assert_eq!(
            q.iter().map(|q| (q.quantile, q.count)).collect::<Vec<_>>(),
            [(0.5, 110.0), (0.9, 130.0), (0.99, 150.0), (0.999, 200.0)]
        );
        assert!(scrape.docs.contains_key("hft_latency_ns"));
    }

    fn action(method: &str, endpoint: &str, status: u16, outcome: &str) -> (String, String, u16, String) {
        (method.into(), endpoint.into(), status, outcome.into())
    }

    #[tokio::test]
    async fn every_state_changing_request_is_audited_exactly_once() {
        use axum::extract::connect_info::MockConnectInfo;
        let h = acking();
        let peer: std::net::SocketAddr = ([10, 0, 0, 7], 4242).into();
        let app = h.app.clone().layer(MockConnectInfo(peer));
        let t0 = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64;
        let _ = get(&app, "/stats").await;
        let _ = get(&app, "/orders?limit=0").await;
        let _ = call(&app, Method::POST, "/trading/halt", AUTH, Vec::new()).await;
        let _ = call(&app, Method::POST, "/trading/halt", None, Vec::new()).await;
        let _ = call(&app, Method::POST, "/trading/resume", Some("Bearer wrong"), Vec::new()).await;
        let _ = put_weight(&app, "momentum", AUTH, None, "{").await;
        let _ = put_weight(&app, "momentum", AUTH, None, r#"{"weight": 11}"#).await;
        let _ = call(&app, Method::POST, "/strategies/nope/activate", AUTH, Vec::new()).await;
        let _ = call(&app, Method::POST, "/nope", AUTH, Vec::new()).await;
        let _ = call(&app, Method::DELETE, "/stats", AUTH, Vec::new()).await;
        let _ = call(&app, Method::POST, "/trading/halt", AUTH, vec![b'x'; BODY_LIMIT + 1]).await;
        let _ = call(&app, Method::DELETE, "/latency", AUTH, Vec::new()).await;
        let _ = call(&app, Method::POST, "/trading/halt", AUTH, Vec::new()).await;
        let t1 = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64;
        let log = h.audit.lock().expect("log").clone();
        let got: Vec<_> =
            log.iter().map(|a| (a.method.clone(), a.endpoint.clone(), a.status, a.outcome.clone())).collect();
        assert_eq!(
            got,
            [
                action("POST", "/trading/halt", 200, "applied"),
                action("POST", "/trading/halt", 401, "unauthorized"),
                action("POST", "/trading/resume", 401, "unauthorized"),
                action("PUT", "/strategies/momentum/weight", 400, "bad_request"),
                action("PUT", "/strategies/momentum/weight", 422, "invalid_value"),
                action("POST", "/strategies/nope/activate", 404, "unknown_strategy"),
                action("POST", "/nope", 404, "not_found"),
                action("DELETE", "/stats", 405, "method_not_allowed"),
                action("POST", "/trading/halt", 413, "payload_too_large"),
                action("DELETE", "/latency", 200, "applied"),
                action("POST", "/trading/halt", 200, "unchanged"),
            ]
        );
        for a in &log {
            assert_eq!(a.remote.as_deref(), Some("10.0.0.7:4242"));
            assert!((t0..=t1).contains(&a.at_ms), "{a:?}");
            assert!(!format!("{a:?}").contains(TOKEN), "the token is never recorded: {a:?}");
        }

        // Without connect info (as `hft run` serves today) the peer is unknown.
        let _ = call(&h.app, Method::POST, "/risk/rearm", AUTH, Vec::new()).await;
        let last = h.audit.lock().expect("log").last().cloned().expect("recorded");
        assert_eq!((last.endpoint.as_str(), last.outcome.as_str(), last.remote), ("/risk/rearm", "unchanged", None));

        // No ack: 503.
        let h = harness(Script::Mute, Duration::from_millis(100));
        let _ = call(&h.app, Method::POST, "/trading/flatten", AUTH, Vec::new()).await;
        let got: Vec<_> = h.audit.lock().expect("log").iter().map(|a| (a.status, a.outcome.clone())).collect();
        assert_eq!(got, [(503, "engine_unavailable".to_string())]);
    }

    #[tokio::test]
    async fn a_request_whose_client_hangs_up_is_still_audited() {
        let h = harness(Script::Mute, Duration::from_millis(200));
        let req = Request::builder()
            .method(Method::POST)
            .uri("/trading/halt")
            .header(header::AUTHORIZATION, AUTH.expect("auth"));
        let fut = h.app.clone().oneshot(req.body(Body::empty()).expect("request"));
        // The client gives up long before the engine's (missing) ack times out.
        assert!(tokio::time::timeout(Duration::from_millis(20), fut).await.is_err());
        tokio::time::sleep(Duration::from_millis(400)).await;
        let got: Vec<_> = h.audit.lock().expect("log").iter().map(|a| (a.status, a.outcome.clone())).collect();
        assert_eq!(got, [(503, "engine_unavailable".to_string())]);
    }

    // ---- /ws over a real socket ----

    struct Server {
        addr: std::net::SocketAddr,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        task: tokio::task::JoinHandle<()>,
    }

    /// Serves `app` on a loopback port until `stop` fires (graceful shutdown, as `hft run`).
    async fn serve(app: Router) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .expect("serve");
        });
        Server { addr, stop: Some(stop), task }
    }

    type Client = tungstenite::WebSocket<std::net::TcpStream>;

    fn ws_connect(addr: std::net::SocketAddr) -> Result<Client, tungstenite::Error> {
        let stream = std::net::TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
        tungstenite::client(format!("ws://{addr}/ws"), stream).map(|(ws, _)| ws).map_err(|e| match e {
            tungstenite::HandshakeError::Failure(e) => e,
            tungstenite::HandshakeError::Interrupted(_) => panic!("blocking handshake interrupted"),
        })
    }

    /// The next text message as (type, data), or `None` on a Close / end.
    fn next_topic(ws: &mut Client) -> Option<(String, Value)> {
        loop {
            match ws.read() {
                Ok(tungstenite::Message::Text(t)) => {
                    let v: Value = serde_json::from_str(t.as_str()).expect("JSON message");
                    let keys: Vec<&String> = v.as_object().expect("object").keys().collect();
                    assert_eq!(keys, ["data", "type"], "{v}");
                    return Some((v["type"].as_str().expect("type").to_string(), v["data"].clone()));
                }
                Ok(tungstenite::Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    fn without(mut v: Value, keys: &[&str]) -> Value {
        for k in keys {
            v.as_object_mut().expect("object").remove(*k);
        }
        v
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ws_pushes_every_topic_as_get_serves_it_then_what_changes() {
        let h = two_symbols(Script::Ack { orders_before_ack: 0 });
        six_orders(&h);
        apply(&h, &[fixtures::heartbeat(1, false)]);
        let server = serve(h.app.clone()).await;
        let addr = server.addr;
        let first = tokio::task::spawn_blocking(move || {
            let mut ws = ws_connect(addr).expect("upgrade");
            let mut got = Vec::new();
            while got.len() < ws::TOPICS.len() {
                got.push(next_topic(&mut ws).expect("a message"));
            }
            (ws, got)
        })
        .await
        .expect("client");
        let (mut ws, got) = first;
        let topics: Vec<&str> = got.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(topics, ws::TOPICS, "every topic on connect, in order");
        for (topic, data) in &got {
            let path = match topic.as_str() {
                "orders" | "fills" => format!("/{topic}?limit=50"),
                t => format!("/{t}"),
            };
            let (_, body) = get(&h.app, &path).await;
            let clocks: &[&str] = match topic.as_str() {
                "stats" => &["uptime_s"],
                "health" => &["uptime_s", "heartbeat_age_ms"],
                _ => &[],
            };
            assert_eq!(without(data.clone(), clocks), without(body, clocks), "{topic} differs from GET {path}");
        }
        let stats0 = got[0].1["uptime_s"].as_f64().expect("uptime");

        // A new order: the next push carries `orders` (and the stats that moved), not the
        // topics that did not change.
        apply(&h, &[order_on(7, 0, 1_700_000_000_500)]);
        let (ws, later) = tokio::task::spawn_blocking(move || {
            let mut later = Vec::new();
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_millis(1300) {
                later.push(next_topic(&mut ws).expect("a message"));
            }
            (ws, later)
        })
        .await
        .expect("client");
        let orders = later.iter().find(|(t, _)| t == "orders").expect("orders pushed");
        assert_eq!((orders.1["total"].as_u64(), orders.1["orders"][0]["id"].as_u64()), (Some(7), Some(7)));
        let uptimes: Vec<f64> =
            later.iter().filter(|(t, _)| t == "stats").map(|(_, d)| d["uptime_s"].as_f64().expect("uptime")).collect();
        assert!(uptimes.len() >= 2 && uptimes.iter().all(|u| *u > stats0), "stats change over time: {uptimes:?}");
        for quiet in ["fills", "latency", "strategies"] {
            assert!(later.iter().all(|(t, _)| t != quiet), "{quiet} pushed without a change");
        }

        // Client messages are ignored; a Close is answered and the slot given back.
        let mut ws = ws;
        tokio::task::spawn_blocking(move || {
            ws.send(tungstenite::Message::text("hello?")).expect("send");
            ws.close(None).expect("close");
            loop {
                match ws.read() {
                    Ok(tungstenite::Message::Close(_)) | Err(tungstenite::Error::ConnectionClosed) => break,
                    Ok(_) => {}
                    Err(e) => panic!("no close reply: {e}"),
                }
            }
        })
        .await
        .expect("client");
        let t0 = Instant::now();
        loop {
            let (_, _, text) = raw_get(&h.app, "/metrics").await;
            if text.contains("\nhft_ws_clients 0\n") {
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(3), "slot not given back:\n{text}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(server);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ws_clients_past_the_bound_get_503_and_a_silent_one_blocks_nobody() {
        let h = acking();
        let server = serve(h.app.clone()).await;
        let addr = server.addr;
        let (held, refused) = tokio::task::spawn_blocking(move || {
            // None of these reads: they must not slow anyone down.
            let held: Vec<Client> = (0..ws::MAX_CLIENTS).map(|_| ws_connect(addr).expect("upgrade")).collect();
            (held, ws_connect(addr).expect_err("one too many"))
        })
        .await
        .expect("clients");
        let tungstenite::Error::Http(res) = refused else { panic!("not an HTTP refusal: {refused:?}") };
        assert_eq!(res.status().as_u16(), 503);
        let body: Value = serde_json::from_slice(res.body().as_deref().unwrap_or_default()).expect("JSON");
        assert_eq!(body["code"], "too_many_clients", "{body}");
        let (status, _) = get(&h.app, "/stats").await;
        assert_eq!(status, StatusCode::OK, "REST unaffected");

        // One leaves: a newcomer gets its slot and its pushes while the others sit unread.
        let mut held = held;
        drop(held.pop());
        let got = tokio::task::spawn_blocking(move || {
            let t0 = Instant::now();
            let mut ws = loop {
                match ws_connect(addr) {
                    Ok(ws) => break ws,
                    Err(_) if t0.elapsed() < Duration::from_secs(3) => std::thread::sleep(Duration::from_millis(20)),
                    Err(e) => panic!("slot never freed: {e}"),
                }
            };
            let mut stats = 0;
            while stats < 3 {
                let (topic, _) = next_topic(&mut ws).expect("pushes keep coming");
                stats += usize::from(topic == "stats");
            }
            drop(held);
            stats
        })
        .await
        .expect("client");
        assert_eq!(got, 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ws_connections_are_closed_when_the_server_stops() {
        let Harness { app, .. } = acking();
        let mut server = serve(app).await;
        let addr = server.addr;
        let mut ws = tokio::task::spawn_blocking(move || {
            let mut ws = ws_connect(addr).expect("upgrade");
            for _ in 0..ws::TOPICS.len() {
                next_topic(&mut ws).expect("a message");
            }
            ws
        })
        .await
        .expect("client");
        let _ = server.stop.take().expect("once").send(());
        tokio::time::timeout(Duration::from_secs(2), &mut server.task).await.expect("server stopped").expect("task");
        let code = tokio::task::spawn_blocking(move || {
            loop {
                match ws.read() {
                    Ok(tungstenite::Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                    Ok(_) => {}
                    Err(e) => panic!("no Close frame: {e}"),
                }
            }
        })
        .await
        .expect("client");
        assert_eq!(code, Some(1001), "going away");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ws_a_client_whose_sends_stall_is_dropped() {
        let cfg = Config::from_toml_str("", &|_| None).expect("config");
        let replica = Replica::new(&cfg, Instant::now()).shared();
        let (p, c, _eng) = fake::start(Script::Ack { orders_before_ack: 0 }, 64);
        let (bridge, _task) = Bridge::start(p, c, replica.clone());
        // Pushes every 2 ms, and a send may stall for 300 ms.
        let hub = ws::Hub::with_timing(4, Duration::from_millis(2), Duration::from_millis(300));
        let state = AppState { replica: replica.clone(), bridge, token: Arc::from(TOKEN), audit: Audit::log_only() };
        let app = router_with(state, hub);
        let server = serve(app.clone()).await;
        let addr = server.addr;
        // Every push carries a new order (50 rows, ~20 KB): an unread socket fills in moments.
        let writer = {
            let replica = replica.clone();
            tokio::spawn(async move {
                for id in 1.. {
                    state::write(&replica).apply(&fixtures::order(id), Instant::now());
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        };
        let mut client = tokio::task::spawn_blocking(move || {
            let mut ws = ws_connect(addr).expect("upgrade");
            next_topic(&mut ws).expect("a first message");
            ws
        })
        .await
        .expect("client");
        // The client now reads nothing; the server gives up on it.
        let t0 = Instant::now();
        loop {
            let (_, _, text) = raw_get(&app, "/metrics").await;
            if text.contains("\nhft_ws_clients 0\n") {
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(10), "a stalled client is still connected");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        writer.abort();
        let (_, stats) = get(&app, "/stats").await;
        assert!(stats["orders"].as_u64().is_some_and(|n| n > 50), "the writer was never blocked: {stats}");
        // What was buffered drains, then the connection is gone (not merely quiet).
        tokio::task::spawn_blocking(move || {
            loop {
                match client.read() {
                    Ok(tungstenite::Message::Close(_)) => break,
                    Ok(_) => {}
                    Err(tungstenite::Error::Io(e))
                        if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
                    {
                        panic!("the connection is still open: {e}")
                    }
                    Err(_) => break,
                }
            }
        })
        .await
        .expect("client");
        drop(server);
    }
}
