//! One connection's transport: URL parsing, non-blocking TCP (mio), TLS (rustls with the ring
//! provider, Mozilla's roots from `webpki-roots`), and the HTTP/1.1 upgrade handshake (written
//! by hand: a key, a request, and `Sec-WebSocket-Accept` checked with SHA-1 + base64).
//!
//! Hot thread. Allocation: set-up allocates (the TLS session, the request text, name
//! resolution on a helper thread); reading and writing plain TCP never do. Under TLS, rustls
//! 0.23 itself allocates one buffer per TLS record it decrypts or encrypts (its unbuffered API
//! does too; in-place decryption is not released yet) — the only allocation on the wss path.

use super::{DisconnectReason, FeedError, HandshakeError};
use base64::Engine as _;
use mio::net::TcpStream;
use rustls::pki_types::ServerName;
use sha1::{Digest, Sha1};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// A parsed `ws://` or `wss://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WsUrl {
    pub tls: bool,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl WsUrl {
    pub fn parse(url: &str) -> Result<Self, FeedError> {
        let bad = |msg: &str| FeedError::BadUrl { url: url.to_string(), msg: msg.to_string() };
        let (tls, rest) = if let Some(r) = url.strip_prefix("wss://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("ws://") {
            (false, r)
        } else {
            return Err(bad("scheme must be ws:// or wss://"));
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        if authority.contains('@') {
            return Err(bad("user info is not supported"));
        }
        let (host, port) = if let Some(r) = authority.strip_prefix('[') {
            let (h, after) = r.split_once(']').ok_or_else(|| bad("unclosed IPv6 bracket"))?;
            h.parse::<std::net::Ipv6Addr>().map_err(|_| bad("bad IPv6 address"))?;
            (h, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("missing host"));
        }
        let port = match port {
            Some(p) => p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(|| bad("bad port"))?,
            None if tls => 443,
            None => 80,
        };
        if path.bytes().any(|c| c <= b' ' || c == 0x7F) {
            return Err(bad("path has spaces or control characters"));
        }
        Ok(Self { tls, host: host.to_string(), port, path })
    }

    /// The `Host` header value: the port only when not the scheme's default.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        let default = if self.tls { 443 } else { 80 };
        if self.port == default { host } else { format!("{host}:{}", self.port) }
    }

    /// The address when the host is an IP literal (no name resolution needed).
    pub fn ip_addr(&self) -> Option<SocketAddr> {
        self.host.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, self.port))
    }
}

/// The rustls client configuration for `wss://`: the ring provider, TLS 1.2 and 1.3, Mozilla's
/// root certificates, ALPN `http/1.1`.
pub fn default_tls_config() -> Result<Arc<rustls::ClientConfig>, FeedError> {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    tls_config_with_roots(roots)
}

/// As [`default_tls_config`] with other trust anchors (tests: a private CA).
pub fn tls_config_with_roots(roots: rustls::RootCertStore) -> Result<Arc<rustls::ClientConfig>, FeedError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| FeedError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The GUID of RFC 6455 §1.3.
const WS_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`.
pub fn accept_key(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(WS_GUID);
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// A fresh `Sec-WebSocket-Key` (16 bytes, base64) from two random words.
pub fn new_key(a: u64, b: u64) -> String {
    let mut raw = [0u8; 16];
    raw[..8].copy_from_slice(&a.to_le_bytes());
    raw[8..].copy_from_slice(&b.to_le_bytes());
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// The upgrade request. No extensions (no compression) and no subprotocol are offered.
pub fn upgrade_request(url: &WsUrl, key: &str) -> String {
    format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n\
         Sec-WebSocket-Version: 13\r\nUser-Agent: hft-engine\r\n\r\n",
        url.path,
        url.host_header()
    )
}

/// The longest upgrade response head accepted.
pub const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// Checks the server's upgrade response at the start of `buf`. `Ok(None)`: the head is not
/// complete yet; `Ok(Some(n))`: the head is `n` bytes and valid (frames may follow it).
pub fn check_upgrade_response(buf: &[u8], expected_accept: &str) -> Result<Option<usize>, HandshakeError> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_RESPONSE_HEAD { Err(HandshakeError::TooLarge) } else { Ok(None) };
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| HandshakeError::Malformed)?;
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("");
    let mut parts = status.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(HandshakeError::Malformed);
    };
    if !version.starts_with("HTTP/1.") {
        return Err(HandshakeError::Malformed);
    }
    let code: u16 = code.parse().map_err(|_| HandshakeError::Malformed)?;
    if code != 101 {
        return Err(HandshakeError::Status(code));
    }
    let (mut upgrade, mut connection, mut accept) = (false, false, false);
    for line in lines {
        let (name, value) = line.split_once(':').ok_or(HandshakeError::Malformed)?;
        let value = value.trim();
        let has_token = |t: &str| value.split(',').any(|v| v.trim().eq_ignore_ascii_case(t));
        match name.trim() {
            n if n.eq_ignore_ascii_case("upgrade") => upgrade |= has_token("websocket"),
            n if n.eq_ignore_ascii_case("connection") => connection |= has_token("upgrade"),
            n if n.eq_ignore_ascii_case("sec-websocket-accept") => {
                if value != expected_accept {
                    return Err(HandshakeError::BadAccept);
                }
                accept = true;
            }
            n if n.eq_ignore_ascii_case("sec-websocket-extensions") && !value.is_empty() => {
                return Err(HandshakeError::UnrequestedExtension);
            }
            n if n.eq_ignore_ascii_case("sec-websocket-protocol") && !value.is_empty() => {
                return Err(HandshakeError::UnrequestedExtension);
            }
            _ => {}
        }
    }
    if !(upgrade && connection) {
        return Err(HandshakeError::Malformed);
    }
    if !accept {
        return Err(HandshakeError::BadAccept);
    }
    Ok(Some(end + 4))
}

/// What a read produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Got {
    Bytes(usize),
    /// Nothing to read now.
    Nothing,
    /// The peer closed the stream (TCP FIN, or TLS close_notify).
    Closed,
}

fn io_reason(e: &io::Error) -> DisconnectReason {
    DisconnectReason::Io(e.kind())
}

fn tls_reason(e: &rustls::Error) -> DisconnectReason {
    match e {
        rustls::Error::InvalidCertificate(_) => DisconnectReason::TlsCertificate,
        _ => DisconnectReason::Tls,
    }
}

/// Whether a non-blocking connect has finished: `Ok(true)` connected, `Ok(false)` in progress.
pub fn connect_finished(sock: &TcpStream) -> Result<bool, DisconnectReason> {
    if let Some(e) = sock.take_error().map_err(|e| io_reason(&e))? {
        return Err(io_reason(&e));
    }
    match sock.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(io_reason(&e)),
    }
}

/// A connected byte stream, plain or TLS. Every call is non-blocking.
pub enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsTransport>),
}

pub struct TlsTransport {
    sock: TcpStream,
    tls: rustls::ClientConnection,
    /// The peer closed the TCP stream (no more ciphertext will come).
    eof: bool,
}

impl core::fmt::Debug for Transport {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Transport::Plain(s) => f.debug_tuple("Plain").field(&s.peer_addr().ok()).finish(),
            Transport::Tls(t) => f.debug_tuple("Tls").field(&t.sock.peer_addr().ok()).finish(),
        }
    }
}

impl Transport {
    /// Starts TLS over a connected socket.
    pub fn start_tls(
        sock: TcpStream,
        config: Arc<rustls::ClientConfig>,
        host: &str,
    ) -> Result<Transport, DisconnectReason> {
        let name = ServerName::try_from(host.to_string()).map_err(|_| DisconnectReason::Tls)?;
        let tls = rustls::ClientConnection::new(config, name).map_err(|e| tls_reason(&e))?;
        Ok(Transport::Tls(Box::new(TlsTransport { sock, tls, eof: false })))
    }

    /// Advances the TLS handshake (one socket read at most); `Ok(true)` when it is done.
    /// Plain transports have none.
    pub fn handshake(&mut self) -> Result<bool, DisconnectReason> {
        let Transport::Tls(t) = self else { return Ok(true) };
        t.flush_tls()?;
        if !t.tls.is_handshaking() {
            return Ok(true);
        }
        if t.tls.wants_read() {
            match t.tls.read_tls(&mut t.sock) {
                Ok(0) => return Err(DisconnectReason::Eof),
                Ok(_) => {
                    t.tls.process_new_packets().map_err(|e| {
                        // Send the alert rustls queued, best effort.
                        let _ = t.tls.write_tls(&mut t.sock);
                        tls_reason(&e)
                    })?;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_reason(&e)),
            }
            t.flush_tls()?;
        }
        Ok(!t.tls.is_handshaking())
    }

    /// Reads what is available into `buf` (one socket read at most).
    #[inline]
    pub fn read(&mut self, buf: &mut [u8]) -> Result<Got, DisconnectReason> {
        match self {
            Transport::Plain(s) => match s.read(buf) {
                Ok(0) if !buf.is_empty() => Ok(Got::Closed),
                Ok(n) => Ok(Got::Bytes(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {
                    Ok(Got::Nothing)
                }
                Err(e) => Err(io_reason(&e)),
            },
            Transport::Tls(t) => t.read(buf),
        }
    }

    /// Writes as much of `buf` as the socket takes now; returns how much was taken.
    #[inline]
    pub fn write(&mut self, buf: &[u8]) -> Result<usize, DisconnectReason> {
        match self {
            Transport::Plain(s) => match s.write(buf) {
                Ok(n) => Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => Ok(0),
                Err(e) => Err(io_reason(&e)),
            },
            Transport::Tls(t) => {
                let n = t.tls.writer().write(buf).map_err(|e| io_reason(&e))?;
                t.flush_tls()?;
                Ok(n)
            }
        }
    }

    /// Pushes out TLS records rustls holds (alerts, key updates, our data the socket did not
    /// take yet). No-op for plain TCP.
    #[inline]
    pub fn flush(&mut self) -> Result<(), DisconnectReason> {
        match self {
            Transport::Plain(_) => Ok(()),
            Transport::Tls(t) => t.flush_tls(),
        }
    }

    /// Best-effort TLS close_notify before dropping.
    pub fn close(&mut self) {
        if let Transport::Tls(t) = self {
            t.tls.send_close_notify();
            let _ = t.flush_tls();
        }
    }
}

impl TlsTransport {
    fn flush_tls(&mut self) -> Result<(), DisconnectReason> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.sock) {
                Ok(0) => return Err(DisconnectReason::Eof),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_reason(&e)),
            }
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<Got, DisconnectReason> {
        if buf.is_empty() {
            return Ok(Got::Nothing);
        }
        // Plaintext rustls already holds first; then at most one socket read.
        if let Some(got) = self.plaintext(buf)? {
            return Ok(got);
        }
        if self.eof {
            return Ok(Got::Closed);
        }
        match self.tls.read_tls(&mut self.sock) {
            Ok(0) => self.eof = true,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {
                return Ok(Got::Nothing);
            }
            Err(e) => return Err(io_reason(&e)),
        }
        self.tls.process_new_packets().map_err(|e| {
            let _ = self.tls.write_tls(&mut self.sock);
            tls_reason(&e)
        })?;
        // A key update or an alert may want an answer.
        self.flush_tls()?;
        Ok(self.plaintext(buf)?.unwrap_or(if self.eof { Got::Closed } else { Got::Nothing }))
    }

    /// Decrypted bytes rustls holds; `None` when it holds none.
    fn plaintext(&mut self, buf: &mut [u8]) -> Result<Option<Got>, DisconnectReason> {
        match self.tls.reader().read(buf) {
            // close_notify received.
            Ok(0) => Ok(Some(Got::Closed)),
            Ok(n) => Ok(Some(Got::Bytes(n))),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            // TCP closed without close_notify.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Some(Got::Closed)),
            Err(e) => Err(io_reason(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_defaults_and_reject_nonsense() {
        let u = WsUrl::parse("wss://stream.binance.com:9443").unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port, u.path.as_str()), (true, "stream.binance.com", 9443, "/"));
        assert_eq!(u.host_header(), "stream.binance.com:9443");
        let u = WsUrl::parse("wss://ws-api.binance.com:443/ws-api/v3").unwrap();
        assert_eq!((u.port, u.path.as_str(), u.host_header().as_str()), (443, "/ws-api/v3", "ws-api.binance.com"));
        let u = WsUrl::parse("ws://127.0.0.1:8080/stream?streams=a/b").unwrap();
        assert_eq!((u.tls, u.port, u.path.as_str()), (false, 8080, "/stream?streams=a/b"));
        assert_eq!(u.ip_addr(), Some("127.0.0.1:8080".parse().unwrap()));
        let u = WsUrl::parse("ws://[::1]:9000?x=1").unwrap();
        assert_eq!((u.host.as_str(), u.path.as_str(), u.host_header().as_str()), ("::1", "/?x=1", "[::1]:9000"));
        assert!(u.ip_addr().is_some());
        let u = WsUrl::parse("ws://example.com").unwrap();
        assert_eq!((u.port, u.ip_addr()), (80, None));
        for bad in ["http://x", "ws://", "ws://:80", "ws://h:0", "ws://h:99999", "ws://[::1", "ws://u@h", "ws://h/a b"]
        {
            assert!(WsUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_rfc_accept_example() {
        assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(new_key(1, 2).len(), 24);
        assert_ne!(new_key(1, 2), new_key(1, 3));
    }

    #[test]
    fn upgrade_responses_are_checked() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let accept = accept_key(key);
        let mut ok = format!(
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .into_bytes();
        ok.extend_from_slice(b"\x81\x02hi");
        let n = check_upgrade_response(&ok, &accept).unwrap().unwrap();
        assert_eq!(&ok[n..], b"\x81\x02hi");
        assert_eq!(check_upgrade_response(&ok[..40], &accept), Ok(None));
        let cases = [
            ("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 5\r\n\r\n".to_string(), HandshakeError::Status(429)),
            ("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n".into(), HandshakeError::BadAccept),
            (
                "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAA\r\n\r\n"
                    .into(),
                HandshakeError::BadAccept,
            ),
            (
                format!(
                    "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\
                     Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
                ),
                HandshakeError::UnrequestedExtension,
            ),
            (format!("HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"), HandshakeError::Malformed),
            ("SSH-2.0-OpenSSH\r\n\r\n".into(), HandshakeError::Malformed),
        ];
        for (resp, want) in cases {
            assert_eq!(check_upgrade_response(resp.as_bytes(), &accept), Err(want), "{resp}");
        }
        assert_eq!(check_upgrade_response(&vec![b'x'; MAX_RESPONSE_HEAD + 1], &accept), Err(HandshakeError::TooLarge));
    }

    #[test]
    fn requests_name_the_path_and_host() {
        let u = WsUrl::parse("ws://127.0.0.1:9/stream?streams=btcusdt@trade").unwrap();
        let r = upgrade_request(&u, "k");
        assert!(r.starts_with("GET /stream?streams=btcusdt@trade HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"), "{r}");
        assert!(r.contains("Sec-WebSocket-Key: k\r\n") && r.ends_with("\r\n\r\n"));
    }

    #[test]
    fn a_wss_url_builds_a_rustls_client_config() {
        let u = WsUrl::parse("wss://stream.binance.com:9443/stream?streams=btcusdt@trade").unwrap();
        assert!(u.tls);
        let cfg = default_tls_config().unwrap();
        assert_eq!(cfg.alpn_protocols, vec![b"http/1.1".to_vec()]);
        // A session for the host can be started (no I/O happens until driven).
        let name = ServerName::try_from(u.host.clone()).unwrap();
        let conn = rustls::ClientConnection::new(cfg, name).unwrap();
        assert!(conn.is_handshaking() && conn.wants_write());
    }
}
