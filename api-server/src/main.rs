use clap::Parser;

/// mimalloc: a request allocates and frees dozens of small objects (headers, keys, JSON), and
/// glibc's allocator spent about 15 % of the server's time on them under load (`api-bench routes`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    finagent_api_server::run(finagent_api_server::Cli::parse()).await
}
