//! A director pair in a copy of `topology/examples/topologies/ha.toml` with one backend (b1):
//! the test runs the directors itself (their run lines removed), writes their configs, starts
//! and kills them, and reads their admin answers and the client's neighbour table.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::harness::{admin_json, in_netns, short_get, time_until};

pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 80, 0, 100);
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 80, 0, 2);
pub const DIR_A: Ipv4Addr = Ipv4Addr::new(10, 80, 0, 3);
pub const DIR_B: Ipv4Addr = Ipv4Addr::new(10, 80, 0, 4);
pub const B1: Ipv4Addr = Ipv4Addr::new(10, 80, 0, 11);
pub const ADMIN: &str = "127.0.0.1:9190";
pub const VRID: u8 = 80;

/// The topology copy, torn down on drop.
pub struct Pair {
    _topology: crate::support::SimTopology,
    prefix: String,
    pub dir: PathBuf,
}

/// A process in a namespace: SIGKILLed on drop unless already reaped.
pub struct Running {
    pub child: Child,
    pub log: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    /// Sends `sig` (`TERM`, `KILL`) and waits for the exit, at most `wait`.
    pub fn signal(&mut self, sig: &str, wait: Duration) {
        let _ = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < wait {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Pair {
    /// Brings up the copy named `name` (≤ 4 bytes: interface names stay within 15) and waits
    /// for b1 to answer.
    pub fn up(name: &str) -> Pair {
        let dir = crate::support::scratch_dir(&format!("ha-{name}"));
        let file = crate::support::topology_copy(
            "topology/examples/topologies/ha.toml",
            name,
            &dir,
            &["dir-a", "dir-b"],
            &["b2", "b3"],
        );
        let pair = Pair {
            _topology: crate::support::SimTopology::up(file, &dir.join("logs")),
            prefix: format!("st-{name}-"),
            dir,
        };
        let ok = in_netns(&pair.ns("client"), || {
            time_until(Duration::from_secs(20), || {
                let dst = SocketAddr::V4(SocketAddrV4::new(B1, 80));
                short_get(SocketAddrV4::new(CLIENT, 0), dst, "/obj/warm?size=16")
                    .is_ok_and(|a| a.status == 200)
            })
        });
        assert!(ok.is_some(), "b1 does not answer");
        pair
    }

    pub fn ns(&self, host: &str) -> String {
        format!("{}{host}", self.prefix)
    }

    /// Writes `dir-<x>.toml` with `[ha]` = `ha` (TOML lines) and starts it in `dir-<x>`.
    pub fn director(&self, x: &str, ha: &str) -> Running {
        let config = self.dir.join(format!("dir-{x}.toml"));
        let text = format!(
            "[director]\nid = \"dir-{x}\"\ninterface = \"eth0\"\ndatapath = \"xdp\"\n\
             admin = \"{ADMIN}\"\n\n[[service]]\nvip = \"{VIP}:80\"\nmode = \"dr\"\n\
             backends = [{{ addr = \"{B1}\" }}]\n\
             health = {{ kind = \"tcp\", interval = \"300ms\", timeout = \"200ms\", rise = 1, fall = 2 }}\n\n\
             [ha]\nvrid = {VRID}\n{ha}\n"
        );
        std::fs::write(&config, text).expect("director config");
        self.spawn(
            &format!("dir-{x}"),
            &format!("dir-{x}"),
            Command::new(env!("CARGO_BIN_EXE_strait"))
                .args(["director", "--config"])
                .arg(&config),
        )
    }

    /// Adds a service on `vip`:80 (same backend) to `dir-<x>`'s config and reloads it (SIGHUP).
    pub fn add_vip(&self, x: &str, running: &Running, vip: Ipv4Addr) {
        let config = self.dir.join(format!("dir-{x}.toml"));
        let text = std::fs::read_to_string(&config).expect("director config");
        let (head, ha) = text.split_once("[ha]").expect("[ha] in the config");
        let text = format!(
            "{head}[[service]]\nvip = \"{vip}:80\"\nmode = \"dr\"\n\
             backends = [{{ addr = \"{B1}\" }}]\n\n[ha]{ha}"
        );
        std::fs::write(&config, text).expect("director config");
        let _ = Command::new("kill")
            .args(["-HUP", &running.child.id().to_string()])
            .status();
    }

    /// Runs `cmd` inside host `host`'s namespace, logging to `<tag>-<n>.log`.
    pub fn spawn(&self, host: &str, tag: &str, cmd: &Command) -> Running {
        let mut n = 0;
        let log = loop {
            let p = self.dir.join(format!("{tag}-{n}.log"));
            if !p.exists() {
                break p;
            }
            n += 1;
        };
        let file = std::fs::File::create(&log).expect("log");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(host)])
            .arg(cmd.get_program())
            .args(cmd.get_args())
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .spawn()
            .expect("spawn");
        Running { child, log }
    }

    /// `/stats.json` of the director in `dir-<x>`.
    pub fn stats(&self, x: &str) -> Option<serde_json::Value> {
        let admin: SocketAddr = ADMIN.parse().expect("admin");
        in_netns(&self.ns(&format!("dir-{x}")), move || {
            admin_json(admin, "/stats.json")
        })
    }

    /// `ha.state` of `dir-<x>` (`""` when it does not answer).
    pub fn state(&self, x: &str) -> String {
        self.stats(x)
            .and_then(|v| v["ha"]["state"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Waits until `dir-<x>` is in `state`; returns how long it took.
    pub fn wait_state(&self, x: &str, state: &str, timeout: Duration) -> Option<Duration> {
        time_until(timeout, || self.state(x) == state)
    }

    /// The MAC of `eth0` in host `host`.
    pub fn mac(&self, host: &str) -> String {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns(host),
                "cat",
                "/sys/class/net/eth0/address",
            ])
            .output()
            .expect("mac");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The client's neighbour entry for the VIP: (MAC, state), or None.
    pub fn client_neigh(&self) -> Option<(String, String)> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns("client")])
            .args(["ip", "neigh", "show", &VIP.to_string(), "dev", "eth0"])
            .output()
            .ok()?;
        neigh_entry(&String::from_utf8_lossy(&out.stdout))
    }

    /// Runs `ip` args in host `host`'s namespace.
    pub fn ip(&self, host: &str, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns(host), "ip"])
            .args(args)
            .output()
            .expect("ip");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `n` GETs through the VIP from the client, one every `gap`; the errors (empty: all 200).
    pub fn gets(&self, n: usize, gap: Duration) -> Vec<String> {
        in_netns(&self.ns("client"), move || {
            let vip = SocketAddr::V4(SocketAddrV4::new(VIP, 80));
            let mut errors = Vec::new();
            for i in 0..n {
                match short_get(SocketAddrV4::new(CLIENT, 0), vip, "/obj/ha?size=16") {
                    Ok(a) if a.status == 200 => {}
                    Ok(a) => errors.push(format!("#{i}: status {}", a.status)),
                    Err(e) => errors.push(format!("#{i}: {e}")),
                }
                std::thread::sleep(gap);
            }
            errors
        })
    }
}

/// `<ip> lladdr <mac> <STATE>` → (mac, state).
pub fn neigh_entry(line: &str) -> Option<(String, String)> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "lladdr")?;
    Some((words.get(at + 1)?.to_string(), words.last()?.to_string()))
}

/// A counter of `/stats.json`'s `ha.drops`.
pub fn drops(v: &serde_json::Value, reason: &str) -> u64 {
    v["ha"]["drops"][reason].as_u64().unwrap_or(0)
}

/// The text of `path`, empty when it cannot be read (a log a notify command writes).
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
