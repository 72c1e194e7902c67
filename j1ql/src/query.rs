//! Static checks and resolution: a [`QueryAst`] becomes a [`Query`], the logical plan.
//!
//! Here aliases are resolved (explicit ones, and J1's implicit aliases: class, type and
//! verb names), value lists are expanded (`!= ('a' OR 'b')` is `!= 'a' AND != 'b'`, De
//! Morgan), comparisons are type-checked where the types are known, and the RETURN
//! clause is classified (entities, table, aggregated table, tree).

use crate::ast::*;
use crate::error::{ErrorKind, QueryError};
use crate::parser::parse_ast;

/// Something a query can name: a bound node (0 = the FIND node) or the relationship of a
/// positive hop (0 = the first `THAT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Bind {
    Node(usize),
    Rel(usize),
}

/// One comparison after list expansion, with the operator in its positive form.
#[derive(Clone, Debug)]
pub(crate) struct Leaf {
    pub prop: String,
    pub op: Op,
    pub negated: bool,
    pub value: LitValue,
}

#[derive(Clone, Debug)]
pub(crate) struct NodeSpec {
    pub selector: Selector,
    pub filter: Option<Cond<Leaf>>,
    /// `THAT !VERB target` hops that follow this node: it is kept only when it has no
    /// such neighbour.
    pub negations: Vec<NegSpec>,
}

#[derive(Clone, Debug)]
pub(crate) struct NegSpec {
    pub verbs: Verbs,
    pub selector: Selector,
    pub filter: Option<Cond<Leaf>>,
}

#[derive(Clone, Debug)]
pub(crate) struct HopSpec {
    pub verbs: Verbs,
    pub direction: Direction,
}

#[derive(Clone, Debug)]
pub(crate) struct WhereLeaf {
    pub lhs: (Bind, String),
    pub op: Op,
    pub negated: bool,
    pub rhs: WhereValue,
}

#[derive(Clone, Debug)]
pub(crate) enum WhereValue {
    Lit(LitValue),
    Prop(Bind, String),
}

#[derive(Clone, Debug)]
pub(crate) enum ColExpr {
    Prop(Bind, String),
    All(Bind),
    Agg(AggFunc, Bind, Option<String>),
}

#[derive(Clone, Debug)]
pub(crate) struct Col {
    pub name: String,
    pub expr: ColExpr,
}

#[derive(Clone, Debug)]
pub(crate) enum Output {
    /// Distinct entities of these nodes (the FIND node when there is no RETURN).
    Entities(Vec<usize>),
    /// One row per traversal path, or per group when `aggregated`.
    Table {
        cols: Vec<Col>,
        aggregated: bool,
    },
    Tree,
}

#[derive(Clone, Debug)]
pub(crate) enum OrderBy {
    /// A property of each returned entity.
    EntityProp(String),
    /// A property of an alias in the path (tables without aggregation).
    PathProp(Bind, String),
    /// A returned column.
    Col(usize),
}

/// A parsed and checked J1QL query; run it with [`Query::execute`].
#[derive(Clone, Debug)]
pub struct Query {
    ast: QueryAst,
    pub(crate) nodes: Vec<NodeSpec>,
    /// `hops[i]` joins `nodes[i]` and `nodes[i + 1]`.
    pub(crate) hops: Vec<HopSpec>,
    pub(crate) where_: Option<Cond<WhereLeaf>>,
    pub(crate) output: Output,
    pub(crate) order: Vec<(OrderBy, bool)>,
    pub(crate) unique: bool,
    pub(crate) skip: usize,
    pub(crate) limit: Option<usize>,
}

/// Parses and checks a query: syntax, aliases, comparison types, and the subset.
pub fn parse(text: &str) -> Result<Query, QueryError> {
    let ast = parse_ast(text)?;
    Resolver::new(text).resolve(ast)
}

impl Query {
    /// The syntax tree, as written.
    pub fn ast(&self) -> &QueryAst {
        &self.ast
    }
}

/// Turns one comparison of the syntax tree into a resolved condition.
type CmpFn<'f, 'a, C, L> = dyn FnMut(&Resolver<'a>, &C) -> Result<Cond<L>, QueryError> + 'f;

struct Resolver<'a> {
    src: &'a str,
    explicit: Vec<(String, Bind)>,
    /// (name, bind, case-insensitive): classes and types of nodes, verbs of hops.
    implicit: Vec<(String, Bind, bool)>,
    negated_aliases: Vec<String>,
}

/// Metadata whose type is known, for static type checks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Known {
    Num,
    Bool,
    Str,
}

fn known(prop: &str) -> Option<Known> {
    match prop {
        "_createdOn" | "_beginOn" | "_endOn" | "_version" => Some(Known::Num),
        "_deleted" => Some(Known::Bool),
        "_key" | "_type" | "_class" => Some(Known::Str),
        _ => None,
    }
}

fn known_name(k: Known) -> &'static str {
    match k {
        Known::Num => "a number",
        Known::Bool => "a boolean",
        Known::Str => "a string",
    }
}

impl<'a> Resolver<'a> {
    fn new(src: &'a str) -> Self {
        Resolver {
            src,
            explicit: Vec::new(),
            implicit: Vec::new(),
            negated_aliases: Vec::new(),
        }
    }

    fn err(&self, kind: ErrorKind, span: Span, msg: impl Into<String>) -> QueryError {
        QueryError::new(kind, self.src, span, msg)
    }

    fn define(&mut self, alias: &Option<Name>, bind: Bind) -> Result<(), QueryError> {
        if let Some(a) = alias {
            if self.explicit.iter().any(|(n, _)| *n == a.text)
                || self.negated_aliases.contains(&a.text)
            {
                return Err(self.err(
                    ErrorKind::Syntax,
                    a.span.clone(),
                    format!("alias `{}` is defined twice", a.text),
                ));
            }
            self.explicit.push((a.text.clone(), bind));
        }
        Ok(())
    }

    fn define_node(&mut self, node: &Node, bind: Bind) -> Result<(), QueryError> {
        self.define(&node.alias, bind)?;
        if let Selector::Terms(terms) = &node.selector {
            for t in terms {
                self.implicit.push((t.name.text.clone(), bind, false));
            }
        }
        Ok(())
    }

    fn resolve(mut self, ast: QueryAst) -> Result<Query, QueryError> {
        let mut nodes = vec![NodeSpec {
            selector: ast.find.selector.clone(),
            filter: self.filter(&ast.find.filter)?,
            negations: Vec::new(),
        }];
        self.define_node(&ast.find, Bind::Node(0))?;
        let mut hops = Vec::new();
        for hop in &ast.hops {
            let filter = self.filter(&hop.target.filter)?;
            if hop.negated {
                // A negated hop binds nothing: its aliases name nothing a query can read.
                for a in hop.alias.iter().chain(&hop.target.alias) {
                    if self.explicit.iter().any(|(n, _)| *n == a.text) {
                        return Err(self.err(
                            ErrorKind::Syntax,
                            a.span.clone(),
                            format!("alias `{}` is defined twice", a.text),
                        ));
                    }
                    self.negated_aliases.push(a.text.clone());
                }
                let last = nodes.len() - 1;
                nodes[last].negations.push(NegSpec {
                    verbs: hop.verbs.clone(),
                    selector: hop.target.selector.clone(),
                    filter,
                });
                continue;
            }
            let rel = Bind::Rel(hops.len());
            self.define(&hop.alias, rel)?;
            if let Verbs::Some(vs) = &hop.verbs {
                for v in vs {
                    self.implicit.push((v.text.clone(), rel, true));
                }
            }
            hops.push(HopSpec {
                verbs: hop.verbs.clone(),
                direction: hop.direction,
            });
            nodes.push(NodeSpec {
                selector: hop.target.selector.clone(),
                filter,
                negations: Vec::new(),
            });
            self.define_node(&hop.target, Bind::Node(nodes.len() - 1))?;
        }
        let where_ = match &ast.where_clause {
            Some(c) => Some(self.where_cond(c)?),
            None => None,
        };
        let output = self.output(&ast)?;
        let order = self.order(&ast, &output)?;
        Ok(Query {
            unique: ast.unique.is_some(),
            skip: ast.skip.unwrap_or(0),
            limit: ast.limit,
            nodes,
            hops,
            where_,
            output,
            order,
            ast,
        })
    }

    fn lookup(&self, name: &Name) -> Result<Bind, QueryError> {
        if let Some((_, b)) = self.explicit.iter().find(|(n, _)| *n == name.text) {
            return Ok(*b);
        }
        let mut found: Vec<Bind> = Vec::new();
        for (n, b, ci) in &self.implicit {
            let hit = if *ci {
                n.eq_ignore_ascii_case(&name.text)
            } else {
                *n == name.text
            };
            if hit && !found.contains(b) {
                found.push(*b);
            }
        }
        match found.as_slice() {
            [b] => Ok(*b),
            [] if self.negated_aliases.contains(&name.text) => Err(self.err(
                ErrorKind::UnknownAlias,
                name.span.clone(),
                format!("`{}` names the target of a negated hop (`!VERB`), which binds nothing", name.text),
            )),
            [] => {
                let mut known: Vec<String> = self.explicit.iter().map(|(n, _)| format!("`{n}`")).collect();
                for (n, _, _) in &self.implicit {
                    let n = format!("`{n}`");
                    if !known.contains(&n) {
                        known.push(n);
                    }
                }
                Err(self
                    .err(ErrorKind::UnknownAlias, name.span.clone(), format!("unknown alias `{}`", name.text))
                    .expected(known))
            }
            _ => Err(self.err(
                ErrorKind::UnknownAlias,
                name.span.clone(),
                format!("`{}` is ambiguous: it names more than one step of the traversal; give one an alias with AS", name.text),
            )),
        }
    }

    fn filter(&self, c: &Option<Cond<WithCmp>>) -> Result<Option<Cond<Leaf>>, QueryError> {
        let Some(c) = c else { return Ok(None) };
        Ok(Some(self.map_cond(c, &mut |r: &Self, cmp: &WithCmp| {
            r.expand(
                &cmp.prop.text,
                cmp.op,
                &cmp.op_span,
                &cmp.rhs,
                |op, negated, value| Leaf {
                    prop: cmp.prop.text.clone(),
                    op,
                    negated,
                    value,
                },
            )
        })?))
    }

    fn where_cond(&self, c: &Cond<WhereCmp>) -> Result<Cond<WhereLeaf>, QueryError> {
        self.map_cond(c, &mut |r: &Self, cmp: &WhereCmp| {
            let lhs = (r.lookup(&cmp.lhs.alias)?, cmp.lhs.prop.text.clone());
            match &cmp.rhs {
                WhereRhs::Value(rhs) => r.expand(
                    &cmp.lhs.prop.text,
                    cmp.op,
                    &cmp.op_span,
                    rhs,
                    |op, negated, value| WhereLeaf {
                        lhs: lhs.clone(),
                        op,
                        negated,
                        rhs: WhereValue::Lit(value),
                    },
                ),
                WhereRhs::Prop(p) => {
                    let rb = r.lookup(&p.alias)?;
                    r.check_props(&cmp.lhs.prop.text, cmp.op, &p.prop)?;
                    let (op, negated) = cmp.op.positive();
                    Ok(Cond::Cmp(WhereLeaf {
                        lhs,
                        op,
                        negated,
                        rhs: WhereValue::Prop(rb, p.prop.text.clone()),
                    }))
                }
            }
        })
    }

    fn map_cond<C, L>(
        &self,
        c: &Cond<C>,
        f: &mut CmpFn<'_, 'a, C, L>,
    ) -> Result<Cond<L>, QueryError> {
        Ok(match c {
            Cond::Or(cs) => Cond::Or(
                cs.iter()
                    .map(|c| self.map_cond(c, f))
                    .collect::<Result<_, _>>()?,
            ),
            Cond::And(cs) => Cond::And(
                cs.iter()
                    .map(|c| self.map_cond(c, f))
                    .collect::<Result<_, _>>()?,
            ),
            Cond::Cmp(cmp) => f(self, cmp)?,
        })
    }

    /// One comparison, or a value list expanded with De Morgan for negated operators:
    /// `op (A OR B)` is `op A OR op B`, `!op (A OR B)` is `!op A AND !op B`,
    /// `op (A AND B)` is `op A AND op B`, `!op (A AND B)` is `!op A OR !op B`.
    fn expand<L>(
        &self,
        prop: &str,
        op: Op,
        op_span: &Span,
        rhs: &Rhs,
        mk: impl Fn(Op, bool, LitValue) -> L,
    ) -> Result<Cond<L>, QueryError> {
        let (pos, negated) = op.positive();
        match rhs {
            Rhs::One(lit) => {
                self.check_lit(prop, op, op_span, lit)?;
                Ok(Cond::Cmp(mk(pos, negated, lit.value.clone())))
            }
            Rhs::List { all, items } => {
                let mut leaves = Vec::with_capacity(items.len());
                for lit in items {
                    self.check_lit(prop, op, op_span, lit)?;
                    leaves.push(Cond::Cmp(mk(pos, negated, lit.value.clone())));
                }
                Ok(if *all != negated {
                    Cond::And(leaves)
                } else {
                    Cond::Or(leaves)
                })
            }
        }
    }

    fn mismatch(&self, span: &Span, msg: String, expected: &[&str]) -> QueryError {
        self.err(ErrorKind::TypeMismatch, span.clone(), msg)
            .expected(expected.iter().map(|s| s.to_string()).collect())
    }

    fn check_lit(
        &self,
        prop: &str,
        op: Op,
        _op_span: &Span,
        lit: &Literal,
    ) -> Result<(), QueryError> {
        let v = &lit.value;
        let sym = op.symbol();
        let is_date_or_num = matches!(
            v,
            LitValue::Num(_) | LitValue::Date(_) | LitValue::DateNow { .. }
        );
        match v {
            LitValue::Undefined if !matches!(op, Op::Eq | Op::Ne) => {
                return Err(self.mismatch(
                    &lit.span,
                    format!("`undefined` can only be tested with `=` or `!=`, not `{sym}`"),
                    &["a number", "a date"],
                ));
            }
            LitValue::Regex(_) if !matches!(op, Op::Eq | Op::Ne) => {
                return Err(self.mismatch(
                    &lit.span,
                    format!("a regex can only be used with `=` or `!=`, not `{sym}`"),
                    &["a string"],
                ));
            }
            _ => {}
        }
        if op.is_ordering() && !is_date_or_num {
            return Err(self.mismatch(
                &lit.span,
                format!("`{sym}` compares numbers and dates, not {}", v.describe()),
                &["a number", "a date"],
            ));
        }
        if op.is_string() && !matches!(v, LitValue::Str(_)) {
            return Err(self.mismatch(
                &lit.span,
                format!("`{sym}` compares strings, not {}", v.describe()),
                &["a string"],
            ));
        }
        if let Some(k) = known(prop) {
            let ok = match (k, v) {
                (_, LitValue::Undefined) => true,
                (Known::Num, _) => is_date_or_num,
                (Known::Bool, LitValue::Bool(_)) => true,
                (Known::Str, LitValue::Str(_) | LitValue::Regex(_)) => true,
                _ => false,
            };
            if !ok {
                let what = if k == Known::Num {
                    "a number (epoch ms or a version)"
                } else {
                    known_name(k)
                };
                return Err(self.mismatch(
                    &lit.span,
                    format!(
                        "`{prop}` holds {what}; it cannot be compared with {}",
                        v.describe()
                    ),
                    &[known_name(k)],
                ));
            }
        }
        Ok(())
    }

    fn check_props(&self, lhs: &str, op: Op, rhs: &Name) -> Result<(), QueryError> {
        let (l, r) = (known(lhs), known(&rhs.text));
        if let (Some(l), Some(r)) = (l, r)
            && l != r
        {
            return Err(self.mismatch(
                &rhs.span,
                format!(
                    "`{lhs}` holds {} but `{}` holds {}",
                    known_name(l),
                    rhs.text,
                    known_name(r)
                ),
                &[known_name(l)],
            ));
        }
        for k in [l, r].into_iter().flatten() {
            if (op.is_ordering() && k != Known::Num) || (op.is_string() && k != Known::Str) {
                return Err(self.mismatch(
                    &rhs.span,
                    format!("`{}` cannot compare {}", op.symbol(), known_name(k)),
                    &[],
                ));
            }
        }
        Ok(())
    }

    fn output(&self, ast: &QueryAst) -> Result<Output, QueryError> {
        let items = match &ast.ret {
            None => {
                if let Some(span) = &ast.unique {
                    return Err(self
                        .err(
                            ErrorKind::Syntax,
                            span.clone(),
                            "`UNIQUE` needs a RETURN clause",
                        )
                        .expected(vec!["`RETURN`".into()]));
                }
                return Ok(Output::Entities(vec![0]));
            }
            Some(Return::Tree(_)) => return Ok(Output::Tree),
            Some(Return::Items(items)) => items,
        };
        let whole: Vec<&ReturnItem> = items
            .iter()
            .filter(|i| matches!(i.expr, ReturnExpr::Alias(_)))
            .collect();
        if whole.len() == items.len() {
            let mut nodes = Vec::new();
            for item in items {
                let ReturnExpr::Alias(a) = &item.expr else {
                    unreachable!("all items are aliases")
                };
                match self.lookup(a)? {
                    Bind::Node(n) => {
                        if !nodes.contains(&n) {
                            nodes.push(n);
                        }
                    }
                    Bind::Rel(_) => {
                        return Err(self.err(
                            ErrorKind::Unsupported,
                            a.span.clone(),
                            "returning a whole relationship is not supported; return its properties (`r.prop`, `r.*`) or use RETURN TREE",
                        ));
                    }
                }
                if let Some(l) = &item.label {
                    return Err(self.err(
                        ErrorKind::Syntax,
                        l.span.clone(),
                        "a label names a column; a whole entity has none",
                    ));
                }
            }
            return Ok(Output::Entities(nodes));
        }
        if let Some(item) = whole.first() {
            return Err(self.err(
                ErrorKind::Unsupported,
                item.span.clone(),
                "mixing whole entities and properties in RETURN is not supported; return `alias.*` for all of its properties",
            ));
        }
        let aggregated = items
            .iter()
            .any(|i| matches!(i.expr, ReturnExpr::Agg { .. }));
        let mut cols = Vec::with_capacity(items.len());
        for item in items {
            let (expr, canonical) = match &item.expr {
                ReturnExpr::Prop(p) => (
                    ColExpr::Prop(self.lookup(&p.alias)?, p.prop.text.clone()),
                    format!("{}.{}", p.alias.text, p.prop.text),
                ),
                ReturnExpr::All(a) => {
                    if aggregated {
                        return Err(self.err(
                            ErrorKind::Unsupported,
                            item.span.clone(),
                            "`alias.*` together with aggregates is not supported",
                        ));
                    }
                    (ColExpr::All(self.lookup(a)?), format!("{}.*", a.text))
                }
                ReturnExpr::Agg { func, alias, prop } => {
                    let name = match prop {
                        Some(p) => format!("{}({}.{})", func.name(), alias.text, p.text),
                        None => format!("{}({})", func.name(), alias.text),
                    };
                    if *func != AggFunc::Count && prop.is_none() {
                        return Err(self
                            .err(
                                ErrorKind::TypeMismatch,
                                item.span.clone(),
                                format!(
                                    "`{}` needs a numeric property: `{}(alias.prop)`",
                                    func.name(),
                                    func.name()
                                ),
                            )
                            .expected(vec![format!("`{}.<property>`", alias.text)]));
                    }
                    (
                        ColExpr::Agg(
                            *func,
                            self.lookup(alias)?,
                            prop.as_ref().map(|p| p.text.clone()),
                        ),
                        name,
                    )
                }
                ReturnExpr::Alias(_) => unreachable!("whole aliases were handled above"),
            };
            let name = item.label.as_ref().map_or(canonical, |l| l.text.clone());
            cols.push(Col { name, expr });
        }
        Ok(Output::Table { cols, aggregated })
    }

    fn order(&self, ast: &QueryAst, output: &Output) -> Result<Vec<(OrderBy, bool)>, QueryError> {
        let mut out = Vec::new();
        for key in &ast.order_by {
            let by = match (output, &key.target) {
                (Output::Tree, target) => {
                    let span = match target {
                        OrderTarget::Prop(p) => p.alias.span.start..p.prop.span.end,
                        OrderTarget::Label(l) => l.span.clone(),
                    };
                    return Err(self.err(
                        ErrorKind::Unsupported,
                        span,
                        "ORDER BY with RETURN TREE is not supported",
                    ));
                }
                (Output::Entities(nodes), OrderTarget::Prop(p)) => {
                    let b = self.lookup(&p.alias)?;
                    if !matches!(b, Bind::Node(n) if nodes.contains(&n)) {
                        return Err(self.err(
                            ErrorKind::UnknownAlias,
                            p.alias.span.clone(),
                            format!(
                                "ORDER BY sorts the returned entities; `{}` is not one of them",
                                p.alias.text
                            ),
                        ));
                    }
                    OrderBy::EntityProp(p.prop.text.clone())
                }
                (Output::Entities(_), OrderTarget::Label(l)) => {
                    return Err(self
                        .err(
                            ErrorKind::UnknownAlias,
                            l.span.clone(),
                            format!("unknown label `{}`", l.text),
                        )
                        .expected(vec!["`alias.property`".into()]));
                }
                (Output::Table { cols, aggregated }, target) => {
                    let (text, span) = match target {
                        OrderTarget::Prop(p) => (
                            format!("{}.{}", p.alias.text, p.prop.text),
                            p.alias.span.start..p.prop.span.end,
                        ),
                        OrderTarget::Label(l) => (l.text.clone(), l.span.clone()),
                    };
                    let by_name = cols.iter().position(|c| c.name == text);
                    let by_expr = match target {
                        OrderTarget::Prop(p) => {
                            let b = self.lookup(&p.alias)?;
                            cols.iter().position(|c| matches!(&c.expr, ColExpr::Prop(cb, cp) if *cb == b && *cp == p.prop.text))
                        }
                        OrderTarget::Label(_) => None,
                    };
                    match (by_name.or(by_expr), target) {
                        (Some(i), _) => OrderBy::Col(i),
                        (None, OrderTarget::Prop(p)) if !aggregated => {
                            OrderBy::PathProp(self.lookup(&p.alias)?, p.prop.text.clone())
                        }
                        (None, _) => {
                            let names = cols.iter().map(|c| format!("`{}`", c.name)).collect();
                            let msg = if *aggregated {
                                format!(
                                    "ORDER BY after aggregation must name a returned column; `{text}` is not one"
                                )
                            } else {
                                format!("unknown label `{text}`")
                            };
                            return Err(self
                                .err(ErrorKind::UnknownAlias, span, msg)
                                .expected(names));
                        }
                    }
                }
            };
            out.push((by, key.descending));
        }
        Ok(out)
    }
}
