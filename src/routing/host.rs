//! Hostname lookup: exact names, wildcard suffixes and a catch-all, tried
//! from the most specific to the least.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Serialize;

/// Values keyed by hostname pattern (`foo.example.com`, `*.example.com`, or
/// none for any host).
#[derive(Clone, Debug, Serialize)]
pub struct HostMap<T> {
    exact: HashMap<String, T>,
    /// `(".example.com", value)` for `*.example.com`, longest suffix first.
    wildcards: Vec<(String, T)>,
    any: Option<T>,
}

impl<T> Default for HostMap<T> {
    fn default() -> Self {
        Self {
            exact: HashMap::new(),
            wildcards: Vec::new(),
            any: None,
        }
    }
}

impl<T> HostMap<T> {
    /// The value for `pattern`, created with `make` when absent.
    pub fn entry(&mut self, pattern: Option<&str>, make: impl FnOnce() -> T) -> &mut T {
        match pattern {
            None => self.any.get_or_insert_with(make),
            Some(p) if p.starts_with("*.") => {
                let suffix = &p[1..];
                let pos = match self.wildcard(p) {
                    Some(pos) => pos,
                    None => {
                        let pos = self
                            .wildcards
                            .iter()
                            .position(|(s, _)| s.len() < suffix.len())
                            .unwrap_or(self.wildcards.len());
                        self.wildcards
                            .insert(pos, (suffix.to_ascii_lowercase(), make()));
                        pos
                    }
                };
                &mut self.wildcards[pos].1
            }
            // Most names arrive lowercased already: find them without
            // allocating a lowercase copy.
            Some(p) if !p.bytes().any(|b| b.is_ascii_uppercase()) => {
                if !self.exact.contains_key(p) {
                    self.exact.insert(p.to_string(), make());
                }
                self.exact.get_mut(p).expect("inserted above when absent")
            }
            Some(p) => self
                .exact
                .entry(p.to_ascii_lowercase())
                .or_insert_with(make),
        }
    }

    /// The values whose pattern matches `host` (already passed through
    /// [`normalize_host`]), most specific first: the exact name, then
    /// wildcards by descending length, then the catch-all.
    pub fn candidates<'a>(&'a self, host: &str) -> impl Iterator<Item = &'a T> {
        let exact = self.exact.get(host);
        let wild = self
            .wildcards
            .iter()
            .filter(move |(suffix, _)| host.len() > suffix.len() && host.ends_with(suffix.as_str()))
            .map(|(_, v)| v);
        exact.into_iter().chain(wild).chain(self.any.as_ref())
    }

    /// The most specific value matching `host`.
    pub fn best(&self, host: &str) -> Option<&T> {
        let host = normalize_host(host);
        if let Some(v) = self.exact.get(host.as_ref()) {
            return Some(v);
        }
        self.wildcards
            .iter()
            .find(|(suffix, _)| host.len() > suffix.len() && host.ends_with(suffix.as_str()))
            .map(|(_, v)| v)
            .or(self.any.as_ref())
    }

    /// Every value, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.exact
            .values()
            .chain(self.wildcards.iter().map(|(_, v)| v))
            .chain(self.any.as_ref())
    }

    /// Every value with its pattern (`None` for the catch-all).
    pub fn keyed(&self) -> impl Iterator<Item = (Option<String>, &T)> {
        self.exact
            .iter()
            .map(|(k, v)| (Some(k.clone()), v))
            .chain(
                self.wildcards
                    .iter()
                    .map(|(s, v)| (Some(format!("*{s}")), v)),
            )
            .chain(self.any.iter().map(|v| (None, v)))
    }

    /// Every value mutably, in no particular order.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.exact
            .values_mut()
            .chain(self.wildcards.iter_mut().map(|(_, v)| v))
            .chain(self.any.as_mut())
    }

    /// The index of the wildcard pattern `pattern` (`*.example.com`), in
    /// any case.
    fn wildcard(&self, pattern: &str) -> Option<usize> {
        let suffix = &pattern[1..];
        self.wildcards
            .iter()
            .position(|(s, _)| s.eq_ignore_ascii_case(suffix))
    }

    /// The value for `pattern`, if any.
    pub fn get_mut(&mut self, pattern: Option<&str>) -> Option<&mut T> {
        match pattern {
            None => self.any.as_mut(),
            Some(p) if p.starts_with("*.") => {
                let pos = self.wildcard(p)?;
                Some(&mut self.wildcards[pos].1)
            }
            Some(p) => self.exact.get_mut(lowercase(p).as_ref()),
        }
    }

    /// The value for `pattern`, if any.
    pub fn get(&self, pattern: Option<&str>) -> Option<&T> {
        match pattern {
            None => self.any.as_ref(),
            Some(p) if p.starts_with("*.") => Some(&self.wildcards[self.wildcard(p)?].1),
            Some(p) => self.exact.get(lowercase(p).as_ref()),
        }
    }

    /// Removes the value for `pattern`.
    pub fn remove(&mut self, pattern: Option<&str>) -> Option<T> {
        match pattern {
            None => self.any.take(),
            Some(p) if p.starts_with("*.") => {
                let pos = self.wildcard(p)?;
                Some(self.wildcards.remove(pos).1)
            }
            Some(p) => self.exact.remove(lowercase(p).as_ref()),
        }
    }

    /// The same patterns with every value converted by `f`, which is also
    /// handed the value `previous` has for the same pattern, if any; a
    /// pattern whose value `f` turns into `None` is left out.
    pub fn map_with<U, P>(
        &self,
        previous: Option<&HostMap<P>>,
        mut f: impl FnMut(&T, Option<&P>) -> Option<U>,
    ) -> HostMap<U> {
        let prev_wildcards: HashMap<&str, &P> = previous
            .iter()
            .flat_map(|p| p.wildcards.iter().map(|(k, v)| (k.as_str(), v)))
            .collect();
        let exact = self
            .exact
            .iter()
            .filter_map(|(k, v)| {
                let p = previous.and_then(|p| p.exact.get(k));
                Some((k.clone(), f(v, p)?))
            })
            .collect();
        let wildcards = self
            .wildcards
            .iter()
            .filter_map(|(k, v)| {
                let p = prev_wildcards.get(k.as_str()).copied();
                Some((k.clone(), f(v, p)?))
            })
            .collect();
        let any = self
            .any
            .as_ref()
            .and_then(|v| f(v, previous.and_then(|p| p.any.as_ref())));
        HostMap {
            exact,
            wildcards,
            any,
        }
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wildcards.is_empty() && self.any.is_none()
    }
}

fn lowercase(name: &str) -> Cow<'_, str> {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

/// Lowercases a host and strips a port and a trailing dot, allocating only
/// when the host has upper-case letters.
pub fn normalize_host(host: &str) -> Cow<'_, str> {
    let host = strip_port(host);
    let host = host.strip_suffix('.').unwrap_or(host);
    lowercase(host)
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // An IPv6 literal: `[::1]:8080`.
        return host
            .split_once(']')
            .map_or(host, |(h, _)| &host[..h.len() + 1]);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// Whether `host` (a concrete name) matches `pattern` (exact or `*.` wildcard).
pub fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
        None => pattern.eq_ignore_ascii_case(host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_differing_in_case_share_an_entry() {
        let mut map: HostMap<Vec<i32>> = HostMap::default();
        map.entry(Some("*.Example.com"), Vec::new).push(1);
        map.entry(Some("*.example.COM"), Vec::new).push(2);
        map.entry(Some("A.example.com"), Vec::new).push(3);
        map.entry(Some("a.example.com"), Vec::new).push(4);
        let keyed: Vec<(Option<String>, Vec<i32>)> =
            map.keyed().map(|(k, v)| (k, v.clone())).collect();
        assert_eq!(keyed.len(), 2, "{keyed:?}");
        assert_eq!(map.best("a.example.com"), Some(&vec![3, 4]));
        assert_eq!(map.best("b.example.com"), Some(&vec![1, 2]));
    }

    #[test]
    fn patterns_are_found_and_removed_in_any_case() {
        let mut map: HostMap<i32> = HostMap::default();
        *map.entry(None, || 0) = 1;
        *map.entry(Some("*.example.com"), || 0) = 2;
        *map.entry(Some("a.example.com"), || 0) = 3;
        assert_eq!(map.get(Some("*.EXAMPLE.com")), Some(&2));
        assert_eq!(map.get(Some("A.example.com")), Some(&3));
        assert_eq!(map.get(Some("b.example.com")), None);
        assert_eq!(map.get(Some("*.other.com")), None);
        *map.get_mut(Some("*.Example.com")).unwrap() = 20;
        *map.get_mut(None).unwrap() = 10;
        assert_eq!(map.remove(Some("*.example.COM")), Some(20));
        assert_eq!(map.remove(Some("A.Example.com")), Some(3));
        assert_eq!(map.remove(Some("a.example.com")), None);
        assert_eq!(
            map.best("a.example.com"),
            Some(&10),
            "only the catch-all is left"
        );
        assert_eq!(map.remove(None), Some(10));
        assert!(map.is_empty());
    }

    #[test]
    fn most_specific_first() {
        let mut map = HostMap::default();
        *map.entry(None, || 0) = 1;
        *map.entry(Some("*.example.com"), || 0) = 2;
        *map.entry(Some("*.a.example.com"), || 0) = 3;
        *map.entry(Some("x.a.example.com"), || 0) = 4;
        let host = normalize_host("X.a.Example.com:8080");
        let got: Vec<i32> = map.candidates(&host).copied().collect();
        assert_eq!(got, vec![4, 3, 2, 1]);
        let got: Vec<i32> = map.candidates("b.example.com").copied().collect();
        assert_eq!(got, vec![2, 1]);
        // A wildcard never matches the bare parent domain.
        let got: Vec<i32> = map.candidates("example.com").copied().collect();
        assert_eq!(got, vec![1]);
        assert_eq!(map.best("y.a.example.com."), Some(&3));
    }

    #[test]
    fn strips_ports_from_ipv6_and_names() {
        assert_eq!(normalize_host("[::1]:80"), "[::1]");
        assert_eq!(normalize_host("Foo.com:443"), "foo.com");
        assert_eq!(normalize_host("foo.com"), "foo.com");
    }
}
