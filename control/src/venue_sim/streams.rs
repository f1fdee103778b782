//! Market-data WebSockets, as Binance serves them: `/stream?streams=a/b/c` (combined frames
//! `{"stream":…,"data":…}`) and `/ws/<stream>[/<stream>…]` or bare `/ws` (raw `data` objects),
//! plus the live `SUBSCRIBE` / `UNSUBSCRIBE` / `LIST_SUBSCRIPTIONS` requests on either.
//!
//! Each connection is one tokio task reading the broadcast timeline: frames of its
//! subscriptions are written in batches (one flush per batch), each traced frame stamped with
//! the time just before its first write (wire-to-wire measurement); faults arrive in the same queue,
//! so a client sees them exactly where the timeline put them. The server pings every
//! `--ping-interval-s`; client pings are answered by the WebSocket layer whenever the task reads
//! — which it does not during a stall. A client that falls a whole broadcast buffer behind is
//! disconnected (close code 1008), as Binance drops slow consumers.
//!
//! Allocates freely.

use super::wire::canonical_stream;
use super::{Event, Shared, StreamClient, bad_request, latency, not_websocket, ping_timer};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use futures_util::SinkExt;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

/// Streams one connection may hold (Binance's limit).
const MAX_STREAMS: usize = 1024;
/// Events written per flush.
const MAX_BATCH: usize = 256;
/// Largest message a client may send (subscription requests are small).
const MAX_REQUEST: usize = 64 * 1024;

/// What a connection's clients get from a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrap {
    /// `{"stream":…,"data":…}` (`/stream`).
    Combined,
    /// The bare `data` object (`/ws`).
    Raw,
}

/// A connection's subscriptions: canonical name → the name the client used.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Subscriptions(BTreeMap<String, String>);

impl Subscriptions {
    /// Adds `names`; on a bad name, nothing is added and the bad name is returned.
    fn add<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) -> Result<(), String> {
        let mut parsed = Vec::new();
        for n in names {
            parsed.push((canonical_stream(n).ok_or_else(|| n.to_owned())?, n.to_owned()));
        }
        let new = parsed.iter().filter(|(c, _)| !self.0.contains_key(c)).count();
        if self.0.len() + new > MAX_STREAMS {
            return Err(format!("more than {MAX_STREAMS} streams"));
        }
        self.0.extend(parsed);
        Ok(())
    }

    fn remove<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) {
        for n in names {
            if let Some(c) = canonical_stream(n) {
                self.0.remove(&c);
            }
        }
    }

    fn matches(&self, canonical: &str) -> bool {
        self.0.contains_key(canonical)
    }
}

#[derive(Deserialize)]
pub struct StreamsQuery {
    streams: Option<String>,
}

/// `GET /stream?streams=…` (WebSocket).
pub async fn combined(
    State(shared): State<Arc<Shared>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    q: Result<Query<StreamsQuery>, QueryRejection>,
) -> Response {
    let names = match q {
        Ok(Query(StreamsQuery { streams: Some(s) })) if !s.is_empty() => s,
        Ok(_) => return bad_request("`streams` is required: /stream?streams=<symbol>@<stream>/…".into()),
        Err(e) => return bad_request(format!("malformed query: {e}")),
    };
    upgrade(shared, ws, names.split('/'), Wrap::Combined)
}

/// `GET /ws/<stream>[/<stream>…]` (WebSocket).
pub async fn raw(
    State(shared): State<Arc<Shared>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let names = match path {
        Ok(Path(p)) => p,
        Err(e) => return bad_request(format!("malformed path: {e}")),
    };
    upgrade(shared, ws, names.split('/').filter(|s| !s.is_empty()), Wrap::Raw)
}

/// `GET /ws` (WebSocket): raw, streams added by `SUBSCRIBE`.
pub async fn raw_bare(
    State(shared): State<Arc<Shared>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    upgrade(shared, ws, std::iter::empty(), Wrap::Raw)
}

fn upgrade<'a>(
    shared: Arc<Shared>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    names: impl IntoIterator<Item = &'a str>,
    wrap: Wrap,
) -> Response {
    let mut subs = Subscriptions::default();
    if let Err(bad) = subs.add(names) {
        return bad_request(format!("invalid stream {bad:?}: expected <symbol>@<stream>, e.g. btcusdt@trade"));
    }
    match ws {
        Ok(ws) => ws.max_message_size(MAX_REQUEST).on_upgrade(move |socket| serve(socket, shared, subs, wrap)),
        Err(e) => not_websocket(e),
    }
}

enum Flow {
    Continue,
    Stop,
}

async fn serve(mut socket: WebSocket, shared: Arc<Shared>, mut subs: Subscriptions, wrap: Wrap) {
    // Subscribe before counting: a broadcaster waiting for this client must not send first.
    let mut rx = shared.events.subscribe();
    let _client = StreamClient::new(shared.clone());
    if let Some(until) = shared.stalled_until() {
        tokio::time::sleep_until(until.into()).await;
    }
    let mut ping = ping_timer(shared.ping_every);
    loop {
        let flow = tokio::select! {
            ev = rx.recv() => match ev {
                Ok(ev) => deliver(&mut socket, &mut rx, ev, &subs, wrap, &mut ping).await,
                Err(RecvError::Lagged(n)) => too_slow(&mut socket, n).await,
                Err(RecvError::Closed) => Flow::Stop,
            },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let reply = subscription_request(&mut subs, t.as_str());
                    match socket.send(Message::Text(reply.into())).await {
                        Ok(()) => Flow::Continue,
                        Err(_) => Flow::Stop,
                    }
                }
                Some(Ok(Message::Close(_))) => {
                    // The WebSocket layer answers the close; read until it is done.
                    let _ = tokio::time::timeout(Duration::from_secs(1), async { while socket.recv().await.is_some() {} }).await;
                    Flow::Stop
                }
                // Pings are answered by the WebSocket layer; pongs and binary are ignored.
                Some(Ok(_)) => Flow::Continue,
                None | Some(Err(_)) => Flow::Stop,
            },
            _ = ping.tick() => {
                if shared.stalled_until().is_some() || socket.send(Message::Ping(Default::default())).await.is_ok() {
                    Flow::Continue
                } else {
                    Flow::Stop
                }
            }
        };
        if let Flow::Stop = flow {
            return;
        }
    }
}

/// Writes `first` and whatever else is already queued (up to [`MAX_BATCH`]), then flushes.
async fn deliver(
    socket: &mut WebSocket,
    rx: &mut tokio::sync::broadcast::Receiver<Event>,
    first: Event,
    subs: &Subscriptions,
    wrap: Wrap,
    ping: &mut tokio::time::Interval,
) -> Flow {
    let mut ev = first;
    for n in 1.. {
        let msg = match ev {
            Event::Frame(f) if subs.matches(&f.stream) => {
                f.mark_sent(latency::now_ns);
                Some(match wrap {
                    Wrap::Combined => f.combined(),
                    Wrap::Raw => f.raw(),
                })
            }
            Event::Frame(_) => None,
            Event::Malformed(text) => Some(text),
            Event::Stall(d) => {
                if socket.flush().await.is_err() {
                    return Flow::Stop;
                }
                // Neither reads (so no pong) nor writes (so no ping) until the stall is over.
                tokio::time::sleep(d).await;
                ping.reset();
                None
            }
            Event::Drop => {
                // What was sent before the fault arrives; then the TCP connection closes
                // without a close frame (the socket is dropped).
                let _ = socket.flush().await;
                return Flow::Stop;
            }
            Event::Shutdown => {
                let close =
                    CloseFrame { code: close_code::AWAY, reason: Utf8Bytes::from_static("server shutting down") };
                let _ = socket.send(Message::Close(Some(close))).await;
                return Flow::Stop;
            }
        };
        if let Some(text) = msg
            && socket.feed(Message::Text(text)).await.is_err()
        {
            return Flow::Stop;
        }
        if n == MAX_BATCH {
            break;
        }
        ev = match rx.try_recv() {
            Ok(next) => next,
            Err(TryRecvError::Lagged(missed)) => return too_slow(socket, missed).await,
            Err(TryRecvError::Empty | TryRecvError::Closed) => break,
        };
    }
    match socket.flush().await {
        Ok(()) => Flow::Continue,
        Err(_) => Flow::Stop,
    }
}

async fn too_slow(socket: &mut WebSocket, missed: u64) -> Flow {
    tracing::warn!(missed, "a stream client fell behind the broadcast buffer; disconnecting it");
    let close = CloseFrame { code: close_code::POLICY, reason: Utf8Bytes::from_static("client too slow") };
    let _ = socket.send(Message::Close(Some(close))).await;
    Flow::Stop
}

#[derive(Deserialize)]
struct SubRequest {
    method: String,
    #[serde(default)]
    params: Value,
    #[serde(default)]
    id: Value,
}

/// Answers a live subscription request. Binance's shapes: `{"result":…,"id":…}`, errors
/// `{"code":2,"msg":"Invalid request: …","id":…}` (3 for invalid JSON).
fn subscription_request(subs: &mut Subscriptions, text: &str) -> String {
    let req: SubRequest = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(e) if e.is_syntax() || e.is_eof() => {
            return json!({"code": 3, "msg": format!("Invalid JSON: {e}"), "id": null}).to_string();
        }
        Err(e) => return json!({"code": 2, "msg": format!("Invalid request: {e}"), "id": null}).to_string(),
    };
    let id = req.id;
    let names = || -> Result<Vec<&str>, String> {
        req.params
            .as_array()
            .ok_or("params must be an array of stream names")?
            .iter()
            .map(|v| v.as_str().ok_or("params must be an array of stream names"))
            .collect::<Result<_, _>>()
            .map_err(str::to_owned)
    };
    let invalid = |msg: String| json!({"code": 2, "msg": format!("Invalid request: {msg}"), "id": id}).to_string();
    // Binance's field order.
    let ok = |result: Value| format!(r#"{{"result":{result},"id":{id}}}"#);
    match req.method.as_str() {
        "SUBSCRIBE" => match names().and_then(|n| subs.add(n).map_err(|bad| format!("invalid stream {bad:?}"))) {
            Ok(()) => ok(Value::Null),
            Err(msg) => invalid(msg),
        },
        "UNSUBSCRIBE" => match names() {
            Ok(n) => {
                subs.remove(n);
                ok(Value::Null)
            }
            Err(msg) => invalid(msg),
        },
        "LIST_SUBSCRIPTIONS" => ok(subs.0.values().map(|n| Value::from(n.as_str())).collect()),
        other => invalid(format!(
            "unknown variant `{other}`, expected one of `SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_match_canonical_names() {
        let mut s = Subscriptions::default();
        s.add(["BTCUSDT@depth", "btcusdt@trade"]).expect("valid");
        assert!(s.matches("btcusdt@depth@100ms") && s.matches("btcusdt@trade") && !s.matches("btcusdt@bookTicker"));
        assert_eq!(s.add(["ok@trade", "bad"]), Err("bad".into()));
        assert!(!s.matches("ok@trade"), "nothing is added from a list with a bad name");
        s.remove(["btcusdt@depth@100ms"]);
        assert!(!s.matches("btcusdt@depth@100ms"));
    }

    #[test]
    fn live_subscription_requests() {
        let mut s = Subscriptions::default();
        let r =
            subscription_request(&mut s, r#"{"method":"SUBSCRIBE","params":["btcusdt@depth","btcusdt@trade"],"id":1}"#);
        assert_eq!(r, r#"{"result":null,"id":1}"#);
        let r = subscription_request(&mut s, r#"{"method":"UNSUBSCRIBE","params":["btcusdt@trade"],"id":"x"}"#);
        assert_eq!(r, r#"{"result":null,"id":"x"}"#);
        let r = subscription_request(&mut s, r#"{"method":"LIST_SUBSCRIPTIONS","id":3}"#);
        assert_eq!(r, r#"{"result":["btcusdt@depth"],"id":3}"#);
        for (req, code) in [
            ("{", 3),
            (r#"{"method":"NOPE","id":4}"#, 2),
            (r#"{"method":"SUBSCRIBE","params":"x","id":5}"#, 2),
            (r#"{"method":"SUBSCRIBE","params":["no-at"],"id":6}"#, 2),
            (r#"{"params":[]}"#, 2),
        ] {
            let v: Value = serde_json::from_str(&subscription_request(&mut s, req)).expect("JSON");
            assert_eq!(v["code"], code, "{req}: {v}");
        }
    }
}
