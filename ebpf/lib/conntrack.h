/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conntrack.h: the service, backend and connection maps and their lookups.
 *
 * Contract (the C twin of lb/src/packet/service.rs and decide.rs step 2):
 * - strait_service_of() finds the service a flow is addressed to (dst, dport, proto);
 * - strait_conn_backend() returns the recorded backend index of a client -> VIP flow, or -1;
 * - strait_conn_record() records a new flow (an LRU map: old entries may be evicted, as the
 *   model's bounded table evicts its oldest);
 * - strait_backend_at() returns the backend at index i of a service, or NULL when i is not
 *   below backend_count or outside the backends array.
 */
#ifndef STRAIT_LIB_CONNTRACK_H
#define STRAIT_LIB_CONNTRACK_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "strait.h"
#include "parse.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STRAIT_MAX_SERVICES);
	__type(key, struct strait_service_key);
	__type(value, struct strait_service);
} services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, STRAIT_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct strait_backend);
} backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, STRAIT_MAX_CONNS);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, struct strait_conn_key);
	__type(value, struct strait_conn);
} conns SEC(".maps");

static __always_inline struct strait_service *strait_service_of(const struct strait_flow *f)
{
	struct strait_service_key key = {
		.vip = f->dst,
		.port = f->dport,
		.proto = f->proto,
		.pad = 0,
	};

	return bpf_map_lookup_elem(&services, &key);
}

static __always_inline void strait_conn_key_of(const struct strait_flow *f,
					       struct strait_conn_key *key)
{
	key->src = f->src;
	key->dst = f->dst;
	key->sport = f->sport;
	key->dport = f->dport;
	key->proto = f->proto;
	key->dir = STRAIT_DIR_FORWARD;
	key->pad[0] = 0;
	key->pad[1] = 0;
}

static __always_inline long strait_conn_backend(const struct strait_flow *f)
{
	struct strait_conn_key key;
	struct strait_conn *c;

	strait_conn_key_of(f, &key);
	c = bpf_map_lookup_elem(&conns, &key);
	if (!c)
		return -1;
	return c->backend;
}

static __always_inline void strait_conn_record(const struct strait_flow *f, __u32 backend)
{
	struct strait_conn_key key;
	struct strait_conn value = {
		.backend = backend,
		.vip = 0,
		.vport = 0,
	};

	strait_conn_key_of(f, &key);
	bpf_map_update_elem(&conns, &key, &value, BPF_ANY);
}

static __always_inline struct strait_backend *strait_backend_at(const struct strait_service *svc,
								__u32 index)
{
	__u32 key;

	if (index >= svc->backend_count)
		return NULL;
	key = svc->backend_base + index;
	return bpf_map_lookup_elem(&backends, &key);
}

#endif /* STRAIT_LIB_CONNTRACK_H */
