//! Fault tests of the OCR worker with real processes, real Redis and the MongoDB-wire server:
//! a worker killed with SIGKILL in the middle of OCR loses nothing; a file that can never be read
//! fails its receipt after one delivery, without retries or a dead letter; and a MongoDB outage of
//! 30 seconds delays a job without failing or dead-lettering it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use finagent_core::job::OcrJob;
use finagent_core::names::InstanceName;
use finagent_core::receipt::{Receipt, ReceiptStatus};
use finagent_core::{ReceiptId, UserId};
use finagent_platform::queue::redis::RedisQueue;
use finagent_platform::queue::{JobQueue, QueuePolicy};
use finagent_platform::store::mongo::MongoStore;
use finagent_platform::store::{BlobStore, ReceiptStore};
use finagent_platform::testkit;

struct Platform {
    redis_url: String,
    mongodb_url: String,
    database: String,
    instance: InstanceName,
    queue: RedisQueue,
    store: MongoStore,
}

async fn platform() -> Option<Platform> {
    let redis_url = testkit::redis_url()?;
    let mongodb_url = testkit::mongodb_url()?;
    let instance: InstanceName = testkit::unique_name("w").parse().expect("dns label");
    let database = instance.to_string().replace('-', "_");
    let queue = RedisQueue::connect(&redis_url, &instance, QueuePolicy::default()).await.expect("redis");
    let store = MongoStore::connect(&mongodb_url, &database).await.expect("mongodb");
    Some(Platform { redis_url, mongodb_url, database, instance, queue, store })
}

impl Platform {
    /// What the API does on upload: store the image and the receipt, then enqueue the job.
    async fn submit(&self, image: &[u8]) -> ReceiptId {
        let owner = UserId::new();
        let receipt = Receipt::queued(owner, format!("{}", ReceiptId::new()), "image/jpeg", Utc::now());
        self.store.put_blob(&receipt.blob_key, image).await.expect("blob");
        self.store.insert_receipt(&receipt).await.expect("receipt");
        self.queue
            .enqueue(&OcrJob::new(receipt.id, owner, receipt.blob_key, receipt.created_at))
            .await
            .expect("enqueue");
        receipt.id
    }

    fn worker(&self) -> Child {
        self.worker_with_admin("127.0.0.1:0")
    }

    fn worker_with_admin(&self, admin: &str) -> Child {
        Command::new(env!("CARGO_BIN_EXE_ocr-worker"))
            .args([
                "run",
                "--threads",
                "1",
                "--admin-listen",
                admin,
                "--visibility-timeout",
                "2",
                "--retry-backoff",
                "0",
            ])
            .args(["--redis-url", &self.redis_url, "--mongodb-url", &self.mongodb_url, "--database", &self.database])
            .args(["--instance", self.instance.as_str()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("worker starts")
    }

    async fn status(&self, id: ReceiptId) -> Receipt {
        self.store.receipt(id, None).await.expect("read").expect("exists")
    }

    async fn wait_for(&self, id: ReceiptId, wanted: ReceiptStatus, limit: Duration) -> Receipt {
        let started = Instant::now();
        loop {
            let receipt = self.status(id).await;
            if receipt.status == wanted {
                return receipt;
            }
            assert!(started.elapsed() < limit, "receipt {id} still {:?} after {limit:?}", receipt.status);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/receipts").join(name))
        .expect("fixture")
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_ocr_loses_nothing_and_stores_one_result() {
    let Some(platform) = platform().await else { return };
    let receipts = [platform.submit(&fixture("010.jpg")).await, platform.submit(&fixture("015.jpg")).await];

    let mut doomed = platform.worker();
    platform.wait_for(receipts[0], ReceiptStatus::Processing, Duration::from_secs(30)).await;
    doomed.kill().expect("SIGKILL");
    doomed.wait().expect("reaped");
    assert_ne!(platform.status(receipts[0]).await.status, ReceiptStatus::Done, "killed before the result was stored");

    let mut survivor = platform.worker();
    for id in receipts {
        let receipt = platform.wait_for(id, ReceiptStatus::Done, Duration::from_secs(60)).await;
        assert!(receipt.result.is_some_and(|result| result.fields.total.is_some()), "{id} has its result");
    }
    survivor.kill().ok();
    survivor.wait().ok();

    let client = mongodb::Client::with_uri_str(&platform.mongodb_url).await.expect("client");
    let collection = client.database(&platform.database).collection::<mongodb::bson::Document>("receipts");
    for id in receipts {
        let copies = collection.count_documents(mongodb::bson::doc! { "_id": id.to_string() }).await.expect("count");
        assert_eq!(copies, 1, "exactly one stored receipt and result for {id}");
    }
    assert_eq!(platform.queue.depth().await.expect("depth").total(), 0, "nothing left in the queue");
    assert!(platform.queue.dead_letters(10).await.expect("dead letters").is_empty());
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port()
}

/// The worker's job counters, from its metrics endpoint.
fn job_counts(admin_port: u16) -> String {
    let output =
        Command::new("curl").args(["-s", &format!("http://127.0.0.1:{admin_port}/metrics")]).output().expect("curl");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.starts_with("finagent_ocr_jobs_total"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn poison_image_fails_its_receipt_after_one_delivery() {
    let Some(platform) = platform().await else { return };
    let id = platform.submit(b"this is not an image at all").await;
    let admin_port = free_port();
    let mut worker = platform.worker_with_admin(&format!("127.0.0.1:{admin_port}"));
    let receipt = platform.wait_for(id, ReceiptStatus::Failed, Duration::from_secs(60)).await;
    assert_eq!(receipt.failure.as_deref(), Some("unreadable_image"), "{receipt:?}");
    // With a zero retry backoff, a retried job would be delivered again at once: give it time.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let counts = job_counts(admin_port);
    worker.kill().ok();
    worker.wait().ok();
    assert!(counts.contains(r#"outcome="failed"} 1"#), "{counts}");
    assert!(!counts.contains("retried") && !counts.contains("dead_lettered"), "delivered once: {counts}");
    assert!(platform.queue.dead_letters(10).await.expect("dead letters").is_empty(), "no dead letter for a bad file");
    assert_eq!(platform.queue.depth().await.expect("depth").total(), 0, "the job is finished");
}

/// A MongoDB-wire server of this test's own, on disk, that can be stopped and started again.
struct OwnMongo {
    process: Option<Child>,
}

impl OwnMongo {
    fn start(port: u16, directory: PathBuf) -> Option<Self> {
        let venv = std::env::var_os("FINAGENT_TEST_VENV")?;
        let program = PathBuf::from(venv).join("bin/secantusd-py");
        let process = Command::new(program)
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--storage-path"])
            .arg(&directory)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the MongoDB-wire server starts (installed by scripts/test.sh)");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "the MongoDB-wire server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Self { process: Some(process) })
    }

    fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill().ok();
            process.wait().ok();
        }
    }
}

impl Drop for OwnMongo {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_30_second_store_outage_delays_a_job_and_dead_letters_nothing() {
    let Some(mut platform) = platform().await else { return };
    let port = free_port();
    let directory = std::env::temp_dir().join(testkit::unique_name("mongo-outage"));
    std::fs::create_dir_all(&directory).expect("dir");
    let Some(mut mongo) = OwnMongo::start(port, directory.clone()) else {
        assert!(std::env::var_os("FINAGENT_TEST_REQUIRE_SERVERS").is_none(), "FINAGENT_TEST_VENV is required");
        return;
    };
    platform.mongodb_url = format!("mongodb://127.0.0.1:{port}/?directConnection=true&serverSelectionTimeoutMS=2000");
    platform.store = MongoStore::connect(&platform.mongodb_url, &platform.database).await.expect("mongodb");
    // The receipt and its image are stored; then the store goes away before the job is queued.
    let owner = UserId::new();
    let receipt = Receipt::queued(owner, format!("{}", ReceiptId::new()), "image/jpeg", Utc::now());
    platform.store.put_blob(&receipt.blob_key, &fixture("010.jpg")).await.expect("blob");
    platform.store.insert_receipt(&receipt).await.expect("receipt");
    let admin_port = free_port();
    let mut worker = platform.worker_with_admin(&format!("127.0.0.1:{admin_port}"));
    // Let the worker connect while the store is up.
    let started = Instant::now();
    while job_counts(admin_port).is_empty() && std::net::TcpStream::connect(("127.0.0.1", admin_port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "the worker did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    mongo.stop();
    platform
        .queue
        .enqueue(&OcrJob::new(receipt.id, owner, receipt.blob_key.clone(), receipt.created_at))
        .await
        .expect("enqueue");
    tokio::time::sleep(Duration::from_secs(30)).await;
    let during = job_counts(admin_port);
    let mongo = OwnMongo::start(port, directory.clone()).expect("restarted");
    let done = platform.wait_for(receipt.id, ReceiptStatus::Done, Duration::from_secs(90)).await;
    let after = job_counts(admin_port);
    worker.kill().ok();
    worker.wait().ok();
    drop(mongo);
    std::fs::remove_dir_all(&directory).ok();
    assert!(done.result.is_some(), "{done:?}");
    assert!(during.contains("store_retry"), "the worker retried the store during the outage: {during}");
    assert!(!after.contains("dead_lettered") && !after.contains(r#"outcome="failed""#), "{after}");
    assert!(!after.contains(r#"outcome="retried""#), "an outage is not an attempt: {after}");
    assert!(platform.queue.dead_letters(10).await.expect("dead letters").is_empty(), "nothing dead-lettered");
}

/// A Redis server of this test's own, with append-only persistence, that can be restarted.
struct OwnRedis {
    port: u16,
    directory: PathBuf,
    process: Child,
}

impl OwnRedis {
    fn start(port: u16, directory: PathBuf) -> Self {
        let process = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(&directory)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts (installed by scripts/test.sh)");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(10), "redis did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { port, directory, process }
    }

    fn crash_and_restart(mut self) -> Self {
        self.process.kill().expect("SIGKILL redis");
        self.process.wait().expect("reaped");
        Self::start(self.port, self.directory.clone())
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.process.kill().ok();
        self.process.wait().ok();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_redis_with_jobs_queued_loses_nothing() {
    let Some(mut platform) = platform().await else { return };
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let directory = std::env::temp_dir().join(testkit::unique_name("redis-aof"));
    std::fs::create_dir_all(&directory).expect("dir");
    let redis = OwnRedis::start(port, directory.clone());
    platform.redis_url = format!("redis://127.0.0.1:{port}/");
    platform.queue =
        RedisQueue::connect(&platform.redis_url, &platform.instance, QueuePolicy::default()).await.expect("redis");

    let mut receipts = Vec::new();
    for name in ["000.jpg", "005.jpg", "010.jpg", "015.jpg"] {
        receipts.push(platform.submit(&fixture(name)).await);
    }
    let redis = redis.crash_and_restart();
    assert_eq!(platform.queue.depth().await.expect("depth after restart").total(), 4, "every accepted job survived");

    let mut worker = platform.worker();
    platform.wait_for(receipts[0], ReceiptStatus::Done, Duration::from_secs(60)).await;
    // Restart again while the worker is connected: it must reconnect by itself.
    let _redis = redis.crash_and_restart();
    for id in &receipts {
        platform.wait_for(*id, ReceiptStatus::Done, Duration::from_secs(90)).await;
    }
    // A receipt is done once its result is stored, just before its job is acknowledged; an ack
    // lost to the crash is redone after the visibility timeout. Either way the queue drains.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let depth = platform.queue.depth().await.expect("depth").total();
        if depth == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{depth} jobs still queued a minute after every receipt was done");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    worker.kill().ok();
    worker.wait().ok();
    std::fs::remove_dir_all(&directory).ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_claiming_and_finishes_the_job_in_flight() {
    let Some(platform) = platform().await else { return };
    // One OCR slot: the worker claims the first job only, and the second waits in the stream.
    let first = platform.submit(&fixture("010.jpg")).await;
    let queued_later = platform.submit(&fixture("015.jpg")).await;
    let mut worker = platform.worker();
    platform.wait_for(first, ReceiptStatus::Processing, Duration::from_secs(30)).await;
    let status = Command::new("kill").args(["-TERM", &worker.id().to_string()]).status().expect("kill -TERM");
    assert!(status.success());
    let stopped = Instant::now();
    let exit = loop {
        if let Some(exit) = worker.try_wait().expect("wait") {
            break exit;
        }
        assert!(stopped.elapsed() < Duration::from_secs(20), "the worker did not stop within its grace period");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exit.success(), "a clean exit: {exit:?}");
    assert_eq!(platform.status(first).await.status, ReceiptStatus::Done, "the job in flight was finished");
    assert_eq!(platform.status(queued_later).await.status, ReceiptStatus::Queued, "nothing new was claimed");
    assert_eq!(platform.queue.depth().await.expect("depth").total(), 1);
}
