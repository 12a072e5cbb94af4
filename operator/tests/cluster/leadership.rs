//! Leadership: one leader, failover on kill, hand-over on SIGTERM, and a paused leader that writes
//! nothing once its lease has passed.

use super::*;

#[test]
fn cluster_a_paused_leader_writes_nothing_after_its_lease_has_passed() {
    let Some(cluster) = cluster() else { return };
    let platform = Platform::start(cluster, "cluster-fence", "fence", quick(json!({})));
    platform.wait_condition(Duration::from_secs(90), "Ready", "True", None);
    let ns = platform.namespace.clone();
    let standby = Operator::start(
        cluster,
        &ns,
        "b",
        &[connect_to_with(&ns, "fence", platform.redis.port, platform.health.port, platform.worker_health.port)],
    );
    assert!(platform.operator.leads() && !standby.leads());
    // Every write so far came from the leader, under its own User-Agent.
    let ours = |write: &AuditedWrite, identity: &str| {
        write.namespace == ns && write.user_agent.ends_with(&format!("({identity})"))
    };
    assert!(cluster.audited_writes().iter().any(|write| ours(write, "a")), "the audit log names the replica");
    // The leader is paused in the middle of a pass: its queue read sits unread in a frozen Redis.
    platform.redis.freeze("STOP");
    wait_for(Duration::from_secs(20), "the leader's queue read to wait on the frozen Redis", || {
        platform.redis.has_unread_request().then_some(())
    });
    platform.operator.pause("STOP");
    let stopped = chrono::Utc::now();
    platform.redis.freeze("CONT");
    let started = Instant::now();
    wait_for(Duration::from_secs(60), "the standby to lead", || standby.leads().then_some(()));
    println!("a paused leader: the standby leads after {:.1} s", started.elapsed().as_secs_f64());
    // The new leader applies a newer spec.
    platform.patch_spec(json!({"apiServer": {"replicas": 3}}));
    wait_for(Duration::from_secs(30), "the newer spec applied by the new leader", || {
        (platform.deployment("api-server")["spec"]["replicas"] == 3).then_some(())
    });
    // The old leader wakes up in the middle of its pass, with the old spec in hand.
    platform.operator.pause("CONT");
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(platform.deployment("api-server")["spec"]["replicas"], 3, "the old leader's stale apply landed");
    let late: Vec<AuditedWrite> =
        cluster.audited_writes().into_iter().filter(|write| write.received > stopped && ours(write, "a")).collect();
    let described: Vec<String> = late
        .iter()
        .map(|write| format!("{} {} {}/{} → {}", write.verb, write.resource, write.namespace, write.name, write.code))
        .collect();
    assert!(late.is_empty(), "the paused leader wrote after its lease had passed: {described:#?}");
    let log = std::fs::read_to_string(&platform.operator.log).unwrap_or_default();
    println!(
        "the woken leader: {} writes refused by its fence, {} writes reached the API server",
        log.matches("refused a write").count(),
        late.len()
    );
    // The new leader carries on.
    assert!(standby.leads());
    assert!(
        cluster.audited_writes().iter().any(|write| write.received > stopped && ours(write, "b")),
        "the new leader's writes are in the audit log"
    );
}

#[test]
fn cluster_one_leader_fails_over_on_kill_and_hands_over_on_sigterm() {
    let Some(cluster) = cluster() else { return };
    let platform = Platform::start(cluster, "cluster-leader", "lead", quick(json!({})));
    platform.wait_condition(Duration::from_secs(90), "Ready", "True", None);
    let args = [harness::connect_to_with(
        "cluster-leader",
        "lead",
        platform.redis.port,
        platform.health.port,
        platform.worker_health.port,
    )];
    let mut second = Operator::start(cluster, "cluster-leader", "b", &args);
    std::thread::sleep(Duration::from_secs(8));
    let mut first = platform.operator;
    assert!(first.leads() && !second.leads(), "exactly one leads");
    assert!(second.reconciles() == 0.0 || second.reconciles().is_nan(), "the standby does not reconcile");
    // kill -9: the standby leads once the lease has stood still for its duration (15 s).
    first.signal("KILL");
    let started = Instant::now();
    wait_for(Duration::from_secs(25), "the standby to lead after kill -9", || second.leads().then_some(()));
    let failover = started.elapsed();
    println!("leader killed (-9): standby leads after {:.2} s (lease 15 s)", failover.as_secs_f64());
    // The lease duration from the last renewal the standby saw, plus its look (1 s) and requests.
    assert!(failover <= Duration::from_secs(15 + 3), "{failover:?}");
    // SIGTERM: the leader releases the lease and a standby leads within 2 s.
    let third = Operator::start(cluster, "cluster-leader", "c", &args);
    std::thread::sleep(Duration::from_secs(3));
    assert!(!third.leads());
    second.signal("TERM");
    let started = Instant::now();
    wait_for(Duration::from_secs(10), "the standby to lead after SIGTERM", || third.leads().then_some(()));
    let handover = started.elapsed();
    println!("leader stopped (SIGTERM): standby leads after {:.2} s", handover.as_secs_f64());
    assert!(handover <= Duration::from_secs(2) + Duration::from_millis(500), "{handover:?}");
    // The new leader reconciles.
    wait_for(Duration::from_secs(20), "the new leader to reconcile", || (third.reconciles() >= 1.0).then_some(()));
}

#[test]
fn cluster_a_conflict_on_our_own_renewal_is_not_lost_leadership() {
    use finagent_operator::leader::{LeaderElector, LeaseTimings};
    use k8s_openapi::api::coordination::v1::Lease;
    let Some(cluster) = cluster() else { return };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let kubeconfig = kube::config::Kubeconfig::read_from(&cluster.kubeconfig).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.expect("config");
        let client = kube::Client::try_from(config).expect("client");
        let leases: kube::Api<Lease> = kube::Api::namespaced(client.clone(), harness::SYSTEM_NAMESPACE);
        let elector =
            LeaderElector::new(client, harness::SYSTEM_NAMESPACE, "lease-conflict", "me", LeaseTimings::default());
        assert!(elector.try_hold().await.expect("first round"), "a free lease is taken");
        let read = leases.get("lease-conflict").await.expect("lease");
        // Our own earlier renewal lands after we read (it had timed out on our side): the lease
        // moved on, still ours, and our next write carries a stale resourceVersion.
        cluster.kubectl_ok(&[
            "-n",
            harness::SYSTEM_NAMESPACE,
            "annotate",
            "lease",
            "lease-conflict",
            "finagent.test/renewed=late",
        ]);
        assert!(elector.hold_from(Some(read)).await.expect("renewal"), "a conflict on our own renewal is re-read");
        let lease = leases.get("lease-conflict").await.expect("lease");
        assert_eq!(lease.spec.and_then(|spec| spec.holder_identity).as_deref(), Some("me"));
    });
}
