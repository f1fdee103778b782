//! Placeholder while the engine is written.
use hft_shared::config::Config;
use hft_shared::msg::{Command, Event};
pub struct Engine { _c: rtrb::Consumer<Command>, _e: rtrb::Producer<Event>, stopped: bool }
impl Engine {
    pub fn new(_cfg: &Config, c: rtrb::Consumer<Command>, e: rtrb::Producer<Event>) -> Result<Self, crate::EngineError> { Ok(Self { _c: c, _e: e, stopped: false }) }
    pub fn poll(&mut self) -> usize { 0 }
    pub fn stopped(&self) -> bool { self.stopped }
}
