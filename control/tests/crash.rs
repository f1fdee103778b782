//! Crash safety end to end: the real `hft` binary in paper mode trading quickly into a store in a
//! temp dir, killed with SIGKILL mid-flight, then checked and restarted on the same database.
//!
//! * After `kill -9` the database is consistent: every fill has its order, each order's filled
//!   quantity is the sum of its fills, each stored position is the exact replay of the fills (the
//!   engine's arithmetic) and agrees with the last fill's report, the daily summaries count what
//!   the tables hold, and no fill committed before the kill is missing.
//! * Restarted on that database, the engine reports the stored positions (`GET /positions`) and
//!   the day's loss baseline (`GET /risk`).
//! * A tripped kill switch survives `kill -9`: after the restart it is still tripped without
//!   tripping again, `POST /trading/resume` does not reopen trading, no order increases exposure;
//!   `POST /risk/rearm` does reopen it.
//! * An unusable store path or a bad `[store]` value refuses to start (exit 2) before the engine
//!   runs; a second process on a database in use is refused.
//!
//! Each process gets an OS-chosen port, a cleared environment, `engine.idle = sleep`, and is
//! killed and reaped on drop whatever the test did.

mod common;

use common::{Running, agent, get, port_after};
use hft_engine::risk::Position;
use hft_shared::{Amount, Px, Qty, Side};
use rusqlite::{Connection, OpenFlags};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const TOKEN: &str = "crash-test-token";

/// The quick-trading paper setup: momentum on every tick, orders every 50 ms.
const TRADING: &[(&str, &str)] = &[
    ("HFT__MARKET__RATE", "2000"),
    ("HFT__STRATEGIES__MOMENTUM__LOOKBACK", "2"),
    ("HFT__STRATEGIES__MOMENTUM__THRESHOLD", "0.000001"),
    ("HFT__RISK__ORDER_COOLDOWN_MS", "50"),
];

/// No strategy trades: positions stay as restored.
const QUIET: &[(&str, &str)] = &[
    ("HFT__MARKET__RATE", "2000"),
    ("HFT__STRATEGIES__MOMENTUM__ENABLED", "false"),
    ("HFT__STRATEGIES__MEANREVERSION__ENABLED", "false"),
    ("HFT__STRATEGIES__BREAKOUT__ENABLED", "false"),
    ("HFT__STRATEGIES__MARKETMAKING__ENABLED", "false"),
];

struct Hft {
    run: Running,
    port: u16,
}

fn command(dir: &Path, db: &Path, env: &[(&str, &str)]) -> std::process::Command {
    let mut cmd = common::hft(dir);
    cmd.env("HFT__API__PORT", "0")
        .env("HFT_API_TOKEN", TOKEN)
        .env("HFT__ENGINE__IDLE", "sleep")
        .env("HFT__STORE__PATH", db);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn start(dir: &Path, db: &Path, env: &[(&str, &str)]) -> Hft {
    let run = Running::spawn(command(dir, db, env));
    let banner = run.line_with("API http://", Duration::from_secs(30));
    Hft { port: port_after(&banner, "API http://"), run }
}

impl Hft {
    fn get(&self, path: &str) -> Value {
        let (status, body) = get(self.port, path);
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    fn post(&self, path: &str) -> Value {
        let mut res = agent()
            .post(&format!("http://127.0.0.1:{}{path}", self.port))
            .header("Authorization", &format!("Bearer {TOKEN}"))
            .send_empty()
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = res.status().as_u16();
        let body = res.body_mut().read_json::<Value>().unwrap_or(Value::Null);
        assert_eq!(status, 200, "POST {path}: {body}");
        body
    }

    /// Waits for the first heartbeat (the replica then holds the engine's state).
    fn wait_ready(&self) {
        wait("ready", Duration::from_secs(30), || get(self.port, "/health").0 == 200, || self.run.stderr_text());
    }

    fn kill9(mut self) {
        self.run.signal(libc::SIGKILL);
        let status = self.run.wait_exit(Duration::from_secs(10));
        assert!(!status.success(), "killed: {status:?}");
    }

    fn stop(mut self) {
        self.run.signal(libc::SIGTERM);
        let status = self.run.wait_exit(Duration::from_secs(15));
        assert!(status.success(), "clean stop: {status:?}\n{}", self.run.stderr_text());
    }
}

fn wait(what: &str, within: Duration, mut cond: impl FnMut() -> bool, context: impl Fn() -> String) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < within, "{what}: not within {within:?}\n{}", context());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A read-only view of the database (never blocks the writer; sees committed data only).
fn db(path: &Path) -> Connection {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open the store read-only")
}

fn int(db: &Connection, sql: &str) -> i64 {
    db.query_row(sql, [], |r| r.get::<_, Option<i64>>(0)).unwrap_or_else(|e| panic!("{sql}: {e}")).unwrap_or(0)
}

/// `int` on a database that may not exist yet or be half created (0 then).
fn poll_int(path: &Path, sql: &str) -> i64 {
    if !path.exists() {
        return 0;
    }
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| c.query_row(sql, [], |r| r.get::<_, Option<i64>>(0)))
        .ok()
        .flatten()
        .unwrap_or(0)
}

/// Waits for a process that exited to have its stderr read to the end (the reader is a thread).
fn stderr_after_exit(run: &Running) -> String {
    let t0 = Instant::now();
    loop {
        let s = run.stderr_text();
        if s.contains("error:") || t0.elapsed() > Duration::from_secs(3) {
            return s;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn text(db: &Connection, sql: &str) -> String {
    db.query_row(sql, [], |r| r.get(0)).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn amount(s: &str) -> Amount {
    // Exact: the store writes amounts as `Amount`'s own decimal text.
    let (neg, body) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
    let (i, f) = body.split_once('.').unwrap_or((body, ""));
    let mut raw: i128 = i.parse::<i128>().expect("integer part") * 10i128.pow(16);
    if !f.is_empty() {
        raw += f.parse::<i128>().expect("fraction") * 10i128.pow(16 - f.len() as u32);
    }
    Amount(if neg { -raw } else { raw })
}

fn today() -> i64 {
    (SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs() / 86_400) as i64
}

/// The consistency a crash must never break. Returns the number of fills.
fn check_consistency(db: &Connection) -> i64 {
    let fills = int(db, "SELECT count(*) FROM fills");
    assert_eq!(
        int(
            db,
            "SELECT count(*) FROM fills f LEFT JOIN orders o ON o.run_id = f.run_id AND o.id = f.order_id \
             WHERE o.id IS NULL"
        ),
        0,
        "every fill references a stored order"
    );
    assert_eq!(
        int(
            db,
            "SELECT count(*) FROM orders o WHERE o.filled_e8 != (SELECT COALESCE(SUM(qty_e8), 0) FROM fills f \
             WHERE f.run_id = o.run_id AND f.order_id = o.id) OR o.filled_e8 > o.qty_e8"
        ),
        0,
        "each order's filled quantity is the sum of its fills, at most its quantity"
    );
    // Daily summaries are written in the same transactions as the rows they count.
    assert_eq!(int(db, "SELECT SUM(fills) FROM daily_summaries"), fills, "daily fills");
    assert_eq!(int(db, "SELECT SUM(orders) FROM daily_summaries"), int(db, "SELECT count(*) FROM orders"));

    // Positions: the exact replay of the fills, in storage order.
    let mut stmt = db.prepare("SELECT DISTINCT symbol FROM fills").expect("symbols");
    let symbols: Vec<String> = stmt.query_map([], |r| r.get(0)).expect("query").map(|r| r.expect("row")).collect();
    for sym in symbols {
        let mut replay = Position::default();
        let mut last: Option<(i64, String)> = None;
        let mut stmt = db
            .prepare("SELECT side, px_e8, qty_e8, fee, position_e8, realized FROM fills WHERE symbol = ?1 ORDER BY id")
            .expect("fills");
        let mut rows = stmt.query([&sym]).expect("query");
        let mut n = 0;
        while let Some(r) = rows.next().expect("row") {
            let side: String = r.get(0).expect("side");
            let side = if side == "BUY" { Side::Buy } else { Side::Sell };
            replay.on_fill(
                side,
                Px(r.get(1).expect("px")),
                Qty(r.get(2).expect("qty")),
                amount(&r.get::<_, String>(3).expect("fee")),
            );
            last = Some((r.get(4).expect("position"), r.get(5).expect("realized")));
            n += 1;
        }
        let signed: i64 = int(
            db,
            &format!("SELECT SUM(CASE side WHEN 'BUY' THEN qty_e8 ELSE -qty_e8 END) FROM fills WHERE symbol = '{sym}'"),
        );
        let (qty, cost, realized, fees, realized_net, count): (i64, String, String, String, String, i64) = db
            .query_row(
                "SELECT qty_e8, cost, realized, fees, realized_net, fills FROM positions WHERE symbol = ?1",
                [&sym],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
            )
            .unwrap_or_else(|e| panic!("no stored position for {sym}: {e}"));
        assert_eq!(qty, signed, "{sym}: the stored position is the signed sum of its fills");
        assert_eq!(count, n, "{sym}: every fill applied once");
        assert_eq!(
            (Qty(qty), amount(&cost), amount(&realized), amount(&fees)),
            (replay.qty, replay.cost, replay.realized, replay.fees),
            "{sym}: exact replay"
        );
        let (last_pos, last_realized) = last.expect("a fill");
        assert_eq!((qty, amount(&realized_net)), (last_pos, amount(&last_realized)), "{sym}: as the engine reported");
        assert_eq!(amount(&realized_net), replay.realized_net());
    }
    fills
}

#[test]
fn kill_9_keeps_every_committed_fill_consistent_and_a_restart_restores_the_positions() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("db/hft.sqlite");
    let hft = start(dir.path(), &path, TRADING);
    // Several fills committed.
    wait(
        "20 fills stored",
        Duration::from_secs(60),
        || poll_int(&path, "SELECT count(*) FROM fills") >= 20,
        || hft.run.stderr_text(),
    );
    let acknowledged = int(&db(&path), "SELECT count(*) FROM fills");
    hft.kill9();

    let conn = db(&path);
    let fills = check_consistency(&conn);
    assert!(fills >= acknowledged, "a committed fill was lost: {fills} < {acknowledged}");
    assert_eq!(int(&conn, "SELECT count(*) FROM runs WHERE stopped_ms IS NULL"), 1, "the killed run is marked");
    let (qty, avg, realized, fees): (i64, i64, String, String) = conn
        .query_row("SELECT qty_e8, avg_px_e8, realized_net, fees FROM positions WHERE symbol = 'BTCUSDT'", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .expect("position");
    let (day, day_start): (i64, String) =
        conn.query_row("SELECT day, day_start FROM risk_state", [], |r| Ok((r.get(0)?, r.get(1)?))).expect("risk");
    let max_id = int(&conn, "SELECT MAX(id) FROM orders");
    drop(conn);

    // Restart, not trading: the engine reports exactly what was stored.
    let hft = start(dir.path(), &path, QUIET);
    hft.wait_ready();
    let mut pos = Value::Null;
    wait(
        "a position report",
        Duration::from_secs(10),
        || {
            pos = hft.get("/positions")["positions"][0].clone();
            !pos["ts_ns"].is_null()
        },
        String::new,
    );
    assert_eq!(pos["symbol"], "BTCUSDT");
    assert_eq!(pos["qty"], Qty(qty).to_string(), "{pos}");
    assert_eq!(pos["avg_px"], Px(avg).to_string(), "{pos}");
    assert_eq!(pos["realized"], amount(&realized).to_string(), "{pos}");
    assert_eq!(pos["fees"], amount(&fees).to_string(), "{pos}");
    assert_eq!(hft.get("/stats")["position"]["BTCUSDT"], Qty(qty).to_string());
    let risk = hft.get("/risk");
    assert!(risk["kill_switch"].is_null(), "{risk}");
    if day == today() {
        assert_eq!(risk["usage"]["day_start"], amount(&day_start).to_string(), "the day's baseline: {risk}");
    }

    // A second process on the same database is refused before it trades.
    let mut second = Running::spawn(command(dir.path(), &path, QUIET));
    let status = second.wait_exit(Duration::from_secs(10));
    let stderr = stderr_after_exit(&second);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("another process is writing this database"), "{stderr}");
    assert!(!stderr.contains("control API listening"), "{stderr}");

    hft.stop();
    let conn = db(&path);
    assert_eq!(int(&conn, "SELECT count(*) FROM runs WHERE stopped_ms IS NOT NULL"), 1, "the clean stop is marked");
    assert_eq!(int(&conn, "SELECT MAX(id) FROM orders"), max_id, "no order while quiet");
    assert_eq!(check_consistency(&conn), fills);
}

#[test]
fn a_tripped_kill_switch_survives_kill_9_and_only_rearm_clears_it() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("hft.sqlite");
    // 2 USDT of daily loss on 10 000: the fees of a few fills trip it.
    let tripping: Vec<(&str, &str)> = TRADING.iter().copied().chain([("HFT__RISK__DAILY_LOSS", "0.0002")]).collect();
    let hft = start(dir.path(), &path, &tripping);
    wait(
        "the kill switch trips and is stored",
        Duration::from_secs(60),
        || poll_int(&path, "SELECT count(*) FROM risk_state WHERE kill_switch IS NOT NULL") == 1,
        || hft.run.stderr_text(),
    );
    hft.kill9();
    let conn = db(&path);
    check_consistency(&conn);
    assert_eq!(text(&conn, "SELECT kill_switch FROM risk_state"), "daily_loss");
    let trips = int(&conn, "SELECT count(*) FROM risk_events WHERE kind = 'kill_switch'");
    assert_eq!(trips, 1);
    drop(conn);

    // Restarted with the same strategies: still tripped, without tripping again.
    let hft = start(dir.path(), &path, &tripping);
    hft.wait_ready();
    assert_eq!(hft.get("/risk")["kill_switch"], "daily_loss");
    assert_eq!(hft.get("/stats")["kill_switch"], "daily_loss");
    let run = int(&db(&path), "SELECT MAX(id) FROM runs");
    // The strategy wants to trade and is refused for the kill switch.
    wait(
        "kill-switch refusals",
        Duration::from_secs(30),
        || hft.get("/stats")["rejects_by_reason"]["kill_switch"].as_u64().unwrap_or(0) > 0,
        || hft.run.stderr_text(),
    );
    // Resume does not reopen trading.
    let reply = hft.post("/trading/resume");
    assert_eq!(reply["state"]["kill_switch"], "daily_loss", "{reply}");
    std::thread::sleep(Duration::from_secs(2));
    let conn = db(&path);
    let increasing = format!("SELECT count(*) FROM orders WHERE run_id = {run} AND reduce_only = 0");
    assert_eq!(int(&conn, &increasing), 0, "an order that may increase exposure went out while tripped");
    assert_eq!(
        int(&conn, "SELECT count(*) FROM risk_events WHERE kind = 'kill_switch'"),
        trips,
        "restored, not re-tripped"
    );
    assert_eq!(hft.get("/risk")["kill_switch"], "daily_loss");

    // Re-arm clears it; strategy orders follow.
    let reply = hft.post("/risk/rearm");
    assert_eq!(
        (reply["outcome"].as_str(), reply["state"]["kill_switch"].is_null()),
        (Some("applied"), true),
        "{reply}"
    );
    wait(
        "strategy orders after the re-arm",
        Duration::from_secs(30),
        || int(&db(&path), &increasing) > 0,
        || hft.run.stderr_text(),
    );
    hft.stop();
    let conn = db(&path);
    assert!(int(&conn, "SELECT count(*) FROM risk_events WHERE kind = 'rearmed'") >= 1);
    assert_eq!(
        int(
            &conn,
            "SELECT count(*) FROM operator_actions WHERE method = 'POST' AND status = 200 \
             AND endpoint IN ('/trading/resume', '/risk/rearm')"
        ),
        2,
        "the operator's requests are in the audit trail"
    );
    check_consistency(&conn);
}

#[test]
fn an_unusable_store_refuses_to_start_before_the_engine_runs() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"not a directory").expect("write");
    for (env, expect) in [
        (vec![("HFT__STORE__PATH", file.join("hft.sqlite").display().to_string())], "cannot create the directory"),
        (vec![("HFT__STORE__PATH", file.display().to_string())], "store.path"),
        (vec![("HFT__STORE__SYNCHRONOUS", "off".to_string())], "HFT__STORE__SYNCHRONOUS"),
    ] {
        let mut cmd = common::hft(dir.path());
        cmd.env("HFT__API__PORT", "0").env("HFT__ENGINE__IDLE", "sleep");
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let mut run = Running::spawn(cmd);
        let status = run.wait_exit(Duration::from_secs(10));
        let stderr = stderr_after_exit(&run);
        assert_eq!(status.code(), Some(2), "{env:?}: {stderr}");
        assert!(stderr.contains(expect), "{env:?}: {stderr}");
        assert!(!stderr.contains("control API listening"), "{env:?}: the engine started");
    }
}
