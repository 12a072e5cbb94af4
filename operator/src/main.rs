use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    finagent_operator::run(finagent_operator::Cli::parse()).await
}
