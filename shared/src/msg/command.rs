//! Commands from the control plane to the hot thread. Each carries a `seq` the engine echoes in
//! its `Event::Ack`, so an HTTP reply can report the state the engine acknowledged.

use crate::ids::{StrategyKind, SymbolId};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Command {
    /// Caller-chosen correlation id, echoed in `Event::Ack`.
    pub seq: u64,
    pub kind: CommandKind,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CommandKind {
    /// Stop opening new orders (manual halt; separate from the kill switch).
    Halt,
    /// Lift a manual halt. Does not re-arm a tripped kill switch.
    Resume,
    /// Send orders that bring every position to zero (always allowed: it reduces exposure).
    Flatten,
    Activate(StrategyKind),
    Deactivate(StrategyKind),
    /// New weight for a strategy's signal; finite and within the config's allowed range.
    SetWeight(StrategyKind, f64),
    /// Emit stats, positions and latency snapshots now.
    Snapshot,
    /// Emit every level of this symbol's book as `Event::Book` (then the ack).
    DumpBook(SymbolId),
    /// Clear the latency histograms.
    ResetLatency,
    /// Cancel every open order (all symbols). `Halt` does not cancel by itself; an operator
    /// halts, then cancels, or flattens.
    CancelAll,
    /// Re-arm a tripped kill switch (the only way to clear it). The drawdown peak and the day's
    /// loss baseline restart from the current equity. `Unchanged` when not tripped.
    Rearm,
    /// Stop the duty cycle after flushing events.
    Shutdown,
}

/// How the engine answered a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmdOutcome {
    Applied,
    /// Valid, but the state already was what was asked (e.g. halt while halted).
    Unchanged,
    /// The strategy named is not configured in this engine.
    UnknownStrategy,
    /// The value is outside its allowed range.
    InvalidValue,
    /// Understood, but this engine does not implement it (yet).
    Unsupported,
}

const _: () = assert!(core::mem::size_of::<Command>() <= 32);
