//! The built-in market against Binance's rules: frames are parsed with `serde_json` (not the
//! engine's decoder) and applied to the engine's L2 book by the documented procedure.

use hft_engine::book::{Book, DiffOutcome, SyncState};
use hft_engine::feed::decode::Level;
use hft_engine::feed::synthetic::{PriceProcess, Regime, StreamKind, SyntheticMarket, SyntheticParams};
use hft_shared::{Px, Qty};
use serde_json::Value;

// ---- allocation counting (per thread, so parallel tests do not disturb each other) ----------

mod common;

// ---- helpers -----------------------------------------------------------------------------------

fn params(symbol: &str, seed: u64, start: &str, tick: &str, depth: usize) -> SyntheticParams {
    SyntheticParams {
        symbol: symbol.into(),
        seed,
        start_price: Px::parse(start).unwrap(),
        tick_size: Px::parse(tick).unwrap(),
        depth_levels: depth,
    }
}

fn btc(seed: u64) -> SyntheticParams {
    params("BTCUSDT", seed, "60000", "0.01", 50)
}

/// A decimal string as Binance writes it (exactly 8 decimals), in 1e-8 units.
fn num8(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
    let dot = s.find('.').unwrap_or_else(|| panic!("no decimals: {s}"));
    assert_eq!(s.len() - dot - 1, 8, "not 8 decimals: {s}");
    Px::parse(s).unwrap().raw()
}

fn levels(v: &Value) -> Vec<Level> {
    v.as_array().unwrap().iter().map(|l| Level { px: Px(num8(&l[0])), qty: Qty(num8(&l[1])) }).collect()
}

fn book_mid(m: &SyntheticMarket) -> f64 {
    let (b, a) = (m.best_bid().unwrap(), m.best_ask().unwrap());
    (b.px.raw() + a.px.raw()) as f64 / 2.0
}

fn bp(from: f64, to: f64) -> f64 {
    (to / from - 1.0) * 1e4
}

#[derive(Debug, Default)]
struct Stats {
    tickers: u64,
    trades: u64,
    diffs: u64,
    /// bookTickers whose `u` was the local book's id, and which agreed with it.
    matches: u64,
}

/// Replays `frames` frames of `p`: a snapshot after `snapshot_after` frames (earlier frames are
/// dropped, as a client that subscribed late would), then every diff into local books, checking
/// every rule the module promises. Two local books: `book` has room for 2 × depth, never evicts
/// and must equal the true book after every diff. `tight` holds exactly `depth` levels per side:
/// applying a diff best-first overflows it for a moment (new top levels arrive before the
/// removals further down), so it evicts far levels, some of which the true book keeps; its top
/// must still be exact and every level it holds must be a true level with its true quantity.
fn replay(p: &SyntheticParams, frames: usize, snapshot_after: usize) -> Stats {
    let lower = p.symbol.to_ascii_lowercase();
    let (s_ticker, s_depth, s_trade) =
        (format!("{lower}@bookTicker"), format!("{lower}@depth@100ms"), format!("{lower}@trade"));
    let tick = p.tick_size.raw();
    let on_grid = |l: &Level| l.px.raw() > 0 && l.px.raw() % tick == 0;

    let mut m = SyntheticMarket::new(p);
    let mut book = Book::with_capacity(2 * p.depth_levels);
    let mut tight = Book::with_capacity(p.depth_levels);
    let mut st = Stats::default();
    let mut last_t = 0;
    let mut last_diff_ms: Option<u64> = None;
    let mut next_trade = m.next_trade_id();
    for i in 0..frames {
        if i == snapshot_after {
            let snap: Value = serde_json::from_slice(m.snapshot()).unwrap();
            let id = snap["lastUpdateId"].as_u64().unwrap();
            assert_eq!(id, m.update_id());
            let (bids, asks) = (levels(&snap["bids"]), levels(&snap["asks"]));
            assert_eq!((bids.len(), asks.len()), (p.depth_levels, p.depth_levels));
            assert!(bids.iter().chain(&asks).all(|l| l.qty.raw() > 0 && on_grid(l)));
            book.apply_snapshot(id, &bids, &asks).unwrap();
            tight.apply_snapshot(id, &bids, &asks).unwrap();
            assert!(book.bids.check() && book.asks.check());
        }
        let top = (m.best_bid().unwrap(), m.best_ask().unwrap());
        let (bytes, t) = m.next_frame();
        assert!(t >= last_t, "time went backwards at frame {i}");
        last_t = t;
        let v: Value =
            serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(bytes)));
        let d = &v["data"];
        let stream = v["stream"].as_str().unwrap();
        let kind = m.last_stream();
        if stream == s_ticker {
            assert_eq!(kind, StreamKind::BookTicker);
            assert_eq!(d["s"], p.symbol.as_str());
            st.tickers += 1;
            let u = d["u"].as_u64().unwrap();
            assert_eq!(u, m.update_id());
            let bid = Level { px: Px(num8(&d["b"])), qty: Qty(num8(&d["B"])) };
            let ask = Level { px: Px(num8(&d["a"])), qty: Qty(num8(&d["A"])) };
            assert!(bid.px < ask.px && on_grid(&bid) && on_grid(&ask));
            assert!(bid.qty.raw() > 0 && ask.qty.raw() > 0);
            if i >= snapshot_after && book.last_update_id() == u {
                assert_eq!((book.best_bid(), book.best_ask()), (Some(bid), Some(ask)), "ticker u={u} vs local book");
                st.matches += 1;
            }
        } else if stream == s_depth {
            assert_eq!(kind, StreamKind::Depth);
            assert_eq!(d["e"], "depthUpdate");
            assert_eq!(d["s"], p.symbol.as_str());
            st.diffs += 1;
            let ms = d["E"].as_u64().unwrap();
            assert_eq!(ms, t / 1_000_000);
            assert_eq!(t % 100_000_000, 0, "diffs on the 100 ms grid");
            if let Some(prev) = last_diff_ms {
                assert!(ms > prev && (ms - prev).is_multiple_of(100));
            }
            last_diff_ms = Some(ms);
            let (first, last) = (d["U"].as_u64().unwrap(), d["u"].as_u64().unwrap());
            assert!(first <= last && last == m.update_id());
            let (bids, asks) = (levels(&d["b"]), levels(&d["a"]));
            assert!(bids.len() + asks.len() <= (last - first + 1) as usize, "no more entries than changes");
            assert!(bids.windows(2).all(|w| w[0].px > w[1].px), "bids best first, one per price");
            assert!(asks.windows(2).all(|w| w[0].px < w[1].px), "asks best first, one per price");
            assert!(bids.iter().chain(&asks).all(|l| l.qty.raw() >= 0 && on_grid(l)));
            if i >= snapshot_after {
                let r = book.apply_diff(first, last, &bids, &asks);
                assert_eq!(tight.apply_diff(first, last, &bids, &asks), r);
                if book.state() != SyncState::Synced {
                    // Only the diff right after the snapshot may be stale: the snapshot already
                    // holds all of its changes.
                    assert_eq!(r, Ok(DiffOutcome::Stale), "diff U={first} u={last}");
                    assert_eq!(last, book.last_update_id());
                    continue;
                }
                assert_eq!(r, Ok(DiffOutcome::Applied), "diff U={first} u={last}");
                assert!(book.is_valid(), "crossed or unsynced after diff u={last}");
                assert!(book.bids.check() && book.asks.check());
                assert_eq!(book.evictions, 0);
                assert!(book.bids.iter().eq(m.bids()), "local bids differ from the true book");
                assert!(book.asks.iter().eq(m.asks()), "local asks differ from the true book");
                assert_eq!((tight.best_bid(), tight.best_ask()), (m.best_bid(), m.best_ask()));
                let (mut tb, mut ta) = (m.bids(), m.asks());
                assert!(tight.bids.iter().all(|l| tb.any(|t| t == l)), "tight bids not a subset of the true book");
                assert!(tight.asks.iter().all(|l| ta.any(|t| t == l)), "tight asks not a subset of the true book");
            }
        } else if stream == s_trade {
            assert_eq!(kind, StreamKind::Trade);
            assert_eq!(d["e"], "trade");
            assert_eq!(d["s"], p.symbol.as_str());
            assert_eq!(d["M"], true);
            st.trades += 1;
            assert_eq!(d["t"].as_u64().unwrap(), next_trade, "trade ids contiguous");
            next_trade += 1;
            let ms = d["E"].as_u64().unwrap();
            assert_eq!(ms, t / 1_000_000);
            assert_eq!(d["T"].as_u64().unwrap(), ms);
            let (px, qty) = (Px(num8(&d["p"])), Qty(num8(&d["q"])));
            let hit = if d["m"].as_bool().unwrap() { top.0 } else { top.1 };
            assert_eq!(px, hit.px, "trades print at the top");
            assert!(qty.raw() > 0 && qty <= hit.qty);
        } else {
            panic!("unexpected stream {stream}");
        }
    }
    st
}

// ---- tests -------------------------------------------------------------------------------------

#[test]
fn snapshot_then_every_diff_applies_and_tickers_match_the_local_book() {
    let n = 100_000;
    let st = replay(&btc(7), n, 0);
    assert!(st.matches > 500, "{st:?}");
    let pct = |k: u64| k as f64 * 100.0 / n as f64;
    assert!((64.0..76.0).contains(&pct(st.tickers)), "{st:?}");
    assert!((16.0..24.0).contains(&pct(st.trades)), "{st:?}");
    assert!((8.0..12.0).contains(&pct(st.diffs)), "{st:?}");
}

#[test]
fn snapshot_taken_mid_stream_syncs_by_the_documented_procedure() {
    for (seed, at) in [(1, 777), (2, 1003), (3, 5)] {
        let st = replay(&btc(seed), at + 3_000, at);
        assert!(st.matches > 0, "{st:?}");
    }
}

#[test]
fn other_symbols_prices_and_tick_sizes() {
    for p in [
        params("ETHUSDT", 11, "3000", "0.01", 20),
        params("DOGEUSDT", 12, "0.15", "0.00001", 50),
        params("PEPEUSDT", 13, "0.00001234", "0.00000001", 10),
        params("BNB1", 14, "600", "0.1", 5),
    ] {
        replay(&p, 8_000, 0);
        let mut m = SyntheticMarket::new(&p);
        let (f, _) = m.next_frame();
        let lower = p.symbol.to_ascii_lowercase();
        assert!(f.starts_with(format!(r#"{{"stream":"{lower}@"#).as_bytes()), "{}", String::from_utf8_lossy(f));
    }
}

#[test]
fn snapshot_is_the_binance_rest_body() {
    let mut m = SyntheticMarket::new(&btc(3));
    let id = m.update_id();
    let s = std::str::from_utf8(m.snapshot()).unwrap().to_string();
    assert!(s.starts_with(&format!(r#"{{"lastUpdateId":{id},"bids":[[""#)), "{s}");
    let v: Value = serde_json::from_str(&s).unwrap();
    let (bids, asks) = (levels(&v["bids"]), levels(&v["asks"]));
    assert_eq!(bids.len(), 50);
    assert!(bids.windows(2).all(|w| w[0].px > w[1].px) && asks.windows(2).all(|w| w[0].px < w[1].px));
    assert!(bids[0].px < asks[0].px);
    assert!(bids.iter().chain(&asks).all(|l| l.qty.raw() > 0 && l.px.raw() % 1_000_000 == 0));
    // BTC-like: first bid within a few ticks of the start price, quantities in 1e-5 lots.
    assert!((bids[0].px.raw() - 6_000_000_000_000).abs() < 10 * 1_000_000);
    assert!(bids.iter().all(|l| l.qty.raw() % 1_000 == 0));
    // Snapshots do not move the market.
    assert_eq!(m.snapshot(), s.as_bytes());
    assert_eq!(m.update_id(), id);
}

#[test]
fn same_seed_same_bytes_other_seed_differs() {
    let run = |seed| {
        let mut m = SyntheticMarket::new(&btc(seed));
        let mut out = m.snapshot().to_vec();
        for _ in 0..20_000 {
            let (f, t) = m.next_frame();
            out.extend_from_slice(f);
            out.extend_from_slice(&t.to_le_bytes());
        }
        out
    };
    let a = run(42);
    assert!(a == run(42), "same seed, different bytes");
    assert!(a != run(43), "different seeds, same bytes");
}

#[test]
fn no_allocation_after_construction() {
    let mut m = SyntheticMarket::new(&btc(9));
    // Warm up: the first snapshot and frames.
    m.snapshot();
    for _ in 0..1_000 {
        std::hint::black_box(m.next_frame());
    }
    common::alloc::start();
    let before = common::alloc::count();
    let mut bytes = 0usize;
    for i in 0..100_000 {
        let (f, t) = m.next_frame();
        bytes += f.len();
        std::hint::black_box(t);
        if i % 10_000 == 0 {
            bytes += m.snapshot().len();
        }
    }
    let during = common::alloc::count() - before;
    assert!(bytes > 0);
    // The counter does count: one Vec is one allocation.
    std::hint::black_box(vec![0u8; 16]);
    assert_eq!(common::alloc::count() - before, during + 1, "the counting allocator is not active");
    assert_eq!(during, 0, "next_frame/snapshot allocated {during} times");
}

/// Runs `frames` frames, calling `f(market, frame_index)` after each.
fn run(p: &SyntheticParams, frames: usize, mut f: impl FnMut(&SyntheticMarket, usize)) {
    let mut m = SyntheticMarket::new(p);
    for i in 0..frames {
        m.next_frame();
        f(&m, i);
    }
}

#[test]
fn starts_with_a_trend_that_a_40_tick_momentum_strategy_trades_early() {
    for seed in 0..16 {
        let mut mids = Vec::new();
        let mut first_signal = None;
        run(&btc(seed), 500, |m, i| {
            assert_eq!(m.regime(), Regime::Trend, "seed {seed} frame {i}");
            if m.last_stream() == StreamKind::BookTicker {
                mids.push(book_mid(m));
                let k = mids.len();
                if k > 40 && first_signal.is_none() && bp(mids[k - 41], mids[k - 1]).abs() > 4.0 {
                    first_signal = Some(i);
                }
            }
        });
        assert!(first_signal.is_some(), "seed {seed}: no 4 bp move over 40 tickers in 500 frames");
    }
}

/// Regime runs `(regime, first frame, frames, book mids at each bookTicker)`.
fn regime_runs(p: &SyntheticParams, frames: usize) -> Vec<(Regime, usize, usize, Vec<f64>)> {
    let mut runs: Vec<(Regime, usize, usize, Vec<f64>)> = Vec::new();
    run(p, frames, |m, i| {
        let r = m.regime();
        if runs.last().is_none_or(|l| l.0 != r) {
            runs.push((r, i, 0, Vec::new()));
        }
        let last = runs.last_mut().unwrap();
        last.2 += 1;
        if m.last_stream() == StreamKind::BookTicker {
            last.3.push(book_mid(m));
        }
    });
    runs.pop(); // cut short
    runs
}

#[test]
fn regimes_cycle_trend_meanrevert_consolidation_breakout() {
    let mut seen = [0usize; 4];
    let (mut trend_moves, mut cons_ranges, mut breakouts) = (Vec::new(), Vec::new(), Vec::new());
    for seed in [1, 2] {
        let runs = regime_runs(&btc(seed), 100_000);
        assert_eq!(runs[0].0, Regime::Trend);
        assert!(runs[0].2 >= 500);
        for (k, (r, _, len, mids)) in runs.iter().enumerate() {
            seen[*r as usize] += 1;
            // Back-to-back trends count as one run here.
            if *r != Regime::Trend {
                assert!((300..=3000).contains(len), "{r:?} lasted {len} frames");
            }
            match r {
                Regime::Trend => trend_moves.extend(mids.windows(41).map(|w| bp(w[0], w[40]).abs())),
                Regime::Consolidation => {
                    assert_eq!(runs.get(k + 1).map(|n| n.0).unwrap_or(Regime::Breakout), Regime::Breakout);
                    let (lo, hi) = mids.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
                    cons_ranges.push(bp(lo, hi));
                }
                Regime::Breakout => {
                    // The sharp move (first ~60 tickers) and the whole run.
                    let early = bp(mids[0], mids[60.min(mids.len() - 1)]);
                    let whole = bp(mids[0], *mids.last().unwrap());
                    breakouts.push((early, whole));
                }
                Regime::MeanRevert => {}
            }
        }
    }
    assert!(seen.iter().all(|&n| n >= 3), "regimes seen {seen:?}");
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let trend = mean(&trend_moves);
    assert!(trend >= 10.0, "trends move {trend:.1} bp per 40 tickers");
    let cons = mean(&cons_ranges);
    assert!(cons < 15.0, "consolidation ranges {cons:.1} bp");
    let sharp = mean(&breakouts.iter().map(|b| b.0.abs()).collect::<Vec<_>>());
    assert!(sharp > 3.0 * cons && sharp > 30.0, "breakouts move {sharp:.1} bp, ranges {cons:.1} bp");
    let continued = breakouts.iter().filter(|b| b.0.signum() == b.1.signum() && b.1.abs() >= b.0.abs() * 0.5).count();
    assert!(continued * 10 >= breakouts.len() * 8, "{continued} of {} breakouts continue", breakouts.len());
}

#[test]
fn per_step_volatility_is_half_to_two_bp() {
    let mut rets = Vec::new();
    let mut last: Option<Px> = None;
    run(&btc(5), 100_000, |m, _| {
        let mid = m.mid();
        if let Some(prev) = last
            && prev != mid
        {
            rets.push(bp(prev.raw() as f64, mid.raw() as f64));
        }
        last = Some(mid);
    });
    let n = rets.len() as f64;
    let sd = (rets.iter().map(|r| r * r).sum::<f64>() / n).sqrt();
    assert!((0.5..=2.0).contains(&sd), "per-step sd {sd:.2} bp");
    assert!(n > 50_000.0, "{n} steps in 100k frames");
}

#[test]
fn prices_stay_positive_and_sane_over_millions_of_steps() {
    let start = Px::from_int(60_000);
    for (seed, frames) in [(0, 10_000_000u32), (1, 2_000_000), (2, 2_000_000)] {
        let mut p = PriceProcess::new(seed, start);
        let (mut lo, mut hi) = (0.0f64, 0.0f64);
        for i in 0..frames {
            p.on_frame();
            // The market steps the mid on about 2 frames in 3.
            if i % 3 != 0 {
                p.step();
            }
            let x = p.log_excursion();
            lo = lo.min(x);
            hi = hi.max(x);
        }
        assert!(
            lo > -(2f64.ln()) && hi < 2f64.ln(),
            "seed {seed}: mid ranged {:.3}..{:.3} of start",
            lo.exp(),
            hi.exp()
        );
    }
    // And the whole generator: the book stays on the grid and positive.
    run(&btc(8), 100_000, |m, _| {
        let (b, a) = (m.best_bid().unwrap(), m.best_ask().unwrap());
        assert!(b.px.raw() > 0 && b.px < a.px);
    });
}

/// Release-mode throughput of the generator alone: `cargo test --release --test synthetic_market
/// -- --ignored --nocapture throughput`.
#[test]
#[ignore = "measurement; run in release"]
fn throughput() {
    let mut m = SyntheticMarket::new(&btc(1));
    let n = 5_000_000u64;
    let t0 = std::time::Instant::now();
    let mut bytes = 0usize;
    for _ in 0..n {
        bytes += std::hint::black_box(m.next_frame()).0.len();
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{:.2} M frames/s, {:.0} MB/s, {:.1} ns/frame",
        n as f64 / secs / 1e6,
        bytes as f64 / secs / 1e6,
        secs * 1e9 / n as f64
    );
    assert!(cfg!(debug_assertions) || n as f64 / secs > 1e6, "below 1 M frames/s in release");
}
