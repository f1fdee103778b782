//! The hot thread: decode → book → strategy → risk → exec, in one duty cycle.
//!
//! The control plane sees this crate only through [`spawn`], which starts the hot thread and
//! returns the two ends of the rings ([`spawn_with`] also carries state over a restart).
//! Nothing here depends on tokio or axum.

pub mod book;
pub mod clock;
pub mod engine;
pub mod events;
pub mod exec;
pub mod feed;
pub mod restore;
pub mod risk;
pub mod runtime;
pub mod strategy;
pub mod telemetry;

pub use engine::Engine;
pub use restore::Restore;
pub use runtime::{EngineError, EngineHandle, Planes, spawn, spawn_with};
