//! The gateway's one WebSocket connection and its life cycle: resolve → TCP connect → TLS →
//! upgrade → open → (error, close, silence, age, or the gateway's say-so) → backoff → again.
//!
//! Built from the feed's public blocks (the [`conn`] transport and handshake,
//! [`crate::feed::ws::codec`] framing, [`crate::feed::ws::backoff`]); the life cycle mirrors the
//! feed's private `feed::ws::link`, which this module cannot reach. Differences: the gateway,
//! not the link, decides when a connection is good enough to reset the backoff (a venue that
//! accepts the socket but refuses the subscription must still be retried slowly), and a lost
//! connection is reported once, from `poll`.
//!
//! Hot thread; every step is non-blocking and bounded (at most one socket read and one write
//! per poll). Allocation: only while setting a connection up (resolver thread for host names,
//! TLS session, request text).

use crate::feed::ws::backoff::{Backoff, XorShift};
use crate::feed::ws::codec::{Event, Loc, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, Reader, Writer};
use crate::feed::ws::conn::{self, Got, Transport, WsUrl};
use crate::feed::ws::{DisconnectReason, ProtocolError};
use mio::net::TcpStream;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Timers, ns.
#[derive(Clone, Copy, Debug)]
pub(super) struct Timing {
    pub dead_ns: u64,
    pub ping_ns: u64,
    pub max_conn_ns: u64,
    pub connect_timeout_ns: u64,
}

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
    pub connects: u64,
    pub bytes: u64,
    pub pings_received: u64,
    pub pongs_sent: u64,
    pub pings_sent: u64,
    pub pongs_received: u64,
    /// Round trip of our last answered ping, ns.
    pub rtt_ns: u64,
    pub binary_ignored: u64,
    /// Connection losses and failed attempts, by [`DisconnectReason::index`].
    pub errors: [u64; DisconnectReason::COUNT],
}

type Resolution = std::io::Result<Vec<SocketAddr>>;

enum Phase {
    Down { retry_at: u64 },
    Resolving(JoinHandle<Resolution>),
    Connecting,
    Tls,
    Upgrading,
    Open { since: u64 },
}

pub(super) struct Link {
    url: WsUrl,
    tls: Option<Arc<rustls::ClientConfig>>,
    phase: Phase,
    transport: Option<Transport>,
    addrs: Vec<SocketAddr>,
    next_addr: usize,
    deadline: u64,
    accept: String,
    pub reader: Reader,
    writer: Writer,
    backoff: Backoff,
    rng: XorShift,
    last_rx: u64,
    next_ping: u64,
    /// A loss found outside `poll` (a failed write), reported by the next `poll`.
    lost: Option<Polled>,
    pub counters: LinkCounters,
}

impl core::fmt::Debug for Link {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let phase = match self.phase {
            Phase::Down { .. } => "down",
            Phase::Resolving(_) => "resolving",
            Phase::Connecting => "connecting",
            Phase::Tls => "tls",
            Phase::Upgrading => "upgrading",
            Phase::Open { .. } => "open",
        };
        f.debug_struct("Link")
            .field("url", &self.url)
            .field("phase", &phase)
            .field("reader", &self.reader)
            .field("writer", &self.writer)
            .finish_non_exhaustive()
    }
}

/// The close code we send when dropping an open connection for `reason`.
fn close_code(reason: DisconnectReason) -> Option<u16> {
    match reason {
        DisconnectReason::PeerClosed { code } => Some(code),
        DisconnectReason::Planned => Some(1000),
        DisconnectReason::Dead => Some(1001),
        DisconnectReason::Protocol(ProtocolError::FrameTooLarge | ProtocolError::MessageTooLarge) => Some(1009),
        DisconnectReason::Protocol(_) => Some(1002),
        _ => None,
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
            url,
            tls,
            phase: Phase::Down { retry_at: 0 },
            transport: None,
            addrs: Vec::with_capacity(8),
            next_addr: 0,
            deadline: 0,
            accept: String::with_capacity(32),
            reader: Reader::new(max_message),
            writer: Writer::new(write_capacity),
            backoff,
            rng: XorShift::new(seed),
            last_rx: 0,
            next_ping: 0,
            lost: None,
            counters: LinkCounters::default(),
        }
    }

    #[inline]
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open { .. })
    }

    /// The connection proved good: the next failure backs off from the start.
    pub fn reset_backoff(&mut self) {
        self.backoff.reset();
    }

    /// Drives the link one step.
    #[inline]
    pub fn poll(&mut self, now: u64, t: &Timing) -> Polled {
        if let Some(l) = self.lost.take() {
            return l;
        }
        let step = match self.phase {
            Phase::Down { retry_at } if now < retry_at => return Polled::Nothing,
            Phase::Down { .. } => self.begin(now, t).map(|()| Polled::Nothing),
            Phase::Open { since } => self.poll_open(now, since, t),
            _ => self.step_setup(now, t),
        };
        step.unwrap_or_else(|reason| self.fail(reason, now))
    }

    fn begin(&mut self, now: u64, t: &Timing) -> Result<(), DisconnectReason> {
        self.deadline = now.saturating_add(t.connect_timeout_ns);
        self.reader.reset();
        self.writer.reset();
        self.addrs.clear();
        self.next_addr = 0;
        if let Some(addr) = self.url.ip_addr() {
            self.addrs.push(addr);
            return self.connect_next();
        }
        // Name resolution blocks: a short-lived helper thread, abandoned at the deadline.
        let (host, port) = (self.url.host.clone(), self.url.port);
        let job = std::thread::Builder::new()
            .name("ws-resolve".into())
            .spawn(move || (host.as_str(), port).to_socket_addrs().map(|a| a.collect()))
            .map_err(|_| DisconnectReason::Resolve)?;
        self.phase = Phase::Resolving(job);
        Ok(())
    }

    fn connect_next(&mut self) -> Result<(), DisconnectReason> {
        let mut last = DisconnectReason::Resolve;
        while let Some(&addr) = self.addrs.get(self.next_addr) {
            self.next_addr += 1;
            match TcpStream::connect(addr) {
                Ok(s) => {
                    self.transport = Some(Transport::Plain(s));
                    self.phase = Phase::Connecting;
                    return Ok(());
                }
                Err(e) => last = DisconnectReason::Io(e.kind()),
            }
        }
        Err(last)
    }

    fn step_setup(&mut self, now: u64, t: &Timing) -> Result<Polled, DisconnectReason> {
        if now >= self.deadline {
            return Err(DisconnectReason::Timeout);
        }
        match self.phase {
            Phase::Resolving(ref job) => {
                if !job.is_finished() {
                    return Ok(Polled::Nothing);
                }
                let Phase::Resolving(job) = std::mem::replace(&mut self.phase, Phase::Connecting) else {
                    return Ok(Polled::Nothing);
                };
                match job.join() {
                    Ok(Ok(addrs)) if !addrs.is_empty() => {
                        self.addrs = addrs;
                        self.connect_next().map(|()| Polled::Nothing)
                    }
                    _ => Err(DisconnectReason::Resolve),
                }
            }
            Phase::Connecting => {
                let Some(Transport::Plain(sock)) = &self.transport else {
                    return Err(DisconnectReason::Io(std::io::ErrorKind::NotConnected));
                };
                match conn::connect_finished(sock) {
                    Ok(false) => Ok(Polled::Nothing),
                    Ok(true) => {
                        // Orders are small frames: they must not wait for Nagle.
                        let _ = sock.set_nodelay(true);
                        self.on_tcp_connected().map(|()| Polled::Nothing)
                    }
                    Err(_) if self.next_addr < self.addrs.len() => {
                        self.transport = None;
                        self.connect_next().map(|()| Polled::Nothing)
                    }
                    Err(e) => Err(e),
                }
            }
            Phase::Tls => {
                let Some(tr) = self.transport.as_mut() else { return Err(DisconnectReason::Tls) };
                if tr.handshake()? {
                    self.send_upgrade()?;
                }
                Ok(Polled::Nothing)
            }
            Phase::Upgrading => {
                self.flush()?;
                let Some(tr) = self.transport.as_mut() else { return Err(DisconnectReason::Eof) };
                match tr.read(self.reader.spare())? {
                    Got::Bytes(n) => self.reader.filled(n),
                    Got::Nothing => return Ok(Polled::Nothing),
                    Got::Closed => return Err(DisconnectReason::Eof),
                }
                match conn::check_upgrade_response(self.reader.unparsed(), &self.accept) {
                    Ok(None) => Ok(Polled::Nothing),
                    Ok(Some(head)) => {
                        self.reader.consume(head);
                        self.phase = Phase::Open { since: now };
                        self.last_rx = now;
                        self.next_ping = now.saturating_add(t.ping_ns);
                        self.counters.connects += 1;
                        Ok(Polled::Opened)
                    }
                    Err(h) => Err(DisconnectReason::Handshake(h)),
                }
            }
            _ => Ok(Polled::Nothing),
        }
    }

    fn on_tcp_connected(&mut self) -> Result<(), DisconnectReason> {
        if !self.url.tls {
            return self.send_upgrade();
        }
        let Some(Transport::Plain(sock)) = self.transport.take() else {
            return Err(DisconnectReason::Tls);
        };
        let cfg = self.tls.clone().ok_or(DisconnectReason::Tls)?;
        let mut tr = Transport::start_tls(sock, cfg, &self.url.host)?;
        let done = tr.handshake()?;
        self.transport = Some(tr);
        self.phase = Phase::Tls;
        if done { self.send_upgrade() } else { Ok(()) }
    }

    fn send_upgrade(&mut self) -> Result<(), DisconnectReason> {
        let key = conn::new_key(self.rng.next_u64(), self.rng.next_u64());
        self.accept = conn::accept_key(&key);
        let req = conn::upgrade_request(&self.url, &key);
        if !self.writer.queue_raw(req.as_bytes()) {
            return Err(DisconnectReason::WriteBacklog);
        }
        self.phase = Phase::Upgrading;
        self.flush()
    }

    /// One write of queued bytes, and TLS records rustls holds.
    #[inline]
    fn flush(&mut self) -> Result<(), DisconnectReason> {
        let Some(tr) = self.transport.as_mut() else { return Ok(()) };
        if !self.writer.is_empty() {
            let n = tr.write(self.writer.queued())?;
            self.writer.advance(n);
            Ok(())
        } else {
            tr.flush()
        }
    }

    #[inline]
    fn mask_key(&mut self) -> [u8; 4] {
        (self.rng.next_u64() as u32).to_ne_bytes()
    }

    /// Queues a text message on an open link and writes it now. `false`: not open, or the send
    /// queue is full (nothing queued). A write error drops the connection; the next `poll`
    /// reports it (the message counts as sent: its fate is unknown).
    #[inline]
    pub fn send_text(&mut self, payload: &[u8], now: u64) -> bool {
        if !self.is_open() {
            return false;
        }
        let key = self.mask_key();
        if !self.writer.queue_frame(OP_TEXT, payload, key) {
            return false;
        }
        if let Err(r) = self.flush() {
            let lost = self.fail(r, now);
            self.lost = Some(lost);
        }
        true
    }

    #[inline]
    fn poll_open(&mut self, now: u64, since: u64, t: &Timing) -> Result<Polled, DisconnectReason> {
        if now.saturating_sub(self.last_rx) >= t.dead_ns {
            return Err(DisconnectReason::Dead);
        }
        if now.saturating_sub(since) >= t.max_conn_ns {
            return Err(DisconnectReason::Planned);
        }
        if now >= self.next_ping {
            // Our ping carries its send time, so its pong gives the round trip.
            let key = self.mask_key();
            if !self.writer.queue_frame(OP_PING, &now.to_be_bytes(), key) {
                self.flush()?;
                if !self.writer.queue_frame(OP_PING, &now.to_be_bytes(), key) {
                    return Err(DisconnectReason::WriteBacklog);
                }
            }
            self.next_ping = now.saturating_add(t.ping_ns);
            self.counters.pings_sent += 1;
        }
        self.flush()?;
        let mut have_read = false;
        loop {
            match self.reader.next_event().map_err(DisconnectReason::Protocol)? {
                Some(Event::Text(loc)) => return Ok(Polled::Text(loc)),
                Some(Event::Binary) => self.counters.binary_ignored += 1,
                Some(Event::Ping(a, b)) => {
                    self.counters.pings_received += 1;
                    let key = self.mask_key();
                    if !self.writer.queue_frame(OP_PONG, self.reader.range(a, b), key) {
                        self.flush()?;
                        if !self.writer.queue_frame(OP_PONG, self.reader.range(a, b), key) {
                            return Err(DisconnectReason::WriteBacklog);
                        }
                    }
                    self.counters.pongs_sent += 1;
                }
                Some(Event::Pong(a, b)) => {
                    self.counters.pongs_received += 1;
                    if let Ok(sent) = <[u8; 8]>::try_from(self.reader.range(a, b)) {
                        let sent = u64::from_be_bytes(sent);
                        if sent <= now {
                            self.counters.rtt_ns = now - sent;
                        }
                    }
                }
                Some(Event::Close(code)) => return Err(DisconnectReason::PeerClosed { code }),
                None => {
                    if have_read {
                        return Ok(Polled::Nothing);
                    }
                    have_read = true;
                    let Some(tr) = self.transport.as_mut() else { return Err(DisconnectReason::Eof) };
                    match tr.read(self.reader.spare())? {
                        Got::Bytes(n) => {
                            self.reader.filled(n);
                            self.last_rx = now;
                            self.counters.bytes += n as u64;
                        }
                        Got::Nothing => return Ok(Polled::Nothing),
                        Got::Closed => return Err(DisconnectReason::Eof),
                    }
                }
            }
        }
    }

    /// Drops the connection (saying goodbye when it makes sense) and schedules the next
    /// attempt: at once for [`DisconnectReason::Planned`], else after the next backoff delay.
    pub fn fail(&mut self, reason: DisconnectReason, now: u64) -> Polled {
        self.counters.errors[reason.index()] += 1;
        let was_open = self.shut(close_code(reason));
        let delay_ms = if reason == DisconnectReason::Planned { 0 } else { self.backoff.next_delay().1 };
        self.phase = Phase::Down { retry_at: now.saturating_add(delay_ms.saturating_mul(1_000_000)) };
        Polled::Lost { was_open, reason, retry_in_ms: delay_ms }
    }

    /// The gateway gives up on an open connection (the venue refused the subscription, an
    /// answer is overdue): close 1000, then reconnect after the next backoff delay.
    pub fn drop_open(&mut self, now: u64) {
        self.lost = None;
        self.shut(Some(1000));
        let delay_ms = self.backoff.next_delay().1;
        self.phase = Phase::Down { retry_at: now.saturating_add(delay_ms.saturating_mul(1_000_000)) };
    }

    /// Closes the transport (sending `close` if open); returns whether it was open.
    fn shut(&mut self, close: Option<u16>) -> bool {
        let was_open = self.is_open();
        self.writer.reset();
        if let Some(mut tr) = self.transport.take() {
            if let Some(code) = close.filter(|_| was_open) {
                // Best effort, one write: the connection is going away regardless.
                let key = self.mask_key();
                let payload = code.to_be_bytes();
                let payload: &[u8] = if code == 1005 { &[] } else { &payload };
                if self.writer.queue_frame(OP_CLOSE, payload, key) {
                    let _ = tr.write(self.writer.queued());
                }
            }
            tr.close();
        }
        self.writer.reset();
        self.reader.reset();
        // The caller sets the next phase; a resolver's dropped handle detaches its thread,
        // which ends on its own.
        was_open
    }
}
