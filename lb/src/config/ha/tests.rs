//! `[ha]`: defaults, every key, and each rule at its LINE:COL.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::config::parse;
use crate::config::tests::errors;
use crate::test_dir::TestDir;

// Lines 1-7; `[ha]` is line 8.
const BASE: &str = "[director]\nid = \"d\"\ninterface = \"eth0\"\n\
                    [[service]]\nvip = \"10.0.0.100:80\"\nmode = \"dr\"\n\
                    backends = [{ addr = \"10.0.0.11\" }]\n";

#[test]
fn a_bare_vrid_takes_every_default() {
    let c = parse(&format!("{BASE}[ha]\nvrid = 51\n")).unwrap();
    let ha = c.ha.as_ref().unwrap();
    assert_eq!((ha.vrid, ha.priority), (51, 100));
    assert_eq!(ha.advert_interval, Duration::from_secs(1));
    assert!(ha.preempt);
    assert_eq!(ha.preempt_delay, Duration::ZERO);
    assert_eq!(ha.interface, None);
    assert_eq!(c.ha_interface(), Some("eth0"));
    assert!(ha.peers.is_empty());
    assert_eq!(
        (ha.garp_repeat, ha.garp_interval),
        (5, Duration::from_millis(20))
    );
    assert_eq!(ha.notify, None);
    assert_eq!(c.vips(), vec![Ipv4Addr::new(10, 0, 0, 100)]);
    assert!(parse(BASE).unwrap().ha.is_none());
}

#[test]
fn every_key_is_read() {
    let text = format!(
        "{BASE}[[service]]\nvip = \"10.0.0.101:80\"\nmode = \"dr\"\nbackends = [{{ addr = \"10.0.0.11\" }}]\n\
         [[service]]\nvip = \"10.0.0.100:443\"\nmode = \"dr\"\nbackends = [{{ addr = \"10.0.0.11\" }}]\n\
         [ha]\nvrid = 255\npriority = 254\nadvert_interval = \"20ms\"\npreempt = false\n\
         preempt_delay = \"30s\"\ninterface = \"eth1\"\npeers = [\"10.0.0.4\", \"10.0.0.5\"]\n\
         garp_repeat = 2\ngarp_interval = \"0s\"\nnotify = \"logger -t strait\"\n\
         sync = false\n"
    );
    let c = parse(&text).unwrap();
    let ha = c.ha.as_ref().unwrap();
    assert_eq!((ha.vrid, ha.priority), (255, 254));
    assert_eq!(ha.advert_interval, Duration::from_millis(20));
    assert!(!ha.preempt);
    assert_eq!(ha.preempt_delay, Duration::from_secs(30));
    assert_eq!(c.ha_interface(), Some("eth1"));
    assert_eq!(
        ha.peers,
        vec![Ipv4Addr::new(10, 0, 0, 4), Ipv4Addr::new(10, 0, 0, 5)]
    );
    assert_eq!((ha.garp_repeat, ha.garp_interval), (2, Duration::ZERO));
    assert_eq!(ha.notify.as_deref(), Some("logger -t strait"));
    assert_eq!(ha.sync, None);
    // Two services share 10.0.0.100: the router's addresses are the distinct VIPs.
    assert_eq!(
        c.vips(),
        vec![Ipv4Addr::new(10, 0, 0, 100), Ipv4Addr::new(10, 0, 0, 101)]
    );
}

#[test]
fn each_rule_is_reported_at_its_value() {
    let text = format!(
        "{BASE}[ha]\nvrid = 0\npriority = 255\nadvert_interval = \"15ms\"\n\
         preempt_delay = \"2000s\"\ninterface = \"a/b\"\n\
         peers = [\"10.0.0.4\", \"224.0.0.18\", \"10.0.0.4\", \"nope\", \"0.0.0.0\"]\n\
         garp_repeat = 0\ngarp_interval = \"11s\"\nnotify = \" \"\nsync_insecure = true\n"
    );
    let e = errors(&text);
    let want = [
        "9:8: ha.vrid 0 is out of range 1..=255",
        "10:12: ha.priority 255 is for the owner of the addresses",
        "11:19: ha.advert_interval \"15ms\" must be a multiple of 10ms",
        "12:17: ha.preempt_delay \"2000s\" is longer than 1000s",
        "13:13: ha.interface \"a/b\" is not a valid interface name",
        "14:22: ha.peers: \"224.0.0.18\" is multicast",
        "14:36: ha.peers: \"10.0.0.4\" is listed twice",
        "14:48: ha.peers: \"nope\" is not an IPv4 address; names are not resolved",
        "14:56: ha.peers: \"0.0.0.0\" is not a host address",
        "15:15: ha.garp_repeat 0 is out of range 1..=100",
        "16:17: ha.garp_interval \"11s\" is longer than 10s",
        "17:10: ha.notify is empty",
    ];
    assert_eq!(e.len(), want.len(), "{e:#?}");
    for (got, want) in e.iter().zip(want) {
        assert!(got.starts_with(want), "{got:?} should start with {want:?}");
    }
}

#[test]
fn interval_bounds_empty_peers_and_unknown_keys() {
    for (value, why) in [
        ("\"5ms\"", "must be 10ms to 40.95s"),
        ("\"41s\"", "must be 10ms to 40.95s"),
        ("\"soon\"", "is not a duration"),
    ] {
        let e = errors(&format!(
            "{BASE}[ha]\nvrid = 1\nadvert_interval = {value}\n"
        ));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("10:19: ha.advert_interval"), "{e:?}");
        assert!(e[0].contains(why), "{e:?}");
    }
    let c = parse(&format!(
        "{BASE}[ha]\nvrid = 1\nadvert_interval = \"40.95s\"\n"
    ))
    .unwrap();
    assert_eq!(c.ha.unwrap().advert_interval, Duration::from_millis(40_950));
    let e = errors(&format!("{BASE}[ha]\nvrid = 1\npeers = []\n"));
    assert!(e[0].starts_with("10:9: ha.peers is empty"), "{e:?}");
    let e = errors(&format!("{BASE}[ha]\nvrid = 1\nvirtual_mac = true\n"));
    assert!(e[0].contains("unknown field `virtual_mac`"), "{e:?}");
    let e = errors(&format!("{BASE}[ha]\npriority = 10\n"));
    assert!(e[0].contains("missing field `vrid`"), "{e:?}");
}

/// A directory of this test's own, removed when the guard drops.
fn temp_dir(name: &str) -> TestDir {
    TestDir::new(&format!("ha-{name}"))
}

/// `[ha]` with `peers` (line 10) and `extra` from line 11 on.
fn with_peers(extra: &str) -> String {
    format!("{BASE}[ha]\nvrid = 1\npeers = [\"10.0.0.4\"]\n{extra}")
}

#[test]
fn sync_is_on_with_peers_and_needs_a_secret() {
    let dir = temp_dir("secret");
    let key = dir.join("ha.key");
    std::fs::write(&key, "0123456789abcdef-a-shared-secret\n").unwrap();
    let c = parse(&with_peers(&format!("secret_file = {key:?}\n"))).unwrap();
    let sync = c.ha.unwrap().sync.unwrap();
    assert_eq!(sync.port, 7480);
    assert_eq!(sync.delay, Duration::from_millis(5));
    assert_eq!(sync.refresh, Duration::from_secs(10));
    assert_eq!(sync.rate, 500_000);
    assert_eq!(sync.catchup_timeout, Duration::from_secs(3));
    let secret = sync.secret.unwrap();
    assert_eq!(&*secret.0, b"0123456789abcdef-a-shared-secret");
    assert_eq!(format!("{secret:?}"), "SyncSecret(32 bytes)");
    // Without peers: off, as before.
    assert_eq!(
        parse(&format!("{BASE}[ha]\nvrid = 1\n"))
            .unwrap()
            .ha
            .unwrap()
            .sync,
        None
    );
    // Every key.
    let c = parse(&with_peers(
        "sync = true\nsync_insecure = true\nsync_port = 9000\nsync_delay = \"1ms\"\n\
         sync_refresh = \"1h\"\nsync_rate = 1000\nsync_catchup_timeout = \"0s\"\n",
    ))
    .unwrap();
    let sync = c.ha.unwrap().sync.unwrap();
    assert_eq!(sync.secret, None);
    assert_eq!((sync.port, sync.rate), (9000, 1000));
    assert_eq!(sync.delay, Duration::from_millis(1));
    assert_eq!(sync.refresh, Duration::from_secs(3600));
    assert_eq!(sync.catchup_timeout, Duration::ZERO);
}

#[test]
fn each_sync_rule_is_reported_at_its_value() {
    // Peers but no secret: the reason and the three ways out, at the vrid.
    let e = errors(&with_peers(""));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("9:8: connection sync is on (ha.peers is set) but ha.secret_file is not"),
        "{e:?}"
    );
    assert!(
        e[0].contains("sync_insecure = true") && e[0].contains("sync = false"),
        "{e:?}"
    );
    // Sync asked for without peers.
    let e = errors(&format!(
        "{BASE}[ha]\nvrid = 1\nsync = true\nsync_insecure = true\n"
    ));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("10:8: ha.sync needs ha.peers"), "{e:?}");
    // Sync keys with sync off.
    let e = errors(&with_peers(
        "sync = false\nsync_port = 9000\nsecret_file = \"/x\"\n",
    ));
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e[0].starts_with("12:13: ha.sync_port is set but connection sync is off"),
        "{e:?}"
    );
    assert!(e[1].starts_with("13:15: ha.secret_file is set"), "{e:?}");
    // Ranges and an unreadable or short secret.
    let dir = temp_dir("short");
    let short = dir.join("short.key");
    std::fs::write(&short, "tiny").unwrap();
    let e = errors(&with_peers(&format!(
        "secret_file = {short:?}\nsync_port = 0\nsync_delay = \"2s\"\nsync_refresh = \"500ms\"\n\
         sync_rate = 10\nsync_catchup_timeout = \"61s\"\n"
    )));
    let want = [
        "11:15: ha.secret_file ",
        "12:13: ha.sync_port 0 is out of range 1..=65535",
        "13:14: ha.sync_delay \"2s\" must be 1ms to 1s",
        "14:16: ha.sync_refresh \"500ms\" must be 1s to 1h",
        "15:13: ha.sync_rate 10 is out of range 1000..=10000000",
        "16:24: ha.sync_catchup_timeout \"61s\" must be 0s to 60s",
    ];
    assert_eq!(e.len(), want.len(), "{e:#?}");
    for (got, want) in e.iter().zip(want) {
        assert!(got.starts_with(want), "{got:?} should start with {want:?}");
    }
    let e = errors(&with_peers("secret_file = \"/nonexistent/ha.key\"\n"));
    assert!(e[0].contains("/nonexistent/ha.key: cannot read:"), "{e:?}");
}
