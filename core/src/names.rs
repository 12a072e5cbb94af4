//! Names the operator and the services must agree on: labels, components, ports, environment
//! variables, metric names and the instance name that scopes every Redis key.

use std::fmt;
use std::str::FromStr;

/// API group of the `FinancialAgent` custom resource.
pub const API_GROUP: &str = "finagent.io";
/// Field manager used for every server-side apply by the operator.
pub const FIELD_MANAGER: &str = "finagent-operator";

/// Kubernetes recommended labels, as used on every child object.
pub mod labels {
    /// `app.kubernetes.io/name`: always [`APP_NAME`].
    pub const NAME: &str = "app.kubernetes.io/name";
    /// `app.kubernetes.io/instance`: the `FinancialAgent` resource's name.
    pub const INSTANCE: &str = "app.kubernetes.io/instance";
    /// `app.kubernetes.io/component`: one of [`super::Component`].
    pub const COMPONENT: &str = "app.kubernetes.io/component";
    /// `app.kubernetes.io/managed-by`: always [`MANAGED_BY`].
    pub const MANAGED_BY_KEY: &str = "app.kubernetes.io/managed-by";
    /// `app.kubernetes.io/version`.
    pub const VERSION: &str = "app.kubernetes.io/version";
    /// `app.kubernetes.io/part-of`: always [`APP_NAME`].
    pub const PART_OF: &str = "app.kubernetes.io/part-of";
    /// The application name.
    pub const APP_NAME: &str = "financial-agent";
    /// The manager of every child object.
    pub const MANAGED_BY: &str = "finagent-operator";
    /// `finagent.io/role`: [`OPERATOR_ROLE`] on the operator's pods (set by the Helm chart), which
    /// the datastore NetworkPolicies let in so the operator can read the queue depth.
    pub const ROLE: &str = "finagent.io/role";
    /// The operator's value of [`ROLE`].
    pub const OPERATOR_ROLE: &str = "operator";
}

/// The components of one platform instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Component {
    /// The REST API.
    ApiServer,
    /// The OCR workers.
    OcrWorker,
    /// Redis (queue, rate limits, token denylist).
    Redis,
    /// MongoDB (documents and image blobs).
    Mongodb,
    Prometheus,
}

impl Component {
    /// Every component.
    pub const ALL: [Component; 5] = [Self::ApiServer, Self::OcrWorker, Self::Redis, Self::Mongodb, Self::Prometheus];

    /// The component's name, used in labels and as the suffix of its objects' names.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::ApiServer => "api-server",
            Self::OcrWorker => "ocr-worker",
            Self::Redis => "redis",
            Self::Mongodb => "mongodb",
            Self::Prometheus => "prometheus",
        }
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Ports every deployment of the services agrees on.
pub mod ports {
    /// The API's HTTP port (also the all-in-one default).
    pub const API_HTTP: u16 = 8000;
    /// The admin port (`/metrics`, `/healthz`, `/readyz`) of the workers and the operator.
    pub const ADMIN: u16 = 9090;
    pub const REDIS: u16 = 6379;
    pub const MONGODB: u16 = 27017;
    pub const PROMETHEUS: u16 = 9091;
}

/// The size of an upload, agreed between the API (which enforces it) and the edge in front of it
/// (which must let it through, so that the API's own answer reaches the client).
pub mod uploads {
    /// One mebibyte, the unit in which the limit is configured and shown.
    pub const MIB: usize = 1024 * 1024;
    /// The default largest image or PDF (`MAX_UPLOAD_SIZE`), 25 MiB.
    pub const MAX_BYTES: usize = 25 * MIB;
    /// Room for the multipart form around the file: the API's body limit is `MAX_UPLOAD_SIZE` plus this.
    pub const FORM_ALLOWANCE: usize = 64 * 1024;

    /// The largest request body of an upload of at most `max_bytes`.
    pub const fn body_limit(max_bytes: usize) -> usize {
        max_bytes.saturating_add(FORM_ALLOWANCE)
    }

    /// The body size a proxy in front of the API must let through for uploads of at most
    /// `max_bytes`: the API's body limit rounded up to whole MiB, so that a larger upload reaches
    /// the API and gets its own answer.
    pub const fn proxy_body_mib(max_bytes: usize) -> usize {
        body_limit(max_bytes).div_ceil(MIB)
    }

    /// The limit as people read it: `25 MiB`, `512 KiB`, or bytes when neither divides it.
    pub fn describe(max_bytes: usize) -> String {
        const KIB: usize = 1024;
        match max_bytes {
            0 => "0 bytes".to_owned(),
            bytes if bytes % MIB == 0 => format!("{} MiB", bytes / MIB),
            bytes if bytes % KIB == 0 => format!("{} KiB", bytes / KIB),
            bytes => format!("{bytes} bytes"),
        }
    }
}

/// Environment variables: every one a binary reads (through its `clap` arguments) or the operator
/// sets. The operator writes only names from here, and a test checks that each one it writes is
/// read by the binary it runs (`operator/tests/env_contract.rs`).
pub mod env {
    // Read by more than one binary.
    /// `ADMIN_LISTEN`: An address for the admin endpoints (`/metrics`, `/healthz`, and `/readyz` with each
    /// failing check's reason); the API port's `/readyz` names checks without reasons.
    pub const ADMIN_LISTEN: &str = "ADMIN_LISTEN";
    /// `FINAGENT_INSTANCE`: Name of this platform instance; prefixes every Redis key.
    pub const FINAGENT_INSTANCE: &str = "FINAGENT_INSTANCE";
    /// `MONGODB_DB_NAME`: MongoDB database name.
    pub const MONGODB_DB_NAME: &str = "MONGODB_DB_NAME";
    /// `MONGODB_URL`: MongoDB connection string; without it the embedded SQLite store under `--data-dir` is
    /// used.
    pub const MONGODB_URL: &str = "MONGODB_URL";
    /// `OCR_TIMEOUT`: Time limit of one image's OCR in the in-process workers, in seconds.
    pub const OCR_TIMEOUT: &str = "OCR_TIMEOUT";
    /// `REDIS_URL`: Redis URL for revocations and rate limits; without it they are kept in process (one
    /// replica).
    pub const REDIS_URL: &str = "REDIS_URL";

    // Read by the API server.
    /// `ADMIN_PASSWORD`: The new administrator's password (`api-server create-admin`); read from the first
    /// line of standard input when not set.
    pub const ADMIN_PASSWORD: &str = "ADMIN_PASSWORD";
    /// `APP_ENV`: `development` or `production`.
    pub const APP_ENV: &str = "APP_ENV";
    /// `CORS_ALLOWED_ORIGINS`: Origins allowed to call the API from a browser (comma-separated); none by
    /// default.
    pub const CORS_ALLOWED_ORIGINS: &str = "CORS_ALLOWED_ORIGINS";
    /// `DATA_DIR`: Folder of the embedded store (SQLite file and images).
    pub const DATA_DIR: &str = "DATA_DIR";
    /// `DEMO_USERS`: Creates the demo users `demo`/`demo123` and `admin`/`admin123` (development only).
    pub const DEMO_USERS: &str = "DEMO_USERS";
    /// `EXPORT_MAX_ROWS`: Rows one CSV export may have; a larger export is refused and asks for a narrower
    /// range.
    pub const EXPORT_MAX_ROWS: &str = "EXPORT_MAX_ROWS";
    /// `HEADER_READ_TIMEOUT_SECONDS`: Longest time a client may take to send a request's head, in seconds;
    /// slower connections are closed.
    pub const HEADER_READ_TIMEOUT_SECONDS: &str = "HEADER_READ_TIMEOUT_SECONDS";
    /// `JWT_ALGORITHM`: The signing algorithm; only `HS256` is supported (the name is accepted for
    /// compatibility).
    pub const JWT_ALGORITHM: &str = "JWT_ALGORITHM";
    /// `JWT_AUDIENCE`: The `aud` claim of tokens issued and accepted.
    pub const JWT_AUDIENCE: &str = "JWT_AUDIENCE";
    /// `JWT_EXPIRE_MINUTES`: Lifetime of access tokens, in minutes (1 to 15).
    pub const JWT_EXPIRE_MINUTES: &str = "JWT_EXPIRE_MINUTES";
    /// `JWT_ISSUER`: The `iss` claim of tokens issued and accepted.
    pub const JWT_ISSUER: &str = "JWT_ISSUER";
    /// `JWT_PREVIOUS_KEYS`: Keys that signed before the current one, comma-separated, each at least 32 bytes:
    /// tokens, device and CSRF tokens and sealed webhook secrets of these keys stay valid, and nothing new is
    /// signed with them.
    pub const JWT_PREVIOUS_KEYS: &str = "JWT_PREVIOUS_KEYS";
    /// `JWT_SECRET_KEY`: The HS256 key signing tokens, at least 32 bytes. Required in production; in
    /// development a random key is generated when it is missing (tokens then do not survive a restart).
    pub const JWT_SECRET_KEY: &str = "JWT_SECRET_KEY";
    /// `LISTEN_ADDR`: Address to listen on.
    pub const LISTEN_ADDR: &str = "LISTEN_ADDR";
    /// `MAX_CONCURRENT_UPLOADS`: Uploads this process receives at once (each may hold `MAX_UPLOAD_SIZE` in
    /// memory); more get 503 with `Retry-After`. Default: as many as half the memory limit holds, at most 16.
    pub const MAX_CONCURRENT_UPLOADS: &str = "MAX_CONCURRENT_UPLOADS";
    /// `MAX_JSON_BODY`: Largest request body of the JSON routes, in bytes.
    pub const MAX_JSON_BODY: &str = "MAX_JSON_BODY";
    /// `MAX_UPLOAD_SIZE`: Largest upload, in bytes.
    pub const MAX_UPLOAD_SIZE: &str = "MAX_UPLOAD_SIZE";
    /// `MEMORY_LIMIT_BYTES`: The memory the API may use, in bytes (the operator passes the container's
    /// limit); the budgets of password hashing and uploads in progress follow it. Default: the cgroup's
    /// limit, else 512 MiB.
    pub const MEMORY_LIMIT_BYTES: &str = "MEMORY_LIMIT_BYTES";
    /// `MONGODB_APP_PASSWORD`: That user's password.
    pub const MONGODB_APP_PASSWORD: &str = "MONGODB_APP_PASSWORD";
    /// `MONGODB_APP_USERNAME`: The application's MongoDB user, made sure of by the API's init container.
    pub const MONGODB_APP_USERNAME: &str = "MONGODB_APP_USERNAME";
    /// `MONGODB_ROOT_URL`: The root user's connection URL.
    pub const MONGODB_ROOT_URL: &str = "MONGODB_ROOT_URL";
    /// `OCR_WORKERS`: OCR threads run inside this process. Default: one per CPU when there is no `REDIS_URL`
    /// (the all-in-one mode), none otherwise (separate `ocr-worker` processes do the OCR).
    pub const OCR_WORKERS: &str = "OCR_WORKERS";
    /// `PASSWORD_HASHES_AT_ONCE`: Password hashes computed at once (each takes 19 MiB). Default: twice the
    /// CPUs, but no more than a quarter of the memory limit holds.
    pub const PASSWORD_HASHES_AT_ONCE: &str = "PASSWORD_HASHES_AT_ONCE";
    /// `QUOTA_MAX_IMAGE_BYTES`: Bytes of images one user may store.
    pub const QUOTA_MAX_IMAGE_BYTES: &str = "QUOTA_MAX_IMAGE_BYTES";
    /// `QUOTA_MAX_RECEIPTS`: Receipts one user may store; uploads past it get 422 (`quota_exceeded`).
    pub const QUOTA_MAX_RECEIPTS: &str = "QUOTA_MAX_RECEIPTS";
    /// `RATE_LIMIT_ADDRESS_BURST`: Requests a client address may send at once above its steady rate.
    pub const RATE_LIMIT_ADDRESS_BURST: &str = "RATE_LIMIT_ADDRESS_BURST";
    /// `RATE_LIMIT_ADDRESS_PER_SECOND`: Requests per second per client address, on every route, before
    /// credentials are checked.
    pub const RATE_LIMIT_ADDRESS_PER_SECOND: &str = "RATE_LIMIT_ADDRESS_PER_SECOND";
    /// `RATE_LIMIT_API_BURST`: Requests a client may send at once on ordinary API routes, above the steady
    /// rate.
    pub const RATE_LIMIT_API_BURST: &str = "RATE_LIMIT_API_BURST";
    /// `RATE_LIMIT_API_PER_SECOND`: Requests per second per client on ordinary API routes.
    pub const RATE_LIMIT_API_PER_SECOND: &str = "RATE_LIMIT_API_PER_SECOND";
    /// `RATE_LIMIT_LOGIN_PER_ADDRESS_PER_MINUTE`: Login attempts per minute per client address, whatever the
    /// account (password spraying).
    pub const RATE_LIMIT_LOGIN_PER_ADDRESS_PER_MINUTE: &str = "RATE_LIMIT_LOGIN_PER_ADDRESS_PER_MINUTE";
    /// `RATE_LIMIT_LOGIN_PER_MINUTE`: Login attempts per minute per account and client address (also
    /// registrations per address).
    pub const RATE_LIMIT_LOGIN_PER_MINUTE: &str = "RATE_LIMIT_LOGIN_PER_MINUTE";
    /// `RATE_LIMIT_UPLOAD_BURST`: Uploads a client may send at once.
    pub const RATE_LIMIT_UPLOAD_BURST: &str = "RATE_LIMIT_UPLOAD_BURST";
    /// `RATE_LIMIT_UPLOAD_PER_SECOND`: Uploads per second per client.
    pub const RATE_LIMIT_UPLOAD_PER_SECOND: &str = "RATE_LIMIT_UPLOAD_PER_SECOND";
    /// `REFRESH_EXPIRE_DAYS`: Lifetime of a refresh-token family, in days.
    pub const REFRESH_EXPIRE_DAYS: &str = "REFRESH_EXPIRE_DAYS";
    /// `REGISTRATION`: Who may create an account: `open` (anyone), `invite` (with an administrator's invite
    /// code) or `closed` (administrators create accounts).
    pub const REGISTRATION: &str = "REGISTRATION";
    /// `REQUEST_TIMEOUT_SECONDS`: Longest time a request may take, in seconds, uploads included.
    pub const REQUEST_TIMEOUT_SECONDS: &str = "REQUEST_TIMEOUT_SECONDS";
    /// `SECURE_COOKIES`: When the web app's cookies carry `Secure`: `auto` (when the request reached a
    /// trusted proxy over HTTPS, by its `X-Forwarded-Proto`), `always` or `never`.
    pub const SECURE_COOKIES: &str = "SECURE_COOKIES";
    /// `STORAGE_LIMIT_BYTES`: Bytes of images every user together may store (the instance's disk budget);
    /// uploads past it get 507 (`storage-full`). Unset: no instance-wide limit.
    pub const STORAGE_LIMIT_BYTES: &str = "STORAGE_LIMIT_BYTES";
    /// `TRUSTED_PROXIES`: Proxies (addresses or CIDR ranges, comma-separated) whose `X-Forwarded-For` is
    /// believed.
    pub const TRUSTED_PROXIES: &str = "TRUSTED_PROXIES";
    /// `UPLOADS_PER_USER_AT_ONCE`: Uploads one user may send at once (1 to 8); more get 429.
    pub const UPLOADS_PER_USER_AT_ONCE: &str = "UPLOADS_PER_USER_AT_ONCE";
    /// `UPLOAD_MIN_BYTES_PER_SECOND`: Slowest upload accepted, in bytes per second after its first 5 seconds;
    /// slower ones get 408.
    pub const UPLOAD_MIN_BYTES_PER_SECOND: &str = "UPLOAD_MIN_BYTES_PER_SECOND";
    /// `WEBHOOK_ALLOW_PRIVATE_TARGETS`: Lets webhooks target loopback and private addresses (receivers on a
    /// private network); off by default, against server-side request forgery.
    pub const WEBHOOK_ALLOW_PRIVATE_TARGETS: &str = "WEBHOOK_ALLOW_PRIVATE_TARGETS";
    /// `WEBHOOK_RETRY_BASE_SECONDS`: Seconds before a failed webhook delivery is retried the first time (4×
    /// longer each time after, 8 attempts in all).
    pub const WEBHOOK_RETRY_BASE_SECONDS: &str = "WEBHOOK_RETRY_BASE_SECONDS";

    // Read by the OCR workers.
    /// `OCR_LANGUAGE`: Tesseract language.
    pub const OCR_LANGUAGE: &str = "OCR_LANGUAGE";
    /// `OCR_PPOCR_IMAGES`: Which images PP-OCR reads: photos (flat scans go to Tesseract) or all.
    pub const OCR_PPOCR_IMAGES: &str = "OCR_PPOCR_IMAGES";
    /// `OCR_PPOCR_MODELS`: Read text with PP-OCR networks from this folder (`*_det_*.onnx`, `*_rec_*.onnx`)
    /// instead of Tesseract; needs `--onnxruntime`.
    pub const OCR_PPOCR_MODELS: &str = "OCR_PPOCR_MODELS";
    /// `OCR_PREPROCESS`: Preprocessing steps: a comma-separated list of crop, deskew, scale, sauvola; or
    /// default (crop, deskew, sauvola), all, none.
    pub const OCR_PREPROCESS: &str = "OCR_PREPROCESS";
    /// `OCR_RETRY_BACKOFF`: Seconds before the first retry of a failed job (doubled for each further one).
    pub const OCR_RETRY_BACKOFF: &str = "OCR_RETRY_BACKOFF";
    /// `OCR_THREADS`: OCR threads, one Tesseract engine each (default: one per CPU).
    pub const OCR_THREADS: &str = "OCR_THREADS";
    /// `OCR_VISIBILITY_TIMEOUT`: Seconds after which a silent worker's job is reclaimed by another.
    pub const OCR_VISIBILITY_TIMEOUT: &str = "OCR_VISIBILITY_TIMEOUT";
    /// `ORT_DYLIB_PATH`: The ONNX Runtime shared library PP-OCR runs on.
    pub const ORT_DYLIB_PATH: &str = "ORT_DYLIB_PATH";
    /// `SHUTDOWN_GRACE`: Seconds in-flight jobs get to finish after SIGTERM.
    pub const SHUTDOWN_GRACE: &str = "SHUTDOWN_GRACE";
    /// `TESSDATA_PREFIX`: Tesseract language data folder (default: Tesseract's own).
    pub const TESSDATA_PREFIX: &str = "TESSDATA_PREFIX";

    // Read by the operator.
    /// `CONNECT_TO`: For an operator outside the cluster: connect to a second address for an in-cluster one,
    /// `HOST:PORT=HOST:PORT` (e.g.
    pub const CONNECT_TO: &str = "CONNECT_TO";
    /// `LEASE_DURATION_SECONDS`: How long the lease lasts without renewal, in seconds.
    pub const LEASE_DURATION_SECONDS: &str = "LEASE_DURATION_SECONDS";
    /// `LEASE_NAME`: Name of the leader-election Lease.
    pub const LEASE_NAME: &str = "LEASE_NAME";
    /// `LEASE_RENEW_DEADLINE_SECONDS`: How long the leader keeps trying to renew before it stops leading, in
    /// seconds (less than the lease duration).
    pub const LEASE_RENEW_DEADLINE_SECONDS: &str = "LEASE_RENEW_DEADLINE_SECONDS";
    /// `LEASE_RENEW_PERIOD_SECONDS`: How often the leader renews the lease, in seconds (less than the renew
    /// deadline).
    pub const LEASE_RENEW_PERIOD_SECONDS: &str = "LEASE_RENEW_PERIOD_SECONDS";
    /// `LEASE_RETRY_PERIOD_SECONDS`: How often a standby looks at the lease, and how soon a failed renewal is
    /// tried again, in seconds (at most the renew period).
    pub const LEASE_RETRY_PERIOD_SECONDS: &str = "LEASE_RETRY_PERIOD_SECONDS";
    /// `MAX_CONCURRENT_ROLLOUTS`: At most this many platforms start a rollout at once (after an operator
    /// upgrade, every platform's templates change); the others wait with their last good templates running. 0
    /// for no limit.
    pub const MAX_CONCURRENT_ROLLOUTS: &str = "MAX_CONCURRENT_ROLLOUTS";
    /// `POD_NAME`: This replica's identity in the election (the pod name).
    pub const POD_NAME: &str = "POD_NAME";
    /// `POD_NAMESPACE`: Namespace of the leader-election Lease (the operator's own).
    pub const POD_NAMESPACE: &str = "POD_NAMESPACE";
    /// `WATCH_NAMESPACE`: Watch FinancialAgents (and their children) in this namespace only; every namespace
    /// when unset.
    pub const WATCH_NAMESPACE: &str = "WATCH_NAMESPACE";

    // Read by every binary through the shared telemetry set-up.
    /// `LOG_FORMAT`: Log format: plain or json. The level filter comes from RUST_LOG (default "info").
    pub const LOG_FORMAT: &str = "LOG_FORMAT";

    // Not read by our binaries: referenced as `$(NAME)` by another variable of the same container,
    // or read by a library or a third-party image.
    /// `REDIS_PASSWORD`: The managed Redis password, spliced into `REDIS_URL`.
    pub const REDIS_PASSWORD: &str = "REDIS_PASSWORD";
    /// `MONGODB_ROOT_USERNAME`: The managed MongoDB root user, spliced into `MONGODB_ROOT_URL`.
    pub const MONGODB_ROOT_USERNAME: &str = "MONGODB_ROOT_USERNAME";
    /// `MONGODB_ROOT_PASSWORD`: Its password, spliced into `MONGODB_ROOT_URL`.
    pub const MONGODB_ROOT_PASSWORD: &str = "MONGODB_ROOT_PASSWORD";
    /// `MONGODB_USERNAME`: the application's MongoDB user, spliced into `MONGODB_URL`.
    pub const MONGODB_USERNAME: &str = "MONGODB_USERNAME";
    /// `MONGODB_PASSWORD`: its password, spliced into `MONGODB_URL`.
    pub const MONGODB_PASSWORD: &str = "MONGODB_PASSWORD";
    /// `MONGO_INITDB_ROOT_USERNAME`: the root user the official MongoDB image creates on first start.
    pub const MONGO_INITDB_ROOT_USERNAME: &str = "MONGO_INITDB_ROOT_USERNAME";
    /// `MONGO_INITDB_ROOT_PASSWORD`: that user's password.
    pub const MONGO_INITDB_ROOT_PASSWORD: &str = "MONGO_INITDB_ROOT_PASSWORD";
    /// `OMP_THREAD_LIMIT`: OpenMP's thread limit, read by Tesseract; the workers run with 1.
    pub const OMP_THREAD_LIMIT: &str = "OMP_THREAD_LIMIT";

    /// The database every binary uses unless [`MONGODB_DB_NAME`] names another.
    pub const DEFAULT_MONGODB_DB_NAME: &str = "financial_agent";
}

/// Metric names shared by the services, the operator, the dashboards and the alert rules.
pub mod metrics {
    /// Gauge: queue depth (lag + pending) of an instance's OCR queue.
    pub const QUEUE_DEPTH: &str = "finagent_ocr_queue_depth";
    /// Counter: OCR jobs by `outcome` (done, retried, dead_lettered).
    pub const OCR_JOBS: &str = "finagent_ocr_jobs_total";
    /// Histogram: seconds spent in OCR per image.
    pub const OCR_DURATION: &str = "finagent_ocr_duration_seconds";
    /// Counter: HTTP requests by `route`, `method` and `status`.
    pub const HTTP_REQUESTS: &str = "http_requests_total";
    /// Histogram: HTTP request duration by `route` and `method`.
    pub const HTTP_DURATION: &str = "http_request_duration_seconds";
}

/// The name of a platform instance (a `FinancialAgent` resource, or `local` in all-in-one mode):
/// a DNS-1123 label, so it is safe in object names and Redis keys alike.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceName(String);

impl InstanceName {
    /// The instance name of the all-in-one mode.
    pub fn local() -> Self {
        Self("local".to_owned())
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstanceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for InstanceName {
    type Err = InstanceNameError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes = text.as_bytes();
        let valid = (1..=63).contains(&bytes.len())
            && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
            && bytes[0].is_ascii_alphanumeric()
            && bytes[bytes.len() - 1].is_ascii_alphanumeric();
        if valid { Ok(Self(text.to_owned())) } else { Err(InstanceNameError(text.chars().take(80).collect())) }
    }
}

/// A name that is not a DNS-1123 label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid instance name {0:?}: expected a DNS-1123 label (lower-case letters, digits and '-', at most 63)")]
pub struct InstanceNameError(String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names_are_dns_labels() {
        for good in ["local", "prod", "a", "team-1"] {
            assert!(good.parse::<InstanceName>().is_ok(), "{good}");
        }
        for bad in ["", "Prod", "-a", "a-", "a_b", "a:b", &"x".repeat(64)] {
            assert!(bad.parse::<InstanceName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn component_names_are_stable() {
        let names: Vec<_> = Component::ALL.iter().map(Component::as_str).collect();
        assert_eq!(names, ["api-server", "ocr-worker", "redis", "mongodb", "prometheus"]);
    }

    #[test]
    fn a_proxy_lets_through_the_largest_upload_and_its_form() {
        assert_eq!(uploads::proxy_body_mib(uploads::MAX_BYTES), 26);
        assert_eq!(uploads::proxy_body_mib(uploads::MIB - uploads::FORM_ALLOWANCE), 1);
        assert_eq!(uploads::proxy_body_mib(uploads::MIB - uploads::FORM_ALLOWANCE + 1), 2);
        assert_eq!(uploads::body_limit(usize::MAX), usize::MAX);
    }

    #[test]
    fn the_upload_limit_reads_in_the_largest_whole_unit() {
        assert_eq!(uploads::describe(uploads::MAX_BYTES), "25 MiB");
        assert_eq!(uploads::describe(512 * 1024), "512 KiB");
        assert_eq!(uploads::describe(4096 + 1), "4097 bytes");
        assert_eq!(uploads::describe(0), "0 bytes");
    }
}
