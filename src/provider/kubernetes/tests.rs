use super::*;
use crate::object::ObjectKey;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::reflector;

use crate::index::Index;

fn mk_service(name: &str) -> Service {
    Service {
        metadata: ObjectMeta {
            namespace: Some("shop".into()),
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Feeds watcher events both to a kube-runtime reflector store and,
/// through the translator, to our index: both must agree on what exists.
#[test]
fn watch_events_reach_the_index_as_a_reflector_sees_them() {
    let (store, mut writer) = reflector::store::<Service>();
    let mut translator = WatchTranslator::new(Kind::Service);
    let mut index = Index::default();
    let events = vec![
        WatchEvent::Init,
        WatchEvent::InitApply(mk_service("a")),
        WatchEvent::InitApply(mk_service("b")),
        WatchEvent::InitDone,
        WatchEvent::Apply(mk_service("c")),
        WatchEvent::Delete(mk_service("a")),
        // A relist after a broken watch: "b" went away meanwhile.
        WatchEvent::Init,
        WatchEvent::InitApply(mk_service("c")),
        WatchEvent::InitDone,
    ];
    let mut sent = 0;
    for event in events {
        writer.apply_watcher_event(&event);
        if let Some(e) = translator.event(map_event(event, Object::Service)) {
            index.handle(e);
            sent += 1;
        }
        let mut in_store: Vec<String> = store
            .state()
            .iter()
            .map(|s| s.metadata.name.clone().unwrap())
            .collect();
        in_store.sort();
        let in_index: Vec<String> = index
            .services()
            .map(|s| s.metadata.name.clone().unwrap())
            .collect();
        // The reflector applies InitApply only at InitDone, as we do.
        assert_eq!(in_index, in_store);
    }
    assert_eq!(sent, 4, "two restarts, one apply, one delete");
    assert_eq!(index.services().count(), 1);
}

#[test]
fn status_is_split_off_so_status_writes_do_not_retranslate() {
    let (cluster, rx) = watch::channel(ClusterStatus::new());
    let mut route = gateway_api::httproutes::HttpRoute {
        metadata: ObjectMeta {
            namespace: Some("shop".into()),
            name: Some("r".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    route.status = Some(gateway_api::httproutes::HttpRouteStatus { parents: vec![] });
    let mut event = WatchEvent::Apply(Object::HttpRoute(route));
    split_status(&mut event, &cluster);
    let WatchEvent::Apply(Object::HttpRoute(route)) = &event else {
        panic!("event changed kind")
    };
    assert!(route.status.is_none());
    let key = ObjectKey::new(Kind::HttpRoute, "shop", "r");
    assert_eq!(
        rx.borrow().get(&key),
        Some(&serde_json::json!({"parents": []}))
    );
    split_status(
        &mut WatchEvent::Delete(Object::HttpRoute(route.clone())),
        &cluster,
    );
    assert!(rx.borrow().is_empty());
}
