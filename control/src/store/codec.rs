//! How values are written to the store's columns and read back, exactly.
//!
//! `Px` and `Qty` are stored as their raw `i64` (units of 1e-8, columns suffixed `_e8`) so SQL can
//! sum them exactly; `Amount`s (i128, 1e-16 units: too wide for SQLite's 64-bit integers) as
//! exact decimal text (`"-12.0000000000000001"`), which reads as money in any SQLite client.
//! Times are Unix nanoseconds (`_ns`) or milliseconds (`_ms`); days are UTC.
//!
//! Writer thread and start-up; allocates (strings).

use hft_shared::px::{AMOUNT_DECIMALS, AMOUNT_SCALE};
use hft_shared::{Amount, Side};

/// Nanoseconds per UTC day (Unix time has no leap seconds).
pub const DAY_NS: u64 = 86_400 * 1_000_000_000;

/// Reads back a side as stored (`Side::as_str`: `BUY`, `SELL`).
pub fn parse_side(s: &str) -> Option<Side> {
    match s {
        "BUY" => Some(Side::Buy),
        "SELL" => Some(Side::Sell),
        _ => None,
    }
}

/// An amount as stored: its exact decimal text.
pub fn amount(a: Amount) -> String {
    a.to_string()
}

/// Reads back an amount written by [`amount`]: `-?digits[.digits]` with at most 16 decimals.
/// Anything else (exponents, spaces, more decimals, overflow) is `None`: never rounded.
pub fn parse_amount(s: &str) -> Option<Amount> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if frac.len() > AMOUNT_DECIMALS as usize || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if body.contains('.') && frac.is_empty() {
        return None;
    }
    let int: i128 = int.parse().ok()?;
    let frac_raw: i128 = if frac.is_empty() { 0 } else { frac.parse().ok()? };
    let frac_raw = frac_raw.checked_mul(10i128.checked_pow(AMOUNT_DECIMALS - frac.len() as u32)?)?;
    let raw = int.checked_mul(AMOUNT_SCALE)?.checked_add(frac_raw)?;
    Some(Amount(if neg { -raw } else { raw }))
}

/// UTC day number (days since 1970-01-01) of a Unix time in ns.
pub fn day_of(ts_ns: u64) -> u64 {
    ts_ns / DAY_NS
}

/// `YYYY-MM-DD` of a UTC day number (proleptic Gregorian; H. Hinnant's `civil_from_days`).
pub fn date(day: u64) -> String {
    let z = day as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// A `u64` count or time in an SQLite integer (saturating: no Unix ns value reaches it before
/// the year 2262).
pub fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn amounts_round_trip_and_garbage_is_refused() {
        for s in ["0", "1", "-1", "12.5", "-0.0000000000000001", "99999999999999999999.9999999999999999"] {
            let a = parse_amount(s).unwrap_or_else(|| panic!("{s} parses"));
            assert_eq!(amount(a), s);
        }
        assert_eq!(parse_amount("1.50"), Some(Amount(15 * AMOUNT_SCALE / 10)));
        for bad in ["", "-", ".5", "1.", "1e5", " 1", "1 ", "+1", "1.00000000000000001", "--1", "1.2.3", "0x10"] {
            assert_eq!(parse_amount(bad), None, "{bad:?}");
        }
        assert_eq!(parse_amount("999999999999999999999999999999999999999999"), None, "overflow");
    }

    #[test]
    fn utc_dates() {
        assert_eq!(date(0), "1970-01-01");
        // 2024-08-08 23:54:15 UTC and the next midnight.
        let t = 1_723_161_255 * 1_000_000_000;
        assert_eq!(date(day_of(t)), "2024-08-08");
        assert_eq!(date(day_of(t) + 1), "2024-08-09");
        assert_eq!(date(day_of(951_782_400 * 1_000_000_000)), "2000-02-29");
        assert_eq!(date(day_of(4_107_542_400 * 1_000_000_000)), "2100-03-01");
    }

    proptest! {
        #[test]
        fn every_amount_round_trips(raw in any::<i128>().prop_filter("MIN has no positive twin", |v| *v != i128::MIN)) {
            prop_assert_eq!(parse_amount(&amount(Amount(raw))), Some(Amount(raw)));
        }
    }
}
