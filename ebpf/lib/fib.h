/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fib.h: next hops of NAT frames from the kernel's FIB and neighbour tables, the C twin of
 * lb::packet::nexthop.
 *
 * Contract: strait_next_hop() asks bpf_fib_lookup() with BPF_FIB_LOOKUP_OUTPUT and the egress
 * interface `oif` as output interface (the longest route through that interface; the kernel
 * answers FWD_DISABLED, here NO_ROUTE, unless IPv4 forwarding is on for `oif`), for a frame
 * src -> dst, TOS, ports and length 0 (the MTU is checked before, lib/icmp.h), and
 * BPF_FIB_LOOKUP_DIRECT: the main routing table (or the VRF table of
 * `oif`) is searched directly, ip rules are ignored (no policy routing: a rule sending these
 * frames to another table, or a route only in table `default`, is not seen; with custom rules
 * the kernel also unmerges the local table from main, so a local destination is then no
 * longer answered NO_ROUTE). This is the table the userspace datapath reads
 * (/proc/net/route, lb/src/userspace/nexthop.rs), and it spares the rule walk: NAT
 * established about 7% cheaper in lb/benches/xdp.rs. STRAIT_HOP_FOUND fills dmac (the gateway's, or dst's when on-link) and
 * smac (the egress interface's); STRAIT_HOP_NO_NEIGH: a route but no valid neighbour entry;
 * STRAIT_HOP_NO_ROUTE: any other answer (no route, local/broadcast/blackhole/unreachable,
 * unknown interface). strait_next_hop_cached() is the same answer through each CPU's cache
 * (below): a found next hop may be up to STRAIT_HOP_TTL_JIFFIES old.
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

/*
 * Each CPU's cache of the FIB's answers (a found next hop, by destination and egress
 * interface), for STRAIT_HOP_TTL_JIFFIES: a bpf_fib_lookup costs about 150 ns, two thirds of
 * a NAT packet. Only STRAIT_HOP_FOUND is kept, so a missing neighbour or route is asked again
 * on every frame; a neighbour or route change is seen within STRAIT_HOP_TTL_JIFFIES (per CPU,
 * per destination). Jiffies, not bpf_ktime_get_coarse_ns(): the verifier inlines
 * bpf_jiffies64() as one load (the coarse clock is a helper call, 15-20 ns here); 256
 * jiffies are 1.02 s at the common HZ=250 (0.26 s at HZ=1000, 2.6 s at HZ=100). The destination is the backend (forwards) or the client (replies), so with
 * several routes of equal cost (ECMP) a destination keeps one path for that time.
 * Direct-mapped by a hash of destination and interface; per CPU, so no locking.
 */
#define STRAIT_HOP_CACHE 8192
#define STRAIT_HOP_TTL_JIFFIES 256

struct strait_hop {
	__be32 dst;
	__u32 oif;
	__u8 dmac[6];
	__u8 smac[6];
	__u32 pad;
	__u64 expires; /* bpf_jiffies64() after which the entry is asked again */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STRAIT_HOP_CACHE);
	__type(key, __u32);
	__type(value, struct strait_hop);
} hop_cache SEC(".maps");

/* strait_next_hop() through the CPU's cache (see above). */
static __always_inline int strait_next_hop_cached(struct xdp_md *ctx, __u32 oif, __be32 src,
						  __be32 dst, __u8 *dmac, __u8 *smac)
{
	__u32 slot = (((__u32)dst ^ oif) * 0x9e3779b1U) >> 19; /* 13 bits: STRAIT_HOP_CACHE */
	struct strait_hop *h = bpf_map_lookup_elem(&hop_cache, &slot);
	__u64 now = bpf_jiffies64();
	int rc;

	if (h && h->dst == dst && h->oif == oif && now < h->expires) {
		__builtin_memcpy(dmac, h->dmac, 6);
		__builtin_memcpy(smac, h->smac, 6);
		return STRAIT_HOP_FOUND;
	}
	rc = strait_next_hop(ctx, oif, src, dst, dmac, smac);
	if (rc == STRAIT_HOP_FOUND && h) {
		h->dst = dst;
		h->oif = oif;
		__builtin_memcpy(h->dmac, dmac, 6);
		__builtin_memcpy(h->smac, smac, 6);
		h->expires = now + STRAIT_HOP_TTL_JIFFIES;
	}
	return rc;
}

#endif /* STRAIT_LIB_FIB_H */
