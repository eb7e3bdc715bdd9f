/* SPDX-License-Identifier: Apache-2.0 */
/*
 * icmp.h: the ICMP errors the director sends instead of forwarding (path MTU of TUN forwards,
 * TTL of NAT frames), the C twin of lb::packet::icmp.
 *
 * Contract:
 * - strait_over_mtu(): a TUN datagram is too big when mtu != 0 and its inner total length
 *   + 20 (the outer header of lib/tun.h) exceeds mtu (STRAIT_DIRECTOR.mtu, the MTU of the
 *   client-facing interface the encapsulated frame leaves through: XDP_TX).
 * - strait_frag_needed() turns the frame, in place, into the ICMP destination unreachable,
 *   code 4 "fragmentation needed and DF set" (RFC 792; RFC 1191 section 4: next-hop MTU =
 *   mtu - 20, saturating at 0, in the low 16 bits of the second word, the high 16 bits 0)
 *   answering it: Ethernet destination = the frame's source MAC, source = `smac` (the
 *   director's), the VLAN tag (if any) and EtherType kept; IPv4 version 4, IHL 5, TOS 0,
 *   total length, ID 0, no flags, offset 0, TTL 64, protocol 1, source = the frame's
 *   destination (the VIP), destination = its source (the client), full header checksum
 *   (RFC 1071); ICMP payload = the original IPv4 header, options included, and the first 8
 *   bytes of its payload (RFC 792; a flow always has them: parse.h checks the fixed TCP or
 *   UDP header); ICMP checksum over the whole ICMP message. The frame ends there
 *   (bpf_xdp_adjust_tail: trailing payload and Ethernet padding are cut). The original
 *   header and its 8 bytes are not moved: the head grows by 28 bytes and the L2 header
 *   moves to the new front. Returns 0, or -1 when the head cannot grow, the tail cannot
 *   shrink or a bound check fails (the caller drops).
 * - strait_icmp_reply() builds both replies: the same bytes with the ICMP type and code, the
 *   second word and the IPv4 source as parameters (strait_frag_needed(): 3, 4, the next-hop
 *   MTU, the VIP).
 * - strait_time_exceeded(): type 11 "time exceeded", code 0 "TTL exceeded in transit"
 *   (RFC 792), second word 0, the quoted datagram as received (TTL included), IPv4 source =
 *   `saddr`, the address of the interface the frame arrived on and the reply leaves by (RFC
 *   1812 4.3.2.4; not the VIP): a NAT forward STRAIT_DIRECTOR.ip from .mac, a NAT reply
 *   .nat_ip from .nat_mac. strait_ttl_expired(): TTL <= 1. NAT makes the director the
 *   backends' router (as the kernel's ip_forward behind nftables DNAT): frames with TTL <= 1
 *   are answered, the others forwarded with TTL - 1 (lib/nat.h). DR (an L2 rewrite on the
 *   same link) and TUN (a new outer header with TTL 64) keep the TTL.
 * - strait_routed_over_mtu(): a NAT datagram (forward or reply, its size unchanged) is too
 *   big when mtu != 0 and its total length exceeds mtu, the MTU of the interface it leaves
 *   by (forwards: STRAIT_DIRECTOR.nat_mtu; replies: .mtu). strait_frag_needed_routed(): the
 *   same "fragmentation needed" as strait_frag_needed() but as a router sends it (RFC 1812
 *   4.3.2.4 and 5.2.7.1): from the address and MAC of the interface the frame arrived on
 *   (as strait_time_exceeded()), next-hop MTU = the egress MTU itself (at most 65535).
 */
#ifndef STRAIT_LIB_ICMP_H
#define STRAIT_LIB_ICMP_H

#include <linux/bpf.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include "parse.h"
#include "tun.h"

#define STRAIT_ICMP_TTL 64
#define STRAIT_IPPROTO_ICMP 1
#define STRAIT_ICMP_DEST_UNREACH 3
#define STRAIT_ICMP_FRAG_NEEDED 4
#define STRAIT_ICMP_TIME_EXCEEDED 11
#define STRAIT_ICMP_TTL_EXCEEDED 0
/* Outer IPv4 header and ICMP header pushed in front of the quoted datagram. */
#define STRAIT_ICMP_PUSH 28
/* ICMP header, longest IPv4 header (IHL 15), 8 payload bytes: 76 bytes, 38 words. */
#define STRAIT_ICMP_MAX_WORDS ((8 + 60 + 8) / 2)

static __always_inline int strait_over_mtu(const struct strait_flow *f, __u32 mtu)
{
	return mtu != 0 && f->l3_end - f->l3_off + 20 > mtu;
}

/* A routed (NAT) datagram keeps its size: over the egress MTU as it is. */
static __always_inline int strait_routed_over_mtu(const struct strait_flow *f, __u32 mtu)
{
	return mtu != 0 && f->l3_end - f->l3_off > mtu;
}

/* The reply for an L2 header of l2 bytes (a constant at each call: 14 or 18). */
static __always_inline int strait_icmp_reply_l2(struct xdp_md *ctx, const struct strait_flow *f,
						const __u8 *smac, __be32 saddr, __u8 type,
						__u8 code, __u32 rest, __u32 l2)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 quoted = f->l4_off - f->l3_off + 8; /* original header + 8 bytes */
	struct iphdr ip = {};
	__u8 dmac[6];

	if (quoted < 28 || quoted > 68)
		return -1;
	if (data + l2 + sizeof(struct iphdr) > data_end)
		return -1;
	__builtin_memcpy(dmac, data + 6, 6);
	struct iphdr *orig = data + l2;

	ip.version = 4;
	ip.ihl = 5;
	ip.tot_len = bpf_htons((__u16)(STRAIT_ICMP_PUSH + quoted));
	ip.ttl = STRAIT_ICMP_TTL;
	ip.protocol = STRAIT_IPPROTO_ICMP;
	ip.saddr = saddr;
	ip.daddr = orig->saddr;
	ip.check = strait_ipv4_csum(&ip);

	if (bpf_xdp_adjust_head(ctx, -STRAIT_ICMP_PUSH))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	/* The original frame had at least l2 + 20 + 8 bytes (parse.h). */
	if (data + STRAIT_ICMP_PUSH + l2 + 28 > data_end)
		return -1;
	/* No overlap: the L2 header (14 or 18 bytes) moves by 28. */
	__builtin_memcpy(data, data + STRAIT_ICMP_PUSH, l2);
	__builtin_memcpy(data, dmac, 6);
	__builtin_memcpy(data + 6, smac, 6);
	__builtin_memcpy(data + l2, &ip, sizeof(ip));
	__u8 *icmp = data + l2 + sizeof(struct iphdr);

	icmp[0] = type;
	icmp[1] = code;
	icmp[2] = 0;
	icmp[3] = 0;
	icmp[4] = (__u8)(rest >> 24);
	icmp[5] = (__u8)(rest >> 16);
	icmp[6] = (__u8)(rest >> 8);
	icmp[7] = (__u8)rest;

	/* The ICMP message: 8 + quoted bytes, an even count (IHL * 4 + 16). */
	__u32 words = (8 + quoted) / 2;
	__u16 *w = (__u16 *)icmp;
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < STRAIT_ICMP_MAX_WORDS; i++) {
		if (i < words) {
			if ((void *)(w + i + 1) > data_end)
				return -1;
			sum += w[i];
		}
	}
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	w[1] = (__u16)~sum;

	int shrink = (int)(l2 + STRAIT_ICMP_PUSH + quoted) - (int)(data_end - data);

	if (shrink > 0)
		return -1;
	if (shrink < 0 && bpf_xdp_adjust_tail(ctx, shrink))
		return -1;
	return 0;
}

/* The ICMP error (type, code, second word rest) answering the frame, from smac and saddr. */
static __always_inline int strait_icmp_reply(struct xdp_md *ctx, const struct strait_flow *f,
					     const __u8 *smac, __be32 saddr, __u8 type, __u8 code,
					     __u32 rest)
{
	if (f->l3_off == STRAIT_ETH_HLEN)
		return strait_icmp_reply_l2(ctx, f, smac, saddr, type, code, rest,
					    STRAIT_ETH_HLEN);
	if (f->l3_off == STRAIT_ETH_HLEN + STRAIT_VLAN_HLEN)
		return strait_icmp_reply_l2(ctx, f, smac, saddr, type, code, rest,
					    STRAIT_ETH_HLEN + STRAIT_VLAN_HLEN);
	return -1;
}

static __always_inline int strait_frag_needed(struct xdp_md *ctx, const struct strait_flow *f,
					      const __u8 *smac, __u32 mtu)
{
	__u32 next_hop = mtu < 20 ? 0 : mtu - 20;

	return strait_icmp_reply(ctx, f, smac, f->dst, STRAIT_ICMP_DEST_UNREACH,
				 STRAIT_ICMP_FRAG_NEEDED, next_hop);
}

/* The same for a routed (NAT) datagram over the egress MTU: from the interface it arrived on
 * (smac, saddr), next-hop MTU = the egress MTU (RFC 1812 4.3.2.4). */
static __always_inline int strait_frag_needed_routed(struct xdp_md *ctx,
						     const struct strait_flow *f,
						     const __u8 *smac, __be32 saddr, __u32 mtu)
{
	__u32 next_hop = mtu > 0xffff ? 0xffff : mtu;

	return strait_icmp_reply(ctx, f, smac, saddr, STRAIT_ICMP_DEST_UNREACH,
				 STRAIT_ICMP_FRAG_NEEDED, next_hop);
}

/* A NAT frame with TTL <= 1 is not forwarded (a router's rule, RFC 1812 5.3.1). */
static __always_inline int strait_ttl_expired(const struct strait_flow *f)
{
	return f->ttl <= 1;
}

static __always_inline int strait_time_exceeded(struct xdp_md *ctx, const struct strait_flow *f,
						const __u8 *smac, __be32 saddr)
{
	return strait_icmp_reply(ctx, f, smac, saddr, STRAIT_ICMP_TIME_EXCEEDED,
				 STRAIT_ICMP_TTL_EXCEEDED, 0);
}

#endif /* STRAIT_LIB_ICMP_H */
