//! Messages that cross the SPSC rings: `Command` (control → engine) and `Event` (engine →
//! control). Both are `Copy`, fixed-size and heap-free; their sizes are asserted at compile time
//! so a careless field cannot silently bloat every ring slot.

pub mod command;
pub mod event;

pub use command::{CmdOutcome, Command, CommandKind};
pub use event::*;
