/* SPDX-License-Identifier: Apache-2.0 */
/*
 * maglev.h: the 5-tuple flow hash and the Maglev table lookup.
 *
 * Contract: strait_flow_hash() equals lb::maglev::flow_hash (lb/src/maglev/hash.rs) bit for
 * bit: w0 = src | dst << 32, w1 = sport | dport << 16 | proto << 32 (the header fields as
 * loaded, network-order bytes on a little-endian target), then the MurmurHash3 fmix64
 * finalizer of w0 * 0x9e3779b97f4a7c15 ^ w1 * 0xc2b2ae3d27d4eb4f; under STRAIT_HASH_SOURCE (sh) only src counts, the rest hashed as zeros
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

static __always_inline __u64 strait_fmix64(__u64 k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ULL;
	k ^= k >> 33;
	return k;
}

/* The header fields as loaded (network-order bytes in a little-endian register) are the
 * little-endian readings the Rust side builds from bytes. */
static __always_inline __u64 strait_hash5(__be32 src, __be32 dst, __be16 sport, __be16 dport,
					  __u8 proto)
{
	__u64 w0 = (__u64)(__u32)src | (__u64)(__u32)dst << 32;
	__u64 w1 = (__u64)(__u16)sport | (__u64)(__u16)dport << 16 | (__u64)proto << 32;

	return strait_fmix64(w0 * 0x9e3779b97f4a7c15ULL ^ w1 * 0xc2b2ae3d27d4eb4fULL);
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
