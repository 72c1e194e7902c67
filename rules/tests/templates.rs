//! `{{ }}` templates: evaluation, interpolation, JSON insertion, and the load-time check.

use alert_rules::template::{Expr, Scope, TextTemplate};
use serde_json::{Value, json};

fn data() -> Value {
    json!([
        {"id": "u1", "entity": {"_key": "u1"}, "properties": {"email": "ann@example.com", "tags": ["a", "b"]}},
        {"id": "u2", "entity": {"_key": "u2"}, "properties": {"email": "bob@example.com"}}
    ])
}

fn with_scope<T>(f: impl FnOnce(&Scope<'_>) -> T) -> T {
    let data = data();
    let empty = json!([]);
    let scope = Scope {
        queries: [("query0", (2, &data)), ("none", (0, &empty))]
            .into_iter()
            .collect(),
        alert_level: Some("HIGH"),
        rule_name: "no mfa",
        rule_description: "Users without MFA",
    };
    f(&scope)
}

fn eval(text: &str) -> Value {
    let expr = Expr::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    expr.check(&["query0", "none"])
        .unwrap_or_else(|e| panic!("{text}: {e}"));
    with_scope(|scope| expr.eval(scope)).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn eval_error(text: &str) -> (usize, String) {
    let expr = Expr::parse(text).unwrap();
    let error = with_scope(|scope| expr.eval(scope)).expect_err(text);
    (error.column, error.message)
}

fn check_error(text: &str) -> (usize, String) {
    let error = match TextTemplate::parse(text) {
        Err(error) => error,
        Ok(template) => template.check(&["query0"]).expect_err(text),
    };
    (error.column, error.message)
}

#[test]
fn arithmetic_follows_precedence() {
    assert_eq!(eval("1 + 2 * 3"), json!(7));
    assert_eq!(eval("(1 + 2) * 3"), json!(9));
    assert_eq!(eval("10 - 4 - 3"), json!(3), "left associative");
    assert_eq!(eval("7 % 4"), json!(3));
    assert_eq!(eval("10 / 4"), json!(2.5));
    assert_eq!(eval("-3 + 1"), json!(-2));
    assert_eq!(eval("2 + 3 * 4 > 13 && 1 == 1"), json!(true));
    assert_eq!(eval("1 > 2 || 3 >= 3"), json!(true));
}

#[test]
fn logic_and_comparison_follow_javascript() {
    assert_eq!(eval("!false"), json!(true));
    assert_eq!(eval("!0"), json!(true));
    assert_eq!(eval("!''"), json!(true));
    assert_eq!(
        eval("!queries.none.data"),
        json!(false),
        "an empty array is truthy"
    );
    assert_eq!(
        eval("0 || 'fallback'"),
        json!("fallback"),
        "|| yields an operand"
    );
    assert_eq!(eval("1 && 'second'"), json!("second"));
    assert_eq!(eval("1 == 1.0"), json!(true));
    assert_eq!(eval("1 == '1'"), json!(false), "strict equality");
    assert_eq!(eval("'a' != 'b'"), json!(true));
    assert_eq!(eval("'abc' < 'abd'"), json!(true));
    assert_eq!(eval("'n=' + 2"), json!("n=2"));
    assert_eq!(eval("null == null"), json!(true));
}

#[test]
fn variables_and_property_access() {
    assert_eq!(eval("queries.query0.total"), json!(2));
    assert_eq!(eval("queries.query0.total > 0"), json!(true));
    assert_eq!(eval("queries.none.total > 0"), json!(false));
    assert_eq!(
        eval("queries.query0.data[1].properties.email"),
        json!("bob@example.com")
    );
    assert_eq!(
        eval("queries.query0.data[0].properties.tags[1]"),
        json!("b")
    );
    assert_eq!(eval("queries.query0.data[0]['id']"), json!("u1"));
    assert_eq!(eval("queries.query0.data.length"), json!(2));
    assert_eq!(
        eval("queries.query0.data[5].properties.email"),
        json!(null),
        "missing is null"
    );
    assert_eq!(eval("queries.none.data[0].properties.email"), json!(null));
    assert_eq!(eval("alertLevel"), json!("HIGH"));
    assert_eq!(
        eval("alertRuleName + ': ' + alertRuleDescription"),
        json!("no mfa: Users without MFA")
    );
}

#[test]
fn evaluation_errors_name_the_operator_column() {
    assert_eq!(
        eval_error("'a' - 1"),
        (
            5,
            "- needs two numbers, got a string and a number".to_owned()
        )
    );
    assert_eq!(eval_error("1 / (2 - 2)").1, "/ by zero");
    assert_eq!(eval_error("1 % 0").1, "% by zero");
    assert_eq!(eval_error("queries.query0.total > 'x'").0, 22);
    assert!(
        eval_error("queries.query0.data > 1")
            .1
            .contains("an array and a number")
    );
}

#[test]
fn interpolation_renders_text() {
    with_scope(|scope| {
        let t = TextTemplate::parse("{{queries.query0.total}} users without MFA ({{alertLevel}})")
            .unwrap();
        assert_eq!(t.render_text(scope).unwrap(), "2 users without MFA (HIGH)");
        let t = TextTemplate::parse("first: {{queries.query0.data[0].properties.email}}, tags {{queries.query0.data[0].properties.tags}}").unwrap();
        assert_eq!(
            t.render_text(scope).unwrap(),
            r#"first: ann@example.com, tags ["a","b"]"#
        );
        let t = TextTemplate::parse("no braces }} here { x }").unwrap();
        assert_eq!(t.render_text(scope).unwrap(), "no braces }} here { x }");
        let t = TextTemplate::parse("{{ '}}' + 'x' }}").unwrap();
        assert_eq!(
            t.render_text(scope).unwrap(),
            "}}x",
            "}} inside a string literal"
        );
    });
}

#[test]
fn a_whole_string_template_inserts_the_json_value() {
    with_scope(|scope| {
        let t = TextTemplate::parse("{{queries.query0.data}}").unwrap();
        assert_eq!(t.render_value(scope).unwrap(), data());
        let t = TextTemplate::parse("{{queries.query0.total}}").unwrap();
        assert_eq!(t.render_value(scope).unwrap(), json!(2));
        let t = TextTemplate::parse("{{queries.query0.total}} users").unwrap();
        assert_eq!(t.render_value(scope).unwrap(), json!("2 users"));
        let t = TextTemplate::parse(" {{queries.query0.data}}").unwrap();
        assert!(
            t.render_value(scope).unwrap().is_string(),
            "text around it: interpolated"
        );
    });
}

#[test]
fn unknown_names_are_refused_with_their_column() {
    assert_eq!(check_error("{{ querys.query0.total }}").0, 4);
    assert!(
        check_error("{{ querys.query0.total }}")
            .1
            .contains("unknown variable \"querys\"")
    );
    assert_eq!(check_error("x {{queries.query7.total}}").0, 13);
    assert!(
        check_error("x {{queries.query7.total}}")
            .1
            .contains("unknown query \"query7\"")
    );
    assert_eq!(
        check_error("{{queries.query0}}"),
        (11, "queries.query0 needs .total or .data".to_owned())
    );
    assert_eq!(
        check_error("{{queries.query0.count}}"),
        (18, "queries.query0 has only .total and .data".to_owned())
    );
    assert_eq!(check_error("{{queries.query0.total.x}}").0, 24);
    assert_eq!(check_error("{{alertLevel.name}}").0, 14);
    assert_eq!(
        check_error("{{alertRuleId}}").0,
        3,
        "J1 variables we do not have are refused too"
    );
    assert_eq!(
        check_error("{{queries.query0.data[nope]}}").0,
        23,
        "index expressions are checked"
    );
}

#[test]
fn syntax_errors_have_columns() {
    assert_eq!(
        check_error("{{ 1 + }}"),
        (8, "expected a value, found `}}`".to_owned())
    );
    assert_eq!(
        check_error("ab {{ 1 + 2"),
        (4, "`{{` is not closed by `}}`".to_owned())
    );
    assert_eq!(check_error("{{ 'open }}").0, 4);
    assert_eq!(
        check_error("{{ 1 @ 2 }}"),
        (6, "unexpected character '@'".to_owned())
    );
    assert_eq!(check_error("{{ (1 + 2 }}").0, 11);
    assert_eq!(
        check_error("{{ 1 2 }}"),
        (6, "expected `}}`, found number 2".to_owned())
    );
    assert!(Expr::parse("queries.query0.total >").is_err());
    assert!(Expr::parse("a b").is_err());
}
