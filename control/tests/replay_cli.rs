//! End-to-end: the real `hft replay` binary on captures written here from the synthetic market
//! and, when present, on the real BTCUSDT corpus.
//!
//! Each run uses a fresh temp working directory and a cleared environment (no repository
//! config or `.env` leaks in). The corpus lives outside the project: set `HFT_CORPUS_DIR`, or
//! it is looked for at `../shared/data/binance` from the repository root; when it is absent
//! the corpus test says so on stderr and checks nothing else.

use hft_engine::feed::decode::Level;
use hft_engine::feed::replay::{Pace, ReplaySource};
use hft_engine::feed::synthetic::{StreamKind, SyntheticMarket, SyntheticParams};
use hft_shared::{Px, Qty};
use serde_json::Value;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// One capture line: recorded receive time (unix ns) and the frame.
type Line = (u64, Vec<u8>);

fn hft<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hft"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .expect("run hft")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn write_capture(path: &Path, lines: &[Line]) -> PathBuf {
    let mut out = Vec::new();
    for (ns, f) in lines {
        out.extend_from_slice(format!("{ns} ").as_bytes());
        out.extend_from_slice(f);
        out.push(b'\n');
    }
    std::fs::write(path, out).expect("write capture");
    path.to_path_buf()
}

fn market(symbol: &str, seed: u64) -> SyntheticMarket {
    SyntheticMarket::new(&SyntheticParams {
        symbol: symbol.into(),
        seed,
        start_price: Px::from_int(3_000),
        tick_size: Px::parse("0.01").unwrap(),
        depth_levels: 25,
    })
}

fn next(m: &mut SyntheticMarket) -> Line {
    let (b, t) = m.next_frame();
    (t, b.to_vec())
}

/// Frames up to and including the next depth diff (where the local book is exact).
fn until_depth(m: &mut SyntheticMarket, lines: &mut Vec<Line>) {
    loop {
        lines.push(next(m));
        if m.last_stream() == StreamKind::Depth {
            return;
        }
    }
}

/// A capture as a recorder makes it: the stream, and the snapshot taken mid-window but
/// recorded after the diff its id falls inside (so that diff must be applied after it).
fn capture(m: &mut SyntheticMarket, frames: usize) -> Vec<Line> {
    let mut lines = Vec::new();
    for _ in 0..40 {
        lines.push(next(m));
    }
    until_depth(m, &mut lines);
    let last_u = m.update_id();
    while m.update_id() == last_u {
        lines.push(next(m));
    }
    let snap = m.snapshot().to_vec();
    until_depth(m, &mut lines);
    let ns = lines.last().map_or(0, |l| l.0) + 1;
    lines.push((ns, snap));
    for _ in 0..frames {
        lines.push(next(m));
    }
    until_depth(m, &mut lines);
    lines
}

/// `\d+(\.\d*[1-9])?`
fn is_decimal(s: &str) -> bool {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    !int.is_empty()
        && digits(int)
        && frac.is_none_or(|f| digits(f) && f.as_bytes().last().is_some_and(|&b| (b'1'..=b'9').contains(&b)))
}

/// Checks the dump's format and shape; returns (bids, asks) best-first.
fn parse_dump(stdout: &str) -> (Vec<Level>, Vec<Level>) {
    let (mut bids, mut asks) = (Vec::new(), Vec::new());
    for line in stdout.lines() {
        let parts = line.split(' ').collect::<Vec<_>>();
        assert!(
            parts.len() == 3 && (parts[0] == "B" || parts[0] == "A") && is_decimal(parts[1]) && is_decimal(parts[2]),
            "not `^[BA] <decimal> <decimal>$`: {line:?}"
        );
        let l = Level { px: Px::parse(parts[1]).unwrap(), qty: Qty::parse(parts[2]).unwrap() };
        if parts[0] == "B" {
            assert!(asks.is_empty(), "bids come before asks: {line:?}");
            bids.push(l);
        } else {
            asks.push(l);
        }
    }
    assert!(!bids.is_empty() && !asks.is_empty(), "both sides present:\n{stdout}");
    assert!(bids.windows(2).all(|w| w[0].px > w[1].px), "bids strictly descending");
    assert!(asks.windows(2).all(|w| w[0].px < w[1].px), "asks strictly ascending");
    assert!(bids[0].px < asks[0].px, "best bid < best ask");
    (bids, asks)
}

fn expected_dump(m: &SyntheticMarket) -> String {
    let mut s = String::new();
    for l in m.bids() {
        s.push_str(&format!("B {} {}\n", l.px, l.qty));
    }
    for l in m.asks() {
        s.push_str(&format!("A {} {}\n", l.px, l.qty));
    }
    s
}

#[test]
fn decimal_pattern_matches_what_it_should() {
    for ok in ["0", "61602", "61602.01", "0.5", "0.00000001"] {
        assert!(is_decimal(ok), "{ok}");
    }
    for bad in ["", ".5", "1.", "1.50", "1.0", "-1", "1e5", "1.2.3", " 1"] {
        assert!(!is_decimal(bad), "{bad}");
    }
}

#[test]
fn dump_book_equals_the_true_book_of_the_generator_for_an_unconfigured_symbol() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = market("ETHUSDT", 11); // the default config lists BTCUSDT only
    let lines = capture(&mut m, 6000);
    let half = lines.len() / 2;
    let a = write_capture(&dir.path().join("a.txt"), &lines[..half]);
    let b = write_capture(&dir.path().join("b.txt"), &lines[half..]);

    let out = hft(
        dir.path(),
        &[
            OsStr::new("replay"),
            "--input".as_ref(),
            a.as_os_str(),
            b.as_os_str(),
            "--dump-book".as_ref(),
            "ethusdt".as_ref(),
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "exit {:?}\nstderr:\n{stderr}", out.status.code());
    let (bids, asks) = parse_dump(&stdout);
    assert_eq!(bids, m.bids().collect::<Vec<_>>());
    assert_eq!(asks, m.asks().collect::<Vec<_>>());
    assert_eq!(stdout, expected_dump(&m));
    assert!(stderr.contains("frames/s"), "diagnostics on stderr:\n{stderr}");
}

#[test]
fn without_dump_book_a_summary_is_printed() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = market("BTCUSDT", 12);
    let lines = capture(&mut m, 2000);
    let a = write_capture(&dir.path().join("cap"), &lines);
    let out = hft(dir.path(), &[OsStr::new("replay"), "--input".as_ref(), a.as_os_str()]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "stderr:\n{stderr}");
    assert!(stdout.contains(&format!("frames {} (depth ", lines.len())), "{stdout}");
    for key in ["gaps 0", "decode errors 0", "frames/s", "book BTCUSDT valid"] {
        assert!(stdout.contains(key), "summary has {key:?}:\n{stdout}");
    }
}

#[test]
fn an_invalid_book_prints_nothing_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = market("BTCUSDT", 13);
    // A gap: one diff missing after the book synced, and no later snapshot.
    let mut lines = capture(&mut m, 500);
    let mut rest = Vec::new();
    until_depth(&mut m, &mut rest);
    rest.pop();
    lines.extend(rest);
    for _ in 0..500 {
        lines.push(next(&mut m));
    }
    until_depth(&mut m, &mut lines);
    let gap = write_capture(&dir.path().join("gap"), &lines);
    // Never synced: no snapshot line at all.
    let none = write_capture(&dir.path().join("none"), &(0..500).map(|_| next(&mut m)).collect::<Vec<_>>());

    for (path, why) in [(gap, "gap"), (none, "no snapshot")] {
        let out = hft(
            dir.path(),
            &[OsStr::new("replay"), "--input".as_ref(), path.as_os_str(), "--dump-book".as_ref(), "BTCUSDT".as_ref()],
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{why}: stderr:\n{stderr}");
        assert!(out.stdout.is_empty(), "{why}: nothing on stdout, got {:?}", text(&out.stdout));
        assert!(stderr.contains("not valid") && stderr.contains(why), "{why}: explained:\n{stderr}");
    }
}

#[test]
fn usage_errors_exit_2_and_name_the_culprit() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = market("BTCUSDT", 14);
    let ok = write_capture(&dir.path().join("ok"), &capture(&mut m, 10));
    let missing = dir.path().join("missing.gz");
    let cases: Vec<(Vec<&OsStr>, String)> = vec![
        (
            vec![
                "replay".as_ref(),
                "--input".as_ref(),
                ok.as_os_str(),
                missing.as_os_str(),
                "--dump-book".as_ref(),
                "BTCUSDT".as_ref(),
            ],
            missing.display().to_string(),
        ),
        (vec!["replay".as_ref(), "--input".as_ref(), dir.path().as_os_str()], dir.path().display().to_string()),
        (
            vec!["replay".as_ref(), "--input".as_ref(), ok.as_os_str(), "--dump-book".as_ref(), "BTC-USDT".as_ref()],
            "BTC-USDT".into(),
        ),
        (vec!["replay".as_ref(), "--input".as_ref(), ok.as_os_str(), "--speed".as_ref(), "0".as_ref()], "speed".into()),
        (
            vec!["--config".as_ref(), "nope.toml".as_ref(), "replay".as_ref(), "--input".as_ref(), ok.as_os_str()],
            "nope.toml".into(),
        ),
        (vec!["replay".as_ref(), "--dump-book".as_ref(), "BTCUSDT".as_ref()], "--input".into()),
    ];
    for (args, culprit) in cases {
        let out = hft(dir.path(), &args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: stderr:\n{stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: stdout {:?}", text(&out.stdout));
        assert!(stderr.contains(&culprit), "{args:?}: names {culprit:?}:\n{stderr}");
    }
}

// ---- the real corpus ----------------------------------------------------------------------------

const CORPUS_FILES: [&str; 2] = ["spot_btcusdt_20240808.gz", "spot_btcusdt_20240809.gz"];

fn corpus_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("HFT_CORPUS_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/binance")),
    };
    CORPUS_FILES.iter().all(|f| dir.join(f).is_file()).then_some(dir)
}

/// Top of book as a bookTicker states it.
#[derive(Debug, Clone, PartialEq)]
struct Top {
    bid: Level,
    ask: Level,
}

fn level(px: &Value, qty: &Value) -> Level {
    Level { px: Px::parse(px.as_str().unwrap()).unwrap(), qty: Qty::parse(qty.as_str().unwrap()).unwrap() }
}

#[test]
fn real_corpus_replays_to_a_valid_book_matching_the_ticker() {
    let Some(corpus) = corpus_dir() else {
        eprintln!("corpus absent (set HFT_CORPUS_DIR or see ../shared/data/binance): real-corpus replay not checked");
        return;
    };
    let files = CORPUS_FILES.map(|f| corpus.join(f));
    // Every line in file order (no configured symbol: nothing is held back).
    let mut src = ReplaySource::new(&files, &[] as &[&str], Pace::AsFastAsPossible).unwrap();
    let mut lines: Vec<Line> = Vec::new();
    while let Some(f) = src.poll_frame(0) {
        lines.push((f.recorded_ns, f.bytes.to_vec()));
    }
    assert_eq!(src.counters().malformed(), 0);
    // Diffs' `u` (line index) and bookTickers by `u`.
    let mut diffs: Vec<(u64, usize)> = Vec::new();
    let mut tickers = std::collections::HashMap::new();
    for (i, (_, f)) in lines.iter().enumerate() {
        let v: Value = serde_json::from_slice(f).unwrap();
        let Some(stream) = v["stream"].as_str() else { continue };
        let d = &v["data"];
        if stream.ends_with("@depth@100ms") {
            diffs.push((d["u"].as_u64().unwrap(), i));
        } else if stream.ends_with("@bookTicker") {
            tickers
                .insert(d["u"].as_u64().unwrap(), Top { bid: level(&d["b"], &d["B"]), ask: level(&d["a"], &d["A"]) });
        }
    }
    let tmp = tempfile::tempdir().unwrap();

    // The two files as they are.
    let mut args = vec![OsStr::new("replay"), "--input".as_ref()];
    args.extend(files.iter().map(|f| f.as_os_str()));
    args.extend([OsStr::new("--dump-book"), "BTCUSDT".as_ref()]);
    let out = hft(tmp.path(), &args);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "exit {:?}\nstderr:\n{stderr}", out.status.code());
    let (bids, asks) = parse_dump(&stdout);
    let (last_u, _) = *diffs.last().unwrap();
    match tickers.get(&last_u) {
        Some(t) => assert_eq!(&Top { bid: bids[0], ask: asks[0] }, t, "top of book at u = {last_u}"),
        None => eprintln!("no bookTicker has the last diff's u = {last_u}: checked validity only"),
    }

    // Cut right after the last diff that a bookTicker matches: the top must be the ticker's.
    let (u, i) = *diffs.iter().rev().find(|(u, _)| tickers.contains_key(u)).expect("some diff matches a ticker");
    let cut = write_capture(&tmp.path().join("cut"), &lines[..=i]);
    let out = hft(
        tmp.path(),
        &[OsStr::new("replay"), "--input".as_ref(), cut.as_os_str(), "--dump-book".as_ref(), "BTCUSDT".as_ref()],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "exit {:?}\nstderr:\n{stderr}", out.status.code());
    let (bids, asks) = parse_dump(&stdout);
    assert_eq!(&Top { bid: bids[0], ask: asks[0] }, &tickers[&u], "top of book at u = {u} (line {i})");
}
