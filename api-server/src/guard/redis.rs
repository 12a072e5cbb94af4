//! The guard on Redis: one atomic GCRA script over several keys, and plain keys with expiries
//! for revocations and failed logins. The script takes the time from Redis itself, so replicas with
//! skewed clocks still share one notion of "now".

use std::time::Duration;

use finagent_core::UserId;
use finagent_core::names::InstanceName;
use redis::Script;
use redis::aio::ConnectionManager;
use uuid::Uuid;

use super::{GuardError, TokenStanding};
use crate::limits::login::{self, FAILURE_MEMORY};
use crate::limits::rate::{Decision, Limit};

/// GCRA over every key; writes only when all admit. ARGV holds, per key, the interval and the
/// tolerance in microseconds. Returns {allowed, remaining, retry_after_us, reset_us}.
const GCRA: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local allowed, remaining, retry, reset = 1, -1, 0, 0
local next_tats = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local next_tat = tat + interval
  local ahead = next_tat - now
  if ahead > tolerance then
    allowed = 0
    remaining = 0
    if ahead - tolerance > retry then retry = ahead - tolerance end
    if tat - now > reset then reset = tat - now end
  else
    next_tats[i] = next_tat
    local left = math.floor((tolerance - ahead) / interval)
    if remaining < 0 or left < remaining then remaining = left end
    if ahead > reset then reset = ahead end
  end
end
if allowed == 1 then
  for i, key in ipairs(KEYS) do
    local ttl = math.max(1, math.ceil((next_tats[i] - now) / 1000))
    redis.call('SET', key, string.format('%.0f', next_tats[i]), 'PX', string.format('%d', ttl))
  end
end
if remaining < 0 then remaining = 0 end
return {allowed, remaining, retry, reset}
";

/// One password attempt on an account: refuses with the milliseconds left when the back-off says
/// to wait, otherwise counts the attempt (as a failure until cleared) and returns 0. ARGV: free
/// failures, the longest delay and the memory of failures, both in milliseconds.
const LOGIN_ATTEMPT: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local count = tonumber(redis.call('HGET', KEYS[1], 'count') or '0')
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0')
local free, cap, memory = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if count >= free then
  local exponent = math.min(count - free, 16)
  local left = math.min((2 ^ exponent) * 1000, cap) - (now - last)
  if left > 0 then return math.ceil(left) end
end
redis.call('HINCRBY', KEYS[1], 'count', 1)
redis.call('HSET', KEYS[1], 'last', string.format('%d', now))
redis.call('PEXPIRE', KEYS[1], memory)
return 0
";

/// A user's token cut-off: keeps the later of the stored and the given one (ARGV[1], Unix
/// milliseconds), and the longer of the remaining and the given horizon (ARGV[2], milliseconds).
const NOT_BEFORE: &str = r"
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local ttl = redis.call('PTTL', KEYS[1])
if tonumber(ARGV[1]) > current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', math.max(tonumber(ARGV[2]), ttl))
elseif ttl < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// One more upload of a user (KEYS[1], a sorted set of upload ids by start time), unless they have
/// ARGV[2] in progress; uploads older than the lease (ARGV[3], milliseconds) are forgotten, as a
/// replica that died holding them would never end them. ARGV[1] is the upload's id. Returns 1 when
/// it may start.
const BEGIN_UPLOAD: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local lease = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - lease)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease)
return 1
";

/// The guard state in Redis.
#[derive(Clone)]
pub struct RedisGuard {
    connection: ConnectionManager,
    prefix: String,
    gcra: Script,
    login_attempt: Script,
    not_before: Script,
    begin_upload: Script,
}

impl std::fmt::Debug for RedisGuard {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("RedisGuard").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisGuard {
    /// Connects to Redis; keys are prefixed with `finagent:{instance}:`.
    pub async fn connect(url: &str, instance: &InstanceName) -> Result<Self, GuardError> {
        let client = redis::Client::open(url).map_err(GuardError::unavailable("connect"))?;
        let connection = ConnectionManager::new(client).await.map_err(GuardError::unavailable("connect"))?;
        Ok(Self::with_prefix(connection, format!("finagent:{instance}:")))
    }

    /// A guard on an open connection with an explicit key prefix (tests give each run its own).
    pub fn with_prefix(connection: ConnectionManager, prefix: String) -> Self {
        Self {
            connection,
            prefix,
            gcra: Script::new(GCRA),
            login_attempt: Script::new(LOGIN_ATTEMPT),
            not_before: Script::new(NOT_BEFORE),
            begin_upload: Script::new(BEGIN_UPLOAD),
        }
    }

    fn key(&self, parts: &[&str]) -> String {
        let mut key = self.prefix.clone();
        key.push_str(&parts.join(":"));
        key
    }

    pub(super) async fn check_rate(&self, checks: &[(String, Limit)]) -> Result<Decision, GuardError> {
        let mut invocation = self.gcra.prepare_invoke();
        for (key, limit) in checks {
            invocation.key(self.key(&["rl", key]));
            invocation.arg(limit.interval_micros).arg(limit.tolerance_micros());
        }
        let mut connection = self.connection.clone();
        let (allowed, remaining, retry, reset): (i64, i64, i64, i64) =
            invocation.invoke_async(&mut connection).await.map_err(GuardError::unavailable("check_rate"))?;
        let micros = |value: i64| Duration::from_micros(u64::try_from(value).unwrap_or(0));
        Ok(Decision {
            allowed: allowed == 1,
            remaining: u32::try_from(remaining).unwrap_or(0),
            retry_after: micros(retry),
            reset: micros(reset),
        })
    }

    /// `SET key value PX ttl`: revocations and cut-offs only need to outlive the access tokens.
    async fn set_expiring(
        &self,
        key: String,
        value: impl redis::ToRedisArgs + Send + Sync,
        ttl: Duration,
    ) -> Result<(), GuardError> {
        let mut connection = self.connection.clone();
        redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("PX")
            .arg(millis(ttl))
            .query_async::<()>(&mut connection)
            .await
            .map_err(GuardError::unavailable("set_expiring"))
    }

    pub(super) async fn revoke_token(&self, jti: &str, remaining_life: Duration) -> Result<(), GuardError> {
        self.set_expiring(self.key(&["auth", "revoked", jti]), 1, remaining_life).await
    }

    pub(super) async fn set_not_before(
        &self,
        user: UserId,
        at_millis: i64,
        horizon: Duration,
    ) -> Result<(), GuardError> {
        // The latest cut-off wins, whichever write lands last, and the longest horizon holds.
        let mut connection = self.connection.clone();
        let mut invocation = self.not_before.prepare_invoke();
        invocation
            .key(self.key(&["auth", "not-before", &user.to_string()]))
            .arg(at_millis)
            .arg(u64::try_from(horizon.as_millis()).unwrap_or(u64::MAX).max(1));
        let _: i64 =
            invocation.invoke_async(&mut connection).await.map_err(GuardError::unavailable("set_not_before"))?;
        Ok(())
    }

    pub(super) async fn revoke_session(&self, family: Uuid, remaining_life: Duration) -> Result<(), GuardError> {
        self.set_expiring(self.key(&["auth", "revoked-session", &family.to_string()]), 1, remaining_life).await
    }

    pub(super) async fn token_standing(
        &self,
        jti: &str,
        family: Uuid,
        user: UserId,
    ) -> Result<TokenStanding, GuardError> {
        let mut connection = self.connection.clone();
        let user = user.to_string();
        let (revoked, session_revoked, not_before, generation): (
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<u64>,
        ) = redis::cmd("MGET")
            .arg(self.key(&["auth", "revoked", jti]))
            .arg(self.key(&["auth", "revoked-session", &family.to_string()]))
            .arg(self.key(&["auth", "not-before", &user]))
            .arg(self.key(&["auth", "generation", &user]))
            .query_async(&mut connection)
            .await
            .map_err(GuardError::unavailable("token_standing"))?;
        Ok(TokenStanding {
            revoked: revoked.is_some() || session_revoked.is_some(),
            not_before_millis: not_before,
            generation: generation.unwrap_or(0),
        })
    }

    /// `INCR`, without expiry: a generation that went back to zero could match a copy made before.
    pub(super) async fn account_changed(&self, user: UserId) -> Result<(), GuardError> {
        let mut connection = self.connection.clone();
        redis::cmd("INCR")
            .arg(self.key(&["auth", "generation", &user.to_string()]))
            .query_async::<()>(&mut connection)
            .await
            .map_err(GuardError::unavailable("account_changed"))
    }

    pub(super) async fn account_generation(&self, user: UserId) -> Result<u64, GuardError> {
        let mut connection = self.connection.clone();
        let generation: Option<u64> = redis::cmd("GET")
            .arg(self.key(&["auth", "generation", &user.to_string()]))
            .query_async(&mut connection)
            .await
            .map_err(GuardError::unavailable("account_generation"))?;
        Ok(generation.unwrap_or(0))
    }

    pub(super) async fn begin_login_attempt(
        &self,
        account: &str,
        backoff: login::Backoff,
    ) -> Result<Option<Duration>, GuardError> {
        let mut invocation = self.login_attempt.prepare_invoke();
        invocation
            .key(self.key(&["auth", "failures", account]))
            .arg(backoff.free_failures)
            .arg(u64::try_from(backoff.max_delay.as_millis()).unwrap_or(u64::MAX))
            .arg(u64::try_from(FAILURE_MEMORY.as_millis()).unwrap_or(u64::MAX));
        let mut connection = self.connection.clone();
        let wait: i64 =
            invocation.invoke_async(&mut connection).await.map_err(GuardError::unavailable("begin_login_attempt"))?;
        Ok((wait > 0).then(|| Duration::from_millis(u64::try_from(wait).unwrap_or(0))))
    }

    pub(super) async fn clear_login_failures(&self, account: &str) -> Result<(), GuardError> {
        let mut connection = self.connection.clone();
        redis::cmd("DEL")
            .arg(self.key(&["auth", "failures", account]))
            .query_async::<()>(&mut connection)
            .await
            .map_err(GuardError::unavailable("clear_login_failures"))
    }

    pub(super) async fn begin_upload(
        &self,
        user: UserId,
        upload: Uuid,
        at_once: usize,
        lease: Duration,
    ) -> Result<bool, GuardError> {
        let mut invocation = self.begin_upload.prepare_invoke();
        invocation
            .key(self.key(&["uploads", &user.to_string()]))
            .arg(upload.to_string())
            .arg(at_once)
            .arg(millis(lease));
        let mut connection = self.connection.clone();
        let started: i64 =
            invocation.invoke_async(&mut connection).await.map_err(GuardError::unavailable("begin_upload"))?;
        Ok(started == 1)
    }

    pub(super) async fn end_upload(&self, user: UserId, upload: Uuid) -> Result<(), GuardError> {
        let mut connection = self.connection.clone();
        redis::cmd("ZREM")
            .arg(self.key(&["uploads", &user.to_string()]))
            .arg(upload.to_string())
            .query_async::<()>(&mut connection)
            .await
            .map_err(GuardError::unavailable("end_upload"))
    }

    pub(super) async fn ping(&self) -> Result<(), GuardError> {
        let mut connection = self.connection.clone();
        redis::cmd("PING").query_async::<()>(&mut connection).await.map_err(GuardError::unavailable("ping"))
    }
}
