//! The L2 book on the real Binance capture, by the documented procedure, through the real
//! decoder — the acceptance of the book issue:
//!
//! * Both files of the BTCUSDT capture (README in the corpus directory) replayed in order: diffs
//!   that arrive before the REST snapshot are buffered; after the snapshot, diffs with
//!   `u <= lastUpdateId` are dropped, the first applied one straddles `lastUpdateId + 1`, and each
//!   later one starts at the previous `u + 1`. There must be no gap; every bookTicker whose `u`
//!   is the last applied diff's `u` must equal the local book's best bid and ask, price and
//!   quantity (on the capture such a ticker always arrives *before* its diff — the depth stream
//!   is batched every 100 ms — so it is compared when that diff is applied); trade ids must be
//!   contiguous; and the whole book must equal a `BTreeMap` model fed the same levels. The capture lives outside the project: set `HFT_CORPUS_DIR`, or it is looked
//!   for at `../shared/data/binance` from the repository root. When it is absent the test says so
//!   and runs the same checks on the built-in market's frames.
//! * Applying diffs never allocates (counting global allocator, this test binary only): the
//!   whole capture when present, and always 100k generated diffs, also on a book with a tiny
//!   window (it moves all the time), a full side (evictions) and prices off the grid (the grid
//!   is refined).

use hft_engine::book::{Book, DiffOutcome, SyncState};
use hft_engine::engine::BOOK_LEVELS;
use hft_engine::feed::decode::{DecodeScratch, Decoded, Level, decode};
use hft_engine::feed::synthetic::{SyntheticMarket, SyntheticParams};
use hft_shared::{Px, Qty};
use std::collections::{BTreeMap, VecDeque};
use std::hint::black_box;
use std::path::Path;

// ---- allocation counting (per thread, only while watching) -------------------------------------

mod common;
use common::alloc::allocations_in;
use common::corpus;

// ---- the data -----------------------------------------------------------------------------------

/// Both files together: depth diffs, bookTickers, trades (from the corpus README).
const CORPUS_COUNTS: (u64, u64, u64) = (3451 + 3044, 28040 + 45134, 9757 + 10147);

/// The built-in market in the capture's shape: `frames` stream frames with the REST snapshot
/// body taken after `snapshot_after` of them (the earlier diffs are buffered, then stale).
fn generated_frames(frames: usize, snapshot_after: usize) -> Vec<Vec<u8>> {
    let mut m = SyntheticMarket::new(&SyntheticParams {
        symbol: "BTCUSDT".into(),
        seed: 17,
        start_price: Px::from_int(60_000),
        tick_size: Px(1_000_000),
        depth_levels: 200,
    });
    let mut out = Vec::with_capacity(frames + 1);
    for i in 0..frames {
        if i == snapshot_after {
            out.push(m.snapshot().to_vec());
        }
        out.push(m.next_frame().0.to_vec());
    }
    out
}

// ---- the procedure ------------------------------------------------------------------------------

/// The whole book as a `BTreeMap` per side (price → quantity, raw units).
#[derive(Default)]
struct Model {
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
}

impl Model {
    fn set(side: &mut BTreeMap<i64, i64>, levels: &[Level]) {
        for l in levels {
            if l.qty.is_zero() {
                side.remove(&l.px.raw());
            } else {
                side.insert(l.px.raw(), l.qty.raw());
            }
        }
    }

    fn equals(&self, b: &Book) -> bool {
        b.bids.iter().eq(self.bids.iter().rev().map(|(&p, &q)| Level { px: Px(p), qty: Qty(q) }))
            && b.asks.iter().eq(self.asks.iter().map(|(&p, &q)| Level { px: Px(p), qty: Qty(q) }))
    }
}

#[derive(Debug, Default)]
struct Stats {
    snapshots: u64,
    diffs: u64,
    buffered: u64,
    applied: u64,
    stale: u64,
    gaps: u64,
    crossed: u64,
    model_checks: u64,
    tickers: u64,
    matches: u64,
    mismatches: u64,
    first_mismatch: Option<String>,
    trades: u64,
    trade_id_breaks: u64,
    levels_applied: u64,
    max_bids: usize,
    max_asks: usize,
}

struct Replay {
    book: Book,
    model: Model,
    st: Stats,
    snapshot_id: Option<u64>,
    last_applied: Option<u64>,
    /// bookTickers newer than the book, oldest first: on the capture a ticker arrives before
    /// the diff that ends at its `u` (the depth stream is batched every 100 ms), so it is
    /// compared when that diff is applied.
    tickers: VecDeque<(u64, Level, Level)>,
}

impl Replay {
    /// One diff, after the snapshot, by the procedure; checks what the procedure promises
    /// independently of the book's own checks.
    fn diff(&mut self, first: u64, last: u64, bids: &[Level], asks: &[Level]) {
        let snapshot_id = self.snapshot_id.expect("after the snapshot");
        match self.book.apply_diff(first, last, bids, asks) {
            Ok(DiffOutcome::Applied) => {
                match self.last_applied {
                    None => assert!(first <= snapshot_id + 1 && snapshot_id < last, "first diff U={first} u={last}"),
                    Some(prev) => assert_eq!(first, prev + 1, "diff U={first} u={last} after u={prev}"),
                }
                self.last_applied = Some(last);
                self.st.applied += 1;
                self.st.levels_applied += (bids.len() + asks.len()) as u64;
                Model::set(&mut self.model.bids, bids);
                Model::set(&mut self.model.asks, asks);
                while let Some(&(u, bid, ask)) = self.tickers.front().filter(|t| t.0 <= last) {
                    self.tickers.pop_front();
                    if u == last {
                        self.compare(u, bid, ask);
                    }
                }
                self.st.crossed += !self.book.is_valid() as u64;
                self.st.max_bids = self.st.max_bids.max(self.book.bids.len());
                self.st.max_asks = self.st.max_asks.max(self.book.asks.len());
                if self.st.applied.is_multiple_of(64) {
                    self.check_model();
                }
            }
            Ok(DiffOutcome::Stale) => {
                assert!(last <= snapshot_id && self.last_applied.is_none(), "stale diff U={first} u={last}");
                self.st.stale += 1;
            }
            Ok(DiffOutcome::NoSnapshot) => panic!("diff U={first} u={last}: the book lost its snapshot"),
            Err(e) => {
                eprintln!("gap: diff U={first} u={last}: {e:?}");
                self.st.gaps += 1;
            }
        }
    }

    /// A bookTicker at `u`, when the book is at `u` too.
    fn compare(&mut self, u: u64, bid: Level, ask: Level) {
        let want = (Some(bid), Some(ask));
        let got = (self.book.best_bid(), self.book.best_ask());
        if got == want {
            self.st.matches += 1;
        } else {
            self.st.mismatches += 1;
            self.st.first_mismatch.get_or_insert_with(|| format!("ticker u={u}: want {want:?}, book {got:?}"));
        }
    }

    /// A bookTicker: compared now if the book is at its `u`, later if the book is behind it.
    fn ticker(&mut self, u: u64, bid: Level, ask: Level) {
        self.st.tickers += 1;
        match self.last_applied {
            Some(at) if u == at => self.compare(u, bid, ask),
            Some(at) if u < at => {}
            _ => self.tickers.push_back((u, bid, ask)),
        }
    }

    fn check_model(&mut self) {
        assert!(self.book.bids.check() && self.book.asks.check(), "book invariants after u={:?}", self.last_applied);
        assert!(self.model.equals(&self.book), "book differs from the model after u={:?}", self.last_applied);
        self.st.model_checks += 1;
    }
}

/// Replays `frames` (stream frames and one REST snapshot body) by Binance's procedure.
fn replay(frames: &[Vec<u8>]) -> Stats {
    let mut sc = DecodeScratch::with_capacity(BOOK_LEVELS);
    let mut r = Replay {
        book: Book::with_capacity(BOOK_LEVELS),
        model: Model::default(),
        st: Stats::default(),
        snapshot_id: None,
        last_applied: None,
        tickers: VecDeque::new(),
    };
    let mut buffered: Vec<(u64, u64, Vec<Level>, Vec<Level>)> = Vec::new();
    let mut last_trade: Option<u64> = None;
    for (i, frame) in frames.iter().enumerate() {
        let d =
            decode(frame, &mut sc).unwrap_or_else(|e| panic!("frame {i}: {e:?}: {}", String::from_utf8_lossy(frame)));
        match d {
            Decoded::Snapshot(h) => {
                r.st.snapshots += 1;
                assert!(r.snapshot_id.is_none(), "one snapshot");
                r.book.apply_snapshot(h.last_update_id, &sc.bids, &sc.asks).expect("snapshot applies");
                assert_eq!(r.book.state(), SyncState::AwaitingFirstDiff);
                Model::set(&mut r.model.bids, &sc.bids);
                Model::set(&mut r.model.asks, &sc.asks);
                r.check_model();
                r.snapshot_id = Some(h.last_update_id);
                for (first, last, bids, asks) in buffered.drain(..) {
                    r.diff(first, last, &bids, &asks);
                }
            }
            Decoded::Depth(h) => {
                r.st.diffs += 1;
                if r.snapshot_id.is_none() {
                    r.st.buffered += 1;
                    buffered.push((h.first_id, h.final_id, sc.bids.clone(), sc.asks.clone()));
                } else {
                    r.diff(h.first_id, h.final_id, &sc.bids, &sc.asks);
                }
            }
            Decoded::BookTicker(t) => {
                r.ticker(t.update_id, Level { px: t.bid_px, qty: t.bid_qty }, Level { px: t.ask_px, qty: t.ask_qty })
            }
            Decoded::Trade(t) => {
                r.st.trades += 1;
                if let Some(prev) = last_trade {
                    r.st.trade_id_breaks += (t.trade_id != prev + 1) as u64;
                }
                last_trade = Some(t.trade_id);
            }
            Decoded::AggTrade(_) | Decoded::Ignored => {}
        }
    }
    assert!(buffered.is_empty(), "diffs still waiting for a snapshot");
    r.check_model();
    r.st
}

fn assert_acceptance(st: &Stats) {
    assert_eq!(st.snapshots, 1, "{st:#?}");
    assert_eq!(st.gaps, 0, "{st:#?}");
    assert_eq!(st.mismatches, 0, "{st:#?}");
    assert!(st.matches > 1000, "{st:#?}");
    assert_eq!(st.trade_id_breaks, 0, "{st:#?}");
    assert!(st.trades > 0 && st.applied > 0 && st.stale > 0, "{st:#?}");
    assert_eq!(st.applied + st.stale, st.diffs, "every diff applied or stale: {st:#?}");
    assert_eq!(st.crossed, 0, "{st:#?}");
}

#[test]
fn capture_replays_by_the_procedure_with_no_gap_and_tickers_match_the_book() {
    let Some(dir) = corpus::dir() else {
        eprintln!("corpus_book: the Binance corpus is absent (set HFT_CORPUS_DIR); checking generated frames instead");
        let st = replay(&generated_frames(120_000, 2_000));
        eprintln!("corpus_book: generated: {st:?}");
        assert!(st.buffered > 0, "{st:#?}");
        assert_acceptance(&st);
        return;
    };
    let frames = corpus::all_frames(&dir);
    let st = replay(&frames);
    eprintln!("corpus_book: {}: {st:?}", dir.display());
    assert_eq!((st.diffs, st.tickers, st.trades), CORPUS_COUNTS, "{st:#?}");
    assert!(st.buffered > 0, "the capture buffers diffs before its snapshot: {st:#?}");
    assert!(st.max_bids > 1000 && st.max_asks > 1000, "diffs grow the book past the snapshot: {st:#?}");
    assert_acceptance(&st);
}

#[test]
fn generated_frames_pass_the_same_checks() {
    // Always runs, so the fallback above is known to work even where the capture is present.
    let st = replay(&generated_frames(30_000, 500));
    assert_eq!((st.snapshots, st.gaps, st.mismatches, st.trade_id_breaks, st.crossed), (1, 0, 0, 0, 0), "{st:#?}");
    assert!(st.matches > 100 && st.stale > 0 && st.buffered > 0, "{st:#?}");
}

// ---- no allocation ------------------------------------------------------------------------------

/// A decoded diff.
struct Diff {
    first: u64,
    last: u64,
    bids: Vec<Level>,
    asks: Vec<Level>,
}

/// A snapshot and the diffs that follow it, in sequence.
struct Run {
    id: u64,
    bids: Vec<Level>,
    asks: Vec<Level>,
    diffs: Vec<Diff>,
}

/// The capture's snapshot and its diffs after it (decoded before anything is watched).
fn corpus_run(dir: &Path) -> Run {
    let mut sc = DecodeScratch::with_capacity(BOOK_LEVELS);
    let mut run = Run { id: 0, bids: Vec::new(), asks: Vec::new(), diffs: Vec::new() };
    let mut all = Vec::new();
    for f in corpus::all_frames(dir) {
        match decode(&f, &mut sc) {
            Ok(Decoded::Snapshot(h)) => {
                (run.id, run.bids, run.asks) = (h.last_update_id, sc.bids.clone(), sc.asks.clone())
            }
            Ok(Decoded::Depth(h)) => {
                all.push(Diff { first: h.first_id, last: h.final_id, bids: sc.bids.clone(), asks: sc.asks.clone() })
            }
            _ => {}
        }
    }
    run.diffs = all.into_iter().filter(|d| d.last > run.id).collect();
    run
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> i64 {
        (self.next() % n) as i64
    }
}

/// `n` diffs on a 0.01 grid around a random-walking mid near 60000: most levels within a few
/// hundred ticks of the top, some thousands away, one in twenty far; a third remove a level.
fn generated_run(n: usize, seed: u64) -> Run {
    let tick = 1_000_000i64;
    let mut rng = Rng(seed | 1);
    let mut mid = 6_000_000i64; // ticks
    let level = |rng: &mut Rng, mid: i64, bid: bool| {
        let dist = match rng.below(20) {
            0 => rng.below(200_000),
            1..=4 => rng.below(5_000),
            _ => rng.below(300),
        } + 1;
        let px = if bid { mid - dist } else { mid + dist };
        let qty = if rng.below(3) == 0 { 0 } else { 1 + rng.below(1_000_000) };
        Level { px: Px(px * tick), qty: Qty(qty) }
    };
    let bids = (0..1000).map(|_| level(&mut rng, mid, true)).filter(|l| l.qty.raw() > 0).collect();
    let asks = (0..1000).map(|_| level(&mut rng, mid, false)).filter(|l| l.qty.raw() > 0).collect();
    let mut diffs = Vec::with_capacity(n);
    for k in 0..n as u64 {
        mid += rng.below(41) - 20;
        let (nb, na) = (rng.below(12), rng.below(12));
        diffs.push(Diff {
            first: 100 + k + 1,
            last: 100 + k + 1,
            bids: (0..nb).map(|_| level(&mut rng, mid, true)).collect(),
            asks: (0..na).map(|_| level(&mut rng, mid, false)).collect(),
        });
    }
    Run { id: 100, bids, asks, diffs }
}

/// Applies `run` to `book` (snapshot and the first 100 diffs as warm-up, not watched), then the
/// rest while watching allocations, reading the top and walking the first levels after each
/// diff; a resync (invalidate + the same snapshot) happens while watched too. Returns the
/// allocations and the evictions.
fn watch(book: &mut Book, run: &Run, odd_every: usize) -> (u64, u64) {
    book.apply_snapshot(run.id, &run.bids, &run.asks).expect("snapshot");
    let (warm, rest) = run.diffs.split_at(100.min(run.diffs.len()));
    for d in warm {
        book.apply_diff(d.first, d.last, &d.bids, &d.asks).expect("in sequence");
    }
    let odd = [Level { px: Px(6_000_000_000_001), qty: Qty(1) }];
    let allocs = allocations_in(|| {
        for (i, d) in rest.iter().enumerate() {
            let r = book.apply_diff(d.first, d.last, &d.bids, &d.asks);
            assert_eq!(r, Ok(DiffOutcome::Applied));
            black_box((book.best_bid(), book.best_ask(), book.mid()));
            black_box(book.bids.iter().take(10).chain(book.asks.iter().take(10)).map(|l| l.qty.raw()).sum::<i64>());
            if odd_every > 0 && i % odd_every == odd_every - 1 {
                // Off the 0.01 grid: the grid becomes 1e-8; the resync below restores it.
                book.bids.set(odd[0].px, odd[0].qty);
                book.bids.set(odd[0].px, Qty::ZERO);
                book.invalidate();
                book.apply_snapshot(d.last, &run.bids, &run.asks).expect("resync");
            }
        }
        book.invalidate();
        book.apply_snapshot(run.id, &run.bids, &run.asks).expect("resync");
    });
    assert!(book.bids.check() && book.asks.check());
    (allocs, book.evictions)
}

#[test]
fn applying_diffs_does_not_allocate() {
    // The counter does count.
    assert_eq!(allocations_in(|| drop(black_box(vec![0u8; 16]))), 1, "the counting allocator is not active");

    let generated = generated_run(100_000, 7);
    let levels: usize = generated.diffs.iter().map(|d| d.bids.len() + d.asks.len()).sum();
    assert!(levels > 800_000, "{levels} levels");
    // (name, book, resync with an off-grid price every n diffs, evicts): the generated diffs
    // keep adding far prices, so even a default book fills up unless it is resynced.
    let cases: [(&str, Book, usize, bool); 4] = [
        ("default book", Book::with_capacity(BOOK_LEVELS), 0, true),
        ("tick hint", Book::with_tick(BOOK_LEVELS, Px(1_000_000)), 0, true),
        ("64-tick window, off-grid prices", Book::with_window(BOOK_LEVELS, 64, None), 5_000, false),
        ("700 levels a side", Book::with_window(700, 1_024, None), 0, true),
    ];
    for (name, mut book, odd_every, evicts) in cases {
        let (allocs, evictions) = watch(&mut book, &generated, odd_every);
        assert_eq!(allocs, 0, "{name}: {allocs} allocations applying 100k generated diffs");
        assert_eq!(evictions > 0, evicts, "{name}: {evictions} evictions");
    }

    match corpus::dir() {
        Some(dir) => {
            let run = corpus_run(&dir);
            assert!(run.diffs.len() > 6_000);
            for (name, mut book) in [
                ("default book", Book::with_capacity(BOOK_LEVELS)),
                ("1024-tick window", Book::with_window(BOOK_LEVELS, 1_024, None)),
            ] {
                let (allocs, _) = watch(&mut book, &run, 0);
                assert_eq!(allocs, 0, "{name}: {allocs} allocations applying the capture");
            }
        }
        None => eprintln!("corpus_book: the Binance corpus is absent; generated diffs only"),
    }
}
