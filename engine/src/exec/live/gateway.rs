//! [`LiveGateway`]: live orders over one Binance WS-API connection, driven by the hot thread.
//!
//! Life cycle, per connection: connect → `userDataStream.subscribe.signature` (executions and
//! balances are then pushed on the same connection) → reconcile: `openOrders.status` per symbol,
//! `account.status`, and `order.status` for every order whose `order.place` answer was lost with
//! the previous connection → [`GatewayEvent::Ready`]. Orders and cancels are accepted only while
//! ready. An `order.status` is only ever answered by the order's state or by `-2013` (the venue
//! does not know the order); any other refusal leaves the order's fate unknown, so the query is
//! kept and the connection dropped, to be asked again by the next reconciliation — never
//! reported as an order the venue does not have (it may have filled). A lost connection reports
//! [`GatewayEvent::Lost`] for each request in flight and [`GatewayEvent::Disconnected`], then
//! reconnects after a capped exponential backoff with jitter (reset only once a connection
//! reaches `Ready`, so a venue that accepts the socket and refuses the subscription is retried
//! ever more slowly), and subscribes and reconciles again.
//!
//! Rate limits: every answer's `rateLimits` updates a table of venue counts; requests sent since
//! are added locally. `place` is refused with [`SendError::Throttled`] while an `ORDERS` count has
//! reached its limit in the current window (windows are taken as aligned to the unix epoch, as
//! Binance's are), while `REQUEST_WEIGHT` would pass its limit, and until a 429/418 answer's
//! `retryAfter`. A usage at or above `rate_limit_warn_pct` is reported once per window as
//! [`GatewayEvent::RateLimit`].
//!
//! Time: every `now_ns` is unix time in ns (the engine's `Clock::unix_ns`), non-decreasing; it
//! signs requests (`timestamp`), places rate-limit windows and runs the timers.
//!
//! Thread: the hot thread; nothing blocks. Allocation: [`LiveGateway::new`] allocates every
//! buffer. Placing and cancelling (encode, sign, frame, write) and handling acks, rejections
//! and execution reports allocate nothing over `ws://` after warm-up. Connection set-up, and
//! event-queue growth when the consumer does not drain it (events are never dropped), may.
//!
//! Secrets: held in [`Credentials`]; `LiveGateway`'s `Debug` shows neither key nor secret.

use super::link::{Link, LinkCounters, Polled};
use super::request::{self, Place, REQUEST_CAP, RespType, SignCtx};
use super::response::{
    self, ApiResponse, Balance, Decoded, ExecutionReport, LimitKind, OrderSnapshot, RateLimitUsage, RateLimits,
    ResponseError, ResponseScratch, ResultShape,
};
use super::sign::{Credentials, CredentialsError};
use super::{ClientId, RequestKind, Sym};
use crate::feed::ws::backoff::Backoff;
use crate::feed::ws::conn::{self, WsUrl};
use crate::feed::ws::socket::Timers;
use crate::feed::ws::{DisconnectReason, FeedError};
use hft_shared::config::{Config, Secret};
use hft_shared::{OrderKind, Px, Qty, Side, SymbolId, TimeInForce};
use std::collections::VecDeque;
use std::sync::Arc;

/// Everything [`LiveGateway::new`] needs besides the keys. [`LiveParams::from_config`] fills it
/// from `[live]`, `symbols` and `[feed]`'s reconnect delays.
#[derive(Clone, Debug)]
pub struct LiveParams {
    /// WS-API endpoint, `ws://` or `wss://` (`wss://ws-api.binance.com:443/ws-api/v3`).
    pub api_url: String,
    /// Upper-case symbols; index = `SymbolId`.
    pub symbols: Vec<String>,
    /// `recvWindow` of signed requests, ms (1..=60000).
    pub recv_window_ms: u64,
    /// `newOrderRespType` of `order.place`.
    pub resp_type: RespType,
    /// First reconnect delay, ms (≥ 1).
    pub reconnect_min_ms: u64,
    /// Reconnect delay cap, ms (≥ `reconnect_min_ms`).
    pub reconnect_max_ms: u64,
    /// Period of our pings, ms.
    pub ping_interval_ms: u64,
    /// Nothing received for this long: reconnect, ms.
    pub dead_ms: u64,
    /// Limit on resolving + connecting + TLS + upgrade, ms.
    pub connect_timeout_ms: u64,
    /// Planned reconnect after this long open, ms (Binance closes WS-API connections at 24 h).
    pub max_connection_ms: u64,
    /// An answer overdue by this long drops the connection (then reconcile), ms.
    pub request_timeout_ms: u64,
    /// Largest message, bytes.
    pub max_message: usize,
    /// Requests in flight at once, 1..=1024.
    pub max_pending: usize,
    /// Open orders kept per symbol from reconciliation (Binance's default `MAX_NUM_ORDERS` is
    /// 200).
    pub max_open_orders: usize,
    /// Assets in the balance table.
    pub max_balances: usize,
    /// Report a rate limit's usage at or above this percentage of its limit, 1..=100.
    pub rate_limit_warn_pct: u32,
    /// Seed of jitter and masking keys; 0 = from the OS.
    pub seed: u64,
    /// TLS configuration for `wss://`; `None` = the ring provider with Mozilla's roots.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl LiveParams {
    pub const PING_INTERVAL_MS: u64 = 5_000;
    pub const DEAD_MS: u64 = 15_000;
    pub const CONNECT_TIMEOUT_MS: u64 = 10_000;
    pub const REQUEST_TIMEOUT_MS: u64 = 10_000;
    pub const MAX_MESSAGE: usize = 1 << 20;
    pub const MAX_PENDING: usize = 256;
    pub const MAX_OPEN_ORDERS: usize = 200;
    pub const MAX_BALANCES: usize = 256;
    pub const RATE_LIMIT_WARN_PCT: u32 = 80;

    pub fn from_config(cfg: &Config) -> Self {
        Self {
            api_url: cfg.live.api_url.clone(),
            symbols: cfg.symbols.clone(),
            recv_window_ms: cfg.live.recv_window_ms,
            resp_type: RespType::Ack,
            reconnect_min_ms: cfg.feed.reconnect_min_ms,
            reconnect_max_ms: cfg.feed.reconnect_max_ms,
            ping_interval_ms: Self::PING_INTERVAL_MS,
            dead_ms: Self::DEAD_MS,
            connect_timeout_ms: Self::CONNECT_TIMEOUT_MS,
            max_connection_ms: cfg.feed.max_connection_s.saturating_mul(1000),
            request_timeout_ms: Self::REQUEST_TIMEOUT_MS,
            max_message: Self::MAX_MESSAGE,
            max_pending: Self::MAX_PENDING,
            max_open_orders: Self::MAX_OPEN_ORDERS,
            max_balances: Self::MAX_BALANCES,
            rate_limit_warn_pct: Self::RATE_LIMIT_WARN_PCT,
            seed: 0,
            tls: None,
        }
    }

    fn validate(&self) -> Result<(), LiveError> {
        let bad = |name, msg: &str| Err(LiveError::BadParam { name, msg: msg.to_string() });
        if self.symbols.is_empty() || self.symbols.len() > 1024 {
            return bad("symbols", "need 1 to 1024 symbols");
        }
        for s in &self.symbols {
            if s.is_empty() || s.len() > Sym::MAX || !s.bytes().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) {
                return Err(LiveError::BadParam { name: "symbols", msg: format!("{s:?} is not an upper-case symbol") });
            }
        }
        if !(1..=60_000).contains(&self.recv_window_ms) {
            return bad("recv_window_ms", "must be 1..=60000");
        }
        if self.reconnect_min_ms == 0 || self.reconnect_min_ms > self.reconnect_max_ms {
            return bad("reconnect_min_ms", "must be ≥ 1 and ≤ reconnect_max_ms");
        }
        for (name, v) in [
            ("ping_interval_ms", self.ping_interval_ms),
            ("dead_ms", self.dead_ms),
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("max_connection_ms", self.max_connection_ms),
            ("request_timeout_ms", self.request_timeout_ms),
        ] {
            if v == 0 {
                return bad(name, "must be > 0");
            }
        }
        if !(4096..=(1 << 30)).contains(&self.max_message) {
            return bad("max_message", "must be 4 KiB..=1 GiB");
        }
        if !(1..=MAX_SLOTS).contains(&self.max_pending) {
            return bad("max_pending", "must be 1..=1024");
        }
        if !(1..=100_000).contains(&self.max_open_orders) {
            return bad("max_open_orders", "must be 1..=100000");
        }
        if !(1..=100_000).contains(&self.max_balances) {
            return bad("max_balances", "must be 1..=100000");
        }
        if !(1..=100).contains(&self.rate_limit_warn_pct) {
            return bad("rate_limit_warn_pct", "must be 1..=100");
        }
        Ok(())
    }
}

/// A gateway that cannot be built. Never carries a key or secret.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(transparent)]
    Url(#[from] FeedError),
    #[error("bad live parameter `{name}`: {msg}")]
    BadParam { name: &'static str, msg: String },
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
}

/// An order to place.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NewOrder {
    pub symbol: SymbolId,
    pub side: Side,
    pub kind: OrderKind,
    /// Used for `Limit` only.
    pub tif: TimeInForce,
    /// Positive.
    pub qty: Qty,
    /// Positive; ignored for `Market`.
    pub px: Px,
    pub client_id: ClientId,
}

/// Why a request was not sent. Nothing was sent and nothing is pending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// Not connected, subscribed and reconciled yet.
    NotReady,
    /// A venue rate limit is used up in the current window, or the venue asked us to wait.
    Throttled,
    /// Too many requests in flight, or the connection's send queue is full.
    Busy,
    /// Unknown symbol, non-positive quantity, or non-positive limit price.
    BadOrder,
}

/// Why a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DownReason {
    /// The connection failed or closed.
    Link(DisconnectReason),
    /// The venue refused a set-up request (subscription or reconciliation), or answered an
    /// `order.status` with neither the order nor `-2013`, with its answer's status and error
    /// code.
    Refused { request: RequestKind, status: u16, code: i32 },
    /// A request got no answer within `request_timeout_ms`.
    RequestTimeout(RequestKind),
    /// The venue ended the user-data subscription (`eventStreamTerminated`).
    StreamTerminated,
}

/// What the gateway reports, in order ([`LiveGateway::take_event`]). `Copy`, no heap.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GatewayEvent {
    /// Subscribed and reconciled: orders may be placed.
    Ready,
    /// An open connection was lost (requests in flight were reported as [`GatewayEvent::Lost`]
    /// first). Not ready until the next [`GatewayEvent::Ready`].
    Disconnected(DownReason),
    /// `order.place` accepted. `order_id` is the venue's.
    Ack { symbol: SymbolId, client_id: ClientId, order_id: u64 },
    /// The venue refused a request: a place, a cancel, a cancel-all (`client_id` empty) or a
    /// query — for a query always `-2013`: the order does not exist (a place whose answer was
    /// lost never arrived). A query refused otherwise is asked again ([`DownReason::Refused`]).
    Rejected { request: RequestKind, symbol: SymbolId, client_id: ClientId, status: u16, code: i32 },
    /// `order.cancel` answered: the order is canceled.
    Canceled { symbol: SymbolId, client_id: ClientId },
    /// `openOrders.cancelAll` answered; `count` orders were canceled.
    CanceledAll { symbol: SymbolId, count: usize },
    /// An `executionReport` for one of our symbols.
    Execution { symbol: SymbolId, report: ExecutionReport },
    /// An `order.status` answer (reconciliation of a place whose answer was lost, or a
    /// [`LiveGateway::query`]).
    OrderState { symbol: SymbolId, order: OrderSnapshot },
    /// The symbol's open orders as the venue listed them on (re)connection, in
    /// [`LiveGateway::open_orders`]; `complete` is false when some were not kept (capacity, or
    /// entries that could not be read).
    OpenOrders { symbol: SymbolId, count: usize, complete: bool },
    /// The balance table changed ([`LiveGateway::balances`]).
    Balances,
    /// A rate limit's usage reached `rate_limit_warn_pct` in its current window.
    RateLimit(RateLimitUsage),
    /// A request was in flight when the connection dropped: its outcome is unknown. A place is
    /// queried during the next reconciliation ([`GatewayEvent::OrderState`] or
    /// [`GatewayEvent::Rejected`] follows); a cancel's outcome shows in the next
    /// [`GatewayEvent::OpenOrders`].
    Lost { request: RequestKind, symbol: SymbolId, client_id: ClientId },
}

// The largest variant is `Execution` (a 256-byte report); events are copied through a queue.
const _: () = assert!(core::mem::size_of::<GatewayEvent>() <= 272);

/// Gateway counters (monotonic since construction).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveCounters {
    pub link: LinkCounters,
    /// Requests sent, by [`RequestKind::index`].
    pub requests: [u64; RequestKind::COUNT],
    /// Answers matched to a request.
    pub answers: u64,
    /// Error answers.
    pub rejected: u64,
    /// Answers that match no request in flight (dropped).
    pub unmatched: u64,
    /// Messages that failed to decode, by [`ResponseError::index`].
    pub malformed: [u64; ResponseError::COUNT],
    /// Valid messages of no use (other events).
    pub ignored: u64,
    pub executions: u64,
    /// Execution reports for symbols not traded here (dropped).
    pub foreign_executions: u64,
    /// Requests refused by [`SendError::Throttled`].
    pub throttled: u64,
    /// Requests in flight when a connection dropped.
    pub lost: u64,
    pub disconnects: u64,
    /// List entries not kept (open orders or balances past capacity, unreadable entries).
    pub list_dropped: u64,
    /// Events pushed past the event queue's start-up capacity (the consumer is behind).
    pub event_queue_grew: u64,
}

const SLOT_BITS: u32 = 10;
const MAX_SLOTS: usize = 1 << SLOT_BITS;
/// How often pending requests are checked for overdue answers, ns.
const TIMEOUT_CHECK_NS: u64 = 1_000_000;
/// Wait after a 429/418 answer without `retryAfter`, ns.
const DEFAULT_BACKOFF_NS: u64 = 1_000_000_000;
/// Binance's `NO_SUCH_ORDER`: the only refusal of an `order.status` that tells the order's fate.
const NO_SUCH_ORDER: i32 = -2013;
/// Most events one message can cause (rate-limit warnings, an answer, Ready/Disconnected).
const EVENTS_PER_MESSAGE: usize = RateLimits::CAP + 4;

#[derive(Clone, Copy, Debug, PartialEq)]
struct Pending {
    id: u64,
    kind: RequestKind,
    symbol: SymbolId,
    client_id: ClientId,
    sent_ns: u64,
    /// Part of the reconciliation: Ready waits for its answer.
    reconcile: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Connecting,
    Subscribing,
    Reconciling,
    Ready,
}

/// One rate limit as last known: the venue's count plus our requests since, in `window`.
#[derive(Clone, Copy, Debug)]
struct Limit {
    usage: RateLimitUsage,
    /// `now_ns / window_ns` when `usage.count` was last set.
    window: u64,
    warned: Option<u64>,
}

/// The gateway. See the module docs.
pub struct LiveGateway {
    link: Link,
    t: Timers,
    creds: Credentials,
    symbols: Vec<String>,
    recv_window_ms: u64,
    resp_type: RespType,
    request_timeout_ns: u64,
    warn_pct: u32,
    stage: Stage,
    /// Reconciliation: next symbol whose open orders to ask for; then the account; then the
    /// unresolved places.
    rec_next: usize,
    rec_account_sent: bool,
    /// Reconciliation requests sent and not yet answered.
    outstanding: usize,
    pending: Vec<Option<Pending>>,
    free: Vec<u16>,
    next_seq: u64,
    /// Places (and queries) whose answer was lost: queried on the next reconciliation.
    unresolved: Vec<(SymbolId, ClientId)>,
    out: Box<[u8]>,
    scratch: ResponseScratch,
    events: VecDeque<GatewayEvent>,
    event_cap: usize,
    open_orders: Vec<Vec<OrderSnapshot>>,
    balances: Vec<Balance>,
    limits: Vec<Limit>,
    blocked_until_ns: u64,
    next_timeout_check: u64,
    counters: LiveCounters,
}

impl core::fmt::Debug for LiveGateway {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LiveGateway")
            .field("link", &self.link)
            .field("credentials", &self.creds)
            .field("stage", &self.stage)
            .field("pending", &(self.pending.len() - self.free.len()))
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl LiveGateway {
    /// Builds the gateway (no I/O: the first `poll` connects). The key must be ASCII letters
    /// and digits; neither value is ever logged or formatted.
    pub fn new(p: LiveParams, api_key: &Secret, api_secret: &Secret) -> Result<Self, LiveError> {
        p.validate()?;
        let creds = Credentials::new(api_key, api_secret)?;
        let url = WsUrl::parse(&p.api_url)?;
        let tls = if url.tls {
            Some(match &p.tls {
                Some(c) => c.clone(),
                None => conn::default_tls_config()?,
            })
        } else {
            None
        };
        let seed = if p.seed != 0 {
            p.seed
        } else {
            use std::hash::{BuildHasher, Hasher};
            std::hash::RandomState::new().build_hasher().finish()
        };
        let ms = 1_000_000u64;
        let t = Timers {
            dead_ns: p.dead_ms.saturating_mul(ms),
            ping_ns: p.ping_interval_ms.saturating_mul(ms),
            max_conn_ns: p.max_connection_ms.saturating_mul(ms),
            connect_timeout_ns: p.connect_timeout_ms.saturating_mul(ms),
        };
        // The send queue holds a full reconciliation burst and a full window of orders.
        let write_cap = (p.max_pending + p.symbols.len() + 8) * (REQUEST_CAP / 2) + (64 << 10);
        let backoff = Backoff::new(p.reconnect_min_ms, p.reconnect_max_ms, seed ^ 1);
        let link = Link::new(url, tls, p.max_message, write_cap, backoff, seed ^ 2);
        let event_cap = 2 * (p.max_pending + EVENTS_PER_MESSAGE) + 256;
        let n = p.symbols.len();
        Ok(Self {
            link,
            t,
            creds,
            recv_window_ms: p.recv_window_ms,
            resp_type: p.resp_type,
            request_timeout_ns: p.request_timeout_ms.saturating_mul(ms),
            warn_pct: p.rate_limit_warn_pct,
            stage: Stage::Connecting,
            rec_next: 0,
            rec_account_sent: false,
            outstanding: 0,
            pending: vec![None; p.max_pending],
            free: (0..p.max_pending as u16).rev().collect(),
            next_seq: 1,
            unresolved: Vec::with_capacity(p.max_pending),
            out: vec![0u8; REQUEST_CAP].into_boxed_slice(),
            scratch: ResponseScratch::new(64 << 10, p.max_open_orders, p.max_balances),
            events: VecDeque::with_capacity(event_cap),
            event_cap,
            open_orders: (0..n).map(|_| Vec::with_capacity(p.max_open_orders)).collect(),
            balances: Vec::with_capacity(p.max_balances),
            limits: Vec::with_capacity(RateLimits::CAP),
            blocked_until_ns: 0,
            next_timeout_check: 0,
            counters: LiveCounters::default(),
            symbols: p.symbols,
        })
    }

    /// Drives the connection one step: at most one socket read, one write and one message
    /// handled. Returns whether anything happened. While the event queue is nearly full the
    /// gateway waits for the consumer (it neither reads nor drops).
    #[inline]
    pub fn poll(&mut self, now_ns: u64) -> bool {
        if self.events.len() + self.pending.len() + 2 * EVENTS_PER_MESSAGE > self.event_cap {
            return false;
        }
        let work = match self.link.poll(now_ns, &self.t) {
            Polled::Nothing => false,
            Polled::Opened => {
                self.on_open(now_ns);
                true
            }
            Polled::Text(loc) => {
                let decoded = response::decode(self.link.reader().message(loc), &mut self.scratch);
                self.on_message(decoded, now_ns);
                true
            }
            Polled::Lost { was_open, reason, .. } => {
                self.on_lost(was_open, DownReason::Link(reason));
                true
            }
        };
        if self.stage == Stage::Reconciling {
            self.pump_reconcile(now_ns);
        }
        if now_ns >= self.next_timeout_check {
            self.next_timeout_check = now_ns.saturating_add(TIMEOUT_CHECK_NS);
            self.check_timeouts(now_ns);
        }
        work
    }

    /// The oldest event not yet taken.
    #[inline]
    pub fn take_event(&mut self) -> Option<GatewayEvent> {
        self.events.pop_front()
    }

    /// Sends `order.place`. `Ok`: the request is on its way; its answer comes as
    /// [`GatewayEvent::Ack`] or [`GatewayEvent::Rejected`] (or [`GatewayEvent::Lost`]).
    #[inline]
    pub fn place(&mut self, o: &NewOrder, now_ns: u64) -> Result<(), SendError> {
        if self.stage != Stage::Ready {
            return Err(SendError::NotReady);
        }
        if o.symbol.index() >= self.symbols.len()
            || o.qty.raw() <= 0
            || (o.kind != OrderKind::Market && o.px.raw() <= 0)
            || o.client_id.is_empty()
        {
            return Err(SendError::BadOrder);
        }
        self.throttle(RequestKind::Place, now_ns)?;
        let (slot, id) = self.reserve()?;
        let place = Place {
            symbol: &self.symbols[o.symbol.index()],
            side: o.side,
            kind: o.kind,
            tif: o.tif,
            qty: o.qty,
            px: o.px,
            client_id: &o.client_id,
            resp: self.resp_type,
        };
        let ctx = sign_ctx(&self.creds, self.recv_window_ms, now_ns);
        let n = request::order_place(&mut self.out, id, &place, &ctx);
        self.dispatch(slot, id, n, RequestKind::Place, o.symbol, o.client_id, false, now_ns)
    }

    /// Sends `order.cancel` for the order with `client_id`. Answered by
    /// [`GatewayEvent::Canceled`] or [`GatewayEvent::Rejected`] (`-2011`: unknown order).
    pub fn cancel(&mut self, symbol: SymbolId, client_id: &ClientId, now_ns: u64) -> Result<(), SendError> {
        self.by_client_id(RequestKind::Cancel, symbol, client_id, now_ns)
    }

    /// Sends `order.status` for the order with `client_id`: [`GatewayEvent::OrderState`] or
    /// [`GatewayEvent::Rejected`] (`-2013`: no such order). A query lost with its connection, or
    /// refused with any other error, is repeated during the next reconciliation (no
    /// [`GatewayEvent::Lost`]; a refusal drops the connection: `Disconnected(Refused)`).
    pub fn query(&mut self, symbol: SymbolId, client_id: &ClientId, now_ns: u64) -> Result<(), SendError> {
        self.by_client_id(RequestKind::Query, symbol, client_id, now_ns)
    }

    /// Sends `openOrders.cancelAll` for `symbol`: [`GatewayEvent::CanceledAll`] or
    /// [`GatewayEvent::Rejected`] (`-2011` when nothing was open).
    pub fn cancel_all(&mut self, symbol: SymbolId, now_ns: u64) -> Result<(), SendError> {
        if self.stage != Stage::Ready {
            return Err(SendError::NotReady);
        }
        if symbol.index() >= self.symbols.len() {
            return Err(SendError::BadOrder);
        }
        self.throttle(RequestKind::CancelAll, now_ns)?;
        let (slot, id) = self.reserve()?;
        let ctx = sign_ctx(&self.creds, self.recv_window_ms, now_ns);
        let n = request::open_orders_cancel_all(&mut self.out, id, &self.symbols[symbol.index()], &ctx);
        self.dispatch(slot, id, n, RequestKind::CancelAll, symbol, ClientId::NONE, false, now_ns)
    }

    /// Subscribed and reconciled.
    pub fn is_ready(&self) -> bool {
        self.stage == Stage::Ready
    }

    /// The balance table: account balances from the last reconciliation, updated by
    /// `outboundAccountPosition` and `balanceUpdate` events.
    pub fn balances(&self) -> &[Balance] {
        &self.balances
    }

    /// `symbol`'s open orders as of the last reconciliation (not updated by later events).
    pub fn open_orders(&self, symbol: SymbolId) -> &[OrderSnapshot] {
        self.open_orders.get(symbol.index()).map_or(&[], Vec::as_slice)
    }

    /// Rate limits as last reported by the venue (plus our requests since, in the same window).
    pub fn rate_limits(&self) -> impl Iterator<Item = RateLimitUsage> + '_ {
        self.limits.iter().map(|l| l.usage)
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.pending.len() - self.free.len()
    }

    pub fn counters(&self) -> LiveCounters {
        LiveCounters { link: self.link.counters, ..self.counters }
    }

    // ---- sending ---------------------------------------------------------------------------------

    fn by_client_id(
        &mut self,
        kind: RequestKind,
        symbol: SymbolId,
        client_id: &ClientId,
        now_ns: u64,
    ) -> Result<(), SendError> {
        if self.stage != Stage::Ready {
            return Err(SendError::NotReady);
        }
        if symbol.index() >= self.symbols.len() || client_id.is_empty() {
            return Err(SendError::BadOrder);
        }
        self.throttle(kind, now_ns)?;
        self.send_by_client_id(kind, symbol, *client_id, false, now_ns)
    }

    /// Encodes and sends a request naming one order (cancel or query).
    fn send_by_client_id(
        &mut self,
        kind: RequestKind,
        symbol: SymbolId,
        client_id: ClientId,
        reconcile: bool,
        now_ns: u64,
    ) -> Result<(), SendError> {
        let (slot, id) = self.reserve()?;
        let name = &self.symbols[symbol.index()];
        let ctx = sign_ctx(&self.creds, self.recv_window_ms, now_ns);
        let n = match kind {
            RequestKind::Cancel => request::order_cancel(&mut self.out, id, name, &client_id, &ctx),
            _ => request::order_status(&mut self.out, id, name, &client_id, &ctx),
        };
        self.dispatch(slot, id, n, kind, symbol, client_id, reconcile, now_ns)
    }

    /// A free request slot and the id that maps back to it.
    #[inline]
    fn reserve(&mut self) -> Result<(usize, u64), SendError> {
        let slot = usize::from(*self.free.last().ok_or(SendError::Busy)?);
        Ok((slot, (self.next_seq << SLOT_BITS) | slot as u64))
    }

    /// Sends the encoded request in `out[..n]` and records it in `slot`.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn dispatch(
        &mut self,
        slot: usize,
        id: u64,
        n: Option<usize>,
        kind: RequestKind,
        symbol: SymbolId,
        client_id: ClientId,
        reconcile: bool,
        now_ns: u64,
    ) -> Result<(), SendError> {
        // Requests are at most REQUEST_CAP by construction; a miss would be a bug, refused.
        let Some(n) = n else { return Err(SendError::BadOrder) };
        if !self.link.send_text(&self.out[..n], now_ns) {
            return Err(if self.link.is_open() { SendError::Busy } else { SendError::NotReady });
        }
        self.free.pop();
        self.next_seq += 1;
        self.pending[slot] = Some(Pending { id, kind, symbol, client_id, sent_ns: now_ns, reconcile });
        self.counters.requests[kind.index()] += 1;
        self.count_sent(kind, now_ns);
        Ok(())
    }

    /// Refuses a request the venue's limits would refuse.
    fn throttle(&mut self, kind: RequestKind, now_ns: u64) -> Result<(), SendError> {
        let full = now_ns < self.blocked_until_ns
            || self.limits.iter().any(|l| {
                let in_window = now_ns / l.usage.window_ns().max(1) == l.window;
                let u = &l.usage;
                in_window
                    && match u.kind {
                        LimitKind::Orders => kind == RequestKind::Place && u.count >= u.limit,
                        LimitKind::RequestWeight => u.count.saturating_add(kind.weight()) > u.limit,
                        LimitKind::RawRequests => u.count >= u.limit,
                    }
            });
        if full {
            self.counters.throttled += 1;
            return Err(SendError::Throttled);
        }
        Ok(())
    }

    /// Adds a request just sent to the usage of the current windows.
    fn count_sent(&mut self, kind: RequestKind, now_ns: u64) {
        for l in &mut self.limits {
            let add = match l.usage.kind {
                LimitKind::Orders if kind == RequestKind::Place => 1,
                LimitKind::Orders => continue,
                LimitKind::RequestWeight => kind.weight(),
                LimitKind::RawRequests => 1,
            };
            let w = now_ns / l.usage.window_ns().max(1);
            if w != l.window {
                l.window = w;
                l.usage.count = 0;
            }
            l.usage.count = l.usage.count.saturating_add(add);
        }
    }

    // ---- the life cycle --------------------------------------------------------------------------

    fn on_open(&mut self, now_ns: u64) {
        self.stage = Stage::Subscribing;
        let Ok((slot, id)) = self.reserve() else {
            return self.give_up(DownReason::Refused { request: RequestKind::Subscribe, status: 0, code: 0 }, now_ns);
        };
        let ctx = sign_ctx(&self.creds, self.recv_window_ms, now_ns);
        let n = request::user_data_subscribe(&mut self.out, id, &ctx);
        if self.dispatch(slot, id, n, RequestKind::Subscribe, SymbolId(0), ClientId::NONE, false, now_ns).is_err()
            && self.link.is_open()
        {
            self.give_up(DownReason::Refused { request: RequestKind::Subscribe, status: 0, code: 0 }, now_ns);
        }
    }

    fn start_reconcile(&mut self, now_ns: u64) {
        self.stage = Stage::Reconciling;
        self.rec_next = 0;
        self.rec_account_sent = false;
        self.outstanding = 0;
        self.pump_reconcile(now_ns);
    }

    /// Sends the reconciliation requests not sent yet, as far as slots and the send queue
    /// allow; `Ready` once all are sent and answered.
    fn pump_reconcile(&mut self, now_ns: u64) {
        while self.stage == Stage::Reconciling && self.link.is_open() {
            let sent = if self.rec_next < self.symbols.len() {
                let Ok((slot, id)) = self.reserve() else { return };
                let symbol = SymbolId(self.rec_next as u16);
                let ctx = sign_ctx(&self.creds, self.recv_window_ms, now_ns);
                let n = request::open_orders_status(&mut self.out, id, &self.symbols[self.rec_next], &ctx);
                let r = self.dispatch(slot, id, n, RequestKind::OpenOrders, symbol, ClientId::NONE, true, now_ns);
                if r.is_ok() {
                    self.rec_next += 1;
                }
                r
            } else if !self.rec_account_sent {
                let Ok((slot, id)) = self.reserve() else { return };
                let ctx = sign_ctx(&self.creds, self.recv_window_ms, now_ns);
                let n = request::account_status(&mut self.out, id, &ctx);
                let r = self.dispatch(slot, id, n, RequestKind::Account, SymbolId(0), ClientId::NONE, true, now_ns);
                if r.is_ok() {
                    self.rec_account_sent = true;
                }
                r
            } else if let Some(&(symbol, client_id)) = self.unresolved.last() {
                let r = self.send_by_client_id(RequestKind::Query, symbol, client_id, true, now_ns);
                if r.is_ok() {
                    self.unresolved.pop();
                }
                r
            } else {
                if self.outstanding == 0 {
                    self.stage = Stage::Ready;
                    self.link.reset_backoff();
                    self.push(GatewayEvent::Ready);
                }
                return;
            };
            match sent {
                Ok(()) => self.outstanding += 1,
                // Slots or queue space free up as answers come; try again next poll.
                Err(_) => return,
            }
        }
    }

    /// Drops an open connection on the gateway's own initiative.
    fn give_up(&mut self, reason: DownReason, now_ns: u64) {
        let was_open = self.link.is_open();
        self.link.drop_open(now_ns);
        self.on_lost(was_open, reason);
    }

    fn on_lost(&mut self, was_open: bool, reason: DownReason) {
        self.stage = Stage::Connecting;
        self.outstanding = 0;
        for slot in 0..self.pending.len() {
            let Some(p) = self.pending[slot].take() else { continue };
            self.free.push(slot as u16);
            // Capacity suffices: unresolved orders plus requests in flight never exceed
            // `max_pending` (no place is sent before reconciliation has queried them all).
            let query_later = matches!(p.kind, RequestKind::Place | RequestKind::Query);
            if query_later && self.unresolved.len() < self.unresolved.capacity() {
                self.unresolved.push((p.symbol, p.client_id));
            }
            if matches!(p.kind, RequestKind::Place | RequestKind::Cancel | RequestKind::CancelAll) {
                self.counters.lost += 1;
                self.push(GatewayEvent::Lost { request: p.kind, symbol: p.symbol, client_id: p.client_id });
            }
        }
        if was_open {
            self.counters.disconnects += 1;
            self.push(GatewayEvent::Disconnected(reason));
        }
    }

    fn check_timeouts(&mut self, now_ns: u64) {
        if self.free.len() == self.pending.len() {
            return;
        }
        let overdue =
            self.pending.iter().flatten().find(|p| now_ns.saturating_sub(p.sent_ns) >= self.request_timeout_ns);
        if let Some(p) = overdue {
            let kind = p.kind;
            self.give_up(DownReason::RequestTimeout(kind), now_ns);
        }
    }

    // ---- receiving -------------------------------------------------------------------------------

    fn on_message(&mut self, decoded: Result<Decoded, ResponseError>, now_ns: u64) {
        match decoded {
            Err(e) => self.counters.malformed[e.index()] += 1,
            Ok(Decoded::Api(a)) => self.on_answer(&a, now_ns),
            Ok(Decoded::Execution(report)) => match self.symbol_id(&report.symbol) {
                Some(symbol) => {
                    self.counters.executions += 1;
                    self.push(GatewayEvent::Execution { symbol, report });
                }
                None => self.counters.foreign_executions += 1,
            },
            Ok(Decoded::AccountPosition { dropped, .. }) => {
                self.counters.list_dropped += dropped as u64;
                for i in 0..self.scratch.balances().len() {
                    let b = self.scratch.balances()[i];
                    self.upsert_balance(b.asset, |x| {
                        x.free = b.free;
                        x.locked = b.locked;
                    });
                }
                self.push(GatewayEvent::Balances);
            }
            Ok(Decoded::BalanceUpdate(d)) => {
                self.upsert_balance(d.asset, |x| x.free = Qty(x.free.raw().saturating_add(d.delta.raw())));
                self.push(GatewayEvent::Balances);
            }
            Ok(Decoded::StreamTerminated) => self.give_up(DownReason::StreamTerminated, now_ns),
            Ok(Decoded::Ignored) => self.counters.ignored += 1,
        }
    }

    fn on_answer(&mut self, a: &ApiResponse, now_ns: u64) {
        self.note_rate_limits(&a.rate_limits, now_ns);
        if let Some(e) = a.error {
            self.counters.rejected += 1;
            let until = match e.retry_after_ms {
                Some(ms) => ms.saturating_mul(1_000_000),
                None if matches!(a.status, 418 | 429) => now_ns.saturating_add(DEFAULT_BACKOFF_NS),
                None => 0,
            };
            self.blocked_until_ns = self.blocked_until_ns.max(until);
        }
        let Some(p) = a.id.and_then(|id| self.take_pending(id)) else {
            self.counters.unmatched += 1;
            return;
        };
        self.counters.answers += 1;
        let ok = a.status == 200 && a.error.is_none();
        let code = a.error.map_or(0, |e| e.code);
        let refused = DownReason::Refused { request: p.kind, status: a.status, code };
        let (symbol, client_id) = (p.symbol, p.client_id);
        let rejected = GatewayEvent::Rejected { request: p.kind, symbol, client_id, status: a.status, code };
        match p.kind {
            RequestKind::Subscribe if ok => self.start_reconcile(now_ns),
            RequestKind::OpenOrders if ok => {
                let (count, dropped) = match a.result {
                    ResultShape::Orders { count, dropped } => (count, dropped),
                    _ => (0, 1),
                };
                self.counters.list_dropped += dropped as u64;
                let list = &mut self.open_orders[symbol.index()];
                list.clear();
                list.extend_from_slice(self.scratch.orders());
                self.push(GatewayEvent::OpenOrders { symbol, count, complete: dropped == 0 });
                self.reconciled(now_ns);
            }
            RequestKind::Account if ok => {
                if let ResultShape::Account { dropped, .. } = a.result {
                    self.counters.list_dropped += dropped as u64;
                }
                self.balances.clear();
                self.balances.extend_from_slice(self.scratch.balances());
                self.push(GatewayEvent::Balances);
                self.reconciled(now_ns);
            }
            RequestKind::Subscribe | RequestKind::OpenOrders | RequestKind::Account => self.give_up(refused, now_ns),
            RequestKind::Query => {
                match a.result {
                    ResultShape::Order(order) if ok => self.push(GatewayEvent::OrderState { symbol, order }),
                    _ if code == NO_SUCH_ORDER => self.push(rejected),
                    // Not an answer about the order (an unknown method, a timestamp outside the
                    // receive window, a rate limit, a venue fault, an unreadable result): what
                    // became of it is still unknown — it may have filled while its reports were
                    // lost. Reporting it as refused would close it without its fills. Asked
                    // again from the next connection's reconciliation, as a lost query is.
                    _ => {
                        if self.unresolved.len() < self.unresolved.capacity() {
                            self.unresolved.push((symbol, client_id));
                        }
                        return self.give_up(refused, now_ns);
                    }
                }
                if p.reconcile {
                    self.reconciled(now_ns);
                }
            }
            RequestKind::Place if ok => {
                let order_id = match a.result {
                    ResultShape::Order(o) => o.order_id,
                    _ => 0,
                };
                self.push(GatewayEvent::Ack { symbol, client_id, order_id });
            }
            RequestKind::Cancel if ok => self.push(GatewayEvent::Canceled { symbol, client_id }),
            RequestKind::CancelAll if ok => {
                let count = match a.result {
                    ResultShape::Orders { count, dropped } => count + dropped,
                    _ => 0,
                };
                self.push(GatewayEvent::CanceledAll { symbol, count });
            }
            RequestKind::Place | RequestKind::Cancel | RequestKind::CancelAll => self.push(rejected),
        }
    }

    /// One reconciliation answer arrived.
    fn reconciled(&mut self, now_ns: u64) {
        self.outstanding = self.outstanding.saturating_sub(1);
        if self.stage == Stage::Reconciling {
            self.pump_reconcile(now_ns);
        }
    }

    fn take_pending(&mut self, id: u64) -> Option<Pending> {
        let slot = (id & (MAX_SLOTS as u64 - 1)) as usize;
        let entry = self.pending.get_mut(slot)?;
        if entry.is_some_and(|p| p.id == id) {
            self.free.push(slot as u16);
            return entry.take();
        }
        None
    }

    fn note_rate_limits(&mut self, limits: &RateLimits, now_ns: u64) {
        for u in limits.iter() {
            let window = now_ns / u.window_ns().max(1);
            let found = self.limits.iter().position(|l| {
                l.usage.kind == u.kind && l.usage.interval == u.interval && l.usage.interval_num == u.interval_num
            });
            let i = match found {
                Some(i) => {
                    let l = &mut self.limits[i];
                    // Within a window the larger count wins: ours includes requests sent after
                    // the one this answer is for.
                    l.usage.count = if l.window == window { l.usage.count.max(u.count) } else { u.count };
                    l.usage.limit = u.limit;
                    l.window = window;
                    i
                }
                None if self.limits.len() < self.limits.capacity() => {
                    self.limits.push(Limit { usage: *u, window, warned: None });
                    self.limits.len() - 1
                }
                None => continue,
            };
            let l = &mut self.limits[i];
            let high = u64::from(l.usage.count) * 100 >= u64::from(l.usage.limit) * u64::from(self.warn_pct);
            if high && l.warned != Some(window) {
                l.warned = Some(window);
                let usage = l.usage;
                self.push(GatewayEvent::RateLimit(usage));
            }
        }
    }

    fn upsert_balance(&mut self, asset: Sym, f: impl FnOnce(&mut Balance)) {
        if let Some(b) = self.balances.iter_mut().find(|b| b.asset == asset) {
            f(b);
        } else if self.balances.len() < self.balances.capacity() {
            let mut b = Balance { asset, free: Qty::ZERO, locked: Qty::ZERO };
            f(&mut b);
            self.balances.push(b);
        } else {
            self.counters.list_dropped += 1;
        }
    }

    #[inline]
    fn symbol_id(&self, s: &Sym) -> Option<SymbolId> {
        self.symbols.iter().position(|x| x.as_bytes() == s.as_bytes()).map(|i| SymbolId(i as u16))
    }

    #[inline]
    fn push(&mut self, e: GatewayEvent) {
        if self.events.len() == self.events.capacity() {
            self.counters.event_queue_grew += 1;
        }
        self.events.push_back(e);
    }
}

#[inline]
fn sign_ctx(creds: &Credentials, recv_window_ms: u64, now_ns: u64) -> SignCtx<'_> {
    SignCtx { creds, recv_window_ms, timestamp_ms: now_ns / 1_000_000 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> LiveParams {
        let cfg = Config::from_toml_str("symbols = [\"BTCUSDT\", \"ETHUSDT\"]\n", &|_| None).unwrap();
        LiveParams::from_config(&cfg)
    }

    fn keys() -> (Secret, Secret) {
        (Secret::new("KEY123".into()), Secret::new("very-secret".into()))
    }

    #[test]
    fn from_config_builds_without_io_and_debug_hides_keys() {
        let (k, s) = keys();
        let g = LiveGateway::new(params(), &k, &s).unwrap();
        assert!(!g.is_ready() && g.in_flight() == 0 && g.balances().is_empty());
        let dbg = format!("{g:?}");
        assert!(!dbg.contains("KEY123") && !dbg.contains("very-secret"), "{dbg}");
        let p = params();
        assert_eq!((p.api_url.as_str(), p.recv_window_ms), ("wss://ws-api.binance.com:443/ws-api/v3", 5000));
    }

    #[test]
    fn bad_params_and_keys_are_refused_by_name() {
        type Edit = fn(&mut LiveParams);
        let cases: [(&str, Edit); 7] = [
            ("symbols", |p| p.symbols.clear()),
            ("symbols", |p| p.symbols[0] = "btc usdt".into()),
            ("recv_window_ms", |p| p.recv_window_ms = 60_001),
            ("reconnect_min_ms", |p| p.reconnect_min_ms = 0),
            ("request_timeout_ms", |p| p.request_timeout_ms = 0),
            ("max_pending", |p| p.max_pending = 1025),
            ("rate_limit_warn_pct", |p| p.rate_limit_warn_pct = 0),
        ];
        let (k, s) = keys();
        for (name, edit) in cases {
            let mut p = params();
            edit(&mut p);
            match LiveGateway::new(p, &k, &s) {
                Err(LiveError::BadParam { name: n, .. }) => assert_eq!(n, name),
                other => panic!("{name}: {other:?}"),
            }
        }
        let mut p = params();
        p.api_url = "https://x".into();
        assert!(matches!(LiveGateway::new(p, &k, &s), Err(LiveError::Url(_))));
        let e = LiveGateway::new(params(), &Secret::new("not a key".into()), &s).unwrap_err();
        assert!(
            matches!(e, LiveError::Credentials(CredentialsError::BadApiKey)) && !e.to_string().contains("not a key")
        );
    }

    #[test]
    fn nothing_is_sent_before_ready() {
        let (k, s) = keys();
        let mut g = LiveGateway::new(params(), &k, &s).unwrap();
        let o = NewOrder {
            symbol: SymbolId(0),
            side: Side::Buy,
            kind: OrderKind::Limit,
            tif: TimeInForce::Gtc,
            qty: Qty::ONE,
            px: Px::ONE,
            client_id: ClientId::new(b"a").unwrap(),
        };
        assert_eq!(g.place(&o, 1), Err(SendError::NotReady));
        assert_eq!(g.cancel(SymbolId(0), &o.client_id, 1), Err(SendError::NotReady));
        assert_eq!(g.cancel_all(SymbolId(0), 1), Err(SendError::NotReady));
        assert_eq!(g.take_event(), None);
    }

    #[test]
    fn rate_limit_windows_throttle_orders_until_the_next_window() {
        let (k, s) = keys();
        let mut g = LiveGateway::new(params(), &k, &s).unwrap();
        let ten_s = 10_000_000_000u64;
        let t0 = 1_700_000_000 * 1_000_000_000u64; // a multiple of 10 s
        let mut rl = RateLimits::EMPTY;
        let orders = |count| RateLimitUsage {
            kind: LimitKind::Orders,
            interval: response::LimitInterval::Second,
            interval_num: 10,
            limit: 50,
            count,
        };
        rl.push(orders(49));
        g.note_rate_limits(&rl, t0 + 1);
        assert_eq!(g.take_event(), Some(GatewayEvent::RateLimit(orders(49))), "49/50 ≥ 80%");
        assert_eq!(g.throttle(RequestKind::Place, t0 + 2), Ok(()));
        g.count_sent(RequestKind::Place, t0 + 2);
        assert_eq!(g.throttle(RequestKind::Place, t0 + 3), Err(SendError::Throttled));
        // Cancels do not count against ORDERS.
        assert_eq!(g.throttle(RequestKind::Cancel, t0 + 3), Ok(()));
        // A lower venue count in the same window does not undo our own count …
        let mut rl = RateLimits::EMPTY;
        rl.push(orders(49));
        g.note_rate_limits(&rl, t0 + 4);
        assert_eq!(g.throttle(RequestKind::Place, t0 + 5), Err(SendError::Throttled));
        // … and warnings come once per window.
        assert_eq!(g.take_event(), None);
        // The next window starts from zero.
        assert_eq!(g.throttle(RequestKind::Place, t0 + ten_s), Ok(()));
        assert_eq!(g.counters().throttled, 2);
        // A 429's retryAfter blocks everything until then.
        g.blocked_until_ns = t0 + 2 * ten_s;
        assert_eq!(g.throttle(RequestKind::Cancel, t0 + ten_s), Err(SendError::Throttled));
        assert_eq!(g.throttle(RequestKind::Cancel, t0 + 2 * ten_s), Ok(()));
    }

    /// A `Query` for `cid` in flight, as [`LiveGateway::query`] or reconciliation records it;
    /// its request id.
    fn query_in_flight(g: &mut LiveGateway, cid: &str, reconcile: bool) -> u64 {
        let (slot, id) = g.reserve().unwrap();
        g.free.pop();
        g.next_seq += 1;
        let client_id = ClientId::new(cid.as_bytes()).unwrap();
        g.pending[slot] =
            Some(Pending { id, kind: RequestKind::Query, symbol: SymbolId(0), client_id, sent_ns: 0, reconcile });
        id
    }

    fn answer(g: &mut LiveGateway, text: &str) {
        let decoded = response::decode(text.as_bytes(), &mut g.scratch);
        g.on_message(decoded, 1);
    }

    #[test]
    fn only_no_such_order_refuses_a_query_other_refusals_ask_again() {
        let (k, s) = keys();
        let mut g = LiveGateway::new(params(), &k, &s).unwrap();
        let cid = |c: &str| ClientId::new(c.as_bytes()).unwrap();
        // -2013: the venue does not know the order — reported, the order may be closed.
        let id = query_in_flight(&mut g, "gone-1", false);
        answer(
            &mut g,
            &format!(r#"{{"id":{id},"status":400,"error":{{"code":-2013,"msg":"Order does not exist."}}}}"#),
        );
        assert_eq!(
            g.take_event(),
            Some(GatewayEvent::Rejected {
                request: RequestKind::Query,
                symbol: SymbolId(0),
                client_id: cid("gone-1"),
                status: 400,
                code: -2013
            })
        );
        assert!(g.unresolved.is_empty() && g.in_flight() == 0);
        // Any other refusal says nothing about the order (it may have filled while its reports
        // were lost): not reported as refused, kept for the next reconciliation, which a new
        // connection runs.
        for (i, (status, code)) in [(400, -1100), (400, -1021), (429, -1003), (503, -1008)].into_iter().enumerate() {
            let c = format!("unknown-{i}");
            let id = query_in_flight(&mut g, &c, i % 2 == 0);
            let answer_text = format!(r#"{{"id":{id},"status":{status},"error":{{"code":{code},"msg":"no"}}}}"#);
            answer(&mut g, &answer_text);
            // (Never connected here, so no `Disconnected` follows the drop.)
            assert_eq!(g.take_event(), None, "{status} {code}");
            assert_eq!(g.unresolved.last(), Some(&(SymbolId(0), cid(&c))), "{status} {code}");
            assert!(!g.is_ready() && g.in_flight() == 0);
        }
        assert_eq!(g.unresolved.len(), 4);
        // An answer without the order is no answer either.
        let id = query_in_flight(&mut g, "odd-1", false);
        answer(&mut g, &format!(r#"{{"id":{id},"status":200,"result":{{}}}}"#));
        assert!(!g.events.iter().any(|e| matches!(e, GatewayEvent::Rejected { .. })), "{:?}", g.events);
        assert_eq!(g.unresolved.last(), Some(&(SymbolId(0), cid("odd-1"))));
    }

    #[test]
    fn request_ids_map_back_to_their_slot_once() {
        let (k, s) = keys();
        let mut g = LiveGateway::new(params(), &k, &s).unwrap();
        let (slot, id) = g.reserve().unwrap();
        g.free.pop();
        g.pending[slot] = Some(Pending {
            id,
            kind: RequestKind::Place,
            symbol: SymbolId(1),
            client_id: ClientId::new(b"x").unwrap(),
            sent_ns: 0,
            reconcile: false,
        });
        assert_eq!(g.in_flight(), 1);
        assert_eq!(g.take_pending(id + (1 << SLOT_BITS)), None, "another sequence number");
        assert_eq!(g.take_pending(id).map(|p| p.symbol), Some(SymbolId(1)));
        assert_eq!(g.take_pending(id), None);
        assert_eq!(g.in_flight(), 0);
    }
}
