//! The control plane's replica of engine state, rebuilt from the events the hot thread emits.
//!
//! Written only by the bridge task (tokio runtime) as it drains the event ring; read by the API
//! handlers under a short read lock. Allocates freely (bounded histories), never touches the
//! engine.
//!
//! Audit counts (`orders`, `fills`, `rejects`) are counted here from the audit events
//! themselves, never copied from the periodic `StatsSnapshot`: the ring is FIFO, so once the
//! bridge has applied a command's `Ack`, everything the engine emitted before it is counted.
//!
//! Orders are tracked with their current status (`order_table`, from `Order`, `OrderUpdate` and
//! `Fill` events); the table, like every history here, is bounded and drops its oldest first.

use hft_shared::config::{CapitalConfig, Config, Mode, RiskConfig};
use hft_shared::msg::{
    BookLevel, CommandAck, EngineState, Event, FeedState, FillEvent, Heartbeat, OrderEvent, OrderStatus, OrderUpdate,
    Percentiles, PositionSnapshot, RejectEvent, RejectReason, RiskEvent, RiskEventKind, RiskSnapshot, Stage,
    StatsSnapshot, StrategySnapshot,
};
use hft_shared::{Amount, Px, Qty, StrategyKind, SymbolId};
use std::collections::VecDeque;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// Orders tracked with their current status for `/orders` (oldest dropped first, open or not).
pub const ORDER_HISTORY: usize = 10_000;
/// Fills kept for `/fills` (oldest dropped first).
pub const FILL_HISTORY: usize = 10_000;
/// Risk events kept for the API (oldest dropped first).
pub const RISK_HISTORY: usize = 256;
/// A heartbeat younger than this (or 5 × `engine.heartbeat_ms`, if larger) means "ready".
pub const MIN_READY_WINDOW: Duration = Duration::from_secs(2);

/// The replica as shared between the bridge (writer) and the handlers (readers).
pub type SharedReplica = Arc<RwLock<Replica>>;

/// Read access that survives a panicked writer: the replica holds plain data, and serving the
/// last consistent-enough view beats failing every request.
pub fn read(r: &SharedReplica) -> RwLockReadGuard<'_, Replica> {
    r.read().unwrap_or_else(|e| e.into_inner())
}

/// Write access; see [`read`] on poisoning.
pub fn write(r: &SharedReplica) -> RwLockWriteGuard<'_, Replica> {
    r.write().unwrap_or_else(|e| e.into_inner())
}

/// A book as the engine dumped it: levels in dump order (bids best-first, then asks
/// best-first). `complete` once every announced level arrived in order (a dump is telemetry: a
/// full ring can drop levels, and then it stays incomplete).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BookDump {
    pub valid: bool,
    pub complete: bool,
    pub update_id: u64,
    pub levels: Vec<BookLevel>,
}

impl BookDump {
    fn apply(&mut self, l: &BookLevel) {
        if l.index == 0 {
            self.levels.clear();
            self.valid = l.valid;
            self.update_id = l.update_id;
            self.complete = !l.valid;
        }
        if !l.valid || self.complete || l.index as usize != self.levels.len() {
            return;
        }
        self.levels.push(*l);
        self.complete = self.levels.len() == l.count as usize;
    }
}

/// One order as the control plane knows it: what was sent, and where it stands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrderRow {
    pub order: OrderEvent,
    /// Latest status reported (`PendingNew` until the first update).
    pub status: OrderStatus,
    /// Cumulative filled quantity, as the latest update reported it.
    pub filled: Qty,
    /// Venue error code of a venue rejection, else 0.
    pub venue_code: i32,
    /// Fees of the fills booked against the order so far, quote currency.
    pub fees: Amount,
    /// Engine time of the latest change, unix ns.
    pub updated_ns: u64,
}

impl OrderRow {
    fn new(order: OrderEvent) -> Self {
        Self {
            order,
            status: OrderStatus::PendingNew,
            filled: Qty::ZERO,
            venue_code: 0,
            fees: Amount::ZERO,
            updated_ns: order.ts_ns,
        }
    }
}

/// Everything the API serves about the engine. Indexes are `SymbolId`, `Stage` and
/// `StrategyKind` indexes.
#[derive(Debug)]
pub struct Replica {
    pub mode: Mode,
    /// Configured symbol names; index = `SymbolId`.
    pub symbols: Vec<String>,
    /// When the control plane started.
    pub started: Instant,
    /// Readiness window: a heartbeat older than this means "not ready".
    pub ready_window: Duration,
    /// The hot thread is alive (cleared by the supervisor when it ends).
    pub engine_running: bool,
    /// Latest state the engine reported, from heartbeats and acks in ring order; strategy and
    /// risk snapshots also update their strategy's bit and the kill switch.
    pub state: EngineState,
    pub heartbeat: Option<(Heartbeat, Instant)>,
    /// Latest periodic counters (frames, decode errors, …). Lags by up to `snapshot_ms`.
    pub stats: Option<StatsSnapshot>,
    /// Latest percentiles per stage; zeros until reported (and after a reset, until the next
    /// snapshot).
    pub latency: [Percentiles; Stage::COUNT],
    /// Engine time of each stage's latest snapshot, unix ns (0: none).
    pub latency_ts: [u64; Stage::COUNT],
    /// Per symbol: the latest snapshot, with fills newer than it applied on top.
    pub positions: Vec<Option<PositionSnapshot>>,
    /// Per symbol: latest feed status (`None` until the engine reports one).
    pub feeds: Vec<Option<FeedState>>,
    pub strategies: [Option<StrategySnapshot>; StrategyKind::COUNT],
    /// Per strategy: the latest weight, from strategy snapshots and `WeightChanged` risk events in
    /// ring order (the event carries weight × 1e6, so 6 decimals); the configured weight until
    /// the engine reports one, `None` if the config has none.
    pub weights: [Option<f64>; StrategyKind::COUNT],
    /// Latest account view of the risk manager (equity, peak, order rates); `None` until the
    /// first one. Lags by up to `snapshot_ms`.
    pub risk: Option<RiskSnapshot>,
    /// Counted from `Event::Order`.
    pub orders: u64,
    /// Counted from `Event::Fill`.
    pub fills: u64,
    /// Counted from `Event::Reject`, each worth `1 + suppressed`.
    pub rejects: u64,
    pub rejects_by_reason: [u64; RejectReason::COUNT],
    /// The last [`FILL_HISTORY`] fills, newest last.
    pub recent_fills: VecDeque<FillEvent>,
    /// The last [`ORDER_HISTORY`] orders with their current status, ascending by id (the engine
    /// numbers orders from 1 in emission order), so newest last.
    pub order_table: VecDeque<OrderRow>,
    /// Order updates and fills naming an order not in `order_table` (dropped as too old).
    pub untracked: u64,
    pub recent_risk: VecDeque<RiskEvent>,
    pub last_ack: Option<CommandAck>,
    /// Per symbol: the latest book dump (answer to `DumpBook`).
    pub books: Vec<BookDump>,
    /// Events applied since start.
    pub events: u64,
    /// Configuration served as it was at start (the engine's limits and strategy parameters do
    /// not change while running; weights and activity do, and are above).
    pub risk_cfg: RiskConfig,
    pub capital: CapitalConfig,
    /// `cfg.strategies` as JSON, one object per strategy name (opaque to the control plane).
    pub strategy_params: serde_json::Value,
    /// The effective configuration as served by `/config`, exchange secrets already redacted
    /// (the API token is the API's to redact: the replica never sees it).
    pub config: serde_json::Value,
    /// The durable store's counters, refreshed by the bridge about every 100 ms; `None` when
    /// the store is disabled (or before the first refresh).
    pub store: Option<crate::store::StoreStats>,
    /// The store's database file; `None` when `store.enabled = false` (`GET /performance`
    /// reads it, `/health` reports the store as disabled).
    pub store_path: Option<std::path::PathBuf>,
}

impl Replica {
    pub fn new(cfg: &Config, started: Instant) -> Self {
        let n = cfg.symbols.len();
        // Plain data with string keys: serializing it cannot fail; `Null` would only hide the
        // parameters, never stop the process.
        let strategy_params = serde_json::to_value(&cfg.strategies).unwrap_or(serde_json::Value::Null);
        let weights = StrategyKind::ALL.map(|k| strategy_params[k.name()]["weight"].as_f64());
        Self {
            mode: cfg.mode,
            symbols: cfg.symbols.clone(),
            started,
            ready_window: MIN_READY_WINDOW.max(Duration::from_millis(cfg.engine.heartbeat_ms.saturating_mul(5))),
            engine_running: true,
            state: EngineState::default(),
            heartbeat: None,
            stats: None,
            latency: [Percentiles::default(); Stage::COUNT],
            latency_ts: [0; Stage::COUNT],
            positions: vec![None; n],
            feeds: vec![None; n],
            strategies: [None; StrategyKind::COUNT],
            weights,
            risk: None,
            orders: 0,
            fills: 0,
            rejects: 0,
            rejects_by_reason: [0; RejectReason::COUNT],
            recent_fills: VecDeque::with_capacity(FILL_HISTORY),
            order_table: VecDeque::with_capacity(ORDER_HISTORY),
            untracked: 0,
            recent_risk: VecDeque::with_capacity(RISK_HISTORY),
            last_ack: None,
            books: vec![BookDump::default(); n],
            events: 0,
            risk_cfg: cfg.risk.clone(),
            capital: cfg.capital.clone(),
            strategy_params,
            config: crate::api::config::effective(cfg),
            store: None,
            store_path: cfg.store.enabled.then(|| std::path::PathBuf::from(&cfg.store.path)),
        }
    }

    pub fn shared(self) -> SharedReplica {
        Arc::new(RwLock::new(self))
    }

    /// Applies one event; `now` is when the bridge took it off the ring.
    pub fn apply(&mut self, ev: &Event, now: Instant) {
        self.events += 1;
        match *ev {
            Event::Heartbeat(hb) => {
                self.state = hb.state;
                self.heartbeat = Some((hb, now));
            }
            Event::Ack(ack) => {
                self.state = ack.state;
                self.last_ack = Some(ack);
            }
            Event::Order(o) => {
                self.orders += 1;
                self.track_order(o);
            }
            Event::OrderUpdate(u) => {
                self.update_order(&u);
            }
            Event::Fill(f) => {
                self.fills += 1;
                self.apply_fill(&f);
                self.fill_order(&f);
                push_bounded(&mut self.recent_fills, f, FILL_HISTORY);
            }
            Event::Reject(r) => self.apply_reject(&r),
            Event::Risk(r) => {
                if let RiskEventKind::WeightChanged(k) = r.kind {
                    self.weights[k.index()] = Some(r.value as f64 / 1e6);
                }
                push_bounded(&mut self.recent_risk, r, RISK_HISTORY);
            }
            Event::Feed(f) => {
                if let Some(slot) = self.feeds.get_mut(f.symbol.index()) {
                    *slot = Some(f.state);
                }
            }
            Event::Stats(s) => self.stats = Some(s),
            Event::Position(p) => {
                if let Some(slot) = self.positions.get_mut(p.symbol.index()) {
                    // A parked (late) fill may have been applied after a newer snapshot was
                    // taken; never let an older snapshot roll state back.
                    if slot.is_none_or(|cur| p.ts_ns >= cur.ts_ns) {
                        *slot = Some(p);
                    }
                }
            }
            Event::Latency(l) => {
                self.latency[l.stage.index()] = l.pct;
                self.latency_ts[l.stage.index()] = l.ts_ns;
            }
            Event::Strategy(s) => {
                let k = s.kind.index();
                self.strategies[k] = Some(s);
                self.weights[k] = Some(s.weight);
                // As for the kill switch below: the latest report in ring order is current.
                let bit = 1u8 << k;
                if s.active {
                    self.state.active_strategies |= bit;
                } else {
                    self.state.active_strategies &= !bit;
                }
            }
            Event::RiskState(s) => {
                // Heartbeats, acks and risk snapshots all carry the kill switch: the latest in
                // ring order is the engine's current state.
                self.state.kill_switch = s.kill_switch;
                self.risk = Some(s);
            }
            Event::Book(l) => {
                if let Some(d) = self.books.get_mut(l.symbol.index()) {
                    d.apply(&l);
                }
            }
        }
    }

    /// Fills are fresher than the periodic position snapshot: apply one on top of the latest
    /// snapshot when it is newer (a parked fill delivered late is already in the snapshot).
    fn apply_fill(&mut self, f: &FillEvent) {
        let Some(slot) = self.positions.get_mut(f.symbol.index()) else {
            return;
        };
        let cur = slot.get_or_insert(PositionSnapshot {
            symbol: f.symbol,
            qty: Qty::ZERO,
            avg_px: Px::ZERO,
            mark: Px::ZERO,
            realized: Amount::ZERO,
            unrealized: Amount::ZERO,
            fees: Amount::ZERO,
            ts_ns: 0,
        });
        if f.ts_ns >= cur.ts_ns {
            cur.qty = f.position;
            cur.realized = f.realized;
            cur.fees += f.fee;
            cur.ts_ns = f.ts_ns;
        }
    }

    /// A new order enters the table as `PendingNew`. Ids normally arrive ascending; one that
    /// does not is put in its place (a repeat keeps the tracked state).
    fn track_order(&mut self, o: OrderEvent) {
        let t = &mut self.order_table;
        match t.back() {
            Some(last) if last.order.id >= o.id => match t.binary_search_by_key(&o.id, |r| r.order.id) {
                Ok(_) => return,
                Err(i) => t.insert(i, OrderRow::new(o)),
            },
            _ => t.push_back(OrderRow::new(o)),
        }
        if t.len() > ORDER_HISTORY {
            t.pop_front();
        }
    }

    /// The tracked order `id`, if still in the table.
    #[cfg(test)]
    pub fn order_row(&self, id: hft_shared::OrderId) -> Option<&OrderRow> {
        let i = self.order_table.binary_search_by_key(&id, |r| r.order.id).ok()?;
        self.order_table.get(i)
    }

    fn order_row_mut(&mut self, id: hft_shared::OrderId) -> Option<&mut OrderRow> {
        let i = self.order_table.binary_search_by_key(&id, |r| r.order.id).ok()?;
        self.order_table.get_mut(i)
    }

    /// The engine's order table allows only legal transitions and reports each in ring order;
    /// a final status is never rolled back to an open one all the same.
    fn update_order(&mut self, u: &OrderUpdate) {
        let Some(row) = self.order_row_mut(u.id) else {
            self.untracked += 1;
            return;
        };
        if row.status.is_final() && !u.status.is_final() {
            return;
        }
        row.status = u.status;
        row.filled = u.filled;
        row.venue_code = u.venue_code;
        row.updated_ns = row.updated_ns.max(u.ts_ns);
    }

    /// A fill adds its fee to its order; the engine reports the order's new status first, but
    /// a fill that leaves nothing open closes the order regardless.
    fn fill_order(&mut self, f: &FillEvent) {
        let Some(row) = self.order_row_mut(f.order) else {
            self.untracked += 1;
            return;
        };
        row.fees += f.fee;
        if f.last && !row.status.is_final() {
            row.status = OrderStatus::Filled;
            row.filled = row.order.qty;
        }
        row.updated_ns = row.updated_ns.max(f.ts_ns);
    }

    /// After the engine acknowledged `ResetLatency` at engine time `ack_ts_ns`: clears every
    /// stage whose latest snapshot is not newer than the ack (it was taken before the
    /// histograms were cleared; one taken in the same duty cycle after it is cleared too, and
    /// the next snapshot restores it). Stages read zero until their next snapshot.
    pub fn reset_latency(&mut self, ack_ts_ns: u64) {
        for (pct, ts) in self.latency.iter_mut().zip(&mut self.latency_ts) {
            if *ts <= ack_ts_ns {
                *pct = Percentiles::default();
                *ts = 0;
            }
        }
    }

    fn apply_reject(&mut self, r: &RejectEvent) {
        let n = 1 + u64::from(r.suppressed);
        self.rejects += n;
        self.rejects_by_reason[r.reason.index()] += n;
    }

    /// Age of the last heartbeat at `now`, `None` before the first one.
    pub fn heartbeat_age(&self, now: Instant) -> Option<Duration> {
        self.heartbeat.map(|(_, at)| now.saturating_duration_since(at))
    }

    /// Engine thread alive and a heartbeat within the readiness window.
    pub fn ready(&self, now: Instant) -> bool {
        self.engine_running && self.heartbeat_age(now).is_some_and(|a| a <= self.ready_window)
    }

    /// The worst feed state over all symbols, as served by `/health`.
    pub fn feed_summary(&self) -> &'static str {
        self.feeds
            .iter()
            .map(|f| (feed_rank(*f), feed_name(*f)))
            .max_by_key(|(rank, _)| *rank)
            .map_or("unknown", |(_, name)| name)
    }

    /// Whether symbol `i`'s book is valid, from its feed state (`None` until reported): the
    /// engine reports `live` once its book is synced and uncrossed, `stale` only from `live`
    /// (valid but quiet), and invalidates the book whenever it reports `connecting`,
    /// `resyncing` or `down`.
    pub fn book_valid(&self, i: usize) -> Option<bool> {
        self.feeds.get(i).copied().flatten().map(|f| matches!(f, FeedState::Live | FeedState::Stale))
    }

    /// Position of a symbol (zero before the first report).
    pub fn position(&self, sym: SymbolId) -> Qty {
        self.positions.get(sym.index()).copied().flatten().map_or(Qty::ZERO, |p| p.qty)
    }

    /// PnL summed over symbols: (realized net of fees, unrealized, fees).
    pub fn pnl(&self) -> (Amount, Amount, Amount) {
        self.positions.iter().flatten().fold((Amount::ZERO, Amount::ZERO, Amount::ZERO), |(r, u, f), p| {
            (r + p.realized, u + p.unrealized, f + p.fees)
        })
    }
}

/// `None` (not reported yet) is "unknown".
pub fn feed_name(f: Option<FeedState>) -> &'static str {
    f.map_or("unknown", FeedState::as_str)
}

/// Severity for the summary: the worst symbol decides.
fn feed_rank(f: Option<FeedState>) -> u8 {
    match f {
        Some(FeedState::Live) => 0,
        None => 1,
        Some(FeedState::Connecting) => 2,
        Some(FeedState::Stale) => 3,
        Some(FeedState::Resyncing) => 4,
        Some(FeedState::Down) => 5,
    }
}

fn push_bounded<T>(q: &mut VecDeque<T>, v: T, cap: usize) {
    if q.len() == cap {
        q.pop_front();
    }
    q.push_back(v);
}

/// Event constructors shared by the unit tests of this crate.
#[cfg(test)]
pub mod fixtures {
    use hft_shared::msg::*;
    use hft_shared::{OrderId, OrderKind, Px, Qty, Side, SymbolId, TimeInForce};

    pub fn order(id: u64) -> Event {
        Event::Order(OrderEvent {
            id: OrderId(id),
            symbol: SymbolId(0),
            side: Side::Buy,
            kind: OrderKind::Market,
            tif: TimeInForce::Ioc,
            px: Px::from_int(60_000),
            qty: Qty::from_raw(1_000_000),
            decision_px: Px::from_int(60_000),
            frame_ts_ns: id * 10,
            ts_ns: id * 10 + 1,
            tick_to_order_ns: 150,
            strategies: 1,
            reduce_only: false,
        })
    }

    pub fn fill(id: u64, ts_ns: u64, position: Qty, realized: i128, fee: i128) -> Event {
        Event::Fill(FillEvent {
            order: OrderId(id),
            symbol: SymbolId(0),
            side: Side::Buy,
            liquidity: Liquidity::Taker,
            last: true,
            px: Px::from_int(60_000),
            qty: Qty::from_raw(1_000_000),
            fee: hft_shared::Amount(fee),
            base_fee: Qty::ZERO,
            position,
            realized: hft_shared::Amount(realized),
            ts_ns,
        })
    }

    /// An order update: `filled` in 1e-8 base units.
    pub fn update(id: u64, status: OrderStatus, filled: i64, venue_code: i32, ts_ns: u64) -> Event {
        Event::OrderUpdate(OrderUpdate {
            id: OrderId(id),
            symbol: SymbolId(0),
            status,
            filled: Qty::from_raw(filled),
            venue_code,
            ts_ns,
        })
    }

    pub fn reject(reason: RejectReason, suppressed: u32) -> Event {
        Event::Reject(RejectEvent {
            symbol: SymbolId(0),
            side: Side::Sell,
            reason,
            qty: Qty::from_raw(1),
            px: Px::from_int(1),
            suppressed,
            ts_ns: 5,
        })
    }

    pub fn state(halted: bool) -> EngineState {
        EngineState { halted, backpressure: false, active_strategies: 1, kill_switch: None }
    }

    pub fn heartbeat(seq: u64, halted: bool) -> Event {
        Event::Heartbeat(Heartbeat { ts_ns: seq, seq, state: state(halted) })
    }

    pub fn ack(seq: u64, outcome: CmdOutcome, halted: bool) -> Event {
        ack_with(seq, outcome, state(halted))
    }

    pub fn ack_with(seq: u64, outcome: CmdOutcome, state: EngineState) -> Event {
        Event::Ack(CommandAck { seq, outcome, state, ts_ns: seq })
    }

    /// A risk snapshot: equity, peak and day start in whole quote units.
    pub fn risk_state(equity: i64, peak: i64, day_start: i64, kill_switch: Option<KillCause>) -> Event {
        let amt = |v: i64| hft_shared::Amount::from_fixed8(v * hft_shared::px::SCALE);
        Event::RiskState(RiskSnapshot {
            equity: amt(equity),
            peak: amt(peak),
            day_start: amt(day_start),
            orders_10s: 3,
            orders_today: 42,
            kill_switch,
            ts_ns: 77,
        })
    }

    pub fn risk_event(kind: RiskEventKind, value: i64) -> Event {
        Event::Risk(RiskEvent { kind, value, ts_ns: 9 })
    }

    pub fn stats(frames: u64, orders: u64) -> Event {
        Event::Stats(StatsSnapshot { frames, orders, fills: orders, rejects: orders, ..Default::default() })
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use hft_shared::OrderId;
    use hft_shared::msg::{CmdOutcome, FeedEvent, KillCause, LatencySnapshot};
    use hft_shared::px::SCALE;

    fn fill_event(id: u64, ts_ns: u64, fee: i128) -> FillEvent {
        let Event::Fill(f) = fill(id, ts_ns, Qty::ZERO, 0, fee) else { unreachable!("a fill") };
        f
    }

    fn replica() -> Replica {
        let cfg = Config::from_toml_str("symbols = ['BTCUSDT', 'ETHUSDT']\n", &|_| None).expect("config");
        Replica::new(&cfg, Instant::now())
    }

    #[test]
    fn audit_counts_come_from_events_not_from_snapshots() {
        let mut r = replica();
        let now = Instant::now();
        r.apply(&stats(100, 0), now);
        for id in 1..=3 {
            r.apply(&order(id), now);
        }
        r.apply(&fill(1, 20, Qty::from_raw(1_000_000), 0, 0), now);
        r.apply(&reject(RejectReason::Halted, 0), now);
        // A lagging snapshot says 0 orders, then one says 99: neither changes the counts.
        r.apply(&stats(200, 99), now);
        assert_eq!((r.orders, r.fills, r.rejects), (3, 1, 1));
        assert_eq!(r.stats.map(|s| s.frames), Some(200));
    }

    #[test]
    fn rejects_count_suppressed_repeats_per_reason() {
        let mut r = replica();
        let now = Instant::now();
        r.apply(&reject(RejectReason::Halted, 4), now);
        r.apply(&reject(RejectReason::Halted, 0), now);
        r.apply(&reject(RejectReason::MaxPosition, 2), now);
        assert_eq!(r.rejects, 9);
        assert_eq!(r.rejects_by_reason[RejectReason::Halted.index()], 6);
        assert_eq!(r.rejects_by_reason[RejectReason::MaxPosition.index()], 3);
        assert_eq!(r.rejects_by_reason[RejectReason::NoMarket.index()], 0);
    }

    #[test]
    fn histories_are_bounded_and_drop_the_oldest() {
        let mut r = replica();
        let now = Instant::now();
        let n = ORDER_HISTORY as u64 + 500;
        for id in 1..=n {
            r.apply(&order(id), now);
            r.apply(&fill(id, id, Qty::ZERO, 0, 0), now);
        }
        assert_eq!(r.orders, n);
        assert_eq!(r.order_table.len(), ORDER_HISTORY);
        assert_eq!(r.order_table.front().map(|o| o.order.id.0), Some(501));
        assert_eq!(r.order_table.back().map(|o| o.order.id.0), Some(n));
        assert_eq!(r.recent_fills.len(), FILL_HISTORY);
        assert!(matches!(r.recent_fills.back(), Some(f) if f.order.0 == n));
        assert_eq!(r.untracked, 0, "every fill found its order");
        // An update of an order dropped from the table is counted, not applied.
        r.apply(&update(3, OrderStatus::Canceled, 0, 0, 5), now);
        assert_eq!(r.untracked, 1);
    }

    #[test]
    fn orders_follow_their_updates_and_fills() {
        let mut r = replica();
        let now = Instant::now();
        r.apply(&order(1), now);
        let row = |r: &Replica| *r.order_row(OrderId(1)).expect("tracked");
        assert_eq!((row(&r).status, row(&r).filled, row(&r).updated_ns), (OrderStatus::PendingNew, Qty::ZERO, 11));
        r.apply(&update(1, OrderStatus::New, 0, 0, 20), now);
        assert_eq!(row(&r).status, OrderStatus::New);
        r.apply(&update(1, OrderStatus::PartiallyFilled, 400_000, 0, 30), now);
        r.apply(&Event::Fill(FillEvent { last: false, ..fill_event(1, 30, 7) }), now);
        let o = row(&r);
        assert_eq!(
            (o.status, o.filled, o.fees, o.updated_ns),
            (OrderStatus::PartiallyFilled, Qty::from_raw(400_000), Amount(7), 30)
        );
        // The last fill closes the order even before (or without) its update.
        r.apply(&Event::Fill(fill_event(1, 40, 5)), now);
        let o = row(&r);
        assert_eq!((o.status, o.filled, o.fees, o.updated_ns), (OrderStatus::Filled, o.order.qty, Amount(12), 40));
        // A late open status never reopens a final order.
        r.apply(&update(1, OrderStatus::PartiallyFilled, 400_000, 0, 35), now);
        assert_eq!(row(&r).status, OrderStatus::Filled);
        // A venue rejection keeps the venue's code.
        r.apply(&order(2), now);
        r.apply(&update(2, OrderStatus::Rejected, 0, -2010, 50), now);
        let o = *r.order_row(OrderId(2)).expect("tracked");
        assert_eq!((o.status, o.venue_code), (OrderStatus::Rejected, -2010));
        assert_eq!(r.untracked, 0);
    }

    #[test]
    fn an_order_out_of_id_order_is_put_in_its_place() {
        let mut r = replica();
        let now = Instant::now();
        for id in [1, 2, 5, 3, 5] {
            r.apply(&order(id), now);
        }
        r.apply(&update(5, OrderStatus::New, 0, 0, 99), now);
        r.apply(&order(5), now);
        let ids: Vec<u64> = r.order_table.iter().map(|o| o.order.id.0).collect();
        assert_eq!(ids, [1, 2, 3, 5]);
        assert_eq!(r.order_row(OrderId(5)).map(|o| o.status), Some(OrderStatus::New), "a repeat keeps the state");
        assert_eq!(r.orders, 6, "every order event is counted");
    }

    #[test]
    fn latency_reset_clears_the_stages_reported_before_the_ack() {
        let mut r = replica();
        let now = Instant::now();
        let pct = Percentiles { count: 3, p50: 100, p90: 200, p99: 300, p999: 400, max: 500 };
        r.apply(&Event::Latency(LatencySnapshot { stage: Stage::Decode, pct, ts_ns: 10 }), now);
        r.apply(&Event::Latency(LatencySnapshot { stage: Stage::Book, pct, ts_ns: 20 }), now);
        r.apply(&Event::Latency(LatencySnapshot { stage: Stage::Risk, pct, ts_ns: 21 }), now);
        r.reset_latency(20);
        assert_eq!(r.latency[Stage::Decode.index()], Percentiles::default());
        assert_eq!(r.latency[Stage::Book.index()], Percentiles::default(), "same engine time: cleared");
        assert_eq!(r.latency[Stage::Risk.index()], pct, "taken after the reset: kept");
        assert_eq!(r.latency_ts[Stage::Decode.index()], 0);
    }

    #[test]
    fn book_validity_follows_the_feed_state() {
        let mut r = replica();
        let now = Instant::now();
        assert_eq!(r.book_valid(0), None);
        let feed = |state| Event::Feed(FeedEvent { symbol: SymbolId(0), state, ts_ns: 1 });
        for (state, valid) in [
            (FeedState::Connecting, false),
            (FeedState::Live, true),
            (FeedState::Stale, true),
            (FeedState::Resyncing, false),
            (FeedState::Down, false),
        ] {
            r.apply(&feed(state), now);
            assert_eq!(r.book_valid(0), Some(valid), "{state:?}");
        }
        assert_eq!(r.book_valid(1), None);
        assert_eq!(r.book_valid(9), None);
    }

    #[test]
    fn state_follows_heartbeats_and_acks_in_ring_order() {
        let mut r = replica();
        let now = Instant::now();
        r.apply(&heartbeat(1, false), now);
        assert!(!r.state.halted);
        r.apply(&ack(7, CmdOutcome::Applied, true), now);
        assert!(r.state.halted);
        assert_eq!(r.last_ack.map(|a| a.seq), Some(7));
        r.apply(&heartbeat(2, false), now);
        assert!(!r.state.halted);
    }

    #[test]
    fn fills_update_positions_until_a_newer_snapshot() {
        let mut r = replica();
        let now = Instant::now();
        let snap = |qty: i64, fees: i128, ts_ns: u64| {
            Event::Position(PositionSnapshot {
                symbol: SymbolId(0),
                qty: Qty::from_raw(qty),
                avg_px: Px::ZERO,
                mark: Px::ZERO,
                realized: Amount(-fees),
                unrealized: Amount(7),
                fees: Amount(fees),
                ts_ns,
            })
        };
        r.apply(&snap(1_000, 10, 100), now);
        r.apply(&fill(1, 150, Qty::from_raw(3_000), -30, 20), now);
        assert_eq!(r.position(SymbolId(0)), Qty::from_raw(3_000));
        assert_eq!(r.pnl(), (Amount(-30), Amount(7), Amount(30)));
        // The next snapshot includes that fill and supersedes it.
        r.apply(&snap(3_000, 30, 200), now);
        // A parked fill delivered late (older than the snapshot) is already counted in it.
        r.apply(&fill(0, 120, Qty::from_raw(2_000), -20, 10), now);
        assert_eq!(r.position(SymbolId(0)), Qty::from_raw(3_000));
        assert_eq!(r.pnl(), (Amount(-30), Amount(7), Amount(30)));
        assert_eq!(r.fills, 2, "the late fill is still counted");
        assert_eq!(r.position(SymbolId(1)), Qty::ZERO);
    }

    #[test]
    fn events_for_unknown_symbols_are_ignored_not_panicking() {
        let mut r = replica();
        let now = Instant::now();
        r.apply(&Event::Feed(FeedEvent { symbol: SymbolId(9), state: FeedState::Live, ts_ns: 1 }), now);
        assert_eq!(r.feed_summary(), "unknown");
    }

    #[test]
    fn feed_summary_is_the_worst_symbol() {
        let mut r = replica();
        let now = Instant::now();
        let feed = |s: u16, state| Event::Feed(FeedEvent { symbol: SymbolId(s), state, ts_ns: 1 });
        r.apply(&feed(0, FeedState::Live), now);
        assert_eq!(r.feed_summary(), "unknown", "ETHUSDT not reported yet");
        r.apply(&feed(1, FeedState::Live), now);
        assert_eq!(r.feed_summary(), "live");
        r.apply(&feed(1, FeedState::Resyncing), now);
        assert_eq!(r.feed_summary(), "resyncing");
    }

    #[test]
    fn latency_is_kept_per_stage() {
        let mut r = replica();
        let pct = Percentiles { count: 3, p50: 100, p90: 200, p99: 300, p999: 400, max: 500 };
        r.apply(&Event::Latency(LatencySnapshot { stage: Stage::TickToOrder, pct, ts_ns: 1 }), Instant::now());
        assert_eq!(r.latency[Stage::TickToOrder.index()], pct);
        assert_eq!(r.latency[Stage::Decode.index()], Percentiles::default());
    }

    #[test]
    fn readiness_needs_a_fresh_heartbeat_and_a_live_engine() {
        let mut r = replica();
        let t0 = Instant::now();
        assert!(!r.ready(t0), "no heartbeat yet");
        r.apply(&heartbeat(1, false), t0);
        assert!(r.ready(t0 + Duration::from_millis(1999)));
        assert!(!r.ready(t0 + Duration::from_millis(2001)));
        r.engine_running = false;
        assert!(!r.ready(t0));
    }

    #[test]
    fn kill_switch_follows_risk_snapshots_heartbeats_and_acks_in_ring_order() {
        let mut r = replica();
        let now = Instant::now();
        assert!(r.risk.is_none());
        r.apply(&risk_state(9_000, 10_000, 10_000, Some(KillCause::Drawdown)), now);
        assert_eq!(r.state.kill_switch, Some(KillCause::Drawdown));
        assert_eq!(r.risk.map(|s| (s.equity, s.orders_today)), Some((Amount::from_fixed8(9_000 * SCALE), 42)));
        // An ack after a re-arm says armed again.
        r.apply(&ack(3, CmdOutcome::Applied, false), now);
        assert_eq!(r.state.kill_switch, None);
        r.apply(&risk_state(9_000, 9_000, 9_000, Some(KillCause::DailyLoss)), now);
        assert_eq!(r.state.kill_switch, Some(KillCause::DailyLoss));
        assert!(!r.state.halted, "a risk snapshot changes only the kill switch");
    }

    #[test]
    fn weights_follow_config_then_snapshots_and_changes_in_ring_order() {
        let mut r = replica();
        let now = Instant::now();
        let configured = serde_json::to_value(&Config::from_toml_str("", &|_| None).expect("config").strategies)
            .expect("json")["momentum"]["weight"]
            .as_f64();
        assert!(configured.is_some());
        assert_eq!(r.weights[StrategyKind::Momentum.index()], configured);
        let snap = |weight| {
            Event::Strategy(StrategySnapshot {
                kind: StrategyKind::Momentum,
                active: true,
                weight,
                signal: 0.5,
                signals: 1,
                orders: 1,
                realized: Amount::ZERO,
                ts_ns: 1,
            })
        };
        r.apply(&snap(1.25), now);
        assert_eq!(r.weights[StrategyKind::Momentum.index()], Some(1.25));
        assert_eq!(r.state.active_strategies, 1, "the report says active");
        r.apply(&risk_event(RiskEventKind::WeightChanged(StrategyKind::Momentum), 2_500_000), now);
        assert_eq!(r.weights[StrategyKind::Momentum.index()], Some(2.5));
        assert_eq!(r.recent_risk.len(), 1, "still kept as a risk event");
        r.apply(&snap(2.5), now);
        assert_eq!(r.weights[StrategyKind::Momentum.index()], Some(2.5));
        assert_eq!(r.weights[StrategyKind::Breakout.index()], r.strategy_params["breakout"]["weight"].as_f64());
    }

    #[test]
    fn readiness_window_scales_with_slow_heartbeats() {
        let cfg = Config::from_toml_str("[engine]\nheartbeat_ms = 1000\n", &|_| None).expect("config");
        let r = Replica::new(&cfg, Instant::now());
        assert_eq!(r.ready_window, Duration::from_secs(5));
    }
}
