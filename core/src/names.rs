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
    /// Prometheus.
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
    /// Redis.
    pub const REDIS: u16 = 6379;
    /// MongoDB.
    pub const MONGODB: u16 = 27017;
    /// Prometheus.
    pub const PROMETHEUS: u16 = 9091;
}

/// The size of an upload, agreed between the API (which enforces it) and the edge in front of it
/// (which must let it through, so that the API's own answer reaches the client).
pub mod uploads {
    /// The default largest image or PDF (`MAX_UPLOAD_SIZE`), 25 MiB.
    pub const MAX_BYTES: usize = 25 * 1024 * 1024;
    /// Room for the multipart form around the file: the API's body limit is `MAX_UPLOAD_SIZE` plus this.
    pub const FORM_ALLOWANCE: usize = 64 * 1024;

    /// The largest request body of an upload of at most `max_bytes`.
    pub const fn body_limit(max_bytes: usize) -> usize {
        max_bytes + FORM_ALLOWANCE
    }
}

/// Environment variables read by the services (names from the origin design).
pub mod env {
    /// `development` or `production`.
    pub const APP_ENV: &str = "APP_ENV";
    /// General application secret.
    pub const SECRET_KEY: &str = "SECRET_KEY";
    /// JWT signing key (at least 32 bytes).
    pub const JWT_SECRET_KEY: &str = "JWT_SECRET_KEY";
    /// Earlier JWT signing keys, comma-separated: they verify but no longer sign.
    pub const JWT_PREVIOUS_KEYS: &str = "JWT_PREVIOUS_KEYS";
    /// JWT algorithm; only HS256 is accepted.
    pub const JWT_ALGORITHM: &str = "JWT_ALGORITHM";
    /// Access-token lifetime in minutes (at most 15).
    pub const JWT_EXPIRE_MINUTES: &str = "JWT_EXPIRE_MINUTES";
    /// MongoDB connection string.
    pub const MONGODB_URL: &str = "MONGODB_URL";
    /// MongoDB database name.
    pub const MONGODB_DB_NAME: &str = "MONGODB_DB_NAME";
    /// The database every binary uses unless [`MONGODB_DB_NAME`] names another.
    pub const DEFAULT_MONGODB_DB_NAME: &str = "financial_agent";
    /// Redis URL.
    pub const REDIS_URL: &str = "REDIS_URL";
    /// Requests per minute for the general API class.
    pub const RATE_LIMIT_PER_MINUTE: &str = "RATE_LIMIT_PER_MINUTE";
    /// Upload size limit in bytes.
    pub const MAX_UPLOAD_SIZE: &str = "MAX_UPLOAD_SIZE";
    /// Per-image OCR time limit in seconds.
    pub const OCR_TIMEOUT: &str = "OCR_TIMEOUT";
    /// Whether `/metrics` is served.
    pub const PROMETHEUS_ENABLED: &str = "PROMETHEUS_ENABLED";
    /// The platform instance name that scopes Redis keys.
    pub const FINAGENT_INSTANCE: &str = "FINAGENT_INSTANCE";
    /// Tesseract's OpenMP thread limit; the workers run with 1.
    pub const OMP_THREAD_LIMIT: &str = "OMP_THREAD_LIMIT";
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
}
