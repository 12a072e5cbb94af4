use super::*;
use kube::CustomResourceExt;
use serde_json::json;

#[test]
fn a_minimal_resource_gets_every_default() {
    let spec: FinancialAgentSpec = serde_json::from_value(json!({})).expect("defaults");
    assert_eq!(spec.api_server.replicas, 2);
    assert_eq!((spec.ocr_worker.min_replicas, spec.ocr_worker.max_replicas), (1, 10));
    assert_eq!(spec.ocr_worker.target_queue_depth_per_worker, 5);
    assert!(spec.redis.managed && spec.mongodb.managed && spec.prometheus.enabled);
    assert!(!spec.ingress.enabled);
    assert_eq!(spec.rollout.health_check_path, "/readyz");
}

#[test]
fn cel_rules_refuse_inconsistent_specs() {
    let worker = |min: i32, max: i32| json!({"minReplicas": min, "maxReplicas": max});
    assert!(OcrWorkerSpec::validate_cel(&worker(1, 10), None).is_ok());
    assert!(OcrWorkerSpec::validate_cel(&worker(0, 1), None).is_ok());
    let refused = OcrWorkerSpec::validate_cel(&worker(5, 2), None).expect_err("min > max");
    assert!(format!("{refused:?}").contains("minReplicas must not exceed maxReplicas"), "{refused:?}");
    assert!(RedisSpec::validate_cel(&json!({"managed": false}), None).is_err());
    assert!(
        RedisSpec::validate_cel(&json!({"managed": false, "urlSecretRef": {"name": "r", "key": "url"}}), None).is_ok()
    );
    assert!(MongodbSpec::validate_cel(&json!({"managed": false}), None).is_err());
    assert!(IngressSpec::validate_cel(&json!({"enabled": true}), None).is_err());
    assert!(IngressSpec::validate_cel(&json!({"enabled": true, "host": "fa.example.com"}), None).is_ok());
}

#[test]
fn the_crd_has_the_status_subresource_short_name_columns_and_rules() {
    let crd = serde_json::to_value(FinancialAgent::crd()).expect("json");
    assert_eq!(crd["spec"]["names"]["shortNames"], json!(["fa"]));
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert!(version["subresources"]["status"].is_object());
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(columns, ["Ready", "Workers", "Queue", "Version", "Reason", "Age", "Message"]);
    let text = crd.to_string();
    assert!(text.contains("self.minReplicas <= self.maxReplicas"), "CEL rule in the schema");
    assert!(text.contains(r#""default":2"#) || text.contains(r#""default": 2"#), "defaults in the schema");
}
