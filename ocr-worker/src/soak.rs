//! `ocr-worker soak`: N jobs through M worker processes while a chaos loop kills workers with
//! SIGKILL at random and starts replacements. Prints what was accepted, done, dead-lettered,
//! duplicated and lost. A benchmark of resilience, not a test: it runs for minutes.

use finagent_core::names::env;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use clap::Args;
use finagent_core::UserId;
use finagent_core::job::OcrJob;
use finagent_core::names::InstanceName;
use finagent_core::receipt::Receipt;
use finagent_platform::queue::redis::RedisQueue;
use finagent_platform::queue::{Enqueued, JobQueue, QueuePolicy};
use finagent_platform::store::mongo::MongoStore;
use finagent_platform::store::{BlobStore, ReceiptStore};
use mongodb::bson::{Document, doc};

use crate::files::image_files;

/// Options of `ocr-worker soak`.
#[derive(Debug, Args)]
pub struct SoakArgs {
    /// Redis URL.
    #[arg(long, env = env::REDIS_URL)]
    pub redis_url: String,
    /// MongoDB connection string.
    #[arg(long, env = env::MONGODB_URL)]
    pub mongodb_url: String,
    /// Folder of receipt images to submit (cycled).
    #[arg(long)]
    pub images: PathBuf,
    /// Jobs to submit.
    #[arg(long, default_value_t = 500)]
    pub jobs: usize,
    /// Worker processes.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// SIGKILLs to deliver while jobs remain.
    #[arg(long, default_value_t = 10)]
    pub kills: usize,
    /// Seconds after which the soak gives up waiting.
    #[arg(long, default_value_t = 1800)]
    pub timeout: u64,
    /// Visibility timeout handed to the workers, in seconds.
    #[arg(long, default_value_t = 5)]
    pub visibility_timeout: u64,
}

/// A small deterministic-enough random source (xorshift), seeded from the clock.
struct Chaos(u64);

impl Chaos {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn spawn_worker(args: &SoakArgs, instance: &InstanceName, database: &str) -> anyhow::Result<Child> {
    Ok(Command::new(std::env::current_exe()?)
        .args(["run", "--threads", "1", "--admin-listen", "127.0.0.1:0", "--retry-backoff", "1"])
        .args(["--visibility-timeout", &args.visibility_timeout.to_string()])
        .args(["--redis-url", &args.redis_url, "--mongodb-url", &args.mongodb_url, "--database", database])
        .args(["--instance", instance.as_str()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?)
}

/// Runs the soak and prints the tally.
pub async fn run(args: SoakArgs) -> anyhow::Result<()> {
    let images = image_files(std::slice::from_ref(&args.images))?;
    anyhow::ensure!(!images.is_empty(), "no images in {}", args.images.display());
    let stamp = Utc::now().timestamp_millis();
    let instance: InstanceName = format!("soak-{stamp}").parse()?;
    let database = format!("soak_{stamp}");
    let queue = RedisQueue::connect(&args.redis_url, &instance, QueuePolicy::default()).await?;
    let store = MongoStore::connect(&args.mongodb_url, &database).await?;

    let started = Instant::now();
    let mut accepted = 0usize;
    let owner = UserId::new();
    let bodies: Vec<Vec<u8>> = images.iter().map(std::fs::read).collect::<Result<_, _>>()?;
    for index in 0..args.jobs {
        let receipt = Receipt::queued(owner, format!("soak-{index}"), "image/jpeg", Utc::now());
        store.put_blob(&receipt.blob_key, &bodies[index % bodies.len()]).await?;
        store.insert_receipt(&receipt).await?;
        if queue.enqueue(&OcrJob::new(receipt.id, owner, receipt.blob_key, receipt.created_at)).await?
            == Enqueued::Added
        {
            accepted += 1;
        }
    }
    println!("submitted {accepted} jobs in {:.1}s; starting {} workers", started.elapsed().as_secs_f64(), args.workers);

    let client = mongodb::Client::with_uri_str(&args.mongodb_url).await?;
    let receipts = client.database(&database).collection::<Document>("receipts");
    let mut workers: Vec<Child> =
        (0..args.workers).map(|_| spawn_worker(&args, &instance, &database)).collect::<Result<_, _>>()?;
    let mut chaos = Chaos(u64::try_from(stamp).unwrap_or(1) | 1);
    let mut kills = 0usize;
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let mut next_kill = Instant::now() + Duration::from_millis(1000 + chaos.next() % 4000);
    loop {
        let finished = receipts.count_documents(doc! { "status": { "$in": ["done", "failed"] } }).await?;
        if finished >= u64::try_from(args.jobs).unwrap_or(u64::MAX) || Instant::now() > deadline {
            break;
        }
        if kills < args.kills && Instant::now() >= next_kill {
            let victim = usize::try_from(chaos.next() % u64::try_from(workers.len()).unwrap_or(1)).unwrap_or(0);
            workers[victim].kill()?;
            workers[victim].wait()?;
            workers[victim] = spawn_worker(&args, &instance, &database)?;
            kills += 1;
            println!("kill {kills}: worker {victim} (SIGKILL), replaced; {finished}/{} finished", args.jobs);
            next_kill = Instant::now() + Duration::from_millis(1000 + chaos.next() % 6000);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for worker in &mut workers {
        worker.kill().ok();
        worker.wait().ok();
    }

    let done = receipts.count_documents(doc! { "status": "done" }).await?;
    let failed = receipts.count_documents(doc! { "status": "failed" }).await?;
    let documents = receipts.count_documents(doc! {}).await?;
    let dead = queue.dead_letters(usize::MAX / 2).await?.len();
    let overwrites = receipts.count_documents(doc! { "result_writes": { "$gt": 1 } }).await?;
    let submitted = u64::try_from(args.jobs).unwrap_or(u64::MAX);
    let duplicates = documents.saturating_sub(submitted);
    let lost = submitted.saturating_sub(done + failed);
    println!(
        "soak: {} jobs, {} worker processes, {kills} kills, {:.1}s",
        args.jobs,
        args.workers,
        started.elapsed().as_secs_f64()
    );
    println!(
        "accepted {accepted}  done {done}  dead-lettered {dead}  duplicates {duplicates}  lost {lost}  \
         (receipts failed {failed}; results overwritten by a redelivery {overwrites})"
    );
    client.database(&database).drop().await.ok();
    anyhow::ensure!(lost == 0 && duplicates == 0, "the soak lost or duplicated jobs");
    Ok(())
}
