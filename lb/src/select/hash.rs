//! The 64-bit hash behind the hashing schedulers: FNV-1a over the bytes, then the murmur3
//! `fmix64` finalizer so every input bit flips about half of the output bits (FNV-1a alone
//! leaves the high bits of short keys such as IPv4 addresses poorly mixed).
//!
//! Written here rather than taken from a crate: it is ten lines, and the values must never
//! change between releases, or every client and URL would move to another server on upgrade
//! (`std`'s `DefaultHasher` makes no such promise). The tests pin known values.

use std::net::IpAddr;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a of `bytes`, finalized with [`mix`].
pub(crate) fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    mix(h)
}

/// The murmur3 `fmix64` finalizer: a bijection with full avalanche.
pub(crate) fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

/// Hash of a client address; an IPv4-mapped IPv6 address hashes as its IPv4 form, so a
/// client keeps its server whether it arrives on a v4 or a dual-stack socket.
pub(crate) fn hash_ip(ip: IpAddr) -> u64 {
    match ip.to_canonical() {
        IpAddr::V4(v4) => hash_bytes(&v4.octets()),
        IpAddr::V6(v6) => hash_bytes(&v6.octets()),
    }
}

/// Hash of a request path, query excluded: `/a?x=1` and `/a` are the same object's URL.
pub(crate) fn hash_path(path: &str) -> u64 {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    hash_bytes(path.as_bytes())
}

/// Maps a hash to a number strictly between 0 and 1 (the top 52 bits plus one half, over
/// 2^52), so that `ln` of it is finite and negative.
pub(crate) fn unit_open(h: u64) -> f64 {
    const SCALE: f64 = (1u64 << 52) as f64;
    ((h >> 12) as f64 + 0.5) / SCALE
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn fnv1a_matches_the_published_vectors_before_mixing() {
        // FNV-1a 64 of "" is the offset basis and of "a" is 0xaf63dc4c8601ec8c; mix is a
        // bijection, so comparing through it checks the FNV part exactly.
        assert_eq!(hash_bytes(b""), mix(0xcbf2_9ce4_8422_2325));
        assert_eq!(hash_bytes(b"a"), mix(0xaf63_dc4c_8601_ec8c));
        assert_eq!(hash_bytes(b"foobar"), mix(0x8594_4171_f739_67e8));
    }

    #[test]
    fn mix_is_pinned_and_avalanches() {
        assert_eq!(mix(0), 0);
        assert_eq!(mix(1), 0xb456_bcfc_34c2_cb2c);
        let flipped = (mix(0x1234) ^ mix(0x1235)).count_ones();
        assert!((20..=44).contains(&flipped), "{flipped} bits flipped");
    }

    #[test]
    fn mapped_v6_hashes_as_v4() {
        let v4 = Ipv4Addr::new(192, 0, 2, 7);
        assert_eq!(
            hash_ip(IpAddr::V6(v4.to_ipv6_mapped())),
            hash_ip(IpAddr::V4(v4))
        );
        assert_ne!(
            hash_ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            hash_ip(IpAddr::V4(Ipv4Addr::LOCALHOST))
        );
    }

    #[test]
    fn the_query_is_not_part_of_the_path_hash() {
        assert_eq!(hash_path("/a/b?x=1&y=2"), hash_path("/a/b"));
        assert_eq!(hash_path("/a/b?"), hash_path("/a/b"));
        assert_ne!(hash_path("/a/b"), hash_path("/a/c"));
    }

    #[test]
    fn unit_open_stays_strictly_inside_zero_one() {
        assert_eq!(unit_open(0), 0.5 / (1u64 << 52) as f64);
        let top = unit_open(u64::MAX);
        assert!(top < 1.0, "{top}");
        assert!(top.ln().is_finite());
        assert_eq!(unit_open(1u64 << 63), 0.5 + 0.5 / (1u64 << 52) as f64);
    }
}
