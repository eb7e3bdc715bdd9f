//! The director's `[ha]`: the checks before it starts, and the virtual router wired to the
//! datapath (`crate::vrrp::runner`).
//!
//! Contract:
//! * [`check_vips_not_local`]: with `[ha]`, no VIP may be an address of any interface in the
//!   director's network namespace: the kernel would answer ARP for it on the backup too (and
//!   keep answering on a dead director's host). The error names the address, the interface
//!   and the command that removes it.
//! * [`open`] describes the interfaces and opens the router's sockets; [`start`] starts it
//!   with an owner that hands the VIPs to the datapath's ARP responder
//!   (`Datapath::set_owned`), under the datapath's lock.

use std::net::Ipv4Addr;
use std::sync::{Arc, Weak};

use super::{lock, Inner, StartError};
use crate::config::DirectorConfig;
use crate::iface::Interface;
use crate::vrrp::runner::{Opened, Router, Setup};

/// See the module doc.
pub(super) fn check_vips_not_local(config: &DirectorConfig) -> Result<(), StartError> {
    if config.ha.is_none() {
        return Ok(());
    }
    let local = crate::iface::ipv4_addresses()
        .map_err(|e| StartError::Ha(format!("cannot list the interfaces' addresses: {e}")))?;
    let vips = config.vips();
    match local.iter().find(|(_, ip)| vips.contains(ip)) {
        None => Ok(()),
        Some((dev, ip)) => Err(StartError::Ha(format!(
            "VIP {ip} is an address of {dev} here; with [ha] the datapath answers ARP for the \
             VIPs only while this director is master, so they must not be interface addresses \
             (remove it: ip address del {ip}/32 dev {dev})"
        ))),
    }
}

/// Opens the virtual router's sockets (`[ha]` present).
pub(super) fn open(config: &DirectorConfig, client: &Interface) -> Result<Opened, StartError> {
    let ha = config.ha.clone().expect("open is called with [ha]");
    let name = config.ha_interface().unwrap_or(&config.interface);
    let vrrp_interface = if name == client.name {
        client.clone()
    } else {
        Interface::by_name(name)?
    };
    let setup = Setup {
        ha,
        vrrp_interface,
        client_interface: client.clone(),
        vips: config.vips(),
    };
    Router::open(setup).map_err(|e| {
        StartError::Ha(format!(
            "cannot open the VRRP sockets on {name}: {e} (raw sockets need root or CAP_NET_RAW)"
        ))
    })
}

/// Starts an opened router; the datapath answers ARP for the VIPs while it is master.
pub(super) fn start(inner: &Arc<Inner>, opened: Opened) -> Router {
    let weak: Weak<Inner> = Arc::downgrade(inner);
    let owner = Arc::new(move |vips: &[Ipv4Addr]| {
        let Some(inner) = weak.upgrade() else {
            return Err("the director is gone".to_owned());
        };
        let mut datapath = lock(&inner.datapath);
        datapath.set_owned(vips).map_err(|e| e.to_string())
    });
    Router::start(opened, owner)
}
