/* SPDX-License-Identifier: Apache-2.0 */
/*
 * xdp_fwd_one.bpf.c: the floor of any XDP director in the L4 namespace benchmark
 * (topology/bench/l4.sh, mode bare-dr). Every IPv4 frame to the VIP gets the destination MAC
 * of ONE backend and the director's source MAC and goes back out (XDP_TX); everything else
 * is XDP_PASS. No services, no table, no hashing, no counters: what is left is the cost of the
 * extra hop itself (the veth, the bridge, native XDP on both). Compiled by the benchmark with
 * -DVIP=0x... (host order) -DDMAC=0x..,.. -DSMAC=0x..,.. (six bytes each).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

SEC("xdp")
int fwd_one(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	const unsigned char dmac[6] = { DMAC }, smac[6] = { SMAC };

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->daddr != bpf_htonl(VIP))
		return XDP_PASS;
	__builtin_memcpy(eth->h_dest, dmac, 6);
	__builtin_memcpy(eth->h_source, smac, 6);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
