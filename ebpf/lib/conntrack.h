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
 *   for bit: the key's set from strait_conn_hash(), STRAIT_CONN_WAYS ways per set kept in
 *   recency order (strait_conn_set.order), a record into a full set replaces a way (counted
 *   conn_evicted): the least recently used half-open way if the set holds one (counted
 *   conn_evicted_half_open too), else the least recently used way. Every new record is
 *   half-open; a later packet of its flow that does not carry SYN marks it established when
 *   it uses it (a retransmitted SYN, or a backend's SYN+ACK to a NAT reply entry, does not:
 *   a flood of spoofed SYNs, whose backends answer, or of one-packet flows, churns the
 *   half-open ways only). A refresh of an entry recorded under an older service version
 *   keeps the mark it has. Not the kernel's LRU hash: its update takes a node from a shared
 *   free list, 7-9x the cost of the test-run loop on the reference host, more than the whole
 *   new-flow budget. Not per CPU either: on veths (and with RPS) a flow's frames arrive on
 *   whichever CPU sent them, and a per-CPU miss would re-pick an established flow after a
 *   table change. Writes and value reads claim the set (strait_set_claim); established
 *   flows avoid the claim through each CPU's copy of the ways it used (conn_cache, see
 *   strait_table_get), valid while the way's write count (seq) is unchanged; a forward
 *   entry idle past its timeout (STRAIT_DIRECTOR.tcp_idle, tcp_fin_idle once the flow sent
 *   a FIN or RST, udp_idle; jiffies, 0: none) reads as absent, so its flow is scheduled anew
 *   and recorded over it (LVS's connection timeouts; the way itself is reused by eviction as
 *   any other). Cache lines: a record reads the set's header line and writes one way's line;
 *   a lookup reads the header and, past the CPU's copy, the line of the
 *   way whose tag matches;
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

/* max_entries is set by the loader: conn_mask + 1 sets (lb/src/xdp/mod.rs). Mmapable: the
 * kernel then puts the first set on a page boundary, so every 320-byte set starts on a
 * cache line (an ordinary array's values start 16 bytes past its 64-byte-aligned header). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
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
 * so which flows share a set is not predictable from outside); its per-CPU cache entry bits
 * 32 and up, its tag the top 7 bits (strait_conn_tag). */
static __always_inline __u64 strait_conn_hash(const struct strait_conn_key *k)
{
	const __u64 *w = (const __u64 *)k;
	__u64 h = (w[0] ^ STRAIT_DIRECTOR.conn_seed) * 0x9e3779b97f4a7c15ULL;

	h = (h ^ (h >> 32) ^ w[1]) * 0xbf58476d1ce4e5b9ULL;
	return h ^ (h >> 31);
}

/* The tag of key k of hash h (lb::packet::conntable::tag_of): bit 7 set for a forward key,
 * bits 0..6 the hash's top 7 bits, 1 when they are 0 (0 is an empty way). */
static __always_inline __u8 strait_conn_tag(const struct strait_conn_key *k, __u64 h)
{
	__u8 t = (__u8)(h >> 57);

	t |= t == 0;
	return t | (k->dir == STRAIT_DIR_FORWARD ? 0x80 : 0);
}

/* The set of key k and the key's hash: 0, or -1 when the lookup fails. */
static __always_inline int strait_conn_locate(const struct strait_conn_key *k,
					      struct strait_conn_set **set, __u64 *hash)
{
	__u64 h = strait_conn_hash(k);
	__u32 index = (__u32)h & STRAIT_DIRECTOR.conn_mask;

	*hash = h;
	*set = bpf_map_lookup_elem(&conns, &index);
	return *set ? 0 : -1;
}

/* This CPU's cache entry for a key of hash h, or NULL. */
static __always_inline struct strait_conn_cached *strait_conn_cache_of(__u64 h)
{
	__u32 slot = (__u32)(h >> 32) & STRAIT_DIRECTOR.conn_cache_mask;

	return bpf_map_lookup_elem(&conn_cache, &slot);
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

/* Way w of s holds k (tag t): the tag first, the key's line only when it matches. */
static __always_inline int strait_way_holds(const struct strait_conn_set *s, int w,
					    const struct strait_conn_key *k, __u8 t)
{
	return s->tag[w] == t && strait_conn_key_eq(&s->way[w].key, k);
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

/* The plain recency order of an order word: position p (bits 3p..3p+2) holds a way, 0 the
 * most recently used (lb::packet::conntable::Order). */
static __always_inline __u32 strait_order_plain(__u32 order)
{
	return (order ^ STRAIT_ORDER_IDENTITY) & 0xffffff;
}

/* Order word `order` after a use or record of way w, w's half-open mark set to half_open:
 * w moves to position 0, the ways before it one position down (Order::used). */
static __always_inline __u32 strait_order_use(__u32 order, __u32 w, __u32 half_open)
{
	__u32 plain = strait_order_plain(order), pos = 0, low, high, marks;

	w &= STRAIT_CONN_WAYS - 1;
#pragma unroll
	for (__u32 p = 1; p < STRAIT_CONN_WAYS; p++)
		if (((plain >> (3 * p)) & 7) == w)
			pos = p;
	low = plain & ((1U << (3 * pos)) - 1);
	high = plain & 0xffffff & ~((1U << (3 * pos + 3)) - 1);
	plain = (low << 3) | w | high;
	marks = (order >> 24) & ~(1U << w);
	marks |= (half_open & 1) << w;
	return (plain ^ STRAIT_ORDER_IDENTITY) | (marks << 24);
}

/* The way a full set of order `order` gives up: its least recently used half-open way, else
 * its least recently used way (Order::victim). */
static __always_inline __u32 strait_order_victim(__u32 order)
{
	__u32 plain = strait_order_plain(order), marks = order >> 24;
	__u32 victim = (plain >> 21) & 7;
	int found = 0;

#pragma unroll
	for (int p = STRAIT_CONN_WAYS - 1; p >= 0; p--) {
		__u32 w = (plain >> (3 * p)) & 7;

		if (!found && (marks >> w) & 1) {
			victim = w;
			found = 1;
		}
	}
	return victim;
}

/* Marks way w used: most recently used, seen now, closing (STRAIT_SEEN_CLOSING or 0) added to
 * the mark it has, and established unless the packet carries SYN (syn: its half-open mark is
 * kept). The order changes by one compare-and-exchange, only when it changes (w not first
 * already, or a mark to clear): under the claim it cannot fail but for a racing use on the
 * cached path, which then loses its change (two uses racing: one counts); the order stays a
 * permutation whatever the race. seen[] by plain stores, only of what changed (once per
 * jiffy): a CPU racing may write the clock back an instant, which changes only which way
 * expires first. A record of another key into way w at that instant (an eviction of the way
 * just used: unlikely, the least recently used way is evicted) may get this flow's seen[]
 * and mark: at worst it expires after tcp_fin_timeout instead of tcp_timeout and is scheduled
 * anew, as any expired entry. */
static __always_inline void strait_conn_touch(struct strait_conn_set *s, __u32 w, __u32 now,
					      __u32 closing, __u32 syn)
{
	__u32 order = *(volatile __u32 *)&s->order, marked, seen;

	w &= STRAIT_CONN_WAYS - 1;
	marked = (order >> (24 + w)) & 1;
	/* Already first and nothing to clear (an established flow's packets, mostly): no write. */
	if ((strait_order_plain(order) & 7) != w || (marked && !syn))
		__sync_val_compare_and_swap(&s->order, order,
					    strait_order_use(order, w, syn ? marked : 0));
	seen = now | (s->seen[w] & STRAIT_SEEN_CLOSING) | closing;
	if (s->seen[w] != seen)
		s->seen[w] = seen;
}

/* Copies the entry of key k into *out and marks its way used (strait_conn_touch): 1, or 0
 * when k is not in the table or its entry has been idle past its timeout (expired, counted
 * conn_expired, left as it is: the caller records the flow anew over it).
 * 1. The CPU's cache entry for k, if it holds k and its way has not been written since it
 *    was copied (seq unchanged: one 16-bit load, atomic on every architecture), is the entry.
 * 2. Else the tags, then the keys of the ways whose tag matches, are compared without the
 *    claim: no match, no entry. A way being rewritten at that moment is either leaving (its
 *    key is replaced) or rewritten with the same key (same bytes): reading it as absent is
 *    reading it an instant later.
 * 3. Else the way is read under the claim and copied into the CPU's cache; a set that
 *    stays claimed reads as absent (conn_busy): the flow is scheduled as new. */
static __always_inline int strait_table_get(const struct strait_conn_key *k,
					    struct strait_conn *out, __u32 closing, __u32 syn)
{
	struct strait_conn_set *s;
	struct strait_conn_cached *c;
	__u32 way = 0, now = strait_conn_now();
	__u16 seq = 0;
	__u64 h;
	__u8 tag;
	int present = 0, found = 0, expired = 0;

	if (strait_conn_locate(k, &s, &h))
		return 0;
	c = strait_conn_cache_of(h);
	if (!c)
		return 0;
	if (strait_conn_key_eq(&c->key, k)) {
		way = c->way & (STRAIT_CONN_WAYS - 1);
		if (*(volatile __u16 *)&s->seq[way] == c->seq) {
			if (strait_conn_expired(k, s->seen[way], now)) {
				strait_count(STRAIT_CNT_CONN_EXPIRED);
				return 0;
			}
			*out = c->value;
			strait_conn_touch(s, way, now, closing, syn);
			return 1;
		}
	}
	/* Past the CPU's copy only: an established flow's packets never need the tag. */
	tag = strait_conn_tag(k, h);
#pragma unroll
	for (int w = 0; w < STRAIT_CONN_WAYS; w++)
		present |= strait_way_holds(s, w, k, tag);
	if (!present || strait_set_claim(s))
		return 0;
#pragma unroll
	for (int w = 0; w < STRAIT_CONN_WAYS; w++) {
		if (!found && !expired && strait_way_holds(s, w, k, tag)) {
			if (strait_conn_expired(k, s->seen[w], now)) {
				expired = 1;
			} else {
				*out = s->way[w].value;
				seq = s->seq[w];
				way = w;
				strait_conn_touch(s, w, now, closing, syn);
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

/* Records k -> v in k's set: in the way that holds k (its half-open and closing marks kept
 * when `refresh`, as the model's entry keeps them, lb::packet::conntable; else set), else
 * the first empty way, else the order's victim (strait_order_victim), which is counted as
 * an eviction; a new record is half-open (see the contract); the way becomes
 * the most recently used. The CPU's cache does not take the new entry: that write, one more
 * cold line, cost a new flow 30 ns (a tenth) on the reference host; the flow's next packet
 * copies it (strait_table_get, step 3) as it does on any other CPU. */
static __always_inline void strait_table_put(const struct strait_conn_key *k,
					     const struct strait_conn *v, __u32 closing,
					     int refresh)
{
	struct strait_conn_set *s;
	__u32 pick = 0, order, half_open = 1;
	__u64 h;
	__u8 tag, old = 0;
	int match = -1, empty = -1, evict = 0;
	/* Forward entries gained: the new key's, less the evicted one's. */
	__s64 forward = 0;

	if (strait_conn_locate(k, &s, &h) || strait_set_claim(s))
		return;
	tag = strait_conn_tag(k, h);
	order = s->order;
#pragma unroll
	for (int w = 0; w < STRAIT_CONN_WAYS; w++) {
		if (match < 0 && strait_way_holds(s, w, k, tag))
			match = w;
		if (empty < 0 && s->tag[w] == 0)
			empty = w;
	}
	if (match >= 0) {
		pick = match;
		if (refresh) {
			half_open = (order >> (24 + pick)) & 1;
			closing |= s->seen[pick] & STRAIT_SEEN_CLOSING;
		}
	} else if (empty >= 0) {
		pick = empty;
	} else {
		evict = 1;
		pick = strait_order_victim(order);
	}
	pick &= STRAIT_CONN_WAYS - 1;
	old = s->tag[pick];
	if (match < 0)
		forward = (k->dir == STRAIT_DIR_FORWARD) - (evict && (old & 0x80));
	s->way[pick].key = *k;
	s->way[pick].value = *v;
	s->tag[pick] = tag;
	s->seq[pick] += 1;
	s->seen[pick] = strait_conn_now() | closing;
	s->order = strait_order_use(order, pick, half_open);
	strait_set_release(s);
	if (evict)
		strait_count(STRAIT_CNT_CONN_EVICTED);
	if (evict && (order >> (24 + pick)) & 1)
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
	return strait_table_get(&key, out, f->closing ? STRAIT_SEEN_CLOSING : 0, f->syn);
}

/* Whether a forward entry was recorded under the installed version of its service. */
static __always_inline int strait_conn_current(const struct strait_conn *c)
{
	__u32 id = c->id;
	__u32 *gen = bpf_map_lookup_elem(&service_gen, &id);

	return gen && c->gen != 0 && *gen == c->gen;
}

/* Records a new forward entry (half-open), or refreshes one recorded under an older service
 * version or under none (a synced entry: gen 0, see strait.h) (`refresh`: its half-open and
 * closing marks kept, the synced mark cleared: vport 0): backend index and the service
 * version's data. */
static __always_inline void strait_conn_record(const struct strait_flow *f,
					       const struct strait_service *svc, __u32 backend,
					       int refresh)
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
	strait_table_put(&key, &value, f->closing ? STRAIT_SEEN_CLOSING : 0, refresh);
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
