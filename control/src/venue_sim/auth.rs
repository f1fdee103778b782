//! Binance's request security for the simulator's signed WS-API methods: an API key, a
//! `timestamp` within `recvWindow`, and `signature` = HMAC-SHA256 (hex, either case) with the
//! secret key over every parameter but `signature`, sorted by name, written `name=value` and
//! joined with `&` — values exactly as sent (a string's contents, a number's literal).
//!
//! Checks, in order, each with Binance's code: `apiKey` present (-1102), well formed (-2014),
//! the simulator's (-2015); `timestamp` (ms, or µs when ≥ 10^14) present (-1102); `recvWindow`
//! at most 60000 (-1131); the timestamp not more than 1000 ms ahead of the server's clock nor
//! older than `recvWindow` (-1021); `signature` present (-1102) and right (-1022).
//!
//! Runs on WS-API connection tasks; allocates the payload string.

use super::api::{BinanceError, Params};
use axum::http::StatusCode;
use hft_shared::config::Secret;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Binance's documented example key pair (public, for tests): the simulator's credentials
/// when none are configured.
pub const TEST_API_KEY: &str = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
pub const TEST_API_SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";

/// `recvWindow` when none is sent, and its largest value, ms.
pub const DEFAULT_RECV_WINDOW_MS: u64 = 5000;
pub const MAX_RECV_WINDOW_MS: u64 = 60_000;
/// How far a timestamp may be ahead of the server's clock, ms.
pub const MAX_AHEAD_MS: u64 = 1000;
/// Longest API key accepted as well formed (Binance's are 64 characters).
const MAX_KEY_LEN: usize = 128;

/// The account's API key and secret. `Debug` never shows the secret.
#[derive(Clone, Debug)]
pub struct Credentials {
    key: String,
    secret: Secret,
}

impl Credentials {
    /// `None` when the key is not 1–128 ASCII letters and digits.
    pub fn new(key: String, secret: Secret) -> Option<Self> {
        well_formed(&key).then_some(Self { key, secret })
    }

    /// Binance's documented example pair.
    pub fn test() -> Self {
        Self { key: TEST_API_KEY.into(), secret: Secret::new(TEST_API_SECRET.into()) }
    }

    /// Checks a signed request's key, timing and signature against the server's clock
    /// (`now_ms`, Unix ms).
    pub fn verify(&self, p: &Params, now_ms: u64) -> Result<(), BinanceError> {
        let key = p.text("apiKey").ok_or_else(|| BinanceError::mandatory("apiKey"))?;
        if !well_formed(&key) {
            return Err(BinanceError {
                status: StatusCode::UNAUTHORIZED,
                code: -2014,
                msg: "API-key format invalid.".into(),
            });
        }
        if *key != *self.key {
            return Err(BinanceError {
                status: StatusCode::UNAUTHORIZED,
                code: -2015,
                msg: "Invalid API-key, IP, or permissions for action.".into(),
            });
        }
        let ts = p.text("timestamp").ok_or_else(|| BinanceError::mandatory("timestamp"))?;
        let ts: u64 = ts.parse().map_err(|_| BinanceError::illegal("timestamp", "^[0-9]{1,20}$"))?;
        // Microseconds are accepted too (Binance: "milliseconds or microseconds").
        let ts_ms = if ts >= 100_000_000_000_000 { ts / 1000 } else { ts };
        let window = match p.text("recvWindow") {
            None => DEFAULT_RECV_WINDOW_MS,
            Some(w) => w.parse::<u64>().map_err(|_| BinanceError::illegal("recvWindow", "^[0-9]{1,20}$"))?,
        };
        if window > MAX_RECV_WINDOW_MS {
            return Err(BinanceError::bad(-1131, "recvWindow must be less than 60000"));
        }
        if ts_ms >= now_ms + MAX_AHEAD_MS {
            return Err(BinanceError::bad(-1021, "Timestamp for this request was 1000ms ahead of the server's time."));
        }
        if now_ms.saturating_sub(ts_ms) > window {
            return Err(BinanceError::bad(-1021, "Timestamp for this request is outside of the recvWindow."));
        }
        let sig = p.text("signature").ok_or_else(|| BinanceError::mandatory("signature"))?;
        let invalid = || BinanceError::bad(-1022, "Signature for this request is not valid.");
        let sig = from_hex(&sig).ok_or_else(invalid)?;
        // Constant time.
        mac(self.secret.expose(), &payload(p)).verify_slice(&sig).map_err(|_| invalid())
    }
}

fn well_formed(key: &str) -> bool {
    (1..=MAX_KEY_LEN).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The signature payload of a request: every parameter but `signature`, sorted by name,
/// `name=value` joined with `&`.
pub fn payload(p: &Params) -> String {
    let mut out = String::with_capacity(256);
    for (name, value) in p.iter_text().filter(|(n, _)| *n != "signature") {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(&value);
    }
    out
}

/// The HMAC-SHA256 state of `payload` keyed with `secret`.
fn mac(secret: &str, payload: &str) -> Hmac<Sha256> {
    // HMAC accepts a key of any length: this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(payload.as_bytes());
    mac
}

/// HMAC-SHA256 of `payload` with `secret`, lower-case hex (what a client sends).
#[cfg(test)]
pub fn sign(secret: &str, payload: &str) -> String {
    let mut hex = String::with_capacity(64);
    for b in mac(secret, payload).finalize().into_bytes() {
        hex.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    hex
}

/// Hex (either case) to bytes.
fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 128 {
        return None;
    }
    let nib = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    s.as_bytes().chunks(2).map(|p| Some(nib(p[0])? << 4 | nib(p[1])?)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(json: &str) -> Params {
        let raw = serde_json::from_str::<Box<serde_json::value::RawValue>>(json).expect("JSON");
        Params::parse(Some(&raw)).expect("an object")
    }

    #[test]
    fn binance_documented_signature_vectors() {
        // The REST example of Binance's "SIGNED endpoint examples".
        assert_eq!(
            sign(
                TEST_API_SECRET,
                "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
            ),
            "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
        );
        // The WS-API example: parameters sorted by name, numbers as sent.
        let p = params(
            r#"{"symbol":"BTCUSDT","side":"SELL","type":"LIMIT","timeInForce":"GTC","quantity":"0.01000000",
                "price":"52000.00","newOrderRespType":"ACK","recvWindow":100,"timestamp":1645423376532,
                "apiKey":"vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A","signature":"x"}"#,
        );
        let payload = payload(&p);
        assert_eq!(
            payload,
            "apiKey=vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A&newOrderRespType=ACK&price=52000.00&quantity=0.01000000&recvWindow=100&side=SELL&symbol=BTCUSDT&timeInForce=GTC&timestamp=1645423376532&type=LIMIT"
        );
        assert_eq!(sign(TEST_API_SECRET, &payload), "cc15477742bd704c29492d96c7ead9414dfd8e0ec4a00f947bb5bb454ddbd08a");
    }

    /// A request signed with `secret` at `ts`, plus `extra` fields.
    fn signed(key: &str, secret: &str, ts: u64, extra: &str) -> Params {
        let unsigned = format!(r#"{{"apiKey":"{key}","timestamp":{ts}{extra}}}"#);
        let sig = sign(secret, &payload(&params(&unsigned)));
        params(&format!(r#"{{"apiKey":"{key}","timestamp":{ts}{extra},"signature":"{sig}"}}"#))
    }

    fn code(r: Result<(), BinanceError>) -> i32 {
        r.map_or_else(|e| e.code, |()| 0)
    }

    #[test]
    fn keys_timing_and_signatures_are_checked_with_binance_codes() {
        let c = Credentials::test();
        let now = 1_700_000_000_000;
        let ok = |ts, extra| code(c.verify(&signed(TEST_API_KEY, TEST_API_SECRET, ts, extra), now));
        assert_eq!(ok(now, ""), 0);
        assert_eq!(ok(now, r#","symbol":"BTCUSDT","quantity":0.10"#), 0, "a number's literal is signed as sent");
        assert_eq!(ok(now * 1000, ""), 0, "microseconds");
        assert_eq!(ok(now - 5000, ""), 0);
        assert_eq!(ok(now - 5001, ""), -1021);
        assert_eq!(ok(now - 20_000, r#","recvWindow":30000"#), 0);
        assert_eq!(ok(now, r#","recvWindow":60001"#), -1131);
        assert_eq!(ok(now + 999, ""), 0);
        assert_eq!(ok(now + 1000, ""), -1021);
        assert_eq!(code(c.verify(&signed(TEST_API_KEY, "other-secret", now, ""), now)), -1022);
        assert_eq!(code(c.verify(&signed("UnknownKey123", TEST_API_SECRET, now, ""), now)), -2015);
        assert_eq!(code(c.verify(&signed("bad key!", TEST_API_SECRET, now, ""), now)), -2014);
        // A parameter changed after signing.
        let good = signed(TEST_API_KEY, TEST_API_SECRET, now, r#","symbol":"BTCUSDT""#);
        let sig = good.text("signature").expect("signed").into_owned();
        let tampered = params(&format!(
            r#"{{"apiKey":"{TEST_API_KEY}","timestamp":{now},"symbol":"ETHUSDT","signature":"{sig}"}}"#
        ));
        assert_eq!(code(c.verify(&tampered, now)), -1022);
        let upper = params(&format!(
            r#"{{"apiKey":"{TEST_API_KEY}","timestamp":{now},"symbol":"BTCUSDT","signature":"{}"}}"#,
            sig.to_ascii_uppercase()
        ));
        assert_eq!(code(c.verify(&upper, now)), 0, "hex is case-insensitive");
        for (json, want) in [
            (format!(r#"{{"timestamp":{now},"signature":"00"}}"#), -1102),
            (format!(r#"{{"apiKey":"{TEST_API_KEY}","signature":"00"}}"#), -1102),
            (format!(r#"{{"apiKey":"{TEST_API_KEY}","timestamp":{now}}}"#), -1102),
            (format!(r#"{{"apiKey":"{TEST_API_KEY}","timestamp":{now},"signature":"zz"}}"#), -1022),
            (format!(r#"{{"apiKey":"{TEST_API_KEY}","timestamp":"soon","signature":"00"}}"#), -1100),
        ] {
            assert_eq!(code(c.verify(&params(&json), now)), want, "{json}");
        }
        assert!(Credentials::new("has space".into(), Secret::new("s".into())).is_none());
        assert!(!format!("{c:?}").contains(TEST_API_SECRET), "Debug hides the secret");
    }
}
