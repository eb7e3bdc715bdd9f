/* SPDX-License-Identifier: Apache-2.0 */
/*
 * arp.h: the ARP responder for the VIPs this director owns (RFC 826), the C twin of
 * lb/src/packet/arp.rs, and the owned map it reads.
 *
 * Contract: strait_arp_reply() answers exactly the frames arp::answer answers: at least 42
 * bytes (Ethernet 14 + ARP 28; trailing padding kept), EtherType ARP without VLAN tag,
 * Ethernet destination broadcast or `mac`, hardware type 1, protocol type 0x0800, lengths 6
 * and 4, operation 1 (request), sender IP != target IP (a gratuitous ARP asks nothing), target
 * IP a key of owned. Such a frame is rewritten in place into the reply (Ethernet to the
 * request's sender hardware address from `mac`; operation 2; sender := `mac` and the VIP;
 * target := the request's sender hardware address and IP) and 1 is returned; any other frame
 * is left untouched and 0 returned. Never reads or writes outside [data, data_end). Which
 * interface answers and what is counted is the caller's (director.bpf.c: the client-facing
 * interface only, counted arp_reply, XDP_TX).
 */
#ifndef STRAIT_LIB_ARP_H
#define STRAIT_LIB_ARP_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include "strait.h"

#define STRAIT_ARPHRD_ETHER 1
#define STRAIT_ARPOP_REQUEST 1
#define STRAIT_ARPOP_REPLY 2

/* ARP for IPv4 over Ethernet (RFC 826): bytes 14..42 of the frame. Addresses are byte
 * arrays: nothing in a frame is aligned. */
struct strait_arp {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 op;
	__u8 sha[6];
	__u8 spa[4];
	__u8 tha[6];
	__u8 tpa[4];
};
_Static_assert(sizeof(struct strait_arp) == 28, "strait_arp size");

/* The VIPs answered for (network order), filled by the control plane (Datapath::set_owned;
 * the value is 0, no flags yet). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STRAIT_MAX_OWNED);
	__type(key, __be32);
	__type(value, __u32);
} owned SEC(".maps");

/* Whether the frame is an untagged ARP frame of at least 42 bytes: the cheap test every frame
 * takes before the client interface's MAC is read. */
static __always_inline int strait_is_arp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if (data + sizeof(struct ethhdr) + sizeof(struct strait_arp) > data_end)
		return 0;
	return eth->h_proto == bpf_htons(ETH_P_ARP);
}

static __always_inline int strait_mac_eq(const __u8 *a, const __u8 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3] && a[4] == b[4] &&
	       a[5] == b[5];
}

static __always_inline int strait_mac_is_broadcast(const __u8 *m)
{
	return (m[0] & m[1] & m[2] & m[3] & m[4] & m[5]) == 0xff;
}

/* See the contract above: 1 when the frame became the reply, 0 when untouched. */
static __always_inline int strait_arp_reply(struct xdp_md *ctx, const __u8 *mac)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct strait_arp *arp = data + sizeof(struct ethhdr);
	__u8 sha[6];
	__be32 spa, tpa;

	if ((void *)(arp + 1) > data_end)
		return 0;
	if (eth->h_proto != bpf_htons(ETH_P_ARP))
		return 0;
	if (!strait_mac_is_broadcast(eth->h_dest) && !strait_mac_eq(eth->h_dest, mac))
		return 0;
	if (arp->htype != bpf_htons(STRAIT_ARPHRD_ETHER) || arp->ptype != bpf_htons(ETH_P_IP) ||
	    arp->hlen != 6 || arp->plen != 4 || arp->op != bpf_htons(STRAIT_ARPOP_REQUEST))
		return 0;
	__builtin_memcpy(&spa, arp->spa, 4);
	__builtin_memcpy(&tpa, arp->tpa, 4);
	if (spa == tpa)
		return 0;
	if (!bpf_map_lookup_elem(&owned, &tpa))
		return 0;
	__builtin_memcpy(sha, arp->sha, 6);
	__builtin_memcpy(eth->h_dest, sha, 6);
	__builtin_memcpy(eth->h_source, mac, 6);
	arp->op = bpf_htons(STRAIT_ARPOP_REPLY);
	__builtin_memcpy(arp->sha, mac, 6);
	__builtin_memcpy(arp->spa, &tpa, 4);
	__builtin_memcpy(arp->tha, sha, 6);
	__builtin_memcpy(arp->tpa, &spa, 4);
	return 1;
}

#endif /* STRAIT_LIB_ARP_H */
