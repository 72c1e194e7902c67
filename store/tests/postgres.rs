//! What only the shared PostgreSQL store has to get right: many processes opening (and
//! migrating) it at once, and the database going away in the middle of a persist.
//! Skipped, with a message, when `GRAPH_STORE_TEST_POSTGRES` is not set.

#[macro_use]
mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use graph_store::postgres::{PoolSettings, PostgresStore};
use graph_store::*;
use serde_json::json;
use sqlx::Connection;

fn user(key: &str) -> NewObject {
    NewObject {
        step: Some("fetch-users".into()),
        kind: ObjectKind::Entity,
        key: key.into(),
        object_type: "jumpcloud_user".into(),
        classes: vec!["User".into()],
        from_key: None,
        to_key: None,
        properties: json!({"active": true})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        raw_data: None,
    }
}

fn success() -> RunOutcome {
    RunOutcome {
        status: RunStatus::Success,
        finished_at_ms: now_ms(),
        partial_types: Default::default(),
        failed_whole: false,
        error: None,
        summary: None,
        fence: None,
    }
}

async fn keys(store: &dyn Store) -> BTreeSet<String> {
    store
        .objects("acme", false)
        .await
        .expect("objects")
        .into_iter()
        .map(|o| o.object.key)
        .collect()
}

#[tokio::test]
async fn workers_that_start_together_migrate_the_schema_once() {
    let Some(server) =
        common::postgres_server("workers_that_start_together_migrate_the_schema_once")
    else {
        return;
    };
    let url = common::fresh_database(&server).await;
    let opens = (0..6).map(|_| {
        let url = url.clone();
        tokio::spawn(async move { open(&url).await.map(|_| ()) })
    });
    for opened in futures_util::future::join_all(opens).await {
        opened
            .expect("join")
            .expect("every process opens the store");
    }
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .expect("versions");
    // Every migration once, in order, none missing.
    assert!(versions.len() >= 4, "{versions:?}");
    assert_eq!(versions, (1..=versions.len() as i64).collect::<Vec<_>>());
}

#[tokio::test]
async fn the_database_going_away_mid_persist_writes_nothing_and_the_run_can_be_retried() {
    let Some(server) = common::postgres_server(
        "the_database_going_away_mid_persist_writes_nothing_and_the_run_can_be_retried",
    ) else {
        return;
    };
    let url = common::fresh_database(&server).await;
    let relay = common::Relay::start(common::host_port(&url)).await;
    let settings = PoolSettings {
        max_connections: 4,
        acquire_timeout: Duration::from_secs(2),
    };
    let store = PostgresStore::open_with(&common::via_port(&url, relay.port), settings)
        .await
        .expect("open through the relay");
    store
        .upsert_tenant(&TenantSettings::new("acme"))
        .await
        .expect("tenant");
    let first = store
        .begin_run("acme", Trigger::Schedule, now_ms())
        .await
        .expect("run");
    let objects = vec![user("u1"), user("u2")];
    store
        .persist_run(first, success(), Box::new(objects.into_iter().map(Ok)))
        .await
        .expect("baseline");

    // The second run loses the database after staging its first objects.
    let second = store
        .begin_run("acme", Trigger::Schedule, now_ms())
        .await
        .expect("run");
    let (reached_tx, reached_rx) = std::sync::mpsc::channel();
    let (open_tx, open_rx) = std::sync::mpsc::channel::<()>();
    let many: Vec<NewObject> = (0..5000).map(|i| user(&format!("n{i:05}"))).collect();
    let mut handed = 0;
    let source = many.into_iter().map(move |object| {
        if handed == 2500 {
            let _ = reached_tx.send(());
            let _ = open_rx.recv();
        }
        handed += 1;
        Ok(object)
    });
    let persisting = {
        let store = std::sync::Arc::new(store);
        let for_task = store.clone();
        let task = tokio::spawn(async move {
            for_task
                .persist_run(second, success(), Box::new(source))
                .await
        });
        (store, task)
    };
    let (store, task) = persisting;
    tokio::task::spawn_blocking(move || reached_rx.recv_timeout(Duration::from_secs(30)))
        .await
        .expect("join")
        .expect("the persist got halfway");
    relay.cut();
    open_tx.send(()).expect("let the persist go on");
    let failed = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the persist gives up in time")
        .expect("join");
    assert!(
        matches!(failed, Err(StoreError::Unavailable(_))),
        "{failed:?}"
    );
    // While it is gone, every call fails the same clear way, within the acquire timeout.
    let started = std::time::Instant::now();
    let down = store.tenant("acme").await;
    assert!(matches!(down, Err(StoreError::Unavailable(_))), "{down:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        down.unwrap_err()
            .to_string()
            .starts_with("store unavailable: ")
    );

    relay.restore();
    let direct = open(&url).await.expect("open directly");
    assert_eq!(
        keys(direct.as_ref()).await,
        BTreeSet::from(["u1".to_owned(), "u2".to_owned()]),
        "the previous graph, whole"
    );
    assert_eq!(
        direct.run("acme", second).await.expect("run").status,
        RunStatus::Running,
        "the interrupted run was not ended half way"
    );
    // The same run, persisted again once the database is back.
    let report = store
        .persist_run(
            second,
            success(),
            Box::new(vec![user("u1")].into_iter().map(Ok)),
        )
        .await
        .expect("the retry commits");
    assert_eq!(report.changes.entities.deleted, 1);
    assert_eq!(
        keys(direct.as_ref()).await,
        BTreeSet::from(["u1".to_owned()])
    );
}
