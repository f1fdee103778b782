//! The real Binance capture (`../shared/data/binance`, or `HFT_CORPUS_DIR`): where it is, and
//! its frames. It lives outside the project, so every test that reads it must fall back to
//! generated data when `dir()` is `None`.

use flate2::read::GzDecoder;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// The capture files, in replay order.
pub const FILES: [&str; 2] = ["spot_btcusdt_20240808.gz", "spot_btcusdt_20240809.gz"];

/// The capture directory, when every file in `FILES` is there.
pub fn dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("HFT_CORPUS_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/binance")),
    };
    FILES.iter().all(|f| dir.join(f).is_file()).then_some(dir)
}

/// The frames of one capture file (each line is `<recv_ns> <frame>`; the receive time must be
/// digits).
pub fn frames(dir: &Path, file: &str) -> Vec<Vec<u8>> {
    let f = std::fs::File::open(dir.join(file)).expect("open corpus file");
    let mut r = BufReader::new(GzDecoder::new(f));
    let mut out = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line).expect("read corpus") == 0 {
            break;
        }
        while line.last().is_some_and(|c| *c == b'\n' || *c == b'\r') {
            line.pop();
        }
        let sp = line.iter().position(|&c| c == b' ').expect("`<recv_ns> <frame>`");
        assert!(line[..sp].iter().all(u8::is_ascii_digit), "receive time");
        out.push(line[sp + 1..].to_vec());
    }
    out
}

/// Every frame of every file, in order.
pub fn all_frames(dir: &Path) -> Vec<Vec<u8>> {
    FILES.iter().flat_map(|f| frames(dir, f)).collect()
}
