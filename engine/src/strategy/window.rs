//! Fixed-capacity windows for the strategies: a ring of the last `n` values and a monotonic
//! deque for the rolling max/min.
//!
//! Hot thread; allocate only in `new`. No operation panics, whatever the input.

/// The last `capacity` values pushed.
#[derive(Debug, Clone)]
pub struct Ring<T> {
    buf: Vec<T>,
    /// Next slot to write; once full, also the oldest value.
    head: usize,
    len: usize,
}

impl<T: Copy + Default> Ring<T> {
    /// A ring of `capacity` values (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self { buf: vec![T::default(); capacity.max(1)], head: 0, len: 0 }
    }

    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn is_full(&self) -> bool {
        self.len == self.buf.len()
    }

    /// Appends `v`. Once the ring is full, returns the value it replaces: the one pushed
    /// `capacity` pushes before `v`.
    #[inline]
    pub fn push(&mut self, v: T) -> Option<T> {
        let old = core::mem::replace(&mut self.buf[self.head], v);
        self.head += 1;
        if self.head == self.buf.len() {
            self.head = 0;
        }
        if self.len == self.buf.len() {
            Some(old)
        } else {
            self.len += 1;
            None
        }
    }

    /// The value pushed `age` pushes before the last one (`age` 0 = the last), if held.
    #[inline]
    pub fn back(&self, age: usize) -> Option<T> {
        if age >= self.len {
            return None;
        }
        let cap = self.buf.len();
        // head - 1 - age, modulo cap, without underflow.
        let i = if self.head > age { self.head - 1 - age } else { self.head + cap - 1 - age };
        Some(self.buf[i])
    }
}

/// Rolling maximum (`MAX = true`) or minimum of a sliding window of `(index, value)` pairs:
/// values that can no longer be the extreme are dropped on push, so the front is the extreme of
/// what is held. Amortised O(1) per push; at most `capacity` entries are held.
#[derive(Debug, Clone)]
pub struct MonoDeque<const MAX: bool> {
    buf: Vec<(u64, i64)>,
    /// `buf.len() - 1`; the length is a power of two.
    mask: usize,
    /// Position of the front entry (unmasked; wraps).
    front: usize,
    len: usize,
}

impl<const MAX: bool> MonoDeque<MAX> {
    /// A deque that holds up to `capacity` entries (rounded up to a power of two).
    pub fn new(capacity: usize) -> Self {
        let cap = capacity.max(1).next_power_of_two();
        Self { buf: vec![(0, 0); cap], mask: cap - 1, front: 0, len: 0 }
    }

    /// Drops the entries whose index is below `first`.
    #[inline]
    pub fn evict_before(&mut self, first: u64) {
        while self.len > 0 && self.buf[self.front & self.mask].0 < first {
            self.front = self.front.wrapping_add(1);
            self.len -= 1;
        }
    }

    /// Drops the front entry if its index is below `first`: enough when the window start
    /// advances by one per push (indices are distinct, so at most one entry leaves).
    #[inline]
    pub fn evict_one_before(&mut self, first: u64) {
        if self.len > 0 && self.buf[self.front & self.mask].0 < first {
            self.front = self.front.wrapping_add(1);
            self.len -= 1;
        }
    }

    /// Adds `value` at `index` when it equals the value pushed last: the newer entry replaces
    /// the last one, which is what [`MonoDeque::push`] would do, without its loop. Returns
    /// false (and does nothing) when the deque is empty or the last value differs.
    #[inline]
    pub fn push_repeat(&mut self, index: u64, value: i64) -> bool {
        if self.len == 0 {
            return false;
        }
        let back = &mut self.buf[self.front.wrapping_add(self.len - 1) & self.mask];
        if back.1 != value {
            return false;
        }
        back.0 = index;
        true
    }

    /// Adds the value observed at `index` (indices must increase).
    #[inline]
    pub fn push(&mut self, index: u64, value: i64) {
        while self.len > 0 {
            let back = self.buf[self.front.wrapping_add(self.len - 1) & self.mask].1;
            let dominated = if MAX { back <= value } else { back >= value };
            if !dominated {
                break;
            }
            self.len -= 1;
        }
        if self.len == self.buf.len() {
            // Only reachable if the caller evicts less than it promised; stay correct for the
            // newest entries rather than panic.
            self.front = self.front.wrapping_add(1);
            self.len -= 1;
        }
        self.buf[self.front.wrapping_add(self.len) & self.mask] = (index, value);
        self.len += 1;
    }

    /// The extreme value held, if any.
    #[inline]
    pub fn extreme(&self) -> Option<i64> {
        if self.len == 0 { None } else { Some(self.buf[self.front & self.mask].1) }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ring_returns_what_it_evicts() {
        let mut r = Ring::<i64>::new(3);
        assert_eq!((r.push(1), r.push(2), r.push(3)), (None, None, None));
        assert!(r.is_full());
        assert_eq!(r.push(4), Some(1));
        assert_eq!((r.back(0), r.back(2), r.back(3)), (Some(4), Some(2), None));
    }

    proptest! {
        #[test]
        fn ring_back_matches_the_history(values in proptest::collection::vec(any::<i64>(), 0..100), cap in 1usize..12) {
            let mut r = Ring::new(cap);
            for (i, &v) in values.iter().enumerate() {
                let evicted = r.push(v);
                prop_assert_eq!(evicted, if i >= cap { Some(values[i - cap]) } else { None });
                for age in 0..cap + 1 {
                    let want = if age < cap && age <= i { Some(values[i - age]) } else { None };
                    prop_assert_eq!(r.back(age), want);
                }
            }
        }

        #[test]
        fn rolling_max_min_match_a_scan(
            values in proptest::collection::vec(prop_oneof![-50i64..50, -2i64..2], 1..200),
            w in 1usize..20,
            fast in any::<bool>(),
        ) {
            let mut hi = MonoDeque::<true>::new(w);
            let mut lo = MonoDeque::<false>::new(w);
            for (i, &v) in values.iter().enumerate() {
                let first = (i + 1).saturating_sub(w) as u64;
                if fast {
                    // The breakout's way: one eviction, and repeats without the loop.
                    hi.evict_one_before(first);
                    lo.evict_one_before(first);
                    if !hi.push_repeat(i as u64, v) {
                        hi.push(i as u64, v);
                    }
                    if !lo.push_repeat(i as u64, v) {
                        lo.push(i as u64, v);
                    }
                } else {
                    hi.evict_before(first);
                    lo.evict_before(first);
                    hi.push(i as u64, v);
                    lo.push(i as u64, v);
                }
                let win = &values[first as usize..=i];
                prop_assert_eq!(hi.extreme(), win.iter().copied().max());
                prop_assert_eq!(lo.extreme(), win.iter().copied().min());
                prop_assert!(hi.len() <= w && lo.len() <= w);
            }
        }
    }
}
