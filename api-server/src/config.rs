//! Configuration of the API server, from flags or the environment, checked once at start.
//!
//! [`ServeArgs`] is what the operator writes (every field has a flag and an environment variable);
//! [`Settings::from_args`] validates it into what the server runs on. Production (`APP_ENV=production`)
//! refuses to start without a JWT key of at least 256 bits or with the demo users enabled.

use finagent_core::names::env;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use finagent_platform::image_input::ImageLimits;
use ipnet::IpNet;

use crate::limits::rate::{Limit, RouteClass};

/// Where the server runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Environment {
    /// A developer's machine: a generated JWT key is allowed, demo users may be created.
    Development,
    /// Anywhere else: every secret must be configured.
    Production,
}

/// Options of `api-server serve`.
#[derive(Clone, Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = env::LISTEN_ADDR, default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,
    /// `development` or `production`.
    #[arg(long, env = env::APP_ENV, value_enum, default_value = "development")]
    pub app_env: Environment,
    /// The HS256 key signing tokens, at least 32 bytes. Required in production; in development a
    /// random key is generated when it is missing (tokens then do not survive a restart).
    #[arg(long, env = env::JWT_SECRET_KEY, hide_env_values = true)]
    pub jwt_secret_key: Option<String>,
    /// Keys that signed before the current one, comma-separated, each at least 32 bytes: tokens,
    /// device and CSRF tokens and sealed webhook secrets of these keys stay valid, and nothing new
    /// is signed with them. Keep a key here for the refresh-token lifetime after a rotation.
    #[arg(long, env = env::JWT_PREVIOUS_KEYS, hide_env_values = true, value_delimiter = ',')]
    pub jwt_previous_keys: Vec<String>,
    /// The signing algorithm; only `HS256` is supported (the name is accepted for compatibility).
    #[arg(long, env = env::JWT_ALGORITHM, default_value = "HS256")]
    pub jwt_algorithm: String,
    /// Lifetime of access tokens, in minutes (1 to 15).
    #[arg(long, env = env::JWT_EXPIRE_MINUTES, default_value_t = 15)]
    pub jwt_expire_minutes: u32,
    /// Lifetime of a refresh-token family, in days.
    #[arg(long, env = env::REFRESH_EXPIRE_DAYS, default_value_t = 14)]
    pub refresh_expire_days: u32,
    /// The `iss` claim of tokens issued and accepted.
    #[arg(long, env = env::JWT_ISSUER, default_value = "financial-agent")]
    pub jwt_issuer: String,
    /// The `aud` claim of tokens issued and accepted.
    #[arg(long, env = env::JWT_AUDIENCE, default_value = "financial-agent-api")]
    pub jwt_audience: String,
    /// Where accounts and receipts are stored.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Redis URL for revocations and rate limits; without it they are kept in process (one replica).
    #[arg(long, env = env::REDIS_URL, hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Name of this platform instance; prefixes every Redis key.
    #[arg(long, env = env::FINAGENT_INSTANCE, default_value = "local")]
    pub instance: String,
    /// OCR threads run inside this process. Default: one per CPU when there is no `REDIS_URL`
    /// (the all-in-one mode), none otherwise (separate `ocr-worker` processes do the OCR).
    #[arg(long, env = env::OCR_WORKERS)]
    pub ocr_workers: Option<usize>,
    /// Time limit of one image's OCR in the in-process workers, in seconds.
    #[arg(long, env = env::OCR_TIMEOUT, default_value_t = 60)]
    pub ocr_timeout: u64,
    /// Largest upload, in bytes.
    #[arg(long, env = env::MAX_UPLOAD_SIZE, default_value_t = finagent_core::names::uploads::MAX_BYTES)]
    pub max_upload_size: usize,
    /// Uploads this process receives at once (each may hold `MAX_UPLOAD_SIZE` in memory); more get
    /// 503 with `Retry-After`. Default: as many as half the memory limit holds, at most 16.
    #[arg(long, env = env::MAX_CONCURRENT_UPLOADS)]
    pub max_concurrent_uploads: Option<usize>,
    /// Password hashes computed at once (each takes 19 MiB). Default: twice the CPUs, but no more
    /// than a quarter of the memory limit holds.
    #[arg(long, env = env::PASSWORD_HASHES_AT_ONCE)]
    pub password_hashes_at_once: Option<usize>,
    /// The memory this process may use, in bytes (the operator passes the container's limit); the
    /// two budgets above follow it. Default: the cgroup's limit, else 512 MiB.
    #[arg(long, env = env::MEMORY_LIMIT_BYTES)]
    pub memory_limit_bytes: Option<u64>,
    /// Slowest upload accepted, in bytes per second after its first 5 seconds; slower ones get 408.
    #[arg(long, env = env::UPLOAD_MIN_BYTES_PER_SECOND, default_value_t = 32 * 1024)]
    pub upload_min_bytes_per_second: u64,
    /// Requests per second per client on ordinary API routes.
    #[arg(long, env = env::RATE_LIMIT_API_PER_SECOND, default_value_t = 10.0)]
    pub rate_limit_api_per_second: f64,
    /// Requests a client may send at once on ordinary API routes, above the steady rate.
    #[arg(long, env = env::RATE_LIMIT_API_BURST, default_value_t = 20)]
    pub rate_limit_api_burst: u32,
    /// Uploads per second per client.
    #[arg(long, env = env::RATE_LIMIT_UPLOAD_PER_SECOND, default_value_t = 2.0)]
    pub rate_limit_upload_per_second: f64,
    /// Uploads a client may send at once.
    #[arg(long, env = env::RATE_LIMIT_UPLOAD_BURST, default_value_t = 4)]
    pub rate_limit_upload_burst: u32,
    /// Login attempts per minute per account and client address (also registrations per address).
    #[arg(long, env = env::RATE_LIMIT_LOGIN_PER_MINUTE, default_value_t = 5.0)]
    pub rate_limit_login_per_minute: f64,
    /// Requests per second per client address, on every route, before credentials are checked.
    #[arg(long, env = env::RATE_LIMIT_ADDRESS_PER_SECOND, default_value_t = 100.0)]
    pub rate_limit_address_per_second: f64,
    /// Requests a client address may send at once above its steady rate.
    #[arg(long, env = env::RATE_LIMIT_ADDRESS_BURST, default_value_t = 200)]
    pub rate_limit_address_burst: u32,
    /// Login attempts per minute per client address, whatever the account (password spraying).
    #[arg(long, env = env::RATE_LIMIT_LOGIN_PER_ADDRESS_PER_MINUTE, default_value_t = 30.0)]
    pub rate_limit_login_per_address_per_minute: f64,
    /// Proxies (addresses or CIDR ranges, comma-separated) whose `X-Forwarded-For` is believed.
    #[arg(long, env = env::TRUSTED_PROXIES, value_delimiter = ',')]
    pub trusted_proxies: Vec<IpNet>,
    /// Origins allowed to call the API from a browser (comma-separated); none by default.
    #[arg(long, env = env::CORS_ALLOWED_ORIGINS, value_delimiter = ',')]
    pub cors_allowed_origins: Vec<String>,
    /// Longest time a request may take, in seconds, uploads included.
    #[arg(long, env = env::REQUEST_TIMEOUT_SECONDS, default_value_t = 60)]
    pub request_timeout_seconds: u64,
    /// Longest time a client may take to send a request's head, in seconds; slower connections
    /// are closed.
    #[arg(long, env = env::HEADER_READ_TIMEOUT_SECONDS, default_value_t = 10)]
    pub header_read_timeout_seconds: u64,
    /// Largest request body of the JSON routes, in bytes.
    #[arg(long, env = env::MAX_JSON_BODY, default_value_t = 64 * 1024)]
    pub max_json_body: usize,
    /// Creates the demo users `demo`/`demo123` and `admin`/`admin123` (development only).
    #[arg(long, env = env::DEMO_USERS, default_value_t = false)]
    pub demo_users: bool,
    /// Receipts one user may store; uploads past it get 422 (`quota_exceeded`).
    #[arg(long, env = env::QUOTA_MAX_RECEIPTS, default_value_t = 200_000)]
    pub quota_max_receipts: u64,
    /// Bytes of images one user may store.
    #[arg(long, env = env::QUOTA_MAX_IMAGE_BYTES, default_value_t = 20 * 1024 * 1024 * 1024)]
    pub quota_max_image_bytes: u64,
    /// Who may create an account: `open` (anyone), `invite` (with an administrator's invite code)
    /// or `closed` (administrators create accounts).
    #[arg(long, env = env::REGISTRATION, value_enum, default_value = "open")]
    pub registration: Registration,
    /// Bytes of images every user together may store (the instance's disk budget); uploads past
    /// it get 507 (`storage-full`). Unset: no instance-wide limit.
    #[arg(long, env = env::STORAGE_LIMIT_BYTES)]
    pub storage_limit_bytes: Option<u64>,
    /// Uploads one user may send at once (1 to 8); more get 429.
    #[arg(long, env = env::UPLOADS_PER_USER_AT_ONCE, default_value_t = 2)]
    pub uploads_per_user_at_once: usize,
    /// Rows one CSV export may have; a larger export is refused and asks for a narrower range.
    #[arg(long, env = env::EXPORT_MAX_ROWS, default_value_t = 100_000)]
    pub export_max_rows: u64,
    /// Lets webhooks target loopback and private addresses (receivers on a private network); off
    /// by default, against server-side request forgery. Link-local addresses, where cloud
    /// metadata services answer, stay refused.
    #[arg(long, env = env::WEBHOOK_ALLOW_PRIVATE_TARGETS, default_value_t = false)]
    pub webhook_allow_private_targets: bool,
    /// Seconds before a failed webhook delivery is retried the first time (4× longer each time
    /// after, 8 attempts in all).
    #[arg(long, env = env::WEBHOOK_RETRY_BASE_SECONDS, default_value_t = 30)]
    pub webhook_retry_base_seconds: u64,
    /// An address for the admin endpoints (`/metrics`, `/healthz`, and `/readyz` with each failing
    /// check's reason); the API port's `/readyz` names checks without reasons. With it, the API
    /// port serves no `/metrics`; without it, only to clients on this machine.
    #[arg(long, env = env::ADMIN_LISTEN)]
    pub admin_listen: Option<SocketAddr>,
    /// When the web app's cookies carry `Secure`: `auto` (when the request reached a trusted proxy
    /// over HTTPS, by its `X-Forwarded-Proto`), `always` or `never`.
    #[arg(long, env = env::SECURE_COOKIES, value_enum, default_value_t = SecureCookies::Auto)]
    pub secure_cookies: SecureCookies,
}

/// Who may create an account.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    /// Anyone may register.
    #[default]
    Open,
    /// Only with an invite code an administrator made (`POST /api/admin/invites`).
    Invite,
    /// Nobody registers; administrators create accounts (`POST /api/admin/users`).
    Closed,
}

/// When the web app's cookies carry `Secure`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SecureCookies {
    /// When the request came over HTTPS through a trusted proxy.
    Auto,
    /// Always (the app is only ever served over HTTPS).
    Always,
    /// Never (plain HTTP on a private network).
    Never,
}

/// The store options, shared by `serve` and `create-admin`.
#[derive(Clone, Debug, clap::Args)]
pub struct StoreArgs {
    /// MongoDB connection string; without it the embedded SQLite store under `--data-dir` is used.
    #[arg(long, env = env::MONGODB_URL, hide_env_values = true)]
    pub mongodb_url: Option<String>,
    /// MongoDB database name.
    #[arg(long, env = env::MONGODB_DB_NAME, default_value = env::DEFAULT_MONGODB_DB_NAME)]
    pub mongodb_db_name: String,
    /// Folder of the embedded store (SQLite file and images).
    #[arg(long, env = env::DATA_DIR, default_value = "data")]
    pub data_dir: PathBuf,
}

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Production without a signing key.
    #[error("JWT_SECRET_KEY is required when APP_ENV=production")]
    MissingJwtKey,
    /// A key too short for HS256.
    #[error("JWT_SECRET_KEY must be at least 32 bytes (256 bits), got {0}")]
    ShortJwtKey(usize),
    /// Demo users in production.
    #[error("DEMO_USERS cannot be enabled when APP_ENV=production")]
    DemoUsersInProduction,
    /// A setting outside what it allows.
    #[error("{setting} must be {allowed}")]
    OutOfRange {
        /// The setting (its environment variable).
        setting: &'static str,
        /// What it allows, e.g. `between 1 and 15`.
        allowed: &'static str,
    },
    /// A previous signing key too short for HS256.
    #[error("JWT_PREVIOUS_KEYS: every key must be at least 32 bytes, one has {0}")]
    ShortPreviousKey(usize),
    /// A signing algorithm other than HS256.
    #[error("JWT_ALGORITHM={0} is not supported: tokens are signed with HS256 only")]
    UnsupportedAlgorithm(String),
}

/// Validated settings the server runs on.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Where the server runs.
    pub environment: Environment,
    /// HS256 key.
    pub jwt_key: Vec<u8>,
    /// Keys of earlier rotations, which still verify but no longer sign.
    pub jwt_previous_keys: Vec<Vec<u8>>,
    /// Access-token lifetime.
    pub access_ttl: Duration,
    /// Refresh-family lifetime.
    pub refresh_ttl: Duration,
    /// `iss`.
    pub issuer: String,
    /// `aud`.
    pub audience: String,
    /// Limits by route class.
    pub limits: Limits,
    pub trusted_proxies: Vec<IpNet>,
    /// Browser origins allowed by CORS.
    pub cors_allowed_origins: Vec<String>,
    pub request_timeout: Duration,
    /// Body limit of JSON routes.
    pub max_json_body: usize,
    /// Whether to create the demo users.
    pub demo_users: bool,
    /// Limits of uploaded images.
    pub image_limits: ImageLimits,
    /// Uploads received at once.
    /// The memory budget the upload and password-hash limits are computed from, in bytes.
    pub memory_limit: u64,
    pub max_concurrent_uploads: usize,
    /// Password hashes at once, when configured.
    pub password_hashes_at_once: Option<usize>,
    /// Slowest upload accepted, in bytes per second.
    pub upload_min_bytes_per_second: u64,
    /// When cookies are `Secure`.
    pub secure_cookies: SecureCookies,
    /// What one user may store and upload at once.
    pub quota: Quota,
    /// Who may create an account.
    pub registration: Registration,
    /// Whether the API port answers `/metrics` (to local clients only): when there is no admin
    /// listener to serve it.
    pub metrics_on_api_port: bool,
    /// Rows of one CSV export.
    pub export_max_rows: u64,
    /// How webhooks are sent.
    pub webhooks: WebhookSettings,
}

/// What one user may store, and upload at once; and what every user together may store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    /// Receipts stored.
    pub max_receipts: u64,
    /// Bytes of stored images.
    pub max_image_bytes: u64,
    /// Uploads received at once.
    pub uploads_at_once: usize,
    /// Bytes of stored images of every user together (`None`: no limit).
    pub instance_max_image_bytes: Option<u64>,
}

impl Default for Quota {
    fn default() -> Self {
        Self {
            max_receipts: 200_000,
            max_image_bytes: 20 * 1024 * 1024 * 1024,
            uploads_at_once: 2,
            instance_max_image_bytes: None,
        }
    }
}

impl Quota {
    /// The limits the store checks with each insert.
    pub fn storage_limits(&self) -> finagent_platform::store::StorageLimits {
        finagent_platform::store::StorageLimits {
            owner_receipts: self.max_receipts,
            owner_image_bytes: self.max_image_bytes,
            instance_image_bytes: self.instance_max_image_bytes.unwrap_or(u64::MAX),
        }
    }
}

/// Rate limits by route class.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Ordinary API routes, per user (or per address when anonymous).
    pub api: Limit,
    /// Uploads, per user.
    pub upload: Limit,
    /// Logins per account and address; registrations per address.
    pub login: Limit,
    /// Logins per address across every account (against password spraying).
    pub login_address: Limit,
    /// Every request per client address, checked before anything else (before credentials are
    /// looked up); far above what one person or a NAT of them sends.
    pub address: Limit,
}

impl Limits {
    /// The limit of a class.
    pub fn of(&self, class: RouteClass) -> Limit {
        match class {
            RouteClass::Api => self.api,
            RouteClass::Upload => self.upload,
            RouteClass::Login => self.login,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            api: Limit::per_second(10.0, 20),
            upload: Limit::per_second(2.0, 4),
            login: Limit::per_second(5.0 / 60.0, 5),
            login_address: Limit::per_second(30.0 / 60.0, 30),
            address: Limit::per_second(100.0, 200),
        }
    }
}

impl Settings {
    /// Validates the arguments.
    pub fn from_args(args: &ServeArgs) -> Result<Self, ConfigError> {
        let production = args.app_env == Environment::Production;
        let jwt_key = match (&args.jwt_secret_key, production) {
            (Some(key), _) if key.len() < 32 => return Err(ConfigError::ShortJwtKey(key.len())),
            (Some(key), _) => key.as_bytes().to_vec(),
            (None, true) => return Err(ConfigError::MissingJwtKey),
            (None, false) => {
                tracing::warn!("JWT_SECRET_KEY is not set: using a random key; tokens will not survive a restart");
                crate::auth::secrets::random_bytes::<32>().to_vec()
            }
        };
        let mut jwt_previous_keys = Vec::new();
        for key in args.jwt_previous_keys.iter().map(|key| key.trim()).filter(|key| !key.is_empty()) {
            if key.len() < 32 {
                return Err(ConfigError::ShortPreviousKey(key.len()));
            }
            jwt_previous_keys.push(key.as_bytes().to_vec());
        }
        if args.jwt_algorithm != "HS256" {
            return Err(ConfigError::UnsupportedAlgorithm(args.jwt_algorithm.clone()));
        }
        if production && args.demo_users {
            return Err(ConfigError::DemoUsersInProduction);
        }
        if !(1..=15).contains(&args.jwt_expire_minutes) {
            return Err(ConfigError::OutOfRange { setting: env::JWT_EXPIRE_MINUTES, allowed: "between 1 and 15" });
        }
        if args.refresh_expire_days == 0 || args.refresh_expire_days > 90 {
            return Err(ConfigError::OutOfRange { setting: env::REFRESH_EXPIRE_DAYS, allowed: "between 1 and 90" });
        }
        let limit = |setting: &'static str, rate: f64, burst: u32| {
            if rate.is_finite() && rate > 0.0 && burst > 0 {
                Ok(Limit::per_second(rate, burst))
            } else {
                Err(ConfigError::OutOfRange { setting, allowed: "positive, with a positive burst" })
            }
        };
        let login_burst = args.rate_limit_login_per_minute.ceil().max(1.0) as u32;
        let memory_limit = crate::limits::memory::memory_limit(args.memory_limit_bytes);
        Ok(Self {
            environment: args.app_env,
            jwt_key,
            jwt_previous_keys,
            access_ttl: Duration::from_secs(u64::from(args.jwt_expire_minutes) * 60),
            refresh_ttl: Duration::from_secs(u64::from(args.refresh_expire_days) * 86_400),
            issuer: args.jwt_issuer.clone(),
            audience: args.jwt_audience.clone(),
            limits: Limits {
                api: limit(env::RATE_LIMIT_API_PER_SECOND, args.rate_limit_api_per_second, args.rate_limit_api_burst)?,
                upload: limit(
                    env::RATE_LIMIT_UPLOAD_PER_SECOND,
                    args.rate_limit_upload_per_second,
                    args.rate_limit_upload_burst,
                )?,
                login: limit(env::RATE_LIMIT_LOGIN_PER_MINUTE, args.rate_limit_login_per_minute / 60.0, login_burst)?,
                address: limit(
                    env::RATE_LIMIT_ADDRESS_PER_SECOND,
                    args.rate_limit_address_per_second,
                    args.rate_limit_address_burst,
                )?,
                login_address: limit(
                    env::RATE_LIMIT_LOGIN_PER_ADDRESS_PER_MINUTE,
                    args.rate_limit_login_per_address_per_minute / 60.0,
                    args.rate_limit_login_per_address_per_minute.ceil().max(1.0) as u32,
                )?,
            },
            trusted_proxies: args.trusted_proxies.clone(),
            cors_allowed_origins: args.cors_allowed_origins.clone(),
            request_timeout: Duration::from_secs(args.request_timeout_seconds.max(1)),
            max_json_body: args.max_json_body,
            demo_users: args.demo_users,
            image_limits: ImageLimits { max_bytes: args.max_upload_size, ..ImageLimits::default() },
            memory_limit,
            max_concurrent_uploads: args
                .max_concurrent_uploads
                .unwrap_or_else(|| crate::limits::memory::upload_slots(memory_limit, args.max_upload_size))
                .max(1),
            password_hashes_at_once: args.password_hashes_at_once.map(|slots| slots.max(1)),
            upload_min_bytes_per_second: args.upload_min_bytes_per_second,
            secure_cookies: args.secure_cookies,
            quota: Quota {
                max_receipts: args.quota_max_receipts,
                max_image_bytes: args.quota_max_image_bytes,
                uploads_at_once: match args.uploads_per_user_at_once {
                    at_once @ 1..=8 => at_once,
                    _ => {
                        return Err(ConfigError::OutOfRange {
                            setting: env::UPLOADS_PER_USER_AT_ONCE,
                            allowed: "between 1 and 8",
                        });
                    }
                },
                instance_max_image_bytes: args.storage_limit_bytes,
            },
            registration: args.registration,
            metrics_on_api_port: args.admin_listen.is_none(),
            export_max_rows: args.export_max_rows.max(1),
            webhooks: WebhookSettings {
                allow_private_targets: args.webhook_allow_private_targets,
                retry_base: Duration::from_secs(args.webhook_retry_base_seconds.max(1)),
                ..Default::default()
            },
        })
    }

    /// Settings for tests and benchmarks: development, a fixed key, default limits.
    pub fn for_tests() -> Self {
        Self {
            environment: Environment::Development,
            jwt_key: b"test-key-of-at-least-thirty-two-bytes!!".to_vec(),
            jwt_previous_keys: Vec::new(),
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(14 * 86_400),
            issuer: "financial-agent".into(),
            audience: "financial-agent-api".into(),
            limits: Limits::default(),
            trusted_proxies: Vec::new(),
            cors_allowed_origins: Vec::new(),
            request_timeout: Duration::from_secs(60),
            max_json_body: 64 * 1024,
            demo_users: false,
            image_limits: ImageLimits::default(),
            memory_limit: crate::limits::memory::DEFAULT_LIMIT,
            max_concurrent_uploads: 16,
            password_hashes_at_once: None,
            upload_min_bytes_per_second: 32 * 1024,
            secure_cookies: SecureCookies::Auto,
            quota: Quota::default(),
            registration: Registration::Open,
            metrics_on_api_port: true,
            export_max_rows: 100_000,
            webhooks: WebhookSettings::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Probe {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn parse(arguments: &[&str]) -> ServeArgs {
        Probe::try_parse_from(std::iter::once("probe").chain(arguments.iter().copied())).expect("arguments").args
    }

    #[test]
    fn production_refuses_to_start_without_a_jwt_key() {
        let error = Settings::from_args(&parse(&["--app-env", "production"])).expect_err("refused");
        assert!(matches!(error, ConfigError::MissingJwtKey), "{error}");
    }

    #[test]
    fn a_key_shorter_than_256_bits_is_refused_everywhere() {
        for env in ["production", "development"] {
            let error = Settings::from_args(&parse(&["--app-env", env, "--jwt-secret-key", "short"])).expect_err(env);
            assert!(matches!(error, ConfigError::ShortJwtKey(5)), "{error}");
        }
    }

    #[test]
    fn production_refuses_demo_users() {
        let key = "k".repeat(32);
        let error = Settings::from_args(&parse(&["--app-env", "production", "--jwt-secret-key", &key, "--demo-users"]))
            .expect_err("refused");
        assert!(matches!(error, ConfigError::DemoUsersInProduction), "{error}");
    }

    #[test]
    fn only_hs256_is_accepted() {
        let error = Settings::from_args(&parse(&["--jwt-algorithm", "none"])).expect_err("refused");
        assert!(error.to_string().contains("HS256 only"), "{error}");
    }

    #[test]
    fn access_tokens_cannot_outlive_fifteen_minutes() {
        let error = Settings::from_args(&parse(&["--jwt-expire-minutes", "60"])).expect_err("refused");
        assert!(error.to_string().contains("between 1 and 15"), "{error}");
    }

    #[test]
    fn development_without_a_key_generates_one_and_keeps_the_default_limits() {
        let settings = Settings::from_args(&parse(&[])).expect("development starts");
        assert_eq!(settings.jwt_key.len(), 32);
        assert_eq!(settings.limits, Limits::default());
        assert_eq!(settings.access_ttl, Duration::from_secs(900));
    }
}

/// How the platform sends webhooks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Whether targets may be loopback or private addresses (a private network's receivers, and
    /// tests); link-local addresses stay refused.
    pub allow_private_targets: bool,
    /// The wait before the first retry (then 4× each time).
    pub retry_base: Duration,
    /// How long a receiver may take to answer.
    pub timeout: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self { allow_private_targets: false, retry_base: Duration::from_secs(30), timeout: Duration::from_secs(10) }
    }
}
