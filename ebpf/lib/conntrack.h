/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conntrack.h: the service, backend and connection maps and their lookups.
 *
 * Contract (the C twin of lb/src/packet/service.rs and decide.rs step 2):
 * - strait_service_of() finds the service a flow is addressed to (dst, dport, proto);
 * - strait_conn_of() returns the forward entry of a client -> VIP flow, or NULL;
 *   strait_conn_current() tells whether it was recorded under the service version installed
 *   now (service_gen[id] == gen), i.e. whether its id, mode and slot may be used without the
 *   service entry;
 * - strait_conn_record() records a new flow, or refreshes an entry of an older version (an
 *   LRU map: old entries may be evicted, as the model's bounded table evicts its oldest);
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
	__uint(max_entries, STRAIT_MAX_SERVICES);
	__type(key, __u32);
	__type(value, __u32);
} service_gen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, STRAIT_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct strait_backend);
} backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, STRAIT_MAX_CONNS);
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

static __always_inline struct strait_conn *strait_conn_of(const struct strait_flow *f)
{
	struct strait_conn_key key;

	strait_conn_key_of(f, &key);
	return bpf_map_lookup_elem(&conns, &key);
}

/* Whether a forward entry was recorded under the installed version of its service. */
static __always_inline int strait_conn_current(const struct strait_conn *c)
{
	__u32 id = c->id;
	__u32 *gen = bpf_map_lookup_elem(&service_gen, &id);

	return gen && c->gen != 0 && *gen == c->gen;
}

/* Records (or refreshes) a forward entry: backend index and the service version's data. */
static __always_inline void strait_conn_record(const struct strait_flow *f,
					       const struct strait_service *svc, __u32 backend)
{
	struct strait_conn_key key;
	struct strait_conn value = {
		.backend = backend,
		.id = svc->id,
		.mode = svc->mode,
		.gen = svc->gen,
		.slot = svc->backend_base + backend,
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
