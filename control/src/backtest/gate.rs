//! `hft gate`: the go-live criteria, judged from a backtest result (`--result FILE`, what
//! `hft backtest --json` prints) or from the store's paper and shadow accounts; and the check
//! that live mode runs before it starts.
//!
//! Criteria (all must pass): at least [`MIN_TRADES`] trades; Sharpe above [`MIN_SHARPE`]; max
//! drawdown below [`MAX_DRAWDOWN`]; win rate above [`MIN_WIN_RATE`]; the kill switch exercised
//! (tripped at least once: a backtest's `kill_switch_trips`, or a `kill_switch` risk event in
//! the store). Trades, Sharpe, drawdown and win rate are defined in [`super::metrics`]; an
//! undefined value fails its criterion.
//!
//! Output: one line per criterion on stdout, `PASS|FAIL <name> <measured> (<threshold>)`. Exit
//! 0 when all pass, 1 when any fails (stderr names each failed one), 2 on a usage or input
//! error. A verdict judged from the store is recorded there (`gate_results`), pass or fail; live
//! mode starts only when the latest recorded verdict passed, or with `live.gate_override`.
//!
//! Runs on the main thread; allocates.

use super::store;
use crate::Failure;
use anyhow::{Context, anyhow};
use hft_shared::config::{Config, Mode, Sources};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const MIN_TRADES: u64 = 100;
pub const MIN_SHARPE: f64 = 1.5;
pub const MAX_DRAWDOWN: f64 = 0.10;
pub const MIN_WIN_RATE: f64 = 0.55;
pub const MIN_KILL_TRIPS: u64 = 1;

#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct GateArgs {
    /// A backtest result (`hft backtest --json` output; for a sweep, its rank-1 variant) to
    /// judge instead of the store's paper and shadow accounts.
    #[arg(long, value_name = "FILE")]
    pub result: Option<PathBuf>,
}

/// What the gate judges.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    pub trades: u64,
    pub sharpe: Option<f64>,
    pub max_drawdown: f64,
    pub win_rate: Option<f64>,
    pub kill_switch_trips: u64,
}

/// One criterion's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub name: &'static str,
    pub pass: bool,
    pub measured: String,
    pub threshold: String,
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {} ({})", if self.pass { "PASS" } else { "FAIL" }, self.name, self.measured, self.threshold)
    }
}

fn pct(v: f64) -> String {
    format!("{:.2}%", v * 100.0)
}

/// Judges `e` against every criterion, in a fixed order.
pub fn evaluate(e: &Evidence) -> Vec<Check> {
    let finite = |v: Option<f64>| v.filter(|x| x.is_finite());
    vec![
        Check {
            name: "trades",
            pass: e.trades >= MIN_TRADES,
            measured: e.trades.to_string(),
            threshold: format!(">= {MIN_TRADES}"),
        },
        Check {
            name: "sharpe",
            pass: finite(e.sharpe).is_some_and(|s| s > MIN_SHARPE),
            measured: finite(e.sharpe).map_or_else(|| "n/a".into(), |s| format!("{s:.3}")),
            threshold: format!("> {MIN_SHARPE}"),
        },
        Check {
            name: "max_drawdown",
            pass: e.max_drawdown.is_finite() && e.max_drawdown < MAX_DRAWDOWN,
            measured: pct(e.max_drawdown),
            threshold: format!("< {}", pct(MAX_DRAWDOWN)),
        },
        Check {
            name: "win_rate",
            pass: finite(e.win_rate).is_some_and(|w| w > MIN_WIN_RATE),
            measured: finite(e.win_rate).map_or_else(|| "n/a".into(), pct),
            threshold: format!("> {}", pct(MIN_WIN_RATE)),
        },
        Check {
            name: "kill_switch",
            pass: e.kill_switch_trips >= MIN_KILL_TRIPS,
            measured: e.kill_switch_trips.to_string(),
            threshold: format!(">= {MIN_KILL_TRIPS} trip"),
        },
    ]
}

/// The evidence in a backtest result document (or the rank-1 element of a sweep's array).
pub fn evidence_of_result(doc: &Value) -> Result<(Evidence, Option<String>), String> {
    let (doc, note) = match doc {
        Value::Array(items) => {
            let best = items
                .iter()
                .find(|v| v.get("rank").and_then(Value::as_u64) == Some(1))
                .or_else(|| items.first())
                .ok_or("the result is an empty array")?;
            let params = best.get("params").map(Value::to_string).unwrap_or_default();
            (best, Some(format!("judging the sweep's rank-1 variant of {} ({params})", items.len())))
        }
        v => (v, None),
    };
    let m = doc.get("metrics").ok_or("no `metrics` in the result: is it `hft backtest --json` output?")?;
    let u =
        |v: Option<&Value>, name: &str| v.and_then(Value::as_u64).ok_or(format!("`{name}` is missing or not a count"));
    let opt = |name: &str| match m.get(name) {
        Some(Value::Null) => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or(format!("`metrics.{name}` is not a number")),
        None => Err(format!("`metrics.{name}` is missing")),
    };
    Ok((
        Evidence {
            trades: u(m.get("trades"), "metrics.trades")?,
            sharpe: opt("sharpe")?,
            max_drawdown: opt("max_drawdown")?.ok_or("`metrics.max_drawdown` is null")?,
            win_rate: opt("win_rate")?,
            kill_switch_trips: u(doc.get("kill_switch_trips"), "kill_switch_trips")?,
        },
        note,
    ))
}

pub fn run(args: GateArgs, config: Option<PathBuf>) -> Result<(), Failure> {
    let sources = Sources::resolve(config, &Config::process_env);
    let cfg = Config::load(&sources, &Config::process_env)
        .map_err(|e| Failure::usage(anyhow!("invalid configuration: {e}")))?;
    let (evidence, from_store) = match &args.result {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the result {}", path.display()))
                .map_err(Failure::usage)?;
            let doc: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", path.display()))
                .map_err(Failure::usage)?;
            let (e, note) = evidence_of_result(&doc).map_err(|m| Failure::usage(anyhow!("{}: {m}", path.display())))?;
            if let Some(n) = note {
                tracing::info!("{n}");
            }
            (e, None)
        }
        None => {
            if !cfg.store.enabled {
                return Err(Failure::usage(anyhow!(
                    "no --result given and the store is off (store.enabled = false): nothing to judge"
                )));
            }
            let path = PathBuf::from(&cfg.store.path);
            let s = store::performance(&path, &[Mode::Paper, Mode::Shadow], cfg.capital.total).map_err(|e| {
                Failure::usage(e.context("no --result given: the gate judges the store's paper account"))
            })?;
            tracing::info!(runs = s.runs, fills = s.metrics.fills, "judging the store's paper and shadow accounts");
            let e = Evidence {
                trades: s.metrics.trades,
                sharpe: s.metrics.sharpe,
                max_drawdown: s.metrics.max_drawdown,
                win_rate: s.metrics.win_rate,
                kill_switch_trips: s.kill_switch_trips,
            };
            (e, Some(path))
        }
    };
    let checks = evaluate(&evidence);
    let failed: Vec<&str> = checks.iter().filter(|c| !c.pass).map(|c| c.name).collect();
    if let Some(path) = from_store {
        let v = store::Verdict {
            at_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            passed: failed.is_empty(),
            trades: evidence.trades,
            sharpe: evidence.sharpe,
            max_drawdown: evidence.max_drawdown,
            win_rate: evidence.win_rate,
            kill_switch_trips: evidence.kill_switch_trips,
            failed: failed.join(","),
        };
        store::open(&path).and_then(|conn| store::record(&conn, &v)).map_err(Failure::runtime)?;
        tracing::info!(passed = v.passed, "verdict recorded in the store (gate_results)");
    }
    let mut text = String::new();
    for c in &checks {
        text.push_str(&c.to_string());
        text.push('\n');
    }
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).context("cannot write to stdout")?;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::runtime(anyhow!("the go-live gate failed: {}", failed.join(", "))))
    }
}

/// Live mode's start-up condition: the latest verdict recorded in the store passed, or the
/// config overrides the gate (`live.gate_override = true`). Other modes always pass.
pub fn check_live_start(cfg: &Config) -> Result<(), Failure> {
    if cfg.mode != Mode::Live {
        return Ok(());
    }
    if cfg.live.gate_override {
        tracing::warn!("live mode starts without a go-live gate verdict: live.gate_override = true");
        return Ok(());
    }
    let refuse = |why: String| {
        Failure::usage(anyhow!(
            "live mode refuses to start: {why}. Trade in paper mode until `hft gate` passes (it records its verdict \
             in the store), or set live.gate_override = true to override the go-live gate"
        ))
    };
    if !cfg.store.enabled {
        return Err(refuse("the store is off (store.enabled = false), so no go-live gate verdict can be found".into()));
    }
    let conn = store::open(Path::new(&cfg.store.path)).map_err(|e| refuse(format!("{e:#}")))?;
    match store::latest(&conn).map_err(|e| refuse(format!("{e:#}")))? {
        Some(v) if v.passed => {
            tracing::info!(at_ms = v.at_ms, trades = v.trades, "go-live gate passed");
            Ok(())
        }
        Some(v) => Err(refuse(format!("the latest go-live gate verdict failed ({})", v.failed))),
        None => Err(refuse("no go-live gate verdict is recorded in the store".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passing() -> Evidence {
        Evidence { trades: 100, sharpe: Some(1.6), max_drawdown: 0.099, win_rate: Some(0.56), kill_switch_trips: 1 }
    }

    #[test]
    fn thresholds_are_strict_where_the_criteria_say_so() {
        assert!(evaluate(&passing()).iter().all(|c| c.pass));
        let lines: Vec<String> = evaluate(&passing()).iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "PASS trades 100 (>= 100)",
                "PASS sharpe 1.600 (> 1.5)",
                "PASS max_drawdown 9.90% (< 10.00%)",
                "PASS win_rate 56.00% (> 55.00%)",
                "PASS kill_switch 1 (>= 1 trip)",
            ]
        );
        let edge =
            Evidence { trades: 99, sharpe: Some(1.5), max_drawdown: 0.10, win_rate: Some(0.55), kill_switch_trips: 0 };
        let failed: Vec<&str> = evaluate(&edge).iter().filter(|c| !c.pass).map(|c| c.name).collect();
        assert_eq!(failed, ["trades", "sharpe", "max_drawdown", "win_rate", "kill_switch"]);
        let undefined = Evidence { sharpe: None, win_rate: Some(f64::NAN), ..passing() };
        let c = evaluate(&undefined);
        assert_eq!(
            (c[1].pass, c[1].measured.as_str(), c[3].pass, c[3].measured.as_str()),
            (false, "n/a", false, "n/a")
        );
    }

    #[test]
    fn evidence_comes_from_results_and_sweeps() {
        let doc: Value = serde_json::json!({
            "kill_switch_trips": 2,
            "metrics": {"trades": 150, "sharpe": null, "max_drawdown": 0.02, "win_rate": 0.6}
        });
        let (e, note) = evidence_of_result(&doc).unwrap();
        assert_eq!(
            e,
            Evidence { trades: 150, sharpe: None, max_drawdown: 0.02, win_rate: Some(0.6), kill_switch_trips: 2 }
        );
        assert!(note.is_none());
        let mut second = doc.clone();
        second["rank"] = 1.into();
        second["metrics"]["trades"] = 7.into();
        let (e, note) = evidence_of_result(&Value::Array(vec![doc.clone(), second])).unwrap();
        assert_eq!(e.trades, 7);
        assert!(note.unwrap().contains("rank-1"));
        for bad in [serde_json::json!({}), serde_json::json!({"metrics": {}}), serde_json::json!([])] {
            assert!(evidence_of_result(&bad).is_err(), "{bad}");
        }
        let mut wrong = doc;
        wrong["metrics"]["sharpe"] = "high".into();
        assert!(evidence_of_result(&wrong).unwrap_err().contains("metrics.sharpe"));
    }
}
