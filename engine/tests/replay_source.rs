//! The capture replay source (`feed::replay`) against captures written here from the
//! synthetic market: plain and gzip files (told apart by content, not name), byte-identical
//! frames in order across files, malformed lines, pacing, snapshot attribution, the diffs a
//! snapshot falls inside (recorded before it), resync requests, damaged and missing files, the
//! whole pipeline syncing on such a capture, and no allocation in `poll` after warm-up
//! (counting global allocator, this test binary only).

use flate2::Compression;
use flate2::write::GzEncoder;
use hft_engine::engine::Pipeline;
use hft_engine::feed::FrameKind;
use hft_engine::feed::replay::{HOLD_MAX, Pace, ReplayError, ReplaySource};
use hft_engine::feed::synthetic::{START_TIME_NS, StreamKind, SyntheticMarket, SyntheticParams};
use hft_shared::config::Config;
use hft_shared::msg::Event;
use hft_shared::{Px, SymbolId};
use std::io::Write;
use std::path::{Path, PathBuf};

// ---- allocation counting (per thread, only while watching) -------------------------------------

mod common;

// ---- captures -----------------------------------------------------------------------------------

/// One capture line: recorded receive time (unix ns) and the frame.
type Line = (u64, Vec<u8>);
/// What `poll_frame` delivered.
type Got = (FrameKind, Vec<u8>, u64);

const NO_SYMBOLS: &[&str] = &[];

fn market(symbol: &str, seed: u64) -> SyntheticMarket {
    SyntheticMarket::new(&SyntheticParams {
        symbol: symbol.into(),
        seed,
        start_price: Px::from_int(60_000),
        tick_size: Px::parse("0.01").unwrap(),
        depth_levels: 20,
    })
}

fn next(m: &mut SyntheticMarket) -> Line {
    let (b, t) = m.next_frame();
    (t, b.to_vec())
}

fn frames(m: &mut SyntheticMarket, n: usize) -> Vec<Line> {
    (0..n).map(|_| next(m)).collect()
}

/// The next frame of `kind`, skipping others.
fn next_of(m: &mut SyntheticMarket, kind: StreamKind) -> Line {
    loop {
        let l = next(m);
        if m.last_stream() == kind {
            return l;
        }
    }
}

fn snapshot(m: &mut SyntheticMarket, ns: u64) -> Line {
    (ns, m.snapshot().to_vec())
}

fn text(lines: &[Line]) -> Vec<u8> {
    let mut out = Vec::new();
    for (ns, f) in lines {
        out.extend_from_slice(format!("{ns} ").as_bytes());
        out.extend_from_slice(f);
        out.push(b'\n');
    }
    out
}

fn write_bytes(path: &Path, bytes: &[u8], gzip: bool) {
    if gzip {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(bytes).unwrap();
        std::fs::write(path, enc.finish().unwrap()).unwrap();
    } else {
        std::fs::write(path, bytes).unwrap();
    }
}

fn write(path: &Path, lines: &[Line], gzip: bool) -> PathBuf {
    write_bytes(path, &text(lines), gzip);
    path.to_path_buf()
}

fn poll_one(src: &mut ReplaySource, now_ns: u64) -> Option<Got> {
    src.poll_frame(now_ns).map(|f| (f.kind, f.bytes.to_vec(), f.recorded_ns))
}

/// Every frame, as fast as possible.
fn drain(src: &mut ReplaySource) -> Vec<Got> {
    let mut out = Vec::new();
    while let Some(g) = poll_one(src, 0) {
        out.push(g);
    }
    assert!(src.is_finished(), "None from an unpaced source means finished");
    out
}

fn stream(l: &Line) -> Got {
    (FrameKind::Stream, l.1.clone(), l.0)
}

fn show(g: &[Got]) -> Vec<(FrameKind, String, u64)> {
    g.iter().map(|(k, b, t)| (*k, String::from_utf8_lossy(&b[..b.len().min(60)]).into_owned(), *t)).collect()
}

// ---- tests --------------------------------------------------------------------------------------

#[test]
fn frames_come_back_byte_identical_and_in_order_across_plain_and_gzip_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = market("BTCUSDT", 1);
    let mut lines = vec![snapshot(&mut m, START_TIME_NS - 1)];
    lines.extend(frames(&mut m, 4000));
    // Names that lie: the format is told by the bytes.
    let a = write(&dir.path().join("a.gz"), &lines[..1700], false);
    let b = write(&dir.path().join("b.capture"), &lines[1700..], true);

    let mut src = ReplaySource::new(&[a, b], &["BTCUSDT"], Pace::AsFastAsPossible).unwrap();
    assert_eq!(src.recorded_ns(), 0);
    let got = drain(&mut src);
    assert_eq!(got.len(), lines.len());
    assert_eq!(got[0], (FrameKind::Snapshot(SymbolId(0)), lines[0].1.clone(), lines[0].0));
    for (i, (g, l)) in got.iter().zip(&lines).enumerate().skip(1) {
        assert_eq!(g, &stream(l), "frame {i}");
    }
    assert_eq!(src.recorded_ns(), lines.last().unwrap().0);
    let c = *src.counters();
    assert_eq!((c.lines, c.frames, c.snapshots, c.files_done), (4001, 4001, 1, 2));
    assert_eq!((c.malformed(), c.held, c.read_errors), (0, 0, 0));
    assert!(src.poll(u64::MAX).is_none() && src.is_finished());
}

#[test]
fn malformed_lines_are_counted_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = market("BTCUSDT", 2);
    let good = frames(&mut m, 5);
    let line = |i: usize| format!("{} {}", good[i].0, String::from_utf8(good[i].1.clone()).unwrap());
    let f = String::from_utf8(good[0].1.clone()).unwrap();
    let mut one = Vec::new();
    one.extend_from_slice(format!("{}\r\n", line(0)).as_bytes());
    one.extend_from_slice(b"garbage-without-a-space\n");
    one.extend_from_slice(b"\n");
    one.extend_from_slice(format!("12x4 {f}\n").as_bytes());
    one.extend_from_slice(format!("99999999999999999999 {f}\n").as_bytes());
    one.extend_from_slice(format!(" {f}\n").as_bytes());
    one.extend_from_slice(b"\xff\xfe binary junk\n");
    one.extend_from_slice(b"77 \n");
    one.extend_from_slice(format!("{}\n", line(1)).as_bytes());
    // Well-formed line, not JSON: the source does not judge frames, the decoder does.
    one.extend_from_slice(b"5 not json at all\n");
    one.extend_from_slice(line(2).as_bytes()); // no final newline
    let mut two = Vec::new();
    two.extend_from_slice(format!("{}\n{}\n", line(3), line(4)).as_bytes());
    let a = dir.path().join("one.txt");
    let b = dir.path().join("two.txt");
    write_bytes(&a, &one, true);
    write_bytes(&b, &two, false);

    // No configured symbol: nothing is held, so the order is exactly the files'.
    let mut src = ReplaySource::new(&[a, b], NO_SYMBOLS, Pace::AsFastAsPossible).unwrap();
    let got = drain(&mut src);
    let want =
        vec![stream(&good[0]), stream(&good[1]), (FrameKind::Stream, b"not json at all".to_vec(), 5), stream(&good[2])]
            .into_iter()
            .chain([stream(&good[3]), stream(&good[4])])
            .collect::<Vec<_>>();
    assert_eq!(show(&got), show(&want));
    assert_eq!(got, want);
    let c = *src.counters();
    assert_eq!((c.no_space, c.bad_ns, c.empty_frame, c.malformed()), (2, 4, 1, 7));
    assert_eq!((c.lines, c.frames), (13, 6));
}

#[test]
fn recorded_pace_releases_nothing_before_its_time_and_everything_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = market("BTCUSDT", 3);
    let t0 = 1_700_000_000_000_000_000u64;
    const MS: u64 = 1_000_000;
    let offsets = [0, MS, MS, 5 * MS, 4 * MS, 20 * MS];
    let lines = offsets.iter().map(|o| (t0 + o, next_of(&mut m, StreamKind::BookTicker).1)).collect::<Vec<_>>();
    let path = write(&dir.path().join("cap"), &lines, false);

    let mut src = ReplaySource::new(std::slice::from_ref(&path), NO_SYMBOLS, Pace::Recorded).unwrap();
    let n0 = 500; // the caller's clock at the first poll
    assert_eq!(poll_one(&mut src, n0), Some(stream(&lines[0])), "the first frame is due at once");
    assert_eq!(poll_one(&mut src, n0 + MS - 1), None);
    assert_eq!(poll_one(&mut src, n0 + MS - 1), None, "still pending, not lost");
    assert_eq!(poll_one(&mut src, n0 + MS), Some(stream(&lines[1])));
    assert_eq!(poll_one(&mut src, n0 + MS), Some(stream(&lines[2])));
    assert_eq!(poll_one(&mut src, n0 + MS), None);
    assert_eq!(poll_one(&mut src, n0 + 5 * MS - 1), None);
    assert_eq!(poll_one(&mut src, n0 + 5 * MS), Some(stream(&lines[3])));
    assert_eq!(poll_one(&mut src, n0 + 5 * MS), Some(stream(&lines[4])), "recorded out of order: due at once");
    assert_eq!(poll_one(&mut src, n0 + 19 * MS), None);
    assert!(!src.is_finished());
    assert_eq!(poll_one(&mut src, u64::MAX / 2), Some(stream(&lines[5])));
    assert_eq!(poll_one(&mut src, u64::MAX / 2), None);
    assert!(src.is_finished());

    // Ten times faster: offsets shrink tenfold.
    let mut src = ReplaySource::new(&[path], NO_SYMBOLS, Pace::Scaled(10.0)).unwrap();
    assert!(poll_one(&mut src, 0).is_some());
    assert_eq!(poll_one(&mut src, MS / 10 - 1), None);
    assert_eq!(poll_one(&mut src, MS / 10), Some(stream(&lines[1])));
    assert_eq!(poll_one(&mut src, MS / 10), Some(stream(&lines[2])));
    assert_eq!(poll_one(&mut src, MS / 2 - 1), None);
    assert_eq!(poll_one(&mut src, MS / 2), Some(stream(&lines[3])));
    assert_eq!(poll_one(&mut src, MS / 2), Some(stream(&lines[4])));
    assert_eq!(poll_one(&mut src, 2 * MS - 1), None);
    assert_eq!(poll_one(&mut src, 2 * MS), Some(stream(&lines[5])));
    assert!(!src.is_finished(), "the end is known once a poll has met it");
    assert_eq!(poll_one(&mut src, 2 * MS), None);
    assert!(src.is_finished());
}

#[test]
fn snapshot_lines_go_to_the_symbol_of_the_latest_diff_else_the_first_configured() {
    let dir = tempfile::tempdir().unwrap();
    let (mut eth, mut btc, mut xrp) = (market("ETHUSDT", 4), market("BTCUSDT", 5), market("XRPUSDT", 6));
    let mut t = START_TIME_NS;
    let mut at = |mut l: Line| {
        t += 1000;
        l.0 = t;
        l
    };
    let l0 = at(snapshot(&mut eth, 0)); // before any diff: the first configured symbol
    let l1 = at(next_of(&mut btc, StreamKind::Depth)); // BTCUSDT awaits its snapshot: held
    let l2 = at(next_of(&mut eth, StreamKind::BookTicker));
    let mut l3 = at(snapshot(&mut btc, 0));
    l3.1.splice(0..0, *b"  \t"); // whitespace before the body
    let l4 = at(next_of(&mut eth, StreamKind::Depth)); // ETHUSDT is synced: not held
    let l5 = at(snapshot(&mut eth, 0));
    let l6 = at(next_of(&mut xrp, StreamKind::Depth)); // not configured
    let l7 = at(snapshot(&mut xrp, 0));
    let lines = [l0, l1, l2, l3, l4, l5, l6, l7];
    let path = write(&dir.path().join("cap"), &lines, false);

    let mut src = ReplaySource::new(&[path], &["ETHUSDT", "BTCUSDT"], Pace::AsFastAsPossible).unwrap();
    let got = drain(&mut src);
    let snap = |id: u16, l: &Line| (FrameKind::Snapshot(SymbolId(id)), l.1.clone(), l.0);
    let [l0, l1, l2, l3, l4, l5, l6, l7] = &lines;
    let want = vec![
        snap(0, l0),
        stream(l2),
        snap(1, l3),
        // The held BTCUSDT diff, right after its snapshot, at the snapshot's time.
        (FrameKind::Stream, l1.1.clone(), l3.0),
        stream(l4),
        snap(0, l5),
        stream(l6),
        stream(l7), // XRPUSDT's: cannot be attributed
    ];
    assert_eq!(show(&got), show(&want));
    assert_eq!(got, want);
    let c = *src.counters();
    assert_eq!((c.snapshots, c.unattributed_snapshots, c.held, c.frames), (3, 1, 1, 8));
}

#[test]
fn diffs_recorded_before_their_snapshot_are_delivered_after_it_and_resync_waits_for_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = market("BTCUSDT", 7);
    let d1 = next_of(&mut m, StreamKind::Depth);
    let t1 = next_of(&mut m, StreamKind::BookTicker);
    let d2 = next_of(&mut m, StreamKind::Depth);
    let s1 = snapshot(&mut m, d2.0 + 5);
    let t2 = next_of(&mut m, StreamKind::BookTicker);
    let d3 = next_of(&mut m, StreamKind::Depth);
    let d4 = next_of(&mut m, StreamKind::Depth);
    let t3 = next_of(&mut m, StreamKind::BookTicker);
    let s2 = snapshot(&mut m, t3.0 + 5);
    let d5 = next_of(&mut m, StreamKind::Depth);
    let d6 = next_of(&mut m, StreamKind::Depth);
    let t4 = next_of(&mut m, StreamKind::BookTicker);
    let lines = [&d1, &t1, &d2, &s1, &t2, &d3, &d4, &t3, &s2, &d5, &d6, &t4].map(Clone::clone);
    let path = write(&dir.path().join("cap"), &lines, true);
    let mut src = ReplaySource::new(&[path], &["BTCUSDT"], Pace::AsFastAsPossible).unwrap();
    let snap = |l: &Line| (FrameKind::Snapshot(SymbolId(0)), l.1.clone(), l.0);
    let late = |l: &Line, by: &Line| (FrameKind::Stream, l.1.clone(), by.0);

    let mut got = Vec::new();
    for _ in 0..6 {
        got.push(poll_one(&mut src, 0).unwrap());
    }
    assert_eq!(got, vec![stream(&t1), snap(&s1), late(&d1, &s1), late(&d2, &s1), stream(&t2), stream(&d3)]);
    // A gap: no snapshot can be fetched from a file; the next diffs wait for the next one.
    src.request_snapshot(SymbolId(0));
    src.request_snapshot(SymbolId(9)); // out of range: counted, harmless
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(poll_one(&mut src, 0).unwrap());
    }
    assert_eq!(got, vec![stream(&t3), snap(&s2), late(&d4, &s2), stream(&d5)]);
    // And when no snapshot ever comes, held diffs are delivered when the files end.
    src.request_snapshot(SymbolId(0));
    let got = drain(&mut src);
    assert_eq!(got, vec![stream(&t4), late(&d6, &t4)]);
    let c = *src.counters();
    assert_eq!((c.resync_requests, c.held, c.snapshots, c.frames, c.hold_overflows), (3, 4, 2, 12, 0));
}

#[test]
fn a_resync_while_held_diffs_are_delivered_keeps_the_rest_for_the_next_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = market("BTCUSDT", 9);
    let d1 = next_of(&mut m, StreamKind::Depth);
    let d2 = next_of(&mut m, StreamKind::Depth);
    let d3 = next_of(&mut m, StreamKind::Depth);
    let s1 = snapshot(&mut m, d3.0 + 1);
    let t1 = next_of(&mut m, StreamKind::BookTicker);
    let s2 = snapshot(&mut m, t1.0 + 1);
    let lines = [&d1, &d2, &d3, &s1, &t1, &s2].map(Clone::clone);
    let path = write(&dir.path().join("cap"), &lines, false);
    let mut src = ReplaySource::new(&[path], &["BTCUSDT"], Pace::AsFastAsPossible).unwrap();
    let snap = |l: &Line| (FrameKind::Snapshot(SymbolId(0)), l.1.clone(), l.0);
    let late = |l: &Line, by: &Line| (FrameKind::Stream, l.1.clone(), by.0);
    assert_eq!(poll_one(&mut src, 0), Some(snap(&s1)));
    assert_eq!(poll_one(&mut src, 0), Some(late(&d1, &s1)));
    src.request_snapshot(SymbolId(0)); // say d1 did not fit the snapshot
    assert_eq!(drain(&mut src), vec![stream(&t1), snap(&s2), late(&d2, &s2), late(&d3, &s2)]);
}

#[test]
fn a_full_hold_delivers_its_oldest_diff_early() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = market("BTCUSDT", 8);
    let mut lines = (0..HOLD_MAX + 3).map(|_| next_of(&mut m, StreamKind::Depth)).collect::<Vec<_>>();
    lines.push(next_of(&mut m, StreamKind::BookTicker));
    let path = write(&dir.path().join("cap"), &lines, false);
    let mut src = ReplaySource::new(&[path], &["BTCUSDT"], Pace::AsFastAsPossible).unwrap();
    let got = drain(&mut src);
    let ticker = lines.len() - 1;
    let mut want = Vec::new();
    // The diffs that overflow the hold release the oldest, at their own time.
    for i in 0..3 {
        want.push((FrameKind::Stream, lines[i].1.clone(), lines[HOLD_MAX + i].0));
    }
    want.push(stream(&lines[ticker]));
    for l in &lines[3..ticker] {
        want.push((FrameKind::Stream, l.1.clone(), lines[ticker].0));
    }
    assert_eq!(got, want);
    assert_eq!(src.counters().hold_overflows, 3);
}

/// A capture whose snapshot is taken mid-window, after a book change, with another change
/// before the window's diff, and recorded after that diff (like lines 6 and 8 of the BTCUSDT
/// corpus): the diff straddles the snapshot's id and only helps if delivered after it.
/// `None` when this seed's window does not have that shape.
fn straddling_capture(seed: u64) -> Option<(SyntheticMarket, Vec<Line>)> {
    let mut m = market("BTCUSDT", seed);
    let mut lines = frames(&mut m, 300);
    while m.last_stream() != StreamKind::Depth {
        lines.push(next(&mut m));
    }
    let last_u = m.update_id();
    while m.update_id() == last_u {
        lines.push(next(&mut m));
        if m.last_stream() == StreamKind::Depth {
            return None;
        }
    }
    let snap_id = m.update_id();
    let snap = m.snapshot().to_vec();
    loop {
        lines.push(next(&mut m));
        if m.last_stream() == StreamKind::Depth {
            break;
        }
    }
    if m.update_id() == snap_id {
        return None;
    }
    let ns = lines.last()?.0 + 1; // the REST answer arrived after the diff
    lines.push((ns, snap));
    Some((m, lines))
}

#[test]
fn a_snapshot_recorded_after_the_diff_it_falls_inside_syncs_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, mut lines) = (10..).find_map(straddling_capture).unwrap();
    lines.extend(frames(&mut m, 3000));
    lines.push(next_of(&mut m, StreamKind::Depth)); // the local book is exact at a diff

    let path = write(&dir.path().join("cap.gz"), &lines, true);
    let cfg = Config::from_toml_str("symbols = [\"BTCUSDT\"]\n", &|_| None).unwrap();
    let (tx, mut rx) = rtrb::RingBuffer::<Event>::new(cfg.engine.event_ring);
    let mut pipeline = Pipeline::new(&cfg, tx);
    let mut src = ReplaySource::new(&[path], &cfg.symbols, Pace::AsFastAsPossible).unwrap();
    let mut last_ts = 0;
    while let Some(f) = src.poll_frame(0) {
        assert!(f.recorded_ns >= last_ts, "recorded time never runs backwards");
        last_ts = f.recorded_ns;
        let recv = pipeline.clock().raw();
        let out = pipeline.on_frame(f.kind, f.bytes, recv, f.recorded_ns);
        if let Some(s) = out.resync {
            src.request_snapshot(s);
        }
        while rx.pop().is_ok() {}
    }
    let c = *pipeline.counters();
    assert_eq!((c.book_gaps, c.decode_errors_total(), c.bad_snapshots), (0, 0, 0));
    assert_eq!(src.counters().resync_requests, 0);
    assert!(src.counters().held >= 2, "the diffs before the snapshot were held");
    let book = pipeline.book(SymbolId(0));
    assert!(book.is_valid());
    assert_eq!(book.bids.iter().collect::<Vec<_>>(), m.bids().collect::<Vec<_>>());
    assert_eq!(book.asks.iter().collect::<Vec<_>>(), m.asks().collect::<Vec<_>>());
}

#[test]
fn a_truncated_gzip_file_is_read_up_to_the_damage_then_the_next_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = market("BTCUSDT", 20);
    let lines = frames(&mut m, 20_000);
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(&text(&lines)).unwrap();
    let gz = enc.finish().unwrap();
    let a = dir.path().join("a.gz");
    std::fs::write(&a, &gz[..gz.len() / 2]).unwrap();
    let tail = next(&mut m);
    let b = write(&dir.path().join("b"), std::slice::from_ref(&tail), false);

    let mut src = ReplaySource::new(&[a.clone(), b], NO_SYMBOLS, Pace::AsFastAsPossible).unwrap();
    let got = drain(&mut src);
    let k = got.len() - 1;
    assert!(k > 1000 && k < lines.len(), "part of the first file, got {k}");
    assert_eq!(got[k], stream(&tail));
    for (i, g) in got[..k].iter().enumerate() {
        assert_eq!(g, &stream(&lines[i]), "frame {i}: only whole lines are delivered");
    }
    assert_eq!((src.counters().read_errors, src.counters().files_done), (1, 2));
    let err = src.read_error().expect("the error is kept");
    assert!(matches!(err, ReplayError::Read { .. }));
    assert!(err.to_string().contains(&a.display().to_string()), "{err}");
}

#[test]
fn missing_unreadable_and_corrupt_inputs_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let ok = write(&dir.path().join("ok"), &[(1, b"{}".to_vec())], false);
    let missing = dir.path().join("missing.gz");
    let e = ReplaySource::new(&[ok.clone(), missing.clone()], NO_SYMBOLS, Pace::AsFastAsPossible).unwrap_err();
    assert!(matches!(e, ReplayError::Open { .. }));
    assert!(e.to_string().contains(&missing.display().to_string()), "{e}");
    assert!(std::error::Error::source(&e).is_some(), "the OS error is the source");

    let e = ReplaySource::new(&[dir.path()], NO_SYMBOLS, Pace::AsFastAsPossible).unwrap_err();
    assert!(e.to_string().contains(&dir.path().display().to_string()), "{e}");

    let corrupt = dir.path().join("corrupt");
    std::fs::write(&corrupt, [0x1f, 0x8b, 0x63, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3]).unwrap();
    let e = ReplaySource::new(&[&corrupt], NO_SYMBOLS, Pace::AsFastAsPossible).unwrap_err();
    assert!(matches!(e, ReplayError::Read { .. }), "{e:?}");
    assert!(e.to_string().contains(&corrupt.display().to_string()), "{e}");

    let none: &[PathBuf] = &[];
    assert!(matches!(ReplaySource::new(none, NO_SYMBOLS, Pace::Recorded), Err(ReplayError::NoInput)));
    for speed in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let r = ReplaySource::new(std::slice::from_ref(&ok), NO_SYMBOLS, Pace::Scaled(speed));
        assert!(matches!(r, Err(ReplayError::BadSpeed(_))), "speed {speed}");
    }
    // An empty file is a capture of nothing.
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    let mut src = ReplaySource::new(&[empty], NO_SYMBOLS, Pace::AsFastAsPossible).unwrap();
    assert!(drain(&mut src).is_empty());
}

#[test]
fn poll_does_not_allocate_after_warm_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = market("BTCUSDT", 30);
    // Diffs before the snapshot (held, then released) during warm-up; then steady state
    // across a plain and a gzip file.
    let mut one = vec![next_of(&mut m, StreamKind::Depth), next_of(&mut m, StreamKind::Depth)];
    let snap = snapshot(&mut m, one[1].0 + 1);
    one.push(snap);
    one.extend(frames(&mut m, 20_000));
    let two = frames(&mut m, 20_000);
    let a = write(&dir.path().join("one"), &one, false);
    let b = write(&dir.path().join("two"), &two, true);
    let mut src = ReplaySource::new(&[a, b], &["BTCUSDT"], Pace::Recorded).unwrap();

    let mut sum = 0u64;
    let mut polls = 0u64;
    let mut poll = |src: &mut ReplaySource| {
        polls += 1;
        // Recorded pace, on a clock one second ahead per poll: every frame is due.
        if let Some(f) = src.poll_frame(polls * 1_000_000_000) {
            sum = sum.wrapping_add(f.bytes.len() as u64 ^ f.recorded_ns);
        }
    };
    while src.counters().frames < 1000 {
        poll(&mut src);
    }
    common::alloc::start();
    while !src.is_finished() {
        poll(&mut src);
    }
    let allocs = common::alloc::stop();
    assert!(src.is_finished());
    assert_eq!(src.counters().frames, 40_003);
    assert_ne!(sum, 0);
    assert_eq!(allocs, 0, "poll allocated {allocs} times over {polls} polls after warm-up");
}
