//! `/api/ocr`: upload a receipt image, poll its task, read its result.
//!
//! An upload is streamed with its byte limit enforced chunk by chunk (the body is never buffered
//! past the limit), its type is taken from magic bytes and its dimensions from the header before
//! anything is decoded. It is idempotent: an `Idempotency-Key` the caller used before, or an image
//! the caller already uploaded, returns the existing task instead of a new one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use finagent_core::ReceiptId;
use finagent_core::job::OcrJob;
use finagent_core::receipt::{Receipt, ReceiptStatus};
use finagent_platform::image_input::{self, ImageError};
use finagent_platform::queue::JobQueue;
use finagent_platform::store::{BlobStore, Exceeded, Inserted, ReceiptStore};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::auth::principal::Caller;
use crate::error::{AppError, Problem};
use crate::extractors::{ApiMultipart, ApiPath};
use crate::state::AppState;
use crate::views::{ReceiptView, TaskView};

/// The multipart form of an upload.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The receipt: a PDF (at most 20 pages; its text layer is read, or its pages rendered) or a
    /// JPEG, PNG, WebP, TIFF, BMP or GIF image (10,000 px a side, 40 MP); at most `MAX_UPLOAD_SIZE`.
    #[schema(value_type = String, format = Binary, content_media_type = "application/octet-stream")]
    file: Vec<u8>,
}

fn image_error(error: ImageError) -> AppError {
    match error {
        ImageError::UnsupportedFormat => AppError::Unreadable(StatusCode::UNSUPPORTED_MEDIA_TYPE, error.to_string()),
        ImageError::TooManyBytes { .. } => AppError::Unreadable(StatusCode::PAYLOAD_TOO_LARGE, error.to_string()),
        other => AppError::Invalid(format!("file: {other}")),
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, AppError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let key = value.to_str().ok().map(str::trim).unwrap_or_default();
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(AppError::Invalid("Idempotency-Key: 1 to 255 visible ASCII characters".into()));
    }
    Ok(Some(key.to_owned()))
}

/// Appends a chunk, growing the buffer by doubling but never past `limit`, so that a body at the
/// limit never holds more than the limit (plain doubling takes 32 MiB for a 25 MiB body).
fn append_capped(bytes: &mut Vec<u8>, chunk: &[u8], limit: usize) {
    let needed = bytes.len() + chunk.len();
    if needed > bytes.capacity() {
        let wanted = (bytes.capacity() * 2).max(needed).min(limit.max(needed));
        bytes.reserve_exact(wanted - bytes.len());
    }
    bytes.extend_from_slice(chunk);
}

/// How long an upload may take before its transfer rate is checked.
const UPLOAD_GRACE: Duration = Duration::from_secs(5);
/// The longest pause between two chunks of an upload.
const UPLOAD_IDLE: Duration = Duration::from_secs(10);

/// Whether an upload that has sent `received` bytes after `elapsed` is slower than allowed.
fn too_slow(received: usize, elapsed: Duration, min_bytes_per_second: u64) -> bool {
    let judged = elapsed.saturating_sub(UPLOAD_GRACE).as_secs_f64();
    (received as f64) < judged * min_bytes_per_second as f64
}

/// Reads the `file` field, refusing the upload as soon as its parts pass `limit` bytes, pause
/// longer than [`UPLOAD_IDLE`], or arrive slower than `min_rate` bytes per second after
/// [`UPLOAD_GRACE`]. Other parts are read and dropped under the same rules.
pub async fn read_file(
    multipart: &mut Multipart,
    limit: usize,
    min_rate: u64,
) -> Result<(Vec<u8>, Option<String>), AppError> {
    let unreadable =
        |error: axum::extract::multipart::MultipartError| AppError::Unreadable(error.status(), error.body_text());
    let slow = || {
        AppError::Unreadable(
            StatusCode::REQUEST_TIMEOUT,
            format!("the upload arrived slower than {} KiB/s", (min_rate / 1024).max(1)),
        )
    };
    let started = Instant::now();
    // Every part counts against the size limit and the rate, the ones skipped too: parts other
    // than `file` cannot hold a slot by trickling in.
    let mut received = 0usize;
    loop {
        let field = tokio::time::timeout(UPLOAD_IDLE, multipart.next_field()).await.map_err(|_| slow())?;
        let Some(mut field) = field.map_err(unreadable)? else { break };
        let wanted = field.name() == Some("file");
        let file_name = field.file_name().map(|name| name.chars().filter(|c| !c.is_control()).take(255).collect());
        let mut bytes = Vec::new();
        while let Some(chunk) =
            tokio::time::timeout(UPLOAD_IDLE, field.chunk()).await.map_err(|_| slow())?.map_err(unreadable)?
        {
            received += chunk.len();
            if received > limit {
                return Err(image_error(ImageError::TooManyBytes { size: received, limit }));
            }
            if wanted {
                append_capped(&mut bytes, &chunk, limit);
            }
            if too_slow(received, started.elapsed(), min_rate) {
                return Err(slow());
            }
        }
        if wanted {
            return Ok((bytes, file_name));
        }
        if too_slow(received, started.elapsed(), min_rate) {
            return Err(slow());
        }
    }
    Err(AppError::Invalid("file: the multipart form has no `file` field".into()))
}

/// Refuses an upload that would take the user past their quota, or the instance past its storage
/// limit, with `incoming` more bytes. An early answer only: the store checks again, atomically with
/// the insert ([`StorageLimits`](finagent_platform::store::StorageLimits)).
async fn check_quota(state: &AppState, owner: finagent_core::UserId, incoming: u64) -> Result<(), AppError> {
    let mine = Exceeded::Owner(state.store.usage(owner).await?);
    if !fits(state, mine, incoming) {
        return Err(refusal(state, mine, incoming));
    }
    if state.settings.quota.instance_max_image_bytes.is_some() {
        let all = Exceeded::Instance(state.store.instance_usage().await?);
        if !fits(state, all, incoming) {
            return Err(refusal(state, all, incoming));
        }
    }
    Ok(())
}

/// Whether one more receipt of `incoming` bytes fits in the use `at`.
fn fits(state: &AppState, at: Exceeded, incoming: u64) -> bool {
    let limits = state.settings.quota.storage_limits();
    match at {
        Exceeded::Owner(usage) => limits.owner_admits(usage, incoming),
        Exceeded::Instance(usage) => limits.instance_admits(usage, incoming),
    }
}

/// The refusal of an upload of `incoming` bytes that passes the limit of `exceeded`.
fn refusal(state: &AppState, exceeded: Exceeded, incoming: u64) -> AppError {
    let quota = state.settings.quota;
    match exceeded {
        Exceeded::Owner(usage) if usage.receipts >= quota.max_receipts => AppError::Quota(format!(
            "receipts: {} of {} stored; delete some to upload more",
            usage.receipts, quota.max_receipts
        )),
        Exceeded::Owner(usage) => AppError::Quota(format!(
            "image_bytes: {} of {} bytes stored, and this image has {incoming}; delete some to upload more",
            usage.image_bytes, quota.max_image_bytes
        )),
        Exceeded::Instance(usage) => {
            let limit = quota.instance_max_image_bytes.unwrap_or(u64::MAX);
            tracing::warn!(used = usage.image_bytes, limit, "upload refused: the instance's storage limit is reached");
            AppError::StorageFull(format!(
                "this instance stores at most {limit} bytes of images and holds {}; an administrator must make room",
                usage.image_bytes
            ))
        }
    }
}

/// Uploads a receipt image for OCR.
#[utoipa::path(post, path = "/api/ocr/process", tag = "ocr", security(("bearer" = []), ("api_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeating a key returns the task it created")),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 202, description = "Queued", body = TaskView),
        (status = 200, description = "Already uploaded (same image or idempotency key): the existing task", body = TaskView),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 413, description = "Larger than `MAX_UPLOAD_SIZE`", body = Problem),
        (status = 415, description = "Not a supported image", body = Problem),
        (status = 408, description = "The upload arrived too slowly", body = Problem),
        (status = 422, description = "Broken, too large or too small image, a bad form, or the quota used up (type `urn:finagent:problem:quota-exceeded`)", body = Problem),
        (status = 507, description = "The instance's storage limit is reached (type `urn:finagent:problem:storage-full`)", body = Problem),
        (status = 429, description = "Too many uploads, or more at once than a user may send", body = Problem),
        (status = 503, description = "The store or the queue is unavailable", body = Problem),
    ))]
pub async fn process(
    State(state): State<AppState>,
    Caller(principal): Caller,
    headers: HeaderMap,
    ApiMultipart(mut multipart): ApiMultipart,
) -> Result<Response, AppError> {
    let key = idempotency_key(&headers)?;
    let owner = principal.user_id;
    // A user sends only a few uploads at once, so that no account can hold every slot.
    let mine = crate::limits::uploads::start(&state.guard, owner, state.settings.quota.uploads_at_once)
        .await?
        .ok_or(AppError::TooManyRequests(Duration::from_secs(1)))?;
    // Before the body is read: a user past their quota sends nothing in vain.
    check_quota(&state, owner, 0).await?;
    // Held until the image is stored: bounds the memory uploads in progress can take.
    let slot = Arc::clone(&state.upload_slots)
        .try_acquire_owned()
        .map_err(|_| AppError::Unavailable("every upload slot is busy".into()))?;
    let limits = state.settings.image_limits;
    let (bytes, file_name) =
        read_file(&mut multipart, limits.max_bytes, state.settings.upload_min_bytes_per_second).await?;
    check_quota(&state, owner, bytes.len() as u64).await?;
    // Parsing a PDF's structure and hashing up to the size limit take CPU time: off the runtime's
    // threads, so one upload cannot stall every other request on its worker.
    let checked = bytes.clone();
    let (info, sha) = tokio::task::spawn_blocking(move || {
        let info = image_input::inspect(&checked, &limits)?;
        Ok::<_, ImageError>((info, hex::encode(Sha256::digest(&checked))))
    })
    .await
    .map_err(|error| AppError::Internal(format!("the upload check stopped: {error}")))?
    .map_err(image_error)?;
    let mut receipt = Receipt::queued(principal.user_id, sha, info.media_type.mime(), Utc::now());
    receipt.image_bytes = bytes.len() as u64;
    receipt.file_name = file_name;
    receipt.idempotency_key = key;
    // From here on the work runs in its own task, so a client that hangs up (or a request timeout)
    // cannot leave a stored receipt without its job.
    let bytes_len = bytes.len();
    let task_state = state.clone();
    // The task keeps the slot and the user's upload until the bytes are stored, even when the
    // handler is cancelled.
    let stored = tokio::spawn(async move {
        let held = (slot, mine);
        let stored = store_and_enqueue(&task_state, receipt, bytes).await;
        drop(held);
        stored
    });
    let (receipt, replayed) = stored.await.map_err(|error| AppError::Internal(error.to_string()))??;
    if replayed {
        let mut response = (StatusCode::OK, axum::Json(TaskView::from(&receipt))).into_response();
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
        return Ok(response);
    }
    tracing::info!(receipt.id = %receipt.id, user.id = %principal.user_id, bytes = bytes_len, "receipt queued");
    let mut response = (StatusCode::ACCEPTED, axum::Json(TaskView::from(&receipt))).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/ocr/status/{}", receipt.id)) {
        response.headers_mut().insert("location", location);
    }
    Ok(response)
}

/// Stores the image and the receipt, then enqueues its job; returns the receipt and whether it
/// is an earlier upload returned again.
async fn store_and_enqueue(state: &AppState, receipt: Receipt, bytes: Vec<u8>) -> Result<(Receipt, bool), AppError> {
    state.store.put_blob(&receipt.blob_key, &bytes).await?;
    match state.store.insert_receipt_once(&receipt, state.settings.quota.storage_limits()).await {
        Ok(Inserted::New) => crate::auth::accounts_cache::changed(state, receipt.owner_id).await,
        Ok(Inserted::Existing(existing)) => {
            state.store.delete_blob(&receipt.blob_key).await?;
            return Ok((*existing, true));
        }
        Ok(Inserted::OverLimit(exceeded)) => {
            state.store.delete_blob(&receipt.blob_key).await?;
            return Err(refusal(state, exceeded, receipt.image_bytes));
        }
        Err(error) => {
            state.store.delete_blob(&receipt.blob_key).await.ok();
            return Err(error.into());
        }
    }
    let job = OcrJob::new(receipt.id, receipt.owner_id, receipt.blob_key.clone(), Utc::now());
    if let Err(error) = state.queue.enqueue(&job).await {
        // Nothing half-done stays behind: the client can retry the same upload.
        state.store.delete_receipt(receipt.owner_id, receipt.id).await.ok();
        crate::auth::accounts_cache::changed(state, receipt.owner_id).await;
        state.store.delete_blob(&receipt.blob_key).await.ok();
        return Err(AppError::Unavailable(format!("queue: {error}")));
    }
    Ok((receipt, false))
}

/// The caller's receipt, or 404 — also for another user's receipt, which must not be detectable.
pub async fn owned(state: &AppState, caller: &Caller, id: ReceiptId) -> Result<Receipt, AppError> {
    state.store.receipt(id, Some(caller.0.user_id)).await?.ok_or(AppError::NotFound)
}

/// The status of a task.
#[utoipa::path(get, path = "/api/ocr/status/{id}", tag = "ocr", security(("bearer" = []), ("api_key" = [])),
    params(("id" = ReceiptId, Path, description = "The task id")),
    responses(
        (status = 200, description = "The task", body = TaskView),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 404, description = "No such task for this caller", body = Problem),
    ))]
pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ReceiptId>,
) -> Result<axum::Json<TaskView>, AppError> {
    Ok(axum::Json(TaskView::from(&owned(&state, &caller, id).await?)))
}

/// The result of a task: 200 once done, 202 while it is queued or processing, 409 if it failed.
#[utoipa::path(get, path = "/api/ocr/result/{id}", tag = "ocr", security(("bearer" = []), ("api_key" = [])),
    params(("id" = ReceiptId, Path, description = "The task id")),
    responses(
        (status = 200, description = "Done: the receipt with its result", body = ReceiptView),
        (status = 202, description = "Not done yet", body = TaskView),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 404, description = "No such task for this caller", body = Problem),
        (status = 409, description = "Processing failed; the detail says why", body = Problem),
    ))]
pub async fn result(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ReceiptId>,
) -> Result<Response, AppError> {
    let receipt = owned(&state, &caller, id).await?;
    match receipt.status {
        ReceiptStatus::Done => Ok(axum::Json(ReceiptView::from(&receipt)).into_response()),
        ReceiptStatus::Failed => {
            let reason = crate::views::failure_of(&receipt).unwrap_or(finagent_core::receipt::FailureReason::Internal);
            Err(AppError::Conflict(format!("processing failed ({}): {}", reason.as_str(), reason.message())))
        }
        ReceiptStatus::Queued | ReceiptStatus::Processing => {
            Ok((StatusCode::ACCEPTED, axum::Json(TaskView::from(&receipt))).into_response())
        }
    }
}

/// The OCR pipeline's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct OcrHealth {
    /// `ok`, or `degraded` when the queue cannot be read.
    pub status: &'static str,
    /// `redis` or `in-process`.
    pub queue: &'static str,
    /// Jobs waiting (lag and scheduled retries).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<u64>,
    /// Jobs delivered to a worker and not yet acknowledged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_progress: Option<u64>,
    /// OCR threads in this process (the all-in-one mode); 0 when separate workers do the OCR.
    pub in_process_workers: usize,
}

/// The OCR pipeline: queue depth and in-process workers.
#[utoipa::path(get, path = "/api/ocr/health", tag = "ocr", security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The pipeline's state", body = OcrHealth),
        (status = 401, description = "Not signed in", body = Problem),
    ))]
pub async fn health(State(state): State<AppState>, _caller: Caller) -> axum::Json<OcrHealth> {
    let depth = state.queue.depth().await;
    let (waiting, in_progress) = match &depth {
        Ok(depth) => (Some(depth.lag), Some(depth.pending)),
        Err(error) => {
            tracing::warn!(error = %error, "queue depth unavailable");
            (None, None)
        }
    };
    axum::Json(OcrHealth {
        status: if depth.is_ok() { "ok" } else { "degraded" },
        queue: state.queue.kind(),
        waiting,
        in_progress,
        in_process_workers: state.in_process_workers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_at_the_limit_never_holds_more_than_the_limit() {
        let limit = finagent_core::names::uploads::MAX_BYTES;
        let chunk = vec![7u8; 64 * 1024];
        let mut bytes = Vec::new();
        while bytes.len() + chunk.len() <= limit {
            append_capped(&mut bytes, &chunk, limit);
            assert!(bytes.capacity() <= limit, "capacity {} past the limit", bytes.capacity());
        }
        assert_eq!(bytes.len(), limit);
        // Small uploads still grow cheaply (by doubling).
        let mut small = Vec::new();
        for _ in 0..4 {
            append_capped(&mut small, &chunk, limit);
        }
        assert!(small.capacity() < 1024 * 1024);
    }

    #[test]
    fn uploads_slower_than_the_minimum_rate_are_cut_after_the_grace() {
        let rate = 32 * 1024;
        assert!(!too_slow(10, Duration::from_secs(4), rate), "the first seconds are free");
        assert!(too_slow(1_000, Duration::from_secs(9), rate), "a trickle is cut");
        assert!(!too_slow(10 * 1024 * 1024, Duration::from_secs(20), rate), "a steady 500 KiB/s is fine");
    }
}
