//! Strategy orders as resting limit orders (`exec.order_type = "limit"`) through the fill model:
//! they join the touch, fill as maker when the market trades through their queue, and are
//! canceled once older than `exec.limit_ttl_ms`; positions follow the fills exactly.

use hft_engine::engine::Pipeline;
use hft_engine::feed::FrameKind;
use hft_engine::feed::source::synthetic_params;
use hft_engine::feed::synthetic::SyntheticMarket;
use hft_shared::config::Config;
use hft_shared::msg::{Event, Liquidity, OrderStatus};
use hft_shared::{OrderKind, Qty, SymbolId};

#[test]
fn limit_orders_rest_fill_as_maker_and_expire() {
    let text = "[exec]\norder_type = \"limit\"\nlimit_ttl_ms = 500\n[risk]\norder_cooldown_ms = 50\n";
    let cfg = Config::from_toml_str(text, &|_| None).unwrap();
    let (tx, mut rx) = rtrb::RingBuffer::new(1 << 16);
    let mut p = Pipeline::new(&cfg, tx);
    let mut m = SyntheticMarket::new(&synthetic_params(&cfg)[0]);
    let (ts, raw) = (m.market_time_ns(), p.clock().raw());
    p.on_frame(FrameKind::Snapshot(SymbolId(0)), m.snapshot(), raw, ts);
    let (mut limits, mut maker_fills, mut expired, mut pos) = (0, 0, 0, 0i64);
    for _ in 0..60_000 {
        let (bytes, ts) = m.next_frame();
        let raw = p.clock().raw();
        p.on_frame(FrameKind::Stream, bytes, raw, ts);
        while let Ok(ev) = rx.pop() {
            match ev {
                Event::Order(o) if o.kind == OrderKind::Limit => limits += 1,
                Event::Fill(f) => {
                    maker_fills += (f.liquidity == Liquidity::Maker) as u32;
                    pos += f.side.sign() * f.qty.raw();
                    assert_eq!(f.position, Qty(pos), "fills add up to the position");
                }
                Event::OrderUpdate(u) if u.status == OrderStatus::Canceled => expired += 1,
                _ => {}
            }
        }
    }
    assert!(limits >= 10, "strategy orders went out as limits: {limits}");
    assert!(maker_fills > 0, "some rested and filled as maker");
    assert!(expired > 0, "some outlived their TTL and were canceled");
    assert_eq!(p.position(SymbolId(0)).qty, Qty(pos));
}
