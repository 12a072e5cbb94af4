//! Passwords: the policy (8–128 characters, not a common password, nothing else), argon2id
//! hashing off the async threads, and re-hashing when the parameters rise.
//!
//! Parameters are at least OWASP's argon2id minimum: 19 MiB of memory, 2 iterations, 1 lane.
//! Verification reads the parameters from the stored PHC string, so raising them here upgrades each
//! hash at its owner's next login. An unknown user name is verified against a dummy hash with the
//! same parameters, so it costs the same time as a wrong password.

use std::collections::HashSet;
use std::sync::LazyLock;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

/// Shortest password accepted.
pub const MIN_LENGTH: usize = 8;

/// Longest password accepted (never truncated).
pub const MAX_LENGTH: usize = 128;

static COMMON: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| include_str!("../../data/common-passwords.txt").lines().filter(|line| !line.is_empty()).collect());

/// Why a password is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRejected {
    /// Fewer than 8 characters.
    #[error("the password must have at least {MIN_LENGTH} characters")]
    TooShort,
    /// More than 128 characters.
    #[error("the password must have at most {MAX_LENGTH} characters")]
    TooLong,
    /// On the list of common passwords.
    #[error("this password is among the most common ones; choose another")]
    Common,
}

/// Checks a new password against the policy. Length counts characters, not bytes.
pub fn check_policy(password: &str, username: &str) -> Result<(), PasswordRejected> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(PasswordRejected::TooShort);
    }
    if length > MAX_LENGTH {
        return Err(PasswordRejected::TooLong);
    }
    let lowered = password.to_lowercase();
    if COMMON.contains(lowered.as_str()) || lowered == username {
        return Err(PasswordRejected::Common);
    }
    Ok(())
}

/// How many common passwords are bundled.
pub fn common_password_count() -> usize {
    COMMON.len()
}

/// The argon2id parameters new hashes are made with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    pub iterations: u32,
    pub lanes: u32,
}

impl Default for HashParams {
    /// OWASP's argon2id minimum.
    fn default() -> Self {
        Self { memory_kib: 19 * 1024, iterations: 2, lanes: 1 }
    }
}

/// Why hashing failed (never a wrong password: that is [`Verified::No`]).
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every hashing slot stayed busy.
    #[error("password hashing is overloaded")]
    Busy,
    /// The hash could not be computed or read.
    #[error("failed to hash a password: {0}")]
    Failed(String),
}

/// Hashes and verifies passwords with fixed parameters, at most two per CPU at a time: each takes
/// 19 MiB and tens of milliseconds, so a flood of logins waits (then gets 503) instead of
/// exhausting memory and the blocking pool the store also uses.
#[derive(Clone, Debug)]
pub struct Hasher {
    params: HashParams,
    dummy: String,
    permits: std::sync::Arc<tokio::sync::Semaphore>,
}

/// How long a hash waits for a free slot before the request is refused as overloaded.
const QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The outcome of a verification.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    /// The password is wrong (or the user unknown).
    No,
    /// Right, and the hash is current.
    Yes,
    /// Right, but the hash uses older parameters: here is the new hash to store.
    YesRehashed(String),
}

impl Hasher {
    /// A hasher with as many hashes at once as the memory limit allows
    /// ([`crate::limits::memory::hash_slots`]); builds the dummy hash used for unknown users.
    pub fn new(params: HashParams) -> Result<Self, HashError> {
        Self::within(params, crate::limits::memory::memory_limit(None))
    }

    /// A hasher with as many hashes at once as `limit` bytes of memory allow.
    pub fn within(params: HashParams, limit: u64) -> Result<Self, HashError> {
        let cpus = std::thread::available_parallelism().map_or(1, |cpus| cpus.get());
        let hash_bytes = u64::from(params.memory_kib) * 1024;
        Self::with_slots(params, crate::limits::memory::hash_slots(cpus, limit, hash_bytes))
    }

    /// A hasher running at most `slots` hashes at once.
    pub fn with_slots(params: HashParams, slots: usize) -> Result<Self, HashError> {
        let dummy = hash_now(params, "dummy password for unknown users")?;
        Ok(Self { params, dummy, permits: std::sync::Arc::new(tokio::sync::Semaphore::new(slots.max(1))) })
    }

    /// How many hashes may run at once.
    pub fn slots(&self) -> usize {
        self.permits.available_permits()
    }

    async fn slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, HashError> {
        tokio::time::timeout(QUEUE_WAIT, std::sync::Arc::clone(&self.permits).acquire_owned())
            .await
            .map_err(|_| HashError::Busy)?
            .map_err(|error| HashError::Failed(error.to_string()))
    }

    /// Hashes a new password, on the blocking pool.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        let params = self.params;
        let slot = self.slot().await?;
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            hash_now(params, &password)
        })
        .await
        .map_err(|error| HashError::Failed(error.to_string()))?
    }

    /// Verifies `password` against `stored`, or against the dummy hash when there is no user, so
    /// both cases take the same time.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<Verified, HashError> {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy.clone());
        let params = self.params;
        let slot = self.slot().await?;
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let parsed = PasswordHash::new(&stored).map_err(|error| HashError::Failed(error.to_string()))?;
            let right = argon2(params)?.verify_password(password.as_bytes(), &parsed).is_ok();
            if !(right && known) {
                return Ok(Verified::No);
            }
            if is_current(&parsed, params) {
                Ok(Verified::Yes)
            } else {
                Ok(Verified::YesRehashed(hash_now(params, &password)?))
            }
        })
        .await
        .map_err(|error| HashError::Failed(error.to_string()))?
    }
}

fn argon2(params: HashParams) -> Result<Argon2<'static>, HashError> {
    let params = Params::new(params.memory_kib, params.iterations, params.lanes, None)
        .map_err(|error| HashError::Failed(error.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn hash_now(params: HashParams, password: &str) -> Result<String, HashError> {
    argon2(params)?
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|error| HashError::Failed(error.to_string()))
}

fn is_current(parsed: &PasswordHash, params: HashParams) -> bool {
    let Ok(stored) = Params::try_from(parsed) else { return false };
    parsed.algorithm.as_str() == "argon2id"
        && stored.m_cost() >= params.memory_kib
        && stored.t_cost() >= params.iterations
        && stored.p_cost() >= params.lanes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_checks_length_in_characters_and_common_passwords_only() {
        assert_eq!(check_policy("short", "ann"), Err(PasswordRejected::TooShort));
        assert_eq!(check_policy("PassWord", "ann"), Err(PasswordRejected::Common));
        assert_eq!(check_policy("qwertyuiop", "ann"), Err(PasswordRejected::Common));
        assert_eq!(check_policy("anna-karenina", "anna-karenina"), Err(PasswordRejected::Common));
        assert_eq!(check_policy(&"x".repeat(129), "ann"), Err(PasswordRejected::TooLong));
        // No composition rules: a long lower-case passphrase is fine; so are 8 multi-byte characters.
        assert_eq!(check_policy("correct horse battery staple", "ann"), Ok(()));
        assert_eq!(check_policy("ééééééé€", "ann"), Ok(()));
        assert_eq!(check_policy(&"y".repeat(128), "ann"), Ok(()));
        assert!(common_password_count() >= 3_000);
    }

    #[tokio::test]
    async fn hashes_are_argon2id_with_at_least_the_owasp_parameters() {
        let hasher = Hasher::new(HashParams::default()).expect("hasher");
        let hash = hasher.hash("a long enough passphrase".into()).await.expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        let verified = hasher.verify("a long enough passphrase".into(), Some(hash.clone())).await.expect("verify");
        assert_eq!(verified, Verified::Yes);
        assert_eq!(hasher.verify("a wrong passphrase".into(), Some(hash)).await.expect("verify"), Verified::No);
    }

    #[tokio::test]
    async fn a_password_is_never_truncated() {
        let hasher = Hasher::new(HashParams::default()).expect("hasher");
        let long = "p".repeat(128);
        let hash = hasher.hash(long.clone()).await.expect("hash");
        let almost = format!("{}q", &long[..127]);
        assert_eq!(hasher.verify(almost, Some(hash)).await.expect("verify"), Verified::No);
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies_even_with_the_dummy_password() {
        let hasher = Hasher::new(HashParams::default()).expect("hasher");
        let verified = hasher.verify("dummy password for unknown users".into(), None).await.expect("verify");
        assert_eq!(verified, Verified::No);
    }

    #[tokio::test]
    async fn raised_parameters_rehash_at_the_next_login() {
        let weak = HashParams { memory_kib: 8 * 1024, iterations: 1, lanes: 1 };
        let old = Hasher::new(weak).expect("hasher").hash("a long enough passphrase".into()).await.expect("hash");
        let current = Hasher::new(HashParams::default()).expect("hasher");
        match current.verify("a long enough passphrase".into(), Some(old)).await.expect("verify") {
            Verified::YesRehashed(new) => assert!(new.contains("m=19456,t=2,p=1"), "{new}"),
            other => panic!("expected a rehash, got {other:?}"),
        }
    }
}
