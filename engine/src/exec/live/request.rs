//! WS-API request encoder: complete, signed JSON requests written into a caller's buffer.
//!
//! Hot thread (every order and cancel). Allocation-free: the JSON and the signature payload are
//! produced in one pass — each parameter is written to the buffer as `"k":v` and fed to the
//! HMAC as `k=v`, in alphabetical order of the names (Binance signs the WS-API parameters
//! sorted by name, `signature` excluded), and the hex signature is appended last.
//!
//! Every value written comes from a validated character set (upper-case symbols, [`ClientId`]s,
//! alphanumeric API keys, decimals, Binance's enum names), so nothing needs JSON escaping or URL
//! encoding. Decimals are written without trailing zeros (`0.1`, `1`).
//!
//! Request ids are integers (`"id":42`); the gateway maps them back to the request.

use super::ClientId;
use super::RequestKind;
use super::sign::{Credentials, SIGNATURE_LEN, Signing};
use hft_shared::{OrderKind, Px, Qty, Side, TimeInForce};

/// Room for the longest request: `order.place` with a 32-byte symbol, a 36-byte client id, a
/// 128-byte API key and 20-digit numbers is under 600 bytes.
pub const REQUEST_CAP: usize = 1024;

/// `newOrderRespType`: `ACK` answers as soon as the order is accepted (fastest); `RESULT`
/// waits for the matching outcome and reports status and executed quantity too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RespType {
    #[default]
    Ack,
    Result,
}

impl RespType {
    pub const fn as_str(self) -> &'static str {
        match self {
            RespType::Ack => "ACK",
            RespType::Result => "RESULT",
        }
    }
}

/// What every signed request carries besides its own parameters.
#[derive(Clone, Copy, Debug)]
pub struct SignCtx<'c> {
    pub creds: &'c Credentials,
    /// `recvWindow`, ms.
    pub recv_window_ms: u64,
    /// `timestamp`: unix time, ms.
    pub timestamp_ms: u64,
}

/// The fields of an `order.place`.
#[derive(Clone, Copy, Debug)]
pub struct Place<'a> {
    /// Upper-case letters and digits.
    pub symbol: &'a str,
    pub side: Side,
    pub kind: OrderKind,
    /// Sent for `LIMIT` only (`MARKET` takes none, `LIMIT_MAKER` is implicitly GTC).
    pub tif: TimeInForce,
    /// Positive.
    pub qty: Qty,
    /// Positive; not sent for `MARKET`.
    pub px: Px,
    pub client_id: &'a ClientId,
    pub resp: RespType,
}

/// The buffer being written; overflowing it is remembered, not a panic.
struct Out<'b> {
    buf: &'b mut [u8],
    n: usize,
    ok: bool,
}

impl Out<'_> {
    #[inline]
    fn put(&mut self, b: &[u8]) {
        let end = self.n + b.len();
        match self.buf.get_mut(self.n..end) {
            Some(dst) if self.ok => {
                dst.copy_from_slice(b);
                self.n = end;
            }
            _ => self.ok = false,
        }
    }
}

/// One request's parameters, written to the JSON and the signature at once.
struct Params<'b> {
    out: Out<'b>,
    mac: Signing,
    first: bool,
    /// The previous name, to prove the order in debug builds.
    last: &'static str,
}

impl<'b> Params<'b> {
    /// Writes `{"id":<id>,"method":"<method>","params":{`.
    fn begin(buf: &'b mut [u8], id: u64, method: &str, mac: Signing) -> Self {
        let mut out = Out { buf, n: 0, ok: true };
        let mut ids = itoa::Buffer::new();
        out.put(b"{\"id\":");
        out.put(ids.format(id).as_bytes());
        out.put(b",\"method\":\"");
        out.put(method.as_bytes());
        out.put(b"\",\"params\":{");
        Self { out, mac, first: true, last: "" }
    }

    #[inline]
    fn key(&mut self, k: &'static str) {
        debug_assert!(self.first || k > self.last, "parameters must be written in name order: {k} after {}", self.last);
        self.last = k;
        if self.first {
            self.first = false;
        } else {
            self.out.put(b",");
            self.mac.update(b"&");
        }
        self.out.put(b"\"");
        self.out.put(k.as_bytes());
        self.out.put(b"\":");
        self.mac.update(k.as_bytes());
        self.mac.update(b"=");
    }

    /// A string value (quoted in JSON).
    #[inline]
    fn text(&mut self, k: &'static str, v: &[u8]) {
        self.key(k);
        self.out.put(b"\"");
        self.out.put(v);
        self.out.put(b"\"");
        self.mac.update(v);
    }

    /// A JSON literal (a number or `true`), written as is in both.
    #[inline]
    fn literal(&mut self, k: &'static str, v: &[u8]) {
        self.key(k);
        self.out.put(v);
        self.mac.update(v);
    }

    #[inline]
    fn number(&mut self, k: &'static str, v: u64) {
        let mut b = itoa::Buffer::new();
        self.literal(k, b.format(v).as_bytes());
    }

    /// A decimal, as a JSON string without trailing zeros.
    #[inline]
    fn decimal(&mut self, k: &'static str, raw: i64) {
        let mut b = [0u8; 48];
        let n = hft_shared::px::write_fixed(i128::from(raw), hft_shared::px::DECIMALS, &mut b);
        self.text(k, &b[..n]);
    }

    /// Appends `"signature":"<hex>"` and closes the request; its length, or `None` when the
    /// buffer was too short.
    fn finish(mut self) -> Option<usize> {
        let mut sig = [0u8; SIGNATURE_LEN];
        self.mac.finish(&mut sig);
        if !self.first {
            self.out.put(b",");
        }
        self.out.put(b"\"signature\":\"");
        self.out.put(&sig);
        self.out.put(b"\"}}");
        self.out.ok.then_some(self.out.n)
    }
}

fn begin<'b>(buf: &'b mut [u8], id: u64, kind: RequestKind, ctx: &SignCtx<'_>) -> Params<'b> {
    let mut p = Params::begin(buf, id, kind.method(), ctx.creds.signer().start());
    p.text("apiKey", ctx.creds.api_key());
    p
}

/// `order.place`. Parameters, in signing order: `apiKey`, `newClientOrderId`,
/// `newOrderRespType`, `price` (not for `MARKET`), `quantity`, `recvWindow`, `side`, `symbol`,
/// `timeInForce` (`LIMIT` only), `timestamp`, `type`.
pub fn order_place(buf: &mut [u8], id: u64, o: &Place<'_>, ctx: &SignCtx<'_>) -> Option<usize> {
    let mut p = begin(buf, id, RequestKind::Place, ctx);
    p.text("newClientOrderId", o.client_id.as_bytes());
    p.text("newOrderRespType", o.resp.as_str().as_bytes());
    if o.kind != OrderKind::Market {
        p.decimal("price", o.px.raw());
    }
    p.decimal("quantity", o.qty.raw());
    p.number("recvWindow", ctx.recv_window_ms);
    p.text("side", o.side.as_str().as_bytes());
    p.text("symbol", o.symbol.as_bytes());
    if o.kind == OrderKind::Limit {
        p.text("timeInForce", o.tif.as_str().as_bytes());
    }
    p.number("timestamp", ctx.timestamp_ms);
    p.text("type", o.kind.as_str().as_bytes());
    p.finish()
}

/// `order.cancel` by client id: `apiKey`, `origClientOrderId`, `recvWindow`, `symbol`,
/// `timestamp`.
pub fn order_cancel(buf: &mut [u8], id: u64, symbol: &str, client_id: &ClientId, ctx: &SignCtx<'_>) -> Option<usize> {
    by_client_id(buf, id, RequestKind::Cancel, symbol, client_id, ctx)
}

/// `order.status` by client id; same parameters as [`order_cancel`].
pub fn order_status(buf: &mut [u8], id: u64, symbol: &str, client_id: &ClientId, ctx: &SignCtx<'_>) -> Option<usize> {
    by_client_id(buf, id, RequestKind::Query, symbol, client_id, ctx)
}

fn by_client_id(
    buf: &mut [u8],
    id: u64,
    kind: RequestKind,
    symbol: &str,
    client_id: &ClientId,
    ctx: &SignCtx<'_>,
) -> Option<usize> {
    let mut p = begin(buf, id, kind, ctx);
    p.text("origClientOrderId", client_id.as_bytes());
    p.number("recvWindow", ctx.recv_window_ms);
    p.text("symbol", symbol.as_bytes());
    p.number("timestamp", ctx.timestamp_ms);
    p.finish()
}

/// `openOrders.cancelAll`: `apiKey`, `recvWindow`, `symbol`, `timestamp`.
pub fn open_orders_cancel_all(buf: &mut [u8], id: u64, symbol: &str, ctx: &SignCtx<'_>) -> Option<usize> {
    by_symbol(buf, id, RequestKind::CancelAll, symbol, ctx)
}

/// `openOrders.status` of one symbol; same parameters as [`open_orders_cancel_all`].
pub fn open_orders_status(buf: &mut [u8], id: u64, symbol: &str, ctx: &SignCtx<'_>) -> Option<usize> {
    by_symbol(buf, id, RequestKind::OpenOrders, symbol, ctx)
}

fn by_symbol(buf: &mut [u8], id: u64, kind: RequestKind, symbol: &str, ctx: &SignCtx<'_>) -> Option<usize> {
    let mut p = begin(buf, id, kind, ctx);
    p.number("recvWindow", ctx.recv_window_ms);
    p.text("symbol", symbol.as_bytes());
    p.number("timestamp", ctx.timestamp_ms);
    p.finish()
}

/// `account.status` without zero balances: `apiKey`, `omitZeroBalances`, `recvWindow`,
/// `timestamp`.
pub fn account_status(buf: &mut [u8], id: u64, ctx: &SignCtx<'_>) -> Option<usize> {
    let mut p = begin(buf, id, RequestKind::Account, ctx);
    p.literal("omitZeroBalances", b"true");
    p.number("recvWindow", ctx.recv_window_ms);
    p.number("timestamp", ctx.timestamp_ms);
    p.finish()
}

/// `userDataStream.subscribe.signature`: `apiKey`, `timestamp` (no `recvWindow`).
pub fn user_data_subscribe(buf: &mut [u8], id: u64, ctx: &SignCtx<'_>) -> Option<usize> {
    let mut p = begin(buf, id, RequestKind::Subscribe, ctx);
    p.number("timestamp", ctx.timestamp_ms);
    p.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::live::sign::Signer;
    use hft_shared::config::Secret;
    use std::collections::BTreeMap;

    const SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
    const KEY: &str = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";

    fn creds() -> Credentials {
        Credentials::new(&Secret::new(KEY.into()), &Secret::new(SECRET.into())).unwrap()
    }

    fn ctx(c: &Credentials) -> SignCtx<'_> {
        SignCtx { creds: c, recv_window_ms: 5000, timestamp_ms: 1_499_827_319_559 }
    }

    fn text(buf: &[u8], n: Option<usize>) -> String {
        String::from_utf8(buf[..n.expect("fits")].to_vec()).unwrap()
    }

    /// Checks a request the way the venue does: parse it, sort the params by name, join them
    /// `k=v&…` without `signature`, HMAC with the secret, compare. Returns the parsed request.
    fn verify(req: &str) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(req).expect("valid JSON");
        let params = v["params"].as_object().expect("params");
        let sorted: BTreeMap<&str, String> = params
            .iter()
            .filter(|(k, _)| *k != "signature")
            .map(|(k, v)| (k.as_str(), v.as_str().map_or_else(|| v.to_string(), str::to_string)))
            .collect();
        let payload = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
        let mut want = [0u8; SIGNATURE_LEN];
        Signer::new(SECRET.as_bytes()).sign(payload.as_bytes(), &mut want);
        assert_eq!(params["signature"].as_str().unwrap().as_bytes(), &want[..], "payload {payload}");
        v
    }

    #[test]
    fn params_in_name_order_reproduce_the_documented_ws_api_signature() {
        // Binance's WS-API signing example, written through the same parameter writer.
        let c = Credentials::new(&Secret::new(KEY.into()), &Secret::new(SECRET.into())).unwrap();
        let mut buf = [0u8; REQUEST_CAP];
        let mut p = Params::begin(&mut buf, 1, "order.place", c.signer().start());
        p.text("apiKey", KEY.as_bytes());
        p.text("newOrderRespType", b"ACK");
        p.text("price", b"52000.00");
        p.text("quantity", b"0.01000000");
        p.number("recvWindow", 100);
        p.text("side", b"SELL");
        p.text("symbol", b"BTCUSDT");
        p.text("timeInForce", b"GTC");
        p.number("timestamp", 1_645_423_376_532);
        p.text("type", b"LIMIT");
        let n = p.finish();
        let req = text(&buf, n);
        assert!(
            req.ends_with(r#""signature":"cc15477742bd704c29492d96c7ead9414dfd8e0ec4a00f947bb5bb454ddbd08a"}}"#),
            "{req}"
        );
        verify(&req);
    }

    #[test]
    fn a_limit_order_is_written_exactly() {
        let c = creds();
        let cid = ClientId::new(b"hft-42").unwrap();
        let o = Place {
            symbol: "LTCBTC",
            side: Side::Buy,
            kind: OrderKind::Limit,
            tif: TimeInForce::Gtc,
            qty: Qty::parse("1.000").unwrap(),
            px: Px::parse("0.10").unwrap(),
            client_id: &cid,
            resp: RespType::Ack,
        };
        let mut buf = [0u8; REQUEST_CAP];
        let n = order_place(&mut buf, 7, &o, &ctx(&c));
        let req = text(&buf, n);
        let payload = format!(
            "apiKey={KEY}&newClientOrderId=hft-42&newOrderRespType=ACK&price=0.1&quantity=1&recvWindow=5000\
             &side=BUY&symbol=LTCBTC&timeInForce=GTC&timestamp=1499827319559&type=LIMIT"
        );
        let mut sig = [0u8; SIGNATURE_LEN];
        c.signer().sign(payload.as_bytes(), &mut sig);
        let sig = std::str::from_utf8(&sig).unwrap();
        assert_eq!(
            req,
            format!(
                r#"{{"id":7,"method":"order.place","params":{{"apiKey":"{KEY}","newClientOrderId":"hft-42","newOrderRespType":"ACK","price":"0.1","quantity":"1","recvWindow":5000,"side":"BUY","symbol":"LTCBTC","timeInForce":"GTC","timestamp":1499827319559,"type":"LIMIT","signature":"{sig}"}}}}"#
            )
        );
        verify(&req);
    }

    #[test]
    fn market_and_limit_maker_orders_carry_only_their_params() {
        let c = creds();
        let cid = ClientId::new(b"m1").unwrap();
        let mut o = Place {
            symbol: "BTCUSDT",
            side: Side::Sell,
            kind: OrderKind::Market,
            tif: TimeInForce::Ioc,
            qty: Qty::parse("0.00012345").unwrap(),
            px: Px::parse("61602.01").unwrap(),
            client_id: &cid,
            resp: RespType::Result,
        };
        let mut buf = [0u8; REQUEST_CAP];
        let n = order_place(&mut buf, u64::MAX, &o, &ctx(&c));
        let v = verify(&text(&buf, n));
        assert_eq!(v["id"].as_u64(), Some(u64::MAX));
        let p = v["params"].as_object().unwrap();
        assert!(p.get("price").is_none() && p.get("timeInForce").is_none());
        assert_eq!((p["type"].as_str(), p["quantity"].as_str()), (Some("MARKET"), Some("0.00012345")));
        assert_eq!(p["newOrderRespType"].as_str(), Some("RESULT"));

        o.kind = OrderKind::LimitMaker;
        let n = order_place(&mut buf, 8, &o, &ctx(&c));
        let v = verify(&text(&buf, n));
        let p = v["params"].as_object().unwrap();
        assert!(p.get("timeInForce").is_none());
        assert_eq!((p["type"].as_str(), p["price"].as_str()), (Some("LIMIT_MAKER"), Some("61602.01")));
    }

    #[test]
    fn a_cancel_names_the_original_client_id() {
        let c = creds();
        let cid = ClientId::new(b"hft-42").unwrap();
        let mut buf = [0u8; REQUEST_CAP];
        let n = order_cancel(&mut buf, 9, "BTCUSDT", &cid, &ctx(&c));
        let req = text(&buf, n);
        assert!(
            req.starts_with(&format!(
                r#"{{"id":9,"method":"order.cancel","params":{{"apiKey":"{KEY}","origClientOrderId":"hft-42","recvWindow":5000,"symbol":"BTCUSDT","timestamp":1499827319559,"signature":""#
            )),
            "{req}"
        );
        verify(&req);
        let n = order_status(&mut buf, 10, "BTCUSDT", &cid, &ctx(&c));
        assert_eq!(verify(&text(&buf, n))["method"].as_str(), Some("order.status"));
    }

    #[test]
    fn symbol_account_and_subscription_requests() {
        let c = creds();
        let mut buf = [0u8; REQUEST_CAP];
        let n = open_orders_cancel_all(&mut buf, 1, "ETHUSDT", &ctx(&c));
        let v = verify(&text(&buf, n));
        assert_eq!(
            (v["method"].as_str(), v["params"]["symbol"].as_str()),
            (Some("openOrders.cancelAll"), Some("ETHUSDT"))
        );
        let n = open_orders_status(&mut buf, 2, "ETHUSDT", &ctx(&c));
        assert_eq!(verify(&text(&buf, n))["method"].as_str(), Some("openOrders.status"));
        let n = account_status(&mut buf, 3, &ctx(&c));
        let v = verify(&text(&buf, n));
        assert_eq!(
            (v["method"].as_str(), v["params"]["omitZeroBalances"].as_bool()),
            (Some("account.status"), Some(true))
        );
        let n = user_data_subscribe(&mut buf, 4, &ctx(&c));
        let req = text(&buf, n);
        let mut sig = [0u8; SIGNATURE_LEN];
        c.signer().sign(format!("apiKey={KEY}&timestamp=1499827319559").as_bytes(), &mut sig);
        assert_eq!(
            req,
            format!(
                r#"{{"id":4,"method":"userDataStream.subscribe.signature","params":{{"apiKey":"{KEY}","timestamp":1499827319559,"signature":"{}"}}}}"#,
                std::str::from_utf8(&sig).unwrap()
            )
        );
        verify(&req);
    }

    #[test]
    fn a_short_buffer_is_refused_not_overrun() {
        let c = creds();
        for cap in [0, 10, 100, 200] {
            let mut buf = vec![0u8; cap];
            assert_eq!(open_orders_status(&mut buf, 1, "BTCUSDT", &ctx(&c)), None, "{cap}");
        }
        // The longest request fits REQUEST_CAP.
        let long_key = "K".repeat(128);
        let c = Credentials::new(&Secret::new(long_key), &Secret::new("s".into())).unwrap();
        let cid = ClientId::new(&[b'c'; 36]).unwrap();
        let sym = "S".repeat(32);
        let o = Place {
            symbol: &sym,
            side: Side::Sell,
            kind: OrderKind::Limit,
            tif: TimeInForce::Fok,
            qty: Qty(i64::MAX),
            px: Px(i64::MAX),
            client_id: &cid,
            resp: RespType::Result,
        };
        let mut buf = [0u8; REQUEST_CAP];
        let ctx = SignCtx { creds: &c, recv_window_ms: 60_000, timestamp_ms: u64::MAX };
        let n = order_place(&mut buf, u64::MAX, &o, &ctx).expect("fits");
        assert!(n < 700, "{n}");
    }
}
