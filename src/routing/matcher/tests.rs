use super::*;
use crate::object::Kind;

fn mk_match(path: PathMatch) -> RequestMatch {
    RequestMatch {
        path,
        method: None,
        headers: vec![],
        query: vec![],
    }
}

fn matches(m: &RequestMatch, path: &str, query: Option<&str>) -> bool {
    m.matches(&Method::GET, path, query, &HeaderMap::new())
}

#[test]
fn prefix_matches_on_segment_boundaries() {
    let m = mk_match(PathMatch::Prefix("/abc".into()));
    assert!(matches(&m, "/abc", None));
    assert!(matches(&m, "/abc/", None));
    assert!(matches(&m, "/abc/def", None));
    assert!(!matches(&m, "/abcd", None));
    assert!(!matches(&m, "/ab", None));
    let root = mk_match(PathMatch::Prefix(String::new()));
    assert!(matches(&root, "/", None));
    assert!(matches(&root, "/anything", None));
}

#[test]
fn regex_must_match_whole_path() {
    let m = mk_match(PathMatch::Regex(Regex::new("^(?:/v[0-9]+/.*)$").unwrap()));
    assert!(matches(&m, "/v2/users", None));
    assert!(!matches(&m, "/x/v2/users", None));
}

#[test]
fn query_values_are_decoded_and_first_wins() {
    let mut m = mk_match(PathMatch::Prefix(String::new()));
    m.query.push(QueryMatch {
        name: "q".into(),
        value: ValueMatch::Exact("a b".into()),
    });
    assert!(matches(&m, "/", Some("x=1&q=a%20b")));
    assert!(matches(&m, "/", Some("q=a+b&q=zzz")));
    assert!(!matches(&m, "/", Some("q=zzz&q=a+b")));
    assert!(!matches(&m, "/", Some("Q=a+b")));
    assert!(!matches(&m, "/", None));
}

#[test]
fn headers_and_method_must_all_match() {
    let mut m = mk_match(PathMatch::Prefix(String::new()));
    m.method = Some(Method::POST);
    m.headers.push(HeaderMatch {
        name: HeaderName::from_static("x-env"),
        value: ValueMatch::Exact("canary".into()),
    });
    let mut headers = HeaderMap::new();
    headers.insert("X-Env", "canary".parse().unwrap());
    assert!(m.matches(&Method::POST, "/", None, &headers));
    assert!(!m.matches(&Method::GET, "/", None, &headers));
    assert!(!m.matches(&Method::POST, "/", None, &HeaderMap::new()));
}

#[test]
fn precedence_follows_the_spec_order() {
    let t0 = Timestamp::from_second(1_000).unwrap();
    let t1 = Timestamp::from_second(2_000).unwrap();
    let key = |n: &str| ObjectKey::new(Kind::HttpRoute, "default", n);
    let exact = Precedence::of(&mk_match(PathMatch::Exact("/a".into())), t1, key("z"), 0, 0);
    let long_prefix = Precedence::of(
        &mk_match(PathMatch::Prefix("/abc/def".into())),
        t0,
        key("a"),
        0,
        0,
    );
    let short_prefix = Precedence::of(
        &mk_match(PathMatch::Prefix("/abc".into())),
        t0,
        key("a"),
        0,
        0,
    );
    let mut with_method = mk_match(PathMatch::Prefix("/abc".into()));
    with_method.method = Some(Method::GET);
    let with_method = Precedence::of(&with_method, t1, key("b"), 0, 0);
    let older = Precedence::of(
        &mk_match(PathMatch::Prefix("/x".into())),
        t0,
        key("b"),
        0,
        0,
    );
    let newer = Precedence::of(
        &mk_match(PathMatch::Prefix("/x".into())),
        t1,
        key("a"),
        0,
        0,
    );
    let same_time_a = Precedence::of(
        &mk_match(PathMatch::Prefix("/x".into())),
        t0,
        key("a"),
        1,
        0,
    );
    let mut sorted = vec![
        newer.clone(),
        short_prefix.clone(),
        older.clone(),
        exact.clone(),
        same_time_a.clone(),
        with_method.clone(),
        long_prefix.clone(),
    ];
    sorted.sort();
    assert_eq!(
        sorted,
        vec![
            exact,
            long_prefix,
            with_method,
            short_prefix,
            same_time_a,
            older,
            newer
        ]
    );
}
