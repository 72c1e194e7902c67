//! Deterministic generation of a tenant of any size.
//!
//! Every object is a pure function of `(seed, organization, kind, index)`: nothing is
//! stored per user, so a 100k-user tenant costs nothing until a page is asked for,
//! and a page costs only its own objects. Only the graph (group members and
//! application bindings, as `u32` indices) is built up front.
//!
//! ## Ids
//! 24 hex digits like MongoDB ObjectIds: `TTTTTTTT SSSS K OOO IIIIIIII` = creation
//! time (seconds), a seed tag, the kind, the organization index and the object
//! index. The creation time grows with the index, so within one collection id order
//! is index order (the server relies on that to sort by `_id`/`id` for free). It stays
//! monotonic up to about 60 million objects per collection.
//!
//! ## Edge cases (per organization, where the collection is large enough)
//! Users: 0 an active admin with MFA and TOTP; 1 no `state`, `activated: true`;
//! 2 no `state`, `activated: false`; 3 `STAGED`; 4 `SUSPENDED`; 5 `ACTIVATED` with
//! `activated: false` (as in the 2021-11 recording); 6 no `email` key; 7 `email: ""`;
//! 8 and 9 emails that differ only in case; 10 `employeeType: "service"` without first
//! and last name; 11 `employeeType: "bot"`; 12 a unicode name; 13 `mfa: null`;
//! 14 no `mfa` key; 15 an MFA exclusion with `exclusionUntil`; 16 enrolled only per
//! `mfaEnrollment.overallStatus`; 17 locked with an expired password; 18 TOTP only;
//! 19 `employeeType: "Service"` (capitalised); 20 empty first, last and display names;
//! 21 `ACTIVATED` but `suspended: true`. Later users are random mixtures of the same
//! traits (about 16% not activated, a few without email or MFA object, unicode names
//! from the name pools, a few service and bot accounts).
//!
//! Groups: 0 "All Users" holds the first `min(users, 150)` users (more than one page
//! of members) plus the dangling member ids (deleted users) at the end; the last group
//! (when there are at least 2) is empty; the groups in between hold every user about
//! twice (`1 + i % m` and `1 + (i / m) % m`, `m` = number of middle groups).
//!
//! Applications: 0 is bound to group 0 and directly to users 0..3 (so those users
//! have two paths); 1 is bound to the empty last group and directly to users 3 and 4;
//! the others to one middle group and three users each; the last one (when there are
//! at least 3) to nothing. Every application's `config` holds fake certificate and
//! private-key text containing [`crate::FAKE_SECRET_MARKER`].

use serde_json::{Map, Value, json};

use crate::rng::{Rng, mix};
use crate::tenant::{Collection, DANGLING, Graph, TenantSpec};
use crate::time::iso8601;

const KIND_ORG: u64 = 0;
pub(crate) const KIND_USER: u64 = 1;
const KIND_GROUP: u64 = 2;
const KIND_APP: u64 = 3;
pub(crate) const KIND_DELETED: u64 = 4;

/// 2020-01-01T00:00:00Z: the generated tenant's epoch.
pub(crate) const EPOCH: u64 = 1_577_836_800;
pub(crate) const DAY: u64 = 86_400;

/// Members of group 0 (when there are that many users): more than one page of 100.
pub(crate) const BIG_GROUP_MEMBERS: usize = 150;

/// `(display, ascii)` first names; some need Unicode.
pub(crate) const FIRST_NAMES: &[(&str, &str)] = &[
    ("Ada", "ada"),
    ("Alan", "alan"),
    ("Grace", "grace"),
    ("Linus", "linus"),
    ("Margaret", "margaret"),
    ("Ken", "ken"),
    ("Barbara", "barbara"),
    ("Dennis", "dennis"),
    ("Frances", "frances"),
    ("John", "john"),
    ("Radia", "radia"),
    ("Tim", "tim"),
    ("Katherine", "katherine"),
    ("Edsger", "edsger"),
    ("Hedy", "hedy"),
    ("Donald", "donald"),
    ("José", "jose"),
    ("Zoë", "zoe"),
    ("Björn", "bjorn"),
    ("Łukasz", "lukasz"),
    ("Søren", "soren"),
    ("Ngọc", "ngoc"),
    ("Дмитрий", "dmitry"),
    ("美咲", "misaki"),
    ("Αλέξανδρος", "alexandros"),
    ("Renée", "renee"),
    ("Siobhán", "siobhan"),
    ("Çağla", "cagla"),
];

/// `(display, ascii)` last names; some need Unicode.
const LAST_NAMES: &[(&str, &str)] = &[
    ("Lovelace", "lovelace"),
    ("Turing", "turing"),
    ("Hopper", "hopper"),
    ("Torvalds", "torvalds"),
    ("Hamilton", "hamilton"),
    ("Thompson", "thompson"),
    ("Liskov", "liskov"),
    ("Ritchie", "ritchie"),
    ("Allen", "allen"),
    ("McCarthy", "mccarthy"),
    ("Perlman", "perlman"),
    ("Berners-Lee", "bernerslee"),
    ("Johnson", "johnson"),
    ("Dijkstra", "dijkstra"),
    ("Lamarr", "lamarr"),
    ("Knuth", "knuth"),
    ("García", "garcia"),
    ("Müller", "muller"),
    ("Ødegaard", "odegaard"),
    ("Nguyễn", "nguyen"),
    ("Kowalski", "kowalski"),
    ("Иванова", "ivanova"),
    ("佐藤", "sato"),
    ("Παπαδοπούλου", "papadopoulou"),
    ("O'Brien", "obrien"),
    ("Öztürk", "ozturk"),
];

const DEPARTMENTS: &[&str] = &[
    "Engineering",
    "Sales",
    "Marketing",
    "Finance",
    "People",
    "Support",
    "Security",
    "Legal",
    "Operations",
    "Recherche & Développement",
];
const JOB_TITLES: &[&str] = &[
    "Engineer",
    "Senior Engineer",
    "Manager",
    "Director",
    "Analyst",
    "Designer",
    "Account Executive",
    "Support Specialist",
    "Intern",
    "",
];
const LOCATIONS: &[&str] = &[
    "Berlin",
    "Denver",
    "London",
    "São Paulo",
    "Tokyo",
    "Remote",
    "",
];
const COST_CENTERS: &[&str] = &["", "CC-100", "CC-200", "CC-300"];
const EMPLOYEE_TYPES: &[&str] = &["", "", "Full-Time", "Full-Time", "Contractor", "Intern"];
const ENROLLMENT: &[&str] = &[
    "NOT_ENROLLED",
    "NOT_ENROLLED",
    "DISABLED",
    "PENDING_ACTIVATION",
    "ENROLLMENT_EXPIRED",
    "IN_ENROLLMENT",
    "PRE_ENROLLMENT",
];

/// `(display name, domain label)` of the first organizations; later ones are numbered.
const ORGANIZATIONS: &[(&str, &str)] = &[
    ("Acme Corporation", "acme"),
    ("Globex", "globex"),
    ("Initech", "initech"),
    ("Umbrella", "umbrella"),
    ("Hooli", "hooli"),
    ("Stark Industries", "stark"),
];

const GROUP_NAMES: &[&str] = &[
    "Engineering",
    "Sales",
    "Équipe Données",
    "Finance",
    "People Ops",
    "Support",
    "Security",
    "開発チーム",
    "Operations",
    "Contractors",
    "Admins",
    "VPN Users",
];

/// `(catalog name, display name, sso type)` of the application catalog.
const APP_CATALOG: &[(&str, &str, &str)] = &[
    ("aws-sso", "AWS SSO", "saml"),
    ("slack", "Slack", "saml"),
    ("github", "GitHub", "saml"),
    ("saml", "Custom SAML App", "saml"),
    ("google-workspace", "Google Workspace", "saml"),
    ("bookmark", "Intranet Wiki", "bookmark"),
    ("salesforce", "Salesforce", "saml"),
    ("oidc", "Custom OIDC App", "oidc"),
    ("zoom", "Zoom", "saml"),
];

/// Generates the objects of one organization of a generated tenant.
#[derive(Debug, Clone)]
pub(crate) struct Generator {
    pub(crate) seed: u64,
    pub(crate) org: u32,
    pub(crate) org_id: String,
    org_name: Option<String>,
    company: String,
    pub(crate) domain: String,
    pub(crate) users: usize,
    pub(crate) groups: usize,
    applications: usize,
    dangling: usize,
    /// The rest of the directory (see `crate::directory`).
    pub(crate) systems: usize,
    pub(crate) system_groups: usize,
    pub(crate) policies: usize,
    pub(crate) administrators: usize,
    /// Administrators with the same id in every organization (MSP administrators).
    pub(crate) shared_administrators: usize,
    pub(crate) apple_mdm: bool,
}

impl Generator {
    /// The generator of organization `org` (0-based) of `spec`.
    pub(crate) fn new(spec: &TenantSpec, org: u32) -> Generator {
        let (name, label) = match ORGANIZATIONS.get(org as usize) {
            Some(&(name, label)) => (name.to_owned(), label.to_owned()),
            None => (format!("Simulated Org {org}"), format!("org{org}")),
        };
        // The last of several organizations has no display name, like the recording.
        let org_name =
            (spec.organizations < 2 || org as usize + 1 < spec.organizations).then(|| name.clone());
        Generator {
            seed: spec.seed,
            org,
            org_id: object_id(spec.seed, KIND_ORG, org, 0),
            org_name,
            company: name,
            domain: format!("{label}.example.com"),
            users: spec.users,
            groups: spec.groups,
            applications: spec.applications,
            dangling: spec.dangling_members,
            systems: spec.system_count(),
            system_groups: spec.system_group_count(),
            policies: spec.policies,
            administrators: spec.administrators,
            shared_administrators: if spec.organizations > 1 {
                spec.administrators.min(2)
            } else {
                0
            },
            apple_mdm: spec.apple_mdm,
        }
    }

    pub(crate) fn rng(&self, kind: u64, index: usize) -> Rng {
        Rng::for_object(self.seed, &[u64::from(self.org), kind, index as u64])
    }

    /// Objects of a collection (before any mutation).
    pub(crate) fn count(&self, collection: Collection) -> usize {
        match collection {
            Collection::Users => self.users,
            Collection::Groups => self.groups,
            Collection::Applications => self.applications,
            Collection::Systems => self.systems,
            Collection::SystemGroups => self.system_groups,
            Collection::Policies => self.policies,
            Collection::Administrators => self.administrators,
            Collection::AppleMdms => usize::from(self.apple_mdm),
            Collection::AppleDevices => self.apple_device_count(),
        }
    }

    /// Object `index` of a collection. Defined for any index, also past the count:
    /// mutations add users that way.
    pub(crate) fn object(&self, collection: Collection, index: usize) -> Value {
        match collection {
            Collection::Users => self.user(index),
            Collection::Groups => self.group(index),
            Collection::Applications => self.application(index),
            Collection::Systems => self.system(index),
            Collection::SystemGroups => self.system_group(index),
            Collection::Policies => self.policy(index),
            Collection::Administrators => self.administrator(index),
            Collection::AppleMdms => self.apple_mdm(index),
            Collection::AppleDevices => self.apple_device(index),
        }
    }

    /// The id of object `index` of a collection.
    pub(crate) fn id(&self, collection: Collection, index: usize) -> String {
        match collection {
            Collection::Users => self.user_id(index),
            Collection::Groups => self.group_id(index),
            Collection::Applications => self.application_id(index),
            Collection::Systems => self.system_id(index),
            Collection::SystemGroups => self.system_group_id(index),
            Collection::Policies => self.policy_id(index),
            Collection::Administrators => self.administrator_id(index),
            Collection::AppleMdms => self.apple_mdm_id(index),
            Collection::AppleDevices => self.apple_device_id(index),
        }
    }

    /// The tenant's seed.
    pub(crate) fn seed(&self) -> u64 {
        self.seed
    }

    /// The mail domain of the organization's users (`acme.example.com`).
    pub(crate) fn domain(&self) -> &str {
        &self.domain
    }

    /// The `/api/organizations` record.
    pub(crate) fn organization(&self) -> Value {
        json!({
            "_id": self.org_id,
            "id": self.org_id,
            "displayName": self.org_name,
            "logoUrl": null,
            "created": created(self.seed, KIND_ORG, self.org as usize),
        })
    }

    pub(crate) fn user_id(&self, i: usize) -> String {
        object_id(self.seed, KIND_USER, self.org, i as u64)
    }

    pub(crate) fn group_id(&self, g: usize) -> String {
        object_id(self.seed, KIND_GROUP, self.org, g as u64)
    }

    pub(crate) fn application_id(&self, a: usize) -> String {
        object_id(self.seed, KIND_APP, self.org, a as u64)
    }

    /// User `i` as `/api/systemusers` returns it.
    pub(crate) fn user(&self, i: usize) -> Value {
        let mut rng = self.rng(KIND_USER, i);
        let &(first, first_ascii) = rng.pick(FIRST_NAMES);
        let &(last, last_ascii) = rng.pick(LAST_NAMES);
        let id = self.user_id(i);
        let username = format!("{first_ascii}.{last_ascii}{i}");
        let created_secs = created_secs(KIND_USER, i);

        let state = match rng.below(100) {
            0..=83 => Some("ACTIVATED"),
            84..=89 => Some("STAGED"),
            90..=95 => Some("SUSPENDED"),
            _ => None,
        };
        let activated = match state {
            Some("STAGED") => false,
            Some(_) => true,
            None => rng.percent(70),
        };
        let email = match rng.below(100) {
            0..=1 => None,
            2 => Some(String::new()),
            _ => Some(format!("{username}@{}", self.domain)),
        };
        let employee_type = match rng.below(100) {
            0..=1 => "service",
            2 => "bot",
            _ => rng.pick(EMPLOYEE_TYPES),
        };
        let mfa_configured = rng.percent(60);
        let mfa = match rng.below(100) {
            0..=2 => Some(Value::Null),
            3..=5 => None,
            _ if rng.percent(4) => Some(json!({
                "configured": mfa_configured,
                "exclusion": true,
                "exclusionDays": 14,
                "exclusionUntil": iso8601(created_secs + 400 * DAY, 0),
            })),
            _ => Some(json!({"configured": mfa_configured, "exclusion": false})),
        };
        let totp = (mfa_configured && rng.percent(85)) || rng.percent(3);
        let overall = if mfa_configured {
            "ENROLLED"
        } else {
            *rng.pick(ENROLLMENT)
        };
        let enrollment = rng.percent(75).then(|| {
            json!({
                "overallStatus": overall,
                "totpStatus": if totp { "ENROLLED" } else { "NOT_ENROLLED" },
                "webAuthnStatus": if mfa_configured && !totp { "ENROLLED" } else { "NOT_ENROLLED" },
                "pushStatus": "NOT_ENROLLED",
            })
        });
        let expiration = rng
            .percent(70)
            .then(|| iso8601(created_secs + (90 + rng.below(400)) * DAY, 0));
        let never_expires = expiration.is_none() && rng.percent(50);
        let manager =
            (i > 0 && rng.percent(40)).then(|| self.user_id(rng.below(i as u64) as usize));
        let employee_id = match rng.below(10) {
            0..=5 => Value::from(format!("E{i:06}")),
            6..=7 => Value::Null,
            _ => Value::from(""),
        };
        let locked = rng.percent(2);
        let sudo = rng.percent(5);

        // Two halves: one `json!` of ~50 keys exceeds the macro recursion limit.
        let identity = json!({
            "_id": id,
            "id": id,
            "account_locked": locked,
            "account_locked_date": if locked { Value::from(iso8601(created_secs + 30 * DAY, 0)) } else { Value::Null },
            "activated": activated,
            "addresses": [],
            "allow_public_key": true,
            "alternateEmail": "",
            "attributes": [],
            "badLoginAttempts": if locked { 10 } else { 0 },
            "company": self.company,
            "costCenter": rng.pick(COST_CENTERS),
            "created": iso8601(created_secs, (rng.below(1000)) as u32),
            "department": rng.pick(DEPARTMENTS),
            "description": "",
            "disableDeviceMaxLoginAttempts": false,
            "displayname": format!("{first} {last}"),
            "employeeIdentifier": employee_id,
            "employeeType": employee_type,
            "enable_managed_uid": false,
            "enable_user_portal_multifactor": mfa_configured,
            "external_dn": "",
            "external_source_type": "",
            "externally_managed": false,
            "firstname": first,
            "jobTitle": rng.pick(JOB_TITLES),
            "lastname": last,
        });
        let settings = json!({
            "ldap_binding_user": rng.percent(1),
            "location": rng.pick(LOCATIONS),
            "middlename": "",
            "organization": self.org_id,
            "password_expired": false,
            "password_expiration_date": expiration,
            "password_never_expires": never_expires,
            "passwordless_sudo": sudo && rng.percent(30),
            "phoneNumbers": [],
            "samba_service_user": rng.percent(1),
            "ssh_keys": [],
            "sudo": sudo,
            "suspended": state == Some("SUSPENDED"),
            "systemUsername": "",
            "totp_enabled": totp,
            "unix_guid": 5000 + i,
            "unix_uid": 5000 + i,
            "username": username,
        });
        let mut map = Map::new();
        for half in [identity, settings] {
            if let Value::Object(fields) = half {
                map.extend(fields);
            }
        }
        if let Some(state) = state {
            map.insert("state".into(), state.into());
        }
        if let Some(email) = email {
            map.insert("email".into(), email.into());
        }
        if let Some(mfa) = mfa {
            map.insert("mfa".into(), mfa);
        }
        if let Some(enrollment) = enrollment {
            map.insert("mfaEnrollment".into(), enrollment);
        }
        if let Some(manager) = manager {
            map.insert("manager".into(), manager.into());
        }
        self.apply_user_edge_case(i, created_secs, &mut map);
        Value::Object(map)
    }

    /// Overwrites random traits of the first users with the documented edge cases.
    fn apply_user_edge_case(&self, i: usize, created_secs: u64, user: &mut Map<String, Value>) {
        let set = |user: &mut Map<String, Value>, key: &str, value: Value| {
            user.insert(key.to_owned(), value);
        };
        let not_enrolled = json!({
            "overallStatus": "NOT_ENROLLED",
            "totpStatus": "NOT_ENROLLED",
            "webAuthnStatus": "NOT_ENROLLED",
            "pushStatus": "NOT_ENROLLED",
        });
        match i {
            0 => {
                set(user, "state", "ACTIVATED".into());
                set(user, "activated", true.into());
                set(user, "suspended", false.into());
                set(user, "mfa", json!({"configured": true, "exclusion": false}));
                set(user, "totp_enabled", true.into());
                set(
                    user,
                    "mfaEnrollment",
                    json!({"overallStatus": "ENROLLED", "totpStatus": "ENROLLED",
                           "webAuthnStatus": "NOT_ENROLLED", "pushStatus": "NOT_ENROLLED"}),
                );
                set(user, "sudo", true.into());
                set(user, "employeeIdentifier", "E000000".into());
                set(user, "employeeType", "Full-Time".into());
                set(user, "jobTitle", "IT Administrator".into());
            }
            1 | 2 => {
                user.remove("state");
                user.insert("activated".into(), (i == 1).into());
                user.insert("suspended".into(), false.into());
            }
            3 => {
                set(user, "state", "STAGED".into());
                set(user, "activated", false.into());
                set(user, "suspended", false.into());
            }
            4 => {
                set(user, "state", "SUSPENDED".into());
                set(user, "activated", true.into());
                set(user, "suspended", true.into());
            }
            5 => {
                set(user, "state", "ACTIVATED".into());
                set(user, "activated", false.into());
                set(user, "suspended", false.into());
            }
            6 => {
                user.remove("email");
            }
            7 => set(user, "email", "".into()),
            8 => set(user, "email", format!("pat.case@{}", self.domain).into()),
            9 => set(
                user,
                "email",
                format!("Pat.Case@{}", self.domain.to_uppercase()).into(),
            ),
            10 => {
                set(user, "employeeType", "service".into());
                set(user, "username", "svc-backup".into());
                set(user, "email", format!("svc-backup@{}", self.domain).into());
                set(user, "firstname", "".into());
                set(user, "lastname", "".into());
                set(user, "displayname", "Backup Service".into());
            }
            11 => {
                set(user, "employeeType", "bot".into());
                set(user, "username", "ci-bot".into());
                set(user, "email", format!("ci-bot@{}", self.domain).into());
                set(user, "firstname", "CI".into());
                set(user, "lastname", "Bot".into());
                set(user, "displayname", "CI Bot 🤖".into());
            }
            12 => {
                set(user, "firstname", "Zoë".into());
                set(user, "lastname", "Ødegaard-Nguyễn".into());
                set(user, "displayname", "Zoë Ødegaard-Nguyễn".into());
            }
            13 => {
                set(user, "mfa", Value::Null);
                set(user, "totp_enabled", false.into());
                user.remove("mfaEnrollment");
            }
            14 => {
                user.remove("mfa");
                user.remove("mfaEnrollment");
                user.insert("totp_enabled".into(), false.into());
            }
            15 => {
                set(
                    user,
                    "mfa",
                    json!({"configured": false, "exclusion": true, "exclusionDays": 7,
                           "exclusionUntil": iso8601(created_secs + 3650 * DAY, 0)}),
                );
                set(user, "totp_enabled", false.into());
                set(user, "mfaEnrollment", not_enrolled);
            }
            16 => {
                set(
                    user,
                    "mfa",
                    json!({"configured": false, "exclusion": false}),
                );
                set(user, "totp_enabled", false.into());
                set(
                    user,
                    "mfaEnrollment",
                    json!({"overallStatus": "ENROLLED", "totpStatus": "NOT_ENROLLED",
                           "webAuthnStatus": "ENROLLED", "pushStatus": "NOT_ENROLLED"}),
                );
            }
            17 => {
                set(user, "account_locked", true.into());
                set(
                    user,
                    "account_locked_date",
                    iso8601(created_secs + 20 * DAY, 0).into(),
                );
                set(user, "badLoginAttempts", 10.into());
                set(user, "password_expired", true.into());
                set(
                    user,
                    "password_expiration_date",
                    iso8601(created_secs + 10 * DAY, 0).into(),
                );
                set(user, "password_never_expires", false.into());
            }
            18 => {
                set(
                    user,
                    "mfa",
                    json!({"configured": false, "exclusion": false}),
                );
                set(user, "totp_enabled", true.into());
                set(user, "mfaEnrollment", not_enrolled);
            }
            19 => set(user, "employeeType", "Service".into()),
            20 => {
                set(user, "firstname", "".into());
                set(user, "lastname", "".into());
                set(user, "displayname", "".into());
            }
            21 => {
                set(user, "state", "ACTIVATED".into());
                set(user, "activated", true.into());
                set(user, "suspended", true.into());
            }
            _ => {}
        }
    }

    /// True for the empty last group.
    fn is_empty_group(&self, g: usize) -> bool {
        self.groups >= 2 && g == self.groups - 1
    }

    /// Group `g` as `/api/v2/usergroups` returns it.
    pub(crate) fn group(&self, g: usize) -> Value {
        let id = self.group_id(g);
        if g == 0 {
            // Like JumpCloud's own default group in the recording.
            return json!({
                "attributes": null,
                "id": id,
                "name": "All Users",
                "type": "user_group",
                "email": "",
                "description": "",
                "membershipMethod": "STATIC",
                "memberQuery": null,
                "memberQueryExemptions": [],
                "memberSuggestionsNotify": false,
            });
        }
        if self.is_empty_group(g) {
            return json!({
                "attributes": {"sudo": {"enabled": false, "withoutPassword": false}},
                "id": id,
                "name": "Alumni",
                "type": "user_group",
                "email": "",
                "description": "Nobody is left in here",
                "membershipMethod": "STATIC",
                "memberQuery": null,
                "memberQueryExemptions": [],
                "memberSuggestionsNotify": false,
            });
        }
        let mut rng = self.rng(KIND_GROUP, g);
        let base = GROUP_NAMES[(g - 1) % GROUP_NAMES.len()];
        let name = format!("{base} {g}");
        let slug = format!("group-{g}");
        let sudo_enabled = g == 1 || rng.percent(20);
        let attributes = if g % 5 == 4 {
            Value::Null
        } else {
            json!({
                "sudo": {"enabled": sudo_enabled, "withoutPassword": sudo_enabled && rng.percent(30)},
                "ldapGroups": [{"name": slug}],
                "posixGroups": [{"id": 6000 + g, "name": slug}],
            })
        };
        let method = [
            "STATIC",
            "STATIC",
            "DYNAMIC_AUTOMATED",
            "DYNAMIC_REVIEW_REQUIRED",
            "NOTSET",
        ][g % 5];
        let query = if method.starts_with("DYNAMIC") {
            json!({"queryType": "FilterQuery",
                   "filters": [{"field": "department", "operator": "eq", "value": rng.pick(DEPARTMENTS)}]})
        } else {
            Value::Null
        };
        json!({
            "attributes": attributes,
            "id": id,
            "name": name,
            "type": "user_group",
            "email": if g.is_multiple_of(3) { String::new() } else { format!("{slug}@{}", self.domain) },
            "description": format!("Members of {base}"),
            "membershipMethod": method,
            "memberQuery": query,
            "memberQueryExemptions": [],
            "memberSuggestionsNotify": false,
        })
    }

    /// Application `a` as `/api/applications` returns it, `config` with fake secrets.
    pub(crate) fn application(&self, a: usize) -> Value {
        let id = self.application_id(a);
        let mut rng = self.rng(KIND_APP, a);
        let &(catalog, display, sso_type) = &APP_CATALOG[a % APP_CATALOG.len()];
        let label = match a {
            2 => "Équipe Portail ✓".to_owned(),
            3 => String::new(),
            _ if a < APP_CATALOG.len() => display.to_owned(),
            _ => format!("{display} ({a})"),
        };
        let created_secs = created_secs(KIND_APP, a);
        let sso = match sso_type {
            "saml" => json!({
                "type": "saml",
                "jit": rng.percent(30),
                "beta": false,
                "hidden": false,
                "idpCertExpirationAt": iso8601(created_secs + 5 * 365 * DAY, 0),
            }),
            other => json!({"type": other, "beta": false, "hidden": a % 7 == 6}),
        };
        json!({
            "_id": id,
            "id": id,
            "active": a % 4 != 2,
            "name": catalog,
            "displayName": display,
            "displayLabel": label,
            "beta": false,
            "color": null,
            "organization": self.org_id,
            "logo": {"url": format!("https://static.example.com/applications/logos/{catalog}.png"), "color": ""},
            "ssoUrl": format!("https://sso.example.com/saml2/{catalog}-{a}"),
            "learnMore": format!("https://support.example.com/articles/sso-{catalog}"),
            "description": if a.is_multiple_of(3) { String::new() } else { format!("{display} for {}", self.company) },
            "config": fake_config(catalog, a),
            "databaseAttributes": [],
            "created": iso8601(created_secs, rng.below(1000) as u32),
            "sso": sso,
        })
    }

    /// The group memberships and application bindings described in the module header.
    pub(crate) fn graph(&self) -> Graph {
        let (n, groups, apps) = (self.users, self.groups, self.applications);
        let mut members: Vec<Vec<u32>> = vec![Vec::new(); groups];
        if groups > 0 {
            members[0] = (0..n.min(BIG_GROUP_MEMBERS) as u32).collect();
        }
        // Groups 1..groups-1 are the middle ones; the last (when >= 2) stays empty.
        let middle = groups.saturating_sub(2);
        if middle > 0 {
            for i in 0..n {
                let first = 1 + i % middle;
                let second = 1 + (i / middle) % middle;
                members[first].push(i as u32);
                if second != first {
                    members[second].push(i as u32);
                }
            }
            // `second` can place user i into a group after a larger index was pushed.
            for list in &mut members[1..=middle] {
                list.sort_unstable();
            }
        }
        // Dangling ids are stored as `DANGLING | k`, after every real user, so lists
        // stay sorted. Without groups there is nowhere to put them, so there are none.
        let dangling_count = if groups > 0 { self.dangling } else { 0 };
        let dangling: Vec<String> = (0..dangling_count)
            .map(|k| object_id(self.seed, KIND_DELETED, self.org, k as u64))
            .collect();
        if groups > 0 {
            members[0].extend((0..dangling.len()).map(|k| DANGLING | k as u32));
        }

        let mut app_direct_users = vec![Vec::new(); apps];
        let mut app_groups = vec![Vec::new(); apps];
        for a in 0..apps {
            if apps >= 3 && a == apps - 1 {
                continue; // the unbound application
            }
            let (direct, bound): (Vec<usize>, Vec<usize>) = match a {
                0 => ((0..3).collect(), vec![0]),
                1 => (
                    vec![3, 4],
                    if groups >= 2 {
                        vec![groups - 1]
                    } else {
                        vec![]
                    },
                ),
                _ => (
                    (0..3).map(|k| (a * 37 + k * 101) % n.max(1)).collect(),
                    if middle > 0 {
                        vec![1 + a % middle]
                    } else {
                        vec![]
                    },
                ),
            };
            let mut direct: Vec<u32> = direct
                .into_iter()
                .filter(|&u| u < n)
                .map(|u| u as u32)
                .collect();
            direct.sort_unstable();
            direct.dedup();
            app_direct_users[a] = direct;
            app_groups[a] = bound
                .into_iter()
                .filter(|&g| g < groups)
                .map(|g| g as u32)
                .collect();
        }
        let directory = self.directory();
        Graph {
            members,
            dangling,
            app_direct_users,
            app_groups,
            directory,
        }
    }
}

/// A MongoDB-ObjectId-like id; see the module header for the layout.
pub(crate) fn object_id(seed: u64, kind: u64, org: u32, index: u64) -> String {
    let time = created_secs(kind, index as usize) as u32;
    let tag = mix(seed) & 0xffff;
    format!(
        "{time:08x}{tag:04x}{kind:01x}{:03x}{:08x}",
        org & 0xfff,
        index & 0xffff_ffff
    )
}

/// Creation time of object `index` of a kind: organizations first, then groups,
/// applications and users, each collection in index order.
pub(crate) fn created_secs(kind: u64, index: usize) -> u64 {
    let index = index as u64;
    match kind {
        KIND_ORG => EPOCH - 400 * DAY + index * DAY,
        KIND_GROUP => EPOCH + index * 3600,
        KIND_APP => EPOCH + 30 * DAY + index * 7200,
        _ => EPOCH + 60 * DAY + index * 41,
    }
}

fn created(seed: u64, kind: u64, index: usize) -> String {
    iso8601(
        created_secs(kind, index),
        (mix(seed ^ index as u64) % 1000) as u32,
    )
}

/// An application `config` like JumpCloud's SAML connector config, with fake IdP
/// certificate and private-key text that an integration must never pass on.
fn fake_config(catalog: &str, a: usize) -> Value {
    let marker = crate::FAKE_SECRET_MARKER;
    let field = |kind: &str, label: &str, position: u32, value: Value| {
        json!({"type": kind, "label": label, "position": position, "readOnly": false,
               "required": true, "visible": true, "toggle": null, "value": value})
    };
    json!({
        "acsUrl": field("text", "ACS URL", 1, format!("https://{catalog}.example.net/saml/acs").into()),
        "spEntityId": field("text", "SP Entity ID", 2, format!("urn:example:{catalog}:{a}").into()),
        "idpEntityId": field("text", "IdP Entity ID", 3, format!("JumpCloud-{catalog}-{a}").into()),
        "idpCertificate": field("file", "IdP Certificate", 4, format!(
            "-----BEGIN CERTIFICATE-----\n{marker}-CERTIFICATE-APP-{a}\nTUlJRkFLRUNFUlRJRklDQVRFRk9SVEVTVFM=\n-----END CERTIFICATE-----\n"
        ).into()),
        "idpPrivateKey": field("file", "IdP Private Key", 5, format!(
            "-----BEGIN PRIVATE KEY-----\n{marker}-PRIVATE-KEY-APP-{a}\nTUlJRkFLRVBSSVZBVEVLRVlGT1JURVNUUw==\n-----END PRIVATE KEY-----\n"
        ).into()),
        "constantAttributes": {"type": "list", "label": "Constant Attributes", "value": []},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_24_hex_unique_and_ordered_by_index() {
        let spec = TenantSpec {
            users: 2000,
            ..TenantSpec::default()
        };
        let generator = Generator::new(&spec, 0);
        let ids: Vec<String> = (0..2000).map(|i| generator.user_id(i)).collect();
        assert!(
            ids.iter()
                .all(|id| id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        );
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "id order is index order"
        );
        assert_ne!(generator.user_id(0), generator.group_id(0));
        assert_ne!(generator.user_id(0), Generator::new(&spec, 1).user_id(0));
    }

    #[test]
    fn edge_cases_are_where_documented() {
        let spec = TenantSpec {
            users: 30,
            ..TenantSpec::default()
        };
        let generator = Generator::new(&spec, 0);
        assert!(generator.user(1).get("state").is_none());
        assert_eq!(generator.user(3)["state"], "STAGED");
        assert!(generator.user(6).get("email").is_none());
        assert_eq!(generator.user(7)["email"], "");
        let (a, b) = (generator.user(8), generator.user(9));
        let (a, b) = (a["email"].as_str().unwrap(), b["email"].as_str().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.to_lowercase(), b.to_lowercase());
        assert!(generator.user(13)["mfa"].is_null());
        assert!(generator.user(14).get("mfa").is_none());
        assert_eq!(generator.user(10)["employeeType"], "service");
        assert_eq!(generator.user(11)["employeeType"], "bot");
    }

    #[test]
    fn graph_shape() {
        let spec = TenantSpec {
            users: 300,
            groups: 6,
            applications: 5,
            ..TenantSpec::default()
        };
        let graph = Generator::new(&spec, 0).graph();
        assert_eq!(graph.members[0].len(), BIG_GROUP_MEMBERS + 1);
        assert!(graph.members[5].is_empty());
        for list in &graph.members {
            assert!(
                list.windows(2).all(|w| w[0] < w[1]),
                "member lists are sorted and unique"
            );
        }
        assert_eq!(graph.app_direct_users[0], vec![0, 1, 2]);
        assert_eq!(graph.app_groups[1], vec![5]);
        assert!(graph.app_groups[4].is_empty() && graph.app_direct_users[4].is_empty());
    }
}
