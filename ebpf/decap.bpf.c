/* SPDX-License-Identifier: Apache-2.0 */
/*
 * decap.bpf.c: the backend side of TUN mode (one SEC("xdp") entry, strait_decap).
 *
 * This kernel family often ships without the ipip module, so a node with [l4] mode = "tun"
 * strips the director's IP-in-IP header (RFC 2003 section 3.1) itself, before the stack sees
 * the frame. Contract (the Rust model is lb::decap::decapsulate, tested against this program
 * under BPF_PROG_TEST_RUN by lb/tests/decap.rs):
 * 1. Accepted frames: Ethernet, at most one 802.1Q tag (the L2 header is then 18 bytes),
 *    EtherType IPv4; an outer IPv4 header with version 4, IHL >= 5, the whole header inside
 *    the frame, a valid header checksum (RFC 1071, options included), total length >= IHL*4
 *    and inside the frame (trailing Ethernet padding allowed), not a fragment (MF clear,
 *    offset 0), protocol 4 (IP-in-IP); an inner IPv4 header with version 4 and IHL >= 5
 *    whose fixed 20 bytes lie inside the outer datagram; the inner destination is a key of
 *    the `vips` map.
 * 2. An accepted frame loses its outer header: the L2 header (14 or 18 bytes, unchanged) is
 *    moved forward by IHL*4 bytes (bpf_xdp_adjust_head), so the frame becomes L2 header +
 *    inner datagram + whatever followed the outer datagram; XDP_PASS, and the counter
 *    STRAIT_DECAP_CNT_DECAPSULATED is incremented.
 * 3. Every other frame (other EtherTypes, other protocols, other destinations, fragments,
 *    truncated or malformed headers) is XDP_PASS unmodified and counts
 *    STRAIT_DECAP_CNT_PASSED. Nothing is ever dropped: the kernel decides about the rest.
 * Not done: ECN propagation from the outer header (RFC 6040); the outer TTL is discarded.
 *
 * Maps (names are what lb/src/decap.rs opens; the counter indices are mirrored there as
 * decap::Counter, kept in step by this comment and the root test's counter checks):
 *   vips      HASH         __be32 (inner destination, network order) -> __u8 (1)
 *   counters  PERCPU_ARRAY __u32 (STRAIT_DECAP_CNT_*) -> __u64
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

/* Most VIPs one node holds ([l4] vips is 1..=64). */
#define STRAIT_DECAP_MAX_VIPS 64

#define STRAIT_DECAP_CNT_DECAPSULATED 0
#define STRAIT_DECAP_CNT_PASSED 1
#define STRAIT_DECAP_CNT_MAX 2

#define STRAIT_DECAP_ETH_HLEN 14
#define STRAIT_DECAP_VLAN_HLEN 4
#define STRAIT_DECAP_ETH_P_8021Q 0x8100
#define STRAIT_DECAP_IPPROTO_IPIP 4
/* Longest IPv4 header (IHL 15), in 16-bit words. */
#define STRAIT_DECAP_MAX_IP_WORDS 30

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STRAIT_DECAP_MAX_VIPS);
	__type(key, __be32);
	__type(value, __u8);
} vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STRAIT_DECAP_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void strait_decap_count(__u32 counter)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &counter);

	if (v)
		*v += 1;
}

/* Ones'-complement sum of the header's hlen bytes (a multiple of 4, 20..=60) is 0xffff.
 * Unrolled into 32-bit steps at constant offsets, each guarded, so the verifier sees fixed
 * packet ranges. */
static __always_inline int strait_decap_csum_ok(void *ip, __u32 hlen, void *data_end)
{
	__u16 *w = ip;
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < STRAIT_DECAP_MAX_IP_WORDS; i += 2) {
		if ((__u32)i * 2 < hlen) {
			if ((void *)(w + i + 2) > data_end)
				return 0;
			sum += w[i];
			sum += w[i + 1];
		}
	}
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

/* Step 1 of the contract: the outer header length (20..=60) of an accepted frame, or 0. */
static __always_inline __u32 strait_decap_accept(void *data, void *data_end, __u32 l3)
{
	__u64 len = (__u64)(data_end - data);
	struct iphdr *outer = data + l3;

	if ((void *)(outer + 1) > data_end)
		return 0;
	if (outer->version != 4 || outer->protocol != STRAIT_DECAP_IPPROTO_IPIP)
		return 0;
	__u32 hlen = (__u32)outer->ihl * 4;
	__u32 total = bpf_ntohs(outer->tot_len);

	if (hlen < 20 || (__u64)l3 + hlen > len)
		return 0;
	if (total < hlen || (__u64)l3 + total > len)
		return 0;
	if ((bpf_ntohs(outer->frag_off) & 0x3fff) != 0)
		return 0;
	if (!strait_decap_csum_ok(outer, hlen, data_end))
		return 0;
	if (total - hlen < 20)
		return 0;
	struct iphdr *inner = data + l3 + hlen;

	if ((void *)(inner + 1) > data_end)
		return 0;
	if (inner->version != 4 || inner->ihl < 5)
		return 0;
	__be32 dst = inner->daddr;

	if (!bpf_map_lookup_elem(&vips, &dst))
		return 0;
	return hlen;
}

SEC("xdp")
int strait_decap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u8 l2[STRAIT_DECAP_ETH_HLEN + STRAIT_DECAP_VLAN_HLEN];
	__u32 l3 = STRAIT_DECAP_ETH_HLEN;
	__be16 ethertype;

	if ((void *)(eth + 1) > data_end)
		goto pass;
	ethertype = eth->h_proto;
	if (ethertype == bpf_htons(STRAIT_DECAP_ETH_P_8021Q)) {
		__be16 *inner = data + STRAIT_DECAP_ETH_HLEN + 2;

		if ((void *)(inner + 1) > data_end)
			goto pass;
		ethertype = *inner;
		l3 = STRAIT_DECAP_ETH_HLEN + STRAIT_DECAP_VLAN_HLEN;
	}
	if (ethertype != bpf_htons(ETH_P_IP))
		goto pass;
	__u32 hlen = strait_decap_accept(data, data_end, l3);

	if (hlen == 0)
		goto pass;

	/* Step 2: keep the L2 header, drop hlen bytes at the head, write it back in front. */
	if (data + sizeof(l2) > data_end)
		goto pass; /* cannot happen: l3 + 40 bytes were read */
	__builtin_memcpy(l2, data, sizeof(l2));
	if (bpf_xdp_adjust_head(ctx, (int)hlen))
		goto pass;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	/* The frame still holds l3 + 20 bytes (the inner header): these checks are for the
	 * verifier and never fail. */
	if (l3 == STRAIT_DECAP_ETH_HLEN) {
		if (data + STRAIT_DECAP_ETH_HLEN > data_end)
			return XDP_PASS;
		__builtin_memcpy(data, l2, STRAIT_DECAP_ETH_HLEN);
	} else {
		if (data + STRAIT_DECAP_ETH_HLEN + STRAIT_DECAP_VLAN_HLEN > data_end)
			return XDP_PASS;
		__builtin_memcpy(data, l2, STRAIT_DECAP_ETH_HLEN + STRAIT_DECAP_VLAN_HLEN);
	}
	strait_decap_count(STRAIT_DECAP_CNT_DECAPSULATED);
	return XDP_PASS;

pass:
	strait_decap_count(STRAIT_DECAP_CNT_PASSED);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
