//! The store's schema (version [`VERSION`], kept in SQLite's `user_version`), created on first
//! open, and the connection settings (WAL journal, `synchronous`).
//!
//! Start-up only (the caller's thread); allocates.
//!
//! Column conventions (see [`super::codec`]): `_e8` integers are `Px`/`Qty` raw units (1e-8);
//! amounts are exact decimal text; `_ns`/`_ms` are Unix times; `symbol` is the Binance name;
//! `side` is `BUY`/`SELL`; order `status` is Binance's (`NEW`, `FILLED`, …, `PENDING_NEW` for
//! sent and not yet acknowledged).

use anyhow::{Context, bail};
use hft_shared::config::StoreSync;
use rusqlite::Connection;

/// Schema version this build writes. A database of a later version is refused (it was written
/// by a newer `hft`); an earlier one would be migrated here.
pub const VERSION: i64 = 1;
/// SQLite `application_id` of an hft store ("HFT1"), so other tools can tell what the file is.
pub const APPLICATION_ID: i64 = 0x4846_5431;

/// The orders by send time (in [`SCHEMA_V1`] too), for stores created before it was.
const ORDERS_CREATED_INDEX: &str = "CREATE INDEX IF NOT EXISTS orders_created ON orders(created_ns);";

/// Version 1.
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

/// Creates the schema in an empty database; checks an existing one is ours and not newer.
fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let app: i64 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    if version > VERSION {
        bail!("the database has schema version {version}, written by a newer hft; this build knows {VERSION}");
    }
    if version == VERSION {
        if app != APPLICATION_ID {
            bail!("the database is not an hft store (application_id {app:#x})");
        }
        // Added to version 1 later: the start-up count of the day's orders reads it. Creating
        // an index changes nothing else, so it needs no new version.
        conn.execute_batch(ORDERS_CREATED_INDEX).context("cannot index the orders by time")?;
        return Ok(());
    }
    // version 0: empty, or someone else's.
    let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
    if tables > 0 {
        bail!("the database already holds {tables} tables and is not an hft store");
    }
    let tx = conn.transaction()?;
    tx.execute_batch(SCHEMA_V1).context("cannot create the schema")?;
    tx.execute_batch(&format!("PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {VERSION};"))?;
    tx.commit().context("cannot create the schema")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
