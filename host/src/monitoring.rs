//! The monitoring commands: `runs`, `changes`, `export`, `trigger`, `query`, `alerts`,
//! and what `run` and `demo` print of the store.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use graph_store::{
    AlertRecord, AlertStatus, Change, ChangeFilter, ChangeKind, ChangeSet, Counts, ObjectKind,
    PropertyChange, RunRecord, Store, StoreError,
};
use integration_host::monitor::scheduler::format_time;
use integration_host::output::{FileSink, GraphSink};

use crate::Failure;

/// Where the store is: `--store URL`, else `<output>/store.db`.
#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// The store: sqlite://PATH, or the fleet's postgres://... (default:
    /// OUTPUT/store.db).
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// The output folder whose store.db is the default store.
    #[arg(long, default_value = crate::DEFAULT_OUTPUT)]
    pub output: PathBuf,
}

impl StoreArgs {
    pub fn url(&self) -> String {
        store_url(self.store.as_deref(), &self.output)
    }

    /// Opens a store that must exist already: reading commands never create one.
    pub async fn open_existing(&self) -> Result<Arc<dyn Store>, Failure> {
        open_existing(&self.url()).await
    }
}

/// `--store URL`, else the default store of the output folder.
pub fn store_url(store: Option<&str>, output: &Path) -> String {
    match store {
        Some(url) => url.to_owned(),
        None => format!("sqlite://{}", graph_store::default_path(output).display()),
    }
}

pub async fn open_existing(url: &str) -> Result<Arc<dyn Store>, Failure> {
    // The fleet's shared store: a server, nothing to find on disk.
    if graph_store::is_postgres_url(url) {
        return graph_store::open(url).await.map_err(Failure::run);
    }
    let path = graph_store::parse_url(url).map_err(Failure::usage)?;
    if !path.exists() {
        return Err(Failure::usage(format!(
            "no store at {}: `integration-host demo`, `run --store` or `serve` create one",
            path.display()
        )));
    }
    graph_store::open(url).await.map_err(Failure::run)
}

/// A store error as a failure: an unknown tenant or run is the user's (exit 2).
pub fn store_failure(error: StoreError) -> Failure {
    match error {
        StoreError::UnknownTenant(_)
        | StoreError::UnknownRun { .. }
        | StoreError::NoRuns(_)
        | StoreError::UnsupportedUrl(_) => Failure::usage(error),
        other => Failure::run(other),
    }
}

/// Text from the graph (the plugin's) on the operator's terminal: control characters
/// shown as escapes, never obeyed (the sandbox's one escaping function).
pub fn shown(text: &str) -> String {
    integration_host::sandbox::text::escape(text).into_owned()
}

fn counts_text(counts: &Counts) -> String {
    format!(
        "+{} ~{} -{}",
        counts.created, counts.updated, counts.deleted
    )
}

/// One line about a persisted run.
pub fn run_line(run: &RunRecord) -> String {
    let duration = run
        .finished_at_ms
        .map(|end| format!("{:.1} s", (end - run.started_at_ms) as f64 / 1000.0))
        .unwrap_or_else(|| "-".into());
    format!(
        "run {} ({}, {}{}) {} in {}: entities {}, relationships {}",
        run.id,
        run.trigger.as_str(),
        run.status,
        if run.baseline { ", baseline" } else { "" },
        format_time(run.started_at_ms),
        duration,
        counts_text(&run.changes.entities),
        counts_text(&run.changes.relationships),
    )
}

/// `tenants remove`: each tenant disabled and its configuration dropped; an unknown
/// tenant is an error (exit 2) after the others are done.
pub async fn tenants_remove(tenants: &[String], store: &StoreArgs) -> Result<u8, Failure> {
    let store = store.open_existing().await?;
    let mut unknown = Vec::new();
    for tenant in tenants {
        if store
            .remove_tenant_config(tenant)
            .await
            .map_err(store_failure)?
        {
            println!(
                "{}: removed (disabled; its graph and runs stay)",
                shown(tenant)
            );
        } else {
            unknown.push(shown(tenant));
        }
    }
    if !unknown.is_empty() {
        return Err(Failure::usage(format!(
            "no tenant {} in {}",
            unknown.join(", "),
            store.location()
        )));
    }
    Ok(0)
}

/// `tenants list`: each tenant's configuration revision, schedule and last run.
pub async fn tenants_list(store: &StoreArgs, json: bool) -> Result<u8, Failure> {
    let store = store.open_existing().await?;
    let tenants = store.tenants().await.map_err(store_failure)?;
    let mut rows = Vec::new();
    for state in tenants {
        let revision = store
            .tenant_config(&state.settings.tenant)
            .await
            .map_err(store_failure)?
            .map(|config| config.revision);
        rows.push((state, revision));
    }
    if json {
        let list: Vec<_> = rows
            .iter()
            .map(|(state, revision)| {
                let mut value = serde_json::to_value(state).unwrap_or_default();
                value["configRevision"] = serde_json::json!(revision);
                value
            })
            .collect();
        return print_json(&list).map(|()| 0);
    }
    println!(
        "{:<32} {:>8}  {:<16} {:<20} last run",
        "tenant", "revision", "polling", "next due"
    );
    for (state, revision) in &rows {
        let last = state.last_run.as_ref().map_or_else(
            || "none yet".to_owned(),
            |run| {
                format!(
                    "{} {} {}",
                    run.id,
                    run.status.as_str(),
                    format_time(run.started_at_ms)
                )
            },
        );
        println!(
            "{:<32} {:>8}  {:<16} {:<20} {last}",
            shown(&state.settings.tenant),
            revision.map_or_else(|| "-".to_owned(), |r| r.to_string()),
            state.settings.polling_interval.as_str(),
            state
                .next_due_ms
                .map_or_else(|| "-".to_owned(), format_time),
        );
    }
    if rows.is_empty() {
        println!("no tenants in {}", store.location());
    }
    Ok(0)
}

pub async fn runs(tenant: &str, store: &StoreArgs, json: bool, limit: u64) -> Result<u8, Failure> {
    let store = store.open_existing().await?;
    let runs = store.runs(tenant, limit).await.map_err(store_failure)?;
    if json {
        print_json(&runs)?;
        return Ok(0);
    }
    println!(
        "{:>6}  {:<9} {:<9} {:<20} {:>8} {:>9} {:>9}  {:<18} {:<18}",
        "run",
        "trigger",
        "status",
        "started",
        "seconds",
        "entities",
        "relations",
        "entity changes",
        "relation changes"
    );
    for run in &runs {
        let seconds = run
            .finished_at_ms
            .map(|end| format!("{:.1}", (end - run.started_at_ms) as f64 / 1000.0))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:>6}  {:<9} {:<9} {:<20} {:>8} {:>9} {:>9}  {:<18} {:<18}{}",
            run.id,
            run.trigger.as_str(),
            run.status.as_str(),
            format_time(run.started_at_ms),
            seconds,
            run.entities,
            run.relationships,
            counts_text(&run.changes.entities),
            counts_text(&run.changes.relationships),
            if run.baseline { "  baseline" } else { "" },
        );
        if let Some(error) = &run.error {
            println!("        {}", shown(error));
        }
    }
    if runs.is_empty() {
        println!("no runs of {tenant} yet");
    }
    Ok(0)
}

pub async fn changes(
    tenant: &str,
    run: Option<i64>,
    store: &StoreArgs,
    json: bool,
    object_type: Option<String>,
    limit: Option<u64>,
) -> Result<u8, Failure> {
    let store = store.open_existing().await?;
    let filter = ChangeFilter {
        object_type,
        limit,
        ..ChangeFilter::default()
    };
    let set = store
        .changes(tenant, run, &filter)
        .await
        .map_err(store_failure)?;
    if json {
        print_json(&set)?;
    } else {
        print_change_set(&*store, &set, None).await;
    }
    Ok(0)
}

/// A change set as text: a header, then the changes grouped by kind and type, each
/// group with up to `per_group` entries (all with `None`), named from the store, and
/// updates with their properties `old -> new`. A baseline lists counts only.
pub async fn print_change_set(store: &dyn Store, set: &ChangeSet, per_group: Option<usize>) {
    println!("{}", run_line(&set.run));
    if !set.run.partial_types.is_empty() {
        println!(
            "  partial types (nothing of them deleted): {}",
            shown(&set.run.partial_types.join(", "))
        );
    }
    if set.run.baseline && per_group.is_some() {
        println!("  baseline: the tenant's first graph, every object created");
        return;
    }
    /// Changes of one kind to objects of one type.
    type Group<'a> = ((ChangeKind, ObjectKind, &'a str), Vec<&'a Change>);
    let mut groups: Vec<Group> = Vec::new();
    for change in &set.changes {
        let group = (change.change, change.kind, change.object_type.as_str());
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, members)) => members.push(change),
            None => groups.push((group, vec![change])),
        }
    }
    groups
        .sort_by_key(|((change, kind, object_type), _)| (*kind, *change, object_type.to_string()));
    for ((change, kind, object_type), members) in &groups {
        let mark = match change {
            ChangeKind::Created => '+',
            ChangeKind::Updated => '~',
            ChangeKind::Deleted => '-',
        };
        println!(
            "  {mark} {} {} {}: {}",
            change.as_str(),
            kind.as_str(),
            shown(object_type),
            members.len()
        );
        let limit = per_group.unwrap_or(usize::MAX);
        for change in members.iter().take(limit) {
            print_change(store, &set.run.tenant, change).await;
        }
        if members.len() > limit {
            println!("      ... and {} more", members.len() - limit);
        }
    }
    let listed = set.changes.len() as u64;
    if set.total > listed {
        println!("  ... {} more (use --limit or --json)", set.total - listed);
    }
    if set.total == 0 {
        println!("  no changes");
    }
}

/// The name to show for an object: its display name, name, username or email.
async fn label(store: &dyn Store, tenant: &str, key: &str) -> Option<String> {
    let stored = store.object(tenant, key).await.ok().flatten()?;
    ["displayName", "name", "username", "email"]
        .iter()
        .find_map(|name| stored.object.properties.get(*name)?.as_str().map(shown))
}

/// `label (key)`, or the key alone.
pub async fn named(store: &dyn Store, tenant: &str, key: &str) -> String {
    match label(store, tenant, key).await {
        Some(label) => format!("{} ({})", label, shown(key)),
        None => shown(key),
    }
}

async fn print_change(store: &dyn Store, tenant: &str, change: &Change) {
    match (&change.from_key, &change.to_key) {
        (Some(from), Some(to)) => println!(
            "      {} -> {}",
            named(store, tenant, from).await,
            named(store, tenant, to).await
        ),
        _ => println!("      {}", named(store, tenant, &change.key).await),
    }
    for PropertyChange { name, old, new } in &change.properties {
        let value = |v: &Option<serde_json::Value>| {
            v.as_ref()
                .map_or_else(|| "(none)".to_owned(), |v| shown(&v.to_string()))
        };
        println!(
            "          {}: {} -> {}",
            shown(name),
            value(old),
            value(new)
        );
    }
}

/// Writes the tenant's current graph in the SDK layout under `output`.
pub async fn export(tenant: &str, output: &Path, store_url: &str) -> Result<u8, Failure> {
    let store = open_existing(store_url).await?;
    let mut stream = store
        .stream_objects(tenant, false)
        .await
        .map_err(store_failure)?;
    let mut sink = FileSink::create(output)
        .map_err(|e| Failure::run(format!("cannot write {}: {e}", output.display())))?;
    let (mut entities, mut relationships) = (0u64, 0u64);
    while let Some(batch) = stream.recv().await {
        for stored in batch.map_err(store_failure)? {
            let kind = match stored.object.kind {
                ObjectKind::Entity => {
                    entities += 1;
                    integration_host::output::ObjectKind::Entity
                }
                ObjectKind::Relationship => {
                    relationships += 1;
                    integration_host::output::ObjectKind::Relationship
                }
            };
            let step = stored
                .object
                .step
                .clone()
                .filter(|s| safe_folder_name(s))
                .unwrap_or_else(|| "export".into());
            let json = serde_json::value::to_raw_value(&stored.to_json(true))
                .map_err(|e| Failure::run(format!("cannot serialize: {e}")))?;
            sink.write(&step, kind, &stored.object.object_type, json)
                .map_err(|e| Failure::run(format!("cannot write {}: {e}", output.display())))?;
        }
    }
    sink.flush()
        .map_err(|e| Failure::run(format!("cannot write {}: {e}", output.display())))?;
    println!(
        "exported {entities} entities and {relationships} relationships of {tenant} to {}/graph",
        output.display()
    );
    Ok(0)
}

/// A step id as a folder name: the store's text came from a plugin once.
fn safe_folder_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && !name.starts_with(['-', '_'])
}

pub async fn trigger(tenant: &str, store: &StoreArgs, wait: bool) -> Result<u8, Failure> {
    let store = store.open_existing().await?;
    let before = store.tenant(tenant).await.map_err(store_failure)?;
    store.request_trigger(tenant).await.map_err(store_failure)?;
    println!(
        "run of {tenant} requested: a running `serve` on {} starts it within a second",
        store.location()
    );
    if !wait {
        return Ok(0);
    }
    let last_before = before.last_run.map(|r| r.id);
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let state = store.tenant(tenant).await.map_err(store_failure)?;
        if let Some(run) = state.last_run
            && Some(run.id) != last_before
            && run.status != graph_store::RunStatus::Running
        {
            println!("{}", run_line(&run));
            return Ok(match run.status {
                graph_store::RunStatus::Success => 0,
                _ => 1,
            });
        }
    }
}

pub async fn query(
    tenant: &str,
    store: &StoreArgs,
    text: &str,
    json: bool,
    include_deleted: bool,
    limit: Option<usize>,
) -> Result<u8, Failure> {
    // A bad query is refused before the store is touched.
    let query = j1ql::parse(text).map_err(|e| Failure::usage(e.render(text)))?;
    let store = store.open_existing().await?;
    store.tenant(tenant).await.map_err(store_failure)?;
    let graph = integration_host::monitor::rules::load_graph(&*store, tenant)
        .await
        .map_err(store_failure)?;
    let options = j1ql::ExecOptions {
        limit,
        include_deleted,
        now_ms: graph_store::now_ms(),
    };
    let result = query
        .execute(&graph, &options)
        .map_err(|e| Failure::run(e.render(text)))?;
    if json {
        print_json(&result.to_j1_json())?;
        return Ok(0);
    }
    let (headers, rows) = result.to_text_table();
    print_table(&headers, &rows);
    println!("{} result(s)", result.total());
    Ok(0)
}

/// A table with columns as wide as their widest cell (capped), text escaped.
pub fn print_table(headers: &[String], rows: &[Vec<String>]) {
    const MAX_WIDTH: usize = 48;
    let cell = |text: &str| {
        let text = shown(text);
        if text.chars().count() > MAX_WIDTH {
            let cut: String = text.chars().take(MAX_WIDTH - 1).collect();
            format!("{cut}…")
        } else {
            text
        }
    };
    let headers: Vec<String> = headers.iter().map(|h| cell(h)).collect();
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|c| cell(c)).collect())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, c) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
    };
    println!("{}", line(&headers).trim_end());
    for row in &rows {
        println!("{}", line(row).trim_end());
    }
}

pub async fn alerts(tenant: &str, store: &StoreArgs, json: bool, all: bool) -> Result<u8, Failure> {
    let store = store.open_existing().await?;
    let status = (!all).then_some(AlertStatus::Active);
    let alerts = store.alerts(tenant, status).await.map_err(store_failure)?;
    if json {
        print_json(&alerts)?;
        return Ok(0);
    }
    print_alerts(&alerts);
    if alerts.is_empty() {
        println!("no {}alerts for {tenant}", if all { "" } else { "open " });
    }
    Ok(0)
}

/// Alerts as a table, then each one's first results.
pub fn print_alerts(alerts: &[AlertRecord]) {
    if alerts.is_empty() {
        return;
    }
    println!(
        "{:>5}  {:<40} {:<9} {:<9} {:<20} {:>7}",
        "alert", "rule", "level", "status", "opened", "results"
    );
    for alert in alerts {
        println!(
            "{:>5}  {:<40} {:<9} {:<9} {:<20} {:>7}",
            alert.id,
            shown(&alert.rule),
            alert.level.as_deref().unwrap_or("-"),
            alert.status.as_str(),
            format_time(alert.opened_at_ms),
            alert.results
        );
        if let Some(description) = &alert.description {
            println!("       {}", shown(description));
        }
        let sample: Vec<String> = alert.result_ids.iter().take(5).map(|k| shown(k)).collect();
        if !sample.is_empty() {
            let more = alert.results.saturating_sub(sample.len() as u64);
            println!(
                "       results: {}{}",
                sample.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            );
        }
    }
}

fn print_json(value: &impl serde::Serialize) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::run(format!("cannot serialize: {e}")))?;
    println!("{text}");
    Ok(())
}
