//! Market-data sources and decoders. Sources hand the duty cycle raw frames (bytes exactly as a
//! venue would send them) so every mode runs the same decode path.

pub mod decode;
pub mod record;
pub mod replay;
pub mod source;
pub mod synthetic;
pub mod ws;

pub use source::{FrameKind, Source, SyntheticSource};
