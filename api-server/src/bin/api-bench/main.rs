//! `api-bench`: the API's benchmarks and load client, over the `finagent_api_server` library and
//! outside the production server. Each prints its figures against a baseline measured in the
//! same run (see the README).

mod growth;
mod load;
mod login;
mod routes;
mod served;

use clap::{Parser, Subcommand};
use finagent_platform::telemetry::{self, TelemetryArgs};

/// The same allocator as the server, so that the figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "api-bench", version, about = "FinancialAgent's API benchmarks and load client.")]
struct Cli {
    #[command(flatten)]
    telemetry: TelemetryArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Latency of `/api/auth/me` and `/api/auth/login` against baselines.
    Login(login::LoginArgs),
    /// One user's list, insights and export requests at 100, 10,000 and 100,000 receipts.
    Growth(growth::GrowthArgs),
    /// Requests per second of every authenticated read route against `/healthz`.
    Routes(routes::RoutesArgs),
    /// Receipts uploaded by N concurrent clients to a running server, timed to their results.
    Load(load::LoadArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init(&cli.telemetry)?;
    match cli.command {
        Command::Login(args) => login::run(args).await,
        Command::Growth(args) => growth::run(args).await,
        Command::Routes(args) => routes::run(args).await,
        Command::Load(args) => load::run(args).await,
    }
}
