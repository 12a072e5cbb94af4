//! Leader election on a Lease in kube-fake-client: one candidate leads, the other waits.

use std::time::Duration;

use finagent_operator::leader::LeaderElector;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;

#[tokio::test]
async fn one_candidate_leads_and_the_other_waits() {
    let client = kube_fake_client::ClientBuilder::new().build().await.expect("fake client");
    let first =
        LeaderElector::new(client.clone(), "finagent-system", "finagent-operator", "pod-a", Duration::from_secs(15));
    let second =
        LeaderElector::new(client.clone(), "finagent-system", "finagent-operator", "pod-b", Duration::from_secs(15));
    assert!(first.try_hold().await.expect("first round"), "the first candidate takes the free lease");
    assert!(!second.try_hold().await.expect("second round"), "a live lease is not taken over");
    assert!(first.try_hold().await.expect("renewal"), "the leader renews");
    let lease = Api::<Lease>::namespaced(client, "finagent-system").get("finagent-operator").await.expect("lease");
    let spec = lease.spec.expect("spec");
    assert_eq!(spec.holder_identity.as_deref(), Some("pod-a"));
    assert_eq!(spec.lease_duration_seconds, Some(15));
}
