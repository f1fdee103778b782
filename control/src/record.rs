//! `hft record` (being written).
use crate::Failure;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct RecordArgs {
    /// Capture file to write (gzip).
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
}

pub fn run(_args: RecordArgs, _config: Option<PathBuf>) -> Result<(), Failure> {
    Err(Failure::usage(anyhow::anyhow!("hft record is not available yet")))
}
