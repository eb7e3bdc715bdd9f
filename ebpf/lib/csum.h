/* SPDX-License-Identifier: Apache-2.0 */
/*
 * csum.h: incremental Internet checksum updates (RFC 1624 section 3, eqn. 3), the C twin of
 * lb::packet::csum::{update16, update32}.
 *
 * Contract: HC' = ~(~HC + ~m + m') with end-around carry, on 16-bit words as they sit in the
 * packet. One's complement sums are byte-order independent (RFC 1071 section 2 (B)), so the
 * raw (network-order) words give the same bytes as the model's big-endian arithmetic; an
 * address update is two word updates in the model's order (high word first).
 */
#ifndef STRAIT_LIB_CSUM_H
#define STRAIT_LIB_CSUM_H

#include <linux/types.h>

static __always_inline __u16 strait_csum_update16(__u16 hc, __u16 old, __u16 new)
{
	__u32 sum = (__u32)(__u16)~hc + (__u32)(__u16)~old + (__u32)new;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

static __always_inline __u16 strait_csum_update32(__u16 hc, __be32 old, __be32 new)
{
	const __u16 *o = (const __u16 *)&old;
	const __u16 *n = (const __u16 *)&new;

	hc = strait_csum_update16(hc, o[0], n[0]);
	return strait_csum_update16(hc, o[1], n[1]);
}

#endif /* STRAIT_LIB_CSUM_H */
