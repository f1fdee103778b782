//! `GET /config`: the effective configuration (defaults ← file ← environment) as JSON, with every
//! secret redacted.
//!
//! The JSON is built once at start ([`effective`], stored in the replica), and the API token is
//! scrubbed from it per request ([`config`]); runs on the tokio runtime, allocates per request.
//!
//! Redaction, in three layers: the secrets the config holds (`EXCHANGE_API_KEY`,
//! `EXCHANGE_API_SECRET`, never serialized by `Config`) and the API token are listed as `"***"`
//! when set and `null` when unset; any key whose name looks secret-like is redacted the same way
//! whatever its value; and any string (or number) that contains one of the secret values, or a
//! URL with credentials in it, is replaced by `"***"` wherever it appears.

use super::AppState;
use crate::state;
use axum::Json;
use axum::extract::State;
use hft_shared::config::Config;
use serde_json::{Map, Value};

/// What a redacted secret reads as.
pub const REDACTED: &str = "***";

/// Key names (lower case, substrings) whose values are never served.
const SECRET_WORDS: &[&str] =
    &["secret", "token", "password", "passwd", "passphrase", "api_key", "apikey", "private", "credential"];

/// `GET /config`.
pub async fn config(State(app): State<AppState>) -> Json<Value> {
    let mut v = state::read(&app.replica).config.clone();
    if let Some(api) = v.get_mut("api").and_then(Value::as_object_mut) {
        api.insert("token".into(), redacted_if(!app.token.is_empty()));
    }
    scrub(&mut v, &[&app.token]);
    Json(v)
}

/// The configuration as served: `Config`'s own serialization (which leaves secrets out) plus a
/// `secrets` object saying which ones are set, redacted throughout.
pub fn effective(cfg: &Config) -> Value {
    let mut v = serde_json::to_value(cfg).unwrap_or_else(|e| {
        // Plain data with string keys: cannot fail; say so rather than serve half a config.
        tracing::error!("cannot serialize the configuration: {e}");
        Value::Null
    });
    if let Some(root) = v.as_object_mut() {
        let mut secrets = Map::new();
        secrets.insert("exchange_api_key".into(), redacted_if(cfg.secrets.api_key.is_some()));
        secrets.insert("exchange_api_secret".into(), redacted_if(cfg.secrets.api_secret.is_some()));
        root.insert("secrets".into(), Value::Object(secrets));
    }
    let values: Vec<&str> =
        [&cfg.secrets.api_key, &cfg.secrets.api_secret].into_iter().flatten().map(|s| s.expose()).collect();
    scrub(&mut v, &values);
    v
}

fn redacted_if(set: bool) -> Value {
    if set { Value::String(REDACTED.into()) } else { Value::Null }
}

/// Redacts, in place: every value under a secret-like key (`null` stays `null`, objects and
/// arrays keep their shape), strings and numbers containing any of `secrets` (empty ones are
/// ignored), and URL credentials.
pub fn scrub(v: &mut Value, secrets: &[&str]) {
    let leaks = |text: &str| secrets.iter().any(|s| !s.is_empty() && text.contains(s));
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                if is_secret_key(k) {
                    redact_all(child);
                } else {
                    scrub(child, secrets);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|c| scrub(c, secrets)),
        Value::String(s) => {
            if leaks(s) {
                *s = REDACTED.into();
            } else if let Some(clean) = without_url_credentials(s) {
                *s = clean;
            }
        }
        Value::Number(n) => {
            if leaks(&n.to_string()) {
                *v = Value::String(REDACTED.into());
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
}

/// Every value under `v` (structure kept, `null` kept) becomes `"***"`.
fn redact_all(v: &mut Value) {
    match v {
        Value::Object(m) => m.values_mut().for_each(redact_all),
        Value::Array(a) => a.iter_mut().for_each(redact_all),
        Value::Null => {}
        _ => *v = Value::String(REDACTED.into()),
    }
}

fn is_secret_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| k.contains(w))
}

/// `scheme://user:pass@host/…` → `scheme://***@host/…`; `None` when there are no credentials.
fn without_url_credentials(s: &str) -> Option<String> {
    let start = s.find("://")? + 3;
    let rest = &s[start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..authority_end].rfind('@')?;
    Some(format!("{}{REDACTED}{}", &s[..start], &rest[at..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg_toml(toml: &str, env: &[(&str, &str)]) -> Config {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_toml_str(toml, &move |k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())).expect("config")
    }

    fn cfg(env: &[(&str, &str)]) -> Config {
        cfg_toml("", env)
    }

    #[test]
    fn exchange_secrets_are_listed_redacted_and_never_shown() {
        let c = cfg(&[("EXCHANGE_API_KEY", "KEY-abc123"), ("EXCHANGE_API_SECRET", "SECRET-xyz789")]);
        let v = effective(&c);
        assert_eq!(v["secrets"], serde_json::json!({"exchange_api_key": "***", "exchange_api_secret": "***"}));
        let text = v.to_string();
        assert!(!text.contains("KEY-abc123") && !text.contains("SECRET-xyz789"), "{text}");
        // Everything else is there, as configured.
        assert_eq!(v["mode"], "paper");
        assert_eq!(v["risk"]["max_open_orders"], c.risk.max_open_orders);
        assert_eq!(v["strategies"]["momentum"]["weight"], c.strategies.momentum.weight);

        let v = effective(&cfg(&[]));
        assert_eq!(v["secrets"], serde_json::json!({"exchange_api_key": null, "exchange_api_secret": null}));
    }

    #[test]
    fn a_secret_embedded_anywhere_is_redacted() {
        let c = cfg_toml("[feed]\nurl = 'wss://h.example/?k=KEY-abc123'\n", &[("EXCHANGE_API_KEY", "KEY-abc123")]);
        let v = effective(&c);
        assert_eq!(v["feed"]["url"], "***");
        let mut v = serde_json::json!({"a": ["x tok-1 y", "fine"], "n": 80081, "b": {"nested": "tok-1"}});
        scrub(&mut v, &["tok-1", "8008", ""]);
        assert_eq!(v, serde_json::json!({"a": ["***", "fine"], "n": "***", "b": {"nested": "***"}}));
    }

    #[test]
    fn secret_like_keys_and_url_credentials_are_redacted() {
        let mut v = serde_json::json!({
            "Api_Key": "k", "client_secret": 5, "token": null, "password": ["p", null], "keyboard": "ok",
            "private": {"a": {"b": true}, "c": null},
            "url": "wss://user:pw@host:9443/stream?x=1", "plain": "https://host/path@x", "confirm": "yes"
        });
        scrub(&mut v, &[]);
        assert_eq!(
            v,
            serde_json::json!({
                "Api_Key": "***", "client_secret": "***", "token": null, "password": ["***", null], "keyboard": "ok",
                "private": {"a": {"b": "***"}, "c": null},
                "url": "wss://***@host:9443/stream?x=1", "plain": "https://host/path@x", "confirm": "yes"
            })
        );
    }
}
