//! HTTP errors of the control API: every error is JSON `{"code": "...", "message": "..."}` with
//! a stable machine `code` and a human `message`.
//!
//! Runs on the tokio runtime inside request handling; allocates per error response.

use crate::bridge::BridgeError;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hft_shared::StrategyKind;
use hft_shared::msg::CmdOutcome;
use serde::Serialize;

/// An error reply. `code` strings are part of the API: do not rename them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// Missing or wrong bearer token on a state-changing call.
    Unauthorized(&'static str),
    /// No such route.
    NotFound,
    /// The engine did not take or answer the command (ring full, timeout, thread gone).
    EngineUnavailable(BridgeError),
    /// The engine understood the command and refused it.
    Refused(CmdOutcome),
    /// A request naming a symbol the engine does not trade.
    UnknownSymbol(String),
    /// A request naming no strategy kind (refused before any command is sent).
    UnknownStrategy(String),
    /// A request body that does not parse as what the endpoint takes; the parser's reason.
    BadRequest(String),
    /// The engine answered, but part of the answer was dropped (a full event ring): retry.
    Incomplete,
    /// Every WebSocket slot is taken (the bound on simultaneous clients).
    TooManyClients(usize),
    /// Any other HTTP-level failure (405, 413, 400 from the framework, …).
    Status(StatusCode),
}

#[derive(Serialize)]
struct Body {
    code: &'static str,
    message: String,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::EngineUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Refused(CmdOutcome::UnknownStrategy) => StatusCode::NOT_FOUND,
            ApiError::Refused(CmdOutcome::InvalidValue) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Refused(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::UnknownSymbol(_) => StatusCode::NOT_FOUND,
            ApiError::UnknownStrategy(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Incomplete => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooManyClients(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Status(s) => *s,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::NotFound => "not_found",
            ApiError::EngineUnavailable(_) => "engine_unavailable",
            ApiError::Refused(CmdOutcome::UnknownStrategy) => "unknown_strategy",
            ApiError::Refused(CmdOutcome::InvalidValue) => "invalid_value",
            ApiError::Refused(_) => "unsupported",
            ApiError::UnknownSymbol(_) => "unknown_symbol",
            ApiError::UnknownStrategy(_) => "unknown_strategy",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Incomplete => "incomplete",
            ApiError::TooManyClients(_) => "too_many_clients",
            ApiError::Status(s) => status_code(*s),
        }
    }

    pub fn message(&self) -> String {
        match self {
            ApiError::Unauthorized(why) => (*why).to_string(),
            ApiError::NotFound => "no such endpoint".to_string(),
            ApiError::EngineUnavailable(e) => e.to_string(),
            ApiError::Refused(CmdOutcome::UnknownStrategy) => "the strategy is not configured".into(),
            ApiError::Refused(CmdOutcome::InvalidValue) => "the value is out of its allowed range".into(),
            ApiError::Refused(_) => "the engine does not support this command".into(),
            ApiError::UnknownSymbol(s) => format!("symbol {s:?} is not configured"),
            ApiError::UnknownStrategy(s) => {
                format!("no strategy {s:?}; one of: {}", StrategyKind::ALL.map(StrategyKind::name).join(", "))
            }
            ApiError::BadRequest(why) => why.clone(),
            ApiError::Incomplete => "part of the engine's answer was dropped under load; retry".into(),
            ApiError::TooManyClients(n) => format!("{n} WebSocket clients are connected already; retry later"),
            ApiError::Status(StatusCode::METHOD_NOT_ALLOWED) => {
                "method not allowed on this endpoint (see the Allow header)".into()
            }
            ApiError::Status(StatusCode::PAYLOAD_TOO_LARGE) => {
                format!("request body larger than {} bytes", super::BODY_LIMIT)
            }
            ApiError::Status(s) => s.canonical_reason().unwrap_or("error").to_ascii_lowercase(),
        }
    }
}

impl From<BridgeError> for ApiError {
    fn from(e: BridgeError) -> Self {
        ApiError::EngineUnavailable(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body { code: self.code(), message: self.message() };
        let mut res = (self.status(), Json(body)).into_response();
        res.extensions_mut().insert(Outcome(self.code()));
        res
    }
}

/// What a reply reports as its outcome (a command's `outcome`, an error's `code`), attached to
/// the response for the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome(pub &'static str);

/// The error `code` of a bare status.
pub fn status_code(s: StatusCode) -> &'static str {
    match s {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UPGRADE_REQUIRED => "upgrade_required",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_server_error() => "internal",
        _ => "error",
    }
}

/// Outermost response mapper: an error response that is not JSON yet (axum's bare 405, the
/// body-limit layer's plain-text 413, extractor rejections) gets the JSON error body. Other
/// headers (e.g. `Allow`) are kept.
pub async fn json_errors(res: Response) -> Response {
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let (mut parts, _) = res.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let mut out = ApiError::Status(status).into_response();
    out.headers_mut().extend(parts.headers);
    out
}
