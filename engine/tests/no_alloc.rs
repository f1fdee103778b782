//! Proves the hot loop allocates nothing after warm-up: a counting global allocator watches the
//! engine's own thread while the duty cycle runs ≥ 100k synthetic frames through decode → book
//! → strategy → risk → paper fill, with commands arriving and events being drained.

use hft_engine::Engine;
use hft_shared::config::Config;
use hft_shared::msg::{Command, CommandKind, Event};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
}

fn note() {
    if WATCHING.with(|w| w.get()) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
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

#[test]
fn hot_loop_does_not_allocate_after_warm_up() {
    let toml = "[market]\nrate = 0\n[engine]\nsnapshot_ms = 10\nheartbeat_ms = 10\n[risk]\norder_cooldown_ms = 0\n";
    let cfg = Config::from_toml_str(toml, &|_| None).expect("config");
    let (mut cmd_tx, cmd_rx) = rtrb::RingBuffer::<Command>::new(cfg.engine.command_ring);
    let (ev_tx, mut ev_rx) = rtrb::RingBuffer::<Event>::new(cfg.engine.event_ring);
    let mut engine = Engine::new(&cfg, cmd_rx, ev_tx).expect("engine");

    let mut drained = 0u64;
    let mut drain = |rx: &mut rtrb::Consumer<Event>| {
        while rx.pop().is_ok() {
            drained += 1;
        }
    };

    // Warm-up: first snapshot, histograms touched, every code path once.
    while engine.pipeline().counters().frames < 20_000 {
        engine.poll();
        drain(&mut ev_rx);
    }
    let before = *engine.pipeline().counters();
    assert!(before.orders > 0, "warm-up must have exercised the order path");

    WATCHING.with(|w| w.set(true));
    let mut seq = 0;
    let mut passes = 0u64;
    while engine.pipeline().counters().frames < before.frames + 150_000 {
        engine.poll();
        passes += 1;
        if passes % 500 == 0 {
            seq += 1;
            let kind = match seq % 4 {
                0 => CommandKind::Halt,
                1 => CommandKind::Resume,
                2 => CommandKind::Snapshot,
                _ => CommandKind::Flatten,
            };
            let _ = cmd_tx.push(Command { seq, kind });
        }
        drain(&mut ev_rx);
    }
    WATCHING.with(|w| w.set(false));
    let allocs = ALLOCS.load(Ordering::Relaxed);
    let after = *engine.pipeline().counters();

    assert!(after.frames - before.frames >= 100_000);
    assert!(after.orders > before.orders, "orders were sent while watching");
    assert!(after.fills > before.fills, "fills happened while watching");
    assert_eq!(after.decode_errors_total(), 0);
    assert!(drained > 0);
    assert_eq!(allocs, 0, "the hot loop allocated {allocs} times after warm-up");
}
