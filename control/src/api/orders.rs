//! `GET /orders` and `GET /fills`: the replica's order table and fill history, newest first,
//! filtered and paged.
//!
//! Runs on the tokio runtime; reads the replica under its read lock while copying one page,
//! allocates per request.
//!
//! Query parameters (anything else is a 400, so a typo never silently returns everything):
//! - `status` (`/orders` only): an `OrderStatus` name (`NEW`, `PARTIALLY_FILLED`, `FILLED`,
//!   `CANCELED`, `REJECTED`, `EXPIRED`, `PENDING_NEW`), case-insensitive, or `open` (=
//!   `PENDING_NEW`, `NEW` or `PARTIALLY_FILLED`);
//! - `symbol`: a configured symbol, case-insensitive (unknown: 404 `unknown_symbol`, as
//!   `/book/{symbol}`);
//! - `limit`: 1 to [`MAX_LIMIT`], default [`DEFAULT_LIMIT`]; `offset`: rows to skip, default 0.
//!
//! The replica keeps the newest [`ORDER_HISTORY`](crate::state::ORDER_HISTORY) orders and
//! [`FILL_HISTORY`](crate::state::FILL_HISTORY) fills; `total` counts the matching rows among
//! those. Times (`ts`, `updated_ts`) are unix milliseconds (engine clock); latencies are ns.

use super::AppState;
use super::error::ApiError;
use crate::state::{self, OrderRow, Replica};
use axum::Json;
use axum::extract::{Query, State};
use hft_shared::msg::{FillEvent, Liquidity, OrderStatus};
use hft_shared::{StrategyKind, SymbolId};
use serde::Serialize;

/// Rows per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 100;
/// Largest `limit`.
pub const MAX_LIMIT: usize = 1000;

const STATUSES: [OrderStatus; 7] = [
    OrderStatus::PendingNew,
    OrderStatus::New,
    OrderStatus::PartiallyFilled,
    OrderStatus::Filled,
    OrderStatus::Canceled,
    OrderStatus::Rejected,
    OrderStatus::Expired,
];

/// Which orders `status=` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Is(OrderStatus),
    /// Not final: `PENDING_NEW`, `NEW`, `PARTIALLY_FILLED`.
    Open,
}

impl StatusFilter {
    fn parse(s: &str) -> Result<Self, ApiError> {
        if s.eq_ignore_ascii_case("open") {
            return Ok(StatusFilter::Open);
        }
        STATUSES.into_iter().find(|st| st.as_str().eq_ignore_ascii_case(s)).map(StatusFilter::Is).ok_or_else(|| {
            let names: Vec<&str> = STATUSES.iter().map(|s| s.as_str()).collect();
            ApiError::BadRequest(format!("status {s:?} is not one of: open, {}", names.join(", ")))
        })
    }

    fn matches(self, status: OrderStatus) -> bool {
        match self {
            StatusFilter::Is(s) => s == status,
            StatusFilter::Open => !status.is_final(),
        }
    }
}

/// A parsed `/orders` or `/fills` query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListQuery {
    pub status: Option<StatusFilter>,
    pub symbol: Option<SymbolId>,
    pub limit: usize,
    pub offset: usize,
}

impl ListQuery {
    /// The first `limit` rows, unfiltered (what `/ws` pushes).
    pub fn first(limit: usize) -> Self {
        ListQuery { status: None, symbol: None, limit, offset: 0 }
    }

    /// Parses the query's pairs; `with_status` says whether `status` is a parameter here.
    fn parse(pairs: &[(String, String)], symbols: &[String], with_status: bool) -> Result<Self, ApiError> {
        let mut q = ListQuery::first(DEFAULT_LIMIT);
        let mut seen: Vec<&str> = Vec::new();
        for (k, v) in pairs {
            if seen.contains(&k.as_str()) {
                return Err(ApiError::BadRequest(format!("parameter {k:?} given twice")));
            }
            seen.push(k);
            match k.as_str() {
                "status" if with_status => q.status = Some(StatusFilter::parse(v)?),
                "symbol" => {
                    let i = symbols
                        .iter()
                        .position(|s| s.eq_ignore_ascii_case(v))
                        .ok_or_else(|| ApiError::UnknownSymbol(v.clone()))?;
                    q.symbol = Some(SymbolId(i as u16));
                }
                "limit" => {
                    q.limit = number(k, v)?;
                    if !(1..=MAX_LIMIT).contains(&q.limit) {
                        return Err(ApiError::BadRequest(format!("limit {v} is out of range: 1 to {MAX_LIMIT}")));
                    }
                }
                "offset" => q.offset = number(k, v)?,
                _ => {
                    let known = if with_status { "status, symbol, limit, offset" } else { "symbol, limit, offset" };
                    return Err(ApiError::BadRequest(format!("unknown parameter {k:?}; known: {known}")));
                }
            }
        }
        Ok(q)
    }
}

fn number(k: &str, v: &str) -> Result<usize, ApiError> {
    // `parse` alone would take a leading `+`.
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::BadRequest(format!("{k} {v:?} is not a non-negative integer")));
    }
    v.parse().map_err(|_| ApiError::BadRequest(format!("{k} {v:?} is too large")))
}

/// One page of matching rows, newest first, and how many match in all.
fn page<'a, T: 'a>(
    rows: impl DoubleEndedIterator<Item = &'a T>,
    keep: impl Fn(&T) -> bool,
    q: &ListQuery,
) -> (usize, Vec<&'a T>) {
    let mut total = 0;
    let mut out = Vec::with_capacity(q.limit.min(64));
    for row in rows.rev().filter(|r| keep(r)) {
        if total >= q.offset && out.len() < q.limit {
            out.push(row);
        }
        total += 1;
    }
    (total, out)
}

/// One order. Prices and quantities are exact decimal strings.
#[derive(Serialize, Debug)]
pub struct OrderJson {
    /// Engine order id (unique for the life of the process, ascending). The venue client id
    /// (`h<id>t<trace>`) is not carried by the engine's order events.
    pub id: u64,
    pub symbol: String,
    /// `BUY` or `SELL`.
    pub side: &'static str,
    /// `MARKET`, `LIMIT` or `LIMIT_MAKER`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `GTC`, `IOC` or `FOK`.
    pub tif: &'static str,
    /// Limit price; for a market order, the touch the decision was taken at.
    pub price: String,
    pub qty: String,
    /// Cumulative filled quantity.
    pub filled: String,
    /// `PENDING_NEW`, `NEW`, `PARTIALLY_FILLED`, `FILLED`, `CANCELED`, `REJECTED` or `EXPIRED`.
    pub status: &'static str,
    /// The strategies behind the order, `+`-joined (`momentum+breakout`); null for an
    /// operator's or the kill switch's flatten.
    pub strategy: Option<String>,
    /// The order only reduces exposure (flatten, kill switch).
    pub reduce_only: bool,
    /// Fees of its fills so far, quote currency.
    pub fees: String,
    /// Emission time, unix ms.
    pub ts: u64,
    /// Time of the latest status change or fill, unix ms.
    pub updated_ts: u64,
    /// Frame receipt to order emission on the hot thread, ns.
    pub tick_to_order_ns: u32,
    /// The venue's error code when it rejected the order (e.g. -2010), else 0.
    pub venue_code: i32,
}

impl OrderJson {
    fn new(r: &Replica, row: &OrderRow) -> Self {
        let o = &row.order;
        let names: Vec<&str> =
            StrategyKind::ALL.iter().filter(|k| o.strategies & (1 << k.index()) != 0).map(|k| k.name()).collect();
        OrderJson {
            id: o.id.0,
            symbol: symbol_name(r, o.symbol),
            side: o.side.as_str(),
            kind: o.kind.as_str(),
            tif: o.tif.as_str(),
            price: o.px.to_string(),
            qty: o.qty.to_string(),
            filled: row.filled.to_string(),
            status: row.status.as_str(),
            strategy: (!names.is_empty()).then(|| names.join("+")),
            reduce_only: o.reduce_only,
            fees: row.fees.to_string(),
            ts: o.ts_ns / 1_000_000,
            updated_ts: row.updated_ns / 1_000_000,
            tick_to_order_ns: o.tick_to_order_ns,
            venue_code: row.venue_code,
        }
    }
}

fn symbol_name(r: &Replica, s: SymbolId) -> String {
    r.symbols.get(s.index()).cloned().unwrap_or_else(|| format!("#{}", s.0))
}

#[derive(Serialize, Debug)]
pub struct OrdersPage {
    /// Matching orders among those tracked.
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    /// Newest first.
    pub orders: Vec<OrderJson>,
}

impl OrdersPage {
    pub fn from_replica(r: &Replica, q: &ListQuery) -> Self {
        let keep = |row: &OrderRow| {
            q.symbol.is_none_or(|s| row.order.symbol == s) && q.status.is_none_or(|f| f.matches(row.status))
        };
        let (total, rows) = page(r.order_table.iter(), keep, q);
        OrdersPage {
            total,
            offset: q.offset,
            limit: q.limit,
            orders: rows.into_iter().map(|row| OrderJson::new(r, row)).collect(),
        }
    }
}

/// `GET /orders?status=&symbol=&limit=&offset=`.
pub async fn orders(
    State(app): State<AppState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<OrdersPage>, ApiError> {
    let r = state::read(&app.replica);
    let q = ListQuery::parse(&pairs, &r.symbols, true)?;
    Ok(Json(OrdersPage::from_replica(&r, &q)))
}

/// One fill. Prices, quantities and amounts are exact decimal strings.
#[derive(Serialize, Debug)]
pub struct FillJson {
    pub order_id: u64,
    pub symbol: String,
    pub side: &'static str,
    /// `maker` or `taker`.
    pub liquidity: &'static str,
    pub px: String,
    pub qty: String,
    /// Quote currency; positive = paid. Includes the value (at `px`) of `base_fee`.
    pub fee: String,
    /// The part of the commission the venue took in the base asset: the position moved by `qty`
    /// less it on a buy, plus it on a sell. `"0"` when it took the quote asset (or BNB).
    pub base_fee: String,
    /// The symbol's signed position after this fill.
    pub position: String,
    /// The symbol's cumulative realized PnL (net of fees) after this fill.
    pub realized: String,
    /// The order has nothing left open after this fill.
    pub last: bool,
    /// Fill time, unix ms.
    pub ts: u64,
}

impl FillJson {
    fn new(r: &Replica, f: &FillEvent) -> Self {
        FillJson {
            order_id: f.order.0,
            symbol: symbol_name(r, f.symbol),
            side: f.side.as_str(),
            liquidity: match f.liquidity {
                Liquidity::Maker => "maker",
                Liquidity::Taker => "taker",
            },
            px: f.px.to_string(),
            qty: f.qty.to_string(),
            fee: f.fee.to_string(),
            base_fee: f.base_fee.to_string(),
            position: f.position.to_string(),
            realized: f.realized.to_string(),
            last: f.last,
            ts: f.ts_ns / 1_000_000,
        }
    }
}

#[derive(Serialize, Debug)]
pub struct FillsPage {
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    /// Newest first.
    pub fills: Vec<FillJson>,
}

impl FillsPage {
    pub fn from_replica(r: &Replica, q: &ListQuery) -> Self {
        let (total, rows) = page(r.recent_fills.iter(), |f: &FillEvent| q.symbol.is_none_or(|s| f.symbol == s), q);
        FillsPage {
            total,
            offset: q.offset,
            limit: q.limit,
            fills: rows.into_iter().map(|f| FillJson::new(r, f)).collect(),
        }
    }
}

/// `GET /fills?symbol=&limit=&offset=`.
pub async fn fills(
    State(app): State<AppState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<FillsPage>, ApiError> {
    let r = state::read(&app.replica);
    let q = ListQuery::parse(&pairs, &r.symbols, false)?;
    Ok(Json(FillsPage::from_replica(&r, &q)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &[(&str, &str)], with_status: bool) -> Result<ListQuery, ApiError> {
        let pairs: Vec<(String, String)> = query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ListQuery::parse(&pairs, &["BTCUSDT".into(), "ETHUSDT".into()], with_status)
    }

    #[test]
    fn queries_parse_with_defaults() {
        assert_eq!(parse(&[], true), Ok(ListQuery { status: None, symbol: None, limit: 100, offset: 0 }));
        assert_eq!(
            parse(&[("status", "partially_filled"), ("symbol", "ethusdt"), ("limit", "1000"), ("offset", "7")], true),
            Ok(ListQuery {
                status: Some(StatusFilter::Is(OrderStatus::PartiallyFilled)),
                symbol: Some(SymbolId(1)),
                limit: 1000,
                offset: 7
            })
        );
        assert_eq!(parse(&[("status", "OPEN")], true).map(|q| q.status), Ok(Some(StatusFilter::Open)));
        for st in STATUSES {
            assert_eq!(parse(&[("status", st.as_str())], true).map(|q| q.status), Ok(Some(StatusFilter::Is(st))));
        }
    }

    #[test]
    fn bad_queries_are_refused_with_a_reason() {
        let bad = |q: &[(&str, &str)], with_status: bool, needle: &str| {
            let e = parse(q, with_status).expect_err("refused");
            assert_eq!(e.code(), "bad_request", "{q:?}");
            assert!(e.message().contains(needle), "{q:?}: {}", e.message());
        };
        bad(&[("status", "DONE")], true, "open, PENDING_NEW");
        bad(&[("status", "")], true, "status");
        bad(&[("limit", "0")], true, "1 to 1000");
        bad(&[("limit", "1001")], true, "1 to 1000");
        bad(&[("limit", "-1")], true, "non-negative");
        bad(&[("limit", "+5")], true, "non-negative");
        bad(&[("limit", "ten")], true, "non-negative");
        bad(&[("limit", "")], true, "non-negative");
        bad(&[("offset", "1.5")], true, "non-negative");
        bad(&[("offset", "99999999999999999999999")], true, "too large");
        bad(&[("limit", "5"), ("limit", "6")], true, "twice");
        bad(&[("stauts", "NEW")], true, "unknown parameter");
        bad(&[("status", "NEW")], false, "unknown parameter");
        let e = parse(&[("symbol", "DOGEUSDT")], true).expect_err("refused");
        assert_eq!(e, ApiError::UnknownSymbol("DOGEUSDT".into()));
    }

    #[test]
    fn pages_are_newest_first_and_count_every_match() {
        let rows: Vec<u32> = (1..=10).collect();
        let q = |limit, offset| ListQuery { status: None, symbol: None, limit, offset };
        let even = |r: &u32| r.is_multiple_of(2);
        assert_eq!(page(rows.iter(), even, &q(2, 0)), (5, vec![&10, &8]));
        assert_eq!(page(rows.iter(), even, &q(2, 4)), (5, vec![&2]));
        assert_eq!(page(rows.iter(), even, &q(2, 5)), (5, vec![]));
        assert_eq!(page(rows.iter(), |_| true, &q(1000, 0)).1.len(), 10);
    }
}
