//! FinancialAgent's Kubernetes operator.
//!
//! `main.rs` only parses the command line and calls [`run`]; everything worth testing is here.

use clap::{Parser, Subcommand};
use finagent_platform::telemetry::{self, TelemetryArgs};

/// FinancialAgent's Kubernetes operator.
#[derive(Debug, Parser)]
#[command(name = "operator", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the version and the job protocol version this build speaks.
    Version,
}

/// Runs the command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    telemetry::init(&cli.telemetry)?;
    match cli.command {
        Command::Version => {
            println!(
                "{} {} (job protocol v{})",
                env!("CARGO_PKG_NAME"),
                env!("CARGO_PKG_VERSION"),
                finagent_core::job::JOB_PROTOCOL_VERSION
            );
            Ok(())
        }
    }
}
