//! Query results: from traversal paths to J1's result shapes (entity list, table, tree),
//! with aggregation, UNIQUE, ORDER BY, SKIP and LIMIT, and their JSON and text forms.

use crate::ast::AggFunc;
use crate::error::{ErrorKind, QueryError};
use crate::exec::{Ctx, Paths};
use crate::graph::pool::Sym;
use crate::graph::{Ent, Graph, Pv, Rel, num_json};
use crate::query::{Bind, Col, ColExpr, OrderBy, Output, Query};
use hashbrown::{HashMap, HashSet};
use serde_json::{Map, Value, json};
use std::cmp::Ordering;

/// Rows a table may hold before the query is refused as too broad.
const MAX_ROWS: usize = 5_000_000;

/// One entity of a result, in J1's shape `{id, entity: {_key, _type, _class,
/// ...metadata}, properties}`. A view into the graph: its JSON is built only when asked
/// for, so an alert evaluation that needs only the ids never pays for it.
#[derive(Clone, Copy)]
pub struct EntityRow<'g> {
    g: &'g Graph,
    e: Ent,
}

impl<'g> EntityRow<'g> {
    /// The entity's `_key` (our graphs have no separate id).
    pub fn id(&self) -> &'g str {
        self.g.str(self.g.ent_key[self.e as usize])
    }

    /// `_key`, `_type`, `_class`, `_deleted`, every other `_`-prefixed property
    /// (`_createdOn`, `_beginOn`, `_version`, ...) and `displayName`.
    pub fn entity(&self) -> Map<String, Value> {
        entity_parts(self.g, self.e).0
    }

    pub fn to_json(&self) -> Value {
        let (entity, properties) = entity_parts(self.g, self.e);
        json!({"id": self.id(), "entity": entity, "properties": properties})
    }
}

/// One relationship of a TREE result; like [`EntityRow`], a view into the graph.
#[derive(Clone, Copy)]
pub struct EdgeRow<'g> {
    g: &'g Graph,
    r: Rel,
}

impl<'g> EdgeRow<'g> {
    /// The relationship's `_key`.
    pub fn id(&self) -> String {
        self.g.rel_key_str(self.r).into_owned()
    }

    pub fn from_vertex_id(&self) -> &'g str {
        self.g
            .str(self.g.ent_key[self.g.rel_from[self.r as usize] as usize])
    }

    pub fn to_vertex_id(&self) -> &'g str {
        self.g
            .str(self.g.ent_key[self.g.rel_to[self.r as usize] as usize])
    }

    /// `_key`, `_type`, `_class`, `_fromEntityKey`, `_toEntityKey`, `_deleted`, the
    /// other `_`-prefixed properties and `displayName`.
    pub fn relationship(&self) -> Map<String, Value> {
        edge_parts(self.g, self.r).0
    }

    pub fn to_json(&self) -> Value {
        let (relationship, properties) = edge_parts(self.g, self.r);
        json!({
            "id": self.id(),
            "toVertexId": self.to_vertex_id(),
            "fromVertexId": self.from_vertex_id(),
            "relationship": relationship,
            "properties": properties,
        })
    }
}

/// Rows show their id when debugged, and are equal when they are the same object of the
/// same graph.
macro_rules! view_impls {
    ($row:ident, $index:ident, $parts:ident) => {
        impl $row<'_> {
            /// Every property whose name does not start with `_`.
            pub fn properties(&self) -> Map<String, Value> {
                $parts(self.g, self.$index).1
            }
        }

        impl std::fmt::Debug for $row<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_tuple(stringify!($row)).field(&self.id()).finish()
            }
        }

        impl PartialEq for $row<'_> {
            fn eq(&self, other: &Self) -> bool {
                std::ptr::eq(self.g, other.g) && self.$index == other.$index
            }
        }
    };
}

view_impls!(EntityRow, e, entity_parts);
view_impls!(EdgeRow, r, edge_parts);

/// What a query returns, in one of J1's three shapes. Entity and edge rows borrow the
/// graph; [`QueryResult::to_j1_json`] gives an owned form.
#[derive(Clone, Debug, PartialEq)]
pub enum QueryResult<'g> {
    /// No RETURN (the FIND entities) or `RETURN a, b` (distinct entities).
    Entities(Vec<EntityRow<'g>>),
    /// `RETURN a.x AS "Label", count(b)`: one row per path, or per group.
    Table {
        /// Column names in RETURN order (labels, else `alias.prop`, `count(alias)`;
        /// `alias.*` expands to `alias.<name>` for every name its rows hold).
        columns: Vec<String>,
        rows: Vec<Map<String, Value>>,
        /// The `_key`s of the FIND-node entities the rows came from, distinct, in order of
        /// first appearance: the result's identity for alert `added`/`removed`.
        start_keys: Vec<String>,
        /// For each row, indexes into `start_keys` of the entities of the paths it came
        /// from (one for a plain row, several for a UNIQUE or aggregated one).
        row_starts: Vec<Vec<u32>>,
    },
    /// `RETURN TREE`: the traversed entities and relationships.
    Tree {
        vertices: Vec<EntityRow<'g>>,
        edges: Vec<EdgeRow<'g>>,
    },
}

impl QueryResult<'_> {
    /// Rows returned (vertices for a tree), after SKIP and LIMIT.
    pub fn total(&self) -> usize {
        match self {
            QueryResult::Entities(rows) => rows.len(),
            QueryResult::Table { rows, .. } => rows.len(),
            QueryResult::Tree { vertices, .. } => vertices.len(),
        }
    }

    /// J1's JSON: `{"type":"list"|"table"|"tree","data":...}`.
    pub fn to_j1_json(&self) -> Value {
        match self {
            QueryResult::Entities(rows) => {
                json!({"type": "list", "data": rows.iter().map(EntityRow::to_json).collect::<Vec<_>>()})
            }
            QueryResult::Table { rows, .. } => json!({"type": "table", "data": rows}),
            QueryResult::Tree { vertices, edges } => json!({
                "type": "tree",
                "data": {
                    "vertices": vertices.iter().map(EntityRow::to_json).collect::<Vec<_>>(),
                    "edges": edges.iter().map(EdgeRow::to_json).collect::<Vec<_>>(),
                }
            }),
        }
    }

    /// The result's identity for alert `added`/`removed`: entity `_key`s of the rows (for
    /// tables the FIND-node entities each row came from, for trees the vertices),
    /// distinct, in result order.
    pub fn entity_ids(&self) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        let keys: Vec<&str> = match self {
            QueryResult::Entities(rows) => rows.iter().map(|r| r.id()).collect(),
            QueryResult::Table { start_keys, .. } => {
                start_keys.iter().map(String::as_str).collect()
            }
            QueryResult::Tree { vertices, .. } => vertices.iter().map(|r| r.id()).collect(),
        };
        keys.into_iter()
            .filter(|k| seen.insert(*k))
            .map(str::to_owned)
            .collect()
    }

    /// Headers and rows of strings for a terminal table. Entities show `_key`, `_type`,
    /// `_class` and `displayName`; a tree lists its vertices, then its edges.
    pub fn to_text_table(&self) -> (Vec<String>, Vec<Vec<String>>) {
        let entity_cells = |r: &EntityRow<'_>| -> Vec<String> {
            let entity = r.entity();
            ["_key", "_type", "_class", "displayName"]
                .iter()
                .map(|k| entity.get(*k).map_or(String::new(), cell))
                .collect()
        };
        match self {
            QueryResult::Entities(rows) => (
                ["_key", "_type", "_class", "displayName"]
                    .map(String::from)
                    .to_vec(),
                rows.iter().map(entity_cells).collect(),
            ),
            QueryResult::Table { columns, rows, .. } => {
                let headers = columns.clone();
                let body = rows
                    .iter()
                    .map(|row| {
                        headers
                            .iter()
                            .map(|h| row.get(h).map_or(String::new(), cell))
                            .collect()
                    })
                    .collect();
                (headers, body)
            }
            QueryResult::Tree { vertices, edges } => {
                let headers = [
                    "kind",
                    "_key",
                    "_type",
                    "_class",
                    "displayName",
                    "from",
                    "to",
                ]
                .map(String::from)
                .to_vec();
                let mut body: Vec<Vec<String>> = vertices
                    .iter()
                    .map(|v| {
                        let mut r = vec!["vertex".to_owned()];
                        r.extend(entity_cells(v));
                        r.extend([String::new(), String::new()]);
                        r
                    })
                    .collect();
                for e in edges {
                    let (relationship, properties) = edge_parts(e.g, e.r);
                    let get = |k: &str| relationship.get(k).map_or(String::new(), cell);
                    body.push(vec![
                        "edge".into(),
                        e.id(),
                        get("_type"),
                        get("_class"),
                        properties.get("displayName").map_or(String::new(), cell),
                        e.from_vertex_id().to_owned(),
                        e.to_vertex_id().to_owned(),
                    ]);
                }
                (headers, body)
            }
        }
    }
}

/// A JSON value as a table cell: strings bare, null empty, arrays joined.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

pub(crate) fn pv_json(g: &Graph, v: Option<Pv<'_>>) -> Value {
    match v {
        None | Some(Pv::Null) => Value::Null,
        Some(Pv::Bool(b)) => Value::Bool(b),
        Some(Pv::Num(n)) => num_json(n),
        Some(Pv::Str(s)) => Value::String(g.str(s).to_owned()),
        Some(Pv::Key(r)) => Value::String(g.rel_key_str(r).into_owned()),
        Some(Pv::Arr(elems)) => Value::Array(elems.iter().map(|&e| g.json(e)).collect()),
        Some(Pv::Other(v)) => v.clone(),
    }
}

/// Splits stored properties into J1's `entity` (metadata, `_`-prefixed, plus
/// `displayName`) and `properties` parts. Maps are built from whole lists at once:
/// sorting once beats inserting one by one into a B-tree.
fn split_meta(
    mut meta: Vec<(String, Value)>,
    props: impl Iterator<Item = (String, Value)>,
) -> (Map<String, Value>, Map<String, Value>) {
    let mut properties = Vec::new();
    for (name, v) in props {
        if name.starts_with('_') {
            meta.push((name, v));
        } else {
            if name == "displayName" {
                meta.push((name.clone(), v.clone()));
            }
            properties.push((name, v));
        }
    }
    (meta.into_iter().collect(), properties.into_iter().collect())
}

/// J1's `entity` and `properties` objects of an entity.
fn entity_parts(g: &Graph, e: Ent) -> (Map<String, Value>, Map<String, Value>) {
    let i = e as usize;
    let fields = vec![
        ("_key".into(), Value::String(g.str(g.ent_key[i]).to_owned())),
        (
            "_type".into(),
            Value::String(g.str(g.ent_type[i]).to_owned()),
        ),
        (
            "_class".into(),
            Value::Array(g.classes_of(e).iter().map(|&c| g.json(c)).collect()),
        ),
        ("_deleted".into(), Value::Bool(g.ent_deleted[i])),
    ];
    split_meta(fields, g.entity_props(e).map(|(k, v)| (k.to_owned(), v)))
}

/// J1's `relationship` and `properties` objects of a relationship.
fn edge_parts(g: &Graph, r: Rel) -> (Map<String, Value>, Map<String, Value>) {
    let i = r as usize;
    let fields = vec![
        ("_key".into(), Value::String(g.rel_key_str(r).into_owned())),
        (
            "_type".into(),
            Value::String(g.str(g.rel_type[i]).to_owned()),
        ),
        (
            "_class".into(),
            Value::String(g.str(g.rel_verb[i]).to_owned()),
        ),
        (
            "_fromEntityKey".into(),
            Value::String(g.str(g.ent_key[g.rel_from[i] as usize]).to_owned()),
        ),
        (
            "_toEntityKey".into(),
            Value::String(g.str(g.ent_key[g.rel_to[i] as usize]).to_owned()),
        ),
        ("_deleted".into(), Value::Bool(g.rel_deleted[i])),
    ];
    split_meta(fields, g.rel_props(r).map(|(k, v)| (k.to_owned(), v)))
}

/// J1's total order for sorting: numbers, then strings, then booleans, then the rest.
fn cmp_values(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Number(_) => 0,
            Value::String(_) => 1,
            Value::Bool(_) => 2,
            Value::Array(_) => 3,
            Value::Object(_) => 4,
            Value::Null => 5,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .unwrap_or(0.0)
            .total_cmp(&y.as_f64().unwrap_or(0.0)),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ if rank(a) == rank(b) => a.to_string().cmp(&b.to_string()),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Sorts by several keys; a missing value sorts last in either direction.
fn cmp_keys(a: &[Value], b: &[Value], desc: &[bool]) -> Ordering {
    for ((x, y), &d) in a.iter().zip(b).zip(desc) {
        let o = match (x.is_null(), y.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            _ if d => cmp_values(y, x),
            _ => cmp_values(x, y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// A property value as a hashable grouping key.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Atom {
    Undefined,
    Bool(bool),
    Num(u64),
    Str(Sym),
    Json(String),
}

fn atom(v: Option<Pv<'_>>, g: &Graph) -> Atom {
    match v {
        None | Some(Pv::Null) => Atom::Undefined,
        Some(Pv::Bool(b)) => Atom::Bool(b),
        // -0.0 and 0.0 are one group.
        Some(Pv::Num(n)) => Atom::Num((n + 0.0).to_bits()),
        Some(Pv::Str(s)) => Atom::Str(s),
        Some(Pv::Key(r)) => Atom::Json(g.rel_key_str(r).into_owned()),
        Some(v) => Atom::Json(pv_json(g, Some(v)).to_string()),
    }
}

fn bound(b: Bind, nodes: &[Ent], rels: &[Rel]) -> u32 {
    match b {
        Bind::Node(i) => nodes[i],
        Bind::Rel(h) => rels[h],
    }
}

fn bind_prop_of<'g>(g: &'g Graph, b: Bind, obj: u32, p: Option<Sym>) -> Option<Pv<'g>> {
    let p = p?;
    match b {
        Bind::Node(_) => g.entity_prop(obj, p),
        Bind::Rel(_) => g.rel_prop(obj, p),
    }
}

/// Start entities of each row as `_key`s stored once, and per-row indexes into them.
fn start_index(g: &Graph, per_row: Vec<Vec<Ent>>) -> (Vec<String>, Vec<Vec<u32>>) {
    let mut index: HashMap<Ent, u32> = HashMap::new();
    let mut keys = Vec::new();
    let rows = per_row
        .into_iter()
        .map(|starts| {
            starts
                .into_iter()
                .map(|e| {
                    *index.entry(e).or_insert_with(|| {
                        keys.push(g.str(g.ent_key[e as usize]).to_owned());
                        (keys.len() - 1) as u32
                    })
                })
                .collect()
        })
        .collect();
    (keys, rows)
}

/// Column names in RETURN order; `alias.*` contributes the names its rows hold.
fn columns(cols: &[Col], rows: &[Map<String, Value>]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in cols {
        if let ColExpr::All(_) = c.expr {
            let prefix = format!("{}.", c.name.strip_suffix(".*").unwrap_or(&c.name));
            for row in rows {
                for k in row.keys() {
                    if k.starts_with(&prefix) && !out.contains(k) {
                        out.push(k.clone());
                    }
                }
            }
        } else if !out.contains(&c.name) {
            out.push(c.name.clone());
        }
    }
    out
}

fn too_broad() -> QueryError {
    QueryError::new(
        ErrorKind::Limit,
        "",
        0..0,
        format!(
            "the query returns more than {MAX_ROWS} rows; narrow it with WITH filters or aggregate"
        ),
    )
}

/// Column values of one path (no aggregation).
fn row_of(
    ctx: &Ctx<'_, '_>,
    cols: &[Col],
    syms: &[Option<Sym>],
    nodes: &[Ent],
    rels: &[Rel],
) -> Map<String, Value> {
    let g = ctx.g;
    let mut row = Map::new();
    for (c, &sym) in cols.iter().zip(syms) {
        match &c.expr {
            ColExpr::Prop(b, _) => {
                row.insert(
                    c.name.clone(),
                    pv_json(g, ctx.bind_prop(nodes, rels, *b, sym)),
                );
            }
            ColExpr::All(b) => {
                let prefix = c.name.strip_suffix(".*").unwrap_or(&c.name);
                let (meta, props) = match *b {
                    Bind::Node(i) => entity_parts(g, nodes[i]),
                    Bind::Rel(h) => edge_parts(g, rels[h]),
                };
                for (k, v) in meta.into_iter().chain(props) {
                    row.insert(format!("{prefix}.{k}"), v);
                }
            }
            ColExpr::Agg(..) => {}
        }
    }
    row
}

/// The value of each aggregate column is computed from the distinct objects bound to its
/// alias in the group (sorted, deduplicated), so repeated paths count once.
fn aggregate(
    g: &Graph,
    func: AggFunc,
    b: Bind,
    prop: Option<Sym>,
    has_prop: bool,
    objs: &[u32],
) -> Value {
    if !has_prop {
        return Value::from(objs.len());
    }
    let values = objs.iter().map(|&o| bind_prop_of(g, b, o, prop));
    if func == AggFunc::Count {
        let distinct: HashSet<Atom> = values
            .map(|v| atom(v, g))
            .filter(|a| *a != Atom::Undefined)
            .collect();
        return Value::from(distinct.len());
    }
    let mut nums = Vec::new();
    for v in values {
        match v {
            Some(Pv::Num(n)) => nums.push(n),
            Some(Pv::Arr(elems)) => nums.extend(elems.iter().filter_map(|&e| match g.pv(e) {
                Pv::Num(n) => Some(n),
                _ => None,
            })),
            _ => {}
        }
    }
    if nums.is_empty() {
        return Value::Null;
    }
    let r = match func {
        AggFunc::Min => nums.iter().copied().fold(f64::INFINITY, f64::min),
        AggFunc::Max => nums.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        AggFunc::Sum => nums.iter().sum(),
        AggFunc::Avg => nums.iter().sum::<f64>() / nums.len() as f64,
        AggFunc::Count => unreachable!("count returned above"),
    };
    num_json(r)
}

/// Sort keys, then SKIP and LIMIT, then the table.
fn finish_table<'g>(
    g: &Graph,
    cols: &[Col],
    mut rows: Vec<KeyedRow>,
    desc: &[bool],
    skip: usize,
    limit: usize,
) -> QueryResult<'g> {
    rows.sort_by(|a, b| cmp_keys(&a.0, &b.0, desc));
    let (rows, starts): (Vec<Map<String, Value>>, Vec<Vec<Ent>>) = rows
        .into_iter()
        .skip(skip)
        .take(limit)
        .map(|(_, row, starts)| (row, starts))
        .unzip();
    let (start_keys, row_starts) = start_index(g, starts);
    QueryResult::Table {
        columns: columns(cols, &rows),
        rows,
        start_keys,
        row_starts,
    }
}

/// A row with its sort keys and the start entities it came from.
type KeyedRow = (Vec<Value>, Map<String, Value>, Vec<Ent>);

/// What shaping a result needs: the query, its compiled context, where paths come from,
/// and the effective LIMIT.
struct Shape<'a, 'g, 'q> {
    q: &'a Query,
    ctx: &'a mut Ctx<'g, 'q>,
    paths: &'a mut dyn Paths,
    limit: usize,
}

/// Turns the paths of `q` into its result.
pub(crate) fn shape<'g>(
    q: &Query,
    ctx: &mut Ctx<'g, '_>,
    paths: &mut dyn Paths,
    limit: usize,
) -> Result<QueryResult<'g>, QueryError> {
    let s = Shape {
        q,
        ctx,
        paths,
        limit,
    };
    match &q.output {
        Output::Entities(nodes) => s.entities(nodes),
        Output::Table {
            cols,
            aggregated: false,
        } => s.table(cols),
        Output::Table {
            cols,
            aggregated: true,
        } => s.grouped(cols),
        Output::Tree => s.tree(),
    }
}

fn desc(q: &Query) -> Vec<bool> {
    q.order.iter().map(|o| o.1).collect()
}

struct Group {
    key: Vec<Value>,
    /// Per aggregate column, the objects bound to its alias on the group's paths.
    objs: Vec<Vec<u32>>,
    starts: Vec<Ent>,
}

impl<'a, 'g, 'q> Shape<'a, 'g, 'q> {
    fn parts(self) -> (&'a Query, &'a mut Ctx<'g, 'q>, &'a mut dyn Paths, usize) {
        (self.q, self.ctx, self.paths, self.limit)
    }

    /// Distinct entities of `nodes`, in node order then graph order, sorted by ORDER BY.
    fn entities(self, nodes: &[usize]) -> Result<QueryResult<'g>, QueryError> {
        let (q, ctx, paths, limit) = self.parts();
        let g = ctx.g;
        let n = g.entity_count();
        let mut seen = vec![false; n];
        let mut ents = Vec::new();
        if ctx.where_.is_none() {
            // Every entity of a node's exact set is on some complete path.
            for &node in nodes {
                for e in paths.node_set(ctx, node)? {
                    if !std::mem::replace(&mut seen[e as usize], true) {
                        ents.push(e);
                    }
                }
            }
        } else {
            let mut per: Vec<Vec<bool>> = nodes.iter().map(|_| vec![false; n]).collect();
            paths.for_each(ctx, &mut |ctx, ns, rs| {
                if ctx.where_ok(ns, rs) {
                    for (k, &node) in nodes.iter().enumerate() {
                        per[k][ns[node] as usize] = true;
                    }
                }
                false
            })?;
            for bits in per {
                for (e, hit) in bits.into_iter().enumerate() {
                    if hit && !std::mem::replace(&mut seen[e], true) {
                        ents.push(e as Ent);
                    }
                }
            }
        }
        if !q.order.is_empty() {
            let props: Vec<Option<Sym>> = q
                .order
                .iter()
                .map(|(o, _)| match o {
                    OrderBy::EntityProp(p) => g.sym(p),
                    _ => None,
                })
                .collect();
            let mut keyed: Vec<(Vec<Value>, Ent)> = ents
                .into_iter()
                .map(|e| {
                    (
                        props
                            .iter()
                            .map(|p| pv_json(g, p.and_then(|p| g.entity_prop(e, p))))
                            .collect(),
                        e,
                    )
                })
                .collect();
            let desc = desc(q);
            keyed.sort_by(|a, b| cmp_keys(&a.0, &b.0, &desc));
            ents = keyed.into_iter().map(|k| k.1).collect();
        }
        Ok(QueryResult::Entities(
            ents.into_iter()
                .skip(q.skip)
                .take(limit)
                .map(|e| EntityRow { g, e })
                .collect(),
        ))
    }

    /// One row per path (deduplicated with UNIQUE).
    fn table(self, cols: &[Col]) -> Result<QueryResult<'g>, QueryError> {
        let (q, ctx, paths, limit) = self.parts();
        let g = ctx.g;
        let prop_sym = |p: &str| g.sym(p);
        let syms: Vec<Option<Sym>> = cols
            .iter()
            .map(|c| match &c.expr {
                ColExpr::Prop(_, p) => prop_sym(p),
                _ => None,
            })
            .collect();
        let order_syms: Vec<Option<Sym>> = q
            .order
            .iter()
            .map(|(o, _)| match o {
                OrderBy::PathProp(_, p) => prop_sym(p),
                _ => None,
            })
            .collect();
        // Without ORDER BY or UNIQUE the first rows are final: stop at SKIP + LIMIT.
        let cap = (q.order.is_empty() && !q.unique).then_some(q.skip.saturating_add(limit));
        let mut rows: Vec<KeyedRow> = Vec::new();
        let mut uniq: HashMap<String, usize> = HashMap::new();
        let mut overflow = false;
        paths.for_each(ctx, &mut |ctx, ns, rs| {
            if !ctx.where_ok(ns, rs) {
                return false;
            }
            let row = row_of(ctx, cols, &syms, ns, rs);
            if q.unique {
                let text = Value::Object(row.clone()).to_string();
                if let Some(&i) = uniq.get(&text) {
                    if !rows[i].2.contains(&ns[0]) {
                        rows[i].2.push(ns[0]);
                    }
                    return false;
                }
                uniq.insert(text, rows.len());
            }
            let keys = q
                .order
                .iter()
                .zip(&order_syms)
                .map(|((o, _), &sym)| match o {
                    OrderBy::Col(i) => row.get(&cols[*i].name).cloned().unwrap_or(Value::Null),
                    OrderBy::PathProp(b, _) => pv_json(ctx.g, ctx.bind_prop(ns, rs, *b, sym)),
                    OrderBy::EntityProp(_) => Value::Null,
                })
                .collect();
            rows.push((keys, row, vec![ns[0]]));
            overflow = rows.len() > MAX_ROWS;
            overflow || cap.is_some_and(|c| rows.len() >= c)
        })?;
        if overflow {
            return Err(too_broad());
        }
        Ok(finish_table(g, cols, rows, &desc(q), q.skip, limit))
    }

    /// One row per distinct tuple of grouping values (one row in all when every item is
    /// an aggregate), in order of first appearance.
    fn grouped(self, cols: &[Col]) -> Result<QueryResult<'g>, QueryError> {
        let (q, ctx, paths, limit) = self.parts();
        let g = ctx.g;
        let syms: Vec<Option<Sym>> = cols
            .iter()
            .map(|c| match &c.expr {
                ColExpr::Prop(_, p) | ColExpr::Agg(_, _, Some(p)) => g.sym(p),
                _ => None,
            })
            .collect();
        let is_agg = |c: &Col| matches!(c.expr, ColExpr::Agg(..));
        let key_cols: Vec<usize> = (0..cols.len()).filter(|&i| !is_agg(&cols[i])).collect();
        let agg_binds: Vec<Bind> = cols
            .iter()
            .filter_map(|c| match c.expr {
                ColExpr::Agg(_, b, _) => Some(b),
                _ => None,
            })
            .collect();
        let mut key_binds: Vec<Bind> = Vec::new();
        for &c in &key_cols {
            if let ColExpr::Prop(b, _) = cols[c].expr
                && !key_binds.contains(&b)
            {
                key_binds.push(b);
            }
        }
        let new_group = |key: Vec<Value>| Group {
            key,
            objs: agg_binds.iter().map(|_| Vec::new()).collect(),
            starts: Vec::new(),
        };
        let mut groups: Vec<Group> = Vec::new();
        if key_cols.is_empty() {
            // All aggregates: one row over the whole traversal, even an empty one.
            groups.push(new_group(Vec::new()));
        }
        // A group is decided by the objects its key columns read: their values are looked
        // up once per distinct tuple of objects, not once per path. One object (the common
        // `RETURN g.name, count(u)`) indexes a dense table.
        let dense_len = match key_binds.as_slice() {
            [Bind::Node(_)] => g.entity_count(),
            [Bind::Rel(_)] => g.relationship_count(),
            _ => 0,
        };
        let mut dense: Vec<u32> = vec![u32::MAX; dense_len];
        // `count(u)` of the FIND alias collects the start entities already.
        let starts_are_objs = agg_binds.iter().position(|&b| b == Bind::Node(0));
        let mut by_objs: HashMap<Vec<u32>, usize> = HashMap::new();
        let mut by_atoms: HashMap<Vec<Atom>, usize> = HashMap::new();
        let mut objs_key: Vec<u32> = Vec::with_capacity(key_binds.len());
        paths.for_each(ctx, &mut |ctx, ns, rs| {
            if !ctx.where_ok(ns, rs) {
                return false;
            }
            let gi = if key_cols.is_empty() {
                0
            } else {
                objs_key.clear();
                objs_key.extend(key_binds.iter().map(|&b| bound(b, ns, rs)));
                let known = match dense.get(objs_key[0] as usize) {
                    Some(&gi) if dense_len > 0 => (gi != u32::MAX).then_some(gi as usize),
                    _ => by_objs.get(objs_key.as_slice()).copied(),
                };
                match known {
                    Some(gi) => gi,
                    None => {
                        let value = |c: usize| match &cols[c].expr {
                            ColExpr::Prop(b, _) => ctx.bind_prop(ns, rs, *b, syms[c]),
                            _ => None,
                        };
                        let atoms: Vec<Atom> =
                            key_cols.iter().map(|&c| atom(value(c), ctx.g)).collect();
                        let gi = *by_atoms.entry(atoms).or_insert_with(|| {
                            groups.push(new_group(
                                key_cols.iter().map(|&c| pv_json(ctx.g, value(c))).collect(),
                            ));
                            groups.len() - 1
                        });
                        if dense_len > 0 {
                            dense[objs_key[0] as usize] = gi as u32;
                        } else {
                            by_objs.insert(objs_key.clone(), gi);
                        }
                        gi
                    }
                }
            };
            let group = &mut groups[gi];
            for (k, &b) in agg_binds.iter().enumerate() {
                group.objs[k].push(bound(b, ns, rs));
            }
            if starts_are_objs.is_none() {
                group.starts.push(ns[0]);
            }
            false
        })?;
        let mut rows: Vec<KeyedRow> = Vec::with_capacity(groups.len());
        for mut group in groups {
            for objs in group.objs.iter_mut().chain([&mut group.starts]) {
                objs.sort_unstable();
                objs.dedup();
            }
            if let Some(k) = starts_are_objs {
                group.starts = group.objs[k].clone();
            }
            let mut row = Map::new();
            let (mut keys, mut aggs) = (group.key.into_iter(), group.objs.iter());
            for (c, col) in cols.iter().enumerate() {
                let v = match &col.expr {
                    ColExpr::Agg(func, b, prop) => aggregate(
                        g,
                        *func,
                        *b,
                        syms[c],
                        prop.is_some(),
                        aggs.next().map_or(&[], Vec::as_slice),
                    ),
                    _ => keys.next().unwrap_or(Value::Null),
                };
                row.insert(col.name.clone(), v);
            }
            let sort_keys = q
                .order
                .iter()
                .map(|(o, _)| match o {
                    OrderBy::Col(i) => row.get(&cols[*i].name).cloned().unwrap_or(Value::Null),
                    _ => Value::Null,
                })
                .collect();
            rows.push((sort_keys, row, group.starts));
        }
        Ok(finish_table(g, cols, rows, &desc(q), q.skip, limit))
    }

    /// The entities and relationships of the paths; SKIP and LIMIT count start entities.
    fn tree(self) -> Result<QueryResult<'g>, QueryError> {
        let (q, ctx, paths, limit) = self.parts();
        let g = ctx.g;
        let end = q.skip.saturating_add(limit);
        let mut seen_v = vec![false; g.entity_count()];
        let mut seen_e: HashSet<Rel> = HashSet::new();
        let (mut vertices, mut edges) = (Vec::new(), Vec::new());
        let mut current: Option<Ent> = None;
        let mut ordinal = 0usize;
        paths.for_each(ctx, &mut |ctx, ns, rs| {
            if !ctx.where_ok(ns, rs) {
                return false;
            }
            // Paths arrive grouped by start entity.
            if current != Some(ns[0]) {
                if current.is_some() {
                    ordinal += 1;
                }
                current = Some(ns[0]);
            }
            if ordinal >= end {
                return true;
            }
            if ordinal >= q.skip {
                for &e in ns {
                    if !std::mem::replace(&mut seen_v[e as usize], true) {
                        vertices.push(e);
                    }
                }
                for &r in rs {
                    if seen_e.insert(r) {
                        edges.push(r);
                    }
                }
            }
            false
        })?;
        Ok(QueryResult::Tree {
            vertices: vertices.into_iter().map(|e| EntityRow { g, e }).collect(),
            edges: edges.into_iter().map(|r| EdgeRow { g, r }).collect(),
        })
    }
}
