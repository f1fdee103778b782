//! The bridge: the only code touching the rings to the hot thread.
//!
//! One task on the tokio runtime owns the `Producer<Command>` and the `Consumer<Event>`. Every
//! tick (~1 ms) it drains every event into the [`Replica`](crate::state::Replica) and completes
//! the waiters of acknowledged commands. API handlers reach it through a cloneable [`Bridge`]
//! (a tokio mpsc of requests, each with a oneshot for the reply). Allocates freely; never blocks
//! the runtime (ring operations are wait-free).
//!
//! With a durable [`Store`], every event it keeps is offered to it (without blocking) before the
//! event leaves the ring: an event the store cannot take yet stays in the ring, and so does
//! everything after it, until the next tick. Nothing the store wants is lost on the way; a store
//! that stays behind fills the ring, and the engine's back-pressure then stops new risk.

use crate::state::{self, SharedReplica};
use crate::store::Store;
use hft_shared::msg::{Command, CommandAck, CommandKind, Event};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

/// How long a command waits for its `Ack` before the caller gets [`BridgeError::Timeout`].
pub const ACK_TIMEOUT: Duration = Duration::from_secs(2);
/// The store's counters are copied into the replica every this many drain ticks (~100 ms).
const STORE_STATS_TICKS: u32 = 100;
/// Period of the drain loop.
pub const TICK: Duration = Duration::from_millis(1);
/// Events applied per write-lock hold, so readers are never starved by a full ring.
const DRAIN_BATCH: usize = 4096;
/// Requests queued from handlers to the bridge task.
const REQUEST_QUEUE: usize = 256;

/// Why a command got no acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BridgeError {
    #[error("the command ring is full")]
    RingFull,
    #[error("the engine did not acknowledge within {} ms", ACK_TIMEOUT.as_millis())]
    Timeout,
    #[error("the engine thread has stopped")]
    EngineStopped,
    #[error("the bridge task has stopped")]
    Closed,
}

enum Request {
    Command {
        kind: CommandKind,
        reply: oneshot::Sender<Result<CommandAck, BridgeError>>,
    },
    /// Drain the event ring now and report whether it is empty (the store may hold some back).
    Flush {
        reply: oneshot::Sender<bool>,
    },
}

/// Handle on the bridge task; cheap to clone, one per handler.
#[derive(Clone, Debug)]
pub struct Bridge {
    tx: mpsc::Sender<Request>,
    ack_timeout: Duration,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Command { kind, .. } => write!(f, "Command({kind:?})"),
            Request::Flush { .. } => f.write_str("Flush"),
        }
    }
}

impl Bridge {
    /// Spawns the bridge task on the current runtime, without a store (tests). The task ends
    /// when every [`Bridge`] handle is dropped, dropping the ring ends (which the engine sees as
    /// abandoned).
    #[cfg(test)]
    pub fn start(
        commands: rtrb::Producer<Command>,
        events: rtrb::Consumer<Event>,
        replica: SharedReplica,
    ) -> (Bridge, JoinHandle<()>) {
        Self::start_with_timeout(commands, events, replica, ACK_TIMEOUT)
    }

    /// [`Bridge::start`] with a custom acknowledgement timeout (tests).
    #[cfg(test)]
    pub fn start_with_timeout(
        commands: rtrb::Producer<Command>,
        events: rtrb::Consumer<Event>,
        replica: SharedReplica,
        ack_timeout: Duration,
    ) -> (Bridge, JoinHandle<()>) {
        Self::spawn(commands, events, replica, None, ack_timeout)
    }

    /// Spawns the bridge task on the current runtime, handing the events `store` keeps to it
    /// (see the module docs). The task ends when every [`Bridge`] handle is dropped, dropping the
    /// ring ends (which the engine sees as abandoned).
    pub fn start_with_store(
        commands: rtrb::Producer<Command>,
        events: rtrb::Consumer<Event>,
        replica: SharedReplica,
        store: Option<Store>,
    ) -> (Bridge, JoinHandle<()>) {
        Self::spawn(commands, events, replica, store, ACK_TIMEOUT)
    }

    fn spawn(
        commands: rtrb::Producer<Command>,
        events: rtrb::Consumer<Event>,
        replica: SharedReplica,
        store: Option<Store>,
        ack_timeout: Duration,
    ) -> (Bridge, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(REQUEST_QUEUE);
        let task = Task { commands, events, replica, store, rx, next_seq: 1, pending: HashMap::new() };
        (Bridge { tx, ack_timeout }, tokio::spawn(task.run()))
    }

    /// Sends `kind` to the engine and waits for its acknowledgement.
    pub async fn command(&self, kind: CommandKind) -> Result<CommandAck, BridgeError> {
        let (reply, rx) = oneshot::channel();
        let exchange = async {
            self.tx.send(Request::Command { kind, reply }).await.map_err(|_| BridgeError::Closed)?;
            rx.await.map_err(|_| BridgeError::Closed)?
        };
        // Dropping `rx` on timeout lets the task forget the waiter; a late ack is ignored.
        tokio::time::timeout(self.ack_timeout, exchange).await.map_err(|_| BridgeError::Timeout)?
    }

    /// Drains every event currently in the ring into the replica (and the store). When the
    /// store holds events back, retries each tick for up to the acknowledgement timeout, then
    /// gives up with [`BridgeError::Timeout`].
    pub async fn flush(&self) -> Result<(), BridgeError> {
        let deadline = tokio::time::Instant::now() + self.ack_timeout;
        loop {
            let (reply, rx) = oneshot::channel();
            self.tx.send(Request::Flush { reply }).await.map_err(|_| BridgeError::Closed)?;
            if rx.await.map_err(|_| BridgeError::Closed)? {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(BridgeError::Timeout);
            }
            tokio::time::sleep(TICK).await;
        }
    }
}

struct Task {
    commands: rtrb::Producer<Command>,
    events: rtrb::Consumer<Event>,
    replica: SharedReplica,
    /// Takes each event it keeps before the event leaves the ring.
    store: Option<Store>,
    rx: mpsc::Receiver<Request>,
    next_seq: u64,
    pending: HashMap<u64, oneshot::Sender<Result<CommandAck, BridgeError>>>,
}

impl Task {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut ticks = 0u32;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    self.drain();
                    ticks = ticks.wrapping_add(1);
                    if ticks.is_multiple_of(STORE_STATS_TICKS) && let Some(store) = &self.store {
                        let stats = store.stats();
                        state::write(&self.replica).store = Some(stats);
                    }
                    // Waiters whose caller timed out are forgotten.
                    self.pending.retain(|_, w| !w.is_closed());
                }
                req = self.rx.recv() => match req {
                    Some(Request::Command { kind, reply }) => self.send(kind, reply),
                    Some(Request::Flush { reply }) => {
                        let empty = self.drain();
                        let _ = reply.send(empty);
                    }
                    None => break,
                },
            }
        }
        self.drain();
    }

    fn send(&mut self, kind: CommandKind, reply: oneshot::Sender<Result<CommandAck, BridgeError>>) {
        // An abandoned ring means the hot thread is gone: say so now rather than time out.
        if self.commands.is_abandoned() {
            let _ = reply.send(Err(BridgeError::EngineStopped));
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        match self.commands.push(Command { seq, kind }) {
            Ok(()) => {
                tracing::debug!(seq, ?kind, "command sent");
                self.pending.insert(seq, reply);
            }
            Err(_) => {
                tracing::warn!(?kind, "command ring full");
                let _ = reply.send(Err(BridgeError::RingFull));
            }
        }
    }

    /// Applies every queued event, in ring order, completing ack waiters as their `Ack`
    /// is applied: everything the engine emitted before an ack is in the replica by then.
    /// Returns false when the store held events back (they stay in the ring, in order).
    fn drain(&mut self) -> bool {
        loop {
            let n = self.events.slots();
            if n == 0 {
                return true;
            }
            let now = Instant::now();
            let mut r = state::write(&self.replica);
            for _ in 0..n.min(DRAIN_BATCH) {
                let Ok(&ev) = self.events.peek() else { break };
                if let Some(store) = &self.store
                    && !store.offer(&ev)
                {
                    return false;
                }
                let _ = self.events.pop();
                r.apply(&ev, now);
                if let Event::Ack(ack) = ev {
                    match self.pending.remove(&ack.seq) {
                        Some(w) => {
                            let _ = w.send(Ok(ack));
                        }
                        None => tracing::debug!(seq = ack.seq, "ack without a waiter (timed out?)"),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! A fake hot thread on real rtrb rings: acknowledges commands after emitting scripted
    //! events. Sleeps 200 µs per idle cycle (never spins) and exits on `Shutdown` or when the
    //! control plane drops its ring ends.

    use crate::state::fixtures;
    use hft_shared::msg::{CmdOutcome, Command, CommandKind, EngineState, Event, KillCause, RiskEventKind};
    use std::thread::JoinHandle;
    use std::time::Duration;

    /// What the fake engine does with each command.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Script {
        /// Emit `orders_before_ack` orders, then the ack. Halt, strategy activity and the kill
        /// switch are tracked (momentum starts active), as the engine does; every strategy is
        /// configured; state changes emit their risk event before the ack.
        Ack { orders_before_ack: u64 },
        /// As `Ack { orders_before_ack: 0 }`, starting with the kill switch tripped.
        Tripped(KillCause),
        /// Read commands but never answer.
        Mute,
        /// Never read the command ring.
        Deaf,
    }

    pub struct FakeEngine {
        pub thread: JoinHandle<Vec<Command>>,
    }

    pub fn start(script: Script, ring: usize) -> (rtrb::Producer<Command>, rtrb::Consumer<Event>, FakeEngine) {
        let (cmd_tx, mut cmd_rx) = rtrb::RingBuffer::<Command>::new(ring);
        let (mut ev_tx, ev_rx) = rtrb::RingBuffer::<Event>::new(1024);
        let thread = std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut halted = false;
            let mut active: u8 = 1;
            let mut kill = match script {
                Script::Tripped(cause) => Some(cause),
                _ => None,
            };
            let mut next_order = 1;
            loop {
                if cmd_rx.is_abandoned() && (script == Script::Deaf || cmd_rx.is_empty()) {
                    return seen;
                }
                let cmd = if script == Script::Deaf { None } else { cmd_rx.pop().ok() };
                let Some(cmd) = cmd else {
                    std::thread::sleep(Duration::from_micros(200));
                    continue;
                };
                seen.push(cmd);
                let orders_before_ack = match script {
                    Script::Ack { orders_before_ack } => orders_before_ack,
                    Script::Tripped(_) => 0,
                    Script::Mute | Script::Deaf => continue,
                };
                for _ in 0..orders_before_ack {
                    let _ = ev_tx.push(fixtures::order(next_order));
                    next_order += 1;
                }
                let outcome = match cmd.kind {
                    CommandKind::Halt if halted => CmdOutcome::Unchanged,
                    CommandKind::Halt => {
                        halted = true;
                        CmdOutcome::Applied
                    }
                    CommandKind::Resume if !halted => CmdOutcome::Unchanged,
                    CommandKind::Resume => {
                        halted = false;
                        CmdOutcome::Applied
                    }
                    CommandKind::Activate(k) | CommandKind::Deactivate(k) => {
                        let on = matches!(cmd.kind, CommandKind::Activate(_));
                        let bit = 1u8 << k.index();
                        if (active & bit != 0) == on {
                            CmdOutcome::Unchanged
                        } else {
                            active ^= bit;
                            let ev = if on {
                                RiskEventKind::StrategyActivated(k)
                            } else {
                                RiskEventKind::StrategyDeactivated(k)
                            };
                            let _ = ev_tx.push(fixtures::risk_event(ev, 0));
                            CmdOutcome::Applied
                        }
                    }
                    CommandKind::SetWeight(k, w) if w.is_finite() && (0.0..=10.0).contains(&w) => {
                        let _ = ev_tx.push(fixtures::risk_event(RiskEventKind::WeightChanged(k), (w * 1e6) as i64));
                        CmdOutcome::Applied
                    }
                    CommandKind::SetWeight(..) => CmdOutcome::InvalidValue,
                    CommandKind::Flatten => {
                        let _ = ev_tx.push(fixtures::risk_event(RiskEventKind::FlattenRequested, 0));
                        CmdOutcome::Applied
                    }
                    CommandKind::Rearm if kill.is_none() => CmdOutcome::Unchanged,
                    CommandKind::Rearm => {
                        kill = None;
                        let _ = ev_tx.push(fixtures::risk_event(RiskEventKind::Rearmed, 0));
                        CmdOutcome::Applied
                    }
                    CommandKind::ResetLatency => CmdOutcome::Applied,
                    CommandKind::Shutdown => CmdOutcome::Applied,
                    _ => CmdOutcome::Unsupported,
                };
                let state = EngineState { halted, backpressure: false, active_strategies: active, kill_switch: kill };
                let _ = ev_tx.push(fixtures::ack_with(cmd.seq, outcome, state));
                if cmd.kind == CommandKind::Shutdown {
                    return seen;
                }
            }
        });
        (cmd_tx, ev_rx, FakeEngine { thread })
    }
}

#[cfg(test)]
mod tests {
    use super::fake::{self, Script};
    use super::*;
    use crate::state::Replica;
    use hft_shared::config::Config;
    use hft_shared::msg::CmdOutcome;

    fn replica() -> SharedReplica {
        let cfg = Config::from_toml_str("", &|_| None).expect("config");
        Replica::new(&cfg, Instant::now()).shared()
    }

    #[tokio::test]
    async fn acks_are_matched_to_commands_by_seq() {
        let (p, c, eng) = fake::start(Script::Ack { orders_before_ack: 0 }, 64);
        let (bridge, _task) = Bridge::start(p, c, replica());
        let (a, b) = tokio::join!(bridge.command(CommandKind::Halt), bridge.command(CommandKind::Snapshot));
        let (a, b) = (a.expect("halt acked"), b.expect("snapshot acked"));
        assert_ne!(a.seq, b.seq);
        assert_eq!(a.outcome, CmdOutcome::Applied);
        assert_eq!(b.outcome, CmdOutcome::Unsupported);
        let c = bridge.command(CommandKind::Halt).await.expect("second halt acked");
        assert_eq!(c.outcome, CmdOutcome::Unchanged);
        bridge.command(CommandKind::Shutdown).await.expect("shutdown acked");
        let seen = eng.thread.join().expect("fake engine");
        let seqs: Vec<u64> = seen.iter().map(|c| c.seq).collect();
        assert_eq!(seqs.len(), 4);
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "fresh, increasing seqs: {seqs:?}");
    }

    #[tokio::test]
    async fn halt_reply_carries_the_acked_state() {
        let (p, c, _eng) = fake::start(Script::Ack { orders_before_ack: 0 }, 64);
        let r = replica();
        let (bridge, _task) = Bridge::start(p, c, r.clone());
        let ack = bridge.command(CommandKind::Halt).await.expect("acked");
        assert!(ack.state.halted);
        assert!(state::read(&r).state.halted, "replica follows the ack");
        let ack = bridge.command(CommandKind::Resume).await.expect("acked");
        assert!(!ack.state.halted);
        assert_eq!(ack.outcome, CmdOutcome::Applied);
    }

    #[tokio::test]
    async fn orders_emitted_before_the_ack_are_counted_when_the_command_returns() {
        let (p, c, _eng) = fake::start(Script::Ack { orders_before_ack: 300 }, 64);
        let r = replica();
        let (bridge, _task) = Bridge::start(p, c, r.clone());
        bridge.command(CommandKind::Halt).await.expect("acked");
        assert_eq!(state::read(&r).orders, 300);
        bridge.command(CommandKind::Halt).await.expect("acked");
        assert_eq!(state::read(&r).orders, 600);
    }

    #[tokio::test]
    async fn a_command_without_ack_times_out() {
        let (p, c, _eng) = fake::start(Script::Mute, 64);
        let (bridge, _task) = Bridge::start_with_timeout(p, c, replica(), Duration::from_millis(100));
        let t0 = Instant::now();
        assert_eq!(bridge.command(CommandKind::Halt).await, Err(BridgeError::Timeout));
        assert!(t0.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn a_full_command_ring_is_an_error() {
        let (p, c, _eng) = fake::start(Script::Deaf, 1);
        let (bridge, _task) = Bridge::start_with_timeout(p, c, replica(), Duration::from_millis(100));
        assert_eq!(bridge.command(CommandKind::Halt).await, Err(BridgeError::Timeout), "first fills the ring");
        assert_eq!(bridge.command(CommandKind::Halt).await, Err(BridgeError::RingFull));
    }

    #[tokio::test]
    async fn a_stopped_engine_is_reported_at_once() {
        let (p, c, eng) = fake::start(Script::Ack { orders_before_ack: 0 }, 64);
        let (bridge, _task) = Bridge::start(p, c, replica());
        bridge.command(CommandKind::Shutdown).await.expect("acked");
        eng.thread.join().expect("fake engine");
        assert_eq!(bridge.command(CommandKind::Halt).await, Err(BridgeError::EngineStopped));
    }

    /// The store's queue is full (its writer is stuck on a locked database): the events it has
    /// not taken stay in the ring, in order, and the replica sees only what went past; once the
    /// lock goes, everything lands in both, nothing lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_the_store_cannot_take_yet_stay_in_the_ring_and_none_is_lost() {
        use hft_shared::config::{Mode, StoreSync};
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("s.sqlite");
        let (store, _) = Store::open_at(&path, StoreSync::Normal, &["BTCUSDT".into()], Mode::Paper, 4).expect("store");
        let blocker = rusqlite::Connection::open(&path).expect("blocker");
        blocker.execute_batch("BEGIN IMMEDIATE").expect("write lock");

        let (p, c) = rtrb::RingBuffer::<Command>::new(16);
        drop(c);
        let (mut ev_tx, ev_rx) = rtrb::RingBuffer::<Event>::new(64);
        let r = replica();
        let (bridge, _task) = Bridge::spawn(p, ev_rx, r.clone(), Some(store.clone()), Duration::from_millis(300));
        for id in 1..=50 {
            ev_tx.push(state::fixtures::order(id)).expect("room");
        }
        assert_eq!(bridge.flush().await, Err(BridgeError::Timeout), "the store holds events back");
        let taken = state::read(&r).orders;
        assert!(taken < 50, "the store cannot have taken everything: {taken}");
        assert_eq!(64 - ev_tx.slots() as u64, 50 - taken, "the rest is still in the ring");

        blocker.execute_batch("COMMIT").expect("release");
        let t0 = Instant::now();
        while bridge.flush().await.is_err() {
            assert!(t0.elapsed() < Duration::from_secs(20), "the store never caught up");
        }
        assert_eq!(state::read(&r).orders, 50);
        let s = store.clone();
        assert!(tokio::task::spawn_blocking(move || s.close(Duration::from_secs(10))).await.expect("close"));
        let db = rusqlite::Connection::open(&path).expect("read");
        let (n, lo, hi): (i64, i64, i64) = db
            .query_row("SELECT count(*), min(id), max(id) FROM orders", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("orders");
        assert_eq!((n, lo, hi), (50, 1, 50));
        assert!(store.stats().queue_full > 0);
    }

    #[tokio::test]
    async fn flush_drains_everything_left_in_the_ring() {
        let (p, c) = rtrb::RingBuffer::<Command>::new(16);
        let (mut ev_tx, ev_rx) = rtrb::RingBuffer::<Event>::new(64);
        drop(c);
        let r = replica();
        let (bridge, _task) = Bridge::start(p, ev_rx, r.clone());
        for id in 1..=50 {
            ev_tx.push(state::fixtures::order(id)).expect("room");
        }
        bridge.flush().await.expect("flushed");
        assert_eq!(state::read(&r).orders, 50);
    }
}
