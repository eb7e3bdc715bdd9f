//! IPv4 prefixes (`a.b.c.d/len`) and route destinations, as written in topology files.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 address with a prefix length, written `a.b.c.d/len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Cidr {
    /// The address (for a subnet, its network address).
    pub addr: Ipv4Addr,
    /// Prefix length, 0..=32.
    pub len: u8,
}

impl Ipv4Cidr {
    /// The netmask as a number.
    pub fn mask(self) -> u32 {
        match self.len {
            0 => 0,
            n => u32::MAX << (32 - u32::from(n)),
        }
    }

    /// The network address (host bits cleared).
    pub fn network(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// The broadcast address (host bits set).
    pub fn broadcast(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }

    /// Whether `ip` lies inside this prefix.
    pub fn contains(self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network())
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, len) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not a CIDR (expected a.b.c.d/len)"))?;
        let addr = addr
            .parse::<Ipv4Addr>()
            .map_err(|_| format!("`{s}`: `{addr}` is not an IPv4 address"))?;
        let len = match len.parse::<u8>() {
            Ok(n) if n <= 32 && !len.starts_with('+') => n,
            _ => return Err(format!("`{s}`: prefix length `{len}` is not 0..=32")),
        };
        Ok(Self { addr, len })
    }
}

/// Where a route goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// `to = "default"`.
    Default,
    /// `to = "a.b.c.d/len"` (a network address).
    Net(Ipv4Cidr),
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::Net(net) => net.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_cidrs() {
        let c: Ipv4Cidr = match "10.1.2.3/24".parse() {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(c.addr, Ipv4Addr::new(10, 1, 2, 3));
        assert_eq!(c.len, 24);
        assert_eq!(c.to_string(), "10.1.2.3/24");
        assert_eq!(c.network(), Ipv4Addr::new(10, 1, 2, 0));
        assert_eq!(c.broadcast(), Ipv4Addr::new(10, 1, 2, 255));
        assert!(c.contains(Ipv4Addr::new(10, 1, 2, 200)));
        assert!(!c.contains(Ipv4Addr::new(10, 1, 3, 1)));
    }

    #[test]
    fn edge_prefix_lengths() {
        let all = Ipv4Cidr {
            addr: Ipv4Addr::UNSPECIFIED,
            len: 0,
        };
        assert_eq!(all.mask(), 0);
        assert!(all.contains(Ipv4Addr::new(192, 0, 2, 1)));
        let one = Ipv4Cidr {
            addr: Ipv4Addr::new(192, 0, 2, 1),
            len: 32,
        };
        assert_eq!(one.mask(), u32::MAX);
        assert!(!one.contains(Ipv4Addr::new(192, 0, 2, 2)));
    }

    #[test]
    fn rejects_bad_cidrs() {
        for bad in [
            "10.0.0.0",
            "10.0.0/24",
            "10.0.0.0/33",
            "10.0.0.0/+8",
            "10.0.0.0/",
            "x/8",
        ] {
            assert!(bad.parse::<Ipv4Cidr>().is_err(), "{bad} must be refused");
        }
        assert_eq!(
            "10.0.0.0/33".parse::<Ipv4Cidr>(),
            Err("`10.0.0.0/33`: prefix length `33` is not 0..=32".to_owned())
        );
    }

    #[test]
    fn destination_display() {
        assert_eq!(Destination::Default.to_string(), "default");
        let net = Ipv4Cidr {
            addr: Ipv4Addr::new(10, 1, 0, 0),
            len: 16,
        };
        assert_eq!(Destination::Net(net).to_string(), "10.1.0.0/16");
    }
}
