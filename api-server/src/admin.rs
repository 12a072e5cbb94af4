//! `/api/admin`: user management for administrators. Disabling a user or changing a role takes
//! effect at once: the user's tokens are voided on every replica and their sessions end. Also the
//! instance: its registration policy and storage, invites to register, and accounts made by hand.

use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use finagent_core::UserId;
use finagent_core::account::{Invite, Role};
use finagent_platform::store::{InviteStore, ReceiptStore, UserChange, UserStore};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::accounts::{UserView, normalize_email, normalize_username};
use crate::auth::password;
use crate::auth::principal::AdminCaller;
use crate::auth::routes::create_account;
use crate::auth::secrets::{digest, random_bytes};
use crate::auth::session_service::{end_all_sessions, invalid_password};
use crate::config::Registration;
use crate::error::{AppError, Problem};
use crate::extractors::{ApiJson, ApiPath};
use crate::state::AppState;

/// A role to give.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RoleChange {
    /// `user`, `admin` or `service`.
    #[schema(value_type = String, example = "service")]
    pub role: Role,
}

/// Lists every user, by user name.
#[utoipa::path(get, path = "/api/admin/users", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "Every user", body = [UserView]),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Not an administrator, or an API key (administration needs a session)", body = Problem),
    ))]
pub async fn list_users(
    State(state): State<AppState>,
    _admin: AdminCaller,
) -> Result<axum::Json<Vec<UserView>>, AppError> {
    Ok(axum::Json(state.store.users().await?.iter().map(UserView::from).collect()))
}

async fn change_user(
    state: &AppState,
    admin: &AdminCaller,
    id: Uuid,
    change: UserChange,
) -> Result<UserView, AppError> {
    let id = UserId::from_uuid(id);
    if id == admin.0.user_id {
        return Err(AppError::Invalid("administrators cannot disable themselves or change their own role".into()));
    }
    let user = state.store.user(id).await?.ok_or(AppError::NotFound)?;
    let mut changed = user.clone();
    change.apply(&mut changed);
    if changed == user {
        return Ok(UserView::from(&user));
    }
    let user = end_all_sessions(state, id, change).await?.ok_or(AppError::NotFound)?;
    Ok(UserView::from(&user))
}

/// Disables a user: they cannot sign in, and their tokens, sessions and API keys stop working.
#[utoipa::path(post, path = "/api/admin/users/{id}/disable", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The user's id")),
    responses(
        (status = 200, description = "Disabled", body = UserView),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Not an administrator, or an API key (administration needs a session)", body = Problem),
        (status = 404, description = "No such user", body = Problem),
        (status = 422, description = "Administrators cannot disable themselves", body = Problem),
    ))]
pub async fn disable_user(
    State(state): State<AppState>,
    admin: AdminCaller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<UserView>, AppError> {
    let view = change_user(&state, &admin, id, UserChange::Disabled(true)).await?;
    tracing::warn!(target: "security", event = "user_disabled", user.id = %id, admin.id = %admin.0.user_id, "user disabled");
    Ok(axum::Json(view))
}

/// Enables a disabled user again; they sign in anew.
#[utoipa::path(post, path = "/api/admin/users/{id}/enable", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The user's id")),
    responses(
        (status = 200, description = "Enabled", body = UserView),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Not an administrator, or an API key (administration needs a session)", body = Problem),
        (status = 404, description = "No such user", body = Problem),
        (status = 422, description = "Administrators cannot change themselves", body = Problem),
    ))]
pub async fn enable_user(
    State(state): State<AppState>,
    admin: AdminCaller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<UserView>, AppError> {
    let view = change_user(&state, &admin, id, UserChange::Disabled(false)).await?;
    tracing::warn!(target: "security", event = "user_enabled", user.id = %id, admin.id = %admin.0.user_id, "user enabled");
    Ok(axum::Json(view))
}

/// Changes a user's role; their current tokens stop working, so the new role applies at once.
#[utoipa::path(put, path = "/api/admin/users/{id}/role", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The user's id")), request_body = RoleChange,
    responses(
        (status = 200, description = "Changed", body = UserView),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Not an administrator, or an API key (administration needs a session)", body = Problem),
        (status = 404, description = "No such user", body = Problem),
        (status = 422, description = "Invalid role, or the administrator's own", body = Problem),
    ))]
pub async fn change_role(
    State(state): State<AppState>,
    admin: AdminCaller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<RoleChange>,
) -> Result<axum::Json<UserView>, AppError> {
    let view = change_user(&state, &admin, id, UserChange::Role(body.role)).await?;
    tracing::warn!(target: "security", event = "role_changed", user.id = %id, admin.id = %admin.0.user_id, role = body.role.as_str(), "role changed");
    Ok(axum::Json(view))
}

/// What the instance stores, and who may register.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstanceView {
    /// Who may create an account (`REGISTRATION`).
    pub registration: Registration,
    /// Every user's receipts together.
    pub storage: StorageView,
}

/// Storage used by every user together, and its limit.
#[derive(Debug, Serialize, ToSchema)]
pub struct StorageView {
    /// Receipts stored.
    pub receipts: u64,
    /// Bytes of their images.
    pub image_bytes: u64,
    /// The most image bytes the instance stores (`STORAGE_LIMIT_BYTES`); absent without a limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_image_bytes: Option<u64>,
}

/// The registration policy and the storage of the whole instance.
#[utoipa::path(get, path = "/api/admin/instance", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "The instance's policy and use", body = InstanceView),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Not an administrator, or an API key", body = Problem),
    ))]
pub async fn instance(
    State(state): State<AppState>,
    _admin: AdminCaller,
) -> Result<axum::Json<InstanceView>, AppError> {
    let usage = state.store.instance_usage().await?;
    Ok(axum::Json(InstanceView {
        registration: state.settings.registration,
        storage: StorageView {
            receipts: usage.receipts,
            image_bytes: usage.image_bytes,
            limit_image_bytes: state.settings.quota.instance_max_image_bytes,
        },
    }))
}

/// An invite to make.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct NewInvite {
    /// Whom it is for (at most 200 characters), to tell invites apart.
    #[serde(default)]
    pub note: Option<String>,
    /// Hours until it expires: 1 to 720, 168 (a week) when absent.
    #[serde(default)]
    pub expires_in_hours: Option<u32>,
}

/// An invite as listed (never its code).
#[derive(Debug, Serialize, ToSchema)]
pub struct InviteView {
    pub id: Uuid,
    /// Whom it is for.
    pub note: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it stops admitting anyone.
    pub expires_at: DateTime<Utc>,
}

impl From<&Invite> for InviteView {
    fn from(invite: &Invite) -> Self {
        Self { id: invite.id, note: invite.note.clone(), created_at: invite.created_at, expires_at: invite.expires_at }
    }
}

/// An invite just made: the only time its code is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedInvite {
    /// The invite.
    #[serde(flatten)]
    pub view: InviteView,
    /// The code to give to the person invited (`invite_code` at registration).
    pub code: String,
}

/// Invites outstanding at most: a bound on what a stolen administrator session can mint.
const MAX_INVITES: usize = 500;

/// Makes an invite to register, used once, until it expires.
#[utoipa::path(post, path = "/api/admin/invites", tag = "admin", security(("bearer" = [])), request_body = NewInvite,
    responses(
        (status = 201, description = "Made; the code is shown only now", body = CreatedInvite),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Not an administrator, or an API key", body = Problem),
        (status = 422, description = "A note over 200 characters, an expiry out of range, or 500 invites outstanding", body = Problem),
    ))]
pub async fn create_invite(
    State(state): State<AppState>,
    admin: AdminCaller,
    ApiJson(body): ApiJson<NewInvite>,
) -> Result<(StatusCode, axum::Json<CreatedInvite>), AppError> {
    let note = body.note.unwrap_or_default().trim().to_owned();
    if note.chars().count() > 200 {
        return Err(AppError::Invalid("note: at most 200 characters".into()));
    }
    let hours = body.expires_in_hours.unwrap_or(168);
    if !(1..=720).contains(&hours) {
        return Err(AppError::Invalid("expires_in_hours: between 1 and 720".into()));
    }
    let now = Utc::now();
    if state.store.invites(now).await?.len() >= MAX_INVITES {
        return Err(AppError::Invalid(format!("at most {MAX_INVITES} invites outstanding; withdraw some first")));
    }
    let code = format!("inv_{}", URL_SAFE_NO_PAD.encode(random_bytes::<24>()));
    let invite = Invite {
        id: Uuid::now_v7(),
        code_hash: digest(&code),
        note,
        created_by: admin.0.user_id,
        created_at: now,
        expires_at: now + chrono::Duration::hours(i64::from(hours)),
    };
    state.store.create_invite(&invite).await?;
    tracing::info!(target: "security", event = "invite_created", user.id = %admin.0.user_id, invite.id = %invite.id, "invite made");
    Ok((StatusCode::CREATED, axum::Json(CreatedInvite { view: InviteView::from(&invite), code })))
}

/// The invites not yet used or expired, newest first.
#[utoipa::path(get, path = "/api/admin/invites", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "Outstanding invites", body = [InviteView]),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Not an administrator, or an API key", body = Problem),
    ))]
pub async fn list_invites(
    State(state): State<AppState>,
    _admin: AdminCaller,
) -> Result<axum::Json<Vec<InviteView>>, AppError> {
    Ok(axum::Json(state.store.invites(Utc::now()).await?.iter().map(InviteView::from).collect()))
}

/// Withdraws an invite before it is used.
#[utoipa::path(delete, path = "/api/admin/invites/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The invite's id")),
    responses(
        (status = 204, description = "Withdrawn"),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Not an administrator, or an API key", body = Problem),
        (status = 404, description = "No such invite (or it was used)", body = Problem),
    ))]
pub async fn delete_invite(
    State(state): State<AppState>,
    admin: AdminCaller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, AppError> {
    if !state.store.delete_invite(id).await? {
        return Err(AppError::NotFound);
    }
    tracing::info!(target: "security", event = "invite_withdrawn", user.id = %admin.0.user_id, invite.id = %id, "invite withdrawn");
    Ok(StatusCode::NO_CONTENT)
}

/// An account an administrator creates.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewUser {
    /// 3–32 characters among a-z, 0-9, `.`, `_`, `-` (case-insensitive).
    pub username: String,
    /// An email address.
    pub email: String,
    /// 8–128 characters, not a common password; the user changes it after signing in.
    pub password: String,
    /// `user` (the default), `admin` or `service`.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "user")]
    pub role: Option<Role>,
}

/// Creates an account, whatever the registration policy (with `closed`, the only way).
#[utoipa::path(post, path = "/api/admin/users", tag = "admin", security(("bearer" = [])), request_body = NewUser,
    responses(
        (status = 201, description = "Created", body = UserView),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Not an administrator, or an API key", body = Problem),
        (status = 409, description = "User name taken", body = Problem),
        (status = 422, description = "Invalid field", body = Problem),
    ))]
pub async fn create_user(
    State(state): State<AppState>,
    admin: AdminCaller,
    ApiJson(body): ApiJson<NewUser>,
) -> Result<(StatusCode, axum::Json<UserView>), AppError> {
    let username = normalize_username(&body.username)?;
    let email = normalize_email(&body.email)?;
    password::check_policy(&body.password, &username).map_err(invalid_password)?;
    let role = body.role.unwrap_or(Role::User);
    let user = create_account(&state, username, email, body.password, role).await?;
    tracing::info!(target: "security", event = "user_created", user.id = %user.id, by = %admin.0.user_id, role = ?role, "account created by an administrator");
    Ok((StatusCode::CREATED, axum::Json(UserView::from(&user))))
}
