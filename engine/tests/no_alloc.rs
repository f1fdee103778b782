//! Proves the hot loop allocates nothing after warm-up: a counting global allocator watches the
//! engine's own thread while the duty cycle runs ≥ 100k synthetic frames through decode → book
//! → strategy → risk → paper fill, with commands arriving and events being drained.

use hft_engine::Engine;
use hft_shared::config::Config;
use hft_shared::msg::{Command, CommandKind, Event};

mod common;

#[test]
fn hot_loop_does_not_allocate_after_warm_up() {
    // The market runs as fast as the CPU allows (thousands of frames per wall-clock ms), so the
    // venue's order-rate limit and the duplicate window would otherwise silence the order path.
    let toml = "[market]\nrate = 0\n[engine]\nsnapshot_ms = 10\nheartbeat_ms = 10\n\
                [risk]\norder_cooldown_ms = 0\norders_per_10s = 100000\norders_per_day = 100000000\nduplicate_window_ms = 0\n";
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

    common::alloc::start();
    let mut seq = 0;
    let mut passes = 0u64;
    while engine.pipeline().counters().frames < before.frames + 150_000 {
        engine.poll();
        passes += 1;
        if passes.is_multiple_of(500) {
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
    let allocs = common::alloc::stop();
    let after = *engine.pipeline().counters();

    assert!(after.frames - before.frames >= 100_000);
    assert!(after.orders > before.orders, "orders were sent while watching");
    assert!(after.fills > before.fills, "fills happened while watching");
    assert_eq!(after.decode_errors_total(), 0);
    assert!(drained > 0);
    assert_eq!(allocs, 0, "the hot loop allocated {allocs} times after warm-up");
}
