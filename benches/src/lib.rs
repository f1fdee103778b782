//! Shared helpers for the harness binaries and criterion benches: frame corpora.

use hft_engine::feed::synthetic::{SyntheticMarket, SyntheticParams};
use hft_shared::Px;
use std::path::PathBuf;

/// The real Binance capture's directory — `HFT_CORPUS_DIR`, else `../shared/data/binance`
/// beside the repository — when every one of `files` is in it. It lives outside the project:
/// benches that use it must say so and fall back to generated data when this is `None`.
pub fn corpus_dir(files: &[&str]) -> Option<PathBuf> {
    let dir = match std::env::var_os("HFT_CORPUS_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/binance")),
    };
    files.iter().all(|f| dir.join(f).is_file()).then_some(dir)
}

/// A pre-generated run of frames: the snapshot first, then `n` stream frames, all in memory
/// so harnesses time the engine and not the generator.
pub struct Frames {
    pub snapshot: Vec<u8>,
    pub frames: Vec<Vec<u8>>,
}

/// `n` frames of the built-in market for `symbol` (seeded, deterministic).
pub fn synthetic(symbol: &str, seed: u64, n: usize) -> Frames {
    let mut g = SyntheticMarket::new(&SyntheticParams {
        symbol: symbol.to_string(),
        seed,
        start_price: Px::from_int(60_000),
        tick_size: Px::parse("0.01").unwrap_or(Px(1_000_000)),
        depth_levels: 50,
    });
    let snapshot = g.snapshot().to_vec();
    let frames = (0..n).map(|_| g.next_frame().0.to_vec()).collect();
    Frames { snapshot, frames }
}
