//! One request's access record and its line (the field order is the module doc's of
//! `crate::access`; the formats are `strait_lb::accesslog`'s).

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use http::{HeaderValue, Method};
use strait_lb::accesslog::{Line, Record, Value};

/// The `Cache-Status` sent, as cheaply as each path knows it.
#[derive(Debug, Clone)]
pub enum CacheField {
    /// None was sent (e.g. an error answered before the cache was consulted).
    None,
    /// A fast-path fresh hit: `<node>; hit; ttl=<ttl>`, written by the writer.
    FastHit { ttl: i64 },
    /// The field as sent.
    Header(HeaderValue),
}

thread_local! {
    /// The writer's scratch for a fast hit's `Cache-Status`.
    static FAST_HIT: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// The pool that took a request (shared, not copied: its name is read by the writer).
#[derive(Clone)]
pub struct PoolRef(pub std::sync::Arc<crate::origin::Pool>);

impl std::fmt::Debug for PoolRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.name)
    }
}

/// One client request.
#[derive(Debug, Clone)]
pub struct Request {
    pub time: SystemTime,
    pub client: Option<SocketAddr>,
    pub method: Method,
    /// The host followed by the path: `host_path[..host_len]` is the host.
    pub host_path: String,
    pub host_len: usize,
    pub status: u16,
    pub bytes: u64,
    pub duration: Duration,
    pub ttfb: Duration,
    pub cache: CacheField,
    pub route: Option<usize>,
    pub pool: Option<PoolRef>,
    pub server: Option<SocketAddr>,
}

impl Request {
    fn host(&self) -> &str {
        self.host_path.get(..self.host_len).unwrap_or("")
    }

    fn path(&self) -> &str {
        self.host_path.get(self.host_len..).unwrap_or("")
    }
}

impl Record for Request {
    /// The node's id (the fast path's `Cache-Status` names it).
    type Env = String;

    fn write(&self, node: &String, line: &mut Line) {
        line.field("time", Value::Time(self.time));
        line.field("client", self.client.map_or(Value::Absent, Value::Addr));
        line.field("method", Value::Str(self.method.as_str()));
        line.field("host", Value::Str(self.host()));
        line.field("path", Value::Str(self.path()));
        line.field("status", Value::Num(u64::from(self.status)));
        line.field("bytes", Value::Num(self.bytes));
        line.field("duration_ms", Value::Millis(self.duration));
        line.field("ttfb_ms", Value::Millis(self.ttfb));
        match &self.cache {
            CacheField::None => line.field("cache", Value::Absent),
            CacheField::FastHit { ttl } => FAST_HIT.with(|v| {
                let mut v = v.borrow_mut();
                v.clear();
                v.push_str(node);
                v.push_str("; hit; ttl=");
                v.push_str(itoa::Buffer::new().format(*ttl));
                line.field("cache", Value::Str(&v));
            }),
            CacheField::Header(h) => {
                let v = String::from_utf8_lossy(h.as_bytes());
                line.field("cache", Value::Str(&v));
            }
        }
        line.field(
            "route",
            self.route.map_or(Value::Absent, |r| Value::Num(r as u64)),
        );
        line.opt_str("pool", self.pool.as_ref().map(|p| p.0.name.as_str()));
        line.field("server", self.server.map_or(Value::Absent, Value::Addr));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strait_lb::accesslog::Format;

    fn record() -> Request {
        Request {
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            client: Some("127.0.22.9:5000".parse().unwrap()),
            method: Method::GET,
            host_path: "example.com/obj/a?x=1".into(),
            host_len: 11,
            status: 200,
            bytes: 1024,
            duration: Duration::from_micros(1500),
            ttfb: Duration::from_micros(250),
            cache: CacheField::FastHit { ttl: 59 },
            route: Some(0),
            pool: Some(origin_pool()),
            server: None,
        }
    }

    fn origin_pool() -> PoolRef {
        let cfg: crate::origin::section::PoolConfig =
            toml::from_str("name = \"origin\"\nservers = [{ addr = \"127.0.0.1:1\" }]").unwrap();
        PoolRef(std::sync::Arc::new(crate::origin::Pool::new(&cfg, None)))
    }

    fn line(r: &Request, f: Format) -> String {
        let mut l = Line::new(f, String::new());
        r.write(&"a".to_string(), &mut l);
        l.finish()
    }

    #[test]
    fn a_fast_hit_in_text_names_the_node_in_its_cache_status() {
        assert_eq!(
            line(&record(), Format::Text),
            "time=2023-11-14T22:13:20.000Z client=127.0.22.9:5000 method=GET host=example.com \
             path=\"/obj/a?x=1\" status=200 bytes=1024 duration_ms=1.500 ttfb_ms=0.250 \
             cache=\"a; hit; ttl=59\" route=0 pool=origin server=-\n"
        );
    }

    #[test]
    fn a_miss_in_json_has_every_key() {
        let mut r = record();
        r.cache = CacheField::Header(HeaderValue::from_static("a; fwd=miss; stored"));
        r.server = Some("127.0.22.2:80".parse().unwrap());
        r.client = None;
        let v: serde_json::Value = serde_json::from_str(&line(&r, Format::Json)).unwrap();
        assert_eq!(v["cache"], "a; fwd=miss; stored");
        assert_eq!(v["server"], "127.0.22.2:80");
        assert!(v["client"].is_null());
        assert_eq!(v["host"], "example.com");
        assert_eq!(v["path"], "/obj/a?x=1");
        assert_eq!(v["ttfb_ms"], 0.25);
        assert_eq!(v.as_object().unwrap().len(), 13);
    }
}
