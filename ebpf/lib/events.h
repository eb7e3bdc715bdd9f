/* SPDX-License-Identifier: Apache-2.0 */
/*
 * events.h: the ring buffer of new-flow events (struct strait_flow_event).
 *
 * Contract: strait_flow_event() queues one event per new flow recorded in conns (forward
 * direction, every mode); when the ring is full the event is lost and counted
 * (STRAIT_CNT_EVENT_LOST), the packet is handled as if it had been queued.
 */
#ifndef STRAIT_LIB_EVENTS_H
#define STRAIT_LIB_EVENTS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "strait.h"
#include "parse.h"
#include "stats.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, STRAIT_FLOW_EVENTS_BYTES);
} flow_events SEC(".maps");

static __always_inline void strait_flow_event(const struct strait_flow *f, __u8 mode,
					      __u32 backend)
{
	struct strait_flow_event ev = {
		.src = f->src,
		.dst = f->dst,
		.sport = f->sport,
		.dport = f->dport,
		.proto = f->proto,
		.mode = mode,
		.service = {
			.vip = f->dst,
			.port = f->dport,
			.proto = f->proto,
		},
		.backend = backend,
	};

	if (bpf_ringbuf_output(&flow_events, &ev, sizeof(ev), 0))
		strait_count(STRAIT_CNT_EVENT_LOST);
}

#endif /* STRAIT_LIB_EVENTS_H */
