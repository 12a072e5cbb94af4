//! Each user's record and usage counts, kept in this process under their account generation, so
//! that `GET /api/auth/me` does not read the store on every request.
//!
//! The generation lives in the guard, beside the user's token cut-off: every write to a user's
//! record or usage counts (sign-up excepted: there is nothing to be stale about) moves it on
//! ([`crate::guard::Guard::account_changed`]) after the store has the write, and an access token's
//! check reads it in the same round trip as the revocations. A copy is served only under the
//! generation it was read at, which was read before the store was; so whichever replica made the
//! write, no replica serves a copy older than the last write it could have seen. When the guard
//! could not be told of a write, [`MAX_AGE`] bounds how long a copy can outlive it.

pub mod entries;

use std::sync::Arc;
use std::time::Instant;

use finagent_core::UserId;
use finagent_core::account::User;
use finagent_platform::store::{ReceiptStore, Usage, UserStore};

use super::principal::Principal;
use crate::error::AppError;
use crate::state::AppState;
pub use entries::{AccountCache, MAX_AGE};

/// The caller's record and usage counts: this process's copy when their account has not changed
/// since it was read, the store's otherwise.
pub async fn account(state: &AppState, principal: &Principal) -> Result<(Arc<User>, Usage), AppError> {
    let generation = match principal.generation {
        Some(generation) => generation,
        None => state.guard.account_generation(principal.user_id).await?,
    };
    if let Some(copy) = state.accounts.get(principal.user_id, generation) {
        return Ok(copy);
    }
    let read_at = Instant::now();
    let user = Arc::new(state.store.user(principal.user_id).await?.ok_or(AppError::Unauthorized)?);
    let usage = state.store.usage(principal.user_id).await?;
    state.accounts.put(Arc::clone(&user), usage, generation, read_at);
    Ok((user, usage))
}

/// Tells every replica that `user`'s record or usage changed (after the store has the change).
/// A failure is logged, not returned: the write is done, and [`MAX_AGE`] bounds the copies.
pub async fn changed(state: &AppState, user: UserId) {
    if let Err(error) = state.guard.account_changed(user).await {
        tracing::error!(error = %error, user.id = %user, "could not move the account generation on");
    }
}
