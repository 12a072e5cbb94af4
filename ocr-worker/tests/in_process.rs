//! The same consumer loop in process, as the all-in-one mode runs it: the in-process queue, the
//! SQLite store and real Tesseract, no servers. A good receipt is read; a poison one fails its
//! receipt at once, with no retry and no dead letter.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use finagent_core::UserId;
use finagent_core::job::OcrJob;
use finagent_core::receipt::{Receipt, ReceiptStatus};
use finagent_extract::Gazetteer;
use finagent_ocr::consumer::{ConsumerConfig, WorkerMetrics, consume};
use finagent_ocr::pool::{EnginePool, PoolConfig};
use finagent_platform::metrics::Metrics;
use finagent_platform::queue::memory::MemoryQueue;
use finagent_platform::queue::{JobQueue, QueuePolicy};
use finagent_platform::store::sqlite::SqliteStore;
use finagent_platform::store::{BlobStore, ReceiptStore};

#[tokio::test(flavor = "multi_thread")]
async fn in_process_pipeline_reads_a_receipt_and_fails_a_poison_one_at_once() {
    let directory = std::env::temp_dir().join(format!("finagent-in-process-{}", std::process::id()));
    let store =
        Arc::new(SqliteStore::open(directory.join("db.sqlite"), directory.join("blobs")).await.expect("sqlite"));
    let policy = QueuePolicy { retry_backoff: Duration::from_millis(50), ..QueuePolicy::default() };
    let queue = Arc::new(MemoryQueue::new(policy));
    let owner = UserId::new();
    let image =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/receipts/000.jpg")).expect("fixture");
    let mut submitted = Vec::new();
    for bytes in [image, b"not an image".to_vec()] {
        let receipt = Receipt::queued(owner, format!("{}", submitted.len()), "image/jpeg", Utc::now());
        store.put_blob(&receipt.blob_key, &bytes).await.expect("blob");
        store.insert_receipt(&receipt).await.expect("receipt");
        queue.enqueue(&OcrJob::new(receipt.id, owner, receipt.blob_key.clone(), Utc::now())).await.expect("enqueue");
        submitted.push(receipt.id);
    }

    let pool = EnginePool::start(PoolConfig::default(), Arc::new(Gazetteer::bundled())).expect("tesseract");
    let metrics = WorkerMetrics::register(&Metrics::new()).expect("metrics");
    let config = ConsumerConfig {
        consumer: "test".to_owned(),
        heartbeat_every: Duration::from_secs(5),
        grace: Duration::from_secs(5),
    };
    let watched = Arc::clone(&store);
    let ids = submitted.clone();
    let finished = async move {
        let started = Instant::now();
        loop {
            let mut statuses = Vec::new();
            for id in &ids {
                statuses.push(watched.receipt(*id, None).await.expect("read").expect("exists").status);
            }
            if statuses == [ReceiptStatus::Done, ReceiptStatus::Failed] || started.elapsed() > Duration::from_secs(60) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    consume(Arc::clone(&queue), Arc::clone(&store), pool, metrics, config, finished).await.expect("consumer");

    let good = store.receipt(submitted[0], Some(owner)).await.expect("read").expect("exists");
    assert_eq!(good.status, ReceiptStatus::Done);
    assert_eq!(good.result.and_then(|r| r.fields.total).map(|t| t.to_string()).as_deref(), Some("9.00"));
    let poison = store.receipt(submitted[1], Some(owner)).await.expect("read").expect("exists");
    assert_eq!(poison.status, ReceiptStatus::Failed);
    assert_eq!(poison.failure.as_deref(), Some("unreadable_image"), "{poison:?}");
    // A file that can never be read is not retried and leaves no dead letter.
    assert!(queue.dead_letters(10).await.expect("dead letters").is_empty());
    assert_eq!(queue.depth().await.expect("depth").total(), 0, "both jobs are finished");
    std::fs::remove_dir_all(&directory).ok();
}
