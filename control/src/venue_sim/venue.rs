//! The simulator as an exchange: one account (free and locked balances per asset), its orders,
//! their matching against the served market ([`super::matching`]), the order-rate limits, and
//! the user-data events each change produces (`executionReport`, `outboundAccountPosition`),
//! pushed to every connection subscribed to the user data stream.
//!
//! Accounting, in 1e-8 units: a BUY locks its quote (for a LIMIT order, price × quantity; for a
//! MARKET order, the cost of the fills it will get), a SELL its base quantity. Each fill moves the
//! traded amounts out of the lock and into the other asset; commission (taker rate on arrival,
//! maker rate when resting) is taken in the asset the trade pays out, as Binance does without BNB
//! fees — a buy receives the quantity less it, a sell the proceeds less it — or, with
//! [`FeeAsset::Quote`], in the quote asset on both sides (added to a buy's cost, and locked with
//! it). Costs and commissions round up and proceeds down at 1e-8. What is still locked when an
//! order ends returns to `free`.
//!
//! Symbols are split into base and quote by a known quote suffix ([`QUOTES`]); exchange filters
//! (PRICE_FILTER, LOT_SIZE, NOTIONAL) are the configuration's, for every symbol.
//!
//! Runs behind a mutex on the tokio runtime (WS-API tasks, the timeline); lock order: venue,
//! then books. Allocates freely.

use super::api::BinanceError;
use super::book::Books;
use super::matching::{self, Side, Want};
use super::wire::{Trade, dec8};
use axum::extract::ws::Utf8Bytes;
use axum::http::StatusCode;
use hft_shared::px::SCALE;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

/// Quote assets recognised at the end of a symbol, longest first where one ends another.
pub const QUOTES: &[&str] =
    &["FDUSD", "USDT", "USDC", "TUSD", "BUSD", "BTC", "ETH", "BNB", "EUR", "TRY", "BRL", "JPY", "GBP", "DAI"];

/// `(base, quote)` of a symbol such as `BTCUSDT`.
pub fn split_symbol(symbol: &str) -> Option<(&str, &str)> {
    QUOTES
        .iter()
        .find(|q| symbol.len() > q.len() && symbol.ends_with(*q))
        .map(|q| symbol.split_at(symbol.len() - q.len()))
}

/// Exchange filters, 1e-8 units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filters {
    /// PRICE_FILTER tickSize.
    pub tick: i64,
    /// LOT_SIZE stepSize, minQty, maxQty.
    pub step: i64,
    pub min_qty: i64,
    pub max_qty: i64,
    /// NOTIONAL minNotional, quote units.
    pub min_notional: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VenueConfig {
    pub filters: Filters,
    /// Commission rates, parts per 1e8 of notional (0.001 = 100_000).
    pub maker_e8: i64,
    pub taker_e8: i64,
    /// The asset commission is taken in.
    pub fee_asset: FeeAsset,
    /// ORDERS rate limits.
    pub orders_per_10s: u32,
    pub orders_per_day: u32,
    /// Starting balances, 1e-8 units.
    pub balances: Vec<(String, i64)>,
}

impl Default for VenueConfig {
    /// BTCUSDT's filters, 0.1 % commission, Binance's default order limits, 10000 USDT.
    fn default() -> Self {
        Self {
            filters: Filters {
                tick: 1_000_000,
                step: 1_000,
                min_qty: 1_000,
                max_qty: 9_000 * SCALE,
                min_notional: 5 * SCALE,
            },
            maker_e8: 100_000,
            taker_e8: 100_000,
            fee_asset: FeeAsset::Received,
            orders_per_10s: 100,
            orders_per_day: 200_000,
            balances: vec![("USDT".into(), 10_000 * SCALE)],
        }
    }
}

/// The asset a fill's commission is taken in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FeeAsset {
    /// The asset the trade pays out, as Binance does without BNB fees: a buy's commission in
    /// the base asset (the account receives the quantity less it), a sell's in the quote asset.
    Received,
    /// Always the quote asset: added to a buy's cost, taken from a sell's proceeds.
    Quote,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderType {
    Market,
    Limit,
    LimitMaker,
}

impl OrderType {
    pub const fn as_str(self) -> &'static str {
        match self {
            OrderType::Market => "MARKET",
            OrderType::Limit => "LIMIT",
            OrderType::LimitMaker => "LIMIT_MAKER",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tif {
    Gtc,
    Ioc,
    Fok,
}

impl Tif {
    pub const fn as_str(self) -> &'static str {
        match self {
            Tif::Gtc => "GTC",
            Tif::Ioc => "IOC",
            Tif::Fok => "FOK",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    New,
    PartiallyFilled,
    Filled,
    Canceled,
    Expired,
}

impl Status {
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::New => "NEW",
            Status::PartiallyFilled => "PARTIALLY_FILLED",
            Status::Filled => "FILLED",
            Status::Canceled => "CANCELED",
            Status::Expired => "EXPIRED",
        }
    }

    pub const fn is_final(self) -> bool {
        matches!(self, Status::Filled | Status::Canceled | Status::Expired)
    }
}

/// A validated `order.place`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    /// Upper case.
    pub symbol: String,
    pub side: Side,
    pub kind: OrderType,
    /// GTC for MARKET and LIMIT_MAKER.
    pub tif: Tif,
    /// 1e-8 units; 0 for MARKET.
    pub price: i64,
    /// `quantity`, or `quoteOrderQty` (MARKET only).
    pub want: Want,
    pub client_id: Option<String>,
}

/// An order as the venue keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: u64,
    pub client_id: String,
    pub symbol: String,
    pub base: String,
    pub quote: String,
    pub side: Side,
    pub kind: OrderType,
    pub tif: Tif,
    pub price: i64,
    /// For a `quoteOrderQty` MARKET order, what it executed (as Binance reports it).
    pub orig_qty: i64,
    pub orig_quote: i64,
    pub executed: i64,
    pub cum_quote: i128,
    pub status: Status,
    pub time_ms: u64,
    pub update_ms: u64,
    /// On the book.
    pub working: bool,
    /// Displayed quantity queued before it at its price (resting orders).
    ahead: i64,
    /// Opposite liquidity at or through its price it has taken and the book still shows.
    consumed: i64,
    /// What it still holds locked, in its lock asset (quote for a buy, base for a sell).
    lock: i128,
}

impl Order {
    fn lock_asset(&self) -> &str {
        if self.side.is_buy() { &self.quote } else { &self.base }
    }
}

/// One fill of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fill {
    pub px: i64,
    pub qty: i64,
    /// 1e-8 units of the quote asset, or of the base asset when `commission_in_base`.
    pub commission: i128,
    pub commission_in_base: bool,
    pub trade_id: u64,
    pub maker: bool,
}

/// ORDERS rate-limit usage after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrdersUsage {
    pub ten_s: u32,
    pub ten_s_limit: u32,
    pub day: u32,
    pub day_limit: u32,
}

/// Something the served market did that can fill resting orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarketEvent {
    Trade(Trade),
    /// The book (a diff) or its top (a ticker) changed.
    Book,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Balance {
    free: i128,
    locked: i128,
}

struct Subscriber {
    conn: u64,
    id: u32,
    tx: mpsc::Sender<Utf8Bytes>,
}

pub struct Venue {
    cfg: VenueConfig,
    balances: BTreeMap<String, Balance>,
    /// Open orders by id (time priority).
    open: BTreeMap<u64, Order>,
    /// The [`FINISHED_KEPT`] orders that finished last, by id, as `order.status` shows them
    /// (with the client id they were placed with), and their ids in the order they finished.
    finished: HashMap<u64, Order>,
    finish_order: VecDeque<u64>,
    next_order_id: u64,
    next_trade_id: u64,
    next_client_id: u64,
    /// `(10-s interval since the epoch, orders in it)`, and per UTC day.
    ten_s: (u64, u32),
    day: (u64, u32),
    subscribers: Vec<Subscriber>,
    update_ms: u64,
}

/// Finished orders kept for `order.status` (Binance keeps them far longer; a bound keeps a
/// long-running simulator's memory flat, and 1000 s at the default ORDERS limit is far more
/// than a reconnecting client needs).
pub const FINISHED_KEPT: usize = 10_000;

fn rejected(msg: &str) -> BinanceError {
    BinanceError::bad(-2010, msg)
}

fn filter_failure(filter: &str) -> BinanceError {
    BinanceError::bad(-1013, format!("Filter failure: {filter}"))
}

pub fn invalid_symbol() -> BinanceError {
    BinanceError::bad(-1121, "Invalid symbol.")
}

fn unknown_order() -> BinanceError {
    BinanceError::bad(-2011, "Unknown order sent.")
}

/// `order.status` of an order the venue does not know (never placed, or no longer kept).
pub fn no_such_order() -> BinanceError {
    BinanceError::bad(-2013, "Order does not exist.")
}

/// `px × qty`, 1e-8 quote units, rounded up.
fn notional_up(px: i64, qty: i64) -> i128 {
    let s = i128::from(SCALE);
    (i128::from(px) * i128::from(qty) + s - 1) / s
}

/// Commission on `notional` at `rate_e8`, rounded up.
fn commission(notional: i128, rate_e8: i64) -> i128 {
    let s = i128::from(SCALE);
    (notional * i128::from(rate_e8) + s - 1) / s
}

impl Venue {
    pub fn new(cfg: VenueConfig) -> Self {
        let balances =
            cfg.balances.iter().map(|(a, v)| (a.clone(), Balance { free: i128::from(*v), locked: 0 })).collect();
        Self {
            cfg,
            balances,
            open: BTreeMap::new(),
            finished: HashMap::new(),
            finish_order: VecDeque::new(),
            next_order_id: 1,
            next_trade_id: 1,
            next_client_id: 1,
            ten_s: (0, 0),
            day: (0, 0),
            subscribers: Vec::new(),
            update_ms: 0,
        }
    }

    pub fn config(&self) -> &VenueConfig {
        &self.cfg
    }

    /// Counts one new order against the ORDERS limits (fixed 10-s and UTC-day intervals, as
    /// Binance counts); over a limit it is refused (429, -1015) and not counted.
    pub fn count_order(&mut self, now_ms: u64) -> Result<OrdersUsage, (BinanceError, OrdersUsage)> {
        let (w, d) = (now_ms / 10_000, now_ms / 86_400_000);
        if self.ten_s.0 != w {
            self.ten_s = (w, 0);
        }
        if self.day.0 != d {
            self.day = (d, 0);
        }
        let usage = |s: &Self| OrdersUsage {
            ten_s: s.ten_s.1,
            ten_s_limit: s.cfg.orders_per_10s,
            day: s.day.1,
            day_limit: s.cfg.orders_per_day,
        };
        let over = if self.ten_s.1 >= self.cfg.orders_per_10s {
            Some((self.cfg.orders_per_10s, "TEN_SECONDS"))
        } else if self.day.1 >= self.cfg.orders_per_day {
            Some((self.cfg.orders_per_day, "DAY"))
        } else {
            None
        };
        if let Some((limit, interval)) = over {
            let e = BinanceError {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: -1015,
                msg: format!("Too many new orders; current limit is {limit} orders per {interval}."),
            };
            return Err((e, usage(self)));
        }
        self.ten_s.1 += 1;
        self.day.1 += 1;
        Ok(usage(self))
    }

    fn generated_client_id(&mut self) -> String {
        let n = self.next_client_id;
        self.next_client_id += 1;
        format!("sim{n:019}")
    }

    fn balance(&mut self, asset: &str) -> &mut Balance {
        self.balances.entry(asset.to_owned()).or_default()
    }

    /// Takes `qty` (> 0, 1e-8 units) of `asset`'s free balance out of the account — a
    /// withdrawal, or a transfer to another account — and reports the new balance on the
    /// user-data stream (`outboundAccountPosition`), as Binance does. `false`, and nothing
    /// moves, when the free balance is short of it.
    pub fn withdraw(&mut self, asset: &str, qty: i128, now_ms: u64) -> bool {
        let b = self.balance(asset);
        if qty <= 0 || b.free < qty {
            return false;
        }
        b.free -= qty;
        self.account_position(&[asset], now_ms);
        true
    }

    /// `(asset, free, locked)` of every asset the account has held.
    pub fn balances(&self) -> impl Iterator<Item = (&str, i128, i128)> + '_ {
        self.balances.iter().map(|(a, b)| (a.as_str(), b.free, b.locked))
    }

    /// Open orders of `symbol` (all with `None`), oldest first.
    pub fn open_orders<'a>(&'a self, symbol: Option<&'a str>) -> impl Iterator<Item = &'a Order> + 'a {
        self.open.values().filter(move |o| symbol.is_none_or(|s| o.symbol == s))
    }

    pub fn update_ms(&self) -> u64 {
        self.update_ms
    }

    /// An order of `symbol`, open or finished, by id or client id (both: they must name the
    /// same order); by client id, an open order first, then the one that finished last.
    pub fn order(&self, symbol: &str, order_id: Option<u64>, client_id: Option<&str>) -> Option<&Order> {
        let named = |o: &&Order| o.symbol == symbol && client_id.is_none_or(|c| o.client_id == c);
        match order_id {
            Some(id) => self.open.get(&id).or_else(|| self.finished.get(&id)).filter(named),
            None if client_id.is_some() => self
                .open
                .values()
                .find(named)
                .or_else(|| self.finish_order.iter().rev().filter_map(|id| self.finished.get(id)).find(named)),
            None => None,
        }
    }

    /// Keeps a finished order for `order.status`, forgetting the one that finished first beyond
    /// [`FINISHED_KEPT`].
    fn finish(&mut self, o: Order) {
        self.finish_order.push_back(o.id);
        self.finished.insert(o.id, o);
        while self.finish_order.len() > FINISHED_KEPT {
            if let Some(id) = self.finish_order.pop_front() {
                self.finished.remove(&id);
            }
        }
    }

    /// Places an order: validates it against the filters, the account and the served book,
    /// fills what it takes on arrival, then rests, expires or is done. Returns the order as it
    /// stands after arrival and its fills.
    pub fn place(&mut self, req: NewOrder, books: &Books, now_ms: u64) -> Result<(Order, Vec<Fill>), BinanceError> {
        let sym = req.symbol.as_str();
        let (base, quote) = split_symbol(sym).filter(|_| books.knows(sym)).ok_or_else(invalid_symbol)?;
        let f = self.cfg.filters;
        let limit = (req.kind != OrderType::Market).then_some(req.price);
        if limit.is_some_and(|px| px <= 0 || px % f.tick != 0) {
            return Err(filter_failure("PRICE_FILTER"));
        }
        if let Want::Base(q) = req.want
            && (q < f.min_qty || q > f.max_qty || (q - f.min_qty) % f.step != 0)
        {
            return Err(filter_failure("LOT_SIZE"));
        }
        let buy = req.side.is_buy();
        // A buy takes from the asks, a sell from the bids.
        let best_contra = books.levels(sym, !buy).next().map(|(px, _)| px);
        let est_notional = match (limit, req.want) {
            (_, Want::Quote(q)) => Some(i128::from(q)),
            (Some(px), Want::Base(q)) => Some(matching::notional(px, q)),
            (None, Want::Base(q)) => best_contra.map(|px| matching::notional(px, q)),
        };
        if est_notional.is_some_and(|n| n < i128::from(f.min_notional)) {
            return Err(filter_failure("NOTIONAL"));
        }
        if let Some(c) = &req.client_id
            && self.open.values().any(|o| o.client_id == *c)
        {
            return Err(rejected("Duplicate order sent."));
        }
        let crosses = limit.is_none_or(|px| best_contra.is_some_and(|c| req.side.reaches(c, px)));
        if req.kind == OrderType::LimitMaker && crosses {
            return Err(rejected("Order would immediately match and take."));
        }
        let mut fills = if crosses {
            matching::take(books.levels(sym, !buy), req.side, limit, req.want, f.step)
        } else {
            Vec::new()
        };
        let fill_qty: i64 = fills.iter().map(|&(_, q)| q).sum();
        let orig_qty = match req.want {
            Want::Base(q) => q,
            Want::Quote(_) => fill_qty,
        };
        if req.tif == Tif::Fok && fill_qty < orig_qty {
            fills.clear();
        }
        // A buy's commission in the quote asset is locked with its cost; in the base asset it
        // comes out of what the buy receives.
        let (taker, quote_fee) = (self.cfg.taker_e8, self.cfg.fee_asset == FeeAsset::Quote);
        let fee_on = |n: i128, rate: i64| if quote_fee { commission(n, rate) } else { 0 };
        let need = match (buy, limit) {
            (true, Some(px)) => {
                let n = notional_up(px, orig_qty);
                n + fee_on(n, self.cfg.maker_e8.max(taker))
            }
            (true, None) => fills.iter().map(|&(px, q)| notional_up(px, q) + fee_on(notional_up(px, q), taker)).sum(),
            (false, _) => i128::from(orig_qty),
        };
        let lock_asset = if buy { quote } else { base };
        if self.balances.get(lock_asset).map_or(0, |b| b.free) < need {
            return Err(rejected("Account has insufficient balance for requested action."));
        }

        let client_id = match req.client_id {
            Some(c) => c,
            None => self.generated_client_id(),
        };
        let id = self.next_order_id;
        self.next_order_id += 1;
        let b = self.balance(lock_asset);
        b.free -= need;
        b.locked += need;
        let mut o = Order {
            id,
            client_id,
            symbol: req.symbol.clone(),
            base: base.to_owned(),
            quote: quote.to_owned(),
            side: req.side,
            kind: req.kind,
            tif: req.tif,
            price: limit.unwrap_or(0),
            orig_qty,
            orig_quote: match req.want {
                Want::Quote(q) => q,
                Want::Base(_) => 0,
            },
            executed: 0,
            cum_quote: 0,
            status: Status::New,
            time_ms: now_ms,
            update_ms: now_ms,
            working: false,
            ahead: 0,
            consumed: 0,
            lock: need,
        };
        self.report(&o, "NEW", None, None, now_ms);
        let mut done = Vec::with_capacity(fills.len());
        for (px, qty) in fills {
            let fill = self.apply_fill(&mut o, px, qty, false, now_ms);
            self.report(&o, "TRADE", Some(&fill), None, now_ms);
            done.push(fill);
        }
        if o.executed < o.orig_qty || o.orig_qty == 0 {
            let rests = req.kind == OrderType::LimitMaker || (req.kind == OrderType::Limit && req.tif == Tif::Gtc);
            if rests {
                o.working = true;
                o.ahead = matching::displayed_at(books.levels(sym, buy), buy, o.price);
                o.consumed = o.executed;
            } else {
                o.status = Status::Expired;
                self.report(&o, "EXPIRED", None, None, now_ms);
            }
        }
        if o.status.is_final() {
            self.release(&mut o);
            self.finish(o.clone());
        } else {
            self.open.insert(o.id, o.clone());
        }
        self.account_position(&[base, quote], now_ms);
        Ok((o, done))
    }

    /// Cancels an open order of `symbol` by id or client id (both: they must name the same
    /// order). Returns the canceled order (its `client_id` now the cancel's) and the client id
    /// it had.
    pub fn cancel(
        &mut self,
        symbol: &str,
        order_id: Option<u64>,
        orig_client_id: Option<&str>,
        new_client_id: Option<String>,
        now_ms: u64,
    ) -> Result<(Order, String), BinanceError> {
        let id = match (order_id, orig_client_id) {
            (Some(id), c) => {
                self.open.get(&id).filter(|o| o.symbol == symbol && c.is_none_or(|c| o.client_id == c)).map(|o| o.id)
            }
            (None, Some(c)) => self.open.values().find(|o| o.symbol == symbol && o.client_id == c).map(|o| o.id),
            (None, None) => None,
        };
        let mut o = id.and_then(|id| self.open.remove(&id)).ok_or_else(unknown_order)?;
        let cancel_id = match new_client_id {
            Some(c) => c,
            None => self.generated_client_id(),
        };
        o.status = Status::Canceled;
        o.working = false;
        o.update_ms = now_ms;
        self.release(&mut o);
        self.finish(o.clone());
        let orig = std::mem::replace(&mut o.client_id, cancel_id);
        self.report(&o, "CANCELED", None, Some(&orig), now_ms);
        let (base, quote) = (o.base.clone(), o.quote.clone());
        self.account_position(&[&base, &quote], now_ms);
        Ok((o, orig))
    }

    /// Cancels every open order of `symbol`, oldest first; none open: -2011, as Binance.
    pub fn cancel_all(&mut self, symbol: &str, now_ms: u64) -> Result<Vec<(Order, String)>, BinanceError> {
        let ids: Vec<u64> = self.open_orders(Some(symbol)).map(|o| o.id).collect();
        if ids.is_empty() {
            return Err(unknown_order());
        }
        ids.into_iter().map(|id| self.cancel(symbol, Some(id), None, None, now_ms)).collect()
    }

    /// Fills resting orders of `symbol` after the served market did `ev` (the books already
    /// show it).
    pub fn on_market(&mut self, symbol: &str, ev: MarketEvent, books: &Books, now_ms: u64) {
        let ids: Vec<u64> = self.open_orders(Some(symbol)).map(|o| o.id).collect();
        let mut pool = match ev {
            MarketEvent::Trade(t) => t.qty,
            MarketEvent::Book => 0,
        };
        let mut filled = None;
        for id in ids {
            let Some(mut o) = self.open.remove(&id) else { continue };
            let remaining = o.orig_qty - o.executed;
            let qty = match &ev {
                MarketEvent::Trade(t) => matching::on_trade(o.side, o.price, remaining, &mut o.ahead, t, &mut pool),
                MarketEvent::Book => {
                    let own_bids = o.side.is_buy();
                    let displayed = matching::displayed_at(books.levels(symbol, own_bids), own_bids, o.price);
                    let crossing = matching::crossing(books.levels(symbol, !own_bids), o.side, o.price);
                    matching::on_book(remaining, &mut o.ahead, displayed, crossing, &mut o.consumed)
                }
            };
            if qty > 0 {
                let px = o.price;
                let fill = self.apply_fill(&mut o, px, qty, true, now_ms);
                self.report(&o, "TRADE", Some(&fill), None, now_ms);
                filled = Some((o.base.clone(), o.quote.clone()));
            }
            if o.status.is_final() {
                o.working = false;
                self.release(&mut o);
                self.finish(o);
            } else {
                self.open.insert(id, o);
            }
        }
        if let Some((base, quote)) = filled {
            self.account_position(&[&base, &quote], now_ms);
        }
    }

    /// Books one fill of `o`: balances, the order's totals and status, a trade id.
    fn apply_fill(&mut self, o: &mut Order, px: i64, qty: i64, maker: bool, now_ms: u64) -> Fill {
        let rate = if maker { self.cfg.maker_e8 } else { self.cfg.taker_e8 };
        let fee;
        let in_base = o.side.is_buy() && self.cfg.fee_asset == FeeAsset::Received;
        if o.side.is_buy() {
            let cost = notional_up(px, qty);
            // Out of what the buy receives, or on top of what it pays.
            fee = commission(if in_base { i128::from(qty) } else { cost }, rate);
            let (base_fee, quote_fee) = if in_base { (fee, 0) } else { (0, fee) };
            self.take_locked(&o.quote.clone(), &mut o.lock, cost + quote_fee);
            self.balance(&o.base.clone()).free += i128::from(qty) - base_fee;
        } else {
            let proceeds = matching::notional(px, qty);
            fee = commission(proceeds, rate);
            self.take_locked(&o.base.clone(), &mut o.lock, i128::from(qty));
            self.balance(&o.quote.clone()).free += proceeds - fee;
        }
        o.executed += qty;
        o.cum_quote += matching::notional(px, qty);
        o.update_ms = now_ms;
        o.status = if o.executed >= o.orig_qty { Status::Filled } else { Status::PartiallyFilled };
        o.working &= o.status == Status::PartiallyFilled;
        let trade_id = self.next_trade_id;
        self.next_trade_id += 1;
        Fill { px, qty, commission: fee, commission_in_base: in_base, trade_id, maker }
    }

    /// Spends `amount` of `asset` from an order's lock (any shortfall, a rounding remainder,
    /// from `free`).
    fn take_locked(&mut self, asset: &str, lock: &mut i128, amount: i128) {
        let from_lock = amount.min(*lock).max(0);
        *lock -= from_lock;
        let b = self.balance(asset);
        b.locked -= from_lock;
        b.free -= amount - from_lock;
    }

    /// Returns what an order still holds locked.
    fn release(&mut self, o: &mut Order) {
        let lock = std::mem::take(&mut o.lock);
        let asset = o.lock_asset().to_owned();
        let b = self.balance(&asset);
        b.locked -= lock;
        b.free += lock;
    }

    /// Adds a user-data subscription of connection `conn`.
    pub fn subscribe(&mut self, conn: u64, id: u32, tx: mpsc::Sender<Utf8Bytes>) {
        self.subscribers.push(Subscriber { conn, id, tx });
    }

    /// Ends every user-data subscription of connection `conn`.
    pub fn unsubscribe(&mut self, conn: u64) {
        self.subscribers.retain(|s| s.conn != conn);
    }

    /// Sends `event` to every subscription. A connection that does not keep up loses its
    /// subscription (and, its channel closed, is disconnected by its task).
    fn emit(&mut self, event: &Value) {
        let text = event.to_string();
        self.subscribers.retain(|s| {
            let msg = format!(r#"{{"subscriptionId":{},"event":{text}}}"#, s.id);
            match s.tx.try_send(Utf8Bytes::from(msg)) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    tracing::warn!(conn = s.conn, "a user-data subscriber fell behind; dropping its subscription");
                    false
                }
                Err(TrySendError::Closed(_)) => false,
            }
        });
    }

    /// An `executionReport` of `o` (Binance's fields), after a fill when `fill` is given.
    fn report(&mut self, o: &Order, exec: &str, fill: Option<&Fill>, orig_client_id: Option<&str>, now_ms: u64) {
        if self.subscribers.is_empty() {
            return;
        }
        let (last_px, last_qty) = fill.map_or((0, 0), |f| (f.px, f.qty));
        let event = json!({
            "e": "executionReport",
            "E": now_ms,
            "s": o.symbol,
            "c": o.client_id,
            "S": o.side.as_str(),
            "o": o.kind.as_str(),
            "f": o.tif.as_str(),
            "q": dec8(o.orig_qty.into()),
            "p": dec8(o.price.into()),
            "P": "0.00000000",
            "F": "0.00000000",
            "g": -1,
            "C": orig_client_id.unwrap_or(""),
            "x": exec,
            "X": o.status.as_str(),
            "r": "NONE",
            "i": o.id,
            "l": dec8(last_qty.into()),
            "z": dec8(o.executed.into()),
            "L": dec8(last_px.into()),
            "n": dec8(fill.map_or(0, |f| f.commission)),
            "N": fill.map(|f| if f.commission_in_base { o.base.as_str() } else { o.quote.as_str() }),
            "T": now_ms,
            "t": fill.map_or(-1, |f| f.trade_id as i64),
            "w": o.working,
            "m": fill.is_some_and(|f| f.maker),
            "M": false,
            "O": o.time_ms,
            "Z": dec8(o.cum_quote),
            "Y": dec8(fill.map_or(0, |f| matching::notional(f.px, f.qty))),
            "Q": dec8(o.orig_quote.into()),
            "W": o.time_ms,
            "V": "NONE",
        });
        self.emit(&event);
    }

    /// An `outboundAccountPosition` of `assets`.
    fn account_position(&mut self, assets: &[&str], now_ms: u64) {
        self.update_ms = now_ms;
        if self.subscribers.is_empty() {
            return;
        }
        let b: Vec<Value> = assets
            .iter()
            .map(|a| {
                let bal = self.balances.get(*a).copied().unwrap_or_default();
                json!({"a": a, "f": dec8(bal.free), "l": dec8(bal.locked)})
            })
            .collect();
        let event = json!({"e": "outboundAccountPosition", "E": now_ms, "u": now_ms, "B": b});
        self.emit(&event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::venue_sim::wire::{Snapshot, Ticker};

    const P: i64 = SCALE;

    /// A BTCUSDT book: bids 99 (1), 98 (2); asks 101 (1.5), 102 (5).
    fn books() -> Books {
        let mut b = Books::default();
        b.init(
            "BTCUSDT",
            &Snapshot {
                last_update_id: 10,
                bids: vec![(99 * P, P), (98 * P, 2 * P)],
                asks: vec![(101 * P, 3 * P / 2), (102 * P, 5 * P)],
            },
        );
        b
    }

    /// Commission in the quote asset for both sides (the accounting below is in USDT).
    fn venue() -> Venue {
        let mut cfg = VenueConfig { fee_asset: FeeAsset::Quote, ..VenueConfig::default() };
        cfg.balances.push(("BTC".into(), 2 * P));
        Venue::new(cfg)
    }

    fn order(side: Side, kind: OrderType, tif: Tif, price: i64, want: Want) -> NewOrder {
        NewOrder { symbol: "BTCUSDT".into(), side, kind, tif, price, want, client_id: None }
    }

    fn bal(v: &Venue, asset: &str) -> (i128, i128) {
        v.balances().find(|(a, _, _)| *a == asset).map_or((0, 0), |(_, f, l)| (f, l))
    }

    #[test]
    fn symbols_split_by_quote_suffix() {
        assert_eq!(split_symbol("BTCUSDT"), Some(("BTC", "USDT")));
        assert_eq!(split_symbol("ETHBTC"), Some(("ETH", "BTC")));
        assert_eq!(split_symbol("BTCFDUSD"), Some(("BTC", "FDUSD")));
        assert_eq!(split_symbol("USDT"), None);
        assert_eq!(split_symbol("XYZABC"), None);
    }

    /// A withdrawal takes free funds only, and subscribers hear of the new balance.
    #[test]
    fn withdraw_moves_free_funds_out_and_reports_the_balance() {
        let mut v = venue();
        let (tx, mut rx) = mpsc::channel(8);
        v.subscribe(1, 7, tx);
        assert!(!v.withdraw("BTC", i128::from(2 * P + 1), 5), "more than the free balance");
        assert!(!v.withdraw("BTC", 0, 5));
        assert!(rx.try_recv().is_err(), "a refused withdrawal reports nothing");
        assert!(v.withdraw("BTC", i128::from(P / 2), 5));
        assert_eq!(bal(&v, "BTC"), (i128::from(3 * P / 2), 0));
        let event: Value = serde_json::from_str(rx.try_recv().expect("an event").as_str()).expect("json");
        assert_eq!(event["event"]["e"], "outboundAccountPosition", "{event}");
        assert_eq!(event["event"]["B"][0], json!({"a": "BTC", "f": "1.50000000", "l": "0.00000000"}), "{event}");
    }

    /// Binance's way: a buy receives the quantity less its commission, taken in the base asset
    /// (and locks no quote for it); a sell pays its commission out of the quote it receives.
    #[test]
    fn commission_is_taken_in_the_asset_the_trade_pays_out() {
        let b = books();
        let mut cfg = VenueConfig::default();
        cfg.balances.push(("BTC".into(), 2 * P));
        let mut v = Venue::new(cfg);
        let (_, fills) =
            v.place(order(Side::Buy, OrderType::Market, Tif::Gtc, 0, Want::Base(P)), &b, 1).expect("placed");
        assert_eq!(
            fills.iter().map(|f| (f.px, f.qty, f.commission, f.commission_in_base)).collect::<Vec<_>>(),
            [(101 * P, P, i128::from(P / 1000), true)]
        );
        assert_eq!(bal(&v, "BTC"), (3 * i128::from(P) - i128::from(P / 1000), 0), "1 BTC bought, 0.001 of it the fee");
        assert_eq!(bal(&v, "USDT"), (i128::from(10_000 * P - 101 * P), 0), "the cost alone");
        let (_, fills) =
            v.place(order(Side::Sell, OrderType::Market, Tif::Gtc, 0, Want::Base(P)), &b, 2).expect("placed");
        let proceeds: i128 = fills.iter().map(|f| matching::notional(f.px, f.qty)).sum();
        let fee: i128 = fills.iter().map(|f| f.commission).sum();
        assert!(fills.iter().all(|f| !f.commission_in_base) && fee > 0);
        assert_eq!(bal(&v, "USDT"), (i128::from(10_000 * P - 101 * P) + proceeds - fee, 0));
        assert_eq!(bal(&v, "BTC"), (2 * i128::from(P) - i128::from(P / 1000), 0));
    }

    #[test]
    fn a_market_buy_walks_the_book_and_pays_commission_in_quote() {
        let (mut v, b) = (venue(), books());
        let (o, fills) =
            v.place(order(Side::Buy, OrderType::Market, Tif::Gtc, 0, Want::Base(2 * P)), &b, 1).expect("placed");
        assert_eq!(o.status, Status::Filled);
        assert_eq!(fills.iter().map(|f| (f.px, f.qty)).collect::<Vec<_>>(), [(101 * P, 3 * P / 2), (102 * P, P / 2)]);
        // 151.5 + 51 = 202.5, commission 0.2025.
        assert_eq!(o.cum_quote, i128::from(2025 * P / 10));
        assert_eq!(fills.iter().map(|f| f.commission).sum::<i128>(), i128::from(2025 * P / 10_000));
        assert_eq!(bal(&v, "USDT"), (i128::from(10_000 * P) - 2025 * P as i128 / 10 - 2025 * P as i128 / 10_000, 0));
        assert_eq!(bal(&v, "BTC"), (4 * i128::from(P), 0));
        assert_eq!(v.open_orders(None).count(), 0);
        // More than the book holds: what there is, then EXPIRED.
        let (o, fills) = v
            .place(order(Side::Sell, OrderType::Market, Tif::Gtc, 0, Want::Base(3 * P + P / 2)), &b, 2)
            .expect("placed");
        assert_eq!((o.status, o.executed, fills.len()), (Status::Expired, 3 * P, 2));
        assert_eq!(bal(&v, "BTC"), (i128::from(P), 0), "the unfilled rest is unlocked");
        // quoteOrderQty: spend 50.5 → 0.5 at 101.
        let (o, _) = v
            .place(order(Side::Buy, OrderType::Market, Tif::Gtc, 0, Want::Quote(505 * P / 10)), &b, 3)
            .expect("placed");
        assert_eq!((o.status, o.orig_qty, o.executed, o.orig_quote), (Status::Filled, P / 2, P / 2, 505 * P / 10));
    }

    #[test]
    fn limit_orders_take_then_rest_expire_or_are_refused() {
        let (mut v, b) = (venue(), books());
        // Crosses 101 only: 1.5 filled, 0.5 rests at 101 behind nothing displayed on the bids.
        let (o, fills) =
            v.place(order(Side::Buy, OrderType::Limit, Tif::Gtc, 101 * P, Want::Base(2 * P)), &b, 1).expect("placed");
        assert_eq!((o.status, o.executed, fills.len(), o.working), (Status::PartiallyFilled, 3 * P / 2, 1, true));
        assert_eq!(v.open_orders(None).next().map(|o| o.consumed), Some(3 * P / 2));
        v.on_market("BTCUSDT", MarketEvent::Book, &b, 1);
        assert_eq!(
            v.open_orders(None).next().map(|o| o.executed),
            Some(3 * P / 2),
            "the 101 ask it took does not fill it again"
        );
        let (free, locked) = bal(&v, "USDT");
        assert_eq!(
            locked,
            notional_up(101 * P, P / 2) + commission(notional_up(101 * P, 2 * P), 100_000)
                - commission(notional_up(101 * P, 3 * P / 2), 100_000)
        );
        assert_eq!(free + locked, i128::from(10_000 * P) - 1515 * P as i128 / 10 - 1515 * P as i128 / 10_000);
        // IOC: the rest expires; FOK: all or nothing.
        let (o, _) =
            v.place(order(Side::Buy, OrderType::Limit, Tif::Ioc, 101 * P, Want::Base(2 * P)), &b, 2).expect("placed");
        assert_eq!((o.status, o.executed), (Status::Expired, 3 * P / 2));
        let (o, fills) =
            v.place(order(Side::Buy, OrderType::Limit, Tif::Fok, 101 * P, Want::Base(2 * P)), &b, 3).expect("placed");
        assert_eq!((o.status, o.executed, fills.len()), (Status::Expired, 0, 0));
        let (o, _) =
            v.place(order(Side::Buy, OrderType::Limit, Tif::Fok, 102 * P, Want::Base(2 * P)), &b, 4).expect("placed");
        assert_eq!((o.status, o.executed), (Status::Filled, 2 * P));
        // LIMIT_MAKER that would take; filters; balance; duplicate client ids.
        let err = |v: &mut Venue, o| v.place(o, &b, 5).expect_err("refused");
        let e = err(&mut v, order(Side::Buy, OrderType::LimitMaker, Tif::Gtc, 101 * P, Want::Base(P)));
        assert_eq!((e.code, e.msg.as_str()), (-2010, "Order would immediately match and take."));
        assert_eq!(
            err(&mut v, order(Side::Buy, OrderType::Limit, Tif::Gtc, 99 * P + 1, Want::Base(P))).msg,
            "Filter failure: PRICE_FILTER"
        );
        assert_eq!(
            err(&mut v, order(Side::Buy, OrderType::Limit, Tif::Gtc, 99 * P, Want::Base(1_500))).msg,
            "Filter failure: LOT_SIZE"
        );
        assert_eq!(
            err(&mut v, order(Side::Buy, OrderType::Limit, Tif::Gtc, 99 * P, Want::Base(1_000))).msg,
            "Filter failure: NOTIONAL"
        );
        let e = err(&mut v, order(Side::Buy, OrderType::Limit, Tif::Gtc, 99 * P, Want::Base(1_000 * P)));
        assert_eq!((e.code, e.msg.as_str()), (-2010, "Account has insufficient balance for requested action."));
        let e = err(
            &mut v,
            NewOrder { symbol: "ETHUSDT".into(), ..order(Side::Buy, OrderType::Market, Tif::Gtc, 0, Want::Base(P)) },
        );
        assert_eq!(e.code, -1121);
        let mine = NewOrder {
            client_id: Some("mine".into()),
            ..order(Side::Buy, OrderType::LimitMaker, Tif::Gtc, 90 * P, Want::Base(P / 10))
        };
        v.place(mine.clone(), &b, 6).expect("placed");
        assert_eq!(err(&mut v, mine).msg, "Duplicate order sent.");
    }

    #[test]
    fn resting_orders_fill_by_queue_position_and_cancel_unlocks() {
        let (mut v, mut b) = (venue(), books());
        // A buy at 99 behind the 1 displayed there.
        let (o, _) =
            v.place(order(Side::Buy, OrderType::Limit, Tif::Gtc, 99 * P, Want::Base(P)), &b, 1).expect("placed");
        assert_eq!((o.status, o.ahead), (Status::New, P));
        let locked = bal(&v, "USDT").1;
        assert_eq!(locked, 99 * P as i128 + commission(99 * i128::from(P), 100_000));
        let sell = |qty| MarketEvent::Trade(Trade { px: 99 * P, qty, buyer_maker: true });
        v.on_market("BTCUSDT", sell(P / 2), &b, 2);
        assert_eq!(v.open_orders(None).next().map(|o| (o.executed, o.ahead)), Some((0, P / 2)));
        // A ticker shows 0.2 left at 99: the queue shrinks to it.
        b.note_ticker("BTCUSDT", Ticker { update_id: 11, bid: (99 * P, P / 5), ask: (101 * P, P) });
        v.on_market("BTCUSDT", MarketEvent::Book, &b, 3);
        assert_eq!(v.open_orders(None).next().map(|o| o.ahead), Some(P / 5));
        v.on_market("BTCUSDT", sell(P / 2), &b, 4);
        let o = v.open_orders(None).next().cloned().expect("open");
        assert_eq!((o.status, o.executed), (Status::PartiallyFilled, 3 * P / 10));
        // The asks come down to 98.5: the rest fills at 99, as maker.
        b.note_ticker("BTCUSDT", Ticker { update_id: 12, bid: (98 * P, P), ask: (98 * P + P / 2, 5 * P) });
        v.on_market("BTCUSDT", MarketEvent::Book, &b, 5);
        assert_eq!(v.open_orders(None).count(), 0);
        assert_eq!(bal(&v, "BTC"), (3 * i128::from(P), 0));
        assert_eq!(
            bal(&v, "USDT"),
            (i128::from(10_000 * P) - 99 * i128::from(P) - commission(99 * i128::from(P), 100_000), 0)
        );
        // Cancel: by client id, then unknown.
        let sell_order = NewOrder {
            client_id: Some("s1".into()),
            ..order(Side::Sell, OrderType::Limit, Tif::Gtc, 110 * P, Want::Base(P))
        };
        v.place(sell_order, &b, 6).expect("placed");
        assert_eq!(bal(&v, "BTC"), (2 * i128::from(P), i128::from(P)));
        let (o, orig) = v.cancel("BTCUSDT", None, Some("s1"), Some("c1".into()), 7).expect("canceled");
        assert_eq!((o.status, orig.as_str(), o.client_id.as_str()), (Status::Canceled, "s1", "c1"));
        assert_eq!(bal(&v, "BTC"), (3 * i128::from(P), 0));
        // Finished orders stay known (order.status), with the client id they were placed with.
        let kept = v.order("BTCUSDT", None, Some("s1")).expect("kept");
        assert_eq!((kept.id, kept.status, kept.client_id.as_str()), (o.id, Status::Canceled, "s1"));
        assert_eq!(v.order("BTCUSDT", Some(1), None).map(|o| (o.status, o.executed)), Some((Status::Filled, P)));
        assert_eq!(v.order("BTCUSDT", Some(o.id), Some("c1")), None, "id and client id name different orders");
        assert_eq!(v.order("ETHUSDT", Some(o.id), None), None);
        assert_eq!(v.cancel("BTCUSDT", Some(o.id), None, None, 8).expect_err("gone").code, -2011);
        assert_eq!(v.cancel_all("BTCUSDT", 8).expect_err("none open").code, -2011);
    }

    #[test]
    fn finished_orders_are_kept_up_to_a_bound() {
        let (mut v, b) = (venue(), books());
        for n in 0..=FINISHED_KEPT {
            let o = NewOrder {
                client_id: Some(format!("o{n}")),
                ..order(Side::Buy, OrderType::Limit, Tif::Gtc, 90 * P, Want::Base(P / 10))
            };
            v.place(o, &b, 1).expect("placed");
            v.cancel("BTCUSDT", None, Some(&format!("o{n}")), None, 2).expect("canceled");
        }
        assert_eq!(v.order("BTCUSDT", None, Some("o0")), None, "the first to finish is forgotten");
        assert_eq!(v.order("BTCUSDT", Some(1), None), None);
        let last = format!("o{FINISHED_KEPT}");
        assert_eq!(v.order("BTCUSDT", None, Some(&last)).map(|o| o.status), Some(Status::Canceled));
        assert_eq!(v.order("BTCUSDT", None, Some("o1")).map(|o| o.id), Some(2));
    }

    #[test]
    fn order_rate_limits_count_per_ten_seconds() {
        let mut v = Venue::new(VenueConfig { orders_per_10s: 2, ..VenueConfig::default() });
        assert_eq!(v.count_order(10_000).map(|u| u.ten_s), Ok(1));
        assert_eq!(v.count_order(19_999).map(|u| (u.ten_s, u.day)), Ok((2, 2)));
        let (e, u) = v.count_order(19_999).expect_err("over");
        assert_eq!((e.status.as_u16(), e.code, u.ten_s), (429, -1015, 2));
        assert_eq!(e.msg, "Too many new orders; current limit is 2 orders per TEN_SECONDS.");
        assert_eq!(v.count_order(20_000).map(|u| (u.ten_s, u.day)), Ok((1, 3)), "a new interval");
    }
}
