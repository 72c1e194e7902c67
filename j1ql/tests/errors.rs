//! Parse errors: each names its kind, points at line and column, says what is wrong and
//! what was expected there.

use j1ql::{ErrorKind, QueryError, parse};

use ErrorKind::{Syntax, TypeMismatch, UnknownAlias as Unknown, Unsupported};

fn err(text: &str) -> QueryError {
    match parse(text) {
        Ok(q) => panic!("{text:?} parsed: {:?}", q.ast()),
        Err(e) => e,
    }
}

/// The 1-based (line, column) of the first occurrence of `needle` in `text`.
fn at(text: &str, needle: &str) -> (usize, usize) {
    let i = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} in {text:?}"));
    let before = &text[..i];
    let line_start = before.rfind('\n').map_or(0, |n| n + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

/// One error case: the query, its kind, the text the error points at (its first
/// occurrence; `@` in front selects the last), the message (a prefix is enough when it
/// ends with `…`), and the expected list (`None`: not checked).
struct Case(
    &'static str,
    ErrorKind,
    &'static str,
    &'static str,
    Option<&'static [&'static str]>,
);

const UNITS_SAMPLE: &[&str] = &[
    "`hour`", "`hr`", "`hours`", "`hrs`", "`day`", "`days`", "`month`", "`mo`", "`months`",
    "`mos`", "`year`", "`yr`", "`years`", "`yrs`",
];

const CASES: &[Case] = &[
    // ---- syntax
    Case(
        "FIND User WITH active == true",
        Syntax,
        "@=",
        "unexpected `=`",
        None,
    ),
    Case(
        "FIND User THAT",
        Syntax,
        "@",
        "unexpected the end of the query",
        Some(&["`!`", "`RELATES TO`", "`(`", "a verb"]),
    ),
    Case(
        "FIND User WITH x = ('a' OR 'b' AND 'c')",
        Syntax,
        "AND",
        "a value list takes one joiner: all OR or all AND",
        Some(&["`OR`", "`)`"]),
    ),
    Case(
        "FIND User AS u WITH x = 1",
        Syntax,
        "WITH",
        "`WITH` must come before `AS`",
        None,
    ),
    Case(
        "FIND User WITH _createdOn > date.now - 2 weeks",
        Syntax,
        "weeks",
        "unexpected `weeks`",
        Some(UNITS_SAMPLE),
    ),
    Case(
        "FIND User WITH _createdOn > date(2024-13-01)",
        Syntax,
        "date(",
        "`2024-13-01` is not an ISO-8601 date",
        None,
    ),
    Case(
        "FIND User WITH name = /a(b/",
        Syntax,
        "/a(",
        "invalid regex…",
        None,
    ),
    Case(
        "FIND UNIQUE User",
        Syntax,
        "UNIQUE",
        "`UNIQUE` needs a RETURN clause",
        Some(&["`RETURN`"]),
    ),
    Case(
        "FIND User AS u THAT IS Person AS u",
        Syntax,
        "@u",
        "alias `u` is defined twice",
        None,
    ),
    Case(
        "FIND User LIMIT -1",
        Syntax,
        "-",
        "unexpected `-`",
        Some(&["a whole number"]),
    ),
    Case(
        "FIND User WITH name = 'open",
        Syntax,
        "'open",
        "unterminated string",
        Some(&["a closing `'`"]),
    ),
    Case(
        "SELECT * FROM users",
        Syntax,
        "SELECT",
        "unexpected `SELECT`",
        Some(&["`FIND`"]),
    ),
    // ---- unknown aliases
    Case(
        "FIND User AS u WHERE v.active = true",
        Unknown,
        "v.active",
        "unknown alias `v`",
        Some(&["`u`", "`User`"]),
    ),
    Case(
        "FIND User AS u RETURN u.name ORDER BY w.name",
        Unknown,
        "w.name",
        "unknown alias `w`",
        None,
    ),
    Case(
        "FIND User AS u RETURN u.name AS n ORDER BY m",
        Unknown,
        "@m",
        "unknown label `m`",
        Some(&["`n`"]),
    ),
    Case(
        "FIND User THAT !IS Person AS p RETURN p.name",
        Unknown,
        "p.name",
        "`p` names the target of a negated hop (`!VERB`), which binds nothing",
        None,
    ),
    Case(
        "FIND User THAT HAS Group THAT HAS User RETURN User.name",
        Unknown,
        "User.name",
        "`User` is ambiguous…",
        None,
    ),
    Case(
        "FIND User AS u THAT HAS Group AS g RETURN count(u) AS n ORDER BY g.name",
        Unknown,
        "g.name",
        "ORDER BY after aggregation must name a returned column…",
        Some(&["`n`"]),
    ),
    // ---- type mismatches
    Case(
        "FIND User WITH _version = 'one'",
        TypeMismatch,
        "'one'",
        "`_version` holds a number (epoch ms or a version); it cannot be compared with a string",
        Some(&["a number"]),
    ),
    Case(
        "FIND User WITH _deleted = 1",
        TypeMismatch,
        "1",
        "`_deleted` holds a boolean; it cannot be compared with a number",
        Some(&["a boolean"]),
    ),
    Case(
        "FIND User WITH name ~= 5",
        TypeMismatch,
        "5",
        "`~=` compares strings, not a number",
        Some(&["a string"]),
    ),
    Case(
        "FIND User WITH name > undefined",
        TypeMismatch,
        "undefined",
        "`undefined` can only be tested with `=` or `!=`, not `>`",
        None,
    ),
    Case(
        "FIND User WITH name ^= /x/",
        TypeMismatch,
        "/x/",
        "a regex can only be used with `=` or `!=`, not `^=`",
        None,
    ),
    Case(
        "FIND User AS u WHERE count(u) > 'a'",
        TypeMismatch,
        "'a'",
        "`count(u)` is a number; it cannot be compared with a string",
        Some(&["a number"]),
    ),
    Case(
        "FIND User AS u THAT IS Person AS p WHERE u._createdOn = p._key",
        TypeMismatch,
        "_key",
        "`_createdOn` holds a number but `_key` holds a string",
        None,
    ),
    Case(
        "FIND User AS u RETURN sum(u)",
        TypeMismatch,
        "sum",
        "`sum` needs a numeric property: `sum(alias.prop)`",
        None,
    ),
    // ---- outside the subset, refused by name
    Case(
        "FIND \"127.0.0.1\"",
        Unsupported,
        "\"127",
        "full-text search is not supported",
        None,
    ),
    Case(
        "'Joe Adams' as employee that relates to (Team|Group) as group return employee._type",
        Unsupported,
        "'Joe",
        "full-text search is not supported",
        None,
    ),
    Case(
        "Find okta_user with createdOn > date.now - 1 month as o (That (HAS|ASSIGNED) UserGroup with displayName~=\"Everyone\" as p )? return o.displayName as id, p.displayName as \"EveryoneGroup\"",
        Unsupported,
        "(That",
        "optional traversal `(...)?` is not supported in v1",
        None,
    ),
    Case(
        "Find User (that IS Person)?",
        Unsupported,
        "(that",
        "optional traversal `(...)?` is not supported in v1",
        None,
    ),
    Case(
        "FIND User AS u RETURN count(*)",
        Unsupported,
        "*",
        "`count(*)` is not supported; count an alias: `count(u)`",
        None,
    ),
    Case(
        "FIND #CriticalAsset",
        Unsupported,
        "#",
        "smart classes (`#...`) are not supported",
        None,
    ),
    Case(
        "FIND User WITH name = ${param.name}",
        Unsupported,
        "${",
        "parameters (`${...}`) are not supported",
        None,
    ),
    Case(
        "FIND User WITH name = {{name}}",
        Unsupported,
        "{{",
        "placeholders (`{{...}}`) are not supported in queries",
        None,
    ),
    Case(
        "FIND User WITH email = null",
        Unsupported,
        "null",
        "`null` is not a J1QL value; test a missing property with `undefined`",
        Some(&["`undefined`"]),
    ),
    Case(
        "FIND User AS u RETURN concat(u.a, u.b)",
        Unsupported,
        "concat",
        "function `concat()` is not supported",
        None,
    ),
    Case(
        "FIND User AS u RETURN u.x + 1",
        Unsupported,
        "+",
        "math in RETURN is not supported",
        None,
    ),
    Case(
        "FIND User AS u WHERE count(u) > 2",
        Unsupported,
        "count",
        "aggregates in WHERE are not supported (J1QL filters before it aggregates)",
        None,
    ),
    Case(
        "FIND User WITH name = /a/g",
        Unsupported,
        "/a/g",
        "regex flag `g` is not supported",
        Some(&["`i`"]),
    ),
    Case(
        "FIND User AS u THAT HAS AS r Group RETURN r",
        Unsupported,
        "@r",
        "returning a whole relationship is not supported…",
        None,
    ),
    Case(
        "FIND User AS u RETURN u, u.name",
        Unsupported,
        "u, ",
        "mixing whole entities and properties in RETURN is not supported…",
        None,
    ),
    Case(
        "FIND User RETURN TREE ORDER BY User.name",
        Unsupported,
        "User.name",
        "ORDER BY with RETURN TREE is not supported",
        None,
    ),
];

#[test]
fn error_table() {
    let mut failures = Vec::new();
    for Case(q, kind, needle, message, expected) in CASES {
        let e = err(q);
        let want_at = match needle.strip_prefix('@') {
            // The end of the (one-line) query.
            Some("") => (1, q.chars().count() + 1),
            Some(n) => (1, q[..q.rfind(n).expect("needle")].chars().count() + 1),
            None => at(q, needle),
        };
        let msg_ok = match message.strip_suffix('…') {
            Some(prefix) => e.message.starts_with(prefix),
            None => e.message == *message,
        };
        let exp_ok = expected
            .is_none_or(|x| e.expected == x.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        if e.kind != *kind || (e.line, e.column) != want_at || !msg_ok || !exp_ok {
            failures.push(format!("{q}\n  want {kind:?} at {want_at:?}: {message} {expected:?}\n  got  {:?} at {:?}: {} {:?}", e.kind, (e.line, e.column), e.message, e.expected));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn render_shows_the_line_a_caret_and_the_expected_list() {
    let cases = [
        (
            "FIND User WIHT active = true",
            "error[syntax error]: unexpected `WIHT`\n --> 1:11\n  |\n1 | FIND User WIHT active = true\n  |           ^^^^\n  |\n  = expected one of `WITH`, `AS`, `THAT`, `WHERE`, `RETURN`, `ORDER BY`, `SKIP`, `LIMIT`, the end of the query\n",
        ),
        (
            "FIND User\nWITH active =\n  THAT IS Person",
            "error[syntax error]: unexpected `THAT`\n --> 3:3\n  |\n3 |   THAT IS Person\n  |   ^^^^\n  |\n  = expected a value (string, number, true, false, undefined, date.now, date(...), /regex/)\n",
        ),
    ];
    for (q, rendered) in cases {
        assert_eq!(err(q).render(q), rendered);
    }
}
