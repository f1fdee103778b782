//! Types that cross the rings between the hot thread and the control plane, fixed-point money,
//! and the configuration schema. Depends on nothing of ours.

pub mod config;
pub mod ids;
pub mod msg;
pub mod px;

pub use ids::{OrderId, OrderKind, Side, StrategyKind, SymbolId, TimeInForce};
pub use px::{Amount, Px, Qty};
