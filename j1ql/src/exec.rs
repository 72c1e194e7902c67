//! Evaluation: a [`Query`] compiled against one [`Graph`] (names turned into pool ids),
//! the comparison semantics of J1's truth tables, and the two ways of finding the
//! traversal paths: the planned one ([`Planned`]) and a naive left-to-right one
//! ([`Naive`]) that tests use as the reference.

use crate::ast::{Cond, Direction, LitValue, Op, Selector, TermKind, Verbs};
use crate::date;
use crate::error::{ErrorKind, QueryError};
use crate::graph::pool::Sym;
use crate::graph::{Adj, Ent, Graph, Pv, Rel};
use crate::query::{Bind, HopSpec, Leaf, NodeSpec, Query, WhereLeaf, WhereValue};
use regex::Regex;

/// Traversal paths visited before a query is refused as too broad.
pub(crate) const MAX_PATHS: u64 = 50_000_000;

/// A selector with names resolved; a class or type absent from the graph is dropped.
#[derive(Debug)]
pub(crate) enum CSel {
    Any,
    Set { types: Vec<Sym>, classes: Vec<Sym> },
}

#[derive(Debug)]
pub(crate) enum CVerbs {
    Any,
    Set(Vec<Sym>),
}

#[derive(Debug)]
pub(crate) enum CLit<'q> {
    Undefined,
    /// The pool id (none: no property holds this string) and the text.
    Str(Option<Sym>, &'q str),
    Num(f64),
    Bool(bool),
    Regex(&'q Regex),
}

#[derive(Debug)]
pub(crate) struct CLeaf<'q> {
    pub prop: Option<Sym>,
    pub op: Op,
    pub negated: bool,
    pub lit: CLit<'q>,
}

#[derive(Debug)]
pub(crate) struct CNode<'q> {
    pub sel: CSel,
    pub filter: Option<Cond<CLeaf<'q>>>,
    negs: Vec<(CVerbs, CSel, Option<Cond<CLeaf<'q>>>)>,
}

#[derive(Debug)]
pub(crate) struct CHop {
    verbs: CVerbs,
    pub direction: Direction,
}

#[derive(Debug)]
pub(crate) enum CWhereValue<'q> {
    Lit(CLit<'q>),
    Prop(Bind, Option<Sym>),
}

#[derive(Debug)]
pub(crate) struct CWhere<'q> {
    lhs: (Bind, Option<Sym>),
    op: Op,
    negated: bool,
    rhs: CWhereValue<'q>,
}

/// The query compiled for one graph, with per-node memos of entity tests.
pub(crate) struct Ctx<'g, 'q> {
    pub g: &'g Graph,
    pub nodes: Vec<CNode<'q>>,
    pub hops: Vec<CHop>,
    pub where_: Option<Cond<CWhere<'q>>>,
    pub include_deleted: bool,
    /// Per node: 0 = not tested yet, 1 = matches, 2 = does not.
    memo: Vec<Vec<u8>>,
    neg_memo: Vec<Vec<Vec<u8>>>,
    visited: std::cell::Cell<u64>,
}

fn compile_sel(g: &Graph, s: &Selector) -> CSel {
    match s {
        Selector::Any(_) => CSel::Any,
        Selector::Terms(terms) => {
            let (mut types, mut classes) = (Vec::new(), Vec::new());
            for t in terms {
                if let Some(sym) = g.sym(&t.name.text) {
                    match t.kind {
                        TermKind::Type => types.push(sym),
                        TermKind::Class => classes.push(sym),
                    }
                }
            }
            CSel::Set { types, classes }
        }
    }
}

/// Verbs are stored ALLCAPS but matched case-insensitively: every graph verb that
/// equals a query verb ignoring case.
fn compile_verbs(g: &Graph, v: &Verbs) -> CVerbs {
    match v {
        Verbs::Any(_) => CVerbs::Any,
        Verbs::Some(names) => {
            let mut syms: Vec<Sym> = g
                .verbs()
                .filter(|&s| names.iter().any(|n| n.text.eq_ignore_ascii_case(g.str(s))))
                .collect();
            syms.sort_unstable();
            CVerbs::Set(syms)
        }
    }
}

fn compile_lit<'q>(g: &Graph, v: &'q LitValue, now_ms: i64) -> CLit<'q> {
    match v {
        LitValue::Str(s) => CLit::Str(g.sym(s), s),
        LitValue::Num(n) => CLit::Num(*n),
        LitValue::Bool(b) => CLit::Bool(*b),
        LitValue::Undefined => CLit::Undefined,
        LitValue::Regex(r) => CLit::Regex(&r.regex),
        LitValue::Date(ms) => CLit::Num(*ms as f64),
        LitValue::DateNow { sign, amount, unit } => {
            CLit::Num(date::shift(now_ms, sign * amount, *unit) as f64)
        }
    }
}

fn compile_cond<'q, L, C>(c: &'q Cond<L>, f: &mut impl FnMut(&'q L) -> C) -> Cond<C> {
    match c {
        Cond::Or(cs) => Cond::Or(cs.iter().map(|c| compile_cond(c, f)).collect()),
        Cond::And(cs) => Cond::And(cs.iter().map(|c| compile_cond(c, f)).collect()),
        Cond::Cmp(l) => Cond::Cmp(f(l)),
    }
}

fn compile_filter<'q>(
    g: &Graph,
    f: &'q Option<Cond<Leaf>>,
    now_ms: i64,
) -> Option<Cond<CLeaf<'q>>> {
    f.as_ref().map(|c| {
        compile_cond(c, &mut |l: &'q Leaf| CLeaf {
            prop: g.sym(&l.prop),
            op: l.op,
            negated: l.negated,
            lit: compile_lit(g, &l.value, now_ms),
        })
    })
}

fn compile_node<'q>(g: &Graph, n: &'q NodeSpec, now_ms: i64) -> CNode<'q> {
    CNode {
        sel: compile_sel(g, &n.selector),
        filter: compile_filter(g, &n.filter, now_ms),
        negs: n
            .negations
            .iter()
            .map(|neg| {
                (
                    compile_verbs(g, &neg.verbs),
                    compile_sel(g, &neg.selector),
                    compile_filter(g, &neg.filter, now_ms),
                )
            })
            .collect(),
    }
}

fn compile_hop(g: &Graph, h: &HopSpec) -> CHop {
    CHop {
        verbs: compile_verbs(g, &h.verbs),
        direction: h.direction,
    }
}

pub(crate) fn eval_cond<L>(c: &Cond<L>, f: &mut impl FnMut(&L) -> bool) -> bool {
    match c {
        Cond::Or(cs) => cs.iter().any(|c| eval_cond(c, f)),
        Cond::And(cs) => cs.iter().all(|c| eval_cond(c, f)),
        Cond::Cmp(l) => f(l),
    }
}

fn num_of(v: Pv<'_>) -> Option<f64> {
    match v {
        Pv::Num(n) => Some(n),
        Pv::Other(serde_json::Value::Number(n)) => n.as_f64(),
        _ => None,
    }
}

/// One scalar against a literal, with the operator in its positive form.
fn scalar_match(g: &Graph, v: Pv<'_>, op: Op, lit: &CLit<'_>) -> bool {
    match (op, lit) {
        (Op::Eq, CLit::Str(sym, text)) => match v {
            Pv::Str(s) => Some(s) == *sym,
            Pv::Key(_) => g.text(v).is_some_and(|t| t == *text),
            _ => false,
        },
        (Op::Eq, CLit::Num(n)) => num_of(v) == Some(*n),
        (Op::Eq, CLit::Bool(b)) => matches!(v, Pv::Bool(x) if x == *b),
        (Op::Eq, CLit::Regex(re)) => g.text(v).is_some_and(|t| re.is_match(&t)),
        (Op::Lt | Op::Gt | Op::Le | Op::Ge, CLit::Num(n)) => {
            num_of(v).is_some_and(|x| ordered(x, op, *n))
        }
        (Op::Contains | Op::StartsWith | Op::EndsWith, CLit::Str(_, text)) => {
            g.text(v).is_some_and(|t| string_op(&t, op, text))
        }
        _ => false,
    }
}

fn ordered(x: f64, op: Op, y: f64) -> bool {
    match op {
        Op::Lt => x < y,
        Op::Gt => x > y,
        Op::Le => x <= y,
        Op::Ge => x >= y,
        _ => false,
    }
}

fn string_op(s: &str, op: Op, text: &str) -> bool {
    match op {
        Op::Contains => s.contains(text),
        Op::StartsWith => s.starts_with(text),
        Op::EndsWith => s.ends_with(text),
        _ => false,
    }
}

/// J1's truth tables: `=`, `~=`, `^=`, `$=`, `<`... are true when the value (or, for an
/// array, any element) matches, and false on an undefined property; each negated
/// operator is the exact negation, so `!=` is true when no element equals the value
/// *and* when the property is undefined. A `null` value counts as undefined.
pub(crate) fn value_match(
    g: &Graph,
    v: Option<Pv<'_>>,
    op: Op,
    negated: bool,
    lit: &CLit<'_>,
) -> bool {
    let positive = match (lit, v) {
        (CLit::Undefined, v) => matches!(v, None | Some(Pv::Null)),
        (_, None | Some(Pv::Null)) => false,
        (_, Some(Pv::Arr(elems))) => elems.iter().any(|&e| scalar_match(g, g.pv(e), op, lit)),
        (_, Some(v)) => scalar_match(g, v, op, lit),
    };
    positive != negated
}

fn elements<'g>(g: &'g Graph, v: Option<Pv<'g>>) -> Vec<Pv<'g>> {
    match v {
        None | Some(Pv::Null) => Vec::new(),
        Some(Pv::Arr(elems)) => elems.iter().map(|&e| g.pv(e)).collect(),
        Some(v) => vec![v],
    }
}

/// Property against property (WHERE `u.a = g.b`): true when any element pair matches;
/// false when either side is undefined (so `!=` is then true, as in the truth tables).
fn props_match(g: &Graph, l: Option<Pv<'_>>, op: Op, negated: bool, r: Option<Pv<'_>>) -> bool {
    let (ls, rs) = (elements(g, l), elements(g, r));
    let positive = ls.iter().any(|&a| {
        rs.iter().any(|&b| match op {
            Op::Eq => match (a, b) {
                (Pv::Str(x), Pv::Str(y)) => x == y,
                (Pv::Key(_), _) | (_, Pv::Key(_)) => {
                    g.text(a).is_some_and(|x| g.text(b).is_some_and(|y| x == y))
                }
                (Pv::Bool(x), Pv::Bool(y)) => x == y,
                _ => matches!((num_of(a), num_of(b)), (Some(x), Some(y)) if x == y),
            },
            Op::Lt | Op::Gt | Op::Le | Op::Ge => {
                matches!((num_of(a), num_of(b)), (Some(x), Some(y)) if ordered(x, op, y))
            }
            _ => match (g.text(a), g.text(b)) {
                (Some(x), Some(y)) => string_op(&x, op, &y),
                _ => false,
            },
        })
    });
    positive != negated
}

impl<'g, 'q> Ctx<'g, 'q> {
    pub(crate) fn new(g: &'g Graph, q: &'q Query, now_ms: i64, include_deleted: bool) -> Self {
        let nodes: Vec<CNode<'q>> = q.nodes.iter().map(|n| compile_node(g, n, now_ms)).collect();
        let hops = q.hops.iter().map(|h| compile_hop(g, h)).collect();
        let where_ = q.where_.as_ref().map(|c| {
            compile_cond(c, &mut |l: &'q WhereLeaf| CWhere {
                lhs: (l.lhs.0, g.sym(&l.lhs.1)),
                op: l.op,
                negated: l.negated,
                rhs: match &l.rhs {
                    WhereValue::Lit(v) => CWhereValue::Lit(compile_lit(g, v, now_ms)),
                    WhereValue::Prop(b, p) => CWhereValue::Prop(*b, g.sym(p)),
                },
            })
        });
        let n = g.entity_count();
        let memo = nodes.iter().map(|_| vec![0u8; n]).collect();
        let neg_memo = nodes
            .iter()
            .map(|node| node.negs.iter().map(|_| vec![0u8; n]).collect())
            .collect();
        Ctx {
            g,
            nodes,
            hops,
            where_,
            include_deleted,
            memo,
            neg_memo,
            visited: std::cell::Cell::new(0),
        }
    }

    pub(crate) fn visible(&self, e: Ent) -> bool {
        self.include_deleted || !self.g.ent_deleted[e as usize]
    }

    fn sel_ok(&self, sel: &CSel, e: Ent) -> bool {
        match sel {
            CSel::Any => true,
            CSel::Set { types, classes } => {
                types.contains(&self.g.ent_type[e as usize])
                    || classes.iter().any(|&c| self.g.has_class(e, c))
            }
        }
    }

    fn filter_ok(&self, f: &Option<Cond<CLeaf<'_>>>, e: Ent) -> bool {
        let g = self.g;
        f.as_ref().is_none_or(|c| {
            eval_cond(c, &mut |l: &CLeaf<'_>| {
                value_match(
                    g,
                    l.prop.and_then(|p| g.entity_prop(e, p)),
                    l.op,
                    l.negated,
                    &l.lit,
                )
            })
        })
    }

    /// Whether entity `e` matches bound node `i`: visible, selector, WITH, and none of
    /// the node's negated hops finds a neighbour (in either direction, as J1 ignores
    /// direction on `!VERB`).
    pub(crate) fn node_ok(&mut self, i: usize, e: Ent) -> bool {
        match self.memo[i][e as usize] {
            1 => return true,
            2 => return false,
            _ => {}
        }
        let node = &self.nodes[i];
        let mut ok =
            self.visible(e) && self.sel_ok(&node.sel, e) && self.filter_ok(&node.filter, e);
        if ok {
            for k in 0..self.nodes[i].negs.len() {
                if self.neg_hit(i, k, e) {
                    ok = false;
                    break;
                }
            }
        }
        self.memo[i][e as usize] = if ok { 1 } else { 2 };
        ok
    }

    fn neg_target_ok(&mut self, i: usize, k: usize, e: Ent) -> bool {
        match self.neg_memo[i][k][e as usize] {
            1 => return true,
            2 => return false,
            _ => {}
        }
        let (_, sel, filter) = &self.nodes[i].negs[k];
        let ok = self.visible(e) && self.sel_ok(sel, e) && self.filter_ok(filter, e);
        self.neg_memo[i][k][e as usize] = if ok { 1 } else { 2 };
        ok
    }

    fn neg_hit(&mut self, i: usize, k: usize, e: Ent) -> bool {
        let g = self.g;
        g.out_edges(e).iter().chain(g.in_edges(e)).any(|a| {
            self.rel_visible(a.rel)
                && verb_ok(&self.nodes[i].negs[k].0, a.verb)
                && self.neg_target_ok(i, k, a.nbr)
        })
    }

    fn rel_visible(&self, r: Rel) -> bool {
        self.include_deleted || !self.g.any_deleted_rel || !self.g.rel_deleted[r as usize]
    }

    /// Calls `f(rel, neighbour)` for the edges of hop `h` at `e` in `dir` (the hop's own
    /// direction when walking forward, reversed when walking back), in adjacency order,
    /// until `f` returns true. Returns whether it did.
    pub(crate) fn edges(
        &self,
        h: usize,
        e: Ent,
        dir: Direction,
        f: &mut dyn FnMut(Rel, Ent) -> bool,
    ) -> bool {
        let g = self.g;
        let verbs = &self.hops[h].verbs;
        // A single verb is a sub-range of the sorted list: no per-edge verb test.
        let single = matches!(verbs, CVerbs::Set(s) if s.len() == 1);
        let ok = |a: &Adj| (single || verb_ok(verbs, a.verb)) && self.rel_visible(a.rel);
        if matches!(dir, Direction::Out | Direction::Both) {
            for a in verb_range(g.out_edges(e), verbs) {
                if ok(a) && f(a.rel, a.nbr) {
                    return true;
                }
            }
        }
        if matches!(dir, Direction::In | Direction::Both) {
            for a in verb_range(g.in_edges(e), verbs) {
                // A self-loop is already one of the out-edges.
                if dir == Direction::Both && a.nbr == e {
                    continue;
                }
                if ok(a) && f(a.rel, a.nbr) {
                    return true;
                }
            }
        }
        false
    }

    /// Counts a visited path; errors past [`MAX_PATHS`].
    pub(crate) fn visit(&self) -> Result<(), QueryError> {
        self.visited.set(self.visited.get() + 1);
        if self.visited.get() > MAX_PATHS {
            return Err(QueryError::new(
                ErrorKind::Limit,
                "",
                0..0,
                format!(
                    "the query visits more than {MAX_PATHS} traversal paths; narrow it with WITH filters"
                ),
            ));
        }
        Ok(())
    }

    pub(crate) fn bind_prop(
        &self,
        nodes: &[Ent],
        rels: &[Rel],
        b: Bind,
        p: Option<Sym>,
    ) -> Option<Pv<'g>> {
        let p = p?;
        match b {
            Bind::Node(i) => self.g.entity_prop(nodes[i], p),
            Bind::Rel(h) => self.g.rel_prop(rels[h], p),
        }
    }

    pub(crate) fn where_ok(&self, nodes: &[Ent], rels: &[Rel]) -> bool {
        let Some(w) = &self.where_ else { return true };
        let g = self.g;
        eval_cond(w, &mut |l: &CWhere<'_>| {
            let lv = self.bind_prop(nodes, rels, l.lhs.0, l.lhs.1);
            match &l.rhs {
                CWhereValue::Lit(lit) => value_match(g, lv, l.op, l.negated, lit),
                CWhereValue::Prop(b, p) => {
                    props_match(g, lv, l.op, l.negated, self.bind_prop(nodes, rels, *b, *p))
                }
            }
        })
    }
}

fn verb_ok(v: &CVerbs, verb: Sym) -> bool {
    match v {
        CVerbs::Any => true,
        CVerbs::Set(s) => s.contains(&verb),
    }
}

/// Adjacency lists are sorted by verb: a single verb is a binary-searched sub-range.
fn verb_range<'a>(edges: &'a [Adj], verbs: &CVerbs) -> &'a [Adj] {
    match verbs {
        CVerbs::Set(s) if s.len() == 1 => {
            let v = s[0];
            let start = edges.partition_point(|a| a.verb < v);
            let end = start + edges[start..].partition_point(|a| a.verb == v);
            &edges[start..end]
        }
        CVerbs::Set(s) if s.is_empty() => &[],
        _ => edges,
    }
}

/// A consumer of traversal paths (node entities, hop relationships); true stops.
pub(crate) type PathFn<'a> = dyn FnMut(&Ctx<'_, '_>, &[Ent], &[Rel]) -> bool + 'a;

/// A complete path held by the naive evaluator.
type Path = (Vec<Ent>, Vec<Rel>);

/// Where paths come from: the planner or the naive reference.
pub(crate) trait Paths {
    /// The distinct entities bound to node `i` over all complete paths, ascending.
    fn node_set(&mut self, ctx: &mut Ctx<'_, '_>, i: usize) -> Result<Vec<Ent>, QueryError>;
    /// Every complete path, in canonical order (start entity ascending, then adjacency
    /// order), until `f` returns true.
    fn for_each(&mut self, ctx: &mut Ctx<'_, '_>, f: &mut PathFn<'_>) -> Result<(), QueryError>;
}

/// The reference evaluator: every entity tested for the FIND node, every path extended
/// hop by hop from the left, nothing indexed, nothing pruned.
pub(crate) struct Naive {
    paths: Option<Vec<Path>>,
}

impl Naive {
    pub(crate) fn new() -> Self {
        Naive { paths: None }
    }

    fn paths(&mut self, ctx: &mut Ctx<'_, '_>) -> Result<&[Path], QueryError> {
        if self.paths.is_none() {
            let mut level: Vec<Path> = Vec::new();
            for e in 0..ctx.g.entity_count() as Ent {
                if ctx.node_ok(0, e) {
                    ctx.visit()?;
                    level.push((vec![e], Vec::new()));
                }
            }
            for h in 0..ctx.hops.len() {
                let mut next = Vec::new();
                for (nodes, rels) in &level {
                    let last = *nodes.last().expect("a path has a node");
                    let mut found = Vec::new();
                    ctx.edges(h, last, ctx.hops[h].direction, &mut |r, nbr| {
                        found.push((r, nbr));
                        false
                    });
                    for (r, nbr) in found {
                        if ctx.node_ok(h + 1, nbr) {
                            ctx.visit()?;
                            let (mut n2, mut r2) = (nodes.clone(), rels.clone());
                            n2.push(nbr);
                            r2.push(r);
                            next.push((n2, r2));
                        }
                    }
                }
                level = next;
            }
            self.paths = Some(level);
        }
        Ok(self.paths.as_deref().unwrap_or_default())
    }
}

impl Paths for Naive {
    fn node_set(&mut self, ctx: &mut Ctx<'_, '_>, i: usize) -> Result<Vec<Ent>, QueryError> {
        let mut set: Vec<Ent> = self.paths(ctx)?.iter().map(|(n, _)| n[i]).collect();
        set.sort_unstable();
        set.dedup();
        Ok(set)
    }

    fn for_each(&mut self, ctx: &mut Ctx<'_, '_>, f: &mut PathFn<'_>) -> Result<(), QueryError> {
        let paths = std::mem::take(&mut self.paths);
        let paths = match paths {
            Some(p) => p,
            None => {
                self.paths(ctx)?;
                self.paths.take().unwrap_or_default()
            }
        };
        for (n, r) in &paths {
            if f(ctx, n, r) {
                break;
            }
        }
        self.paths = Some(paths);
        Ok(())
    }
}

pub(crate) use crate::plan::Planned;
