//! Sampled stage timers (`Pipeline::set_timing_every`, what backtests use): only the sampled
//! frames are timed, and no decision changes — the same frames give the same orders and fills
//! whether every frame, one in eight, or none is timed.

use hft_engine::engine::Pipeline;
use hft_engine::feed::FrameKind;
use hft_engine::feed::source::synthetic_params;
use hft_engine::feed::synthetic::SyntheticMarket;
use hft_shared::config::Config;
use hft_shared::msg::{Event, Stage};
use hft_shared::{Amount, OrderId, Px, Qty, SymbolId};

const FRAMES: u64 = 40_000;

/// What one run decided and measured.
struct Run {
    /// Orders without their measured latency, in order.
    orders: Vec<(OrderId, Qty, Px, u64)>,
    fills: Vec<(OrderId, Px, Qty, Amount)>,
    /// Frames timed (the decode stage's count).
    timed: u64,
    /// Orders carrying a tick-to-order time.
    with_t2o: u64,
}

fn run(every: u64) -> Run {
    let cfg = Config::from_toml_str(
        "[strategies.momentum]\nlookback = 2\nthreshold = 0.000001\n[risk]\norder_cooldown_ms = 50\n",
        &|_| None,
    )
    .unwrap();
    let (tx, mut rx) = rtrb::RingBuffer::new(1 << 16);
    let mut p = Pipeline::new(&cfg, tx);
    p.set_timing_every(every);
    let mut m = SyntheticMarket::new(&synthetic_params(&cfg)[0]);
    let (mut orders, mut fills, mut t2o) = (Vec::new(), Vec::new(), 0);
    let ts = m.market_time_ns();
    p.on_frame(FrameKind::Snapshot(SymbolId(0)), m.snapshot(), p.clock().raw(), ts);
    for _ in 0..FRAMES {
        let (bytes, ts) = m.next_frame();
        let raw = if p.next_frame_timed() { p.clock().raw() } else { 0 };
        p.on_frame(FrameKind::Stream, bytes, raw, ts);
        while let Ok(ev) = rx.pop() {
            match ev {
                Event::Order(o) => {
                    orders.push((o.id, o.qty, o.px, o.frame_ts_ns));
                    t2o += u64::from(o.tick_to_order_ns > 0);
                }
                Event::Fill(f) => fills.push((f.order, f.px, f.qty, f.fee)),
                _ => {}
            }
        }
    }
    Run { orders, fills, timed: p.latency().percentiles(Stage::Decode).count, with_t2o: t2o }
}

#[test]
fn sampled_timers_time_one_frame_in_n_and_change_no_decision() {
    let all = run(1);
    assert!(all.orders.len() > 50 && !all.fills.is_empty(), "{} orders", all.orders.len());
    assert_eq!(all.timed, FRAMES + 1, "every frame timed");
    let eighth = run(8);
    assert_eq!((&eighth.orders, &eighth.fills), (&all.orders, &all.fills));
    // Frames 8, 16, …: the snapshot is frame 1.
    assert_eq!(eighth.timed, (FRAMES + 1) / 8);
    assert!(eighth.with_t2o < eighth.orders.len() as u64, "untimed orders carry no tick-to-order time");
    let none = run(1 << 40);
    assert_eq!((&none.orders, &none.fills), (&all.orders, &all.fills));
    assert_eq!((none.timed, none.with_t2o), (0, 0));
}
