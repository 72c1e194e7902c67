//! The rest of a generated directory: systems (agent-managed devices), system groups,
//! policies with their statuses, console administrators, an Apple MDM and its devices,
//! and who may log into which system (bindings with sudo). Objects are pure functions
//! of their index, like users; only the bindings are built up front.
//!
//! ## Systems (`s`, per organization)
//! `s % 3 == 0` Macs (enrolled in the Apple MDM: device `s / 3` has the same serial),
//! `s % 3 == 1` Windows laptops, `s % 6 == 2` Linux desktops, `s % 6 == 5` Linux
//! servers. Laptops and desktops belong to user `s * users / systems`
//! (`primarySystemUser`), who is bound to them directly (some with sudo). Every system
//! has a `remoteIP` in 198.51.100.0/24 and a `connectionHistory` (never to be output),
//! and its FDE key is served at `/api/v2/systems/{id}/fdekey` (never to be called).
//! Edge cases: 0 a jump host (`jump-01.ops.<domain>`, public and private interfaces,
//! bound to user group 0 and the empty last user group); 1 only `_id`, no names,
//! serial, interfaces or `fde`, `lastContact: null`; 2 an invalid host name
//! (`Ada's MacBook`) and a deleted user bound to it; 3 a Mac whose serial two Apple
//! devices share; 6 and 9 Macs with the same serial; 7 owned by a deleted user;
//! 8 `osFamily` missing, `os` "Ubuntu"; 10 `Windows Server 2022` with a `host_name`;
//! 11 a placeholder serial shared with system 5.
//!
//! ## System groups (`g`)
//! 0 "All Systems": the first `min(systems, 150)` systems, a deleted system and a
//! member of type `system_group`; bound to policy 0. 1 "Jump Hosts": systems 0 and 5,
//! bound to user group 1 (sudo) and directly to the first `min(users, 110)` users
//! (every tenth with sudo). 2 "Engineering Macs": every tenth Mac, bound to user group
//! 1 with passwordless sudo. 3 "Empty": no members, bound to user group 2. The others
//! ("Fleet k") split every system past the first 150 among them, unbound.
//!
//! ## Policies (`p`)
//! 0 (no name: named by its template) bound to system group 0; 1 bound directly to
//! three Macs; 2 to system group 2 and system 1; the others to a fleet group and one
//! system. Statuses: per bound system none, one, or two (an older failure and a
//! newer success); policy 0 also has a status for a deleted system. Every status has a
//! `stdOut` with [`crate::FAKE_SECRET_MARKER`]; so has every policy's detail
//! (`values`), served at `/api/v2/policies/{id}` (never to be called).
//!
//! ## Administrators (`a`)
//! 0 shares user 0's email; 1 must use MFA but never enrolled; 2 has no email; 3 is
//! suspended. With several organizations the first two have the same id everywhere.
//! Each has an `apiKeyHash.prefix` with the secret marker.
//!
//! ## Apple devices (`d`)
//! `d < macs`: the Mac of system `3d`; then one phone or tablet per five Macs; then
//! three edge cases: no serial, udid or `deviceInformation`; an iPad with
//! `securityInfo: {}` and the serial of system 3's Mac; and another device with it.

use serde_json::{Map, Value, json};

use crate::generate::{DAY, EPOCH, FIRST_NAMES, Generator, KIND_USER, created_secs, object_id};
use crate::rng::{Rng, mix};
use crate::tenant::{Collection, DANGLING, Organization};
use crate::time::iso8601;

const KIND_SYSTEM: u64 = 5;
const KIND_SYSTEM_GROUP: u64 = 6;
const KIND_POLICY: u64 = 7;
const KIND_ADMIN: u64 = 8;
const KIND_MDM: u64 = 9;
const KIND_DEVICE: u64 = 10;
const KIND_STATUS: u64 = 11;
const KIND_DELETED_SYSTEM: u64 = 12;
const KIND_TEMPLATE: u64 = 13;
const KIND_DELETED_USER: u64 = 14;

/// The organization index used in the ids of administrators shared by every org.
const SHARED_ORG: u32 = 0xfff;
/// Members of system group 0 (when there are that many systems).
const ALL_SYSTEMS_MEMBERS: usize = 150;
/// Users bound directly to system group 1 (more than one page).
const JUMP_HOST_USERS: usize = 110;
/// The documented system groups before the fleet groups.
const FIXED_SYSTEM_GROUPS: usize = 4;

/// Sudo rights of a binding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Sudo {
    pub(crate) enabled: bool,
    pub(crate) without_password: bool,
}

impl Sudo {
    const NONE: Sudo = Sudo {
        enabled: false,
        without_password: false,
    };
    const WITH_PASSWORD: Sudo = Sudo {
        enabled: true,
        without_password: false,
    };
    const PASSWORDLESS: Sudo = Sudo {
        enabled: true,
        without_password: true,
    };

    fn attributes(self) -> Value {
        json!({"sudo": {"enabled": self.enabled, "withoutPassword": self.without_password}})
    }

    fn or(self, other: Sudo) -> Sudo {
        Sudo {
            enabled: self.enabled || other.enabled,
            without_password: (self.enabled && self.without_password)
                || (other.enabled && other.without_password),
        }
    }
}

/// Bindings of the rest of the directory, as storage indices.
#[derive(Debug, Clone, Default)]
pub(crate) struct Directory {
    /// Per system group, member systems ascending, then `DANGLING | k` for
    /// `dangling_systems[k]`.
    pub(crate) sg_members: Vec<Vec<u32>>,
    /// Member ids that are not systems (deleted systems).
    pub(crate) dangling_systems: Vec<String>,
    /// Per system group, members of another type, served after the systems.
    pub(crate) sg_odd_members: Vec<Vec<(String, &'static str)>>,
    /// Per system, the system groups it is in (ascending).
    pub(crate) system_sgs: Vec<Vec<u32>>,
    /// Per system, users bound directly: user index or `DANGLING | k` for
    /// `dangling_users[k]`.
    pub(crate) system_users: Vec<Vec<(u32, Sudo)>>,
    /// User ids bound to systems that are not users (deleted users).
    pub(crate) dangling_users: Vec<String>,
    /// Per system, user groups bound directly.
    pub(crate) system_groups_bound: Vec<Vec<(u32, Sudo)>>,
    /// Per system group, users and user groups bound.
    pub(crate) sg_users: Vec<Vec<(u32, Sudo)>>,
    pub(crate) sg_groups: Vec<Vec<(u32, Sudo)>>,
    /// Per policy, systems bound directly and system groups bound.
    pub(crate) policy_systems: Vec<Vec<u32>>,
    pub(crate) policy_sgs: Vec<Vec<u32>>,
}

impl Directory {
    /// User groups bound to a system or a system group: changing their members
    /// changes who can log in where.
    pub(crate) fn bound_user_groups(&self) -> impl Iterator<Item = u32> + '_ {
        self.system_groups_bound
            .iter()
            .chain(&self.sg_groups)
            .flatten()
            .map(|&(g, _)| g)
    }
}

/// What kind of machine system `s` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Machine {
    Mac,
    Windows,
    LinuxDesktop,
    LinuxServer,
}

fn machine(s: usize) -> Machine {
    match s % 6 {
        0 | 3 => Machine::Mac,
        1 | 4 => Machine::Windows,
        2 => Machine::LinuxDesktop,
        _ => Machine::LinuxServer,
    }
}

fn timestamp(secs: u64) -> String {
    iso8601(secs, (mix(secs) % 1000) as u32)
}

impl Generator {
    fn kind_id(&self, kind: u64, index: usize) -> String {
        object_id(self.seed, kind, self.org, index as u64)
    }

    pub(crate) fn system_id(&self, s: usize) -> String {
        self.kind_id(KIND_SYSTEM, s)
    }

    pub(crate) fn system_group_id(&self, g: usize) -> String {
        self.kind_id(KIND_SYSTEM_GROUP, g)
    }

    pub(crate) fn policy_id(&self, p: usize) -> String {
        self.kind_id(KIND_POLICY, p)
    }

    pub(crate) fn administrator_id(&self, a: usize) -> String {
        let org = if a < self.shared_administrators {
            SHARED_ORG
        } else {
            self.org
        };
        object_id(self.seed, KIND_ADMIN, org, a as u64)
    }

    pub(crate) fn apple_mdm_id(&self, m: usize) -> String {
        self.kind_id(KIND_MDM, m)
    }

    pub(crate) fn apple_device_id(&self, d: usize) -> String {
        self.kind_id(KIND_DEVICE, d)
    }

    /// The owner of system `s` (laptops and desktops), a user index.
    fn owner(&self, s: usize) -> Option<usize> {
        if self.users == 0 || machine(s) == Machine::LinuxServer || s == 1 {
            return None;
        }
        Some(s * self.users / self.systems.max(1))
    }

    fn first_name(&self, u: usize) -> &'static str {
        let mut rng = self.rng(KIND_USER, u);
        rng.pick(FIRST_NAMES).1
    }

    /// The serial number of system `s` (also its Mac's in the MDM).
    fn system_serial(&self, s: usize) -> Option<String> {
        Some(match (s, machine(s)) {
            (1, _) => return None,
            (9, _) => self.system_serial(6)?,
            (11, _) => "VMware-PLACEHOLDER".to_owned(),
            (5, _) => "VMware-PLACEHOLDER".to_owned(),
            (_, Machine::Mac) => format!("C02{:09X}", mix(self.seed ^ s as u64) & 0xf_ffff_ffff),
            (_, Machine::Windows) => format!("PF{:08X}", mix(self.seed ^ 0xA ^ s as u64) as u32),
            _ => format!(
                "VMware-56 4d {:08x}",
                mix(self.seed ^ 0xB ^ s as u64) as u32
            ),
        })
    }

    /// System `s` as `GET /api/systems` serves it.
    pub(crate) fn system(&self, s: usize) -> Value {
        let mut rng = self.rng(KIND_SYSTEM, s);
        let id = self.system_id(s);
        let kind = machine(s);
        let owner = self.owner(s);
        let owner_name = owner.map_or("shared", |u| self.first_name(u));
        let created = created_secs(KIND_SYSTEM, s);
        let label = format!("{:04}", s);
        let (display, hostname) = match kind {
            Machine::Mac => {
                let cap = capitalize(owner_name);
                (
                    format!("{cap}'s MacBook Pro"),
                    format!("{cap}s-MacBook-Pro-{label}.local"),
                )
            }
            Machine::Windows => (format!("DESKTOP-{label}"), format!("DESKTOP-{label}")),
            Machine::LinuxDesktop => (format!("dev-{label}"), format!("dev-{label}")),
            Machine::LinuxServer => (
                format!("web-{label}"),
                format!("web-{label}.prod.{}", self.domain),
            ),
        };
        let (os, family, version, vendor, arch) = match kind {
            Machine::Mac => ("Mac OS X", "darwin", "14.4.1", "Apple Inc.", "arm64"),
            Machine::Windows => ("Windows", "windows", "10.0.22631", "Dell Inc.", "x86_64"),
            Machine::LinuxDesktop => ("Ubuntu", "linux", "22.04", "Lenovo", "x86_64"),
            Machine::LinuxServer => ("Ubuntu", "linux", "22.04", "VMware, Inc.", "x86_64"),
        };
        let fde_active = match kind {
            Machine::Mac => rng.percent(92),
            Machine::Windows => rng.percent(75),
            _ => false,
        };
        let active = rng.percent(70);
        let last_contact = (!rng.percent(4)).then(|| timestamp(EPOCH + 1500 * DAY + s as u64 * 60));
        let private = format!("10.{}.{}.{}", (s >> 16) & 0xff, (s >> 8) & 0xff, s & 0xff);
        let mut interfaces = vec![
            json!({"address": "127.0.0.1", "family": "IPv4", "internal": true, "name": "lo0"}),
            json!({"address": private, "family": "IPv4", "internal": false, "name": "en0"}),
            json!({"address": format!("fe80::{:x}%en0", s + 1), "family": "IPv6", "internal": false, "name": "en0"}),
        ];
        if kind == Machine::LinuxServer {
            interfaces.push(json!({"address": format!("203.0.113.{}", s % 250 + 1), "family": "IPv4", "internal": false, "name": "eth1"}));
        }
        let mut system = json!({
            "_id": id,
            "id": id,
            "organization": self.org_id,
            "displayName": display,
            "hostname": hostname,
            "os": os,
            "osFamily": family,
            "version": version,
            "osVersionDetail": {"osName": if kind == Machine::Mac { "macOS" } else { os }, "version": version},
            "arch": arch,
            "serialNumber": self.system_serial(s),
            "hwVendor": vendor,
            "active": active,
            "lastContact": last_contact,
            "created": timestamp(created),
            "agentVersion": "1.160.0",
            "remoteIP": format!("198.51.100.{}", s % 250 + 1),
            "connectionHistory": [{"remoteIP": format!("198.51.100.{}", (s + 7) % 250 + 1), "at": timestamp(created)}],
            "desktopCapable": kind != Machine::LinuxServer,
            "fde": {"active": fde_active, "keyPresent": fde_active && rng.percent(90)},
            "allowSshRootLogin": false,
            "allowSshPasswordAuthentication": kind == Machine::LinuxServer && rng.percent(20),
            "allowPublicKeyAuthentication": true,
            "allowMultiFactorAuthentication": rng.percent(50),
            "isPolicyBound": s.is_multiple_of(4),
            "systemInsights": {"state": "enabled"},
            "networkInterfaces": interfaces,
            "policyStats": {"total": 3, "success": 2, "failed": s % 2, "pending": 1 - s % 2},
        });
        let Value::Object(fields) = &mut system else {
            return system;
        };
        if kind == Machine::Mac {
            fields.insert(
                "mdm".into(),
                json!({"vendor": "internal", "dep": rng.percent(60), "userApproved": true,
                       "providerId": self.apple_mdm_id(0)}),
            );
        }
        if kind == Machine::Windows {
            fields.insert(
                "domainInfo".into(),
                json!({"domainName": format!("corp.{}", self.domain), "partOfDomain": s % 4 == 1}),
            );
            fields.insert("azureAdJoined".into(), (s % 8 == 1).into());
        }
        if let Some(u) = owner {
            let user_id = if s == 7 {
                self.kind_id(KIND_DELETED_USER, 1)
            } else {
                self.user_id(u)
            };
            fields.insert("primarySystemUser".into(), json!({"id": user_id}));
            let username = format!("{}{u}", self.first_name(u));
            fields.insert(
                "userMetrics".into(),
                json!([{"userName": username, "admin": kind == Machine::Mac, "suspended": false},
                       {"userName": "guest", "admin": false, "suspended": false}]),
            );
        }
        self.system_edge_case(s, fields);
        system
    }

    fn system_edge_case(&self, s: usize, fields: &mut Map<String, Value>) {
        fn set(fields: &mut Map<String, Value>, key: &str, value: Value) {
            fields.insert(key.to_owned(), value);
        }
        match s {
            0 => {
                set(fields, "displayName", "jump-01".into());
                set(
                    fields,
                    "hostname",
                    format!("jump-01.ops.{}", self.domain).into(),
                );
                set(fields, "desktopCapable", false.into());
                set(
                    fields,
                    "networkInterfaces",
                    json!([{"address": "10.0.0.1", "internal": false, "name": "eth0"},
                           {"address": "203.0.113.250", "internal": false, "name": "eth1"},
                           {"address": "2001:db8::1", "internal": false, "name": "eth1"}]),
                );
            }
            1 => {
                for key in [
                    "id",
                    "displayName",
                    "hostname",
                    "serialNumber",
                    "networkInterfaces",
                    "fde",
                    "osFamily",
                    "os",
                    "version",
                    "osVersionDetail",
                    "hwVendor",
                    "desktopCapable",
                ] {
                    fields.remove(key);
                }
                set(fields, "lastContact", Value::Null);
            }
            2 => set(fields, "hostname", "Ada's MacBook".into()),
            8 => {
                fields.remove("osFamily");
            }
            10 => {
                set(fields, "os", "Windows Server 2022".into());
                set(fields, "hostname", "host_name".into());
            }
            _ => {}
        }
    }

    /// System group `g` as `GET /api/v2/systemgroups` serves it.
    pub(crate) fn system_group(&self, g: usize) -> Value {
        let id = self.system_group_id(g);
        let (name, description) = match g {
            0 => ("All Systems".to_owned(), "Every device"),
            1 => ("Jump Hosts".to_owned(), "Bastions"),
            2 => ("Engineering Macs".to_owned(), ""),
            3 => ("Empty".to_owned(), "Nothing in here"),
            _ => (format!("Fleet {g}"), ""),
        };
        let attributes = match g {
            1 => json!({"sudo": {"enabled": true, "withoutPassword": false}}),
            2 => json!({}),
            _ => Value::Null,
        };
        json!({
            "id": id,
            "name": name,
            "type": "system_group",
            "description": description,
            "email": if g == 1 { format!("ops@{}", self.domain) } else { String::new() },
            "membershipMethod": if g >= FIXED_SYSTEM_GROUPS { "DYNAMIC_AUTOMATED" } else { "STATIC" },
            "memberQuery": null,
            "memberQueryExemptions": [],
            "attributes": attributes,
        })
    }

    /// Policy `p` as the `GET /api/v2/policies` list serves it.
    pub(crate) fn policy(&self, p: usize) -> Value {
        let (template, display, family) = [
            ("encrypted_disk_mac", "FileVault Encryption", "darwin"),
            ("screen_lock_windows", "Lock Screen", "windows"),
            ("ssh_root_linux", "Disable SSH Root Login", "linux"),
            ("firewall_mac", "Application Firewall", "darwin"),
        ][p % 4];
        let name = match p {
            0 => String::new(),
            _ => format!("{display} {p}"),
        };
        json!({
            "id": self.policy_id(p),
            "name": name,
            "template": {
                "id": self.kind_id(KIND_TEMPLATE, p % 4),
                "name": template,
                "displayName": display,
                "description": format!("{display} for {family} devices"),
                "osMetaFamily": family,
                "deliveryTypes": if family == "darwin" { json!(["agent", "mdm"]) } else { json!(["agent"]) },
                "activation": "Enable on every device",
                "behavior": "",
                "state": "",
            },
        })
    }

    /// What `GET /api/v2/policies/{id}` would answer: the list item plus `values`,
    /// which may hold secrets (here a marked fake one).
    pub(crate) fn policy_detail(&self, p: usize) -> Value {
        let mut detail = self.policy(p);
        if let Value::Object(fields) = &mut detail {
            fields.insert("notes".into(), "".into());
            fields.insert(
                "values".into(),
                json!([{"configFieldID": "f1", "configFieldName": "recoveryPassword",
                        "value": format!("{}-POLICY-VALUE-{p}", crate::FAKE_SECRET_MARKER)}]),
            );
        }
        detail
    }

    /// Administrator `a` as `GET /api/users` serves it.
    pub(crate) fn administrator(&self, a: usize) -> Value {
        let id = self.administrator_id(a);
        let mut rng = self.rng(KIND_ADMIN, a);
        let shared = a < self.shared_administrators;
        let first = capitalize(rng.pick(FIRST_NAMES).1);
        let email = match a {
            0 if self.users > 0 => self
                .object(Collection::Users, 0)
                .get("email")
                .and_then(Value::as_str)
                .map(str::to_uppercase),
            2 => None,
            _ if shared => Some(format!("msp.admin{a}@msp.example.com")),
            _ => Some(format!("admin{a}.{}@{}", first.to_lowercase(), self.domain)),
        };
        let created = created_secs(KIND_ADMIN, a);
        let mut admin = json!({
            "_id": id,
            "email": email.unwrap_or_default(),
            "firstname": if a == 0 { "Console".to_owned() } else { first },
            "lastname": if a == 0 { "Admin".to_owned() } else { format!("Admin{a}") },
            "enableMultiFactor": a != 3 && a % 5 != 4,
            "totpEnrolled": a != 1 && a % 5 != 4,
            "suspended": a == 3,
            "organization": self.org_id,
            "created": timestamp(created),
            "role": "admin",
            "roleName": if a.is_multiple_of(2) { "Administrator with Billing" } else { "Read Only" },
            "roleNames": if a.is_multiple_of(2) { json!(["Administrator with Billing"]) } else { json!([]) },
            "apiKeyAllowed": a.is_multiple_of(2),
            "apiKeySet": a.is_multiple_of(2),
            "apiKeyUpdatedAt": timestamp(created + 30 * DAY),
            "apiKeyHash": {"prefix": format!("jca_{}-{a}", crate::FAKE_SECRET_MARKER),
                           "expireAt": timestamp(created + 395 * DAY)},
            "passwordUpdatedAt": timestamp(created + 60 * DAY),
            "totpUpdatedAt": timestamp(created + 2 * DAY),
            "provider": if shared { Value::from("msp-provider") } else { Value::Null },
        });
        if a == 2
            && let Value::Object(fields) = &mut admin
        {
            fields.remove("email");
        }
        admin
    }

    /// The organization's Apple MDM configuration.
    pub(crate) fn apple_mdm(&self, m: usize) -> Value {
        json!({
            "id": self.apple_mdm_id(m),
            "name": if self.org == 0 { String::new() } else { format!("{} MDM", self.domain) },
            "apnsPushTopic": format!("com.apple.mgmt.External.{:08x}-0000-0000-0000-000000000000", self.org),
            "depServerTokenState": "valid",
            "apnsCertExpiry": timestamp(EPOCH + 900 * DAY),
            "depAccessTokenExpiry": timestamp(EPOCH + 800 * DAY),
            "defaultIosUserEnrollmentDeviceGroupID": "",
            "dep": {"welcomeScreen": {"title": "Welcome", "paragraph": "Hello", "button": "continue"},
                    "setupAssistantOptions": [], "enableZeroTouchEnrollment": false},
            "allowMobileUserEnrollment": true,
            "ades": {},
            "organization": self.org_id,
            "appleCertCreatorAppleID": format!("mdm@{}", self.domain),
            "appleCertSerialNumber": format!("{:016X}", mix(self.seed ^ u64::from(self.org))),
        })
    }

    /// Mac systems: those with `s % 3 == 0`.
    fn macs(&self) -> usize {
        self.systems.div_ceil(3)
    }

    pub(crate) fn apple_device_count(&self) -> usize {
        if !self.apple_mdm {
            return 0;
        }
        let macs = self.macs();
        macs + macs / 5 + 3
    }

    /// Apple device `d` as `GET /api/v2/applemdms/{id}/devices` serves it.
    pub(crate) fn apple_device(&self, d: usize) -> Value {
        let mut rng = self.rng(KIND_DEVICE, d);
        let id = self.apple_device_id(d);
        let macs = self.macs();
        let phones = macs / 5;
        let created = timestamp(created_secs(KIND_DEVICE, d));
        let mac = format!(
            "02:00:{:02x}:{:02x}:{:02x}:{:02x}",
            self.org & 0xff,
            (d >> 16) & 0xff,
            (d >> 8) & 0xff,
            d & 0xff
        );
        let udid = format!("00008103-{:016X}", mix(self.seed ^ 0xD ^ d as u64));
        let base = |serial: Option<String>,
                    family: &str,
                    model: &str,
                    name: String,
                    security: Value| {
            json!({
                "id": id,
                "appleMdmId": self.apple_mdm_id(0),
                "serialNumber": serial,
                "udid": udid,
                "osVersion": if family == "macos" { "14.4.1" } else { "17.4" },
                "mdmOsFamily": family,
                "depRegistered": d.is_multiple_of(3),
                "enrolled": true,
                "createdAt": created,
                "hasActivationLockBypassCodes": d.is_multiple_of(2),
                "deviceInformation": {"deviceName": name, "modelName": model, "isSupervised": true,
                                      "wifiMac": mac, "deviceCapacity": 500, "imei": "35 000000 000000 0"},
                "securityInfo": security,
            })
        };
        if d < macs {
            // Macs are the systems `s % 3 == 0`: the d-th is system 3d.
            let s = 3 * d;
            let serial = match s {
                // Trimmed and upper-cased it still matches its system's serial.
                12 => self
                    .system_serial(s)
                    .map(|x| format!(" {} ", x.to_lowercase())),
                _ => self.system_serial(s),
            };
            let owner = self.owner(s).map_or("shared", |u| self.first_name(u));
            let encrypted = self
                .system(s)
                .pointer("/fde/active")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            return base(
                serial,
                "macos",
                "MacBook Pro",
                format!("{}'s MacBook Pro", capitalize(owner)),
                json!({"filevaultEnabled": encrypted, "passcodePresent": true,
                       "passcodeCompliant": rng.percent(90), "userApprovedEnrollment": true,
                       "enrolledViaDep": d.is_multiple_of(3), "isUserEnrollment": false,
                       "recoveryLockEnabled": rng.percent(30)}),
            );
        }
        if d < macs + phones {
            let ipad = d.is_multiple_of(2);
            return base(
                Some(format!(
                    "DMP{:09X}",
                    mix(self.seed ^ 0xE ^ d as u64) & 0xf_ffff_ffff
                )),
                if ipad { "ipados" } else { "ios" },
                if ipad { "iPad Pro" } else { "iPhone 15" },
                format!("{} {d}", if ipad { "iPad" } else { "iPhone" }),
                json!({"passcodePresent": rng.percent(95), "passcodeCompliant": true}),
            );
        }
        match d - macs - phones {
            0 => json!({"id": id, "appleMdmId": self.apple_mdm_id(0), "enrolled": false,
                        "createdAt": created}),
            k => {
                let serial = self.system_serial(3).unwrap_or_else(|| "C02SHARED".into());
                let mut device = base(
                    Some(serial),
                    "ipados",
                    "iPad Air",
                    format!("Shared iPad {k}"),
                    json!({}),
                );
                if k == 2
                    && let Value::Object(fields) = &mut device
                {
                    fields.insert("securityInfo".into(), json!({"filevaultEnabled": false}));
                }
                device
            }
        }
    }

    /// The bindings of the rest of the directory (see the module header).
    pub(crate) fn directory(&self) -> Directory {
        let (systems, sgs, policies) = (self.systems, self.system_groups, self.policies);
        let users = self.users;
        let groups = self.groups;
        let mut dir = Directory {
            sg_members: vec![Vec::new(); sgs],
            sg_odd_members: vec![Vec::new(); sgs],
            system_sgs: vec![Vec::new(); systems],
            system_users: vec![Vec::new(); systems],
            system_groups_bound: vec![Vec::new(); systems],
            sg_users: vec![Vec::new(); sgs],
            sg_groups: vec![Vec::new(); sgs],
            policy_systems: vec![Vec::new(); policies],
            policy_sgs: vec![Vec::new(); policies],
            dangling_systems: vec![self.kind_id(KIND_DELETED_SYSTEM, 0)],
            dangling_users: vec![self.kind_id(KIND_DELETED_USER, 0)],
        };
        let middle = groups.saturating_sub(2);
        let group = |g: usize| (g < groups).then_some(g as u32);

        // Direct bindings of systems.
        for s in 0..systems {
            let mut rng = self.rng(KIND_SYSTEM ^ 0x40, s);
            if let Some(u) = self.owner(s) {
                let sudo = match machine(s) {
                    Machine::Mac if rng.percent(50) => Sudo::WITH_PASSWORD,
                    Machine::Windows if rng.percent(30) => Sudo::WITH_PASSWORD,
                    Machine::LinuxDesktop if rng.percent(20) => Sudo::PASSWORDLESS,
                    _ => Sudo::NONE,
                };
                dir.system_users[s].push((u as u32, sudo));
            }
            if machine(s) == Machine::LinuxServer && s % 24 == 5 && middle > 0 {
                let g = 1 + (s / 6) % middle;
                let sudo = if rng.percent(30) {
                    Sudo::PASSWORDLESS
                } else {
                    Sudo::NONE
                };
                dir.system_groups_bound[s].push((g as u32, sudo));
            }
        }
        if systems > 0 {
            // The jump host: everyone in group 0 may log in, and a group without
            // members is bound too (it grants nobody anything).
            dir.system_groups_bound[0].extend(group(0).map(|g| (g, Sudo::NONE)));
            if groups >= 2 {
                dir.system_groups_bound[0].push(((groups - 1) as u32, Sudo::WITH_PASSWORD));
            }
        }
        if systems > 2 {
            dir.system_users[2].push((DANGLING, Sudo::WITH_PASSWORD));
        }

        // System groups and their bindings.
        let add_member = |dir: &mut Directory, g: usize, s: usize| {
            if g < sgs && s < systems {
                dir.sg_members[g].push(s as u32);
                dir.system_sgs[s].push(g as u32);
            }
        };
        for s in 0..systems.min(ALL_SYSTEMS_MEMBERS) {
            add_member(&mut dir, 0, s);
        }
        add_member(&mut dir, 1, 0);
        add_member(&mut dir, 1, 5);
        for s in (0..systems).filter(|&s| machine(s) == Machine::Mac && s.is_multiple_of(30)) {
            add_member(&mut dir, 2, s);
        }
        let fleets = sgs.saturating_sub(FIXED_SYSTEM_GROUPS);
        if fleets > 0 {
            for s in ALL_SYSTEMS_MEMBERS.min(systems)..systems {
                add_member(&mut dir, FIXED_SYSTEM_GROUPS + s % fleets, s);
            }
        }
        if sgs > 0 {
            dir.sg_members[0].push(DANGLING);
            dir.sg_odd_members[0].push((self.system_group_id(3), "system_group"));
        }
        if sgs > 1 {
            dir.sg_groups[1].extend(group(1).map(|g| (g, Sudo::WITH_PASSWORD)));
            dir.sg_users[1] = (0..users.min(JUMP_HOST_USERS))
                .map(|u| {
                    let sudo = if u.is_multiple_of(10) {
                        Sudo::WITH_PASSWORD
                    } else {
                        Sudo::NONE
                    };
                    (u as u32, sudo)
                })
                .collect();
        }
        if sgs > 2 {
            dir.sg_groups[2].extend(group(1).map(|g| (g, Sudo::PASSWORDLESS)));
        }
        if sgs > 3 {
            dir.sg_groups[3].extend(group(2).map(|g| (g, Sudo::NONE)));
        }

        // Policies.
        let macs: Vec<u32> = (0..systems)
            .filter(|&s| machine(s) == Machine::Mac)
            .map(|s| s as u32)
            .collect();
        for p in 0..policies {
            let (direct, bound): (Vec<u32>, Vec<usize>) = match p {
                0 => (vec![], vec![0]),
                1 => (macs.iter().copied().take(3).collect(), vec![]),
                2 => (vec![1], vec![2]),
                _ => (
                    if systems > 0 {
                        vec![((p * 97) % systems) as u32]
                    } else {
                        vec![]
                    },
                    if fleets > 0 {
                        vec![FIXED_SYSTEM_GROUPS + p % fleets]
                    } else {
                        vec![]
                    },
                ),
            };
            dir.policy_systems[p] = direct
                .into_iter()
                .filter(|&s| (s as usize) < systems)
                .collect();
            dir.policy_systems[p].sort_unstable();
            dir.policy_systems[p].dedup();
            dir.policy_sgs[p] = bound
                .into_iter()
                .filter(|&g| g < sgs)
                .map(|g| g as u32)
                .collect();
        }
        dir
    }
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A `GraphConnection` to `(id, kind)` with the binding's attributes.
fn hop(id: &str, kind: &str, attributes: Value) -> Value {
    json!({"attributes": attributes, "to": {"attributes": null, "id": id, "type": kind}})
}

/// A user reaching a system, as `/api/v2/systems/{id}/users` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemUserBinding {
    /// The user's id (possibly a deleted user's).
    pub user_id: String,
    /// A one-hop path: bound directly.
    pub direct: bool,
    /// The compiled (effective) sudo rights: `(enabled, withoutPassword)`.
    pub sudo: (bool, bool),
    /// User groups bound directly to the system through which the user reaches it,
    /// with that binding's `(enabled, withoutPassword)` sudo.
    pub via_groups: Vec<(String, (bool, bool))>,
}

impl Organization {
    fn dir(&self) -> &Directory {
        &self.graph().directory
    }

    fn user_member_ids(&self, g: u32) -> Vec<u32> {
        self.graph()
            .members
            .get(g as usize)
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .copied()
            .filter(|&m| m & DANGLING == 0)
            .collect()
    }

    fn user_ref(&self, u: u32) -> Option<String> {
        if u & DANGLING != 0 {
            self.dir()
                .dangling_users
                .get((u & !DANGLING) as usize)
                .cloned()
        } else {
            self.user_id(u as usize)
        }
    }

    /// The items `/api/v2/systems/{id}/users` serves for system slot `s`, in order.
    pub(crate) fn system_user_items(&self, s: usize) -> Vec<Value> {
        use std::collections::BTreeMap;
        let dir = self.dir();
        let mut paths: BTreeMap<u32, (Vec<Value>, Sudo)> = BTreeMap::new();
        let mut add = |u: u32, path: Value, sudo: Sudo| {
            let entry = paths.entry(u).or_insert((Vec::new(), Sudo::NONE));
            entry.0.push(path);
            entry.1 = entry.1.or(sudo);
        };
        for &(u, sudo) in dir.system_users.get(s).map_or(&[][..], Vec::as_slice) {
            if let Some(id) = self.user_ref(u) {
                add(u, json!([hop(&id, "user", sudo.attributes())]), sudo);
            }
        }
        for &(g, sudo) in dir
            .system_groups_bound
            .get(s)
            .map_or(&[][..], Vec::as_slice)
        {
            let Some(group_id) = self.group_id(g as usize) else {
                continue;
            };
            for u in self.user_member_ids(g) {
                let Some(user_id) = self.user_id(u as usize) else {
                    continue;
                };
                add(
                    u,
                    json!([
                        hop(&group_id, "user_group", sudo.attributes()),
                        hop(&user_id, "user", Value::Null)
                    ]),
                    sudo,
                );
            }
        }
        for &sg in dir.system_sgs.get(s).map_or(&[][..], Vec::as_slice) {
            let Some(sg_id) = self.slot_id(Collection::SystemGroups, sg as usize) else {
                continue;
            };
            let via = hop(&sg_id, "system_group", Value::Null);
            for &(u, sudo) in &dir.sg_users[sg as usize] {
                let Some(user_id) = self.user_id(u as usize) else {
                    continue;
                };
                add(
                    u,
                    json!([via, hop(&user_id, "user", sudo.attributes())]),
                    sudo,
                );
            }
            for &(g, sudo) in &dir.sg_groups[sg as usize] {
                let Some(group_id) = self.group_id(g as usize) else {
                    continue;
                };
                for u in self.user_member_ids(g) {
                    let Some(user_id) = self.user_id(u as usize) else {
                        continue;
                    };
                    add(
                        u,
                        json!([
                            via,
                            hop(&group_id, "user_group", sudo.attributes()),
                            hop(&user_id, "user", Value::Null)
                        ]),
                        sudo,
                    );
                }
            }
        }
        paths
            .into_iter()
            .filter_map(|(u, (paths, sudo))| {
                let id = self.user_ref(u)?;
                // Some systems report no compiled attributes at all when nothing is granted.
                let compiled = if !sudo.enabled && s % 2 == 1 {
                    Value::Null
                } else {
                    sudo.attributes()
                };
                Some(json!({"id": id, "type": "user", "compiledAttributes": compiled, "paths": paths}))
            })
            .collect()
    }

    /// The users reaching a system (see [`SystemUserBinding`]); `None` for an unknown
    /// system.
    pub fn system_users(&self, system_id: &str) -> Option<Vec<SystemUserBinding>> {
        let s = self.find(Collection::Systems, system_id)?;
        let pair = |v: &Value| {
            (
                v.pointer("/sudo/enabled").and_then(Value::as_bool) == Some(true),
                v.pointer("/sudo/withoutPassword").and_then(Value::as_bool) == Some(true),
            )
        };
        Some(
            self.system_user_items(s)
                .iter()
                .map(|item| {
                    let paths = item["paths"].as_array().cloned().unwrap_or_default();
                    let mut via_groups = Vec::new();
                    for path in &paths {
                        let first = &path[0];
                        if first["to"]["type"] == "user_group" {
                            let id = first["to"]["id"].as_str().unwrap_or_default().to_owned();
                            if !via_groups.iter().any(|(g, _)| *g == id) {
                                via_groups.push((id, pair(&first["attributes"])));
                            }
                        }
                    }
                    SystemUserBinding {
                        user_id: item["id"].as_str().unwrap_or_default().to_owned(),
                        direct: paths
                            .iter()
                            .any(|p| p.as_array().is_some_and(|h| h.len() == 1)),
                        sudo: pair(&item["compiledAttributes"]),
                        via_groups,
                    }
                })
                .collect(),
        )
    }

    /// The items `/api/v2/systemgroups/{id}/members` serves for system group slot `g`.
    pub(crate) fn system_group_member_items(&self, g: usize) -> Vec<Value> {
        let dir = self.dir();
        let mut items: Vec<Value> = dir
            .sg_members
            .get(g)
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .filter_map(|&m| {
                let id = if m & DANGLING != 0 {
                    dir.dangling_systems.get((m & !DANGLING) as usize).cloned()
                } else {
                    self.slot_id(Collection::Systems, m as usize)
                }?;
                Some(hop(&id, "system", Value::Null))
            })
            .collect();
        for (id, kind) in dir.sg_odd_members.get(g).map_or(&[][..], Vec::as_slice) {
            items.push(hop(id, kind, Value::Null));
        }
        items
    }

    /// The items `/api/v2/systemgroups/{id}/associations?targets=<target>` serves.
    pub(crate) fn system_group_association_items(&self, g: usize, target: &str) -> Vec<Value> {
        let dir = self.dir();
        match target {
            "user" => dir
                .sg_users
                .get(g)
                .map_or(&[][..], Vec::as_slice)
                .iter()
                .filter_map(|&(u, sudo)| {
                    Some(hop(&self.user_id(u as usize)?, "user", sudo.attributes()))
                })
                .collect(),
            "user_group" => dir
                .sg_groups
                .get(g)
                .map_or(&[][..], Vec::as_slice)
                .iter()
                .filter_map(|&(grp, sudo)| {
                    Some(hop(
                        &self.group_id(grp as usize)?,
                        "user_group",
                        sudo.attributes(),
                    ))
                })
                .collect(),
            "policy" => dir
                .policy_sgs
                .iter()
                .enumerate()
                .filter(|(_, sgs)| sgs.contains(&(g as u32)))
                .filter_map(|(p, _)| {
                    Some(hop(
                        &self.slot_id(Collection::Policies, p)?,
                        "policy",
                        Value::Null,
                    ))
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The systems policy `p` applies to: `(system slot, direct)`, ascending.
    fn policy_targets(&self, p: usize) -> Vec<(u32, bool, Vec<u32>)> {
        use std::collections::BTreeMap;
        let dir = self.dir();
        let mut targets: BTreeMap<u32, (bool, Vec<u32>)> = BTreeMap::new();
        for &s in dir.policy_systems.get(p).map_or(&[][..], Vec::as_slice) {
            targets.entry(s).or_default().0 = true;
        }
        for &g in dir.policy_sgs.get(p).map_or(&[][..], Vec::as_slice) {
            for &s in &dir.sg_members[g as usize] {
                if s & DANGLING == 0 {
                    targets.entry(s).or_default().1.push(g);
                }
            }
        }
        targets
            .into_iter()
            .map(|(s, (d, via))| (s, d, via))
            .collect()
    }

    /// The items `/api/v2/policies/{id}/systems` serves for policy slot `p`.
    pub(crate) fn policy_system_items(&self, p: usize) -> Vec<Value> {
        self.policy_targets(p)
            .into_iter()
            .filter_map(|(s, direct, via)| {
                let id = self.slot_id(Collection::Systems, s as usize)?;
                let mut paths = Vec::new();
                if direct {
                    paths.push(json!([hop(&id, "system", Value::Null)]));
                }
                for g in via {
                    let sg = self.slot_id(Collection::SystemGroups, g as usize)?;
                    paths.push(json!([
                        hop(&sg, "system_group", Value::Null),
                        hop(&id, "system", Value::Null)
                    ]));
                }
                Some(
                    json!({"id": id, "type": "system", "compiledAttributes": null, "paths": paths}),
                )
            })
            .collect()
    }

    /// The items `/api/v2/policies/{id}/associations?targets=<target>` serves.
    pub(crate) fn policy_association_items(&self, p: usize, target: &str) -> Vec<Value> {
        let dir = self.dir();
        match target {
            "system_group" => dir
                .policy_sgs
                .get(p)
                .map_or(&[][..], Vec::as_slice)
                .iter()
                .filter_map(|&g| {
                    Some(hop(
                        &self.slot_id(Collection::SystemGroups, g as usize)?,
                        "system_group",
                        Value::Null,
                    ))
                })
                .collect(),
            "system" => dir
                .policy_systems
                .get(p)
                .map_or(&[][..], Vec::as_slice)
                .iter()
                .filter_map(|&s| {
                    Some(hop(
                        &self.slot_id(Collection::Systems, s as usize)?,
                        "system",
                        Value::Null,
                    ))
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The items `/api/v2/policies/{id}/policystatuses` serves for policy slot `p`.
    pub(crate) fn policy_status_items(&self, p: usize) -> Vec<Value> {
        let Some(generator) = self.generator() else {
            return Vec::new();
        };
        let Some(policy_id) = self.slot_id(Collection::Policies, p) else {
            return Vec::new();
        };
        let mut items = Vec::new();
        let status = |system_id: &str, j: u64, state: &str, ended: Option<u64>, started: u64| {
            let id = format!(
                "{:08x}{:016x}",
                p,
                mix(generator.seed ^ ((p as u64) << 40) ^ j)
            );
            json!({
                "id": id, "policyID": policy_id, "systemID": system_id,
                "state": state, "success": state == "SUCCESS",
                "exitStatus": if state == "FAILED" { 1 } else { 0 },
                "startedAt": iso8601(started, 0),
                "endedAt": ended.map(|e| iso8601(e, 0)),
                "detail": "", "stdErr": "",
                "stdOut": format!("{}-STDOUT policy {p} on {system_id}", crate::FAKE_SECRET_MARKER),
            })
        };
        for (s, _, _) in self.policy_targets(p) {
            let Some(system_id) = self.slot_id(Collection::Systems, s as usize) else {
                continue;
            };
            let mut rng = Rng::for_object(
                generator.seed,
                &[
                    u64::from(generator.org),
                    KIND_STATUS,
                    p as u64,
                    u64::from(s),
                ],
            );
            let at = EPOCH + 1400 * DAY + (u64::from(s) % 1000) * 600;
            let j = u64::from(s) * 2;
            match rng.below(10) {
                0 => {}
                1 => {
                    items.push(status(&system_id, j, "FAILED", Some(at + 5), at));
                    items.push(status(
                        &system_id,
                        j + 1,
                        "SUCCESS",
                        Some(at + DAY + 5),
                        at + DAY,
                    ));
                }
                2 => items.push(status(&system_id, j, "PENDING", None, at)),
                3 => items.push(status(&system_id, j, "FAILED", Some(at + 9), at)),
                _ => items.push(status(&system_id, j, "SUCCESS", Some(at + 3), at)),
            }
        }
        if p == 0 {
            let deleted = self
                .dir()
                .dangling_systems
                .first()
                .cloned()
                .unwrap_or_default();
            items.push(status(
                &deleted,
                u64::MAX,
                "SUCCESS",
                Some(EPOCH + 1000 * DAY),
                EPOCH + 1000 * DAY,
            ));
        }
        items
    }

    /// What the never-call routes would disclose for system slot `s`.
    pub(crate) fn fde_key(&self, s: usize) -> Option<Value> {
        let id = self.slot_id(Collection::Systems, s)?;
        Some(json!({"id": id, "key": format!("{}-FDE-KEY-{s}", crate::FAKE_SECRET_MARKER)}))
    }

    pub(crate) fn policy_detail(&self, p: usize) -> Option<Value> {
        let generator = self.generator()?;
        (self.slot_id(Collection::Policies, p).is_some()).then(|| generator.policy_detail(p))
    }
}
