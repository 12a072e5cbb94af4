//! Secrets: generated once, never over existing data; the signing key rotates by deletion; an
//! external datastore takes over only once its Secret exists.

use super::*;

#[test]
fn cluster_credentials_are_never_generated_again_over_existing_data() {
    let Some(cluster) = cluster() else { return };
    let platform = Platform::start(cluster, "cluster-credentials", "keys", quick(json!({})));
    platform.wait_condition(Duration::from_secs(90), "Ready", "True", None);
    let ns = platform.namespace.as_str();
    // The StatefulSets' data claims exist (the controller creates them with the pods).
    for claim in ["data-keys-redis-0", "data-keys-mongodb-0"] {
        wait_for(Duration::from_secs(30), claim, || cluster.get(ns, "pvc", claim).map(|_| ()));
    }
    let mut saved = cluster.get(ns, "secret", "keys-credentials").expect("credentials");
    let digests = (secret_digest(&platform, "api-server"), secret_digest(&platform, "ocr-worker"));
    cluster.kubectl_ok(&["-n", ns, "delete", "secret", "keys-credentials"]);
    // Refused, said, and nothing generated over the data.
    platform.wait_condition(Duration::from_secs(30), "Degraded", "True", Some("CredentialsMissing"));
    std::thread::sleep(Duration::from_secs(3));
    let now = (secret_digest(&platform, "api-server"), secret_digest(&platform, "ocr-worker"));
    assert_eq!(now, digests, "a missing Secret rolled the pods (they could not start)");
    let (_, _, message) = platform.condition("Degraded").expect("degraded");
    assert!(message.contains("data-keys-redis-0") && message.contains("Restore the Secret"), "{message}");
    assert!(cluster.get(ns, "secret", "keys-credentials").is_none(), "new passwords were generated over the data");
    let said = wait_for(Duration::from_secs(10), "the Warning Event", || {
        let said: Vec<_> = cluster.events(ns).into_iter().filter(|e| e.1 == "CredentialsMissing").collect();
        (!said.is_empty()).then_some(said)
    });
    assert!(said.iter().all(|e| e.0 == "Warning"), "{said:?}");
    // Restored from the backup: the platform is whole again with the same passwords.
    for field in ["resourceVersion", "uid", "creationTimestamp", "managedFields"] {
        saved["metadata"].as_object_mut().expect("metadata").remove(field);
    }
    cluster.apply_ok(&saved.to_string());
    platform.wait_condition(Duration::from_secs(30), "Degraded", "False", None);
    // A Secret that lost a key is reported, not repaired with an invented value.
    cluster.kubectl_ok(&[
        "-n",
        ns,
        "patch",
        "secret",
        "keys-credentials",
        "--type",
        "json",
        "-p",
        r#"[{"op":"remove","path":"/data/mongodb-password"}]"#,
    ]);
    platform.wait_condition(Duration::from_secs(30), "Degraded", "True", Some("CredentialsIncomplete"));
    let (_, _, message) = platform.condition("Degraded").expect("degraded");
    assert!(message.contains("mongodb-password"), "{message}");
    assert!(cluster.get(ns, "secret", "keys-credentials").expect("kept")["data"].get("mongodb-password").is_none());
}

/// The digest of the Secret values a component's pods read, from its Deployment's template.
fn secret_digest(platform: &Platform, component: &str) -> Option<String> {
    platform.deployment(component)["spec"]["template"]["metadata"]["annotations"]["finagent.io/secret-digest"]
        .as_str()
        .map(str::to_owned)
}

#[test]
fn cluster_the_signing_key_rotates_by_deletion_and_rolls_the_api_only() {
    let Some(cluster) = cluster() else { return };
    let platform = Platform::start(cluster, "cluster-rotation", "rot", quick(json!({})));
    platform.wait_condition(Duration::from_secs(90), "Ready", "True", None);
    let ns = platform.namespace.as_str();
    let key = |secret: &Value| secret["data"]["jwt-secret-key"].as_str().map(str::to_owned);
    // The key has a Secret of its own, generated (what the harness's credentials hold under the
    // key's old name is inherited only by an API that still reads it there: a unit test).
    let jwt = cluster.get(ns, "secret", "rot-jwt").expect("the signing key's Secret");
    let credentials = cluster.get(ns, "secret", "rot-credentials").expect("credentials");
    assert_eq!(key(&jwt).map(|key| key.len()), Some(88), "256 bits as 64 hex digits, base64: {jwt}");
    assert_ne!(key(&jwt), key(&credentials));
    assert_eq!(jwt["metadata"]["ownerReferences"][0]["kind"], "FinancialAgent", "it goes with the resource");
    let env = platform.deployment("api-server")["spec"]["template"]["spec"]["containers"][0]["env"].clone();
    let from =
        env.as_array().expect("env").iter().find(|var| var["name"] == "JWT_SECRET_KEY").expect("the key").clone();
    assert_eq!(from["valueFrom"]["secretKeyRef"]["name"], "rot-jwt", "{from}");
    let (api_before, worker_before) = (secret_digest(&platform, "api-server"), secret_digest(&platform, "ocr-worker"));
    assert!(api_before.is_some() && worker_before.is_some(), "both templates carry a digest");
    // Deleting it rotates the key: a new one, the API's pods roll, the workers' do not, and no
    // password changes.
    let started = Instant::now();
    let jwt_before = jwt;
    cluster.kubectl_ok(&["-n", ns, "delete", "secret", "rot-jwt"]);
    wait_for(Duration::from_secs(30), "a new signing key", || {
        let jwt = cluster.get(ns, "secret", "rot-jwt")?;
        (key(&jwt).is_some() && key(&jwt) != key(&jwt_before)).then_some(())
    });
    wait_for(Duration::from_secs(30), "the API's template to follow", || {
        (secret_digest(&platform, "api-server") != api_before).then_some(())
    });
    println!("signing key deleted: a new key and a new API template after {:.1} s", started.elapsed().as_secs_f64());
    assert_eq!(secret_digest(&platform, "ocr-worker"), worker_before, "the workers do not read the key");
    let after = cluster.get(ns, "secret", "rot-credentials").expect("credentials");
    assert_eq!(after["data"], credentials["data"], "the passwords are untouched");
    // The new template is a rollout like any other, judged and proven.
    platform.wait_condition(Duration::from_secs(90), "Ready", "True", Some("Healthy"));
}

#[test]
fn cluster_switching_to_an_external_datastore_keeps_the_managed_one_until_its_secret_exists() {
    let Some(cluster) = cluster() else { return };
    let platform = Platform::start(cluster, "cluster-external", "ext", quick(json!({})));
    platform.wait_condition(Duration::from_secs(90), "Ready", "True", None);
    let ns = platform.namespace.as_str();
    wait_for(Duration::from_secs(30), "the data claim", || cluster.get(ns, "pvc", "data-ext-mongodb-0").map(|_| ()));
    // An external MongoDB whose Secret does not exist yet: said, and the managed one stays.
    platform.patch_spec(json!({"mongodb": {"managed": false, "uriSecretRef": {"name": "ext-mongodb", "key": "uri"}}}));
    platform.wait_condition(Duration::from_secs(30), "Degraded", "True", Some("SecretMissing"));
    let (_, _, message) = platform.condition("Degraded").expect("degraded");
    assert!(message.contains("Secret ext-mongodb named by spec.mongodb.uriSecretRef does not exist"), "{message}");
    std::thread::sleep(Duration::from_secs(8));
    assert!(cluster.get(ns, "statefulset", "ext-mongodb").is_some(), "the working MongoDB was deleted");
    // The Secret appears: the managed MongoDB goes, its data claim stays, and an Event says where.
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ext-mongodb", "namespace": ns},
                        "stringData": {"uri": "mongodb://mongo.example:27017/finagent"}});
    cluster.apply_ok(&secret.to_string());
    wait_for(Duration::from_secs(30), "the managed MongoDB removed", || {
        cluster.get(ns, "statefulset", "ext-mongodb").is_none().then_some(())
    });
    platform.wait_condition(Duration::from_secs(30), "Degraded", "False", None);
    assert!(cluster.get(ns, "pvc", "data-ext-mongodb-0").is_some(), "the data claim stays");
    let removed = wait_for(Duration::from_secs(10), "the DatastoreRemoved Event", || {
        let removed: Vec<_> = cluster.events(ns).into_iter().filter(|e| e.1 == "DatastoreRemoved").collect();
        (!removed.is_empty()).then_some(removed)
    });
    assert!(removed.iter().all(|e| e.0 == "Warning" && e.2.contains("data-ext-mongodb-0")), "{removed:?}");
}
