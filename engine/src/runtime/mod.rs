//! Starting the hot thread: rings, pinning, and the duty cycle
//! `loop { let work = engine.poll(); idle.idle(work) }`.
//!
//! `spawn` runs on the caller's thread and allocates (rings, books, histograms); the loop it
//! starts does not allocate after warm-up.

pub mod idle;

use crate::engine::Engine;
use crate::restore::Restore;
use hft_shared::config::{Config, Mode};
use hft_shared::msg::{Command, Event};
use idle::Idle;
use std::thread::JoinHandle;

/// The hot thread and the two ring ends the control plane owns.
pub struct Planes {
    pub engine: EngineHandle,
    /// Control → engine.
    pub commands: rtrb::Producer<Command>,
    /// Engine → control.
    pub events: rtrb::Consumer<Event>,
}

/// Start-up failures of the hot thread. Each names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot pin the hot thread to core {core} (engine.core): this machine has cores 0..{available}")]
    Pin { core: usize, available: usize },
    #[error("cannot pin the hot thread to core {core} (engine.core): no such core online, or outside the cpuset")]
    PinRefused { core: usize },
    #[error("mode `{0}` is not available in this build yet; use mode = \"paper\", \"shadow\" or \"live\"")]
    ModeUnavailable(Mode),
    #[error("engine set-up failed: {0}")]
    Setup(String),
    #[error("cannot start the hot thread: {0}")]
    Spawn(#[from] std::io::Error),
    #[error("the hot thread panicked")]
    Panicked,
}

/// Owner's handle on the hot thread.
#[derive(Debug)]
pub struct EngineHandle {
    thread: JoinHandle<()>,
}

impl EngineHandle {
    /// Has the duty cycle returned (after `Shutdown`, or a panic)?
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
    /// Waits for the hot thread to end.
    pub fn join(self) -> Result<(), EngineError> {
        self.thread.join().map_err(|_| EngineError::Panicked)
    }
}

/// Builds the engine for `cfg` on a new thread (pinned when `engine.core` is set) and starts
/// its duty cycle. Returns once the engine is built, or with the reason it could not be.
pub fn spawn(cfg: &Config) -> Result<Planes, EngineError> {
    spawn_with(cfg, Restore::default())
}

/// [`spawn`], with the state of a previous run (positions, breakers, kill-switch latch, order
/// ids) applied before the first duty cycle: the engine never trades without it.
pub fn spawn_with(cfg: &Config, restore: Restore) -> Result<Planes, EngineError> {
    if !matches!(cfg.mode, Mode::Paper | Mode::Shadow | Mode::Live) {
        return Err(EngineError::ModeUnavailable(cfg.mode));
    }
    let (cmd_tx, cmd_rx) = rtrb::RingBuffer::<Command>::new(cfg.engine.command_ring);
    let (ev_tx, ev_rx) = rtrb::RingBuffer::<Event>::new(cfg.engine.event_ring);
    let cfg = cfg.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<Result<(), EngineError>>(1);
    let thread = std::thread::Builder::new().name("hft-hot".into()).spawn(move || {
        if let Some(core) = cfg.engine.core
            && let Err(e) = pin(core)
        {
            let _ = ready_tx.send(Err(e));
            return;
        }
        let mut engine = match Engine::new(&cfg, cmd_rx, ev_tx) {
            Ok(e) => e,
            Err(e) => {
                let _ = ready_tx.send(Err(e));
                return;
            }
        };
        if let Err(e) = engine.restore(&restore) {
            let _ = ready_tx.send(Err(e));
            return;
        }
        drop(restore);
        let mut idle = Idle::from_config(&cfg.engine);
        let _ = ready_tx.send(Ok(()));
        drop(ready_tx);
        run(&mut engine, &mut idle);
    })?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(Planes { engine: EngineHandle { thread }, commands: cmd_tx, events: ev_rx }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(EngineError::Panicked)
        }
    }
}

/// The duty cycle. Returns when the engine has processed `Shutdown` and flushed its events.
pub fn run(engine: &mut Engine, idle: &mut Idle) {
    loop {
        let work = engine.poll();
        if engine.stopped() {
            break;
        }
        idle.idle(work);
    }
}

fn pin(core: usize) -> Result<(), EngineError> {
    // Not looked up in `core_affinity::get_core_ids()`, which lists only this thread's affinity
    // mask: a service's mask leaves the engine core out on purpose (systemd `CPUAffinity=`, and
    // isolcpus keeps isolated cores out of every default mask). The kernel refuses a core that
    // does not exist or is offline; `CPU_SET` addresses only cores below 1024.
    if core >= 1024 {
        return Err(EngineError::Pin {
            core,
            available: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        });
    }
    if core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
        Ok(())
    } else {
        Err(EngineError::PinRefused { core })
    }
}
