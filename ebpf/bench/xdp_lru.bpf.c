/* SPDX-License-Identifier: Apache-2.0 */
/*
 * xdp_lru.bpf.c: the reference program of the XDP ns/packet benchmark (lb/benches/xdp.rs,
 * issue 14): not strait, never shipped, written for the bench as the design most XDP load
 * balancers use, a per-CPU kernel LRU hash of the 5-tuple in front of a backend pick.
 *
 * Contract:
 * - ref_lru parses Ethernet, IPv4 (any header length) and the TCP or UDP ports, every access
 *   bounds-checked; anything else (another EtherType or protocol, a truncated frame) is
 *   XDP_PASS, untouched.
 * - It looks the 5-tuple (struct ref_flow_key) up in ref_flows, a BPF_MAP_TYPE_LRU_PERCPU_HASH
 *   of REF_FLOWS entries (the director's default max_conns, 2^20; the loader may resize it).
 *   A hit uses the recorded backend (counted REF_HIT). A miss (counted REF_MISS) picks backend
 *   hash(5-tuple) % REF_BACKENDS and inserts { backend, flags 0, atime = bpf_ktime_get_ns() }
 *   (BPF_ANY; the kernel's LRU evicts when full); a failed insert is counted REF_INSERT_FAILED
 *   and the packet still goes to the picked backend.
 * - It then writes the frame's destination MAC (the balancer's own) as the source MAC and the
 *   backend's MAC (ref_backends[backend], filled by the bench) as the destination: a DR
 *   forward, XDP_TX. A backend index without an entry is XDP_ABORTED.
 * - ref_stats is a per-CPU array of the REF_* counters, read by the bench to check that every
 *   repetition of a distinct-flow run was a miss and insert, and every repetition of an
 *   established run a hit.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define REF_FLOWS (1 << 20)
#define REF_BACKENDS 3

/* ref_stats indexes. */
#define REF_MISS 0
#define REF_HIT 1
#define REF_INSERT_FAILED 2
#define REF_STATS 3

struct ref_flow_key {
	__u32 src;
	__u32 dst;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad[3];
};

/* A balancer's flow entry: the backend, flags, and when the flow was last seen. */
struct ref_flow {
	__u32 backend;
	__u32 flags;
	__u64 atime;
};

struct ref_backend {
	__u8 mac[ETH_ALEN];
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, REF_FLOWS);
	__type(key, struct ref_flow_key);
	__type(value, struct ref_flow);
} ref_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, REF_BACKENDS);
	__type(key, __u32);
	__type(value, struct ref_backend);
} ref_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, REF_STATS);
	__type(key, __u32);
	__type(value, __u64);
} ref_stats SEC(".maps");

static __always_inline void ref_count(__u32 index)
{
	__u64 *v = bpf_map_lookup_elem(&ref_stats, &index);

	if (v)
		*v += 1;
}

/* A multiply-xorshift hash of the key's 16 bytes (the pick needs spread, not secrecy). */
static __always_inline __u32 ref_hash(const struct ref_flow_key *k)
{
	const __u64 *w = (const __u64 *)k;
	__u64 h = w[0] * 0x9e3779b97f4a7c15ULL;

	h = (h ^ (h >> 32) ^ w[1]) * 0xbf58476d1ce4e5b9ULL;
	return (__u32)(h ^ (h >> 31));
}

SEC("xdp")
int ref_lru(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct ref_flow_key key = {};
	struct ref_flow *flow;
	struct ref_backend *backend;
	__u32 index;
	__u16 *ports;

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->ihl < 5 || (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP))
		return XDP_PASS;
	ports = (void *)ip + ip->ihl * 4;
	if ((void *)(ports + 2) > end)
		return XDP_PASS;
	key.src = ip->saddr;
	key.dst = ip->daddr;
	key.sport = ports[0];
	key.dport = ports[1];
	key.proto = ip->protocol;
	flow = bpf_map_lookup_elem(&ref_flows, &key);
	if (flow) {
		ref_count(REF_HIT);
		index = flow->backend;
	} else {
		struct ref_flow fresh = {};

		ref_count(REF_MISS);
		index = ref_hash(&key) % REF_BACKENDS;
		fresh.backend = index;
		fresh.atime = bpf_ktime_get_ns();
		if (bpf_map_update_elem(&ref_flows, &key, &fresh, BPF_ANY))
			ref_count(REF_INSERT_FAILED);
	}
	backend = bpf_map_lookup_elem(&ref_backends, &index);
	if (!backend)
		return XDP_ABORTED;
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, backend->mac, ETH_ALEN);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
