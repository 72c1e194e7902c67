//! What every `Device`/`Host` entity shares (`data-model-directory.md`, "Extra
//! conventions"): the 18 properties the class schemas require (null when unknown,
//! never omitted), and the normalization of host names, FQDNs, MAC and IP addresses to
//! the shapes those schemas accept.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::model::Value;

/// The properties `Device` and `Host` require (besides `displayName`, set by every
/// converter with `name`). A converter sets each of them, null when unknown.
pub const REQUIRED: [&str; 17] = [
    "category",
    "ipv4Addresses",
    "ipv6Addresses",
    "macAddresses",
    "publicIpAddresses",
    "privateIpAddresses",
    "hostname",
    "fqdn",
    "serial",
    "deviceId",
    "lastSeenOn",
    "make",
    "model",
    "osName",
    "osType",
    "osDetails",
    "osVersion",
];

/// `hostname` as the schema wants it: one DNS label
/// (`^[a-zA-Z0-9][a-zA-Z0-9-]{0,61}[a-zA-Z0-9]$`), taken from the trimmed name up to
/// its first dot. `Adas-MacBook-Pro.local` gives `Adas-MacBook-Pro`; `Ada's MacBook`,
/// `x` and `host_name` give nothing.
pub fn host_label(hostname: &str) -> Option<String> {
    let label = hostname.trim().split('.').next()?;
    is_label(label, 2).then(|| label.to_owned())
}

/// A DNS label of `min..=63` characters: letters, digits and inner hyphens.
fn is_label(label: &str, min: usize) -> bool {
    let bytes = label.as_bytes();
    (min..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// `fqdn` as the schema wants it: the lower-cased host name when it has a dot, does not
/// end in `.local` (mDNS names are not resolvable names) and matches the Device fqdn
/// pattern: 4 to 253 characters, labels of letters, digits and inner hyphens, and a
/// top-level label of 2 to 63 letters.
pub fn fqdn(hostname: &str) -> Option<String> {
    let name = hostname.trim().to_ascii_lowercase();
    if !name.contains('.') || name.ends_with(".local") || !(4..=253).contains(&name.len()) {
        return None;
    }
    let mut labels: Vec<&str> = name.split('.').collect();
    let top = labels.pop()?;
    let top_ok = (2..=63).contains(&top.len()) && top.bytes().all(|b| b.is_ascii_alphabetic());
    let labels_ok = labels.iter().all(|label| is_label(label, 1));
    (top_ok && labels_ok).then_some(name)
}

/// A MAC address lower-cased, `-` turned into `:`, when it then has the schema's shape
/// (`^([0-9a-f]{2}:){5}([0-9a-f]{2})$`).
pub fn mac_address(raw: &str) -> Option<String> {
    let mac = raw.trim().to_ascii_lowercase().replace('-', ":");
    let groups: Vec<&str> = mac.split(':').collect();
    let well_formed = groups.len() == 6
        && groups
            .iter()
            .all(|g| g.len() == 2 && g.bytes().all(|b| b.is_ascii_hexdigit()));
    well_formed.then_some(mac)
}

/// The address lists of a device, each de-duplicated in first-seen order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addresses {
    pub ipv4: Vec<String>,
    pub ipv6: Vec<String>,
    pub private: Vec<String>,
    pub public: Vec<String>,
}

impl Addresses {
    /// Adds one interface address: a `%zone` suffix is cut; unparsable, loopback,
    /// unspecified and link-local addresses are dropped; IPv6 is kept in canonical form.
    pub fn add(&mut self, raw: &str) {
        let text = raw.trim();
        let text = text
            .split_once('%')
            .map_or(text, |(address, _zone)| address);
        let Ok(address) = text.parse::<IpAddr>() else {
            return;
        };
        if address.is_loopback() || address.is_unspecified() || is_link_local(&address) {
            return;
        }
        let canonical = address.to_string();
        let family = match address {
            IpAddr::V4(_) => &mut self.ipv4,
            IpAddr::V6(_) => &mut self.ipv6,
        };
        push_unique(family, &canonical);
        let scope = match is_private(&address) {
            true => &mut self.private,
            false => &mut self.public,
        };
        push_unique(scope, &canonical);
    }

    /// The four properties, an empty list as null.
    pub fn properties(self) -> [(&'static str, Value); 4] {
        let list = |items: Vec<String>| match items.is_empty() {
            true => Value::Null,
            false => Value::TextList(items),
        };
        [
            ("ipv4Addresses", list(self.ipv4)),
            ("ipv6Addresses", list(self.ipv6)),
            ("privateIpAddresses", list(self.private)),
            ("publicIpAddresses", list(self.public)),
        ]
    }
}

fn push_unique(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|existing| existing == item) {
        list.push(item.to_owned());
    }
}

/// 169.254.0.0/16 and fe80::/10.
fn is_link_local(address: &IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// 10/8, 172.16/12, 192.168/16, 100.64/10 (carrier-grade NAT) and fc00::/7.
fn is_private(address: &IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => v4.is_private() || is_shared(v4),
        IpAddr::V6(v6) => is_unique_local(v6),
    }
}

fn is_shared(v4: &Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    a == 100 && (b & 0xc0) == 64
}

fn is_unique_local(v6: &Ipv6Addr) -> bool {
    (v6.segments()[0] & 0xfe00) == 0xfc00
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_labels() {
        assert_eq!(
            host_label("Adas-MacBook-Pro.local").as_deref(),
            Some("Adas-MacBook-Pro")
        );
        assert_eq!(
            host_label(" web-01.prod.example.com ").as_deref(),
            Some("web-01")
        );
        for bad in ["Ada's MacBook", "x", "host_name", "-dash", "dash-", "", "."] {
            assert_eq!(host_label(bad), None, "{bad:?}");
        }
        assert_eq!(host_label(&"a".repeat(63)), Some("a".repeat(63)));
        assert_eq!(host_label(&"a".repeat(64)), None);
    }

    #[test]
    fn fqdns() {
        assert_eq!(
            fqdn("Web-01.Prod.Example.com").as_deref(),
            Some("web-01.prod.example.com")
        );
        for bad in [
            "Adas-MacBook-Pro.local",
            "web-01",
            "a.b",
            "host.example.c0m",
            "host..example.com",
            "-host.example.com",
            "host.example.com.",
            "host_1.example.com",
            "Ada's.example.com",
        ] {
            assert_eq!(fqdn(bad), None, "{bad:?}");
        }
        assert_eq!(fqdn("a.io").as_deref(), Some("a.io"));
    }

    #[test]
    fn mac_addresses() {
        assert_eq!(
            mac_address("02-00-00-AB-CD-01").as_deref(),
            Some("02:00:00:ab:cd:01")
        );
        assert_eq!(
            mac_address("02:00:00:00:00:01").as_deref(),
            Some("02:00:00:00:00:01")
        );
        for bad in ["", "02:00:00:00:00", "0200.0000.0001", "zz:00:00:00:00:01"] {
            assert_eq!(mac_address(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn addresses_are_classified_and_deduplicated() {
        let mut addresses = Addresses::default();
        for raw in [
            "10.0.0.5",
            "10.0.0.5",
            "127.0.0.1",
            "0.0.0.0",
            "169.254.1.2",
            "fe80::1%en0",
            "::1",
            "not an address",
            "203.0.113.9",
            "100.64.0.1",
            "172.20.1.1",
            "192.168.1.2",
            "FD00:0:0:0:0:0:0:1",
            "2001:db8::1%eth0",
        ] {
            addresses.add(raw);
        }
        assert_eq!(
            addresses.ipv4,
            [
                "10.0.0.5",
                "203.0.113.9",
                "100.64.0.1",
                "172.20.1.1",
                "192.168.1.2"
            ]
        );
        assert_eq!(addresses.ipv6, ["fd00::1", "2001:db8::1"]);
        assert_eq!(
            addresses.private,
            [
                "10.0.0.5",
                "100.64.0.1",
                "172.20.1.1",
                "192.168.1.2",
                "fd00::1"
            ]
        );
        assert_eq!(addresses.public, ["203.0.113.9", "2001:db8::1"]);
        let empty = Addresses::default().properties();
        assert!(empty.iter().all(|(_, v)| *v == Value::Null));
    }
}
