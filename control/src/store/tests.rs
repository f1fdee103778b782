//! The store against a real SQLite file in a temp dir: every kind of record lands in its table,
//! the positions are the exact replay of the fills, the risk state follows its events, and the
//! next open restores what was committed. A second writer and an unusable path are refused; a
//! locked database holds records back without losing one.

use super::*;
use hft_engine::risk::Position;
use hft_shared::msg::{
    FillEvent, KillCause, Liquidity, OrderEvent, OrderStatus, OrderUpdate, PositionSnapshot, RejectEvent, RejectReason,
    RiskEvent, RiskEventKind, RiskSnapshot,
};
use hft_shared::{Amount, OrderId, OrderKind, Px, Qty, Side, SymbolId, TimeInForce};
use rusqlite::{Connection, OpenFlags};

/// 2024-08-08 23:54:15 UTC.
const T0: u64 = 1_723_161_255 * 1_000_000_000;

fn symbols() -> Vec<String> {
    vec!["BTCUSDT".into(), "ETHUSDT".into()]
}

fn open(path: &Path) -> (Store, Restore) {
    Store::open_at(path, StoreSync::Full, &symbols(), Mode::Paper, QUEUE).expect("store opens")
}

fn read(path: &Path) -> Connection {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("read-only")
}

fn count(db: &Connection, sql: &str) -> i64 {
    db.query_row(sql, [], |r| r.get(0)).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn amt(v: i64) -> Amount {
    Amount::from_fixed8(v * 100_000_000)
}

fn order(id: u64, side: Side, qty: i64, ts: u64) -> Event {
    Event::Order(OrderEvent {
        id: OrderId(id),
        symbol: SymbolId(0),
        side,
        kind: OrderKind::Market,
        tif: TimeInForce::Ioc,
        px: Px::from_int(60_000),
        qty: Qty(qty),
        decision_px: Px::from_int(60_000),
        frame_ts_ns: ts,
        ts_ns: ts,
        tick_to_order_ns: 900,
        strategies: 1,
        reduce_only: false,
    })
}

fn update(id: u64, status: OrderStatus, filled: i64, ts: u64) -> Event {
    Event::OrderUpdate(OrderUpdate {
        id: OrderId(id),
        symbol: SymbolId(0),
        status,
        filled: Qty(filled),
        venue_code: 0,
        ts_ns: ts,
    })
}

/// Fills through a shadow position, so each event carries what the engine would report.
struct Fills(Position);

impl Fills {
    fn fill(&mut self, id: u64, side: Side, px: i64, qty: i64, last: bool, ts: u64) -> Event {
        let fee = Amount::notional(Px::from_int(px), Qty(qty)).mul_div(1, 1000).expect("fee");
        self.0.on_fill(side, Px::from_int(px), Qty(qty), fee);
        Event::Fill(FillEvent {
            order: OrderId(id),
            symbol: SymbolId(0),
            side,
            liquidity: Liquidity::Taker,
            last,
            px: Px::from_int(px),
            qty: Qty(qty),
            fee,
            base_fee: Qty::ZERO,
            position: self.0.qty,
            realized: self.0.realized_net(),
            ts_ns: ts,
        })
    }
}

fn risk(kind: RiskEventKind, equity: i64, ts: u64) -> Event {
    Event::Risk(RiskEvent { kind, value: equity * 100_000_000, ts_ns: ts })
}

fn snapshot(equity: Amount, peak: Amount, day_start: Amount, kill: Option<KillCause>, ts: u64) -> Event {
    Event::RiskState(RiskSnapshot {
        equity,
        peak,
        day_start,
        orders_10s: 0,
        orders_today: 0,
        kill_switch: kill,
        ts_ns: ts,
    })
}

fn offer_all(store: &Store, events: &[Event]) {
    for ev in events {
        assert!(store.offer(ev), "the queue has room for {ev:?}");
    }
}

#[test]
fn records_land_in_their_tables_and_the_next_open_restores_them() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("nested/dir/hft.sqlite");
    let (store, restore) = open(&path);
    assert!(restore.is_empty(), "a new store restores nothing: {restore:?}");
    assert_eq!(restore.next_order_id, 1);

    let mut f = Fills(Position::default());
    let events = [
        snapshot(amt(10_000), amt(10_000), amt(10_000), None, T0),
        order(1, Side::Buy, 1_000_000, T0 + 1),
        update(1, OrderStatus::New, 0, T0 + 2),
        update(1, OrderStatus::PartiallyFilled, 400_000, T0 + 3),
        f.fill(1, Side::Buy, 60_000, 400_000, false, T0 + 3),
        update(1, OrderStatus::Filled, 1_000_000, T0 + 4),
        f.fill(1, Side::Buy, 60_010, 600_000, true, T0 + 4),
        order(2, Side::Sell, 500_000, T0 + 5),
        update(2, OrderStatus::Filled, 500_000, T0 + 6),
        f.fill(2, Side::Sell, 61_000, 500_000, true, T0 + 6),
        Event::Position(PositionSnapshot {
            symbol: SymbolId(0),
            qty: f.0.qty,
            avg_px: f.0.avg_px(),
            mark: Px::from_int(60_500),
            realized: f.0.realized_net(),
            unrealized: f.0.unrealized(Px::from_int(60_500)),
            fees: f.0.fees,
            ts_ns: T0 + 7,
        }),
        Event::Reject(RejectEvent {
            symbol: SymbolId(0),
            side: Side::Buy,
            reason: RejectReason::MaxPosition,
            qty: Qty(1),
            px: Px::from_int(60_000),
            suppressed: 4,
            ts_ns: T0 + 8,
        }),
        snapshot(amt(10_100), amt(10_200), amt(10_000), None, T0 + 9),
        risk(RiskEventKind::KillSwitch(KillCause::Drawdown), 9_100, T0 + 10),
        // A snapshot without the latch (it cannot happen in ring order, but) never clears it.
        snapshot(amt(9_100), amt(10_200), amt(10_000), None, T0 + 11),
    ];
    offer_all(&store, &events);
    // Telemetry the store does not keep is "taken" without being queued.
    assert!(store.offer(&Event::Heartbeat(hft_shared::msg::Heartbeat {
        ts_ns: T0,
        seq: 1,
        state: Default::default()
    })));
    store.record_operator_action(OperatorAction {
        at_ms: 1_723_161_255_000,
        method: "POST".into(),
        endpoint: "/trading/halt".into(),
        status: 200,
        outcome: "applied".into(),
        remote: Some("127.0.0.1:5555".into()),
    });
    assert!(store.close(Duration::from_secs(10)), "the writer ends");
    let s = store.stats();
    assert_eq!((s.queued, s.committed, s.lag), (16, 16, 0), "{s:?}");
    assert_eq!((s.fills_queued, s.stored_fills, s.fill_lag), (3, 3, 0));
    assert_eq!((s.position_mismatches, s.unknown_orders, s.duplicate_orders, s.write_errors), (0, 0, 0, 0));
    assert!(!s.writer_running && s.batches >= 1);

    let db = read(&path);
    assert_eq!(count(&db, "SELECT count(*) FROM orders"), 2);
    assert_eq!(count(&db, "SELECT filled_e8 FROM orders WHERE id = 1"), 1_000_000);
    let status: String = db.query_row("SELECT status FROM orders WHERE id = 2", [], |r| r.get(0)).expect("status");
    assert_eq!(status, "FILLED");
    assert_eq!(count(&db, "SELECT count(*) FROM fills"), 3);
    // Every fill has its order, and each order's filled quantity is its fills' sum.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM orders o WHERE o.filled_e8 != \
             (SELECT COALESCE(SUM(qty_e8), 0) FROM fills f WHERE f.run_id = o.run_id AND f.order_id = o.id)"
        ),
        0
    );
    let (qty, cost, fees, mark): (i64, String, String, i64) = db
        .query_row("SELECT qty_e8, cost, fees, mark_e8 FROM positions WHERE symbol = 'BTCUSDT'", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .expect("position");
    assert_eq!(
        (qty, cost, fees, mark),
        (500_000, f.0.cost.to_string(), f.0.fees.to_string(), Px::from_int(60_500).raw())
    );
    let (kill, peak, day): (Option<String>, String, i64) = db
        .query_row("SELECT kill_switch, peak, day FROM risk_state", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("risk state");
    assert_eq!((kill.as_deref(), peak.as_str(), day), (Some("drawdown"), "10200", (T0 / codec::DAY_NS) as i64));
    assert_eq!(count(&db, "SELECT count(*) FROM risk_events WHERE kind = 'kill_switch' AND detail = 'drawdown'"), 1);
    assert_eq!(count(&db, "SELECT suppressed FROM rejects WHERE reason = 'max_position'"), 4);
    assert_eq!(count(&db, "SELECT count(*) FROM operator_actions WHERE endpoint = '/trading/halt'"), 1);
    let (orders, fills, rejects, trips, fees_day, low): (i64, i64, i64, i64, String, String) = db
        .query_row(
            "SELECT orders, fills, rejects, kill_trips, fees, equity_low FROM daily_summaries WHERE day = '2024-08-08'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
        )
        .expect("daily summary");
    assert_eq!((orders, fills, rejects, trips, fees_day, low.as_str()), (2, 3, 5, 1, f.0.fees.to_string(), "9100"));
    assert_eq!(count(&db, "SELECT count(*) FROM runs WHERE stopped_ms IS NOT NULL"), 1, "a clean stop is recorded");
    drop(db);

    // The next start takes it all back.
    let (store, restore) = open(&path);
    assert_eq!(restore.next_order_id, 3);
    assert_eq!(restore.positions.len(), 1);
    assert_eq!(restore.positions[0].symbol, SymbolId(0));
    assert_eq!(restore.positions[0].position, f.0, "bit-exact: qty, cost, realized, fees");
    assert_eq!(restore.positions[0].mark, Px::from_int(60_500));
    let b = restore.breaker.expect("breaker state");
    assert_eq!(
        (b.day, b.day_start, b.peak, b.tripped),
        (T0 / codec::DAY_NS, amt(10_000), amt(10_200), Some(KillCause::Drawdown))
    );
    assert!(store.close(Duration::from_secs(10)));
    assert_eq!(count(&read(&path), "SELECT count(*) FROM runs"), 2);
}

/// The day's orders (by the wall clock at open) come back, oldest first, for the order-rate
/// throttle; earlier days' do not. A version-1 store made before the send-time index gets it.
#[test]
fn the_next_open_restores_the_send_times_of_todays_orders() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("s.sqlite");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos() as u64;
    let today = now / codec::DAY_NS * codec::DAY_NS;
    let (store, restore) = open(&path);
    assert!(restore.orders_sent.is_empty());
    offer_all(
        &store,
        &[
            order(1, Side::Buy, 1_000_000, today - 1),
            order(2, Side::Buy, 1_000_000, today + 2),
            order(3, Side::Sell, 1_000_000, today + 1),
        ],
    );
    assert!(store.close(Duration::from_secs(10)));
    {
        let db = Connection::open(&path).expect("rw");
        db.execute_batch("DROP INDEX orders_created").expect("drop the index");
    }
    let (store, restore) = open(&path);
    assert_eq!(restore.orders_sent, vec![today + 1, today + 2]);
    assert_eq!(restore.validate(2), Ok(()));
    assert!(store.close(Duration::from_secs(10)));
    let db = read(&path);
    assert_eq!(count(&db, "SELECT count(*) FROM sqlite_master WHERE name = 'orders_created'"), 1, "index restored");
}

#[test]
fn rearm_clears_the_latch_and_a_rollover_moves_the_day() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("s.sqlite");
    let (store, _) = open(&path);
    let next_day = (T0 / codec::DAY_NS + 1) * codec::DAY_NS;
    offer_all(
        &store,
        &[
            snapshot(amt(10_000), amt(10_000), amt(10_000), None, T0),
            risk(RiskEventKind::KillSwitch(KillCause::DailyLoss), 9_400, T0 + 1),
            risk(RiskEventKind::Rearmed, 9_400, T0 + 2),
            risk(RiskEventKind::DayRollover, 9_450, next_day + 5),
        ],
    );
    assert!(store.close(Duration::from_secs(10)));
    let (store, restore) = open(&path);
    let b = restore.breaker.expect("breaker");
    assert_eq!(b.tripped, None, "re-armed");
    assert_eq!((b.day, b.day_start, b.peak), (next_day / codec::DAY_NS, amt(9_450), amt(9_400)));
    assert!(store.close(Duration::from_secs(10)));
    let db = read(&path);
    assert_eq!(count(&db, "SELECT count(*) FROM daily_summaries"), 1, "only the trip's day has a summary");
    assert_eq!(count(&db, "SELECT kill_trips FROM daily_summaries"), 1);
}

#[test]
fn a_second_writer_and_an_unusable_path_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("s.sqlite");
    let (store, _) = open(&path);
    let e = Store::open_at(&path, StoreSync::Full, &symbols(), Mode::Paper, QUEUE).expect_err("second writer");
    assert!(format!("{e:#}").contains("another process is writing this database"), "{e:#}");
    assert!(store.close(Duration::from_secs(10)));
    // Closed, the lock is gone.
    let (again, _) = open(&path);
    assert!(again.close(Duration::from_secs(10)));

    // A path under a regular file: its directory cannot be created.
    let file = dir.path().join("plain");
    std::fs::write(&file, b"x").expect("write");
    let e =
        Store::open_at(&file.join("s.sqlite"), StoreSync::Full, &symbols(), Mode::Paper, QUEUE).expect_err("no dir");
    assert!(format!("{e:#}").contains("cannot create the directory"), "{e:#}");
    // A directory where the database should be.
    let e = Store::open_at(dir.path(), StoreSync::Full, &symbols(), Mode::Paper, QUEUE).expect_err("a directory");
    assert!(format!("{e:#}").contains("cannot open the database file"), "{e:#}");
    // Something that is not a database.
    let junk = dir.path().join("junk.sqlite");
    std::fs::write(&junk, vec![b'z'; 4096]).expect("write");
    assert!(Store::open_at(&junk, StoreSync::Full, &symbols(), Mode::Paper, QUEUE).is_err());
}

#[test]
fn corrupt_stored_state_refuses_to_start() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("s.sqlite");
    let (store, _) = open(&path);
    offer_all(&store, &[snapshot(amt(10_000), amt(10_000), amt(10_000), Some(KillCause::DailyLoss), T0)]);
    assert!(store.close(Duration::from_secs(10)));
    Connection::open(&path).expect("rw").execute_batch("UPDATE risk_state SET kill_switch = 'gremlins'").expect("edit");
    let e = Store::open_at(&path, StoreSync::Full, &symbols(), Mode::Paper, QUEUE).expect_err("unknown cause");
    assert!(format!("{e:#}").contains("gremlins"), "{e:#}");
}

#[test]
fn a_locked_database_holds_records_back_and_loses_none() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("s.sqlite");
    let (store, _) = Store::open_at(&path, StoreSync::Normal, &symbols(), Mode::Paper, 8).expect("open");
    // Another connection takes the write lock: the writer's commits fail and are retried.
    let blocker = Connection::open(&path).expect("blocker");
    blocker.execute_batch("BEGIN IMMEDIATE").expect("write lock");
    let mut f = Fills(Position::default());
    let mut accepted = 0u64;
    let mut refused = 0u64;
    let t0 = Instant::now();
    let mut id = 0;
    // Offer until the queue has refused for longer than the writer waits on a lock (2 s), so
    // its commits fail and are retried; then release the lock.
    const RELEASE_AFTER: u64 = 300;
    while refused < RELEASE_AFTER && t0.elapsed() < Duration::from_secs(20) {
        id += 1;
        let pair = [order(id, Side::Buy, 100, T0 + id), f.fill(id, Side::Buy, 60_000, 100, true, T0 + id)];
        for ev in &pair {
            // Like the bridge: an event refused is offered again until taken.
            while !store.offer(ev) {
                refused += 1;
                std::thread::sleep(Duration::from_millis(10));
                if refused == RELEASE_AFTER {
                    blocker.execute_batch("COMMIT").expect("release");
                }
            }
            accepted += 1;
        }
    }
    assert!(refused >= RELEASE_AFTER, "the queue never filled");
    assert!(store.close(Duration::from_secs(20)), "the writer drains once the lock is gone");
    let s = store.stats();
    assert!(s.write_errors > 0, "commits failed while locked: {s:?}");
    assert_eq!(s.committed, accepted, "every accepted record committed: {s:?}");
    assert_eq!(s.stored_fills, id);
    let db = read(&path);
    assert_eq!(count(&db, "SELECT count(*) FROM fills") as u64, id);
    assert_eq!(count(&db, "SELECT qty_e8 FROM positions WHERE symbol = 'BTCUSDT'") as u64, 100 * id);
}

/// One store, two accounts: what a paper run records (position, latch, the day's orders) is not
/// what a live run on the same file starts from, and the paper account is still there for the
/// next paper run. Order ids stay unique across both.
#[test]
fn each_mode_restores_only_its_own_account() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("s.sqlite");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos() as u64;
    let open_as = |mode| Store::open_at(&path, StoreSync::Full, &symbols(), mode, QUEUE).expect("store opens");

    let (store, _) = open(&path);
    let mut paper = Fills(Position::default());
    offer_all(
        &store,
        &[
            snapshot(amt(10_000), amt(10_000), amt(10_000), None, now),
            order(1, Side::Buy, 1_000_000, now + 1),
            paper.fill(1, Side::Buy, 60_000, 1_000_000, true, now + 2),
            risk(RiskEventKind::KillSwitch(KillCause::Drawdown), 9_000, now + 3),
        ],
    );
    assert!(store.close(Duration::from_secs(10)));

    let (store, restore) = open_as(Mode::Live);
    assert!(
        restore.positions.is_empty() && restore.breaker.is_none() && restore.orders_sent.is_empty(),
        "live takes over nothing of paper's: {restore:?}"
    );
    assert_eq!(restore.next_order_id, 2);
    let mut live = Fills(Position::default());
    offer_all(
        &store,
        &[
            snapshot(amt(5_000), amt(5_000), amt(5_000), None, now + 10),
            order(2, Side::Sell, 300_000, now + 11),
            live.fill(2, Side::Sell, 61_000, 300_000, true, now + 12),
        ],
    );
    assert!(store.close(Duration::from_secs(10)));

    let (store, restore) = open(&path);
    assert_eq!(restore.positions.len(), 1);
    assert_eq!(restore.positions[0].position, paper.0, "paper's own position, untouched by live's fill");
    assert_eq!(restore.breaker.map(|b| (b.tripped, b.peak)), Some((Some(KillCause::Drawdown), amt(10_000))));
    assert_eq!(restore.orders_sent, vec![now + 1]);
    assert_eq!(restore.next_order_id, 3);
    assert!(store.close(Duration::from_secs(10)));

    let (store, restore) = open_as(Mode::Live);
    assert_eq!(restore.positions[0].position, live.0);
    assert_eq!(restore.breaker.map(|b| (b.tripped, b.peak)), Some((None, amt(5_000))));
    assert_eq!(restore.orders_sent, vec![now + 11]);
    assert!(store.close(Duration::from_secs(10)));

    let db = read(&path);
    assert_eq!(count(&db, "SELECT count(*) FROM positions WHERE symbol = 'BTCUSDT'"), 2);
    assert_eq!(count(&db, "SELECT count(*) FROM daily_summaries"), 2, "a summary per mode for the day");
}

/// A buy whose commission the venue took in BTC: the stored fill keeps it (`base_fee_e8`), and
/// the replayed position is what the account received, as the engine's own.
#[test]
fn a_commission_in_the_base_asset_is_stored_and_replayed() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("s.sqlite");
    let (store, _) = open(&path);
    let (px, qty, base_fee) = (Px::from_int(60_000), Qty(1_000_000), Qty(1_000));
    let fee = Amount::notional(px, base_fee);
    let mut engine = Position::default();
    engine.on_fill(Side::Buy, px, Qty(qty.raw() - base_fee.raw()), fee);
    let fill = FillEvent {
        order: OrderId(1),
        symbol: SymbolId(0),
        side: Side::Buy,
        liquidity: Liquidity::Taker,
        last: true,
        px,
        qty,
        fee,
        base_fee,
        position: engine.qty,
        realized: engine.realized_net(),
        ts_ns: T0 + 2,
    };
    offer_all(&store, &[order(1, Side::Buy, qty.raw(), T0 + 1), Event::Fill(fill)]);
    assert!(store.close(Duration::from_secs(10)));
    assert_eq!(store.stats().position_mismatches, 0);
    let db = read(&path);
    assert_eq!(count(&db, "SELECT base_fee_e8 FROM fills"), 1_000);
    assert_eq!(count(&db, "SELECT filled_e8 FROM orders"), 1_000_000, "the order filled the whole quantity");
    assert_eq!(count(&db, "SELECT qty_e8 FROM positions"), 999_000);
    let (store, restore) = open(&path);
    assert_eq!(restore.positions[0].position, engine);
    assert!(store.close(Duration::from_secs(10)));
}
