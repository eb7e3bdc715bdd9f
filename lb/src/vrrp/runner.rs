//! Runs one virtual router: the state machine ([`super::machine`]) fed by a raw VRRP socket
//! and a timer, carrying out its actions (adverts, owning the VIPs, gratuitous ARPs, the
//! notify command) and keeping [`HaStatus`] current.
//!
//! Contract:
//! * [`Router::open`] opens the sockets (a failure is returned, nothing runs);
//!   [`Router::start`] starts the task; the machine starts at once (Backup unless nothing is heard for
//!   `Master_Down_Interval`).
//! * A received packet is checked in this order, each failure dropped and counted under its
//!   reason: the wire's checks (`wire::decode`: TTL 255, version, type, length, checksum);
//!   our own packets are ignored (not counted); the VRID (`vrid`); with `peers`, the sender
//!   must be one of them (`not_a_peer`); the address list must be our VIPs as a set unless
//!   the sender is an address owner (priority 255) (`address_list`). What passes is counted
//!   as received; an interval other than ours is counted (`interval_mismatches`) and learned,
//!   as RFC 5798 §6.4.2 says a backup does.
//! * On becoming master: the advert goes out first, then the owner callback is given every
//!   VIP (the datapath answers ARP for them) and `garp_repeat` gratuitous ARPs per VIP leave
//!   the client interface `garp_interval` apart. On leaving master the callback is given no
//!   VIP and a burst still running stops. Every transition is logged with its reason and runs
//!   `notify` (`sh -c '<notify> "$1"' strait-notify <state>`, with `STRAIT_HA_STATE`,
//!   `STRAIT_HA_VRID` and `STRAIT_HA_REASON` set), never waited for by the router.
//! * A master that hears a lower-priority router advertise (both were master across a
//!   partition) discards the advert, as the RFC says, but announces the VIPs again (at most
//!   once a second), so clients that followed the other director come back at once.
//! * [`Router::stop`] is the graceful stop: a master sends priority 0 and stops owning the
//!   VIPs but returns only once another router's advert is heard (it has taken over and sent
//!   its gratuitous ARPs) plus the length of a gratuitous-ARP burst, or after
//!   [`Router::linger_bound`]; meanwhile the caller keeps forwarding, so packets still sent to
//!   us by clients with old neighbour entries are not lost.
//! * [`Router::set_vips`] (reload) replaces the addresses: adverts carry the new list and a
//!   master owns and announces the new set.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::garp::{self, GarpSender};
use super::machine::{Action, Machine, Reason, Settings, State};
use super::socket::VrrpSocket;
use super::status::{HaStatus, CONFIG_DROPS};
use super::wire::{self, Advert, Reject};
use crate::config::HaConfig;
use crate::iface::Interface;

/// Makes the VIPs reachable through this director, or not: called with every VIP on
/// becoming master and with none on leaving it. An error is logged; the router goes on.
pub type Owner = Arc<dyn Fn(&[Ipv4Addr]) -> Result<(), String> + Send + Sync>;

/// Where a router runs.
#[derive(Debug, Clone)]
pub struct Setup {
    /// `[ha]`.
    pub ha: HaConfig,
    /// The interface adverts use (`[ha] interface`).
    pub vrrp_interface: Interface,
    /// The client-facing interface: gratuitous ARPs leave here, with its MAC.
    pub client_interface: Interface,
    /// The virtual router's addresses (the services' VIPs).
    pub vips: Vec<Ipv4Addr>,
}

/// A running virtual router (see the module doc).
pub struct Router {
    status: Arc<Mutex<HaStatus>>,
    stop: watch::Sender<bool>,
    vips: watch::Sender<Vec<Ipv4Addr>>,
    task: JoinHandle<()>,
    linger: Duration,
}

/// A router whose sockets are open, not started yet ([`Router::open`]).
pub struct Opened {
    socket: VrrpSocket,
    garp: Arc<GarpSender>,
    setup: Setup,
}

impl Router {
    /// Opens the router's sockets (the raw VRRP socket, the packet socket for gratuitous
    /// ARPs); nothing runs yet.
    pub fn open(setup: Setup) -> std::io::Result<Opened> {
        let socket = VrrpSocket::open(&setup.vrrp_interface, &setup.ha.peers)?;
        let garp = Arc::new(GarpSender::open(setup.client_interface.ifindex)?);
        Ok(Opened {
            socket,
            garp,
            setup,
        })
    }

    /// Starts an opened router (see the module doc); `owner` makes the VIPs reachable.
    pub fn start(opened: Opened, owner: Owner) -> Router {
        let Opened {
            socket,
            garp,
            setup,
        } = opened;
        let mut drop_reasons: Vec<&'static str> = Reject::NAMES.to_vec();
        drop_reasons.extend(CONFIG_DROPS);
        let status = Arc::new(Mutex::new(HaStatus::new(
            setup.ha.vrid,
            setup.ha.priority,
            setup.ha.advert_interval,
            setup.vrrp_interface.name.clone(),
            setup.ha.peers.clone(),
            setup.vips.clone(),
            &drop_reasons,
        )));
        let machine = Machine::new(Settings {
            priority: setup.ha.priority,
            advert_interval: setup.ha.advert_interval,
            preempt: setup.ha.preempt,
            preempt_delay: setup.ha.preempt_delay,
            address: setup.vrrp_interface.ip,
        });
        let linger = Router::linger_bound(setup.ha.advert_interval);
        let (stop, stop_rx) = watch::channel(false);
        let (vips, vips_rx) = watch::channel(setup.vips.clone());
        let run = Run {
            machine,
            socket,
            garp,
            burst: None,
            announced: None,
            owner,
            status: Arc::clone(&status),
            setup,
        };
        let task = tokio::spawn(run.run(stop_rx, vips_rx, linger));
        Router {
            status,
            stop,
            vips,
            task,
            linger,
        }
    }

    /// The longest a graceful stop waits for another router to take over: two advert
    /// intervals plus 100 ms (a backup takes over after its skew time, under one
    /// interval), at most 3 s.
    pub fn linger_bound(advert_interval: Duration) -> Duration {
        (advert_interval * 2 + Duration::from_millis(100)).min(Duration::from_secs(3))
    }

    /// The router's state and counters now.
    pub fn status(&self) -> HaStatus {
        self.status.lock().clone()
    }

    /// A handle on the status that stays valid after [`Router::stop`].
    pub fn status_handle(&self) -> Arc<Mutex<HaStatus>> {
        Arc::clone(&self.status)
    }

    /// Replaces the virtual router's addresses (see the module doc).
    pub fn set_vips(&self, vips: Vec<Ipv4Addr>) {
        self.status.lock().vips = vips.clone();
        let _ = self.vips.send(vips);
    }

    /// The graceful stop (see the module doc).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let bound = self.linger + Duration::from_secs(2);
        if tokio::time::timeout(bound, self.task).await.is_err() {
            tracing::warn!("ha: the router did not stop in time");
        }
    }
}

/// How often a master re-announces the VIPs while a lower-priority router also advertises
/// (two masters after a partition healed: the clients that followed the other one come back).
const REANNOUNCE: Duration = Duration::from_secs(1);

/// The router's task state.
struct Run {
    machine: Machine,
    socket: VrrpSocket,
    garp: Arc<GarpSender>,
    /// The gratuitous-ARP burst in progress.
    burst: Option<JoinHandle<()>>,
    /// When a burst last started.
    announced: Option<Instant>,
    owner: Owner,
    status: Arc<Mutex<HaStatus>>,
    setup: Setup,
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}

impl Run {
    async fn run(
        mut self,
        mut stop: watch::Receiver<bool>,
        mut vips: watch::Receiver<Vec<Ipv4Addr>>,
        linger: Duration,
    ) {
        let actions = self.machine.start(std::time::Instant::now());
        self.carry(actions).await;
        let mut buf = vec![0u8; 2048];
        loop {
            tokio::select! {
                got = self.socket.recv(&mut buf) => match got {
                    Ok(n) => {
                        let actions = self.receive(&buf[..n]);
                        self.carry(actions).await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "ha: receiving adverts failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                _ = sleep_until(self.machine.deadline()) => {
                    let actions = self.machine.tick(std::time::Instant::now());
                    self.carry(actions).await;
                }
                changed = vips.changed() => {
                    if changed.is_ok() {
                        let new = vips.borrow_and_update().clone();
                        self.replace_vips(new);
                    }
                }
                _ = stop.changed() => break,
            }
        }
        let was_master = self.machine.state() == State::Master;
        let actions = self.machine.shutdown();
        self.carry(actions).await;
        if was_master {
            self.linger(linger, &mut buf).await;
        }
    }

    /// After resigning: waits for another router's advert, then a burst's length.
    async fn linger(&mut self, bound: Duration, buf: &mut [u8]) {
        let started = Instant::now();
        let heard = tokio::time::timeout(bound, async {
            loop {
                let Ok(n) = self.socket.recv(buf).await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                if let Ok(rx) = wire::decode(&buf[..n]) {
                    let ha = &self.setup.ha;
                    let ours = rx.src == self.setup.vrrp_interface.ip;
                    let peer = ha.peers.is_empty() || ha.peers.contains(&rx.src);
                    if !ours && peer && rx.advert.vrid == ha.vrid && rx.advert.priority > 0 {
                        return rx.src;
                    }
                }
            }
        })
        .await;
        match heard {
            Ok(by) => {
                let burst = (self.setup.ha.garp_interval * self.setup.ha.garp_repeat)
                    .min(Duration::from_secs(1));
                tracing::info!(
                    new_master = %by,
                    after_ms = started.elapsed().as_millis() as u64,
                    "ha: another director took over; leaving"
                );
                tokio::time::sleep(burst).await;
            }
            Err(_) => tracing::info!(
                waited_ms = bound.as_millis() as u64,
                "ha: no other director advertised; leaving"
            ),
        }
    }

    /// Checks a received packet (see the module doc) and hands it to the machine.
    fn receive(&mut self, packet: &[u8]) -> Vec<Action> {
        let rx = match wire::decode(packet) {
            Ok(rx) => rx,
            Err(reject) => {
                self.status.lock().dropped(reject.as_str());
                return Vec::new();
            }
        };
        if rx.src == self.setup.vrrp_interface.ip {
            return Vec::new();
        }
        let ha = &self.setup.ha;
        let why = if rx.advert.vrid != ha.vrid {
            Some("vrid")
        } else if !ha.peers.is_empty() && !ha.peers.contains(&rx.src) {
            Some("not_a_peer")
        } else if rx.advert.priority != 255 && !same_set(&rx.advert.addrs, &self.setup.vips) {
            Some("address_list")
        } else {
            None
        };
        if let Some(why) = why {
            let mut st = self.status.lock();
            st.dropped(why);
            if st
                .drops
                .iter()
                .any(|(r, n)| *r == why && n.is_power_of_two())
            {
                tracing::warn!(
                    from = %rx.src, vrid = rx.advert.vrid, reason = why,
                    "ha: advert dropped (logged at the 1st, 2nd, 4th, ... of each reason)"
                );
            }
            return Vec::new();
        }
        let interval = Duration::from_millis(u64::from(rx.advert.interval_cs) * 10);
        {
            let mut st = self.status.lock();
            st.adverts_received += 1;
            if interval != ha.advert_interval {
                st.interval_mismatches += 1;
            }
        }
        let state = self.machine.state();
        let lower = rx.advert.priority > 0 && rx.advert.priority < self.setup.ha.priority;
        if state == State::Master
            && lower
            && self.announced.is_none_or(|t| t.elapsed() >= REANNOUNCE)
        {
            tracing::warn!(
                other = %rx.src, priority = rx.advert.priority,
                "ha: another director advertises as master; announcing the VIPs again"
            );
            self.announce();
        }
        let now = std::time::Instant::now();
        let actions = self
            .machine
            .advert(now, rx.src, rx.advert.priority, interval);
        let mut st = self.status.lock();
        st.master = self.machine.master();
        st.master_interval = self.machine.master_interval();
        actions
    }

    /// Carries out the machine's actions, in order.
    async fn carry(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send { priority } => self.send(priority).await,
                Action::Transition { from, to, reason } => self.transition(from, to, reason),
            }
        }
    }

    async fn send(&mut self, priority: u8) {
        let advert = Advert {
            vrid: self.setup.ha.vrid,
            priority,
            interval_cs: (self.setup.ha.advert_interval.as_millis() / 10) as u16,
            addrs: self.setup.vips.clone(),
        };
        let sent = self.socket.send(&advert).await;
        let mut st = self.status.lock();
        match sent {
            Ok(()) => st.adverts_sent += 1,
            Err(e) => {
                st.send_errors += 1;
                if st.send_errors.is_power_of_two() {
                    tracing::warn!(error = %e, "ha: sending an advert failed");
                }
            }
        }
    }

    fn transition(&mut self, from: State, to: State, reason: Reason) {
        tracing::info!(
            vrid = self.setup.ha.vrid,
            from = from.as_str(),
            to = to.as_str(),
            reason = %reason,
            "ha: {from} -> {to}: {reason}"
        );
        if to == State::Master {
            self.own(self.setup.vips.clone());
            self.announce();
        } else if from == State::Master {
            if let Some(b) = self.burst.take() {
                b.abort();
            }
            self.own(Vec::new());
        }
        {
            let mut st = self.status.lock();
            st.state = to;
            st.since = SystemTime::now();
            st.reason = reason.to_string();
            st.transitions += 1;
            st.master = self.machine.master();
            st.master_interval = self.machine.master_interval();
        }
        if let Some(cmd) = &self.setup.ha.notify {
            notify(cmd.clone(), self.setup.ha.vrid, to, reason.to_string());
        }
    }

    fn own(&self, vips: Vec<Ipv4Addr>) {
        if let Err(e) = (self.owner)(&vips) {
            tracing::error!(error = %e, "ha: the datapath refused the VIPs' ownership change");
        }
        self.status.lock().owned = vips;
    }

    /// Starts a gratuitous-ARP burst for every VIP (replacing one in progress).
    fn announce(&mut self) {
        if let Some(b) = self.burst.take() {
            b.abort();
        }
        self.announced = Some(Instant::now());
        let garp = Arc::clone(&self.garp);
        let mac = self.setup.client_interface.mac;
        let vips = self.setup.vips.clone();
        let (repeat, gap) = (self.setup.ha.garp_repeat, self.setup.ha.garp_interval);
        self.burst = Some(tokio::spawn(async move {
            for i in 0..repeat {
                for vip in &vips {
                    if let Err(e) = garp.send(&garp::frame(mac, *vip)) {
                        tracing::warn!(%vip, error = %e, "ha: gratuitous ARP failed");
                    }
                }
                if i + 1 < repeat {
                    tokio::time::sleep(gap).await;
                }
            }
        }));
    }

    fn replace_vips(&mut self, vips: Vec<Ipv4Addr>) {
        if vips == self.setup.vips {
            return;
        }
        tracing::info!(?vips, "ha: the virtual router's addresses changed");
        self.setup.vips = vips;
        if self.machine.state() == State::Master {
            self.own(self.setup.vips.clone());
            self.announce();
        }
    }
}

/// Whether `a` and `b` hold the same addresses (order and repeats aside).
fn same_set(a: &[Ipv4Addr], b: &[Ipv4Addr]) -> bool {
    a.iter().all(|x| b.contains(x)) && b.iter().all(|x| a.contains(x))
}

/// Runs the notify command in the background (see the module doc).
fn notify(cmd: String, vrid: u8, state: State, reason: String) {
    tokio::spawn(async move {
        let child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{cmd} \"$1\""))
            .arg("strait-notify")
            .arg(state.as_str())
            .env("STRAIT_HA_STATE", state.as_str())
            .env("STRAIT_HA_VRID", vrid.to_string())
            .env("STRAIT_HA_REASON", &reason)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "ha: cannot run notify");
                return;
            }
        };
        match tokio::time::timeout(Duration::from_secs(60), child.wait()).await {
            Ok(Ok(status)) if status.success() => {}
            Ok(Ok(status)) => tracing::warn!(%status, state = state.as_str(), "ha: notify failed"),
            Ok(Err(e)) => tracing::warn!(error = %e, "ha: notify"),
            Err(_) => tracing::warn!("ha: notify ran over 60 s; killed"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_lists_compare_as_sets() {
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let b = Ipv4Addr::new(10, 0, 0, 2);
        assert!(same_set(&[a, b], &[b, a]));
        assert!(same_set(&[a, a, b], &[b, a]));
        assert!(!same_set(&[a], &[a, b]));
        assert!(!same_set(&[a, b], &[a]));
        assert!(same_set(&[], &[]));
    }

    #[test]
    fn the_linger_is_bounded() {
        assert_eq!(
            Router::linger_bound(Duration::from_millis(20)),
            Duration::from_millis(140)
        );
        assert_eq!(
            Router::linger_bound(Duration::from_secs(1)),
            Duration::from_millis(2100)
        );
        assert_eq!(
            Router::linger_bound(Duration::from_secs(40)),
            Duration::from_secs(3)
        );
    }
}
