//! The hot thread's clock: TSC reads via `quanta` (≈10 ns) for latency, mapped to unix ns for
//! timestamps. Allocation-free after construction.

use std::time::{SystemTime, UNIX_EPOCH};

/// Cheap monotonic clock with a unix-time anchor.
#[derive(Clone, Debug)]
pub struct Clock {
    q: quanta::Clock,
    anchor_raw: u64,
    anchor_unix_ns: u64,
}

impl Clock {
    pub fn new() -> Self {
        let q = quanta::Clock::new();
        let anchor_raw = q.raw();
        let anchor_unix_ns = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
        Self { q, anchor_raw, anchor_unix_ns }
    }

    /// Raw counter value; only meaningful to [`Clock::delta_ns`] and [`Clock::unix_ns_of`].
    #[inline(always)]
    pub fn raw(&self) -> u64 {
        self.q.raw()
    }

    /// Nanoseconds from `start` to `end` (raw values), saturating at 0.
    #[inline(always)]
    pub fn delta_ns(&self, start: u64, end: u64) -> u64 {
        if end <= start { 0 } else { self.q.delta_as_nanos(start, end) }
    }

    /// Unix time in ns of a raw value.
    #[inline]
    pub fn unix_ns_of(&self, raw: u64) -> u64 {
        self.anchor_unix_ns + self.delta_ns(self.anchor_raw, raw)
    }

    /// Unix time now, ns.
    #[inline]
    pub fn unix_ns(&self) -> u64 {
        self.unix_ns_of(self.raw())
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}
