//! Latency histograms and counters owned by the hot thread.
//!
//! Histograms are fixed-range (1 ns to 60 s, 3 significant figures) and allocated once at
//! start-up: recording never allocates or resizes. Percentiles are computed for one stage per
//! snapshot tick (round-robin), which bounds the snapshot's pause on the hot thread.

use hdrhistogram::Histogram;
use hft_shared::msg::{Percentiles, Stage};

/// Upper bound of every histogram, ns. Longer values are clamped (saturating record).
pub const MAX_TRACKED_NS: u64 = 60_000_000_000;

pub struct Latency {
    hist: [Histogram<u64>; Stage::COUNT],
    next_report: usize,
}

impl std::fmt::Debug for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Latency").field("next_report", &self.next_report).finish_non_exhaustive()
    }
}

impl Latency {
    pub fn new() -> Self {
        let mk = || Histogram::<u64>::new_with_bounds(1, MAX_TRACKED_NS, 3).expect("static histogram bounds are valid");
        Self { hist: std::array::from_fn(|_| mk()), next_report: 0 }
    }

    #[inline(always)]
    pub fn record(&mut self, stage: Stage, ns: u64) {
        // saturating_record clamps to the histogram's range; it never allocates.
        self.hist[stage.index()].saturating_record(ns.max(1));
    }

    pub fn percentiles(&self, stage: Stage) -> Percentiles {
        let h = &self.hist[stage.index()];
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }

    /// The next stage to report, round-robin.
    pub fn next_stage(&mut self) -> Stage {
        let s = Stage::ALL[self.next_report];
        self.next_report = (self.next_report + 1) % Stage::COUNT;
        s
    }

    pub fn reset(&mut self) {
        for h in &mut self.hist {
            h.reset();
        }
    }

    pub fn histogram(&self, stage: Stage) -> &Histogram<u64> {
        &self.hist[stage.index()]
    }
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}
