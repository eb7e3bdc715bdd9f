/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fib.h: next hops of NAT frames from the kernel's FIB and neighbour tables, the C twin of
 * lb::packet::nexthop.
 *
 * Contract: strait_next_hop() asks bpf_fib_lookup() with BPF_FIB_LOOKUP_OUTPUT and the egress
 * interface `oif` as output interface (the longest route through that interface; no
 * forwarding sysctl involved), for a frame src -> dst, TOS, ports and length 0 (no MTU check,
 * a known limit), and BPF_FIB_LOOKUP_DIRECT: the main routing table (or the VRF table of
 * `oif`) is searched directly, ip rules are ignored (no policy routing: a rule sending these
 * frames to another table, or a route only in table `default`, is not seen; with custom rules
 * the kernel also unmerges the local table from main, so a local destination is then no
 * longer answered NO_ROUTE). This is the table the userspace datapath reads
 * (/proc/net/route, lb/src/userspace/nexthop.rs), and it spares the rule walk: NAT
 * established about 7% cheaper in lb/benches/xdp.rs. STRAIT_HOP_FOUND fills dmac (the gateway's, or dst's when on-link) and
 * smac (the egress interface's); STRAIT_HOP_NO_NEIGH: a route but no valid neighbour entry;
 * STRAIT_HOP_NO_ROUTE: any other answer (no route, local/broadcast/blackhole/unreachable,
 * unknown interface).
 */
#ifndef STRAIT_LIB_FIB_H
#define STRAIT_LIB_FIB_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define STRAIT_AF_INET 2

#define STRAIT_HOP_FOUND 0
#define STRAIT_HOP_NO_NEIGH 1
#define STRAIT_HOP_NO_ROUTE 2

static __always_inline int strait_next_hop(struct xdp_md *ctx, __u32 oif, __be32 src,
					   __be32 dst, __u8 *dmac, __u8 *smac)
{
	struct bpf_fib_lookup p = {};
	long rc;

	p.family = STRAIT_AF_INET;
	p.ipv4_src = src;
	p.ipv4_dst = dst;
	p.ifindex = oif;
	rc = bpf_fib_lookup(ctx, &p, sizeof(p), BPF_FIB_LOOKUP_OUTPUT | BPF_FIB_LOOKUP_DIRECT);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		__builtin_memcpy(dmac, p.dmac, 6);
		__builtin_memcpy(smac, p.smac, 6);
		return STRAIT_HOP_FOUND;
	}
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return STRAIT_HOP_NO_NEIGH;
	return STRAIT_HOP_NO_ROUTE;
}

#endif /* STRAIT_LIB_FIB_H */
