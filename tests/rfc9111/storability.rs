//! What the node stores (RFC 9111 §3, §3.5) and for how long (§4.2.1, §4.2.2), and that a stale
//! `must-revalidate` response is never served on an origin error (§4.2.4, RFC 5861 §4).
//!
//! Each test requests one URL twice or more and checks the origin's request count: 1 means the
//! second answer came from the store, 2 means it did not.

use std::time::{Duration, SystemTime};

use crate::support::{get, object_bytes};
use crate::{fill, http_date, q, settle, start, ttl_of, wait_stale};

#[test]
fn default_cacheable_404_with_last_modified_is_stored() {
    let (origin, node) = start("");
    let path = "/obj/nf?status=404&cc=";
    let first = fill(&node, path, &[]);
    assert_eq!(first.status, 404);
    assert_eq!(first.cache_status(), "a; fwd=miss; stored");
    let second = get(node.addr, path, &[]);
    assert_eq!(second.status, 404);
    assert!(second.cache_status().starts_with("a; hit; ttl="));
    assert_eq!(second.body, object_bytes("nf", 1024));
    assert_eq!(origin.count("/obj/nf"), 1);
}

#[test]
fn default_cacheable_404_without_validator_or_freshness_is_not_stored() {
    let (origin, node) = start("");
    let path = "/obj/nf?status=404&etag=0&lm=0&cc=";
    let first = get(node.addr, path, &[]);
    assert_eq!(first.status, 404);
    assert_eq!(first.cache_status(), "a; fwd=miss");
    let second = get(node.addr, path, &[]);
    assert_eq!(second.status, 404);
    assert_eq!(second.cache_status(), "a; fwd=miss");
    assert_eq!(origin.count("/obj/nf"), 2);
    assert_eq!(node.counter("uncacheable"), 2);
}

#[test]
fn no_store_response_is_never_stored() {
    let (origin, node) = start("");
    let a = get(node.addr, "/dyn/ns", &[]);
    let b = get(node.addr, "/dyn/ns", &[]);
    assert_eq!((a.status, b.status), (200, 200));
    assert_eq!(a.text(), "dyn ns 1\n");
    assert_eq!(b.text(), "dyn ns 2\n");
    assert_eq!(b.cache_status(), "a; fwd=miss");
    assert_eq!(origin.count("/dyn/ns"), 2);
    assert_eq!(node.counter("stored_objects"), 0);
}

#[test]
fn private_response_is_not_stored() {
    let (origin, node) = start("");
    let path = format!("/obj/pv?cc={}", q("private, max-age=60"));
    for _ in 0..2 {
        let r = get(node.addr, &path, &[]);
        assert_eq!(r.status, 200);
        assert_eq!(r.cache_status(), "a; fwd=miss");
        assert_eq!(r.body, object_bytes("pv", 1024));
    }
    assert_eq!(origin.count("/obj/pv"), 2);
}

#[test]
fn no_cache_response_is_stored_but_revalidated_every_time() {
    let (origin, node) = start("");
    let path = "/obj/nc?cc=no-cache";
    let first = fill(&node, path, &[]);
    assert_eq!(first.cache_status(), "a; fwd=miss; stored");
    for n in 2..=3 {
        let r = get(node.addr, path, &[]);
        assert_eq!(r.status, 200);
        assert_eq!(r.body, object_bytes("nc", 1024));
        assert!(
            r.cache_status()
                .starts_with("a; fwd=stale; fwd-status=304; ttl="),
            "{}",
            r.cache_status()
        );
        assert_eq!(origin.count("/obj/nc"), n);
        // See `validation::no_cache_object_is_revalidated_for_a_pipelined_request`.
        settle(&node);
    }
    assert_eq!(node.counter("revalidated"), 2);
}

#[test]
fn max_age_response_is_a_hit_with_its_ttl() {
    let (origin, node) = start("");
    let first = fill(&node, "/obj/ma?ttl=60", &[]);
    assert_eq!(first.cache_status(), "a; fwd=miss; stored");
    let hit = get(node.addr, "/obj/ma?ttl=60", &[]);
    assert!(hit.cache_status().starts_with("a; hit; ttl="));
    assert!((58..=60).contains(&ttl_of(&hit)), "{}", hit.cache_status());
    assert_eq!(hit.body, object_bytes("ma", 1024));
    assert_eq!(origin.count("/obj/ma"), 1);
}

#[test]
fn max_age_zero_response_is_revalidated() {
    let (origin, node) = start("");
    fill(&node, "/obj/m0?ttl=0", &[]);
    let second = get(node.addr, "/obj/m0?ttl=0", &[]);
    assert_eq!(second.status, 200);
    assert_eq!(second.body, object_bytes("m0", 1024));
    assert!(second
        .cache_status()
        .starts_with("a; fwd=stale; fwd-status=304"));
    assert_eq!(origin.count("/obj/m0"), 2);
}

#[test]
fn s_maxage_wins_over_max_age() {
    let (origin, node) = start("");
    let shared_longer = format!("/obj/sm?cc={}", q("max-age=0, s-maxage=60"));
    fill(&node, &shared_longer, &[]);
    let hit = get(node.addr, &shared_longer, &[]);
    assert!(hit.cache_status().starts_with("a; hit; ttl="));
    assert!((58..=60).contains(&ttl_of(&hit)), "{}", hit.cache_status());
    assert_eq!(origin.count("/obj/sm"), 1);

    let shared_zero = format!("/obj/sz?cc={}", q("max-age=60, s-maxage=0"));
    fill(&node, &shared_zero, &[]);
    let again = get(node.addr, &shared_zero, &[]);
    assert!(
        !again.cache_status().contains("hit"),
        "{}",
        again.cache_status()
    );
    assert_eq!(origin.count("/obj/sz"), 2);
}

#[test]
fn expires_gives_the_freshness_lifetime() {
    let (origin, node) = start("");
    let future = http_date(SystemTime::now() + Duration::from_secs(120));
    let path = format!("/obj/ex?cc=&hdr={}", q(&format!("Expires:{future}")));
    fill(&node, &path, &[]);
    let hit = get(node.addr, &path, &[]);
    assert!(hit.cache_status().starts_with("a; hit; ttl="));
    assert!(
        (117..=121).contains(&ttl_of(&hit)),
        "{}",
        hit.cache_status()
    );
    assert_eq!(origin.count("/obj/ex"), 1);

    let past = http_date(SystemTime::now() - Duration::from_secs(120));
    let path = format!("/obj/ep?cc=&hdr={}", q(&format!("Expires:{past}")));
    fill(&node, &path, &[]);
    let second = get(node.addr, &path, &[]);
    assert!(second
        .cache_status()
        .starts_with("a; fwd=stale; fwd-status=304"));
    assert_eq!(origin.count("/obj/ep"), 2);
}

/// RFC 9110 §5.6.7: the obsolete date forms, in any letter case, are dates too (an
/// `Expires` a cache cannot read counts as already expired: the object would not be reused).
#[test]
fn expires_in_an_obsolete_form_or_another_case_still_gives_the_lifetime() {
    let (origin, node) = start("");
    let future = SystemTime::now() + Duration::from_secs(120);
    let imf = http_date(future);
    // "Sun, 06 Nov 1994 08:49:37 GMT" -> RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT".
    let day = match &imf[..3] {
        "Mon" => "Monday",
        "Tue" => "Tuesday",
        "Wed" => "Wednesday",
        "Thu" => "Thursday",
        "Fri" => "Friday",
        "Sat" => "Saturday",
        _ => "Sunday",
    };
    let parts: Vec<&str> = imf.split_whitespace().collect();
    let rfc850 = format!(
        "{day}, {}-{}-{} {} GMT",
        parts[1],
        parts[2],
        &parts[3][2..],
        parts[4]
    );
    for (tag, text) in [
        ("lower", imf.to_lowercase()),
        ("upper", imf.to_uppercase()),
        ("rfc850", rfc850),
    ] {
        let path = format!("/obj/exc-{tag}?cc=&hdr={}", q(&format!("Expires:{text}")));
        fill(&node, &path, &[]);
        let hit = get(node.addr, &path, &[]);
        assert!(
            hit.cache_status().starts_with("a; hit; ttl="),
            "{tag} {text:?}: {}",
            hit.cache_status()
        );
        assert!(
            (117..=121).contains(&ttl_of(&hit)),
            "{tag}: {}",
            hit.cache_status()
        );
        assert_eq!(origin.count(&format!("/obj/exc-{tag}")), 1, "{tag}");
    }
}

#[test]
fn must_revalidate_stale_is_never_served_on_origin_error() {
    let (mut origin, node) = start("");
    let lenient = format!("/obj/sie?cc={}", q("max-age=1, stale-if-error=60"));
    let strict = format!(
        "/obj/mr?cc={}",
        q("max-age=1, must-revalidate, stale-if-error=60")
    );
    for p in [&lenient, &strict] {
        assert_eq!(fill(&node, p, &[]).cache_status(), "a; fwd=miss; stored");
    }
    origin.proc.child.kill().expect("kill origin");
    origin.proc.child.wait().expect("reap origin");
    wait_stale(&node, &lenient);
    wait_stale(&node, &strict);

    // Control: without must-revalidate the stale copy is served (stale-if-error).
    let served = get(node.addr, &lenient, &[]);
    assert_eq!(served.status, 200);
    assert_eq!(served.body, object_bytes("sie", 1024));
    assert!(
        served
            .cache_status()
            .starts_with("a; hit; fwd=stale; fwd-status=502; ttl=")
            && served.cache_status().ends_with("; detail=stale-if-error"),
        "{}",
        served.cache_status()
    );
    assert!(ttl_of(&served) <= 0, "{}", served.cache_status());

    let refused = get(node.addr, &strict, &[]);
    assert_eq!(refused.status, 502, "{}", refused.text());
    assert_ne!(refused.body, object_bytes("mr", 1024));
    assert!(
        !refused.cache_status().contains("hit"),
        "{}",
        refused.cache_status()
    );
    // Not even when the client accepts stale responses (RFC 9111 §5.2.2.2).
    let max_stale = get(node.addr, &strict, &[("Cache-Control", "max-stale=60")]);
    assert_eq!(max_stale.status, 502, "{}", max_stale.text());
    assert_ne!(max_stale.body, object_bytes("mr", 1024));
}

#[test]
fn heuristic_freshness_is_capped_at_one_day() {
    let (origin, node) = start("");
    let lm = "Last-Modified:Sat, 01 Jan 2000 00:00:00 GMT";
    let path = format!("/obj/hx?cc=&lm=0&hdr={}", q(lm));
    fill(&node, &path, &[]);
    let hit = get(node.addr, &path, &[]);
    assert!(hit.cache_status().starts_with("a; hit; ttl="));
    assert!(
        (86_398..=86_400).contains(&ttl_of(&hit)),
        "{}",
        hit.cache_status()
    );
    assert_eq!(origin.count("/obj/hx"), 1);
}

#[test]
fn heuristic_freshness_is_ten_percent_of_the_time_since_last_modified() {
    let (origin, node) = start("");
    let modified = http_date(SystemTime::now() - Duration::from_secs(1000));
    let path = format!(
        "/obj/h10?cc=&lm=0&hdr={}",
        q(&format!("Last-Modified:{modified}"))
    );
    fill(&node, &path, &[]);
    let hit = get(node.addr, &path, &[]);
    assert!(hit.cache_status().starts_with("a; hit; ttl="));
    assert!((98..=100).contains(&ttl_of(&hit)), "{}", hit.cache_status());
    assert_eq!(origin.count("/obj/h10"), 1);
}

#[test]
fn authorization_requests_are_stored_only_with_public_s_maxage_or_must_revalidate() {
    let (origin, node) = start("");
    let auth = [("Authorization", "Bearer t0ken")];
    let cases = [
        ("au-plain", "max-age=60", 2),
        ("au-public", "public, max-age=60", 1),
        ("au-smax", "s-maxage=60", 1),
        ("au-mr", "max-age=60, must-revalidate", 1),
    ];
    for (name, cc, expected) in cases {
        let path = format!("/obj/{name}?cc={}", q(cc));
        let first = if expected == 1 {
            fill(&node, &path, &auth)
        } else {
            get(node.addr, &path, &auth)
        };
        let second = get(node.addr, &path, &auth);
        for r in [first, second] {
            assert_eq!(r.status, 200);
            assert_eq!(r.body, object_bytes(name, 1024));
        }
    }
    for (name, cc, expected) in cases {
        let seen = origin.count(&format!("/obj/{name}"));
        assert_eq!(seen, expected, "{name} ({cc})");
    }
}

/// RFC 9111 §3: a status the cache does not understand is stored with explicit freshness.
#[test]
fn unknown_status_with_explicit_freshness_is_stored() {
    let (origin, node) = start("");
    let path = "/obj/unk?status=299&cc=max-age%3D60";
    let first = fill(&node, path, &[]);
    assert_eq!(first.status, 299);
    let second = get(node.addr, path, &[]);
    assert_eq!(second.status, 299);
    assert!(second.cache_status().starts_with("a; hit; ttl="));
    assert_eq!(second.body, object_bytes("unk", 1024));
    // Without explicit freshness (a validator and `public` only), it is not.
    let path = "/obj/unk2?status=299&cc=public";
    for _ in 0..2 {
        assert_eq!(get(node.addr, path, &[]).cache_status(), "a; fwd=miss");
    }
    assert_eq!(
        (origin.count("/obj/unk"), origin.count("/obj/unk2")),
        (1, 2)
    );
}

/// RFC 9111 §5.2.2.3: `must-understand` stores an understood status despite `no-store`, and
/// never stores one the cache does not understand.
#[test]
fn must_understand_overrides_no_store_for_understood_statuses_only() {
    let (origin, node) = start("");
    let cc = q("max-age=60, must-understand, no-store");
    let understood = format!("/obj/mu?cc={cc}");
    fill(&node, &understood, &[]);
    assert!(get(node.addr, &understood, &[])
        .cache_status()
        .starts_with("a; hit; ttl="));
    let unknown = format!("/obj/mux?status=299&cc={cc}");
    for _ in 0..2 {
        let r = get(node.addr, &unknown, &[]);
        assert_eq!((r.status, r.cache_status()), (299, "a; fwd=miss"));
    }
    assert_eq!((origin.count("/obj/mu"), origin.count("/obj/mux")), (1, 2));
}
