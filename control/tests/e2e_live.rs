//! End-to-end, issue #5's acceptance: the engine in live mode against `hft venue-sim` on
//! loopback (signed WS-API orders, user-data execution reports): orders are placed,
//! acknowledged and filled (resting limit orders, filled by the served market's trades); a
//! venue disconnect mid-session is survived (reconnect, resubscribe, reconcile) with no order
//! executed twice and none lost (an order that fills while the connection is down is settled
//! by `order.status`); halt cancels every open order; and the engine's position equals the
//! simulator's account. Also: live mode refuses to start without the confirmation or without
//! keys.
//!
//! Both processes run from temp dirs with cleared environments and are killed by Drop guards
//! whatever happens.

mod common;

use common::{Running, agent, hft, port_after};
use hft_shared::Qty;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const TOKEN: &str = "live-test-token";
const KEY: &str = "e2eLiveKey0123456789abcdefABCDEF";
const SECRET: &str = "e2eLiveSecretDoNotPrint0123456789abcdef";
const CONFIRM: &str = "I understand this trades real money";

/// GET `path` on 127.0.0.1:`port`, the JSON body.
fn get(port: u16, path: &str) -> Value {
    common::get(port, path).1
}

fn post(port: u16, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = agent().post(&format!("http://127.0.0.1:{port}{path}"));
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut res = req.send_empty().unwrap_or_else(|e| panic!("POST {path}: {e}"));
    (res.status().as_u16(), res.body_mut().read_json::<Value>().unwrap_or(Value::Null))
}

fn qty(v: &Value) -> Qty {
    Qty::parse(v.as_str().unwrap_or_else(|| panic!("not a decimal string: {v}"))).unwrap()
}

/// The simulator's BTC (free + locked).
fn venue_btc(sim: u16) -> Qty {
    venue_balance(sim, "BTC")
}

/// `asset`'s free + locked balance at the venue simulator.
fn venue_balance(sim: u16, asset: &str) -> Qty {
    let b = &get(sim, "/control/status")["balances"][asset];
    if b.is_null() {
        return Qty::ZERO;
    }
    Qty(qty(&b["free"]).raw() + qty(&b["locked"]).raw())
}

/// The engine's `/stats`, after checking that its position equals the simulator's account.
fn position_is_the_account(api: u16, sim: u16, eng: &Running, sim_proc: &Running) -> Value {
    let stats = get(api, "/stats");
    assert_eq!(
        qty(&stats["position"]["BTCUSDT"]),
        venue_btc(sim),
        "engine position vs venue account; stats {stats}\nengine stderr:\n{}\nvenue stderr:\n{}",
        eng.stderr_text(),
        sim_proc.stderr_text()
    );
    stats
}

fn wait_until(what: &str, within: Duration, eng: &Running, mut ok: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !ok() {
        assert!(t0.elapsed() < within, "{what}: not within {within:?}; engine stderr:\n{}", eng.stderr_text());
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn live_engine(dir: &Path, sim: u16) -> Command {
    let mut cmd = hft(dir);
    cmd.env("TRADING_MODE", "live")
        .env("API_PORT", "0")
        .env("HFT_API_TOKEN", TOKEN)
        .env("EXCHANGE_API_KEY", KEY)
        .env("EXCHANGE_API_SECRET", SECRET)
        .env("HFT__LIVE__CONFIRM", CONFIRM)
        // These tests are about the venue path, not the go-live gate (tested in tests/backtest.rs).
        .env("HFT__LIVE__GATE_OVERRIDE", "true")
        .env("HFT__LIVE__API_URL", format!("ws://127.0.0.1:{sim}/ws-api/v3"))
        .env("HFT__ENGINE__IDLE", "sleep")
        .env("HFT__FEED__URL", format!("ws://127.0.0.1:{sim}"))
        .env("HFT__FEED__API_URL", format!("ws://127.0.0.1:{sim}/ws-api/v3"))
        .env("HFT__FEED__RECONNECT_MIN_MS", "50")
        .env("HFT__FEED__RECONNECT_MAX_MS", "500")
        // An eager strategy, so orders flow within seconds.
        .env("HFT__STRATEGIES__MOMENTUM__LOOKBACK", "2")
        .env("HFT__STRATEGIES__MOMENTUM__THRESHOLD", "0.000001")
        .env("HFT__RISK__ORDER_COOLDOWN_MS", "100")
        // Strategy orders join the touch as GTC limit orders, so orders rest at the venue
        // (and are canceled after a second if still there).
        .env("HFT__EXEC__ORDER_TYPE", "limit")
        .env("HFT__EXEC__LIMIT_TTL_MS", "1000");
    cmd
}

/// `hft venue-sim` with 100 000 USDT and no BTC, commission in `fee_asset`, and a live engine
/// trading on it: (simulator, its port, engine, the engine's API port).
fn start(dir: &Path, fee_asset: &str) -> (Running, u16, Running, u16) {
    start_with(dir, fee_asset, &[])
}

/// [`start`] with more environment for the engine.
fn start_with(dir: &Path, fee_asset: &str, env: &[(&str, &str)]) -> (Running, u16, Running, u16) {
    let mut sim_cmd = hft(dir);
    sim_cmd.args(["venue-sim", "--listen", "127.0.0.1:0", "--rate", "200", "--api-key", KEY, "--api-secret", SECRET]);
    sim_cmd.args(["--balance", "USDT=100000", "--balance", "BTC=0", "--fee-asset", fee_asset]);
    let sim = Running::spawn(sim_cmd);
    let sim_port = port_after(&sim.line_with("venue-sim listening on", Duration::from_secs(60)), "ws://");
    let mut eng_cmd = live_engine(dir, sim_port);
    eng_cmd.envs(env.iter().copied());
    let eng = Running::spawn(eng_cmd);
    let api = port_after(&eng.line_with("API http://", Duration::from_secs(60)), "http://");
    (sim, sim_port, eng, api)
}

/// Halts trading and waits until neither the venue nor the engine has an order open, and the
/// last reports are in.
fn halt_and_settle(api: u16, sim: u16, eng: &Running) {
    let (status, reply) = post(api, "/trading/halt", Some(TOKEN));
    assert_eq!(status, 200, "{reply}");
    wait_until("no order open at the venue", Duration::from_secs(30), eng, || {
        get(sim, "/control/status")["open_orders"].as_u64() == Some(0)
            && get(api, "/orders?status=open")["total"].as_u64() == Some(0)
    });
    std::thread::sleep(Duration::from_millis(500));
}

#[test]
fn live_mode_trades_against_the_venue_simulator_and_survives_a_disconnect() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Commission in USDT on both sides: a fill recovered by `order.status` after the drop
    // carries no commission (Binance reports none there), and a buy's commission in BTC would
    // then leave the account short of the engine's position by it. The commission in BTC is
    // `commission_in_the_base_asset_keeps_the_position_equal_to_the_account` below.
    let (sim, sim_port, eng, api) = start(dir.path(), "quote");
    assert!(!eng.stderr_text().contains(SECRET), "the secret was printed");

    // Orders placed, acknowledged (NEW) and filled through the venue.
    wait_until("fills through the venue", Duration::from_secs(60), &eng, || {
        get(api, "/stats")["fills"].as_u64().unwrap_or(0) >= 3
    });
    // Fees are charged in USDT, so any execution moves it, even a round trip back to 0 BTC
    // (the position alone may be flat again by now).
    let usdt = venue_balance(sim_port, "USDT");
    assert_ne!(usdt, Qty::parse("100000").expect("qty"), "the venue's account moved (BTC {:?})", venue_btc(sim_port));

    // The venue drops every connection mid-session: the engine reconnects, resubscribes,
    // reconciles and trades on.
    let fills_before = get(api, "/stats")["fills"].as_u64().unwrap_or(0);
    let (status, _) = post(sim_port, "/control/drop", None);
    assert_eq!(status, 200);
    wait_until("trading after the disconnect", Duration::from_secs(60), &eng, || {
        get(api, "/stats")["fills"].as_u64().unwrap_or(0) >= fills_before + 3
    });

    // Halt while orders rest at the venue: new orders stop and every open order is canceled.
    wait_until("orders resting at the venue", Duration::from_secs(60), &eng, || {
        get(sim_port, "/control/status")["open_orders"].as_u64().unwrap_or(0) > 0
    });
    let (status, reply) = post(api, "/trading/halt", Some(TOKEN));
    assert_eq!(status, 200, "{reply}");
    std::thread::sleep(Duration::from_secs(2));
    let st = get(sim_port, "/control/status");
    assert_eq!(st["open_orders"], 0, "open orders left after halt: {st}");
    // The engine agrees: it holds none open either. An order whose fills and final report went
    // to the dropped connection stays open here unless reconciliation (`order.status`) settled it.
    let open = get(api, "/orders?status=open");
    assert_eq!(open["total"], 0, "orders the engine still holds open after halt: {open}");

    // The engine's position equals the simulator's account: every execution booked once.
    let stats = position_is_the_account(api, sim_port, &eng, &sim);
    let orders_then = stats["orders"].as_u64().unwrap_or(0);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(get(api, "/stats")["orders"].as_u64().unwrap_or(0), orders_then, "orders after halt");

    // Wire-to-wire: the simulator traced the engine's orders to the frames behind them.
    let lat = get(sim_port, "/control/latency");
    assert!(lat["count"].as_u64().unwrap_or(0) > 0, "no order traced to a frame: {lat}");
    eprintln!("e2e_live: loopback wire-to-wire tick-to-order {lat}");
    eprintln!("e2e_live: in-process {}", get(api, "/latency")["tick_to_order"]);
}

/// Binance takes a buy's commission in the BTC bought: the account receives the quantity less
/// it. The engine books it so (a fee worth it, and out of the position), so after buys and
/// sells its position is still exactly the simulator's BTC; and it never sends a sell of more
/// BTC than the venue says the account holds.
#[test]
fn commission_in_the_base_asset_keeps_the_position_equal_to_the_account() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (sim, sim_port, eng, api) = start(dir.path(), "received");

    // Buys (their commission in BTC) and sells (in USDT).
    let sides = |fills: &Value| -> (u64, u64) {
        let list = fills["fills"].as_array().cloned().unwrap_or_default();
        let with_base_fee = list.iter().filter(|f| f["side"] == "BUY" && qty(&f["base_fee"]) > Qty::ZERO).count();
        let sells = list.iter().filter(|f| f["side"] == "SELL").count();
        (with_base_fee as u64, sells as u64)
    };
    wait_until("buys paying BTC and sells", Duration::from_secs(90), &eng, || {
        let (buys, sells) = sides(&get(api, "/fills?limit=1000"));
        buys >= 2 && sells >= 1
    });
    halt_and_settle(api, sim_port, &eng);
    let stats = position_is_the_account(api, sim_port, &eng, &sim);
    assert_eq!(stats["unpriced_fees"], 0, "{stats}");
    // The account starts with no BTC: the strategies' short targets are refused by the risk
    // manager from the venue's balances (`max_position`), not sent for the venue to refuse.
    let venue_refusals = get(api, "/orders?status=REJECTED&limit=1000");
    assert_eq!(venue_refusals["total"], 0, "orders the venue refused: {venue_refusals}");
    assert!(stats["rejects_by_reason"]["max_position"].as_u64() > Some(0), "{stats}");
}

/// The engine's position can exceed what the account holds (funds moved out of the account, a
/// commission the venue took that could not be booked): a flatten then sells what the account
/// holds — not a refusal of the whole position, again on every flatten — and what it could not
/// sell stays the engine's position.
#[test]
fn flatten_sells_what_the_account_holds_when_the_position_is_larger() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Commission in USDT: before the withdrawal the position is exactly the account's BTC.
    let (sim, sim_port, eng, api) = start(dir.path(), "quote");
    let position = || qty(&get(api, "/stats")["position"]["BTCUSDT"]);

    // Trade until the engine is long, then halt and let the orders settle; again if the last
    // fills took it back to flat.
    let lot = Qty::parse("0.00001").expect("qty");
    let mut long = Qty::ZERO;
    for _ in 0..5 {
        let (status, reply) = post(api, "/trading/resume", Some(TOKEN));
        assert_eq!(status, 200, "{reply}");
        wait_until("a long position", Duration::from_secs(90), &eng, || position() > Qty(100 * lot.raw()));
        halt_and_settle(api, sim_port, &eng);
        long = position();
        if long > Qty(100 * lot.raw()) {
            break;
        }
    }
    assert!(long > Qty(100 * lot.raw()), "never long after halting: {long:?}");
    assert_eq!(long, venue_btc(sim_port), "engine position vs venue account before the withdrawal");

    // Half of it leaves the account.
    let out = Qty(long.raw() / 2);
    let (status, reply) = post(sim_port, &format!("/control/withdraw?asset=BTC&qty={out}"), None);
    assert_eq!(status, 200, "{reply}");
    std::thread::sleep(Duration::from_millis(500));
    let refused_before = get(api, "/stats")["rejects_by_reason"]["max_position"].as_u64().unwrap_or(0);
    let (status, reply) = post(api, "/trading/flatten", Some(TOKEN));
    assert_eq!(status, 200, "{reply}");

    // What the account held is sold, to less than a lot; the engine keeps the withdrawn part.
    wait_until("the account's BTC sold", Duration::from_secs(30), &eng, || venue_btc(sim_port) < lot);
    wait_until("the sale booked", Duration::from_secs(30), &eng, || {
        position().raw() - venue_btc(sim_port).raw() == out.raw()
    });
    let stats = get(api, "/stats");
    assert_eq!(stats["rejects_by_reason"]["max_position"].as_u64().unwrap_or(0), refused_before, "{stats}");
    let venue_refusals = get(api, "/orders?status=REJECTED&limit=1000");
    assert_eq!(
        venue_refusals["total"],
        0,
        "orders the venue refused: {venue_refusals}\nvenue stderr:\n{}",
        sim.stderr_text()
    );
}

/// Market making alone (quoting only) against the venue: its quotes rest as GTC limits on both
/// sides, fill, and are cancelled and replaced as the market moves, none refused; a halt takes
/// them off the venue; and the position equals the account, BTC commissions included.
#[test]
fn market_making_quotes_rest_at_the_venue_and_the_position_matches_the_account() {
    let dir = tempfile::tempdir().expect("temp dir");
    let only_mm = [
        ("HFT__STRATEGIES__MOMENTUM__ENABLED", "false"),
        ("HFT__STRATEGIES__MEANREVERSION__ENABLED", "false"),
        ("HFT__STRATEGIES__BREAKOUT__ENABLED", "false"),
        ("HFT__STRATEGIES__MARKETMAKING__ENABLED", "true"),
        ("HFT__STRATEGIES__MARKETMAKING__WEIGHT", "0"),
        ("HFT__STRATEGIES__MARKETMAKING__HALF_SPREAD", "0.0002"),
        ("HFT__STRATEGIES__MARKETMAKING__REQUOTE_MS", "300"),
    ];
    let (sim, sim_port, eng, api) = start_with(dir.path(), "received", &only_mm);
    let quotes = |status: &str| {
        let list =
            get(api, &format!("/orders?status={status}&limit=1000"))["orders"].as_array().cloned().unwrap_or_default();
        let mm: Vec<Value> = list.into_iter().filter(|o| o["strategy"] == "marketmaking").collect();
        assert!(mm.iter().all(|o| o["type"] == "LIMIT" && o["tif"] == "GTC"), "{mm:?}");
        let side = |s: &str| mm.iter().filter(|o| o["side"] == s).count();
        (side("BUY"), side("SELL"))
    };
    wait_until("quotes filled on both sides and replaced", Duration::from_secs(90), &eng, || {
        let (filled, canceled) = (quotes("FILLED"), quotes("CANCELED"));
        filled.0 > 0 && filled.1 > 0 && canceled.0 + canceled.1 > 0
    });
    halt_and_settle(api, sim_port, &eng);
    let stats = position_is_the_account(api, sim_port, &eng, &sim);
    assert_eq!(stats["rejects"], 0, "{stats}");
    let venue_refusals = get(api, "/orders?status=REJECTED&limit=1000");
    assert_eq!(venue_refusals["total"], 0, "orders the venue refused: {venue_refusals}");
}

#[test]
fn live_mode_refuses_to_start_without_confirmation_or_keys() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Nothing listens there: the checks come first.
    let mut no_confirm = live_engine(dir.path(), 9);
    no_confirm.env_remove("HFT__LIVE__CONFIRM");
    let mut p = Running::spawn(no_confirm);
    assert!(!p.wait_exit(Duration::from_secs(30)).success());
    assert!(p.stderr_text().contains("live.confirm"), "{}", p.stderr_text());

    let mut no_keys = live_engine(dir.path(), 9);
    no_keys.env_remove("EXCHANGE_API_SECRET");
    let mut p = Running::spawn(no_keys);
    assert!(!p.wait_exit(Duration::from_secs(30)).success());
    assert!(p.stderr_text().contains("EXCHANGE_API_SECRET"), "{}", p.stderr_text());
}
