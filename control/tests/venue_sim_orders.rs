//! End-to-end: `hft venue-sim` as a venue. The real binary on loopback, driven over its signed
//! WebSocket API the way the engine's live gateway would: orders placed, filled and canceled
//! against the market it serves, Binance's error codes, the account, user-data events, the
//! order-rate limit, and the wire-to-wire latency endpoint.
//!
//! Each test starts its own process (`--listen 127.0.0.1:0`, a fresh temp working dir, a
//! cleared environment, so the account's key is Binance's documented example pair) and kills
//! it on drop. Requests are signed here, with hmac/sha2, as Binance documents.

mod common;

use common::Running;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;
use std::collections::VecDeque;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tungstenite::{Message, WebSocket};

/// Binance's documented example key pair: the simulator's default credentials.
const API_KEY: &str = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
const API_SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
/// Reads that see nothing for this long fail the test.
const READ_TIMEOUT: Duration = Duration::from_secs(15);

type Ws = WebSocket<TcpStream>;

/// A running `hft venue-sim`: killed and reaped on drop, whatever the test did.
struct Sim {
    run: Running,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Sim {
    /// Starts `hft venue-sim --listen 127.0.0.1:0 ARGS` in `dir` and waits for its banner.
    fn start(dir: tempfile::TempDir, args: &[&str]) -> Sim {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hft"));
        cmd.arg("venue-sim")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .current_dir(dir.path())
            .env_clear()
            .env("RUST_LOG", "info")
            .stdin(Stdio::null());
        let run = Running::spawn(cmd);
        let banner = run
            .stdout
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no banner within 30 s; stderr:\n{}", run.stderr_text()));
        let port = banner.strip_prefix("venue-sim listening on ws://127.0.0.1:").and_then(|p| p.parse().ok());
        let port = port.unwrap_or_else(|| panic!("unexpected banner {banner:?}"));
        Sim { run, port, _dir: dir }
    }

    fn ws(&self, path: &str) -> Ws {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        stream.set_read_timeout(Some(READ_TIMEOUT)).expect("read timeout");
        stream.set_nodelay(true).expect("nodelay");
        let url = format!("ws://127.0.0.1:{}{path}", self.port);
        tungstenite::client(url.as_str(), stream).unwrap_or_else(|e| panic!("WebSocket {path}: {e}")).0
    }

    fn api(&self) -> Api {
        Api { ws: self.ws("/ws-api/v3"), events: VecDeque::new(), next_id: 0 }
    }

    fn get(&self, path: &str) -> Value {
        let mut res = common::agent().get(format!("http://127.0.0.1:{}{path}", self.port)).call().expect("GET");
        assert_eq!(res.status().as_u16(), 200, "GET {path}");
        res.body_mut().read_json::<Value>().expect("JSON body")
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis() as u64
}

/// Binance's signature: HMAC-SHA256 (hex) of the parameters but `signature`, sorted by name,
/// `name=value` joined with `&`.
fn signature(secret: &str, params: &Map<String, Value>) -> String {
    let payload = params
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join("&");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(payload.as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// `params` with `apiKey`, `timestamp` and a signature by `secret` added (a `serde_json::Map`
/// is sorted by name, as the payload must be).
fn sign_with(key: &str, secret: &str, timestamp: u64, params: Value) -> Value {
    let mut p = match params {
        Value::Object(m) => m,
        other => panic!("params must be an object: {other}"),
    };
    p.insert("apiKey".into(), key.into());
    p.insert("timestamp".into(), timestamp.into());
    let sig = signature(secret, &p);
    p.insert("signature".into(), sig.into());
    Value::Object(p)
}

fn signed(params: Value) -> Value {
    sign_with(API_KEY, API_SECRET, now_ms(), params)
}

/// A WS-API connection: replies matched by id, user-data events queued as they arrive.
struct Api {
    ws: Ws,
    events: VecDeque<Value>,
    next_id: u64,
}

impl Api {
    fn read(&mut self) -> Value {
        let t0 = Instant::now();
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    return serde_json::from_str(t.as_str()).unwrap_or_else(|e| panic!("not JSON ({e}): {t}"));
                }
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {
                    assert!(t0.elapsed() < READ_TIMEOUT, "only pings for {READ_TIMEOUT:?}");
                }
                Ok(m) => panic!("unexpected message {m:?}"),
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// Sends `{"id","method","params"}` and returns the reply with that id.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = format!("r{}", self.next_id);
        let req = json!({"id": id, "method": method, "params": params});
        self.ws.send(Message::Text(req.to_string().into())).expect("send");
        loop {
            let v = self.read();
            if v.get("subscriptionId").is_some() {
                self.events.push_back(v);
            } else if v["id"] == id {
                return v;
            } else {
                panic!("a reply to another request: {v}");
            }
        }
    }

    /// A signed call that must succeed: its `result`.
    fn ok(&mut self, method: &str, params: Value) -> Value {
        let v = self.call(method, signed(params));
        assert_eq!(v["status"], 200, "{method}: {v}");
        v["result"].clone()
    }

    /// A call that must fail: `(status, code, msg)`.
    fn err(&mut self, method: &str, params: Value) -> (u64, i64, String) {
        let v = self.call(method, params);
        assert!(v["result"].is_null() && v["rateLimits"].is_array(), "{method}: {v}");
        let msg = v["error"]["msg"].as_str().unwrap_or_else(|| panic!("no error msg: {v}")).to_owned();
        (v["status"].as_u64().unwrap_or(0), v["error"]["code"].as_i64().unwrap_or(0), msg)
    }

    /// The next user-data event (its `event` object).
    fn event(&mut self) -> Value {
        let v = match self.events.pop_front() {
            Some(v) => v,
            None => self.read(),
        };
        assert_eq!(v["subscriptionId"], 0, "not a user-data event: {v}");
        v["event"].clone()
    }
}

/// The next text message of a stream connection, as JSON.
fn next_frame(ws: &mut Ws) -> Value {
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => return serde_json::from_str(t.as_str()).expect("JSON frame"),
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
            Ok(m) => panic!("unexpected message {m:?}"),
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// When the first print of [`write_capture`] is served, after its first frame.
const FIRST_PRINT: Duration = Duration::from_secs(4);

/// A hand-made BTCUSDT capture (plain text, `<ns> <json>` per line): a snapshot (bids 100 × 5,
/// 99 × 10; asks 101 × 1.5, 102 × 5), a diff (`u` 101, adds a bid 98 × 1) and a ticker at the
/// start, then sells hitting the 100 bid: 3 at +4 s, 3 at +4.5 s, 1 at +5 s.
fn write_capture(dir: &Path) -> String {
    const T: u64 = 1_700_000_000_000_000_000;
    const S: u64 = 1_000_000_000;
    let trade = |t: u64, q: &str| {
        format!(
            r#"{{"stream":"btcusdt@trade","data":{{"e":"trade","E":1,"s":"BTCUSDT","t":{t},"p":"100.00000000","q":"{q}","T":1,"m":true,"M":true}}}}"#
        )
    };
    let lines = [
        (
            T - 1_000_000,
            r#"{"lastUpdateId":100,"bids":[["100.00000000","5.00000000"],["99.00000000","10.00000000"]],"asks":[["101.00000000","1.50000000"],["102.00000000","5.00000000"]]}"#.to_owned(),
        ),
        (
            T,
            r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":101,"u":101,"b":[["98.00000000","1.00000000"]],"a":[]}}"#.to_owned(),
        ),
        (
            T + 10_000_000,
            r#"{"stream":"btcusdt@bookTicker","data":{"u":101,"s":"BTCUSDT","b":"100.00000000","B":"5.00000000","a":"101.00000000","A":"1.50000000"}}"#.to_owned(),
        ),
        (T + FIRST_PRINT.as_nanos() as u64, trade(1, "3.00000000")),
        (T + 9 * S / 2, trade(2, "3.00000000")),
        (T + 5 * S, trade(3, "1.00000000")),
    ];
    let path = dir.join("orders.txt");
    let text: String = lines.iter().map(|(ns, json)| format!("{ns} {json}\n")).collect();
    std::fs::write(&path, text).expect("write capture");
    path.to_str().expect("UTF-8 path").to_owned()
}

/// The free and locked balance of `asset` in an `account.status` result.
fn balance(account: &Value, asset: &str) -> (String, String) {
    let b = account["balances"]
        .as_array()
        .and_then(|a| a.iter().find(|b| b["asset"] == asset))
        .unwrap_or_else(|| panic!("no {asset} in {account}"));
    (b["free"].as_str().unwrap_or("").to_owned(), b["locked"].as_str().unwrap_or("").to_owned())
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

#[test]
fn orders_fill_against_the_served_book_with_user_data_and_latency() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cap = write_capture(dir.path());
    // Commission in USDT on both sides, so the accounting below is in one asset (the default,
    // a buy's commission in the BTC it receives, is venue_sim::venue's unit tests').
    let sim = Sim::start(
        dir,
        &[
            "--input",
            &cap,
            "--speed",
            "1",
            "--wait-clients",
            "1",
            "--balance",
            "USDT=10000",
            "--balance",
            "BTC=1",
            "--fee-asset",
            "quote",
        ],
    );
    let mut api = sim.api();
    assert_eq!(api.ok("userDataStream.subscribe.signature", json!({})), json!({"subscriptionId": 0}));

    // The stream client starts the timeline: the diff (u 101) and the ticker.
    let mut ws = sim.ws("/stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker/btcusdt@trade");
    let diff = next_frame(&mut ws);
    let started = Instant::now();
    assert_eq!(diff["data"]["u"], 101, "{diff}");
    assert_eq!(next_frame(&mut ws)["stream"], "btcusdt@bookTicker");

    // A market buy of 2 walks the asks: 1.5 at 101, 0.5 at 102. Its client id traces the diff.
    let r = api.ok(
        "order.place",
        // The engine's client id format: order 1, trace 0x65 = 101 (hex).
        json!({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "2", "newClientOrderId": "h1t65"}),
    );
    assert_eq!(
        (s(&r["status"]), s(&r["executedQty"]), s(&r["cummulativeQuoteQty"])),
        ("FILLED", "2.00000000", "202.50000000")
    );
    assert_eq!((s(&r["clientOrderId"]), r["orderListId"].as_i64(), s(&r["type"])), ("h1t65", Some(-1), "MARKET"));
    let fills: Vec<(&str, &str, &str, &str)> = r["fills"]
        .as_array()
        .expect("FULL response")
        .iter()
        .map(|f| (s(&f["price"]), s(&f["qty"]), s(&f["commission"]), s(&f["commissionAsset"])))
        .collect();
    assert_eq!(
        fills,
        [("101.00000000", "1.50000000", "0.15150000", "USDT"), ("102.00000000", "0.50000000", "0.05100000", "USDT")]
    );
    let order_id = r["orderId"].as_u64().expect("orderId");

    // Its user-data events: NEW, two TRADEs, then the balances.
    let new = api.event();
    assert_eq!((s(&new["e"]), s(&new["x"]), s(&new["X"]), s(&new["c"])), ("executionReport", "NEW", "NEW", "h1t65"));
    assert_eq!(
        (new["i"].as_u64(), s(&new["S"]), s(&new["o"]), s(&new["q"])),
        (Some(order_id), "BUY", "MARKET", "2.00000000")
    );
    let t1 = api.event();
    assert_eq!(
        (s(&t1["x"]), s(&t1["X"]), s(&t1["l"]), s(&t1["L"])),
        ("TRADE", "PARTIALLY_FILLED", "1.50000000", "101.00000000")
    );
    assert_eq!(
        (s(&t1["n"]), s(&t1["N"]), t1["m"].as_bool(), t1["t"].as_i64()),
        ("0.15150000", "USDT", Some(false), Some(1))
    );
    let t2 = api.event();
    assert_eq!((s(&t2["x"]), s(&t2["X"]), s(&t2["z"]), s(&t2["Z"])), ("TRADE", "FILLED", "2.00000000", "202.50000000"));
    let pos = api.event();
    assert_eq!(s(&pos["e"]), "outboundAccountPosition", "{pos}");
    let b: Vec<(&str, &str, &str)> =
        pos["B"].as_array().expect("B").iter().map(|b| (s(&b["a"]), s(&b["f"]), s(&b["l"]))).collect();
    assert_eq!(b, [("BTC", "3.00000000", "0.00000000"), ("USDT", "9797.29750000", "0.00000000")]);

    let account = api.ok("account.status", json!({}));
    assert_eq!(balance(&account, "USDT"), ("9797.29750000".to_string(), "0.00000000".to_string()));
    assert_eq!(balance(&account, "BTC").0, "3.00000000");
    assert_eq!((account["canTrade"].as_bool(), s(&account["commissionRates"]["taker"])), (Some(true), "0.00100000"));

    // Wire-to-wire: the order's client id names the diff it reacted to.
    let lat = sim.get("/control/latency");
    assert_eq!((lat["count"].as_u64(), lat["untraced"].as_u64()), (Some(1), Some(0)), "{lat}");
    let (p50, max) = (lat["p50"].as_u64().expect("p50"), lat["max"].as_u64().expect("max"));
    assert!(p50 > 0 && p50 <= max && max < 60_000_000_000, "{lat}");
    for k in ["p90", "p99", "p99.9"] {
        assert!(lat[k].as_u64().is_some_and(|v| v <= max), "{k}: {lat}");
    }

    // A buy of 2 resting at 100 behind the 5 displayed there. The sells at 100 (3, 3, 1)
    // consume the queue, then fill it: 1, then 1.
    let r = api.ok(
        "order.place",
        json!({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "price": "100.00",
               "quantity": "2.00000000", "newClientOrderId": "rest-1", "newOrderRespType": "RESULT"}),
    );
    assert_eq!((s(&r["status"]), s(&r["executedQty"]), r.get("fills")), ("NEW", "0.00000000", None), "{r}");
    assert!(
        started.elapsed() + Duration::from_millis(500) < FIRST_PRINT,
        "the resting order was placed {:?} after the first frame: too late to be ahead of the first print",
        started.elapsed()
    );
    assert_eq!(s(&api.event()["x"]), "NEW");
    let lock = api.event();
    assert_eq!(lock["B"][1], json!({"a": "USDT", "f": "9597.09750000", "l": "200.20000000"}), "{lock}");
    let open = api.ok("openOrders.status", json!({"symbol": "BTCUSDT"}));
    assert_eq!(open.as_array().map(Vec::len), Some(1), "{open}");
    assert_eq!((s(&open[0]["clientOrderId"]), open[0]["isWorking"].as_bool()), ("rest-1", Some(true)));

    let first = api.event();
    assert_eq!((s(&first["c"]), s(&first["x"]), s(&first["X"])), ("rest-1", "TRADE", "PARTIALLY_FILLED"), "{first}");
    assert_eq!(
        (s(&first["l"]), s(&first["L"]), first["m"].as_bool(), s(&first["n"])),
        ("1.00000000", "100.00000000", Some(true), "0.10000000")
    );
    // (The first print, 3, only moved it up the queue; without one it would have filled 2.)
    assert_eq!(api.event()["e"], "outboundAccountPosition");
    let last = api.event();
    assert_eq!((s(&last["x"]), s(&last["X"]), s(&last["z"])), ("TRADE", "FILLED", "2.00000000"), "{last}");
    assert_eq!((first["w"].as_bool(), last["w"].as_bool()), (Some(true), Some(false)), "on the book until filled");
    let pos = api.event();
    assert_eq!(pos["B"][0], json!({"a": "BTC", "f": "5.00000000", "l": "0.00000000"}), "{pos}");
    assert_eq!(pos["B"][1], json!({"a": "USDT", "f": "9597.09750000", "l": "0.00000000"}), "{pos}");
    assert_eq!(api.ok("openOrders.status", json!({})), json!([]));
    assert_eq!(sim.get("/control/status")["open_orders"], 0);
}

#[test]
fn signed_requests_and_orders_are_refused_with_binance_codes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sim = Sim::start(dir, &["--rate", "100"]);
    let mut api = sim.api();
    let order = json!({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                       "price": "1000.00", "quantity": "0.01"});
    let now = now_ms();
    let with = |extra: Value| {
        let mut o = order.as_object().expect("object").clone();
        o.extend(extra.as_object().expect("object").clone());
        Value::Object(o)
    };

    // Authentication.
    let cases = [
        (
            "bad signature",
            sign_with(API_KEY, "not-the-secret", now, order.clone()),
            400,
            -1022,
            "Signature for this request is not valid.",
        ),
        (
            "stale",
            sign_with(API_KEY, API_SECRET, now - 10_000, order.clone()),
            400,
            -1021,
            "Timestamp for this request is outside of the recvWindow.",
        ),
        ("recvWindow", sign_with(API_KEY, API_SECRET, now - 10_000, with(json!({"recvWindow": 20000}))), 200, 0, ""),
        (
            "ahead",
            sign_with(API_KEY, API_SECRET, now + 5_000, order.clone()),
            400,
            -1021,
            "Timestamp for this request was 1000ms ahead of the server's time.",
        ),
        (
            "recvWindow too large",
            sign_with(API_KEY, API_SECRET, now, with(json!({"recvWindow": 70000}))),
            400,
            -1131,
            "recvWindow must be less than 60000",
        ),
        (
            "unknown key",
            sign_with("AnotherKey0123", API_SECRET, now, order.clone()),
            401,
            -2015,
            "Invalid API-key, IP, or permissions for action.",
        ),
        (
            "malformed key",
            sign_with("not a key!", API_SECRET, now, order.clone()),
            401,
            -2014,
            "API-key format invalid.",
        ),
    ];
    for (what, params, status, code, msg) in cases {
        let v = api.call("order.place", params);
        if status == 200 {
            assert_eq!(v["status"], 200, "{what}: {v}");
            continue;
        }
        assert_eq!(
            (v["status"].as_u64(), v["error"]["code"].as_i64(), v["error"]["msg"].as_str()),
            (Some(status), Some(code), Some(msg)),
            "{what}: {v}"
        );
    }
    let (status, code, _) = api.err("order.place", order.clone());
    assert_eq!((status, code), (400, -1102), "unsigned");
    let (_, code, _) = api.err("account.status", json!({"apiKey": API_KEY, "timestamp": now_ms()}));
    assert_eq!(code, -1102, "no signature");

    // Parameters, filters, the account, the book.
    for (what, params, code, msg) in [
        (
            "no symbol",
            json!({"side": "BUY", "type": "MARKET", "quantity": "0.01"}),
            -1102,
            "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
        ),
        ("side", with(json!({"side": "LONG"})), -1117, "Invalid side."),
        ("type", with(json!({"type": "STOP_LOSS"})), -1116, "Invalid orderType."),
        ("tif", with(json!({"timeInForce": "GTD"})), -1115, "Invalid timeInForce."),
        ("lot", with(json!({"quantity": "0.000001"})), -1013, "Filter failure: LOT_SIZE"),
        ("tick", with(json!({"price": "1000.001"})), -1013, "Filter failure: PRICE_FILTER"),
        ("notional", with(json!({"price": "1.00", "quantity": "1"})), -1013, "Filter failure: NOTIONAL"),
        (
            "balance",
            json!({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "1"}),
            -2010,
            "Account has insufficient balance for requested action.",
        ),
        (
            "balance",
            with(json!({"side": "SELL", "price": "999999.00"})),
            -2010,
            "Account has insufficient balance for requested action.",
        ),
        (
            "maker",
            json!({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT_MAKER", "price": "999999.00", "quantity": "0.01"}),
            -2010,
            "Order would immediately match and take.",
        ),
        ("symbol", with(json!({"symbol": "DOGEUSDT"})), -1121, "Invalid symbol."),
    ] {
        let (status, c, m) = api.err("order.place", signed(params));
        assert_eq!((status, c, m.as_str()), (400, code, msg), "{what}");
    }
    api.ok("order.place", with(json!({"newClientOrderId": "dup"})));
    let (_, code, msg) = api.err("order.place", signed(with(json!({"newClientOrderId": "dup"}))));
    assert_eq!((code, msg.as_str()), (-2010, "Duplicate order sent."));
    let (_, code, msg) = api.err("order.cancel", signed(json!({"symbol": "BTCUSDT", "orderId": 999_999})));
    assert_eq!((code, msg.as_str()), (-2011, "Unknown order sent."));
    let (_, code, _) = api.err("order.cancel", signed(json!({"symbol": "BTCUSDT", "origClientOrderId": "nope"})));
    assert_eq!(code, -2011);
}

#[test]
fn cancel_and_cancel_all_unlock_and_report() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Commission in USDT on both sides: a LIMIT buy locks it with its cost.
    let sim =
        Sim::start(dir, &["--rate", "100", "--balance", "USDT=1000", "--balance", "BTC=0", "--fee-asset", "quote"]);
    let mut api = sim.api();
    api.ok("userDataStream.subscribe.signature", json!({}));
    let mut ids = Vec::new();
    for (i, px) in ["1000.00", "1001.00", "1002.00"].into_iter().enumerate() {
        let r = api.ok(
            "order.place",
            json!({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT_MAKER", "price": px, "quantity": "0.01",
                   "newClientOrderId": format!("c{i}")}),
        );
        assert_eq!(r.as_object().map(|m| m.len()), Some(5), "LIMIT_MAKER answers ACK by default: {r}");
        ids.push(r["orderId"].as_u64().expect("orderId"));
    }
    // 10 + 10.01 + 10.02 plus 0.1 % each.
    let account = api.ok("account.status", json!({}));
    assert_eq!(balance(&account, "USDT"), ("969.93997000".to_string(), "30.06003000".to_string()));
    assert_eq!(api.ok("openOrders.status", json!({"symbol": "BTCUSDT"})).as_array().map(Vec::len), Some(3));

    let r = api.ok("order.cancel", json!({"symbol": "BTCUSDT", "orderId": ids[0]}));
    assert_eq!(
        (s(&r["status"]), s(&r["origClientOrderId"]), r["orderId"].as_u64()),
        ("CANCELED", "c0", Some(ids[0])),
        "{r}"
    );
    let r = api.ok("order.cancel", json!({"symbol": "BTCUSDT", "origClientOrderId": "c1", "newClientOrderId": "x1"}));
    assert_eq!((s(&r["clientOrderId"]), s(&r["origClientOrderId"])), ("x1", "c1"), "{r}");
    let open = api.ok("openOrders.status", json!({}));
    assert_eq!(
        open.as_array().map(|a| a.iter().map(|o| s(&o["clientOrderId"]).to_owned()).collect::<Vec<_>>()),
        Some(vec!["c2".to_owned()])
    );
    let all = api.ok("openOrders.cancelAll", json!({"symbol": "BTCUSDT"}));
    assert_eq!((all.as_array().map(Vec::len), s(&all[0]["origClientOrderId"])), (Some(1), "c2"), "{all}");
    assert_eq!(api.ok("openOrders.status", json!({})), json!([]));
    let (_, code, _) = api.err("openOrders.cancelAll", signed(json!({"symbol": "BTCUSDT"})));
    assert_eq!(code, -2011, "nothing left to cancel");
    let account = api.ok("account.status", json!({"omitZeroBalances": true}));
    assert_eq!(balance(&account, "USDT"), ("1000.00000000".to_string(), "0.00000000".to_string()));
    assert!(account["balances"].as_array().is_some_and(|b| b.len() == 1), "BTC=0 omitted: {account}");

    // Every state change was reported: three NEWs, three CANCELEDs naming the original ids.
    let mut canceled = Vec::new();
    let mut news = 0;
    while canceled.len() < 3 {
        let e = api.event();
        match (s(&e["e"]), e["x"].as_str()) {
            ("executionReport", Some("NEW")) => news += 1,
            ("executionReport", Some("CANCELED")) => {
                assert_eq!(s(&e["X"]), "CANCELED");
                canceled.push((s(&e["C"]).to_owned(), s(&e["c"]).to_owned()));
            }
            ("outboundAccountPosition", None) => {}
            other => panic!("unexpected event {other:?}: {e}"),
        }
    }
    assert_eq!(news, 3);
    assert_eq!(canceled[0].0, "c0");
    assert_eq!(canceled[1], ("c1".to_owned(), "x1".to_owned()));
    assert_eq!(canceled[2].0, "c2");
    let v = api.call("userDataStream.unsubscribe", json!({}));
    assert_eq!((v["status"].as_u64(), &v["result"]), (Some(200), &json!({})));
}

#[test]
fn order_rate_limit_and_latency_on_the_synthetic_market() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut sim = Sim::start(dir, &["--rate", "200", "--orders-per-10s", "3"]);
    let mut api = sim.api();
    let mut ws = sim.ws("/stream?streams=btcusdt@bookTicker");
    let ticker = next_frame(&mut ws);
    let u = ticker["data"]["u"].as_u64().expect("u");
    // A market buy reacting to that ticker; its client id names it.
    let buy = |id: String| json!({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001", "newClientOrderId": id});
    // The engine's format: ids in lowercase hex.
    let v = api.call("order.place", signed(buy(format!("h7t{u:x}"))));
    assert_eq!((v["status"].as_u64(), v["result"]["status"].as_str()), (Some(200), Some("FILLED")), "{v}");
    let orders = &v["rateLimits"][0];
    assert_eq!(
        (s(&orders["rateLimitType"]), s(&orders["interval"]), orders["intervalNum"].as_u64(), orders["limit"].as_u64()),
        ("ORDERS", "SECOND", Some(10), Some(3))
    );
    let lat = sim.get("/control/latency");
    assert_eq!(lat["count"], 1, "{lat}");

    // Up to 3 orders per 10-s interval (an interval may end during the loop).
    let mut refused = None;
    for i in 0..8 {
        let v = api.call("order.place", signed(buy(format!("n{i}"))));
        if v["status"] == 429 {
            refused = Some(v);
            break;
        }
        assert_eq!(v["status"], 200, "{v}");
    }
    let v = refused.expect("the 4th order of an interval is refused");
    assert_eq!(
        (v["error"]["code"].as_i64(), v["error"]["msg"].as_str()),
        (Some(-1015), Some("Too many new orders; current limit is 3 orders per TEN_SECONDS.")),
        "{v}"
    );
    assert_eq!(v["rateLimits"][0]["count"], 3, "{v}");
    assert_eq!(sim.get("/control/latency")["count"], 1, "orders not in the engine's format are not traced");

    // SIGTERM: the percentiles on stderr, exit 0.
    sim.run.signal(libc::SIGTERM);
    assert!(sim.run.wait_exit(Duration::from_secs(5)).success(), "stderr:\n{}", sim.run.stderr_text());
    let stderr = sim.run.stderr_text();
    let line = stderr
        .lines()
        .find(|l| l.contains("wire-to-wire latency"))
        .unwrap_or_else(|| panic!("no latency line:\n{stderr}"));
    assert!(line.contains("count=1 ") && line.contains("p99.9="), "{line}");
    assert!(!stderr.contains(API_SECRET), "the secret is never printed");
}
