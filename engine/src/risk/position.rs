//! A position in one symbol with exact PnL.
//!
//! `cost` is the signed cost basis of the open quantity (positive for a long: paid; negative
//! for a short: received), in 1e-16 quote units. Reducing a position moves the closed share of
//! `cost` into `realized`; integer division only decides how the total is *split* between
//! realized and unrealized, never the total itself, so for any mark:
//! `realized + unrealized(mark) == cash_flow + qty × mark` holds exactly.
//!
//! Hot thread; no allocation.

use hft_shared::{Amount, Px, Qty, Side};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    /// Signed base quantity.
    pub qty: Qty,
    /// Signed cost basis of `qty`.
    pub cost: Amount,
    /// Realized PnL, gross of fees.
    pub realized: Amount,
    /// Fees paid (positive).
    pub fees: Amount,
}

impl Position {
    /// Applies a fill of `qty` (> 0) at `px` on `side`, paying `fee`.
    pub fn on_fill(&mut self, side: Side, px: Px, qty: Qty, fee: Amount) {
        self.fees += fee;
        let q = qty.raw() * side.sign();
        let pos = self.qty.raw();
        if pos == 0 || (pos > 0) == (q > 0) {
            self.cost += Amount::notional(px, Qty(q));
            self.qty = Qty(pos + q);
            return;
        }
        let close = q.abs().min(pos.abs());
        let closed_cost = Amount(self.cost.raw() * close as i128 / pos.abs() as i128);
        let proceeds = Amount::notional(px, Qty(close * pos.signum()));
        self.realized += proceeds - closed_cost;
        self.cost -= closed_cost;
        let left = pos + close * q.signum();
        let open = q.abs() - close;
        if open > 0 {
            // Flipped through zero: the rest opens a new position at `px`.
            debug_assert_eq!(left, 0);
            self.cost = Amount::notional(px, Qty(open * q.signum()));
            self.qty = Qty(open * q.signum());
        } else {
            self.qty = Qty(left);
            if left == 0 {
                debug_assert_eq!(self.cost, Amount::ZERO);
                self.cost = Amount::ZERO;
            }
        }
    }

    /// Unrealized PnL at `mark`.
    #[inline]
    pub fn unrealized(&self, mark: Px) -> Amount {
        Amount::notional(mark, self.qty) - self.cost
    }

    /// Realized PnL net of fees.
    #[inline]
    pub fn realized_net(&self) -> Amount {
        self.realized - self.fees
    }

    /// Average entry price (rounded toward zero), zero when flat.
    pub fn avg_px(&self) -> Px {
        if self.qty.is_zero() {
            return Px::ZERO;
        }
        Px((self.cost.raw() / self.qty.raw() as i128) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn px(s: &str) -> Px {
        Px::parse(s).unwrap()
    }
    fn q(s: &str) -> Qty {
        Qty::parse(s).unwrap()
    }

    #[test]
    fn round_trip_long_and_short() {
        let mut p = Position::default();
        p.on_fill(Side::Buy, px("100"), q("2"), Amount::ZERO);
        p.on_fill(Side::Buy, px("110"), q("1"), Amount::ZERO);
        assert_eq!(p.avg_px().to_string(), "103.33333333");
        p.on_fill(Side::Sell, px("120"), q("3"), Amount::ZERO);
        assert_eq!(p.qty, Qty::ZERO);
        assert_eq!(p.realized.to_string(), "50");
        p.on_fill(Side::Sell, px("50"), q("1"), Amount::ZERO);
        p.on_fill(Side::Buy, px("40"), q("0.5"), Amount::ZERO);
        assert_eq!(p.realized.to_string(), "55");
        assert_eq!(p.unrealized(px("45")).to_string(), "2.5");
    }

    #[test]
    fn flip_through_zero_opens_at_fill_price() {
        let mut p = Position::default();
        p.on_fill(Side::Buy, px("100"), q("1"), Amount::ZERO);
        p.on_fill(Side::Sell, px("90"), q("3"), Amount::ZERO);
        assert_eq!(p.qty, q("-2"));
        assert_eq!(p.realized.to_string(), "-10");
        assert_eq!(p.avg_px(), px("90"));
    }

    proptest! {
        #[test]
        fn total_pnl_equals_cash_flow_exactly(
            fills in proptest::collection::vec((any::<bool>(), 1i64..10_000_000_000_000, 1i64..100_000_000_000), 1..60),
            mark in 1i64..10_000_000_000_000,
        ) {
            let mut p = Position::default();
            let mut cash = Amount::ZERO;
            for (buy, pr, qt) in fills {
                let side = if buy { Side::Buy } else { Side::Sell };
                p.on_fill(side, Px(pr), Qty(qt), Amount::ZERO);
                cash -= Amount::notional(Px(pr), Qty(qt * side.sign()));
                prop_assert_eq!(p.qty.is_zero(), p.cost == Amount::ZERO || p.qty.is_zero());
            }
            let mark = Px(mark);
            prop_assert_eq!(p.realized + p.unrealized(mark), cash + Amount::notional(mark, p.qty));
            if p.qty.is_zero() {
                prop_assert_eq!(p.realized, cash);
            }
        }

        /// Fees are carried exactly and only in `fees`; the position itself is as if fee-free.
        #[test]
        fn fees_are_exact_and_separate(
            fills in proptest::collection::vec((any::<bool>(), 1i64..10_000_000_000_000, 1i64..100_000_000_000, 0i64..1_000_000_000), 1..60),
        ) {
            let (mut with, mut without) = (Position::default(), Position::default());
            let mut paid = Amount::ZERO;
            for (buy, pr, qt, fee) in fills {
                let side = if buy { Side::Buy } else { Side::Sell };
                let fee = Amount::from_fixed8(fee);
                with.on_fill(side, Px(pr), Qty(qt), fee);
                without.on_fill(side, Px(pr), Qty(qt), Amount::ZERO);
                paid += fee;
            }
            prop_assert_eq!(with.fees, paid);
            prop_assert_eq!(with.realized_net(), without.realized - paid);
            prop_assert_eq!((with.qty, with.cost, with.realized), (without.qty, without.cost, without.realized));
        }

        /// Adding to a position on one side keeps the exact volume-weighted cost; the average
        /// price is it divided by the quantity, rounded toward zero.
        #[test]
        fn same_side_fills_average_exactly(
            fills in proptest::collection::vec((1i64..10_000_000_000_000, 1i64..100_000_000_000), 1..40),
            buy in any::<bool>(),
        ) {
            let side = if buy { Side::Buy } else { Side::Sell };
            let mut p = Position::default();
            let (mut notional, mut qty) = (0i128, 0i64);
            for (pr, qt) in fills {
                p.on_fill(side, Px(pr), Qty(qt), Amount::ZERO);
                notional += i128::from(pr) * i128::from(qt);
                qty += qt;
            }
            let sign = side.sign();
            prop_assert_eq!(p.qty, Qty(sign * qty));
            prop_assert_eq!(p.cost, Amount(i128::from(sign) * notional));
            prop_assert_eq!(p.avg_px(), Px((notional / i128::from(qty)) as i64));
            prop_assert_eq!(p.realized, Amount::ZERO);
        }
    }
}
