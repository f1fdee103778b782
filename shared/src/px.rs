//! Fixed-point prices, quantities and quote-currency amounts.
//!
//! `Px` and `Qty` are `i64` in units of 1e-8 (Binance sends at most 8 decimals), so every
//! decimal string Binance sends converts exactly. Products (`Px × Qty`) are `Amount`s: `i128`
//! in units of 1e-16, which keeps notional, cash and PnL exact with no rounding at all.
//!
//! Used on every thread; nothing here allocates (formatting writes into caller buffers or a
//! `fmt::Formatter`).

use core::fmt;

/// Decimal places carried by `Px` and `Qty`.
pub const DECIMALS: u32 = 8;
/// Raw units per whole unit for `Px` and `Qty` (1e8).
pub const SCALE: i64 = 100_000_000;
/// Decimal places carried by `Amount` (price decimals + quantity decimals).
pub const AMOUNT_DECIMALS: u32 = 2 * DECIMALS;
/// Raw units per whole unit for `Amount` (1e16).
pub const AMOUNT_SCALE: i128 = (SCALE as i128) * (SCALE as i128);

/// Why a decimal string could not be converted exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseFixedError {
    #[error("empty number")]
    Empty,
    #[error("invalid character in number")]
    InvalidChar,
    #[error("more than 8 significant decimals")]
    TooPrecise,
    #[error("number out of range")]
    Overflow,
}

/// Parses a plain decimal (`-?digits[.digits]`) into units of 1e-8, exactly.
///
/// Extra decimals beyond the 8th are accepted only when they are zeros (`"1.000000000"`), so the
/// result is never rounded. No exponent, no `+`, no whitespace: Binance never sends them and an
/// edge that accepted them would hide malformed input.
#[inline]
pub const fn parse_fixed8(s: &[u8]) -> Result<i64, ParseFixedError> {
    let mut i = 0;
    let neg = !s.is_empty() && s[0] == b'-';
    if neg {
        i = 1;
    }
    let mut int: i64 = 0;
    let mut digits = 0usize;
    while i < s.len() && s[i] != b'.' {
        let d = s[i].wrapping_sub(b'0');
        if d > 9 {
            return Err(ParseFixedError::InvalidChar);
        }
        int = match int.checked_mul(10) {
            Some(v) => match v.checked_add(d as i64) {
                Some(v) => v,
                None => return Err(ParseFixedError::Overflow),
            },
            None => return Err(ParseFixedError::Overflow),
        };
        digits += 1;
        i += 1;
    }
    let mut frac: i64 = 0;
    let mut fdigits = 0u32;
    if i < s.len() {
        // s[i] == '.'
        i += 1;
        while i < s.len() {
            let d = s[i].wrapping_sub(b'0');
            if d > 9 {
                return Err(ParseFixedError::InvalidChar);
            }
            if fdigits < DECIMALS {
                frac = frac * 10 + d as i64;
                fdigits += 1;
            } else if d != 0 {
                return Err(ParseFixedError::TooPrecise);
            }
            digits += 1;
            i += 1;
        }
    }
    if digits == 0 {
        return Err(ParseFixedError::Empty);
    }
    while fdigits < DECIMALS {
        frac *= 10;
        fdigits += 1;
    }
    let raw = match int.checked_mul(SCALE) {
        Some(v) => match v.checked_add(frac) {
            Some(v) => v,
            None => return Err(ParseFixedError::Overflow),
        },
        None => return Err(ParseFixedError::Overflow),
    };
    Ok(if neg { -raw } else { raw })
}

/// Writes `raw / 10^decimals` as a plain decimal without trailing zeros into `buf`, returning the
/// number of bytes written. `buf` must hold at least 42 bytes (sign + 39 digits + point).
#[inline]
pub fn write_fixed(raw: i128, decimals: u32, buf: &mut [u8]) -> usize {
    let scale = 10u128.pow(decimals);
    let mag = raw.unsigned_abs();
    let int = mag / scale;
    let mut frac = mag % scale;
    let mut n = 0;
    if raw < 0 {
        buf[0] = b'-';
        n = 1;
    }
    let mut ib = itoa_u128(int);
    let digits = ib.as_bytes();
    buf[n..n + digits.len()].copy_from_slice(digits);
    n += digits.len();
    if frac != 0 {
        let mut width = decimals as usize;
        while frac.is_multiple_of(10) {
            frac /= 10;
            width -= 1;
        }
        buf[n] = b'.';
        n += 1;
        // Left-pad the fraction with zeros to `width` digits.
        let fb = ib.format(frac);
        let pad = width - fb.len();
        for b in &mut buf[n..n + pad] {
            *b = b'0';
        }
        n += pad;
        buf[n..n + fb.len()].copy_from_slice(fb.as_bytes());
        n += fb.len();
    }
    n
}

/// A tiny stack formatter for unsigned integers (no allocation, no dependency).
struct U128Buf {
    buf: [u8; 40],
    start: usize,
}

impl U128Buf {
    fn format(&mut self, mut v: u128) -> &str {
        let mut i = self.buf.len();
        loop {
            i -= 1;
            self.buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.start = i;
        self.as_str()
    }
    fn as_str(&self) -> &str {
        // Only ASCII digits are ever written into buf[start..].
        core::str::from_utf8(&self.buf[self.start..]).unwrap_or("")
    }
    fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

fn itoa_u128(v: u128) -> U128Buf {
    let mut b = U128Buf { buf: [0; 40], start: 40 };
    b.format(v);
    b
}

fn fmt_fixed(raw: i128, decimals: u32, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let mut buf = [0u8; 48];
    let n = write_fixed(raw, decimals, &mut buf);
    // write_fixed writes ASCII only.
    f.pad(core::str::from_utf8(&buf[..n]).unwrap_or("?"))
}

macro_rules! fixed8 {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[repr(transparent)]
        pub struct $name(pub i64);

        impl $name {
            pub const ZERO: Self = Self(0);
            pub const ONE: Self = Self(SCALE);
            pub const MAX: Self = Self(i64::MAX);

            /// From raw units of 1e-8.
            #[inline]
            pub const fn from_raw(raw: i64) -> Self {
                Self(raw)
            }
            /// Raw units of 1e-8.
            #[inline]
            pub const fn raw(self) -> i64 {
                self.0
            }
            /// Whole units (`3` → 3.00000000).
            #[inline]
            pub const fn from_int(v: i64) -> Self {
                Self(v * SCALE)
            }
            /// Exact conversion of a decimal string (see [`parse_fixed8`]).
            #[inline]
            pub const fn parse_bytes(s: &[u8]) -> Result<Self, ParseFixedError> {
                match parse_fixed8(s) {
                    Ok(v) => Ok(Self(v)),
                    Err(e) => Err(e),
                }
            }
            /// Exact conversion of a decimal string (see [`parse_fixed8`]).
            #[inline]
            pub fn parse(s: &str) -> Result<Self, ParseFixedError> {
                Self::parse_bytes(s.as_bytes())
            }
            /// Nearest fixed-point value to `v` (for config and statistics only; never for
            /// market data, which is parsed exactly). Non-finite or out-of-range input is `None`.
            pub fn from_f64(v: f64) -> Option<Self> {
                let r = (v * SCALE as f64).round();
                if r.is_finite() && r >= i64::MIN as f64 && r <= i64::MAX as f64 {
                    Some(Self(r as i64))
                } else {
                    None
                }
            }
            /// Approximate value, for indicators and statistics.
            #[inline]
            pub fn to_f64(self) -> f64 {
                self.0 as f64 / SCALE as f64
            }
            #[inline]
            pub const fn is_zero(self) -> bool {
                self.0 == 0
            }
            #[inline]
            pub const fn abs(self) -> Self {
                Self(self.0.abs())
            }
            #[inline]
            pub const fn checked_add(self, o: Self) -> Option<Self> {
                match self.0.checked_add(o.0) {
                    Some(v) => Some(Self(v)),
                    None => None,
                }
            }
            #[inline]
            pub const fn checked_sub(self, o: Self) -> Option<Self> {
                match self.0.checked_sub(o.0) {
                    Some(v) => Some(Self(v)),
                    None => None,
                }
            }
            /// Writes the shortest exact decimal (`61602.01`, `0.5`, `61602`) into `buf`
            /// (≥ 24 bytes) and returns its length.
            #[inline]
            pub fn write_to(self, buf: &mut [u8]) -> usize {
                write_fixed(self.0 as i128, DECIMALS, buf)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt_fixed(self.0 as i128, DECIMALS, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl core::str::FromStr for $name {
            type Err = ParseFixedError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl core::ops::Add for $name {
            type Output = Self;
            #[inline]
            fn add(self, o: Self) -> Self {
                Self(self.0 + o.0)
            }
        }
        impl core::ops::Sub for $name {
            type Output = Self;
            #[inline]
            fn sub(self, o: Self) -> Self {
                Self(self.0 - o.0)
            }
        }
        impl core::ops::Neg for $name {
            type Output = Self;
            #[inline]
            fn neg(self) -> Self {
                Self(-self.0)
            }
        }
        impl core::ops::AddAssign for $name {
            #[inline]
            fn add_assign(&mut self, o: Self) {
                self.0 += o.0;
            }
        }
        impl core::ops::SubAssign for $name {
            #[inline]
            fn sub_assign(&mut self, o: Self) {
                self.0 -= o.0;
            }
        }
    };
}

fixed8!(
    /// A price in quote currency per unit of base, in units of 1e-8.
    Px
);
fixed8!(
    /// A quantity of base currency, in units of 1e-8. Signed where it is a position.
    Qty
);

/// A quote-currency amount (notional, cash, fees, PnL) in units of 1e-16: exactly `Px × Qty`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct Amount(pub i128);

impl Amount {
    pub const ZERO: Self = Self(0);

    /// `px × qty`, exact.
    #[inline]
    pub const fn notional(px: Px, qty: Qty) -> Self {
        Self(px.0 as i128 * qty.0 as i128)
    }
    /// A whole-unit-scaled `Px`-like value (1e-8) widened to 1e-16 units.
    #[inline]
    pub const fn from_fixed8(raw: i64) -> Self {
        Self(raw as i128 * SCALE as i128)
    }
    /// Nearest amount to `v` (config and statistics only).
    pub fn from_f64(v: f64) -> Option<Self> {
        let r = v * AMOUNT_SCALE as f64;
        if r.is_finite() && r.abs() < 1.0e37 { Some(Self(r.round() as i128)) } else { None }
    }
    /// Approximate value, for statistics and JSON output.
    #[inline]
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / AMOUNT_SCALE as f64
    }
    #[inline]
    pub const fn raw(self) -> i128 {
        self.0
    }
    /// `self × num / den`, rounded toward zero; `None` on overflow or `den == 0`.
    #[inline]
    pub const fn mul_div(self, num: i128, den: i128) -> Option<Self> {
        if den == 0 {
            return None;
        }
        match self.0.checked_mul(num) {
            Some(v) => Some(Self(v / den)),
            None => None,
        }
    }
    /// Writes the shortest exact decimal into `buf` (≥ 42 bytes) and returns its length.
    #[inline]
    pub fn write_to(self, buf: &mut [u8]) -> usize {
        write_fixed(self.0, AMOUNT_DECIMALS, buf)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_fixed(self.0, AMOUNT_DECIMALS, f)
    }
}
impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Amount({self})")
    }
}
impl core::ops::Add for Amount {
    type Output = Self;
    #[inline]
    fn add(self, o: Self) -> Self {
        Self(self.0 + o.0)
    }
}
impl core::ops::Sub for Amount {
    type Output = Self;
    #[inline]
    fn sub(self, o: Self) -> Self {
        Self(self.0 - o.0)
    }
}
impl core::ops::Neg for Amount {
    type Output = Self;
    #[inline]
    fn neg(self) -> Self {
        Self(-self.0)
    }
}
impl core::ops::AddAssign for Amount {
    #[inline]
    fn add_assign(&mut self, o: Self) {
        self.0 += o.0;
    }
}
impl core::ops::SubAssign for Amount {
    #[inline]
    fn sub_assign(&mut self, o: Self) {
        self.0 -= o.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_binance_strings_exactly() {
        assert_eq!(Px::parse("61737.63000000").unwrap().raw(), 6_173_763_000_000);
        assert_eq!(Qty::parse("0.00000001").unwrap().raw(), 1);
        assert_eq!(Qty::parse("0.00000000").unwrap(), Qty::ZERO);
        assert_eq!(Px::parse("61602").unwrap(), Px::from_int(61602));
        assert_eq!(Px::parse("1.500000000000").unwrap(), Px::parse("1.5").unwrap());
        assert_eq!(Px::parse("-2.5").unwrap().raw(), -250_000_000);
    }

    #[test]
    fn rejects_what_is_not_an_exact_decimal() {
        assert_eq!(Px::parse(""), Err(ParseFixedError::Empty));
        assert_eq!(Px::parse("."), Err(ParseFixedError::Empty));
        assert_eq!(Px::parse("-"), Err(ParseFixedError::Empty));
        assert_eq!(Px::parse("1.000000001"), Err(ParseFixedError::TooPrecise));
        assert_eq!(Px::parse("1e5"), Err(ParseFixedError::InvalidChar));
        assert_eq!(Px::parse(" 1"), Err(ParseFixedError::InvalidChar));
        assert_eq!(Px::parse("1.2.3"), Err(ParseFixedError::InvalidChar));
        assert_eq!(Px::parse("92233720369"), Err(ParseFixedError::Overflow));
        assert_eq!(Px::parse("99999999999999999999999"), Err(ParseFixedError::Overflow));
    }

    #[test]
    fn displays_without_trailing_zeros() {
        assert_eq!(Px::parse("61602.01000000").unwrap().to_string(), "61602.01");
        assert_eq!(Qty::parse("0.50000000").unwrap().to_string(), "0.5");
        assert_eq!(Px::parse("61602.00000000").unwrap().to_string(), "61602");
        assert_eq!(Qty::from_raw(1).to_string(), "0.00000001");
        assert_eq!(Qty::from_raw(-1).to_string(), "-0.00000001");
        assert_eq!(Qty::ZERO.to_string(), "0");
        assert_eq!(Px(i64::MIN).to_string(), "-92233720368.54775808");
        assert_eq!(Amount::notional(Px::parse("0.1").unwrap(), Qty::parse("0.3").unwrap()).to_string(), "0.03");
    }

    #[test]
    fn notional_is_exact() {
        let px = Px::parse("61837.63").unwrap();
        let q = Qty::parse("3.78826").unwrap();
        let n = Amount::notional(px, q);
        // Checked with Python: Decimal("61837.63") * Decimal("3.78826")
        assert_eq!(n.to_string(), "234257.0202238");
    }

    proptest! {
        #[test]
        fn display_parse_roundtrip(raw in any::<i64>().prop_filter("MIN has no positive twin", |v| *v != i64::MIN)) {
            let p = Px::from_raw(raw);
            prop_assert_eq!(Px::parse(&p.to_string()).unwrap(), p);
        }

        #[test]
        fn parse_matches_decimal_arithmetic(int in 0i64..92_233_720_367, frac in 0i64..100_000_000, width in 1usize..=8) {
            // Build "int.frac" with `width` fraction digits and check it against integer math.
            let f = frac % 10i64.pow(width as u32);
            let s = format!("{int}.{f:0width$}");
            let want = int * SCALE + f * 10i64.pow(8 - width as u32);
            prop_assert_eq!(Px::parse(&s).unwrap().raw(), want);
        }

        #[test]
        fn amount_roundtrips_through_display(a in any::<i64>(), b in any::<i64>()) {
            let n = Amount::notional(Px(a), Qty(b));
            let s = n.to_string();
            // Recompute the raw value from the decimal text by hand.
            let (neg, body) = match s.strip_prefix('-') { Some(r) => (true, r), None => (false, s.as_str()) };
            let (i, f) = body.split_once('.').unwrap_or((body, ""));
            let mut raw: i128 = i.parse::<i128>().unwrap() * AMOUNT_SCALE;
            if !f.is_empty() {
                raw += f.parse::<i128>().unwrap() * 10i128.pow(16 - f.len() as u32);
            }
            prop_assert_eq!(if neg { -raw } else { raw }, n.raw());
        }
    }
}
