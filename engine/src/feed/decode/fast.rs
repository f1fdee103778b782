//! The hot path: a byte scanner specialised in the frames Binance actually sends.
//!
//! Runs on the hot thread, for every frame. Never allocates: levels go into the scratch's
//! preallocated `Vec`s, with `len() == capacity()` checked before every push.
//!
//! Two tiers, both single forward passes without recursion:
//! 1. *Binance's layout*: the frame is matched byte for byte against the exact layout Binance
//!    writes (its key order, no whitespace, 8-decimal strings, symbols of digits and letters),
//!    with the variable parts — ids, decimals, symbol, stream name — read by SWAR. Any
//!    difference, however harmless, drops to tier 2; a match is unambiguous, so its answer is
//!    the general path's answer.
//! 2. *The scanner*: keys in any order, JSON whitespace anywhere, unknown keys skipped (their
//!    values checked structurally). It specialises in data objects whose *first* key is their
//!    discriminator (`"e"` for events, `"u"` for a bookTicker, `"lastUpdateId"` for a
//!    snapshot), wrappers whose `"stream"` comes before their `"data"`, strings of printable
//!    ASCII without escapes, and plain integers and decimals.
//!
//! Anything else — and every semantic error (missing, repeated or mistyped field, bad number,
//! too many levels, stream mismatch) — is [`DecodeError::Fallback`], so that the general path
//! both handles the rare shapes and classifies every error. The only error this path reports
//! itself is [`DecodeError::Syntax`] for a frame that ends inside its top-level object, which
//! the general path reports identically. Hence, on every input, this function returns either
//! `Fallback` or exactly what [`super::general::decode`] returns.

use super::{
    AggTrade, BookTicker, DecodeError, DecodeScratch, Decoded, DepthHeader, Kind, Level, SnapshotHeader, Trade,
};
use hft_shared::px::parse_fixed8;
use hft_shared::{Px, Qty};

const FB: DecodeError = DecodeError::Fallback;

/// Decodes `frame` if it has a shape this path specialises in; see the module docs.
/// Depth and snapshot levels replace the scratch contents.
#[inline]
pub fn decode<'a>(frame: &'a [u8], scratch: &mut DecodeScratch) -> Result<Decoded<'a>, DecodeError> {
    scratch.clear_levels();
    if let Some(d) = binance_layout(frame, scratch) {
        return Ok(d);
    }
    scratch.clear_levels();
    scan(frame, scratch)
}

// ---- tier 1: Binance's exact layout ------------------------------------------------------------

/// The frame in exactly Binance's layout, or `None`. Inlined, so that the answer is built in
/// [`decode`]'s: returned from a call it had to be copied, and the copy's wide loads of the
/// narrow stores just made cost a store-forwarding stall on every frame.
#[inline(always)]
fn binance_layout<'a>(b: &'a [u8], scratch: &mut DecodeScratch) -> Option<Decoded<'a>> {
    let mut t = Layout { rest: b };
    let wrapped = t.lit(b"{\"stream\":\"");
    // Up to the data object's first key and value, which says the kind (each body below is
    // then written once, for code size).
    let kind = if wrapped {
        // The wrapper's closing brace: the data object's is then the end of what is left.
        t.rest = t.rest.strip_suffix(b"}")?;
        // The stream name's symbol up to its first `@`, then the rest of the name (which the
        // literal's closing quote makes exact: it is the stream's kind), `data` and the data
        // object's first key.
        t.skip(stream_symbol_end(t.rest)? + 1)?;
        if t.lit(b"bookTicker\",\"data\":{\"u\":") {
            Kind::BookTicker
        } else if t.lit(b"depth@100ms\",\"data\":{\"e\":\"depthUpdate\",\"E\":") {
            Kind::Depth
        } else if t.lit(b"trade\",\"data\":{\"e\":\"trade\",\"E\":") {
            Kind::Trade
        } else if t.lit(b"aggTrade\",\"data\":{\"e\":\"aggTrade\",\"E\":") {
            Kind::AggTrade
        } else if t.lit(b"depth\",\"data\":{\"e\":\"depthUpdate\",\"E\":")
            || t.lit(b"depth@1000ms\",\"data\":{\"e\":\"depthUpdate\",\"E\":")
        {
            Kind::Depth
        } else {
            return None;
        }
    } else if !t.lit(b"{\"") {
        return None;
    } else if t.lit(b"u\":") {
        Kind::BookTicker
    } else if t.lit(b"e\":\"depthUpdate\",\"E\":") {
        Kind::Depth
    } else if t.lit(b"e\":\"trade\",\"E\":") {
        Kind::Trade
    } else if t.lit(b"e\":\"aggTrade\",\"E\":") {
        Kind::AggTrade
    } else if t.lit(b"lastUpdateId\":") {
        Kind::Snapshot
    } else {
        return None;
    };
    let d = match kind {
        Kind::BookTicker => t.book_ticker()?,
        Kind::Depth => t.depth(scratch)?,
        Kind::Trade => t.trade()?,
        Kind::AggTrade => t.agg_trade()?,
        Kind::Snapshot => t.snapshot(scratch)?,
        Kind::Ignored => return None,
    };
    t.rest.is_empty().then_some(d)
}

/// A cursor matching Binance's layout: what is left of the frame. Every reader returns `None`
/// at the first byte that differs from the layout.
struct Layout<'a> {
    rest: &'a [u8],
}

impl<'a> Layout<'a> {
    /// Consumes `s` if the frame continues with exactly it.
    #[inline(always)]
    fn lit<const N: usize>(&mut self, s: &[u8; N]) -> bool {
        match self.rest.split_first_chunk::<N>() {
            Some((head, tail)) if same(head, s) => {
                self.rest = tail;
                true
            }
            _ => false,
        }
    }

    /// Consumes `n` bytes.
    #[inline(always)]
    fn skip(&mut self, n: usize) -> Option<()> {
        self.rest = self.rest.get(n..)?;
        Some(())
    }

    /// An id, then `next`.
    #[inline(always)]
    fn uint_then<const N: usize>(&mut self, next: &[u8; N]) -> Option<u64> {
        let (v, tail) = swar_u64(self.rest)?;
        self.rest = tail;
        self.lit(next).then_some(v)
    }

    /// A price/quantity body (the opening quote consumed), its closing quote, then `next`.
    #[inline(always)]
    fn dec_then<const N: usize>(&mut self, next: &[u8; N]) -> Option<i64> {
        let (v, tail) = swar_fixed8(self.rest)?;
        self.rest = tail;
        self.lit(next).then_some(v)
    }

    /// A symbol body (the opening quote consumed; see [`symbol_end`]), and its closing quote.
    #[inline(always)]
    fn text(&mut self) -> Option<&'a [u8]> {
        let end = symbol_end(self.rest)?;
        let (s, tail) = self.rest.split_at_checked(end)?;
        self.rest = tail.get(1..)?;
        Some(s)
    }

    /// A symbol body, its closing quote, then `next`.
    #[inline(always)]
    fn text_then<const N: usize>(&mut self, next: &[u8; N]) -> Option<&'a [u8]> {
        let s = self.text()?;
        self.lit(next).then_some(s)
    }

    #[inline(always)]
    fn boolean(&mut self) -> Option<bool> {
        if self.lit(b"true") {
            Some(true)
        } else if self.lit(b"false") {
            Some(false)
        } else {
            None
        }
    }

    /// `["px","qty"],…]` (the opening bracket consumed) into `out`, which must not grow.
    #[inline(always)]
    fn levels(&mut self, out: &mut Vec<Level>) -> Option<()> {
        // An empty side, frequent in diffs, without a call.
        if !self.lit(b"]") {
            self.rest = levels(self.rest, out)?;
        }
        Some(())
    }

    /// After `"u":`.
    #[inline(always)]
    fn book_ticker(&mut self) -> Option<Decoded<'a>> {
        let update_id = self.uint_then(b",\"s\":\"")?;
        let symbol = self.text_then(b",\"b\":\"")?;
        let bid_px = Px(self.dec_then(b",\"B\":\"")?);
        let bid_qty = Qty(self.dec_then(b",\"a\":\"")?);
        let ask_px = Px(self.dec_then(b",\"A\":\"")?);
        let ask_qty = Qty(self.dec_then(b"}")?);
        Some(Decoded::BookTicker(BookTicker { symbol, update_id, bid_px, bid_qty, ask_px, ask_qty }))
    }

    /// After `"e":"depthUpdate","E":`.
    #[inline(always)]
    fn depth(&mut self, scratch: &mut DecodeScratch) -> Option<Decoded<'a>> {
        let event_time_ms = self.uint_then(b",\"s\":\"")?;
        let symbol = self.text_then(b",\"U\":")?;
        let first_id = self.uint_then(b",\"u\":")?;
        let final_id = self.uint_then(b",\"b\":[")?;
        self.levels(&mut scratch.bids)?;
        self.lit(b",\"a\":[").then_some(())?;
        self.levels(&mut scratch.asks)?;
        self.lit(b"}").then_some(())?;
        Some(Decoded::Depth(DepthHeader { symbol, event_time_ms, first_id, final_id }))
    }

    /// After `"e":"trade","E":`.
    #[inline(always)]
    fn trade(&mut self) -> Option<Decoded<'a>> {
        let event_time_ms = self.uint_then(b",\"s\":\"")?;
        let symbol = self.text_then(b",\"t\":")?;
        let trade_id = self.uint_then(b",\"p\":\"")?;
        let px = Px(self.dec_then(b",\"q\":\"")?);
        let qty = Qty(self.dec_then(b",\"T\":")?);
        let trade_time_ms = self.uint_then(b",\"m\":")?;
        let buyer_is_maker = self.boolean()?;
        self.lit(b",\"M\":").then_some(())?;
        self.boolean()?;
        self.lit(b"}").then_some(())?;
        Some(Decoded::Trade(Trade { symbol, event_time_ms, trade_id, px, qty, trade_time_ms, buyer_is_maker }))
    }

    /// After `"e":"aggTrade","E":`.
    #[inline(always)]
    fn agg_trade(&mut self) -> Option<Decoded<'a>> {
        let event_time_ms = self.uint_then(b",\"s\":\"")?;
        let symbol = self.text_then(b",\"a\":")?;
        let agg_id = self.uint_then(b",\"p\":\"")?;
        let px = Px(self.dec_then(b",\"q\":\"")?);
        let qty = Qty(self.dec_then(b",\"f\":")?);
        let first_trade_id = self.uint_then(b",\"l\":")?;
        let last_trade_id = self.uint_then(b",\"T\":")?;
        let trade_time_ms = self.uint_then(b",\"m\":")?;
        let buyer_is_maker = self.boolean()?;
        self.lit(b",\"M\":").then_some(())?;
        self.boolean()?;
        self.lit(b"}").then_some(())?;
        Some(Decoded::AggTrade(AggTrade {
            symbol,
            event_time_ms,
            agg_id,
            px,
            qty,
            first_trade_id,
            last_trade_id,
            trade_time_ms,
            buyer_is_maker,
        }))
    }

    /// After `{"lastUpdateId":`.
    #[inline(always)]
    fn snapshot(&mut self, scratch: &mut DecodeScratch) -> Option<Decoded<'a>> {
        let last_update_id = self.uint_then(b",\"bids\":[")?;
        self.levels(&mut scratch.bids)?;
        self.lit(b",\"asks\":[").then_some(())?;
        self.levels(&mut scratch.asks)?;
        self.lit(b"}").then_some(())?;
        Some(Decoded::Snapshot(SnapshotHeader { last_update_id }))
    }
}

/// `a == b`. LLVM expands a compare of up to 32 bytes into a few wide loads, but makes a longer
/// one a `bcmp` call: the longer literals (a stream's kind and its data's first key, up to 44
/// bytes) are compared as two halves, joined without a branch.
#[inline(always)]
fn same<const N: usize>(a: &[u8; N], b: &[u8; N]) -> bool {
    if N <= 32 {
        return a == b;
    }
    let ((a1, a2), (b1, b2)) = (a.split_at(N / 2), b.split_at(N / 2));
    (a1 == b1) & (a2 == b2)
}

/// [`Layout::levels`] of a side that is not empty: the rest of the frame after them. Not
/// inlined, so that the call sites share one copy of the loop, and the cursor stays in
/// registers.
#[inline(never)]
fn levels<'a>(rest: &'a [u8], out: &mut Vec<Level>) -> Option<&'a [u8]> {
    let mut t = Layout { rest };
    if !t.lit(b"[\"") {
        return None;
    }
    loop {
        let px = t.dec_then(b",\"")?;
        let qty = t.dec_then(b"]")?;
        if out.len() == out.capacity() {
            return None;
        }
        out.push(Level { px: Px(px), qty: Qty(qty) });
        if !t.lit(b",[\"") {
            return t.lit(b"]").then_some(t.rest);
        }
    }
}

// ---- tier 2: the scanner -----------------------------------------------------------------------

/// Any key order and whitespace; see the module docs. The rare path: out of line, so that it
/// takes none of tier 1's registers.
#[cold]
#[inline(never)]
fn scan<'a>(frame: &'a [u8], scratch: &mut DecodeScratch) -> Result<Decoded<'a>, DecodeError> {
    let mut s = Scanner { b: frame, i: 0 };
    s.ws();
    s.expect(b'{')?;
    let first = s.key()?;
    let d = if first == b"stream" { wrapper(&mut s, scratch)? } else { content(&mut s, first, true, scratch)? };
    s.ws();
    if s.i != frame.len() {
        return Err(FB);
    }
    Ok(d)
}

/// `{"stream":…` — the stream name is next.
fn wrapper<'a>(s: &mut Scanner<'a>, scratch: &mut DecodeScratch) -> Result<Decoded<'a>, DecodeError> {
    let kind = Kind::of_stream(s.string()?);
    let mut out = None;
    while s.more()? {
        match s.key()? {
            b"data" if out.is_none() => {
                out = Some(if kind == Kind::Ignored {
                    s.skip_value()?;
                    Decoded::Ignored
                } else {
                    s.expect(b'{')?;
                    let first = s.key()?;
                    let d = content(s, first, false, scratch)?;
                    if Kind::of(&d) != kind {
                        return Err(FB);
                    }
                    d
                });
            }
            b"data" | b"stream" => return Err(FB),
            _ => s.skip_value()?,
        }
    }
    out.ok_or(FB)
}

/// A data object (or a bare top-level object) whose first key, `first`, has been read.
/// `top`: the object is the frame's top level, where a `"stream"` key would make it a wrapper.
#[inline(always)]
fn content<'a>(
    s: &mut Scanner<'a>,
    first: &[u8],
    top: bool,
    scratch: &mut DecodeScratch,
) -> Result<Decoded<'a>, DecodeError> {
    match first {
        b"e" => match Kind::of_event(s.string()?) {
            Kind::Depth => depth(s, top, scratch),
            Kind::Trade => trade(s, top),
            Kind::AggTrade => agg_trade(s, top),
            _ => ignored_event(s, top),
        },
        b"u" => book_ticker(s, top),
        b"lastUpdateId" => snapshot(s, top, scratch),
        _ => Err(FB),
    }
}

/// Marks field `bit` as read; a second read is the general path's `DuplicateField`.
#[inline(always)]
fn mark(seen: &mut u16, bit: u16) -> Result<(), DecodeError> {
    if *seen & bit != 0 {
        return Err(FB);
    }
    *seen |= bit;
    Ok(())
}

/// Keys that would change how the general path classifies the object.
#[inline(always)]
fn reclassifies(k: &[u8], top: bool) -> bool {
    matches!(k, b"e" | b"u" | b"lastUpdateId") || (top && k == b"stream")
}

/// `{"u":…` — the update id is next.
fn book_ticker<'a>(s: &mut Scanner<'a>, top: bool) -> Result<Decoded<'a>, DecodeError> {
    let update_id = s.uint()?;
    let (mut symbol, mut bid_px, mut bid_qty, mut ask_px, mut ask_qty): (&[u8], _, _, _, _) = (&[], 0, 0, 0, 0);
    let mut seen = 0u16;
    while s.more()? {
        let k = s.key()?;
        match k {
            b"s" => {
                mark(&mut seen, 1)?;
                symbol = s.string()?;
            }
            b"b" => {
                mark(&mut seen, 2)?;
                bid_px = s.fixed8()?;
            }
            b"B" => {
                mark(&mut seen, 4)?;
                bid_qty = s.fixed8()?;
            }
            b"a" => {
                mark(&mut seen, 8)?;
                ask_px = s.fixed8()?;
            }
            b"A" => {
                mark(&mut seen, 16)?;
                ask_qty = s.fixed8()?;
            }
            _ if reclassifies(k, top) => return Err(FB),
            _ => s.skip_value()?,
        };
    }
    if seen != 31 {
        return Err(FB);
    }
    Ok(Decoded::BookTicker(BookTicker {
        symbol,
        update_id,
        bid_px: Px(bid_px),
        bid_qty: Qty(bid_qty),
        ask_px: Px(ask_px),
        ask_qty: Qty(ask_qty),
    }))
}

/// `{"e":"depthUpdate",…`
fn depth<'a>(s: &mut Scanner<'a>, top: bool, scratch: &mut DecodeScratch) -> Result<Decoded<'a>, DecodeError> {
    let (mut symbol, mut event_time_ms, mut first_id, mut final_id): (&[u8], _, _, _) = (&[], 0, 0, 0);
    let mut seen = 0u16;
    while s.more()? {
        let k = s.key()?;
        match k {
            b"E" => {
                mark(&mut seen, 1)?;
                event_time_ms = s.uint()?;
            }
            b"s" => {
                mark(&mut seen, 2)?;
                symbol = s.string()?;
            }
            b"U" => {
                mark(&mut seen, 4)?;
                first_id = s.uint()?;
            }
            b"u" => {
                mark(&mut seen, 8)?;
                final_id = s.uint()?;
            }
            b"b" => {
                mark(&mut seen, 16)?;
                s.levels(&mut scratch.bids)?;
            }
            b"a" => {
                mark(&mut seen, 32)?;
                s.levels(&mut scratch.asks)?;
            }
            b"e" => return Err(FB),
            b"stream" if top => return Err(FB),
            _ => s.skip_value()?,
        };
    }
    if seen != 63 {
        return Err(FB);
    }
    Ok(Decoded::Depth(DepthHeader { symbol, event_time_ms, first_id, final_id }))
}

/// `{"e":"trade",…`
fn trade<'a>(s: &mut Scanner<'a>, top: bool) -> Result<Decoded<'a>, DecodeError> {
    let mut t = Trade {
        symbol: &[],
        event_time_ms: 0,
        trade_id: 0,
        px: Px::ZERO,
        qty: Qty::ZERO,
        trade_time_ms: 0,
        buyer_is_maker: false,
    };
    let mut seen = 0u16;
    while s.more()? {
        let k = s.key()?;
        match k {
            b"E" => {
                mark(&mut seen, 1)?;
                t.event_time_ms = s.uint()?;
            }
            b"s" => {
                mark(&mut seen, 2)?;
                t.symbol = s.string()?;
            }
            b"t" => {
                mark(&mut seen, 4)?;
                t.trade_id = s.uint()?;
            }
            b"p" => {
                mark(&mut seen, 8)?;
                t.px = Px(s.fixed8()?);
            }
            b"q" => {
                mark(&mut seen, 16)?;
                t.qty = Qty(s.fixed8()?);
            }
            b"T" => {
                mark(&mut seen, 32)?;
                t.trade_time_ms = s.uint()?;
            }
            b"m" => {
                mark(&mut seen, 64)?;
                t.buyer_is_maker = s.boolean()?;
            }
            b"e" => return Err(FB),
            b"stream" if top => return Err(FB),
            _ => s.skip_value()?,
        };
    }
    if seen != 127 {
        return Err(FB);
    }
    Ok(Decoded::Trade(t))
}

/// `{"e":"aggTrade",…`
fn agg_trade<'a>(s: &mut Scanner<'a>, top: bool) -> Result<Decoded<'a>, DecodeError> {
    let mut t = AggTrade {
        symbol: &[],
        event_time_ms: 0,
        agg_id: 0,
        px: Px::ZERO,
        qty: Qty::ZERO,
        first_trade_id: 0,
        last_trade_id: 0,
        trade_time_ms: 0,
        buyer_is_maker: false,
    };
    let mut seen = 0u16;
    while s.more()? {
        let k = s.key()?;
        match k {
            b"E" => {
                mark(&mut seen, 1)?;
                t.event_time_ms = s.uint()?;
            }
            b"s" => {
                mark(&mut seen, 2)?;
                t.symbol = s.string()?;
            }
            b"a" => {
                mark(&mut seen, 4)?;
                t.agg_id = s.uint()?;
            }
            b"p" => {
                mark(&mut seen, 8)?;
                t.px = Px(s.fixed8()?);
            }
            b"q" => {
                mark(&mut seen, 16)?;
                t.qty = Qty(s.fixed8()?);
            }
            b"f" => {
                mark(&mut seen, 32)?;
                t.first_trade_id = s.uint()?;
            }
            b"l" => {
                mark(&mut seen, 64)?;
                t.last_trade_id = s.uint()?;
            }
            b"T" => {
                mark(&mut seen, 128)?;
                t.trade_time_ms = s.uint()?;
            }
            b"m" => {
                mark(&mut seen, 256)?;
                t.buyer_is_maker = s.boolean()?;
            }
            b"e" => return Err(FB),
            b"stream" if top => return Err(FB),
            _ => s.skip_value()?,
        };
    }
    if seen != 511 {
        return Err(FB);
    }
    Ok(Decoded::AggTrade(t))
}

/// `{"lastUpdateId":…` — the id is next.
fn snapshot<'a>(s: &mut Scanner<'a>, top: bool, scratch: &mut DecodeScratch) -> Result<Decoded<'a>, DecodeError> {
    let last_update_id = s.uint()?;
    let mut seen = 0u16;
    while s.more()? {
        let k = s.key()?;
        match k {
            b"bids" => {
                mark(&mut seen, 1)?;
                s.levels(&mut scratch.bids)?;
            }
            b"asks" => {
                mark(&mut seen, 2)?;
                s.levels(&mut scratch.asks)?;
            }
            b"e" | b"lastUpdateId" => return Err(FB),
            b"stream" if top => return Err(FB),
            _ => s.skip_value()?,
        };
    }
    if seen != 3 {
        return Err(FB);
    }
    Ok(Decoded::Snapshot(SnapshotHeader { last_update_id }))
}

/// `{"e":"<an event the engine does not use>",…`: checked, then ignored.
fn ignored_event<'a>(s: &mut Scanner<'a>, top: bool) -> Result<Decoded<'a>, DecodeError> {
    while s.more()? {
        let k = s.key()?;
        if k == b"e" || (top && k == b"stream") {
            return Err(FB);
        }
        s.skip_value()?;
    }
    Ok(Decoded::Ignored)
}

/// Containers nested deeper than this inside a skipped value go to the general path.
const MAX_SKIP_DEPTH: u32 = 64;

/// A cursor over the frame. Invariant: `i <= b.len()`.
struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    /// The byte at the cursor, or 0 at the end (0 is never expected, so it is always an error).
    #[inline(always)]
    fn peek(&self) -> u8 {
        match self.b.get(self.i) {
            Some(&c) => c,
            None => 0,
        }
    }

    /// The frame from the cursor on.
    #[inline(always)]
    fn rest(&self) -> &'a [u8] {
        self.b.get(self.i..).unwrap_or_default()
    }

    /// The error for an unexpected byte at `at`: the frame ended early (certainly invalid, as
    /// the scanner is always inside the top-level object), or a shape for the general path.
    #[cold]
    #[inline(never)]
    fn unexpected_at(&self, at: usize) -> DecodeError {
        if at >= self.b.len() { DecodeError::Syntax } else { FB }
    }

    #[inline(always)]
    fn unexpected(&self) -> DecodeError {
        self.unexpected_at(self.i)
    }

    /// Skips JSON whitespace.
    #[inline(always)]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    #[inline(always)]
    fn expect(&mut self, c: u8) -> Result<(), DecodeError> {
        if self.peek() == c {
            self.i += 1;
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    /// After an object member: `true` at `,` (a member follows), `false` at `}`.
    #[inline(always)]
    fn more(&mut self) -> Result<bool, DecodeError> {
        self.ws();
        match self.peek() {
            b',' => {
                self.i += 1;
                Ok(true)
            }
            b'}' => {
                self.i += 1;
                Ok(false)
            }
            _ => Err(self.unexpected()),
        }
    }

    /// Reads `"key":` with the whitespace around it, leaving the cursor on the value.
    #[inline(always)]
    fn key(&mut self) -> Result<&'a [u8], DecodeError> {
        self.ws();
        let i = self.i;
        // Binance's keys are mostly one byte: `"u":`.
        let k = match (self.b.get(i), self.b.get(i + 1), self.b.get(i + 2)) {
            (Some(b'"'), Some(&c), Some(b'"')) if c > b'"' && c < 0x80 && c != b'\\' => {
                self.i = i + 3;
                &self.b[i + 1..i + 2]
            }
            _ => self.string()?,
        };
        self.ws();
        self.expect(b':')?;
        self.ws();
        Ok(k)
    }

    /// Reads a string of printable ASCII without escapes and returns its bytes, which are then
    /// exactly its value. Any other string (or a non-string) is for the general path.
    #[inline(always)]
    fn string(&mut self) -> Result<&'a [u8], DecodeError> {
        self.expect(b'"')?;
        let start = self.i;
        match plain_end(self.rest()) {
            Some(len) => {
                self.i = start + len + 1;
                Ok(&self.b[start..start + len])
            }
            None => {
                // Where the plain text stops: the end of the frame, or an escape, control or
                // non-ASCII byte.
                let stop = start + self.b[start..].iter().take_while(|&&c| is_plain(c)).count();
                Err(self.unexpected_at(stop))
            }
        }
    }

    /// An id: a JSON integer in `u64`, written without sign, fraction or exponent. Not inlined,
    /// like [`Scanner::fixed8`]: this tier is the rare one, so it favours code size.
    #[inline(never)]
    fn uint(&mut self) -> Result<u64, DecodeError> {
        let rest = self.rest();
        let (v, end) = match swar_u64(rest) {
            Some((v, tail)) => (v, self.i + (rest.len() - tail.len())),
            None => self.uint_slow()?,
        };
        // A fraction or exponent makes it a JSON number that is not an integer.
        if let Some(b'.' | b'e' | b'E') = self.b.get(end) {
            return Err(FB);
        }
        self.i = end;
        Ok(v)
    }

    #[cold]
    fn uint_slow(&self) -> Result<(u64, usize), DecodeError> {
        let b = self.b;
        let mut j = self.i;
        match b.get(j) {
            Some(b'0') => {
                return match b.get(j + 1) {
                    Some(b'0'..=b'9') => Err(FB),
                    _ => Ok((0, j + 1)),
                };
            }
            Some(b'1'..=b'9') => {}
            _ => return Err(self.unexpected()),
        }
        let mut v: u64 = 0;
        while let Some(&c) = b.get(j) {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            v = v.checked_mul(10).and_then(|v| v.checked_add(u64::from(d))).ok_or(FB)?;
            j += 1;
        }
        Ok((v, j))
    }

    /// A price or quantity string, exactly as [`parse_fixed8`] converts it.
    #[inline(never)]
    fn fixed8(&mut self) -> Result<i64, DecodeError> {
        if self.peek() == b'"' {
            let body = &self.rest()[1..];
            if let Some((v, tail)) = swar_fixed8(body) {
                self.i += 1 + (body.len() - tail.len());
                return Ok(v);
            }
        }
        let s = self.string()?;
        parse_fixed8(s).map_err(|_| FB)
    }

    #[inline(always)]
    fn boolean(&mut self) -> Result<bool, DecodeError> {
        let rest = self.b.get(self.i..).unwrap_or_default();
        if rest.starts_with(b"true") {
            self.i += 4;
            Ok(true)
        } else if rest.starts_with(b"false") {
            self.i += 5;
            Ok(false)
        } else {
            Err(self.unexpected())
        }
    }

    /// `[["px","qty"],…]` into `out`, which must not grow.
    #[inline(always)]
    fn levels(&mut self, out: &mut Vec<Level>) -> Result<(), DecodeError> {
        self.expect(b'[')?;
        self.ws();
        if self.peek() == b']' {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.expect(b'[')?;
            self.ws();
            let px = self.fixed8()?;
            self.ws();
            self.expect(b',')?;
            self.ws();
            let qty = self.fixed8()?;
            self.ws();
            self.expect(b']')?;
            if out.len() == out.capacity() {
                return Err(FB);
            }
            out.push(Level { px: Px(px), qty: Qty(qty) });
            self.ws();
            match self.peek() {
                b',' => {
                    self.i += 1;
                    self.ws();
                }
                b']' => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.unexpected()),
            }
        }
    }

    /// Skips one JSON value, checking its structure, without recursion.
    fn skip_value(&mut self) -> Result<(), DecodeError> {
        // Bit d of `objects`: the container d levels out from the innermost is an object.
        let mut objects: u64 = 0;
        let mut depth: u32 = 0;
        loop {
            // A value starts at the cursor (whitespace already skipped).
            match self.peek() {
                b'"' => {
                    self.string()?;
                }
                c @ (b'{' | b'[') => {
                    if depth == MAX_SKIP_DEPTH {
                        return Err(FB);
                    }
                    let obj = c == b'{';
                    self.i += 1;
                    self.ws();
                    if self.peek() != if obj { b'}' } else { b']' } {
                        objects = (objects << 1) | u64::from(obj);
                        depth += 1;
                        if obj {
                            self.key()?;
                        }
                        continue;
                    }
                    self.i += 1;
                }
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                b'-' | b'0'..=b'9' => self.skip_number()?,
                _ => return Err(self.unexpected()),
            }
            // A value ended: close containers until one has another element, or finish.
            loop {
                if depth == 0 {
                    return Ok(());
                }
                self.ws();
                let obj = objects & 1 == 1;
                match self.peek() {
                    b',' => {
                        self.i += 1;
                        if obj {
                            self.key()?;
                        } else {
                            self.ws();
                        }
                        break;
                    }
                    b'}' if obj => {}
                    b']' if !obj => {}
                    _ => return Err(self.unexpected()),
                }
                self.i += 1;
                objects >>= 1;
                depth -= 1;
            }
        }
    }

    #[inline]
    fn literal(&mut self, lit: &[u8]) -> Result<(), DecodeError> {
        if self.b.get(self.i..).unwrap_or_default().starts_with(lit) {
            self.i += lit.len();
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    /// A JSON number in a skipped value. What simd-json might refuse as out of range goes to
    /// the general path: an exponent, an integer outside `i64::MIN..=u64::MAX`, or a decimal of
    /// more than 18 digits.
    fn skip_number(&mut self) -> Result<(), DecodeError> {
        let b = self.b;
        let mut j = self.i;
        let neg = b.get(j) == Some(&b'-');
        j += usize::from(neg);
        let int_start = j;
        let mut magnitude: Option<u64> = Some(0);
        while let Some(&c @ b'0'..=b'9') = b.get(j) {
            magnitude = magnitude.and_then(|m| m.checked_mul(10)?.checked_add(u64::from(c - b'0')));
            j += 1;
        }
        let mut digits = j - int_start;
        if digits == 0 || (digits > 1 && b[int_start] == b'0') {
            return Err(self.unexpected_at(j));
        }
        let mut decimal = false;
        if let Some(b'.') = b.get(j) {
            j += 1;
            let frac_start = j;
            while let Some(b'0'..=b'9') = b.get(j) {
                j += 1;
            }
            if j == frac_start {
                return Err(self.unexpected_at(j));
            }
            digits += j - frac_start;
            decimal = true;
        }
        if let Some(b'e' | b'E') = b.get(j) {
            return Err(FB);
        }
        let in_range = match magnitude {
            _ if decimal => digits <= 18,
            Some(m) => !neg || m <= 1 << 63,
            None => false,
        };
        if !in_range {
            return Err(FB);
        }
        self.i = j;
        Ok(())
    }
}

// ---- SWAR number parsing ------------------------------------------------------------------------
//
// Eight ASCII bytes are loaded little-endian into a `u64`, so the first character is the lowest
// byte.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The first eight bytes of `s`, if it has them.
#[inline(always)]
fn load8(s: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(*s.first_chunk::<8>()?))
}

/// The high bit of every byte that is not an ASCII digit. Exact up to and including the first
/// non-digit (borrows and carries only travel upwards from it), so `== 0` means "all eight are
/// digits" and `trailing_zeros() / 8` is the index of the first non-digit.
#[inline(always)]
const fn non_digits(w: u64) -> u64 {
    (w.wrapping_sub(0x30 * ONES) | w.wrapping_add(0x46 * ONES)) & HIGH
}

/// The value of eight ASCII digits (the first one most significant). Three steps join
/// neighbouring lanes — digits, then pairs, then fours — with one multiplication each: with
/// every other lane of `s` bits masked off, `x * (1 + (k << s)) >> s` puts `lane * k + next
/// lane` in each lane (no sum overflows its lane).
#[inline(always)]
const fn digits8(w: u64) -> u64 {
    let w = (w & (0x0F * ONES)).wrapping_mul(1 + (10 << 8)) >> 8;
    let w = (w & 0x00FF_00FF_00FF_00FF).wrapping_mul(1 + (100 << 16)) >> 16;
    (w & 0x0000_FFFF_0000_FFFF).wrapping_mul(1 + (10_000 << 32)) >> 32
}

/// The value of the first `n` (1..=7) digits of `w`: shifting them to the top makes the
/// vacated low bytes leading zeros.
#[inline(always)]
const fn leading_digits(w: u64, n: usize) -> u64 {
    if n == 1 {
        // Spelled out for the compiler, which cannot see through `digits8`'s multiplications
        // that the other seven are zeros: most quantities have one integer digit.
        return w & 0x0F;
    }
    digits8(w << (64 - 8 * n))
}

/// The high bit of every zero byte; exact up to and including the first one.
#[inline(always)]
const fn zero_bytes(w: u64) -> u64 {
    w.wrapping_sub(ONES) & !w & HIGH
}

/// A byte a plain string may hold: ASCII from space to DEL, other than `"` and `\`.
#[inline(always)]
const fn is_plain(c: u8) -> bool {
    c >= 0x20 && c < 0x80 && c != b'"' && c != b'\\'
}

/// The high bit of every byte that is not plain (see [`is_plain`]): quote, backslash, control
/// (below 0x20), non-ASCII. Each mask is exact at its first byte, so the lowest bit of their
/// union is exact.
#[inline(always)]
const fn stops(w: u64) -> u64 {
    zero_bytes(w ^ (b'"' as u64 * ONES))
        | zero_bytes(w ^ (b'\\' as u64 * ONES))
        | (w.wrapping_sub(0x20 * ONES) & !w & HIGH)
        | (w & HIGH)
}

/// The high bit of every byte outside `lo..=hi` (both ASCII); exact up to and including the
/// first one (a borrow only leaves a byte below `lo`, a carry only one of 0x80 and above).
#[inline(always)]
const fn outside(w: u64, lo: u8, hi: u8) -> u64 {
    (w.wrapping_sub(lo as u64 * ONES) | w.wrapping_add((0x7F - hi) as u64 * ONES) | w) & HIGH
}

/// `p` plus the index in `w` of the byte that the lowest bit of `stop` (non-zero) flags, if
/// that byte is `end`.
#[inline(always)]
fn stop_is(w: u64, stop: u64, end: u8, p: usize) -> Option<usize> {
    // A branch per length (see `swar_fixed8`): symbols keep their length.
    match stop.trailing_zeros() / 8 {
        0 => byte_at::<0>(w, end, p),
        1 => byte_at::<1>(w, end, p),
        2 => byte_at::<2>(w, end, p),
        3 => byte_at::<3>(w, end, p),
        4 => byte_at::<4>(w, end, p),
        5 => byte_at::<5>(w, end, p),
        6 => byte_at::<6>(w, end, p),
        _ => byte_at::<7>(w, end, p),
    }
}

/// `p + K` if byte `K` of `w` is `c`.
#[inline(always)]
fn byte_at<const K: usize>(w: u64, c: u8, p: usize) -> Option<usize> {
    ((w >> (8 * K)) as u8 == c).then_some(p + K)
}

/// The index of the closing quote of a string body `s` made only of plain bytes (see
/// [`is_plain`]); `None` if the body holds any other byte first, or ends.
#[inline(always)]
fn plain_end(s: &[u8]) -> Option<usize> {
    let mut p = 0;
    while let Some(w) = s.get(p..).and_then(load8) {
        let stop = stops(w);
        if stop != 0 {
            return stop_is(w, stop, b'"', p);
        }
        p += 8;
    }
    while let Some(&c) = s.get(p) {
        if c == b'"' {
            return Some(p);
        }
        if !is_plain(c) {
            return None;
        }
        p += 1;
    }
    None
}

/// Tier 1's symbol in a data object: the index of the closing quote of a string body `s` made
/// of bytes in `'0'..='Z'` — digits and capitals, as Binance writes symbols, and the few plain
/// punctuation marks between them, for a single range test. Any other symbol is the
/// scanner's.
#[inline(always)]
fn symbol_end(s: &[u8]) -> Option<usize> {
    word_end(s, |w| outside(w, b'0', b'Z'), b'"')
}

/// Tier 1's symbol in a stream name: the index of the first `@` in a string body `s`, if the
/// bytes before it are in `'0'..='z'` other than `\` — digits and letters, as Binance writes
/// stream names, and some plain punctuation.
#[inline(always)]
fn stream_symbol_end(s: &[u8]) -> Option<usize> {
    let stops =
        |w: u64| outside(w, b'0', b'z') | zero_bytes(w ^ (b'@' as u64 * ONES)) | zero_bytes(w ^ (b'\\' as u64 * ONES));
    word_end(s, stops, b'@')
}

/// The index in `s` of the first byte that `stops` flags (exactly, as [`outside`] does), if it
/// is `end`. `None` when fewer than 8 bytes are left to load: tier 1 reads symbols, which more
/// of the frame always follows.
#[inline(always)]
fn word_end(s: &[u8], stops: impl Fn(u64) -> u64, end: u8) -> Option<usize> {
    let mut p = 0;
    while let Some(w) = s.get(p..).and_then(load8) {
        let stop = stops(w);
        if stop != 0 {
            return stop_is(w, stop, end, p);
        }
        p += 8;
    }
    None
}

const POW10: [u64; 8] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000];

/// A JSON integer of 1..=15 digits at the start of `s`, without a leading zero: `(value, the
/// rest of s)`. `None` for anything else, including fewer than 8 (or 16) bytes to load (the slow
/// path decides).
#[inline(always)]
fn swar_u64(s: &[u8]) -> Option<(u64, &[u8])> {
    let (&c1, after1) = s.split_first_chunk::<8>()?;
    let w1 = u64::from_le_bytes(c1);
    if (w1 & 0xFF) == u64::from(b'0') {
        return None;
    }
    let short = non_digits(w1);
    if short != 0 {
        // A branch per digit count (see `swar_fixed8`): ids keep their length.
        return match short.trailing_zeros() / 8 {
            1 => Some((leading_digits(w1, 1), s.get(1..)?)),
            2 => Some((leading_digits(w1, 2), s.get(2..)?)),
            3 => Some((leading_digits(w1, 3), s.get(3..)?)),
            4 => Some((leading_digits(w1, 4), s.get(4..)?)),
            5 => Some((leading_digits(w1, 5), s.get(5..)?)),
            6 => Some((leading_digits(w1, 6), s.get(6..)?)),
            7 => Some((leading_digits(w1, 7), s.get(7..)?)),
            _ => None,
        };
    }
    // Eight digits and more: Binance's ids and times (11 and 13 digits) go straight here.
    let w2 = load8(after1)?;
    let hi = digits8(w1);
    match non_digits(w2).trailing_zeros() / 8 {
        0 => Some((hi, after1)),
        1 => Some((hi * POW10[1] + leading_digits(w2, 1), after1.get(1..)?)),
        2 => Some((hi * POW10[2] + leading_digits(w2, 2), after1.get(2..)?)),
        3 => Some((hi * POW10[3] + leading_digits(w2, 3), after1.get(3..)?)),
        4 => Some((hi * POW10[4] + leading_digits(w2, 4), after1.get(4..)?)),
        5 => Some((hi * POW10[5] + leading_digits(w2, 5), after1.get(5..)?)),
        6 => Some((hi * POW10[6] + leading_digits(w2, 6), after1.get(6..)?)),
        7 => Some((hi * POW10[7] + leading_digits(w2, 7), after1.get(7..)?)),
        _ => None,
    }
}

/// A price/quantity string body at the start of `s` of the form `d{1,7}.d{8}"` (Binance's):
/// `(raw 1e-8 units, the rest of s after the closing quote)`. Agrees with [`parse_fixed8`] on every input
/// it accepts; `None` for any other form (the caller then uses `parse_fixed8`).
#[inline(always)]
pub(crate) fn swar_fixed8(s: &[u8]) -> Option<(i64, &[u8])> {
    if let Some((win, _)) = s.split_first_chunk::<17>() {
        // One window holds the whole body and its closing quote (the common case). Branching
        // on the digit count, rather than computing with it, lets the CPU run ahead at each
        // call site (prices keep their number of integer digits frame after frame) instead of
        // waiting for the count to locate the next field.
        let w1 = u64::from_le_bytes(*win.first_chunk::<8>()?);
        return match non_digits(w1).trailing_zeros() / 8 {
            1 => Some((fixed8_window::<1>(win, w1)?, s.get(1 + 10..)?)),
            2 => Some((fixed8_window::<2>(win, w1)?, s.get(2 + 10..)?)),
            3 => Some((fixed8_window::<3>(win, w1)?, s.get(3 + 10..)?)),
            4 => Some((fixed8_window::<4>(win, w1)?, s.get(4 + 10..)?)),
            5 => Some((fixed8_window::<5>(win, w1)?, s.get(5 + 10..)?)),
            6 => Some((fixed8_window::<6>(win, w1)?, s.get(6 + 10..)?)),
            7 => Some((fixed8_window::<7>(win, w1)?, s.get(7 + 10..)?)),
            _ => None,
        };
    }
    // Near the end of the frame.
    let w1 = load8(s)?;
    let n = (non_digits(w1).trailing_zeros() / 8) as usize;
    if n == 0 || n == 8 || s[n] != b'.' || s.get(n + 9) != Some(&b'"') {
        return None;
    }
    let w2 = load8(s.get(n + 1..)?)?;
    if non_digits(w2) != 0 {
        return None;
    }
    let raw = leading_digits(w1, n) * 100_000_000 + digits8(w2);
    // At most 7 integer digits: raw < 1e15, far inside i64.
    Some((raw as i64, s.get(n + 10..)?))
}

/// The value of a body with `N` (1..=7) integer digits, all in `win` (see [`swar_fixed8`]).
#[inline(always)]
fn fixed8_window<const N: usize>(win: &[u8; 17], w1: u64) -> Option<i64> {
    let w2 = u64::from_le_bytes(*win[N + 1..].first_chunk::<8>()?);
    if win[N] != b'.' || win[N + 9] != b'"' || non_digits(w2) != 0 {
        return None;
    }
    // At most 7 integer digits: the value is below 1e15, far inside i64.
    Some((leading_digits(w1, N) * 100_000_000 + digits8(w2)) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `swar_fixed8`, and the scanner's whole conversion, on `"body"` followed by `tail`,
    /// against `parse_fixed8`.
    fn check_fixed8(body: &[u8], tail: &[u8]) -> Result<(), TestCaseError> {
        let mut buf = vec![b'"'];
        buf.extend_from_slice(body);
        buf.push(b'"');
        buf.extend_from_slice(tail);
        let shown = String::from_utf8_lossy(body);
        if let Some((v, tail)) = swar_fixed8(&buf[1..]) {
            prop_assert_eq!(tail, &buf[body.len() + 2..], "after the closing quote of {:?}", shown);
            prop_assert_eq!(Ok(v), parse_fixed8(body), "{:?}", shown);
        }
        if body.contains(&b'"') {
            // The string ends at that quote: not a test of the conversion.
            return Ok(());
        }
        let mut s = Scanner { b: &buf, i: 0 };
        match (s.fixed8(), parse_fixed8(body)) {
            (Ok(v), want) => {
                prop_assert_eq!(Ok(v), want, "{:?}", shown);
                prop_assert_eq!(s.i, body.len() + 2);
            }
            // Refused only when the body is not a plain string the scanner reads (the general
            // path then unescapes and converts it).
            (Err(e), Ok(_)) => prop_assert!(
                body.iter().any(|&c| c == b'"' || c == b'\\' || !(0x20..0x80).contains(&c)),
                "{:?}: {:?}",
                shown,
                e
            ),
            (Err(_), Err(_)) => {}
        }
        Ok(())
    }

    #[test]
    fn swar_fixed8_takes_binance_strings() {
        let b = b"61837.63000000\"";
        assert_eq!(swar_fixed8(b), Some((6_183_763_000_000, &b""[..])));
        assert_eq!(swar_fixed8(b"0.00000001\"x"), Some((1, &b"x"[..])));
        assert_eq!(swar_fixed8(b"9999999.99999999\",\"1\"]"), Some((999_999_999_999_999, &b",\"1\"]"[..])));
        // Not its form: left to parse_fixed8.
        for s in [
            &b"12345678.00000000\""[..],
            b"-1.00000000\"",
            b".00000000\"",
            b"1.0000000\"",
            b"1.000000000\"",
            b"1.0000000x\"",
        ] {
            assert_eq!(swar_fixed8(s), None, "{:?}", String::from_utf8_lossy(s));
        }
        // Too short for the loads.
        assert_eq!(swar_fixed8(b"1.00000000"), None);
    }

    #[test]
    fn swar_u64_matches_decimal() {
        for v in [1u64, 9, 10, 12_345_678, 123_456_789, 50_093_239_212, 1_723_161_255_208, 999_999_999_999_999] {
            let s = format!("{v},\"x\":12345678}}");
            assert_eq!(swar_u64(s.as_bytes()), Some((v, &s.as_bytes()[v.to_string().len()..])), "{v}");
        }
        assert_eq!(swar_u64(b"0,\"abcdefgh"), None);
        assert_eq!(swar_u64(b"1234567890123456,"), None);
    }

    #[test]
    fn tier1_symbols_take_binance_spellings() {
        assert_eq!(symbol_end(b"BTCUSDT\",\"b\":\"1"), Some(7));
        assert_eq!(symbol_end(b"1000SATSUSDT\",\"b\":\"1"), Some(12));
        assert_eq!(stream_symbol_end(b"btcusdt@bookTicker\""), Some(7));
        assert_eq!(stream_symbol_end(b"1000satsusdt@depth@100ms\""), Some(12));
        // Left to the scanner: other spellings, escapes, the wrong end, too little to load.
        for s in [&b"btcusdt\",\"b\":\"1"[..], b"BTC\\u0055SDT\",", b"BTC USDT\",\"b\"", b"BTC\"}"] {
            assert_eq!(symbol_end(s), None, "{}", String::from_utf8_lossy(s));
        }
        for s in [&b"btc\\u0040usdt@trade\""[..], b"btc\"@trade\",\"data\"", b"btcusdt\",\"data\":{}", b"btc@"] {
            assert_eq!(stream_symbol_end(s), None, "{}", String::from_utf8_lossy(s));
        }
    }

    proptest! {
        #[test]
        fn outside_flags_the_first_byte_out_of_range(bytes in any::<[u8; 8]>(), lo in 0u8..0x80, hi in 0u8..0x80) {
            let stop = outside(u64::from_le_bytes(bytes), lo, hi);
            let first = bytes.iter().position(|c| !(lo..=hi).contains(c));
            prop_assert_eq!(first.map(|i| 8 * i + 7), (stop != 0).then(|| stop.trailing_zeros() as usize));
        }

        #[test]
        fn tier1_symbols_are_plain_strings(
            symbol in "[0-9A-Za-z]{0,10}[0-9A-Za-z@\\\\\" ~\u{1}\u{e9}]?[0-9A-Za-z]{0,4}",
            tail in "[\"@]?[0-9a-z\",@:]{0,12}",
        ) {
            // The scanner's rule (plain bytes up to the closing quote) is the general path's for
            // a symbol; tier 1 may take fewer, never more, and must find the same end.
            for symbol in [symbol.clone(), symbol.to_ascii_uppercase()] {
                let s = [symbol.as_bytes(), tail.as_bytes()].concat();
                if let Some(i) = symbol_end(&s) {
                    prop_assert_eq!(plain_end(&s), Some(i));
                    prop_assert!(s[..i].iter().all(|c| (b'0'..=b'Z').contains(c)));
                }
                if let Some(i) = stream_symbol_end(&s) {
                    prop_assert_eq!(s[i], b'@');
                    prop_assert!(s[..i].iter().all(|&c| is_plain(c) && c != b'@'));
                }
            }
        }

        #[test]
        fn swar_fixed8_agrees_with_parse_fixed8(body in "-?[0-9]{0,12}(\\.[0-9]{0,11})?", tail in "[0-9\"., ]{0,10}") {
            check_fixed8(body.as_bytes(), tail.as_bytes())?;
        }

        #[test]
        fn swar_fixed8_agrees_on_binance_shape(
            digits in 1u32..=9,
            int in any::<u64>(),
            frac in 0u64..100_000_000,
            tail in "[0-9\"., ]{0,10}",
        ) {
            // Every integer-digit count equally often (each has its own code).
            let int = int % 10u64.pow(digits);
            let body = format!("{int:0digits$}.{frac:08}", digits = digits as usize);
            check_fixed8(body.as_bytes(), tail.as_bytes())?;
        }

        #[test]
        fn swar_fixed8_agrees_on_any_bytes(body in proptest::collection::vec(any::<u8>(), 0..20), tail in proptest::collection::vec(any::<u8>(), 0..10)) {
            check_fixed8(&body, &tail)?;
        }

        #[test]
        fn uint_agrees_with_std(digits in 1u32..=20, v in any::<u64>(), tail in "[,}\\] ]{1,9}") {
            // Every digit count equally often (each has its own code), and long tails so that
            // the 8- and 16-byte loads are taken.
            let v = if digits == 20 { v } else { v % 10u64.pow(digits) };
            let s = format!("{v}{tail}12345678");
            let mut sc = Scanner { b: s.as_bytes(), i: 0 };
            prop_assert_eq!(sc.uint(), Ok(v));
            prop_assert_eq!(sc.i, v.to_string().len());
        }
    }
}
