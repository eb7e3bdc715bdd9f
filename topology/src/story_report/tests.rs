use super::*;
use crate::story::{Answered, CachePath, Kind};

fn d(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn change(director: &str, other: &str, at: u64) -> MasterChange {
    MasterChange {
        director: director.into(),
        other: other.into(),
        at: d(at),
        master_after: d(400),
        wire: Takeover {
            last_via_old: Some(-2.0),
            first_via_new: Some(300.0),
            wire_gap: Some(d(302)),
            client_gap: d(320),
            probes: 10,
            failed_probes: 2,
            failed_after: 0,
            unknown_frames: 0,
        },
        sync: "sync: off".into(),
        sync_on: false,
        preempt_delay: d(2000),
    }
}

/// A short request every 100 ms from 0 to 10 s, answered by b1..b4 in turn (b4 from the
/// join), static and dynamic alternately; `failed` start times fail.
fn story(failed: &[u64]) -> Story {
    let shorts = (0..100u64)
        .map(|i| {
            let at = i * 100;
            let kind = if i % 2 == 0 {
                Kind::Static
            } else {
                Kind::Dynamic
            };
            let nodes = if at >= 2000 { 4 } else { 3 };
            let answer = (!failed.contains(&at))
                .then(|| Answered {
                    node: format!("b{}", i % nodes + 1),
                    path: match kind {
                        Kind::Static if i < 10 => CachePath::RemoteMiss,
                        Kind::Static => CachePath::RemoteHit,
                        Kind::Dynamic => CachePath::Bypass,
                    },
                })
                .ok_or_else(|| "no connection within 300 ms".to_owned());
            Short {
                at: d(at),
                ended: d(at + 5),
                kind,
                answer,
            }
        })
        .collect();
    Story {
        up: Up {
            took: d(3100),
            nodes: vec!["b1".into(), "b2".into(), "b3".into()],
            master: "dir-a".into(),
            backup: "dir-b".into(),
            members: 3,
        },
        join: Join {
            node: "b4".into(),
            at: d(1500),
            in_cluster_after: d(300),
            up_after: d(500),
            flows: 7,
        },
        failover: change("dir-a", "dir-b", 4000),
        loss: NodeLoss {
            node: "b3".into(),
            at: d(6000),
            down_after: d(900),
            down_bound: d(1300),
            dead_after: Some(d(1400)),
            held: 3,
        },
        back: change("dir-a", "dir-b", 8000),
        origins: Origins {
            before: (5, 5, 1),
            after: (5, 8, 2),
            dynamic: 50,
            refetched: vec![("a".into(), 1), ("b".into(), 2)],
        },
        shorts,
        longs: vec![
            Long {
                node: Some("b3".into()),
                lost_at: Some(d(6010)),
                why: Some("read: Connection reset by peer (os error 104)".into()),
            },
            Long {
                node: Some("b1".into()),
                lost_at: None,
                why: None,
            },
        ],
        end: d(10_000),
    }
}

#[test]
fn a_clean_story_holds_every_step_and_tells_its_figures() {
    let st = steps(&story(&[4000, 4100, 6100]));
    assert!(st.iter().all(|s| s.held), "{st:#?}");
    let text = render(&st);
    for want in [
        "up         held   after 3.10 s: b1, b2, b3 answer; dir-a master, dir-b backup",
        "100 short requests: 97 answered",
        "static objects: 5, fetched from the origin 5 times before the node kill (most for one object: 1: once each)",
        "dynamic: 48 answered, 50 requests reached its origin (none cached)",
        "b4 started at 1.50 s",
        "dir-a (master) killed at 4.00 s: dir-b master after 0.40 s",
        "2 failed before it settled, 0 of",
        "long connections lost: 1 (b3 1), 1 of them on b3",
        "it held 3 objects: 3 fetched again",
        "started with an empty table (no sync)",
        "result: every step held",
    ] {
        assert!(text.contains(want), "{want:?} in\n{text}");
    }
}

#[test]
fn failures_after_settling_too_many_fetches_or_lost_synced_flows_fail_their_step() {
    // 5.0 s: after the failover settled (4.0 + 0.4 + 0.5).
    let st = steps(&story(&[5000]));
    assert!(!st[3].held && st.iter().filter(|s| !s.held).count() == 1);
    let text = render(&st);
    assert!(text.ends_with("result: not held: failover\n"));
    assert!(
        text.contains("failed after it settled: 5.00 s no connection within 300 ms\n"),
        "{text}"
    );

    // A request started before the node kill (6.0 s) that failed after it: the node loss's,
    // before it settled, not the failover's.
    let mut s = story(&[5900]);
    s.shorts[59].ended = d(6050);
    let st = steps(&s);
    assert!(st.iter().all(|s| s.held), "{st:#?}");
    assert!(render(&st).contains("1 short requests failed before it settled, 0 of"));
    s.shorts[59].ended = d(5950);
    assert!(!steps(&s)[3].held, "failed before the kill: the failover's");

    let mut s = story(&[]);
    s.origins.before.2 = 2;
    s.origins.after = (5, 12, 3);
    let st = steps(&s);
    assert!(!st[1].held && !st[4].held, "{st:#?}");
    assert!(render(&st).contains("fetched again: a ×1, b ×2\n"));

    let mut s = story(&[]);
    s.longs[1].lost_at = Some(d(4100));
    s.longs[1].why = Some("closed".into());
    assert!(steps(&s)[3].held, "without sync a lost flow is reported");
    assert!(render(&steps(&s)).contains("how they were lost: b1 at 4.10 s (closed)\n"));
    s.failover.sync_on = true;
    assert!(!steps(&s)[3].held, "with sync every flow must survive");

    let mut s = story(&[1600]);
    s.join.flows = 0;
    assert!(!steps(&s)[2].held, "a failure while joining");
}
