//! The copies themselves: kept by caller, path and gzip, under the receipts version they were made
//! at, within a byte budget.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderMap;
use chrono::NaiveDate;
use finagent_core::UserId;

/// The largest answer kept.
pub const MAX_ENTRY: usize = 1 << 20;

/// The bytes of all the answers kept; past it, the least recently used half goes.
pub const BUDGET: usize = 64 << 20;

/// The longest a copy is kept, whatever the version says.
pub const MAX_AGE: Duration = Duration::from_secs(600);

/// Who asks, for what (path and query), and whether they take gzip.
pub(crate) type Key = (UserId, String, bool);

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
    map: HashMap<Key, Entry>,
    bytes: usize,
}

/// The copies of this process.
#[derive(Debug, Default)]
pub struct ReadCache {
    entries: Mutex<Entries>,
}

impl ReadCache {
    pub(crate) fn get(&self, key: &Key, version: u64, day: NaiveDate) -> Option<(HeaderMap, Bytes)> {
        let mut entries = self.entries.lock().ok()?;
        let entry = entries.map.get_mut(key)?;
        if entry.version != version || entry.day != day || entry.made.elapsed() >= MAX_AGE {
            return None;
        }
        entry.used = Instant::now();
        Some((entry.headers.clone(), entry.body.clone()))
    }

    pub(crate) fn put(&self, key: Key, version: u64, day: NaiveDate, headers: HeaderMap, body: Bytes) {
        let Ok(mut entries) = self.entries.lock() else { return };
        let size = cost(&key.1, &body);
        if entries.bytes + size > BUDGET {
            let mut used: Vec<Instant> = entries.map.values().map(|entry| entry.used).collect();
            let middle = used.len() / 2;
            let (_, cut, _) = used.select_nth_unstable(middle);
            let cut = *cut;
            entries.map.retain(|_, entry| entry.used > cut);
            entries.bytes = entries.map.iter().map(|((_, path, _), entry)| cost(path, &entry.body)).sum();
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
pub(crate) fn cost(path: &str, body: &Bytes) -> usize {
    body.len() + path.len() + 256
}
