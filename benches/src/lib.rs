//! Shared helpers for the harness binaries and criterion benches: frame corpora.

use hft_engine::feed::synthetic::{SyntheticMarket, SyntheticParams};
use hft_shared::Px;

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
