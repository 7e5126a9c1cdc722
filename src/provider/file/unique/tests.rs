use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;

fn mk_object(name: &str, label: &str) -> Arc<Object> {
    Arc::new(Object::Service(Service {
        metadata: ObjectMeta {
            namespace: Some("default".into()),
            name: Some(name.into()),
            labels: Some([("v".to_string(), label.to_string())].into()),
            ..Default::default()
        },
        ..Default::default()
    }))
}

fn clash(registry: &mut KeyRegistry, objects: &[Arc<Object>]) -> Option<String> {
    registry.check(objects).err().map(|key| key.name)
}

#[test]
fn a_first_read_is_checked_whole() {
    let mut registry = KeyRegistry::default();
    let (a, b) = (mk_object("a", "1"), mk_object("b", "1"));
    assert_eq!(clash(&mut registry, &[a.clone(), b.clone()]), None);
    let mut fresh = KeyRegistry::default();
    assert_eq!(
        clash(&mut fresh, &[a, b, mk_object("a", "2")]),
        Some("a".into())
    );
}

#[test]
fn a_changed_object_may_not_take_a_kept_objects_key() {
    let mut registry = KeyRegistry::default();
    let objects: Vec<_> = (0..10).map(|i| mk_object(&format!("o{i}"), "1")).collect();
    assert_eq!(clash(&mut registry, &objects), None);

    let mut clashing = objects.clone();
    clashing[9] = mk_object("o3", "2");
    assert_eq!(clash(&mut registry, &clashing), Some("o3".into()));
    // The failed read changed nothing: the old objects still pass, and so
    // does a good edit.
    assert_eq!(clash(&mut registry, &objects), None);
    let mut edited = objects.clone();
    edited[9] = mk_object("o9", "2");
    assert_eq!(clash(&mut registry, &edited), None);
}

#[test]
fn a_document_repeated_is_a_duplicate_even_as_the_same_object() {
    let mut registry = KeyRegistry::default();
    let objects: Vec<_> = (0..4).map(|i| mk_object(&format!("o{i}"), "1")).collect();
    assert_eq!(clash(&mut registry, &objects), None);
    let mut repeated = objects.clone();
    repeated.push(objects[1].clone());
    assert_eq!(clash(&mut registry, &repeated), Some("o1".into()));
}

#[test]
fn keys_freed_by_renames_and_removals_can_be_used_again() {
    let mut registry = KeyRegistry::default();
    let objects: Vec<_> = (0..6).map(|i| mk_object(&format!("o{i}"), "1")).collect();
    assert_eq!(clash(&mut registry, &objects), None);
    // o5 renamed to p5, then the name o5 given to a new object at the end.
    let mut renamed = objects.clone();
    renamed[5] = mk_object("p5", "1");
    assert_eq!(clash(&mut registry, &renamed), None);
    renamed.push(mk_object("o5", "2"));
    assert_eq!(clash(&mut registry, &renamed), None);
    // The last two removed, then o5 back in another place's stead.
    renamed.truncate(5);
    assert_eq!(clash(&mut registry, &renamed), None);
    renamed[4] = mk_object("o5", "3");
    assert_eq!(clash(&mut registry, &renamed), None);
    // ...while p5, gone too, may not clash with anything left.
    renamed[0] = mk_object("o4", "2");
    assert_eq!(clash(&mut registry, &renamed), None, "o4 left its place");
    renamed[1] = mk_object("o2", "2");
    assert_eq!(clash(&mut registry, &renamed), Some("o2".into()));
}

#[test]
fn reordered_objects_are_checked_whole() {
    let mut registry = KeyRegistry::default();
    let (a, b) = (mk_object("a", "1"), mk_object("b", "1"));
    assert_eq!(clash(&mut registry, &[a.clone(), b.clone()]), None);
    assert_eq!(clash(&mut registry, &[b.clone(), a.clone()]), None);
    assert_eq!(clash(&mut registry, &[b.clone(), a, b]), Some("b".into()));
}
