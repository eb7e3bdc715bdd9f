/* SPDX-License-Identifier: Apache-2.0 */
/*
 * xdp_tx.bpf.c: the control programs of the XDP ns/packet benchmark (lb/benches/xdp.rs).
 *
 * Contract:
 * - bench_xdp_tx returns XDP_TX and touches nothing: under BPF_PROG_TEST_RUN its duration is
 *   the cost of the test-run loop itself, the floor the director is compared against.
 * - bench_restore makes every repetition of a BPF_PROG_TEST_RUN see the same input frame,
 *   then tail-calls the program in slot 0 of bench_target (XDP_ABORTED when the slot is empty
 *   or the restore fails). In the non-live test-run mode the kernel reuses one buffer for all
 *   repetitions, so a program that rewrites (NAT) or grows (TUN) the frame would otherwise be
 *   fed its own output. The restore: move the frame start so that the frame is
 *   bench_input.len bytes long again (undoes a bpf_xdp_adjust_head), then copy the
 *   BENCH_FRAME_LEN original bytes of bench_input over it. Its work does not depend on what
 *   the target did, so the benchmark measures it with bench_xdp_tx as target and subtracts it.
 *   With bench_input.vary set, it then stores a per-repetition sequence number (bench_input.seq,
 *   incremented on every repetition and never reset) as the IPv4 source address (frame bytes
 *   26..29, ahead of its checksums, which the director does not verify), so every repetition is
 *   a new flow: the warm-cache new-flow measurement.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* The benchmark's frames: 64-byte TCP packets (no FCS). */
#define BENCH_FRAME_LEN 64

struct bench_input {
	__u64 frame[BENCH_FRAME_LEN / 8]; /* the frame's bytes, in order */
	__u32 len;  /* BENCH_FRAME_LEN; kept in the map so a wrong setup is visible */
	__u32 vary; /* nonzero: a new source address every repetition */
	__u32 seq;  /* the next source address (host order) */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bench_input);
} bench_input SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} bench_target SEC(".maps");

SEC("xdp")
int bench_xdp_tx(struct xdp_md *ctx)
{
	return XDP_TX;
}

SEC("xdp")
int bench_restore(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct bench_input *in = bpf_map_lookup_elem(&bench_input, &zero);
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	int delta;

	if (!in || in->len != BENCH_FRAME_LEN)
		return XDP_ABORTED;
	delta = (int)(data_end - data) - BENCH_FRAME_LEN;
	if (delta && bpf_xdp_adjust_head(ctx, delta))
		return XDP_ABORTED;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + BENCH_FRAME_LEN > data_end)
		return XDP_ABORTED;
	/* Eight 8-byte stores (packet stores need no alignment on the JITs that matter here). */
	__u64 *words = data;
#pragma unroll
	for (int i = 0; i < BENCH_FRAME_LEN / 8; i++)
		words[i] = in->frame[i];
	if (in->vary) {
		__u32 seq = in->seq;

		in->seq = seq + 1;
		*(__u32 *)((__u8 *)data + 26) = __builtin_bswap32(seq);
	}
	bpf_tail_call(ctx, &bench_target, 0);
	return XDP_ABORTED;
}

char LICENSE[] SEC("license") = "GPL";
