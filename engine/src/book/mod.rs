//! L2 order book per symbol, fixed point, preallocated, kept in sync by Binance's documented
//! procedure ("How to manage a local order book correctly").
//!
//! Runs on the hot thread; allocates only in [`Book::with_capacity`].
//!
//! Each side is a sorted array with the best price at the *end*: most updates land near the
//! top of the book, so inserts and removals move few elements. Levels never have zero quantity;
//! bids are strictly descending from best, asks strictly ascending from best.

use crate::feed::decode::Level;
use hft_shared::{Px, Qty, Side};

/// Why an update could not be applied. The book is left unchanged by a failed batch apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BookError {
    /// A diff does not continue the sequence: the book is invalid until resynced.
    Gap { expected: u64, got_first: u64 },
    /// A snapshot or diff has more levels than the book can hold.
    Capacity,
    /// A snapshot with a negative or zero price, or a crossed result.
    BadSnapshot,
}

/// One side: price-sorted levels, best at the end.
#[derive(Debug, Clone)]
pub struct Ladder {
    side: Side,
    levels: Vec<Level>,
    cap: usize,
}

impl Ladder {
    fn with_capacity(side: Side, cap: usize) -> Self {
        Self { side, levels: Vec::with_capacity(cap), cap }
    }

    /// `true` when `a` is a better price than `b` on this side.
    #[inline(always)]
    fn better(&self, a: Px, b: Px) -> bool {
        match self.side {
            Side::Buy => a > b,
            Side::Sell => a < b,
        }
    }

    /// Index where `px` is or would be inserted, keeping worst-to-best order.
    #[inline]
    fn search(&self, px: Px) -> Result<usize, usize> {
        // Ascending by "goodness": for bids ascending price, for asks descending price.
        match self.side {
            Side::Buy => self.levels.binary_search_by(|l| l.px.cmp(&px)),
            Side::Sell => self.levels.binary_search_by(|l| px.cmp(&l.px)),
        }
    }

    /// Sets the quantity at `px` (0 removes). When full, the worst level is evicted to make
    /// room for a better one (levels beyond capacity are far from the top); returns `true` if
    /// a level was evicted or an insert was refused.
    #[inline]
    pub fn set(&mut self, px: Px, qty: Qty) -> bool {
        match self.search(px) {
            Ok(i) => {
                if qty.is_zero() {
                    self.levels.remove(i);
                } else {
                    self.levels[i].qty = qty;
                }
                false
            }
            Err(i) => {
                if qty.is_zero() {
                    return false;
                }
                if self.levels.len() < self.cap {
                    self.levels.insert(i, Level { px, qty });
                    false
                } else if i == 0 {
                    // Worse than every level we hold: not kept.
                    true
                } else {
                    // Drop the worst, shift, insert: stays within capacity.
                    self.levels.remove(0);
                    self.levels.insert(i - 1, Level { px, qty });
                    true
                }
            }
        }
    }

    #[inline]
    pub fn best(&self) -> Option<Level> {
        self.levels.last().copied()
    }

    /// Levels best-first.
    pub fn iter(&self) -> impl Iterator<Item = Level> + '_ {
        self.levels.iter().rev().copied()
    }

    pub fn len(&self) -> usize {
        self.levels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    fn clear(&mut self) {
        self.levels.clear();
    }

    /// Checks the invariant: strictly improving towards the end, no zero quantity.
    pub fn check(&self) -> bool {
        self.levels.windows(2).all(|w| self.better(w[1].px, w[0].px)) && self.levels.iter().all(|l| l.qty.raw() > 0)
    }
}

/// Synchronisation state of a book with its diff stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncState {
    /// No snapshot yet (or resync requested): diffs cannot be applied.
    AwaitingSnapshot,
    /// Snapshot applied; waiting for the diff that straddles `last_update_id + 1`.
    AwaitingFirstDiff,
    /// In sequence.
    Synced,
}

/// What happened to a diff.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiffOutcome {
    Applied,
    /// Older than the book (`u <= last_update_id`): dropped, as the procedure says.
    Stale,
    /// Arrived before a snapshot: not applicable.
    NoSnapshot,
}

#[derive(Debug, Clone)]
pub struct Book {
    pub bids: Ladder,
    pub asks: Ladder,
    state: SyncState,
    /// Update id the book reflects (snapshot `lastUpdateId`, then each diff's `u`).
    last_update_id: u64,
    /// Levels evicted or refused because a side was full (counted, book top unaffected).
    pub evictions: u64,
    /// Raw clock value of the last applied change (for staleness).
    pub updated_raw: u64,
}

impl Book {
    /// A book holding up to `levels` levels per side. Allocates once.
    pub fn with_capacity(levels: usize) -> Self {
        Self {
            bids: Ladder::with_capacity(Side::Buy, levels),
            asks: Ladder::with_capacity(Side::Sell, levels),
            state: SyncState::AwaitingSnapshot,
            last_update_id: 0,
            evictions: 0,
            updated_raw: 0,
        }
    }

    pub fn state(&self) -> SyncState {
        self.state
    }

    pub fn last_update_id(&self) -> u64 {
        self.last_update_id
    }

    /// Usable for pricing orders: synced, both sides present, not crossed.
    pub fn is_valid(&self) -> bool {
        self.state == SyncState::Synced
            && match (self.bids.best(), self.asks.best()) {
                (Some(b), Some(a)) => b.px < a.px,
                _ => false,
            }
    }

    /// Forgets everything; the next step is a snapshot.
    pub fn invalidate(&mut self) {
        self.state = SyncState::AwaitingSnapshot;
        self.bids.clear();
        self.asks.clear();
    }

    /// Replaces the book with a REST snapshot. Levels may come in any order.
    pub fn apply_snapshot(&mut self, last_update_id: u64, bids: &[Level], asks: &[Level]) -> Result<(), BookError> {
        if bids.len() > self.bids.cap || asks.len() > self.asks.cap {
            return Err(BookError::Capacity);
        }
        if bids.iter().chain(asks).any(|l| l.px.raw() <= 0 || l.qty.raw() < 0) {
            return Err(BookError::BadSnapshot);
        }
        self.bids.clear();
        self.asks.clear();
        for l in bids {
            self.bids.set(l.px, l.qty);
        }
        for l in asks {
            self.asks.set(l.px, l.qty);
        }
        self.last_update_id = last_update_id;
        self.state = SyncState::AwaitingFirstDiff;
        Ok(())
    }

    /// Applies a depth diff `[first_id, final_id]` (Binance `U`, `u`) by the documented rules.
    /// On a gap the book is invalidated (the caller emits the event and resyncs).
    pub fn apply_diff(
        &mut self,
        first_id: u64,
        final_id: u64,
        bids: &[Level],
        asks: &[Level],
    ) -> Result<DiffOutcome, BookError> {
        match self.state {
            SyncState::AwaitingSnapshot => return Ok(DiffOutcome::NoSnapshot),
            SyncState::AwaitingFirstDiff => {
                if final_id <= self.last_update_id {
                    return Ok(DiffOutcome::Stale);
                }
                let next = self.last_update_id + 1;
                if !(first_id <= next && next <= final_id) {
                    let expected = next;
                    self.invalidate();
                    return Err(BookError::Gap { expected, got_first: first_id });
                }
            }
            SyncState::Synced => {
                if final_id <= self.last_update_id {
                    return Ok(DiffOutcome::Stale);
                }
                if first_id != self.last_update_id + 1 {
                    let expected = self.last_update_id + 1;
                    self.invalidate();
                    return Err(BookError::Gap { expected, got_first: first_id });
                }
            }
        }
        for l in bids {
            self.evictions += self.bids.set(l.px, l.qty) as u64;
        }
        for l in asks {
            self.evictions += self.asks.set(l.px, l.qty) as u64;
        }
        self.last_update_id = final_id;
        self.state = SyncState::Synced;
        Ok(DiffOutcome::Applied)
    }

    pub fn best_bid(&self) -> Option<Level> {
        self.bids.best()
    }

    pub fn best_ask(&self) -> Option<Level> {
        self.asks.best()
    }

    /// Mid price, rounded down to 1e-8; `None` unless both sides exist.
    pub fn mid(&self) -> Option<Px> {
        match (self.bids.best(), self.asks.best()) {
            (Some(b), Some(a)) => Some(Px((b.px.raw() + a.px.raw()) / 2)),
            _ => None,
        }
    }

    /// The side an order of `side` trades against.
    pub fn contra(&self, side: Side) -> &Ladder {
        match side {
            Side::Buy => &self.asks,
            Side::Sell => &self.bids,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lv(px: i64, qty: i64) -> Level {
        Level { px: Px::from_int(px), qty: Qty::from_int(qty) }
    }

    fn synced_book() -> Book {
        let mut b = Book::with_capacity(64);
        b.apply_snapshot(100, &[lv(99, 1), lv(98, 2)], &[lv(101, 1), lv(102, 3)]).unwrap();
        assert_eq!(b.apply_diff(95, 101, &[lv(99, 5)], &[]).unwrap(), DiffOutcome::Applied);
        b
    }

    #[test]
    fn snapshot_then_straddling_diff_syncs() {
        let b = synced_book();
        assert!(b.is_valid());
        assert_eq!(b.best_bid(), Some(lv(99, 5)));
        assert_eq!(b.best_ask(), Some(lv(101, 1)));
        assert_eq!(b.last_update_id(), 101);
    }

    #[test]
    fn diffs_before_snapshot_are_not_applied() {
        let mut b = Book::with_capacity(8);
        assert_eq!(b.apply_diff(1, 5, &[lv(1, 1)], &[]).unwrap(), DiffOutcome::NoSnapshot);
        assert!(b.bids.is_empty());
    }

    #[test]
    fn stale_diffs_are_dropped() {
        let mut b = Book::with_capacity(8);
        b.apply_snapshot(100, &[lv(99, 1)], &[lv(101, 1)]).unwrap();
        assert_eq!(b.apply_diff(90, 100, &[lv(99, 7)], &[]).unwrap(), DiffOutcome::Stale);
        assert_eq!(b.best_bid(), Some(lv(99, 1)));
        let mut b = synced_book();
        assert_eq!(b.apply_diff(100, 101, &[lv(99, 7)], &[]).unwrap(), DiffOutcome::Stale);
        assert_eq!(b.best_bid(), Some(lv(99, 5)));
    }

    #[test]
    fn first_diff_must_straddle_the_snapshot() {
        let mut b = Book::with_capacity(8);
        b.apply_snapshot(100, &[lv(99, 1)], &[lv(101, 1)]).unwrap();
        let e = b.apply_diff(102, 105, &[], &[]).unwrap_err();
        assert_eq!(e, BookError::Gap { expected: 101, got_first: 102 });
        assert_eq!(b.state(), SyncState::AwaitingSnapshot);
        assert!(!b.is_valid());
    }

    #[test]
    fn gap_after_sync_invalidates() {
        let mut b = synced_book();
        assert_eq!(b.apply_diff(102, 103, &[], &[]).unwrap(), DiffOutcome::Applied);
        let e = b.apply_diff(105, 106, &[lv(99, 1)], &[]).unwrap_err();
        assert_eq!(e, BookError::Gap { expected: 104, got_first: 105 });
        assert!(!b.is_valid());
        assert_eq!(b.apply_diff(104, 104, &[], &[]).unwrap(), DiffOutcome::NoSnapshot);
    }

    #[test]
    fn zero_quantity_removes_and_crossed_is_invalid() {
        let mut b = synced_book();
        b.apply_diff(102, 102, &[lv(99, 0)], &[]).unwrap();
        assert_eq!(b.best_bid(), Some(lv(98, 2)));
        b.apply_diff(103, 103, &[lv(101, 1)], &[]).unwrap();
        assert!(!b.is_valid(), "a bid at the ask is crossed");
    }

    #[test]
    fn full_side_evicts_the_worst_level() {
        let mut b = Book::with_capacity(3);
        b.apply_snapshot(1, &[lv(10, 1), lv(9, 1), lv(8, 1)], &[lv(11, 1)]).unwrap();
        b.apply_diff(2, 2, &[lv(7, 1)], &[]).unwrap();
        assert_eq!(b.evictions, 1);
        assert_eq!(
            b.bids.iter().map(|l| l.px).collect::<Vec<_>>(),
            vec![Px::from_int(10), Px::from_int(9), Px::from_int(8)]
        );
        b.apply_diff(3, 3, &[lv(12, 1)], &[]).unwrap();
        assert_eq!(
            b.bids.iter().map(|l| l.px).collect::<Vec<_>>(),
            vec![Px::from_int(12), Px::from_int(10), Px::from_int(9)]
        );
    }

    proptest! {
        #[test]
        fn random_diffs_keep_sides_sorted_and_nonzero(ops in proptest::collection::vec((any::<bool>(), 1i64..200, 0i64..4), 1..400)) {
            let mut b = Book::with_capacity(64);
            b.apply_snapshot(0, &[], &[]).unwrap();
            for (k, (is_bid, px, qty)) in ops.into_iter().enumerate() {
                let l = [lv(px, qty)];
                let (bids, asks): (&[Level], &[Level]) = if is_bid { (&l, &[]) } else { (&[], &l) };
                b.apply_diff(k as u64 + 1, k as u64 + 1, bids, asks).unwrap();
                prop_assert!(b.bids.check());
                prop_assert!(b.asks.check());
            }
        }
    }
}
