//! Events (`events.k8s.io/v1`) about the resources the operator reconciles.
//!
//! An Event repeated within [`SERIES_WINDOW`] with the same type, reason, action **and message**
//! becomes a series: one object whose count and last-observed time are patched, as the Events API
//! intends. A different message is a new Event. (kube's own `Recorder` keys its series without the
//! message, so a 5 → 1 scale-down after a 1 → 5 scale-up showed as `Scaled (x2) … 1 → 5`, and a
//! fixed error kept the old error's text.) Entries older than the window are forgotten, so the
//! cache holds at most what was published in the last six minutes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Client;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};

/// How long a repeated Event joins the series of the first one (client-go uses six minutes).
pub const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);

/// The Events API's limit on a note.
const NOTE_LIMIT: usize = 1024;

/// One Event to publish about a resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Occurrence {
    /// Warning (something a user should act on) or Normal.
    pub warning: bool,
    /// CamelCase reason.
    pub reason: String,
    /// What the controller did.
    pub action: String,
    /// What happened, in words.
    pub note: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    regarding: String,
    warning: bool,
    reason: String,
    action: String,
    note: String,
}

#[derive(Clone, Debug)]
struct Published {
    namespace: String,
    name: String,
    count: i32,
    last: Instant,
}

/// What to do with an occurrence, given what was published (pure, unit-tested).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Create,
    /// Patch the Event `name` in `namespace` to a series of `count`.
    Count {
        namespace: String,
        name: String,
        count: i32,
    },
}

fn step(cache: &HashMap<Key, Published>, key: &Key, now: Instant) -> Step {
    match cache.get(key) {
        Some(published) if now.duration_since(published.last) < SERIES_WINDOW => Step::Count {
            namespace: published.namespace.clone(),
            name: published.name.clone(),
            count: published.count + 1,
        },
        _ => Step::Create,
    }
}

/// Cuts a note to the API's limit on a character boundary.
fn bounded(note: &str) -> String {
    if note.len() <= NOTE_LIMIT {
        return note.to_owned();
    }
    let mut end = NOTE_LIMIT - '…'.len_utf8();
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &note[..end])
}

/// Publishes Events as one reporting controller and instance.
pub struct Publisher {
    client: Client,
    controller: String,
    instance: String,
    cache: Mutex<HashMap<Key, Published>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Publisher")
            .field("controller", &self.controller)
            .field("instance", &self.instance)
            .finish()
    }
}

impl Publisher {
    /// A publisher for `controller` (the operator), running as `instance` (its pod).
    pub fn new(client: Client, controller: &str, instance: &str) -> Self {
        Self {
            client,
            controller: controller.to_owned(),
            instance: instance.to_owned(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Published>> {
        self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Publishes `occurrence` about `regarding`: a new Event, or one more in the series of the
    /// same Event published in the last six minutes.
    pub async fn publish(&self, regarding: &ObjectReference, occurrence: &Occurrence) -> Result<(), kube::Error> {
        let namespace = regarding.namespace.clone().unwrap_or_else(|| "default".to_owned());
        let key = Key {
            regarding: regarding.uid.clone().unwrap_or_else(|| format!("{namespace}/{:?}", regarding.name)),
            warning: occurrence.warning,
            reason: occurrence.reason.clone(),
            action: occurrence.action.clone(),
            note: bounded(&occurrence.note),
        };
        let now = Instant::now();
        let decided = {
            let mut cache = self.cache();
            cache.retain(|_, published| now.duration_since(published.last) < SERIES_WINDOW);
            step(&cache, &key, now)
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let time = crate::leader::micro(chrono::Utc::now());
        if let Step::Count { namespace, name, count } = decided {
            let series = serde_json::json!({"series": {"count": count, "lastObservedTime": time}});
            match api.patch(&name, &PatchParams::default(), &Patch::Merge(&series)).await {
                Ok(_) => {
                    self.cache().insert(key, Published { namespace, name, count, last: now });
                    return Ok(());
                }
                // Expired or deleted: a new Event.
                Err(kube::Error::Api(response)) if response.code == 404 => {}
                Err(error) => return Err(error),
            }
        }
        let event = self.event(regarding, &key, &namespace, time);
        let created = api.create(&PostParams::default(), &event).await?;
        let name = created.metadata.name.unwrap_or_default();
        self.cache().insert(key, Published { namespace, name, count: 1, last: now });
        Ok(())
    }

    fn event(&self, regarding: &ObjectReference, key: &Key, namespace: &str, time: MicroTime) -> Event {
        let base = regarding.name.clone().unwrap_or_else(|| "object".to_owned());
        Event {
            metadata: ObjectMeta {
                generate_name: Some(format!("{base}-")),
                namespace: Some(namespace.to_owned()),
                ..ObjectMeta::default()
            },
            event_time: Some(time),
            type_: Some(if key.warning { "Warning" } else { "Normal" }.to_owned()),
            reason: Some(key.reason.clone()),
            action: Some(key.action.clone()),
            note: Some(key.note.clone()),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            series: None::<EventSeries>,
            ..Event::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(note: &str) -> Key {
        Key {
            regarding: "uid".into(),
            warning: false,
            reason: "Scaled".into(),
            action: "Scale".into(),
            note: note.into(),
        }
    }

    #[test]
    fn the_same_message_within_the_window_is_a_series_and_another_message_is_a_new_event() {
        let start = Instant::now();
        let mut cache = HashMap::new();
        assert_eq!(step(&cache, &key("1 → 5"), start), Step::Create);
        cache.insert(key("1 → 5"), Published { namespace: "n".into(), name: "e1".into(), count: 1, last: start });
        assert_eq!(
            step(&cache, &key("1 → 5"), start + Duration::from_secs(60)),
            Step::Count { namespace: "n".into(), name: "e1".into(), count: 2 }
        );
        // Same reason and action, another message: never folded into the first.
        assert_eq!(step(&cache, &key("5 → 1"), start + Duration::from_secs(60)), Step::Create);
        // After the window, a new Event.
        assert_eq!(step(&cache, &key("1 → 5"), start + SERIES_WINDOW), Step::Create);
    }

    #[test]
    fn notes_are_cut_to_the_limit_on_a_character_boundary() {
        assert_eq!(bounded("short"), "short");
        let long = "é".repeat(700);
        let cut = bounded(&long);
        assert!(cut.len() <= NOTE_LIMIT && cut.ends_with('…'), "{}", cut.len());
    }
}
