//! `hft replay` (being written).
use crate::Failure;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct ReplayArgs {
    /// Capture files (`<ns> <json>` per line, gzip or plain), replayed in order.
    #[arg(long, required = true, num_args = 1.., value_name = "FILE")]
    pub input: Vec<PathBuf>,
    /// Print the final book of SYMBOL (`B <price> <qty>` best-first, then `A <price> <qty>`) and
    /// nothing else on stdout.
    #[arg(long, value_name = "SYMBOL")]
    pub dump_book: Option<String>,
}

pub fn run(_args: ReplayArgs, _config: Option<PathBuf>) -> Result<(), Failure> {
    Err(Failure::usage(anyhow::anyhow!("hft replay is not available yet")))
}
