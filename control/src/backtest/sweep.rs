//! Parameter sweeps: `--sweep key=v1,v2,…` (repeatable) defines a grid of configuration
//! overrides; every point (the cartesian product, first `--sweep` outermost) is one backtest.
//! The variants run in parallel on plain std threads, one variant per thread at a time, at most
//! `available_parallelism` threads; each variant has its own pipeline and reads the inputs
//! itself, so they share nothing. Ranking: by Sharpe ratio, highest first (an undefined Sharpe
//! ranks after every defined one), ties by total PnL, highest first, then by grid order.
//!
//! Runs on the main thread, which spawns and joins the workers; allocates.

use super::input::{InputError, InputFile};
use super::metrics::Metrics;
use super::runner::{self, Outcome};
use hft_shared::config::Config;
use std::cmp::Ordering;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::mpsc;

/// A variant's config overrides, `(key, value)` as given.
pub type Params = Vec<(String, String)>;

/// Largest grid accepted (variants).
pub const MAX_VARIANTS: usize = 10_000;

/// One `--sweep`: a config key and the values it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Axis {
    pub key: String,
    pub values: Vec<String>,
}

/// Parses `key=v1,v2,…`.
pub fn parse_axis(spec: &str) -> Result<Axis, String> {
    let Some((key, values)) = spec.split_once('=') else {
        return Err(format!("--sweep {spec:?}: expected KEY=V1,V2,… (e.g. strategies.momentum.lookback=20,40,80)"));
    };
    let key = key.trim();
    if key.is_empty() {
        return Err(format!("--sweep {spec:?}: the key is empty"));
    }
    let values: Vec<String> = values.split(',').map(|v| v.trim().to_string()).collect();
    if values.iter().any(String::is_empty) {
        return Err(format!("--sweep {spec:?}: a value is empty (values are separated by commas)"));
    }
    Ok(Axis { key: key.to_string(), values })
}

/// Every point of the grid, first axis outermost: each a list of `(key, value)` overrides.
pub fn grid(axes: &[Axis]) -> Result<Vec<Params>, String> {
    for (i, a) in axes.iter().enumerate() {
        if axes[..i].iter().any(|b| b.key == a.key) {
            return Err(format!("--sweep {}: the key is given twice (list all its values in one --sweep)", a.key));
        }
    }
    let size = axes.iter().try_fold(1usize, |n, a| n.checked_mul(a.values.len())).unwrap_or(usize::MAX);
    if size > MAX_VARIANTS {
        return Err(format!("the sweep has {size} variants; at most {MAX_VARIANTS} are allowed"));
    }
    let mut points = vec![Vec::new()];
    for a in axes {
        points = points
            .into_iter()
            .flat_map(|p| {
                a.values.iter().map(move |v| {
                    let mut q = p.clone();
                    q.push((a.key.clone(), v.clone()));
                    q
                })
            })
            .collect();
    }
    Ok(points)
}

/// `cfg` with each point's overrides, checked. The error names the key and value at fault.
pub fn variants(cfg: &Config, points: Vec<Params>) -> Result<Vec<(Params, Config)>, String> {
    points
        .into_iter()
        .map(|p| {
            // One override at a time, so an error names the one at fault.
            let mut c = cfg.clone();
            for (k, v) in &p {
                c = c.with_overrides(&[(k.clone(), v.clone())]).map_err(|e| format!("--sweep {k}={v}: {e}"))?;
            }
            Ok((p, c))
        })
        .collect()
}

/// Runs every variant over `files` on up to `threads` threads; results in variant order. Only
/// the best variant so far keeps its curve, trades and latency (what a report draws), and only
/// when `keep_best_detail`: a large grid holds summaries, not thousands of curves.
pub fn run_all(
    variants: &[(Params, Config)],
    files: &[InputFile],
    threads: usize,
    keep_best_detail: bool,
) -> Vec<Result<Outcome, InputError>> {
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel();
    let mut results: Vec<Option<Result<Outcome, InputError>>> = (0..variants.len()).map(|_| None).collect();
    std::thread::scope(|s| {
        for w in 0..threads.clamp(1, variants.len().max(1)) {
            let (tx, next) = (tx.clone(), &next);
            std::thread::Builder::new()
                .name(format!("hft-sweep-{w}"))
                .spawn_scoped(s, move || {
                    loop {
                        let i = next.fetch_add(1, AtomicOrdering::Relaxed);
                        let Some((params, cfg)) = variants.get(i) else { break };
                        let out = runner::run(cfg, files, params);
                        if tx.send((i, out)).is_err() {
                            break;
                        }
                    }
                })
                .map(drop)
                .unwrap_or_else(|e| tracing::warn!("cannot start sweep worker {w}: {e}"));
        }
        drop(tx);
        // Results as they come; the workers end when the variants do.
        let mut best: Option<usize> = None;
        for (i, mut out) in rx {
            if let Ok(o) = &mut out {
                let better = best.and_then(|b| results[b].as_ref()).and_then(|r| r.as_ref().ok()).is_none_or(|b| {
                    compare(&o.result.metrics, &b.result.metrics).then(i.cmp(&b.result.rank.unwrap_or(usize::MAX)))
                        == Ordering::Less
                });
                if keep_best_detail && better {
                    if let Some(Some(Ok(prev))) = best.map(|b| &mut results[b]) {
                        strip(prev);
                    }
                    best = Some(i);
                } else {
                    strip(o);
                }
                // The grid index, until ranking: ties go to the earlier variant.
                o.result.rank = Some(i);
            }
            results[i] = Some(out);
        }
    });
    results
        .into_iter()
        .map(|r| {
            r.map(|mut r| {
                if let Ok(o) = &mut r {
                    o.result.rank = None;
                }
                r
            })
            .unwrap_or_else(|| {
                Err(InputError::Read {
                    path: "<sweep>".into(),
                    source: std::io::Error::other("no worker ran this variant"),
                })
            })
        })
        .collect()
}

/// Drops what only a report of the variant would use.
fn strip(o: &mut Outcome) {
    o.curve = Vec::new();
    o.trades = Vec::new();
    o.latency = Vec::new();
}

/// Ranking order of two results (`Less`: `a` ranks first); see the module docs.
pub fn compare(a: &Metrics, b: &Metrics) -> Ordering {
    let sharpe = match (a.sharpe, b.sharpe) {
        (Some(x), Some(y)) => y.total_cmp(&x),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    sharpe.then_with(|| b.total_pnl.total_cmp(&a.total_pnl))
}

/// Sorts `outcomes` by rank (stable: grid order breaks the remaining ties) and numbers them
/// from 1.
pub fn rank(outcomes: &mut [Outcome]) {
    outcomes.sort_by(|a, b| compare(&a.result.metrics, &b.result.metrics));
    for (i, o) in outcomes.iter_mut().enumerate() {
        o.result.rank = Some(i + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_parse_and_refuse_nonsense() {
        assert_eq!(
            parse_axis("strategies.momentum.lookback=20, 40,80").unwrap(),
            Axis { key: "strategies.momentum.lookback".into(), values: vec!["20".into(), "40".into(), "80".into()] }
        );
        for bad in ["lookback", "=1,2", "a.b=", "a.b=1,,2"] {
            assert!(parse_axis(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn grid_is_the_cartesian_product_first_axis_outermost() {
        let a = parse_axis("a=1,2").unwrap();
        let b = parse_axis("b=x,y,z").unwrap();
        let g = grid(&[a.clone(), b]).unwrap();
        let flat: Vec<String> =
            g.iter().map(|p| p.iter().map(|(k, v)| format!("{k}{v}")).collect::<String>()).collect();
        assert_eq!(flat, ["a1bx", "a1by", "a1bz", "a2bx", "a2by", "a2bz"]);
        assert!(grid(&[a.clone(), a]).unwrap_err().contains("twice"));
        assert_eq!(grid(&[]).unwrap(), vec![Vec::<(String, String)>::new()]);
    }

    #[test]
    fn bad_keys_and_values_name_themselves() {
        let cfg = Config::from_toml_str("", &|_| None).unwrap();
        let p = |k: &str, v: &str| vec![vec![(k.to_string(), v.to_string())]];
        assert!(variants(&cfg, p("risk.max_position", "500")).is_ok());
        let e = variants(&cfg, p("strategies.momentum.lookbak", "5")).unwrap_err();
        assert!(e.contains("strategies.momentum.lookbak"), "{e}");
        let e = variants(&cfg, p("strategies.momentum.lookback", "1")).unwrap_err();
        assert!(e.contains("strategies.momentum.lookback=1") && e.contains("out of range"), "{e}");
    }

    fn m(sharpe: Option<f64>, pnl: f64) -> Metrics {
        let mut l = super::super::metrics::Ledger::new(hft_shared::Amount::ZERO, 1);
        l.observe(0);
        let mut m = l.finish(0).metrics;
        m.sharpe = sharpe;
        m.total_pnl = pnl;
        m
    }

    #[test]
    fn ranking_is_by_sharpe_then_pnl_undefined_last() {
        let mut v = [m(None, 100.0), m(Some(1.0), 5.0), m(Some(2.0), -1.0), m(Some(1.0), 7.0), m(Some(-3.0), 0.0)];
        v.sort_by(compare);
        let order: Vec<(Option<f64>, f64)> = v.iter().map(|m| (m.sharpe, m.total_pnl)).collect();
        assert_eq!(order, [(Some(2.0), -1.0), (Some(1.0), 7.0), (Some(1.0), 5.0), (Some(-3.0), 0.0), (None, 100.0)]);
    }
}
