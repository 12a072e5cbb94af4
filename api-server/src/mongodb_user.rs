//! `api-server mongodb-user`: makes sure the MongoDB user the platform connects as exists, with
//! `readWrite` on the platform's database and the password it is given. The operator runs it as
//! the API pod's init container, the one place that holds the root credentials.

use std::time::{Duration, Instant};

use finagent_core::names::env;
use finagent_platform::store::mongo_user::{UserEnsured, ensure_user};

/// Arguments of `api-server mongodb-user`.
#[derive(Debug, clap::Args)]
pub struct MongodbUserArgs {
    /// The root user's connection URL.
    #[arg(long, env = env::MONGODB_ROOT_URL, hide_env_values = true)]
    pub root_url: String,
    /// The user to make sure of.
    #[arg(long, env = env::MONGODB_APP_USERNAME)]
    pub username: String,
    /// Its password.
    #[arg(long, env = env::MONGODB_APP_PASSWORD, hide_env_values = true)]
    pub password: String,
    /// The database it may read and write.
    #[arg(long, env = env::MONGODB_DB_NAME, default_value = env::DEFAULT_MONGODB_DB_NAME)]
    pub database: String,
    /// How long to keep trying while MongoDB is not reachable yet (it may start with the pod).
    #[arg(long, default_value_t = 300)]
    pub wait_seconds: u64,
}

/// Runs the command: tries every 2 s until it succeeds or the wait is over.
pub async fn run(args: MongodbUserArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        match ensure_user(&args.root_url, &args.username, &args.password, &args.database).await {
            Ok(outcome) => {
                match outcome {
                    UserEnsured::CreatedWithoutRoles => tracing::warn!(
                        user = %args.username,
                        "created the MongoDB user without roles: this server does not implement them (nor enforce any)"
                    ),
                    outcome => {
                        tracing::info!(user = %args.username, database = %args.database, ?outcome, "MongoDB user ready")
                    }
                }
                return Ok(());
            }
            Err(error) if started.elapsed() < Duration::from_secs(args.wait_seconds) => {
                tracing::info!(%error, "MongoDB not ready for the user yet; trying again in 2 s");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(error) => anyhow::bail!("could not make sure of the MongoDB user {}: {error}", args.username),
        }
    }
}
