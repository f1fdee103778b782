//! The built-in market: a deterministic, seeded generator of Binance spot combined-stream frames.
//!
//! Role: the frame source of paper mode (and of tests and benchmarks). One [`SyntheticMarket`]
//! per symbol keeps a *true* L2 book around a simulated mid price and emits, byte for byte as
//! Binance would, the REST depth snapshot body ([`SyntheticMarket::snapshot`]) and a stream of
//! `@bookTicker`, `@trade` and `@depth@100ms` frames ([`SyntheticMarket::next_frame`]). The
//! frames go through the real decoder, so paper mode exercises the same code as live.
//!
//! Thread: the hot thread, inside the paper-mode source. Nothing here blocks or reads a clock:
//! frames carry *market* time, which starts at [`START_TIME_NS`] and advances by the generator's
//! own schedule (the caller paces delivery).
//!
//! Allocation: [`SyntheticMarket::new`] allocates everything it will ever need (the frame
//! buffer, both sides of the true book as fixed rings, the pending-diff accumulator, a scratch
//! array). `snapshot` and `next_frame` never allocate: every write stays within capacity, and
//! sorting uses the in-place unstable sort.
//!
//! Determinism: the output is a pure function of [`SyntheticParams`]. Randomness comes from two
//! `Xoshiro256PlusPlus` streams seeded from `seed` (the price process uses a long-jumped copy);
//! no hash maps, clocks or thread randomness. `f64` is used for the price *process* only; every
//! price and quantity on the book is an integer multiple of the tick or the lot, in 1e-8 units.
//!
//! Sequence model (exactly Binance's): every change of one level of the true book increments the
//! update id. A depth diff, emitted every 100 ms of market time, covers every change since the
//! previous diff: `U` = previous `u` + 1, `u` = current id, one entry per price with its latest
//! quantity (`0.00000000` = removed), bids best-first then asks best-first; a window without
//! changes emits no diff. A bookTicker shows the top of the book at its `u`, the current id.
//! Trades print at the best bid (`m: true`, seller-initiated) or the best ask (`m: false`) and
//! consume that level's quantity; trade ids are contiguous. The snapshot's `lastUpdateId` is the
//! current id.
//!
//! Frame mix per 100 ms window: 5 to 13 (mean 9) stream frames then the diff, i.e. about 70 %
//! bookTicker, 20 % trade, 10 % depth.
//!
//! The true book holds exactly `depth_levels` per side. A local book with that same capacity
//! stays exact at the top but slowly loses far levels: a diff applied best-first adds new top
//! levels before it removes old ones, so the local book evicts a far level the true book kept
//! (as it would on Binance). Give local books room for 2 × `depth_levels` to mirror it exactly.

use crate::feed::decode::Level;
use hft_shared::{Px, Qty};
use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Market time of the generator's first state: 2024-06-01T00:00:00Z in ns since the Unix epoch.
pub const START_TIME_NS: u64 = 1_717_200_000_000_000_000;
/// Depth-diff period (Binance `@depth@100ms`), ns of market time.
pub const DIFF_PERIOD_NS: u64 = 100_000_000;
/// Stream frames (bookTicker and trade) per diff window, inclusive bounds.
const WINDOW_FRAMES_MIN: u32 = 5;
const WINDOW_FRAMES_MAX: u32 = 13;
/// Probability that a stream frame is a trade: 2/9 of the ~9 stream frames → ~20 % of all frames.
const P_TRADE: f64 = 2.0 / 9.0;
/// Probability that a bookTicker frame restates the top without a book change (its `u` is the
/// current id). This is what lets a local book compare itself with the ticker after a diff.
const P_QUIET: f64 = 0.15;
/// Mean gap between adjacent levels of one side, bp of the start price (at least one tick).
const LEVEL_GAP_BP: f64 = 0.3;
/// Median notional of a level, quote units; sets the quantity scale for any price.
const LEVEL_NOTIONAL: f64 = 20_000.0;
/// First update id and first trade id (Binance's are large; any start works).
const FIRST_UPDATE_ID: u64 = 40_000_000_000;
const FIRST_TRADE_ID: u64 = 3_000_000_000;
/// One basis point in log-price units.
const BP: f64 = 1e-4;
/// Weak pull of the log mid towards the start price, per step (stationary sd of pure noise
/// at 1 bp/step ≈ 3 %); keeps 10⁷-frame runs sane without flattening any regime.
const LONG_RUN_PULL: f64 = 5e-6;
/// Hard bound on |ln(mid / start)| (a factor of ~4.5); never reached in practice.
const MAX_LOG_EXCURSION: f64 = 1.5;
/// Scale of the direction bias of trends and breakouts: at `ln(mid/start) = s` a new trend
/// goes up with probability `1 / (1 + e^(s / DIRECTION_SCALE))`.
const DIRECTION_SCALE: f64 = 0.05;

/// Parameters of one symbol's synthetic market.
#[derive(Clone, Debug)]
pub struct SyntheticParams {
    /// Upper-case symbol, e.g. `BTCUSDT` (A–Z, 0–9); streams use its lower-case form.
    pub symbol: String,
    /// Same seed, same bytes.
    pub seed: u64,
    /// First mid price; rounded to the tick, and at least two ticks.
    pub start_price: Px,
    /// Price grid (> 0): every price on the book is a multiple of it.
    pub tick_size: Px,
    /// Price levels per side (≥ 1); the true book always holds this many unless the bid side
    /// would reach zero.
    pub depth_levels: usize,
}

/// The price regime the mid is in. Regimes cycle with random durations of 300–3000 frames;
/// a [`Regime::Consolidation`] is always followed by a [`Regime::Breakout`]; every market
/// starts in a [`Regime::Trend`] lasting at least 500 frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Regime {
    /// Persistent drift of 0.45–0.8 bp per step up or down, 0.6–1.2 bp noise.
    Trend,
    /// Ornstein–Uhlenbeck around the level where it started (pull 2–8 % per step).
    MeanRevert,
    /// A tight range: strong pull (15–30 % per step), 0.5–0.7 bp noise.
    Consolidation,
    /// A sharp move (15–40 steps of 1.5–3 bp) then continuation at 0.3–0.6 bp per step.
    Breakout,
}

/// Which stream the last [`SyntheticMarket::next_frame`] belonged to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// `<symbol>@bookTicker`
    BookTicker,
    /// `<symbol>@trade`
    Trade,
    /// `<symbol>@depth@100ms`
    Depth,
}

/// Seeded uniform and Gaussian draws over one xoshiro stream.
#[derive(Clone, Debug)]
struct Draw {
    rng: Xoshiro256PlusPlus,
    /// Second normal of the last polar-method pair.
    spare: Option<f64>,
}

impl Draw {
    fn new(rng: Xoshiro256PlusPlus) -> Self {
        Self { rng, spare: None }
    }

    /// Uniform on [0, 1), 53 bits.
    #[inline]
    fn unit(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform on [lo, hi).
    #[inline]
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform integer on [lo, hi] (multiply-shift; the bias is below 2⁻⁴⁰ for our ranges).
    #[inline]
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        let n = hi - lo + 1;
        lo + ((self.rng.next_u64() as u128 * n as u128) >> 64) as u64
    }

    #[inline]
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Standard normal by Marsaglia's polar method (pairs; the spare is kept).
    fn gauss(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        loop {
            let u = 2.0 * self.unit() - 1.0;
            let v = 2.0 * self.unit() - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                let m = (-2.0 * s.ln() / s).sqrt();
                self.spare = Some(v * m);
                return u * m;
            }
        }
    }
}

/// The mid-price process: regimes over `x = ln(mid / start)`.
///
/// Time has two clocks: [`PriceProcess::on_frame`] advances the regime clock (durations are in
/// frames) and [`PriceProcess::step`] moves the mid once (the market steps it on each bookTicker
/// that changes the book, about 60 % of frames). Per-step noise is 0.5–1.6 bp.
#[derive(Clone, Debug)]
pub struct PriceProcess {
    draw: Draw,
    /// Start price, 1e-8 units.
    start_raw: f64,
    /// ln(mid / start).
    x: f64,
    regime: Regime,
    /// Frames left in the regime (≥ 1 between calls).
    left: u32,
    /// Drift per step, log units.
    mu: f64,
    /// Noise per step, log units.
    sigma: f64,
    /// OU pull per step (0 when the regime has none).
    theta: f64,
    /// OU level, log units.
    level: f64,
    /// Breakout: steps of the sharp move left, and its drift per step.
    sharp_left: u32,
    sharp_mu: f64,
    /// An imposed move ([`PriceProcess::shock`]): steps left and extra drift per step.
    shock_left: u32,
    shock_mu: f64,
}

impl PriceProcess {
    /// A process starting at `start_price` (> 0) in a trend of at least 500 frames.
    pub fn new(seed: u64, start_price: Px) -> Self {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        // An independent stream from the market's own (which uses the un-jumped state).
        rng.long_jump();
        let mut p = Self {
            draw: Draw::new(rng),
            start_raw: start_price.raw().max(1) as f64,
            x: 0.0,
            regime: Regime::Trend,
            left: 1,
            mu: 0.0,
            sigma: BP,
            theta: 0.0,
            level: 0.0,
            sharp_left: 0,
            sharp_mu: 0.0,
            shock_left: 0,
            shock_mu: 0.0,
        };
        p.enter(Regime::Trend);
        p.left = p.draw.range(500, 1500) as u32;
        p
    }

    pub fn regime(&self) -> Regime {
        self.regime
    }

    /// ln(mid / start).
    pub fn log_excursion(&self) -> f64 {
        self.x
    }

    /// Mid price, 1e-8 units (not on the tick grid).
    pub fn mid_raw(&self) -> f64 {
        self.start_raw * self.x.exp()
    }

    /// Expected move of the next step, log units (drift plus OU pull).
    pub fn drift(&self) -> f64 {
        match self.regime {
            Regime::Trend => self.mu,
            Regime::Breakout if self.sharp_left > 0 => self.sharp_mu,
            Regime::Breakout => self.mu,
            Regime::MeanRevert | Regime::Consolidation => self.theta * (self.level - self.x),
        }
    }

    /// Advances the regime clock by one frame; switches regime when the current one ends.
    pub fn on_frame(&mut self) {
        self.left -= 1;
        if self.left == 0 {
            let d = &mut self.draw;
            let next = match self.regime {
                Regime::Consolidation => Regime::Breakout,
                Regime::Trend => {
                    pick(d.unit(), [(0.45, Regime::MeanRevert), (0.35, Regime::Consolidation)], Regime::Trend)
                }
                Regime::MeanRevert => {
                    pick(d.unit(), [(0.55, Regime::Trend), (0.45, Regime::Consolidation)], Regime::Trend)
                }
                Regime::Breakout => {
                    pick(d.unit(), [(0.4, Regime::MeanRevert), (0.3, Regime::Trend)], Regime::Consolidation)
                }
            };
            self.enter(next);
        }
    }

    /// Moves the mid once.
    pub fn step(&mut self) {
        let z = self.draw.gauss().clamp(-6.0, 6.0);
        let mut dx = self.drift() + self.sigma * z - LONG_RUN_PULL * self.x;
        if self.shock_left > 0 {
            self.shock_left -= 1;
            dx += self.shock_mu;
        }
        if self.regime == Regime::Breakout && self.sharp_left > 0 {
            self.sharp_left -= 1;
        }
        self.x = (self.x + dx).clamp(-MAX_LOG_EXCURSION, MAX_LOG_EXCURSION);
    }

    /// Imposes an extra drift of `bp_per_step` basis points on each of the next `steps` steps,
    /// on top of the regime (a crash when negative), for scenario tests and demonstrations.
    /// The random draws are unchanged, so the rest of the market stays the seed's.
    pub fn shock(&mut self, steps: u32, bp_per_step: f64) {
        self.shock_left = steps;
        self.shock_mu = bp_per_step * BP;
    }

    /// +1 or −1, biased back towards the start price.
    fn direction(&mut self) -> f64 {
        let p_up = 1.0 / (1.0 + (self.x / DIRECTION_SCALE).exp());
        if self.draw.chance(p_up) { 1.0 } else { -1.0 }
    }

    fn enter(&mut self, r: Regime) {
        self.regime = r;
        self.theta = 0.0;
        self.mu = 0.0;
        self.sharp_left = 0;
        self.level = self.x;
        let (lo, hi) = match r {
            Regime::Trend | Regime::MeanRevert => (300, 3000),
            Regime::Consolidation | Regime::Breakout => (300, 1500),
        };
        self.left = self.draw.range(lo, hi) as u32;
        match r {
            Regime::Trend => {
                self.mu = self.direction() * self.draw.uniform(0.45, 0.8) * BP;
                self.sigma = self.draw.uniform(0.6, 1.2) * BP;
            }
            Regime::MeanRevert => {
                self.theta = self.draw.uniform(0.02, 0.08);
                self.sigma = self.draw.uniform(0.6, 1.2) * BP;
            }
            Regime::Consolidation => {
                self.theta = self.draw.uniform(0.15, 0.3);
                self.sigma = self.draw.uniform(0.5, 0.7) * BP;
            }
            Regime::Breakout => {
                let dir = self.direction();
                self.sharp_left = self.draw.range(15, 40) as u32;
                self.sharp_mu = dir * self.draw.uniform(1.5, 3.0) * BP;
                self.mu = dir * self.draw.uniform(0.3, 0.6) * BP;
                self.sigma = self.draw.uniform(0.8, 1.6) * BP;
            }
        }
    }
}

/// The first choice whose cumulative probability exceeds `u`, else `last`.
fn pick<const N: usize>(u: f64, choices: [(f64, Regime); N], last: Regime) -> Regime {
    let mut acc = 0.0;
    for (p, r) in choices {
        acc += p;
        if u < acc {
            return r;
        }
    }
    last
}

/// One side of the true book: a fixed ring of levels, index 0 = best. Capacity ≥ 2 × depth + 1,
/// a power of two; never grows.
#[derive(Clone, Debug)]
struct Ring {
    slots: Box<[Level]>,
    head: usize,
    len: usize,
    mask: usize,
}

impl Ring {
    fn with_capacity(depth: usize) -> Self {
        let cap = (2 * depth + 1).next_power_of_two();
        Self { slots: vec![Level::default(); cap].into_boxed_slice(), head: 0, len: 0, mask: cap - 1 }
    }
    #[inline]
    fn get(&self, i: usize) -> Level {
        debug_assert!(i < self.len);
        self.slots[(self.head + i) & self.mask]
    }
    #[inline]
    fn get_mut(&mut self, i: usize) -> &mut Level {
        debug_assert!(i < self.len);
        &mut self.slots[(self.head + i) & self.mask]
    }
    #[inline]
    fn front(&self) -> Option<Level> {
        (self.len > 0).then(|| self.get(0))
    }
    #[inline]
    fn back(&self) -> Option<Level> {
        (self.len > 0).then(|| self.get(self.len - 1))
    }
    #[inline]
    fn push_front(&mut self, l: Level) {
        debug_assert!(self.len <= self.mask);
        self.head = self.head.wrapping_sub(1) & self.mask;
        self.slots[self.head] = l;
        self.len += 1;
    }
    #[inline]
    fn push_back(&mut self, l: Level) {
        debug_assert!(self.len <= self.mask);
        self.slots[(self.head + self.len) & self.mask] = l;
        self.len += 1;
    }
    #[inline]
    fn pop_front(&mut self) -> Option<Level> {
        let l = self.front()?;
        self.head = (self.head + 1) & self.mask;
        self.len -= 1;
        Some(l)
    }
    #[inline]
    fn pop_back(&mut self) -> Option<Level> {
        let l = self.back()?;
        self.len -= 1;
        Some(l)
    }
    fn iter(&self) -> impl Iterator<Item = Level> + '_ {
        (0..self.len).map(|i| self.get(i))
    }
}

const BID: usize = 0;
const ASK: usize = 1;

/// High bit of a change key's upper half: set for asks.
const ASK_BIT: u64 = 1 << 63;

/// The sort key of one level change, so that a diff's order is one integer compare: high 64 bits
/// = side and price in wire order (bids first, highest first; then asks, lowest first), low 64
/// bits = `!update_id` (latest change of a price first). Prices are > 0.
#[inline]
fn change_key(side: usize, px: i64, id: u64) -> u128 {
    debug_assert!(px > 0);
    let order = if side == BID { (i64::MAX - px) as u64 } else { ASK_BIT | px as u64 };
    (order as u128) << 64 | !id as u128
}

/// `(is_bid, price, update id)` of a change key.
#[inline]
fn key_parts(key: u128) -> (bool, i64, u64) {
    let order = (key >> 64) as u64;
    let id = !(key as u64);
    if order & ASK_BIT == 0 { (true, i64::MAX - order as i64, id) } else { (false, (order & !ASK_BIT) as i64, id) }
}

/// Level quantities are drawn from this many log-normal multiples of the median lot count
/// (drawn once from the seed): one random index per level instead of a `ln`/`exp` pair.
const QTY_TABLE: usize = 1024;

/// Bytes of the fixed parts of each frame kind, built once for the symbol.
#[derive(Clone, Debug)]
struct Templates {
    /// `{"stream":"btcusdt@bookTicker","data":{"u":`
    ticker: Box<[u8]>,
    /// `,"s":"BTCUSDT","b":"`
    ticker_sym: Box<[u8]>,
    /// `{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":`
    depth: Box<[u8]>,
    /// `,"s":"BTCUSDT","U":`
    depth_sym: Box<[u8]>,
    /// `{"stream":"btcusdt@trade","data":{"e":"trade","E":`
    trade: Box<[u8]>,
    /// `,"s":"BTCUSDT","t":`
    trade_sym: Box<[u8]>,
}

impl Templates {
    fn new(symbol: &str) -> Self {
        let lower = symbol.to_ascii_lowercase();
        let b = |s: String| s.into_bytes().into_boxed_slice();
        Self {
            ticker: b(format!(r#"{{"stream":"{lower}@bookTicker","data":{{"u":"#)),
            ticker_sym: b(format!(r#","s":"{symbol}","b":""#)),
            depth: b(format!(r#"{{"stream":"{lower}@depth@100ms","data":{{"e":"depthUpdate","E":"#)),
            depth_sym: b(format!(r#","s":"{symbol}","U":"#)),
            trade: b(format!(r#"{{"stream":"{lower}@trade","data":{{"e":"trade","E":"#)),
            trade_sym: b(format!(r#","s":"{symbol}","t":"#)),
        }
    }
}

/// Upper bound of bytes one `["price","qty"],` entry takes (two 8-decimal i64s and punctuation).
const LEVEL_BYTES: usize = 64;

/// One symbol's generator. See the module docs.
#[derive(Debug)]
pub struct SyntheticMarket {
    draw: Draw,
    process: PriceProcess,
    /// Tick, lot, 1e-8 units (> 0).
    tick: i64,
    lot: i64,
    /// Level gaps are uniform on 1..=`gap_max` ticks.
    gap_max: u64,
    /// Level quantities to draw from, 1e-8 units (see [`QTY_TABLE`]).
    qty_table: Box<[i64]>,
    depth: usize,
    /// `[BID, ASK]`, best first. Invariant after every frame: bids strictly descending, asks
    /// strictly ascending, best bid < best ask, no zero quantity, each side non-empty.
    sides: [Ring; 2],
    update_id: u64,
    /// `u` of the previous diff (the initial id before the first).
    last_diff_id: u64,
    /// Changes since the previous diff as [`change_key`]s; `pending_qty[id - last_diff_id - 1]`
    /// is the quantity a change set (ids of a window are contiguous). Capacity of both: the most
    /// changes a window can produce.
    pending: Vec<u128>,
    pending_qty: Vec<i64>,
    /// Fill prices of one re-anchor step (capacity `depth`).
    scratch: Vec<i64>,
    next_trade_id: u64,
    now_ns: u64,
    window_start_ns: u64,
    window_frames: u32,
    window_done: u32,
    kind: StreamKind,
    tpl: Templates,
    /// The frame or snapshot being returned; capacity covers the largest possible one.
    buf: Vec<u8>,
}

impl SyntheticMarket {
    /// Builds the market and its initial book (update id [`SyntheticMarket::update_id`]).
    /// Allocates everything the generator will use: O(`depth_levels`) memory, dominated by the
    /// diff accumulator and buffer sized for the worst window (13 frames × 4 × depth changes).
    ///
    /// # Panics
    /// On parameters the config validation rules out: a symbol that is not 1–32 characters
    /// A–Z/0–9, a non-positive tick, zero depth levels.
    pub fn new(p: &SyntheticParams) -> Self {
        assert!(
            (1..=32).contains(&p.symbol.len())
                && p.symbol.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
            "synthetic market: symbol {:?} must be 1-32 characters A-Z 0-9",
            p.symbol
        );
        assert!(p.tick_size.raw() > 0, "synthetic market: tick_size must be > 0");
        assert!(p.depth_levels >= 1, "synthetic market: depth_levels must be >= 1");

        let tick = p.tick_size.raw();
        let depth = p.depth_levels;
        // Start on the grid, at least two ticks up so a bid below the mid exists.
        let start = ((p.start_price.raw().max(0) + tick / 2) / tick * tick).max(2 * tick);
        let start_f = start as f64 / hft_shared::px::SCALE as f64;
        // Lot: 10^(⌊log10 price⌋ − 9) whole units (BTC at 6e4 → 1e-5), at least 1e-8.
        let lot = 10f64.powi(start_f.log10().floor() as i32 - 1).max(1.0).round() as i64;
        let gap_ticks = (start as f64 * LEVEL_GAP_BP * BP / tick as f64).round().max(1.0);
        let gap_max = (2.0 * gap_ticks - 1.0) as u64;
        let base_lots = LEVEL_NOTIONAL / start_f * hft_shared::px::SCALE as f64 / lot as f64;
        // At most 1e8 units a level, so sums and trades stay far from overflow.
        let max_lots = (1e16 / lot as f64).floor();

        let mut draw = Draw::new(Xoshiro256PlusPlus::seed_from_u64(p.seed));
        let qty_table = (0..QTY_TABLE)
            .map(|_| {
                let z = draw.gauss().clamp(-4.0, 4.0);
                let lots = (base_lots * (0.9 * z - 0.4).exp()).round();
                lots.clamp(1.0, max_lots) as i64 * lot
            })
            .collect();
        let pending_cap = WINDOW_FRAMES_MAX as usize * (4 * depth + 4);
        let buf_cap = 512 + LEVEL_BYTES * pending_cap.max(2 * depth);
        let mut m = Self {
            draw,
            process: PriceProcess::new(p.seed, Px(start)),
            tick,
            lot,
            gap_max,
            qty_table,
            depth,
            sides: [Ring::with_capacity(depth), Ring::with_capacity(depth)],
            update_id: FIRST_UPDATE_ID,
            last_diff_id: FIRST_UPDATE_ID,
            pending: Vec::with_capacity(pending_cap),
            pending_qty: Vec::with_capacity(pending_cap),
            scratch: Vec::with_capacity(depth),
            next_trade_id: FIRST_TRADE_ID,
            now_ns: START_TIME_NS,
            window_start_ns: START_TIME_NS,
            window_frames: 0,
            window_done: 0,
            kind: StreamKind::Depth,
            tpl: Templates::new(&p.symbol),
            buf: Vec::with_capacity(buf_cap),
        };
        m.window_frames = m.draw.range(WINDOW_FRAMES_MIN as u64, WINDOW_FRAMES_MAX as u64) as u32;
        m.reanchor();
        // The initial book is the state at the first id, not a change.
        m.pending.clear();
        m.pending_qty.clear();
        m.update_id = FIRST_UPDATE_ID;
        m
    }

    /// The update id of the current true book (Binance `u` / `lastUpdateId`).
    pub fn update_id(&self) -> u64 {
        self.update_id
    }

    /// The mid price of the price process, rounded to 1e-8 (the book is quoted around it).
    pub fn mid(&self) -> Px {
        Px(self.process.mid_raw().round() as i64)
    }

    pub fn regime(&self) -> Regime {
        self.process.regime()
    }

    /// Market time of the last frame, ns since the Unix epoch.
    pub fn market_time_ns(&self) -> u64 {
        self.now_ns
    }

    /// Kind of the last frame returned by [`SyntheticMarket::next_frame`].
    pub fn last_stream(&self) -> StreamKind {
        self.kind
    }

    /// Best bid of the true book (always present).
    pub fn best_bid(&self) -> Option<Level> {
        self.sides[BID].front()
    }

    /// Best ask of the true book (always present).
    pub fn best_ask(&self) -> Option<Level> {
        self.sides[ASK].front()
    }

    /// True-book bids, best (highest) first.
    pub fn bids(&self) -> impl Iterator<Item = Level> + '_ {
        self.sides[BID].iter()
    }

    /// True-book asks, best (lowest) first.
    pub fn asks(&self) -> impl Iterator<Item = Level> + '_ {
        self.sides[ASK].iter()
    }

    /// Id the next trade will carry.
    pub fn next_trade_id(&self) -> u64 {
        self.next_trade_id
    }

    /// The REST depth snapshot body of the current book:
    /// `{"lastUpdateId":N,"bids":[["p","q"],...],"asks":[...]}`, best first, 8 decimals.
    /// Does not advance the market.
    pub fn snapshot(&mut self) -> &[u8] {
        let b = &mut self.buf;
        b.clear();
        b.extend_from_slice(br#"{"lastUpdateId":"#);
        put_u64(b, self.update_id);
        b.extend_from_slice(br#","bids":["#);
        put_levels(b, self.sides[BID].iter().map(|l| (l.px.raw(), l.qty.raw())));
        b.extend_from_slice(br#"],"asks":["#);
        put_levels(b, self.sides[ASK].iter().map(|l| (l.px.raw(), l.qty.raw())));
        b.extend_from_slice(b"]}");
        &self.buf
    }

    /// Drives the mid by `bp_per_step` basis points per price step for the next `steps` steps
    /// (see [`PriceProcess::shock`]).
    pub fn shock(&mut self, steps: u32, bp_per_step: f64) {
        self.process.shock(steps, bp_per_step);
    }

    /// The next combined-stream frame and its market time in ns since the Unix epoch
    /// (non-decreasing). The bytes are valid until the next call.
    pub fn next_frame(&mut self) -> (&[u8], u64) {
        loop {
            self.process.on_frame();
            if self.window_done == self.window_frames {
                // Window end: the diff, then the next window.
                self.now_ns = self.window_start_ns + DIFF_PERIOD_NS;
                self.window_start_ns = self.now_ns;
                self.window_done = 0;
                self.window_frames = self.draw.range(WINDOW_FRAMES_MIN as u64, WINDOW_FRAMES_MAX as u64) as u32;
                if self.pending.is_empty() {
                    // Binance sends no empty diffs.
                    continue;
                }
                self.write_diff();
                self.kind = StreamKind::Depth;
                return (&self.buf, self.now_ns);
            }
            // Stream frame i of k sits in slot i of k+1 equal slots, jittered within its slot's
            // first half, so times are non-decreasing and the diff comes last.
            let slot = DIFF_PERIOD_NS / (self.window_frames as u64 + 1);
            let jitter = self.draw.range(0, slot / 2);
            self.window_done += 1;
            self.now_ns = self.window_start_ns + self.window_done as u64 * slot - jitter;
            if self.draw.chance(P_TRADE) && self.trade() {
                self.kind = StreamKind::Trade;
            } else {
                if !self.draw.chance(P_QUIET) {
                    self.process.step();
                    self.reanchor();
                    self.tweak();
                }
                self.write_ticker();
                self.kind = StreamKind::BookTicker;
            }
            return (&self.buf, self.now_ns);
        }
    }

    /// Records one level change: a new update id and a pending diff entry.
    #[inline]
    fn record(&mut self, side: usize, px: i64, qty: i64) {
        self.update_id += 1;
        debug_assert!(self.pending.len() < self.pending.capacity(), "pending-diff bound violated");
        self.pending.push(change_key(side, px, self.update_id));
        self.pending_qty.push(qty);
    }

    /// A fresh level quantity, 1e-8 units: whole lots, ≥ 1 lot, log-normal around the median.
    #[inline]
    fn draw_qty(&mut self) -> i64 {
        self.qty_table[(self.draw.rng.next_u64() >> 54) as usize % QTY_TABLE]
    }

    /// Puts both sides back around the process mid: removes levels past the new top, fills the
    /// gap from the new top to the old one, trims each side to `depth` and refills its far end.
    fn reanchor(&mut self) {
        let spread = match self.draw.unit() {
            u if u < 0.85 => 1,
            u if u < 0.95 => 2,
            _ => 3,
        } * self.tick;
        let mid = self.process.mid_raw();
        let bid = (((mid - spread as f64 / 2.0) / self.tick as f64).floor() as i64 * self.tick).max(self.tick);
        self.reanchor_side(BID, bid);
        self.reanchor_side(ASK, bid + spread);
    }

    /// `s` = +1 for bids (better = higher), −1 for asks. Each side changes at most 2 × depth
    /// levels here (see the pending-diff bound).
    fn reanchor_side(&mut self, side: usize, top: i64) {
        let s: i64 = if side == BID { 1 } else { -1 };
        while let Some(l) = self.sides[side].front() {
            if s * (l.px.raw() - top) <= 0 {
                break;
            }
            self.sides[side].pop_front();
            self.record(side, l.px.raw(), 0);
        }
        // Prices from the new top towards the old best (exclusive), at most `depth` of them.
        let old = self.sides[side].front().map(|l| l.px.raw());
        let mut fill = std::mem::take(&mut self.scratch);
        fill.clear();
        let mut p = top;
        while p > 0 && old.is_none_or(|o| s * (p - o) > 0) && fill.len() < self.depth {
            fill.push(p);
            p -= s * self.gap();
        }
        for &p in fill.iter().rev() {
            let qty = self.draw_qty();
            self.sides[side].push_front(Level { px: Px(p), qty: Qty(qty) });
            self.record(side, p, qty);
        }
        self.scratch = fill;
        while self.sides[side].len > self.depth {
            if let Some(l) = self.sides[side].pop_back() {
                self.record(side, l.px.raw(), 0);
            }
        }
        self.refill(side);
    }

    /// Adds levels beyond the worst until the side holds `depth` (bids stop above zero).
    fn refill(&mut self, side: usize) {
        let s: i64 = if side == BID { 1 } else { -1 };
        while self.sides[side].len < self.depth {
            let Some(back) = self.sides[side].back() else {
                return;
            };
            let p = back.px.raw() - s * self.gap();
            if p <= 0 {
                return;
            }
            let qty = self.draw_qty();
            self.sides[side].push_back(Level { px: Px(p), qty: Qty(qty) });
            self.record(side, p, qty);
        }
    }

    /// A level gap, price units: 1..=`gap_max` ticks.
    #[inline]
    fn gap(&mut self) -> i64 {
        self.draw.range(1, self.gap_max) as i64 * self.tick
    }

    /// Queue churn: new quantities at the tops and at one deeper level.
    fn tweak(&mut self) {
        for side in [BID, ASK] {
            if self.draw.chance(0.5) {
                self.requantity(side, 0);
            }
        }
        if self.draw.chance(0.5) {
            let side = if self.draw.chance(0.5) { BID } else { ASK };
            let len = self.sides[side].len;
            if len > 1 {
                let i = self.draw.range(1, len as u64 - 1) as usize;
                self.requantity(side, i);
            }
        }
    }

    fn requantity(&mut self, side: usize, i: usize) {
        let old = self.sides[side].get(i);
        let mut qty = self.draw_qty();
        if qty == old.qty.raw() {
            qty += self.lot;
        }
        self.sides[side].get_mut(i).qty = Qty(qty);
        self.record(side, old.px.raw(), qty);
    }

    /// A trade against the best bid or ask, leaning with the drift; writes the frame. `false`
    /// (nothing changed) when the chosen top is a single lot and the side's last level.
    fn trade(&mut self) -> bool {
        let lean = (self.process.drift() / BP * 0.3).clamp(-0.3, 0.3);
        let buy = self.draw.chance(0.5 + lean);
        let side = if buy { ASK } else { BID };
        let Some(top) = self.sides[side].front() else {
            return false;
        };
        let have = top.qty.raw();
        let mut take = if self.draw.chance(0.2) {
            have
        } else {
            let lots = (have / self.lot) as f64 * self.draw.uniform(0.02, 0.6);
            (lots.round() as i64).max(1) * self.lot
        };
        if take >= have && self.sides[side].len == 1 {
            take = have - self.lot;
            if take <= 0 {
                return false;
            }
        }
        let take = take.min(have);
        if take == have {
            self.sides[side].pop_front();
            self.record(side, top.px.raw(), 0);
            self.refill(side);
        } else {
            self.sides[side].get_mut(0).qty = Qty(have - take);
            self.record(side, top.px.raw(), have - take);
        }
        let id = self.next_trade_id;
        self.next_trade_id += 1;
        let ms = self.now_ns / 1_000_000;
        let b = &mut self.buf;
        b.clear();
        b.extend_from_slice(&self.tpl.trade);
        put_u64(b, ms);
        b.extend_from_slice(&self.tpl.trade_sym);
        put_u64(b, id);
        b.extend_from_slice(br#","p":""#);
        put_fixed8(b, top.px.raw());
        b.extend_from_slice(br#"","q":""#);
        put_fixed8(b, take);
        b.extend_from_slice(br#"","T":"#);
        put_u64(b, ms);
        // The buyer is the maker when the seller took the bid.
        b.extend_from_slice(if buy { br#","m":false,"M":true}}"# as &[u8] } else { br#","m":true,"M":true}}"# });
        true
    }

    fn write_ticker(&mut self) {
        let (bid, ask) = (self.sides[BID].get(0), self.sides[ASK].get(0));
        let b = &mut self.buf;
        b.clear();
        b.extend_from_slice(&self.tpl.ticker);
        put_u64(b, self.update_id);
        b.extend_from_slice(&self.tpl.ticker_sym);
        put_fixed8(b, bid.px.raw());
        b.extend_from_slice(br#"","B":""#);
        put_fixed8(b, bid.qty.raw());
        b.extend_from_slice(br#"","a":""#);
        put_fixed8(b, ask.px.raw());
        b.extend_from_slice(br#"","A":""#);
        put_fixed8(b, ask.qty.raw());
        b.extend_from_slice(br#""}}"#);
    }

    /// Writes the diff of all pending changes (latest quantity per price, best first) and
    /// starts a new accumulation.
    fn write_diff(&mut self) {
        // Bids first, best (highest) first; asks best (lowest) first; per price latest id first.
        self.pending.sort_unstable();
        let b = &mut self.buf;
        b.clear();
        b.extend_from_slice(&self.tpl.depth);
        put_u64(b, self.now_ns / 1_000_000);
        b.extend_from_slice(&self.tpl.depth_sym);
        put_u64(b, self.last_diff_id + 1);
        b.extend_from_slice(br#","u":"#);
        put_u64(b, self.update_id);
        b.extend_from_slice(br#","b":["#);
        let split = self.pending.partition_point(|&k| key_parts(k).0);
        let (base, qty) = (self.last_diff_id + 1, &self.pending_qty);
        put_levels(b, latest(&self.pending[..split], base, qty));
        b.extend_from_slice(br#"],"a":["#);
        put_levels(b, latest(&self.pending[split..], base, qty));
        b.extend_from_slice(b"]}}");
        self.pending.clear();
        self.pending_qty.clear();
        self.last_diff_id = self.update_id;
    }
}

/// `(px, qty)` of the first change of each run of equal prices in sorted keys of one side (the
/// latest change of that price); `qty[id - base]` is what change `id` set.
fn latest<'a>(keys: &'a [u128], base: u64, qty: &'a [i64]) -> impl Iterator<Item = (i64, i64)> + 'a {
    keys.iter().enumerate().filter(|&(i, &k)| i == 0 || keys[i - 1] >> 64 != k >> 64).map(move |(_, &k)| {
        let (_, px, id) = key_parts(k);
        (px, qty[(id - base) as usize])
    })
}

/// Writes `["p","q"],...` (no trailing comma).
#[inline]
fn put_levels(b: &mut Vec<u8>, levels: impl Iterator<Item = (i64, i64)>) {
    for (i, (px, qty)) in levels.enumerate() {
        if i > 0 {
            b.push(b',');
        }
        b.extend_from_slice(b"[\"");
        put_fixed8(b, px);
        b.extend_from_slice(b"\",\"");
        put_fixed8(b, qty);
        b.extend_from_slice(b"\"]");
    }
}

#[inline]
fn put_u64(b: &mut Vec<u8>, v: u64) {
    let mut f = itoa::Buffer::new();
    b.extend_from_slice(f.format(v).as_bytes());
}

/// Writes 1e-8 units as Binance does: always 8 decimals (`61602.01000000`, `0.00000000`).
/// (`Px::write_to` drops trailing zeros, which Binance never does.)
#[inline]
fn put_fixed8(b: &mut Vec<u8>, raw: i64) {
    if raw < 0 {
        b.push(b'-');
    }
    let mag = raw.unsigned_abs();
    let scale = hft_shared::px::SCALE as u64;
    put_u64(b, mag / scale);
    let frac = (mag % scale) as usize;
    let (hi, lo) = (frac / 10_000, frac % 10_000);
    let mut d = *b".00000000";
    for (k, pair) in [hi / 100, hi % 100, lo / 100, lo % 100].into_iter().enumerate() {
        d[1 + 2 * k..3 + 2 * k].copy_from_slice(&DIGIT_PAIRS[2 * pair..2 * pair + 2]);
    }
    b.extend_from_slice(&d);
}

/// `00`, `01`, … `99`.
const DIGIT_PAIRS: [u8; 200] = {
    let mut t = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        t[2 * i] = b'0' + (i / 10) as u8;
        t[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(raw: i64) -> String {
        let mut b = Vec::new();
        put_fixed8(&mut b, raw);
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn fixed8_writes_eight_decimals() {
        assert_eq!(fixed(6_160_201_000_000), "61602.01000000");
        assert_eq!(fixed(0), "0.00000000");
        assert_eq!(fixed(1), "0.00000001");
        assert_eq!(fixed(50_000_000), "0.50000000");
        assert_eq!(fixed(-150_000_000), "-1.50000000");
        assert_eq!(fixed(i64::MAX), "92233720368.54775807");
        assert!(fixed(i64::MAX).len() * 2 + 7 <= LEVEL_BYTES);
    }

    #[test]
    fn ring_pushes_and_pops_at_both_ends() {
        let lv = |p: i64| Level { px: Px(p), qty: Qty(1) };
        let mut r = Ring::with_capacity(2);
        r.push_back(lv(2));
        r.push_front(lv(1));
        r.push_back(lv(3));
        r.push_front(lv(0));
        assert_eq!(r.iter().map(|l| l.px.raw()).collect::<Vec<_>>(), [0, 1, 2, 3]);
        assert_eq!(r.pop_back().map(|l| l.px.raw()), Some(3));
        assert_eq!(r.pop_front().map(|l| l.px.raw()), Some(0));
        assert_eq!(r.iter().map(|l| l.px.raw()).collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn gauss_has_unit_variance() {
        let mut d = Draw::new(Xoshiro256PlusPlus::seed_from_u64(1));
        let n = 200_000;
        let (mut s, mut s2) = (0.0, 0.0);
        for _ in 0..n {
            let z = d.gauss();
            s += z;
            s2 += z * z;
        }
        let mean = s / n as f64;
        let var = s2 / n as f64 - mean * mean;
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((var - 1.0).abs() < 0.02, "{var}");
    }
}
