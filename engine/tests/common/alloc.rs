//! A counting global allocator for proving code allocation-free. Counting is per thread and only
//! while watching, so tests running in parallel (and the test harness itself) do not interfere.
//! Including this module installs it as the test binary's global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: the allocator may run while thread-locals are being torn down.
    let _ = WATCHING.try_with(|w| {
        if w.get() {
            let _ = ALLOCS.try_with(|a| a.set(a.get() + 1));
        }
    });
}

// SAFETY: delegates every call unchanged to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Starts counting this thread's allocations from zero.
pub fn start() {
    ALLOCS.with(|a| a.set(0));
    WATCHING.with(|w| w.set(true));
}

/// Stops counting; returns the allocations since `start`.
pub fn stop() -> u64 {
    WATCHING.with(|w| w.set(false));
    ALLOCS.with(|a| a.get())
}

/// Allocations this thread made while running `f`.
pub fn allocations_in(f: impl FnOnce()) -> u64 {
    start();
    f();
    stop()
}

/// This thread's allocations counted so far (since the last `start`).
pub fn count() -> u64 {
    ALLOCS.with(|a| a.get())
}

/// Turns counting on or off without resetting; returns the count so far.
pub fn watch(on: bool) -> u64 {
    WATCHING.with(|w| w.set(on));
    count()
}
