//! `GET /performance?modes=paper,shadow`: the backtest's metrics (PnL, Sharpe, Sortino, Calmar,
//! drawdown, win rate, profit factor, …) over the fills the durable store holds for runs in those
//! modes (default: the current mode).
//!
//! Runs on tokio's blocking pool: SQLite reads of a few thousand rows, never under the replica's
//! lock. 503 when the store is disabled or not there yet; 400 for an unknown mode.

use super::AppState;
use super::error::ApiError;
use crate::backtest::store::{Stored, performance as stored_performance};
use crate::state;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use hft_shared::config::Mode;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Comma-separated modes: `paper`, `shadow`, `live`.
    modes: Option<String>,
}

fn parse_modes(text: &str) -> Result<Vec<Mode>, ApiError> {
    text.split(',')
        .map(|m| match m.trim().to_ascii_lowercase().as_str() {
            "paper" => Ok(Mode::Paper),
            "shadow" => Ok(Mode::Shadow),
            "live" => Ok(Mode::Live),
            other => Err(ApiError::BadRequest(format!("unknown mode {other:?} (paper, shadow, live)"))),
        })
        .collect()
}

pub async fn performance(State(app): State<AppState>, Query(p): Query<Params>) -> Result<Json<Stored>, ApiError> {
    let (path, mode, capital) = {
        let r = state::read(&app.replica);
        (r.store_path.clone(), r.mode, r.capital.total)
    };
    let modes = match p.modes.as_deref() {
        Some(text) => parse_modes(text)?,
        None => vec![mode],
    };
    let Some(path) = path else { return Err(ApiError::Status(StatusCode::SERVICE_UNAVAILABLE)) };
    let answer = tokio::task::spawn_blocking(move || stored_performance(&path, &modes, capital)).await;
    match answer {
        Ok(Ok(stored)) => Ok(Json(stored)),
        Ok(Err(e)) => {
            tracing::warn!("GET /performance: {e:#}");
            Err(ApiError::Status(StatusCode::SERVICE_UNAVAILABLE))
        }
        Err(_) => Err(ApiError::Status(StatusCode::INTERNAL_SERVER_ERROR)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_unknown_ones_are_refused() {
        assert_eq!(parse_modes("paper, Shadow").ok(), Some(vec![Mode::Paper, Mode::Shadow]));
        assert!(parse_modes("paper,backtest").is_err());
        assert!(parse_modes("").is_err());
    }
}
