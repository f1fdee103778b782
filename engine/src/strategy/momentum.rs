//! Momentum: the return of the mid over the last `lookback` observations, scaled by
//! `threshold` and clamped to [-1, 1]. O(1) per tick over a preallocated ring of mids.
//!
//! Hot thread; allocates only in `new`.

use hft_shared::config::MomentumConfig;

#[derive(Debug, Clone)]
pub struct Momentum {
    /// Ring of the last `lookback + 1` mids.
    mids: Vec<f64>,
    head: usize,
    len: usize,
    threshold: f64,
}

impl Momentum {
    pub fn new(cfg: &MomentumConfig) -> Self {
        let n = cfg.lookback as usize + 1;
        Self { mids: vec![0.0; n], head: 0, len: 0, threshold: cfg.threshold }
    }

    /// Feeds one mid observation; returns the signal in [-1, 1] (0 until the window is full).
    #[inline]
    pub fn on_mid(&mut self, mid: f64) -> f64 {
        let n = self.mids.len();
        self.mids[self.head] = mid;
        self.head += 1;
        if self.head == n {
            self.head = 0;
        }
        if self.len < n {
            self.len += 1;
            if self.len < n {
                return 0.0;
            }
        }
        // After the write, `head` points at the oldest observation (lookback ago).
        let oldest = self.mids[self.head];
        if oldest <= 0.0 {
            return 0.0;
        }
        let ret = mid / oldest - 1.0;
        (ret / self.threshold).clamp(-1.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cfg(lookback: u32, threshold: f64) -> MomentumConfig {
        MomentumConfig { enabled: true, weight: 1.0, lookback, threshold }
    }

    #[test]
    fn silent_until_the_window_is_full_then_follows_the_trend() {
        let mut m = Momentum::new(&cfg(3, 0.01));
        assert_eq!(m.on_mid(100.0), 0.0);
        assert_eq!(m.on_mid(100.0), 0.0);
        assert_eq!(m.on_mid(100.0), 0.0);
        // 100 -> 100.5 over 3 observations: +0.5 % = half the threshold.
        assert!((m.on_mid(100.5) - 0.5).abs() < 1e-12);
        // Saturates.
        assert_eq!(m.on_mid(110.0), 1.0);
        assert_eq!(m.on_mid(50.0), -1.0);
    }

    proptest! {
        #[test]
        fn matches_naive_recomputation(mids in proptest::collection::vec(1.0f64..1000.0, 1..300), lookback in 2u32..20) {
            let mut m = Momentum::new(&cfg(lookback, 0.001));
            for (i, &mid) in mids.iter().enumerate() {
                let got = m.on_mid(mid);
                let want = if i < lookback as usize { 0.0 } else {
                    ((mid / mids[i - lookback as usize] - 1.0) / 0.001).clamp(-1.0, 1.0)
                };
                prop_assert!((got - want).abs() < 1e-9, "i={} got={} want={}", i, got, want);
            }
        }
    }
}
