//! The pre-trade risk manager: every order in every mode passes `check`; there is no other way
//! to an order. Each refusal has a `RejectReason`, counted per reason.
//!
//! Checks, in order: manual halt and event back-pressure (both stop everything but explicit
//! reduce-only orders),
//! a priceable market, size (lot step and minimum notional), open-order count, the per-symbol
//! position limit and the total position limit (notional at the order's price).
//!
//! Hot thread; no allocation after `new`.

pub mod position;

use hft_shared::config::Config;
use hft_shared::msg::RejectReason;
use hft_shared::{Amount, Px, Qty, Side};
pub use position::Position;

/// What the risk manager is asked to allow.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Intent {
    pub symbol: usize,
    pub side: Side,
    pub qty: Qty,
    /// Price the order is expected to trade at (touch for market orders).
    pub px: Px,
    /// Only reduces the absolute position.
    pub reduce_only: bool,
}

#[derive(Debug, Clone)]
pub struct RiskManager {
    pub halted: bool,
    max_position: Amount,
    max_total_position: Amount,
    min_notional: Amount,
    step: Qty,
    max_open_orders: u32,
    pub rejects: [u64; RejectReason::COUNT],
}

/// Engine state the checks read.
#[derive(Debug, Clone, Copy)]
pub struct RiskView<'a> {
    pub positions: &'a [Position],
    /// Mark per symbol (for the total-position check); zero when unknown.
    pub marks: &'a [Px],
    pub open_orders: u32,
    /// Audit events are waiting for ring space.
    pub backpressure: bool,
    /// A valid book exists to price the order.
    pub market_ok: bool,
}

impl RiskManager {
    pub fn new(cfg: &Config) -> Self {
        let amt = |v: f64| Amount::from_f64(v).unwrap_or(Amount::ZERO);
        Self {
            halted: false,
            max_position: amt(cfg.risk.max_position),
            max_total_position: amt(cfg.risk.max_total_position),
            min_notional: amt(cfg.filters.min_notional),
            step: Qty::from_f64(cfg.filters.step_size).unwrap_or(Qty(1)),
            max_open_orders: cfg.risk.max_open_orders,
            rejects: [0; RejectReason::COUNT],
        }
    }

    /// Largest quantity on the lot grid not above `qty`.
    #[inline]
    pub fn round_qty(&self, qty: Qty) -> Qty {
        Qty(qty.raw() - qty.raw().rem_euclid(self.step.raw()))
    }

    /// Maximum absolute position notional per symbol.
    pub fn max_position(&self) -> Amount {
        self.max_position
    }

    /// Allows or refuses `it`; refusals are counted.
    #[inline]
    pub fn check(&mut self, it: &Intent, v: &RiskView<'_>) -> Result<(), RejectReason> {
        let r = self.evaluate(it, v);
        if let Err(reason) = r {
            self.rejects[reason.index()] += 1;
        }
        r
    }

    fn evaluate(&self, it: &Intent, v: &RiskView<'_>) -> Result<(), RejectReason> {
        let pos = v.positions[it.symbol].qty;
        let new_pos = Qty(pos.raw() + it.side.sign() * it.qty.raw());
        // Reduce-only must really reduce: same sign (or flat) and smaller magnitude.
        let reduces = new_pos.raw().abs() < pos.raw().abs()
            && (new_pos.raw() == 0 || new_pos.raw().signum() == pos.raw().signum());
        if it.reduce_only && !reduces {
            return Err(RejectReason::MaxPosition);
        }
        // A halt stops every strategy order; only explicit reduce-only orders (flatten) pass.
        if self.halted && !it.reduce_only {
            return Err(RejectReason::Halted);
        }
        if v.backpressure && !it.reduce_only {
            return Err(RejectReason::Backpressure);
        }
        if !v.market_ok || it.px.raw() <= 0 {
            return Err(RejectReason::NoMarket);
        }
        if it.qty.raw() <= 0
            || it.qty.raw() % self.step.raw() != 0
            || Amount::notional(it.px, it.qty) < self.min_notional
        {
            return Err(RejectReason::TooSmall);
        }
        if v.open_orders >= self.max_open_orders {
            return Err(RejectReason::MaxOpenOrders);
        }
        if !reduces {
            if Amount::notional(it.px, new_pos.abs()) > self.max_position {
                return Err(RejectReason::MaxPosition);
            }
            let mut total = Amount::notional(it.px, new_pos.abs());
            for (i, p) in v.positions.iter().enumerate() {
                if i != it.symbol {
                    total += Amount::notional(v.marks[i], p.qty.abs());
                }
            }
            if total > self.max_total_position {
                return Err(RejectReason::MaxPosition);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hft_shared::config::Config;

    fn rm() -> RiskManager {
        let cfg = Config::from_toml_str(
            "[risk]\nmax_position = 1000.0\n[filters]\nstep_size = 0.00001\nmin_notional = 5.0\n",
            &|_| None,
        )
        .unwrap();
        RiskManager::new(&cfg)
    }
    fn view(positions: &[Position]) -> RiskView<'_> {
        RiskView { positions, marks: &[Px::ZERO], open_orders: 0, backpressure: false, market_ok: true }
    }
    fn buy(qty: &str) -> Intent {
        Intent {
            symbol: 0,
            side: Side::Buy,
            qty: Qty::parse(qty).unwrap(),
            px: Px::from_int(50_000),
            reduce_only: false,
        }
    }

    #[test]
    fn position_limit_refuses_the_breach_and_admits_just_under() {
        let mut r = rm();
        let flat = [Position::default()];
        // 0.02 × 50000 = 1000: at the limit, admitted; one more step is over.
        assert_eq!(r.check(&buy("0.02"), &view(&flat)), Ok(()));
        assert_eq!(r.check(&buy("0.02001"), &view(&flat)), Err(RejectReason::MaxPosition));
        assert_eq!(r.rejects[RejectReason::MaxPosition.index()], 1);
    }

    #[test]
    fn halt_blocks_new_risk_but_not_reduction() {
        let mut r = rm();
        r.halted = true;
        let long = [Position { qty: Qty::parse("0.01").unwrap(), ..Default::default() }];
        assert_eq!(r.check(&buy("0.001"), &view(&long)), Err(RejectReason::Halted));
        let strategy_sell = Intent { side: Side::Sell, ..buy("0.005") };
        assert_eq!(
            r.check(&strategy_sell, &view(&long)),
            Err(RejectReason::Halted),
            "halt silences strategies entirely"
        );
        let sell = Intent { side: Side::Sell, reduce_only: true, ..buy("0.01") };
        assert_eq!(r.check(&sell, &view(&long)), Ok(()));
        let too_far = Intent { side: Side::Sell, reduce_only: true, ..buy("0.02") };
        assert_eq!(r.check(&too_far, &view(&long)), Err(RejectReason::MaxPosition));
    }

    #[test]
    fn backpressure_blocks_new_risk() {
        let mut r = rm();
        let flat = [Position::default()];
        let v = RiskView { backpressure: true, ..view(&flat) };
        assert_eq!(r.check(&buy("0.001"), &v), Err(RejectReason::Backpressure));
    }

    #[test]
    fn size_and_market_checks() {
        let mut r = rm();
        let flat = [Position::default()];
        // 0.0001 × 50000 = 5 = min notional: admitted; 0.00009 is below.
        assert_eq!(r.check(&buy("0.0001"), &view(&flat)), Ok(()));
        assert_eq!(r.check(&buy("0.00009"), &view(&flat)), Err(RejectReason::TooSmall));
        assert_eq!(r.check(&buy("0.000015"), &view(&flat)), Err(RejectReason::TooSmall), "off the lot grid");
        let v = RiskView { market_ok: false, ..view(&flat) };
        assert_eq!(r.check(&buy("0.001"), &v), Err(RejectReason::NoMarket));
        let v = RiskView { open_orders: 8, ..view(&flat) };
        assert_eq!(r.check(&buy("0.001"), &v), Err(RejectReason::MaxOpenOrders));
        assert_eq!(r.round_qty(Qty::parse("0.0123456").unwrap()), Qty::parse("0.01234").unwrap());
    }
}
