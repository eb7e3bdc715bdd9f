/* SPDX-License-Identifier: Apache-2.0 */
/*
 * director.bpf.c: the XDP L4 director (one SEC("xdp") entry, strait_director).
 *
 * Contract: for every frame it returns the verdict and output bytes of the reference model
 * lb::packet::process (lb/src/packet.rs), the kernel's FIB being the model's NextHops, a frame
 * arriving on client_ifindex the model's Ingress::Client with the owned map as its OwnedVips,
 * one arriving on nat_ifindex (when that is another interface) its Ingress::Inner:
 * 0. first, on the client-facing interface (ingress_ifindex == STRAIT_DIRECTOR.client_ifindex)
 *    only: an ARP request for an owned VIP becomes its reply from STRAIT_DIRECTOR.mac, XDP_TX,
 *    counted arp_reply (lib/arp.h); every other ARP frame goes on to step 1 unchanged;
 * 1. a frame is looked at further (steps 2 onwards: parse, decide, rewrite) only when its
 *    Ethernet destination is the MAC of the interface it arrived on: STRAIT_DIRECTOR.nat_mac
 *    on the inner interface (ingress_ifindex == nat_ifindex, when that is not client_ifindex),
 *    STRAIT_DIRECTOR.mac on the client-facing one (and on any other ingress: only
 *    BPF_PROG_TEST_RUN's lo). Any other destination (another host's unicast MAC, multicast,
 *    broadcast but for step 0's ARP requests) is XDP_PASS, unmodified, counted pass_not_ours:
 *    on a switched LAN the director also receives unicast frames flooded to every port (an
 *    aged-out FDB entry, the owner's port down), and a backup director of a failover pair
 *    must not forward its master's traffic; the kernel drops them (PACKET_OTHERHOST), but
 *    XDP runs before that check. A MAC of all zeroes (lo) matches a zero destination;
 * 2. anything but a balanced flow (non-IPv4, malformed, later fragments, first fragments
 *    without ports, other protocols, flows to no service) is XDP_PASS, unmodified;
 * 3. a flow to a service: an opening TCP SYN (SYN set, ACK clear: flow.opening_syn,
 *    lib/parse.h) skips the connection table, fast path included: it is always a new flow,
 *    picked, recorded (overwriting its 5-tuple's entry), counted and reported below, as
 *    Katran does. A SYN opens a connection, so an entry for its 5-tuple is a previous
 *    connection's (a reused 5-tuple): following it would send a new connection to a draining
 *    (weight 0) backend; a SYN retransmitted after a table change may move (the half-open
 *    connection on the first backend times out), as with Katran and LVS's new-SYN handling.
 *    It also spares the SYN a table lookup before its update. Every other segment (SYN+ACK,
 *    ACK, data, FIN, RST) and UDP: the recorded backend when it is still inside the backend
 *    list and not STRAIT_BACKEND_DEAD, else a new Maglev pick on strait_flow_hash, recorded in
 *    the connection table (lib/conntrack.h; a dead backend's entry is overwritten: LVS
 *    expire_nodest_conn=1; a drained backend, weight 0 but alive, keeps its flows). Fast
 *    path: an entry recorded under the service version installed now (service_gen[id] ==
 *    its gen, lib/conntrack.h) carries the mode and backends index, so the services lookup
 *    is skipped (the same decision: that version holds the recorded index) unless the
 *    backend read there for its MAC is dead (then the slow path reschedules); an entry of an
 *    older version goes through the service entry and is refreshed with the new version; a
 *    service without table drops new flows (no_backend), a table entry outside the backend
 *    list drops (bad_backend), a TUN datagram that cannot be encapsulated within 65535
 *    bytes drops (encap_too_big);
 *    a new NAT flow also records its reply direction; every recorded new flow queues one
 *    flow event (lib/events.h; a full ring loses the event, counted, never the packet);
 * 4. DR: destination MAC := backend MAC, source MAC := director MAC, XDP_TX;
 *    TUN: outer IPv4 header towards the backend (lib/tun.h), same MACs, XDP_TX; but a
 *    datagram whose encapsulation exceeds STRAIT_DIRECTOR.mtu (the client-facing
 *    interface's MTU, 0: unchecked; lib/icmp.h) is not forwarded: with DF set the frame
 *    becomes the ICMP "fragmentation needed" (next-hop MTU = mtu - 20) to the client, from
 *    the VIP, XDP_TX (icmp_too_big), so its path-MTU discovery lowers the segment size; with
 *    DF clear it is dropped (drop_too_big): XDP cannot fragment, and a client that does not
 *    set DF does no PMTUD. This check comes after scheduling: the flow is recorded (and its
 *    event queued) as for a forward, so a later smaller segment goes to the same backend;
 *    the backend's packet and flow stats count forwarded packets only. DR leaves by the
 *    interface it arrived on with the frame's size: nothing to check;
 *    NAT: the director is the backends' router (as the kernel's forwarding path behind
 *    nftables DNAT): a frame that arrived with TTL <= 1 is not forwarded but becomes the ICMP
 *    "time exceeded" (lib/icmp.h) to the client, from STRAIT_DIRECTOR.mac and .ip (the
 *    client-facing interface it arrived on), XDP_TX (icmp_time_exceeded); checked after
 *    scheduling (the flow is recorded and its event queued, later packets with a normal TTL
 *    follow it) and before the next-hop lookup, no backend stats. Then a datagram longer
 *    than STRAIT_DIRECTOR.nat_mtu (the inner interface's; 0: unchecked) is not forwarded:
 *    DF set, the ICMP "fragmentation needed" (next-hop MTU = nat_mtu) to the client from
 *    .mac and .ip (icmp_too_big); DF clear, drop_too_big (a router would fragment; XDP
 *    cannot). Otherwise the TTL is
 *    decremented and destination address and port := the backend's (lib/nat.h), MACs of
 *    the next hop towards the backend through STRAIT_DIRECTOR.nat_ifindex (lib/fib.h: the
 *    FIB's answer, kept per CPU for up to 256 jiffies),
 *    redirected through the egress devmap entry STRAIT_EGRESS_NAT (lib/egress.h); without a
 *    neighbour entry the backend's MAC from the backends map (source: nat_mac) if it is not
 *    zero, else drop (drop_no_neigh); without a route drop (drop_no_route). The flow stays
 *    recorded;
 *    DR (an L2 rewrite on the same link) and TUN (a new outer header, TTL 64) keep the TTL;
 * 5. a flow to no service that matches a NAT reply entry: with TTL <= 1 the ICMP "time
 *    exceeded" to the backend, from STRAIT_DIRECTOR.nat_mac and .nat_ip (the inner interface
 *    it arrived on), XDP_TX (icmp_time_exceeded), before the next-hop lookup; longer than
 *    STRAIT_DIRECTOR.mtu (the client side's): DF set, the ICMP "fragmentation needed"
 *    (next-hop MTU = mtu) to the backend from .nat_mac and .nat_ip (icmp_too_big), DF clear
 *    drop_too_big; else TTL - 1,
 *    source := VIP and port, MACs of the next hop towards the client through
 *    client_ifindex, redirected through STRAIT_EGRESS_CLIENT; no neighbour or no route:
 *    drop (never pass: the kernel would forward it un-NATed).
 * A new flow (the pick above: an opening SYN, a flow without an entry, one whose backend is
 * dead) is first charged to this CPU's new-flow budget (lib/ratelimit.h:
 * STRAIT_DIRECTOR.new_flow_cost / .new_flow_cap, from new_flow_rate / new_flow_burst; no
 * guard when unset): over it, a DR or TUN flow is forwarded to its pick as a new flow (step
 * 4, backend stats included) without a record or a flow event (new_flow_unrecorded: its next
 * packet is picked again, the same backend while the table stands, as the stateless Maglev
 * of the well-known balancers), and a NAT flow is dropped (drop_new_flow_limit: without its
 * reply entry the backend's answer could not be translated back). A new flow's entries are
 * recorded half-open (lib/conntrack.h): a full set evicts them before any entry a later packet
 * without SYN used, so a flood of SYNs (answered by the backends or not) or of one-packet
 * flows does not evict established flows.
 * Every ICMP error above is first charged to this CPU's budget (lib/ratelimit.h:
 * STRAIT_DIRECTOR.icmp_cost / .icmp_cap, from icmp_rate / icmp_burst): over it, the error is
 * not built and the frame is dropped (icmp_limited), the flow staying recorded.
 * The director's addresses come from the volatile const global STRAIT_DIRECTOR.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "strait.h"
#include "lib/parse.h"
#include "lib/maglev.h"
#include "lib/conntrack.h"
#include "lib/stats.h"
#include "lib/tun.h"
#include "lib/icmp.h"
#include "lib/nat.h"
#include "lib/egress.h"
#include "lib/fib.h"
#include "lib/events.h"
#include "lib/ratelimit.h"
#include "lib/arp.h"

volatile const struct strait_director STRAIT_DIRECTOR = {};

static __always_inline void strait_set_macs(void *data, const __u8 *dmac, const __u8 *smac)
{
	__builtin_memcpy(data, dmac, 6);
	__builtin_memcpy(data + 6, smac, 6);
}

static __always_inline int strait_drop(__u32 counter)
{
	strait_count(counter);
	return XDP_DROP;
}

/* The director's MAC (a volatile const global: read byte by byte). */
static __always_inline void strait_own_mac(__u8 *mac)
{
	mac[0] = STRAIT_DIRECTOR.mac[0];
	mac[1] = STRAIT_DIRECTOR.mac[1];
	mac[2] = STRAIT_DIRECTOR.mac[2];
	mac[3] = STRAIT_DIRECTOR.mac[3];
	mac[4] = STRAIT_DIRECTOR.mac[4];
	mac[5] = STRAIT_DIRECTOR.mac[5];
}

static __always_inline void strait_nat_mac(__u8 *mac)
{
	mac[0] = STRAIT_DIRECTOR.nat_mac[0];
	mac[1] = STRAIT_DIRECTOR.nat_mac[1];
	mac[2] = STRAIT_DIRECTOR.nat_mac[2];
	mac[3] = STRAIT_DIRECTOR.nat_mac[3];
	mac[4] = STRAIT_DIRECTOR.nat_mac[4];
	mac[5] = STRAIT_DIRECTOR.nat_mac[5];
}

/* An ICMP error about to be sent: over this CPU's budget (lib/ratelimit.h), it is not, and the
 * frame is dropped (counted icmp_limited). */
static __always_inline int strait_icmp_over_budget(void)
{
	if (strait_icmp_allowed())
		return 0;
	strait_count(STRAIT_CNT_ICMP_LIMITED);
	return 1;
}

/* A NAT frame that arrived with TTL <= 1 (steps 4 and 5): the ICMP "time exceeded" from smac
 * and saddr (the interface it arrived on), XDP_TX, within the budget. */
static __always_inline int strait_ttl_answer(struct xdp_md *ctx, const struct strait_flow *flow,
					     const __u8 *smac, __be32 saddr)
{
	if (strait_icmp_over_budget())
		return XDP_DROP;
	if (strait_time_exceeded(ctx, flow, smac, saddr))
		return XDP_DROP;
	strait_count(STRAIT_CNT_ICMP_TIME_EXCEEDED);
	return XDP_TX;
}

/* A NAT datagram over the MTU of the interface it leaves by (steps 4 and 5): with DF, the
 * router's "fragmentation needed" from smac and saddr (the interface it arrived on), XDP_TX;
 * without, a drop. */
static __always_inline int strait_routed_too_big(struct xdp_md *ctx,
						 const struct strait_flow *flow,
						 const __u8 *smac, __be32 saddr, __u32 mtu)
{
	if (!flow->dont_fragment)
		return strait_drop(STRAIT_CNT_DROP_TOO_BIG);
	if (strait_icmp_over_budget())
		return XDP_DROP;
	if (strait_frag_needed_routed(ctx, flow, smac, saddr, mtu))
		return XDP_DROP;
	strait_count(STRAIT_CNT_ICMP_TOO_BIG);
	return XDP_TX;
}

static __always_inline int strait_mac_is_zero(const __u8 *m)
{
	return (m[0] | m[1] | m[2] | m[3] | m[4] | m[5]) == 0;
}

/* Step 0 of the contract: 1 when the frame became an ARP reply to transmit. */
static __always_inline int strait_arp(struct xdp_md *ctx)
{
	__u8 mac[6];

	if (!strait_is_arp(ctx) || ctx->ingress_ifindex != STRAIT_DIRECTOR.client_ifindex)
		return 0;
	strait_own_mac(mac);
	if (!strait_arp_reply(ctx, mac))
		return 0;
	strait_count(STRAIT_CNT_ARP_REPLY);
	return 1;
}

/* Step 1 of the contract: whether the frame's Ethernet destination is the MAC of the interface
 * it arrived on (lb::packet::ingress). On every frame's path, so kept short: a 32-bit and a
 * 16-bit load of each side, xor-ed, one branch (as Cilium's eth_addrcmp; both MACs are 4-byte
 * aligned in STRAIT_DIRECTOR); the ingress interface is read only when there is an inner
 * interface (nat_ifindex != client_ifindex: read-only globals, whose test the verifier
 * resolves at load time). About 1-2 ns a frame (docs/benchmarks.md). */
static __always_inline int strait_for_us(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	const volatile __u8 *mac = STRAIT_DIRECTOR.mac;

	if (data + 6 > data_end)
		return 0;
	if (STRAIT_DIRECTOR.nat_ifindex != STRAIT_DIRECTOR.client_ifindex &&
	    ctx->ingress_ifindex == STRAIT_DIRECTOR.nat_ifindex)
		mac = STRAIT_DIRECTOR.nat_mac;
	return ((*(__u32 *)data ^ *(const volatile __u32 *)mac) |
		(*(__u16 *)(data + 4) ^ *(const volatile __u16 *)(mac + 4))) == 0;
}

static __always_inline int strait_pass_class(int class)
{
	switch (class) {
	case STRAIT_PARSE_NOT_IPV4:
		strait_count(STRAIT_CNT_PASS_NOT_IPV4);
		break;
	case STRAIT_PARSE_MALFORMED:
		strait_count(STRAIT_CNT_PASS_MALFORMED);
		break;
	case STRAIT_PARSE_FRAGMENT:
		strait_count(STRAIT_CNT_PASS_FRAGMENT);
		break;
	default:
		strait_count(STRAIT_CNT_PASS_OTHER);
		break;
	}
	return XDP_PASS;
}

/* Step 5 of the contract: a backend's reply of a NAT flow, or a pass. */
static __always_inline int strait_nat_reply(struct xdp_md *ctx, const struct strait_flow *flow)
{
	struct strait_conn origin;
	__u8 dmac[6], smac[6];

	if (!strait_nat_reply_of(flow, &origin))
		return strait_pass_class(STRAIT_PARSE_OTHER);
	if (strait_ttl_expired(flow)) {
		/* Back out of the inner interface it arrived on, from its MAC and address. */
		strait_nat_mac(smac);
		return strait_ttl_answer(ctx, flow, smac, STRAIT_DIRECTOR.nat_ip);
	}
	/* Leaves by the client-facing interface: its MTU. */
	if (strait_routed_over_mtu(flow, STRAIT_DIRECTOR.mtu)) {
		strait_nat_mac(smac);
		return strait_routed_too_big(ctx, flow, smac, STRAIT_DIRECTOR.nat_ip,
					     STRAIT_DIRECTOR.mtu);
	}
	__be32 vip = origin.vip;
	__be16 vport = origin.vport;
	int hop = strait_next_hop_cached(ctx, STRAIT_DIRECTOR.client_ifindex, vip, flow->dst, dmac, smac);

	if (hop == STRAIT_HOP_NO_NEIGH)
		return strait_drop(STRAIT_CNT_DROP_NO_NEIGH);
	if (hop != STRAIT_HOP_FOUND)
		return strait_drop(STRAIT_CNT_DROP_NO_ROUTE);
	if (strait_nat(ctx, flow, STRAIT_NAT_SRC, vip, vport))
		return XDP_DROP;
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (data + 12 > data_end)
		return XDP_DROP;
	strait_set_macs(data, dmac, smac);
	strait_count(STRAIT_CNT_NAT_REPLY);
	return strait_redirect(STRAIT_EGRESS_CLIENT);
}

/* Step 4 of the contract, for backend b (stat_index in backend_stats) in mode `mode`. */
static __always_inline int strait_forward(struct xdp_md *ctx, const struct strait_flow *flow,
					  const struct strait_backend *b, __u32 stat_index,
					  __u8 mode, int is_new)
{
	/* Copy what the rewrite needs: the map value must not be read after adjust_head. */
	struct strait_backend target = *b;
	__u8 dmac[6], smac[6];

	/* TTL (step 4, NAT): after scheduling, before the next hop; no backend stats. */
	if (mode == STRAIT_MODE_NAT && strait_ttl_expired(flow)) {
		strait_own_mac(smac);
		return strait_ttl_answer(ctx, flow, smac, STRAIT_DIRECTOR.ip);
	}
	/* Egress MTU (step 4, NAT): the inner interface's; as the TTL, no backend stats. */
	if (mode == STRAIT_MODE_NAT && strait_routed_over_mtu(flow, STRAIT_DIRECTOR.nat_mtu)) {
		strait_own_mac(smac);
		return strait_routed_too_big(ctx, flow, smac, STRAIT_DIRECTOR.ip,
					     STRAIT_DIRECTOR.nat_mtu);
	}
	if (mode == STRAIT_MODE_NAT) {
		int hop = strait_next_hop_cached(ctx, STRAIT_DIRECTOR.nat_ifindex, flow->src, target.ip,
					  dmac, smac);

		if (hop == STRAIT_HOP_NO_NEIGH) {
			if (strait_mac_is_zero(target.mac))
				return strait_drop(STRAIT_CNT_DROP_NO_NEIGH);
			__builtin_memcpy(dmac, target.mac, 6);
			strait_nat_mac(smac);
		} else if (hop != STRAIT_HOP_FOUND) {
			return strait_drop(STRAIT_CNT_DROP_NO_ROUTE);
		}
	} else {
		__builtin_memcpy(dmac, target.mac, 6);
		strait_own_mac(smac);
	}

	/* Path MTU (step 4, TUN): after scheduling, so the flow stays recorded; no backend stats. */
	if (mode == STRAIT_MODE_TUN && strait_over_mtu(flow, STRAIT_DIRECTOR.mtu)) {
		if (!flow->dont_fragment)
			return strait_drop(STRAIT_CNT_DROP_TOO_BIG);
		if (strait_icmp_over_budget())
			return XDP_DROP;
		if (strait_frag_needed(ctx, flow, smac, STRAIT_DIRECTOR.mtu))
			return XDP_DROP;
		strait_count(STRAIT_CNT_ICMP_TOO_BIG);
		return XDP_TX;
	}
	if (mode == STRAIT_MODE_TUN && strait_encapsulate(ctx, flow, STRAIT_DIRECTOR.ip, target.ip))
		return strait_drop(STRAIT_CNT_DROP_ENCAP_TOO_BIG);
	if (mode == STRAIT_MODE_NAT && strait_nat(ctx, flow, STRAIT_NAT_DST, target.ip, target.port))
		return XDP_DROP;
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (data + 12 > data_end)
		return XDP_DROP;
	strait_set_macs(data, dmac, smac);
	/* The one per-CPU update of a forwarded packet: tx_new/tx_established are derived. */
	strait_count_backend(stat_index, (__u64)(data_end - data), is_new);
	if (mode == STRAIT_MODE_NAT)
		return strait_redirect(STRAIT_EGRESS_NAT);
	return XDP_TX;
}

static __always_inline int strait_too_big(const struct strait_flow *flow, __u8 mode)
{
	return mode == STRAIT_MODE_TUN && flow->l3_end - flow->l3_off + 20 > 65535;
}

SEC("xdp")
int strait_director(struct xdp_md *ctx)
{
	struct strait_flow flow = {};
	struct strait_service *svc;
	struct strait_backend *b;
	struct strait_conn conn, *c = NULL;
	int class;
	long index;
	int is_new = 0;

	if (strait_arp(ctx))
		return XDP_TX;
	if (!strait_for_us(ctx)) {
		strait_count(STRAIT_CNT_PASS_NOT_OURS);
		return XDP_PASS;
	}
	class = strait_parse(ctx, &flow);
	if (class != STRAIT_PARSE_FLOW)
		return strait_pass_class(class);

	/* Fast path: established under the installed version of its service (step 3), on a
	 * live backend; a dead one's flow is rescheduled below. An opening SYN never looks its
	 * 5-tuple up: always scheduled anew (step 3). */
	if (!flow.opening_syn && strait_conn_of(&flow, &conn))
		c = &conn;
	if (c && strait_conn_current(c)) {
		__u8 mode = c->mode;
		__u32 slot = c->slot;

		if (mode > STRAIT_MODE_NAT)
			return strait_pass_class(STRAIT_PARSE_OTHER);
		if (strait_too_big(&flow, mode))
			return strait_drop(STRAIT_CNT_DROP_ENCAP_TOO_BIG);
		b = bpf_map_lookup_elem(&backends, &slot);
		if (!b)
			return strait_drop(STRAIT_CNT_DROP_BAD_BACKEND);
		if (!(b->flags & STRAIT_BACKEND_DEAD))
			return strait_forward(ctx, &flow, b, slot, mode, 0);
	}

	svc = strait_service_of(&flow);
	if (!svc)
		return strait_nat_reply(ctx, &flow);
	if (svc->mode > STRAIT_MODE_NAT)
		return strait_pass_class(STRAIT_PARSE_OTHER);
	if (strait_too_big(&flow, svc->mode))
		return strait_drop(STRAIT_CNT_DROP_ENCAP_TOO_BIG);

	b = NULL;
	if (c && c->backend < svc->backend_count) {
		index = c->backend;
		b = strait_backend_at(svc, (__u32)index);
		if (!b)
			return strait_drop(STRAIT_CNT_DROP_BAD_BACKEND);
		if (b->flags & STRAIT_BACKEND_DEAD)
			b = NULL; /* its backend is down: a new flow (expire_nodest_conn) */
	}
	if (!b) {
		index = strait_maglev_pick(svc, strait_flow_hash(&flow, svc->hash));
		if (index < 0)
			return strait_drop(STRAIT_CNT_DROP_NO_BACKEND);
		if (index >= svc->backend_count)
			return strait_drop(STRAIT_CNT_DROP_BAD_BACKEND);
		b = strait_backend_at(svc, (__u32)index);
		if (!b)
			return strait_drop(STRAIT_CNT_DROP_BAD_BACKEND);
		is_new = 1;
	}
	/* New (or rescheduled) over this CPU's new-flow budget: DR and TUN forwarded to the
	 * pick without a record or an event, NAT dropped (no reply entry, no flow). */
	if (is_new && !strait_new_flow_allowed()) {
		if (svc->mode == STRAIT_MODE_NAT)
			return strait_drop(STRAIT_CNT_DROP_NEW_FLOW_LIMIT);
		strait_count(STRAIT_CNT_NEW_FLOW_UNRECORDED);
		return strait_forward(ctx, &flow, b, svc->backend_base + (__u32)index, svc->mode,
				      1);
	}
	/* New (or rescheduled): record, overwriting, half-open. Established under an older
	 * version: refresh (same backend index, its mark kept). */
	strait_conn_record(&flow, svc, (__u32)index, !is_new);
	if (is_new) {
		if (svc->mode == STRAIT_MODE_NAT)
			strait_nat_record_reply(&flow, b);
		strait_flow_event(&flow, svc->mode, (__u32)index);
	}
	return strait_forward(ctx, &flow, b, svc->backend_base + (__u32)index, svc->mode, is_new);
}

char LICENSE[] SEC("license") = "GPL";
