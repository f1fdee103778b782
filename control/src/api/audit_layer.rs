//! The audit middleware: every state-changing request (any method but GET, HEAD and OPTIONS,
//! whatever its route and outcome: 2xx, 401, 400, 404, 405, 413, 503, …) produces exactly one
//! [`OperatorAction`] on the [`Audit`](crate::audit::Audit) sink.
//!
//! Runs on the tokio runtime as the router's outermost layer, so it sees the final response
//! (JSON errors included). The request is handled in its own task: a client that hangs up
//! mid-request cannot cancel the record of a command that may already have reached the engine,
//! and a panicking handler is answered 500 and recorded too. Allocates per request. Records
//! the method, the path (never the query or headers, so never the token), the status, the
//! outcome and the peer address when the server provides it (`ConnectInfo<SocketAddr>`).

use super::AppState;
use super::error::{ApiError, Outcome, status_code};
use crate::audit::OperatorAction;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::time::{SystemTime, UNIX_EPOCH};

/// Longest path recorded, bytes (a longer one is cut, marked with `…`).
pub const MAX_ENDPOINT: usize = 256;

/// Does this request change (or try to change) state?
pub fn is_state_changing(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

pub async fn record(State(app): State<AppState>, req: Request, next: Next) -> Response {
    if !is_state_changing(req.method()) {
        return next.run(req).await;
    }
    let method = req.method().to_string();
    let endpoint = bounded(req.uri().path());
    let (mut parts, body) = req.into_parts();
    // Present when the server runs with connect info (or a test mocks it).
    let remote = ConnectInfo::<SocketAddr>::from_request_parts(&mut parts, &()).await.ok().map(|c| c.0.to_string());
    let req = Request::from_parts(parts, body);
    let audit = app.audit.clone();
    let task = tokio::spawn(async move {
        let res = match AssertUnwindSafe(next.run(req)).catch_unwind().await {
            Ok(res) => res,
            Err(_) => {
                tracing::error!(%method, %endpoint, "handler panicked");
                ApiError::Status(StatusCode::INTERNAL_SERVER_ERROR).into_response()
            }
        };
        let status = res.status();
        let outcome = res.extensions().get::<Outcome>().map_or_else(|| fallback(status), |o| o.0);
        audit.record(OperatorAction {
            at_ms: now_ms(),
            method,
            endpoint,
            status: status.as_u16(),
            outcome: outcome.to_string(),
            remote,
        });
        res
    });
    task.await.unwrap_or_else(|e| {
        // Unreachable in practice (panics are caught above, the runtime is not shutting down
        // while it serves): answer rather than hang.
        tracing::error!("audited request task failed: {e}");
        ApiError::Status(StatusCode::INTERNAL_SERVER_ERROR).into_response()
    })
}

/// A response without an [`Outcome`]: `ok` for a success, else its status's error code.
fn fallback(status: StatusCode) -> &'static str {
    if status.is_success() { "ok" } else { status_code(status) }
}

fn bounded(path: &str) -> String {
    if path.len() <= MAX_ENDPOINT {
        return path.to_string();
    }
    let mut end = MAX_ENDPOINT;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &path[..end])
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_paths_are_cut_on_a_char_boundary() {
        assert_eq!(bounded("/trading/halt"), "/trading/halt");
        let long = format!("/{}", "é".repeat(200));
        let cut = bounded(&long);
        assert!(cut.ends_with('…') && cut.len() <= MAX_ENDPOINT + '…'.len_utf8(), "{cut}");
    }

    #[test]
    fn safe_methods_are_not_audited() {
        for m in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert!(!is_state_changing(&m), "{m}");
        }
        for m in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH, Method::TRACE] {
            assert!(is_state_changing(&m), "{m}");
        }
    }
}
