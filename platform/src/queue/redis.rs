//! The job queue on Redis Streams, for the platform (Redis 7.0 commands only).
//!
//! Keys, per instance (see `finagent_core::job::QueueNames`): the job stream with its consumer
//! group, the dead-letter stream, a sorted set of scheduled retries (score: when due, in ms) and
//! one de-duplication key per accepted job id. Every multi-step change is one Lua script, so a
//! crash between steps cannot lose or duplicate a job. Acknowledged entries are deleted, so the
//! stream holds exactly the undelivered and the pending entries.
//!
//! Connections are `ConnectionManager`s, which reconnect by themselves after Redis restarts;
//! blocking reads use their own connection so they never delay other commands.

use std::time::Duration;

use chrono::Utc;
use finagent_core::job::{
    CONSUMER_GROUP, DEAD_LETTER_FIELD, DeadLetter, JOB_FIELD, JOB_PROTOCOL_VERSION, OcrJob, QueueDepth, QueueNames,
};
use finagent_core::names::InstanceName;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script, Value};

use super::{Delivery, Enqueued, Failed, JobQueue, QueueError, QueuePolicy};

const ENQUEUE: &str = r"
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return redis.call('XADD', KEYS[2], '*', ARGV[3], ARGV[2])
end
return false";

const PROMOTE_DUE: &str = r"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, job in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', ARGV[3], job)
  redis.call('ZREM', KEYS[1], job)
end
return #due";

const ACK: &str = r"
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return acked";

// Retry and dead-letter act only if the delivery was still pending: a worker that stalled while
// another reclaimed and finished its job must not resurrect it, and a repeated call is a no-op.
const RETRY_LATER: &str = r"
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
end
redis.call('XDEL', KEYS[1], ARGV[2])
return 1";

const DEAD_LETTER: &str = r"
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('XADD', KEYS[2], '*', ARGV[3], ARGV[4])
end
redis.call('XDEL', KEYS[1], ARGV[2])
return 1";

// A heartbeat renews the entry only while this consumer still owns it; it never takes back an
// entry that another consumer reclaimed.
const HEARTBEAT: &str = r"
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #pending == 1 and pending[1][2] == ARGV[2] then
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
  return 1
end
return 0";

/// The job queue of one instance, on Redis.
#[derive(Clone)]
pub struct RedisQueue {
    /// Where the next `XAUTOCLAIM` scan resumes, so abandoned entries far into a long pending list
    /// are reached too.
    reclaim_cursor: std::sync::Arc<std::sync::Mutex<String>>,
    commands: ConnectionManager,
    blocking: ConnectionManager,
    names: QueueNames,
    retries: String,
    policy: QueuePolicy,
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue").field("stream", &self.names.jobs).finish_non_exhaustive()
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Text of a bulk or simple string value.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(text) => Some(text.clone()),
        _ => None,
    }
}

/// `[[id, [field, value, …]], …]` into (id, value of `field`).
fn entries(value: &Value, field: &str) -> Vec<(String, Option<String>)> {
    let Value::Array(items) = value else { return Vec::new() };
    items
        .iter()
        .filter_map(|item| {
            let Value::Array(pair) = item else { return None };
            let id = text(pair.first()?)?;
            let payload = match pair.get(1) {
                Some(Value::Array(fields)) => fields
                    .chunks(2)
                    .find(|kv| text(&kv[0]).as_deref() == Some(field))
                    .and_then(|kv| kv.get(1))
                    .and_then(text),
                Some(Value::Map(map)) => {
                    map.iter().find(|(k, _)| text(k).as_deref() == Some(field)).and_then(|(_, v)| text(v))
                }
                _ => None,
            };
            Some((id, payload))
        })
        .collect()
}

/// The depth from the stream's length, the scheduled retries and the `XPENDING` summary.
fn depth_of(length: u64, scheduled: u64, pending_summary: &Value) -> QueueDepth {
    let pending = match pending_summary {
        Value::Array(parts) => match parts.first() {
            Some(Value::Int(count)) => u64::try_from(*count).unwrap_or(0),
            _ => 0,
        },
        _ => 0,
    };
    // Acknowledged entries are deleted, so the stream holds undelivered plus pending entries.
    QueueDepth { lag: length.saturating_sub(pending) + scheduled, pending }
}

/// Reads one instance's queue depth and writes nothing, for a reader that may point at a user's
/// own Redis (the operator): it creates no consumer group and no stream, and a stream or group
/// that does not exist yet counts as an empty queue. Commands time out after two seconds.
#[derive(Clone)]
pub struct QueueDepthReader {
    connection: ConnectionManager,
    jobs: String,
    retries: String,
}

impl std::fmt::Debug for QueueDepthReader {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("QueueDepthReader").field("jobs", &self.jobs).finish_non_exhaustive()
    }
}

impl QueueDepthReader {
    /// Connects (no command is sent but the handshake).
    pub async fn connect(url: &str, instance: &InstanceName) -> Result<Self, QueueError> {
        let client = redis::Client::open(url).map_err(QueueError::unavailable("connect"))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)));
        let connection =
            ConnectionManager::new_with_config(client, config).await.map_err(QueueError::unavailable("connect"))?;
        let names = QueueNames::for_instance(instance);
        Ok(Self { connection, jobs: names.jobs, retries: format!("finagent:{instance}:ocr:retry") })
    }

    /// The depth: undelivered, scheduled for retry, and in progress.
    pub async fn depth(&self) -> Result<QueueDepth, QueueError> {
        let mut connection = self.connection.clone();
        let (length, scheduled): (u64, u64) = redis::pipe()
            .cmd("XLEN")
            .arg(&self.jobs)
            .cmd("ZCARD")
            .arg(&self.retries)
            .query_async(&mut connection)
            .await
            .map_err(QueueError::unavailable("depth"))?;
        let summary: Value =
            match redis::cmd("XPENDING").arg(&self.jobs).arg(CONSUMER_GROUP).query_async(&mut connection).await {
                Ok(summary) => summary,
                // No stream or no group yet: nothing was ever delivered.
                Err(error) if error.to_string().contains("NOGROUP") => Value::Nil,
                Err(error) => return Err(QueueError::unavailable("depth")(error)),
            };
        Ok(depth_of(length, scheduled, &summary))
    }
}

impl RedisQueue {
    /// Connects and makes sure the consumer group exists (idempotent).
    pub async fn connect(url: &str, instance: &InstanceName, policy: QueuePolicy) -> Result<Self, QueueError> {
        let client = redis::Client::open(url).map_err(QueueError::unavailable("connect"))?;
        let commands = ConnectionManager::new(client.clone()).await.map_err(QueueError::unavailable("connect"))?;
        // Blocking reads wait up to their BLOCK time; the default 500 ms response timeout would
        // abandon them while Redis still delivers into them, hiding jobs until they are reclaimed.
        let blocking_config = redis::aio::ConnectionManagerConfig::new().set_response_timeout(None);
        let blocking = ConnectionManager::new_with_config(client, blocking_config)
            .await
            .map_err(QueueError::unavailable("connect"))?;
        let names = QueueNames::for_instance(instance);
        let retries = format!("finagent:{instance}:ocr:retry");
        let reclaim_cursor = std::sync::Arc::new(std::sync::Mutex::new("0-0".to_owned()));
        let queue = Self { reclaim_cursor, commands, blocking, names, retries, policy };
        queue.ensure_group().await?;
        Ok(queue)
    }

    async fn ensure_group(&self) -> Result<(), QueueError> {
        let mut connection = self.commands.clone();
        let created: Result<(), redis::RedisError> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.names.jobs)
            .arg(CONSUMER_GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut connection)
            .await;
        match created {
            Ok(()) => Ok(()),
            Err(error) if error.to_string().contains("BUSYGROUP") => Ok(()),
            Err(error) => Err(QueueError::unavailable("ensure_group")(error)),
        }
    }

    /// Runs a command, riding out what a Redis restart looks like from here: a dropped or refused
    /// connection is retried with a short backoff (the connection manager reconnects meanwhile),
    /// and a vanished consumer group (Redis restarted without persistence) is recreated.
    async fn with_group<T, F, Fut>(&self, name: &'static str, operation: F) -> Result<T, QueueError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, redis::RedisError>>,
    {
        let mut attempt = 0u32;
        loop {
            match operation().await {
                Ok(value) => return Ok(value),
                // A timed-out command may have run; only the caller can tell whether to repeat it.
                Err(error) if error.is_timeout() => return Err(QueueError::unavailable(name)(error)),
                Err(error) if error.to_string().contains("NOGROUP") && attempt < 3 => self.ensure_group().await?,
                Err(error)
                    if (error.is_io_error() || error.is_connection_dropped() || error.is_connection_refusal())
                        && attempt < 20 =>
                {
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt + 1).min(10))).await;
                }
                Err(error) => return Err(QueueError::unavailable(name)(error)),
            }
            attempt += 1;
        }
    }

    async fn script<T: redis::FromRedisValue>(
        &self,
        name: &'static str,
        source: &str,
        keys: &[String],
        args: &[String],
    ) -> Result<T, QueueError> {
        let script = Script::new(source);
        self.with_group(name, || {
            let mut connection = self.commands.clone();
            let mut invocation = script.prepare_invoke();
            for key in keys {
                invocation.key(key);
            }
            for arg in args {
                invocation.arg(arg);
            }
            async move { invocation.invoke_async(&mut connection).await }
        })
        .await
    }

    async fn command<T: redis::FromRedisValue>(
        &self,
        name: &'static str,
        command: redis::Cmd,
    ) -> Result<T, QueueError> {
        self.with_group(name, || {
            let mut connection = self.commands.clone();
            let command = command.clone();
            async move { command.query_async(&mut connection).await }
        })
        .await
    }

    fn decode(&self, handle: String, payload: Option<String>, times_delivered: u32) -> Result<Delivery, QueueError> {
        let payload = payload.ok_or_else(|| QueueError::corrupt("job")(format!("entry {handle} has no job")))?;
        let job = OcrJob::decode(&payload).map_err(QueueError::corrupt("job"))?;
        let deliveries = job.attempt.saturating_sub(1) + times_delivered.max(1);
        Ok(Delivery { handle, job, deliveries })
    }

    async fn times_delivered(&self, handle: &str) -> Result<u32, QueueError> {
        let pending: Value = self
            .command(
                "times_delivered",
                redis::cmd("XPENDING").arg(&self.names.jobs).arg(CONSUMER_GROUP).arg(handle).arg(handle).arg(1).clone(),
            )
            .await?;
        let count = match &pending {
            Value::Array(rows) => match rows.first() {
                Some(Value::Array(row)) => match row.get(3) {
                    Some(Value::Int(count)) => u32::try_from(*count).unwrap_or(u32::MAX),
                    _ => 1,
                },
                _ => 1,
            },
            _ => 1,
        };
        Ok(count)
    }

    async fn move_to_dead_letters(&self, delivery: &Delivery, reason: &str) -> Result<(), QueueError> {
        let letter = DeadLetter {
            v: JOB_PROTOCOL_VERSION,
            job: delivery.job.clone(),
            reason: reason.chars().take(500).collect(),
            deliveries: delivery.deliveries,
            failed_at: Utc::now(),
        };
        let _: i64 = self
            .script(
                "move_to_dead_letters",
                DEAD_LETTER,
                &[self.names.jobs.to_string(), self.names.dead_letters.to_string()],
                &[
                    CONSUMER_GROUP.to_string(),
                    delivery.handle.to_string(),
                    DEAD_LETTER_FIELD.to_string(),
                    letter.encode().to_string(),
                ],
            )
            .await?;
        tracing::warn!(job.id = %delivery.job.job_id, receipt.id = %delivery.job.receipt_id, deliveries = delivery.deliveries, "job dead-lettered");
        Ok(())
    }
}

impl JobQueue for RedisQueue {
    async fn enqueue(&self, job: &OcrJob) -> Result<Enqueued, QueueError> {
        let added: Option<String> = self
            .script(
                "enqueue",
                ENQUEUE,
                &[self.names.dedup_key(job.job_id).to_string(), self.names.jobs.to_string()],
                &[
                    self.policy.dedup_window.as_secs().max(1).to_string(),
                    job.encode().to_string(),
                    JOB_FIELD.to_string(),
                ],
            )
            .await?;
        Ok(if added.is_some() { Enqueued::Added } else { Enqueued::Duplicate })
    }

    async fn claim(&self, consumer: &str, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        let max = max.max(1);
        let now_ms = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0);
        let _: i64 = self
            .script(
                "claim",
                PROMOTE_DUE,
                &[self.retries.to_string(), self.names.jobs.to_string()],
                &[now_ms.to_string(), 100.to_string(), JOB_FIELD.to_string()],
            )
            .await?;

        // Jobs whose consumer went silent for longer than the visibility timeout.
        let visibility = millis(self.policy.visibility_timeout);
        let cursor = self.reclaim_cursor.lock().map(|cursor| cursor.clone()).unwrap_or_else(|_| "0-0".to_owned());
        let reclaimed: Value = self
            .with_group("claim", || {
                let mut connection = self.commands.clone();
                let cursor = cursor.clone();
                async move {
                    redis::cmd("XAUTOCLAIM")
                        .arg(&self.names.jobs)
                        .arg(CONSUMER_GROUP)
                        .arg(consumer)
                        .arg(visibility)
                        .arg(cursor)
                        .arg("COUNT")
                        .arg(max)
                        .query_async(&mut connection)
                        .await
                }
            })
            .await?;
        let mut deliveries = Vec::new();
        if let Value::Array(parts) = &reclaimed
            && let Some(next) = parts.first().and_then(text)
            && let Ok(mut stored) = self.reclaim_cursor.lock()
        {
            *stored = next;
        }
        if let Value::Array(parts) = &reclaimed
            && let Some(claimed) = parts.get(1)
        {
            for (handle, payload) in entries(claimed, JOB_FIELD) {
                let times = self.times_delivered(&handle).await?;
                match self.decode(handle.clone(), payload, times) {
                    Ok(delivery) => {
                        tracing::info!(job.id = %delivery.job.job_id, deliveries = delivery.deliveries, "reclaimed an abandoned job");
                        deliveries.push(delivery);
                    }
                    Err(error) => {
                        tracing::error!(%error, entry = %handle, "dropping an undecodable entry");
                        let _: i64 = self
                            .script(
                                "claim",
                                ACK,
                                &[self.names.jobs.to_string()],
                                &[CONSUMER_GROUP.to_string(), handle.to_string()],
                            )
                            .await?;
                    }
                }
            }
        }
        if deliveries.len() >= max {
            return Ok(deliveries);
        }

        let count = max - deliveries.len();
        let block = usize::try_from(millis(wait)).unwrap_or(usize::MAX).max(1);
        let read: Result<Option<redis::streams::StreamReadReply>, QueueError> = self
            .with_group("claim", || {
                let mut blocking = self.blocking.clone();
                let options = redis::streams::StreamReadOptions::default()
                    .group(CONSUMER_GROUP, consumer)
                    .count(count)
                    .block(block);
                async move { blocking.xread_options(&[&self.names.jobs], &[">"], &options).await }
            })
            .await;
        let read = match read {
            Ok(read) => read,
            // Reclaimed jobs are already ours: hand them out rather than leave them for another timeout.
            Err(error) if !deliveries.is_empty() => {
                tracing::warn!(%error, "failed to read new jobs; returning the reclaimed ones");
                None
            }
            Err(error) => return Err(error),
        };
        for key in read.map(|reply| reply.keys).unwrap_or_default() {
            for entry in key.ids {
                let payload: Option<String> = entry.get(JOB_FIELD);
                match self.decode(entry.id.clone(), payload, 1) {
                    Ok(delivery) => deliveries.push(delivery),
                    Err(error) => {
                        tracing::error!(%error, entry = %entry.id, "dropping an undecodable entry");
                        let _: i64 = self
                            .script(
                                "claim",
                                ACK,
                                &[self.names.jobs.to_string()],
                                &[CONSUMER_GROUP.to_string(), entry.id.to_string()],
                            )
                            .await?;
                    }
                }
            }
        }
        Ok(deliveries)
    }

    async fn heartbeat(&self, consumer: &str, delivery: &Delivery) -> Result<(), QueueError> {
        let _: i64 = self
            .script(
                "heartbeat",
                HEARTBEAT,
                std::slice::from_ref(&self.names.jobs),
                &[CONSUMER_GROUP.to_owned(), consumer.to_owned(), delivery.handle.clone()],
            )
            .await?;
        Ok(())
    }

    async fn ack(&self, delivery: &Delivery) -> Result<(), QueueError> {
        let _: i64 = self
            .script(
                "ack",
                ACK,
                &[self.names.jobs.to_string()],
                &[CONSUMER_GROUP.to_string(), delivery.handle.to_string()],
            )
            .await?;
        Ok(())
    }

    async fn fail(&self, delivery: &Delivery, reason: &str) -> Result<Failed, QueueError> {
        if QueuePolicy::exhausted(delivery.deliveries) {
            self.move_to_dead_letters(delivery, reason).await?;
            return Ok(Failed::DeadLettered);
        }
        let after = self.policy.backoff(delivery.deliveries);
        let due = Utc::now().timestamp_millis().saturating_add(i64::try_from(after.as_millis()).unwrap_or(i64::MAX));
        let retried = OcrJob { attempt: delivery.deliveries + 1, ..delivery.job.clone() };
        let _: i64 = self
            .script(
                "fail",
                RETRY_LATER,
                &[self.names.jobs.to_string(), self.retries.to_string()],
                &[
                    CONSUMER_GROUP.to_string(),
                    delivery.handle.to_string(),
                    due.to_string(),
                    retried.encode().to_string(),
                ],
            )
            .await?;
        Ok(Failed::Retrying { after })
    }

    async fn depth(&self) -> Result<QueueDepth, QueueError> {
        let length: u64 = self.command("depth", redis::cmd("XLEN").arg(&self.names.jobs).clone()).await?;
        let scheduled: u64 = self.command("depth", redis::cmd("ZCARD").arg(&self.retries).clone()).await?;
        let summary: Value =
            self.command("depth", redis::cmd("XPENDING").arg(&self.names.jobs).arg(CONSUMER_GROUP).clone()).await?;
        Ok(depth_of(length, scheduled, &summary))
    }

    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>, QueueError> {
        let range: Value = self
            .command(
                "dead_letters",
                redis::cmd("XRANGE").arg(&self.names.dead_letters).arg("-").arg("+").arg("COUNT").arg(max).clone(),
            )
            .await?;
        entries(&range, DEAD_LETTER_FIELD)
            .into_iter()
            .filter_map(|(_, payload)| payload)
            .map(|payload| DeadLetter::decode(&payload).map_err(QueueError::corrupt("dead letter")))
            .collect()
    }
}
