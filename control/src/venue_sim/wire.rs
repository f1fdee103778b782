//! Binance spot wire formats as the simulator reads and writes them: combined-stream frames (kept
//! byte for byte, with the stream name and the `data` span located once), depth diffs, book
//! tickers, trades and REST snapshot bodies parsed to fixed point, stream-name
//! canonicalisation, and 8-decimal output.
//!
//! Runs on the capture reader thread and the tokio runtime; allocates freely (the simulator is
//! not on the hot path).

use anyhow::{Context, anyhow, bail};
use axum::extract::ws::Utf8Bytes;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// Longest symbol accepted in a stream name (Binance's are at most 20 characters).
const MAX_SYMBOL: usize = 32;

/// `(price, quantity)` in 1e-8 units.
pub type Level = (i64, i64);

/// One combined-stream frame, exactly as it will be sent to `/stream` clients.
#[derive(Debug)]
pub struct Frame {
    /// Canonical stream name (see [`canonical_stream`]) — what subscriptions match against.
    pub stream: Box<str>,
    /// Upper-case symbol, from the stream name.
    pub symbol: Box<str>,
    /// The frame text, unchanged.
    text: Utf8Bytes,
    /// Byte span of the `data` value in `text` (the raw `/ws/<stream>` payload).
    data: Range<usize>,
    raw: OnceLock<Utf8Bytes>,
    /// Book tickers and depth diffs: their update id `u` and when the frame was first written
    /// to a client (see [`Frame::mark_sent`]), for wire-to-wire measurement.
    pub trace: Option<Trace>,
}

/// The update id of a frame and its send time.
#[derive(Debug, Clone)]
pub struct Trace {
    /// `u` of the book ticker or depth diff.
    pub update_id: u64,
    /// Monotonic ns ([`super::latency::now_ns`]) when the frame was first handed to a client's
    /// socket; 0 until then. Shared with the trace map.
    pub sent_ns: Arc<AtomicU64>,
}

impl Frame {
    /// The combined-stream text: `{"stream":…,"data":{…}}`.
    pub fn combined(&self) -> Utf8Bytes {
        self.text.clone()
    }

    /// The bare `data` object, for raw-stream clients (cut once, on first use).
    pub fn raw(&self) -> Utf8Bytes {
        self.raw
            .get_or_init(|| {
                let bytes = axum::body::Bytes::from(self.text.clone()).slice(self.data.clone());
                // The span starts and ends at JSON punctuation, so it is valid UTF-8.
                Utf8Bytes::try_from(bytes).unwrap_or_default()
            })
            .clone()
    }

    /// The text of [`Frame::combined`].
    pub fn text(&self) -> &str {
        self.text.as_str()
    }

    /// Records the first send of a traced frame at `now()` (later sends, to other clients, keep
    /// the first time). Called just before the frame is written, so the time is never later
    /// than the moment a client could have read it.
    pub fn mark_sent(&self, now: impl FnOnce() -> u64) {
        if let Some(t) = &self.trace
            && t.sent_ns.load(Ordering::Relaxed) == 0
        {
            let _ = t.sent_ns.compare_exchange(0, now(), Ordering::Release, Ordering::Relaxed);
        }
    }
}

/// A depth diff (`depthUpdate`), levels in wire order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    /// Upper-case symbol (`s`).
    pub symbol: String,
    /// `U`
    pub first_id: u64,
    /// `u`
    pub final_id: u64,
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
}

/// A book ticker (`@bookTicker`): the best level of each side at update id `u`. A side without
/// a level has price 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticker {
    /// `u`
    pub update_id: u64,
    /// `b`, `B`
    pub bid: Level,
    /// `a`, `A`
    pub ask: Level,
}

/// A trade print (`@trade` or `@aggTrade`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trade {
    /// `p`, 1e-8 units.
    pub px: i64,
    /// `q`, 1e-8 units.
    pub qty: i64,
    /// `m`: the buyer was the maker, i.e. a seller hit the bids.
    pub buyer_maker: bool,
}

/// What a frame says about the market, when the simulator needs it (matching, traces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    Diff(Diff),
    Ticker(Ticker),
    Trade(Trade),
    /// Any other stream, or a ticker or trade whose fields do not parse (served as recorded).
    Other,
}

/// A REST depth snapshot body. It does not name its symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub last_update_id: u64,
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
}

/// What one capture line (or one synthetic frame) is.
#[derive(Debug)]
pub enum Parsed {
    /// A combined-stream frame and what it says about the market.
    Frame { frame: Frame, data: Data },
    /// A bare REST snapshot body (initialises the server book; never sent to stream clients).
    Snapshot(Snapshot),
}

#[derive(Deserialize)]
struct Outer<'a> {
    #[serde(borrow)]
    stream: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    #[serde(rename = "lastUpdateId")]
    last_update_id: Option<u64>,
    #[serde(borrow, default)]
    bids: Option<Vec<WireLevel<'a>>>,
    #[serde(borrow, default)]
    asks: Option<Vec<WireLevel<'a>>>,
}

#[derive(Deserialize)]
struct DepthData<'a> {
    #[serde(borrow, rename = "s")]
    symbol: Cow<'a, str>,
    #[serde(rename = "U")]
    first_id: u64,
    #[serde(rename = "u")]
    final_id: u64,
    #[serde(borrow, rename = "b")]
    bids: Vec<WireLevel<'a>>,
    #[serde(borrow, rename = "a")]
    asks: Vec<WireLevel<'a>>,
}

#[derive(Deserialize)]
struct TickerData<'a> {
    #[serde(rename = "u")]
    update_id: u64,
    #[serde(borrow, rename = "b")]
    bid: Cow<'a, str>,
    #[serde(borrow, rename = "B")]
    bid_qty: Cow<'a, str>,
    #[serde(borrow, rename = "a")]
    ask: Cow<'a, str>,
    #[serde(borrow, rename = "A")]
    ask_qty: Cow<'a, str>,
}

#[derive(Deserialize)]
struct TradeData<'a> {
    #[serde(borrow, rename = "p")]
    px: Cow<'a, str>,
    #[serde(borrow, rename = "q")]
    qty: Cow<'a, str>,
    #[serde(rename = "m")]
    buyer_maker: bool,
}

/// `["price","qty", …]`: the first two strings; later elements (old formats) are ignored.
struct WireLevel<'a>(Cow<'a, str>, Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for WireLevel<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = WireLevel<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a [price, quantity] array of strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let px: Cow<'a, str> = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let qty: Cow<'a, str> = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(1, &self))?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(WireLevel(px, qty))
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

fn levels(wire: &[WireLevel<'_>]) -> anyhow::Result<Vec<Level>> {
    wire.iter()
        .map(|WireLevel(p, q)| {
            let px = hft_shared::px::parse_fixed8(p.as_bytes()).map_err(|e| anyhow!("price {p:?}: {e}"))?;
            let qty = hft_shared::px::parse_fixed8(q.as_bytes()).map_err(|e| anyhow!("quantity {q:?}: {e}"))?;
            if px <= 0 || qty < 0 {
                bail!("level [{p:?}, {q:?}] is out of range");
            }
            Ok((px, qty))
        })
        .collect()
}

fn fixed8(s: &str) -> Option<i64> {
    hft_shared::px::parse_fixed8(s.as_bytes()).ok().filter(|v| *v >= 0)
}

fn ticker(data: &str) -> Option<Ticker> {
    let t: TickerData<'_> = serde_json::from_str(data).ok()?;
    Some(Ticker {
        update_id: t.update_id,
        bid: (fixed8(&t.bid)?, fixed8(&t.bid_qty)?),
        ask: (fixed8(&t.ask)?, fixed8(&t.ask_qty)?),
    })
}

fn trade(data: &str) -> Option<Trade> {
    let t: TradeData<'_> = serde_json::from_str(data).ok()?;
    Some(Trade { px: fixed8(&t.px)?, qty: fixed8(&t.qty)?, buyer_maker: t.buyer_maker })
}

/// Whether a stream kind (the part after the symbol's `@`) carries depth diffs.
fn is_diff_kind(kind: &str) -> bool {
    matches!(kind, "depth" | "depth@100ms" | "depth@1000ms")
}

/// The canonical form of a stream name, or `None` when it is not `<symbol>@<kind>`: the symbol
/// lower-cased (1–32 ASCII letters and digits), `@depth` written as `@depth@100ms` (the simulator
/// serves one diff stream per symbol), anything else unchanged.
pub fn canonical_stream(name: &str) -> Option<String> {
    let (sym, kind) = name.split_once('@')?;
    let sym_ok = (1..=MAX_SYMBOL).contains(&sym.len()) && sym.bytes().all(|b| b.is_ascii_alphanumeric());
    let kind_ok = !kind.is_empty()
        && kind.len() <= 64
        && kind.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'@' | b'_' | b'!' | b'-'));
    if !(sym_ok && kind_ok) {
        return None;
    }
    let kind = if kind == "depth" { "depth@100ms" } else { kind };
    Some(format!("{}@{kind}", sym.to_ascii_lowercase()))
}

/// Parses one frame or snapshot body. Takes the text by value: a frame keeps it.
pub fn parse(text: String) -> anyhow::Result<Parsed> {
    let outer: Outer<'_> = serde_json::from_str(&text).context("not a JSON object of a known shape")?;
    if let (Some(id), None) = (outer.last_update_id, &outer.stream) {
        let (Some(bids), Some(asks)) = (&outer.bids, &outer.asks) else {
            bail!("a snapshot body without bids or asks");
        };
        return Ok(Parsed::Snapshot(Snapshot {
            last_update_id: id,
            bids: levels(bids).context("snapshot bids")?,
            asks: levels(asks).context("snapshot asks")?,
        }));
    }
    let (Some(stream_name), Some(data)) = (outer.stream.as_deref(), outer.data) else {
        bail!("neither a combined-stream frame (stream, data) nor a snapshot body (lastUpdateId)");
    };
    let stream = canonical_stream(stream_name).with_context(|| format!("stream name {stream_name:?}"))?;
    let (sym, kind) = stream.split_once('@').unwrap_or((&stream, ""));
    let symbol = sym.to_ascii_uppercase();
    let data_kind = if is_diff_kind(kind) {
        let d: DepthData<'_> =
            serde_json::from_str(data.get()).with_context(|| format!("{stream_name} data is not a depth diff"))?;
        if d.first_id > d.final_id {
            bail!("{stream_name}: U {} > u {}", d.first_id, d.final_id);
        }
        Data::Diff(Diff {
            symbol: d.symbol.to_ascii_uppercase(),
            first_id: d.first_id,
            final_id: d.final_id,
            bids: levels(&d.bids).context("diff bids")?,
            asks: levels(&d.asks).context("diff asks")?,
        })
    } else {
        match kind {
            "bookTicker" => ticker(data.get()).map_or(Data::Other, Data::Ticker),
            "trade" | "aggTrade" => trade(data.get()).map_or(Data::Other, Data::Trade),
            _ => Data::Other,
        }
    };
    let update_id = match &data_kind {
        Data::Diff(d) => Some(d.final_id),
        Data::Ticker(t) => Some(t.update_id),
        Data::Trade(_) | Data::Other => None,
    };
    let trace = update_id.map(|update_id| Trace { update_id, sent_ns: Arc::new(AtomicU64::new(0)) });
    // `data` borrows from `text`: its offset is a pointer difference within the same string.
    let start = data.get().as_ptr() as usize - text.as_ptr() as usize;
    let span = start..start + data.get().len();
    drop(outer);
    let frame = Frame {
        stream: stream.into(),
        symbol: symbol.into(),
        text: text.into(),
        data: span,
        raw: OnceLock::new(),
        trace,
    };
    Ok(Parsed::Frame { frame, data: data_kind })
}

/// Appends 1e-8 units as Binance writes them: always 8 decimals (`61602.01000000`).
pub fn put_fixed8(out: &mut String, raw: i64) {
    let sign = if raw < 0 { "-" } else { "" };
    let mag = raw.unsigned_abs();
    let scale = hft_shared::px::SCALE as u64;
    let _ = write!(out, "{sign}{}.{:08}", mag / scale, mag % scale);
}

/// 1e-8 units (up to i128) as Binance writes them: always 8 decimals.
pub fn dec8(raw: i128) -> String {
    let sign = if raw < 0 { "-" } else { "" };
    let mag = raw.unsigned_abs();
    let scale = hft_shared::px::SCALE as u128;
    format!("{sign}{}.{:08}", mag / scale, mag % scale)
}

/// `["p","q"],…` (no trailing comma).
pub fn put_levels(out: &mut String, levels: impl Iterator<Item = Level>) {
    for (i, (px, qty)) in levels.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("[\"");
        put_fixed8(out, px);
        out.push_str("\",\"");
        put_fixed8(out, qty);
        out.push_str("\"]");
    }
}

/// A REST depth snapshot body: `{"lastUpdateId":N,"bids":[…],"asks":[…]}`, levels best first.
pub fn snapshot_body(
    last_update_id: u64,
    bids: impl Iterator<Item = Level>,
    asks: impl Iterator<Item = Level>,
) -> String {
    let mut out = String::with_capacity(256);
    let _ = write!(out, "{{\"lastUpdateId\":{last_update_id},\"bids\":[");
    put_levels(&mut out, bids);
    out.push_str("],\"asks\":[");
    put_levels(&mut out, asks);
    out.push_str("]}");
    out
}

/// The first half of `text`, cut on a character boundary: a JSON object missing its closing
/// brace (or empty), so never valid JSON.
pub fn truncated(text: &str) -> String {
    let mut cut = text.len() / 2;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text[..cut].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPTH: &str = r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255308,"s":"BTCUSDT","U":50093239203,"u":50093239207,"b":[["55653.87000000","0.00000000"]],"a":[["61838.04000000","0.32332000"],["61844.30000000","0.40163000"]]}}"#;

    #[test]
    fn a_diff_frame_keeps_its_bytes_and_parses_to_fixed_point() {
        let Parsed::Frame { frame, data } = parse(DEPTH.to_owned()).expect("parses") else { panic!("not a frame") };
        assert_eq!(frame.text(), DEPTH);
        assert_eq!(&*frame.stream, "btcusdt@depth@100ms");
        assert_eq!(&*frame.symbol, "BTCUSDT");
        assert!(frame.raw().as_str().starts_with(r#"{"e":"depthUpdate""#));
        assert!(frame.raw().as_str().ends_with("]]}"));
        let Data::Diff(d) = data else { panic!("a diff: {data:?}") };
        assert_eq!((d.first_id, d.final_id), (50093239203, 50093239207));
        assert_eq!(frame.trace.as_ref().map(|t| t.update_id), Some(50093239207));
        assert_eq!(d.bids, [(5_565_387_000_000, 0)]);
        assert_eq!(d.asks, [(6_183_804_000_000, 32_332_000), (6_184_430_000_000, 40_163_000)]);
    }

    #[test]
    fn other_frames_and_snapshots() {
        let t = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"1.00000000","q":"1.00000000","T":1,"m":true,"M":true}}"#;
        let Parsed::Frame { frame, data } = parse(t.to_owned()).expect("parses") else { panic!("not a frame") };
        assert_eq!(&*frame.stream, "btcusdt@trade");
        assert_eq!(data, Data::Trade(Trade { px: 100_000_000, qty: 100_000_000, buyer_maker: true }));
        assert!(frame.trace.is_none(), "trades carry no update id");
        let bt = r#"{"stream":"btcusdt@bookTicker","data":{"u":42,"s":"BTCUSDT","b":"2.00000000","B":"1.50000000","a":"3.00000000","A":"0.10000000"}}"#;
        let Parsed::Frame { frame, data } = parse(bt.to_owned()).expect("parses") else { panic!("not a frame") };
        let want = Ticker { update_id: 42, bid: (200_000_000, 150_000_000), ask: (300_000_000, 10_000_000) };
        assert_eq!(data, Data::Ticker(want));
        let trace = frame.trace.as_ref().expect("traced");
        assert_eq!(trace.update_id, 42);
        frame.mark_sent(|| 7);
        frame.mark_sent(|| 9);
        assert_eq!(trace.sent_ns.load(Ordering::Relaxed), 7, "the first send is kept");
        // A ticker whose fields do not parse is still served, as recorded.
        let odd = r#"{"stream":"btcusdt@bookTicker","data":{"u":"x"}}"#;
        let Parsed::Frame { data, .. } = parse(odd.to_owned()).expect("parses") else { panic!("not a frame") };
        assert_eq!(data, Data::Other);
        let s = r#"{"lastUpdateId":7,"bids":[["2.00000000","1.50000000"]],"asks":[["3.00000000","1.00000000",[]]]}"#;
        let Parsed::Snapshot(snap) = parse(s.to_owned()).expect("parses") else { panic!("not a snapshot") };
        assert_eq!(
            snap,
            Snapshot {
                last_update_id: 7,
                bids: vec![(200_000_000, 150_000_000)],
                asks: vec![(300_000_000, 100_000_000)]
            }
        );
        assert_eq!(snapshot_body(7, snap.bids.into_iter(), snap.asks.into_iter()), s.replace(",[]", ""));
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for bad in [
            "",
            "{",
            "[1]",
            "{}",
            r#"{"stream":"nosymbol","data":{}}"#,
            r#"{"stream":"btcusdt@depth","data":{"e":"depthUpdate"}}"#,
            r#"{"stream":"btcusdt@depth","data":{"e":"depthUpdate","s":"X","U":2,"u":1,"b":[],"a":[]}}"#,
            r#"{"stream":"btcusdt@depth","data":{"e":"depthUpdate","s":"X","U":1,"u":1,"b":[["1e5","1"]],"a":[]}}"#,
            r#"{"lastUpdateId":1,"bids":[["-1","1"]],"asks":[]}"#,
            r#"{"lastUpdateId":1}"#,
        ] {
            assert!(parse(bad.to_owned()).is_err(), "{bad}");
        }
    }

    #[test]
    fn stream_names_are_canonicalised() {
        assert_eq!(canonical_stream("BTCUSDT@depth").as_deref(), Some("btcusdt@depth@100ms"));
        assert_eq!(canonical_stream("btcusdt@depth@100ms").as_deref(), Some("btcusdt@depth@100ms"));
        assert_eq!(canonical_stream("btcusdt@bookTicker").as_deref(), Some("btcusdt@bookTicker"));
        for bad in ["", "btcusdt", "@trade", "btcusdt@", "btc usdt@trade", "btcusdt@tr\"ade", "btcusdt@a/b"] {
            assert_eq!(canonical_stream(bad), None, "{bad}");
        }
    }

    #[test]
    fn fixed8_and_truncation() {
        let mut s = String::new();
        put_fixed8(&mut s, 6_160_201_000_000);
        s.push(' ');
        put_fixed8(&mut s, 1);
        s.push(' ');
        put_fixed8(&mut s, -150_000_000);
        assert_eq!(s, "61602.01000000 0.00000001 -1.50000000");
        assert_eq!(dec8(-150_000_000), "-1.50000000");
        assert_eq!(dec8(i128::from(i64::MAX) * 10), "922337203685.47758070");
        for t in [DEPTH, "{\"a\":\"é\"}", "{}"] {
            let cut = truncated(t);
            assert!(t.starts_with(&cut) && serde_json::from_str::<serde_json::Value>(&cut).is_err(), "{cut}");
        }
    }
}
