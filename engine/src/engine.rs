//! The engine: [`Pipeline`] is decode → book → strategy → risk → exec for one frame at a time;
//! [`Engine`] owns a pipeline, a frame source and the command ring, and runs one duty-cycle
//! pass per [`Engine::poll`].
//!
//! Hot thread. Everything is allocated in `new`; `poll`, `on_frame` and `on_command` do not
//! allocate (proved by `tests/no_alloc.rs` with a counting global allocator).

use crate::book::{Book, BookError, DiffOutcome, SyncState};
use crate::clock::Clock;
use crate::events::EventSink;
use crate::exec::live::gateway::{GatewayEvent, LiveGateway, LiveParams, NewOrder};
use crate::exec::live::response::{ExecType, ExecutionReport};
use crate::exec::live::{ClientId, RequestKind};
use crate::exec::orders::{Order, OrderError, OrderTable, parse_client_id};
use crate::exec::sim::{REPORTS_PER_ORDER, Report, ReportKind, SimVenue};
use crate::feed::decode::{self, DecodeError, DecodeScratch, Decoded};
use crate::feed::record::Recorder;
use crate::feed::ws::{FeedNotice, LinkKind, WsFeed, WsParams};
use crate::feed::{FrameKind, Source};
use crate::restore::{Restore, RestoreError};
use crate::risk::breaker::BreakerUpdate;
use crate::risk::{Intent, Position, RiskManager, RiskView};
use crate::runtime::EngineError;
use crate::strategy::{Orchestrator, SHARE_SCALE, TARGET_LEVELS, Tick};
use crate::telemetry::Latency;
use hft_shared::config::{Config, LIVE_CONFIRMATION, Mode, StrategyOrderType};
use hft_shared::msg::{
    BookLevel, CmdOutcome, Command, CommandAck, CommandKind, EngineState, Event, FeedEvent, FeedState, FillEvent,
    Heartbeat, LatencySnapshot, Liquidity, OrderEvent, OrderStatus, PositionSnapshot, RejectEvent, RejectReason,
    RiskEvent, RiskEventKind, RiskSnapshot, Stage, StatsSnapshot, StrategySnapshot, moved_qty,
};
use hft_shared::{Amount, OrderId, OrderKind, Px, Qty, Side, StrategyKind, SymbolId, TimeInForce};

/// Levels per side a book (and the decode scratch) can hold. Binance snapshots have ≤ 5000.
pub const BOOK_LEVELS: usize = 8192;
/// Frames processed per duty-cycle pass at most, so commands and timers are never starved.
pub const FRAME_BATCH: usize = 64;
/// Commands processed per pass at most.
pub const COMMAND_BATCH: usize = 64;
/// Identical refusals (symbol, reason) are emitted at most once per this many ns; the rest are
/// counted in the next event's `suppressed`.
pub const REJECT_EVENT_INTERVAL_NS: u64 = 1_000_000_000;
/// Bytes of raw diff frames buffered per symbol while waiting for a snapshot.
pub const DIFF_BUFFER_BYTES: usize = 4 << 20;
/// Diff frames buffered per symbol while waiting for a snapshot (Binance: 10/s per symbol).
pub const DIFF_BUFFER_FRAMES: usize = 1024;
/// Finished orders kept for inspection (order history).
pub const ORDER_HISTORY: usize = 1024;

/// Orders the table and the fill model hold at once: every open order the risk manager allows,
/// plus reduce-only orders (flatten) and those finishing in flight.
fn order_capacity(cfg: &Config) -> usize {
    2 * cfg.risk.max_open_orders as usize + 2 * cfg.symbols.len() + 16
}

/// How long shutdown waits for parked audit events to be delivered.
pub const SHUTDOWN_FLUSH_NS: u64 = 2_000_000_000;

/// An amount in 1e-8 quote units, saturating (for event values).
fn amount_to_fixed8(a: Amount) -> i64 {
    (a.raw() / 100_000_000).clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// Latest top of book from a bookTicker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quote {
    pub update_id: u64,
    pub bid: Px,
    pub bid_qty: Qty,
    pub ask: Px,
    pub ask_qty: Qty,
}

impl Quote {
    #[inline]
    pub fn is_valid(&self) -> bool {
        self.bid.raw() > 0 && self.ask.raw() > self.bid.raw()
    }
    #[inline]
    pub fn mid(&self) -> Px {
        Px((self.bid.raw() + self.ask.raw()) / 2)
    }
}

/// Monotonic counters of the pipeline.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    pub frames: u64,
    pub decode_errors: [u64; DecodeError::COUNT],
    pub signals: u64,
    pub orders: u64,
    pub fills: u64,
    pub book_gaps: u64,
    pub stale_diffs: u64,
    /// Snapshot requests the venue answered with an error (`{"code","msg"}`).
    pub snapshot_refusals: u64,
    /// Orders the venue link could not take (full, throttled, down), closed as rejected.
    pub send_failures: u64,
    /// Live gateway became ready / went down.
    pub venue_ready: u64,
    pub venue_down: u64,
    /// `order.cancel` answers (the order closes on its `CANCELED` execution report).
    pub cancels_acked: u64,
    /// Acknowledged orders the venue answered "does not exist" for at reconciliation, closed
    /// as expired.
    pub unknown_to_venue: u64,
    /// Execution reports of orders that are not this engine's.
    pub foreign_reports: u64,
    /// Frames naming a symbol that is not configured.
    pub unknown_symbol: u64,
    /// Trades whose id did not follow the previous one.
    pub trade_gaps: u64,
    pub bad_snapshots: u64,
    /// Diffs buffered while waiting for a snapshot.
    pub diffs_buffered: u64,
    /// Diffs dropped because the pre-snapshot buffer was full.
    pub diffs_dropped: u64,
    /// Connection notices from a live source.
    pub feed_notices: u64,
    /// Live fills whose commission was charged in an asset that is neither the symbol's base nor
    /// its quote (BNB): it is not in the fees nor the PnL.
    pub unpriced_fees: u64,
}

impl Counters {
    pub fn decode_errors_total(&self) -> u64 {
        self.decode_errors.iter().sum()
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Throttle {
    last_ns: u64,
    suppressed: u32,
    emitted_once: bool,
}

/// What the caller must do after a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameOutcome {
    /// The book of this symbol needs a fresh snapshot.
    pub resync: Option<SymbolId>,
    /// Orders sent because of this frame.
    pub orders: u32,
}

/// Raw diff frames that arrived while a book waited for its snapshot. Binance's procedure:
/// buffer the stream, take the snapshot, then apply the buffered diffs newer than it.
/// Preallocated; when full, further frames are dropped (counted) and the book will simply meet
/// a gap and resync again.
#[derive(Debug)]
struct DiffBuffer {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl DiffBuffer {
    fn new() -> Self {
        Self { bytes: Vec::with_capacity(DIFF_BUFFER_BYTES), ends: Vec::with_capacity(DIFF_BUFFER_FRAMES) }
    }
    fn push(&mut self, frame: &[u8]) -> bool {
        if self.bytes.len() + frame.len() > self.bytes.capacity() || self.ends.len() == self.ends.capacity() {
            return false;
        }
        self.bytes.extend_from_slice(frame);
        self.ends.push(self.bytes.len());
        true
    }
    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }
}

/// One of the two assets of a Binance symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leg {
    Base,
    Quote,
}

/// Which asset of the symbol `name` the asset `asset` is: a Binance symbol's name is its base
/// asset then its quote asset (`BTCUSDT`: `BTC`, `USDT`). `None` for any other (BNB on
/// `BTCUSDT`), and for an empty or a whole name.
fn leg_of(name: &[u8], asset: &[u8]) -> Option<Leg> {
    if asset.is_empty() || asset.len() >= name.len() {
        None
    } else if name.starts_with(asset) {
        Some(Leg::Base)
    } else if name.ends_with(asset) {
        Some(Leg::Quote)
    } else {
        None
    }
}

/// decode → book → strategy → risk → exec over one frame at a time.
pub struct Pipeline {
    clock: Clock,
    symbols: Vec<SymbolKey>,
    /// Binance names of the symbols (base asset then quote asset), by `SymbolId`.
    names: Vec<Box<[u8]>>,
    scratch: DecodeScratch,
    books: Vec<Book>,
    diff_buf: Vec<DiffBuffer>,
    /// Decision time of each book's last change, ns.
    book_ts: Vec<u64>,
    max_book_age_ns: u64,
    quotes: Vec<Quote>,
    last_trade_id: Vec<u64>,
    /// Base quantity traded since the symbol's last quote (the strategies' volume input).
    volume: Vec<Qty>,
    feed: Vec<FeedState>,
    orch: Orchestrator,
    risk: RiskManager,
    positions: Vec<Position>,
    marks: Vec<Px>,
    /// Every order the engine sent, through its lifecycle.
    orders: OrderTable,
    /// The fill model (paper, shadow, backtest): the venue the orders go to.
    venue: SimVenue,
    /// Reports taken from the venue in one poll (capacity: all it can hold).
    reports: Vec<Report>,
    /// Live mode: orders go to Binance's WebSocket API instead of the fill model.
    live: Option<Box<LiveGateway>>,
    /// The live gateway is connected, subscribed and reconciled: orders may go out.
    live_ready: bool,
    sink: EventSink,
    lat: Latency,
    /// Frames whose number `& timing_mask == 0` have their stages timed (0: every frame).
    timing_mask: u64,
    /// The frame being processed is timed.
    timed: bool,
    counters: Counters,
    max_position_f64: f64,
    /// Half a target level of notional: smaller deviations from target are not traded.
    rebalance_band: Amount,
    cooldown_ns: u64,
    kill_flatten: bool,
    /// Strategy orders are resting limit orders at the touch (`exec.order_type = "limit"`).
    limit_orders: bool,
    limit_ttl_ns: u64,
    /// Realized PnL of orders no strategy sent (operator flatten, kill-switch flatten).
    unattributed_realized: Amount,
    last_attempt_ns: Vec<u64>,
    /// Per symbol, the last target quantity computed and what it was computed from (the
    /// target fraction's bits and the touch): most ticks change only the touch's quantities,
    /// and then the same target is not computed again.
    target_memo: Vec<(u64, Px, Qty)>,
    next_order_id: u64,
    throttle: Vec<[Throttle; RejectReason::COUNT]>,
    /// Market making's quotes at the venue, per symbol: bid, ask.
    mm_quotes: Vec<[MmQuote; 2]>,
    /// `strategies.marketmaking.requote_ms`, ns.
    requote_ns: u64,
}

/// One side of market making's quotes: its resting order, the price it rests at, and when the
/// side last sent an order (or was refused one).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct MmQuote {
    id: Option<OrderId>,
    px: Px,
    at_ns: u64,
}

/// Market making's bit in an order's `strategies`.
const MM: u8 = 1 << StrategyKind::MarketMaking.index();

/// A symbol name as at most two words, so that finding a frame's symbol compares words instead
/// of calling `bcmp` per configured symbol: names of 4 to 16 bytes (all of Binance's) are
/// their length and two overlapping loads (first and last 8 bytes, or 4 and 4 below 8 bytes),
/// which together cover every byte; other lengths keep their bytes and compare as slices.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SymbolKey {
    Words(usize, u64, u64),
    Bytes(Vec<u8>),
}

impl SymbolKey {
    /// The words of a 4-to-16-byte name, else `None`. Always inlined: it runs on every frame.
    #[inline(always)]
    fn words(s: &[u8]) -> Option<(usize, u64, u64)> {
        if let (Some(a), Some(b)) = (s.first_chunk::<8>(), s.last_chunk::<8>())
            && s.len() <= 16
        {
            return Some((s.len(), u64::from_ne_bytes(*a), u64::from_ne_bytes(*b)));
        }
        if let (Some(a), Some(b)) = (s.first_chunk::<4>(), s.last_chunk::<4>())
            && s.len() < 8
        {
            return Some((s.len(), u32::from_ne_bytes(*a).into(), u32::from_ne_bytes(*b).into()));
        }
        None
    }

    fn new(name: &[u8]) -> Self {
        match Self::words(name) {
            Some((n, a, b)) => SymbolKey::Words(n, a, b),
            None => SymbolKey::Bytes(name.to_vec()),
        }
    }
}

/// The index of `name` among `keys`, which [`SymbolKey::new`] made from the configured names.
#[inline(always)]
fn find_symbol(keys: &[SymbolKey], name: &[u8]) -> Option<usize> {
    match SymbolKey::words(name) {
        Some(w) => keys.iter().position(|k| matches!(k, SymbolKey::Words(n, a, b) if (*n, *a, *b) == w)),
        None => keys.iter().position(|k| matches!(k, SymbolKey::Bytes(b) if b.as_slice() == name)),
    }
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline").field("counters", &self.counters).finish_non_exhaustive()
    }
}

impl Pipeline {
    pub fn new(cfg: &Config, events: rtrb::Producer<Event>) -> Self {
        let n = cfg.symbols.len();
        Self {
            clock: Clock::new(),
            symbols: cfg.symbols.iter().map(|s| SymbolKey::new(s.as_bytes())).collect(),
            names: cfg.symbols.iter().map(|s| s.as_bytes().into()).collect(),
            scratch: DecodeScratch::with_capacity(BOOK_LEVELS),
            books: (0..n).map(|_| Book::with_capacity(BOOK_LEVELS)).collect(),
            diff_buf: (0..n).map(|_| DiffBuffer::new()).collect(),
            book_ts: vec![0; n],
            max_book_age_ns: cfg.feed.max_book_age_ms * 1_000_000,
            quotes: vec![Quote::default(); n],
            last_trade_id: vec![0; n],
            volume: vec![Qty::ZERO; n],
            feed: vec![FeedState::Connecting; n],
            orch: Orchestrator::new(cfg),
            risk: RiskManager::new(cfg),
            positions: vec![Position::default(); n],
            marks: vec![Px::ZERO; n],
            orders: OrderTable::new(order_capacity(cfg), ORDER_HISTORY),
            venue: SimVenue::new(cfg, order_capacity(cfg)),
            reports: Vec::with_capacity(order_capacity(cfg) * REPORTS_PER_ORDER),
            live: None,
            live_ready: false,
            sink: EventSink::new(events, cfg.engine.audit_overflow),
            lat: Latency::new(),
            timing_mask: 0,
            timed: true,
            counters: Counters::default(),
            max_position_f64: cfg.risk.max_position,
            rebalance_band: Amount::from_f64(cfg.risk.max_position / (2.0 * TARGET_LEVELS)).unwrap_or(Amount::ZERO),
            cooldown_ns: cfg.risk.order_cooldown_ms * 1_000_000,
            kill_flatten: cfg.risk.kill_flatten,
            limit_orders: cfg.exec.order_type == StrategyOrderType::Limit,
            limit_ttl_ns: cfg.exec.limit_ttl_ms * 1_000_000,
            unattributed_realized: Amount::ZERO,
            last_attempt_ns: vec![0; n],
            target_memo: vec![(0, Px::ZERO, Qty::ZERO); n],
            next_order_id: 1,
            throttle: vec![[Throttle::default(); RejectReason::COUNT]; n],
            mm_quotes: vec![[MmQuote::default(); 2]; n],
            requote_ns: cfg.strategies.marketmaking.requote_ms * 1_000_000,
        }
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }
    pub fn counters(&self) -> &Counters {
        &self.counters
    }
    pub fn book(&self, symbol: SymbolId) -> &Book {
        &self.books[symbol.index()]
    }
    pub fn quote(&self, symbol: SymbolId) -> Quote {
        self.quotes[symbol.index()]
    }
    pub fn position(&self, symbol: SymbolId) -> &Position {
        &self.positions[symbol.index()]
    }
    pub fn latency(&self) -> &Latency {
        &self.lat
    }
    /// Times the stages of one frame in `every` (rounded up to a power of two; 1, the default:
    /// every frame). Backtests sample: reading the clock at every stage costs more than some
    /// stages. Untimed frames record no latency and send orders with `tick_to_order_ns` 0; no
    /// decision depends on the timers.
    pub fn set_timing_every(&mut self, every: u64) {
        self.timing_mask = every.max(1).checked_next_power_of_two().unwrap_or(1 << 63) - 1;
    }
    /// Will the next frame be timed? (Its caller then passes a real `recv_raw`.)
    #[inline]
    pub fn next_frame_timed(&self) -> bool {
        (self.counters.frames + 1) & self.timing_mask == 0
    }
    /// A clock reading for the stage timers, when this frame is timed.
    #[inline(always)]
    fn stamp(&self) -> u64 {
        if self.timed { self.clock.raw() } else { 0 }
    }
    /// Records `stage` as taking `from..to`, when this frame is timed.
    #[inline(always)]
    fn record(&mut self, stage: Stage, from: u64, to: u64) {
        if self.timed {
            self.lat.record(stage, self.clock.delta_ns(from, to));
        }
    }
    pub fn risk(&self) -> &RiskManager {
        &self.risk
    }
    pub fn orchestrator(&self) -> &Orchestrator {
        &self.orch
    }
    /// The engine's orders: open ones, history, execution statistics.
    pub fn orders(&self) -> &OrderTable {
        &self.orders
    }
    /// The fill model's counters (paper, shadow, backtest).
    pub fn venue(&self) -> &SimVenue {
        &self.venue
    }
    /// Realized PnL (net of fees) of orders no strategy sent: operator and kill-switch flattens.
    /// With the strategies' attributed PnL it sums to the positions' realized PnL exactly.
    pub fn unattributed_realized(&self) -> Amount {
        self.unattributed_realized
    }
    pub fn sink(&mut self) -> &mut EventSink {
        &mut self.sink
    }
    /// Telemetry events dropped because the event ring was full.
    pub fn sink_telemetry_dropped(&self) -> u64 {
        self.sink.telemetry_dropped
    }

    pub fn state(&self) -> EngineState {
        EngineState {
            halted: self.risk.halted,
            backpressure: self.sink.blocked(),
            active_strategies: self.orch.active_mask(),
            kill_switch: self.risk.kill_switch(),
        }
    }

    #[inline]
    fn symbol_index(&self, name: &[u8]) -> Option<usize> {
        find_symbol(&self.symbols, name)
    }

    /// Processes one frame received at raw clock value `recv_raw`, with decision time `ts_ns`
    /// (unix ns; recorded time in backtests).
    pub fn on_frame(&mut self, kind: FrameKind, bytes: &[u8], recv_raw: u64, ts_ns: u64) -> FrameOutcome {
        let mut out = FrameOutcome::default();
        self.counters.frames += 1;
        self.timed = self.counters.frames & self.timing_mask == 0;
        // The venue's answers due by now, matched against the books as they were.
        self.poll_venue(ts_ns);
        let res = decode::decode(bytes, &mut self.scratch);
        let t_dec = self.stamp();
        self.record(Stage::Decode, recv_raw, t_dec);
        match res {
            // The venue refused a snapshot request (e.g. -1008 "no snapshot yet"): not market
            // data that failed to decode. Counted apart; the feed asks again.
            Err(DecodeError::VenueError) => self.counters.snapshot_refusals += 1,
            Err(e) => self.counters.decode_errors[e.index()] += 1,
            Ok(Decoded::Snapshot(h)) => {
                let FrameKind::Snapshot(sym) = kind else {
                    // A snapshot body we did not ask for: we cannot tell whose it is.
                    self.counters.bad_snapshots += 1;
                    return out;
                };
                let i = sym.index();
                if i >= self.books.len() {
                    self.counters.unknown_symbol += 1;
                    return out;
                }
                match self.books[i].apply_snapshot(h.last_update_id, &self.scratch.bids, &self.scratch.asks) {
                    Ok(()) => {
                        self.book_ts[i] = ts_ns;
                        if self.replay_buffered(i, ts_ns).is_err() {
                            out.resync = Some(sym);
                        }
                        self.venue.on_book(sym, &self.books[i], ts_ns);
                    }
                    Err(_) => {
                        self.counters.bad_snapshots += 1;
                        out.resync = Some(sym);
                    }
                }
                let t_book = self.stamp();
                self.record(Stage::Book, t_dec, t_book);
            }
            Ok(Decoded::Depth(h)) => {
                let Some(i) = self.symbol_index(h.symbol) else {
                    self.counters.unknown_symbol += 1;
                    return out;
                };
                if self.books[i].state() == SyncState::AwaitingSnapshot {
                    if self.diff_buf[i].push(bytes) {
                        self.counters.diffs_buffered += 1;
                    } else {
                        self.counters.diffs_dropped += 1;
                    }
                    return out;
                }
                let r = self.books[i].apply_diff(h.first_id, h.final_id, &self.scratch.bids, &self.scratch.asks);
                let t_book = self.stamp();
                self.record(Stage::Book, t_dec, t_book);
                match r {
                    Ok(DiffOutcome::Applied) => {
                        self.book_ts[i] = ts_ns;
                        self.venue.on_book(SymbolId(i as u16), &self.books[i], ts_ns);
                        if self.feed[i] != FeedState::Live && self.books[i].is_valid() {
                            self.set_feed(i, FeedState::Live, ts_ns);
                        }
                    }
                    Ok(DiffOutcome::Stale) => self.counters.stale_diffs += 1,
                    Ok(DiffOutcome::NoSnapshot) => {}
                    Err(BookError::Gap { .. }) => {
                        self.counters.book_gaps += 1;
                        self.set_feed(i, FeedState::Resyncing, ts_ns);
                        out.resync = Some(SymbolId(i as u16));
                    }
                    Err(_) => {
                        self.books[i].invalidate();
                        self.set_feed(i, FeedState::Resyncing, ts_ns);
                        out.resync = Some(SymbolId(i as u16));
                    }
                }
            }
            Ok(Decoded::BookTicker(bt)) => {
                let Some(i) = self.symbol_index(bt.symbol) else {
                    self.counters.unknown_symbol += 1;
                    return out;
                };
                let q = Quote {
                    update_id: bt.update_id,
                    bid: bt.bid_px,
                    bid_qty: bt.bid_qty,
                    ask: bt.ask_px,
                    ask_qty: bt.ask_qty,
                };
                self.quotes[i] = q;
                let t_book = self.stamp();
                self.record(Stage::Book, t_dec, t_book);
                if q.is_valid() {
                    self.marks[i] = q.mid();
                    out.orders = self.on_quote(i, q, recv_raw, t_book, ts_ns);
                }
            }
            Ok(Decoded::Trade(t)) => {
                let Some(i) = self.symbol_index(t.symbol) else {
                    self.counters.unknown_symbol += 1;
                    return out;
                };
                let last = self.last_trade_id[i];
                if last != 0 && t.trade_id != last + 1 {
                    self.counters.trade_gaps += 1;
                }
                self.last_trade_id[i] = t.trade_id;
                self.venue.on_trade(SymbolId(i as u16), t.px, t.qty, t.buyer_is_maker, ts_ns);
                self.volume[i] = Qty(self.volume[i].raw().saturating_add(t.qty.raw().max(0)));
            }
            Ok(Decoded::AggTrade(_)) | Ok(Decoded::Ignored) => {}
        }
        out
    }

    /// Applies the diffs buffered before the snapshot of symbol `i` (stale ones are dropped by
    /// the book). A gap among them invalidates the book again (`Err`): the caller resyncs.
    fn replay_buffered(&mut self, i: usize, ts_ns: u64) -> Result<(), BookError> {
        let buf = &self.diff_buf[i];
        let mut start = 0;
        let mut result = Ok(());
        for &end in &buf.ends {
            let frame = &buf.bytes[start..end];
            start = end;
            let Ok(Decoded::Depth(h)) = decode::decode(frame, &mut self.scratch) else { continue };
            match self.books[i].apply_diff(h.first_id, h.final_id, &self.scratch.bids, &self.scratch.asks) {
                Ok(_) => {}
                Err(e) => {
                    self.counters.book_gaps += 1;
                    result = Err(e);
                    break;
                }
            }
        }
        self.diff_buf[i].clear();
        if result.is_ok() && self.books[i].is_valid() {
            self.set_feed(i, FeedState::Live, ts_ns);
        } else if result.is_err() {
            self.set_feed(i, FeedState::Resyncing, ts_ns);
        }
        result
    }

    /// Can orders on symbol `i` be priced right now? Book synced, not crossed, recent enough,
    /// and the feed live (not stale, not resyncing).
    #[inline]
    pub fn market_ok(&self, i: usize, ts_ns: u64) -> bool {
        self.feed[i] == FeedState::Live
            && (self.live.is_none() || self.live_ready)
            && self.books[i].is_valid()
            && ts_ns.saturating_sub(self.book_ts[i]) <= self.max_book_age_ns
    }

    /// The connection carrying every symbol went down: every book is void until resynced.
    pub fn feed_down(&mut self, ts_ns: u64) {
        for i in 0..self.books.len() {
            self.books[i].invalidate();
            self.diff_buf[i].clear();
            self.set_feed(i, FeedState::Down, ts_ns);
        }
    }

    /// Connected (again): books wait for snapshots.
    pub fn feed_connected(&mut self, ts_ns: u64) {
        for i in 0..self.books.len() {
            self.books[i].invalidate();
            self.diff_buf[i].clear();
            self.set_feed(i, FeedState::Connecting, ts_ns);
        }
    }

    /// No frame for the staleness window (`stale`), or frames again.
    pub fn feed_stale(&mut self, stale: bool, ts_ns: u64) {
        for i in 0..self.books.len() {
            if stale && self.feed[i] == FeedState::Live {
                self.set_feed(i, FeedState::Stale, ts_ns);
            } else if !stale && self.feed[i] == FeedState::Stale {
                let state = if self.books[i].is_valid() { FeedState::Live } else { FeedState::Resyncing };
                self.set_feed(i, state, ts_ns);
            }
        }
    }

    /// Current feed state of symbol `i`.
    pub fn feed_state(&self, symbol: SymbolId) -> FeedState {
        self.feed[symbol.index()]
    }

    /// Strategy → orchestrator → (maybe) an order. Returns orders sent.
    #[inline]
    fn on_quote(&mut self, i: usize, q: Quote, recv_raw: u64, t_book: u64, ts_ns: u64) -> u32 {
        let mid = q.mid();
        // Mark to market first, so that a breaker tripping on this tick stops its order.
        let u = self.risk.mark(i, &self.positions[i], mid, ts_ns);
        if u != BreakerUpdate::default() {
            self.on_breaker(u, ts_ns);
        }
        // Tripped with `kill_flatten`: keep flattening until flat (orders in flight at the trip
        // may fill after the first flatten), one order at a time, at the order cadence.
        if self.kill_flatten
            && self.risk.kill_switch().is_some()
            && !self.tradable(self.positions[i].qty).is_zero()
            && self.pending(i) == 0
            && ts_ns.saturating_sub(self.last_attempt_ns[i]) >= self.cooldown_ns
        {
            self.last_attempt_ns[i] = ts_ns;
            return self.flatten_symbol(i, ts_ns);
        }
        if self.limit_orders {
            self.expire_limits(i, ts_ns);
        }
        let tick = Tick {
            bid: q.bid,
            ask: q.ask,
            bid_qty: q.bid_qty,
            ask_qty: q.ask_qty,
            volume: std::mem::take(&mut self.volume[i]),
            position: self.positions[i].qty,
        };
        let decision = self.orch.on_tick(i, &tick);
        let t_strat = self.stamp();
        self.record(Stage::Strategy, t_book, t_strat);
        if decision.is_some() {
            self.counters.signals += 1;
        }
        let mut sent = 0;
        let [bid, ask] = self.mm_quotes[i];
        if self.orch.slots[StrategyKind::MarketMaking.index()].active || bid.id.is_some() || ask.id.is_some() {
            sent = self.make_markets(i, recv_raw, t_strat, ts_ns);
        }
        sent + self.rebalance(i, q, recv_raw, t_strat, ts_ns)
    }

    /// Trades symbol `i` toward the orchestrator's target position, at quote `q`: one order
    /// when the position (with the orders still open) is far enough from it and the symbol's
    /// cooldown has passed. Returns orders sent.
    #[inline]
    fn rebalance(&mut self, i: usize, q: Quote, recv_raw: u64, t_strat: u64, ts_ns: u64) -> u32 {
        let mid = q.mid();
        // No strategy active with a weight: nothing decides a target, so the position is held
        // as it is (a restart with every strategy off must not sell what it restored); going
        // flat is the operator's `flatten`, or the kill switch's.
        if self.orch.contributors() == 0 {
            return 0;
        }
        let mut target = self.orch.target(i);
        if target < 0.0 && !self.risk.allow_short() {
            // A spot account's short target: flat.
            target = 0.0;
        }
        // Target quantity priced at the touch we would trade at, rounded down to the lot.
        let touch = if target > 0.0 { q.ask } else { q.bid };
        let target_qty = match self.target_memo[i] {
            (bits, px, qty) if bits == target.to_bits() && px == touch => qty,
            _ => {
                let qty = Qty::from_f64(target.abs() * self.max_position_f64 / touch.to_f64()).unwrap_or(Qty::ZERO);
                let qty = Qty(self.risk.round_qty(qty).raw() * if target < 0.0 { -1 } else { 1 });
                self.target_memo[i] = (target.to_bits(), touch, qty);
                qty
            }
        };
        // What the position will be once the open orders are done.
        let pos = Qty(self.positions[i].qty.raw() + self.pending(i));
        let diff = Qty(target_qty.raw() - pos.raw());
        if diff.is_zero() {
            return 0;
        }
        // Rebalance only when the deviation is worth half a target level (or to go flat).
        if !target_qty.is_zero() && Amount::notional(mid, diff.abs()) < self.rebalance_band {
            return 0;
        }
        if ts_ns.saturating_sub(self.last_attempt_ns[i]) < self.cooldown_ns {
            return 0;
        }
        self.last_attempt_ns[i] = ts_ns;
        let side = if diff.raw() > 0 { Side::Buy } else { Side::Sell };
        // Market orders take the touch; limit orders join it (the best bid for a buy).
        let px = match (side, self.limit_orders) {
            (Side::Buy, false) | (Side::Sell, true) => q.ask,
            (Side::Sell, false) | (Side::Buy, true) => q.bid,
        };
        // No more per order than risk per trade allows; the rest follows on later ticks.
        let mut qty = self.tradable(diff.abs().min(self.risk.max_trade_qty(px)));
        if side == Side::Sell
            && let Some(room) = self.room_above_flat(i, None)
        {
            qty = qty.min(room);
        }
        if qty.is_zero() {
            return 0;
        }
        let intent = Intent { symbol: i, side, qty, px, reduce_only: false, limit: self.limit_orders };
        let contributors = self.orch.active_mask();
        self.submit(intent, mid, contributors, recv_raw, t_strat, ts_ns)
    }

    /// Market making's two-sided quotes for symbol `i` ([`crate::strategy::MarketMaker::quotes`])
    /// as resting GTC limit orders, each marked as market making's (its fills' PnL is
    /// attributed to it) and each through the risk manager like any order. A side that must not
    /// be quoted — market making inactive, trading halted, the kill switch tripped, no market to
    /// price it, a size of 0 at the inventory limit — or whose resting order is larger than its
    /// quote now is cancelled at once; a quote that moved is cancelled, and placed anew once the
    /// cancel is final, at most once per `requote_ms` per side (also the wait after a refusal).
    /// With `risk.allow_short = false` the ask never rests beyond the position less the other
    /// open sells; in live mode neither side rests beyond what the account's free balances fund
    /// ([`Self::fundable`]), so a spot account without the base asset quotes no ask instead of
    /// having one refused on every requote. Returns orders sent.
    fn make_markets(&mut self, i: usize, recv_raw: u64, t_prev: u64, ts_ns: u64) -> u32 {
        let quoting = self.orch.slots[StrategyKind::MarketMaking.index()].active
            && !self.risk.halted
            && self.risk.kill_switch().is_none()
            && self.market_ok(i, ts_ns);
        let want = if quoting { self.orch.quotes(i) } else { None };
        let mut sent = 0;
        for (k, side) in [(0, Side::Buy), (1, Side::Sell)] {
            let (px, mut qty) = match want {
                Some(w) if side == Side::Buy => (w.bid_px, w.bid_qty),
                Some(w) => (w.ask_px, w.ask_qty),
                None => (Px::ZERO, Qty::ZERO),
            };
            let slot = self.mm_quotes[i][k];
            let resting = slot.id.and_then(|id| self.orders.get_open(id).copied());
            if side == Side::Sell
                && let Some(room) = self.room_above_flat(i, resting.map(|o| o.id))
            {
                qty = qty.min(room);
            }
            qty = qty.min(self.fundable(i, side, px, resting.as_ref()));
            let due = ts_ns.saturating_sub(slot.at_ns) >= self.requote_ns;
            if let Some(o) = resting {
                // More resting than the quote's size (the inventory limit came nearer, or the
                // side is not quoted): off now; a quote that moved: replaced when due.
                let over = o.remaining() > qty;
                let moved = px != slot.px || o.remaining() < qty;
                if !o.cancel_requested && (over || (moved && due)) {
                    self.cancel_order(&o, ts_ns);
                }
                continue;
            }
            // Filled, cancelled, expired or refused by the venue: the side is free.
            self.mm_quotes[i][k].id = None;
            if qty.is_zero() || !due {
                continue;
            }
            self.mm_quotes[i][k].at_ns = ts_ns;
            let intent = Intent { symbol: i, side, qty, px, reduce_only: false, limit: true };
            if self.submit(intent, self.quotes[i].mid(), MM, recv_raw, t_prev, ts_ns) == 1 {
                self.mm_quotes[i][k] = MmQuote { id: Some(OrderId(self.next_order_id - 1)), px, at_ns: ts_ns };
                sent += 1;
            }
        }
        sent
    }

    /// In live mode, the most a quote of symbol `i` on `side` at `px` can rest for with what the
    /// venue says the account holds free — a spot account sells only the base asset it holds
    /// and buys only with the quote asset it holds — counting back what `resting` (the side's
    /// own order, whose funds the venue holds locked) uses; to the lot. Unlimited otherwise.
    fn fundable(&self, i: usize, side: Side, px: Px, resting: Option<&Order>) -> Qty {
        let own = resting.map_or(Qty::ZERO, Order::remaining);
        match (side, self.balance_limits(i)) {
            (Side::Sell, (Some(held), _)) => self.tradable(Qty(held.raw().saturating_add(own.raw()))),
            (Side::Buy, (_, Some(cash))) if px.raw() > 0 => {
                let locked = resting.map_or(Amount::ZERO, |o| Amount::notional(o.px, own));
                // Amount (1e-16) / Px (1e-8) = Qty (1e-8).
                let qty = (cash + locked).raw().max(0) / i128::from(px.raw());
                self.tradable(Qty(i64::try_from(qty).unwrap_or(i64::MAX)))
            }
            _ => Qty(i64::MAX),
        }
    }

    /// Risk check, then order and paper fill. Returns 1 if an order was sent.
    fn submit(
        &mut self,
        intent: Intent,
        decision_px: Px,
        contributors: u8,
        recv_raw: u64,
        t_prev: u64,
        ts_ns: u64,
    ) -> u32 {
        let i = intent.symbol;
        let (sellable, spendable) = self.balance_limits(i);
        let view = RiskView {
            positions: &self.positions,
            marks: &self.marks,
            mid: self.quotes[i].mid(),
            open_orders: self.orders.open_count() as u32,
            backpressure: self.sink.blocked(),
            market_ok: self.market_ok(i, ts_ns),
            sellable,
            spendable,
        };
        let verdict = self.risk.check(&intent, &view, ts_ns);
        let t_risk = self.stamp();
        self.record(Stage::Risk, t_prev, t_risk);
        if let Err(reason) = verdict {
            self.refuse(&intent, reason, ts_ns);
            return 0;
        }
        let id = OrderId(self.next_order_id);
        self.next_order_id += 1;
        let (kind, tif) =
            if intent.limit { (OrderKind::Limit, TimeInForce::Gtc) } else { (OrderKind::Market, TimeInForce::Ioc) };
        let mut order = OrderEvent {
            id,
            symbol: SymbolId(i as u16),
            side: intent.side,
            kind,
            tif,
            px: intent.px,
            qty: intent.qty,
            decision_px,
            frame_ts_ns: ts_ns,
            ts_ns,
            tick_to_order_ns: 0,
            strategies: contributors,
            reduce_only: intent.reduce_only,
        };
        // The order's client id carries the update id of the quote behind it, so a venue can
        // trace it to the frame that caused it (wire-to-wire latency).
        let trace = self.quotes[i].update_id;
        // Market making's orders are its own: all of their PnL is its, whatever its weight in
        // the aggregate (0 quotes without taking part in the target).
        let shares = if contributors == MM {
            let mut one = [0; StrategyKind::COUNT];
            one[StrategyKind::MarketMaking.index()] = SHARE_SCALE;
            one
        } else {
            self.orch.shares(contributors)
        };
        if let Err(e) = self.orders.insert(&order, trace, shares) {
            // Only a full table can refuse a well-formed order; the open-order limit is far
            // below its capacity, so this is a bound, not a path.
            debug_assert_eq!(e, OrderError::Full);
            self.risk.rejects[RejectReason::MaxOpenOrders.index()] += 1;
            self.refuse(&intent, RejectReason::MaxOpenOrders, ts_ns);
            return 0;
        }
        let t_enc = self.stamp();
        self.record(Stage::OrderEncode, t_risk, t_enc);
        let t2o = self.clock.delta_ns(recv_raw, t_enc);
        order.tick_to_order_ns = t2o.min(u32::MAX as u64) as u32;
        order.ts_ns = ts_ns + t2o;
        self.sink.emit(Event::Order(order), ts_ns);
        if self.timed {
            self.lat.record(Stage::TickToOrder, t2o);
        }
        self.counters.orders += 1;
        self.orch.count_order(contributors);
        let sent = match self.live.as_deref_mut() {
            Some(gw) => self.orders.get_open(id).map(|o| o.client_id).is_some_and(|client_id| {
                let o = NewOrder {
                    symbol: order.symbol,
                    side: order.side,
                    kind: order.kind,
                    tif: order.tif,
                    qty: order.qty,
                    px: order.px,
                    client_id,
                };
                gw.place(&o, ts_ns).is_ok()
            }),
            None => self.venue.submit(&order, ts_ns).is_ok(),
        };
        if !sent {
            // The venue link is full, throttled or down: the order never left. Closed as
            // rejected, reported.
            self.counters.send_failures += 1;
            if let Ok(o) = self.orders.close(id, OrderStatus::Rejected, 0, ts_ns) {
                self.sink.emit(Event::OrderUpdate(o.update()), ts_ns);
            }
        }
        1
    }

    /// Takes over the state of a previous run, before the first frame: positions (their realized
    /// PnL counts as unattributed: no strategy of this run earned it) and last marks, the
    /// breakers and the kill-switch latch, the next order id, and the day's order send times
    /// (the order-rate limits). Nothing changes on an error.
    pub fn restore(&mut self, r: &Restore) -> Result<(), RestoreError> {
        r.validate(self.positions.len())?;
        for p in &r.positions {
            let i = p.symbol.index();
            self.unattributed_realized += p.position.realized_net() - self.positions[i].realized_net();
            self.positions[i] = p.position;
            self.marks[i] = p.mark;
        }
        self.risk.restore(&self.positions, &self.marks, r.breaker, &r.orders_sent);
        self.next_order_id = self.next_order_id.max(r.next_order_id);
        Ok(())
    }

    /// Live mode: puts the gateway in place (orders go to it, not to the fill model).
    pub fn set_live(&mut self, gw: LiveGateway) {
        self.live = Some(Box::new(gw));
        self.live_ready = false;
    }

    /// Live mode: polls the gateway at unix time `ts_ns` and applies what it reports. Returns
    /// the number of events handled.
    pub fn poll_live(&mut self, ts_ns: u64) -> usize {
        let Some(gw) = self.live.as_deref_mut() else { return 0 };
        gw.poll(ts_ns);
        let mut n = 0;
        while let Some(ev) = self.live.as_deref_mut().and_then(LiveGateway::take_event) {
            self.on_gateway(ev, ts_ns);
            n += 1;
        }
        n
    }

    /// The engine's order behind a live client id, if it is one of ours.
    fn order_of(client_id: &ClientId) -> Option<OrderId> {
        parse_client_id(client_id.as_bytes()).map(|(id, _)| id)
    }

    fn on_gateway(&mut self, ev: GatewayEvent, ts_ns: u64) {
        match ev {
            GatewayEvent::Ready => {
                self.live_ready = true;
                self.counters.venue_ready += 1;
                self.reconcile(ts_ns);
            }
            GatewayEvent::Disconnected(_) => {
                self.live_ready = false;
                self.counters.venue_down += 1;
            }
            GatewayEvent::Ack { client_id, .. } => {
                let Some(id) = Self::order_of(&client_id) else { return };
                // The execution report `NEW` may have acknowledged it first.
                if self.orders.get_open(id).is_some_and(|o| o.status == OrderStatus::PendingNew)
                    && let Ok(o) = self.orders.ack(id, ts_ns)
                {
                    self.sink.emit(Event::OrderUpdate(o.update()), ts_ns);
                }
            }
            // A refused place, or a refused `order.status` of an order the venue never listed
            // (it does not know it), closes a pending order as rejected; a refused cancel (e.g.
            // the order had already filled) leaves it to its execution reports.
            // The gateway reports a refused `order.status` only for "order does not exist"
            // (-2013): an acknowledged order the venue neither lists nor knows cannot trade any
            // more. Kept open, it would count against the open-order limit and in the
            // strategies' pending quantity for ever: it is closed as expired (what it booked
            // stays booked) and counted.
            GatewayEvent::Rejected {
                request: request @ (RequestKind::Place | RequestKind::Query),
                client_id,
                code,
                ..
            } => {
                let Some(id) = Self::order_of(&client_id) else { return };
                let Some(open) = self.orders.get_open(id).map(|o| o.status) else { return };
                let status = match (open, request) {
                    (OrderStatus::PendingNew, _) => OrderStatus::Rejected,
                    (_, RequestKind::Query) => OrderStatus::Expired,
                    _ => return,
                };
                if let Ok(o) = self.orders.close(id, status, code, ts_ns) {
                    if status == OrderStatus::Expired {
                        self.counters.unknown_to_venue += 1;
                    }
                    self.sink.emit(Event::OrderUpdate(o.update()), ts_ns);
                }
            }
            // The answer to `order.cancel` does not close the order: trades of it may still be
            // on their way on the user-data stream, which reports them before its `CANCELED`
            // execution report, and that report closes it (after a lost connection,
            // reconciliation does). Closing here lost those fills.
            GatewayEvent::Canceled { .. } => self.counters.cancels_acked += 1,
            GatewayEvent::Execution { symbol, report } => self.on_execution(symbol, &report, ts_ns),
            GatewayEvent::OrderState { order, .. } => {
                // The answer to a reconciliation query: an order we hold open that the venue has
                // finished. Fills missed while disconnected are booked at the price the totals
                // imply for the part we missed ([`Self::book_missed`]).
                let Some(id) = Self::order_of(&order.client_id) else { return };
                let (Some(status), Some(_)) = (order.status, self.orders.get_open(id)) else { return };
                if !status.is_final() {
                    return;
                }
                self.book_missed(id, order.executed, order.quote_executed, false, ts_ns);
                if let Some(o) = self.orders.get_open(id).copied()
                    && !o.status.is_final()
                    && let Ok(o) = self.orders.close(
                        id,
                        if status == OrderStatus::Filled { OrderStatus::Canceled } else { status },
                        0,
                        ts_ns,
                    )
                {
                    self.sink.emit(Event::OrderUpdate(o.update()), ts_ns);
                }
            }
            _ => {}
        }
    }

    /// After (re)connecting: every order we hold open that the venue does not list is asked
    /// about (`order.status`); its answer closes it and books any fill we missed. An order the
    /// venue lists as executed further than we booked had fills while we were disconnected
    /// (their reports went to the old connection): the difference is booked now
    /// ([`Self::book_missed`]).
    fn reconcile(&mut self, ts_ns: u64) {
        // Backwards: booking a missed fill may complete an order, which moves the last open
        // order into its place (already visited).
        for k in (0..self.orders.open_count()).rev() {
            let o = self.orders.open_orders()[k];
            let Some(gw) = self.live.as_deref_mut() else { return };
            let listed = gw.open_orders(o.symbol).iter().find(|v| v.client_id == o.client_id).copied();
            match listed {
                // A listed order rests on the venue: its fills were most likely made as maker.
                Some(v) => self.book_missed(o.id, v.executed, v.quote_executed, true, ts_ns),
                None => {
                    let _ = gw.query(o.symbol, &o.client_id, ts_ns);
                }
            }
        }
    }

    /// Books what the venue reports executed of open order `id` beyond what we booked:
    /// `executed` is the order's cumulative quantity, `quote_executed` its cumulative quote (as
    /// a listing or an execution report's `z`/`Z` give them). Both carry cumulative totals, so
    /// the booked quantity is the largest total seen, whatever order they arrive in (a listing
    /// may be older than a report processed before it); a total at or below it books nothing.
    /// The difference is one fill at the price the totals imply, `(quote_executed − booked
    /// quote) / missed`, to the nearest 1e-8 (the venue's quote total is itself rounded to
    /// 1e-8, so the price is exact to `1e-8 / missed`); when they imply no usable price (a
    /// missing quote total), at the order's own price. No fee: the totals carry none.
    fn book_missed(&mut self, id: OrderId, executed: Qty, quote_executed: Amount, maker: bool, ts_ns: u64) {
        let Some(o) = self.orders.get_open(id).copied() else { return };
        let missed = executed.raw() - o.filled.raw();
        if missed <= 0 {
            return;
        }
        // Amount (1e-16) / Qty (1e-8) = Px (1e-8).
        let (num, den) = (quote_executed.raw() - o.cum_quote.raw(), i128::from(missed));
        let px = match i64::try_from((num + den / 2) / den) {
            Ok(px) if num > 0 && px > 0 => Px(px),
            _ => o.px,
        };
        // A total past the order's quantity is not ours to book beyond it.
        let qty = missed.min(o.qty.raw() - o.filled.raw());
        self.live_fill(id, o.symbol, o.side, px, Qty(qty), (Amount::ZERO, Qty::ZERO), maker, ts_ns);
    }

    /// A trade's commission as (fee in the quote asset, the part of it taken in the base asset).
    /// Binance takes it in the asset the trade pays out — a buy's in the base asset, a sell's in
    /// the quote asset — or in BNB when the account pays fees in BNB ([`leg_of`] tells which); a
    /// commission in any other asset has no price here: booked as no fee, and counted.
    fn commission(&mut self, symbol: SymbolId, r: &ExecutionReport) -> (Amount, Qty) {
        let (c, asset) = (r.commission, r.commission_asset.as_bytes());
        if c.raw() <= 0 || asset.is_empty() {
            return (Amount::ZERO, Qty::ZERO);
        }
        let name = self.names.get(symbol.index()).map_or(&[][..], |n| &n[..]);
        match leg_of(name, asset) {
            Some(Leg::Base) => (Amount::notional(r.last_px, c), c),
            // 1e-8 quote units.
            Some(Leg::Quote) => (Amount::from_fixed8(c.raw()), Qty::ZERO),
            None => {
                self.counters.unpriced_fees += 1;
                (Amount::ZERO, Qty::ZERO)
            }
        }
    }

    /// A user-data execution report of one of our orders.
    fn on_execution(&mut self, symbol: SymbolId, r: &ExecutionReport, ts_ns: u64) {
        let Some(id) = Self::order_of(&r.client_id) else {
            self.counters.foreign_reports += 1;
            return;
        };
        if self.orders.get_open(id).is_none() {
            return;
        }
        match r.exec {
            ExecType::New => {
                if self.orders.get_open(id).is_some_and(|o| o.status == OrderStatus::PendingNew)
                    && let Ok(o) = self.orders.ack(id, ts_ns)
                {
                    self.sink.emit(Event::OrderUpdate(o.update()), ts_ns);
                }
            }
            ExecType::Trade => {
                let fee = self.commission(symbol, r);
                // The report's cumulative totals (`z`, `Z`) count what was booked already:
                // fills before this trade whose reports were lost (they went to a dropped
                // connection) and that nothing booked yet are booked first; then this trade,
                // unless a listing at reconciliation booked it already (its report arriving
                // later on the new connection), so that no fill is lost or booked twice.
                let before = Qty(r.cum_qty.raw() - r.last_qty.raw());
                let quote_before = Amount(r.cum_quote.raw() - Amount::notional(r.last_px, r.last_qty).raw());
                self.book_missed(id, before, quote_before, r.maker, ts_ns);
                let filled = self.orders.get_open(id).map_or(r.cum_qty.raw(), |o| o.filled.raw());
                let qty = r.last_qty.raw().min(r.cum_qty.raw() - filled);
                if qty > 0 {
                    self.live_fill(id, symbol, r.side, r.last_px, Qty(qty), fee, r.maker, ts_ns);
                }
            }
            _ if r.status.is_final() => {
                if let Ok(o) = self.orders.close(id, r.status, 0, ts_ns) {
                    self.sink.emit(Event::OrderUpdate(o.update()), ts_ns);
                }
            }
            _ => {}
        }
    }

    /// Books a live fill of order `id`: the order table, the position, attribution, breakers.
    /// `fee`: (in the quote asset, the part of it taken in the base asset; see
    /// [`Self::commission`]).
    #[allow(clippy::too_many_arguments)]
    fn live_fill(
        &mut self,
        id: OrderId,
        symbol: SymbolId,
        side: Side,
        px: Px,
        qty: Qty,
        fee: (Amount, Qty),
        maker: bool,
        ts_ns: u64,
    ) {
        let (fee, base_fee) = fee;
        let Ok(o) = self.orders.fill(id, px, qty, fee, ts_ns) else { return };
        self.sink.emit(Event::OrderUpdate(o.update()), ts_ns);
        let liquidity = if maker { Liquidity::Maker } else { Liquidity::Taker };
        self.book_fill(
            symbol,
            side,
            id,
            o.shares,
            px,
            qty,
            (fee, base_fee),
            liquidity,
            o.status == OrderStatus::Filled,
            ts_ns,
            ts_ns,
        );
    }

    /// With `risk.allow_short = false`, the most a sell of symbol `i` may carry: the position
    /// less what every other open sell (all but `except`) may still sell — a resting quote can
    /// fill after a later sell — to the lot; `None` when shorts are allowed.
    fn room_above_flat(&self, i: usize, except: Option<OrderId>) -> Option<Qty> {
        if self.risk.allow_short() {
            return None;
        }
        let selling: i64 = self
            .orders
            .open_orders()
            .iter()
            .filter(|o| o.symbol.index() == i && o.side == Side::Sell && Some(o.id) != except)
            .map(|o| o.remaining().raw())
            .sum();
        Some(self.tradable(Qty((self.positions[i].qty.raw() - selling).max(0))))
    }

    /// Signed quantity the open orders of symbol `i` would still add to its position, market
    /// making's resting quotes aside: they wait for the market to come to them, and the target
    /// is reached without counting on them.
    #[inline(always)]
    fn pending(&self, i: usize) -> i64 {
        let [bid, ask] = self.mm_quotes[i];
        self.orders
            .open_orders()
            .iter()
            .filter(|o| o.symbol.index() == i && bid.id != Some(o.id) && ask.id != Some(o.id))
            .map(|o| o.side.sign() * o.remaining().raw())
            .sum()
    }

    /// Takes the venue's reports due by `ts_ns` and applies each: order states, fills,
    /// positions, attributed PnL, breakers.
    fn poll_venue(&mut self, ts_ns: u64) {
        // Nothing due (no arrival, no answer): the common case, one comparison.
        if self.venue.next_event_ns().is_none_or(|t| t > ts_ns) {
            return;
        }
        let mut reports = std::mem::take(&mut self.reports);
        reports.clear();
        // Capacity is every report the venue can hold: nothing is dropped here.
        self.venue.poll(ts_ns, &self.books, |r| {
            if reports.len() < reports.capacity() {
                reports.push(*r);
            }
        });
        for r in &reports {
            self.on_report(r, ts_ns);
        }
        self.reports = reports;
    }

    fn on_report(&mut self, r: &Report, ts_ns: u64) {
        let Ok(Some(o)) = r.apply(&mut self.orders) else {
            // A refused cancel, or a report the table refused (counted in its stats).
            return;
        };
        self.sink.emit(Event::OrderUpdate(o.update()), ts_ns);
        let ReportKind::Fill(f) = r.kind else { return };
        self.book_fill(
            r.symbol,
            r.side,
            r.id,
            o.shares,
            f.px,
            f.qty,
            (f.fee, Qty::ZERO),
            f.liquidity,
            f.last,
            r.ts_ns,
            ts_ns,
        );
    }

    /// A fill of order `id` reaches the position: fill event, attributed PnL, breakers.
    #[allow(clippy::too_many_arguments)]
    fn book_fill(
        &mut self,
        symbol: SymbolId,
        side: Side,
        id: OrderId,
        shares: [u32; StrategyKind::COUNT],
        px: Px,
        qty: Qty,
        (fee, base_fee): (Amount, Qty),
        liquidity: Liquidity,
        last: bool,
        fill_ts_ns: u64,
        ts_ns: u64,
    ) {
        let i = symbol.index();
        let realized_before = self.positions[i].realized_net();
        let pos = &mut self.positions[i];
        pos.on_fill(side, px, moved_qty(side, qty, base_fee), fee);
        self.counters.fills += 1;
        let fill = FillEvent {
            order: id,
            symbol,
            side,
            liquidity,
            last,
            px,
            qty,
            fee,
            base_fee,
            position: pos.qty,
            realized: pos.realized_net(),
            ts_ns: fill_ts_ns,
        };
        self.sink.emit(Event::Fill(fill), ts_ns);
        // The PnL this fill realized (net of its fee) goes to the strategies behind the order,
        // by their weights when it was sent; an operator's flatten has none.
        let delta = self.positions[i].realized_net() - realized_before;
        self.unattributed_realized += self.orch.attribute(shares, delta);
        // Fees and realized PnL move equity: the breakers see every fill.
        let u = self.risk.mark(i, &self.positions[i], self.marks[i], ts_ns);
        if u != BreakerUpdate::default() {
            self.on_breaker(u, ts_ns);
        }
    }

    /// Cancels symbol `i`'s resting limit orders older than `exec.limit_ttl_ms`.
    fn expire_limits(&mut self, i: usize, ts_ns: u64) {
        for k in 0..self.orders.open_count() {
            let o = self.orders.open_orders()[k];
            if o.symbol.index() != i
                || o.kind != OrderKind::Limit
                || o.cancel_requested
                || ts_ns.saturating_sub(o.sent_ns) < self.limit_ttl_ns
            {
                continue;
            }
            self.cancel_order(&o, ts_ns);
        }
    }

    /// Asks the venue to cancel open order `o`; its final report closes it.
    fn cancel_order(&mut self, o: &Order, ts_ns: u64) {
        let _ = self.orders.request_cancel(o.id);
        match self.live.as_deref_mut() {
            Some(gw) => {
                let _ = gw.cancel(o.symbol, &o.client_id, ts_ns);
            }
            None => {
                let _ = self.venue.cancel(o.id, ts_ns);
            }
        }
    }

    /// Cancels every open order; whether there was any.
    fn cancel_all(&mut self, ts_ns: u64) -> bool {
        let open = self.orders.open_count();
        for k in 0..open {
            let id = self.orders.open_orders()[k].id;
            let _ = self.orders.request_cancel(id);
        }
        match self.live.as_deref_mut() {
            Some(gw) => {
                for sym in 0..self.books.len() {
                    let sym = SymbolId(sym as u16);
                    if self.orders.open_count_for(sym) > 0 {
                        let _ = gw.cancel_all(sym, ts_ns);
                    }
                }
            }
            None => {
                let _ = self.venue.cancel_all(ts_ns);
            }
        }
        open > 0
    }

    /// Reports a day rollover or a kill-switch trip; a trip flattens when `risk.kill_flatten`.
    fn on_breaker(&mut self, u: BreakerUpdate, ts_ns: u64) {
        let equity = amount_to_fixed8(self.risk.breaker().equity());
        if u.day_rollover {
            self.risk_event(RiskEventKind::DayRollover, equity, ts_ns);
        }
        if let Some(cause) = u.tripped {
            self.risk_event(RiskEventKind::KillSwitch(cause), equity, ts_ns);
            if self.kill_flatten {
                self.flatten(ts_ns);
            }
        }
    }

    fn refuse(&mut self, it: &Intent, reason: RejectReason, ts_ns: u64) {
        let th = &mut self.throttle[it.symbol][reason.index()];
        if th.emitted_once && ts_ns.saturating_sub(th.last_ns) < REJECT_EVENT_INTERVAL_NS {
            th.suppressed += 1;
            return;
        }
        let suppressed = th.suppressed;
        *th = Throttle { last_ns: ts_ns, suppressed: 0, emitted_once: true };
        self.sink.emit(
            Event::Reject(RejectEvent {
                symbol: SymbolId(it.symbol as u16),
                side: it.side,
                reason,
                qty: it.qty,
                px: it.px,
                suppressed,
                ts_ns,
            }),
            ts_ns,
        );
    }

    fn set_feed(&mut self, i: usize, state: FeedState, ts_ns: u64) {
        if self.feed[i] != state {
            self.feed[i] = state;
            self.sink.emit(Event::Feed(FeedEvent { symbol: SymbolId(i as u16), state, ts_ns }), ts_ns);
        }
    }

    fn risk_event(&mut self, kind: RiskEventKind, value: i64, ts_ns: u64) {
        self.sink.emit(Event::Risk(RiskEvent { kind, value, ts_ns }), ts_ns);
    }

    /// Applies a control command and acknowledges it with the resulting state.
    pub fn on_command(&mut self, cmd: Command, ts_ns: u64) {
        let outcome = match cmd.kind {
            CommandKind::Halt => {
                if self.risk.halted {
                    CmdOutcome::Unchanged
                } else {
                    self.risk.halted = true;
                    self.risk_event(RiskEventKind::Halted, 0, ts_ns);
                    // A halted engine leaves nothing working at the venue.
                    self.cancel_all(ts_ns);
                    CmdOutcome::Applied
                }
            }
            CommandKind::Resume => {
                if !self.risk.halted {
                    CmdOutcome::Unchanged
                } else {
                    self.risk.halted = false;
                    self.risk_event(RiskEventKind::Resumed, 0, ts_ns);
                    CmdOutcome::Applied
                }
            }
            CommandKind::Activate(k) | CommandKind::Deactivate(k) => {
                let on = matches!(cmd.kind, CommandKind::Activate(_));
                match self.orch.set_active(k, on) {
                    None => CmdOutcome::UnknownStrategy,
                    Some(false) => CmdOutcome::Unchanged,
                    Some(true) => {
                        let kind = if on {
                            RiskEventKind::StrategyActivated(k)
                        } else {
                            RiskEventKind::StrategyDeactivated(k)
                        };
                        self.risk_event(kind, 0, ts_ns);
                        CmdOutcome::Applied
                    }
                }
            }
            CommandKind::SetWeight(k, w) => {
                if !(w.is_finite() && (0.0..=10.0).contains(&w)) {
                    CmdOutcome::InvalidValue
                } else {
                    match self.orch.set_weight(k, w) {
                        None => CmdOutcome::UnknownStrategy,
                        Some(false) => CmdOutcome::Unchanged,
                        Some(true) => {
                            self.risk_event(RiskEventKind::WeightChanged(k), (w * 1e6) as i64, ts_ns);
                            CmdOutcome::Applied
                        }
                    }
                }
            }
            CommandKind::Flatten => {
                self.risk_event(RiskEventKind::FlattenRequested, 0, ts_ns);
                self.flatten(ts_ns);
                CmdOutcome::Applied
            }
            CommandKind::Snapshot => {
                self.emit_snapshots(ts_ns, true);
                CmdOutcome::Applied
            }
            CommandKind::DumpBook(sym) => {
                if sym.index() < self.books.len() {
                    self.dump_book(sym);
                    CmdOutcome::Applied
                } else {
                    CmdOutcome::InvalidValue
                }
            }
            CommandKind::ResetLatency => {
                self.lat.reset();
                CmdOutcome::Applied
            }
            CommandKind::CancelAll => {
                if self.cancel_all(ts_ns) {
                    CmdOutcome::Applied
                } else {
                    CmdOutcome::Unchanged
                }
            }
            CommandKind::Rearm => {
                if self.risk.rearm() {
                    let equity = amount_to_fixed8(self.risk.breaker().equity());
                    self.risk_event(RiskEventKind::Rearmed, equity, ts_ns);
                    CmdOutcome::Applied
                } else {
                    CmdOutcome::Unchanged
                }
            }
            CommandKind::Shutdown => CmdOutcome::Applied,
        };
        let ack = CommandAck { seq: cmd.seq, outcome, state: self.state(), ts_ns };
        self.sink.emit(Event::Ack(ack), ts_ns);
    }

    /// Emits every level of a book as `Event::Book` (telemetry: a full ring drops some, and the
    /// reader sees the gap in `index`).
    fn dump_book(&mut self, sym: SymbolId) {
        let b = &self.books[sym.index()];
        let valid = b.is_valid();
        let count = if valid { (b.bids.len() + b.asks.len()) as u32 } else { 0 };
        let update_id = b.last_update_id();
        let mk = |side, index, px, qty| {
            Event::Book(BookLevel { symbol: sym, side, valid, index, count, px, qty, update_id })
        };
        if !valid {
            self.sink.emit(mk(Side::Buy, 0, Px::ZERO, Qty::ZERO), 0);
            return;
        }
        let mut index = 0;
        for (side, ladder) in [(Side::Buy, &b.bids), (Side::Sell, &b.asks)] {
            for l in ladder.iter() {
                self.sink.emit(mk(side, index, l.px, l.qty), 0);
                index += 1;
            }
        }
    }

    /// Cancels every open order, then sends reduce-only market orders that bring every position
    /// to zero.
    fn flatten(&mut self, ts_ns: u64) {
        self.cancel_all(ts_ns);
        for i in 0..self.positions.len() {
            self.flatten_symbol(i, ts_ns);
        }
    }

    /// A reduce-only market order closing symbol `i`'s position; returns orders sent. In live
    /// mode a long is sold only as far as the venue says the account holds the base asset: a
    /// position above the account (a commission the venue took that could not be booked, funds
    /// moved out of the account) would otherwise make every flatten a refusal, for ever, and
    /// leave the whole position open; this way what the account holds is sold and the rest
    /// stays visible as the position.
    fn flatten_symbol(&mut self, i: usize, ts_ns: u64) -> u32 {
        let pos = self.positions[i].qty;
        let side = if pos.raw() > 0 { Side::Sell } else { Side::Buy };
        let q = self.quotes[i];
        let px = match side {
            Side::Buy => q.ask,
            Side::Sell => q.bid,
        };
        let mut qty = self.tradable(pos);
        if side == Side::Sell {
            qty = qty.min(self.fundable(i, side, px, None));
        }
        if qty.is_zero() {
            return 0;
        }
        let intent = Intent { symbol: i, side, qty, px, reduce_only: true, limit: false };
        let now = self.stamp();
        self.submit(intent, q.mid(), 0, now, now, ts_ns)
    }

    /// What the venue says the account holds for symbol `i` (live mode, else `None`): the free
    /// balance of its base asset (what a sell may sell) and of its quote asset (what a buy may
    /// spend), by [`leg_of`]. The account lists only the assets it holds: when it lists one of
    /// the two, the other is held at 0.
    fn balance_limits(&self, i: usize) -> (Option<Qty>, Option<Amount>) {
        let (Some(gw), Some(name)) = (self.live.as_deref(), self.names.get(i)) else { return (None, None) };
        // (asset name length, free balance) of the longest asset of each leg.
        let mut base: Option<(usize, Qty)> = None;
        let mut quote: Option<(usize, Qty)> = None;
        for b in gw.balances() {
            let a = b.asset.as_bytes();
            let slot = match leg_of(name, a) {
                Some(Leg::Base) => &mut base,
                Some(Leg::Quote) => &mut quote,
                None => continue,
            };
            if slot.is_none_or(|(len, _)| a.len() > len) {
                *slot = Some((a.len(), b.free));
            }
        }
        if base.is_none() && quote.is_none() {
            return (None, None);
        }
        let held = |x: Option<(usize, Qty)>| x.map_or(Qty::ZERO, |(_, q)| q);
        // Quote units are 1e-8 as Qty; `Amount` is exact at that scale.
        (Some(held(base)), Some(Amount::from_fixed8(held(quote).raw())))
    }

    /// The part of `qty` (either sign) an order can carry: its size rounded down to the lot. A
    /// position can hold less than a lot — a commission taken in the base asset leaves such dust
    /// (Binance's too) — and an order for it would only be refused (`lot_size`), again and again.
    #[inline]
    fn tradable(&self, qty: Qty) -> Qty {
        self.risk.round_qty(qty.abs())
    }

    /// Stats, positions, strategies, and latency (all stages when `all_latency`, else the next
    /// one round-robin).
    pub fn emit_snapshots(&mut self, ts_ns: u64, all_latency: bool) {
        let c = &self.counters;
        let stats = StatsSnapshot {
            frames: c.frames,
            decode_errors: c.decode_errors_total(),
            signals: c.signals,
            orders: c.orders,
            fills: c.fills,
            rejects: self.risk.rejects.iter().sum(),
            telemetry_dropped: self.sink.telemetry_dropped,
            audit_parked: self.sink.parked_total,
            book_gaps: c.book_gaps,
            unpriced_fees: c.unpriced_fees,
            ts_ns,
        };
        self.sink.emit(Event::Stats(stats), ts_ns);
        for i in 0..self.positions.len() {
            let p = self.positions[i];
            let mark = if self.marks[i].raw() > 0 { self.marks[i] } else { self.books[i].mid().unwrap_or(Px::ZERO) };
            let unrealized = if mark.raw() > 0 { p.unrealized(mark) } else { Amount::ZERO };
            self.sink.emit(
                Event::Position(PositionSnapshot {
                    symbol: SymbolId(i as u16),
                    qty: p.qty,
                    avg_px: p.avg_px(),
                    mark,
                    realized: p.realized_net(),
                    unrealized,
                    fees: p.fees,
                    ts_ns,
                }),
                ts_ns,
            );
        }
        for k in StrategyKind::ALL {
            let s = self.orch.slots[k.index()];
            if s.configured {
                self.sink.emit(
                    Event::Strategy(StrategySnapshot {
                        kind: k,
                        active: s.active,
                        weight: s.weight,
                        signal: s.last_signal,
                        signals: s.signals,
                        orders: s.orders,
                        realized: s.realized,
                        ts_ns,
                    }),
                    ts_ns,
                );
            }
        }
        let b = self.risk.breaker();
        let (orders_10s, orders_today) = self.risk.order_usage(ts_ns);
        let risk = RiskSnapshot {
            equity: b.equity(),
            peak: b.peak(),
            day_start: b.day_start(),
            orders_10s,
            orders_today,
            kill_switch: b.tripped(),
            ts_ns,
        };
        self.sink.emit(Event::RiskState(risk), ts_ns);
        if all_latency {
            for stage in Stage::ALL {
                let pct = self.lat.percentiles(stage);
                self.sink.emit(Event::Latency(LatencySnapshot { stage, pct, ts_ns }), ts_ns);
            }
        } else {
            let stage = self.lat.next_stage();
            let pct = self.lat.percentiles(stage);
            self.sink.emit(Event::Latency(LatencySnapshot { stage, pct, ts_ns }), ts_ns);
        }
    }

    pub fn emit_heartbeat(&mut self, seq: u64, ts_ns: u64) {
        let state = self.state();
        self.sink.emit(Event::Heartbeat(Heartbeat { ts_ns, seq, state }), ts_ns);
    }

    /// Is the book of `symbol` in sync?
    pub fn book_state(&self, symbol: SymbolId) -> SyncState {
        self.books[symbol.index()].state()
    }
}

/// Live mode's order gateway, after the checks that guard real money: the explicit
/// confirmation in config and both keys in the environment.
fn live_gateway(cfg: &Config) -> Result<LiveGateway, EngineError> {
    if cfg.live.confirm != LIVE_CONFIRMATION {
        return Err(EngineError::Setup(format!(
            "live mode trades real money: set live.confirm = \"{LIVE_CONFIRMATION}\" in the config to start it"
        )));
    }
    let (Some(key), Some(secret)) = (&cfg.secrets.api_key, &cfg.secrets.api_secret) else {
        return Err(EngineError::Setup(
            "live mode needs EXCHANGE_API_KEY and EXCHANGE_API_SECRET in the environment".into(),
        ));
    };
    LiveGateway::new(LiveParams::from_config(cfg), key, secret)
        .map_err(|e| EngineError::Setup(format!("live gateway ({}): {e}", cfg.live.api_url)))
}

/// The duty-cycle owner: a pipeline, its frame source and the command ring.
pub struct Engine {
    pipeline: Pipeline,
    source: Source,
    /// Capture of every received frame (`feed.record`), written off the hot thread.
    recorder: Option<Recorder>,
    cmds: rtrb::Consumer<Command>,
    start_raw: u64,
    heartbeat_ns: u64,
    snapshot_ns: u64,
    next_heartbeat_ns: u64,
    next_snapshot_ns: u64,
    heartbeat_seq: u64,
    /// Set by `Shutdown`: monotonic deadline for flushing parked events.
    stopping_until: Option<u64>,
    stopped: bool,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("pipeline", &self.pipeline)
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Builds an engine for `cfg.mode`: paper trades the built-in market (synthetic or capture
    /// files); shadow trades the live WebSocket feed with simulated fills.
    pub fn new(
        cfg: &Config,
        cmds: rtrb::Consumer<Command>,
        events: rtrb::Producer<Event>,
    ) -> Result<Self, EngineError> {
        let setup = |e: &dyn std::fmt::Display| EngineError::Setup(e.to_string());
        let source = match cfg.mode {
            Mode::Paper => Source::paper(cfg).map_err(|e| setup(&e))?,
            Mode::Shadow | Mode::Live => {
                Source::Ws(Box::new(WsFeed::new(WsParams::from_config(cfg)).map_err(|e| setup(&e))?))
            }
            other => return Err(EngineError::ModeUnavailable(other)),
        };
        let gateway = if cfg.mode == Mode::Live { Some(live_gateway(cfg)?) } else { None };
        let mut engine = Self::with_source(cfg, source, cmds, events);
        if let Some(gw) = gateway {
            engine.pipeline.set_live(gw);
        }
        if !cfg.feed.record.is_empty() {
            let path = std::path::Path::new(&cfg.feed.record);
            let rec = Recorder::create(path).map_err(|e| {
                EngineError::Setup(format!("cannot create capture file {} (feed.record): {e}", path.display()))
            })?;
            engine.recorder = Some(rec);
        }
        Ok(engine)
    }

    pub fn with_source(
        cfg: &Config,
        source: Source,
        cmds: rtrb::Consumer<Command>,
        events: rtrb::Producer<Event>,
    ) -> Self {
        let pipeline = Pipeline::new(cfg, events);
        let start_raw = pipeline.clock.raw();
        Self {
            pipeline,
            source,
            recorder: None,
            cmds,
            start_raw,
            heartbeat_ns: cfg.engine.heartbeat_ms * 1_000_000,
            snapshot_ns: cfg.engine.snapshot_ms * 1_000_000,
            next_heartbeat_ns: 0,
            next_snapshot_ns: 0,
            heartbeat_seq: 0,
            stopping_until: None,
            stopped: false,
        }
    }

    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// Applies the state of a previous run (see [`Pipeline::restore`]); call before the first
    /// [`Engine::poll`]. The first poll reports the restored positions and risk state.
    pub fn restore(&mut self, r: &Restore) -> Result<(), EngineError> {
        self.pipeline.restore(r).map_err(|e| EngineError::Setup(format!("cannot restore the stored state: {e}")))
    }

    /// Has the engine finished shutting down?
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Maps connection news onto books and feed state. Every (re)connect of the market stream
    /// voids every book and asks for fresh snapshots; diffs are buffered until they arrive.
    fn on_notice(&mut self, notice: FeedNotice, ts: u64) {
        match notice {
            FeedNotice::Connected { link: LinkKind::Stream } => {
                self.pipeline.feed_connected(ts);
                for i in 0..self.pipeline.symbols.len() {
                    self.source.request_snapshot(SymbolId(i as u16));
                }
            }
            FeedNotice::Disconnected { link: LinkKind::Stream, .. } => self.pipeline.feed_down(ts),
            FeedNotice::Stale => self.pipeline.feed_stale(true, ts),
            FeedNotice::Fresh => self.pipeline.feed_stale(false, ts),
            _ => {}
        }
        self.pipeline.counters.feed_notices += 1;
    }

    /// One duty-cycle pass over every source. Returns the amount of work done (0 = idle).
    pub fn poll(&mut self) -> usize {
        let clock = &self.pipeline.clock;
        let now_raw = clock.raw();
        let now_ns = clock.delta_ns(self.start_raw, now_raw);
        let ts = clock.unix_ns_of(now_raw);
        let mut work = self.pipeline.sink.flush(ts);

        for _ in 0..COMMAND_BATCH {
            let Ok(cmd) = self.cmds.pop() else { break };
            work += 1;
            if cmd.kind == CommandKind::Shutdown && self.stopping_until.is_none() {
                self.stopping_until = Some(now_ns + SHUTDOWN_FLUSH_NS);
            }
            self.pipeline.on_command(cmd, ts);
        }

        if let Some(deadline) = self.stopping_until {
            let flushed = self.pipeline.sink.flush(ts);
            if self.pipeline.sink.parked() == 0 || now_ns >= deadline {
                // Final snapshots are telemetry: best effort.
                self.pipeline.emit_snapshots(ts, true);
                self.stopped = true;
                // Shutdown only: waits for the writer to flush the capture.
                if let Some(rec) = self.recorder.take() {
                    let _ = rec.finish();
                }
            }
            return work + flushed;
        }

        for _ in 0..FRAME_BATCH {
            let Some((kind, bytes)) = self.source.poll(now_ns) else { break };
            let recv_raw = self.pipeline.clock.raw();
            let ts_ns = self.pipeline.clock.unix_ns_of(recv_raw);
            if let Some(rec) = &mut self.recorder {
                rec.record(ts_ns, kind, bytes);
            }
            let out = self.pipeline.on_frame(kind, bytes, recv_raw, ts_ns);
            if let Some(sym) = out.resync {
                self.source.request_snapshot(sym);
            }
            work += 1;
        }

        while let Some(notice) = self.source.take_notice() {
            work += 1;
            self.on_notice(notice, ts);
        }
        work += self.pipeline.poll_live(ts);

        if now_ns >= self.next_heartbeat_ns {
            self.heartbeat_seq += 1;
            self.pipeline.emit_heartbeat(self.heartbeat_seq, ts);
            self.next_heartbeat_ns = now_ns + self.heartbeat_ns;
        }
        if now_ns >= self.next_snapshot_ns {
            self.pipeline.emit_snapshots(ts, false);
            self.next_snapshot_ns = now_ns + self.snapshot_ns;
        }
        work
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::live::Sym;
    use hft_shared::msg::OrderStatus;

    proptest::proptest! {
        #[test]
        fn find_symbol_is_the_position_of_the_equal_name(
            names in proptest::collection::vec(proptest::collection::vec(0u8..3, 0..20), 1..5),
            name in proptest::collection::vec(0u8..3, 0..20),
        ) {
            let keys: Vec<SymbolKey> = names.iter().map(|n| SymbolKey::new(n)).collect();
            proptest::prop_assert_eq!(find_symbol(&keys, &name), names.iter().position(|n| *n == name));
            for (i, n) in names.iter().enumerate() {
                proptest::prop_assert_eq!(find_symbol(&keys, n), names.iter().position(|m| m == n));
                proptest::prop_assert!(find_symbol(&keys, n).is_some_and(|j| j <= i));
            }
        }
    }

    #[test]
    fn find_symbol_on_names() {
        let names = ["BTCUSDT", "1000SATSUSDT", "ABCDEFGHIJKLMNOPQR", "BNB", "", "ETHUSDT"];
        let keys: Vec<SymbolKey> = names.iter().map(|n| SymbolKey::new(n.as_bytes())).collect();
        for (i, n) in names.iter().enumerate() {
            assert_eq!(find_symbol(&keys, n.as_bytes()), Some(i), "{n}");
        }
        for other in ["BTCUSDC", "BTCUSD", "1000SATSUSDC", "ABCDEFGHIJKLMNOPQX", "BNC", "BN", "ETHUSD", "BTCUSDTX"] {
            assert_eq!(find_symbol(&keys, other.as_bytes()), None, "{other}");
        }
    }

    fn pipeline() -> (Pipeline, rtrb::Consumer<Event>) {
        let cfg = Config::from_toml_str("", &|_| None).expect("config");
        let (tx, rx) = rtrb::RingBuffer::new(4096);
        (Pipeline::new(&cfg, tx), rx)
    }

    /// A buy of 0.002 BTC at 60 000.
    fn order_event(id: OrderId) -> OrderEvent {
        OrderEvent {
            id,
            symbol: SymbolId(0),
            side: Side::Buy,
            kind: OrderKind::Limit,
            tif: TimeInForce::Gtc,
            px: Px::parse("60000").expect("px"),
            qty: Qty::parse("0.002").expect("qty"),
            decision_px: Px::parse("60000").expect("px"),
            frame_ts_ns: 1,
            ts_ns: 1,
            tick_to_order_ns: 0,
            strategies: 1,
            reduce_only: false,
        }
    }

    /// A sent live order, acknowledged by the venue.
    fn open_order(p: &mut Pipeline) -> (OrderId, ClientId) {
        let ev = order_event(OrderId(7));
        let cid = p.orders.insert(&ev, 0, [0; StrategyKind::COUNT]).expect("insert");
        p.on_gateway(GatewayEvent::Ack { symbol: SymbolId(0), client_id: cid, order_id: 1 }, 2);
        (ev.id, cid)
    }

    fn report(cid: ClientId, exec: ExecType, status: OrderStatus, last: &str) -> ExecutionReport {
        let q = |s: &str| Qty::parse(s).expect("qty");
        ExecutionReport {
            symbol: Sym::new(b"BTCUSDT").expect("sym"),
            client_id: cid,
            order_id: 1,
            side: Side::Buy,
            kind: Some(OrderKind::Limit),
            tif: Some(TimeInForce::Gtc),
            exec,
            status,
            reject_reason: Sym::new(b"NONE").expect("sym"),
            qty: q("0.002"),
            px: Px::parse("60000").expect("px"),
            last_qty: q(last),
            last_px: Px::parse("60000").expect("px"),
            cum_qty: q(last),
            cum_quote: Amount::ZERO,
            commission: Qty::ZERO,
            commission_asset: Sym::new(b"USDT").expect("sym"),
            trade_id: None,
            maker: true,
            event_time_ms: 1,
            trade_time_ms: 1,
        }
    }

    /// Binance takes a buy's commission in the base asset: the account receives the quantity
    /// less it, and the engine's position must match (else a flatten sells more than is there).
    /// A sell's is in the quote asset; BNB has no price here and is counted. Then a sell with a
    /// base-asset commission (BNB fees on a BNB pair) gives up the quantity plus it.
    #[test]
    fn a_commission_moves_the_position_or_the_fees_by_its_asset() {
        let q = |s: &str| Qty::parse(s).expect("qty");
        let sym = |s: &[u8]| Sym::new(s).expect("sym");
        let (mut p, mut rx) = pipeline();
        let (id, cid) = open_order(&mut p);
        let mut trade = report(cid, ExecType::Trade, OrderStatus::PartiallyFilled, "0.001");
        (trade.commission, trade.commission_asset) = (q("0.000001"), sym(b"BTC"));
        p.on_gateway(GatewayEvent::Execution { symbol: SymbolId(0), report: trade }, 3);
        let pos = *p.position(SymbolId(0));
        // 0.000001 BTC at 60 000 is 0.06 USDT.
        assert_eq!((pos.qty, pos.fees), (q("0.000999"), Amount::from_fixed8(6_000_000)));
        assert_eq!(pos.cost, Amount::notional(Px::from_int(60_000), q("0.000999")), "bought 0.000999 at 60 000");
        let o = p.orders.get_open(id).copied().expect("open");
        assert_eq!((o.filled, o.fees), (q("0.001"), Amount::from_fixed8(6_000_000)), "the order filled 0.001");
        let fill = std::iter::from_fn(|| rx.pop().ok())
            .find_map(|e| if let Event::Fill(f) = e { Some(f) } else { None })
            .expect("a fill event");
        assert_eq!(
            (fill.qty, fill.base_fee, fill.moved(), fill.position),
            (q("0.001"), q("0.000001"), q("0.000999"), q("0.000999"))
        );

        // The second half with the commission in USDT: 0.06 of fee, the full quantity.
        trade.cum_qty = q("0.002");
        (trade.commission, trade.commission_asset, trade.status) = (q("0.06"), sym(b"USDT"), OrderStatus::Filled);
        p.on_gateway(GatewayEvent::Execution { symbol: SymbolId(0), report: trade }, 4);
        let pos = *p.position(SymbolId(0));
        assert_eq!((pos.qty, pos.fees), (q("0.001999"), Amount::from_fixed8(12_000_000)));
        assert_eq!(p.counters().unpriced_fees, 0);

        // A sell paying BNB on BTCUSDT: no fee booked, counted; on BNBUSDT (base BNB) the
        // account gives up the quantity plus the commission.
        for (symbol, name, moved, unpriced) in [(0, &b"BTCUSDT"[..], "0.001", 1), (1, b"BNBUSDT", "0.00101", 1)] {
            let cfg = Config::from_toml_str("symbols = ['BTCUSDT', 'BNBUSDT']\n", &|_| None).expect("config");
            let (tx, _rx) = rtrb::RingBuffer::new(4096);
            let mut p = Pipeline::new(&cfg, tx);
            let ev = OrderEvent { symbol: SymbolId(symbol), side: Side::Sell, ..order_event(OrderId(7)) };
            let cid = p.orders.insert(&ev, 0, [0; StrategyKind::COUNT]).expect("insert");
            let mut sell = report(cid, ExecType::Trade, OrderStatus::PartiallyFilled, "0.001");
            (sell.symbol, sell.side, sell.commission, sell.commission_asset) =
                (sym(name), Side::Sell, q("0.00001"), sym(b"BNB"));
            p.on_gateway(GatewayEvent::Execution { symbol: SymbolId(symbol), report: sell }, 3);
            let pos = *p.position(SymbolId(symbol));
            let fee = if symbol == 1 { Amount::notional(Px::from_int(60_000), q("0.00001")) } else { Amount::ZERO };
            assert_eq!((pos.qty, pos.fees), (Qty(-q(moved).raw()), fee), "{}", String::from_utf8_lossy(name));
            assert_eq!(p.counters().unpriced_fees, unpriced - symbol as u64);
        }
    }

    /// A base-asset commission leaves the position off the lot grid: 0.000999 BTC with lots of
    /// 0.00001. A flatten sells the 0.00099 the venue can take (not 0.000999, which it refuses
    /// as LOT_SIZE on every try); what is left, 0.000009, is dust no order can carry, so neither
    /// a flatten nor the kill switch's flattening sends anything for it.
    #[test]
    fn a_flatten_sells_the_whole_lots_and_leaves_the_dust() {
        let q = |s: &str| Qty::parse(s).expect("qty");
        let (mut p, mut rx) = pipeline();
        assert_eq!(p.risk.round_qty(q("0.000999")), q("0.00099"), "the test's lot is 0.00001");
        let (_, cid) = open_order(&mut p);
        let mut trade = report(cid, ExecType::Trade, OrderStatus::PartiallyFilled, "0.001");
        (trade.commission, trade.commission_asset) = (q("0.000001"), Sym::new(b"BTC").expect("sym"));
        p.on_gateway(GatewayEvent::Execution { symbol: SymbolId(0), report: trade }, 3);
        assert_eq!(p.position(SymbolId(0)).qty, q("0.000999"));
        while rx.pop().is_ok() {}
        // No market here, so the flatten is refused for that; the refusal shows its quantity.
        p.flatten_symbol(0, 4);
        let refused: Vec<_> = std::iter::from_fn(|| rx.pop().ok())
            .filter_map(|e| if let Event::Reject(r) = e { Some((r.side, r.qty, r.reason)) } else { None })
            .collect();
        assert_eq!(refused, [(Side::Sell, q("0.00099"), RejectReason::NoMarket)]);
        // Only dust left: nothing to send.
        p.positions[0].qty = q("0.000009");
        assert_eq!(p.flatten_symbol(0, 5), 0);
        assert!(std::iter::from_fn(|| rx.pop().ok()).all(|e| !matches!(e, Event::Reject(_) | Event::Order(_))));
    }

    #[test]
    fn a_trade_reported_after_the_cancel_answer_is_still_booked() {
        let (mut p, _rx) = pipeline();
        let (id, cid) = open_order(&mut p);
        // The venue filled the order, then answered our cancel; the trade report comes after.
        p.on_gateway(GatewayEvent::Canceled { symbol: SymbolId(0), client_id: cid }, 3);
        assert!(p.orders.get_open(id).is_some(), "the cancel's answer must not close the order");
        let trade = report(cid, ExecType::Trade, OrderStatus::PartiallyFilled, "0.001");
        p.on_gateway(GatewayEvent::Execution { symbol: SymbolId(0), report: trade }, 4);
        assert_eq!(p.position(SymbolId(0)).qty, Qty::parse("0.001").expect("qty"));
        let canceled = report(cid, ExecType::Canceled, OrderStatus::Canceled, "0");
        p.on_gateway(GatewayEvent::Execution { symbol: SymbolId(0), report: canceled }, 5);
        assert!(p.orders.get_open(id).is_none(), "its CANCELED report closes it");
        assert_eq!(p.position(SymbolId(0)).qty, Qty::parse("0.001").expect("qty"));
    }

    #[test]
    fn a_trade_report_books_the_earlier_fills_its_cumulative_quantity_shows_we_missed() {
        let (mut p, _rx) = pipeline();
        let (id, cid) = open_order(&mut p);
        let q = |s: &str| Qty::parse(s).expect("qty");
        let quote = |px: &str, qty: &str| Amount::notional(Px::parse(px).expect("px"), q(qty)).raw();
        // 0.001 traded at 59 990 while disconnected (its report was lost); the next trade's
        // report, 0.0005 at 60 000, carries both in its totals.
        let mut trade = report(cid, ExecType::Trade, OrderStatus::PartiallyFilled, "0.0005");
        trade.cum_qty = q("0.0015");
        trade.cum_quote = Amount(quote("59990", "0.001") + quote("60000", "0.0005"));
        trade.commission = q("0.03");
        p.on_gateway(GatewayEvent::Execution { symbol: SymbolId(0), report: trade }, 3);
        let o = p.orders.get_open(id).copied().expect("open");
        assert_eq!(
            (o.filled, o.cum_quote, o.fees),
            (q("0.0015"), trade.cum_quote, Amount::from_fixed8(q("0.03").raw()))
        );
        assert_eq!(p.position(SymbolId(0)).qty, q("0.0015"));
        // The same report again (a duplicate, or one a listing already booked): nothing more.
        p.on_gateway(GatewayEvent::Execution { symbol: SymbolId(0), report: trade }, 4);
        assert_eq!(p.orders.get_open(id).map(|o| o.filled), Some(q("0.0015")));
        assert_eq!((p.position(SymbolId(0)).qty, p.counters().fills), (q("0.0015"), 2));
        // The last 0.0005 completes the order.
        trade.last_qty = q("0.0005");
        trade.cum_qty = q("0.002");
        trade.cum_quote = Amount(quote("59990", "0.001") + quote("60000", "0.001"));
        trade.status = OrderStatus::Filled;
        p.on_gateway(GatewayEvent::Execution { symbol: SymbolId(0), report: trade }, 5);
        assert!(p.orders.get_open(id).is_none(), "filled");
        assert_eq!((p.position(SymbolId(0)).qty, p.counters().fills), (q("0.002"), 3));
    }

    #[test]
    fn an_acknowledged_order_the_venue_does_not_know_is_closed_as_expired() {
        let (mut p, mut rx) = pipeline();
        let (id, cid) = open_order(&mut p);
        while rx.pop().is_ok() {}
        let refused =
            |request| GatewayEvent::Rejected { request, symbol: SymbolId(0), client_id: cid, status: 400, code: -2013 };
        // A refused cancel or place of an acknowledged order leaves it to its reports.
        p.on_gateway(refused(RequestKind::Cancel), 3);
        p.on_gateway(refused(RequestKind::Place), 4);
        assert!(p.orders.get_open(id).is_some_and(|o| o.status == OrderStatus::New));
        // "Does not exist" to `order.status`: closed as expired, reported, counted.
        p.on_gateway(refused(RequestKind::Query), 5);
        assert!(p.orders.get_open(id).is_none());
        assert_eq!(p.counters().unknown_to_venue, 1);
        let update = std::iter::from_fn(|| rx.pop().ok()).find_map(|e| match e {
            Event::OrderUpdate(u) => Some(u),
            _ => None,
        });
        assert_eq!(update.map(|u| (u.id, u.status)), Some((id, OrderStatus::Expired)));
    }

    #[test]
    fn a_refused_cancel_does_not_close_a_pending_order_as_rejected() {
        let (mut p, _rx) = pipeline();
        let ev_id = OrderId(9);
        let ev = order_event(ev_id);
        let cid = p.orders.insert(&ev, 0, [0; StrategyKind::COUNT]).expect("insert");
        let refused =
            |request| GatewayEvent::Rejected { request, symbol: SymbolId(0), client_id: cid, status: 400, code: -2011 };
        p.on_gateway(refused(RequestKind::Cancel), 2);
        assert!(p.orders.get_open(ev_id).is_some_and(|o| o.status == OrderStatus::PendingNew));
        p.on_gateway(refused(RequestKind::Place), 3);
        assert!(p.orders.get_open(ev_id).is_none(), "a refused place closes it");
    }
}
