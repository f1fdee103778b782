//! `hft`: the trading engine's binary. Parses the command line, loads `.env` and the
//! configuration, sets up logging, and dispatches to a subcommand (`run` by default).
//!
//! Runs on the process's main thread; allocates freely. Exit codes: 0 clean shutdown, 1 runtime
//! failure, 2 bad configuration or usage.

mod api;
mod audit;
mod backtest;
mod bridge;
mod notify;
mod record;
mod replay;
mod run;
mod state;
mod store;
mod venue_sim;

use clap::{Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

#[derive(Parser, Debug)]
#[command(name = "hft", version, about = "Low-latency Binance trading engine with an HTTP control plane")]
struct Cli {
    /// TOML file merged over the built-in defaults (else $HFT_CONFIG, else ./config/default.toml
    /// when present).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log line format (logs go to stderr).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Log filter, e.g. `info` or `hft=debug,info` [default: $RUST_LOG, else info].
    #[arg(long, global = true, value_name = "FILTER")]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand, Debug, Clone, PartialEq)]
enum Cmd {
    /// Run the engine and the control API until SIGINT/SIGTERM (the default).
    Run,
    /// Replay captured frames through the engine's decode and book code.
    Replay(replay::ReplayArgs),
    /// Record the live market-data stream to a capture file (`<ns> <json>` per line, gzip).
    Record(record::RecordArgs),
    /// Serve Binance's market-data and trading protocols on loopback: a capture or the synthetic
    /// market, and a simulated account trading against it.
    VenueSim(Box<venue_sim::VenueSimArgs>),
    /// Backtest the strategies over captures or Binance trade CSVs: metrics, report, sweeps.
    Backtest(backtest::BacktestArgs),
    /// Judge the go-live criteria from a backtest result or the store's paper account.
    Gate(backtest::gate::GateArgs),
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

/// A failure and the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl Failure {
    /// Bad configuration or usage: exit 2.
    pub fn usage(error: anyhow::Error) -> Self {
        Self { code: 2, error }
    }
    /// Failed while running: exit 1.
    pub fn runtime(error: anyhow::Error) -> Self {
        Self { code: 1, error }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Self::runtime(error)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before any thread exists: dotenvy sets process environment variables.
    if let Err(f) = load_dotenv() {
        return exit(f);
    }
    if let Err(f) = init_logging(cli.log_format, cli.log_level.as_deref()) {
        return exit(f);
    }
    let result = match cli.command.unwrap_or(Cmd::Run) {
        Cmd::Run => run::run(cli.config),
        Cmd::Replay(args) => replay::run(args, cli.config),
        Cmd::Record(args) => record::run(args, cli.config),
        Cmd::VenueSim(args) => venue_sim::run(*args, cli.config),
        Cmd::Backtest(args) => backtest::run(args, cli.config),
        Cmd::Gate(args) => backtest::gate::run(args, cli.config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => exit(f),
    }
}

fn exit(f: Failure) -> ExitCode {
    eprintln!("error: {:#}", f.error);
    ExitCode::from(f.code)
}

/// Loads `./.env` when present. Variables already set win. Its contents are never printed: a
/// malformed line is reported without its text (it may hold a secret).
fn load_dotenv() -> Result<(), Failure> {
    match dotenvy::from_path(".env") {
        Ok(()) => Ok(()),
        Err(dotenvy::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(dotenvy::Error::LineParse(..)) => {
            Err(Failure::usage(anyhow::anyhow!("cannot read .env: a line is malformed (contents not shown)")))
        }
        Err(e @ dotenvy::Error::EnvVar(_)) | Err(e @ dotenvy::Error::Io(_)) => {
            Err(Failure::usage(anyhow::anyhow!("cannot read .env: {e}")))
        }
        Err(_) => Err(Failure::usage(anyhow::anyhow!("cannot read .env"))),
    }
}

/// Logs to stderr: `--log-level`, else `RUST_LOG`, else `info`.
fn init_logging(format: LogFormat, level: Option<&str>) -> Result<(), Failure> {
    let env = std::env::var("RUST_LOG").ok().filter(|s| !s.trim().is_empty());
    let spec = level.map(str::to_owned).or(env).unwrap_or_else(|| "info".to_owned());
    let filter =
        EnvFilter::try_new(&spec).map_err(|e| Failure::usage(anyhow::anyhow!("invalid log level {spec:?}: {e}")))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let res = match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    res.map_err(|e| Failure::runtime(anyhow::anyhow!("cannot set up logging: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_subcommand_means_run_and_flags_are_global() {
        let cli = Cli::try_parse_from(["hft", "--log-format", "json"]).expect("parses");
        assert_eq!((cli.command, cli.log_format), (None, LogFormat::Json));
        let cli = Cli::try_parse_from(["hft", "run", "--config", "x.toml", "--log-level", "debug"]).expect("parses");
        assert_eq!(cli.command, Some(Cmd::Run));
        assert_eq!(cli.config, Some(PathBuf::from("x.toml")));
        assert_eq!(cli.log_level.as_deref(), Some("debug"));
        assert!(Cli::try_parse_from(["hft", "--log-format", "xml"]).is_err());
    }
}
