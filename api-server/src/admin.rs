//! `/api/admin`: user management for administrators. Disabling a user or changing a role takes
//! effect at once: the user's tokens are voided on every replica and their sessions end.

use axum::extract::State;
use finagent_core::UserId;
use finagent_core::account::Role;
use finagent_platform::store::{UserChange, UserStore};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::accounts::UserView;
use crate::auth::principal::AdminCaller;
use crate::auth::routes::end_all_sessions;
use crate::error::{AppError, Problem};
use crate::extract::{ApiJson, ApiPath};
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
