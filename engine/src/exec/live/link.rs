//! The gateway's one WebSocket connection and its life cycle around the feed's [`Socket`]:
//! open → (error, close, silence, age, or the gateway's say-so) → backoff → again.
//!
//! Differences from the feed's links: the gateway, not the link, decides when a connection is
//! good enough to reset the backoff (a venue that accepts the socket but refuses the
//! subscription must still be retried slowly), and a lost connection is reported once, from
//! `poll`.
//!
//! Hot thread; every step is non-blocking and bounded (at most one socket read and one write
//! per poll). Allocation: only while setting a connection up (resolver thread for host names,
//! TLS session, request text).

use crate::feed::ws::DisconnectReason;
use crate::feed::ws::backoff::Backoff;
use crate::feed::ws::codec::{Loc, Reader};
use crate::feed::ws::conn::WsUrl;
use crate::feed::ws::socket::{Socket, Step, Timers, Traffic};
use std::sync::Arc;

/// What one poll produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Polled {
    Nothing,
    /// The upgrade completed.
    Opened,
    /// A complete text message, in [`Link::reader`] until the next poll.
    Text(Loc),
    /// The connection (or the attempt) ended; the next attempt is scheduled.
    Lost {
        was_open: bool,
        reason: DisconnectReason,
        retry_in_ms: u64,
    },
}

/// Link-level counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkCounters {
    pub traffic: Traffic,
    /// Connection losses and failed attempts, by [`DisconnectReason::index`].
    pub errors: [u64; DisconnectReason::COUNT],
}

pub(super) struct Link {
    socket: Socket,
    backoff: Backoff,
    /// A loss found outside `poll` (a failed write), reported by the next `poll`.
    lost: Option<Polled>,
    pub counters: LinkCounters,
}

impl core::fmt::Debug for Link {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Link").field("socket", &self.socket).finish_non_exhaustive()
    }
}

impl Link {
    pub fn new(
        url: WsUrl,
        tls: Option<Arc<rustls::ClientConfig>>,
        max_message: usize,
        write_capacity: usize,
        backoff: Backoff,
        seed: u64,
    ) -> Self {
        Self {
            socket: Socket::new(url, tls, max_message, write_capacity, seed, false),
            backoff,
            lost: None,
            counters: LinkCounters::default(),
        }
    }

    #[inline]
    pub fn is_open(&self) -> bool {
        self.socket.is_open()
    }

    /// What the last [`Polled::Text`] points into.
    #[inline]
    pub fn reader(&self) -> &Reader {
        &self.socket.reader
    }

    /// The connection proved good: the next failure backs off from the start.
    pub fn reset_backoff(&mut self) {
        self.backoff.reset();
    }

    /// Drives the link one step.
    #[inline]
    pub fn poll(&mut self, now: u64, t: &Timers) -> Polled {
        if let Some(l) = self.lost.take() {
            return l;
        }
        match self.socket.poll(now, t, &mut self.counters.traffic) {
            Ok(Step::Nothing) => Polled::Nothing,
            Ok(Step::Opened) => Polled::Opened,
            Ok(Step::Text(loc)) => Polled::Text(loc),
            Err(reason) => self.fail(reason, now),
        }
    }

    /// Queues a text message on an open link and writes it now. `false`: not open, or the send
    /// queue is full (nothing queued). A write error drops the connection; the next `poll`
    /// reports it (the message counts as sent: its fate is unknown).
    #[inline]
    pub fn send_text(&mut self, payload: &[u8], now: u64) -> bool {
        match self.socket.send_text(payload) {
            Ok(sent) => sent,
            Err(r) => {
                let lost = self.fail(r, now);
                self.lost = Some(lost);
                true
            }
        }
    }

    /// Drops the connection (saying goodbye when it makes sense) and schedules the next
    /// attempt: at once for [`DisconnectReason::Planned`], else after the next backoff delay.
    pub fn fail(&mut self, reason: DisconnectReason, now: u64) -> Polled {
        self.counters.errors[reason.index()] += 1;
        let was_open = self.socket.shut(reason);
        let delay_ms = if reason == DisconnectReason::Planned { 0 } else { self.backoff.next_delay().1 };
        self.socket.retry_at(now.saturating_add(delay_ms.saturating_mul(1_000_000)));
        Polled::Lost { was_open, reason, retry_in_ms: delay_ms }
    }

    /// The gateway gives up on an open connection (the venue refused the subscription, an
    /// answer is overdue): close 1000, then reconnect after the next backoff delay.
    pub fn drop_open(&mut self, now: u64) {
        self.lost = None;
        // `Planned` says goodbye with 1000; the delay is the backoff's all the same.
        self.socket.shut(DisconnectReason::Planned);
        let delay_ms = self.backoff.next_delay().1;
        self.socket.retry_at(now.saturating_add(delay_ms.saturating_mul(1_000_000)));
    }
}
