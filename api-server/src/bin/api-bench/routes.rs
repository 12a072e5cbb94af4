//! `api-bench routes`: the throughput of every authenticated read route against the
//! server's own cheapest route, `GET /healthz`, in one run.
//!
//! One user's store is seeded with `--receipts` processed receipts (10,000 by default, as
//! `api-bench growth` makes them) and the image of one of them. The real router serves it on a loopback
//! port with the rate limits raised. Each route is then driven closed-loop for `--seconds` by
//! `--connections` keep-alive connections (each sends its next request when the previous answer is
//! read, as `wrk` does) from a client runtime of its own with two threads, after one second of
//! warm-up. The table gives requests per second, p50 and p99 in milliseconds, and each route's
//! ratio to `/healthz`; any answer other than 200 is counted as an error and fails the run. An
//! answer of 16 KiB or more is also measured against the HTTP ceiling of its size: the same
//! number of bytes from a bare router on the same HTTP server, driven the same way right after.

use std::time::{Duration, Instant};

use axum::body::Body;
use chrono::{NaiveDate, Utc};
use finagent_platform::store::{BlobStore, ReceiptStore};
use http_body_util::BodyExt;
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::growth::{Seed, receipt, sign_in, sign_up};
use crate::login::percentile;
use crate::served::{self, Served};
use finagent_api_server::auth::password::{HashParams, Hasher};

/// Options of `api-bench routes`.
#[derive(Debug, clap::Args)]
pub struct RoutesArgs {
    /// Receipts of the one user.
    #[arg(long, default_value_t = 10_000)]
    pub receipts: usize,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// Seconds each route is measured (after one second of warm-up).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Use this MongoDB (a fresh database) instead of the embedded store.
    #[arg(long)]
    pub mongodb_url: Option<String>,
    /// Use this Redis for the guard state instead of the in-process one.
    #[arg(long)]
    pub redis_url: Option<String>,
    /// The receipt image served by the image route.
    #[arg(long, default_value = "ocr-worker/tests/fixtures/receipts/000.jpg")]
    pub image: std::path::PathBuf,
    /// Ask for gzip (`Accept-Encoding: gzip`), as browsers do.
    #[arg(long)]
    pub gzip: bool,
    /// Only these routes (comma-separated: me, list, filter, receipt, image, revalidate, insights,
    /// export);
    /// `/healthz` always runs.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
}

type HttpClient = Client<HttpConnector, Body>;

/// One route's measurement.
struct Measured {
    requests: usize,
    errors: usize,
    elapsed: Duration,
    sorted: Vec<Duration>,
    bytes: usize,
}

impl Measured {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs the benchmark and prints the table.
pub async fn run(args: RoutesArgs) -> anyhow::Result<()> {
    let today = Utc::now().date_naive();
    let (store, directory) = served::store(args.mongodb_url.as_deref(), "routes").await?;
    let guard = served::guard(args.redis_url.as_deref(), "routes").await?;
    let settings = served::open_settings(10_000_000);
    let Served { state, address, task: server } =
        served::serve(store, guard, Hasher::new(HashParams::default())?, settings).await?;
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let base = format!("http://{address}");
    let owner = sign_up(&client, &base).await?;

    let seeding = Instant::now();
    let mut seed = Seed(42);
    let mut first = None;
    let mut dates: Vec<NaiveDate> = Vec::with_capacity(args.receipts);
    for index in 0..args.receipts {
        let receipt = receipt(owner, index, today, &mut seed);
        state.store.insert_receipt(&receipt).await?;
        dates.extend(receipt.result.as_ref().and_then(|result| result.fields.date));
        if first.is_none() {
            state.store.put_blob(&receipt.blob_key, &std::fs::read(&args.image)?).await?;
            first = Some(receipt.id);
        }
    }
    let first = first.ok_or_else(|| anyhow::anyhow!("--receipts must be at least 1"))?;
    dates.sort_unstable_by(|a, b| b.cmp(a));
    // The export covers the last month of purchases (about 1/60 of the receipts).
    let month_ago = today - chrono::Days::new(30);
    let month_rows = dates.iter().take_while(|date| **date >= month_ago).count();
    eprintln!("seeded {} receipts in {:.1} s", args.receipts, seeding.elapsed().as_secs_f64());

    let token = sign_in(&client, &base).await?;
    // The image's validator, as a browser holding it would send it.
    let image_tag = format!(
        "\"{}\"",
        state.store.receipt(first, None).await?.map(|receipt| receipt.image_sha256).unwrap_or_default()
    );
    let routes: Vec<(&str, String, String)> = vec![
        ("healthz", "GET /healthz (no auth, no store)".into(), "/healthz".into()),
        ("me", "GET /api/auth/me".into(), "/api/auth/me".into()),
        ("list", "list, first page (20)".into(), "/api/receipts?limit=20".into()),
        (
            "filter",
            "list, merchant + category filter".into(),
            "/api/receipts?limit=20&merchant=mart&category=groceries".into(),
        ),
        ("receipt", "one receipt".into(), format!("/api/receipts/{first}")),
        ("image", "its image".into(), format!("/api/receipts/{first}/image")),
        ("revalidate", "its image, If-None-Match (304)".into(), format!("/api/receipts/{first}/image")),
        ("insights", "insights, last 12 months".into(), "/api/insights/summary".into()),
        (
            "export",
            format!("CSV export, last 30 days ({month_rows} rows)"),
            format!("/api/receipts/export.csv?from={month_ago}&to={today}"),
        ),
    ];
    let routes: Vec<(String, String, Option<String>)> = routes
        .into_iter()
        .filter(|(key, _, _)| *key == "healthz" || args.only.is_empty() || args.only.iter().any(|only| only == key))
        .map(|(key, name, path)| {
            let tag = (key == "revalidate").then(|| image_tag.clone());
            (name, path, tag)
        })
        .collect();

    // The load runs on its own threads, so the server keeps the process's runtime.
    let load = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    println!(
        "store: {}, guard: {}, {} receipts, {} connections, {} s per route{}\n",
        if args.mongodb_url.is_some() { "mongodb" } else { "sqlite" },
        if args.redis_url.is_some() { "redis" } else { "in-process" },
        args.receipts,
        args.connections,
        args.seconds,
        if args.gzip { ", Accept-Encoding: gzip" } else { "" }
    );
    // The HTTP ceiling of a large answer: the same bytes from a bare router on the same HTTP
    // server, no layers, no authentication, no store, measured right after the route.
    let ceiling = ceiling_server().await?;
    println!(
        "{:<44} {:>10} {:>8} {:>8} {:>9} {:>8} {:>9}",
        "route", "req/s", "p50 ms", "p99 ms", "KiB/resp", "/healthz", "/ceiling"
    );
    let mut baseline = None;
    let mut largest_ceiling: Option<(usize, f64)> = None;
    let mut failed = Vec::new();
    for (name, path, tag) in &routes {
        let measure = |base: String, path: String, tag: Option<String>| {
            load.spawn(drive(
                base,
                path,
                token.clone(),
                args.gzip,
                tag,
                args.connections,
                Duration::from_secs(args.seconds),
            ))
        };
        let measured = measure(base.clone(), path.clone(), tag.clone()).await??;
        if measured.requests == 0 {
            println!("{name:<44} no answer within {} s", args.seconds + 1);
            continue;
        }
        let per_second = measured.per_second();
        let baseline = *baseline.get_or_insert(per_second);
        let size = measured.bytes / measured.requests.max(1);
        let against_ceiling = if size >= CEILING_FROM {
            let bare = measure(ceiling.clone(), format!("/bytes/{size}"), None).await??;
            if largest_ceiling.is_none_or(|(largest, _)| size > largest) {
                largest_ceiling = Some((size, bare.per_second()));
            }
            format!("{:>8.0}%", 100.0 * per_second / bare.per_second())
        } else {
            String::new()
        };
        println!(
            "{:<44} {:>10.0} {:>8.2} {:>8.2} {:>9.1} {:>7.0}% {against_ceiling:>9}",
            name,
            per_second,
            percentile(&measured.sorted, 0.50),
            percentile(&measured.sorted, 0.99),
            size as f64 / 1024.0,
            100.0 * per_second / baseline,
        );
        if measured.errors > 0 {
            failed.push(format!("{name}: {} answers other than 200", measured.errors));
        }
    }
    // What the bytes of the large answers cost on their own: the bare router's empty answer beside
    // its largest one.
    if let Some(largest) = largest_ceiling {
        let empty = load
            .spawn(drive(
                ceiling.clone(),
                "/bytes/0".into(),
                token.clone(),
                args.gzip,
                None,
                args.connections,
                Duration::from_secs(args.seconds),
            ))
            .await??;
        let per_request = |per_second: f64| 1e6 / per_second;
        println!(
            "\nbare router: an empty answer {:.1} µs a request, {:.1} KiB {:.1} µs; /healthz {:.1} µs",
            per_request(empty.per_second()),
            largest.0 as f64 / 1024.0,
            per_request(largest.1),
            per_request(baseline.unwrap_or(f64::NAN)),
        );
    }
    load.shutdown_background();
    server.abort();
    std::fs::remove_dir_all(&directory).ok();
    anyhow::ensure!(failed.is_empty(), "{}", failed.join("; "));
    Ok(())
}

/// Answers of at least this many bytes are also measured against the HTTP ceiling of their size.
const CEILING_FROM: usize = 16 * 1024;

/// A bare router on the same HTTP server: `GET /bytes/{n}` answers `n` bytes (at most 4 MiB),
/// sliced from one buffer, so it costs no allocation. Returns its base URL.
async fn ceiling_server() -> anyhow::Result<String> {
    let buffer = axum::body::Bytes::from(vec![b'x'; 4 << 20]);
    let router = axum::Router::new().route(
        "/bytes/{n}",
        axum::routing::get(move |axum::extract::Path(n): axum::extract::Path<usize>| {
            let buffer = buffer.clone();
            async move { buffer.slice(..n.min(buffer.len())) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        finagent_api_server::listen::serve(listener, router, Default::default(), std::future::pending()).await.ok();
    });
    Ok(format!("http://{address}"))
}

/// Drives `path` from `connections` keep-alive connections for one second of warm-up, then
/// `duration`, and measures the latter.
async fn drive(
    base: String,
    path: String,
    token: String,
    gzip: bool,
    if_none_match: Option<String>,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Measured> {
    let uri: hyper::Uri = format!("{base}{path}").parse()?;
    let authorization = format!("Bearer {token}");
    let warm_until = Instant::now() + Duration::from_secs(1);
    let until = warm_until + duration;
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let uri = uri.clone();
        let authorization = authorization.clone();
        let if_none_match = if_none_match.clone();
        tasks.push(tokio::spawn(async move {
            // One client per task: each holds its own connection.
            let client: HttpClient = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(1).build_http();
            let mut latencies = Vec::new();
            let (mut errors, mut bytes) = (0usize, 0usize);
            loop {
                let mut request = Request::get(uri.clone()).header("authorization", authorization.as_str());
                if gzip {
                    request = request.header("accept-encoding", "gzip");
                }
                if let Some(tag) = &if_none_match {
                    request = request.header("if-none-match", tag.as_str());
                }
                let request = request.body(Body::empty()).expect("request");
                let sent = Instant::now();
                let response = client.request(request).await?;
                let expected =
                    if if_none_match.is_some() { hyper::StatusCode::NOT_MODIFIED } else { hyper::StatusCode::OK };
                let ok = response.status() == expected;
                // Read and dropped frame by frame, as `wrk` does: the client does not copy bodies.
                let mut body = response.into_body();
                let mut length = 0;
                while let Some(frame) = body.frame().await {
                    length += frame?.data_ref().map_or(0, |data| data.len());
                }
                let done = Instant::now();
                if done >= until {
                    break;
                }
                if sent >= warm_until {
                    latencies.push(done - sent);
                    bytes += length;
                    errors += usize::from(!ok);
                }
            }
            anyhow::Ok((latencies, errors, bytes))
        }));
    }
    let mut measured = Measured { requests: 0, errors: 0, elapsed: duration, sorted: Vec::new(), bytes: 0 };
    for task in tasks {
        let (latencies, errors, bytes) = task.await??;
        measured.requests += latencies.len();
        measured.errors += errors;
        measured.bytes += bytes;
        measured.sorted.extend(latencies);
    }
    measured.sorted.sort_unstable();
    Ok(measured)
}
