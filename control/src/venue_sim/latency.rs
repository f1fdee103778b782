//! Wire-to-wire measurement: from the moment the simulator writes a market-data frame to the
//! moment it receives the `order.place` that frame caused.
//!
//! The engine names its orders `h<engine order id>t<trace>`, `<trace>` being the update id `u`
//! of the book ticker or depth diff whose processing produced the order. The timeline registers
//! every ticker and diff it broadcasts under `(symbol, u)` (the last [`TRACE_CAPACITY`] per
//! symbol); stream connections stamp a frame when they first write it
//! ([`super::wire::Frame::mark_sent`]); the WS-API stamps each request as it arrives. When a
//! ticker and a diff share an update id, the earlier send counts (the measurement errs long,
//! never short). Samples go to a log-linear histogram (≤ 1/64 relative error, exact maximum).
//!
//! Runs on the tokio runtime behind a mutex (the timeline registers, WS-API tasks look up);
//! allocates a map entry per traced frame.

use std::collections::{HashMap, VecDeque};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Update ids remembered per symbol (a few seconds of a busy symbol's tickers and diffs).
pub const TRACE_CAPACITY: usize = 65_536;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Monotonic ns since the simulator's clock was first read (≥ 1, so 0 can mean "never").
pub fn now_ns() -> u64 {
    let ns = EPOCH.get_or_init(Instant::now).elapsed().as_nanos();
    u64::try_from(ns).unwrap_or(u64::MAX).max(1)
}

/// `(engine order id, trace)` of a client order id the engine wrote (`h<id>t<trace>`, both
/// lowercase hex): the engine's own parser, so the two cannot drift apart.
pub fn parse_client_id(id: &str) -> Option<(u64, u64)> {
    hft_engine::exec::orders::parse_client_id(id.as_bytes()).map(|(order, trace)| (order.0, trace))
}

/// Sub-buckets per power of two (values below `2 × SUB` are exact).
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = ((64 - SUB_BITS as usize) * SUB as usize) + SUB as usize;

/// A log-linear histogram of ns values.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Box<[u64]>,
    count: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self { counts: vec![0; BUCKETS].into_boxed_slice(), count: 0, max: 0 }
    }
}

fn bucket(v: u64) -> usize {
    if v < 2 * SUB {
        return v as usize;
    }
    let shift = 63 - v.leading_zeros() - SUB_BITS;
    (shift as usize) * SUB as usize + (v >> shift) as usize
}

/// The largest value of bucket `i`.
fn bucket_high(i: usize) -> u64 {
    if i < 2 * SUB as usize {
        return i as u64;
    }
    let shift = (i / SUB as usize - 1) as u32;
    let mantissa = (i % SUB as usize) as u128 + u128::from(SUB);
    u64::try_from(((mantissa + 1) << shift) - 1).unwrap_or(u64::MAX)
}

impl Histogram {
    pub fn record(&mut self, v: u64) {
        self.counts[bucket(v)] += 1;
        self.count += 1;
        self.max = self.max.max(v);
    }

    /// The value at quantile `q` (nearest rank), never above the maximum; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_high(i).min(self.max);
            }
        }
        self.max
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn max(&self) -> u64 {
        self.max
    }
}

/// Percentiles of the wire-to-wire latency, ns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    /// Orders with an engine client id whose trace names no frame sent (too old, never sent,
    /// or another symbol's).
    pub untraced: u64,
}

impl Summary {
    pub fn to_json(self) -> serde_json::Value {
        serde_json::json!({
            "count": self.count, "p50": self.p50, "p90": self.p90, "p99": self.p99,
            "p99.9": self.p999, "max": self.max, "untraced": self.untraced,
        })
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "count={} p50={} p90={} p99={} p99.9={} max={} (ns; untraced orders: {})",
            self.count, self.p50, self.p90, self.p99, self.p999, self.max, self.untraced
        )
    }
}

/// One symbol's traces: `u` → the send stamps of the frames carrying it.
#[derive(Debug, Default)]
struct SymTraces {
    by_id: HashMap<u64, Vec<Arc<AtomicU64>>>,
    /// Ids in registration order, for eviction.
    order: VecDeque<u64>,
}

/// Traces and the histogram.
#[derive(Debug, Default)]
pub struct Latency {
    traces: HashMap<Box<str>, SymTraces>,
    hist: Histogram,
    untraced: u64,
}

impl Latency {
    /// Remembers that `symbol`'s frame with update id `u` is being sent (its stamp is set when
    /// it is written).
    pub fn register(&mut self, symbol: &str, u: u64, sent_ns: Arc<AtomicU64>) {
        let t = match self.traces.get_mut(symbol) {
            Some(t) => t,
            None => self.traces.entry(symbol.into()).or_default(),
        };
        if let Some(stamps) = t.by_id.get_mut(&u) {
            stamps.push(sent_ns);
            return;
        }
        if t.order.len() == TRACE_CAPACITY
            && let Some(old) = t.order.pop_front()
        {
            t.by_id.remove(&old);
        }
        t.by_id.insert(u, vec![sent_ns]);
        t.order.push_back(u);
    }

    /// Forgets every trace (a looped capture starts its update ids over).
    pub fn clear_traces(&mut self) {
        self.traces.clear();
    }

    /// An `order.place` for `symbol` with client order id `client_id` arrived at `recv_ns`:
    /// records and returns its wire-to-wire latency when the id traces a frame sent. Client ids
    /// not in the engine's format are ignored.
    pub fn order_received(&mut self, symbol: &str, client_id: &str, recv_ns: u64) -> Option<u64> {
        let (_, trace) = parse_client_id(client_id)?;
        let sent = self
            .traces
            .get(symbol)
            .and_then(|t| t.by_id.get(&trace))
            .and_then(|stamps| stamps.iter().map(|s| s.load(Ordering::Acquire)).filter(|&s| s != 0).min())
            .filter(|&s| s <= recv_ns);
        match sent {
            Some(s) => {
                let d = recv_ns - s;
                self.hist.record(d);
                Some(d)
            }
            None => {
                self.untraced += 1;
                None
            }
        }
    }

    pub fn summary(&self) -> Summary {
        let h = &self.hist;
        Summary {
            count: h.count(),
            p50: h.quantile(0.5),
            p90: h.quantile(0.9),
            p99: h.quantile(0.99),
            p999: h.quantile(0.999),
            max: h.max(),
            untraced: self.untraced,
        }
    }
}

/// The measurement state shared by the timeline and the WS-API tasks. A poisoned lock is used
/// as is: a half-recorded sample is harmless.
#[derive(Debug, Default)]
pub struct Recorder(Mutex<Latency>);

impl Recorder {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Latency> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_client_ids_parse() {
        let mut buf = [0u8; hft_engine::exec::orders::CLIENT_ID_MAX];
        let n = hft_engine::exec::orders::format_client_id(hft_shared::OrderId(12), 40_000_000_017, &mut buf);
        let id = std::str::from_utf8(&buf[..n]).unwrap();
        assert_eq!(parse_client_id(id), Some((12, 40_000_000_017)), "{id}");
        assert_eq!(parse_client_id("hct9502f9011"), Some((12, 40_000_000_017)), "hex");
        assert_eq!(parse_client_id("h0t0"), Some((0, 0)));
        for bad in ["", "h", "ht", "h1t", "ht1", "x1t2", "h1x2", "h+1t2", "h1t2t3", "h1t-2", "web_abc"] {
            assert_eq!(parse_client_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn buckets_are_contiguous_and_tight() {
        let mut prev = None;
        for v in (0..5000).chain([u64::MAX / 2, u64::MAX - 1, u64::MAX]) {
            let b = bucket(v);
            assert!(b < BUCKETS, "{v}");
            assert!(bucket_high(b) >= v, "{v}: bucket {b} tops at {}", bucket_high(b));
            if let Some((pv, pb)) = prev
                && pv + 1 == v
            {
                assert!(b == pb || b == pb + 1, "{v}");
            }
            prev = Some((v, b));
        }
        for v in [1_000u64, 123_456, 9_876_543_210] {
            let hi = bucket_high(bucket(v));
            assert!((hi - v) as f64 <= v as f64 / 64.0, "{v} → {hi}");
        }
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut h = Histogram::default();
        assert_eq!((h.quantile(0.5), h.count()), (0, 0));
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!((h.quantile(0.5), h.quantile(0.9), h.quantile(0.99), h.quantile(1.0)), (50, 90, 99, 100));
        h.record(1_000_000);
        assert_eq!(h.max(), 1_000_000);
        assert_eq!(h.quantile(1.0), 1_000_000);
        let q = h.quantile(0.999);
        assert!((984_375..=1_000_000).contains(&q), "{q}");
    }

    #[test]
    fn orders_are_traced_to_the_frame_sent_first() {
        let mut l = Latency::default();
        let ticker = Arc::new(AtomicU64::new(0));
        let diff = Arc::new(AtomicU64::new(0));
        l.register("BTCUSDT", 7, ticker.clone());
        l.register("BTCUSDT", 7, diff.clone());
        diff.store(1_000, Ordering::Relaxed);
        assert_eq!(l.order_received("BTCUSDT", "h1t7", 1_500), Some(500), "the ticker was never sent");
        ticker.store(900, Ordering::Relaxed);
        assert_eq!(l.order_received("BTCUSDT", "h2t7", 1_500), Some(600), "the earlier send");
        assert_eq!(l.order_received("ETHUSDT", "h3t7", 1_500), None, "another symbol");
        assert_eq!(l.order_received("BTCUSDT", "h4t8", 1_500), None, "no such frame");
        assert_eq!(l.order_received("BTCUSDT", "mine-1", 1_500), None, "not the engine's format");
        let s = l.summary();
        assert_eq!((s.count, s.max, s.untraced), (2, 600, 2));
        assert!((500..=507).contains(&s.p50), "within the bucket's 1/64: {}", s.p50);
        // Bounded: the oldest ids are forgotten.
        for u in 100..100 + TRACE_CAPACITY as u64 {
            l.register("BTCUSDT", u, Arc::new(AtomicU64::new(1)));
        }
        assert_eq!(l.order_received("BTCUSDT", "h5t7", 1_500), None);
        assert_eq!(l.order_received("BTCUSDT", "h5t64", 1_500), Some(1_499), "traces are hex: 0x64 = 100");
        l.clear_traces();
        assert_eq!(l.order_received("BTCUSDT", "h5t64", 1_500), None);
        assert!(now_ns() >= 1);
    }
}
