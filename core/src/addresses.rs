//! Which addresses a repository URL may reach (`SLUICE_REPO_DENY_CIDRS`).
//!
//! A build's checkout runs on the worker's network, so a repository URL is a way to make the
//! worker connect somewhere: to its own services on loopback, a cloud metadata endpoint, or
//! the host's other addresses. The deny list names what is refused; every address a
//! repository host resolves to is checked against it before git runs, and git is pinned to
//! the checked addresses.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// The ranges refused by default (the word `default` in the setting): loopback, unspecified,
/// link-local (which holds 169.254.169.254) and the cloud metadata addresses outside it; the
/// word `host` adds this host's own interface addresses, which `default` includes.
pub const DEFAULT_RANGES: &[&str] = &[
    "127.0.0.0/8",
    "::1/128",
    "0.0.0.0/8",
    "::/128",
    "169.254.0.0/16",
    "fe80::/10",
    "100.100.100.200/32",
    "192.0.0.192/32",
    "fd00:ec2::254/128",
];

/// A set of refused address ranges, optionally with this host's own addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenyList {
    nets: Vec<IpNet>,
    host: bool,
}

impl Default for DenyList {
    fn default() -> Self {
        DenyList {
            nets: DEFAULT_RANGES
                .iter()
                .filter_map(|r| IpNet::from_str(r).ok())
                .collect(),
            host: true,
        }
    }
}

impl DenyList {
    /// Parses a comma-separated list of CIDR ranges, bare addresses, and the words `default`
    /// and `host`; an empty list denies nothing. The error names the entry at fault.
    pub fn parse(spec: &str) -> Result<DenyList, String> {
        let mut list = DenyList {
            nets: Vec::new(),
            host: false,
        };
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            match entry {
                "default" => {
                    let default = DenyList::default();
                    list.nets.extend(default.nets);
                    list.host = true;
                }
                "host" => list.host = true,
                _ => {
                    let net = IpNet::from_str(entry)
                        .or_else(|_| IpAddr::from_str(entry).map(IpNet::from))
                        .map_err(|_| {
                            format!(
                                "`{entry}` is not a CIDR range (like 10.0.0.0/8), an address, `default` or `host`"
                            )
                        })?;
                    list.nets.push(net);
                }
            }
        }
        Ok(list)
    }

    /// Whether `ip` is refused (an IPv4-mapped IPv6 address counts as its IPv4 address).
    pub fn denies(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|net| net.contains(&ip))
            || (self.host && host_addresses().into_iter().any(|own| own == ip))
    }
}

/// A range tenant build pods may reach (`SLUICE_TENANT_EGRESS_CIDRS`), on one port or all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressRule {
    pub net: IpNet,
    pub port: Option<u16>,
}

/// Parses comma-separated `CIDR` or `CIDR:PORT` entries (`10.0.0.0/8:443`,
/// `2001:db8::/32:22`, or a bare address); the error names the entry at fault.
pub fn parse_egress(spec: &str) -> Result<Vec<EgressRule>, String> {
    let mut rules = Vec::new();
    for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = || format!("`{entry}` is not CIDR or CIDR:PORT (like 10.0.0.0/8:443)");
        // A port follows the prefix length, so the last `:` after the `/` starts it.
        let (range, port) = match entry.rsplit_once(':') {
            Some((range, port)) if range.contains('/') => {
                let port: u16 = port.parse().map_err(|_| bad())?;
                if port == 0 {
                    return Err(bad());
                }
                (range, Some(port))
            }
            _ => (entry, None),
        };
        let net = IpNet::from_str(range)
            .or_else(|_| IpAddr::from_str(range).map(IpNet::from))
            .map_err(|_| bad())?;
        rules.push(EgressRule { net, port });
    }
    Ok(rules)
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// This host's interface addresses, read now (interfaces come and go).
pub fn host_addresses() -> Vec<IpAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    addrs
        .filter_map(|a| a.address)
        .filter_map(|a| {
            a.as_sockaddr_in()
                .map(|v4| IpAddr::V4(v4.ip()))
                .or_else(|| a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_default_refuses_internal_ranges_and_this_hosts_addresses() {
        let deny = DenyList::default();
        for internal in [
            "127.0.0.1",
            "127.1.2.3",
            "169.254.169.254",
            "::1",
            "fe80::1",
            "0.0.0.0",
            "::ffff:127.0.0.1",
            "fd00:ec2::254",
            "100.100.100.200",
        ] {
            assert!(deny.denies(ip(internal)), "{internal}");
        }
        let own = host_addresses();
        assert!(!own.is_empty());
        for own in own {
            assert!(deny.denies(own), "{own}");
        }
        for public in ["140.82.112.3", "2606:4700::1"] {
            assert!(!deny.denies(ip(public)), "{public}");
        }
    }

    #[test]
    fn egress_rules_take_an_optional_port() {
        let rules = parse_egress("10.0.0.0/8:443, 2001:db8::/32:22, 192.0.2.7").unwrap();
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[0].port, Some(443));
        assert_eq!(rules[1].net.to_string(), "2001:db8::/32");
        assert_eq!(rules[1].port, Some(22));
        assert_eq!(rules[2].net.to_string(), "192.0.2.7/32");
        assert_eq!(rules[2].port, None);
        assert!(parse_egress("").unwrap().is_empty());
        for bad in ["10.0.0.0/8:http", "10.0.0.0/8:0", "nowhere", "10.0.0.0/40"] {
            let err = parse_egress(bad).unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn lists_combine_ranges_addresses_and_words() {
        let deny = DenyList::parse("default, 10.0.0.0/8, 203.0.113.7").unwrap();
        assert!(deny.denies(ip("10.1.2.3")));
        assert!(deny.denies(ip("203.0.113.7")));
        assert!(deny.denies(ip("127.0.0.1")));
        assert!(!deny.denies(ip("203.0.113.8")));
        let only = DenyList::parse("127.0.0.2/32").unwrap();
        assert!(only.denies(ip("127.0.0.2")));
        assert!(!only.denies(ip("127.0.0.1")));
        assert!(!DenyList::parse("").unwrap().denies(ip("127.0.0.1")));
        let err = DenyList::parse("default,10.0.0.0/33").unwrap_err();
        assert!(err.contains("`10.0.0.0/33`"), "{err}");
    }
}
