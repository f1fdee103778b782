//! The risk manager's side of a restart: restored positions enter the account (equity) view and
//! the breakers resume from their stored baselines and latch (see [`crate::restore`]).
//!
//! Runs once on the hot thread before its first duty cycle; no allocation.

use super::RiskManager;
use crate::restore::BreakerState;
use crate::risk::Position;
use hft_shared::Px;

impl RiskManager {
    /// Takes over `positions` (index = symbol), priced at `marks` (zero: unknown, realized PnL
    /// only, as before a symbol's first quote), the stored breaker state, and the send times of
    /// the day's orders (non-decreasing), which the order-rate throttle counts as if this run
    /// had sent them. Without a breaker state the breakers keep their first-start baselines
    /// (`capital.total`).
    pub fn restore(
        &mut self,
        positions: &[Position],
        marks: &[Px],
        breaker: Option<BreakerState>,
        orders_sent: &[u64],
    ) {
        for &t in orders_sent {
            self.rate.record(t);
        }
        for (i, pos) in positions.iter().enumerate().take(self.pnl.len()) {
            let mark = marks.get(i).copied().unwrap_or(Px::ZERO);
            let pnl = if mark.raw() > 0 { pos.realized_net() + pos.unrealized(mark) } else { pos.realized_net() };
            self.pnl_total += pnl - self.pnl[i];
            self.pnl[i] = pnl;
        }
        if let Some(b) = breaker {
            self.breaker.restore(b.day, b.day_start, b.peak, b.tripped, self.capital + self.pnl_total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::risk::breaker::DAY_NS;
    use crate::risk::{Intent, RiskView};
    use hft_shared::config::Config;
    use hft_shared::msg::{KillCause, RejectReason};
    use hft_shared::{Amount, Qty, Side};

    /// 2024-08-08 23:54:15 UTC.
    const T0: u64 = 1_723_161_255 * 1_000_000_000;
    const TODAY: u64 = T0 / DAY_NS;

    fn amt(v: i64) -> Amount {
        Amount::from_fixed8(v * 100_000_000)
    }

    fn manager() -> RiskManager {
        let cfg = Config::from_toml_str(
            "symbols = ['BTCUSDT', 'ETHUSDT']\n[capital]\ntotal = 10000.0\nreserve = 0.0\n\
             [risk]\ndaily_loss = 0.05\nmax_drawdown = 0.10\n",
            &|_| None,
        )
        .expect("config");
        RiskManager::new(&cfg)
    }

    /// Long 0.1 at 50 000 with 120 realized and 20 fees: realized net 100.
    fn long() -> Position {
        let mut p = Position::default();
        p.on_fill(Side::Buy, Px::from_int(50_000), Qty(10_000_000), Amount::ZERO);
        p.realized = amt(120);
        p.fees = amt(20);
        p
    }

    /// The market at a 50 000 mid, with nothing else in the way of an order.
    fn view_at_50k<'a>(positions: &'a [Position], marks: &'a [Px]) -> RiskView<'a> {
        RiskView { marks, ..super::super::tests::view(positions) }
    }

    /// A market buy of 0.001 at 50 000.
    fn buy_at_50k() -> Intent {
        Intent {
            symbol: 0,
            side: Side::Buy,
            qty: Qty(100_000),
            px: Px::from_int(50_000),
            reduce_only: false,
            limit: false,
        }
    }

    #[test]
    fn positions_enter_equity_at_their_marks() {
        let mut r = manager();
        let positions = [long(), Position::default()];
        r.restore(&positions, &[Px::from_int(51_000), Px::ZERO], None, &[]);
        // 10 000 + 100 realized net + 0.1 × 1 000 unrealized.
        assert_eq!(r.pnl_total, amt(200));
        // Without a stored breaker state: first-start baselines.
        assert_eq!((r.breaker().day_start(), r.breaker().peak(), r.kill_switch()), (amt(10_000), amt(10_000), None));
        // A later mark replaces the restored one's contribution, not adds to it.
        r.mark(0, &positions[0], Px::from_int(50_000), T0);
        assert_eq!(r.breaker().equity(), amt(10_100));
    }

    #[test]
    fn same_day_keeps_the_baseline_and_the_latch() {
        let mut r = manager();
        let b = BreakerState { day: TODAY, day_start: amt(10_300), peak: amt(10_400), tripped: None };
        let positions = [long(), Position::default()];
        r.restore(&positions, &[Px::ZERO, Px::ZERO], Some(b), &[]);
        assert_eq!(r.breaker().equity(), amt(10_100));
        // Today's budget is 500 from 10 300: 9 800 trips. No rollover on the first update.
        let u = r.mark(0, &positions[0], Px::from_int(47_000), T0);
        // 10 000 + 100 − 0.1 × 3 000 = 9 800.
        assert!(!u.day_rollover);
        assert_eq!(r.breaker().day_start(), amt(10_300));
        assert_eq!(u.tripped, Some(KillCause::DailyLoss));
    }

    #[test]
    fn a_different_utc_day_restores_peak_and_latch_but_not_the_daily_baseline() {
        let mut r = manager();
        let yesterday = BreakerState {
            day: TODAY - 1,
            day_start: amt(11_000),
            peak: amt(10_900),
            tripped: Some(KillCause::Drawdown),
        };
        let positions = [long(), Position::default()];
        r.restore(&positions, &[Px::ZERO, Px::ZERO], Some(yesterday), &[]);
        assert_eq!(r.kill_switch(), Some(KillCause::Drawdown), "the latch survives the restart");
        let u = r.mark(0, &positions[0], Px::from_int(50_000), T0);
        assert!(u.day_rollover, "yesterday's baseline is not today's budget");
        assert_eq!(r.breaker().day_start(), amt(10_100), "today's loss is measured from the equity now");
        assert_eq!(r.breaker().peak(), amt(10_900), "the peak carries over");
        assert_eq!(r.kill_switch(), Some(KillCause::Drawdown), "a new day does not clear the latch");

        // Tripped: nothing that increases exposure passes, a reduction does.
        let positions = [long(), Position::default()];
        let marks = [Px::from_int(50_000), Px::ZERO];
        let view = view_at_50k(&positions, &marks);
        let buy = buy_at_50k();
        assert_eq!(r.check(&buy, &view, T0 + 1), Err(RejectReason::KillSwitch));
        let sell = Intent { side: Side::Sell, ..buy };
        assert_eq!(r.check(&sell, &view, T0 + 2), Ok(()));

        // Only a re-arm clears it.
        assert!(r.rearm());
        assert_eq!(r.kill_switch(), None);
    }

    #[test]
    fn a_restored_latch_is_not_replaced_by_a_fresh_trip() {
        let mut r = manager();
        let b =
            BreakerState { day: TODAY, day_start: amt(10_000), peak: amt(10_000), tripped: Some(KillCause::Drawdown) };
        r.restore(&[], &[], Some(b), &[]);
        // A loss that would trip the daily breaker reports nothing new: the latch holds its cause.
        let u = r.mark(0, &long(), Px::from_int(40_000), T0);
        assert_eq!(u.tripped, None);
        assert_eq!(r.kill_switch(), Some(KillCause::Drawdown));
    }

    /// A restart inside the day (and inside a 10-second window) keeps counting the orders sent
    /// before it: the order that would go past either limit is refused, the one just under it
    /// passes.
    #[test]
    fn the_days_orders_count_against_the_rate_limits_after_a_restart() {
        let cfg = Config::from_toml_str(
            "symbols = ['BTCUSDT']\n[capital]\ntotal = 100000.0\nreserve = 0.0\n\
             [risk]\norders_per_10s = 3\norders_per_day = 5\nduplicate_window_ms = 0\n",
            &|_| None,
        )
        .expect("config");
        let s = 1_000_000_000;
        let (positions, marks) = ([Position::default()], [Px::from_int(50_000)]);
        let view = view_at_50k(&positions, &marks);
        let buy = buy_at_50k();

        // Yesterday's order does not count; today's three, two of them in the last 10 s, do.
        let mut r = RiskManager::new(&cfg);
        r.restore(&positions, &marks, None, &[T0 - DAY_NS, T0 - 30 * s, T0 - 9 * s, T0 - 8 * s]);
        assert_eq!(r.order_usage(T0), (2, 3));
        // The 10-second window: one more now (3rd in the window), not a 4th.
        assert_eq!(r.check(&buy, &view, T0), Ok(()));
        assert_eq!(r.check(&buy, &view, T0 + 1), Err(RejectReason::RateLimit));
        // The day: the 5th passes once the window has room, the 6th does not, whenever.
        assert_eq!(r.check(&buy, &view, T0 + 2 * s), Ok(()));
        assert_eq!(r.order_usage(T0 + 2 * s).1, 5);
        assert_eq!(r.check(&buy, &view, T0 + 60 * s), Err(RejectReason::RateLimit));
        // Without the restored times the same run would have had room for five more today.
        let mut fresh = RiskManager::new(&cfg);
        fresh.restore(&positions, &marks, None, &[]);
        assert_eq!(fresh.order_usage(T0), (0, 0));
    }
}
