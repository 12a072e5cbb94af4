//! One contract, two backends: every case runs against the Redis queue (on the harness's real
//! Redis) and against the in-process queue, with short timings so waits stay well under a second.

use std::time::Duration;

use chrono::Utc;
use finagent_core::job::{MAX_DELIVERIES, OcrJob, QueueDepth};
use finagent_core::names::InstanceName;
use finagent_core::{BlobKey, ReceiptId, UserId};
use finagent_platform::queue::memory::MemoryQueue;
use finagent_platform::queue::redis::RedisQueue;
use finagent_platform::queue::{Enqueued, Failed, JobQueue, QueuePolicy};
use finagent_platform::testkit;

const POLICY: QueuePolicy = QueuePolicy {
    visibility_timeout: Duration::from_millis(1000),
    retry_backoff: Duration::from_millis(150),
    dedup_window: Duration::from_secs(60),
};

fn job() -> OcrJob {
    let receipt = ReceiptId::new();
    OcrJob::new(receipt, UserId::new(), BlobKey::for_receipt(receipt), Utc::now())
}

async fn redis_queue() -> Option<RedisQueue> {
    let url = testkit::redis_url()?;
    let instance: InstanceName = testkit::unique_name("q").parse().expect("dns label");
    Some(RedisQueue::connect(&url, &instance, POLICY).await.expect("connects"))
}

async fn enqueue_is_deduplicated_by_job_id(queue: impl JobQueue) {
    let job = job();
    assert_eq!(queue.enqueue(&job).await.expect("enqueue"), Enqueued::Added);
    assert_eq!(queue.enqueue(&job).await.expect("enqueue"), Enqueued::Duplicate);
    assert_eq!(queue.depth().await.expect("depth"), QueueDepth { lag: 1, pending: 0 });
}

async fn claim_then_ack_empties_the_queue(queue: impl JobQueue) {
    let job = job();
    queue.enqueue(&job).await.expect("enqueue");
    let claimed = queue.claim("a", 10, Duration::from_millis(50)).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!((claimed[0].job.job_id, claimed[0].deliveries), (job.job_id, 1));
    assert_eq!(queue.depth().await.expect("depth"), QueueDepth { lag: 0, pending: 1 });
    queue.ack(&claimed[0]).await.expect("ack");
    assert_eq!(queue.depth().await.expect("depth"), QueueDepth::default());
    assert!(queue.claim("b", 10, Duration::from_millis(50)).await.expect("claim").is_empty());
}

async fn an_abandoned_job_is_reclaimed_by_another_consumer(queue: impl JobQueue) {
    let job = job();
    queue.enqueue(&job).await.expect("enqueue");
    let first = queue.claim("dies", 1, Duration::from_millis(50)).await.expect("claim");
    assert_eq!(first.len(), 1);
    assert!(queue.claim("other", 1, Duration::from_millis(50)).await.expect("claim").is_empty(), "not yet idle");
    tokio::time::sleep(POLICY.visibility_timeout + Duration::from_millis(100)).await;
    let second = queue.claim("other", 1, Duration::from_millis(50)).await.expect("claim");
    assert_eq!(second.len(), 1, "the abandoned job is redelivered");
    assert_eq!((second[0].job.job_id, second[0].deliveries), (job.job_id, 2));
}

async fn heartbeats_keep_a_long_job(queue: impl JobQueue) {
    queue.enqueue(&job()).await.expect("enqueue");
    let claimed = queue.claim("slow", 1, Duration::from_millis(50)).await.expect("claim");
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        queue.heartbeat("slow", &claimed[0]).await.expect("heartbeat");
        assert!(queue.claim("thief", 1, Duration::from_millis(10)).await.expect("claim").is_empty());
    }
    queue.ack(&claimed[0]).await.expect("ack");
}

async fn a_failure_is_retried_after_a_backoff(queue: impl JobQueue) {
    let job = job();
    queue.enqueue(&job).await.expect("enqueue");
    let claimed = queue.claim("a", 1, Duration::from_millis(50)).await.expect("claim");
    let outcome = queue.fail(&claimed[0], "tesseract crashed").await.expect("fail");
    assert_eq!(outcome, Failed::Retrying { after: POLICY.retry_backoff });
    assert_eq!(
        queue.depth().await.expect("depth"),
        QueueDepth { lag: 1, pending: 0 },
        "a scheduled retry is waiting work"
    );
    assert!(queue.claim("a", 1, Duration::from_millis(10)).await.expect("claim").is_empty(), "not before the backoff");
    tokio::time::sleep(POLICY.retry_backoff + Duration::from_millis(50)).await;
    let again = queue.claim("a", 1, Duration::from_millis(50)).await.expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].job.job_id, again[0].job.attempt, again[0].deliveries), (job.job_id, 2, 2));
}

async fn a_poison_job_ends_in_the_dead_letters_with_its_reason(queue: impl JobQueue) {
    let job = job();
    queue.enqueue(&job).await.expect("enqueue");
    let mut outcomes = Vec::new();
    for _ in 0..MAX_DELIVERIES {
        let mut claimed = Vec::new();
        for _ in 0..40 {
            claimed = queue.claim("a", 1, Duration::from_millis(50)).await.expect("claim");
            if !claimed.is_empty() {
                break;
            }
        }
        assert_eq!(claimed.len(), 1, "the job comes back after each failure");
        outcomes.push(queue.fail(&claimed[0], "failed to decode image: not a JPEG").await.expect("fail"));
    }
    assert!(matches!(outcomes.last(), Some(Failed::DeadLettered)), "{outcomes:?}");
    let dead = queue.dead_letters(10).await.expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].job.job_id, dead[0].deliveries), (job.job_id, MAX_DELIVERIES));
    assert_eq!(dead[0].reason, "failed to decode image: not a JPEG");
    assert_eq!(queue.depth().await.expect("depth"), QueueDepth::default());
}

async fn a_job_that_kills_every_worker_is_dead_lettered(queue: impl JobQueue) {
    let job = job();
    queue.enqueue(&job).await.expect("enqueue");
    let mut last = Vec::new();
    for round in 1..=MAX_DELIVERIES + 1 {
        if round > 1 {
            tokio::time::sleep(POLICY.visibility_timeout + Duration::from_millis(100)).await;
        }
        last = queue.claim(&format!("dies-{round}"), 1, Duration::from_millis(50)).await.expect("claim");
        assert_eq!(last.len(), 1, "round {round}");
        assert_eq!(last[0].deliveries, round);
    }
    assert_eq!(queue.fail(&last[0], "abandoned").await.expect("fail"), Failed::DeadLettered);
    assert_eq!(queue.dead_letters(10).await.expect("dead letters").len(), 1);
}

async fn a_stale_consumer_cannot_take_back_or_resurrect_a_reclaimed_job(queue: impl JobQueue) {
    queue.enqueue(&job()).await.expect("enqueue");
    let stale = queue.claim("stalled", 1, Duration::from_millis(50)).await.expect("claim");
    tokio::time::sleep(POLICY.visibility_timeout + Duration::from_millis(100)).await;
    let fresh = queue.claim("healthy", 1, Duration::from_millis(50)).await.expect("claim");
    assert_eq!(fresh.len(), 1);
    queue.heartbeat("stalled", &stale[0]).await.expect("heartbeat");
    queue.ack(&fresh[0]).await.expect("ack");
    queue.fail(&stale[0], "late failure").await.expect("fail");
    tokio::time::sleep(POLICY.retry_backoff + Duration::from_millis(50)).await;
    assert_eq!(queue.depth().await.expect("depth"), QueueDepth::default(), "the finished job stays finished");
    assert!(queue.dead_letters(10).await.expect("dead letters").is_empty());
}

async fn a_job_enqueued_during_a_blocking_claim_is_delivered_to_it(queue: impl JobQueue) {
    let job = job();
    let late = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        queue.enqueue(&job).await.expect("enqueue");
    };
    let (claimed, ()) = tokio::join!(queue.claim("idle", 1, Duration::from_millis(2000)), late);
    let claimed = claimed.expect("an idle claim is not an error");
    assert_eq!(claimed.len(), 1, "the waiting consumer receives the job");
    assert_eq!((claimed[0].job.job_id, claimed[0].deliveries), (job.job_id, 1));
}

macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod contract_redis {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(queue) = redis_queue().await else { return };
                    super::$case(queue).await;
                }
            )*
        }
        mod contract_memory {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(MemoryQueue::new(POLICY)).await;
                }
            )*
        }
    };
}

contract!(
    enqueue_is_deduplicated_by_job_id,
    claim_then_ack_empties_the_queue,
    an_abandoned_job_is_reclaimed_by_another_consumer,
    heartbeats_keep_a_long_job,
    a_failure_is_retried_after_a_backoff,
    a_poison_job_ends_in_the_dead_letters_with_its_reason,
    a_job_that_kills_every_worker_is_dead_lettered,
    a_stale_consumer_cannot_take_back_or_resurrect_a_reclaimed_job,
    a_job_enqueued_during_a_blocking_claim_is_delivered_to_it,
);
