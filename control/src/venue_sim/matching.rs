//! The simulator's matching rules, as pure functions over the served book's levels: what a
//! taking order fills, and how a resting order moves up its price level's queue and fills.
//!
//! Taking (a MARKET order, or the part of a LIMIT order that crosses on arrival): walk the
//! opposite side best first, filling at each level's price up to its displayed quantity, until
//! the order is done or the next level is beyond its limit price.
//!
//! Resting (a LIMIT order at price P, invisible to the served market), a queue-position model:
//! * at placement, the queue ahead of it is the quantity displayed at P on its side;
//! * a print that takes liquidity at P from its side (for a buy: a seller hitting the bids,
//!   `m: true`) first consumes the queue ahead; the rest of the print fills the order (the
//!   simulator's own orders at one price share a print in time priority);
//! * every book change (diff or ticker) caps the queue at what is then displayed at P: the
//!   order never waits behind more than is shown (cancellations ahead count as progress);
//! * a print through P (below P for a buy, above for a sell) fills it completely: everything
//!   at P was taken first;
//! * when the served book crosses P (an ask at or below a resting buy), it fills up to the
//!   crossing quantity: an arriving order would have traded with it.
//!
//! Resting fills are at P, as maker. The served book is never changed by the simulator's own
//! fills (the next diff is the truth). An order remembers the crossing liquidity it has already
//! taken (on arrival or since), until the book shows less of it, so a level it consumed does not
//! fill it twice; separate orders may still take the same displayed liquidity.
//!
//! Runs wherever the venue lock is held; allocates only the fill list.

use super::wire::{Level, Trade};
use hft_shared::px::SCALE;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    /// Binance's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "BUY",
            Side::Sell => "SELL",
        }
    }

    /// Whether this side's orders rest on the bids (and take from the asks).
    pub const fn is_buy(self) -> bool {
        matches!(self, Side::Buy)
    }

    /// Whether an opposite price `px` is at or through `limit` for an order of this side.
    pub const fn reaches(self, px: i64, limit: i64) -> bool {
        match self {
            Side::Buy => px <= limit,
            Side::Sell => px >= limit,
        }
    }
}

/// How much a taking order wants: base quantity, or a quote amount to spend (buy) or raise
/// (sell), 1e-8 units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    Base(i64),
    Quote(i64),
}

/// `px × qty` in 1e-8 quote units, rounded down.
pub fn notional(px: i64, qty: i64) -> i128 {
    i128::from(px) * i128::from(qty) / i128::from(SCALE)
}

/// The fills `(price, quantity)` of a taking order of `side` walking `contra` (the opposite
/// side, best first), up to `limit` (none: any price) and `want`. A quote amount is filled in
/// whole `step`s.
pub fn take(
    contra: impl IntoIterator<Item = Level>,
    side: Side,
    limit: Option<i64>,
    want: Want,
    step: i64,
) -> Vec<(i64, i64)> {
    let mut fills = Vec::new();
    let mut left = match want {
        Want::Base(q) | Want::Quote(q) => i128::from(q),
    };
    for (px, qty) in contra {
        if left <= 0 || limit.is_some_and(|l| !side.reaches(px, l)) {
            break;
        }
        let take = match want {
            Want::Base(_) => i128::from(qty).min(left),
            Want::Quote(_) => {
                let affordable = left * i128::from(SCALE) / i128::from(px.max(1));
                let q = i128::from(qty).min(affordable);
                q - q % i128::from(step.max(1))
            }
        };
        if take <= 0 {
            break;
        }
        // take <= qty, an i64.
        let take = take as i64;
        fills.push((px, take));
        left -= match want {
            Want::Base(_) => i128::from(take),
            Want::Quote(_) => notional(px, take),
        };
    }
    fills
}

/// The quantity displayed at exactly `px` on a side (levels best first, bids when `bids`).
pub fn displayed_at(levels: impl IntoIterator<Item = Level>, bids: bool, px: i64) -> i64 {
    for (p, q) in levels {
        if p == px {
            return q;
        }
        if (bids && p < px) || (!bids && p > px) {
            break;
        }
    }
    0
}

/// The opposite quantity at or through `px` for an order of `side` (`contra` best first).
pub fn crossing(contra: impl IntoIterator<Item = Level>, side: Side, px: i64) -> i64 {
    contra.into_iter().take_while(|&(p, _)| side.reaches(p, px)).map(|(_, q)| q).sum()
}

/// What a print fills of a resting order of `side` at `px` with `remaining` to fill and
/// `ahead` (displayed quantity) queued before it. `pool` is the print's quantity not yet taken
/// by the simulator's earlier orders at that price: start it at the print's quantity and pass
/// the orders in time priority, so a later order also waits behind the earlier ones.
pub fn on_trade(side: Side, px: i64, remaining: i64, ahead: &mut i64, t: &Trade, pool: &mut i64) -> i64 {
    let through = match side {
        Side::Buy => t.px < px,
        Side::Sell => t.px > px,
    };
    if through {
        return remaining;
    }
    // A print at our price only reaches our queue when it took from our side.
    let takes_our_side = t.px == px && t.buyer_maker == side.is_buy();
    if !takes_our_side {
        return 0;
    }
    let eaten = (*ahead).min(t.qty);
    *ahead -= eaten;
    let fill = (*pool - eaten).min(remaining).max(0);
    *pool -= fill;
    fill
}

/// After a book change: caps the queue at `displayed` (now shown at the order's price on its
/// side) and returns what the order fills from `crossing` (opposite quantity at or through its
/// price) beyond what it has `consumed` of it already.
pub fn on_book(remaining: i64, ahead: &mut i64, displayed: i64, crossing: i64, consumed: &mut i64) -> i64 {
    *ahead = (*ahead).min(displayed);
    *consumed = (*consumed).min(crossing);
    let fill = (crossing - *consumed).min(remaining).max(0);
    *consumed += fill;
    fill
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: i64 = SCALE;

    #[test]
    fn a_taking_order_walks_the_levels_up_to_its_limit() {
        let asks = [(100 * P, P), (101 * P, 2 * P), (102 * P, 5 * P)];
        assert_eq!(
            take(asks, Side::Buy, None, Want::Base(5 * P / 2), 1),
            [(100 * P, P), (101 * P, 3 * P / 2)],
            "partial fill of the second level"
        );
        assert_eq!(take(asks, Side::Buy, Some(101 * P), Want::Base(10 * P), 1), [(100 * P, P), (101 * P, 2 * P)]);
        assert_eq!(take(asks, Side::Buy, Some(99 * P), Want::Base(P), 1), []);
        assert_eq!(take(asks, Side::Buy, None, Want::Base(100 * P), 1).len(), 3, "what the book holds");
        let bids = [(99 * P, P), (98 * P, P)];
        assert_eq!(take(bids, Side::Sell, Some(98 * P), Want::Base(3 * P), 1), [(99 * P, P), (98 * P, P)]);
        assert_eq!(take(bids, Side::Sell, Some(99 * P + 1), Want::Base(P), 1), []);
        // Spend 150.5 quote in steps of 0.01: 1 at 100, then 0.5 at 101 is 50.5.
        assert_eq!(take(asks, Side::Buy, None, Want::Quote(1505 * P / 10), P / 100), [(100 * P, P), (101 * P, P / 2)]);
        // 150 quote: 1 at 100, then 50 / 101 = 0.495… → 0.49.
        assert_eq!(take(asks, Side::Buy, None, Want::Quote(150 * P), P / 100), [(100 * P, P), (101 * P, 49 * P / 100)]);
        assert_eq!(notional(101 * P, 49 * P / 100), i128::from(4949 * P / 100));
    }

    #[test]
    fn displayed_and_crossing_quantities() {
        let bids = [(99 * P, 3), (98 * P, 4)];
        assert_eq!(displayed_at(bids, true, 98 * P), 4);
        assert_eq!(displayed_at(bids, true, 98 * P + 1), 0);
        assert_eq!(displayed_at(bids, true, 100 * P), 0);
        let asks = [(100 * P, 5), (101 * P, 6)];
        assert_eq!(displayed_at(asks, false, 101 * P), 6);
        assert_eq!(crossing(asks, Side::Buy, 100 * P), 5);
        assert_eq!(crossing(asks, Side::Buy, 101 * P), 11);
        assert_eq!(crossing(asks, Side::Buy, 99 * P), 0);
        assert_eq!(crossing(bids, Side::Sell, 99 * P), 3);
    }

    fn print(px: i64, qty: i64, buyer_maker: bool) -> Trade {
        Trade { px, qty, buyer_maker }
    }

    #[test]
    fn prints_consume_the_queue_ahead_then_fill() {
        // A buy at 100 behind 5 displayed.
        let (mut ahead, px) = (5 * P, 100 * P);
        let mut remaining = P;
        let mut pool = 3 * P;
        assert_eq!(on_trade(Side::Buy, px, remaining, &mut ahead, &print(px, 3 * P, true), &mut pool), 0);
        assert_eq!(ahead, 2 * P);
        // A buyer lifting an ask at our price does not reach the bids' queue.
        let mut pool = 9 * P;
        assert_eq!(on_trade(Side::Buy, px, remaining, &mut ahead, &print(px, 9 * P, false), &mut pool), 0);
        assert_eq!(ahead, 2 * P);
        // 2.5 sold at our price: 2 ahead, then 0.5 for us.
        let mut pool = 5 * P / 2;
        let fill = on_trade(Side::Buy, px, remaining, &mut ahead, &print(px, 5 * P / 2, true), &mut pool);
        assert_eq!((fill, ahead, pool), (P / 2, 0, 2 * P));
        remaining -= fill;
        // A later own order at this price, placed behind the same 2 displayed: it waits behind
        // them and the first order's 0.5, so gets nothing of that print. One with only 1
        // displayed ahead: 2.5 = 1 ahead + 0.5 for the first order + 1 for it.
        let mut ahead2 = 2 * P;
        assert_eq!(on_trade(Side::Buy, px, P, &mut ahead2, &print(px, 5 * P / 2, true), &mut pool), 0);
        let mut ahead3 = P;
        assert_eq!(on_trade(Side::Buy, px, 2 * P, &mut ahead3, &print(px, 5 * P / 2, true), &mut pool), P);
        assert_eq!(pool, P);
        // A print through our price fills the rest, whatever its size.
        let mut pool = 1;
        assert_eq!(on_trade(Side::Buy, px, remaining, &mut ahead, &print(px - 1, 1, true), &mut pool), remaining);
        // Sells mirror it.
        let mut ahead = P;
        let mut pool = 2 * P;
        assert_eq!(on_trade(Side::Sell, px, 3 * P, &mut ahead, &print(px, 2 * P, false), &mut pool), P);
        assert_eq!(on_trade(Side::Sell, px, 3 * P, &mut ahead, &print(px + 1, 1, true), &mut pool), 3 * P);
        assert_eq!(on_trade(Side::Sell, px, 3 * P, &mut ahead, &print(px - 1, P, false), &mut pool), 0);
    }

    #[test]
    fn book_changes_cap_the_queue_and_crossing_books_fill() {
        let (mut ahead, mut consumed) = (5 * P, 0);
        assert_eq!(on_book(P, &mut ahead, 7 * P, 0, &mut consumed), 0);
        assert_eq!(ahead, 5 * P, "more displayed does not push us back");
        assert_eq!(on_book(P, &mut ahead, 2 * P, 0, &mut consumed), 0);
        assert_eq!(ahead, 2 * P, "cancellations ahead");
        assert_eq!(on_book(P, &mut ahead, 0, P / 4, &mut consumed), P / 4);
        assert_eq!(ahead, 0);
        // The same quarter still displayed: already taken.
        assert_eq!(on_book(P, &mut ahead, 0, P / 4, &mut consumed), 0);
        // More arrives: the rest of the order fills from it.
        assert_eq!(on_book(3 * P / 4, &mut ahead, 0, 9 * P, &mut consumed), 3 * P / 4);
        // Less shown, then more again.
        let mut consumed = 2 * P;
        assert_eq!(on_book(P, &mut ahead, 0, P, &mut consumed), 0);
        assert_eq!((consumed, on_book(P, &mut ahead, 0, 3 * P / 2, &mut consumed)), (P, P / 2));
    }
}
