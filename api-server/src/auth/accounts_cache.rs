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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use finagent_core::UserId;
use finagent_core::account::User;
use finagent_platform::store::{ReceiptStore, Usage, UserStore};

use super::principal::Principal;
use crate::error::AppError;
use crate::state::AppState;

/// The longest a copy is served, whatever its generation says.
pub const MAX_AGE: Duration = Duration::from_secs(60);

/// Copies kept at most; past that, the oldest half is dropped.
const CAPACITY: usize = 50_000;

#[derive(Debug)]
struct Entry {
    generation: u64,
    read_at: Instant,
    user: Arc<User>,
    usage: Usage,
}

/// The copies of this process.
#[derive(Debug, Default)]
pub struct AccountCache {
    entries: Mutex<HashMap<UserId, Entry>>,
}

impl AccountCache {
    /// The copy of `user` read at `generation`, if it is still young enough.
    pub fn get(&self, user: UserId, generation: u64) -> Option<(Arc<User>, Usage)> {
        let entries = self.entries.lock().ok()?;
        let entry = entries.get(&user)?;
        (entry.generation == generation && entry.read_at.elapsed() < MAX_AGE)
            .then(|| (Arc::clone(&entry.user), entry.usage))
    }

    /// Keeps `user` and `usage`, read from the store after `generation` was.
    pub fn put(&self, user: Arc<User>, usage: Usage, generation: u64, read_at: Instant) {
        let Ok(mut entries) = self.entries.lock() else { return };
        if entries.len() >= CAPACITY {
            let mut ages: Vec<Instant> = entries.values().map(|entry| entry.read_at).collect();
            let (_, median, _) = ages.select_nth_unstable(CAPACITY / 2);
            let median = *median;
            entries.retain(|_, entry| entry.read_at > median);
        }
        let newer = entries.get(&user.id).is_some_and(|entry| entry.generation > generation);
        if !newer {
            entries.insert(user.id, Entry { generation, read_at, user, usage });
        }
    }

    /// Copies held.
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |entries| entries.len())
    }

    /// Whether no copy is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> User {
        User {
            id: UserId::new(),
            username: "casey".into(),
            email: "casey@example.com".into(),
            password_hash: "hash".into(),
            role: finagent_core::account::Role::User,
            disabled: false,
            tokens_valid_after: chrono::Utc::now(),
            created_at: chrono::Utc::now(),
            preferences: Default::default(),
        }
    }

    #[test]
    fn a_copy_is_served_only_under_its_generation() {
        let cache = AccountCache::default();
        let user = Arc::new(user());
        let usage = Usage { receipts: 3, image_bytes: 300 };
        cache.put(Arc::clone(&user), usage, 4, Instant::now());
        assert_eq!(cache.get(user.id, 4).map(|(_, usage)| usage), Some(usage));
        assert!(cache.get(user.id, 5).is_none(), "a newer generation means the copy is stale");
        assert!(cache.get(UserId::new(), 4).is_none());
    }

    #[test]
    fn an_older_read_never_replaces_a_newer_one() {
        let cache = AccountCache::default();
        let user = Arc::new(user());
        cache.put(Arc::clone(&user), Usage { receipts: 2, image_bytes: 0 }, 7, Instant::now());
        cache.put(Arc::clone(&user), Usage { receipts: 1, image_bytes: 0 }, 6, Instant::now());
        assert_eq!(cache.get(user.id, 7).map(|(_, usage)| usage.receipts), Some(2));
    }

    #[test]
    fn copies_expire_and_the_cache_stays_bounded() {
        let cache = AccountCache::default();
        let user = Arc::new(user());
        let old = Instant::now().checked_sub(MAX_AGE + Duration::from_secs(1)).expect("an old instant");
        cache.put(Arc::clone(&user), Usage::default(), 1, old);
        assert!(cache.get(user.id, 1).is_none(), "a copy older than MAX_AGE is not served");
        for _ in 0..CAPACITY + 10 {
            let mut other = (*user).clone();
            other.id = UserId::new();
            cache.put(Arc::new(other), Usage::default(), 0, Instant::now());
        }
        assert!(cache.len() <= CAPACITY);
    }
}
