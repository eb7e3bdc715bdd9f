//! Stable hashes for Maglev: backend permutations and the 5-tuple flow hash.
//!
//! Contract: every function here is a pure function of its input bytes, fixed forever.
//! Maglev tables must come out identical across restarts, releases, machines and the two
//! directors of an HA pair (otherwise a failover or an upgrade would remap live flows), so
//! `std::hash` (whose `DefaultHasher` is randomly keyed and whose algorithm may change between
//! Rust releases) is not usable. Changing any constant below is a wire-level change: it
//! reshuffles every table and breaks agreement with the BPF C implementation of
//! [`flow_hash`].
//!
//! Building blocks:
//! * FNV-1a 64 (prime `0x100000001b3`) over the bytes, starting from a caller-chosen state
//!   (the standard offset basis `0xcbf29ce484222325`, or that basis XOR a seed): backend
//!   permutations (computed by the control plane only);
//! * for the flow hash (computed per new flow by the XDP program), two word multiplies;
//! * the MurmurHash3 `fmix64` finalizer, so that every input bit affects every output bit
//!   (plain FNV-1a leaves the high bits poorly mixed, and Maglev reduces hashes modulo M).

/// FNV-1a 64-bit offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64-bit prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
/// Seed XORed into the offset basis for the permutation offset hash (`h1`).
const SEED_OFFSET: u64 = 0x6d61_676c_6576_0001;
/// Seed XORed into the offset basis for the permutation skip hash (`h2`).
const SEED_SKIP: u64 = 0x6d61_676c_6576_0002;

/// FNV-1a 64 over `bytes`, starting from `state`.
fn fnv1a(state: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(state, |h, &b| (h ^ u64::from(b)).wrapping_mul(FNV_PRIME))
}

/// MurmurHash3 64-bit finalizer: a bijection that avalanches all 64 bits.
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// Hash choosing a backend's permutation offset: `fmix64(fnv1a(basis ^ SEED_OFFSET, id))`.
pub(crate) fn offset_hash(id: &str) -> u64 {
    fmix64(fnv1a(FNV_OFFSET ^ SEED_OFFSET, id.as_bytes()))
}

/// Hash choosing a backend's permutation skip: `fmix64(fnv1a(basis ^ SEED_SKIP, id))`.
///
/// Same construction as [`offset_hash`] with another seed; the two seeds diverge from the
/// first byte on, so offset and skip are independent for practical purposes.
pub(crate) fn skip_hash(id: &str) -> u64 {
    fmix64(fnv1a(FNV_OFFSET ^ SEED_SKIP, id.as_bytes()))
}

/// Multiplier of the flow hash's first word (addresses): the 64-bit golden ratio.
const FLOW_K0: u64 = 0x9e37_79b9_7f4a_7c15;
/// Multiplier of the flow hash's second word (ports and protocol).
const FLOW_K1: u64 = 0xc2b2_ae3d_27d4_eb4f;

/// Hash of an IPv4 5-tuple, used by the director to pick a table entry for a new flow.
///
/// Algorithm (to be mirrored bit for bit in BPF C, `ebpf/lib/maglev.h`):
/// 1. Two 64-bit words, each the little-endian reading of 8 bytes: `w0` of `src[0..4] ‖
///    dst[0..4]`, `w1` of `sport (2 bytes, big-endian) ‖ dport (2 bytes, big-endian) ‖ proto
///    ‖ 0 0 0`. Addresses are taken in the order given, which is network order
///    (`Ipv4Addr::octets()`, or the bytes as they sit in the IP header); ports are host
///    integers serialized big-endian, i.e. exactly the bytes found in the TCP/UDP header, so
///    the C side reads the header's fields as they are (on a little-endian host, the BPF
///    target's order, a `__be32` loaded as a `__u32` is that reading).
/// 2. `h = w0 * 0x9e3779b97f4a7c15 ^ w1 * 0xc2b2ae3d27d4eb4f` (mod 2^64): each product is a
///    bijection of its word (odd multipliers), and the two are independent of each other.
/// 3. Return `fmix64(h)`: `h ^= h >> 33; h *= 0xff51afd7ed558ccd; h ^= h >> 33;
///    h *= 0xc4ceb9fe1a85ec53; h ^= h >> 33`, so every input bit reaches the low bits that
///    the table size reduces to.
///
/// Two independent multiplies and a finalizer: a fraction of the cost of a byte-at-a-time
/// hash on the new-flow path of the XDP program.
/// The hash is direction-sensitive on purpose: the reply direction of a flow is not hashed
/// (it is handled by the backend or by connection tracking).
pub fn flow_hash(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, proto: u8) -> u64 {
    let mut a = [0u8; 8];
    a[0..4].copy_from_slice(&src);
    a[4..8].copy_from_slice(&dst);
    let mut b = [0u8; 8];
    b[0..2].copy_from_slice(&sport.to_be_bytes());
    b[2..4].copy_from_slice(&dport.to_be_bytes());
    b[4] = proto;
    let h =
        u64::from_le_bytes(a).wrapping_mul(FLOW_K0) ^ u64::from_le_bytes(b).wrapping_mul(FLOW_K1);
    fmix64(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_published_vectors() {
        // Reference vectors of FNV-1a 64 (from the FNV specification's test suite).
        assert_eq!(fnv1a(FNV_OFFSET, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(FNV_OFFSET, b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn fmix64_fixes_zero_and_mixes_one() {
        assert_eq!(fmix64(0), 0);
        assert_ne!(fmix64(1), 1);
        // Flipping one input bit flips many output bits (avalanche).
        let diff = (fmix64(1) ^ fmix64(3)).count_ones();
        assert!((16..=48).contains(&diff), "only {diff} bits differ");
    }

    #[test]
    fn offset_and_skip_hashes_differ_and_are_stable() {
        let id = "10.0.0.11";
        assert_ne!(offset_hash(id), skip_hash(id));
        assert_eq!(offset_hash(id), offset_hash("10.0.0.11"));
        assert_ne!(offset_hash(id), offset_hash("10.0.0.12"));
    }

    /// `flow_hash` of the two tuples below, computed by an independent (Python) implementation
    /// of the documented steps.
    const TCP_PINNED: u64 = 0xae83_c471_d09b_b3b6;
    const UDP_PINNED: u64 = 0x5782_3f67_a763_006e;

    #[test]
    fn flow_hash_pinned_values() {
        let tcp = flow_hash([10, 0, 0, 1], [192, 168, 1, 10], 40000, 80, 6);
        let udp = flow_hash([172, 16, 5, 4], [10, 1, 2, 3], 53, 5353, 17);
        assert_eq!(tcp, TCP_PINNED);
        assert_eq!(udp, UDP_PINNED);
    }

    #[test]
    fn flow_hash_spreads_flows_over_a_prime_table() {
        // 65 537 flows of one client over 4 001 source ports and 16 addresses, reduced
        // modulo a small prime as a Maglev table is: every entry near its mean (about 655).
        let m = 101u64;
        let mut counts = vec![0u32; m as usize];
        for i in 0..65_537u32 {
            let src = [10, 0, 0, (i % 16) as u8];
            let h = flow_hash(src, [10, 0, 0, 100], 20_000 + (i / 16) as u16, 80, 6);
            counts[(h % m) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (520..790).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn flow_hash_is_direction_sensitive() {
        let fwd = flow_hash([10, 0, 0, 1], [192, 168, 1, 10], 40000, 80, 6);
        let rev = flow_hash([192, 168, 1, 10], [10, 0, 0, 1], 80, 40000, 6);
        assert_ne!(fwd, rev);
        // Swapping only the ports also changes the hash.
        let ports = flow_hash([10, 0, 0, 1], [192, 168, 1, 10], 80, 40000, 6);
        assert_ne!(fwd, ports);
        // Protocol is part of the key.
        let udp = flow_hash([10, 0, 0, 1], [192, 168, 1, 10], 40000, 80, 17);
        assert_ne!(fwd, udp);
    }
}
