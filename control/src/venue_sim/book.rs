//! The simulator's own L2 books: what it has *sent*, per symbol, so a depth snapshot taken at
//! any moment is consistent with the diff stream its clients receive (`lastUpdateId` = the `u`
//! of the last diff broadcast, or newer when the capture's snapshot line was newer).
//!
//! A book starts unsynced. Diffs seen before a snapshot are buffered; a snapshot (the capture's
//! bare snapshot line, or the synthetic market's own) initialises the book and replays the
//! buffered diffs by Binance's documented procedure (drop `u <= lastUpdateId`, apply the rest).
//! Once synced, every diff is applied, even one that does not continue the sequence (a gap in
//! the capture itself is logged once and served as recorded).
//!
//! For matching, [`Books::levels`] shows a side as of the newer of the book and the symbol's
//! last book ticker: a ticker newer than the last diff (tickers are sent as changes happen, diffs
//! every 100 ms) replaces the levels better than its price with its own level.
//!
//! Runs on the tokio runtime behind a `std::sync::Mutex` held only for an apply, a render or a
//! match; allocates freely (sorted maps, unbounded depth).

use super::wire::{self, Diff, Level, Snapshot, Ticker};
use std::collections::{BTreeMap, VecDeque};

/// Diffs kept per symbol while waiting for a snapshot (oldest dropped beyond it).
const MAX_BUFFERED: usize = 10_000;

/// One symbol's book.
#[derive(Debug, Default)]
struct SymBook {
    /// Price → quantity, 1e-8 units; no zero quantities.
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
    /// `Some(lastUpdateId)` once synced.
    id: Option<u64>,
    /// `u` of the last diff seen for this symbol (synced or not).
    last_diff: Option<u64>,
    /// Diffs seen before the first snapshot.
    buffered: VecDeque<Diff>,
    /// A sequence gap of the source was already reported since the last snapshot.
    gap_reported: bool,
    /// The newest book ticker seen.
    ticker: Option<Ticker>,
}

impl SymBook {
    fn set(side: &mut BTreeMap<i64, i64>, levels: &[Level]) {
        for &(px, qty) in levels {
            if qty == 0 {
                side.remove(&px);
            } else {
                side.insert(px, qty);
            }
        }
    }

    fn apply(&mut self, symbol: &str, d: &Diff) {
        let Some(id) = self.id else { return };
        if d.final_id <= id {
            return;
        }
        if d.first_id > id + 1 && !self.gap_reported {
            self.gap_reported = true;
            tracing::warn!(symbol, expected = id + 1, got = d.first_id, "the source's own diff sequence has a gap");
        }
        Self::set(&mut self.bids, &d.bids);
        Self::set(&mut self.asks, &d.asks);
        self.id = Some(d.final_id);
    }

    /// The last ticker when it is newer than the book (or the book is not synced).
    fn newer_ticker(&self) -> Option<&Ticker> {
        self.ticker.as_ref().filter(|t| self.id.is_none_or(|id| t.update_id > id))
    }

    /// One side's levels, best first (see [`Books::levels`]).
    fn levels(&self, bids: bool) -> Box<dyn Iterator<Item = Level> + '_> {
        let side = if bids { &self.bids } else { &self.asks };
        let top = self.newer_ticker().map(|t| if bids { t.bid } else { t.ask });
        let book: Box<dyn Iterator<Item = (&i64, &i64)> + '_> = match (self.id.is_some(), top) {
            // Unsynced: only the ticker; a ticker price of 0: this side is empty.
            (false, _) | (true, Some((0, _))) => Box::new(std::iter::empty()),
            (true, None) if bids => Box::new(side.iter().rev()),
            (true, None) => Box::new(side.iter()),
            (true, Some((px, _))) if bids => Box::new(side.range(..px).rev()),
            (true, Some((px, _))) => Box::new(side.range(px + 1..)),
        };
        let top = top.filter(|&(px, qty)| px > 0 && qty > 0);
        Box::new(top.into_iter().chain(book.map(|(&px, &qty)| (px, qty))))
    }

    fn init(&mut self, symbol: &str, s: &Snapshot) {
        if self.id.is_some_and(|id| s.last_update_id <= id) {
            // Already as new as this snapshot (a capture's resync line after the fact).
            return;
        }
        self.bids.clear();
        self.asks.clear();
        Self::set(&mut self.bids, &s.bids);
        Self::set(&mut self.asks, &s.asks);
        self.id = Some(s.last_update_id);
        self.gap_reported = false;
        let buffered = std::mem::take(&mut self.buffered);
        let first = buffered.iter().find(|d| d.final_id > s.last_update_id);
        if let Some(first) = first.filter(|d| d.first_id > s.last_update_id + 1) {
            tracing::warn!(
                symbol,
                last_update_id = s.last_update_id,
                first_diff = first.first_id,
                "the snapshot does not bridge to the buffered diffs"
            );
        }
        for d in &buffered {
            self.apply(symbol, d);
        }
    }
}

/// Why a depth snapshot cannot be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DepthError {
    /// The symbol has not appeared in the source.
    UnknownSymbol,
    /// The symbol is known but no snapshot has initialised its book yet.
    NotReady,
}

/// Every symbol's book.
#[derive(Debug, Default)]
pub struct Books {
    syms: BTreeMap<String, SymBook>,
    /// A snapshot line met before any diff, waiting for the symbol it belongs to.
    orphan: Option<Snapshot>,
}

/// One symbol in `/control/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymStatus {
    pub symbol: String,
    /// `u` of the last diff taken from the source.
    pub last_diff: Option<u64>,
    /// The book's `lastUpdateId`, once synced.
    pub book_id: Option<u64>,
}

impl Books {
    /// Registers a symbol seen in the source (any stream).
    pub fn note_symbol(&mut self, symbol: &str) {
        if !self.syms.contains_key(symbol) {
            self.syms.insert(symbol.to_owned(), SymBook::default());
        }
    }

    /// Whether `symbol` (upper case) has appeared in the source.
    pub fn knows(&self, symbol: &str) -> bool {
        self.syms.contains_key(symbol)
    }

    /// Records a book ticker as it is broadcast (the newest wins).
    pub fn note_ticker(&mut self, symbol: &str, t: Ticker) {
        let b = self.syms.entry(symbol.to_owned()).or_default();
        if b.ticker.is_none_or(|old| t.update_id >= old.update_id) {
            b.ticker = Some(t);
        }
    }

    /// `symbol`'s bids (or asks), best first, as of the newer of its book and its last ticker:
    /// when the ticker is newer, its level replaces every better one. Before the first snapshot,
    /// only the ticker's level; empty for an unknown symbol.
    pub fn levels(&self, symbol: &str, bids: bool) -> Box<dyn Iterator<Item = Level> + '_> {
        match self.syms.get(symbol) {
            Some(b) => b.levels(bids),
            None => Box::new(std::iter::empty()),
        }
    }

    /// Applies a diff as it is broadcast (or buffers it until the symbol's snapshot).
    pub fn apply_diff(&mut self, d: Diff) {
        let b = self.syms.entry(d.symbol.clone()).or_default();
        b.last_diff = Some(d.final_id);
        if b.id.is_some() {
            b.apply(&d.symbol, &d);
            return;
        }
        if b.buffered.len() == MAX_BUFFERED {
            b.buffered.pop_front();
        }
        let symbol = d.symbol.clone();
        b.buffered.push_back(d);
        if let Some(s) = self.orphan.take() {
            self.init(&symbol, &s);
        }
    }

    /// Initialises `symbol`'s book from a snapshot it is known to belong to.
    pub fn init(&mut self, symbol: &str, s: &Snapshot) {
        self.syms.entry(symbol.to_owned()).or_default().init(symbol, s);
    }

    /// A capture's bare snapshot line: the body does not name its symbol, so it goes to the
    /// symbol whose last diff id is closest to its `lastUpdateId` (update ids of different
    /// symbols are far apart), preferring symbols not yet synced; with no diff seen yet, to the
    /// first symbol whose diff arrives.
    pub fn apply_snapshot_line(&mut self, s: Snapshot) {
        let closest = |synced: bool| {
            self.syms
                .iter()
                .filter(|(_, b)| b.id.is_some() == synced)
                .filter_map(|(sym, b)| b.last_diff.map(|u| (u.abs_diff(s.last_update_id), sym)))
                .min()
                .map(|(_, sym)| sym.clone())
        };
        match closest(false).or_else(|| closest(true)) {
            Some(sym) => self.init(&sym, &s),
            None => self.orphan = Some(s),
        }
    }

    /// Forgets every book's state but not its symbol (a looped capture starts over: until its
    /// snapshot line comes round again, a snapshot request is answered "not ready").
    pub fn reset(&mut self) {
        for b in self.syms.values_mut() {
            *b = SymBook::default();
        }
        self.orphan = None;
    }

    /// The REST snapshot body of `symbol` (upper case), at most `limit` levels per side.
    pub fn snapshot(&self, symbol: &str, limit: usize) -> Result<String, DepthError> {
        let b = self.syms.get(symbol).ok_or(DepthError::UnknownSymbol)?;
        let id = b.id.ok_or(DepthError::NotReady)?;
        let bids = b.bids.iter().rev().take(limit).map(|(&p, &q)| (p, q));
        let asks = b.asks.iter().take(limit).map(|(&p, &q)| (p, q));
        Ok(wire::snapshot_body(id, bids, asks))
    }

    pub fn status(&self) -> Vec<SymStatus> {
        self.syms.iter().map(|(s, b)| SymStatus { symbol: s.clone(), last_diff: b.last_diff, book_id: b.id }).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: i64 = 100_000_000;

    fn diff(first: u64, last: u64, bids: &[Level], asks: &[Level]) -> Diff {
        Diff { symbol: "BTCUSDT".into(), first_id: first, final_id: last, bids: bids.to_vec(), asks: asks.to_vec() }
    }

    fn snap(id: u64) -> Snapshot {
        Snapshot { last_update_id: id, bids: vec![(99 * P, P), (98 * P, P)], asks: vec![(101 * P, P)] }
    }

    #[test]
    fn buffered_diffs_are_replayed_by_the_documented_procedure() {
        let mut b = Books::default();
        b.note_symbol("BTCUSDT");
        assert_eq!(b.snapshot("BTCUSDT", 10), Err(DepthError::NotReady));
        assert_eq!(b.snapshot("ETHUSDT", 10), Err(DepthError::UnknownSymbol));
        b.apply_diff(diff(1, 5, &[(97 * P, P)], &[])); // before the snapshot: dropped
        b.apply_diff(diff(6, 12, &[(99 * P, 0)], &[(101 * P, 3 * P)])); // straddles 11
        b.apply_snapshot_line(snap(10));
        assert_eq!(
            b.snapshot("BTCUSDT", 10).unwrap(),
            r#"{"lastUpdateId":12,"bids":[["98.00000000","1.00000000"]],"asks":[["101.00000000","3.00000000"]]}"#
        );
        b.apply_diff(diff(13, 13, &[(98 * P, 2 * P), (97 * P, P)], &[(102 * P, P)]));
        assert_eq!(
            b.snapshot("BTCUSDT", 1).unwrap(),
            r#"{"lastUpdateId":13,"bids":[["98.00000000","2.00000000"]],"asks":[["101.00000000","3.00000000"]]}"#
        );
        // An older snapshot line does not roll the book back.
        b.apply_snapshot_line(snap(11));
        assert!(b.snapshot("BTCUSDT", 10).unwrap().starts_with(r#"{"lastUpdateId":13,"#));
        b.reset();
        assert_eq!(b.snapshot("BTCUSDT", 10), Err(DepthError::NotReady));
    }

    #[test]
    fn a_snapshot_before_any_diff_waits_for_its_symbol() {
        let mut b = Books::default();
        b.apply_snapshot_line(snap(10));
        b.apply_diff(diff(9, 11, &[], &[(101 * P, 0)]));
        let s = b.snapshot("BTCUSDT", 10).unwrap();
        assert_eq!(
            s,
            r#"{"lastUpdateId":11,"bids":[["99.00000000","1.00000000"],["98.00000000","1.00000000"]],"asks":[]}"#
        );
        let st = b.status();
        assert_eq!(st, [SymStatus { symbol: "BTCUSDT".into(), last_diff: Some(11), book_id: Some(11) }]);
    }

    #[test]
    fn a_newer_ticker_overlays_the_top_of_the_book() {
        let mut b = Books::default();
        b.apply_diff(diff(11, 11, &[], &[]));
        b.apply_snapshot_line(snap(10));
        let side = |b: &Books, bids| b.levels("BTCUSDT", bids).collect::<Vec<_>>();
        assert_eq!(side(&b, true), [(99 * P, P), (98 * P, P)]);
        assert_eq!(side(&b, false), [(101 * P, P)]);
        // Newer than the book (11): bids above 98.5 are gone, the ask is at 100.
        let t = Ticker { update_id: 12, bid: (98 * P + P / 2, 2 * P), ask: (100 * P, 3 * P) };
        b.note_ticker("BTCUSDT", t);
        assert_eq!(side(&b, true), [(98 * P + P / 2, 2 * P), (98 * P, P)]);
        assert_eq!(side(&b, false), [(100 * P, 3 * P), (101 * P, P)]);
        // An older ticker does not replace it; a diff as new as the ticker wins over it.
        b.note_ticker("BTCUSDT", Ticker { update_id: 5, ..t });
        assert_eq!(side(&b, false)[0], (100 * P, 3 * P));
        b.apply_diff(diff(12, 12, &[(99 * P, 0)], &[]));
        assert_eq!(side(&b, true), [(98 * P, P)]);
        assert_eq!(side(&b, false), [(101 * P, P)]);
        assert!(b.knows("BTCUSDT") && !b.knows("ETHUSDT"));
        assert_eq!(b.levels("ETHUSDT", true).count(), 0);
        // Unsynced: the ticker alone.
        b.note_ticker("ETHUSDT", Ticker { update_id: 1, bid: (P, P), ask: (0, 0) });
        assert_eq!(
            (side(&b, true).len(), b.levels("ETHUSDT", true).count(), b.levels("ETHUSDT", false).count()),
            (1, 1, 0)
        );
    }

    #[test]
    fn snapshot_lines_go_to_the_symbol_with_the_closest_ids() {
        let mut b = Books::default();
        b.apply_diff(Diff { symbol: "ETHUSDT".into(), ..diff(5_000, 5_001, &[], &[]) });
        b.apply_diff(diff(100, 101, &[], &[]));
        b.apply_snapshot_line(snap(100));
        assert!(b.snapshot("BTCUSDT", 10).unwrap().starts_with(r#"{"lastUpdateId":101,"#));
        assert_eq!(b.snapshot("ETHUSDT", 10), Err(DepthError::NotReady));
    }
}
