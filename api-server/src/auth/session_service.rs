//! The session service: signing in, starting a session, rotating its refresh token, ending it, and
//! what a password change does to the other sessions. The JSON routes (`routes`) and the browser
//! routes (`browser`) both go through it, so a session behaves the same whichever client holds it.

use axum::response::{IntoResponse, Response};
use chrono::Utc;
use finagent_core::UserId;
use finagent_core::account::{Rotation, Session, User};
use finagent_platform::store::{ApiKeyStore, SessionStore, UserChange, UserStore};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::accounts::normalize_username;
use super::accounts_cache;
use super::password::{self, Verified};
use super::principal::SessionCaller;
use super::secrets::digest;
use super::tokens::TokenKind;
use crate::error::AppError;
use crate::guard::now_millis;
use crate::limits::client_ip::address_key;
use crate::limits::login;
use crate::limits::rate::rate_limit_headers;
use crate::state::AppState;

/// Credentials.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// User name (case-insensitive).
    pub username: String,
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PasswordChange {
    pub current_password: String,
    /// The new password (8–128 characters, not a common password).
    pub new_password: String,
}

/// A token pair.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// Send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Exchange at `/api/auth/refresh` for a new pair; single use.
    pub refresh_token: String,
    /// Seconds until the session ends.
    pub refresh_expires_in: u64,
    /// After a sign-in: this client's device token for the account. Send it back as
    /// `X-Device-Token` when signing in again, so failed guesses by others never hold you back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_token: Option<String>,
}

pub(crate) fn invalid_password(error: password::PasswordRejected) -> AppError {
    AppError::Invalid(format!("password: {error}"))
}

/// Who started a session, as its owner sees it in their list of sessions.
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    /// The client address.
    pub address: Option<String>,
    /// The `User-Agent`, shortened to 200 characters.
    pub user_agent: Option<String>,
}

impl ClientInfo {
    /// The client of a request.
    pub fn of(ip: std::net::IpAddr, headers: &axum::http::HeaderMap) -> Self {
        let user_agent = headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(|agent| agent.chars().filter(|c| !c.is_control()).take(200).collect());
        Self { address: Some(ip.to_string()), user_agent }
    }
}

/// Starts a session (a refresh-token family) and issues its first pair.
pub(crate) async fn start_session(
    state: &AppState,
    user: &User,
    client: ClientInfo,
) -> Result<TokenResponse, AppError> {
    let now = Utc::now();
    let family = Uuid::now_v7();
    let internal = |error: super::tokens::InvalidToken| AppError::Internal(error.to_string());
    let refresh = state.tokens.issue_refresh(user.id, user.role, family, now.timestamp()).map_err(internal)?;
    let access = state.tokens.issue_access(user.id, user.role, family, now.timestamp()).map_err(internal)?;
    let ttl = chrono::Duration::from_std(state.tokens.refresh_ttl()).unwrap_or(chrono::Duration::days(14));
    state
        .store
        .create_session(&Session {
            family_id: family,
            user_id: user.id,
            current_token_hash: digest(&refresh.token),
            created_at: now,
            expires_at: now + ttl,
            revoked: false,
            last_used_at: Some(now),
            client_address: client.address,
            user_agent: client.user_agent,
        })
        .await?;
    Ok(pair(state, access.token, refresh.token, state.tokens.refresh_ttl().as_secs()))
}

pub(crate) fn pair(state: &AppState, access: String, refresh: String, refresh_expires_in: u64) -> TokenResponse {
    TokenResponse {
        access_token: access,
        token_type: "Bearer",
        expires_in: state.tokens.access_ttl().as_secs(),
        refresh_token: refresh,
        refresh_expires_in,
        device_token: None,
    }
}

/// Checks credentials under the login limits and starts a session; `answer` shapes the response
/// (a token pair for API clients, a cookie for the web app).
pub(crate) async fn sign_in(
    state: &AppState,
    client: ClientInfo,
    ip: std::net::IpAddr,
    device: Option<String>,
    body: LoginRequest,
    answer: impl FnOnce(TokenResponse) -> Response,
) -> Result<Response, AppError> {
    let account = body.username.trim().to_lowercase();
    // Keys hold the account name bounded and free of separators, whatever was typed.
    let account_key = digest(&account);
    let address = address_key(ip);
    let limit = state.settings.limits.login;
    // Per account and address, and per address across every account (password spraying).
    let checks = [
        (format!("login:{account_key}:{address}"), limit),
        (format!("login-address:{address}"), state.settings.limits.login_address),
    ];
    let decision = state.guard.check_rate(&checks).await?;
    if !decision.allowed {
        tracing::warn!(target: "security", event = "login_rate_limited", account = %account_key, client.address = %ip, "login refused: too many attempts");
        let mut response = AppError::TooManyRequests(decision.retry_after).into_response();
        rate_limit_headers(&mut response, limit.burst, limit.window(), &decision);
        return Ok(response);
    }
    // A known device is counted on its own; every other client shares the account's back-off
    // (see `limits::login`).
    let known = device.as_deref().and_then(|token| state.tokens.device_of(token, &account_key));
    let backoffs = match &known {
        Some(nonce) => vec![(format!("device:{nonce}"), login::PER_DEVICE)],
        None => {
            vec![(format!("{account_key}:{address}"), login::PER_ADDRESS), (account_key.clone(), login::PER_ACCOUNT)]
        }
    };
    for (key, backoff) in &backoffs {
        if let Some(wait) = state.guard.begin_login_attempt(key, *backoff).await? {
            tracing::warn!(target: "security", event = "login_backoff", account = %account_key, client.address = %ip, wait_ms = wait.as_millis() as u64, "login refused: failed attempts back off");
            return Err(AppError::TooManyRequests(wait));
        }
    }
    let user = match normalize_username(&account) {
        Ok(name) => state.store.user_by_name(&name).await?,
        Err(_) => None,
    };
    let stored = user.as_ref().map(|user| user.password_hash.clone());
    let verified = state.hasher.verify(body.password, stored).await?;
    let user = match (verified, user) {
        (Verified::No, _) | (_, None) => {
            tracing::warn!(target: "security", event = "login_failed", account = %account_key, client.address = %ip, "login refused: wrong user name or password");
            return Err(AppError::Unauthorized);
        }
        (_, Some(user)) if user.disabled => {
            tracing::warn!(target: "security", event = "login_failed", user.id = %user.id, client.address = %ip, "login refused: the account is disabled");
            return Err(AppError::Unauthorized);
        }
        (Verified::YesRehashed(new_hash), Some(user)) => {
            let changed = state.store.change_user(user.id, &UserChange::Password(new_hash), None).await?;
            accounts_cache::changed(state, user.id).await;
            changed.unwrap_or(user)
        }
        (Verified::Yes, Some(user)) => user,
    };
    for (key, _) in &backoffs {
        state.guard.clear_login_failures(key).await?;
    }
    let mut tokens = start_session(state, &user, client).await?;
    tokens.device_token = Some(match (known, device) {
        (Some(_), Some(token)) => token,
        _ => state.tokens.device_token(&account_key),
    });
    tracing::info!(user.id = %user.id, "signed in");
    let mut response = answer(tokens);
    rate_limit_headers(&mut response, limit.burst, limit.window(), &decision);
    Ok(response)
}

/// Exchanges a refresh token for a new pair (see [`refresh`]).
pub(crate) async fn rotate(state: &AppState, refresh_token: &str) -> Result<TokenResponse, AppError> {
    let claims = state.tokens.verify(refresh_token, TokenKind::Refresh).map_err(|_| AppError::Unauthorized)?;
    let now = Utc::now();
    let internal = |error: super::tokens::InvalidToken| AppError::Internal(error.to_string());
    let user = state.store.user(claims.user_id()).await?.filter(|user| !user.disabled).ok_or(AppError::Unauthorized)?;
    // A refresh token older than the user's cut-off belongs to a session that every-session
    // endings (password, role, disabling) meant to end, even if the store's revocation missed it.
    if claims.issued_at_millis() < user.tokens_valid_after.timestamp_millis() {
        return Err(AppError::Unauthorized);
    }
    // The session keeps the expiry it started with: rotation never extends it.
    let next =
        state.tokens.rotate_refresh(user.id, user.role, claims.fam, now.timestamp(), claims.exp).map_err(internal)?;
    // Issued before the rotation, so its time precedes any revocation that the rotation beat.
    let access = state.tokens.issue_access(user.id, user.role, claims.fam, now.timestamp()).map_err(internal)?;
    match state.store.rotate_session(&digest(refresh_token), &digest(&next.token), now).await? {
        Rotation::Rotated(session) if session.user_id == user.id && session.family_id == claims.fam => {
            let left = u64::try_from(next.claims.exp - now.timestamp()).unwrap_or(0);
            Ok(pair(state, access.token, next.token, left))
        }
        Rotation::Rotated(session) => {
            state.store.revoke_session(session.family_id).await?;
            Err(AppError::Unauthorized)
        }
        Rotation::ReuseDetected => {
            // The family is revoked in the store; its access tokens stop at once too.
            state
                .guard
                .revoke_session(claims.fam, state.tokens.access_ttl() + std::time::Duration::from_secs(60))
                .await?;
            tracing::warn!(user.id = %user.id, "refresh token reused: the session is revoked");
            Err(AppError::Unauthorized)
        }
        Rotation::Invalid => Err(AppError::Unauthorized),
    }
}

/// Ends the session a refresh token belongs to, and every access token of it at once.
pub(crate) async fn end_session_of(state: &AppState, refresh_token: &str) -> Result<(), AppError> {
    let claims = state.tokens.verify(refresh_token, TokenKind::Refresh).map_err(|_| AppError::Unauthorized)?;
    end_session(state, claims.fam).await?;
    tracing::info!(user.id = %claims.user_id(), "signed out");
    Ok(())
}

/// Ends a session: its refresh token stops in the store and its access tokens at once, on every
/// replica.
pub(crate) async fn end_session(state: &AppState, family: Uuid) -> Result<(), AppError> {
    state.guard.revoke_session(family, state.tokens.access_ttl() + std::time::Duration::from_secs(60)).await?;
    state.store.revoke_session(family).await?;
    Ok(())
}

/// Changes the caller's password (see [`change_password`]) and starts the session that replaces
/// theirs, for the API route and the web app's.
pub(crate) async fn password_changed(
    state: &AppState,
    client: ClientInfo,
    caller: &SessionCaller,
    body: PasswordChange,
) -> Result<TokenResponse, AppError> {
    let user = state.store.user(caller.principal.user_id).await?.ok_or(AppError::Unauthorized)?;
    // Guesses of the current password back off like logins from one address.
    let account_key = format!("password:{}", digest(&user.username));
    if let Some(wait) = state.guard.begin_login_attempt(&account_key, login::PER_ADDRESS).await? {
        return Err(AppError::TooManyRequests(wait));
    }
    let verified = state.hasher.verify(body.current_password, Some(user.password_hash.clone())).await?;
    if verified == Verified::No {
        tracing::warn!(target: "security", event = "password_change_failed", user.id = %user.id, "password change refused: wrong current password");
        return Err(AppError::Invalid("current_password: wrong password".into()));
    }
    state.guard.clear_login_failures(&account_key).await?;
    password::check_policy(&body.new_password, &user.username).map_err(invalid_password)?;
    let hash = state.hasher.hash(body.new_password).await?;
    let user = end_all_sessions(state, user.id, UserChange::Password(hash)).await?.ok_or(AppError::Unauthorized)?;
    for key in state.store.api_keys(user.id).await?.iter().filter(|key| !key.revoked) {
        state.store.revoke_api_key(user.id, key.id).await?;
    }
    tracing::info!(user.id = %user.id, "password changed");
    start_session(state, &user, client).await
}

/// Applies one change to a user and voids every token and session they hold: used by password
/// changes, role changes and disabling. Returns the changed user, or `None` when it is gone.
///
/// The order closes the races with a refresh or a sign-in running at the same time. The sessions
/// are revoked in the store first, so no rotation starts after that. The cut-off is taken after
/// it: a rotation that got in before issued its tokens before the revocation, so before the
/// cut-off, and they are voided with the rest. A session created between the revocation and the
/// change is refused at its first refresh, because its refresh token is older than the cut-off.
pub async fn end_all_sessions(state: &AppState, id: UserId, change: UserChange) -> Result<Option<User>, AppError> {
    state.store.revoke_user_sessions(id).await?;
    let now = now_millis();
    let after = chrono::DateTime::from_timestamp_millis(now).unwrap_or_else(Utc::now);
    let Some(user) = state.store.change_user(id, &change, Some(after)).await? else { return Ok(None) };
    accounts_cache::changed(state, id).await;
    state.guard.set_not_before(id, now, state.tokens.access_ttl() + std::time::Duration::from_secs(60)).await?;
    Ok(Some(user))
}
