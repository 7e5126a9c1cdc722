//! Compiled HTTPRoute matches and their precedence.
//!
//! Translate compiles each `HTTPRouteMatch` once (regexes, header names);
//! the proxy calls [`RequestMatch::matches`] on the request path, which
//! allocates nothing unless a query value is percent-encoded.

use std::borrow::Cow;
use std::cmp::Ordering;

use http::{HeaderMap, HeaderName, Method};
use k8s_openapi::jiff::Timestamp;
use regex::Regex;
use serde::{Serialize, Serializer};

use crate::object::ObjectKey;

/// How a request path is matched.
#[derive(Clone, Debug, Serialize)]
pub enum PathMatch {
    /// The path equals this value.
    Exact(String),
    /// The path starts with this prefix at a `/` boundary. Stored without a
    /// trailing slash; `""` stands for `/` and matches every path.
    Prefix(String),
    /// The whole path matches this regular expression.
    Regex(#[serde(serialize_with = "ser_regex")] Regex),
}

/// How a header or query value is matched.
#[derive(Clone, Debug, Serialize)]
pub enum ValueMatch {
    /// The value equals this string.
    Exact(String),
    /// The whole value matches this regular expression.
    Regex(#[serde(serialize_with = "ser_regex")] Regex),
}

fn ser_regex<S: Serializer>(re: &Regex, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(re.as_str())
}

fn ser_display<T: std::fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

impl ValueMatch {
    fn is_match(&self, value: &str) -> bool {
        match self {
            ValueMatch::Exact(v) => v == value,
            ValueMatch::Regex(re) => re.is_match(value),
        }
    }
}

/// A header that must be present with a matching value.
#[derive(Clone, Debug, Serialize)]
pub struct HeaderMatch {
    /// The header name (case-insensitive, as HTTP defines).
    #[serde(serialize_with = "ser_display")]
    pub name: HeaderName,
    /// How its value is matched.
    pub value: ValueMatch,
}

/// A query parameter that must be present with a matching value.
#[derive(Clone, Debug, Serialize)]
pub struct QueryMatch {
    /// The parameter name (case-sensitive).
    pub name: String,
    /// How its value is matched.
    pub value: ValueMatch,
}

/// One compiled `HTTPRouteMatch`: every part must match.
#[derive(Clone, Debug, Serialize)]
pub struct RequestMatch {
    /// The path condition.
    pub path: PathMatch,
    /// The method, when the match names one.
    #[serde(serialize_with = "ser_opt_method")]
    pub method: Option<Method>,
    /// Header conditions.
    pub headers: Vec<HeaderMatch>,
    /// Query parameter conditions.
    pub query: Vec<QueryMatch>,
}

fn ser_opt_method<S: Serializer>(m: &Option<Method>, s: S) -> Result<S::Ok, S::Error> {
    match m {
        Some(m) => s.serialize_some(m.as_str()),
        None => s.serialize_none(),
    }
}

impl RequestMatch {
    /// Whether a request with this method, path, query and headers matches.
    pub fn matches(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> bool {
        if self.method.as_ref().is_some_and(|m| m != method) {
            return false;
        }
        let path_ok = match &self.path {
            PathMatch::Exact(p) => p == path,
            PathMatch::Prefix(prefix) => {
                path.starts_with(prefix.as_str())
                    && (path.len() == prefix.len() || path.as_bytes()[prefix.len()] == b'/')
            }
            PathMatch::Regex(re) => re.is_match(path),
        };
        if !path_ok {
            return false;
        }
        let headers_ok = self.headers.iter().all(|h| {
            headers
                .get(&h.name)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| h.value.is_match(v))
        });
        headers_ok
            && self.query.iter().all(|q| {
                query_value(query.unwrap_or(""), &q.name).is_some_and(|v| q.value.is_match(&v))
            })
    }

    /// The prefix a `ReplacePrefixMatch` rewrite replaces, if this is a
    /// prefix match.
    pub fn prefix(&self) -> Option<&str> {
        match &self.path {
            PathMatch::Prefix(p) => Some(p),
            _ => None,
        }
    }
}

/// The first value of query parameter `name`, percent-decoded.
fn query_value<'q>(query: &'q str, name: &str) -> Option<Cow<'q, str>> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.contains(['%', '+']) {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// Where a match stands among all matches on one listener and host.
///
/// The Gateway API (HTTPRouteRule.matches) says: "Proxy or Load Balancer
/// routing configuration generated from HTTPRoutes MUST prioritize matches
/// based on the following criteria, continuing on ties. Across all rules
/// specified on applicable Routes, precedence must be given to the match
/// having: "Exact" path match. "Prefix" path match with largest number of
/// characters. Method match. Largest number of header matches. Largest number
/// of query param matches. Note: The precedence of RegularExpression path
/// matches are implementation-specific. If ties still exist across multiple
/// Routes, matching precedence MUST be determined in order of the following
/// criteria, continuing on ties: The oldest Route based on creation
/// timestamp. The Route appearing first in alphabetical order by
/// "{namespace}/{name}". If ties still exist within an HTTPRoute, matching
/// precedence MUST be granted to the FIRST matching rule (in list order) with
/// a match meeting the above criteria."
///
/// We rank regular-expression paths between exact and prefix paths (longer
/// expressions first), as Envoy Gateway does. `Ordering::Less` means "tried
/// first".
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Precedence {
    /// 2 for Exact, 1 for RegularExpression, 0 for PathPrefix.
    pub path_kind: u8,
    /// Characters in the path value.
    pub path_len: usize,
    /// Whether the match names a method.
    pub has_method: bool,
    /// Number of header matches.
    pub headers: usize,
    /// Number of query parameter matches.
    pub query_params: usize,
    /// The route's creation time.
    #[serde(serialize_with = "ser_display")]
    pub created: Timestamp,
    /// The route's namespace and name.
    pub route: ObjectKey,
    /// The rule's index in the route.
    pub rule: usize,
    /// The match's index in the rule.
    pub match_index: usize,
}

impl Precedence {
    /// The precedence of `m`, the `match_index`th match of rule `rule` of `route`.
    pub fn of(
        m: &RequestMatch,
        created: Timestamp,
        route: ObjectKey,
        rule: usize,
        match_index: usize,
    ) -> Self {
        let (path_kind, path_len) = match &m.path {
            PathMatch::Exact(p) => (2, p.len()),
            PathMatch::Regex(re) => (1, re.as_str().len()),
            // `""` is the compiled form of `/`.
            PathMatch::Prefix(p) => (0, p.len().max(1)),
        };
        Self {
            path_kind,
            path_len,
            has_method: m.method.is_some(),
            headers: m.headers.len(),
            query_params: m.query.len(),
            created,
            route,
            rule,
            match_index,
        }
    }
}

impl Ord for Precedence {
    fn cmp(&self, other: &Self) -> Ordering {
        // More specific first...
        other
            .path_kind
            .cmp(&self.path_kind)
            .then(other.path_len.cmp(&self.path_len))
            .then(other.has_method.cmp(&self.has_method))
            .then(other.headers.cmp(&self.headers))
            .then(other.query_params.cmp(&self.query_params))
            // ...then older, then by namespace/name, then in list order.
            .then(self.created.cmp(&other.created))
            .then(self.route.namespace.cmp(&other.route.namespace))
            .then(self.route.name.cmp(&other.route.name))
            .then(self.rule.cmp(&other.rule))
            .then(self.match_index.cmp(&other.match_index))
    }
}

impl PartialOrd for Precedence {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests;
