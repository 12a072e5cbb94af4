//! Copies of the answers to a user's receipt reads, kept while the user's receipts stay as they
//! were: the list, one receipt and its image, the insights and the CSV export.
//!
//! The store's receipts version of the caller ([`AnyStore::receipts_version`]) is read before the
//! handler runs and moves on after every committed write to one of their receipts, whoever makes
//! it (an upload, a deletion, a correction, an OCR thread storing a result), so a copy made at a
//! version is exactly what the handler would answer while the version stays. The key is the
//! caller, the path with its query, and the day (the insights' default range ends today).
//! Authentication, revocations and rate limits run before this layer on every request; only
//! `200` answers of at most [`MAX_ENTRY`] bytes are kept, within [`BUDGET`] bytes in all.
//!
//! Only a single-process server takes part: the embedded store, which keeps versions, with the
//! in-process guard. With Redis there may be other replicas writing the same store (MongoDB, or
//! a shared SQLite file), whose writes this process's versions would not see, so each request
//! reads the store.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use finagent_core::UserId;
use futures::StreamExt;

use crate::auth::principal::Authentication;
use crate::guard::Guard;
use crate::state::AppState;

/// The routes whose answers are kept.
pub const ROUTES: [&str; 5] = [
    "/api/receipts",
    "/api/receipts/{id}",
    "/api/receipts/{id}/image",
    "/api/receipts/export.csv",
    "/api/insights/summary",
];

/// The largest answer kept.
pub const MAX_ENTRY: usize = 1 << 20;

/// The bytes of all the answers kept; past it, the least recently used half goes.
pub const BUDGET: usize = 64 << 20;

/// The longest a copy is kept, whatever the version says.
pub const MAX_AGE: Duration = Duration::from_secs(600);

#[derive(Debug)]
struct Entry {
    version: u64,
    day: NaiveDate,
    made: Instant,
    used: Instant,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<(UserId, String), Entry>,
    bytes: usize,
}

/// The copies of this process.
#[derive(Debug, Default)]
pub struct ReadCache {
    entries: Mutex<Entries>,
}

impl ReadCache {
    fn get(&self, key: &(UserId, String), version: u64, day: NaiveDate) -> Option<(HeaderMap, Bytes)> {
        let mut entries = self.entries.lock().ok()?;
        let entry = entries.map.get_mut(key)?;
        if entry.version != version || entry.day != day || entry.made.elapsed() >= MAX_AGE {
            return None;
        }
        entry.used = Instant::now();
        Some((entry.headers.clone(), entry.body.clone()))
    }

    fn put(&self, key: (UserId, String), version: u64, day: NaiveDate, headers: HeaderMap, body: Bytes) {
        let Ok(mut entries) = self.entries.lock() else { return };
        let size = cost(&key.1, &body);
        if entries.bytes + size > BUDGET {
            let mut used: Vec<Instant> = entries.map.values().map(|entry| entry.used).collect();
            let middle = used.len() / 2;
            let (_, cut, _) = used.select_nth_unstable(middle);
            let cut = *cut;
            entries.map.retain(|_, entry| entry.used > cut);
            entries.bytes = entries.map.iter().map(|((_, path), entry)| cost(path, &entry.body)).sum();
        }
        let now = Instant::now();
        let path = key.1.clone();
        let replaced = entries.map.insert(key, Entry { version, day, made: now, used: now, headers, body });
        entries.bytes += size;
        if let Some(old) = replaced {
            entries.bytes = entries.bytes.saturating_sub(cost(&path, &old.body));
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.entries.lock().map_or(0, |entries| entries.bytes)
    }
}

/// What an entry is counted as: its body, its key and about what its headers take.
fn cost(path: &str, body: &Bytes) -> usize {
    body.len() + path.len() + 256
}

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
    let key = (owner, request.uri().path_and_query().map_or_else(String::new, |path| path.as_str().to_owned()));
    if let Some((headers, body)) = state.reads.get(&key, version, day) {
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
                state.reads.put(key, version, day, parts.headers.clone(), body.clone());
                return Response::from_parts(parts, Body::from(body));
            }
        }
    }
    // Too large to keep: what was read, then the rest as it comes.
    let rest = futures::stream::iter(collected.into_iter().map(Ok)).chain(stream);
    Response::from_parts(parts, Body::from_stream(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 6).expect("a date")
    }

    #[test]
    fn a_copy_is_served_at_its_version_and_day_only() {
        let cache = ReadCache::default();
        let key = (UserId::new(), "/api/receipts?limit=20".to_owned());
        cache.put(key.clone(), 3, day(), HeaderMap::new(), Bytes::from_static(b"[1]"));
        assert_eq!(cache.get(&key, 3, day()).map(|(_, body)| body), Some(Bytes::from_static(b"[1]")));
        assert!(cache.get(&key, 4, day()).is_none(), "a write since makes it stale");
        assert!(cache.get(&key, 3, day().succ_opt().expect("a day")).is_none(), "a new day makes it stale");
        assert!(cache.get(&(UserId::new(), key.1.clone()), 3, day()).is_none(), "another caller never gets it");
    }

    #[test]
    fn the_budget_holds() {
        let cache = ReadCache::default();
        let owner = UserId::new();
        let body = Bytes::from(vec![0u8; MAX_ENTRY]);
        for page in 0..(BUDGET / MAX_ENTRY) * 2 {
            cache.put((owner, format!("/api/receipts?page={page}")), 0, day(), HeaderMap::new(), body.clone());
        }
        assert!(cache.bytes() <= BUDGET, "{} bytes held", cache.bytes());
    }
}
