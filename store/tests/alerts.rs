//! Alert lifecycle as the store keeps it: one alert per rule while its condition holds,
//! resolved when it stops, every evaluation recorded with what it added and removed;
//! on both backends (see `common`).

#[macro_use]
mod common;

use common::TestStore;
use graph_store::*;
use serde_json::json;

store_suite!(
    an_alert_opens_stays_one_alert_and_resolves,
    the_rule_state_is_kept_except_after_an_error,
    deliveries_are_recorded_after_the_evaluation,
);

async fn store(s: TestStore) -> (TestStore, std::sync::Arc<dyn Store>) {
    s.store
        .upsert_tenant(&TenantSettings::new("acme"))
        .await
        .expect("tenant");
    let store = s.store.clone();
    (s, store)
}

fn evaluation(transition: AlertTransition, ids: &[&str], at: i64) -> NewEvaluation {
    NewEvaluation {
        tenant: "acme".into(),
        rule: "no-mfa".into(),
        description: Some("users without MFA".into()),
        run: None,
        evaluated_at_ms: at,
        transition,
        condition_met: active_after(transition),
        alert_level: Some("HIGH".into()),
        partial: false,
        baseline: false,
        result_ids: ids.iter().map(|s| s.to_string()).collect(),
        added: ids.iter().map(|s| s.to_string()).collect(),
        removed: Some(Vec::new()),
        totals: json!({"query0": ids.len()}),
        error: None,
        deliveries: json!([]),
        state: json!({"alertActive": active_after(transition), "resultIds": ids}),
    }
}

/// Whether the rule's alert is active after this transition.
fn active_after(transition: AlertTransition) -> bool {
    matches!(
        transition,
        AlertTransition::Opened | AlertTransition::StillActive
    )
}

async fn an_alert_opens_stays_one_alert_and_resolves(s: TestStore) {
    let (_s, store) = store(s).await;
    let opened = store
        .record_evaluation(evaluation(AlertTransition::Opened, &["u1"], 1))
        .await
        .expect("opened");
    let alert_id = opened.alert_id.expect("an alert was opened");
    let still = store
        .record_evaluation(evaluation(AlertTransition::StillActive, &["u1", "u2"], 2))
        .await
        .expect("still");
    assert_eq!(still.alert_id, Some(alert_id), "the same alert");
    let active = store
        .alerts("acme", Some(AlertStatus::Active))
        .await
        .expect("alerts");
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].results, 2);
    assert_eq!(active[0].result_ids, vec!["u1", "u2"]);
    assert_eq!(active[0].last_evaluated_at_ms, 2);

    let resolved = store
        .record_evaluation(evaluation(AlertTransition::Resolved, &[], 3))
        .await
        .expect("resolved");
    assert_eq!(resolved.alert_id, Some(alert_id));
    assert!(
        store
            .alerts("acme", Some(AlertStatus::Active))
            .await
            .expect("alerts")
            .is_empty()
    );
    let all = store.alerts("acme", None).await.expect("alerts");
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].status, AlertStatus::Resolved);
    assert_eq!(all[0].resolved_at_ms, Some(3));
    assert_eq!(all[0].opened_at_ms, 1);

    // Holding again later is a new alert.
    let again = store
        .record_evaluation(evaluation(AlertTransition::Opened, &["u3"], 4))
        .await
        .expect("again");
    assert_ne!(again.alert_id, Some(alert_id));
    assert_eq!(store.alerts("acme", None).await.expect("alerts").len(), 2);
    assert_eq!(
        store.evaluations("acme", None).await.expect("evals").len(),
        4
    );
}

async fn the_rule_state_is_kept_except_after_an_error(s: TestStore) {
    let (_s, store) = store(s).await;
    assert_eq!(
        store.rule_state("acme", "no-mfa").await.expect("state"),
        None
    );
    store
        .record_evaluation(evaluation(AlertTransition::Opened, &["u1"], 1))
        .await
        .expect("opened");
    let kept = store.rule_state("acme", "no-mfa").await.expect("state");
    let mut failed = evaluation(AlertTransition::Error, &[], 2);
    failed.error = Some("query failed".into());
    failed.state = json!("must not be stored");
    store
        .record_evaluation(failed)
        .await
        .expect("error recorded");
    assert_eq!(
        store.rule_state("acme", "no-mfa").await.expect("state"),
        kept
    );
    assert_eq!(
        store
            .alerts("acme", Some(AlertStatus::Active))
            .await
            .expect("alerts")
            .len(),
        1,
        "an error leaves the alert as it was"
    );
}

async fn deliveries_are_recorded_after_the_evaluation(s: TestStore) {
    let (_s, store) = store(s).await;
    let mut e = evaluation(AlertTransition::Opened, &["u1"], 1);
    e.deliveries = json!([{"endpoint": "http://127.0.0.1:1/hook", "outcome": "pending"}]);
    let record = store.record_evaluation(e).await.expect("recorded");
    store
        .record_deliveries(
            record.id,
            json!([{"endpoint": "http://127.0.0.1:1/hook", "outcome": "failed", "status": 503}]),
        )
        .await
        .expect("deliveries");
    let stored = &store.evaluations("acme", None).await.expect("evals")[0];
    assert_eq!(stored.deliveries[0]["status"], 503);
}
