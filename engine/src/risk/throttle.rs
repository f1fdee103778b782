//! The venue's order-rate limits: at most `per_10s` orders in any 10-second window and
//! `per_day` per UTC day (Binance spot's `ORDERS` limits). Exact: the window keeps the send
//! times of the last `per_10s` orders in a preallocated ring.
//!
//! Hot thread; allocates only in `new`.

use super::breaker::DAY_NS;

pub const WINDOW_NS: u64 = 10_000_000_000;

#[derive(Debug, Clone)]
pub struct OrderRate {
    /// Send times of the last `sent.len()` orders; `head` is the oldest once full.
    sent: Vec<u64>,
    head: usize,
    len: usize,
    per_day: u32,
    /// First ns of the UTC day `today` counts (day 0 at first): the hot path compares times
    /// instead of dividing them.
    day_start_ns: u64,
    today: u32,
}

impl OrderRate {
    pub fn new(per_10s: u32, per_day: u32) -> Self {
        Self { sent: vec![0; per_10s.max(1) as usize], head: 0, len: 0, per_day, day_start_ns: 0, today: 0 }
    }

    /// Is `ts_ns` in the day `today` counts? (Before it, the difference wraps past `DAY_NS`.)
    #[inline]
    fn in_day(&self, ts_ns: u64) -> bool {
        ts_ns.wrapping_sub(self.day_start_ns) < DAY_NS
    }

    /// Orders counted for the UTC day of `ts_ns`.
    #[inline]
    fn today(&self, ts_ns: u64) -> u32 {
        if self.in_day(ts_ns) { self.today } else { 0 }
    }

    /// Would one more order at `ts_ns` stay within both limits?
    #[inline]
    pub fn allows(&self, ts_ns: u64) -> bool {
        if self.today(ts_ns) >= self.per_day {
            return false;
        }
        // Full ring: the oldest of the last `per_10s` orders must have left the window.
        self.len < self.sent.len() || ts_ns.saturating_sub(self.sent[self.head]) >= WINDOW_NS
    }

    /// Records an order sent at `ts_ns`.
    #[inline]
    pub fn record(&mut self, ts_ns: u64) {
        if !self.in_day(ts_ns) {
            self.day_start_ns = ts_ns / DAY_NS * DAY_NS;
            self.today = 0;
        }
        self.today = self.today.saturating_add(1);
        let n = self.sent.len();
        if self.len < n {
            let at = self.head + self.len;
            self.sent[if at >= n { at - n } else { at }] = ts_ns;
            self.len += 1;
        } else {
            self.sent[self.head] = ts_ns;
            self.head = if self.head + 1 == n { 0 } else { self.head + 1 };
        }
    }

    /// Orders in the 10 s before `ts_ns` (inclusive of `ts_ns`), and today's count. Send
    /// times are recorded in order, so the window's start is found by binary search.
    pub fn usage(&self, ts_ns: u64) -> (u32, u32) {
        let n = self.sent.len();
        let at = |k: usize| self.sent[(self.head + k) % n];
        let (mut lo, mut hi) = (0, self.len);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if ts_ns.saturating_sub(at(mid)) >= WINDOW_NS {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        ((self.len - lo) as u32, self.today(ts_ns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_window_admits_exactly_the_limit() {
        let mut r = OrderRate::new(3, 1000);
        let t = 5 * DAY_NS;
        for k in 0..3 {
            assert!(r.allows(t + k));
            r.record(t + k);
        }
        assert!(!r.allows(t + 3));
        assert!(!r.allows(t + WINDOW_NS - 1), "the first order is still inside the window");
        assert!(r.allows(t + WINDOW_NS), "the first order has left it");
        assert_eq!(r.usage(t + 3), (3, 3));
    }

    #[test]
    fn the_day_limit_resets_at_midnight_utc() {
        let mut r = OrderRate::new(100, 2);
        let t = 5 * DAY_NS + DAY_NS - 1_000;
        r.record(t);
        r.record(t + 1);
        assert!(!r.allows(t + 2));
        assert!(r.allows(6 * DAY_NS));
    }

    proptest! {
        /// Against a naive count over every recorded send.
        #[test]
        fn matches_naive_counting(gaps in proptest::collection::vec(0u64..4_000_000_000, 1..200), limit in 1u32..8) {
            let mut r = OrderRate::new(limit, u32::MAX);
            let mut sent: Vec<u64> = Vec::new();
            let mut t = DAY_NS;
            for g in gaps {
                t += g;
                let naive = sent.iter().filter(|&&s| t - s < WINDOW_NS).count() < limit as usize;
                prop_assert_eq!(r.allows(t), naive);
                let in_window = sent.iter().filter(|&&s| t - s < WINDOW_NS).count() as u32;
                prop_assert_eq!(r.usage(t).0, in_window);
                if naive {
                    r.record(t);
                    sent.push(t);
                }
            }
        }
    }
}
