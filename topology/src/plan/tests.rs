//! Unit tests of the plan: exact command sequences and name bounds.

use super::*;

const TWO_HOSTS: &str = r#"
name = "demo"
[[lan]]
name = "front"
subnet = "10.0.0.0/24"
[[host]]
name = "client"
lan = [{ lan = "front", addr = "10.0.0.2/24" }]
routes = [{ to = "10.1.0.0/24", via = "10.0.0.3" }]
sysctls = { "net.ipv4.ip_forward" = "1" }
[[host]]
name = "server"
lan = [{ lan = "front", addr = "10.0.0.3" }]
port_xdp = true
routes = [{ to = "default", via = "10.0.0.2" }]
"#;

fn topology() -> Topology {
    match Topology::from_toml(TWO_HOSTS) {
        Ok(t) => t,
        Err(e) => panic!("fixture must parse: {e}"),
    }
}

fn lines(steps: &[Step]) -> Vec<String> {
    steps.iter().map(|s| s.argv().join(" ")).collect()
}

#[test]
fn up_of_two_hosts_on_one_lan_is_the_exact_command_sequence() {
    let expected = [
        "ip netns add st-demo-sw",
        "ip netns add st-demo-client",
        "ip netns add st-demo-server",
        "ip -n st-demo-sw link set lo up",
        "ip -n st-demo-sw link add br-front type bridge",
        "ip -n st-demo-sw link set br-front up",
        "ip -n st-demo-client link set lo up",
        "ip -n st-demo-client link add eth0 type veth peer name client-0 netns st-demo-sw",
        "ip -n st-demo-sw link set client-0 master br-front",
        "ip -n st-demo-sw link set client-0 up",
        "ip -n st-demo-client address add 10.0.0.2/24 dev eth0",
        "ip -n st-demo-client link set eth0 up",
        "ip netns exec st-demo-client ethtool -K eth0 tx off",
        "ip netns exec st-demo-client sysctl -q -w net.ipv4.ip_forward=1",
        "ip -n st-demo-client route add 10.1.0.0/24 via 10.0.0.3",
        "ip -n st-demo-server link set lo up",
        "ip -n st-demo-server link add eth0 type veth peer name server-0 netns st-demo-sw",
        "ip -n st-demo-sw link set server-0 master br-front",
        "ip -n st-demo-sw link set server-0 up",
        "ip -n st-demo-sw link set dev server-0 xdpdrv obj /tmp/strait-xdp-pass.o sec xdp",
        "ip -n st-demo-server address add 10.0.0.3/24 dev eth0",
        "ip -n st-demo-server link set eth0 up",
        "ip netns exec st-demo-server ethtool -K eth0 tx off",
        "ip -n st-demo-server route add default via 10.0.0.2",
    ];
    assert_eq!(lines(&up(&topology())), expected);
}

#[test]
fn argv_keeps_each_argument_separate() {
    let step = Step::AddVethPair {
        netns: "st-a-h".to_owned(),
        dev: "eth1".to_owned(),
        peer_netns: "st-a-sw".to_owned(),
        peer: "h-1".to_owned(),
    };
    let expected = [
        "ip", "-n", "st-a-h", "link", "add", "eth1", "type", "veth", "peer", "name", "h-1",
        "netns", "st-a-sw",
    ];
    assert_eq!(step.argv(), expected);
    assert_eq!(step.tool(), None);
    let tx = Step::DisableTxChecksum {
        netns: "n".to_owned(),
        dev: "eth0".to_owned(),
    };
    assert_eq!(tx.tool(), Some("ethtool"));
    let pass = Step::AttachXdpPass {
        netns: "st-a-sw".to_owned(),
        dev: "h-1".to_owned(),
        object: "/tmp/p.o".to_owned(),
    };
    assert_eq!(
        pass.argv(),
        [
            "ip", "-n", "st-a-sw", "link", "set", "dev", "h-1", "xdpdrv", "obj", "/tmp/p.o", "sec",
            "xdp"
        ]
    );
    assert_eq!(pass.tool(), None);
}

#[test]
fn director_ports_run_the_pass_program_and_extra_addresses_follow_the_main_one() {
    let text = r#"
name = "x"
[[lan]]
name = "a"
subnet = "10.0.0.0/24"
[[lan]]
name = "b"
subnet = "10.1.0.0/24"
[[host]]
name = "d"
lan = [{ lan = "a", addr = "10.0.0.3", extra = ["10.0.0.100"] }, { lan = "b", addr = "10.1.0.1" }]
run = ["/usr/local/bin/strait director --config d.toml"]
[[host]]
name = "c"
lan = [{ lan = "a", addr = "10.0.0.2" }]
run = [["strait", "node", "--config", "director.toml"]]
[[host]]
name = "e"
lan = [{ lan = "a", addr = "10.0.0.4" }]
port_xdp = true
[[host]]
name = "f"
lan = [{ lan = "a", addr = "10.0.0.5" }]
run = ["strait director --config f.toml"]
port_xdp = false
"#;
    let topology = match Topology::from_toml(text) {
        Ok(t) => t,
        Err(e) => panic!("must parse: {e}"),
    };
    let all = lines(&up(&topology));
    let ports: Vec<&str> = all
        .iter()
        .filter(|l| l.contains(" xdpdrv obj "))
        .filter_map(|l| l.split_whitespace().nth(6))
        .collect();
    assert_eq!(ports, ["d-0", "d-1", "e-0"]);
    let addrs: Vec<&String> = all.iter().filter(|l| l.contains(" address add ")).collect();
    assert_eq!(
        addrs,
        [
            "ip -n st-x-d address add 10.0.0.3/24 dev eth0",
            "ip -n st-x-d address add 10.0.0.100/24 dev eth0",
            "ip -n st-x-d address add 10.1.0.1/24 dev eth1",
            "ip -n st-x-c address add 10.0.0.2/24 dev eth0",
            "ip -n st-x-e address add 10.0.0.4/24 dev eth0",
            "ip -n st-x-f address add 10.0.0.5/24 dev eth0",
        ]
    );
}

#[test]
fn every_generated_name_fits_ifnamsiz() {
    let text = r#"
name = "abcdefgh"
[[lan]]
name = "lan-name-12c"
subnet = "10.0.0.0/16"
[[host]]
name = "abc"
lan = [{ lan = "lan-name-12c", addr = "10.0.9.9/16" }]
"#;
    let topology = match Topology::from_toml(text) {
        Ok(t) => t,
        Err(e) => panic!("must parse: {e}"),
    };
    let mut longest = 0;
    for step in up(&topology).iter().chain(up(&self::topology()).iter()) {
        let argv = step.argv();
        // Every name follows `-n`, `add`, `name`, `netns`, `set`, `master` or `dev`.
        for pair in argv.windows(2) {
            if ["-n", "name", "netns", "set", "master", "dev"].contains(&pair[0].as_str())
                || (pair[0] == "add" && argv[1] != "address" && argv[3] != "route")
            {
                assert!(
                    pair[1].len() <= spec::MAX_NAME_LEN,
                    "{} in {argv:?}",
                    pair[1]
                );
                longest = longest.max(pair[1].len());
            }
        }
    }
    // `st-abcdefgh-abc` and `br-lan-name-12c` are exactly 15 bytes.
    assert_eq!(longest, 15);
}

#[test]
fn down_deletes_only_the_prefix_hosts_first_switch_last() {
    let existing: Vec<String> = [
        "st-demo-sw",
        "st-demo-server",
        "other",
        "st-demox-a",
        "st-demo-client",
        "st-demo-client",
    ]
    .map(str::to_owned)
    .to_vec();
    assert_eq!(
        lines(&down("st-demo-", &existing)),
        [
            "ip netns delete st-demo-client",
            "ip netns delete st-demo-server",
            "ip netns delete st-demo-sw",
        ]
    );
    assert_eq!(
        lines(&down(&topology().prefix(), &[])),
        Vec::<String>::new()
    );
}

#[test]
fn down_refuses_prefixes_that_are_not_ours() {
    let existing = ["st-demo-sw".to_owned(), "mine".to_owned()];
    assert!(down("", &existing).is_empty());
    assert!(down("st-", &existing).is_empty());
    assert!(down("mi", &existing).is_empty());
}

#[test]
fn namespaces_lists_switch_then_hosts() {
    assert_eq!(
        namespaces(&topology()),
        ["st-demo-sw", "st-demo-client", "st-demo-server"]
    );
}
