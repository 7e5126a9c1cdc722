//! A human-readable listing of a routing table, for `gatehouse validate`.

use std::fmt::Write;

use super::backend::BackendTarget;
use super::matcher::{PathMatch, ValueMatch};
use super::{RouteEntry, RouteTable};

fn value(v: &ValueMatch) -> String {
    match v {
        ValueMatch::Exact(s) => format!("={s}"),
        ValueMatch::Regex(re) => format!("~{}", re.as_str()),
    }
}

fn entry_line(entry: &RouteEntry) -> String {
    let m = &entry.matcher;
    let mut line = match &m.path {
        PathMatch::Exact(p) => format!("Exact {p}"),
        PathMatch::Prefix(p) if p.is_empty() => "PathPrefix /".to_string(),
        PathMatch::Prefix(p) => format!("PathPrefix {p}"),
        PathMatch::Regex(re) => format!("RegularExpression {}", re.as_str()),
    };
    if let Some(method) = &m.method {
        let _ = write!(line, " method={method}");
    }
    for h in &m.headers {
        let _ = write!(line, " header:{}{}", h.name, value(&h.value));
    }
    for q in &m.query {
        let _ = write!(line, " query:{}{}", q.name, value(&q.value));
    }
    let rule = &entry.rule;
    let _ = write!(line, "  -> {} rule {}", rule.route_label, rule.rule_index);
    let f = &rule.filters;
    if f.redirect.is_some() {
        line.push_str(" redirect");
    } else if let Some(fixed) = &f.direct_response {
        let _ = write!(line, " direct-response {}", fixed.status.as_u16());
    } else {
        let backends: Vec<String> = rule
            .backends
            .backends
            .iter()
            .map(|b| match &b.target {
                BackendTarget::Endpoints(g) => {
                    format!(
                        "{} (weight {}, {} endpoints)",
                        g.name,
                        b.weight,
                        g.endpoints.len()
                    )
                }
                BackendTarget::Invalid { .. } => {
                    format!("<invalid> (weight {}, answers 500)", b.weight)
                }
            })
            .collect();
        if backends.is_empty() {
            line.push_str(" no backends (answers 500)");
        } else {
            let _ = write!(line, " {}", backends.join(", "));
        }
    }
    line
}

/// Lists every bound address, its listeners and hosts (sorted by name, for a
/// stable listing) and, under each host, the route entries in the order
/// they are tried.
pub fn describe(table: &RouteTable) -> String {
    let mut out = String::new();
    for (addr, port) in &table.listeners {
        let _ = writeln!(out, "{addr} {:?}", port.protocol);
        let mut listeners: Vec<_> = port.listeners.values().collect();
        listeners.sort_by(|a, b| a.gateway.cmp(&b.gateway).then(a.listener.cmp(&b.listener)));
        for listener in listeners {
            let _ = writeln!(
                out,
                "  gateway {} listener {}",
                listener.gateway_label, listener.listener
            );
            let mut hosts: Vec<_> = listener.hosts.keyed().collect();
            hosts.sort_by(|a, b| a.0.cmp(&b.0));
            for (host, entries) in hosts {
                let _ = writeln!(out, "    host {}", host.as_deref().unwrap_or("*"));
                for entry in entries.entries() {
                    let _ = writeln!(out, "      {}", entry_line(entry));
                }
            }
        }
    }
    if out.is_empty() {
        out.push_str("(no listeners)\n");
    }
    out
}
