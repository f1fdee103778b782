//! The live order gateway against a loopback venue started here: a blocking `tungstenite` server
//! in a std thread that checks every request's signature with the same secret (independently:
//! serde_json, a sorted map and the hmac crate), answers like Binance's WS-API, and pushes
//! user-data events on the same connection. Also the engine's `Pipeline` in live mode over it:
//! a fill made while the connection was down is booked on reconnection, once.
//!
//! Every wait is bounded by a deadline; the client idles with a short sleep; the server thread
//! polls its command channel between 5 ms read timeouts and ends on `Stop` (sent when the
//! [`Venue`] handle drops), on its accept deadline, or when the test's handle is gone.

mod common;

use hft_engine::engine::Pipeline;
use hft_engine::exec::live::{
    ClientId, DownReason, ExecType, GatewayEvent, LiveGateway, LiveParams, NewOrder, RequestKind, RespType, SendError,
};
use hft_engine::feed::FrameKind;
use hft_engine::feed::source::synthetic_params;
use hft_engine::feed::synthetic::SyntheticMarket;
use hft_shared::config::{Config, Secret};
use hft_shared::msg::Event;
use hft_shared::msg::event::OrderStatus;
use hft_shared::{Amount, OrderKind, Px, Qty, Side, SymbolId, TimeInForce};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tungstenite::{Message, WebSocket};

const WAIT: Duration = Duration::from_secs(10);
const KEY: &str = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
const SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";

// ---- the venue ----------------------------------------------------------------------------------

/// A request as the venue saw it.
#[derive(Clone, Debug)]
struct Req {
    /// Connection number, from 1.
    conn: usize,
    id: Value,
    method: String,
    params: serde_json::Map<String, Value>,
    /// The signature matched HMAC-SHA256(secret, sorted params) and the key was ours.
    signed_ok: bool,
    /// `order.place` requests seen on this connection so far, this one included.
    places: u64,
}

impl Req {
    fn p(&self, k: &str) -> &str {
        self.params.get(k).and_then(Value::as_str).unwrap_or("")
    }
}

enum Reply {
    Text(String),
    Binary(Vec<u8>),
}

/// What the test tells the venue.
enum Cmd {
    /// Push a message on the current connection.
    Push(String),
    /// Drop the current connection without a close frame.
    Drop,
    Stop,
}

/// A test's answers; `None` falls back to [`standard`].
type Script = Box<dyn FnMut(&Req) -> Option<Vec<Reply>> + Send>;

struct Venue {
    addr: SocketAddr,
    cmds: Sender<Cmd>,
    seen: Receiver<Req>,
    log: Vec<Req>,
    thread: Option<JoinHandle<()>>,
}

impl Venue {
    fn start(script: Script) -> Self {
        Self::start_with(script, None)
    }

    /// A `wss://` venue with [`LEAF_PEM`]'s certificate.
    fn start_tls(script: Script) -> Self {
        Self::start_with(script, Some(tls_server_config()))
    }

    fn start_with(script: Script, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.set_nonblocking(true).expect("nonblocking");
        let addr = l.local_addr().expect("addr");
        let (cmds, cmd_rx) = channel();
        let (seen_tx, seen) = channel();
        let thread = std::thread::Builder::new()
            .name("venue".into())
            .spawn(move || serve(&l, tls, &cmd_rx, &seen_tx, script))
            .expect("spawn");
        Self { addr, cmds, seen, log: vec![], thread: Some(thread) }
    }

    fn push(&self, msg: String) {
        self.cmds.send(Cmd::Push(msg)).expect("venue alive");
    }

    fn drop_connection(&self) {
        self.cmds.send(Cmd::Drop).expect("venue alive");
    }

    /// Every request seen so far.
    fn requests(&mut self) -> &[Req] {
        while let Ok(r) = self.seen.try_recv() {
            self.log.push(r);
        }
        &self.log
    }

    fn methods(&mut self, conn: usize) -> Vec<String> {
        self.requests().iter().filter(|r| r.conn == conn).map(|r| r.method.clone()).collect()
    }
}

impl Drop for Venue {
    fn drop(&mut self) {
        let _ = self.cmds.send(Cmd::Stop);
        if let Some(h) = self.thread.take() {
            let deadline = Instant::now() + WAIT;
            while !h.is_finished() {
                assert!(Instant::now() < deadline, "the venue thread did not finish");
                std::thread::sleep(Duration::from_millis(1));
            }
            if let Err(e) = h.join()
                && !std::thread::panicking()
            {
                std::panic::resume_unwind(e);
            }
        }
    }
}

fn serve(
    l: &TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    cmds: &Receiver<Cmd>,
    seen: &Sender<Req>,
    mut script: Script,
) {
    let mut conn = 0;
    loop {
        // Accept, watching for Stop; give up after WAIT without a client.
        let deadline = Instant::now() + WAIT;
        let stream = loop {
            match cmds.try_recv() {
                Ok(Cmd::Stop) | Err(TryRecvError::Disconnected) => return,
                Ok(_) | Err(TryRecvError::Empty) => {}
            }
            match l.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        conn += 1;
        stream.set_nonblocking(false).expect("blocking");
        stream.set_nodelay(true).expect("nodelay");
        stream.set_write_timeout(Some(Duration::from_secs(5))).expect("timeout");
        stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        // Short reads from here on, so that commands are seen between requests.
        let short = |s: &TcpStream| s.set_read_timeout(Some(Duration::from_millis(5))).expect("timeout");
        let go_on = match &tls {
            None => {
                let Ok(mut ws) = tungstenite::accept(stream) else { continue };
                short(ws.get_ref());
                session(&mut ws, conn, cmds, seen, &mut script)
            }
            Some(cfg) => {
                let tls = rustls::ServerConnection::new(cfg.clone()).expect("tls session");
                let Ok(mut ws) = tungstenite::accept(rustls::StreamOwned::new(tls, stream)) else { continue };
                short(&ws.get_ref().sock);
                session(&mut ws, conn, cmds, seen, &mut script)
            }
        };
        if !go_on {
            return;
        }
    }
}

/// Runs one connection; `false` when the venue must stop.
fn session<S: Read + Write>(
    ws: &mut WebSocket<S>,
    conn: usize,
    cmds: &Receiver<Cmd>,
    seen: &Sender<Req>,
    script: &mut Script,
) -> bool {
    let mut places = 0;
    loop {
        match cmds.try_recv() {
            Ok(Cmd::Push(m)) => {
                if ws.send(Message::text(m)).is_err() {
                    return true;
                }
            }
            Ok(Cmd::Drop) => return true,
            Ok(Cmd::Stop) | Err(TryRecvError::Disconnected) => return false,
            Err(TryRecvError::Empty) => {}
        }
        match ws.read() {
            Ok(Message::Text(t)) => {
                let mut req = parse(conn, t.as_str());
                if req.method == "order.place" {
                    places += 1;
                }
                req.places = places;
                let replies = script(&req).unwrap_or_else(|| standard(&req));
                let _ = seen.send(req);
                for r in replies {
                    let m = match r {
                        Reply::Text(s) => Message::text(s),
                        Reply::Binary(b) => Message::binary(b),
                    };
                    if ws.send(m).is_err() {
                        return true;
                    }
                }
            }
            Ok(Message::Close(_)) => {
                let _ = ws.flush();
                return true;
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                // Flush pongs tungstenite queued.
                let _ = ws.flush();
            }
            Err(_) => return true,
        }
    }
}

/// Parses a request and checks its signature the way the venue does.
fn parse(conn: usize, text: &str) -> Req {
    let v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("the gateway sent invalid JSON ({e}): {text}"));
    let params = v["params"].as_object().cloned().unwrap_or_default();
    let sorted: BTreeMap<&str, String> = params
        .iter()
        .filter(|(k, _)| *k != "signature")
        .map(|(k, v)| (k.as_str(), v.as_str().map_or_else(|| v.to_string(), str::to_string)))
        .collect();
    let payload = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(payload.as_bytes());
    let want: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let signed_ok = params.get("signature").and_then(Value::as_str) == Some(want.as_str())
        && params.get("apiKey").and_then(Value::as_str) == Some(KEY);
    let method = v["method"].as_str().unwrap_or("").to_string();
    Req { conn, id: v["id"].clone(), method, params, signed_ok, places: 0 }
}

fn ok(req: &Req, result: Value) -> Reply {
    Reply::Text(json!({"id": req.id, "status": 200, "result": result, "rateLimits": weight(3)}).to_string())
}

fn err(req: &Req, status: u16, code: i32) -> Reply {
    Reply::Text(
        json!({"id": req.id, "status": status, "error": {"code": code, "msg": "refused"}, "rateLimits": weight(4)})
            .to_string(),
    )
}

fn weight(count: u32) -> Value {
    json!([{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000, "count": count}])
}

fn order_json(symbol: &str, cid: &str, order_id: u64, status: &str, executed: &str) -> Value {
    json!({"symbol": symbol, "orderId": order_id, "orderListId": -1, "clientOrderId": cid, "price": "100.00",
           "origQty": "1.00000000", "executedQty": executed, "cummulativeQuoteQty": "0", "status": status,
           "timeInForce": "GTC", "type": "LIMIT", "side": "BUY", "time": 1, "updateTime": 2})
}

/// The venue's default answers. A bad signature is refused like Binance does (-1022); places
/// with client ids starting `rej` are refused (-2010), `hold` ones are never answered.
fn standard(req: &Req) -> Vec<Reply> {
    if !req.signed_ok {
        return vec![err(req, 400, -1022)];
    }
    let sym = req.p("symbol");
    let cid = req.p("newClientOrderId");
    vec![match req.method.as_str() {
        "userDataStream.subscribe.signature" => ok(req, json!({"subscriptionId": 0})),
        "openOrders.status" => ok(req, json!([])),
        "account.status" => ok(
            req,
            json!({"canTrade": true, "balances": [{"asset": "USDT", "free": "1000.5", "locked": "0.00000000"}]}),
        ),
        "order.place" if cid.starts_with("rej") => err(req, 400, -2010),
        "order.place" if cid.starts_with("hold") => return vec![],
        "order.place" => {
            let n: u64 = cid.rsplit('-').next().and_then(|d| d.parse().ok()).unwrap_or(0);
            let ack = json!({"symbol": sym, "orderId": 1000 + n, "orderListId": -1, "clientOrderId": cid,
                             "transactTime": 1_700_000_000_000u64});
            let limits = json!([
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 50, "count": req.places},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 160000, "count": req.places},
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000, "count": 5}
            ]);
            Reply::Text(json!({"id": req.id, "status": 200, "result": ack, "rateLimits": limits}).to_string())
        }
        "order.cancel" => ok(
            req,
            json!({"symbol": sym, "origClientOrderId": req.p("origClientOrderId"), "orderId": 1, "orderListId": -1,
                   "clientOrderId": "venue-cancel-id", "status": "CANCELED"}),
        ),
        "order.status" => err(req, 400, -2013),
        "openOrders.cancelAll" => ok(req, json!([])),
        _ => err(req, 400, -1100),
    }]
}

/// An `executionReport` on the WS-API.
fn execution(symbol: &str, cid: &str, order_id: u64, x: &str, status: &str, last: &str, cum: &str) -> String {
    json!({"subscriptionId": 0, "event": {
        "e": "executionReport", "E": 1_700_000_000_100u64, "s": symbol, "c": cid, "S": "BUY", "o": "LIMIT",
        "f": "GTC", "q": "1.00000000", "p": "100.00000000", "P": "0.00000000", "F": "0.00000000", "g": -1, "C": "",
        "x": x, "X": status, "r": "NONE", "i": order_id, "l": last, "z": cum, "L": "100.00000000",
        "n": "0.00100000", "N": "USDT", "T": 1_700_000_000_099u64, "t": 555, "I": 1, "w": false, "m": false,
        "M": true, "O": 1, "Z": "50.00000000", "Y": "0", "Q": "0", "W": 1, "V": "NONE"}})
    .to_string()
}

// ---- the client ---------------------------------------------------------------------------------

fn params(addr: SocketAddr) -> LiveParams {
    LiveParams {
        api_url: format!("ws://{addr}/ws-api/v3"),
        symbols: vec!["BTCUSDT".into(), "ETHUSDT".into()],
        recv_window_ms: 5000,
        resp_type: RespType::Ack,
        reconnect_min_ms: 50,
        reconnect_max_ms: 200,
        ping_interval_ms: 60_000,
        dead_ms: 60_000,
        connect_timeout_ms: 5_000,
        max_connection_ms: 3_600_000,
        request_timeout_ms: 5_000,
        max_message: 1 << 20,
        max_pending: 64,
        max_open_orders: 16,
        max_balances: 16,
        rate_limit_warn_pct: 80,
        seed: 7,
        tls: None,
    }
}

struct Client {
    g: LiveGateway,
    unix0: u64,
    t0: Instant,
    events: Vec<GatewayEvent>,
}

impl Client {
    fn new(p: LiveParams) -> Self {
        let g = LiveGateway::new(p, &Secret::new(KEY.into()), &Secret::new(SECRET.into())).expect("gateway");
        let unix0 = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_nanos() as u64;
        Self { g, unix0, t0: Instant::now(), events: Vec::with_capacity(4096) }
    }

    /// Unix time, ns, monotonic.
    fn now(&self) -> u64 {
        self.unix0 + self.t0.elapsed().as_nanos() as u64
    }

    /// Polls until `done` holds for the events so far (idle polls sleep 50 µs); returns the
    /// index of the first event that arrived during this call.
    fn until(&mut self, what: &str, mut done: impl FnMut(&[GatewayEvent]) -> bool) -> usize {
        let from = self.events.len();
        let deadline = Instant::now() + WAIT;
        loop {
            let now = self.now();
            let work = self.g.poll(now);
            while let Some(e) = self.g.take_event() {
                self.events.push(e);
            }
            if done(&self.events[from..]) {
                return from;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; events {:?}; {:?}",
                self.events,
                self.g.counters()
            );
            if !work {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }

    /// Polls until an event matches; returns it.
    fn event(&mut self, what: &str, pred: impl Fn(&GatewayEvent) -> bool) -> GatewayEvent {
        let from = self.until(what, |es| es.iter().any(&pred));
        *self.events[from..].iter().find(|e| pred(e)).expect("seen")
    }

    fn ready(&mut self) {
        self.event("Ready", |e| *e == GatewayEvent::Ready);
    }

    fn place(&mut self, symbol: u16, cid: &str) -> Result<(), SendError> {
        let o = order(symbol, cid);
        let now = self.now();
        self.g.place(&o, now)
    }
}

fn order(symbol: u16, cid: &str) -> NewOrder {
    NewOrder {
        symbol: SymbolId(symbol),
        side: Side::Buy,
        kind: OrderKind::Limit,
        tif: TimeInForce::Gtc,
        qty: Qty::parse("1").unwrap(),
        px: Px::parse("100").unwrap(),
        client_id: ClientId::new(cid.as_bytes()).expect("client id"),
    }
}

fn cid(s: &str) -> ClientId {
    ClientId::new(s.as_bytes()).unwrap()
}

// ---- tests --------------------------------------------------------------------------------------

#[test]
fn connect_subscribe_reconcile_ready_then_place_ack_and_executions() {
    let mut venue = Venue::start(Box::new(|_| None));
    let mut c = Client::new(params(venue.addr));
    c.ready();
    // Subscribe first, then open orders per symbol and the account; Ready only after all answers.
    assert_eq!(
        venue.methods(1),
        ["userDataStream.subscribe.signature", "openOrders.status", "openOrders.status", "account.status"]
    );
    let reqs = venue.requests().to_vec();
    assert!(reqs.iter().all(|r| r.signed_ok), "{reqs:?}");
    assert_eq!((reqs[1].p("symbol"), reqs[2].p("symbol")), ("BTCUSDT", "ETHUSDT"));
    assert_eq!(reqs[0].params.keys().collect::<Vec<_>>(), ["apiKey", "signature", "timestamp"]);
    let now_ms = c.now() / 1_000_000;
    let ts = reqs[0].params["timestamp"].as_u64().unwrap();
    assert!(ts <= now_ms && now_ms - ts < 10_000, "timestamp {ts} vs now {now_ms}");
    assert_eq!(
        c.events,
        [
            GatewayEvent::OpenOrders { symbol: SymbolId(0), count: 0, complete: true },
            GatewayEvent::OpenOrders { symbol: SymbolId(1), count: 0, complete: true },
            GatewayEvent::Balances,
            GatewayEvent::Ready,
        ]
    );
    assert_eq!(c.g.balances().len(), 1);
    assert_eq!((c.g.balances()[0].asset.as_str(), c.g.balances()[0].free), ("USDT", Qty::parse("1000.5").unwrap()));

    // Place → Ack with the venue's order id.
    c.place(0, "hft-7").expect("sent");
    assert_eq!(c.g.in_flight(), 1);
    let ack = c.event("Ack", |e| matches!(e, GatewayEvent::Ack { .. }));
    assert_eq!(ack, GatewayEvent::Ack { symbol: SymbolId(0), client_id: cid("hft-7"), order_id: 1007 });
    assert_eq!(c.g.in_flight(), 0);
    let place = venue.requests().iter().find(|r| r.method == "order.place").cloned().expect("place seen");
    assert!(place.signed_ok);
    assert_eq!(
        place.params.keys().collect::<Vec<_>>(),
        [
            "apiKey",
            "newClientOrderId",
            "newOrderRespType",
            "price",
            "quantity",
            "recvWindow",
            "side",
            "signature",
            "symbol",
            "timeInForce",
            "timestamp",
            "type"
        ]
    );
    assert_eq!((place.p("price"), place.p("quantity"), place.p("type")), ("100", "1", "LIMIT"));
    let orders_10s = c.g.rate_limits().find(|u| u.interval_num == 10).expect("ORDERS 10s known");
    assert_eq!((orders_10s.count, orders_10s.limit), (1, 50));

    // Executions pushed on the same connection.
    venue.push(execution("BTCUSDT", "hft-7", 1007, "TRADE", "PARTIALLY_FILLED", "0.50000000", "0.50000000"));
    venue.push(execution("BTCUSDT", "hft-7", 1007, "TRADE", "FILLED", "0.50000000", "1.00000000"));
    venue.push(execution("XRPUSDT", "manual", 1, "NEW", "NEW", "0", "0")); // not ours: dropped
    venue.push(
        json!({"subscriptionId": 0, "event": {"e": "outboundAccountPosition", "E": 1, "u": 1,
               "B": [{"a": "BTC", "f": "1.00000000", "l": "0.00000000"}, {"a": "USDT", "f": "900.5", "l": "0"}]}})
        .to_string(),
    );
    let from = c.until("two executions and balances", |es| {
        es.iter().filter(|e| matches!(e, GatewayEvent::Execution { .. })).count() == 2
            && es.contains(&GatewayEvent::Balances)
    });
    let execs: Vec<_> = c.events[from..]
        .iter()
        .filter_map(|e| match e {
            GatewayEvent::Execution { symbol, report } => Some((*symbol, *report)),
            _ => None,
        })
        .collect();
    let (sym, r) = execs[0];
    assert_eq!(
        (sym, r.client_id, r.order_id, r.exec, r.status),
        (SymbolId(0), cid("hft-7"), 1007, ExecType::Trade, OrderStatus::PartiallyFilled)
    );
    assert_eq!(
        (r.last_qty, r.last_px, r.cum_qty),
        (Qty::parse("0.5").unwrap(), Px::parse("100").unwrap(), Qty::parse("0.5").unwrap())
    );
    assert_eq!(
        (r.commission, r.commission_asset.as_str(), r.trade_id),
        (Qty::parse("0.001").unwrap(), "USDT", Some(555))
    );
    assert_eq!((execs[1].1.status, execs[1].1.cum_qty), (OrderStatus::Filled, Qty::ONE));
    let bal: Vec<_> = c.g.balances().iter().map(|b| (b.asset.as_str().to_string(), b.free)).collect();
    assert_eq!(bal, [("USDT".to_string(), Qty::parse("900.5").unwrap()), ("BTC".to_string(), Qty::ONE)]);
    let k = c.g.counters();
    assert_eq!((k.executions, k.foreign_executions, k.unmatched, k.malformed.iter().sum::<u64>()), (2, 1, 0, 0));

    // Cancel and cancel-all are answered too.
    let now = c.now();
    c.g.cancel(SymbolId(0), &cid("hft-7"), now).expect("cancel sent");
    assert_eq!(
        c.event("Canceled", |e| matches!(e, GatewayEvent::Canceled { .. })),
        GatewayEvent::Canceled { symbol: SymbolId(0), client_id: cid("hft-7") }
    );
    let now = c.now();
    c.g.cancel_all(SymbolId(1), now).expect("cancel-all sent");
    c.event("CanceledAll", |e| *e == GatewayEvent::CanceledAll { symbol: SymbolId(1), count: 0 });
    let cancel = venue.requests().iter().find(|r| r.method == "order.cancel").cloned().expect("cancel seen");
    assert!(cancel.signed_ok && cancel.p("origClientOrderId") == "hft-7" && cancel.p("symbol") == "BTCUSDT");
    assert!(venue.requests().iter().all(|r| r.signed_ok));
    // Invalid orders never leave.
    let mut bad = order(0, "x1");
    bad.qty = Qty::ZERO;
    let now = c.now();
    assert_eq!(c.g.place(&bad, now), Err(SendError::BadOrder));
    assert_eq!(c.place(9, "x2"), Err(SendError::BadOrder));
}

#[test]
fn a_venue_error_is_a_rejection_with_its_code() {
    let venue = Venue::start(Box::new(|_| None));
    let mut c = Client::new(params(venue.addr));
    c.ready();
    c.place(1, "rej-1").expect("sent");
    let e = c.event("Rejected", |e| matches!(e, GatewayEvent::Rejected { .. }));
    assert_eq!(
        e,
        GatewayEvent::Rejected {
            request: RequestKind::Place,
            symbol: SymbolId(1),
            client_id: cid("rej-1"),
            status: 400,
            code: -2010
        }
    );
    // Still ready: the next order goes through.
    c.place(1, "ok-2").expect("sent");
    c.event("Ack", |e| matches!(e, GatewayEvent::Ack { client_id, .. } if *client_id == cid("ok-2")));
    assert_eq!((c.g.counters().rejected, c.g.counters().disconnects), (1, 0));
}

#[test]
fn a_dropped_connection_reconnects_resubscribes_and_reconciles_the_lost_order() {
    let mut venue = Venue::start(Box::new(|req: &Req| {
        // The second connection: BTCUSDT has an open order, and the lost place was filled.
        (req.conn == 2).then(|| match req.method.as_str() {
            "openOrders.status" if req.p("symbol") == "BTCUSDT" => {
                vec![ok(req, json!([order_json("BTCUSDT", "open-1", 77, "NEW", "0")]))]
            }
            "order.status" => {
                vec![ok(req, order_json("ETHUSDT", req.p("origClientOrderId"), 88, "FILLED", "1.00000000"))]
            }
            _ => standard(req),
        })
    }));
    let mut c = Client::new(params(venue.addr));
    c.ready();
    c.place(1, "hold-1").expect("sent"); // never answered
    // Let the venue read it before it drops the connection.
    let deadline = Instant::now() + WAIT;
    while !venue.requests().iter().any(|r| r.method == "order.place") {
        assert!(Instant::now() < deadline, "place not seen");
        c.g.poll(c.now());
        std::thread::sleep(Duration::from_millis(1));
    }
    venue.drop_connection();
    let from = c.until("Disconnected", |es| es.iter().any(|e| matches!(e, GatewayEvent::Disconnected(_))));
    assert_eq!(
        c.events[from],
        GatewayEvent::Lost { request: RequestKind::Place, symbol: SymbolId(1), client_id: cid("hold-1") }
    );
    assert!(matches!(c.events[from + 1], GatewayEvent::Disconnected(DownReason::Link(_))), "{:?}", c.events[from + 1]);
    assert!(!c.g.is_ready());
    assert_eq!(c.place(0, "x-1"), Err(SendError::NotReady));

    // Reconnect (after the backoff), resubscribe, reconcile — including the lost order — and Ready.
    let from = c.until("Ready again", |es| es.contains(&GatewayEvent::Ready));
    assert_eq!(
        venue.methods(2),
        [
            "userDataStream.subscribe.signature",
            "openOrders.status",
            "openOrders.status",
            "account.status",
            "order.status"
        ]
    );
    let query = venue.requests().iter().find(|r| r.method == "order.status").cloned().unwrap();
    assert!(query.signed_ok && query.p("origClientOrderId") == "hold-1" && query.p("symbol") == "ETHUSDT");
    let evs = &c.events[from..];
    assert_eq!(evs[0], GatewayEvent::OpenOrders { symbol: SymbolId(0), count: 1, complete: true });
    let GatewayEvent::OrderState { symbol, order } = evs[3] else { panic!("{evs:?}") };
    assert_eq!(
        (symbol, order.client_id, order.status, order.executed),
        (SymbolId(1), cid("hold-1"), Some(OrderStatus::Filled), Qty::ONE)
    );
    assert_eq!(evs.last(), Some(&GatewayEvent::Ready));
    assert_eq!(c.g.open_orders(SymbolId(0))[0].client_id, cid("open-1"));
    assert!(c.g.open_orders(SymbolId(1)).is_empty());
    // Orders flow again.
    c.place(0, "after-3").expect("sent");
    c.event("Ack", |e| matches!(e, GatewayEvent::Ack { order_id: 1003, .. }));

    // The venue ends the user-data subscription: drop, reconnect, resubscribe, reconcile.
    venue.push(json!({"subscriptionId": 0, "event": {"e": "eventStreamTerminated", "E": 1}}).to_string());
    c.event("terminated", |e| *e == GatewayEvent::Disconnected(DownReason::StreamTerminated));
    c.until("Ready a third time", |es| es.contains(&GatewayEvent::Ready));
    assert_eq!(venue.methods(3)[0], "userDataStream.subscribe.signature");
    assert!(venue.requests().iter().all(|r| r.signed_ok));
    assert_eq!(c.g.counters().link.traffic.connects, 3);
}

#[test]
fn an_overdue_answer_drops_the_connection_and_reconciles() {
    let venue = Venue::start(Box::new(|_| None));
    let mut p = params(venue.addr);
    p.request_timeout_ms = 300;
    let mut c = Client::new(p);
    c.ready();
    let t = Instant::now();
    c.place(0, "hold-2").expect("sent");
    let from = c.until("timeout", |es| es.iter().any(|e| matches!(e, GatewayEvent::Disconnected(_))));
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(
        &c.events[from..from + 2],
        [
            GatewayEvent::Lost { request: RequestKind::Place, symbol: SymbolId(0), client_id: cid("hold-2") },
            GatewayEvent::Disconnected(DownReason::RequestTimeout(RequestKind::Place)),
        ]
    );
    // The venue does not know the order: the query is refused with -2013, then Ready.
    let from = c.until("Ready again", |es| es.contains(&GatewayEvent::Ready));
    assert!(c.events[from..].contains(&GatewayEvent::Rejected {
        request: RequestKind::Query,
        symbol: SymbolId(0),
        client_id: cid("hold-2"),
        status: 400,
        code: -2013
    }));
}

#[test]
fn a_refused_subscription_is_retried_with_backoff() {
    let mut venue = Venue::start(Box::new(|req: &Req| {
        (req.method == "userDataStream.subscribe.signature" && req.conn <= 2).then(|| vec![err(req, 401, -2015)])
    }));
    let mut c = Client::new(params(venue.addr));
    let t = Instant::now();
    c.ready();
    let refused = DownReason::Refused { request: RequestKind::Subscribe, status: 401, code: -2015 };
    assert_eq!(c.events.iter().filter(|e| **e == GatewayEvent::Disconnected(refused)).count(), 2, "{:?}", c.events);
    // Two refusals: 50 ms, then 50..100 ms of backoff.
    assert!(t.elapsed() >= Duration::from_millis(100), "{:?}", t.elapsed());
    assert_eq!(venue.methods(1), ["userDataStream.subscribe.signature"]);
    assert_eq!(venue.methods(3)[0], "userDataStream.subscribe.signature");
    assert_eq!(venue.methods(3).len(), 4);
}

#[test]
fn orders_are_throttled_when_the_venue_count_reaches_its_limit() {
    let venue = Venue::start(Box::new(|req: &Req| {
        (req.method == "order.place").then(|| {
            let limits = json!([{"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 2, "count": 2}]);
            let ack = json!({"symbol": "BTCUSDT", "orderId": 1, "clientOrderId": req.p("newClientOrderId"), "transactTime": 1});
            vec![Reply::Text(json!({"id": req.id, "status": 200, "result": ack, "rateLimits": limits}).to_string())]
        })
    }));
    let mut c = Client::new(params(venue.addr));
    c.ready();
    c.place(0, "a-1").expect("sent");
    let from = c.until("Ack", |es| es.iter().any(|e| matches!(e, GatewayEvent::Ack { .. })));
    // The answer's usage is reported first (it reached the warning level), then the ack.
    let GatewayEvent::RateLimit(u) = c.events[from] else { panic!("{:?}", c.events) };
    assert_eq!((u.count, u.limit, u.interval_num), (2, 2, 1));
    assert_eq!(c.place(0, "a-2"), Err(SendError::Throttled));
    // Cancels do not count against ORDERS.
    let now = c.now();
    c.g.cancel(SymbolId(0), &cid("a-1"), now).expect("cancel still allowed");
    c.event("Canceled", |e| matches!(e, GatewayEvent::Canceled { .. }));
    assert_eq!(c.g.counters().throttled, 1);
}

#[test]
fn malformed_answers_and_events_change_nothing_else() {
    let venue = Venue::start(Box::new(|req: &Req| {
        (req.method == "order.place").then(|| {
            let mut out: Vec<Reply> = [
                "not json at all",
                "{\"id\":",
                "[1,2,3]",
                "{\"id\":1,\"status\":\"200\"}",
                "{\"id\":1,\"status\":200,\"status\":200}",
                "{\"id\":123456789,\"status\":200,\"result\":{}}",
                "{\"id\":1e400,\"status\":200}",
                "{\"subscriptionId\":0,\"event\":{\"e\":\"executionReport\",\"s\":\"BTCUSDT\"}}",
                "{\"subscriptionId\":0,\"event\":{\"e\":\"executionReport\",\"E\":1,\"s\":\"BTCUSDT\",\"c\":\"a\",\"S\":\"BUY\",\"x\":\"NEW\",\"X\":\"MYSTERY\",\"i\":1,\"l\":\"0\",\"z\":\"0\",\"L\":\"0\"}}",
                "{\"subscriptionId\":0,\"event\":{\"e\":\"somethingNew\",\"E\":1}}",
                "{\"subscriptionId\":0,\"event\":\"oops\"}",
                "{\"id\":1,\"status\":200,\"rateLimits\":[{\"rateLimitType\":\"ORDERS\",\"interval\":\"SECOND\",\"intervalNum\":0,\"limit\":1,\"count\":1}]}",
                "\u{0}\u{1}",
                "",
            ]
            .into_iter()
            .map(|s| Reply::Text(s.to_string()))
            .collect();
            out.push(Reply::Binary(vec![0xFF, 0x00]));
            out.extend(standard(req));
            out
        })
    }));
    let mut c = Client::new(params(venue.addr));
    c.ready();
    c.place(0, "m-1").expect("sent");
    c.event("Ack after the garbage", |e| matches!(e, GatewayEvent::Ack { .. }));
    let k = c.g.counters();
    assert!(k.malformed.iter().sum::<u64>() >= 10, "{k:?}");
    assert!(k.unmatched >= 1 && k.ignored >= 1 && k.link.traffic.binary_ignored == 1, "{k:?}");
    assert_eq!((k.disconnects, k.executions), (0, 0));
    assert!(c.g.is_ready());
    assert!(c.events.iter().all(|e| !matches!(e, GatewayEvent::Execution { .. } | GatewayEvent::Disconnected(_))));
}

#[test]
fn placing_and_handling_answers_and_executions_allocate_nothing_after_warm_up() {
    let venue = Venue::start(Box::new(|req: &Req| {
        (req.method == "order.place").then(|| {
            let cid = req.p("newClientOrderId").to_string();
            let mut out = standard(req);
            out.push(Reply::Text(execution("BTCUSDT", &cid, 1, "TRADE", "FILLED", "1.00000000", "1.00000000")));
            out
        })
    }));
    let mut c = Client::new(params(venue.addr));
    c.ready();
    // Warm-up: one full cycle.
    c.place(0, "w-0").expect("sent");
    c.until("warm-up", |es| es.iter().any(|e| matches!(e, GatewayEvent::Execution { .. })));

    // 41 orders in all: under the venue's 50 per 10 s.
    const N: u64 = 40;
    let (mut acks, mut execs) = (0u64, 0u64);
    let deadline = Instant::now() + WAIT;
    let before = common::alloc::watch(true);
    for i in 1..=N {
        let o = NewOrder { client_id: ClientId::numbered("z-", i).unwrap(), ..order(0, "z-0") };
        let now = c.now();
        let sent = c.g.place(&o, now);
        if sent.is_err() {
            common::alloc::watch(false);
            panic!("place {i}: {sent:?}");
        }
        while execs < i {
            let now = c.now();
            let work = c.g.poll(now);
            while let Some(e) = c.g.take_event() {
                match e {
                    GatewayEvent::Ack { .. } => acks += 1,
                    GatewayEvent::Execution { .. } => execs += 1,
                    GatewayEvent::RateLimit(_) | GatewayEvent::Balances => {}
                    other => {
                        common::alloc::watch(false);
                        panic!("unexpected {other:?}");
                    }
                }
            }
            if Instant::now() >= deadline {
                common::alloc::watch(false);
                panic!("timed out at order {i}: {:?}", c.g.counters());
            }
            if !work {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }
    let allocs = common::alloc::watch(false) - before;
    assert_eq!((acks, execs), (N, N));
    assert_eq!(allocs, 0, "allocations on the client thread over {N} place → ack → execution cycles");
}

// ---- TLS ----------------------------------------------------------------------------------------

/// The private CA and `localhost` leaf of `ws_feed.rs` (P-256; valid 2020–2120; test use only).
const CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBYDCCAQagAwIBAgICEAEwCgYIKoZIzj0EAwIwFjEUMBIGA1UEAwwLaGZ0IHRl
c3QgQ0EwIBcNMjAwMTAxMDAwMDAwWhgPMjEyMDAxMDEwMDAwMDBaMBYxFDASBgNV
BAMMC2hmdCB0ZXN0IENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE0+KDIbsK
Lzz68RyPPsyMm4BqBjZTKZ4ecySiRMdCEKNqs25tyB3f6xWVCc9YYxJlCLNOiveS
aZgrIfiFYaT3naNCMEAwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAQYw
HQYDVR0OBBYEFOF8wXcfhW4BUuAgB+NiuLXZUXgQMAoGCCqGSM49BAMCA0gAMEUC
IQD3B/BYGr8jXuctoWKswqw5Bcpzb2SNNSqHUV8hmBWLPgIgKWVxEs7RymZjlR4w
pbIdxhUK6oBwbf9TYCEUkX+FjEo=
-----END CERTIFICATE-----
";
const LEAF_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBrzCCAVWgAwIBAgICEAIwCgYIKoZIzj0EAwIwFjEUMBIGA1UEAwwLaGZ0IHRl
c3QgQ0EwIBcNMjAwMTAxMDAwMDAwWhgPMjEyMDAxMDEwMDAwMDBaMBQxEjAQBgNV
BAMMCWxvY2FsaG9zdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABIAwzfgx5TPI
Ipqvb2f/1f2eZKpbcTjWwUNHDA/aQM9AMwk0zCtCj///FvmI96AL4htxr3x/VoLW
hRwoFxXDuOijgZIwgY8wDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYD
VR0lBAwwCgYIKwYBBQUHAwEwGgYDVR0RBBMwEYIJbG9jYWxob3N0hwR/AAABMB0G
A1UdDgQWBBSP03cj0brnLWgjr6cR8UOTfzFrsTAfBgNVHSMEGDAWgBThfMF3H4Vu
AVLgIAfjYri12VF4EDAKBggqhkjOPQQDAgNIADBFAiEA/2maStuHSAoEZXCPGJ8W
2/WFpfr9v1QdjhAnB1jkYMECIFZlPLPatwlMfH4eTN1gYEqyvlWCy8GRcRfEGj2t
uRSI
-----END CERTIFICATE-----
";
const LEAF_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgP2u2Nn4tpSiXxxYR
9KTM3entcLlRP3ef+QyPNUrifFqhRANCAASAMM34MeUzyCKar29n/9X9nmSqW3E4
1sFDRwwP2kDPQDMJNMwrQo///xb5iPegC+Ibca98f1aC1oUcKBcVw7jo
-----END PRIVATE KEY-----
";

fn tls_server_config() -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let cert = CertificateDer::from_pem_slice(LEAF_PEM.as_bytes()).unwrap();
    let key = PrivateKeyDer::from_pem_slice(LEAF_KEY.as_bytes()).unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    Arc::new(cfg)
}

#[test]
fn wss_with_a_private_ca_over_a_resolved_name() {
    use rustls::pki_types::pem::PemObject;
    let venue = Venue::start_tls(Box::new(|req: &Req| {
        (req.method == "order.place").then(|| {
            let cid = req.p("newClientOrderId").to_string();
            let mut out = standard(req);
            out.push(Reply::Text(execution("ETHUSDT", &cid, 2, "TRADE", "FILLED", "1.00000000", "1.00000000")));
            out
        })
    }));
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from_pem_slice(CA_PEM.as_bytes()).unwrap()).unwrap();
    let mut p = params(venue.addr);
    // A host name: resolved on a helper thread (`localhost` may list ::1 first, where nothing
    // listens: the next address is tried).
    p.api_url = format!("wss://localhost:{}/ws-api/v3", venue.addr.port());
    p.tls = Some(hft_engine::feed::ws::conn::tls_config_with_roots(roots).unwrap());
    let mut c = Client::new(p);
    c.ready();
    c.place(1, "tls-1").expect("sent");
    c.event("Ack", |e| matches!(e, GatewayEvent::Ack { order_id: 1001, .. }));
    let e = c.event("Execution", |e| matches!(e, GatewayEvent::Execution { .. }));
    let GatewayEvent::Execution { symbol, report } = e else { unreachable!() };
    assert_eq!((symbol, report.client_id, report.status), (SymbolId(1), cid("tls-1"), OrderStatus::Filled));
}

// ---- the engine's pipeline over the gateway -----------------------------------------------------

/// An order the engine placed, as the venue saw it.
#[derive(Clone, Debug)]
struct Placed {
    cid: String,
    side: String,
    qty: Qty,
    px: Px,
}

impl Placed {
    /// The order an `order.place` request places.
    fn from_request(req: &Req) -> Self {
        Placed {
            cid: req.p("newClientOrderId").to_string(),
            side: req.p("side").to_string(),
            qty: Qty::parse(req.p("quantity")).expect("quantity"),
            px: Px::parse(req.p("price")).expect("price"),
        }
    }

    /// The venue's view of this order (an `openOrders.status` entry or an `order.status`
    /// result), `executed` of it done for `quote`.
    fn json(&self, order_id: usize, status: &str, executed: Qty, quote: Amount) -> Value {
        json!({"symbol": "BTCUSDT", "orderId": order_id, "orderListId": -1, "clientOrderId": self.cid,
               "price": self.px.to_string(), "origQty": self.qty.to_string(), "executedQty": executed.to_string(),
               "cummulativeQuoteQty": fmt8(quote), "status": status, "timeInForce": "GTC", "type": "LIMIT",
               "side": self.side, "time": 1, "updateTime": 2})
    }
}

/// `qty × px` in quote units, to 8 decimals (rounded down, as the venue prints it).
fn quote8(px: Px, qty: Qty) -> String {
    fmt8(Amount::notional(px, qty))
}

/// A non-negative amount to 8 decimals (rounded down).
fn fmt8(a: Amount) -> String {
    let raw = a.raw() / 100_000_000;
    format!("{}.{:08}", raw / 100_000_000, raw % 100_000_000)
}

/// A `TRADE` execution report of `p`: this trade `last` at the order's price, cumulatively `cum`
/// for `cum × px` of quote.
fn trade_report(p: &Placed, last: Qty, cum: Qty) -> String {
    let status = if cum == p.qty { "FILLED" } else { "PARTIALLY_FILLED" };
    json!({"subscriptionId": 0, "event": {
        "e": "executionReport", "E": 1_700_000_000_100u64, "s": "BTCUSDT", "c": p.cid, "S": p.side, "o": "LIMIT",
        "f": "GTC", "q": p.qty.to_string(), "p": p.px.to_string(), "P": "0.00000000", "F": "0.00000000", "g": -1,
        "C": "", "x": "TRADE", "X": status, "r": "NONE", "i": 1000, "l": last.to_string(), "z": cum.to_string(),
        "L": p.px.to_string(), "n": "0", "N": "USDT", "T": 1_700_000_000_099u64, "t": 555, "I": 1, "w": true,
        "m": true, "M": true, "O": 1, "Z": quote8(p.px, cum), "Y": "0", "Q": "0", "W": 1, "V": "NONE"}})
    .to_string()
}

/// Polls the pipeline's gateway (unix time) until `done`, within [`WAIT`].
fn pump(p: &mut Pipeline, unix_now: &dyn Fn() -> u64, what: &str, done: impl Fn(&Pipeline) -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done(p) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {:?}", p.counters());
        if p.poll_live(unix_now()) == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

/// The engine's pipeline in live mode (limit orders) against `venue`, fed the synthetic market
/// until a strategy places an order and the venue acknowledges it: that order as placed
/// (`placed` records what the venue saw) and its id.
struct LiveOrder {
    p: Pipeline,
    rx: rtrb::Consumer<Event>,
    /// Unix ns, on the gateway's clock.
    now: Box<dyn Fn() -> u64>,
    o: Placed,
    id: hft_shared::OrderId,
}

fn live_order(venue: &Venue, placed: &Arc<Mutex<Vec<Placed>>>) -> LiveOrder {
    let cfg = Config::from_toml_str("[exec]\norder_type = \"limit\"\nlimit_ttl_ms = 600000\n", &|_| None).unwrap();
    assert_eq!(cfg.symbols, ["BTCUSDT"]);
    let (tx, mut rx) = rtrb::RingBuffer::new(1 << 16);
    let mut p = Pipeline::new(&cfg, tx);
    let mut lp = params(venue.addr);
    lp.symbols = cfg.symbols.clone();
    p.set_live(LiveGateway::new(lp, &Secret::new(KEY.into()), &Secret::new(SECRET.into())).expect("gateway"));
    let (unix0, t0) = (SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_nanos() as u64, Instant::now());
    let now: Box<dyn Fn() -> u64> = Box::new(move || unix0 + t0.elapsed().as_nanos() as u64);
    pump(&mut p, &now, "Ready", |p| p.counters().venue_ready == 1);

    // The market (on the same unix clock as the gateway) until a strategy places an order.
    let mut m = SyntheticMarket::new(&synthetic_params(&cfg)[0]);
    let raw = p.clock().raw();
    p.on_frame(FrameKind::Snapshot(SymbolId(0)), m.snapshot(), raw, now());
    let deadline = Instant::now() + WAIT;
    while p.orders().open_count() == 0 {
        assert!(Instant::now() < deadline, "no order placed: {:?}", p.counters());
        let (bytes, _) = m.next_frame();
        let raw = p.clock().raw();
        p.on_frame(FrameKind::Stream, bytes, raw, now());
        p.poll_live(now());
        while rx.pop().is_ok() {}
    }
    pump(&mut p, &now, "the acks", |p| p.orders().open_orders().iter().all(|o| o.status == OrderStatus::New));
    let o = placed.lock().unwrap()[0].clone();
    let id = p.orders().open_orders().iter().find(|x| x.client_id.as_bytes() == o.cid.as_bytes()).expect("ours").id;
    LiveOrder { p, rx, now, o, id }
}

/// An order that traded 3/10 (reported) and then the rest while the connection was down, at
/// another price: the reconnected venue no longer lists it, `order.status` answers it FILLED,
/// and the engine books the 7/10 it missed at the price the totals imply for that part — not
/// at the order's average over all of it — and the order is done.
#[test]
fn an_order_finished_while_disconnected_books_the_missed_part_at_its_own_price() {
    let placed: Arc<Mutex<Vec<Placed>>> = Arc::default();
    let seen = placed.clone();
    // The price the rest traded at: one quote unit above the order's.
    let rest_px = |o: &Placed| Px(o.px.raw() + 100_000_000);
    let venue = Venue::start(Box::new(move |req: &Req| match (req.conn, req.method.as_str()) {
        (1, "order.place") if req.signed_ok => {
            seen.lock().unwrap().push(Placed::from_request(req));
            None
        }
        // Reconnected: the first order is finished, so not listed; any other is still open.
        (2, "openOrders.status") => {
            let list: Vec<Value> = seen.lock().unwrap()[1..]
                .iter()
                .enumerate()
                .map(|(i, p)| p.json(1001 + i, "NEW", Qty::ZERO, Amount::ZERO))
                .collect();
            Some(vec![ok(req, Value::Array(list))])
        }
        (2, "order.status") => {
            let o = seen.lock().unwrap()[0].clone();
            assert_eq!(req.p("origClientOrderId"), o.cid);
            let first = Qty(o.qty.raw() * 3 / 10);
            let quote = Amount::notional(o.px, first) + Amount::notional(rest_px(&o), Qty(o.qty.raw() - first.raw()));
            Some(vec![ok(req, o.json(1000, "FILLED", o.qty, quote))])
        }
        _ => None,
    }));
    let LiveOrder { mut p, mut rx, now, o, id } = live_order(&venue, &placed);
    let sign = if o.side == "BUY" { 1 } else { -1 };
    let first = Qty(o.qty.raw() * 3 / 10);
    let rest = Qty(o.qty.raw() - first.raw());
    // (Exact quote totals at 8 decimals: the prices they imply are exact.)
    assert_eq!(Amount::notional(o.px, first).raw() % 100_000_000, 0, "{o:?}");
    assert_eq!(Amount::notional(rest_px(&o), rest).raw() % 100_000_000, 0, "{o:?}");

    // 3/10 trades and is reported on the live connection.
    venue.push(trade_report(&o, first, first));
    pump(&mut p, &now, "the first trade", |p| p.counters().fills == 1);
    assert_eq!(p.orders().get_open(id).map(|x| x.filled), Some(first));
    while rx.pop().is_ok() {}

    // The connection drops; the rest trades meanwhile; reconnect, reconcile, ask.
    venue.drop_connection();
    pump(&mut p, &now, "Ready again", |p| p.counters().venue_ready == 2 && p.orders().get_open(id).is_none());
    assert_eq!(p.counters().fills, 2);
    assert_eq!(p.position(SymbolId(0)).qty, Qty(sign * o.qty.raw()), "the whole order is in the position");
    let fills: Vec<_> = std::iter::from_fn(|| rx.pop().ok())
        .filter_map(|e| match e {
            Event::Fill(f) => Some(f),
            _ => None,
        })
        .collect();
    assert_eq!(
        fills.iter().map(|f| (f.order, f.qty, f.px, f.last)).collect::<Vec<_>>(),
        [(id, rest, rest_px(&o), true)]
    );
}

/// A live order partially filled while the connection was down (its trade report went to the
/// dropped connection) is listed by the venue on reconnection as executed further than the
/// engine booked: reconciliation books the difference — and the report of that same trade,
/// arriving later, does not book it twice, while a genuinely new trade is booked.
#[test]
fn a_fill_made_while_disconnected_is_booked_from_the_listing_once() {
    fill_made_while_disconnected(false);
}

/// As above, but the order trades again after the venue listed it and that trade's report comes
/// before reconciliation ends: its cumulative quantity books the missed fill with it, and the
/// (older) listing books nothing more — none lost, none twice.
#[test]
fn a_trade_reported_during_reconciliation_books_the_missed_fill_with_it() {
    fill_made_while_disconnected(true);
}

/// The engine's pipeline in live mode places an order (a strategy's, on the synthetic market),
/// the venue acknowledges it, the connection drops, and 3/10 of the order trades meanwhile; the
/// reconnected venue lists it so. With `report_during_reconcile`, 2/10 more trades after the
/// listing and its report arrives before the account's answer (so before `Ready`).
fn fill_made_while_disconnected(report_during_reconcile: bool) {
    let placed: Arc<Mutex<Vec<Placed>>> = Arc::default();
    let seen = placed.clone();
    let venue = Venue::start(Box::new(move |req: &Req| {
        match (req.conn, req.method.as_str()) {
            (1, "order.place") if req.signed_ok => {
                seen.lock().unwrap().push(Placed::from_request(req));
                None // acknowledged as usual
            }
            (2, "account.status") if report_during_reconcile => {
                let o = seen.lock().unwrap()[0].clone();
                let (more, total) = (Qty(o.qty.raw() * 2 / 10), Qty(o.qty.raw() * 3 / 10 + o.qty.raw() * 2 / 10));
                Some(std::iter::once(Reply::Text(trade_report(&o, more, total))).chain(standard(req)).collect())
            }
            // Reconnected: every order is still open; the first was 3/10 executed meanwhile.
            (2, "openOrders.status") => {
                let list: Vec<Value> = seen
                    .lock()
                    .unwrap()
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        let executed = if i == 0 { Qty(p.qty.raw() * 3 / 10) } else { Qty::ZERO };
                        let status = if i == 0 { "PARTIALLY_FILLED" } else { "NEW" };
                        p.json(1000 + i, status, executed, Amount::notional(p.px, executed))
                    })
                    .collect();
                Some(vec![ok(req, Value::Array(list))])
            }
            _ => None,
        }
    }));
    let LiveOrder { mut p, mut rx, now, o, id } = live_order(&venue, &placed);
    let sign = if o.side == "BUY" { 1 } else { -1 };
    let (filled, fills) = (|p: &Pipeline| p.orders().get_open(id).map(|x| x.filled), |p: &Pipeline| p.counters().fills);
    assert_eq!((filled(&p), fills(&p), p.position(SymbolId(0)).qty), (Some(Qty::ZERO), 0, Qty::ZERO));

    // The connection drops; 3/10 of the order trades meanwhile; reconnect and reconcile.
    venue.drop_connection();
    pump(&mut p, &now, "Ready again", |p| p.counters().venue_ready == 2);
    let part = |tenths: i64| Qty(o.qty.raw() * tenths / 10);
    let (missed, more) = (part(3), part(2));
    assert!(more.raw() > 0, "{o:?}");
    // (Exact quote totals at 8 decimals: the price they imply is the order's.)
    assert_eq!(Amount::notional(o.px, missed).raw() % 100_000_000, 0, "{o:?}");
    let mut total = missed;
    if report_during_reconcile {
        total = Qty(missed.raw() + more.raw());
    }
    assert_eq!(filled(&p), Some(total), "the fill made while disconnected is booked");
    assert_eq!(p.position(SymbolId(0)).qty, Qty(sign * total.raw()));
    assert_eq!(fills(&p), 1 + u64::from(report_during_reconcile));
    let fill = std::iter::from_fn(|| rx.pop().ok())
        .find_map(|e| match e {
            Event::Fill(f) => Some(f),
            _ => None,
        })
        .expect("a fill event");
    assert_eq!((fill.order, fill.qty, fill.px, fill.fee), (id, missed, o.px, Amount::ZERO));

    // The reports of the trades booked arrive (again): the cumulative quantity (`z`) shows them
    // booked. Then a new trade of 2/10 (the cumulative quantity grows): booked.
    venue.push(trade_report(&o, missed, missed));
    if report_during_reconcile {
        venue.push(trade_report(&o, more, total));
    }
    let booked = fills(&p);
    let before = total;
    total = Qty(total.raw() + more.raw());
    venue.push(trade_report(&o, more, total));
    pump(&mut p, &now, "the new trade", |p| p.counters().fills > booked);
    assert_eq!(filled(&p), Some(total), "the new trade is booked, the reported ones not twice");
    assert_eq!(p.position(SymbolId(0)).qty, Qty(sign * total.raw()));
    assert_eq!(fills(&p), booked + 1);
    let fill = std::iter::from_fn(|| rx.pop().ok()).filter_map(|e| match e {
        Event::Fill(f) => Some(f),
        _ => None,
    });
    assert_eq!(fill.map(|f| (f.qty, f.px)).last(), Some((Qty(total.raw() - before.raw()), o.px)));
    assert_eq!(p.orders().get_open(id).map(|x| x.status), Some(OrderStatus::PartiallyFilled));
}
