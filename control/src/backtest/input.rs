//! Backtest inputs: capture files and Binance public-data trade CSVs, read ahead in chunks of
//! frames so that the pipeline is timed on its own.
//!
//! Runs on the backtest's thread (one per sweep variant); allocates (the chunk, once; line
//! buffers; the capture reader's own buffers).
//!
//! # Formats (detected per file from its content, gzip or plain)
//! * **capture**: `<recv_ns> <frame JSON>` per line, what `hft record` writes; replayed by the
//!   engine's [`ReplaySource`] exactly as `hft replay` does (snapshot attribution, diffs held
//!   for a snapshot, malformed lines counted), with each line's recorded time as decision time.
//! * **spot trades CSV** (`id,price,qty,quote_qty,time,is_buyer_maker,is_best_match`; the six
//!   columns of futures trades are accepted too) and **aggTrades CSV**
//!   (`agg_id,price,qty,first_trade_id,last_trade_id,time,is_buyer_maker,is_best_match`), with
//!   or without a header line. `time` is in milliseconds before 2025-01-01 and in microseconds
//!   from then on (Binance spot data); each value is read by its magnitude (below 10^14: ms;
//!   below 10^17: µs), so files of either era and mixed files work.
//!
//! Files are replayed in the order given, as one stream; captures and CSVs may be mixed. A
//! recorded time earlier than the previous frame's is taken as the previous one (counted in
//! `out_of_order`), so decision time never runs backwards.
//!
//! # Trades carry no book: the synthetic top of book
//! A trade shows where liquidity was: the aggressor traded against the resting side at the
//! trade price. So after each trade the top of book is, for a seller-initiated trade
//! (`is_buyer_maker = true`), best bid = the trade price and best ask = one tick
//! (`filters.tick_size`) above; for a buyer-initiated trade, best ask = the trade price and
//! best bid = one tick below. The quantity shown on both sides is the trade's quantity (what
//! is known to have rested there). The spread is therefore always one tick and the depth one
//! level: market orders larger than the last trade fill partly (the rest expires, as an IOC
//! would), and resting orders queue behind the last trade's quantity. Each trade becomes real
//! Binance frames the pipeline decodes: the `@trade` frame (aggTrades too, with the aggregate
//! id as trade id), then a `@depth@100ms` diff moving the book's single level per side, then a
//! `@bookTicker` of the new top (one strategy tick per trade). Before a symbol's first trade a
//! REST snapshot body seeds its book, so the book syncs by Binance's own procedure. The CSV's
//! symbol comes from its name (`BTCUSDT-trades-2024-08-08.csv`: the symbol before
//! `-trades-`/`-aggTrades-`, which must be configured); any other name means the only
//! configured symbol.

use flate2::bufread::MultiGzDecoder;
use hft_engine::feed::FrameKind;
use hft_engine::feed::replay::{Pace, ReplayCounters, ReplaySource};
use hft_shared::{Px, Qty, SymbolId};
use serde::Serialize;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Bytes of frames read ahead per chunk (a chunk ends after the frame that passes it).
pub const CHUNK_BYTES: usize = 256 << 10;
/// Frames read ahead per chunk at most.
pub const CHUNK_FRAMES: usize = 4096;
/// Read buffer of a CSV file, bytes.
const CSV_BUFFER: usize = 256 * 1024;
/// Bytes looked at to tell a file's format.
const SNIFF: usize = 4096;

/// What an input file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Capture,
    TradesCsv,
    AggTradesCsv,
}

/// An input file and what it was found to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    pub path: PathBuf,
    pub format: Format,
    /// The symbol a CSV is of (a capture names its symbols in its frames).
    pub symbol: Option<SymbolId>,
}

/// Why an input cannot be replayed. Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("no input file given")]
    NoInput,
    #[error("cannot open {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is a zip archive: unzip it first (Binance public data comes zipped; the CSV inside is the input)", path.display())]
    Zip { path: PathBuf },
    #[error(
        "{} is neither a capture (`<ns> <json>` lines) nor a Binance trades/aggTrades CSV; it starts with {start:?}",
        path.display()
    )]
    Unknown { path: PathBuf, start: String },
    #[error("{}: {msg}", path.display())]
    Symbol { path: PathBuf, msg: String },
    #[error(transparent)]
    Replay(#[from] hft_engine::feed::replay::ReplayError),
}

/// Frames read ahead: their bytes back to back, and where each is.
#[derive(Debug)]
pub struct Chunk {
    bytes: Vec<u8>,
    frames: Vec<FrameRef>,
}

#[derive(Debug, Clone, Copy)]
struct FrameRef {
    ts_ns: u64,
    kind: FrameKind,
    start: usize,
    end: usize,
}

impl Default for Chunk {
    fn default() -> Self {
        Self::new()
    }
}

impl Chunk {
    pub fn new() -> Self {
        Self { bytes: Vec::with_capacity(CHUNK_BYTES + (256 << 10)), frames: Vec::with_capacity(CHUNK_FRAMES) }
    }
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.frames.clear();
    }
    pub fn len(&self) -> usize {
        self.frames.len()
    }
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
    fn is_full(&self) -> bool {
        self.bytes.len() >= CHUNK_BYTES || self.frames.len() >= CHUNK_FRAMES
    }
    fn push(&mut self, ts_ns: u64, kind: FrameKind, bytes: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        self.frames.push(FrameRef { ts_ns, kind, start, end: self.bytes.len() });
    }
    /// Ends a frame written in place since `start`.
    fn seal(&mut self, ts_ns: u64, kind: FrameKind, start: usize) {
        self.frames.push(FrameRef { ts_ns, kind, start, end: self.bytes.len() });
    }
    /// Frame `i`: recorded time (ns), kind, bytes.
    #[inline]
    pub fn get(&self, i: usize) -> (u64, FrameKind, &[u8]) {
        let f = self.frames[i];
        (f.ts_ns, f.kind, &self.bytes[f.start..f.end])
    }
}

/// What reading the inputs found (deterministic: no time in it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct InputCounters {
    /// Frames handed to the pipeline.
    pub frames: u64,
    /// Capture lines read, and how many were malformed.
    pub capture_lines: u64,
    pub capture_malformed: u64,
    pub snapshots: u64,
    /// Capture snapshots that followed a diff of an unconfigured symbol.
    pub unattributed_snapshots: u64,
    /// CSV trade rows replayed, and lines skipped (malformed; a header is not counted).
    pub csv_rows: u64,
    pub csv_malformed: u64,
    /// Frames recorded earlier than the previous one (replayed at the previous one's time).
    pub out_of_order: u64,
    /// Snapshot requests the pipeline made (a gap in a capture's diffs).
    pub resync_requests: u64,
    /// Files cut short by a read error (the rest of the file is skipped).
    pub read_errors: u64,
}

/// Tells each file's format (and a CSV's symbol) from its content and name.
pub fn inspect(paths: &[PathBuf], symbols: &[String]) -> Result<Vec<InputFile>, InputError> {
    if paths.is_empty() {
        return Err(InputError::NoInput);
    }
    paths.iter().map(|p| inspect_one(p, symbols)).collect()
}

fn open_text(path: &Path) -> Result<Box<dyn BufRead + Send>, InputError> {
    let file = File::open(path).map_err(|source| InputError::Open { path: path.to_path_buf(), source })?;
    let mut raw = BufReader::with_capacity(CSV_BUFFER, file);
    let head = raw.fill_buf().map_err(|source| InputError::Read { path: path.to_path_buf(), source })?;
    if head.starts_with(b"PK\x03\x04") {
        return Err(InputError::Zip { path: path.to_path_buf() });
    }
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(BufReader::with_capacity(CSV_BUFFER, MultiGzDecoder::new(raw)))
    } else {
        Box::new(raw)
    })
}

fn inspect_one(path: &Path, symbols: &[String]) -> Result<InputFile, InputError> {
    let mut r = open_text(path)?;
    let mut head = Vec::with_capacity(SNIFF);
    r.by_ref()
        .take(SNIFF as u64)
        .read_to_end(&mut head)
        .map_err(|source| InputError::Read { path: path.to_path_buf(), source })?;
    let text = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&head);
    let first = text.split(|&b| b == b'\n').map(trim).find(|l| !l.is_empty()).unwrap_or(b"");
    let format = if first.is_empty() || is_capture_line(first) {
        Format::Capture
    } else {
        match csv_format(first) {
            Some(f) => f,
            None => {
                let start = String::from_utf8_lossy(&first[..first.len().min(80)]).into_owned();
                return Err(InputError::Unknown { path: path.to_path_buf(), start });
            }
        }
    };
    let symbol = match format {
        Format::Capture => None,
        _ => Some(csv_symbol(path, symbols)?),
    };
    Ok(InputFile { path: path.to_path_buf(), format, symbol })
}

fn trim(s: &[u8]) -> &[u8] {
    s.trim_ascii()
}

/// `<digits> {` or `<digits> [`: a capture line.
fn is_capture_line(l: &[u8]) -> bool {
    let digits = l.iter().take_while(|b| b.is_ascii_digit()).count();
    digits > 0 && l.get(digits) == Some(&b' ') && matches!(l.get(digits + 1), Some(b'{' | b'['))
}

/// The CSV format of a header or data line.
fn csv_format(l: &[u8]) -> Option<Format> {
    let fields: Vec<&[u8]> = l.split(|&b| b == b',').map(trim).collect();
    let numeric = fields.first().is_some_and(|f| !f.is_empty() && f.iter().all(u8::is_ascii_digit));
    if numeric {
        return match fields.len() {
            6 | 7 => Some(Format::TradesCsv),
            8 => Some(Format::AggTradesCsv),
            _ => None,
        };
    }
    let header = String::from_utf8_lossy(l).to_ascii_lowercase();
    match fields.len() {
        8 if header.contains("first_trade_id") => Some(Format::AggTradesCsv),
        6 | 7 if header.contains("price") && header.contains("time") => Some(Format::TradesCsv),
        _ => None,
    }
}

/// The configured symbol a CSV is of (see the module docs).
fn csv_symbol(path: &Path, symbols: &[String]) -> Result<SymbolId, InputError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let parts: Vec<&str> = name.split('-').collect();
    let binance_named =
        parts.len() >= 2 && (parts[1].eq_ignore_ascii_case("trades") || parts[1].eq_ignore_ascii_case("aggtrades"));
    if binance_named {
        let sym = parts[0].to_ascii_uppercase();
        return match symbols.iter().position(|s| *s == sym) {
            Some(i) => Ok(SymbolId(i as u16)),
            None => Err(InputError::Symbol {
                path: path.to_path_buf(),
                msg: format!("its name says {sym}, which is not configured (symbols = {symbols:?})"),
            }),
        };
    }
    match symbols {
        [_] => Ok(SymbolId(0)),
        _ => Err(InputError::Symbol {
            path: path.to_path_buf(),
            msg: format!(
                "several symbols are configured ({symbols:?}): name the file like Binance does, \
                 <SYMBOL>-trades-<date>.csv, to say whose trades it holds"
            ),
        }),
    }
}

/// Microseconds from 2025-01-01: a `time` of 10^14 or more cannot be milliseconds of this era.
const MICROS_FROM: u64 = 100_000_000_000_000;
/// Nanoseconds are not a Binance unit.
const MICROS_UNTIL: u64 = 100_000_000_000_000_000;

/// Unix ns of a CSV `time` (ms or µs by magnitude, see the module docs).
pub fn csv_time_ns(raw: u64) -> Option<u64> {
    match raw {
        0 => None,
        t if t < MICROS_FROM => t.checked_mul(1_000_000),
        t if t < MICROS_UNTIL => t.checked_mul(1_000),
        _ => None,
    }
}

/// A trade row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TradeRow {
    pub id: u64,
    pub px: Px,
    pub qty: Qty,
    pub ts_ns: u64,
    pub buyer_is_maker: bool,
}

/// Parses one CSV line of `format`; `None` when malformed (a header included).
pub fn parse_row(line: &[u8], format: Format) -> Option<TradeRow> {
    let mut f = line.split(|&b| b == b',').map(trim);
    let mut next = || f.next();
    let id = parse_u64(next()?)?;
    let px = Px::parse_bytes(next()?).ok().filter(|p| p.raw() > 0)?;
    let qty = Qty::parse_bytes(next()?).ok().filter(|q| q.raw() > 0)?;
    let (time, maker) = match format {
        Format::TradesCsv => {
            next()?; // quote_qty
            (next()?, next()?)
        }
        Format::AggTradesCsv => {
            next()?; // first_trade_id
            next()?; // last_trade_id
            (next()?, next()?)
        }
        Format::Capture => return None,
    };
    let ts_ns = csv_time_ns(parse_u64(time)?)?;
    let buyer_is_maker = match maker {
        b"true" | b"True" | b"TRUE" | b"1" => true,
        b"false" | b"False" | b"FALSE" | b"0" => false,
        _ => return None,
    };
    Some(TradeRow { id, px, qty, ts_ns, buyer_is_maker })
}

fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        if b.is_ascii_digit() { acc.checked_mul(10)?.checked_add(u64::from(b - b'0')) } else { None }
    })
}

/// The synthetic top of book of one symbol (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
struct SynthBook {
    seeded: bool,
    update_id: u64,
    bid: Px,
    ask: Px,
}

fn put_u64(buf: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[i..]);
}

/// A positive fixed-point value with 8 decimals, as Binance writes them (`61837.63000000`).
fn put_fixed8(buf: &mut Vec<u8>, raw: i64) {
    let raw = raw.max(0) as u64;
    put_u64(buf, raw / 100_000_000);
    buf.push(b'.');
    let frac = raw % 100_000_000;
    let start = buf.len();
    put_u64(buf, frac);
    let width = buf.len() - start;
    buf.splice(start..start, std::iter::repeat_n(b'0', 8 - width));
}

fn put_level(buf: &mut Vec<u8>, px: Px, qty: Qty) {
    buf.extend_from_slice(b"[\"");
    put_fixed8(buf, px.raw());
    buf.extend_from_slice(b"\",\"");
    put_fixed8(buf, qty.raw());
    buf.extend_from_slice(b"\"]");
}

/// A combined-stream frame's opening for `names`' symbol: the stream name (lower case) with
/// `kind` — the rest of the name, `data` and the event up to its time — the event time `ms` and
/// the symbol (upper case), up to its closing quote (exclusive).
fn put_head(buf: &mut Vec<u8>, names: &SymbolNames, kind: &[u8], ms: u64) {
    buf.extend_from_slice(b"{\"stream\":\"");
    buf.extend_from_slice(names.lower.as_bytes());
    buf.extend_from_slice(kind);
    put_u64(buf, ms);
    buf.extend_from_slice(b",\"s\":\"");
    buf.extend_from_slice(names.upper.as_bytes());
}

/// Frame writers of one symbol's synthetic stream.
struct SymbolNames {
    upper: String,
    lower: String,
}

impl SynthBook {
    /// Appends the frames of one trade (see the module docs) to `chunk`. A trade too close to
    /// zero to leave a positive bid updates nothing but the trade.
    fn on_trade(&mut self, chunk: &mut Chunk, sym: SymbolId, names: &SymbolNames, tick: Px, t: &TradeRow) {
        let (bid, ask) =
            if t.buyer_is_maker { (t.px, Px(t.px.raw() + tick.raw())) } else { (Px(t.px.raw() - tick.raw()), t.px) };
        let ms = t.ts_ns / 1_000_000;
        let book = bid.raw() > 0;
        if book && !self.seeded {
            self.update_id += 1;
            let start = chunk.bytes.len();
            let b = &mut chunk.bytes;
            b.extend_from_slice(b"{\"lastUpdateId\":");
            put_u64(b, self.update_id);
            b.extend_from_slice(b",\"bids\":[");
            put_level(b, bid, t.qty);
            b.extend_from_slice(b"],\"asks\":[");
            put_level(b, ask, t.qty);
            b.extend_from_slice(b"]}");
            chunk.seal(t.ts_ns, FrameKind::Snapshot(sym), start);
        }

        let start = chunk.bytes.len();
        let b = &mut chunk.bytes;
        put_head(b, names, b"@trade\",\"data\":{\"e\":\"trade\",\"E\":", ms);
        b.extend_from_slice(b"\",\"t\":");
        put_u64(b, t.id);
        b.extend_from_slice(b",\"p\":\"");
        put_fixed8(b, t.px.raw());
        b.extend_from_slice(b"\",\"q\":\"");
        put_fixed8(b, t.qty.raw());
        b.extend_from_slice(b"\",\"T\":");
        put_u64(b, ms);
        b.extend_from_slice(if t.buyer_is_maker { b",\"m\":true,\"M\":true}}" } else { b",\"m\":false,\"M\":true}}" });
        chunk.seal(t.ts_ns, FrameKind::Stream, start);
        if !book {
            return;
        }

        // The diff: the new level per side, and the old one removed where it moved.
        self.update_id += 1;
        let start = chunk.bytes.len();
        let b = &mut chunk.bytes;
        put_head(b, names, b"@depth@100ms\",\"data\":{\"e\":\"depthUpdate\",\"E\":", ms);
        b.extend_from_slice(b"\",\"U\":");
        put_u64(b, self.update_id);
        b.extend_from_slice(b",\"u\":");
        put_u64(b, self.update_id);
        b.extend_from_slice(b",\"b\":[");
        put_level(b, bid, t.qty);
        if self.seeded && self.bid != bid {
            b.push(b',');
            put_level(b, self.bid, Qty::ZERO);
        }
        b.extend_from_slice(b"],\"a\":[");
        put_level(b, ask, t.qty);
        if self.seeded && self.ask != ask {
            b.push(b',');
            put_level(b, self.ask, Qty::ZERO);
        }
        b.extend_from_slice(b"]}}");
        chunk.seal(t.ts_ns, FrameKind::Stream, start);

        let start = chunk.bytes.len();
        let b = &mut chunk.bytes;
        b.extend_from_slice(b"{\"stream\":\"");
        b.extend_from_slice(names.lower.as_bytes());
        b.extend_from_slice(b"@bookTicker\",\"data\":{\"u\":");
        put_u64(b, self.update_id);
        b.extend_from_slice(b",\"s\":\"");
        b.extend_from_slice(names.upper.as_bytes());
        b.extend_from_slice(b"\",\"b\":\"");
        put_fixed8(b, bid.raw());
        b.extend_from_slice(b"\",\"B\":\"");
        put_fixed8(b, t.qty.raw());
        b.extend_from_slice(b"\",\"a\":\"");
        put_fixed8(b, ask.raw());
        b.extend_from_slice(b"\",\"A\":\"");
        put_fixed8(b, t.qty.raw());
        b.extend_from_slice(b"\"}}");
        chunk.seal(t.ts_ns, FrameKind::Stream, start);

        self.seeded = true;
        self.bid = bid;
        self.ask = ask;
    }
}

/// One CSV file being read.
struct CsvFile {
    path: PathBuf,
    format: Format,
    symbol: SymbolId,
    reader: Box<dyn BufRead + Send>,
    line: Vec<u8>,
    line_no: u64,
}

/// A group of consecutive inputs of one kind.
enum Group {
    Captures(Vec<PathBuf>),
    Csv(InputFile),
}

enum Active {
    Capture(Box<ReplaySource>),
    Csv(Box<CsvFile>),
}

/// Every input, in order, as one stream of frames (see the module docs).
pub struct Feed {
    groups: VecDeque<Group>,
    active: Option<Active>,
    symbols: Vec<String>,
    names: Vec<SymbolNames>,
    synth: Vec<SynthBook>,
    tick: Px,
    last_ts: u64,
    counters: InputCounters,
    /// Read problems worth a warning (file, what), in order.
    warnings: Vec<String>,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed").field("counters", &self.counters).finish_non_exhaustive()
    }
}

impl Feed {
    /// `files` as [`inspect`] found them; `tick` is the price increment of the synthetic book.
    pub fn new(files: &[InputFile], symbols: &[String], tick: Px) -> Self {
        let mut groups = VecDeque::new();
        for f in files {
            match (f.format, groups.back_mut()) {
                (Format::Capture, Some(Group::Captures(paths))) => paths.push(f.path.clone()),
                (Format::Capture, _) => groups.push_back(Group::Captures(vec![f.path.clone()])),
                _ => groups.push_back(Group::Csv(f.clone())),
            }
        }
        Self {
            groups,
            active: None,
            symbols: symbols.to_vec(),
            names: symbols
                .iter()
                .map(|s| SymbolNames { upper: s.to_ascii_uppercase(), lower: s.to_ascii_lowercase() })
                .collect(),
            synth: vec![SynthBook::default(); symbols.len()],
            tick: if tick.raw() > 0 { tick } else { Px(1) },
            last_ts: 0,
            counters: InputCounters::default(),
            warnings: Vec::new(),
        }
    }

    pub fn counters(&self) -> &InputCounters {
        &self.counters
    }

    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The pipeline asks for a fresh snapshot of `symbol` (a gap): a capture waits for its next
    /// snapshot line; a CSV's synthetic book cannot gap.
    pub fn request_snapshot(&mut self, symbol: SymbolId) {
        self.counters.resync_requests += 1;
        if let Some(Active::Capture(src)) = &mut self.active {
            src.request_snapshot(symbol);
        }
    }

    /// Reads frames into `chunk` (cleared first) until it is full or the inputs end. Returns
    /// `false` once every input is read (the chunk may still hold the last frames).
    pub fn fill(&mut self, chunk: &mut Chunk) -> Result<bool, InputError> {
        chunk.clear();
        loop {
            if self.active.is_none() {
                match self.groups.pop_front() {
                    None => return Ok(false),
                    Some(g) => self.active = Some(self.open(g)?),
                }
            }
            let done = match self.active.as_mut() {
                Some(Active::Capture(src)) => fill_capture(src, chunk, &mut self.last_ts, &mut self.counters),
                Some(Active::Csv(f)) => {
                    let sym = f.symbol.index();
                    fill_csv(
                        f,
                        chunk,
                        &mut self.synth[sym],
                        &self.names[sym],
                        self.tick,
                        &mut self.last_ts,
                        &mut self.counters,
                        &mut self.warnings,
                    )
                }
                None => true,
            };
            if done {
                self.close_active();
            }
            if chunk.is_full() {
                self.counters.frames += chunk.len() as u64;
                return Ok(true);
            }
            if done && self.groups.is_empty() {
                self.counters.frames += chunk.len() as u64;
                return Ok(false);
            }
        }
    }

    fn open(&mut self, g: Group) -> Result<Active, InputError> {
        Ok(match g {
            Group::Captures(paths) => {
                Active::Capture(Box::new(ReplaySource::new(&paths, &self.symbols, Pace::AsFastAsPossible)?))
            }
            Group::Csv(f) => {
                let reader = open_text(&f.path)?;
                Active::Csv(Box::new(CsvFile {
                    symbol: f.symbol.unwrap_or(SymbolId(0)),
                    path: f.path,
                    format: f.format,
                    reader,
                    line: Vec::with_capacity(256),
                    line_no: 0,
                }))
            }
        })
    }

    fn close_active(&mut self) {
        if let Some(Active::Capture(src)) = self.active.take() {
            let c: &ReplayCounters = src.counters();
            self.counters.capture_lines += c.lines;
            self.counters.capture_malformed += c.malformed();
            self.counters.snapshots += c.snapshots;
            self.counters.unattributed_snapshots += c.unattributed_snapshots;
            self.counters.read_errors += c.read_errors;
            if let Some(e) = src.read_error() {
                self.warnings.push(format!("{}; the rest of that file was skipped", crate::replay::chain(e)));
            }
        }
    }
}

#[inline]
fn monotonic(ts: u64, last: &mut u64, counters: &mut InputCounters) -> u64 {
    if ts < *last {
        counters.out_of_order += 1;
        *last
    } else {
        *last = ts;
        ts
    }
}

/// Reads capture frames until the chunk is full; `true` when the capture files are done.
fn fill_capture(src: &mut ReplaySource, chunk: &mut Chunk, last: &mut u64, counters: &mut InputCounters) -> bool {
    while !chunk.is_full() {
        // As fast as possible: every frame is due at once, so `None` means the end.
        let Some(f) = src.poll_frame(0) else { return true };
        let ts = monotonic(f.recorded_ns, last, counters);
        chunk.push(ts, f.kind, f.bytes);
    }
    false
}

/// Reads CSV rows until the chunk is full; `true` when the file is done.
#[allow(clippy::too_many_arguments)]
fn fill_csv(
    f: &mut CsvFile,
    chunk: &mut Chunk,
    book: &mut SynthBook,
    names: &SymbolNames,
    tick: Px,
    last: &mut u64,
    counters: &mut InputCounters,
    warnings: &mut Vec<String>,
) -> bool {
    while !chunk.is_full() {
        f.line.clear();
        match f.reader.read_until(b'\n', &mut f.line) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) => {
                counters.read_errors += 1;
                warnings.push(format!(
                    "cannot read {} after line {}: {e}; the rest of that file was skipped",
                    f.path.display(),
                    f.line_no
                ));
                return true;
            }
        }
        f.line_no += 1;
        let line = trim(&f.line);
        let line = if f.line_no == 1 { line.strip_prefix(b"\xef\xbb\xbf").unwrap_or(line) } else { line };
        if line.is_empty() {
            continue;
        }
        match parse_row(line, f.format) {
            Some(mut row) => {
                row.ts_ns = monotonic(row.ts_ns, last, counters);
                counters.csv_rows += 1;
                book.on_trade(chunk, f.symbol, names, tick, &row);
            }
            // A header line: the first line, not starting with a digit.
            None if f.line_no == 1 && !line[0].is_ascii_digit() => {}
            None => {
                counters.csv_malformed += 1;
                if counters.csv_malformed <= 3 {
                    let text = String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned();
                    warnings.push(format!(
                        "{} line {}: not a trade row, skipped: {text:?}",
                        f.path.display(),
                        f.line_no
                    ));
                }
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use hft_engine::engine::Pipeline;
    use hft_shared::config::Config;
    use hft_shared::msg::Event;
    use std::io::Write;

    #[test]
    fn csv_times_are_read_by_magnitude() {
        // 2024-08-08 in ms, 2025-01-01 in µs (Binance spot's switch), both 1 ns apart from the
        // same instant.
        assert_eq!(csv_time_ns(1_723_161_253_937), Some(1_723_161_253_937_000_000));
        assert_eq!(csv_time_ns(1_735_689_600_000_000), Some(1_735_689_600_000_000_000));
        assert_eq!(csv_time_ns(1_735_689_600_000), Some(1_735_689_600_000_000_000));
        assert_eq!(csv_time_ns(0), None);
        assert_eq!(csv_time_ns(1_735_689_600_000_000_000), None);
    }

    #[test]
    fn rows_of_both_layouts_parse() {
        let t = parse_row(b"3780000,61837.63000000,0.00100000,61.83763,1723161253937,True,True", Format::TradesCsv);
        assert_eq!(
            t,
            Some(TradeRow {
                id: 3_780_000,
                px: Px::parse("61837.63").unwrap(),
                qty: Qty::parse("0.001").unwrap(),
                ts_ns: 1_723_161_253_937_000_000,
                buyer_is_maker: true,
            })
        );
        let a = parse_row(b"99,93000.5,0.5,10,12,1735689600123456,false,true", Format::AggTradesCsv).unwrap();
        assert_eq!((a.id, a.ts_ns, a.buyer_is_maker), (99, 1_735_689_600_123_456_000, false));
        for bad in [
            &b"id,price,qty,quote_qty,time,is_buyer_maker,is_best_match"[..],
            b"1,abc,1,1,1723161253937,true,true",
            b"1,-5,1,1,1723161253937,true,true",
            b"1,5,0,0,1723161253937,true,true",
            b"1,5,1,5,1723161253937,maybe,true",
            b"1,5,1",
            b"",
        ] {
            assert_eq!(parse_row(bad, Format::TradesCsv), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn formats_are_detected() {
        assert!(is_capture_line(b"1723161253937085768 {\"stream\":\"x\"}"));
        assert!(!is_capture_line(b"1723161253937085768,61837.63"));
        assert_eq!(csv_format(b"1,2.5,1,2.5,1723161253937,true,true"), Some(Format::TradesCsv));
        assert_eq!(csv_format(b"1,2.5,1,2.5,1723161253937,true"), Some(Format::TradesCsv));
        assert_eq!(csv_format(b"1,2.5,1,1,1,1723161253937,true,true"), Some(Format::AggTradesCsv));
        assert_eq!(csv_format(b"id,price,qty,quote_qty,time,is_buyer_maker,is_best_match"), Some(Format::TradesCsv));
        assert_eq!(
            csv_format(
                b"agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker,is_best_match"
            ),
            Some(Format::AggTradesCsv)
        );
        assert_eq!(csv_format(b"hello world"), None);
    }

    #[test]
    fn csv_symbols_come_from_binance_names() {
        let syms = vec!["BTCUSDT".to_string(), "ETHUSDT".to_string()];
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(csv_symbol(&p("/x/ETHUSDT-trades-2024-08-08.csv"), &syms).unwrap(), SymbolId(1));
        assert_eq!(csv_symbol(&p("btcusdt-aggTrades-2025-01-01.csv.gz"), &syms).unwrap(), SymbolId(0));
        assert!(csv_symbol(&p("SOLUSDT-trades-2024-08-08.csv"), &syms).is_err());
        assert!(csv_symbol(&p("trades.csv"), &syms).is_err());
        assert_eq!(csv_symbol(&p("trades.csv"), &syms[..1]).unwrap(), SymbolId(0));
    }

    #[test]
    fn fixed8_is_written_as_binance_does() {
        let mut b = Vec::new();
        put_fixed8(&mut b, Px::parse("61837.63").unwrap().raw());
        b.push(b' ');
        put_fixed8(&mut b, 1);
        b.push(b' ');
        put_fixed8(&mut b, Px::from_int(7).raw());
        assert_eq!(String::from_utf8(b).unwrap(), "61837.63000000 0.00000001 7.00000000");
    }

    /// The synthetic frames go through the real decoder and book: after each trade the book's
    /// top is the one the module docs promise, and orders can be priced (the feed is live).
    #[test]
    fn synthetic_book_syncs_and_follows_trades() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("BTCUSDT-trades-2024-08-08.csv");
        let mut w = std::fs::File::create(&path).unwrap();
        writeln!(w, "id,price,qty,quote_qty,time,is_buyer_maker,is_best_match").unwrap();
        writeln!(w, "1,100.00,0.5,50,1723161253937,true,true").unwrap();
        writeln!(w, "2,100.02,0.25,25,1723161253938,false,true").unwrap();
        writeln!(w, "oops").unwrap();
        writeln!(w, "3,99.5,1,99.5,1723161253936,true,true").unwrap();
        drop(w);
        let cfg = Config::from_toml_str("", &|_| None).unwrap();
        let files = inspect(&[path], &cfg.symbols).unwrap();
        assert_eq!(files[0].format, Format::TradesCsv);
        let mut feed = Feed::new(&files, &cfg.symbols, Px::parse("0.01").unwrap());
        let mut chunk = Chunk::new();
        assert!(!feed.fill(&mut chunk).unwrap());
        // snapshot + 3 frames per trade.
        assert_eq!(chunk.len(), 10);
        let c = *feed.counters();
        assert_eq!((c.csv_rows, c.csv_malformed, c.out_of_order, c.frames), (3, 1, 1, 10));

        let (tx, _rx) = rtrb::RingBuffer::<Event>::new(1024);
        let mut p = Pipeline::new(&cfg, tx);
        let tops = [("100", "100.01"), ("100.01", "100.02"), ("99.5", "99.51")];
        for i in 0..chunk.len() {
            let (ts, kind, bytes) = chunk.get(i);
            let out = p.on_frame(kind, bytes, p.clock().raw(), ts);
            assert_eq!(out.resync, None);
            if i % 3 == 0 && i > 0 {
                let book = p.book(SymbolId(0));
                let (bid, ask) = tops[i / 3 - 1];
                assert_eq!(book.best_bid().map(|l| l.px), Some(Px::parse(bid).unwrap()), "frame {i}");
                assert_eq!(book.best_ask().map(|l| l.px), Some(Px::parse(ask).unwrap()), "frame {i}");
                assert_eq!(book.bids.len() + book.asks.len(), 2);
                assert_eq!(p.quote(SymbolId(0)).bid, Px::parse(bid).unwrap());
                assert!(p.market_ok(0, ts), "frame {i}");
            }
        }
        let c = p.counters();
        assert_eq!((c.decode_errors_total(), c.book_gaps, c.trade_gaps), (0, 0, 0));
    }

    #[test]
    fn zip_and_unknown_files_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let zip = dir.path().join("BTCUSDT-trades-2024-08-08.zip");
        std::fs::write(&zip, b"PK\x03\x04rest").unwrap();
        let e = inspect(&[zip], &["BTCUSDT".into()]).unwrap_err().to_string();
        assert!(e.contains("zip") && e.contains("BTCUSDT-trades-2024-08-08.zip"), "{e}");
        let junk = dir.path().join("junk.txt");
        std::fs::write(&junk, b"hello world\n").unwrap();
        let e = inspect(&[junk], &["BTCUSDT".into()]).unwrap_err().to_string();
        assert!(e.contains("junk.txt") && e.contains("hello world"), "{e}");
        let missing = dir.path().join("missing.gz");
        let e = inspect(&[missing], &["BTCUSDT".into()]).unwrap_err().to_string();
        assert!(e.contains("missing.gz"), "{e}");
    }
}
