//! The kill switch end to end through the pipeline: the built-in market crashes while a
//! mean-reversion strategy buys the dip, until the daily-loss breaker trips. From then on no
//! order increases exposure; `resume` alone does not reopen trading; `rearm` does.

use hft_engine::engine::Pipeline;
use hft_engine::feed::FrameKind;
use hft_engine::feed::source::synthetic_params;
use hft_engine::feed::synthetic::SyntheticMarket;
use hft_shared::config::Config;
use hft_shared::msg::{CmdOutcome, Command, CommandKind, Event, KillCause, OrderEvent, RejectReason, RiskEventKind};
use hft_shared::{Qty, Side, SymbolId};

/// Positions large against capital (so a crash can cost 5 % of it), one strategy that buys
/// falling prices, no cooldown games.
fn config(kill_flatten: bool) -> Config {
    let text = format!(
        r#"
        [capital]
        total = 10000.0
        reserve = 0.0
        [risk]
        max_position = 5000.0
        max_total_position = 5000.0
        max_position_qty = 1.0
        risk_per_trade = 0.25
        daily_loss = 0.05
        max_drawdown = 0.10
        kill_flatten = {kill_flatten}
        [strategies.momentum]
        enabled = false
        [strategies.breakout]
        enabled = false
        [strategies.meanreversion]
        enabled = true
        weight = 1.0
        [market]
        seed = 11
        "#
    );
    Config::from_toml_str(&text, &|_| None).unwrap()
}

/// The pipeline on the built-in market, with the events it emitted and positions tracked from
/// its fills.
struct Harness {
    p: Pipeline,
    events: rtrb::Consumer<Event>,
    market: SyntheticMarket,
    ts_ns: u64,
    /// Position after the last fill seen.
    pos: Qty,
    seq: u64,
}

/// What happened over a stretch of frames.
#[derive(Debug, Default)]
struct Seen {
    orders: Vec<(OrderEvent, Qty)>,
    trips: Vec<KillCause>,
    rearmed: u32,
    acks: Vec<CmdOutcome>,
}

impl Seen {
    /// Orders that made |position| larger (or flipped it), with the position before each.
    fn increasing(&self) -> Vec<&(OrderEvent, Qty)> {
        self.orders
            .iter()
            .filter(|(o, before)| {
                let after = before.raw() + o.side.sign() * o.qty.raw();
                after.abs() >= before.raw().abs() || (after != 0 && after.signum() != before.raw().signum())
            })
            .collect()
    }
}

impl Harness {
    fn new(cfg: &Config) -> Self {
        let (tx, rx) = rtrb::RingBuffer::new(1 << 16);
        let mut p = Pipeline::new(cfg, tx);
        let mut market = SyntheticMarket::new(&synthetic_params(cfg)[0]);
        let ts_ns = market.market_time_ns();
        let raw = p.clock().raw();
        p.on_frame(FrameKind::Snapshot(SymbolId(0)), market.snapshot(), raw, ts_ns);
        Self { p, events: rx, market, ts_ns, pos: Qty::ZERO, seq: 0 }
    }

    fn drain(&mut self, seen: &mut Seen) {
        while let Ok(ev) = self.events.pop() {
            match ev {
                Event::Order(o) => seen.orders.push((o, self.pos)),
                Event::Fill(f) => self.pos = f.position,
                Event::Risk(r) => match r.kind {
                    RiskEventKind::KillSwitch(c) => seen.trips.push(c),
                    RiskEventKind::Rearmed => seen.rearmed += 1,
                    _ => {}
                },
                Event::Ack(a) => seen.acks.push(a.outcome),
                _ => {}
            }
        }
    }

    fn run(&mut self, frames: usize) -> Seen {
        let mut seen = Seen::default();
        for _ in 0..frames {
            let (bytes, ts) = self.market.next_frame();
            self.ts_ns = ts;
            let raw = self.p.clock().raw();
            self.p.on_frame(FrameKind::Stream, bytes, raw, ts);
            self.drain(&mut seen);
        }
        seen
    }

    /// Runs until the kill switch trips (at most `max_frames`).
    fn run_until_trip(&mut self, max_frames: usize) -> Seen {
        let mut seen = Seen::default();
        for _ in 0..max_frames {
            let (bytes, ts) = self.market.next_frame();
            self.ts_ns = ts;
            let raw = self.p.clock().raw();
            self.p.on_frame(FrameKind::Stream, bytes, raw, ts);
            self.drain(&mut seen);
            if !seen.trips.is_empty() {
                break;
            }
        }
        seen
    }

    fn command(&mut self, kind: CommandKind) -> CmdOutcome {
        self.seq += 1;
        self.p.on_command(Command { seq: self.seq, kind }, self.ts_ns);
        let mut seen = Seen::default();
        self.drain(&mut seen);
        assert_eq!(seen.acks.len(), 1, "one ack per command");
        seen.acks[0]
    }
}

#[test]
fn a_crash_trips_the_kill_switch_which_only_rearm_clears() {
    let cfg = config(false);
    let mut h = Harness::new(&cfg);
    // Warm up on the ordinary market, then crash: 4 bp per price step for 4 000 steps.
    let warm = h.run(1_000);
    assert!(warm.trips.is_empty(), "no trip before the crash");
    h.market.shock(4_000, -8.0);
    let before = h.run_until_trip(20_000);
    assert_eq!(before.trips, vec![KillCause::DailyLoss], "the crash trips the daily-loss breaker");
    assert!(h.pos.raw() > 0, "mean reversion bought the falling market");
    assert_eq!(h.p.state().kill_switch, Some(KillCause::DailyLoss));

    // Tripped: the strategy keeps wanting to buy; nothing that increases exposure goes out.
    let refused_before = h.p.risk().rejects[RejectReason::KillSwitch.index()];
    let after = h.run(3_000);
    assert!(after.increasing().is_empty(), "orders increasing exposure after the trip: {:?}", after.increasing());
    assert!(
        h.p.risk().rejects[RejectReason::KillSwitch.index()] > refused_before,
        "the strategy tried and was refused with kill_switch"
    );

    // Halt and resume: resume lifts the halt only.
    assert_eq!(h.command(CommandKind::Halt), CmdOutcome::Applied);
    assert_eq!(h.command(CommandKind::Resume), CmdOutcome::Applied);
    assert_eq!(h.command(CommandKind::Resume), CmdOutcome::Unchanged);
    let resumed = h.run(3_000);
    assert!(resumed.increasing().is_empty(), "resume reopened trading: {:?}", resumed.increasing());
    assert_eq!(h.p.state().kill_switch, Some(KillCause::DailyLoss));

    // Re-arm reopens it: the strategy's buys go out again.
    assert_eq!(h.command(CommandKind::Rearm), CmdOutcome::Applied);
    assert_eq!(h.p.state().kill_switch, None);
    assert_eq!(h.command(CommandKind::Rearm), CmdOutcome::Unchanged, "nothing left to re-arm");
    let rearmed = h.run(3_000);
    assert!(!rearmed.increasing().is_empty(), "re-arm did not reopen trading");
}

#[test]
fn a_trip_flattens_when_configured() {
    let cfg = config(true);
    let mut h = Harness::new(&cfg);
    assert!(h.run(1_000).trips.is_empty(), "no trip before the crash");
    h.market.shock(4_000, -8.0);
    let seen = h.run_until_trip(20_000);
    assert_eq!(seen.trips, vec![KillCause::DailyLoss]);
    // The flatten went out with the trip, reduce-only; orders in flight then may fill after it,
    // and the engine flattens again until flat. Every order from the trip on reduces.
    let last = seen.orders.last().expect("the flatten order");
    assert!(last.0.reduce_only && last.0.side == Side::Sell);
    let settle = h.run(300);
    assert!(settle.orders.iter().all(|(o, _)| o.reduce_only), "only flattening orders after the trip");
    assert!(settle.increasing().is_empty());
    assert_eq!(h.pos, Qty::ZERO, "flat after the trip");
    let after = h.run(3_000);
    assert!(after.orders.is_empty(), "from flat every order increases exposure: none may go out");
}
