//! Tracing, set up in exactly one place for every binary.
//!
//! The filter comes from `RUST_LOG` (default `info`); the format from `--log-format plain|json`
//! (env `LOG_FORMAT`); plain lines are coloured only when stderr is a terminal and `NO_COLOR` is
//! unset. Field names are dotted (`receipt.id`, `job.id`). Tokens, passwords, emails
//! and receipt contents are never logged.

use finagent_core::names::env;
use std::io::IsTerminal;

use clap::{Args, ValueEnum};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// How log lines are written to stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Plain,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Logging options shared by every binary; flatten into its clap struct.
#[derive(Clone, Debug, Args)]
pub struct TelemetryArgs {
    /// Log format: plain or json. The level filter comes from RUST_LOG (default "info").
    #[arg(long, env = env::LOG_FORMAT, value_enum, default_value_t = LogFormat::Plain, global = true)]
    pub log_format: LogFormat,
}

/// Installs the global tracing subscriber. Call once, first thing in `main`'s library entry point.
///
/// Errors when `RUST_LOG` does not parse or a subscriber is already installed.
pub fn init(args: &TelemetryArgs) -> Result<(), TelemetryError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => {
            EnvFilter::try_new(&directives).map_err(|e| TelemetryError::Filter(e.to_string()))?
        }
        _ => EnvFilter::new("info"),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_span_events(FmtSpan::NONE)
        .with_target(true)
        // Colours only on a terminal: a log file or a collector gets plain text.
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none());
    let installed = match args.log_format {
        LogFormat::Plain => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
    };
    installed.map_err(|e| TelemetryError::Install(e.to_string()))
}

/// Why tracing could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `RUST_LOG` is not a valid filter.
    #[error("failed to parse RUST_LOG: {0}")]
    Filter(String),
    /// A subscriber was already installed.
    #[error("failed to install the tracing subscriber: {0}")]
    Install(String),
}
