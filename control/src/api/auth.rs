//! Bearer-token check for state-changing endpoints.
//!
//! Runs on the tokio runtime as a handler extractor. The supplied token is never logged, and the
//! comparison takes the same time wherever the first differing byte is.

use super::AppState;
use super::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

/// Proof that the request carried `Authorization: Bearer <token>`. Taking it as a handler
/// argument makes the handler token-only; it runs after routing, so 404/405 stay as they are.
#[derive(Debug, Clone, Copy)]
pub struct Authorized;

impl FromRequestParts<AppState> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            tracing::warn!(path = %parts.uri.path(), "refused: no bearer token");
            return Err(ApiError::Unauthorized("missing bearer token (Authorization: Bearer <token>)"));
        };
        let supplied = value.to_str().ok().and_then(bearer);
        if !supplied.is_some_and(|t| ct_eq(t.as_bytes(), state.token.as_bytes())) {
            tracing::warn!(path = %parts.uri.path(), "refused: invalid bearer token");
            return Err(ApiError::Unauthorized("invalid bearer token"));
        }
        Ok(Authorized)
    }
}

/// The credentials of a `Bearer` authorization value (scheme case-insensitive, RFC 9110).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Constant-time equality: runs over the longer input whatever the contents (only the lengths
/// leak through timing).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
        diff = std::hint::black_box(diff);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ct_eq_compares_contents_and_lengths() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
        assert!(!ct_eq(b"", b"a"));
        assert!(ct_eq(b"", b""));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer("Bearer tok"), Some("tok"));
        assert_eq!(bearer("bearer tok"), Some("tok"));
        assert_eq!(bearer("Basic tok"), None);
        assert_eq!(bearer("Bearertok"), None);
    }
}
