//! The typed syntax tree of a J1QL query. Each type documents the grammar rule it
//! stands for; keywords are case-insensitive, `/* comments */` may appear anywhere.
//!
//! ```text
//! query    := FIND [UNIQUE] node hop* [WHERE cond<where-cmp>]
//!             [RETURN (TREE | item ("," item)*)]
//!             [ORDER BY key ("," key)*] [SKIP n] [LIMIT n]
//! node     := selector [WITH cond<with-cmp>] [AS alias]
//! selector := "*" | term | "(" term ("|" term)* ")"      term: TitleCase = class, else type
//! hop      := THAT ["!"] verbs [TO] [">>" | "<<"] [AS alias] node
//! verbs    := RELATES TO | VERB | "(" VERB ("|" VERB)* ")"
//! cond<c>  := and (OR and)* ;  and := atom (AND atom)* ;  atom := "(" cond ")" | c
//! with-cmp := prop op rhs                 prop: name ("." name)* | "[" any "]"
//! where-cmp:= alias "." prop op (rhs | alias "." prop)
//! op       := "=" | "!=" | "<" | ">" | "<=" | ">=" | "~=" | "^=" | "$=" | "!~=" | "!^=" | "!$="
//! rhs      := literal | "(" literal ((OR | AND) literal)* ")"     (one joiner per list)
//! literal  := string | number | true | false | undefined | /regex/[i]
//!           | date.now [("-" | "+") number unit] | date(ISO-8601)
//! item     := (alias | alias "." prop | alias ".*" | agg "(" alias ["." prop] ")") [AS label]
//! agg      := count | min | max | avg | sum
//! key      := (alias "." prop | label) [ASC | DESC]
//! ```

use std::ops::Range;

/// A byte range in the query text.
pub type Span = Range<usize>;

/// A name as written, with where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Name {
    pub text: String,
    pub span: Span,
}

/// `query` in the grammar.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryAst {
    /// The span of `UNIQUE`, when given (dedupes RETURN rows).
    pub unique: Option<Span>,
    pub find: Node,
    pub hops: Vec<Hop>,
    pub where_clause: Option<Cond<WhereCmp>>,
    pub ret: Option<Return>,
    pub order_by: Vec<OrderKey>,
    pub skip: Option<usize>,
    pub limit: Option<usize>,
}

/// `node`: what to match at one step of the traversal.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub selector: Selector,
    pub filter: Option<Cond<WithCmp>>,
    pub alias: Option<Name>,
}

/// `selector`: `*`, or one or more classes/types (alternation).
#[derive(Clone, Debug, PartialEq)]
pub enum Selector {
    Any(Span),
    Terms(Vec<Term>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Term {
    pub kind: TermKind,
    pub name: Name,
}

/// The case of a FIND word decides what it matches (J1: TitleCase is a `_class`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TermKind {
    Class,
    Type,
}

/// `hop`: one `THAT` step.
#[derive(Clone, Debug, PartialEq)]
pub struct Hop {
    /// `THAT !VERB`: keeps the previous node when it has no such neighbour.
    pub negated: bool,
    pub verbs: Verbs,
    pub direction: Direction,
    /// An alias for the relationship (`THAT ALLOWS AS rule *`).
    pub alias: Option<Name>,
    pub target: Node,
    /// The span of `THAT` through the verbs.
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Verbs {
    /// `RELATES TO`: any verb.
    Any(Span),
    /// Verbs, compared case-insensitively with relationship `_class`.
    Some(Vec<Name>),
}

/// Relationship direction relative to the node before `THAT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// No arrow: either direction (J1's default).
    Both,
    /// `>>`: from the previous node to the target.
    Out,
    /// `<<`: from the target to the previous node.
    In,
}

impl Direction {
    pub(crate) fn reversed(self) -> Self {
        match self {
            Direction::Both => Direction::Both,
            Direction::Out => Direction::In,
            Direction::In => Direction::Out,
        }
    }
}

/// `cond`: comparisons joined by AND / OR (AND binds tighter), with parentheses.
#[derive(Clone, Debug, PartialEq)]
pub enum Cond<C> {
    Or(Vec<Cond<C>>),
    And(Vec<Cond<C>>),
    Cmp(C),
}

/// `with-cmp`: a property of the node being matched against a value.
#[derive(Clone, Debug, PartialEq)]
pub struct WithCmp {
    pub prop: Name,
    pub op: Op,
    pub op_span: Span,
    pub rhs: Rhs,
}

/// `where-cmp`: an alias's property against a value or another alias's property.
#[derive(Clone, Debug, PartialEq)]
pub struct WhereCmp {
    pub lhs: PropRef,
    pub op: Op,
    pub op_span: Span,
    pub rhs: WhereRhs,
}

#[derive(Clone, Debug, PartialEq)]
pub enum WhereRhs {
    Value(Rhs),
    Prop(PropRef),
}

/// `alias.prop`; the property name may itself contain dots (`u.tag.AccountName`).
#[derive(Clone, Debug, PartialEq)]
pub struct PropRef {
    pub alias: Name,
    pub prop: Name,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    /// `~=`
    Contains,
    /// `^=`
    StartsWith,
    /// `$=`
    EndsWith,
    /// `!~=`
    NotContains,
    /// `!^=`
    NotStartsWith,
    /// `!$=`
    NotEndsWith,
}

impl Op {
    /// The negated operators are the exact negation of a positive one: true wherever it
    /// is false, undefined properties included (J1's truth tables).
    pub fn positive(self) -> (Op, bool) {
        match self {
            Op::Ne => (Op::Eq, true),
            Op::NotContains => (Op::Contains, true),
            Op::NotStartsWith => (Op::StartsWith, true),
            Op::NotEndsWith => (Op::EndsWith, true),
            other => (other, false),
        }
    }

    pub fn is_ordering(self) -> bool {
        matches!(self, Op::Lt | Op::Gt | Op::Le | Op::Ge)
    }

    pub fn is_string(self) -> bool {
        matches!(
            self.positive().0,
            Op::Contains | Op::StartsWith | Op::EndsWith
        )
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Gt => ">",
            Op::Le => "<=",
            Op::Ge => ">=",
            Op::Contains => "~=",
            Op::StartsWith => "^=",
            Op::EndsWith => "$=",
            Op::NotContains => "!~=",
            Op::NotStartsWith => "!^=",
            Op::NotEndsWith => "!$=",
        }
    }
}

/// `rhs`: one value or a list (`= ('a' OR 'b')`, `= ('a' AND 'b')`).
#[derive(Clone, Debug, PartialEq)]
pub enum Rhs {
    One(Literal),
    /// `all` is true for an AND list.
    List {
        all: bool,
        items: Vec<Literal>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Literal {
    pub value: LitValue,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum LitValue {
    Str(String),
    Num(f64),
    Bool(bool),
    /// Tests absence: `= undefined` / `!= undefined`.
    Undefined,
    Regex(RegexLit),
    /// `date.now` plus an offset in a calendar unit, resolved when the query runs.
    DateNow {
        sign: i64,
        amount: i64,
        unit: DateUnit,
    },
    /// `date(ISO-8601)`, in epoch milliseconds.
    Date(i64),
}

impl LitValue {
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            LitValue::Str(_) => "a string",
            LitValue::Num(_) => "a number",
            LitValue::Bool(_) => "a boolean",
            LitValue::Undefined => "undefined",
            LitValue::Regex(_) => "a regex",
            LitValue::DateNow { .. } | LitValue::Date(_) => "a date",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DateUnit {
    Hour,
    Day,
    Month,
    Year,
}

/// `/pattern/flags`, compiled when parsed (the `regex` crate's syntax; flag `i` only).
#[derive(Clone, Debug)]
pub struct RegexLit {
    pub pattern: String,
    pub case_insensitive: bool,
    pub regex: regex::Regex,
}

impl PartialEq for RegexLit {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern && self.case_insensitive == other.case_insensitive
    }
}

/// `RETURN TREE` or a list of items.
#[derive(Clone, Debug, PartialEq)]
pub enum Return {
    Tree(Span),
    Items(Vec<ReturnItem>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct ReturnItem {
    pub expr: ReturnExpr,
    pub label: Option<Name>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ReturnExpr {
    /// A whole entity: `RETURN u`.
    Alias(Name),
    /// One property: `u.email`.
    Prop(PropRef),
    /// Every property and metadata field: `u.*`.
    All(Name),
    /// `count(u)`, `count(u.email)`, `min(u.x)`, ...
    Agg {
        func: AggFunc,
        alias: Name,
        prop: Option<Name>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggFunc {
    Count,
    Min,
    Max,
    Avg,
    Sum,
}

impl AggFunc {
    pub(crate) fn name(self) -> &'static str {
        match self {
            AggFunc::Count => "count",
            AggFunc::Min => "min",
            AggFunc::Max => "max",
            AggFunc::Avg => "avg",
            AggFunc::Sum => "sum",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct OrderKey {
    pub target: OrderTarget,
    pub descending: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum OrderTarget {
    Prop(PropRef),
    /// A RETURN label.
    Label(Name),
}
