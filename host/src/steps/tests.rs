//! Unit tests of step ordering, configuration resolution and the job summary.

use super::*;

use std::cell::RefCell;

use crate::bindings::{
    ApiError, ConfigError, ConfigField, DeclaredType, EndpointError, GraphError,
};

// ---------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------

fn step(id: &str, depends_on: &[&str]) -> StepInfo {
    StepInfo {
        id: id.to_owned(),
        name: format!("Step {id}"),
        depends_on: depends_on.iter().map(|d| (*d).to_owned()).collect(),
        declared_types: vec![DeclaredType {
            type_: format!("{id}_type").replace('-', "_"),
            class: "Thing".to_owned(),
            kind: ObjectKind::Entity,
        }],
    }
}

fn ids(steps: &[StepInfo], order: &[usize]) -> Vec<String> {
    order.iter().map(|&i| steps[i].id.clone()).collect()
}

fn field(name: &str) -> ConfigField {
    ConfigField {
        name: name.to_owned(),
        description: format!("The {name}."),
        secret: false,
        required: false,
        default_value: None,
        env_var: None,
    }
}

/// The shape of the JumpCloud plugin's configuration.
fn plugin_info() -> PluginInfo {
    PluginInfo {
        id: "jumpcloud".to_owned(),
        name: "JumpCloud".to_owned(),
        version: "0.1.0".to_owned(),
        config_fields: vec![
            ConfigField {
                secret: true,
                required: true,
                env_var: Some("JUMPCLOUD_API_KEY".to_owned()),
                ..field("apiKey")
            },
            ConfigField {
                default_value: Some("https://console.jumpcloud.com".to_owned()),
                ..field("baseUrl")
            },
            field("orgId"),
        ],
        steps: vec![step("fetch-accounts", &[])],
        default_egress_hosts: vec!["console.jumpcloud.com".to_owned()],
    }
}

fn given(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn entries(config: &PluginConfig) -> Vec<(String, String)> {
    config
        .entries
        .iter()
        .map(|e| (e.name.clone(), e.value.clone()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const KEY: &str = "jca_0123456789abcdef";

// ---------------------------------------------------------------------------------
// step_order
// ---------------------------------------------------------------------------------

#[test]
fn independent_steps_keep_declaration_order() {
    let steps = vec![step("c", &[]), step("a", &[]), step("b", &[])];
    assert_eq!(step_order(&steps).unwrap(), vec![0, 1, 2]);
    assert_eq!(step_order(&[]).unwrap(), Vec::<usize>::new());
}

#[test]
fn dependencies_run_first() {
    let steps = vec![
        step("report", &["users", "accounts"]),
        step("accounts", &[]),
        step("users", &["accounts"]),
        step("extra", &[]),
    ];
    let order = step_order(&steps).unwrap();
    assert_eq!(
        ids(&steps, &order),
        vec!["accounts", "users", "report", "extra"]
    );
}

#[test]
fn the_jumpcloud_step_table_orders_dependencies_first() {
    let steps = vec![
        step("fetch-accounts", &[]),
        step("fetch-users", &["fetch-accounts"]),
        step("fetch-groups", &["fetch-accounts"]),
        step("fetch-group-members", &["fetch-groups", "fetch-users"]),
        step("fetch-applications", &["fetch-accounts"]),
        step(
            "fetch-application-assignments",
            &["fetch-applications", "fetch-users", "fetch-groups"],
        ),
    ];
    let order = step_order(&steps).unwrap();
    // Already in dependency order: declaration order is kept.
    assert_eq!(order, vec![0, 1, 2, 3, 4, 5]);

    // Declared backwards, each step still follows all of its dependencies.
    let reversed: Vec<StepInfo> = steps.into_iter().rev().collect();
    let order = step_order(&reversed).unwrap();
    assert_eq!(order.len(), reversed.len());
    let position = |id: &str| {
        order
            .iter()
            .position(|&i| reversed[i].id == id)
            .unwrap_or_else(|| panic!("{id} not ordered"))
    };
    for s in &reversed {
        for dep in &s.depends_on {
            assert!(position(dep) < position(&s.id), "{dep} before {}", s.id);
        }
    }
    assert_eq!(reversed[order[0]].id, "fetch-accounts");
}

#[test]
fn unknown_dependency_is_rejected_naming_both_steps() {
    let steps = vec![step("a", &[]), step("b", &["a", "fetch-nothing"])];
    let error = step_order(&steps).unwrap_err();
    assert!(error.contains("step b"), "{error}");
    assert!(error.contains("fetch-nothing"), "{error}");
}

#[test]
fn cycles_are_rejected() {
    let two = vec![step("a", &["b"]), step("b", &["a"]), step("c", &[])];
    assert!(step_order(&two).unwrap_err().contains("cycle"));

    let longer = vec![
        step("root", &[]),
        step("x", &["root", "z"]),
        step("y", &["x"]),
        step("z", &["y"]),
    ];
    assert!(step_order(&longer).unwrap_err().contains("cycle"));

    let itself = vec![step("a", &["a"])];
    assert!(step_order(&itself).unwrap_err().contains("cycle"));
}

#[test]
fn duplicate_step_ids_are_rejected() {
    let steps = vec![step("a", &[]), step("b", &[]), step("a", &["b"])];
    let error = step_order(&steps).unwrap_err();
    assert!(error.contains("share an id"), "{error}");
}

// ---------------------------------------------------------------------------------
// PluginConfig::resolve
// ---------------------------------------------------------------------------------

#[test]
fn defaults_are_applied_and_absent_optional_fields_left_out() {
    let config = PluginConfig::resolve(&plugin_info(), &given(&[("apiKey", KEY)]), no_env).unwrap();
    assert_eq!(
        entries(&config),
        pairs(&[
            ("apiKey", KEY),
            ("baseUrl", "https://console.jumpcloud.com")
        ])
    );
    assert_eq!(config.secrets, vec![KEY.to_owned()]);
}

#[test]
fn given_values_win_over_defaults_and_keep_declaration_order() {
    let config = PluginConfig::resolve(
        &plugin_info(),
        &given(&[
            ("orgId", "60259a2ad81e1a474d4e7c83"),
            ("baseUrl", "https://console.eu.jumpcloud.com"),
            ("apiKey", KEY),
        ]),
        |_: &str| Some("from-the-environment".to_owned()),
    )
    .unwrap();
    assert_eq!(
        entries(&config),
        pairs(&[
            ("apiKey", KEY),
            ("baseUrl", "https://console.eu.jumpcloud.com"),
            ("orgId", "60259a2ad81e1a474d4e7c83"),
        ])
    );
}

#[test]
fn environment_variable_used_when_the_field_is_missing() {
    let asked = RefCell::new(Vec::new());
    let env = |name: &str| {
        asked.borrow_mut().push(name.to_owned());
        (name == "JUMPCLOUD_API_KEY").then(|| "jca_from_env_value".to_owned())
    };
    let config = PluginConfig::resolve(&plugin_info(), &given(&[]), env).unwrap();
    assert_eq!(
        entries(&config)[0],
        ("apiKey".to_owned(), "jca_from_env_value".to_owned())
    );
    assert_eq!(config.secrets, vec!["jca_from_env_value".to_owned()]);
    // Only the declared variable is consulted.
    assert_eq!(*asked.borrow(), vec!["JUMPCLOUD_API_KEY".to_owned()]);
}

#[test]
fn empty_or_blank_values_count_as_missing() {
    let env = |_: &str| Some("jca_from_env_value".to_owned());
    for blank in ["", "   "] {
        let config = PluginConfig::resolve(
            &plugin_info(),
            &given(&[("apiKey", blank), ("baseUrl", blank), ("orgId", blank)]),
            env,
        )
        .unwrap();
        assert_eq!(
            entries(&config),
            pairs(&[
                ("apiKey", "jca_from_env_value"),
                ("baseUrl", "https://console.jumpcloud.com"),
            ]),
            "{blank:?}"
        );
    }
    // An empty environment variable does not satisfy a required field either.
    let error = PluginConfig::resolve(&plugin_info(), &given(&[("apiKey", "")]), |_: &str| {
        Some(String::new())
    })
    .unwrap_err();
    assert_eq!(error.field, "integration.apiKey");
}

#[test]
fn unknown_field_is_named_with_its_prefix() {
    let error = PluginConfig::resolve(
        &plugin_info(),
        &given(&[("apiKey", KEY), ("apikey", KEY)]),
        no_env,
    )
    .unwrap_err();
    assert_eq!(error.field, "integration.apikey");
    assert!(error.reason.contains("unknown field"), "{}", error.reason);
    assert!(
        error.reason.contains("apiKey, baseUrl, orgId"),
        "{}",
        error.reason
    );
    assert!(!error.to_string().contains(KEY), "the value is not echoed");
}

#[test]
fn missing_required_field_names_it_and_its_environment_variable() {
    let error = PluginConfig::resolve(&plugin_info(), &given(&[]), no_env).unwrap_err();
    assert_eq!(error.field, "integration.apiKey");
    assert!(error.reason.contains("required"), "{}", error.reason);
    assert!(
        error.reason.contains("JUMPCLOUD_API_KEY"),
        "{}",
        error.reason
    );
    assert_eq!(
        error.to_string(),
        format!("integration.apiKey: {}", error.reason)
    );

    // Without an environment variable there is nothing to hint at.
    let mut info = plugin_info();
    info.config_fields[0].env_var = None;
    let error =
        PluginConfig::resolve(&info, &given(&[]), |_: &str| Some(KEY.to_owned())).unwrap_err();
    assert_eq!(error.field, "integration.apiKey");
    assert_eq!(error.reason, "required");
}

#[test]
fn every_secret_field_value_is_collected_and_kept_out_of_debug() {
    let mut info = plugin_info();
    info.config_fields.push(ConfigField {
        secret: true,
        default_value: Some("default-signing-secret".to_owned()),
        ..field("signingSecret")
    });
    let config = PluginConfig::resolve(
        &info,
        &given(&[("apiKey", KEY), ("orgId", "org000000000001")]),
        no_env,
    )
    .unwrap();
    assert_eq!(
        config.secrets,
        vec![KEY.to_owned(), "default-signing-secret".to_owned()]
    );
    let debug = format!("{config:?}");
    assert!(!debug.contains(KEY), "{debug}");
    assert!(!debug.contains("default-signing-secret"), "{debug}");
    assert!(
        debug.contains("org000000000001"),
        "non-secret values stay: {debug}"
    );
    assert!(debug.contains("[REDACTED]"), "{debug}");
}

#[test]
fn a_secret_given_with_surrounding_whitespace_is_redacted_as_the_plugin_uses_it() {
    // The plugin trims its values, so the key it sends (and could echo) is the trimmed
    // one: that is the one to keep out of logs.
    let config = PluginConfig::resolve(
        &plugin_info(),
        &given(&[("apiKey", &format!("  {KEY}\n"))]),
        no_env,
    )
    .unwrap();
    let redactor = Redactor::new(config.secrets.clone());
    assert_eq!(
        redactor.scrub(&format!("x-api-key: {KEY}")),
        "x-api-key: [REDACTED]"
    );
    assert!(!format!("{config:?}").contains(KEY));
}

// ---------------------------------------------------------------------------------
// url_hosts
// ---------------------------------------------------------------------------------

#[test]
fn url_hosts_lists_the_authority_of_http_urls_only() {
    let config = PluginConfig {
        entries: [
            ("apiKey", KEY),
            ("baseUrl", "https://console.eu.jumpcloud.com"),
            ("mirror", "http://127.0.0.1:8080/api/v2?x=1"),
            ("padded", "  https://Padded.Example.com/  "),
            ("files", "ftp://files.example.com"),
            ("plain", "console.jumpcloud.com"),
            ("hostPort", "localhost:9000"),
            ("orgId", "60259a2ad81e1a474d4e7c83"),
            ("empty", ""),
        ]
        .iter()
        .map(|(name, value)| ConfigEntry {
            name: (*name).to_owned(),
            value: (*value).to_owned(),
        })
        .collect(),
        secrets: vec![KEY.to_owned()],
    };
    assert_eq!(
        config.url_hosts(),
        vec![
            "console.eu.jumpcloud.com",
            "127.0.0.1:8080",
            "Padded.Example.com"
        ]
    );
}

// ---------------------------------------------------------------------------------
// describe_error and reports
// ---------------------------------------------------------------------------------

fn endpoint_error(message: &str) -> EndpointError {
    EndpointError {
        endpoint: "/api/systemusers".to_owned(),
        message: message.to_owned(),
    }
}

#[test]
fn describe_error_gives_each_case_its_kind_and_a_sentence() {
    let cases: Vec<(IntegrationError, &str, Vec<&str>)> = vec![
        (
            IntegrationError::InvalidConfig(ConfigError {
                field: "baseUrl".to_owned(),
                reason: "must use http or https".to_owned(),
            }),
            "invalid-config",
            vec!["integration.baseUrl: must use http or https"],
        ),
        (
            IntegrationError::Authentication("JumpCloud rejected apiKey".to_owned()),
            "authentication",
            vec!["JumpCloud rejected apiKey"],
        ),
        (
            IntegrationError::Authorization(endpoint_error("HTTP 403: Forbidden")),
            "authorization",
            vec!["/api/systemusers", "HTTP 403: Forbidden", "not authorized"],
        ),
        (
            IntegrationError::ProviderApi(ApiError {
                status: 404,
                endpoint: "/api/v2/usergroups/g1/members".to_owned(),
                message: "Not Found".to_owned(),
            }),
            "provider-api",
            vec!["/api/v2/usergroups/g1/members", "HTTP 404", "Not Found"],
        ),
        (
            IntegrationError::RateLimited(endpoint_error("still HTTP 429 after 6 attempts")),
            "rate-limited",
            vec!["/api/systemusers", "after 6 attempts"],
        ),
        (
            IntegrationError::EgressDenied("evil.example.com:443".to_owned()),
            "egress-denied",
            vec!["evil.example.com:443", "allowlist"],
        ),
        (
            IntegrationError::Transport(endpoint_error("connection reset")),
            "transport",
            vec!["/api/systemusers", "connection reset"],
        ),
        (
            IntegrationError::InvalidResponse(endpoint_error("expected an array")),
            "invalid-response",
            vec!["/api/systemusers", "expected an array"],
        ),
        (
            IntegrationError::Graph(GraphError::DuplicateKey("user-000001".to_owned())),
            "graph",
            vec!["duplicate _key user-000001"],
        ),
        (
            IntegrationError::Graph(GraphError::InvalidObject(
                "user-1: _key must have at least 10 characters".to_owned(),
            )),
            "graph",
            vec!["invalid graph object", "user-1: _key must have"],
        ),
        (
            IntegrationError::Internal("index out of bounds".to_owned()),
            "internal",
            vec!["index out of bounds"],
        ),
    ];
    for (error, kind, fragments) in cases {
        let (got_kind, message) = describe_error(&error);
        assert_eq!(got_kind, kind, "{error:?}");
        for fragment in fragments {
            assert!(
                message.contains(fragment),
                "{kind}: {message:?} lacks {fragment:?}"
            );
        }
    }
}

#[test]
fn error_report_from_a_plugin_error_removes_secrets() {
    let redactor = Redactor::new(vec![KEY.to_owned()]);
    let error = IntegrationError::ProviderApi(ApiError {
        status: 400,
        endpoint: "/api/systemusers".to_owned(),
        message: format!("bad key {KEY} in header"),
    });
    let report = ErrorReport::from_plugin(&error, &redactor);
    assert_eq!(report.kind, "provider-api");
    assert!(!report.message.contains(KEY), "{}", report.message);
    assert!(
        report.message.contains("bad key [REDACTED] in header"),
        "{}",
        report.message
    );
}

#[test]
fn field_error_displays_field_and_reason() {
    let error = FieldError {
        field: "integration.apiKey".to_owned(),
        reason: "required".to_owned(),
    };
    assert_eq!(error.to_string(), "integration.apiKey: required");
    assert_eq!(
        JobError::Config(error).to_string(),
        "integration.apiKey: required"
    );
    assert_eq!(
        JobError::BadPlugin("the step dependencies form a cycle".to_owned()).to_string(),
        "the plugin's steps are inconsistent: the step dependencies form a cycle"
    );
}

fn summary(status: JobStatus) -> Summary {
    Summary {
        integration_step_results: Vec::new(),
        metadata: SummaryMetadata {
            partial_datasets: PartialDatasets { types: Vec::new() },
        },
        run: RunReport {
            tenant: "tenant-a".to_owned(),
            plugin: "jumpcloud".to_owned(),
            plugin_version: "0.1.0".to_owned(),
            status,
            started_at_ms: 0,
            duration_ms: 0,
            entities: 0,
            relationships: 0,
            dropped_relationships: 0,
            http_requests: 0,
            http_retries: 0,
            egress_denied: 0,
            bytes_received: 0,
            guest_peak_memory_bytes: 0,
            log_lines_dropped: 0,
            spent: Default::default(),
            error: None,
        },
    }
}

#[test]
fn only_a_fully_successful_job_exits_zero() {
    assert_eq!(summary(JobStatus::Success).exit_code(), 0);
    assert_eq!(summary(JobStatus::Partial).exit_code(), 1);
    assert_eq!(summary(JobStatus::Failure).exit_code(), 1);
}

#[test]
fn summary_serializes_with_the_j1_field_names() {
    let mut summary = summary(JobStatus::Partial);
    summary.integration_step_results.push(StepResult {
        id: "fetch-users".to_owned(),
        name: "Fetch users".to_owned(),
        declared_types: vec!["jumpcloud_user".to_owned()],
        partial_types: vec!["jumpcloud_user".to_owned()],
        encountered_types: vec!["jumpcloud_user".to_owned()],
        encountered_type_counts: BTreeMap::from([("jumpcloud_user".to_owned(), 3)]),
        status: StepStatus::PartialSuccessDueToDependencyFailure,
        depends_on: vec!["fetch-accounts".to_owned()],
        duration_ms: 5,
        http_requests: 2,
        http_retries: 1,
        skipped_records: 0,
        dropped_relationships: 4,
        convert_nanos: 1_500,
        error: None,
    });
    summary.metadata.partial_datasets.types = vec!["jumpcloud_user".to_owned()];
    let json = serde_json::to_value(&summary).unwrap();
    let step = &json["integrationStepResults"][0];
    assert_eq!(step["status"], "partial_success_due_to_dependency_failure");
    assert_eq!(step["declaredTypes"], serde_json::json!(["jumpcloud_user"]));
    assert_eq!(step["encounteredTypeCounts"]["jumpcloud_user"], 3);
    assert_eq!(step["dependsOn"], serde_json::json!(["fetch-accounts"]));
    assert_eq!(step["droppedRelationships"], 4);
    assert_eq!(step["convertNanos"], 1_500);
    assert!(
        step.get("error").is_none(),
        "no error key when there is none"
    );
    assert_eq!(
        json["metadata"]["partialDatasets"]["types"],
        serde_json::json!(["jumpcloud_user"])
    );
    assert_eq!(json["run"]["status"], "partial");
    assert_eq!(json["run"]["pluginVersion"], "0.1.0");
}
