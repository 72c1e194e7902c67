//! The graph a query runs over: a tenant's current graph, built once and then read-only.
//!
//! [`GraphBuilder`] takes [`Entity`] and [`Relationship`] values (what the store loads)
//! and [`GraphBuilder::build`] turns them into a compact, indexed [`Graph`]:
//! - every string interned once ([`pool`]), every property value in 8 bytes ([`value`]);
//! - property names stored once per *shape* (the sorted list of names an object has), so
//!   100k users with the same properties share one name list;
//! - indexes: entities by `_type` and by `_class`, by `_key`, an equality index on a few
//!   identifying properties ([`INDEXED_PROPERTIES`]), and adjacency lists per entity in
//!   both directions, sorted by verb.

pub(crate) mod pool;
pub(crate) mod value;

use hashbrown::HashMap;
use pool::{StrPool, Sym};
use serde_json::{Map, Value};
use std::borrow::Cow;
use value::{Raw, Val};

/// String properties with an equality index, besides `_key`, `_type` and `_class`: the
/// ones identity queries filter on (`FIND User WITH email = '...'`).
pub const INDEXED_PROPERTIES: &[&str] = &["email", "username", "name", "displayName", "id"];

/// An entity as the store hands it over.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Entity {
    pub key: String,
    pub entity_type: String,
    pub classes: Vec<String>,
    /// Every property incl. J1 metadata the store adds: `_createdOn`, `_beginOn`, `_endOn`
    /// (epoch ms numbers), `_version` (number), `_deleted` (bool), and `tag.AccountName`
    /// etc. Not `_key/_type/_class` (ignored if present: the fields above win). `_deleted`
    /// always reads as [`Entity::deleted`].
    pub properties: Map<String, Value>,
    /// A tombstone: only visible to queries run with `include_deleted`.
    pub deleted: bool,
}

/// A relationship as the store hands it over; its endpoints are entity `_key`s.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Relationship {
    pub key: String,
    pub relationship_type: String,
    /// The verb, e.g. `HAS`; matched case-insensitively by `THAT`.
    pub class: String,
    /// The endpoints' `_key`s; `_fromEntityKey` and `_toEntityKey` read as these.
    pub from_key: String,
    pub to_key: String,
    pub properties: Map<String, Value>,
    pub deleted: bool,
}

/// Entity index inside a [`Graph`].
pub(crate) type Ent = u32;
/// Relationship index inside a [`Graph`].
pub(crate) type Rel = u32;

/// The `rel_key` of a relationship whose `_key` is `<from>|<verb lowercased>|<to>`
/// (J1's convention for direct relationships): derived on read, not stored.
pub(crate) const DERIVED: Sym = Sym::MAX;

/// Whether `key` is `<from>|<verb lowercased>|<to>`.
fn is_derived_key(key: &str, from: &str, verb: &str, to: &str) -> bool {
    key.strip_prefix(from)
        .and_then(|k| k.strip_prefix('|'))
        .and_then(|k| k.strip_suffix(to))
        .and_then(|k| k.strip_suffix('|'))
        .is_some_and(|mid| mid.chars().eq(verb.chars().flat_map(char::to_lowercase)))
}

/// A property value as read from the graph; `None` from a lookup means undefined.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Pv<'g> {
    Null,
    Bool(bool),
    Num(f64),
    Str(Sym),
    /// The derived `_key` of a relationship (see [`DERIVED`]).
    Key(Rel),
    Arr(&'g [Val]),
    Other(&'g Value),
}

/// Per-object properties: a shape (sorted names) and the offset of its values.
#[derive(Default)]
struct ObjProps {
    shape: Vec<u32>,
    off: Vec<u32>,
}

/// Storage shared by entities and relationships.
#[derive(Default)]
struct Tables {
    pool: StrPool,
    shapes: Vec<Box<[Sym]>>,
    vals: Vec<Val>,
    arrays: Vec<(u32, u32)>,
    arr_elems: Vec<Val>,
    others: Vec<Value>,
}

/// Collects entities and relationships, then builds the indexed [`Graph`].
///
/// Objects are converted to the compact form as they are added, so the builder never
/// holds the JSON maps. A later object with the same `_key` replaces an earlier one.
#[derive(Default)]
pub struct GraphBuilder {
    t: Tables,
    shape_ids: HashMap<Box<[Sym]>, u32>,
    class_sets: HashMap<Box<[Sym]>, u32>,
    ents: Vec<PendingEnt>,
    ent_by_key: HashMap<Sym, usize>,
    rels: Vec<PendingRel>,
    /// A stored key `k` is `[k, DERIVED, DERIVED]`; a derived one `[from, verb, to]`
    /// with the verb lowercased, so equal key strings meet.
    rel_by_key: HashMap<[Sym; 3], usize>,
    lower_verbs: HashMap<Sym, Sym>,
    pairs: Vec<(Sym, Val)>,
    names: Vec<Sym>,
}

struct PendingEnt {
    key: Sym,
    ty: Sym,
    classes: u32,
    shape: u32,
    off: u32,
    deleted: bool,
    live: bool,
}

struct PendingRel {
    key: Sym,
    ty: Sym,
    verb: Sym,
    from: Sym,
    to: Sym,
    shape: u32,
    off: u32,
    deleted: bool,
    live: bool,
}

fn idx32(n: usize) -> u32 {
    // Each table holds 8-byte values; 2^32 of them would not fit in memory.
    u32::try_from(n).expect("graph table below 2^32 entries")
}

impl Tables {
    fn value(&mut self, v: &Value) -> Val {
        match v {
            Value::Null => Val::null(),
            Value::Bool(b) => Val::bool(*b),
            Value::Number(n) => match exact_f64(n) {
                Some(f) => Val::num(f),
                None => self.other(v),
            },
            Value::String(s) => Val::str(self.pool.intern(s)),
            Value::Array(items) if items.iter().all(is_scalar) => {
                let start = idx32(self.arr_elems.len());
                for item in items {
                    let val = self.value(item);
                    self.arr_elems.push(val);
                }
                self.arrays.push((start, idx32(items.len())));
                Val::arr(idx32(self.arrays.len() - 1))
            }
            Value::Array(_) | Value::Object(_) => self.other(v),
        }
    }

    fn other(&mut self, v: &Value) -> Val {
        self.others.push(v.clone());
        Val::other(idx32(self.others.len() - 1))
    }

    fn to_json(&self, v: Val) -> Value {
        match v.decode() {
            Raw::Null => Value::Null,
            Raw::Bool(b) => Value::Bool(b),
            Raw::Num(n) => num_json(n),
            Raw::Str(s) => Value::String(self.pool.get(s).to_owned()),
            Raw::Arr(i) => {
                let (start, len) = self.arrays[i as usize];
                let elems = &self.arr_elems[start as usize..(start + len) as usize];
                Value::Array(elems.iter().map(|&e| self.to_json(e)).collect())
            }
            Raw::Other(i) => self.others[i as usize].clone(),
        }
    }
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

/// A JSON number as an f64, when the f64 holds it exactly (integers up to 2^53).
fn exact_f64(n: &serde_json::Number) -> Option<f64> {
    const EXACT: u64 = 1 << 53;
    if let Some(i) = n.as_i64() {
        return (i.unsigned_abs() <= EXACT).then_some(i as f64);
    }
    if let Some(u) = n.as_u64() {
        return (u <= EXACT).then_some(u as f64);
    }
    n.as_f64()
}

/// Integral numbers print as integers (`_version: 1`, epoch ms), others as floats.
pub(crate) fn num_json(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() <= (1u64 << 53) as f64 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

/// Names the builder keeps out of the property list because they are fields.
fn reserved(name: &str, relationship: bool) -> bool {
    matches!(name, "_key" | "_type" | "_class" | "_deleted")
        || (relationship && matches!(name, "_fromEntityKey" | "_toEntityKey"))
}

impl GraphBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    fn props(&mut self, props: &Map<String, Value>, relationship: bool) -> (u32, u32) {
        // Scratch buffers live in the builder: one object after another, no allocation.
        let mut pairs = std::mem::take(&mut self.pairs);
        pairs.clear();
        for (name, v) in props {
            if reserved(name, relationship) {
                continue;
            }
            let name = self.t.pool.intern(name);
            let val = self.t.value(v);
            pairs.push((name, val));
        }
        // Map keys are distinct, so sorting by name sym gives a canonical shape.
        pairs.sort_unstable_by_key(|p| p.0);
        self.names.clear();
        self.names.extend(pairs.iter().map(|p| p.0));
        let shape = match self.shape_ids.get(self.names.as_slice()) {
            Some(&id) => id,
            None => {
                let id = idx32(self.t.shapes.len());
                let names: Box<[Sym]> = self.names.as_slice().into();
                self.t.shapes.push(names.clone());
                self.shape_ids.insert(names, id);
                id
            }
        };
        let off = idx32(self.t.vals.len());
        self.t.vals.extend(pairs.iter().map(|p| p.1));
        self.pairs = pairs;
        (shape, off)
    }

    pub fn add_entity(&mut self, e: Entity) {
        let key = self.t.pool.intern(&e.key);
        let ty = self.t.pool.intern(&e.entity_type);
        let set: Box<[Sym]> = e.classes.iter().map(|c| self.t.pool.intern(c)).collect();
        let classes = match self.class_sets.get(&set) {
            Some(&i) => i,
            None => {
                let strs: Vec<Value> = e.classes.iter().cloned().map(Value::String).collect();
                let Raw::Arr(i) = self.t.value(&Value::Array(strs)).decode() else {
                    unreachable!("an array of strings is stored as an array")
                };
                self.class_sets.insert(set, i);
                i
            }
        };
        let (shape, off) = self.props(&e.properties, false);
        if let Some(old) = self.ent_by_key.insert(key, self.ents.len()) {
            self.ents[old].live = false;
        }
        self.ents.push(PendingEnt {
            key,
            ty,
            classes,
            shape,
            off,
            deleted: e.deleted,
            live: true,
        });
    }

    /// Endpoints are entity `_key`s; a relationship whose endpoint is not in the graph at
    /// [`GraphBuilder::build`] is dropped.
    pub fn add_relationship(&mut self, r: Relationship) {
        let ty = self.t.pool.intern(&r.relationship_type);
        let verb = self.t.pool.intern(&r.class);
        let from = self.t.pool.intern(&r.from_key);
        let to = self.t.pool.intern(&r.to_key);
        let (key, identity) = if is_derived_key(&r.key, &r.from_key, &r.class, &r.to_key) {
            let pool = &mut self.t.pool;
            let lower = *self
                .lower_verbs
                .entry(verb)
                .or_insert_with(|| pool.intern(&r.class.to_lowercase()));
            (DERIVED, [from, lower, to])
        } else {
            let key = self.t.pool.intern(&r.key);
            (key, [key, DERIVED, DERIVED])
        };
        let (shape, off) = self.props(&r.properties, true);
        if let Some(old) = self.rel_by_key.insert(identity, self.rels.len()) {
            self.rels[old].live = false;
        }
        self.rels.push(PendingRel {
            key,
            ty,
            verb,
            from,
            to,
            shape,
            off,
            deleted: r.deleted,
            live: true,
        });
    }

    pub fn build(self) -> Graph {
        let GraphBuilder {
            mut t, ents, rels, ..
        } = self;
        // Names that are fields, not stored properties, still need ids for lookups.
        let mut g = Graph {
            fields: [
                "_key",
                "_type",
                "_class",
                "_deleted",
                "_fromEntityKey",
                "_toEntityKey",
            ]
            .map(|name| t.pool.intern(name)),
            ..Graph::default()
        };

        // Entities, in the order they were added, without the replaced ones.
        let mut key_index: HashMap<Sym, Ent> = HashMap::with_capacity(ents.len());
        for e in ents.iter().filter(|e| e.live) {
            let idx = idx32(g.ent_key.len());
            key_index.insert(e.key, idx);
            g.ent_key.push(e.key);
            g.ent_type.push(e.ty);
            g.ent_classes.push(e.classes);
            g.ent_deleted.push(e.deleted);
            g.ent_props.shape.push(e.shape);
            g.ent_props.off.push(e.off);
        }
        drop(ents);
        let n = g.ent_key.len();

        for r in rels.iter().filter(|r| r.live) {
            let (Some(&from), Some(&to)) = (key_index.get(&r.from), key_index.get(&r.to)) else {
                g.dangling += 1;
                continue;
            };
            g.rel_key.push(r.key);
            g.rel_type.push(r.ty);
            g.rel_verb.push(r.verb);
            g.rel_from.push(from);
            g.rel_to.push(to);
            g.rel_deleted.push(r.deleted);
            g.rel_props.shape.push(r.shape);
            g.rel_props.off.push(r.off);
        }
        drop(rels);

        // Indexes by type and class; lists ascend because entities are visited in order.
        for i in 0..n {
            let idx = idx32(i);
            g.by_type.entry(g.ent_type[i]).or_default().push(idx);
            let (start, len) = t.arrays[g.ent_classes[i] as usize];
            for &c in &t.arr_elems[start as usize..(start + len) as usize] {
                if let Raw::Str(c) = c.decode() {
                    g.by_class.entry(c).or_default().push(idx);
                    let classes = g.type_classes.entry(g.ent_type[i]).or_default();
                    if !classes.contains(&c) {
                        classes.push(c);
                    }
                }
            }
        }
        for (&verb, &ty) in g.rel_verb.iter().zip(&g.rel_type) {
            let types = g.verb_types.entry(verb).or_default();
            if !types.contains(&ty) {
                types.push(ty);
            }
        }

        // Adjacency (compressed rows), each entity's edges sorted by (verb, relationship).
        let (out_off, out_adj) = adjacency(n, &g.rel_from, &g.rel_to, &g.rel_verb);
        let (in_off, in_adj) = adjacency(n, &g.rel_to, &g.rel_from, &g.rel_verb);
        (g.out_off, g.out_adj, g.in_off, g.in_adj) = (out_off, out_adj, in_off, in_adj);
        g.any_deleted_rel = g.rel_deleted.contains(&true);

        // Equality index on identifying string properties, including array elements.
        let indexed: Vec<Sym> = INDEXED_PROPERTIES
            .iter()
            .filter_map(|p| t.pool.lookup(p))
            .collect();
        for i in 0..n {
            let shape = &t.shapes[g.ent_props.shape[i] as usize];
            let off = g.ent_props.off[i] as usize;
            for (pos, name) in shape.iter().enumerate() {
                if !indexed.contains(name) {
                    continue;
                }
                let mut push = |v: Val| {
                    if let Raw::Str(s) = v.decode() {
                        g.eq_index.push((eq_key(*name, s), idx32(i)));
                    }
                };
                match t.vals[off + pos].decode() {
                    Raw::Arr(a) => {
                        let (start, len) = t.arrays[a as usize];
                        t.arr_elems[start as usize..(start + len) as usize]
                            .iter()
                            .for_each(|&v| push(v));
                    }
                    _ => push(t.vals[off + pos]),
                }
            }
        }
        g.eq_index.sort_unstable();
        g.eq_index.dedup();

        for list in g.by_type.values_mut().chain(g.by_class.values_mut()) {
            list.shrink_to_fit();
        }
        t.pool.shrink_to_fit();
        t.vals.shrink_to_fit();
        t.arr_elems.shrink_to_fit();
        t.arrays.shrink_to_fit();
        g.key_index = key_index;
        g.t = t;
        g
    }
}

fn eq_key(prop: Sym, value: Sym) -> u64 {
    (u64::from(prop) << 32) | u64::from(value)
}

/// One edge in an entity's adjacency list. The verb is kept here, next to the
/// neighbour, so filtering by verb reads no relationship table.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Adj {
    pub rel: Rel,
    pub nbr: Ent,
    pub verb: Sym,
}

fn adjacency(n: usize, this: &[Ent], other: &[Ent], verb: &[Sym]) -> (Vec<u32>, Vec<Adj>) {
    let mut off = vec![0u32; n + 1];
    for &e in this {
        off[e as usize + 1] += 1;
    }
    for i in 0..n {
        off[i + 1] += off[i];
    }
    let mut fill = off.clone();
    let mut adj = vec![Adj::default(); this.len()];
    for (rel, (&a, &b)) in this.iter().zip(other).enumerate() {
        let slot = &mut fill[a as usize];
        adj[*slot as usize] = Adj {
            rel: idx32(rel),
            nbr: b,
            verb: verb[rel],
        };
        *slot += 1;
    }
    for i in 0..n {
        adj[off[i] as usize..off[i + 1] as usize].sort_unstable_by_key(|a| (a.verb, a.rel));
    }
    (off, adj)
}

/// A tenant's graph, compact and indexed; immutable once built. Cheap to share between
/// threads (`Send + Sync`): queries only read it.
#[derive(Default)]
pub struct Graph {
    t: Tables,
    pub(crate) ent_key: Vec<Sym>,
    pub(crate) ent_type: Vec<Sym>,
    /// Index into the array table: the entity's `_class` list.
    ent_classes: Vec<u32>,
    pub(crate) ent_deleted: Vec<bool>,
    ent_props: ObjProps,
    key_index: HashMap<Sym, Ent>,

    pub(crate) rel_key: Vec<Sym>,
    pub(crate) rel_type: Vec<Sym>,
    pub(crate) rel_verb: Vec<Sym>,
    pub(crate) rel_from: Vec<Ent>,
    pub(crate) rel_to: Vec<Ent>,
    pub(crate) rel_deleted: Vec<bool>,
    rel_props: ObjProps,
    dangling: usize,

    by_type: HashMap<Sym, Vec<Ent>>,
    by_class: HashMap<Sym, Vec<Ent>>,
    /// Entity types per class and relationship types per verb, for `touched_types`.
    type_classes: HashMap<Sym, Vec<Sym>>,
    verb_types: HashMap<Sym, Vec<Sym>>,
    out_off: Vec<u32>,
    out_adj: Vec<Adj>,
    in_off: Vec<u32>,
    in_adj: Vec<Adj>,
    /// Whether any relationship is a tombstone (if none, traversals skip the check).
    pub(crate) any_deleted_rel: bool,
    /// Sorted `(property << 32 | value, entity)` pairs for [`INDEXED_PROPERTIES`].
    eq_index: Vec<(u64, Ent)>,
    /// Pool ids of `_key`, `_type`, `_class`, `_deleted`, `_fromEntityKey` and
    /// `_toEntityKey`: fields, not stored properties (the last two of relationships).
    fields: [Sym; 6],
}

impl Graph {
    /// Entities in the graph, tombstones included.
    pub fn entity_count(&self) -> usize {
        self.ent_key.len()
    }

    /// Relationships in the graph, tombstones included, dangling ones not.
    pub fn relationship_count(&self) -> usize {
        self.rel_key.len()
    }

    /// Relationships dropped at build because an endpoint was not in the graph.
    pub fn dangling_relationships(&self) -> usize {
        self.dangling
    }

    /// An estimate of the heap the graph holds, in bytes (capacities of its tables).
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let vec = |len: usize, item: usize| len * item;
        let t = &self.t;
        let shapes: usize = t.shapes.iter().map(|s| s.len() * 4 + 16).sum();
        let lists: usize = self
            .by_type
            .values()
            .chain(self.by_class.values())
            .map(|l| l.capacity() * 4 + 48)
            .sum();
        t.pool.heap_bytes()
            + shapes
            + vec(t.vals.capacity(), 8)
            + vec(t.arrays.capacity(), 8)
            + vec(t.arr_elems.capacity(), 8)
            + vec(t.others.capacity(), size_of::<Value>())
            + vec(self.ent_key.capacity(), 4 * 5 + 1)
            + vec(self.key_index.capacity(), 9)
            + vec(self.rel_key.capacity(), 4 * 7 + 1)
            + lists
            + vec(self.out_off.capacity() + self.in_off.capacity(), 4)
            + vec(self.out_adj.capacity() + self.in_adj.capacity(), 12)
            + vec(self.eq_index.capacity(), 16)
    }

    pub(crate) fn sym(&self, s: &str) -> Option<Sym> {
        self.t.pool.lookup(s)
    }

    pub(crate) fn str(&self, s: Sym) -> &str {
        self.t.pool.get(s)
    }

    /// A relationship's `_key`.
    pub(crate) fn rel_key_str(&self, r: Rel) -> Cow<'_, str> {
        let i = r as usize;
        match self.rel_key[i] {
            DERIVED => Cow::Owned(format!(
                "{}|{}|{}",
                self.str(self.ent_key[self.rel_from[i] as usize]),
                self.str(self.rel_verb[i]).to_lowercase(),
                self.str(self.ent_key[self.rel_to[i] as usize])
            )),
            k => Cow::Borrowed(self.str(k)),
        }
    }

    /// The text of a string value (interned or a derived key).
    pub(crate) fn text(&self, v: Pv<'_>) -> Option<Cow<'_, str>> {
        match v {
            Pv::Str(s) => Some(Cow::Borrowed(self.str(s))),
            Pv::Key(r) => Some(self.rel_key_str(r)),
            _ => None,
        }
    }

    pub(crate) fn entity_by_key(&self, key: &str) -> Option<Ent> {
        self.key_index.get(&self.sym(key)?).copied()
    }

    pub(crate) fn of_type(&self, ty: Sym) -> &[Ent] {
        self.by_type.get(&ty).map_or(&[], Vec::as_slice)
    }

    pub(crate) fn of_class(&self, class: Sym) -> &[Ent] {
        self.by_class.get(&class).map_or(&[], Vec::as_slice)
    }

    /// Entities whose indexed string property `prop` equals (or, for arrays, contains)
    /// `value`, ascending. `None` when `prop` has no index.
    pub(crate) fn indexed_eq(
        &self,
        prop: Sym,
        value: Sym,
    ) -> Option<impl Iterator<Item = Ent> + '_> {
        let name = self.str(prop);
        if !INDEXED_PROPERTIES.contains(&name) {
            return None;
        }
        let k = eq_key(prop, value);
        let start = self.eq_index.partition_point(|&(x, _)| x < k);
        Some(
            self.eq_index[start..]
                .iter()
                .take_while(move |&&(x, _)| x == k)
                .map(|&(_, e)| e),
        )
    }

    pub(crate) fn classes_of(&self, e: Ent) -> &[Val] {
        self.array(self.ent_classes[e as usize])
    }

    pub(crate) fn has_class(&self, e: Ent, class: Sym) -> bool {
        self.classes_of(e).contains(&Val::str(class))
    }

    pub(crate) fn array(&self, a: u32) -> &[Val] {
        let (start, len) = self.t.arrays[a as usize];
        &self.t.arr_elems[start as usize..(start + len) as usize]
    }

    pub(crate) fn pv(&self, v: Val) -> Pv<'_> {
        match v.decode() {
            Raw::Null => Pv::Null,
            Raw::Bool(b) => Pv::Bool(b),
            Raw::Num(n) => Pv::Num(n),
            Raw::Str(s) => Pv::Str(s),
            Raw::Arr(a) => Pv::Arr(self.array(a)),
            Raw::Other(o) => Pv::Other(&self.t.others[o as usize]),
        }
    }

    fn stored(&self, props: &ObjProps, i: usize, name: Sym) -> Option<Val> {
        let shape = &self.t.shapes[props.shape[i] as usize];
        let pos = shape.binary_search(&name).ok()?;
        Some(self.t.vals[props.off[i] as usize + pos])
    }

    /// An entity's property, `_key`, `_type`, `_class` and `_deleted` included.
    pub(crate) fn entity_prop(&self, e: Ent, name: Sym) -> Option<Pv<'_>> {
        let i = e as usize;
        let [key, ty, class, deleted, ..] = self.fields;
        Some(match name {
            n if n == key => Pv::Str(self.ent_key[i]),
            n if n == ty => Pv::Str(self.ent_type[i]),
            n if n == class => Pv::Arr(self.classes_of(e)),
            n if n == deleted => Pv::Bool(self.ent_deleted[i]),
            _ => return self.stored(&self.ent_props, i, name).map(|v| self.pv(v)),
        })
    }

    /// A relationship's property, `_key`, `_type`, `_class`, `_deleted`,
    /// `_fromEntityKey` and `_toEntityKey` included.
    pub(crate) fn rel_prop(&self, r: Rel, name: Sym) -> Option<Pv<'_>> {
        let i = r as usize;
        let [key, ty, class, deleted, from, to] = self.fields;
        Some(match name {
            n if n == from => Pv::Str(self.ent_key[self.rel_from[i] as usize]),
            n if n == to => Pv::Str(self.ent_key[self.rel_to[i] as usize]),
            n if n == key && self.rel_key[i] == DERIVED => Pv::Key(r),
            n if n == key => Pv::Str(self.rel_key[i]),
            n if n == ty => Pv::Str(self.rel_type[i]),
            n if n == class => Pv::Str(self.rel_verb[i]),
            n if n == deleted => Pv::Bool(self.rel_deleted[i]),
            _ => return self.stored(&self.rel_props, i, name).map(|v| self.pv(v)),
        })
    }

    /// `(name, value)` of every stored property of an entity (not `_key/_type/_class`).
    pub(crate) fn entity_props(&self, e: Ent) -> impl Iterator<Item = (&str, Value)> + '_ {
        self.all_props(&self.ent_props, e as usize)
    }

    pub(crate) fn rel_props(&self, r: Rel) -> impl Iterator<Item = (&str, Value)> + '_ {
        self.all_props(&self.rel_props, r as usize)
    }

    fn all_props<'a>(
        &'a self,
        props: &'a ObjProps,
        i: usize,
    ) -> impl Iterator<Item = (&'a str, Value)> + 'a {
        let shape = &self.t.shapes[props.shape[i] as usize];
        let off = props.off[i] as usize;
        shape
            .iter()
            .enumerate()
            .map(move |(pos, &name)| (self.str(name), self.t.to_json(self.t.vals[off + pos])))
    }

    pub(crate) fn json(&self, v: Val) -> Value {
        self.t.to_json(v)
    }

    /// Edges where `e` is the `from` end, sorted by verb.
    pub(crate) fn out_edges(&self, e: Ent) -> &[Adj] {
        &self.out_adj[self.out_off[e as usize] as usize..self.out_off[e as usize + 1] as usize]
    }

    /// Edges where `e` is the `to` end, sorted by verb.
    pub(crate) fn in_edges(&self, e: Ent) -> &[Adj] {
        &self.in_adj[self.in_off[e as usize] as usize..self.in_off[e as usize + 1] as usize]
    }

    /// Distinct relationship verbs (`_class`) in the graph.
    pub(crate) fn verbs(&self) -> impl Iterator<Item = Sym> + '_ {
        self.verb_types.keys().copied()
    }

    pub(crate) fn verb_types(&self, verb: Sym) -> &[Sym] {
        self.verb_types.get(&verb).map_or(&[], Vec::as_slice)
    }

    /// Entity types that carry `class`.
    pub(crate) fn class_types(&self, class: Sym) -> impl Iterator<Item = Sym> + '_ {
        self.type_classes
            .iter()
            .filter(move |(_, classes)| classes.contains(&class))
            .map(|(&ty, _)| ty)
    }

    pub(crate) fn entity_types(&self) -> impl Iterator<Item = Sym> + '_ {
        self.by_type.keys().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ent(key: &str, ty: &str, class: &str, props: Value) -> Entity {
        Entity {
            key: key.into(),
            entity_type: ty.into(),
            classes: vec![class.into()],
            properties: props.as_object().cloned().unwrap_or_default(),
            deleted: false,
        }
    }

    #[test]
    fn build_indexes_and_reads_back_properties() {
        let mut b = GraphBuilder::new();
        b.add_entity(ent("u1", "jumpcloud_user", "User", json!({"email": "a@x.io", "n": 3, "tags": ["a", "b"], "o": {"x": 1}, "big": 9007199254740993u64})));
        b.add_entity(ent("g1", "jumpcloud_group", "Group", json!({"name": "G"})));
        b.add_relationship(Relationship {
            key: "g1|has|u1".into(),
            relationship_type: "jumpcloud_group_has_user".into(),
            class: "HAS".into(),
            from_key: "g1".into(),
            to_key: "u1".into(),
            ..Default::default()
        });
        b.add_relationship(Relationship {
            key: "g1|has|nobody".into(),
            class: "HAS".into(),
            from_key: "g1".into(),
            to_key: "nobody".into(),
            ..Default::default()
        });
        let g = b.build();
        assert_eq!(g.entity_count(), 2);
        assert_eq!(g.relationship_count(), 1);
        assert_eq!(g.dangling_relationships(), 1);
        let u = g.entity_by_key("u1").unwrap();
        let props: Map<String, Value> = g.entity_props(u).map(|(k, v)| (k.to_owned(), v)).collect();
        assert_eq!(
            Value::Object(props),
            json!({"email": "a@x.io", "n": 3, "tags": ["a", "b"], "o": {"x": 1}, "big": 9007199254740993u64})
        );
        let email = g.sym("email").unwrap();
        let hits: Vec<Ent> = g
            .indexed_eq(email, g.sym("a@x.io").unwrap())
            .unwrap()
            .collect();
        assert_eq!(hits, vec![u]);
        assert_eq!(g.in_edges(u).len(), 1);
        assert_eq!(g.out_edges(g.entity_by_key("g1").unwrap()).len(), 1);
        assert!(g.has_class(u, g.sym("User").unwrap()));
    }

    #[test]
    fn conventional_relationship_keys_are_derived_not_stored() {
        assert!(is_derived_key("g1|has|u1", "g1", "HAS", "u1"));
        assert!(is_derived_key("a|b|c|has|d", "a|b|c", "Has", "d"));
        assert!(!is_derived_key("g1|has|u2", "g1", "HAS", "u1"));
        assert!(!is_derived_key("g1|HAS|u1", "g1", "HAS", "u1"));
        assert!(!is_derived_key("g1|has|u1x", "g1", "HAS", "u1"));
        let mut b = GraphBuilder::new();
        b.add_entity(ent("g1", "g", "Group", json!({})));
        b.add_entity(ent("u1", "u", "User", json!({})));
        for key in ["g1|has|u1", "custom-key", "g1|has|u1"] {
            b.add_relationship(Relationship {
                key: key.into(),
                class: "HAS".into(),
                from_key: "g1".into(),
                to_key: "u1".into(),
                ..Default::default()
            });
        }
        let g = b.build();
        // The repeated derived key replaced its first occurrence.
        assert_eq!(g.relationship_count(), 2);
        assert_eq!(g.rel_key_str(0), "custom-key");
        assert_eq!(g.rel_key_str(1), "g1|has|u1");
        assert_eq!(g.rel_key[1], DERIVED);
        assert_eq!(g.sym("g1|has|u1"), None, "a derived key is not interned");
    }

    #[test]
    fn a_later_entity_with_the_same_key_replaces_the_earlier() {
        let mut b = GraphBuilder::new();
        b.add_entity(ent("k", "t", "User", json!({"v": 1})));
        b.add_entity(ent("k", "t", "User", json!({"v": 2})));
        let g = b.build();
        assert_eq!(g.entity_count(), 1);
        let v = g.sym("v").unwrap();
        assert!(matches!(g.entity_prop(0, v), Some(Pv::Num(n)) if n == 2.0));
    }
}
