//! Recursive-descent parser: tokens to [`QueryAst`] (the grammar is in [`crate::ast`]).
//!
//! Every optional token the parser looks for at the current position is remembered, so
//! an error at that position lists all of them as "expected". Features of J1QL outside
//! our subset are recognised here and refused by name ([`ErrorKind::Unsupported`]).

use crate::ast::*;
use crate::date;
use crate::error::{ErrorKind, QueryError};
use crate::lexer::{Tok, Token, lex};

/// Words that start or separate clauses; they cannot be classes, types, verbs or aliases.
const RESERVED: &[&str] = &[
    "FIND", "UNIQUE", "WITH", "AS", "THAT", "WHERE", "RETURN", "ORDER", "BY", "SKIP", "LIMIT",
    "AND", "OR",
];

pub(crate) fn parse_ast(src: &str) -> Result<QueryAst, QueryError> {
    let toks = lex(src)?;
    let mut p = Parser {
        src,
        toks,
        pos: 0,
        expected: Vec::new(),
    };
    p.query()
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    pos: usize,
    /// What was looked for, unsuccessfully, at `pos`.
    expected: Vec<String>,
}

type PResult<T> = Result<T, QueryError>;

/// Parses one comparison of a condition (WITH or WHERE).
type CmpParser<P, C> = fn(&mut P) -> PResult<C>;
/// Parses one operand of AND or OR, given the comparison parser.
type PartParser<P, C> = fn(&mut P, CmpParser<P, C>) -> PResult<Cond<C>>;

fn is_reserved(w: &str) -> bool {
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(w))
}

impl<'a> Parser<'a> {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].tok
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.pos + n).min(self.toks.len() - 1)].tok
    }

    fn span(&self) -> Span {
        self.toks[self.pos].span.clone()
    }

    fn prev_end(&self) -> usize {
        self.toks[self.pos.saturating_sub(1)].span.end
    }

    fn bump(&mut self) -> Token {
        let t = self.toks[self.pos].clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        self.expected.clear();
        t
    }

    fn expect_note(&mut self, what: &str) {
        if !self.expected.iter().any(|e| e == what) {
            self.expected.push(what.to_owned());
        }
    }

    fn peek_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }

    /// Consumes keyword `kw` if it is next; otherwise remembers it as expected.
    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.peek_kw(kw) {
            self.bump();
            true
        } else {
            self.expect_note(&format!("`{kw}`"));
            false
        }
    }

    /// `kw` followed by what `then` parses, if `kw` is next.
    fn clause<T>(
        &mut self,
        kw: &str,
        then: impl FnOnce(&mut Self) -> PResult<T>,
    ) -> PResult<Option<T>> {
        if self.eat_kw(kw) {
            then(self).map(Some)
        } else {
            Ok(None)
        }
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek() == tok {
            self.bump();
            true
        } else {
            self.expect_note(&format!("`{}`", tok.symbol()));
            false
        }
    }

    fn err(&self, kind: ErrorKind, span: Span, msg: impl Into<String>) -> QueryError {
        QueryError::new(kind, self.src, span, msg)
    }

    /// "unexpected X" at the current token, with everything that was looked for.
    fn unexpected(&mut self, also: &[&str]) -> QueryError {
        for a in also {
            self.expect_note(a);
        }
        let t = &self.toks[self.pos];
        if let Some(e) = self.refuse(t) {
            return e;
        }
        self.err(
            ErrorKind::Syntax,
            t.span.clone(),
            format!("unexpected {}", t.tok.describe()),
        )
        .expected(std::mem::take(&mut self.expected))
    }

    fn expect_kw(&mut self, kw: &str) -> PResult<Span> {
        let span = self.span();
        if self.eat_kw(kw) {
            Ok(span)
        } else {
            Err(self.unexpected(&[]))
        }
    }

    fn expect(&mut self, tok: &Tok) -> PResult<Span> {
        let span = self.span();
        if self.eat(tok) {
            Ok(span)
        } else {
            Err(self.unexpected(&[]))
        }
    }

    /// Tokens that only J1QL features outside our subset use, refused by name.
    fn refuse(&self, t: &Token) -> Option<QueryError> {
        let msg = match &t.tok {
            Tok::Param => "parameters (`${...}`) are not supported",
            Tok::Placeholder => "placeholders (`{{...}}`) are not supported in queries",
            Tok::Hash => "smart classes (`#...`) are not supported",
            _ => return None,
        };
        Some(self.err(ErrorKind::Unsupported, t.span.clone(), msg))
    }

    fn query(&mut self) -> PResult<QueryAst> {
        if let Tok::Str(_) = self.peek() {
            return Err(self.full_text());
        }
        self.expect_kw("FIND")?;
        let unique = if self.peek_kw("UNIQUE") {
            Some(self.bump().span)
        } else {
            None
        };
        if let Tok::Str(_) = self.peek() {
            return Err(self.full_text());
        }
        let find = self.node()?;
        let mut hops = Vec::new();
        loop {
            if self.peek_kw("THAT") {
                hops.push(self.hop()?);
            } else if *self.peek() == Tok::LParen
                && matches!(self.peek_at(1), Tok::Word(w) if w.eq_ignore_ascii_case("THAT"))
            {
                let span = self.span();
                return Err(self.err(
                    ErrorKind::Unsupported,
                    span,
                    "optional traversal `(...)?` is not supported in v1",
                ));
            } else {
                self.expect_note("`THAT`");
                break;
            }
        }
        let where_clause = self.clause("WHERE", |p| p.cond(Self::where_cmp))?;
        let ret = self.clause("RETURN", |p| p.ret())?;
        let mut order_by = Vec::new();
        let order = self.peek_kw("ORDER");
        if order {
            self.bump();
        } else {
            self.expect_note("`ORDER BY`");
        }
        if order {
            self.expect_kw("BY")?;
            loop {
                order_by.push(self.order_key()?);
                if !self.eat(&Tok::Comma) {
                    break;
                }
            }
        }
        let skip = self.clause("SKIP", |p| p.count())?;
        let limit = self.clause("LIMIT", |p| p.count())?;
        if *self.peek() != Tok::Eof {
            return Err(self.unexpected(&["the end of the query"]));
        }
        Ok(QueryAst {
            unique,
            find,
            hops,
            where_clause,
            ret,
            order_by,
            skip,
            limit,
        })
    }

    fn full_text(&self) -> QueryError {
        self.err(
            ErrorKind::Unsupported,
            self.span(),
            "full-text search is not supported",
        )
        .expected(vec!["`FIND` followed by a class, a type or `*`".into()])
    }

    fn count(&mut self) -> PResult<usize> {
        match *self.peek() {
            Tok::Num(n) if n.fract() == 0.0 && (0.0..=1e15).contains(&n) => {
                self.bump();
                Ok(n as usize)
            }
            _ => Err(self.unexpected(&["a whole number"])),
        }
    }

    /// A class, type, verb or alias: a word that is not a clause keyword.
    fn ident(&mut self, what: &str) -> PResult<Name> {
        match self.peek() {
            Tok::Word(w) if !is_reserved(w) => {
                let text = w.clone();
                let span = self.bump().span;
                Ok(Name { text, span })
            }
            _ => Err(self.unexpected(&[what])),
        }
    }

    fn node(&mut self) -> PResult<Node> {
        let selector = self.selector()?;
        let filter = self.clause("WITH", |p| p.cond(Self::with_cmp))?;
        let alias = self.clause("AS", |p| p.ident("an alias"))?;
        if alias.is_some() && self.peek_kw("WITH") {
            let span = self.span();
            return Err(self
                .err(ErrorKind::Syntax, span, "`WITH` must come before `AS`")
                .expected(vec!["`THAT`".into(), "`WHERE`".into(), "`RETURN`".into()]));
        }
        Ok(Node {
            selector,
            filter,
            alias,
        })
    }

    fn selector(&mut self) -> PResult<Selector> {
        const WHAT: &str = "a class or type";
        match self.peek() {
            Tok::Star => Ok(Selector::Any(self.bump().span)),
            Tok::LParen => {
                self.bump();
                let mut terms = vec![self.term()?];
                while self.eat(&Tok::Pipe) {
                    terms.push(self.term()?);
                }
                self.expect(&Tok::RParen)?;
                Ok(Selector::Terms(terms))
            }
            Tok::Str(_) => Err(self.full_text()),
            Tok::Word(_) => Ok(Selector::Terms(vec![self.term()?])),
            _ => Err(self.unexpected(&["`*`", WHAT, "`(`"])),
        }
    }

    fn term(&mut self) -> PResult<Term> {
        let name = self.ident("a class or type")?;
        let kind = if name.text.starts_with(|c: char| c.is_uppercase()) {
            TermKind::Class
        } else {
            TermKind::Type
        };
        Ok(Term { kind, name })
    }

    fn hop(&mut self) -> PResult<Hop> {
        let start = self.bump().span.start; // THAT
        let negated = self.eat(&Tok::Bang);
        let verbs = if self.peek_kw("RELATES") {
            let s = self.bump().span;
            let to = self.expect_kw("TO")?;
            Verbs::Any(s.start..to.end)
        } else if *self.peek() == Tok::LParen {
            self.bump();
            let mut v = vec![self.ident("a verb")?];
            while self.eat(&Tok::Pipe) {
                v.push(self.ident("a verb")?);
            }
            self.expect(&Tok::RParen)?;
            Verbs::Some(v)
        } else {
            self.expect_note("`!`");
            self.expect_note("`RELATES TO`");
            self.expect_note("`(`");
            Verbs::Some(vec![self.ident("a verb")?])
        };
        let span = start..self.prev_end();
        // `TO` after a verb is filler (`THAT CONNECTS TO ...`).
        if matches!(verbs, Verbs::Some(_)) && self.peek_kw("TO") {
            self.bump();
        }
        let direction = if self.eat(&Tok::ArrowOut) {
            Direction::Out
        } else if self.eat(&Tok::ArrowIn) {
            Direction::In
        } else {
            Direction::Both
        };
        let alias = self.clause("AS", |p| p.ident("an alias"))?;
        let target = self.node()?;
        Ok(Hop {
            negated,
            verbs,
            direction,
            alias,
            target,
            span,
        })
    }

    /// `cond`: OR of ANDs of atoms; AND binds tighter than OR.
    fn cond<C>(&mut self, cmp: fn(&mut Self) -> PResult<C>) -> PResult<Cond<C>> {
        self.joined("OR", Cond::Or, Self::and, cmp)
    }

    fn and<C>(&mut self, cmp: fn(&mut Self) -> PResult<C>) -> PResult<Cond<C>> {
        self.joined("AND", Cond::And, Self::atom, cmp)
    }

    /// `part (kw part)*`, one part standing for itself.
    fn joined<C>(
        &mut self,
        kw: &str,
        join: fn(Vec<Cond<C>>) -> Cond<C>,
        part: PartParser<Self, C>,
        cmp: CmpParser<Self, C>,
    ) -> PResult<Cond<C>> {
        let mut parts = vec![part(self, cmp)?];
        while self.eat_kw(kw) {
            parts.push(part(self, cmp)?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            join(parts)
        })
    }

    fn atom<C>(&mut self, cmp: fn(&mut Self) -> PResult<C>) -> PResult<Cond<C>> {
        if self.eat(&Tok::LParen) {
            let c = self.cond(cmp)?;
            self.expect(&Tok::RParen)?;
            return Ok(c);
        }
        Ok(Cond::Cmp(cmp(self)?))
    }

    /// A property name in WITH: `name`, `tag.AccountName`, `[tag.special-name]`.
    fn prop_name(&mut self) -> PResult<Name> {
        match self.peek().clone() {
            Tok::Bracketed(s) => {
                let span = self.bump().span;
                Ok(Name { text: s, span })
            }
            Tok::Word(w) if !is_reserved(&w) => {
                let start = self.bump().span.start;
                let mut text = w;
                self.dotted_rest(&mut text)?;
                Ok(Name {
                    text,
                    span: start..self.prev_end(),
                })
            }
            _ => Err(self.unexpected(&["a property name"])),
        }
    }

    /// `.seg.seg...` continuing a dotted name.
    fn dotted_rest(&mut self, text: &mut String) -> PResult<()> {
        while *self.peek() == Tok::Dot {
            self.bump();
            match self.peek().clone() {
                Tok::Word(seg) => {
                    self.bump();
                    text.push('.');
                    text.push_str(&seg);
                }
                _ => return Err(self.unexpected(&["a property name"])),
            }
        }
        Ok(())
    }

    fn op(&mut self) -> PResult<(Op, Span)> {
        match *self.peek() {
            Tok::Cmp(op) => Ok((op, self.bump().span)),
            _ => {
                Err(self
                    .unexpected(&["a comparison operator (= != < > <= >= ~= ^= $= !~= !^= !$=)"]))
            }
        }
    }

    fn with_cmp(&mut self) -> PResult<WithCmp> {
        let prop = self.prop_name()?;
        let (op, op_span) = self.op()?;
        let rhs = self.rhs()?;
        Ok(WithCmp {
            prop,
            op,
            op_span,
            rhs,
        })
    }

    fn where_cmp(&mut self) -> PResult<WhereCmp> {
        if let Some(e) = self.aggregate_in_where()? {
            return Err(e);
        }
        let lhs = self.prop_ref()?;
        let (op, op_span) = self.op()?;
        let rhs = if matches!(self.peek(), Tok::Word(w) if !is_literal_word(w) && !is_reserved(w)) {
            WhereRhs::Prop(self.prop_ref()?)
        } else {
            WhereRhs::Value(self.rhs()?)
        };
        Ok(WhereCmp {
            lhs,
            op,
            op_span,
            rhs,
        })
    }

    /// `WHERE count(u) > 2`: J1QL filters before it aggregates. A comparison with a
    /// string is reported as the type error it is; otherwise refused by name.
    fn aggregate_in_where(&mut self) -> PResult<Option<QueryError>> {
        let Tok::Word(w) = self.peek() else {
            return Ok(None);
        };
        if agg_func(w).is_none() || *self.peek_at(1) != Tok::LParen {
            return Ok(None);
        }
        let start = self.span().start;
        while !matches!(self.peek(), Tok::RParen | Tok::Eof) {
            self.bump();
        }
        self.expect(&Tok::RParen)?;
        let span = start..self.prev_end();
        let (_, _) = self.op()?;
        let rhs = self.rhs()?;
        if let Rhs::One(Literal {
            value: v @ (LitValue::Str(_) | LitValue::Bool(_) | LitValue::Regex(_)),
            span: vspan,
        }) = &rhs
        {
            return Ok(Some(
                self.err(
                    ErrorKind::TypeMismatch,
                    vspan.clone(),
                    format!(
                        "`{}` is a number; it cannot be compared with {}",
                        &self.src[span],
                        v.describe()
                    ),
                )
                .expected(vec!["a number".into()]),
            ));
        }
        Ok(Some(self.err(
            ErrorKind::Unsupported,
            span,
            "aggregates in WHERE are not supported (J1QL filters before it aggregates)",
        )))
    }

    /// `alias.prop` (the property may be dotted or bracketed).
    fn prop_ref(&mut self) -> PResult<PropRef> {
        let alias = self.ident("an alias")?;
        self.expect(&Tok::Dot)?;
        let prop = self.prop_name()?;
        Ok(PropRef { alias, prop })
    }

    fn rhs(&mut self) -> PResult<Rhs> {
        if *self.peek() != Tok::LParen {
            return Ok(Rhs::One(self.literal()?));
        }
        self.bump();
        let mut items = vec![self.literal()?];
        let mut joiner: Option<(bool, Span)> = None;
        loop {
            let span = self.span();
            let all = if self.eat_kw("OR") {
                false
            } else if self.eat_kw("AND") {
                true
            } else {
                break;
            };
            match &joiner {
                Some((j, _)) if *j != all => {
                    return Err(self
                        .err(
                            ErrorKind::Syntax,
                            span,
                            "a value list takes one joiner: all OR or all AND",
                        )
                        .expected(vec![
                            if *j { "`AND`".into() } else { "`OR`".into() },
                            "`)`".into(),
                        ]));
                }
                _ => joiner = Some((all, span)),
            }
            items.push(self.literal()?);
        }
        self.expect(&Tok::RParen)?;
        Ok(Rhs::List {
            all: joiner.is_some_and(|j| j.0),
            items,
        })
    }

    fn literal(&mut self) -> PResult<Literal> {
        let start = self.span();
        let value = match self.peek().clone() {
            Tok::Str(s) => {
                self.bump();
                LitValue::Str(s)
            }
            Tok::Num(n) => {
                self.bump();
                LitValue::Num(n)
            }
            Tok::Minus if matches!(self.peek_at(1), Tok::Num(_)) => {
                self.bump();
                let Tok::Num(n) = self.bump().tok else {
                    unreachable!("peeked a number")
                };
                LitValue::Num(-n)
            }
            Tok::Regex { pattern, flags } => self.regex(pattern, &flags)?,
            Tok::Date(text) => match date::parse_iso(&text) {
                Some(ms) => {
                    self.bump();
                    LitValue::Date(ms)
                }
                None => {
                    return Err(self
                        .err(
                            ErrorKind::Syntax,
                            start,
                            format!("`{text}` is not an ISO-8601 date"),
                        )
                        .expected(vec![
                            "a date like `date(2019-10-30)` or `date(2019-10-30T12:00:00Z)`".into(),
                        ]));
                }
            },
            Tok::Word(w) if w.eq_ignore_ascii_case("true") || w.eq_ignore_ascii_case("false") => {
                self.bump();
                LitValue::Bool(w.eq_ignore_ascii_case("true"))
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("undefined") => {
                self.bump();
                LitValue::Undefined
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("null") => {
                return Err(self
                    .err(
                        ErrorKind::Unsupported,
                        start,
                        "`null` is not a J1QL value; test a missing property with `undefined`",
                    )
                    .expected(vec!["`undefined`".into()]));
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("date") => self.date_now()?,
            _ => return Err(self.unexpected(&[
                "a value (string, number, true, false, undefined, date.now, date(...), /regex/)",
            ])),
        };
        Ok(Literal {
            value,
            span: start.start..self.prev_end(),
        })
    }

    fn regex(&mut self, pattern: String, flags: &str) -> PResult<LitValue> {
        let span = self.span();
        if let Some(bad) = flags.chars().find(|&c| c != 'i') {
            return Err(self
                .err(
                    ErrorKind::Unsupported,
                    span,
                    format!("regex flag `{bad}` is not supported"),
                )
                .expected(vec!["`i`".into()]));
        }
        let case_insensitive = flags.contains('i');
        let regex = regex::RegexBuilder::new(&pattern)
            .case_insensitive(case_insensitive)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| {
                let detail = e.to_string();
                let last = detail.lines().last().unwrap_or("invalid").trim().to_owned();
                self.err(
                    ErrorKind::Syntax,
                    span.clone(),
                    format!("invalid regex: {last}"),
                )
            })?;
        self.bump();
        Ok(LitValue::Regex(RegexLit {
            pattern,
            case_insensitive,
            regex,
        }))
    }

    /// `date.now`, optionally `- N unit` / `+ N unit` (spacing free: `date.now-12months`).
    fn date_now(&mut self) -> PResult<LitValue> {
        self.bump(); // date
        self.expect(&Tok::Dot)?;
        match self.peek() {
            Tok::Word(w) if w.eq_ignore_ascii_case("now") => {
                self.bump();
            }
            _ => return Err(self.unexpected(&["`now`"])),
        }
        let sign = match self.peek() {
            Tok::Minus => -1,
            Tok::Plus => 1,
            _ => {
                return Ok(LitValue::DateNow {
                    sign: 1,
                    amount: 0,
                    unit: DateUnit::Day,
                });
            }
        };
        self.bump();
        let amount = match *self.peek() {
            Tok::Num(n) if n.fract() == 0.0 && (0.0..=1e6).contains(&n) => n as i64,
            _ => return Err(self.unexpected(&["a whole number of hours, days, months or years"])),
        };
        self.bump();
        let unit = match self.peek() {
            Tok::Word(w) => date::unit(w),
            _ => None,
        };
        let Some(unit) = unit else {
            let units = date::UNITS
                .iter()
                .map(|u| format!("`{u}`"))
                .collect::<Vec<_>>();
            return Err(self.unexpected(&units.iter().map(String::as_str).collect::<Vec<_>>()));
        };
        self.bump();
        Ok(LitValue::DateNow { sign, amount, unit })
    }

    fn ret(&mut self) -> PResult<Return> {
        if self.peek_kw("TREE") {
            let span = self.bump().span;
            return Ok(Return::Tree(span));
        }
        self.expect_note("`TREE`");
        let mut items = vec![self.ret_item()?];
        while self.eat(&Tok::Comma) {
            items.push(self.ret_item()?);
        }
        Ok(Return::Items(items))
    }

    fn ret_item(&mut self) -> PResult<ReturnItem> {
        let start = self.span().start;
        let expr = match (self.peek().clone(), self.peek_at(1).clone()) {
            (Tok::Word(w), Tok::LParen) => self.call(&w)?,
            (Tok::Star, _) => {
                let span = self.span();
                return Err(self
                    .err(
                        ErrorKind::Unsupported,
                        span,
                        "`RETURN *` is not supported; return aliases or `alias.*`",
                    )
                    .expected(vec!["an alias".into(), "`TREE`".into()]));
            }
            _ => {
                let alias = self.ident("an alias")?;
                if self.eat(&Tok::Dot) {
                    if self.eat(&Tok::Star) {
                        ReturnExpr::All(alias)
                    } else {
                        ReturnExpr::Prop(PropRef {
                            alias,
                            prop: self.prop_name()?,
                        })
                    }
                } else {
                    ReturnExpr::Alias(alias)
                }
            }
        };
        if let Tok::Plus | Tok::Minus | Tok::Star | Tok::Regex { .. } = self.peek() {
            let span = self.span();
            return Err(self.err(
                ErrorKind::Unsupported,
                span,
                "math in RETURN is not supported",
            ));
        }
        let label = if self.eat_kw("AS") {
            match self.peek().clone() {
                Tok::Str(s) => Some(Name {
                    text: s,
                    span: self.bump().span,
                }),
                _ => Some(self.ident("a label")?),
            }
        } else {
            None
        };
        Ok(ReturnItem {
            expr,
            label,
            span: start..self.prev_end(),
        })
    }

    fn call(&mut self, name: &str) -> PResult<ReturnExpr> {
        let span = self.span();
        let Some(func) = agg_func(name) else {
            return Err(self
                .err(
                    ErrorKind::Unsupported,
                    span,
                    format!("function `{name}()` is not supported"),
                )
                .expected(
                    ["count", "min", "max", "avg", "sum"]
                        .iter()
                        .map(|f| format!("`{f}(...)`"))
                        .collect(),
                ));
        };
        self.bump();
        self.bump(); // (
        if *self.peek() == Tok::Star {
            let span = self.span();
            return Err(self
                .err(
                    ErrorKind::Unsupported,
                    span,
                    format!(
                        "`{}(*)` is not supported; count an alias: `count(u)`",
                        func.name()
                    ),
                )
                .expected(vec!["an alias".into()]));
        }
        let alias = self.ident("an alias")?;
        let prop = if self.eat(&Tok::Dot) {
            Some(self.prop_name()?)
        } else {
            None
        };
        self.expect(&Tok::RParen)?;
        Ok(ReturnExpr::Agg { func, alias, prop })
    }

    fn order_key(&mut self) -> PResult<OrderKey> {
        let name = self.ident("an alias property or a RETURN label")?;
        let target = if self.eat(&Tok::Dot) {
            OrderTarget::Prop(PropRef {
                alias: name,
                prop: self.prop_name()?,
            })
        } else {
            OrderTarget::Label(name)
        };
        let descending = if self.eat_kw("DESC") {
            true
        } else {
            self.eat_kw("ASC");
            false
        };
        Ok(OrderKey { target, descending })
    }
}

fn is_literal_word(w: &str) -> bool {
    ["true", "false", "undefined", "null", "date"]
        .iter()
        .any(|l| l.eq_ignore_ascii_case(w))
}

fn agg_func(w: &str) -> Option<AggFunc> {
    Some(match w.to_ascii_lowercase().as_str() {
        "count" => AggFunc::Count,
        "min" => AggFunc::Min,
        "max" => AggFunc::Max,
        "avg" => AggFunc::Avg,
        "sum" => AggFunc::Sum,
        _ => return None,
    })
}
