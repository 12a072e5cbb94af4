//! Who is calling: credentials are resolved once per request by [`authenticate`], and handlers
//! state what they need through extractors — [`Caller`] (anyone signed in), [`SessionCaller`]
//! (signed in with a password session, not an API key) and [`AdminCaller`].
//!
//! An access token is checked for its signature and claims, then against the guard: its `jti` must
//! not be revoked and it must not predate its user's not-before cut-off (logout everywhere,
//! password change, role change, disabling). An API key is looked up by digest, and acts with its
//! owner's current role, so it is never more powerful than its owner, and it dies with a disabled
//! owner.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use finagent_core::UserId;
use finagent_core::account::Role;
use finagent_platform::store::{ApiKeyStore, UserStore};
use uuid::Uuid;

use super::secrets::{API_KEY_PREFIX, digest};
use super::tokens::TokenKind;
use crate::error::AppError;
use crate::state::AppState;

/// How the caller proved who they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// An access token of a password session.
    Session {
        /// The token id.
        jti: Uuid,
        /// The session (refresh-token family).
        family: Uuid,
        /// Expiry, Unix seconds.
        expires_at: i64,
    },
    ApiKey {
        /// The key id.
        id: Uuid,
        /// Whether it may only read.
        read_only: bool,
    },
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The user.
    pub user_id: UserId,
    /// Their role now.
    pub role: Role,
    /// How they authenticated.
    pub credential: Credential,
    /// Their account generation, when the check read it (access tokens do, in the same round
    /// trip as the revocations); see [`super::accounts_cache`].
    pub generation: Option<u64>,
}

/// The outcome of authentication, left in the request's extensions by the middleware.
#[derive(Clone, Debug)]
pub enum Authentication {
    /// No credentials were presented.
    Anonymous,
    /// Valid credentials.
    Authenticated(Principal),
    /// Credentials were presented and refused.
    Refused,
    /// The credentials could not be checked (the guard store or the store is down).
    Unavailable(String),
}

/// The credential in `Authorization: Bearer …` or `X-API-Key`.
fn presented(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(axum::http::header::AUTHORIZATION) {
        let text = value.to_str().ok()?;
        let (scheme, token) = text.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then_some(token.trim());
    }
    headers.get("x-api-key").and_then(|value| value.to_str().ok()).map(str::trim)
}

/// Resolves the credentials of a request.
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Authentication {
    let has_credentials = headers.contains_key(axum::http::header::AUTHORIZATION) || headers.contains_key("x-api-key");
    let Some(credential) = presented(headers).filter(|token| !token.is_empty()) else {
        return if has_credentials { Authentication::Refused } else { Authentication::Anonymous };
    };
    let outcome = if credential.starts_with(API_KEY_PREFIX) {
        by_api_key(state, credential).await
    } else {
        by_access_token(state, credential).await
    };
    let (authentication, outcome) = match outcome {
        Ok(Some(principal)) => (Authentication::Authenticated(principal), "accepted"),
        Ok(None) => (Authentication::Refused, "refused"),
        Err(AppError::Unavailable(message)) => (Authentication::Unavailable(message), "unavailable"),
        Err(other) => {
            tracing::error!(error = %other, "authentication failed");
            (Authentication::Refused, "refused")
        }
    };
    state.credential_checks.with_label_values(&[outcome]).inc();
    authentication
}

async fn by_access_token(state: &AppState, token: &str) -> Result<Option<Principal>, AppError> {
    let claims = match state.tokens.verify(token, TokenKind::Access) {
        Ok(claims) => claims,
        Err(error) => {
            tracing::debug!(error = %error, "access token refused");
            return Ok(None);
        }
    };
    let standing = state.guard.token_standing(&claims.jti.to_string(), claims.fam, claims.user_id()).await?;
    let voided = standing.not_before_millis.is_some_and(|cutoff| claims.issued_at_millis() < cutoff);
    if standing.revoked || voided {
        return Ok(None);
    }
    Ok(Some(Principal {
        user_id: claims.user_id(),
        role: claims.role,
        credential: Credential::Session { jti: claims.jti, family: claims.fam, expires_at: claims.exp },
        generation: Some(standing.generation),
    }))
}

async fn by_api_key(state: &AppState, key: &str) -> Result<Option<Principal>, AppError> {
    let Some(stored) = state.store.api_key_by_hash(&digest(key)).await? else { return Ok(None) };
    if stored.revoked {
        return Ok(None);
    }
    let Some(owner) = state.store.user(stored.owner_id).await? else { return Ok(None) };
    if owner.disabled {
        return Ok(None);
    }
    if stored.expires_at.is_some_and(|expires| expires <= chrono::Utc::now()) {
        return Ok(None);
    }
    let read_only = stored.scope == finagent_core::account::KeyScope::ReadOnly;
    Ok(Some(Principal {
        user_id: owner.id,
        role: owner.role,
        credential: Credential::ApiKey { id: stored.id, read_only },
        generation: None,
    }))
}

fn principal_of(parts: &Parts) -> Result<Principal, AppError> {
    match parts.extensions.get::<Authentication>() {
        Some(Authentication::Authenticated(principal)) => Ok(principal.clone()),
        Some(Authentication::Anonymous | Authentication::Refused) => Err(AppError::Unauthorized),
        Some(Authentication::Unavailable(message)) => Err(AppError::Unavailable(message.clone())),
        None => Err(AppError::Internal("the authentication middleware did not run".into())),
    }
}

/// Any signed-in caller: a session or an API key, any role.
#[derive(Clone, Debug)]
pub struct Caller(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, AppError> {
        let principal = principal_of(parts)?;
        let reads = matches!(parts.method, axum::http::Method::GET | axum::http::Method::HEAD);
        if matches!(principal.credential, Credential::ApiKey { read_only: true, .. }) && !reads {
            return Err(AppError::Forbidden("this API key is read-only"));
        }
        Ok(Self(principal))
    }
}

/// A caller signed in with a password session: API keys cannot manage keys, passwords or sessions.
#[derive(Clone, Debug)]
pub struct SessionCaller {
    /// The signed-in user.
    pub principal: Principal,
    /// The access token's id.
    pub jti: Uuid,
    /// The session (its refresh tokens' family).
    pub family: Uuid,
    /// The access token's expiry, Unix seconds.
    pub expires_at: i64,
}

impl<S: Send + Sync> FromRequestParts<S> for SessionCaller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, AppError> {
        let principal = principal_of(parts)?;
        match principal.credential {
            Credential::Session { jti, family, expires_at } => Ok(Self { principal, jti, family, expires_at }),
            Credential::ApiKey { .. } => {
                Err(AppError::Forbidden("this route needs a signed-in session, not an API key"))
            }
        }
    }
}

/// A caller with the `admin` role, signed in with a password session: an administrator's API key
/// cannot administer, so a leaked key cannot promote accounts or disable the other admins.
#[derive(Clone, Debug)]
pub struct AdminCaller(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for AdminCaller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, AppError> {
        let principal = principal_of(parts)?;
        if principal.role != Role::Admin {
            return Err(AppError::Forbidden("this route needs the admin role"));
        }
        if matches!(principal.credential, Credential::ApiKey { .. }) {
            return Err(AppError::Forbidden("administration needs a signed-in session, not an API key"));
        }
        Ok(Self(principal))
    }
}
