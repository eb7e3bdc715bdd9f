//! The probe a pool's `health = { ... }` asks for. The probes themselves, the loop that runs
//! them and the rise/fall state they feed are `strait_lb::health`.

use strait_lb::health::ProbeKind;

use super::section::{CheckKind, HealthConfig};

/// The probe described by a pool's `health = { ... }`.
pub fn probe_kind(cfg: &HealthConfig) -> ProbeKind {
    match cfg.kind {
        CheckKind::Http => ProbeKind::Http {
            path: cfg.path.clone(),
            expect: cfg.expect,
        },
        CheckKind::Tcp => ProbeKind::Tcp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(path: &str, expect: u16) -> ProbeKind {
        ProbeKind::Http {
            path: path.to_string(),
            expect,
        }
    }

    #[test]
    fn probe_kind_from_config() {
        let cfg: HealthConfig = toml::from_str("path = \"/h\"\nexpect = 204").unwrap();
        assert_eq!(probe_kind(&cfg), http("/h", 204));
        let cfg: HealthConfig = toml::from_str("kind = \"tcp\"").unwrap();
        assert_eq!(probe_kind(&cfg), ProbeKind::Tcp);
    }
}
