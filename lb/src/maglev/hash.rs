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
//!   (the standard offset basis `0xcbf29ce484222325`, or that basis XOR a seed);
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

/// Hash of an IPv4 5-tuple, used by the director to pick a table entry for a new flow.
///
/// Algorithm (to be mirrored byte for byte in BPF C):
/// 1. Build a 13-byte key: `src[0..4] ‖ dst[0..4] ‖ sport (2 bytes, big-endian)
///    ‖ dport (2 bytes, big-endian) ‖ proto (1 byte)`. Addresses are taken in the order given,
///    which is network order (`Ipv4Addr::octets()`, or the bytes as they sit in the IP header);
///    ports are host integers serialized big-endian, i.e. exactly the bytes found in the
///    TCP/UDP header, so the C side can copy header bytes without `bpf_ntohs`.
/// 2. `h = 0xcbf29ce484222325`; for each key byte `b`: `h = (h ^ b) * 0x100000001b3` (mod 2^64).
/// 3. Return `fmix64(h)`: `h ^= h >> 33; h *= 0xff51afd7ed558ccd; h ^= h >> 33;
///    h *= 0xc4ceb9fe1a85ec53; h ^= h >> 33`.
///
/// The hash is direction-sensitive on purpose: the reply direction of a flow is not hashed
/// (it is handled by the backend or by connection tracking).
pub fn flow_hash(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, proto: u8) -> u64 {
    let mut key = [0u8; 13];
    key[0..4].copy_from_slice(&src);
    key[4..8].copy_from_slice(&dst);
    key[8..10].copy_from_slice(&sport.to_be_bytes());
    key[10..12].copy_from_slice(&dport.to_be_bytes());
    key[12] = proto;
    fmix64(fnv1a(FNV_OFFSET, &key))
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

    #[test]
    fn flow_hash_pinned_values() {
        let tcp = flow_hash([10, 0, 0, 1], [192, 168, 1, 10], 40000, 80, 6);
        let udp = flow_hash([172, 16, 5, 4], [10, 1, 2, 3], 53, 5353, 17);
        // Values cross-checked with an independent implementation of the documented steps.
        assert_eq!(tcp, 0xba07_4868_23d7_4dc2);
        assert_eq!(udp, 0xa455_d198_45b5_0d3d);
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
