//! One side of an L2 book: a price-indexed window around the best price, and a sorted store for
//! the levels below it.
//!
//! Runs on the hot thread. Allocates only when constructed (and when cloned); updates, moving
//! the window and rebuilding it on a finer tick never allocate.
//!
//! # Layout
//! A price on the side's tick grid maps to an integer *key* oriented so that a larger key is a
//! better price: `key = (px / tick) ^ flip` with `flip = 0` for bids and `-1` for asks (`!x`
//! reverses the order and, unlike `-x`, cannot overflow).
//! * **window**: `W` slots (a power of two ≥ 64) covering the keys `[lo, lo + W)`. A key lives in
//!   slot `key mod W`, so moving the window only touches the slots it uncovers. A bitmap, one bit
//!   per slot, says which slots hold a level; the quantity of a clear slot is never read. Finding
//!   the next level below (and walking best-first) scans the bitmap 64 slots per word.
//! * **far**: the levels with `key < lo`, sorted from worst to best (best at the end, next to the
//!   window), binary-searched. Most updates land near the top, i.e. in the window.
//!
//! # Invariants
//! * every level has a quantity > 0 and a price that is a multiple of `tick` (`tick` ≥ 1);
//! * every far level is worse than every window level (`key < lo`), and far is strictly sorted;
//! * a non-empty side has its best level in the window, at key `top`;
//! * `lo ≤ i64::MAX - W + 1`, so `key - lo` (wrapping) is below `W` exactly for window keys;
//! * `len ≤ cap ≤ far.capacity()`: moving every level into far never allocates.
//!
//! # Moving the window
//! A level better than the window moves it up so the new best sits at ¾ of it; the levels it
//! uncovers go to far (they are better than all of far: appended at the end). When the best falls
//! below ¼ of the window, or the window empties, the window moves down so the best sits at ¾,
//! pulling the far levels that now fit. A move needs the price to travel half a window, so a price
//! swinging around one point does not move it back and forth.
//!
//! # The tick grid
//! The tick comes from a hint or from the prices of the last snapshot (their gcd with the hint),
//! or, on an empty side with neither, from the first price. A price off the grid refines the
//! tick to the gcd and rebuilds the window (O(levels), no allocation); Binance prices are always
//! on the symbol's tick, so this happens at most a few times, on odd input.

use crate::feed::decode::Level;
use hft_shared::{Px, Qty, Side};
use std::fmt;

/// Window slots per side when not chosen: 65536 ticks, i.e. for BTCUSDT (tick 0.01) from $164
/// above the best to $491 below it; 512 KiB of quantities and 8 KiB of bitmap per side. On the
/// BTCUSDT capture ~5 % of updates then land in far; with 16384 ticks it is ~18 % and the
/// sorted far store makes the book ~2× slower per level (`benches/benches/book.rs`).
pub const DEFAULT_WINDOW: usize = 65_536;
/// Smallest window: one bitmap word.
pub const MIN_WINDOW: usize = 64;

/// One side of a book: levels best-first, at most `cap` of them.
pub struct Ladder {
    side: Side,
    /// `0` for bids, `-1` for asks: `key = (px / tick) ^ flip` grows with goodness.
    flip: i64,
    /// Price grid, raw units (≥ 1). Meaningful only when `grid` is set.
    tick: i64,
    /// `false` until a tick is known (no hint, no price since the last reset): the side is empty.
    grid: bool,
    /// Exact division by `tick` without a divide: `tick = odd << tz`; `p` is on the grid iff its
    /// low `tz` bits (`low`) are clear and `q = (p >> tz) * inv` (`inv = odd⁻¹ mod 2⁶⁴`) lies in
    /// `[q_min, q_min + q_span]` (the quotients whose product with `odd` does not overflow);
    /// then `q = p / tick`. Without a grid, `low = -1, q_min = 1, q_span = 0` fail every price.
    low: i64,
    tz: u32,
    inv: i64,
    q_min: i64,
    q_span: u64,
    cap: usize,
    /// Levels held (window + far).
    len: usize,
    /// Lowest key of the window.
    lo: i64,
    /// Key of the best level (valid when `win_len > 0`).
    top: i64,
    /// Levels in the window.
    win_len: usize,
    /// `W - 1`.
    mask: usize,
    /// Raw quantity per slot (valid where the bitmap bit is set).
    qty: Box<[i64]>,
    /// One bit per slot.
    bits: Box<[u64]>,
    /// Levels with `key < lo`, worst first.
    far: Vec<Level>,
}

/// Greatest common divisor (binary), `gcd(0, x) = x`.
pub(crate) fn gcd(mut a: u64, mut b: u64) -> u64 {
    if a == 0 {
        return b;
    }
    if b == 0 {
        return a;
    }
    let shift = (a | b).trailing_zeros();
    a >>= a.trailing_zeros();
    loop {
        b >>= b.trailing_zeros();
        if a > b {
            std::mem::swap(&mut a, &mut b);
        }
        b -= a;
        if b == 0 {
            return a << shift;
        }
    }
}

/// A tick from a gcd: ≥ 1 and representable as a price (2^63, from `i64::MIN`, halves to 2^62,
/// which divides it too).
fn tick_from(g: u64) -> i64 {
    i64::try_from(g).unwrap_or(1 << 62).max(1)
}

impl Ladder {
    /// An empty side holding up to `cap` levels, with a window of `window` ticks (rounded up to a
    /// power of two ≥ [`MIN_WINDOW`]) and an optional known tick (`None` or ≤ 0: learn it).
    pub(crate) fn new(side: Side, cap: usize, window: usize, tick: Option<Px>) -> Self {
        let w = window.max(MIN_WINDOW).next_power_of_two();
        let hint = tick.map_or(0, |t| t.raw()).max(0);
        let mut l = Self {
            side,
            flip: match side {
                Side::Buy => 0,
                Side::Sell => -1,
            },
            tick: 1,
            grid: false,
            low: -1,
            tz: 0,
            inv: 1,
            q_min: 1,
            q_span: 0,
            cap,
            len: 0,
            lo: 0,
            top: 0,
            win_len: 0,
            mask: w - 1,
            // Not zero: a zeroed allocation may map its pages lazily, and the first touch of each
            // would fault on the hot thread. (A clear slot's quantity is never read.)
            qty: vec![-1; w].into_boxed_slice(),
            bits: vec![0; w / 64].into_boxed_slice(),
            far: Vec::with_capacity(cap),
        };
        l.set_grid((hint > 0).then_some(hint));
        l
    }

    /// Sets the price grid (`None`: unknown, every price is off it).
    fn set_grid(&mut self, tick: Option<i64>) {
        let Some(t) = tick.filter(|&t| t > 0) else {
            (self.tick, self.grid, self.low, self.tz, self.inv, self.q_min, self.q_span) = (1, false, -1, 0, 1, 1, 0);
            return;
        };
        let tz = t.trailing_zeros();
        let odd = t >> tz;
        // Newton's iteration for the inverse mod 2^64: each step doubles the correct low bits
        // (an odd number is its own inverse mod 8: 3 bits, then 6, 12, 24, 48, 96).
        let mut inv = odd;
        for _ in 0..5 {
            inv = inv.wrapping_mul(2i64.wrapping_sub(odd.wrapping_mul(inv)));
        }
        debug_assert_eq!(odd.wrapping_mul(inv), 1);
        let (q_min, q_max) = (i64::MIN / odd, i64::MAX / odd);
        self.tick = t;
        self.grid = true;
        self.low = (1i64 << tz) - 1;
        self.tz = tz;
        self.inv = inv;
        self.q_min = q_min;
        self.q_span = q_max.wrapping_sub(q_min) as u64;
    }

    /// `p / tick` when `p` is on the grid (see the fields `low`…`q_span`).
    #[inline(always)]
    fn quot(&self, p: i64) -> Option<i64> {
        let q = (p >> self.tz).wrapping_mul(self.inv);
        if (p & self.low) != 0 || (q.wrapping_sub(self.q_min) as u64) > self.q_span { None } else { Some(q) }
    }

    /// Window slots.
    #[inline(always)]
    fn w(&self) -> i64 {
        self.mask as i64 + 1
    }

    /// The window start that puts `key` at ¾ of the window, clamped to the key range.
    #[inline]
    fn lo_for(&self, key: i64) -> i64 {
        let w = self.w();
        key.saturating_sub(w - w / 4).min(i64::MAX - w + 1)
    }

    #[inline(always)]
    fn px_of(&self, key: i64) -> Px {
        Px((key ^ self.flip) * self.tick)
    }

    /// Key of an on-grid price.
    #[inline(always)]
    fn key_of(&self, px: Px) -> i64 {
        (px.raw() / self.tick) ^ self.flip
    }

    /// Orders prices by goodness (larger is better), for far.
    #[inline(always)]
    fn rank(&self, px: Px) -> i64 {
        px.raw() ^ self.flip
    }

    #[inline(always)]
    fn slot(&self, key: i64) -> usize {
        key as usize & self.mask
    }

    #[inline(always)]
    fn level_at(&self, key: i64) -> Level {
        Level { px: self.px_of(key), qty: Qty(self.qty[self.slot(key)]) }
    }

    /// Sets the quantity at `px` (0 removes). When full, the worst level is evicted to make
    /// room for a better one (levels beyond capacity are far from the top); returns `true` if
    /// a level was evicted or an insert was refused.
    #[inline(always)]
    pub fn set(&mut self, px: Px, qty: Qty) -> bool {
        let Some(q) = self.quot(px.raw()) else {
            return self.set_off_grid(px, qty);
        };
        let key = q ^ self.flip;
        if (key.wrapping_sub(self.lo) as u64) < self.w() as u64 {
            self.window_set(key, qty.raw())
        } else {
            self.set_outside(key, px, qty)
        }
    }

    /// A key in the window. Branch-free but for the rare cases (the side is full, or the best
    /// level goes): on real data the next step (update, insert, remove, no-op) is a coin toss.
    #[inline(always)]
    fn window_set(&mut self, key: i64, q: i64) -> bool {
        let s = self.slot(key);
        let (w, bit) = (s >> 6, 1u64 << (s & 63));
        let word = self.bits[w];
        let (was, now) = (word & bit != 0, q != 0);
        if (!was & now & (self.len == self.cap)) | (was & !now & (key == self.top)) {
            return self.window_set_slow(key, q);
        }
        // A clear slot's quantity is never read, so the store can be unconditional.
        self.qty[s] = q;
        self.bits[w] = (word & !bit) | (bit & (now as u64).wrapping_neg());
        let new_top = now & ((key > self.top) | (self.win_len == 0));
        self.top = if new_top { key } else { self.top };
        let d = now as isize - was as isize;
        self.win_len = self.win_len.wrapping_add_signed(d);
        self.len = self.len.wrapping_add_signed(d);
        false
    }

    /// [`Ladder::window_set`] when the side is full or the best level is removed.
    #[cold]
    #[inline(never)]
    fn window_set_slow(&mut self, key: i64, q: i64) -> bool {
        let s = self.slot(key);
        let (w, bit) = (s >> 6, 1u64 << (s & 63));
        if self.bits[w] & bit != 0 {
            if q != 0 {
                self.qty[s] = q;
            } else {
                self.bits[w] &= !bit;
                self.win_len -= 1;
                self.len -= 1;
                if key == self.top {
                    self.top_removed();
                }
            }
            return false;
        }
        if q == 0 {
            return false;
        }
        let full = self.len == self.cap;
        if full && !self.make_room(self.rank(self.px_of(key))) {
            return true;
        }
        self.bits[w] |= bit;
        self.qty[s] = q;
        self.win_len += 1;
        self.len += 1;
        if self.win_len == 1 || key > self.top {
            self.top = key;
        }
        full
    }

    /// A key above or below the window.
    #[cold]
    #[inline(never)]
    fn set_outside(&mut self, key: i64, px: Px, qty: Qty) -> bool {
        if key > self.lo {
            // Above the window, so better than every level: absent; a new best.
            if qty.is_zero() {
                return false;
            }
            self.move_up(key);
            return self.window_set(key, qty.raw());
        }
        if self.win_len == 0 {
            // Empty side (the best is always in the window): put the window around it.
            if qty.is_zero() {
                return false;
            }
            self.lo = self.lo_for(key);
            return self.window_set(key, qty.raw());
        }
        self.far_set(px, qty)
    }

    /// A price off the grid (or no grid yet): refine the tick, then set.
    #[cold]
    #[inline(never)]
    fn set_off_grid(&mut self, px: Px, qty: Qty) -> bool {
        if qty.is_zero() {
            // Every level held is on the grid: nothing to remove.
            return false;
        }
        let g = gcd(if self.grid { self.tick as u64 } else { 0 }, px.raw().unsigned_abs());
        let tick = tick_from(g);
        if self.grid {
            self.regrid(tick);
        } else {
            self.set_grid(Some(tick));
        }
        self.set(px, qty)
    }

    /// Rebuilds the window on a finer tick (which every held price is a multiple of).
    fn regrid(&mut self, tick: i64) {
        let w = self.w() as u64;
        self.drain_window(self.lo, w);
        self.set_grid(Some(tick));
        if let Some(best) = self.far.last() {
            self.lo = self.lo_for(self.key_of(best.px));
            self.pull();
        }
    }

    /// Far levels, sorted by rank, binary-searched.
    fn far_set(&mut self, px: Px, qty: Qty) -> bool {
        let r = self.rank(px);
        let flip = self.flip;
        match self.far.binary_search_by(|l| (l.px.raw() ^ flip).cmp(&r)) {
            Ok(i) => {
                if qty.is_zero() {
                    self.far.remove(i);
                    self.len -= 1;
                } else {
                    self.far[i].qty = qty;
                }
                false
            }
            Err(mut i) => {
                if qty.is_zero() {
                    return false;
                }
                let full = self.len == self.cap;
                if full {
                    if !self.make_room(r) {
                        return true;
                    }
                    // The worst level went: it was far[0] (the window's worst is better than us).
                    i -= 1;
                }
                debug_assert!(self.far.len() < self.far.capacity());
                self.far.insert(i, Level { px, qty });
                self.len += 1;
                full
            }
        }
    }

    /// The side is full: drops the worst level if a level of rank `r` (absent) is better.
    /// `false` when it is not (it is refused) or there is no room at all (`cap == 0`).
    #[cold]
    fn make_room(&mut self, r: i64) -> bool {
        if let Some(worst) = self.far.first() {
            if r < self.rank(worst.px) {
                return false;
            }
            self.far.remove(0);
            self.len -= 1;
            return true;
        }
        if self.win_len == 0 {
            return false;
        }
        let k = self.lowest();
        if r < self.rank(self.px_of(k)) {
            return false;
        }
        let s = self.slot(k);
        self.bits[s >> 6] &= !(1u64 << (s & 63));
        self.win_len -= 1;
        self.len -= 1;
        if k == self.top {
            self.top_removed();
        }
        true
    }

    /// The best level was removed: find the next one; move the window down if it is low.
    fn top_removed(&mut self) {
        if self.win_len == 0 {
            if let Some(best) = self.far.last() {
                self.lo = self.lo_for(self.key_of(best.px));
                self.pull();
            }
            return;
        }
        self.top = self.below(self.top);
        let w = self.w();
        if self.top < self.lo + w / 4 {
            let lo = self.lo_for(self.top);
            if lo < self.lo {
                // The slots of [lo, self.lo) held keys above `top`: they are clear.
                self.lo = lo;
                self.pull();
            }
        }
    }

    /// Moves the window up so that `key` (above it) sits at ¾; uncovered levels go to far.
    fn move_up(&mut self, key: i64) {
        let lo = self.lo_for(key);
        if self.win_len > 0 {
            let n = (lo.wrapping_sub(self.lo) as u64).min(self.w() as u64);
            self.drain_window(self.lo, n);
        }
        self.lo = lo;
    }

    /// Moves the window levels with keys in `[from, from + n)` to the end of far, worst first.
    fn drain_window(&mut self, from: i64, n: u64) {
        let mut k = from;
        let mut left = n;
        while left > 0 && self.win_len > 0 {
            let s = self.slot(k);
            let (w, b) = (s >> 6, (s & 63) as u32);
            let span = (64 - b as u64).min(left);
            let sel = if span == 64 { u64::MAX } else { ((1u64 << span) - 1) << b };
            let mut m = self.bits[w] & sel;
            self.bits[w] &= !sel;
            while m != 0 {
                let i = m.trailing_zeros();
                m &= m - 1;
                let key = k.wrapping_add(i as i64 - b as i64);
                debug_assert!(self.far.len() < self.far.capacity());
                self.far.push(Level { px: self.px_of(key), qty: Qty(self.qty[(w << 6) | i as usize]) });
                self.win_len -= 1;
            }
            k = k.wrapping_add(span as i64);
            left -= span;
        }
    }

    /// Moves the far levels that now fit (`key ≥ lo`) into the window, best first.
    fn pull(&mut self) {
        while let Some(&l) = self.far.last() {
            let key = self.key_of(l.px);
            if key < self.lo {
                break;
            }
            self.far.pop();
            let s = self.slot(key);
            self.bits[s >> 6] |= 1u64 << (s & 63);
            self.qty[s] = l.qty.raw();
            if self.win_len == 0 {
                self.top = key;
            }
            self.win_len += 1;
        }
    }

    /// The highest window key below `key`; there must be one.
    fn below(&self, key: i64) -> i64 {
        let k = key.wrapping_sub(1);
        let s = self.slot(k);
        let (mut w, b) = (s >> 6, s & 63);
        let mut m = self.bits[w] & (u64::MAX >> (63 - b));
        let mut base = k.wrapping_sub(b as i64);
        let words = self.bits.len();
        while m == 0 {
            w = (w + words - 1) % words;
            base = base.wrapping_sub(64);
            m = self.bits[w];
        }
        base.wrapping_add(63 - m.leading_zeros() as i64)
    }

    /// The lowest window key; the window must not be empty.
    fn lowest(&self) -> i64 {
        let s = self.slot(self.lo);
        let (mut w, b) = (s >> 6, s & 63);
        let mut m = self.bits[w] & (u64::MAX << b);
        let mut base = self.lo.wrapping_sub(b as i64);
        let words = self.bits.len();
        while m == 0 {
            w = (w + 1) % words;
            base = base.wrapping_add(64);
            m = self.bits[w];
        }
        base.wrapping_add(m.trailing_zeros() as i64)
    }

    /// Replaces the side with `levels` (any order; a repeated price: the last one wins, as if
    /// set in turn), on the grid `tick` (`None`: unknown, only possible without prices).
    /// `levels.len()` must not exceed the capacity.
    pub(crate) fn load(&mut self, levels: &[Level], tick: Option<i64>) {
        self.clear();
        self.set_grid(tick);
        let flip = self.flip;
        let Some(best) = levels.iter().filter(|l| l.qty.raw() != 0).map(|l| l.px.raw() ^ flip).max() else {
            return;
        };
        if !self.grid || levels.iter().any(|l| l.px.raw() % self.tick != 0) || levels.len() > self.cap {
            // Not what `Book` passes; stay correct anyway.
            for l in levels {
                self.set(l.px, l.qty);
            }
            return;
        }
        self.lo = self.lo_for(self.key_of(Px(best ^ flip)));
        let mut far_zero = false;
        let w = self.w() as u64;
        for l in levels {
            let key = self.key_of(l.px);
            if (key.wrapping_sub(self.lo) as u64) < w {
                self.window_set(key, l.qty.raw());
            } else if key > self.lo {
                // Above the best: only zero quantities, i.e. absent.
            } else if l.qty.is_zero() {
                far_zero = true;
            } else {
                self.far.push(*l);
            }
        }
        self.far.sort_unstable_by_key(|l| l.px.raw() ^ flip);
        if far_zero || self.far.windows(2).any(|w| w[0].px == w[1].px) {
            // Repeated prices or removals: replay the far part in order (slow; never on Binance).
            self.far.clear();
            for l in levels {
                if self.key_of(l.px) < self.lo {
                    self.far_set(l.px, l.qty);
                }
            }
        }
        self.len = self.win_len + self.far.len();
    }

    /// Empties the side (keeps the tick).
    pub(crate) fn clear(&mut self) {
        self.bits.fill(0);
        self.far.clear();
        self.len = 0;
        self.win_len = 0;
    }

    /// The best level.
    #[inline]
    pub fn best(&self) -> Option<Level> {
        if self.win_len == 0 { None } else { Some(self.level_at(self.top)) }
    }

    /// Levels best-first.
    #[inline]
    pub fn iter(&self) -> Iter<'_> {
        let mut it = Iter { ladder: self, word: 0, m: 0, base: 0, left: self.win_len, far: self.far.len() };
        if self.win_len > 0 {
            let s = self.slot(self.top);
            let b = s & 63;
            it.word = s >> 6;
            it.m = self.bits[it.word] & (u64::MAX >> (63 - b));
            it.base = self.top.wrapping_sub(b as i64);
        }
        it
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Most levels this side holds.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// The price grid in use, once known.
    pub fn tick(&self) -> Option<Px> {
        self.grid.then_some(Px(self.tick))
    }

    /// Which side this is.
    pub fn side(&self) -> Side {
        self.side
    }

    /// Checks the invariants: best-first strictly worsening prices, no zero quantity, and the
    /// internal ones of the layout (see the module docs).
    pub fn check(&self) -> bool {
        let w = self.w();
        let better = |a: Px, b: Px| self.rank(a) > self.rank(b);
        let levels_ok = {
            let mut prev: Option<Px> = None;
            let mut n = 0;
            let ok = self.iter().all(|l| {
                n += 1;
                let ok = l.qty.raw() > 0 && prev.is_none_or(|p| better(p, l.px));
                prev = Some(l.px);
                ok
            });
            ok && n == self.len
        };
        let popcount: usize = self.bits.iter().map(|b| b.count_ones() as usize).sum();
        let window_ok = popcount == self.win_len
            && (self.win_len == 0 || {
                let top_s = self.slot(self.top);
                self.bits[top_s >> 6] & (1 << (top_s & 63)) != 0
                    && self.top.wrapping_sub(self.lo) < w
                    && self.top >= self.lo
                    && self.lowest() >= self.lo
                    && self.iter().next().map(|l| l.px) == Some(self.px_of(self.top))
            });
        let far_ok = self.far.windows(2).all(|p| better(p[1].px, p[0].px))
            && self.far.iter().all(|l| self.grid && l.px.raw() % self.tick == 0 && self.key_of(l.px) < self.lo);
        levels_ok
            && window_ok
            && far_ok
            && self.lo <= i64::MAX - w + 1
            && self.len == self.win_len + self.far.len()
            && self.len <= self.cap
            && self.far.capacity() >= self.cap
            && (self.len == 0 || self.win_len > 0)
    }
}

impl Clone for Ladder {
    /// Keeps far's capacity (a derived clone would shrink it and a later insert would allocate).
    fn clone(&self) -> Self {
        let mut far = Vec::with_capacity(self.far.capacity());
        far.extend_from_slice(&self.far);
        Self { qty: self.qty.clone(), bits: self.bits.clone(), far, ..*self }
    }
}

impl fmt::Debug for Ladder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ladder")
            .field("side", &self.side)
            .field("tick", &self.tick())
            .field("cap", &self.cap)
            .field("len", &self.len)
            .field("in_window", &self.win_len)
            .field("levels", &Levels(self))
            .finish()
    }
}

/// Debug-formats a ladder's levels best-first.
struct Levels<'a>(&'a Ladder);

impl fmt::Debug for Levels<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

/// Levels of a [`Ladder`] best-first: the window by its bitmap, then far from its end.
#[derive(Clone)]
pub struct Iter<'a> {
    ladder: &'a Ladder,
    /// Bitmap word being walked.
    word: usize,
    /// Its bits not yet visited.
    m: u64,
    /// Key of its bit 0.
    base: i64,
    /// Window levels not yet yielded.
    left: usize,
    /// Far levels not yet yielded (far[..far]).
    far: usize,
}

impl Iterator for Iter<'_> {
    type Item = Level;

    #[inline]
    fn next(&mut self) -> Option<Level> {
        let l = self.ladder;
        if self.left > 0 {
            while self.m == 0 {
                self.word = self.word.wrapping_sub(1) & (l.bits.len() - 1);
                self.base = self.base.wrapping_sub(64);
                self.m = l.bits[self.word];
            }
            let b = 63 - self.m.leading_zeros();
            self.m &= !(1u64 << b);
            self.left -= 1;
            let key = self.base.wrapping_add(b as i64);
            return Some(Level { px: l.px_of(key), qty: Qty(l.qty[(self.word << 6) | b as usize]) });
        }
        if self.far > 0 {
            self.far -= 1;
            return Some(l.far[self.far]);
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.left + self.far;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl std::iter::FusedIterator for Iter<'_> {}

impl fmt::Debug for Iter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").field("remaining", &(self.left + self.far)).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn gcd_of_prices() {
        assert_eq!((gcd(0, 0), gcd(0, 6), gcd(6, 0), gcd(12, 18), gcd(7, 13)), (0, 6, 6, 6, 1));
        assert_eq!(gcd(1 << 63, 1 << 40), 1 << 40);
        assert_eq!((tick_from(0), tick_from(1 << 63), tick_from(100)), (1, 1 << 62, 100));
    }

    #[test]
    fn exact_division_by_the_tick_at_the_edges() {
        let mut l = Ladder::new(Side::Buy, 4, 64, None);
        assert_eq!((l.quot(0), l.quot(5)), (None, None), "no grid: every price is off it");
        for tick in [1i64, 2, 3, 5, 100, 1_000_000, 12_345_678, 1 << 62, i64::MAX] {
            l.set_grid(Some(tick));
            for p in [
                0i64,
                1,
                -1,
                tick,
                -tick,
                7 * (tick / 7),
                (7 * (tick / 7)).wrapping_add(1),
                i64::MAX,
                i64::MIN,
                i64::MIN + 1,
            ] {
                assert_eq!(l.quot(p), (p % tick == 0).then(|| p / tick), "p={p} tick={tick}");
            }
        }
    }

    proptest! {
        #[test]
        fn exact_division_matches_the_divide(p in any::<i64>(), tick in 1i64..=i64::MAX, small in 1i64..5_000, k in -1_000_000i64..1_000_000) {
            let mut l = Ladder::new(Side::Sell, 4, 64, None);
            for (p, t) in [(p, tick), (p, small), (k * small, small), (k * small + 1, small)] {
                l.set_grid(Some(t));
                prop_assert_eq!(l.quot(p), (p % t == 0).then(|| p / t), "p={} tick={}", p, t);
            }
        }
    }
}
