//! Reconnect delays: capped exponential backoff with jitter, and the small seeded generator
//! behind the jitter and the WebSocket masking keys.
//!
//! Hot thread (consulted when a connection drops). Allocation-free.

/// xorshift64* (Marsaglia's xorshift, multiplied output). Seeded; never zero. Not for secrets:
/// jitter and RFC 6455 masking keys only (masking defends proxies against data the *sender*
/// controls; ours is our own requests and echoed pings).
#[derive(Clone, Debug)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        // splitmix64 of the seed, so that nearby seeds give unrelated streams; never zero.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Self(if z == 0 { 0x2545_F491_4F6C_DD1D } else { z })
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..=n` (modulo bias is irrelevant for jitter).
    #[inline]
    pub fn up_to(&mut self, n: u64) -> u64 {
        match n.checked_add(1) {
            Some(m) => self.next_u64() % m,
            None => self.next_u64(),
        }
    }
}

/// Delay before reconnect attempt `n` (1-based): the base `min_ms · 2^(n-1)`, capped at
/// `max_ms`, with "equal jitter" — uniform in `[base/2, base]` — then clamped to
/// `[min_ms, max_ms]`. So the first retry waits exactly `min_ms`, later ones spread out, and no
/// delay ever leaves `[min_ms, max_ms]`.
#[derive(Clone, Debug)]
pub struct Backoff {
    min_ms: u64,
    max_ms: u64,
    attempt: u32,
    rng: XorShift,
}

impl Backoff {
    /// `min_ms` ≥ 1 and `min_ms <= max_ms` (checked by the caller's parameter validation).
    pub fn new(min_ms: u64, max_ms: u64, seed: u64) -> Self {
        Self { min_ms, max_ms: max_ms.max(min_ms), attempt: 0, rng: XorShift::new(seed) }
    }

    /// The next attempt's number (1-based) and its delay, ms.
    pub fn next_delay(&mut self) -> (u32, u64) {
        self.attempt = self.attempt.saturating_add(1);
        let shift = (self.attempt - 1).min(62);
        let base = self.min_ms.checked_mul(1u64 << shift).map_or(self.max_ms, |b| b.min(self.max_ms));
        let half = base / 2;
        let delay = (half + self.rng.up_to(base - half)).clamp(self.min_ms, self.max_ms);
        (self.attempt, delay)
    }

    /// Failed attempts since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// A connection proved healthy: the next failure starts again at `min_ms`.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_with_jitter_and_stay_within_bounds() {
        let mut b = Backoff::new(200, 30_000, 1);
        let (n, d) = b.next_delay();
        assert_eq!((n, d), (1, 200), "the first retry waits exactly min");
        let mut prev_base = 200;
        for k in 2..40u32 {
            let (n, d) = b.next_delay();
            assert_eq!(n, k);
            let base = (prev_base * 2).min(30_000);
            assert!((base / 2..=base).contains(&d) && (200..=30_000).contains(&d), "attempt {k}: {d} vs base {base}");
            prev_base = base;
        }
        // Capped: many draws at the cap are spread over [max/2, max].
        let draws: Vec<u64> = (0..64).map(|_| b.next_delay().1).collect();
        assert!(draws.iter().all(|d| (15_000..=30_000).contains(d)));
        assert!(draws.iter().any(|&d| d < 25_000) && draws.iter().any(|&d| d > 25_000), "no jitter: {draws:?}");
        b.reset();
        assert_eq!(b.next_delay(), (1, 200));
    }

    #[test]
    fn same_seed_same_delays_and_degenerate_bounds_hold() {
        let run = |seed| {
            let mut b = Backoff::new(10, 1000, seed);
            (0..12).map(|_| b.next_delay().1).collect::<Vec<_>>()
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
        let mut b = Backoff::new(50, 50, 3);
        assert!((0..10).all(|_| b.next_delay().1 == 50));
        let mut b = Backoff::new(u64::MAX / 2, u64::MAX, 3);
        for _ in 0..100 {
            let d = b.next_delay().1;
            assert!(d >= u64::MAX / 2);
        }
    }

    #[test]
    fn xorshift_is_never_stuck() {
        let mut r = XorShift::new(0);
        let a = r.next_u64();
        assert_ne!(a, r.next_u64());
        assert!(r.up_to(0) == 0 && r.up_to(3) <= 3);
        let _ = r.up_to(u64::MAX);
    }
}
