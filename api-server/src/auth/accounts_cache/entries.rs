//! The copies themselves: each user's record and usage counts under the generation they were read at.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use finagent_core::UserId;
use finagent_core::account::User;
use finagent_platform::store::Usage;

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
