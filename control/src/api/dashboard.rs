//! `GET /dashboard`: the operator's page, one self-contained HTML file compiled into the binary
//! (no CDN, no external font: the host may be offline). Live over `/ws`, polling the REST
//! endpoints every 2 s as fallback; commands carry the API token the operator gives the page
//! (`#token=…` in the address, or the page's token field), kept in the tab's sessionStorage.
//!
//! Runs on the tokio runtime; serves a `&'static str` (no allocation per request beyond the
//! response headers).

use axum::http::header;
use axum::response::IntoResponse;

const PAGE: &str = include_str!("dashboard.html");

/// The page may run only its own inline code and talk only to this origin (REST and `/ws`), may
/// not be framed (its buttons halt and flatten) and sends no referrer.
const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        PAGE,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn page_loads_nothing_from_elsewhere() {
        let lower = PAGE.to_ascii_lowercase();
        for needle in ["src=", "href=", "<link", "@import", "url(", "@font-face", "//cdn", "http://", "https://"] {
            assert!(!lower.contains(needle), "the page must be self-contained, found {needle:?}");
        }
    }

    #[test]
    fn page_has_the_ids_operators_and_tests_rely_on() {
        for id in [
            "mode",
            "feed",
            "venue",
            "conn",
            "halted",
            "kill-switch",
            "frames",
            "orders-count",
            "fills-count",
            "btn-halt",
            "btn-resume",
            "btn-flatten",
            "btn-rearm",
            "btn-latency-reset",
            "cmd-status",
            "token",
            "btn-token-save",
            "equity-chart",
            "risk-bars",
            "latency",
            "strategies",
            "positions",
            "orders",
            "fills",
            "page-error",
        ] {
            assert!(PAGE.contains(&format!("id=\"{id}\"")), "no element #{id}");
        }
    }

    #[test]
    fn page_never_renders_server_data_as_html() {
        assert!(!PAGE.contains("innerHTML") && !PAGE.contains("outerHTML") && !PAGE.contains("insertAdjacentHTML"));
        assert!(!PAGE.contains("document.write") && !PAGE.contains("eval("));
    }

    #[tokio::test]
    async fn served_as_html_with_a_strict_policy() {
        let res = page().await.into_response();
        assert_eq!(res.status(), StatusCode::OK);
        let h = res.headers();
        assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        let csp = h[header::CONTENT_SECURITY_POLICY].to_str().expect("ascii");
        assert!(csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        let body = axum::body::to_bytes(res.into_body(), 1 << 20).await.expect("body");
        assert_eq!(body, PAGE.as_bytes());
    }
}
