//! `{{ ... }}` templates: the small JavaScript-like expression language of J1's alert rules.
//!
//! Grammar (loosest binding first), parsed by hand-written recursive descent:
//! ```text
//! or      := and ("||" and)*
//! and     := eq ("&&" eq)*
//! eq      := cmp (("==" | "!=") cmp)*
//! cmp     := add ((">" | ">=" | "<" | "<=") add)*
//! add     := mul (("+" | "-") mul)*
//! mul     := unary (("*" | "/" | "%") unary)*
//! unary   := ("!" | "-") unary | postfix
//! postfix := primary ("." IDENT | "[" or "]")*
//! primary := NUMBER | STRING | true | false | null | IDENT | "(" or ")"
//! ```
//! Variables: `queries.<name>.total`, `queries.<name>.data` (then any property or index access),
//! `alertLevel`, `alertRuleName`, `alertRuleDescription`. Names are checked when a rule is
//! loaded ([`Expr::check`]), so a typo fails before anything runs, with its column.
//!
//! Values are JSON values. Semantics follow JavaScript where J1's templates do: `+` adds
//! numbers and concatenates when either side is a string, `&&`/`||` short-circuit and yield an
//! operand, `!` uses JavaScript truthiness. Where JavaScript would quietly produce `NaN`,
//! `Infinity` or a type coercion (`"1" < 2`), evaluation fails with a message instead, so a
//! broken rule is visible. `==` is strict (no coercion: `1 == "1"` is false). A missing
//! property or index yields `null` (also on `null`), so `data[0].properties.email` on an
//! empty result is `null`, not an error.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::Value;

/// A template or expression that failed to parse or names an unknown variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct TemplateError {
    /// 1-based column (in characters) within the template text.
    pub column: usize,
    pub message: String,
}

/// A template expression failed while it was evaluated (a type error, a division by zero).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct EvalError {
    /// 1-based column (in characters) of the operator or variable that failed.
    pub column: usize,
    pub message: String,
}

/// The variables a template can read.
pub const VARIABLES: &[&str] = &[
    "queries.<name>.total",
    "queries.<name>.data",
    "alertLevel",
    "alertRuleName",
    "alertRuleDescription",
];

/// What a template sees while a rule is evaluated.
#[derive(Debug, Clone, Default)]
pub struct Scope<'a> {
    /// Query name -> (total, data).
    pub queries: BTreeMap<&'a str, (usize, &'a Value)>,
    /// `alertLevel` as set so far by `SET_PROPERTY` (null before).
    pub alert_level: Option<&'static str>,
    pub rule_name: &'a str,
    pub rule_description: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinaryOp {
    fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "||",
            BinaryOp::And => "&&",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
        }
    }

    /// The comparison operators of J1's JSON `when` form (`=` is J1's spelling of `==`).
    pub fn from_condition_operator(op: &str) -> Option<BinaryOp> {
        Some(match op {
            ">" => BinaryOp::Gt,
            "<" => BinaryOp::Lt,
            ">=" => BinaryOp::Ge,
            "<=" => BinaryOp::Le,
            "=" | "==" => BinaryOp::Eq,
            "!=" => BinaryOp::Ne,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UnaryOp {
    Not,
    Neg,
}

/// One step of a variable path: `.name` or `[expr]`.
#[derive(Debug, Clone, PartialEq)]
enum Access {
    Field(String),
    Index(Box<Expr>),
}

/// A parsed template expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    kind: ExprKind,
    /// 1-based column of the expression's operator, literal or variable.
    column: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum ExprKind {
    Literal(Value),
    Var {
        root: String,
        path: Vec<(Access, usize)>,
    },
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
}

impl Expr {
    /// Parses a bare expression (no braces), e.g. the left side of a JSON `when` comparison.
    pub fn parse(text: &str) -> Result<Expr, TemplateError> {
        let chars: Vec<char> = text.chars().collect();
        let mut parser = Parser::new(&chars, 0);
        let expr = parser.expression()?;
        match parser.next_token()? {
            (Token::Eof, _) => Ok(expr),
            (token, column) => Err(TemplateError {
                column,
                message: format!(
                    "expected the end of the expression, found {}",
                    token.describe()
                ),
            }),
        }
    }

    /// A literal value (the right side of a JSON `when` comparison).
    pub fn literal(value: Value, column: usize) -> Expr {
        Expr {
            kind: ExprKind::Literal(value),
            column,
        }
    }

    /// `lhs op rhs`, for the JSON `when` form.
    pub fn binary(op: BinaryOp, lhs: Expr, rhs: Expr) -> Expr {
        let column = lhs.column;
        Expr {
            kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
            column,
        }
    }

    /// Whether the expression reads `queries.<query>.data` (building it is most of a large
    /// query's cost, so it is built only for rules that read it).
    pub fn reads_data(&self, query: &str) -> bool {
        match &self.kind {
            ExprKind::Literal(_) => false,
            ExprKind::Unary(_, inner) => inner.reads_data(query),
            ExprKind::Binary(_, lhs, rhs) => lhs.reads_data(query) || rhs.reads_data(query),
            ExprKind::Var { root, path } => {
                let direct = root == "queries"
                    && matches!(path.first(), Some((Access::Field(name), _)) if name == query)
                    && matches!(path.get(1), Some((Access::Field(field), _)) if field == "data");
                direct
                    || path.iter().any(|(access, _)| {
                        matches!(access, Access::Index(index) if index.reads_data(query))
                    })
            }
        }
    }

    /// Checks that every variable exists: `queries.<name>` must name one of `query_names`.
    pub fn check(&self, query_names: &[&str]) -> Result<(), TemplateError> {
        match &self.kind {
            ExprKind::Literal(_) => Ok(()),
            ExprKind::Unary(_, inner) => inner.check(query_names),
            ExprKind::Binary(_, lhs, rhs) => {
                lhs.check(query_names)?;
                rhs.check(query_names)
            }
            ExprKind::Var { root, path } => check_variable(root, path, self.column, query_names),
        }
    }

    /// Evaluates the expression.
    pub fn eval(&self, scope: &Scope<'_>) -> Result<Value, EvalError> {
        let fail = |message: String| EvalError {
            column: self.column,
            message,
        };
        match &self.kind {
            ExprKind::Literal(value) => Ok(value.clone()),
            ExprKind::Var { root, path } => {
                Ok(lookup(root, path, scope, self.column)?.into_owned())
            }
            ExprKind::Unary(UnaryOp::Not, inner) => Ok(Value::Bool(!truthy(&inner.eval(scope)?))),
            ExprKind::Unary(UnaryOp::Neg, inner) => match inner.eval(scope)?.as_f64() {
                Some(number) => Ok(number_value(-number)),
                None => Err(fail("unary - needs a number".to_owned())),
            },
            ExprKind::Binary(BinaryOp::And, lhs, rhs) => {
                let left = lhs.eval(scope)?;
                if truthy(&left) {
                    rhs.eval(scope)
                } else {
                    Ok(left)
                }
            }
            ExprKind::Binary(BinaryOp::Or, lhs, rhs) => {
                let left = lhs.eval(scope)?;
                if truthy(&left) {
                    Ok(left)
                } else {
                    rhs.eval(scope)
                }
            }
            ExprKind::Binary(op, lhs, rhs) => {
                binary(*op, &lhs.eval(scope)?, &rhs.eval(scope)?).map_err(fail)
            }
        }
    }
}

fn check_variable(
    root: &str,
    path: &[(Access, usize)],
    column: usize,
    query_names: &[&str],
) -> Result<(), TemplateError> {
    for (access, _) in path {
        if let Access::Index(index) = access {
            index.check(query_names)?;
        }
    }
    match root {
        "queries" => {
            let Some((Access::Field(name), name_column)) = path.first() else {
                return Err(TemplateError {
                    column,
                    message:
                        "`queries` needs a query name: queries.<name>.total or queries.<name>.data"
                            .to_owned(),
                });
            };
            if !query_names.contains(&name.as_str()) {
                return Err(TemplateError {
                    column: *name_column,
                    message: format!(
                        "unknown query {name:?} (this rule's queries: {})",
                        query_names.join(", ")
                    ),
                });
            }
            match path.get(1) {
                Some((Access::Field(field), _)) if field == "data" => Ok(()),
                Some((Access::Field(field), _)) if field == "total" => match path.get(2) {
                    None => Ok(()),
                    Some((_, after)) => Err(TemplateError {
                        column: *after,
                        message: format!("queries.{name}.total is a number: it has no properties"),
                    }),
                },
                Some((_, field_column)) => Err(TemplateError {
                    column: *field_column,
                    message: format!("queries.{name} has only .total and .data"),
                }),
                None => Err(TemplateError {
                    column: *name_column,
                    message: format!("queries.{name} needs .total or .data"),
                }),
            }
        }
        "alertLevel" | "alertRuleName" | "alertRuleDescription" => match path.first() {
            None => Ok(()),
            Some((_, after)) => Err(TemplateError {
                column: *after,
                message: format!("{root} is a string: it has no properties"),
            }),
        },
        _ => Err(TemplateError {
            column,
            message: format!(
                "unknown variable {root:?} (known: {})",
                VARIABLES.join(", ")
            ),
        }),
    }
}

fn lookup<'s>(
    root: &str,
    path: &[(Access, usize)],
    scope: &'s Scope<'_>,
    column: usize,
) -> Result<Cow<'s, Value>, EvalError> {
    let text = |s: Option<&str>| Cow::Owned(s.map_or(Value::Null, |s| Value::String(s.to_owned())));
    match root {
        "alertLevel" => Ok(text(scope.alert_level)),
        "alertRuleName" => Ok(text(Some(scope.rule_name))),
        "alertRuleDescription" => Ok(text(Some(scope.rule_description))),
        "queries" => {
            let (Some((Access::Field(name), _)), Some((Access::Field(field), _))) =
                (path.first(), path.get(1))
            else {
                return Err(unchecked(column));
            };
            let Some((total, data)) = scope.queries.get(name.as_str()) else {
                return Err(EvalError {
                    column,
                    message: format!("query {name:?} has no result"),
                });
            };
            match field.as_str() {
                "total" => Ok(Cow::Owned(Value::from(*total))),
                "data" => {
                    let mut current: Cow<'s, Value> = Cow::Borrowed(*data);
                    for (access, _) in &path[2..] {
                        current = access_value(current, access, scope)?;
                    }
                    Ok(current)
                }
                _ => Err(unchecked(column)),
            }
        }
        _ => Err(unchecked(column)),
    }
}

/// Variables are checked at load time; reaching this means a rule skipped the check.
fn unchecked(column: usize) -> EvalError {
    EvalError {
        column,
        message: "unknown variable (the rule was not checked)".to_owned(),
    }
}

fn access_value<'s>(
    current: Cow<'s, Value>,
    access: &Access,
    scope: &Scope<'_>,
) -> Result<Cow<'s, Value>, EvalError> {
    let key = match access {
        Access::Field(name) => Value::String(name.clone()),
        Access::Index(index) => index.eval(scope)?,
    };
    // Borrowed values stay borrowed: `data[0].properties.email` copies only the email.
    fn pick<'v>(value: &'v Value, key: &Value) -> Option<&'v Value> {
        match (value, key) {
            (Value::Object(map), Value::String(name)) => map.get(name),
            (Value::Array(items), Value::Number(n)) => n
                .as_u64()
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| items.get(i)),
            _ => None,
        }
    }
    // `.length` of an array or string, as in JavaScript.
    let length = match (current.as_ref(), &key) {
        (Value::Array(items), Value::String(name)) if name == "length" => Some(items.len()),
        (Value::String(s), Value::String(name)) if name == "length" => Some(s.chars().count()),
        _ => None,
    };
    if let Some(length) = length {
        return Ok(Cow::Owned(Value::from(length)));
    }
    Ok(match current {
        Cow::Borrowed(value) => pick(value, &key).map_or(Cow::Owned(Value::Null), Cow::Borrowed),
        Cow::Owned(value) => Cow::Owned(pick(&value, &key).cloned().unwrap_or(Value::Null)),
    })
}

/// JavaScript truthiness: false, null, 0 and "" are false; arrays and objects are true.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// A number as JSON, integral values as integers (so `2 + 3` renders as `5`, not `5.0`).
fn number_value(number: f64) -> Value {
    // 2^53: the largest range where every integer is exact in f64.
    if number.fract() == 0.0 && number.abs() < 9_007_199_254_740_992.0 {
        Value::from(number as i64)
    } else {
        serde_json::Number::from_f64(number).map_or(Value::Null, Value::Number)
    }
}

/// Text of a value inside an interpolated string: strings as they are, null as empty,
/// everything else as JSON.
pub fn to_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Strict equality; numbers compare by value (`1 == 1.0`).
fn equal(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| equal(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| equal(v, w)))
        }
        _ => left == right,
    }
}

/// The binary operators other than the short-circuiting `&&` and `||`.
pub(crate) fn binary(op: BinaryOp, left: &Value, right: &Value) -> Result<Value, String> {
    let mismatch = || {
        format!(
            "{} needs two numbers{}, got {} and {}",
            op.symbol(),
            if matches!(
                op,
                BinaryOp::Gt | BinaryOp::Ge | BinaryOp::Lt | BinaryOp::Le
            ) {
                " or two strings"
            } else {
                ""
            },
            type_name(left),
            type_name(right)
        )
    };
    match op {
        BinaryOp::Eq => return Ok(Value::Bool(equal(left, right))),
        BinaryOp::Ne => return Ok(Value::Bool(!equal(left, right))),
        BinaryOp::Add if left.is_string() || right.is_string() => {
            return Ok(Value::String(to_text(left) + &to_text(right)));
        }
        BinaryOp::Gt | BinaryOp::Ge | BinaryOp::Lt | BinaryOp::Le => {
            let ordering = match (left, right) {
                (Value::String(a), Value::String(b)) => a.cmp(b),
                _ => {
                    let (Some(a), Some(b)) = (left.as_f64(), right.as_f64()) else {
                        return Err(mismatch());
                    };
                    a.partial_cmp(&b).ok_or_else(mismatch)?
                }
            };
            return Ok(Value::Bool(match op {
                BinaryOp::Gt => ordering.is_gt(),
                BinaryOp::Ge => ordering.is_ge(),
                BinaryOp::Lt => ordering.is_lt(),
                _ => ordering.is_le(),
            }));
        }
        _ => {}
    }
    let (Some(a), Some(b)) = (left.as_f64(), right.as_f64()) else {
        return Err(mismatch());
    };
    let result = match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div | BinaryOp::Rem if b == 0.0 => {
            return Err(format!("{} by zero", op.symbol()));
        }
        BinaryOp::Div => a / b,
        BinaryOp::Rem => a % b,
        _ => unreachable!("handled above"),
    };
    Ok(number_value(result))
}

/// One piece of a text template.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Expr(Expr),
}

/// A string with `{{ ... }}` expressions in it.
#[derive(Debug, Clone, PartialEq)]
pub struct TextTemplate {
    source: String,
    parts: Vec<Part>,
}

impl TextTemplate {
    /// Parses `text`; text outside `{{ }}` is kept as is.
    pub fn parse(text: &str) -> Result<TextTemplate, TemplateError> {
        let chars: Vec<char> = text.chars().collect();
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut i = 0;
        while i < chars.len() {
            if chars[i] == '{' && chars.get(i + 1) == Some(&'{') {
                if !literal.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut literal)));
                }
                let mut parser = Parser::new(&chars, i + 2);
                let expr = parser.expression()?;
                match parser.next_token()? {
                    (Token::Close, _) => {}
                    (Token::Eof, _) => {
                        return Err(TemplateError {
                            column: i + 1,
                            message: "`{{` is not closed by `}}`".to_owned(),
                        });
                    }
                    (token, column) => {
                        return Err(TemplateError {
                            column,
                            message: format!("expected `}}}}`, found {}", token.describe()),
                        });
                    }
                }
                parts.push(Part::Expr(expr));
                i = parser.pos;
            } else {
                literal.push(chars[i]);
                i += 1;
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(TextTemplate {
            source: text.to_owned(),
            parts,
        })
    }

    /// The text as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The expression when the text is exactly one `{{ }}` (surrounding spaces allowed).
    pub fn single_expression(&self) -> Option<&Expr> {
        let mut exprs = self.parts.iter().filter_map(|part| match part {
            Part::Expr(expr) => Some(expr),
            Part::Text(_) => None,
        });
        let only = exprs.next()?;
        let rest_blank = exprs.next().is_none()
            && self.parts.iter().all(|part| match part {
                Part::Text(text) => text.trim().is_empty(),
                Part::Expr(_) => true,
            });
        rest_blank.then_some(only)
    }

    /// Whether an expression of the text reads `queries.<query>.data`.
    pub fn reads_data(&self, query: &str) -> bool {
        self.parts.iter().any(|part| match part {
            Part::Expr(expr) => expr.reads_data(query),
            Part::Text(_) => false,
        })
    }

    pub fn check(&self, query_names: &[&str]) -> Result<(), TemplateError> {
        self.parts.iter().try_for_each(|part| match part {
            Part::Expr(expr) => expr.check(query_names),
            Part::Text(_) => Ok(()),
        })
    }

    /// Interpolates: each expression's value as text ([`to_text`]).
    pub fn render_text(&self, scope: &Scope<'_>) -> Result<String, EvalError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Expr(expr) => out.push_str(&to_text(&expr.eval(scope)?)),
            }
        }
        Ok(out)
    }

    /// A JSON value: a text that is exactly one `{{ }}` yields the expression's JSON value
    /// (so `"{{queries.query0.data}}"` inserts the array, `"{{queries.query0.total}}"` the
    /// number); any other text is interpolated into a string.
    pub fn render_value(&self, scope: &Scope<'_>) -> Result<Value, EvalError> {
        match self.single_expression() {
            Some(expr) if self.parts.len() == 1 => expr.eval(scope),
            _ => self.render_text(scope).map(Value::String),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    Str(String),
    Ident(String),
    Punct(&'static str),
    /// `}}`, the end of a template expression.
    Close,
    Eof,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Number(n) => format!("number {n}"),
            Token::Str(s) => format!("string {s:?}"),
            Token::Ident(name) => format!("`{name}`"),
            Token::Punct(p) => format!("`{p}`"),
            Token::Close => "`}}`".to_owned(),
            Token::Eof => "the end of the text".to_owned(),
        }
    }
}

/// Longest first, so `>=` is not read as `>` then `=`.
const PUNCTUATION: &[&str] = &[
    "==", "!=", ">=", "<=", "&&", "||", ".", "[", "]", "(", ")", "!", "+", "-", "*", "/", "%", ">",
    "<",
];

struct Parser<'c> {
    chars: &'c [char],
    pos: usize,
    peeked: Option<(Token, usize, usize)>,
}

impl<'c> Parser<'c> {
    fn new(chars: &'c [char], pos: usize) -> Self {
        Parser {
            chars,
            pos,
            peeked: None,
        }
    }

    fn error<T>(column: usize, message: impl Into<String>) -> Result<T, TemplateError> {
        Err(TemplateError {
            column,
            message: message.into(),
        })
    }

    /// Lexes one token at `self.pos`; returns it with its 1-based column and the end position.
    fn lex(&self) -> Result<(Token, usize, usize), TemplateError> {
        let chars = self.chars;
        let mut i = self.pos;
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        let column = i + 1;
        let Some(&c) = chars.get(i) else {
            return Ok((Token::Eof, column, i));
        };
        if c == '}' && chars.get(i + 1) == Some(&'}') {
            return Ok((Token::Close, column, i + 2));
        }
        if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            return match text.parse::<f64>() {
                Ok(n) => Ok((Token::Number(n), column, i)),
                Err(_) => Self::error(column, format!("bad number {text:?}")),
            };
        }
        if c == '"' || c == '\'' {
            let mut text = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Self::error(column, "string is not closed"),
                    Some(&q) if q == c => return Ok((Token::Str(text), column, i + 1)),
                    Some('\\') => {
                        let escaped = match chars.get(i + 1) {
                            Some('n') => '\n',
                            Some('t') => '\t',
                            Some(&other) => other,
                            None => return Self::error(column, "string is not closed"),
                        };
                        text.push(escaped);
                        i += 2;
                    }
                    Some(&other) => {
                        text.push(other);
                        i += 1;
                    }
                }
            }
        }
        if c.is_alphabetic() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            return Ok((Token::Ident(chars[start..i].iter().collect()), column, i));
        }
        for p in PUNCTUATION {
            let len = p.chars().count();
            if chars.len() >= i + len && chars[i..i + len].iter().copied().eq(p.chars()) {
                return Ok((Token::Punct(p), column, i + len));
            }
        }
        Self::error(column, format!("unexpected character {c:?}"))
    }

    fn peek(&mut self) -> Result<(Token, usize), TemplateError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lex()?);
        }
        let (token, column, _) = self.peeked.clone().expect("just filled");
        Ok((token, column))
    }

    fn next_token(&mut self) -> Result<(Token, usize), TemplateError> {
        let (token, column, end) = match self.peeked.take() {
            Some(peeked) => peeked,
            None => self.lex()?,
        };
        self.pos = end;
        Ok((token, column))
    }

    /// Consumes the next token when it is one of `ops`.
    fn operator(
        &mut self,
        ops: &[(&str, BinaryOp)],
    ) -> Result<Option<(BinaryOp, usize)>, TemplateError> {
        if let (Token::Punct(p), column) = self.peek()?
            && let Some((_, op)) = ops.iter().find(|(symbol, _)| *symbol == p)
        {
            self.next_token()?;
            return Ok(Some((*op, column)));
        }
        Ok(None)
    }

    fn expression(&mut self) -> Result<Expr, TemplateError> {
        self.level(0)
    }

    /// Binary levels, loosest first.
    fn level(&mut self, depth: usize) -> Result<Expr, TemplateError> {
        const LEVELS: &[&[(&str, BinaryOp)]] = &[
            &[("||", BinaryOp::Or)],
            &[("&&", BinaryOp::And)],
            &[("==", BinaryOp::Eq), ("!=", BinaryOp::Ne)],
            &[
                (">", BinaryOp::Gt),
                (">=", BinaryOp::Ge),
                ("<", BinaryOp::Lt),
                ("<=", BinaryOp::Le),
            ],
            &[("+", BinaryOp::Add), ("-", BinaryOp::Sub)],
            &[
                ("*", BinaryOp::Mul),
                ("/", BinaryOp::Div),
                ("%", BinaryOp::Rem),
            ],
        ];
        let Some(ops) = LEVELS.get(depth) else {
            return self.unary();
        };
        let mut left = self.level(depth + 1)?;
        while let Some((op, column)) = self.operator(ops)? {
            let right = self.level(depth + 1)?;
            left = Expr {
                kind: ExprKind::Binary(op, Box::new(left), Box::new(right)),
                column,
            };
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, TemplateError> {
        let (token, column) = self.peek()?;
        let op = match token {
            Token::Punct("!") => UnaryOp::Not,
            Token::Punct("-") => UnaryOp::Neg,
            _ => return self.postfix(),
        };
        self.next_token()?;
        let inner = self.unary()?;
        Ok(Expr {
            kind: ExprKind::Unary(op, Box::new(inner)),
            column,
        })
    }

    fn postfix(&mut self) -> Result<Expr, TemplateError> {
        let (token, column) = self.next_token()?;
        let root = match token {
            Token::Number(n) => return Ok(Expr::literal(number_value(n), column)),
            Token::Str(s) => return Ok(Expr::literal(Value::String(s), column)),
            Token::Ident(name) if name == "true" => {
                return Ok(Expr::literal(Value::Bool(true), column));
            }
            Token::Ident(name) if name == "false" => {
                return Ok(Expr::literal(Value::Bool(false), column));
            }
            Token::Ident(name) if name == "null" => return Ok(Expr::literal(Value::Null, column)),
            Token::Punct("(") => {
                let inner = self.expression()?;
                return match self.next_token()? {
                    (Token::Punct(")"), _) => Ok(inner),
                    (other, at) => {
                        Self::error(at, format!("expected `)`, found {}", other.describe()))
                    }
                };
            }
            Token::Ident(name) => name,
            other => {
                return Self::error(
                    column,
                    format!("expected a value, found {}", other.describe()),
                );
            }
        };
        let mut path = Vec::new();
        loop {
            match self.peek()? {
                (Token::Punct("."), _) => {
                    self.next_token()?;
                    match self.next_token()? {
                        (Token::Ident(name), at) => path.push((Access::Field(name), at)),
                        (other, at) => {
                            return Self::error(
                                at,
                                format!(
                                    "expected a property name after `.`, found {}",
                                    other.describe()
                                ),
                            );
                        }
                    }
                }
                (Token::Punct("["), at) => {
                    self.next_token()?;
                    let index = self.expression()?;
                    match self.next_token()? {
                        (Token::Punct("]"), _) => path.push((Access::Index(Box::new(index)), at)),
                        (other, at) => {
                            return Self::error(
                                at,
                                format!("expected `]`, found {}", other.describe()),
                            );
                        }
                    }
                }
                _ => break,
            }
        }
        Ok(Expr {
            kind: ExprKind::Var { root, path },
            column,
        })
    }
}
