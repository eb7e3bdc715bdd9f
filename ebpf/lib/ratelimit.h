/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ratelimit.h: the director's per-CPU token buckets, the C twin of lb::packet::ratelimit
 * (same integers, same answers): the budget of ICMP errors it sends and the new-flow guard
 * (how many new flows a CPU records in the connection table).
 *
 * Contract: a bucket's cost (nanoseconds of credit one use costs; 0: no limit) and cap (most
 * credit it holds) come from the config: STRAIT_DIRECTOR.icmp_cost / .icmp_cap
 * (icmp_rate/icmp_burst) for STRAIT_BUDGET_ICMP, .new_flow_cost / .new_flow_cap
 * (new_flow_rate/new_flow_burst) for STRAIT_BUDGET_NEW_FLOW. strait_budget_allowed() grows
 * the CPU's credit in that bucket by the time since its previous call (bpf_ktime_get_ns(); a
 * bucket never used starts full), up to cap, and takes cost from it if it is there (1), else
 * leaves it (0). Only frames about to be answered with an ICMP error, or new flows about to
 * be recorded while a guard is configured, call it, so the clock helper is off the
 * established path (and off every path without a limit). A missing map entry allows (never
 * fails the packet path on a map that cannot be missing).
 */
#ifndef STRAIT_LIB_RATELIMIT_H
#define STRAIT_LIB_RATELIMIT_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "strait.h"

/* Defined by the program (director.bpf.c). */
extern volatile const struct strait_director STRAIT_DIRECTOR;

/* Entries of the budgets map. */
#define STRAIT_BUDGET_ICMP 0
#define STRAIT_BUDGET_NEW_FLOW 1
#define STRAIT_BUDGET_MAX 2

struct strait_bucket {
	__u64 credit; /* nanoseconds of credit held */
	__u64 last;   /* bpf_ktime_get_ns() of the previous call; 0: never used */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STRAIT_BUDGET_MAX);
	__type(key, __u32);
	__type(value, struct strait_bucket);
} budgets SEC(".maps");

static __always_inline int strait_budget_allowed(__u32 which, __u64 cost, __u64 cap)
{
	struct strait_bucket *b;
	__u64 now, earned, credit;

	if (cost == 0)
		return 1;
	b = bpf_map_lookup_elem(&budgets, &which);
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

/* Whether one more ICMP error may be sent on this CPU. */
static __always_inline int strait_icmp_allowed(void)
{
	return strait_budget_allowed(STRAIT_BUDGET_ICMP, STRAIT_DIRECTOR.icmp_cost,
				     STRAIT_DIRECTOR.icmp_cap);
}

/* Whether one more new flow may be recorded on this CPU (the new-flow guard). */
static __always_inline int strait_new_flow_allowed(void)
{
	return strait_budget_allowed(STRAIT_BUDGET_NEW_FLOW, STRAIT_DIRECTOR.new_flow_cost,
				     STRAIT_DIRECTOR.new_flow_cap);
}

#endif /* STRAIT_LIB_RATELIMIT_H */
