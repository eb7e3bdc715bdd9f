/* SPDX-License-Identifier: Apache-2.0 */
/*
 * maglev.h: the 5-tuple flow hash and the Maglev table lookup.
 *
 * Contract: strait_flow_hash() equals lb::maglev::flow_hash (lb/src/maglev/hash.rs) bit for
 * bit: FNV-1a 64 (offset basis 0xcbf29ce484222325, prime 0x100000001b3) over the 13 bytes
 * src(4) dst(4) sport(2, big-endian) dport(2, big-endian) proto(1), then the MurmurHash3
 * fmix64 finalizer; under STRAIT_HASH_SOURCE (sh) only src counts, the rest hashed as zeros
 * (lb::packet::service::FlowHash::Source). strait_maglev_pick() returns the backend index stored at
 * hash % table_size of the service's slot, or -1 when the service has no table or the slot
 * is out of range.
 */
#ifndef STRAIT_LIB_MAGLEV_H
#define STRAIT_LIB_MAGLEV_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "strait.h"
#include "parse.h"

#define STRAIT_FNV_OFFSET 0xcbf29ce484222325ULL
#define STRAIT_FNV_PRIME 0x100000001b3ULL

static __always_inline __u64 strait_fnv_byte(__u64 h, __u8 b)
{
	return (h ^ b) * STRAIT_FNV_PRIME;
}

static __always_inline __u64 strait_fnv_be32(__u64 h, __be32 v)
{
	const __u8 *p = (const __u8 *)&v;

	h = strait_fnv_byte(h, p[0]);
	h = strait_fnv_byte(h, p[1]);
	h = strait_fnv_byte(h, p[2]);
	return strait_fnv_byte(h, p[3]);
}

static __always_inline __u64 strait_fnv_be16(__u64 h, __be16 v)
{
	const __u8 *p = (const __u8 *)&v;

	h = strait_fnv_byte(h, p[0]);
	return strait_fnv_byte(h, p[1]);
}

static __always_inline __u64 strait_fmix64(__u64 k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ULL;
	k ^= k >> 33;
	return k;
}

static __always_inline __u64 strait_hash5(__be32 src, __be32 dst, __be16 sport, __be16 dport,
					  __u8 proto)
{
	__u64 h = STRAIT_FNV_OFFSET;

	h = strait_fnv_be32(h, src);
	h = strait_fnv_be32(h, dst);
	h = strait_fnv_be16(h, sport);
	h = strait_fnv_be16(h, dport);
	h = strait_fnv_byte(h, proto);
	return strait_fmix64(h);
}

/* The hash of a new flow under the service's rule (STRAIT_HASH_*; unknown = 5-tuple). */
static __always_inline __u64 strait_flow_hash(const struct strait_flow *f, __u8 rule)
{
	if (rule == STRAIT_HASH_SOURCE)
		return strait_hash5(f->src, 0, 0, 0, 0);
	return strait_hash5(f->src, f->dst, f->sport, f->dport, f->proto);
}

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, STRAIT_MAGLEV_SLOTS * STRAIT_MAGLEV_MAX);
	__type(key, __u32);
	__type(value, __u32);
} maglev SEC(".maps");

static __always_inline long strait_maglev_pick(const struct strait_service *svc, __u64 hash)
{
	__u32 size = svc->table_size;
	__u32 slot = svc->table_slot;

	if (size == 0 || size > STRAIT_MAGLEV_MAX || slot >= STRAIT_MAGLEV_SLOTS)
		return -1;
	__u32 key = slot * STRAIT_MAGLEV_MAX + (__u32)(hash % size);
	__u32 *b = bpf_map_lookup_elem(&maglev, &key);

	if (!b)
		return -1;
	return *b;
}

#endif /* STRAIT_LIB_MAGLEV_H */
