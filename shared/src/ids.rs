//! Dense integer identifiers and small enums shared by both planes.
//!
//! Strings never cross the rings: symbols are `SymbolId` indexes into `Config::symbols`,
//! strategies are `StrategyKind` values. All types are `Copy` and allocation-free.

use core::fmt;

/// Index of a symbol in `Config::symbols` (dense, starting at 0).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct SymbolId(pub u16);

impl SymbolId {
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// Engine-assigned order id, unique for the life of the process (monotonic from 1).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct OrderId(pub u64);

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    /// +1 for buys, -1 for sells.
    #[inline]
    pub const fn sign(self) -> i64 {
        match self {
            Side::Buy => 1,
            Side::Sell => -1,
        }
    }
    #[inline]
    pub const fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
    /// Binance's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "BUY",
            Side::Sell => "SELL",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Order type. `LimitMaker` is Binance's post-only limit order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum OrderKind {
    Market,
    Limit,
    LimitMaker,
}

impl OrderKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            OrderKind::Market => "MARKET",
            OrderKind::Limit => "LIMIT",
            OrderKind::LimitMaker => "LIMIT_MAKER",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum TimeInForce {
    Gtc,
    Ioc,
    Fok,
}

impl TimeInForce {
    pub const fn as_str(self) -> &'static str {
        match self {
            TimeInForce::Gtc => "GTC",
            TimeInForce::Ioc => "IOC",
            TimeInForce::Fok => "FOK",
        }
    }
}

/// The strategies the engine knows. Names are the ones used in config and the API.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[repr(u8)]
pub enum StrategyKind {
    Momentum = 0,
    MeanReversion = 1,
    Breakout = 2,
    MarketMaking = 3,
}

impl StrategyKind {
    pub const ALL: [StrategyKind; 4] =
        [StrategyKind::Momentum, StrategyKind::MeanReversion, StrategyKind::Breakout, StrategyKind::MarketMaking];
    pub const COUNT: usize = Self::ALL.len();

    pub const fn name(self) -> &'static str {
        match self {
            StrategyKind::Momentum => "momentum",
            StrategyKind::MeanReversion => "meanreversion",
            StrategyKind::Breakout => "breakout",
            StrategyKind::MarketMaking => "marketmaking",
        }
    }
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategy_names_roundtrip() {
        for k in StrategyKind::ALL {
            assert_eq!(StrategyKind::from_name(k.name()), Some(k));
        }
        assert_eq!(StrategyKind::from_name("Momentum"), None);
        assert_eq!(StrategyKind::from_name("nope"), None);
    }
}
