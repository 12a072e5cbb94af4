//! The OCR job protocol between the API (producer) and the workers (consumers).
//!
//! A job travels as JSON in the field [`JOB_FIELD`] of a Redis Stream entry on
//! [`QueueNames::jobs`], read by the consumer group [`CONSUMER_GROUP`]. Each message carries its
//! protocol version `v`; a consumer refuses versions it does not know instead of guessing. Jobs that
//! fail [`MAX_DELIVERIES`] times move to [`QueueNames::dead_letters`] as a [`DeadLetter`] carrying
//! the reason. Queue depth, the number the operator scales on, is [`QueueDepth::total`]:
//! consumer-group lag plus pending (delivered, unacknowledged) entries.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{BlobKey, JobId, ReceiptId, UserId};
use crate::names::InstanceName;

/// The job protocol version this build writes and reads.
pub const JOB_PROTOCOL_VERSION: u32 = 1;

/// Consumer group shared by every OCR worker of an instance.
pub const CONSUMER_GROUP: &str = "ocr-workers";

/// Stream entry field holding the JSON job.
pub const JOB_FIELD: &str = "job";

/// Stream entry field holding the JSON dead letter.
pub const DEAD_LETTER_FIELD: &str = "dead_letter";

/// A job is dead-lettered once it has been delivered this many times without success.
pub const MAX_DELIVERIES: u32 = 3;

/// Idle time after which another worker may reclaim a delivered, unacknowledged job. Workers
/// heartbeat long jobs well within this, so only a dead worker's job goes idle.
pub const VISIBILITY_TIMEOUT_SECS: u64 = 30;

/// Run OCR on one receipt image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OcrJob {
    /// Protocol version; [`JOB_PROTOCOL_VERSION`] for jobs written by this build.
    pub v: u32,
    /// The job's id; enqueueing the same id twice is a no-op.
    pub job_id: JobId,
    /// The receipt whose result this job writes (the result is keyed by it, so redelivery is safe).
    pub receipt_id: ReceiptId,
    /// The receipt's owner.
    pub owner_id: UserId,
    /// Where the image is.
    pub blob_key: BlobKey,
    /// 1 for the first delivery, incremented on each retry.
    pub attempt: u32,
    /// When the job was first accepted.
    pub enqueued_at: DateTime<Utc>,
}

impl OcrJob {
    /// A first-attempt job for a receipt.
    pub fn new(receipt_id: ReceiptId, owner_id: UserId, blob_key: BlobKey, now: DateTime<Utc>) -> Self {
        Self {
            v: JOB_PROTOCOL_VERSION,
            job_id: JobId::new(),
            receipt_id,
            owner_id,
            blob_key,
            attempt: 1,
            enqueued_at: now,
        }
    }

    /// The job as its wire JSON.
    pub fn encode(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a job from its wire JSON, refusing unknown protocol versions.
    pub fn decode(json: &str) -> Result<Self, DecodeError> {
        decode_versioned(json)
    }

    /// The same job, for its next delivery.
    pub fn retried(&self) -> Self {
        Self { attempt: self.attempt + 1, ..self.clone() }
    }
}

/// A job that failed [`MAX_DELIVERIES`] times, with the reason, kept for inspection and replay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Protocol version.
    pub v: u32,
    /// The job as last delivered.
    pub job: OcrJob,
    /// Why the last attempt failed (no receipt contents, no secrets).
    pub reason: String,
    /// How many times it was delivered.
    pub deliveries: u32,
    /// When it was given up.
    pub failed_at: DateTime<Utc>,
}

impl DeadLetter {
    /// The dead letter as its wire JSON.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a dead letter from its wire JSON, refusing unknown protocol versions.
    pub fn decode(json: &str) -> Result<Self, DecodeError> {
        decode_versioned(json)
    }
}

#[derive(Deserialize)]
struct Versioned {
    v: u32,
}

/// Reads a protocol message, checking its version before its shape.
fn decode_versioned<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, DecodeError> {
    let version: Versioned = serde_json::from_str(json).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if version.v != JOB_PROTOCOL_VERSION {
        return Err(DecodeError::UnsupportedVersion(version.v));
    }
    serde_json::from_str(json).map_err(|e| DecodeError::Malformed(e.to_string()))
}

/// A message that is not a job this build can run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, or missing fields.
    #[error("failed to decode job message: {0}")]
    Malformed(String),
    /// Written by a newer (or much older) build.
    #[error(
        "failed to decode job message: unsupported protocol version {0} (this build speaks {JOB_PROTOCOL_VERSION})"
    )]
    UnsupportedVersion(u32),
}

/// The Redis keys of one instance's OCR queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueNames {
    /// The job stream: `finagent:{instance}:ocr:jobs`.
    pub jobs: String,
    /// The dead-letter stream: `finagent:{instance}:ocr:dead`.
    pub dead_letters: String,
    /// Prefix of the per-job de-duplication keys: `finagent:{instance}:ocr:job:`.
    pub dedup_prefix: String,
}

impl QueueNames {
    /// The names for an instance.
    pub fn for_instance(instance: &InstanceName) -> Self {
        let base = format!("finagent:{instance}:ocr");
        Self {
            jobs: format!("{base}:jobs"),
            dead_letters: format!("{base}:dead"),
            dedup_prefix: format!("{base}:job:"),
        }
    }

    /// The de-duplication key of one job.
    pub fn dedup_key(&self, job: JobId) -> String {
        format!("{}{job}", self.dedup_prefix)
    }
}

/// How much work is waiting, as the operator scales on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueDepth {
    /// Entries not yet delivered to the consumer group.
    pub lag: u64,
    /// Entries delivered but not yet acknowledged.
    pub pending: u64,
}

impl QueueDepth {
    /// Queue depth = consumer-group lag + pending entries.
    pub fn total(&self) -> u64 {
        self.lag.saturating_add(self.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_follow_the_contract() {
        let instance: InstanceName = "prod".parse().expect("valid");
        let names = QueueNames::for_instance(&instance);
        assert_eq!(names.jobs, "finagent:prod:ocr:jobs");
        assert_eq!(names.dead_letters, "finagent:prod:ocr:dead");
        let job: JobId = "01890a5d-ac96-774b-bcce-b302099a8057".parse().expect("valid");
        assert_eq!(names.dedup_key(job), "finagent:prod:ocr:job:01890a5d-ac96-774b-bcce-b302099a8057");
    }

    #[test]
    fn queue_depth_is_lag_plus_pending() {
        assert_eq!(QueueDepth { lag: 7, pending: 3 }.total(), 10);
        assert_eq!(QueueDepth { lag: u64::MAX, pending: 1 }.total(), u64::MAX);
    }

    #[test]
    fn retry_keeps_identity_and_counts_attempts() {
        let job = OcrJob::new(ReceiptId::new(), UserId::new(), BlobKey::new("b"), Utc::now());
        let again = job.retried();
        assert_eq!((again.job_id, again.attempt), (job.job_id, 2));
    }

    #[test]
    fn unknown_versions_and_garbage_are_refused() {
        assert_eq!(OcrJob::decode(r#"{"v":2,"job_id":"x"}"#), Err(DecodeError::UnsupportedVersion(2)));
        assert!(matches!(OcrJob::decode("not json"), Err(DecodeError::Malformed(_))));
        assert!(matches!(OcrJob::decode(r#"{"v":1}"#), Err(DecodeError::Malformed(_))));
    }
}
