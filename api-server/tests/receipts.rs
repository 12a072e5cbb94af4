//! Uploads, tasks, receipts and insights through the API (results stored as a worker would, so
//! these run without Tesseract; the walkthrough test runs the real pipeline).

mod support;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use finagent_api_server::config::Settings;
use finagent_api_server::guard::Guard;
use finagent_core::account::Role;
use finagent_core::job::QueueDepth;
use finagent_platform::queue::JobQueue;
use finagent_platform::store::{BlobStore, ReceiptStore};
use serde_json::json;
use support::{TestApp, generous_limits, multipart, result, unique_png};

#[tokio::test]
async fn an_upload_is_queued_with_its_image_stored() {
    let app = TestApp::new().await;
    let user = app.account("up", Role::User).await;
    let image = unique_png();
    let reply = app.upload(Some(&user.access), &image, None).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.json);
    assert_eq!(reply.json["status"], "queued");
    let id = reply.json["task_id"].as_str().expect("task id");
    assert_eq!(reply.headers["location"], format!("/api/ocr/status/{id}"));
    let receipt = app.state.store.receipt(id.parse().expect("uuid"), None).await.expect("read").expect("stored");
    assert_eq!(receipt.content_type, "image/png");
    assert_eq!(app.state.store.blob(&receipt.blob_key).await.expect("blob"), Some(image));
    assert_eq!(app.state.queue.depth().await.expect("depth"), QueueDepth { lag: 1, pending: 0 });
    let status = app.call(Method::GET, &format!("/api/ocr/status/{id}"), Some(&user.access), None).await;
    assert_eq!(status.json["status"], "queued");
    let pending = app.call(Method::GET, &format!("/api/ocr/result/{id}"), Some(&user.access), None).await;
    assert_eq!(pending.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn idempotent_upload_with_the_same_key_returns_the_same_task() {
    let app = TestApp::new().await;
    let user = app.account("idem", Role::User).await;
    let first = app.upload(Some(&user.access), &unique_png(), Some("order-42")).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    // A retry with the same key, even with other bytes (a re-encoded photo), is the same task.
    let again = app.upload(Some(&user.access), &unique_png(), Some("order-42")).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.json["task_id"], first.json["task_id"]);
    assert_eq!(app.state.queue.depth().await.expect("depth").total(), 1, "one job only");
    // The same key from another user is theirs alone.
    let other = app.account("idem", Role::User).await;
    assert_eq!(app.upload(Some(&other.access), &unique_png(), Some("order-42")).await.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn idempotent_upload_of_the_same_image_returns_the_same_task() {
    let app = TestApp::new().await;
    let user = app.account("same", Role::User).await;
    let image = unique_png();
    let first = app.upload(Some(&user.access), &image, None).await;
    let again = app.upload(Some(&user.access), &image, None).await;
    assert_eq!((first.status, again.status), (StatusCode::ACCEPTED, StatusCode::OK));
    assert_eq!(again.json["task_id"], first.json["task_id"]);
    let listed = app.call(Method::GET, "/api/receipts", Some(&user.access), None).await;
    assert_eq!(listed.json["items"].as_array().expect("items").len(), 1);
    // After deleting it, the same image is a new upload.
    let id = first.json["task_id"].as_str().expect("id");
    let deleted = app.call(Method::DELETE, &format!("/api/receipts/{id}"), Some(&user.access), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(app.upload(Some(&user.access), &image, None).await.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn idempotent_uploads_sent_at_once_create_one_task() {
    let mut settings = Settings::for_tests();
    settings.limits = generous_limits();
    settings.quota.uploads_at_once = 4;
    let app = TestApp::with(Guard::memory(), settings).await;
    let user = app.account("race", Role::User).await;
    let image = unique_png();
    let replies = futures::future::join_all((0..4).map(|_| app.upload(Some(&user.access), &image, None))).await;
    let created = replies.iter().filter(|reply| reply.status == StatusCode::ACCEPTED).count();
    assert_eq!(created, 1, "{:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    let ids: std::collections::BTreeSet<_> = replies.iter().map(|reply| reply.json["task_id"].to_string()).collect();
    assert_eq!(ids.len(), 1);
}

#[tokio::test]
async fn hostile_uploads_get_clear_errors_and_leave_nothing_behind() {
    let mut settings = Settings::for_tests();
    settings.limits = generous_limits();
    settings.image_limits.max_bytes = 4096;
    let app = TestApp::with(Guard::memory(), settings).await;
    let user = app.account("hostile", Role::User).await;
    let truncated_jpeg = {
        let mut jpeg =
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../ocr-worker/tests/fixtures/receipts/000.jpg"))
                .expect("fixture");
        jpeg.truncate(2000);
        jpeg
    };
    let huge_header = {
        // A PNG whose header claims 20,000 × 20,000 pixels (checksummed, so only the size is wrong).
        let mut png = support::png(1);
        png[16..20].copy_from_slice(&20_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&20_000u32.to_be_bytes());
        let crc = crc32(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        png
    };
    for (bytes, expected, why) in [
        (b"just some text, not an image".to_vec(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "not a supported receipt file"),
        (Vec::new(), StatusCode::UNPROCESSABLE_ENTITY, "empty"),
        (truncated_jpeg[..1000].to_vec(), StatusCode::UNPROCESSABLE_ENTITY, ""),
        (vec![0u8; 5000], StatusCode::PAYLOAD_TOO_LARGE, "above the limit"),
        (huge_header, StatusCode::UNPROCESSABLE_ENTITY, "20000"),
    ] {
        let reply = app.upload(Some(&user.access), &bytes, None).await;
        assert_eq!(reply.status, expected, "{why}: {:?}", reply.json);
        assert!(reply.json["detail"].as_str().unwrap_or_default().contains(why), "{:?}", reply.json);
    }
    // A form without a file, and a body that is not multipart at all.
    let (content_type, body) = multipart(b"", "x");
    let body = String::from_utf8(body).expect("text").replace("name=\"file\"", "name=\"other\"");
    let request = Request::post("/api/ocr/process")
        .header("content-type", content_type)
        .header("authorization", format!("Bearer {}", user.access))
        .body(Body::from(body));
    assert_eq!(app.send(request.expect("request")).await.status, StatusCode::UNPROCESSABLE_ENTITY);
    let reply = app.call(Method::POST, "/api/ocr/process", Some(&user.access), Some(json!({"file": "x"}))).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{:?}", reply.json);
    let bad_key = app.upload(Some(&user.access), &unique_png(), Some("")).await;
    assert_eq!(bad_key.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Nothing was stored or queued.
    assert_eq!(app.state.queue.depth().await.expect("depth").total(), 0);
    assert_eq!(app.state.store.count_receipts(user.id, &Default::default()).await.expect("count"), 0);
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[tokio::test]
async fn receipts_filter_and_page_newest_first() {
    let app = TestApp::new().await;
    let user = app.account("list", Role::User).await;
    let mut ids = Vec::new();
    for (index, (total, date, merchant)) in [
        ("5.00", "2024-01-05", "KEDAI MAJU"),
        ("50.00", "2024-02-10", "AEON BIG"),
        ("15.00", "2024-02-20", "kedai runcit"),
        ("120.00", "2024-03-01", "HARDWARE SDN BHD"),
    ]
    .into_iter()
    .enumerate()
    {
        ids.push(app.processed_receipt(&user, &result(total, date, merchant)).await);
        tokio::time::sleep(std::time::Duration::from_millis(if index < 3 { 5 } else { 0 })).await;
    }
    let list = |query: &str| {
        let path = format!("/api/receipts{query}");
        let token = user.access.clone();
        let app = app.clone();
        async move {
            let reply = app.call(Method::GET, &path, Some(&token), None).await;
            assert_eq!(reply.status, StatusCode::OK, "{path}: {:?}", reply.json);
            reply.json
        }
    };
    let totals = |page: &serde_json::Value| -> Vec<String> {
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|item| item["result"]["total"].as_str().expect("total").to_owned())
            .collect()
    };
    assert_eq!(totals(&list("").await), ["120.00", "15.00", "50.00", "5.00"]);
    assert_eq!(totals(&list("?merchant=kedai").await), ["15.00", "5.00"]);
    assert_eq!(totals(&list("?from=2024-02-01&to=2024-02-29").await), ["15.00", "50.00"]);
    assert_eq!(totals(&list("?min_total=10&max_total=100").await), ["15.00", "50.00"]);
    assert_eq!(totals(&list("?category=groceries&status=done").await).len(), 4);
    assert!(totals(&list("?category=transport").await).is_empty());
    // Pages of two, following the cursor.
    let first = list("?limit=2").await;
    assert_eq!(totals(&first), ["120.00", "15.00"]);
    let cursor = first["next_cursor"].as_str().expect("cursor");
    let second = list(&format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(totals(&second), ["50.00", "5.00"]);
    assert!(second.get("next_cursor").is_none());
    for bad in ["?limit=0", "?limit=101", "?cursor=nonsense", "?from=yesterday", "?min_total=ten", "?category=nope"] {
        let reply = app.call(Method::GET, &format!("/api/receipts{bad}"), Some(&user.access), None).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    // Someone else sees none of them.
    let stranger = app.account("list", Role::User).await;
    let theirs = app.call(Method::GET, "/api/receipts", Some(&stranger.access), None).await;
    assert!(theirs.json["items"].as_array().expect("items").is_empty());
}

#[tokio::test]
async fn corrections_keep_the_original_extraction() {
    let app = TestApp::new().await;
    let user = app.account("fix", Role::User).await;
    let id = app.processed_receipt(&user, &result("12.50", "2024-03-01", "KEDAI MAJU")).await;
    let path = format!("/api/receipts/{id}");
    let reply = app
        .call(
            Method::PATCH,
            &path,
            Some(&user.access),
            Some(json!({"total": "13.50", "merchant_name": "Kedai Maju Jaya", "category": "dining"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json);
    assert_eq!(reply.json["corrected"], true);
    assert_eq!(reply.json["result"]["total"], "13.50");
    assert_eq!(reply.json["result"]["confidence"]["total"], 1.0);
    assert_eq!(reply.json["result"]["category"], "dining");
    assert_eq!(reply.json["original_result"]["total"], "12.50");
    let read = app.call(Method::GET, &path, Some(&user.access), None).await;
    assert_eq!(read.json["result"]["merchant"]["name"], "Kedai Maju Jaya");
    for bad in [json!({"total": 13.5}), json!({"total": "abc"}), json!({"merchant_name": ""}), json!({"colour": "red"})]
    {
        let reply = app.call(Method::PATCH, &path, Some(&user.access), Some(bad.clone())).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    // A receipt still queued cannot be corrected.
    let queued = app.upload(Some(&user.access), &unique_png(), None).await;
    let queued_path = format!("/api/receipts/{}", queued.json["task_id"].as_str().expect("id"));
    let reply = app.call(Method::PATCH, &queued_path, Some(&user.access), Some(json!({"total": "1.00"}))).await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn deleting_a_receipt_removes_its_image_and_result() {
    let app = TestApp::new().await;
    let user = app.account("del", Role::User).await;
    let id = app.processed_receipt(&user, &result("9.00", "2024-03-01", "KEDAI")).await;
    let blob = app.state.store.receipt(id, None).await.expect("read").expect("exists").blob_key;
    let path = format!("/api/receipts/{id}");
    assert_eq!(app.call(Method::DELETE, &path, Some(&user.access), None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.state.store.receipt(id, None).await.expect("read"), None);
    assert_eq!(app.state.store.blob(&blob).await.expect("blob"), None);
    assert_eq!(
        app.call(Method::GET, &format!("/api/ocr/result/{id}"), Some(&user.access), None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.call(Method::DELETE, &path, Some(&user.access), None).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_failed_task_says_why() {
    let app = TestApp::new().await;
    let user = app.account("fail", Role::User).await;
    let reply = app.upload(Some(&user.access), &unique_png(), None).await;
    let id = reply.json["task_id"].as_str().expect("id");
    let receipt_id = id.parse().expect("uuid");
    app.state
        .store
        .set_status(receipt_id, finagent_core::receipt::ReceiptStatus::Failed, Some("timeout"))
        .await
        .expect("fail");
    let result = app.call(Method::GET, &format!("/api/ocr/result/{id}"), Some(&user.access), None).await;
    assert_eq!(result.status, StatusCode::CONFLICT);
    assert!(result.json["detail"].as_str().expect("detail").contains("took too long"), "{:?}", result.json);
    let status = app.call(Method::GET, &format!("/api/ocr/status/{id}"), Some(&user.access), None).await;
    assert_eq!((status.json["status"].as_str(), status.json["failure"].as_str()), (Some("failed"), Some("timeout")));
    assert_eq!(status.json["failure_message"], "reading the image took too long");
}

/// A raw error stored as a failure (by an older worker) never reaches the owner: they get the
/// `internal` code.
#[tokio::test]
async fn raw_failure_text_is_never_shown_to_the_owner() {
    let app = TestApp::new().await;
    let user = app.account("rawfail", Role::User).await;
    let reply = app.upload(Some(&user.access), &unique_png(), None).await;
    let id = reply.json["task_id"].as_str().expect("id");
    let raw = "failed to reach the store: connection refused (mongodb-0.mongodb.finagent.svc:27017)";
    app.state
        .store
        .set_status(id.parse().expect("uuid"), finagent_core::receipt::ReceiptStatus::Failed, Some(raw))
        .await
        .expect("fail");
    for path in [format!("/api/ocr/status/{id}"), format!("/api/receipts/{id}"), format!("/api/ocr/result/{id}")] {
        let reply = app.call(Method::GET, &path, Some(&user.access), None).await;
        assert!(!reply.json.to_string().contains("mongodb"), "{path}: {}", reply.json);
        assert!(reply.json.to_string().contains("internal"), "{path}: {}", reply.json);
    }
}

#[tokio::test]
async fn csv_export_has_one_row_per_receipt_and_defuses_formulas() {
    let app = TestApp::new().await;
    let user = app.account("csv", Role::User).await;
    app.processed_receipt(&user, &result("12.50", "2024-03-01", "=HYPERLINK(\"http://evil\")")).await;
    app.processed_receipt(&user, &result("7.00", "2024-03-02", "KEDAI \"MAJU\"")).await;
    let request = Request::get("/api/receipts/export.csv").header("authorization", format!("Bearer {}", user.access));
    let response = tower::ServiceExt::oneshot(app.router.clone(), request.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
    let bytes = http_body_util::BodyExt::collect(response.into_body()).await.expect("body").to_bytes();
    let text = String::from_utf8(bytes.to_vec()).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("id,status,date,merchant"));
    assert!(lines[1].contains("\"KEDAI \"\"MAJU\"\"\"") && lines[1].contains("\"7.00\""), "{text}");
    assert!(lines[2].contains("\"'=HYPERLINK("), "{text}");
}

/// The export reads the store a page at a time: every row comes once across pages, in purchase
/// order; an export past the row cap is refused before anything is sent.
#[tokio::test]
async fn csv_export_streams_every_row_across_pages_and_refuses_past_its_cap() {
    let mut settings = Settings::for_tests();
    settings.limits = support::generous_limits();
    settings.export_max_rows = 1_200;
    let app = TestApp::with(Guard::memory(), settings).await;
    let user = app.account("csvpages", Role::User).await;
    let first = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).expect("date");
    for index in 0..1_100u32 {
        let mut receipt =
            finagent_core::receipt::Receipt::queued(user.id, format!("{index:064}"), "image/png", chrono::Utc::now());
        receipt.status = finagent_core::receipt::ReceiptStatus::Done;
        let date = first + chrono::Days::new(u64::from(index % 700));
        receipt.result = Some(result("3.00", &date.to_string(), "KEDAI"));
        app.state.store.insert_receipt(&receipt).await.expect("insert");
    }
    let export = |query: &str| {
        let request = Request::get(format!("/api/receipts/export.csv{query}"))
            .header("authorization", format!("Bearer {}", user.access))
            .body(Body::empty())
            .expect("request");
        app.send(request)
    };
    let reply = export("").await;
    assert_eq!(reply.status, StatusCode::OK);
    let text = reply.json.as_str().expect("csv").to_owned();
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 1_100);
    let ids: std::collections::HashSet<&str> = rows.iter().map(|row| row.split(',').next().expect("id")).collect();
    assert_eq!(ids.len(), 1_100, "no row twice across pages");
    let dates: Vec<&str> = rows.iter().map(|row| row.split(',').nth(2).expect("date")).collect();
    assert!(dates.windows(2).all(|pair| pair[0] >= pair[1]), "latest purchase first");
    let ranged = export("?from=2020-01-01&to=2020-01-10").await;
    assert_eq!(ranged.json.as_str().expect("csv").lines().count(), 1 + 20, "ten days, two receipts each");

    let mut tight = Settings::for_tests();
    tight.limits = support::generous_limits();
    tight.export_max_rows = 1_000;
    let capped = app.reconfigured(Guard::memory(), tight);
    let refused = capped
        .send(
            Request::get("/api/receipts/export.csv")
                .header("authorization", format!("Bearer {}", user.access))
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", refused.json);
    assert!(refused.json["detail"].as_str().expect("detail").contains("1100 rows"), "{:?}", refused.json);
}

#[tokio::test]
async fn insights_summarise_the_callers_receipts_with_corrections() {
    let app = TestApp::new().await;
    let user = app.account("ins", Role::User).await;
    for (total, date, merchant) in [
        ("10.00", "2024-01-05", "KEDAI MAJU"),
        ("20.00", "2024-01-20", "KEDAI MAJU"),
        ("45.00", "2024-02-03", "AEON BIG"),
        ("5.00", "2023-12-31", "OUT OF RANGE"),
    ] {
        app.processed_receipt(&user, &result(total, date, merchant)).await;
    }
    let reply = app
        .call(Method::GET, "/api/insights/summary?from=2024-01-01&to=2024-02-29&top=1", Some(&user.access), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json);
    assert_eq!(reply.json["currency"], "MYR");
    assert_eq!(
        reply.json["by_month"],
        json!([{"key": "2024-01", "total": "30.00", "receipts": 2}, {"key": "2024-02", "total": "45.00", "receipts": 1}])
    );
    assert_eq!(reply.json["top_merchants"].as_array().expect("top").len(), 1);
    assert_eq!(reply.json["month_over_month"][1]["change_percent"], "50");
    // Another user's insights are empty.
    let other = app.account("ins", Role::User).await;
    let theirs = app.call(Method::GET, "/api/insights/summary", Some(&other.access), None).await;
    assert_eq!(theirs.json["by_month"], json!([]));
    let bad =
        app.call(Method::GET, "/api/insights/summary?from=2024-03-01&to=2024-01-01", Some(&user.access), None).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn uploads_beyond_the_concurrency_cap_get_503_with_retry_after() {
    let mut settings = Settings::for_tests();
    settings.limits = generous_limits();
    settings.max_concurrent_uploads = 1;
    let app = TestApp::with(Guard::memory(), settings).await;
    let user = app.account("busy", Role::User).await;
    let busy = app.state.upload_slots.clone().try_acquire_owned().expect("the only slot");
    let refused = app.upload(Some(&user.access), &unique_png(), None).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers.contains_key("retry-after"));
    drop(busy);
    assert_eq!(app.upload(Some(&user.access), &unique_png(), None).await.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn lists_show_summaries_unless_asked_for_whole_receipts() {
    let app = TestApp::new().await;
    let user = app.account("views", Role::User).await;
    let mut read = result("12.30", "2024-05-06", "KEDAI VIEW");
    read.text = "KEDAI VIEW\nTOTAL 12.30\n".repeat(50);
    read.fields.line_items = vec![finagent_core::receipt::LineItem {
        description: "TEH TARIK".into(),
        quantity: None,
        unit_price: None,
        amount: Some("12.30".parse().expect("amount")),
    }];
    let id = app.processed_receipt(&user, &read).await;
    let whole = app.call(Method::GET, &format!("/api/receipts/{id}"), Some(&user.access), None).await.json;

    let summary = app.call(Method::GET, "/api/receipts", Some(&user.access), None).await;
    let item = &summary.json["items"][0];
    assert_eq!(item["id"], id.to_string());
    for field in ["status", "created_at", "corrected", "review_confidence", "image_url"] {
        assert_eq!(item[field], whole[field], "{field}");
    }
    for field in ["merchant", "date", "currency", "total", "category"] {
        assert_eq!(item["result"][field], whole["result"][field], "result.{field}");
    }
    for heavy in ["text", "line_items", "layout", "confidence", "timings", "engine"] {
        assert!(item["result"].get(heavy).is_none(), "a summary leaves out result.{heavy}");
    }
    assert!(summary.json.to_string().len() < 1024, "a summary row stays small whatever the OCR text");

    let full = app.call(Method::GET, "/api/receipts?view=full", Some(&user.access), None).await;
    assert_eq!(full.json["items"][0], whole, "view=full is the receipt as GET /api/receipts/{{id}} shows it");
    let wrong = app.call(Method::GET, "/api/receipts?view=everything", Some(&user.access), None).await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", wrong.json);
}

#[tokio::test]
async fn an_image_is_revalidated_by_its_digest() {
    let app = TestApp::new().await;
    let user = app.account("etag", Role::User).await;
    let id = app.processed_receipt(&user, &result("1.00", "2024-01-01", "KEDAI")).await;
    let digest = app.state.store.receipt(id, None).await.expect("read").expect("exists").image_sha256;
    let path = format!("/api/receipts/{id}/image");
    let conditional = |tag: String| {
        let request = Request::get(&path)
            .header("authorization", format!("Bearer {}", user.access))
            .header("if-none-match", tag)
            .body(Body::empty())
            .expect("request");
        app.send(request)
    };
    let not_modified = |reply: support::Reply| {
        assert_eq!(reply.status, StatusCode::NOT_MODIFIED);
        assert_eq!(reply.json, json!(""), "no body");
        assert_eq!(reply.headers["etag"], format!("\"{digest}\""));
        assert_eq!(reply.headers["cache-control"], "private, max-age=3600");
    };
    // Answered by the handler: nothing is kept yet.
    not_modified(conditional(format!("W/\"{digest}\"")).await);
    let first = app.call(Method::GET, &path, Some(&user.access), None).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.headers["etag"], format!("\"{digest}\""));
    // Answered from the kept copy of the 200.
    not_modified(conditional(format!("\"{digest}\"")).await);
    assert_eq!(conditional("\"another\"".into()).await.status, StatusCode::OK);
    // The validator never reveals another user's image.
    let other = app.account("etag", Role::User).await;
    let request = Request::get(&path)
        .header("authorization", format!("Bearer {}", other.access))
        .header("if-none-match", format!("\"{digest}\""))
        .body(Body::empty())
        .expect("request");
    assert_eq!(app.send(request).await.status, StatusCode::NOT_FOUND);
}
