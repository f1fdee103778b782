//! `GET /dashboard`: the operator's page, one self-contained HTML file compiled into the binary
//! (no CDN: the host may be offline). Live over `/ws`, polling the REST endpoints as fallback.

use axum::http::header;
use axum::response::IntoResponse;

const PAGE: &str = include_str!("dashboard.html");

pub async fn page() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], PAGE)
}
