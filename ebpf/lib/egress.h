/* SPDX-License-Identifier: Apache-2.0 */
/*
 * egress.h: the egress devmap and the redirect of NAT frames through it.
 *
 * Contract: the control plane fills entry STRAIT_EGRESS_NAT with the interface NAT forwards
 * leave by (the inner interface, or the client-facing one when one-armed) and
 * STRAIT_EGRESS_CLIENT with the client-facing interface (NAT replies). strait_redirect()
 * returns XDP_REDIRECT through the devmap; an entry the control plane did not fill makes the
 * kernel fall back to XDP_DROP (the flags' action), never XDP_PASS.
 */
#ifndef STRAIT_LIB_EGRESS_H
#define STRAIT_LIB_EGRESS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "strait.h"

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, STRAIT_EGRESS_MAX);
	__type(key, __u32);
	__type(value, __u32);
} egress SEC(".maps");

static __always_inline int strait_redirect(__u32 slot)
{
	return bpf_redirect_map(&egress, slot, XDP_DROP);
}

#endif /* STRAIT_LIB_EGRESS_H */
