//! `/api/auth/sessions`: the caller's signed-in sessions (where and when each started, when it was
//! last used) and ending one, or every other one. Sessions are managed from a session only: an
//! API key cannot end its owner's sessions.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use finagent_platform::store::SessionStore;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::principal::SessionCaller;
use crate::error::{AppError, Problem};
use crate::extractors::ApiPath;
use crate::state::AppState;

/// One signed-in session.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// Its id, for ending it.
    pub id: Uuid,
    /// When it started (the sign-in).
    pub created_at: DateTime<Utc>,
    /// When its refresh token was last exchanged (within the access-token life of its last use).
    pub last_used_at: DateTime<Utc>,
    /// When it ends by itself.
    pub expires_at: DateTime<Utc>,
    /// The address it was started from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_address: Option<String>,
    /// The browser or program that started it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Whether it is the session making this request.
    pub current: bool,
}

/// The caller's live sessions, most recently used first.
#[utoipa::path(get, path = "/api/auth/sessions", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's sessions", body = [SessionView]),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "API keys cannot list sessions", body = Problem),
    ))]
pub async fn list(
    State(state): State<AppState>,
    caller: SessionCaller,
) -> Result<axum::Json<Vec<SessionView>>, AppError> {
    let sessions = state.store.user_sessions(caller.principal.user_id, Utc::now()).await?;
    Ok(axum::Json(
        sessions
            .into_iter()
            .map(|session| SessionView {
                id: session.family_id,
                created_at: session.created_at,
                last_used_at: session.last_used_at.unwrap_or(session.created_at),
                expires_at: session.expires_at,
                client_address: session.client_address,
                user_agent: session.user_agent,
                current: session.family_id == caller.family,
            })
            .collect(),
    ))
}

/// Ends one of the caller's sessions: its refresh token and its access tokens stop at once.
#[utoipa::path(delete, path = "/api/auth/sessions/{id}", tag = "auth", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session's id")),
    responses(
        (status = 204, description = "Ended"),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "API keys cannot end sessions", body = Problem),
        (status = 404, description = "The caller has no such live session", body = Problem),
    ))]
pub async fn end(
    State(state): State<AppState>,
    caller: SessionCaller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, AppError> {
    let user = caller.principal.user_id;
    if !state.store.revoke_user_session(user, id).await? {
        return Err(AppError::NotFound);
    }
    state.guard.revoke_session(id, state.tokens.access_ttl() + std::time::Duration::from_secs(60)).await?;
    tracing::info!(target: "security", event = "session_ended", user.id = %user, session.id = %id, "session ended by its owner");
    Ok(StatusCode::NO_CONTENT)
}

/// How many sessions were ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ended {
    /// Sessions ended.
    pub ended: usize,
}

/// Ends every session of the caller but the one making the request (sign out everywhere else).
#[utoipa::path(delete, path = "/api/auth/sessions", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "The other sessions ended", body = Ended),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "API keys cannot end sessions", body = Problem),
    ))]
pub async fn end_others(State(state): State<AppState>, caller: SessionCaller) -> Result<axum::Json<Ended>, AppError> {
    let user = caller.principal.user_id;
    let mut ended = 0;
    for session in state.store.user_sessions(user, Utc::now()).await? {
        if session.family_id == caller.family {
            continue;
        }
        if state.store.revoke_user_session(user, session.family_id).await? {
            state
                .guard
                .revoke_session(session.family_id, state.tokens.access_ttl() + std::time::Duration::from_secs(60))
                .await?;
            ended += 1;
        }
    }
    tracing::info!(target: "security", event = "other_sessions_ended", user.id = %user, ended, "other sessions ended by their owner");
    Ok(axum::Json(Ended { ended }))
}
