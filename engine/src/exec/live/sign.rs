//! Request signing: HMAC-SHA256 of the parameter string with the API secret, as 64 lower-case
//! hex digits (Binance's `signature`).
//!
//! Hot thread (every signed request). Allocation-free: the secret is absorbed into an HMAC
//! state once, at construction; each signature clones that state (a few hundred bytes on the
//! stack), feeds it the payload and writes the hex into the caller's buffer.
//!
//! Secrets: [`Signer`] and [`Credentials`] hold the secret (as keyed HMAC state) and the API key;
//! their `Debug` prints neither, and there is no other way to read them back except
//! `Credentials::api_key` (crate-private), which the request encoder writes into requests.

use hft_shared::config::Secret;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Length of a signature, hex digits.
pub const SIGNATURE_LEN: usize = 64;

/// HMAC-SHA256 keyed with the API secret.
#[derive(Clone)]
pub struct Signer {
    keyed: HmacSha256,
}

impl core::fmt::Debug for Signer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Signer(***)")
    }
}

impl Signer {
    pub fn new(secret: &[u8]) -> Self {
        // HMAC accepts keys of any length (long ones are hashed first): this cannot fail.
        let keyed = <HmacSha256 as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
        Self { keyed }
    }

    /// Starts a signature to be fed piecewise (the request encoder writes the JSON and the
    /// signature payload in one pass).
    #[inline]
    pub fn start(&self) -> Signing {
        Signing(self.keyed.clone())
    }

    /// The hex signature of `payload` into `out`.
    #[inline]
    pub fn sign(&self, payload: &[u8], out: &mut [u8; SIGNATURE_LEN]) {
        let mut s = self.start();
        s.update(payload);
        s.finish(out);
    }
}

/// A signature in progress.
pub struct Signing(HmacSha256);

impl core::fmt::Debug for Signing {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Signing(***)")
    }
}

impl Signing {
    #[inline]
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// Writes the signature as lower-case hex.
    #[inline]
    pub fn finish(self, out: &mut [u8; SIGNATURE_LEN]) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mac = self.0.finalize().into_bytes();
        for (pair, b) in out.chunks_exact_mut(2).zip(mac.iter()) {
            pair[0] = HEX[usize::from(b >> 4)];
            pair[1] = HEX[usize::from(b & 0x0F)];
        }
    }
}

/// Why credentials were refused. Never carries the values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    #[error("EXCHANGE_API_KEY must be 1 to 128 ASCII letters and digits")]
    BadApiKey,
    #[error("EXCHANGE_API_SECRET must not be empty")]
    EmptySecret,
}

/// The API key (sent in clear in every signed request, as Binance requires) and the signer.
#[derive(Clone)]
pub struct Credentials {
    api_key: Box<str>,
    signer: Signer,
}

impl core::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Credentials(***)")
    }
}

impl Credentials {
    /// The key must be ASCII letters and digits (Binance's keys are 64 of them), which also
    /// makes it safe to write into JSON unescaped.
    pub fn new(api_key: &Secret, api_secret: &Secret) -> Result<Self, CredentialsError> {
        let key = api_key.expose();
        if key.is_empty() || key.len() > 128 || !key.bytes().all(|c| c.is_ascii_alphanumeric()) {
            return Err(CredentialsError::BadApiKey);
        }
        if api_secret.expose().is_empty() {
            return Err(CredentialsError::EmptySecret);
        }
        Ok(Self { api_key: key.into(), signer: Signer::new(api_secret.expose().as_bytes()) })
    }

    /// For the request encoder only.
    #[inline]
    pub(crate) fn api_key(&self) -> &[u8] {
        self.api_key.as_bytes()
    }

    #[inline]
    pub fn signer(&self) -> &Signer {
        &self.signer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";

    fn hex(s: &Signer, payload: &[u8]) -> String {
        let mut out = [0u8; SIGNATURE_LEN];
        s.sign(payload, &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn binance_documented_signature() {
        let s = Signer::new(SECRET.as_bytes());
        assert_eq!(
            hex(
                &s,
                b"symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
            ),
            "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
        );
    }

    #[test]
    fn binance_ws_api_example_sorted_payload() {
        // The WS-API documentation's example: the params sorted by name, `signature` excluded.
        let s = Signer::new(SECRET.as_bytes());
        assert_eq!(
            hex(
                &s,
                b"apiKey=vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A&newOrderRespType=ACK\
                  &price=52000.00&quantity=0.01000000&recvWindow=100&side=SELL&symbol=BTCUSDT&timeInForce=GTC\
                  &timestamp=1645423376532&type=LIMIT"
            ),
            "cc15477742bd704c29492d96c7ead9414dfd8e0ec4a00f947bb5bb454ddbd08a"
        );
    }

    #[test]
    fn piecewise_equals_whole_and_state_is_reused() {
        let s = Signer::new(b"k");
        let mut a = [0u8; SIGNATURE_LEN];
        let mut p = s.start();
        p.update(b"a=1&");
        p.update(b"b=2");
        p.finish(&mut a);
        assert_eq!(String::from_utf8(a.to_vec()).unwrap(), hex(&s, b"a=1&b=2"));
        // The keyed state is not consumed by signing.
        assert_eq!(hex(&s, b"a=1&b=2"), hex(&s, b"a=1&b=2"));
        assert_ne!(hex(&s, b"a=1&b=2"), hex(&s, b"a=1&b=3"));
    }

    #[test]
    fn credentials_never_show_their_values() {
        let c = Credentials::new(&Secret::new("KEY123".into()), &Secret::new("topsecret".into())).unwrap();
        let dbg = format!("{c:?} {:?} {:?}", c.signer(), c.signer().start());
        assert!(!dbg.contains("KEY123") && !dbg.contains("topsecret"), "{dbg}");
        assert_eq!(c.api_key(), b"KEY123");
        let e = Credentials::new(&Secret::new("bad key\"".into()), &Secret::new("s".into())).unwrap_err();
        assert_eq!(e, CredentialsError::BadApiKey);
        assert!(!e.to_string().contains("bad key"));
        let e = Credentials::new(&Secret::new("K".into()), &Secret::new(String::new())).unwrap_err();
        assert_eq!(e, CredentialsError::EmptySecret);
    }
}
