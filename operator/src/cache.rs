//! The watch caches a pass reads its children from.
//!
//! The controller watches every owned kind anyway (by label, to wake up when a child changes);
//! for the kinds a pass reads — the Deployments, the StatefulSets and the last-good ConfigMap — the
//! watch also fills a store, so a pass reads them from memory instead of asking the API server
//! (at 100 instances polled every 10 s, that is 30 GETs a second saved). A cache can lag our own
//! writes by a moment; every decision taken from it is safe under that lag: a Deployment that
//! does not yet show the new template is "waiting for the Deployment controller", and the last
//! good templates are only ever replaced by newer good ones.

use std::collections::HashMap;
use std::sync::Arc;

use kube::api::DynamicObject;
use kube::core::ApiResource;
use kube::runtime::reflector::{ObjectRef, Store};
use serde::de::DeserializeOwned;

/// The kinds a pass reads, cached.
pub const CACHED_KINDS: [&str; 3] = ["Deployment", "StatefulSet", "ConfigMap"];

/// Whether a watch has delivered its first full list. (kube's `Store::wait_until_ready` wakes
/// only the last of several waiters, so two passes waiting at once could wait forever; a `watch`
/// channel wakes them all.)
pub type Ready = tokio::sync::watch::Receiver<bool>;

/// One kind's cache: its resource, its store and whether it is filled.
pub type KindCache = (ApiResource, Store<DynamicObject>, Ready);

/// The stores by kind (`Deployment`, `StatefulSet`, `ConfigMap`).
#[derive(Clone, Default)]
pub struct ChildCaches {
    stores: Arc<HashMap<&'static str, KindCache>>,
}

impl std::fmt::Debug for ChildCaches {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("ChildCaches").field("kinds", &self.stores.keys().collect::<Vec<_>>()).finish()
    }
}

impl ChildCaches {
    /// Caches for these kinds.
    pub fn new(stores: Vec<(&'static str, ApiResource, Store<DynamicObject>, Ready)>) -> Self {
        Self {
            stores: Arc::new(
                stores.into_iter().map(|(kind, resource, store, ready)| (kind, (resource, store, ready))).collect(),
            ),
        }
    }

    /// The object as the watch last saw it: `Some(None)` when it does not exist, `None` when no
    /// cache holds that kind (the caller reads it from the API server). Waits for the watch's first
    /// list, so a pass never mistakes a cache that is still filling for missing children.
    pub async fn get<T: DeserializeOwned>(&self, kind: &str, namespace: &str, name: &str) -> Option<Option<T>> {
        let (resource, store, ready) = self.stores.get(kind)?;
        if ready.clone().wait_for(|ready| *ready).await.is_err() {
            return None;
        }
        let reference = ObjectRef::new_with(name, resource.clone()).within(namespace);
        let Some(object) = store.get(&reference) else { return Some(None) };
        // A cached object that does not read as its type is read from the API server instead.
        let value = serde_json::to_value(&*object).ok()?;
        serde_json::from_value(value).ok().map(Some)
    }
}
