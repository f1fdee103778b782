//! One WebSocket connection slot and its life cycle: resolve → TCP connect → TLS → upgrade →
//! open → (error, close, silence or age) → backoff → again.
//!
//! Hot thread; every step is non-blocking and bounded (at most one socket read and one socket
//! write per [`Link::poll`]). Allocation: only while setting a connection up (the resolver
//! thread when the host is a name, the TLS session, the request text); an open connection reads,
//! answers pings and writes frames in the buffers allocated by [`Link::new`].

use super::backoff::{Backoff, XorShift};
use super::codec::{Event, Loc, OP_CLOSE, OP_PING, OP_PONG, Reader, Writer};
use super::conn::{self, Got, Transport, WsUrl};
use super::{DisconnectReason, FeedNotice, LinkKind, WsCounters};
use mio::net::TcpStream;
use std::collections::VecDeque;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Timers shared by both links, ns.
#[derive(Clone, Copy, Debug)]
pub(super) struct Timing {
    pub stale_ns: u64,
    pub dead_ns: u64,
    pub ping_ns: u64,
    pub max_conn_ns: u64,
    pub connect_timeout_ns: u64,
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

type Resolution = std::io::Result<Vec<SocketAddr>>;

enum Phase {
    /// Not wanted (an on-demand link with nothing to do).
    Idle,
    /// Not connected; the next attempt starts at `retry_at`.
    Down {
        retry_at: u64,
    },
    /// A helper thread is resolving the host name.
    Resolving(JoinHandle<Resolution>),
    /// A non-blocking TCP connect is in flight.
    Connecting,
    Tls,
    /// The upgrade request is out; waiting for `101 Switching Protocols`.
    Upgrading,
    Open {
        since: u64,
    },
}

pub(super) struct Link {
    pub kind: LinkKind,
    url: WsUrl,
    tls: Option<Arc<rustls::ClientConfig>>,
    phase: Phase,
    transport: Option<Transport>,
    addrs: Vec<SocketAddr>,
    next_addr: usize,
    /// Set-up must finish by this time.
    deadline: u64,
    /// Expected `Sec-WebSocket-Accept` of the attempt in progress.
    accept: String,
    pub reader: Reader,
    pub writer: Writer,
    backoff: Backoff,
    rng: XorShift,
    last_rx: u64,
    next_ping: u64,
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
        let phase = match self.phase {
            Phase::Idle => "idle",
            Phase::Down { .. } => "down",
            Phase::Resolving(_) => "resolving",
            Phase::Connecting => "connecting",
            Phase::Tls => "tls",
            Phase::Upgrading => "upgrading",
            Phase::Open { .. } => "open",
        };
        f.debug_struct("Link")
            .field("kind", &self.kind)
            .field("url", &self.url)
            .field("phase", &phase)
            .field("reader", &self.reader)
            .field("writer", &self.writer)
            .finish_non_exhaustive()
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
            url,
            tls,
            phase: if on_demand { Phase::Idle } else { Phase::Down { retry_at: 0 } },
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
            delivered: 0,
            persistent: !on_demand,
            drops: 0,
        }
    }

    #[inline]
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open { .. })
    }

    #[inline]
    pub fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Idle)
    }

    /// Starts connecting now if the link is idle.
    pub fn wake(&mut self, now: u64) {
        if self.is_idle() {
            self.phase = Phase::Down { retry_at: now };
        }
    }

    /// Drives the link one step; returns a complete text message when one is ready. The
    /// message's bytes stay valid in [`Link::reader`] until the next call.
    #[inline]
    pub fn poll(&mut self, now: u64, t: &Timing, sink: &mut Sink) -> Option<Loc> {
        let step = match self.phase {
            Phase::Idle => return None,
            Phase::Down { retry_at } if now < retry_at => return None,
            Phase::Down { .. } => self.begin(now, t),
            Phase::Open { since } => match self.poll_open(now, since, t, sink) {
                Ok(got) => return got,
                Err(r) => Err(r),
            },
            _ => self.step_setup(now, t, sink),
        };
        if let Err(reason) = step {
            self.fail(reason, now, sink);
        }
        None
    }

    fn begin(&mut self, now: u64, t: &Timing) -> Result<(), DisconnectReason> {
        self.deadline = now.saturating_add(t.connect_timeout_ns);
        self.reader.reset();
        self.writer.reset();
        self.delivered = 0;
        self.addrs.clear();
        self.next_addr = 0;
        if let Some(addr) = self.url.ip_addr() {
            self.addrs.push(addr);
            return self.connect_next();
        }
        // Name resolution blocks, so it runs on a short-lived helper thread; a hung resolver
        // is abandoned at the set-up deadline.
        let (host, port) = (self.url.host.clone(), self.url.port);
        let job = std::thread::Builder::new()
            .name("ws-resolve".into())
            .spawn(move || (host.as_str(), port).to_socket_addrs().map(|a| a.collect()))
            .map_err(|_| DisconnectReason::Resolve)?;
        self.phase = Phase::Resolving(job);
        Ok(())
    }

    /// Starts a TCP connect to the next address.
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

    fn step_setup(&mut self, now: u64, t: &Timing, sink: &mut Sink) -> Result<(), DisconnectReason> {
        if now >= self.deadline {
            return Err(DisconnectReason::Timeout);
        }
        match self.phase {
            Phase::Resolving(ref job) => {
                if !job.is_finished() {
                    return Ok(());
                }
                let Phase::Resolving(job) = std::mem::replace(&mut self.phase, Phase::Connecting) else {
                    return Ok(());
                };
                match job.join() {
                    Ok(Ok(addrs)) if !addrs.is_empty() => {
                        self.addrs = addrs;
                        self.connect_next()
                    }
                    _ => Err(DisconnectReason::Resolve),
                }
            }
            Phase::Connecting => {
                let Some(Transport::Plain(sock)) = &self.transport else {
                    return Err(DisconnectReason::Io(std::io::ErrorKind::NotConnected));
                };
                match conn::connect_finished(sock) {
                    Ok(false) => Ok(()),
                    Ok(true) => {
                        // Small frames (pongs, requests) must not wait for Nagle.
                        let _ = sock.set_nodelay(true);
                        self.on_tcp_connected()
                    }
                    // Refused or unreachable: the next address, if the name had several.
                    Err(_) if self.next_addr < self.addrs.len() => {
                        self.transport = None;
                        self.connect_next()
                    }
                    Err(e) => Err(e),
                }
            }
            Phase::Tls => {
                let Some(tr) = self.transport.as_mut() else { return Err(DisconnectReason::Tls) };
                if tr.handshake()? {
                    self.send_upgrade()?;
                }
                Ok(())
            }
            Phase::Upgrading => {
                self.flush()?;
                let Some(tr) = self.transport.as_mut() else { return Err(DisconnectReason::Eof) };
                match tr.read(self.reader.spare())? {
                    Got::Bytes(n) => self.reader.filled(n),
                    Got::Nothing => return Ok(()),
                    Got::Closed => return Err(DisconnectReason::Eof),
                }
                match conn::check_upgrade_response(self.reader.unparsed(), &self.accept) {
                    Ok(None) => Ok(()),
                    Ok(Some(head)) => {
                        self.reader.consume(head);
                        self.phase = Phase::Open { since: now };
                        self.last_rx = now;
                        self.next_ping = now.saturating_add(t.ping_ns);
                        sink.counters.connects += 1;
                        sink.push(FeedNotice::Connected { link: self.kind });
                        Ok(())
                    }
                    Err(h) => Err(DisconnectReason::Handshake(h)),
                }
            }
            _ => Ok(()),
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

    /// Queues a frame, flushing once if the queue is full.
    fn queue(&mut self, opcode: u8, payload: &[u8]) -> Result<(), DisconnectReason> {
        let key = self.mask_key();
        if self.writer.queue_frame(opcode, payload, key) {
            return Ok(());
        }
        self.flush()?;
        if self.writer.queue_frame(opcode, payload, key) { Ok(()) } else { Err(DisconnectReason::WriteBacklog) }
    }

    /// Queues a text message on an open link and writes it now. `false`: not open, or the
    /// queue is full (try again later); a write error fails the link.
    pub fn send_text(&mut self, payload: &[u8], now: u64, sink: &mut Sink) -> bool {
        if !self.is_open() {
            return false;
        }
        let key = self.mask_key();
        if !self.writer.queue_frame(super::codec::OP_TEXT, payload, key) {
            return false;
        }
        if let Err(r) = self.flush() {
            self.fail(r, now, sink);
        }
        true
    }

    #[inline]
    fn poll_open(
        &mut self,
        now: u64,
        since: u64,
        t: &Timing,
        sink: &mut Sink,
    ) -> Result<Option<Loc>, DisconnectReason> {
        if now.saturating_sub(self.last_rx) >= t.dead_ns {
            return Err(DisconnectReason::Dead);
        }
        if now.saturating_sub(since) >= t.max_conn_ns {
            return Err(DisconnectReason::Planned);
        }
        if now >= self.next_ping {
            // Our ping carries its send time, so its pong gives the round trip.
            self.queue(OP_PING, &now.to_be_bytes())?;
            self.next_ping = now.saturating_add(t.ping_ns);
            sink.counters.pings_sent += 1;
        }
        self.flush()?;
        let mut have_read = false;
        loop {
            match self.reader.next_event().map_err(DisconnectReason::Protocol)? {
                Some(Event::Text(loc)) => {
                    if self.delivered == 0 {
                        // The connection works: the next failure backs off from the start.
                        self.backoff.reset();
                    }
                    self.delivered += 1;
                    return Ok(Some(loc));
                }
                Some(Event::Binary) => sink.counters.binary_ignored += 1,
                Some(Event::Ping(a, b)) => {
                    sink.counters.pings_received += 1;
                    let key = self.mask_key();
                    if !self.writer.queue_frame(OP_PONG, self.reader.range(a, b), key) {
                        // Keep the payload: flushing may not invalidate the receive buffer.
                        self.flush()?;
                        if !self.writer.queue_frame(OP_PONG, self.reader.range(a, b), key) {
                            return Err(DisconnectReason::WriteBacklog);
                        }
                    }
                    sink.counters.pongs_sent += 1;
                }
                Some(Event::Pong(a, b)) => {
                    sink.counters.pongs_received += 1;
                    if let Ok(sent) = <[u8; 8]>::try_from(self.reader.range(a, b)) {
                        let sent = u64::from_be_bytes(sent);
                        if sent <= now {
                            sink.counters.rtt_ns = now - sent;
                        }
                    }
                }
                Some(Event::Close(code)) => return Err(DisconnectReason::PeerClosed { code }),
                None => {
                    if have_read {
                        return Ok(None);
                    }
                    have_read = true;
                    let Some(tr) = self.transport.as_mut() else { return Err(DisconnectReason::Eof) };
                    match tr.read(self.reader.spare())? {
                        Got::Bytes(n) => {
                            self.reader.filled(n);
                            self.last_rx = now;
                            sink.counters.bytes += n as u64;
                        }
                        Got::Nothing => return Ok(None),
                        Got::Closed => return Err(DisconnectReason::Eof),
                    }
                }
            }
        }
    }

    /// Drops the connection (saying goodbye when it makes sense) and schedules the next one.
    pub fn fail(&mut self, reason: DisconnectReason, now: u64, sink: &mut Sink) {
        let was_open = self.is_open();
        sink.counters.errors[reason.index()] += 1;
        if let DisconnectReason::Protocol(kind) = reason {
            sink.counters.protocol_errors[kind.index()] += 1;
            sink.push(FeedNotice::ProtocolError { link: self.kind, kind });
        }
        self.writer.reset();
        if let Some(mut tr) = self.transport.take() {
            if let Some(code) = reason.close_code().filter(|_| was_open) {
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
        self.drops += 1;
        // Dropping a resolver's handle detaches its thread, which ends on its own.
        self.phase = Phase::Idle;
        sink.push(if was_open {
            FeedNotice::Disconnected { link: self.kind, reason }
        } else {
            FeedNotice::ConnectFailed { link: self.kind, reason }
        });
        if !self.persistent {
            return;
        }
        let (attempt, delay_ms) = if reason == DisconnectReason::Planned { (0, 0) } else { self.backoff.next_delay() };
        self.phase = Phase::Down { retry_at: now.saturating_add(delay_ms.saturating_mul(1_000_000)) };
        sink.counters.reconnects += 1;
        sink.push(FeedNotice::Reconnecting { link: self.kind, attempt, delay_ms });
    }
}
