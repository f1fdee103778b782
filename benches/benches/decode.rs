//! Market-data decode, ns per frame: the engine's fast path vs its simd-json general path vs a
//! serde_json baseline (`from_slice` into structs of `&str`, then `parse_fixed8`), all measured
//! in the same run. Depth diffs of 1, 5, 20 and 100 levels give the cost per level.
//!
//! Frames are real Binance frames from the BTCUSDT capture when it is present (`HFT_CORPUS_DIR`,
//! or `../shared/data/binance` from the repository root), else embedded samples; stderr says
//! which.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use flate2::read::GzDecoder;
use hft_engine::feed::decode::{
    BookTicker, DecodeError, DecodeScratch, Decoded, DepthHeader, Level, SnapshotHeader, Trade, fast, general,
};
use hft_shared::px::parse_fixed8;
use hft_shared::{Px, Qty};
use serde::Deserialize;
use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::time::Duration;

// ---- frames -------------------------------------------------------------------------------------

const BOOK_TICKER: &[u8] = br#"{"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}"#;
const TRADE: &[u8] = br#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}}"#;
const DEPTH_SIZES: [usize; 4] = [1, 5, 20, 100];

/// A depth diff of `n` levels (split between the sides as Binance's often are) in Binance's
/// format, for when the capture is absent.
fn sample_depth(n: usize) -> Vec<u8> {
    let level = |i: usize, bid: bool| {
        let px: i64 =
            if bid { 6_183_763_000_000 - i as i64 * 37_000_000 } else { 6_183_764_000_000 + i as i64 * 41_000_000 };
        let qty = (i as i64 % 7) * 1_300_000;
        format!("[\"{}.{:08}\",\"{}.{:08}\"]", px / 100_000_000, px % 100_000_000, qty / 100_000_000, qty % 100_000_000)
    };
    let nb = n / 2;
    let bids: Vec<String> = (0..nb).map(|i| level(i, true)).collect();
    let asks: Vec<String> = (0..n - nb).map(|i| level(i, false)).collect();
    format!(
        r#"{{"stream":"btcusdt@depth@100ms","data":{{"e":"depthUpdate","E":1723161255208,"s":"BTCUSDT","U":50093239189,"u":50093239202,"b":[{}],"a":[{}]}}}}"#,
        bids.join(","),
        asks.join(",")
    )
    .into_bytes()
}

struct Frames {
    source: &'static str,
    book_ticker: Vec<u8>,
    trade: Vec<u8>,
    /// (levels, frame) for each of `DEPTH_SIZES`.
    depth: Vec<(usize, Vec<u8>)>,
    /// The REST snapshot body (1000 levels a side), when the capture is present.
    snapshot: Option<Vec<u8>>,
}

fn corpus_frames(dir: &std::path::Path) -> std::io::Result<Vec<Vec<u8>>> {
    let f = std::fs::File::open(dir.join("spot_btcusdt_20240808.gz"))?;
    let mut out = Vec::new();
    for line in BufReader::new(GzDecoder::new(f)).split(b'\n') {
        let line = line?;
        if let Some(sp) = line.iter().position(|&c| c == b' ') {
            out.push(line[sp + 1..].to_vec());
        }
    }
    Ok(out)
}

fn level_count(frame: &[u8], sc: &mut DecodeScratch) -> usize {
    match fast::decode(frame, sc) {
        Ok(_) => sc.bids.len() + sc.asks.len(),
        Err(_) => 0,
    }
}

fn frames() -> Frames {
    let embedded = || Frames {
        source: "embedded samples",
        book_ticker: BOOK_TICKER.to_vec(),
        trade: TRADE.to_vec(),
        depth: DEPTH_SIZES.iter().map(|&n| (n, sample_depth(n))).collect(),
        snapshot: None,
    };
    let Some(dir) = hft_benches::corpus_dir(&["spot_btcusdt_20240808.gz"]) else {
        eprintln!("decode bench: Binance corpus not found; using embedded sample frames");
        return embedded();
    };
    let all = match corpus_frames(&dir) {
        Ok(all) => all,
        Err(e) => {
            eprintln!("decode bench: cannot read the corpus in {} ({e}); using embedded sample frames", dir.display());
            return embedded();
        }
    };
    let mut sc = DecodeScratch::with_capacity(5000);
    let find = |needle: &[u8]| all.iter().filter(|f| f.windows(needle.len()).any(|w| w == needle)).nth(100).cloned();
    let depth = DEPTH_SIZES
        .iter()
        .map(|&n| {
            let real =
                all.iter().find(|f| f.starts_with(b"{\"stream\":\"btcusdt@depth") && level_count(f, &mut sc) == n);
            (n, real.cloned().unwrap_or_else(|| sample_depth(n)))
        })
        .collect();
    eprintln!("decode bench: real frames from the Binance corpus in {}", dir.display());
    Frames {
        source: "Binance corpus",
        book_ticker: find(b"@bookTicker").unwrap_or_else(|| BOOK_TICKER.to_vec()),
        trade: find(b"@trade").unwrap_or_else(|| TRADE.to_vec()),
        depth,
        snapshot: all.iter().find(|f| f.starts_with(b"{\"lastUpdateId\"")).cloned(),
    }
}

// ---- the serde_json baseline ----------------------------------------------------------------------

#[derive(Deserialize)]
struct Combined<'a, T> {
    #[serde(borrow)]
    stream: &'a str,
    data: T,
}

#[derive(Deserialize)]
struct SerdeBookTicker<'a> {
    u: u64,
    #[serde(borrow)]
    s: &'a str,
    b: &'a str,
    #[serde(rename = "B")]
    bq: &'a str,
    a: &'a str,
    #[serde(rename = "A")]
    aq: &'a str,
}

#[derive(Deserialize)]
struct SerdeTrade<'a> {
    #[serde(rename = "E")]
    event_time: u64,
    #[serde(borrow)]
    s: &'a str,
    t: u64,
    p: &'a str,
    q: &'a str,
    #[serde(rename = "T")]
    trade_time: u64,
    m: bool,
}

#[derive(Deserialize)]
struct SerdeDepth<'a> {
    #[serde(rename = "E")]
    event_time: u64,
    #[serde(borrow)]
    s: &'a str,
    #[serde(rename = "U")]
    first: u64,
    u: u64,
    #[serde(borrow)]
    b: Vec<(&'a str, &'a str)>,
    #[serde(borrow)]
    a: Vec<(&'a str, &'a str)>,
}

#[derive(Deserialize)]
struct SerdeSnapshot<'a> {
    #[serde(rename = "lastUpdateId")]
    last_update_id: u64,
    #[serde(borrow)]
    bids: Vec<(&'a str, &'a str)>,
    #[serde(borrow)]
    asks: Vec<(&'a str, &'a str)>,
}

fn fixed(s: &str) -> Result<i64, DecodeError> {
    parse_fixed8(s.as_bytes()).map_err(|_| DecodeError::BadNumber)
}

fn serde_levels(src: &[(&str, &str)], out: &mut Vec<Level>) -> Result<(), DecodeError> {
    out.clear();
    for (p, q) in src {
        if out.len() == out.capacity() {
            return Err(DecodeError::TooManyLevels);
        }
        out.push(Level { px: Px(fixed(p)?), qty: Qty(fixed(q)?) });
    }
    Ok(())
}

type Decoder = for<'a> fn(&'a [u8], &mut DecodeScratch) -> Result<Decoded<'a>, DecodeError>;

fn serde_book_ticker<'a>(frame: &'a [u8], _: &mut DecodeScratch) -> Result<Decoded<'a>, DecodeError> {
    let c: Combined<'_, SerdeBookTicker<'_>> = serde_json::from_slice(frame).map_err(|_| DecodeError::Syntax)?;
    black_box(c.stream);
    let d = c.data;
    Ok(Decoded::BookTicker(BookTicker {
        symbol: d.s.as_bytes(),
        update_id: d.u,
        bid_px: Px(fixed(d.b)?),
        bid_qty: Qty(fixed(d.bq)?),
        ask_px: Px(fixed(d.a)?),
        ask_qty: Qty(fixed(d.aq)?),
    }))
}

fn serde_trade<'a>(frame: &'a [u8], _: &mut DecodeScratch) -> Result<Decoded<'a>, DecodeError> {
    let c: Combined<'_, SerdeTrade<'_>> = serde_json::from_slice(frame).map_err(|_| DecodeError::Syntax)?;
    black_box(c.stream);
    let d = c.data;
    Ok(Decoded::Trade(Trade {
        symbol: d.s.as_bytes(),
        event_time_ms: d.event_time,
        trade_id: d.t,
        px: Px(fixed(d.p)?),
        qty: Qty(fixed(d.q)?),
        trade_time_ms: d.trade_time,
        buyer_is_maker: d.m,
    }))
}

fn serde_depth<'a>(frame: &'a [u8], sc: &mut DecodeScratch) -> Result<Decoded<'a>, DecodeError> {
    let c: Combined<'_, SerdeDepth<'_>> = serde_json::from_slice(frame).map_err(|_| DecodeError::Syntax)?;
    black_box(c.stream);
    let d = c.data;
    serde_levels(&d.b, &mut sc.bids)?;
    serde_levels(&d.a, &mut sc.asks)?;
    Ok(Decoded::Depth(DepthHeader {
        symbol: d.s.as_bytes(),
        event_time_ms: d.event_time,
        first_id: d.first,
        final_id: d.u,
    }))
}

fn serde_snapshot<'a>(frame: &'a [u8], sc: &mut DecodeScratch) -> Result<Decoded<'a>, DecodeError> {
    let d: SerdeSnapshot<'_> = serde_json::from_slice(frame).map_err(|_| DecodeError::Syntax)?;
    serde_levels(&d.bids, &mut sc.bids)?;
    serde_levels(&d.asks, &mut sc.asks)?;
    Ok(Decoded::Snapshot(SnapshotHeader { last_update_id: d.last_update_id }))
}

// ---- benchmarks -----------------------------------------------------------------------------------

/// Times the fast path, the simd-json general path and the serde_json baseline on `frame`,
/// after checking that all three give the same answer and levels (a benchmark of a wrong answer
/// is worthless).
fn bench_three(c: &mut Criterion, group: &str, param: &str, frame: &[u8], serde: Decoder) {
    let decoders: [(&str, Decoder); 3] =
        [("fast", fast::decode), ("simd_json", general::decode), ("serde_json", serde)];
    let mut sc = DecodeScratch::with_capacity(5000);
    let answers: Vec<String> = decoders
        .iter()
        .map(|(name, d)| match d(frame, &mut sc) {
            Ok(v) => format!("{v:?} {:?} {:?}", sc.bids, sc.asks),
            Err(e) => panic!("{group} {param}: {name} failed: {e:?}"),
        })
        .collect();
    assert!(answers.iter().all(|a| *a == answers[0]), "{group} {param}: the decoders disagree: {answers:#?}");
    let mut g = c.benchmark_group(group);
    for (name, d) in decoders {
        g.bench_function(BenchmarkId::new(name, param), |b| b.iter(|| d(black_box(frame), &mut sc).is_ok()));
    }
    g.finish();
}

fn decode_benches(c: &mut Criterion) {
    let frames = frames();
    eprintln!(
        "decode bench: frames from {}: bookTicker {} B, trade {} B, depth {}",
        frames.source,
        frames.book_ticker.len(),
        frames.trade.len(),
        frames.depth.iter().map(|(n, f)| format!("{n} levels {} B", f.len())).collect::<Vec<_>>().join(", ")
    );
    bench_three(c, "decode/bookTicker", "frame", &frames.book_ticker, serde_book_ticker);
    bench_three(c, "decode/trade", "frame", &frames.trade, serde_trade);
    for (n, frame) in &frames.depth {
        bench_three(c, "decode/depth", &format!("{n}_levels"), frame, serde_depth);
    }
    if let Some(frame) = &frames.snapshot {
        let levels = level_count(frame, &mut DecodeScratch::with_capacity(5000));
        bench_three(c, "decode/snapshot", &format!("{levels}_levels"), frame, serde_snapshot);
    }
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
    targets = decode_benches
}
criterion_main!(benches);
