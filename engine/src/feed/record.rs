//! Capture of received frames, in the format of the Binance captures this project replays:
//! one line per frame, `<receive time, unix ns> <frame JSON>`, gzip.
//!
//! The hot thread only copies a line into a preallocated SPSC byte ring ([`Recorder::record`]
//! never blocks and never allocates); a writer thread drains the ring into the gzip file. When
//! the ring is full the frame is not captured and is counted (`dropped`): a capture is telemetry,
//! never a reason to slow trading. WS-API depth answers are written as their bare `result` body,
//! the REST snapshot form replay expects.

use super::decode::api_response;
use super::source::FrameKind;
use flate2::Compression;
use flate2::write::GzEncoder;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::thread::JoinHandle;
use std::time::Duration;

/// Byte ring between the hot thread and the writer.
pub const RING_BYTES: usize = 16 << 20;

/// What the writer thread reports when it ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordSummary {
    /// Frames queued by the hot thread.
    pub frames: u64,
    /// Frames not captured: the ring was full, or the frame had a raw newline.
    pub dropped: u64,
    /// Uncompressed bytes written.
    pub bytes: u64,
}

#[derive(Debug)]
pub struct Recorder {
    tx: rtrb::Producer<u8>,
    frames: u64,
    dropped: u64,
    writer: JoinHandle<io::Result<u64>>,
}

impl Recorder {
    /// Creates (truncates) `path` and starts the writer thread. Errors name nothing secret and
    /// happen here, before any frame is taken.
    pub fn create(path: &Path) -> io::Result<Self> {
        let file = File::create(path)?;
        let (tx, mut rx) = rtrb::RingBuffer::<u8>::new(RING_BYTES);
        let writer = std::thread::Builder::new().name("hft-record".into()).spawn(move || {
            let mut gz = GzEncoder::new(BufWriter::with_capacity(1 << 20, file), Compression::fast());
            let mut bytes = 0u64;
            loop {
                let n = rx.slots();
                if n > 0 {
                    let chunk = rx.read_chunk(n).map_err(|_| io::Error::other("capture ring"))?;
                    let (a, b) = chunk.as_slices();
                    gz.write_all(a)?;
                    gz.write_all(b)?;
                    bytes += n as u64;
                    chunk.commit_all();
                } else if rx.is_abandoned() {
                    break;
                } else {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            gz.finish()?.flush()?;
            Ok(bytes)
        })?;
        Ok(Self { tx, frames: 0, dropped: 0, writer })
    }

    /// Queues one received frame. Never blocks, never allocates.
    #[inline]
    pub fn record(&mut self, recv_unix_ns: u64, kind: FrameKind, frame: &[u8]) {
        let body = match kind {
            FrameKind::Snapshot(_) => match api_response(frame) {
                Ok(Some(r)) => match r.result {
                    Some(result) if r.status == 200 => result,
                    _ => return, // a venue error is not market data
                },
                _ => frame, // already a bare REST body
            },
            FrameKind::Stream => frame,
        };
        if body.contains(&b'\n') {
            self.dropped += 1;
            return;
        }
        let mut ns = itoa::Buffer::new();
        let ns = ns.format(recv_unix_ns).as_bytes();
        let len = ns.len() + 1 + body.len() + 1;
        let Ok(mut chunk) = self.tx.write_chunk(len) else {
            self.dropped += 1;
            return;
        };
        let (a, b) = chunk.as_mut_slices();
        let mut w = SplitWriter { a, b, at: 0 };
        w.put(ns);
        w.put(b" ");
        w.put(body);
        w.put(b"\n");
        chunk.commit_all();
        self.frames += 1;
    }

    pub fn frames(&self) -> u64 {
        self.frames
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Stops taking frames, lets the writer drain the ring and close the gzip stream.
    pub fn finish(self) -> io::Result<RecordSummary> {
        let Recorder { tx, frames, dropped, writer } = self;
        drop(tx);
        let bytes = writer.join().map_err(|_| io::Error::other("the capture writer panicked"))??;
        Ok(RecordSummary { frames, dropped, bytes })
    }
}

/// Writes consecutive pieces across the two halves of a ring chunk.
struct SplitWriter<'a> {
    a: &'a mut [u8],
    b: &'a mut [u8],
    at: usize,
}

impl SplitWriter<'_> {
    #[inline]
    fn put(&mut self, mut src: &[u8]) {
        if self.at < self.a.len() {
            let n = src.len().min(self.a.len() - self.at);
            self.a[self.at..self.at + n].copy_from_slice(&src[..n]);
            self.at += n;
            src = &src[n..];
        }
        if !src.is_empty() {
            let off = self.at - self.a.len();
            self.b[off..off + src.len()].copy_from_slice(src);
            self.at += src.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hft_shared::SymbolId;
    use std::io::Read;

    #[test]
    fn lines_are_written_in_the_capture_format_and_snapshots_unwrapped() {
        let dir = std::env::temp_dir().join(format!("hft-record-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cap.gz");
        let mut r = Recorder::create(&path).unwrap();
        r.record(1, FrameKind::Stream, br#"{"stream":"btcusdt@trade","data":{}}"#);
        r.record(
            2,
            FrameKind::Snapshot(SymbolId(0)),
            br#"{"id":"1","status":200,"result":{"lastUpdateId":5,"bids":[],"asks":[]}}"#,
        );
        r.record(3, FrameKind::Snapshot(SymbolId(0)), br#"{"id":"2","status":400,"error":{"code":-1100,"msg":"x"}}"#);
        r.record(4, FrameKind::Stream, b"{\n}");
        // Far more than the ring holds at once: wrapping chunks must stay intact.
        let big = format!("{{\"stream\":\"x\",\"data\":\"{}\"}}", "y".repeat(100_000));
        for i in 0..400 {
            r.record(10 + i, FrameKind::Stream, big.as_bytes());
        }
        let dropped = r.dropped();
        let s = r.finish().unwrap();
        assert_eq!(s.dropped, dropped);
        let mut text = String::new();
        flate2::read::GzDecoder::new(File::open(&path).unwrap()).read_to_string(&mut text).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], r#"1 {"stream":"btcusdt@trade","data":{}}"#);
        assert_eq!(lines[1], r#"2 {"lastUpdateId":5,"bids":[],"asks":[]}"#);
        assert_eq!(lines.len() as u64, s.frames, "every counted frame is a line; venue errors are not captured");
        assert!(dropped >= 1, "the raw-newline frame was counted");
        for (i, l) in lines[2..].iter().enumerate() {
            let (ns, json) = l.split_once(' ').unwrap();
            assert!(ns.parse::<u64>().unwrap() >= 10 + i as u64);
            assert_eq!(*json, big);
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
