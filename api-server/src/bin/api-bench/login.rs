//! `api-bench login`: latency and throughput of `GET /api/auth/me` and `POST /api/auth/login`
//! at a fixed request rate, against baselines measured in the same run.
//!
//! The server runs in this process on a loopback port, over the embedded store and the
//! in-process guard unless `--mongodb-url`/`--redis-url` are given. Load is open-loop: request
//! *i* is due at `start + i / rate` whatever happened to earlier ones; latency counts from the
//! send, and sends that start more than 5 ms late (every connection busy) are counted as `late`,
//! so a run that failed to hold the offered rate says so. Baselines: `GET /` (the HTTP stack,
//! the middleware and the rate limiter, without a token or the store) for `/me`, and one argon2id
//! verification on the blocking pool for login.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use http_body_util::BodyExt;
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

use crate::served::{self, Served};
use finagent_api_server::auth::password::{HashParams, Hasher};

/// Options of `api-bench login`.
#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// Seconds each measured phase lasts.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Concurrent client connections.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Requests per second to `GET /api/auth/me` (and its baseline).
    #[arg(long, default_value_t = 1000.0)]
    pub me_rate: f64,
    /// Logins per second.
    #[arg(long, default_value_t = 20.0)]
    pub login_rate: f64,
    /// Use this Redis for the guard state instead of the in-process one.
    #[arg(long)]
    pub redis_url: Option<String>,
    /// Use this MongoDB instead of the embedded store.
    #[arg(long)]
    pub mongodb_url: Option<String>,
}

type HttpClient = Client<HttpConnector, Body>;

/// What one phase measured.
#[derive(Debug)]
struct Phase {
    name: String,
    rate: f64,
    latencies: Vec<Duration>,
    errors: u64,
    /// Requests sent more than [`LATE`] after they were due: every connection was busy, so the
    /// offered rate was not held and the latencies understate queueing.
    late: u64,
    elapsed: Duration,
}

/// How late a send may start before it counts as late.
const LATE: Duration = Duration::from_millis(5);

impl Phase {
    fn percentile(&self, quantile: f64) -> f64 {
        percentile(&self.latencies, quantile)
    }

    fn print(&self) {
        println!(
            "{:<44} {:>8.0} {:>7} {:>6} {:>5} {:>10.1} {:>8.2} {:>8.2} {:>8.2}",
            self.name,
            self.rate,
            self.latencies.len() as u64 + self.errors,
            self.errors,
            self.late,
            self.latencies.len() as f64 / self.elapsed.as_secs_f64(),
            self.percentile(0.50),
            self.percentile(0.95),
            self.percentile(0.99),
        );
    }
}

/// The `quantile` of sorted latencies, in milliseconds (NaN when there are none).
pub(crate) fn percentile(sorted: &[Duration], quantile: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 * quantile).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1000.0
}

/// Runs the benchmark and prints a table.
pub async fn run(args: LoginArgs) -> anyhow::Result<()> {
    let (store, directory) = served::store(args.mongodb_url.as_deref(), "bench").await?;
    let guard = served::guard(args.redis_url.as_deref(), "bench").await?;
    let hasher = Hasher::new(HashParams::default())?;
    let Served { state, address, .. } =
        served::serve(store, guard, hasher.clone(), served::open_settings(1_000_000)).await?;

    let client: HttpClient =
        Client::builder(TokioExecutor::new()).pool_max_idle_per_host(args.concurrency).build_http();
    let base = format!("http://{address}");
    let password = "a benchmark passphrase";
    send(
        &client,
        post(
            &base,
            "/api/auth/register",
            json!({"username": "bench", "email": "bench@example.com", "password": password}),
        ),
    )
    .await?;
    let login_body = json!({"username": "bench", "password": password});
    let (_, body) = send(&client, post(&base, "/api/auth/login", login_body.clone())).await?;
    let token = serde_json::from_slice::<serde_json::Value>(&body)?["access_token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("login returned no token"))?
        .to_owned();

    let duration = Duration::from_secs(args.duration);
    println!(
        "store: {}, guard: {}, {} connections, {} s per phase, open-loop\n",
        state.store.kind(),
        if args.redis_url.is_some() { "redis" } else { "in-process" },
        args.concurrency,
        args.duration
    );
    println!(
        "{:<44} {:>8} {:>7} {:>6} {:>5} {:>10} {:>8} {:>8} {:>8}",
        "phase", "rate/s", "sent", "errors", "late", "done/s", "p50 ms", "p95 ms", "p99 ms"
    );
    // Warm up connections and caches.
    let get = |path: &'static str, token: Option<String>| {
        let base = base.clone();
        move || {
            let mut request = Request::get(format!("{base}{path}"));
            if let Some(token) = &token {
                request = request.header("authorization", format!("Bearer {token}"));
            }
            request.body(Body::empty()).expect("request")
        }
    };
    load("warm-up", &client, args.me_rate, Duration::from_secs(1), args.concurrency, get("/", None)).await;
    load("GET / (baseline: stack without auth)", &client, args.me_rate, duration, args.concurrency, get("/", None))
        .await
        .print();
    let me = get("/api/auth/me", Some(token));
    load("GET /api/auth/me", &client, args.me_rate, duration, args.concurrency, me).await.print();

    hash_baseline(&hasher, args.login_rate, duration).await?.print();
    let login = {
        let base = base.clone();
        move || post(&base, "/api/auth/login", login_body.clone())
    };
    load("POST /api/auth/login", &client, args.login_rate, duration, args.concurrency.min(8), login).await.print();
    std::fs::remove_dir_all(&directory).ok();
    Ok(())
}

fn post(base: &str, path: &str, body: serde_json::Value) -> Request<Body> {
    Request::post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request")
}

async fn send(client: &HttpClient, request: Request<Body>) -> anyhow::Result<(u16, axum::body::Bytes)> {
    let response = client.request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// Sends `make()` at `rate` for `duration` over `workers` tasks, open-loop.
async fn load<F>(name: &str, client: &HttpClient, rate: f64, duration: Duration, workers: usize, make: F) -> Phase
where
    F: Fn() -> Request<Body> + Clone + Send + Sync + 'static,
{
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now() + Duration::from_millis(10);
    let total = (rate * duration.as_secs_f64()) as u64;
    let tasks: Vec<_> = (0..workers.max(1))
        .map(|_| {
            let (client, next, make) = (client.clone(), Arc::clone(&next), make.clone());
            tokio::spawn(async move {
                let (mut latencies, mut errors, mut late) = (Vec::new(), 0u64, 0u64);
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= total {
                        break;
                    }
                    let due = started + Duration::from_secs_f64(index as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                    let sent = Instant::now();
                    if sent.duration_since(due) > LATE {
                        late += 1;
                    }
                    match send(&client, make()).await {
                        Ok((status, _)) if (200..300).contains(&status) => latencies.push(sent.elapsed()),
                        _ => errors += 1,
                    }
                }
                (latencies, errors, late)
            })
        })
        .collect();
    let mut phase =
        Phase { name: name.to_owned(), rate, latencies: Vec::new(), errors: 0, late: 0, elapsed: Duration::ZERO };
    for task in tasks {
        if let Ok((latencies, errors, late)) = task.await {
            phase.latencies.extend(latencies);
            phase.errors += errors;
            phase.late += late;
        }
    }
    phase.elapsed = started.elapsed();
    phase.latencies.sort();
    phase
}

/// The floor of a login: one argon2id verification on the blocking pool, at the login rate.
async fn hash_baseline(hasher: &Hasher, rate: f64, duration: Duration) -> anyhow::Result<Phase> {
    let hash = hasher.hash("a benchmark passphrase".into()).await?;
    let started = Instant::now();
    let total = (rate * duration.as_secs_f64()) as u64;
    let mut latencies = Vec::new();
    for index in 0..total {
        let due = started + Duration::from_secs_f64(index as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        hasher.verify("a benchmark passphrase".into(), Some(hash.clone())).await?;
        latencies.push(due.elapsed());
    }
    latencies.sort();
    Ok(Phase {
        name: "argon2id verify alone (baseline for login)".into(),
        rate,
        latencies,
        errors: 0,
        late: 0,
        elapsed: started.elapsed(),
    })
}
