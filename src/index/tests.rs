use super::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn mk_service(ns: &str, name: &str) -> Object {
    Object::Service(Service {
        metadata: ObjectMeta {
            namespace: Some(ns.into()),
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    })
}

#[test]
fn apply_delete_reset_bump_generation_only_on_change() {
    let mut index = Index::default();
    assert!(index.handle(Event::Apply(Box::new(mk_service("a", "s1")))));
    assert!(!index.handle(Event::Apply(Box::new(mk_service("a", "s1")))));
    assert_eq!(index.generation(), 1);
    assert!(index.service("a", "s1").is_some());
    assert!(index.handle(Event::Reset(vec![
        mk_service("a", "s1"),
        mk_service("b", "s2")
    ])));
    assert_eq!(index.services().count(), 2);
    assert!(!index.handle(Event::Reset(vec![
        mk_service("b", "s2"),
        mk_service("a", "s1")
    ])));
    assert!(index.handle(Event::Delete(ObjectKey::new(Kind::Service, "a", "s1"))));
    assert!(!index.handle(Event::Delete(ObjectKey::new(Kind::Service, "a", "s1"))));
    assert_eq!(index.generation(), 3);
    assert_eq!(index.gateways().count(), 0);
}

#[test]
fn changes_apply_as_one_step() {
    let mut index = Index::default();
    index.handle(Event::Reset(vec![
        mk_service("a", "s1"),
        mk_service("a", "s2"),
    ]));
    let before = index.generation();
    assert!(index.handle(Event::Changes {
        apply: vec![mk_service("a", "s3"), mk_service("a", "s1")],
        delete: vec![ObjectKey::new(Kind::Service, "a", "s2")],
    }));
    assert_eq!(index.generation(), before + 1, "one step, one generation");
    let names: Vec<_> = index
        .services()
        .map(|s| s.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["s1", "s3"]);
    assert!(
        !index.handle(Event::Changes {
            apply: vec![mk_service("a", "s1")],
            delete: vec![ObjectKey::new(Kind::Service, "a", "gone")],
        }),
        "nothing new"
    );
}

#[test]
fn restart_replaces_only_its_kind() {
    let mut index = Index::default();
    let ns = Object::Namespace(Namespace {
        metadata: ObjectMeta {
            name: Some("a".into()),
            ..Default::default()
        },
        ..Default::default()
    });
    index.handle(Event::Reset(vec![mk_service("a", "old"), ns]));
    assert!(index.handle(Event::Restart(Kind::Service, vec![mk_service("a", "new")])));
    assert!(index.service("a", "old").is_none());
    assert!(index.service("a", "new").is_some());
    assert_eq!(index.namespaces().count(), 1);
    assert!(!index.handle(Event::Restart(Kind::Service, vec![mk_service("a", "new")])));
}

#[test]
fn revisions_track_what_changed() {
    use gateway_api::httproutes::HttpRoute;
    let route = |name: &str, host: &str| {
        let mut r: HttpRoute = serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": "a", "name": name},
            "spec": {"hostnames": [host]},
        }))
        .unwrap();
        r.metadata.generation = Some(1);
        Object::HttpRoute(r)
    };
    let r1 = ObjectKey::new(Kind::HttpRoute, "a", "r1");
    let mut index = Index::default();
    index.handle(Event::Reset(vec![mk_service("a", "s1"), route("r1", "x")]));
    let world = index.world_revision();
    let r1_rev = index.revision(&r1).unwrap();

    // A route edit moves only that route's revision.
    index.handle(Event::Apply(Box::new(route("r1", "y"))));
    assert_eq!(index.world_revision(), world);
    assert!(index.revision(&r1).unwrap() > r1_rev);
    let r1_rev = index.revision(&r1).unwrap();

    // A relist with the same objects changes nothing.
    assert!(!index.handle(Event::Reset(vec![mk_service("a", "s1"), route("r1", "y")])));
    assert_eq!(index.revision(&r1), Some(r1_rev));
    assert_eq!(index.world_revision(), world);

    // Anything else moves the world: a Service added, or deleted.
    index.handle(Event::Apply(Box::new(mk_service("a", "s2"))));
    let after_add = index.world_revision();
    assert!(after_add > world);
    index.handle(Event::Restart(Kind::Service, vec![mk_service("a", "s2")]));
    assert!(index.world_revision() > after_add, "s1 is gone");
    assert_eq!(index.revision(&r1), Some(r1_rev));
}

fn mk_route(ns: &str, name: &str, hostname: &str) -> Object {
    Object::HttpRoute(HttpRoute {
        metadata: ObjectMeta {
            namespace: Some(ns.into()),
            name: Some(name.into()),
            ..Default::default()
        },
        spec: gateway_api::httproutes::HttpRouteSpec {
            hostnames: Some(vec![hostname.into()]),
            ..Default::default()
        },
        status: None,
    })
}

fn changed_names(index: &Index, since: u64) -> Vec<String> {
    let mut names: Vec<String> = index
        .http_routes_changed_since(since)
        .expect("the log reaches back")
        .into_iter()
        .map(|k| k.name.clone())
        .collect();
    names.sort();
    names
}

#[test]
fn route_changes_are_listed_once_each_since_a_revision() {
    let mut index = Index::default();
    index.handle(Event::Reset(vec![
        mk_route("a", "r1", "one.example.com"),
        mk_route("a", "r2", "two.example.com"),
        mk_service("a", "s1"),
    ]));
    assert_eq!(changed_names(&index, 0), ["r1", "r2"]);
    let seen = index.latest_revision();
    assert!(changed_names(&index, seen).is_empty());

    index.handle(Event::Apply(Box::new(mk_route(
        "a",
        "r1",
        "uno.example.com",
    ))));
    index.handle(Event::Apply(Box::new(mk_route(
        "a",
        "r1",
        "eins.example.com",
    ))));
    index.handle(Event::Delete(ObjectKey::new(Kind::HttpRoute, "a", "r2")));
    index.handle(Event::Apply(Box::new(mk_service("a", "s2"))));
    assert_eq!(changed_names(&index, seen), ["r1", "r2"]);
    assert!(
        index
            .http_route_with_revision(&ObjectKey::new(Kind::HttpRoute, "a", "r2"))
            .is_none()
    );

    // Re-created after its deletion: one entry, not two.
    index.handle(Event::Apply(Box::new(mk_route(
        "a",
        "r2",
        "two.example.com",
    ))));
    assert_eq!(changed_names(&index, seen), ["r1", "r2"]);
    let (revision, _) = index
        .http_route_with_revision(&ObjectKey::new(Kind::HttpRoute, "a", "r2"))
        .unwrap();
    assert_eq!(revision, index.latest_revision());
    let now = index.latest_revision();
    index.handle(Event::Reset(vec![mk_route("a", "r2", "two.example.com")]));
    assert_eq!(changed_names(&index, now), ["r1"], "reset deletes r1 only");
}

#[test]
fn the_route_log_forgets_deletions_past_its_bound() {
    let mut index = Index::default();
    let routes: Vec<Object> = (0..=MAX_LOGGED_DELETIONS)
        .map(|i| mk_route("a", &format!("r{i}"), "x.example.com"))
        .collect();
    index.handle(Event::Reset(routes));
    let before = index.latest_revision();
    index.handle(Event::Reset(Vec::new()));
    assert!(index.http_routes_changed_since(before).is_none());
    assert!(
        index
            .http_routes_changed_since(index.latest_revision())
            .is_some()
    );
}
