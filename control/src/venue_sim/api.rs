//! Binance's request/response surfaces: REST `GET /api/v3/depth` (and `/ping`, `/time`) and the
//! WebSocket API at `/ws-api/v3`, whose requests `{"id","method","params"}` are dispatched
//! through [`METHODS`] — one entry and one function per method (add `order.place` there).
//!
//! Replies follow Binance: REST errors `{"code":-1121,"msg":"Invalid symbol."}`, WS-API
//! `{"id",…,"status":200,"result":…,"rateLimits":[…]}` or `{"id",…,"status":400,"error":{"code",
//! "msg"},"rateLimits":[…]}`. Request weight is counted per minute, all clients together, and
//! reported (`x-mbx-used-weight-1m`, `rateLimits`), not enforced.
//!
//! Runs on the tokio runtime, one task per WS-API connection; allocates freely.

use super::book::DepthError;
use super::{ApiClient, Shared, not_websocket, ping_timer};
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Query, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Binance's spot request-weight limit per minute (reported in `rateLimits`).
pub const WEIGHT_LIMIT: u32 = 6000;
/// Largest depth `limit`; larger values are served as this (Binance truncates too).
const MAX_DEPTH_LIMIT: u64 = 5000;
const DEFAULT_DEPTH_LIMIT: u64 = 100;
/// Largest WS-API request accepted, bytes.
const MAX_REQUEST: usize = 64 * 1024;

/// A Binance error: HTTP status (the WS-API `status`), code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinanceError {
    pub status: StatusCode,
    pub code: i32,
    pub msg: String,
}

impl BinanceError {
    fn bad(code: i32, msg: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, code, msg: msg.into() }
    }
    fn mandatory(param: &str) -> Self {
        Self::bad(-1102, format!("Mandatory parameter '{param}' was not sent, was empty/null, or malformed."))
    }
    fn illegal(param: &str, legal: &str) -> Self {
        Self::bad(-1100, format!("Illegal characters found in parameter '{param}'; legal range is '{legal}'."))
    }
}

impl IntoResponse for BinanceError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(json!({"code": self.code, "msg": self.msg}))).into_response()
    }
}

/// Depth request parameters, whichever surface they came from.
struct DepthParams {
    symbol: Option<String>,
    limit: Option<u64>,
}

/// Weight of a depth request of `limit` levels (Binance's table).
fn depth_weight(limit: u64) -> u32 {
    match limit {
        0..=100 => 5,
        101..=500 => 25,
        501..=1000 => 50,
        _ => 250,
    }
}

/// The snapshot body and the request's weight.
fn depth(shared: &Shared, p: DepthParams) -> Result<(String, u32), BinanceError> {
    let symbol = p.symbol.filter(|s| !s.is_empty()).ok_or_else(|| BinanceError::mandatory("symbol"))?;
    if !(1..=32).contains(&symbol.len()) || !symbol.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(BinanceError::illegal("symbol", "^[A-Z0-9-_.]{1,20}$"));
    }
    let limit = p.limit.unwrap_or(DEFAULT_DEPTH_LIMIT);
    if limit == 0 {
        return Err(BinanceError::illegal("limit", "1-5000"));
    }
    let limit = limit.min(MAX_DEPTH_LIMIT);
    let symbol = symbol.to_ascii_uppercase();
    match shared.books().snapshot(&symbol, limit as usize) {
        Ok(body) => Ok((body, depth_weight(limit))),
        Err(DepthError::UnknownSymbol) => Err(BinanceError::bad(-1121, "Invalid symbol.")),
        Err(DepthError::NotReady) => Err(BinanceError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: -1008,
            msg: format!("No snapshot of {symbol} yet: the source has not reached its snapshot. Retry later."),
        }),
    }
}

/// `GET /api/v3/depth?symbol=BTCUSDT&limit=1000`.
pub async fn rest_depth(
    State(shared): State<Arc<Shared>>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return BinanceError::bad(-1100, "Illegal characters found in the query string.").into_response();
    };
    let limit = match q.get("limit").map(|l| l.parse::<u64>()) {
        None => None,
        Some(Ok(l)) => Some(l),
        Some(Err(_)) => return BinanceError::illegal("limit", "^[0-9]{1,20}$").into_response(),
    };
    match depth(&shared, DepthParams { symbol: q.get("symbol").cloned(), limit }) {
        Ok((body, weight)) => {
            let used = shared.use_weight(weight);
            (
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
                    (HeaderName::from_static("x-mbx-used-weight-1m"), HeaderValue::from(used)),
                ],
                body,
            )
                .into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// `GET /api/v3/ping`.
pub async fn rest_ping() -> axum::Json<Value> {
    axum::Json(json!({}))
}

/// `GET /api/v3/time`.
pub async fn rest_time() -> axum::Json<Value> {
    axum::Json(json!({"serverTime": now_ms()}))
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// `GET /ws-api/v3` (WebSocket).
pub async fn ws_api(
    State(shared): State<Arc<Shared>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match ws {
        Ok(ws) => ws.max_message_size(MAX_REQUEST).on_upgrade(move |socket| serve(socket, shared)),
        Err(e) => not_websocket(e),
    }
}

/// One WS-API connection: a request in, its reply out, in order. Follows the fault signals:
/// a drop closes the TCP connection without a close frame, a stall holds reads, replies and
/// pings until it ends.
async fn serve(mut socket: WebSocket, shared: Arc<Shared>) {
    let _client = ApiClient::new(shared.clone());
    let mut signals = shared.signals.subscribe();
    let drops_at_connect = signals.borrow_and_update().drops;
    let mut ping = ping_timer(shared.ping_every);
    loop {
        tokio::select! {
            changed = signals.changed() => {
                let s = match changed {
                    Ok(()) => *signals.borrow_and_update(),
                    Err(_) => return,
                };
                if s.shutdown {
                    let close = CloseFrame { code: close_code::AWAY, reason: Utf8Bytes::from_static("server shutting down") };
                    let _ = socket.send(Message::Close(Some(close))).await;
                    return;
                }
                if s.drops != drops_at_connect {
                    return;
                }
                if let Some(until) = s.stall_until {
                    tokio::time::sleep_until(until.into()).await;
                    ping.reset();
                }
            }
            msg = socket.recv() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let reply = handle(&shared, t.as_str());
                    if socket.send(Message::Text(reply.into())).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    let reply = reply_err(&Value::Null, &BinanceError::bad(-1100, "Binary requests are not supported."), shared.use_weight(1));
                    if socket.send(Message::Text(reply.into())).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), async { while socket.recv().await.is_some() {} }).await;
                    return;
                }
                Some(Ok(_)) => {}
                None | Some(Err(_)) => return,
            },
            _ = ping.tick() => {
                if shared.stalled_until().is_none() && socket.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// A method's answer: the `result` JSON text and the request's weight.
pub struct Reply {
    pub result: String,
    pub weight: u32,
}

/// A WS-API method.
type Method = fn(&Shared, &Value) -> Result<Reply, BinanceError>;

/// Every WS-API method the simulator speaks.
const METHODS: &[(&str, Method)] = &[("depth", method_depth), ("ping", method_ping), ("time", method_time)];

fn method_depth(shared: &Shared, params: &Value) -> Result<Reply, BinanceError> {
    let symbol = match params.get("symbol") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(BinanceError::mandatory("symbol")),
    };
    let limit = match params.get("limit") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .ok_or_else(|| BinanceError::illegal("limit", "1-5000"))?,
        ),
    };
    let (result, weight) = depth(shared, DepthParams { symbol, limit })?;
    Ok(Reply { result, weight })
}

fn method_ping(_: &Shared, _: &Value) -> Result<Reply, BinanceError> {
    Ok(Reply { result: "{}".into(), weight: 1 })
}

fn method_time(_: &Shared, _: &Value) -> Result<Reply, BinanceError> {
    Ok(Reply { result: format!("{{\"serverTime\":{}}}", now_ms()), weight: 1 })
}

#[derive(Deserialize)]
struct Request {
    #[serde(default)]
    id: Value,
    method: Option<String>,
    #[serde(default)]
    params: Value,
}

/// `[{"rateLimitType":"REQUEST_WEIGHT",…,"count":N}]`.
fn rate_limits(used: u32) -> String {
    format!(
        r#"[{{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":{WEIGHT_LIMIT},"count":{used}}}]"#
    )
}

fn reply_err(id: &Value, e: &BinanceError, used: u32) -> String {
    let error = json!({"code": e.code, "msg": e.msg});
    format!(r#"{{"id":{id},"status":{},"error":{error},"rateLimits":{}}}"#, e.status.as_u16(), rate_limits(used))
}

/// Answers one WS-API request text.
pub fn handle(shared: &Shared, text: &str) -> String {
    let req: Request = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            let e = BinanceError::bad(-1100, format!("Malformed request: {e}"));
            return reply_err(&Value::Null, &e, shared.use_weight(1));
        }
    };
    let id = &req.id;
    if !matches!(id, Value::Null | Value::String(_) | Value::Number(_)) {
        return reply_err(&Value::Null, &BinanceError::mandatory("id"), shared.use_weight(1));
    }
    let Some(method) = req.method.as_deref() else {
        return reply_err(id, &BinanceError::mandatory("method"), shared.use_weight(1));
    };
    let Some((_, f)) = METHODS.iter().find(|(name, _)| *name == method) else {
        let e = BinanceError::bad(
            -1100,
            format!("Illegal characters found in parameter 'method': unknown method {method:?}."),
        );
        return reply_err(id, &e, shared.use_weight(1));
    };
    let params = if req.params.is_null() { Value::Object(Default::default()) } else { req.params };
    if !params.is_object() {
        return reply_err(id, &BinanceError::bad(-1100, "params must be an object."), shared.use_weight(1));
    }
    match f(shared, &params) {
        Ok(r) => {
            let used = shared.use_weight(r.weight);
            format!(r#"{{"id":{id},"status":200,"result":{},"rateLimits":{}}}"#, r.result, rate_limits(used))
        }
        Err(e) => reply_err(id, &e, shared.use_weight(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::venue_sim::wire::Snapshot;

    fn shared() -> Arc<Shared> {
        let s = Shared::for_tests();
        s.books().init("BTCUSDT", &Snapshot { last_update_id: 9, bids: vec![(100_000_000, 1)], asks: vec![] });
        s.books().note_symbol("ETHUSDT");
        s
    }

    fn call(s: &Shared, req: &str) -> Value {
        serde_json::from_str(&handle(s, req)).expect("reply is JSON")
    }

    #[test]
    fn depth_over_the_ws_api() {
        let s = shared();
        let v = call(&s, r#"{"id":"a","method":"depth","params":{"symbol":"BTCUSDT","limit":1000}}"#);
        assert_eq!(v["id"], "a");
        assert_eq!(v["status"], 200);
        assert_eq!(v["result"], json!({"lastUpdateId":9,"bids":[["1.00000000","0.00000001"]],"asks":[]}));
        assert_eq!(v["rateLimits"][0]["count"], 50);
        let v = call(&s, r#"{"id":7,"method":"depth","params":{"symbol":"btcusdt"}}"#);
        assert_eq!(
            (v["id"].as_u64(), v["status"].as_u64(), v["rateLimits"][0]["count"].as_u64()),
            (Some(7), Some(200), Some(55))
        );
    }

    #[test]
    fn ws_api_errors_have_binance_shapes() {
        let s = shared();
        for (req, status, code) in [
            (r#"{"id":"x","method":"order.fly","params":{}}"#, 400, -1100),
            (r#"{"id":"x","method":"depth","params":{}}"#, 400, -1102),
            (r#"{"id":"x","method":"depth","params":{"symbol":"NOPE"}}"#, 400, -1121),
            (r#"{"id":"x","method":"depth","params":{"symbol":"ETHUSDT"}}"#, 503, -1008),
            (r#"{"id":"x","method":"depth","params":{"symbol":"BTCUSDT","limit":0}}"#, 400, -1100),
            (r#"{"id":"x","method":"depth","params":{"symbol":"BTCUSDT","limit":-3}}"#, 400, -1100),
            (r#"{"id":"x","method":"depth","params":[1]}"#, 400, -1100),
            (r#"{"id":"x"}"#, 400, -1102),
            (r#"{"id":[1],"method":"ping"}"#, 400, -1102),
            ("not json", 400, -1100),
        ] {
            let v = call(&s, req);
            assert_eq!((v["status"].as_i64(), v["error"]["code"].as_i64()), (Some(status), Some(code)), "{req}: {v}");
            assert!(v["error"]["msg"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
            assert!(v["rateLimits"].is_array());
        }
        let v = call(&s, r#"{"id":1,"method":"ping"}"#);
        assert_eq!((v["status"].as_u64(), &v["result"]), (Some(200), &json!({})));
        assert!(call(&s, r#"{"id":1,"method":"time"}"#)["result"]["serverTime"].as_u64().is_some());
    }

    #[test]
    fn depth_weights_follow_binance() {
        assert_eq!([1, 100, 101, 500, 501, 1000, 1001, 5000].map(depth_weight), [5, 5, 25, 25, 50, 50, 250, 250]);
    }
}
