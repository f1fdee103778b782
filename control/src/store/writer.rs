//! The writer thread (`hft-store`): the only connection that writes the database.
//!
//! It blocks on its queue for the first record, takes everything else queued (up to
//! [`MAX_BATCH`]) and commits it all in one transaction: idle, a record is durable one commit
//! (an fsync) after it arrives; under load the batches grow and share the fsync. A batch that
//! cannot be committed is rolled back and retried with back-off, forever: nothing queued is
//! dropped (the queue fills, and the bridge then leaves events in the engine's ring).
//!
//! A plain std thread, never the hot thread nor a tokio worker; allocates freely.

use super::codec::{self, day_of};
use super::rows::{PosRow, RiskRow, State};
use crate::audit::OperatorAction;
use anyhow::Context;
use hft_shared::Amount;
use hft_shared::msg::{Event, FillEvent, Liquidity, OrderEvent, RiskEvent, RiskEventKind, RiskSnapshot};
use rusqlite::{Connection, params};
use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Records committed in one transaction at most.
pub const MAX_BATCH: usize = 8192;
/// Longest pause between two attempts at a failing commit.
const MAX_RETRY: Duration = Duration::from_secs(5);

/// What the writer is handed.
#[derive(Debug)]
pub enum Msg {
    Event(Event),
    Operator(OperatorAction),
    /// Commit everything before this, mark the run as stopped cleanly, and end.
    Shutdown,
}

/// Counters shared by the handle (readers, the bridge) and the writer.
#[derive(Debug, Default)]
pub struct Counters {
    /// Records (events, operator actions) accepted into the queue.
    pub queued: AtomicU64,
    /// Records committed.
    pub committed: AtomicU64,
    pub fills_queued: AtomicU64,
    /// Fills committed: acknowledged.
    pub fills_stored: AtomicU64,
    pub batches: AtomicU64,
    pub last_batch: AtomicU64,
    pub last_commit_us: AtomicU64,
    pub max_commit_us: AtomicU64,
    pub write_errors: AtomicU64,
    /// Times an event found the queue full (and waited in the ring).
    pub queue_full: AtomicU64,
    pub actions_dropped: AtomicU64,
    /// Fills (or position snapshots) whose position disagrees with the stored replay.
    pub mismatches: AtomicU64,
    /// Updates or fills naming an order the store does not hold.
    pub unknown_orders: AtomicU64,
    /// Orders whose id was already stored for this run (kept: the first).
    pub duplicate_orders: AtomicU64,
    pub running: AtomicBool,
}

/// What one batch did, counted once it has committed.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    records: u64,
    fills: u64,
    mismatches: u64,
    unknown_orders: u64,
    duplicate_orders: u64,
}

pub struct Writer {
    // Field order is drop order: the connection closes before the lock's descriptor does (closing
    // any descriptor of the file would drop SQLite's own POSIX locks while it still has them).
    pub conn: Connection,
    pub state: State,
    pub rx: Receiver<Msg>,
    pub counters: Arc<Counters>,
    pub run_id: i64,
    /// Held for its `flock` (see [`super::lock`]); released when the writer ends.
    pub _lock: File,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Writer {
    /// The thread's body: batches until `Shutdown` or until every sender is gone.
    pub fn run(mut self) {
        /// Reports the writer stopped however it ends, a panic included.
        struct Running(Arc<Counters>);
        impl Drop for Running {
            fn drop(&mut self) {
                self.0.running.store(false, Ordering::Release);
            }
        }
        self.counters.running.store(true, Ordering::Release);
        let _running = Running(self.counters.clone());
        let mut batch: Vec<Msg> = Vec::with_capacity(MAX_BATCH);
        let mut open = true;
        while open {
            match self.rx.recv() {
                Ok(m) => batch.push(m),
                Err(_) => open = false,
            }
            while batch.len() < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            }
            if batch.is_empty() {
                break;
            }
            let stop = batch.iter().any(|m| matches!(m, Msg::Shutdown));
            self.commit_retrying(&batch);
            batch.clear();
            if stop {
                break;
            }
        }
        // Fold the WAL back into the database file (best effort; readers may hold it).
        if let Err(e) = self.conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)") {
            tracing::debug!("store: checkpoint at exit: {e}");
        }
    }

    fn commit_retrying(&mut self, batch: &[Msg]) {
        let mut delay = Duration::from_millis(50);
        loop {
            let saved = self.state.clone();
            let t0 = Instant::now();
            match self.commit(batch) {
                Ok(t) => {
                    self.state.written();
                    let us = u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX);
                    let c = &self.counters;
                    c.last_commit_us.store(us, Ordering::Relaxed);
                    c.max_commit_us.fetch_max(us, Ordering::Relaxed);
                    c.last_batch.store(t.records, Ordering::Relaxed);
                    c.batches.fetch_add(1, Ordering::Relaxed);
                    c.unknown_orders.fetch_add(t.unknown_orders, Ordering::Relaxed);
                    c.duplicate_orders.fetch_add(t.duplicate_orders, Ordering::Relaxed);
                    c.mismatches.fetch_add(t.mismatches, Ordering::Relaxed);
                    // Release: whoever reads a count sees the commit behind it.
                    c.fills_stored.fetch_add(t.fills, Ordering::Release);
                    c.committed.fetch_add(t.records, Ordering::Release);
                    if t.mismatches > 0 {
                        tracing::error!(
                            count = t.mismatches,
                            "store: the engine's position differs from the stored fills' replay"
                        );
                    }
                    if t.unknown_orders > 0 || t.duplicate_orders > 0 {
                        tracing::warn!(
                            unknown = t.unknown_orders,
                            duplicate = t.duplicate_orders,
                            "store: records naming orders it does not hold, or holds twice"
                        );
                    }
                    return;
                }
                Err(e) => {
                    // The transaction rolled back: so does the in-memory state.
                    self.state = saved;
                    let n = self.counters.write_errors.fetch_add(1, Ordering::Relaxed) + 1;
                    tracing::error!(
                        error = format!("{e:#}"),
                        failures = n,
                        records = batch.len(),
                        retry_ms = delay.as_millis() as u64,
                        "store: cannot commit; retrying (nothing is dropped; events wait in the engine's ring, \
                         which stops opening risk when it fills)"
                    );
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(MAX_RETRY);
                }
            }
        }
    }

    fn commit(&mut self, batch: &[Msg]) -> anyhow::Result<Tally> {
        let tx = self.conn.transaction()?;
        let mut t = Tally::default();
        for m in batch {
            apply(&tx, &mut self.state, self.run_id, m, &mut t)?;
        }
        self.state.flush(&tx)?;
        tx.commit().context("commit")?;
        Ok(t)
    }
}

fn symbol(state: &State, id: hft_shared::SymbolId) -> String {
    state.symbols.get(id.index()).cloned().unwrap_or_else(|| format!("#{}", id.0))
}

/// Applies one record inside the batch's transaction.
fn apply(conn: &Connection, state: &mut State, run_id: i64, m: &Msg, t: &mut Tally) -> anyhow::Result<()> {
    match m {
        Msg::Shutdown => {
            conn.prepare_cached("UPDATE runs SET stopped_ms = ?1 WHERE id = ?2")?.execute(params![now_ms(), run_id])?;
            return Ok(());
        }
        Msg::Operator(a) => {
            conn.prepare_cached(
                "INSERT INTO operator_actions (at_ms, method, endpoint, status, outcome, remote) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![a.at_ms, a.method, a.endpoint, a.status, a.outcome, a.remote])?;
        }
        Msg::Event(ev) => event(conn, state, run_id, ev, t)?,
    }
    t.records += 1;
    Ok(())
}

fn event(conn: &Connection, state: &mut State, run_id: i64, ev: &Event, t: &mut Tally) -> anyhow::Result<()> {
    match *ev {
        Event::Order(o) => order(conn, state, run_id, &o, t)?,
        Event::OrderUpdate(u) => {
            let n = conn
                .prepare_cached(
                    "UPDATE orders SET status = ?1, venue_code = ?2, updated_ns = ?3 WHERE run_id = ?4 AND id = ?5",
                )?
                .execute(params![u.status.as_str(), u.venue_code, codec::int(u.ts_ns), run_id, codec::int(u.id.0)])?;
            if n == 0 {
                t.unknown_orders += 1;
            }
        }
        Event::Fill(f) => fill(conn, state, run_id, &f, t)?,
        Event::Reject(r) => {
            conn.prepare_cached(
                "INSERT INTO rejects (symbol, side, reason, qty_e8, px_e8, suppressed, ts_ns) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                symbol(state, r.symbol),
                r.side.as_str(),
                r.reason.code(),
                r.qty.raw(),
                r.px.raw(),
                r.suppressed,
                codec::int(r.ts_ns)
            ])?;
            let d = state.day(conn, day_of(r.ts_ns))?;
            d.rejects += 1 + u64::from(r.suppressed);
            d.dirty = true;
        }
        Event::Risk(r) => risk_event(conn, state, &r)?,
        Event::RiskState(s) => risk_state(conn, state, &s)?,
        Event::Position(p) => {
            if let Some(slot) = state.positions.get_mut(p.symbol.index()) {
                let row = slot.get_or_insert_with(PosRow::default);
                if p.qty != row.pos.qty {
                    t.mismatches += 1;
                }
                if p.mark.raw() > 0 && p.mark != row.mark {
                    row.mark = p.mark;
                    row.updated_ns = row.updated_ns.max(p.ts_ns);
                    row.dirty = true;
                }
            }
        }
        // Telemetry the store does not keep (the bridge does not send it).
        Event::Heartbeat(_)
        | Event::Ack(_)
        | Event::Feed(_)
        | Event::Stats(_)
        | Event::Latency(_)
        | Event::Strategy(_)
        | Event::Book(_) => {}
    }
    Ok(())
}

fn order(conn: &Connection, state: &mut State, run_id: i64, o: &OrderEvent, t: &mut Tally) -> anyhow::Result<()> {
    let n = conn
        .prepare_cached(
            "INSERT INTO orders (run_id, id, symbol, side, kind, tif, px_e8, qty_e8, decision_px_e8, strategies, \
             reduce_only, status, created_ns, updated_ns, tick_to_order_ns) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'PENDING_NEW', ?12, ?12, ?13) \
             ON CONFLICT(run_id, id) DO NOTHING",
        )?
        .execute(params![
            run_id,
            codec::int(o.id.0),
            symbol(state, o.symbol),
            o.side.as_str(),
            o.kind.as_str(),
            o.tif.as_str(),
            o.px.raw(),
            o.qty.raw(),
            o.decision_px.raw(),
            o.strategies,
            o.reduce_only,
            codec::int(o.ts_ns),
            o.tick_to_order_ns,
        ])?;
    if n == 0 {
        t.duplicate_orders += 1;
    }
    let d = state.day(conn, day_of(o.ts_ns))?;
    d.orders += 1;
    d.dirty = true;
    Ok(())
}

fn fill(conn: &Connection, state: &mut State, run_id: i64, f: &FillEvent, t: &mut Tally) -> anyhow::Result<()> {
    let sym = symbol(state, f.symbol);
    let liquidity = match f.liquidity {
        Liquidity::Maker => "MAKER",
        Liquidity::Taker => "TAKER",
    };
    conn.prepare_cached(
        "INSERT INTO fills (run_id, order_id, symbol, side, liquidity, px_e8, qty_e8, fee, position_e8, realized, \
         last, ts_ns, base_fee_e8) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        run_id,
        codec::int(f.order.0),
        sym,
        f.side.as_str(),
        liquidity,
        f.px.raw(),
        f.qty.raw(),
        codec::amount(f.fee),
        f.position.raw(),
        codec::amount(f.realized),
        f.last,
        codec::int(f.ts_ns),
        f.base_fee.raw(),
    ])?;
    let n = conn
        .prepare_cached(
            "UPDATE orders SET filled_e8 = filled_e8 + ?1, updated_ns = max(updated_ns, ?2) \
             WHERE run_id = ?3 AND id = ?4",
        )?
        .execute(params![f.qty.raw(), codec::int(f.ts_ns), run_id, codec::int(f.order.0)])?;
    if n == 0 {
        t.unknown_orders += 1;
    }
    t.fills += 1;
    // The position, replayed with the engine's own arithmetic.
    let mut realized_delta = Amount::ZERO;
    if let Some(slot) = state.positions.get_mut(f.symbol.index()) {
        let row = slot.get_or_insert_with(PosRow::default);
        let before = row.pos.realized_net();
        row.on_fill(f.side, f.px, f.moved(), f.fee, f.ts_ns);
        if row.pos.qty != f.position || row.pos.realized_net() != f.realized {
            t.mismatches += 1;
        }
        realized_delta = row.pos.realized_net() - before;
    }
    let d = state.day(conn, day_of(f.ts_ns))?;
    d.fills += 1;
    d.fees += f.fee;
    d.volume += Amount::notional(f.px, f.qty);
    d.realized += realized_delta;
    d.dirty = true;
    Ok(())
}

/// The name and detail a risk event is stored under.
fn risk_kind(kind: RiskEventKind) -> (&'static str, Option<&'static str>) {
    match kind {
        RiskEventKind::Halted => ("halted", None),
        RiskEventKind::Resumed => ("resumed", None),
        RiskEventKind::BackpressureOn => ("backpressure_on", None),
        RiskEventKind::BackpressureOff => ("backpressure_off", None),
        RiskEventKind::StrategyActivated(k) => ("strategy_activated", Some(k.name())),
        RiskEventKind::StrategyDeactivated(k) => ("strategy_deactivated", Some(k.name())),
        RiskEventKind::WeightChanged(k) => ("weight_changed", Some(k.name())),
        RiskEventKind::FlattenRequested => ("flatten_requested", None),
        RiskEventKind::KillSwitch(c) => ("kill_switch", Some(c.code())),
        RiskEventKind::Rearmed => ("rearmed", None),
        RiskEventKind::DayRollover => ("day_rollover", None),
    }
}

fn risk_event(conn: &Connection, state: &mut State, r: &RiskEvent) -> anyhow::Result<()> {
    let (kind, detail) = risk_kind(r.kind);
    conn.prepare_cached("INSERT INTO risk_events (kind, detail, value, ts_ns) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![kind, detail, r.value, codec::int(r.ts_ns)])?;
    // Equity figures travel in 1e-8 units.
    let equity = Amount::from_fixed8(r.value);
    match r.kind {
        RiskEventKind::KillSwitch(cause) => {
            let row = state.risk.get_or_insert_with(|| RiskRow::first(equity, r.ts_ns));
            if row.kill.is_none() {
                row.kill = Some(cause);
                row.kill_ns = Some(r.ts_ns);
            }
            row.equity = equity;
            row.updated_ns = row.updated_ns.max(r.ts_ns);
            row.dirty = true;
            let d = state.day(conn, day_of(r.ts_ns))?;
            d.kill_trips += 1;
            d.dirty = true;
        }
        RiskEventKind::Rearmed => {
            // The breakers restart from the equity now: peak and the day's baseline.
            let row = state.risk.get_or_insert_with(|| RiskRow::first(equity, r.ts_ns));
            row.kill = None;
            row.kill_ns = None;
            row.day = day_of(r.ts_ns);
            row.day_start = equity;
            row.peak = equity;
            row.equity = equity;
            row.updated_ns = row.updated_ns.max(r.ts_ns);
            row.dirty = true;
        }
        RiskEventKind::DayRollover => {
            let row = state.risk.get_or_insert_with(|| RiskRow::first(equity, r.ts_ns));
            row.day = day_of(r.ts_ns);
            row.day_start = equity;
            row.equity = equity;
            row.updated_ns = row.updated_ns.max(r.ts_ns);
            row.dirty = true;
        }
        _ => {}
    }
    Ok(())
}

/// The risk manager's periodic account view. It moves the figures (exact) but never the day
/// (only a rollover or a re-arm does) and never clears the latch (only a re-arm does).
fn risk_state(conn: &Connection, state: &mut State, s: &RiskSnapshot) -> anyhow::Result<()> {
    let row = state.risk.get_or_insert_with(|| RiskRow::first(s.day_start, s.ts_ns));
    row.day_start = s.day_start;
    row.peak = s.peak;
    row.equity = s.equity;
    if let Some(cause) = s.kill_switch
        && row.kill.is_none()
    {
        row.kill = Some(cause);
        row.kill_ns = Some(s.ts_ns);
    }
    row.updated_ns = row.updated_ns.max(s.ts_ns);
    row.dirty = true;
    state.day(conn, day_of(s.ts_ns))?.equity(s.equity, s.peak);
    Ok(())
}
