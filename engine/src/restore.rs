//! State carried over a restart: what the control plane's durable store recorded before the
//! process stopped (or was killed), handed to [`crate::spawn_with`] and applied once, before the
//! first duty cycle, by [`crate::Engine::restore`].
//!
//! What comes back: each symbol's position (quantity, exact cost basis, realized PnL and fees)
//! and its last mark; the circuit breakers' baselines (the day's starting equity with the UTC day
//! it belongs to, the equity peak) and the kill-switch latch; the next order id; the send times
//! of the current UTC day's orders, which count against the venue's order-rate limits (a restart
//! does not reset the day's order count nor the 10-second window). A restart never
//! clears a tripped kill switch nor the day's loss budget: the breaker resumes from the stored
//! baseline when the stored day is the current one, and takes the equity at its first update as
//! the new day's baseline otherwise (a day rollover, reported as one).
//!
//! Built on the caller's thread at start-up (allocates); applied on the hot thread before it
//! trades. Nothing here runs per message.

use crate::risk::Position;
use hft_shared::msg::KillCause;
use hft_shared::{Amount, Px, SymbolId};

/// Everything the engine takes over from a previous run. `Restore::default()` is a fresh start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Restore {
    /// At most one per configured symbol; symbols not listed start flat.
    pub positions: Vec<RestoredPosition>,
    /// `None`: the breakers start from `capital.total` as on a first start.
    pub breaker: Option<BreakerState>,
    /// The first order id this run may use: above every id sent before, so order ids (and the
    /// live client ids built from them) never repeat across restarts. 0 and 1 both mean 1.
    pub next_order_id: u64,
    /// Send times (Unix ns, as the risk manager stamped them) of the orders sent on the current
    /// UTC day before the restart, oldest first: replayed into the order-rate throttle, so the
    /// day's count and the 10-second window carry over.
    pub orders_sent: Vec<u64>,
}

/// One symbol's position as stored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RestoredPosition {
    pub symbol: SymbolId,
    pub position: Position,
    /// Last mark (mid) seen for the symbol, zero when unknown: prices the position for equity
    /// and the total-exposure check until the first quote arrives.
    pub mark: Px,
}

/// The circuit breakers' state as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerState {
    /// UTC day (days since the Unix epoch) `day_start` belongs to.
    pub day: u64,
    /// Equity the day's loss is measured from (quote currency).
    pub day_start: Amount,
    /// Highest equity seen since the start of the record or the last re-arm.
    pub peak: Amount,
    /// The latched kill switch, `None` when armed and untripped.
    pub tripped: Option<KillCause>,
}

/// A restore the engine refuses (nothing is applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    #[error("a restored position names symbol #{0}, which is not configured")]
    UnknownSymbol(u16),
    #[error("symbol #{0} has two restored positions")]
    DuplicateSymbol(u16),
    #[error("the restored position of symbol #{0} is flat but has a cost basis, or has negative fees")]
    InconsistentPosition(u16),
    #[error("the restored order send times are not in order (#{0} is earlier than the one before it)")]
    UnorderedSendTimes(usize),
}

impl Restore {
    /// Nothing to take over: the engine starts as on a first start.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty() && self.breaker.is_none() && self.next_order_id <= 1 && self.orders_sent.is_empty()
    }

    /// Checks the restore against `symbols` configured symbols.
    pub fn validate(&self, symbols: usize) -> Result<(), RestoreError> {
        for (k, p) in self.positions.iter().enumerate() {
            let id = p.symbol.0;
            if p.symbol.index() >= symbols {
                return Err(RestoreError::UnknownSymbol(id));
            }
            if self.positions[..k].iter().any(|q| q.symbol == p.symbol) {
                return Err(RestoreError::DuplicateSymbol(id));
            }
            let pos = &p.position;
            if (pos.qty.is_zero() && pos.cost != Amount::ZERO) || pos.fees < Amount::ZERO {
                return Err(RestoreError::InconsistentPosition(id));
            }
        }
        // The throttle's window is binary-searched: its times must not go backwards.
        if let Some(k) = self.orders_sent.windows(2).position(|w| w[1] < w[0]) {
            return Err(RestoreError::UnorderedSendTimes(k + 1));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hft_shared::Qty;

    fn pos(symbol: u16, qty: i64, cost: i128) -> RestoredPosition {
        RestoredPosition {
            symbol: SymbolId(symbol),
            position: Position { qty: Qty(qty), cost: Amount(cost), realized: Amount::ZERO, fees: Amount::ZERO },
            mark: Px::ZERO,
        }
    }

    #[test]
    fn validation_names_what_is_wrong() {
        assert!(Restore::default().is_empty());
        assert_eq!(Restore::default().validate(1), Ok(()));
        let ok = Restore { positions: vec![pos(0, 5, 500), pos(1, 0, 0)], ..Restore::default() };
        assert_eq!(ok.validate(2), Ok(()));
        assert!(!ok.is_empty());
        assert_eq!(ok.validate(1), Err(RestoreError::UnknownSymbol(1)));
        let dup = Restore { positions: vec![pos(0, 5, 500), pos(0, 1, 100)], ..Restore::default() };
        assert_eq!(dup.validate(2), Err(RestoreError::DuplicateSymbol(0)));
        let flat_with_cost = Restore { positions: vec![pos(0, 0, 7)], ..Restore::default() };
        assert_eq!(flat_with_cost.validate(1), Err(RestoreError::InconsistentPosition(0)));
        assert!(!Restore { next_order_id: 9, ..Restore::default() }.is_empty());
        let sent = Restore { orders_sent: vec![5, 5, 7], ..Restore::default() };
        assert!(!sent.is_empty());
        assert_eq!(sent.validate(1), Ok(()));
        let backwards = Restore { orders_sent: vec![5, 8, 7, 9], ..Restore::default() };
        assert_eq!(backwards.validate(1), Err(RestoreError::UnorderedSendTimes(2)));
    }
}
