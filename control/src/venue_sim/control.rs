//! The operator's side of the simulator: `GET /control/status`, `GET /control/latency` (the
//! wire-to-wire percentiles), the fault triggers `POST /control/{drop,gap,malformed,stall?ms=D}`,
//! and `POST /control/withdraw?asset=A&qty=Q`, which takes funds out of the account.
//! No token: the simulator is a test fixture that binds to loopback unless told otherwise.
//!
//! Runs on the tokio runtime; allocates freely.

use super::{Shared, bad_request};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Longest stall one request may ask for, ms.
pub const MAX_STALL_MS: u64 = 600_000;

/// `GET /control/status`.
pub async fn status(State(shared): State<Arc<Shared>>) -> Json<Value> {
    // The account, as exact decimals: `{asset: {"free", "locked"}}`.
    let balances: serde_json::Map<String, Value> = shared
        .venue()
        .balances()
        .map(|(asset, free, locked)| {
            (
                asset.to_owned(),
                serde_json::json!({ "free": super::wire::dec8(free), "locked": super::wire::dec8(locked) }),
            )
        })
        .collect();
    let st = &shared.stats;
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let mut last = Map::new();
    let mut snap = Map::new();
    for s in shared.books().status() {
        last.insert(s.symbol.clone(), s.last_diff.map_or(Value::Null, Value::from));
        snap.insert(s.symbol, s.book_id.map_or(Value::Null, Value::from));
    }
    Json(json!({
        "source": shared.source,
        "frames": n(&st.frames),
        "clients": *shared.stream_clients.borrow(),
        "api_clients": shared.api_clients.load(Ordering::Relaxed),
        "faults": {
            "drop": n(&st.faults.drop),
            "gap": n(&st.faults.gap),
            "malformed": n(&st.faults.malformed),
            "stall": n(&st.faults.stall),
        },
        "armed": { "gap": n(&st.armed_gap), "malformed": n(&st.armed_malformed) },
        "stalled": shared.stalled_until().is_some(),
        "ended": st.ended.load(Ordering::Relaxed),
        "loops": n(&st.loops),
        "skipped_lines": n(&st.skipped_lines),
        "last_update_id": last,
        "snapshot_update_id": snap,
        "open_orders": shared.venue().open_orders(None).count(),
        "balances": balances,
    }))
}

/// `GET /control/latency`: wire-to-wire latency of the orders traced to a frame sent (frame
/// written → `order.place` received), ns: `{"count","p50","p90","p99","p99.9","max","untraced"}`.
pub async fn latency(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(shared.latency.lock().summary().to_json())
}

/// `POST /control/drop`: every connection (streams and WS-API) closes now, without a close
/// frame. Stream clients first receive what was broadcast before.
pub async fn drop_all(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let clients = *shared.stream_clients.borrow() + shared.api_clients.load(Ordering::Relaxed);
    shared.drop_all();
    Json(json!({"ok": true, "fault": "drop", "clients": clients}))
}

/// `POST /control/gap`: the next depth diff (any symbol) is applied to the server book but not
/// sent. Each call arms one more.
pub async fn gap(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let armed = shared.arm_gap();
    Json(json!({"ok": true, "fault": "gap", "armed": armed}))
}

/// `POST /control/malformed`: a truncated copy of the next frame is sent before it.
pub async fn malformed(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let armed = shared.arm_malformed();
    Json(json!({"ok": true, "fault": "malformed", "armed": armed}))
}

#[derive(Deserialize)]
pub struct StallQuery {
    ms: Option<u64>,
}

/// `POST /control/stall?ms=D`: nothing is sent and no ping answered for D ms, from now.
pub async fn stall(State(shared): State<Arc<Shared>>, q: Result<Query<StallQuery>, QueryRejection>) -> Response {
    let ms = match q {
        Ok(Query(StallQuery { ms: Some(ms) })) if (1..=MAX_STALL_MS).contains(&ms) => ms,
        Ok(_) | Err(_) => return bad_request(format!("`ms` must be an integer of milliseconds in 1..={MAX_STALL_MS}")),
    };
    shared.stall(Duration::from_millis(ms));
    Json(json!({"ok": true, "fault": "stall", "ms": ms})).into_response()
}

#[derive(Deserialize)]
pub struct WithdrawQuery {
    asset: Option<String>,
    qty: Option<String>,
}

/// `POST /control/withdraw?asset=A&qty=Q`: `Q` (a decimal > 0) of asset `A` leaves the account's
/// free balance, as a withdrawal would; subscribers get the new balance. 400 when the free
/// balance is short of it, or for a missing or bad parameter.
pub async fn withdraw(State(shared): State<Arc<Shared>>, q: Result<Query<WithdrawQuery>, QueryRejection>) -> Response {
    let usage = "`asset` (e.g. BTC) and `qty` (a decimal > 0, e.g. 0.005) are required";
    let Ok(Query(WithdrawQuery { asset: Some(asset), qty: Some(qty) })) = q else {
        return bad_request(usage.to_string());
    };
    let amount = match hft_shared::Qty::parse(&qty) {
        Ok(q) if q.raw() > 0 && !asset.is_empty() => q,
        _ => return bad_request(usage.to_string()),
    };
    if !shared.venue().withdraw(&asset, i128::from(amount.raw()), super::api::now_ms()) {
        return bad_request(format!("the free {asset} balance is short of {qty}"));
    }
    Json(json!({"ok": true, "asset": asset, "qty": super::wire::dec8(i128::from(amount.raw()))})).into_response()
}
