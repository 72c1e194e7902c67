//! The job's graph store: what `graph` imports do.
//!
//! It enforces the J1 rules every plugin must follow (unique `_key` across entities and
//! relationships, key and class lengths, property names), drops relationships whose
//! endpoints were never collected (counted, not stored), and resolves mapped
//! relationships into entities of its own graph. Objects go to a [`GraphSink`] as they
//! arrive; the store keeps only keys and small indexes in memory.
//!
//! It is also where the plugin spends the run's graph, output and job-data budgets
//! (`sandbox::limits`): every object is charged before it is stored, and a call that
//! would pass a budget, or that is still running at the run's deadline, ends the run
//! with what was stored before kept.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::bindings::{
    Entity, GraphError, MappedRelationship, MappingDirection, Property, PropertyValue, Relationship,
};
use crate::output::{GraphSink, Location, ObjectKind};
use crate::sandbox::limits::{
    Budget, Budgets, GRAPH_BYTES_PER_OBJECT, JOB_DATA_BYTES_PER_ENTRY, LimitExceeded, Meter,
    Spending,
};
use crate::sandbox::names::{TYPE_PATTERN, is_valid_type};
use crate::services::Redactor;

/// The J1 minimum length of a `_key`.
const MIN_KEY_LEN: usize = 10;
/// The J1 minimum length of a `_type`.
const MIN_TYPE_LEN: usize = 3;
/// The J1 minimum length of a class name.
const MIN_CLASS_LEN: usize = 2;
/// Raw data nested deeper is refused: the host's JSON readers stop at 128 levels, and
/// secrets in raw data are scrubbed by reading it.
const MAX_RAW_DEPTH: usize = 64;
/// Objects handled between two looks at the clock inside one call.
const DEADLINE_CHECK_EVERY: usize = 128;
/// What the host keeps for a new `_type` or `_class` set besides its text.
const BYTES_PER_NAME: u64 = 64;

/// What happened to one batch (the WIT `batch-outcome`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub accepted: u32,
    pub dropped: u32,
}

/// What one step put into the graph.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepGraphStats {
    /// Entities stored, by `_type`.
    pub entities: BTreeMap<String, u64>,
    /// Relationships stored, by `_type`.
    pub relationships: BTreeMap<String, u64>,
    /// Relationships dropped because an endpoint was never collected.
    pub dropped_relationships: u64,
    /// Mapped relationships resolved to an entity that already existed.
    pub mapped_to_existing: u64,
    /// Mapped relationships that created their target entity.
    pub mapped_to_created: u64,
}

impl StepGraphStats {
    /// Every `_type` the step emitted, entities and relationships.
    pub fn encountered_types(&self) -> Vec<String> {
        let mut types: Vec<String> = self
            .entities
            .keys()
            .chain(self.relationships.keys())
            .cloned()
            .collect();
        types.sort();
        types.dedup();
        types
    }
}

#[derive(Debug, Clone, Copy)]
enum KeyEntry {
    Entity {
        location: Location,
        /// Index into `class_sets`.
        class_set: u32,
    },
    Relationship,
}

/// The graph of one job, shared by the stores that run its steps side by side.
pub type SharedGraph = std::sync::Arc<std::sync::Mutex<GraphStore>>;

/// The graph of one job.
pub struct GraphStore {
    sink: Box<dyn GraphSink>,
    keys: HashMap<Arc<str>, KeyEntry>,
    keys_by_type: HashMap<String, Vec<Arc<str>>>,
    /// Interned `_class` lists: entities share a handful of them.
    class_sets: Vec<Vec<String>>,
    class_set_index: HashMap<Vec<String>, u32>,
    /// Entity keys by lowercase `email` value, for mapped-relationship targets.
    keys_by_email: HashMap<String, Vec<Arc<str>>>,
    data: HashMap<String, String>,
    step: String,
    stats: BTreeMap<String, StepGraphStats>,
    /// Secret configuration values, scrubbed from every stored text.
    redactor: Redactor,
    /// Properties the host adds to every entity (`tag.AccountName`).
    entity_tags: Vec<Property>,
    budgets: Budgets,
    spent: Spent,
    /// When the run must end: a long call stops there.
    deadline: Option<Instant>,
}

/// What the plugin has spent of the store's budgets.
struct Spent {
    objects: Meter,
    index: Meter,
    output: Meter,
    data: Meter,
    data_entries: Meter,
}

impl Spent {
    fn new(budgets: &Budgets) -> Spent {
        Spent {
            objects: Meter::new(Budget::GraphObjects, budgets),
            index: Meter::new(Budget::Graph, budgets),
            output: Meter::new(Budget::Output, budgets),
            data: Meter::new(Budget::JobData, budgets),
            data_entries: Meter::new(Budget::JobDataEntries, budgets),
        }
    }
}

/// Why the host stopped serving a graph call: the run cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum StoreFailure {
    /// The sink failed: the host cannot go on storing the graph.
    #[error("cannot write the graph: {0}")]
    Io(#[from] std::io::Error),
    /// The call would pass one of the run's budgets.
    #[error(transparent)]
    Limit(#[from] LimitExceeded),
    /// The run's deadline passed during the call.
    #[error("the run's deadline passed during a graph call")]
    Deadline,
}

/// A store failure ends the run; a [`GraphError`] goes back to the plugin.
pub type StoreResult<T> = Result<Result<T, GraphError>, StoreFailure>;

impl GraphStore {
    /// An empty store without limits (tests and tools); runs get theirs from the
    /// sandbox policy ([`GraphStore::with_budgets`]).
    pub fn new(sink: Box<dyn GraphSink>) -> GraphStore {
        let budgets = Budgets::unlimited();
        GraphStore {
            sink,
            keys: HashMap::new(),
            keys_by_type: HashMap::new(),
            class_sets: Vec::new(),
            class_set_index: HashMap::new(),
            keys_by_email: HashMap::new(),
            data: HashMap::new(),
            step: String::new(),
            stats: BTreeMap::new(),
            redactor: Redactor::default(),
            entity_tags: Vec::new(),
            spent: Spent::new(&budgets),
            budgets,
            deadline: None,
        }
    }

    /// Sets these properties on every entity, over any value the plugin gave: the
    /// tenant's `tag.AccountName` is the host's to say, not the plugin's.
    pub fn with_entity_tags(mut self, tags: Vec<(String, String)>) -> GraphStore {
        self.entity_tags = tags
            .into_iter()
            .map(|(name, value)| Property {
                name,
                value: PropertyValue::Text(value),
            })
            .collect();
        self
    }

    /// Holds the store to these budgets (from nothing spent).
    pub fn with_budgets(mut self, budgets: Budgets) -> GraphStore {
        self.spent = Spent::new(&budgets);
        self.budgets = budgets;
        self
    }

    /// Ends long calls at `deadline`.
    pub fn with_deadline(mut self, deadline: Instant) -> GraphStore {
        self.deadline = Some(deadline);
        self
    }

    /// Starts the job's output: from now on objects go to `sink`, with `redactor`'s
    /// secrets scrubbed. What was stored before (on a null sink, while the plugin
    /// validated its configuration) is forgotten; budgets and deadline stay. `tags`
    /// are set on every entity ([`GraphStore::with_entity_tags`]).
    pub fn begin_output(
        &mut self,
        sink: Box<dyn GraphSink>,
        redactor: Redactor,
        tags: Vec<(String, String)>,
    ) {
        let mut fresh = GraphStore::new(sink)
            .with_redactor(redactor)
            .with_entity_tags(tags)
            .with_budgets(self.budgets);
        fresh.deadline = self.deadline;
        *self = fresh;
    }

    /// What the plugin has spent so far of the graph, output and job-data budgets.
    pub fn spent(&self) -> Spending {
        Spending {
            graph_objects: self.spent.objects.spent(),
            graph_bytes: self.spent.index.spent(),
            output_bytes: self.spent.output.spent(),
            job_data_bytes: self.spent.data.spent(),
            job_data_entries: self.spent.data_entries.spent(),
            log_bytes: 0,
        }
    }

    fn check_deadline(&self, done: usize) -> Result<(), StoreFailure> {
        if done.is_multiple_of(DEADLINE_CHECK_EVERY)
            && self
                .deadline
                .is_some_and(|deadline| Instant::now() >= deadline)
        {
            return Err(StoreFailure::Deadline);
        }
        Ok(())
    }

    /// Scrubs these secrets from every text the plugin stores: a plugin must not be able
    /// to leak its credentials into the graph.
    pub fn with_redactor(mut self, redactor: Redactor) -> GraphStore {
        self.redactor = redactor;
        self
    }

    /// Objects added from now on belong to `step_id`. (Called before every batch when
    /// steps run side by side, so it costs nothing when the step is unchanged.)
    pub fn begin_step(&mut self, step_id: &str) {
        if self.step != step_id {
            self.step = step_id.to_owned();
            self.stats.entry(step_id.to_owned()).or_default();
        }
    }

    pub fn step_stats(&self, step_id: &str) -> StepGraphStats {
        self.stats.get(step_id).cloned().unwrap_or_default()
    }

    /// Number of objects stored so far, entities and relationships.
    pub fn object_count(&self) -> usize {
        self.keys.len()
    }

    /// Adds a batch of entities: all of them, or none when one is a duplicate or invalid.
    pub fn add_entities(&mut self, entities: Vec<Entity>) -> StoreResult<BatchOutcome> {
        let mut batch_keys = HashSet::new();
        // Raw data is parsed once, here, and stored as parsed.
        let mut raws = Vec::with_capacity(entities.len());
        for (done, entity) in entities.iter().enumerate() {
            self.check_deadline(done)?;
            match validate_entity(entity) {
                Ok(raw) => raws.push(raw),
                Err(error) => return Ok(Err(error)),
            }
            if self.keys.contains_key(entity.key.as_str())
                || !batch_keys.insert(entity.key.as_str())
            {
                return Ok(Err(GraphError::DuplicateKey(entity.key.clone())));
            }
        }
        let accepted = entities.len() as u32;
        for (done, (entity, raw)) in entities.into_iter().zip(raws).enumerate() {
            self.check_deadline(done)?;
            self.store_entity(entity, raw)?;
        }
        Ok(Ok(BatchOutcome {
            accepted,
            dropped: 0,
        }))
    }

    /// Adds a batch of relationships. Those with an endpoint missing from the graph are
    /// dropped and counted; a duplicate or invalid one rejects the batch.
    pub fn add_relationships(
        &mut self,
        relationships: Vec<Relationship>,
    ) -> StoreResult<BatchOutcome> {
        let mut batch_keys = HashSet::new();
        for (done, relationship) in relationships.iter().enumerate() {
            self.check_deadline(done)?;
            if let Err(error) = validate_relationship(relationship) {
                return Ok(Err(error));
            }
            if self.keys.contains_key(relationship.key.as_str())
                || !batch_keys.insert(relationship.key.as_str())
            {
                return Ok(Err(GraphError::DuplicateKey(relationship.key.clone())));
            }
        }
        let mut outcome = BatchOutcome::default();
        for (done, relationship) in relationships.into_iter().enumerate() {
            self.check_deadline(done)?;
            if !self.is_entity(&relationship.from_key) || !self.is_entity(&relationship.to_key) {
                tracing::debug!(
                    key = %relationship.key,
                    "dropped a relationship whose endpoint was not collected"
                );
                outcome.dropped += 1;
                continue;
            }
            let Relationship {
                key,
                type_,
                class,
                from_key,
                to_key,
                properties,
            } = relationship;
            self.store_relationship(key, type_, class, from_key, to_key, properties)?;
            outcome.accepted += 1;
        }
        self.current_stats().dropped_relationships += u64::from(outcome.dropped);
        Ok(Ok(outcome))
    }

    /// Resolves and adds mapped relationships (see the WIT `mapped-relationship`): finds
    /// the target among the graph's entities, creates it when none matches, and stores
    /// a direct relationship.
    pub fn add_mapped_relationships(
        &mut self,
        relationships: Vec<MappedRelationship>,
    ) -> StoreResult<BatchOutcome> {
        let mut batch_keys = HashSet::new();
        for (done, mapped) in relationships.iter().enumerate() {
            self.check_deadline(done)?;
            if let Err(error) = validate_mapped(mapped) {
                return Ok(Err(error));
            }
            if self.keys.contains_key(mapped.key.as_str())
                || !batch_keys.insert(mapped.key.as_str())
            {
                return Ok(Err(GraphError::DuplicateKey(mapped.key.clone())));
            }
            // A target key held by an object that does not match would otherwise fail
            // the batch halfway, after earlier relationships were stored.
            let target_key = mapped.target_entity.key.as_str();
            if self.keys.contains_key(target_key)
                && self.is_entity(&mapped.source_key)
                && self.find_target(mapped).is_none()
            {
                return Ok(Err(GraphError::DuplicateKey(target_key.to_owned())));
            }
        }
        let mut outcome = BatchOutcome::default();
        for (done, mapped) in relationships.into_iter().enumerate() {
            self.check_deadline(done)?;
            if !self.is_entity(&mapped.source_key) {
                tracing::debug!(key = %mapped.key, "dropped a mapped relationship without its source");
                outcome.dropped += 1;
                continue;
            }
            let target_key = match self.find_target(&mapped) {
                Some(existing) => {
                    self.current_stats().mapped_to_existing += 1;
                    existing
                }
                None => {
                    let target = &mapped.target_entity;
                    if self.keys.contains_key(target.key.as_str()) {
                        // The key exists but does not match the filter (or is not an entity).
                        return Ok(Err(GraphError::DuplicateKey(target.key.clone())));
                    }
                    self.store_entity(
                        Entity {
                            key: target.key.clone(),
                            type_: target.type_.clone(),
                            classes: target.classes.clone(),
                            properties: target.properties.clone(),
                            raw_data: None,
                        },
                        None,
                    )?;
                    self.current_stats().mapped_to_created += 1;
                    target.key.clone()
                }
            };
            let (from_key, to_key) = match mapped.direction {
                MappingDirection::Forward => (mapped.source_key, target_key),
                MappingDirection::Reverse => (target_key, mapped.source_key),
            };
            self.store_relationship(
                mapped.key,
                mapped.type_,
                mapped.class,
                from_key,
                to_key,
                mapped.properties,
            )?;
            outcome.accepted += 1;
        }
        self.current_stats().dropped_relationships += u64::from(outcome.dropped);
        Ok(Ok(outcome))
    }

    pub fn has_key(&self, key: &str) -> bool {
        self.keys.contains_key(key)
    }

    pub fn find_entity(&mut self, key: &str) -> Result<Option<Entity>, StoreFailure> {
        let Some(KeyEntry::Entity { location, .. }) = self.keys.get(key).copied() else {
            return Ok(None);
        };
        Ok(self.sink.read(location)?.map(entity_from_json))
    }

    pub fn entity_keys(&self, entity_type: &str, start: u32, limit: u32) -> Vec<String> {
        self.keys_by_type
            .get(entity_type)
            .map(|keys| {
                keys.iter()
                    .skip(start as usize)
                    .take(limit as usize)
                    .map(|key| key.to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Stores a job-data value, charged to the job-data budgets (key and value bytes,
    /// and entries); a replaced value is given back first.
    pub fn set_data(&mut self, key: String, value: String) -> Result<(), LimitExceeded> {
        let cost =
            |key: &str, value: &str| (key.len() + value.len()) as u64 + JOB_DATA_BYTES_PER_ENTRY;
        let old = self.data.get(&key).map(|old| cost(&key, old));
        let new = cost(&key, &value);
        match old {
            Some(old) => {
                self.spent.data.check(new.saturating_sub(old))?;
                self.spent.data.refund(old);
                self.spent.data.charge(new)?;
            }
            None => {
                self.spent.data.check(new)?;
                self.spent.data_entries.charge(1)?;
                self.spent.data.charge(new)?;
            }
        }
        self.data.insert(key, value);
        Ok(())
    }

    pub fn get_data(&self, key: &str) -> Option<String> {
        self.data.get(key).cloned()
    }

    /// Writes out everything still buffered.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.sink.flush()
    }

    fn current_stats(&mut self) -> &mut StepGraphStats {
        self.stats.entry(self.step.clone()).or_default()
    }

    fn is_entity(&self, key: &str) -> bool {
        matches!(self.keys.get(key), Some(KeyEntry::Entity { .. }))
    }

    fn classes_of(&self, key: &str) -> &[String] {
        match self.keys.get(key) {
            Some(KeyEntry::Entity { class_set, .. }) => &self.class_sets[*class_set as usize],
            _ => &[],
        }
    }

    /// The index of a `_class` list, added when new (and then charged to the index).
    fn intern_classes(&mut self, classes: &[String]) -> Result<u32, LimitExceeded> {
        if let Some(&index) = self.class_set_index.get(classes) {
            return Ok(index);
        }
        let bytes: usize = classes.iter().map(String::len).sum();
        self.spent.index.charge(2 * bytes as u64 + BYTES_PER_NAME)?;
        let index = self.class_sets.len() as u32;
        self.class_sets.push(classes.to_vec());
        self.class_set_index.insert(classes.to_vec(), index);
        Ok(index)
    }

    /// Charges one object of `object_type` with key `key`, `emails` indexed and
    /// `output_bytes` written, before it is stored: a refusal stores nothing of it.
    fn charge_object(
        &mut self,
        key: &str,
        object_type: &str,
        kind: ObjectKind,
        emails: u64,
        output_bytes: u64,
    ) -> Result<(), LimitExceeded> {
        let stats = self.stats.get(&self.step);
        let new_type = !stats.is_some_and(|stats| match kind {
            ObjectKind::Entity => stats.entities.contains_key(object_type),
            ObjectKind::Relationship => stats.relationships.contains_key(object_type),
        });
        let index = key.len() as u64
            + GRAPH_BYTES_PER_OBJECT
            + emails
            + if new_type {
                object_type.len() as u64 + BYTES_PER_NAME
            } else {
                0
            };
        self.spent.objects.check(1)?;
        self.spent.index.check(index)?;
        self.spent.output.check(output_bytes)?;
        self.spent.objects.charge(1)?;
        self.spent.index.charge(index)?;
        self.spent.output.charge(output_bytes)
    }

    /// The first entity matching one of the filter sets. Supported filter keys: `_class`,
    /// `_key` and `email` (checked by `validate_mapped`).
    fn find_target(&self, mapped: &MappedRelationship) -> Option<String> {
        let target = &mapped.target_entity;
        for filter in &mapped.target_filter_keys {
            let wants = |name: &str| filter.iter().any(|f| f == name);
            let class_ok = |key: &str| {
                !wants("_class")
                    || self
                        .classes_of(key)
                        .iter()
                        .any(|c| target.classes.contains(c))
            };
            let candidates: Vec<&str> = if wants("email") {
                text_values(&target.properties, "email")
                    .iter()
                    .filter_map(|email| self.keys_by_email.get(&email.to_lowercase()))
                    .flatten()
                    .map(|key| key.as_ref())
                    .collect()
            } else if wants("_key") {
                vec![target.key.as_str()]
            } else {
                continue;
            };
            let found = candidates.into_iter().find(|key| {
                self.is_entity(key) && class_ok(key) && (!wants("_key") || *key == target.key)
            });
            if let Some(key) = found {
                return Some(key.to_owned());
            }
        }
        None
    }

    /// Stores a validated entity; `raw` is its raw data, checked JSON.
    fn store_entity(
        &mut self,
        mut entity: Entity,
        mut raw: Option<Box<RawValue>>,
    ) -> Result<(), StoreFailure> {
        if !self.redactor.is_empty() {
            self.redactor.scrub_properties(&mut entity.properties);
            raw = raw.map(|raw| self.redactor.scrub_raw(raw));
        }
        for tag in &self.entity_tags {
            entity.properties.retain(|p| p.name != tag.name);
            entity.properties.push(tag.clone());
        }
        let object = to_raw(&JsonEntity {
            entity: &entity,
            raw: raw.as_deref(),
        })?;
        let emails = text_values(&entity.properties, "email");
        let email_bytes: u64 = emails
            .iter()
            .map(|email| email.len() as u64 + GRAPH_BYTES_PER_OBJECT / 2)
            .sum();
        self.charge_object(
            &entity.key,
            &entity.type_,
            ObjectKind::Entity,
            email_bytes,
            object.get().len() as u64,
        )?;
        let key: Arc<str> = Arc::from(entity.key.as_str());
        let class_set = self.intern_classes(&entity.classes)?;
        for email in emails {
            self.keys_by_email
                .entry(email.to_lowercase())
                .or_default()
                .push(key.clone());
        }
        let entity_type = entity.type_;
        let location = self
            .sink
            .write(&self.step, ObjectKind::Entity, &entity_type, object)?;
        self.keys.insert(
            key.clone(),
            KeyEntry::Entity {
                location,
                class_set,
            },
        );
        self.keys_by_type
            .entry(entity_type.clone())
            .or_default()
            .push(key);
        *self
            .current_stats()
            .entities
            .entry(entity_type)
            .or_default() += 1;
        Ok(())
    }

    fn store_relationship(
        &mut self,
        key: String,
        relationship_type: String,
        class: String,
        from_key: String,
        to_key: String,
        mut properties: Vec<Property>,
    ) -> Result<(), StoreFailure> {
        self.redactor.scrub_properties(&mut properties);
        let object = to_raw(&JsonRelationship {
            key: &key,
            relationship_type: &relationship_type,
            class: &class,
            from_key: &from_key,
            to_key: &to_key,
            properties: &properties,
        })?;
        self.charge_object(
            &key,
            &relationship_type,
            ObjectKind::Relationship,
            0,
            object.get().len() as u64,
        )?;
        self.sink.write(
            &self.step,
            ObjectKind::Relationship,
            &relationship_type,
            object,
        )?;
        self.keys
            .insert(Arc::from(key.as_str()), KeyEntry::Relationship);
        *self
            .current_stats()
            .relationships
            .entry(relationship_type)
            .or_default() += 1;
        Ok(())
    }
}

fn text_values<'p>(properties: &'p [Property], name: &str) -> Vec<&'p str> {
    match properties.iter().find(|p| p.name == name).map(|p| &p.value) {
        Some(PropertyValue::Text(text)) => vec![text.as_str()],
        Some(PropertyValue::TextList(list)) => list.iter().map(String::as_str).collect(),
        _ => Vec::new(),
    }
}

/// How deeply arrays and objects nest in valid JSON `text` (strings skipped).
fn json_depth(text: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0, false, false);
    for &byte in text.as_bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn invalid(key: &str, rule: &str) -> GraphError {
    // A key is the plugin's text: shown shortened (the rule says what was wrong).
    GraphError::InvalidObject(format!(
        "{}: {rule}",
        crate::sandbox::text::truncate(key, 200)
    ))
}

fn validate_common(
    key: &str,
    object_type: &str,
    properties: &[Property],
) -> Result<(), GraphError> {
    if key.chars().count() < MIN_KEY_LEN {
        return Err(invalid(key, "_key must have at least 10 characters"));
    }
    if object_type.chars().count() < MIN_TYPE_LEN {
        return Err(invalid(key, "_type must have at least 3 characters"));
    }
    if !is_valid_type(object_type) {
        return Err(invalid(
            key,
            &format!(
                "_type {:?} must match {TYPE_PATTERN}",
                crate::sandbox::text::truncate(object_type, 80)
            ),
        ));
    }
    for property in properties {
        if !valid_property_name(&property.name) {
            return Err(invalid(
                key,
                &format!(
                    "property name {:?} is reserved or has characters outside [A-Za-z0-9. -]",
                    property.name
                ),
            ));
        }
        if let PropertyValue::Float(f) = property.value
            && !f.is_finite()
        {
            return Err(invalid(
                key,
                &format!("property {:?} is not a finite number", property.name),
            ));
        }
    }
    // Sorting a few dozen names is cheaper than hashing them, on every object.
    let mut names: Vec<&str> = properties.iter().map(|p| p.name.as_str()).collect();
    names.sort_unstable();
    if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(invalid(
            key,
            &format!("property {:?} is set twice", pair[0]),
        ));
    }
    Ok(())
}

/// J1's rule for property names (`GraphObject.propertyNames`), minus the `_` prefix
/// that only the graph's own fields may use.
fn valid_property_name(name: &str) -> bool {
    let rest = name.strip_prefix("tag.").unwrap_or(name);
    !rest.is_empty()
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ' ' | '-'))
}

fn validate_classes(key: &str, classes: &[String]) -> Result<(), GraphError> {
    if classes.is_empty() {
        return Err(invalid(key, "_class must name at least one class"));
    }
    if classes.iter().any(|c| c.chars().count() < MIN_CLASS_LEN) {
        return Err(invalid(key, "each _class must have at least 2 characters"));
    }
    Ok(())
}

/// Checks an entity; returns its raw data as checked JSON text (written out as
/// received, never rebuilt).
fn validate_entity(entity: &Entity) -> Result<Option<Box<RawValue>>, GraphError> {
    validate_common(&entity.key, &entity.type_, &entity.properties)?;
    validate_classes(&entity.key, &entity.classes)?;
    entity
        .raw_data
        .as_deref()
        .map(|raw| {
            let checked = serde_json::from_str::<Box<RawValue>>(raw)
                .map_err(|_| invalid(&entity.key, "raw-data is not valid JSON"))?;
            if json_depth(raw) > MAX_RAW_DEPTH {
                return Err(invalid(
                    &entity.key,
                    &format!("raw-data nests deeper than {MAX_RAW_DEPTH} levels"),
                ));
            }
            Ok(checked)
        })
        .transpose()
}

fn validate_relationship(relationship: &Relationship) -> Result<(), GraphError> {
    validate_common(
        &relationship.key,
        &relationship.type_,
        &relationship.properties,
    )?;
    validate_classes(&relationship.key, std::slice::from_ref(&relationship.class))
}

fn validate_mapped(mapped: &MappedRelationship) -> Result<(), GraphError> {
    validate_common(&mapped.key, &mapped.type_, &mapped.properties)?;
    validate_classes(&mapped.key, std::slice::from_ref(&mapped.class))?;
    let target = &mapped.target_entity;
    validate_common(&target.key, &target.type_, &target.properties)?;
    validate_classes(&target.key, &target.classes)?;
    if mapped.target_filter_keys.is_empty() {
        return Err(invalid(&mapped.key, "target-filter-keys is empty"));
    }
    for filter in &mapped.target_filter_keys {
        if let Some(unsupported) = filter
            .iter()
            .find(|name| !matches!(name.as_str(), "_class" | "_key" | "email"))
        {
            return Err(invalid(
                &mapped.key,
                &format!(
                    "target filter key {unsupported:?} is not supported (use _class, _key, email)"
                ),
            ));
        }
        if !filter.iter().any(|name| name == "email" || name == "_key") {
            return Err(invalid(
                &mapped.key,
                "a target filter needs `email` or `_key`",
            ));
        }
    }
    Ok(())
}

/// A property value as JSON.
struct JsonProperty<'a>(&'a PropertyValue);

impl Serialize for JsonProperty<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            PropertyValue::Null => serializer.serialize_unit(),
            PropertyValue::Boolean(b) => serializer.serialize_bool(*b),
            PropertyValue::Integer(i) => serializer.serialize_i64(*i),
            // Validated finite when the batch was accepted.
            PropertyValue::Float(f) => serializer.serialize_f64(*f),
            PropertyValue::Text(s) => serializer.serialize_str(s),
            PropertyValue::TextList(list) => list.serialize(serializer),
            PropertyValue::IntegerList(list) => list.serialize(serializer),
            PropertyValue::BooleanList(list) => list.serialize(serializer),
        }
    }
}

/// The J1 JSON form of an entity, serialized straight from the WIT record.
struct JsonEntity<'a> {
    entity: &'a Entity,
    raw: Option<&'a RawValue>,
}

impl Serialize for JsonEntity<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        /// `{"name": "default", "rawData": ...}`.
        struct RawData<'a>(&'a RawValue);
        impl Serialize for RawData<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("name", "default")?;
                map.serialize_entry("rawData", self.0)?;
                map.end()
            }
        }
        let entity = self.entity;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("_key", &entity.key)?;
        map.serialize_entry("_type", &entity.type_)?;
        map.serialize_entry("_class", &entity.classes)?;
        for property in &entity.properties {
            map.serialize_entry(&property.name, &JsonProperty(&property.value))?;
        }
        if let Some(raw) = self.raw {
            map.serialize_entry("_rawData", &[RawData(raw)])?;
        }
        map.end()
    }
}

/// The J1 JSON form of a direct relationship.
struct JsonRelationship<'a> {
    key: &'a str,
    relationship_type: &'a str,
    class: &'a str,
    from_key: &'a str,
    to_key: &'a str,
    properties: &'a [Property],
}

impl Serialize for JsonRelationship<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("_key", self.key)?;
        map.serialize_entry("_type", self.relationship_type)?;
        map.serialize_entry("_class", self.class)?;
        map.serialize_entry("_fromEntityKey", self.from_key)?;
        map.serialize_entry("_toEntityKey", self.to_key)?;
        for property in self.properties {
            map.serialize_entry(&property.name, &JsonProperty(&property.value))?;
        }
        map.end()
    }
}

fn to_raw(value: &impl Serialize) -> std::io::Result<Box<RawValue>> {
    serde_json::value::to_raw_value(value).map_err(std::io::Error::other)
}

/// The WIT form of an entity read back from its J1 JSON.
fn entity_from_json(mut object: Map<String, Value>) -> Entity {
    let text = |value: Option<Value>| match value {
        Some(Value::String(s)) => s,
        _ => String::new(),
    };
    let key = text(object.remove("_key"));
    let type_ = text(object.remove("_type"));
    let classes = match object.remove("_class") {
        Some(Value::Array(items)) => items
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(Value::String(class)) => vec![class],
        _ => Vec::new(),
    };
    let raw_data = match object.remove("_rawData") {
        Some(Value::Array(mut items)) if !items.is_empty() => {
            items.swap_remove(0).get("rawData").map(Value::to_string)
        }
        _ => None,
    };
    let properties = object
        .into_iter()
        .map(|(name, value)| Property {
            name,
            value: json_to_property(value),
        })
        .collect();
    Entity {
        key,
        type_,
        classes,
        properties,
        raw_data,
    }
}

fn json_to_property(value: Value) -> PropertyValue {
    match value {
        Value::Null => PropertyValue::Null,
        Value::Bool(b) => PropertyValue::Boolean(b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => PropertyValue::Integer(i),
            None => PropertyValue::Float(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => PropertyValue::Text(s),
        Value::Array(items) => {
            if items.iter().all(Value::is_boolean) && !items.is_empty() {
                PropertyValue::BooleanList(items.iter().filter_map(Value::as_bool).collect())
            } else if items.iter().all(Value::is_i64) && !items.is_empty() {
                PropertyValue::IntegerList(items.iter().filter_map(Value::as_i64).collect())
            } else {
                PropertyValue::TextList(
                    items
                        .into_iter()
                        .map(|v| match v {
                            Value::String(s) => s,
                            other => other.to_string(),
                        })
                        .collect(),
                )
            }
        }
        Value::Object(_) => PropertyValue::Text(value.to_string()),
    }
}

#[cfg(test)]
mod tests;
