//! `/api/ocr`: upload a receipt image, poll its task, read its result.
//!
//! An upload is streamed with its byte limit enforced chunk by chunk (the body is never buffered
//! past the limit), its type is taken from magic bytes and its dimensions from the header before
//! anything is decoded. It is idempotent: an `Idempotency-Key` the caller used before, or an image
//! the caller already uploaded, returns the existing task instead of a new one.

use std::sync::Arc;

use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use finagent_core::ReceiptId;
use finagent_core::job::OcrJob;
use finagent_core::receipt::{Receipt, ReceiptStatus};
use finagent_platform::image_input::{self, ImageError};
use finagent_platform::queue::JobQueue;
use finagent_platform::store::{BlobStore, Inserted, ReceiptStore};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::auth::principal::Caller;
use crate::error::{AppError, Problem};
use crate::extract::{ApiMultipart, ApiPath};
use crate::state::AppState;
use crate::views::{ReceiptView, TaskView};

/// The multipart form of an upload.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The receipt image: JPEG, PNG, WebP, TIFF, BMP or GIF, at most 25 MiB, 10,000 px a side, 40 MP.
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

/// Reads the `file` field, refusing it as soon as it passes `limit` bytes.
async fn read_file(multipart: &mut Multipart, limit: usize) -> Result<(Vec<u8>, Option<String>), AppError> {
    let unreadable =
        |error: axum::extract::multipart::MultipartError| AppError::Unreadable(error.status(), error.body_text());
    while let Some(mut field) = multipart.next_field().await.map_err(unreadable)? {
        if field.name() != Some("file") {
            continue;
        }
        let file_name = field.file_name().map(|name| name.chars().filter(|c| !c.is_control()).take(255).collect());
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(unreadable)? {
            if bytes.len() + chunk.len() > limit {
                return Err(image_error(ImageError::TooManyBytes { size: bytes.len() + chunk.len(), limit }));
            }
            bytes.extend_from_slice(&chunk);
        }
        return Ok((bytes, file_name));
    }
    Err(AppError::Invalid("file: the multipart form has no `file` field".into()))
}

/// Uploads a receipt image for OCR.
#[utoipa::path(post, path = "/api/ocr/process", tag = "ocr", security(("bearer" = []), ("api_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeating a key returns the task it created")),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 202, description = "Queued", body = TaskView),
        (status = 200, description = "Already uploaded (same image or idempotency key): the existing task", body = TaskView),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 413, description = "Larger than 25 MiB", body = Problem),
        (status = 415, description = "Not a supported image", body = Problem),
        (status = 422, description = "Broken, too large or too small image, or a bad form", body = Problem),
        (status = 429, description = "Too many uploads", body = Problem),
        (status = 503, description = "The store or the queue is unavailable", body = Problem),
    ))]
pub async fn process(
    State(state): State<AppState>,
    Caller(principal): Caller,
    headers: HeaderMap,
    ApiMultipart(mut multipart): ApiMultipart,
) -> Result<Response, AppError> {
    let key = idempotency_key(&headers)?;
    // Held until the image is stored: bounds the memory uploads in progress can take.
    let _slot = Arc::clone(&state.upload_slots)
        .try_acquire_owned()
        .map_err(|_| AppError::Unavailable("every upload slot is busy".into()))?;
    let limits = state.settings.image_limits;
    let (bytes, file_name) = read_file(&mut multipart, limits.max_bytes).await?;
    let info = image_input::inspect(&bytes, &limits).map_err(image_error)?;
    let sha = hex::encode(Sha256::digest(&bytes));
    let mut receipt = Receipt::queued(principal.user_id, sha, info.media_type.mime(), Utc::now());
    receipt.image_bytes = bytes.len() as u64;
    receipt.file_name = file_name;
    receipt.idempotency_key = key;
    // From here on the work runs in its own task, so a client that hangs up (or a request timeout)
    // cannot leave a stored receipt without its job.
    let bytes_len = bytes.len();
    let task_state = state.clone();
    let stored = tokio::spawn(async move { store_and_enqueue(&task_state, receipt, bytes).await });
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
    match state.store.insert_receipt_once(&receipt).await {
        Ok(Inserted::New) => {}
        Ok(Inserted::Existing(existing)) => {
            state.store.delete_blob(&receipt.blob_key).await?;
            return Ok((*existing, true));
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
        ReceiptStatus::Failed => Err(AppError::Conflict(format!(
            "processing failed: {}",
            receipt.failure.as_deref().unwrap_or("no reason recorded")
        ))),
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
