use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    finagent_api_server::run(finagent_api_server::Cli::parse()).await
}
