//! Events from the hot thread to the control plane.
//!
//! Audit-relevant events (orders, fills, refusals, risk events, command acks) are never dropped:
//! when the ring is full the engine parks them in a preallocated overflow and stops opening risk
//! until they are delivered. Telemetry (heartbeats, stats, positions, latency, feed status) may be
//! dropped under back-pressure and is counted when it is.

use crate::ids::{OrderId, OrderKind, Side, StrategyKind, SymbolId, TimeInForce};
use crate::msg::command::CmdOutcome;
use crate::px::{Amount, Px, Qty};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Event {
    Heartbeat(Heartbeat),
    Ack(CommandAck),
    Order(OrderEvent),
    /// A change of an order's state (acknowledged, partially filled, filled, canceled,
    /// rejected by the venue, expired). Fills are also reported as `Fill`.
    OrderUpdate(OrderUpdate),
    Fill(FillEvent),
    Reject(RejectEvent),
    Risk(RiskEvent),
    Feed(FeedEvent),
    Stats(StatsSnapshot),
    Position(PositionSnapshot),
    Latency(LatencySnapshot),
    Strategy(StrategySnapshot),
    Book(BookLevel),
    RiskState(RiskSnapshot),
}

impl Event {
    /// Audit-relevant events must reach the control plane; the rest may be dropped (counted).
    #[inline]
    pub const fn is_audit(&self) -> bool {
        matches!(
            self,
            Event::Ack(_)
                | Event::Order(_)
                | Event::OrderUpdate(_)
                | Event::Fill(_)
                | Event::Reject(_)
                | Event::Risk(_)
        )
    }
}

/// Engine state as of an acknowledgement or heartbeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct EngineState {
    /// Manual halt in force.
    pub halted: bool,
    /// Not opening risk because audit events are waiting for ring space.
    pub backpressure: bool,
    /// Bit `k` set when `StrategyKind` with index `k` is active.
    pub active_strategies: u8,
    /// Tripped kill switch (latched until re-armed), `None` when armed and untripped.
    pub kill_switch: Option<KillCause>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Heartbeat {
    /// Wall-clock time of the engine, unix ns.
    pub ts_ns: u64,
    /// Increments by one per heartbeat.
    pub seq: u64,
    pub state: EngineState,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CommandAck {
    pub seq: u64,
    pub outcome: CmdOutcome,
    pub state: EngineState,
    pub ts_ns: u64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OrderEvent {
    pub id: OrderId,
    pub symbol: SymbolId,
    pub side: Side,
    pub kind: OrderKind,
    pub tif: TimeInForce,
    /// Limit price; for market orders the price the decision was taken at (touch).
    pub px: Px,
    pub qty: Qty,
    /// Mid price when the decision was taken (for slippage).
    pub decision_px: Px,
    /// Receive time of the frame that caused the order, unix ns.
    pub frame_ts_ns: u64,
    /// Emission time, unix ns.
    pub ts_ns: u64,
    /// Frame-receipt-to-emission time measured on the hot thread, ns.
    pub tick_to_order_ns: u32,
    /// Bit `k` set when strategy `k` contributed to the decision.
    pub strategies: u8,
    /// Set when the order only reduces exposure (flatten, kill switch).
    pub reduce_only: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liquidity {
    Maker,
    Taker,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FillEvent {
    pub order: OrderId,
    pub symbol: SymbolId,
    pub side: Side,
    pub liquidity: Liquidity,
    /// The order has no remaining quantity after this fill.
    pub last: bool,
    pub px: Px,
    pub qty: Qty,
    /// Fee in quote currency (positive = paid).
    pub fee: Amount,
    /// The part of the commission the venue took in the base asset (Binance takes a trade's
    /// commission in the asset it pays out: a buy's in the base asset, unless fees are paid in
    /// BNB). Its value at `px` is included in `fee`; the position moved by
    /// [`FillEvent::moved`]. Zero for a commission in the quote asset, or in another one.
    pub base_fee: Qty,
    /// Position after this fill (signed base quantity).
    pub position: Qty,
    /// Cumulative realized PnL of the symbol after this fill, net of fees.
    pub realized: Amount,
    pub ts_ns: u64,
}

impl FillEvent {
    /// The base quantity the position moved by: [`moved_qty`] of this fill.
    #[inline]
    pub fn moved(&self) -> Qty {
        moved_qty(self.side, self.qty, self.base_fee)
    }
}

/// The base quantity (unsigned) a fill of `qty` on `side` moves the account by when the venue
/// takes `base_fee` of the commission in the base asset: a buy receives `qty - base_fee`, a sell
/// gives up `qty + base_fee`.
#[inline]
pub fn moved_qty(side: Side, qty: Qty, base_fee: Qty) -> Qty {
    match side {
        Side::Buy => Qty(qty.raw() - base_fee.raw()),
        Side::Sell => Qty(qty.raw() + base_fee.raw()),
    }
}

/// Why the risk manager refused an order.
/// Why the risk manager refused an order. Every refusal carries one, is counted per reason and
/// is reported as a [`RejectEvent`]. `code()` is the stable name used by the API and the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RejectReason {
    /// Manual halt in force.
    Halted = 0,
    /// Audit events are waiting for ring space: no new risk until they are delivered.
    Backpressure = 1,
    /// The order would take the symbol's position past its limit (quantity or notional), or a
    /// reduce-only order would not reduce.
    MaxPosition = 2,
    /// No valid, fresh, uncrossed book to price the order against, or the feed is stale.
    NoMarket = 3,
    /// Quantity is not positive, off the lot step, or outside the lot size's min/max.
    LotSize = 4,
    /// Too many orders open at once.
    MaxOpenOrders = 5,
    /// The kill switch is tripped: no order that increases exposure until re-armed.
    KillSwitch = 6,
    /// Order notional below the exchange's minimum notional.
    MinNotional = 7,
    /// Limit price off the tick grid.
    TickSize = 8,
    /// Price too far from the mid (fat-finger band).
    PriceBand = 9,
    /// The same order (symbol, side, quantity, price) was sent within the duplicate window.
    Duplicate = 10,
    /// The venue's order-rate limit (per 10 s or per day) would be exceeded.
    RateLimit = 11,
    /// The sum of absolute position notionals would pass its limit.
    MaxTotalPosition = 12,
    /// Gross exposure would pass the deployable capital (total − reserve).
    Capital = 13,
    /// The order risks more than `risk_per_trade` of deployable capital at the stop distance.
    RiskPerTrade = 14,
}

impl RejectReason {
    pub const COUNT: usize = 15;
    pub const ALL: [RejectReason; Self::COUNT] = [
        RejectReason::Halted,
        RejectReason::Backpressure,
        RejectReason::MaxPosition,
        RejectReason::NoMarket,
        RejectReason::LotSize,
        RejectReason::MaxOpenOrders,
        RejectReason::KillSwitch,
        RejectReason::MinNotional,
        RejectReason::TickSize,
        RejectReason::PriceBand,
        RejectReason::Duplicate,
        RejectReason::RateLimit,
        RejectReason::MaxTotalPosition,
        RejectReason::Capital,
        RejectReason::RiskPerTrade,
    ];
    pub const fn code(self) -> &'static str {
        match self {
            RejectReason::Halted => "halted",
            RejectReason::Backpressure => "backpressure",
            RejectReason::MaxPosition => "max_position",
            RejectReason::NoMarket => "no_market",
            RejectReason::LotSize => "lot_size",
            RejectReason::MaxOpenOrders => "max_open_orders",
            RejectReason::KillSwitch => "kill_switch",
            RejectReason::MinNotional => "min_notional",
            RejectReason::TickSize => "tick_size",
            RejectReason::PriceBand => "price_band",
            RejectReason::Duplicate => "duplicate",
            RejectReason::RateLimit => "rate_limit",
            RejectReason::MaxTotalPosition => "max_total_position",
            RejectReason::Capital => "capital",
            RejectReason::RiskPerTrade => "risk_per_trade",
        }
    }
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RejectEvent {
    pub symbol: SymbolId,
    pub side: Side,
    pub reason: RejectReason,
    pub qty: Qty,
    pub px: Px,
    /// Identical refusals (same symbol and reason) counted but not emitted since the last one.
    pub suppressed: u32,
    pub ts_ns: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RiskEventKind {
    Halted,
    Resumed,
    /// The event ring was full; new risk stops until the parked audit events are delivered.
    BackpressureOn,
    /// Parked audit events delivered; `count` is how many were parked.
    BackpressureOff,
    StrategyActivated(StrategyKind),
    StrategyDeactivated(StrategyKind),
    WeightChanged(StrategyKind),
    FlattenRequested,
    /// A circuit breaker tripped the kill switch; `value` is the equity then, 1e-8 quote units.
    KillSwitch(KillCause),
    /// An operator re-armed the kill switch; `value` is the equity then, 1e-8 quote units. The
    /// drawdown peak and the day's loss baseline restart from it.
    Rearmed,
    /// A new UTC day began; `value` is the equity the day's loss is measured from, 1e-8 units.
    DayRollover,
}

/// An order's place in its lifecycle: `PendingNew` (sent, not yet acknowledged) → `New`
/// (acknowledged, resting or working) → `PartiallyFilled` → `Filled`, or a final `Canceled`,
/// `Rejected` (by the venue or the fill model; a post-only order that would have taken
/// liquidity is rejected with -2010, as Binance does) or `Expired` (IOC/FOK remainder).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    PendingNew,
    New,
    PartiallyFilled,
    Filled,
    Canceled,
    Rejected,
    Expired,
}

impl OrderStatus {
    /// Binance's name for the status (`NEW`, `PARTIALLY_FILLED`, …); `PENDING_NEW` for sent and
    /// not yet acknowledged.
    pub const fn as_str(self) -> &'static str {
        match self {
            OrderStatus::PendingNew => "PENDING_NEW",
            OrderStatus::New => "NEW",
            OrderStatus::PartiallyFilled => "PARTIALLY_FILLED",
            OrderStatus::Filled => "FILLED",
            OrderStatus::Canceled => "CANCELED",
            OrderStatus::Rejected => "REJECTED",
            OrderStatus::Expired => "EXPIRED",
        }
    }
    /// No further change can happen.
    pub const fn is_final(self) -> bool {
        matches!(self, OrderStatus::Filled | OrderStatus::Canceled | OrderStatus::Rejected | OrderStatus::Expired)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OrderUpdate {
    pub id: OrderId,
    pub symbol: SymbolId,
    pub status: OrderStatus,
    /// Cumulative filled quantity.
    pub filled: Qty,
    /// Venue error code when `Rejected` by the venue (Binance `code`, e.g. -2010), else 0.
    pub venue_code: i32,
    pub ts_ns: u64,
}

/// What tripped the kill switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KillCause {
    /// The day's loss (since 00:00 UTC) reached `risk.daily_loss` × capital.
    DailyLoss,
    /// Equity fell `risk.max_drawdown` below its peak.
    Drawdown,
}

impl KillCause {
    pub const fn code(self) -> &'static str {
        match self {
            KillCause::DailyLoss => "daily_loss",
            KillCause::Drawdown => "drawdown",
        }
    }
}

/// The risk manager's account view, for `/risk` and the store. Amounts in quote currency.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RiskSnapshot {
    /// Capital + realized (net of fees) + unrealized PnL over all symbols.
    pub equity: Amount,
    /// Highest equity seen (since start or the last re-arm).
    pub peak: Amount,
    /// Equity at the start of the current UTC day (or the last re-arm).
    pub day_start: Amount,
    /// Orders sent in the last 10 s and today (UTC), against the venue's limits.
    pub orders_10s: u32,
    pub orders_today: u32,
    pub kill_switch: Option<KillCause>,
    pub ts_ns: u64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RiskEvent {
    pub kind: RiskEventKind,
    /// Kind-specific figure (e.g. parked event count, new weight × 1e6).
    pub value: i64,
    pub ts_ns: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedState {
    /// Waiting for the first snapshot/frames.
    Connecting,
    /// Frames flowing, book valid.
    Live,
    /// No frame within the configured staleness window.
    Stale,
    /// A sequence gap or bad snapshot invalidated the book; resync under way.
    Resyncing,
    /// The source ended (replay exhausted) or the connection is down.
    Down,
}

impl FeedState {
    pub const fn as_str(self) -> &'static str {
        match self {
            FeedState::Connecting => "connecting",
            FeedState::Live => "live",
            FeedState::Stale => "stale",
            FeedState::Resyncing => "resyncing",
            FeedState::Down => "down",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FeedEvent {
    pub symbol: SymbolId,
    pub state: FeedState,
    pub ts_ns: u64,
}

/// Monotonic counters since start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct StatsSnapshot {
    pub frames: u64,
    pub decode_errors: u64,
    pub signals: u64,
    pub orders: u64,
    pub fills: u64,
    pub rejects: u64,
    /// Telemetry events dropped because the ring was full.
    pub telemetry_dropped: u64,
    /// Audit events that had to be parked because the ring was full (all delivered later).
    pub audit_parked: u64,
    pub book_gaps: u64,
    /// Live fills whose commission was charged in an asset that is neither the symbol's base nor
    /// its quote (BNB): it is not in the fees nor the PnL.
    pub unpriced_fees: u64,
    pub ts_ns: u64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PositionSnapshot {
    pub symbol: SymbolId,
    /// Signed base quantity.
    pub qty: Qty,
    /// Average entry price of the open position (zero when flat).
    pub avg_px: Px,
    /// Mark price (mid of the book), zero when unknown.
    pub mark: Px,
    /// Realized PnL net of fees.
    pub realized: Amount,
    /// Unrealized PnL at `mark`.
    pub unrealized: Amount,
    pub fees: Amount,
    pub ts_ns: u64,
}

/// Latency stages the hot thread measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Stage {
    Decode = 0,
    Book = 1,
    Strategy = 2,
    Risk = 3,
    OrderEncode = 4,
    TickToOrder = 5,
}

impl Stage {
    pub const COUNT: usize = 6;
    pub const ALL: [Stage; Self::COUNT] =
        [Stage::Decode, Stage::Book, Stage::Strategy, Stage::Risk, Stage::OrderEncode, Stage::TickToOrder];
    pub const fn name(self) -> &'static str {
        match self {
            Stage::Decode => "decode",
            Stage::Book => "book",
            Stage::Strategy => "strategy",
            Stage::Risk => "risk",
            Stage::OrderEncode => "order_encode",
            Stage::TickToOrder => "tick_to_order",
        }
    }
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// Percentiles of one stage's histogram since start (or the last reset), in ns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Percentiles {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LatencySnapshot {
    pub stage: Stage,
    pub pct: Percentiles,
    pub ts_ns: u64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StrategySnapshot {
    pub kind: StrategyKind,
    pub active: bool,
    pub weight: f64,
    /// Latest signal in [-1, 1].
    pub signal: f64,
    pub signals: u64,
    pub orders: u64,
    /// Realized PnL (net of fees) attributed to the strategy: each order's realized PnL split
    /// between the strategies behind it by their weights when it was sent.
    pub realized: Amount,
    pub ts_ns: u64,
}

/// One level of a book dump (answer to `CommandKind::DumpBook`): `count` levels follow for the
/// symbol, bids best-first then asks best-first, numbered by `index`. A dump of an invalid book
/// is a single event with `count == 0` and `valid == false`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BookLevel {
    pub symbol: SymbolId,
    pub side: Side,
    pub valid: bool,
    pub index: u32,
    pub count: u32,
    pub px: Px,
    pub qty: Qty,
    /// Update id the book reflects.
    pub update_id: u64,
}

// Every ring slot is one `Event`: keep it within two cache lines.
const _: () = assert!(core::mem::size_of::<Event>() <= 128);
