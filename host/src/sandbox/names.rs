//! Names a plugin chooses that the host uses: checked against strict patterns when the
//! plugin is loaded (`describe()`), and for object types when objects arrive, so that
//! none becomes a path, a terminal escape or a key into the host's environment
//! unchecked.
//!
//! | name | rule |
//! |---|---|
//! | plugin id, step ids (output folder names) | `^[a-z0-9][a-z0-9_-]{0,63}$` |
//! | `_type` (declared, and of every object) | `^[A-Za-z0-9][A-Za-z0-9_.-]{2,127}$` (J1: at least 3 characters, snake_case by convention) |
//! | `_class` (declared) | `^[A-Za-z][A-Za-z0-9_]{1,63}$` (every J1 entity and relationship class fits) |
//! | configuration field names | `^[A-Za-z][A-Za-z0-9_]{0,63}$` |
//! | environment variables | `^[A-Z][A-Z0-9_]{0,127}$`, starting with the plugin id in capitals and `_` (`JUMPCLOUD_` for `jumpcloud`): a plugin must not read the host's other variables |
//! | names, descriptions, versions, default values, hosts | at most 256 bytes (descriptions and defaults 4096) |

use crate::bindings::PluginInfo;
use crate::sandbox::text::{Untrusted, truncate};

/// The pattern of plugin and step ids.
pub const ID_PATTERN: &str = "^[a-z0-9][a-z0-9_-]{0,63}$";
/// The pattern of `_type` values.
pub const TYPE_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9_.-]{2,127}$";
/// The pattern of declared `_class` values.
pub const CLASS_PATTERN: &str = "^[A-Za-z][A-Za-z0-9_]{1,63}$";
const FIELD_PATTERN: &str = "^[A-Za-z][A-Za-z0-9_]{0,63}$";
const ENV_PATTERN: &str = "^[A-Z][A-Z0-9_]{0,127}$";

const MAX_SHORT_TEXT: usize = 256;
const MAX_LONG_TEXT: usize = 4096;
/// Steps, fields, types of a step, dependencies, hosts: lists a describe() may hold.
const MAX_LIST: usize = 256;

/// A plugin whose `describe()` the host refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the plugin declares {place} {value}, which {rule}")]
pub struct InvalidPluginInfo {
    /// Where in `plugin-info`: `steps[0].id`, `configFields[2].envVar`, ...
    pub place: String,
    /// The value as declared, quoted, escaped and shortened for display.
    pub value: String,
    pub rule: String,
}

fn refuse(place: impl Into<String>, value: &str, rule: impl Into<String>) -> InvalidPluginInfo {
    InvalidPluginInfo {
        place: place.into(),
        value: format!("{:?}", Untrusted(&truncate(value, 80))),
        rule: rule.into(),
    }
}

/// `^[a-z0-9][a-z0-9_-]{0,63}$`: plugin and step ids, which name output folders.
pub fn is_valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'))
}

/// `^[A-Za-z0-9][A-Za-z0-9_.-]{2,127}$`: object types.
pub fn is_valid_type(object_type: &str) -> bool {
    let mut chars = object_type.chars();
    (3..=128).contains(&object_type.len())
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// `^[A-Za-z][A-Za-z0-9_]{1,63}$`: classes.
pub fn is_valid_class(class: &str) -> bool {
    (2..=64).contains(&class.len()) && is_identifier(class)
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `A-Z` first, then `A-Z`, digits and `_`; at most 128 bytes.
pub(crate) fn is_valid_env_var(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 128
        && chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// The prefix a plugin's environment variables must start with: `JUMPCLOUD_` for
/// `jumpcloud`, `OKTA_WORKFORCE_` for `okta-workforce`.
pub fn env_prefix(plugin_id: &str) -> String {
    format!("{}_", plugin_id.to_ascii_uppercase().replace('-', "_"))
}

/// Checks everything of `describe()` the host uses as a name, a path or a key, and
/// bounds what it prints.
pub fn check_plugin_info(info: &PluginInfo) -> Result<(), InvalidPluginInfo> {
    let text = |place: &str, value: &str, max: usize| {
        if value.len() > max {
            Err(refuse(place, value, format!("is longer than {max} bytes")))
        } else {
            Ok(())
        }
    };
    let list = |place: &str, len: usize| {
        if len > MAX_LIST {
            Err(refuse(
                place,
                "",
                format!("has {len} items, more than {MAX_LIST}"),
            ))
        } else {
            Ok(())
        }
    };
    if !is_valid_id(&info.id) {
        return Err(refuse("id", &info.id, format!("must match {ID_PATTERN}")));
    }
    text("name", &info.name, MAX_SHORT_TEXT)?;
    text("version", &info.version, MAX_SHORT_TEXT)?;

    list("configFields", info.config_fields.len())?;
    let prefix = env_prefix(&info.id);
    for (i, field) in info.config_fields.iter().enumerate() {
        let place = format!("configFields[{i}]");
        if !(field.name.len() <= 64 && is_identifier(&field.name)) {
            return Err(refuse(
                format!("{place}.name"),
                &field.name,
                format!("must match {FIELD_PATTERN}"),
            ));
        }
        text(
            &format!("{place}.description"),
            &field.description,
            MAX_LONG_TEXT,
        )?;
        if let Some(default) = &field.default_value {
            text(&format!("{place}.defaultValue"), default, MAX_LONG_TEXT)?;
        }
        if let Some(var) = &field.env_var
            && !(is_valid_env_var(var) && var.starts_with(&prefix))
        {
            return Err(refuse(
                format!("{place}.envVar"),
                var,
                format!("must match {ENV_PATTERN} and start with {prefix}"),
            ));
        }
    }

    list("steps", info.steps.len())?;
    for (i, step) in info.steps.iter().enumerate() {
        let place = format!("steps[{i}]");
        if !is_valid_id(&step.id) {
            return Err(refuse(
                format!("{place}.id"),
                &step.id,
                format!("must match {ID_PATTERN}"),
            ));
        }
        text(&format!("{place}.name"), &step.name, MAX_SHORT_TEXT)?;
        list(&format!("{place}.dependsOn"), step.depends_on.len())?;
        for (j, dependency) in step.depends_on.iter().enumerate() {
            if !is_valid_id(dependency) {
                return Err(refuse(
                    format!("{place}.dependsOn[{j}]"),
                    dependency,
                    format!("must match {ID_PATTERN}"),
                ));
            }
        }
        list(&format!("{place}.declaredTypes"), step.declared_types.len())?;
        for (j, declared) in step.declared_types.iter().enumerate() {
            if !is_valid_type(&declared.type_) {
                return Err(refuse(
                    format!("{place}.declaredTypes[{j}].type"),
                    &declared.type_,
                    format!("must match {TYPE_PATTERN}"),
                ));
            }
            if !is_valid_class(&declared.class) {
                return Err(refuse(
                    format!("{place}.declaredTypes[{j}].class"),
                    &declared.class,
                    format!("must match {CLASS_PATTERN}"),
                ));
            }
        }
    }

    list("defaultEgressHosts", info.default_egress_hosts.len())?;
    for (i, host) in info.default_egress_hosts.iter().enumerate() {
        text(&format!("defaultEgressHosts[{i}]"), host, MAX_SHORT_TEXT)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::{ConfigField, DeclaredType, ObjectKind, StepInfo};

    fn info() -> PluginInfo {
        PluginInfo {
            id: "jumpcloud".into(),
            name: "JumpCloud".into(),
            version: "0.1.0".into(),
            config_fields: vec![ConfigField {
                name: "apiKey".into(),
                description: "The API key.".into(),
                secret: true,
                required: true,
                default_value: None,
                env_var: Some("JUMPCLOUD_API_KEY".into()),
            }],
            steps: vec![StepInfo {
                id: "fetch-users".into(),
                name: "Fetch users".into(),
                depends_on: vec!["fetch-accounts".into()],
                declared_types: vec![DeclaredType {
                    type_: "jumpcloud_user".into(),
                    class: "User".into(),
                    kind: ObjectKind::Entity,
                }],
            }],
            default_egress_hosts: vec!["console.jumpcloud.com".into()],
        }
    }

    #[test]
    fn the_jumpcloud_shape_passes() {
        assert_eq!(check_plugin_info(&info()), Ok(()));
    }

    #[test]
    fn a_step_id_that_climbs_out_of_the_output_folder_is_refused() {
        for bad in [
            "../../../escaped",
            "a/b",
            "..",
            "",
            "Fetch",
            "-x",
            "a b",
            "a\u{1b}[2J",
        ] {
            let mut info = info();
            info.steps[0].id = bad.into();
            let error = check_plugin_info(&info).unwrap_err();
            assert_eq!(error.place, "steps[0].id", "{bad:?}");
            assert!(error.to_string().contains(ID_PATTERN), "{error}");
            assert!(!error.to_string().contains('\u{1b}'), "{error}");
        }
        let mut info = info();
        info.steps[0].depends_on = vec!["../up".into()];
        assert_eq!(
            check_plugin_info(&info).unwrap_err().place,
            "steps[0].dependsOn[0]"
        );
        let mut long = self::info();
        long.steps[0].id = "a".repeat(65);
        assert!(check_plugin_info(&long).is_err());
        long.steps[0].id = "a".repeat(64);
        assert!(check_plugin_info(&long).is_ok());
    }

    #[test]
    fn types_and_classes_follow_their_patterns() {
        for good in ["jumpcloud_user", "employee", "cve", "aws.s3-bucket", "A1b"] {
            assert!(is_valid_type(good), "{good}");
        }
        for bad in ["../../../escaped_type", "ab", "_user", "a/b", "a b", "a\nb"] {
            assert!(!is_valid_type(bad), "{bad:?}");
        }
        let mut info = info();
        info.steps[0].declared_types[0].class = "Us er".into();
        assert_eq!(
            check_plugin_info(&info).unwrap_err().place,
            "steps[0].declaredTypes[0].class"
        );
    }

    #[test]
    fn environment_variables_stay_within_the_plugins_prefix() {
        let mut info = info();
        info.config_fields[0].env_var = Some("AWS_SECRET_ACCESS_KEY".into());
        let error = check_plugin_info(&info).unwrap_err();
        assert_eq!(error.place, "configFields[0].envVar");
        assert!(error.rule.contains("JUMPCLOUD_"), "{error}");
        assert_eq!(env_prefix("okta-workforce"), "OKTA_WORKFORCE_");
    }

    #[test]
    fn long_texts_are_refused() {
        let mut info = info();
        info.steps[0].name = "n".repeat(MAX_SHORT_TEXT + 1);
        let error = check_plugin_info(&info).unwrap_err();
        assert_eq!(error.place, "steps[0].name");
        assert!(error.value.len() < 200, "the value shown is shortened");
    }
}
