/* SPDX-License-Identifier: Apache-2.0 */
/*
 * events.h: the ring buffer of new-flow events (struct strait_flow_event).
 *
 * Contract: strait_flow_event() queues one event per new flow recorded in conns (forward
 * direction, every mode); when the ring is full the event is lost and counted
 * (STRAIT_CNT_EVENT_LOST), the packet is handled as if it had been queued.
 * Wakeups: events are queued with BPF_RB_NO_WAKEUP, and the reader (lb/src/xdp/events.rs)
 * polls the ring on a timer as well as on readiness. The default (wake the reader whenever it
 * has caught up) costs the producing CPU an irq_work, a self-interrupt, for every event that
 * finds the reader idle: most of them at moderate rates, several microseconds each in a VM.
 * Only the event that fills the ring past half its size forces a wakeup, so a burst is read
 * before the ring fills without a timer tick; forcing every event above half instead would
 * cost that interrupt per packet while the reader catches up. Two CPUs crossing the mark
 * together may both miss it: the timer then reads the ring.
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

/* Bytes one event takes in the ring: the 8-byte record header and the event. */
#define STRAIT_FLOW_EVENT_RECORD (8 + sizeof(struct strait_flow_event))

static __always_inline void strait_flow_event(const struct strait_flow *f, __u8 mode,
					      __u32 backend)
{
	/* The ring's size is fixed at load (max_entries): no query for it. */
	__u64 half = STRAIT_FLOW_EVENTS_BYTES / 2;
	__u64 queued = bpf_ringbuf_query(&flow_events, BPF_RB_AVAIL_DATA);
	/* Wake the reader only with the event that fills the ring past half (see above). */
	__u64 flags = queued < half && queued + STRAIT_FLOW_EVENT_RECORD >= half ?
			      BPF_RB_FORCE_WAKEUP :
			      BPF_RB_NO_WAKEUP;
	struct strait_flow_event *e = bpf_ringbuf_reserve(&flow_events, sizeof(*e), 0);

	if (!e) {
		strait_count(STRAIT_CNT_EVENT_LOST);
		return;
	}
	e->src = f->src;
	e->dst = f->dst;
	e->sport = f->sport;
	e->dport = f->dport;
	e->proto = f->proto;
	e->mode = mode;
	e->pad[0] = 0;
	e->pad[1] = 0;
	e->service.vip = f->dst;
	e->service.port = f->dport;
	e->service.proto = f->proto;
	e->service.pad = 0;
	e->backend = backend;
	e->pad2 = 0;
	bpf_ringbuf_submit(e, flags);
}

#endif /* STRAIT_LIB_EVENTS_H */
