//! The fill model of paper, shadow and backtest modes: a simulated venue with order-entry and
//! acknowledgement latency, book-walking taker fills, queue position for resting orders, maker
//! and taker fees, and Binance's answers (acknowledgement, fills, final status, error codes).
//!
//! Role: exec stage, in place of the venue gateway. Runs on the hot thread, driven by the
//! engine's decision time (`ts_ns` of the frame being processed, recorded time in backtests),
//! never by a clock of its own. Allocates only in the constructors; never panics on any input.
//!
//! # Time
//! An order or cancel sent at `ts` reaches the venue at `ts + exec.order_latency_us`; the venue
//! handles it against the book as it is then; each venue event (acknowledgement, fill, final
//! status) reaches the engine `exec.ack_latency_us` later, through [`SimVenue::poll`]. Venue time
//! never goes backwards: an input older than the last venue event is taken at that event's time.
//! With constant latencies, requests and reports are first-in first-out.
//!
//! # Matching at arrival
//! * market: walks the opposite side best-first (one fill per level, at the level's price);
//!   what the book cannot fill expires;
//! * limit: takes liquidity the same way up to its price; the rest expires (IOC), rests (GTC), or
//!   FOK fills completely at arrival or expires with nothing;
//! * `LIMIT_MAKER`: one that would take is rejected with Binance's -2010 ("Order would
//!   immediately match and take."); otherwise it rests.
//!
//! # Resting orders (maker fills at the order's price)
//! A resting order sits behind the displayed quantity at its price when it arrived (`ahead`).
//! A public trade at its price consumes `ahead` first and then fills it; a trade through its
//! price (a sell below a resting buy, a buy above a resting sell) fills it completely. When the
//! displayed quantity at its price falls below `ahead` (cancellations), `ahead` falls to it.
//! Several of our orders at one price share a trade in arrival order.
//!
//! The book is never modified by simulated fills (it is the engine's, borrowed read-only): a
//! paper order is assumed too small to move the market, and the next diff is the truth.
//!
//! # Bounded queues, no lost report
//! Requests wait in a fixed FIFO, reports in another. Every live order owns one reserved report
//! slot for its final report (`Done`, or the fill that completes it), so a final report is never
//! lost. Acknowledgements and fills use the rest: an arrival is deferred until there is room for
//! at least its acknowledgement and one fill; a fill with no room is not made (the walk stops
//! as if the book ended there; a trade passes by the order) and is counted in
//! [`SimCounters::starved`]. With the default sizes this needs thousands of reports in flight.

use super::orders::{Order, OrderError, OrderTable};
use crate::book::{Book, SyncState};
use hft_shared::config::Config;
use hft_shared::msg::{Liquidity, OrderEvent, OrderStatus};
use hft_shared::{Amount, OrderId, OrderKind, Px, Qty, Side, SymbolId, TimeInForce};

/// Binance -2010: "Order would immediately match and take." (a `LIMIT_MAKER` that crosses).
pub const CODE_WOULD_TAKE: i32 = -2010;
/// Binance -2011: "Unknown order sent." (cancel of an order that is not open).
pub const CODE_UNKNOWN_ORDER: i32 = -2011;
/// Binance -1013: a filter failure (here: quantity or limit price not positive).
pub const CODE_FILTER: i32 = -1013;
/// Binance -1121: "Invalid symbol." (no book for the order's symbol).
pub const CODE_BAD_SYMBOL: i32 = -1121;

/// Report slots per order of capacity for acknowledgements and fills, beyond the one reserved
/// per order for its final report.
pub const REPORTS_PER_ORDER: usize = 16;
/// Fee rate scale: a rate `r` is held as `r × 1e8`.
const FEE_SCALE: i128 = 100_000_000;

/// A taker or maker fill reported to the engine.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SimFill {
    pub px: Px,
    pub qty: Qty,
    /// Fee in quote currency at the maker or taker rate (negative: rebate), rounded toward 0.
    pub fee: Amount,
    pub liquidity: Liquidity,
    /// The order's cumulative filled quantity after this fill.
    pub filled: Qty,
    /// The order is completely filled (`Filled`, final).
    pub last: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ReportKind {
    /// Accepted by the venue: `NEW`.
    Ack,
    Fill(SimFill),
    /// A final status other than `Filled` (which is the fill with `last`): `Canceled`,
    /// `Expired`, or `Rejected` with the venue's code.
    Done {
        status: OrderStatus,
        filled: Qty,
        venue_code: i32,
    },
    /// A cancel for an order the venue does not hold open (already filled, expired or
    /// canceled, or never known): nothing changes.
    CancelRejected {
        venue_code: i32,
    },
}

/// One answer of the simulated venue.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Report {
    pub id: OrderId,
    /// For `CancelRejected` of an order the venue never knew: `SymbolId(0)`, `Side::Buy`.
    pub symbol: SymbolId,
    pub side: Side,
    /// When it happened at the venue, ns.
    pub venue_ts_ns: u64,
    /// When the engine receives it: `venue_ts_ns + ack latency`, ns.
    pub ts_ns: u64,
    pub kind: ReportKind,
}

impl Report {
    /// The order's status after this report (`None` for a refused cancel).
    pub fn status(&self) -> Option<OrderStatus> {
        match self.kind {
            ReportKind::Ack => Some(OrderStatus::New),
            ReportKind::Fill(f) if f.last => Some(OrderStatus::Filled),
            ReportKind::Fill(_) => Some(OrderStatus::PartiallyFilled),
            ReportKind::Done { status, .. } => Some(status),
            ReportKind::CancelRejected { .. } => None,
        }
    }

    /// Applies the report to the engine's order table (at the report's receive time) and
    /// returns the order after it; `Ok(None)` for a refused cancel.
    pub fn apply(&self, table: &mut OrderTable) -> Result<Option<Order>, OrderError> {
        match self.kind {
            ReportKind::Ack => table.ack(self.id, self.ts_ns).map(Some),
            ReportKind::Fill(f) => table.fill(self.id, f.px, f.qty, f.fee, self.ts_ns).map(Some),
            ReportKind::Done { status, venue_code, .. } => {
                table.close(self.id, status, venue_code, self.ts_ns).map(Some)
            }
            ReportKind::CancelRejected { .. } => {
                table.cancel_rejected(self.id);
                Ok(None)
            }
        }
    }
}

/// Why [`SimVenue`] refused a request at once (nothing was sent; the engine closes the order
/// itself, e.g. as `Rejected`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// The venue holds `capacity` live orders, or reports are backed up.
    #[error("simulated venue full")]
    Full,
    /// The request queue is full.
    #[error("simulated venue busy")]
    Busy,
    /// A live order already has this id.
    #[error("duplicate order id")]
    Duplicate,
}

/// What the simulated venue did, since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimCounters {
    /// Orders that reached the venue.
    pub arrived: u64,
    pub taker_fills: u64,
    pub maker_fills: u64,
    pub filled: u64,
    pub canceled: u64,
    pub expired: u64,
    pub rejected: u64,
    pub cancel_rejected: u64,
    /// Acknowledgements, fills or cancel refusals not made for want of report room.
    pub starved: u64,
    /// Times an arrival waited for report room.
    pub deferred: u64,
    /// Public trades with a non-positive price or quantity (ignored).
    pub bad_trades: u64,
    /// Final reports that found no room: always 0 (the slot is reserved); a non-zero value is
    /// a defect.
    pub lost: u64,
}

/// An order as the venue holds it, from `submit` until its final report.
#[derive(Clone, Copy, Debug)]
struct SimOrder {
    id: OrderId,
    symbol: SymbolId,
    side: Side,
    kind: OrderKind,
    tif: TimeInForce,
    px: Px,
    /// Ordered and filled quantity, raw 1e-8, `0 ≤ filled < qty` while live.
    qty: i64,
    filled: i64,
    /// Arrived and resting in the book.
    resting: bool,
    /// Displayed quantity ahead of it at its price, raw (resting orders).
    ahead: i64,
}

const EMPTY_ORDER: SimOrder = SimOrder {
    id: OrderId(0),
    symbol: SymbolId(0),
    side: Side::Buy,
    kind: OrderKind::Market,
    tif: TimeInForce::Ioc,
    px: Px::ZERO,
    qty: 0,
    filled: 0,
    resting: false,
    ahead: 0,
};

#[derive(Clone, Copy, Debug)]
enum Request {
    Place(OrderId),
    Cancel { id: OrderId, symbol: SymbolId, side: Side },
    CancelAll,
}

#[derive(Clone, Copy, Debug)]
struct Timed {
    at_ns: u64,
    req: Request,
}

/// A fixed-capacity FIFO (never grows; a full one refuses).
#[derive(Debug)]
struct Fifo<T> {
    buf: Box<[T]>,
    head: usize,
    len: usize,
}

impl<T: Copy> Fifo<T> {
    fn new(cap: usize, fill: T) -> Self {
        Self { buf: vec![fill; cap].into_boxed_slice(), head: 0, len: 0 }
    }
    fn capacity(&self) -> usize {
        self.buf.len()
    }
    fn is_full(&self) -> bool {
        self.len >= self.buf.len()
    }
    fn push(&mut self, v: T) -> bool {
        if self.is_full() {
            return false;
        }
        // len < cap, so cap ≥ 1.
        let i = (self.head + self.len) % self.buf.len();
        self.buf[i] = v;
        self.len += 1;
        true
    }
    fn front(&self) -> Option<&T> {
        if self.len == 0 { None } else { self.buf.get(self.head) }
    }
    fn pop(&mut self) -> Option<T> {
        let v = *self.front()?;
        self.head = (self.head + 1) % self.buf.len();
        self.len -= 1;
        Some(v)
    }
}

/// Result of one fill attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Filled {
    /// Made; the order is still live.
    Partly,
    /// Made; the order is complete and gone.
    Done,
    /// Not made: no report room.
    Starved,
}

/// The simulated venue. See the module docs for its semantics.
#[derive(Debug)]
pub struct SimVenue {
    order_latency_ns: u64,
    ack_latency_ns: u64,
    maker_fee_e8: i128,
    taker_fee_e8: i128,
    /// `orders[..live]`: live orders in submission (hence arrival) order.
    orders: Box<[SimOrder]>,
    live: usize,
    requests: Fifo<Timed>,
    reports: Fifo<Report>,
    /// Arrival time of the last request (keeps the request FIFO in time order).
    last_arrival_ns: u64,
    /// Venue time of the last venue event.
    now_ns: u64,
    counters: SimCounters,
}

const EMPTY_REPORT: Report =
    Report { id: OrderId(0), symbol: SymbolId(0), side: Side::Buy, venue_ts_ns: 0, ts_ns: 0, kind: ReportKind::Ack };

/// `notional × rate`, rounded toward zero, without overflow.
#[inline]
fn fee(notional: Amount, rate_e8: i128) -> Amount {
    match notional.raw().checked_mul(rate_e8) {
        Some(v) => Amount(v / FEE_SCALE),
        None => Amount((notional.raw() / FEE_SCALE).saturating_mul(rate_e8)),
    }
}

#[inline]
fn rate_e8(rate: f64) -> i128 {
    // Config validation bounds the rates; a NaN would become 0.
    (rate * FEE_SCALE as f64).round() as i128
}

/// Whether a level at `level` is within the limit `limit` of an order on `side`.
#[inline]
fn within(side: Side, level: Px, limit: Px) -> bool {
    match side {
        Side::Buy => level <= limit,
        Side::Sell => level >= limit,
    }
}

/// Whether an order on `side` at `px` would take liquidity now.
#[inline]
fn crosses(book: &Book, side: Side, px: Px) -> bool {
    book.contra(side).best().is_some_and(|l| within(side, l.px, px))
}

/// Displayed quantity at `px` on `side`'s own side of `book`, raw (0 when no level).
fn displayed(book: &Book, side: Side, px: Px) -> i64 {
    let own = book.contra(side.opposite());
    for l in own.iter() {
        if l.px == px {
            return l.qty.raw();
        }
        if !within(side.opposite(), l.px, px) {
            // Past the price (levels are best-first).
            break;
        }
    }
    0
}

impl SimVenue {
    /// A venue holding up to `capacity` live orders (in flight or resting), latencies and fees
    /// from `cfg`, and default queue sizes. Allocates once.
    pub fn new(cfg: &Config, capacity: usize) -> Self {
        Self::with_queues(cfg, capacity, capacity * (1 + REPORTS_PER_ORDER) + 64, 3 * capacity + 64)
    }

    /// As [`SimVenue::new`] with explicit report and request queue sizes. Reports are at least
    /// `capacity + 2` (a final slot per live order, and an acknowledgement and a fill for the
    /// next arrival), so an arrival never waits for ever.
    pub fn with_queues(cfg: &Config, capacity: usize, reports: usize, requests: usize) -> Self {
        let reports = reports.max(capacity + 2);
        Self {
            order_latency_ns: cfg.exec.order_latency_us.saturating_mul(1_000),
            ack_latency_ns: cfg.exec.ack_latency_us.saturating_mul(1_000),
            maker_fee_e8: rate_e8(cfg.fees.maker),
            taker_fee_e8: rate_e8(cfg.fees.taker),
            orders: vec![EMPTY_ORDER; capacity].into_boxed_slice(),
            live: 0,
            requests: Fifo::new(requests, Timed { at_ns: 0, req: Request::CancelAll }),
            reports: Fifo::new(reports, EMPTY_REPORT),
            last_arrival_ns: 0,
            now_ns: 0,
            counters: SimCounters::default(),
        }
    }

    /// Live orders (sent and not final at the venue).
    #[inline]
    pub fn live_orders(&self) -> usize {
        self.live
    }

    /// Orders resting in the book.
    pub fn resting_orders(&self) -> usize {
        self.orders[..self.live].iter().filter(|o| o.resting).count()
    }

    /// Reports made and not yet delivered.
    #[inline]
    pub fn queued_reports(&self) -> usize {
        self.reports.len
    }

    /// Requests on their way to the venue.
    #[inline]
    pub fn queued_requests(&self) -> usize {
        self.requests.len
    }

    #[inline]
    pub fn counters(&self) -> &SimCounters {
        &self.counters
    }

    /// When the next thing happens (a request reaches the venue or a report the engine), ns:
    /// the time to poll at next when no frame comes first.
    pub fn next_event_ns(&self) -> Option<u64> {
        let a = self.requests.front().map(|r| r.at_ns);
        let b = self.reports.front().map(|r| r.ts_ns);
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Displayed quantity ahead of a resting order.
    pub fn queue_ahead(&self, id: OrderId) -> Option<Qty> {
        self.find(id).map(|i| self.orders[i]).filter(|o| o.resting).map(|o| Qty(o.ahead))
    }

    #[inline]
    fn find(&self, id: OrderId) -> Option<usize> {
        self.orders[..self.live].iter().position(|o| o.id == id)
    }

    /// Arrival time at the venue of a request sent at `ts_ns` (never before an earlier one).
    #[inline]
    fn arrival(&mut self, ts_ns: u64) -> u64 {
        let at = ts_ns.saturating_add(self.order_latency_ns).max(self.last_arrival_ns);
        self.last_arrival_ns = at;
        at
    }

    #[inline]
    fn advance(&mut self, ts_ns: u64) -> u64 {
        self.now_ns = self.now_ns.max(ts_ns);
        self.now_ns
    }

    /// Sends an order (its `id`, `symbol`, `side`, `kind`, `tif`, `px`, `qty`; `px` is ignored
    /// for market orders, `tif` for market and `LIMIT_MAKER` orders) at decision time `ts_ns`.
    pub fn submit(&mut self, order: &OrderEvent, ts_ns: u64) -> Result<(), SimError> {
        if self.find(order.id).is_some() {
            return Err(SimError::Duplicate);
        }
        // A new live order reserves one report slot for its final report.
        if self.live >= self.orders.len() || self.reports.len + self.live + 1 > self.reports.capacity() {
            return Err(SimError::Full);
        }
        if self.requests.is_full() {
            return Err(SimError::Busy);
        }
        self.orders[self.live] = SimOrder {
            id: order.id,
            symbol: order.symbol,
            side: order.side,
            kind: order.kind,
            tif: order.tif,
            px: order.px,
            qty: order.qty.raw(),
            filled: 0,
            resting: false,
            ahead: 0,
        };
        self.live += 1;
        let at_ns = self.arrival(ts_ns);
        self.requests.push(Timed { at_ns, req: Request::Place(order.id) });
        Ok(())
    }

    /// Sends a cancel of order `id` at decision time `ts_ns`. The answer is `Done(Canceled)`,
    /// or `CancelRejected(-2011)` when the order is no longer open at the venue by then.
    pub fn cancel(&mut self, id: OrderId, ts_ns: u64) -> Result<(), SimError> {
        if self.requests.is_full() {
            return Err(SimError::Busy);
        }
        let (symbol, side) =
            self.find(id).map_or((SymbolId(0), Side::Buy), |i| (self.orders[i].symbol, self.orders[i].side));
        let at_ns = self.arrival(ts_ns);
        self.requests.push(Timed { at_ns, req: Request::Cancel { id, symbol, side } });
        Ok(())
    }

    /// Sends a cancel of every open order, all symbols, at decision time `ts_ns`: every order
    /// resting when it arrives is canceled (orders sent before it have arrived by then).
    pub fn cancel_all(&mut self, ts_ns: u64) -> Result<(), SimError> {
        if self.requests.is_full() {
            return Err(SimError::Busy);
        }
        let at_ns = self.arrival(ts_ns);
        self.requests.push(Timed { at_ns, req: Request::CancelAll });
        Ok(())
    }

    /// The book of `symbol` changed at `ts_ns` (call after applying each snapshot or diff):
    /// resting orders' queues shrink to the displayed quantity at their price. An invalidated
    /// book (awaiting a snapshot, hence empty) says nothing about the queues and is ignored.
    pub fn on_book(&mut self, symbol: SymbolId, book: &Book, ts_ns: u64) {
        self.advance(ts_ns);
        if book.state() == SyncState::AwaitingSnapshot {
            return;
        }
        for o in self.orders[..self.live].iter_mut() {
            if o.resting && o.symbol == symbol && o.ahead > 0 {
                o.ahead = o.ahead.min(displayed(book, o.side, o.px));
            }
        }
    }

    /// A public trade on `symbol` at `ts_ns` (`buyer_is_maker`: Binance `m`, i.e. the seller
    /// took): fills resting orders on the side it hit, as maker, at their own price.
    pub fn on_trade(&mut self, symbol: SymbolId, px: Px, qty: Qty, buyer_is_maker: bool, ts_ns: u64) {
        let t = self.advance(ts_ns);
        if px.raw() <= 0 || qty.raw() <= 0 {
            self.counters.bad_trades += 1;
            return;
        }
        let hit = if buyer_is_maker { Side::Buy } else { Side::Sell };
        // Trade quantity already given to our orders at the trade price (they queue in turn).
        let mut used = 0i64;
        let mut k = 0;
        while k < self.live {
            let o = self.orders[k];
            if !o.resting || o.symbol != symbol || o.side != hit || !within(hit.opposite(), o.px, px) {
                k += 1;
                continue;
            }
            let rem = o.qty - o.filled;
            let q = if o.px != px {
                // Through the price: the whole level traded.
                rem
            } else {
                let avail = qty.raw() - used;
                let c = avail.min(o.ahead).max(0);
                self.orders[k].ahead -= c;
                (avail - c).min(rem).max(0)
            };
            if q > 0 {
                match self.fill(k, o.px, q, Liquidity::Maker, t) {
                    Filled::Starved => {}
                    r => {
                        if o.px == px {
                            used += q;
                        }
                        if r == Filled::Done {
                            // orders[k] is now the next one.
                            continue;
                        }
                    }
                }
            }
            k += 1;
        }
    }

    /// Runs the venue up to decision time `ts_ns` and delivers, in time order, every report due
    /// by then. `books[i]` is the book of `SymbolId(i)` as it stands: call this before applying
    /// a frame stamped `ts_ns`, so orders that arrived before it meet the book they would have.
    /// Returns the number of reports delivered.
    pub fn poll(&mut self, ts_ns: u64, books: &[Book], mut on_report: impl FnMut(&Report)) -> usize {
        let mut delivered = 0;
        loop {
            let due_in = self.requests.front().map(|r| r.at_ns).filter(|&t| t <= ts_ns);
            let due_out = self.reports.front().map(|r| r.ts_ns).filter(|&t| t <= ts_ns);
            let request_first = match (due_in, due_out) {
                (None, None) => break,
                (Some(i), Some(o)) => i < o,
                (Some(_), None) => true,
                (None, Some(_)) => false,
            };
            if request_first && self.handle_next(books) {
                continue;
            }
            // A deferred arrival waits for room: delivering frees some.
            let Some(r) = (if due_out.is_some() { self.reports.pop() } else { None }) else { break };
            on_report(&r);
            delivered += 1;
        }
        delivered
    }

    /// Room for acknowledgements and fills (besides the finals reserved for live orders).
    #[inline]
    fn free_room(&self) -> usize {
        self.reports.capacity().saturating_sub(self.reports.len + self.live)
    }

    /// Handles the request at the head of the queue; `false` when it must wait for room.
    fn handle_next(&mut self, books: &[Book]) -> bool {
        let Some(&Timed { at_ns, req }) = self.requests.front() else { return false };
        if matches!(req, Request::Place(_)) && self.free_room() < 2 {
            self.counters.deferred += 1;
            return false;
        }
        self.requests.pop();
        let t = self.advance(at_ns);
        match req {
            Request::Place(id) => self.arrive(id, t, books),
            Request::Cancel { id, symbol, side } => match self.find(id) {
                Some(i) if self.orders[i].resting => self.finish(i, OrderStatus::Canceled, 0, t),
                _ => {
                    self.counters.cancel_rejected += 1;
                    let kind = ReportKind::CancelRejected { venue_code: CODE_UNKNOWN_ORDER };
                    let r = self.report(id, symbol, side, t, kind);
                    self.push(r, false);
                }
            },
            Request::CancelAll => {
                let mut k = 0;
                while k < self.live {
                    if self.orders[k].resting {
                        self.finish(k, OrderStatus::Canceled, 0, t);
                    } else {
                        k += 1;
                    }
                }
            }
        }
        true
    }

    /// Order `id` reaches the venue at `t`.
    fn arrive(&mut self, id: OrderId, t: u64, books: &[Book]) {
        // Orders leave only with their final report, after their Place request.
        let Some(i) = self.find(id) else { return };
        let o = self.orders[i];
        self.counters.arrived += 1;
        let Some(book) = books.get(o.symbol.index()) else {
            return self.finish(i, OrderStatus::Rejected, CODE_BAD_SYMBOL, t);
        };
        let limit = (o.kind != OrderKind::Market).then_some(o.px);
        if o.qty <= 0 || limit.is_some_and(|p| p.raw() <= 0) {
            return self.finish(i, OrderStatus::Rejected, CODE_FILTER, t);
        }
        if o.kind == OrderKind::LimitMaker && crosses(book, o.side, o.px) {
            return self.finish(i, OrderStatus::Rejected, CODE_WOULD_TAKE, t);
        }
        let ack = self.report(o.id, o.symbol, o.side, t, ReportKind::Ack);
        self.push(ack, false);
        let tif = match o.kind {
            OrderKind::Market => TimeInForce::Ioc,
            OrderKind::LimitMaker => TimeInForce::Gtc,
            OrderKind::Limit => o.tif,
        };
        if tif == TimeInForce::Fok && !self.fok_fillable(&o, book) {
            return self.finish(i, OrderStatus::Expired, 0, t);
        }
        if o.kind != OrderKind::LimitMaker && !self.take(i, book, limit, t) {
            return;
        }
        match tif {
            TimeInForce::Gtc => {
                let r = &mut self.orders[i];
                r.resting = true;
                r.ahead = displayed(book, r.side, r.px);
            }
            TimeInForce::Ioc | TimeInForce::Fok => self.finish(i, OrderStatus::Expired, 0, t),
        }
    }

    /// Whether a FOK order can fill completely now (within its limit, and with report room
    /// for every fill but the last, which uses its reserved slot).
    fn fok_fillable(&self, o: &SimOrder, book: &Book) -> bool {
        let mut left = o.qty - o.filled;
        let mut fills = 0usize;
        for l in book.contra(o.side).iter() {
            if left <= 0 || !within(o.side, l.px, o.px) {
                break;
            }
            left -= left.min(l.qty.raw());
            fills += 1;
        }
        left <= 0 && fills.saturating_sub(1) <= self.free_room()
    }

    /// Order `i` takes liquidity from `book` up to `limit` (none: market). Returns whether it
    /// is still live (then still at index `i`).
    fn take(&mut self, i: usize, book: &Book, limit: Option<Px>, t: u64) -> bool {
        let side = self.orders[i].side;
        for l in book.contra(side).iter() {
            let left = self.orders[i].qty - self.orders[i].filled;
            if left <= 0 || limit.is_some_and(|p| !within(side, l.px, p)) {
                break;
            }
            let q = left.min(l.qty.raw());
            if q <= 0 {
                continue;
            }
            match self.fill(i, l.px, q, Liquidity::Taker, t) {
                Filled::Partly => {}
                Filled::Done => return false,
                Filled::Starved => break,
            }
        }
        true
    }

    /// Fills `q` (0 < q ≤ remaining) of order `i` at `px`; a complete order leaves.
    fn fill(&mut self, i: usize, px: Px, q: i64, liquidity: Liquidity, t: u64) -> Filled {
        let o = self.orders[i];
        let filled = o.filled + q;
        let last = filled >= o.qty;
        let rate = match liquidity {
            Liquidity::Maker => self.maker_fee_e8,
            Liquidity::Taker => self.taker_fee_e8,
        };
        let fill = SimFill {
            px,
            qty: Qty(q),
            fee: fee(Amount::notional(px, Qty(q)), rate),
            liquidity,
            filled: Qty(filled),
            last,
        };
        let r = self.report(o.id, o.symbol, o.side, t, ReportKind::Fill(fill));
        if !self.push(r, last) {
            self.counters.starved += 1;
            return Filled::Starved;
        }
        match liquidity {
            Liquidity::Maker => self.counters.maker_fills += 1,
            Liquidity::Taker => self.counters.taker_fills += 1,
        }
        if last {
            self.counters.filled += 1;
            self.remove(i);
            Filled::Done
        } else {
            self.orders[i].filled = filled;
            Filled::Partly
        }
    }

    /// Ends order `i` with a final status other than `Filled`.
    fn finish(&mut self, i: usize, status: OrderStatus, venue_code: i32, t: u64) {
        let o = self.orders[i];
        let kind = ReportKind::Done { status, filled: Qty(o.filled), venue_code };
        let r = self.report(o.id, o.symbol, o.side, t, kind);
        self.push(r, true);
        match status {
            OrderStatus::Canceled => self.counters.canceled += 1,
            OrderStatus::Rejected => self.counters.rejected += 1,
            _ => self.counters.expired += 1,
        }
        self.remove(i);
    }

    #[inline]
    fn report(&self, id: OrderId, symbol: SymbolId, side: Side, t: u64, kind: ReportKind) -> Report {
        Report { id, symbol, side, venue_ts_ns: t, ts_ns: t.saturating_add(self.ack_latency_ns), kind }
    }

    /// Queues a report: a final one into its order's reserved slot, any other only if there
    /// is room beyond the reserved slots.
    fn push(&mut self, r: Report, is_final: bool) -> bool {
        if !is_final && self.free_room() == 0 {
            if !matches!(r.kind, ReportKind::Fill(_)) {
                self.counters.starved += 1;
            }
            return false;
        }
        let ok = self.reports.push(r);
        if !ok && is_final {
            self.counters.lost += 1;
        }
        ok
    }

    /// Removes live order `i`, keeping the others in arrival order.
    fn remove(&mut self, i: usize) {
        if i < self.live {
            self.orders.copy_within(i + 1..self.live, i);
            self.live -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::decode::Level;
    use proptest::prelude::*;
    use std::collections::HashMap;

    const OL: u64 = 500_000; // order latency, ns
    const AL: u64 = 300_000; // ack latency, ns

    fn cfg() -> Config {
        let toml = "[exec]\norder_latency_us = 500\nack_latency_us = 300\n[fees]\nmaker = 0.0002\ntaker = 0.001\n";
        Config::from_toml_str(toml, &|_| None).unwrap()
    }
    fn px(s: &str) -> Px {
        Px::parse(s).unwrap()
    }
    fn qty(s: &str) -> Qty {
        Qty::parse(s).unwrap()
    }
    fn lv(p: &str, q: &str) -> Level {
        Level { px: px(p), qty: qty(q) }
    }
    fn book(bids: &[(&str, &str)], asks: &[(&str, &str)]) -> Book {
        let mut b = Book::with_capacity(64);
        let bids: Vec<Level> = bids.iter().map(|&(p, q)| lv(p, q)).collect();
        let asks: Vec<Level> = asks.iter().map(|&(p, q)| lv(p, q)).collect();
        b.apply_snapshot(10, &bids, &asks).unwrap();
        b.apply_diff(11, 11, &[], &[]).unwrap();
        b
    }
    fn order(id: u64, side: Side, kind: OrderKind, tif: TimeInForce, p: &str, q: &str) -> OrderEvent {
        OrderEvent {
            id: OrderId(id),
            symbol: SymbolId(0),
            side,
            kind,
            tif,
            px: px(p),
            qty: qty(q),
            decision_px: px(p),
            frame_ts_ns: 0,
            ts_ns: 0,
            tick_to_order_ns: 0,
            strategies: 0,
            reduce_only: false,
        }
    }
    fn limit(id: u64, side: Side, tif: TimeInForce, p: &str, q: &str) -> OrderEvent {
        order(id, side, OrderKind::Limit, tif, p, q)
    }
    fn poll(v: &mut SimVenue, ts: u64, books: &[Book]) -> Vec<Report> {
        let mut out = vec![];
        v.poll(ts, books, |r| out.push(*r));
        out
    }
    fn fills(rs: &[Report]) -> Vec<SimFill> {
        rs.iter()
            .filter_map(|r| match r.kind {
                ReportKind::Fill(f) => Some(f),
                _ => None,
            })
            .collect()
    }
    fn done(r: &Report) -> (OrderStatus, Qty, i32) {
        match r.kind {
            ReportKind::Done { status, filled, venue_code } => (status, filled, venue_code),
            k => panic!("not a final status: {k:?}"),
        }
    }

    /// Issue #5 acceptance: a limit order behind 5 units of displayed queue does not fill on a
    /// 3-unit trade at its price and does fill (partially) on the next 4.
    #[test]
    fn limit_order_behind_5_does_not_fill_on_3_and_fills_partially_on_the_next_4() {
        let books = [book(&[("100", "5"), ("99", "7")], &[("101", "5")])];
        let mut v = SimVenue::new(&cfg(), 8);
        v.submit(&limit(1, Side::Buy, TimeInForce::Gtc, "100", "3"), 0).unwrap();
        let rs = poll(&mut v, OL + AL, &books);
        assert_eq!(rs.len(), 1);
        assert_eq!(rs[0].kind, ReportKind::Ack);
        assert_eq!(v.queue_ahead(OrderId(1)), Some(qty("5")));
        // A 3-unit sell at 100: consumes 3 of the 5 ahead.
        v.on_trade(SymbolId(0), px("100"), qty("3"), true, OL + AL + 10);
        assert_eq!(v.queue_ahead(OrderId(1)), Some(qty("2")));
        assert!(poll(&mut v, 10 * OL, &books).is_empty(), "no fill on the 3-unit trade");
        // The next 4: 2 consume the queue, 2 fill the order (3), partially.
        v.on_trade(SymbolId(0), px("100"), qty("4"), true, 10 * OL + 1);
        assert_eq!(v.queue_ahead(OrderId(1)), Some(Qty::ZERO));
        let rs = poll(&mut v, 10 * OL + 1 + AL, &books);
        assert_eq!(rs.len(), 1);
        let f = fills(&rs)[0];
        assert_eq!(
            (f.px, f.qty, f.filled, f.last, f.liquidity),
            (px("100"), qty("2"), qty("2"), false, Liquidity::Maker)
        );
        // Maker fee: 200 × 0.0002 = 0.04.
        assert_eq!(f.fee.to_string(), "0.04");
        assert_eq!(rs[0].status(), Some(OrderStatus::PartiallyFilled));
        assert_eq!(rs[0].venue_ts_ns, 10 * OL + 1);
    }

    /// Issue #5 acceptance: a market order larger than the top level fills across levels at
    /// the volume-weighted price.
    #[test]
    fn market_order_larger_than_the_top_level_fills_across_levels_at_the_vwap() {
        let books = [book(&[("99", "1")], &[("100", "1"), ("101", "2"), ("102", "5")])];
        let mut v = SimVenue::new(&cfg(), 8);
        v.submit(&order(1, Side::Buy, OrderKind::Market, TimeInForce::Ioc, "100", "2.5"), 0).unwrap();
        let rs = poll(&mut v, OL + AL, &books);
        assert_eq!(rs[0].kind, ReportKind::Ack);
        let f = fills(&rs);
        assert_eq!(
            f.iter().map(|f| (f.px, f.qty)).collect::<Vec<_>>(),
            vec![(px("100"), qty("1")), (px("101"), qty("1.5"))]
        );
        assert!(f.iter().all(|f| f.liquidity == Liquidity::Taker));
        assert!(f[1].last && !f[0].last);
        let notional = f.iter().fold(Amount::ZERO, |a, f| a + Amount::notional(f.px, f.qty));
        let filled = f.iter().fold(Qty::ZERO, |a, f| a + f.qty);
        // 1 × 100 + 1.5 × 101 = 251.5 over 2.5: VWAP 100.6.
        assert_eq!(notional.to_string(), "251.5");
        assert_eq!(Px((notional.raw() / filled.raw() as i128) as i64), px("100.6"));
        // Taker fee 0.1 %: 0.2515.
        assert_eq!(f.iter().fold(Amount::ZERO, |a, f| a + f.fee).to_string(), "0.2515");
        assert_eq!(rs.len(), 3, "ack and two fills; the last fill is the final status");
        assert_eq!(rs[2].status(), Some(OrderStatus::Filled));
        assert_eq!(v.live_orders(), 0);
        // Larger than the book: the rest expires.
        v.submit(&order(2, Side::Sell, OrderKind::Market, TimeInForce::Ioc, "99", "3"), OL + AL).unwrap();
        let rs = poll(&mut v, 2 * (OL + AL), &books);
        assert_eq!(fills(&rs).iter().map(|f| f.qty).collect::<Vec<_>>(), vec![qty("1")]);
        assert_eq!(done(rs.last().unwrap()), (OrderStatus::Expired, qty("1"), 0));
    }

    #[test]
    fn nothing_happens_before_the_order_reaches_the_venue_and_the_answer_takes_ack_latency() {
        let t0 = 1_000_000_000;
        let mut books = [book(&[("99", "1")], &[("100", "1"), ("105", "9")])];
        let mut v = SimVenue::new(&cfg(), 8);
        v.submit(&order(1, Side::Buy, OrderKind::Market, TimeInForce::Ioc, "100", "1"), t0).unwrap();
        assert_eq!(v.next_event_ns(), Some(t0 + OL));
        assert!(poll(&mut v, t0 + OL - 1, &books).is_empty());
        // Before it arrives, the 100 offer goes: it fills at 105, the book at arrival.
        books[0].apply_diff(12, 12, &[], &[lv("100", "0")]).unwrap();
        v.on_book(SymbolId(0), &books[0], t0 + OL - 1);
        assert!(poll(&mut v, t0 + OL, &books).is_empty(), "arrived; the answer is on its way");
        assert_eq!(v.next_event_ns(), Some(t0 + OL + AL));
        // A change after arrival makes no difference.
        books[0].apply_diff(13, 13, &[], &[lv("100", "5")]).unwrap();
        v.on_book(SymbolId(0), &books[0], t0 + OL + 1);
        assert!(poll(&mut v, t0 + OL + AL - 1, &books).is_empty());
        let rs = poll(&mut v, t0 + OL + AL, &books);
        assert_eq!(rs.len(), 2);
        assert!(rs.iter().all(|r| r.venue_ts_ns == t0 + OL && r.ts_ns == t0 + OL + AL));
        assert_eq!(rs[0].kind, ReportKind::Ack);
        assert_eq!(fills(&rs)[0].px, px("105"));
        assert_eq!(v.next_event_ns(), None);
    }

    #[test]
    fn fok_fills_completely_at_arrival_or_expires_with_nothing() {
        let books = [book(&[("99", "1")], &[("100", "1"), ("101", "1"), ("102", "5")])];
        let mut v = SimVenue::new(&cfg(), 8);
        // 3 within 101: only 2 there.
        v.submit(&limit(1, Side::Buy, TimeInForce::Fok, "101", "3"), 0).unwrap();
        let rs = poll(&mut v, OL + AL, &books);
        assert_eq!(rs.len(), 2);
        assert_eq!(rs[0].kind, ReportKind::Ack);
        assert_eq!(done(&rs[1]), (OrderStatus::Expired, Qty::ZERO, 0));
        // 2 within 101: fills completely.
        v.submit(&limit(2, Side::Buy, TimeInForce::Fok, "101", "2"), OL + AL).unwrap();
        let rs = poll(&mut v, 2 * (OL + AL), &books);
        let f = fills(&rs);
        assert_eq!(
            f.iter().map(|f| (f.px, f.qty)).collect::<Vec<_>>(),
            vec![(px("100"), qty("1")), (px("101"), qty("1"))]
        );
        assert_eq!(rs.last().unwrap().status(), Some(OrderStatus::Filled));
        assert_eq!(v.live_orders(), 0);
    }

    #[test]
    fn ioc_remainder_expires() {
        let books = [book(&[("100", "2"), ("99", "3")], &[("101", "1")])];
        let mut v = SimVenue::new(&cfg(), 8);
        v.submit(&limit(1, Side::Sell, TimeInForce::Ioc, "100", "3"), 0).unwrap();
        let rs = poll(&mut v, OL + AL, &books);
        assert_eq!(fills(&rs).iter().map(|f| (f.px, f.qty)).collect::<Vec<_>>(), vec![(px("100"), qty("2"))]);
        assert_eq!(done(rs.last().unwrap()), (OrderStatus::Expired, qty("2"), 0));
        // An IOC that does not cross: acknowledged, then expired with nothing.
        v.submit(&limit(2, Side::Sell, TimeInForce::Ioc, "101", "3"), 0).unwrap();
        let rs = poll(&mut v, 2 * (OL + AL), &books);
        assert_eq!(rs.len(), 2);
        assert_eq!(done(&rs[1]), (OrderStatus::Expired, Qty::ZERO, 0));
        assert_eq!(v.resting_orders(), 0);
    }

    #[test]
    fn limit_maker_that_would_take_is_rejected_with_2010() {
        let books = [book(&[("100", "2")], &[("101", "1")])];
        let mut v = SimVenue::new(&cfg(), 8);
        let mut t = OrderTable::new(8, 8);
        let o = order(1, Side::Buy, OrderKind::LimitMaker, TimeInForce::Gtc, "101", "1");
        t.insert(&o, 0, [0; 4]).unwrap();
        v.submit(&o, 0).unwrap();
        let rs = poll(&mut v, OL + AL, &books);
        assert_eq!(rs.len(), 1, "no acknowledgement: the placement itself is refused");
        assert_eq!(done(&rs[0]), (OrderStatus::Rejected, Qty::ZERO, CODE_WOULD_TAKE));
        let o = rs[0].apply(&mut t).unwrap().unwrap();
        assert_eq!((o.status, o.venue_code), (OrderStatus::Rejected, -2010));
        // One that does not cross rests, behind the 2 at 100.
        v.submit(&order(2, Side::Buy, OrderKind::LimitMaker, TimeInForce::Gtc, "100", "1"), 0).unwrap();
        let rs = poll(&mut v, 2 * (OL + AL), &books);
        assert_eq!(rs.iter().map(|r| r.kind).collect::<Vec<_>>(), vec![ReportKind::Ack]);
        assert_eq!(v.queue_ahead(OrderId(2)), Some(qty("2")));
    }

    #[test]
    fn crossing_gtc_limit_takes_then_rests_and_fills_as_maker() {
        let books = [book(&[("99", "4")], &[("100", "1"), ("101", "1"), ("102", "1")])];
        let mut v = SimVenue::new(&cfg(), 8);
        v.submit(&limit(1, Side::Buy, TimeInForce::Gtc, "101", "3"), 0).unwrap();
        let rs = poll(&mut v, OL + AL, &books);
        let f = fills(&rs);
        assert_eq!(
            f.iter().map(|f| (f.px, f.liquidity)).collect::<Vec<_>>(),
            vec![(px("100"), Liquidity::Taker), (px("101"), Liquidity::Taker)]
        );
        assert_eq!(rs.last().unwrap().status(), Some(OrderStatus::PartiallyFilled));
        assert_eq!(v.queue_ahead(OrderId(1)), Some(Qty::ZERO), "no bids at 101");
        // A buy trade does not touch a resting buy; a sell at 101 fills it, as maker.
        v.on_trade(SymbolId(0), px("101"), qty("5"), false, OL + AL);
        assert!(poll(&mut v, 2 * (OL + AL), &books).is_empty());
        v.on_trade(SymbolId(0), px("101"), qty("5"), true, 2 * (OL + AL));
        let rs = poll(&mut v, 3 * (OL + AL), &books);
        let f = fills(&rs);
        assert_eq!((f[0].px, f[0].qty, f[0].liquidity, f[0].last), (px("101"), qty("1"), Liquidity::Maker, true));
        assert_eq!(v.live_orders(), 0);
    }

    #[test]
    fn a_trade_through_the_price_fills_completely() {
        let books = [book(&[("99", "1")], &[("100", "9"), ("101", "3")])];
        let mut v = SimVenue::new(&cfg(), 8);
        v.submit(&limit(1, Side::Sell, TimeInForce::Gtc, "100", "4"), 0).unwrap();
        poll(&mut v, OL + AL, &books);
        assert_eq!(v.queue_ahead(OrderId(1)), Some(qty("9")));
        // A small buy above 100: the 100 level is gone, ours with it.
        v.on_trade(SymbolId(0), px("100.5"), qty("0.1"), false, OL + AL);
        let rs = poll(&mut v, 2 * (OL + AL), &books);
        let f = fills(&rs);
        assert_eq!((f[0].px, f[0].qty, f[0].last), (px("100"), qty("4"), true));
    }

    #[test]
    fn cancellations_ahead_shrink_the_queue() {
        let mut books = [book(&[("100", "5")], &[("101", "1")])];
        let mut v = SimVenue::new(&cfg(), 8);
        v.submit(&limit(1, Side::Buy, TimeInForce::Gtc, "100", "3"), 0).unwrap();
        poll(&mut v, OL, &books);
        assert_eq!(v.queue_ahead(OrderId(1)), Some(qty("5")));
        // Displayed grows (orders behind us): ahead unchanged.
        books[0].apply_diff(12, 12, &[lv("100", "8")], &[]).unwrap();
        v.on_book(SymbolId(0), &books[0], OL + 1);
        assert_eq!(v.queue_ahead(OrderId(1)), Some(qty("5")));
        // Shrinks to 1: ahead shrinks to 1.
        books[0].apply_diff(13, 13, &[lv("100", "1")], &[]).unwrap();
        v.on_book(SymbolId(0), &books[0], OL + 2);
        assert_eq!(v.queue_ahead(OrderId(1)), Some(qty("1")));
        // An invalidated (empty) book says nothing about the queue.
        let mut gone = books[0].clone();
        gone.invalidate();
        v.on_book(SymbolId(0), &gone, OL + 2);
        assert_eq!(v.queue_ahead(OrderId(1)), Some(qty("1")));
        // The level vanishes: nothing ahead.
        books[0].apply_diff(14, 14, &[lv("100", "0")], &[]).unwrap();
        v.on_book(SymbolId(0), &books[0], OL + 3);
        assert_eq!(v.queue_ahead(OrderId(1)), Some(Qty::ZERO));
        v.on_trade(SymbolId(0), px("100"), qty("2"), true, OL + 4);
        let rs = poll(&mut v, OL + 4 + AL, &books);
        assert_eq!(fills(&rs)[0].qty, qty("2"));
    }

    #[test]
    fn our_orders_at_one_price_share_a_trade_in_arrival_order() {
        let books = [book(&[("100", "1")], &[("101", "1")])];
        let mut v = SimVenue::new(&cfg(), 8);
        v.submit(&limit(1, Side::Buy, TimeInForce::Gtc, "100", "2"), 0).unwrap();
        v.submit(&limit(2, Side::Buy, TimeInForce::Gtc, "100", "2"), 0).unwrap();
        poll(&mut v, OL + AL, &books);
        // 4 units: 1 ahead of both, 2 to the first, 1 left for the second (its 1 ahead is
        // the same public order, already consumed).
        v.on_trade(SymbolId(0), px("100"), qty("4"), true, OL + AL);
        let rs = poll(&mut v, 2 * (OL + AL), &books);
        let by_id: Vec<(u64, Qty)> = rs
            .iter()
            .filter_map(|r| match r.kind {
                ReportKind::Fill(f) => Some((r.id.0, f.qty)),
                _ => None,
            })
            .collect();
        assert_eq!(by_id, vec![(1, qty("2")), (2, qty("1"))]);
    }

    #[test]
    fn cancel_of_a_resting_order_and_of_a_finished_one() {
        let books = [book(&[("100", "5")], &[("101", "1")])];
        let mut v = SimVenue::new(&cfg(), 8);
        let mut t = OrderTable::new(8, 8);
        let o = limit(1, Side::Buy, TimeInForce::Gtc, "100", "3");
        t.insert(&o, 0, [0; 4]).unwrap();
        v.submit(&o, 0).unwrap();
        for r in poll(&mut v, OL + AL, &books) {
            r.apply(&mut t).unwrap();
        }
        assert_eq!(t.get(OrderId(1)).unwrap().status, OrderStatus::New);
        let ts = OL + AL;
        t.request_cancel(OrderId(1)).unwrap();
        v.cancel(OrderId(1), ts).unwrap();
        assert!(poll(&mut v, ts + OL + AL - 1, &books).is_empty());
        let rs = poll(&mut v, ts + OL + AL, &books);
        assert_eq!(rs.len(), 1);
        assert_eq!(done(&rs[0]), (OrderStatus::Canceled, Qty::ZERO, 0));
        let o = rs[0].apply(&mut t).unwrap().unwrap();
        assert_eq!((o.status, o.cancel_requested), (OrderStatus::Canceled, false));
        assert_eq!(v.live_orders(), 0);
        // Again: the venue no longer knows it.
        v.cancel(OrderId(1), 2 * ts).unwrap();
        let rs = poll(&mut v, 4 * ts, &books);
        assert_eq!(rs[0].kind, ReportKind::CancelRejected { venue_code: CODE_UNKNOWN_ORDER });
        assert_eq!(rs[0].apply(&mut t), Ok(None));
        assert_eq!(t.stats().illegal, 0);
    }

    #[test]
    fn cancel_all_cancels_every_resting_order_on_every_symbol() {
        let b = book(&[("100", "5")], &[("101", "1")]);
        let books = [b.clone(), b];
        let mut v = SimVenue::new(&cfg(), 8);
        v.submit(&limit(1, Side::Buy, TimeInForce::Gtc, "100", "3"), 0).unwrap();
        let mut o = limit(2, Side::Sell, TimeInForce::Gtc, "101", "3");
        o.symbol = SymbolId(1);
        v.submit(&o, 0).unwrap();
        // Sent right after them, in the same instant: they arrive first, then the cancel-all.
        v.submit(&limit(3, Side::Buy, TimeInForce::Gtc, "99", "1"), 10).unwrap();
        v.cancel_all(10).unwrap();
        let rs = poll(&mut v, 10 + OL + AL, &books);
        let mut canceled: Vec<u64> =
            rs.iter().filter(|r| matches!(r.kind, ReportKind::Done { .. })).map(|r| r.id.0).collect();
        canceled.sort();
        assert_eq!(canceled, vec![1, 2, 3]);
        assert!(rs.iter().filter(|r| r.id.0 == 2).all(|r| r.symbol == SymbolId(1)));
        assert_eq!((v.live_orders(), v.counters().canceled), (0, 3));
    }

    #[test]
    fn orders_the_venue_cannot_take_are_rejected_without_panicking() {
        let books = [book(&[("100", "5")], &[("101", "1")])];
        let mut v = SimVenue::new(&cfg(), 8);
        let mut bad_symbol = limit(1, Side::Buy, TimeInForce::Gtc, "100", "1");
        bad_symbol.symbol = SymbolId(7);
        v.submit(&bad_symbol, 0).unwrap();
        v.submit(&limit(2, Side::Buy, TimeInForce::Gtc, "0", "1"), 0).unwrap();
        v.submit(&limit(3, Side::Buy, TimeInForce::Gtc, "100", "0"), 0).unwrap();
        v.submit(&limit(4, Side::Buy, TimeInForce::Gtc, "100", "-1"), 0).unwrap();
        let rs = poll(&mut v, OL + AL, &books);
        let codes: Vec<i32> = rs.iter().map(|r| done(r).2).collect();
        assert_eq!(codes, vec![CODE_BAD_SYMBOL, CODE_FILTER, CODE_FILTER, CODE_FILTER]);
        // A market order into an empty book expires unfilled.
        let empty = [Book::with_capacity(4)];
        v.submit(&order(5, Side::Buy, OrderKind::Market, TimeInForce::Ioc, "0", "1"), 0).unwrap();
        let rs = poll(&mut v, 2 * (OL + AL), &empty);
        assert_eq!(done(&rs[1]), (OrderStatus::Expired, Qty::ZERO, 0));
        // Odd trades are ignored.
        v.on_trade(SymbolId(0), Px(-1), qty("1"), true, 0);
        v.on_trade(SymbolId(0), px("1"), Qty(i64::MIN), true, 0);
        assert_eq!(v.counters().bad_trades, 2);
    }

    #[test]
    fn capacity_is_fixed_and_refusals_are_immediate() {
        let books = [book(&[("100", "5")], &[("101", "1")])];
        let mut v = SimVenue::new(&cfg(), 2);
        v.submit(&limit(1, Side::Buy, TimeInForce::Gtc, "100", "1"), 0).unwrap();
        assert_eq!(v.submit(&limit(1, Side::Buy, TimeInForce::Gtc, "100", "1"), 0), Err(SimError::Duplicate));
        v.submit(&limit(2, Side::Buy, TimeInForce::Gtc, "100", "1"), 0).unwrap();
        assert_eq!(v.submit(&limit(3, Side::Buy, TimeInForce::Gtc, "100", "1"), 0), Err(SimError::Full));
        poll(&mut v, OL + AL, &books);
        assert_eq!(v.resting_orders(), 2);
        let mut z = SimVenue::with_queues(&cfg(), 0, 0, 0);
        assert_eq!(z.submit(&limit(1, Side::Buy, TimeInForce::Gtc, "100", "1"), 0), Err(SimError::Full));
        assert_eq!(z.cancel(OrderId(1), 0), Err(SimError::Busy));
        assert_eq!(z.cancel_all(0), Err(SimError::Busy));
        assert_eq!(poll(&mut z, u64::MAX, &books).len(), 0);
        let mut busy = SimVenue::with_queues(&cfg(), 4, 100, 1);
        busy.submit(&limit(1, Side::Buy, TimeInForce::Gtc, "100", "1"), 0).unwrap();
        assert_eq!(busy.cancel(OrderId(1), 0), Err(SimError::Busy));
    }

    #[test]
    fn a_full_report_queue_defers_and_starves_but_never_loses_a_final_report() {
        let books = [book(&[("99", "1")], &[("100", "1"), ("101", "1"), ("102", "1"), ("103", "1")])];
        // Room for 3 reports, one reserved per live order: ack + 1 fill, then the final.
        let mut v = SimVenue::with_queues(&cfg(), 1, 0, 8);
        let mut t = OrderTable::new(4, 4);
        let o = order(1, Side::Buy, OrderKind::Market, TimeInForce::Ioc, "100", "4");
        t.insert(&o, 0, [0; 4]).unwrap();
        v.submit(&o, 0).unwrap();
        let rs = poll(&mut v, OL + AL, &books);
        assert_eq!(rs.len(), 3);
        assert_eq!(fills(&rs).len(), 1);
        assert_eq!(done(&rs[2]), (OrderStatus::Expired, qty("1"), 0));
        assert_eq!((v.counters().starved, v.counters().lost), (1, 0));
        for r in &rs {
            r.apply(&mut t).unwrap();
        }
        assert_eq!(t.get(OrderId(1)).unwrap().filled, qty("1"));
        // Two orders, room for one at a time: the second waits for the first's reports.
        let mut v = SimVenue::with_queues(&cfg(), 2, 4, 8);
        v.submit(&limit(1, Side::Buy, TimeInForce::Gtc, "99", "1"), 0).unwrap();
        v.submit(&limit(2, Side::Buy, TimeInForce::Gtc, "99", "1"), 0).unwrap();
        let rs = poll(&mut v, OL, &books);
        assert!(rs.is_empty());
        assert_eq!((v.queued_reports(), v.queued_requests()), (1, 1), "second arrival deferred");
        let rs = poll(&mut v, OL + AL, &books);
        assert_eq!(rs.iter().map(|r| r.id.0).collect::<Vec<_>>(), vec![1, 2]);
        assert!(v.counters().deferred > 0);
        assert_eq!(v.resting_orders(), 2);
    }

    #[test]
    fn time_going_backwards_keeps_reports_in_order() {
        let books = [book(&[("100", "5")], &[("101", "5")])];
        let mut v = SimVenue::new(&cfg(), 8);
        v.submit(&order(1, Side::Buy, OrderKind::Market, TimeInForce::Ioc, "101", "1"), 1_000_000).unwrap();
        v.submit(&order(2, Side::Buy, OrderKind::Market, TimeInForce::Ioc, "101", "1"), 0).unwrap();
        let rs = poll(&mut v, u64::MAX, &books);
        assert_eq!(rs.len(), 4);
        assert!(rs.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns));
        assert_eq!(rs[2].venue_ts_ns, 1_000_000 + OL, "the late one takes the earlier one's time");
    }

    #[derive(Clone, Debug)]
    enum Op {
        Submit { side: bool, kind: u8, tif: u8, off: i64, q: i64 },
        Level { bid: bool, off: i64, q: i64 },
        Trade { off: i64, q: i64, buyer_is_maker: bool },
        Cancel(u64),
        CancelAll,
        Wait(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (any::<bool>(), 0u8..3, 0u8..3, -4i64..5, 1i64..6)
                .prop_map(|(side, kind, tif, off, q)| Op::Submit { side, kind, tif, off, q }),
            3 => (any::<bool>(), 0i64..5, 0i64..6).prop_map(|(bid, off, q)| Op::Level { bid, off, q }),
            4 => (-5i64..6, 1i64..8, any::<bool>()).prop_map(|(off, q, buyer_is_maker)| Op::Trade { off, q, buyer_is_maker }),
            1 => (1u64..40).prop_map(Op::Cancel),
            1 => Just(Op::CancelAll),
            3 => (0u64..2 * (OL + AL)).prop_map(Op::Wait),
        ]
    }

    proptest! {
        /// Random orders, book changes, trades and cancels, then a cancel-all: every fill
        /// stays within its order, every report is legal for the order table, reports arrive
        /// in time order, and in the end every order is final.
        #[test]
        fn fills_never_exceed_the_order_and_everything_is_final_after_cancel_all(
            ops in proptest::collection::vec(op(), 1..120),
            capacity in 1usize..6,
            tight in prop_oneof![Just(None), (0usize..6).prop_map(Some)],
        ) {
            let mid = 10_000i64; // price 100 in 0.01 ticks
            let p = |off: i64| Px((mid + off) * 1_000_000);
            let mut books = vec![book(&[("99.99", "3"), ("99.98", "2")], &[("100.01", "3"), ("100.02", "2")])];
            // Tight: report room for a few acknowledgements and fills only (starved walks,
            // deferred arrivals).
            let mut v = match tight {
                None => SimVenue::new(&cfg(), capacity),
                Some(extra) => SimVenue::with_queues(&cfg(), capacity, capacity + 2 + extra, 3 * capacity + 64),
            };
            let mut t = OrderTable::new(capacity + 2, 1_000);
            let mut sums: HashMap<u64, (i64, i64)> = HashMap::new(); // id → (qty, Σ fills)
            let (mut ts, mut next_id, mut uid) = (0u64, 1u64, 11u64);
            let mut last_ts = 0u64;
            let mut deliver = |v: &mut SimVenue, books: &[Book], ts: u64, t: &mut OrderTable, sums: &mut HashMap<u64, (i64, i64)>| -> Result<(), TestCaseError> {
                let mut rs = vec![];
                v.poll(ts, books, |r| rs.push(*r));
                for r in rs {
                    prop_assert!(r.ts_ns <= ts && r.ts_ns >= last_ts);
                    last_ts = r.ts_ns;
                    if let ReportKind::Fill(f) = r.kind {
                        let e = sums.get_mut(&r.id.0).unwrap();
                        e.1 += f.qty.raw();
                        prop_assert!(f.qty.raw() > 0 && e.1 <= e.0, "overfill {:?}", r);
                        prop_assert_eq!(f.filled.raw(), e.1);
                        prop_assert_eq!(f.last, e.1 == e.0);
                    }
                    if let ReportKind::Done { filled, .. } = r.kind {
                        prop_assert_eq!(filled.raw(), sums[&r.id.0].1);
                    }
                    r.apply(t).map_err(|e| TestCaseError::fail(format!("{e} on {r:?}")))?;
                }
                Ok(())
            };
            for op in ops {
                deliver(&mut v, &books, ts, &mut t, &mut sums)?;
                match op {
                    Op::Submit { side, kind, tif, off, q } => {
                        let side = if side { Side::Buy } else { Side::Sell };
                        let kind = [OrderKind::Market, OrderKind::Limit, OrderKind::LimitMaker][kind as usize];
                        let tif = [TimeInForce::Gtc, TimeInForce::Ioc, TimeInForce::Fok][tif as usize];
                        let mut o = limit(next_id, side, tif, "1", "1");
                        o.kind = kind;
                        o.px = p(off);
                        o.qty = Qty(q * 100_000_000);
                        o.ts_ns = ts;
                        next_id += 1;
                        if t.insert(&o, uid, [0; 4]).is_ok() {
                            sums.insert(o.id.0, (o.qty.raw(), 0));
                            if v.submit(&o, ts).is_err() {
                                t.close(o.id, OrderStatus::Rejected, 0, ts).unwrap();
                            }
                        }
                    }
                    Op::Level { bid, off, q } => {
                        uid += 1;
                        let l = [Level { px: if bid { p(-1 - off) } else { p(1 + off) }, qty: Qty(q * 100_000_000) }];
                        let (b, a): (&[Level], &[Level]) = if bid { (&l, &[]) } else { (&[], &l) };
                        books[0].apply_diff(uid, uid, b, a).unwrap();
                        v.on_book(SymbolId(0), &books[0], ts);
                    }
                    Op::Trade { off, q, buyer_is_maker } => {
                        v.on_trade(SymbolId(0), p(off), Qty(q * 50_000_000), buyer_is_maker, ts);
                    }
                    Op::Cancel(id) => {
                        if v.cancel(OrderId(id), ts).is_ok() && t.get_open(OrderId(id)).is_some() {
                            t.request_cancel(OrderId(id)).unwrap();
                        }
                    }
                    Op::CancelAll => { let _ = v.cancel_all(ts); }
                    Op::Wait(dt) => ts += dt,
                }
            }
            v.cancel_all(ts).unwrap();
            deliver(&mut v, &books, ts + OL + AL, &mut t, &mut sums)?;
            prop_assert_eq!(v.live_orders(), 0);
            prop_assert_eq!(v.queued_reports(), 0);
            prop_assert_eq!(t.open_count(), 0);
            prop_assert_eq!(t.history().count(), sums.len());
            for o in t.history() {
                prop_assert!(o.status.is_final());
                prop_assert_eq!(o.filled.raw(), sums[&o.id.0].1);
                prop_assert!(o.filled <= o.qty);
            }
            let s = t.stats();
            prop_assert_eq!((s.illegal, s.unknown, s.invalid), (0, 0, 0));
            prop_assert_eq!(v.counters().lost, 0);
            prop_assert!(s.fill_rate().is_none_or(|r| (0.0..=1.0).contains(&r)));
        }
    }
}
