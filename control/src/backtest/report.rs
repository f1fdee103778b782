//! The backtest report: one self-contained HTML file — inline CSS, inline SVG plots, no script,
//! no external resource — readable in any browser, offline.
//!
//! Stable element ids (tests and tools rely on them): `svg#equity` (equity curve),
//! `svg#drawdown` (drawdown from the running peak), `svg#position` (position per symbol),
//! `svg#latency` (the pipeline's per-stage latency distribution: wall clock, measured during the
//! backtest), `table#metrics`, `table#strategies`, `table#latency-table`, `table#daily`, and for a
//! sweep `table#sweep`. Each plot draws its series as `path.series` elements.
//!
//! Runs on the main thread after the backtest; allocates.

use super::metrics::{CurvePoint, Trade, iso_time};
use super::runner::{LATENCY_QUANTILES, Outcome, StageLatency, TIMING_EVERY};
use hft_shared::config::Config;
use std::fmt::Write as _;

const W: f64 = 960.0;
const H: f64 = 260.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 34.0;
const COLORS: [&str; 6] = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#57606a"];

const CSS: &str = "
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1000px;color:#1f2328;padding:0 12px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
.meta{color:#57606a;margin:2px 0}
svg{display:block;width:100%;height:auto;background:#fff;border:1px solid #d0d7de;border-radius:6px}
svg text{font:11px system-ui,sans-serif;fill:#57606a}
svg .grid{stroke:#eaeef2;stroke-width:1}svg .axis{stroke:#8c959f;stroke-width:1}
svg path.series{fill:none;stroke-width:1.6}svg path.area{stroke:none;opacity:.25}
table{border-collapse:collapse;margin:4px 0;font-variant-numeric:tabular-nums}
th,td{padding:3px 10px;border-bottom:1px solid #eaeef2;text-align:right}th:first-child,td:first-child{text-align:left}
th{background:#f6f8fa;font-weight:600}
.legend span{display:inline-block;margin-right:14px}.legend i{display:inline-block;width:12px;height:3px;margin:0 5px 3px 0;vertical-align:middle}
.pos{color:#1a7f37}.neg{color:#d1242f}
footer{margin-top:32px;color:#57606a;font-size:12px}
";

/// HTML-escapes `s`.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn num(v: Option<f64>, d: usize) -> String {
    v.filter(|x| x.is_finite()).map_or_else(|| "n/a".to_string(), |x| format!("{x:.d$}"))
}

fn pct(v: Option<f64>) -> String {
    v.filter(|x| x.is_finite()).map_or_else(|| "n/a".to_string(), |x| format!("{:.3} %", x * 100.0))
}

/// A "nice" step (1, 2 or 5 × 10^k) near `range / 5`.
fn nice_step(range: f64) -> f64 {
    if !(range.is_finite() && range > 0.0) {
        return 1.0;
    }
    let raw = range / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let m = if f < 1.5 {
        1.0
    } else if f < 3.5 {
        2.0
    } else if f < 7.5 {
        5.0
    } else {
        10.0
    };
    m * mag
}

/// A plotted series: `(x, y)` in data units.
struct Series<'a> {
    name: String,
    points: Vec<(f64, f64)>,
    color: &'a str,
    /// Filled down to zero (drawdown).
    area: bool,
}

/// How the x axis is labelled.
enum XAxis {
    /// Unix ns.
    Time,
    /// Categories at 0, 1, 2, …
    Labels(Vec<String>),
}

/// One chart as an `<svg id=…>`: grid, axes, labels, and one `path.series` per series.
fn chart(
    id: &str,
    title: &str,
    series: &[Series<'_>],
    x: XAxis,
    y_label: &str,
    y_fmt: &dyn Fn(f64) -> String,
) -> String {
    let pts = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg id="{id}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = esc(title)
    );
    if x0 > x1 {
        let _ = write!(s, r#"<text x="{}" y="{}" text-anchor="middle">no data</text></svg>"#, W / 2.0, H / 2.0);
        return s;
    }
    if series.iter().any(|s| s.area) {
        y1 = y1.max(0.0);
        y0 = y0.min(0.0);
    }
    if (y1 - y0).abs() < 1e-12 {
        let pad = if y0.abs() > 1e-12 { y0.abs() * 1e-3 } else { 1.0 };
        y0 -= pad;
        y1 += pad;
    }
    if (x1 - x0).abs() < 1e-12 {
        x0 -= 1.0;
        x1 += 1.0;
    }
    let step = nice_step(y1 - y0);
    let (ylo, yhi) = ((y0 / step).floor() * step, (y1 / step).ceil() * step);
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let sx = |v: f64| LEFT + (v - x0) / (x1 - x0) * pw;
    let sy = |v: f64| TOP + (yhi - v) / (yhi - ylo) * ph;
    // Horizontal grid and y labels.
    let mut v = ylo;
    let mut guard = 0;
    while v <= yhi + step * 1e-6 && guard < 50 {
        let y = sy(v);
        let _ = write!(
            s,
            r#"<line class="grid" x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            // No "-0.000" label.
            esc(&y_fmt(if v.abs() < step * 1e-9 { 0.0 } else { v }))
        );
        v += step;
        guard += 1;
    }
    // x labels.
    match &x {
        XAxis::Time => {
            for k in 0..=4 {
                let t = x0 + (x1 - x0) * f64::from(k) / 4.0;
                let label = iso_time(t.max(0.0) as u64);
                let label = if x1 - x0 < 86_400e9 { label[11..19].to_string() } else { label[..10].to_string() };
                let anchor = match k {
                    0 => "start",
                    4 => "end",
                    _ => "middle",
                };
                let _ =
                    write!(s, r#"<text x="{:.1}" y="{:.1}" text-anchor="{anchor}">{label}</text>"#, sx(t), H - 12.0);
            }
        }
        XAxis::Labels(labels) => {
            for (k, l) in labels.iter().enumerate() {
                let xx = sx(k as f64);
                let _ = write!(
                    s,
                    r#"<line class="grid" x1="{xx:.1}" y1="{TOP}" x2="{xx:.1}" y2="{:.1}"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                    H - BOTTOM,
                    H - 12.0,
                    esc(l)
                );
            }
        }
    }
    let _ = write!(
        s,
        r#"<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{b:.1}"/><line class="axis" x1="{LEFT}" y1="{b:.1}" x2="{:.1}" y2="{b:.1}"/>"#,
        W - RIGHT,
        b = H - BOTTOM
    );
    let _ = write!(
        s,
        r#"<text x="14" y="{:.1}" transform="rotate(-90 14 {:.1})" text-anchor="middle">{}</text>"#,
        TOP + ph / 2.0,
        TOP + ph / 2.0,
        esc(y_label)
    );
    for se in series {
        if se.points.is_empty() {
            continue;
        }
        let mut d = String::with_capacity(se.points.len() * 16);
        for (k, &(x, y)) in se.points.iter().enumerate() {
            let _ = write!(d, "{}{:.1},{:.1}", if k == 0 { 'M' } else { 'L' }, sx(x), sy(y));
        }
        if se.points.len() == 1 {
            // One point: a short tick, so the path is visible.
            let _ = write!(d, "L{:.1},{:.1}", sx(se.points[0].0) + 2.0, sy(se.points[0].1));
        }
        if se.area {
            let (fx, lx) = (se.points[0].0, se.points[se.points.len() - 1].0);
            let _ = write!(
                s,
                r#"<path class="area" fill="{c}" d="{d}L{:.1},{z:.1}L{:.1},{z:.1}Z"/>"#,
                sx(lx),
                sx(fx),
                c = se.color,
                z = sy(0.0)
            );
        }
        let _ =
            write!(s, r#"<path class="series" stroke="{}" d="{d}"><title>{}</title></path>"#, se.color, esc(&se.name));
    }
    s.push_str("</svg>");
    s
}

fn legend(series: &[Series<'_>]) -> String {
    let mut s = String::from(r#"<div class="legend">"#);
    for se in series {
        let _ = write!(s, r#"<span><i style="background:{}"></i>{}</span>"#, se.color, esc(&se.name));
    }
    s.push_str("</div>");
    s
}

fn latency_series(lat: &[StageLatency]) -> Vec<Series<'static>> {
    lat.iter()
        .filter(|l| !l.quantiles.is_empty())
        .enumerate()
        .map(|(k, l)| Series {
            name: l.stage.to_string(),
            points: l
                .quantiles
                .iter()
                .enumerate()
                .map(|(i, &(_, ns))| (i as f64, (ns.max(1) as f64).log10()))
                .collect(),
            color: COLORS[k % COLORS.len()],
            area: false,
        })
        .collect()
}

fn quantile_label(q: f64) -> String {
    match q {
        0.0 => "min".to_string(),
        1.0 => "max".to_string(),
        q => {
            let s = format!("{:.2}", q * 100.0);
            format!("p{}", s.trim_end_matches('0').trim_end_matches('.'))
        }
    }
}

fn ns_label(log10ns: f64) -> String {
    let ns = 10f64.powf(log10ns);
    if ns >= 1e6 {
        format!("{:.1} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn row(s: &mut String, cells: &[String]) {
    s.push_str("<tr>");
    for c in cells {
        let _ = write!(s, "<td>{c}</td>");
    }
    s.push_str("</tr>");
}

fn signed(v: f64, d: usize) -> String {
    let class = if v > 0.0 {
        "pos"
    } else if v < 0.0 {
        "neg"
    } else {
        ""
    };
    format!(r#"<span class="{class}">{v:.d$}</span>"#)
}

/// The report of `out` (a sweep's best variant when `sweep` is not empty, with the ranking).
pub fn render(cfg: &Config, out: &Outcome, sweep: &[Outcome]) -> String {
    let r = &out.result;
    let m = &r.metrics;
    let mut s = String::with_capacity(256 * 1024);
    s.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    s.push_str("<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>hft backtest report</title><style>");
    s.push_str(CSS);
    s.push_str("</style></head><body>\n<h1>Backtest report</h1>\n");
    let span = match (&r.start, &r.end) {
        (Some(a), Some(b)) => format!("{a} → {b} ({:.0} s of market time)", m.span_s),
        _ => "no frames".to_string(),
    };
    let _ = write!(
        s,
        r#"<p class="meta">{} · {} frames · {}</p>"#,
        esc(&r.symbols.join(", ")),
        r.engine.frames,
        esc(&span)
    );
    for i in &r.inputs {
        let _ = write!(s, r#"<p class="meta">input: {} ({:?})</p>"#, esc(&i.path), i.format);
    }
    for (k, v) in &r.params {
        let _ = write!(s, r#"<p class="meta">param: {} = {}</p>"#, esc(k), esc(v));
    }
    let _ = write!(
        s,
        r#"<p class="meta">capital {:.2} · fees maker {} / taker {} · order latency {} µs, ack latency {} µs · strategy orders: {:?}</p>"#,
        cfg.capital.total,
        cfg.fees.maker,
        cfg.fees.taker,
        cfg.exec.order_latency_us,
        cfg.exec.ack_latency_us,
        cfg.exec.order_type
    );

    let curve: &[CurvePoint] = &out.curve;
    let x = |p: &CurvePoint| p.ts_ns as f64;
    let equity = [Series {
        name: "equity".into(),
        points: curve.iter().map(|p| (x(p), p.equity)).collect(),
        color: COLORS[0],
        area: false,
    }];
    s.push_str("\n<h2>Equity</h2>\n");
    s.push_str(&chart("equity", "Equity (quote currency)", &equity, XAxis::Time, "equity", &|v| format!("{v:.2}")));
    let dd = [Series {
        name: "drawdown".into(),
        points: curve.iter().map(|p| (x(p), -p.drawdown * 100.0)).collect(),
        color: COLORS[1],
        area: true,
    }];
    s.push_str("\n<h2>Drawdown</h2>\n");
    s.push_str(&chart("drawdown", "Drawdown from the running peak (%)", &dd, XAxis::Time, "drawdown %", &|v| {
        format!("{v:.3}")
    }));
    let pos: Vec<Series<'_>> = r
        .symbols
        .iter()
        .enumerate()
        .map(|(i, sym)| Series {
            name: sym.clone(),
            // Steps: a position holds until the next sample.
            points: curve
                .iter()
                .enumerate()
                .flat_map(|(k, p)| {
                    let q = p.positions.get(i).copied().unwrap_or(0.0);
                    let prev = if k > 0 { curve[k - 1].positions.get(i).copied().unwrap_or(0.0) } else { q };
                    [(x(p), prev), (x(p), q)]
                })
                .collect(),
            color: COLORS[i % COLORS.len()],
            area: false,
        })
        .collect();
    s.push_str("\n<h2>Position</h2>\n");
    s.push_str(&chart("position", "Position (base quantity)", &pos, XAxis::Time, "position", &|v| format!("{v:.5}")));
    s.push_str(&legend(&pos));

    let _ = write!(
        s,
        "\n<h2>Latency</h2>\n<p class=\"meta\">The pipeline's own stage timers during this backtest (wall clock on this \
         machine, log scale; one frame in {TIMING_EVERY} timed); not part of the deterministic result.</p>\n"
    );
    let lat = latency_series(&out.latency);
    let labels = LATENCY_QUANTILES.iter().map(|&q| quantile_label(q)).collect();
    s.push_str(&chart("latency", "Latency distribution per stage", &lat, XAxis::Labels(labels), "latency", &ns_label));
    s.push_str(&legend(&lat));
    s.push_str(r#"<table id="latency-table"><tr><th>stage</th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>"#);
    for l in &out.latency {
        row(
            &mut s,
            &[
                l.stage.to_string(),
                l.pct.count.to_string(),
                l.pct.p50.to_string(),
                l.pct.p90.to_string(),
                l.pct.p99.to_string(),
                l.pct.p999.to_string(),
                l.pct.max.to_string(),
            ],
        );
    }
    s.push_str("</table>");
    let _ = write!(
        s,
        r#"<p class="meta">throughput: {} frames, {:.0} frames/s through the pipeline ({:.0} frames/s with reading the inputs)</p>"#,
        out.perf.frames,
        out.perf.frames_per_s(),
        out.perf.total_frames_per_s()
    );

    s.push_str("\n<h2>Metrics</h2>\n<table id=\"metrics\"><tr><th>metric</th><th>value</th></tr>");
    let rows: Vec<(&str, String)> = vec![
        ("total PnL", signed(m.total_pnl, 4)),
        ("return", pct(Some(m.ret))),
        ("realized PnL (net of fees)", signed(m.realized_pnl, 4)),
        ("unrealized PnL", signed(m.unrealized_pnl, 4)),
        ("start → final equity", format!("{:.2} → {:.2}", m.start_equity, m.final_equity)),
        ("Sharpe (1-min bars, ×√525600)", num(m.sharpe, 3)),
        ("Sortino", num(m.sortino, 3)),
        ("Calmar", num(m.calmar, 3)),
        ("annualized return", pct(m.annualized_return)),
        ("max drawdown", format!("{} ({:.4})", pct(Some(m.max_drawdown)), m.max_drawdown_amount)),
        ("longest drawdown", format!("{:.0} s", m.max_drawdown_duration_s)),
        ("trades (won / lost)", format!("{} ({} / {})", m.trades, m.wins, m.losses)),
        ("round trips", m.round_trips.to_string()),
        ("win rate", pct(m.win_rate)),
        ("profit factor", num(m.profit_factor, 3)),
        ("expectancy per trade", num(m.expectancy, 4)),
        ("average win / loss", format!("{} / {}", num(m.avg_win, 4), num(m.avg_loss, 4))),
        ("exposure", pct(Some(m.exposure))),
        ("fills", m.fills.to_string()),
        ("volume", format!("{:.2}", m.volume)),
        ("fees", format!("{:.4}", m.fees)),
        ("slippage vs decision mid", format!("{:.4} ({} bp)", m.slippage, num(m.slippage_bps, 2))),
        ("orders (flatten)", format!("{} ({})", r.engine.orders, r.engine.flatten_orders)),
        ("kill switch trips", r.kill_switch_trips.to_string()),
        ("return bars", m.periods.to_string()),
    ];
    for (k, v) in rows {
        row(&mut s, &[esc(k), v]);
    }
    s.push_str("</table>");
    if !r.rejects.is_empty() {
        let list: Vec<String> = r.rejects.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = write!(s, r#"<p class="meta">risk refusals: {}</p>"#, esc(&list.join(", ")));
    }
    if let Some(k) = &r.kill_switch {
        let _ = write!(s, r#"<p class="meta">kill switch tripped by {} at {}</p>"#, k.cause, esc(&k.at));
    }

    s.push_str("\n<h2>Strategies</h2>\n<table id=\"strategies\"><tr><th>strategy</th><th>active</th><th>weight</th><th>signals</th><th>orders</th><th>realized PnL</th></tr>");
    for st in &r.strategies {
        row(
            &mut s,
            &[
                st.name.to_string(),
                if st.active { "yes" } else { "no" }.to_string(),
                format!("{}", st.weight),
                st.signals.to_string(),
                st.orders.to_string(),
                signed(st.realized, 4),
            ],
        );
    }
    row(
        &mut s,
        &[
            "unattributed (flatten)".into(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            signed(r.unattributed_realized, 4),
        ],
    );
    s.push_str("</table>");

    s.push_str(
        "\n<h2>Trades</h2>\n<p class=\"meta\">The best and worst trades (an order that reduced a position; its PnL \
         net of the entry and exit fees of the quantity it closed).</p><table id=\"trades\"><tr><th>time (UTC)</th>\
         <th>symbol</th><th>order</th><th>quantity closed</th><th>PnL</th></tr>",
    );
    let mut ranked: Vec<&Trade> = out.trades.iter().collect();
    ranked.sort_by(|a, b| b.pnl.cmp(&a.pnl).then(a.ts_ns.cmp(&b.ts_ns)));
    let shown: Vec<&Trade> = if ranked.len() <= 10 {
        ranked
    } else {
        ranked[..5].iter().chain(&ranked[ranked.len() - 5..]).copied().collect()
    };
    for t in shown {
        let sym = r.symbols.get(t.symbol).map_or("?", String::as_str);
        row(&mut s, &[iso_time(t.ts_ns), esc(sym), t.order.to_string(), t.qty.to_string(), signed(t.pnl.to_f64(), 4)]);
    }
    s.push_str("</table>");

    s.push_str(
        "\n<h2>Daily</h2>\n<table id=\"daily\"><tr><th>day (UTC)</th><th>PnL</th><th>return</th><th>trades</th></tr>",
    );
    for d in &r.daily {
        row(&mut s, &[d.date.clone(), signed(d.pnl, 4), pct(Some(d.ret)), d.trades.to_string()]);
    }
    s.push_str("</table>");

    if !sweep.is_empty() {
        let keys: Vec<&String> = sweep[0].result.params.keys().collect();
        s.push_str("\n<h2>Sweep</h2>\n<p class=\"meta\">Ranked by Sharpe (undefined last), ties by total PnL. The plots above are rank 1.</p><table id=\"sweep\"><tr><th>rank</th>");
        for k in &keys {
            let _ = write!(s, "<th>{}</th>", esc(k));
        }
        s.push_str("<th>Sharpe</th><th>total PnL</th><th>max drawdown</th><th>trades</th><th>win rate</th></tr>");
        for o in sweep {
            let (r, m) = (&o.result, &o.result.metrics);
            let mut cells = vec![r.rank.unwrap_or(0).to_string()];
            cells.extend(keys.iter().map(|k| esc(r.params.get(*k).map_or("", String::as_str))));
            cells.extend([
                num(m.sharpe, 3),
                signed(m.total_pnl, 4),
                pct(Some(m.max_drawdown)),
                m.trades.to_string(),
                pct(m.win_rate),
            ]);
            row(&mut s, &cells);
        }
        s.push_str("</table>");
    }

    s.push_str(
        "\n<footer><p>Definitions. Equity = capital + realized PnL net of fees + unrealized PnL at the mid, \
         marked every second of market time and at every fill. Returns: equity at the close of one-minute \
         bars (UTC-aligned, the last partial bar included); Sharpe = mean / sample std × √525600; Sortino \
         uses the downside deviation √(Σ min(r,0)² / n); annualized return = mean × 525600; Calmar = \
         annualized return / max drawdown. A trade is an order whose fills reduce a position; its PnL is \
         net of the entry and exit fees of the closed quantity. Slippage = (fill − decision mid) × qty, \
         signed so that a cost is positive. Exposure = share of time with a position. Strategy PnL is the \
         engine's exact split of each order's realized PnL by the weights when it was sent.</p></footer>\n",
    );
    s.push_str("</body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_nice() {
        assert_eq!(nice_step(10.0), 2.0);
        assert_eq!(nice_step(1.0), 0.2);
        assert_eq!(nice_step(100.0), 20.0);
        assert_eq!(nice_step(0.0), 1.0);
        assert_eq!(nice_step(f64::NAN), 1.0);
    }

    #[test]
    fn labels_and_escaping() {
        assert_eq!(quantile_label(0.999), "p99.9");
        assert_eq!(quantile_label(0.5), "p50");
        assert_eq!(quantile_label(1.0), "max");
        assert_eq!(esc("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(ns_label(2.0), "100 ns");
        assert_eq!(ns_label(3.5), "3.2 µs");
    }

    #[test]
    fn a_chart_has_its_id_and_a_path_per_series() {
        let s = [Series { name: "a".into(), points: vec![(0.0, 1.0), (1.0, 2.0)], color: "#000", area: false }];
        let svg = chart("equity", "t", &s, XAxis::Time, "y", &|v| format!("{v}"));
        assert!(svg.starts_with("<svg id=\"equity\""));
        assert_eq!(svg.matches("<path class=\"series\"").count(), 1);
        assert!(svg.contains(" d=\"M80.0,"));
        let one = [Series { name: "a".into(), points: vec![(5.0, 5.0)], color: "#000", area: true }];
        let svg = chart("drawdown", "t", &one, XAxis::Time, "y", &|v| format!("{v}"));
        assert!(svg.contains("class=\"series\"") && svg.contains("class=\"area\""));
        let svg = chart("position", "t", &[], XAxis::Time, "y", &|v| format!("{v}"));
        assert!(svg.contains("no data"));
    }
}
