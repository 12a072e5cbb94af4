//! State shared by every replica for security decisions: rate-limit buckets, revoked tokens,
//! per-user token cut-offs and failed-login counters.
//!
//! [`Guard::Redis`] keeps it in Redis so that a logout or a rate limit holds on every replica at
//! once; [`Guard::Memory`] keeps it in process for the single-machine mode. Both give the same
//! answers; the tests run against each. When Redis cannot be reached, callers fail closed (503)
//! rather than let a revoked token or an unlimited client through.

mod memory;
mod redis;

use std::time::Duration;

use finagent_core::UserId;
use uuid::Uuid;

use crate::limits::rate::{Decision, Limit};

pub use self::memory::MemoryGuard;
pub use self::redis::RedisGuard;

/// Why the guard state could not be read or written: which operation, and the underlying error.
#[derive(Debug, thiserror::Error)]
#[error("the guard store failed to {operation}: {source}")]
pub struct GuardError {
    /// The guard operation (a method's name, such as `check_rate`).
    pub operation: &'static str,
    pub source: finagent_platform::store::Source,
}

impl GuardError {
    /// `map_err` for an error of the guard's store in `operation`.
    pub fn unavailable<E: Into<finagent_platform::store::Source>>(operation: &'static str) -> impl FnOnce(E) -> Self {
        move |error| Self { operation, source: error.into() }
    }
}

/// What is known about an access token beyond its signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenStanding {
    /// Its `jti` or its whole session was revoked (logout, refresh-token reuse).
    pub revoked: bool,
    /// Tokens of this user issued before this instant (Unix milliseconds) are void.
    pub not_before_millis: Option<i64>,
    /// The user's account generation (see [`Guard::account_changed`]).
    pub generation: u64,
}

/// Where the shared security state lives.
#[derive(Clone, Debug)]
pub enum Guard {
    /// Redis, shared by replicas.
    Redis(RedisGuard),
    /// This process.
    Memory(MemoryGuard),
}

macro_rules! dispatch {
    ($self:ident, $guard:ident => $call:expr) => {
        match $self {
            Guard::Redis($guard) => $call.await,
            Guard::Memory($guard) => $call.await,
        }
    };
}

impl Guard {
    /// An in-process guard.
    pub fn memory() -> Self {
        Self::Memory(MemoryGuard::default())
    }

    /// Checks and, when every key admits it, counts one request against each `(key, limit)`:
    /// atomically, so concurrent requests on several replicas never over-admit.
    pub async fn check_rate(&self, checks: &[(String, Limit)]) -> Result<Decision, GuardError> {
        dispatch!(self, guard => guard.check_rate(checks))
    }

    /// Revokes one access token until it would have expired anyway.
    pub async fn revoke_token(&self, jti: &str, remaining_life: Duration) -> Result<(), GuardError> {
        dispatch!(self, guard => guard.revoke_token(jti, remaining_life))
    }

    /// Voids every token of `user` issued before `at_millis`, for `horizon` (the access-token life).
    pub async fn set_not_before(&self, user: UserId, at_millis: i64, horizon: Duration) -> Result<(), GuardError> {
        dispatch!(self, guard => guard.set_not_before(user, at_millis, horizon))
    }

    /// Ends a whole session (refresh-token family) until its access tokens would have expired.
    pub async fn revoke_session(&self, family: Uuid, remaining_life: Duration) -> Result<(), GuardError> {
        dispatch!(self, guard => guard.revoke_session(family, remaining_life))
    }

    /// Moves `user`'s account generation on: called after every write to the user's record or
    /// usage counts, so that a copy any replica keeps under an older generation is never served
    /// again (see [`crate::auth::accounts_cache`]).
    pub async fn account_changed(&self, user: UserId) -> Result<(), GuardError> {
        dispatch!(self, guard => guard.account_changed(user))
    }

    /// The user's account generation now.
    pub async fn account_generation(&self, user: UserId) -> Result<u64, GuardError> {
        dispatch!(self, guard => guard.account_generation(user))
    }

    /// Reads a token's standing (its id, its session, its user's cut-off and account generation),
    /// in one round trip.
    pub async fn token_standing(&self, jti: &str, family: Uuid, user: UserId) -> Result<TokenStanding, GuardError> {
        dispatch!(self, guard => guard.token_standing(jti, family, user))
    }

    /// Starts a password attempt on an account name, atomically: `Some(wait)` when the account's
    /// back-off says to wait (nothing is counted), otherwise `None` with the attempt counted as a
    /// failure until [`Guard::clear_login_failures`] says it succeeded. Counting first means
    /// attempts sent all at once cannot slip past the back-off.
    pub async fn begin_login_attempt(
        &self,
        account: &str,
        backoff: crate::limits::login::Backoff,
    ) -> Result<Option<Duration>, GuardError> {
        dispatch!(self, guard => guard.begin_login_attempt(account, backoff))
    }

    /// Forgets the failures of an account name after a successful login.
    pub async fn clear_login_failures(&self, account: &str) -> Result<(), GuardError> {
        dispatch!(self, guard => guard.clear_login_failures(account))
    }

    /// Starts an upload of `user` unless they already have `at_once` in progress, on any replica
    /// sharing this guard. An upload not ended within `lease` (its replica died) is forgotten.
    pub async fn begin_upload(
        &self,
        user: UserId,
        upload: Uuid,
        at_once: usize,
        lease: Duration,
    ) -> Result<bool, GuardError> {
        dispatch!(self, guard => guard.begin_upload(user, upload, at_once, lease))
    }

    /// Ends an upload of [`Guard::begin_upload`].
    pub async fn end_upload(&self, user: UserId, upload: Uuid) -> Result<(), GuardError> {
        dispatch!(self, guard => guard.end_upload(user, upload))
    }

    /// Checks the backend answers, for `/readyz`.
    pub async fn ping(&self) -> Result<(), GuardError> {
        dispatch!(self, guard => guard.ping())
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
