//! End-to-end: the control API of the real `hft` binary in paper mode (#6): `/`, `/positions`,
//! `/orders` (filters, paging), `/fills`, `/config` redaction, `/metrics` parsing, `/ws` pushes,
//! latency reset, the token, and a clean stop with a WebSocket client connected.
//!
//! One process (OS-chosen port, temp working dir, cleared environment, `engine.idle = sleep` so
//! nothing spins), killed on failure by the `Running` guard. Takes a few seconds.

mod common;

use common::{Running, agent, get, hft, port_after};
use serde_json::Value;
use std::time::{Duration, Instant};

const TOKEN: &str = "e2e-Token-5f1c9";
const API_KEY: &str = "e2e-KEY-a81d2c";
const API_SECRET: &str = "e2e-SECRET-77b0e4";

fn start() -> (Running, u16, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = hft(dir.path());
    cmd.env("HFT_API_TOKEN", TOKEN)
        .env("EXCHANGE_API_KEY", API_KEY)
        .env("EXCHANGE_API_SECRET", API_SECRET)
        .env("HFT__API__PORT", "0")
        .env("HFT__ENGINE__IDLE", "sleep")
        .env("HFT__MARKET__RATE", "2000")
        .env("HFT__ENGINE__SNAPSHOT_MS", "50");
    let run = Running::spawn(cmd);
    let banner = run.line_with("API http://", Duration::from_secs(30));
    assert!(!banner.contains(TOKEN), "the token is never printed");
    let port = port_after(&banner, "API http://");
    (run, port, dir)
}

/// `method path` with an optional bearer token: the status and the JSON body.
fn send(port: u16, method: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let url = format!("http://127.0.0.1:{port}{path}");
    let a = agent();
    let auth = token.map(|t| format!("Bearer {t}"));
    let res = match method {
        "POST" => {
            let mut r = a.post(&url);
            if let Some(v) = &auth {
                r = r.header("Authorization", v);
            }
            r.send_empty()
        }
        "DELETE" => {
            let mut r = a.delete(&url);
            if let Some(v) = &auth {
                r = r.header("Authorization", v);
            }
            r.call()
        }
        m => panic!("method {m}"),
    };
    let mut res = res.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = res.status().as_u16();
    (status, res.body_mut().read_json::<Value>().unwrap_or(Value::Null))
}

fn ok(port: u16, path: &str) -> Value {
    let (status, body) = get(port, path);
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

fn ids(page: &Value, list: &str, key: &str) -> Vec<u64> {
    page[list].as_array().unwrap_or_else(|| panic!("no {list}: {page}")).iter().map(|o| n(&o[key])).collect()
}

type Ws = tungstenite::WebSocket<std::net::TcpStream>;

fn ws_connect(port: u16) -> Ws {
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    tungstenite::client(format!("ws://127.0.0.1:{port}/ws"), stream).map(|(ws, _)| ws).expect("upgrade")
}

/// Text messages as (type, data) for `d`.
fn ws_collect(ws: &mut Ws, d: Duration) -> Vec<(String, Value)> {
    let t0 = Instant::now();
    let mut out = Vec::new();
    while t0.elapsed() < d {
        match ws.read().expect("ws read") {
            tungstenite::Message::Text(t) => {
                let v: Value = serde_json::from_str(t.as_str()).expect("JSON");
                out.push((v["type"].as_str().expect("type").to_string(), v["data"].clone()));
            }
            tungstenite::Message::Close(f) => panic!("closed early: {f:?}"),
            _ => {}
        }
    }
    out
}

#[test]
fn the_control_api_end_to_end() {
    let (mut run, port, _dir) = start();

    // `/` and readiness.
    let root = ok(port, "/");
    assert_eq!((root["name"].as_str(), root["mode"].as_str()), (Some("hft"), Some("paper")), "{root}");
    assert_eq!(root["version"], env!("CARGO_PKG_VERSION"));
    run.wait_until("ready with a valid book", Duration::from_secs(30), || {
        let (status, h) = get(port, "/health");
        status == 200 && h["book_valid"]["BTCUSDT"] == true
    });
    let health = ok(port, "/health");
    assert_eq!((health["venue"].as_str(), health["feeds"]["BTCUSDT"].as_str()), (Some("simulated"), Some("live")));

    // The WebSocket sees the engine trade: stats and orders pushed, stats changing.
    let mut ws = ws_connect(port);
    run.wait_until("orders and fills", Duration::from_secs(30), || {
        let s = ok(port, "/stats");
        n(&s["orders"]) >= 3 && n(&s["fills"]) >= 1
    });
    let pushed = ws_collect(&mut ws, Duration::from_millis(1300));
    let stats: Vec<f64> =
        pushed.iter().filter(|(t, _)| t == "stats").map(|(_, d)| d["uptime_s"].as_f64().expect("uptime")).collect();
    assert!(stats.len() >= 2 && stats.windows(2).all(|w| w[1] > w[0]), "stats pushed as they change: {stats:?}");
    let orders_msg = pushed.iter().rev().find(|(t, _)| t == "orders").map(|(_, d)| d.clone()).expect("orders pushed");
    assert!(n(&orders_msg["total"]) >= 3 && orders_msg["limit"] == 50, "{orders_msg}");

    // 401 without (or with a wrong) token, and nothing changes.
    for (method, path) in [("POST", "/trading/halt"), ("POST", "/latency/reset"), ("DELETE", "/latency")] {
        for token in [None, Some("wrong")] {
            let (status, body) = send(port, method, path, token);
            assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")), "{method} {path} {token:?}");
        }
    }
    assert_eq!(ok(port, "/stats")["halted"], false);

    // Halt so the books stop moving, then read them.
    let (status, body) = send(port, "POST", "/trading/halt", Some(TOKEN));
    assert_eq!((status, body["halted"].as_bool()), (200, Some(true)), "{body}");
    std::thread::sleep(Duration::from_millis(300)); // in-flight orders settle (ack latency 0.5 ms)
    let stats = ok(port, "/stats");

    // Orders: newest first, paged, filtered.
    let all = ok(port, "/orders?limit=1000");
    let total = n(&all["total"]);
    assert_eq!(total, n(&stats["orders"]).min(10_000), "every order tracked: {stats}");
    let all_ids = ids(&all, "orders", "id");
    assert!(all_ids.windows(2).all(|w| w[0] > w[1]), "newest first: {all_ids:?}");
    let o = &all["orders"][0];
    for key in
        ["symbol", "side", "type", "tif", "price", "qty", "filled", "status", "ts", "tick_to_order_ns", "venue_code"]
    {
        assert!(!o[key].is_null(), "{key} missing: {o}");
    }
    assert_eq!(o["symbol"], "BTCUSDT");
    let page = ok(port, "/orders?limit=2&offset=1");
    assert_eq!((n(&page["total"]), n(&page["limit"]), n(&page["offset"])), (total, 2, 1));
    assert_eq!(ids(&page, "orders", "id"), all_ids[1..3]);
    let filled = ok(port, "/orders?status=filled&symbol=btcusdt&limit=1000");
    assert!(n(&filled["total"]) >= 1, "{filled}");
    assert!(filled["orders"].as_array().expect("orders").iter().all(|o| o["status"] == "FILLED"));
    let open = ok(port, "/orders?status=open");
    let by_status =
        |s: &str| all["orders"].as_array().expect("orders").iter().filter(|o| o["status"] == s).count() as u64;
    assert_eq!(n(&open["total"]), by_status("PENDING_NEW") + by_status("NEW") + by_status("PARTIALLY_FILLED"));
    for (path, status, code) in [
        ("/orders?status=bogus", 400, "bad_request"),
        ("/orders?limit=0", 400, "bad_request"),
        ("/orders?limit=1001", 400, "bad_request"),
        ("/orders?offset=x", 400, "bad_request"),
        ("/orders?symbol=NOPEUSDT", 404, "unknown_symbol"),
        ("/fills?limit=-5", 400, "bad_request"),
    ] {
        let (s, body) = get(port, path);
        assert_eq!((s, body["code"].as_str()), (status, Some(code)), "{path}: {body}");
    }

    // Fills and positions agree with each other and with /stats.
    let fills = ok(port, "/fills?limit=5");
    assert_eq!(n(&fills["total"]), n(&stats["fills"]).min(10_000), "{stats}");
    let newest = &fills["fills"][0];
    let positions = ok(port, "/positions");
    let btc = &positions["positions"][0];
    assert_eq!(btc["symbol"], "BTCUSDT");
    assert_eq!(btc["qty"], stats["position"]["BTCUSDT"], "{positions} vs {stats}");
    assert_eq!(btc["qty"], newest["position"], "the newest fill's position is the position");
    assert_eq!(btc["realized"], newest["realized"]);
    assert_eq!(positions["totals"]["fees"], stats["pnl"]["fees"]);
    for key in ["order_id", "side", "liquidity", "px", "qty", "fee", "ts"] {
        assert!(!newest[key].is_null(), "{key} missing: {newest}");
    }

    // Config: effective, with no secret anywhere.
    let (status, text) = {
        let mut res = agent().get(&format!("http://127.0.0.1:{port}/config")).call().expect("GET /config");
        (res.status().as_u16(), res.body_mut().read_to_string().expect("body"))
    };
    assert_eq!(status, 200);
    for secret in [TOKEN, API_KEY, API_SECRET] {
        assert!(!text.contains(secret), "{secret} leaked by /config");
    }
    let config: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(config["api"]["token"], "***");
    assert_eq!(config["secrets"], serde_json::json!({"exchange_api_key": "***", "exchange_api_secret": "***"}));
    assert_eq!((config["mode"].as_str(), config["engine"]["idle"].as_str()), (Some("paper"), Some("sleep")));

    // Performance over the store's fills of this paper run.
    let perf = ok(port, "/performance?modes=paper");
    assert_eq!(perf["modes"], serde_json::json!(["paper"]), "{perf}");
    assert!(n(&perf["runs"]) >= 1, "{perf}");
    let (status, body) = get(port, "/performance?modes=nope");
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_request")), "{body}");

    // Metrics parse, and agree with /stats.
    let (ct, text) = {
        let mut res = agent().get(&format!("http://127.0.0.1:{port}/metrics")).call().expect("GET /metrics");
        let ct = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        (ct, res.body_mut().read_to_string().expect("body"))
    };
    assert_eq!(ct, "text/plain; version=0.0.4");
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("parses");
    let value = |name: &str, label: Option<(&str, &str)>| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .map(|s| s.value.clone())
            .unwrap_or_else(|| panic!("{name} {label:?} not in /metrics:\n{text}"))
    };
    let orders_now = n(&ok(port, "/stats")["orders"]);
    assert_eq!(value("hft_orders_total", None), prometheus_parse::Value::Counter(orders_now as f64));
    assert_eq!(value("hft_halted", None), prometheus_parse::Value::Gauge(1.0));
    assert_eq!(value("hft_feed_state", Some(("state", "live"))), prometheus_parse::Value::Gauge(1.0));
    assert_eq!(value("hft_ws_clients", None), prometheus_parse::Value::Gauge(1.0));
    assert!(
        matches!(value("hft_latency_ns", Some(("stage", "tick_to_order"))), prometheus_parse::Value::Summary(q) if q.len() == 4)
    );

    // Latency reset: counts drop to zero (tick-to-order stays there while halted).
    let before = ok(port, "/latency");
    assert!(n(&before["tick_to_order"]["count"]) > 0 && n(&before["decode"]["count"]) > 0, "{before}");
    let (status, body) = send(port, "POST", "/latency/reset", Some(TOKEN));
    assert_eq!((status, body["outcome"].as_str()), (200, Some("applied")), "{body}");
    let after = ok(port, "/latency");
    assert_eq!(n(&after["tick_to_order"]["count"]), 0, "{after}");
    assert!(n(&after["decode"]["count"]) < n(&before["decode"]["count"]), "{before} -> {after}");
    run.wait_until("decode measured again", Duration::from_secs(5), || n(&ok(port, "/latency")["decode"]["count"]) > 0);
    let (status, body) = send(port, "DELETE", "/latency", Some(TOKEN));
    assert_eq!((status, body["ok"].as_bool()), (200, Some(true)), "{body}");
    assert_eq!(n(&ok(port, "/latency")["tick_to_order"]["count"]), 0);

    // SIGTERM with a WebSocket client connected: it is told the server is going away, and the
    // process exits cleanly.
    run.signal(libc::SIGTERM);
    let code = loop {
        match ws.read() {
            Ok(tungstenite::Message::Close(f)) => break f.map(|f| u16::from(f.code)),
            Ok(_) => {}
            Err(e) => panic!("no Close frame before the connection ended: {e}"),
        }
    };
    assert_eq!(code, Some(1001), "going away");
    let status = run.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}; stderr:\n{}", run.stderr_text());
    let stderr = run.stderr_text();
    for secret in [TOKEN, API_KEY, API_SECRET] {
        assert!(!stderr.contains(secret), "{secret} logged");
    }
}
