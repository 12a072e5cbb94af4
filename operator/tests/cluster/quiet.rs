//! What wakes the operator: in a steady state only its poll, and of the objects it owns only
//! those it labels.

use std::time::Duration;

use serde_json::json;

use crate::harness::{Platform, cluster, wait_for};
use crate::quick;

#[test]
fn cluster_steady_state_is_quiet() {
    let Some(cluster) = cluster() else { return };
    let platform =
        Platform::start(cluster, "cluster-steady", "steady", quick(json!({"ocrWorker": {"pollIntervalSeconds": 10}})));
    platform.wait_condition(Duration::from_secs(90), "Ready", "True", None);
    // Let the pass that saw Ready settle.
    std::thread::sleep(Duration::from_secs(12));
    let before = platform.resource_versions();
    let reconciles = platform.operator.reconciles();
    let requests = platform.operator.requests();
    let window = Duration::from_secs(60);
    std::thread::sleep(window);
    let after = platform.resource_versions();
    let reconciled = platform.operator.reconciles() - reconciles;
    let changed: Vec<_> = before.iter().zip(&after).filter(|(a, b)| a != b).collect();
    assert_eq!(before.len(), after.len(), "objects came or went: {before:?} → {after:?}");
    assert!(changed.is_empty(), "resourceVersions changed in a steady minute: {changed:?}");
    // One pass per poll interval (10 s), and nothing else: no status write wakes the controller.
    assert!((5.0..=8.0).contains(&reconciled), "{reconciled} reconciles in 60 s with a 10 s poll");
    let mut total = 0.0;
    let mut by_verb = Vec::new();
    for (verb, count) in platform.operator.requests() {
        let earlier = requests.iter().find(|(v, _)| *v == verb).map_or(0.0, |(_, c)| *c);
        total += count - earlier;
        by_verb.push(format!("{verb} {}", count - earlier));
    }
    println!(
        "steady state: {reconciled} reconciles and {total} Kubernetes API requests in 60 s ({}), no resourceVersion changed among {} objects",
        by_verb.join(", "),
        after.len()
    );
    // Bounded, not only printed: the lease's renewals (one PUT every 5 s, the renew period; a
    // standby would look every 2 s), four reads per pass (the three Secrets the pods read, which
    // are not watched, and the Redis password for the queue depth), and no write of any other kind.
    let count = |verb: &str| {
        let now = platform.operator.requests().iter().find(|(v, _)| v == verb).map_or(0.0, |(_, c)| *c);
        now - requests.iter().find(|(v, _)| v == verb).map_or(0.0, |(_, c)| *c)
    };
    assert!(count("put") <= 14.0, "lease renewals: {by_verb:?}");
    assert!(count("get") <= 4.0 * (reconciled + 1.0), "reads per pass: {by_verb:?}");
    for verb in ["patch", "post", "delete"] {
        assert_eq!(count(verb), 0.0, "a steady platform is written to: {by_verb:?}");
    }
}

#[test]
fn cluster_children_are_watched_by_label_only() {
    let Some(cluster) = cluster() else { return };
    // A long poll, so that any pass in the window was started by a watch event.
    let platform =
        Platform::start(cluster, "cluster-watch", "watch", quick(json!({"ocrWorker": {"pollIntervalSeconds": 3600}})));
    platform.wait_condition(Duration::from_secs(90), "Ready", "True", None);
    std::thread::sleep(Duration::from_secs(5));
    let uid = platform.agent()["metadata"]["uid"].as_str().expect("uid").to_owned();
    // A ConfigMap that names the resource as its owner but lacks the operator's label: its
    // changes must not reach the operator (it watches, and caches, only what it labels).
    let unlabelled = |value: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "not-ours", "namespace": "cluster-watch", "ownerReferences": [{
                   "apiVersion": "finagent.io/v1alpha1", "kind": "FinancialAgent", "name": "watch", "uid": uid, "controller": true}]},
               "data": {"value": value}})
        .to_string()
    };
    // A pass a labelled child or the resource itself started (the rollout's last-known-good
    // record, a Deployment's status) may fall in the window: such a window says nothing, and is
    // tried again once the operator is quiet. An unlabelled change that woke the operator fails
    // every attempt, since it changes no labelled object.
    let mut round = 0;
    let before = loop {
        // Quiet: neither a pass nor a labelled object's change for 5 s.
        let (versions, before) = wait_for(Duration::from_secs(60), "the operator to be quiet for 5 s", || {
            let versions = platform.resource_versions();
            let reconciles = platform.operator.reconciles();
            std::thread::sleep(Duration::from_secs(5));
            (platform.operator.reconciles() == reconciles && platform.resource_versions() == versions)
                .then_some((versions, reconciles))
        });
        for _ in 0..5 {
            cluster.apply_ok(&unlabelled(&round.to_string()));
            round += 1;
            std::thread::sleep(Duration::from_millis(300));
        }
        std::thread::sleep(Duration::from_secs(3));
        let after = platform.operator.reconciles();
        if after == before {
            break before;
        }
        let moved = platform.resource_versions() != versions;
        assert!(moved && round < 20, "an unlabelled object's changes woke the operator: {before} → {after} passes");
        println!("a labelled object changed in the window ({before} → {after} passes): trying again");
    };
    // A labelled child's change does.
    cluster.kubectl_ok(&["-n", "cluster-watch", "label", "service", "watch-api-server", "finagent.test/touched=yes"]);
    wait_for(Duration::from_secs(10), "a pass after a child changed", || {
        (platform.operator.reconciles() > before).then_some(())
    });
}
