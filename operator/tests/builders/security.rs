//! Security: NetworkPolicies, Secrets kept off command lines, the restricted pod standard.

use super::*;

#[test]
fn every_pod_runs_under_the_restricted_standard() {
    for name in SAMPLES {
        for object in build_all(&sample(name), &Inputs::default()).objects {
            let Some(pod) = object["spec"]["template"]["spec"].as_object() else { continue };
            let what = format!("{name}: {} {}", object["kind"], object["metadata"]["name"]);
            assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{what}");
            assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault", "{what}");
            for container in pod["containers"].as_array().expect("containers") {
                let security = &container["securityContext"];
                assert_eq!(security["allowPrivilegeEscalation"], false, "{what}");
                assert_eq!(security["capabilities"]["drop"], json!(["ALL"]), "{what}");
                assert!(container["resources"]["requests"].is_object(), "{what}: requests");
                assert!(container["readinessProbe"].is_object(), "{what}: readiness probe");
            }
        }
    }
}

#[test]
fn network_policies_let_only_the_api_workers_and_operator_reach_the_datastores() {
    let agent = sample("minimal");
    let policies = finagent_operator::build::edge::network_policies(&agent, Some("finagent-system"));
    let redis = policies.iter().find(|policy| policy["metadata"]["name"] == "receipts-redis").expect("redis policy");
    let sources: Vec<&str> = redis["spec"]["ingress"][0]["from"]
        .as_array()
        .expect("from")
        .iter()
        .map(|peer| {
            let labels = &peer["podSelector"]["matchLabels"];
            labels["app.kubernetes.io/component"].as_str().or(labels["finagent.io/role"].as_str()).expect("peer")
        })
        .collect();
    assert_eq!(sources, ["api-server", "ocr-worker", "operator"], "the operator reads the queue depth");
    assert_eq!(
        redis["spec"]["ingress"][0]["from"][2]["namespaceSelector"],
        json!({"matchLabels": {"kubernetes.io/metadata.name": "finagent-system"}}),
        "the operator's pods in the operator's namespace, not a pod anywhere that copies its label"
    );
    // Not knowing its namespace, the operator's peer is limited to the platform's own namespace.
    let local = finagent_operator::build::edge::network_policies(&agent, None);
    let redis = local.iter().find(|policy| policy["metadata"]["name"] == "receipts-redis").expect("redis policy");
    assert!(redis["spec"]["ingress"][0]["from"][2].get("namespaceSelector").is_none(), "{redis}");
    let mongodb = policies.iter().find(|policy| policy["metadata"]["name"] == "receipts-mongodb").expect("mongo");
    assert_eq!(mongodb["spec"]["ingress"][0]["from"].as_array().expect("from").len(), 2, "API and workers only");
    let api = policies.iter().find(|policy| policy["metadata"]["name"] == "receipts-api-server").expect("api policy");
    assert_eq!(
        api["spec"]["ingress"][0],
        json!({"ports": [{"port": 8000}]}),
        "the API alone is open to outside traffic"
    );
    assert_eq!(api["spec"]["ingress"][1]["ports"], json!([{"port": 9090}]), "its metrics port is not");
    let scrapers = api["spec"]["ingress"][1]["from"].as_array().expect("scrapers");
    assert!(
        scrapers.iter().any(|peer| peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "prometheus"),
        "{scrapers:?}"
    );
}

#[test]
fn network_policies_are_applied_first_and_admit_a_cluster_prometheus_to_the_workers() {
    let agent = sample("minimal");
    let objects = build_all(&agent, &Inputs::default()).objects;
    let policies = objects.iter().take_while(|object| object["kind"] == "NetworkPolicy").count();
    assert_eq!(
        policies,
        finagent_operator::build::edge::network_policies(&agent, None).len(),
        "every NetworkPolicy comes first"
    );
    assert!(objects[policies..].iter().all(|object| object["kind"] != "NetworkPolicy"));
    let workers = objects
        .iter()
        .find(|o| o["metadata"]["name"] == "receipts-ocr-worker" && o["kind"] == "NetworkPolicy")
        .expect("policy");
    let from = workers["spec"]["ingress"][0]["from"].as_array().expect("from");
    assert!(
        from.contains(
            &json!({"namespaceSelector": {}, "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}})
        ),
        "the chart's PodMonitor scrapes the workers from the cluster Prometheus's namespace: {from:?}"
    );
    assert_eq!(workers["spec"]["ingress"][0]["ports"], json!([{"port": 9090}]), "the metrics port only");
}

#[test]
fn the_credentials_outlive_the_resource() {
    let agent = sample("minimal");
    let secret =
        serde_json::to_value(finagent_operator::build::workloads::credentials_secret(&agent, "r", "m")).expect("json");
    assert!(secret["metadata"].get("ownerReferences").is_none(), "no owner: the data volumes outlive the resource too");
    assert_eq!(secret["metadata"]["labels"]["app.kubernetes.io/instance"], "receipts");
}

#[test]
fn no_secret_reaches_a_command_line() {
    for name in SAMPLES {
        for object in build_all(&sample(name), &Inputs::default()).objects {
            let Some(pod) = object["spec"]["template"]["spec"].as_object() else { continue };
            for container in pod["containers"].as_array().expect("containers") {
                // `$(VAR)` in command or args is expanded by the kubelet onto the process's command
                // line, which every user of the node can read.
                let words = json!([container["command"], container["args"]]).to_string();
                assert!(
                    !words.contains("$("),
                    "{name}: {} expands a variable into its command line: {words}",
                    container["name"]
                );
                assert!(!words.contains("-a \\\"$"), "{name}: a password as an argument: {words}");
            }
        }
    }
}

#[test]
fn the_managed_redis_takes_its_password_from_standard_input() {
    let Ok(status) = Command::new("redis-server").arg("--version").output() else {
        assert!(!testkit::servers_required(), "redis-server is not installed");
        eprintln!("redis-server is not installed; scripts/test.sh installs it");
        return;
    };
    assert!(status.status.success());
    let dir = std::env::temp_dir().join(format!("finagent-redis-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("folder");
    let port = testkit::free_port();
    let password = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
    /// Killed on drop, so a failed assertion leaves no server behind.
    struct Server(std::process::Child);
    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child = Server(
        Command::new("sh")
            .args(["-c", &finagent_operator::build::datastores::redis_command(dir.to_str().expect("utf-8"), port)])
            .env("REDIS_PASSWORD", password)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("sh starts"),
    );
    let cli = |auth: Option<&str>, args: &[&str]| {
        let mut command = Command::new("redis-cli");
        command.args(["-p", &port.to_string()]).args(args);
        if let Some(auth) = auth {
            command.env("REDISCLI_AUTH", auth);
        }
        let output = command.output().expect("redis-cli");
        let mut text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        text
    };
    let started = std::time::Instant::now();
    while cli(Some(password), &["ping"]) != "PONG" {
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "redis did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(cli(None, &["ping"]).contains("NOAUTH"), "a password is required");
    let wrong = cli(Some("wrong"), &["ping"]);
    assert!(wrong.contains("WRONGPASS") || wrong.contains("NOAUTH"), "{wrong}");
    // The shell exec'd Redis: the process we started is Redis, and its command line has no password.
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", child.0.id())).expect("cmdline");
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(cmdline.starts_with("redis-server"), "{cmdline}");
    assert!(!cmdline.contains(password), "{cmdline}");
    assert_eq!(cli(Some(password), &["CONFIG", "GET", "appendonly"]).lines().last(), Some("yes"));
    drop(child);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn only_the_apis_init_container_holds_the_mongodb_root_user() {
    let agent = sample("minimal");
    let built = build_all(&agent, &Inputs::default()).objects;
    let mut holders = Vec::new();
    for object in &built {
        let pod = &object["spec"]["template"]["spec"];
        for list in ["initContainers", "containers"] {
            for container in pod[list].as_array().into_iter().flatten() {
                let env = container["env"].to_string();
                if env.contains("mongodb-password") {
                    holders.push(format!(
                        "{}/{}",
                        object["metadata"]["name"].as_str().unwrap_or(""),
                        container["name"].as_str().unwrap_or("")
                    ));
                }
            }
        }
    }
    // MongoDB itself (it creates the root user) and the API's init container, nothing else.
    holders.sort();
    assert_eq!(holders, ["receipts-api-server/mongodb-user", "receipts-mongodb/mongodb"]);
    let api = built
        .iter()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "receipts-api-server")
        .expect("api");
    let init = &api["spec"]["template"]["spec"]["initContainers"][0];
    assert_eq!(init["args"], json!(["mongodb-user"]));
    assert_eq!(init["image"], api["spec"]["template"]["spec"]["containers"][0]["image"], "the API's own image");
    let main = api["spec"]["template"]["spec"]["containers"][0]["env"].to_string();
    assert!(main.contains(r#""name":"receipts-mongodb-app""#), "the API connects as the platform's user: {main}");
    // An external MongoDB: no init container, no generated user.
    let mut external = agent.clone();
    external.spec.mongodb.managed = false;
    external.spec.mongodb.uri_secret_ref =
        Some(finagent_operator::crd::SecretKeyRef { name: "m".into(), key: "uri".into() });
    let api = finagent_operator::build::workloads::api_template(&external);
    assert!(api.spec.expect("spec").init_containers.is_none());
}
