/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ratelimit.h: the budget of ICMP errors the director sends, one token bucket per CPU, the C
 * twin of lb::packet::ratelimit (same integers, same answers).
 *
 * Contract: STRAIT_DIRECTOR.icmp_cost (nanoseconds of credit one error costs; 0: no limit)
 * and .icmp_cap (most credit a bucket holds) come from the config's icmp_rate/icmp_burst.
 * strait_icmp_allowed() grows the CPU's credit by the time since its previous call
 * (bpf_ktime_get_ns(); a bucket never used starts full), up to icmp_cap, and takes icmp_cost
 * from it if it is there (1), else leaves it (0). Only frames about to be answered with an
 * ICMP error call it, so the clock helper is off the forwarding path. A missing map entry
 * allows (never fails the packet path on a map that cannot be missing).
 */
#ifndef STRAIT_LIB_RATELIMIT_H
#define STRAIT_LIB_RATELIMIT_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "strait.h"

struct strait_icmp_bucket {
	__u64 credit; /* nanoseconds of credit held */
	__u64 last;   /* bpf_ktime_get_ns() of the previous call; 0: never used */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct strait_icmp_bucket);
} icmp_budget SEC(".maps");

static __always_inline int strait_icmp_allowed(__u64 cost, __u64 cap)
{
	__u32 zero = 0;
	struct strait_icmp_bucket *b;
	__u64 now, earned, credit;

	if (cost == 0)
		return 1;
	b = bpf_map_lookup_elem(&icmp_budget, &zero);
	if (!b)
		return 1;
	now = bpf_ktime_get_ns();
	earned = b->last == 0 ? ~0ULL : (now > b->last ? now - b->last : 0);
	credit = b->credit + earned;
	if (credit < b->credit) /* saturate */
		credit = ~0ULL;
	if (credit > cap)
		credit = cap;
	if (now > b->last)
		b->last = now;
	if (credit >= cost) {
		b->credit = credit - cost;
		return 1;
	}
	b->credit = credit;
	return 0;
}

#endif /* STRAIT_LIB_RATELIMIT_H */
