//! One client WebSocket connection and its mechanics, shared by the feed's links
//! ([`super::link`]) and the live gateway's ([`crate::exec::live`]): resolve → TCP connect →
//! TLS → upgrade → open (pings, pongs, silence, age) → shut. What a loss leads to — the
//! backoff, the notices, when a connection counts as good — is the owner's.
//!
//! Hot thread; every step is non-blocking and bounded (at most one socket read and one socket
//! write per [`Socket::poll`]). Allocation: only while setting a connection up (the resolver
//! thread when the host is a name, the TLS session, the request text); an open connection reads,
//! answers pings and writes frames in the buffers allocated by [`Socket::new`].

use super::DisconnectReason;
use super::backoff::XorShift;
use super::codec::{Event, Loc, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, Reader, Writer};
use super::conn::{self, Got, Transport, WsUrl};
use mio::net::TcpStream;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A connection's timers, ns.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timers {
    /// Nothing received for this long: the connection is dead.
    pub dead_ns: u64,
    /// Our ping period.
    pub ping_ns: u64,
    /// A connection this old is replaced (Binance drops them at 24 h).
    pub max_conn_ns: u64,
    /// Set-up (resolve to upgrade) must finish within this.
    pub connect_timeout_ns: u64,
}

/// What a connection did (monotonic; the owner keeps it in its counters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Upgrades completed.
    pub connects: u64,
    /// WebSocket bytes received on open connections (after TLS).
    pub bytes: u64,
    pub pings_received: u64,
    pub pongs_sent: u64,
    pub pings_sent: u64,
    pub pongs_received: u64,
    /// Round trip of our last answered ping, ns.
    pub rtt_ns: u64,
    /// Binary messages (dropped).
    pub binary_ignored: u64,
}

/// What one poll produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Nothing,
    /// The upgrade completed.
    Opened,
    /// A complete text message, in [`Socket::reader`] until the next poll.
    Text(Loc),
}

type Resolution = std::io::Result<Vec<SocketAddr>>;

enum Phase {
    /// Not wanted (an on-demand connection with nothing to do).
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

pub(crate) struct Socket {
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
    rng: XorShift,
    last_rx: u64,
    next_ping: u64,
}

impl core::fmt::Debug for Socket {
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
        f.debug_struct("Socket")
            .field("url", &self.url)
            .field("phase", &phase)
            .field("reader", &self.reader)
            .field("writer", &self.writer)
            .finish_non_exhaustive()
    }
}

impl Socket {
    /// A connection to `url` that starts connecting at the first poll, or only once woken when
    /// `idle`.
    pub fn new(
        url: WsUrl,
        tls: Option<Arc<rustls::ClientConfig>>,
        max_message: usize,
        write_capacity: usize,
        seed: u64,
        idle: bool,
    ) -> Self {
        Self {
            url,
            tls,
            phase: if idle { Phase::Idle } else { Phase::Down { retry_at: 0 } },
            transport: None,
            addrs: Vec::with_capacity(8),
            next_addr: 0,
            deadline: 0,
            accept: String::with_capacity(32),
            reader: Reader::new(max_message),
            writer: Writer::new(write_capacity),
            rng: XorShift::new(seed),
            last_rx: 0,
            next_ping: 0,
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

    /// Starts connecting now if the connection is idle.
    pub fn wake(&mut self, now: u64) {
        if self.is_idle() {
            self.phase = Phase::Down { retry_at: now };
        }
    }

    /// Drives the connection one step. An error ends it: the owner then calls
    /// [`Socket::shut`] and [`Socket::retry_at`] or [`Socket::idle`].
    #[inline]
    pub fn poll(&mut self, now: u64, t: &Timers, c: &mut Traffic) -> Result<Step, DisconnectReason> {
        match self.phase {
            Phase::Idle => Ok(Step::Nothing),
            Phase::Down { retry_at } if now < retry_at => Ok(Step::Nothing),
            Phase::Down { .. } => self.begin(now, t).map(|()| Step::Nothing),
            Phase::Open { since } => self.poll_open(now, since, t, c),
            _ => self.step_setup(now, t, c),
        }
    }

    fn begin(&mut self, now: u64, t: &Timers) -> Result<(), DisconnectReason> {
        self.deadline = now.saturating_add(t.connect_timeout_ns);
        self.reader.reset();
        self.writer.reset();
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

    fn step_setup(&mut self, now: u64, t: &Timers, c: &mut Traffic) -> Result<Step, DisconnectReason> {
        if now >= self.deadline {
            return Err(DisconnectReason::Timeout);
        }
        match self.phase {
            Phase::Resolving(ref job) => {
                if !job.is_finished() {
                    return Ok(Step::Nothing);
                }
                let Phase::Resolving(job) = std::mem::replace(&mut self.phase, Phase::Connecting) else {
                    return Ok(Step::Nothing);
                };
                match job.join() {
                    Ok(Ok(addrs)) if !addrs.is_empty() => {
                        self.addrs = addrs;
                        self.connect_next().map(|()| Step::Nothing)
                    }
                    _ => Err(DisconnectReason::Resolve),
                }
            }
            Phase::Connecting => {
                let Some(Transport::Plain(sock)) = &self.transport else {
                    return Err(DisconnectReason::Io(std::io::ErrorKind::NotConnected));
                };
                match conn::connect_finished(sock) {
                    Ok(false) => Ok(Step::Nothing),
                    Ok(true) => {
                        // Small frames (pongs, requests, orders) must not wait for Nagle.
                        let _ = sock.set_nodelay(true);
                        self.on_tcp_connected().map(|()| Step::Nothing)
                    }
                    // Refused or unreachable: the next address, if the name had several.
                    Err(_) if self.next_addr < self.addrs.len() => {
                        self.transport = None;
                        self.connect_next().map(|()| Step::Nothing)
                    }
                    Err(e) => Err(e),
                }
            }
            Phase::Tls => {
                let Some(tr) = self.transport.as_mut() else { return Err(DisconnectReason::Tls) };
                if tr.handshake()? {
                    self.send_upgrade()?;
                }
                Ok(Step::Nothing)
            }
            Phase::Upgrading => {
                self.flush()?;
                let Some(tr) = self.transport.as_mut() else { return Err(DisconnectReason::Eof) };
                match tr.read(self.reader.spare())? {
                    Got::Bytes(n) => self.reader.filled(n),
                    Got::Nothing => return Ok(Step::Nothing),
                    Got::Closed => return Err(DisconnectReason::Eof),
                }
                match conn::check_upgrade_response(self.reader.unparsed(), &self.accept) {
                    Ok(None) => Ok(Step::Nothing),
                    Ok(Some(head)) => {
                        self.reader.consume(head);
                        self.phase = Phase::Open { since: now };
                        self.last_rx = now;
                        self.next_ping = now.saturating_add(t.ping_ns);
                        c.connects += 1;
                        Ok(Step::Opened)
                    }
                    Err(h) => Err(DisconnectReason::Handshake(h)),
                }
            }
            _ => Ok(Step::Nothing),
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

    /// Queues a control frame of ours, flushing once if the queue is full.
    fn queue(&mut self, opcode: u8, payload: &[u8]) -> Result<(), DisconnectReason> {
        let key = self.mask_key();
        if self.writer.queue_frame(opcode, payload, key) {
            return Ok(());
        }
        self.flush()?;
        if self.writer.queue_frame(opcode, payload, key) { Ok(()) } else { Err(DisconnectReason::WriteBacklog) }
    }

    /// Queues a text message on an open connection and writes it now. `Ok(false)`: not open,
    /// or the send queue is full (nothing queued; try again later). An error is a failed write
    /// after the message was queued: the connection is lost (the message's fate is unknown).
    #[inline]
    pub fn send_text(&mut self, payload: &[u8]) -> Result<bool, DisconnectReason> {
        if !self.is_open() {
            return Ok(false);
        }
        let key = self.mask_key();
        if !self.writer.queue_frame(OP_TEXT, payload, key) {
            return Ok(false);
        }
        self.flush().map(|()| true)
    }

    #[inline]
    fn poll_open(&mut self, now: u64, since: u64, t: &Timers, c: &mut Traffic) -> Result<Step, DisconnectReason> {
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
            c.pings_sent += 1;
        }
        self.flush()?;
        let mut have_read = false;
        loop {
            match self.reader.next_event().map_err(DisconnectReason::Protocol)? {
                Some(Event::Text(loc)) => return Ok(Step::Text(loc)),
                Some(Event::Binary) => c.binary_ignored += 1,
                Some(Event::Ping(a, b)) => {
                    c.pings_received += 1;
                    let key = self.mask_key();
                    if !self.writer.queue_frame(OP_PONG, self.reader.range(a, b), key) {
                        // Keep the payload: flushing may not invalidate the receive buffer.
                        self.flush()?;
                        if !self.writer.queue_frame(OP_PONG, self.reader.range(a, b), key) {
                            return Err(DisconnectReason::WriteBacklog);
                        }
                    }
                    c.pongs_sent += 1;
                }
                Some(Event::Pong(a, b)) => {
                    c.pongs_received += 1;
                    if let Ok(sent) = <[u8; 8]>::try_from(self.reader.range(a, b)) {
                        let sent = u64::from_be_bytes(sent);
                        if sent <= now {
                            c.rtt_ns = now - sent;
                        }
                    }
                }
                Some(Event::Close(code)) => return Err(DisconnectReason::PeerClosed { code }),
                None => {
                    if have_read {
                        return Ok(Step::Nothing);
                    }
                    have_read = true;
                    let Some(tr) = self.transport.as_mut() else { return Err(DisconnectReason::Eof) };
                    match tr.read(self.reader.spare())? {
                        Got::Bytes(n) => {
                            self.reader.filled(n);
                            self.last_rx = now;
                            c.bytes += n as u64;
                        }
                        Got::Nothing => return Ok(Step::Nothing),
                        Got::Closed => return Err(DisconnectReason::Eof),
                    }
                }
            }
        }
    }

    /// Closes the transport, saying goodbye with `reason`'s close code when the connection was
    /// open and the reason has one; returns whether it was open. The connection is then idle
    /// until the owner schedules it ([`Socket::retry_at`]) or wakes it.
    pub fn shut(&mut self, reason: DisconnectReason) -> bool {
        let was_open = self.is_open();
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
        // Dropping a resolver's handle detaches its thread, which ends on its own.
        self.phase = Phase::Idle;
        was_open
    }

    /// The next attempt starts at `at` (ns).
    pub fn retry_at(&mut self, at: u64) {
        self.phase = Phase::Down { retry_at: at };
    }
}
