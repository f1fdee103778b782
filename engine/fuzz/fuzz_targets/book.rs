//! Fuzz target: the L2 book under arbitrary snapshots and diffs. Never panics; after every step
//! bids are strictly descending, asks strictly ascending, and no level has zero quantity.
//!
//! Run: `cd engine && cargo fuzz run book` (needs cargo-fuzz and a nightly toolchain).
#![no_main]

use hft_engine::book::Book;
use hft_engine::feed::decode::Level;
use hft_shared::{Px, Qty};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut book = Book::with_capacity(256);
    let mut id = 0u64;
    for chunk in data.chunks(10) {
        if chunk.len() < 10 {
            break;
        }
        let px = i64::from(u32::from_le_bytes([chunk[1], chunk[2], chunk[3], chunk[4]])) + 1;
        let qty = i64::from(u32::from_le_bytes([chunk[5], chunk[6], chunk[7], chunk[8]]) % 1000);
        let lv = [Level { px: Px(px * 1_000_000), qty: Qty(qty) }];
        let (bids, asks): (&[Level], &[Level]) = if chunk[9] & 1 == 0 { (&lv, &[]) } else { (&[], &lv) };
        match chunk[0] % 8 {
            0 => {
                let _ = book.apply_snapshot(id, bids, asks);
            }
            1 => book.invalidate(),
            _ => {
                id += 1;
                let _ = book.apply_diff(id, id, bids, asks);
            }
        }
        assert!(book.bids.check() && book.asks.check(), "book invariant broken");
    }
});
