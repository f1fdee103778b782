//! The built-in market: a seeded generator of Binance combined-stream frames (pending).

use hft_shared::Px;

/// Parameters of one symbol's synthetic market.
#[derive(Clone, Debug)]
pub struct SyntheticParams {
    /// Upper-case symbol, e.g. `BTCUSDT`.
    pub symbol: String,
    pub seed: u64,
    pub start_price: Px,
    pub tick_size: Px,
    /// Price levels per side.
    pub depth_levels: usize,
}

/// One symbol's generator. See the module docs.
#[derive(Debug)]
pub struct SyntheticMarket {
    buf: Vec<u8>,
}

impl SyntheticMarket {
    pub fn new(_p: &SyntheticParams) -> Self {
        Self { buf: Vec::new() }
    }
    /// The REST depth snapshot body of the current book.
    pub fn snapshot(&mut self) -> &[u8] {
        &self.buf
    }
    /// The next combined-stream frame and its market time in ns.
    pub fn next_frame(&mut self) -> (&[u8], u64) {
        (&self.buf, 0)
    }
}
