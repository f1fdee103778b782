//! L2 order book per symbol, fixed point, preallocated, kept in sync by Binance's documented
//! procedure ("How to manage a local order book correctly").
//!
//! Role: the book stage of the pipeline (decode → **book** → strategy); the paper fill model
//! walks it best-first. Runs on the hot thread. Allocates only in the constructors (and `Clone`);
//! applying snapshots and diffs never allocates.
//!
//! Each side is a [`Ladder`]: a price-indexed window of `W` ticks around the best price (a
//! bitmap says which ticks hold a level), which moves when the price does, and a sorted store
//! for the levels below it (see [`ladder`] for the layout). The tick grid is a hint or is
//! derived from the snapshot's prices, so [`Book::with_capacity`] needs no symbol metadata.
//!
//! Invariants: prices and quantities are exact fixed point; levels never have zero quantity;
//! bids are strictly descending from best, asks strictly ascending from best; a side holds at
//! most its capacity, and a full side evicts its worst level for a better one (counted in
//! [`Book::evictions`]).

pub mod ladder;

pub use ladder::{DEFAULT_WINDOW, Iter, Ladder, MIN_WINDOW};

use crate::feed::decode::Level;
use hft_shared::{Px, Side};
use ladder::gcd;

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
    /// Known tick, raw units (0: none; derived from each snapshot).
    tick_hint: i64,
}

impl Book {
    /// A book holding up to `levels` levels per side, its tick learnt from the snapshots.
    /// Allocates once.
    pub fn with_capacity(levels: usize) -> Self {
        Self::with_window(levels, DEFAULT_WINDOW, None)
    }

    /// As [`Book::with_capacity`], for a symbol whose tick size is known. A price off that grid
    /// still works (the grid is refined), so a wrong hint costs speed, never correctness.
    pub fn with_tick(levels: usize, tick: Px) -> Self {
        Self::with_window(levels, DEFAULT_WINDOW, Some(tick))
    }

    /// Full control: `window` ticks per side indexed by price (rounded up to a power of two
    /// ≥ [`MIN_WINDOW`]; memory is 8 bytes per tick per side) and an optional tick hint.
    pub fn with_window(levels: usize, window: usize, tick: Option<Px>) -> Self {
        let tick = tick.filter(|t| t.raw() > 0);
        Self {
            bids: Ladder::new(Side::Buy, levels, window, tick),
            asks: Ladder::new(Side::Sell, levels, window, tick),
            state: SyncState::AwaitingSnapshot,
            last_update_id: 0,
            evictions: 0,
            tick_hint: tick.map_or(0, |t| t.raw()),
        }
    }

    #[inline]
    pub fn state(&self) -> SyncState {
        self.state
    }

    #[inline]
    pub fn last_update_id(&self) -> u64 {
        self.last_update_id
    }

    /// Usable for pricing orders: synced, both sides present, not crossed.
    #[inline]
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
        if bids.len() > self.bids.capacity() || asks.len() > self.asks.capacity() {
            return Err(BookError::Capacity);
        }
        if bids.iter().chain(asks).any(|l| l.px.raw() <= 0 || l.qty.raw() < 0) {
            return Err(BookError::BadSnapshot);
        }
        // The grid: the gcd of the hint and every price (all > 0, so it fits a price).
        let tick = bids.iter().chain(asks).fold(self.tick_hint as u64, |g, l| gcd(g, l.px.raw() as u64));
        let tick = (tick > 0).then_some(tick as i64);
        self.bids.load(bids, tick);
        self.asks.load(asks, tick);
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

    #[inline]
    pub fn best_bid(&self) -> Option<Level> {
        self.bids.best()
    }

    #[inline]
    pub fn best_ask(&self) -> Option<Level> {
        self.asks.best()
    }

    /// Mid price, rounded down to 1e-8; `None` unless both sides exist.
    #[inline]
    pub fn mid(&self) -> Option<Px> {
        match (self.bids.best(), self.asks.best()) {
            (Some(b), Some(a)) => Some(Px((b.px.raw() + a.px.raw()) / 2)),
            _ => None,
        }
    }

    /// The side an order of `side` trades against.
    #[inline]
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
    use hft_shared::Qty;
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

    // ---- the price-indexed layout ---------------------------------------------------------------

    fn raw(px: i64, qty: i64) -> Level {
        Level { px: Px(px), qty: Qty(qty) }
    }

    fn prices(l: &Ladder) -> Vec<i64> {
        l.iter().map(|l| l.px.raw()).collect()
    }

    #[test]
    fn tick_is_learnt_from_the_snapshot_prices() {
        let mut b = Book::with_capacity(16);
        assert_eq!(b.bids.tick(), None);
        let cent = 1_000_000;
        b.apply_snapshot(1, &[raw(6_000_001 * cent, 1), raw(6_000_000 * cent, 1)], &[raw(6_000_003 * cent, 1)])
            .unwrap();
        assert_eq!((b.bids.tick(), b.asks.tick()), (Some(Px(cent)), Some(Px(cent))));
        // A hint is refined by the snapshot, never coarsened.
        let mut b = Book::with_tick(16, Px(10 * cent));
        b.apply_snapshot(1, &[raw(6_000_005 * cent, 1)], &[raw(6_000_010 * cent, 1)]).unwrap();
        assert_eq!(b.bids.tick(), Some(Px(5 * cent)));
    }

    #[test]
    fn empty_snapshot_learns_the_tick_from_the_first_prices() {
        let mut b = Book::with_window(16, 64, None);
        b.apply_snapshot(1, &[], &[]).unwrap();
        b.apply_diff(2, 2, &[lv(60, 1)], &[]).unwrap();
        assert_eq!(b.bids.tick(), Some(Px::from_int(60)));
        b.apply_diff(3, 3, &[lv(42, 2), lv(61, 3)], &[]).unwrap();
        assert_eq!(b.bids.tick(), Some(Px::from_int(1)));
        assert_eq!(b.bids.iter().collect::<Vec<_>>(), vec![lv(61, 3), lv(60, 1), lv(42, 2)]);
        assert!(b.bids.check());
    }

    #[test]
    fn a_price_off_the_grid_refines_it_and_keeps_every_level() {
        let mut b = Book::with_window(64, 64, Some(Px(100)));
        b.apply_snapshot(1, &[raw(10_000, 1), raw(9_900, 2), raw(1_000, 3)], &[raw(10_100, 4)]).unwrap();
        assert_eq!(b.bids.tick(), Some(Px(100)));
        b.apply_diff(2, 2, &[raw(9_950, 5)], &[raw(10_130, 6)]).unwrap();
        assert_eq!((b.bids.tick(), b.asks.tick()), (Some(Px(50)), Some(Px(10))));
        assert_eq!(prices(&b.bids), vec![10_000, 9_950, 9_900, 1_000]);
        assert_eq!(prices(&b.asks), vec![10_100, 10_130]);
        // Removing an off-grid price that was never there changes nothing (and keeps the grid).
        b.apply_diff(3, 3, &[raw(9_999, 0)], &[]).unwrap();
        assert_eq!(b.bids.tick(), Some(Px(50)));
        assert!(b.bids.check() && b.asks.check());
    }

    #[test]
    fn the_window_follows_the_price_up_and_down() {
        // A 64-tick window: the levels below it are "far"; moving 1000 ticks moves the window.
        let mut b = Book::with_window(1_000, 64, Some(Px(1)));
        let bids: Vec<Level> = (0..200).map(|i| raw(10_000 - i, 1 + i)).collect();
        b.apply_snapshot(1, &bids, &[raw(10_001, 1)]).unwrap();
        assert_eq!(b.bids.len(), 200);
        assert!(b.bids.check());
        // Up: new bests far above.
        b.apply_diff(2, 2, &[raw(11_000, 7), raw(10_500, 8)], &[raw(10_001, 0), raw(11_001, 9)]).unwrap();
        assert_eq!(b.best_bid(), Some(raw(11_000, 7)));
        assert_eq!(b.best_ask(), Some(raw(11_001, 9)));
        assert!(b.bids.check() && b.asks.check());
        // Down: remove the tops; the best falls back into the far levels, which move back.
        b.apply_diff(3, 3, &[raw(11_000, 0), raw(10_500, 0), raw(10_000, 0)], &[]).unwrap();
        assert_eq!(b.best_bid(), Some(raw(9_999, 2)));
        assert!(b.bids.check());
        let want: Vec<i64> = (1..200).map(|i| 10_000 - i).collect();
        assert_eq!(prices(&b.bids), want);
        // Every level removed from the top down, each time checking the next best.
        for i in 1..200 {
            b.apply_diff(3 + i as u64, 3 + i as u64, &[raw(10_000 - i, 0)], &[]).unwrap();
            assert_eq!(b.best_bid().map(|l| l.px.raw()), (i < 199).then_some(9_999 - i));
            assert!(b.bids.check());
        }
        assert!(b.bids.is_empty());
    }

    #[test]
    fn snapshot_levels_apply_in_order_near_and_far() {
        // Within the window (near 1000) and far below it (near 100): a repeated price takes the
        // last quantity, a zero after a quantity removes it, a zero before one does not.
        for (far_a, far_b) in [(100, 90), (90, 100)] {
            let mut b = Book::with_window(16, 64, Some(Px(1)));
            let bids = [
                raw(1_000, 1),
                raw(far_a, 2),
                raw(999, 3),
                raw(1_000, 4),
                raw(far_a, 0),
                raw(far_b, 0),
                raw(far_b, 5),
                raw(998, 6),
                raw(998, 0),
            ];
            b.apply_snapshot(1, &bids, &[raw(1_001, 1)]).unwrap();
            assert_eq!(b.bids.iter().collect::<Vec<_>>(), vec![raw(1_000, 4), raw(999, 3), raw(far_b, 5)]);
            assert!(b.bids.check());
        }
    }

    #[test]
    fn full_side_evicts_the_worst_level_when_it_is_far() {
        let mut b = Book::with_window(3, 64, Some(Px(1)));
        b.apply_snapshot(1, &[raw(1_000, 1), raw(500, 1), raw(100, 1)], &[raw(1_001, 1)]).unwrap();
        // Worse than the worst: refused.
        b.apply_diff(2, 2, &[raw(50, 1)], &[]).unwrap();
        assert_eq!((b.evictions, prices(&b.bids)), (1, vec![1_000, 500, 100]));
        // Between: the worst (far) goes.
        b.apply_diff(3, 3, &[raw(300, 1)], &[]).unwrap();
        assert_eq!((b.evictions, prices(&b.bids)), (2, vec![1_000, 500, 300]));
        // A new best (moves the window): the worst goes.
        b.apply_diff(4, 4, &[raw(5_000, 1)], &[]).unwrap();
        assert_eq!((b.evictions, prices(&b.bids)), (3, vec![5_000, 1_000, 500]));
        assert!(b.bids.check());
    }

    #[test]
    fn odd_prices_do_not_panic() {
        let mut b = Book::with_window(8, 64, None);
        b.apply_snapshot(1, &[], &[]).unwrap();
        let odd = [i64::MIN, i64::MIN + 1, -7, -1, 0, 1, 3, i64::MAX - 1, i64::MAX];
        let mut id = 1;
        for &p in &odd {
            for q in [5, 0, 2] {
                id += 1;
                b.apply_diff(id, id, &[raw(p, q)], &[raw(p, q)]).unwrap();
                assert!(b.bids.check() && b.asks.check(), "after {p} {q}: {b:?}");
            }
        }
        assert_eq!(b.bids.len(), 8);
        assert_eq!(b.bids.iter().next().map(|l| l.px.raw()), Some(i64::MAX));
        assert_eq!(b.asks.iter().next().map(|l| l.px.raw()), Some(i64::MIN));
    }

    #[test]
    fn a_clone_is_independent_and_keeps_its_capacity() {
        let mut a = Book::with_window(100, 64, None);
        a.apply_snapshot(1, &(0..50).map(|i| lv(1_000 - i * 10, 1)).collect::<Vec<_>>(), &[lv(2_000, 1)]).unwrap();
        let mut c = a.clone();
        c.apply_diff(2, 2, &[lv(1_000, 0)], &[]).unwrap();
        assert_eq!(a.best_bid(), Some(lv(1_000, 1)));
        assert_eq!(c.best_bid(), Some(lv(990, 1)));
        assert!(c.bids.check() && a.bids.check(), "check() includes far's capacity");
    }

    // ---- against a reference model --------------------------------------------------------------

    /// The book's contract, written the obvious way: a `BTreeMap` per side, capacity and
    /// eviction as documented on [`Ladder::set`].
    #[derive(Default)]
    struct Reference {
        bids: std::collections::BTreeMap<i64, i64>,
        asks: std::collections::BTreeMap<i64, i64>,
        cap: usize,
        evictions: u64,
    }

    impl Reference {
        fn set(&mut self, bid: bool, px: i64, qty: i64) {
            let (side, cap) = (if bid { &mut self.bids } else { &mut self.asks }, self.cap);
            if qty == 0 {
                side.remove(&px);
            } else if side.contains_key(&px) || side.len() < cap {
                side.insert(px, qty);
            } else {
                self.evictions += 1;
                let worst = if bid { side.keys().next() } else { side.keys().next_back() }.copied();
                if let Some(w) = worst.filter(|&w| if bid { px > w } else { px < w }) {
                    side.remove(&w);
                    side.insert(px, qty);
                }
            }
        }

        fn snapshot(&mut self, bids: &[Level], asks: &[Level]) {
            self.bids.clear();
            self.asks.clear();
            let evictions = self.evictions;
            bids.iter().for_each(|l| self.set(true, l.px.raw(), l.qty.raw()));
            asks.iter().for_each(|l| self.set(false, l.px.raw(), l.qty.raw()));
            self.evictions = evictions;
        }

        fn agrees(&self, b: &Book) -> Result<(), TestCaseError> {
            let want_bids: Vec<Level> = self.bids.iter().rev().map(|(&p, &q)| raw(p, q)).collect();
            let want_asks: Vec<Level> = self.asks.iter().map(|(&p, &q)| raw(p, q)).collect();
            prop_assert_eq!(b.bids.iter().collect::<Vec<_>>(), want_bids.clone());
            prop_assert_eq!(b.asks.iter().collect::<Vec<_>>(), want_asks.clone());
            prop_assert_eq!(b.best_bid(), want_bids.first().copied());
            prop_assert_eq!(b.best_ask(), want_asks.first().copied());
            prop_assert_eq!((b.bids.len(), b.asks.len()), (want_bids.len(), want_asks.len()));
            prop_assert_eq!(b.evictions, self.evictions);
            prop_assert!(b.bids.check(), "bids: {:?}", b.bids);
            prop_assert!(b.asks.check(), "asks: {:?}", b.asks);
            Ok(())
        }
    }

    /// A price, in ticks from the current centre: mostly near the top, some far away, some
    /// far enough to move a small window; an occasional off-grid or odd price.
    fn price_op() -> impl Strategy<Value = (bool, i64, i64)> {
        let offset = prop_oneof![
            6 => -40i64..40,
            3 => -3_000i64..3_000,
            1 => -200_000i64..200_000,
        ];
        (any::<bool>(), offset, prop_oneof![3 => 0i64..1, 5 => 1i64..1_000])
    }

    #[derive(Clone, Debug)]
    enum Step {
        /// A diff of levels `(is_bid, offset, qty)`.
        Diff(Vec<(bool, i64, i64)>),
        /// Move the centre by this many ticks.
        Drift(i64),
        /// A level off the grid (half a tick off), or at an extreme price.
        Odd(bool, i64, i64),
        /// A fresh snapshot of `n` levels a side around the centre.
        Snapshot(usize),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            20 => proptest::collection::vec(price_op(), 0..12).prop_map(Step::Diff),
            4 => prop_oneof![-50i64..50, -100_000i64..100_000].prop_map(Step::Drift),
            1 => (any::<bool>(), -100i64..100, 0i64..3).prop_map(|(b, o, q)| Step::Odd(b, o, q)),
            1 => (0usize..40).prop_map(Step::Snapshot),
        ]
    }

    /// Runs `steps` on a book and on the reference, comparing them after every step.
    fn against_reference(
        cap: usize,
        window: usize,
        tick: i64,
        hint: Option<i64>,
        snapshot: usize,
        steps: Vec<Step>,
    ) -> Result<(), TestCaseError> {
        let mut b = Book::with_window(cap, window, hint.map(Px));
        let mut r = Reference { cap, ..Reference::default() };
        let mut centre: i64 = 1_000_000;
        let mut id = 0u64;
        let snap = |centre: i64, n: usize| -> (Vec<Level>, Vec<Level>) {
            // Sparse, unordered; bids repeat prices (every 23rd) and have zeros (every 5th).
            let bids = (0..n).map(|i| raw((centre - 1 - (i as i64 * 7 % 23) * 37) * tick, (i % 5) as i64)).collect();
            let asks = (0..n).map(|i| raw((centre + 1 + (i as i64 * 104_729) % 70_000) * tick, 1 + i as i64)).collect();
            (bids, asks)
        };
        let (bids, asks) = snap(centre, snapshot.min(cap));
        b.apply_snapshot(id, &bids, &asks).unwrap();
        r.snapshot(&bids, &asks);
        r.agrees(&b)?;
        for s in steps {
            match s {
                Step::Diff(ops) => {
                    let mut bids = Vec::new();
                    let mut asks = Vec::new();
                    for (bid, off, q) in ops {
                        let px = (centre + off).max(1) * tick;
                        if bid { bids.push(raw(px, q)) } else { asks.push(raw(px, q)) }
                    }
                    id += 1;
                    prop_assert_eq!(b.apply_diff(id, id, &bids, &asks), Ok(DiffOutcome::Applied));
                    bids.iter().for_each(|l| r.set(true, l.px.raw(), l.qty.raw()));
                    asks.iter().for_each(|l| r.set(false, l.px.raw(), l.qty.raw()));
                }
                Step::Drift(d) => centre = (centre + d).clamp(1_000, 1 << 40),
                Step::Odd(bid, o, q) => {
                    let px = match o {
                        -100..-97 => [i64::MIN, 0, i64::MAX][(o + 100) as usize],
                        _ => (centre + o) * tick + tick / 2,
                    };
                    let l = [raw(px, q)];
                    let (bids, asks): (&[Level], &[Level]) = if bid { (&l, &[]) } else { (&[], &l) };
                    id += 1;
                    prop_assert_eq!(b.apply_diff(id, id, bids, asks), Ok(DiffOutcome::Applied));
                    r.set(bid, px, q);
                }
                Step::Snapshot(n) => {
                    let (bids, asks) = snap(centre, n.min(cap));
                    b.invalidate();
                    id += 1;
                    b.apply_snapshot(id, &bids, &asks).unwrap();
                    r.snapshot(&bids, &asks);
                }
            }
            r.agrees(&b)?;
        }
        Ok(())
    }

    proptest! {
        /// Small windows, so the window moves, levels go far and come back, and the tick is
        /// relearnt; room for every level, so nothing is evicted.
        #[test]
        fn matches_a_btreemap_with_a_moving_window(
            window in prop_oneof![Just(64usize), Just(128), Just(4_096)],
            tick in prop_oneof![Just(1i64), Just(12), Just(1_000_000)],
            hint in prop_oneof![Just(None), Just(Some(1)), Just(Some(0)), Just(Some(60))],
            snapshot in 0usize..40,
            steps in proptest::collection::vec(step(), 1..60),
        ) {
            let hint = hint.map(|h| if h == 0 { tick } else { h * tick });
            against_reference(100_000, window, tick, hint, snapshot, steps)?;
        }

        /// Full sides: evictions and refusals, near and far.
        #[test]
        fn matches_a_btreemap_when_full(
            cap in 0usize..12,
            window in prop_oneof![Just(64usize), Just(DEFAULT_WINDOW)],
            snapshot in 0usize..12,
            steps in proptest::collection::vec(step(), 1..60),
        ) {
            against_reference(cap, window, 1_000_000, None, snapshot, steps)?;
        }
    }
}
