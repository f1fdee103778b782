//! The engine's side of the event ring, with the back-pressure rule: telemetry may be dropped
//! (counted); audit events (orders, fills, refusals, risk events, acks) never are.
//!
//! When the ring is full, audit events are parked in a preallocated FIFO and the engine stops
//! opening new risk (`blocked()`), until every parked event has been delivered — then a
//! `BackpressureOff` risk event reports it. Order is preserved: while anything is parked, new
//! audit events are parked behind it. Runs on the hot thread; allocation-free unless the
//! overflow itself fills (impossible while risk is closed, since only bounded follow-ups of
//! already-open orders can produce audit events then); it then grows rather than lose a record,
//! and counts `overflow_grown`.

use hft_shared::msg::{Event, RiskEvent, RiskEventKind};
use std::collections::VecDeque;

pub struct EventSink {
    tx: rtrb::Producer<Event>,
    parked: VecDeque<Event>,
    blocked: bool,
    /// Audit events parked since back-pressure began (reported in `BackpressureOff`).
    parked_run: u64,
    pub parked_total: u64,
    pub telemetry_dropped: u64,
    pub overflow_grown: u64,
}

impl std::fmt::Debug for EventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSink")
            .field("parked", &self.parked.len())
            .field("blocked", &self.blocked)
            .field("telemetry_dropped", &self.telemetry_dropped)
            .finish_non_exhaustive()
    }
}

impl EventSink {
    pub fn new(tx: rtrb::Producer<Event>, overflow: usize) -> Self {
        Self {
            tx,
            parked: VecDeque::with_capacity(overflow),
            blocked: false,
            parked_run: 0,
            parked_total: 0,
            telemetry_dropped: 0,
            overflow_grown: 0,
        }
    }

    /// Sends `ev`, or parks/drops it by its class when the ring is full.
    #[inline]
    pub fn emit(&mut self, ev: Event, ts_ns: u64) {
        if self.parked.is_empty() {
            if let Err(rtrb::PushError::Full(ev)) = self.tx.push(ev) {
                if !ev.is_audit() {
                    self.telemetry_dropped += 1;
                    return;
                }
                // First audit event that does not fit: close risk and say so, in order.
                self.blocked = true;
                self.park(Event::Risk(RiskEvent { kind: RiskEventKind::BackpressureOn, value: 0, ts_ns }));
                self.park(ev);
            }
        } else if ev.is_audit() {
            self.park(ev);
        } else {
            self.telemetry_dropped += 1;
        }
    }

    #[inline]
    fn park(&mut self, ev: Event) {
        if self.parked.len() == self.parked.capacity() {
            self.overflow_grown += 1;
        }
        self.parked.push_back(ev);
        self.parked_run += 1;
        self.parked_total += 1;
    }

    /// Delivers parked events while the ring has room. Returns how many were delivered.
    #[inline]
    pub fn flush(&mut self, ts_ns: u64) -> usize {
        if self.parked.is_empty() {
            return 0;
        }
        let mut n = 0;
        while let Some(ev) = self.parked.front().copied() {
            if self.tx.push(ev).is_err() {
                return n;
            }
            self.parked.pop_front();
            n += 1;
        }
        if self.blocked {
            let off =
                Event::Risk(RiskEvent { kind: RiskEventKind::BackpressureOff, value: self.parked_run as i64, ts_ns });
            self.parked_run = 0;
            if self.tx.push(off).is_err() {
                // Stay blocked until even the report is delivered.
                self.parked.push_back(off);
                return n;
            }
            self.blocked = false;
        }
        n
    }

    /// `true` while audit events wait for ring space: no new risk may be opened.
    #[inline]
    pub fn blocked(&self) -> bool {
        self.blocked
    }

    pub fn parked(&self) -> usize {
        self.parked.len()
    }

    /// Free slots in the ring right now.
    pub fn slots(&self) -> usize {
        self.tx.slots()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hft_shared::Amount;
    use hft_shared::msg::{EngineState, Heartbeat};
    use hft_shared::msg::{FillEvent, Liquidity};
    use hft_shared::{OrderId, Px, Qty, Side, SymbolId};

    fn hb(seq: u64) -> Event {
        Event::Heartbeat(Heartbeat { ts_ns: 0, seq, state: EngineState::default() })
    }
    fn fill(id: u64) -> Event {
        Event::Fill(FillEvent {
            order: OrderId(id),
            symbol: SymbolId(0),
            side: Side::Buy,
            liquidity: Liquidity::Taker,
            last: true,
            px: Px::ONE,
            qty: Qty::ONE,
            fee: Amount::ZERO,
            base_fee: Qty::ZERO,
            position: Qty::ONE,
            realized: Amount::ZERO,
            ts_ns: 0,
        })
    }

    #[test]
    fn telemetry_is_dropped_and_audit_is_parked_in_order() {
        let (tx, mut rx) = rtrb::RingBuffer::new(2);
        let mut s = EventSink::new(tx, 16);
        s.emit(hb(1), 0);
        s.emit(fill(1), 0);
        assert!(!s.blocked());
        s.emit(hb(2), 0); // full: dropped
        assert_eq!(s.telemetry_dropped, 1);
        s.emit(fill(2), 0); // full: parked, risk closed
        s.emit(fill(3), 0);
        assert!(s.blocked());
        assert_eq!(s.parked(), 3, "BackpressureOn + two fills");

        let mut seen = vec![];
        for _ in 0..10 {
            while let Ok(ev) = rx.pop() {
                seen.push(ev);
            }
            s.flush(0);
        }
        assert!(!s.blocked());
        let kinds: Vec<String> = seen
            .iter()
            .map(|e| match e {
                Event::Fill(f) => format!("fill{}", f.order.0),
                Event::Risk(r) => format!("{:?}", r.kind),
                Event::Heartbeat(h) => format!("hb{}", h.seq),
                _ => "?".into(),
            })
            .collect();
        assert_eq!(kinds, ["hb1", "fill1", "BackpressureOn", "fill2", "fill3", "BackpressureOff"]);
        match seen.last() {
            Some(Event::Risk(r)) => assert_eq!(r.value, 3),
            other => panic!("{other:?}"),
        }
    }
}
