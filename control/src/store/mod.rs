//! The durable store: every order, fill, refusal and risk event the engine reports, the latest
//! position per symbol, the risk state (breaker baselines, kill-switch latch), the operator
//! actions and a summary per UTC day, in one SQLite database (`store.path`); and, at start, the
//! state a restart takes back from it.
//!
//! # Threads
//! [`Store::open`] runs on the main thread before the hot thread exists: it opens (or creates)
//! the database, reads the [`Restore`] the engine must start from, and starts the writer thread
//! (`hft-store`, a plain std thread: never the hot thread, never a tokio worker), which owns the
//! only write connection. The bridge task hands it events with [`Store::offer`] and the API's
//! audit sink hands it operator actions with [`Store::record_operator_action`], both through one
//! bounded queue ([`QUEUE`] records) with `try_send`: neither ever blocks nor waits on the disk.
//! Allocates freely (control plane).
//!
//! # Durability
//! * **Batches.** The writer takes everything queued (up to [`writer::MAX_BATCH`] records) and
//!   commits it in one transaction. Idle, a record is durable one commit after it arrives (one
//!   fsync, about a millisecond on a local SSD); under load the batches grow and share the fsync.
//! * **WAL journal.** With `store.synchronous = "full"` (the default) a commit returns only once
//!   the WAL is on disk: a committed batch survives `kill -9`, a kernel panic and power loss. With
//!   `"normal"` it survives any death of the process (`kill -9`, a panic), and the last commits
//!   may be lost on power loss or an OS crash. Records not yet committed when the process dies are
//!   lost: they were never acknowledged.
//! * **Acknowledged fill.** A fill is acknowledged (counted in [`StoreStats::stored_fills`]) only
//!   once the transaction holding it has committed; [`StoreStats::fill_lag`] is fills handed to the
//!   store and not yet committed. An acknowledged fill is never lost to `kill -9`, nor (with
//!   `"full"`) to power loss. The API can serve both figures from [`Store::stats`].
//! * **Nothing dropped on the way.** The bridge takes an event off the engine's ring only once the
//!   queue has accepted it ([`Store::offer`]). When the writer falls behind (a slow disk) or stops
//!   (a failing disk), the events it wants wait in the ring; once the ring is full, the engine
//!   parks its audit events and stops opening risk (its back-pressure), drops telemetry (counted),
//!   and the API's view stops moving. A commit that fails (disk full, I/O error, a lock held too
//!   long) is rolled back and retried with back-off, forever, each failure logged: nothing queued
//!   is dropped. Operator actions are the exception: when the queue is full the action is still
//!   logged, is counted in [`StoreStats::operator_actions_dropped`], and the request goes on.
//! * **Restart.** Positions (quantity, exact cost basis, realized PnL, fees, last mark), the risk
//!   state and the next order id are read back before the hot thread starts, and the engine takes
//!   them over before it trades ([`hft_engine::spawn_with`]). The kill-switch latch is set by its
//!   risk event and cleared only by a re-arm event: a restart never clears it. The day's loss
//!   baseline is restored when it belongs to the current UTC day; the peak always. Figures from
//!   the periodic risk snapshot (peak, equity) are as of the last committed snapshot
//!   (`engine.snapshot_ms`).
//! * **One account per mode.** Positions, the risk state and the daily summaries are kept per
//!   trading mode (`paper`, `shadow`, `live`), and so is the day's order count the throttle takes
//!   back: a run restores only what runs of its own mode recorded. One store can hold a paper
//!   account, a shadow account and the live one (and the gate's verdict) without a live engine
//!   ever taking over a simulated position, loss baseline or kill-switch latch. Orders, fills and
//!   runs stay in one history (each run's row names its mode).
//! * **One writer.** The writer holds an exclusive `flock` on the database file while it runs: a
//!   second `hft` on the same file refuses to start. Readers (`sqlite3`, reports) may read at any
//!   time; a reader never blocks the writer (WAL).
//!
//! The schema is in [`schema`]; how values are written, in [`codec`].

pub mod codec;
pub mod rows;
pub mod schema;
pub mod writer;

use crate::audit::OperatorAction;
use anyhow::{Context, bail};
use hft_engine::Restore;
use hft_shared::config::{Config, Mode, StoreSync};
use hft_shared::msg::Event;
use rows::State;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use writer::{Counters, Msg, Writer};

/// Records the writer's queue holds (about 9 MB at 136 bytes each): seconds of the engine's
/// busiest output.
pub const QUEUE: usize = 1 << 16;

/// The store's counters, for the API and the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct StoreStats {
    /// Records (events, operator actions) accepted into the writer's queue.
    pub queued: u64,
    /// Records committed to the database.
    pub committed: u64,
    /// `queued - committed`: accepted, not yet durable.
    pub lag: u64,
    /// Fills handed to the store.
    pub fills_queued: u64,
    /// Fills committed: acknowledged, durable.
    pub stored_fills: u64,
    /// `fills_queued - stored_fills`.
    pub fill_lag: u64,
    /// Transactions committed, the records in the last one, and commit times in µs.
    pub batches: u64,
    pub last_batch: u64,
    pub last_commit_us: u64,
    pub max_commit_us: u64,
    /// Failed commit attempts (each retried).
    pub write_errors: u64,
    /// Times an event found the queue full and stayed in the engine's ring.
    pub queue_full: u64,
    pub operator_actions_dropped: u64,
    /// Fills or position reports whose position disagrees with the replay of the stored fills.
    pub position_mismatches: u64,
    /// Updates or fills naming an order the store does not hold.
    pub unknown_orders: u64,
    /// Orders whose id the run had already stored.
    pub duplicate_orders: u64,
    /// The writer thread is running.
    pub writer_running: bool,
}

/// Handle on the store; cheap to clone (the bridge, the audit sink and `run` each hold one).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    tx: SyncSender<Msg>,
    counters: Arc<Counters>,
    path: PathBuf,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// When a full queue was last logged, ms after `opened` (+1; 0 = never): at most one warning
    /// per [`FULL_WARN_EVERY`].
    warned_full_ms: AtomicU64,
    /// A stopped writer was logged (once).
    warned_stopped: AtomicBool,
    opened: Instant,
}

/// A full queue is logged at most this often (it can be refused on every bridge tick).
const FULL_WARN_EVERY: Duration = Duration::from_secs(10);

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.inner.path).finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store `cfg.store` names, or `None` when it is disabled. Creates the database's
    /// directory and the database when missing. Returns the state the engine must start from.
    /// Every failure names the path and the config key.
    pub fn open(cfg: &Config) -> anyhow::Result<Option<(Store, Restore)>> {
        if !cfg.store.enabled {
            return Ok(None);
        }
        let path = PathBuf::from(&cfg.store.path);
        let opened = Self::open_at(&path, cfg.store.synchronous, &cfg.symbols, cfg.mode, QUEUE)
            .with_context(|| format!("cannot use the store at {} (store.path, HFT__STORE__PATH)", path.display()))?;
        Ok(Some(opened))
    }

    /// [`Store::open`] at `path` with a queue of `queue` records.
    pub fn open_at(
        path: &Path,
        sync: StoreSync,
        symbols: &[String],
        mode: Mode,
        queue: usize,
    ) -> anyhow::Result<(Store, Restore)> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create the directory {}", dir.display()))?;
        }
        let lock = lock(path)?;
        let conn = schema::open(path, sync)?;
        // The start of the run: its row's time, and the UTC day whose orders the throttle counts.
        let now_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        conn.execute(
            "INSERT INTO runs (started_ms, mode, version, symbols) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![
                codec::int(now_ns / 1_000_000),
                mode.as_str(),
                env!("CARGO_PKG_VERSION"),
                symbols.join(","),
            ],
        )
        .context("cannot write to the database")?;
        let run_id = conn.last_insert_rowid();
        let state = State::load(&conn, mode.as_str(), symbols).context("cannot read the stored state")?;
        let max_id: i64 = conn.query_row("SELECT COALESCE(MAX(id), 0) FROM orders", [], |r| r.get(0))?;
        let sent = orders_sent_since(&conn, now_ns / codec::DAY_NS * codec::DAY_NS, mode)
            .context("cannot read the day's orders")?;
        let restore = state.restore(u64::try_from(max_id).unwrap_or(0) + 1, sent);
        for (symbol, qty) in &state.foreign {
            tracing::warn!(
                %symbol,
                %qty,
                "the store holds an open position in a symbol this configuration does not trade: \
                 it is neither traded nor counted by the risk manager"
            );
        }
        let (tx, rx) = sync_channel(queue.max(1));
        let counters = Arc::new(Counters::default());
        // Running from here: `stats` must not report a writer that is about to start as stopped.
        counters.running.store(true, Ordering::Release);
        let writer = Writer { conn, state, rx, counters: counters.clone(), run_id, _lock: lock };
        let thread = std::thread::Builder::new()
            .name("hft-store".into())
            .spawn(move || writer.run())
            .context("cannot start the store's writer thread")?;
        let store = Store {
            inner: Arc::new(Inner {
                tx,
                counters,
                path: path.to_path_buf(),
                thread: Mutex::new(Some(thread)),
                warned_full_ms: AtomicU64::new(0),
                warned_stopped: AtomicBool::new(false),
                opened: Instant::now(),
            }),
        };
        Ok((store, restore))
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Does the store keep this event? (Audit events, position and risk snapshots.)
    pub const fn wants(ev: &Event) -> bool {
        matches!(
            ev,
            Event::Order(_)
                | Event::OrderUpdate(_)
                | Event::Fill(_)
                | Event::Reject(_)
                | Event::Risk(_)
                | Event::RiskState(_)
                | Event::Position(_)
        )
    }

    /// Hands `ev` to the writer without blocking. `true`: taken (or not wanted) — the caller
    /// may let it go. `false`: the queue is full or the writer has stopped — the caller must keep
    /// it (in the ring) and offer it again later.
    pub fn offer(&self, ev: &Event) -> bool {
        if !Self::wants(ev) {
            return true;
        }
        let c = &self.inner.counters;
        let fill = matches!(ev, Event::Fill(_));
        // Counted before the send, so `committed` never passes `queued`.
        c.queued.fetch_add(1, Ordering::AcqRel);
        if fill {
            c.fills_queued.fetch_add(1, Ordering::AcqRel);
        }
        match self.inner.tx.try_send(Msg::Event(*ev)) {
            Ok(()) => true,
            Err(e) => {
                c.queued.fetch_sub(1, Ordering::AcqRel);
                if fill {
                    c.fills_queued.fetch_sub(1, Ordering::AcqRel);
                }
                match e {
                    TrySendError::Full(_) => {
                        let refused = c.queue_full.fetch_add(1, Ordering::Relaxed) + 1;
                        let now = u64::try_from(self.inner.opened.elapsed().as_millis()).unwrap_or(u64::MAX) + 1;
                        let last = self.inner.warned_full_ms.load(Ordering::Relaxed);
                        let every = FULL_WARN_EVERY.as_millis() as u64;
                        if (last == 0 || now.saturating_sub(last) >= every)
                            && self
                                .inner
                                .warned_full_ms
                                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                                .is_ok()
                        {
                            tracing::warn!(
                                refused,
                                "store: the writer's queue is full; events wait in the engine's ring (it stops \
                                 opening risk if that fills)"
                            );
                        }
                    }
                    TrySendError::Disconnected(_) => {
                        if !self.inner.warned_stopped.swap(true, Ordering::Relaxed) {
                            tracing::error!(
                                "store: the writer has stopped; events are held in the engine's ring (it stops \
                                 opening risk when that fills)"
                            );
                        }
                    }
                }
                false
            }
        }
    }

    /// Queues an operator action for the audit trail; never blocks. When the queue is full it is
    /// dropped and counted (the [`crate::audit::Audit`] has logged it already).
    pub fn record_operator_action(&self, action: OperatorAction) {
        let c = &self.inner.counters;
        c.queued.fetch_add(1, Ordering::AcqRel);
        if self.inner.tx.try_send(Msg::Operator(action)).is_err() {
            c.queued.fetch_sub(1, Ordering::AcqRel);
            let n = c.actions_dropped.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(dropped = n, "store: operator action not stored (the writer's queue is full or stopped)");
        }
    }

    /// The counters now: among them `stored_fills` (acknowledged fills) and `lag` (records
    /// accepted, not yet durable), for the API.
    pub fn stats(&self) -> StoreStats {
        let c = &self.inner.counters;
        // Committed before queued: a record is counted queued before it can be committed, so
        // this order keeps `committed <= queued` in the snapshot.
        let committed = c.committed.load(Ordering::Acquire);
        let stored_fills = c.fills_stored.load(Ordering::Acquire);
        let queued = c.queued.load(Ordering::Acquire);
        let fills_queued = c.fills_queued.load(Ordering::Acquire);
        StoreStats {
            queued,
            committed,
            lag: queued.saturating_sub(committed),
            fills_queued,
            stored_fills,
            fill_lag: fills_queued.saturating_sub(stored_fills),
            batches: c.batches.load(Ordering::Relaxed),
            last_batch: c.last_batch.load(Ordering::Relaxed),
            last_commit_us: c.last_commit_us.load(Ordering::Relaxed),
            max_commit_us: c.max_commit_us.load(Ordering::Relaxed),
            write_errors: c.write_errors.load(Ordering::Relaxed),
            queue_full: c.queue_full.load(Ordering::Relaxed),
            operator_actions_dropped: c.actions_dropped.load(Ordering::Relaxed),
            position_mismatches: c.mismatches.load(Ordering::Relaxed),
            unknown_orders: c.unknown_orders.load(Ordering::Relaxed),
            duplicate_orders: c.duplicate_orders.load(Ordering::Relaxed),
            writer_running: c.running.load(Ordering::Acquire),
        }
    }

    /// Commits everything queued, marks the run as stopped cleanly and ends the writer, waiting
    /// at most `within`. Blocking (call it off the async workers). `true` when the writer ended
    /// in time; later calls return at once.
    pub fn close(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            match self.inner.tx.try_send(Msg::Shutdown) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => break,
                Err(TrySendError::Full(_)) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(TrySendError::Full(_)) => return false,
            }
        }
        let Some(thread) = self.inner.thread.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return true;
        };
        while !thread.is_finished() {
            if Instant::now() >= deadline {
                // Put it back: a later close may still wait for it.
                *self.inner.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(thread);
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if thread.join().is_err() {
            tracing::error!("store: the writer thread panicked");
        }
        true
    }
}

/// Send times of the orders that runs of `mode` sent at `since_ns` or later, oldest first (the
/// order-rate throttle's carry-over: the venue counts a live account's orders, never the
/// simulated ones; Binance's daily order limit keeps every day's count at most a few hundred
/// thousand). A time the column cannot hold as u64 (a negative one) is skipped.
pub fn orders_sent_since(conn: &rusqlite::Connection, since_ns: u64, mode: Mode) -> rusqlite::Result<Vec<u64>> {
    let mut stmt = conn.prepare(
        "SELECT o.created_ns FROM orders o JOIN runs r ON r.id = o.run_id \
         WHERE o.created_ns >= ?1 AND r.mode = ?2 ORDER BY o.created_ns, o.run_id, o.id",
    )?;
    let rows = stmt.query_map(rusqlite::params![codec::int(since_ns), mode.as_str()], |r| r.get::<_, i64>(0))?;
    let mut out = Vec::new();
    for t in rows {
        if let Ok(t) = u64::try_from(t?) {
            out.push(t);
        }
    }
    Ok(out)
}

/// Holds an exclusive advisory lock on the database file for as long as the returned file is
/// open: one writing process per database.
fn lock(path: &Path) -> anyhow::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .context("cannot open the database file for writing")?;
    // SAFETY: flock(2) takes a descriptor and flags only; `file` owns the descriptor and keeps it
    // open for the duration of the call (and of the lock).
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            bail!("another process is writing this database (is an hft already running on it?)");
        }
        return Err(err).context("cannot lock the database file");
    }
    Ok(file)
}

#[cfg(test)]
mod tests;
