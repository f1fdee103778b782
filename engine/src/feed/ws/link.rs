//! One of the feed's WebSocket connections (the stream, the WS-API) and its life cycle around
//! a [`Socket`]: open → (error, close, silence or age) → notices → backoff → again, or idle
//! until woken for an on-demand link.
//!
//! Hot thread; every step is non-blocking and bounded (see [`Socket`]). Allocation: only while
//! setting a connection up.

use super::backoff::Backoff;
use super::codec::Loc;
use super::conn::WsUrl;
use super::socket::{Socket, Step, Timers};
use super::{DisconnectReason, FeedNotice, LinkKind, WsCounters};
use std::collections::VecDeque;
use std::sync::Arc;

/// Timers shared by both links, ns.
#[derive(Clone, Copy, Debug)]
pub(super) struct Timing {
    /// No stream message for this long: the feed is stale.
    pub stale_ns: u64,
    pub socket: Timers,
}

/// Where notices and counters go (owned by the feed, lent to each link's poll).
#[derive(Debug)]
pub(super) struct Sink {
    pub notices: VecDeque<FeedNotice>,
    pub counters: WsCounters,
}

impl Sink {
    /// Notices kept before the oldest are dropped (the consumer is expected to drain them every
    /// duty cycle; dropping is counted).
    pub const NOTICE_CAPACITY: usize = 256;

    pub fn new() -> Self {
        Self { notices: VecDeque::with_capacity(Self::NOTICE_CAPACITY), counters: WsCounters::default() }
    }

    /// Queues a notice without ever growing the queue.
    pub fn push(&mut self, n: FeedNotice) {
        if self.notices.len() == Self::NOTICE_CAPACITY {
            self.notices.pop_front();
            self.counters.notices_dropped += 1;
        }
        self.notices.push_back(n);
    }
}

pub(super) struct Link {
    pub kind: LinkKind,
    pub socket: Socket,
    backoff: Backoff,
    /// Messages delivered on the current connection.
    pub delivered: u64,
    /// Reconnect after a failure (else go idle). The stream link always is; the WS-API link
    /// is while it has requests to send or answers to wait for.
    pub persistent: bool,
    /// Connections lost so far (so the owner can notice a drop).
    pub drops: u64,
}

impl core::fmt::Debug for Link {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Link").field("kind", &self.kind).field("socket", &self.socket).finish_non_exhaustive()
    }
}

impl Link {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kind: LinkKind,
        url: WsUrl,
        tls: Option<Arc<rustls::ClientConfig>>,
        max_message: usize,
        write_capacity: usize,
        backoff: Backoff,
        seed: u64,
        on_demand: bool,
    ) -> Self {
        Self {
            kind,
            socket: Socket::new(url, tls, max_message, write_capacity, seed, on_demand),
            backoff,
            delivered: 0,
            persistent: !on_demand,
            drops: 0,
        }
    }

    #[inline]
    pub fn is_open(&self) -> bool {
        self.socket.is_open()
    }

    #[inline]
    pub fn is_idle(&self) -> bool {
        self.socket.is_idle()
    }

    /// Starts connecting now if the link is idle.
    pub fn wake(&mut self, now: u64) {
        self.socket.wake(now);
    }

    /// Drives the link one step; returns a complete text message when one is ready. The
    /// message's bytes stay valid in the socket's reader until the next call.
    #[inline]
    pub fn poll(&mut self, now: u64, t: &Timing, sink: &mut Sink) -> Option<Loc> {
        match self.socket.poll(now, &t.socket, &mut sink.counters.traffic) {
            Ok(Step::Nothing) => None,
            Ok(Step::Opened) => {
                self.delivered = 0;
                sink.push(FeedNotice::Connected { link: self.kind });
                None
            }
            Ok(Step::Text(loc)) => {
                if self.delivered == 0 {
                    // The connection works: the next failure backs off from the start.
                    self.backoff.reset();
                }
                self.delivered += 1;
                Some(loc)
            }
            Err(reason) => {
                self.fail(reason, now, sink);
                None
            }
        }
    }

    /// Queues a text message on an open link and writes it now. `false`: not open, or the
    /// queue is full (try again later); a write error fails the link.
    pub fn send_text(&mut self, payload: &[u8], now: u64, sink: &mut Sink) -> bool {
        match self.socket.send_text(payload) {
            Ok(sent) => sent,
            Err(r) => {
                self.fail(r, now, sink);
                true
            }
        }
    }

    /// Drops the connection (saying goodbye when it makes sense) and schedules the next one.
    pub fn fail(&mut self, reason: DisconnectReason, now: u64, sink: &mut Sink) {
        sink.counters.errors[reason.index()] += 1;
        if let DisconnectReason::Protocol(kind) = reason {
            sink.counters.protocol_errors[kind.index()] += 1;
            sink.push(FeedNotice::ProtocolError { link: self.kind, kind });
        }
        let was_open = self.socket.shut(reason);
        self.drops += 1;
        sink.push(if was_open {
            FeedNotice::Disconnected { link: self.kind, reason }
        } else {
            FeedNotice::ConnectFailed { link: self.kind, reason }
        });
        if !self.persistent {
            return;
        }
        let (attempt, delay_ms) = if reason == DisconnectReason::Planned { (0, 0) } else { self.backoff.next_delay() };
        self.socket.retry_at(now.saturating_add(delay_ms.saturating_mul(1_000_000)));
        sink.counters.reconnects += 1;
        sink.push(FeedNotice::Reconnecting { link: self.kind, attempt, delay_ms });
    }
}
