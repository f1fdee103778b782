//! Circuit breakers and the kill switch they latch.
//!
//! Two breakers watch equity (capital + realized net of fees + unrealized, marked to the book):
//! * **daily loss**: equity at or below the day's starting equity minus `risk.daily_loss` ×
//!   `capital.total`; the day starts at 00:00 UTC of the *decision* time (recorded time in a
//!   backtest), so no wall clock enters a decision;
//! * **drawdown**: equity at or below its peak × (1 − `risk.max_drawdown`).
//!
//! Either trips the kill switch, which latches: a new day does not clear it, a manual resume
//! does not clear it; only [`Breaker::rearm`] does. Re-arming accepts the losses so far: the
//! peak and the day's baseline restart from the current equity.
//!
//! All arithmetic is exact (`Amount`, i128 1e-16 units; fractions in parts per billion).
//! Hot thread; no allocation.

use hft_shared::Amount;
use hft_shared::msg::KillCause;

/// Nanoseconds per UTC day (Unix time has no leap seconds).
pub const DAY_NS: u64 = 86_400 * 1_000_000_000;
/// Fractions are held in parts per billion.
pub const PPB: i128 = 1_000_000_000;

/// Converts a fraction in [0, 1] to parts per billion.
pub fn ppb(fraction: f64) -> i128 {
    (fraction * PPB as f64).round() as i128
}

/// What one equity update changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BreakerUpdate {
    /// A new UTC day began with this update: the day's baseline is the equity now.
    pub day_rollover: bool,
    /// The kill switch tripped with this update (it was armed and untripped before).
    pub tripped: Option<KillCause>,
}

#[derive(Debug, Clone)]
pub struct Breaker {
    /// Loss since the day's start that trips, quote currency (`daily_loss` × capital).
    daily_loss_limit: Amount,
    /// Drawdown from the peak that trips, parts per billion of the peak.
    max_drawdown_ppb: i128,
    /// Start of the UTC day after the last update's, Unix ns; 0 before the first update.
    /// An update before it stays in its day without dividing its time.
    next_day_ns: u64,
    day_start: Amount,
    peak: Amount,
    equity: Amount,
    tripped: Option<KillCause>,
    /// Equity at or below which each breaker trips, kept up to date when the baselines move
    /// (rarely), so an update is two comparisons.
    daily_floor: Amount,
    drawdown_floor: Amount,
}

impl Breaker {
    /// `capital`: the equity before any PnL (capital.total).
    pub fn new(capital: Amount, daily_loss_fraction: f64, max_drawdown_fraction: f64) -> Self {
        let daily_loss_limit = capital.mul_div(ppb(daily_loss_fraction), PPB).unwrap_or(Amount::ZERO);
        let mut b = Self {
            daily_loss_limit,
            max_drawdown_ppb: ppb(max_drawdown_fraction),
            next_day_ns: 0,
            day_start: capital,
            peak: capital,
            equity: capital,
            tripped: None,
            daily_floor: Amount::ZERO,
            drawdown_floor: Amount::ZERO,
        };
        b.set_day_start(capital);
        b.set_peak(capital);
        b
    }

    /// The day's loss is measured from `equity`: the daily breaker trips at `equity − limit`
    /// (never when the limit is zero).
    fn set_day_start(&mut self, equity: Amount) {
        self.day_start = equity;
        self.daily_floor =
            if self.daily_loss_limit > Amount::ZERO { equity - self.daily_loss_limit } else { Amount(i128::MIN) };
    }

    /// New peak. Drawdown trips when `(peak − equity) × PPB ≥ max_drawdown_ppb × peak`, i.e.
    /// (all integers) when `equity ≤ peak − ⌈max_drawdown_ppb × peak / PPB⌉`; never for a
    /// peak ≤ 0.
    fn set_peak(&mut self, peak: Amount) {
        self.peak = peak;
        self.drawdown_floor = if peak > Amount::ZERO {
            let d = self.max_drawdown_ppb.saturating_mul(peak.raw());
            Amount(peak.raw() - (d / PPB + i128::from(d % PPB != 0)))
        } else {
            Amount(i128::MIN)
        };
    }

    /// New equity at decision time `ts_ns` (Unix ns). Rolls the day over at 00:00 UTC, raises
    /// the peak, and trips the kill switch when a breaker's limit is reached.
    #[inline]
    pub fn update(&mut self, equity: Amount, ts_ns: u64) -> BreakerUpdate {
        let mut out = BreakerUpdate::default();
        self.equity = equity;
        // Before the next day's start (`next_day_ns` is 0 until the first update): the same
        // day, or an earlier one, which does not move the day back.
        if ts_ns >= self.next_day_ns {
            self.new_day(ts_ns, equity, &mut out);
        }
        if equity > self.peak {
            self.set_peak(equity);
        }
        if self.tripped.is_none() {
            out.tripped = self.breach();
            self.tripped = out.tripped;
        }
        out
    }

    /// The first update, or the first of a later UTC day: rolls the day over (not on the first
    /// update, where the baseline set in `new`, or restored, stands for this day).
    #[cold]
    fn new_day(&mut self, ts_ns: u64, equity: Amount, out: &mut BreakerUpdate) {
        // Saturated: the last representable day, which `ts_ns` is in already.
        if self.next_day_ns == u64::MAX {
            return;
        }
        if self.next_day_ns != 0 {
            self.set_day_start(equity);
            out.day_rollover = true;
        }
        self.set_day(ts_ns / DAY_NS);
    }

    /// UTC day `day` (days since the epoch) is the current one.
    fn set_day(&mut self, day: u64) {
        self.next_day_ns = day.saturating_add(1).saturating_mul(DAY_NS);
    }

    /// The breaker whose limit the current equity reaches, daily loss first.
    #[inline]
    fn breach(&self) -> Option<KillCause> {
        if self.equity <= self.daily_floor {
            Some(KillCause::DailyLoss)
        } else if self.equity <= self.drawdown_floor {
            Some(KillCause::Drawdown)
        } else {
            None
        }
    }

    /// Clears a tripped kill switch; the peak and the day's baseline restart from the current
    /// equity. Returns false when it was not tripped (nothing changes).
    pub fn rearm(&mut self) -> bool {
        if self.tripped.take().is_none() {
            return false;
        }
        self.set_peak(self.equity);
        self.set_day_start(self.equity);
        true
    }

    /// Carries the breakers over a restart (before the first update): the latch, the peak, and
    /// the baseline of UTC day `day`, with `equity` the equity the restored positions make now.
    /// A trip is never cleared here. When the first update falls on a later day, it rolls the
    /// day over as usual: the baseline of an earlier day is not today's budget.
    pub fn restore(&mut self, day: u64, day_start: Amount, peak: Amount, tripped: Option<KillCause>, equity: Amount) {
        self.set_day(day);
        self.set_day_start(day_start);
        self.set_peak(peak);
        self.equity = equity;
        self.tripped = self.tripped.or(tripped);
    }

    #[inline]
    pub fn tripped(&self) -> Option<KillCause> {
        self.tripped
    }
    pub fn equity(&self) -> Amount {
        self.equity
    }
    pub fn peak(&self) -> Amount {
        self.peak
    }
    pub fn day_start(&self) -> Amount {
        self.day_start
    }
    /// Equity change since the day's start (negative: a loss).
    pub fn daily_pnl(&self) -> Amount {
        self.equity - self.day_start
    }
    pub fn daily_loss_limit(&self) -> Amount {
        self.daily_loss_limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amt(v: i64) -> Amount {
        Amount::from_fixed8(v * 100_000_000)
    }
    const T0: u64 = 1_723_161_255 * 1_000_000_000; // 2024-08-08 23:54:15 UTC

    #[test]
    fn daily_loss_trips_at_the_limit_not_before() {
        let mut b = Breaker::new(amt(10_000), 0.05, 0.5);
        assert_eq!(b.update(amt(10_000), T0).tripped, None);
        // 499.99999999 lost: just under 500.
        let just_under = amt(9_500) + Amount::from_fixed8(1);
        assert_eq!(b.update(just_under, T0 + 1).tripped, None);
        assert_eq!(b.update(amt(9_500), T0 + 2).tripped, Some(KillCause::DailyLoss));
        assert_eq!(b.tripped(), Some(KillCause::DailyLoss));
        // Latched: recovering does not clear it, nor does reporting it twice.
        assert_eq!(b.update(amt(10_000), T0 + 3).tripped, None);
        assert_eq!(b.tripped(), Some(KillCause::DailyLoss));
    }

    #[test]
    fn drawdown_trips_from_the_peak() {
        let mut b = Breaker::new(amt(10_000), 0.5, 0.10);
        b.update(amt(12_000), T0);
        assert_eq!(b.peak(), amt(12_000));
        // 10 % of 12 000 = 1 200: 10 800 trips, one unit above does not.
        assert_eq!(b.update(amt(10_800) + Amount::from_fixed8(1), T0 + 1).tripped, None);
        assert_eq!(b.update(amt(10_800), T0 + 2).tripped, Some(KillCause::Drawdown));
    }

    #[test]
    fn the_day_rolls_over_at_midnight_utc_and_the_latch_survives_it() {
        let mut b = Breaker::new(amt(10_000), 0.05, 0.9);
        b.update(amt(9_600), T0); // -400 today
        let midnight = (T0 / DAY_NS + 1) * DAY_NS;
        let u = b.update(amt(9_600), midnight - 1);
        assert!(!u.day_rollover);
        let u = b.update(amt(9_600), midnight);
        assert!(u.day_rollover);
        assert_eq!(b.day_start(), amt(9_600));
        // The new day's budget (5 % of capital = 500) is measured from 9 600: 9 100 trips, one
        // unit above it does not.
        assert_eq!(b.update(amt(9_100) + Amount::from_fixed8(1), midnight + 1).tripped, None);
        assert_eq!(b.update(amt(9_100), midnight + 2).tripped, Some(KillCause::DailyLoss));
        let next = midnight + DAY_NS;
        let u = b.update(amt(9_100), next);
        assert!(u.day_rollover);
        assert_eq!(b.tripped(), Some(KillCause::DailyLoss), "a new day does not clear the latch");
    }

    proptest::proptest! {
        /// The precomputed floors trip exactly when the direct formulas say so.
        #[test]
        fn floors_agree_with_the_formulas(
            capital in 1i64..1_000_000_000_000,
            daily in 1u32..1_000_000_000,
            dd in 1u32..1_000_000_000,
            path in proptest::collection::vec(-1_000_000_000_000i64..1_000_000_000_000, 1..50),
        ) {
            let cap = Amount::from_fixed8(capital);
            let mut b = Breaker::new(cap, daily as f64 / 1e9, dd as f64 / 1e9);
            let (limit, dd_ppb) = (cap.mul_div(i128::from(daily), PPB).unwrap(), i128::from(dd));
            let mut peak = cap;
            for (k, step) in path.iter().enumerate() {
                let equity = Amount::from_fixed8(capital) + Amount::from_fixed8(*step);
                peak = peak.max(equity);
                let want = if cap - equity >= limit {
                    Some(KillCause::DailyLoss)
                } else if peak > Amount::ZERO && (peak - equity).raw() * PPB >= dd_ppb * peak.raw() {
                    Some(KillCause::Drawdown)
                } else {
                    None
                };
                let got = b.update(equity, T0 + k as u64).tripped;
                proptest::prop_assert_eq!(got, want);
                if got.is_some() {
                    b.rearm();
                    // Start over from here, as the re-arm did.
                    return Ok(());
                }
            }
        }
    }

    #[test]
    fn rearm_restarts_the_baselines_from_current_equity() {
        let mut b = Breaker::new(amt(10_000), 0.05, 0.10);
        assert!(!b.rearm(), "nothing to re-arm");
        b.update(amt(9_000), T0);
        assert_eq!(b.tripped(), Some(KillCause::DailyLoss));
        assert!(b.rearm());
        assert_eq!(b.tripped(), None);
        assert_eq!((b.peak(), b.day_start()), (amt(9_000), amt(9_000)));
        assert_eq!(b.update(amt(9_000), T0 + 1).tripped, None);
        // A fresh 500 budget from 9 000 (drawdown 450/9 000 = 5 % stays under 10 %).
        assert_eq!(b.update(amt(8_550), T0 + 2).tripped, None);
        assert_eq!(b.update(amt(8_500), T0 + 3).tripped, Some(KillCause::DailyLoss));
    }
}
