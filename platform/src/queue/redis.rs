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

const RETRY_LATER: &str = r"
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1";

const DEAD_LETTER: &str = r"
redis.call('XADD', KEYS[2], '*', ARGV[3], ARGV[4])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1";

/// The job queue of one instance, on Redis.
#[derive(Clone)]
pub struct RedisQueue {
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

fn unavailable(error: redis::RedisError) -> QueueError {
    QueueError::Unavailable(error.to_string())
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

impl RedisQueue {
    /// Connects and makes sure the consumer group exists (idempotent).
    pub async fn connect(url: &str, instance: &InstanceName, policy: QueuePolicy) -> Result<Self, QueueError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let commands = ConnectionManager::new(client.clone()).await.map_err(unavailable)?;
        let blocking = ConnectionManager::new(client).await.map_err(unavailable)?;
        let names = QueueNames::for_instance(instance);
        let retries = format!("finagent:{instance}:ocr:retry");
        let queue = Self { commands, blocking, names, retries, policy };
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
            Err(error) => Err(unavailable(error)),
        }
    }

    /// Runs a command; if the group vanished (Redis restarted without persistence, or the stream
    /// was deleted), recreates it and runs the command once more.
    async fn with_group<T, F, Fut>(&self, operation: F) -> Result<T, QueueError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, redis::RedisError>>,
    {
        match operation().await {
            Err(error) if error.to_string().contains("NOGROUP") => {
                self.ensure_group().await?;
                operation().await.map_err(unavailable)
            }
            other => other.map_err(unavailable),
        }
    }

    fn decode(&self, handle: String, payload: Option<String>, times_delivered: u32) -> Result<Delivery, QueueError> {
        let payload = payload.ok_or_else(|| QueueError::Corrupt(format!("entry {handle} has no job")))?;
        let job = OcrJob::decode(&payload).map_err(|e| QueueError::Corrupt(e.to_string()))?;
        let deliveries = job.attempt.saturating_sub(1) + times_delivered.max(1);
        Ok(Delivery { handle, job, deliveries })
    }

    async fn times_delivered(&self, handle: &str) -> Result<u32, QueueError> {
        let mut connection = self.commands.clone();
        let pending: Value = redis::cmd("XPENDING")
            .arg(&self.names.jobs)
            .arg(CONSUMER_GROUP)
            .arg(handle)
            .arg(handle)
            .arg(1)
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
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
        let mut connection = self.commands.clone();
        let _: i64 = Script::new(DEAD_LETTER)
            .key(&self.names.jobs)
            .key(&self.names.dead_letters)
            .arg(CONSUMER_GROUP)
            .arg(&delivery.handle)
            .arg(DEAD_LETTER_FIELD)
            .arg(letter.encode())
            .invoke_async(&mut connection)
            .await
            .map_err(unavailable)?;
        tracing::warn!(job.id = %delivery.job.job_id, receipt.id = %delivery.job.receipt_id, deliveries = delivery.deliveries, "job dead-lettered");
        Ok(())
    }
}

impl JobQueue for RedisQueue {
    async fn enqueue(&self, job: &OcrJob) -> Result<Enqueued, QueueError> {
        let mut connection = self.commands.clone();
        let added: Option<String> = Script::new(ENQUEUE)
            .key(self.names.dedup_key(job.job_id))
            .key(&self.names.jobs)
            .arg(self.policy.dedup_window.as_secs().max(1))
            .arg(job.encode())
            .arg(JOB_FIELD)
            .invoke_async(&mut connection)
            .await
            .map_err(unavailable)?;
        Ok(if added.is_some() { Enqueued::Added } else { Enqueued::Duplicate })
    }

    async fn claim(&self, consumer: &str, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        let max = max.max(1);
        let mut connection = self.commands.clone();
        let now_ms = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0);
        let _: i64 = Script::new(PROMOTE_DUE)
            .key(&self.retries)
            .key(&self.names.jobs)
            .arg(now_ms)
            .arg(100)
            .arg(JOB_FIELD)
            .invoke_async(&mut connection)
            .await
            .map_err(unavailable)?;

        // Jobs whose consumer went silent for longer than the visibility timeout.
        let visibility = millis(self.policy.visibility_timeout);
        let reclaimed: Value = self
            .with_group(|| {
                let mut connection = self.commands.clone();
                async move {
                    redis::cmd("XAUTOCLAIM")
                        .arg(&self.names.jobs)
                        .arg(CONSUMER_GROUP)
                        .arg(consumer)
                        .arg(visibility)
                        .arg("0-0")
                        .arg("COUNT")
                        .arg(max)
                        .query_async(&mut connection)
                        .await
                }
            })
            .await?;
        let mut deliveries = Vec::new();
        if let Value::Array(parts) = &reclaimed
            && let Some(claimed) = parts.get(1)
        {
            for (handle, payload) in entries(claimed, JOB_FIELD) {
                let times = self.times_delivered(&handle).await?;
                match self.decode(handle.clone(), payload, times) {
                    Ok(delivery) if delivery.deliveries > finagent_core::job::MAX_DELIVERIES => {
                        let reason = format!("abandoned by its worker {} times (worker crashed or was killed)", times);
                        self.move_to_dead_letters(&delivery, &reason).await?;
                    }
                    Ok(delivery) => {
                        tracing::info!(job.id = %delivery.job.job_id, deliveries = delivery.deliveries, "reclaimed an abandoned job");
                        deliveries.push(delivery);
                    }
                    Err(error) => {
                        tracing::error!(%error, entry = %handle, "dropping an undecodable entry");
                        let _: i64 = Script::new(ACK)
                            .key(&self.names.jobs)
                            .arg(CONSUMER_GROUP)
                            .arg(&handle)
                            .invoke_async(&mut connection)
                            .await
                            .map_err(unavailable)?;
                    }
                }
            }
        }
        if deliveries.len() >= max {
            return Ok(deliveries);
        }

        let count = max - deliveries.len();
        let block = usize::try_from(millis(wait)).unwrap_or(usize::MAX).max(1);
        let read: Option<redis::streams::StreamReadReply> = self
            .with_group(|| {
                let mut blocking = self.blocking.clone();
                let options = redis::streams::StreamReadOptions::default()
                    .group(CONSUMER_GROUP, consumer)
                    .count(count)
                    .block(block);
                async move { blocking.xread_options(&[&self.names.jobs], &[">"], &options).await }
            })
            .await?;
        for key in read.map(|reply| reply.keys).unwrap_or_default() {
            for entry in key.ids {
                let payload: Option<String> = entry.get(JOB_FIELD);
                match self.decode(entry.id.clone(), payload, 1) {
                    Ok(delivery) => deliveries.push(delivery),
                    Err(error) => {
                        tracing::error!(%error, entry = %entry.id, "dropping an undecodable entry");
                        let _: i64 = Script::new(ACK)
                            .key(&self.names.jobs)
                            .arg(CONSUMER_GROUP)
                            .arg(&entry.id)
                            .invoke_async(&mut connection)
                            .await
                            .map_err(unavailable)?;
                    }
                }
            }
        }
        Ok(deliveries)
    }

    async fn heartbeat(&self, consumer: &str, delivery: &Delivery) -> Result<(), QueueError> {
        let mut connection = self.commands.clone();
        // Claiming our own entry with JUSTID resets its idle time without counting a delivery.
        let _: Value = redis::cmd("XCLAIM")
            .arg(&self.names.jobs)
            .arg(CONSUMER_GROUP)
            .arg(consumer)
            .arg(0)
            .arg(&delivery.handle)
            .arg("JUSTID")
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn ack(&self, delivery: &Delivery) -> Result<(), QueueError> {
        let mut connection = self.commands.clone();
        let _: i64 = Script::new(ACK)
            .key(&self.names.jobs)
            .arg(CONSUMER_GROUP)
            .arg(&delivery.handle)
            .invoke_async(&mut connection)
            .await
            .map_err(unavailable)?;
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
        let mut connection = self.commands.clone();
        let _: i64 = Script::new(RETRY_LATER)
            .key(&self.names.jobs)
            .key(&self.retries)
            .arg(CONSUMER_GROUP)
            .arg(&delivery.handle)
            .arg(due)
            .arg(retried.encode())
            .invoke_async(&mut connection)
            .await
            .map_err(unavailable)?;
        Ok(Failed::Retrying { after })
    }

    async fn depth(&self) -> Result<QueueDepth, QueueError> {
        let mut connection = self.commands.clone();
        let (length, scheduled): (u64, u64) = redis::pipe()
            .cmd("XLEN")
            .arg(&self.names.jobs)
            .cmd("ZCARD")
            .arg(&self.retries)
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        let summary: Value = self
            .with_group(|| {
                let mut connection = self.commands.clone();
                async move {
                    redis::cmd("XPENDING").arg(&self.names.jobs).arg(CONSUMER_GROUP).query_async(&mut connection).await
                }
            })
            .await?;
        let pending = match &summary {
            Value::Array(parts) => match parts.first() {
                Some(Value::Int(count)) => u64::try_from(*count).unwrap_or(0),
                _ => 0,
            },
            _ => 0,
        };
        // Acknowledged entries are deleted, so the stream holds undelivered plus pending entries.
        Ok(QueueDepth { lag: length.saturating_sub(pending) + scheduled, pending })
    }

    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>, QueueError> {
        let mut connection = self.commands.clone();
        let range: Value = redis::cmd("XRANGE")
            .arg(&self.names.dead_letters)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(max)
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        entries(&range, DEAD_LETTER_FIELD)
            .into_iter()
            .filter_map(|(_, payload)| payload)
            .map(|payload| DeadLetter::decode(&payload).map_err(|e| QueueError::Corrupt(e.to_string())))
            .collect()
    }
}
