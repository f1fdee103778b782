//! The general path: simd-json's tape over a copy of the frame, read by the rules in the
//! parent module's docs. Its answers are authoritative.
//!
//! Runs on the hot thread, rarely: for the frames the fast path hands over (unusual shapes and
//! every malformed frame). It copies the frame into a padded buffer and reuses simd-json's
//! buffers and tape, all kept in the [`DecodeScratch`]: it allocates only when a frame is larger
//! than the buffers' start-up size (they then grow, and keep their new size). Levels still never
//! grow the scratch.
//!
//! Symbols are returned as slices of the frame itself, found from where simd-json left the
//! string in the copy; a symbol written with escapes has no such slice and is
//! [`DecodeError::Unsupported`].

use super::{
    AggTrade, BookTicker, DecodeError, DecodeScratch, Decoded, DepthHeader, Kind, Level, SnapshotHeader, Trade,
};
use hft_shared::px::parse_fixed8;
use hft_shared::{Px, Qty};
use simd_json::prelude::{TypedValue, ValueAsScalar};
use simd_json::tape::{Object, Value};
use simd_json::{INPUT_PADDING, Tape, ValueType, fill_tape_padded};

use DecodeError::{BadNumber, DuplicateField, MissingField, StreamMismatch, TooManyLevels, Unsupported, WrongType};

/// The general path's reusable buffers (the frame's padded copy, simd-json's buffers, the tape).
pub(super) struct Buffers {
    input: Vec<u8>,
    simd: simd_json::Buffers,
    tape: Tape<'static>,
}

impl Buffers {
    /// Sized for a frame with `levels` levels per side (about 40 bytes and 3 tape nodes each).
    pub(super) fn for_levels(levels: usize) -> Self {
        let bytes = levels.saturating_mul(2 * 48).saturating_add(4096);
        let nodes = levels.saturating_mul(2 * 3).saturating_add(64);
        Self {
            input: Vec::with_capacity(bytes + INPUT_PADDING),
            simd: simd_json::Buffers::new(bytes),
            tape: Tape(Vec::with_capacity(nodes)),
        }
    }
}

impl core::fmt::Debug for Buffers {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("general::Buffers")
            .field("input_capacity", &self.input.capacity())
            .field("tape_capacity", &self.tape.0.capacity())
            .finish_non_exhaustive()
    }
}

/// Decodes any frame by the parent module's rules. Depth and snapshot levels replace the
/// scratch contents. Never returns [`DecodeError::Fallback`].
pub fn decode<'a>(frame: &'a [u8], scratch: &mut DecodeScratch) -> Result<Decoded<'a>, DecodeError> {
    scratch.clear_levels();
    let DecodeScratch { bids, asks, general: g } = scratch;
    g.input.clear();
    g.input.extend_from_slice(frame);
    g.input.resize(frame.len() + INPUT_PADDING, 0);
    let base = g.input.as_ptr() as usize;
    let mut tape = core::mem::replace(&mut g.tape, Tape(Vec::new())).reset();
    let out = match fill_tape_padded(&mut g.input, frame.len(), &mut g.simd, &mut tape) {
        Ok(()) => Reader { frame, base, bids, asks }.root(tape.as_value()),
        Err(_) => Err(DecodeError::Syntax),
    };
    g.tape = tape.reset();
    out
}

/// Reads a parsed frame. `base` is the address of the frame's copy that simd-json parsed.
struct Reader<'a, 's> {
    frame: &'a [u8],
    base: usize,
    bids: &'s mut Vec<Level>,
    asks: &'s mut Vec<Level>,
}

/// Stores a field's value, refusing a second occurrence.
#[inline]
fn once<T>(slot: &mut Option<T>, v: impl FnOnce() -> Result<T, DecodeError>) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(DuplicateField);
    }
    *slot = Some(v()?);
    Ok(())
}

fn uint(v: Value<'_, '_>) -> Result<u64, DecodeError> {
    match v.as_u64() {
        Some(x) => Ok(x),
        None => match v.value_type() {
            ValueType::I64 | ValueType::U64 | ValueType::F64 => Err(BadNumber),
            _ => Err(WrongType),
        },
    }
}

fn fixed8(v: Value<'_, '_>) -> Result<i64, DecodeError> {
    let s = v.as_str().ok_or(WrongType)?;
    parse_fixed8(s.as_bytes()).map_err(|_| BadNumber)
}

fn boolean(v: Value<'_, '_>) -> Result<bool, DecodeError> {
    v.as_bool().ok_or(WrongType)
}

/// `[["px","qty",…],…]` into `out`, which must not grow.
fn levels(v: Value<'_, '_>, out: &mut Vec<Level>) -> Result<(), DecodeError> {
    let arr = v.as_array().ok_or(WrongType)?;
    for lv in arr.iter() {
        if out.len() == out.capacity() {
            return Err(TooManyLevels);
        }
        let l = lv.as_array().ok_or(WrongType)?;
        let (Some(px), Some(qty)) = (l.get(0), l.get(1)) else {
            return Err(WrongType);
        };
        let (px, qty) = (fixed8(px)?, fixed8(qty)?);
        out.push(Level { px: Px(px), qty: Qty(qty) });
    }
    Ok(())
}

/// The kind a data object's content says it is.
fn classify(obj: &Object<'_, '_>) -> Result<Kind, DecodeError> {
    let mut e = None;
    let (mut snapshot, mut ticker) = (false, false);
    for (k, v) in obj.iter() {
        match k {
            "e" => once(&mut e, || Ok(v))?,
            "lastUpdateId" => snapshot = true,
            "u" => ticker = true,
            _ => {}
        }
    }
    Ok(match e {
        Some(e) => Kind::of_event(e.as_str().ok_or(WrongType)?.as_bytes()),
        None if snapshot => Kind::Snapshot,
        None if ticker => Kind::BookTicker,
        None => Kind::Ignored,
    })
}

impl<'a> Reader<'a, '_> {
    fn root(&mut self, v: Value<'_, '_>) -> Result<Decoded<'a>, DecodeError> {
        let obj = v.as_object().ok_or(WrongType)?;
        let (mut stream, mut streams, mut data, mut datas) = (None, 0, None, 0);
        for (k, v) in obj.iter() {
            match k {
                "stream" => {
                    streams += 1;
                    stream.get_or_insert(v);
                }
                "data" => {
                    datas += 1;
                    data.get_or_insert(v);
                }
                _ => {}
            }
        }
        let Some(stream) = stream else {
            return self.content(&obj, None);
        };
        if streams > 1 || datas > 1 {
            return Err(DuplicateField);
        }
        let name = stream.as_str().ok_or(WrongType)?;
        let data = data.ok_or(MissingField)?;
        match Kind::of_stream(name.as_bytes()) {
            Kind::Ignored => Ok(Decoded::Ignored),
            kind => self.content(&data.as_object().ok_or(WrongType)?, Some(kind)),
        }
    }

    /// A data object; `stream`: the kind its combined stream says it must be.
    fn content(&mut self, obj: &Object<'_, '_>, stream: Option<Kind>) -> Result<Decoded<'a>, DecodeError> {
        let kind = classify(obj)?;
        if stream.is_some_and(|s| s != kind) {
            return Err(StreamMismatch);
        }
        match kind {
            Kind::BookTicker => self.book_ticker(obj),
            Kind::Depth => self.depth(obj),
            Kind::Trade => self.trade(obj),
            Kind::AggTrade => self.agg_trade(obj),
            Kind::Snapshot => self.snapshot(obj),
            Kind::Ignored => Ok(Decoded::Ignored),
        }
    }

    /// The frame's own bytes for a string simd-json parsed, which it left (unescaped, in place)
    /// at the same offset in the copy.
    fn symbol(&self, v: Value<'_, '_>) -> Result<&'a [u8], DecodeError> {
        let s = v.as_str().ok_or(WrongType)?.as_bytes();
        let off = (s.as_ptr() as usize).wrapping_sub(self.base);
        let end = off.checked_add(s.len()).ok_or(Unsupported)?;
        match (self.frame.get(off..end), self.frame.get(end)) {
            // No backslash before the closing quote: the raw text was not escaped, so it is
            // the value itself.
            (Some(raw), Some(b'"')) if raw == s && !raw.contains(&b'\\') => Ok(raw),
            _ => Err(Unsupported),
        }
    }

    fn book_ticker(&mut self, obj: &Object<'_, '_>) -> Result<Decoded<'a>, DecodeError> {
        let (mut u, mut s, mut b, mut bq, mut a, mut aq) = (None, None, None, None, None, None);
        for (k, v) in obj.iter() {
            match k {
                "u" => once(&mut u, || uint(v))?,
                "s" => once(&mut s, || self.symbol(v))?,
                "b" => once(&mut b, || fixed8(v))?,
                "B" => once(&mut bq, || fixed8(v))?,
                "a" => once(&mut a, || fixed8(v))?,
                "A" => once(&mut aq, || fixed8(v))?,
                _ => {}
            }
        }
        Ok(Decoded::BookTicker(BookTicker {
            symbol: s.ok_or(MissingField)?,
            update_id: u.ok_or(MissingField)?,
            bid_px: Px(b.ok_or(MissingField)?),
            bid_qty: Qty(bq.ok_or(MissingField)?),
            ask_px: Px(a.ok_or(MissingField)?),
            ask_qty: Qty(aq.ok_or(MissingField)?),
        }))
    }

    fn depth(&mut self, obj: &Object<'_, '_>) -> Result<Decoded<'a>, DecodeError> {
        let (mut e, mut s, mut first, mut last, mut b, mut a) = (None, None, None, None, None, None);
        for (k, v) in obj.iter() {
            match k {
                "E" => once(&mut e, || uint(v))?,
                "s" => once(&mut s, || self.symbol(v))?,
                "U" => once(&mut first, || uint(v))?,
                "u" => once(&mut last, || uint(v))?,
                "b" => once(&mut b, || levels(v, self.bids))?,
                "a" => once(&mut a, || levels(v, self.asks))?,
                _ => {}
            }
        }
        b.ok_or(MissingField)?;
        a.ok_or(MissingField)?;
        Ok(Decoded::Depth(DepthHeader {
            symbol: s.ok_or(MissingField)?,
            event_time_ms: e.ok_or(MissingField)?,
            first_id: first.ok_or(MissingField)?,
            final_id: last.ok_or(MissingField)?,
        }))
    }

    fn trade(&mut self, obj: &Object<'_, '_>) -> Result<Decoded<'a>, DecodeError> {
        let (mut e, mut s, mut t, mut p, mut q, mut tt, mut m) = (None, None, None, None, None, None, None);
        for (k, v) in obj.iter() {
            match k {
                "E" => once(&mut e, || uint(v))?,
                "s" => once(&mut s, || self.symbol(v))?,
                "t" => once(&mut t, || uint(v))?,
                "p" => once(&mut p, || fixed8(v))?,
                "q" => once(&mut q, || fixed8(v))?,
                "T" => once(&mut tt, || uint(v))?,
                "m" => once(&mut m, || boolean(v))?,
                _ => {}
            }
        }
        Ok(Decoded::Trade(Trade {
            symbol: s.ok_or(MissingField)?,
            event_time_ms: e.ok_or(MissingField)?,
            trade_id: t.ok_or(MissingField)?,
            px: Px(p.ok_or(MissingField)?),
            qty: Qty(q.ok_or(MissingField)?),
            trade_time_ms: tt.ok_or(MissingField)?,
            buyer_is_maker: m.ok_or(MissingField)?,
        }))
    }

    fn agg_trade(&mut self, obj: &Object<'_, '_>) -> Result<Decoded<'a>, DecodeError> {
        let (mut e, mut s, mut id, mut p, mut q) = (None, None, None, None, None);
        let (mut f, mut l, mut tt, mut m) = (None, None, None, None);
        for (k, v) in obj.iter() {
            match k {
                "E" => once(&mut e, || uint(v))?,
                "s" => once(&mut s, || self.symbol(v))?,
                "a" => once(&mut id, || uint(v))?,
                "p" => once(&mut p, || fixed8(v))?,
                "q" => once(&mut q, || fixed8(v))?,
                "f" => once(&mut f, || uint(v))?,
                "l" => once(&mut l, || uint(v))?,
                "T" => once(&mut tt, || uint(v))?,
                "m" => once(&mut m, || boolean(v))?,
                _ => {}
            }
        }
        Ok(Decoded::AggTrade(AggTrade {
            symbol: s.ok_or(MissingField)?,
            event_time_ms: e.ok_or(MissingField)?,
            agg_id: id.ok_or(MissingField)?,
            px: Px(p.ok_or(MissingField)?),
            qty: Qty(q.ok_or(MissingField)?),
            first_trade_id: f.ok_or(MissingField)?,
            last_trade_id: l.ok_or(MissingField)?,
            trade_time_ms: tt.ok_or(MissingField)?,
            buyer_is_maker: m.ok_or(MissingField)?,
        }))
    }

    fn snapshot(&mut self, obj: &Object<'_, '_>) -> Result<Decoded<'a>, DecodeError> {
        let (mut id, mut b, mut a) = (None, None, None);
        for (k, v) in obj.iter() {
            match k {
                "lastUpdateId" => once(&mut id, || uint(v))?,
                "bids" => once(&mut b, || levels(v, self.bids))?,
                "asks" => once(&mut a, || levels(v, self.asks))?,
                _ => {}
            }
        }
        b.ok_or(MissingField)?;
        a.ok_or(MissingField)?;
        Ok(Decoded::Snapshot(SnapshotHeader { last_update_id: id.ok_or(MissingField)? }))
    }
}
