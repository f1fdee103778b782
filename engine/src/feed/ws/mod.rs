//! The live market-data source: Binance's combined stream over one WebSocket, and depth
//! snapshots over the WebSocket API, both driven without ever blocking.
//!
//! Role: [`WsFeed`] mirrors [`SyntheticSource`](super::SyntheticSource): [`WsFeed::poll`]
//! returns the next complete text message of the market stream as [`FrameKind::Stream`], or a
//! WS-API depth answer as [`FrameKind::Snapshot`]; [`WsFeed::request_snapshot`] asks for one.
//! Connection health comes out as [`FeedNotice`]s ([`WsFeed::take_notice`]) and
//! [`WsCounters`].
//!
//! Thread: the hot thread. Nothing blocks: sockets are non-blocking (mio), the clock is the
//! caller's `now_ns`, and name resolution (for host names, not IP literals) runs on a helper
//! thread per connection attempt.
//!
//! Allocation: [`WsFeed::new`] allocates every buffer (per connection: a receive buffer and a
//! fragment-assembly buffer of `max_message` each, a send buffer; the notice queue). Setting a
//! connection up allocates (TLS session, request text, resolver thread); once a connection is
//! open, reading frames, answering pings, pinging, sending snapshot requests and returning
//! messages allocate nothing over `ws://`. Over `wss://`, rustls allocates one buffer per TLS
//! record (see [`conn`]).
//!
//! Behaviour:
//! * Reconnect: any error, close frame, silence (`dead_ms` without a byte) or failed set-up
//!   drops the connection and retries after a capped exponential backoff with jitter
//!   ([`backoff`]); the backoff restarts once a connection delivers a message.
//! * Planned reconnect: after `max_connection_ms` open, the stream connection is closed (close
//!   code 1000) and a new one opened at once — break-before-make. Make-before-break would save
//!   one connection set-up, but the books must resync anyway (the new connection's first
//!   diffs do not prove continuity), and switching mid-stream could replay older quotes and
//!   trades from the second connection; a clean cut is easier to reason about, once a day.
//! * Staleness: no stream message for `stale_ms` → [`FeedNotice::Stale`]; the next message →
//!   [`FeedNotice::Fresh`]. Independent of the connection state.
//! * Snapshots: requests wait until the stream connection is open (Binance's procedure:
//!   subscribe first, then snapshot), are deduplicated while one is in flight, and are re-sent
//!   after the WS-API connection drops. A venue error answer is still returned (it decodes as
//!   [`DecodeError::VenueError`](super::decode::DecodeError::VenueError)), raises
//!   [`FeedNotice::SnapshotRejected`], and the request is retried after a backoff.

pub mod backoff;
pub mod codec;
pub mod conn;
mod link;
pub(crate) mod socket;

use self::backoff::Backoff;
use self::codec::Loc;
use self::conn::WsUrl;
use self::link::{Link, Sink, Timing};
use self::socket::Timers;
pub use self::socket::Traffic;
use super::FrameKind;
use super::decode;
use hft_shared::SymbolId;
use hft_shared::config::Config;
use std::sync::Arc;

/// Which connection a notice is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkKind {
    /// The combined market-data stream.
    Stream,
    /// The WebSocket API (depth snapshots).
    Api,
}

/// A change in feed health, for the engine (mapped to `Event::Feed`) and the books.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedNotice {
    /// The upgrade completed. Queued before any frame of the new connection is returned (a
    /// consumer that drains notices after a batch of polls may see it after such frames). For
    /// [`LinkKind::Stream`]: every book must be invalidated and re-snapshotted.
    Connected { link: LinkKind },
    /// An open connection was lost.
    Disconnected { link: LinkKind, reason: DisconnectReason },
    /// A connection attempt failed before it opened.
    ConnectFailed { link: LinkKind, reason: DisconnectReason },
    /// The next attempt is scheduled (`attempt` 0 with delay 0: a planned reconnect).
    Reconnecting { link: LinkKind, attempt: u32, delay_ms: u64 },
    /// No stream message for `stale_ms`.
    Stale,
    /// A stream message after [`FeedNotice::Stale`].
    Fresh,
    /// The server broke RFC 6455; the connection is dropped (a `Disconnected` follows).
    ProtocolError { link: LinkKind, kind: ProtocolError },
    /// The venue answered a depth request with an error status; it will be retried.
    SnapshotRejected { symbol: SymbolId, status: u16 },
}

/// Why a connection ended (or never opened). Counted per kind in [`WsCounters::errors`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The server sent a close frame with this code (1005: none).
    PeerClosed { code: u16 },
    /// The TCP (or TLS) stream ended without a close frame.
    Eof,
    /// A socket error.
    Io(std::io::ErrorKind),
    /// The host name did not resolve.
    Resolve,
    /// Set-up (resolve, connect, TLS, upgrade) took longer than `connect_timeout_ms`.
    Timeout,
    /// A TLS failure other than the certificate.
    Tls,
    /// The server's certificate was refused.
    TlsCertificate,
    /// The HTTP upgrade was refused or malformed.
    Handshake(HandshakeError),
    /// The server broke RFC 6455.
    Protocol(ProtocolError),
    /// Nothing received (not even a pong) for `dead_ms`.
    Dead,
    /// The peer does not read what we send (our send queue is full).
    WriteBacklog,
    /// `max_connection_ms` elapsed.
    Planned,
}

impl DisconnectReason {
    pub const COUNT: usize = 12;

    #[inline]
    pub const fn index(self) -> usize {
        match self {
            DisconnectReason::PeerClosed { .. } => 0,
            DisconnectReason::Eof => 1,
            DisconnectReason::Io(_) => 2,
            DisconnectReason::Resolve => 3,
            DisconnectReason::Timeout => 4,
            DisconnectReason::Tls => 5,
            DisconnectReason::TlsCertificate => 6,
            DisconnectReason::Handshake(_) => 7,
            DisconnectReason::Protocol(_) => 8,
            DisconnectReason::Dead => 9,
            DisconnectReason::WriteBacklog => 10,
            DisconnectReason::Planned => 11,
        }
    }

    /// Stable names, indexed by [`DisconnectReason::index`] (for metrics).
    pub const CODES: [&'static str; Self::COUNT] = [
        "peer_closed",
        "eof",
        "io",
        "resolve",
        "timeout",
        "tls",
        "tls_certificate",
        "handshake",
        "protocol",
        "dead",
        "write_backlog",
        "planned",
    ];

    pub const fn code(self) -> &'static str {
        Self::CODES[self.index()]
    }

    /// The close code we send when dropping an open connection for this reason.
    fn close_code(self) -> Option<u16> {
        match self {
            // Echo the peer's close, as RFC 6455 §5.5.1 asks.
            DisconnectReason::PeerClosed { code } => Some(code),
            DisconnectReason::Planned => Some(1000),
            DisconnectReason::Dead => Some(1001),
            DisconnectReason::Protocol(ProtocolError::FrameTooLarge | ProtocolError::MessageTooLarge) => Some(1009),
            DisconnectReason::Protocol(_) => Some(1002),
            _ => None,
        }
    }
}

/// An RFC 6455 violation by the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ProtocolError {
    /// RSV1-3 set (no extension was negotiated).
    ReservedBits = 0,
    /// A server frame was masked.
    MaskedFrame = 1,
    UnknownOpcode = 2,
    /// A control frame was not final.
    FragmentedControl = 3,
    /// A control frame's payload exceeded 125 bytes.
    ControlTooLong = 4,
    /// A frame's payload exceeded `max_message`.
    FrameTooLarge = 5,
    /// A fragmented message exceeded `max_message`.
    MessageTooLarge = 6,
    /// A continuation frame outside a fragmented message.
    UnexpectedContinuation = 7,
    /// A new data frame inside a fragmented message.
    ExpectedContinuation = 8,
    /// A close frame with a 1-byte payload.
    BadClose = 9,
}

impl ProtocolError {
    pub const COUNT: usize = 10;

    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }

    pub const fn code(self) -> &'static str {
        match self {
            ProtocolError::ReservedBits => "reserved_bits",
            ProtocolError::MaskedFrame => "masked_frame",
            ProtocolError::UnknownOpcode => "unknown_opcode",
            ProtocolError::FragmentedControl => "fragmented_control",
            ProtocolError::ControlTooLong => "control_too_long",
            ProtocolError::FrameTooLarge => "frame_too_large",
            ProtocolError::MessageTooLarge => "message_too_large",
            ProtocolError::UnexpectedContinuation => "unexpected_continuation",
            ProtocolError::ExpectedContinuation => "expected_continuation",
            ProtocolError::BadClose => "bad_close",
        }
    }
}

/// Why the HTTP upgrade failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeError {
    /// Not `101` (Binance: 429 rate limited, 418 banned, …).
    Status(u16),
    /// `Sec-WebSocket-Accept` missing or wrong.
    BadAccept,
    /// An extension or subprotocol we did not offer.
    UnrequestedExtension,
    /// Not an HTTP response, or missing `Upgrade`/`Connection`.
    Malformed,
    /// The response head exceeded 16 KiB.
    TooLarge,
}

/// Feed counters (monotonic since construction).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WsCounters {
    /// Both connections' upgrades, bytes, pings and pongs (the round trip is the last
    /// answered ping's, on either).
    pub traffic: Traffic,
    /// Reconnects scheduled (both connections).
    pub reconnects: u64,
    /// Messages returned by `poll` (stream messages and snapshot answers).
    pub frames: u64,
    pub snapshots_requested: u64,
    /// Snapshot answers returned (including error answers).
    pub snapshots_received: u64,
    /// Error answers to snapshot requests.
    pub snapshot_errors: u64,
    /// WS-API messages that answer no request in flight (dropped).
    pub unmatched_responses: u64,
    /// Notices dropped because nobody took them.
    pub notices_dropped: u64,
    /// Connection losses and failed attempts, by [`DisconnectReason::index`].
    pub errors: [u64; DisconnectReason::COUNT],
    /// Protocol errors, by [`ProtocolError::index`].
    pub protocol_errors: [u64; ProtocolError::COUNT],
}

/// A feed that cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("bad WebSocket URL {url:?}: {msg}")]
    BadUrl { url: String, msg: String },
    #[error("bad feed parameter `{name}`: {msg}")]
    BadParam { name: &'static str, msg: String },
    #[error("TLS set-up failed: {0}")]
    Tls(String),
}

/// Everything [`WsFeed::new`] needs. [`WsParams::from_config`] fills it from `[feed]`.
#[derive(Clone, Debug)]
pub struct WsParams {
    /// Combined-stream base URL (`wss://stream.binance.com:9443`); `/stream?streams=…` is
    /// appended to its path.
    pub url: String,
    /// Upper-case symbols (`BTCUSDT`); index = `SymbolId`. Each subscribes
    /// `<lower>@depth@100ms`, `<lower>@bookTicker` and `<lower>@trade`, all on one connection.
    pub symbols: Vec<String>,
    /// WebSocket API URL (`wss://ws-api.binance.com:443/ws-api/v3`).
    pub api_url: String,
    /// Levels per depth snapshot, 1..=5000.
    pub snapshot_limit: u32,
    /// No stream message for this long: [`FeedNotice::Stale`], ms.
    pub stale_ms: u64,
    /// First reconnect delay, ms (≥ 1).
    pub reconnect_min_ms: u64,
    /// Reconnect delay cap, ms (≥ `reconnect_min_ms`).
    pub reconnect_max_ms: u64,
    /// Planned reconnect after this long open, ms.
    pub max_connection_ms: u64,
    /// Period of our pings, ms.
    pub ping_interval_ms: u64,
    /// Nothing received for this long (our pings unanswered): reconnect, ms.
    pub dead_ms: u64,
    /// Limit on resolving + connecting + TLS + upgrade, ms.
    pub connect_timeout_ms: u64,
    /// Largest frame and largest assembled message, bytes (each connection preallocates two
    /// buffers of this size).
    pub max_message: usize,
    /// Seed of jitter, masking keys and handshake keys; 0 = from the OS.
    pub seed: u64,
    /// TLS configuration for `wss://`; `None` = the ring provider with Mozilla's roots.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl WsParams {
    /// Default ping period: well inside Binance's 1-minute pong deadline and its 20 s pings.
    pub const PING_INTERVAL_MS: u64 = 5_000;
    pub const CONNECT_TIMEOUT_MS: u64 = 10_000;
    pub const MAX_MESSAGE: usize = 4 << 20;

    /// From the `[feed]` section and `symbols`; `[feed]` has no key for pings, silence,
    /// set-up timeout and message cap, so those take the constants above (`dead_ms`: three
    /// ping periods, at least `stale_ms`).
    pub fn from_config(cfg: &Config) -> Self {
        let f = &cfg.feed;
        Self {
            url: f.url.clone(),
            symbols: cfg.symbols.clone(),
            api_url: f.api_url.clone(),
            snapshot_limit: f.snapshot_limit,
            stale_ms: f.stale_ms,
            reconnect_min_ms: f.reconnect_min_ms,
            reconnect_max_ms: f.reconnect_max_ms,
            max_connection_ms: f.max_connection_s.saturating_mul(1000),
            ping_interval_ms: Self::PING_INTERVAL_MS,
            dead_ms: (3 * Self::PING_INTERVAL_MS).max(f.stale_ms),
            connect_timeout_ms: Self::CONNECT_TIMEOUT_MS,
            max_message: Self::MAX_MESSAGE,
            seed: 0,
            tls: None,
        }
    }

    /// The combined-stream URL.
    pub fn stream_url(&self) -> Result<String, FeedError> {
        let base = WsUrl::parse(&self.url)?;
        if base.path.contains('?') {
            return Err(FeedError::BadUrl { url: self.url.clone(), msg: "the base URL must have no query".into() });
        }
        let mut streams = String::new();
        for s in &self.symbols {
            let l = s.to_ascii_lowercase();
            if !streams.is_empty() {
                streams.push('/');
            }
            streams.push_str(&format!("{l}@depth@100ms/{l}@bookTicker/{l}@trade"));
        }
        Ok(format!("{}/stream?streams={streams}", self.url.trim_end_matches('/')))
    }

    fn validate(&self) -> Result<(), FeedError> {
        let bad = |name, msg: &str| Err(FeedError::BadParam { name, msg: msg.to_string() });
        if self.symbols.is_empty() || self.symbols.len() > 1024 / 3 {
            return bad("symbols", "need 1 to 341 symbols (Binance: 1024 streams per connection)");
        }
        for s in &self.symbols {
            if s.is_empty() || s.len() > 32 || !s.bytes().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) {
                return Err(FeedError::BadParam { name: "symbols", msg: format!("{s:?} is not an upper-case symbol") });
            }
        }
        if !(1..=5000).contains(&self.snapshot_limit) {
            return bad("snapshot_limit", "must be 1..=5000");
        }
        if self.reconnect_min_ms == 0 || self.reconnect_min_ms > self.reconnect_max_ms {
            return bad("reconnect_min_ms", "must be ≥ 1 and ≤ reconnect_max_ms");
        }
        for (name, v) in [
            ("stale_ms", self.stale_ms),
            ("max_connection_ms", self.max_connection_ms),
            ("ping_interval_ms", self.ping_interval_ms),
            ("dead_ms", self.dead_ms),
            ("connect_timeout_ms", self.connect_timeout_ms),
        ] {
            if v == 0 {
                return bad(name, "must be > 0");
            }
        }
        if !(1024..=(1 << 30)).contains(&self.max_message) {
            return bad("max_message", "must be 1 KiB..=1 GiB");
        }
        Ok(())
    }
}

/// Room for one depth request: `{"id":"<u64>","method":"depth","params":{"symbol":"<≤32>","limit":<≤5000>}}`.
const REQUEST_CAP: usize = 128;
/// How often an open WS-API connection with nothing in flight is read (pings, close), ns.
const API_IDLE_POLL_NS: u64 = 1_000_000;

/// The live feed. See the module docs.
#[derive(Debug)]
pub struct WsFeed {
    stream: Link,
    api: Link,
    t: Timing,
    sink: Sink,
    symbols: Vec<String>,
    snapshot_limit: u32,
    /// Per symbol: a snapshot is owed (not yet requested on the current WS-API connection).
    pending: Vec<bool>,
    /// Per symbol: id of the request in flight.
    inflight: Vec<Option<u64>>,
    /// Per symbol: no request before this time (after a venue error), ns.
    retry_at: Vec<u64>,
    snapshot_backoff: Backoff,
    next_id: u64,
    api_drops_seen: u64,
    api_next_poll: u64,
    last_msg: u64,
    stale: bool,
    started: bool,
}

impl WsFeed {
    pub fn new(p: WsParams) -> Result<Self, FeedError> {
        p.validate()?;
        let stream_url = WsUrl::parse(&p.stream_url()?)?;
        let api_url = WsUrl::parse(&p.api_url)?;
        let tls = if stream_url.tls || api_url.tls {
            Some(match &p.tls {
                Some(c) => c.clone(),
                None => conn::default_tls_config()?,
            })
        } else {
            None
        };
        let seed = if p.seed != 0 {
            p.seed
        } else {
            use std::hash::{BuildHasher, Hasher};
            // std seeds `RandomState` from the OS: a random word without another dependency.
            std::hash::RandomState::new().build_hasher().finish()
        };
        let ms = 1_000_000u64;
        let t = Timing {
            stale_ns: p.stale_ms.saturating_mul(ms),
            socket: Timers {
                dead_ns: p.dead_ms.saturating_mul(ms),
                ping_ns: p.ping_interval_ms.saturating_mul(ms),
                max_conn_ns: p.max_connection_ms.saturating_mul(ms),
                connect_timeout_ns: p.connect_timeout_ms.saturating_mul(ms),
            },
        };
        let backoff = |k: u64| Backoff::new(p.reconnect_min_ms, p.reconnect_max_ms, seed ^ k);
        // The upgrade request (path included) must fit the send buffer.
        let stream_write = (64 << 10).max(stream_url.path.len() + stream_url.host.len() + 512);
        let n = p.symbols.len();
        Ok(Self {
            stream: Link::new(
                LinkKind::Stream,
                stream_url,
                tls.clone(),
                p.max_message,
                stream_write,
                backoff(1),
                seed ^ 2,
                false,
            ),
            api: Link::new(LinkKind::Api, api_url, tls, p.max_message, 64 << 10, backoff(3), seed ^ 4, true),
            t,
            sink: Sink::new(),
            symbols: p.symbols,
            snapshot_limit: p.snapshot_limit,
            pending: vec![false; n],
            inflight: vec![None; n],
            retry_at: vec![0; n],
            snapshot_backoff: backoff(5),
            next_id: 1,
            api_drops_seen: 0,
            api_next_poll: 0,
            last_msg: 0,
            stale: false,
            started: false,
        })
    }

    /// Drives both connections one step and returns the next message, if one is complete:
    /// a stream message, or a snapshot answer for the symbol it was requested for. The slice
    /// borrows the feed's buffer until the next call. Never blocks; `now_ns` is monotonic.
    #[inline]
    pub fn poll(&mut self, now_ns: u64) -> Option<(FrameKind, &[u8])> {
        if !self.started {
            self.started = true;
            self.last_msg = now_ns;
        }
        if !self.stale && now_ns.saturating_sub(self.last_msg) >= self.t.stale_ns {
            self.stale = true;
            self.sink.push(FeedNotice::Stale);
        }
        if let Some((sym, loc)) = self.poll_api(now_ns) {
            self.sink.counters.frames += 1;
            self.sink.counters.snapshots_received += 1;
            return Some((FrameKind::Snapshot(sym), self.api.socket.reader.message(loc)));
        }
        let loc = self.stream.poll(now_ns, &self.t, &mut self.sink)?;
        self.sink.counters.frames += 1;
        self.last_msg = now_ns;
        if self.stale {
            self.stale = false;
            self.sink.push(FeedNotice::Fresh);
        }
        Some((FrameKind::Stream, self.stream.socket.reader.message(loc)))
    }

    /// Asks for a depth snapshot of `symbol` over the WS-API (opened on demand, then kept).
    /// A request already in flight for the symbol is not repeated. Unknown ids are ignored.
    pub fn request_snapshot(&mut self, symbol: SymbolId) {
        let i = symbol.index();
        if i < self.pending.len() && self.inflight[i].is_none() {
            self.pending[i] = true;
        }
    }

    /// The oldest notice not yet taken.
    #[inline]
    pub fn take_notice(&mut self) -> Option<FeedNotice> {
        self.sink.notices.pop_front()
    }

    pub fn counters(&self) -> &WsCounters {
        &self.sink.counters
    }

    /// Whether the market stream is open.
    pub fn is_connected(&self) -> bool {
        self.stream.is_open()
    }

    /// Whether the last stream message is older than `stale_ms` (as of the last poll).
    pub fn is_stale(&self) -> bool {
        self.stale
    }

    /// The WS-API side of a poll: drives the connection when it has work (or, idle, once per
    /// millisecond for pings), sends owed requests, and matches an answer to its symbol.
    #[inline]
    fn poll_api(&mut self, now: u64) -> Option<(SymbolId, Loc)> {
        let work = self.pending.iter().any(|&p| p) || self.inflight.iter().any(Option::is_some);
        self.api.persistent = work;
        if work {
            self.api.wake(now);
        } else if self.api.is_idle() || (self.api.is_open() && now < self.api_next_poll) {
            return None;
        }
        self.api_next_poll = now.saturating_add(API_IDLE_POLL_NS);
        let got = self.api.poll(now, &self.t, &mut self.sink);
        if self.api.drops != self.api_drops_seen {
            // Answers to requests of a lost connection never come: ask again.
            self.api_drops_seen = self.api.drops;
            for (p, f) in self.pending.iter_mut().zip(self.inflight.iter_mut()) {
                if f.take().is_some() {
                    *p = true;
                }
            }
        }
        if work && self.api.is_open() && self.stream.is_open() {
            self.send_requests(now);
        }
        let loc = got?;
        let id = match decode::api_response(self.api.socket.reader.message(loc)) {
            Ok(Some(r)) => parse_id(r.id).map(|id| (id, r.status)),
            _ => None,
        };
        let found = id.and_then(|(id, status)| Some((self.inflight.iter().position(|f| *f == Some(id))?, status)));
        let Some((i, status)) = found else {
            self.sink.counters.unmatched_responses += 1;
            return None;
        };
        self.inflight[i] = None;
        let symbol = SymbolId(i as u16);
        if status == 200 {
            self.snapshot_backoff.reset();
        } else {
            self.sink.counters.snapshot_errors += 1;
            self.sink.push(FeedNotice::SnapshotRejected { symbol, status: status.min(u64::from(u16::MAX)) as u16 });
            let (_, delay_ms) = self.snapshot_backoff.next_delay();
            self.retry_at[i] = now.saturating_add(delay_ms.saturating_mul(1_000_000));
            self.pending[i] = true;
        }
        Some((symbol, loc))
    }

    fn send_requests(&mut self, now: u64) {
        for i in 0..self.pending.len() {
            if !self.pending[i] || self.inflight[i].is_some() || now < self.retry_at[i] {
                continue;
            }
            let mut buf = [0u8; REQUEST_CAP];
            let len = depth_request(&mut buf, self.next_id, &self.symbols[i], self.snapshot_limit);
            if !self.api.send_text(&buf[..len], now, &mut self.sink) {
                return;
            }
            self.pending[i] = false;
            self.inflight[i] = Some(self.next_id);
            self.next_id += 1;
            self.sink.counters.snapshots_requested += 1;
            if !self.api.is_open() {
                // The write failed the connection; its drop is handled on the next poll.
                return;
            }
        }
    }
}

/// Writes `{"id":"<id>","method":"depth","params":{"symbol":"<symbol>","limit":<limit>}}` into
/// `buf` and returns its length. `symbol` is ≤ 32 validated characters, so it always fits.
fn depth_request(buf: &mut [u8; REQUEST_CAP], id: u64, symbol: &str, limit: u32) -> usize {
    let mut ids = itoa::Buffer::new();
    let mut limits = itoa::Buffer::new();
    let parts: [&[u8]; 7] = [
        b"{\"id\":\"",
        ids.format(id).as_bytes(),
        b"\",\"method\":\"depth\",\"params\":{\"symbol\":\"",
        symbol.as_bytes(),
        b"\",\"limit\":",
        limits.format(limit).as_bytes(),
        b"}}",
    ];
    let mut n = 0;
    for p in parts {
        let end = (n + p.len()).min(REQUEST_CAP);
        buf[n..end].copy_from_slice(&p[..end - n]);
        n = end;
    }
    n
}

/// A request id as echoed back (the string content of `"id":"<n>"`).
fn parse_id(raw: &[u8]) -> Option<u64> {
    if raw.is_empty() || raw.len() > 19 {
        return None;
    }
    raw.iter().try_fold(0u64, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + u64::from(c - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> WsParams {
        let cfg = Config::from_toml_str("symbols = [\"BTCUSDT\", \"ETHUSDT\"]\n", &|_| None).unwrap();
        WsParams::from_config(&cfg)
    }

    #[test]
    fn the_stream_url_subscribes_three_streams_per_symbol_on_one_connection() {
        let p = params();
        assert_eq!(
            p.stream_url().unwrap(),
            "wss://stream.binance.com:9443/stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker/btcusdt@trade/\
             ethusdt@depth@100ms/ethusdt@bookTicker/ethusdt@trade"
        );
        let mut q = p.clone();
        q.url = "ws://127.0.0.1:1/".into();
        assert!(q.stream_url().unwrap().starts_with("ws://127.0.0.1:1/stream?streams=btcusdt@"));
    }

    #[test]
    fn from_config_builds_a_tls_feed_without_io() {
        let p = params();
        assert_eq!((p.max_connection_ms, p.snapshot_limit), (82_800_000, 1000));
        let feed = WsFeed::new(p).unwrap();
        assert!(!feed.is_connected() && !feed.is_stale());
        assert_eq!(feed.counters(), &WsCounters::default());
    }

    #[test]
    fn bad_params_are_refused_by_name() {
        type Edit = fn(&mut WsParams);
        let cases: [(&str, Edit); 8] = [
            ("symbols", |p| p.symbols.clear()),
            ("symbols", |p| p.symbols[0] = "btcusdt".into()),
            ("symbols", |p| p.symbols[0] = "BTC/USDT".into()),
            ("snapshot_limit", |p| p.snapshot_limit = 0),
            ("reconnect_min_ms", |p| p.reconnect_min_ms = p.reconnect_max_ms + 1),
            ("ping_interval_ms", |p| p.ping_interval_ms = 0),
            ("max_message", |p| p.max_message = 10),
            ("url", |p| p.url = "https://x".into()),
        ];
        for (name, edit) in cases {
            let mut p = params();
            edit(&mut p);
            let e = WsFeed::new(p).unwrap_err();
            match e {
                FeedError::BadParam { name: n, .. } => assert_eq!(n, name),
                FeedError::BadUrl { .. } => assert_eq!(name, "url"),
                e => panic!("{e}"),
            }
        }
    }

    #[test]
    fn depth_requests_are_written_in_place() {
        let mut buf = [0u8; REQUEST_CAP];
        let n = depth_request(&mut buf, 17, "BTCUSDT", 1000);
        assert_eq!(
            std::str::from_utf8(&buf[..n]).unwrap(),
            r#"{"id":"17","method":"depth","params":{"symbol":"BTCUSDT","limit":1000}}"#
        );
        let n = depth_request(&mut buf, u64::MAX, &"A".repeat(32), 5000);
        assert!(n < REQUEST_CAP && buf[..n].ends_with(b"\"limit\":5000}}"));
        assert_eq!(parse_id(b"18446744073709551615"), None);
        assert_eq!((parse_id(b"17"), parse_id(b""), parse_id(b"1x")), (Some(17), None, None));
    }

    #[test]
    fn the_feed_can_be_built_on_one_thread_and_run_on_another() {
        fn send<T: Send>() {}
        send::<WsFeed>();
    }

    #[test]
    fn reason_codes_are_distinct_and_indexed() {
        let all = [
            DisconnectReason::PeerClosed { code: 1000 },
            DisconnectReason::Eof,
            DisconnectReason::Io(std::io::ErrorKind::ConnectionReset),
            DisconnectReason::Resolve,
            DisconnectReason::Timeout,
            DisconnectReason::Tls,
            DisconnectReason::TlsCertificate,
            DisconnectReason::Handshake(HandshakeError::Status(429)),
            DisconnectReason::Protocol(ProtocolError::MaskedFrame),
            DisconnectReason::Dead,
            DisconnectReason::WriteBacklog,
            DisconnectReason::Planned,
        ];
        assert_eq!(all.len(), DisconnectReason::COUNT);
        for (i, r) in all.iter().enumerate() {
            assert_eq!(r.index(), i);
            assert!(all[..i].iter().all(|o| o.code() != r.code()));
        }
        assert_eq!(ProtocolError::BadClose.index() + 1, ProtocolError::COUNT);
    }
}
