//! One error type for every handler, answered as `application/problem+json` (RFC 9457).
//!
//! Clients get a status, a short title and a detail meant for them; internals (store or Redis
//! errors) are logged once here and never sent.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::password::HashError;
use crate::guard::GuardError;
use crate::limits::rate::retry_after_seconds;
use finagent_platform::store::StoreError;

/// The problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (`about:blank`: the title says it all).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The HTTP reason phrase.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong, for the client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A field is invalid.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The body could not be read as the route expects (syntax, media type, size).
    #[error("unreadable request ({0}): {1}")]
    Unreadable(StatusCode, String),
    /// No credentials, or credentials that are wrong, expired or revoked.
    #[error("authentication required")]
    Unauthorized,
    /// Authenticated, but the role or credential kind does not allow this.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// Nothing here for this caller (also what another user's resources look like).
    #[error("not found")]
    NotFound,
    /// The resource already exists.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Too many requests; retry after the delay.
    #[error("too many requests")]
    TooManyRequests(Duration),
    /// A dependency is down; the request may succeed later.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// The caller's storage quota is used up.
    #[error("quota exceeded: {0}")]
    Quota(String),
    /// The instance's storage limit is reached, whoever the caller is.
    #[error("storage full: {0}")]
    StorageFull(String),
    /// A bug or corrupt data.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The problem type of [`AppError::Quota`], so that clients can tell it from other 422s.
pub const QUOTA_EXCEEDED: &str = "urn:finagent:problem:quota-exceeded";
/// The problem type of [`AppError::StorageFull`].
pub const STORAGE_FULL: &str = "urn:finagent:problem:storage-full";

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(message) => Self::Conflict(message),
            error @ StoreError::Unavailable { .. } => Self::Unavailable(error.to_string()),
            error @ StoreError::Corrupt { .. } => Self::Internal(error.to_string()),
        }
    }
}

impl From<GuardError> for AppError {
    fn from(error: GuardError) -> Self {
        Self::Unavailable(error.to_string())
    }
}

impl From<HashError> for AppError {
    fn from(error: HashError) -> Self {
        match error {
            HashError::Busy => Self::Unavailable(error.to_string()),
            HashError::Failed(message) => Self::Internal(message),
        }
    }
}

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        Self::Unreadable(rejection.status(), rejection.body_text())
    }
}

impl From<PathRejection> for AppError {
    fn from(rejection: PathRejection) -> Self {
        match rejection {
            // A malformed id names nothing: the same answer as an id that does not exist.
            PathRejection::FailedToDeserializePathParams(_) => Self::NotFound,
            other => Self::Internal(other.body_text()),
        }
    }
}

impl AppError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Invalid(_) | Self::Quota(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unreadable(status, _) => *status,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::StorageFull(_) => StatusCode::INSUFFICIENT_STORAGE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn detail(&self) -> Option<String> {
        match self {
            Self::Invalid(message)
            | Self::Conflict(message)
            | Self::Unreadable(_, message)
            | Self::Quota(message)
            | Self::StorageFull(message) => Some(message.clone()),
            Self::Unauthorized => Some("missing, invalid, expired or revoked credentials".into()),
            Self::Forbidden(why) => Some((*why).to_owned()),
            Self::TooManyRequests(after) => Some(format!("retry after {} s", retry_after_seconds(*after))),
            Self::Unavailable(_) => Some("a dependency is unavailable; retry later".into()),
            Self::NotFound | Self::Internal(_) => None,
        }
    }
}

/// A problem response for a status and detail (also used by middleware).
pub fn problem(status: StatusCode, detail: Option<String>) -> Response {
    typed_problem("about:blank", status, detail)
}

/// A problem response of a named type.
pub fn typed_problem(kind: &'static str, status: StatusCode, detail: Option<String>) -> Response {
    let body = Problem {
        kind,
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail,
    };
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    response
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            Self::Internal(message) => tracing::error!(error = %message, "request failed"),
            Self::Unavailable(message) => tracing::warn!(error = %message, "dependency unavailable"),
            _ => {}
        }
        let kind = match self {
            Self::Quota(_) => QUOTA_EXCEEDED,
            Self::StorageFull(_) => STORAGE_FULL,
            _ => "about:blank",
        };
        let mut response = typed_problem(kind, status, self.detail());
        match self {
            Self::Unauthorized => {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::TooManyRequests(after) => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds(after)));
            }
            Self::Unavailable(_) => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        response
    }
}
