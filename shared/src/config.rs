//! The configuration schema, its loading and its validation.
//!
//! `config/default.toml` is the single source of truth: it is compiled into the binary as the
//! base layer, so every key has exactly one default, written once. A user file (`--config`,
//! `HFT_CONFIG`, or `config/default.toml` in the working directory) is merged over it, then
//! environment overrides, then the result is deserialized with unknown keys refused and every
//! value range-checked. Errors name the key (and the environment variable it came from).
//!
//! Secrets (`EXCHANGE_API_KEY`, `EXCHANGE_API_SECRET`) come only from the environment, live in
//! [`Secret`] whose `Debug` is redacted, and are never serialized.
//!
//! Runs at start-up on the main thread; allocates freely.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The compiled-in defaults: the text of `config/default.toml`.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// Environment variables kept from the Python predecessor's `.env`, and the key each sets.
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("TRADING_MODE", "mode"),
    ("TRADING_PAIR", "symbols"),
    ("BASE_CAPITAL", "capital.total"),
    ("MAX_POSITION_SIZE", "risk.max_position"),
    ("MAX_RISK_PER_TRADE", "risk.risk_per_trade"),
    ("API_HOST", "api.host"),
    ("API_PORT", "api.port"),
];

/// Prefix of generic overrides: `HFT__ENGINE__IDLE=spin` sets `engine.idle`.
pub const ENV_PREFIX: &str = "HFT__";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Paper,
    Shadow,
    Live,
    Backtest,
}

impl Mode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Paper => "paper",
            Mode::Shadow => "shadow",
            Mode::Live => "live",
            Mode::Backtest => "backtest",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the hot thread does when a duty cycle found no work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdleKind {
    /// Busy-spin (`spin_loop` hint): lowest latency, owns a core. Production, pinned.
    Spin,
    /// `sched_yield`: low latency, gives the core away when others want it.
    Yield,
    /// Sleep `engine.sleep_us`: cheapest; adds wake-up latency.
    Sleep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MarketSource {
    /// Seeded synthetic Binance-format frames.
    Synthetic,
    /// Capture files (`market.replay_files`), replayed through the same decoder.
    Replay,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub mode: Mode,
    /// Binance symbols, upper case (`BTCUSDT`). Index = `SymbolId`.
    pub symbols: Vec<String>,
    pub capital: CapitalConfig,
    pub risk: RiskConfig,
    pub filters: FiltersConfig,
    pub fees: FeesConfig,
    pub strategies: StrategiesConfig,
    pub engine: EngineConfig,
    pub market: MarketConfig,
    pub feed: FeedConfig,
    pub api: ApiConfig,
    pub exec: ExecConfig,
    pub live: LiveConfig,
    pub store: StoreConfig,
    /// From the environment only; never serialized.
    #[serde(skip)]
    pub secrets: Secrets,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapitalConfig {
    /// Total capital, quote currency (USDT).
    pub total: f64,
    /// Capital kept out of trading, quote currency.
    pub reserve: f64,
}

impl CapitalConfig {
    /// Capital the engine may put at risk: `total - reserve`.
    pub fn deployable(&self) -> f64 {
        self.total - self.reserve
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskConfig {
    /// Maximum absolute position per symbol, as notional in quote currency.
    pub max_position: f64,
    /// Maximum sum of absolute position notionals over all symbols.
    pub max_total_position: f64,
    /// Fraction of deployable capital risked per trade.
    pub risk_per_trade: f64,
    /// Daily loss limit, fraction of total capital (kill switch).
    pub daily_loss: f64,
    /// Maximum drawdown from the equity peak, fraction (kill switch).
    pub max_drawdown: f64,
    /// Maximum orders open at once, all symbols.
    pub max_open_orders: u32,
    /// Minimum time between two orders on one symbol, ms.
    pub order_cooldown_ms: u64,
    /// Maximum absolute position per symbol, base quantity.
    pub max_position_qty: f64,
    /// Stop distance assumed for sizing, fraction of price: an order may risk at most
    /// `risk_per_trade` × deployable capital if the price moves this far against it.
    pub stop_distance: f64,
    /// Fat-finger band: an order's price may be at most this fraction away from the mid.
    pub price_band: f64,
    /// An identical order (symbol, side, quantity, price) within this window is refused, ms.
    pub duplicate_window_ms: u64,
    /// The venue's order-rate limits (Binance spot `ORDERS`: per 10 s and per UTC day).
    pub orders_per_10s: u32,
    pub orders_per_day: u32,
    /// On a kill-switch trip, also send reduce-only orders that bring every position to zero.
    pub kill_flatten: bool,
    /// A position may go below zero (short). `false` trades as a spot account does: no sell
    /// takes a position below flat, and a short target is held at flat — so paper, shadow and
    /// backtests show what a spot account could have done. In live mode the venue's balances
    /// limit sells whatever this says.
    pub allow_short: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FiltersConfig {
    /// Price increment (Binance PRICE_FILTER tickSize).
    pub tick_size: f64,
    /// Quantity increment (Binance LOT_SIZE stepSize).
    pub step_size: f64,
    /// Minimum order notional, quote currency (Binance NOTIONAL minNotional).
    pub min_notional: f64,
    /// Order quantity bounds (Binance LOT_SIZE minQty / maxQty).
    pub min_qty: f64,
    pub max_qty: f64,
}

/// Trading fees as fractions of notional (0.001 = 0.1 %, Binance's base spot rate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeesConfig {
    /// Fee on resting (maker) fills; negative for a rebate.
    pub maker: f64,
    /// Fee on aggressive (taker) fills.
    pub taker: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategiesConfig {
    pub momentum: MomentumConfig,
    pub meanreversion: MeanReversionConfig,
    pub breakout: BreakoutConfig,
    pub marketmaking: MarketMakingConfig,
}

/// Which momentum indicator `strategies.momentum` computes (only that one runs per tick).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MomentumVariant {
    /// Return of the mid over `lookback` ticks / `threshold`.
    Return,
    /// Wilder's RSI over `rsi_period` changes of the mid: (RSI − 50) / 50.
    Rsi,
    /// MACD histogram (`macd_fast`, `macd_slow`, `macd_signal` EMAs) / (`threshold` × mid).
    Macd,
    /// Volume-weighted mean per-tick return over `lookback` ticks × `lookback` / `threshold`.
    Volume,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MomentumConfig {
    pub enabled: bool,
    /// Weight of the signal in the aggregate, 0..=10.
    pub weight: f64,
    pub variant: MomentumVariant,
    /// Number of ticks the return (`return`, `volume`) is measured over, 2..=10000.
    pub lookback: u32,
    /// Return that saturates the signal to ±1 (`return`, `volume`); for `macd`, the histogram
    /// as a fraction of the mid that does. 0 < value <= 1.
    pub threshold: f64,
    /// Wilder smoothing period of the RSI, in ticks, 2..=10000.
    pub rsi_period: u32,
    /// Fast EMA period of the MACD, ticks, 1..=9999.
    pub macd_fast: u32,
    /// Slow EMA period of the MACD, ticks, `macd_fast` + 1..=10000.
    pub macd_slow: u32,
    /// Period of the EMA of the MACD (the signal line), ticks, 1..=10000.
    pub macd_signal: u32,
}

/// How `strategies.meanreversion` scales the z-score of the mid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MeanReversionVariant {
    /// −(mid − mean) / (`std_mult` × std): ±1 at the Bollinger bands.
    Bollinger,
    /// −z / `z_threshold`.
    Zscore,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeanReversionConfig {
    pub enabled: bool,
    /// Weight of the signal in the aggregate, 0..=10.
    pub weight: f64,
    pub variant: MeanReversionVariant,
    /// Ticks in the rolling mean and population standard deviation, 2..=10000.
    pub period: u32,
    /// Band width in standard deviations (`bollinger`), 0 < value <= 10.
    pub std_mult: f64,
    /// |z| that saturates the signal (`zscore`), 0 < value <= 10.
    pub z_threshold: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakoutConfig {
    pub enabled: bool,
    /// Weight of the signal in the aggregate, 0..=10.
    pub weight: f64,
    /// Ticks in the support/resistance channel (previous ticks, excluding the current), 2..=10000.
    pub period: u32,
    /// Ticks of recent volume that must confirm a breakout, 1..=`period`.
    pub volume_period: u32,
    /// Recent volume must be at least this multiple of the channel's average volume over as
    /// many ticks; 0 = no confirmation needed. 0..=100.
    pub volume_factor: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketMakingConfig {
    pub enabled: bool,
    /// Weight of the signal in the aggregate, 0..=10.
    pub weight: f64,
    /// Half the quoted spread, as a fraction of the mid, 1e-6..=0.05.
    pub half_spread: f64,
    /// Inventory skew, 0..=1: at `max_inventory` both quotes shift by `skew` × half-spread
    /// against the inventory (1: the reducing side quotes at the fair price).
    pub skew: f64,
    /// Largest |position| (base quantity) the quotes may build; the side that would go beyond
    /// it is not quoted. 1e-8..=1e6.
    pub max_inventory: f64,
    /// Size of each quote, base quantity, `filters.step_size`..=`max_inventory` (rounded down
    /// to the step).
    pub quote_qty: f64,
    /// A resting quote that no longer matches the computed one is replaced at most this often,
    /// ms (1..=60000): each side's orders stay well inside the venue's order-rate limits.
    pub requote_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// CPU core to pin the hot thread to; unset = not pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core: Option<usize>,
    pub idle: IdleKind,
    /// Sleep per idle cycle when `idle = "sleep"`, µs.
    pub sleep_us: u64,
    /// Event ring capacity (engine → control), slots.
    pub event_ring: usize,
    /// Command ring capacity (control → engine), slots.
    pub command_ring: usize,
    /// Parked audit events the engine can hold while the event ring is full.
    pub audit_overflow: usize,
    /// Period of stats/position/latency snapshots, ms.
    pub snapshot_ms: u64,
    /// Period of heartbeats, ms.
    pub heartbeat_ms: u64,
    /// Lock every page of the process in RAM at start (`mlockall`, current and future pages),
    /// so that the hot thread never waits on a page brought back from swap or reclaimed. Needs
    /// an unlimited locked-memory limit (`LimitMEMLOCK=infinity`, `ulimit -l unlimited`); the
    /// process refuses to start when it cannot lock.
    pub lock_memory: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketConfig {
    pub source: MarketSource,
    /// Seed of the synthetic market; the same seed gives the same frames.
    pub seed: u64,
    /// Frames per second; 0 = as fast as possible.
    pub rate: u32,
    /// First mid price of the synthetic market.
    pub start_price: f64,
    /// Price levels per side in the synthetic book.
    pub depth_levels: u32,
    /// Capture files (`<ns> <json>` per line, gzip or plain) for `source = "replay"`, in order.
    pub replay_files: Vec<String>,
    /// Replay pace: 1 = as recorded, 2 = twice as fast, 0 = as fast as possible.
    pub replay_speed: f64,
}

/// The live market-data connection (shadow and live modes) and feed health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    /// Combined-stream base URL; `/stream?streams=…` is appended.
    pub url: String,
    /// WebSocket API URL (depth snapshots, and orders in live mode).
    pub api_url: String,
    /// Levels requested in a depth snapshot (Binance: 5 to 5000).
    pub snapshot_limit: u32,
    /// No frame for this long: the feed is stale and orders are denied, ms.
    pub stale_ms: u64,
    /// A book not updated for this long is too old to price orders against, ms.
    pub max_book_age_ms: u64,
    /// First reconnect delay, ms (doubles per failed attempt, with jitter).
    pub reconnect_min_ms: u64,
    /// Cap of the reconnect delay, ms.
    pub reconnect_max_ms: u64,
    /// Planned reconnect after this long connected (Binance closes connections at 24 h), s.
    pub max_connection_s: u64,
    /// Capture every received frame to this gzip file (`<ns> <json>` per line); empty = off.
    pub record: String,
}

/// The fill model of paper, shadow and backtest modes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecConfig {
    /// Order entry latency: an order reaches the (simulated) venue this long after it is sent, µs.
    pub order_latency_us: u64,
    /// Acknowledgement latency: the venue's answer reaches the engine this long after, µs.
    pub ack_latency_us: u64,
    /// How strategy orders are sent: `market` (take the touch) or `limit` (join the touch:
    /// a GTC limit at the best bid for a buy, the best ask for a sell, canceled when older than
    /// `limit_ttl_ms`). Flattening is always by market order.
    pub order_type: StrategyOrderType,
    /// A strategy's resting limit order is canceled after this long, ms.
    pub limit_ttl_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StrategyOrderType {
    Market,
    Limit,
}

/// Live trading over Binance's WebSocket API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveConfig {
    /// Must be exactly [`LIVE_CONFIRMATION`] for live mode to start.
    pub confirm: String,
    /// WebSocket API endpoint for orders and user data.
    pub api_url: String,
    /// Binance `recvWindow` for signed requests, ms.
    pub recv_window_ms: u64,
    /// Start live mode without a passing go-live gate verdict (`hft gate`) in the store. An
    /// explicit operator decision; off by default.
    pub gate_override: bool,
}

/// The durable store (SQLite) of orders, fills, positions, risk state and the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Off: nothing is persisted and nothing is restored at start (positions and the kill switch
    /// start fresh).
    pub enabled: bool,
    /// Database file; a relative path is taken from the working directory. Its directory is
    /// created when missing.
    pub path: String,
    /// `full`: every commit reaches the disk before it counts (survives power loss); `normal`:
    /// survives a process crash, may lose the last commits on power loss.
    pub synchronous: StoreSync,
}

/// SQLite's `synchronous` setting for the store (WAL journal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreSync {
    Full,
    Normal,
}

/// The phrase `live.confirm` must hold for live mode to start.
pub const LIVE_CONFIRMATION: &str = "I understand this trades real money";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    pub host: String,
    /// TCP port; 0 lets the OS choose (the chosen port is printed).
    pub port: u16,
}

/// A secret string. `Debug` is redacted and there is no `Display`: use [`Secret::expose`]
/// exactly where the value is needed (signing), nowhere else.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Self(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Secrets {
    pub api_key: Option<Secret>,
    pub api_secret: Option<Secret>,
}

/// A configuration the process must refuse to start with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {msg}")]
    Read { path: PathBuf, msg: String },
    #[error("config file {path} is not valid TOML: {msg}")]
    Syntax { path: String, msg: String },
    /// Unknown key, wrong type or missing key.
    #[error("{}: {msg}", describe(key, env))]
    Schema { key: String, env: Option<String>, msg: String },
    #[error("{}: {value} is out of range; allowed: {allowed}", describe(key, env))]
    Range { key: String, env: Option<String>, value: String, allowed: String },
}

fn describe(key: &str, env: &Option<String>) -> String {
    match env {
        Some(var) => format!("{var} (config key `{key}`)"),
        None => format!("config key `{key}`"),
    }
}

impl ConfigError {
    /// The config key at fault, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Schema { key, .. } | ConfigError::Range { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// Where the configuration comes from.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// User file merged over the defaults (`None`: defaults only).
    pub file: Option<PathBuf>,
}

impl Sources {
    /// The file to use: `explicit` if given, else `HFT_CONFIG`, else `config/default.toml` in the
    /// working directory when it exists.
    pub fn resolve(explicit: Option<PathBuf>, env: &dyn Fn(&str) -> Option<String>) -> Self {
        let file = explicit.or_else(|| env("HFT_CONFIG").map(PathBuf::from)).or_else(|| {
            let p = PathBuf::from("config/default.toml");
            p.exists().then_some(p)
        });
        Self { file }
    }
}

impl Config {
    /// Loads defaults ← file ← environment, then validates. `env` looks up environment
    /// variables (injected so tests need not mutate the process environment).
    pub fn load(sources: &Sources, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut tree: toml::Table = DEFAULT_TOML.parse().map_err(|e: toml::de::Error| ConfigError::Syntax {
            path: "<built-in defaults>".into(),
            msg: e.to_string(),
        })?;
        if let Some(path) = &sources.file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError::Read { path: path.clone(), msg: e.to_string() })?;
            Self::merge_text(&mut tree, &text, &path.display().to_string())?;
        }
        Self::from_tree(tree, env)
    }

    /// Defaults ← `text` ← environment (for tests and embedded configs).
    pub fn from_toml_str(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut tree: toml::Table = DEFAULT_TOML.parse().map_err(|e: toml::de::Error| ConfigError::Syntax {
            path: "<built-in defaults>".into(),
            msg: e.to_string(),
        })?;
        Self::merge_text(&mut tree, text, "<string>")?;
        Self::from_tree(tree, env)
    }

    fn merge_text(tree: &mut toml::Table, text: &str, origin: &str) -> Result<(), ConfigError> {
        let over: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Syntax { path: origin.into(), msg: e.to_string() })?;
        merge(tree, over);
        Ok(())
    }

    fn from_tree(mut tree: toml::Table, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        // key path -> env var that set it, so errors can name what the user actually typed.
        let mut provenance: BTreeMap<String, String> = BTreeMap::new();
        for &(var, key) in ENV_OVERRIDES {
            if let Some(raw) = env(var) {
                let value = env_value(var, key, &raw)?;
                set_path(&mut tree, key, value);
                provenance.insert(key.to_string(), var.to_string());
            }
        }
        for (var, raw) in generic_overrides(env) {
            let key = var[ENV_PREFIX.len()..].split("__").map(str::to_ascii_lowercase).collect::<Vec<_>>().join(".");
            let value = parse_loose(&raw);
            set_path(&mut tree, &key, value);
            provenance.insert(key, var);
        }

        let de = toml::Value::Table(tree);
        let mut cfg: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let mut key = e.path().to_string();
            let msg = e.inner().to_string();
            // serde reports an unknown field at its parent's path; name the field itself.
            if let Some(field) = msg.strip_prefix("unknown field `").and_then(|r| r.split('`').next()) {
                if key == "." || key.is_empty() {
                    key = field.to_string();
                } else if !key.ends_with(field) {
                    key = format!("{key}.{field}");
                }
            }
            let env = provenance.get(&key).cloned();
            ConfigError::Schema { key, env, msg }
        })?;
        cfg.secrets = Secrets {
            api_key: env("EXCHANGE_API_KEY").filter(|s| !s.is_empty()).map(Secret::new),
            api_secret: env("EXCHANGE_API_SECRET").filter(|s| !s.is_empty()).map(Secret::new),
        };
        cfg.validate().map_err(|mut e| {
            if let ConfigError::Range { key, env, .. } = &mut e {
                *env = provenance.get(key.as_str()).cloned();
            }
            e
        })?;
        Ok(cfg)
    }

    /// Checks every value against its allowed range. The first violation is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let r = |key: &str, value: String, allowed: &str| ConfigError::Range {
            key: key.into(),
            env: None,
            value,
            allowed: allowed.into(),
        };
        let fin = |key: &str, v: f64, lo: f64, lo_incl: bool, hi: f64, allowed: &str| {
            let ok = v.is_finite() && (if lo_incl { v >= lo } else { v > lo }) && v <= hi;
            if ok { Ok(()) } else { Err(r(key, v.to_string(), allowed)) }
        };

        if self.symbols.is_empty() || self.symbols.len() > 64 {
            return Err(r("symbols", format!("{} symbols", self.symbols.len()), "1 to 64 symbols"));
        }
        for (i, s) in self.symbols.iter().enumerate() {
            let ok = (2..=20).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
            if !ok {
                return Err(r("symbols", format!("{s:?}"), "2-20 characters A-Z 0-9, e.g. BTCUSDT"));
            }
            if self.symbols[..i].contains(s) {
                return Err(r("symbols", format!("{s:?} twice"), "each symbol once"));
            }
        }

        fin("capital.total", self.capital.total, 0.0, false, 1e12, "0 < value <= 1e12 (quote currency)")?;
        fin("capital.reserve", self.capital.reserve, 0.0, true, self.capital.total, "0 <= value < capital.total")?;
        if self.capital.reserve >= self.capital.total {
            return Err(r("capital.reserve", self.capital.reserve.to_string(), "0 <= value < capital.total"));
        }

        let rk = &self.risk;
        fin("risk.max_position", rk.max_position, 0.0, false, 1e12, "0 < value <= 1e12 (quote currency)")?;
        fin("risk.max_total_position", rk.max_total_position, 0.0, false, 1e12, "0 < value <= 1e12 (quote currency)")?;
        fin(
            "risk.risk_per_trade",
            rk.risk_per_trade,
            0.0,
            false,
            0.25,
            "0 < value <= 0.25 (fraction of deployable capital)",
        )?;
        fin("risk.daily_loss", rk.daily_loss, 0.0, false, 1.0, "0 < value <= 1 (fraction of capital)")?;
        fin("risk.max_drawdown", rk.max_drawdown, 0.0, false, 1.0, "0 < value <= 1 (fraction of equity peak)")?;
        if !(1..=10_000).contains(&rk.max_open_orders) {
            return Err(r("risk.max_open_orders", rk.max_open_orders.to_string(), "1 to 10000"));
        }
        if rk.order_cooldown_ms > 3_600_000 {
            return Err(r("risk.order_cooldown_ms", rk.order_cooldown_ms.to_string(), "0 to 3600000"));
        }
        fin("risk.max_position_qty", rk.max_position_qty, 0.0, false, 1e9, "0 < value <= 1e9 (base quantity)")?;
        fin("risk.stop_distance", rk.stop_distance, 0.0, false, 1.0, "0 < value <= 1 (fraction of price)")?;
        fin("risk.price_band", rk.price_band, 0.0, false, 0.5, "0 < value <= 0.5 (fraction of the mid)")?;
        if rk.duplicate_window_ms > 3_600_000 {
            return Err(r("risk.duplicate_window_ms", rk.duplicate_window_ms.to_string(), "0 to 3600000"));
        }
        if !(1..=100_000).contains(&rk.orders_per_10s) {
            return Err(r("risk.orders_per_10s", rk.orders_per_10s.to_string(), "1 to 100000"));
        }
        if !(1..=100_000_000).contains(&rk.orders_per_day) {
            return Err(r("risk.orders_per_day", rk.orders_per_day.to_string(), "1 to 100000000"));
        }

        let f = &self.filters;
        fin("filters.tick_size", f.tick_size, 1e-8, true, 1e6, "1e-8 <= value <= 1e6")?;
        fin("filters.step_size", f.step_size, 1e-8, true, 1e6, "1e-8 <= value <= 1e6")?;
        fin("filters.min_notional", f.min_notional, 0.0, true, 1e9, "0 <= value <= 1e9")?;
        fin("filters.min_qty", f.min_qty, 0.0, true, 1e9, "0 <= value <= 1e9 (base quantity)")?;
        fin("filters.max_qty", f.max_qty, f.min_qty, false, 1e10, "filters.min_qty < value <= 1e10")?;
        for (key, v) in [
            ("filters.tick_size", f.tick_size),
            ("filters.step_size", f.step_size),
            ("filters.min_qty", f.min_qty),
            ("risk.max_position_qty", rk.max_position_qty),
        ] {
            let raw = (v * 1e8).round();
            if (raw / 1e8 - v).abs() > 1e-12 {
                return Err(r(key, v.to_string(), "a multiple of 1e-8"));
            }
        }

        fin("fees.maker", self.fees.maker, -0.001, true, 0.01, "-0.001 <= value <= 0.01")?;
        fin("fees.taker", self.fees.taker, 0.0, true, 0.01, "0 <= value <= 0.01")?;

        let st = &self.strategies;
        for (key, w) in [
            ("strategies.momentum.weight", st.momentum.weight),
            ("strategies.meanreversion.weight", st.meanreversion.weight),
            ("strategies.breakout.weight", st.breakout.weight),
            ("strategies.marketmaking.weight", st.marketmaking.weight),
        ] {
            fin(key, w, 0.0, true, 10.0, "0 <= value <= 10")?;
        }
        let m = &st.momentum;
        if !(2..=10_000).contains(&m.lookback) {
            return Err(r("strategies.momentum.lookback", m.lookback.to_string(), "2 to 10000"));
        }
        fin("strategies.momentum.threshold", m.threshold, 0.0, false, 1.0, "0 < value <= 1")?;
        if !(2..=10_000).contains(&m.rsi_period) {
            return Err(r("strategies.momentum.rsi_period", m.rsi_period.to_string(), "2 to 10000"));
        }
        if !(1..=9_999).contains(&m.macd_fast) {
            return Err(r("strategies.momentum.macd_fast", m.macd_fast.to_string(), "1 to 9999"));
        }
        if m.macd_slow <= m.macd_fast || m.macd_slow > 10_000 {
            return Err(r(
                "strategies.momentum.macd_slow",
                m.macd_slow.to_string(),
                "strategies.momentum.macd_fast + 1 to 10000",
            ));
        }
        if !(1..=10_000).contains(&m.macd_signal) {
            return Err(r("strategies.momentum.macd_signal", m.macd_signal.to_string(), "1 to 10000"));
        }
        let mr = &st.meanreversion;
        if !(2..=10_000).contains(&mr.period) {
            return Err(r("strategies.meanreversion.period", mr.period.to_string(), "2 to 10000"));
        }
        fin("strategies.meanreversion.std_mult", mr.std_mult, 0.0, false, 10.0, "0 < value <= 10")?;
        fin("strategies.meanreversion.z_threshold", mr.z_threshold, 0.0, false, 10.0, "0 < value <= 10")?;
        let b = &st.breakout;
        if !(2..=10_000).contains(&b.period) {
            return Err(r("strategies.breakout.period", b.period.to_string(), "2 to 10000"));
        }
        if b.volume_period < 1 || b.volume_period > b.period {
            return Err(r(
                "strategies.breakout.volume_period",
                b.volume_period.to_string(),
                "1 to strategies.breakout.period",
            ));
        }
        fin("strategies.breakout.volume_factor", b.volume_factor, 0.0, true, 100.0, "0 (no confirmation) to 100")?;
        let mm = &st.marketmaking;
        fin("strategies.marketmaking.half_spread", mm.half_spread, 1e-6, true, 0.05, "1e-6 <= value <= 0.05")?;
        fin("strategies.marketmaking.skew", mm.skew, 0.0, true, 1.0, "0 <= value <= 1")?;
        fin("strategies.marketmaking.max_inventory", mm.max_inventory, 1e-8, true, 1e6, "1e-8 <= value <= 1e6")?;
        fin(
            "strategies.marketmaking.quote_qty",
            mm.quote_qty,
            self.filters.step_size,
            true,
            mm.max_inventory,
            "filters.step_size <= value <= strategies.marketmaking.max_inventory",
        )?;
        if !(1..=60_000).contains(&mm.requote_ms) {
            return Err(r("strategies.marketmaking.requote_ms", mm.requote_ms.to_string(), "1 to 60000"));
        }

        if self.exec.order_latency_us > 10_000_000 {
            return Err(r("exec.order_latency_us", self.exec.order_latency_us.to_string(), "0 to 10000000"));
        }
        if !(1..=3_600_000).contains(&self.exec.limit_ttl_ms) {
            return Err(r("exec.limit_ttl_ms", self.exec.limit_ttl_ms.to_string(), "1 to 3600000"));
        }
        if self.exec.ack_latency_us > 10_000_000 {
            return Err(r("exec.ack_latency_us", self.exec.ack_latency_us.to_string(), "0 to 10000000"));
        }
        if !(1..=60_000).contains(&self.live.recv_window_ms) {
            return Err(r(
                "live.recv_window_ms",
                self.live.recv_window_ms.to_string(),
                "1 to 60000 (Binance's maximum)",
            ));
        }
        if !(self.live.api_url.starts_with("ws://") || self.live.api_url.starts_with("wss://")) {
            return Err(r("live.api_url", format!("{:?}", self.live.api_url), "a ws:// or wss:// URL"));
        }

        let e = &self.engine;
        if let Some(core) = e.core
            && core > 4095
        {
            return Err(r("engine.core", core.to_string(), "0 to 4095"));
        }
        if !(1..=1_000_000).contains(&e.sleep_us) {
            return Err(r("engine.sleep_us", e.sleep_us.to_string(), "1 to 1000000"));
        }
        if !(64..=1 << 22).contains(&e.event_ring) {
            return Err(r("engine.event_ring", e.event_ring.to_string(), "64 to 4194304"));
        }
        if !(16..=1 << 16).contains(&e.command_ring) {
            return Err(r("engine.command_ring", e.command_ring.to_string(), "16 to 65536"));
        }
        if !(64..=1 << 20).contains(&e.audit_overflow) {
            return Err(r("engine.audit_overflow", e.audit_overflow.to_string(), "64 to 1048576"));
        }
        if !(10..=60_000).contains(&e.snapshot_ms) {
            return Err(r("engine.snapshot_ms", e.snapshot_ms.to_string(), "10 to 60000"));
        }
        if !(10..=10_000).contains(&e.heartbeat_ms) {
            return Err(r("engine.heartbeat_ms", e.heartbeat_ms.to_string(), "10 to 10000"));
        }

        let mk = &self.market;
        if mk.rate > 50_000_000 {
            return Err(r("market.rate", mk.rate.to_string(), "0 (as fast as possible) to 50000000 frames/s"));
        }
        fin("market.start_price", mk.start_price, 0.0, false, 1e9, "0 < value <= 1e9")?;
        if !(5..=5_000).contains(&mk.depth_levels) {
            return Err(r("market.depth_levels", mk.depth_levels.to_string(), "5 to 5000"));
        }
        fin("market.replay_speed", mk.replay_speed, 0.0, true, 1e6, "0 (as fast as possible) to 1e6")?;
        if mk.source == MarketSource::Replay && mk.replay_files.is_empty() {
            return Err(r(
                "market.replay_files",
                "[]".into(),
                "at least one capture file when market.source = \"replay\"",
            ));
        }

        let fd = &self.feed;
        for (key, url) in [("feed.url", &fd.url), ("feed.api_url", &fd.api_url)] {
            if !(url.starts_with("ws://") || url.starts_with("wss://")) {
                return Err(r(key, format!("{url:?}"), "a ws:// or wss:// URL"));
            }
        }
        if !(5..=5000).contains(&fd.snapshot_limit) {
            return Err(r("feed.snapshot_limit", fd.snapshot_limit.to_string(), "5 to 5000"));
        }
        if !(100..=3_600_000).contains(&fd.stale_ms) {
            return Err(r("feed.stale_ms", fd.stale_ms.to_string(), "100 to 3600000"));
        }
        if !(100..=3_600_000).contains(&fd.max_book_age_ms) {
            return Err(r("feed.max_book_age_ms", fd.max_book_age_ms.to_string(), "100 to 3600000"));
        }
        if !(10..=60_000).contains(&fd.reconnect_min_ms) {
            return Err(r("feed.reconnect_min_ms", fd.reconnect_min_ms.to_string(), "10 to 60000"));
        }
        if fd.reconnect_max_ms < fd.reconnect_min_ms || fd.reconnect_max_ms > 600_000 {
            return Err(r("feed.reconnect_max_ms", fd.reconnect_max_ms.to_string(), "feed.reconnect_min_ms to 600000"));
        }
        if !(60..=86_000).contains(&fd.max_connection_s) {
            return Err(r(
                "feed.max_connection_s",
                fd.max_connection_s.to_string(),
                "60 to 86000 (Binance closes at 86400)",
            ));
        }

        let st = &self.store;
        if st.enabled && (st.path.trim().is_empty() || st.path.contains('\0') || st.path.ends_with('/')) {
            return Err(r("store.path", format!("{:?}", st.path), "a file path, e.g. data/hft.sqlite"));
        }

        if self.api.host.parse::<IpAddr>().is_err() {
            return Err(r("api.host", format!("{:?}", self.api.host), "an IP address, e.g. 127.0.0.1"));
        }
        Ok(())
    }

    /// `SymbolId` of a symbol name.
    pub fn symbol_id(&self, name: &str) -> Option<crate::ids::SymbolId> {
        self.symbols.iter().position(|s| s == name).map(|i| crate::ids::SymbolId(i as u16))
    }

    /// Is the API bound to a loopback address?
    pub fn api_is_loopback(&self) -> bool {
        self.api.host.parse::<IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(false)
    }

    /// The effective configuration as TOML (secrets are never included).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Convenience for the real process environment.
    pub fn process_env(name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    /// This configuration with `overrides` applied (`("risk.max_position", "500")`: each key an
    /// existing leaf, each value read as a TOML value where it is one, else as a string), then
    /// checked like a loaded one. No environment is read; secrets are kept. An unknown key, a
    /// wrong type or an out-of-range value is an error naming the key.
    pub fn with_overrides(&self, overrides: &[(String, String)]) -> Result<Self, ConfigError> {
        let syntax = |e: toml::de::Error| ConfigError::Syntax { path: "<effective config>".into(), msg: e.to_string() };
        let mut tree: toml::Table = self.to_toml().parse().map_err(syntax)?;
        for (key, raw) in overrides {
            let mut t = &tree;
            let mut parts = key.split('.').peekable();
            while let Some(p) = parts.next() {
                let leaf = parts.peek().is_none();
                match t.get(p) {
                    Some(toml::Value::Table(next)) if !leaf => t = next,
                    Some(v) if leaf && !v.is_table() => {}
                    _ => {
                        let msg = "no such setting (a dotted path to a value, e.g. risk.max_position)".to_string();
                        return Err(ConfigError::Schema { key: key.clone(), env: None, msg });
                    }
                }
            }
            set_path(&mut tree, key, parse_loose(raw));
        }
        let mut cfg = Self::from_tree(tree, &|_| None)?;
        cfg.secrets = self.secrets.clone();
        Ok(cfg)
    }
}

/// Recursively merges `over` into `base`: tables merge, everything else replaces.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn set_path(tree: &mut toml::Table, key: &str, value: toml::Value) {
    let mut parts = key.split('.').peekable();
    let mut t = tree;
    while let Some(p) = parts.next() {
        if parts.peek().is_none() {
            t.insert(p.to_string(), value);
            return;
        }
        let entry = t.entry(p.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        match entry {
            toml::Value::Table(next) => t = next,
            _ => return,
        }
    }
}

/// Converts a legacy environment variable's text into the TOML value its key expects.
fn env_value(var: &str, key: &str, raw: &str) -> Result<toml::Value, ConfigError> {
    let bad = |allowed: &str| ConfigError::Range {
        key: key.into(),
        env: Some(var.into()),
        value: format!("{raw:?}"),
        allowed: allowed.into(),
    };
    let raw_t = raw.trim();
    Ok(match key {
        "mode" => toml::Value::String(raw_t.to_ascii_lowercase()),
        "symbols" => {
            // `BTCUSDT`, `BTC/USDT`, `btcusdt,ethusdt` are all accepted.
            let list: Vec<toml::Value> = raw_t
                .split(',')
                .map(|s| toml::Value::String(s.trim().replace(['/', '-', '_'], "").to_ascii_uppercase()))
                .collect();
            toml::Value::Array(list)
        }
        "api.host" => toml::Value::String(raw_t.to_string()),
        "api.port" => match raw_t.parse::<u16>() {
            Ok(p) => toml::Value::Integer(p as i64),
            Err(_) => return Err(bad("a TCP port, 0 to 65535")),
        },
        _ => match raw_t.parse::<f64>() {
            Ok(v) if v.is_finite() => toml::Value::Float(v),
            _ => return Err(bad("a decimal number")),
        },
    })
}

/// `HFT__SECTION__KEY` variables, sorted for determinism.
fn generic_overrides(env: &dyn Fn(&str) -> Option<String>) -> Vec<(String, String)> {
    // The injected lookup cannot enumerate; the process environment can. Tests use
    // `ENV_OVERRIDES` through the lookup and the generic prefix through the real environment.
    let mut v: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX) && k.len() > ENV_PREFIX.len())
        .filter_map(|(k, _)| env(&k).map(|val| (k, val)))
        .collect();
    v.sort();
    v
}

/// Reads an override as a TOML value where it is one (`3`, `true`, `0.5`, `["A"]`), else as a
/// string (`spin`).
fn parse_loose(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match doc.parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

/// Default config path relative to the repository root, for help texts.
pub fn default_path() -> &'static Path {
    Path::new("config/default.toml")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn defaults_load_and_validate() {
        let c = Config::from_toml_str("", &no_env).unwrap();
        assert_eq!(c.mode, Mode::Paper);
        assert_eq!(c.symbols, vec!["BTCUSDT".to_string()]);
        assert_eq!(c.risk.max_position, 1000.0);
        assert_eq!(c.risk.risk_per_trade, 0.02);
        assert_eq!(c.risk.daily_loss, 0.05);
        assert_eq!(c.risk.max_drawdown, 0.10);
        assert_eq!(c.api.host, "127.0.0.1");
        assert_eq!(c.api.port, 8000);
        assert!(c.capital.deployable() > 0.0 && c.capital.deployable() < c.capital.total);
    }

    #[test]
    fn legacy_env_names_override() {
        let env = env_of(&[
            ("TRADING_MODE", "Paper"),
            ("TRADING_PAIR", "eth/usdt"),
            ("BASE_CAPITAL", "50000"),
            ("MAX_POSITION_SIZE", "250.5"),
            ("MAX_RISK_PER_TRADE", "0.01"),
            ("API_HOST", "127.0.0.2"),
            ("API_PORT", "9001"),
        ]);
        let c = Config::from_toml_str("", &env).unwrap();
        assert_eq!(c.symbols, vec!["ETHUSDT".to_string()]);
        assert_eq!(c.capital.total, 50000.0);
        assert_eq!(c.risk.max_position, 250.5);
        assert_eq!(c.risk.risk_per_trade, 0.01);
        assert_eq!(c.api.host, "127.0.0.2");
        assert_eq!(c.api.port, 9001);
    }

    #[test]
    fn out_of_range_env_names_the_variable_and_range() {
        let env = env_of(&[("MAX_RISK_PER_TRADE", "1.5")]);
        let e = Config::from_toml_str("", &env).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("MAX_RISK_PER_TRADE"), "{msg}");
        assert!(msg.contains("risk.risk_per_trade"), "{msg}");
        assert!(msg.contains("0 < value <= 0.25"), "{msg}");
        let env = env_of(&[("API_PORT", "http")]);
        assert!(Config::from_toml_str("", &env).unwrap_err().to_string().contains("API_PORT"));
        let env = env_of(&[("BASE_CAPITAL", "lots")]);
        assert!(Config::from_toml_str("", &env).unwrap_err().to_string().contains("BASE_CAPITAL"));
        let env = env_of(&[("TRADING_MODE", "yolo")]);
        assert!(Config::from_toml_str("", &env).unwrap_err().to_string().contains("TRADING_MODE"));
    }

    #[test]
    fn unknown_keys_are_refused_with_their_path() {
        let e = Config::from_toml_str("[risk]\nmax_positon = 5\n", &no_env).unwrap_err();
        assert_eq!(e.key(), Some("risk.max_positon"), "{e}");
        let e = Config::from_toml_str("colour = 'red'\n", &no_env).unwrap_err();
        assert_eq!(e.key(), Some("colour"), "{e}");
        let e = Config::from_toml_str("[nope]\na = 1\n", &no_env).unwrap_err();
        assert_eq!(e.key(), Some("nope"), "{e}");
    }

    #[test]
    fn wrong_types_name_the_key() {
        let e = Config::from_toml_str("[risk]\nmax_position = 'big'\n", &no_env).unwrap_err();
        assert_eq!(e.key(), Some("risk.max_position"), "{e}");
        let e = Config::from_toml_str("[engine]\nidle = 'nap'\n", &no_env).unwrap_err();
        assert_eq!(e.key(), Some("engine.idle"), "{e}");
    }

    #[test]
    fn ranges_are_checked() {
        for (toml, key) in [
            ("[capital]\nreserve = 1e9\n", "capital.reserve"),
            ("[capital]\ntotal = -1.0\n", "capital.total"),
            ("[risk]\ndaily_loss = 0.0\n", "risk.daily_loss"),
            ("[risk]\nmax_drawdown = 1.5\n", "risk.max_drawdown"),
            ("[strategies.momentum]\nlookback = 1\n", "strategies.momentum.lookback"),
            ("[strategies.momentum]\nweight = nan\n", "strategies.momentum.weight"),
            ("[strategies.momentum]\nrsi_period = 1\n", "strategies.momentum.rsi_period"),
            ("[strategies.momentum]\nmacd_fast = 0\n", "strategies.momentum.macd_fast"),
            ("[strategies.momentum]\nmacd_fast = 30\nmacd_slow = 30\n", "strategies.momentum.macd_slow"),
            ("[strategies.momentum]\nmacd_signal = 10001\n", "strategies.momentum.macd_signal"),
            ("[strategies.momentum]\nvariant = 'trend'\n", "strategies.momentum.variant"),
            ("[strategies.meanreversion]\nweight = 11.0\n", "strategies.meanreversion.weight"),
            ("[strategies.meanreversion]\nperiod = 1\n", "strategies.meanreversion.period"),
            ("[strategies.meanreversion]\nstd_mult = 0.0\n", "strategies.meanreversion.std_mult"),
            ("[strategies.meanreversion]\nz_threshold = inf\n", "strategies.meanreversion.z_threshold"),
            ("[strategies.meanreversion]\nvariant = 'bands'\n", "strategies.meanreversion.variant"),
            ("[strategies.breakout]\nweight = -0.5\n", "strategies.breakout.weight"),
            ("[strategies.breakout]\nperiod = 10001\n", "strategies.breakout.period"),
            ("[strategies.breakout]\nperiod = 10\nvolume_period = 11\n", "strategies.breakout.volume_period"),
            ("[strategies.breakout]\nvolume_period = 0\n", "strategies.breakout.volume_period"),
            ("[strategies.breakout]\nvolume_factor = -1.0\n", "strategies.breakout.volume_factor"),
            ("[strategies.marketmaking]\nweight = nan\n", "strategies.marketmaking.weight"),
            ("[strategies.marketmaking]\nhalf_spread = 0.1\n", "strategies.marketmaking.half_spread"),
            ("[strategies.marketmaking]\nskew = 1.5\n", "strategies.marketmaking.skew"),
            ("[strategies.marketmaking]\nmax_inventory = 0.0\n", "strategies.marketmaking.max_inventory"),
            ("[strategies.marketmaking]\nrequote_ms = 0\n", "strategies.marketmaking.requote_ms"),
            ("[strategies.marketmaking]\nquote_qty = 1e9\n", "strategies.marketmaking.quote_qty"),
            ("[strategies.marketmaking]\nspread = 0.001\n", "strategies.marketmaking.spread"),
            ("[engine]\nsleep_us = 0\n", "engine.sleep_us"),
            ("[api]\nhost = 'localhost:80'\n", "api.host"),
            ("symbols = []\n", "symbols"),
            ("symbols = ['btc usdt']\n", "symbols"),
            ("symbols = ['BTCUSDT', 'BTCUSDT']\n", "symbols"),
            ("[filters]\ntick_size = 0.000000001\n", "filters.tick_size"),
        ] {
            let e = Config::from_toml_str(toml, &no_env).unwrap_err();
            assert_eq!(e.key(), Some(key), "{toml}: {e}");
        }
    }

    #[test]
    fn strategy_defaults_and_variants() {
        let c = Config::from_toml_str("", &no_env).unwrap();
        let s = &c.strategies;
        assert!(s.momentum.enabled && s.meanreversion.enabled && s.breakout.enabled);
        assert!(!s.marketmaking.enabled);
        assert_eq!((s.momentum.weight, s.meanreversion.weight, s.breakout.weight), (1.0, 0.5, 0.5));
        assert_eq!(s.momentum.variant, MomentumVariant::Return);
        assert_eq!((s.momentum.lookback, s.momentum.threshold), (40, 0.0004));
        assert_eq!(s.meanreversion.variant, MeanReversionVariant::Bollinger);
        assert!(s.breakout.volume_period <= s.breakout.period);
        assert!(s.marketmaking.quote_qty <= s.marketmaking.max_inventory);
        // The half-spread earns more than the maker fee, so a round trip can be profitable.
        assert!(s.marketmaking.half_spread > c.fees.maker);

        let t = "[strategies.momentum]\nvariant = 'macd'\n[strategies.meanreversion]\nvariant = 'zscore'\n";
        let c = Config::from_toml_str(t, &no_env).unwrap();
        assert_eq!(c.strategies.momentum.variant, MomentumVariant::Macd);
        assert_eq!(c.strategies.meanreversion.variant, MeanReversionVariant::Zscore);
        // The effective config round-trips through its own TOML.
        let back = Config::from_toml_str(&c.to_toml(), &no_env).unwrap();
        assert_eq!(back.strategies, c.strategies);
    }

    #[test]
    fn strategy_range_messages_name_the_allowed_range() {
        let e = Config::from_toml_str("[strategies.breakout]\nperiod = 10\nvolume_period = 11\n", &no_env).unwrap_err();
        assert!(e.to_string().contains("1 to strategies.breakout.period"), "{e}");
        let e = Config::from_toml_str("[strategies.momentum]\nmacd_fast = 30\nmacd_slow = 20\n", &no_env).unwrap_err();
        assert!(e.to_string().contains("strategies.momentum.macd_fast + 1 to 10000"), "{e}");
        let e = Config::from_toml_str("[strategies.marketmaking]\nskew = 2.0\n", &no_env).unwrap_err();
        assert!(e.to_string().contains("0 <= value <= 1"), "{e}");
    }

    #[test]
    fn secrets_never_show_in_debug_or_toml() {
        let env = env_of(&[("EXCHANGE_API_KEY", "KEY-abc123"), ("EXCHANGE_API_SECRET", "SECRET-xyz789")]);
        let c = Config::from_toml_str("", &env).unwrap();
        assert_eq!(c.secrets.api_secret.as_ref().unwrap().expose(), "SECRET-xyz789");
        let dbg = format!("{c:?}");
        let toml = c.to_toml();
        for leak in ["KEY-abc123", "SECRET-xyz789"] {
            assert!(!dbg.contains(leak), "debug leaks {leak}");
            assert!(!toml.contains(leak), "toml leaks {leak}");
        }
    }

    #[test]
    fn store_section_defaults_and_checks() {
        let c = Config::from_toml_str("", &no_env).unwrap();
        assert!(c.store.enabled);
        assert_eq!((c.store.path.as_str(), c.store.synchronous), ("data/hft.sqlite", StoreSync::Full));
        let c = Config::from_toml_str("[store]\nsynchronous = 'normal'\n", &no_env).unwrap();
        assert_eq!(c.store.synchronous, StoreSync::Normal);
        for (toml, key) in [
            ("[store]\nsynchronous = 'off'\n", "store.synchronous"),
            ("[store]\npath = ''\n", "store.path"),
            ("[store]\npath = 'data/'\n", "store.path"),
            ("[store]\nenabled = 'yes'\n", "store.enabled"),
            ("[store]\nfile = 'x'\n", "store.file"),
        ] {
            let e = Config::from_toml_str(toml, &no_env).unwrap_err();
            assert_eq!(e.key(), Some(key), "{toml}: {e}");
        }
        // Disabled, the path is not looked at.
        assert!(Config::from_toml_str("[store]\nenabled = false\npath = ''\n", &no_env).is_ok());
    }

    #[test]
    fn loose_override_values() {
        assert_eq!(parse_loose("spin"), toml::Value::String("spin".into()));
        assert_eq!(parse_loose("3"), toml::Value::Integer(3));
        assert_eq!(parse_loose("true"), toml::Value::Boolean(true));
    }

    #[test]
    fn overrides_apply_to_existing_settings_only() {
        let c = Config::from_toml_str("", &no_env).unwrap();
        let o = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        assert_eq!(
            c.with_overrides(&o("strategies.momentum.lookback", "80")).unwrap().strategies.momentum.lookback,
            80
        );
        assert_eq!(c.with_overrides(&o("risk.max_position", "250")).unwrap().risk.max_position, 250.0);
        let v = c.with_overrides(&o("strategies.momentum.variant", "rsi")).unwrap().strategies.momentum.variant;
        assert_eq!(v, MomentumVariant::Rsi);
        assert!(!c.live.gate_override);
        for (k, v) in [
            ("strategies.momentum.lookbak", "3"),
            ("risk", "3"),
            ("risk.max_position.x", "3"),
            ("strategies.momentum.lookback", "1"),
            ("strategies.momentum.lookback", "x"),
        ] {
            let e = c.with_overrides(&o(k, v)).unwrap_err();
            assert_eq!(e.key(), Some(k), "{k}={v}: {e}");
        }
    }
}
