use super::*;
use gateway_api::httproutes::{
    HttpRouteStatus, HttpRouteStatusParents, HttpRouteStatusParentsParentRef,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use std::sync::Arc;

use crate::translate::ObjectStatus;

const OURS: &str = "gatehouse.dev/gateway-controller";

fn mk_condition(type_: &str, status: &str, at: i64) -> Condition {
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: if status == "True" {
            type_.into()
        } else {
            "Nope".into()
        },
        message: String::new(),
        observed_generation: Some(1),
        last_transition_time: Time(Timestamp::from_second(at).unwrap()),
    }
}

fn mk_route_status(accepted: &str, at: i64) -> StatusEntry {
    StatusEntry {
        generation: Some(1),
        status: ObjectStatus::HttpRoute(Arc::new(HttpRouteStatus {
            parents: vec![HttpRouteStatusParents {
                conditions: vec![mk_condition("Accepted", accepted, at)],
                controller_name: OURS.into(),
                parent_ref: HttpRouteStatusParentsParentRef {
                    name: "gw".into(),
                    ..Default::default()
                },
            }],
        })),
    }
}

fn key() -> ObjectKey {
    ObjectKey::new(Kind::HttpRoute, "shop", "r")
}

#[test]
fn first_write_is_a_full_apply_patch() {
    let patch = status_patch(&key(), &mk_route_status("True", 100), None, OURS).unwrap();
    assert_eq!(patch["apiVersion"], "gateway.networking.k8s.io/v1");
    assert_eq!(patch["kind"], "HTTPRoute");
    assert_eq!(patch["metadata"], json!({"name": "r", "namespace": "shop"}));
    assert_eq!(patch["status"]["parents"][0]["controllerName"], OURS);
}

#[test]
fn unchanged_status_is_not_written_even_with_newer_timestamps() {
    let written = status_patch(&key(), &mk_route_status("True", 100), None, OURS).unwrap();
    let current = written["status"].clone();
    assert_eq!(
        status_patch(&key(), &mk_route_status("True", 999), Some(&current), OURS),
        None
    );
}

#[test]
fn transition_time_is_kept_unless_the_status_flips() {
    let current =
        status_patch(&key(), &mk_route_status("True", 100), None, OURS).unwrap()["status"].clone();
    // Same status, new reason text: written, but the old time is kept.
    let mut changed = mk_route_status("True", 500);
    if let ObjectStatus::HttpRoute(s) = &mut changed.status {
        Arc::make_mut(s).parents[0].conditions[0].message = "new message".into();
    }
    let patch = status_patch(&key(), &changed, Some(&current), OURS).unwrap();
    let c = &patch["status"]["parents"][0]["conditions"][0];
    assert_eq!(
        c["lastTransitionTime"],
        current["parents"][0]["conditions"][0]["lastTransitionTime"]
    );
    // The status flips: the new time is used.
    let patch = status_patch(&key(), &mk_route_status("False", 500), Some(&current), OURS).unwrap();
    let c = &patch["status"]["parents"][0]["conditions"][0];
    assert_eq!(c["lastTransitionTime"], json!("1970-01-01T00:08:20Z"));
}

#[test]
fn parents_of_other_controllers_are_kept() {
    let current = json!({"parents": [{
        "controllerName": "example.com/other",
        "parentRef": {"name": "their-gw"},
        "conditions": [],
    }]});
    let patch = status_patch(&key(), &mk_route_status("True", 100), Some(&current), OURS).unwrap();
    let parents = patch["status"]["parents"].as_array().unwrap();
    assert_eq!(parents.len(), 2);
    assert_eq!(parents[0]["controllerName"], "example.com/other");
    assert_eq!(parents[1]["controllerName"], OURS);
}
