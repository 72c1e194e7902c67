//! The planner: start from the most selective node and join back.
//!
//! A J1QL traversal is a chain `N0 -h0- N1 -h1- ... Nk`. For each node the planner
//! estimates how many entities can match it: exactly, from an index, when its WITH has an
//! equality on `_key`, `_type`, `_class` or an indexed property ([`INDEXED_PROPERTIES`]),
//! otherwise from the size of its class/type lists. The cheapest node is the *anchor*:
//! its candidates are found first, then the neighbours of that set are expanded outward
//! along the chain in both directions (each entity tested once, memoized), and finally
//! two semi-join passes (toward the anchor, then away from it) remove every entity that
//! is not on a complete path. What is left is exact: each node's set holds exactly the
//! entities bound to it by some path, so the default RETURN (the FIND entities) needs no
//! path enumeration at all, and enumeration, when a table needs it, never hits a dead end.
//!
//! The results are those of the naive left-to-right evaluation whatever the anchor
//! (paths are always enumerated from node 0 in ascending order): a property test checks
//! it on random graphs and queries.
//!
//! [`INDEXED_PROPERTIES`]: crate::INDEXED_PROPERTIES

use crate::ast::{Cond, Op};
use crate::error::QueryError;
use crate::exec::{CLeaf, CLit, CNode, CSel, Ctx, PathFn, Paths};
use crate::graph::{Ent, Graph, Rel};

/// A set of entities: ascending list plus a bitmap for membership tests.
struct EntSet {
    list: Vec<Ent>,
    bits: Vec<u64>,
}

impl EntSet {
    fn from_bits(bits: Vec<u64>) -> Self {
        let mut list = Vec::new();
        for (w, &word) in bits.iter().enumerate() {
            let mut word = word;
            while word != 0 {
                let b = word.trailing_zeros();
                list.push((w as u32) * 64 + b);
                word &= word - 1;
            }
        }
        EntSet { list, bits }
    }

    fn contains(&self, e: Ent) -> bool {
        self.bits[(e >> 6) as usize] >> (e & 63) & 1 == 1
    }
}

fn empty_bits(n: usize) -> Vec<u64> {
    vec![0; n.div_ceil(64)]
}

fn set_bit(bits: &mut [u64], e: Ent) -> bool {
    let (w, b) = ((e >> 6) as usize, e & 63);
    let was = bits[w] >> b & 1 == 1;
    bits[w] |= 1 << b;
    !was
}

/// Candidates for one indexable comparison, ascending; `None` when it has no index.
fn leaf_candidates(g: &Graph, l: &CLeaf<'_>) -> Option<Vec<Ent>> {
    if l.negated || l.op != Op::Eq {
        return None;
    }
    let CLit::Str(value, _) = l.lit else {
        return None;
    };
    let name = g.str(l.prop?);
    // A string that no object holds equals nothing.
    let Some(value) = value else {
        return Some(Vec::new());
    };
    let mut v: Vec<Ent> = match name {
        "_key" => g.entity_by_key(g.str(value)).into_iter().collect(),
        "_type" => g.of_type(value).to_vec(),
        "_class" => g.of_class(value).to_vec(),
        _ => g.indexed_eq(l.prop?, value)?.collect(),
    };
    v.sort_unstable();
    Some(v)
}

fn union(mut lists: Vec<Vec<Ent>>) -> Vec<Ent> {
    if lists.len() == 1 {
        return lists.remove(0);
    }
    let mut all: Vec<Ent> = lists.concat();
    all.sort_unstable();
    all.dedup();
    all
}

/// The smallest candidate list any top-level AND-ed indexable comparison gives.
fn index_candidates(g: &Graph, node: &CNode<'_>) -> Option<Vec<Ent>> {
    let conjuncts: Vec<&Cond<CLeaf<'_>>> = match node.filter.as_ref()? {
        Cond::And(cs) => cs.iter().collect(),
        c => vec![c],
    };
    let mut best: Option<Vec<Ent>> = None;
    for c in conjuncts {
        let cand = match c {
            Cond::Cmp(l) => leaf_candidates(g, l),
            Cond::Or(cs) => cs
                .iter()
                .map(|c| match c {
                    Cond::Cmp(l) => leaf_candidates(g, l),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
                .map(union),
            Cond::And(_) => None,
        };
        if let Some(cand) = cand
            && best.as_ref().is_none_or(|b| cand.len() < b.len())
        {
            best = Some(cand);
        }
    }
    best
}

fn selector_lists<'g>(g: &'g Graph, sel: &CSel) -> Option<Vec<&'g [Ent]>> {
    match sel {
        CSel::Any => None,
        CSel::Set { types, classes } => Some(
            types
                .iter()
                .map(|&t| g.of_type(t))
                .chain(classes.iter().map(|&c| g.of_class(c)))
                .collect(),
        ),
    }
}

/// Entities sampled per node to estimate its selectivity and fan-out.
const SAMPLE: usize = 64;

/// What the planner knows of one node, from its index or selector and a sample.
struct NodeStats {
    /// Entities the node's candidate source yields (all of them are tested).
    scan: usize,
    /// Its candidates from an index, when a WITH equality has one.
    indexed: Option<Vec<Ent>>,
    /// Estimated matches: `scan` times the sampled pass rate.
    est: f64,
    /// Sampled mean edges per entity through the hop after it (walking forward) and
    /// the hop before it (walking back).
    fan_out: f64,
    fan_in: f64,
}

/// Evenly spaced entities of the candidate source, at most [`SAMPLE`].
fn sample(total: usize, indexed: &Option<Vec<Ent>>, lists: &Option<Vec<&[Ent]>>) -> Vec<Ent> {
    let k = total.min(SAMPLE);
    let positions = (0..k).map(|i| i * total / k);
    match (indexed, lists) {
        (Some(c), _) => positions.map(|p| c[p]).collect(),
        (None, Some(ls)) => positions
            .filter_map(|mut p| {
                for l in ls {
                    if p < l.len() {
                        return Some(l[p]);
                    }
                    p -= l.len();
                }
                None
            })
            .collect(),
        (None, None) => positions.map(|p| p as Ent).collect(),
    }
}

fn stats(ctx: &mut Ctx<'_, '_>, i: usize) -> NodeStats {
    let g = ctx.g;
    let indexed = index_candidates(g, &ctx.nodes[i]);
    let lists = selector_lists(g, &ctx.nodes[i].sel);
    let scan = match (&indexed, &lists) {
        (Some(c), _) => c.len(),
        (None, Some(ls)) => ls.iter().map(|l| l.len()).sum(),
        (None, None) => g.entity_count(),
    };
    let picked = sample(scan, &indexed, &lists);
    let passed = picked.iter().filter(|&&e| ctx.node_ok(i, e)).count();
    let rate = if picked.is_empty() {
        0.0
    } else {
        passed as f64 / picked.len() as f64
    };
    let mean_edges = |h: usize, forward: bool| -> f64 {
        if picked.is_empty() {
            return 0.0;
        }
        let dir = if forward {
            ctx.hops[h].direction
        } else {
            ctx.hops[h].direction.reversed()
        };
        let mut n = 0usize;
        for &e in &picked {
            ctx.edges(h, e, dir, &mut |_, _| {
                n += 1;
                false
            });
        }
        n as f64 / picked.len() as f64
    };
    let fan_out = if i < ctx.hops.len() {
        mean_edges(i, true)
    } else {
        0.0
    };
    let fan_in = if i > 0 { mean_edges(i - 1, false) } else { 0.0 };
    NodeStats {
        scan,
        indexed,
        est: scan as f64 * rate,
        fan_out,
        fan_in,
    }
}

/// The work of anchoring at `a`: testing its candidates, then walking the edges out of
/// each expanded set toward both ends (a set never exceeds its node's own estimate).
fn cost(st: &[NodeStats], a: usize) -> f64 {
    let mut total = st[a].scan as f64;
    let mut frontier = st[a].est;
    for j in a + 1..st.len() {
        total += frontier * st[j - 1].fan_out;
        frontier = (frontier * st[j - 1].fan_out).min(st[j].est);
    }
    frontier = st[a].est;
    for j in (0..a).rev() {
        total += frontier * st[j + 1].fan_in;
        frontier = (frontier * st[j + 1].fan_in).min(st[j].est);
    }
    total
}

/// The planned evaluation: an anchor, then exact per-node sets by semi-joins.
pub(crate) struct Planned {
    sets: Option<Vec<EntSet>>,
    /// The node evaluated first.
    pub anchor: usize,
    /// Per node: estimated matches, and the cost of anchoring there.
    pub estimates: Vec<(f64, f64)>,
    anchor_candidates: Option<Vec<Ent>>,
}

impl Planned {
    pub(crate) fn new(ctx: &mut Ctx<'_, '_>) -> Self {
        let mut st: Vec<NodeStats> = (0..ctx.nodes.len()).map(|i| stats(ctx, i)).collect();
        let costs: Vec<f64> = (0..st.len()).map(|a| cost(&st, a)).collect();
        // The cheapest anchor; the first of equals, so a lone FIND starts at itself.
        let anchor =
            (0..costs.len()).fold(0, |best, i| if costs[i] < costs[best] { i } else { best });
        let estimates = st.iter().zip(&costs).map(|(s, &c)| (s.est, c)).collect();
        Planned {
            sets: None,
            anchor,
            estimates,
            anchor_candidates: st[anchor].indexed.take(),
        }
    }

    fn anchor_set(&mut self, ctx: &mut Ctx<'_, '_>) -> EntSet {
        let a = self.anchor;
        let n = ctx.g.entity_count();
        let mut bits = empty_bits(n);
        match self.anchor_candidates.take() {
            Some(c) => c.into_iter().for_each(|e| {
                if ctx.node_ok(a, e) {
                    set_bit(&mut bits, e);
                }
            }),
            None => match selector_lists(ctx.g, &ctx.nodes[a].sel) {
                Some(lists) => {
                    for list in lists {
                        for &e in list {
                            if ctx.node_ok(a, e) {
                                set_bit(&mut bits, e);
                            }
                        }
                    }
                }
                None => {
                    for e in 0..n as Ent {
                        if ctx.node_ok(a, e) {
                            set_bit(&mut bits, e);
                        }
                    }
                }
            },
        }
        EntSet::from_bits(bits)
    }

    /// Entities of node `to` adjacent, through hop `h`, to an entity of `from`.
    fn expand(ctx: &mut Ctx<'_, '_>, from: &EntSet, h: usize, forward: bool, to: usize) -> EntSet {
        let dir = if forward {
            ctx.hops[h].direction
        } else {
            ctx.hops[h].direction.reversed()
        };
        let mut bits = empty_bits(ctx.g.entity_count());
        let mut nbrs = Vec::new();
        for &e in &from.list {
            nbrs.clear();
            ctx.edges(h, e, dir, &mut |_, nbr| {
                nbrs.push(nbr);
                false
            });
            for &nbr in &nbrs {
                if ctx.node_ok(to, nbr) {
                    set_bit(&mut bits, nbr);
                }
            }
        }
        EntSet::from_bits(bits)
    }

    /// Keeps the entities of `set` that have a neighbour in `other` through hop `h`.
    fn prune(ctx: &Ctx<'_, '_>, set: &EntSet, other: &EntSet, h: usize, forward: bool) -> EntSet {
        let dir = if forward {
            ctx.hops[h].direction
        } else {
            ctx.hops[h].direction.reversed()
        };
        let mut bits = empty_bits(ctx.g.entity_count());
        for &e in &set.list {
            if ctx.edges(h, e, dir, &mut |_, nbr| other.contains(nbr)) {
                set_bit(&mut bits, e);
            }
        }
        EntSet::from_bits(bits)
    }

    fn sets(&mut self, ctx: &mut Ctx<'_, '_>) -> &[EntSet] {
        if self.sets.is_none() {
            let k = ctx.nodes.len();
            let a = self.anchor;
            let mut sets: Vec<Option<EntSet>> = (0..k).map(|_| None).collect();
            sets[a] = Some(self.anchor_set(ctx));
            // Outward from the anchor: reachable entities that match their node.
            for j in a + 1..k {
                let prev = sets[j - 1].take().expect("computed before");
                sets[j] = Some(Self::expand(ctx, &prev, j - 1, true, j));
                sets[j - 1] = Some(prev);
            }
            for j in (0..a).rev() {
                let prev = sets[j + 1].take().expect("computed before");
                sets[j] = Some(Self::expand(ctx, &prev, j, false, j));
                sets[j + 1] = Some(prev);
            }
            let mut sets: Vec<EntSet> = sets
                .into_iter()
                .map(|s| s.expect("every node computed"))
                .collect();
            // Toward the anchor: drop entities with no continuation to the chain's ends.
            for j in (a..k.saturating_sub(1)).rev() {
                sets[j] = Self::prune(ctx, &sets[j], &sets[j + 1], j, true);
            }
            for j in 1..=a {
                sets[j] = Self::prune(ctx, &sets[j], &sets[j - 1], j - 1, false);
            }
            // Away from the anchor: drop entities whose only partners were dropped.
            for j in a + 1..k {
                sets[j] = Self::prune(ctx, &sets[j], &sets[j - 1], j - 1, false);
            }
            for j in (0..a).rev() {
                sets[j] = Self::prune(ctx, &sets[j], &sets[j + 1], j, true);
            }
            self.sets = Some(sets);
        }
        self.sets.as_deref().unwrap_or_default()
    }
}

impl Paths for Planned {
    fn node_set(&mut self, ctx: &mut Ctx<'_, '_>, i: usize) -> Result<Vec<Ent>, QueryError> {
        Ok(self.sets(ctx)[i].list.clone())
    }

    fn for_each(&mut self, ctx: &mut Ctx<'_, '_>, f: &mut PathFn<'_>) -> Result<(), QueryError> {
        self.sets(ctx);
        let sets = self.sets.as_deref().unwrap_or_default();
        let ctx: &Ctx<'_, '_> = ctx;
        let k = ctx.nodes.len();
        let mut nodes = vec![0; k];
        let mut rels = vec![0; k - 1];
        let mut bufs: Vec<Vec<(Rel, Ent)>> = vec![Vec::new(); k];
        for &e in &sets[0].list {
            nodes[0] = e;
            if dfs(ctx, sets, 0, &mut nodes, &mut rels, &mut bufs, f)? {
                break;
            }
        }
        Ok(())
    }
}

/// Extends the path at node `j`; returns true when `f` asked to stop.
fn dfs(
    ctx: &Ctx<'_, '_>,
    sets: &[EntSet],
    j: usize,
    nodes: &mut [Ent],
    rels: &mut [Rel],
    bufs: &mut [Vec<(Rel, Ent)>],
    f: &mut PathFn<'_>,
) -> Result<bool, QueryError> {
    if j + 1 == nodes.len() {
        ctx.visit()?;
        return Ok(f(ctx, nodes, rels));
    }
    let mut buf = std::mem::take(&mut bufs[j]);
    buf.clear();
    let next = &sets[j + 1];
    ctx.edges(j, nodes[j], ctx.hops[j].direction, &mut |r, nbr| {
        if next.contains(nbr) {
            buf.push((r, nbr));
        }
        false
    });
    let mut stop = false;
    for &(r, nbr) in &buf {
        rels[j] = r;
        nodes[j + 1] = nbr;
        if dfs(ctx, sets, j + 1, nodes, rels, bufs, f)? {
            stop = true;
            break;
        }
    }
    bufs[j] = buf;
    Ok(stop)
}
