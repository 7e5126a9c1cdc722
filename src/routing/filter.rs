//! Compiled HTTPRoute filters: header modifiers, redirects, rewrites, mirrors
//! and direct responses. Header names and values are parsed once, at
//! translate time.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::{Serialize, Serializer};

use super::backend::EndpointGroup;

fn ser_display<T: std::fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

fn ser_pairs<S: Serializer>(pairs: &[(HeaderName, HeaderValue)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(
        pairs
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap_or("<binary>"))),
    )
}

fn ser_names<S: Serializer>(names: &[HeaderName], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(names.iter().map(HeaderName::as_str))
}

/// A compiled `RequestHeaderModifier` or `ResponseHeaderModifier`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HeaderModifier {
    /// Headers replaced (or added when absent).
    #[serde(serialize_with = "ser_pairs")]
    pub set: Vec<(HeaderName, HeaderValue)>,
    /// Headers appended to any existing value.
    #[serde(serialize_with = "ser_pairs")]
    pub add: Vec<(HeaderName, HeaderValue)>,
    /// Headers removed.
    #[serde(serialize_with = "ser_names")]
    pub remove: Vec<HeaderName>,
}

impl HeaderModifier {
    /// Applies the modifier: the spec orders it set, add, remove... but as
    /// the API forbids naming one header in two lists, order is moot.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for (name, value) in &self.set {
            headers.insert(name.clone(), value.clone());
        }
        for (name, value) in &self.add {
            // "Add adds the given header(s) (name, value) to the request
            // before the action. It appends to any existing values
            // associated with the header name." Existing values are joined
            // with a comma, as the spec's example shows.
            match headers.get(name).map(|v| v.as_bytes().to_vec()) {
                Some(mut joined) => {
                    joined.extend_from_slice(b",");
                    joined.extend_from_slice(value.as_bytes());
                    if let Ok(v) = HeaderValue::from_bytes(&joined) {
                        headers.insert(name.clone(), v);
                    }
                }
                None => {
                    headers.insert(name.clone(), value.clone());
                }
            }
        }
        for name in &self.remove {
            headers.remove(name);
        }
    }
}

/// How a redirect or rewrite changes the path.
#[derive(Clone, Debug, Serialize)]
pub enum PathModifier {
    /// Replace the whole path.
    ReplaceFullPath(String),
    /// Replace the prefix the route matched.
    ReplacePrefixMatch(String),
}

impl PathModifier {
    /// The new path for `path`, given the prefix the request matched (for
    /// `ReplacePrefixMatch`; a match without one leaves the path alone).
    pub fn apply(&self, path: &str, matched_prefix: Option<&str>) -> String {
        match self {
            PathModifier::ReplaceFullPath(p) => p.clone(),
            PathModifier::ReplacePrefixMatch(replacement) => match matched_prefix {
                Some(prefix) => replace_prefix(path, prefix, replacement),
                None => path.to_string(),
            },
        }
    }
}

/// Replaces `prefix` (stored without a trailing slash, `""` for `/`) at the
/// start of `path` with `replacement`, keeping exactly one `/` at the seam,
/// as the table in the Gateway API's HTTPPathModifier documentation shows.
fn replace_prefix(path: &str, prefix: &str, replacement: &str) -> String {
    let rest = path.get(prefix.len()..).unwrap_or("");
    let mut out = String::with_capacity(replacement.len() + rest.len());
    out.push_str(replacement);
    if replacement.ends_with('/') && rest.starts_with('/') {
        out.push_str(&rest[1..]);
    } else if !rest.is_empty() && !rest.starts_with('/') && !replacement.ends_with('/') {
        out.push('/');
        out.push_str(rest);
    } else {
        out.push_str(rest);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// A compiled `RequestRedirect`.
#[derive(Clone, Debug, Serialize)]
pub struct Redirect {
    /// `http` or `https`; `None` keeps the request's scheme.
    pub scheme: Option<&'static str>,
    /// The new host; `None` keeps the request's.
    pub hostname: Option<String>,
    /// The new port; `None` derives it as the spec says.
    pub port: Option<u16>,
    /// How the path changes.
    pub path: Option<PathModifier>,
    /// 301 or 302 (the default) and friends.
    #[serde(serialize_with = "ser_display")]
    pub status: StatusCode,
}

/// A compiled `URLRewrite`.
#[derive(Clone, Debug, Serialize)]
pub struct UrlRewrite {
    /// The Host the backend sees.
    #[serde(serialize_with = "ser_opt_value")]
    pub hostname: Option<HeaderValue>,
    /// How the path changes.
    pub path: Option<PathModifier>,
}

fn ser_opt_value<S: Serializer>(v: &Option<HeaderValue>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_some(v.to_str().unwrap_or("<binary>")),
        None => s.serialize_none(),
    }
}

/// A compiled `RequestMirror`.
#[derive(Clone, Debug, Serialize)]
pub struct Mirror {
    /// Where copies go; `None` when the reference did not resolve (no copy is sent).
    pub target: Option<Arc<EndpointGroup>>,
    /// Copies `numerator` of every `denominator` requests.
    pub numerator: u32,
    /// See `numerator`.
    pub denominator: u32,
}

impl Mirror {
    /// Whether this request should be copied.
    pub fn sample(&self) -> bool {
        self.numerator >= self.denominator || fastrand::u32(0..self.denominator) < self.numerator
    }
}

/// A fixed response (`DirectResponse`).
#[derive(Clone, Debug, Serialize)]
pub struct FixedResponse {
    /// The status code.
    #[serde(serialize_with = "ser_display")]
    pub status: StatusCode,
    /// The headers.
    #[serde(serialize_with = "ser_pairs")]
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The body.
    #[serde(serialize_with = "ser_bytes")]
    pub body: Bytes,
}

fn ser_bytes<S: Serializer>(b: &Bytes, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(b))
}

/// The filters of one rule (or one backendRef), compiled.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Filters {
    /// `RequestHeaderModifier`.
    pub request_headers: Option<HeaderModifier>,
    /// `ResponseHeaderModifier`.
    pub response_headers: Option<HeaderModifier>,
    /// `RequestRedirect`: answer with a redirect instead of forwarding.
    pub redirect: Option<Redirect>,
    /// `URLRewrite`.
    pub rewrite: Option<UrlRewrite>,
    /// `RequestMirror`s.
    pub mirrors: Vec<Mirror>,
    /// `ExtensionRef` to a `DirectResponse`: answer without forwarding.
    pub direct_response: Option<Arc<FixedResponse>>,
}

impl Filters {
    /// Whether no filter is set.
    pub fn is_empty(&self) -> bool {
        self.request_headers.is_none()
            && self.response_headers.is_none()
            && self.redirect.is_none()
            && self.rewrite.is_none()
            && self.mirrors.is_empty()
            && self.direct_response.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_prefix_follows_the_spec_table() {
        // (matched prefix as compiled, request path, replacement, expected)
        let cases = [
            ("/foo", "/foo/bar", "/xyz", "/xyz/bar"),
            ("/foo", "/foo", "/xyz", "/xyz"),
            ("/foo", "/foo/bar", "/xyz/", "/xyz/bar"),
            ("/foo", "/foo", "/xyz/", "/xyz/"),
            ("/foo", "/foo/", "/xyz", "/xyz/"),
            ("/foo", "/foo/bar", "/", "/bar"),
            ("/foo", "/foo", "/", "/"),
            ("", "/foo/bar", "/xyz", "/xyz/foo/bar"),
            ("/foo", "/foo/bar/baz", "", "/bar/baz"),
        ];
        for (prefix, path, replacement, want) in cases {
            assert_eq!(
                replace_prefix(path, prefix, replacement),
                want,
                "{prefix} {path} {replacement}"
            );
        }
    }

    #[test]
    fn header_modifier_sets_adds_removes() {
        let modifier = HeaderModifier {
            set: vec![(
                HeaderName::from_static("x-set"),
                HeaderValue::from_static("s"),
            )],
            add: vec![(
                HeaderName::from_static("x-add"),
                HeaderValue::from_static("b"),
            )],
            remove: vec![HeaderName::from_static("x-gone")],
        };
        let mut headers = HeaderMap::new();
        headers.insert("x-set", HeaderValue::from_static("old"));
        headers.insert("x-add", HeaderValue::from_static("a"));
        headers.insert("x-gone", HeaderValue::from_static("1"));
        modifier.apply(&mut headers);
        assert_eq!(headers["x-set"], "s");
        assert_eq!(headers["x-add"], "a,b");
        assert!(!headers.contains_key("x-gone"));
    }
}
