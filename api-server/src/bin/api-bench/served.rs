//! What the in-process benchmarks share: the store and the guard their options name (else the
//! embedded ones in a scratch folder), and the real router served on a loopback port with rate
//! limits far above the offered load, so that the limiter still runs on every request.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use finagent_api_server::auth::password::Hasher;
use finagent_api_server::config::{Limits, Settings};
use finagent_api_server::guard::{Guard, RedisGuard};
use finagent_api_server::limits::rate::Limit;
use finagent_api_server::state::AppState;
use finagent_platform::metrics::Metrics;
use finagent_platform::queue::memory::MemoryQueue;
use finagent_platform::queue::{AnyQueue, QueuePolicy};
use finagent_platform::store::AnyStore;
use finagent_platform::store::mongo::MongoStore;
use finagent_platform::store::sqlite::SqliteStore;

/// MongoDB at `mongodb_url` (a database named after `label` and this process), else SQLite in
/// a scratch folder; with the folder, for the caller to remove.
pub async fn store(mongodb_url: Option<&str>, label: &str) -> anyhow::Result<(AnyStore, PathBuf)> {
    let directory = std::env::temp_dir().join(format!("finagent-{label}-{}", std::process::id()));
    let store = match mongodb_url {
        Some(url) => AnyStore::Mongo(MongoStore::connect(url, &format!("{label}_{}", std::process::id())).await?),
        None => AnyStore::Sqlite(SqliteStore::open(directory.join("db.sqlite3"), directory.join("blobs")).await?),
    };
    Ok((store, directory))
}

/// The Redis guard at `redis_url` (keys named after `label` and this process), else the in-process one.
pub async fn guard(redis_url: Option<&str>, label: &str) -> anyhow::Result<Guard> {
    Ok(match redis_url {
        Some(url) => Guard::Redis(RedisGuard::connect(url, &format!("{label}-{}", std::process::id()).parse()?).await?),
        None => Guard::memory(),
    })
}

/// Test settings with every rate limit at `per_second` and as large a burst.
pub fn open_settings(per_second: u32) -> Settings {
    let mut settings = Settings::for_tests();
    let open = Limit::per_second(f64::from(per_second), per_second);
    settings.limits = Limits { api: open, upload: open, login: open, login_address: open, address: open };
    settings
}

/// The API served in this process.
pub struct Served {
    pub state: AppState,
    pub address: SocketAddr,
    pub task: tokio::task::JoinHandle<()>,
}

/// Serves the real router over `store` and `guard`, with the in-process queue, on a loopback port.
pub async fn serve(store: AnyStore, guard: Guard, hasher: Hasher, settings: Settings) -> anyhow::Result<Served> {
    let queue = AnyQueue::Memory(Arc::new(MemoryQueue::new(QueuePolicy::default())));
    let state = AppState::new(store, queue, guard, hasher, settings, Metrics::new(), 0);
    let router = finagent_api_server::app(state.clone(), finagent_api_server::readiness(&state))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let task = tokio::spawn(async move {
        finagent_api_server::listen::serve(listener, router, Default::default(), std::future::pending()).await.ok();
    });
    Ok(Served { state, address, task })
}
