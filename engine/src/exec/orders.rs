//! Order lifecycle: a fixed-capacity table of the engine's own orders, their Binance client
//! order ids, the legal state transitions, a bounded history of finished orders and execution
//! statistics.
//!
//! Role: exec stage. The engine records every order it sends here ([`OrderTable::insert`]) and
//! applies every venue answer to it (acknowledgement, fill, final status), whether the answer
//! comes from the live gateway or from the fill model ([`super::sim`]). Runs on the hot thread.
//! Allocates only in [`OrderTable::new`]; nothing here panics on any input: a refused operation
//! returns an [`OrderError`], leaves the table unchanged and is counted in [`ExecStats`].
//!
//! # State machine
//! `PendingNew → New → PartiallyFilled (→ PartiallyFilled …) → Filled`;
//! `PendingNew | New | PartiallyFilled → Canceled | Expired`; `PendingNew → Rejected`.
//! Nothing leaves a final state. A fill on a `PendingNew` order implies its acknowledgement
//! (the venue's fill report may overtake its answer to the placement): the order passes through
//! `New`. See [`is_legal`].
//!
//! # Client order ids
//! `h<order id>t<trace>`, both numbers in lowercase hex without leading zeros: at most
//! 1 + 16 + 1 + 16 = 34 bytes, within Binance's `^[.A-Z:/a-z0-9_-]{1,36}$` (decimal would need
//! 42). `trace` is what the caller passes, by convention the market-data update id behind the
//! order, so a venue report leads back to the frame that caused it. The encoding is canonical:
//! [`parse_client_id`] accepts exactly what [`format_client_id`] writes.
//!
//! # Lookups
//! Open orders live densely in a slice of at most `capacity` entries, their ids mirrored in a
//! `u64` array that is scanned: lookups are O(open orders) over contiguous memory (capacity is
//! the risk limit `max_open_orders` plus orders in flight, tens to hundreds). A client id is
//! parsed to its order id, then looked up. Finished orders are found in the history ring,
//! O(history), newest first.

pub use super::live::ClientId;
use hft_shared::msg::{OrderEvent, OrderStatus, OrderUpdate};
use hft_shared::{Amount, OrderId, OrderKind, Px, Qty, Side, StrategyKind, SymbolId, TimeInForce};
use std::fmt;

/// Longest client order id Binance accepts (`newClientOrderId`).
pub const CLIENT_ID_MAX: usize = ClientId::MAX;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Hex digits of `v` without leading zeros (1 for 0).
#[inline]
fn hex_len(v: u64) -> usize {
    if v == 0 { 1 } else { (67 - v.leading_zeros() as usize) / 4 }
}

/// Writes `v` in lowercase hex at `buf[at..]`, returns the end. `buf` has room: callers write
/// at most 34 bytes into 36.
#[inline]
fn put_hex(v: u64, buf: &mut [u8; CLIENT_ID_MAX], at: usize) -> usize {
    let n = hex_len(v);
    for k in 0..n {
        let nibble = (v >> (4 * (n - 1 - k))) & 0xf;
        buf[at + k] = HEX[nibble as usize];
    }
    at + n
}

/// Canonical lowercase hex (1 to 16 digits, no leading zero unless the value is 0).
#[inline]
fn parse_hex(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 16 || (s.len() > 1 && s[0] == b'0') {
        return None;
    }
    let mut v = 0u64;
    for &c in s {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        v = (v << 4) | d as u64;
    }
    Some(v)
}

/// Writes the client order id of order `id` with trace value `trace` into `buf`; returns its
/// length (3 to 34). No allocation.
#[inline]
pub fn format_client_id(id: OrderId, trace: u64, buf: &mut [u8; CLIENT_ID_MAX]) -> usize {
    buf[0] = b'h';
    let n = put_hex(id.0, buf, 1);
    buf[n] = b't';
    put_hex(trace, buf, n + 1)
}

/// The order id and trace value of a client order id written by [`format_client_id`]; `None`
/// for anything else (an order placed by hand, a non-canonical spelling).
#[inline]
pub fn parse_client_id(s: &[u8]) -> Option<(OrderId, u64)> {
    let rest = s.strip_prefix(b"h")?;
    let t = rest.iter().position(|&c| c == b't')?;
    let id = parse_hex(&rest[..t])?;
    let trace = parse_hex(&rest[t + 1..])?;
    Some((OrderId(id), trace))
}

/// Whether `s` is a valid Binance `newClientOrderId`: `^[.A-Z:/a-z0-9_-]{1,36}$` (the rule
/// [`ClientId::new`] applies).
#[inline]
pub fn is_valid_client_id(s: &[u8]) -> bool {
    ClientId::new(s).is_some()
}

/// The engine's client id for order `id` caused by trace value `trace` (see
/// [`format_client_id`]), as the gateway sends it.
#[inline]
pub fn engine_client_id(id: OrderId, trace: u64) -> ClientId {
    let mut buf = [0; CLIENT_ID_MAX];
    let n = format_client_id(id, trace, &mut buf);
    // `h`, hex digits, `t`, hex digits: always a valid id.
    ClientId::new(&buf[..n]).unwrap_or(ClientId::NONE)
}

/// Whether an order may go from `from` to `to` (see the module docs). `PartiallyFilled →
/// PartiallyFilled` is a further partial fill.
pub const fn is_legal(from: OrderStatus, to: OrderStatus) -> bool {
    use OrderStatus::*;
    matches!(
        (from, to),
        (PendingNew, New | Canceled | Expired | Rejected)
            | (New, PartiallyFilled | Filled | Canceled | Expired)
            | (PartiallyFilled, PartiallyFilled | Filled | Canceled | Expired)
    )
}

/// Why the table refused an operation. The table is unchanged; the refusal is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// Every slot holds an open order: the table never grows.
    #[error("order table full")]
    Full,
    /// An open order already has this id.
    #[error("duplicate order id")]
    Duplicate,
    /// No open order and no order in the history has this id.
    #[error("unknown order")]
    Unknown,
    /// The transition is not in the state machine (e.g. anything after a final state).
    #[error("illegal transition {from:?} -> {to:?}")]
    Illegal { from: OrderStatus, to: OrderStatus },
    /// A fill larger than the order's remaining quantity.
    #[error("fill exceeds the remaining quantity")]
    Overfill,
    /// A non-positive quantity, or a non-positive price where one is needed.
    #[error("quantity or price out of range")]
    Invalid,
}

/// One order as the engine knows it. Amounts are exact; times are decision-time ns (0: not
/// yet).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Order {
    pub id: OrderId,
    pub client_id: ClientId,
    /// The caller's trace value (market-data update id behind the order), also in `client_id`.
    pub trace: u64,
    pub symbol: SymbolId,
    pub side: Side,
    pub kind: OrderKind,
    pub tif: TimeInForce,
    /// Limit price; for market orders the touch the decision was taken at.
    pub px: Px,
    /// Ordered quantity, > 0.
    pub qty: Qty,
    /// Cumulative filled quantity, `0 ≤ filled ≤ qty`.
    pub filled: Qty,
    /// Σ fill price × fill quantity (Binance `cummulativeQuoteQty`), exact.
    pub cum_quote: Amount,
    /// Σ fees in quote currency (negative: rebate).
    pub fees: Amount,
    pub status: OrderStatus,
    /// Venue error code of a rejection (e.g. -2010), else 0.
    pub venue_code: i32,
    /// Mid price when the decision was taken (slippage reference); 0 = unknown.
    pub decision_px: Px,
    pub sent_ns: u64,
    /// First venue answer (acknowledgement, or a fill, rejection or expiry that implied it).
    pub ack_ns: u64,
    pub updated_ns: u64,
    /// Bit `k`: strategy `k` contributed.
    pub strategies: u8,
    /// PnL shares of the contributors (parts of `strategy::SHARE_SCALE`), as sent.
    pub shares: [u32; StrategyKind::COUNT],
    pub reduce_only: bool,
    /// A cancel was sent and not yet answered.
    pub cancel_requested: bool,
}

impl Order {
    const EMPTY: Self = Self {
        id: OrderId(0),
        client_id: ClientId::NONE,
        trace: 0,
        symbol: SymbolId(0),
        side: Side::Buy,
        kind: OrderKind::Market,
        tif: TimeInForce::Ioc,
        px: Px::ZERO,
        qty: Qty::ZERO,
        filled: Qty::ZERO,
        cum_quote: Amount::ZERO,
        fees: Amount::ZERO,
        status: OrderStatus::PendingNew,
        venue_code: 0,
        decision_px: Px::ZERO,
        sent_ns: 0,
        ack_ns: 0,
        updated_ns: 0,
        strategies: 0,
        shares: [0; StrategyKind::COUNT],
        reduce_only: false,
        cancel_requested: false,
    };

    /// Quantity still to fill (zero once final).
    #[inline]
    pub fn remaining(&self) -> Qty {
        if self.status.is_final() { Qty::ZERO } else { Qty(self.qty.raw() - self.filled.raw()) }
    }

    #[inline]
    pub fn is_open(&self) -> bool {
        !self.status.is_final()
    }

    /// Average fill price, rounded toward zero; `None` before the first fill.
    pub fn avg_px(&self) -> Option<Px> {
        let f = self.filled.raw() as i128;
        if f <= 0 {
            return None;
        }
        i64::try_from(self.cum_quote.raw() / f).ok().map(Px)
    }

    /// The order's current state as an event.
    #[inline]
    pub fn update(&self) -> OrderUpdate {
        OrderUpdate {
            id: self.id,
            symbol: self.symbol,
            status: self.status,
            filled: self.filled,
            venue_code: self.venue_code,
            ts_ns: self.updated_ns,
        }
    }
}

/// Execution statistics since start. Sums are exact integers; the ratios are computed on read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecStats {
    /// Orders accepted into the table.
    pub orders: u64,
    /// Orders that reached a final state, by state.
    pub filled_orders: u64,
    pub canceled: u64,
    pub rejected: u64,
    pub expired: u64,
    /// Σ ordered quantity of finished orders, raw 1e-8.
    pub ordered_qty: i128,
    /// Σ filled quantity of finished orders, raw 1e-8.
    pub filled_qty: i128,
    pub fills: u64,
    /// Σ side × (fill price − decision price) × fill quantity over fills with a decision price,
    /// raw 1e-16 (positive: worse than the decision).
    pub slippage_num: i128,
    /// Σ decision price × fill quantity over the same fills, raw 1e-16.
    pub slippage_den: i128,
    /// Acknowledgement latency (sent → first venue answer), ns.
    pub ack_count: u64,
    pub ack_sum_ns: u64,
    pub ack_max_ns: u64,
    /// Refusals, by kind.
    pub refused_full: u64,
    pub duplicates: u64,
    pub unknown: u64,
    /// Illegal transitions, overfills included.
    pub illegal: u64,
    pub invalid: u64,
}

impl ExecStats {
    /// Filled quantity / ordered quantity over finished orders.
    pub fn fill_rate(&self) -> Option<f64> {
        (self.ordered_qty > 0).then(|| self.filled_qty as f64 / self.ordered_qty as f64)
    }

    /// Volume-weighted slippage against the decision price, basis points, signed (positive:
    /// paid more on buys / received less on sells): `1e4 × Σ s·(p − d)·q / Σ d·q`, i.e. each
    /// fill's slippage weighted by its quantity valued at the decision price.
    pub fn slippage_bps(&self) -> Option<f64> {
        (self.slippage_den > 0).then(|| 1e4 * self.slippage_num as f64 / self.slippage_den as f64)
    }

    /// Mean acknowledgement latency, ns.
    pub fn ack_mean_ns(&self) -> Option<f64> {
        (self.ack_count > 0).then(|| self.ack_sum_ns as f64 / self.ack_count as f64)
    }

    fn record_ack(&mut self, ns: u64) {
        self.ack_count += 1;
        self.ack_sum_ns = self.ack_sum_ns.saturating_add(ns);
        self.ack_max_ns = self.ack_max_ns.max(ns);
    }
}

/// The engine's orders: open ones in a fixed-capacity table, finished ones in a history ring.
pub struct OrderTable {
    /// `open[..n_open]` are the open orders (unordered); `ids[k] == open[k].id.0`.
    open: Box<[Order]>,
    ids: Box<[u64]>,
    n_open: usize,
    /// Finished orders, oldest evicted first: `history[(head + k) % len]`, k < `n_hist`.
    history: Box<[Order]>,
    head: usize,
    n_hist: usize,
    stats: ExecStats,
}

impl fmt::Debug for OrderTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrderTable")
            .field("open", &self.n_open)
            .field("capacity", &self.open.len())
            .field("history", &self.n_hist)
            .field("stats", &self.stats)
            .finish()
    }
}

impl OrderTable {
    /// Room for `capacity` open orders and the last `history` finished ones. Allocates once.
    pub fn new(capacity: usize, history: usize) -> Self {
        Self {
            open: vec![Order::EMPTY; capacity].into_boxed_slice(),
            ids: vec![0; capacity].into_boxed_slice(),
            n_open: 0,
            history: vec![Order::EMPTY; history].into_boxed_slice(),
            head: 0,
            n_hist: 0,
            stats: ExecStats::default(),
        }
    }

    /// Most open orders the table holds.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.open.len()
    }

    /// Open (non-final) orders, all symbols: the risk manager's `open_orders`.
    #[inline]
    pub fn open_count(&self) -> usize {
        self.n_open
    }

    #[inline]
    pub fn is_full(&self) -> bool {
        self.n_open >= self.open.len()
    }

    /// Open orders on `symbol`.
    pub fn open_count_for(&self, symbol: SymbolId) -> usize {
        self.open_orders().iter().filter(|o| o.symbol == symbol).count()
    }

    /// The open orders, in no particular order (for cancel-all and the API).
    #[inline]
    pub fn open_orders(&self) -> &[Order] {
        &self.open[..self.n_open]
    }

    /// Finished orders, newest first.
    pub fn history(&self) -> impl Iterator<Item = &Order> + '_ {
        let cap = self.history.len();
        (0..self.n_hist).map(move |k| &self.history[(self.head + cap - 1 - k) % cap])
    }

    #[inline]
    pub fn stats(&self) -> &ExecStats {
        &self.stats
    }

    #[inline]
    fn find_open(&self, id: OrderId) -> Option<usize> {
        self.ids[..self.n_open].iter().position(|&x| x == id.0)
    }

    /// An open order.
    #[inline]
    pub fn get_open(&self, id: OrderId) -> Option<&Order> {
        self.find_open(id).map(|i| &self.open[i])
    }

    /// An open order, or a finished one still in the history.
    pub fn get(&self, id: OrderId) -> Option<&Order> {
        self.get_open(id).or_else(|| self.history().find(|o| o.id == id))
    }

    /// The order with this client id (open or in the history); `None` for ids that are not the
    /// engine's or not known.
    pub fn get_by_client_id(&self, client_id: &[u8]) -> Option<&Order> {
        let (id, _) = parse_client_id(client_id)?;
        self.get(id).filter(|o| o.client_id.as_bytes() == client_id)
    }

    /// Records a sent order as `PendingNew` and returns its client id. `trace` is the
    /// market-data update id behind it; `shares` the contributors' PnL shares.
    pub fn insert(
        &mut self,
        ev: &OrderEvent,
        trace: u64,
        shares: [u32; StrategyKind::COUNT],
    ) -> Result<ClientId, OrderError> {
        if ev.qty.raw() <= 0 || (ev.kind != OrderKind::Market && ev.px.raw() <= 0) {
            self.stats.invalid += 1;
            return Err(OrderError::Invalid);
        }
        if self.find_open(ev.id).is_some() {
            self.stats.duplicates += 1;
            return Err(OrderError::Duplicate);
        }
        if self.is_full() {
            self.stats.refused_full += 1;
            return Err(OrderError::Full);
        }
        let client_id = engine_client_id(ev.id, trace);
        self.open[self.n_open] = Order {
            id: ev.id,
            client_id,
            trace,
            symbol: ev.symbol,
            side: ev.side,
            kind: ev.kind,
            tif: ev.tif,
            px: ev.px,
            qty: ev.qty,
            decision_px: ev.decision_px,
            sent_ns: ev.ts_ns,
            updated_ns: ev.ts_ns,
            strategies: ev.strategies,
            shares,
            reduce_only: ev.reduce_only,
            ..Order::EMPTY
        };
        self.ids[self.n_open] = ev.id.0;
        self.n_open += 1;
        self.stats.orders += 1;
        Ok(client_id)
    }

    /// The error for an operation on `id`, which is not open: an illegal transition if it is
    /// finished (still in the history), else unknown. Counted.
    fn not_open(&mut self, id: OrderId, to: OrderStatus) -> OrderError {
        let finished = self.history().find(|o| o.id == id).map(|o| o.status);
        match finished {
            Some(from) => {
                self.stats.illegal += 1;
                OrderError::Illegal { from, to }
            }
            None => {
                self.stats.unknown += 1;
                OrderError::Unknown
            }
        }
    }

    fn illegal(&mut self, from: OrderStatus, to: OrderStatus) -> OrderError {
        self.stats.illegal += 1;
        OrderError::Illegal { from, to }
    }

    /// The venue acknowledged the order: `PendingNew → New`.
    pub fn ack(&mut self, id: OrderId, ts_ns: u64) -> Result<Order, OrderError> {
        let Some(i) = self.find_open(id) else { return Err(self.not_open(id, OrderStatus::New)) };
        let from = self.open[i].status;
        if !is_legal(from, OrderStatus::New) {
            return Err(self.illegal(from, OrderStatus::New));
        }
        let o = &mut self.open[i];
        o.status = OrderStatus::New;
        o.ack_ns = ts_ns;
        o.updated_ns = ts_ns;
        let latency = ts_ns.saturating_sub(o.sent_ns);
        let o = *o;
        self.stats.record_ack(latency);
        Ok(o)
    }

    /// A fill of `qty` at `px` with `fee`: `→ PartiallyFilled`, or `→ Filled` when nothing
    /// remains (the order then moves to the history). Returns the order after the fill.
    pub fn fill(&mut self, id: OrderId, px: Px, qty: Qty, fee: Amount, ts_ns: u64) -> Result<Order, OrderError> {
        let Some(i) = self.find_open(id) else { return Err(self.not_open(id, OrderStatus::PartiallyFilled)) };
        if qty.raw() <= 0 || px.raw() <= 0 {
            self.stats.invalid += 1;
            return Err(OrderError::Invalid);
        }
        let o = self.open[i];
        // Both are in 0..=qty, so the difference cannot overflow.
        if qty.raw() > o.qty.raw() - o.filled.raw() {
            self.stats.illegal += 1;
            return Err(OrderError::Overfill);
        }
        let filled = Qty(o.filled.raw() + qty.raw());
        let to = if filled == o.qty { OrderStatus::Filled } else { OrderStatus::PartiallyFilled };
        // A fill on a pending order acknowledges it (PendingNew → New → to).
        let from = if o.status == OrderStatus::PendingNew { OrderStatus::New } else { o.status };
        if !is_legal(from, to) {
            return Err(self.illegal(o.status, to));
        }
        if o.status == OrderStatus::PendingNew {
            self.open[i].ack_ns = ts_ns;
            self.stats.record_ack(ts_ns.saturating_sub(o.sent_ns));
        }
        let notional = Amount::notional(px, qty);
        let o = &mut self.open[i];
        o.filled = filled;
        o.cum_quote = Amount(o.cum_quote.raw().saturating_add(notional.raw()));
        o.fees = Amount(o.fees.raw().saturating_add(fee.raw()));
        o.status = to;
        o.updated_ns = ts_ns;
        let o = *o;
        let st = &mut self.stats;
        st.fills += 1;
        if o.decision_px.raw() > 0 {
            let d = o.decision_px.raw() as i128;
            let slip = (px.raw() as i128 - d) * qty.raw() as i128 * o.side.sign() as i128;
            st.slippage_num = st.slippage_num.saturating_add(slip);
            st.slippage_den = st.slippage_den.saturating_add(d * qty.raw() as i128);
        }
        if to.is_final() {
            self.finish(i);
        }
        Ok(o)
    }

    /// A final state other than `Filled`: `Canceled`, `Expired` or `Rejected` (with the venue's
    /// code). Moves the order to the history and returns it.
    pub fn close(&mut self, id: OrderId, to: OrderStatus, venue_code: i32, ts_ns: u64) -> Result<Order, OrderError> {
        let Some(i) = self.find_open(id) else { return Err(self.not_open(id, to)) };
        let from = self.open[i].status;
        if to == OrderStatus::Filled || !is_legal(from, to) {
            return Err(self.illegal(from, to));
        }
        // A venue's rejection or expiry of a pending order is its first answer; a cancel of a
        // pending order may be local (never sent), so it does not count as one.
        if from == OrderStatus::PendingNew && matches!(to, OrderStatus::Rejected | OrderStatus::Expired) {
            let sent = self.open[i].sent_ns;
            self.open[i].ack_ns = ts_ns;
            self.stats.record_ack(ts_ns.saturating_sub(sent));
        }
        let o = &mut self.open[i];
        o.status = to;
        o.venue_code = venue_code;
        o.updated_ns = ts_ns;
        o.cancel_requested = false;
        let o = *o;
        self.finish(i);
        Ok(o)
    }

    /// Notes that a cancel was sent for an open order (so cancel-all does not send it twice).
    pub fn request_cancel(&mut self, id: OrderId) -> Result<(), OrderError> {
        let Some(i) = self.find_open(id) else { return Err(self.not_open(id, OrderStatus::Canceled)) };
        self.open[i].cancel_requested = true;
        Ok(())
    }

    /// The venue refused a cancel (the order had just filled or expired): clears the flag.
    /// Returns whether the order is still open.
    pub fn cancel_rejected(&mut self, id: OrderId) -> bool {
        match self.find_open(id) {
            Some(i) => {
                self.open[i].cancel_requested = false;
                true
            }
            None => false,
        }
    }

    /// Moves open order `i` (now final) to the history and counts it.
    fn finish(&mut self, i: usize) {
        let o = self.open[i];
        let last = self.n_open - 1;
        self.open[i] = self.open[last];
        self.ids[i] = self.ids[last];
        self.n_open = last;
        let st = &mut self.stats;
        match o.status {
            OrderStatus::Filled => st.filled_orders += 1,
            OrderStatus::Canceled => st.canceled += 1,
            OrderStatus::Rejected => st.rejected += 1,
            OrderStatus::Expired => st.expired += 1,
            _ => {}
        }
        st.ordered_qty = st.ordered_qty.saturating_add(o.qty.raw() as i128);
        st.filled_qty = st.filled_qty.saturating_add(o.filled.raw() as i128);
        let cap = self.history.len();
        if cap > 0 {
            self.history[self.head] = o;
            self.head = (self.head + 1) % cap;
            self.n_hist = (self.n_hist + 1).min(cap);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn px(s: &str) -> Px {
        Px::parse(s).unwrap()
    }
    fn qty(s: &str) -> Qty {
        Qty::parse(s).unwrap()
    }

    fn ev(id: u64, side: Side, q: &str, decision: &str, ts: u64) -> OrderEvent {
        OrderEvent {
            id: OrderId(id),
            symbol: SymbolId(0),
            side,
            kind: OrderKind::Limit,
            tif: TimeInForce::Gtc,
            px: px(decision),
            qty: qty(q),
            decision_px: px(decision),
            frame_ts_ns: ts,
            ts_ns: ts,
            tick_to_order_ns: 0,
            strategies: 1,
            reduce_only: false,
        }
    }

    /// Binance's `^[.A-Z:/a-z0-9_-]{1,36}$`, written out character class by character class.
    fn binance_regex(s: &str) -> bool {
        let ok = |c: char| {
            c == '.'
                || c.is_ascii_uppercase()
                || c == ':'
                || c == '/'
                || c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || c == '_'
                || c == '-'
        };
        (1..=36).contains(&s.chars().count()) && s.chars().all(ok)
    }

    #[test]
    fn client_id_examples() {
        assert_eq!(engine_client_id(OrderId(1), 0).as_str(), "h1t0");
        assert_eq!(engine_client_id(OrderId(255), 0xabc).as_str(), "hfftabc");
        let max = engine_client_id(OrderId(u64::MAX), u64::MAX);
        assert_eq!(max.as_str(), "hfffffffffffffffftffffffffffffffff");
        assert_eq!(max.as_bytes().len(), 34);
        assert_eq!(parse_client_id(max.as_bytes()), Some((OrderId(u64::MAX), u64::MAX)));
    }

    #[test]
    fn client_id_parse_refuses_what_format_never_writes() {
        for bad in [
            "",
            "h",
            "ht",
            "h1t",
            "ht1",
            "x1t1",
            "h01t1",
            "h1t01",
            "h1T1",
            "H1t1",
            "h1t1t",
            "hAt1",
            "h1tg",
            "h1 t1",
            "h10000000000000000t1",
            "web_kxj3ks",
            "h-1t1",
        ] {
            assert_eq!(parse_client_id(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(parse_client_id(b"h0t0"), Some((OrderId(0), 0)));
        assert_eq!(parse_client_id(b"h10t1f"), Some((OrderId(16), 31)));
    }

    #[test]
    fn client_id_validity_follows_binance() {
        assert!(is_valid_client_id(b"web_a.b:c/D-9"));
        assert!(!is_valid_client_id(b""));
        assert!(!is_valid_client_id(&[b'a'; 37]));
        assert!(is_valid_client_id(&[b'a'; 36]));
        assert!(!is_valid_client_id(b"a b"));
        assert!(!is_valid_client_id(b"a+b"));
        assert_eq!(ClientId::new(b"web_x").unwrap().as_str(), "web_x");
        assert_eq!(ClientId::new(b"web x"), None);
        assert_eq!(parse_client_id(ClientId::new(b"web_x").unwrap().as_bytes()), None);
    }

    proptest! {
        #[test]
        fn client_id_roundtrips_and_matches_binance(id in any::<u64>(), trace in any::<u64>()) {
            let mut buf = [0u8; CLIENT_ID_MAX];
            let n = format_client_id(OrderId(id), trace, &mut buf);
            let s = core::str::from_utf8(&buf[..n]).unwrap();
            prop_assert!(binance_regex(s), "{}", s);
            prop_assert!(is_valid_client_id(s.as_bytes()));
            prop_assert_eq!(parse_client_id(s.as_bytes()), Some((OrderId(id), trace)));
            let c = engine_client_id(OrderId(id), trace);
            prop_assert_eq!(c.as_str(), s);
            prop_assert_eq!(s, format!("h{id:x}t{trace:x}"));
        }

        #[test]
        fn client_id_parse_never_panics_and_is_canonical(s in "[.A-Za-z0-9:/_-]{0,40}") {
            if let Some((id, trace)) = parse_client_id(s.as_bytes()) {
                let c = engine_client_id(id, trace);
                prop_assert_eq!(c.as_str(), s.as_str());
            }
        }
    }

    #[test]
    fn lifecycle_new_partial_filled() {
        let mut t = OrderTable::new(4, 8);
        let c = t.insert(&ev(7, Side::Buy, "2", "100", 1_000), 0x55, [1_000_000, 0, 0, 0]).unwrap();
        assert_eq!(c.as_str(), "h7t55");
        assert_eq!(t.open_count(), 1);
        assert_eq!(t.get_by_client_id(b"h7t55").unwrap().id, OrderId(7));
        assert_eq!(t.get_by_client_id(b"h7t56"), None, "same order id, other trace: not ours");
        assert_eq!(t.get(OrderId(7)).unwrap().status, OrderStatus::PendingNew);
        assert_eq!(t.ack(OrderId(7), 1_400).unwrap().status, OrderStatus::New);
        let o = t.fill(OrderId(7), px("100"), qty("0.5"), Amount::ZERO, 2_000).unwrap();
        assert_eq!((o.status, o.filled), (OrderStatus::PartiallyFilled, qty("0.5")));
        let o = t.fill(OrderId(7), px("101"), qty("0.5"), Amount::ZERO, 2_100).unwrap();
        assert_eq!((o.status, o.filled), (OrderStatus::PartiallyFilled, qty("1")));
        let o = t.fill(OrderId(7), px("102"), qty("1"), Amount(5), 2_200).unwrap();
        assert_eq!((o.status, o.filled, o.fees), (OrderStatus::Filled, qty("2"), Amount(5)));
        // 0.5 × 100 + 0.5 × 101 + 1 × 102 = 202.5; average 101.25.
        assert_eq!(o.cum_quote.to_string(), "202.5");
        assert_eq!(o.avg_px(), Some(px("101.25")));
        assert_eq!(o.update().status, OrderStatus::Filled);
        assert_eq!(t.open_count(), 0);
        let h = t.get(OrderId(7)).unwrap();
        assert_eq!((h.status, h.ack_ns, h.updated_ns), (OrderStatus::Filled, 1_400, 2_200));
        assert_eq!(t.get_by_client_id(b"h7t55").unwrap().status, OrderStatus::Filled);
        assert_eq!(t.stats().illegal, 0);
    }

    #[test]
    fn a_fill_on_a_pending_order_implies_its_acknowledgement() {
        let mut t = OrderTable::new(4, 8);
        t.insert(&ev(1, Side::Buy, "1", "100", 1_000), 0, [0; 4]).unwrap();
        let o = t.fill(OrderId(1), px("100"), qty("1"), Amount::ZERO, 1_300).unwrap();
        assert_eq!((o.status, o.ack_ns), (OrderStatus::Filled, 1_300));
        assert_eq!((t.stats().ack_count, t.stats().ack_sum_ns), (1, 300));
        // Its late acknowledgement is then illegal (the gateway should drop duplicates).
        assert_eq!(
            t.ack(OrderId(1), 1_400),
            Err(OrderError::Illegal { from: OrderStatus::Filled, to: OrderStatus::New })
        );
    }

    #[test]
    fn illegal_transitions_are_refused_counted_and_change_nothing() {
        let mut t = OrderTable::new(4, 8);
        t.insert(&ev(1, Side::Buy, "1", "100", 0), 0, [0; 4]).unwrap();
        t.ack(OrderId(1), 10).unwrap();
        let before = *t.get(OrderId(1)).unwrap();
        let e = |from, to| Err(OrderError::Illegal { from, to });
        // New → Rejected is not legal; nor a second acknowledgement; nor "close as Filled".
        assert_eq!(t.close(OrderId(1), OrderStatus::Rejected, -2010, 20), e(OrderStatus::New, OrderStatus::Rejected));
        assert_eq!(t.ack(OrderId(1), 20), e(OrderStatus::New, OrderStatus::New));
        assert_eq!(t.close(OrderId(1), OrderStatus::Filled, 0, 20), e(OrderStatus::New, OrderStatus::Filled));
        assert_eq!(t.close(OrderId(1), OrderStatus::New, 0, 20), e(OrderStatus::New, OrderStatus::New));
        assert_eq!(t.close(OrderId(1), OrderStatus::PendingNew, 0, 20), e(OrderStatus::New, OrderStatus::PendingNew));
        // Overfill.
        assert_eq!(t.fill(OrderId(1), px("100"), qty("1.00000001"), Amount::ZERO, 20), Err(OrderError::Overfill));
        // Nonsense fills.
        assert_eq!(t.fill(OrderId(1), px("100"), Qty::ZERO, Amount::ZERO, 20), Err(OrderError::Invalid));
        assert_eq!(t.fill(OrderId(1), Px(-1), qty("1"), Amount::ZERO, 20), Err(OrderError::Invalid));
        assert_eq!(*t.get(OrderId(1)).unwrap(), before, "refusals change nothing");
        assert_eq!(t.stats().illegal, 6);
        assert_eq!(t.stats().invalid, 2);
        // Final: nothing more.
        t.close(OrderId(1), OrderStatus::Canceled, 0, 30).unwrap();
        assert_eq!(
            t.fill(OrderId(1), px("100"), qty("0.1"), Amount::ZERO, 40),
            e(OrderStatus::Canceled, OrderStatus::PartiallyFilled)
        );
        assert_eq!(t.close(OrderId(1), OrderStatus::Expired, 0, 40), e(OrderStatus::Canceled, OrderStatus::Expired));
        assert_eq!(t.ack(OrderId(1), 40), e(OrderStatus::Canceled, OrderStatus::New));
        assert_eq!(t.stats().illegal, 9);
        assert_eq!(t.ack(OrderId(99), 40), Err(OrderError::Unknown));
        assert_eq!(t.stats().unknown, 1);
        // PendingNew → Rejected is legal.
        t.insert(&ev(2, Side::Sell, "1", "100", 0), 0, [0; 4]).unwrap();
        let o = t.close(OrderId(2), OrderStatus::Rejected, -2010, 50).unwrap();
        assert_eq!((o.status, o.venue_code, o.update().venue_code), (OrderStatus::Rejected, -2010, -2010));
    }

    #[test]
    fn legal_transitions_are_exactly_the_state_machine() {
        use OrderStatus::*;
        let all = [PendingNew, New, PartiallyFilled, Filled, Canceled, Rejected, Expired];
        let legal = [
            (PendingNew, New),
            (PendingNew, Canceled),
            (PendingNew, Expired),
            (PendingNew, Rejected),
            (New, PartiallyFilled),
            (New, Filled),
            (New, Canceled),
            (New, Expired),
            (PartiallyFilled, PartiallyFilled),
            (PartiallyFilled, Filled),
            (PartiallyFilled, Canceled),
            (PartiallyFilled, Expired),
        ];
        for from in all {
            for to in all {
                assert_eq!(is_legal(from, to), legal.contains(&(from, to)), "{from:?} -> {to:?}");
            }
            if from.is_final() {
                assert!(all.iter().all(|&to| !is_legal(from, to)));
            }
        }
    }

    #[test]
    fn a_full_table_refuses_and_never_grows() {
        let mut t = OrderTable::new(2, 1);
        t.insert(&ev(1, Side::Buy, "1", "100", 0), 0, [0; 4]).unwrap();
        assert_eq!(t.insert(&ev(1, Side::Buy, "1", "100", 0), 0, [0; 4]), Err(OrderError::Duplicate));
        t.insert(&ev(2, Side::Buy, "1", "100", 0), 0, [0; 4]).unwrap();
        assert!(t.is_full());
        assert_eq!(t.insert(&ev(3, Side::Buy, "1", "100", 0), 0, [0; 4]), Err(OrderError::Full));
        assert_eq!((t.stats().refused_full, t.stats().duplicates, t.capacity()), (1, 1, 2));
        assert_eq!(t.insert(&ev(4, Side::Buy, "0", "100", 0), 0, [0; 4]), Err(OrderError::Invalid));
        t.close(OrderId(1), OrderStatus::Canceled, 0, 1).unwrap();
        t.insert(&ev(3, Side::Buy, "1", "100", 0), 0, [0; 4]).unwrap();
        let mut ids: Vec<u64> = t.open_orders().iter().map(|o| o.id.0).collect();
        ids.sort();
        assert_eq!(ids, vec![2, 3]);
        assert_eq!(t.open_count_for(SymbolId(0)), 2);
        assert_eq!(t.open_count_for(SymbolId(1)), 0);
        // A zero-capacity table refuses everything, without panicking.
        let mut z = OrderTable::new(0, 0);
        assert_eq!(z.insert(&ev(1, Side::Buy, "1", "100", 0), 0, [0; 4]), Err(OrderError::Full));
        assert_eq!(z.ack(OrderId(1), 0), Err(OrderError::Unknown));
    }

    #[test]
    fn history_keeps_the_newest_finished_orders() {
        let mut t = OrderTable::new(4, 2);
        for id in 1..=3 {
            t.insert(&ev(id, Side::Buy, "1", "100", 0), 0, [0; 4]).unwrap();
            t.close(OrderId(id), OrderStatus::Expired, 0, id).unwrap();
        }
        assert_eq!(t.history().map(|o| o.id.0).collect::<Vec<_>>(), vec![3, 2]);
        assert_eq!(t.get(OrderId(1)), None, "evicted");
        assert_eq!(t.get(OrderId(2)).unwrap().status, OrderStatus::Expired);
        // Refusal on an evicted order: unknown, not illegal.
        assert_eq!(t.ack(OrderId(1), 9), Err(OrderError::Unknown));
    }

    #[test]
    fn execution_statistics_by_hand() {
        let mut t = OrderTable::new(4, 4);
        // A: buy 2, decided at 100, sent at 1000, acked at 1500, filled 1 @ 100.1 and 1 @ 100.2.
        t.insert(&ev(1, Side::Buy, "2", "100", 1_000), 0, [0; 4]).unwrap();
        t.ack(OrderId(1), 1_500).unwrap();
        t.fill(OrderId(1), px("100.1"), qty("1"), Amount::ZERO, 1_600).unwrap();
        t.fill(OrderId(1), px("100.2"), qty("1"), Amount::ZERO, 1_700).unwrap();
        // B: sell 2, decided at 50, sent at 2000, acked at 2300, filled 1 @ 49.9, then canceled.
        t.insert(&ev(2, Side::Sell, "2", "50", 2_000), 0, [0; 4]).unwrap();
        t.ack(OrderId(2), 2_300).unwrap();
        t.fill(OrderId(2), px("49.9"), qty("1"), Amount::ZERO, 2_400).unwrap();
        t.close(OrderId(2), OrderStatus::Canceled, 0, 2_500).unwrap();
        // C: still open, does not count toward the fill rate.
        t.insert(&ev(3, Side::Sell, "5", "50", 3_000), 0, [0; 4]).unwrap();
        let s = *t.stats();
        // Fill rate: (2 + 1) / (2 + 2).
        assert_eq!((s.ordered_qty, s.filled_qty), (4 * 100_000_000, 3 * 100_000_000));
        assert_eq!(s.fill_rate(), Some(0.75));
        // Slippage: A (0.1 + 0.2) × 1 = 0.3 worse; B −(49.9 − 50) × 1 = 0.1 worse; over
        // 100 × 2 + 50 × 1 = 250 of decision value: 0.4 / 250 = 16 bps.
        assert_eq!(Amount(s.slippage_num).to_string(), "0.4");
        assert_eq!(Amount(s.slippage_den).to_string(), "250");
        assert!((s.slippage_bps().unwrap() - 16.0).abs() < 1e-9);
        // Acknowledgement latency: 500 and 300 ns.
        assert_eq!((s.ack_count, s.ack_sum_ns, s.ack_max_ns), (2, 800, 500));
        assert_eq!(s.ack_mean_ns(), Some(400.0));
        assert_eq!((s.orders, s.filled_orders, s.canceled, s.fills), (3, 1, 1, 3));
        // Better than the decision price: negative slippage.
        let mut t = OrderTable::new(1, 1);
        t.insert(&ev(1, Side::Buy, "1", "100", 0), 0, [0; 4]).unwrap();
        t.fill(OrderId(1), px("99"), qty("1"), Amount::ZERO, 1).unwrap();
        assert!((t.stats().slippage_bps().unwrap() + 100.0).abs() < 1e-9);
        assert_eq!(OrderTable::new(1, 1).stats().fill_rate(), None);
    }

    #[test]
    fn cancel_flags() {
        let mut t = OrderTable::new(2, 2);
        t.insert(&ev(1, Side::Buy, "1", "100", 0), 0, [0; 4]).unwrap();
        t.request_cancel(OrderId(1)).unwrap();
        assert!(t.get(OrderId(1)).unwrap().cancel_requested);
        assert!(t.cancel_rejected(OrderId(1)));
        assert!(!t.get(OrderId(1)).unwrap().cancel_requested);
        assert!(!t.cancel_rejected(OrderId(2)));
        assert_eq!(t.request_cancel(OrderId(2)), Err(OrderError::Unknown));
    }

    proptest! {
        /// Any sequence of operations: never a panic, filled never above qty, the open count
        /// matches the open statuses, and refusals leave the order unchanged.
        #[test]
        fn random_operations_keep_the_invariants(ops in proptest::collection::vec((0u8..5, 1u64..6, 0i64..300), 0..200)) {
            let mut t = OrderTable::new(3, 4);
            for (k, (op, id, q)) in ops.into_iter().enumerate() {
                let id = OrderId(id);
                let before = t.get_open(id).copied();
                let r = match op {
                    0 => t.insert(&ev(id.0, Side::Buy, "1", "100", k as u64), 0, [0; 4]).map(|_| ()),
                    1 => t.ack(id, k as u64).map(|_| ()),
                    2 => t.fill(id, px("100"), Qty(q * 1_000_000), Amount::ZERO, k as u64).map(|_| ()),
                    3 => t.close(id, OrderStatus::Canceled, 0, k as u64).map(|_| ()),
                    _ => t.close(id, OrderStatus::Rejected, -1, k as u64).map(|_| ()),
                };
                if r.is_err() && op != 0 {
                    prop_assert_eq!(t.get_open(id).copied(), before);
                }
                prop_assert!(t.open_count() <= t.capacity());
                for o in t.open_orders().iter().chain(t.history()) {
                    prop_assert!(o.filled.raw() >= 0 && o.filled <= o.qty);
                    prop_assert_eq!(o.is_open(), !o.status.is_final());
                }
                prop_assert!(t.open_orders().iter().all(|o| o.is_open()));
                prop_assert!(t.history().all(|o| !o.is_open()));
            }
        }
    }
}
