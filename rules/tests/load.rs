//! Loading rules files: J1's shape in JSON and TOML, both `when` forms, and every refusal
//! naming the file, the rule, the field and a line/column.

use alert_rules::model::{Action, AlertLevel, Condition, WebhookMethod};
use alert_rules::{
    Format, J1qlChecker, LoadError, LoadErrorKind, PollingInterval, Rule, parse_rules,
};

fn load(text: &str, format: Format) -> Result<Vec<Rule>, LoadError> {
    parse_rules(text, format, "rules.test", &J1qlChecker)
}

fn refuse_json(text: &str) -> LoadError {
    load(text, Format::Json).expect_err("the file must be refused")
}

/// A one-rule JSON file with `operations` replaced.
fn with_operations(operations: &str) -> String {
    format!(
        r#"[{{"name": "r", "question": {{"queries": [{{"query": "FIND jumpcloud_user"}}]}},
            "operations": {operations}}}]"#
    )
}

const FULL_JSON: &str = r#"{"rules": [
  {
    "id": "from-j1",
    "version": 3,
    "name": "users without MFA",
    "description": "Active users with no MFA.",
    "specVersion": 1,
    "pollingInterval": "FIFTEEN_MINUTES",
    "question": {"queries": [
      {"query": "FIND jumpcloud_user WITH mfaEnabled != true", "version": "v1"},
      {"name": "admins", "query": "FIND jumpcloud_user WITH sudo = true", "includeDeleted": true}
    ]},
    "operations": [{
      "when": {"type": "FILTER", "specVersion": 1, "condition": "{{queries.query0.total > 0 && queries.admins.total >= 1}}"},
      "actions": [
        {"type": "SET_PROPERTY", "targetProperty": "alertLevel", "targetValue": "HIGH"},
        {"type": "CREATE_ALERT"},
        {"type": "WEBHOOK", "endpoint": "https://hooks.example.com/alert", "method": "PUT",
         "headers": {"X-Rule": "{{alertRuleName}}"},
         "body": {"count": "{{queries.query0.total}}", "users": "{{queries.query0.data}}", "text": "{{queries.query0.total}} users", "n": 1}}
      ]
    }],
    "outputs": ["queries.query0.total", "alertLevel"],
    "triggerActionsOnNewEntitiesOnly": true,
    "labels": [{"labelName": "team", "labelValue": "identity"}],
    "remediationSteps": "Enrol them."
  }
]}"#;

#[test]
fn json_rule_loads_with_every_field() {
    let rules = load(FULL_JSON, Format::Json).unwrap();
    assert_eq!(rules.len(), 1);
    let rule = &rules[0];
    assert_eq!(rule.name, "users without MFA");
    assert_eq!(rule.polling_interval, PollingInterval::FifteenMinutes);
    assert_eq!(
        rule.query_names(),
        ["query0", "admins"],
        "query0 by position"
    );
    assert!(!rule.queries[0].include_deleted && rule.queries[1].include_deleted);
    assert!(rule.trigger_actions_on_new_entities_only);
    assert_eq!(rule.labels[0].label_value, "identity");
    assert_eq!(rule.remediation_steps.as_deref(), Some("Enrol them."));
    assert_eq!(rule.outputs.len(), 2);
    let actions = &rule.operations[0].actions;
    assert_eq!(actions[0], Action::SetAlertLevel(AlertLevel::High));
    assert_eq!(actions[1], Action::CreateAlert);
    let Action::Webhook(webhook) = &actions[2] else {
        panic!("third action is the webhook")
    };
    assert_eq!(webhook.method, WebhookMethod::Put);
    assert_eq!(webhook.endpoint, "https://hooks.example.com/alert");
    assert!(rule.creates_alerts());
}

#[test]
fn toml_rule_loads_like_its_json_twin() {
    let toml = r#"
[[rule]]
id = "from-j1"
version = 3
name = "users without MFA"
description = "Active users with no MFA."
specVersion = 1
pollingInterval = "FIFTEEN_MINUTES"
outputs = ["queries.query0.total", "alertLevel"]
triggerActionsOnNewEntitiesOnly = true
labels = [{ labelName = "team", labelValue = "identity" }]
remediationSteps = "Enrol them."

[[rule.question.queries]]
query = "FIND jumpcloud_user WITH mfaEnabled != true"
version = "v1"

[[rule.question.queries]]
name = "admins"
query = "FIND jumpcloud_user WITH sudo = true"
includeDeleted = true

[[rule.operations]]
when = { type = "FILTER", specVersion = 1, condition = "{{queries.query0.total > 0 && queries.admins.total >= 1}}" }

[[rule.operations.actions]]
type = "SET_PROPERTY"
targetProperty = "alertLevel"
targetValue = "HIGH"

[[rule.operations.actions]]
type = "CREATE_ALERT"

[[rule.operations.actions]]
type = "WEBHOOK"
endpoint = "https://hooks.example.com/alert"
method = "PUT"
headers = { X-Rule = "{{alertRuleName}}" }
body = { count = "{{queries.query0.total}}", users = "{{queries.query0.data}}", text = "{{queries.query0.total}} users", n = 1 }
"#;
    let from_toml = load(toml, Format::Toml).unwrap();
    let from_json = load(FULL_JSON, Format::Json).unwrap();
    assert_eq!(from_toml, from_json);
}

#[test]
fn both_when_forms_load() {
    let text = with_operations(
        r#"[
        {"when": {"type": "FILTER", "condition": ["AND", ["queries.query0.total", ">", 0], ["OR", ["queries.query0.total", "<=", 10], ["alertRuleName", "=", "r"]]]},
         "actions": [{"type": "CREATE_ALERT"}]},
        {"when": "{{queries.query0.total > 0}}", "actions": [{"type": "CREATE_ALERT"}]},
        {"when": ["OR", ["queries.query0.total", "!=", "{{queries.query0.total}}"]], "actions": [{"type": "CREATE_ALERT"}]},
        {"actions": [{"type": "CREATE_ALERT"}]}
    ]"#,
    );
    let rules = load(&text, Format::Json).unwrap();
    let ops = &rules[0].operations;
    let Some(Condition::All(terms)) = &ops[0].when else {
        panic!("AND form: {:?}", ops[0].when)
    };
    assert_eq!(terms.len(), 2);
    assert!(matches!(&terms[1], Condition::Any(inner) if inner.len() == 2));
    assert!(matches!(ops[1].when, Some(Condition::Expr(_))));
    assert!(matches!(&ops[2].when, Some(Condition::Any(t)) if t.len() == 1));
    assert!(ops[3].when.is_none(), "when is optional");
}

#[test]
fn json_syntax_error_has_line_and_column() {
    let error = refuse_json("[\n  {\"name\": \"r\"\n   \"question\": {}}\n]");
    let LoadErrorKind::Parse { line, column, .. } = *error.kind else {
        panic!("{error}")
    };
    assert_eq!((line, column), (3, 4), "{error}");
    assert!(error.to_string().starts_with("rules.test: "), "{error}");
}

#[test]
fn unknown_field_is_named_with_rule_and_position() {
    let text = format!(
        "[{}, {}]",
        &with_operations(r#"[{"actions": [{"type": "CREATE_ALERT"}]}]"#)[1..].trim_end_matches(']'),
        r#"{"name": "second", "question": {"queries": [{"query": "FIND x", "qurey": 1}]}, "operations": []}"#
    );
    let error = refuse_json(&text);
    assert_eq!(error.rule.as_ref().map(|r| r.index), Some(1), "{error}");
    assert_eq!(
        error.rule.as_ref().and_then(|r| r.name.as_deref()),
        Some("second")
    );
    assert_eq!(
        error.field.as_deref(),
        Some("question.queries[0].qurey"),
        "{error}"
    );
    let LoadErrorKind::Parse {
        line,
        column,
        message,
    } = &*error.kind
    else {
        panic!("{error}")
    };
    assert!(message.contains("unknown field `qurey`"), "{message}");
    assert_eq!(*line, 2);
    assert!(*column > 60, "column of the field, got {column}");
}

#[test]
fn missing_field_is_named() {
    let error = refuse_json(
        r#"{"rules": [{"name": "r", "question": {"queries": [{"name": "q"}]}, "operations": []}]}"#,
    );
    assert_eq!(
        error.field.as_deref(),
        Some("question.queries[0].query"),
        "{error}"
    );
    assert_eq!(error.rule.as_ref().map(|r| r.index), Some(0));
    assert!(
        matches!(*error.kind, LoadErrorKind::Parse { line: 1, .. }),
        "{error}"
    );
}

#[test]
fn unknown_polling_interval_lists_the_allowed_values() {
    let error = refuse_json(
        r#"[{"name": "r", "pollingInterval": "TEN_MINUTES", "question": {"queries": [{"query": "FIND x"}]}, "operations": []}]"#,
    );
    assert_eq!(error.field.as_deref(), Some("pollingInterval"), "{error}");
    let text = error.to_string();
    assert!(
        text.contains("TEN_MINUTES")
            && text.contains("FIFTEEN_MINUTES")
            && text.contains("ONE_WEEK"),
        "{text}"
    );
}

fn assert_invalid(error: &LoadError, field: &str, needle: &str) {
    assert_eq!(error.field.as_deref(), Some(field), "{error}");
    assert!(
        error.to_string().contains(needle),
        "{error} should say {needle:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("rules.test: rule 0 (\"r\"): "),
        "{error}"
    );
}

#[test]
fn unsupported_action_is_refused_by_name() {
    let error = refuse_json(&with_operations(
        r#"[{"actions": [{"type": "CREATE_ALERT"}, {"type": "SEND_SLACK_MESSAGE", "channels": ["sec"]}]}]"#,
    ));
    assert_invalid(
        &error,
        "operations[0].actions[1].type",
        "action SEND_SLACK_MESSAGE is not supported",
    );
}

#[test]
fn bad_alert_level_and_target_property_are_refused() {
    let error = refuse_json(&with_operations(
        r#"[{"actions": [{"type": "SET_PROPERTY", "targetProperty": "alertLevel", "targetValue": "URGENT"}]}]"#,
    ));
    assert_invalid(
        &error,
        "operations[0].actions[0].targetValue",
        "unknown alert level \"URGENT\"",
    );
    let error = refuse_json(&with_operations(
        r#"[{"actions": [{"type": "SET_PROPERTY", "targetProperty": "owner", "targetValue": "HIGH"}]}]"#,
    ));
    assert_invalid(
        &error,
        "operations[0].actions[0].targetProperty",
        "only alertLevel",
    );
    let error = refuse_json(&with_operations(
        r#"[{"actions": [{"type": "CREATE_ALERT", "level": 1}]}]"#,
    ));
    assert_invalid(&error, "operations[0].actions[0].level", "unknown field");
}

#[test]
fn template_with_unknown_variable_is_refused_with_its_column() {
    let error = refuse_json(&with_operations(
        r#"[{"when": "{{queries.query0.total > 0 && querys.query0.total > 1}}", "actions": [{"type": "CREATE_ALERT"}]}]"#,
    ));
    assert_invalid(&error, "operations[0].when", "unknown variable \"querys\"");
    assert!(
        matches!(*error.kind, LoadErrorKind::Template { column: 31, .. }),
        "{error}"
    );
}

#[test]
fn template_with_unknown_query_name_is_refused_with_its_column() {
    let error = refuse_json(&with_operations(
        r#"[{"when": {"type": "FILTER", "condition": "{{queries.query1.total > 0}}"}, "actions": [{"type": "CREATE_ALERT"}]}]"#,
    ));
    assert_invalid(
        &error,
        "operations[0].when.condition",
        "unknown query \"query1\"",
    );
    assert!(
        matches!(*error.kind, LoadErrorKind::Template { column: 11, .. }),
        "{error}"
    );
}

#[test]
fn json_condition_with_unknown_variable_or_operator_is_refused() {
    let error = refuse_json(&with_operations(
        r#"[{"when": ["AND", ["queries.query0.totl", ">", 0]], "actions": [{"type": "CREATE_ALERT"}]}]"#,
    ));
    assert_invalid(&error, "operations[0].when[1][0]", "only .total and .data");
    assert!(
        matches!(*error.kind, LoadErrorKind::Template { column: 16, .. }),
        "{error}"
    );
    let error = refuse_json(&with_operations(
        r#"[{"when": ["AND", ["queries.query0.total", "=>", 0]], "actions": [{"type": "CREATE_ALERT"}]}]"#,
    ));
    assert_invalid(&error, "operations[0].when[1][1]", "unknown operator");
    let error = refuse_json(&with_operations(
        r#"[{"when": ["XOR", ["queries.query0.total", ">", 0]], "actions": [{"type": "CREATE_ALERT"}]}]"#,
    ));
    assert_invalid(
        &error,
        "operations[0].when[0]",
        "starts with \"AND\" or \"OR\"",
    );
}

#[test]
fn condition_must_be_a_template() {
    let error = refuse_json(&with_operations(
        r#"[{"when": "queries.query0.total > 0", "actions": [{"type": "CREATE_ALERT"}]}]"#,
    ));
    assert_invalid(
        &error,
        "operations[0].when",
        "a condition must be one template",
    );
    let error = refuse_json(&with_operations(
        r#"[{"when": "{{queries.query0.total > }}", "actions": [{"type": "CREATE_ALERT"}]}]"#,
    ));
    assert_invalid(&error, "operations[0].when", "expected a value");
    assert!(
        matches!(*error.kind, LoadErrorKind::Template { column: 26, .. }),
        "{error}"
    );
    let error = refuse_json(&with_operations(
        r#"[{"when": "{{queries.query0.total > 0", "actions": [{"type": "CREATE_ALERT"}]}]"#,
    ));
    assert_invalid(&error, "operations[0].when", "not closed");
}

#[test]
fn webhook_templates_and_fields_are_checked() {
    let hook = |fields: &str| {
        with_operations(&format!(
            r#"[{{"actions": [{{"type": "WEBHOOK", "endpoint": "https://h.example/x", {fields}}}]}}]"#
        ))
    };
    let error = refuse_json(&hook(r#""body": {"a": ["ok", "{{alertLvl}}"]}"#));
    assert_invalid(
        &error,
        "operations[0].actions[0].body.a[1]",
        "unknown variable \"alertLvl\"",
    );
    assert!(
        matches!(*error.kind, LoadErrorKind::Template { column: 3, .. }),
        "{error}"
    );
    let error = refuse_json(&hook(r#""headers": {"X-Count": "n={{queries.q.total}}"}"#));
    assert_invalid(
        &error,
        "operations[0].actions[0].headers.X-Count",
        "unknown query \"q\"",
    );
    assert!(
        matches!(*error.kind, LoadErrorKind::Template { column: 13, .. }),
        "{error}"
    );
    let error = refuse_json(&hook(r#""method": "FETCH""#));
    assert_invalid(
        &error,
        "operations[0].actions[0].method",
        "unknown method \"FETCH\"",
    );
    let error = refuse_json(&with_operations(
        r#"[{"actions": [{"type": "WEBHOOK", "endpoint": "ftp://h.example/x"}]}]"#,
    ));
    assert_invalid(
        &error,
        "operations[0].actions[0].endpoint",
        "not an http or https URL",
    );
    let error = refuse_json(&with_operations(r#"[{"actions": [{"type": "WEBHOOK"}]}]"#));
    assert_invalid(&error, "operations[0].actions[0].endpoint", "missing");
}

#[test]
fn query_refused_by_the_engine_points_into_the_query() {
    let rule_with = |query: &str| {
        serde_json::json!([{"name": "r", "question": {"queries": [{"query": query}]},
                            "operations": [{"actions": [{"type": "CREATE_ALERT"}]}]}])
        .to_string()
    };
    // (query, line, column, message) as the J1QL engine reports them.
    let cases = [
        (
            "FIND jumpcloud_user\nWITH mfaEnabled !== true",
            2,
            19,
            "unexpected `=`",
        ),
        (
            "FIND jumpcloud_user AS u RETURN v.name",
            1,
            33,
            "unknown alias `v`",
        ),
        (
            "FIND jumpcloud_user WITH _createdOn > 'abc'",
            1,
            39,
            "compares numbers and dates",
        ),
    ];
    for (query, line, column, message) in cases {
        let error = refuse_json(&rule_with(query));
        assert_invalid(&error, "question.queries[0].query", message);
        let LoadErrorKind::Query {
            line: l, column: c, ..
        } = *error.kind
        else {
            panic!("{error}")
        };
        assert_eq!((l, c), (line, column), "{error}");
        assert!(
            error
                .to_string()
                .contains(&format!("query line {line}, column {column}: ")),
            "{error}"
        );
    }
}

#[test]
fn rule_level_refusals() {
    let base = |extra: &str| {
        format!(
            r#"[{{"name": "r", {extra} "question": {{"queries": [{{"query": "FIND x"}}]}}, "operations": [{{"actions": [{{"type": "CREATE_ALERT"}}]}}]}}]"#
        )
    };
    assert_invalid(
        &refuse_json(&base(r#""specVersion": 2,"#)),
        "specVersion",
        "only 1",
    );
    assert_invalid(
        &refuse_json(&base(r#""templates": {},"#)),
        "templates",
        "templates is not supported",
    );
    assert_invalid(&refuse_json(&base(r#""tags": [],"#)), "tags", "use labels");
    assert_invalid(
        &refuse_json(&base(r#""ignorePreviousResults": true,"#)),
        "ignorePreviousResults",
        "not supported",
    );
    assert_invalid(
        &refuse_json(&base(r#""outputs": ["queries.query0.count"],"#)),
        "outputs[0]",
        "only .total and .data",
    );
    assert_invalid(
        &refuse_json(&base(r#""triggerActionsOnNewEntitiesOnly": true,"#)),
        "triggerActionsOnNewEntitiesOnly",
        "needs at least one operation with a `when`",
    );
    assert_invalid(
        &refuse_json(&with_operations("[]")),
        "operations",
        "at least one operation",
    );
    assert_invalid(
        &refuse_json(&with_operations(r#"[{"actions": []}]"#)),
        "operations[0].actions",
        "at least one action",
    );
    let error = refuse_json(
        r#"[{"name": "r", "question": {"queries": [{"query": "FIND x", "version": "v2"}]}, "operations": [{"actions": [{"type": "CREATE_ALERT"}]}]}]"#,
    );
    assert_invalid(&error, "question.queries[0].version", "only \"v1\"");
    let error = refuse_json(
        r#"[{"name": "r", "question": {"queries": [{"query": "FIND x"}, {"name": "query0", "query": "FIND y"}]}, "operations": [{"actions": [{"type": "CREATE_ALERT"}]}]}]"#,
    );
    assert_invalid(&error, "question.queries[1].name", "used twice");
}

#[test]
fn duplicate_rule_names_are_refused() {
    let one = r#"{"name": "same", "question": {"queries": [{"query": "FIND x"}]}, "operations": [{"actions": [{"type": "CREATE_ALERT"}]}]}"#;
    let error = refuse_json(&format!("[{one}, {one}]"));
    assert_eq!(error.rule.as_ref().map(|r| r.index), Some(1));
    assert_eq!(error.field.as_deref(), Some("name"));
    assert!(error.to_string().contains("used twice"), "{error}");
}

#[test]
fn toml_errors_have_line_column_and_field() {
    let error = load("[[rule]]\nname = \"r\"\nquestion = { queries = [ { query = \"FIND x\" } ] }\noperations = [ { actions = [ { type = \"CREATE_ALERT\" } ] } ]\npolling = 3\n", Format::Toml)
        .expect_err("unknown field");
    assert_eq!(error.field.as_deref(), Some("polling"), "{error}");
    assert_eq!(
        error.rule.as_ref().and_then(|r| r.name.as_deref()),
        Some("r")
    );
    assert!(
        matches!(
            *error.kind,
            LoadErrorKind::Parse {
                line: 5,
                column: 1,
                ..
            }
        ),
        "{error}"
    );

    let error = load(
        "[[rule]]\nname = \"r\"\nquestion = { queries = [ { query = \"FIND x\" ] }\n",
        Format::Toml,
    )
    .expect_err("syntax");
    assert!(
        matches!(*error.kind, LoadErrorKind::Parse { line: 3, .. }),
        "{error}"
    );

    let error = load("[[rules]]\nname = \"r\"\n", Format::Toml).expect_err("the table is [[rule]]");
    assert!(
        error.to_string().contains("unknown field `rules`"),
        "{error}"
    );
}

#[test]
fn unknown_extension_and_missing_file_are_refused() {
    let error =
        alert_rules::load_rules_file(std::path::Path::new("rules.yaml"), &J1qlChecker).unwrap_err();
    assert!(matches!(*error.kind, LoadErrorKind::Format), "{error}");
    let error = alert_rules::load_rules_file(
        std::path::Path::new("/nonexistent/rules.json"),
        &J1qlChecker,
    )
    .unwrap_err();
    assert!(matches!(*error.kind, LoadErrorKind::Io(_)), "{error}");
    assert!(
        error
            .to_string()
            .starts_with("/nonexistent/rules.json: cannot read"),
        "{error}"
    );
}

#[test]
fn toml_takes_the_json_when_form_too() {
    let toml = r#"
[[rule]]
name = "r"
question = { queries = [{ query = "FIND jumpcloud_user" }] }
[[rule.operations]]
when = ["OR", ["queries.query0.total", ">", 0], ["AND", ["alertRuleName", "=", "r"]]]
actions = [{ type = "CREATE_ALERT" }]
"#;
    let rules = load(toml, Format::Toml).unwrap();
    let Some(Condition::Any(terms)) = &rules[0].operations[0].when else {
        panic!("{:?}", rules[0].operations[0].when)
    };
    assert!(matches!(&terms[1], Condition::All(inner) if inner.len() == 1));
}
