//! The Argo CD health check (`config/argocd/health.lua`) run in an embedded Lua on sample
//! statuses, and kept identical to the copy in `config/argocd/argocd-cm.yaml`.

use mlua::{Lua, LuaSerdeExt, Table};
use serde_json::{Value, json};

const SCRIPT: &str = include_str!("../../config/argocd/health.lua");

fn health(object: Value) -> (String, String) {
    let lua = Lua::new();
    lua.globals().set("obj", lua.to_value(&object).expect("to lua")).expect("global");
    let result: Table = lua.load(SCRIPT).eval().expect("the script runs");
    (result.get("status").expect("status"), result.get("message").expect("message"))
}

fn condition(kind: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": kind, "status": status, "reason": reason, "message": message, "lastTransitionTime": "2026-11-24T10:00:00Z"})
}

fn agent(generation: i64, observed: Option<i64>, conditions: Vec<Value>) -> Value {
    let mut status = json!({"conditions": conditions});
    if let Some(observed) = observed {
        status["observedGeneration"] = json!(observed);
    }
    json!({"apiVersion": "finagent.io/v1alpha1", "kind": "FinancialAgent", "metadata": {"name": "r", "generation": generation}, "status": status})
}

#[test]
fn argocd_health_maps_conditions_to_healthy_progressing_and_degraded() {
    let ready = condition("Ready", "True", "AllComponentsReady", "5 of 5 components ready");
    let cases = [
        (json!({"metadata": {"name": "r", "generation": 1}}), "Progressing", "Waiting"),
        (agent(2, Some(1), vec![ready.clone()]), "Progressing", "generation 2"),
        (agent(1, Some(1), vec![ready.clone()]), "Healthy", "5 of 5"),
        (
            agent(
                1,
                Some(1),
                vec![
                    condition("Ready", "False", "Rollout", "waiting"),
                    condition("Progressing", "True", "NewRevision", "api-server 1 of 2 updated"),
                ],
            ),
            "Progressing",
            "1 of 2 updated",
        ),
        (
            agent(
                1,
                Some(1),
                vec![ready.clone(), condition("Degraded", "True", "InvalidSpec", "invalid spec: redis.storage")],
            ),
            "Degraded",
            "redis.storage",
        ),
        (
            agent(
                3,
                Some(3),
                vec![ready, condition("RolledBack", "True", "HealthCheckFailed", "revision 4f2a failed /readyz")],
            ),
            "Degraded",
            "Rolled back: revision 4f2a",
        ),
        (
            agent(1, Some(1), vec![condition("Degraded", "False", "None", ""), condition("Ready", "True", "Ok", "ok")]),
            "Healthy",
            "ok",
        ),
        // Paused, even with a spec not yet reconciled or a failure shown: Suspended.
        (
            agent(
                4,
                Some(3),
                vec![
                    condition("Degraded", "True", "RolloutFailed", "x"),
                    condition("ReconciliationPaused", "True", "Paused", "reconciling is paused by the annotation"),
                ],
            ),
            "Suspended",
            "paused",
        ),
    ];
    for (object, status, message) in cases {
        let (got_status, got_message) = health(object.clone());
        assert_eq!(got_status, status, "{object}");
        assert!(got_message.contains(message), "{object}: {got_message}");
    }
}

#[test]
fn argocd_config_map_carries_the_same_script() {
    let config_map = include_str!("../../config/argocd/argocd-cm.yaml");
    let document: serde_yaml::Value = serde_yaml::from_str(config_map).expect("yaml");
    let embedded = document["data"]["resource.customizations.health.finagent.io_FinancialAgent"].as_str().expect("key");
    assert_eq!(embedded, SCRIPT);
}
