//! The control API's router: read-only views for anyone on the socket, state-changing calls
//! behind a bearer token, JSON errors everywhere, bounded request bodies.
//!
//! Runs on the tokio runtime (axum). Handlers see the engine only through the bridge and the
//! replica.

pub mod auth;
pub mod error;
pub mod handlers;

use crate::bridge::Bridge;
use crate::state::SharedReplica;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
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
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(handlers::health))
        .route("/stats", get(handlers::stats))
        .route("/latency", get(handlers::latency))
        .route("/book/{symbol}", get(handlers::book))
        // State-changing: the handlers take `auth::Authorized`.
        .route("/trading/halt", post(handlers::halt))
        .route("/trading/resume", post(handlers::resume))
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
    use hft_shared::msg::{Event, LatencySnapshot, Percentiles, RejectReason, Stage};
    use serde_json::Value;
    use std::time::{Duration, Instant};
    use tower::ServiceExt;

    const TOKEN: &str = "s3cret-token";

    struct Harness {
        app: Router,
        replica: SharedReplica,
    }

    fn harness(script: Script, ack_timeout: Duration) -> Harness {
        let cfg = Config::from_toml_str("", &|_| None).expect("config");
        let replica = Replica::new(&cfg, Instant::now()).shared();
        let (p, c, _eng) = fake::start(script, 64);
        let (bridge, _task) = Bridge::start_with_timeout(p, c, replica.clone(), ack_timeout);
        let app = router(AppState { replica: replica.clone(), bridge, token: Arc::from(TOKEN) });
        Harness { app, replica }
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
                "state": {"halted": true, "backpressure": false, "active_strategies": ["momentum"]}})
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
}
