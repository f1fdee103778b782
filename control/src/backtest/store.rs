//! The backtest's metrics over what the store recorded (paper, shadow, live): the same
//! [`Ledger`] fed with the stored fills, so a live account is measured exactly as a backtest;
//! and the go-live gate's verdicts (`gate_results`, a table this module adds to an existing
//! store).
//!
//! Reads the SQLite store (`store.path`) through its own connection, by SQL over the store's
//! schema (tables `runs`, `orders`, `fills`, `risk_events`; amounts read with its codec); a
//! reader never blocks the writer (WAL). Runs on the caller's thread (`hft gate`,
//! `hft run` at start-up, or a blocking task of the API); allocates.
//!
//! Differences from a backtest: the marks are the fill prices (the store keeps no market data),
//! so equity moves only at fills; the fills of all the runs of the selected modes are one
//! capital, on which each mode holds its own positions (positions carry over the restarts of a
//! mode, as the engine restores them, and never from one mode to another).

use super::metrics::{Day, Fill, Ledger, Metrics};
use crate::store::codec::{parse_amount, parse_side};
use crate::store::schema::APPLICATION_ID;
use anyhow::{Context, anyhow, bail};
use hft_shared::config::Mode;
use hft_shared::{Amount, Px, Qty};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;

/// Metrics of the stored account.
#[derive(Debug, Clone, Serialize)]
pub struct Stored {
    /// Modes whose runs were included.
    pub modes: Vec<&'static str>,
    pub runs: u64,
    pub metrics: Metrics,
    pub daily: Vec<Day>,
    /// Kill-switch risk events recorded (any mode).
    pub kill_switch_trips: u64,
}

/// A recorded go-live verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub at_ms: i64,
    pub passed: bool,
    pub trades: u64,
    pub sharpe: Option<f64>,
    pub max_drawdown: f64,
    pub win_rate: Option<f64>,
    pub kill_switch_trips: u64,
    /// Names of the failed criteria, comma-separated; empty when passed.
    pub failed: String,
}

/// Opens an existing store at `path` (never creates one).
pub fn open(path: &Path) -> anyhow::Result<Connection> {
    if !path.is_file() {
        bail!("there is no store at {} (store.path)", path.display());
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .with_context(|| format!("cannot open the store {}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(5)).context("cannot set busy_timeout")?;
    let app: i64 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    if app != APPLICATION_ID {
        bail!("{} is not an hft store (application_id {app:#x})", path.display());
    }
    Ok(conn)
}

/// The metrics of every fill of the runs in `modes`, with `capital` as starting equity.
pub fn metrics(conn: &Connection, modes: &[Mode], capital: Amount) -> anyhow::Result<Stored> {
    let names: Vec<&'static str> = modes.iter().map(|m| m.as_str()).collect();
    let list = names.iter().map(|m| format!("'{m}'")).collect::<Vec<_>>().join(",");
    let runs: i64 = conn
        .query_row(&format!("SELECT count(*) FROM runs WHERE mode IN ({list})"), [], |r| r.get(0))
        .context("reading runs")?;
    // A store no version-2 writer has opened yet has no `base_fee_e8`: none of its fills had one.
    let has_base_fee: bool = conn
        .query_row("SELECT count(*) FROM pragma_table_info('fills') WHERE name = 'base_fee_e8'", [], |r| {
            r.get::<_, i64>(0)
        })
        .context("reading the fills' columns")?
        > 0;
    let base_fee = if has_base_fee { "f.base_fee_e8" } else { "0" };
    let mut stmt = conn
        .prepare(&format!(
            "SELECT f.ts_ns, f.run_id, f.order_id, r.mode || ' ' || f.symbol, f.side, f.px_e8, f.qty_e8, f.fee, \
             o.decision_px_e8, {base_fee} \
             FROM fills f JOIN runs r ON r.id = f.run_id \
             LEFT JOIN orders o ON o.run_id = f.run_id AND o.id = f.order_id \
             WHERE r.mode IN ({list}) ORDER BY f.ts_ns, f.id"
        ))
        .context("reading fills")?;
    type Row = (i64, i64, i64, String, String, i64, i64, String, Option<i64>, i64);
    let rows: Vec<Row> = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
            ))
        })?
        .collect::<Result<_, _>>()
        .context("reading fills")?;
    let mut symbols: HashMap<String, usize> = HashMap::new();
    for r in &rows {
        let n = symbols.len();
        symbols.entry(r.3.clone()).or_insert(n);
    }
    let mut ledger = Ledger::new(capital, symbols.len().max(1));
    let mut last = 0u64;
    for (ts, run, order, sym, side, px, qty, fee, decision, base_fee) in rows {
        let side = parse_side(&side).ok_or_else(|| anyhow!("a stored fill has side {side:?}"))?;
        let fee = parse_amount(&fee).ok_or_else(|| anyhow!("a stored fill has fee {fee:?}"))?;
        let ts = u64::try_from(ts).unwrap_or(0);
        last = last.max(ts);
        ledger.fill(&Fill {
            ts_ns: ts,
            // Order ids are per run: one key per (run, order).
            order: (u64::try_from(run).unwrap_or(0) << 40) ^ u64::try_from(order).unwrap_or(0),
            symbol: symbols.get(&sym).copied().unwrap_or(0),
            side,
            px: Px(px),
            qty: Qty(qty),
            fee,
            base_fee: Qty(base_fee),
            decision_px: decision.map(Px),
        });
    }
    let summary = ledger.finish(last);
    let kill: i64 = conn
        .query_row("SELECT count(*) FROM risk_events WHERE kind = 'kill_switch'", [], |r| r.get(0))
        .context("reading risk events")?;
    Ok(Stored {
        modes: names,
        runs: u64::try_from(runs).unwrap_or(0),
        metrics: summary.metrics,
        daily: summary.daily,
        kill_switch_trips: u64::try_from(kill).unwrap_or(0),
    })
}

/// The store's paper and shadow accounts (simulated fills): what the go-live gate judges, and
/// what an API endpoint can serve (`modes`: which runs to include).
pub fn performance(path: &Path, modes: &[Mode], capital: f64) -> anyhow::Result<Stored> {
    let conn = open(path)?;
    metrics(&conn, modes, Amount::from_f64(capital).unwrap_or(Amount::ZERO))
}

const GATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS gate_results (
    id                INTEGER PRIMARY KEY,
    at_ms             INTEGER NOT NULL,   -- wall clock of the evaluation
    passed            INTEGER NOT NULL,   -- 1: every criterion passed
    trades            INTEGER NOT NULL,
    sharpe            REAL,
    max_drawdown      REAL NOT NULL,
    win_rate          REAL,
    kill_switch_trips INTEGER NOT NULL,
    failed            TEXT NOT NULL,      -- failed criteria, comma-separated
    version           TEXT NOT NULL       -- hft version that judged
)";

/// Records a verdict (creating `gate_results` when missing).
pub fn record(conn: &Connection, v: &Verdict) -> anyhow::Result<()> {
    conn.execute_batch(GATE_TABLE).context("cannot create gate_results")?;
    conn.execute(
        "INSERT INTO gate_results (at_ms, passed, trades, sharpe, max_drawdown, win_rate, kill_switch_trips, failed, version) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        rusqlite::params![
            v.at_ms,
            v.passed,
            i64::try_from(v.trades).unwrap_or(i64::MAX),
            v.sharpe,
            v.max_drawdown,
            v.win_rate,
            i64::try_from(v.kill_switch_trips).unwrap_or(i64::MAX),
            v.failed,
            env!("CARGO_PKG_VERSION"),
        ],
    )
    .context("cannot record the gate verdict")?;
    Ok(())
}

/// The latest recorded verdict, if any.
pub fn latest(conn: &Connection) -> anyhow::Result<Option<Verdict>> {
    let exists: i64 =
        conn.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'gate_results'", [], |r| {
            r.get(0)
        })?;
    if exists == 0 {
        return Ok(None);
    }
    conn.query_row(
        "SELECT at_ms, passed, trades, sharpe, max_drawdown, win_rate, kill_switch_trips, failed \
         FROM gate_results ORDER BY id DESC LIMIT 1",
        [],
        |r| {
            Ok(Verdict {
                at_ms: r.get(0)?,
                passed: r.get(1)?,
                trades: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                sharpe: r.get(3)?,
                max_drawdown: r.get(4)?,
                win_rate: r.get(5)?,
                kill_switch_trips: u64::try_from(r.get::<_, i64>(6)?).unwrap_or(0),
                failed: r.get(7)?,
            })
        },
    )
    .optional()
    .context("cannot read gate_results")
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// The hand-computed round trips of the metrics tests, in a store with the store's own
    /// schema: the same figures come out; live runs are left out of a paper/shadow view;
    /// verdicts are recorded and read back.
    #[test]
    fn stored_fills_give_the_ledgers_figures() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let conn = crate::store::schema::open(&path, hft_shared::config::StoreSync::Normal).unwrap();
        conn.execute_batch(
            "INSERT INTO runs (id, started_ms, mode, version, symbols) VALUES
               (1, 0, 'paper', 'x', 'BTCUSDT'), (2, 0, 'live', 'x', 'BTCUSDT'), (3, 0, 'shadow', 'x', 'BTCUSDT');
             INSERT INTO orders (run_id, id, symbol, side, kind, tif, px_e8, qty_e8, decision_px_e8, strategies,
               reduce_only, status, created_ns, updated_ns, tick_to_order_ns) VALUES
               (1, 1, 'BTCUSDT', 'BUY', 'MARKET', 'IOC', 0, 100000000, 9900000000, 1, 0, 'FILLED', 0, 0, 0),
               (1, 2, 'BTCUSDT', 'SELL', 'MARKET', 'IOC', 0, 100000000, 11000000000, 1, 0, 'FILLED', 0, 0, 0);
             INSERT INTO fills (run_id, order_id, symbol, side, liquidity, px_e8, qty_e8, fee, position_e8, realized,
               last, ts_ns) VALUES
               (1, 1, 'BTCUSDT', 'BUY', 'TAKER', 10000000000, 100000000, '0.1', 100000000, '-0.1', 1, 1723075200000000000),
               (1, 2, 'BTCUSDT', 'SELL', 'TAKER', 11000000000, 100000000, '0.11', 0, '9.79', 1, 1723075230000000000),
               (2, 1, 'BTCUSDT', 'BUY', 'TAKER', 10000000000, 100000000, '0.1', 100000000, '-0.1', 1, 1723075240000000000),
               (3, 1, 'BTCUSDT', 'SELL', 'TAKER', 10500000000, 100000000, '0.105', -100000000, '-0.105', 1,
                1723075210000000000);
             INSERT INTO risk_events (kind, detail, value, ts_ns) VALUES ('kill_switch', 'drawdown', 0, 1);",
        )
        .unwrap();
        drop(conn);
        let s = performance(&path, &[Mode::Paper], 1000.0).unwrap();
        assert_eq!((s.runs, s.metrics.trades, s.metrics.wins, s.kill_switch_trips), (1, 1, 1, 1));
        assert!((s.metrics.total_pnl - 9.79).abs() < 1e-9, "{}", s.metrics.total_pnl);
        // Each mode is its own account: shadow's sell between paper's buy and sell opens a short
        // of its own (costing its fee) instead of closing paper's long.
        let s = performance(&path, &[Mode::Paper, Mode::Shadow], 1000.0).unwrap();
        assert_eq!((s.runs, s.metrics.trades, s.metrics.wins), (2, 1, 1));
        assert!((s.metrics.total_pnl - 9.685).abs() < 1e-9, "{}", s.metrics.total_pnl);
        // Bought 1 above the decision mid (100 vs 99): slippage 1; sold at it: 0.
        assert!((s.metrics.slippage - 1.0).abs() < 1e-9, "{}", s.metrics.slippage);
        let live = performance(&path, &[Mode::Live], 1000.0).unwrap();
        assert_eq!((live.runs, live.metrics.fills, live.metrics.trades), (1, 1, 0));

        let conn = open(&path).unwrap();
        assert_eq!(latest(&conn).unwrap(), None);
        let v = Verdict {
            at_ms: 5,
            passed: false,
            trades: 1,
            sharpe: None,
            max_drawdown: 0.01,
            win_rate: Some(1.0),
            kill_switch_trips: 1,
            failed: "trades,sharpe".into(),
        };
        record(&conn, &v).unwrap();
        record(&conn, &Verdict { passed: true, failed: String::new(), at_ms: 6, ..v.clone() }).unwrap();
        let got = latest(&conn).unwrap().unwrap();
        assert!(got.passed && got.at_ms == 6 && got.sharpe.is_none());
    }

    #[test]
    fn only_existing_hft_stores_open() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.sqlite");
        assert!(open(&missing).unwrap_err().to_string().contains("no store"));
        assert!(!missing.exists(), "never created");
        let other = dir.path().join("other.sqlite");
        Connection::open(&other).unwrap().execute_batch("CREATE TABLE t (x)").unwrap();
        assert!(open(&other).unwrap_err().to_string().contains("not an hft store"));
    }
}
