//! The WS-API's trading, account and user-data methods, with Binance's parameters, checks,
//! error codes and result shapes: `order.place`, `order.cancel`, `openOrders.cancelAll`,
//! `order.status`, `openOrders.status`, `account.status`, `userDataStream.subscribe.signature`,
//! `userDataStream.unsubscribe`. Each one authenticates ([`super::auth`]), parses its
//! parameters to fixed point and hands over to the [`super::venue`]; `order.place` also counts
//! against the ORDERS limits and records the order's wire-to-wire latency
//! ([`super::latency`]).
//!
//! Supported order types: MARKET (`quantity` or `quoteOrderQty`), LIMIT (`timeInForce` GTC,
//! IOC or FOK) and LIMIT_MAKER; others are refused as an invalid order type (-1116).
//!
//! Runs on WS-API connection tasks; takes the venue lock, then the books lock; allocates
//! freely.

use super::api::{BinanceError, Ctx, Params, Reply, now_ms};
use super::matching::{Side, Want};
use super::venue::{Fill, NewOrder, Order, OrderType, Tif, invalid_symbol, no_such_order};
use super::wire::dec8;
use serde_json::{Value, json};

/// Binance's `newClientOrderId` pattern.
const CLIENT_ID_RANGE: &str = r"^[\.A-Z\:/a-z0-9_-]{1,36}$";
const DECIMAL_RANGE: &str = r"^([0-9]{1,20})(\.[0-9]{1,20})?$";

/// `newOrderRespType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RespType {
    Ack,
    Result,
    Full,
}

fn not_required(name: &str) -> BinanceError {
    BinanceError::bad(-1106, format!("Parameter '{name}' sent when not required."))
}

fn one_of(a: &str, b: &str) -> BinanceError {
    BinanceError::bad(-1102, format!("Param '{a}' or '{b}' must be sent, but both were empty/null!"))
}

/// `symbol`, mandatory, upper-cased.
fn symbol(p: &Params) -> Result<String, BinanceError> {
    let s = p.string("symbol")?.filter(|s| !s.is_empty()).ok_or_else(|| BinanceError::mandatory("symbol"))?;
    if s.len() > 32 || !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(BinanceError::illegal("symbol", "^[A-Z0-9-_.]{1,20}$"));
    }
    Ok(s.to_ascii_uppercase())
}

/// The order a cancel or a status query names: `orderId`, `origClientOrderId`, or both (at
/// least one).
fn order_ref(p: &Params) -> Result<(Option<u64>, Option<String>), BinanceError> {
    let order_id = match p.text("orderId") {
        None => None,
        Some(id) => Some(id.parse::<u64>().map_err(|_| BinanceError::illegal("orderId", "^[0-9]{1,20}$"))?),
    };
    let orig = client_id(p, "origClientOrderId")?;
    if order_id.is_none() && orig.is_none() {
        return Err(one_of("origClientOrderId", "orderId"));
    }
    Ok((order_id, orig))
}

/// A client order id parameter, checked against Binance's pattern.
fn client_id(p: &Params, name: &str) -> Result<Option<String>, BinanceError> {
    let Some(c) = p.text(name) else { return Ok(None) };
    let ok = (1..=36).contains(&c.len())
        && c.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'/' | b'_' | b'-'));
    if !ok {
        return Err(BinanceError::illegal(name, CLIENT_ID_RANGE));
    }
    Ok(Some(c.into_owned()))
}

/// A non-negative decimal parameter, 1e-8 units.
fn decimal(p: &Params, name: &str) -> Result<Option<i64>, BinanceError> {
    let Some(text) = p.text(name) else { return Ok(None) };
    match hft_shared::px::parse_fixed8(text.as_bytes()) {
        Ok(v) if v >= 0 => Ok(Some(v)),
        Err(hft_shared::px::ParseFixedError::TooPrecise) => {
            Err(BinanceError::bad(-1111, format!("Parameter '{name}' has too much precision.")))
        }
        Ok(_) | Err(_) => Err(BinanceError::illegal(name, DECIMAL_RANGE)),
    }
}

fn new_order(p: &Params, symbol: String, client_id: Option<String>) -> Result<(NewOrder, RespType), BinanceError> {
    let side = match p.text("side").as_deref() {
        None => return Err(BinanceError::mandatory("side")),
        Some("BUY") => Side::Buy,
        Some("SELL") => Side::Sell,
        Some(_) => return Err(BinanceError::bad(-1117, "Invalid side.")),
    };
    let kind = match p.text("type").as_deref() {
        None => return Err(BinanceError::mandatory("type")),
        Some("MARKET") => OrderType::Market,
        Some("LIMIT") => OrderType::Limit,
        Some("LIMIT_MAKER") => OrderType::LimitMaker,
        Some(_) => return Err(BinanceError::bad(-1116, "Invalid orderType.")),
    };
    let tif = match (kind, p.text("timeInForce").as_deref()) {
        (OrderType::Limit, None) => return Err(BinanceError::mandatory("timeInForce")),
        (OrderType::Limit, Some("GTC")) => Tif::Gtc,
        (OrderType::Limit, Some("IOC")) => Tif::Ioc,
        (OrderType::Limit, Some("FOK")) => Tif::Fok,
        (OrderType::Limit, Some(_)) => return Err(BinanceError::bad(-1115, "Invalid timeInForce.")),
        (_, None) => Tif::Gtc,
        (_, Some(_)) => return Err(not_required("timeInForce")),
    };
    let (price, qty, quote) = (decimal(p, "price")?, decimal(p, "quantity")?, decimal(p, "quoteOrderQty")?);
    let (price, want) = match kind {
        OrderType::Market => {
            if price.is_some() {
                return Err(not_required("price"));
            }
            let want = match (qty, quote) {
                (Some(q), None) => Want::Base(q),
                (None, Some(q)) => Want::Quote(q),
                (None, None) => return Err(one_of("quantity", "quoteOrderQty")),
                (Some(_), Some(_)) => return Err(not_required("quoteOrderQty")),
            };
            (0, want)
        }
        OrderType::Limit | OrderType::LimitMaker => {
            if quote.is_some() {
                return Err(not_required("quoteOrderQty"));
            }
            let price = price.ok_or_else(|| BinanceError::mandatory("price"))?;
            (price, Want::Base(qty.ok_or_else(|| BinanceError::mandatory("quantity"))?))
        }
    };
    let resp = match p.text("newOrderRespType").as_deref() {
        None if kind == OrderType::LimitMaker => RespType::Ack,
        None => RespType::Full,
        Some("ACK") => RespType::Ack,
        Some("RESULT") => RespType::Result,
        Some("FULL") => RespType::Full,
        Some(_) => return Err(BinanceError::illegal("newOrderRespType", "ACK, RESULT, FULL")),
    };
    Ok((NewOrder { symbol, side, kind, tif, price, want, client_id }, resp))
}

/// `order.place`'s result in the requested shape.
fn place_result(o: &Order, fills: &[Fill], resp: RespType, now: u64) -> Value {
    let mut v = json!({
        "symbol": o.symbol,
        "orderId": o.id,
        "orderListId": -1,
        "clientOrderId": o.client_id,
        "transactTime": now,
    });
    if resp == RespType::Ack {
        return v;
    }
    if let Value::Object(m) = &mut v {
        let full = order_fields(o);
        m.extend(
            full.into_iter().filter(|(k, _)| {
                !matches!(k.as_str(), "stopPrice" | "icebergQty" | "time" | "updateTime" | "isWorking")
            }),
        );
        if resp == RespType::Full {
            let fills: Vec<Value> = fills
                .iter()
                .map(|f| {
                    json!({
                        "price": dec8(f.px.into()),
                        "qty": dec8(f.qty.into()),
                        "commission": dec8(f.commission),
                        "commissionAsset": if f.commission_in_base { &o.base } else { &o.quote },
                        "tradeId": f.trade_id,
                    })
                })
                .collect();
            m.insert("fills".into(), Value::Array(fills));
        }
    }
    v
}

/// An order as `openOrders.status` (and `order.status`) show it.
fn order_fields(o: &Order) -> serde_json::Map<String, Value> {
    let v = json!({
        "symbol": o.symbol,
        "orderId": o.id,
        "orderListId": -1,
        "clientOrderId": o.client_id,
        "price": dec8(o.price.into()),
        "origQty": dec8(o.orig_qty.into()),
        "executedQty": dec8(o.executed.into()),
        "cummulativeQuoteQty": dec8(o.cum_quote),
        "status": o.status.as_str(),
        "timeInForce": o.tif.as_str(),
        "type": o.kind.as_str(),
        "side": o.side.as_str(),
        "stopPrice": "0.00000000",
        "icebergQty": "0.00000000",
        "time": o.time_ms,
        "updateTime": o.update_ms,
        "isWorking": o.working,
        "workingTime": o.time_ms,
        "origQuoteOrderQty": dec8(o.orig_quote.into()),
        "selfTradePreventionMode": "NONE",
    });
    match v {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// An `order.cancel` result.
fn cancel_result(o: &Order, orig_client_id: &str, now: u64) -> Value {
    let mut m = order_fields(o);
    for k in ["stopPrice", "icebergQty", "time", "updateTime", "isWorking", "workingTime"] {
        m.remove(k);
    }
    m.insert("origClientOrderId".into(), orig_client_id.into());
    m.insert("transactTime".into(), now.into());
    Value::Object(m)
}

/// `order.place` (TRADE, weight 1).
pub fn place(ctx: &mut Ctx<'_>, p: &Params) -> Result<Reply, BinanceError> {
    let now = now_ms();
    ctx.shared.creds.verify(p, now)?;
    let symbol = symbol(p)?;
    let client_id = client_id(p, "newClientOrderId")?;
    if let Some(c) = &client_id
        && let Some(ns) = ctx.shared.latency.lock().order_received(&symbol, c, ctx.recv_ns)
    {
        tracing::debug!(client_id = c.as_str(), ns, "wire-to-wire");
    }
    let (req, resp) = new_order(p, symbol, client_id)?;
    let mut venue = ctx.shared.venue();
    match venue.count_order(now) {
        Ok(usage) => ctx.orders = Some(usage),
        Err((e, usage)) => {
            ctx.orders = Some(usage);
            return Err(e);
        }
    }
    let books = ctx.shared.books();
    let (order, fills) = venue.place(req, &books, now)?;
    Ok(Reply { result: place_result(&order, &fills, resp, now).to_string(), weight: 1 })
}

/// `order.cancel` (TRADE, weight 1): by `orderId` or `origClientOrderId`.
pub fn cancel(ctx: &mut Ctx<'_>, p: &Params) -> Result<Reply, BinanceError> {
    let now = now_ms();
    ctx.shared.creds.verify(p, now)?;
    let symbol = symbol(p)?;
    let (order_id, orig) = order_ref(p)?;
    let new_id = client_id(p, "newClientOrderId")?;
    let (o, orig) = ctx.shared.venue().cancel(&symbol, order_id, orig.as_deref(), new_id, now)?;
    Ok(Reply { result: cancel_result(&o, &orig, now).to_string(), weight: 1 })
}

/// `openOrders.cancelAll` (TRADE, weight 1).
pub fn cancel_all(ctx: &mut Ctx<'_>, p: &Params) -> Result<Reply, BinanceError> {
    let now = now_ms();
    ctx.shared.creds.verify(p, now)?;
    let symbol = symbol(p)?;
    let canceled = ctx.shared.venue().cancel_all(&symbol, now)?;
    let result: Vec<Value> = canceled.iter().map(|(o, orig)| cancel_result(o, orig, now)).collect();
    Ok(Reply { result: Value::Array(result).to_string(), weight: 1 })
}

/// `order.status` (USER_DATA, weight 4): one order, open or finished, by `orderId` or
/// `origClientOrderId` — how a client learns what became of an order whose answer or execution
/// reports it missed (a lost connection). Unknown: -2013.
pub fn status(ctx: &mut Ctx<'_>, p: &Params) -> Result<Reply, BinanceError> {
    ctx.shared.creds.verify(p, now_ms())?;
    let symbol = symbol(p)?;
    let (order_id, orig) = order_ref(p)?;
    let venue = ctx.shared.venue();
    if !ctx.shared.books().knows(&symbol) {
        return Err(invalid_symbol());
    }
    let o = venue.order(&symbol, order_id, orig.as_deref()).ok_or_else(no_such_order)?;
    Ok(Reply { result: Value::Object(order_fields(o)).to_string(), weight: 4 })
}

/// `openOrders.status` (USER_DATA, weight 6 with `symbol`, 80 without).
pub fn open_orders(ctx: &mut Ctx<'_>, p: &Params) -> Result<Reply, BinanceError> {
    ctx.shared.creds.verify(p, now_ms())?;
    let symbol = if p.contains("symbol") { Some(symbol(p)?) } else { None };
    let venue = ctx.shared.venue();
    if let Some(s) = &symbol
        && !ctx.shared.books().knows(s)
    {
        return Err(invalid_symbol());
    }
    let result: Vec<Value> = venue.open_orders(symbol.as_deref()).map(|o| Value::Object(order_fields(o))).collect();
    Ok(Reply { result: Value::Array(result).to_string(), weight: if symbol.is_some() { 6 } else { 80 } })
}

/// `account.status` (USER_DATA, weight 20).
pub fn account(ctx: &mut Ctx<'_>, p: &Params) -> Result<Reply, BinanceError> {
    ctx.shared.creds.verify(p, now_ms())?;
    let omit_zero = match p.text("omitZeroBalances").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(BinanceError::illegal("omitZeroBalances", "true, false")),
    };
    let venue = ctx.shared.venue();
    let cfg = venue.config();
    let balances: Vec<Value> = venue
        .balances()
        .filter(|&(_, free, locked)| !omit_zero || free != 0 || locked != 0)
        .map(|(asset, free, locked)| json!({"asset": asset, "free": dec8(free), "locked": dec8(locked)}))
        .collect();
    let result = json!({
        // Basis points.
        "makerCommission": cfg.maker_e8 / 10_000,
        "takerCommission": cfg.taker_e8 / 10_000,
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": {
            "maker": dec8(cfg.maker_e8.into()),
            "taker": dec8(cfg.taker_e8.into()),
            "buyer": "0.00000000",
            "seller": "0.00000000",
        },
        "canTrade": true,
        "canWithdraw": true,
        "canDeposit": true,
        "brokered": false,
        "requireSelfTradePrevention": false,
        "preventSor": false,
        "updateTime": venue.update_ms(),
        "accountType": "SPOT",
        "balances": balances,
        "permissions": ["SPOT"],
        "uid": 1,
    });
    Ok(Reply { result: result.to_string(), weight: 20 })
}

/// `userDataStream.subscribe.signature` (weight 2): this connection receives the account's
/// `executionReport` and `outboundAccountPosition` events as `{"subscriptionId":N,"event":…}`.
pub fn subscribe(ctx: &mut Ctx<'_>, p: &Params) -> Result<Reply, BinanceError> {
    ctx.shared.creds.verify(p, now_ms())?;
    if ctx.conn.subscription.is_some() {
        // Binance: one subscription per account per connection.
        return Err(BinanceError::bad(-1013, "This connection already has a User Data Stream subscription."));
    }
    let (id, tx) = ctx.conn.start_subscription();
    ctx.shared.venue().subscribe(ctx.conn.id, id, tx);
    Ok(Reply { result: json!({"subscriptionId": id}).to_string(), weight: 2 })
}

/// `userDataStream.unsubscribe` (weight 2): ends this connection's subscription (the one named
/// by `subscriptionId`, when sent).
pub fn unsubscribe(ctx: &mut Ctx<'_>, p: &Params) -> Result<Reply, BinanceError> {
    if let Some(id) = p.text("subscriptionId") {
        let id = id.parse::<u32>().map_err(|_| BinanceError::illegal("subscriptionId", "^[0-9]{1,5}$"))?;
        if ctx.conn.subscription != Some(id) {
            return Err(BinanceError::bad(-1100, format!("No active subscription with subscriptionId {id}.")));
        }
    }
    ctx.shared.venue().unsubscribe(ctx.conn.id);
    ctx.conn.end_subscription();
    Ok(Reply { result: "{}".into(), weight: 2 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::venue_sim::api::{Conn, handle};
    use crate::venue_sim::auth::{TEST_API_KEY, TEST_API_SECRET, payload, sign};
    use crate::venue_sim::wire::Snapshot;
    use crate::venue_sim::{Shared, latency};
    use std::sync::Arc;

    const P: i64 = hft_shared::px::SCALE;

    fn shared() -> Arc<Shared> {
        let s = Shared::for_tests();
        let snap = Snapshot { last_update_id: 9, bids: vec![(99 * P, P)], asks: vec![(101 * P, 2 * P)] };
        s.books().init("BTCUSDT", &snap);
        s
    }

    /// A signed request of `method` with `params` (a JSON object's members, may be empty).
    fn req(method: &str, params: &str) -> String {
        let mut fields = format!(r#""apiKey":"{TEST_API_KEY}","timestamp":{}"#, now_ms());
        if !params.is_empty() {
            fields = format!("{fields},{params}");
        }
        let raw = serde_json::from_str::<Box<serde_json::value::RawValue>>(&format!("{{{fields}}}")).expect("JSON");
        let sig = sign(TEST_API_SECRET, &payload(&Params::parse(Some(&raw)).expect("object")));
        format!(r#"{{"id":"t","method":"{method}","params":{{{fields},"signature":"{sig}"}}}}"#)
    }

    fn call(s: &Shared, conn: &mut Conn, text: &str) -> Value {
        serde_json::from_str(&handle(s, conn, text, latency::now_ns())).expect("JSON reply")
    }

    #[test]
    fn order_methods_answer_in_binance_shapes() {
        let s = shared();
        let mut c = Conn::new(&s);
        let v = call(
            &s,
            &mut c,
            &req("order.place", r#""symbol":"BTCUSDT","side":"BUY","type":"MARKET","quantity":"0.5""#),
        );
        assert_eq!(v["status"], 200, "{v}");
        let r = &v["result"];
        assert_eq!((r["status"].as_str(), r["executedQty"].as_str()), (Some("FILLED"), Some("0.50000000")), "{v}");
        assert_eq!(
            r["fills"][0],
            // A buy's commission in the base asset it receives, as Binance takes it.
            json!({"price":"101.00000000","qty":"0.50000000","commission":"0.00050000","commissionAsset":"BTC","tradeId":1})
        );
        let kinds: Vec<_> =
            v["rateLimits"].as_array().expect("limits").iter().map(|l| l["rateLimitType"].clone()).collect();
        assert_eq!(kinds, [json!("ORDERS"), json!("ORDERS"), json!("REQUEST_WEIGHT")]);
        assert_eq!(v["rateLimits"][0]["count"], 1);
        let v = call(
            &s,
            &mut c,
            &req(
                "order.place",
                r#""symbol":"btcusdt","side":"BUY","type":"LIMIT","timeInForce":"GTC","price":"98","quantity":"0.1","newClientOrderId":"a1","newOrderRespType":"ACK""#,
            ),
        );
        assert_eq!(v["result"].as_object().map(|m| m.len()), Some(5), "ACK: {v}");
        let v = call(&s, &mut c, &req("openOrders.status", r#""symbol":"BTCUSDT""#));
        assert_eq!(
            (v["result"][0]["clientOrderId"].as_str(), v["result"][0]["isWorking"].as_bool()),
            (Some("a1"), Some(true)),
            "{v}"
        );
        let v = call(&s, &mut c, &req("order.cancel", r#""symbol":"BTCUSDT","origClientOrderId":"a1""#));
        assert_eq!(
            (v["result"]["status"].as_str(), v["result"]["origClientOrderId"].as_str()),
            (Some("CANCELED"), Some("a1")),
            "{v}"
        );
        // order.status: finished orders too, with the client id they were placed with.
        let v = call(&s, &mut c, &req("order.status", r#""symbol":"BTCUSDT","origClientOrderId":"a1""#));
        assert_eq!(
            (v["status"].as_u64(), v["result"]["status"].as_str(), v["result"]["clientOrderId"].as_str()),
            (Some(200), Some("CANCELED"), Some("a1")),
            "{v}"
        );
        let v = call(&s, &mut c, &req("order.status", r#""symbol":"BTCUSDT","orderId":1"#));
        assert_eq!(
            (
                v["result"]["status"].as_str(),
                v["result"]["executedQty"].as_str(),
                v["result"]["cummulativeQuoteQty"].as_str()
            ),
            (Some("FILLED"), Some("0.50000000"), Some("50.50000000")),
            "{v}"
        );
        for (params, code) in [
            (r#""symbol":"BTCUSDT","origClientOrderId":"nope""#, -2013),
            (r#""symbol":"BTCUSDT","orderId":1,"origClientOrderId":"a1""#, -2013),
            (r#""symbol":"BTCUSDT""#, -1102),
            (r#""symbol":"NOPEUSDT","orderId":1"#, -1121),
        ] {
            let v = call(&s, &mut c, &req("order.status", params));
            assert_eq!((v["status"].as_u64(), v["error"]["code"].as_i64()), (Some(400), Some(code)), "{params}: {v}");
        }
        let v = call(&s, &mut c, &req("account.status", r#""omitZeroBalances":true"#));
        let balances = v["result"]["balances"].as_array().expect("balances").clone();
        assert_eq!(balances.len(), 2, "{v}");
        assert_eq!(v["result"]["makerCommission"], 10);
        for (params, status, code) in [
            (r#""symbol":"BTCUSDT","side":"UP","type":"MARKET","quantity":"1""#, 400, -1117),
            (r#""symbol":"BTCUSDT","side":"BUY","type":"STOP","quantity":"1""#, 400, -1116),
            (r#""symbol":"BTCUSDT","side":"BUY","type":"LIMIT","price":"99","quantity":"1""#, 400, -1102),
            (
                r#""symbol":"BTCUSDT","side":"BUY","type":"LIMIT","timeInForce":"GTD","price":"99","quantity":"1""#,
                400,
                -1115,
            ),
            (r#""symbol":"BTCUSDT","side":"BUY","type":"MARKET","timeInForce":"GTC","quantity":"1""#, 400, -1106),
            (r#""symbol":"BTCUSDT","side":"BUY","type":"MARKET""#, 400, -1102),
            (r#""symbol":"BTCUSDT","side":"BUY","type":"MARKET","quantity":"1e3""#, 400, -1100),
            (r#""symbol":"BTCUSDT","side":"BUY","type":"MARKET","quantity":"0.000000001""#, 400, -1111),
            (
                r#""symbol":"BTCUSDT","side":"BUY","type":"MARKET","quantity":"1","newClientOrderId":"no spaces""#,
                400,
                -1100,
            ),
            (r#""side":"BUY","type":"MARKET","quantity":"1""#, 400, -1102),
            (r#""symbol":"NOPEUSDT","side":"BUY","type":"MARKET","quantity":"1""#, 400, -1121),
        ] {
            let v = call(&s, &mut c, &req("order.place", params));
            assert_eq!(
                (v["status"].as_i64(), v["error"]["code"].as_i64()),
                (Some(status), Some(code)),
                "{params}: {v}"
            );
        }
        let v = call(&s, &mut c, &req("order.cancel", r#""symbol":"BTCUSDT""#));
        assert_eq!(v["error"]["code"], -1102, "{v}");
        let v = call(&s, &mut c, &req("openOrders.cancelAll", r#""symbol":"BTCUSDT""#));
        assert_eq!(v["error"]["code"], -2011, "{v}");
    }

    #[test]
    fn user_data_events_reach_the_subscribed_connection() {
        let s = shared();
        let mut c = Conn::new(&s);
        let v = call(&s, &mut c, &req("userDataStream.subscribe.signature", ""));
        assert_eq!(v["result"], json!({"subscriptionId": 0}), "{v}");
        let v = call(&s, &mut c, &req("userDataStream.subscribe.signature", ""));
        assert_eq!(v["status"], 400, "one subscription per connection: {v}");
        call(&s, &mut c, &req("order.place", r#""symbol":"BTCUSDT","side":"BUY","type":"MARKET","quantity":"0.5""#));
        let rx = c.events.as_mut().expect("subscribed");
        let mut events = Vec::new();
        while let Ok(t) = rx.try_recv() {
            let v: Value = serde_json::from_str(t.as_str()).expect("JSON");
            assert_eq!(v["subscriptionId"], 0);
            events.push(v["event"].clone());
        }
        let kinds: Vec<_> =
            events.iter().map(|e| (e["e"].as_str().unwrap_or(""), e["x"].as_str().unwrap_or(""))).collect();
        assert_eq!(kinds, [("executionReport", "NEW"), ("executionReport", "TRADE"), ("outboundAccountPosition", "")]);
        assert_eq!(
            (events[1]["X"].as_str(), events[1]["L"].as_str(), events[1]["n"].as_str(), events[1]["N"].as_str()),
            (Some("FILLED"), Some("101.00000000"), Some("0.00050000"), Some("BTC"))
        );
        let v = call(&s, &mut c, r#"{"id":1,"method":"userDataStream.unsubscribe","params":{"subscriptionId":3}}"#);
        assert_eq!(v["status"], 400, "{v}");
        let v = call(&s, &mut c, r#"{"id":1,"method":"userDataStream.unsubscribe"}"#);
        assert_eq!((v["status"].as_u64(), c.events.is_none()), (Some(200), true), "{v}");
    }
}
