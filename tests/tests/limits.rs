//! Faults and limits beyond the basic failure suite: responses slower than the request
//! timeout, wrong field types, and the sandbox's response-size cap.

use integration_host::steps::{JobStatus, StepStatus};
use integration_tests::{Setup, run, small_spec};
use jumpcloud_simulator::{Fault, FaultRule};
use std::time::Duration;

/// A response slower than `requestTimeoutSeconds` is abandoned and retried; the graph
/// equals the fault-free one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_past_the_request_timeout_is_retried_to_the_same_graph() {
    let spec = small_spec(30, 4, 3);
    let slow = FaultRule::new(Fault::Latency(Duration::from_secs(3)))
        .with_path_prefix("/api/systemusers")
        .with_limit(1);
    let (clean, faulty) = tokio::join!(
        run(Setup::generated(spec.clone())),
        run(Setup::generated(spec)
            .with_faults(vec![slow])
            .with_tenant_extra("requestTimeoutSeconds = 1\n"))
    );
    clean.assert_success();
    faulty.assert_success();
    assert_eq!(clean.graph.keys(), faulty.graph.keys());
    assert_eq!(clean.normalized_graph(), faulty.normalized_graph());
    assert_eq!(
        faulty.step("fetch-users").http_retries,
        1,
        "the slow page was retried once"
    );
}

/// A field of the wrong type fails its step with an invalid-response error naming the
/// endpoint and the field, never a panic and never a silently thinner graph.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_field_type_fails_the_step_naming_endpoint_and_field() {
    let wrong = FaultRule::new(Fault::WrongFieldType).with_path_prefix("/api/systemusers");
    let faulty = run(Setup::generated(small_spec(30, 4, 3)).with_faults(vec![wrong])).await;
    let users = faulty.step("fetch-users");
    assert_eq!(users.status, StepStatus::Failure);
    let error = users.error.as_ref().expect("the step names its error");
    assert_eq!(error.kind, "invalid-response");
    assert!(
        error.message.contains("/api/systemusers"),
        "{}",
        error.message
    );
    assert!(error.message.contains("email"), "{}", error.message);
    assert!(
        faulty
            .summary
            .metadata
            .partial_datasets
            .types
            .contains(&"jumpcloud_user".to_owned())
    );
    // Steps that do not read users are untouched.
    assert_eq!(faulty.step("fetch-groups").status, StepStatus::Success);
    assert_eq!(faulty.summary.run.status, JobStatus::Partial);
}

/// A response larger than the sandbox's `maxResponseKiB` is cut off: the step fails
/// with a transport error about the size, and is not retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_over_the_size_cap_fails_its_step_without_retries() {
    let faulty = run(Setup::generated(small_spec(100, 4, 3))
        .with_tenant_extra("[sandbox]\nmaxResponseKiB = 16\n"))
    .await;
    let users = faulty.step("fetch-users");
    assert_eq!(users.status, StepStatus::Failure, "{:?}", users.error);
    let error = users.error.as_ref().expect("the step names its error");
    assert_eq!(error.kind, "transport", "{}", error.message);
    assert!(error.message.contains("too large"), "{}", error.message);
    assert_eq!(users.http_retries, 0);
    // Small answers (one organization, a few groups) pass the cap.
    assert_eq!(faulty.step("fetch-accounts").status, StepStatus::Success);
    assert_eq!(faulty.step("fetch-groups").status, StepStatus::Success);
}

/// Independent steps run side by side (`maxConcurrentSteps`), and the graph is the same
/// as when they run one after another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_run_side_by_side_to_the_same_graph() {
    let spec = small_spec(250, 6, 3);
    // Slow user pages make the order of arrival at the simulator unambiguous.
    let slow_users = || {
        vec![
            FaultRule::new(Fault::Latency(Duration::from_millis(150)))
                .with_path_prefix("/api/systemusers"),
        ]
    };
    let (one_by_one, side_by_side) = tokio::join!(
        run(Setup::generated(spec.clone())
            .with_faults(slow_users())
            .with_tenant_extra("[sandbox]\nmaxConcurrentSteps = 1\n")),
        run(Setup::generated(spec)
            .with_faults(slow_users())
            .with_tenant_extra("[sandbox]\nmaxConcurrentSteps = 3\n"))
    );
    one_by_one.assert_success();
    side_by_side.assert_success();
    assert_eq!(
        one_by_one.normalized_graph(),
        side_by_side.normalized_graph()
    );

    let arrival = |run: &integration_tests::Run, path: &str, first: bool| {
        let times = run
            .requests()
            .into_iter()
            .filter(|r| r.path == path)
            .map(|r| r.elapsed);
        if first { times.min() } else { times.max() }.expect("requests of that path")
    };
    // One by one: groups are read after the last page of users.
    assert!(
        arrival(&one_by_one, "/api/v2/usergroups", true)
            > arrival(&one_by_one, "/api/systemusers", false)
    );
    // Side by side: groups are read while users are still being read.
    assert!(
        arrival(&side_by_side, "/api/v2/usergroups", true)
            < arrival(&side_by_side, "/api/systemusers", false)
    );
}
