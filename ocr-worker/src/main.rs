use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    finagent_ocr_worker::run(finagent_ocr_worker::Cli::parse()).await
}
