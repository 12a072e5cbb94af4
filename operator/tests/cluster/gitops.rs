//! GitOps for real: a real Argo CD (`argocd.rs`) syncs FinancialAgents from a Git repository
//! served on loopback, the real operator reconciles them, and Argo CD's health of each comes from
//! our Lua check (`config/argocd/health.lua`) reading the real status.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::argocd::{ArgoCd, GitRepo, argocd, manifest};
use super::harness::{
    self, HealthServer, Operator, Platform, RedisServer, argocd_health, cluster, condition, wait_for,
};
use super::quick;

const FILE: &str = "platform/financialagent.yaml";

/// Whether every field of `wanted` is in `live` with the same value (maps compared by key, lists
/// and scalars whole).
fn contains(live: &Value, wanted: &Value) -> bool {
    match (live, wanted) {
        (Value::Object(live), Value::Object(wanted)) => {
            wanted.iter().all(|(key, value)| live.get(key).is_some_and(|have| contains(have, value)))
        }
        (live, wanted) => live == wanted,
    }
}

/// Waits until Argo CD's health of the resource carries our check's message for the live object
/// (the same script run here in an embedded Lua); returns (status, message).
fn health_from_our_check(argocd: &ArgoCd, platform: &Platform, app: &str, status: &str) -> (String, String) {
    wait_for(Duration::from_secs(60), &format!("Argo CD's health of {} to be our {status}", platform.name), || {
        let seen = ArgoCd::resource_health(&argocd.app(platform.cluster, app), "FinancialAgent", &platform.name)?;
        let ours = argocd_health(&platform.agent());
        (seen.0 == status && ours.0 == status && seen.1 == ours.1).then_some(seen)
    })
}

#[test]
fn cluster_argocd_syncs_from_git_reports_our_health_and_never_fights_the_operator() {
    let Some(cluster) = cluster() else { return };
    let Some(argocd) = argocd() else { return };
    let (namespace, name) = ("cluster-argocd-sync", "gitops");
    cluster.namespace(namespace);
    let mut platform = Platform::start_without_resource(cluster, namespace, name, HealthServer::start());
    let repo = GitRepo::new(&argocd, namespace);
    let labels = json!({"team": "finance", "environment": "test"});
    let spec = quick(json!({"ocrWorker": {"maxReplicas": 4}, "apiServer": {"replicas": 2}}));
    let commit = repo.commit(FILE, &manifest(namespace, name, &spec, &labels), "A receipts platform");
    let started = Instant::now();
    argocd.application(cluster, namespace, &repo, "platform", namespace);
    let app = argocd.wait(cluster, namespace, Duration::from_secs(120), Some(&commit), "Synced", "Healthy");
    println!("argo cd: Synced and Healthy {:.1} s after the Application was created", started.elapsed().as_secs_f64());
    assert_eq!(app["status"]["operationState"]["phase"], "Succeeded", "{app}");
    // The health is our check's, on the real status: its message is the Ready condition's.
    let (_, message) = health_from_our_check(&argocd, &platform, namespace, "Healthy");
    let (ready, _, ready_message) = condition(&platform.agent(), "Ready").expect("Ready");
    assert_eq!((ready.as_str(), message.as_str()), ("True", ready_message.as_str()));
    let (ok, shown) = argocd.cli(&["app", "get", namespace]);
    println!("argocd app get {namespace}:\n{shown}");
    assert!(ok && shown.contains("Synced") && shown.contains("Healthy"), "{shown}");

    // A steady minute in which the operator writes: the status, and the workers' Deployment as a
    // backlog comes and goes. Argo CD's diff must stay Synced, and it must not sync again.
    let syncs = argocd.syncs(namespace);
    let agent_version = platform.agent()["metadata"]["resourceVersion"].clone();
    platform.redis.cli(&["XGROUP", "CREATE", "finagent:gitops:ocr:jobs", "ocr-workers", "0", "MKSTREAM"]);
    for index in 0..20 {
        platform.redis.cli(&["XADD", "finagent:gitops:ocr:jobs", "*", "job", &format!("{{\"n\":{index}}}")]);
    }
    let started = Instant::now();
    let (mut out_of_sync, mut samples, mut most_workers, mut drained) = (Vec::new(), 0, 0, false);
    while started.elapsed() < Duration::from_secs(60) {
        let app = argocd.app(cluster, namespace);
        samples += 1;
        if app["status"]["sync"]["status"] != "Synced" {
            out_of_sync.push(format!("{:.0} s: {}", started.elapsed().as_secs_f64(), app["status"]["sync"]));
        }
        most_workers = most_workers.max(platform.worker_replicas());
        if !drained && started.elapsed() > Duration::from_secs(20) {
            platform.redis.cli(&["DEL", "finagent:gitops:ocr:jobs"]);
            drained = true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let synced_again = argocd.syncs(namespace) - syncs;
    println!(
        "argo cd over a steady minute: {synced_again} syncs, {} of {samples} samples not Synced, workers 1 → {most_workers} → {}",
        out_of_sync.len(),
        platform.worker_replicas()
    );
    assert_eq!(most_workers, 4, "the operator scaled the workers during the minute");
    assert_ne!(platform.agent()["metadata"]["resourceVersion"], agent_version, "the operator wrote its status");
    assert!(out_of_sync.is_empty(), "Argo CD saw a difference: {out_of_sync:?}");
    assert_eq!(synced_again, 0.0, "Argo CD synced again in a steady minute");
    // Every field Git sets is still there, and only Argo CD manages the spec.
    let agent = platform.agent();
    assert!(contains(&agent["spec"], &spec), "spec lost fields Git sets: {}", agent["spec"]);
    assert!(contains(&agent["metadata"]["labels"], &labels), "{}", agent["metadata"]);
    assert_eq!(agent["metadata"]["annotations"]["finagent.example/owner"], "platform-team");
    let shown =
        cluster.kubectl_ok(&["-n", namespace, "get", "financialagent", name, "-o", "json", "--show-managed-fields"]);
    let shown: Value = serde_json::from_str(&shown).expect("json");
    let managers = shown["metadata"]["managedFields"].as_array().cloned().unwrap_or_default();
    for entry in &managers {
        let fields = entry["fieldsV1"].to_string();
        if entry["manager"] != "argocd-controller" {
            assert!(!fields.contains("\"f:spec\""), "{} manages spec fields: {fields}", entry["manager"]);
            assert!(!fields.contains("\"f:labels\""), "{} manages labels: {fields}", entry["manager"]);
        }
    }
    assert!(
        managers.iter().any(|entry| entry["manager"] == "argocd-controller" && entry["operation"] == "Apply"),
        "Argo CD applied server-side: {managers:?}"
    );
    platform.redis.stop();
}

#[test]
fn cluster_argocd_shows_a_rollback_as_degraded_until_git_fixes_it() {
    let Some(cluster) = cluster() else { return };
    let Some(argocd) = argocd() else { return };
    let (namespace, name) = ("cluster-argocd-rollback", "gitops");
    cluster.namespace(namespace);
    let platform = Platform::start_without_resource(cluster, namespace, name, HealthServer::start());
    let repo = GitRepo::new(&argocd, namespace);
    let labels = json!({"team": "finance"});
    let first = repo.commit(FILE, &manifest(namespace, name, &quick(json!({})), &labels), "A receipts platform");
    argocd.application(cluster, namespace, &repo, "platform", namespace);
    argocd.wait(cluster, namespace, Duration::from_secs(120), Some(&first), "Synced", "Healthy");
    wait_for(Duration::from_secs(30), "the last known good", || platform.last_good("revision"));

    // A version whose pods never become ready (kwok's stage for the tag).
    let broken = quick(json!({"version": "never-ready"}));
    let commit = repo.commit(FILE, &manifest(namespace, name, &broken, &labels), "Release never-ready");
    argocd.refresh(cluster, namespace);
    let started = Instant::now();
    let mut seen: Vec<String> = Vec::new();
    let app = wait_for(Duration::from_secs(150), "Degraded after the rollback", || {
        let app = argocd.app(cluster, namespace);
        if app["status"]["sync"]["revision"] != commit.as_str() {
            return None;
        }
        let health = app["status"]["health"]["status"].as_str().unwrap_or_default().to_owned();
        if seen.last() != Some(&health) {
            println!("argo cd after the broken commit, {:.1} s: {health}", started.elapsed().as_secs_f64());
            seen.push(health.clone());
        }
        (health == "Degraded").then_some(app)
    });
    // Synced to the new commit, Argo CD may still show the health it computed before; then
    // Progressing while the operator rolls out, and only then Degraded.
    let after_sync: Vec<&str> = seen.iter().map(String::as_str).skip_while(|health| *health == "Healthy").collect();
    assert_eq!(after_sync, ["Progressing", "Degraded"], "health went {seen:?}");
    assert_eq!(app["status"]["sync"]["status"], "Synced", "Git and the resource agree; what runs does not");
    wait_for(Duration::from_secs(10), "the rollback counted", || (platform.rollbacks() == 1.0).then_some(()));
    let (_, message) = health_from_our_check(&argocd, &platform, namespace, "Degraded");
    assert!(message.starts_with("Rolled back: "), "{message}");
    assert!(message.contains("version never-ready"), "the message names the failed version: {message}");
    // The CLI shows our message in its detailed tree (the REASON column), as the UI does on the
    // resource's node.
    let (ok, shown) = argocd.cli(&["app", "get", namespace, "-o", "tree=detailed"]);
    println!("argocd app get {namespace} -o tree=detailed after the rollback:\n{shown}");
    assert!(ok && shown.contains("Degraded") && shown.contains("Rolled back"), "{shown}");

    // A commit that fixes the version brings Healthy back.
    let fixed = quick(json!({"version": "0.1.0"}));
    let commit = repo.commit(FILE, &manifest(namespace, name, &fixed, &labels), "Release 0.1.0");
    argocd.refresh(cluster, namespace);
    let started = Instant::now();
    argocd.wait(cluster, namespace, Duration::from_secs(120), Some(&commit), "Synced", "Healthy");
    println!("argo cd: Healthy {:.1} s after the fixing commit", started.elapsed().as_secs_f64());
    health_from_our_check(&argocd, &platform, namespace, "Healthy");
}

#[test]
fn cluster_argocd_self_heal_recreates_a_deleted_resource_and_its_data_stays_readable() {
    let Some(cluster) = cluster() else { return };
    let Some(argocd) = argocd() else { return };
    let (namespace, name) = ("cluster-argocd-heal", "gitops");
    cluster.namespace(namespace);
    // The operator generates the credentials here, as for any user; the test's Redis starts with
    // the password it drew.
    let redis_port = harness::free_port();
    let (health, worker_health) = (HealthServer::start(), HealthServer::start());
    let operator = Operator::start(
        cluster,
        namespace,
        "a",
        &[harness::connect_to_with(namespace, name, redis_port, health.port, worker_health.port)],
    );
    let repo = GitRepo::new(&argocd, namespace);
    let commit = repo.commit(FILE, &manifest(namespace, name, &quick(json!({})), &json!({})), "A receipts platform");
    argocd.application(cluster, namespace, &repo, "platform", namespace);
    let secret_name = format!("{name}-credentials");
    let secret = wait_for(Duration::from_secs(60), "the generated credentials", || {
        cluster.get(namespace, "secret", &secret_name)
    });
    let password = cluster.kubectl_ok(&[
        "-n",
        namespace,
        "get",
        "secret",
        &secret_name,
        "-o",
        "go-template={{index .data \"redis-password\" | base64decode}}",
    ]);
    let redis = RedisServer::start(redis_port, Some(&password));
    let platform = Platform {
        cluster,
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        redis,
        health,
        worker_health,
        operator,
    };
    argocd.wait(cluster, namespace, Duration::from_secs(120), Some(&commit), "Synced", "Healthy");
    let claims = |phase: &str| -> Vec<(String, String)> {
        let list: Value =
            serde_json::from_str(&cluster.kubectl_ok(&["-n", namespace, "get", "pvc", "-o", "json"])).expect("json");
        let mut claims: Vec<_> = list["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter(|claim| claim["status"]["phase"] == phase)
            .map(|claim| {
                let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
                (text(&claim["metadata"]["name"]), text(&claim["metadata"]["uid"]))
            })
            .collect();
        claims.sort();
        claims
    };
    let bound = wait_for(Duration::from_secs(60), "the datastores' claims bound", || {
        let bound = claims("Bound");
        (bound.len() >= 2).then_some(bound)
    });
    let uid = platform.agent()["metadata"]["uid"].clone();

    // Deleted by hand: Argo CD puts it back from Git.
    cluster.kubectl_ok(&["-n", namespace, "delete", "financialagent", name, "--wait=true"]);
    let started = Instant::now();
    let recreated = wait_for(Duration::from_secs(60), "Argo CD to recreate the resource", || {
        let agent = cluster.get(namespace, "financialagent", name)?;
        (agent["metadata"]["uid"] != uid).then_some(agent)
    });
    println!("argo cd self-heal: deleted resource recreated after {:.1} s", started.elapsed().as_secs_f64());
    assert!(contains(&recreated["spec"], &quick(json!({}))), "{}", recreated["spec"]);
    platform.wait_condition(Duration::from_secs(120), "Ready", "True", None);
    argocd.wait(cluster, namespace, Duration::from_secs(60), Some(&commit), "Synced", "Healthy");
    // The credentials are the same Secret with the same passwords, and the same claims are bound
    // again: the data the datastores initialised opens with them.
    let after = cluster.get(namespace, "secret", &secret_name).expect("the credentials survive");
    assert_eq!(after["metadata"]["uid"], secret["metadata"]["uid"]);
    assert_eq!(after["data"], secret["data"], "the passwords were regenerated");
    assert_eq!(claims("Bound"), bound, "the datastores' claims changed");
    assert_eq!(platform.condition("Degraded").map(|c| c.0).as_deref(), Some("False"));
}

#[test]
fn cluster_argocd_a_resource_that_breaks_a_cel_rule_fails_the_sync_with_the_api_servers_message() {
    let Some(cluster) = cluster() else { return };
    let Some(argocd) = argocd() else { return };
    let (namespace, name) = ("cluster-argocd-invalid", "gitops");
    cluster.namespace(namespace);
    let repo = GitRepo::new(&argocd, namespace);
    let invalid = quick(json!({"ocrWorker": {"minReplicas": 5, "maxReplicas": 2}}));
    let commit = repo.commit(FILE, &manifest(namespace, name, &invalid, &json!({})), "Workers 5 to 2");
    argocd.application(cluster, namespace, &repo, "platform", namespace);
    let rule = "minReplicas must not exceed maxReplicas";
    let app = wait_for(Duration::from_secs(120), "the sync to fail", || {
        let app = argocd.app(cluster, namespace);
        let operation = &app["status"]["operationState"];
        let failed = operation["phase"] == "Failed" || operation["phase"] == "Error";
        (failed && operation["syncResult"]["revision"] == commit.as_str()).then_some(app)
    });
    let operation = &app["status"]["operationState"];
    println!("argo cd sync of an invalid resource: {} — {}", operation["phase"], operation["message"]);
    assert!(operation["message"].as_str().unwrap_or_default().contains(rule), "{operation}");
    assert_eq!(app["status"]["sync"]["status"], "OutOfSync");
    assert!(cluster.get(namespace, "financialagent", name).is_none(), "nothing was created");
    let (_, shown) = argocd.cli(&["app", "get", namespace]);
    println!("argocd app get {namespace}:\n{shown}");
    assert!(shown.contains(rule), "{shown}");
    // A commit that fixes it syncs.
    let valid = quick(json!({"ocrWorker": {"minReplicas": 2, "maxReplicas": 5}}));
    let commit = repo.commit(FILE, &manifest(namespace, name, &valid, &json!({})), "Workers 2 to 5");
    argocd.refresh(cluster, namespace);
    argocd.wait(cluster, namespace, Duration::from_secs(90), Some(&commit), "Synced", "Progressing");
    assert!(cluster.get(namespace, "financialagent", name).is_some());
}
