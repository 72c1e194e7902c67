//! Systems (agent-managed devices, `GET /api/systems`), system groups
//! (`GET /api/v2/systemgroups`), and the edges that say who can log into which
//! machine: group membership of systems, user and user-group bindings to systems and
//! system groups (with sudo), ownership, and the inferred link to an Apple MDM device
//! (`data-model-directory.md`).
//!
//! `remoteIP` and `connectionHistory` never reach the graph: they are the address of
//! whatever network a laptop is on (personal location data that changes every run), not
//! the device's own.

use std::collections::BTreeSet;

use serde_json::Value as Json;

use super::device::{self, Addresses, REQUIRED};
use super::fields::{Properties, Record, console_link, type_name};
use super::{ASSIGNED, ConvertError, HAS, IS, OWNS, Object};
use crate::model::{Entity, Relationship, Value};

/// `_type` of a system.
pub const SYSTEM_TYPE: &str = "jumpcloud_system";
/// `_class` of a system: every system is both, because a class must not change
/// between runs (laptops are Devices, servers and VMs Hosts).
pub const SYSTEM_CLASSES: &[&str] = &["Host", "Device"];
/// `_type` of a system group.
pub const SYSTEM_GROUP_TYPE: &str = "jumpcloud_system_group";
/// `_class` of a system group.
pub const SYSTEM_GROUP_CLASSES: &[&str] = &["Group"];

/// `jumpcloud_system_group` HAS `jumpcloud_system`.
pub const SYSTEM_GROUP_HAS_SYSTEM_TYPE: &str = "jumpcloud_system_group_has_system";
/// `jumpcloud_user` ASSIGNED `jumpcloud_system`.
pub const USER_ASSIGNED_SYSTEM_TYPE: &str = "jumpcloud_user_assigned_system";
/// `jumpcloud_group` ASSIGNED `jumpcloud_system`.
pub const GROUP_ASSIGNED_SYSTEM_TYPE: &str = "jumpcloud_group_assigned_system";
/// `jumpcloud_group` ASSIGNED `jumpcloud_system_group`.
pub const GROUP_ASSIGNED_SYSTEM_GROUP_TYPE: &str = "jumpcloud_group_assigned_system_group";
/// `jumpcloud_user` ASSIGNED `jumpcloud_system_group`.
pub const USER_ASSIGNED_SYSTEM_GROUP_TYPE: &str = "jumpcloud_user_assigned_system_group";
/// `jumpcloud_user` OWNS `jumpcloud_system`.
pub const USER_OWNS_SYSTEM_TYPE: &str = "jumpcloud_user_owns_system";
/// `jumpcloud_system` IS `jumpcloud_apple_device`.
pub const SYSTEM_IS_APPLE_DEVICE_TYPE: &str = "jumpcloud_system_is_apple_device";

/// Fields of a system never kept, not even as raw data.
const PRIVATE_FIELDS: [&str; 2] = ["remoteIP", "connectionHistory"];

/// Facts copied when they are booleans: (property, source field).
const FLAGS: [(&str, &str); 8] = [
    ("allowSshRootLogin", "allowSshRootLogin"),
    (
        "allowSshPasswordAuthentication",
        "allowSshPasswordAuthentication",
    ),
    (
        "allowPublicKeyAuthentication",
        "allowPublicKeyAuthentication",
    ),
    (
        "allowMultiFactorAuthentication",
        "allowMultiFactorAuthentication",
    ),
    ("azureAdJoined", "azureAdJoined"),
    ("isPolicyBound", "isPolicyBound"),
    ("mdmDep", "mdm.dep"),
    ("mdmUserApproved", "mdm.userApproved"),
];

/// Policy statistics copied when they are integers: (property, source field).
const POLICY_STATS: [(&str, &str); 4] = [
    ("policyStatsTotal", "policyStats.total"),
    ("policyStatsSuccess", "policyStats.success"),
    ("policyStatsFailed", "policyStats.failed"),
    ("policyStatsPending", "policyStats.pending"),
];

/// Converts a system. `console_url` is the configured base URL, for `webLink`.
pub fn system_entity(system: &Object, console_url: &str) -> Result<Entity, ConvertError> {
    let record = Record::new("system", system);
    let id = record.id()?;
    let hostname = record.non_empty_str("hostname")?;
    let serial = record.non_empty_str("serialNumber")?;
    let name = record
        .non_empty_str("displayName")?
        .or(hostname)
        .or(serial)
        .unwrap_or(id);
    let os = record.non_empty_str("os")?;
    let os_name = record.non_empty_str("osVersionDetail.osName")?.or(os);
    // JumpCloud's `version` is the OS version; Device's `version` is the hardware's.
    let os_version = record
        .non_empty_str("version")?
        .or(record.non_empty_str("osVersionDetail.version")?);
    let os_details = match [os, os_version].into_iter().flatten().collect::<Vec<_>>() {
        parts if parts.is_empty() => None,
        parts => Some(parts.join(" ")),
    };
    let os_type = os_type(record.non_empty_str("osFamily")?, os);
    let category = category(os_type, os, record.maybe_bool("desktopCapable"));

    let mut props = Properties::default();
    props
        .set("id", id)
        .set("name", name)
        .set("displayName", name)
        .set("category", category)
        .set(
            "hostname",
            Value::opt_text(hostname.and_then(device::host_label)),
        )
        .set(
            "fqdn",
            hostname
                .and_then(device::fqdn)
                .map_or(Value::Null, |f| Value::TextList(vec![f])),
        );
    for (property, value) in addresses(&record)?.properties() {
        props.set(property, value);
    }
    props
        // Only System Insights has these; it is not fetched.
        .set("macAddresses", Value::Null)
        .set("deviceId", Value::Null)
        .set("model", Value::Null)
        .set("serial", Value::opt_text(serial))
        .set("make", Value::opt_text(record.non_empty_str("hwVendor")?))
        .set("osName", Value::opt_text(os_name))
        .set("osType", Value::opt_text(os_type))
        .set("osVersion", Value::opt_text(os_version))
        .set("osDetails", Value::opt_text(os_details))
        .set(
            "lastSeenOn",
            record
                .timestamp("lastContact")
                .map_or(Value::Null, Value::Int),
        )
        .set("active", record.maybe_bool("active") == Some(true))
        .set_some("createdOn", record.timestamp("created"))
        .set_some("agentVersion", record.non_empty_str("agentVersion")?)
        .set_some("arch", record.non_empty_str("arch")?)
        .set_some("description", record.non_empty_str("description")?)
        .set_some(
            "amazonInstanceId",
            record.non_empty_str("amazonInstanceID")?,
        )
        .set_some("encrypted", record.maybe_bool("fde.active"))
        .set_some("fdeKeyPresent", record.maybe_bool("fde.keyPresent"));
    for (property, field) in FLAGS {
        props.set_some(property, record.maybe_bool(field));
    }
    props
        .set_some("mdmVendor", record.non_empty_str("mdm.vendor")?)
        .set_some(
            "systemInsightsState",
            record.non_empty_str("systemInsights.state")?,
        );
    if record.maybe_bool("domainInfo.partOfDomain") == Some(true) {
        props.set_some("domainName", record.non_empty_str("domainInfo.domainName")?);
    }
    for (property, field) in POLICY_STATS {
        props.set_some(property, record.maybe_int(field));
    }
    let admins = local_admins(&record)?;
    props
        .set_some(
            "localAdminUsernames",
            (!admins.is_empty()).then_some(admins),
        )
        .set_some("primaryUserId", primary_user_id(system)?)
        .set(
            "webLink",
            console_link(console_url, &format!("/#/devices/{id}/details")),
        );
    let properties = props.into_vec();
    debug_assert!(
        REQUIRED
            .iter()
            .all(|r| properties.iter().any(|(n, _)| n == r))
    );

    let mut raw = system.clone();
    for field in PRIVATE_FIELDS {
        raw.remove(field);
    }
    Ok(Entity {
        key: id.to_owned(),
        entity_type: SYSTEM_TYPE,
        classes: SYSTEM_CLASSES,
        properties,
        raw_data: serde_json::to_string(&raw).ok(),
    })
}

/// `osType` from `osFamily`, else guessed from `os`.
fn os_type(os_family: Option<&str>, os: Option<&str>) -> Option<&'static str> {
    if let Some(family) = os_family {
        return Some(match family.to_lowercase().as_str() {
            "darwin" => "darwin",
            "windows" => "windows",
            "linux" => "linux",
            "android" => "android",
            "ios" | "ipados" => "ios",
            _ => "other",
        });
    }
    let os = os?.to_lowercase();
    const LINUX: [&str; 11] = [
        "linux", "ubuntu", "debian", "centos", "red hat", "rhel", "fedora", "amazon", "rocky",
        "alma", "suse",
    ];
    if os.contains("mac") {
        Some("darwin")
    } else if os.contains("windows") {
        Some("windows")
    } else if LINUX.iter().any(|word| os.contains(word)) {
        Some("linux")
    } else {
        None
    }
}

/// `category`, first match wins: mobile OS, a server OS, the agent's `desktopCapable`,
/// then the OS type.
fn category(
    os_type: Option<&str>,
    os: Option<&str>,
    desktop_capable: Option<bool>,
) -> &'static str {
    if matches!(os_type, Some("ios" | "android")) {
        return "mobile";
    }
    if os.is_some_and(|os| os.to_lowercase().contains("server")) {
        return "server";
    }
    match (desktop_capable, os_type) {
        (Some(true), _) => "endpoint",
        (Some(false), _) => "server",
        (None, Some("darwin" | "windows")) => "endpoint",
        (None, Some("linux")) => "server",
        _ => "other",
    }
}

/// Interface addresses, in order; internal interfaces and empty addresses skipped.
fn addresses(record: &Record) -> Result<Addresses, ConvertError> {
    let mut addresses = Addresses::default();
    for (index, interface) in record
        .array("networkInterfaces")?
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let Some(interface) = interface.as_object() else {
            return Err(record.error(
                "networkInterfaces",
                format!(
                    "expected an array of objects, found {} at index {index}",
                    type_name(interface)
                ),
            ));
        };
        if interface.get("internal").and_then(Json::as_bool) == Some(true) {
            continue;
        }
        if let Some(address) = interface.get("address").and_then(Json::as_str) {
            addresses.add(address);
        }
    }
    Ok(addresses)
}

/// Sorted unique `userMetrics[].userName` of local administrators.
fn local_admins(record: &Record) -> Result<Vec<String>, ConvertError> {
    let names: BTreeSet<String> = record
        .array("userMetrics")?
        .unwrap_or_default()
        .iter()
        .filter(|metric| metric.get("admin").and_then(Json::as_bool) == Some(true))
        .filter_map(|metric| metric.get("userName").and_then(Json::as_str))
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(names.into_iter().collect())
}

/// `primarySystemUser.id`, the user the device is assigned to.
pub fn primary_user_id(system: &Object) -> Result<Option<String>, ConvertError> {
    let record = Record::new("system", system);
    Ok(record
        .non_empty_str("primarySystemUser.id")?
        .map(str::to_owned))
}

/// The serial number of a system or Apple device as the IS join compares it: trimmed,
/// upper-cased, non-empty.
pub fn join_serial(object: &Object, field: &str) -> Option<String> {
    let serial = object.get(field)?.as_str()?.trim();
    (!serial.is_empty()).then(|| serial.to_uppercase())
}

/// Converts a system group (like a user group: `description` and `email` left out when
/// empty, `attributes` JSON-encoded when non-empty; no `webLink`, its console path is
/// unverified).
pub fn system_group_entity(group: &Object, raw: &str) -> Result<Entity, ConvertError> {
    let record = Record::new("system group", group);
    let id = record.id()?;
    let name = record.non_empty_str("name")?.unwrap_or(id);
    let attributes = record
        .object_field("attributes")?
        .filter(|attributes| !attributes.is_empty())
        .and_then(|attributes| serde_json::to_string(attributes).ok());

    let mut props = Properties::default();
    props
        .set("id", id)
        .set("name", name)
        .set("displayName", name)
        .set_some("description", record.non_empty_str("description")?)
        .set_some("email", record.non_empty_str("email")?)
        .set_some("membershipMethod", record.str("membershipMethod")?)
        .set_some("attributes", attributes);

    Ok(Entity {
        key: id.to_owned(),
        entity_type: SYSTEM_GROUP_TYPE,
        classes: SYSTEM_GROUP_CLASSES,
        properties: props.into_vec(),
        raw_data: Some(raw.to_owned()),
    })
}

/// The target of one `GraphConnection` (`{to: {id, type}, attributes}`) when its type is
/// `kind`; `None` for other types.
pub fn connection_target(item: &Object, kind: &str) -> Result<Option<String>, ConvertError> {
    let label = item
        .get("to")
        .and_then(|to| to.get("id"))
        .and_then(Json::as_str);
    let record = Record::with_label("graph connection", item, label);
    if record.required_str("to.type")? != kind {
        return Ok(None);
    }
    Ok(Some(record.required_str("to.id")?.to_owned()))
}

/// Sudo rights of a binding: `attributes.sudo.{enabled, withoutPassword}`; anything
/// missing, null or not a boolean is false.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sudo {
    pub enabled: bool,
    pub without_password: bool,
}

impl Sudo {
    /// From an object holding `sudo` (binding `attributes`, or `compiledAttributes`).
    fn of(attributes: Option<&Json>) -> Sudo {
        let sudo = attributes.and_then(|a| a.get("sudo"));
        let flag =
            |name: &str| sudo.and_then(|s| s.get(name)).and_then(Json::as_bool) == Some(true);
        Sudo {
            enabled: flag("enabled"),
            without_password: flag("withoutPassword"),
        }
    }
}

/// A direct binding read from `/systemgroups/{id}/associations?targets=...`: the bound
/// object's id and the binding's sudo rights. `None` for another `to.type`.
pub fn association(item: &Object, kind: &str) -> Result<Option<(String, Sudo)>, ConvertError> {
    let Some(id) = connection_target(item, kind)? else {
        return Ok(None);
    };
    Ok(Some((id, Sudo::of(item.get("attributes")))))
}

/// What one item of `GET /api/v2/systems/{id}/users` says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemAccess {
    /// The user's id.
    pub user_id: String,
    /// Some path reaches the system in one hop (the user is bound directly).
    pub direct: bool,
    /// The effective rights on this system (`compiledAttributes.sudo`).
    pub sudo: Sudo,
    /// User groups bound directly to the system that grant this access: the first hop
    /// of a path, when it is a `user_group`, with that binding's sudo.
    pub via_groups: Vec<(String, Sudo)>,
}

/// Reads one item of `GET /api/v2/systems/{id}/users` (`GraphObjectWithPaths`).
/// `None` when it is not a user.
pub fn system_access(item: &Object) -> Result<Option<SystemAccess>, ConvertError> {
    let record = Record::new("system user", item);
    let user_id = record.id()?;
    if !matches!(record.str("type")?, None | Some("user")) {
        return Ok(None);
    }
    let mut access = SystemAccess {
        user_id: user_id.to_owned(),
        direct: false,
        sudo: Sudo::of(item.get("compiledAttributes")),
        via_groups: Vec::new(),
    };
    for (index, path) in record
        .array("paths")?
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let Some(hops) = path.as_array() else {
            return Err(record.error(
                "paths",
                format!(
                    "expected an array of paths, found {} at index {index}",
                    type_name(path)
                ),
            ));
        };
        access.direct |= hops.len() == 1;
        let Some(first) = hops.first() else { continue };
        let to = first.get("to");
        let kind = to.and_then(|t| t.get("type")).and_then(Json::as_str);
        let id = to.and_then(|t| t.get("id")).and_then(Json::as_str);
        if let (Some("user_group"), Some(id)) = (kind, id)
            && !id.is_empty()
            && !access.via_groups.iter().any(|(g, _)| g == id)
        {
            access
                .via_groups
                .push((id.to_owned(), Sudo::of(first.get("attributes"))));
        }
    }
    Ok(Some(access))
}

/// An `ASSIGNED` edge to a system or system group, with the binding's rights.
fn assigned(
    relationship_type: &'static str,
    from_key: &str,
    to_key: &str,
    direct: bool,
    sudo: Sudo,
) -> Relationship {
    Relationship::direct(relationship_type, ASSIGNED, from_key, to_key)
        .with("direct", direct)
        .with("sudo", sudo.enabled)
        .with("passwordlessSudo", sudo.enabled && sudo.without_password)
}

/// `jumpcloud_user` ASSIGNED `jumpcloud_system`: the user can log in, with the
/// effective sudo rights on that system.
pub fn user_assigned_system(access: &SystemAccess, system_key: &str) -> Relationship {
    assigned(
        USER_ASSIGNED_SYSTEM_TYPE,
        &access.user_id,
        system_key,
        access.direct,
        access.sudo,
    )
}

/// `jumpcloud_group` ASSIGNED `jumpcloud_system`: the group is bound to the system
/// directly.
pub fn group_assigned_system(group_key: &str, system_key: &str, sudo: Sudo) -> Relationship {
    assigned(
        GROUP_ASSIGNED_SYSTEM_TYPE,
        group_key,
        system_key,
        true,
        sudo,
    )
}

/// `jumpcloud_group` ASSIGNED `jumpcloud_system_group`, a direct binding.
pub fn group_assigned_system_group(group_key: &str, sg_key: &str, sudo: Sudo) -> Relationship {
    assigned(
        GROUP_ASSIGNED_SYSTEM_GROUP_TYPE,
        group_key,
        sg_key,
        true,
        sudo,
    )
}

/// `jumpcloud_user` ASSIGNED `jumpcloud_system_group`, a direct binding.
pub fn user_assigned_system_group(user_key: &str, sg_key: &str, sudo: Sudo) -> Relationship {
    assigned(
        USER_ASSIGNED_SYSTEM_GROUP_TYPE,
        user_key,
        sg_key,
        true,
        sudo,
    )
}

/// `jumpcloud_system_group` HAS `jumpcloud_system`.
pub fn system_group_has_system(sg_key: &str, system_key: &str) -> Relationship {
    Relationship::direct(SYSTEM_GROUP_HAS_SYSTEM_TYPE, HAS, sg_key, system_key)
}

/// `jumpcloud_user` OWNS `jumpcloud_system` (its `primarySystemUser`).
pub fn user_owns_system(user_key: &str, system_key: &str) -> Relationship {
    Relationship::direct(USER_OWNS_SYSTEM_TYPE, OWNS, user_key, system_key)
}

/// `jumpcloud_system` IS `jumpcloud_apple_device` (an inferred join on serial number).
pub fn system_is_apple_device(system_key: &str, device_key: &str) -> Relationship {
    Relationship::direct(SYSTEM_IS_APPLE_DEVICE_TYPE, IS, system_key, device_key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::test_support::object;
    use serde_json::json;

    const CONSOLE: &str = "https://console.jumpcloud.com";

    fn system(value: Json) -> Entity {
        system_entity(&object(value), CONSOLE).expect("converts")
    }

    fn prop<'a>(entity: &'a Entity, name: &str) -> Option<&'a Value> {
        entity.property(name)
    }

    fn list(items: &[&str]) -> Value {
        Value::TextList(items.iter().map(|s| (*s).to_owned()).collect())
    }

    fn mac() -> Json {
        json!({
            "_id": "63f0000000000000000000a1",
            "displayName": "Ada's MacBook Pro",
            "hostname": "Adas-MacBook-Pro.local",
            "os": "Mac OS X", "osFamily": "darwin", "version": "14.4.1", "arch": "arm64",
            "osVersionDetail": {"osName": "macOS", "version": "14.4.1", "major": "14"},
            "serialNumber": "C02ABC123", "hwVendor": "Apple Inc.",
            "active": true, "lastContact": "2024-04-10T09:00:00.000Z",
            "created": "2023-01-02T03:04:05.000Z", "agentVersion": "1.150.0",
            "remoteIP": "198.51.100.7",
            "connectionHistory": [{"remoteIP": "198.51.100.8"}],
            "desktopCapable": true,
            "fde": {"active": true, "keyPresent": true},
            "mdm": {"vendor": "internal", "dep": true, "userApproved": true},
            "allowSshRootLogin": false, "allowSshPasswordAuthentication": true,
            "allowPublicKeyAuthentication": true, "allowMultiFactorAuthentication": false,
            "azureAdJoined": "no", "isPolicyBound": true,
            "systemInsights": {"state": "enabled"},
            "domainInfo": {"domainName": "corp.example.com", "partOfDomain": false},
            "policyStats": {"total": 3, "success": 2, "failed": 1, "pending": 0},
            "userMetrics": [{"userName": "ada", "admin": true}, {"userName": "guest", "admin": false},
                            {"userName": "ada", "admin": true}, {"userName": "root", "admin": true}],
            "primarySystemUser": {"id": "60000000000000000000aaaa"},
            "networkInterfaces": [
                {"address": "127.0.0.1", "family": "IPv4", "internal": true, "name": "lo0"},
                {"address": "192.168.1.20", "family": "IPv4", "internal": false, "name": "en0"},
                {"address": "fe80::1%en0", "family": "IPv6", "internal": false, "name": "en0"},
                {"address": "2001:db8::20", "family": "IPv6", "internal": false, "name": "en0"},
                {"family": "IPv4", "internal": false, "name": "utun0"}
            ]
        })
    }

    #[test]
    fn a_mac_with_every_field() {
        let entity = system(mac());
        assert_eq!(entity.key, "63f0000000000000000000a1");
        assert_eq!(entity.classes, ["Host", "Device"]);
        let expect = [
            ("name", Value::from("Ada's MacBook Pro")),
            ("displayName", Value::from("Ada's MacBook Pro")),
            ("hostname", Value::from("Adas-MacBook-Pro")),
            ("fqdn", Value::Null),
            ("category", Value::from("endpoint")),
            ("osName", Value::from("macOS")),
            ("osType", Value::from("darwin")),
            ("osVersion", Value::from("14.4.1")),
            ("osDetails", Value::from("Mac OS X 14.4.1")),
            ("serial", Value::from("C02ABC123")),
            ("make", Value::from("Apple Inc.")),
            ("model", Value::Null),
            ("macAddresses", Value::Null),
            ("deviceId", Value::Null),
            ("ipv4Addresses", list(&["192.168.1.20"])),
            ("ipv6Addresses", list(&["2001:db8::20"])),
            ("privateIpAddresses", list(&["192.168.1.20"])),
            ("publicIpAddresses", list(&["2001:db8::20"])),
            ("lastSeenOn", Value::Int(1_712_739_600_000)),
            ("active", Value::Bool(true)),
            ("createdOn", Value::Int(1_672_628_645_000)),
            ("agentVersion", Value::from("1.150.0")),
            ("arch", Value::from("arm64")),
            ("encrypted", Value::Bool(true)),
            ("fdeKeyPresent", Value::Bool(true)),
            ("allowSshRootLogin", Value::Bool(false)),
            ("allowSshPasswordAuthentication", Value::Bool(true)),
            ("allowPublicKeyAuthentication", Value::Bool(true)),
            ("allowMultiFactorAuthentication", Value::Bool(false)),
            ("isPolicyBound", Value::Bool(true)),
            ("mdmDep", Value::Bool(true)),
            ("mdmUserApproved", Value::Bool(true)),
            ("mdmVendor", Value::from("internal")),
            ("systemInsightsState", Value::from("enabled")),
            ("policyStatsTotal", Value::Int(3)),
            ("policyStatsSuccess", Value::Int(2)),
            ("policyStatsFailed", Value::Int(1)),
            ("policyStatsPending", Value::Int(0)),
            ("localAdminUsernames", list(&["ada", "root"])),
            ("primaryUserId", Value::from("60000000000000000000aaaa")),
            (
                "webLink",
                Value::from(
                    "https://console.jumpcloud.com/#/devices/63f0000000000000000000a1/details",
                ),
            ),
        ];
        for (name, value) in expect {
            assert_eq!(prop(&entity, name), Some(&value), "{name}");
        }
        for absent in [
            "azureAdJoined",
            "domainName",
            "version",
            "status",
            "remoteIp",
            "remoteIP",
        ] {
            assert_eq!(prop(&entity, absent), None, "{absent}");
        }
        let raw = entity.raw_data.as_deref().unwrap();
        assert!(!raw.contains("198.51.100"), "remoteIP and history are gone");
        assert!(!raw.contains("remoteIP") && !raw.contains("connectionHistory"));
        assert!(raw.contains("C02ABC123"));
    }

    #[test]
    fn a_bare_system_falls_back_on_names_and_nulls() {
        let entity = system(json!({"_id": "63f0000000000000000000b2", "lastContact": null}));
        assert_eq!(
            prop(&entity, "name"),
            Some(&Value::from("63f0000000000000000000b2"))
        );
        for null in [
            "hostname",
            "fqdn",
            "serial",
            "lastSeenOn",
            "ipv4Addresses",
            "ipv6Addresses",
            "privateIpAddresses",
            "publicIpAddresses",
            "make",
            "osName",
            "osType",
            "osVersion",
            "osDetails",
        ] {
            assert_eq!(prop(&entity, null), Some(&Value::Null), "{null}");
        }
        assert_eq!(prop(&entity, "category"), Some(&Value::from("other")));
        assert_eq!(prop(&entity, "active"), Some(&Value::Bool(false)));
        for absent in [
            "encrypted",
            "fdeKeyPresent",
            "localAdminUsernames",
            "primaryUserId",
        ] {
            assert_eq!(prop(&entity, absent), None, "{absent}");
        }
        for required in REQUIRED {
            assert!(prop(&entity, required).is_some(), "{required}");
        }
        let by_host = system(json!({"_id": "s2", "hostname": "x", "serialNumber": "SER"}));
        assert_eq!(prop(&by_host, "name"), Some(&Value::from("x")));
        assert_eq!(prop(&by_host, "hostname"), Some(&Value::Null), "one letter");
        let by_serial = system(json!({"_id": "s3", "serialNumber": " SER "}));
        assert_eq!(prop(&by_serial, "name"), Some(&Value::from("SER")));
    }

    #[test]
    fn a_linux_server_with_a_public_fqdn() {
        let entity = system(json!({
            "_id": "s4", "hostname": "Web-01.Prod.Example.com", "os": "Ubuntu",
            "version": "22.04", "domainInfo": {"domainName": "prod.example.com", "partOfDomain": true},
            "amazonInstanceID": "i-0abc", "description": "",
            "networkInterfaces": [{"address": "203.0.113.10", "internal": false},
                                  {"address": "10.1.2.3", "internal": false},
                                  {"address": "203.0.113.10", "internal": false}]
        }));
        assert_eq!(prop(&entity, "hostname"), Some(&Value::from("Web-01")));
        assert_eq!(
            prop(&entity, "fqdn"),
            Some(&list(&["web-01.prod.example.com"]))
        );
        assert_eq!(prop(&entity, "osType"), Some(&Value::from("linux")));
        assert_eq!(prop(&entity, "category"), Some(&Value::from("server")));
        assert_eq!(
            prop(&entity, "osDetails"),
            Some(&Value::from("Ubuntu 22.04"))
        );
        assert_eq!(
            prop(&entity, "domainName"),
            Some(&Value::from("prod.example.com"))
        );
        assert_eq!(
            prop(&entity, "amazonInstanceId"),
            Some(&Value::from("i-0abc"))
        );
        assert_eq!(prop(&entity, "description"), None);
        assert_eq!(
            prop(&entity, "publicIpAddresses"),
            Some(&list(&["203.0.113.10"]))
        );
        assert_eq!(
            prop(&entity, "privateIpAddresses"),
            Some(&list(&["10.1.2.3"]))
        );
    }

    #[test]
    fn os_type_and_category_rules() {
        let cases: [(Json, &str, Value); 9] = [
            (
                json!({"osFamily": "Windows", "os": "Windows"}),
                "endpoint",
                "windows".into(),
            ),
            (
                json!({"os": "Windows Server 2022"}),
                "server",
                "windows".into(),
            ),
            (json!({"osFamily": "android"}), "mobile", "android".into()),
            (json!({"osFamily": "iPadOS"}), "mobile", "ios".into()),
            (json!({"osFamily": "freebsd"}), "other", "other".into()),
            (
                json!({"os": "Rocky Linux", "desktopCapable": true}),
                "endpoint",
                "linux".into(),
            ),
            (
                json!({"os": "Mac OS X", "desktopCapable": false}),
                "server",
                "darwin".into(),
            ),
            (json!({"os": "Amazon Linux"}), "server", "linux".into()),
            (json!({"os": "Plan 9"}), "other", Value::Null),
        ];
        for (mut fields, category, os_type) in cases {
            fields["_id"] = json!("s5");
            let entity = system(fields.clone());
            assert_eq!(
                prop(&entity, "category"),
                Some(&Value::from(category)),
                "{fields}"
            );
            assert_eq!(prop(&entity, "osType"), Some(&os_type), "{fields}");
        }
    }

    #[test]
    fn wrong_types_are_errors_naming_the_field() {
        let err = system_entity(&object(json!({"_id": "s6", "hostname": 7})), CONSOLE).unwrap_err();
        assert_eq!(err.field, "hostname");
        let err = system_entity(
            &object(json!({"_id": "s6", "networkInterfaces": ["10.0.0.1"]})),
            CONSOLE,
        )
        .unwrap_err();
        assert_eq!(err.field, "networkInterfaces");
        // Fields copied "when boolean" are left out instead.
        let entity =
            system(json!({"_id": "s6", "fde": {"active": "yes"}, "policyStats": {"total": "3"}}));
        assert_eq!(prop(&entity, "encrypted"), None);
        assert_eq!(prop(&entity, "policyStatsTotal"), None);
    }

    #[test]
    fn system_groups_like_user_groups() {
        let group = object(
            json!({"id": "sg1", "name": "", "type": "system_group", "email": "",
            "description": "", "membershipMethod": "STATIC", "attributes": {}}),
        );
        let entity = system_group_entity(&group, "{}").unwrap();
        assert_eq!(entity.entity_type, "jumpcloud_system_group");
        assert_eq!(entity.classes, ["Group"]);
        assert_eq!(prop(&entity, "name"), Some(&Value::from("sg1")));
        assert_eq!(
            prop(&entity, "membershipMethod"),
            Some(&Value::from("STATIC"))
        );
        for absent in ["email", "description", "attributes", "webLink"] {
            assert_eq!(prop(&entity, absent), None, "{absent}");
        }
        let group = object(
            json!({"id": "sg2", "name": "Servers", "email": "ops@example.com",
            "description": "Prod", "attributes": {"sudo": {"enabled": true}}}),
        );
        let entity = system_group_entity(&group, "{}").unwrap();
        assert_eq!(
            prop(&entity, "attributes"),
            Some(&Value::from(r#"{"sudo":{"enabled":true}}"#))
        );
        assert_eq!(
            prop(&entity, "email"),
            Some(&Value::from("ops@example.com"))
        );
    }

    #[test]
    fn connections_and_associations() {
        let member = object(json!({"attributes": null, "to": {"id": "s1", "type": "system"}}));
        assert_eq!(connection_target(&member, "system"), Ok(Some("s1".into())));
        let odd = object(json!({"to": {"id": "sg9", "type": "system_group"}}));
        assert_eq!(connection_target(&odd, "system"), Ok(None));
        let broken = object(json!({"to": {"type": "system"}}));
        assert_eq!(
            connection_target(&broken, "system").unwrap_err().field,
            "to.id"
        );

        let bound = object(
            json!({"attributes": {"sudo": {"enabled": true, "withoutPassword": true}},
                                  "to": {"id": "g1", "type": "user_group"}}),
        );
        assert_eq!(
            association(&bound, "user_group"),
            Ok(Some((
                "g1".into(),
                Sudo {
                    enabled: true,
                    without_password: true
                }
            )))
        );
        let plain = object(json!({"attributes": null, "to": {"id": "u1", "type": "user"}}));
        assert_eq!(
            association(&plain, "user"),
            Ok(Some(("u1".into(), Sudo::default())))
        );
        assert_eq!(association(&plain, "user_group"), Ok(None));
    }

    #[test]
    fn system_access_reads_paths_and_compiled_sudo() {
        let item = object(json!({
            "id": "u1", "type": "user",
            "compiledAttributes": {"sudo": {"enabled": true, "withoutPassword": false}},
            "paths": [
                [{"attributes": {"sudo": {"enabled": true, "withoutPassword": true}},
                  "to": {"id": "g1", "type": "user_group"}},
                 {"attributes": null, "to": {"id": "u1", "type": "user"}}],
                [{"attributes": null, "to": {"id": "sg1", "type": "system_group"}},
                 {"attributes": null, "to": {"id": "g2", "type": "user_group"}},
                 {"attributes": null, "to": {"id": "u1", "type": "user"}}]
            ]
        }));
        let access = system_access(&item).unwrap().unwrap();
        assert!(!access.direct);
        assert_eq!(
            access.sudo,
            Sudo {
                enabled: true,
                without_password: false
            }
        );
        assert_eq!(
            access.via_groups,
            [(
                "g1".to_owned(),
                Sudo {
                    enabled: true,
                    without_password: true
                }
            )]
        );
        let edge = user_assigned_system(&access, "s1");
        assert_eq!(edge.relationship_type, "jumpcloud_user_assigned_system");
        assert_eq!(edge.key, "u1|assigned|s1");
        assert_eq!(edge.property("direct"), Some(&Value::Bool(false)));
        assert_eq!(edge.property("sudo"), Some(&Value::Bool(true)));
        assert_eq!(edge.property("passwordlessSudo"), Some(&Value::Bool(false)));

        let direct = object(
            json!({"id": "u2", "type": "user", "compiledAttributes": null,
            "paths": [[{"attributes": {"sudo": {"enabled": true}}, "to": {"id": "u2", "type": "user"}}]]}),
        );
        let access = system_access(&direct).unwrap().unwrap();
        assert!(access.direct);
        assert_eq!(
            access.sudo,
            Sudo::default(),
            "null compiled attributes: no sudo"
        );
        assert!(access.via_groups.is_empty());
        let group = object(json!({"id": "g1", "type": "user_group", "paths": []}));
        assert_eq!(system_access(&group), Ok(None));
        let bad = object(json!({"id": "u3", "paths": ["x"]}));
        assert_eq!(system_access(&bad).unwrap_err().field, "paths");
    }

    #[test]
    fn edges_follow_the_key_convention() {
        let sudo = Sudo {
            enabled: true,
            without_password: true,
        };
        let cases = [
            (
                group_assigned_system("g1", "s1", sudo),
                "jumpcloud_group_assigned_system",
                "g1|assigned|s1",
            ),
            (
                group_assigned_system_group("g1", "sg1", sudo),
                "jumpcloud_group_assigned_system_group",
                "g1|assigned|sg1",
            ),
            (
                user_assigned_system_group("u1", "sg1", sudo),
                "jumpcloud_user_assigned_system_group",
                "u1|assigned|sg1",
            ),
            (
                system_group_has_system("sg1", "s1"),
                "jumpcloud_system_group_has_system",
                "sg1|has|s1",
            ),
            (
                user_owns_system("u1", "s1"),
                "jumpcloud_user_owns_system",
                "u1|owns|s1",
            ),
            (
                system_is_apple_device("s1", "d1"),
                "jumpcloud_system_is_apple_device",
                "s1|is|d1",
            ),
        ];
        for (edge, kind, key) in cases {
            assert_eq!(edge.relationship_type, kind);
            assert_eq!(edge.key, key);
        }
        let edge = group_assigned_system(
            "g1",
            "s1",
            Sudo {
                enabled: false,
                without_password: true,
            },
        );
        assert_eq!(edge.property("passwordlessSudo"), Some(&Value::Bool(false)));
        assert_eq!(edge.property("direct"), Some(&Value::Bool(true)));
    }

    #[test]
    fn join_serials_are_trimmed_and_upper_cased() {
        let obj = object(json!({"serialNumber": " c02abc ", "blank": " ", "n": 5}));
        assert_eq!(join_serial(&obj, "serialNumber").as_deref(), Some("C02ABC"));
        assert_eq!(join_serial(&obj, "blank"), None);
        assert_eq!(join_serial(&obj, "n"), None);
        assert_eq!(join_serial(&obj, "missing"), None);
    }
}
