//! Capture replay: a frame source reading recorded frames back from files.
//!
//! Role: the source of backtests, of file-driven paper runs and of `hft replay`. A capture is
//! text, one received frame per line, `<recv_ns> <json>` (`recv_ns`: local receive time, unix
//! ns, decimal digits; `json`: the frame exactly as received), gzip-compressed (detected by the
//! magic bytes `1f 8b`, whatever the file is called; concatenated members are read through) or
//! plain. The files are read in the order given, as one continuous stream.
//!
//! Thread: the hot thread (or the replay command's own thread). [`ReplaySource::poll`] never
//! waits for time to pass: a frame that is not due yet stays pending and `poll` returns `None`.
//! It does read the files through a `BufReader` (256 KiB), which is acceptable for local files.
//!
//! Allocation: [`ReplaySource::new`] opens every file, decodes the first block of each (so a
//! corrupt gzip header, or a directory, fails there and names the file) and reserves the
//! buffers. After warm-up `poll` does not allocate: one line buffer is reused with
//! `read_until`. Growth happens only for a line longer than any before, for the pooled buffers
//! of diffs held for a snapshot (below) until the hold has been as deep as it gets, when a gzip
//! member header carries a file name or comment, and when a read error is recorded.
//!
//! Lines that are not `<digits> <frame>` are counted in [`ReplayCounters`] and skipped; no
//! file content makes this module panic. A read error (say, a truncated gzip file) ends that
//! file: it is counted, the first one is kept ([`ReplaySource::read_error`]), and the replay
//! goes on with the next file.
//!
//! # Snapshots
//! A line whose JSON is a bare REST depth snapshot body (`{"lastUpdateId":…`, after optional
//! whitespace) does not name its symbol. It is attributed to the symbol of the most recent
//! depth-diff frame read (stream `<symbol>@depth` or `<symbol>@depth@…`), else, when no diff
//! was read yet, to the first configured symbol, and delivered as [`FrameKind::Snapshot`].
//! After a diff of a symbol that is not configured, the snapshot is that symbol's: it is
//! delivered as [`FrameKind::Stream`] (the pipeline counts an unattributable snapshot) and
//! counted in [`ReplayCounters::unattributed_snapshots`]. Every other line is
//! [`FrameKind::Stream`].
//!
//! # Diffs buffered for a snapshot (Binance's procedure)
//! A recorder fetches the snapshot while it buffers the stream, so diffs that the snapshot's
//! `lastUpdateId` falls inside are usually *recorded before* the snapshot line (as in the
//! BTCUSDT corpus). A live engine buffers them; so does this source: while a configured symbol
//! awaits a snapshot — from the start, and again after [`ReplaySource::request_snapshot`] —
//! its depth diffs are held back (at most [`HOLD_MAX`]; beyond that the oldest is delivered
//! early, where the book ignores it), and delivered right after that symbol's next snapshot
//! line, in their recorded order. The book then drops the stale ones and syncs on the one that
//! straddles the snapshot. Held diffs still undelivered when the files end are delivered then.
//! Every line is delivered exactly once; only held diffs move.
//!
//! # Resync
//! A file cannot be asked for a fresh snapshot. [`ReplaySource::request_snapshot`] is counted
//! and the symbol awaits the next snapshot line in the capture: until then its book stays
//! invalid (the pipeline reports the gap and the state), and if the capture has none, it stays
//! invalid to the end.
//!
//! # Time
//! [`ReplaySource::recorded_ns`] is the recorded receive time of the last frame delivered; a
//! held diff is delivered at the recorded time of the line that released it (the snapshot, a
//! newer diff overflowing the hold, or the last line), so it never runs backwards because of
//! the hold. Pacing ([`Pace`]) maps recorded time onto the caller's clock: the first frame is
//! due at once, each next one when its offset from the first has elapsed (divided by the
//! speed). Frames recorded out of order are due at once.

use super::source::FrameKind;
use flate2::bufread::MultiGzDecoder;
use hft_shared::SymbolId;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

/// Read buffer per file (and for the decompressed stream of a gzip file), bytes.
pub const READ_BUFFER: usize = 256 * 1024;
/// Initial capacity of the line buffer, bytes (a 1000-level Binance snapshot is ~64 KiB).
pub const LINE_CAPACITY: usize = 128 * 1024;
/// Depth diffs held per symbol while it awaits a snapshot (25 s of `@depth@100ms`).
pub const HOLD_MAX: usize = 256;

/// How recorded time maps onto the caller's clock.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pace {
    /// Every frame is due at once (backtests, `hft replay`).
    AsFastAsPossible,
    /// 1×: a frame is due when its recorded offset from the first frame has elapsed.
    Recorded,
    /// `speed`×: offsets are divided by `speed` (finite, > 0; 2.0 = twice as fast).
    Scaled(f64),
}

/// Why a replay could not be set up. Each names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("no capture file given")]
    NoInput,
    #[error("replay speed {0} is invalid: it must be a finite number > 0")]
    BadSpeed(f64),
    #[error("cannot open capture file {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read capture file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Monotonic counters of a replay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayCounters {
    /// Lines read, well-formed or not.
    pub lines: u64,
    /// Frames delivered by `poll`.
    pub frames: u64,
    /// Snapshot lines delivered as [`FrameKind::Snapshot`].
    pub snapshots: u64,
    /// Snapshot lines following a diff of a symbol that is not configured (delivered as
    /// [`FrameKind::Stream`]).
    pub unattributed_snapshots: u64,
    /// Depth diffs held back while their symbol awaited a snapshot.
    pub held: u64,
    /// Held diffs delivered before a snapshot because the hold was full.
    pub hold_overflows: u64,
    /// Malformed: a line without a space (an empty line included).
    pub no_space: u64,
    /// Malformed: the part before the first space is not a `u64` in decimal digits.
    pub bad_ns: u64,
    /// Malformed: nothing after the receive time.
    pub empty_frame: u64,
    /// Calls to [`ReplaySource::request_snapshot`].
    pub resync_requests: u64,
    /// Files ended by a read error.
    pub read_errors: u64,
    /// Files read to their end (or to a read error).
    pub files_done: u64,
}

impl ReplayCounters {
    /// Lines skipped as malformed.
    pub fn malformed(&self) -> u64 {
        self.no_space + self.bad_ns + self.empty_frame
    }
}

/// A delivered frame with its recorded receive time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayFrame<'a> {
    pub kind: FrameKind,
    pub bytes: &'a [u8],
    /// Recorded receive time, unix ns (see the module docs for held diffs).
    pub recorded_ns: u64,
}

#[derive(Debug)]
enum Reader {
    Plain(BufReader<File>),
    Gzip(BufReader<MultiGzDecoder<BufReader<File>>>),
}

impl Reader {
    #[inline]
    fn read_line(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        match self {
            Reader::Plain(r) => r.read_until(b'\n', buf),
            Reader::Gzip(r) => r.read_until(b'\n', buf),
        }
    }

    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match self {
            Reader::Plain(r) => r.fill_buf(),
            Reader::Gzip(r) => r.fill_buf(),
        }
    }
}

#[derive(Debug)]
struct Input {
    path: PathBuf,
    reader: Reader,
}

impl Input {
    fn open(path: &Path) -> Result<Self, ReplayError> {
        let file = File::open(path).map_err(|source| ReplayError::Open { path: path.to_path_buf(), source })?;
        let read_err = |source| ReplayError::Read { path: path.to_path_buf(), source };
        let mut raw = BufReader::with_capacity(READ_BUFFER, file);
        let gzip = raw.fill_buf().map_err(read_err)?.starts_with(&[0x1f, 0x8b]);
        let mut reader = if gzip {
            Reader::Gzip(BufReader::with_capacity(READ_BUFFER, MultiGzDecoder::new(raw)))
        } else {
            Reader::Plain(raw)
        };
        // First block now: a corrupt gzip header fails here, naming the file, and the
        // decoder's own allocations happen before the first `poll`.
        reader.fill_buf().map_err(read_err)?;
        Ok(Self { path: path.to_path_buf(), reader })
    }
}

/// A well-formed line waiting in the line buffer: the frame is `line[start..end]`.
#[derive(Clone, Copy, Debug)]
struct Pending {
    ns: u64,
    start: usize,
    end: usize,
}

/// A depth diff held while its symbol awaits a snapshot.
#[derive(Debug)]
struct Held {
    /// Read order, across symbols.
    seq: u64,
    bytes: Vec<u8>,
}

/// Where the frame `poll` returns lives.
#[derive(Clone, Copy, Debug)]
enum Out {
    Line(FrameKind, usize, usize),
    Held,
}

/// What a frame is, from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Snapshot,
    /// A depth diff; its stream's symbol is `frame[start..end]`.
    Depth {
        start: usize,
        end: usize,
    },
    Other,
}

/// Replays capture files as a frame source (see the module docs).
pub struct ReplaySource {
    /// Boxed: the source is one pointer wide inside the engine's `Source` enum.
    s: Box<State>,
}

struct State {
    /// Files not finished yet; the front one is being read.
    inputs: VecDeque<Input>,
    /// Configured symbols (upper case); index = `SymbolId`.
    symbols: Vec<Box<[u8]>>,
    pace: Pace,
    /// `(recorded ns, caller ns)` of the first frame, once paced.
    origin: Option<(u64, u64)>,
    line: Vec<u8>,
    pending: Option<Pending>,
    /// The held diff being delivered.
    out: Vec<u8>,
    /// Per symbol: awaiting a snapshot (its diffs are held).
    awaiting: Vec<bool>,
    /// Per symbol: held diffs, oldest first (capacity `HOLD_MAX + 1`).
    held: Vec<VecDeque<Held>>,
    /// Buffers for held diffs, reused.
    pool: Vec<Vec<u8>>,
    /// Symbol whose held diffs are being delivered after its snapshot.
    release: Option<usize>,
    /// `None`: no depth diff read yet; `Some(None)`: the last was of an unconfigured symbol.
    last_depth: Option<Option<usize>>,
    seq: u64,
    recorded_ns: u64,
    counters: ReplayCounters,
    read_error: Option<ReplayError>,
}

impl std::fmt::Debug for ReplaySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplaySource")
            .field("files_left", &self.s.inputs.iter().map(|i| &i.path).collect::<Vec<_>>())
            .field("pace", &self.s.pace)
            .field("recorded_ns", &self.s.recorded_ns)
            .field("counters", &self.s.counters)
            .finish_non_exhaustive()
    }
}

impl ReplaySource {
    /// Opens `files` (replayed in this order) for the configured `symbols` (index =
    /// `SymbolId`, as in `Config::symbols`). Fails on an empty list, an invalid speed, or a
    /// file that cannot be opened or read, naming it.
    pub fn new<P: AsRef<Path>, S: AsRef<str>>(files: &[P], symbols: &[S], pace: Pace) -> Result<Self, ReplayError> {
        if files.is_empty() {
            return Err(ReplayError::NoInput);
        }
        if let Pace::Scaled(speed) = pace
            && !(speed.is_finite() && speed > 0.0)
        {
            return Err(ReplayError::BadSpeed(speed));
        }
        let inputs = files.iter().map(|p| Input::open(p.as_ref())).collect::<Result<VecDeque<_>, _>>()?;
        let n = symbols.len();
        Ok(Self {
            s: Box::new(State {
                inputs,
                symbols: symbols
                    .iter()
                    .map(|s| s.as_ref().as_bytes().to_ascii_uppercase().into_boxed_slice())
                    .collect(),
                pace,
                origin: None,
                line: Vec::with_capacity(LINE_CAPACITY),
                pending: None,
                out: Vec::new(),
                awaiting: vec![true; n],
                held: (0..n).map(|_| VecDeque::with_capacity(HOLD_MAX + 1)).collect(),
                pool: Vec::with_capacity(n * (HOLD_MAX + 1) + 1),
                release: None,
                last_depth: None,
                seq: 0,
                recorded_ns: 0,
                counters: ReplayCounters::default(),
                read_error: None,
            }),
        })
    }

    /// The next frame if one is due at `now_ns` (the caller's monotonic clock, ns). The bytes
    /// are valid until the next call.
    #[inline]
    pub fn poll(&mut self, now_ns: u64) -> Option<(FrameKind, &[u8])> {
        self.poll_frame(now_ns).map(|f| (f.kind, f.bytes))
    }

    /// [`ReplaySource::poll`] with the frame's recorded time (what a backtest timestamps with).
    #[inline]
    pub fn poll_frame(&mut self, now_ns: u64) -> Option<ReplayFrame<'_>> {
        let out = self.s.next(now_ns)?;
        self.s.counters.frames += 1;
        let recorded_ns = self.s.recorded_ns;
        Some(match out {
            Out::Line(kind, start, end) => ReplayFrame { kind, bytes: &self.s.line[start..end], recorded_ns },
            Out::Held => ReplayFrame { kind: FrameKind::Stream, bytes: &self.s.out, recorded_ns },
        })
    }

    /// Asks for a fresh snapshot of `symbol` (after a gap). A file cannot honour it: it is
    /// counted, and the symbol's diffs are held until its next snapshot line (module docs).
    pub fn request_snapshot(&mut self, symbol: SymbolId) {
        self.s.counters.resync_requests += 1;
        if let Some(a) = self.s.awaiting.get_mut(symbol.index()) {
            *a = true;
        }
    }

    /// Recorded receive time of the last frame delivered, unix ns (0 before the first).
    pub fn recorded_ns(&self) -> u64 {
        self.s.recorded_ns
    }

    /// Every line of every file has been read and every frame delivered: `poll` has met the
    /// end (the poll after the last frame returns `None` and sets this).
    pub fn is_finished(&self) -> bool {
        self.s.inputs.is_empty() && self.s.pending.is_none() && self.s.held.iter().all(VecDeque::is_empty)
    }

    pub fn counters(&self) -> &ReplayCounters {
        &self.s.counters
    }

    /// The first read error met (its file was abandoned there), if any.
    pub fn read_error(&self) -> Option<&ReplayError> {
        self.s.read_error.as_ref()
    }

    pub fn pace(&self) -> Pace {
        self.s.pace
    }
}

impl State {
    fn next(&mut self, now_ns: u64) -> Option<Out> {
        if let Some(i) = self.release {
            // A resync requested meanwhile keeps the rest for the next snapshot.
            if !self.awaiting[i]
                && let Some(h) = self.held[i].pop_front()
            {
                return Some(self.deliver_held(h));
            }
            self.release = None;
        }
        loop {
            let p = match self.pending {
                Some(p) => p,
                None => match self.read_next() {
                    Some(p) => p,
                    None => return self.flush_held(),
                },
            };
            if !self.is_due(p.ns, now_ns) {
                return None;
            }
            self.pending = None;
            self.recorded_ns = p.ns;
            let class = classify(&self.line[p.start..p.end]);
            match class {
                Class::Snapshot => {
                    let id = match self.last_depth {
                        None if self.symbols.is_empty() => None,
                        None => Some(0),
                        Some(id) => id,
                    };
                    let Some(i) = id else {
                        self.counters.unattributed_snapshots += 1;
                        return Some(Out::Line(FrameKind::Stream, p.start, p.end));
                    };
                    self.counters.snapshots += 1;
                    self.awaiting[i] = false;
                    if !self.held[i].is_empty() {
                        self.release = Some(i);
                    }
                    return Some(Out::Line(FrameKind::Snapshot(SymbolId(i as u16)), p.start, p.end));
                }
                Class::Depth { start, end } => {
                    let name = &self.line[p.start + start..p.start + end];
                    let id = self.symbols.iter().position(|s| s.eq_ignore_ascii_case(name));
                    self.last_depth = Some(id);
                    if let Some(i) = id
                        && self.awaiting[i]
                    {
                        self.hold(i, p);
                        if self.held[i].len() > HOLD_MAX
                            && let Some(h) = self.held[i].pop_front()
                        {
                            self.counters.hold_overflows += 1;
                            return Some(self.deliver_held(h));
                        }
                        continue;
                    }
                    return Some(Out::Line(FrameKind::Stream, p.start, p.end));
                }
                Class::Other => return Some(Out::Line(FrameKind::Stream, p.start, p.end)),
            }
        }
    }

    /// Reads lines until a well-formed one (now pending), or `None` when every file is done.
    fn read_next(&mut self) -> Option<Pending> {
        loop {
            let input = self.inputs.front_mut()?;
            self.line.clear();
            match input.reader.read_line(&mut self.line) {
                Ok(0) => {
                    self.counters.files_done += 1;
                    self.inputs.pop_front();
                    continue;
                }
                Ok(_) => {}
                Err(source) => {
                    self.counters.read_errors += 1;
                    self.counters.files_done += 1;
                    if self.read_error.is_none() {
                        self.read_error = Some(ReplayError::Read { path: input.path.clone(), source });
                    }
                    self.inputs.pop_front();
                    continue;
                }
            }
            self.counters.lines += 1;
            match parse_line(&self.line) {
                Ok(p) => {
                    self.pending = Some(p);
                    return Some(p);
                }
                Err(Malformed::NoSpace) => self.counters.no_space += 1,
                Err(Malformed::BadNs) => self.counters.bad_ns += 1,
                Err(Malformed::Empty) => self.counters.empty_frame += 1,
            }
        }
    }

    #[inline]
    fn is_due(&mut self, ns: u64, now_ns: u64) -> bool {
        if self.pace == Pace::AsFastAsPossible {
            return true;
        }
        let (rec0, now0) = *self.origin.get_or_insert((ns, now_ns));
        let offset = ns.saturating_sub(rec0);
        let wait = match self.pace {
            Pace::Scaled(speed) => (offset as f64 / speed) as u64,
            _ => offset,
        };
        now_ns.saturating_sub(now0) >= wait
    }

    /// Moves the pending diff (the line) into the hold of symbol `i`.
    fn hold(&mut self, i: usize, p: Pending) {
        let mut bytes = self.pool.pop().unwrap_or_default();
        bytes.clear();
        bytes.extend_from_slice(&self.line[p.start..p.end]);
        self.held[i].push_back(Held { seq: self.seq, bytes });
        self.seq += 1;
        self.counters.held += 1;
    }

    /// Makes `h` the frame `poll` returns; its old buffer goes back to the pool.
    fn deliver_held(&mut self, h: Held) -> Out {
        let mut bytes = h.bytes;
        std::mem::swap(&mut self.out, &mut bytes);
        if bytes.capacity() > 0 {
            self.pool.push(bytes);
        }
        Out::Held
    }

    /// At the end of the files: the oldest held diff of any symbol, or `None` when none is left.
    fn flush_held(&mut self) -> Option<Out> {
        let i = (0..self.held.len()).filter_map(|i| self.held[i].front().map(|h| (h.seq, i))).min()?.1;
        let h = self.held[i].pop_front()?;
        Some(self.deliver_held(h))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Malformed {
    NoSpace,
    BadNs,
    Empty,
}

/// Splits `<recv_ns> <frame>` (a trailing `\n` or `\r\n` is not part of the frame).
fn parse_line(line: &[u8]) -> Result<Pending, Malformed> {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    let sp = line[..end].iter().position(|&b| b == b' ').ok_or(Malformed::NoSpace)?;
    let ns = parse_ns(&line[..sp]).ok_or(Malformed::BadNs)?;
    if sp + 1 == end {
        return Err(Malformed::Empty);
    }
    Ok(Pending { ns, start: sp + 1, end })
}

/// Decimal digits to `u64`; `None` when empty, not all digits, or beyond `u64`.
fn parse_ns(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        if b.is_ascii_digit() { acc.checked_mul(10)?.checked_add(u64::from(b - b'0')) } else { None }
    })
}

#[inline]
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// The stream name of a combined-stream frame whose first key is `"stream"` (as Binance sends
/// them), as `(start, end)` in `frame`; `None` for anything else, and for a name with escapes.
pub fn stream_name(frame: &[u8]) -> Option<(usize, usize)> {
    let mut i = skip_ws(frame, 0);
    if frame.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(frame, i + 1);
    let rest = frame.get(i..)?;
    if !rest.starts_with(b"\"stream\"") {
        return None;
    }
    i = skip_ws(frame, i + b"\"stream\"".len());
    if frame.get(i) != Some(&b':') {
        return None;
    }
    i = skip_ws(frame, i + 1);
    if frame.get(i) != Some(&b'"') {
        return None;
    }
    let start = i + 1;
    let len = frame.get(start..)?.iter().position(|&b| b == b'"' || b == b'\\')?;
    (frame[start + len] == b'"').then_some((start, start + len))
}

/// Snapshot body, depth diff (and its symbol), or anything else — from the first bytes only.
fn classify(frame: &[u8]) -> Class {
    let i = skip_ws(frame, 0);
    if frame.get(i) == Some(&b'{') && frame[skip_ws(frame, i + 1)..].starts_with(b"\"lastUpdateId\"") {
        return Class::Snapshot;
    }
    let Some((start, end)) = stream_name(frame) else { return Class::Other };
    let name = &frame[start..end];
    let Some(at) = name.iter().position(|&b| b == b'@') else { return Class::Other };
    let kind = &name[at + 1..];
    if kind == b"depth" || kind.starts_with(b"depth@") { Class::Depth { start, end: start + at } } else { Class::Other }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_into_time_and_frame() {
        let p = parse_line(b"123 {\"a\":1}\r\n").unwrap();
        assert_eq!((p.ns, p.start, p.end), (123, 4, 11));
        assert_eq!(parse_line(b"\n").unwrap_err(), Malformed::NoSpace);
        assert_eq!(parse_line(b"{\"a\":1}").unwrap_err(), Malformed::NoSpace);
        assert_eq!(parse_line(b" {}").unwrap_err(), Malformed::BadNs);
        assert_eq!(parse_line(b"12a {}").unwrap_err(), Malformed::BadNs);
        assert_eq!(parse_line(b"18446744073709551616 {}").unwrap_err(), Malformed::BadNs);
        assert_eq!(parse_line(b"18446744073709551615 {}").unwrap().ns, u64::MAX);
        assert_eq!(parse_line(b"5 \n").unwrap_err(), Malformed::Empty);
    }

    #[test]
    fn frames_are_classified_by_their_first_bytes() {
        assert_eq!(classify(b" \t{ \"lastUpdateId\":1,\"bids\":[]}"), Class::Snapshot);
        let f = br#"{"stream":"btcusdt@depth@100ms","data":{}}"#;
        assert_eq!(classify(f), Class::Depth { start: 11, end: 18 });
        assert_eq!(classify(br#"{ "stream" : "ethusdt@depth","data":{}}"#), Class::Depth { start: 14, end: 21 });
        assert_eq!(classify(br#"{"stream":"btcusdt@depth5@100ms","data":{}}"#), Class::Other);
        assert_eq!(classify(br#"{"stream":"btcusdt@bookTicker","data":{}}"#), Class::Other);
        assert_eq!(classify(br#"{"stream":"btc\"usdt@depth","data":{}}"#), Class::Other);
        assert_eq!(classify(br#"{"stream":"btcusdt@depth"#), Class::Other);
        assert_eq!(classify(br#"{"stream":"btcusdt@dep"#), Class::Other);
        assert_eq!(classify(br#"{"stream":"#), Class::Other);
        assert_eq!(classify(b""), Class::Other);
        assert_eq!(classify(b"{"), Class::Other);
        assert_eq!(classify(br#"{"e":"depthUpdate"}"#), Class::Other);
    }
}
