//! When the event ring is full the engine must not lose audit events: it parks them, stops
//! opening risk (refusing with `Backpressure`), and once the ring drains delivers every parked
//! event in order, reports `BackpressureOff`, and trades again.

use hft_engine::Engine;
use hft_shared::config::Config;
use hft_shared::msg::{Command, Event, RejectReason, RiskEventKind};

#[test]
fn full_event_ring_closes_risk_and_loses_no_audit_event() {
    // The market runs as fast as the CPU allows: lift the venue's order-rate limit and the
    // duplicate window, which would otherwise silence the order path within milliseconds.
    let toml = "[market]\nrate = 0\n[engine]\nevent_ring = 64\nsnapshot_ms = 10\nheartbeat_ms = 10\n\
                [risk]\norder_cooldown_ms = 0\norders_per_10s = 100000\norders_per_day = 100000000\nduplicate_window_ms = 0\n";
    let cfg = Config::from_toml_str(toml, &|_| None).expect("config");
    let (_cmd_tx, cmd_rx) = rtrb::RingBuffer::<Command>::new(16);
    let (ev_tx, mut ev_rx) = rtrb::RingBuffer::<Event>::new(cfg.engine.event_ring);
    let mut engine = Engine::new(&cfg, cmd_rx, ev_tx).expect("engine");

    // Nobody drains: the ring fills, audit events park, risk closes.
    let mut passes = 0;
    while !engine.pipeline().state().backpressure {
        engine.poll();
        passes += 1;
        assert!(passes < 1_000_000, "the ring never filled");
    }
    let orders_at_block = engine.pipeline().counters().orders;
    for _ in 0..200_000 {
        engine.poll();
    }
    let c = engine.pipeline().counters();
    assert_eq!(c.orders, orders_at_block, "no new order while audit events are parked");
    assert!(
        engine.pipeline().risk().rejects[RejectReason::Backpressure.index()] > 0,
        "strategy orders were refused for back-pressure"
    );

    // Drain: every order and fill the engine counted arrives, in order, then risk reopens.
    let mut orders = 0u64;
    let mut fills = 0u64;
    let mut off = 0;
    let mut last_order_id = 0;
    let mut on = 0;
    for _ in 0..200_000 {
        while let Ok(ev) = ev_rx.pop() {
            match ev {
                Event::Order(o) => {
                    assert!(o.id.0 > last_order_id, "orders arrive in order");
                    last_order_id = o.id.0;
                    orders += 1;
                }
                Event::Fill(_) => fills += 1,
                Event::Risk(r) if r.kind == RiskEventKind::BackpressureOn => on += 1,
                Event::Risk(r) if r.kind == RiskEventKind::BackpressureOff => off += 1,
                _ => {}
            }
        }
        engine.poll();
        if off > 0 && engine.pipeline().counters().orders > orders_at_block + 3 {
            break;
        }
    }
    while let Ok(ev) = ev_rx.pop() {
        match ev {
            Event::Order(_) => orders += 1,
            Event::Fill(_) => fills += 1,
            _ => {}
        }
    }
    let c = engine.pipeline().counters();
    assert!(on >= 1 && off >= 1, "back-pressure was reported on ({on}) and off ({off})");
    assert!(c.orders > orders_at_block, "trading resumed after the ring drained");
    assert_eq!(orders, c.orders, "every order the engine sent was delivered");
    assert_eq!(fills, c.fills, "every fill was delivered");
    assert!(engine.pipeline().sink_telemetry_dropped() > 0, "telemetry was dropped, and counted");
}
