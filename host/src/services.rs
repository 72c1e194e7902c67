//! What the host gives a plugin besides wasi: the `graph`, `log`, `progress` and
//! `limits` imports. Log lines are tagged here with tenant and step (a plugin cannot
//! forge another tenant's lines), scrubbed of secret values, escaped (a plugin cannot
//! drive the operator's terminal), cut to a line length and capped per run in lines and
//! bytes. Graph calls stop at the run's deadline and spend the run's budgets.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use serde_json::value::RawValue;
use wasmtime::component::Linker;

use crate::bindings::secgraph::integration::{graph, limits, log, progress, types};
use crate::bindings::{Entity, GraphError, MappedRelationship, Relationship};
use crate::runtime::{RunState, StateData};
use crate::sandbox::limits::Budgets;
use crate::sandbox::text::{cut_marker, escape, prefix};

/// Keys `graph.entity-keys` returns at most per call, whatever the plugin asks: the
/// plugin pages on until an empty list.
pub const MAX_KEYS_PER_CALL: u32 = 10_000;
/// Step ids shown in progress, at most (a plugin's report names any text).
const MAX_PROGRESS_STEP_BYTES: usize = 64;

/// The run's deadline passed while the plugin was in a host call.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the run's deadline passed during a host call")]
pub struct DeadlinePassed;

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

    /// The length of the longest secret, in bytes.
    pub fn longest(&self) -> usize {
        self.secrets.first().map_or(0, String::len)
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
    /// Lines written per run, at most.
    budget: u32,
    /// Bytes written per run, at most.
    max_bytes: u64,
    /// Bytes of one line, at most: longer lines are cut with a marker.
    max_line_bytes: u64,
    written: Arc<AtomicU32>,
    written_bytes: Arc<AtomicU64>,
    dropped: Arc<AtomicU32>,
}

impl GuestLog {
    /// A log of at most `budget` lines, with the default byte budgets.
    pub fn new(tenant: Arc<str>, secrets: Vec<String>, budget: u32) -> GuestLog {
        let bytes = Budgets::default();
        GuestLog {
            tenant,
            step: String::new(),
            redactor: Redactor::new(secrets),
            budget,
            max_bytes: bytes.log_bytes,
            max_line_bytes: bytes.log_line_bytes,
            written: Arc::new(AtomicU32::new(0)),
            written_bytes: Arc::new(AtomicU64::new(0)),
            dropped: Arc::new(AtomicU32::new(0)),
        }
    }

    /// Applies the log byte budgets of `budgets`.
    pub fn with_budgets(mut self, budgets: &Budgets) -> GuestLog {
        self.max_bytes = budgets.log_bytes;
        self.max_line_bytes = budgets.log_line_bytes;
        self
    }

    /// Bytes of log lines written so far.
    pub fn bytes_written(&self) -> u64 {
        self.written_bytes.load(Ordering::Relaxed)
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

    fn drop_line(&self) {
        if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
            tracing::warn!(
                tenant = %self.tenant,
                lines = self.budget,
                bytes = self.max_bytes,
                "the plugin's log budget is spent; further lines are dropped"
            );
        }
    }

    /// Writes one line: message and ` name=value` fields, scrubbed of secrets, escaped,
    /// cut to the line length, within the run's line and byte budgets.
    fn write(&mut self, level: log::Level, message: &str, fields: &[log::Field]) {
        if self.written.fetch_add(1, Ordering::Relaxed) >= self.budget {
            return self.drop_line();
        }
        let left = self
            .max_bytes
            .saturating_sub(self.written_bytes.load(Ordering::Relaxed));
        if left == 0 {
            return self.drop_line();
        }
        let line = self.line(message, fields, self.max_line_bytes.min(left) as usize);
        self.written_bytes
            .fetch_add(line.len() as u64, Ordering::Relaxed);
        let (tenant, step) = (&*self.tenant, self.step.as_str());
        match level {
            log::Level::Trace => tracing::trace!(target: "plugin", tenant, step, "{line}"),
            log::Level::Debug => tracing::debug!(target: "plugin", tenant, step, "{line}"),
            log::Level::Info => tracing::info!(target: "plugin", tenant, step, "{line}"),
            log::Level::Warn => tracing::warn!(target: "plugin", tenant, step, "{line}"),
            log::Level::Error => tracing::error!(target: "plugin", tenant, step, "{line}"),
        }
    }

    /// The text of a line of at most `max` bytes. Only what can be shown is copied
    /// (the cut plus the longest secret, so a secret that starts before the cut is
    /// scrubbed whole); secrets are scrubbed before escaping, which could split them.
    fn line(&self, message: &str, fields: &[log::Field], max: usize) -> String {
        let room = max.saturating_add(self.redactor.longest());
        let full_len = message.len()
            + fields
                .iter()
                .map(|f| 2 + f.name.len() + f.value.len())
                .sum::<usize>();
        let mut text = String::with_capacity(room.min(full_len));
        let append = |part: &str, text: &mut String| {
            let (kept, _) = prefix(part, room.saturating_sub(text.len()));
            text.push_str(kept);
        };
        append(message, &mut text);
        for field in fields {
            if text.len() >= room {
                break;
            }
            text.push(' ');
            append(&field.name, &mut text);
            text.push('=');
            append(&field.value, &mut text);
        }
        let collected_all = text.len() == full_len;
        let shown = escape(&self.redactor.scrub(&text)).into_owned();
        match prefix(&shown, max) {
            (kept, false) if collected_all => kept.to_owned(),
            (kept, _) => format!("{kept}{}", cut_marker(full_len)),
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
    /// panicked while holding it) ends this run with a trap; so does a call made past
    /// the run's deadline.
    fn graph(&mut self) -> wasmtime::Result<std::sync::MutexGuard<'_, crate::graph::GraphStore>> {
        if Instant::now() >= self.deadline {
            return Err(DeadlinePassed.into());
        }
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
        let limit = limit.min(MAX_KEYS_PER_CALL);
        Ok(self.graph()?.entity_keys(&entity_type, start, limit))
    }

    fn set_data(&mut self, key: String, value: String) -> wasmtime::Result<()> {
        self.graph()?.set_data(key, value)?;
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
        // The host knows which step this store runs; the plugin's text is only used
        // (escaped and short) when it reports outside of a step.
        let step = match self.step.as_str() {
            "" => escape(&crate::sandbox::text::truncate(
                &step_id,
                MAX_PROGRESS_STEP_BYTES,
            ))
            .into_owned(),
            step => step.to_owned(),
        };
        self.progress.report(&tenant, &step, done, total);
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
        // A line of the plugin's log: scrubbed, escaped, within its budgets.
        let field = |name: &str, value: String| log::Field {
            name: name.to_owned(),
            value,
        };
        self.log.write(
            log::Level::Warn,
            "retrying a request",
            &[
                field("endpoint", endpoint),
                field("attempt", attempt.to_string()),
                field("delay_ms", delay_ms.to_string()),
                field("reason", reason),
            ],
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

    fn log(secrets: &[&str], lines: u32, budgets: Budgets) -> GuestLog {
        GuestLog::new(
            Arc::from("t"),
            secrets.iter().map(|s| (*s).to_owned()).collect(),
            lines,
        )
        .with_budgets(&budgets)
    }

    fn field(name: &str, value: &str) -> log::Field {
        log::Field {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn a_long_line_is_cut_with_a_marker_not_dropped() {
        let log = log(&[], 10, Budgets::default());
        let message = "m".repeat(8 << 20);
        let line = log.line(&message, &[field("payload", &"f".repeat(8 << 20))], 4096);
        assert!(line.len() <= 4096 + 64, "{}", line.len());
        assert!(line.starts_with("mmmm"));
        assert!(
            line.ends_with("…[truncated: 16777225 bytes in all]"),
            "{line:.80}"
        );
        assert_eq!(log.line("short", &[field("k", "v")], 4096), "short k=v");
    }

    #[test]
    fn a_line_is_escaped_after_its_secrets_are_scrubbed() {
        let log = log(&["secret-value-1234"], 10, Budgets::default());
        let line = log.line(
            "key secret-value-1234\n\u{1b}[2J",
            &[field("x\ny", "secret-value-1234")],
            4096,
        );
        assert_eq!(line, "key [REDACTED]\\n\\u{1b}[2J x\\ny=[REDACTED]");
    }

    #[test]
    fn a_secret_straddling_the_cut_is_scrubbed_not_half_shown() {
        let log = log(&["abcdefghijklmnop"], 10, Budgets::default());
        // The secret starts 4 bytes before the cut at 10.
        let line = log.line("012345abcdefghijklmnop tail", &[], 10);
        assert!(!line.contains("abcd"), "{line}");
        assert!(line.starts_with("012345[RED"), "{line}");
    }

    #[test]
    fn lines_past_the_byte_budget_are_dropped_and_counted() {
        let budgets = Budgets {
            log_bytes: 100,
            log_line_bytes: 60,
            ..Budgets::default()
        };
        let mut log = log(&[], 1000, budgets);
        for _ in 0..10 {
            log.write(log::Level::Info, &"x".repeat(50), &[]);
        }
        assert_eq!(log.bytes_written(), 100, "50 + 50, then nothing fits");
        assert_eq!(log.dropped(), 8);
    }

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
