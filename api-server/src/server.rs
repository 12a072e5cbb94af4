//! Starting the server: open the store, the queue and the guard state the configuration names,
//! start in-process OCR workers in the all-in-one mode, and serve until SIGTERM.

use finagent_core::names::env;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use finagent_core::UserId;
use finagent_core::account::{Role, User};
use finagent_core::names::InstanceName;
use finagent_platform::admin::Readiness;
use finagent_platform::metrics::Metrics;
use finagent_platform::queue::memory::MemoryQueue;
use finagent_platform::queue::redis::RedisQueue;
use finagent_platform::queue::{AnyQueue, JobQueue, QueuePolicy};
use finagent_platform::shutdown;
use finagent_platform::store::mongo::MongoStore;
use finagent_platform::store::sqlite::SqliteStore;
use finagent_platform::store::{AnyStore, StoreError, UserStore};
use prometheus::{IntGauge, Opts};

use crate::auth::accounts::{normalize_email, normalize_username};
use crate::auth::password::{self, HashParams, Hasher};
use crate::config::{ServeArgs, Settings, StoreArgs};
use crate::guard::{Guard, RedisGuard};
use crate::state::AppState;

/// Opens the store the arguments name: MongoDB when a URL is given, else the embedded SQLite file.
pub async fn open_store(args: &StoreArgs) -> Result<AnyStore, StoreError> {
    match &args.mongodb_url {
        Some(url) => Ok(AnyStore::Mongo(MongoStore::connect(url, &args.mongodb_db_name).await?)),
        None => {
            let store =
                SqliteStore::open(args.data_dir.join("financial-agent.sqlite3"), args.data_dir.join("blobs")).await?;
            Ok(AnyStore::Sqlite(store))
        }
    }
}

/// Connects the queue and the guard state: Redis when a URL is given, else in process.
pub async fn open_queue_and_guard(args: &ServeArgs, store: &AnyStore) -> anyhow::Result<(AnyQueue, Guard)> {
    match &args.redis_url {
        Some(url) => {
            let instance: InstanceName = args.instance.parse()?;
            let queue = RedisQueue::connect(url, &instance, QueuePolicy::default()).await?;
            Ok((AnyQueue::Redis(queue), Guard::Redis(RedisGuard::connect(url, &instance).await?)))
        }
        None => Ok((
            AnyQueue::Memory(Arc::new(MemoryQueue::new(QueuePolicy::default()))),
            // Without Redis, revocations are kept in the store so that they survive a restart.
            Guard::Memory(crate::guard::MemoryGuard::persisted(store.clone()).await?),
        )),
    }
}

/// OCR threads to run in process: as configured, else one per CPU without Redis and none with it.
fn in_process_workers(args: &ServeArgs) -> usize {
    args.ocr_workers.unwrap_or_else(|| {
        if args.redis_url.is_some() { 0 } else { std::thread::available_parallelism().map_or(1, |n| n.get()) }
    })
}

/// Runs `api-server serve`.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let settings = Settings::from_args(&args)?;
    let store = open_store(&args.store).await?;
    let (queue, guard) = open_queue_and_guard(&args, &store).await?;
    let workers = in_process_workers(&args);
    if workers > 0 && args.redis_url.is_none() && cfg!(not(feature = "embedded-ocr")) {
        anyhow::bail!("this build has no embedded OCR: set REDIS_URL and run ocr-worker processes");
    }
    tracing::info!(store = store.kind(), queue = queue.kind(), ocr.workers = workers, env = ?settings.environment, "starting");
    let metrics = Metrics::new();
    let hasher = match settings.password_hashes_at_once {
        Some(slots) => Hasher::with_slots(HashParams::default(), slots)?,
        None => Hasher::within(HashParams::default(), settings.memory_limit)?,
    };
    tracing::info!(
        password_hashes_at_once = hasher.slots(),
        uploads_at_once = settings.max_concurrent_uploads,
        "memory budgets"
    );
    let state = AppState::new(store, queue, guard, hasher, settings, metrics, workers);
    if state.settings.demo_users {
        create_demo_users(&state).await?;
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown::signal().await;
        stop.send_replace(true);
    });
    let wait_for_stop = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        stopped.wait_for(|stop| *stop).await.ok();
    };
    if matches!(state.queue, AnyQueue::Memory(_)) {
        requeue_unfinished(&state).await?;
    }
    let workers_done = if workers > 0 {
        Some(start_workers(&state, workers, Duration::from_secs(args.ocr_timeout), wait_for_stop(stopped.clone()))?)
    } else {
        watch_queue_depth(&state)?;
        None
    };
    let router = crate::app(state.clone(), readiness(&state))?;
    if let Some(admin) = args.admin_listen {
        let admin_router = finagent_platform::admin::router(state.metrics.clone(), readiness(&state));
        let stop = wait_for_stop(stopped.clone());
        tokio::spawn(async move {
            if let Err(error) = finagent_platform::admin::serve(admin, admin_router, stop).await {
                tracing::error!(%error, "the admin endpoints stopped");
            }
        });
    }
    let (store, keys) = (state.store.clone(), state.tokens.clone());
    tokio::spawn(async move {
        match crate::webhooks::reseal_secrets(&store, &keys).await {
            Ok(0) => {}
            Ok(resealed) => {
                tracing::info!(resealed, key = keys.current_kid(), "webhook secrets sealed under the current key")
            }
            Err(error) => tracing::warn!(%error, "webhook secrets were not sealed again; the next start tries again"),
        }
    });
    let sender = tokio::spawn(crate::webhooks::sender::run_sender(
        state.store.clone(),
        state.settings.webhooks,
        state.tokens.clone(),
        wait_for_stop(stopped.clone()),
    ));
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::info!(http.address = %listener.local_addr()?, "api listening");
    let options = crate::listen::ServeOptions {
        header_read_timeout: Duration::from_secs(args.header_read_timeout_seconds.max(1)),
        ..Default::default()
    };
    crate::listen::serve(listener, router, options, wait_for_stop(stopped)).await?;
    sender.await.ok();
    if let Some(done) = workers_done {
        done.await??;
    }
    Ok(())
}

#[cfg(feature = "embedded-ocr")]
fn start_workers(
    state: &AppState,
    threads: usize,
    timeout: Duration,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<()>>> {
    use finagent_extract::Gazetteer;
    use finagent_ocr::consumer::{ConsumerConfig, WorkerMetrics, consume};
    use finagent_ocr::pool::{EnginePool, PoolConfig};

    let ppocr = finagent_ocr::ppocr::PpOcrConfig::from_env().map_err(anyhow::Error::msg)?;
    let config = PoolConfig { threads, timeout, limits: state.settings.image_limits, ppocr, ..PoolConfig::default() };
    let pool = EnginePool::start(config, Arc::new(Gazetteer::bundled()))?;
    let metrics = WorkerMetrics::register(&state.metrics)?;
    let consumer = ConsumerConfig {
        consumer: format!("api-{}", std::process::id()),
        heartbeat_every: QueuePolicy::default().visibility_timeout / 3,
        grace: Duration::from_secs(25),
    };
    let (queue, store) = (Arc::new(state.queue.clone()), Arc::new(state.store.clone()));
    Ok(tokio::spawn(consume(queue, store, pool, metrics, consumer, stop)))
}

#[cfg(not(feature = "embedded-ocr"))]
fn start_workers(
    _state: &AppState,
    _threads: usize,
    _timeout: Duration,
    _stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<()>>> {
    anyhow::bail!("this build has no embedded OCR (feature `embedded-ocr`): set OCR_WORKERS=0")
}

/// The in-process queue starts empty: receipts a previous run accepted and did not finish are
/// queued again (a redelivery overwrites, never duplicates, so a receipt that was in fact done
/// loses nothing).
async fn requeue_unfinished(state: &AppState) -> anyhow::Result<()> {
    use finagent_platform::store::ReceiptStore;
    let unfinished = state.store.unfinished_receipts().await?;
    for receipt in &unfinished {
        let job = finagent_core::job::OcrJob::new(receipt.id, receipt.owner_id, receipt.blob_key.clone(), Utc::now());
        state.queue.enqueue(&job).await?;
    }
    if !unfinished.is_empty() {
        tracing::info!(receipts = unfinished.len(), "queued again the receipts a previous run left unfinished");
    }
    Ok(())
}

/// Without in-process workers (whose metrics include it), the API exports the queue depth itself.
fn watch_queue_depth(state: &AppState) -> anyhow::Result<()> {
    let gauge =
        IntGauge::with_opts(Opts::new(finagent_core::names::metrics::QUEUE_DEPTH, "OCR jobs waiting or in progress."))?;
    state.metrics.registry().register(Box::new(gauge.clone()))?;
    let queue = state.queue.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            if let Ok(depth) = queue.depth().await {
                gauge.set(i64::try_from(depth.total()).unwrap_or(i64::MAX));
            }
        }
    });
    Ok(())
}

/// `/readyz` checks: the store, the queue and the guard state answer.
pub fn readiness(state: &AppState) -> Readiness {
    let (store, queue, guard) = (state.clone(), state.clone(), state.clone());
    Readiness::new()
        .with_check("store", move || {
            let state = store.clone();
            Box::pin(async move { state.store.ping().await.map_err(|error| error.to_string()) })
        })
        .with_check("queue", move || {
            let state = queue.clone();
            Box::pin(async move { state.queue.depth().await.map(|_| ()).map_err(|error| error.to_string()) })
        })
        .with_check("guard", move || {
            let state = guard.clone();
            Box::pin(async move { state.guard.ping().await.map_err(|error| error.to_string()) })
        })
}

/// Creates `demo`/`demo123` and `admin`/`admin123` unless they exist (development only: the
/// configuration refuses demo users in production). These passwords are below the policy on
/// purpose, for local trials only.
pub async fn create_demo_users(state: &AppState) -> anyhow::Result<()> {
    for (name, password, role) in [("demo", "demo123", Role::User), ("admin", "admin123", Role::Admin)] {
        if state.store.user_by_name(name).await?.is_some() {
            continue;
        }
        let user = new_user(
            name.to_owned(),
            format!("{name}@example.com"),
            state.hasher.hash(password.to_owned()).await?,
            role,
        );
        state.store.create_user(&user).await?;
        tracing::warn!(user = name, "demo user created (development mode)");
    }
    Ok(())
}

fn new_user(username: String, email: String, password_hash: String, role: Role) -> User {
    User {
        id: UserId::new(),
        username,
        email,
        password_hash,
        role,
        disabled: false,
        tokens_valid_after: Utc::now(),
        created_at: Utc::now(),
        preferences: Default::default(),
    }
}

/// Options of `api-server create-admin`.
#[derive(Debug, clap::Args)]
pub struct CreateAdminArgs {
    /// User name of the administrator.
    #[arg(long)]
    pub username: String,
    /// Email of the administrator.
    #[arg(long)]
    pub email: String,
    /// The password; read from the first line of standard input when not set.
    #[arg(long, env = env::ADMIN_PASSWORD, hide_env_values = true)]
    pub password: Option<String>,
    /// Where accounts are stored.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Creates an administrator directly in the store, for the first sign-in.
pub async fn create_admin(args: CreateAdminArgs) -> anyhow::Result<()> {
    let username = normalize_username(&args.username).map_err(|error| anyhow::anyhow!("{error}"))?;
    let email = normalize_email(&args.email).map_err(|error| anyhow::anyhow!("{error}"))?;
    let password = match args.password {
        Some(password) => password,
        None => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    password::check_policy(&password, &username)?;
    let store = open_store(&args.store).await?;
    let hash = Hasher::new(HashParams::default())?.hash(password).await?;
    let user = new_user(username, email, hash, Role::Admin);
    match store.create_user(&user).await {
        Ok(()) => {
            println!("created administrator {} ({})", user.username, user.id);
            Ok(())
        }
        Err(StoreError::Conflict(_)) => anyhow::bail!("the user name or the email is already taken"),
        Err(error) => Err(error.into()),
    }
}
