//! Loading a rules file: J1's alert-rule shape, in JSON or TOML, checked whole before anything
//! runs.
//!
//! - JSON (`.json`): an array of rules, or `{"rules": [...]}`.
//! - TOML (`.toml`): one `[[rule]]` table per rule, same field names.
//!
//! A rule: `name` (unique), `description`, `specVersion` (1), `version`, `id` (J1's
//! read-only fields, kept so exported rules load), `pollingInterval` (J1's rule enum),
//! `question.queries[] {name, query, version: "v1", includeDeleted}`, `operations[] {when,
//! actions}`, `outputs`, `triggerActionsOnNewEntitiesOnly`, `labels`, `remediationSteps`.
//! J1 fields whose behaviour is not implemented (`templates`, `questionId`, `tags`,
//! `resourceGroupId`, `notifyOnFailure: true`, `ignorePreviousResults: true`) and unknown
//! fields are refused by name, never ignored.
//!
//! Every error names the file, the rule (index and name), the field, and a line and column:
//! in the file for JSON/TOML errors, within the template for a template, within the query for
//! a query the engine refuses.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::model::{
    Action, AlertLevel, BodyTemplate, Condition, Label, Operation, PollingInterval, Rule,
    RuleQuery, WebhookAction, WebhookMethod,
};
use crate::query::QueryChecker;
use crate::template::{BinaryOp, Expr, TemplateError, TextTemplate};

/// The rule a load error is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRef {
    /// 0-based position in the file.
    pub index: usize,
    /// None when the rule has no readable name.
    pub name: Option<String>,
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum LoadErrorKind {
    #[error("cannot read the file: {0}")]
    Io(#[source] std::io::Error),
    #[error("unknown rules file format: the name must end in .json or .toml")]
    Format,
    /// JSON/TOML syntax or shape; line and column in the file.
    #[error("line {line}, column {column}: {message}")]
    Parse {
        line: usize,
        column: usize,
        message: String,
    },
    /// A template that does not parse or names an unknown variable; column in the template.
    #[error("template column {column}: {message}")]
    Template { column: usize, message: String },
    /// A query the engine refuses; line and column in the query text.
    #[error("query line {line}, column {column}: {message}")]
    Query {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{0}")]
    Invalid(String),
}

/// A rules file that cannot be used. Nothing of it is.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {}{}{kind}", rule_prefix(.rule), field_prefix(.field))]
pub struct LoadError {
    pub file: String,
    pub rule: Option<RuleRef>,
    /// Path of the field within the rule (e.g. `operations[0].actions[1].targetValue`), or
    /// within the file when no rule is known.
    pub field: Option<String>,
    /// Boxed: errors travel by value through every function here.
    pub kind: Box<LoadErrorKind>,
}

fn rule_prefix(rule: &Option<RuleRef>) -> String {
    match rule {
        Some(RuleRef {
            index,
            name: Some(name),
        }) => format!("rule {index} ({name:?}): "),
        Some(RuleRef { index, name: None }) => format!("rule {index}: "),
        None => String::new(),
    }
}

fn field_prefix(field: &Option<String>) -> String {
    field.as_ref().map(|f| format!("{f}: ")).unwrap_or_default()
}

/// The file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Toml,
}

impl Format {
    /// By extension (case-insensitive).
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "json" => Some(Format::Json),
            "toml" => Some(Format::Toml),
            _ => None,
        }
    }
}

/// Reads and checks a rules file; the format comes from its extension.
pub fn load_rules_file(path: &Path, checker: &dyn QueryChecker) -> Result<Vec<Rule>, LoadError> {
    let file = path.display().to_string();
    let error = |kind| LoadError {
        file: file.clone(),
        rule: None,
        field: None,
        kind: Box::new(kind),
    };
    let format = Format::from_path(path).ok_or_else(|| error(LoadErrorKind::Format))?;
    let text = std::fs::read_to_string(path).map_err(|e| error(LoadErrorKind::Io(e)))?;
    parse_rules(&text, format, &file, checker)
}

/// Parses and checks the text of a rules file (`file` only names it in errors).
pub fn parse_rules(
    text: &str,
    format: Format,
    file: &str,
    checker: &dyn QueryChecker,
) -> Result<Vec<Rule>, LoadError> {
    let raw = match format {
        Format::Json => parse_json(text, file)?,
        Format::Toml => parse_toml(text, file)?,
    };
    let mut names = BTreeSet::new();
    let mut rules = Vec::with_capacity(raw.len());
    for (index, raw_rule) in raw.into_iter().enumerate() {
        let error = |field: &str, kind| LoadError {
            file: file.to_owned(),
            rule: Some(RuleRef {
                index,
                name: Some(raw_rule.name.clone()),
            }),
            field: Some(field.to_owned()),
            kind: Box::new(kind),
        };
        if !names.insert(raw_rule.name.clone()) {
            return Err(error(
                "name",
                LoadErrorKind::Invalid(format!("rule name {:?} is used twice", raw_rule.name)),
            ));
        }
        rules.push(compile_rule(&raw_rule, checker).map_err(|(field, kind)| error(&field, kind))?);
    }
    Ok(rules)
}

// ---- the file shape ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonFile {
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlFile {
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRule {
    name: String,
    #[serde(default)]
    description: String,
    /// J1's read-only id and version: accepted so rules exported from J1 load.
    #[serde(default)]
    #[allow(dead_code)]
    id: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    version: Option<u64>,
    #[serde(default)]
    spec_version: Option<u64>,
    #[serde(default)]
    polling_interval: PollingInterval,
    question: RawQuestion,
    operations: Vec<RawOperation>,
    #[serde(default)]
    outputs: Vec<String>,
    #[serde(default)]
    trigger_actions_on_new_entities_only: bool,
    #[serde(default)]
    labels: Vec<Label>,
    #[serde(default)]
    remediation_steps: Option<String>,
    // J1 fields whose behaviour is not implemented: refused by name when present.
    #[serde(default)]
    templates: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    question_id: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    tags: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    resource_group_id: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    notify_on_failure: bool,
    #[serde(default)]
    ignore_previous_results: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuestion {
    queries: Vec<RawQuery>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawQuery {
    #[serde(default)]
    name: Option<String>,
    query: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    include_deleted: bool,
}

/// `when` and the actions take several shapes; they are checked by hand for clear errors.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperation {
    #[serde(default)]
    when: Option<Value>,
    actions: Vec<Value>,
}

fn parse_json(text: &str, file: &str) -> Result<Vec<RawRule>, LoadError> {
    let wrapped = text.trim_start().starts_with('{');
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let result = if wrapped {
        serde_path_to_error::deserialize::<_, JsonFile>(&mut deserializer).map(|f| f.rules)
    } else {
        serde_path_to_error::deserialize::<_, Vec<RawRule>>(&mut deserializer)
    };
    let rules = result.map_err(|error| {
        let path = error.path().clone();
        let inner = error.into_inner();
        let message = strip_position(&inner.to_string());
        shape_error(
            file,
            &path,
            wrapped,
            inner.line(),
            inner.column(),
            message,
            || serde_json::from_str::<Value>(text).ok(),
        )
    })?;
    // Text after the rules.
    deserializer.end().map_err(|e| LoadError {
        file: file.to_owned(),
        rule: None,
        field: None,
        kind: Box::new(LoadErrorKind::Parse {
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        }),
    })?;
    Ok(rules)
}

fn parse_toml(text: &str, file: &str) -> Result<Vec<RawRule>, LoadError> {
    let deserializer = toml::Deserializer::new(text);
    serde_path_to_error::deserialize::<_, TomlFile>(deserializer)
        .map(|f| f.rule)
        .map_err(|error| {
            let path = error.path().clone();
            let inner = error.into_inner();
            let (line, column) = inner
                .span()
                .map(|span| line_column(text, span.start))
                .unwrap_or((0, 0));
            // toml's message is several lines with a source excerpt; keep its first line.
            let message = inner
                .message()
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned();
            shape_error(file, &path, true, line, column, message, || {
                toml::from_str::<Value>(text).ok()
            })
        })
}

/// serde_json appends " at line L column C"; the position is reported separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// A JSON/TOML error: the rule is the first index on the path (the path starts at the
/// `rules`/`rule` key when the file is wrapped), the field is the rest of it.
fn shape_error(
    file: &str,
    path: &serde_path_to_error::Path,
    wrapped: bool,
    line: usize,
    column: usize,
    message: String,
    whole_file: impl FnOnce() -> Option<Value>,
) -> LoadError {
    use serde_path_to_error::Segment;
    let mut segments = path.iter().peekable();
    if wrapped && matches!(segments.peek(), Some(Segment::Map { .. })) {
        segments.next();
    }
    let index = match segments.peek() {
        Some(Segment::Seq { index }) => {
            let index = *index;
            segments.next();
            Some(index)
        }
        _ => None,
    };
    let mut field = String::new();
    for segment in segments {
        match segment {
            Segment::Seq { index } => field.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !field.is_empty() {
                    field.push('.');
                }
                field.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    // A missing field is named only in the message: put it on the path.
    if let Some(name) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        if !field.is_empty() {
            field.push('.');
        }
        field.push_str(name);
    }
    let rule = index.map(|index| {
        let name = whole_file().and_then(|value| {
            let rules = match &value {
                Value::Array(_) => Some(&value),
                Value::Object(map) => map.get("rules").or_else(|| map.get("rule")),
                _ => None,
            }?;
            rules.get(index)?.get("name")?.as_str().map(str::to_owned)
        });
        RuleRef { index, name }
    });
    LoadError {
        file: file.to_owned(),
        rule,
        field: (!field.is_empty()).then_some(field),
        kind: Box::new(LoadErrorKind::Parse {
            line,
            column,
            message,
        }),
    }
}

// ---- checking a rule ----

/// A failure inside a rule: the field path and what is wrong.
type Failure = (String, LoadErrorKind);

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Failure {
    (field.into(), LoadErrorKind::Invalid(message.into()))
}

fn template_failure(field: impl Into<String>, error: TemplateError) -> Failure {
    (
        field.into(),
        LoadErrorKind::Template {
            column: error.column,
            message: error.message,
        },
    )
}

fn compile_rule(raw: &RawRule, checker: &dyn QueryChecker) -> Result<Rule, Failure> {
    if raw.name.trim().is_empty() {
        return Err(invalid("name", "a rule needs a name"));
    }
    if let Some(version) = raw.spec_version.filter(|v| *v != 1) {
        return Err(invalid(
            "specVersion",
            format!("specVersion {version} is not supported (only 1)"),
        ));
    }
    let unsupported = [
        ("templates", raw.templates.is_some()),
        ("questionId", raw.question_id.is_some()),
        ("tags", raw.tags.is_some()),
        ("resourceGroupId", raw.resource_group_id.is_some()),
        ("notifyOnFailure", raw.notify_on_failure),
        ("ignorePreviousResults", raw.ignore_previous_results),
    ];
    if let Some((field, _)) = unsupported.iter().find(|(_, present)| *present) {
        let hint = match *field {
            "tags" => " (J1 deprecated it: use labels)",
            "questionId" => " (write the queries in question.queries)",
            _ => "",
        };
        return Err(invalid(*field, format!("{field} is not supported{hint}")));
    }

    let queries = compile_queries(&raw.question, checker)?;
    let names: Vec<&str> = queries.iter().map(|q| q.name.as_str()).collect();

    if raw.operations.is_empty() {
        return Err(invalid("operations", "a rule needs at least one operation"));
    }
    let operations = raw
        .operations
        .iter()
        .enumerate()
        .map(|(i, op)| compile_operation(op, &format!("operations[{i}]"), &names))
        .collect::<Result<Vec<_>, _>>()?;
    if raw.trigger_actions_on_new_entities_only && operations.iter().all(|op| op.when.is_none()) {
        // Terraform's docs: new-only needs at least one `when` to take effect.
        return Err(invalid(
            "triggerActionsOnNewEntitiesOnly",
            "needs at least one operation with a `when`",
        ));
    }

    let outputs = raw
        .outputs
        .iter()
        .enumerate()
        .map(|(i, output)| {
            let field = format!("outputs[{i}]");
            let expr = parse_bare_expression(output).map_err(|e| template_failure(&field, e))?;
            expr.check(&names)
                .map_err(|e| template_failure(&field, e))?;
            Ok((output.clone(), expr))
        })
        .collect::<Result<Vec<_>, Failure>>()?;

    Ok(Rule {
        name: raw.name.clone(),
        description: raw.description.clone(),
        polling_interval: raw.polling_interval,
        queries,
        operations,
        outputs,
        trigger_actions_on_new_entities_only: raw.trigger_actions_on_new_entities_only,
        labels: raw.labels.clone(),
        remediation_steps: raw.remediation_steps.clone(),
    })
}

fn compile_queries(
    question: &RawQuestion,
    checker: &dyn QueryChecker,
) -> Result<Vec<RuleQuery>, Failure> {
    if question.queries.is_empty() {
        return Err(invalid(
            "question.queries",
            "a rule needs at least one query",
        ));
    }
    let mut queries: Vec<RuleQuery> = Vec::with_capacity(question.queries.len());
    for (i, raw) in question.queries.iter().enumerate() {
        let field = format!("question.queries[{i}]");
        let name = raw.name.clone().unwrap_or_else(|| format!("query{i}"));
        let identifier = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !identifier {
            return Err(invalid(
                format!("{field}.name"),
                format!(
                    "query name {name:?} must be letters, digits and _ (it is used as queries.<name>)"
                ),
            ));
        }
        if queries.iter().any(|q| q.name == name) {
            return Err(invalid(
                format!("{field}.name"),
                format!("query name {name:?} is used twice"),
            ));
        }
        if let Some(version) = raw.version.as_deref().filter(|v| *v != "v1") {
            return Err(invalid(
                format!("{field}.version"),
                format!("query version {version:?} is not supported (only \"v1\")"),
            ));
        }
        checker.check(&raw.query).map_err(|e| {
            (
                format!("{field}.query"),
                LoadErrorKind::Query {
                    line: e.line,
                    column: e.column,
                    message: e.message,
                },
            )
        })?;
        queries.push(RuleQuery {
            name,
            query: raw.query.clone(),
            include_deleted: raw.include_deleted,
        });
    }
    Ok(queries)
}

fn compile_operation(
    raw: &RawOperation,
    field: &str,
    names: &[&str],
) -> Result<Operation, Failure> {
    let when = raw
        .when
        .as_ref()
        .map(|when| compile_when(when, &format!("{field}.when"), names))
        .transpose()?;
    if raw.actions.is_empty() {
        return Err(invalid(
            format!("{field}.actions"),
            "an operation needs at least one action",
        ));
    }
    let actions = raw
        .actions
        .iter()
        .enumerate()
        .map(|(i, action)| compile_action(action, &format!("{field}.actions[{i}]"), names))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Operation { when, actions })
}

/// `when`: `{"type": "FILTER", "condition": <template or JSON form>}`, or the condition alone.
fn compile_when(when: &Value, field: &str, names: &[&str]) -> Result<Condition, Failure> {
    match when {
        Value::Object(map) => {
            only_keys(map, &["type", "specVersion", "condition"], field)?;
            match map.get("type") {
                Some(Value::String(t)) if t == "FILTER" => {}
                Some(other) => {
                    return Err(invalid(
                        format!("{field}.type"),
                        format!("when type {other} is not supported (only \"FILTER\")"),
                    ));
                }
                None => return Err(invalid(format!("{field}.type"), "missing (use \"FILTER\")")),
            }
            let condition = map
                .get("condition")
                .ok_or_else(|| invalid(format!("{field}.condition"), "missing"))?;
            compile_condition(condition, &format!("{field}.condition"), names)
        }
        other => compile_condition(other, field, names),
    }
}

fn compile_condition(condition: &Value, field: &str, names: &[&str]) -> Result<Condition, Failure> {
    match condition {
        Value::String(text) => {
            let template = TextTemplate::parse(text).map_err(|e| template_failure(field, e))?;
            let expr = template.single_expression().ok_or_else(|| {
                invalid(
                    field,
                    "a condition must be one template, like \"{{queries.query0.total > 0}}\"",
                )
            })?;
            expr.check(names).map_err(|e| template_failure(field, e))?;
            Ok(Condition::Expr(expr.clone()))
        }
        Value::Array(items) => compile_logic(items, field, names),
        other => Err(invalid(
            field,
            format!(
                "a condition is a \"{{{{...}}}}\" template or [\"AND\"|\"OR\", ...], not {other}"
            ),
        )),
    }
}

/// `["AND"|"OR", term, ...]`, each term a comparison `[left, op, right]` or a nested list.
fn compile_logic(items: &[Value], field: &str, names: &[&str]) -> Result<Condition, Failure> {
    let logic = match items.first() {
        Some(Value::String(op)) if op.eq_ignore_ascii_case("AND") => true,
        Some(Value::String(op)) if op.eq_ignore_ascii_case("OR") => false,
        _ => {
            return Err(invalid(
                format!("{field}[0]"),
                "a JSON condition starts with \"AND\" or \"OR\"",
            ));
        }
    };
    if items.len() < 2 {
        return Err(invalid(field, "needs at least one comparison after AND/OR"));
    }
    let terms = items[1..]
        .iter()
        .enumerate()
        .map(|(i, term)| {
            let term_field = format!("{field}[{}]", i + 1);
            match term {
                Value::Array(inner)
                    if inner.first().and_then(Value::as_str).is_some_and(|s| {
                        s.eq_ignore_ascii_case("AND") || s.eq_ignore_ascii_case("OR")
                    }) =>
                {
                    compile_logic(inner, &term_field, names)
                }
                Value::Array(inner) => compile_comparison(inner, &term_field, names),
                other => Err(invalid(
                    term_field,
                    format!("expected a comparison [left, operator, right], not {other}"),
                )),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(if logic {
        Condition::All(terms)
    } else {
        Condition::Any(terms)
    })
}

/// `[left, op, right]`: a string on the left is a variable path (`queries.query0.total`) or a
/// template; on the right it is a literal string unless it is a `{{ }}` template.
fn compile_comparison(items: &[Value], field: &str, names: &[&str]) -> Result<Condition, Failure> {
    let [left, op, right] = items else {
        return Err(invalid(
            field,
            format!(
                "a comparison is [left, operator, right], got {} items",
                items.len()
            ),
        ));
    };
    let op = op
        .as_str()
        .and_then(BinaryOp::from_condition_operator)
        .ok_or_else(|| {
            invalid(
                format!("{field}[1]"),
                format!("unknown operator {op} (use > < >= <= = !=)"),
            )
        })?;
    let operand = |value: &Value, side: usize, variable: bool| -> Result<Expr, Failure> {
        let operand_field = format!("{field}[{side}]");
        let expr = match value {
            Value::String(text) if text.contains("{{") => {
                let template =
                    TextTemplate::parse(text).map_err(|e| template_failure(&operand_field, e))?;
                template.single_expression().cloned().ok_or_else(|| {
                    invalid(
                        &operand_field,
                        "an operand holds one {{ }} template at most",
                    )
                })?
            }
            Value::String(text) if variable => {
                Expr::parse(text).map_err(|e| template_failure(&operand_field, e))?
            }
            Value::Array(_) | Value::Object(_) => {
                return Err(invalid(
                    operand_field,
                    "an operand is a value or a variable",
                ));
            }
            literal => Expr::literal(literal.clone(), 1),
        };
        expr.check(names)
            .map_err(|e| template_failure(&operand_field, e))?;
        Ok(expr)
    };
    Ok(Condition::Expr(Expr::binary(
        op,
        operand(left, 0, true)?,
        operand(right, 2, false)?,
    )))
}

fn parse_bare_expression(text: &str) -> Result<Expr, TemplateError> {
    if text.contains("{{") {
        let template = TextTemplate::parse(text)?;
        return template.single_expression().cloned().ok_or(TemplateError {
            column: 1,
            message: "expected one {{ }} template".to_owned(),
        });
    }
    Expr::parse(text)
}

fn only_keys(map: &Map<String, Value>, allowed: &[&str], field: &str) -> Result<(), Failure> {
    match map.keys().find(|key| !allowed.contains(&key.as_str())) {
        Some(key) => Err(invalid(
            format!("{field}.{key}"),
            format!(
                "unknown field {key:?} (expected one of: {})",
                allowed.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

fn string_field<'v>(
    map: &'v Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<Option<&'v str>, Failure> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(invalid(
            format!("{field}.{key}"),
            format!("expected a string, not {other}"),
        )),
    }
}

/// The action types J1 documents; only some are supported here.
const SUPPORTED_ACTIONS: &str = "SET_PROPERTY, CREATE_ALERT, WEBHOOK";

fn compile_action(action: &Value, field: &str, names: &[&str]) -> Result<Action, Failure> {
    let Value::Object(map) = action else {
        return Err(invalid(
            field,
            format!("an action is an object with a type, not {action}"),
        ));
    };
    let action_type = string_field(map, "type", field)?.ok_or_else(|| {
        invalid(
            format!("{field}.type"),
            format!("missing (one of {SUPPORTED_ACTIONS})"),
        )
    })?;
    match action_type {
        "SET_PROPERTY" => {
            only_keys(map, &["type", "targetProperty", "targetValue"], field)?;
            match string_field(map, "targetProperty", field)? {
                Some("alertLevel") => {}
                Some(other) => {
                    return Err(invalid(
                        format!("{field}.targetProperty"),
                        format!("SET_PROPERTY of {other:?} is not supported (only alertLevel)"),
                    ));
                }
                None => {
                    return Err(invalid(
                        format!("{field}.targetProperty"),
                        "missing (use \"alertLevel\")",
                    ));
                }
            }
            let levels = AlertLevel::ALL.map(AlertLevel::as_str).join(", ");
            let value = string_field(map, "targetValue", field)?.ok_or_else(|| {
                invalid(
                    format!("{field}.targetValue"),
                    format!("missing (one of {levels})"),
                )
            })?;
            AlertLevel::parse(value)
                .map(Action::SetAlertLevel)
                .ok_or_else(|| {
                    invalid(
                        format!("{field}.targetValue"),
                        format!("unknown alert level {value:?} (one of {levels})"),
                    )
                })
        }
        "CREATE_ALERT" => {
            only_keys(map, &["type"], field)?;
            Ok(Action::CreateAlert)
        }
        "WEBHOOK" => compile_webhook(map, field, names).map(Action::Webhook),
        other => Err(invalid(
            format!("{field}.type"),
            format!("action {other} is not supported (supported: {SUPPORTED_ACTIONS})"),
        )),
    }
}

fn compile_webhook(
    map: &Map<String, Value>,
    field: &str,
    names: &[&str],
) -> Result<WebhookAction, Failure> {
    only_keys(
        map,
        &["type", "endpoint", "method", "headers", "body"],
        field,
    )?;
    let endpoint_field = format!("{field}.endpoint");
    let endpoint = string_field(map, "endpoint", field)?
        .ok_or_else(|| invalid(&endpoint_field, "missing (the URL to call)"))?;
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|e| invalid(&endpoint_field, format!("not a URL: {e}")))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return Err(invalid(
            &endpoint_field,
            format!("{endpoint:?} is not an http or https URL"),
        ));
    }
    let method = match string_field(map, "method", field)? {
        None => WebhookMethod::default(),
        Some(text) => serde_json::from_value(Value::String(text.to_owned())).map_err(|_| {
            invalid(
                format!("{field}.method"),
                format!("unknown method {text:?} (one of POST, PUT, GET, HEAD, PATCH, DELETE)"),
            )
        })?,
    };
    let headers = match map.get("headers") {
        None => Vec::new(),
        Some(Value::Object(headers)) => headers
            .iter()
            .map(|(name, value)| {
                let header_field = format!("{field}.headers.{name}");
                http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    invalid(&header_field, format!("{name:?} is not a header name"))
                })?;
                let Value::String(text) = value else {
                    return Err(invalid(&header_field, "a header value is a string"));
                };
                let template =
                    TextTemplate::parse(text).map_err(|e| template_failure(&header_field, e))?;
                template
                    .check(names)
                    .map_err(|e| template_failure(&header_field, e))?;
                Ok((name.clone(), template))
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => {
            return Err(invalid(
                format!("{field}.headers"),
                "headers is an object of strings",
            ));
        }
    };
    let body = map
        .get("body")
        .map(|body| compile_body(body, &format!("{field}.body"), names))
        .transpose()?;
    Ok(WebhookAction {
        endpoint: endpoint.to_owned(),
        method,
        headers,
        body,
    })
}

fn compile_body(body: &Value, field: &str, names: &[&str]) -> Result<BodyTemplate, Failure> {
    Ok(match body {
        Value::String(text) => {
            let template = TextTemplate::parse(text).map_err(|e| template_failure(field, e))?;
            template
                .check(names)
                .map_err(|e| template_failure(field, e))?;
            BodyTemplate::Text(template)
        }
        Value::Array(items) => BodyTemplate::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| compile_body(item, &format!("{field}[{i}]"), names))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => BodyTemplate::Object(
            map.iter()
                .map(|(key, value)| {
                    Ok((
                        key.clone(),
                        compile_body(value, &format!("{field}.{key}"), names)?,
                    ))
                })
                .collect::<Result<_, Failure>>()?,
        ),
        literal => BodyTemplate::Literal(literal.clone()),
    })
}
