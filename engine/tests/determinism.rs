//! The same frames and config produce the same orders: every decision reads the frame's time,
//! never the wall clock (which only feeds latency measurements).

mod common;

use common::corpus;
use hft_engine::engine::Pipeline;
use hft_engine::feed::FrameKind;
use hft_engine::feed::replay::{Pace, ReplaySource};
use hft_engine::feed::source::synthetic_params;
use hft_engine::feed::synthetic::SyntheticMarket;
use hft_shared::config::Config;
use hft_shared::msg::Event;
use hft_shared::{Amount, OrderId, Px, Qty, Side, SymbolId};

/// What must repeat exactly: each order (without its measured latency) and each fill.
#[derive(Debug, Clone, PartialEq)]
enum Decision {
    Order { id: OrderId, side: Side, qty: Qty, px: Px, decision_px: Px, frame_ts_ns: u64, strategies: u8 },
    Fill { order: OrderId, px: Px, qty: Qty, fee: Amount, position: Qty },
}

fn drain(rx: &mut rtrb::Consumer<Event>, out: &mut Vec<Decision>) {
    while let Ok(ev) = rx.pop() {
        match ev {
            Event::Order(o) => out.push(Decision::Order {
                id: o.id,
                side: o.side,
                qty: o.qty,
                px: o.px,
                decision_px: o.decision_px,
                frame_ts_ns: o.frame_ts_ns,
                strategies: o.strategies,
            }),
            Event::Fill(f) => {
                out.push(Decision::Fill { order: f.order, px: f.px, qty: f.qty, fee: f.fee, position: f.position })
            }
            _ => {}
        }
    }
}

/// Every strategy on, so that all of them take part in the decisions.
fn config() -> Config {
    let text = "[strategies.meanreversion]\nenabled = true\n[strategies.breakout]\nenabled = true\n\
                [strategies.marketmaking]\nenabled = true\n[risk]\norder_cooldown_ms = 50\n";
    Config::from_toml_str(text, &|_| None).unwrap()
}

fn run_synthetic(cfg: &Config, frames: usize) -> Vec<Decision> {
    let (tx, mut rx) = rtrb::RingBuffer::new(1 << 16);
    let mut p = Pipeline::new(cfg, tx);
    let mut m = SyntheticMarket::new(&synthetic_params(cfg)[0]);
    let mut out = Vec::new();
    let ts = m.market_time_ns();
    let raw = p.clock().raw();
    p.on_frame(FrameKind::Snapshot(SymbolId(0)), m.snapshot(), raw, ts);
    for k in 0..frames {
        if k == frames / 2 {
            m.shock(500, -3.0);
        }
        let (bytes, ts) = m.next_frame();
        let raw = p.clock().raw();
        p.on_frame(FrameKind::Stream, bytes, raw, ts);
        drain(&mut rx, &mut out);
    }
    // Per-strategy attribution is exact: its parts sum to the realized PnL.
    let attributed = p.orchestrator().slots.iter().fold(p.unattributed_realized(), |sum, s| sum + s.realized);
    assert_eq!(attributed, p.position(SymbolId(0)).realized_net());
    out
}

fn run_corpus(cfg: &Config, dir: &std::path::Path) -> Vec<Decision> {
    let (tx, mut rx) = rtrb::RingBuffer::new(1 << 16);
    let mut p = Pipeline::new(cfg, tx);
    let files: Vec<_> = corpus::FILES.iter().map(|f| dir.join(f)).collect();
    let mut src = ReplaySource::new(&files, &cfg.symbols, Pace::AsFastAsPossible).unwrap();
    let mut out = Vec::new();
    while let Some(f) = src.poll_frame(0) {
        let (kind, ts) = (f.kind, f.recorded_ns);
        let raw = p.clock().raw();
        let outcome = p.on_frame(kind, f.bytes, raw, ts);
        drain(&mut rx, &mut out);
        if let Some(sym) = outcome.resync {
            src.request_snapshot(sym);
        }
    }
    out
}

#[test]
fn the_built_in_market_twice_gives_the_same_orders() {
    let cfg = config();
    let a = run_synthetic(&cfg, 40_000);
    let b = run_synthetic(&cfg, 40_000);
    let orders = a.iter().filter(|d| matches!(d, Decision::Order { .. })).count();
    assert!(orders >= 20, "too few orders to say anything: {orders}");
    assert_eq!(a, b);
}

#[test]
fn the_binance_capture_twice_gives_the_same_orders() {
    let Some(dir) = corpus::dir() else {
        eprintln!("Binance corpus absent (../shared/data/binance): covered by the built-in market test only");
        return;
    };
    let cfg = config();
    let a = run_corpus(&cfg, &dir);
    let b = run_corpus(&cfg, &dir);
    let orders = a.iter().filter(|d| matches!(d, Decision::Order { .. })).count();
    assert!(orders >= 5, "too few orders to say anything: {orders}");
    assert_eq!(a, b);
}

/// `risk.allow_short = false`: the same strategies on the same market trade as a spot account
/// could — sells, but no fill ever leaves the position below flat — where the default goes short.
#[test]
fn without_shorts_no_fill_takes_the_position_below_flat() {
    let positions = |cfg: &Config| -> Vec<(Qty, bool)> {
        run_synthetic(cfg, 40_000)
            .into_iter()
            .filter_map(|d| match d {
                Decision::Fill { position, .. } => Some(position),
                _ => None,
            })
            .map(|p| (p, p.raw() < 0))
            .collect()
    };
    let short = |fills: &[(Qty, bool)]| fills.iter().filter(|f| f.1).count();
    assert!(short(&positions(&config())) > 0, "the default goes short on this market");
    let mut spot = config();
    spot.risk.allow_short = false;
    let fills = positions(&spot);
    assert!(fills.len() >= 10, "it still trades: {} fills", fills.len());
    assert_eq!(short(&fills), 0, "{fills:?}");
}
