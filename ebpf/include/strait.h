/* SPDX-License-Identifier: Apache-2.0 */
/*
 * strait.h: the whole ABI between the XDP director (director.bpf.c) and its control plane
 * (lb/src/abi.rs mirrors every struct below with #[repr(C)] and tests sizes and offsets).
 *
 * Contract:
 * - Fixed-width types only; __be* where the bytes are in network order (as in the headers).
 * - Every struct has explicit pad fields (no implicit padding) and a _Static_assert size.
 * - Map layouts (names are the symbol names; aya finds maps by them):
 *   services  HASH     struct strait_service_key -> struct strait_service
 *   service_gen ARRAY  u32 (service.id) -> u32 gen of the installed version (0: none)
 *   backends  ARRAY    u32 (service.backend_base + index) -> struct strait_backend
 *   maglev    ARRAY    u32 (slot * STRAIT_MAGLEV_MAX + hash % table_size) -> u32 backend index
 *   conns     ARRAY    u32 (set index) -> struct strait_conn_set: the connection table,
 *             set-associative (STRAIT_CONN_WAYS entries per set, a claim word each;
 *             lib/conntrack.h); the set count is conn_mask + 1 of struct strait_director
 *   conn_cache PERCPU_ARRAY u32 -> struct strait_conn_cached: each CPU's copies of entries
 *             it used (direct-mapped, conn_cache_mask + 1 entries; lib/conntrack.h)
 *   conn_forward PERCPU_ARRAY u32 (0) -> s64: forward entries held (summed over CPUs)
 *   hop_cache PERCPU_ARRAY: each CPU's found NAT next hops (program-only, lib/fib.h)
 *   budgets PERCPU_ARRAY: each CPU's token buckets, ICMP errors and recorded new flows
 *             (program-only, lib/ratelimit.h)
 *   counters  PERCPU_ARRAY u32 (enum strait_counter) -> u64 (tx_* derived, see the enum)
 *   backend_stats PERCPU_ARRAY u32 (service.backend_base + index) -> struct strait_stats
 *   egress    DEVMAP   u32 (STRAIT_EGRESS_*) -> u32 ifindex (NAT redirects)
 *   flow_events RINGBUF of struct strait_flow_event (one per new flow recorded)
 *   owned     HASH     __be32 VIP -> __u32 (0; no flags yet): the VIPs whose ARP requests
 *             the program answers on the client-facing interface (lib/arp.h)
 * - Every install of a service gets a new gen: the control plane writes service_gen[id]
 *   first, then the service entry (removal: service_gen[id] = 0, then the entry).
 * - Maglev tables are double-buffered: the control plane fills a free slot, then replaces
 *   the service entry (one atomic map update) to point at it, so a reader never sees half a
 *   table. A service with table_size == 0 has no backend of weight > 0 (new flows dropped).
 * - Connection entries are indexed by the backend's index inside its service, as the model's
 *   connection table (lb/src/packet/service.rs); dir separates forward and NAT-reply entries.
 */
#ifndef STRAIT_H
#define STRAIT_H

#include <linux/types.h>

/* Offsets are asserted too; lb/src/abi.rs parses these lines and compares. */
#define STRAIT_OFFSET(s, f, n) _Static_assert(__builtin_offsetof(struct s, f) == n, #s "." #f)

/* Largest Maglev table (the default M, prime). */
#define STRAIT_MAGLEV_MAX 65537
/* Maglev slots (two per service: active and being filled). */
#define STRAIT_MAGLEV_SLOTS 64
#define STRAIT_MAX_SERVICES 32
#define STRAIT_MAX_BACKENDS 4096
/* Default connection table bound (lb::packet::service::DEFAULT_CONN_CAPACITY); the table
 * has twice as many ways (lb::packet::conntable::sets_for). */
#define STRAIT_MAX_CONNS (1 << 20)
/* Entries per set of the connection table (lb::packet::conntable::WAYS). */
#define STRAIT_CONN_WAYS 8
/* Bit 0 of strait_conn_set.seen[]: the flow sent a TCP FIN or RST. */
#define STRAIT_SEEN_CLOSING 1
/* strait_conn_set.order XOR this is the plain recency order: position p (bits 3p..3p+2,
 * 0 the most recently used) holds way p, so a zeroed set is in order (lb::packet::conntable:
 * ORDER_IDENTITY). */
#define STRAIT_ORDER_IDENTITY 0xFAC688U
/* Attempts at claiming a set of the connection table before going on without it (the
 * control plane's writes, lb/src/xdp/mmap.rs, make as many). */
#define STRAIT_CONN_CLAIM_TRIES 64
/* strait_conn.vport of a forward entry the control plane installed for the HA sync and that
 * no record of the program has rewritten since (lb::abi::CONN_SYNCED; see strait_conn). */
#define STRAIT_CONN_SYNCED 0xFFFF
/* Largest per-CPU connection cache, in entries (a power of two). */
#define STRAIT_CONN_CACHE_MAX (1 << 15)
/* Entries of the owned map: most VIPs answered for (lb::packet::arp::MAX_OWNED). */
#define STRAIT_MAX_OWNED 256

/* Forwarding modes (lb::packet::service::Mode). */
#define STRAIT_MODE_DR 0
#define STRAIT_MODE_TUN 1
#define STRAIT_MODE_NAT 2

/* Flow hash of new flows (lb::packet::service::FlowHash). */
#define STRAIT_HASH_FIVE_TUPLE 0 /* src, dst, sport, dport, proto: maglev, wrr */
#define STRAIT_HASH_SOURCE 1     /* src only (dst 0.0.0.0, ports 0, proto 0): sh */

/* Bytes of the flow_events ring buffer (a power of two, a multiple of the page size). */
#define STRAIT_FLOW_EVENTS_BYTES (1 << 18)

/* Entries of the egress devmap. */
#define STRAIT_EGRESS_NAT 0    /* NAT forwards leave here (towards the backends) */
#define STRAIT_EGRESS_CLIENT 1 /* NAT replies leave here (towards the clients) */
#define STRAIT_EGRESS_MAX 2

/* Connection entry directions. */
#define STRAIT_DIR_FORWARD 0
#define STRAIT_DIR_REPLY 1

struct strait_service_key {
	__be32 vip;
	__be16 port;
	__u8 proto;
	__u8 pad;
};
_Static_assert(sizeof(struct strait_service_key) == 8, "strait_service_key size");
STRAIT_OFFSET(strait_service_key, vip, 0);
STRAIT_OFFSET(strait_service_key, port, 4);
STRAIT_OFFSET(strait_service_key, proto, 6);
STRAIT_OFFSET(strait_service_key, pad, 7);

struct strait_service {
	__u32 table_slot;    /* < STRAIT_MAGLEV_SLOTS */
	__u32 table_size;    /* prime <= STRAIT_MAGLEV_MAX; 0 = no table */
	__u32 backend_base;  /* first entry in backends */
	__u32 backend_count; /* entries in backends */
	__u8 mode;           /* STRAIT_MODE_* */
	__u8 hash;           /* STRAIT_HASH_*: which fields pick a new flow's table entry */
	__u8 id;             /* < STRAIT_MAX_SERVICES: its entry in service_gen (table_slot / 2) */
	__u8 pad;
	__u32 gen;           /* this version's generation (non-zero, never reused) */
};
_Static_assert(sizeof(struct strait_service) == 24, "strait_service size");
STRAIT_OFFSET(strait_service, table_slot, 0);
STRAIT_OFFSET(strait_service, table_size, 4);
STRAIT_OFFSET(strait_service, backend_base, 8);
STRAIT_OFFSET(strait_service, backend_count, 12);
STRAIT_OFFSET(strait_service, mode, 16);
STRAIT_OFFSET(strait_service, hash, 17);
STRAIT_OFFSET(strait_service, id, 18);
STRAIT_OFFSET(strait_service, pad, 19);
STRAIT_OFFSET(strait_service, gen, 20);

/* strait_backend.flags: down by its health checks (lb::packet::service::Backend::alive is
 * false): its recorded flows are rescheduled on their next packet (LVS expire_nodest_conn=1);
 * without it a backend keeps its flows, also at weight 0 (draining). */
#define STRAIT_BACKEND_DEAD 1

struct strait_backend {
	__be32 ip;
	__u8 mac[6];
	__be16 port; /* NAT destination port */
	__u8 flags;  /* STRAIT_BACKEND_* */
	__u8 pad[3];
};
_Static_assert(sizeof(struct strait_backend) == 16, "strait_backend size");
STRAIT_OFFSET(strait_backend, ip, 0);
STRAIT_OFFSET(strait_backend, mac, 4);
STRAIT_OFFSET(strait_backend, port, 10);
STRAIT_OFFSET(strait_backend, flags, 12);
STRAIT_OFFSET(strait_backend, pad, 13);

struct strait_conn_key {
	__be32 src;
	__be32 dst;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 dir; /* STRAIT_DIR_* */
	__u8 pad[2];
};
_Static_assert(sizeof(struct strait_conn_key) == 16, "strait_conn_key size");
STRAIT_OFFSET(strait_conn_key, src, 0);
STRAIT_OFFSET(strait_conn_key, dst, 4);
STRAIT_OFFSET(strait_conn_key, sport, 8);
STRAIT_OFFSET(strait_conn_key, dport, 10);
STRAIT_OFFSET(strait_conn_key, proto, 12);
STRAIT_OFFSET(strait_conn_key, dir, 13);
STRAIT_OFFSET(strait_conn_key, pad, 14);

/*
 * Forward entries also carry what the established fast path needs (id, mode, gen, slot: the
 * service version they were recorded or refreshed under); they are valid only while
 * service_gen[id] == gen (see director.bpf.c). Backend indices and slots are below
 * STRAIT_MAX_BACKENDS (4096): 16 bits each, so that a way (key and entry) is 32 bytes, two
 * to a cache line.
 * Synced entries: the control plane also writes forward entries itself, through the table's
 * mapping (lb/src/xdp/install.rs: flows received from the peer director), by the program's
 * rules (the set claim, the way of the key or an empty one or the victim, tag, seq + 1,
 * seen, order), with gen 0 and slot 0, so the first packet of the flow takes the slow path
 * (director.bpf.c step 3: backend checked below backend_count, then the entry refreshed
 * under the installed version), and with vport = STRAIT_CONN_SYNCED, unused by forward
 * entries otherwise: the synced mark, which that refresh clears (strait_conn_record writes
 * vport 0). Reply entries it writes are as the program's (strait_nat_record_reply).
 */
struct strait_conn {
	__u16 backend; /* forward: index in the service's backends */
	__u16 slot;    /* forward: backend_base + backend (backends, backend_stats index) */
	__be32 vip;    /* reply: source address to restore */
	__be16 vport;  /* reply: source port to restore; forward: STRAIT_CONN_SYNCED or 0 */
	__u8 id;       /* forward: the service's id */
	__u8 mode;     /* forward: the service's STRAIT_MODE_* */
	__u32 gen;     /* forward: the service's gen when recorded (0: none) */
};
_Static_assert(sizeof(struct strait_conn) == 16, "strait_conn size");
STRAIT_OFFSET(strait_conn, backend, 0);
STRAIT_OFFSET(strait_conn, slot, 2);
STRAIT_OFFSET(strait_conn, vip, 4);
STRAIT_OFFSET(strait_conn, vport, 8);
STRAIT_OFFSET(strait_conn, id, 10);
STRAIT_OFFSET(strait_conn, mode, 11);
STRAIT_OFFSET(strait_conn, gen, 12);

/* One way of a set: its key and entry (32 bytes). */
struct strait_conn_way {
	struct strait_conn_key key;
	struct strait_conn value;
};
_Static_assert(sizeof(struct strait_conn_way) == 32, "strait_conn_way size");
STRAIT_OFFSET(strait_conn_way, key, 0);
STRAIT_OFFSET(strait_conn_way, value, 16);

/*
 * One set of the connection table (lib/conntrack.h): a 64-byte header, then the ways, two
 * to a 64-byte line; 320 bytes, 5 lines, and the conns array is mmapable (BPF_F_MMAPABLE),
 * which puts its first element on a page boundary, so every set starts on a line. A record
 * reads the header and writes one way's line; a lookup reads the header and the line of the
 * way whose tag matches.
 * - busy: the set's claim (0 free, 1 held, taken by atomic compare-and-exchange): held by
 *   the program for every write of a way, tag and seq and for reading a way's entry; the
 *   control plane reads sets without it (lb/src/xdp/maps.rs).
 * - order: the ways' recency order and half-open marks (lb::packet::conntable, bit for bit):
 *   bits 0..23 XOR STRAIT_ORDER_IDENTITY are eight 3-bit positions, position 0 the most
 *   recently used way; bit 24 + w marks way w half-open (evicted before any established
 *   way). Changed under the claim by a record, and by a lookup's use of a way with one
 *   compare-and-exchange (a lost race loses that use, never the order's consistency).
 * - tag[w]: 0 for an empty way, else bit 7 the key's direction (1: forward) and bits 0..6 a
 *   non-zero 7-bit hash of the key (strait_conn_tag): a lookup compares the keys of the
 *   ways whose tag matches only; an eviction knows the leaving key's direction from it.
 * - seq[w]: way w's write count (a per-CPU copy is valid while it is unchanged; 16 bits: a
 *   copy would be taken for current after exactly 65 536 rewrites of its way between two
 *   uses, hours at any plausible rate, past every idle timeout).
 * - seen[w]: the low 32 bits of bpf_jiffies64() when way w was last recorded or used, bit 0
 *   cleared, with bit 0 set (STRAIT_SEEN_CLOSING) once a TCP FIN or RST of the flow was seen:
 *   a forward entry idle for longer than STRAIT_DIRECTOR.tcp_idle / tcp_fin_idle (closing) /
 *   udp_idle (signed 32-bit difference) is expired, read as absent; written without the
 *   claim.
 */
struct strait_conn_set {
	__u32 busy;
	__u32 order;
	__u8 tag[STRAIT_CONN_WAYS];
	__u16 seq[STRAIT_CONN_WAYS];
	__u32 seen[STRAIT_CONN_WAYS];
	struct strait_conn_way way[STRAIT_CONN_WAYS];
};
_Static_assert(sizeof(struct strait_conn_set) == 320, "strait_conn_set size");
STRAIT_OFFSET(strait_conn_set, busy, 0);
STRAIT_OFFSET(strait_conn_set, order, 4);
STRAIT_OFFSET(strait_conn_set, tag, 8);
STRAIT_OFFSET(strait_conn_set, seq, 16);
STRAIT_OFFSET(strait_conn_set, seen, 32);
STRAIT_OFFSET(strait_conn_set, way, 64);

/* A CPU's copy of way `way` of the set of `key`, taken when its seq was `seq`. */
struct strait_conn_cached {
	struct strait_conn_key key;
	struct strait_conn value;
	__u16 seq;
	__u16 way;
	__u32 pad;
};
_Static_assert(sizeof(struct strait_conn_cached) == 40, "strait_conn_cached size");
STRAIT_OFFSET(strait_conn_cached, key, 0);
STRAIT_OFFSET(strait_conn_cached, value, 16);
STRAIT_OFFSET(strait_conn_cached, seq, 32);
STRAIT_OFFSET(strait_conn_cached, way, 34);
STRAIT_OFFSET(strait_conn_cached, pad, 36);

struct strait_stats {
	__u64 packets;
	__u64 bytes;
	__u64 flows; /* new flows assigned to the backend */
};
_Static_assert(sizeof(struct strait_stats) == 24, "strait_stats size");
STRAIT_OFFSET(strait_stats, packets, 0);
STRAIT_OFFSET(strait_stats, bytes, 8);
STRAIT_OFFSET(strait_stats, flows, 16);

/* A new flow, as recorded in conns (ring buffer flow_events; for the HA sync). */
struct strait_flow_event {
	__be32 src;
	__be32 dst;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 mode; /* STRAIT_MODE_* of the service */
	__u8 pad[2];
	struct strait_service_key service;
	__u32 backend; /* index in the service's backends */
	__u32 pad2;
};
_Static_assert(sizeof(struct strait_flow_event) == 32, "strait_flow_event size");
STRAIT_OFFSET(strait_flow_event, src, 0);
STRAIT_OFFSET(strait_flow_event, dst, 4);
STRAIT_OFFSET(strait_flow_event, sport, 8);
STRAIT_OFFSET(strait_flow_event, dport, 10);
STRAIT_OFFSET(strait_flow_event, proto, 12);
STRAIT_OFFSET(strait_flow_event, mode, 13);
STRAIT_OFFSET(strait_flow_event, pad, 14);
STRAIT_OFFSET(strait_flow_event, service, 16);
STRAIT_OFFSET(strait_flow_event, backend, 24);
STRAIT_OFFSET(strait_flow_event, pad2, 28);

/* The director's own addresses (a volatile const global, set at load time). */
struct strait_director {
	__u8 mac[6];
	__u8 pad[2];
	__be32 ip;
	__u32 nat_ifindex;    /* NAT forwards leave here (towards the backends) */
	__u32 client_ifindex; /* NAT replies leave here (towards the clients) */
	__u8 nat_mac[6];      /* MAC of nat_ifindex (NAT forwards without a neighbour entry) */
	__u8 pad2[2];
	__u32 mtu;            /* MTU of the client-facing interface (TUN: lib/icmp.h); 0: none */
	__be32 nat_ip;        /* IPv4 address of nat_ifindex (ICMP time exceeded to replies) */
	__u32 conn_mask;      /* sets of conns - 1 (a power of two - 1) */
	__u64 conn_seed;      /* key of the set index hash (random per load) */
	__u32 conn_cache_mask; /* entries of conn_cache - 1 (a power of two - 1) */
	__u32 nat_mtu;        /* MTU of nat_ifindex (NAT forwards: lib/icmp.h); 0: unchecked */
	__u64 icmp_cost;      /* ns of credit one ICMP error costs (lib/ratelimit.h); 0: no limit */
	__u64 icmp_cap;       /* most ns of credit a CPU's ICMP budget holds */
	__u32 tcp_idle;       /* jiffies a TCP forward entry may stay unused (0: forever) */
	__u32 udp_idle;       /* the same for UDP */
	__u32 tcp_fin_idle;   /* the same for a TCP entry that saw a FIN or RST */
	__u32 pad4;
	__u64 new_flow_cost;  /* ns of credit one recorded new flow costs (lib/ratelimit.h); 0: no guard */
	__u64 new_flow_cap;   /* most ns of credit a CPU's new-flow budget holds */
};
_Static_assert(sizeof(struct strait_director) == 104, "strait_director size");
STRAIT_OFFSET(strait_director, mac, 0);
STRAIT_OFFSET(strait_director, pad, 6);
STRAIT_OFFSET(strait_director, ip, 8);
STRAIT_OFFSET(strait_director, nat_ifindex, 12);
STRAIT_OFFSET(strait_director, client_ifindex, 16);
STRAIT_OFFSET(strait_director, nat_mac, 20);
STRAIT_OFFSET(strait_director, pad2, 26);
STRAIT_OFFSET(strait_director, mtu, 28);
STRAIT_OFFSET(strait_director, nat_ip, 32);
STRAIT_OFFSET(strait_director, conn_mask, 36);
STRAIT_OFFSET(strait_director, conn_seed, 40);
STRAIT_OFFSET(strait_director, conn_cache_mask, 48);
STRAIT_OFFSET(strait_director, nat_mtu, 52);
STRAIT_OFFSET(strait_director, icmp_cost, 56);
STRAIT_OFFSET(strait_director, icmp_cap, 64);
STRAIT_OFFSET(strait_director, tcp_idle, 72);
STRAIT_OFFSET(strait_director, udp_idle, 76);
STRAIT_OFFSET(strait_director, tcp_fin_idle, 80);
STRAIT_OFFSET(strait_director, pad4, 84);
STRAIT_OFFSET(strait_director, new_flow_cost, 88);
STRAIT_OFFSET(strait_director, new_flow_cap, 96);

/* Indices of the counters map. */
enum strait_counter {
	STRAIT_CNT_PASS_NOT_IPV4 = 0,
	STRAIT_CNT_PASS_MALFORMED = 1,
	STRAIT_CNT_PASS_FRAGMENT = 2,
	STRAIT_CNT_PASS_OTHER = 3, /* other protocol, or not a service */
	/* Forwarded (TX or NAT redirect), new / established flow: not incremented here, the
	 * control plane derives them from backend_stats (sum of flows / of packets - flows), so a
	 * forwarded packet updates one per-CPU entry only. */
	STRAIT_CNT_TX_NEW = 4,
	STRAIT_CNT_TX_ESTABLISHED = 5,
	STRAIT_CNT_DROP_NO_BACKEND = 6,
	STRAIT_CNT_DROP_BAD_BACKEND = 7,
	STRAIT_CNT_DROP_ENCAP_TOO_BIG = 8,
	STRAIT_CNT_NAT_REPLY = 9,
	STRAIT_CNT_DROP_NO_ROUTE = 10, /* NAT frame without a route through its egress */
	STRAIT_CNT_DROP_NO_NEIGH = 11, /* NAT frame whose next hop has no MAC */
	STRAIT_CNT_EVENT_LOST = 12,    /* flow event not queued (ring full); packet unaffected */
	STRAIT_CNT_DROP_TOO_BIG = 13,  /* TUN (encapsulated) or NAT datagram over the MTU, DF clear */
	STRAIT_CNT_ICMP_TOO_BIG = 14,  /* ... DF set: ICMP fragmentation needed sent back */
	STRAIT_CNT_ICMP_TIME_EXCEEDED = 15, /* NAT frame with TTL <= 1: ICMP time exceeded sent */
	STRAIT_CNT_CONN_EVICTED = 16, /* a record replaced the least recently used entry of a full set */
	STRAIT_CNT_CONN_BUSY = 17, /* a set stayed claimed by other CPUs: a record or read skipped */
	STRAIT_CNT_ICMP_LIMITED = 18, /* an ICMP error over the CPU's budget: not sent, frame dropped */
	STRAIT_CNT_CONN_EXPIRED = 19, /* a forward entry idle past its timeout: the flow scheduled anew */
	STRAIT_CNT_ARP_REPLY = 20, /* an ARP request for an owned VIP answered (lib/arp.h), XDP_TX */
	/* Ethernet destination not the MAC of the interface it arrived on (another host's, a
	 * multicast or broadcast frame but an answered ARP request): XDP_PASS, not looked at */
	STRAIT_CNT_PASS_NOT_OURS = 21,
	/* A new DR or TUN flow over the CPU's new-flow budget (new_flow_rate): forwarded to its
	 * Maglev pick without a record or a flow event */
	STRAIT_CNT_NEW_FLOW_UNRECORDED = 22,
	/* A new NAT flow over the CPU's new-flow budget: dropped (no record, no reply entry) */
	STRAIT_CNT_DROP_NEW_FLOW_LIMIT = 23,
	/* Of conn_evicted: the evicted entry was half-open (recorded by an opening SYN, no packet
	 * of its flow since) */
	STRAIT_CNT_CONN_EVICTED_HALF_OPEN = 24,
	STRAIT_CNT_MAX = 25,
};

#endif /* STRAIT_H */
