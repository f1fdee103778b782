//! Operator actions as the API reports them, on their way to the durable audit trail.
//!
//! The API records every state-changing request (authorized or not) through an [`Audit`]; the
//! store's writer thread persists them. Recording never blocks a handler and never fails it: a
//! sink that cannot keep up drops and counts (and logs), the request goes on.

use std::sync::Arc;

/// One operator action: who asked for what, and what came of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorAction {
    /// Wall-clock time the request was answered, ms since the Unix epoch.
    pub at_ms: i64,
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Request path, e.g. `/trading/halt`.
    pub endpoint: String,
    /// HTTP status of the reply.
    pub status: u16,
    /// `applied`, `unchanged`, `unauthorized`, `bad_request`, … (the reply's `outcome` or error
    /// `code`).
    pub outcome: String,
    /// Peer address, when known.
    pub remote: Option<String>,
}

/// Where operator actions go. Cheap to clone; calling it must not block.
#[derive(Clone)]
pub struct Audit(Arc<dyn Fn(OperatorAction) + Send + Sync>);

impl Audit {
    pub fn new(sink: impl Fn(OperatorAction) + Send + Sync + 'static) -> Self {
        Self(Arc::new(sink))
    }

    /// Logs only (no durable store configured, and in unit tests).
    pub fn log_only() -> Self {
        Self::new(|_| {})
    }

    /// Records the action: always logged, then handed to the sink.
    pub fn record(&self, action: OperatorAction) {
        tracing::info!(
            target: "hft::audit",
            method = %action.method,
            endpoint = %action.endpoint,
            status = action.status,
            outcome = %action.outcome,
            remote = action.remote.as_deref().unwrap_or("-"),
            "operator action"
        );
        (self.0)(action);
    }
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Audit")
    }
}
