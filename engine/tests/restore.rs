//! A restart through the pipeline: the state a previous run left (a long position, a tripped kill
//! switch, the order ids used) is taken over before the first frame. The first snapshots report
//! it; the latch holds (only flattening orders go out, with ids after the stored ones); a bad
//! restore is refused whole.

use hft_engine::engine::Pipeline;
use hft_engine::feed::FrameKind;
use hft_engine::feed::source::synthetic_params;
use hft_engine::feed::synthetic::SyntheticMarket;
use hft_engine::restore::{BreakerState, Restore, RestoreError, RestoredPosition};
use hft_engine::risk::Position;
use hft_engine::risk::breaker::DAY_NS;
use hft_shared::config::Config;
use hft_shared::msg::{Event, KillCause, OrderEvent, PositionSnapshot, RiskSnapshot};
use hft_shared::{Amount, Px, Qty, Side, SymbolId};

fn config() -> Config {
    let text = r#"
        [capital]
        total = 10000.0
        reserve = 0.0
        [risk]
        max_position = 5000.0
        max_total_position = 5000.0
        max_position_qty = 1.0
        risk_per_trade = 0.25
        kill_flatten = true
        order_cooldown_ms = 0
        [strategies.momentum]
        lookback = 2
        threshold = 0.000001
        [market]
        seed = 5
    "#;
    Config::from_toml_str(text, &|_| None).expect("config")
}

struct Run {
    orders: Vec<OrderEvent>,
    positions: Vec<PositionSnapshot>,
    risk: Vec<RiskSnapshot>,
    last_fill_position: Option<Qty>,
}

fn drain(rx: &mut rtrb::Consumer<Event>) -> Run {
    let mut run = Run { orders: Vec::new(), positions: Vec::new(), risk: Vec::new(), last_fill_position: None };
    while let Ok(ev) = rx.pop() {
        match ev {
            Event::Order(o) => run.orders.push(o),
            Event::Position(p) => run.positions.push(p),
            Event::RiskState(r) => run.risk.push(r),
            Event::Fill(f) => run.last_fill_position = Some(f.position),
            _ => {}
        }
    }
    run
}

/// 0.05 BTC bought at 60 000 for 3 fees, 40 realized before.
fn long() -> Position {
    let mut p = Position::default();
    p.on_fill(Side::Buy, Px::from_int(60_000), Qty(5_000_000), Amount::from_fixed8(300_000_000));
    p.realized = Amount::from_fixed8(4_000_000_000);
    p
}

/// A pipeline on `cfg`, its event ring, and the built-in market it trades.
fn engine(cfg: &Config) -> (Pipeline, rtrb::Consumer<Event>, SyntheticMarket) {
    let (tx, rx) = rtrb::RingBuffer::new(1 << 16);
    (Pipeline::new(cfg, tx), rx, SyntheticMarket::new(&synthetic_params(cfg)[0]))
}

#[test]
fn a_restored_trip_holds_and_the_restored_position_is_reported_then_flattened() {
    let cfg = config();
    let (mut p, mut rx, mut market) = engine(&cfg);
    let t0 = market.market_time_ns();
    let start = Px::from_f64(cfg.market.start_price).expect("price");
    let restore = Restore {
        positions: vec![RestoredPosition { symbol: SymbolId(0), position: long(), mark: start }],
        breaker: Some(BreakerState {
            day: t0 / DAY_NS,
            day_start: Amount::from_fixed8(10_050 * 100_000_000),
            peak: Amount::from_fixed8(10_080 * 100_000_000),
            tripped: Some(KillCause::DailyLoss),
        }),
        next_order_id: 42,
        // The built-in market starts at 00:00 UTC, so both orders are yesterday's: the one sent
        // 2 s ago still fills the 10-second window, the day's count starts again at 0.
        orders_sent: vec![t0 - 3_600_000_000_000, t0 - 2_000_000_000],
    };
    p.restore(&restore).expect("restore");
    assert_eq!(p.risk().order_usage(t0), (1, 0));
    assert_eq!(p.risk().order_usage(t0 - 1), (1, 2));
    assert_eq!(p.position(SymbolId(0)), &long());
    assert_eq!(p.state().kill_switch, Some(KillCause::DailyLoss));
    // The restored realized PnL is nobody's of this run.
    assert_eq!(p.unattributed_realized(), long().realized_net());

    // What the control plane sees first.
    p.emit_snapshots(t0, true);
    let first = drain(&mut rx);
    let pos = first.positions.iter().find(|s| s.symbol == SymbolId(0)).expect("a position snapshot");
    assert_eq!(
        (pos.qty, pos.avg_px, pos.fees, pos.realized),
        (Qty(5_000_000), Px::from_int(60_000), long().fees, long().realized_net())
    );
    assert_eq!(pos.mark, start, "the restored mark until the first quote");
    let risk = first.risk.last().expect("a risk snapshot");
    assert_eq!(risk.kill_switch, Some(KillCause::DailyLoss));
    assert_eq!((risk.day_start, risk.peak), restore.breaker.map(|b| (b.day_start, b.peak)).expect("breaker"));

    // Trading: tripped with kill_flatten, the only orders are reduce-only sells until flat, and
    // their ids continue after the stored ones.
    let raw = p.clock().raw();
    p.on_frame(FrameKind::Snapshot(SymbolId(0)), market.snapshot(), raw, t0);
    let mut orders = Vec::new();
    let mut position = Qty(5_000_000);
    for _ in 0..20_000 {
        let (bytes, ts) = market.next_frame();
        let raw = p.clock().raw();
        p.on_frame(FrameKind::Stream, bytes, raw, ts);
        let run = drain(&mut rx);
        orders.extend(run.orders);
        if let Some(q) = run.last_fill_position {
            position = q;
        }
    }
    assert!(!orders.is_empty(), "the restored position was flattened");
    assert!(orders.iter().all(|o| o.reduce_only && o.side == Side::Sell), "only flattening orders: {orders:?}");
    assert_eq!(orders[0].id.0, 42, "ids continue after the stored ones");
    assert_eq!(position, Qty::ZERO);
    assert_eq!(p.state().kill_switch, Some(KillCause::DailyLoss), "still tripped");
}

#[test]
fn a_bad_restore_changes_nothing() {
    let cfg = config();
    let (tx, _rx) = rtrb::RingBuffer::new(1024);
    let mut p = Pipeline::new(&cfg, tx);
    let bad = Restore {
        positions: vec![
            RestoredPosition { symbol: SymbolId(0), position: long(), mark: Px::ZERO },
            RestoredPosition { symbol: SymbolId(3), position: long(), mark: Px::ZERO },
        ],
        breaker: Some(BreakerState {
            day: 0,
            day_start: Amount::ZERO,
            peak: Amount::ZERO,
            tripped: Some(KillCause::Drawdown),
        }),
        next_order_id: 7,
        orders_sent: vec![5, 6],
    };
    assert_eq!(p.restore(&bad), Err(RestoreError::UnknownSymbol(3)));
    assert_eq!(p.position(SymbolId(0)), &Position::default());
    assert_eq!(p.risk().order_usage(6), (0, 0));
    assert_eq!(p.state().kill_switch, None);
}

/// Regression: with every strategy off, the aggregate target was 0 and the first quote after a
/// restart sent a market order selling the whole restored position. With no strategy to decide
/// a target the position is held; once one is activated, trading resumes from it.
#[test]
fn a_restart_with_every_strategy_off_holds_the_restored_position() {
    let mut cfg = config();
    let s = &mut cfg.strategies;
    (s.momentum.enabled, s.meanreversion.enabled, s.breakout.enabled, s.marketmaking.enabled) =
        (false, false, false, false);
    let (mut p, mut rx, mut market) = engine(&cfg);
    let t0 = market.market_time_ns();
    let start = Px::from_f64(cfg.market.start_price).expect("price");
    let restore = Restore {
        positions: vec![RestoredPosition { symbol: SymbolId(0), position: long(), mark: start }],
        breaker: None,
        next_order_id: 1,
        orders_sent: Vec::new(),
    };
    p.restore(&restore).expect("restore");
    let raw = p.clock().raw();
    p.on_frame(FrameKind::Snapshot(SymbolId(0)), market.snapshot(), raw, t0);
    // Frames until `frames` have passed; the orders sent and the last frame's time.
    let mut run = |p: &mut Pipeline, frames: usize| {
        let (mut orders, mut last) = (Vec::new(), t0);
        for _ in 0..frames {
            let (bytes, ts) = market.next_frame();
            let raw = p.clock().raw();
            p.on_frame(FrameKind::Stream, bytes, raw, ts);
            orders.extend(drain(&mut rx).orders);
            last = ts;
        }
        (orders, last)
    };
    let (orders, ts) = run(&mut p, 20_000);
    assert_eq!(orders, Vec::new(), "no strategy, no order");
    assert_eq!(p.position(SymbolId(0)), &long());

    p.on_command(
        hft_shared::msg::Command {
            seq: 1,
            kind: hft_shared::msg::CommandKind::Activate(hft_shared::StrategyKind::Momentum),
        },
        ts,
    );
    assert!(!run(&mut p, 20_000).0.is_empty(), "momentum trades from the restored position");
}
