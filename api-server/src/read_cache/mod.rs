//! Copies of the answers to a user's receipt reads, kept while the user's receipts stay as they
//! were: the list, one receipt and its image, the insights and the CSV export.
//!
//! The store's receipts version of the caller ([`AnyStore::receipts_version`]) is read before the
//! handler runs and moves on after every committed write to one of their receipts, whoever makes
//! it (an upload, a deletion, a correction, an OCR thread storing a result), so a copy made at a
//! version is exactly what the handler would answer while the version stays. The key is the
//! caller, the path with its query, the day (the insights' default range ends today) and whether
//! the client takes gzip. For a client that does (every browser), a JSON or CSV answer of 1 KiB or
//! more is compressed once, when it is kept, rather than by the compression layer on every request.
//! Authentication, revocations and rate limits run before this layer on every request; only
//! `200` answers of at most [`MAX_ENTRY`] bytes are kept, within [`BUDGET`] bytes in all.
//!
//! Only a single-process server takes part: the embedded store, which keeps versions, with the
//! in-process guard. With Redis there may be other replicas writing the same store (MongoDB, or
//! a shared SQLite file), whose writes this process's versions would not see, so each request
//! reads the store.

pub mod entries;

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use crate::auth::principal::Authentication;
use crate::guard::Guard;
use crate::state::AppState;
pub use entries::{BUDGET, MAX_AGE, MAX_ENTRY, ReadCache};

/// The routes whose answers are kept.
pub const ROUTES: [&str; 5] = [
    "/api/receipts",
    "/api/receipts/{id}",
    "/api/receipts/{id}/image",
    "/api/receipts/export.csv",
    "/api/insights/summary",
];

/// The layer: answers from a copy when the caller's receipts have not changed since it was made,
/// keeps the handler's answer otherwise.
pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let kept = request.method() == Method::GET
        && request.extensions().get::<MatchedPath>().is_some_and(|path| ROUTES.contains(&path.as_str()));
    let owner = match request.extensions().get::<Authentication>() {
        Some(Authentication::Authenticated(principal)) if kept => principal.user_id,
        _ => return next.run(request).await,
    };
    let single_process = matches!(state.guard, Guard::Memory(_));
    let Some(version) = state.store.receipts_version(owner).filter(|_| single_process) else {
        return next.run(request).await;
    };
    let day = chrono::Utc::now().date_naive();
    let gzip = takes_gzip(request.headers());
    let key = (owner, request.uri().path_and_query().map_or_else(String::new, |path| path.as_str().to_owned()), gzip);
    if let Some((headers, body)) = state.reads.get(&key, version, day) {
        if let Some(etag) = headers.get(header::ETAG).filter(|etag| not_modified(request.headers(), etag)) {
            let mut response = StatusCode::NOT_MODIFIED.into_response();
            response.headers_mut().insert(header::ETAG, etag.clone());
            if let Some(cache) = headers.get(header::CACHE_CONTROL) {
                response.headers_mut().insert(header::CACHE_CONTROL, cache.clone());
            }
            return response;
        }
        let mut response = Body::from(body).into_response();
        *response.headers_mut() = headers;
        return response;
    }
    let response = next.run(request).await;
    if response.status() != StatusCode::OK {
        return response;
    }
    let (parts, body) = response.into_parts();
    let mut stream = body.into_data_stream();
    let mut collected: Vec<Bytes> = Vec::new();
    let mut size = 0;
    while size <= MAX_ENTRY {
        match stream.next().await {
            Some(Ok(chunk)) => {
                size += chunk.len();
                collected.push(chunk);
            }
            Some(Err(error)) => {
                // The handler's body failed part-way: pass on what came, then the error.
                let failed = futures::stream::iter(collected.into_iter().map(Ok).chain([Err(error)]));
                return Response::from_parts(parts, Body::from_stream(failed));
            }
            None => {
                let body: Bytes =
                    if collected.len() == 1 { collected.pop().unwrap_or_default() } else { collected.concat().into() };
                let mut parts = parts;
                let body = if gzip && compressible(&parts.headers, &body) {
                    compressed(&mut parts.headers, &body).unwrap_or(body)
                } else {
                    body
                };
                state.reads.put(key, version, day, parts.headers.clone(), body.clone());
                return Response::from_parts(parts, Body::from(body));
            }
        }
    }
    // Too large to keep: what was read, then the rest as it comes.
    let rest = futures::stream::iter(collected.into_iter().map(Ok)).chain(stream);
    Response::from_parts(parts, Body::from_stream(rest))
}

/// Whether `Accept-Encoding` takes gzip (`gzip` or `*`, without `q=0`).
/// Whether a request's `If-None-Match` names `etag` (RFC 9110 §13.1.2: weak comparison, or `*`).
pub fn not_modified(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let Ok(etag) = etag.to_str() else { return false };
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    let etag = opaque(etag);
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|tag| tag.trim() == "*" || opaque(tag) == etag)
}

fn takes_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|value| value.to_str().ok()).any(|value| {
        value.split(',').any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|parameter| {
                parameter.strip_prefix("q=").is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q <= 0.0))
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
    })
}

/// JSON and CSV of 1 KiB or more, not already encoded; images are compressed already.
fn compressible(headers: &HeaderMap, body: &Bytes) -> bool {
    let text = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|kind| kind.starts_with("application/json") || kind.starts_with("text/csv"));
    text && body.len() >= 1024 && !headers.contains_key(header::CONTENT_ENCODING)
}

/// `body` gzipped, with the headers that say so.
fn compressed(headers: &mut HeaderMap, body: &Bytes) -> Option<Bytes> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::default());
    encoder.write_all(body).ok()?;
    let gzipped = encoder.finish().ok()?;
    headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    headers.remove(header::CONTENT_LENGTH);
    Some(Bytes::from(gzipped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use finagent_core::UserId;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 6).expect("a date")
    }

    #[test]
    fn a_copy_is_served_at_its_version_and_day_only() {
        let cache = ReadCache::default();
        let key = (UserId::new(), "/api/receipts?limit=20".to_owned(), false);
        cache.put(key.clone(), 3, day(), HeaderMap::new(), Bytes::from_static(b"[1]"));
        assert_eq!(cache.get(&key, 3, day()).map(|(_, body)| body), Some(Bytes::from_static(b"[1]")));
        assert!(cache.get(&key, 4, day()).is_none(), "a write since makes it stale");
        assert!(cache.get(&key, 3, day().succ_opt().expect("a day")).is_none(), "a new day makes it stale");
        assert!(cache.get(&(UserId::new(), key.1.clone(), false), 3, day()).is_none(), "another caller never gets it");
        assert!(cache.get(&(key.0, key.1.clone(), true), 3, day()).is_none(), "nor a client asking for gzip");
    }

    #[test]
    fn the_budget_holds() {
        let cache = ReadCache::default();
        let owner = UserId::new();
        let body = Bytes::from(vec![0u8; MAX_ENTRY]);
        for page in 0..(BUDGET / MAX_ENTRY) * 2 {
            cache.put((owner, format!("/api/receipts?page={page}"), false), 0, day(), HeaderMap::new(), body.clone());
        }
        assert!(cache.bytes() <= BUDGET, "{} bytes held", cache.bytes());
    }

    #[test]
    fn if_none_match_is_compared_weakly_and_by_list() {
        let etag = HeaderValue::from_static("\"abc\"");
        let asking = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::IF_NONE_MATCH, HeaderValue::from_str(value).expect("header"));
            not_modified(&headers, &etag)
        };
        assert!(asking("\"abc\""));
        assert!(asking("W/\"abc\""));
        assert!(asking("\"x\", \"abc\""));
        assert!(asking("*"));
        assert!(!asking("\"abd\""));
        assert!(!asking("abc"), "an unquoted tag is not the quoted one");
        assert!(!not_modified(&HeaderMap::new(), &etag));
    }

    #[test]
    fn gzip_is_taken_as_clients_say() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(value).expect("header"));
            takes_gzip(&headers)
        };
        assert!(with("gzip, deflate, br"));
        assert!(with("br;q=1.0, GZIP;q=0.5"));
        assert!(with("*"));
        assert!(!with("gzip;q=0"));
        assert!(!with("br, deflate"));
        assert!(!takes_gzip(&HeaderMap::new()));
    }

    #[test]
    fn a_kept_gzip_answer_decodes_to_the_handlers_answer() {
        use std::io::Read;
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("4000"));
        let body = Bytes::from(format!("[{}]", vec!["{\"merchant\":\"SHOP\"}"; 200].join(",")));
        assert!(compressible(&headers, &body));
        let gzipped = compressed(&mut headers, &body).expect("compressed");
        assert!(gzipped.len() < body.len() / 4);
        assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
        assert!(!headers.contains_key(header::CONTENT_LENGTH));
        let mut decoded = String::new();
        flate2::read::GzDecoder::new(&gzipped[..]).read_to_string(&mut decoded).expect("gzip");
        assert_eq!(decoded.as_bytes(), &body[..]);
        assert!(!compressible(&headers, &body), "an encoded answer is not encoded again");
    }
}
