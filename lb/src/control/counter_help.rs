//! The help text of each datapath-wide counter in `/metrics`: the XDP program's counters
//! (`abi::Counter`, by `as_str`) and those only the userspace datapath has.

/// What a datapath counter counts, by its name; None for a name not listed here.
pub(super) fn help(name: &str) -> Option<&'static str> {
    Some(match name {
        "pass_not_ipv4" => "Frames that were not IPv4, handed to the kernel",
        "pass_malformed" => "Malformed frames handed to the kernel",
        "pass_fragment" => {
            "Later fragments, and first fragments without ports, handed to the kernel"
        }
        "pass_other" => "Frames of another protocol or for no service, handed to the kernel",
        "tx_new" => "Packets of new flows forwarded to a backend",
        "tx_established" => "Packets of established flows forwarded to their backend",
        "drop_no_backend" => "New flows of a service without any backend up, dropped",
        "drop_bad_backend" => "Packets whose table entry named no current backend, dropped",
        "drop_encap_too_big" => "Packets that could not be encapsulated, dropped",
        "nat_reply" => "NAT replies rewritten back to their VIP and sent to the client",
        "drop_no_route" => "NAT frames without a route through their egress interface, dropped",
        "drop_no_neigh" => "NAT frames whose next hop had no known MAC address, dropped",
        "event_lost" => "Flow events lost because their ring buffer was full",
        "drop_too_big" => "Datagrams over the MTU once encapsulated, DF clear, dropped",
        "icmp_too_big" => "ICMP fragmentation-needed errors sent for datagrams over the MTU",
        "icmp_time_exceeded" => "ICMP time-exceeded errors sent for NAT packets with TTL <= 1",
        "conn_evicted" => {
            "Connection table entries evicted (least recently used) by a new flow's record"
        }
        "conn_busy" => "Connection table sets found claimed by other CPUs (record skipped)",
        "icmp_limited" => "ICMP errors not sent because of the per-CPU rate limit",
        "conn_expired" => "Connection table entries found idle past their timeout",
        "arp_reply" => "ARP requests for an owned VIP answered",
        "pass_not_ours" => "Frames not addressed to this interface's MAC, handed to the kernel",
        "new_flow_unrecorded" => {
            "New DR or TUN flows over the new-flow budget, forwarded without a table record"
        }
        "drop_new_flow_limit" => "New NAT flows over the new-flow budget, dropped",
        "conn_evicted_half_open" => "Of the evicted entries, those of half-open flows",
        "tx_error" => "Frames the packet socket refused to send (userspace datapath)",
        "rx_truncated" => "Frames longer than the receive buffer, left to the kernel (userspace)",
        "rx_error" => "Receives that failed other than by timing out (userspace datapath)",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::Counter;

    #[test]
    fn every_datapath_counter_has_help() {
        let extras = ["tx_error", "rx_truncated", "rx_error"];
        for name in Counter::ALL.iter().map(|c| c.as_str()).chain(extras) {
            let h = help(name).unwrap_or_else(|| panic!("no help for {name}"));
            assert!(h.len() > name.len(), "{name}: {h}");
        }
        assert_eq!(help("no_such_counter"), None);
    }
}
