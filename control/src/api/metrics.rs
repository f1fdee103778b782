//! `GET /metrics`: the replica in the Prometheus text exposition format 0.0.4.
//!
//! Runs on the tokio runtime; renders one string under the replica's read lock (a few KB per
//! scrape). Every family is `hft_*` with HELP and TYPE lines; label values are escaped (`\`,
//! `"`, newline). Counters are the control plane's exact counts where it has them (orders,
//! fills, refusals: counted from the audit events) and the engine's latest stats snapshot
//! otherwise. Money is in quote currency and quantities in base currency, as floats (Prometheus
//! has no decimals; the JSON endpoints serve the exact values). Families whose value is not known
//! yet (equity before the first risk snapshot, heartbeat age before the first heartbeat) have no
//! sample.

use super::AppState;
use super::ws::Hub;
use crate::state::{self, Replica, feed_name};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::{Extension, http::HeaderValue};
use hft_shared::msg::{FeedState, RejectReason, Stage};
use hft_shared::{Amount, StrategyKind};
use std::fmt::Write;
use std::sync::Arc;
use std::time::Instant;

/// The exposition format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

const FEED_STATES: [FeedState; 5] =
    [FeedState::Connecting, FeedState::Live, FeedState::Stale, FeedState::Resyncing, FeedState::Down];

/// `GET /metrics`.
pub async fn metrics(State(app): State<AppState>, Extension(hub): Extension<Arc<Hub>>) -> impl IntoResponse {
    let text = render(&state::read(&app.replica), hub.clients(), Instant::now());
    ([(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))], text)
}

/// Writes metric families: each opened with [`Out::family`], then its samples.
struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", escape_label(v));
            }
            self.0.push('}');
        }
        self.0.push(' ');
        self.0.push_str(&number(value));
        self.0.push('\n');
    }

    /// A family with one unlabelled sample.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// A label value as the format wants it: backslash, double quote and line feed escaped.
pub fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A sample value: Go's float spellings for the special values.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        v.to_string()
    }
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// Amounts as floats for the exposition (1e-16 resolution is beyond what a float holds anyway).
fn amount(a: Amount) -> f64 {
    a.to_f64()
}

/// The whole exposition.
pub fn render(r: &Replica, ws_clients: usize, now: Instant) -> String {
    let mut o = Out(String::with_capacity(8192));
    let snap = r.stats.unwrap_or_default();

    // Counters.
    o.single("hft_frames_total", "counter", "Market-data frames received by the engine.", snap.frames as f64);
    o.single("hft_decode_errors_total", "counter", "Frames that failed to decode.", snap.decode_errors as f64);
    o.single("hft_signals_total", "counter", "Strategy signals computed.", snap.signals as f64);
    o.single("hft_orders_total", "counter", "Orders sent (counted from the engine's order events).", r.orders as f64);
    o.single("hft_fills_total", "counter", "Fills (counted from the engine's fill events).", r.fills as f64);
    o.family("hft_rejects_total", "counter", "Orders refused by the risk manager, by reason.");
    for k in RejectReason::ALL {
        o.sample("hft_rejects_total", &[("reason", k.code())], r.rejects_by_reason[k.index()] as f64);
    }
    o.single("hft_book_gaps_total", "counter", "Sequence gaps that invalidated a book.", snap.book_gaps as f64);
    o.single(
        "hft_unpriced_fees_total",
        "counter",
        "Live fills whose commission was in an asset neither the symbol's base nor its quote (BNB): not in the PnL.",
        snap.unpriced_fees as f64,
    );
    o.family(
        "hft_ring_drops_total",
        "counter",
        "Engine events that did not go through the event ring at once, by kind.",
    );
    o.sample("hft_ring_drops_total", &[("kind", "telemetry_dropped")], snap.telemetry_dropped as f64);
    o.sample("hft_ring_drops_total", &[("kind", "audit_parked")], snap.audit_parked as f64);
    o.single("hft_events_total", "counter", "Engine events applied by the control plane.", r.events as f64);
    if let Some(st) = r.store {
        o.single(
            "hft_store_committed_total",
            "counter",
            "Records committed to the durable store.",
            st.committed as f64,
        );
        o.single(
            "hft_store_stored_fills_total",
            "counter",
            "Fills committed to the durable store (acknowledged).",
            st.stored_fills as f64,
        );
        o.single("hft_store_lag", "gauge", "Records accepted by the store and not yet committed.", st.lag as f64);
        o.single(
            "hft_store_write_errors_total",
            "counter",
            "Failed store commits (each retried).",
            st.write_errors as f64,
        );
        o.single(
            "hft_store_max_commit_seconds",
            "gauge",
            "Slowest store commit since start.",
            st.max_commit_us as f64 / 1e6,
        );
        o.single(
            "hft_store_writer_running",
            "gauge",
            "1 while the store's writer thread runs.",
            flag(st.writer_running),
        );
    }

    // Engine state.
    o.single("hft_halted", "gauge", "1 while a manual halt is in force.", flag(r.state.halted));
    o.single(
        "hft_kill_switch_tripped",
        "gauge",
        "1 while the kill switch is tripped (latched until re-armed).",
        flag(r.state.kill_switch.is_some()),
    );
    o.single(
        "hft_backpressure",
        "gauge",
        "1 while the engine holds new risk for event-ring space.",
        flag(r.state.backpressure),
    );
    o.single("hft_engine_running", "gauge", "1 while the engine thread runs.", flag(r.engine_running));
    o.single("hft_ready", "gauge", "1 when /health reports ready.", flag(r.ready(now)));
    o.family("hft_heartbeat_age_seconds", "gauge", "Time since the engine's last heartbeat arrived.");
    if let Some(age) = r.heartbeat_age(now) {
        o.sample("hft_heartbeat_age_seconds", &[], age.as_secs_f64());
    }
    o.single(
        "hft_uptime_seconds",
        "gauge",
        "Time since the control plane started.",
        now.saturating_duration_since(r.started).as_secs_f64(),
    );
    o.family("hft_feed_state", "gauge", "1 for each symbol's current feed state, 0 for the others.");
    for (i, s) in r.symbols.iter().enumerate() {
        let cur = r.feeds.get(i).copied().flatten();
        for st in FEED_STATES {
            o.sample("hft_feed_state", &[("symbol", s), ("state", st.as_str())], flag(cur == Some(st)));
        }
        if cur.is_none() {
            o.sample("hft_feed_state", &[("symbol", s), ("state", feed_name(None))], 1.0);
        }
    }
    o.family("hft_book_valid", "gauge", "1 while the symbol's book is synced and uncrossed (from its feed state).");
    for (i, s) in r.symbols.iter().enumerate() {
        if let Some(v) = r.book_valid(i) {
            o.sample("hft_book_valid", &[("symbol", s)], flag(v));
        }
    }
    o.family("hft_strategy_active", "gauge", "1 while the strategy is active.");
    for k in StrategyKind::ALL {
        o.sample(
            "hft_strategy_active",
            &[("strategy", k.name())],
            flag(r.state.active_strategies & (1 << k.index()) != 0),
        );
    }
    o.single(
        "hft_open_orders",
        "gauge",
        "Orders not yet final among those the control plane tracks.",
        r.order_table.iter().filter(|o| !o.status.is_final()).count() as f64,
    );

    // Positions and PnL.
    o.family("hft_position", "gauge", "Signed position per symbol, base currency.");
    for (i, s) in r.symbols.iter().enumerate() {
        o.sample("hft_position", &[("symbol", s)], r.position(hft_shared::SymbolId(i as u16)).to_f64());
    }
    let per_symbol = |o: &mut Out, name: &str, help: &str, f: fn(&hft_shared::msg::PositionSnapshot) -> Amount| {
        o.family(name, "gauge", help);
        for (s, p) in r.symbols.iter().zip(&r.positions) {
            o.sample(name, &[("symbol", s)], p.as_ref().map_or(0.0, |p| amount(f(p))));
        }
    };
    per_symbol(&mut o, "hft_realized_pnl", "Realized PnL net of fees per symbol, quote currency.", |p| p.realized);
    per_symbol(&mut o, "hft_unrealized_pnl", "Unrealized PnL at the mark per symbol, quote currency.", |p| {
        p.unrealized
    });
    per_symbol(&mut o, "hft_fees", "Fees paid per symbol, quote currency.", |p| p.fees);
    let risk = r.risk;
    let from_risk = |o: &mut Out, name: &str, help: &str, f: &dyn Fn(&hft_shared::msg::RiskSnapshot) -> f64| {
        o.family(name, "gauge", help);
        if let Some(a) = &risk {
            o.sample(name, &[], f(a));
        }
    };
    from_risk(
        &mut o,
        "hft_equity",
        "Capital plus realized and unrealized PnL, quote currency (risk snapshot).",
        &|a| amount(a.equity),
    );
    from_risk(&mut o, "hft_daily_pnl", "Equity change since 00:00 UTC or the last re-arm, quote currency.", &|a| {
        amount(a.equity - a.day_start)
    });
    from_risk(&mut o, "hft_drawdown_ratio", "Fall of equity from its peak, fraction.", &|a| {
        if a.peak > Amount::ZERO { (a.peak - a.equity).to_f64() / a.peak.to_f64() } else { 0.0 }
    });

    // Latency.
    o.family("hft_latency_ns", "summary", "Hot-path latency per stage since start or the last reset, ns.");
    for st in Stage::ALL {
        let p = r.latency[st.index()];
        for (q, v) in [("0.5", p.p50), ("0.9", p.p90), ("0.99", p.p99), ("0.999", p.p999)] {
            o.sample("hft_latency_ns", &[("stage", st.name()), ("quantile", q)], v as f64);
        }
        o.sample("hft_latency_ns_count", &[("stage", st.name())], p.count as f64);
    }
    o.family("hft_latency_max_ns", "gauge", "Largest latency per stage since start or the last reset, ns.");
    for st in Stage::ALL {
        o.sample("hft_latency_max_ns", &[("stage", st.name())], r.latency[st.index()].max as f64);
    }

    o.single("hft_ws_clients", "gauge", "WebSocket clients connected to /ws.", ws_clients as f64);
    o.0
}

/// A strict reader of the exposition format for tests: checks the grammar (names, label
/// syntax and escapes, values, HELP/TYPE once per family and before its samples, a family's
/// samples together, no repeated series, counters named `_total`) and returns every sample as
/// `name{k="v",…}` (label values unescaped, then Debug-quoted) → value. Panics with the
/// offending line otherwise.
#[cfg(test)]
pub fn check_exposition(text: &str) -> std::collections::BTreeMap<String, f64> {
    use std::collections::{BTreeMap, HashMap, HashSet};
    assert!(text.ends_with('\n'), "no final newline");
    assert!(text.is_ascii(), "not ASCII");
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helps: HashSet<String> = HashSet::new();
    let mut closed: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let fail = |why: &str| -> ! { panic!("{why}: {line:?}") };
        if let Some(rest) = line.strip_prefix("# ") {
            let mut it = rest.splitn(3, ' ');
            let (kw, name, arg) = (it.next().unwrap_or(""), it.next().unwrap_or(""), it.next().unwrap_or(""));
            if !is_metric_name(name, true) {
                fail("bad metric name");
            }
            if current.as_deref() != Some(name) {
                if let Some(prev) = current.take() {
                    closed.insert(prev);
                }
                if closed.contains(name) {
                    fail("family reopened");
                }
                current = Some(name.to_string());
            }
            match kw {
                "HELP" if helps.insert(name.to_string()) && !types.contains_key(name) && !arg.is_empty() => {}
                "HELP" => fail("HELP repeated, after TYPE or empty"),
                "TYPE" => {
                    if !["counter", "gauge", "summary", "histogram", "untyped"].contains(&arg) {
                        fail("bad type");
                    }
                    if types.insert(name.to_string(), arg.to_string()).is_some() {
                        fail("TYPE repeated");
                    }
                    if arg == "counter" && !name.ends_with("_total") {
                        fail("counter not named _total");
                    }
                }
                _ => fail("unknown comment"),
            }
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or_else(|| fail("no value"));
        let name = &line[..name_end];
        if !is_metric_name(name, true) {
            fail("bad metric name");
        }
        let family = current.clone().unwrap_or_else(|| fail("sample before any TYPE"));
        let kind = types.get(&family).unwrap_or_else(|| fail("sample before its TYPE"));
        let in_family = name == family
            || (kind == "summary" && (name == format!("{family}_count") || name == format!("{family}_sum")));
        if !in_family {
            fail("sample outside its family");
        }
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(body) = rest.strip_prefix('{') {
            let (l, used) = parse_labels(body).unwrap_or_else(|e| fail(e));
            labels = l;
            rest = &body[used..];
        }
        let value = rest.strip_prefix(' ').unwrap_or_else(|| fail("no single space before the value"));
        let v = match value {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v if v.bytes().all(|c| c.is_ascii_digit() || b"+-.eE".contains(&c)) => {
                v.parse::<f64>().unwrap_or_else(|_| fail("bad value"))
            }
            _ => fail("bad value (or a timestamp)"),
        };
        let key = format!("{name}{{{}}}", labels.join(","));
        if out.insert(key, v).is_some() {
            fail("series repeated");
        }
    }
    out
}

#[cfg(test)]
fn is_metric_name(s: &str, colon: bool) -> bool {
    let ok = |c: u8| c.is_ascii_alphabetic() || c == b'_' || (colon && c == b':');
    let mut b = s.bytes();
    b.next().is_some_and(ok) && b.all(|c| ok(c) || c.is_ascii_digit())
}

/// `k="v",…}` (after the `{`): the labels as `k="v"` (unescaped, Debug-quoted) and the bytes
/// used, through the `}`.
#[cfg(test)]
fn parse_labels(s: &str) -> Result<(Vec<String>, usize), &'static str> {
    let b = s.as_bytes();
    let mut names = std::collections::HashSet::new();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let eq = s[i..].find('=').ok_or("label without =")? + i;
        let name = &s[i..eq];
        if !is_metric_name(name, false) || !names.insert(name) {
            return Err("bad or repeated label name");
        }
        if b.get(eq + 1) != Some(&b'"') {
            return Err("label value not quoted");
        }
        let mut j = eq + 2;
        let mut value = String::new();
        loop {
            match b.get(j) {
                None | Some(b'\n') => return Err("unterminated label value"),
                Some(b'"') => break,
                Some(b'\\') => {
                    value.push(match b.get(j + 1) {
                        Some(b'\\') => '\\',
                        Some(b'"') => '"',
                        Some(b'n') => '\n',
                        _ => return Err("bad escape in a label value"),
                    });
                    j += 2;
                }
                Some(_) => {
                    let c = s[j..].chars().next().ok_or("bad text")?;
                    value.push(c);
                    j += c.len_utf8();
                }
            }
        }
        out.push(format!("{name}={value:?}"));
        match b.get(j + 1) {
            Some(b',') => i = j + 2,
            Some(b'}') => return Ok((out, j + 2)),
            _ => return Err("junk after a label value"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label("x\ny"), "x\\ny");
        assert_eq!(escape_label("BTCUSDT"), "BTCUSDT");
        let mut o = Out(String::new());
        o.sample("m", &[("k", "v\"1"), ("j", "\\")], 1.5);
        assert_eq!(o.0, "m{k=\"v\\\"1\",j=\"\\\\\"} 1.5\n");
    }

    #[test]
    fn special_values_use_go_spellings() {
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(f64::NEG_INFINITY), "-Inf");
        assert_eq!(number(0.1), "0.1");
        assert_eq!(number(1e-9), "0.000000001");
        assert_eq!(number(12.0), "12");
    }

    #[test]
    fn the_strict_reader_refuses_what_the_format_does_not_allow() {
        let good = "# HELP a_total x\n# TYPE a_total counter\na_total{k=\"v\\\"w\",j=\"\"} 1\n";
        let m = check_exposition(good);
        assert_eq!(m.get(r#"a_total{k="v\"w",j=""}"#), Some(&1.0), "{m:?}");
        for bad in [
            "a 1\n",
            "# TYPE a gauge\na 1",
            "# TYPE a gauge\na{k=v} 1\n",
            "# TYPE a gauge\na{k=\"\\x\"} 1\n",
            "# TYPE a gauge\na{k=\"v\",k=\"w\"} 1\n",
            "# TYPE a gauge\na 1 123\n",
            "# TYPE a gauge\na one\n",
            "# TYPE a gauge\na 1\na 2\n",
            "# TYPE a gauge\nb 1\n",
            "# TYPE a counter\na 1\n",
            "# TYPE a gauge\n# TYPE b gauge\n# TYPE a gauge\n",
            "# TYPE a gauge\n# HELP a late\n",
        ] {
            assert!(std::panic::catch_unwind(|| check_exposition(bad)).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn help_text_is_escaped() {
        let mut o = Out(String::new());
        o.family("m", "gauge", "a\\b\nc");
        assert_eq!(o.0, "# HELP m a\\\\b\\nc\n# TYPE m gauge\n");
    }
}
