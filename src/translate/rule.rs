//! One HTTPRoute rule, compiled: its matches, filters, backends and timeouts.
//!
//! A rule with a value we cannot honour is dropped and reported (the route
//! then reads `PartiallyInvalid` or `Accepted: False` with `UnsupportedValue`);
//! a reference that does not resolve keeps the rule but answers 500 for its
//! share and is reported under `ResolvedRefs`.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gateway_api::httproutes::{
    HttpRouteRules, HttpRouteRulesBackendRefs, HttpRouteRulesFilters,
    HttpRouteRulesFiltersRequestHeaderModifier, HttpRouteRulesFiltersRequestRedirect,
    HttpRouteRulesFiltersRequestRedirectPath, HttpRouteRulesFiltersRequestRedirectPathType,
    HttpRouteRulesFiltersRequestRedirectScheme, HttpRouteRulesFiltersType,
    HttpRouteRulesFiltersUrlRewrite, HttpRouteRulesFiltersUrlRewritePathType,
    HttpRouteRulesMatches, HttpRouteRulesMatchesHeadersType, HttpRouteRulesMatchesMethod,
    HttpRouteRulesMatchesPath, HttpRouteRulesMatchesPathType, HttpRouteRulesMatchesQueryParamsType,
    HttpRouteRulesTimeouts,
};
use http::{HeaderName, HeaderValue, Method, StatusCode};
use regex::Regex;

use super::backend_ref::{BackendRefInput, resolve};
use super::status::Problem;
use crate::index::Index;
use crate::object::{GATEHOUSE_GROUP, ObjectKey};
use crate::routing::backend::{BackendSet, BackendTarget, WeightedBackend};
use crate::routing::filter::{
    Filters, FixedResponse, HeaderModifier, Mirror, PathModifier, Redirect, UrlRewrite,
};
use crate::routing::matcher::{HeaderMatch, PathMatch, QueryMatch, RequestMatch, ValueMatch};
use crate::routing::{RouteRule, Timeouts};

/// A compiled rule and what went wrong while compiling it.
#[derive(Debug, Default)]
pub(super) struct RuleOutcome {
    /// The rule, unless it had to be dropped.
    pub compiled: Option<(Vec<RequestMatch>, Arc<RouteRule>)>,
    /// Why the rule was dropped.
    pub invalid: Option<Problem>,
    /// References that did not resolve (the rule still serves, with 500s).
    pub unresolved: Vec<Problem>,
}

/// Compiles rule `rule_index` of the route `route`.
pub(super) fn compile_rule(
    index: &Index,
    route: &ObjectKey,
    rule_index: usize,
    rule: &HttpRouteRules,
) -> RuleOutcome {
    let HttpRouteRules {
        backend_refs,
        filters,
        matches,
        name: _,
        timeouts,
    } = rule;
    let mut outcome = RuleOutcome::default();
    let at = |what: String| format!("rule {rule_index}: {what}");
    let matches = match compile_matches(matches.as_deref().unwrap_or_default()) {
        Ok(m) => m,
        Err(msg) => {
            outcome.invalid = Some(Problem::new("UnsupportedValue", at(msg)));
            return outcome;
        }
    };
    let filters = match compile_filters(
        index,
        &route.namespace,
        filters.as_deref().unwrap_or_default(),
        &matches,
        &mut outcome.unresolved,
    ) {
        Ok(f) => f,
        Err(msg) => {
            outcome.invalid = Some(Problem::new("UnsupportedValue", at(msg)));
            return outcome;
        }
    };
    let timeouts = match compile_timeouts(timeouts.as_ref()) {
        Ok(t) => t,
        Err(msg) => {
            outcome.invalid = Some(Problem::new("UnsupportedValue", at(msg)));
            return outcome;
        }
    };
    let mut backends = Vec::new();
    for backend in backend_refs.iter().flatten() {
        match compile_backend(
            index,
            &route.namespace,
            backend,
            &matches,
            &mut outcome.unresolved,
        ) {
            Ok(b) => backends.push(b),
            Err(msg) => {
                outcome.invalid = Some(Problem::new("UnsupportedValue", at(msg)));
                return outcome;
            }
        }
    }
    let rule = RouteRule {
        route: route.clone(),
        rule_index,
        route_label: format!("{}/{}", route.namespace, route.name).into(),
        filters,
        backends: BackendSet::new(backends),
        timeouts,
    };
    outcome.compiled = Some((matches, Arc::new(rule)));
    outcome
}

fn compile_matches(matches: &[HttpRouteRulesMatches]) -> Result<Vec<RequestMatch>, String> {
    let mut out = Vec::with_capacity(matches.len().max(1));
    for m in matches {
        let HttpRouteRulesMatches {
            headers,
            method,
            path,
            query_params,
        } = m;
        let path = compile_path(path.as_ref())?;
        let method = method.as_ref().map(|m| match m {
            HttpRouteRulesMatchesMethod::Get => Method::GET,
            HttpRouteRulesMatchesMethod::Head => Method::HEAD,
            HttpRouteRulesMatchesMethod::Post => Method::POST,
            HttpRouteRulesMatchesMethod::Put => Method::PUT,
            HttpRouteRulesMatchesMethod::Delete => Method::DELETE,
            HttpRouteRulesMatchesMethod::Connect => Method::CONNECT,
            HttpRouteRulesMatchesMethod::Options => Method::OPTIONS,
            HttpRouteRulesMatchesMethod::Trace => Method::TRACE,
            HttpRouteRulesMatchesMethod::Patch => Method::PATCH,
        });
        let mut header_matches: Vec<HeaderMatch> = Vec::new();
        for h in headers.iter().flatten() {
            let name = HeaderName::from_bytes(h.name.as_bytes())
                .map_err(|_| format!("invalid header name {:?}", h.name))?;
            // "If multiple entries specify equivalent header names, only the
            // first entry with an equivalent name MUST be considered."
            if header_matches.iter().any(|m| m.name == name) {
                continue;
            }
            let regex = matches!(
                h.r#type,
                Some(HttpRouteRulesMatchesHeadersType::RegularExpression)
            );
            header_matches.push(HeaderMatch {
                name,
                value: value_match(&h.value, regex)?,
            });
        }
        let mut query: Vec<QueryMatch> = Vec::new();
        for q in query_params.iter().flatten() {
            if query.iter().any(|m| m.name == q.name) {
                continue;
            }
            let regex = matches!(
                q.r#type,
                Some(HttpRouteRulesMatchesQueryParamsType::RegularExpression)
            );
            query.push(QueryMatch {
                name: q.name.clone(),
                value: value_match(&q.value, regex)?,
            });
        }
        out.push(RequestMatch {
            path,
            method,
            headers: header_matches,
            query,
        });
    }
    if out.is_empty() {
        out.push(RequestMatch {
            path: PathMatch::Prefix(String::new()),
            method: None,
            headers: vec![],
            query: vec![],
        });
    }
    Ok(out)
}

fn full_match_regex(pattern: &str) -> Result<Regex, String> {
    Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
        // The parser draws our wrapped pattern over several lines; a
        // condition message wants one line: the cause.
        let text = e.to_string();
        let cause = text
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("error: "))
            .unwrap_or(&text);
        format!("invalid regular expression {pattern:?}: {cause}")
    })
}

fn value_match(value: &str, regex: bool) -> Result<ValueMatch, String> {
    if regex {
        Ok(ValueMatch::Regex(full_match_regex(value)?))
    } else {
        Ok(ValueMatch::Exact(value.to_string()))
    }
}

fn compile_path(path: Option<&HttpRouteRulesMatchesPath>) -> Result<PathMatch, String> {
    let kind = path
        .and_then(|p| p.r#type.clone())
        .unwrap_or(HttpRouteRulesMatchesPathType::PathPrefix);
    let value = path.and_then(|p| p.value.as_deref()).unwrap_or("/");
    match kind {
        HttpRouteRulesMatchesPathType::RegularExpression => {
            Ok(PathMatch::Regex(full_match_regex(value)?))
        }
        _ if !value.starts_with('/') => Err(format!("path {value:?} must start with '/'")),
        HttpRouteRulesMatchesPathType::Exact => Ok(PathMatch::Exact(value.to_string())),
        HttpRouteRulesMatchesPathType::PathPrefix => {
            Ok(PathMatch::Prefix(value.trim_end_matches('/').to_string()))
        }
    }
}

fn header_pairs(
    pairs: impl Iterator<Item = (String, String)>,
) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    pairs
        .map(|(n, v)| {
            let name = HeaderName::from_bytes(n.as_bytes())
                .map_err(|_| format!("invalid header name {n:?}"))?;
            let value =
                HeaderValue::from_str(&v).map_err(|_| format!("invalid value for header {n}"))?;
            Ok((name, value))
        })
        .collect()
}

fn header_modifier(
    m: &HttpRouteRulesFiltersRequestHeaderModifier,
) -> Result<HeaderModifier, String> {
    let HttpRouteRulesFiltersRequestHeaderModifier { add, remove, set } = m;
    Ok(HeaderModifier {
        set: header_pairs(
            set.iter()
                .flatten()
                .map(|h| (h.name.clone(), h.value.clone())),
        )?,
        add: header_pairs(
            add.iter()
                .flatten()
                .map(|h| (h.name.clone(), h.value.clone())),
        )?,
        remove: remove
            .iter()
            .flatten()
            .map(|n| {
                HeaderName::from_bytes(n.as_bytes())
                    .map_err(|_| format!("invalid header name {n:?}"))
            })
            .collect::<Result<_, _>>()?,
    })
}

/// The response-header modifier has its own generated type with the same
/// shape; convert through JSON rather than write the function twice.
fn same_shape<A: serde::Serialize, B: serde::de::DeserializeOwned>(a: &A) -> Result<B, String> {
    serde_json::to_value(a)
        .and_then(serde_json::from_value)
        .map_err(|e| format!("internal conversion failed: {e}"))
}

fn path_modifier(
    kind: &HttpRouteRulesFiltersRequestRedirectPathType,
    full: Option<&String>,
    prefix: Option<&String>,
    matches: &[RequestMatch],
) -> Result<PathModifier, String> {
    match kind {
        HttpRouteRulesFiltersRequestRedirectPathType::ReplaceFullPath => {
            Ok(PathModifier::ReplaceFullPath(
                full.cloned()
                    .ok_or("ReplaceFullPath needs replaceFullPath")?,
            ))
        }
        HttpRouteRulesFiltersRequestRedirectPathType::ReplacePrefixMatch => {
            // "ReplacePrefixMatch is only compatible with a PathPrefix HTTPRouteMatch."
            if matches.iter().any(|m| m.prefix().is_none()) {
                return Err(
                    "ReplacePrefixMatch needs every match of the rule to be a PathPrefix match"
                        .into(),
                );
            }
            Ok(PathModifier::ReplacePrefixMatch(
                prefix
                    .cloned()
                    .ok_or("ReplacePrefixMatch needs replacePrefixMatch")?,
            ))
        }
    }
}

fn redirect(
    r: &HttpRouteRulesFiltersRequestRedirect,
    matches: &[RequestMatch],
) -> Result<Redirect, String> {
    let HttpRouteRulesFiltersRequestRedirect {
        hostname,
        path,
        port,
        scheme,
        status_code,
    } = r;
    let status = match status_code.unwrap_or(302) {
        code @ (301 | 302 | 303 | 307 | 308) => {
            StatusCode::from_u16(code as u16).map_err(|e| e.to_string())?
        }
        other => return Err(format!("redirect statusCode {other} is not supported")),
    };
    let path = match path {
        Some(HttpRouteRulesFiltersRequestRedirectPath {
            replace_full_path,
            replace_prefix_match,
            r#type,
        }) => Some(path_modifier(
            r#type,
            replace_full_path.as_ref(),
            replace_prefix_match.as_ref(),
            matches,
        )?),
        None => None,
    };
    Ok(Redirect {
        scheme: scheme.as_ref().map(|s| match s {
            HttpRouteRulesFiltersRequestRedirectScheme::Http => "http",
            HttpRouteRulesFiltersRequestRedirectScheme::Https => "https",
        }),
        hostname: hostname.clone(),
        port: port
            .map(|p| u16::try_from(p).map_err(|_| format!("redirect port {p} is out of range")))
            .transpose()?,
        path,
        status,
    })
}

fn rewrite(
    r: &HttpRouteRulesFiltersUrlRewrite,
    matches: &[RequestMatch],
) -> Result<UrlRewrite, String> {
    let HttpRouteRulesFiltersUrlRewrite { hostname, path } = r;
    let path = match path {
        Some(p) => {
            let kind = match p.r#type {
                HttpRouteRulesFiltersUrlRewritePathType::ReplaceFullPath => {
                    HttpRouteRulesFiltersRequestRedirectPathType::ReplaceFullPath
                }
                HttpRouteRulesFiltersUrlRewritePathType::ReplacePrefixMatch => {
                    HttpRouteRulesFiltersRequestRedirectPathType::ReplacePrefixMatch
                }
            };
            Some(path_modifier(
                &kind,
                p.replace_full_path.as_ref(),
                p.replace_prefix_match.as_ref(),
                matches,
            )?)
        }
        None => None,
    };
    Ok(UrlRewrite {
        hostname: hostname
            .as_deref()
            .map(|h| {
                HeaderValue::from_str(h).map_err(|_| format!("invalid rewrite hostname {h:?}"))
            })
            .transpose()?,
        path,
    })
}

fn internal_error(message: &str) -> Arc<FixedResponse> {
    Arc::new(FixedResponse {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        headers: vec![],
        body: Bytes::from(format!("{message}\n")),
    })
}

/// Compiles a rule's (or a backendRef's) filters. `Err` drops the rule.
fn compile_filters(
    index: &Index,
    namespace: &str,
    filters: &[HttpRouteRulesFilters],
    matches: &[RequestMatch],
    unresolved: &mut Vec<Problem>,
) -> Result<Filters, String> {
    let mut out = Filters::default();
    // "Specifying the same filter multiple times is not supported unless
    // explicitly indicated in the filter" (HTTPRouteRule.filters): only
    // RequestMirror may repeat here. The spec allows repeated ExtensionRefs,
    // but the one extension Gatehouse has (a DirectResponse) answers the
    // request, so a second one could never run: refused, not ignored.
    let mut seen: Vec<&HttpRouteRulesFiltersType> = Vec::new();
    for f in filters {
        if f.r#type != HttpRouteRulesFiltersType::RequestMirror {
            if seen.contains(&&f.r#type) {
                return Err(format!("filter type {:?} appears more than once", f.r#type));
            }
            seen.push(&f.r#type);
        }
        let HttpRouteRulesFilters {
            cors,
            extension_ref,
            request_header_modifier,
            request_mirror,
            request_redirect,
            response_header_modifier,
            r#type,
            url_rewrite,
        } = f;
        let missing = |field: &str| format!("filter of type {type:?} needs {field}", type = r#type);
        match r#type {
            HttpRouteRulesFiltersType::RequestHeaderModifier => {
                let m = request_header_modifier
                    .as_ref()
                    .ok_or_else(|| missing("requestHeaderModifier"))?;
                out.request_headers = Some(header_modifier(m)?);
            }
            HttpRouteRulesFiltersType::ResponseHeaderModifier => {
                let m = response_header_modifier
                    .as_ref()
                    .ok_or_else(|| missing("responseHeaderModifier"))?;
                out.response_headers = Some(header_modifier(&same_shape(m)?)?);
            }
            HttpRouteRulesFiltersType::RequestRedirect => {
                let r = request_redirect
                    .as_ref()
                    .ok_or_else(|| missing("requestRedirect"))?;
                out.redirect = Some(redirect(r, matches)?);
            }
            HttpRouteRulesFiltersType::UrlRewrite => {
                let r = url_rewrite.as_ref().ok_or_else(|| missing("urlRewrite"))?;
                out.rewrite = Some(rewrite(r, matches)?);
            }
            HttpRouteRulesFiltersType::RequestMirror => {
                let m = request_mirror
                    .as_ref()
                    .ok_or_else(|| missing("requestMirror"))?;
                let b = &m.backend_ref;
                let input = BackendRefInput {
                    group: b.group.as_deref().unwrap_or(""),
                    kind: b.kind.as_deref().unwrap_or("Service"),
                    name: &b.name,
                    namespace: b.namespace.as_deref(),
                    port: b.port,
                };
                let target = match resolve(index, namespace, input) {
                    Ok(group) => Some(group),
                    Err(problem) => {
                        unresolved.push(Problem::new(
                            problem.reason,
                            format!("mirror: {}", problem.message),
                        ));
                        None
                    }
                };
                let (numerator, denominator) = match (&m.fraction, m.percent) {
                    (Some(f), _) => (f.numerator, f.denominator.unwrap_or(100)),
                    (None, Some(p)) => (p, 100),
                    (None, None) => (100, 100),
                };
                if denominator <= 0 || numerator < 0 || numerator > denominator {
                    return Err(format!(
                        "mirror fraction {numerator}/{denominator} is not valid"
                    ));
                }
                out.mirrors.push(Mirror {
                    target,
                    numerator: numerator as u32,
                    denominator: denominator as u32,
                });
            }
            HttpRouteRulesFiltersType::ExtensionRef => {
                let e = extension_ref
                    .as_ref()
                    .ok_or_else(|| missing("extensionRef"))?;
                // "If a reference to a custom filter type cannot be resolved,
                // the filter MUST NOT be skipped. Instead, requests that would
                // have been processed by that filter MUST receive a HTTP error
                // response."
                out.direct_response = Some(match (e.group.as_str(), e.kind.as_str()) {
                    (GATEHOUSE_GROUP, "DirectResponse") => match index
                        .direct_response(namespace, &e.name)
                    {
                        Some(dr) => fixed_response(dr)?,
                        None => {
                            let msg = format!("DirectResponse {namespace}/{} not found", e.name);
                            unresolved.push(Problem::new("BackendNotFound", msg.clone()));
                            internal_error(&msg)
                        }
                    },
                    (group, kind) => {
                        let msg = format!(
                            "extensionRef kind {group}/{kind} is not supported; use gatehouse.dev/DirectResponse"
                        );
                        unresolved.push(Problem::new("InvalidKind", msg.clone()));
                        internal_error(&msg)
                    }
                });
            }
            HttpRouteRulesFiltersType::Cors => {
                let _ = cors;
                return Err("the CORS filter is not supported yet".into());
            }
        }
    }
    if out.redirect.is_some() && out.rewrite.is_some() {
        return Err("a rule cannot have both RequestRedirect and URLRewrite".into());
    }
    Ok(out)
}

fn fixed_response(dr: &crate::policy::DirectResponse) -> Result<Arc<FixedResponse>, String> {
    let spec = &dr.spec;
    let status = StatusCode::from_u16(spec.status)
        .ok()
        .filter(|s| s.as_u16() >= 200)
        .ok_or_else(|| format!("DirectResponse status {} is not valid", spec.status))?;
    Ok(Arc::new(FixedResponse {
        status,
        headers: header_pairs(
            spec.headers
                .iter()
                .map(|h| (h.name.clone(), h.value.clone())),
        )?,
        body: Bytes::from(spec.body.clone().unwrap_or_default()),
    }))
}

fn compile_backend(
    index: &Index,
    namespace: &str,
    backend: &HttpRouteRulesBackendRefs,
    matches: &[RequestMatch],
    unresolved: &mut Vec<Problem>,
) -> Result<WeightedBackend, String> {
    let HttpRouteRulesBackendRefs {
        filters,
        group,
        kind,
        name,
        namespace: ref_namespace,
        port,
        weight,
    } = backend;
    let weight = u32::try_from(weight.unwrap_or(1))
        .map_err(|_| "backendRef weight must not be negative".to_string())?;
    let rule_filters: Vec<HttpRouteRulesFilters> = match filters {
        Some(f) => same_shape(f)?,
        None => Vec::new(),
    };
    let filters = compile_filters(index, namespace, &rule_filters, matches, unresolved)?;
    if filters.redirect.is_some() || filters.direct_response.is_some() {
        return Err("backendRef filters may not redirect or answer directly".into());
    }
    let input = BackendRefInput {
        group: group.as_deref().unwrap_or(""),
        kind: kind.as_deref().unwrap_or("Service"),
        name,
        namespace: ref_namespace.as_deref(),
        port: *port,
    };
    let target = match resolve(index, namespace, input) {
        Ok(group) => BackendTarget::Endpoints(group),
        Err(problem) => {
            let reason = problem.message.clone();
            unresolved.push(problem);
            BackendTarget::Invalid { reason }
        }
    };
    Ok(WeightedBackend {
        weight,
        target,
        filters,
    })
}

fn parse_duration(field: &str, value: &str) -> Result<Option<Duration>, String> {
    let d = gateway_api::Duration::from_str(value)
        .map_err(|e| format!("timeouts.{field} {value:?}: {e}"))?;
    // "Setting a timeout to the zero duration (e.g. "0s") SHOULD disable the timeout."
    if d.is_zero() {
        return Ok(None);
    }
    Ok(Some(Duration::from_nanos(
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
    )))
}

fn compile_timeouts(t: Option<&HttpRouteRulesTimeouts>) -> Result<Timeouts, String> {
    let Some(HttpRouteRulesTimeouts {
        backend_request,
        request,
    }) = t
    else {
        return Ok(Timeouts::default());
    };
    let request = request
        .as_deref()
        .map(|v| parse_duration("request", v))
        .transpose()?
        .flatten();
    let backend_request = backend_request
        .as_deref()
        .map(|v| parse_duration("backendRequest", v))
        .transpose()?
        .flatten();
    if let (Some(r), Some(b)) = (request, backend_request)
        && b > r
    {
        return Err("timeouts.backendRequest must not be longer than timeouts.request".into());
    }
    Ok(Timeouts {
        request,
        backend_request,
    })
}
