//! `api-bench growth`: what one user's requests cost as their receipts grow.
//!
//! For each size (100, 10,000 and 100,000 receipts by default) a fresh store is seeded with one
//! user's receipts directly through [`ReceiptStore::insert_receipt`], then the real router serves
//! it on a loopback port and each request is sent `--requests` times, one at a time: the first page
//! of the list, a page from the middle (by cursor), a filtered list, the insights of the last
//! twelve months, and a CSV export of about 1,000 rows. `GET /api/auth/me` (the HTTP stack and
//! authentication, no receipts) is the baseline of each size. The seeded receipts are spread over
//! five years, with OCR text and line items of a real receipt's size. The table gives p50, p95 and
//! p99 in milliseconds, each request's p95 against its own at the smallest size, and the process's
//! resident memory after each size (current and peak).

use std::time::{Duration, Instant};

use axum::body::Body;
use chrono::{Days, NaiveDate, Utc};
use finagent_core::money::{Amount, Currency};
use finagent_core::receipt::{
    Category, EngineInfo, FieldConfidence, LineItem, Merchant, PaymentMethod, Receipt, ReceiptFields, ReceiptResult,
    ReceiptStatus, Timings,
};
use finagent_core::{BlobKey, ReceiptId, UserId};
use finagent_platform::store::{Position, ReceiptStore, SortOrder};
use http_body_util::BodyExt;
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::login::percentile;
use crate::served::{self, Served};
use finagent_api_server::auth::password::{HashParams, Hasher};
use finagent_api_server::guard::Guard;

/// Options of `api-bench growth`.
#[derive(Debug, clap::Args)]
pub struct GrowthArgs {
    /// Receipts of the one user, per run (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "100,10000,100000")]
    pub sizes: Vec<usize>,
    /// Times each request is sent per size.
    #[arg(long, default_value_t = 200)]
    pub requests: usize,
    /// Use this MongoDB (a fresh database per size) instead of the embedded store.
    #[arg(long)]
    pub mongodb_url: Option<String>,
    /// Keep each size's seeded SQLite store (its folder is printed) for inspection.
    #[arg(long)]
    pub keep: bool,
}

type HttpClient = Client<HttpConnector, Body>;

const MERCHANTS: [&str; 12] = [
    "99 Speed Mart",
    "Kedai Papan Yew Chuan",
    "Starbucks Coffee",
    "Tesco Extra",
    "Shell Station",
    "Guardian Pharmacy",
    "Popular Bookstore",
    "Sushi King",
    "Mr DIY",
    "Aeon Big",
    "Watsons",
    "KFC",
];
const CATEGORIES: [Category; 6] = [
    Category::Groceries,
    Category::Dining,
    Category::Hardware,
    Category::Health,
    Category::Transport,
    Category::Office,
];

/// A small deterministic generator, so every run seeds the same receipts.
pub(crate) struct Seed(pub(crate) u64);

impl Seed {
    fn next(&mut self, modulus: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % modulus
    }
}

/// The `index`-th receipt of `owner`: processed, dated within five years before `today`.
pub(crate) fn receipt(owner: UserId, index: usize, today: NaiveDate, seed: &mut Seed) -> Receipt {
    let id = ReceiptId::new();
    let created = Utc::now() - chrono::Duration::seconds(index as i64 * 30);
    let date = today - Days::new(seed.next(5 * 365));
    let merchant = MERCHANTS[seed.next(MERCHANTS.len() as u64) as usize];
    let total = Amount::from_minor(100 + seed.next(20_000) as i64, 2);
    let items: Vec<LineItem> = (0..5)
        .map(|n| LineItem {
            description: format!("ITEM {n} OF RECEIPT {index}"),
            quantity: None,
            unit_price: Some(Amount::from_minor(100 + n, 2)),
            amount: Some(Amount::from_minor(100 + n, 2)),
        })
        .collect();
    let text = format!(
        "{merchant}\nNO 12 JALAN EXAMPLE 3/4\n43000 KAJANG SELANGOR\nTEL 03-1234 5678\n{}\n{}\nTOTAL {total}\nCASH {total}\nTHANK YOU",
        date.format("%d/%m/%Y"),
        items.iter().map(|item| format!("{} 1.00", item.description)).collect::<Vec<_>>().join("\n")
    );
    let result = ReceiptResult {
        fields: ReceiptFields {
            merchant: Merchant {
                name: Some(merchant.to_owned()),
                address: Some("NO 12 JALAN EXAMPLE 3/4 43000 KAJANG SELANGOR".into()),
            },
            date: Some(date),
            date_order: None,
            currency: Some(if seed.next(100) == 0 { Currency::USD } else { Currency::MYR }),
            subtotal: None,
            tax: None,
            tip: None,
            total: Some(total),
            payment_method: Some(PaymentMethod::Cash),
            category: Some(CATEGORIES[seed.next(CATEGORIES.len() as u64) as usize]),
            line_items: items,
        },
        confidence: FieldConfidence {
            merchant_name: Some(0.5 + seed.next(50) as f64 / 100.0),
            date: Some(0.9),
            total: Some(0.9),
            ..FieldConfidence::default()
        },
        text: text.repeat(2),
        engine: EngineInfo { name: "tesseract".into(), version: "5.3.0".into() },
        timings: Timings::default(),
        layout: None,
        country: None,
        locale: None,
        debug: None,
    };
    Receipt {
        id,
        owner_id: owner,
        status: ReceiptStatus::Done,
        blob_key: BlobKey::for_receipt(id),
        image_sha256: format!("{index:064x}"),
        file_name: Some(format!("receipt-{index}.jpg")),
        content_type: "image/jpeg".into(),
        created_at: created,
        updated_at: created,
        failure: None,
        result: Some(result),
        corrected: None,
        idempotency_key: None,
        image_bytes: 250_000,
    }
}

/// Resident and peak resident memory of this process, in MiB.
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// One request's latencies at one size.
struct Measured {
    name: &'static str,
    sorted: Vec<Duration>,
}

/// Runs the benchmark and prints the table.
pub async fn run(args: GrowthArgs) -> anyhow::Result<()> {
    let today = Utc::now().date_naive();
    println!(
        "store: {}, {} requests per row, one at a time; latencies in ms; x = p95 / p95 at {} receipts\n",
        if args.mongodb_url.is_some() { "mongodb" } else { "sqlite" },
        args.requests,
        args.sizes.first().copied().unwrap_or_default()
    );
    println!(
        "{:>8}  {:<34} {:>8} {:>8} {:>8} {:>6}   {:>9} {:>9}",
        "receipts", "request", "p50", "p95", "p99", "x", "rss MiB", "peak MiB"
    );
    let mut first_p95: Vec<(&'static str, f64)> = Vec::new();
    for &size in &args.sizes {
        let (store, directory) = served::store(args.mongodb_url.as_deref(), &format!("growth-{size}")).await?;
        let mut settings = served::open_settings(1_000_000);
        settings.export_max_rows = 1_000_000;
        let Served { state, address, task: server } =
            served::serve(store, Guard::memory(), Hasher::new(HashParams::default())?, settings).await?;
        let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        let base = format!("http://{address}");
        let owner = sign_up(&client, &base).await?;

        let seeding = Instant::now();
        let mut seed = Seed(42);
        let mut receipts = Vec::with_capacity(size);
        for index in 0..size {
            let receipt = receipt(owner, index, today, &mut seed);
            state.store.insert_receipt(&receipt).await?;
            receipts.push((receipt.created_at, receipt.id, receipt.result.and_then(|result| result.fields.date)));
        }
        eprintln!("seeded {size} receipts in {:.1} s", seeding.elapsed().as_secs_f64());

        // The middle of the list by upload time, and the purchase date ~1,000 receipts back.
        receipts.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let middle = receipts[receipts.len() / 2];
        let middle = Position { primary: 0.0, created_us: middle.0.timestamp_micros(), id: middle.1 };
        let cursor = finagent_api_server::receipts::encode_cursor(SortOrder::Newest, &middle);
        let mut dates: Vec<NaiveDate> = receipts.iter().filter_map(|receipt| receipt.2).collect();
        dates.sort_unstable_by(|a, b| b.cmp(a));
        let export_from = dates[dates.len().min(1_000) - 1];
        let paths: [(&'static str, String); 6] = [
            ("GET /api/auth/me (baseline)", "/api/auth/me".into()),
            ("list, first page", "/api/receipts?limit=20".into()),
            ("list, middle page (cursor)", format!("/api/receipts?limit=20&cursor={cursor}")),
            ("list, merchant + category filter", "/api/receipts?limit=20&merchant=mart&category=groceries".into()),
            ("insights, last 12 months", "/api/insights/summary".into()),
            ("CSV export, ~1,000 rows", format!("/api/receipts/export.csv?from={export_from}&to={today}")),
        ];
        let mut rows = Vec::new();
        for (name, path) in &paths {
            // A fresh session per row: seeding and a slow store can outlast an access token.
            let token = sign_in(&client, &base).await?;
            let request = || {
                Request::get(format!("{base}{path}"))
                    .header("authorization", format!("Bearer {token}"))
                    .body(Body::empty())
                    .expect("request")
            };
            for _ in 0..args.requests.div_ceil(10) {
                send(&client, request()).await?;
            }
            let mut sorted = Vec::with_capacity(args.requests);
            for _ in 0..args.requests {
                let sent = Instant::now();
                send(&client, request()).await?;
                sorted.push(sent.elapsed());
            }
            sorted.sort();
            rows.push(Measured { name, sorted });
        }
        let (rss, peak) = memory();
        for (index, row) in rows.iter().enumerate() {
            let p95 = percentile(&row.sorted, 0.95);
            let baseline = match first_p95.iter().find(|(name, _)| *name == row.name) {
                Some((_, first)) => *first,
                None => {
                    first_p95.push((row.name, p95));
                    p95
                }
            };
            let memory = if index == 0 { format!("{rss:>9.1} {peak:>9.1}") } else { String::new() };
            println!(
                "{size:>8}  {:<34} {:>8.2} {:>8.2} {:>8.2} {:>6.2}   {memory}",
                row.name,
                percentile(&row.sorted, 0.50),
                p95,
                percentile(&row.sorted, 0.99),
                p95 / baseline,
            );
        }
        println!();
        server.abort();
        if args.keep && args.mongodb_url.is_none() {
            eprintln!("kept {}", directory.display());
        } else {
            std::fs::remove_dir_all(&directory).ok();
        }
    }
    Ok(())
}

/// Signs the benchmark's user in: a fresh access token.
pub(crate) async fn sign_in(client: &HttpClient, base: &str) -> anyhow::Result<String> {
    let login = Request::post(format!("{base}/api/auth/login"))
        .header("content-type", "application/json")
        .body(Body::from(serde_json::json!({"username": "scale", "password": "a benchmark passphrase"}).to_string()))
        .expect("request");
    let login: serde_json::Value = serde_json::from_slice(&send_reading(client, login).await?)?;
    Ok(login["access_token"].as_str().ok_or_else(|| anyhow::anyhow!("login returned no token"))?.to_owned())
}

/// Registers the benchmark's user: its id.
pub(crate) async fn sign_up(client: &HttpClient, base: &str) -> anyhow::Result<UserId> {
    let post = |path: &str, body: serde_json::Value| {
        Request::post(format!("{base}{path}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .expect("request")
    };
    let credentials = serde_json::json!({"username": "scale", "password": "a benchmark passphrase"});
    let mut account = credentials.clone();
    account["email"] = "scale@example.com".into();
    send_reading(client, post("/api/auth/register", account)).await?;
    let login: serde_json::Value =
        serde_json::from_slice(&send_reading(client, post("/api/auth/login", credentials)).await?)?;
    let token = login["access_token"].as_str().ok_or_else(|| anyhow::anyhow!("login returned no token"))?.to_owned();
    let me = Request::get(format!("{base}/api/auth/me"))
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .expect("request");
    let me: serde_json::Value = serde_json::from_slice(&send_reading(client, me).await?)?;
    let id = me["id"].as_str().and_then(|id| id.parse().ok()).ok_or_else(|| anyhow::anyhow!("/me returned no id"))?;
    Ok(id)
}

async fn send_reading(client: &HttpClient, request: Request<Body>) -> anyhow::Result<axum::body::Bytes> {
    let response = client.request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        anyhow::bail!("{status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(body)
}

/// Sends a request and reads the whole body; anything but 2xx is an error.
async fn send(client: &HttpClient, request: Request<Body>) -> anyhow::Result<usize> {
    let response = client.request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        anyhow::bail!("{status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(body.len())
}
