//! Tenants' query graphs kept between uses. The rules evaluation after a run builds
//! the tenant's graph; the console's queries and graph view then use the same one until
//! the next persisted run, instead of building it again on the first visit (seconds at
//! 10k users). Bounded by the memory the graphs hold: past the budget the least
//! recently used go first, and a graph larger than the whole budget is used once and
//! not kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use graph_store::{RunId, Store, StoreError};
use j1ql::Graph;

/// What a `serve` keeps by default: a few 10k-user tenants.
pub const DEFAULT_BUDGET_BYTES: usize = 768 << 20;

/// The graphs, by tenant, each as of one persisted run.
pub struct GraphCache {
    budget_bytes: usize,
    inner: Mutex<Inner>,
    /// One build at a time per process: a 100k-user graph takes a while and much
    /// memory, and a second request for it should wait for the first.
    loading: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Inner {
    graphs: HashMap<String, Cached>,
    /// Grows with every use; the smallest `used` is the least recently used.
    clock: u64,
    /// Graphs built from the store so far (for tests and logs).
    builds: u64,
}

struct Cached {
    run: Option<RunId>,
    graph: Arc<Graph>,
    bytes: usize,
    used: u64,
}

impl GraphCache {
    pub fn new(budget_bytes: usize) -> GraphCache {
        GraphCache {
            budget_bytes,
            inner: Mutex::new(Inner::default()),
            loading: tokio::sync::Mutex::new(()),
        }
    }

    /// The tenant's graph as of `run`, when kept.
    pub fn get(&self, tenant: &str, run: Option<RunId>) -> Option<Arc<Graph>> {
        let mut inner = self.inner.lock().ok()?;
        inner.clock += 1;
        let clock = inner.clock;
        let cached = inner.graphs.get_mut(tenant).filter(|c| c.run == run)?;
        cached.used = clock;
        Some(cached.graph.clone())
    }

    /// Keeps `graph` as the tenant's graph as of `run` (replacing an older one), then
    /// drops the least recently used others until the graphs fit the budget.
    pub fn insert(&self, tenant: &str, run: Option<RunId>, graph: Arc<Graph>) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        inner.graphs.remove(tenant);
        let bytes = graph.heap_bytes();
        if bytes > self.budget_bytes {
            return;
        }
        while inner.graphs.values().map(|c| c.bytes).sum::<usize>() + bytes > self.budget_bytes {
            let Some(oldest) = inner
                .graphs
                .iter()
                .min_by_key(|(_, c)| c.used)
                .map(|(t, _)| t.clone())
            else {
                break;
            };
            inner.graphs.remove(&oldest);
        }
        inner.clock += 1;
        let used = inner.clock;
        inner.graphs.insert(
            tenant.to_owned(),
            Cached {
                run,
                graph,
                bytes,
                used,
            },
        );
    }

    /// The tenant's graph as of `run` (its newest persisted run): kept, or built from
    /// the store and kept.
    pub async fn get_or_build(
        &self,
        store: &dyn Store,
        tenant: &str,
        run: Option<RunId>,
    ) -> Result<Arc<Graph>, StoreError> {
        if let Some(graph) = self.get(tenant, run) {
            return Ok(graph);
        }
        let _one_at_a_time = self.loading.lock().await;
        if let Some(graph) = self.get(tenant, run) {
            return Ok(graph);
        }
        let graph = Arc::new(super::rules::load_graph(store, tenant).await?);
        if let Ok(mut inner) = self.inner.lock() {
            inner.builds += 1;
        }
        self.insert(tenant, run, graph.clone());
        Ok(graph)
    }

    /// Graphs built from the store so far.
    pub fn builds(&self) -> u64 {
        self.inner.lock().map_or(0, |inner| inner.builds)
    }

    /// Tenants whose graph is kept.
    pub fn kept(&self) -> Vec<String> {
        let mut tenants: Vec<String> = self
            .inner
            .lock()
            .map(|inner| inner.graphs.keys().cloned().collect())
            .unwrap_or_default();
        tenants.sort();
        tenants
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(users: usize) -> Arc<Graph> {
        let mut builder = j1ql::GraphBuilder::new();
        for i in 0..users {
            let mut properties = serde_json::Map::new();
            properties.insert("name".into(), format!("user {i}").into());
            builder.add_entity(j1ql::Entity {
                key: format!("u{i}"),
                entity_type: "jumpcloud_user".into(),
                classes: vec!["User".into()],
                properties,
                deleted: false,
            });
        }
        Arc::new(builder.build())
    }

    #[test]
    fn a_graph_is_kept_per_tenant_and_run() {
        let cache = GraphCache::new(64 << 20);
        cache.insert("acme", Some(1), graph(10));
        assert!(cache.get("acme", Some(1)).is_some());
        assert!(
            cache.get("acme", Some(2)).is_none(),
            "a newer run needs a new graph"
        );
        assert!(cache.get("beta", Some(1)).is_none());
        cache.insert("acme", Some(2), graph(11));
        assert_eq!(
            cache.get("acme", Some(2)).map(|g| g.entity_count()),
            Some(11)
        );
        assert!(
            cache.get("acme", Some(1)).is_none(),
            "the older one is replaced"
        );
    }

    #[test]
    fn past_the_budget_the_least_recently_used_graph_goes() {
        let one = graph(200).heap_bytes();
        // Room for two graphs of this size, not three.
        let cache = GraphCache::new(one * 2 + one / 2);
        cache.insert("a", Some(1), graph(200));
        cache.insert("b", Some(1), graph(200));
        assert!(
            cache.get("a", Some(1)).is_some(),
            "a is now the most recent"
        );
        cache.insert("c", Some(1), graph(200));
        assert_eq!(cache.kept(), vec!["a".to_owned(), "c".to_owned()]);
        // A graph larger than the whole budget is not kept, and evicts nothing.
        cache.insert("huge", Some(1), graph(2_000));
        assert_eq!(cache.kept(), vec!["a".to_owned(), "c".to_owned()]);
    }

    /// After a run, the rules evaluation builds the tenant's graph once; the console's
    /// first query of that run then finds it kept instead of building it again.
    #[tokio::test]
    async fn the_graph_the_rules_evaluated_is_the_one_the_console_then_queries() {
        use graph_store::{NewObject, ObjectKind, RunOutcome, RunStatus, TenantSettings, Trigger};
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("store.db").display());
        let store = graph_store::open(&url).await.expect("store");
        store
            .upsert_tenant(&TenantSettings::new("acme"))
            .await
            .expect("tenant");
        let users: Vec<NewObject> = (0..5)
            .map(|i| NewObject {
                step: Some("fetch-users".into()),
                kind: ObjectKind::Entity,
                key: format!("u{i}"),
                object_type: "jumpcloud_user".into(),
                classes: vec!["User".into()],
                from_key: None,
                to_key: None,
                properties: serde_json::json!({"active": true, "mfaEnabled": i % 2 == 0})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
                raw_data: None,
            })
            .collect();
        let run = store
            .begin_run("acme", Trigger::Manual, graph_store::now_ms())
            .await
            .expect("run");
        let outcome = RunOutcome {
            status: RunStatus::Success,
            finished_at_ms: graph_store::now_ms(),
            partial_types: Default::default(),
            failed_whole: false,
            error: None,
            summary: None,
            fence: None,
        };
        let persisted = store
            .persist_run(run, outcome, Box::new(users.into_iter().map(Ok)))
            .await
            .expect("persist");
        let rules = super::super::rules::load(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../rules/jumpcloud-rules.json"
        )))
        .expect("the shipped rules");
        let graphs = GraphCache::new(64 << 20);
        let transport = super::super::webhook::EgressTransport::for_rules(&rules);
        let evaluations = super::super::rules::evaluate_after_run_kept(
            &*store,
            &graphs,
            &persisted.run,
            &rules,
            &transport,
            &alert_rules::RetryPolicy::default(),
        )
        .await
        .expect("evaluated");
        assert_eq!(evaluations.len(), rules.len());
        assert_eq!(graphs.builds(), 1);
        let graph = graphs
            .get_or_build(&*store, "acme", Some(persisted.run.id))
            .await
            .expect("graph");
        assert_eq!(graphs.builds(), 1, "kept, not built again");
        assert_eq!(graph.entity_count(), 5);
    }
}
