//! Market making quotes at the venue: while `marketmaking` is active the engine keeps its bid
//! and ask resting as GTC limit orders at the strategy's quotes (one order per side at most,
//! never crossing the book), they fill as maker, their PnL is attributed to market making, and
//! deactivating it or halting takes them off the venue at once.

use hft_engine::engine::Pipeline;
use hft_engine::feed::FrameKind;
use hft_engine::feed::source::synthetic_params;
use hft_engine::feed::synthetic::SyntheticMarket;
use hft_shared::config::Config;
use hft_shared::msg::{Command, CommandKind, Event, Liquidity};
use hft_shared::{OrderKind, Qty, Side, StrategyKind, SymbolId, TimeInForce};

const MM: u8 = 1 << StrategyKind::MarketMaking.index();

struct Run {
    p: Pipeline,
    rx: rtrb::Consumer<Event>,
    m: SyntheticMarket,
    ts_ns: u64,
    seq: u64,
    /// Market making's orders sent, and its fills (as maker).
    quotes_sent: u32,
    maker_fills: u32,
}

impl Run {
    fn new() -> Self {
        // Market making alone, quoting only (weight 0: no part in the target), with a
        // half-spread the synthetic market trades through, and no maker fee: the quotes' edge
        // stays small against the market's moves, and the breakers are not what this tests.
        let text = "[strategies.momentum]\nenabled = false\n[strategies.meanreversion]\nenabled = false\n\
                    [strategies.breakout]\nenabled = false\n[strategies.marketmaking]\nenabled = true\n\
                    weight = 0.0\nhalf_spread = 0.0002\nrequote_ms = 200\n[fees]\nmaker = 0.0\n[risk]\norder_cooldown_ms = 50\n";
        let cfg = Config::from_toml_str(text, &|_| None).unwrap();
        let (tx, rx) = rtrb::RingBuffer::new(1 << 16);
        let mut p = Pipeline::new(&cfg, tx);
        let mut m = SyntheticMarket::new(&synthetic_params(&cfg)[0]);
        let (ts_ns, raw) = (m.market_time_ns(), p.clock().raw());
        p.on_frame(FrameKind::Snapshot(SymbolId(0)), m.snapshot(), raw, ts_ns);
        Self { p, rx, m, ts_ns, seq: 0, quotes_sent: 0, maker_fills: 0 }
    }

    /// Market making's open orders: (bids, asks).
    fn open_quotes(&self) -> (usize, usize) {
        let open = self.p.orders().open_orders().iter().filter(|o| o.strategies == MM);
        open.fold((0, 0), |(b, a), o| if o.side == Side::Buy { (b + 1, a) } else { (b, a + 1) })
    }

    /// `n` frames; checks every market-making order as it is sent, and at most one open order
    /// per side after every frame. Returns how many frames had both sides resting.
    fn frames(&mut self, n: usize) -> usize {
        let mut two_sided = 0;
        for _ in 0..n {
            let (bytes, ts) = self.m.next_frame();
            self.ts_ns = ts;
            let raw = self.p.clock().raw();
            self.p.on_frame(FrameKind::Stream, bytes, raw, ts);
            let touch = self.p.quote(SymbolId(0));
            while let Ok(ev) = self.rx.pop() {
                match ev {
                    Event::Order(o) if o.strategies == MM => {
                        self.quotes_sent += 1;
                        assert_eq!((o.kind, o.tif), (OrderKind::Limit, TimeInForce::Gtc), "{o:?}");
                        match o.side {
                            Side::Buy => {
                                assert!(o.px < touch.ask, "a bid at {:?} crosses the ask {:?}", o.px, touch.ask)
                            }
                            Side::Sell => {
                                assert!(o.px > touch.bid, "an ask at {:?} crosses the bid {:?}", o.px, touch.bid)
                            }
                        }
                    }
                    Event::Fill(f) => {
                        // Only the quotes trade (weight 0: no target): they never take the
                        // position past `max_inventory` (0.01 BTC) either way.
                        assert!(f.position.abs() <= Qty::parse("0.01").unwrap(), "inventory {:?}", f.position);
                        self.maker_fills += u32::from(f.liquidity == Liquidity::Maker);
                    }
                    _ => {}
                }
            }
            let (bids, asks) = self.open_quotes();
            assert!(bids <= 1 && asks <= 1, "one quote per side at most: {bids} bids, {asks} asks");
            two_sided += usize::from(bids == 1 && asks == 1);
        }
        two_sided
    }

    fn command(&mut self, kind: CommandKind) {
        self.seq += 1;
        self.p.on_command(Command { seq: self.seq, kind }, self.ts_ns);
    }
}

#[test]
fn market_making_keeps_two_sided_quotes_resting_and_takes_them_off_when_told() {
    let mut r = Run::new();
    let two_sided = r.frames(40_000);
    assert!(two_sided > 10_000, "both sides quoted most of the time: {two_sided} of 40000 frames");
    assert!(r.quotes_sent > 20, "quotes replaced as the market moved: {}", r.quotes_sent);
    assert!(r.maker_fills > 0, "quotes filled as maker");
    let slots = &r.p.orchestrator().slots;
    assert!(slots[StrategyKind::MarketMaking.index()].orders >= u64::from(r.quotes_sent));
    let attributed = slots.iter().fold(r.p.unattributed_realized(), |sum, s| sum + s.realized);
    assert_eq!(attributed, r.p.position(SymbolId(0)).realized_net(), "attribution is exact");

    // Deactivated: its quotes are cancelled on the next tick and none is sent again.
    r.command(CommandKind::Deactivate(StrategyKind::MarketMaking));
    r.frames(2_000);
    assert_eq!(r.open_quotes(), (0, 0), "quotes left after deactivating");
    let sent = r.quotes_sent;
    r.frames(5_000);
    assert_eq!(r.quotes_sent, sent, "quotes sent while inactive");

    // Active again, then halted: a halt leaves nothing at the venue, and nothing is quoted
    // until trading resumes.
    r.command(CommandKind::Activate(StrategyKind::MarketMaking));
    r.frames(5_000);
    assert!(r.quotes_sent > sent, "quoting again once active");
    r.command(CommandKind::Halt);
    let sent = r.quotes_sent;
    r.frames(5_000);
    assert_eq!(r.open_quotes(), (0, 0), "quotes left while halted");
    assert_eq!(r.quotes_sent, sent, "quotes sent while halted");
    r.command(CommandKind::Resume);
    r.frames(5_000);
    assert_eq!(r.p.risk().kill_switch(), None);
    assert!(r.quotes_sent > sent, "quoting again after resume");
}
