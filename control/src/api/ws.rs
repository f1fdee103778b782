//! `GET /ws`: a WebSocket that pushes the API's views as they change.
//!
//! Contract (the dashboard is written against it): on connect, and then every [`PERIOD`] for
//! each topic whose JSON changed, the server sends a text message
//! `{"type": "<topic>", "data": <exactly the body GET /<topic> would return>}` for the topics
//! in [`TOPICS`] (`orders` and `fills` as `GET /orders?limit=50` and `GET /fills?limit=50`).
//! Client messages are read and ignored (a Close is honoured).
//!
//! Runs on the tokio runtime: one task per connection, reading the replica under its read lock
//! only while copying the views (serialization happens after the lock is released), and
//! allocating per push. Nothing waits on a client: at most [`MAX_CLIENTS`] connect at once (more
//! get 503 JSON), a client whose send stalls for [`SEND_STALL`] is dropped, and when the server
//! stops (its router is dropped) every connection is sent a Close (1001, going away) and ends.

use super::AppState;
use super::error::ApiError;
use super::handlers::{self, Health, Positions, Stats};
use super::orders::{FillsPage, ListQuery, OrdersPage};
use crate::state::{self, SharedReplica};
use axum::Extension;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::{IntoResponse, Response};
use futures_util::SinkExt;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::time::{MissedTickBehavior, timeout};

/// Most simultaneous clients.
pub const MAX_CLIENTS: usize = 64;
/// Push period.
pub const PERIOD: Duration = Duration::from_millis(500);
/// A send that does not complete within this drops the client.
pub const SEND_STALL: Duration = Duration::from_secs(3);
/// Rows of `orders` and `fills` pushed.
pub const LIST_ROWS: usize = 50;
/// The topics, in push order.
pub const TOPICS: [&str; 8] = ["stats", "health", "positions", "orders", "fills", "risk", "latency", "strategies"];
/// Largest client message read (they are ignored anyway).
const MAX_CLIENT_MESSAGE: usize = 4096;
/// Time given to a closing handshake.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// What the connections share: the client count and the server's lifetime. Owned by the
/// router; when the router is dropped (the server has stopped), `stop` is dropped and every
/// connection sees it.
#[derive(Debug)]
pub struct Hub {
    clients: Arc<AtomicUsize>,
    max: usize,
    period: Duration,
    stall: Duration,
    stop: watch::Sender<()>,
}

impl Hub {
    /// At most `max` clients, pushed every [`PERIOD`], dropped after a [`SEND_STALL`].
    pub fn new(max: usize) -> Arc<Self> {
        Self::with_timing(max, PERIOD, SEND_STALL)
    }

    /// [`Hub::new`] with another push period and stall limit (tests).
    pub fn with_timing(max: usize, period: Duration, stall: Duration) -> Arc<Self> {
        Arc::new(Hub { clients: Arc::new(AtomicUsize::new(0)), max, period, stall, stop: watch::channel(()).0 })
    }

    /// Clients connected now.
    pub fn clients(&self) -> usize {
        self.clients.load(Ordering::Relaxed)
    }

    /// A client slot, unless all are taken.
    fn join(&self) -> Option<Slot> {
        self.clients
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.max).then_some(n + 1))
            .ok()
            .map(|_| Slot(self.clients.clone()))
    }
}

/// One taken client slot, given back on drop.
#[derive(Debug)]
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// `GET /ws`.
pub async fn upgrade(
    State(app): State<AppState>,
    Extension(hub): Extension<Arc<Hub>>,
    ws: WebSocketUpgrade,
) -> Response {
    let Some(slot) = hub.join() else {
        tracing::warn!(max = hub.max, "WebSocket client refused: every slot is taken");
        return ApiError::TooManyClients(hub.max).into_response();
    };
    let conn = Conn { replica: app.replica.clone(), stop: hub.stop.subscribe(), period: hub.period, stall: hub.stall };
    // A failed upgrade drops the closure, and with it the slot.
    ws.max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| conn.serve(socket, slot))
}

/// The views as `GET` serves them, copied under one read lock.
struct Views {
    stats: Stats,
    health: Health,
    positions: Positions,
    orders: OrdersPage,
    fills: FillsPage,
    risk: handlers::RiskJson,
    latency: handlers::LatencyJson,
    strategies: handlers::StrategiesJson,
}

impl Views {
    fn take(replica: &SharedReplica) -> Self {
        let r = state::read(replica);
        let now = Instant::now();
        let rows = ListQuery::first(LIST_ROWS);
        Views {
            stats: Stats::from_replica(&r, now),
            health: Health::from_replica(&r, now),
            positions: Positions::from_replica(&r),
            orders: OrdersPage::from_replica(&r, &rows),
            fills: FillsPage::from_replica(&r, &rows),
            risk: handlers::RiskJson::from_replica(&r),
            latency: handlers::latency_from_replica(&r),
            strategies: handlers::strategies_from_replica(&r),
        }
    }

    /// Each topic's body as JSON, in [`TOPICS`] order.
    fn to_json(&self) -> [String; TOPICS.len()] {
        fn json(v: &impl Serialize) -> String {
            // Plain data with string keys and finite floats: cannot fail.
            serde_json::to_string(v).unwrap_or_else(|_| "null".into())
        }
        [
            json(&self.stats),
            json(&self.health),
            json(&self.positions),
            json(&self.orders),
            json(&self.fills),
            json(&self.risk),
            json(&self.latency),
            json(&self.strategies),
        ]
    }
}

/// The messages for the topics whose JSON differs from what was last sent; remembers them.
fn changed(replica: &SharedReplica, last: &mut [String; TOPICS.len()]) -> Vec<String> {
    let now = Views::take(replica).to_json();
    let mut out = Vec::new();
    for ((topic, body), prev) in TOPICS.iter().zip(now).zip(last.iter_mut()) {
        if body != *prev {
            out.push(format!(r#"{{"type":"{topic}","data":{body}}}"#));
            *prev = body;
        }
    }
    out
}

/// What one connection's task holds (never the router: see [`Hub`]).
struct Conn {
    replica: SharedReplica,
    stop: watch::Receiver<()>,
    period: Duration,
    stall: Duration,
}

impl Conn {
    async fn serve(mut self, mut socket: WebSocket, _slot: Slot) {
        let mut last: [String; TOPICS.len()] = Default::default();
        let mut tick = tokio::time::interval(self.period);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    for msg in changed(&self.replica, &mut last) {
                        match timeout(self.stall, socket.send(Message::text(msg))).await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => {
                                tracing::debug!("WebSocket client gone: {e}");
                                return;
                            }
                            Err(_) => {
                                tracing::warn!(stall_ms = self.stall.as_millis(), "WebSocket client dropped: a send stalled");
                                return;
                            }
                        }
                    }
                }
                msg = socket.recv() => match msg {
                    Some(Ok(Message::Close(_))) => {
                        // The reply Close is queued by the protocol layer; flush it and end.
                        let _ = timeout(CLOSE_WAIT, socket.close()).await;
                        return;
                    }
                    Some(Ok(_)) => {}
                    None | Some(Err(_)) => return,
                },
                res = self.stop.changed() => {
                    if res.is_err() {
                        let frame = CloseFrame { code: close_code::AWAY, reason: "server stopping".into() };
                        let _ = timeout(CLOSE_WAIT, socket.send(Message::Close(Some(frame)))).await;
                        return;
                    }
                }
            }
        }
    }
}
