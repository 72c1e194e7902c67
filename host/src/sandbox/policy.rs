//! The sandbox policy of one tenant run: where it may connect, how much memory and
//! time it gets, how many requests it may have in flight, how large a response may be,
//! and how much it may make the host hold for it (its [`Budgets`]).

use std::net::IpAddr;
use std::time::Duration;

pub use crate::sandbox::limits::Budgets;

/// Defaults, as documented in the README.
pub const DEFAULT_MEMORY_MIB: u64 = 64;
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 1800;
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: u32 = 8;
pub const DEFAULT_MAX_RESPONSE_KIB: u64 = 16 * 1024;
pub const DEFAULT_MAX_LOG_LINES: u32 = 10_000;
pub const DEFAULT_MAX_CONCURRENT_STEPS: u32 = 2;

/// One allowed destination: an exact host, or `*.` and a domain for its subdomains;
/// optionally one port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    /// Lowercase host name or IP literal (without brackets); for a wildcard, the domain
    /// after `*.`.
    host: String,
    wildcard: bool,
    port: Option<u16>,
}

impl HostPattern {
    /// Parses `host`, `host:port`, `*.domain`, `[v6]:port`.
    pub fn parse(text: &str) -> Result<HostPattern, String> {
        let text = text.trim().to_ascii_lowercase();
        if text.is_empty() {
            return Err("empty host".into());
        }
        if text.contains("://") || text.contains('/') {
            return Err(format!(
                "{text:?} is a URL; give a host name, optionally with :port"
            ));
        }
        let (host, port) =
            split_host_port(&text).ok_or_else(|| format!("{text:?} has an invalid port"))?;
        let (host, wildcard) = match host.strip_prefix("*.") {
            Some(domain) => (domain.to_owned(), true),
            None => (host.to_owned(), false),
        };
        if host.is_empty() || host.contains('*') {
            return Err(format!(
                "{text:?}: a wildcard must be `*.` followed by a domain"
            ));
        }
        Ok(HostPattern {
            host,
            wildcard,
            port,
        })
    }

    /// Whether `host` (lowercase, IPv6 without brackets) and `port` are allowed.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        if self.wildcard {
            host.strip_suffix(&self.host)
                .is_some_and(|prefix| prefix.ends_with('.') && prefix.len() > 1)
        } else {
            host == self.host
        }
    }

    /// Whether this pattern names an IP literal or host explicitly (not by wildcard).
    pub fn is_exact(&self) -> bool {
        !self.wildcard
    }

    pub fn host(&self) -> &str {
        &self.host
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.wildcard {
            f.write_str("*.")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// Splits `host[:port]` / `[v6][:port]`; `None` when the port is not a number.
pub fn split_host_port(text: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(port) => Some((host, Some(port.parse().ok()?))),
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match text.rsplit_once(':') {
        // More than one colon without brackets: a bare IPv6 address.
        Some((host, _)) if host.contains(':') => Some((text, None)),
        Some((host, port)) => Some((host, Some(port.parse().ok()?))),
        None => Some((text, None)),
    }
}

/// Addresses never reachable from a sandbox: link-local, where cloud metadata services
/// live (169.254.169.254, fd00:ec2::254).
pub fn is_always_refused(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local() || v4.is_unspecified() || v4.is_broadcast(),
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            (first & 0xffc0) == 0xfe80
                || v6.is_unspecified()
                || v6
                    == "fd00:ec2::254"
                        .parse::<std::net::Ipv6Addr>()
                        .expect("literal")
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_always_refused(IpAddr::V4(v4)))
        }
    }
}

/// Loopback and private ranges: refused unless the operator lists them explicitly.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64 // 100.64.0.0/10, CGNAT
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || (v6.segments()[0] & 0xfe00) == 0xfc00 // fc00::/7, unique local
                || v6.to_ipv4_mapped().is_some_and(|v4| is_private(IpAddr::V4(v4)))
        }
    }
}

/// The limits of one tenant run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxPolicy {
    /// Where the guest may connect.
    pub allowed_hosts: Vec<HostPattern>,
    /// Whether loopback and private addresses are allowed when the host they resolve
    /// from is on the list. Local runs (`run`, `demo`) allow them; the multi-tenant
    /// mode only for addresses listed literally.
    pub allow_private_when_listed: bool,
    /// Cap on guest linear memory (all memories together), in bytes.
    pub memory_bytes: u64,
    /// Deadline of the whole run.
    pub timeout: Duration,
    /// Outgoing requests in flight at once.
    pub max_concurrent_requests: u32,
    /// Cap on one response body, in bytes.
    pub max_response_bytes: u64,
    /// Guest log lines kept per run; the rest are counted and dropped.
    pub max_log_lines: u32,
    /// Steps run side by side, each in an instance (and memory) of its own.
    pub max_concurrent_steps: u32,
    /// What the plugin may make the host hold: job data, graph, output, log bytes.
    pub budgets: Budgets,
}

impl Default for SandboxPolicy {
    fn default() -> Self {
        SandboxPolicy {
            allowed_hosts: Vec::new(),
            allow_private_when_listed: true,
            memory_bytes: DEFAULT_MEMORY_MIB << 20,
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECONDS),
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
            max_response_bytes: DEFAULT_MAX_RESPONSE_KIB << 10,
            max_log_lines: DEFAULT_MAX_LOG_LINES,
            max_concurrent_steps: DEFAULT_MAX_CONCURRENT_STEPS,
            budgets: Budgets::default(),
        }
    }
}

impl SandboxPolicy {
    /// The first allowlist entry matching `host:port`.
    pub fn allowing(&self, host: &str, port: u16) -> Option<&HostPattern> {
        self.allowed_hosts.iter().find(|p| p.matches(host, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_wildcard_and_port_patterns() {
        let exact = HostPattern::parse("Console.JumpCloud.com").unwrap();
        assert!(exact.matches("console.jumpcloud.com", 443));
        assert!(!exact.matches("eu.console.jumpcloud.com", 443));

        let wildcard = HostPattern::parse("*.jumpcloud.com").unwrap();
        assert!(wildcard.matches("console.jumpcloud.com", 443));
        assert!(wildcard.matches("console.eu.jumpcloud.com", 80));
        assert!(!wildcard.matches("jumpcloud.com", 443));
        assert!(!wildcard.matches("evil-jumpcloud.com", 443));

        let port = HostPattern::parse("127.0.0.1:8080").unwrap();
        assert!(port.matches("127.0.0.1", 8080));
        assert!(!port.matches("127.0.0.1", 8081));

        let v6 = HostPattern::parse("[::1]:9000").unwrap();
        assert!(v6.matches("::1", 9000));
        assert_eq!(v6.to_string(), "[::1]:9000");
    }

    #[test]
    fn rejects_urls_and_bad_ports() {
        assert!(HostPattern::parse("https://console.jumpcloud.com").is_err());
        assert!(HostPattern::parse("host:notaport").is_err());
        assert!(HostPattern::parse("").is_err());
        assert!(HostPattern::parse("*.").is_err());
        assert!(HostPattern::parse("a.*.com").is_err());
    }

    #[test]
    fn metadata_and_link_local_are_always_refused() {
        for ip in [
            "169.254.169.254",
            "169.254.0.1",
            "fe80::1",
            "0.0.0.0",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
        ] {
            assert!(is_always_refused(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["127.0.0.1", "10.0.0.1", "52.1.2.3", "::1"] {
            assert!(!is_always_refused(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn private_ranges() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "::1",
            "fd12::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["52.1.2.3", "2606:4700::1111", "100.128.0.1"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }
}
