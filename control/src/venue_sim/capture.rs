//! Capture files as a timeline: gzip (detected by its magic bytes, multi-member) or plain text,
//! one `<recv_ns> <json>` per line, read on a dedicated thread and handed to the broadcaster
//! through a bounded channel (so memory stays flat whatever the capture's size).
//!
//! Runs on its own std thread (blocking file and gzip I/O, JSON parsing off the runtime);
//! allocates freely. A line that is not `<ns> <json>` of a known shape is skipped, counted and
//! logged (the first few); an unreadable file stops the simulator; a truncated gzip tail (a
//! recorder that was killed) ends that file with a warning.

use super::timeline::Item;
use super::wire::{self, Parsed};
use anyhow::{Context, anyhow, bail};
use flate2::bufread::MultiGzDecoder;
use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

/// A silence longer than this between two recorded frames is shortened to it (a capture that
/// spans a restart of its recorder would otherwise pause the replay for hours), ns.
pub const MAX_SILENCE_NS: u64 = 10_000_000_000;
/// Skipped lines logged individually; later ones are only counted.
const LOGGED_SKIPS: u64 = 10;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Opens a capture, gzip or plain.
fn open(path: &Path) -> anyhow::Result<Box<dyn BufRead + Send>> {
    let file = File::open(path).with_context(|| format!("cannot open capture {}", path.display()))?;
    let mut buf = BufReader::with_capacity(1 << 16, file);
    let head = buf.fill_buf().with_context(|| format!("cannot read capture {}", path.display()))?;
    Ok(if head.starts_with(&GZIP_MAGIC) {
        Box::new(BufReader::with_capacity(1 << 16, MultiGzDecoder::new(buf)))
    } else {
        Box::new(buf)
    })
}

/// Checks at start-up that every file can be opened (a typo fails before the server binds).
pub fn check(files: &[PathBuf]) -> anyhow::Result<()> {
    for f in files {
        if f.is_dir() {
            bail!("capture {} is a directory", f.display());
        }
        open(f)?;
    }
    Ok(())
}

/// Elapsed timeline time of one pass: the sum of the recorded gaps between consecutive frames,
/// each clamped to `0..=MAX_SILENCE_NS` (clocks that step back, files from different days).
#[derive(Debug, Default)]
struct PassClock {
    prev: Option<u64>,
    elapsed: u64,
}

impl PassClock {
    fn advance(&mut self, recv_ns: u64) -> u64 {
        if let Some(p) = self.prev {
            self.elapsed += recv_ns.saturating_sub(p).min(MAX_SILENCE_NS);
        }
        self.prev = Some(recv_ns);
        self.elapsed
    }
}

/// One line → an item; `Ok(None)` for a blank line.
fn parse_line(line: &[u8], clock: &mut PassClock) -> anyhow::Result<Option<Item>> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let sp = line.iter().position(|&b| b == b' ').ok_or_else(|| anyhow!("no `<ns> ` prefix"))?;
    let ns = std::str::from_utf8(&line[..sp])
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| anyhow!("the receive time is not an integer of ns"))?;
    let json = String::from_utf8(line[sp + 1..].to_vec()).map_err(|_| anyhow!("not UTF-8"))?;
    Ok(Some(match wire::parse(json)? {
        Parsed::Frame { frame, data } => Item::Frame { at_ns: clock.advance(ns), frame, data },
        Parsed::Snapshot(s) => Item::Snapshot(s),
    }))
}

enum Pass {
    /// Every file was read; this many frames.
    Done(u64),
    /// The broadcaster is gone.
    Stopped,
}

fn read_pass(files: &[PathBuf], tx: &mpsc::Sender<Item>, skipped: &AtomicU64) -> anyhow::Result<Pass> {
    let mut clock = PassClock::default();
    let mut frames = 0u64;
    let mut line = Vec::with_capacity(4096);
    for path in files {
        let mut r = open(path)?;
        let mut n = 0u64;
        loop {
            line.clear();
            match r.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => n += 1,
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                    tracing::warn!(file = %path.display(), after_line = n, "the capture is truncated; going on with the next file");
                    break;
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot read capture {} at line {}", path.display(), n + 1));
                }
            }
            let item = match parse_line(&line, &mut clock) {
                Ok(Some(item)) => item,
                Ok(None) => continue,
                Err(e) => {
                    if skipped.fetch_add(1, Ordering::Relaxed) < LOGGED_SKIPS {
                        tracing::warn!(file = %path.display(), line = n, "skipping a line: {e:#}");
                    }
                    continue;
                }
            };
            frames += matches!(item, Item::Frame { .. }) as u64;
            if tx.blocking_send(item).is_err() {
                return Ok(Pass::Stopped);
            }
        }
    }
    Ok(Pass::Done(frames))
}

/// Starts the reader thread: every file in order, then [`Item::End`] — or, with `looping`,
/// [`Item::Restart`] and again (unless a pass had no frame at all). Errors arrive as
/// [`Item::Fatal`]. The thread ends when the receiver is dropped.
pub fn spawn(
    files: Vec<PathBuf>,
    looping: bool,
    tx: mpsc::Sender<Item>,
    skipped: Arc<AtomicU64>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("venue-sim-reader".into())
        .spawn(move || {
            loop {
                let last = match read_pass(&files, &tx, &skipped) {
                    Ok(Pass::Stopped) => return,
                    Ok(Pass::Done(frames)) if looping && frames > 0 => Item::Restart,
                    Ok(Pass::Done(_)) => Item::End,
                    Err(e) => Item::Fatal(e),
                };
                let again = matches!(last, Item::Restart);
                if tx.blocking_send(last).is_err() || !again {
                    return;
                }
            }
        })
        .context("cannot start the capture reader thread")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn item_kind(i: &Item) -> String {
        match i {
            Item::Frame { at_ns, frame, data } => {
                format!("F{at_ns}:{}:{}", frame.stream, matches!(data, wire::Data::Diff(_)))
            }
            Item::Snapshot(s) => format!("S{}", s.last_update_id),
            Item::Restart => "R".into(),
            Item::End => "E".into(),
            Item::Fatal(e) => format!("X{e:#}"),
        }
    }

    const TRADE: &str = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"1.00000000","q":"1.00000000","T":1,"m":true,"M":true}}"#;
    const DEPTH: &str =
        r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":5,"u":6,"b":[],"a":[]}}"#;

    fn collect(files: Vec<PathBuf>, looping: bool, max: usize) -> (Vec<String>, u64) {
        let (tx, mut rx) = mpsc::channel(4);
        let skipped = Arc::new(AtomicU64::new(0));
        let h = spawn(files, looping, tx, skipped.clone()).expect("thread");
        let mut out = Vec::new();
        while let Some(i) = rx.blocking_recv() {
            out.push(item_kind(&i));
            if out.len() == max {
                break;
            }
        }
        drop(rx);
        h.join().expect("reader thread");
        (out, skipped.load(Ordering::Relaxed))
    }

    #[test]
    fn reads_gzip_and_plain_skips_bad_lines_and_loops() {
        let dir = tempfile::tempdir().expect("dir");
        let gz = dir.path().join("a.gz");
        let mut enc = flate2::write::GzEncoder::new(File::create(&gz).expect("create"), flate2::Compression::fast());
        write!(
            enc,
            "100 {TRADE}\n150 {{\"lastUpdateId\":4,\"bids\":[],\"asks\":[]}}\n\ngarbage\n200 {{\"x\":1}}\n300 {DEPTH}\n"
        )
        .expect("write");
        enc.finish().expect("finish");
        let plain = dir.path().join("b.txt");
        // Time steps back between files (counted as 0), then a silence longer than the cap.
        std::fs::write(&plain, format!("50 {TRADE}\r\n{} {TRADE}", 50 + 3 * MAX_SILENCE_NS)).expect("write");
        check(&[gz.clone(), plain.clone()]).expect("both open");
        assert!(check(&[dir.path().join("missing.gz")]).is_err());

        let (items, skipped) = collect(vec![gz.clone(), plain.clone()], false, 100);
        let cap = MAX_SILENCE_NS + 200;
        let want = [
            "F0:btcusdt@trade:false".to_string(),
            "S4".into(),
            "F200:btcusdt@depth@100ms:true".into(),
            "F200:btcusdt@trade:false".into(),
            format!("F{cap}:btcusdt@trade:false"),
            "E".into(),
        ];
        assert_eq!(items, want);
        assert_eq!(skipped, 2);

        let (items, _) = collect(vec![gz], true, 8);
        assert_eq!(items[3..6], ["R", "F0:btcusdt@trade:false", "S4"]);
    }

    #[test]
    fn a_truncated_gzip_ends_its_file() {
        let dir = tempfile::tempdir().expect("dir");
        let gz = dir.path().join("t.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for i in 0..2000 {
            writeln!(enc, "{i} {TRADE}").expect("write");
        }
        let bytes = enc.finish().expect("finish");
        std::fs::write(&gz, &bytes[..bytes.len() - 20]).expect("write");
        let (items, _) = collect(vec![gz], false, 10_000);
        assert!(items.len() > 1000 && items.len() < 2001, "{}", items.len());
        assert_eq!(items.last().map(String::as_str), Some("E"));
    }
}
