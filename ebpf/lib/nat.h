/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nat.h: destination NAT and its reply rewrite, the C twin of
 * lb::packet::rewrite::{nat_destination, nat_source}.
 *
 * Contract: strait_nat() sets the destination (STRAIT_NAT_DST) or source (STRAIT_NAT_SRC)
 * address and port of a parsed TCP/UDP flow and updates the IPv4 header checksum and the
 * TCP/UDP checksum incrementally (RFC 1624; the address is in the L4 pseudo-header). A UDP
 * checksum of 0 (none, RFC 768) stays 0; an updated UDP checksum of 0 is written as 0xffff.
 * Both directions also decrement the TTL by one (NAT makes the director the backends' router,
 * as the kernel's forwarding path behind nftables DNAT), updating the IPv4 header checksum
 * incrementally for the TTL/protocol word (TTL the high byte) before the address; callers
 * answer TTL <= 1 with ICMP time exceeded instead (lib/icmp.h).
 * strait_nat_record_reply() stores the reply direction of a new NAT flow (backend -> client)
 * with the VIP and port to restore, half-open as every new record; strait_nat_reply_of()
 * finds it, and a reply without SYN marks it established (the backend's SYN+ACK to a client
 * that never answers, as to a spoofed SYN, leaves it half-open: lib/conntrack.h). Returns 0, or -1 when a
 * bound check fails (frame unchanged).
 */
#ifndef STRAIT_LIB_NAT_H
#define STRAIT_LIB_NAT_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include "strait.h"
#include "parse.h"
#include "csum.h"
#include "conntrack.h"

#define STRAIT_NAT_SRC 0
#define STRAIT_NAT_DST 1

/* The L4 part: checksum at l4h + csum_off (a constant per call), header of hlen bytes. */
static __always_inline int strait_nat_l4(struct iphdr *ip, __u8 *l4h, void *data_end, int udp,
					 int end, __be32 addr, __be16 port)
{
	__u32 hlen = udp ? 8 : 20;
	__u32 csum_off = udp ? 6 : 16;

	if ((void *)(ip + 1) > data_end || (void *)(l4h + hlen) > data_end)
		return -1;
	__be32 *addr_at = end == STRAIT_NAT_DST ? &ip->daddr : &ip->saddr;
	__be16 *port_at = (__be16 *)(l4h + (end == STRAIT_NAT_DST ? 2 : 0));
	__u16 *csum_at = (__u16 *)(l4h + csum_off);
	__be32 old_addr = *addr_at;
	__be16 old_port = *port_at;
	__u16 lc = *csum_at;

	/* TTL - 1 first (the caller checked TTL > 1): the high byte of the TTL/protocol word. */
	__u16 *ttl_proto = (__u16 *)&ip->ttl;
	__u16 old_ttl_proto = *ttl_proto;

	ip->ttl = ip->ttl - 1;
	ip->check = strait_csum_update16(ip->check, old_ttl_proto, *ttl_proto);
	ip->check = strait_csum_update32(ip->check, old_addr, addr);
	if (!(udp && lc == 0)) {
		lc = strait_csum_update16(strait_csum_update32(lc, old_addr, addr), old_port, port);
		if (udp && lc == 0)
			lc = 0xffff;
		*csum_at = lc;
	}
	*addr_at = addr;
	*port_at = port;
	return 0;
}

static __always_inline int strait_nat(struct xdp_md *ctx, const struct strait_flow *f, int end,
				      __be32 addr, __be16 port)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 l3 = f->l3_off;
	__u32 l4 = f->l4_off;

	if (l3 > STRAIT_ETH_HLEN + STRAIT_VLAN_HLEN || l4 > STRAIT_ETH_HLEN + STRAIT_VLAN_HLEN + 60)
		return -1;
	if (f->proto == IPPROTO_UDP)
		return strait_nat_l4(data + l3, data + l4, data_end, 1, end, addr, port);
	return strait_nat_l4(data + l3, data + l4, data_end, 0, end, addr, port);
}

static __always_inline void strait_nat_record_reply(const struct strait_flow *f,
						    const struct strait_backend *b)
{
	struct strait_conn_key key = {
		.src = b->ip,
		.dst = f->src,
		.sport = b->port,
		.dport = f->sport,
		.proto = f->proto,
		.dir = STRAIT_DIR_REPLY,
	};
	struct strait_conn value = {
		.backend = 0,
		.vip = f->dst,
		.vport = f->dport,
	};

	strait_table_put(&key, &value, 0, 0);
}

/* Copies the reply entry of a backend -> client frame into *out: 1, or 0 without one. */
static __always_inline int strait_nat_reply_of(const struct strait_flow *f, struct strait_conn *out)
{
	struct strait_conn_key key;

	strait_conn_key_of(f, &key);
	key.dir = STRAIT_DIR_REPLY;
	return strait_table_get(&key, out, 0, f->syn);
}

#endif /* STRAIT_LIB_NAT_H */
