//! `crds/gatehouse.dev.yaml` (and its copy in the Helm chart) must be what
//! `gatehouse crds` prints from the Rust types: regenerate with
//! `cargo run -- crds > crds/gatehouse.dev.yaml` (and `scripts/render-manifests`).

#[test]
fn committed_crds_match_the_rust_types() {
    let generated = gatehouse::policy::crds_yaml().expect("CRDs serialize");
    for path in [
        "crds/gatehouse.dev.yaml",
        "charts/gatehouse/crds/gatehouse.dev.yaml",
    ] {
        let committed = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{path}: {e}; run `cargo run -- crds > {path}`"));
        assert!(
            committed == generated,
            "{path} is out of date; run `cargo run -- crds > {path}`"
        );
    }
}

#[test]
fn crds_describe_our_kinds_with_schemas() {
    let generated = gatehouse::policy::crds_yaml().expect("CRDs serialize");
    let docs: Vec<serde_json::Value> = generated
        .split("\n---\n")
        .skip(1)
        .map(|d| serde_yaml_ng::from_str(d).expect("valid YAML"))
        .collect();
    let kinds: Vec<&str> = docs
        .iter()
        .map(|d| d["spec"]["names"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Backend", "DirectResponse", "GatewayParameters"]);
    for doc in &docs {
        assert_eq!(doc["spec"]["group"], "gatehouse.dev");
        let schema = &doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        assert!(
            schema["properties"]["spec"]["properties"].is_object(),
            "{doc}"
        );
    }
}
