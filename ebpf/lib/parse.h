/* SPDX-License-Identifier: Apache-2.0 */
/*
 * parse.h: frame classification, the C twin of lb/src/packet/parse.rs.
 *
 * Contract: strait_parse() classifies the frame exactly as parse::parse does, checking in
 * this order: Ethernet (14 bytes), one optional 802.1Q tag (4 more), EtherType IPv4, fixed
 * IPv4 header (20), version 4, IHL >= 5 (RFC 791 section 3.1), options present, total length
 * >= IHL * 4 and within the frame (trailing padding allowed), then fragments (RFC 791
 * section 2.3): a later fragment has no ports; a first fragment and a whole datagram carry
 * their 5-tuple when the fixed TCP (20, RFC 9293 section 3.1) or UDP (8, RFC 768) header is
 * complete inside the datagram. Returns a STRAIT_PARSE_* class; only STRAIT_PARSE_FLOW fills
 * *flow completely, opening_syn included: TCP (whole or first fragment) with SYN set and ACK
 * clear in its flags byte (offset 13 of the fixed header), as parse::Flow::opening_syn, and
 * closing: FIN or RST set in it, as parse::Flow::closing, and syn: SYN set in it, as
 * parse::Flow::syn; all 0 for UDP. Never reads outside
 * [data, data_end).
 */
#ifndef STRAIT_LIB_PARSE_H
#define STRAIT_LIB_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define STRAIT_PARSE_FLOW 0      /* whole TCP/UDP datagram or first fragment with ports */
#define STRAIT_PARSE_NOT_IPV4 1
#define STRAIT_PARSE_MALFORMED 2
#define STRAIT_PARSE_FRAGMENT 3  /* later fragment, or first fragment without ports */
#define STRAIT_PARSE_OTHER 4     /* whole datagram of another protocol */

#define STRAIT_ETH_HLEN 14
#define STRAIT_VLAN_HLEN 4
#define STRAIT_ETH_P_8021Q 0x8100
#define STRAIT_TCP_FLAGS_OFF 13
#define STRAIT_TCP_SYN 0x02
#define STRAIT_TCP_ACK 0x10
#define STRAIT_TCP_FIN 0x01
#define STRAIT_TCP_RST 0x04

struct strait_flow {
	__be32 src;
	__be32 dst;
	__be16 sport; /* as in the header (network order) */
	__be16 dport;
	__u8 proto;
	__u8 dont_fragment;
	__u8 first_fragment;
	__u8 opening_syn; /* TCP SYN without ACK: scheduled anew (director.bpf.c step 3) */
	__u8 ttl;         /* IPv4 TTL as received (NAT: decremented, <= 1 answered, lib/icmp.h) */
	__u8 closing;     /* TCP FIN or RST set: its entry takes tcp_fin_idle (lib/conntrack.h) */
	__u8 syn;         /* TCP SYN set (with or without ACK): does not establish (lib/conntrack.h) */
	__u8 pad;
	__u32 l3_off; /* 14 or 18 */
	__u32 l4_off; /* l3_off + IHL * 4 */
	__u32 l3_end; /* l3_off + total length */
};

static __always_inline int strait_parse(struct xdp_md *ctx, struct strait_flow *flow)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 len = (__u64)(data_end - data);
	struct ethhdr *eth = data;
	__be16 ethertype;
	__u32 l3 = STRAIT_ETH_HLEN;

	if ((void *)(eth + 1) > data_end)
		return STRAIT_PARSE_MALFORMED;
	ethertype = eth->h_proto;
	if (ethertype == bpf_htons(STRAIT_ETH_P_8021Q)) {
		__be16 *inner = data + STRAIT_ETH_HLEN + 2;

		if ((void *)(inner + 1) > data_end)
			return STRAIT_PARSE_MALFORMED;
		ethertype = *inner;
		l3 = STRAIT_ETH_HLEN + STRAIT_VLAN_HLEN;
	}
	if (ethertype != bpf_htons(ETH_P_IP))
		return STRAIT_PARSE_NOT_IPV4;

	struct iphdr *ip = data + l3;

	if ((void *)(ip + 1) > data_end)
		return STRAIT_PARSE_MALFORMED;
	if (ip->version != 4)
		return STRAIT_PARSE_MALFORMED;
	__u32 hlen = (__u32)ip->ihl * 4;

	if (hlen < 20)
		return STRAIT_PARSE_MALFORMED;
	if ((__u64)l3 + hlen > len)
		return STRAIT_PARSE_MALFORMED;
	__u32 total = bpf_ntohs(ip->tot_len);

	if (total < hlen || (__u64)l3 + total > len)
		return STRAIT_PARSE_MALFORMED;
	__u16 frag = bpf_ntohs(ip->frag_off);
	__u8 more = (frag & 0x2000) != 0;
	__u8 proto = ip->protocol;
	__u32 l4 = l3 + hlen;
	__u32 l3_end = l3 + total;
	__u32 l4_len;

	if ((frag & 0x1fff) != 0)
		return STRAIT_PARSE_FRAGMENT;
	if (proto == IPPROTO_TCP)
		l4_len = 20;
	else if (proto == IPPROTO_UDP)
		l4_len = 8;
	else
		return more ? STRAIT_PARSE_FRAGMENT : STRAIT_PARSE_OTHER;
	if (l3_end - l4 < l4_len)
		return more ? STRAIT_PARSE_FRAGMENT : STRAIT_PARSE_MALFORMED;

	/* l4 <= 18 + 60: a bounded offset the verifier can follow. */
	if (l4 > STRAIT_ETH_HLEN + STRAIT_VLAN_HLEN + 60)
		return STRAIT_PARSE_MALFORMED;
	__be16 *ports = data + l4;

	if ((void *)(ports + 2) > data_end)
		return STRAIT_PARSE_MALFORMED;
	__u8 opening_syn = 0, closing = 0, syn = 0;

	if (proto == IPPROTO_TCP) {
		/* Inside the datagram (20 TCP bytes from l4, checked above): for the verifier. */
		__u8 *flags = data + l4 + STRAIT_TCP_FLAGS_OFF;

		if ((void *)(flags + 1) > data_end)
			return STRAIT_PARSE_MALFORMED;
		opening_syn = (*flags & (STRAIT_TCP_SYN | STRAIT_TCP_ACK)) == STRAIT_TCP_SYN;
		closing = (*flags & (STRAIT_TCP_FIN | STRAIT_TCP_RST)) != 0;
		syn = (*flags & STRAIT_TCP_SYN) != 0;
	}
	flow->src = ip->saddr;
	flow->dst = ip->daddr;
	flow->sport = ports[0];
	flow->dport = ports[1];
	flow->proto = proto;
	flow->dont_fragment = (frag & 0x4000) != 0;
	flow->first_fragment = more;
	flow->opening_syn = opening_syn;
	flow->closing = closing;
	flow->syn = syn;
	flow->ttl = ip->ttl;
	flow->l3_off = l3;
	flow->l4_off = l4;
	flow->l3_end = l3_end;
	return STRAIT_PARSE_FLOW;
}

#endif /* STRAIT_LIB_PARSE_H */
