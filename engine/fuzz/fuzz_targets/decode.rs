//! Fuzz target: every decoder on arbitrary bytes. Never panics; the fast path either defers to
//! the general path or agrees with it exactly; depth levels never exceed the scratch capacity.
//!
//! Run: `cd engine && cargo fuzz run decode` (needs cargo-fuzz and a nightly toolchain).
#![no_main]

use hft_engine::feed::decode::{self, DecodeError, DecodeScratch, fast, general};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut a = DecodeScratch::with_capacity(64);
    let mut b = DecodeScratch::with_capacity(64);
    let fast = fast::decode(data, &mut a);
    let general = general::decode(data, &mut b);
    if fast != Err(DecodeError::Fallback) {
        assert_eq!(fast, general, "fast and general paths disagree");
        if fast.is_ok() {
            assert_eq!(a.bids, b.bids);
            assert_eq!(a.asks, b.asks);
        }
    }
    let mut c = DecodeScratch::with_capacity(64);
    let _ = decode::decode(data, &mut c);
    assert!(c.bids.len() <= 64 && c.asks.len() <= 64);
    let _ = decode::api_response(data);
});
