//! The market-data decoders against real Binance frames and against frames built here.
//!
//! * Every frame of the BTCUSDT capture (README in the corpus directory) is decoded by the fast
//!   path and by the simd-json general path, which must agree exactly (answer and levels), and
//!   by a `serde_json` reference written here from the rules in `feed::decode`'s docs. The
//!   capture lives outside the project: set `HFT_CORPUS_DIR`, or it is looked for at
//!   `../shared/data/binance` from the repository root. When it is absent the test says so and
//!   runs the same checks on generated frames.
//! * Generated frames (reordered keys, whitespace, extra fields, escapes, other number forms)
//!   must decode to exactly what was generated.
//! * Malformed input — truncations at every offset, bad numbers, wrong types, too many levels,
//!   random mutations and random bytes — gives an error or the right answer, never a panic,
//!   and the fast path never contradicts the general one.
//! * The fast path does not allocate (counting global allocator, this test binary only).

use hft_engine::feed::decode::{
    self, AggTrade, BookTicker, DecodeError, DecodeScratch, Decoded, DepthHeader, Level, SnapshotHeader, Trade, fast,
    general,
};
use hft_shared::{Px, Qty};
use proptest::prelude::*;
use serde_json::Value;

// ---- allocation counting (per thread, only while watching) -------------------------------------

mod common;
use common::alloc::allocations_in;
use common::corpus;

// ---- the corpus ---------------------------------------------------------------------------------

/// Per file: depth diffs, bookTickers, trades (from the corpus README).
const CORPUS_COUNTS: [[usize; 3]; 2] = [[3451, 28040, 9757], [3044, 45134, 10147]];

// ---- the serde_json reference: the rules of `feed::decode`, written independently -----------------

type Answer<'a> = Result<(Decoded<'a>, Vec<Level>, Vec<Level>), DecodeError>;

#[derive(Clone, Copy, PartialEq, Debug)]
enum RefKind {
    Ticker,
    Depth,
    Trade,
    Agg,
    Snapshot,
    Ignored,
}

fn ref_u64(v: &Value) -> Result<u64, DecodeError> {
    match v {
        Value::Number(n) => n.as_u64().ok_or(DecodeError::BadNumber),
        _ => Err(DecodeError::WrongType),
    }
}

fn ref_str(v: &Value) -> Result<&str, DecodeError> {
    v.as_str().ok_or(DecodeError::WrongType)
}

fn ref_px(v: &Value) -> Result<Px, DecodeError> {
    Px::parse(ref_str(v)?).map_err(|_| DecodeError::BadNumber)
}

fn ref_qty(v: &Value) -> Result<Qty, DecodeError> {
    Qty::parse(ref_str(v)?).map_err(|_| DecodeError::BadNumber)
}

fn ref_levels(v: Option<&Value>, cap: usize) -> Result<Vec<Level>, DecodeError> {
    let arr = v.ok_or(DecodeError::MissingField)?.as_array().ok_or(DecodeError::WrongType)?;
    let mut out = Vec::new();
    for l in arr {
        if out.len() == cap {
            return Err(DecodeError::TooManyLevels);
        }
        let l = l.as_array().filter(|l| l.len() >= 2).ok_or(DecodeError::WrongType)?;
        out.push(Level { px: ref_px(&l[0])?, qty: ref_qty(&l[1])? });
    }
    Ok(out)
}

/// Decodes a parsed frame by the rules, with `serde_json::Value`. Valid only for frames without
/// repeated keys and without escaped symbols (serde_json hides both), which is all this file
/// feeds it.
fn reference(root: &Value, cap: usize) -> Answer<'_> {
    let obj = root.as_object().ok_or(DecodeError::WrongType)?;
    let (data, want) = match obj.get("stream") {
        None => (root, None),
        Some(s) => {
            let name = s.as_str().ok_or(DecodeError::WrongType)?;
            let data = obj.get("data").ok_or(DecodeError::MissingField)?;
            let suffix = name.split_once('@').map(|(_, s)| s);
            let kind = match suffix {
                Some("bookTicker") => RefKind::Ticker,
                Some("depth" | "depth@100ms" | "depth@1000ms") => RefKind::Depth,
                Some("trade") => RefKind::Trade,
                Some("aggTrade") => RefKind::Agg,
                _ => return Ok((Decoded::Ignored, vec![], vec![])),
            };
            (data, Some(kind))
        }
    };
    let d = data.as_object().ok_or(DecodeError::WrongType)?;
    let kind = match d.get("e") {
        Some(e) => match ref_str(e)? {
            "depthUpdate" => RefKind::Depth,
            "trade" => RefKind::Trade,
            "aggTrade" => RefKind::Agg,
            _ => RefKind::Ignored,
        },
        None if d.contains_key("lastUpdateId") => RefKind::Snapshot,
        None if d.contains_key("u") => RefKind::Ticker,
        None => RefKind::Ignored,
    };
    if want.is_some_and(|w| w != kind) {
        return Err(DecodeError::StreamMismatch);
    }
    let f = |k: &str| d.get(k).ok_or(DecodeError::MissingField);
    let sym = |k: &str| -> Result<&[u8], DecodeError> { Ok(ref_str(f(k)?)?.as_bytes()) };
    Ok(match kind {
        RefKind::Ticker => (
            Decoded::BookTicker(BookTicker {
                symbol: sym("s")?,
                update_id: ref_u64(f("u")?)?,
                bid_px: ref_px(f("b")?)?,
                bid_qty: ref_qty(f("B")?)?,
                ask_px: ref_px(f("a")?)?,
                ask_qty: ref_qty(f("A")?)?,
            }),
            vec![],
            vec![],
        ),
        RefKind::Depth => {
            let (b, a) = (ref_levels(d.get("b"), cap)?, ref_levels(d.get("a"), cap)?);
            let h = DepthHeader {
                symbol: sym("s")?,
                event_time_ms: ref_u64(f("E")?)?,
                first_id: ref_u64(f("U")?)?,
                final_id: ref_u64(f("u")?)?,
            };
            (Decoded::Depth(h), b, a)
        }
        RefKind::Trade => (
            Decoded::Trade(Trade {
                symbol: sym("s")?,
                event_time_ms: ref_u64(f("E")?)?,
                trade_id: ref_u64(f("t")?)?,
                px: ref_px(f("p")?)?,
                qty: ref_qty(f("q")?)?,
                trade_time_ms: ref_u64(f("T")?)?,
                buyer_is_maker: f("m")?.as_bool().ok_or(DecodeError::WrongType)?,
            }),
            vec![],
            vec![],
        ),
        RefKind::Agg => (
            Decoded::AggTrade(AggTrade {
                symbol: sym("s")?,
                event_time_ms: ref_u64(f("E")?)?,
                agg_id: ref_u64(f("a")?)?,
                px: ref_px(f("p")?)?,
                qty: ref_qty(f("q")?)?,
                first_trade_id: ref_u64(f("f")?)?,
                last_trade_id: ref_u64(f("l")?)?,
                trade_time_ms: ref_u64(f("T")?)?,
                buyer_is_maker: f("m")?.as_bool().ok_or(DecodeError::WrongType)?,
            }),
            vec![],
            vec![],
        ),
        RefKind::Snapshot => {
            let (b, a) = (ref_levels(d.get("bids"), cap)?, ref_levels(d.get("asks"), cap)?);
            (Decoded::Snapshot(SnapshotHeader { last_update_id: ref_u64(f("lastUpdateId")?)? }), b, a)
        }
        RefKind::Ignored => (Decoded::Ignored, vec![], vec![]),
    })
}

/// The reference's answer for `frame` must be `want`.
fn check_reference(frame: &[u8], cap: usize, want: &Answer<'_>) {
    match serde_json::from_slice::<Value>(frame) {
        Ok(root) => assert_eq!(&reference(&root, cap), want, "reference on {}", show(frame)),
        Err(_) => assert_eq!(want, &Err(DecodeError::Syntax), "serde_json refused {}", show(frame)),
    }
}

// ---- agreement ----------------------------------------------------------------------------------

fn show(frame: &[u8]) -> String {
    let s = String::from_utf8_lossy(frame);
    match s.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.into_owned(),
    }
}

/// The general path's answer, after checking that `decode` gives the same and that the fast
/// path gives the same or hands over. Returns the answer and whether the fast path took it.
fn agreed<'a>(frame: &'a [u8], sc: &mut DecodeScratch) -> (Answer<'a>, bool) {
    let g = general::decode(frame, sc).map(|d| (d, sc.bids.clone(), sc.asks.clone()));
    assert_ne!(g, Err(DecodeError::Fallback));
    let f = fast::decode(frame, sc).map(|d| (d, sc.bids.clone(), sc.asks.clone()));
    let took = f != Err(DecodeError::Fallback);
    if took {
        assert_eq!(f, g, "fast vs general on {}", show(frame));
    }
    let d = decode::decode(frame, sc).map(|d| (d, sc.bids.clone(), sc.asks.clone()));
    assert_eq!(d, g, "decode vs general on {}", show(frame));
    (g, took)
}

#[derive(Default, Debug, PartialEq)]
struct Tally {
    depth: usize,
    ticker: usize,
    trade: usize,
    agg: usize,
    snapshot: usize,
    ignored: usize,
}

impl Tally {
    fn add(&mut self, d: &Decoded<'_>) {
        match d {
            Decoded::Depth(_) => self.depth += 1,
            Decoded::BookTicker(_) => self.ticker += 1,
            Decoded::Trade(_) => self.trade += 1,
            Decoded::AggTrade(_) => self.agg += 1,
            Decoded::Snapshot(_) => self.snapshot += 1,
            Decoded::Ignored => self.ignored += 1,
        }
    }
}

#[test]
fn corpus_fast_and_general_agree_on_every_frame() {
    let Some(dir) = corpus::dir() else {
        eprintln!(
            "decode_corpus: Binance corpus not found (set HFT_CORPUS_DIR or provide \
             ../shared/data/binance/{{{}}}); running the agreement checks on generated frames instead",
            corpus::FILES.join(",")
        );
        check_generated(600, 0xC0FFEE);
        return;
    };
    eprintln!("decode_corpus: using the Binance corpus in {}", dir.display());
    let mut sc = DecodeScratch::with_capacity(5000);
    let (mut last_trade, mut last_u) = (None::<u64>, None::<u64>);
    for (i, file) in corpus::FILES.iter().enumerate() {
        let mut tally = Tally::default();
        for (n, frame) in corpus::frames(&dir, file).iter().enumerate() {
            let (g, took) = agreed(frame, &mut sc);
            assert!(took, "the fast path handed over a real frame ({file} line {}): {}", n + 1, show(frame));
            let (d, bids, asks) = g.unwrap_or_else(|e| panic!("{file} line {}: {e:?}: {}", n + 1, show(frame)));
            tally.add(&d);
            check_reference(frame, 5000, &Ok((d, bids.clone(), asks.clone())));
            // Facts of the capture (README): trade ids and diff ids are contiguous.
            match d {
                Decoded::Trade(t) => {
                    assert!(last_trade.is_none_or(|l| t.trade_id == l + 1), "trade id gap at {}", t.trade_id);
                    last_trade = Some(t.trade_id);
                }
                Decoded::Depth(h) => {
                    assert!(last_u.is_none_or(|l| h.first_id == l + 1), "diff gap at {}", h.first_id);
                    assert!(h.first_id <= h.final_id && !(bids.is_empty() && asks.is_empty()));
                    assert_eq!(h.symbol, b"BTCUSDT");
                    last_u = Some(h.final_id);
                }
                Decoded::Snapshot(s) => {
                    assert_eq!((i, n), (0, 7), "the snapshot is line 8 of the first file");
                    assert_eq!((bids.len(), asks.len()), (1000, 1000));
                    assert!(s.last_update_id > 0);
                }
                _ => {}
            }
        }
        let [depth, ticker, trade] = CORPUS_COUNTS[i];
        let want = Tally { depth, ticker, trade, agg: 0, snapshot: usize::from(i == 0), ignored: 0 };
        assert_eq!(tally, want, "{file}");
    }
}

// ---- generated frames ----------------------------------------------------------------------------

/// splitmix64: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A JSON value whose strings are kept as raw (already escaped) text, so escapes can be planted.
#[derive(Clone)]
enum J {
    Obj(Vec<(&'static str, J)>),
    Arr(Vec<J>),
    Raw(String),
    Str(String),
}

/// How a generated frame is written.
struct Style {
    spaces: bool,
    shuffle: bool,
    extras: bool,
    escapes: bool,
}

fn ws(out: &mut String, rng: &mut Rng, style: &Style) {
    if style.spaces && rng.chance(40) {
        for _ in 0..=rng.below(3) {
            out.push([' ', '\n', '\t', '\r'][rng.below(4) as usize]);
        }
    }
}

fn write(j: &J, out: &mut String, rng: &mut Rng, style: &Style) {
    match j {
        J::Raw(s) => out.push_str(s),
        J::Str(s) => {
            out.push('"');
            out.push_str(s);
            out.push('"');
        }
        J::Arr(items) => {
            out.push('[');
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                ws(out, rng, style);
                write(it, out, rng, style);
                ws(out, rng, style);
            }
            out.push(']');
        }
        J::Obj(members) => {
            let mut members = members.clone();
            if style.shuffle {
                for i in (1..members.len()).rev() {
                    members.swap(i, rng.below(i as u64 + 1) as usize);
                }
            }
            if style.extras && rng.chance(50) {
                let at = rng.below(members.len() as u64 + 1) as usize;
                let extra = [
                    ("x", J::Raw("null".into())),
                    ("M", J::Raw("true".into())),
                    ("ignore", J::Obj(vec![("k", J::Arr(vec![J::Raw("-1.5e-3".into()), J::Str("v".into())]))])),
                    ("zz", J::Str("caf\\u00e9 \u{e9}".into())),
                ];
                members.insert(at, extra[rng.below(extra.len() as u64) as usize].clone());
            }
            out.push('{');
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                ws(out, rng, style);
                out.push('"');
                out.push_str(k);
                out.push('"');
                ws(out, rng, style);
                out.push(':');
                ws(out, rng, style);
                write(v, out, rng, style);
                ws(out, rng, style);
            }
            out.push('}');
        }
    }
}

/// A decimal for `raw` 1e-8 units in one of the forms Binance (or a variant) might write, with
/// an escaped digit when `escapes`.
fn decimal(raw: i64, rng: &mut Rng, escapes: bool) -> J {
    let mut s = match rng.below(4) {
        0 => Px(raw).to_string(),
        1 => format!("{}.{:08}000", raw / 100_000_000, raw % 100_000_000),
        _ => format!("{}.{:08}", raw / 100_000_000, raw % 100_000_000),
    };
    if escapes && rng.chance(20) {
        let i = s.find(|c: char| c.is_ascii_digit()).unwrap_or(0);
        let c = s.as_bytes()[i];
        s.replace_range(i..=i, &format!("\\u00{c:02x}"));
    }
    J::Str(s)
}

fn price(rng: &mut Rng) -> i64 {
    match rng.below(3) {
        0 => rng.below(100_000_000) as i64,                           // below 1
        1 => 5_000_000_000_000 + rng.below(2_000_000_000_000) as i64, // BTC-like
        _ => rng.below(1_000_000_000_000_000) as i64,                 // anything up to 1e7
    }
}

fn id(rng: &mut Rng) -> u64 {
    match rng.below(4) {
        0 => rng.below(10),
        1 => rng.below(1 << 40),
        2 => 1_700_000_000_000 + rng.below(100_000_000_000),
        _ => rng.next(),
    }
}

const SYMBOLS: [&str; 4] = ["BTCUSDT", "ETHUSDT", "BNBBTC", "X"];

/// A generated frame and what it must decode to (symbols are `'static`).
struct Generated {
    frame: Vec<u8>,
    want: Answer<'static>,
    /// Written exactly as Binance would: the fast path must take it.
    binance_shape: bool,
}

fn levels(rng: &mut Rng, style: &Style, n: usize) -> (J, Vec<Level>) {
    let mut items = Vec::new();
    let mut want = Vec::new();
    for _ in 0..n {
        let (p, q) = (price(rng), rng.below(1 << 40) as i64);
        let mut lv = vec![decimal(p, rng, style.escapes), decimal(q, rng, style.escapes)];
        if style.extras && rng.chance(5) {
            lv.push(J::Arr(vec![]));
        }
        items.push(J::Arr(lv));
        want.push(Level { px: Px(p), qty: Qty(q) });
    }
    (J::Arr(items), want)
}

fn generate(rng: &mut Rng) -> Generated {
    let plain = rng.chance(40);
    let style = if plain {
        Style { spaces: false, shuffle: false, extras: false, escapes: false }
    } else {
        Style { spaces: rng.chance(50), shuffle: rng.chance(50), extras: rng.chance(50), escapes: rng.chance(30) }
    };
    let symbol = SYMBOLS[rng.below(SYMBOLS.len() as u64) as usize];
    let sym = J::Str(symbol.into());
    let num = |v: u64| J::Raw(v.to_string());
    let lower = symbol.to_lowercase();
    let (stream, data, want): (String, J, Answer<'static>) = match rng.below(6) {
        0 => {
            let (u, b, bq, a, aq) = (id(rng), price(rng), price(rng), price(rng), price(rng));
            let data = J::Obj(vec![
                ("u", num(u)),
                ("s", sym),
                ("b", decimal(b, rng, style.escapes)),
                ("B", decimal(bq, rng, style.escapes)),
                ("a", decimal(a, rng, style.escapes)),
                ("A", decimal(aq, rng, style.escapes)),
            ]);
            let d = Decoded::BookTicker(BookTicker {
                symbol: symbol.as_bytes(),
                update_id: u,
                bid_px: Px(b),
                bid_qty: Qty(bq),
                ask_px: Px(a),
                ask_qty: Qty(aq),
            });
            (format!("{lower}@bookTicker"), data, Ok((d, vec![], vec![])))
        }
        1 | 2 => {
            let (e, first, last) = (id(rng), id(rng), id(rng));
            let (nb, na) = (rng.below(30) as usize, rng.below(30) as usize);
            let (bj, bw) = levels(rng, &style, nb);
            let (aj, aw) = levels(rng, &style, na);
            let data = J::Obj(vec![
                ("e", J::Str("depthUpdate".into())),
                ("E", num(e)),
                ("s", sym),
                ("U", num(first)),
                ("u", num(last)),
                ("b", bj),
                ("a", aj),
            ]);
            let d = Decoded::Depth(DepthHeader {
                symbol: symbol.as_bytes(),
                event_time_ms: e,
                first_id: first,
                final_id: last,
            });
            let name = ["depth@100ms", "depth", "depth@1000ms"][rng.below(3) as usize];
            (format!("{lower}@{name}"), data, Ok((d, bw, aw)))
        }
        3 => {
            let (e, t, p, q, tt, m) = (id(rng), id(rng), price(rng), price(rng), id(rng), rng.chance(50));
            let mut members = vec![
                ("e", J::Str("trade".into())),
                ("E", num(e)),
                ("s", sym),
                ("t", num(t)),
                ("p", decimal(p, rng, style.escapes)),
                ("q", decimal(q, rng, style.escapes)),
            ];
            if rng.chance(30) {
                // Older frames carry the buyer and seller order ids.
                members.push(("b", num(id(rng))));
                members.push(("a", num(id(rng))));
            }
            members.extend([("T", num(tt)), ("m", J::Raw(m.to_string())), ("M", J::Raw("true".into()))]);
            let d = Decoded::Trade(Trade {
                symbol: symbol.as_bytes(),
                event_time_ms: e,
                trade_id: t,
                px: Px(p),
                qty: Qty(q),
                trade_time_ms: tt,
                buyer_is_maker: m,
            });
            (format!("{lower}@trade"), J::Obj(members), Ok((d, vec![], vec![])))
        }
        4 => {
            let (e, a, p, q, f, l, tt, m) =
                (id(rng), id(rng), price(rng), price(rng), id(rng), id(rng), id(rng), rng.chance(50));
            let data = J::Obj(vec![
                ("e", J::Str("aggTrade".into())),
                ("E", num(e)),
                ("s", sym),
                ("a", num(a)),
                ("p", decimal(p, rng, style.escapes)),
                ("q", decimal(q, rng, style.escapes)),
                ("f", num(f)),
                ("l", num(l)),
                ("T", num(tt)),
                ("m", J::Raw(m.to_string())),
                ("M", J::Raw("true".into())),
            ]);
            let d = Decoded::AggTrade(AggTrade {
                symbol: symbol.as_bytes(),
                event_time_ms: e,
                agg_id: a,
                px: Px(p),
                qty: Qty(q),
                first_trade_id: f,
                last_trade_id: l,
                trade_time_ms: tt,
                buyer_is_maker: m,
            });
            (format!("{lower}@aggTrade"), data, Ok((d, vec![], vec![])))
        }
        _ => {
            // A REST snapshot body: never wrapped.
            let last = id(rng);
            let (nb, na) = (rng.below(60) as usize, rng.below(60) as usize);
            let (bj, bw) = levels(rng, &style, nb);
            let (aj, aw) = levels(rng, &style, na);
            let body = J::Obj(vec![("lastUpdateId", num(last)), ("bids", bj), ("asks", aj)]);
            let mut out = String::new();
            write(&body, &mut out, rng, &style);
            let d = Decoded::Snapshot(SnapshotHeader { last_update_id: last });
            return Generated { frame: out.into_bytes(), want: Ok((d, bw, aw)), binance_shape: plain };
        }
    };
    let stream = if style.escapes && rng.chance(30) { stream.replace('@', "\\u0040") } else { stream };
    let frame = if rng.chance(80) { J::Obj(vec![("stream", J::Str(stream)), ("data", data)]) } else { data };
    let mut out = String::new();
    write(&frame, &mut out, rng, &style);
    Generated { frame: out.into_bytes(), want, binance_shape: plain }
}

/// Decodes `n` generated frames: every entry point must give exactly what was generated, the
/// serde_json reference too, and the fast path must take every frame written Binance's way.
fn check_generated(n: usize, seed: u64) {
    let mut rng = Rng(seed);
    let mut sc = DecodeScratch::with_capacity(64);
    let (mut taken, mut binance) = (0, 0);
    for _ in 0..n {
        let g = generate(&mut rng);
        let (answer, took) = agreed(&g.frame, &mut sc);
        assert_eq!(answer, g.want, "{}", show(&g.frame));
        check_reference(&g.frame, 64, &g.want);
        if g.binance_shape {
            binance += 1;
            assert!(took, "the fast path handed over a Binance-shaped frame: {}", show(&g.frame));
        }
        taken += usize::from(took);
    }
    assert!(binance > n / 4, "too few Binance-shaped frames generated");
    eprintln!("decode_corpus: {n} generated frames, fast path took {taken}, {binance} written as Binance does");
}

#[test]
fn generated_frames_decode_to_what_was_generated() {
    check_generated(800, 42);
}

// ---- malformed input ------------------------------------------------------------------------------

/// Frames in the capture's shapes, real ones when the corpus is present.
fn sample_frames() -> &'static [Vec<u8>] {
    static SAMPLES: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    SAMPLES.get_or_init(load_samples)
}

fn load_samples() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = [
        &br#"{"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}"#[..],
        br#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255308,"s":"BTCUSDT","U":50093239203,"u":50093239207,"b":[["55653.87000000","0.00000000"]],"a":[["61838.04000000","0.32332000"],["61844.30000000","0.40163000"]]}}"#,
        br#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}}"#,
        br#"{"stream":"bnbbtc@aggTrade","data":{"e":"aggTrade","E":1672515782136,"s":"BNBBTC","a":12345,"p":"0.00100000","q":"100.00000000","f":100,"l":105,"T":1672515782136,"m":false,"M":true}}"#,
        br#"{"lastUpdateId":1027024,"bids":[["4.00000000","431.00000000"]],"asks":[["4.00000200","12.00000000"],["4.00000300","1.5"]]}"#,
        br#"{"stream":"btcusdt@kline_1m","data":{"e":"kline","E":1,"s":"BTCUSDT","k":{"t":1,"o":"1.0","x":false,"n":null}}}"#,
        br#" { "data" : { "A":"1", "a" : "2" , "B":"3", "b":"4", "s":"S", "u":7 } , "stream" : "s@bookTicker" } "#,
    ]
    .iter()
    .map(|f| f.to_vec())
    .collect();
    if let Some(dir) = corpus::dir() {
        let frames = corpus::frames(&dir, corpus::FILES[0]);
        // The first frame of each kind, and a short depth diff.
        for needle in [&b"@bookTicker"[..], b"@trade", b"@depth"] {
            out.extend(frames.iter().find(|f| f.windows(needle.len()).any(|w| w == needle)).cloned());
        }
        out.extend(
            frames.iter().filter(|f| f.len() < 600 && f.starts_with(b"{\"stream\":\"btcusdt@depth")).nth(3).cloned(),
        );
    }
    out
}

#[test]
fn truncations_at_every_offset_are_syntax_errors() {
    let mut sc = DecodeScratch::with_capacity(64);
    for frame in sample_frames() {
        let full = agreed(frame, &mut sc).0;
        assert!(full.is_ok(), "{}", show(frame));
        let body_end = frame.len() - frame.iter().rev().take_while(|c| c.is_ascii_whitespace()).count();
        for cut in 0..frame.len() {
            let (answer, _) = agreed(&frame[..cut], &mut sc);
            if cut < body_end {
                assert_eq!(answer, Err(DecodeError::Syntax), "cut at {cut}: {}", show(&frame[..cut]));
            } else {
                assert_eq!(answer, full, "only trailing whitespace cut");
            }
        }
    }
}

/// An object of `members` in this order, with `field` written as `value`.
fn object_with(members: &[(&str, &str)], field: &str, value: &str) -> String {
    let body: Vec<String> =
        members.iter().map(|(k, v)| format!("\"{k}\":{}", if *k == field { value } else { v })).collect();
    format!("{{{}}}", body.join(","))
}

/// A combined bookTicker frame with `field` written as `value`.
fn ticker_with(field: &str, value: &str) -> Vec<u8> {
    let data = object_with(
        &[
            ("u", "400900217"),
            ("s", "\"BNBUSDT\""),
            ("b", "\"25.35190000\""),
            ("B", "\"31.21000000\""),
            ("a", "\"25.36520000\""),
            ("A", "\"40.66000000\""),
        ],
        field,
        value,
    );
    format!("{{\"stream\":\"bnbusdt@bookTicker\",\"data\":{data}}}").into_bytes()
}

/// A bare trade with `field` written as `value`.
fn trade_with(field: &str, value: &str) -> Vec<u8> {
    object_with(
        &[
            ("e", "\"trade\""),
            ("E", "1"),
            ("s", "\"BTCUSDT\""),
            ("t", "2"),
            ("p", "\"3.5\""),
            ("q", "\"4\""),
            ("T", "5"),
            ("m", "false"),
            ("M", "true"),
        ],
        field,
        value,
    )
    .into_bytes()
}

#[test]
fn bad_numbers_are_rejected() {
    let mut sc = DecodeScratch::with_capacity(8);
    // Sanity: the unmodified frames decode.
    assert!(matches!(agreed(&ticker_with("", ""), &mut sc).0, Ok((Decoded::BookTicker(_), _, _))));
    assert!(matches!(agreed(&trade_with("", ""), &mut sc).0, Ok((Decoded::Trade(_), _, _))));
    for bad in [
        "\"\"",
        "\"-\"",
        "\".\"",
        "\"1.000000001\"",
        "\"1e5\"",
        "\"1.2.3\"",
        "\" 1\"",
        "\"1 \"",
        "\"+1\"",
        "\"0x10\"",
        "\"99999999999.0\"",
        "\"1,5\"",
        "\"１\"",
        "\"1\\u0000\"",
    ] {
        for field in ["b", "B", "a", "A"] {
            let f = ticker_with(field, bad);
            assert_eq!(agreed(&f, &mut sc).0, Err(DecodeError::BadNumber), "{}", show(&f));
        }
        for field in ["p", "q"] {
            let f = trade_with(field, bad);
            assert_eq!(agreed(&f, &mut sc).0, Err(DecodeError::BadNumber), "{}", show(&f));
        }
    }
    for bad in ["-1", "1.5", "1e3", "1.0", "-0.0", "-9223372036854775808"] {
        let f = ticker_with("u", bad);
        assert_eq!(agreed(&f, &mut sc).0, Err(DecodeError::BadNumber), "{}", show(&f));
        let f = trade_with("t", bad);
        assert_eq!(agreed(&f, &mut sc).0, Err(DecodeError::BadNumber), "{}", show(&f));
    }
    // Not JSON numbers at all (or beyond what simd-json reads): syntax.
    for bad in ["01", "18446744073709551616", "1e400", "+1", ".5", "1.", "0x1", "NaN"] {
        let f = ticker_with("u", bad);
        assert_eq!(agreed(&f, &mut sc).0, Err(DecodeError::Syntax), "{}", show(&f));
    }
    // Edge values that are fine.
    let f = ticker_with("u", "18446744073709551615");
    assert!(matches!(agreed(&f, &mut sc).0, Ok((Decoded::BookTicker(BookTicker { update_id: u64::MAX, .. }), _, _))));
    let f = ticker_with("u", "0");
    assert!(matches!(agreed(&f, &mut sc).0, Ok((Decoded::BookTicker(BookTicker { update_id: 0, .. }), _, _))));
    let f = ticker_with("b", "\"92233720368.54775807\"");
    assert!(matches!(agreed(&f, &mut sc).0, Ok((Decoded::BookTicker(BookTicker { bid_px: Px(i64::MAX), .. }), _, _))));
}

#[test]
fn wrong_types_are_rejected() {
    let mut sc = DecodeScratch::with_capacity(8);
    for (field, bad) in [
        ("u", "\"400900217\""),
        ("u", "null"),
        ("u", "[1]"),
        ("s", "1"),
        ("s", "null"),
        ("b", "25.3519"),
        ("B", "true"),
        ("a", "{}"),
        ("A", "[\"1\"]"),
    ] {
        let f = ticker_with(field, bad);
        assert_eq!(agreed(&f, &mut sc).0, Err(DecodeError::WrongType), "{}", show(&f));
    }
    for (field, bad) in [("m", "1"), ("m", "\"true\""), ("m", "null"), ("E", "\"1\""), ("T", "false"), ("e", "1")] {
        let f = trade_with(field, bad);
        assert_eq!(agreed(&f, &mut sc).0, Err(DecodeError::WrongType), "{}", show(&f));
    }
    let depth = |b: &str| format!(r#"{{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":{b},"a":[]}}"#).into_bytes();
    for bad in ["{}", "\"x\"", "[1]", "[[]]", "[[\"1\"]]", "[[1,2]]", "[{\"p\":\"1\",\"q\":\"1\"}]", "null"] {
        let f = depth(bad);
        assert_eq!(agreed(&f, &mut sc).0, Err(DecodeError::WrongType), "{}", show(&f));
    }
    for (f, want) in [
        (&br#"[]"#[..], DecodeError::WrongType),
        (br#""frame""#, DecodeError::WrongType),
        (br#"{"stream":"btcusdt@trade","data":[1]}"#, DecodeError::WrongType),
        (br#"{"stream":null,"data":{}}"#, DecodeError::WrongType),
        (br#"{"stream":"btcusdt@trade","data":{"e":"aggTrade"}}"#, DecodeError::StreamMismatch),
        (br#"{"stream":"btcusdt@depth","data":{"lastUpdateId":1,"bids":[],"asks":[]}}"#, DecodeError::StreamMismatch),
        (br#"{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[]}"#, DecodeError::MissingField),
        (br#"{"lastUpdateId":1,"bids":[]}"#, DecodeError::MissingField),
        (br#"{"lastUpdateId":1,"bids":[],"asks":[],"asks":[]}"#, DecodeError::DuplicateField),
        (br#"{"stream":"a@trade","stream":"a@trade","data":{}}"#, DecodeError::DuplicateField),
        (br#"{"e":"trade","E":1,"s":"BTC\"USDT","t":2,"p":"3.5","q":"4","T":5,"m":false}"#, DecodeError::Unsupported),
    ] {
        assert_eq!(agreed(f, &mut sc).0, Err(want), "{}", show(f));
    }
}

#[test]
fn too_many_levels_is_an_error_and_never_grows_the_scratch() {
    for cap in [0usize, 1, 3, 100] {
        let mut sc = DecodeScratch::with_capacity(cap);
        let lv = |n: usize| vec![r#"["1.00000000","2.00000000"]"#; n].join(",");
        for (n, ok) in [(cap, true), (cap + 1, false)] {
            let frames = [
                format!(
                    r#"{{"stream":"x@depth@100ms","data":{{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[{}],"a":[]}}}}"#,
                    lv(n)
                ),
                format!(
                    r#"{{"stream":"x@depth@100ms","data":{{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[],"a":[{}]}}}}"#,
                    lv(n)
                ),
                format!(r#"{{"lastUpdateId":1,"bids":[{}],"asks":[{}]}}"#, lv(n), lv(n.min(cap))),
            ];
            for f in frames {
                let answer = agreed(f.as_bytes(), &mut sc).0;
                if ok {
                    let (_, b, a) = answer.unwrap_or_else(|e| panic!("{e:?} at capacity {cap}"));
                    assert_eq!(b.len().max(a.len()), n);
                } else {
                    assert_eq!(answer, Err(DecodeError::TooManyLevels), "{n} levels at capacity {cap}");
                }
                assert_eq!((sc.bids.capacity(), sc.asks.capacity()), (cap, cap));
            }
        }
    }
}

#[test]
fn the_fast_path_does_not_allocate() {
    let mut frames = sample_frames().to_vec();
    let mut rng = Rng(7);
    frames.extend((0..400).map(|_| generate(&mut rng)).filter(|g| g.binance_shape).map(|g| g.frame));
    let mut sc = DecodeScratch::with_capacity(5000);
    let mut decoded = 0;
    let n = allocations_in(|| {
        for f in &frames {
            decoded += usize::from(fast::decode(f, &mut sc).is_ok());
        }
    });
    assert_eq!(n, 0, "the fast path allocated");
    assert!(decoded > 100, "only {decoded} frames took the fast path");
    // The general path reuses its buffers: after one pass to warm up, none either.
    for f in &frames {
        let _ = general::decode(f, &mut sc);
    }
    let n = allocations_in(|| {
        for f in &frames {
            let _ = general::decode(f, &mut sc);
        }
    });
    assert_eq!(n, 0, "the general path allocated after warm-up");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Random edits of real-looking frames: never a panic, and the paths never disagree.
    #[test]
    fn mutated_frames_never_panic_and_the_paths_agree(
        which in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, any::<u8>()), 1..6),
    ) {
        let frames = sample_frames();
        let mut f = frames[which.index(frames.len())].clone();
        for (at, op, byte) in edits {
            let interesting = b"{}[]\",:\\ 0123456789.-eEtfnu@";
            let b = if byte < 128 { interesting[byte as usize % interesting.len()] } else { byte };
            let i = at.index(f.len() + 1);
            match op {
                0 if i < f.len() => f[i] = b,
                1 => f.insert(i, b),
                2 if i < f.len() => { f.remove(i); }
                _ => f.truncate(i),
            }
        }
        let mut sc = DecodeScratch::with_capacity(4);
        let _ = agreed(&f, &mut sc);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_the_paths_agree(f in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut sc = DecodeScratch::with_capacity(4);
        let _ = agreed(&f, &mut sc);
    }

    #[test]
    fn json_like_bytes_never_panic_and_the_paths_agree(f in "[{}\\[\\]\",:0-9a-z@. \\\\-]{0,120}") {
        let mut sc = DecodeScratch::with_capacity(4);
        let _ = agreed(f.as_bytes(), &mut sc);
    }
}
