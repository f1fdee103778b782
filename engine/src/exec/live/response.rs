//! WS-API message decoder: answers to our requests (`{"id":…,"status":…,"result"|"error":…,
//! "rateLimits":[…]}`) and the user-data events the venue pushes on the same connection
//! (`{"subscriptionId":…,"event":{"e":"executionReport",…}}`).
//!
//! Choice of parser: simd-json's tape over a padded copy of the message, with every buffer kept
//! in a [`ResponseScratch`] and reused — the approach of the feed's general decoder. These
//! messages are rare next to market data (one or two per order) and their shapes vary (orders,
//! order lists, balances, nested errors), so a schema-specialised scanner would buy little;
//! serde_json into owned structs would allocate per message. With the tape, decoding an ack, an
//! error or an execution report allocates nothing after warm-up; only a message larger than
//! the scratch's start-up size (a long reconciliation list) grows the buffers, once.
//!
//! Hot thread. Output is `Copy` data; lists (open orders, balances) go into the scratch's
//! fixed-capacity vectors, which never grow: entries past capacity are counted as dropped.
//!
//! Tolerance: unknown keys, unknown events and unknown rate-limit kinds are ignored. A message
//! that is not JSON, has a wrong type or misses a field that matters is a [`ResponseError`]
//! (counted by the gateway; never a panic). Order-list entries that are not plain orders
//! (OCO lists in a cancel-all answer) and unreadable list entries are skipped and counted.

use super::{ClientId, Sym};
use hft_shared::msg::event::OrderStatus;
use hft_shared::px::parse_fixed8;
use hft_shared::{Amount, OrderKind, Px, Qty, Side, TimeInForce};
use simd_json::prelude::{ValueAsScalar, ValueIntoString};
use simd_json::tape::{Object, Value};
use simd_json::{INPUT_PADDING, Tape, fill_tape_padded};

/// Why a message could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[repr(u8)]
pub enum ResponseError {
    #[error("not JSON")]
    Syntax = 0,
    #[error("a value has the wrong type")]
    WrongType = 1,
    #[error("a required field is missing")]
    MissingField = 2,
    #[error("a field appears twice")]
    DuplicateField = 3,
    #[error("a number or decimal is malformed or out of range")]
    BadNumber = 4,
    #[error("an enum value or a name this decoder does not know")]
    Unsupported = 5,
}

impl ResponseError {
    pub const COUNT: usize = 6;

    pub const fn index(self) -> usize {
        self as usize
    }

    pub const fn code(self) -> &'static str {
        match self {
            ResponseError::Syntax => "syntax",
            ResponseError::WrongType => "wrong_type",
            ResponseError::MissingField => "missing_field",
            ResponseError::DuplicateField => "duplicate_field",
            ResponseError::BadNumber => "bad_number",
            ResponseError::Unsupported => "unsupported",
        }
    }
}

use ResponseError::{BadNumber, DuplicateField, MissingField, Syntax, Unsupported, WrongType};

/// What a rate limit counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LimitKind {
    /// Unfilled orders placed (per 10 s, per day).
    Orders,
    /// Request weight (per minute).
    RequestWeight,
    RawRequests,
}

/// The unit of a rate limit's window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LimitInterval {
    Second,
    Minute,
    Hour,
    Day,
}

impl LimitInterval {
    pub const fn unit_ns(self) -> u64 {
        match self {
            LimitInterval::Second => 1_000_000_000,
            LimitInterval::Minute => 60_000_000_000,
            LimitInterval::Hour => 3_600_000_000_000,
            LimitInterval::Day => 86_400_000_000_000,
        }
    }
}

/// One `rateLimits` entry: the venue's count against its limit in the current window of
/// `interval_num` × `interval`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitUsage {
    pub kind: LimitKind,
    pub interval: LimitInterval,
    /// ≥ 1.
    pub interval_num: u32,
    pub limit: u32,
    pub count: u32,
}

impl RateLimitUsage {
    /// The window length, ns.
    pub const fn window_ns(&self) -> u64 {
        self.interval.unit_ns().saturating_mul(self.interval_num as u64)
    }
}

/// The `rateLimits` of one answer (the first [`RateLimits::CAP`] understood entries).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    len: u8,
    items: [Option<RateLimitUsage>; RateLimits::CAP],
}

impl RateLimits {
    pub const CAP: usize = 8;
    pub const EMPTY: RateLimits = RateLimits { len: 0, items: [None; RateLimits::CAP] };

    pub fn iter(&self) -> impl Iterator<Item = &RateLimitUsage> {
        self.items[..self.len as usize].iter().flatten()
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn push(&mut self, u: RateLimitUsage) {
        if let Some(slot) = self.items.get_mut(self.len as usize) {
            *slot = Some(u);
            self.len += 1;
        }
    }
}

/// A venue error: `{"code":-2010,"msg":"…","data":{"retryAfter":…}}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VenueError {
    /// Binance's error code (`-2010` new order rejected, `-2011` cancel rejected, `-1003` too
    /// many requests, `-1021` timestamp outside `recvWindow`, `-1022` bad signature, …); 0 when
    /// the answer had an error status and no readable code.
    pub code: i32,
    /// Unix time, ms, before which the venue refuses requests (on 429 and 418 answers).
    pub retry_after_ms: Option<u64>,
}

/// The venue's view of one order: an `order.place`/`order.cancel`/`order.status` result or an
/// `openOrders.status` entry. Fields an answer does not carry (an `ACK` carries only the ids and
/// time) are `None` or zero.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OrderSnapshot {
    pub symbol: Sym,
    pub order_id: u64,
    /// The order's own client id (`origClientOrderId` when the answer has one — a cancel's
    /// `clientOrderId` names the cancel request — else `clientOrderId`).
    pub client_id: ClientId,
    pub status: Option<OrderStatus>,
    pub side: Option<Side>,
    /// `None` for types the engine does not send (stop, take-profit).
    pub kind: Option<OrderKind>,
    pub tif: Option<TimeInForce>,
    pub px: Px,
    /// `origQty`.
    pub qty: Qty,
    /// `executedQty`.
    pub executed: Qty,
    /// `cummulativeQuoteQty` (sic), quote currency.
    pub quote_executed: Amount,
    /// `transactTime`, else `updateTime`, else `time`; unix ms.
    pub time_ms: u64,
}

/// One asset's balance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Balance {
    pub asset: Sym,
    pub free: Qty,
    pub locked: Qty,
}

/// `balanceUpdate`: a deposit, withdrawal or transfer changed `asset`'s free balance by
/// `delta`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BalanceDelta {
    pub asset: Sym,
    pub delta: Qty,
    /// `T`, unix ms.
    pub time_ms: u64,
}

/// `executionReport`'s `x`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExecType {
    New,
    Canceled,
    Replaced,
    Rejected,
    Trade,
    Expired,
    /// Expired by self-trade prevention.
    TradePrevention,
    /// A value this decoder does not know (the status `X` still says what happened).
    Other,
}

impl ExecType {
    fn parse(s: &str) -> Self {
        match s {
            "NEW" => ExecType::New,
            "CANCELED" => ExecType::Canceled,
            "REPLACED" => ExecType::Replaced,
            "REJECTED" => ExecType::Rejected,
            "TRADE" => ExecType::Trade,
            "EXPIRED" => ExecType::Expired,
            "TRADE_PREVENTION" => ExecType::TradePrevention,
            _ => ExecType::Other,
        }
    }
}

/// An `executionReport` event.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExecutionReport {
    /// `s`.
    pub symbol: Sym,
    /// The order's own client id: `C` (the original id, set on cancels) when not empty, else
    /// `c`.
    pub client_id: ClientId,
    /// `i`.
    pub order_id: u64,
    /// `S`.
    pub side: Side,
    /// `o`; `None` for types the engine does not send.
    pub kind: Option<OrderKind>,
    /// `f`.
    pub tif: Option<TimeInForce>,
    /// `x`.
    pub exec: ExecType,
    /// `X`.
    pub status: OrderStatus,
    /// `r` (`NONE` unless rejected), truncated to 32 bytes.
    pub reject_reason: Sym,
    /// `q`, `p`: the order's quantity and limit price.
    pub qty: Qty,
    pub px: Px,
    /// `l`, `L`: this execution's quantity and price (zero unless `exec` is `Trade`).
    pub last_qty: Qty,
    pub last_px: Px,
    /// `z`: cumulative filled quantity.
    pub cum_qty: Qty,
    /// `Z`: cumulative quote quantity.
    pub cum_quote: Amount,
    /// `n` in asset `N` (`N` empty when no commission was charged).
    pub commission: Qty,
    pub commission_asset: Sym,
    /// `t`; `None` when not a trade (`-1`).
    pub trade_id: Option<u64>,
    /// `m`: the fill was on the maker side.
    pub maker: bool,
    /// `E`, `T`: event and transaction time, unix ms.
    pub event_time_ms: u64,
    pub trade_time_ms: u64,
}

/// What an answer's `result` holds, recognised by shape.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ResultShape {
    /// No `result` (error answers), or `null`.
    Empty,
    /// One order (place, cancel, status).
    Order(OrderSnapshot),
    /// A list of orders, in [`ResponseScratch::orders`]; `dropped` entries were skipped (not
    /// orders, unreadable, or past capacity).
    Orders { count: usize, dropped: usize },
    /// Account information; balances in [`ResponseScratch::balances`].
    Account { count: usize, dropped: usize },
    /// `{"subscriptionId":n}`.
    Subscription(u32),
    /// Anything else.
    Other,
}

/// An answer to a request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ApiResponse {
    /// The request id, when it was an integer (as a number or a numeric string).
    pub id: Option<u64>,
    pub status: u16,
    /// Set on error answers.
    pub error: Option<VenueError>,
    pub rate_limits: RateLimits,
    pub result: ResultShape,
}

/// A decoded message.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decoded {
    Api(ApiResponse),
    Execution(ExecutionReport),
    /// `outboundAccountPosition`: the changed balances, in [`ResponseScratch::balances`].
    AccountPosition {
        count: usize,
        dropped: usize,
    },
    BalanceUpdate(BalanceDelta),
    /// `eventStreamTerminated`: the user-data subscription ended.
    StreamTerminated,
    /// Valid JSON this decoder has no use for (other events, other messages).
    Ignored,
}

/// The decoder's reusable buffers and its list outputs.
pub struct ResponseScratch {
    input: Vec<u8>,
    simd: simd_json::Buffers,
    tape: Tape<'static>,
    orders: Vec<OrderSnapshot>,
    balances: Vec<Balance>,
}

impl core::fmt::Debug for ResponseScratch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ResponseScratch")
            .field("input_capacity", &self.input.capacity())
            .field("orders_capacity", &self.orders.capacity())
            .field("balances_capacity", &self.balances.capacity())
            .finish_non_exhaustive()
    }
}

impl ResponseScratch {
    /// Buffers for messages up to `message_bytes` without growing, and list capacities.
    pub fn new(message_bytes: usize, max_orders: usize, max_balances: usize) -> Self {
        Self {
            input: Vec::with_capacity(message_bytes + INPUT_PADDING),
            simd: simd_json::Buffers::new(message_bytes),
            tape: Tape(Vec::with_capacity(message_bytes / 4 + 64)),
            orders: Vec::with_capacity(max_orders),
            balances: Vec::with_capacity(max_balances),
        }
    }

    /// The orders of the last [`ResultShape::Orders`].
    pub fn orders(&self) -> &[OrderSnapshot] {
        &self.orders
    }

    /// The balances of the last [`ResultShape::Account`] or [`Decoded::AccountPosition`].
    pub fn balances(&self) -> &[Balance] {
        &self.balances
    }
}

/// Decodes one WS-API message. Lists replace the scratch's previous lists.
pub fn decode(frame: &[u8], scratch: &mut ResponseScratch) -> Result<Decoded, ResponseError> {
    scratch.orders.clear();
    scratch.balances.clear();
    let ResponseScratch { input, simd, tape: kept, orders, balances } = scratch;
    input.clear();
    input.extend_from_slice(frame);
    input.resize(frame.len() + INPUT_PADDING, 0);
    let mut tape = core::mem::replace(kept, Tape(Vec::new())).reset();
    let out = match fill_tape_padded(input, frame.len(), simd, &mut tape) {
        Ok(()) => root(tape.as_value(), orders, balances),
        Err(_) => Err(Syntax),
    };
    *kept = tape.reset();
    out
}

/// Stores a field's value, refusing a second occurrence.
#[inline]
fn once<T>(slot: &mut Option<T>, v: impl FnOnce() -> Result<T, ResponseError>) -> Result<(), ResponseError> {
    if slot.is_some() {
        return Err(DuplicateField);
    }
    *slot = Some(v()?);
    Ok(())
}

fn uint(v: Value<'_, '_>) -> Result<u64, ResponseError> {
    match v.as_u64() {
        Some(x) => Ok(x),
        None if v.as_i64().is_some() || v.as_f64().is_some() => Err(BadNumber),
        None => Err(WrongType),
    }
}

fn int(v: Value<'_, '_>) -> Result<i64, ResponseError> {
    match v.as_i64() {
        Some(x) => Ok(x),
        None if v.as_u64().is_some() || v.as_f64().is_some() => Err(BadNumber),
        None => Err(WrongType),
    }
}

fn text<'i>(v: Value<'_, 'i>) -> Result<&'i str, ResponseError> {
    v.into_string().ok_or(WrongType)
}

fn fixed8(v: Value<'_, '_>) -> Result<i64, ResponseError> {
    parse_fixed8(text(v)?.as_bytes()).map_err(|_| BadNumber)
}

/// A name (symbol, asset); `null` is empty.
fn name(v: Value<'_, '_>) -> Result<Sym, ResponseError> {
    if v.as_null().is_some() {
        return Ok(Sym::default());
    }
    Sym::new(text(v)?.as_bytes()).ok_or(Unsupported)
}

fn client_id(v: Value<'_, '_>) -> Result<ClientId, ResponseError> {
    if v.as_null().is_some() {
        return Ok(ClientId::NONE);
    }
    ClientId::from_venue(text(v)?.as_bytes()).ok_or(Unsupported)
}

fn boolean(v: Value<'_, '_>) -> Result<bool, ResponseError> {
    v.as_bool().ok_or(WrongType)
}

fn side(v: Value<'_, '_>) -> Result<Side, ResponseError> {
    match text(v)? {
        "BUY" => Ok(Side::Buy),
        "SELL" => Ok(Side::Sell),
        _ => Err(Unsupported),
    }
}

fn kind(v: Value<'_, '_>) -> Result<Option<OrderKind>, ResponseError> {
    Ok(match text(v)? {
        "MARKET" => Some(OrderKind::Market),
        "LIMIT" => Some(OrderKind::Limit),
        "LIMIT_MAKER" => Some(OrderKind::LimitMaker),
        _ => None,
    })
}

fn tif(v: Value<'_, '_>) -> Result<Option<TimeInForce>, ResponseError> {
    Ok(match text(v)? {
        "GTC" => Some(TimeInForce::Gtc),
        "IOC" => Some(TimeInForce::Ioc),
        "FOK" => Some(TimeInForce::Fok),
        _ => None,
    })
}

/// Binance's order status. `EXPIRED_IN_MATCH` (self-trade prevention) is an expiry;
/// `PENDING_CANCEL` (documented as unused) and unknown values are refused.
fn status(v: Value<'_, '_>) -> Result<OrderStatus, ResponseError> {
    Ok(match text(v)? {
        "PENDING_NEW" => OrderStatus::PendingNew,
        "NEW" => OrderStatus::New,
        "PARTIALLY_FILLED" => OrderStatus::PartiallyFilled,
        "FILLED" => OrderStatus::Filled,
        "CANCELED" => OrderStatus::Canceled,
        "REJECTED" => OrderStatus::Rejected,
        "EXPIRED" | "EXPIRED_IN_MATCH" => OrderStatus::Expired,
        _ => return Err(Unsupported),
    })
}

fn root(
    v: Value<'_, '_>,
    orders: &mut Vec<OrderSnapshot>,
    balances: &mut Vec<Balance>,
) -> Result<Decoded, ResponseError> {
    let obj = v.as_object().ok_or(WrongType)?;
    let (mut id, mut st, mut result, mut error, mut limits, mut event) = (None, None, None, None, None, None);
    for (k, v) in obj.iter() {
        match k {
            "id" => once(&mut id, || Ok(v))?,
            "status" => once(&mut st, || uint(v))?,
            "result" => once(&mut result, || Ok(v))?,
            "error" => once(&mut error, || Ok(v))?,
            "rateLimits" => once(&mut limits, || rate_limits(v))?,
            "event" => once(&mut event, || Ok(v))?,
            _ => {}
        }
    }
    if let Some(ev) = event {
        return user_event(&ev.as_object().ok_or(WrongType)?, balances);
    }
    let Some(st) = st else {
        return Ok(Decoded::Ignored);
    };
    let status = u16::try_from(st).ok().filter(|s| (100..=599).contains(s)).ok_or(BadNumber)?;
    let id = id.and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())));
    let error = match error {
        Some(e) => Some(venue_error(&e.as_object().ok_or(WrongType)?)?),
        None if status != 200 => Some(VenueError { code: 0, retry_after_ms: None }),
        None => None,
    };
    let result = match result {
        Some(r) if r.as_null().is_none() => result_shape(r, orders, balances)?,
        _ => ResultShape::Empty,
    };
    Ok(Decoded::Api(ApiResponse { id, status, error, rate_limits: limits.unwrap_or(RateLimits::EMPTY), result }))
}

fn venue_error(obj: &Object<'_, '_>) -> Result<VenueError, ResponseError> {
    let (mut code, mut retry) = (None, None);
    for (k, v) in obj.iter() {
        match k {
            "code" => once(&mut code, || int(v).and_then(|c| i32::try_from(c).map_err(|_| BadNumber)))?,
            "data" => {
                if let Some(d) = v.as_object() {
                    retry = d.get("retryAfter").and_then(|r| r.as_u64());
                }
            }
            _ => {}
        }
    }
    Ok(VenueError { code: code.unwrap_or(0), retry_after_ms: retry })
}

fn rate_limits(v: Value<'_, '_>) -> Result<RateLimits, ResponseError> {
    let mut out = RateLimits::EMPTY;
    for e in v.as_array().ok_or(WrongType)?.iter() {
        let o = e.as_object().ok_or(WrongType)?;
        let (mut kind, mut interval, mut num, mut limit, mut count) = (None, None, None, None, None);
        for (k, v) in o.iter() {
            match k {
                "rateLimitType" => {
                    once(&mut kind, || {
                        Ok(match text(v)? {
                            "ORDERS" => Some(LimitKind::Orders),
                            "REQUEST_WEIGHT" => Some(LimitKind::RequestWeight),
                            "RAW_REQUESTS" => Some(LimitKind::RawRequests),
                            _ => None,
                        })
                    })?;
                }
                "interval" => {
                    once(&mut interval, || {
                        Ok(match text(v)? {
                            "SECOND" => Some(LimitInterval::Second),
                            "MINUTE" => Some(LimitInterval::Minute),
                            "HOUR" => Some(LimitInterval::Hour),
                            "DAY" => Some(LimitInterval::Day),
                            _ => None,
                        })
                    })?;
                }
                "intervalNum" => once(&mut num, || small(v))?,
                "limit" => once(&mut limit, || small(v))?,
                "count" => once(&mut count, || small(v))?,
                _ => {}
            }
        }
        let (Some(kind), Some(interval)) = (kind, interval) else {
            return Err(MissingField);
        };
        // Kinds and intervals this decoder does not know are skipped.
        if let (Some(kind), Some(interval)) = (kind, interval) {
            let (num, limit, count) = (num.ok_or(MissingField)?, limit.ok_or(MissingField)?, count.unwrap_or(0));
            if num == 0 {
                return Err(BadNumber);
            }
            out.push(RateLimitUsage { kind, interval, interval_num: num, limit, count });
        }
    }
    Ok(out)
}

fn small(v: Value<'_, '_>) -> Result<u32, ResponseError> {
    u32::try_from(uint(v)?).map_err(|_| BadNumber)
}

fn result_shape(
    v: Value<'_, '_>,
    orders: &mut Vec<OrderSnapshot>,
    balances: &mut Vec<Balance>,
) -> Result<ResultShape, ResponseError> {
    if let Some(arr) = v.as_array() {
        let mut dropped = 0;
        for e in arr.iter() {
            match e.as_object().map(|o| order_snapshot(&o)) {
                Some(Ok(o)) if orders.len() < orders.capacity() => orders.push(o),
                _ => dropped += 1,
            }
        }
        return Ok(ResultShape::Orders { count: orders.len(), dropped });
    }
    let Some(obj) = v.as_object() else {
        return Ok(ResultShape::Other);
    };
    if let Some(b) = obj.get("balances") {
        let dropped = balance_list(b, balances, "asset", "free", "locked")?;
        return Ok(ResultShape::Account { count: balances.len(), dropped });
    }
    if obj.get("orderId").is_some() {
        return Ok(ResultShape::Order(order_snapshot(&obj)?));
    }
    if let Some(s) = obj.get("subscriptionId") {
        return Ok(ResultShape::Subscription(small(s)?));
    }
    Ok(ResultShape::Other)
}

fn order_snapshot(obj: &Object<'_, '_>) -> Result<OrderSnapshot, ResponseError> {
    let (mut sym, mut oid, mut cid, mut orig, mut st) = (None, None, None, None, None);
    let (mut sd, mut kd, mut tf, mut px, mut qty, mut exe, mut quote) = (None, None, None, None, None, None, None);
    let (mut transact, mut update, mut time) = (None, None, None);
    for (k, v) in obj.iter() {
        match k {
            "symbol" => once(&mut sym, || name(v))?,
            "orderId" => once(&mut oid, || uint(v))?,
            "clientOrderId" => once(&mut cid, || client_id(v))?,
            "origClientOrderId" => once(&mut orig, || client_id(v))?,
            "status" => once(&mut st, || status(v))?,
            "side" => once(&mut sd, || side(v))?,
            "type" => once(&mut kd, || kind(v))?,
            "timeInForce" => once(&mut tf, || tif(v))?,
            "price" => once(&mut px, || fixed8(v))?,
            "origQty" => once(&mut qty, || fixed8(v))?,
            "executedQty" => once(&mut exe, || fixed8(v))?,
            "cummulativeQuoteQty" => once(&mut quote, || fixed8(v))?,
            "transactTime" => once(&mut transact, || uint(v))?,
            "updateTime" => once(&mut update, || uint(v))?,
            "time" => once(&mut time, || uint(v))?,
            _ => {}
        }
    }
    let client_id = match orig {
        Some(o) if !o.is_empty() => o,
        _ => cid.ok_or(MissingField)?,
    };
    Ok(OrderSnapshot {
        symbol: sym.ok_or(MissingField)?,
        order_id: oid.ok_or(MissingField)?,
        client_id,
        status: st,
        side: sd,
        kind: kd.flatten(),
        tif: tf.flatten(),
        px: Px(px.unwrap_or(0)),
        qty: Qty(qty.unwrap_or(0)),
        executed: Qty(exe.unwrap_or(0)),
        quote_executed: Amount::from_fixed8(quote.unwrap_or(0)),
        time_ms: transact.or(update).or(time).unwrap_or(0),
    })
}

/// `[{asset, free, locked}, …]` into `out` (which never grows); returns the entries dropped.
fn balance_list(
    v: Value<'_, '_>,
    out: &mut Vec<Balance>,
    asset_key: &str,
    free_key: &str,
    locked_key: &str,
) -> Result<usize, ResponseError> {
    let mut dropped = 0;
    for e in v.as_array().ok_or(WrongType)?.iter() {
        let o = e.as_object().ok_or(WrongType)?;
        let (mut a, mut f, mut l) = (None, None, None);
        for (k, v) in o.iter() {
            if k == asset_key {
                once(&mut a, || Ok(v))?;
            } else if k == free_key {
                once(&mut f, || fixed8(v))?;
            } else if k == locked_key {
                once(&mut l, || fixed8(v))?;
            }
        }
        // An asset name too long to hold is skipped, not fatal: the others still count.
        match name(a.ok_or(MissingField)?) {
            Ok(asset) if out.len() < out.capacity() => {
                out.push(Balance { asset, free: Qty(f.ok_or(MissingField)?), locked: Qty(l.ok_or(MissingField)?) })
            }
            Ok(_) | Err(Unsupported) => dropped += 1,
            Err(e) => return Err(e),
        }
    }
    Ok(dropped)
}

fn user_event(obj: &Object<'_, '_>, balances: &mut Vec<Balance>) -> Result<Decoded, ResponseError> {
    let mut e = None;
    for (k, v) in obj.iter() {
        if k == "e" {
            once(&mut e, || Ok(v))?;
        }
    }
    match text(e.ok_or(MissingField)?)? {
        "executionReport" => execution_report(obj).map(Decoded::Execution),
        "outboundAccountPosition" => {
            let mut b = None;
            for (k, v) in obj.iter() {
                if k == "B" {
                    once(&mut b, || Ok(v))?;
                }
            }
            let dropped = balance_list(b.ok_or(MissingField)?, balances, "a", "f", "l")?;
            Ok(Decoded::AccountPosition { count: balances.len(), dropped })
        }
        "balanceUpdate" => {
            let (mut a, mut d, mut t) = (None, None, None);
            for (k, v) in obj.iter() {
                match k {
                    "a" => once(&mut a, || name(v))?,
                    "d" => once(&mut d, || fixed8(v))?,
                    "T" => once(&mut t, || uint(v))?,
                    _ => {}
                }
            }
            Ok(Decoded::BalanceUpdate(BalanceDelta {
                asset: a.ok_or(MissingField)?,
                delta: Qty(d.ok_or(MissingField)?),
                time_ms: t.unwrap_or(0),
            }))
        }
        "eventStreamTerminated" => Ok(Decoded::StreamTerminated),
        _ => Ok(Decoded::Ignored),
    }
}

fn execution_report(obj: &Object<'_, '_>) -> Result<ExecutionReport, ResponseError> {
    let (mut s, mut c, mut orig, mut sd, mut o, mut f, mut x, mut st, mut r) =
        (None, None, None, None, None, None, None, None, None);
    let (mut q, mut p, mut l, mut lp, mut z, mut zq, mut n, mut na) = (None, None, None, None, None, None, None, None);
    let (mut i, mut t, mut m, mut ev, mut tt) = (None, None, None, None, None);
    for (k, v) in obj.iter() {
        match k {
            "s" => once(&mut s, || name(v))?,
            "c" => once(&mut c, || client_id(v))?,
            "C" => once(&mut orig, || client_id(v))?,
            "S" => once(&mut sd, || side(v))?,
            "o" => once(&mut o, || kind(v))?,
            "f" => once(&mut f, || tif(v))?,
            "x" => once(&mut x, || text(v).map(ExecType::parse))?,
            "X" => once(&mut st, || status(v))?,
            "r" => once(&mut r, || text(v).map(|t| Sym::new(&t.as_bytes()[..t.len().min(Sym::MAX)])))?,
            "q" => once(&mut q, || fixed8(v))?,
            "p" => once(&mut p, || fixed8(v))?,
            "l" => once(&mut l, || fixed8(v))?,
            "L" => once(&mut lp, || fixed8(v))?,
            "z" => once(&mut z, || fixed8(v))?,
            "Z" => once(&mut zq, || fixed8(v))?,
            "n" => once(&mut n, || if v.as_null().is_some() { Ok(0) } else { fixed8(v) })?,
            "N" => once(&mut na, || name(v))?,
            "i" => once(&mut i, || uint(v))?,
            "t" => once(&mut t, || int(v))?,
            "m" => once(&mut m, || boolean(v))?,
            "E" => once(&mut ev, || uint(v))?,
            "T" => once(&mut tt, || uint(v))?,
            _ => {}
        }
    }
    let client_id = match orig {
        Some(o) if !o.is_empty() => o,
        _ => c.ok_or(MissingField)?,
    };
    Ok(ExecutionReport {
        symbol: s.ok_or(MissingField)?,
        client_id,
        order_id: i.ok_or(MissingField)?,
        side: sd.ok_or(MissingField)?,
        kind: o.flatten(),
        tif: f.flatten(),
        exec: x.ok_or(MissingField)?,
        status: st.ok_or(MissingField)?,
        reject_reason: r.flatten().unwrap_or_default(),
        qty: Qty(q.unwrap_or(0)),
        px: Px(p.unwrap_or(0)),
        last_qty: Qty(l.ok_or(MissingField)?),
        last_px: Px(lp.ok_or(MissingField)?),
        cum_qty: Qty(z.ok_or(MissingField)?),
        cum_quote: Amount::from_fixed8(zq.unwrap_or(0)),
        commission: Qty(n.unwrap_or(0)),
        commission_asset: na.unwrap_or_default(),
        trade_id: t.and_then(|t| u64::try_from(t).ok()),
        maker: m.unwrap_or(false),
        event_time_ms: ev.ok_or(MissingField)?,
        trade_time_ms: tt.unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> ResponseScratch {
        ResponseScratch::new(4096, 8, 8)
    }

    const RATE_LIMITS: &str = r#"[{"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":50,"count":3},{"rateLimitType":"ORDERS","interval":"DAY","intervalNum":1,"limit":160000,"count":3},{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":6000,"count":12}]"#;

    fn api(frame: &str, s: &mut ResponseScratch) -> ApiResponse {
        match decode(frame.as_bytes(), s) {
            Ok(Decoded::Api(a)) => a,
            other => panic!("{other:?} for {frame}"),
        }
    }

    #[test]
    fn an_ack_with_rate_limits() {
        let mut s = scratch();
        let f = format!(
            r#"{{"id":7,"status":200,"result":{{"symbol":"BTCUSDT","orderId":12569099453,"orderListId":-1,"clientOrderId":"hft-42","transactTime":1660801715793}},"rateLimits":{RATE_LIMITS}}}"#
        );
        let a = api(&f, &mut s);
        assert_eq!((a.id, a.status, a.error), (Some(7), 200, None));
        let ResultShape::Order(o) = a.result else { panic!("{:?}", a.result) };
        assert_eq!((o.symbol.as_str(), o.order_id, o.client_id.as_str()), ("BTCUSDT", 12_569_099_453, "hft-42"));
        assert_eq!((o.status, o.time_ms), (None, 1_660_801_715_793));
        let l: Vec<_> = a.rate_limits.iter().copied().collect();
        assert_eq!(
            l,
            vec![
                RateLimitUsage {
                    kind: LimitKind::Orders,
                    interval: LimitInterval::Second,
                    interval_num: 10,
                    limit: 50,
                    count: 3
                },
                RateLimitUsage {
                    kind: LimitKind::Orders,
                    interval: LimitInterval::Day,
                    interval_num: 1,
                    limit: 160_000,
                    count: 3
                },
                RateLimitUsage {
                    kind: LimitKind::RequestWeight,
                    interval: LimitInterval::Minute,
                    interval_num: 1,
                    limit: 6000,
                    count: 12
                },
            ]
        );
        assert_eq!(l[0].window_ns(), 10_000_000_000);
    }

    #[test]
    fn an_error_answer_carries_its_code_and_retry_time() {
        let mut s = scratch();
        let a = api(
            r#"{"id":"8","status":400,"error":{"code":-2010,"msg":"Account has insufficient balance for requested action."},"rateLimits":[{"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":50,"count":4}]}"#,
            &mut s,
        );
        assert_eq!((a.id, a.status, a.error), (Some(8), 400, Some(VenueError { code: -2010, retry_after_ms: None })));
        assert_eq!((a.result, a.rate_limits.len()), (ResultShape::Empty, 1));
        let a = api(
            r#"{"id":9,"status":429,"error":{"code":-1003,"msg":"Too much request weight used.","data":{"serverTime":1659127601003,"retryAfter":1659127616000}}}"#,
            &mut s,
        );
        assert_eq!(a.error, Some(VenueError { code: -1003, retry_after_ms: Some(1_659_127_616_000) }));
        assert!(a.rate_limits.is_empty());
        // An error status without an error object still reads as an error.
        assert_eq!(
            api(r#"{"id":null,"status":503}"#, &mut s).error,
            Some(VenueError { code: 0, retry_after_ms: None })
        );
    }

    #[test]
    fn an_execution_report_on_the_ws_api() {
        let mut s = scratch();
        let f = r#"{"subscriptionId":0,"event":{"e":"executionReport","E":1499405658658,"s":"BTCUSDT","c":"hft-42","S":"BUY","o":"LIMIT","f":"GTC","q":"1.00000000","p":"0.10264410","P":"0.00000000","F":"0.00000000","g":-1,"C":"","x":"TRADE","X":"PARTIALLY_FILLED","r":"NONE","i":4293153,"l":"0.25000000","z":"0.25000000","L":"0.10264400","n":"0.00002500","N":"BNB","T":1499405658657,"t":77,"I":8641984,"w":false,"m":true,"M":false,"O":1499405658657,"Z":"0.02566100","Y":"0.02566100","Q":"0.00000000","W":1499405658657,"V":"NONE"}}"#;
        let Decoded::Execution(r) = decode(f.as_bytes(), &mut s).unwrap() else { panic!() };
        assert_eq!((r.symbol.as_str(), r.client_id.as_str(), r.order_id), ("BTCUSDT", "hft-42", 4_293_153));
        assert_eq!((r.side, r.kind, r.tif), (Side::Buy, Some(OrderKind::Limit), Some(TimeInForce::Gtc)));
        assert_eq!(
            (r.exec, r.status, r.reject_reason.as_str()),
            (ExecType::Trade, OrderStatus::PartiallyFilled, "NONE")
        );
        assert_eq!((r.qty, r.px), (Qty::parse("1").unwrap(), Px::parse("0.1026441").unwrap()));
        assert_eq!((r.last_qty, r.last_px), (Qty::parse("0.25").unwrap(), Px::parse("0.102644").unwrap()));
        assert_eq!((r.cum_qty, r.cum_quote.to_string()), (Qty::parse("0.25").unwrap(), "0.025661".to_string()));
        assert_eq!((r.commission, r.commission_asset.as_str()), (Qty::parse("0.000025").unwrap(), "BNB"));
        assert_eq!(
            (r.trade_id, r.maker, r.event_time_ms, r.trade_time_ms),
            (Some(77), true, 1_499_405_658_658, 1_499_405_658_657)
        );
    }

    #[test]
    fn a_cancel_report_names_the_original_order() {
        let mut s = scratch();
        let f = r#"{"subscriptionId":3,"event":{"e":"executionReport","E":1,"s":"ETHUSDT","c":"cancel-9","C":"hft-7","S":"SELL","o":"MARKET","f":"GTC","q":"1","p":"0","x":"CANCELED","X":"CANCELED","r":"NONE","i":5,"l":"0","z":"0","L":"0","n":"0","N":null,"T":2,"t":-1,"m":false}}"#;
        let Decoded::Execution(r) = decode(f.as_bytes(), &mut s).unwrap() else { panic!() };
        assert_eq!((r.client_id.as_str(), r.exec, r.status), ("hft-7", ExecType::Canceled, OrderStatus::Canceled));
        assert_eq!((r.trade_id, r.commission_asset.is_empty(), r.kind), (None, true, Some(OrderKind::Market)));
        // Self-trade prevention expiries are expiries.
        let f = f
            .replace(r#""X":"CANCELED""#, r#""X":"EXPIRED_IN_MATCH""#)
            .replace(r#""x":"CANCELED""#, r#""x":"TRADE_PREVENTION""#);
        let Decoded::Execution(r) = decode(f.as_bytes(), &mut s).unwrap() else { panic!() };
        assert_eq!((r.exec, r.status), (ExecType::TradePrevention, OrderStatus::Expired));
    }

    #[test]
    fn open_orders_and_cancel_results() {
        let mut s = scratch();
        let order = |cid: &str, st: &str| {
            format!(
                r#"{{"symbol":"BTCUSDT","orderId":12,"orderListId":-1,"clientOrderId":"{cid}","price":"23416.10000000","origQty":"0.00847000","executedQty":"0.00100000","cummulativeQuoteQty":"23.41610000","status":"{st}","timeInForce":"GTC","type":"LIMIT","side":"SELL","stopPrice":"0.00000000","icebergQty":"0.00000000","time":1660801715639,"updateTime":1660801717945,"isWorking":true,"workingTime":1660801715639,"origQuoteOrderQty":"0.00000000","selfTradePreventionMode":"NONE"}}"#
            )
        };
        let f = format!(
            r#"{{"id":3,"status":200,"result":[{},{}],"rateLimits":[]}}"#,
            order("a1", "NEW"),
            order("a2", "PARTIALLY_FILLED")
        );
        let a = api(&f, &mut s);
        assert_eq!(a.result, ResultShape::Orders { count: 2, dropped: 0 });
        let o = s.orders()[1];
        assert_eq!(
            (o.client_id.as_str(), o.status, o.side),
            ("a2", Some(OrderStatus::PartiallyFilled), Some(Side::Sell))
        );
        assert_eq!(
            (o.px, o.qty, o.executed),
            (Px::parse("23416.1").unwrap(), Qty::parse("0.00847").unwrap(), Qty::parse("0.001").unwrap())
        );
        assert_eq!((o.quote_executed.to_string(), o.time_ms), ("23.4161".to_string(), 1_660_801_717_945));
        // Past capacity, unknown statuses and order lists are dropped and counted.
        let many: Vec<String> = (0..10).map(|i| order(&format!("c{i}"), "NEW")).collect();
        let f = format!(
            r#"{{"id":4,"status":200,"result":[{},{},{{"orderListId":1,"contingencyType":"OCO","orders":[]}}]}}"#,
            many.join(","),
            order("x", "PENDING_CANCEL")
        );
        assert_eq!(api(&f, &mut s).result, ResultShape::Orders { count: 8, dropped: 4 });
        assert_eq!(
            api(r#"{"id":5,"status":200,"result":[]}"#, &mut s).result,
            ResultShape::Orders { count: 0, dropped: 0 }
        );
        // A cancel answer: the original order's id, not the cancel's.
        let f = r#"{"id":6,"status":200,"result":{"symbol":"BTCUSDT","origClientOrderId":"hft-1","orderId":12,"orderListId":-1,"clientOrderId":"91fe37ce9e69c90d6358c0","transactTime":1684804350068,"price":"23416.10","origQty":"0.00847","executedQty":"0.00001","cummulativeQuoteQty":"0.23416","status":"CANCELED","timeInForce":"GTC","type":"LIMIT","side":"SELL"}}"#;
        let ResultShape::Order(o) = api(f, &mut s).result else { panic!() };
        assert_eq!((o.client_id.as_str(), o.status), ("hft-1", Some(OrderStatus::Canceled)));
    }

    #[test]
    fn account_balances_and_balance_events() {
        let mut s = scratch();
        let f = r#"{"id":"x","status":200,"result":{"makerCommission":15,"canTrade":true,"updateTime":1660801833000,"accountType":"SPOT","balances":[{"asset":"BNB","free":"0.00000000","locked":"0.00000000"},{"asset":"BTC","free":"1.3447112","locked":"0.08600000"},{"asset":"USDT","free":"1021.21","locked":"0"}],"permissions":["SPOT"],"uid":354937868}}"#;
        let a = api(f, &mut s);
        assert_eq!((a.id, a.result), (None, ResultShape::Account { count: 3, dropped: 0 }));
        assert_eq!(
            s.balances()[1],
            Balance {
                asset: Sym::new(b"BTC").unwrap(),
                free: Qty::parse("1.3447112").unwrap(),
                locked: Qty::parse("0.086").unwrap()
            }
        );
        let f = r#"{"subscriptionId":0,"event":{"e":"outboundAccountPosition","E":1564034571105,"u":1564034571073,"B":[{"a":"ETH","f":"10000.000000","l":"0.000000"}]}}"#;
        assert_eq!(decode(f.as_bytes(), &mut s), Ok(Decoded::AccountPosition { count: 1, dropped: 0 }));
        assert_eq!(s.balances()[0].free, Qty::from_int(10_000));
        let f = r#"{"subscriptionId":0,"event":{"e":"balanceUpdate","E":1573200697110,"a":"BTC","d":"-100.00000000","T":1573200697068}}"#;
        assert_eq!(
            decode(f.as_bytes(), &mut s),
            Ok(Decoded::BalanceUpdate(BalanceDelta {
                asset: Sym::new(b"BTC").unwrap(),
                delta: Qty::from_int(-100),
                time_ms: 1_573_200_697_068
            }))
        );
    }

    #[test]
    fn subscriptions_terminations_and_unknown_events() {
        let mut s = scratch();
        assert_eq!(
            api(r#"{"id":1,"status":200,"result":{"subscriptionId":0}}"#, &mut s).result,
            ResultShape::Subscription(0)
        );
        let f = r#"{"subscriptionId":0,"event":{"e":"eventStreamTerminated","E":1728973001334}}"#;
        assert_eq!(decode(f.as_bytes(), &mut s), Ok(Decoded::StreamTerminated));
        let f = r#"{"subscriptionId":0,"event":{"e":"listStatus","E":1}}"#;
        assert_eq!(decode(f.as_bytes(), &mut s), Ok(Decoded::Ignored));
        assert_eq!(decode(br#"{"hello":1}"#, &mut s), Ok(Decoded::Ignored));
        assert_eq!(api(r#"{"id":2,"status":200,"result":{"serverTime":1}}"#, &mut s).result, ResultShape::Other);
        // Unknown rate-limit kinds are skipped.
        let f = r#"{"id":3,"status":200,"rateLimits":[{"rateLimitType":"NEW_THING","interval":"SECOND","intervalNum":1,"limit":1,"count":1}]}"#;
        assert!(api(f, &mut s).rate_limits.is_empty());
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        let mut s = scratch();
        let cases: [(&str, ResponseError); 10] = [
            ("not json", Syntax),
            ("[1,2]", WrongType),
            (r#"{"id":1,"status":"200"}"#, WrongType),
            (r#"{"id":1,"status":99999}"#, BadNumber),
            (r#"{"id":1,"status":200,"status":200}"#, DuplicateField),
            (r#"{"id":1,"status":400,"error":"bad"}"#, WrongType),
            (r#"{"id":1,"status":200,"result":{"orderId":1,"symbol":"X"}}"#, MissingField),
            (r#"{"id":1,"status":200,"result":{"orderId":-1,"symbol":"X","clientOrderId":"a"}}"#, BadNumber),
            (r#"{"subscriptionId":0,"event":{"e":"executionReport","s":"X"}}"#, MissingField),
            (r#"{"id":1,"status":200,"rateLimits":[{"rateLimitType":"ORDERS"}]}"#, MissingField),
        ];
        for (f, want) in cases {
            assert_eq!(decode(f.as_bytes(), &mut s), Err(want), "{f}");
        }
        let bad_status = r#"{"subscriptionId":0,"event":{"e":"executionReport","E":1,"s":"X","c":"a","S":"BUY","x":"NEW","X":"WHAT","i":1,"l":"0","z":"0","L":"0"}}"#;
        assert_eq!(decode(bad_status.as_bytes(), &mut s), Err(Unsupported));
        // Every prefix of valid messages: an error or a value, never a panic.
        let valid = [
            format!(r#"{{"id":7,"status":200,"result":{{"symbol":"BTCUSDT","orderId":1,"clientOrderId":"a"}},"rateLimits":{RATE_LIMITS}}}"#),
            r#"{"subscriptionId":0,"event":{"e":"executionReport","E":1,"s":"X","c":"a","S":"BUY","x":"NEW","X":"NEW","i":1,"l":"0","z":"0","L":"0"}}"#.to_string(),
        ];
        for v in &valid {
            assert!(decode(v.as_bytes(), &mut s).is_ok(), "{v}");
            for n in 0..v.len() {
                let _ = decode(&v.as_bytes()[..n], &mut s);
            }
        }
    }
}
