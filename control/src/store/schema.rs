//! The store's schema (version [`VERSION`], kept in SQLite's `user_version`), created on first
//! open, and the connection settings (WAL journal, `synchronous`).
//!
//! Start-up only (the caller's thread); allocates.
//!
//! Column conventions (see [`super::codec`]): `_e8` integers are `Px`/`Qty` raw units (1e-8);
//! amounts are exact decimal text; `_ns`/`_ms` are Unix times; `symbol` is the Binance name;
//! `side` is `BUY`/`SELL`; order `status` is Binance's (`NEW`, `FILLED`, …, `PENDING_NEW` for
//! sent and not yet acknowledged).

use super::codec::{parse_amount, parse_side};
use super::rows::{PosRow, write_position};
use anyhow::{Context, anyhow, bail};
use hft_shared::config::StoreSync;
use hft_shared::{Px, Qty};
use rusqlite::{Connection, OptionalExtension};
use std::collections::{BTreeMap, HashMap};

/// Schema version this build writes. A database of a later version is refused (it was written
/// by a newer `hft`); an earlier one is migrated when it is opened.
pub const VERSION: i64 = 2;
/// SQLite `application_id` of an hft store ("HFT1"), so other tools can tell what the file is.
pub const APPLICATION_ID: i64 = 0x4846_5431;

/// The orders by send time (in [`SCHEMA_V1`] too), for stores created before it was.
const ORDERS_CREATED_INDEX: &str = "CREATE INDEX IF NOT EXISTS orders_created ON orders(created_ns);";

/// Version 1, as first released. A new store is created as version 1 and then migrated (the
/// tables [`V2_TABLES`] replaces keep their version-1 form here).
const SCHEMA_V1: &str = r#"
-- One row per start of `hft run`. stopped_ms stays NULL when the process did not stop cleanly
-- (crash, kill -9, power loss).
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    started_ms  INTEGER NOT NULL,
    stopped_ms  INTEGER,
    mode        TEXT NOT NULL,
    version     TEXT NOT NULL,
    symbols     TEXT NOT NULL                 -- comma-separated, index = the run's SymbolId
);

-- Every order the engine sent. Engine order ids increase across runs (a restart continues after
-- the largest stored id); the key also names the run.
CREATE TABLE orders (
    run_id          INTEGER NOT NULL REFERENCES runs(id),
    id              INTEGER NOT NULL,
    symbol          TEXT NOT NULL,
    side            TEXT NOT NULL,
    kind            TEXT NOT NULL,            -- MARKET | LIMIT | LIMIT_MAKER
    tif             TEXT NOT NULL,            -- GTC | IOC | FOK
    px_e8           INTEGER NOT NULL,         -- limit price; market: the touch at decision
    qty_e8          INTEGER NOT NULL,
    decision_px_e8  INTEGER NOT NULL,         -- mid when decided
    strategies      INTEGER NOT NULL,         -- bit k: StrategyKind k contributed
    reduce_only     INTEGER NOT NULL,         -- 1: flatten / kill-switch order
    status          TEXT NOT NULL,            -- latest reported state
    venue_code      INTEGER NOT NULL DEFAULT 0,
    filled_e8       INTEGER NOT NULL DEFAULT 0, -- sum of this order's stored fills
    created_ns      INTEGER NOT NULL,
    updated_ns      INTEGER NOT NULL,
    tick_to_order_ns INTEGER NOT NULL,
    PRIMARY KEY (run_id, id)
);
CREATE INDEX orders_status ON orders(status);
CREATE INDEX orders_created ON orders(created_ns);

CREATE TABLE fills (
    id           INTEGER PRIMARY KEY,         -- storage order
    run_id       INTEGER NOT NULL,
    order_id     INTEGER NOT NULL,            -- (run_id, order_id) references orders
    symbol       TEXT NOT NULL,
    side         TEXT NOT NULL,
    liquidity    TEXT NOT NULL,               -- MAKER | TAKER
    px_e8        INTEGER NOT NULL,
    qty_e8       INTEGER NOT NULL,
    fee          TEXT NOT NULL,               -- quote currency, positive = paid
    position_e8  INTEGER NOT NULL,            -- the symbol's position after this fill
    realized     TEXT NOT NULL,               -- the symbol's realized PnL net of fees after it
    last         INTEGER NOT NULL,            -- 1: the order has nothing left
    ts_ns        INTEGER NOT NULL
);
CREATE INDEX fills_order ON fills(run_id, order_id);

-- Latest position per symbol, carried across runs; replayed from the fills with the engine's own
-- arithmetic, so cost, realized and fees are exact.
CREATE TABLE positions (
    symbol        TEXT PRIMARY KEY,
    qty_e8        INTEGER NOT NULL,           -- signed base quantity
    cost          TEXT NOT NULL,              -- signed cost basis of qty
    avg_px_e8     INTEGER NOT NULL,           -- cost / qty toward zero; 0 when flat
    realized      TEXT NOT NULL,              -- gross of fees
    fees          TEXT NOT NULL,
    realized_net  TEXT NOT NULL,              -- realized - fees
    mark_e8       INTEGER NOT NULL,           -- last mark (mid) reported; 0 unknown
    unrealized    TEXT NOT NULL,              -- at mark_e8
    fills         INTEGER NOT NULL,           -- fills applied
    updated_ns    INTEGER NOT NULL
);

-- The circuit breakers and the kill switch (one row). The latch is set by the kill-switch risk
-- event and cleared only by a re-arm event; a restart restores it.
CREATE TABLE risk_state (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    day         INTEGER NOT NULL,             -- UTC day (days since 1970-01-01) of day_start
    day_start   TEXT NOT NULL,                -- equity the day's loss is measured from
    peak        TEXT NOT NULL,                -- highest equity since start of record / re-arm
    equity      TEXT NOT NULL,                -- latest reported
    kill_switch TEXT,                         -- NULL | daily_loss | drawdown
    kill_ns     INTEGER,                      -- when it tripped
    updated_ns  INTEGER NOT NULL
);

-- Risk events in order. value: equity in 1e-8 quote units for kill_switch, rearmed and
-- day_rollover; weight x 1e6 for weight_changed; parked count for backpressure_off; else 0.
CREATE TABLE risk_events (
    id      INTEGER PRIMARY KEY,
    kind    TEXT NOT NULL,
    detail  TEXT,                             -- kill cause or strategy name
    value   INTEGER NOT NULL,
    ts_ns   INTEGER NOT NULL
);

-- Refusals by the risk manager (identical ones within a second are counted in `suppressed`).
CREATE TABLE rejects (
    id          INTEGER PRIMARY KEY,
    symbol      TEXT NOT NULL,
    side        TEXT NOT NULL,
    reason      TEXT NOT NULL,
    qty_e8      INTEGER NOT NULL,
    px_e8       INTEGER NOT NULL,
    suppressed  INTEGER NOT NULL,
    ts_ns       INTEGER NOT NULL
);

-- Every state-changing API request, authorized or not.
CREATE TABLE operator_actions (
    id        INTEGER PRIMARY KEY,
    at_ms     INTEGER NOT NULL,
    method    TEXT NOT NULL,
    endpoint  TEXT NOT NULL,
    status    INTEGER NOT NULL,
    outcome   TEXT NOT NULL,
    remote    TEXT
);

-- Per UTC day (of the events' engine time).
CREATE TABLE daily_summaries (
    day           TEXT PRIMARY KEY,           -- YYYY-MM-DD
    orders        INTEGER NOT NULL,
    fills         INTEGER NOT NULL,
    rejects       INTEGER NOT NULL,           -- suppressed duplicates included
    volume        TEXT NOT NULL,              -- traded notional
    fees          TEXT NOT NULL,
    realized      TEXT NOT NULL,              -- realized PnL net of fees booked that day
    kill_trips    INTEGER NOT NULL,
    equity_open   TEXT,                       -- first equity reported that day
    equity_close  TEXT,                       -- latest reported
    equity_high   TEXT,
    equity_low    TEXT,
    max_drawdown  REAL NOT NULL               -- largest (peak - equity) / peak seen, fraction
);
"#;

/// Opens (creating when missing) the database at `path` for writing, with the WAL journal and
/// `sync`, and brings its schema to [`VERSION`].
pub fn open(path: &std::path::Path, sync: StoreSync) -> anyhow::Result<Connection> {
    let mut conn = Connection::open(path).context("cannot open the database")?;
    // Waits this long for a lock another connection holds (a reader's checkpoint, a backup).
    conn.busy_timeout(std::time::Duration::from_secs(2)).context("cannot set busy_timeout")?;
    let mode: String =
        conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).context("cannot switch to the WAL journal")?;
    if !mode.eq_ignore_ascii_case("wal") {
        bail!("the WAL journal is not available here (journal_mode is {mode}); a local disk is needed");
    }
    let sync_sql = match sync {
        StoreSync::Full => "PRAGMA synchronous = FULL",
        StoreSync::Normal => "PRAGMA synchronous = NORMAL",
    };
    conn.execute_batch(sync_sql).context("cannot set synchronous")?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// Creates the schema in an empty database (version 1, then every step up to [`VERSION`], so
/// a new store goes through the same steps as an old one); checks an existing one is ours and
/// not newer, and brings an older one up to date in one transaction.
fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let app: i64 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    if version > VERSION {
        bail!("the database has schema version {version}, written by a newer hft; this build knows {VERSION}");
    }
    if version > 0 && app != APPLICATION_ID {
        bail!("the database is not an hft store (application_id {app:#x})");
    }
    if version == 0 {
        // Empty, or someone else's.
        let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
        if tables > 0 {
            bail!("the database already holds {tables} tables and is not an hft store");
        }
    }
    let tx = conn.transaction()?;
    if version == 0 {
        tx.execute_batch(SCHEMA_V1).context("cannot create the schema")?;
        tx.execute_batch(&format!("PRAGMA application_id = {APPLICATION_ID};"))?;
    }
    // Added to version 1 later: the start-up count of the day's orders reads it. Creating an
    // index changes nothing else, so it needed no new version.
    tx.execute_batch(ORDERS_CREATED_INDEX).context("cannot index the orders by time")?;
    if version < 2 {
        v1_to_v2(&tx).context("cannot bring the store from schema version 1 to 2")?;
    }
    tx.execute_batch(&format!("PRAGMA user_version = {VERSION};"))?;
    tx.commit().context("cannot update the schema")?;
    Ok(())
}

/// Version 2: positions, the risk state and the daily summaries per account (the run's mode);
/// `fills.base_fee_e8` is added by [`v1_to_v2`].
const V2_TABLES: &str = r#"
CREATE TABLE positions (
    mode          TEXT NOT NULL,              -- the account: paper | shadow | live
    symbol        TEXT NOT NULL,
    qty_e8        INTEGER NOT NULL,           -- signed base quantity
    cost          TEXT NOT NULL,              -- signed cost basis of qty
    avg_px_e8     INTEGER NOT NULL,           -- cost / qty toward zero; 0 when flat
    realized      TEXT NOT NULL,              -- gross of fees
    fees          TEXT NOT NULL,
    realized_net  TEXT NOT NULL,              -- realized - fees
    mark_e8       INTEGER NOT NULL,           -- last mark (mid) reported; 0 unknown
    unrealized    TEXT NOT NULL,              -- at mark_e8
    fills         INTEGER NOT NULL,           -- fills applied
    updated_ns    INTEGER NOT NULL,
    PRIMARY KEY (mode, symbol)
);

CREATE TABLE risk_state (
    mode        TEXT PRIMARY KEY,             -- the account: paper | shadow | live
    day         INTEGER NOT NULL,             -- UTC day (days since 1970-01-01) of day_start
    day_start   TEXT NOT NULL,                -- equity the day's loss is measured from
    peak        TEXT NOT NULL,                -- highest equity since start of record / re-arm
    equity      TEXT NOT NULL,                -- latest reported
    kill_switch TEXT,                         -- NULL | daily_loss | drawdown
    kill_ns     INTEGER,                      -- when it tripped
    updated_ns  INTEGER NOT NULL
);

CREATE TABLE daily_summaries (
    mode          TEXT NOT NULL,              -- the account: paper | shadow | live
    day           TEXT NOT NULL,              -- YYYY-MM-DD
    orders        INTEGER NOT NULL,
    fills         INTEGER NOT NULL,
    rejects       INTEGER NOT NULL,           -- suppressed duplicates included
    volume        TEXT NOT NULL,              -- traded notional
    fees          TEXT NOT NULL,
    realized      TEXT NOT NULL,              -- realized PnL net of fees booked that day
    kill_trips    INTEGER NOT NULL,
    equity_open   TEXT,                       -- first equity reported that day
    equity_close  TEXT,                       -- latest reported
    equity_high   TEXT,
    equity_low    TEXT,
    max_drawdown  REAL NOT NULL,              -- largest (peak - equity) / peak seen, fraction
    PRIMARY KEY (mode, day)
);
"#;

/// Version 1 kept one account for every mode: a live run took over the positions, the loss
/// baseline and the latch that paper or shadow runs left. Version 2 keys them by mode; and each
/// fill records the part of its commission the venue took in the base asset (`base_fee_e8`,
/// included in `fee`; the position moved by `qty_e8` less it on a buy, plus it on a sell), which
/// version 1 never had. The
/// version-1 rows go to the mode of the latest run (which wrote them last), except that
///
/// * positions, when runs of more than one mode have fills, are replayed per mode from those
///   fills with the engine's arithmetic (the version-1 row was the replay of all of them); a
///   mode's mark is then its last fill price, the latest run's mode keeping the stored mark;
/// * a tripped kill switch stays tripped for every mode that has run: a re-arm must clear it.
fn v1_to_v2(tx: &Connection) -> anyhow::Result<()> {
    tx.execute_batch(
        "ALTER TABLE positions RENAME TO positions_v1; \
         ALTER TABLE risk_state RENAME TO risk_state_v1; \
         ALTER TABLE daily_summaries RENAME TO daily_summaries_v1; \
         ALTER TABLE fills ADD COLUMN base_fee_e8 INTEGER NOT NULL DEFAULT 0;",
    )?;
    tx.execute_batch(V2_TABLES)?;
    let latest: Option<String> =
        tx.query_row("SELECT mode FROM runs ORDER BY id DESC LIMIT 1", [], |r| r.get(0)).optional()?;
    match latest {
        Some(latest) => {
            let filled: Vec<String> = tx
                .prepare("SELECT DISTINCT r.mode FROM fills f JOIN runs r ON r.id = f.run_id ORDER BY r.mode")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            if filled.iter().all(|m| *m == latest) {
                tx.execute(
                    "INSERT INTO positions SELECT ?1, symbol, qty_e8, cost, avg_px_e8, realized, fees, realized_net, \
                     mark_e8, unrealized, fills, updated_ns FROM positions_v1",
                    [&latest],
                )?;
            } else {
                replay_positions(tx, &latest)?;
            }
            tx.execute(
                "INSERT INTO risk_state SELECT r.mode, v.day, v.day_start, v.peak, v.equity, v.kill_switch, v.kill_ns, \
                 v.updated_ns FROM risk_state_v1 v, (SELECT DISTINCT mode FROM runs) r \
                 WHERE r.mode = ?1 OR v.kill_switch IS NOT NULL",
                [&latest],
            )?;
            tx.execute(
                "INSERT INTO daily_summaries SELECT ?1, day, orders, fills, rejects, volume, fees, realized, \
                 kill_trips, equity_open, equity_close, equity_high, equity_low, max_drawdown FROM daily_summaries_v1",
                [&latest],
            )?;
        }
        None => {
            // Only a run writes these rows.
            let rows: i64 = tx.query_row(
                "SELECT (SELECT count(*) FROM positions_v1) + (SELECT count(*) FROM risk_state_v1) \
                 + (SELECT count(*) FROM daily_summaries_v1)",
                [],
                |r| r.get(0),
            )?;
            if rows > 0 {
                bail!("the store holds positions or risk state but no run that wrote them");
            }
        }
    }
    tx.execute_batch("DROP TABLE positions_v1; DROP TABLE risk_state_v1; DROP TABLE daily_summaries_v1;")?;
    Ok(())
}

/// The positions of every mode, replayed from its runs' fills (see [`v1_to_v2`]).
fn replay_positions(tx: &Connection, latest: &str) -> anyhow::Result<()> {
    let mut marks = HashMap::new();
    let mut stmt = tx.prepare("SELECT symbol, mark_e8 FROM positions_v1")?;
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (symbol, mark) = row?;
        marks.insert(symbol, Px(mark));
    }
    // With the last fill's price as the mark, unless the latest mode keeps its stored one.
    let mut rows: BTreeMap<(String, String), (PosRow, Px)> = BTreeMap::new();
    let mut stmt = tx.prepare(
        "SELECT r.mode, f.symbol, f.side, f.px_e8, f.qty_e8, f.fee, f.ts_ns FROM fills f \
         JOIN runs r ON r.id = f.run_id ORDER BY f.id",
    )?;
    let mut fills = stmt.query([])?;
    while let Some(f) = fills.next()? {
        let (mode, symbol, side): (String, String, String) = (f.get(0)?, f.get(1)?, f.get(2)?);
        let side = parse_side(&side).ok_or_else(|| anyhow!("a stored fill of {symbol} has side {side:?}"))?;
        let fee: String = f.get(5)?;
        let fee = parse_amount(&fee).ok_or_else(|| anyhow!("a stored fill of {symbol} has fee {fee:?}"))?;
        let (px, qty, ts) = (Px(f.get(3)?), Qty(f.get(4)?), u64::try_from(f.get::<_, i64>(6)?).unwrap_or(0));
        let (row, last_px) = rows.entry((mode, symbol)).or_default();
        // Version 1 kept no base-asset commission: the position moved by the quantity.
        row.on_fill(side, px, qty, fee, ts);
        *last_px = px;
    }
    for ((mode, symbol), (mut row, last_px)) in rows {
        row.mark = marks.get(&symbol).copied().filter(|m| mode == latest && m.raw() > 0).unwrap_or(last_px);
        write_position(tx, &mode, &symbol, &row)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hft_engine::risk::Position;
    use hft_shared::{Amount, Side};

    #[test]
    fn created_once_then_recognised() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("s.sqlite");
        let conn = open(&path, StoreSync::Full).expect("created");
        let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).expect("version");
        assert_eq!(v, VERSION);
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).expect("mode");
        assert_eq!(mode, "wal");
        let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).expect("sync");
        assert_eq!(sync, 2, "FULL");
        conn.execute("INSERT INTO runs (started_ms, mode, version, symbols) VALUES (1, 'paper', 'x', 'BTCUSDT')", [])
            .expect("insert");
        drop(conn);
        let conn = open(&path, StoreSync::Normal).expect("reopened");
        let runs: i64 = conn.query_row("SELECT count(*) FROM runs", [], |r| r.get(0)).expect("count");
        assert_eq!(runs, 1, "reopening keeps the data");
        let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).expect("sync");
        assert_eq!(sync, 1, "NORMAL");
    }

    /// A version-1 store as an older build left it: `runs` (id, mode), fills (run, side, px,
    /// qty, fee) and the one account's rows, the position being the replay of every fill.
    fn v1_store(path: &std::path::Path, runs: &[(i64, &str)], fills: &[(i64, Side, i64, i64)], tripped: bool) {
        let conn = Connection::open(path).expect("open");
        conn.execute_batch(SCHEMA_V1).expect("v1 tables");
        conn.execute_batch(&format!("PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = 1;"))
            .expect("v1 header");
        for (id, mode) in runs {
            conn.execute(
                "INSERT INTO runs (id, started_ms, mode, version, symbols) VALUES (?1, ?1, ?2, '0.1.0', 'BTCUSDT')",
                rusqlite::params![id, mode],
            )
            .expect("run");
        }
        let mut all = PosRow::default();
        for (i, &(run, side, px, qty)) in fills.iter().enumerate() {
            let fee = fee_of(px, qty);
            all.pos.on_fill(side, Px::from_int(px), Qty(qty), fee);
            all.fills += 1;
            all.updated_ns = 1_000 + i as u64;
            conn.execute(
                "INSERT INTO fills (run_id, order_id, symbol, side, liquidity, px_e8, qty_e8, fee, position_e8, \
                 realized, last, ts_ns) VALUES (?1, ?2, 'BTCUSDT', ?3, 'TAKER', ?4, ?5, ?6, 0, '0', 1, ?7)",
                rusqlite::params![
                    run,
                    i as i64 + 1,
                    side.as_str(),
                    Px::from_int(px).raw(),
                    qty,
                    fee.to_string(),
                    1_000 + i as i64
                ],
            )
            .expect("fill");
        }
        all.mark = Px::from_int(60_500);
        write_v1_position(&conn, &all);
        conn.execute(
            "INSERT INTO risk_state (id, day, day_start, peak, equity, kill_switch, kill_ns, updated_ns) \
             VALUES (1, 19943, '10000', '10200', '9100', ?1, ?2, 5)",
            rusqlite::params![tripped.then_some("drawdown"), tripped.then_some(4)],
        )
        .expect("risk state");
        conn.execute(
            "INSERT INTO daily_summaries VALUES ('2024-08-08', 3, 2, 0, '1', '0.1', '0', 1, NULL, NULL, NULL, NULL, 0)",
            [],
        )
        .expect("daily");
    }

    fn fee_of(px: i64, qty: i64) -> Amount {
        Amount::notional(Px::from_int(px), Qty(qty)).mul_div(1, 1000).expect("fee")
    }

    fn write_v1_position(conn: &Connection, p: &PosRow) {
        conn.execute(
            "INSERT INTO positions VALUES ('BTCUSDT', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            rusqlite::params![
                p.pos.qty.raw(),
                p.pos.cost.to_string(),
                p.pos.avg_px().raw(),
                p.pos.realized.to_string(),
                p.pos.fees.to_string(),
                p.pos.realized_net().to_string(),
                p.mark.raw(),
                p.pos.unrealized(p.mark).to_string(),
                p.fills as i64,
                p.updated_ns as i64,
            ],
        )
        .expect("position");
    }

    /// (mode, qty, cost, fees, mark, fills) of every `positions` row.
    fn positions(conn: &Connection) -> Vec<(String, i64, String, String, i64, i64)> {
        conn.prepare("SELECT mode, qty_e8, cost, fees, mark_e8, fills FROM positions ORDER BY mode")
            .expect("select")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    }

    fn strings(conn: &Connection, sql: &str) -> Vec<String> {
        conn.prepare(sql).expect(sql).query_map([], |r| r.get(0)).expect(sql).collect::<Result<_, _>>().expect(sql)
    }

    /// Paper fills, then a live run: version 1 had made the paper position the live engine's.
    /// Migrated, each mode holds the replay of its own fills; the tripped latch binds both.
    #[test]
    fn a_version_1_store_is_split_into_one_account_per_mode() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("v1.sqlite");
        let fills = [
            (1, Side::Buy, 60_000, 100_000_000),
            (2, Side::Buy, 61_000, 50_000_000),
            (1, Side::Sell, 62_000, 40_000_000),
        ];
        v1_store(&path, &[(1, "paper"), (2, "live")], &fills, true);
        let conn = open(&path, StoreSync::Full).expect("migrated");
        let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).expect("version");
        assert_eq!(v, VERSION);
        let replay = |run: i64| {
            let mut p = Position::default();
            for &(_, side, px, qty) in fills.iter().filter(|f| f.0 == run) {
                p.on_fill(side, Px::from_int(px), Qty(qty), fee_of(px, qty));
            }
            p
        };
        let (paper, live) = (replay(1), replay(2));
        assert_eq!(
            positions(&conn),
            vec![
                // The latest run's mode keeps the stored mark; the other marks at its last fill.
                (
                    "live".into(),
                    live.qty.raw(),
                    live.cost.to_string(),
                    live.fees.to_string(),
                    Px::from_int(60_500).raw(),
                    1
                ),
                (
                    "paper".into(),
                    paper.qty.raw(),
                    paper.cost.to_string(),
                    paper.fees.to_string(),
                    Px::from_int(62_000).raw(),
                    2
                ),
            ]
        );
        assert_eq!(paper.qty, Qty(60_000_000), "the test's paper replay is not trivial");
        assert_eq!(
            strings(&conn, "SELECT mode || ' ' || kill_switch || ' ' || peak FROM risk_state ORDER BY mode"),
            ["live drawdown 10200", "paper drawdown 10200"]
        );
        assert_eq!(strings(&conn, "SELECT mode || ' ' || day FROM daily_summaries"), ["live 2024-08-08"]);
        let old: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master WHERE name LIKE '%_v1'", [], |r| r.get(0))
            .expect("count");
        assert_eq!(old, 0, "the version-1 tables are gone");
    }

    /// One mode only: its rows are moved as they are (the stored mark and fill count kept), and a
    /// latch that is not tripped goes to that mode alone.
    #[test]
    fn a_version_1_store_of_one_mode_keeps_its_rows() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("v1.sqlite");
        v1_store(&path, &[(1, "paper"), (2, "shadow"), (3, "paper")], &[(1, Side::Buy, 60_000, 100_000_000)], false);
        let before: Vec<String> = strings(&Connection::open(&path).expect("open"), "SELECT cost FROM positions");
        let conn = open(&path, StoreSync::Full).expect("migrated");
        let rows = positions(&conn);
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].0.as_str(), &rows[0].2, rows[0].4, rows[0].5),
            ("paper", &before[0], Px::from_int(60_500).raw(), 1)
        );
        assert_eq!(strings(&conn, "SELECT mode FROM risk_state"), ["paper"]);
        drop(conn);

        // Rows no run wrote cannot be given to a mode: refused, the store left as it was.
        let orphan = dir.path().join("orphan.sqlite");
        v1_store(&orphan, &[], &[], false);
        let e = open(&orphan, StoreSync::Full).expect_err("no run");
        assert!(format!("{e:#}").contains("no run that wrote them"), "{e:#}");
        let v: i64 =
            Connection::open(&orphan).expect("open").query_row("PRAGMA user_version", [], |r| r.get(0)).expect("v");
        assert_eq!(v, 1, "rolled back");
    }

    #[test]
    fn foreign_or_newer_databases_are_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let other = dir.path().join("other.sqlite");
        Connection::open(&other).expect("open").execute_batch("CREATE TABLE t (x)").expect("create");
        let e = open(&other, StoreSync::Full).expect_err("not ours");
        assert!(format!("{e:#}").contains("not an hft store"), "{e:#}");

        let newer = dir.path().join("newer.sqlite");
        drop(open(&newer, StoreSync::Full).expect("created"));
        Connection::open(&newer).expect("open").execute_batch("PRAGMA user_version = 99").expect("bump");
        let e = open(&newer, StoreSync::Full).expect_err("newer");
        assert!(format!("{e:#}").contains("newer hft"), "{e:#}");
    }
}
