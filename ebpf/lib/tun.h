/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tun.h: IP-in-IP encapsulation (RFC 2003 section 3.1), the C twin of
 * lb::packet::rewrite::encapsulate.
 *
 * Contract: strait_encapsulate() grows the frame at its head by 20 bytes, moves the L2
 * header (Ethernet and its VLAN tag, 14 or 18 bytes) to the new front and writes an outer
 * IPv4 header between it and the inner datagram: version 4, IHL 5, TOS and identification
 * copied from the inner header, DF copied, MF and offset 0, TTL 64, protocol 4, source =
 * director, destination = backend, total length = 20 + inner total length, full header
 * checksum (RFC 1071). Trailing Ethernet padding stays at the end. Returns 0, or -1 when
 * the head cannot grow or a bound check fails (the caller drops or passes).
 */
#ifndef STRAIT_LIB_TUN_H
#define STRAIT_LIB_TUN_H

#include <linux/bpf.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include "parse.h"

#define STRAIT_TUN_TTL 64
#define STRAIT_IPPROTO_IPIP 4

static __always_inline __u16 strait_ipv4_csum(const struct iphdr *h)
{
	const __u16 *w = (const __u16 *)h;
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

static __always_inline int strait_encapsulate(struct xdp_md *ctx, const struct strait_flow *f,
					      __be32 src, __be32 dst)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *inner = data + f->l3_off;
	struct iphdr outer = {};

	if (f->l3_off != STRAIT_ETH_HLEN && f->l3_off != STRAIT_ETH_HLEN + STRAIT_VLAN_HLEN)
		return -1;
	if ((void *)(inner + 1) > data_end)
		return -1;
	outer.version = 4;
	outer.ihl = 5;
	outer.tos = inner->tos;
	outer.tot_len = bpf_htons((__u16)(f->l3_end - f->l3_off + 20));
	outer.id = inner->id;
	outer.frag_off = f->dont_fragment ? bpf_htons(0x4000) : 0;
	outer.ttl = STRAIT_TUN_TTL;
	outer.protocol = STRAIT_IPPROTO_IPIP;
	outer.saddr = src;
	outer.daddr = dst;
	outer.check = strait_ipv4_csum(&outer);

	if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct iphdr)))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (f->l3_off == STRAIT_ETH_HLEN) {
		if (data + STRAIT_ETH_HLEN + 20 + sizeof(struct iphdr) > data_end)
			return -1;
		/* No overlap: the header (14 or 18 bytes) moves by 20. */
		__builtin_memcpy(data, data + 20, STRAIT_ETH_HLEN);
		__builtin_memcpy(data + STRAIT_ETH_HLEN, &outer, sizeof(outer));
	} else {
		if (data + STRAIT_ETH_HLEN + STRAIT_VLAN_HLEN + 20 + sizeof(struct iphdr) > data_end)
			return -1;
		__builtin_memcpy(data, data + 20, STRAIT_ETH_HLEN + STRAIT_VLAN_HLEN);
		__builtin_memcpy(data + STRAIT_ETH_HLEN + STRAIT_VLAN_HLEN, &outer, sizeof(outer));
	}
	return 0;
}

#endif /* STRAIT_LIB_TUN_H */
