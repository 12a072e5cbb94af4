//! Rollouts: a failing revision is rolled back once, a late one recovers, rollouts wait for a slot,
//! and a failover in the middle of a rollout neither repeats nor loses the rollback.

use super::*;

#[test]
fn cluster_a_never_ready_version_is_rolled_back_once() {
    let Some(cluster) = cluster() else { return };
    let platform = Platform::start(cluster, "cluster-rollback", "roll", quick(json!({})));
    platform.wait_condition(Duration::from_secs(90), "Ready", "True", None);
    wait_for(Duration::from_secs(20), "the last known good templates", || {
        cluster.get(&platform.namespace, "configmap", "roll-last-known-good")
    });
    let image = |platform: &Platform| {
        platform.deployment("api-server")["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let good = image(&platform);
    // Pods of this tag run but never pass their readiness (kwok's stage).
    platform.patch_spec(json!({"version": "never-ready"}));
    let started = Instant::now();
    wait_for(Duration::from_secs(20), "the new version applied", || {
        image(&platform).ends_with(":never-ready").then_some(())
    });
    let took = platform.wait_condition(Duration::from_secs(30 + 60), "RolledBack", "True", None);
    let took = took.max(started.elapsed());
    println!("never-ready revision rolled back after {:.1} s (progressDeadlineSeconds 30)", took.as_secs_f64());
    // The decision is recorded in the status first, then performed.
    wait_for(Duration::from_secs(10), "the last good template to run again", || {
        (image(&platform) == good).then_some(())
    });
    let key = format!("{}/roll", platform.namespace);
    assert_eq!(platform.operator.metric("finagent_operator_rollbacks_total", &[("financialagent", &key)]), 1.0);
    let warnings: Vec<_> = cluster.events(&platform.namespace).into_iter().filter(|e| e.1 == "RolledBack").collect();
    assert!(warnings.iter().any(|e| e.0 == "Warning" && e.2.contains("rolled back")), "{warnings:?}");
    let agent = platform.agent();
    assert_eq!(argocd_health(&agent).0, "Degraded", "{agent}");
    assert!(argocd_health(&agent).1.starts_with("Rolled back"), "{agent}");
    // The status says why and what runs: pods that never became ready are not a failed health
    // check, and the VERSION column shows the version running, not the failed one.
    let (_, reason, _) = platform.condition("RolledBack").expect("rolled back");
    // (Whichever deadline passed first: ours, or the Deployment's own progress deadline.)
    assert!(["ReplicasNotAvailable", "ProgressDeadlineExceeded"].contains(&reason.as_str()), "{agent}");
    wait_for(Duration::from_secs(20), "Ready=False naming both versions", || {
        let (status, reason, message) = platform.condition("Ready")?;
        (status == "False"
            && reason == "RolledBack"
            && message.contains("never-ready")
            && message.contains("running version"))
        .then_some(())
    });
    let running = good.rsplit(':').next().unwrap_or_default();
    assert_eq!(agent["status"]["version"].as_str(), Some(running), "{agent}");
    // `kubectl fa status` (the operator binary as kubectl's plugin) shows it at a glance.
    let plugins = cluster.work.join("plugins");
    std::fs::create_dir_all(&plugins).expect("plugin folder");
    let link = plugins.join("kubectl-fa");
    if !link.exists() {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_operator"), &link).expect("plugin link");
    }
    let path = format!("{}:{}", plugins.display(), std::env::var("PATH").unwrap_or_default());
    let output = std::process::Command::new(&cluster.kubectl)
        .args(["fa", "status", "roll", "-n", &platform.namespace])
        .env("KUBECONFIG", &cluster.kubeconfig)
        .env("PATH", path)
        .output()
        .expect("kubectl runs");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "kubectl fa status: {}", String::from_utf8_lossy(&output.stderr));
    println!("kubectl fa status roll:\n{report}");
    assert!(report.contains(&format!("Version:     {running} running, never-ready in the spec")), "{report}");
    assert!(report.contains("RolledBack") && report.contains("Warning  RolledBack"), "{report}");
    // Each decision is in the operator's log at info, with the resource's namespace/name.
    let log = std::fs::read_to_string(&platform.operator.log).unwrap_or_default();
    for decision in ["RolloutStarted", "RolledBack"] {
        assert!(
            log.lines().any(|line| line.contains("cluster-rollback/roll") && line.contains(decision)),
            "no {decision} line in the log:\n{log}"
        );
    }
    // Not retried until the spec changes.
    std::thread::sleep(Duration::from_secs(16));
    assert_eq!(image(&platform), good);
    assert_eq!(platform.operator.metric("finagent_operator_rollbacks_total", &[("financialagent", &key)]), 1.0);
    // A new spec is a new revision.
    platform.patch_spec(json!({"version": "0.1.0"}));
    platform.wait_condition(Duration::from_secs(60), "RolledBack", "False", None);
    platform.wait_condition(Duration::from_secs(60), "Ready", "True", None);
}

#[test]
fn cluster_a_late_first_revision_recovers_once_healthy() {
    let Some(cluster) = cluster() else { return };
    cluster.namespace("cluster-late");
    // A first install whose health check fails past the deadline (30 s), as a slow first start
    // would, with nothing to roll back to.
    let platform =
        Platform::start_with(cluster, "cluster-late", "late", quick(json!({})), HealthServer::answering(503));
    platform.wait_condition(Duration::from_secs(90), "Degraded", "True", Some("RolloutFailed"));
    assert_eq!(platform.condition("Ready").map(|c| c.0).as_deref(), Some("False"));
    assert!(platform.agent()["status"]["revision"]["failed"].is_string());
    let warnings: Vec<_> = cluster.events(&platform.namespace).into_iter().filter(|e| e.1 == "RolloutFailed").collect();
    assert!(warnings.iter().any(|e| e.0 == "Warning"), "{warnings:?}");
    // It becomes healthy: Ready, no longer failed, and recorded as the last known good.
    platform.health.set_status(200);
    let took = platform.wait_condition(Duration::from_secs(30), "Ready", "True", None);
    println!("late first revision Ready {:.1} s after its health check passed (poll 5 s)", took.as_secs_f64());
    platform.wait_condition(Duration::from_secs(10), "Degraded", "False", None);
    assert!(platform.agent()["status"]["revision"]["failed"].is_null(), "{}", platform.agent());
    wait_for(Duration::from_secs(10), "the last known good", || platform.last_good("revision"));
    assert_eq!(platform.rollbacks(), 0.0);
}

#[test]
fn cluster_with_rollbacks_off_a_failing_revision_keeps_running() {
    let Some(cluster) = cluster() else { return };
    let spec = quick(json!({"rollout": {"autoRollback": false}}));
    let platform = Platform::start(cluster, "cluster-norollback", "keep", spec);
    platform.wait_condition(Duration::from_secs(90), "Ready", "True", None);
    wait_for(Duration::from_secs(20), "the last known good", || platform.last_good("revision"));
    platform.patch_spec(json!({"version": "never-ready"}));
    wait_for(Duration::from_secs(20), "the new version applied", || {
        platform.image("api-server").ends_with(":never-ready").then_some(())
    });
    platform.wait_condition(Duration::from_secs(30 + 60), "Degraded", "True", Some("RolloutFailed"));
    let warnings: Vec<_> = cluster.events(&platform.namespace).into_iter().filter(|e| e.1 == "RolloutFailed").collect();
    assert!(warnings.iter().any(|e| e.0 == "Warning"), "{warnings:?}");
    // Passes later (poll 5 s), the failing revision still runs: nothing put the old one back.
    std::thread::sleep(Duration::from_secs(16));
    for component in ["api-server", "ocr-worker"] {
        assert!(platform.image(component).ends_with(":never-ready"), "{component}: {}", platform.image(component));
    }
    assert_eq!(platform.condition("RolledBack").map(|c| c.0).as_deref(), Some("False"));
    assert_eq!(platform.condition("Degraded").map(|c| c.1).as_deref(), Some("RolloutFailed"));
    assert_eq!(platform.rollbacks(), 0.0);
    assert_eq!(argocd_health(&platform.agent()).0, "Degraded");
}

#[test]
fn cluster_an_api_whose_health_check_fails_is_rolled_back() {
    let Some(cluster) = cluster() else { return };
    let platform = Platform::start(cluster, "cluster-unhealthy", "sick", quick(json!({})));
    platform.wait_condition(Duration::from_secs(90), "Ready", "True", None);
    wait_for(Duration::from_secs(20), "the last known good", || platform.last_good("revision"));
    let good = platform.image("api-server");
    // The new version's pods run and pass the kubelet's checks (kwok), but its health check
    // through the Service answers 503.
    platform.health.set_status(503);
    platform.patch_spec(json!({"version": "0.2.0"}));
    let started = Instant::now();
    wait_for(Duration::from_secs(20), "the new version applied", || {
        platform.image("api-server").ends_with(":0.2.0").then_some(())
    });
    platform.wait_condition(Duration::from_secs(30 + 60), "RolledBack", "True", Some("HealthCheckFailed"));
    println!("revision with a failing health check rolled back after {:.1} s", started.elapsed().as_secs_f64());
    wait_for(Duration::from_secs(10), "the last good template to run again", || {
        (platform.image("api-server") == good).then_some(())
    });
    assert_eq!(platform.rollbacks(), 1.0);
    let (_, _, message) = platform.condition("Ready").expect("ready");
    assert!(!message.is_empty(), "a rolled back platform says why it is not Ready");
    // The cause goes away outside the spec; the retry annotation tries the revision again.
    platform.health.set_status(200);
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(platform.image("api-server"), good, "held back until asked");
    let ns = platform.namespace.as_str();
    cluster.kubectl_ok(&["-n", ns, "annotate", "fa", &platform.name, "finagent.io/retry-revision=first-try"]);
    wait_for(Duration::from_secs(20), "the retried version applied", || {
        platform.image("api-server").ends_with(":0.2.0").then_some(())
    });
    platform.wait_condition(Duration::from_secs(60), "Ready", "True", None);
    platform.wait_condition(Duration::from_secs(10), "RolledBack", "False", None);
    let agent = platform.agent();
    assert_eq!(agent["status"]["version"], "0.2.0", "{agent}");
    assert_eq!(agent["status"]["revision"]["retried"], "first-try", "{agent}");
    assert!(agent["status"]["revision"].get("failed").is_none(), "{agent}");
    assert_eq!(platform.rollbacks(), 1.0, "the retry succeeded: no second rollback");
    let asked: Vec<_> = cluster.events(ns).into_iter().filter(|e| e.1 == "RetryRequested").collect();
    assert_eq!(asked.len(), 1, "{asked:?}");
}

#[test]
fn cluster_a_failover_in_the_middle_of_a_rollout_neither_repeats_nor_loses_the_rollback() {
    let Some(cluster) = cluster() else { return };
    let mut platform = Platform::start(cluster, "cluster-midroll", "mid", quick(json!({})));
    platform.wait_condition(Duration::from_secs(90), "Ready", "True", None);
    wait_for(Duration::from_secs(20), "the last known good", || platform.last_good("revision"));
    let ns = platform.namespace.clone();
    let standby = Operator::start(
        cluster,
        &ns,
        "b",
        &[connect_to_with(&ns, "mid", platform.redis.port, platform.health.port, platform.worker_health.port)],
    );
    let good = platform.image("api-server");
    // The leader starts a rollout of a version whose pods never become ready, and dies.
    platform.patch_spec(json!({"version": "never-ready"}));
    wait_for(Duration::from_secs(20), "the new version applied", || {
        platform.image("api-server").ends_with(":never-ready").then_some(())
    });
    platform.operator.signal("KILL");
    let killed = Instant::now();
    // The standby takes over, finds the deadline the leader started (on the API server's clock),
    // and rolls back: once.
    wait_for(Duration::from_secs(40), "the standby to lead", || standby.leads().then_some(()));
    platform.wait_condition(Duration::from_secs(90), "RolledBack", "True", None);
    wait_for(Duration::from_secs(20), "the good template back", || {
        (platform.image("api-server") == good).then_some(())
    });
    println!("leader killed mid-rollout: rolled back by the standby {:.1} s later", killed.elapsed().as_secs_f64());
    std::thread::sleep(Duration::from_secs(12));
    let key = format!("{ns}/mid");
    assert_eq!(standby.metric("finagent_operator_rollbacks_total", &[("financialagent", &key)]), 1.0);
    let rolled: Vec<_> = cluster.events(&ns).into_iter().filter(|e| e.1 == "RolledBack").collect();
    assert_eq!(rolled.len(), 1, "one rollback, one Event: {rolled:?}");
    assert_eq!(platform.image("api-server"), good, "the failed version was not applied again");
    // Recorded, then performed: the standby's status write saying RolledBack=True was answered
    // before its Deployment write that puts the good image back.
    let writes: Vec<_> = cluster
        .audited_writes()
        .into_iter()
        .filter(|write| write.namespace == ns && write.user_agent.ends_with("(b)") && write.code < 300)
        .collect();
    let recorded = writes.iter().position(|write| {
        write.subresource == "status"
            && write.body["status"]["conditions"]
                .as_array()
                .is_some_and(|conditions| conditions.iter().any(|c| c["type"] == "RolledBack" && c["status"] == "True"))
    });
    let performed = writes.iter().position(|write| {
        write.resource == "deployments"
            && write.name == "mid-api-server"
            && write.body["spec"]["template"]["spec"]["containers"][0]["image"] == good.as_str()
    });
    let (Some(recorded), Some(performed)) = (recorded, performed) else {
        panic!("the standby's writes: recorded {recorded:?}, performed {performed:?} among {} writes", writes.len())
    };
    assert!(recorded < performed, "performed (write {performed}) before it was recorded (write {recorded})");
    assert!(
        writes[recorded].received <= writes[performed].received,
        "{:?} / {:?}",
        writes[recorded].received,
        writes[performed].received
    );
}

#[test]
fn cluster_rollouts_beyond_the_limit_wait_for_a_slot() {
    let Some(cluster) = cluster() else { return };
    let ns = "cluster-slots";
    cluster.namespace(ns);
    // One Redis and one health server for both instances, reached through --connect-to patterns
    // (which also cover instances created after the operator started).
    let redis = RedisServer::start(harness::free_port(), Some(harness::REDIS_PASSWORD));
    let health = HealthServer::start();
    let pattern = format!(
        "--connect-to=*-redis.{ns}.svc:6379=127.0.0.1:{},*-api-server.{ns}.svc:80=127.0.0.1:{port},*-ocr-worker.{ns}.svc:9090=127.0.0.1:{port}",
        redis.port,
        port = health.port
    );
    let operator = Operator::start(cluster, ns, "a", &[pattern, "--max-concurrent-rollouts=1".to_owned()]);
    let names = ["one", "two"];
    for name in names {
        cluster.apply_ok(&harness::credentials(ns, name));
        cluster.apply_ok(&harness::resource(ns, name, &quick(json!({}))));
    }
    let status =
        |name: &str, kind: &str| cluster.get(ns, "financialagent", name).and_then(|agent| condition(&agent, kind));
    for name in names {
        wait_for(Duration::from_secs(90), &format!("{name} Ready"), || {
            (status(name, "Ready")?.0 == "True").then_some(())
        });
        wait_for(Duration::from_secs(20), "the last known good", || {
            cluster.get(ns, "configmap", &format!("{name}-last-known-good"))
        });
    }
    let new_image = |name: &str| {
        cluster.get(ns, "deployment", &format!("{name}-api-server")).is_some_and(|d| {
            d["spec"]["template"]["spec"]["containers"][0]["image"]
                .as_str()
                .unwrap_or_default()
                .ends_with(":never-ready")
        })
    };
    // Both asked for a version whose pods never become ready: one rolls out (and back), the
    // other waits, then rolls out in turn; never both at once.
    for name in names {
        cluster.kubectl_ok(&[
            "-n",
            ns,
            "patch",
            "fa",
            name,
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"version":"never-ready"}}"#,
        ]);
    }
    let started = Instant::now();
    let mut saw_queued = false;
    let mut rolled_out = [false, false];
    while started.elapsed() < Duration::from_secs(200) && !rolled_out.iter().all(|done| *done) {
        let now = [new_image("one"), new_image("two")];
        assert!(!(now[0] && now[1]), "both rolled out at once after {:?}", started.elapsed());
        for (index, name) in names.iter().enumerate() {
            rolled_out[index] |= now[index];
            saw_queued |= status(name, "Progressing").is_some_and(|c| c.1 == "RolloutQueued");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(rolled_out.iter().all(|done| *done), "each rolled out in turn: {rolled_out:?}");
    assert!(saw_queued, "the waiting one said so");
    for name in names {
        wait_for(Duration::from_secs(90), &format!("{name} rolled back"), || {
            (status(name, "RolledBack")?.0 == "True").then_some(())
        });
    }
    println!(
        "two rollouts with a limit of one: both ran in turn and were rolled back after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let queued: Vec<_> = cluster.events(ns).into_iter().filter(|e| e.1 == "RolloutQueued").collect();
    assert_eq!(queued.len(), 1, "said once: {queued:?}");
    assert!(queued[0].2.contains("1 rollout is under way"), "{queued:?}");
    drop(operator);
}

#[test]
fn cluster_workers_whose_health_check_fails_are_rolled_back() {
    let Some(cluster) = cluster() else { return };
    let platform = Platform::start(cluster, "cluster-sick-workers", "sickw", quick(json!({})));
    platform.wait_condition(Duration::from_secs(90), "Ready", "True", None);
    wait_for(Duration::from_secs(20), "the last known good", || platform.last_good("revision"));
    let good = platform.image("ocr-worker");
    // The new version's worker pods pass the kubelet's checks (kwok), but their /readyz, asked
    // by the operator through their Service, answers 503; the API's health check passes.
    platform.worker_health.set_status(503);
    platform.patch_spec(json!({"version": "0.2.0"}));
    let started = Instant::now();
    wait_for(Duration::from_secs(20), "the new version applied", || {
        platform.image("ocr-worker").ends_with(":0.2.0").then_some(())
    });
    platform.wait_condition(Duration::from_secs(30 + 60), "RolledBack", "True", Some("HealthCheckFailed"));
    println!(
        "revision whose workers fail their health check rolled back after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let (_, _, message) = platform.condition("RolledBack").expect("rolled back");
    assert!(message.contains("ocr-worker"), "the cause names the workers: {message}");
    wait_for(Duration::from_secs(10), "the last good workers back", || {
        (platform.image("ocr-worker") == good).then_some(())
    });
    assert_eq!(platform.rollbacks(), 1.0);
}

#[test]
fn cluster_workers_at_zero_neither_hold_back_nor_undo_a_new_api() {
    let Some(cluster) = cluster() else { return };
    let platform = Platform::start(cluster, "cluster-zero", "zero", quick(json!({"ocrWorker": {"minReplicas": 0}})));
    platform.wait_condition(Duration::from_secs(90), "Ready", "True", None);
    wait_for(Duration::from_secs(20), "no worker", || (platform.worker_replicas() == 0).then_some(()));
    platform.patch_spec(json!({"version": "0.2.0"}));
    let patched = Instant::now();
    // The new API proves itself with the workers at zero, recorded with the old workers' template.
    wait_for(Duration::from_secs(60), "the new API recorded as good", || {
        let api = platform.last_good("api-server")?;
        let worker = platform.last_good("ocr-worker")?;
        (api.contains(":0.2.0") && !worker.contains(":0.2.0")).then_some(())
    });
    // Past the deadline (30 s), the health check fails for two polls: a blip, not a rollback.
    std::thread::sleep(Duration::from_secs(35).saturating_sub(patched.elapsed()));
    platform.health.set_status(503);
    std::thread::sleep(Duration::from_secs(11));
    platform.health.set_status(200);
    assert_eq!(platform.condition("RolledBack").map(|c| c.0).as_deref(), Some("False"));
    assert!(platform.image("api-server").ends_with(":0.2.0"));
    assert_eq!(platform.rollbacks(), 0.0);
    // A backlog: 0 → 3 workers of the new template, proven once up; then back to 0.
    let jobs = "finagent:zero:ocr:jobs";
    platform.redis.cli(&["XGROUP", "CREATE", jobs, "ocr-workers", "0", "MKSTREAM"]);
    for index in 0..12 {
        platform.redis.cli(&["XADD", jobs, "*", "job", &format!("{{\"n\":{index}}}")]);
    }
    wait_for(Duration::from_secs(20), "3 workers", || (platform.worker_replicas() == 3).then_some(()));
    assert!(platform.image("ocr-worker").ends_with(":0.2.0"));
    wait_for(Duration::from_secs(30), "the new workers recorded as good", || {
        let worker = platform.last_good("ocr-worker")?;
        (worker.contains(":0.2.0") && platform.last_good("ocr-worker-proven")? == "true").then_some(())
    });
    platform.redis.cli(&["DEL", jobs]);
    wait_for(Duration::from_secs(40), "no worker again", || (platform.worker_replicas() == 0).then_some(()));
    platform.wait_condition(Duration::from_secs(20), "Ready", "True", None);
    assert_eq!(platform.condition("RolledBack").map(|c| c.0).as_deref(), Some("False"));
    assert_eq!(platform.rollbacks(), 0.0);
}
