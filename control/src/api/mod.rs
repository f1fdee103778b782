//! The control API's router: read-only views for anyone on the socket, state-changing calls
//! behind a bearer token, JSON errors everywhere, bounded request bodies.
//!
//! Runs on the tokio runtime (axum). Handlers see the engine only through the bridge and the
//! replica.

pub mod auth;
pub mod dashboard;
pub mod error;
pub mod handlers;

use crate::audit::Audit;
use crate::bridge::Bridge;
use crate::state::SharedReplica;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post, put};
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

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/dashboard", get(dashboard::page))
        .route("/health", get(handlers::health))
        .route("/stats", get(handlers::stats))
        .route("/latency", get(handlers::latency))
        .route("/book/{symbol}", get(handlers::book))
        .route("/risk", get(handlers::risk))
        .route("/strategies", get(handlers::strategies))
        // State-changing: the handlers take `auth::Authorized`.
        .route("/trading/halt", post(handlers::halt))
        .route("/trading/resume", post(handlers::resume))
        .route("/trading/flatten", post(handlers::flatten))
        .route("/risk/rearm", post(handlers::rearm))
        .route("/strategies/{name}/activate", post(handlers::activate))
        .route("/strategies/{name}/deactivate", post(handlers::deactivate))
        .route("/strategies/{name}/weight", put(handlers::set_weight))
        .fallback(handlers::not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(middleware::map_response(error::json_errors))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::fake::{self, Script};
    use crate::state::{self, Replica, fixtures};
    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode, header};
    use hft_shared::config::Config;
    use hft_shared::msg::{
        Event, KillCause, LatencySnapshot, Percentiles, PositionSnapshot, RejectReason, RiskEventKind, Stage,
        StrategySnapshot,
    };
    use hft_shared::{Amount, Px, Qty, StrategyKind, SymbolId};
    use serde_json::Value;
    use std::time::{Duration, Instant};
    use tower::ServiceExt;

    const TOKEN: &str = "s3cret-token";

    const AUTH: Option<&str> = Some("Bearer s3cret-token");

    struct Harness {
        app: Router,
        replica: SharedReplica,
        cfg: Config,
    }

    fn harness(script: Script, ack_timeout: Duration) -> Harness {
        let cfg = Config::from_toml_str("", &|_| None).expect("config");
        let replica = Replica::new(&cfg, Instant::now()).shared();
        let (p, c, _eng) = fake::start(script, 64);
        let (bridge, _task) = Bridge::start_with_timeout(p, c, replica.clone(), ack_timeout);
        let app = router(AppState {
            replica: replica.clone(),
            bridge,
            token: Arc::from(TOKEN),
            audit: crate::audit::Audit::log_only(),
        });
        Harness { app, replica, cfg }
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
}
