//! Binance's request/response surfaces: REST `GET /api/v3/depth` (and `/ping`, `/time`) and the
//! WebSocket API at `/ws-api/v3`, whose requests `{"id","method","params"}` are dispatched
//! through [`METHODS`] — one entry and one function per method (the trading and account
//! methods are in [`super::orders`]). A connection subscribed to the user data stream also
//! receives `{"subscriptionId":N,"event":{…}}` messages between replies.
//!
//! Replies follow Binance: REST errors `{"code":-1121,"msg":"Invalid symbol."}`, WS-API
//! `{"id",…,"status":200,"result":…,"rateLimits":[…]}` or `{"id",…,"status":400,"error":{"code",
//! "msg"},"rateLimits":[…]}`. Request weight is counted per minute, all clients together, and
//! reported (`x-mbx-used-weight-1m`, `rateLimits`), not enforced; `order.place` also reports
//! (and enforces) the ORDERS limits. Parameters keep the text they were sent with, so a
//! signature is checked over exactly what the client signed.
//!
//! Runs on the tokio runtime, one task per WS-API connection; allocates freely.

use super::book::DepthError;
use super::venue::OrdersUsage;
use super::{ApiClient, Shared, latency, not_websocket, orders, ping_timer};
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Query, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// Binance's spot request-weight limit per minute (reported in `rateLimits`).
pub const WEIGHT_LIMIT: u32 = 6000;
/// Largest depth `limit`; larger values are served as this (Binance truncates too).
const MAX_DEPTH_LIMIT: u64 = 5000;
const DEFAULT_DEPTH_LIMIT: u64 = 100;
/// Largest WS-API request accepted, bytes.
const MAX_REQUEST: usize = 64 * 1024;
/// User-data events queued for one connection; a connection further behind loses its
/// subscription and is disconnected.
pub const USER_EVENTS_CAPACITY: usize = 4096;

/// A Binance error: HTTP status (the WS-API `status`), code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinanceError {
    pub status: StatusCode,
    pub code: i32,
    pub msg: String,
}

impl BinanceError {
    pub fn bad(code: i32, msg: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, code, msg: msg.into() }
    }
    pub fn mandatory(param: &str) -> Self {
        Self::bad(-1102, format!("Mandatory parameter '{param}' was not sent, was empty/null, or malformed."))
    }
    pub fn illegal(param: &str, legal: &str) -> Self {
        Self::bad(-1100, format!("Illegal characters found in parameter '{param}'; legal range is '{legal}'."))
    }
}

/// A WS-API request's `params`: name → value as sent (nulls dropped), in name order.
#[derive(Debug, Default)]
pub struct Params(BTreeMap<String, Box<RawValue>>);

impl Params {
    /// `None` (or JSON `null`) is no parameters; anything but an object is refused.
    pub fn parse(raw: Option<&RawValue>) -> Result<Self, BinanceError> {
        let Some(raw) = raw else { return Ok(Self::default()) };
        let mut map: BTreeMap<String, Box<RawValue>> =
            serde_json::from_str(raw.get()).map_err(|_| BinanceError::bad(-1100, "params must be an object."))?;
        map.retain(|_, v| v.get() != "null");
        Ok(Self(map))
    }

    /// A parameter's text: a string's contents, any other value's JSON literal as sent.
    pub fn text(&self, name: &str) -> Option<Cow<'_, str>> {
        self.0.get(name).map(|v| text_of(v))
    }

    /// A parameter that must be a JSON string: `Ok(None)` when absent, -1102 when not a string.
    pub fn string(&self, name: &str) -> Result<Option<String>, BinanceError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(v) => serde_json::from_str::<String>(v.get()).map(Some).map_err(|_| BinanceError::mandatory(name)),
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// Every parameter as `(name, text)`, sorted by name (byte order).
    pub fn iter_text(&self) -> impl Iterator<Item = (&str, Cow<'_, str>)> + '_ {
        self.0.iter().map(|(k, v)| (k.as_str(), text_of(v)))
    }
}

fn text_of(v: &RawValue) -> Cow<'_, str> {
    let raw = v.get();
    if raw.starts_with('"') {
        serde_json::from_str::<Cow<'_, str>>(raw).unwrap_or(Cow::Borrowed(raw))
    } else {
        Cow::Borrowed(raw)
    }
}

/// One WS-API connection's state.
pub struct Conn {
    pub id: u64,
    /// The active user-data subscription's id.
    pub subscription: Option<u32>,
    next_subscription: u32,
    /// User-data events for this connection while it is subscribed (the venue holds the only
    /// sender: when it drops it, the connection fell behind).
    pub events: Option<mpsc::Receiver<Utf8Bytes>>,
}

impl Conn {
    pub fn new(shared: &Shared) -> Self {
        Self { id: shared.next_conn_id(), subscription: None, next_subscription: 0, events: None }
    }

    /// Starts a subscription: its id and the sender for the venue.
    pub fn start_subscription(&mut self) -> (u32, mpsc::Sender<Utf8Bytes>) {
        let id = self.next_subscription;
        self.next_subscription += 1;
        let (tx, rx) = mpsc::channel(USER_EVENTS_CAPACITY);
        self.subscription = Some(id);
        self.events = Some(rx);
        (id, tx)
    }

    pub fn end_subscription(&mut self) {
        self.subscription = None;
        self.events = None;
    }
}

/// Ends a connection's user-data subscription however the connection ends.
struct Unsubscribe<'a>(&'a Shared, u64);

impl Drop for Unsubscribe<'_> {
    fn drop(&mut self) {
        self.0.venue().unsubscribe(self.1);
    }
}

/// What a method sees of its request.
pub struct Ctx<'a> {
    pub shared: &'a Shared,
    pub conn: &'a mut Conn,
    /// When the request arrived ([`latency::now_ns`]).
    pub recv_ns: u64,
    /// ORDERS usage to report, when the method counted an order.
    pub orders: Option<OrdersUsage>,
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

/// The server's clock, Unix ms.
pub fn now_ms() -> u64 {
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
    let mut conn = Conn::new(&shared);
    let _unsubscribe = Unsubscribe(&shared, conn.id);
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
                    let recv_ns = latency::now_ns();
                    let reply = handle(&shared, &mut conn, t.as_str(), recv_ns);
                    if socket.send(Message::Text(reply.into())).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    let reply = reply_err(&Value::Null, &BinanceError::bad(-1100, "Binary requests are not supported."), shared.use_weight(1), None);
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
            event = next_event(&mut conn.events) => match event {
                Some(text) => {
                    if socket.send(Message::Text(text)).await.is_err() {
                        return;
                    }
                }
                None => {
                    // The venue dropped the subscription: this client did not read its events.
                    let close = CloseFrame { code: close_code::POLICY, reason: Utf8Bytes::from_static("user data events not read") };
                    let _ = socket.send(Message::Close(Some(close))).await;
                    return;
                }
            },
            _ = ping.tick() => {
                if shared.stalled_until().is_none() && socket.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The next user-data event; never, without a subscription.
async fn next_event(events: &mut Option<mpsc::Receiver<Utf8Bytes>>) -> Option<Utf8Bytes> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// A method's answer: the `result` JSON text and the request's weight.
pub struct Reply {
    pub result: String,
    pub weight: u32,
}

/// A WS-API method.
type Method = fn(&mut Ctx<'_>, &Params) -> Result<Reply, BinanceError>;

/// Every WS-API method the simulator speaks (a `v3/` prefix is accepted, as Binance does).
const METHODS: &[(&str, Method)] = &[
    ("depth", method_depth),
    ("ping", method_ping),
    ("time", method_time),
    ("order.place", orders::place),
    ("order.cancel", orders::cancel),
    ("openOrders.cancelAll", orders::cancel_all),
    ("order.status", orders::status),
    ("openOrders.status", orders::open_orders),
    ("account.status", orders::account),
    ("userDataStream.subscribe.signature", orders::subscribe),
    ("userDataStream.unsubscribe", orders::unsubscribe),
];

fn method_depth(ctx: &mut Ctx<'_>, params: &Params) -> Result<Reply, BinanceError> {
    let symbol = params.string("symbol")?;
    let limit = match params.text("limit") {
        None => None,
        Some(v) => Some(v.parse::<u64>().map_err(|_| BinanceError::illegal("limit", "1-5000"))?),
    };
    let (result, weight) = depth(ctx.shared, DepthParams { symbol, limit })?;
    Ok(Reply { result, weight })
}

fn method_ping(_: &mut Ctx<'_>, _: &Params) -> Result<Reply, BinanceError> {
    Ok(Reply { result: "{}".into(), weight: 1 })
}

fn method_time(_: &mut Ctx<'_>, _: &Params) -> Result<Reply, BinanceError> {
    Ok(Reply { result: format!("{{\"serverTime\":{}}}", now_ms()), weight: 1 })
}

#[derive(Deserialize)]
struct Request {
    #[serde(default)]
    id: Value,
    method: Option<String>,
    #[serde(default)]
    params: Option<Box<RawValue>>,
}

/// `[…ORDERS…,{"rateLimitType":"REQUEST_WEIGHT",…,"count":N}]`.
fn rate_limits(used: u32, orders: Option<OrdersUsage>) -> String {
    let mut out = String::from("[");
    if let Some(o) = orders {
        out.push_str(&format!(
            r#"{{"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":{},"count":{}}},{{"rateLimitType":"ORDERS","interval":"DAY","intervalNum":1,"limit":{},"count":{}}},"#,
            o.ten_s_limit, o.ten_s, o.day_limit, o.day
        ));
    }
    out.push_str(&format!(
        r#"{{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":{WEIGHT_LIMIT},"count":{used}}}]"#
    ));
    out
}

fn reply_err(id: &Value, e: &BinanceError, used: u32, orders: Option<OrdersUsage>) -> String {
    let error = json!({"code": e.code, "msg": e.msg});
    format!(
        r#"{{"id":{id},"status":{},"error":{error},"rateLimits":{}}}"#,
        e.status.as_u16(),
        rate_limits(used, orders)
    )
}

/// Answers one WS-API request text that arrived at `recv_ns`.
pub fn handle(shared: &Shared, conn: &mut Conn, text: &str, recv_ns: u64) -> String {
    let req: Request = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            let e = BinanceError::bad(-1100, format!("Malformed request: {e}"));
            return reply_err(&Value::Null, &e, shared.use_weight(1), None);
        }
    };
    let id = &req.id;
    if !matches!(id, Value::Null | Value::String(_) | Value::Number(_)) {
        return reply_err(&Value::Null, &BinanceError::mandatory("id"), shared.use_weight(1), None);
    }
    let Some(method) = req.method.as_deref() else {
        return reply_err(id, &BinanceError::mandatory("method"), shared.use_weight(1), None);
    };
    let name = method.strip_prefix("v3/").unwrap_or(method);
    let Some((_, f)) = METHODS.iter().find(|(n, _)| *n == name) else {
        let e = BinanceError::bad(
            -1100,
            format!("Illegal characters found in parameter 'method': unknown method {method:?}."),
        );
        return reply_err(id, &e, shared.use_weight(1), None);
    };
    let params = match Params::parse(req.params.as_deref()) {
        Ok(p) => p,
        Err(e) => return reply_err(id, &e, shared.use_weight(1), None),
    };
    let mut ctx = Ctx { shared, conn, recv_ns, orders: None };
    match f(&mut ctx, &params) {
        Ok(r) => {
            let used = shared.use_weight(r.weight);
            format!(
                r#"{{"id":{id},"status":200,"result":{},"rateLimits":{}}}"#,
                r.result,
                rate_limits(used, ctx.orders)
            )
        }
        Err(e) => reply_err(id, &e, shared.use_weight(1), ctx.orders),
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
        serde_json::from_str(&handle(s, &mut Conn::new(s), req, 1)).expect("reply is JSON")
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
        assert_eq!(call(&s, r#"{"id":1,"method":"v3/ping","params":null}"#)["status"], 200);
    }

    #[test]
    fn depth_weights_follow_binance() {
        assert_eq!([1, 100, 101, 500, 501, 1000, 1001, 5000].map(depth_weight), [5, 5, 25, 25, 50, 50, 250, 250]);
    }
}
