//! `api-bench load`: a load client for a running server. N clients upload receipts concurrently
//! and poll each until it is read; it prints upload-to-result latency (p50/p95), receipts per
//! minute, then the latency of `GET /api/ocr/result/{id}` on the finished receipts.
//!
//! Each upload is made unique (a JPEG comment segment carrying a counter is inserted after the
//! start-of-image marker), so per-user de-duplication does not turn the load into replays.
//! `scripts/bench-ocr.sh` runs it against the all-in-one server and against the API with two
//! separate worker processes over Redis.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use http_body_util::BodyExt;
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use crate::login::percentile;

/// Options of `api-bench load`.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub url: String,
    /// Concurrent clients.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Receipts to upload in all.
    #[arg(long, default_value_t = 40)]
    pub receipts: usize,
    /// Folder of JPEG receipts to cycle through.
    #[arg(long, default_value = "ocr-worker/tests/fixtures/receipts")]
    pub images: PathBuf,
    /// A label printed with the results.
    #[arg(long, default_value = "")]
    pub label: String,
}

type HttpClient = Client<HttpConnector, Body>;

async fn call(client: &HttpClient, request: Request<Body>) -> anyhow::Result<(u16, Value)> {
    let response = client.request(request).await?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}

fn json_post(url: String, body: &Value) -> Request<Body> {
    Request::post(url).header("content-type", "application/json").body(Body::from(body.to_string())).expect("request")
}

/// `jpeg` with a comment segment holding `tag` after its start-of-image marker.
pub fn tagged_jpeg(jpeg: &[u8], tag: &str) -> Vec<u8> {
    let comment = tag.as_bytes();
    let length = u16::try_from(comment.len() + 2).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(jpeg.len() + comment.len() + 4);
    out.extend_from_slice(&jpeg[..2]);
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(comment);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// Runs the load and prints the results.
pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    let mut images = Vec::new();
    for entry in std::fs::read_dir(&args.images)? {
        let path = entry?.path();
        if path.extension().is_some_and(|extension| extension.eq_ignore_ascii_case("jpg")) {
            images.push(std::fs::read(&path)?);
        }
    }
    anyhow::ensure!(!images.is_empty(), "no .jpg images in {}", args.images.display());
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let user = format!("load{}", std::process::id());
    let password = "a load-testing passphrase";
    let register = json!({"username": user, "email": format!("{user}@example.com"), "password": password});
    call(&client, json_post(format!("{}/api/auth/register", args.url), &register)).await?;
    let (status, login) = call(
        &client,
        json_post(format!("{}/api/auth/login", args.url), &json!({"username": user, "password": password})),
    )
    .await?;
    anyhow::ensure!(status == 200, "login failed with {status}: {login}");
    let token = Arc::new(login["access_token"].as_str().unwrap_or_default().to_owned());

    let images = Arc::new(images);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.clients.max(1))
        .map(|_| {
            let (client, images, next, token, url) =
                (client.clone(), Arc::clone(&images), Arc::clone(&next), Arc::clone(&token), args.url.clone());
            let total = args.receipts;
            tokio::spawn(async move {
                let mut done = Vec::new();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= total {
                        break;
                    }
                    let image = tagged_jpeg(&images[index % images.len()], &format!("load {} {index}", std::process::id()));
                    let boundary = "finagent-load-boundary";
                    let mut body = format!(
                        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{index}.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
                    )
                    .into_bytes();
                    body.extend_from_slice(&image);
                    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
                    let upload = Request::post(format!("{url}/api/ocr/process"))
                        .header("authorization", format!("Bearer {token}"))
                        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
                        .body(Body::from(body))
                        .expect("request");
                    let sent = Instant::now();
                    let (status, task) = call(&client, upload).await?;
                    anyhow::ensure!(status == 202, "upload answered {status}: {task}");
                    let id = task["task_id"].as_str().unwrap_or_default().to_owned();
                    loop {
                        let poll = Request::get(format!("{url}/api/ocr/status/{id}"))
                            .header("authorization", format!("Bearer {token}"))
                            .body(Body::empty())
                            .expect("request");
                        let (_, status) = call(&client, poll).await?;
                        match status["status"].as_str() {
                            Some("done") => break,
                            Some("failed") => anyhow::bail!("receipt {id} failed: {}", status["failure"]),
                            _ => tokio::time::sleep(Duration::from_millis(50)).await,
                        }
                    }
                    done.push((id, sent.elapsed()));
                }
                anyhow::Ok(done)
            })
        })
        .collect();
    let mut finished = Vec::new();
    for task in tasks {
        finished.extend(task.await??);
    }
    let elapsed = started.elapsed();
    let mut latencies: Vec<Duration> = finished.iter().map(|(_, latency)| *latency).collect();
    latencies.sort();

    // Reading results: each finished receipt, ten times, from the same number of clients.
    let ids = Arc::new(finished.into_iter().map(|(id, _)| id).collect::<Vec<_>>());
    let reads = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..args.clients.max(1))
        .map(|_| {
            let (client, ids, reads, token, url) =
                (client.clone(), Arc::clone(&ids), Arc::clone(&reads), Arc::clone(&token), args.url.clone());
            tokio::spawn(async move {
                let mut timings = Vec::new();
                loop {
                    let index = reads.fetch_add(1, Ordering::Relaxed);
                    if index >= ids.len() * 10 {
                        break;
                    }
                    let request = Request::get(format!("{url}/api/ocr/result/{}", ids[index % ids.len()]))
                        .header("authorization", format!("Bearer {token}"))
                        .body(Body::empty())
                        .expect("request");
                    let sent = Instant::now();
                    let (status, _) = call(&client, request).await?;
                    anyhow::ensure!(status == 200, "result answered {status}");
                    timings.push(sent.elapsed());
                }
                anyhow::Ok(timings)
            })
        })
        .collect();
    let mut result_reads = Vec::new();
    for reader in readers {
        result_reads.extend(reader.await??);
    }
    result_reads.sort();
    println!(
        "{:<34} clients {:>2}  receipts {:>4}  upload→result p50 {:>7.0} ms  p95 {:>7.0} ms  {:>6.1} receipts/min  \
         GET result p50 {:.2} ms  p95 {:.2} ms  p99 {:.2} ms",
        args.label,
        args.clients,
        latencies.len(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.95),
        latencies.len() as f64 / elapsed.as_secs_f64() * 60.0,
        percentile(&result_reads, 0.50),
        percentile(&result_reads, 0.95),
        percentile(&result_reads, 0.99),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tagged_jpeg_is_still_a_jpeg_with_other_bytes() {
        let jpeg = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../ocr-worker/tests/fixtures/receipts/000.jpg"))
            .expect("fixture");
        let (one, two) = (tagged_jpeg(&jpeg, "one"), tagged_jpeg(&jpeg, "two"));
        assert_ne!(one, two);
        let limits = finagent_platform::image_input::ImageLimits::default();
        let original = finagent_platform::image_input::inspect(&jpeg, &limits).expect("original");
        assert_eq!(finagent_platform::image_input::inspect(&one, &limits).expect("tagged"), original);
    }
}
