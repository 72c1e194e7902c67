//! Apple MDM: the `jumpcloud_apple_mdm` configuration (from `GET /api/v2/applemdms`),
//! its `jumpcloud_apple_device`s (from `GET /api/v2/applemdms/{id}/devices`) and the
//! `HAS` edge from each device to its MDM (`data-model-directory.md`).
//!
//! Types, classes and keys are graph-jumpcloud's, so J1 queries written for it keep
//! working; the device is made schema-valid (the 18 Device properties, `deviceId` an
//! array) and survives a device without `deviceInformation` or `securityInfo`.

use super::device::{self, REQUIRED};
use super::fields::{Properties, Record};
use super::{ConvertError, HAS, Object};
use crate::model::{Entity, Relationship, Value};

/// `_type` of an Apple MDM configuration.
pub const APPLE_MDM_TYPE: &str = "jumpcloud_apple_mdm";
/// `_class` of an Apple MDM configuration.
pub const APPLE_MDM_CLASSES: &[&str] = &["Configuration"];
/// `_type` of a device enrolled in Apple MDM.
pub const APPLE_DEVICE_TYPE: &str = "jumpcloud_apple_device";
/// `_class` of a device enrolled in Apple MDM.
pub const APPLE_DEVICE_CLASSES: &[&str] = &["Device"];
/// `jumpcloud_apple_device` HAS `jumpcloud_apple_mdm` (graph-jumpcloud's direction).
pub const APPLE_DEVICE_HAS_MDM_TYPE: &str = "jumpcloud_apple_device_has_mdm";

/// The name of an MDM configuration without one (JumpCloud leaves it `""`).
const DEFAULT_MDM_NAME: &str = "Apple MDM";

/// Converts an Apple MDM configuration; `raw` is the JSON text as received (it holds
/// no secrets: APNs and DEP keys are not part of this answer).
pub fn apple_mdm_entity(mdm: &Object, raw: &str) -> Result<Entity, ConvertError> {
    let record = Record::new("apple mdm", mdm);
    let id = record.id()?;
    let name = record.non_empty_str("name")?.unwrap_or(DEFAULT_MDM_NAME);
    // An APNs push topic exists once an Apple push certificate was uploaded.
    let apns_configured = record.non_empty_str("apnsPushTopic")?.is_some();

    let mut props = Properties::default();
    props
        .set("id", id)
        .set("name", name)
        .set("displayName", name)
        .set_some("apnsCertExpiry", record.timestamp("apnsCertExpiry"))
        .set_some(
            "depAccessTokenExpiry",
            record.timestamp("depAccessTokenExpiry"),
        )
        .set_some("depServerTokenState", record.str("depServerTokenState")?)
        .set_some(
            "appleCertSerialNumber",
            record.str("appleCertSerialNumber")?,
        )
        .set_some(
            "allowMobileUserEnrollment",
            record.maybe_bool("allowMobileUserEnrollment"),
        )
        .set("apnsConfigured", apns_configured);

    Ok(Entity {
        key: id.to_owned(),
        entity_type: APPLE_MDM_TYPE,
        classes: APPLE_MDM_CLASSES,
        properties: props.into_vec(),
        raw_data: Some(raw.to_owned()),
    })
}

/// The operating system family of an Apple device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    MacOs,
    Ios,
    IpadOs,
    TvOs,
}

impl Platform {
    /// From `mdmOsFamily`, else from the model name (`modelName`, else `modelFamily`).
    pub fn detect(os_family: Option<&str>, model: Option<&str>) -> Option<Platform> {
        let by_family = os_family.and_then(|family| match family.trim().to_lowercase().as_str() {
            "macos" | "darwin" | "osx" | "mac" => Some(Platform::MacOs),
            "ios" => Some(Platform::Ios),
            "ipados" => Some(Platform::IpadOs),
            "tvos" => Some(Platform::TvOs),
            _ => None,
        });
        by_family.or_else(|| {
            let model = model?.trim().to_lowercase();
            if model.starts_with("mac") || model.starts_with("imac") {
                Some(Platform::MacOs)
            } else if model.starts_with("ipad") {
                Some(Platform::IpadOs)
            } else if model.starts_with("iphone") || model.starts_with("ipod") {
                Some(Platform::Ios)
            } else if model.starts_with("apple tv") {
                Some(Platform::TvOs)
            } else {
                None
            }
        })
    }

    /// `osName`.
    pub fn os_name(self) -> &'static str {
        match self {
            Platform::MacOs => "macOS",
            Platform::Ios => "iOS",
            Platform::IpadOs => "iPadOS",
            Platform::TvOs => "tvOS",
        }
    }

    /// `osType` (one of the Device schema's values).
    pub fn os_type(self) -> &'static str {
        match self {
            Platform::MacOs => "darwin",
            Platform::Ios | Platform::IpadOs => "ios",
            Platform::TvOs => "other",
        }
    }

    /// `category`.
    pub fn category(self) -> &'static str {
        match self {
            Platform::MacOs => "endpoint",
            Platform::Ios | Platform::IpadOs => "mobile",
            Platform::TvOs => "other",
        }
    }
}

/// Security facts copied from `securityInfo` when they are booleans:
/// (property, source field).
const SECURITY_FLAGS: [(&str, &str); 7] = [
    ("encrypted", "securityInfo.filevaultEnabled"),
    ("screenLockEnabled", "securityInfo.passcodePresent"),
    ("passcodeCompliant", "securityInfo.passcodeCompliant"),
    (
        "userApprovedEnrollment",
        "securityInfo.userApprovedEnrollment",
    ),
    ("enrolledViaDep", "securityInfo.enrolledViaDep"),
    ("isUserEnrollment", "securityInfo.isUserEnrollment"),
    ("recoveryLockEnabled", "securityInfo.recoveryLockEnabled"),
];

/// Enrollment facts copied when they are booleans: (property, source field).
const ENROLLMENT_FLAGS: [(&str, &str); 4] = [
    ("enrolled", "enrolled"),
    ("depRegistered", "depRegistered"),
    (
        "hasActivationLockBypassCodes",
        "hasActivationLockBypassCodes",
    ),
    ("isSupervised", "deviceInformation.isSupervised"),
];

/// Converts a device of the MDM `mdm_id`; `raw` is the JSON text as received.
/// A missing (or non-object) `deviceInformation` or `securityInfo` reads as `{}`; IMEI,
/// ICCID and carrier fields stay in the raw data only.
pub fn apple_device_entity(
    device: &Object,
    raw: &str,
    mdm_id: &str,
) -> Result<Entity, ConvertError> {
    let record = Record::new("apple device", device);
    let id = record.id()?;
    let info_str = |field: &str| {
        record
            .lenient(&format!("deviceInformation.{field}"))
            .and_then(serde_json::Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let serial = record.non_empty_str("serialNumber")?;
    let udid = record.non_empty_str("udid")?;
    let model = info_str("modelName").or(record.non_empty_str("modelFamily")?);
    let platform = Platform::detect(record.non_empty_str("mdmOsFamily")?, model);
    let os_name = platform.map(Platform::os_name);
    let os_version = record.non_empty_str("osVersion")?;
    let os_details = match (os_name, os_version) {
        (Some(name), Some(version)) => Some(format!("{name} {version}")),
        _ => None,
    };
    let name = info_str("deviceName").or(serial).or(udid).unwrap_or(id);
    let mac = info_str("wifiMac").and_then(device::mac_address);
    let created = record.timestamp("createdAt");

    let mut props = Properties::default();
    props
        .set("id", id)
        .set("name", name)
        .set("displayName", name)
        .set(
            "category",
            Value::opt_text(platform.map(Platform::category)),
        )
        .set("make", "Apple")
        .set("model", Value::opt_text(model))
        .set("serial", Value::opt_text(serial))
        .set(
            "deviceId",
            udid.map_or(Value::Null, |u| Value::TextList(vec![u.to_owned()])),
        )
        .set(
            "macAddresses",
            mac.clone()
                .map_or(Value::Null, |m| Value::TextList(vec![m])),
        )
        .set_some("macAddress", mac)
        .set("osName", Value::opt_text(os_name))
        .set("osType", Value::opt_text(platform.map(Platform::os_type)))
        .set("osVersion", Value::opt_text(os_version))
        .set("osDetails", Value::opt_text(os_details))
        // Not in the MDM API: the required properties are present and null.
        .set("lastSeenOn", Value::Null)
        .set("hostname", Value::Null)
        .set("fqdn", Value::Null)
        .set("ipv4Addresses", Value::Null)
        .set("ipv6Addresses", Value::Null)
        .set("privateIpAddresses", Value::Null)
        .set("publicIpAddresses", Value::Null)
        .set_some("createdOn", created)
        .set_some("createdAt", created)
        .set("appleMdmId", mdm_id);
    for (property, field) in ENROLLMENT_FLAGS.into_iter().chain(SECURITY_FLAGS) {
        props.set_some(property, record.maybe_bool(field));
    }
    if let Some(capacity) = record.lenient("deviceInformation.deviceCapacity") {
        let value = match (capacity.as_i64(), capacity.as_f64()) {
            (Some(int), _) => Some(Value::Int(int)),
            (None, Some(float)) => Some(Value::Float(float)),
            _ => None,
        };
        props.set_some("deviceCapacity", value);
    }
    let properties = props.into_vec();
    debug_assert!(
        REQUIRED
            .iter()
            .all(|r| properties.iter().any(|(n, _)| n == r))
    );

    Ok(Entity {
        key: id.to_owned(),
        entity_type: APPLE_DEVICE_TYPE,
        classes: APPLE_DEVICE_CLASSES,
        properties,
        raw_data: Some(raw.to_owned()),
    })
}

/// The `HAS` edge from a device to the MDM it was listed under.
pub fn apple_device_has_mdm(device_key: &str, mdm_key: &str) -> Relationship {
    Relationship::direct(APPLE_DEVICE_HAS_MDM_TYPE, HAS, device_key, mdm_key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::test_support::{object, recorded};
    use serde_json::{Value as Json, json};

    const MDM_ID: &str = "6516cf109f533600018db6e7";

    fn device(value: Json) -> Entity {
        let object = object(value);
        let raw = serde_json::to_string(&object).unwrap();
        apple_device_entity(&object, &raw, MDM_ID).expect("converts")
    }

    fn prop<'a>(entity: &'a Entity, name: &str) -> Option<&'a Value> {
        entity.property(name)
    }

    #[test]
    fn the_recorded_mdm() {
        let mdms = recorded("/api/v2/applemdms");
        assert_eq!(mdms.len(), 2, "one MDM in two recordings");
        let raw = serde_json::to_string(&mdms[0]).unwrap();
        let entity = apple_mdm_entity(&mdms[0], &raw).expect("converts");
        assert_eq!(entity.key, MDM_ID);
        assert_eq!(entity.entity_type, "jumpcloud_apple_mdm");
        assert_eq!(entity.classes, ["Configuration"]);
        assert_eq!(prop(&entity, "name"), Some(&Value::from("Apple MDM")));
        assert_eq!(
            prop(&entity, "displayName"),
            Some(&Value::from("Apple MDM"))
        );
        assert_eq!(
            prop(&entity, "apnsCertExpiry"),
            Some(&Value::Int(1_727_534_900_000))
        );
        assert_eq!(prop(&entity, "depAccessTokenExpiry"), None);
        assert_eq!(
            prop(&entity, "depServerTokenState"),
            Some(&Value::from("missing"))
        );
        assert_eq!(
            prop(&entity, "appleCertSerialNumber"),
            Some(&Value::from("0000000000000001"))
        );
        assert_eq!(
            prop(&entity, "allowMobileUserEnrollment"),
            Some(&Value::Bool(false))
        );
        assert_eq!(prop(&entity, "apnsConfigured"), Some(&Value::Bool(true)));
        for raw_only in [
            "dep",
            "ades",
            "appleCertCreatorAppleID",
            "apnsPushTopic",
            "webLink",
        ] {
            assert_eq!(prop(&entity, raw_only), None, "{raw_only}");
        }
        assert_eq!(entity.raw_data.as_deref(), Some(raw.as_str()));
    }

    #[test]
    fn an_mdm_without_a_push_topic_is_not_configured_and_keeps_its_name() {
        let mdm = object(
            json!({"id": "m1", "name": " Corp MDM ", "apnsPushTopic": "",
                                "depAccessTokenExpiry": "2025-01-01T00:00:00Z"}),
        );
        let entity = apple_mdm_entity(&mdm, "{}").unwrap();
        assert_eq!(prop(&entity, "name"), Some(&Value::from("Corp MDM")));
        assert_eq!(prop(&entity, "apnsConfigured"), Some(&Value::Bool(false)));
        assert_eq!(
            prop(&entity, "depAccessTokenExpiry"),
            Some(&Value::Int(1_735_689_600_000))
        );
    }

    #[test]
    fn the_recorded_mac() {
        let devices = recorded(&format!("/api/v2/applemdms/{MDM_ID}/devices"));
        assert_eq!(devices.len(), 1);
        let raw = serde_json::to_string(&devices[0]).unwrap();
        let entity = apple_device_entity(&devices[0], &raw, MDM_ID).unwrap();
        assert_eq!(entity.key, "6516e83947496b0001ae196f");
        assert_eq!(entity.classes, ["Device"]);
        let expect = [
            ("name", Value::from("Test’s MacBook Pro")),
            ("category", Value::from("endpoint")),
            ("osName", Value::from("macOS")),
            ("osType", Value::from("darwin")),
            ("osVersion", Value::from("13.5.1")),
            ("osDetails", Value::from("macOS 13.5.1")),
            ("make", Value::from("Apple")),
            ("model", Value::from("MacBook Pro")),
            ("serial", Value::from("C02TESTSER01")),
            (
                "deviceId",
                Value::TextList(vec!["00000000-1111-2222-3333-444444444444".into()]),
            ),
            (
                "macAddresses",
                Value::TextList(vec!["02:00:00:00:00:01".into()]),
            ),
            ("macAddress", Value::from("02:00:00:00:00:01")),
            ("createdOn", Value::Int(1_696_000_057_733)),
            ("createdAt", Value::Int(1_696_000_057_733)),
            ("appleMdmId", Value::from(MDM_ID)),
            ("enrolled", Value::Bool(true)),
            ("depRegistered", Value::Bool(false)),
            ("hasActivationLockBypassCodes", Value::Bool(true)),
            ("isSupervised", Value::Bool(true)),
            ("deviceCapacity", Value::Int(1000)),
            ("lastSeenOn", Value::Null),
            ("hostname", Value::Null),
            ("fqdn", Value::Null),
        ];
        for (name, value) in expect {
            assert_eq!(prop(&entity, name), Some(&value), "{name}");
        }
        // `securityInfo: {}`: no security property at all.
        for (property, _) in SECURITY_FLAGS {
            assert_eq!(prop(&entity, property), None, "{property}");
        }
        for required in REQUIRED {
            assert!(prop(&entity, required).is_some(), "{required}");
        }
        assert_eq!(prop(&entity, "status"), None);
        assert_eq!(prop(&entity, "version"), None);
    }

    #[test]
    fn a_device_without_serial_udid_or_device_information() {
        let entity = device(json!({"id": "d1", "osVersion": "17.1"}));
        assert_eq!(prop(&entity, "name"), Some(&Value::from("d1")));
        for null in [
            "serial",
            "deviceId",
            "macAddresses",
            "model",
            "osName",
            "osType",
            "osDetails",
            "category",
        ] {
            assert_eq!(prop(&entity, null), Some(&Value::Null), "{null}");
        }
        assert_eq!(prop(&entity, "osVersion"), Some(&Value::from("17.1")));
        assert_eq!(prop(&entity, "macAddress"), None);
        for required in REQUIRED {
            assert!(prop(&entity, required).is_some(), "{required}");
        }
        // Name fallbacks: serial, then udid.
        let by_udid = device(json!({"id": "d2", "udid": "U-1", "deviceInformation": "odd"}));
        assert_eq!(prop(&by_udid, "name"), Some(&Value::from("U-1")));
        let by_serial = device(json!({"id": "d3", "udid": "U-1", "serialNumber": "S1"}));
        assert_eq!(prop(&by_serial, "name"), Some(&Value::from("S1")));
    }

    #[test]
    fn platforms_by_os_family_then_model() {
        let cases = [
            (Some("macOS"), None, Some(Platform::MacOs)),
            (Some("OSX"), None, Some(Platform::MacOs)),
            (Some("ios"), Some("iPad Pro"), Some(Platform::Ios)),
            (Some("iPadOS"), None, Some(Platform::IpadOs)),
            (Some("tvos"), None, Some(Platform::TvOs)),
            (Some("unknownOS"), Some("iMac"), Some(Platform::MacOs)),
            (None, Some("MacBook Air"), Some(Platform::MacOs)),
            (None, Some("iPad mini"), Some(Platform::IpadOs)),
            (None, Some("iPhone 15"), Some(Platform::Ios)),
            (None, Some("iPod touch"), Some(Platform::Ios)),
            (None, Some("Apple TV 4K"), Some(Platform::TvOs)),
            (None, Some("Vision Pro"), None),
            (None, None, None),
        ];
        for (family, model, expected) in cases {
            assert_eq!(
                Platform::detect(family, model),
                expected,
                "{family:?} {model:?}"
            );
        }
        let phone = device(
            json!({"id": "p1", "mdmOsFamily": "ios", "osVersion": "17.1",
            "deviceInformation": {"modelName": "iPhone 15", "wifiMac": "02-00-00-AB-CD-EF",
                                  "imei": "35 000000 000000 0"},
            "securityInfo": {"passcodePresent": true, "filevaultEnabled": "yes",
                             "passcodeCompliant": false, "enrolledViaDep": true}}),
        );
        assert_eq!(prop(&phone, "category"), Some(&Value::from("mobile")));
        assert_eq!(prop(&phone, "osType"), Some(&Value::from("ios")));
        assert_eq!(prop(&phone, "osDetails"), Some(&Value::from("iOS 17.1")));
        assert_eq!(prop(&phone, "screenLockEnabled"), Some(&Value::Bool(true)));
        assert_eq!(prop(&phone, "encrypted"), None, "not a boolean: left out");
        assert_eq!(prop(&phone, "passcodeCompliant"), Some(&Value::Bool(false)));
        assert_eq!(prop(&phone, "enrolledViaDep"), Some(&Value::Bool(true)));
        assert_eq!(
            prop(&phone, "macAddress"),
            Some(&Value::from("02:00:00:ab:cd:ef"))
        );
        assert!(phone.properties.iter().all(|(n, _)| !n.contains("imei")));
        let tv = device(json!({"id": "t1", "mdmOsFamily": "tvOS"}));
        assert_eq!(prop(&tv, "category"), Some(&Value::from("other")));
        assert_eq!(prop(&tv, "osType"), Some(&Value::from("other")));
    }

    #[test]
    fn device_has_mdm_follows_the_key_convention() {
        let edge = apple_device_has_mdm("6516e83947496b0001ae196f", MDM_ID);
        assert_eq!(edge.relationship_type, "jumpcloud_apple_device_has_mdm");
        assert_eq!(edge.class, "HAS");
        assert_eq!(edge.key, format!("6516e83947496b0001ae196f|has|{MDM_ID}"));
    }
}
