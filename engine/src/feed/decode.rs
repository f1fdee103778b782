//! Binance spot market-data decoders: combined-stream frames and the REST depth snapshot.
//!
//! Runs on the hot thread. The fast path allocates nothing: depth levels are written into a
//! preallocated [`DecodeScratch`]. (Implementation pending — see `decode`.)

use hft_shared::{Px, Qty};

/// One price level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Level {
    pub px: Px,
    pub qty: Qty,
}

/// Preallocated space for the levels of a depth diff or snapshot. Never grows.
#[derive(Debug)]
pub struct DecodeScratch {
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
}

impl DecodeScratch {
    /// Room for `levels` levels per side (Binance snapshots have up to 5000).
    pub fn with_capacity(levels: usize) -> Self {
        Self { bids: Vec::with_capacity(levels), asks: Vec::with_capacity(levels) }
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
    /// Not valid JSON, or truncated.
    Syntax = 0,
    /// A required field is missing.
    MissingField = 1,
    /// A field has the wrong JSON type.
    WrongType = 2,
    /// A price or quantity is not an exact 8-decimal number.
    BadNumber = 3,
    /// More levels than the scratch can hold.
    TooManyLevels = 4,
}

impl DecodeError {
    pub const COUNT: usize = 5;
    pub const fn code(self) -> &'static str {
        match self {
            DecodeError::Syntax => "syntax",
            DecodeError::MissingField => "missing_field",
            DecodeError::WrongType => "wrong_type",
            DecodeError::BadNumber => "bad_number",
            DecodeError::TooManyLevels => "too_many_levels",
        }
    }
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// Decodes one frame. Depth and snapshot levels replace the scratch contents.
pub fn decode<'a>(_frame: &'a [u8], _scratch: &mut DecodeScratch) -> Result<Decoded<'a>, DecodeError> {
    Err(DecodeError::Syntax)
}
