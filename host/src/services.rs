//! What the host gives a plugin besides wasi: the `graph`, `log`, `progress` and
//! `limits` imports. Log lines are tagged here with tenant and step (a plugin cannot
//! forge another tenant's lines), capped per run, and scrubbed of secret values.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::value::RawValue;
use wasmtime::component::Linker;

use crate::bindings::secgraph::integration::{graph, limits, log, progress, types};
use crate::bindings::{Entity, GraphError, MappedRelationship, Relationship};
use crate::runtime::{RunState, StateData};

/// Shown in place of a secret value.
pub const REDACTED: &str = "[REDACTED]";

/// Registers our imports with the linker.
pub fn add_to_linker(linker: &mut Linker<RunState>) -> wasmtime::Result<()> {
    types::add_to_linker::<RunState, StateData>(linker, |state| state)?;
    graph::add_to_linker::<RunState, StateData>(linker, |state| state)?;
    log::add_to_linker::<RunState, StateData>(linker, |state| state)?;
    progress::add_to_linker::<RunState, StateData>(linker, |state| state)?;
    limits::add_to_linker::<RunState, StateData>(linker, |state| state)?;
    Ok(())
}

/// Removes secret values from text. Secrets shorter than 4 characters are not
/// scrubbed: they would match everywhere and hide nothing worth hiding.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Redactor {
        let mut secrets: Vec<String> = secrets.into_iter().filter(|s| s.len() >= 4).collect();
        // Longest first, so a secret containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Redactor { secrets }
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Scrubs text property values in place.
    pub fn scrub_properties(&self, properties: &mut [crate::bindings::Property]) {
        use crate::bindings::PropertyValue;
        if self.secrets.is_empty() {
            return;
        }
        for property in properties {
            match &mut property.value {
                PropertyValue::Text(text) => *text = self.scrub(text),
                PropertyValue::TextList(list) => {
                    for text in list {
                        *text = self.scrub(text);
                    }
                }
                _ => {}
            }
        }
    }

    /// Scrubs JSON text. Only when a secret may be inside (it appears as is, or the
    /// text has escapes that could spell it) is the value parsed and rebuilt.
    pub fn scrub_raw(&self, raw: Box<RawValue>) -> Box<RawValue> {
        let text = raw.get();
        let suspicious =
            text.contains('\\') || self.secrets.iter().any(|s| text.contains(s.as_str()));
        if !suspicious {
            return raw;
        }
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(mut value) => {
                self.scrub_value(&mut value);
                serde_json::value::to_raw_value(&value).unwrap_or(raw)
            }
            Err(_) => raw,
        }
    }

    /// Scrubs every string of a JSON value in place (keys stay as they are).
    pub fn scrub_value(&self, value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(text) => *text = self.scrub(text),
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| self.scrub_value(v)),
            serde_json::Value::Object(map) => map.values_mut().for_each(|v| self.scrub_value(v)),
            _ => {}
        }
    }

    pub fn scrub(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), REDACTED);
            }
        }
        text
    }
}

/// The guest's log of one run. Clones (one per store of the run) share the budget.
#[derive(Clone)]
pub struct GuestLog {
    tenant: Arc<str>,
    step: String,
    redactor: Redactor,
    budget: u32,
    written: Arc<AtomicU32>,
    dropped: Arc<AtomicU32>,
}

impl GuestLog {
    pub fn new(tenant: Arc<str>, secrets: Vec<String>, budget: u32) -> GuestLog {
        GuestLog {
            tenant,
            step: String::new(),
            redactor: Redactor::new(secrets),
            budget,
            written: Arc::new(AtomicU32::new(0)),
            dropped: Arc::new(AtomicU32::new(0)),
        }
    }

    pub fn set_step(&mut self, step: &str) {
        self.step = step.to_owned();
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Lines dropped because the run's budget was spent.
    pub fn dropped(&self) -> u32 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn write(&mut self, level: log::Level, message: &str, fields: &[log::Field]) {
        if self.written.fetch_add(1, Ordering::Relaxed) >= self.budget {
            if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!(
                    tenant = %self.tenant,
                    budget = self.budget,
                    "the plugin's log budget is spent; further lines are dropped"
                );
            }
            return;
        }
        let message = self.redactor.scrub(message);
        let fields: String = fields
            .iter()
            .map(|field| {
                format!(
                    " {}={}",
                    self.redactor.scrub(&field.name),
                    self.redactor.scrub(&field.value)
                )
            })
            .collect();
        let (tenant, step) = (&*self.tenant, self.step.as_str());
        match level {
            log::Level::Trace => {
                tracing::trace!(target: "plugin", tenant, step, "{message}{fields}")
            }
            log::Level::Debug => {
                tracing::debug!(target: "plugin", tenant, step, "{message}{fields}")
            }
            log::Level::Info => tracing::info!(target: "plugin", tenant, step, "{message}{fields}"),
            log::Level::Warn => tracing::warn!(target: "plugin", tenant, step, "{message}{fields}"),
            log::Level::Error => {
                tracing::error!(target: "plugin", tenant, step, "{message}{fields}")
            }
        }
    }
}

/// Where step progress goes: a progress bar, log lines, or nowhere.
pub trait ProgressSink: Send + Sync {
    fn report(&self, tenant: &str, step: &str, done: u64, total: Option<u64>);
}

/// Discards progress.
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn report(&self, _tenant: &str, _step: &str, _done: u64, _total: Option<u64>) {}
}

impl types::Host for RunState {}

impl RunState {
    /// The job's graph, set to this store's step. A poisoned lock (a host thread
    /// panicked while holding it) ends this run with a trap.
    fn graph(&mut self) -> wasmtime::Result<std::sync::MutexGuard<'_, crate::graph::GraphStore>> {
        let mut graph = self.graph.lock().map_err(|_| {
            wasmtime::Error::msg("the graph store is unusable after a host failure")
        })?;
        graph.begin_step(&self.step);
        Ok(graph)
    }
}

impl graph::Host for RunState {
    fn add_entities(
        &mut self,
        entities: Vec<Entity>,
    ) -> wasmtime::Result<Result<graph::BatchOutcome, GraphError>> {
        Ok(self.graph()?.add_entities(entities)?.map(outcome))
    }

    fn add_relationships(
        &mut self,
        relationships: Vec<Relationship>,
    ) -> wasmtime::Result<Result<graph::BatchOutcome, GraphError>> {
        Ok(self.graph()?.add_relationships(relationships)?.map(outcome))
    }

    fn add_mapped_relationships(
        &mut self,
        relationships: Vec<MappedRelationship>,
    ) -> wasmtime::Result<Result<graph::BatchOutcome, GraphError>> {
        Ok(self
            .graph()?
            .add_mapped_relationships(relationships)?
            .map(outcome))
    }

    fn has_key(&mut self, key: String) -> wasmtime::Result<bool> {
        Ok(self.graph()?.has_key(&key))
    }

    fn find_entity(&mut self, key: String) -> wasmtime::Result<Option<Entity>> {
        Ok(self.graph()?.find_entity(&key)?)
    }

    fn entity_keys(
        &mut self,
        entity_type: String,
        start: u32,
        limit: u32,
    ) -> wasmtime::Result<Vec<String>> {
        Ok(self.graph()?.entity_keys(&entity_type, start, limit))
    }

    fn set_data(&mut self, key: String, value: String) -> wasmtime::Result<()> {
        self.graph()?.set_data(key, value);
        Ok(())
    }

    fn get_data(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.graph()?.get_data(&key))
    }
}

fn outcome(outcome: crate::graph::BatchOutcome) -> graph::BatchOutcome {
    graph::BatchOutcome {
        accepted: outcome.accepted,
        dropped: outcome.dropped,
    }
}

impl log::Host for RunState {
    fn log(
        &mut self,
        level: log::Level,
        message: String,
        fields: Vec<log::Field>,
    ) -> wasmtime::Result<()> {
        self.log.write(level, &message, &fields);
        Ok(())
    }
}

impl progress::Host for RunState {
    fn report(&mut self, step_id: String, done: u64, total: Option<u64>) -> wasmtime::Result<()> {
        let tenant = self.log.tenant.clone();
        self.progress.report(&tenant, &step_id, done, total);
        Ok(())
    }

    fn retrying(
        &mut self,
        endpoint: String,
        attempt: u32,
        delay_ms: u64,
        reason: String,
    ) -> wasmtime::Result<()> {
        self.retries += 1;
        let redactor = self.log.redactor();
        tracing::warn!(
            tenant = %self.log.tenant,
            step = %self.log.step,
            endpoint = %redactor.scrub(&endpoint),
            attempt,
            delay_ms,
            reason = %redactor.scrub(&reason),
            "retrying a request"
        );
        Ok(())
    }
}

impl limits::Host for RunState {
    fn max_concurrent_requests(&mut self) -> wasmtime::Result<u32> {
        Ok(self.max_concurrent_requests.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redactor_scrubs_every_occurrence_longest_first() {
        let redactor = Redactor::new(vec![
            "abc".into(),
            "secret-key".into(),
            "secret-key-2".into(),
        ]);
        assert_eq!(
            redactor.scrub("k=secret-key-2 and secret-key, abc"),
            "k=[REDACTED] and [REDACTED], abc"
        );
    }
}
