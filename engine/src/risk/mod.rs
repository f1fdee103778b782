//! The pre-trade risk manager: every order in every mode passes [`RiskManager::check`]; there
//! is no other way to an order. Each refusal has a [`RejectReason`], counted per reason.
//!
//! Checks, in order (the first that fails decides the reason):
//! 1. a reduce-only order must really reduce (`max_position`);
//! 2. the kill switch: tripped, nothing that increases exposure passes (`kill_switch`);
//! 3. manual halt and event back-pressure: only reduce-only orders pass (`halted`,
//!    `backpressure`);
//! 4. a valid, fresh book and a live feed (`no_market`);
//! 5. the price band around the mid — fat finger (`price_band`);
//! 6. exchange filters: tick size, lot size (step, min, max quantity), min notional;
//! 7. with the venue's balances (live): a sell no larger than the base asset held
//!    (`max_position`), a buy no larger than the quote asset held (`capital`); without
//!    `risk.allow_short`, no sell below a flat position (`max_position`);
//! 8. max open orders, no duplicate of an order just sent, the venue's order-rate limits;
//! 9. for orders that increase exposure: position per symbol (quantity and notional), total
//!    position, deployable capital (total − reserve), and risk per trade (the loss at the stop
//!    distance within `risk_per_trade` × deployable capital).
//!
//! An admitted order is recorded (duplicate window, rate limits): `check` returning `Ok` means
//! the order is sent. Circuit breakers ([`breaker`]) watch equity on every mark and fill.
//!
//! All limits are exact fixed-point comparisons. Hot thread; no allocation after `new`.

pub mod breaker;
pub mod grid;
pub mod position;
mod restore;
pub mod throttle;

use breaker::{Breaker, BreakerUpdate, PPB, ppb};
use grid::Grid;
use hft_shared::config::Config;
use hft_shared::msg::{KillCause, RejectReason};
use hft_shared::{Amount, Px, Qty, Side};
pub use position::Position;
use throttle::OrderRate;

/// What the risk manager is asked to allow.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Intent {
    pub symbol: usize,
    pub side: Side,
    pub qty: Qty,
    /// Price the order is expected to trade at (touch for market orders, limit price else).
    pub px: Px,
    /// Only reduces the absolute position.
    pub reduce_only: bool,
    /// A resting limit order at `px` (else a market order expected to trade at `px`).
    pub limit: bool,
}

/// Engine state the checks read.
#[derive(Debug, Clone, Copy)]
pub struct RiskView<'a> {
    pub positions: &'a [Position],
    /// Mark per symbol (for the total-position check); zero when unknown.
    pub marks: &'a [Px],
    /// Mid of the intent's symbol, for the price band.
    pub mid: Px,
    pub open_orders: u32,
    /// Audit events are waiting for ring space.
    pub backpressure: bool,
    /// A valid, fresh book and a live feed exist to price the order.
    pub market_ok: bool,
    /// What the account holds at the venue, when the venue reports it (live mode; `None`: not
    /// limited, as with simulated fills): the free balance of the symbol's base asset, the most
    /// a sell may sell — a spot account sells only what it holds — and of its quote asset, the
    /// most a buy may spend.
    pub sellable: Option<Qty>,
    pub spendable: Option<Amount>,
}

/// The last admitted order of a symbol, for the duplicate check.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct LastOrder {
    side: Option<Side>,
    qty: Qty,
    px: Px,
    ts_ns: u64,
}

#[derive(Debug, Clone)]
pub struct RiskManager {
    /// Manual halt (operator); separate from the kill switch.
    pub halted: bool,
    max_position: Amount,
    max_position_qty: Qty,
    max_total_position: Amount,
    deployable: Amount,
    /// `risk_per_trade` × deployable capital × PPB: the most an order may lose at the stop.
    max_trade_risk_ppb: i128,
    /// The largest order notional risk per trade allows, `⌊max_trade_risk_ppb / stop_ppb⌋`:
    /// `notional × stop_ppb > max_trade_risk_ppb` exactly when `notional > max_trade_notional`.
    max_trade_notional: Amount,
    stop_ppb: i64,
    band_ppb: i64,
    min_notional: Amount,
    tick: Grid,
    step: Qty,
    lot: Grid,
    min_qty: Qty,
    max_qty: Qty,
    max_open_orders: u32,
    allow_short: bool,
    duplicate_window_ns: u64,
    last: Vec<LastOrder>,
    rate: OrderRate,
    breaker: Breaker,
    capital: Amount,
    /// PnL (realized net of fees + unrealized) per symbol at its last mark, and their sum.
    pnl: Vec<Amount>,
    pnl_total: Amount,
    /// Refusals per reason.
    pub rejects: [u64; RejectReason::COUNT],
}

impl RiskManager {
    pub fn new(cfg: &Config) -> Self {
        let amt = |v: f64| Amount::from_f64(v).unwrap_or(Amount::ZERO);
        let r = &cfg.risk;
        let f = &cfg.filters;
        let capital = amt(cfg.capital.total);
        let deployable = amt(cfg.capital.deployable());
        let n = cfg.symbols.len();
        let step = Qty::from_f64(f.step_size).unwrap_or(Qty(1)).max(Qty(1));
        Self {
            halted: false,
            max_position: amt(r.max_position),
            max_position_qty: Qty::from_f64(r.max_position_qty).unwrap_or(Qty::ZERO),
            max_total_position: amt(r.max_total_position),
            deployable,
            max_trade_risk_ppb: deployable.raw() * ppb(r.risk_per_trade),
            max_trade_notional: Amount(deployable.raw() * ppb(r.risk_per_trade) / ppb(r.stop_distance).max(1)),
            stop_ppb: ppb(r.stop_distance) as i64,
            band_ppb: ppb(r.price_band) as i64,
            min_notional: amt(f.min_notional),
            tick: Grid::new(Px::from_f64(f.tick_size).map_or(1, Px::raw)),
            step,
            lot: Grid::new(step.raw()),
            min_qty: Qty::from_f64(f.min_qty).unwrap_or(Qty::ZERO),
            max_qty: Qty::from_f64(f.max_qty).unwrap_or(Qty::MAX),
            max_open_orders: r.max_open_orders,
            allow_short: r.allow_short,
            duplicate_window_ns: r.duplicate_window_ms * 1_000_000,
            last: vec![LastOrder::default(); n],
            rate: OrderRate::new(r.orders_per_10s, r.orders_per_day),
            breaker: Breaker::new(capital, r.daily_loss, r.max_drawdown),
            capital,
            pnl: vec![Amount::ZERO; n],
            pnl_total: Amount::ZERO,
            rejects: [0; RejectReason::COUNT],
        }
    }

    /// Largest quantity on the lot grid not above `qty`.
    #[inline]
    pub fn round_qty(&self, qty: Qty) -> Qty {
        Qty(qty.raw() - qty.raw().rem_euclid(self.step.raw()))
    }

    /// `risk.allow_short`: a position may go below zero.
    pub fn allow_short(&self) -> bool {
        self.allow_short
    }

    /// Maximum absolute position notional per symbol.
    pub fn max_position(&self) -> Amount {
        self.max_position
    }

    /// The largest order quantity at `px` that risk per trade allows, on the lot grid: the
    /// loss at the stop distance, `qty × px × stop`, within `risk_per_trade` × deployable.
    #[inline]
    pub fn max_trade_qty(&self, px: Px) -> Qty {
        let den = i128::from(px.raw()) * i128::from(self.stop_ppb);
        if den <= 0 {
            return Qty::ZERO;
        }
        // notional(px, q) = px.raw × q.raw (1e-16 units); limit: px × q × stop_ppb ≤ risk_ppb.
        let q = (self.max_trade_risk_ppb / den).min(i64::MAX as i128) as i64;
        self.round_qty(Qty(q))
    }

    /// The tripped kill switch, if any.
    #[inline]
    pub fn kill_switch(&self) -> Option<KillCause> {
        self.breaker.tripped()
    }

    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// Orders in the last 10 s and today, at `ts_ns`.
    pub fn order_usage(&self, ts_ns: u64) -> (u32, u32) {
        self.rate.usage(ts_ns)
    }

    /// Re-arms a tripped kill switch; false when it was not tripped.
    pub fn rearm(&mut self) -> bool {
        self.breaker.rearm()
    }

    /// Marks `symbol`'s position `pos` at `mark` (or after a fill) and runs the breakers on the
    /// resulting equity at decision time `ts_ns`.
    #[inline]
    pub fn mark(&mut self, symbol: usize, pos: &Position, mark: Px, ts_ns: u64) -> BreakerUpdate {
        let pnl = if mark.raw() > 0 { pos.realized_net() + pos.unrealized(mark) } else { pos.realized_net() };
        self.pnl_total += pnl - self.pnl[symbol];
        self.pnl[symbol] = pnl;
        self.breaker.update(self.capital + self.pnl_total, ts_ns)
    }

    /// Allows or refuses `it` at decision time `ts_ns`. An allowed order counts as sent
    /// (duplicate window, rate limits); refusals are counted per reason.
    #[inline]
    pub fn check(&mut self, it: &Intent, v: &RiskView<'_>, ts_ns: u64) -> Result<(), RejectReason> {
        let r = self.evaluate(it, v, ts_ns);
        match r {
            Ok(()) => {
                self.rate.record(ts_ns);
                self.last[it.symbol] = LastOrder { side: Some(it.side), qty: it.qty, px: it.px, ts_ns };
            }
            Err(reason) => self.rejects[reason.index()] += 1,
        }
        r
    }

    #[inline]
    fn evaluate(&self, it: &Intent, v: &RiskView<'_>, ts_ns: u64) -> Result<(), RejectReason> {
        let pos = v.positions[it.symbol].qty;
        let new_pos = Qty(pos.raw() + it.side.sign() * it.qty.raw());
        // Reduces: same sign (or flat) and smaller magnitude.
        let reduces = new_pos.raw().abs() < pos.raw().abs()
            && (new_pos.raw() == 0 || new_pos.raw().signum() == pos.raw().signum());
        if it.reduce_only && !reduces {
            return Err(RejectReason::MaxPosition);
        }
        if self.breaker.tripped().is_some() && !reduces {
            return Err(RejectReason::KillSwitch);
        }
        // A halt stops every strategy order; only explicit reduce-only orders (flatten) pass.
        if self.halted && !it.reduce_only {
            return Err(RejectReason::Halted);
        }
        if v.backpressure && !it.reduce_only {
            return Err(RejectReason::Backpressure);
        }
        if !v.market_ok || it.px.raw() <= 0 || v.mid.raw() <= 0 {
            return Err(RejectReason::NoMarket);
        }
        let off = i128::from(it.px.raw().abs_diff(v.mid.raw()));
        if off * PPB > i128::from(self.band_ppb) * i128::from(v.mid.raw()) {
            return Err(RejectReason::PriceBand);
        }
        if !self.tick.contains(it.px.raw()) {
            return Err(RejectReason::TickSize);
        }
        if it.qty.raw() <= 0 || !self.lot.contains(it.qty.raw()) || it.qty < self.min_qty || it.qty > self.max_qty {
            return Err(RejectReason::LotSize);
        }
        let notional = Amount::notional(it.px, it.qty);
        if notional < self.min_notional {
            return Err(RejectReason::MinNotional);
        }
        // A spot account cannot go short of what it holds nor spend what it does not have: the
        // venue would refuse the order (-2010), after it had counted against the rate limits.
        if it.side == Side::Sell
            && (v.sellable.is_some_and(|max| it.qty > max) || (!self.allow_short && new_pos.raw() < 0))
        {
            return Err(RejectReason::MaxPosition);
        }
        if it.side == Side::Buy && v.spendable.is_some_and(|max| notional > max) {
            return Err(RejectReason::Capital);
        }
        if v.open_orders >= self.max_open_orders {
            return Err(RejectReason::MaxOpenOrders);
        }
        let last = &self.last[it.symbol];
        if last.side == Some(it.side)
            && last.qty == it.qty
            && last.px == it.px
            && ts_ns.saturating_sub(last.ts_ns) < self.duplicate_window_ns
        {
            return Err(RejectReason::Duplicate);
        }
        if !self.rate.allows(ts_ns) {
            return Err(RejectReason::RateLimit);
        }
        if !reduces {
            let new_abs = new_pos.abs();
            let symbol_notional = Amount::notional(it.px, new_abs);
            if new_abs > self.max_position_qty || symbol_notional > self.max_position {
                return Err(RejectReason::MaxPosition);
            }
            let mut total = symbol_notional;
            for (i, p) in v.positions.iter().enumerate() {
                if i != it.symbol {
                    total += Amount::notional(v.marks[i], p.qty.abs());
                }
            }
            if total > self.max_total_position {
                return Err(RejectReason::MaxTotalPosition);
            }
            if total > self.deployable {
                return Err(RejectReason::Capital);
            }
            if notional > self.max_trade_notional {
                return Err(RejectReason::RiskPerTrade);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
