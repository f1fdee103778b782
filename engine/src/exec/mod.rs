//! Execution: the last stage of the pipeline.
//!
//! * [`orders`]: the order lifecycle — a fixed-capacity table of the engine's orders, their
//!   client order ids, the legal state transitions, order history and execution statistics.
//! * [`sim`]: the fill model of paper, shadow and backtest modes — a simulated venue with
//!   order-entry and acknowledgement latency, book-walking taker fills, queue position for
//!   resting orders, maker/taker fees. The book is not modified by simulated fills.
//! * [`live`]: live mode — Binance's WebSocket API from the hot thread: HMAC-SHA256 signed
//!   requests written into preallocated buffers, responses and user-data execution reports,
//!   rate limits, reconnection with reconciliation.
//!
//! Hot thread; no allocation after construction (reports are delivered through callbacks and
//! events).

pub mod live;
pub mod orders;
pub mod sim;
