//! What goes wrong between the component and JumpCloud, injected by the simulator:
//! a rejected key, rate limits and server errors (retried until the graph equals the
//! fault-free one), malformed bodies, and a forbidden endpoint (that step fails, the
//! rest of the graph is kept).

use std::collections::BTreeSet;
use std::time::Duration;

use integration_host::steps::{JobStatus, StepStatus};
use integration_tests::{Run, STEP_IDS, Setup, loaded, object_id, run, small_spec};
use jumpcloud_simulator::{Fault, FaultRule, RecordedRequest, RetryAfter, TenantSpec};

/// The tenant of the fault scenarios: one page of everything, a few lists per step.
fn fault_spec() -> TenantSpec {
    small_spec(30, 4, 3)
}

/// Runs `spec` without faults and with `faults`, side by side; the fault-free run
/// must succeed.
async fn clean_and_faulty(spec: TenantSpec, faults: Vec<FaultRule>) -> (Run, Run) {
    let (clean, faulty) = tokio::join!(
        run(Setup::generated(spec.clone())),
        run(Setup::generated(spec).with_faults(faults))
    );
    clean.assert_success();
    (clean, faulty)
}

/// Asserts both runs wrote the same graph: the same `_key`s, and the same objects
/// once the simulators' base URLs are set aside.
fn assert_same_graph(clean: &Run, faulty: &Run) {
    assert!(!clean.graph.entities.is_empty());
    assert_eq!(clean.graph.keys(), faulty.graph.keys(), "the same _keys");
    assert_eq!(clean.normalized_graph(), faulty.normalized_graph());
}

/// The requests answered with `status`.
fn answered(run: &Run, status: u16) -> Vec<RecordedRequest> {
    run.requests()
        .into_iter()
        .filter(|r| r.status == Some(status))
        .collect()
}

/// The steps that must end non-successfully when `failed` fails: itself and every step
/// depending on it, directly or not (from the plugin's own step table).
async fn failed_with_dependents(failed: &str) -> BTreeSet<String> {
    let info = &loaded().await.info;
    let mut closure = BTreeSet::from([failed.to_owned()]);
    loop {
        let before = closure.len();
        for step in &info.steps {
            if step.depends_on.iter().any(|d| closure.contains(d)) {
                closure.insert(step.id.clone());
            }
        }
        if closure.len() == before {
            return closure;
        }
    }
}

/// Asserts `failed` failed with `kind` naming `endpoint`, its dependents finished
/// partial, the others succeeded, and exactly the declared types of the failed and
/// partial steps are listed as partial datasets.
async fn assert_step_failed(run: &Run, failed: &str, kind: &str, endpoint: &str) {
    let not_successful = failed_with_dependents(failed).await;
    assert!(not_successful.len() > 1, "{failed} has dependents");
    let mut partial_types = BTreeSet::new();
    for step in &run.summary.integration_step_results {
        if step.id == failed {
            assert_eq!(step.status, StepStatus::Failure, "{}", step.id);
            let error = step.error.as_ref().expect("the failed step's error");
            assert_eq!(error.kind, kind, "{}: {}", step.id, error.message);
            assert!(
                error.message.contains(endpoint),
                "{}: {:?} does not name {endpoint}",
                step.id,
                error.message
            );
        } else if not_successful.contains(&step.id) {
            assert_eq!(
                step.status,
                StepStatus::PartialSuccessDueToDependencyFailure,
                "{}",
                step.id
            );
        } else {
            assert_eq!(
                step.status,
                StepStatus::Success,
                "{}: {:?}",
                step.id,
                step.error
            );
        }
        if not_successful.contains(&step.id) {
            assert_eq!(step.partial_types, step.declared_types, "{}", step.id);
            partial_types.extend(step.declared_types.iter().cloned());
        } else {
            assert!(step.partial_types.is_empty(), "{}", step.id);
        }
    }
    let listed: BTreeSet<String> = run.summary_json["metadata"]["partialDatasets"]["types"]
        .as_array()
        .expect("metadata.partialDatasets.types")
        .iter()
        .map(|t| t.as_str().expect("a type name").to_owned())
        .collect();
    assert_eq!(listed, partial_types);
    assert_eq!(run.summary.run.status, JobStatus::Partial);
    assert_eq!(run.summary.exit_code(), 1);
}

/// Asserts `faulty` holds every object of `clean` whose type is not partial, and
/// nothing that `clean` does not hold (objects of partial types may be missing).
fn assert_complete_except_partial(clean: &Run, faulty: &Run) {
    let partial: BTreeSet<&str> = faulty
        .summary
        .metadata
        .partial_datasets
        .types
        .iter()
        .map(String::as_str)
        .collect();
    let clean_objects = clean.normalized_graph();
    let faulty_objects = faulty.normalized_graph();
    for (key, object) in &faulty_objects {
        assert_eq!(
            clean_objects.get(key),
            Some(object),
            "{key} differs from the fault-free run"
        );
    }
    let mut kept = 0;
    for (key, object) in &clean_objects {
        let object_type = object["_type"].as_str().expect("a _type");
        if !partial.contains(object_type) {
            assert!(
                faulty_objects.contains_key(key),
                "{key} ({object_type}) is missing"
            );
            kept += 1;
        }
    }
    assert!(kept > 0);
}

/// A wrong API key fails the job at once: an authentication error that mentions the
/// API key (and not the key itself), no step succeeds, nothing is collected, and only
/// the one validating request was made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_api_key_fails_the_job_before_any_step() {
    let wrong_key = "wrong-api-key-1111111111111111111111111";
    let run = run(Setup::generated(fault_spec()).with_tenant_api_key(wrong_key)).await;

    let error = run.summary.run.error.as_ref().expect("the run's error");
    assert_eq!(error.kind, "authentication");
    assert!(
        error.message.contains("API key"),
        "{:?} does not mention the API key",
        error.message
    );
    assert_eq!(run.summary_json["run"]["error"]["kind"], "authentication");
    assert_eq!(run.summary.run.status, JobStatus::Failure);
    assert_eq!(run.summary.exit_code(), 1);
    assert_eq!(run.summary.integration_step_results.len(), STEP_IDS.len());
    for step in &run.summary.integration_step_results {
        assert_eq!(step.status, StepStatus::Failure, "{}", step.id);
        assert_eq!(
            step.error.as_ref().map(|e| e.kind.as_str()),
            Some("authentication"),
            "{}",
            step.id
        );
    }
    assert!(run.graph.entities.is_empty() && run.graph.relationships.is_empty());

    let requests = run.requests();
    assert!(
        (1..=2).contains(&requests.len()),
        "{} requests for a rejected key",
        requests.len()
    );
    for request in &requests {
        assert!(!request.api_key_valid);
        assert_eq!(request.status, Some(401));
    }
    integration_tests::assert_no_file_contains(run.output.path(), wrong_key);
}

/// One 429 without `Retry-After` on the users list is retried: the graph equals the
/// fault-free one and the retry is counted in the step and the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_without_retry_after_is_retried_to_the_same_graph() {
    let fault = FaultRule::new(Fault::TooManyRequests { retry_after: None })
        .with_path_prefix("/api/systemusers")
        .with_limit(1);
    let (clean, faulty) = clean_and_faulty(fault_spec(), vec![fault]).await;
    faulty.assert_success();
    assert_eq!(answered(&faulty, 429).len(), 1);
    assert_same_graph(&clean, &faulty);
    assert_eq!(faulty.step("fetch-users").http_retries, 1);
    assert_eq!(faulty.summary.run.http_retries, 1);
    assert_eq!(faulty.summary_json["run"]["httpRetries"], 1);
    assert_eq!(clean.summary.run.http_retries, 0);
}

/// One 429 with `Retry-After: 1` is retried no sooner than a second later, and the
/// graph equals the fault-free one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_retry_after_is_retried_after_the_asked_delay() {
    let fault = FaultRule::new(Fault::TooManyRequests {
        retry_after: Some(RetryAfter::Seconds(1)),
    })
    .with_path_prefix("/api/systemusers")
    .with_limit(1);
    let (clean, faulty) = clean_and_faulty(fault_spec(), vec![fault]).await;
    faulty.assert_success();
    assert_same_graph(&clean, &faulty);
    assert!(faulty.summary.run.http_retries >= 1);
    assert_eq!(faulty.step("fetch-users").http_retries, 1);

    let requests = faulty.requests();
    let limited = requests
        .iter()
        .position(|r| r.status == Some(429))
        .expect("the 429 was sent");
    let retry = requests[limited + 1..]
        .iter()
        .find(|r| r.path == requests[limited].path && r.query == requests[limited].query)
        .expect("the limited request was retried");
    let waited = retry.elapsed.saturating_sub(requests[limited].elapsed);
    assert!(
        waited >= Duration::from_millis(950),
        "retried after {waited:?} despite Retry-After: 1"
    );
}

/// A 503 on every 7th request and a 429 on every 5th, five in all: every one is
/// retried, the graph equals the fault-free one, and each faulted answer is one counted
/// retry. Five faults, against six attempts per request: concurrent requests retried
/// with jitter can land one request on fault after fault, and with no cap a run would
/// now and then fail a step honestly (out of attempts), which is another test's story.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_503s_and_429s_are_retried_to_the_same_graph() {
    let faults = vec![
        FaultRule::new(Fault::ServerError(503))
            .with_every(7)
            .with_limit(2),
        FaultRule::new(Fault::TooManyRequests { retry_after: None })
            .with_every(5)
            .with_limit(3),
    ];
    let (clean, faulty) = clean_and_faulty(fault_spec(), faults).await;
    faulty.assert_success();
    assert_same_graph(&clean, &faulty);
    let (unavailable, limited) = (answered(&faulty, 503).len(), answered(&faulty, 429).len());
    assert_eq!((unavailable, limited), (2, 3), "every capped fault fired");
    // The validating request is the first and never faulted, so every fault hit a step.
    assert_eq!(
        faulty.summary.run.http_retries as usize,
        unavailable + limited
    );
}

/// A body cut off mid-way (once) is retried, and the graph equals the fault-free one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_body_is_retried_to_the_same_graph() {
    let fault = FaultRule::new(Fault::TruncatedBody)
        .with_path_prefix("/api/systemusers")
        .with_limit(1);
    let (clean, faulty) = clean_and_faulty(fault_spec(), vec![fault]).await;
    let truncated = faulty
        .requests()
        .iter()
        .filter(|r| r.faults.contains(&Fault::TruncatedBody))
        .count();
    assert_eq!(truncated, 1, "the fault fired");
    faulty.assert_success();
    assert_same_graph(&clean, &faulty);
    assert_eq!(faulty.step("fetch-users").http_retries, 1);
}

/// An HTML page with status 200 on the user-group endpoints fails fetch-groups with an
/// invalid-response error naming the endpoint; its types are partial, its dependents
/// partial, and what the other steps collected is all there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_html_page_fails_fetch_groups_and_keeps_the_rest() {
    let fault = FaultRule::new(Fault::HtmlBody).with_path_prefix("/api/v2/usergroups");
    let (clean, faulty) = clean_and_faulty(fault_spec(), vec![fault]).await;
    assert_step_failed(
        &faulty,
        "fetch-groups",
        "invalid-response",
        "/api/v2/usergroups",
    )
    .await;
    assert!(faulty.graph.entity_keys("jumpcloud_group").is_empty());
    let users: BTreeSet<String> = faulty
        .org()
        .users()
        .map(|u| object_id(&u).to_owned())
        .collect();
    assert_eq!(faulty.graph.entity_keys("jumpcloud_user"), users);
    assert_complete_except_partial(&clean, &faulty);
}

/// A v1 envelope swapped for a bare array on `/api/applications` fails
/// fetch-applications with an invalid-response error naming the endpoint; its types
/// are partial, its dependents partial, and users, groups and members are complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_envelope_fails_fetch_applications_and_keeps_the_rest() {
    let fault = FaultRule::new(Fault::WrongEnvelope).with_path_prefix("/api/applications");
    let (clean, faulty) = clean_and_faulty(fault_spec(), vec![fault]).await;
    assert_step_failed(
        &faulty,
        "fetch-applications",
        "invalid-response",
        "/api/applications",
    )
    .await;
    assert!(faulty.graph.entity_keys("jumpcloud_application").is_empty());
    let users: BTreeSet<String> = faulty
        .org()
        .users()
        .map(|u| object_id(&u).to_owned())
        .collect();
    assert_eq!(faulty.graph.entity_keys("jumpcloud_user"), users);
    assert_complete_except_partial(&clean, &faulty);
}

/// A 403 on `/api/applications` fails fetch-applications with an authorization error
/// naming the endpoint; the rest of the graph is complete and the run exits 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_endpoint_fails_its_step_and_keeps_the_rest() {
    let fault = FaultRule::new(Fault::Forbidden).with_path_prefix("/api/applications");
    let (clean, faulty) = clean_and_faulty(fault_spec(), vec![fault]).await;
    assert_step_failed(
        &faulty,
        "fetch-applications",
        "authorization",
        "/api/applications",
    )
    .await;
    assert_eq!(faulty.summary.exit_code(), 1);
    assert_eq!(answered(&faulty, 403).len(), 1, "a 403 is not retried");
    assert_complete_except_partial(&clean, &faulty);
}

/// A connection dropped without an answer (once) is retried, and the graph equals the
/// fault-free one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_retried_to_the_same_graph() {
    let fault = FaultRule::new(Fault::DropConnection)
        .with_path_prefix("/api/v2/usergroups")
        .with_limit(1);
    let (clean, faulty) = clean_and_faulty(fault_spec(), vec![fault]).await;
    let dropped = faulty
        .requests()
        .iter()
        .filter(|r| r.status.is_none())
        .count();
    assert_eq!(dropped, 1, "the fault fired");
    faulty.assert_success();
    assert_same_graph(&clean, &faulty);
    assert_eq!(faulty.step("fetch-groups").http_retries, 1);
}
