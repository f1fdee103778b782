//! The writer's in-memory copy of the rows it keeps updating (positions, the risk state, the
//! daily summaries): loaded from the database at open, changed by events, written back at the end
//! of each batch. The same load gives the engine its [`Restore`], so what the engine resumes from
//! and what the writer continues from are one state.
//!
//! Those rows are kept per *account*, the trading mode (`paper`, `shadow`, `live`): a run reads
//! and writes only its own mode's, so a live engine never takes over a position, a loss baseline
//! or a kill-switch latch that simulated fills made, nor the other way round.
//!
//! Start-up (load) and the writer thread (everything else); allocates.

use super::codec::{self, parse_amount};
use anyhow::anyhow;
use hft_engine::restore::{BreakerState, Restore, RestoredPosition};
use hft_engine::risk::Position;
use hft_shared::msg::KillCause;
use hft_shared::{Amount, Px, Qty, Side, SymbolId};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

/// One symbol's `positions` row.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PosRow {
    /// Replayed from the stored fills with the engine's arithmetic.
    pub pos: Position,
    pub mark: Px,
    pub fills: u64,
    pub updated_ns: u64,
    pub dirty: bool,
}

impl PosRow {
    /// A stored fill moves the row: the position by the engine's arithmetic (`moved`: the base
    /// quantity the account moved by, [`hft_shared::msg::moved_qty`]), the count, the time, and
    /// the mark when none is known yet.
    pub fn on_fill(&mut self, side: Side, px: Px, moved: Qty, fee: Amount, ts_ns: u64) {
        self.pos.on_fill(side, px, moved, fee);
        self.fills += 1;
        self.updated_ns = self.updated_ns.max(ts_ns);
        if self.mark.raw() <= 0 {
            self.mark = px;
        }
        self.dirty = true;
    }
}

/// The `risk_state` row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RiskRow {
    pub day: u64,
    pub day_start: Amount,
    pub peak: Amount,
    pub equity: Amount,
    pub kill: Option<KillCause>,
    pub kill_ns: Option<u64>,
    pub updated_ns: u64,
    pub dirty: bool,
}

impl RiskRow {
    /// A first row, from the first figure reported (`equity` at `ts_ns`).
    pub fn first(equity: Amount, ts_ns: u64) -> Self {
        RiskRow {
            day: codec::day_of(ts_ns),
            day_start: equity,
            peak: equity,
            equity,
            kill: None,
            kill_ns: None,
            updated_ns: ts_ns,
            dirty: true,
        }
    }
}

/// One `daily_summaries` row.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Daily {
    pub orders: u64,
    pub fills: u64,
    pub rejects: u64,
    pub volume: Amount,
    pub fees: Amount,
    pub realized: Amount,
    pub kill_trips: u64,
    pub equity_open: Option<Amount>,
    pub equity_close: Option<Amount>,
    pub equity_high: Option<Amount>,
    pub equity_low: Option<Amount>,
    pub max_drawdown: f64,
    pub dirty: bool,
}

impl Daily {
    /// An equity figure reported that day, with the peak then.
    pub fn equity(&mut self, equity: Amount, peak: Amount) {
        self.equity_open.get_or_insert(equity);
        self.equity_close = Some(equity);
        self.equity_high = Some(self.equity_high.map_or(equity, |h| h.max(equity)));
        self.equity_low = Some(self.equity_low.map_or(equity, |l| l.min(equity)));
        if peak > Amount::ZERO && equity < peak {
            let dd = (peak - equity).to_f64() / peak.to_f64();
            if dd > self.max_drawdown {
                self.max_drawdown = dd;
            }
        }
        self.dirty = true;
    }
}

/// Daily rows kept in memory (the most recent days); older ones are only in the database.
const DAYS_KEPT: usize = 3;

/// Everything the writer keeps up to date.
#[derive(Debug, Clone)]
pub struct State {
    /// The account: the run's mode (`Mode::as_str`).
    pub mode: &'static str,
    /// Configured symbol names; index = `SymbolId`.
    pub symbols: Vec<String>,
    /// Per configured symbol; `None` until the symbol has a row.
    pub positions: Vec<Option<PosRow>>,
    /// Stored positions in symbols this run does not trade: (symbol, quantity).
    pub foreign: Vec<(String, Qty)>,
    pub risk: Option<RiskRow>,
    /// By UTC day number.
    pub days: BTreeMap<u64, Daily>,
}

fn amount_col(row: &rusqlite::Row<'_>, idx: usize, what: &str) -> anyhow::Result<Amount> {
    let s: String = row.get(idx)?;
    parse_amount(&s).ok_or_else(|| anyhow!("{what} holds {s:?}, which is not an exact decimal amount"))
}

fn opt_amount_col(row: &rusqlite::Row<'_>, idx: usize, what: &str) -> anyhow::Result<Option<Amount>> {
    let s: Option<String> = row.get(idx)?;
    s.map(|s| parse_amount(&s).ok_or_else(|| anyhow!("{what} holds {s:?}, which is not an exact decimal amount")))
        .transpose()
}

fn kill_cause(s: &str) -> Option<KillCause> {
    [KillCause::DailyLoss, KillCause::Drawdown].into_iter().find(|c| c.code() == s)
}

fn u64_col(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let v: i64 = row.get(idx)?;
    Ok(u64::try_from(v).unwrap_or(0))
}

impl State {
    /// Reads the rows of account `mode` in `conn` for a run trading `symbols`. A row that does
    /// not read back exactly (corrupt text, an unknown kill cause) is an error: the engine must
    /// not start on a state it cannot trust.
    pub fn load(conn: &Connection, mode: &'static str, symbols: &[String]) -> anyhow::Result<State> {
        let mut state = State {
            mode,
            symbols: symbols.to_vec(),
            positions: vec![None; symbols.len()],
            foreign: Vec::new(),
            risk: None,
            days: BTreeMap::new(),
        };
        let mut stmt = conn.prepare(
            "SELECT symbol, qty_e8, cost, realized, fees, mark_e8, fills, updated_ns FROM positions WHERE mode = ?1 \
             ORDER BY symbol",
        )?;
        let mut rows = stmt.query([mode])?;
        while let Some(row) = rows.next()? {
            let symbol: String = row.get(0)?;
            let what = |col: &str| format!("positions.{col} of {symbol}");
            let qty = Qty(row.get(1)?);
            let pos = Position {
                qty,
                cost: amount_col(row, 2, &what("cost"))?,
                realized: amount_col(row, 3, &what("realized"))?,
                fees: amount_col(row, 4, &what("fees"))?,
            };
            if qty.is_zero() && pos.cost != Amount::ZERO {
                return Err(anyhow!("positions row of {symbol} is flat but has a cost basis"));
            }
            let p = PosRow {
                pos,
                mark: Px(row.get(5)?),
                fills: u64_col(row, 6)?,
                updated_ns: u64_col(row, 7)?,
                dirty: false,
            };
            match symbols.iter().position(|s| *s == symbol) {
                Some(i) => state.positions[i] = Some(p),
                None if !qty.is_zero() => state.foreign.push((symbol, qty)),
                None => {}
            }
        }
        state.risk = conn
            .query_row(
                "SELECT day, day_start, peak, equity, kill_switch, kill_ns, updated_ns FROM risk_state WHERE mode = ?1",
                [mode],
                |row| {
                    Ok((
                        u64_col(row, 0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, Option<String>>(4)?,
                        row.get::<_, Option<i64>>(5)?,
                        u64_col(row, 6)?,
                    ))
                },
            )
            .optional()?
            .map(|(day, day_start, peak, equity, kill, kill_ns, updated_ns)| -> anyhow::Result<RiskRow> {
                let amt = |s: &str, col: &str| {
                    parse_amount(s)
                        .ok_or_else(|| anyhow!("risk_state.{col} holds {s:?}, which is not an exact decimal"))
                };
                let kill = match kill {
                    None => None,
                    Some(k) => Some(kill_cause(&k).ok_or_else(|| {
                        anyhow!("risk_state.kill_switch holds {k:?}, which this build does not know")
                    })?),
                };
                Ok(RiskRow {
                    day,
                    day_start: amt(&day_start, "day_start")?,
                    peak: amt(&peak, "peak")?,
                    equity: amt(&equity, "equity")?,
                    kill,
                    kill_ns: kill_ns.and_then(|v| u64::try_from(v).ok()),
                    updated_ns,
                    dirty: false,
                })
            })
            .transpose()?;
        Ok(state)
    }

    /// What the engine takes over: positions of configured symbols, the breakers, the next
    /// order id (`next_order_id`, above every stored one), and the send times of the day's
    /// orders (`orders_sent`, oldest first).
    pub fn restore(&self, next_order_id: u64, orders_sent: Vec<u64>) -> Restore {
        Restore {
            positions: self
                .positions
                .iter()
                .enumerate()
                .filter_map(|(i, p)| {
                    p.map(|p| RestoredPosition { symbol: SymbolId(i as u16), position: p.pos, mark: p.mark })
                })
                .collect(),
            breaker: self.risk.map(|r| BreakerState {
                day: r.day,
                day_start: r.day_start,
                peak: r.peak,
                tripped: r.kill,
            }),
            next_order_id,
            orders_sent,
        }
    }

    /// The daily row of UTC day `day`, read from `conn` on first use.
    pub fn day(&mut self, conn: &Connection, day: u64) -> anyhow::Result<&mut Daily> {
        Ok(match self.days.entry(day) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(load_day(conn, self.mode, day)?),
        })
    }

    /// Writes every changed row (inside the batch's transaction). Dirty flags are cleared by
    /// [`State::written`] once the transaction has committed.
    pub fn flush(&self, conn: &Connection) -> anyhow::Result<()> {
        for (i, p) in self.positions.iter().enumerate() {
            if let Some(p) = p.filter(|p| p.dirty) {
                write_position(conn, self.mode, &self.symbols[i], &p)?;
            }
        }
        if let Some(r) = self.risk.filter(|r| r.dirty) {
            conn.prepare_cached(
                "INSERT INTO risk_state (mode, day, day_start, peak, equity, kill_switch, kill_ns, updated_ns) \
                 VALUES (?8, ?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(mode) DO UPDATE SET day = excluded.day, \
                 day_start = excluded.day_start, peak = excluded.peak, equity = excluded.equity, \
                 kill_switch = excluded.kill_switch, kill_ns = excluded.kill_ns, updated_ns = excluded.updated_ns",
            )?
            .execute(params![
                codec::int(r.day),
                codec::amount(r.day_start),
                codec::amount(r.peak),
                codec::amount(r.equity),
                r.kill.map(KillCause::code),
                r.kill_ns.map(codec::int),
                codec::int(r.updated_ns),
                self.mode,
            ])?;
        }
        for (&day, d) in self.days.iter().filter(|(_, d)| d.dirty) {
            let opt = |a: Option<Amount>| a.map(codec::amount);
            conn.prepare_cached(
                "INSERT INTO daily_summaries (mode, day, orders, fills, rejects, volume, fees, realized, kill_trips, \
                 equity_open, equity_close, equity_high, equity_low, max_drawdown) \
                 VALUES (?14, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
                 ON CONFLICT(mode, day) DO UPDATE SET \
                 orders = excluded.orders, fills = excluded.fills, rejects = excluded.rejects, \
                 volume = excluded.volume, fees = excluded.fees, realized = excluded.realized, \
                 kill_trips = excluded.kill_trips, equity_open = excluded.equity_open, \
                 equity_close = excluded.equity_close, equity_high = excluded.equity_high, \
                 equity_low = excluded.equity_low, max_drawdown = excluded.max_drawdown",
            )?
            .execute(params![
                codec::date(day),
                codec::int(d.orders),
                codec::int(d.fills),
                codec::int(d.rejects),
                codec::amount(d.volume),
                codec::amount(d.fees),
                codec::amount(d.realized),
                codec::int(d.kill_trips),
                opt(d.equity_open),
                opt(d.equity_close),
                opt(d.equity_high),
                opt(d.equity_low),
                d.max_drawdown,
                self.mode,
            ])?;
        }
        Ok(())
    }

    /// The flushed rows are on disk: clear their dirty flags and forget old days.
    pub fn written(&mut self) {
        for p in self.positions.iter_mut().flatten() {
            p.dirty = false;
        }
        if let Some(r) = &mut self.risk {
            r.dirty = false;
        }
        for d in self.days.values_mut() {
            d.dirty = false;
        }
        while self.days.len() > DAYS_KEPT {
            self.days.pop_first();
        }
    }
}

/// Writes (inserts or replaces) the `positions` row of `symbol` in account `mode`.
pub fn write_position(conn: &Connection, mode: &str, symbol: &str, p: &PosRow) -> rusqlite::Result<()> {
    let unrealized = if p.mark.raw() > 0 { p.pos.unrealized(p.mark) } else { Amount::ZERO };
    conn.prepare_cached(
        "INSERT INTO positions (mode, symbol, qty_e8, cost, avg_px_e8, realized, fees, realized_net, mark_e8, \
         unrealized, fills, updated_ns) VALUES (?12, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
         ON CONFLICT(mode, symbol) DO UPDATE SET qty_e8 = excluded.qty_e8, cost = excluded.cost, \
         avg_px_e8 = excluded.avg_px_e8, realized = excluded.realized, fees = excluded.fees, \
         realized_net = excluded.realized_net, mark_e8 = excluded.mark_e8, \
         unrealized = excluded.unrealized, fills = excluded.fills, updated_ns = excluded.updated_ns",
    )?
    .execute(params![
        symbol,
        p.pos.qty.raw(),
        codec::amount(p.pos.cost),
        p.pos.avg_px().raw(),
        codec::amount(p.pos.realized),
        codec::amount(p.pos.fees),
        codec::amount(p.pos.realized_net()),
        p.mark.raw(),
        codec::amount(unrealized),
        codec::int(p.fills),
        codec::int(p.updated_ns),
        mode,
    ])?;
    Ok(())
}

fn load_day(conn: &Connection, mode: &str, day: u64) -> anyhow::Result<Daily> {
    let date = codec::date(day);
    let mut stmt = conn.prepare_cached(
        "SELECT orders, fills, rejects, volume, fees, realized, kill_trips, equity_open, equity_close, \
         equity_high, equity_low, max_drawdown FROM daily_summaries WHERE mode = ?1 AND day = ?2",
    )?;
    let mut rows = stmt.query([mode, &date])?;
    let Some(row) = rows.next()? else { return Ok(Daily::default()) };
    let what = |col: &str| format!("daily_summaries.{col} of {date}");
    Ok(Daily {
        orders: u64_col(row, 0)?,
        fills: u64_col(row, 1)?,
        rejects: u64_col(row, 2)?,
        volume: amount_col(row, 3, &what("volume"))?,
        fees: amount_col(row, 4, &what("fees"))?,
        realized: amount_col(row, 5, &what("realized"))?,
        kill_trips: u64_col(row, 6)?,
        equity_open: opt_amount_col(row, 7, &what("equity_open"))?,
        equity_close: opt_amount_col(row, 8, &what("equity_close"))?,
        equity_high: opt_amount_col(row, 9, &what("equity_high"))?,
        equity_low: opt_amount_col(row, 10, &what("equity_low"))?,
        max_drawdown: row.get(11)?,
        dirty: false,
    })
}
