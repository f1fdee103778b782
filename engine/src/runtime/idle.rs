//! Idle strategies: what the duty cycle does after a pass that found no work.
//!
//! Allocation-free. Any work resets the strategy; `Spin` never gives the core away.

use hft_shared::config::{EngineConfig, IdleKind};
use std::time::Duration;

#[derive(Debug, Clone)]
pub enum Idle {
    /// Busy-spin with the CPU's spin-loop hint: lowest wake-up latency, owns the core.
    Spin,
    /// `sched_yield` after a short spin: gives the core to others when they want it.
    Yield { spins: u32 },
    /// Sleep after a short spin: cheapest, adds the OS wake-up latency.
    Sleep { spins: u32, dur: Duration },
}

/// Idle passes spent spinning before yielding or sleeping (keeps bursts fast).
const SPIN_BEFORE_BACKOFF: u32 = 64;

impl Idle {
    pub fn from_config(cfg: &EngineConfig) -> Self {
        match cfg.idle {
            IdleKind::Spin => Idle::Spin,
            IdleKind::Yield => Idle::Yield { spins: 0 },
            IdleKind::Sleep => Idle::Sleep { spins: 0, dur: Duration::from_micros(cfg.sleep_us) },
        }
    }

    /// Called once per duty cycle with the amount of work it did.
    #[inline]
    pub fn idle(&mut self, work: usize) {
        match self {
            Idle::Spin => {
                if work == 0 {
                    std::hint::spin_loop();
                }
            }
            Idle::Yield { spins } => {
                if work > 0 {
                    *spins = 0;
                } else if *spins < SPIN_BEFORE_BACKOFF {
                    *spins += 1;
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
            Idle::Sleep { spins, dur } => {
                if work > 0 {
                    *spins = 0;
                } else if *spins < SPIN_BEFORE_BACKOFF {
                    *spins += 1;
                    std::hint::spin_loop();
                } else {
                    std::thread::sleep(*dur);
                }
            }
        }
    }
}
