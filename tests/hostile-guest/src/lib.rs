//! A plugin that misbehaves on purpose, one way per `behavior` configuration value, so
//! the tests can show the host contains each. It is a component of the same WIT world
//! as the JumpCloud plugin; natively it compiles to nothing.

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({
        world: "integration",
        path: "../../wit",
        with: {
            "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
            "wasi:http/types@0.2.12": wasip2::http::types,
            "wasi:io/error@0.2.12": wasip2::io::error,
            "wasi:io/poll@0.2.12": wasip2::io::poll,
            "wasi:io/streams@0.2.12": wasip2::io::streams,
            "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
            "wasi:random/random@0.2.12": wasip2::random::random,
        },
    });

    use exports::secgraph::integration::plugin::Guest;
    use secgraph::integration::types as wit;
    use secgraph::integration::{graph, log};
    use wasip2::http::types::{ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, Scheme};

    struct Hostile;

    export!(Hostile);

    impl Guest for Hostile {
        fn describe() -> wit::PluginInfo {
            wit::PluginInfo {
                id: "hostile".into(),
                name: "Hostile test plugin".into(),
                version: "0.0.0".into(),
                config_fields: vec![
                    wit::ConfigField {
                        name: "behavior".into(),
                        description: "spin, memory-bomb, egress-outside, egress-metadata, log-flood, panic, probe-sandbox, leak-secret".into(),
                        secret: false,
                        required: true,
                        default_value: None,
                        env_var: None,
                    },
                    wit::ConfigField {
                        name: "token".into(),
                        description: "A secret the plugin tries to leak".into(),
                        secret: true,
                        required: false,
                        default_value: None,
                        env_var: None,
                    },
                ],
                steps: vec![wit::StepInfo {
                    id: "misbehave".into(),
                    name: "Misbehave".into(),
                    depends_on: vec![],
                    declared_types: vec![wit::DeclaredType {
                        type_: "hostile_thing".into(),
                        class: "Resource".into(),
                        kind: wit::ObjectKind::Entity,
                    }],
                }],
                default_egress_hosts: vec![],
            }
        }

        fn check_config(_config: Vec<wit::ConfigEntry>) -> Result<(), wit::IntegrationError> {
            Ok(())
        }

        fn validate(_config: Vec<wit::ConfigEntry>) -> Result<(), wit::IntegrationError> {
            Ok(())
        }

        fn execute_step(
            _step_id: String,
            config: Vec<wit::ConfigEntry>,
        ) -> Result<wit::StepReport, wit::IntegrationError> {
            let value = |name: &str| {
                config
                    .iter()
                    .find(|e| e.name == name)
                    .map(|e| e.value.clone())
                    .unwrap_or_default()
            };
            match value("behavior").as_str() {
                "spin" => spin(),
                "memory-bomb" => memory_bomb(),
                "egress-outside" => get("http", "203.0.113.7:80", "/exfiltrate"),
                "egress-metadata" => get("http", "169.254.169.254", "/latest/meta-data/"),
                "log-flood" => log_flood(),
                "panic" => panic!("the hostile plugin panics on purpose"),
                "probe-sandbox" => probe_sandbox(),
                "leak-secret" => leak_secret(&value("token")),
                other => Err(wit::IntegrationError::Internal(format!(
                    "unknown behavior {other}"
                ))),
            }
        }
    }

    fn report() -> wit::StepReport {
        wit::StepReport {
            skipped_records: 0,
            convert_nanos: 0,
        }
    }

    /// Burns CPU forever.
    fn spin() -> Result<wit::StepReport, wit::IntegrationError> {
        let mut counter: u64 = 0;
        loop {
            counter = std::hint::black_box(counter.wrapping_add(1));
        }
    }

    /// Allocates (and touches) memory until something stops it.
    fn memory_bomb() -> Result<wit::StepReport, wit::IntegrationError> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![0xAB; 4 << 20]);
            std::hint::black_box(&hoard);
        }
    }

    /// One GET; reports how the host answered.
    fn get(
        scheme: &str,
        authority: &str,
        path: &str,
    ) -> Result<wit::StepReport, wit::IntegrationError> {
        let request = OutgoingRequest::new(Fields::new());
        let _ = request.set_method(&Method::Get);
        let _ = request.set_scheme(Some(&match scheme {
            "https" => Scheme::Https,
            _ => Scheme::Http,
        }));
        let _ = request.set_authority(Some(authority));
        let _ = request.set_path_with_query(Some(path));
        if let Ok(body) = request.body() {
            let _ = OutgoingBody::finish(body, None);
        }
        let outcome = match wasip2::http::outgoing_handler::handle(request, None) {
            Err(code) => Err(code),
            Ok(future) => {
                future.subscribe().block();
                match future.get() {
                    Some(Ok(Ok(_response))) => Ok(()),
                    Some(Ok(Err(code))) => Err(code),
                    _ => Err(ErrorCode::InternalError(Some("no response".into()))),
                }
            }
        };
        match outcome {
            Err(ErrorCode::HttpRequestDenied) => {
                Err(wit::IntegrationError::EgressDenied(authority.into()))
            }
            Err(code) => Err(wit::IntegrationError::Transport(wit::EndpointError {
                endpoint: path.into(),
                message: format!("{code:?}"),
            })),
            Ok(()) => Err(wit::IntegrationError::Internal(format!(
                "reached {authority}: the sandbox let it through"
            ))),
        }
    }

    /// Far more log lines than any budget.
    fn log_flood() -> Result<wit::StepReport, wit::IntegrationError> {
        for i in 0..200_000u32 {
            log::log(log::Level::Info, &format!("flood line {i}"), &[]);
        }
        Ok(report())
    }

    /// Tries the filesystem, the environment and the arguments, and reports what it saw.
    fn probe_sandbox() -> Result<wit::StepReport, wit::IntegrationError> {
        let root = std::fs::read_dir("/").map(|entries| entries.count());
        let passwd = std::fs::read("/etc/passwd").map(|bytes| bytes.len());
        let cwd = std::env::current_dir().map(|d| d.display().to_string());
        let env = std::env::vars().count();
        let args = std::env::args().count();
        println!("probing the sandbox");
        Err(wit::IntegrationError::Internal(format!(
            "probe: root={} passwd={} cwd={} env={env} args={args}",
            if root.is_ok() { "readable" } else { "denied" },
            if passwd.is_ok() { "readable" } else { "denied" },
            if cwd.is_ok() { "known" } else { "none" },
        )))
    }

    /// Tries every channel to get a secret out: logs, stdout, errors, the graph.
    fn leak_secret(token: &str) -> Result<wit::StepReport, wit::IntegrationError> {
        log::log(
            log::Level::Error,
            &format!("the token is {token}"),
            &[log::Field {
                name: "token".into(),
                value: token.into(),
            }],
        );
        println!("stdout token {token}");
        eprintln!("stderr token {token}");
        let _ = graph::add_entities(&[wit::Entity {
            key: "hostile-thing-0001".into(),
            type_: "hostile_thing".into(),
            classes: vec!["Resource".into()],
            properties: vec![wit::Property {
                name: "note".into(),
                value: wit::PropertyValue::Text(format!("token={token}")),
            }],
            raw_data: Some(format!("{{\"token\": \"{token}\"}}")),
        }]);
        Err(wit::IntegrationError::Authentication(format!(
            "rejected token {token}"
        )))
    }
}
