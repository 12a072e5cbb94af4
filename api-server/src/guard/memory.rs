//! The in-process guard, for a single replica.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use finagent_core::UserId;
use uuid::Uuid;

use super::{GuardError, TokenStanding};
use crate::limits::login::{self, FAILURE_MEMORY};
use crate::limits::rate::{self, Decision, Limit};

/// Entries kept before expired ones are swept.
const SWEEP_ABOVE: usize = 10_000;

#[derive(Debug, Default)]
struct State {
    /// Rate-limit TATs in microseconds since `epoch`.
    buckets: HashMap<String, u64>,
    revoked: HashMap<String, Instant>,
    revoked_sessions: HashMap<Uuid, Instant>,
    not_before: HashMap<UserId, (i64, Instant)>,
    failures: HashMap<String, (u32, Instant)>,
}

/// The guard state of this process.
#[derive(Clone, Debug)]
pub struct MemoryGuard {
    epoch: Instant,
    state: Arc<Mutex<State>>,
}

impl Default for MemoryGuard {
    fn default() -> Self {
        Self { epoch: Instant::now(), state: Arc::default() }
    }
}

impl MemoryGuard {
    fn with<T>(&self, work: impl FnOnce(&mut State) -> T) -> Result<T, GuardError> {
        let mut state = self.state.lock().map_err(|_| GuardError("the guard state is poisoned".into()))?;
        Ok(work(&mut state))
    }

    fn now_micros(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    pub(super) async fn check_rate(&self, checks: &[(String, Limit)]) -> Result<Decision, GuardError> {
        let now = self.now_micros();
        self.with(|state| {
            if state.buckets.len() > SWEEP_ABOVE {
                state.buckets.retain(|_, tat| *tat > now);
            }
            let steps: Vec<_> =
                checks.iter().map(|(key, limit)| rate::gcra(state.buckets.get(key).copied(), now, *limit)).collect();
            let decision = rate::combine(steps.iter().map(|(decision, _)| *decision));
            if decision.allowed {
                for ((key, _), (_, next)) in checks.iter().zip(steps) {
                    if let Some(next) = next {
                        state.buckets.insert(key.clone(), next);
                    }
                }
            }
            decision
        })
    }

    pub(super) async fn revoke_token(&self, jti: &str, remaining_life: Duration) -> Result<(), GuardError> {
        let until = Instant::now() + remaining_life;
        self.with(|state| {
            if state.revoked.len() > SWEEP_ABOVE {
                let now = Instant::now();
                state.revoked.retain(|_, until| *until > now);
            }
            state.revoked.insert(jti.to_owned(), until);
        })
    }

    pub(super) async fn set_not_before(
        &self,
        user: UserId,
        at_millis: i64,
        horizon: Duration,
    ) -> Result<(), GuardError> {
        let until = Instant::now() + horizon;
        self.with(|state| {
            let entry = state.not_before.entry(user).or_insert((at_millis, until));
            *entry = (entry.0.max(at_millis), until);
        })
    }

    pub(super) async fn revoke_session(&self, family: Uuid, remaining_life: Duration) -> Result<(), GuardError> {
        let until = Instant::now() + remaining_life;
        self.with(|state| {
            if state.revoked_sessions.len() > SWEEP_ABOVE {
                let now = Instant::now();
                state.revoked_sessions.retain(|_, until| *until > now);
            }
            state.revoked_sessions.insert(family, until);
        })
    }

    pub(super) async fn token_standing(
        &self,
        jti: &str,
        family: Uuid,
        user: UserId,
    ) -> Result<TokenStanding, GuardError> {
        let now = Instant::now();
        self.with(|state| TokenStanding {
            revoked: state.revoked.get(jti).is_some_and(|until| *until > now)
                || state.revoked_sessions.get(&family).is_some_and(|until| *until > now),
            not_before_millis: state.not_before.get(&user).filter(|(_, until)| *until > now).map(|(at, _)| *at),
        })
    }

    pub(super) async fn begin_login_attempt(
        &self,
        account: &str,
        backoff: login::Backoff,
    ) -> Result<Option<Duration>, GuardError> {
        self.with(|state| {
            if state.failures.len() > SWEEP_ABOVE {
                state.failures.retain(|_, (_, last)| last.elapsed() < FAILURE_MEMORY);
            }
            let entry = state.failures.entry(account.to_owned()).or_insert((0, Instant::now()));
            if entry.1.elapsed() >= FAILURE_MEMORY {
                entry.0 = 0;
            }
            if let Some(wait) = login::wait(entry.0, entry.1.elapsed(), backoff) {
                return Some(wait);
            }
            *entry = (entry.0.saturating_add(1), Instant::now());
            None
        })
    }

    pub(super) async fn clear_login_failures(&self, account: &str) -> Result<(), GuardError> {
        self.with(|state| {
            state.failures.remove(account);
        })
    }

    pub(super) async fn ping(&self) -> Result<(), GuardError> {
        self.with(|_| ())
    }
}
