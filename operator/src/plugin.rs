//! `kubectl fa status NAME`: one instance at a glance, in the manner of `kubectl cnpg status`.
//!
//! The operator binary is also the plugin: installed (or linked) as `kubectl-fa` on the `PATH`,
//! `kubectl fa status NAME -n NAMESPACE` runs `operator status NAME -n NAMESPACE`. It reads the
//! resource and its recent Events with the caller's kubeconfig and prints the conditions, the
//! version running, the revisions, the workers and the queue, each component's readiness and the
//! last Events. [`report`] is pure and tested; [`status`] only fetches.

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};

use crate::crd::FinancialAgent;

/// `operator status` (or `kubectl fa status`).
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The FinancialAgent's name.
    pub name: String,
    /// Its namespace (default: the kubeconfig context's).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// How many of the latest Events to show.
    #[arg(long, default_value_t = 10)]
    pub events: usize,
}

/// The name the binary has when kubectl runs it as a plugin.
pub const PLUGIN_NAME: &str = "kubectl-fa";

/// How long ago `then` was, the way kubectl prints ages (`45s`, `12m`, `3h`, `2d`).
pub fn age(then: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(then) = then else { return "-".to_owned() };
    let seconds = (now - then).num_seconds().max(0);
    match seconds {
        0..=119 => format!("{seconds}s"),
        120..=7_199 => format!("{}m", seconds / 60),
        7_200..=172_799 => format!("{}h", seconds / 3_600),
        _ => format!("{}d", seconds / 86_400),
    }
}

fn or_dash(value: Option<&str>) -> &str {
    value.filter(|text| !text.is_empty()).unwrap_or("-")
}

fn event_time(event: &Event) -> Option<DateTime<Utc>> {
    let micro = event.event_time.as_ref().map(|time| time.0.as_second());
    let last = event.last_timestamp.as_ref().map(|time| time.0.as_second());
    let first = event.first_timestamp.as_ref().map(|time| time.0.as_second());
    let series =
        event.series.as_ref().and_then(|series| series.last_observed_time.as_ref()).map(|time| time.0.as_second());
    series.or(last).or(micro).or(first).and_then(|seconds| DateTime::from_timestamp(seconds, 0))
}

/// The report on one resource and its Events (any order; the latest `limit` are shown).
pub fn report(agent: &FinancialAgent, events: &[Event], limit: usize, now: DateTime<Utc>) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let status = agent.status.clone().unwrap_or_default();
    let condition = |kind: &str| status.conditions.iter().find(|c| c.type_ == kind);
    let _ = writeln!(out, "FinancialAgent {}/{}", agent.namespace().unwrap_or_default(), agent.name_any());
    match condition("Ready") {
        Some(ready) => {
            let _ = writeln!(out, "Ready:       {} ({}) {}", ready.status, ready.reason, ready.message);
        }
        None => {
            let _ = writeln!(out, "Ready:       unknown (the operator has not reported yet)");
        }
    }
    let running = status.version.as_deref().unwrap_or("-");
    let _ = writeln!(out, "Version:     {running} running, {} in the spec", agent.spec.version);
    if let Some(url) = &status.url {
        let _ = writeln!(out, "URL:         {url}");
    }
    let generation = agent.metadata.generation.unwrap_or(0);
    let observed = status.observed_generation.unwrap_or(0);
    if observed < generation {
        let _ = writeln!(out, "Spec:        generation {generation} not yet reconciled (last seen {observed})");
    }
    let revision = status.revision.clone().unwrap_or_default();
    let _ = writeln!(
        out,
        "Revision:    current {}, last known good {}, failed {}",
        or_dash(revision.current.as_deref()),
        or_dash(revision.last_known_good.as_deref()),
        or_dash(revision.failed.as_deref())
    );
    if let Some(workers) = &status.workers {
        let depth = workers.queue_depth.map_or_else(|| "unknown".to_owned(), |depth| depth.to_string());
        let scaled = workers
            .last_scale_time
            .as_deref()
            .and_then(|time| DateTime::parse_from_rfc3339(time).ok())
            .map(|time| time.with_timezone(&Utc));
        let _ = writeln!(
            out,
            "Workers:     {} running, {} wanted, queue depth {depth}, last scaled {} ago",
            workers.replicas,
            workers.desired_replicas,
            age(scaled, now)
        );
    }
    if !status.components.is_empty() {
        let _ = writeln!(out, "\nComponents:");
        for (name, component) in &status.components {
            let _ = writeln!(out, "  {name:<12} {}/{} ready", component.ready_replicas, component.replicas);
        }
    }
    let _ = writeln!(out, "\nConditions:");
    let _ = writeln!(out, "  {:<22} {:<7} {:<26} {:<5} MESSAGE", "TYPE", "STATUS", "REASON", "AGE");
    for condition in &status.conditions {
        let since = DateTime::from_timestamp(condition.last_transition_time.0.as_second(), 0);
        let _ = writeln!(
            out,
            "  {:<22} {:<7} {:<26} {:<5} {}",
            condition.type_,
            condition.status,
            condition.reason,
            age(since, now),
            condition.message
        );
    }
    let mut events: Vec<&Event> = events.iter().collect();
    events.sort_by_key(|event| event_time(event));
    let shown = &events[events.len().saturating_sub(limit)..];
    let _ = writeln!(out, "\nEvents (the last {}):", shown.len());
    if shown.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for event in shown {
        let count = event.series.as_ref().map_or(event.count.unwrap_or(1), |series| series.count.unwrap_or(1));
        let times = if count > 1 { format!(" (x{count})") } else { String::new() };
        let _ = writeln!(
            out,
            "  {:<5} {:<8} {}{times}: {}",
            age(event_time(event), now),
            or_dash(event.type_.as_deref()),
            or_dash(event.reason.as_deref()),
            or_dash(event.message.as_deref())
        );
    }
    out
}

/// Fetches the resource and its Events and prints the report.
pub async fn status(args: StatusArgs) -> anyhow::Result<()> {
    let client = Client::try_default().await?;
    let namespace = args.namespace.clone().unwrap_or_else(|| client.default_namespace().to_owned());
    let agents: Api<FinancialAgent> = Api::namespaced(client.clone(), &namespace);
    let Some(agent) = agents.get_opt(&args.name).await? else {
        anyhow::bail!("FinancialAgent {namespace}/{} not found", args.name);
    };
    let events: Api<Event> = Api::namespaced(client, &namespace);
    let selector = format!("involvedObject.uid={}", agent.uid().unwrap_or_default());
    let events = events.list(&ListParams::default().fields(&selector)).await?.items;
    print!("{}", report(&agent, &events, args.events, Utc::now()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{ComponentStatus, FinancialAgentStatus, RevisionStatus, WorkersStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).expect("time")
    }

    fn time(seconds: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000 + seconds).expect("time"))
    }

    #[test]
    fn ages_read_like_kubectls() {
        assert_eq!(age(Some(at(0)), at(45)), "45s");
        assert_eq!(age(Some(at(0)), at(12 * 60)), "12m");
        assert_eq!(age(Some(at(0)), at(3 * 3600)), "3h");
        assert_eq!(age(Some(at(0)), at(3 * 86400)), "3d");
        assert_eq!(age(None, at(0)), "-");
    }

    #[test]
    fn the_report_shows_what_runs_why_and_what_happened_last() {
        let mut agent = crate::validate::tests::agent(serde_json::json!({"version": "2.0.0"}));
        agent.metadata.generation = Some(2);
        let condition = |kind: &str, status: &str, reason: &str, message: &str| Condition {
            type_: kind.into(),
            status: status.into(),
            reason: reason.into(),
            message: message.into(),
            observed_generation: Some(2),
            last_transition_time: time(0),
        };
        agent.status = Some(FinancialAgentStatus {
            observed_generation: Some(2),
            conditions: vec![
                condition("Ready", "False", "RolledBack", "version 2.0.0 failed before; running version 1.0.0"),
                condition("RolledBack", "True", "HealthCheckFailed", "rolled back to version 1.0.0"),
            ],
            components: [("api-server".to_owned(), ComponentStatus { ready_replicas: 2, replicas: 2 })].into(),
            workers: Some(WorkersStatus {
                replicas: 3,
                desired_replicas: 4,
                queue_depth: Some(17),
                last_scale_time: Some(at(-600).to_rfc3339()),
                ..WorkersStatus::default()
            }),
            revision: Some(RevisionStatus {
                current: Some("aaaa-bbbb".into()),
                last_known_good: Some("cccc-dddd".into()),
                failed: Some("aaaa-bbbb".into()),
                ..RevisionStatus::default()
            }),
            version: Some("1.0.0".into()),
            url: Some("http://shop-api-server.finance.svc".into()),
        });
        let event = |seconds: i64, reason: &str, message: &str| Event {
            reason: Some(reason.into()),
            message: Some(message.into()),
            type_: Some("Warning".into()),
            last_timestamp: Some(time(seconds)),
            ..Event::default()
        };
        let events: Vec<Event> = (0..12).map(|index| event(index, &format!("R{index}"), "m")).rev().collect();
        let text = report(&agent, &events, 10, at(60));
        assert!(text.starts_with("FinancialAgent finance/shop\n"), "{text}");
        assert!(text.contains("Ready:       False (RolledBack) version 2.0.0 failed before"), "{text}");
        assert!(text.contains("Version:     1.0.0 running, 2.0.0 in the spec"), "{text}");
        assert!(text.contains("failed aaaa-bbbb"), "{text}");
        assert!(text.contains("3 running, 4 wanted, queue depth 17, last scaled 11m ago"), "{text}");
        assert!(text.contains("api-server   2/2 ready"), "{text}");
        assert!(text.contains("RolledBack             True    HealthCheckFailed          60s"), "{text}");
        // The latest ten, oldest first.
        assert!(text.contains("Events (the last 10):") && !text.contains("R1:") && text.contains("R2:"), "{text}");
        assert!(text.find("R2:") < text.find("R11:"), "{text}");
    }
}
