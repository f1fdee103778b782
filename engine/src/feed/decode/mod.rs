//! Binance spot market-data decoders: combined-stream frames, their bare data objects, and the
//! REST depth snapshot body.
//!
//! Runs on the hot thread. [`decode`] first runs [`fast::decode`], a schema-specialised byte
//! scanner that never allocates; only when that answers [`DecodeError::Fallback`] (a shape it
//! does not specialise in, or a frame it cannot classify with certainty) does it run
//! [`general::decode`] (simd-json), whose answer is then authoritative. The general path reuses
//! buffers held in the [`DecodeScratch`] and allocates only to grow them for a frame larger than
//! any seen before. Depth and snapshot levels are written into the scratch, which never grows.
//!
//! # What a frame means (both paths implement exactly this)
//! * The top level must be a JSON object, else [`DecodeError::WrongType`].
//! * An object with a `"stream"` key is a combined-stream wrapper: `"stream"` must be a string
//!   and `"data"` must be present. The stream's kind is the part after its first `@`:
//!   `bookTicker`; `depth`, `depth@100ms`, `depth@1000ms`; `trade`; `aggTrade`. Any other stream
//!   is [`Decoded::Ignored`] (its data is not interpreted, but the frame must be valid JSON).
//!   For a known stream, `"data"` must be an object whose content kind (below) is the stream's
//!   kind, else [`DecodeError::StreamMismatch`].
//! * Any other object is classified by its content: an `"e"` key (a string) names the event —
//!   `depthUpdate`, `trade`, `aggTrade`, anything else is ignored; without `"e"`, a
//!   `"lastUpdateId"` key makes it a REST depth snapshot, else a `"u"` key a bookTicker, else it
//!   is ignored (e.g. a subscription reply `{"result":null,"id":1}`).
//! * Each kind has required fields (missing: [`DecodeError::MissingField`]); a field the kind
//!   reads may appear once ([`DecodeError::DuplicateField`]); other keys, in any order, are
//!   ignored. Ids are JSON integers in `u64`, prices and quantities are strings converted
//!   exactly by [`hft_shared::px::parse_fixed8`], levels are arrays whose first two elements are
//!   the price and quantity strings.
//! * Symbols borrow from the frame, so a symbol written with JSON escapes cannot be represented
//!   and is [`DecodeError::Unsupported`]; every other string may use escapes.
//! * "Valid JSON" is what simd-json accepts: UTF-8, nesting below 1024, and numbers it can
//!   represent — an integer beyond `u64` (or below `i64::MIN`) or a float out of `f64`'s range
//!   makes the frame [`DecodeError::Syntax`].
//!
//! * A WebSocket-API response is an object the rules above ignore whose top level has a
//!   `"status"` key (`{"id":…,"status":200,"result":{…},"rateLimits":[…]}`): only [`decode`]
//!   reads it, on top of both paths (which call it ignored), with [`api_response`]. `"status"`
//!   must be a `u64` integer; 200 with a `"result"` that is a depth snapshot body decodes as
//!   [`Decoded::Snapshot`], a 200 `"result"` of any other kind is ignored, and any other status
//!   (`{"id":…,"status":4xx,"error":{"code":…,"msg":…}}`) is [`DecodeError::VenueError`]. Its
//!   keys are matched as written (Binance writes none with escapes).
//!
//! On `Err`, the scratch contents are unspecified; on `Ok` they hold the levels of a `Depth` or
//! `Snapshot` and are empty otherwise.

pub mod fast;
pub mod general;

use hft_shared::{Px, Qty};

/// One price level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Level {
    pub px: Px,
    pub qty: Qty,
}

/// Preallocated space for the levels of a depth diff or snapshot (never grows), and the
/// general path's reusable buffers.
#[derive(Debug)]
pub struct DecodeScratch {
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
    general: general::Buffers,
}

impl DecodeScratch {
    /// Room for `levels` levels per side (Binance snapshots have up to 5000). Also sizes the
    /// general path's buffers for a frame of that many levels, so it does not allocate later.
    pub fn with_capacity(levels: usize) -> Self {
        Self {
            bids: Vec::with_capacity(levels),
            asks: Vec::with_capacity(levels),
            general: general::Buffers::for_levels(levels),
        }
    }

    #[inline]
    fn clear_levels(&mut self) {
        self.bids.clear();
        self.asks.clear();
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BookTicker<'a> {
    pub symbol: &'a [u8],
    pub update_id: u64,
    pub bid_px: Px,
    pub bid_qty: Qty,
    pub ask_px: Px,
    pub ask_qty: Qty,
}

/// Header of a `depthUpdate`; its levels are in the scratch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DepthHeader<'a> {
    pub symbol: &'a [u8],
    pub event_time_ms: u64,
    pub first_id: u64,
    pub final_id: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trade<'a> {
    pub symbol: &'a [u8],
    pub event_time_ms: u64,
    pub trade_id: u64,
    pub px: Px,
    pub qty: Qty,
    pub trade_time_ms: u64,
    pub buyer_is_maker: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AggTrade<'a> {
    pub symbol: &'a [u8],
    pub event_time_ms: u64,
    pub agg_id: u64,
    pub px: Px,
    pub qty: Qty,
    pub first_trade_id: u64,
    pub last_trade_id: u64,
    pub trade_time_ms: u64,
    pub buyer_is_maker: bool,
}

/// Header of a REST depth snapshot body; its levels are in the scratch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotHeader {
    pub last_update_id: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    BookTicker(BookTicker<'a>),
    Depth(DepthHeader<'a>),
    Trade(Trade<'a>),
    AggTrade(AggTrade<'a>),
    Snapshot(SnapshotHeader),
    /// A well-formed frame of a stream the engine does not use.
    Ignored,
}

/// Why a frame was rejected. Small, `Copy`, counted per kind by the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DecodeError {
    /// Not valid JSON (including invalid UTF-8), or truncated.
    Syntax = 0,
    /// A required field is missing.
    MissingField = 1,
    /// A field has the wrong JSON type (or a level has fewer than two elements).
    WrongType = 2,
    /// A price or quantity is not an exact 8-decimal number, or an id is not a `u64` integer.
    BadNumber = 3,
    /// More levels than the scratch can hold.
    TooManyLevels = 4,
    /// A field the decoder reads appears twice in one object.
    DuplicateField = 5,
    /// A combined-stream frame whose data is not of its stream's kind.
    StreamMismatch = 6,
    /// Valid, but not representable: a symbol written with JSON escapes.
    Unsupported = 7,
    /// Only from [`fast::decode`]: the frame is not in the shape the fast path specialises in,
    /// or is malformed in a way only the general path classifies; ask [`general::decode`].
    /// [`decode`] never returns it.
    Fallback = 8,
    /// A WebSocket-API response with an error status (the venue refused the request).
    VenueError = 9,
}

impl DecodeError {
    pub const COUNT: usize = 10;
    pub const fn code(self) -> &'static str {
        match self {
            DecodeError::Syntax => "syntax",
            DecodeError::MissingField => "missing_field",
            DecodeError::WrongType => "wrong_type",
            DecodeError::BadNumber => "bad_number",
            DecodeError::TooManyLevels => "too_many_levels",
            DecodeError::DuplicateField => "duplicate_field",
            DecodeError::StreamMismatch => "stream_mismatch",
            DecodeError::Unsupported => "unsupported",
            DecodeError::Fallback => "fallback",
            DecodeError::VenueError => "venue_error",
        }
    }
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// What a data object (or a stream name) says the frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    BookTicker,
    Depth,
    Trade,
    AggTrade,
    Snapshot,
    Ignored,
}

impl Kind {
    /// The kind of a combined stream, from its name (`btcusdt@depth@100ms`).
    #[inline]
    fn of_stream(name: &[u8]) -> Kind {
        let Some(at) = name.iter().position(|&c| c == b'@') else {
            return Kind::Ignored;
        };
        match &name[at + 1..] {
            b"bookTicker" => Kind::BookTicker,
            b"depth@100ms" | b"depth" | b"depth@1000ms" => Kind::Depth,
            b"trade" => Kind::Trade,
            b"aggTrade" => Kind::AggTrade,
            _ => Kind::Ignored,
        }
    }

    /// The kind named by an `"e"` value.
    #[inline]
    fn of_event(e: &[u8]) -> Kind {
        match e {
            b"depthUpdate" => Kind::Depth,
            b"trade" => Kind::Trade,
            b"aggTrade" => Kind::AggTrade,
            _ => Kind::Ignored,
        }
    }

    #[inline]
    fn of(d: &Decoded<'_>) -> Kind {
        match d {
            Decoded::BookTicker(_) => Kind::BookTicker,
            Decoded::Depth(_) => Kind::Depth,
            Decoded::Trade(_) => Kind::Trade,
            Decoded::AggTrade(_) => Kind::AggTrade,
            Decoded::Snapshot(_) => Kind::Snapshot,
            Decoded::Ignored => Kind::Ignored,
        }
    }
}

/// Decodes one frame: the fast path, then the general path if the fast path asks for it.
/// Depth and snapshot levels replace the scratch contents. Never returns
/// [`DecodeError::Fallback`].
#[inline]
pub fn decode<'a>(frame: &'a [u8], scratch: &mut DecodeScratch) -> Result<Decoded<'a>, DecodeError> {
    match decode_paths(frame, scratch) {
        Ok(Decoded::Ignored) => decode_api(frame, scratch),
        r => r,
    }
}

#[inline]
fn decode_paths<'a>(frame: &'a [u8], scratch: &mut DecodeScratch) -> Result<Decoded<'a>, DecodeError> {
    match fast::decode(frame, scratch) {
        Err(DecodeError::Fallback) => general::decode(frame, scratch),
        r => r,
    }
}

/// The WS-API rule of the module docs, for a frame both paths call ignored (so valid JSON).
#[cold]
fn decode_api<'a>(frame: &'a [u8], scratch: &mut DecodeScratch) -> Result<Decoded<'a>, DecodeError> {
    let Some(r) = api_response(frame)? else {
        return Ok(Decoded::Ignored);
    };
    if r.status != 200 {
        return Err(DecodeError::VenueError);
    }
    let result = r.result.ok_or(DecodeError::MissingField)?;
    match decode_paths(result, scratch)? {
        Decoded::Snapshot(h) => Ok(Decoded::Snapshot(h)),
        _ => {
            scratch.clear_levels();
            Ok(Decoded::Ignored)
        }
    }
}

/// The envelope of a WebSocket-API response, borrowed from the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiResponse<'a> {
    /// The request id as sent back: a string's raw content, a number's digits, or empty when
    /// absent or `null`.
    pub id: &'a [u8],
    /// 200 on success; 4xx/5xx when the venue refused the request.
    pub status: u64,
    /// The raw JSON of `"result"`, when present.
    pub result: Option<&'a [u8]>,
}

/// Reads a WS-API response envelope: `Ok(None)` when `frame` is not an object with a top-level
/// `"status"` key. Scans the top level once without allocating; values other than `"status"`
/// are not validated (call it on frames already known to be valid JSON). Errors: `Syntax` (not
/// JSON-shaped), `DuplicateField` (`id`, `status` or `result` twice), `WrongType` (`status` not a
/// number), `BadNumber` (`status` not a `u64` integer).
pub fn api_response(frame: &[u8]) -> Result<Option<ApiResponse<'_>>, DecodeError> {
    use DecodeError::{BadNumber, DuplicateField, Syntax, WrongType};
    let b = frame;
    let mut i = api_scan::ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return Ok(None);
    }
    i = api_scan::ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return Ok(None);
    }
    let (mut id, mut status, mut result) = (None, None, None);
    loop {
        if b.get(i) != Some(&b'"') {
            return Err(Syntax);
        }
        let key_end = api_scan::string_end(b, i).ok_or(Syntax)?;
        let key = &b[i + 1..key_end - 1];
        i = api_scan::ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return Err(Syntax);
        }
        let start = api_scan::ws(b, i + 1);
        let end = api_scan::value_end(b, start).ok_or(Syntax)?;
        let slot = match key {
            b"id" => Some(&mut id),
            b"status" => Some(&mut status),
            b"result" => Some(&mut result),
            _ => None,
        };
        if let Some(slot) = slot {
            if slot.is_some() {
                return Err(DuplicateField);
            }
            *slot = Some(&b[start..end]);
        }
        i = api_scan::ws(b, end);
        match b.get(i) {
            Some(b',') => i = api_scan::ws(b, i + 1),
            Some(b'}') => break,
            _ => return Err(Syntax),
        }
    }
    let Some(status) = status else {
        return Ok(None);
    };
    let status = match status.first() {
        Some(b'0'..=b'9') => status.iter().try_fold(0u64, |acc, &c| {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            acc.checked_mul(10)?.checked_add(u64::from(d))
        }),
        Some(b'-') => None,
        _ => return Err(WrongType),
    }
    .ok_or(BadNumber)?;
    let id = match id {
        Some(v) if v.first() == Some(&b'"') => &v[1..v.len() - 1],
        Some(b"null") | None => &[][..],
        Some(v) => v,
    };
    Ok(Some(ApiResponse { id, status, result }))
}

/// A minimal JSON skimmer for [`api_response`]: finds where values end, validates nothing else.
mod api_scan {
    #[inline]
    pub(super) fn ws(b: &[u8], mut i: usize) -> usize {
        while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            i += 1;
        }
        i
    }

    /// End (exclusive) of the string whose opening quote is at `b[i]`.
    #[inline]
    pub(super) fn string_end(b: &[u8], i: usize) -> Option<usize> {
        let mut j = i + 1;
        while j < b.len() {
            match b[j] {
                b'\\' => j += 2,
                b'"' => return Some(j + 1),
                _ => j += 1,
            }
        }
        None
    }

    /// End (exclusive) of the value starting at `b[i]`.
    pub(super) fn value_end(b: &[u8], i: usize) -> Option<usize> {
        match *b.get(i)? {
            b'"' => string_end(b, i),
            b'{' | b'[' => {
                let mut depth = 0usize;
                let mut j = i;
                while j < b.len() {
                    match b[j] {
                        b'"' => {
                            j = string_end(b, j)?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                return Some(j + 1);
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                None
            }
            _ => {
                let mut j = i;
                while j < b.len() && !matches!(b[j], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                    j += 1;
                }
                (j > i).then_some(j)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOK_TICKER: &[u8] = br#"{"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}"#;
    const DEPTH: &[u8] = br#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255308,"s":"BTCUSDT","U":50093239203,"u":50093239207,"b":[["55653.87000000","0.00000000"]],"a":[["61838.04000000","0.32332000"],["61844.30000000","0.40163000"]]}}"#;
    const TRADE: &[u8] = br#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}}"#;
    const AGG_TRADE: &[u8] = br#"{"stream":"bnbbtc@aggTrade","data":{"e":"aggTrade","E":1672515782136,"s":"BNBBTC","a":12345,"p":"0.00100000","q":"100.00000000","f":100,"l":105,"T":1672515782136,"m":false,"M":true}}"#;
    const SNAPSHOT: &[u8] = br#"{"lastUpdateId":1027024,"bids":[["4.00000000","431.00000000"]],"asks":[["4.00000200","12.00000000"],["4.00000300","1.5"]]}"#;

    fn px(s: &str) -> Px {
        Px::parse(s).unwrap()
    }
    fn qty(s: &str) -> Qty {
        Qty::parse(s).unwrap()
    }
    fn lv(p: &str, q: &str) -> Level {
        Level { px: px(p), qty: qty(q) }
    }

    /// Decodes with all three entry points, checks they agree, and returns the answer with the
    /// levels.
    fn all<'a>(
        frame: &'a [u8],
        scratch: &mut DecodeScratch,
    ) -> (Result<Decoded<'a>, DecodeError>, Vec<Level>, Vec<Level>) {
        let g = general::decode(frame, scratch);
        let levels = (scratch.bids.clone(), scratch.asks.clone());
        let f = fast::decode(frame, scratch);
        if f != Err(DecodeError::Fallback) {
            assert_eq!(f, g, "fast vs general on {}", String::from_utf8_lossy(frame));
            assert_eq!((scratch.bids.clone(), scratch.asks.clone()), levels);
        }
        let d = decode(frame, scratch);
        assert_eq!(d, g);
        assert_eq!((scratch.bids.clone(), scratch.asks.clone()), levels);
        (g, levels.0, levels.1)
    }

    fn fast_takes(frame: &[u8]) {
        let mut sc = DecodeScratch::with_capacity(16);
        assert_ne!(fast::decode(frame, &mut sc), Err(DecodeError::Fallback), "{}", String::from_utf8_lossy(frame));
    }

    #[test]
    fn decodes_each_kind() {
        let mut sc = DecodeScratch::with_capacity(16);
        let want = BookTicker {
            symbol: b"BTCUSDT",
            update_id: 50093239212,
            bid_px: px("61837.63"),
            bid_qty: qty("3.78826"),
            ask_px: px("61837.64"),
            ask_qty: qty("1.54698"),
        };
        assert_eq!(all(BOOK_TICKER, &mut sc).0, Ok(Decoded::BookTicker(want)));

        let (d, bids, asks) = all(DEPTH, &mut sc);
        let want = DepthHeader {
            symbol: b"BTCUSDT",
            event_time_ms: 1723161255308,
            first_id: 50093239203,
            final_id: 50093239207,
        };
        assert_eq!(d, Ok(Decoded::Depth(want)));
        assert_eq!(bids, [lv("55653.87", "0")]);
        assert_eq!(asks, [lv("61838.04", "0.32332"), lv("61844.3", "0.40163")]);

        let want = Trade {
            symbol: b"BTCUSDT",
            event_time_ms: 1723161255343,
            trade_id: 3735683259,
            px: px("61837.63"),
            qty: qty("0.02"),
            trade_time_ms: 1723161255342,
            buyer_is_maker: true,
        };
        assert_eq!(all(TRADE, &mut sc).0, Ok(Decoded::Trade(want)));

        let want = AggTrade {
            symbol: b"BNBBTC",
            event_time_ms: 1672515782136,
            agg_id: 12345,
            px: px("0.001"),
            qty: qty("100"),
            first_trade_id: 100,
            last_trade_id: 105,
            trade_time_ms: 1672515782136,
            buyer_is_maker: false,
        };
        assert_eq!(all(AGG_TRADE, &mut sc).0, Ok(Decoded::AggTrade(want)));

        let (d, bids, asks) = all(SNAPSHOT, &mut sc);
        assert_eq!(d, Ok(Decoded::Snapshot(SnapshotHeader { last_update_id: 1027024 })));
        assert_eq!(bids, [lv("4", "431")]);
        assert_eq!(asks, [lv("4.000002", "12"), lv("4.000003", "1.5")]);

        for f in [BOOK_TICKER, DEPTH, TRADE, AGG_TRADE, SNAPSHOT] {
            fast_takes(f);
        }
    }

    /// The data object of a combined frame, as a bare frame.
    fn bare(frame: &[u8]) -> &[u8] {
        let at = frame.windows(8).position(|w| w == b"\"data\":{").unwrap() + 7;
        &frame[at..frame.len() - 1]
    }

    #[test]
    fn bare_data_objects_decode_like_their_wrappers() {
        let mut sc = DecodeScratch::with_capacity(16);
        for f in [BOOK_TICKER, DEPTH, TRADE, AGG_TRADE] {
            let (w, wb, wa) = all(f, &mut sc);
            let (b, bb, ba) = all(bare(f), &mut sc);
            assert!(w.is_ok());
            assert_eq!((w, wb, wa), (b, bb, ba));
            fast_takes(bare(f));
        }
    }

    #[test]
    fn old_trade_frames_with_order_ids_decode() {
        let old = br#"{"e":"trade","E":123456789,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","b":88,"a":50,"T":123456785,"m":true,"M":true}"#;
        let mut sc = DecodeScratch::with_capacity(4);
        let Ok(Decoded::Trade(t)) = all(old, &mut sc).0 else { panic!("not a trade") };
        assert_eq!((t.trade_id, t.px, t.qty, t.buyer_is_maker), (12345, px("0.001"), qty("100"), true));
        fast_takes(old);
    }

    #[test]
    fn key_order_whitespace_and_escapes_do_not_change_the_answer() {
        let mut sc = DecodeScratch::with_capacity(16);
        let want = all(DEPTH, &mut sc);
        let variants: [&[u8]; 6] = [
            // Data before stream, discriminator last, whitespace everywhere.
            br#" { "data" : { "a" : [ [ "61838.04000000" , "0.32332000" ] , [ "61844.30000000" , "0.40163000" ] ] ,
                "b":[["55653.87000000","0.00000000"]], "u":50093239207, "U":50093239203, "s":"BTCUSDT",
                "E":1723161255308, "e":"depthUpdate" } , "stream" : "btcusdt@depth@100ms" }
"#,
            // Extra fields of every type, and escapes in strings other than the symbol.
            br#"{"stream":"btcusdt@depth@100ms","x":[1,{"y":null}],"data":{"e":"depth\u0055pdate","E":1723161255308,"s":"BTCUSDT","U":50093239203,"u":50093239207,"z":{"q":[true,false,-1.5e3]},"b":[["55653.87000000","0.00000000"]],"a":[["61838.04000000","0.3233\u0032000"],["61844.30000000","0.40163000"]]}}"#,
            // Shorter decimals and integral strings.
            br#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255308,"s":"BTCUSDT","U":50093239203,"u":50093239207,"b":[["55653.87","0"]],"a":[["61838.04","0.32332"],["61844.3","0.40163"]]}}"#,
            // Old-style levels with a third element.
            br#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255308,"s":"BTCUSDT","U":50093239203,"u":50093239207,"b":[["55653.87000000","0.00000000",[]]],"a":[["61838.04000000","0.32332000",[]],["61844.30000000","0.40163000",[]]]}}"#,
            // The stream's data escaped in the stream name.
            br#"{"stream":"btcusdt@depth\u0040100ms","data":{"e":"depthUpdate","E":1723161255308,"s":"BTCUSDT","U":50093239203,"u":50093239207,"b":[["55653.87000000","0.00000000"]],"a":[["61838.04000000","0.32332000"],["61844.30000000","0.40163000"]]}}"#,
            // A plain `depth` stream and unicode in an ignored field.
            "{\"stream\":\"btcusdt@depth\",\"note\":\"caf\u{e9} \u{1F600}\",\"data\":{\"e\":\"depthUpdate\",\"E\":1723161255308,\"s\":\"BTCUSDT\",\"U\":50093239203,\"u\":50093239207,\"b\":[[\"55653.87000000\",\"0.00000000\"]],\"a\":[[\"61838.04000000\",\"0.32332000\"],[\"61844.30000000\",\"0.40163000\"]]}}".as_bytes(),
        ];
        for v in variants {
            assert_eq!(all(v, &mut sc), want, "{}", String::from_utf8_lossy(v));
        }
        // The fast path takes whitespace and extra fields in Binance's order.
        fast_takes(variants[2]);
        let spaced = br#"{ "stream" : "btcusdt@bookTicker" , "data" : { "u" : 1 , "x" : [ 1 , "y" , { } ] , "A" : "1" , "a" : "2" , "B" : "3" , "b" : "4" , "s" : "S" } }"#;
        fast_takes(spaced);
        let Ok(Decoded::BookTicker(t)) = all(spaced, &mut sc).0 else { panic!() };
        assert_eq!(
            (t.update_id, t.ask_qty, t.ask_px, t.bid_qty, t.bid_px, t.symbol),
            (1, qty("1"), px("2"), qty("3"), px("4"), &b"S"[..])
        );
    }

    #[test]
    fn unknown_streams_and_events_are_ignored() {
        let mut sc = DecodeScratch::with_capacity(4);
        for f in [
            &br#"{"stream":"btcusdt@kline_1m","data":{"e":"kline","E":1,"s":"BTCUSDT","k":{"t":1,"x":false}}}"#[..],
            br#"{"stream":"!ticker@arr","data":[{"e":"24hrTicker"}]}"#,
            br#"{"stream":"btcusdt@depth20@100ms","data":{"lastUpdateId":1,"bids":[],"asks":[]}}"#,
            br#"{"stream":"nosymbol","data":null}"#,
            br#"{"e":"24hrTicker","E":1,"s":"BTCUSDT","c":"1.0"}"#,
            br#"{"result":null,"id":1}"#,
            br#"{}"#,
        ] {
            assert_eq!(all(f, &mut sc).0, Ok(Decoded::Ignored), "{}", String::from_utf8_lossy(f));
        }
        fast_takes(br#"{"stream":"btcusdt@kline_1m","data":{"e":"kline","E":1,"s":"BTCUSDT","k":{"t":1,"x":false}}}"#);
    }

    #[test]
    fn errors_have_the_documented_kinds() {
        use DecodeError::*;
        let mut sc = DecodeScratch::with_capacity(2);
        let cases: [(&[u8], DecodeError); 22] = [
            (b"", Syntax),
            (b"   ", Syntax),
            (br#"{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"X","b":"1","B":"1","a":"1","A":"1"}"#, Syntax),
            (br#"{"u":1,"s":"X","b":"1","B":"1","a":"1","A":"1"} x"#, Syntax),
            (b"{\"u\":1,\"s\":\"X\xff\",\"b\":\"1\",\"B\":\"1\",\"a\":\"1\",\"A\":\"1\"}", Syntax),
            (br#"[1,2]"#, WrongType),
            (br#"{"u":1,"s":"X","b":"1","B":"1","a":"1"}"#, MissingField),
            (br#"{"stream":"btcusdt@trade"}"#, MissingField),
            (br#"{"u":"1","s":"X","b":"1","B":"1","a":"1","A":"1"}"#, WrongType),
            (br#"{"u":1,"s":"X","b":1,"B":"1","a":"1","A":"1"}"#, WrongType),
            (br#"{"stream":1,"data":{}}"#, WrongType),
            (br#"{"e":"depthUpdate","E":1,"s":"X","U":1,"u":1,"b":[["1"]],"a":[]}"#, WrongType),
            (br#"{"u":1.5,"s":"X","b":"1","B":"1","a":"1","A":"1"}"#, BadNumber),
            (br#"{"u":-1,"s":"X","b":"1","B":"1","a":"1","A":"1"}"#, BadNumber),
            (br#"{"u":1,"s":"X","b":"1.000000001","B":"1","a":"1","A":"1"}"#, BadNumber),
            (br#"{"u":1,"s":"X","b":"1e5","B":"1","a":"1","A":"1"}"#, BadNumber),
            (br#"{"u":1,"s":"X","b":"","B":"1","a":"1","A":"1"}"#, BadNumber),
            (
                br#"{"e":"depthUpdate","E":1,"s":"X","U":1,"u":1,"b":[["1","1"],["2","1"],["3","1"]],"a":[]}"#,
                TooManyLevels,
            ),
            (br#"{"u":1,"s":"X","b":"1","B":"1","a":"1","A":"1","b":"2"}"#, DuplicateField),
            (br#"{"e":"trade","e":"trade"}"#, DuplicateField),
            (br#"{"stream":"btcusdt@trade","data":{"u":1,"s":"X","b":"1","B":"1","a":"1","A":"1"}}"#, StreamMismatch),
            (br#"{"u":1,"s":"BTC\u0055SDT","b":"1","B":"1","a":"1","A":"1"}"#, Unsupported),
        ];
        for (f, want) in cases {
            assert_eq!(all(f, &mut sc).0, Err(want), "{}", String::from_utf8_lossy(f));
        }
        // Too many levels never grows the scratch.
        assert_eq!((sc.bids.capacity(), sc.asks.capacity()), (2, 2));
    }

    #[test]
    fn error_codes_are_distinct_and_indexed() {
        use DecodeError::*;
        let all = [
            Syntax,
            MissingField,
            WrongType,
            BadNumber,
            TooManyLevels,
            DuplicateField,
            StreamMismatch,
            Unsupported,
            Fallback,
            VenueError,
        ];
        assert_eq!(all.len(), DecodeError::COUNT);
        for (i, e) in all.iter().enumerate() {
            assert_eq!(e.index(), i);
            assert!(all[..i].iter().all(|o| o.code() != e.code()));
        }
    }

    #[test]
    fn ws_api_depth_responses_decode_as_snapshots() {
        let mut sc = DecodeScratch::with_capacity(4);
        let ok = br#"{"id":"7","status":200,"result":{"lastUpdateId":1027024,"bids":[["4.00000000","431.00000000"]],"asks":[["4.00000200","12.00000000"],["4.00000300","1.5"]]},"rateLimits":[{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":6000,"count":52}]}"#;
        assert_eq!(decode(ok, &mut sc), Ok(Decoded::Snapshot(SnapshotHeader { last_update_id: 1027024 })));
        assert_eq!(sc.bids, [lv("4", "431")]);
        assert_eq!(sc.asks, [lv("4.000002", "12"), lv("4.000003", "1.5")]);
        let r = api_response(ok).unwrap().unwrap();
        assert_eq!((r.id, r.status), (&b"7"[..], 200));
        assert!(r.result.unwrap().starts_with(br#"{"lastUpdateId":1027024"#));

        // Any key order, whitespace, a numeric id; both paths call the envelope ignored.
        let reordered = br#" { "rateLimits" : [ ] , "result" : { "asks" : [ ] , "bids" : [ [ "1" , "2" ] ] , "lastUpdateId" : 5 } , "status" : 200 , "id" : 12 } "#;
        assert_eq!(general::decode(reordered, &mut sc), Ok(Decoded::Ignored));
        assert!(matches!(fast::decode(reordered, &mut sc), Ok(Decoded::Ignored) | Err(DecodeError::Fallback)));
        assert_eq!(decode(reordered, &mut sc), Ok(Decoded::Snapshot(SnapshotHeader { last_update_id: 5 })));
        assert_eq!((sc.bids.as_slice(), sc.asks.as_slice()), (&[lv("1", "2")][..], &[][..]));
        assert_eq!(api_response(reordered).unwrap().unwrap().id, b"12");

        // The result's own errors surface; a result of another kind is ignored (levels cleared).
        let bad_level = br#"{"id":"1","status":200,"result":{"lastUpdateId":1,"bids":[["x","1"]],"asks":[]}}"#;
        assert_eq!(decode(bad_level, &mut sc), Err(DecodeError::BadNumber));
        let too_many = br#"{"id":"1","status":200,"result":{"lastUpdateId":1,"bids":[["1","1"],["2","1"],["3","1"],["4","1"],["5","1"]],"asks":[]}}"#;
        assert_eq!(decode(too_many, &mut sc), Err(DecodeError::TooManyLevels));
        let other = br#"{"id":"1","status":200,"result":{"serverTime":1700000000000}}"#;
        assert_eq!(decode(other, &mut sc), Ok(Decoded::Ignored));
        assert!(sc.bids.is_empty() && sc.asks.is_empty());
        assert_eq!(decode(br#"{"id":"1","status":200}"#, &mut sc), Err(DecodeError::MissingField));
        // Envelope shape errors.
        assert_eq!(decode(br#"{"id":"1","status":"200","result":{}}"#, &mut sc), Err(DecodeError::WrongType));
        assert_eq!(decode(br#"{"id":"1","status":200.5,"result":{}}"#, &mut sc), Err(DecodeError::BadNumber));
        assert_eq!(decode(br#"{"id":"1","status":-1,"result":{}}"#, &mut sc), Err(DecodeError::BadNumber));
        assert_eq!(decode(br#"{"id":"1","status":200,"status":200}"#, &mut sc), Err(DecodeError::DuplicateField));
        // Frames without a status are what they were.
        assert_eq!(decode(br#"{"result":null,"id":1}"#, &mut sc), Ok(Decoded::Ignored));
        assert_eq!(api_response(br#"{"result":null,"id":1}"#), Ok(None));
        assert_eq!(api_response(b"[1]"), Ok(None));
        assert_eq!(decode(SNAPSHOT, &mut sc), Ok(Decoded::Snapshot(SnapshotHeader { last_update_id: 1027024 })));
    }

    #[test]
    fn ws_api_error_responses_are_venue_errors() {
        let mut sc = DecodeScratch::with_capacity(4);
        for f in [
            &br#"{"id":"3","status":400,"error":{"code":-1121,"msg":"Invalid symbol."},"rateLimits":[{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":6000,"count":70}]}"#[..],
            br#"{"id":"4","status":429,"error":{"code":-1003,"msg":"Too much request weight used; current limit is 6000 request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.","data":{"retryAfter":1700000000000}}}"#,
            br#"{"status":418,"id":null,"error":{"code":-1003,"msg":"Way too much request weight used; IP banned until 1700000000000. \"quoted\" [brackets} inside"}}"#,
        ] {
            assert_eq!(decode(f, &mut sc), Err(DecodeError::VenueError), "{}", String::from_utf8_lossy(f));
        }
        let r = api_response(br#"{"id":"4","status":429,"error":{"code":-1003,"msg":"x"}}"#).unwrap().unwrap();
        assert_eq!((r.id, r.status, r.result), (&b"4"[..], 429, None));
        assert_eq!(DecodeError::VenueError.code(), "venue_error");
    }

    #[test]
    fn stream_kinds() {
        assert_eq!(Kind::of_stream(b"btcusdt@bookTicker"), Kind::BookTicker);
        assert_eq!(Kind::of_stream(b"btcusdt@depth@100ms"), Kind::Depth);
        assert_eq!(Kind::of_stream(b"btcusdt@depth@1000ms"), Kind::Depth);
        assert_eq!(Kind::of_stream(b"btcusdt@depth"), Kind::Depth);
        assert_eq!(Kind::of_stream(b"btcusdt@depth5"), Kind::Ignored);
        assert_eq!(Kind::of_stream(b"btcusdt@trade"), Kind::Trade);
        assert_eq!(Kind::of_stream(b"btcusdt@aggTrade"), Kind::AggTrade);
        assert_eq!(Kind::of_stream(b"bookTicker"), Kind::Ignored);
    }
}
