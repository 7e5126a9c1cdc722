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
