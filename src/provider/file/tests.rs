use super::*;
use std::path::Path;
use std::sync::Arc;

use crate::object::Object;

/// A fresh directory for one test's files.
fn mk_temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("gatehouse-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A Service document with one port.
fn mk_service_doc(name: &str, port: u16) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  ports:\n  - port: {port}\n"
    )
}

fn parse(text: &str) -> Result<Loaded, LoadError> {
    parse_documents(Path::new("test.yaml"), text)
}

#[test]
fn applies_api_server_defaults() {
    let loaded = parse(
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: r
spec:
  parentRefs:
  - name: gw
  rules:
  - backendRefs:
    - name: svc
      port: 80
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gw
  namespace: infra
spec:
  gatewayClassName: gatehouse
  listeners:
  - name: http
    port: 80
    protocol: HTTP
"#,
    )
    .unwrap();
    assert_eq!(loaded.objects.len(), 2);
    let Object::HttpRoute(route) = &loaded.objects[0] else {
        panic!("not a route")
    };
    assert_eq!(route.metadata.namespace.as_deref(), Some("default"));
    let parent = &route.spec.parent_refs.as_ref().unwrap()[0];
    assert_eq!(parent.group.as_deref(), Some("gateway.networking.k8s.io"));
    assert_eq!(parent.kind.as_deref(), Some("Gateway"));
    let rule = &route.spec.rules.as_ref().unwrap()[0];
    let m = &rule.matches.as_ref().unwrap()[0];
    let path = m.path.as_ref().unwrap();
    assert_eq!(path.value.as_deref(), Some("/"));
    assert!(matches!(
        path.r#type,
        Some(gateway_api::httproutes::HttpRouteRulesMatchesPathType::PathPrefix)
    ));
    let backend = &rule.backend_refs.as_ref().unwrap()[0];
    assert_eq!(backend.weight, Some(1));
    assert_eq!(backend.kind.as_deref(), Some("Service"));
    assert_eq!(backend.group.as_deref(), Some(""));
    let Object::Gateway(gw) = &loaded.objects[1] else {
        panic!("not a gateway")
    };
    let allowed = gw.spec.listeners[0].allowed_routes.as_ref().unwrap();
    assert!(matches!(
        allowed.namespaces.as_ref().unwrap().from,
        Some(gateway_api::gateways::GatewayListenersAllowedRoutesNamespacesFrom::Same)
    ));
}

#[test]
fn malformed_yaml_reports_file_and_line() {
    let err = parse(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: [b\n",
    )
    .unwrap_err();
    assert_eq!(err.file, Path::new("test.yaml"));
    assert!(err.line.is_some_and(|l| l >= 9), "{err}");
}

#[test]
fn unknown_fields_are_errors_with_their_path() {
    let err = parse(
        r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: r
spec:
  rules:
  - matchez: []
"#,
    )
    .unwrap_err();
    assert!(err.message.contains("spec.rules[0].matchez"), "{err}");
}

#[test]
fn unknown_kinds_are_skipped_and_reported() {
    let loaded = parse(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: s\n",
    )
    .unwrap();
    assert_eq!(loaded.objects.len(), 1);
    assert_eq!(loaded.skipped.len(), 1);
    assert_eq!(loaded.skipped[0].line, 1);
    assert!(loaded.skipped[0].reason.contains("ConfigMap"));
}

#[test]
fn invalid_enum_values_are_errors() {
    let err = parse(
        r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: r
spec:
  rules:
  - matches:
    - path:
        type: Glob
        value: /x
"#,
    )
    .unwrap_err();
    assert!(err.message.contains("Glob"), "{err}");
    assert_eq!(err.line, Some(9));
}

#[test]
fn secret_string_data_is_folded_into_data() {
    let loaded = parse(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: abc\n",
    )
    .unwrap();
    let Object::Secret(secret) = &loaded.objects[0] else {
        panic!("not a secret")
    };
    assert_eq!(secret.data.as_ref().unwrap()["tls.crt"].0, b"abc");
    assert!(secret.string_data.is_none());
}

#[test]
fn generation_bumps_only_when_spec_changes() {
    let svc = |port: u16| parse(&mk_service_doc("s", port)).unwrap().objects;
    let t0 = k8s_openapi::jiff::Timestamp::from_second(100).unwrap();
    let t1 = k8s_openapi::jiff::Timestamp::from_second(200).unwrap();
    let mut stamper = MetadataStamper::default();
    let mut first = svc(80);
    stamper.stamp(&mut first, t0);
    assert_eq!(first[0].meta().generation, Some(1));
    let mut same = svc(80);
    stamper.stamp(&mut same, t1);
    assert_eq!(same[0].meta().generation, Some(1));
    let mut changed = svc(81);
    stamper.stamp(&mut changed, t1);
    assert_eq!(changed[0].meta().generation, Some(2));
    assert_eq!(changed[0].meta().creation_timestamp.as_ref().unwrap().0, t0);
}

#[test]
fn duplicate_objects_are_rejected() {
    let dir = mk_temp_dir("dup");
    let doc = "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n";
    std::fs::write(dir.join("a.yaml"), doc).unwrap();
    std::fs::write(dir.join("b.yaml"), doc).unwrap();
    let err = load_path(&dir).unwrap_err();
    assert!(err.message.contains("more than once"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_reload_that_repeats_a_name_fails_and_the_next_good_one_passes() {
    let dir = mk_temp_dir("dup-reload");
    let svc = mk_service_doc;
    let write = |names: &[&str]| {
        let docs: Vec<String> = names.iter().map(|n| svc(n, 80)).collect();
        std::fs::write(dir.join("a.yaml"), docs.join("---\n")).unwrap();
    };
    let mut cache = DocumentCache::default();
    write(&["a", "b", "c", "d"]);
    load_path_cached(&dir, &mut cache).unwrap();
    // The last document renamed to an unchanged one's name.
    write(&["a", "b", "c", "b"]);
    let err = load_path_cached(&dir, &mut cache).unwrap_err();
    assert!(
        err.message
            .contains("Service/default/b is defined more than once"),
        "{err}"
    );
    write(&["a", "b", "c", "e"]);
    let loaded = load_path_cached(&dir, &mut cache).unwrap();
    assert_eq!(loaded.objects.len(), 4);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn namespaces_get_their_metadata_name_label() {
    let loaded = parse("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n").unwrap();
    let labels = loaded.objects[0].meta().labels.clone().unwrap();
    assert_eq!(labels["kubernetes.io/metadata.name"], "shop");
}

#[test]
fn reloads_reuse_unchanged_documents_and_see_changed_ones() {
    let dir = mk_temp_dir("cache");
    let svc = mk_service_doc;
    let write = |b_port: u16| {
        std::fs::write(
            dir.join("a.yaml"),
            format!("{}---\n{}", svc("a", 80), svc("b", b_port)),
        )
        .unwrap();
    };
    let mut cache = DocumentCache::default();
    write(80);
    let first = load_path_cached(&dir, &mut cache).unwrap();
    assert_eq!(cache.documents(), 2);
    write(81);
    let second = load_path_cached(&dir, &mut cache).unwrap();
    assert!(
        Arc::ptr_eq(&first.objects[0], &second.objects[0]),
        "unchanged document reused"
    );
    assert_ne!(
        first.objects[1], second.objects[1],
        "changed document parsed again"
    );
    assert_eq!(cache.documents(), 2, "stale documents are forgotten");
    // A broken document fails the read and leaves the cache as it was.
    std::fs::write(dir.join("a.yaml"), "kind: [").unwrap();
    assert!(load_path_cached(&dir, &mut cache).is_err());
    assert_eq!(cache.documents(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn stamping_tells_what_changed_since_the_previous_read() {
    let dir = mk_temp_dir("diff");
    let svc = mk_service_doc;
    let t0 = k8s_openapi::jiff::Timestamp::from_second(100).unwrap();
    let mut cache = DocumentCache::default();
    let mut stamper = MetadataStamper::default();
    let mut read = |text: String| {
        std::fs::write(dir.join("a.yaml"), text).unwrap();
        let loaded = load_path_cached(&dir, &mut cache).unwrap();
        stamper.stamp_shared(loaded.objects, t0)
    };
    let names = |objects: &[Arc<Object>]| -> Vec<String> {
        objects.iter().map(|o| o.key().to_string()).collect()
    };

    let first = read(format!("{}---\n{}", svc("a", 80), svc("b", 80)));
    assert_eq!(names(&first.changed).len(), 2, "everything is new");
    assert!(first.removed.is_empty());

    // b changes, c is added; a is the same object as before.
    let second = read(format!(
        "{}---\n{}---\n{}",
        svc("a", 80),
        svc("b", 81),
        svc("c", 80)
    ));
    assert_eq!(names(&second.changed), names(&second.objects[1..]));
    assert!(Arc::ptr_eq(&first.objects[0], &second.objects[0]));
    assert_eq!(second.objects[1].meta().generation, Some(2));
    assert!(second.removed.is_empty());

    // Only formatting changes: parsed again, equal, so nothing changed.
    let third = read(format!(
        "# comment\n{}---\n{}---\n{}",
        svc("a", 80),
        svc("b", 81),
        svc("c", 80)
    ));
    assert!(third.changed.is_empty(), "{:?}", names(&third.changed));
    assert!(Arc::ptr_eq(&second.objects[0], &third.objects[0]));

    // b is gone.
    let fourth = read(format!("{}---\n{}", svc("a", 80), svc("c", 80)));
    assert!(fourth.changed.is_empty());
    assert_eq!(
        fourth.removed,
        vec![ObjectKey::new(Kind::Service, "default", "b")]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn documents_shifted_by_an_edit_are_still_reused() {
    let dir = mk_temp_dir("shift");
    let svc = |name: &str| mk_service_doc(name, 80);
    let mut cache = DocumentCache::default();
    let mut read = |names: &[&str]| {
        let docs: Vec<String> = names.iter().map(|n| svc(n)).collect();
        // CRLF line ends and a `---` with a trailing comment on one boundary.
        let text = docs.join("--- # next\r\n");
        std::fs::write(dir.join("a.yaml"), text).unwrap();
        load_path_cached(&dir, &mut cache).unwrap().objects
    };
    let first = read(&["a", "b", "c", "d"]);
    // x inserted at the front, b removed: a, c and d are the same objects.
    let second = read(&["x", "a", "c", "d"]);
    let name = |o: &Arc<Object>| o.key().name;
    assert_eq!(
        second.iter().map(name).collect::<Vec<_>>(),
        ["x", "a", "c", "d"]
    );
    assert!(Arc::ptr_eq(&first[0], &second[1]));
    assert!(Arc::ptr_eq(&first[2], &second[2]));
    assert!(Arc::ptr_eq(&first[3], &second[3]));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_cached_read_gives_what_a_fresh_read_gives() {
    let dir = mk_temp_dir("fresh");
    let svc = mk_service_doc;
    let unknown = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n".to_string();
    let versions: Vec<Vec<String>> = vec![
        vec![svc("a", 80), unknown.clone(), svc("b", 80), svc("c", 80)],
        // The last document edited.
        vec![svc("a", 80), unknown.clone(), svc("b", 80), svc("c", 81)],
        // One in the middle edited and one added at the end.
        vec![
            svc("a", 80),
            unknown.clone(),
            svc("b", 82),
            svc("c", 81),
            svc("d", 80),
        ],
        // The first removed, lines shift.
        vec![unknown.clone(), svc("b", 82), svc("c", 81), svc("d", 80)],
        // Two documents left.
        vec![unknown.clone(), svc("b", 82)],
        // An empty document at the end.
        vec![unknown, svc("b", 82), String::new()],
    ];
    let mut cache = DocumentCache::default();
    for (i, docs) in versions.iter().enumerate() {
        std::fs::write(dir.join("a.yaml"), docs.join("---\n")).unwrap();
        let cached = load_path_cached(&dir, &mut cache).unwrap();
        let fresh = load_path(&dir).unwrap();
        let cached_objects: Vec<Object> = cached.objects.iter().map(|o| (**o).clone()).collect();
        assert_eq!(cached_objects, fresh.objects, "version {i}");
        assert_eq!(cached.skipped, fresh.skipped, "version {i}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn block_yaml_and_json_of_one_object_parse_alike() {
    // Block YAML names its kind on lines of its own and is deserialized
    // straight from the text; JSON goes through a parsed value.
    let yaml = r#"apiVersion: gateway.networking.k8s.io/v1
kind: "HTTPRoute"   # quoted, with a comment
metadata:
  name: r
  labels: {app: "80"}
spec:
  parentRefs: [{name: gw, port: 80}]
  hostnames: ["a.example.com"]
  rules:
  - matches:
    - path: {type: Exact, value: /x}
      headers: [{name: x-v, value: "1"}]
    backendRefs: [{name: svc, port: 8080, weight: 3}]
    timeouts: {request: 5s}
"#;
    assert_eq!(
        type_meta_lines(yaml),
        Some(("gateway.networking.k8s.io/v1", "HTTPRoute"))
    );
    let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(yaml).unwrap();
    let json = serde_json::to_string(&value).unwrap();
    assert_eq!(type_meta_lines(&json), None);
    let from_yaml = parse(yaml).unwrap().objects;
    let from_json = parse(&json).unwrap().objects;
    assert_eq!(from_yaml, from_json);
    assert_eq!(from_yaml.len(), 1);
}
