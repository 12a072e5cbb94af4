//! `crds/` holds the generated CRD; this fails when it differs from the code (regenerate with
//! `cargo run -p finagent-operator -- crd --output crds/financialagent.yaml`).

#[test]
fn crds_folder_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/financialagent.yaml");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    let generated = finagent_operator::crd_yaml().expect("crd");
    assert!(
        committed == generated,
        "crds/financialagent.yaml is stale: run `cargo run -p finagent-operator -- crd --output crds/financialagent.yaml`"
    );
}
