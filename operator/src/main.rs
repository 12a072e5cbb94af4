#[tokio::main]
async fn main() -> anyhow::Result<()> {
    finagent_operator::run(finagent_operator::parse_args(std::env::args_os().collect())).await
}
