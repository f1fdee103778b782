//! Performance metrics from fills and marks: a [`Ledger`] that books fills with the engine's own
//! exact position arithmetic ([`Position`]), marks equity to the mid, and sums everything up in
//! [`Metrics`]. Pure: no clock, no I/O; the same fills and marks give the same figures, so a
//! backtest (fed by the pipeline's events) and the store's fills (paper, shadow, live) are
//! measured by one definition.
//!
//! Runs on the caller's thread (a backtest's thread, a sweep worker, `hft gate`); allocates
//! (the trade list, the daily list, the curve).
//!
//! # Definitions
//! * **Equity** = `capital.total` + Σ symbols (realized PnL net of fees + unrealized PnL at the
//!   mark). A symbol's mark is the last one given ([`Ledger::mark`]); before any, the price of
//!   its last fill.
//! * **Return series**: equity at the close of each one-minute bar of simulated (event) time,
//!   bars aligned to the minute (UTC); `r = E_close / E_previous_close − 1`, the first bar against
//!   the starting equity, the last (partial) bar included. Bars without events have a zero
//!   return (crypto trades around the clock).
//! * **Annualisation**: 365 × 24 × 60 = 525 600 one-minute periods a year. Sharpe =
//!   mean / sample standard deviation × √525600 (no risk-free rate); Sortino = mean / downside
//!   deviation × √525600, the downside deviation being √(Σ min(r, 0)² / n) over all n bars;
//!   annualised return = mean × 525 600 (arithmetic); Calmar = annualised return / max drawdown.
//!   Undefined values (fewer than two bars, no dispersion, no drawdown) are `None` (JSON null).
//! * **Max drawdown**: the largest fall of equity from its running peak, as a fraction of that
//!   peak (and in quote currency), evaluated at every fill and at every mark sample.
//!   **Duration**: the longest time spent below a previous peak (from the peak to the first
//!   equity at or above it, or to the end), seconds.
//! * **Trade**: an order whose fills reduce (or close) a position; a fill that flips a position
//!   counts with its closing part. Its PnL is the realized PnL of the closed quantity net of
//!   fees: the closing fills' fees pro rata to the quantity they close, and the entry fees of
//!   the closed quantity pro rata (so a round trip's PnL carries both of its fees). Win rate =
//!   trades with PnL > 0 / trades; profit factor = Σ winning PnL / |Σ losing PnL|; expectancy =
//!   mean trade PnL. A **round trip** is a return of a position to zero.
//! * **Exposure**: the fraction of the time span (first to last event) during which at least
//!   one position was not flat.
//! * **Fees**: every fill's fee (negative for rebates). **Slippage**: Σ (fill price − decision
//!   mid) × quantity × (+1 buy, −1 sell) over fills whose order's decision price is known: what
//!   was paid beyond the mid when the decision was taken — half the spread for a market order at
//!   the touch, plus any walk of the book and any move during the order latency; negative for a
//!   price improvement (a maker fill). Also in basis points of the traded notional.
//! * **Daily PnL**: equity change per UTC day of event time, for the days with events (a day
//!   without any changes nothing, so a gap in the data does not fill the list with zeros).

pub use crate::store::codec::DAY_NS;
use crate::store::codec::date;
use hft_engine::risk::Position;
use hft_shared::msg::moved_qty;
use hft_shared::{Amount, Px, Qty, Side};
use serde::Serialize;
use std::collections::HashMap;

/// Length of a return bar, ns of event time.
pub const BAR_NS: u64 = 60_000_000_000;
/// Return bars in a year (365 days of 1440 minutes).
pub const PERIODS_PER_YEAR: f64 = 525_600.0;
/// The equity curve keeps at most this many points: when full, every other point is dropped and
/// the sampling period doubles (the metrics are computed on every sample regardless).
pub const CURVE_POINTS_MAX: usize = 4096;
/// First sampling period of the equity curve, ns.
pub const CURVE_STEP_NS: u64 = 1_000_000_000;

/// One fill, as the engine reported it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fill {
    pub ts_ns: u64,
    /// The engine's order id (fills of one order make one trade).
    pub order: u64,
    /// Index of the symbol (`SymbolId`).
    pub symbol: usize,
    pub side: Side,
    pub px: Px,
    pub qty: Qty,
    /// Fee paid, quote currency (negative: rebate), including the value of `base_fee`.
    pub fee: Amount,
    /// The part of the commission taken in the base asset: the position moves by
    /// [`moved_qty`] (see [`hft_shared::msg::FillEvent::base_fee`]).
    pub base_fee: Qty,
    /// Mid when the order was decided, when known (for slippage).
    pub decision_px: Option<Px>,
}

/// A closed (or reduced) position: see the module docs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trade {
    pub order: u64,
    pub symbol: usize,
    /// Time of its first closing fill.
    pub ts_ns: u64,
    /// Quantity closed.
    pub qty: Qty,
    /// Realized PnL net of the fees of the closed quantity (entry and exit).
    pub pnl: Amount,
}

/// One UTC day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Day {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Equity change over the day, quote currency.
    pub pnl: f64,
    /// `pnl` / equity at the day's start.
    #[serde(rename = "return")]
    pub ret: f64,
    /// Trades whose first closing fill fell on the day.
    pub trades: u64,
}

/// A sample of the equity curve.
#[derive(Debug, Clone, PartialEq)]
pub struct CurvePoint {
    pub ts_ns: u64,
    pub equity: f64,
    /// Fall from the running peak, fraction of the peak (≥ 0).
    pub drawdown: f64,
    /// Signed base quantity per symbol.
    pub positions: Vec<f64>,
}

/// Every figure of the module docs. Money in quote currency, fractions as fractions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    pub start_equity: f64,
    pub final_equity: f64,
    /// `final_equity − start_equity`.
    pub total_pnl: f64,
    /// Realized PnL net of fees.
    pub realized_pnl: f64,
    /// Unrealized PnL of the open positions at the last marks.
    pub unrealized_pnl: f64,
    /// `total_pnl / start_equity`.
    #[serde(rename = "return")]
    pub ret: f64,
    pub annualized_return: Option<f64>,
    pub sharpe: Option<f64>,
    pub sortino: Option<f64>,
    pub calmar: Option<f64>,
    /// Fraction of the peak.
    pub max_drawdown: f64,
    pub max_drawdown_amount: f64,
    pub max_drawdown_duration_s: f64,
    pub trades: u64,
    pub wins: u64,
    pub losses: u64,
    pub win_rate: Option<f64>,
    pub profit_factor: Option<f64>,
    pub expectancy: Option<f64>,
    pub avg_win: Option<f64>,
    pub avg_loss: Option<f64>,
    pub round_trips: u64,
    pub fills: u64,
    /// Traded notional.
    pub volume: f64,
    pub fees: f64,
    pub slippage: f64,
    pub slippage_bps: Option<f64>,
    /// Fraction of the span with a position.
    pub exposure: f64,
    /// Return bars behind Sharpe and Sortino.
    pub periods: u64,
    /// First to last event, seconds.
    pub span_s: f64,
}

/// Everything a ledger produces.
#[derive(Debug, Clone)]
pub struct Summary {
    pub metrics: Metrics,
    pub daily: Vec<Day>,
    pub trades: Vec<Trade>,
    pub curve: Vec<CurvePoint>,
}

/// Running mean and variance (Welford), with a batch of zeros merged in O(1).
#[derive(Debug, Clone, Copy, Default)]
struct Moments {
    n: u64,
    mean: f64,
    m2: f64,
    /// Σ min(r, 0)².
    down2: f64,
}

impl Moments {
    fn push(&mut self, r: f64) {
        self.n += 1;
        let d = r - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (r - self.mean);
        if r < 0.0 {
            self.down2 += r * r;
        }
    }

    /// Merges `k` zero returns (Chan et al.'s pairwise update).
    fn push_zeros(&mut self, k: u64) {
        if k == 0 {
            return;
        }
        let (na, nb) = (self.n as f64, k as f64);
        let n = na + nb;
        let d = -self.mean;
        self.m2 += d * d * na * nb / n;
        self.mean = self.mean * na / n;
        self.n += k;
    }

    fn std(&self) -> Option<f64> {
        (self.n >= 2).then(|| (self.m2 / (self.n - 1) as f64).max(0.0).sqrt())
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct SymState {
    pos: Position,
    /// Fees paid to open the quantity still open (to charge its trades pro rata).
    open_fees: Amount,
    mark: Px,
}

/// Books fills and marks in event-time order (see the module docs).
#[derive(Debug)]
pub struct Ledger {
    capital: Amount,
    syms: Vec<SymState>,
    started: bool,
    start_ns: u64,
    last_ns: u64,
    returns: Moments,
    bar_end_ns: u64,
    bar_open: Amount,
    day: u64,
    day_open: Amount,
    day_trades: u64,
    daily: Vec<Day>,
    peak: Amount,
    peak_ns: u64,
    max_dd: f64,
    max_dd_amount: Amount,
    longest_dd_ns: u64,
    in_market_ns: u64,
    trades: Vec<Trade>,
    trade_of_order: HashMap<u64, usize>,
    round_trips: u64,
    fills: u64,
    fees: Amount,
    volume: Amount,
    slippage: Amount,
    slippage_notional: Amount,
    curve: Vec<CurvePoint>,
    curve_step_ns: u64,
    next_curve_ns: u64,
}

impl Ledger {
    /// A ledger of `symbols` symbols starting with `capital` (quote currency).
    pub fn new(capital: Amount, symbols: usize) -> Self {
        Self {
            capital,
            syms: vec![SymState::default(); symbols],
            started: false,
            start_ns: 0,
            last_ns: 0,
            returns: Moments::default(),
            bar_end_ns: 0,
            bar_open: capital,
            day: 0,
            day_open: capital,
            day_trades: 0,
            daily: Vec::new(),
            peak: capital,
            peak_ns: 0,
            max_dd: 0.0,
            max_dd_amount: Amount::ZERO,
            longest_dd_ns: 0,
            in_market_ns: 0,
            trades: Vec::new(),
            trade_of_order: HashMap::new(),
            round_trips: 0,
            fills: 0,
            fees: Amount::ZERO,
            volume: Amount::ZERO,
            slippage: Amount::ZERO,
            slippage_notional: Amount::ZERO,
            curve: Vec::new(),
            curve_step_ns: CURVE_STEP_NS,
            next_curve_ns: 0,
        }
    }

    /// Equity now: capital + realized net of fees + unrealized at the marks.
    pub fn equity(&self) -> Amount {
        self.syms.iter().fold(self.capital, |e, s| {
            let unrealized = if s.mark.raw() > 0 { s.pos.unrealized(s.mark) } else { Amount::ZERO };
            e + s.pos.realized_net() + unrealized
        })
    }

    /// When the next curve sample is due (the caller marks every symbol then and calls
    /// [`Ledger::observe`]).
    #[inline]
    pub fn next_sample_ns(&self) -> u64 {
        if self.started { self.next_curve_ns } else { 0 }
    }

    /// Moves event time to `ts_ns` (earlier times are taken as the latest one): closes the
    /// return bars and days that ended before it, at the equity they ended with.
    pub fn advance(&mut self, ts_ns: u64) {
        if !self.started {
            self.started = true;
            self.start_ns = ts_ns;
            self.last_ns = ts_ns;
            self.bar_end_ns = (ts_ns / BAR_NS + 1) * BAR_NS;
            self.day = ts_ns / DAY_NS;
            self.peak_ns = ts_ns;
            self.next_curve_ns = ts_ns;
            return;
        }
        let ts = ts_ns.max(self.last_ns);
        if self.syms.iter().any(|s| !s.pos.qty.is_zero()) {
            self.in_market_ns += ts - self.last_ns;
        }
        self.last_ns = ts;
        if ts >= self.bar_end_ns {
            let e = self.equity();
            self.returns.push(ratio(e, self.bar_open) - 1.0);
            self.bar_open = e;
            // Bars ended since, without an event: equity unchanged, zero returns.
            let skipped = (ts - self.bar_end_ns) / BAR_NS;
            self.returns.push_zeros(skipped);
            self.bar_end_ns += (skipped + 1) * BAR_NS;
        }
        let day = ts / DAY_NS;
        if day > self.day {
            let e = self.equity();
            // Days in between had no event: nothing changed, so they are not listed.
            self.close_day(e);
            self.day = day;
        }
    }

    fn close_day(&mut self, e: Amount) {
        let pnl = (e - self.day_open).to_f64();
        self.daily.push(Day {
            date: date(self.day),
            pnl,
            ret: ratio(e, self.day_open) - 1.0,
            trades: std::mem::take(&mut self.day_trades),
        });
        self.day_open = e;
    }

    /// Sets the mark (mid) of symbol `i` at `ts_ns` (after closing what ended before it).
    #[inline]
    pub fn mark(&mut self, ts_ns: u64, i: usize, px: Px) {
        self.advance(ts_ns);
        if let Some(s) = self.syms.get_mut(i)
            && px.raw() > 0
        {
            s.mark = px;
        }
    }

    /// Evaluates equity at `ts_ns` (after [`Ledger::advance`]): drawdown, and a curve point
    /// when one is due.
    pub fn observe(&mut self, ts_ns: u64) {
        self.advance(ts_ns);
        let ts = self.last_ns;
        let e = self.equity();
        if e >= self.peak {
            self.longest_dd_ns = self.longest_dd_ns.max(ts - self.peak_ns);
            self.peak = e;
            self.peak_ns = ts;
        } else {
            let amount = self.peak - e;
            let frac = amount.to_f64() / self.peak.to_f64();
            if frac > self.max_dd {
                self.max_dd = frac;
            }
            if amount > self.max_dd_amount {
                self.max_dd_amount = amount;
            }
        }
        if ts >= self.next_curve_ns {
            self.push_curve(ts, e);
        }
    }

    fn push_curve(&mut self, ts: u64, e: Amount) {
        if self.curve.len() == CURVE_POINTS_MAX {
            let mut k = 0;
            self.curve.retain(|_| {
                k += 1;
                k % 2 == 1
            });
            self.curve_step_ns *= 2;
        }
        let drawdown = if e < self.peak { (self.peak - e).to_f64() / self.peak.to_f64() } else { 0.0 };
        self.curve.push(CurvePoint {
            ts_ns: ts,
            equity: e.to_f64(),
            drawdown,
            positions: self.syms.iter().map(|s| s.pos.qty.to_f64()).collect(),
        });
        self.next_curve_ns = (ts / self.curve_step_ns + 1) * self.curve_step_ns;
    }

    /// Books a fill (see the module docs for what a trade is).
    pub fn fill(&mut self, f: &Fill) {
        self.advance(f.ts_ns);
        let ts = self.last_ns;
        let Some(s) = self.syms.get_mut(f.symbol) else { return };
        if f.qty.raw() <= 0 || f.px.raw() <= 0 {
            return;
        }
        self.fills += 1;
        self.fees += f.fee;
        let notional = Amount::notional(f.px, f.qty);
        self.volume += notional;
        if let Some(d) = f.decision_px.filter(|d| d.raw() > 0) {
            let diff = Px(f.px.raw() - d.raw());
            self.slippage += Amount(Amount::notional(diff, f.qty).raw() * i128::from(f.side.sign()));
            self.slippage_notional += notional;
        }
        let before = s.pos.qty.raw();
        let realized_before = s.pos.realized;
        s.pos.on_fill(f.side, f.px, moved_qty(f.side, f.qty, f.base_fee), f.fee);
        if s.mark.raw() == 0 {
            s.mark = f.px;
        }
        let q = f.qty.raw();
        let reduces = before != 0 && (before > 0) != (f.side == Side::Buy);
        let closed = if reduces { q.min(before.abs()) } else { 0 };
        if closed == 0 {
            s.open_fees += f.fee;
        } else {
            let gross = s.pos.realized - realized_before;
            let exit_fee = Amount(f.fee.raw() * i128::from(closed) / i128::from(q));
            let entry_fee = Amount(s.open_fees.raw() * i128::from(closed) / i128::from(before.abs()));
            s.open_fees -= entry_fee;
            if q > closed {
                // Flipped through zero: the rest of the fee opens the new position.
                s.open_fees = f.fee - exit_fee;
            }
            if closed == before.abs() {
                self.round_trips += 1;
            }
            let pnl = gross - exit_fee - entry_fee;
            match self.trade_of_order.get(&f.order) {
                Some(&k) => {
                    self.trades[k].pnl += pnl;
                    self.trades[k].qty = Qty(self.trades[k].qty.raw() + closed);
                }
                None => {
                    self.trade_of_order.insert(f.order, self.trades.len());
                    self.trades.push(Trade { order: f.order, symbol: f.symbol, ts_ns: ts, qty: Qty(closed), pnl });
                    self.day_trades += 1;
                }
            }
        }
        self.observe(ts);
    }

    /// Closes the books at `end_ns` (the last event's time) and computes the metrics.
    /// A ledger that saw nothing (no mark, no fill) has no bar, no day and no curve.
    pub fn finish(mut self, end_ns: u64) -> Summary {
        let empty = !self.started;
        self.advance(end_ns);
        let end = self.last_ns;
        let e = self.equity();
        if !empty {
            self.observe(end);
            // The last, partial bar and day.
            if end > self.bar_end_ns - BAR_NS || self.returns.n == 0 {
                self.returns.push(ratio(e, self.bar_open) - 1.0);
            }
            self.close_day(e);
            if e < self.peak {
                self.longest_dd_ns = self.longest_dd_ns.max(end - self.peak_ns);
            }
            // Always end the curve on the final state.
            if self.curve.last().is_none_or(|p| p.ts_ns != end) {
                self.curve_step_ns = 1;
                self.push_curve(end, e);
            }
        }

        let realized: Amount = self.syms.iter().map(|s| s.pos.realized_net()).fold(Amount::ZERO, |a, b| a + b);
        let unrealized = e - self.capital - realized;
        let (wins, losses): (Vec<&Trade>, Vec<&Trade>) =
            self.trades.iter().filter(|t| t.pnl.raw() != 0).partition(|t| t.pnl.raw() > 0);
        // Folded from +0.0 (an empty `sum` of floats is −0.0).
        let gross_win = wins.iter().fold(0.0, |a, t| a + t.pnl.to_f64());
        let gross_loss = losses.iter().fold(0.0, |a, t| a + t.pnl.to_f64());
        let n = self.trades.len() as u64;
        let total_trade_pnl = self.trades.iter().fold(0.0, |a, t| a + t.pnl.to_f64());
        let m = &self.returns;
        let annualized = (m.n > 0).then_some(m.mean * PERIODS_PER_YEAR);
        let sharpe = m.std().filter(|s| *s > 0.0).map(|s| m.mean / s * PERIODS_PER_YEAR.sqrt());
        let downside = (m.n >= 2).then(|| (m.down2 / m.n as f64).sqrt()).filter(|d| *d > 0.0);
        let sortino = downside.map(|d| m.mean / d * PERIODS_PER_YEAR.sqrt());
        let calmar = annualized.filter(|_| self.max_dd > 0.0).map(|a| a / self.max_dd);
        let span_ns = end - self.start_ns;
        let start_equity = self.capital.to_f64();
        let metrics = Metrics {
            start_equity,
            final_equity: e.to_f64(),
            total_pnl: (e - self.capital).to_f64(),
            realized_pnl: realized.to_f64(),
            unrealized_pnl: unrealized.to_f64(),
            ret: ratio(e, self.capital) - 1.0,
            annualized_return: annualized,
            sharpe,
            sortino,
            calmar,
            max_drawdown: self.max_dd,
            max_drawdown_amount: self.max_dd_amount.to_f64(),
            max_drawdown_duration_s: self.longest_dd_ns as f64 / 1e9,
            trades: n,
            wins: wins.len() as u64,
            losses: losses.len() as u64,
            win_rate: (n > 0).then(|| wins.len() as f64 / n as f64),
            profit_factor: (gross_loss < 0.0).then(|| gross_win / -gross_loss),
            expectancy: (n > 0).then(|| total_trade_pnl / n as f64),
            avg_win: (!wins.is_empty()).then(|| gross_win / wins.len() as f64),
            avg_loss: (!losses.is_empty()).then(|| gross_loss / losses.len() as f64),
            round_trips: self.round_trips,
            fills: self.fills,
            volume: self.volume.to_f64(),
            fees: self.fees.to_f64(),
            slippage: self.slippage.to_f64(),
            slippage_bps: (self.slippage_notional.raw() > 0)
                .then(|| self.slippage.to_f64() / self.slippage_notional.to_f64() * 1e4),
            exposure: if span_ns > 0 { self.in_market_ns as f64 / span_ns as f64 } else { 0.0 },
            periods: m.n,
            span_s: span_ns as f64 / 1e9,
        };
        Summary { metrics, daily: self.daily, trades: self.trades, curve: self.curve }
    }
}

/// `a / b` for equities (positive in any sane account; a non-positive `b` gives 1: no return).
fn ratio(a: Amount, b: Amount) -> f64 {
    if b.raw() <= 0 { 1.0 } else { a.to_f64() / b.to_f64() }
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a unix time in ns.
pub fn iso_time(ts_ns: u64) -> String {
    let s = ts_ns / 1_000_000_000;
    let sod = s % 86_400;
    format!("{}T{:02}:{:02}:{:02}Z", date(s / 86_400), sod / 3600, sod % 3600 / 60, sod % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;
    /// 2024-08-08T00:00:00Z.
    const T0: u64 = 19_943 * DAY_NS;

    fn px(s: &str) -> Px {
        Px::parse(s).unwrap()
    }
    fn q(s: &str) -> Qty {
        Qty::parse(s).unwrap()
    }
    fn amt(s: &str) -> Amount {
        // Amounts in tests are exact decimals with at most 8 places.
        Amount::from_fixed8(Px::parse(s).unwrap().raw())
    }
    fn fill(ts: u64, order: u64, side: Side, p: &str, qty: &str, fee: &str) -> Fill {
        Fill {
            ts_ns: ts,
            order,
            symbol: 0,
            side,
            px: px(p),
            qty: q(qty),
            fee: amt(fee),
            base_fee: Qty::ZERO,
            decision_px: None,
        }
    }
    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }
    macro_rules! assert_close {
        ($a:expr, $b:expr) => {
            assert!(close($a, $b), "{} = {} != {}", stringify!($a), $a, $b)
        };
    }

    #[test]
    fn dates_are_civil() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_time(20_089 * DAY_NS + 86_399 * S), "2025-01-01T23:59:59Z");
        assert_eq!(iso_time(T0 + 3_723 * S), "2024-08-08T01:02:03Z");
    }

    /// Two round trips by hand, capital 1000, marks at the fill prices (no mark given):
    /// at 0 buy 1 @ 100, fee 0.1, and at 30 s sell 1 @ 110, fee 0.11: PnL 10 − 0.21 = 9.79 (a
    /// win); at 90 s buy 2 @ 100, fee 0.2, and at 150 s sell 2 @ 95, fee 0.19: PnL −10 − 0.39 =
    /// −10.39. Equity after each fill: 999.9, 1009.79, 1009.59, 999.4.
    #[test]
    fn two_round_trips_by_hand() {
        let mut l = Ledger::new(amt("1000"), 1);
        l.fill(&fill(T0, 1, Side::Buy, "100", "1", "0.1"));
        l.fill(&fill(T0 + 30 * S, 2, Side::Sell, "110", "1", "0.11"));
        l.fill(&fill(T0 + 90 * S, 3, Side::Buy, "100", "2", "0.2"));
        l.fill(&fill(T0 + 150 * S, 4, Side::Sell, "95", "2", "0.19"));
        let s = l.finish(T0 + 150 * S);
        let m = &s.metrics;
        assert_eq!(s.trades.len(), 2);
        assert_eq!(s.trades[0].pnl, amt("9.79"));
        assert_eq!(s.trades[1].pnl, amt("-10.39"));
        assert_eq!((m.trades, m.wins, m.losses, m.round_trips, m.fills), (2, 1, 1, 2, 4));
        assert_close!(m.total_pnl, -0.6);
        assert_close!(m.realized_pnl, -0.6);
        assert_close!(m.unrealized_pnl, 0.0);
        assert_close!(m.final_equity, 999.4);
        assert_close!(m.ret, -0.0006);
        assert_close!(m.fees, 0.6);
        assert_close!(m.volume, 100.0 + 110.0 + 200.0 + 190.0);
        assert_close!(m.win_rate.unwrap(), 0.5);
        assert_close!(m.profit_factor.unwrap(), 9.79 / 10.39);
        assert_close!(m.expectancy.unwrap(), (9.79 - 10.39) / 2.0);
        assert_close!(m.avg_win.unwrap(), 9.79);
        assert_close!(m.avg_loss.unwrap(), -10.39);
        // Peak 1009.79 at 30 s; the low is the end: 999.4 → (1009.79 − 999.4) / 1009.79.
        assert_close!(m.max_drawdown, 10.39 / 1009.79);
        assert_close!(m.max_drawdown_amount, 10.39);
        assert_close!(m.max_drawdown_duration_s, 120.0);
        // In the market 0–30 s and 90–150 s of a 150 s span.
        assert_close!(m.exposure, 90.0 / 150.0);
        // Bars: [0,60) closes at 1009.79; [60,120) at 1009.59 (the buy's fee); [120,180) partial,
        // at 999.4.
        let r = [1009.79 / 1000.0 - 1.0, 1009.59 / 1009.79 - 1.0, 999.4 / 1009.59 - 1.0];
        let mean = r.iter().sum::<f64>() / 3.0;
        let var = r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 2.0;
        let down = (r.iter().map(|x| x.min(0.0).powi(2)).sum::<f64>() / 3.0).sqrt();
        assert_eq!(m.periods, 3);
        assert_close!(m.sharpe.unwrap(), mean / var.sqrt() * PERIODS_PER_YEAR.sqrt());
        assert_close!(m.sortino.unwrap(), mean / down * PERIODS_PER_YEAR.sqrt());
        assert_close!(m.annualized_return.unwrap(), mean * PERIODS_PER_YEAR);
        assert_close!(m.calmar.unwrap(), mean * PERIODS_PER_YEAR / (10.39 / 1009.79));
        assert_eq!(s.daily.len(), 1);
        assert_eq!(s.daily[0].date, "2024-08-08");
        assert_close!(s.daily[0].pnl, -0.6);
        assert_eq!(s.daily[0].trades, 2);
    }

    /// Partial closes of one position by two orders, the second flipping it, and marks.
    /// buy 3 @ 10 fee 0.3 (entry fee 0.1 a unit); sell 1 @ 12 fee 0.12: PnL 2 − 0.12 − 0.1 = 1.78;
    /// sell 4 @ 9 fee 0.36: closes 2 (−2, exit fee 0.18, entry fee 0.2: −2.38) and opens −2 with
    /// 0.18 of fee. Mark 8: unrealized of −2 @ 9 = +2.
    #[test]
    fn partial_closes_flips_and_marks() {
        let mut l = Ledger::new(amt("100"), 1);
        l.fill(&fill(T0, 1, Side::Buy, "10", "3", "0.3"));
        l.fill(&fill(T0 + S, 2, Side::Sell, "12", "1", "0.12"));
        l.fill(&fill(T0 + 2 * S, 3, Side::Sell, "9", "4", "0.36"));
        l.mark(T0 + 3 * S, 0, px("8"));
        l.observe(T0 + 3 * S);
        let s = l.finish(T0 + 4 * S);
        let pnl: Vec<Amount> = s.trades.iter().map(|t| t.pnl).collect();
        assert_eq!(pnl, [amt("1.78"), amt("-2.38")]);
        assert_eq!(s.trades[1].qty, q("2"));
        assert_eq!(s.metrics.round_trips, 1);
        // realized net = 2 − 2 − 0.78 = −0.78; unrealized +2.
        assert_close!(s.metrics.realized_pnl, -0.78);
        assert_close!(s.metrics.unrealized_pnl, 2.0);
        assert_close!(s.metrics.total_pnl, 1.22);
        // The open fee left (0.18) is what separates trade PnL from realized PnL.
        assert_close!(1.78 - 2.38 - 0.18, s.metrics.realized_pnl);
        assert_close!(s.metrics.exposure, 1.0);
        assert_eq!(s.metrics.win_rate, Some(0.5));
    }

    /// Fills of one order walking the book make one trade; slippage against the decision mid.
    #[test]
    fn one_order_is_one_trade_and_slippage_is_signed() {
        let mut l = Ledger::new(amt("1000"), 1);
        let mut b = fill(T0, 1, Side::Buy, "101", "1", "0");
        b.decision_px = Some(px("100"));
        l.fill(&b);
        let mut s1 = fill(T0 + S, 2, Side::Sell, "99", "0.5", "0");
        s1.decision_px = Some(px("100"));
        let mut s2 = s1;
        s2.px = px("98");
        l.fill(&s1);
        l.fill(&s2);
        let s = l.finish(T0 + S);
        assert_eq!(s.metrics.trades, 1);
        assert_eq!(s.trades[0].pnl, amt("-2.5"));
        // Buy 1 above by 1, sells 0.5 below by 1 and 0.5 below by 2: 1 + 0.5 + 1 = 2.5 paid.
        assert_close!(s.metrics.slippage, 2.5);
        assert_close!(s.metrics.slippage_bps.unwrap(), 2.5 / (101.0 + 49.5 + 49.0) * 1e4);
        assert_eq!(s.metrics.profit_factor, Some(0.0));
        assert_eq!(s.metrics.win_rate, Some(0.0));
    }

    /// Days: PnL per UTC day with events (an empty day in between is not listed); zero-return
    /// bars over the gap.
    #[test]
    fn days_and_gaps() {
        let mut l = Ledger::new(amt("1000"), 1);
        l.fill(&fill(T0 + 3600 * S, 1, Side::Buy, "100", "1", "0"));
        l.mark(T0 + 7200 * S, 0, px("110"));
        l.observe(T0 + 7200 * S);
        // Two days later.
        l.fill(&fill(T0 + 2 * DAY_NS + 60 * S, 2, Side::Sell, "90", "1", "0"));
        let s = l.finish(T0 + 2 * DAY_NS + 60 * S);
        let d: Vec<(&str, f64, u64)> = s.daily.iter().map(|d| (d.date.as_str(), d.pnl, d.trades)).collect();
        assert_eq!(d, [("2024-08-08", 10.0, 0), ("2024-08-10", -20.0, 1)]);
        assert_close!(s.daily[0].ret, 0.01);
        assert_close!(s.daily[1].ret, -20.0 / 1010.0);
        // Bars from 01:00 to day 2 00:01 inclusive of the last partial one: the first closes at
        // 01:01 (unchanged), ... every minute is one period.
        let minutes = (2 * DAY_NS + 60 * S - 3660 * S) / (60 * S);
        assert_eq!(s.metrics.periods, minutes + 1);
        assert_close!(s.metrics.total_pnl, -10.0);
        // Peak 1010 at 02:00, below it until the end.
        assert_close!(s.metrics.max_drawdown_duration_s, (2 * DAY_NS + 60 * S - 7200 * S) as f64 / 1e9);
    }

    #[test]
    fn no_fills_means_undefined_ratios() {
        let mut l = Ledger::new(amt("1000"), 2);
        l.observe(T0);
        let s = l.finish(T0 + 10 * S);
        let m = &s.metrics;
        assert_eq!(
            (m.trades, m.win_rate, m.sharpe, m.sortino, m.calmar, m.profit_factor),
            (0, None, None, None, None, None)
        );
        assert_eq!(m.max_drawdown, 0.0);
        assert_eq!(m.exposure, 0.0);
        assert_eq!(m.periods, 1);
        assert_close!(m.span_s, 10.0);
        assert_eq!(s.curve.last().map(|p| p.positions.len()), Some(2));
    }

    #[test]
    fn nothing_seen_means_nothing_listed() {
        let s = Ledger::new(amt("1000"), 1).finish(0);
        assert!(s.daily.is_empty() && s.curve.is_empty() && s.trades.is_empty());
        assert_eq!((s.metrics.periods, s.metrics.total_pnl, s.metrics.span_s), (0, 0.0, 0.0));
    }

    #[test]
    fn moments_merge_zeros_exactly() {
        let mut a = Moments::default();
        let mut b = Moments::default();
        for r in [0.01, -0.02, 0.03] {
            a.push(r);
            b.push(r);
        }
        a.push_zeros(5);
        for _ in 0..5 {
            b.push(0.0);
        }
        assert_eq!(a.n, b.n);
        assert_close!(a.mean, b.mean);
        assert_close!(a.m2, b.m2);
        assert_close!(a.down2, b.down2);
    }

    #[test]
    fn curve_is_bounded() {
        let mut l = Ledger::new(amt("1000"), 1);
        for k in 0..(3 * CURVE_POINTS_MAX as u64) {
            l.observe(T0 + k * S);
        }
        let s = l.finish(T0 + 3 * CURVE_POINTS_MAX as u64 * S);
        assert!(s.curve.len() <= CURVE_POINTS_MAX + 1);
        assert!(s.curve.windows(2).all(|w| w[0].ts_ns < w[1].ts_ns));
    }
}
