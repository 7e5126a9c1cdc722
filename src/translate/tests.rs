//! YAML-in / expected-out cases for translate.
//!
//! Each `testdata/translate/<case>.yaml` is loaded as the file provider loads
//! it (parsed, API-server defaults applied, metadata stamped at a fixed time),
//! translated, and rendered as YAML: the status of every object (as
//! `kubectl get -o yaml` would show it), the route table as
//! `gatehouse validate` lists it, the certificates by SNI, and every compiled
//! rule. The result must equal `testdata/translate/<case>.expected.yaml`.
//! `GATEHOUSE_BLESS=1 cargo test --lib translate` rewrites the expected
//! files; read the diff before committing it.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use super::{TranslateConfig, Translation, Translator, translate};
use crate::index::Index;
use crate::object::{Kind, Object};
use crate::provider::Event;
use crate::provider::file::{MetadataStamper, load_path};
use crate::routing::RouteTable;
use crate::routing::describe::describe;

/// The time every case is translated at (and objects are created at, unless
/// they set `metadata.creationTimestamp`).
const NOW_SECONDS: i64 = 1_700_000_000;

const EXPECTED_SUFFIX: &str = ".expected.yaml";

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/translate")
}

/// Every input file's case name, sorted, and every expected file's case name.
fn mk_case_names(dir: &Path) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let mut inputs = Vec::new();
    let mut expected = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(case) = name.strip_suffix(EXPECTED_SUFFIX) {
            expected.push(case.to_string());
        } else if let Some(case) = name.strip_suffix(".yaml") {
            inputs.push(case.to_string());
        }
    }
    inputs.sort();
    expected.sort();
    Ok((inputs, expected))
}

/// Loads, translates and renders one case.
fn mk_rendering(input: &Path) -> anyhow::Result<String> {
    // `load_path` parses with `parse_documents` and also rejects an object
    // defined twice, which would otherwise silently replace the first.
    let mut loaded = load_path(input).map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(skipped) = loaded.skipped.first() {
        bail!("line {}: {}", skipped.line, skipped.reason);
    }
    let now = Timestamp::from_second(NOW_SECONDS)?;
    MetadataStamper::default().stamp(&mut loaded.objects, now);
    let mut index = Index::default();
    index.handle(Event::Reset(loaded.objects));
    let config = case_config();
    let translation = translate(&index, &config, now);
    render(&translation)
}

fn case_config() -> TranslateConfig {
    TranslateConfig {
        default_bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
        ..Default::default()
    }
}

/// Renders a translation: status, routes, certificates and rules.
fn render(translation: &Translation) -> anyhow::Result<String> {
    let mut out = String::new();
    out.push_str(&yaml_section(
        "status",
        &translation.status.kubernetes_list(),
    )?);
    out.push_str(&yaml_section("routes", &describe(&translation.table))?);
    out.push_str(&yaml_section(
        "certificates",
        &certificates(&translation.table),
    )?);
    out.push_str(&yaml_section("rules", &rules(&translation.table))?);
    Ok(out)
}

/// One top-level key of the rendering. Sections are rendered one by one so
/// that they keep this order in the file.
fn yaml_section(key: &str, value: &impl Serialize) -> anyhow::Result<String> {
    let mut section = serde_json::Map::new();
    section.insert(key.to_string(), serde_json::to_value(value)?);
    Ok(serde_yaml_ng::to_string(&section)?)
}

/// The certificate served for each SNI pattern on each bound address.
fn certificates(table: &RouteTable) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (addr, port) in &table.listeners {
        let by_sni: BTreeMap<String, String> = port
            .certificates
            .keyed()
            .map(|(sni, cert)| (sni.unwrap_or_else(|| "*".into()), cert.source.to_string()))
            .collect();
        if !by_sni.is_empty() {
            out.insert(addr.to_string(), by_sni);
        }
    }
    out
}

/// Every compiled rule in the table (filters, backends with their
/// endpoints and protocol, timeouts), keyed `namespace/name rule N`, with
/// empty fields left out.
fn rules(table: &RouteTable) -> BTreeMap<String, serde_json::Value> {
    let mut out = BTreeMap::new();
    let entries = table
        .listeners
        .values()
        .flat_map(|port| port.listeners.values())
        .flat_map(|listener| listener.hosts.values())
        .flat_map(|set| set.entries());
    for entry in entries {
        let rule = &entry.rule;
        let key = format!("{} rule {}", rule.route_label, rule.rule_index);
        if out.contains_key(&key) {
            continue;
        }
        let value = serde_json::json!({
            "filters": rule.filters,
            "backends": rule.backends.backends,
            "timeouts": rule.timeouts,
        });
        out.insert(key, prune(value));
    }
    out
}

/// Drops nulls and empty lists and maps, so the rendering shows what is set.
fn prune(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    let empty = |v: &Value| match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    };
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, prune(v)))
                .filter(|(_, v)| !empty(v))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(prune).collect()),
        other => other,
    }
}

/// A readable diff of the lines that differ, with a little context around
/// them, rather than the whole (long) file.
fn mk_diff(want: &str, actual: &str) -> String {
    const CONTEXT: usize = 4;
    let (w, a): (Vec<&str>, Vec<&str>) = (want.lines().collect(), actual.lines().collect());
    let prefix = w.iter().zip(&a).take_while(|(x, y)| x == y).count();
    let suffix = w[prefix..]
        .iter()
        .rev()
        .zip(a[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let start = prefix.saturating_sub(CONTEXT);
    let window = |lines: &[&str]| {
        let end = (lines.len() - suffix + CONTEXT).min(lines.len());
        lines[start..end].join("\n")
    };
    format!(
        "(from line {})\n{}",
        start + 1,
        pretty_assertions::StrComparison::new(&window(&w), &window(&a))
    )
}

fn header(case: &str) -> String {
    format!(
        "# What translate makes of {case}.yaml (src/translate/tests.rs).\n\
         # Regenerate with GATEHOUSE_BLESS=1 and review the diff against the spec.\n"
    )
}

#[test]
fn translate_cases() {
    let dir = cases_dir();
    let bless = std::env::var("GATEHOUSE_BLESS").is_ok_and(|v| v == "1");
    let (inputs, expected) = mk_case_names(&dir).expect("listing the cases");
    assert!(!inputs.is_empty(), "no cases in {}", dir.display());
    let mut failures = Vec::new();
    for case in expected.iter().filter(|c| !inputs.contains(c)) {
        failures.push(format!(
            "{case}: {case}{EXPECTED_SUFFIX} has no {case}.yaml"
        ));
    }
    for case in &inputs {
        let input = dir.join(format!("{case}.yaml"));
        let expected_path = dir.join(format!("{case}{EXPECTED_SUFFIX}"));
        let actual = match mk_rendering(&input) {
            Ok(body) => format!("{}{body}", header(case)),
            Err(e) => {
                failures.push(format!("{case}: cannot translate: {e:#}"));
                continue;
            }
        };
        if bless {
            if let Err(e) = std::fs::write(&expected_path, &actual) {
                failures.push(format!("{case}: cannot write: {e}"));
            }
            continue;
        }
        match std::fs::read_to_string(&expected_path) {
            Ok(want) if want == actual => {}
            Ok(want) => failures.push(format!(
                "{case}: output differs from {case}{EXPECTED_SUFFIX} (left: expected, right: actual)\n{}",
                mk_diff(&want, &actual)
            )),
            Err(e) => failures.push(format!(
                "{case}: cannot read {case}{EXPECTED_SUFFIX} ({e}); run with GATEHOUSE_BLESS=1 to create it"
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} translate cases failed:\n\n{}",
        failures.len(),
        inputs.len(),
        failures.join("\n\n")
    );
}

/// A translator that keeps route outcomes between translations must give
/// what a fresh translation gives, after every kind of change: routes
/// deleted, added back and edited, and other objects changing under them.
#[test]
fn incremental_translation_equals_a_fresh_one() {
    let dir = cases_dir();
    let (inputs, _) = mk_case_names(&dir).expect("listing the cases");
    let now = Timestamp::from_second(NOW_SECONDS).unwrap();
    let config = case_config();
    let mut checked = 0;
    for case in &inputs {
        let loaded = load_path(&dir.join(format!("{case}.yaml"))).unwrap();
        let mut objects = loaded.objects;
        MetadataStamper::default().stamp(&mut objects, now);
        let mut index = Index::default();
        index.handle(Event::Reset(objects.clone()));
        let mut translator = Translator::default();
        let mut check = |index: &Index, step: &str| {
            let kept = render(&translator.translate(index, &config, now)).unwrap();
            let fresh = render(&translate(index, &config, now)).unwrap();
            assert!(kept == fresh, "{case}, {step}: {}", mk_diff(&fresh, &kept));
            checked += 1;
        };
        check(&index, "first");
        check(&index, "unchanged");
        for object in &objects {
            let Object::HttpRoute(route) = object else {
                continue;
            };
            let key = object.key();
            index.handle(Event::Delete(key.clone()));
            check(&index, &format!("{key} deleted"));
            index.handle(Event::Apply(Box::new(object.clone())));
            check(&index, &format!("{key} added back"));
            let mut edited = route.clone();
            edited
                .spec
                .hostnames
                .get_or_insert_with(Vec::new)
                .push("edited.example.com".into());
            edited.metadata.generation = edited.metadata.generation.map(|g| g + 1);
            index.handle(Event::Apply(Box::new(Object::HttpRoute(edited))));
            check(&index, &format!("{key} edited"));
        }
        // Everything else: each object removed in turn, then restored.
        for object in objects.iter().filter(|o| o.kind() != Kind::HttpRoute) {
            let key = object.key();
            index.handle(Event::Delete(key.clone()));
            check(&index, &format!("{key} deleted"));
            index.handle(Event::Apply(Box::new(object.clone())));
            check(&index, &format!("{key} restored"));
        }
    }
    assert!(checked > 100, "only {checked} comparisons");
}

/// Kept outcomes are shared, not copied, and a route that is translated
/// again keeps the transition time of every condition that did not flip.
#[test]
fn kept_route_status_is_shared_and_keeps_transition_times() {
    use crate::translate::ObjectStatus;
    let input = cases_dir().join("attached-routes.yaml");
    let mut objects = load_path(&input).unwrap().objects;
    let t0 = Timestamp::from_second(NOW_SECONDS).unwrap();
    let t1 = Timestamp::from_second(NOW_SECONDS + 60).unwrap();
    MetadataStamper::default().stamp(&mut objects, t0);
    let mut index = Index::default();
    index.handle(Event::Reset(objects.clone()));
    let routes: Vec<&Object> = objects
        .iter()
        .filter(|o| o.kind() == Kind::HttpRoute)
        .collect();
    assert!(routes.len() >= 2, "the case has two routes or more");
    let (edited_key, untouched_key) = (routes[0].key(), routes[1].key());
    let mut translator = Translator::default();
    let config = case_config();
    let first = translator.translate(&index, &config, t0).status;

    let Object::HttpRoute(mut edited) = routes[0].clone() else {
        unreachable!()
    };
    edited.metadata.labels = Some([("edited".to_string(), "yes".to_string())].into());
    index.handle(Event::Apply(Box::new(Object::HttpRoute(edited))));
    let second = translator.translate(&index, &config, t1).status;

    let route_status = |set: &super::StatusSet, key| match &set.get(key).unwrap().status {
        ObjectStatus::HttpRoute(s) => s.clone(),
        other => panic!("{other:?}"),
    };
    assert!(std::sync::Arc::ptr_eq(
        &route_status(&first, &untouched_key),
        &route_status(&second, &untouched_key)
    ));
    let (before, after) = (
        route_status(&first, &edited_key),
        route_status(&second, &edited_key),
    );
    assert!(!std::sync::Arc::ptr_eq(&before, &after), "translated again");
    assert_eq!(before, after, "same conditions, same times");
    // A fresh translation at t1 stamps t1.
    let fresh = translate(&index, &config, t1).status;
    assert_ne!(route_status(&fresh, &edited_key), after);
}
