//! `/api/auth`: register, login, refresh, logout, me and password change.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use finagent_core::UserId;
use finagent_core::account::{Role, Rotation, Session, User};
use finagent_platform::store::{ApiKeyStore, InviteStore, SessionStore, UserChange, UserStore};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::accounts::{UserView, normalize_email, normalize_username};
use super::accounts_cache;
use super::password::{self, Verified};
use super::principal::{Caller, SessionCaller};
use super::secrets::digest;
use super::tokens::TokenKind;
use crate::error::{AppError, Problem};
use crate::extract::ApiJson;
use crate::guard::now_millis;
use crate::limits::client_ip::{ClientIp, address_key};
use crate::limits::login;
use crate::limits::rate::rate_limit_headers;
use crate::state::AppState;

/// A new account.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// 3–32 characters among a-z, 0-9, `.`, `_`, `-` (case-insensitive).
    pub username: String,
    /// An email address.
    pub email: String,
    /// 8–128 characters, not a common password.
    pub password: String,
    /// When registration is by invite (`GET /api/auth/registration`): the code an administrator
    /// gave. It is used up by a successful registration only.
    #[serde(default)]
    pub invite_code: Option<String>,
}

/// Who may register here, for clients that offer registration.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegistrationView {
    /// `open`, `invite` (an invite code is needed) or `closed` (administrators create accounts).
    pub policy: crate::config::Registration,
}

/// Who may register here.
#[utoipa::path(get, path = "/api/auth/registration", tag = "auth",
    responses((status = 200, description = "The registration policy", body = RegistrationView)))]
pub async fn registration(State(state): State<AppState>) -> axum::Json<RegistrationView> {
    axum::Json(RegistrationView { policy: state.settings.registration })
}

/// Credentials.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// User name (case-insensitive).
    pub username: String,
    /// Password.
    pub password: String,
}

/// A refresh token to exchange.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    /// The refresh token from the last login or refresh; it can be used once.
    pub refresh_token: String,
}

/// A password change.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PasswordChange {
    /// The current password.
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
async fn start_session(state: &AppState, user: &User, client: ClientInfo) -> Result<TokenResponse, AppError> {
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

fn pair(state: &AppState, access: String, refresh: String, refresh_expires_in: u64) -> TokenResponse {
    TokenResponse {
        access_token: access,
        token_type: "Bearer",
        expires_in: state.tokens.access_ttl().as_secs(),
        refresh_token: refresh,
        refresh_expires_in,
        device_token: None,
    }
}

/// Creates an account with the `user` role: for anyone when registration is open, with an invite
/// code when it is by invite, never when it is closed.
#[utoipa::path(post, path = "/api/auth/register", tag = "auth", request_body = RegisterRequest,
    responses(
        (status = 201, description = "Created", body = UserView),
        (status = 403, description = "Registration is closed, or by invite and the code is missing, used or expired", body = Problem),
        (status = 409, description = "User name taken (emails are not checked: an address nobody verified is no key, and registration never says which addresses have accounts)", body = Problem),
        (status = 422, description = "Invalid field", body = Problem),
        (status = 429, description = "Too many registrations from this address", body = Problem),
    ))]
pub async fn register(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<Response, AppError> {
    use crate::config::Registration;
    let code = match state.settings.registration {
        Registration::Closed => {
            return Err(AppError::Forbidden("registration is closed: an administrator creates accounts"));
        }
        Registration::Invite => Some(
            body.invite_code
                .as_deref()
                .map(str::trim)
                .filter(|code| !code.is_empty())
                .ok_or(AppError::Forbidden("registration is by invitation: an invite code is needed"))?
                .to_owned(),
        ),
        Registration::Open => None,
    };
    // Every field is checked before the invite is used, so a typo does not spend it.
    let username = normalize_username(&body.username)?;
    let email = normalize_email(&body.email)?;
    password::check_policy(&body.password, &username).map_err(invalid_password)?;
    let invite = match &code {
        Some(code) => Some(
            state
                .store
                .take_invite(&digest(code), Utc::now())
                .await?
                .ok_or(AppError::Forbidden("the invite code is unknown, used or expired"))?,
        ),
        None => None,
    };
    let created = create_account(&state, username, email, body.password, Role::User).await;
    if let (Err(_), Some(invite)) = (&created, &invite) {
        // Nobody was registered: the invite is good again.
        if let Err(error) = state.store.create_invite(invite).await {
            tracing::warn!(invite.id = %invite.id, %error, "an invite spent on a failed registration was not restored");
        }
    }
    let user = created?;
    match &invite {
        Some(invite) => {
            tracing::info!(target: "security", event = "user_registered", user.id = %user.id, invite.id = %invite.id, "user registered by invite")
        }
        None => tracing::info!(user.id = %user.id, "user registered"),
    }
    Ok((StatusCode::CREATED, axum::Json(UserView::from(&user))).into_response())
}

/// Creates an account whose fields were checked (the password against the policy).
pub(crate) async fn create_account(
    state: &AppState,
    username: String,
    email: String,
    password: String,
    role: Role,
) -> Result<User, AppError> {
    let password_hash = state.hasher.hash(password).await?;
    let user = User {
        id: UserId::new(),
        username,
        email,
        password_hash,
        role,
        disabled: false,
        tokens_valid_after: Utc::now(),
        created_at: Utc::now(),
        preferences: Default::default(),
    };
    state.store.create_user(&user).await.map_err(|error| match AppError::from(error) {
        AppError::Conflict(_) => AppError::Conflict("the user name is already taken".into()),
        other => other,
    })?;
    Ok(user)
}

/// Signs in with a user name and password.
///
/// Limited per account and client address, with a growing delay after repeated failures. An
/// unknown user and a wrong password get the same answer in the same time.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 401, description = "Wrong user name or password", body = Problem),
        (status = 429, description = "Too many attempts", body = Problem),
    ))]
pub async fn login(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: axum::http::HeaderMap,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Response, AppError> {
    let device = headers.get("x-device-token").and_then(|value| value.to_str().ok()).map(str::to_owned);
    sign_in(&state, ClientInfo::of(ip, &headers), ip, device, body, |tokens| axum::Json(tokens).into_response()).await
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

/// Exchanges a refresh token for a new pair. Each refresh token works once: presenting a used one
/// ends its whole session, on the assumption that it was stolen.
#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new pair", body = TokenResponse),
        (status = 401, description = "Invalid, expired, used or revoked refresh token", body = Problem),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<Response, AppError> {
    Ok(axum::Json(rotate(&state, &body.refresh_token).await?).into_response())
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
async fn end_session(state: &AppState, family: Uuid) -> Result<(), AppError> {
    state.guard.revoke_session(family, state.tokens.access_ttl() + std::time::Duration::from_secs(60)).await?;
    state.store.revoke_session(family).await?;
    Ok(())
}

/// Signs out: the session ends, and every access token of it stops working at once, on every
/// replica.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "API keys cannot sign out", body = Problem),
    ))]
pub async fn logout(State(state): State<AppState>, caller: SessionCaller) -> Result<StatusCode, AppError> {
    let remaining =
        std::time::Duration::from_secs(u64::try_from(caller.expires_at - Utc::now().timestamp()).unwrap_or(0));

    state.guard.revoke_token(&caller.jti.to_string(), remaining + std::time::Duration::from_secs(60)).await?;
    end_session(&state, caller.family).await?;
    tracing::info!(user.id = %caller.principal.user_id, "signed out");
    Ok(StatusCode::NO_CONTENT)
}

/// A quantity used against its limit.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
pub struct Allowance {
    /// Used so far.
    pub used: u64,
    /// The most allowed.
    pub limit: u64,
}

/// What the caller may store, and has.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct QuotaView {
    /// Receipts stored.
    pub receipts: Allowance,
    /// Bytes of stored images.
    pub image_bytes: Allowance,
    /// Uploads the caller may send at once.
    pub uploads_at_once: usize,
}

/// The signed-in user and their quota.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MeView {
    /// The account.
    #[serde(flatten)]
    pub user: UserView,
    /// Their quota and usage.
    pub quota: QuotaView,
    /// How their receipts are read when a receipt does not say where it is from.
    pub preferences: finagent_core::account::Preferences,
}

/// Absent: unchanged; `null`: cleared; a value: set.
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// A change of reading preferences. A field left out keeps its value; `null` clears it.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesChange {
    /// Default country, ISO 3166-1 alpha-2 (`US`, `DE`, `MY`, …): a prior for receipts that print
    /// no address, phone or currency that says where they are from.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub country: Option<Option<String>>,
    /// Default currency, ISO 4217 (`EUR`): used for receipts that print amounts without one.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub currency: Option<Option<String>>,
}

/// Changes how the caller's receipts are read by default: a default country and currency, priors
/// that clear evidence on a receipt always outweighs. Applies to receipts read from now on.
#[utoipa::path(patch, path = "/api/auth/me", tag = "auth", security(("bearer" = []), ("api_key" = [])),
    request_body = PreferencesChange,
    responses(
        (status = 200, description = "Changed", body = MeView),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 422, description = "An unknown country or currency", body = Problem),
    ))]
pub async fn update_me(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(change): ApiJson<PreferencesChange>,
) -> Result<axum::Json<MeView>, AppError> {
    let Caller(principal) = &caller;
    let user = state.store.user(principal.user_id).await?.ok_or(AppError::Unauthorized)?;
    let mut preferences = user.preferences.clone();
    if let Some(country) = change.country {
        preferences.country = match country.map(|code| code.trim().to_ascii_uppercase()) {
            Some(code) if finagent_extract::locale::country_by_code(&code).is_some() => Some(code),
            Some(code) => {
                let known: Vec<&str> = finagent_extract::locale::COUNTRIES.iter().map(|c| c.code).collect();
                return Err(AppError::Invalid(format!(
                    "country: {code:?} is not a supported country; expected one of {}",
                    known.join(", ")
                )));
            }
            None => None,
        };
    }
    if let Some(currency) = change.currency {
        preferences.currency = match currency.map(|code| code.trim().to_ascii_uppercase()) {
            Some(code) => {
                let parsed: finagent_core::Currency = code.parse().map_err(|_| {
                    AppError::Invalid(format!("currency: {code:?} is not an ISO 4217 code such as EUR"))
                })?;
                Some(parsed.to_string())
            }
            None => None,
        };
    }
    state
        .store
        .change_user(user.id, &UserChange::Preferences(preferences), None)
        .await?
        .ok_or(AppError::Unauthorized)?;
    accounts_cache::changed(&state, user.id).await;
    // The answer shows this change: the generation is read again, past the one the call began at.
    let Caller(mut principal) = caller;
    principal.generation = None;
    me(State(state), Caller(principal)).await
}

/// The signed-in user, with their quota and what they use of it.
#[utoipa::path(get, path = "/api/auth/me", tag = "auth", security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The caller", body = MeView),
        (status = 401, description = "Not signed in", body = Problem),
    ))]
pub async fn me(State(state): State<AppState>, Caller(principal): Caller) -> Result<axum::Json<MeView>, AppError> {
    let (user, usage) = accounts_cache::account(&state, &principal).await?;
    let quota = state.settings.quota;
    Ok(axum::Json(MeView {
        preferences: user.preferences.clone(),
        user: UserView::from(user.as_ref()),
        quota: QuotaView {
            receipts: Allowance { used: usage.receipts, limit: quota.max_receipts },
            image_bytes: Allowance { used: usage.image_bytes, limit: quota.max_image_bytes },
            uploads_at_once: quota.uploads_at_once,
        },
    }))
}

/// Changes the password: every other session and token of the user ends at once, and the user's
/// API keys are revoked (they may have been made with the old password); a new session is
/// returned for this client. Wrong current passwords count against the account's login back-off.
#[utoipa::path(post, path = "/api/auth/password", tag = "auth", security(("bearer" = [])), request_body = PasswordChange,
    responses(
        (status = 200, description = "Changed; a new session", body = TokenResponse),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "API keys cannot change passwords", body = Problem),
        (status = 422, description = "Wrong current password or a refused new one", body = Problem),
    ))]
pub async fn change_password(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: axum::http::HeaderMap,
    caller: SessionCaller,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<axum::Json<TokenResponse>, AppError> {
    Ok(axum::Json(password_changed(&state, ClientInfo::of(ip, &headers), &caller, body).await?))
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
