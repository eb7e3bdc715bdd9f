/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conntrack.h: the service, backend and connection maps and their lookups.
 *
 * Contract (the C twin of lb/src/packet/service.rs and decide.rs step 2):
 * - strait_service_of() finds the service a flow is addressed to (dst, dport, proto);
 * - strait_conn_of() copies the forward entry of a client -> VIP flow (0 without one);
 *   strait_conn_current() tells whether it was recorded under the service version installed
 *   now (service_gen[id] == gen), i.e. whether its id, mode and slot may be used without the
 *   service entry;
 * - strait_conn_record() records a new flow, or refreshes an entry of an older version;
 * - the connection table (conns) is set-associative, the model's lb::packet::conntable bit
 *   for bit: the key's set from strait_conn_hash(), STRAIT_CONN_WAYS ways per set ordered by
 *   last use, a record into a full set replaces its least recently used way (counted
 *   conn_evicted); a way recorded by an opening SYN is stamped STRAIT_CONN_HALF_OPEN_AGE
 *   older than the clock (half-open: the least recently used of its set until its flow's
 *   next packet marks it used), so a full set evicts half-open entries first, the oldest
 *   first, and an established entry only when the set holds none (an eviction of a
 *   half-open entry, age >= STRAIT_CONN_HALF_OPEN_AGE, is also counted
 *   conn_evicted_half_open). Not the kernel's LRU hash: its update takes a node from a shared free
 *   list, 7-9x the cost of the test-run loop on the reference host, more than the whole
 *   new-flow budget. Not per CPU either: on veths (and with RPS) a flow's frames arrive on
 *   whichever CPU sent them, and a per-CPU miss would re-pick an established flow after a
 *   table change. Writes and value reads claim the set (strait_set_claim); established
 *   flows avoid the claim through each CPU's copy of the ways it used (conn_cache, see
 *   strait_table_get), valid while the way's write count (seq) is unchanged; a forward
 *   entry idle past its timeout (STRAIT_DIRECTOR.tcp_idle, tcp_fin_idle once the flow sent
 *   a FIN or RST, udp_idle; jiffies, 0: none) reads as absent, so its flow is scheduled anew
 *   and recorded over it (LVS's connection timeouts; the way itself is reused by eviction as
 *   any other);
 * - strait_backend_at() returns the backend at index i of a service, or NULL when i is not
 *   below backend_count or outside the backends array.
 */
#ifndef STRAIT_LIB_CONNTRACK_H
#define STRAIT_LIB_CONNTRACK_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "strait.h"
#include "parse.h"
#include "stats.h"

/* Defined by the program (director.bpf.c): conn_mask and conn_seed. */
extern volatile const struct strait_director STRAIT_DIRECTOR;

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

/* max_entries is set by the loader: conn_mask + 1 sets (lb/src/xdp/mod.rs). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * STRAIT_MAX_CONNS / STRAIT_CONN_WAYS);
	__type(key, __u32);
	__type(value, struct strait_conn_set);
} conns SEC(".maps");

/* max_entries is set by the loader: conn_cache_mask + 1. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STRAIT_CONN_CACHE_MAX);
	__type(key, __u32);
	__type(value, struct strait_conn_cached);
} conn_cache SEC(".maps");

/* Forward entries held, as per-CPU deltas (a CPU's value may be negative; the sum is the
 * count): the control plane's conn_count without reading the table. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __s64);
} conn_forward SEC(".maps");

static __always_inline void strait_conn_forward_add(__s64 delta)
{
	__u32 zero = 0;
	__s64 *v;

	if (delta == 0)
		return;
	v = bpf_map_lookup_elem(&conn_forward, &zero);
	if (v)
		*v += delta;
}

/* The hash of a key: its set is the low bits (lb::packet::conntable::set_of, bit for bit:
 * the key's two 64-bit words as stored, little-endian, keyed by STRAIT_DIRECTOR.conn_seed,
 * so which flows share a set is not predictable from outside); its per-CPU cache entry the
 * high 32 bits. */
static __always_inline __u64 strait_conn_hash(const struct strait_conn_key *k)
{
	const __u64 *w = (const __u64 *)k;
	__u64 h = (w[0] ^ STRAIT_DIRECTOR.conn_seed) * 0x9e3779b97f4a7c15ULL;

	h = (h ^ (h >> 32) ^ w[1]) * 0xbf58476d1ce4e5b9ULL;
	return h ^ (h >> 31);
}

/* The set of key k and this CPU's cache entry for it: 0, or -1 when a lookup fails. */
static __always_inline int strait_conn_locate(const struct strait_conn_key *k,
					      struct strait_conn_set **set,
					      struct strait_conn_cached **cached)
{
	__u64 h = strait_conn_hash(k);
	__u32 index = (__u32)h & STRAIT_DIRECTOR.conn_mask;
	__u32 slot = (__u32)(h >> 32) & STRAIT_DIRECTOR.conn_cache_mask;

	*set = bpf_map_lookup_elem(&conns, &index);
	*cached = bpf_map_lookup_elem(&conn_cache, &slot);
	return *set && *cached ? 0 : -1;
}

/* Claims set s for a write or a value read: 0, or -1 when another CPU held it for
 * STRAIT_CONN_CLAIM_TRIES attempts in a row (counted conn_busy; the caller goes on without
 * the table). An atomic compare-and-exchange, fully ordered on every architecture's JIT, not
 * bpf_spin_lock: that helper saves and restores the interrupt flags and, in a VM, goes
 * through the paravirtual lock: about 60 ns a lock/unlock pair on the reference host, where
 * the claim's two atomic instructions do not show in the new-flow figure (build.rs compiles
 * with -mcpu=v3 for them). A holder cannot be preempted by XDP on its CPU; a vCPU stopped
 * by its hypervisor while holding a set makes the others give up on it (conn_busy). */
static __always_inline int strait_set_claim(struct strait_conn_set *s)
{
	for (int i = 0; i < STRAIT_CONN_CLAIM_TRIES; i++)
		if (__sync_val_compare_and_swap(&s->busy, 0, 1) == 0)
			return 0;
	strait_count(STRAIT_CNT_CONN_BUSY);
	return -1;
}

/* Releases s: an atomic exchange, so every write made under the claim is visible first. */
static __always_inline void strait_set_release(struct strait_conn_set *s)
{
	__sync_lock_test_and_set(&s->busy, 0);
}

static __always_inline int strait_conn_key_eq(const struct strait_conn_key *a,
					      const struct strait_conn_key *b)
{
	const __u64 *x = (const __u64 *)a;
	const __u64 *y = (const __u64 *)b;

	return x[0] == y[0] && x[1] == y[1];
}

/* Now, for seen[]: the low 32 bits of jiffies, bit 0 cleared (it is STRAIT_SEEN_CLOSING;
 * bpf_jiffies64() is inlined by the verifier: one load, where a clock helper costs 15-20 ns
 * on the reference host). */
static __always_inline __u32 strait_conn_now(void)
{
	return (__u32)bpf_jiffies64() & ~(__u32)STRAIT_SEEN_CLOSING;
}

/* The idle timeout in jiffies (0: none) of key k's entry last seen as `seen`: a forward
 * entry's by protocol, a TCP one that saw a FIN or RST tcp_fin_idle; a NAT reply entry has
 * none (it lives as long as its way: the forward entry decides the flow). */
static __always_inline __u32 strait_conn_idle(const struct strait_conn_key *k, __u32 seen)
{
	if (k->dir != STRAIT_DIR_FORWARD)
		return 0;
	if (k->proto != IPPROTO_TCP)
		return STRAIT_DIRECTOR.udp_idle;
	return seen & STRAIT_SEEN_CLOSING ? STRAIT_DIRECTOR.tcp_fin_idle : STRAIT_DIRECTOR.tcp_idle;
}

/* Whether key k's entry last seen as `seen` has been idle past its timeout at `now`: a signed
 * difference, so a CPU that read jiffies an instant before another wrote seen[] does not see
 * the entry as 2^32 jiffies old (the price: an entry idle for 2^31 jiffies, 99 days at
 * HZ=250, reads as fresh again). */
static __always_inline int strait_conn_expired(const struct strait_conn_key *k, __u32 seen,
					       __u32 now)
{
	__u32 idle = strait_conn_idle(k, seen);
	__u32 at = seen & ~(__u32)STRAIT_SEEN_CLOSING;

	return idle != 0 && (__s32)(now - at) > (__s32)idle;
}

/* Marks way w most recently used and seen now, closing (STRAIT_SEEN_CLOSING or 0) added to the
 * mark it has. Under the set's claim from the claimed paths; without it from the cached path,
 * where two CPUs racing may give two ways one stamp, or write the clock back so that a way's
 * stamp is ahead of it: both change only which way a full set evicts first, never an entry,
 * and a stamp ahead of the clock counts as the most recent (ages are signed, see
 * strait_table_put). A record of another key into way w at that instant (an eviction of the
 * way just used: unlikely, the least recently used way is evicted) may get this flow's seen[]
 * and mark: at worst it expires after tcp_fin_timeout instead of tcp_timeout and is scheduled
 * anew, as any expired entry. Plain stores, and only of what changed (seen[] once per jiffy):
 * an atomic add here and in the record cost a new flow about 60 ns on the reference host. */
static __always_inline void strait_conn_touch(struct strait_conn_set *s, __u32 w, __u32 now,
					      __u32 closing)
{
	__u32 clock = s->clock, seen;

	w &= STRAIT_CONN_WAYS - 1;
	if (s->stamp[w] != clock) {
		s->clock = clock + 1;
		s->stamp[w] = clock + 1;
	}
	seen = now | (s->seen[w] & STRAIT_SEEN_CLOSING) | closing;
	if (s->seen[w] != seen)
		s->seen[w] = seen;
}

/* Copies the entry of key k into *out and marks its way most recently used and seen now: 1,
 * or 0 when k is not in the table or its entry has been idle past its timeout (expired,
 * counted conn_expired, left as it is: the caller records the flow anew over it).
 * 1. The CPU's cache entry for k, if it holds k and its way has not been written since it
 *    was copied (seq unchanged: one 32-bit load, atomic on every architecture), is the entry.
 * 2. Else the set's keys are compared without the claim: no match, no entry. A way being
 *    rewritten at that moment is either leaving (its key is replaced) or rewritten with the
 *    same key (same bytes): reading it as absent is reading it an instant later.
 * 3. Else the way is read under the claim and copied into the CPU's cache; a set that
 *    stays claimed reads as absent (conn_busy): the flow is scheduled as new. */
static __always_inline int strait_table_get(const struct strait_conn_key *k,
					    struct strait_conn *out, __u32 closing)
{
	struct strait_conn_set *s;
	struct strait_conn_cached *c;
	__u32 seq = 0, way = 0, now = strait_conn_now();
	int present = 0, found = 0, expired = 0;

	if (strait_conn_locate(k, &s, &c))
		return 0;
	if (strait_conn_key_eq(&c->key, k)) {
		way = c->way & (STRAIT_CONN_WAYS - 1);
		if (*(volatile __u32 *)&s->seq[way] == c->seq) {
			if (strait_conn_expired(k, s->seen[way], now)) {
				strait_count(STRAIT_CNT_CONN_EXPIRED);
				return 0;
			}
			*out = c->value;
			strait_conn_touch(s, way, now, closing);
			return 1;
		}
	}
#pragma unroll
	for (int w = 0; w < STRAIT_CONN_WAYS; w++)
		present |= strait_conn_key_eq(&s->key[w], k);
	if (!present || strait_set_claim(s))
		return 0;
#pragma unroll
	for (int w = 0; w < STRAIT_CONN_WAYS; w++) {
		if (!found && !expired && strait_conn_key_eq(&s->key[w], k)) {
			if (strait_conn_expired(k, s->seen[w], now)) {
				expired = 1;
			} else {
				*out = s->value[w];
				seq = s->seq[w];
				way = w;
				strait_conn_touch(s, w, now, closing);
				found = 1;
			}
		}
	}
	strait_set_release(s);
	if (expired)
		strait_count(STRAIT_CNT_CONN_EXPIRED);
	if (found) {
		c->key = *k;
		c->value = *out;
		c->seq = seq;
		c->way = way;
	}
	return found;
}

/* Records k -> v in k's set: in the way that holds k, else the first empty way, else the
 * least recently used way (the lowest on a tie), which is counted as an eviction; the way
 * is stamped most recently used, or half_open: STRAIT_CONN_HALF_OPEN_AGE older than that;
 * the CPU's cache takes the new entry. */
static __always_inline void strait_table_put(const struct strait_conn_key *k,
					     const struct strait_conn *v, __u32 closing,
					     int half_open)
{
	struct strait_conn_set *s;
	struct strait_conn_cached *c;
	__u32 pick = 0, oldest = 0, seq;
	int match = -1, empty = -1, evict = 0;
	/* Forward entries gained: the new key's, less the evicted one's. */
	__s64 forward = 0;

	if (strait_conn_locate(k, &s, &c) || strait_set_claim(s))
		return;
#pragma unroll
	for (int w = 0; w < STRAIT_CONN_WAYS; w++) {
		if (strait_conn_key_eq(&s->key[w], k)) {
			match = w;
			break;
		}
		if (empty < 0 && s->key[w].proto == 0)
			empty = w;
	}
	if (match >= 0) {
		pick = match;
	} else if (empty >= 0) {
		pick = empty;
	} else {
		/* Full: the least recently used way, the lowest on a tie. */
		evict = 1;
#pragma unroll
		for (int w = 0; w < STRAIT_CONN_WAYS; w++) {
			/* clock - stamp as a signed 32-bit age: a stamp ahead of the clock is 0. */
			__s32 signed_age = (__s32)(s->clock - s->stamp[w]);
			__u32 age = signed_age < 0 ? 0 : (__u32)signed_age;

			if (w == 0 || age > oldest) {
				pick = w;
				oldest = age;
			}
		}
	}
	pick &= STRAIT_CONN_WAYS - 1;
	if (match < 0)
		forward = (k->dir == STRAIT_DIR_FORWARD) -
			  (evict && s->key[pick].dir == STRAIT_DIR_FORWARD);
	s->key[pick] = *k;
	s->value[pick] = *v;
	seq = s->seq[pick] + 1;
	s->seq[pick] = seq;
	s->clock += 1;
	s->stamp[pick] = half_open ? s->clock - STRAIT_CONN_HALF_OPEN_AGE : s->clock;
	s->seen[pick] = strait_conn_now() | closing;
	strait_set_release(s);
	c->key = *k;
	c->value = *v;
	c->seq = seq;
	c->way = pick;
	if (evict)
		strait_count(STRAIT_CNT_CONN_EVICTED);
	if (evict && oldest >= STRAIT_CONN_HALF_OPEN_AGE)
		strait_count(STRAIT_CNT_CONN_EVICTED_HALF_OPEN);
	strait_conn_forward_add(forward);
}

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

/* Copies the forward entry of a client -> VIP flow into *out: 1, or 0 without one. */
static __always_inline int strait_conn_of(const struct strait_flow *f, struct strait_conn *out)
{
	struct strait_conn_key key;

	strait_conn_key_of(f, &key);
	return strait_table_get(&key, out, f->closing ? STRAIT_SEEN_CLOSING : 0);
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
	strait_table_put(&key, &value, f->closing ? STRAIT_SEEN_CLOSING : 0, f->opening_syn);
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
