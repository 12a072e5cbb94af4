//! `/api/auth`: register, login, refresh, logout, me and password change.

use crate::auth::session_service::ClientInfo;
use crate::auth::session_service::LoginRequest;
use crate::auth::session_service::PasswordChange;
use crate::auth::session_service::TokenResponse;
use crate::auth::session_service::end_session;
use crate::auth::session_service::invalid_password;
use crate::auth::session_service::password_changed;
use crate::auth::session_service::rotate;
use crate::auth::session_service::sign_in;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use finagent_core::UserId;
use finagent_core::account::{Role, User};
use finagent_platform::store::{InviteStore, UserStore};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::accounts::{UserView, normalize_email, normalize_username};
use super::password::{self};
use super::principal::SessionCaller;
use super::secrets::digest;
use crate::error::{AppError, Problem};
use crate::extractors::ApiJson;
use crate::limits::client_ip::ClientIp;
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

/// A refresh token to exchange.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    /// The refresh token from the last login or refresh; it can be used once.
    pub refresh_token: String,
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
