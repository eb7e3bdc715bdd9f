//! Routing: the ordered `[[route]]` table. The first route whose `match` holds takes the
//! request; a route without `match` takes every request. Matchers (all given ones must hold):
//! `host` (exact, or `*.suffix` matching any subdomain), `path_prefix`, `path_regex` (on the
//! path without its query), `method` (one or several), `header` (name + value regex).
//! Per-route cache policy: `cache = false` passes, `ttl` stands in for missing freshness
//! information, `cache_key` headers extend the cache key, `store_set_cookie`.

use std::time::Duration;

use http::{HeaderMap, HeaderName, Method};
use regex::Regex;

use super::section::{MatchConfig, RouteConfig};

/// A compiled route.
#[derive(Debug)]
pub struct Route {
    /// Position in the config (0-based), for logs and stats.
    pub index: usize,
    pub pool: String,
    pub cache: bool,
    pub ttl: Option<Duration>,
    pub key_headers: Vec<HeaderName>,
    pub store_set_cookie: bool,
    matcher: Option<Matcher>,
}

#[derive(Debug)]
struct Matcher {
    host: Option<HostMatch>,
    path_prefix: Option<String>,
    path_regex: Option<Regex>,
    methods: Option<Vec<Method>>,
    header: Option<(HeaderName, Regex)>,
}

#[derive(Debug)]
enum HostMatch {
    Exact(String),
    /// `*.example.com`: stored as ".example.com".
    Suffix(String),
}

/// Why a route can't be compiled.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RouteError {
    #[error("route {index}: invalid regex {regex:?}: {reason}")]
    Regex {
        index: usize,
        regex: String,
        reason: String,
    },
    #[error("route {index}: invalid header name {0:?}", .name)]
    HeaderName { index: usize, name: String },
    #[error("route {index}: invalid method {method:?}")]
    Method { index: usize, method: String },
    #[error("route {index}: invalid host pattern {host:?}")]
    Host { index: usize, host: String },
    #[error("no route takes every request: add a last route without `match`")]
    NoDefault,
}

/// The routes of a config, in order.
#[derive(Debug)]
pub struct RouteTable {
    routes: Vec<Route>,
}

/// What routing looks at in a request.
pub struct RouteInput<'a> {
    pub method: &'a Method,
    /// Host without port, lowercase.
    pub host: &'a str,
    pub path: &'a str,
    pub headers: &'a HeaderMap,
}

impl RouteTable {
    /// Compile the routes; the table must end with a route without `match`.
    pub fn new(routes: &[RouteConfig]) -> Result<RouteTable, RouteError> {
        let mut out = Vec::with_capacity(routes.len());
        for (index, r) in routes.iter().enumerate() {
            let matcher = match &r.matcher {
                Some(m) => Some(compile(index, m.get_ref())?),
                None => None,
            };
            let mut key_headers = Vec::new();
            if let Some(k) = &r.cache_key {
                for name in k.headers.get_ref() {
                    key_headers.push(HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                        RouteError::HeaderName {
                            index,
                            name: name.clone(),
                        }
                    })?);
                }
            }
            out.push(Route {
                index,
                pool: r.pool.get_ref().clone(),
                cache: r.cache,
                ttl: r.ttl,
                key_headers,
                store_set_cookie: r.store_set_cookie,
                matcher,
            });
        }
        if out.last().is_none_or(|r| r.matcher.is_some()) {
            return Err(RouteError::NoDefault);
        }
        Ok(RouteTable { routes: out })
    }

    /// Compile one route on its own (config validation): its matcher and cache-key fields.
    pub fn check_one(index: usize, r: &RouteConfig) -> Result<(), RouteError> {
        if let Some(m) = &r.matcher {
            compile(index, m.get_ref())?;
        }
        if let Some(k) = &r.cache_key {
            for name in k.headers.get_ref() {
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| RouteError::HeaderName {
                    index,
                    name: name.clone(),
                })?;
            }
        }
        Ok(())
    }

    /// The route that takes this request (the table always ends with a default route).
    pub fn select(&self, input: &RouteInput<'_>) -> &Route {
        for r in &self.routes {
            match &r.matcher {
                None => return r,
                Some(m) if m.matches(input) => return r,
                Some(_) => {}
            }
        }
        // `new` guarantees a default route; the last route is it.
        &self.routes[self.routes.len() - 1]
    }

    /// Does any route look at request headers? (The raw fast path can't route those.)
    pub fn uses_headers(&self) -> bool {
        self.routes
            .iter()
            .any(|r| r.matcher.as_ref().is_some_and(|m| m.header.is_some()))
    }

    /// Every route, in order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Whether a route adds `cache_key` fields to its keys.
    pub fn extends_keys(&self) -> bool {
        self.routes.iter().any(|r| !r.key_headers.is_empty())
    }
}

fn compile(index: usize, m: &MatchConfig) -> Result<Matcher, RouteError> {
    let regex = |s: &str| {
        Regex::new(s).map_err(|e| RouteError::Regex {
            index,
            regex: s.to_string(),
            reason: e.to_string(),
        })
    };
    let host = match &m.host {
        None => None,
        Some(h) => {
            let h = h.get_ref().trim().to_ascii_lowercase();
            if let Some(suffix) = h.strip_prefix("*.") {
                if suffix.is_empty() || suffix.contains('*') {
                    return Err(RouteError::Host { index, host: h });
                }
                Some(HostMatch::Suffix(format!(".{suffix}")))
            } else if h.is_empty() || h.contains('*') {
                return Err(RouteError::Host { index, host: h });
            } else {
                Some(HostMatch::Exact(h))
            }
        }
    };
    let methods = match &m.method {
        None => None,
        Some(ms) => {
            let mut v = Vec::new();
            for s in ms.get_ref().to_vec() {
                let method =
                    Method::from_bytes(s.to_ascii_uppercase().as_bytes()).map_err(|_| {
                        RouteError::Method {
                            index,
                            method: s.clone(),
                        }
                    })?;
                v.push(method);
            }
            Some(v)
        }
    };
    let header = match &m.header {
        None => None,
        Some(h) => {
            let h = h.get_ref();
            let name =
                HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| RouteError::HeaderName {
                    index,
                    name: h.name.clone(),
                })?;
            Some((name, regex(&h.regex)?))
        }
    };
    Ok(Matcher {
        host,
        path_prefix: m.path_prefix.as_ref().map(|p| p.get_ref().clone()),
        path_regex: match &m.path_regex {
            Some(r) => Some(regex(r.get_ref())?),
            None => None,
        },
        methods,
        header,
    })
}

impl Matcher {
    fn matches(&self, r: &RouteInput<'_>) -> bool {
        if let Some(h) = &self.host {
            let ok = match h {
                HostMatch::Exact(e) => r.host == e,
                HostMatch::Suffix(s) => r.host.ends_with(s.as_str()),
            };
            if !ok {
                return false;
            }
        }
        if let Some(p) = &self.path_prefix {
            if !r.path.starts_with(p.as_str()) {
                return false;
            }
        }
        if let Some(re) = &self.path_regex {
            if !re.is_match(r.path) {
                return false;
            }
        }
        if let Some(ms) = &self.methods {
            if !ms.contains(r.method) {
                return false;
            }
        }
        if let Some((name, re)) = &self.header {
            let any = r
                .headers
                .get_all(name)
                .iter()
                .any(|v| v.to_str().is_ok_and(|s| re.is_match(s)));
            if !any {
                return false;
            }
        }
        true
    }
}

/// The host part of a cache key's authority ("example.com:8080" -> "example.com").
pub fn host_without_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.find(']').map_or(authority, |i| &authority[..=i]);
    }
    crate::policy::target::before(authority, b':')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(toml_routes: &str) -> RouteTable {
        #[derive(serde::Deserialize)]
        struct T {
            route: Vec<RouteConfig>,
        }
        let t: T = toml::from_str(toml_routes).unwrap();
        RouteTable::new(&t.route).unwrap()
    }

    fn pick<'a>(
        t: &'a RouteTable,
        method: &str,
        host: &str,
        path: &str,
        h: &[(&str, &str)],
    ) -> &'a str {
        let mut headers = HeaderMap::new();
        for (k, v) in h {
            headers.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        &t.select(&RouteInput {
            method: &m,
            host,
            path,
            headers: &headers,
        })
        .pool
    }

    const ROUTES: &str = r#"
        [[route]]
        match = { host = "img.example.com" }
        pool = "images"
        [[route]]
        match = { host = "*.cdn.example" }
        pool = "cdn"
        [[route]]
        match = { path_prefix = "/static/" }
        pool = "static"
        [[route]]
        match = { path_regex = '\.(png|css|js)$' }
        pool = "static"
        [[route]]
        match = { method = ["POST", "PUT"] }
        pool = "writes"
        [[route]]
        match = { header = { name = "x-tier", regex = "^gold$" } }
        pool = "gold"
        [[route]]
        pool = "dynamic"
    "#;

    #[test]
    fn each_matcher_routes_and_the_first_match_wins() {
        let t = table(ROUTES);
        assert_eq!(
            pick(&t, "GET", "img.example.com", "/static/a", &[]),
            "images"
        );
        assert_eq!(pick(&t, "GET", "a.cdn.example", "/x", &[]), "cdn");
        assert_eq!(pick(&t, "GET", "a.b.cdn.example", "/x", &[]), "cdn");
        assert_eq!(pick(&t, "GET", "cdn.example", "/x", &[]), "dynamic");
        assert_eq!(pick(&t, "GET", "www", "/static/a", &[]), "static");
        assert_eq!(pick(&t, "GET", "www", "/a/b.css", &[]), "static");
        assert_eq!(pick(&t, "GET", "www", "/a/b.cssx", &[]), "dynamic");
        assert_eq!(pick(&t, "PUT", "www", "/a", &[]), "writes");
        assert_eq!(pick(&t, "GET", "www", "/a", &[("x-tier", "gold")]), "gold");
        assert_eq!(
            pick(&t, "GET", "www", "/a", &[("x-tier", "golden")]),
            "dynamic"
        );
        assert_eq!(pick(&t, "GET", "www", "/a", &[]), "dynamic");
    }

    #[test]
    fn all_conditions_of_one_match_must_hold() {
        let t = table(
            r#"
            [[route]]
            match = { host = "a", path_prefix = "/x", method = "GET" }
            pool = "both"
            [[route]]
            pool = "default"
            "#,
        );
        assert_eq!(pick(&t, "GET", "a", "/x1", &[]), "both");
        assert_eq!(pick(&t, "POST", "a", "/x1", &[]), "default");
        assert_eq!(pick(&t, "GET", "b", "/x1", &[]), "default");
    }

    #[test]
    fn a_table_without_a_default_route_is_refused() {
        #[derive(serde::Deserialize)]
        struct T {
            route: Vec<RouteConfig>,
        }
        let t: T =
            toml::from_str("[[route]]\nmatch = { path_prefix = \"/a\" }\npool = \"p\"\n").unwrap();
        assert_eq!(
            RouteTable::new(&t.route).unwrap_err(),
            RouteError::NoDefault
        );
        let t: T = toml::from_str(
            "[[route]]\nmatch = { path_regex = \"(\" }\npool = \"p\"\n[[route]]\npool = \"q\"\n",
        )
        .unwrap();
        assert!(matches!(
            RouteTable::new(&t.route),
            Err(RouteError::Regex { index: 0, .. })
        ));
    }

    #[test]
    fn hosts_lose_their_port() {
        assert_eq!(host_without_port("a.example:8080"), "a.example");
        assert_eq!(host_without_port("a.example"), "a.example");
        assert_eq!(host_without_port("[::1]:80"), "[::1]");
    }
}
