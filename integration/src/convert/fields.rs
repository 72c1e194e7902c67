//! Typed, fallible reads of the fields of one JumpCloud record, and the small value
//! helpers every converter shares.
//!
//! JumpCloud's JSON is loosely typed in practice: fields come and go, and `null` stands
//! for "unset". Every read therefore goes through a [`Record`]: a null or missing field is
//! `Ok(None)`, a field of the right type is `Ok(Some(_))`, and anything else is a
//! [`ConvertError`] that names the record and the field. Errors never quote the value:
//! values can be personal data or secrets.

use serde_json::Value as Json;
use time::format_description::BorrowedFormatItem;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

use super::{ConvertError, Object};
use crate::model::{Property, Value};

/// The shape of a date-only timestamp, e.g. `2021-10-24`.
const DATE_ONLY: &[BorrowedFormatItem<'static>] = format_description!("[year]-[month]-[day]");

/// One source record of a known kind (`user`, `group`, ...), read field by field.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    kind: &'static str,
    object: &'a Object,
    /// The id used in error messages; [`Record::id`] is the strict accessor.
    label: Option<&'a str>,
}

impl<'a> Record<'a> {
    /// Wraps `object`, labelling errors with its `id` (or `_id`) when it has a usable one.
    pub fn new(kind: &'static str, object: &'a Object) -> Self {
        Record {
            kind,
            object,
            label: usable_id(object),
        }
    }

    /// Like [`Record::new`], for records whose identity lives elsewhere (a graph edge
    /// names its target in `to.id`).
    pub fn with_label(kind: &'static str, object: &'a Object, label: Option<&'a str>) -> Self {
        Record {
            kind,
            object,
            label,
        }
    }

    /// The record id: `id`, falling back to `_id` (v1 objects carry `_id`). A record
    /// without a non-empty string id cannot become a graph object, so that is an error.
    pub fn id(&self) -> Result<&'a str, ConvertError> {
        usable_id(self.object).ok_or_else(|| self.error("id", id_problem(self.object)))
    }

    /// The value at a dotted `path` (`mfa.configured`). `None` when any step is null or
    /// missing; an error when a step before the last is not an object.
    pub fn get(&self, path: &str) -> Result<Option<&'a Json>, ConvertError> {
        let mut object = self.object;
        let mut walked = 0;
        let mut segments = path.split('.').peekable();
        while let Some(segment) = segments.next() {
            walked += segment.len();
            let value = match object.get(segment) {
                None | Some(Json::Null) => return Ok(None),
                Some(value) => value,
            };
            if segments.peek().is_none() {
                return Ok(Some(value));
            }
            object = value
                .as_object()
                .ok_or_else(|| self.wrong_type(&path[..walked], "an object", value))?;
            walked += 1; // the dot
        }
        Ok(None)
    }

    /// A string field.
    pub fn str(&self, path: &str) -> Result<Option<&'a str>, ConvertError> {
        self.typed(path, "a string", Json::as_str)
    }

    /// A string field, trimmed; blank counts as missing.
    pub fn non_empty_str(&self, path: &str) -> Result<Option<&'a str>, ConvertError> {
        Ok(self.str(path)?.map(str::trim).filter(|s| !s.is_empty()))
    }

    /// A non-blank string field that must be there.
    pub fn required_str(&self, path: &str) -> Result<&'a str, ConvertError> {
        self.non_empty_str(path)?
            .ok_or_else(|| self.error(path, "missing or empty"))
    }

    /// A boolean field.
    pub fn bool(&self, path: &str) -> Result<Option<bool>, ConvertError> {
        self.typed(path, "a boolean", Json::as_bool)
    }

    /// A boolean flag: JumpCloud leaves unset flags out or null, which means false.
    pub fn flag(&self, path: &str) -> Result<bool, ConvertError> {
        Ok(self.bool(path)?.unwrap_or(false))
    }

    /// A nested object.
    pub fn object_field(&self, path: &str) -> Result<Option<&'a Object>, ConvertError> {
        self.typed(path, "an object", Json::as_object)
    }

    /// An array.
    pub fn array(&self, path: &str) -> Result<Option<&'a [Json]>, ConvertError> {
        self.typed(path, "an array", |v| v.as_array().map(Vec::as_slice))
    }

    /// An array whose items must all be strings.
    pub fn string_list(&self, path: &str) -> Result<Option<Vec<String>>, ConvertError> {
        let Some(items) = self.array(path)? else {
            return Ok(None);
        };
        items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                item.as_str().map(str::to_owned).ok_or_else(|| {
                    let found = type_name(item);
                    self.error(
                        path,
                        format!("expected an array of strings, found {found} at index {index}"),
                    )
                })
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }

    /// A timestamp in epoch milliseconds. Never an error: the data model leaves an
    /// unparsable (or non-string) timestamp out rather than fail the record.
    pub fn timestamp(&self, path: &str) -> Option<i64> {
        self.get(path)
            .ok()
            .flatten()
            .and_then(Json::as_str)
            .and_then(parse_timestamp)
    }

    /// The value at a dotted `path`, read leniently: `None` when any step is missing,
    /// null or not an object. For fields the data model copies only "when boolean" (or
    /// a number), where another type means "unknown", not a broken record.
    pub fn lenient(&self, path: &str) -> Option<&'a Json> {
        let mut object = self.object;
        let mut segments = path.split('.').peekable();
        while let Some(segment) = segments.next() {
            let value = object.get(segment).filter(|v| !v.is_null())?;
            if segments.peek().is_none() {
                return Some(value);
            }
            object = value.as_object()?;
        }
        None
    }

    /// A boolean at `path`, or `None` when it is anything else (see [`Record::lenient`]).
    pub fn maybe_bool(&self, path: &str) -> Option<bool> {
        self.lenient(path).and_then(Json::as_bool)
    }

    /// An integer at `path`, or `None` when it is anything else.
    pub fn maybe_int(&self, path: &str) -> Option<i64> {
        self.lenient(path).and_then(Json::as_i64)
    }

    /// An error about `field` of this record.
    pub fn error(&self, field: &str, problem: impl Into<String>) -> ConvertError {
        ConvertError {
            record_kind: self.kind,
            record_id: self.label.map(str::to_owned),
            field: field.to_owned(),
            problem: problem.into(),
        }
    }

    fn typed<T>(
        &self,
        path: &str,
        expected: &str,
        read: impl FnOnce(&'a Json) -> Option<T>,
    ) -> Result<Option<T>, ConvertError> {
        match self.get(path)? {
            None => Ok(None),
            Some(value) => read(value)
                .map(Some)
                .ok_or_else(|| self.wrong_type(path, expected, value)),
        }
    }

    fn wrong_type(&self, field: &str, expected: &str, found: &Json) -> ConvertError {
        self.error(
            field,
            format!("expected {expected}, found {}", type_name(found)),
        )
    }
}

/// `id`, else `_id`, when it is a non-empty string.
fn usable_id(object: &Object) -> Option<&str> {
    ["id", "_id"]
        .into_iter()
        .filter_map(|field| object.get(field)?.as_str())
        .find(|id| !id.is_empty())
}

/// Why [`usable_id`] found nothing, judged by the first id field that is set.
fn id_problem(object: &Object) -> String {
    let set = |field| object.get(field).filter(|v| !v.is_null());
    match set("id").or_else(|| set("_id")) {
        None => "missing (neither `id` nor `_id` is set)".to_owned(),
        Some(Json::String(_)) => "expected a non-empty string, found an empty string".to_owned(),
        Some(other) => format!("expected a string, found {}", type_name(other)),
    }
}

/// The JSON type of a value, with its article, for error messages.
pub fn type_name(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// Epoch milliseconds from an RFC 3339 timestamp (`2021-02-12T17:45:42.369Z`) or a
/// date-only `YYYY-MM-DD` (taken as midnight UTC). `None` when it is neither.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let text = text.trim();
    let moment = OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| Date::parse(text, DATE_ONLY).map(|date| date.midnight().assume_utc()))
        .ok()?;
    i64::try_from(moment.unix_timestamp_nanos().div_euclid(1_000_000)).ok()
}

/// The source object as JSON text, for an entity's raw data.
pub fn raw_json(object: &Object) -> Option<String> {
    serde_json::to_string(object).ok()
}

/// A one-item text list, or null: the shape of a User's `email`, `username`, ...
pub fn one_item_list(value: Option<impl Into<String>>) -> Value {
    value.map_or(Value::Null, |v| Value::TextList(vec![v.into()]))
}

/// First and last name joined with one space; `None` when both are missing.
pub fn full_name(first: Option<&str>, last: Option<&str>) -> Option<String> {
    let parts: Vec<&str> = [first, last].into_iter().flatten().collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// A link into the JumpCloud console, e.g. `console_link(base, "/#/applications")`.
pub fn console_link(console_url: &str, fragment: &str) -> String {
    format!("{}{fragment}", console_url.trim_end_matches('/'))
}

/// The properties of one graph object, in the order they are set.
#[derive(Debug, Default)]
pub struct Properties(Vec<Property>);

impl Properties {
    /// Sets a property.
    pub fn set(&mut self, name: &'static str, value: impl Into<Value>) -> &mut Self {
        self.0.push((name, value.into()));
        self
    }

    /// Sets a property when there is a value; otherwise leaves it out.
    pub fn set_some(&mut self, name: &'static str, value: Option<impl Into<Value>>) -> &mut Self {
        if let Some(value) = value {
            self.set(name, value);
        }
        self
    }

    /// The properties set so far.
    pub fn into_vec(self) -> Vec<Property> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Json) -> Object {
        match value {
            Json::Object(object) => object,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn missing_and_null_fields_are_none() {
        let obj = object(json!({"id": "abc", "a": null}));
        let record = Record::new("user", &obj);
        assert_eq!(record.str("a"), Ok(None));
        assert_eq!(record.str("b"), Ok(None));
        assert_eq!(record.bool("a"), Ok(None));
        assert_eq!(record.flag("a"), Ok(false));
        assert_eq!(record.string_list("b"), Ok(None));
    }

    #[test]
    fn fields_of_the_right_type_are_read() {
        let obj = object(json!({
            "id": "abc", "s": "x", "b": true, "o": {"k": 1}, "l": ["p", "q"], "blank": "  "
        }));
        let record = Record::new("user", &obj);
        assert_eq!(record.str("s"), Ok(Some("x")));
        assert_eq!(record.bool("b"), Ok(Some(true)));
        assert_eq!(record.flag("b"), Ok(true));
        assert_eq!(
            record.object_field("o").map(|o| o.map(Object::len)),
            Ok(Some(1))
        );
        assert_eq!(
            record.string_list("l"),
            Ok(Some(vec!["p".to_owned(), "q".to_owned()]))
        );
        assert_eq!(record.str("blank"), Ok(Some("  ")));
        assert_eq!(record.non_empty_str("blank"), Ok(None));
    }

    #[test]
    fn wrong_types_name_record_field_and_problem() {
        let obj = object(json!({"id": "abc", "email": 42, "tags": ["a", 7]}));
        let record = Record::new("user", &obj);
        let err = record.str("email").unwrap_err();
        assert_eq!(err.record_kind, "user");
        assert_eq!(err.record_id.as_deref(), Some("abc"));
        assert_eq!(err.field, "email");
        assert_eq!(err.problem, "expected a string, found a number");
        assert_eq!(
            err.to_string(),
            "user abc: field `email`: expected a string, found a number"
        );
        let err = record.string_list("tags").unwrap_err();
        assert_eq!(
            err.problem,
            "expected an array of strings, found a number at index 1"
        );
        assert!(!err.to_string().contains('7'), "values are never quoted");
    }

    #[test]
    fn nested_paths_walk_objects() {
        let obj = object(json!({
            "mfa": {"configured": true},
            "attributes": {"sudo": {"enabled": false}},
            "sso": null,
            "bad": "text",
        }));
        let record = Record::new("user", &obj);
        assert_eq!(record.bool("mfa.configured"), Ok(Some(true)));
        assert_eq!(record.bool("attributes.sudo.enabled"), Ok(Some(false)));
        assert_eq!(record.str("sso.type"), Ok(None));
        assert_eq!(record.str("nothing.here"), Ok(None));
        let err = record.bool("bad.deeper.still").unwrap_err();
        assert_eq!(err.field, "bad");
        assert_eq!(err.problem, "expected an object, found a string");
        let err = record.bool("attributes.sudo.enabled.x").unwrap_err();
        assert_eq!(err.field, "attributes.sudo.enabled");
        assert_eq!(err.problem, "expected an object, found a boolean");
    }

    #[test]
    fn id_prefers_id_then_falls_back_to_underscore_id() {
        let both = object(json!({"id": "v2", "_id": "v1"}));
        assert_eq!(Record::new("user", &both).id(), Ok("v2"));
        let v1 = object(json!({"_id": "v1"}));
        assert_eq!(Record::new("user", &v1).id(), Ok("v1"));
        let null_id = object(json!({"id": null, "_id": "v1"}));
        assert_eq!(Record::new("user", &null_id).id(), Ok("v1"));
        let empty_id = object(json!({"id": "", "_id": "v1"}));
        assert_eq!(Record::new("user", &empty_id).id(), Ok("v1"));
    }

    #[test]
    fn a_record_without_a_usable_id_is_an_error() {
        let none = object(json!({"name": "x"}));
        let err = Record::new("group", &none).id().unwrap_err();
        assert_eq!(err.field, "id");
        assert_eq!(err.record_id, None);
        assert_eq!(err.problem, "missing (neither `id` nor `_id` is set)");
        let number = object(json!({"id": 12}));
        let err = Record::new("group", &number).id().unwrap_err();
        assert_eq!(err.problem, "expected a string, found a number");
        let empty = object(json!({"_id": ""}));
        let err = Record::new("group", &empty).id().unwrap_err();
        assert_eq!(
            err.problem,
            "expected a non-empty string, found an empty string"
        );
    }

    #[test]
    fn required_str_rejects_missing_and_blank() {
        let obj = object(json!({"to": {"id": " ", "type": "user"}}));
        let record = Record::with_label("group member", &obj, Some("label"));
        assert_eq!(record.required_str("to.type"), Ok("user"));
        let err = record.required_str("to.id").unwrap_err();
        assert_eq!(err.field, "to.id");
        assert_eq!(err.record_id.as_deref(), Some("label"));
        assert_eq!(err.problem, "missing or empty");
    }

    #[test]
    fn rfc3339_timestamps_become_epoch_milliseconds() {
        assert_eq!(
            parse_timestamp("2021-02-12T17:45:42.369Z"),
            Some(1_613_151_942_369)
        );
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_timestamp("2021-02-12T18:45:42.369+01:00"),
            Some(1_613_151_942_369)
        );
        assert_eq!(parse_timestamp("1969-12-31T23:59:59.999Z"), Some(-1));
    }

    #[test]
    fn date_only_timestamps_are_midnight_utc() {
        assert_eq!(parse_timestamp("2021-10-24"), Some(1_635_033_600_000));
    }

    #[test]
    fn unparsable_timestamps_are_left_out() {
        for text in [
            "",
            "yesterday",
            "2021-13-01",
            "2021-02-12 17:45",
            "1613151942369",
        ] {
            assert_eq!(parse_timestamp(text), None, "{text:?}");
        }
        let obj = object(json!({"created": 1_613_151_942_369_i64, "bad": "soon", "mfa": "x"}));
        let record = Record::new("user", &obj);
        assert_eq!(record.timestamp("created"), None);
        assert_eq!(record.timestamp("bad"), None);
        assert_eq!(record.timestamp("mfa.exclusionUntil"), None);
    }

    #[test]
    fn value_helpers() {
        assert_eq!(
            one_item_list(Some("a")),
            Value::TextList(vec!["a".to_owned()])
        );
        assert_eq!(one_item_list(None::<String>), Value::Null);
        assert_eq!(
            full_name(Some("Ada"), Some("Lovelace")).as_deref(),
            Some("Ada Lovelace")
        );
        assert_eq!(
            full_name(None, Some("Lovelace")).as_deref(),
            Some("Lovelace")
        );
        assert_eq!(full_name(None, None), None);
        assert_eq!(
            console_link("https://console.jumpcloud.com/", "/#/applications"),
            "https://console.jumpcloud.com/#/applications"
        );
    }

    #[test]
    fn properties_leave_out_missing_values() {
        let mut props = Properties::default();
        props
            .set("a", true)
            .set_some("b", None::<&str>)
            .set_some("c", Some(3_i64));
        assert_eq!(
            props.into_vec(),
            vec![("a", Value::Bool(true)), ("c", Value::Int(3))]
        );
    }
}
