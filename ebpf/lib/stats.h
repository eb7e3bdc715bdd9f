/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stats.h: per-CPU counters (enum strait_counter) and per-backend packet/byte/new-flow totals.
 *
 * Contract: per-CPU maps, so plain increments are race-free; the control plane sums the
 * CPUs. Out-of-range indices are ignored (never fail the packet path). A forwarded packet
 * touches only its backend's entry (packets, bytes, and flows when new): the forwarded-packet
 * counters tx_new / tx_established are sums over backend_stats, not counters entries.
 */
#ifndef STRAIT_LIB_STATS_H
#define STRAIT_LIB_STATS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "strait.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STRAIT_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STRAIT_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct strait_stats);
} backend_stats SEC(".maps");

static __always_inline void strait_count(__u32 counter)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &counter);

	if (v)
		*v += 1;
}

static __always_inline void strait_count_backend(__u32 index, __u64 bytes, int is_new)
{
	struct strait_stats *s = bpf_map_lookup_elem(&backend_stats, &index);

	if (s) {
		s->packets += 1;
		s->bytes += bytes;
		s->flows += is_new ? 1 : 0;
	}
}

#endif /* STRAIT_LIB_STATS_H */
