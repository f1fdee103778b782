//! L2 book apply, ns per level: the engine's book (and the same with a quarter of its default
//! price window) vs the sorted-`Vec` + binary-search book it replaced (`BaselineBook`, copied
//! here so the ratio is measured in one run); and the cost of reading the top (`best_bid` +
//! `best_ask`) and of walking the first 10 levels of each side best-first (what the paper fill
//! model does).
//!
//! Data: every depth diff of the real BTCUSDT capture when it is present (`HFT_CORPUS_DIR`, or
//! `../shared/data/binance` from the repository root), else diffs of the built-in market; stderr
//! says which. Frames are decoded by the engine's decoder *before* timing; the selected diffs
//! (the documented procedure: buffered, then everything after the snapshot that is not stale)
//! are applied in order to a book freshly loaded with the snapshot (the load is not timed).

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use flate2::read::GzDecoder;
use hft_engine::book::{Book, DEFAULT_WINDOW, DiffOutcome};
use hft_engine::engine::BOOK_LEVELS;
use hft_engine::feed::decode::{DecodeScratch, Decoded, Level, decode};
use hft_engine::feed::synthetic::{SyntheticMarket, SyntheticParams};
use hft_shared::{Px, Qty, Side};
use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

// ---- the data -----------------------------------------------------------------------------------

const CORPUS_FILES: [&str; 2] = ["spot_btcusdt_20240808.gz", "spot_btcusdt_20240809.gz"];

/// One decoded depth diff.
struct Diff {
    first: u64,
    last: u64,
    bids: Vec<Level>,
    asks: Vec<Level>,
}

/// A snapshot and the diffs that apply to it, in order.
struct Run {
    source: String,
    snapshot_id: u64,
    snap_bids: Vec<Level>,
    snap_asks: Vec<Level>,
    diffs: Vec<Diff>,
}

impl Run {
    fn levels(&self) -> u64 {
        self.diffs.iter().map(|d| (d.bids.len() + d.asks.len()) as u64).sum()
    }
}

fn corpus_frames(dir: &Path) -> std::io::Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for file in CORPUS_FILES {
        let f = std::fs::File::open(dir.join(file))?;
        for line in BufReader::new(GzDecoder::new(f)).split(b'\n') {
            let line = line?;
            if let Some(sp) = line.iter().position(|&c| c == b' ') {
                out.push(line[sp + 1..].to_vec());
            }
        }
    }
    Ok(out)
}

/// Frames of the built-in market: a snapshot after 1000 frames, then 400k more.
fn generated_frames() -> Vec<Vec<u8>> {
    let mut m = SyntheticMarket::new(&SyntheticParams {
        symbol: "BTCUSDT".into(),
        seed: 1,
        start_price: Px::from_int(60_000),
        tick_size: Px(1_000_000),
        depth_levels: 1000,
    });
    let mut out: Vec<Vec<u8>> = (0..1000).map(|_| m.next_frame().0.to_vec()).collect();
    out.push(m.snapshot().to_vec());
    out.extend((0..400_000).map(|_| m.next_frame().0.to_vec()));
    out
}

/// Decodes `frames` and selects, by Binance's procedure, the diffs that apply to the first
/// snapshot. Panics on anything the procedure calls a gap: a benchmark of a wrong answer is
/// worthless.
fn select(source: String, frames: &[Vec<u8>]) -> Run {
    let mut sc = DecodeScratch::with_capacity(BOOK_LEVELS);
    let mut pending = Vec::new();
    let mut snap: Option<(u64, Vec<Level>, Vec<Level>)> = None;
    for f in frames {
        match decode(f, &mut sc) {
            Ok(Decoded::Snapshot(h)) if snap.is_none() => {
                snap = Some((h.last_update_id, sc.bids.clone(), sc.asks.clone()))
            }
            Ok(Decoded::Depth(h)) => {
                pending.push(Diff { first: h.first_id, last: h.final_id, bids: sc.bids.clone(), asks: sc.asks.clone() })
            }
            _ => {}
        }
    }
    let (snapshot_id, snap_bids, snap_asks) = snap.expect("a snapshot in the data");
    let mut book = Book::with_capacity(BOOK_LEVELS);
    book.apply_snapshot(snapshot_id, &snap_bids, &snap_asks).expect("snapshot");
    let mut diffs = Vec::new();
    for d in pending {
        match book.apply_diff(d.first, d.last, &d.bids, &d.asks) {
            Ok(DiffOutcome::Applied) => diffs.push(d),
            Ok(_) => {}
            Err(e) => panic!("book bench: the data has a gap at U={} u={}: {e:?}", d.first, d.last),
        }
    }
    Run { source, snapshot_id, snap_bids, snap_asks, diffs }
}

fn run() -> Run {
    if let Some(dir) = hft_benches::corpus_dir(&CORPUS_FILES) {
        match corpus_frames(&dir) {
            Ok(frames) => {
                eprintln!("book bench: real diffs from the Binance corpus in {}", dir.display());
                return select(format!("Binance corpus ({})", dir.display()), &frames);
            }
            Err(e) => eprintln!("book bench: cannot read the corpus in {} ({e})", dir.display()),
        }
    } else {
        eprintln!("book bench: Binance corpus not found");
    }
    eprintln!("book bench: using diffs of the built-in market");
    select("built-in market".into(), &generated_frames())
}

// ---- the baseline: the book this one replaced (sorted Vec, binary search, best at the end) --------

#[derive(Debug, Clone)]
struct BaselineLadder {
    side: Side,
    levels: Vec<Level>,
    cap: usize,
}

impl BaselineLadder {
    fn with_capacity(side: Side, cap: usize) -> Self {
        Self { side, levels: Vec::with_capacity(cap), cap }
    }

    #[inline]
    fn search(&self, px: Px) -> Result<usize, usize> {
        match self.side {
            Side::Buy => self.levels.binary_search_by(|l| l.px.cmp(&px)),
            Side::Sell => self.levels.binary_search_by(|l| px.cmp(&l.px)),
        }
    }

    #[inline]
    fn set(&mut self, px: Px, qty: Qty) -> bool {
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
                    true
                } else {
                    self.levels.remove(0);
                    self.levels.insert(i - 1, Level { px, qty });
                    true
                }
            }
        }
    }

    #[inline]
    fn best(&self) -> Option<Level> {
        self.levels.last().copied()
    }

    fn iter(&self) -> impl Iterator<Item = Level> + '_ {
        self.levels.iter().rev().copied()
    }
}

/// The replaced book's update path (sequence rules included, as in the engine).
struct BaselineBook {
    bids: BaselineLadder,
    asks: BaselineLadder,
    synced: bool,
    last_update_id: u64,
    evictions: u64,
}

impl BaselineBook {
    fn with_capacity(levels: usize) -> Self {
        Self {
            bids: BaselineLadder::with_capacity(Side::Buy, levels),
            asks: BaselineLadder::with_capacity(Side::Sell, levels),
            synced: false,
            last_update_id: 0,
            evictions: 0,
        }
    }

    fn apply_snapshot(&mut self, last_update_id: u64, bids: &[Level], asks: &[Level]) {
        self.bids.levels.clear();
        self.asks.levels.clear();
        for l in bids {
            self.bids.set(l.px, l.qty);
        }
        for l in asks {
            self.asks.set(l.px, l.qty);
        }
        self.last_update_id = last_update_id;
        self.synced = false;
    }

    fn apply_diff(&mut self, first_id: u64, final_id: u64, bids: &[Level], asks: &[Level]) -> bool {
        if final_id <= self.last_update_id {
            return false;
        }
        let next = self.last_update_id + 1;
        let in_seq = if self.synced { first_id == next } else { first_id <= next && next <= final_id };
        if !in_seq {
            return false;
        }
        for l in bids {
            self.evictions += self.bids.set(l.px, l.qty) as u64;
        }
        for l in asks {
            self.evictions += self.asks.set(l.px, l.qty) as u64;
        }
        self.last_update_id = final_id;
        self.synced = true;
        true
    }
}

// ---- benchmarks -----------------------------------------------------------------------------------

fn fresh_book(r: &Run) -> Book {
    let mut b = Book::with_capacity(BOOK_LEVELS);
    b.apply_snapshot(r.snapshot_id, &r.snap_bids, &r.snap_asks).expect("snapshot");
    b
}

fn fresh_baseline(r: &Run) -> BaselineBook {
    let mut b = BaselineBook::with_capacity(BOOK_LEVELS);
    b.apply_snapshot(r.snapshot_id, &r.snap_bids, &r.snap_asks);
    b
}

fn apply_all(b: &mut Book, r: &Run) -> u64 {
    let mut applied = 0;
    for d in &r.diffs {
        applied += matches!(b.apply_diff(d.first, d.last, &d.bids, &d.asks), Ok(DiffOutcome::Applied)) as u64;
    }
    applied
}

fn apply_all_baseline(b: &mut BaselineBook, r: &Run) -> u64 {
    let mut applied = 0;
    for d in &r.diffs {
        applied += b.apply_diff(d.first, d.last, &d.bids, &d.asks) as u64;
    }
    applied
}

/// Both books must end in the same state, level for level, before either is timed.
fn check_agreement(r: &Run) {
    let (mut new, mut old) = (fresh_book(r), fresh_baseline(r));
    let n = r.diffs.len() as u64;
    assert_eq!(apply_all(&mut new, r), n, "the engine's book refused a diff");
    assert_eq!(apply_all_baseline(&mut old, r), n, "the baseline refused a diff");
    assert!(new.bids.iter().eq(old.bids.iter()), "bids differ from the baseline");
    assert!(new.asks.iter().eq(old.asks.iter()), "asks differ from the baseline");
    assert_eq!((new.evictions, new.is_valid()), (old.evictions, true));
    eprintln!(
        "book bench: {}: {} diffs, {} levels; final book {} bids / {} asks, best {:?} / {:?}",
        r.source,
        n,
        r.levels(),
        new.bids.len(),
        new.asks.len(),
        new.best_bid(),
        new.best_ask()
    );
}

fn walk10(it: impl Iterator<Item = Level>) -> i64 {
    it.take(10).map(|l| l.qty.raw()).sum()
}

fn book_benches(c: &mut Criterion) {
    let r = run();
    check_agreement(&r);

    let mut g = c.benchmark_group("book/apply");
    g.throughput(Throughput::Elements(r.levels()));
    g.bench_function(BenchmarkId::new("engine", "corpus_diffs"), |b| {
        b.iter_batched_ref(|| fresh_book(&r), |book| apply_all(book, &r), BatchSize::LargeInput)
    });
    // The window/far trade-off: a quarter of the default window sends ~4× more updates to far.
    let small = DEFAULT_WINDOW / 4;
    g.bench_function(BenchmarkId::new(format!("engine_window_{small}"), "corpus_diffs"), |b| {
        b.iter_batched_ref(
            || {
                let mut b = Book::with_window(BOOK_LEVELS, small, None);
                b.apply_snapshot(r.snapshot_id, &r.snap_bids, &r.snap_asks).expect("snapshot");
                b
            },
            |book| apply_all(book, &r),
            BatchSize::LargeInput,
        )
    });
    g.bench_function(BenchmarkId::new("baseline_sorted_vec", "corpus_diffs"), |b| {
        b.iter_batched_ref(|| fresh_baseline(&r), |book| apply_all_baseline(book, &r), BatchSize::LargeInput)
    });
    g.finish();

    let (mut new, mut old) = (fresh_book(&r), fresh_baseline(&r));
    apply_all(&mut new, &r);
    apply_all_baseline(&mut old, &r);

    let mut g = c.benchmark_group("book/best_bid_ask");
    g.bench_function("engine", |b| {
        b.iter(|| {
            let book = black_box(&new);
            (book.best_bid(), book.best_ask())
        })
    });
    g.bench_function("baseline_sorted_vec", |b| {
        b.iter(|| {
            let book = black_box(&old);
            (book.bids.best(), book.asks.best())
        })
    });
    g.finish();

    // The fill model's walk: the first 10 levels of each side, best first.
    let mut g = c.benchmark_group("book/walk_10_levels");
    g.throughput(Throughput::Elements(20));
    g.bench_function("engine", |b| {
        b.iter(|| {
            let book = black_box(&new);
            walk10(book.contra(Side::Buy).iter()) + walk10(book.contra(Side::Sell).iter())
        })
    });
    g.bench_function("baseline_sorted_vec", |b| {
        b.iter(|| {
            let book = black_box(&old);
            walk10(book.asks.iter()) + walk10(book.bids.iter())
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = book_benches
}
criterion_main!(benches);
