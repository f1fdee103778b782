//! Live orders over Binance's WebSocket API, from the hot thread, without blocking.
//!
//! The pipeline, in data-flow order: [`request`] writes signed WS-API requests ([`sign`]) into
//! preallocated buffers; `link` carries them over one non-blocking WebSocket (the transport,
//! framing and backoff of [`crate::feed::ws`]); [`response`] decodes what comes back — answers
//! to our requests and the user-data events pushed on the same connection; [`gateway`] ties them
//! together ([`LiveGateway`]: connect → subscribe user data → reconcile → ready; place, cancel,
//! rate limits, reconnect).
//!
//! Thread: the hot thread. Allocation: construction allocates every buffer; sending an order,
//! a cancel, and decoding acks, errors and execution reports allocate nothing after warm-up over
//! `ws://` (over `wss://`, rustls allocates per TLS record, as for the feed). Connection set-up
//! and the rare answers larger than the decoder's start-up size (reconciliation lists) may
//! allocate; neither is on the order-sending path.
//!
//! Secrets: the API key and secret enter through [`LiveGateway::new`] and live only in
//! [`sign::Credentials`], whose `Debug` is redacted; nothing here logs or formats them.

pub mod gateway;
mod link;
pub mod request;
pub mod response;
pub mod sign;

pub use gateway::{DownReason, GatewayEvent, LiveCounters, LiveError, LiveGateway, LiveParams, NewOrder, SendError};
pub use request::RespType;
pub use response::{
    Balance, ExecType, ExecutionReport, LimitInterval, LimitKind, OrderSnapshot, RateLimitUsage, VenueError,
};
pub use sign::{Credentials, Signer};

use core::fmt;

/// A client order id (`newClientOrderId`): 1 to 36 characters of `[.A-Z:/a-z0-9_-]`, Binance's
/// rule. Stored inline; `Copy`. Every id the engine sends is one of these, so request JSON
/// never needs escaping.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientId {
    len: u8,
    bytes: [u8; ClientId::MAX],
}

impl ClientId {
    pub const MAX: usize = 36;
    /// The empty id (no order: a `cancel_all`, or a venue field that was absent).
    pub const NONE: ClientId = ClientId { len: 0, bytes: [0; ClientId::MAX] };

    /// `None` when `s` is empty, longer than 36 bytes, or has a character Binance refuses.
    pub fn new(s: &[u8]) -> Option<Self> {
        if s.is_empty() || !s.iter().all(|&c| Self::allowed(c)) {
            return None;
        }
        Self::from_venue(s)
    }

    /// `prefix` followed by `n` in decimal (`"h7-"`, 42 → `h7-42`): ids from the engine's dense
    /// `OrderId`s without allocating. `None` when the result breaks [`ClientId::new`]'s rule.
    pub fn numbered(prefix: &str, n: u64) -> Option<Self> {
        let mut digits = itoa::Buffer::new();
        let d = digits.format(n).as_bytes();
        let p = prefix.as_bytes();
        if p.len() + d.len() > Self::MAX {
            return None;
        }
        let mut buf = [0u8; Self::MAX];
        buf[..p.len()].copy_from_slice(p);
        buf[p.len()..p.len() + d.len()].copy_from_slice(d);
        Self::new(&buf[..p.len() + d.len()])
    }

    /// An id as the venue reported it: any bytes up to 36 (we compare, never send, these).
    pub(crate) fn from_venue(s: &[u8]) -> Option<Self> {
        if s.len() > Self::MAX {
            return None;
        }
        let mut bytes = [0u8; Self::MAX];
        bytes[..s.len()].copy_from_slice(s);
        Some(Self { len: s.len() as u8, bytes })
    }

    #[inline]
    const fn allowed(c: u8) -> bool {
        c.is_ascii_alphanumeric() || matches!(c, b'.' | b':' | b'/' | b'_' | b'-')
    }

    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The id as text (venue-reported ids that are not UTF-8 read as empty).
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientId({:?})", self.as_str())
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A short name from the venue — a symbol (`BTCUSDT`) or an asset (`USDT`): up to 32 bytes,
/// stored inline. Longer names do not fit and are reported as decode errors or skipped.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Sym {
    len: u8,
    bytes: [u8; Sym::MAX],
}

impl Sym {
    pub const MAX: usize = 32;

    pub fn new(s: &[u8]) -> Option<Self> {
        if s.len() > Self::MAX {
            return None;
        }
        let mut bytes = [0u8; Self::MAX];
        bytes[..s.len()].copy_from_slice(s);
        Some(Self { len: s.len() as u8, bytes })
    }

    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for Sym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for Sym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The WS-API methods the gateway sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// `userDataStream.subscribe.signature`.
    Subscribe,
    /// `openOrders.status` for one symbol (reconciliation).
    OpenOrders,
    /// `account.status` (reconciliation: balances).
    Account,
    /// `order.status` of one order (reconciliation of an order whose answer was lost).
    Query,
    /// `order.place`.
    Place,
    /// `order.cancel`.
    Cancel,
    /// `openOrders.cancelAll` for one symbol.
    CancelAll,
}

impl RequestKind {
    pub const fn method(self) -> &'static str {
        match self {
            RequestKind::Subscribe => "userDataStream.subscribe.signature",
            RequestKind::OpenOrders => "openOrders.status",
            RequestKind::Account => "account.status",
            RequestKind::Query => "order.status",
            RequestKind::Place => "order.place",
            RequestKind::Cancel => "order.cancel",
            RequestKind::CancelAll => "openOrders.cancelAll",
        }
    }

    pub const COUNT: usize = 7;

    /// Dense index, in declaration order (for per-kind counters).
    pub const fn index(self) -> usize {
        match self {
            RequestKind::Subscribe => 0,
            RequestKind::OpenOrders => 1,
            RequestKind::Account => 2,
            RequestKind::Query => 3,
            RequestKind::Place => 4,
            RequestKind::Cancel => 5,
            RequestKind::CancelAll => 6,
        }
    }

    /// Request weight as Binance documents it (spot WS-API, single symbol). Only used to count
    /// usage between venue reports; every answer's `rateLimits` replaces the estimate.
    pub const fn weight(self) -> u32 {
        match self {
            RequestKind::Subscribe => 2,
            RequestKind::OpenOrders => 6,
            RequestKind::Account => 20,
            RequestKind::Query => 4,
            RequestKind::Place | RequestKind::Cancel | RequestKind::CancelAll => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_follow_binance_rule() {
        assert_eq!(ClientId::new(b"h-1.a:b/c_D").unwrap().as_str(), "h-1.a:b/c_D");
        assert!(ClientId::new(&[b'x'; 36]).is_some());
        for bad in [&b""[..], &[b'x'; 37], b"a b", b"a\"b", b"a\\b", "é".as_bytes()] {
            assert!(ClientId::new(bad).is_none(), "{bad:?}");
        }
        assert_eq!(ClientId::numbered("hft-", 42).unwrap().as_str(), "hft-42");
        assert_eq!(ClientId::numbered("", u64::MAX).unwrap().as_str(), "18446744073709551615");
        assert!(ClientId::numbered(&"p".repeat(30), u64::MAX).is_none());
        assert!(ClientId::numbered("a b", 1).is_none());
        assert!(ClientId::NONE.is_empty());
        assert_eq!(format!("{:?}", ClientId::new(b"x1").unwrap()), "ClientId(\"x1\")");
    }

    #[test]
    fn syms_hold_up_to_32_bytes() {
        assert_eq!(Sym::new(b"BTCUSDT").unwrap().as_str(), "BTCUSDT");
        assert!(Sym::new(&[b'A'; 32]).is_some() && Sym::new(&[b'A'; 33]).is_none());
        assert!(Sym::default().is_empty());
    }
}
