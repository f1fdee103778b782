//! `hft venue-sim` (being written).
use crate::Failure;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct VenueSimArgs {
    /// Capture files to serve; without it, the synthetic market is served.
    #[arg(long, num_args = 1.., value_name = "FILE")]
    pub input: Vec<PathBuf>,
}

pub fn run(_args: VenueSimArgs, _config: Option<PathBuf>) -> Result<(), Failure> {
    Err(Failure::usage(anyhow::anyhow!("hft venue-sim is not available yet")))
}
