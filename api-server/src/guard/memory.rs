//! The in-process guard, for a single replica.
//!
//! Every entry expires (a rate-limit bucket when it is full again, a revocation when its tokens
//! have expired, failed logins after [`FAILURE_MEMORY`]); [`Expiring`] keeps a queue of expiry
//! times beside each map and drops what has expired on every access, so the cost of a check does
//! not grow with the number of clients.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use finagent_core::UserId;
use finagent_platform::store::{AnyStore, Revocation, RevocationStore};
use uuid::Uuid;

use super::{GuardError, TokenStanding};
use crate::limits::login::{self, FAILURE_MEMORY};
use crate::limits::rate::{self, Decision, Limit};

/// A map whose entries expire at a time (microseconds since the guard's epoch).
#[derive(Debug)]
pub(crate) struct Expiring<K, V> {
    entries: HashMap<K, (V, u64)>,
    /// Expiry times, earliest first; an entry updated since leaves a stale item, skipped.
    queue: BinaryHeap<Reverse<(u64, K)>>,
    /// Queue items looked at while dropping expired entries, for tests.
    examined: u64,
}

impl<K: Hash + Eq + Ord + Clone, V> Default for Expiring<K, V> {
    fn default() -> Self {
        Self { entries: HashMap::new(), queue: BinaryHeap::new(), examined: 0 }
    }
}

impl<K: Hash + Eq + Ord + Clone, V> Expiring<K, V> {
    /// Drops the entries expired at `now`: only those, however many live ones there are.
    fn purge(&mut self, now: u64) {
        while let Some(Reverse((expires, _))) = self.queue.peek() {
            if *expires > now {
                break;
            }
            let Some(Reverse((expires, key))) = self.queue.pop() else { break };
            self.examined += 1;
            if self.entries.get(&key).is_some_and(|(_, current)| *current == expires) {
                self.entries.remove(&key);
            }
        }
    }

    fn get(&mut self, key: &K, now: u64) -> Option<&V> {
        self.purge(now);
        self.entries.get(key).map(|(value, _)| value)
    }

    fn insert(&mut self, key: K, value: V, expires: u64, now: u64) {
        self.purge(now);
        self.queue.push(Reverse((expires, key.clone())));
        self.entries.insert(key, (value, expires));
    }

    fn remove(&mut self, key: &K) {
        self.entries.remove(key);
    }

    /// Live entries.
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[derive(Debug, Default)]
struct State {
    /// Rate-limit TATs in microseconds since `epoch`, expiring when the bucket is full again.
    buckets: Expiring<String, u64>,
    revoked: Expiring<String, ()>,
    revoked_sessions: Expiring<Uuid, ()>,
    /// Account generations, one per user whose account changed since the process started.
    generations: HashMap<UserId, u64>,
    not_before: Expiring<UserId, i64>,
    /// Failures in a row and when the last one was, in microseconds since `epoch`.
    failures: Expiring<String, (u32, u64)>,
    /// Each user's uploads in progress, with when they started.
    uploads: HashMap<UserId, Vec<(Uuid, Instant)>>,
}

/// The guard state of this process; with a store, its revocations are also written there and
/// read back at start, so that a restart does not bring logged-out or disabled tokens back.
#[derive(Clone, Debug)]
pub struct MemoryGuard {
    epoch: Instant,
    state: Arc<Mutex<State>>,
    persist: Option<AnyStore>,
}

impl Default for MemoryGuard {
    fn default() -> Self {
        Self { epoch: Instant::now(), state: Arc::default(), persist: None }
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

impl MemoryGuard {
    /// A guard that keeps its revocations in `store` too, starting with those still in force.
    pub async fn persisted(store: AnyStore) -> Result<Self, GuardError> {
        let now = chrono::Utc::now();
        let live = store.live_revocations(now).await.map_err(GuardError::unavailable("load_revocations"))?;
        let guard = Self { persist: Some(store), ..Self::default() };
        let at = guard.now_micros();
        guard.with(|state| {
            for revocation in live {
                let until = at.saturating_add(micros((revocation.until - now).to_std().unwrap_or_default()));
                if let Some(jti) = revocation.key.strip_prefix("token:") {
                    state.revoked.insert(jti.to_owned(), (), until, at);
                } else if let Some(family) = revocation.key.strip_prefix("session:").and_then(|id| id.parse().ok()) {
                    state.revoked_sessions.insert(family, (), until, at);
                } else if let Some(user) = revocation.key.strip_prefix("user:").and_then(|id| id.parse().ok()) {
                    state.not_before.insert(user, revocation.value, until, at);
                }
            }
        })?;
        Ok(guard)
    }

    async fn remember(&self, key: String, value: i64, life: Duration) -> Result<(), GuardError> {
        let Some(store) = &self.persist else { return Ok(()) };
        let until = chrono::Utc::now() + chrono::Duration::from_std(life).unwrap_or(chrono::Duration::MAX);
        store
            .save_revocation(&Revocation { key, value, until })
            .await
            .map_err(GuardError::unavailable("save_revocation"))
    }

    fn with<T>(&self, work: impl FnOnce(&mut State) -> T) -> Result<T, GuardError> {
        let mut state =
            self.state.lock().map_err(|_| GuardError::unavailable("lock")("the guard state is poisoned"))?;
        Ok(work(&mut state))
    }

    fn now_micros(&self) -> u64 {
        micros(self.epoch.elapsed())
    }

    /// Live rate-limit buckets, and queue items examined so far while dropping expired ones.
    pub fn bucket_stats(&self) -> (usize, u64) {
        self.with(|state| (state.buckets.len(), state.buckets.examined)).unwrap_or_default()
    }

    pub(super) async fn check_rate(&self, checks: &[(String, Limit)]) -> Result<Decision, GuardError> {
        let now = self.now_micros();
        self.with(|state| {
            let steps: Vec<_> = checks
                .iter()
                .map(|(key, limit)| rate::gcra(state.buckets.get(key, now).copied(), now, *limit))
                .collect();
            let decision = rate::combine(steps.iter().map(|(decision, _)| *decision));
            if decision.allowed {
                for ((key, _), (_, next)) in checks.iter().zip(steps) {
                    if let Some(next) = next {
                        // A bucket is full again, and can be forgotten, once its TAT has passed.
                        state.buckets.insert(key.clone(), next, next, now);
                    }
                }
            }
            decision
        })
    }

    pub(super) async fn revoke_token(&self, jti: &str, remaining_life: Duration) -> Result<(), GuardError> {
        let now = self.now_micros();
        self.with(|state| state.revoked.insert(jti.to_owned(), (), now.saturating_add(micros(remaining_life)), now))?;
        self.remember(format!("token:{jti}"), 0, remaining_life).await
    }

    pub(super) async fn set_not_before(
        &self,
        user: UserId,
        at_millis: i64,
        horizon: Duration,
    ) -> Result<(), GuardError> {
        let now = self.now_micros();
        self.with(|state| {
            let at = state.not_before.get(&user, now).copied().unwrap_or(at_millis).max(at_millis);
            state.not_before.insert(user, at, now.saturating_add(micros(horizon)), now);
        })?;
        self.remember(format!("user:{user}"), at_millis, horizon).await
    }

    pub(super) async fn revoke_session(&self, family: Uuid, remaining_life: Duration) -> Result<(), GuardError> {
        let now = self.now_micros();
        self.with(|state| {
            state.revoked_sessions.insert(family, (), now.saturating_add(micros(remaining_life)), now);
        })?;
        self.remember(format!("session:{family}"), 0, remaining_life).await
    }

    pub(super) async fn token_standing(
        &self,
        jti: &str,
        family: Uuid,
        user: UserId,
    ) -> Result<TokenStanding, GuardError> {
        let now = self.now_micros();
        self.with(|state| TokenStanding {
            revoked: state.revoked.get(&jti.to_owned(), now).is_some()
                || state.revoked_sessions.get(&family, now).is_some(),
            not_before_millis: state.not_before.get(&user, now).copied(),
            generation: state.generations.get(&user).copied().unwrap_or(0),
        })
    }

    pub(super) async fn account_changed(&self, user: UserId) -> Result<(), GuardError> {
        self.with(|state| *state.generations.entry(user).or_default() += 1)
    }

    pub(super) async fn account_generation(&self, user: UserId) -> Result<u64, GuardError> {
        self.with(|state| state.generations.get(&user).copied().unwrap_or(0))
    }

    pub(super) async fn begin_login_attempt(
        &self,
        account: &str,
        backoff: login::Backoff,
    ) -> Result<Option<Duration>, GuardError> {
        let now = self.now_micros();
        let memory = micros(FAILURE_MEMORY);
        self.with(|state| {
            let key = account.to_owned();
            let (failures, last) = state.failures.get(&key, now).copied().unwrap_or((0, now));
            let since = Duration::from_micros(now.saturating_sub(last));
            if let Some(wait) = login::wait(failures, since, backoff) {
                return Some(wait);
            }
            state.failures.insert(key, (failures.saturating_add(1), now), now.saturating_add(memory), now);
            None
        })
    }

    pub(super) async fn clear_login_failures(&self, account: &str) -> Result<(), GuardError> {
        self.with(|state| state.failures.remove(&account.to_owned()))
    }

    pub(super) async fn begin_upload(
        &self,
        user: UserId,
        upload: Uuid,
        at_once: usize,
        lease: Duration,
    ) -> Result<bool, GuardError> {
        self.with(|state| {
            let now = Instant::now();
            let uploads = state.uploads.entry(user).or_default();
            uploads.retain(|(_, started)| now.duration_since(*started) < lease);
            if uploads.len() >= at_once {
                return false;
            }
            uploads.push((upload, now));
            true
        })
    }

    pub(super) async fn end_upload(&self, user: UserId, upload: Uuid) -> Result<(), GuardError> {
        self.with(|state| {
            if let Some(uploads) = state.uploads.get_mut(&user) {
                uploads.retain(|(id, _)| *id != upload);
                if uploads.is_empty() {
                    state.uploads.remove(&user);
                }
            }
        })
    }

    pub(super) async fn ping(&self) -> Result<(), GuardError> {
        self.with(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tens of thousands of live buckets are never scanned: a check drops only what expired.
    #[tokio::test]
    async fn checks_do_not_scan_live_buckets() {
        let guard = MemoryGuard::default();
        // Slow refill: every bucket stays live for the whole test.
        let limit = Limit::per_second(0.001, 5);
        for client in 0..20_000 {
            guard.check_rate(&[(format!("client-{client}"), limit)]).await.expect("check");
        }
        for _ in 0..1_000 {
            guard.check_rate(&[("client-0".to_owned(), limit)]).await.expect("check");
        }
        let (live, examined) = guard.bucket_stats();
        assert_eq!(live, 20_000);
        assert_eq!(examined, 0, "no live bucket was looked at");
    }

    #[test]
    fn expired_entries_go_and_updated_ones_stay() {
        let mut map: Expiring<String, u32> = Expiring::default();
        map.insert("a".into(), 1, 10, 0);
        map.insert("b".into(), 2, 20, 0);
        map.insert("a".into(), 3, 30, 5);
        assert_eq!(map.get(&"a".into(), 15), Some(&3), "the update moved its expiry");
        assert_eq!(map.get(&"b".into(), 25), None);
        assert_eq!(map.len(), 1);
        assert_eq!(map.get(&"a".into(), 30), None);
        assert_eq!(map.len(), 0);
    }
}
