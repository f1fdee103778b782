//! Exact "is this price on the tick grid / this quantity on the lot grid" without a division
//! per check: a 64-bit `div` costs tens of cycles, and the risk check runs per order on the
//! hot path. Divisibility by a constant `d = 2^k × m` (m odd) is two multiplications' worth of
//! work: the low `k` bits must be zero, and `x >> k` must be a multiple of `m`, which holds
//! exactly when `(x >> k) × m⁻¹ mod 2⁶⁴ ≤ (2⁶⁴ − 1) / m` (Granlund & Montgomery, "Division by
//! invariant integers using multiplication", 1994, §9; Lemire et al., "Faster remainder by
//! direct computation", 2019).
//!
//! Hot thread; no allocation.

/// A positive divisor prepared for divisibility tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    shift: u32,
    /// Multiplicative inverse of the odd part modulo 2⁶⁴.
    inverse: u64,
    /// `u64::MAX / odd part`.
    limit: u64,
}

impl Grid {
    /// A grid of step `d`; a step below 1 is taken as 1 (every integer is on it).
    pub fn new(d: i64) -> Self {
        let d = d.max(1) as u64;
        let shift = d.trailing_zeros();
        let odd = d >> shift;
        // Newton's iteration doubles the correct low bits each step: 3 → 6 → 12 → 24 → 48 → 96.
        let mut inverse = odd;
        for _ in 0..5 {
            inverse = inverse.wrapping_mul(2u64.wrapping_sub(odd.wrapping_mul(inverse)));
        }
        debug_assert_eq!(odd.wrapping_mul(inverse), 1);
        Self { shift, inverse, limit: u64::MAX / odd }
    }

    /// Is `x` a multiple of the step? (Negative multiples count.)
    #[inline]
    pub fn contains(&self, x: i64) -> bool {
        let x = x.unsigned_abs();
        let low = x & ((1u64 << self.shift) - 1);
        low == 0 && (x >> self.shift).wrapping_mul(self.inverse) <= self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn binance_steps() {
        let tick = Grid::new(1_000_000); // 0.01
        assert!(tick.contains(6_183_763_000_000));
        assert!(!tick.contains(6_183_763_500_000));
        let lot = Grid::new(1_000); // 0.00001
        assert!(lot.contains(2_001_000));
        assert!(!lot.contains(2_001_500));
        assert!(Grid::new(1).contains(12_345));
        assert!(Grid::new(0).contains(7), "a step below 1 is 1");
        assert!(Grid::new(1 << 20).contains(i64::MIN), "-2^63 is a multiple of 2^20");
        assert!(!Grid::new(3).contains(i64::MIN));
    }

    proptest! {
        #[test]
        fn agrees_with_the_remainder(x in any::<i64>(), d in 1i64..=i64::MAX) {
            prop_assert_eq!(Grid::new(d).contains(x), x % d == 0);
        }

        #[test]
        fn agrees_on_multiples_and_neighbours(k in -1_000_000i64..1_000_000, d in 1i64..10_000_000_000, off in -2i64..=2) {
            let x = k.saturating_mul(d).saturating_add(off);
            prop_assert_eq!(Grid::new(d).contains(x), x % d == 0);
        }
    }
}
