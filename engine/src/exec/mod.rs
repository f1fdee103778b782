//! Execution. Paper mode: market orders fill immediately against the engine's own L2 book,
//! walking it level by level (partial fills across levels; what the book cannot fill expires,
//! IOC-style). The book is not modified: the paper order is too small to matter and the next
//! diff is the truth. Fees are charged at the configured taker rate.
//!
//! Hot thread; no allocation (fills are reported through a callback).

use crate::book::Book;
use hft_shared::config::Config;
use hft_shared::{Amount, Px, Qty, Side};

/// Fee rates in parts per 1e8 of notional.
#[derive(Debug, Clone, Copy)]
pub struct PaperExec {
    taker_fee_e8: i128,
}

/// Fee rate scale: a rate `r` is stored as `r × 1e8`.
const FEE_SCALE: i128 = 100_000_000;

impl PaperExec {
    pub fn new(cfg: &Config) -> Self {
        Self { taker_fee_e8: (cfg.fees.taker * FEE_SCALE as f64).round() as i128 }
    }

    /// Fee on `notional` at the taker rate (rounded toward zero).
    #[inline]
    pub fn taker_fee(&self, notional: Amount) -> Amount {
        Amount(notional.raw() * self.taker_fee_e8 / FEE_SCALE)
    }

    /// Fills a market order of `qty` on `side` against `book`, calling `on_fill(px, qty, fee)`
    /// per level touched, best level first. Returns the quantity filled.
    #[inline]
    pub fn fill_market(&self, book: &Book, side: Side, qty: Qty, mut on_fill: impl FnMut(Px, Qty, Amount)) -> Qty {
        let mut left = qty.raw();
        for level in book.contra(side).iter() {
            if left == 0 {
                break;
            }
            let take = left.min(level.qty.raw());
            let q = Qty(take);
            on_fill(level.px, q, self.taker_fee(Amount::notional(level.px, q)));
            left -= take;
        }
        Qty(qty.raw() - left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::decode::Level;

    fn lv(px: &str, qty: &str) -> Level {
        Level { px: Px::parse(px).unwrap(), qty: Qty::parse(qty).unwrap() }
    }

    #[test]
    fn market_order_walks_the_book_at_the_volume_weighted_price() {
        let cfg = Config::from_toml_str("[fees]\ntaker = 0.001\n", &|_| None).unwrap();
        let ex = PaperExec::new(&cfg);
        let mut book = Book::with_capacity(16);
        book.apply_snapshot(1, &[lv("99", "1")], &[lv("100", "1"), lv("101", "2"), lv("102", "5")]).unwrap();
        let mut fills = vec![];
        let filled = ex.fill_market(&book, Side::Buy, Qty::parse("2.5").unwrap(), |p, q, f| fills.push((p, q, f)));
        assert_eq!(filled, Qty::parse("2.5").unwrap());
        assert_eq!(fills.len(), 2);
        let notional = fills.iter().fold(Amount::ZERO, |a, (p, q, _)| a + Amount::notional(*p, *q));
        // 1 × 100 + 1.5 × 101 = 251.5; VWAP 100.6
        assert_eq!(notional.to_string(), "251.5");
        assert_eq!(fills.iter().fold(Amount::ZERO, |a, f| a + f.2).to_string(), "0.2515");
        // More than the book holds: fills what is there.
        let filled = ex.fill_market(&book, Side::Buy, Qty::from_int(100), |_, _, _| {});
        assert_eq!(filled, Qty::from_int(8));
    }
}
