//! The route entries of one host, indexed by path so that selecting a
//! route costs a few hash lookups however many routes share the host.
//!
//! Entries are kept in precedence order. Precedence ranks by path kind
//! (Exact, then RegularExpression, then PathPrefix) and then by path length
//! before anything else, so the entries that can match a given path fall
//! into buckets that are tried in exactly the global order: the Exact bucket
//! of the path, every RegularExpression entry, then the PathPrefix buckets
//! of the path's segment prefixes from the longest to `/`. Within a bucket,
//! entries stay in precedence order.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Serialize, Serializer};

use super::matcher::PathMatch;
use super::{RequestFacts, RouteEntry};

/// The route entries of one host.
#[derive(Debug, Default)]
pub struct RouteSet {
    /// Every entry, in precedence order (shared with the translation that
    /// made them, which may keep them for the next one).
    entries: Vec<Arc<RouteEntry>>,
    /// The same entries in the order they were given, so that the next
    /// translation can tell whether it would build this very set again.
    given: Vec<Arc<RouteEntry>>,
    /// Exact path → entries, by index into `entries`.
    exact: HashMap<String, Vec<u32>>,
    /// Prefix (without trailing slash; `""` for `/`) → entries.
    prefix: HashMap<String, Vec<u32>>,
    /// Regular-expression entries, in precedence order.
    regex: Vec<u32>,
}

impl Serialize for RouteSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.entries.serialize(s)
    }
}

impl RouteSet {
    /// Orders `given` by precedence and indexes it.
    pub fn new(given: Vec<Arc<RouteEntry>>) -> Self {
        let mut entries = given.clone();
        entries.sort_by(|a, b| a.precedence.cmp(&b.precedence));
        let mut set = RouteSet {
            entries: Vec::new(),
            given,
            exact: HashMap::new(),
            prefix: HashMap::new(),
            regex: Vec::new(),
        };
        for (i, entry) in entries.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            match &entry.matcher.path {
                PathMatch::Exact(p) => set.exact.entry(p.clone()).or_default().push(i),
                PathMatch::Prefix(p) => set.prefix.entry(p.clone()).or_default().push(i),
                PathMatch::Regex(_) => set.regex.push(i),
            }
        }
        set.entries = entries;
        set
    }

    /// Whether `given` holds the very entries this set was built from, in
    /// the same order.
    pub fn built_from(&self, given: &[Arc<RouteEntry>]) -> bool {
        self.given.len() == given.len()
            && self.given.iter().zip(given).all(|(a, b)| Arc::ptr_eq(a, b))
    }

    /// Every entry, in precedence order.
    pub fn entries(&self) -> &[Arc<RouteEntry>] {
        &self.entries
    }

    /// The first entry, by precedence, that matches the request.
    pub fn find(&self, req: &RequestFacts<'_>) -> Option<&RouteEntry> {
        let path = req.path;
        let matches = |i: &u32| {
            let e: &RouteEntry = self.entries.get(*i as usize)?;
            e.matcher
                .matches(req.method, path, req.query, req.headers)
                .then_some(e)
        };
        if let Some(found) = self
            .exact
            .get(path)
            .and_then(|b| b.iter().find_map(matches))
        {
            return Some(found);
        }
        if let Some(found) = self.regex.iter().find_map(matches) {
            return Some(found);
        }
        if self.prefix.is_empty() {
            return None;
        }
        // The path itself (unless it ends in '/', which no stored prefix
        // does), then the part before each '/', from the right.
        let whole = (!path.ends_with('/')).then_some(path);
        let cuts = path.rmatch_indices('/').map(|(i, _)| &path[..i]);
        whole
            .into_iter()
            .chain(cuts)
            .filter_map(|p| self.prefix.get(p))
            .find_map(|bucket| bucket.iter().find_map(matches))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use http::{HeaderMap, HeaderName, Method};
    use k8s_openapi::jiff::Timestamp;

    use super::*;
    use crate::object::{Kind, ObjectKey};
    use crate::routing::backend::BackendSet;
    use crate::routing::filter::Filters;
    use crate::routing::matcher::{HeaderMatch, Precedence, RequestMatch, ValueMatch};
    use crate::routing::{RouteRule, Timeouts};

    fn mk_entry(name: &str, path: PathMatch, header: bool) -> Arc<RouteEntry> {
        let matcher = RequestMatch {
            path,
            method: None,
            headers: if header {
                vec![HeaderMatch {
                    name: HeaderName::from_static("x-a"),
                    value: ValueMatch::Exact("1".into()),
                }]
            } else {
                vec![]
            },
            query: vec![],
        };
        let route = ObjectKey::new(Kind::HttpRoute, "default", name);
        Arc::new(RouteEntry {
            precedence: Precedence::of(&matcher, Timestamp::UNIX_EPOCH, route.clone(), 0, 0),
            matcher,
            rule: Arc::new(RouteRule {
                route,
                rule_index: 0,
                route_label: name.into(),
                filters: Filters::default(),
                backends: BackendSet::default(),
                timeouts: Timeouts::default(),
            }),
        })
    }

    /// The indexed lookup must pick what a linear scan in precedence order
    /// picks, for every request.
    #[test]
    fn indexed_lookup_agrees_with_a_linear_scan() {
        let regex = |s: &str| PathMatch::Regex(regex::Regex::new(&format!("^(?:{s})$")).unwrap());
        let mut entries = vec![
            mk_entry("root", PathMatch::Prefix(String::new()), false),
            mk_entry("a", PathMatch::Prefix("/a".into()), false),
            mk_entry("a-header", PathMatch::Prefix("/a".into()), true),
            mk_entry("ab", PathMatch::Prefix("/a/b".into()), false),
            mk_entry("exact-ab", PathMatch::Exact("/a/b".into()), false),
            mk_entry("exact-ab-header", PathMatch::Exact("/a/b".into()), true),
            mk_entry("regex-v", regex("/v[0-9]+/.*"), false),
            mk_entry("abc", PathMatch::Prefix("/abc".into()), false),
        ];
        entries.sort_by(|a, b| a.precedence.cmp(&b.precedence));
        let linear: Vec<(PathMatch, String)> = entries
            .iter()
            .map(|e| (e.matcher.path.clone(), e.rule.route.name.clone()))
            .collect();
        let set = RouteSet::new(entries);
        let mut with_header = HeaderMap::new();
        with_header.insert("x-a", "1".parse().unwrap());
        for path in [
            "/", "/a", "/a/", "/a/b", "/a/b/", "/a/bc", "/a/b/c", "/abc", "/abcd", "/ab", "/v1/x",
            "/v1", "/a//b", "",
        ] {
            for headers in [&HeaderMap::new(), &with_header] {
                let req = RequestFacts {
                    host: "h",
                    method: &Method::GET,
                    path,
                    query: None,
                    headers,
                };
                let by_scan = set
                    .entries()
                    .iter()
                    .find(|e| e.matcher.matches(req.method, path, None, headers))
                    .map(|e| e.rule.route.name.clone());
                let by_index = set.find(&req).map(|e| e.rule.route.name.clone());
                assert_eq!(by_index, by_scan, "{path} {headers:?} in {linear:?}");
            }
        }
    }
}
