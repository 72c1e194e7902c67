//! The `integration-host` command line. Exit status: 0 success, 1 the run failed or
//! was partial, 2 bad usage or configuration.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use integration_host::bindings::{ObjectKind, PluginInfo};
use integration_host::config::{TenantConfig, TenantsConfig};
use integration_host::job::{self, Mode};
use integration_host::run_all;
use integration_host::runtime::{Plugin, Runtime, RuntimeOptions};
use integration_host::sandbox::text::Untrusted;
use integration_host::services::ProgressSink;
use integration_host::steps::{self, JobError, JobStatus, StepStatus, Summary};
use jumpcloud_simulator::{Dataset, Mutation, Simulator, SimulatorConfig, TenantSpec};

mod bench;
mod monitoring;

use monitoring::StoreArgs;

const DEFAULT_OUTPUT: &str = ".j1-integration";

#[derive(Parser)]
#[command(
    name = "integration-host",
    version,
    about = "Runs integration plugins (WebAssembly components) in a sandbox and writes the graph they emit"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Starts the JumpCloud simulator with a generated tenant, runs the JumpCloud
    /// component against it and writes the graph: no JumpCloud account needed.
    Demo {
        #[arg(long, default_value = DEFAULT_OUTPUT)]
        output: PathBuf,
        /// Users in the generated tenant.
        #[arg(long, default_value_t = 250)]
        users: usize,
        /// User groups in the generated tenant.
        #[arg(long, default_value_t = 12)]
        groups: usize,
        /// Then serve the web console on the demo's store (until Ctrl-C), with the
        /// simulator kept running for the console's "Run now".
        #[arg(long)]
        serve: bool,
        /// Where the console listens with --serve.
        #[arg(long, default_value = "127.0.0.1:8480", requires = "serve")]
        listen: std::net::SocketAddr,
    },
    /// Runs one tenant's job and writes its graph and summary.json.
    Run {
        /// The tenant file (tenant.toml).
        #[arg(long)]
        config: PathBuf,
        #[arg(long, default_value = DEFAULT_OUTPUT)]
        output: PathBuf,
        /// A component to run instead of the bundled JumpCloud component.
        #[arg(long)]
        component: Option<PathBuf>,
        /// Overrides a plugin configuration field: --set baseUrl=https://...
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = job::parse_override)]
        overrides: Vec<(String, String)>,
        /// Persists the graph to this store (sqlite://PATH). Without it, the run
        /// persists when OUTPUT/store.db exists.
        #[arg(long, value_name = "URL", conflicts_with = "no_store")]
        store: Option<String>,
        /// Writes the graph files only, even when OUTPUT/store.db exists.
        #[arg(long)]
        no_store: bool,
    },
    /// Lists a tenant's runs in the store, newest first.
    Runs {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 50)]
        limit: u64,
    },
    /// Shows a run's change set (default: the newest persisted run).
    Changes {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        run: Option<i64>,
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        json: bool,
        /// Only changes of this _type.
        #[arg(long = "type", value_name = "TYPE")]
        object_type: Option<String>,
        #[arg(long)]
        limit: Option<u64>,
    },
    /// Writes a tenant's current graph from the store in the integration-SDK layout.
    Export {
        #[arg(long)]
        tenant: String,
        /// Where to write DIR/graph/... (the store is read from --store).
        #[arg(long)]
        output: PathBuf,
        /// The store (default: .j1-integration/store.db).
        #[arg(long, value_name = "URL")]
        store: Option<String>,
    },
    /// Asks `serve` to run a tenant now (also for DISABLED tenants).
    Trigger {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        store: StoreArgs,
        /// Waits until the run has finished and prints it.
        #[arg(long)]
        wait: bool,
    },
    /// Answers a J1QL query over a tenant's stored graph.
    Query {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        store: StoreArgs,
        /// J1's JSON shapes instead of a table.
        #[arg(long)]
        json: bool,
        /// Includes deleted objects (tombstones).
        #[arg(long)]
        include_deleted: bool,
        /// Results when the query has no LIMIT (J1's default: 250).
        #[arg(long)]
        limit: Option<usize>,
        /// The query: FIND ...
        query: String,
    },
    /// Lists a tenant's open alerts (--all: resolved ones too).
    Alerts {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        all: bool,
    },
    /// Runs every tenant of a tenants file on its polling interval, persists each run
    /// to the store, evaluates its alert rules, and serves the API and the console.
    Serve {
        /// The tenants file: `maxConcurrentTenants` and [[tenant]] tables. Not with
        /// --queue: the fleet schedules the tenants in its store (`tenants import`).
        #[arg(long, required_unless_present = "queue")]
        tenants: Option<PathBuf>,
        /// The store: sqlite://PATH (default: OUTPUT/store.db), or with --queue the
        /// fleet's shared postgres://USER@HOST/DATABASE.
        #[arg(long, value_name = "URL")]
        store: Option<String>,
        /// Runs write their files under OUTPUT/<tenant>/.
        #[arg(long, default_value = DEFAULT_OUTPUT)]
        output: PathBuf,
        /// Where the API and console listen.
        #[arg(long, default_value = "127.0.0.1:8480")]
        listen: std::net::SocketAddr,
        /// A file holding the access token (needed on a non-loopback address); or set
        /// INTEGRATION_HOST_TOKEN.
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Seconds runs in flight may go on after SIGINT/SIGTERM before they are
        /// abandoned (never half persisted).
        #[arg(long, default_value_t = 10)]
        grace_seconds: u64,
        /// The fleet: publish each due tenant as a job on this NATS JetStream server
        /// (nats://HOST:PORT) for `worker`s to run, instead of running it here. The
        /// store must then be shared by every worker (postgres://...).
        #[arg(long, value_name = "URL")]
        queue: Option<String>,
        #[command(flatten)]
        fleet: FleetArgs,
    },
    /// The fleet's worker: takes tenant jobs from the queue, runs them in the sandbox,
    /// persists each run to the shared store under the tenant's lease, evaluates its
    /// rules, and acks the job only then.
    Worker {
        /// The shared store (postgres://USER@HOST/DATABASE).
        #[arg(long, value_name = "URL")]
        store: String,
        /// The NATS JetStream server (nats://HOST:PORT).
        #[arg(long, value_name = "URL")]
        queue: String,
        /// Runs write their files under OUTPUT/NAME/<tenant>/.
        #[arg(long, default_value = DEFAULT_OUTPUT)]
        output: PathBuf,
        /// Jobs run side by side.
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
        /// This worker's name in leases and logs (default: host name and process id).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        fleet: FleetArgs,
    },
    /// The tenants in a store: `import` a tenants file (the fleet's workers and
    /// schedulers read tenants from the shared store), `list` them.
    Tenants {
        #[command(subcommand)]
        command: TenantsCommand,
    },
    /// Runs every tenant of a tenants file side by side, each in its own sandbox,
    /// writing under DIR/<tenant>/ and DIR/run-all.json.
    RunAll {
        /// The tenants file: `maxConcurrentTenants` and [[tenant]] tables.
        #[arg(long)]
        tenants: PathBuf,
        #[arg(long, default_value = DEFAULT_OUTPUT)]
        output: PathBuf,
    },
    /// Prints the plugin's configuration fields, steps and data model.
    Describe {
        #[arg(long)]
        component: Option<PathBuf>,
    },
    /// Checks a tenant's configuration and credentials with one cheap request.
    Validate {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        component: Option<PathBuf>,
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = job::parse_override)]
        overrides: Vec<(String, String)>,
    },
    /// Runs the JumpCloud API simulator alone, until interrupted.
    Simulate {
        /// Port on 127.0.0.1 (a free one when omitted).
        #[arg(long)]
        port: Option<u16>,
        #[arg(long, default_value_t = 250)]
        users: usize,
        #[arg(long, default_value_t = 12)]
        groups: usize,
        /// Applications in the generated tenant.
        #[arg(long, default_value_t = 6)]
        applications: usize,
        /// Systems (devices) in the generated tenant; 1.2 per user when omitted, a
        /// third of them Macs enrolled in Apple MDM.
        #[arg(long)]
        systems: Option<usize>,
        /// Delay added to every response, in milliseconds.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        /// Serve the recorded JumpCloud responses instead of a generated tenant.
        #[arg(long)]
        recorded: bool,
        /// Apply a mutation to the tenant this many seconds after start, and print
        /// what changed (the same as `POST /_sim/mutate` with the API key).
        #[arg(long, value_name = "SECONDS")]
        mutate_after_seconds: Option<u64>,
        /// The mutation of --mutate-after-seconds: `standard` (a user suspended, a new
        /// user without MFA, a member removed, a group deleted, an application
        /// assignment added, a system's disk encryption turned off) or
        /// `retitle-users:<percent>`.
        #[arg(long, default_value = "standard", value_parser = parse_mutation)]
        mutation: Mutation,
    },
    /// Measures a run: the real component in the real host against the simulator (in a
    /// child process), with tenant size, latency and concurrency as arguments.
    Bench(bench::BenchArgs),
}

#[derive(Subcommand)]
enum TenantsCommand {
    /// Checks a tenants file whole and stores each tenant's configuration and rules;
    /// nothing is stored when any tenant is wrong. Secret fields must be references,
    /// `{ env = "VAR" }` or `{ file = "PATH" }`, read on each worker: the store never
    /// holds a secret.
    Import {
        /// The tenants file: [[tenant]] tables.
        file: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Takes tenants out of the fleet: their configuration dropped and their polling
    /// interval DISABLED (no scheduler runs them again); their graphs, runs and alerts
    /// stay for reading. `tenants import` brings a tenant back.
    Remove {
        /// Tenant ids.
        #[arg(required = true)]
        tenants: Vec<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Lists the store's tenants: configuration revision, polling interval, next and
    /// last run.
    List {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        json: bool,
    },
}

/// The fleet's queue settings, the same on every scheduler and worker.
#[derive(clap::Args)]
struct FleetArgs {
    /// Prefix of the queue's streams, consumer and lease bucket.
    #[arg(long, default_value = "integration_host")]
    queue_namespace: String,
    /// How long a worker's lease on a tenant lasts unless renewed (every third of
    /// it); a dead worker's job is offered again after it.
    #[arg(long, default_value_t = 60)]
    lease_seconds: u64,
}

impl FleetArgs {
    fn settings(&self) -> integration_host::fleet::queue::QueueSettings {
        integration_host::fleet::queue::QueueSettings {
            namespace: self.queue_namespace.clone(),
            lease: Duration::from_secs(self.lease_seconds.max(1)),
        }
    }
}

/// A failure of the command, with its exit status.
pub(crate) struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    pub(crate) fn usage(message: impl std::fmt::Display) -> Failure {
        Failure {
            code: 2,
            message: message.to_string(),
        }
    }

    pub(crate) fn run(message: impl std::fmt::Display) -> Failure {
        Failure {
            code: 1,
            message: message.to_string(),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure::run(format!("{error:#}"))
    }
}

fn main() -> ExitCode {
    restore_sigpipe();
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            // The message may quote the plugin (a trap, a refused describe()).
            eprintln!("error: {}", Untrusted(&failure.message));
            ExitCode::from(failure.code)
        }
    }
}

/// Rust ignores SIGPIPE, so printing into a closed pipe panics; a command-line tool
/// should just stop, as every other one does.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is always
    // a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,integration_host=info,plugin=info")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .compact()
        .init();
}

async fn dispatch(command: Command) -> Result<u8, Failure> {
    match command {
        Command::Demo {
            output,
            users,
            groups,
            serve,
            listen,
        } => demo(&output, users, groups, serve.then_some(listen)).await,
        Command::Run {
            config,
            output,
            component,
            overrides,
            store,
            no_store,
        } => {
            let store = match (store, no_store) {
                (_, true) => None,
                (Some(url), false) => Some(url),
                (None, false) => graph_store::default_path(&output)
                    .exists()
                    .then(|| monitoring::store_url(None, &output)),
            };
            run(
                &config,
                &output,
                component.as_deref(),
                &overrides,
                store.as_deref(),
            )
            .await
        }
        Command::Serve {
            tenants,
            store,
            output,
            listen,
            token_file,
            grace_seconds,
            queue,
            fleet,
        } => {
            let token = integration_host::serve::security::load_token(token_file.as_deref())
                .map_err(Failure::usage)?;
            serve(integration_host::serve::ServeOptions {
                store_url: monitoring::store_url(store.as_deref(), &output),
                tenants_file: tenants,
                output,
                listen,
                token,
                grace: Duration::from_secs(grace_seconds),
                queue: queue.map(|url| (url, fleet.settings())),
            })
            .await
        }
        Command::Worker {
            store,
            queue,
            output,
            concurrency,
            name,
            fleet,
        } => {
            worker(integration_host::fleet::worker::WorkerOptions {
                store_url: store,
                queue_url: queue,
                queue: fleet.settings(),
                output,
                concurrency,
                name: name.unwrap_or_else(default_worker_name),
            })
            .await
        }
        Command::Runs {
            tenant,
            store,
            json,
            limit,
        } => monitoring::runs(&tenant, &store, json, limit).await,
        Command::Changes {
            tenant,
            run,
            store,
            json,
            object_type,
            limit,
        } => monitoring::changes(&tenant, run, &store, json, object_type, limit).await,
        Command::Export {
            tenant,
            output,
            store,
        } => {
            let url = monitoring::store_url(store.as_deref(), Path::new(DEFAULT_OUTPUT));
            monitoring::export(&tenant, &output, &url).await
        }
        Command::Trigger {
            tenant,
            store,
            wait,
        } => monitoring::trigger(&tenant, &store, wait).await,
        Command::Query {
            tenant,
            store,
            json,
            include_deleted,
            limit,
            query,
        } => monitoring::query(&tenant, &store, &query, json, include_deleted, limit).await,
        Command::Alerts {
            tenant,
            store,
            json,
            all,
        } => monitoring::alerts(&tenant, &store, json, all).await,
        Command::Tenants {
            command: TenantsCommand::Import { file, store },
        } => tenants_import(&file, &store.url()).await,
        Command::Tenants {
            command: TenantsCommand::Remove { tenants, store },
        } => monitoring::tenants_remove(&tenants, &store).await,
        Command::Tenants {
            command: TenantsCommand::List { store, json },
        } => monitoring::tenants_list(&store, json).await,
        Command::RunAll { tenants, output } => run_all(&tenants, &output).await,
        Command::Describe { component } => describe(component.as_deref()).await,
        Command::Validate {
            config,
            component,
            overrides,
        } => validate(&config, component.as_deref(), &overrides).await,
        Command::Simulate {
            port,
            users,
            groups,
            applications,
            systems,
            latency_ms,
            recorded,
            mutate_after_seconds,
            mutation,
        } => {
            let dataset = match recorded {
                true => Dataset::Recorded,
                false => Dataset::Generated(TenantSpec {
                    users,
                    groups,
                    applications,
                    systems,
                    ..TenantSpec::default()
                }),
            };
            let mutate = mutate_after_seconds.map(|s| (Duration::from_secs(s), mutation));
            simulate(port, dataset, latency_ms, mutate).await
        }
        Command::Bench(args) => bench::run(args).await.map(|()| 0).map_err(Failure::run),
    }
}

/// Loads the given component, or the bundled JumpCloud one, and describes it.
async fn load(component: Option<&Path>) -> Result<(Plugin, PluginInfo), Failure> {
    let runtime = Runtime::new(RuntimeOptions::from_env())
        .map_err(|error| Failure::run(format!("cannot start the wasm runtime: {error:#}")))?;
    let plugin = match component {
        Some(path) => runtime.load_file(path).map_err(Failure::usage)?,
        None => runtime
            .load(
                "the bundled JumpCloud component",
                integration_host::BUNDLED_COMPONENT,
            )
            .map_err(Failure::run)?,
    };
    tracing::debug!(
        load_ms = plugin.load_time.as_millis() as u64,
        cache_hit = plugin.cache_hit,
        "plugin loaded"
    );
    let info = plugin.describe().await.map_err(|failure| {
        Failure::usage(format!("the component's describe() failed: {failure}"))
    })?;
    Ok((plugin, info))
}

async fn run(
    config_path: &Path,
    output: &Path,
    component: Option<&Path>,
    overrides: &[(String, String)],
    store_url: Option<&str>,
) -> Result<u8, Failure> {
    let tenant = TenantConfig::load(config_path).map_err(Failure::usage)?;
    let rules = match &tenant.rules {
        Some(path) if store_url.is_some() => {
            integration_host::monitor::rules::load(path).map_err(Failure::usage)?
        }
        _ => Vec::new(),
    };
    let (plugin, info) = load(component).await?;
    let progress = CliProgress::new();
    let spec = job::prepare(
        &tenant,
        &info,
        overrides,
        Mode::Local,
        output,
        progress.clone(),
    )
    .map_err(Failure::usage)?;
    if let Some(url) = store_url {
        let store = graph_store::open(url).await.map_err(Failure::usage)?;
        let monitored = persist(&plugin, &info, spec, &*store, &tenant, &rules, &progress)
            .await
            .map_err(|failure| match failure.code {
                2 => Failure::usage(format!("{}: {}", config_path.display(), failure.message)),
                _ => failure,
            })?;
        return Ok(monitored.summary.exit_code() as u8);
    }
    let summary =
        execute(&plugin, &info, spec, &progress)
            .await
            .map_err(|failure| match failure.code {
                // A field the plugin refused: name the file it came from.
                2 => Failure::usage(format!("{}: {}", config_path.display(), failure.message)),
                _ => failure,
            })?;
    print_summary(&summary, output);
    Ok(summary.exit_code() as u8)
}

/// [`persist`] without the step table: the demo's second run prints its change set.
async fn persist_quietly(
    plugin: &Plugin,
    info: &PluginInfo,
    spec: steps::JobSpec,
    store: &dyn graph_store::Store,
    tenant: &TenantConfig,
    rules: &[alert_rules::Rule],
    progress: &CliProgress,
) -> Result<integration_host::monitor::MonitoredRun, Failure> {
    persist_and_report(plugin, info, spec, store, tenant, rules, progress, false).await
}

/// Runs a tenant through the store: registers it, runs, persists, evaluates its rules,
/// and prints the summary, the change counts and any alert opened.
async fn persist(
    plugin: &Plugin,
    info: &PluginInfo,
    spec: steps::JobSpec,
    store: &dyn graph_store::Store,
    tenant: &TenantConfig,
    rules: &[alert_rules::Rule],
    progress: &CliProgress,
) -> Result<integration_host::monitor::MonitoredRun, Failure> {
    persist_and_report(plugin, info, spec, store, tenant, rules, progress, true).await
}

#[allow(clippy::too_many_arguments)]
async fn persist_and_report(
    plugin: &Plugin,
    info: &PluginInfo,
    spec: steps::JobSpec,
    store: &dyn graph_store::Store,
    tenant: &TenantConfig,
    rules: &[alert_rules::Rule],
    progress: &CliProgress,
    step_table: bool,
) -> Result<integration_host::monitor::MonitoredRun, Failure> {
    use integration_host::monitor::{self, MonitorError};
    let output = spec.output_dir.clone();
    store
        .upsert_tenant(&tenant.monitoring)
        .await
        .map_err(Failure::run)?;
    let result =
        monitor::run_and_persist(plugin, info, spec, store, graph_store::Trigger::Cli).await;
    progress.finish();
    let monitored = result.map_err(|error| match error {
        MonitorError::Job(JobError::Config(e)) => Failure::usage(e),
        other => Failure::run(other),
    })?;
    if step_table {
        print_summary(&monitored.summary, &output);
        println!(
            "store {}: {}",
            store.location(),
            monitoring::run_line(&monitored.run)
        );
    }
    let transport = monitor::webhook::EgressTransport::for_rules(rules);
    let evaluations = monitor::rules::evaluate_after_run(
        store,
        &monitored.run,
        rules,
        &transport,
        &alert_rules::RetryPolicy::default(),
    )
    .await
    .map_err(Failure::run)?;
    let opened: Vec<&str> = evaluations
        .iter()
        .filter(|e| e.transition == graph_store::AlertTransition::Opened)
        .map(|e| e.rule.as_str())
        .collect();
    if !opened.is_empty() {
        println!("alerts opened: {}", monitoring::shown(&opened.join(", ")));
    }
    Ok(monitored)
}

async fn execute(
    plugin: &Plugin,
    info: &PluginInfo,
    spec: steps::JobSpec,
    progress: &CliProgress,
) -> Result<Summary, Failure> {
    let result = steps::run_job(plugin, info, spec).await;
    progress.finish();
    result.map_err(|error| match error {
        JobError::Config(e) => Failure::usage(e),
        other => Failure::run(other),
    })
}

async fn serve(options: integration_host::serve::ServeOptions) -> Result<u8, Failure> {
    let runtime = Runtime::new(RuntimeOptions::from_env())
        .map_err(|error| Failure::run(format!("cannot start the wasm runtime: {error:#}")))?;
    let result = integration_host::serve::serve(
        &runtime,
        options,
        integration_host::run_all::DefaultComponent {
            name: "the bundled JumpCloud component",
            bytes: integration_host::BUNDLED_COMPONENT,
        },
        None,
        stop_signal(),
    )
    .await;
    match result {
        Ok(()) => Ok(0),
        Err(error) => Err(Failure {
            code: error.exit_code(),
            message: error.to_string(),
        }),
    }
}

fn default_worker_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into());
    format!("{host}-{}", std::process::id())
}

async fn worker(options: integration_host::fleet::worker::WorkerOptions) -> Result<u8, Failure> {
    let runtime = Runtime::new(RuntimeOptions::from_env())
        .map_err(|error| Failure::run(format!("cannot start the wasm runtime: {error:#}")))?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        stop_signal().await;
        tracing::info!("stop requested: finishing the jobs in flight");
        stop.send_replace(true);
    });
    let result = integration_host::fleet::worker::run(
        Arc::new(runtime),
        options,
        integration_host::run_all::DefaultComponent {
            name: "the bundled JumpCloud component",
            bytes: integration_host::BUNDLED_COMPONENT,
        },
        stopped,
    )
    .await;
    match result {
        Ok(()) => Ok(0),
        Err(error) => Err(Failure {
            code: error.exit_code(),
            message: error.to_string(),
        }),
    }
}

async fn tenants_import(file: &Path, store_url: &str) -> Result<u8, Failure> {
    let runtime = Runtime::new(RuntimeOptions::from_env())
        .map_err(|error| Failure::run(format!("cannot start the wasm runtime: {error:#}")))?;
    let store = graph_store::open(store_url).await.map_err(Failure::run)?;
    let imported = integration_host::fleet::tenants::import(
        &runtime,
        file,
        &*store,
        integration_host::run_all::DefaultComponent {
            name: "the bundled JumpCloud component",
            bytes: integration_host::BUNDLED_COMPONENT,
        },
    )
    .await
    .map_err(|error| Failure {
        code: error.exit_code(),
        message: error.to_string(),
    })?;
    for tenant in &imported {
        let change = match tenant.change {
            graph_store::ConfigChange::Created => "new",
            graph_store::ConfigChange::Changed => "changed",
            graph_store::ConfigChange::Unchanged => "unchanged",
        };
        println!(
            "{:<32} revision {:<4} {change}",
            tenant.tenant, tenant.revision
        );
    }
    println!(
        "{} tenant(s) imported into {}",
        imported.len(),
        store.location()
    );
    Ok(0)
}

/// SIGINT or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn run_all(tenants_path: &Path, output: &Path) -> Result<u8, Failure> {
    let tenants = TenantsConfig::load(tenants_path).map_err(Failure::usage)?;
    let runtime = Runtime::new(RuntimeOptions::from_env())
        .map_err(|error| Failure::run(format!("cannot start the wasm runtime: {error:#}")))?;
    let progress = CliProgress::new();
    let report = run_all::run_all(
        &runtime,
        &tenants,
        run_all::DefaultComponent {
            name: "the bundled JumpCloud component",
            bytes: integration_host::BUNDLED_COMPONENT,
        },
        output,
        progress.clone(),
    )
    .await;
    progress.finish();
    let report = report.map_err(Failure::usage)?;
    integration_host::output::write_json_atomically(&output.join("run-all.json"), &report)
        .map_err(|error| {
            Failure::run(format!(
                "cannot write {}: {error}",
                output.join("run-all.json").display()
            ))
        })?;
    println!(
        "{} tenants in {:.2} s, at most {} side by side",
        report.tenants.len(),
        report.duration_ms as f64 / 1000.0,
        report.max_concurrent_tenants
    );
    println!(
        "{:<24} {:<8} {:>9} {:>9} {:>9}  error",
        "tenant", "status", "entities", "relations", "ms"
    );
    for tenant in &report.tenants {
        println!(
            "{:<24} {:<8} {:>9} {:>9} {:>9}  {}",
            tenant.tenant,
            status_word(tenant.status),
            tenant.entities,
            tenant.relationships,
            tenant.duration_ms,
            Untrusted(tenant.error.as_deref().unwrap_or(""))
        );
    }
    println!(
        "outputs under {}/<tenant>/, report in {}/run-all.json",
        output.display(),
        output.display()
    );
    Ok(report.exit_code() as u8)
}

fn status_word(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Success => "success",
        JobStatus::Partial => "partial",
        JobStatus::Failure => "failure",
    }
}

/// The demo's rules: the JumpCloud questions shipped in `rules/`.
const SHIPPED_RULES: &str = include_str!("../../rules/jumpcloud-rules.json");

/// Two runs of the JumpCloud component against the simulator, with the simulated
/// tenant changed between them: the first run is the baseline, the second shows a
/// change set and opens the "new user without MFA" alert.
async fn demo(
    output: &Path,
    users: usize,
    groups: usize,
    console: Option<std::net::SocketAddr>,
) -> Result<u8, Failure> {
    use jumpcloud_simulator::Mutation;
    let started = Instant::now();
    let simulator = Simulator::start(SimulatorConfig {
        dataset: Dataset::Generated(TenantSpec {
            users,
            groups,
            ..TenantSpec::default()
        }),
        ..SimulatorConfig::default()
    })
    .await
    .context("cannot start the JumpCloud simulator")?;
    let systems = simulator
        .tenant()
        .organizations()
        .first()
        .map_or(0, |org| org.system_count());
    eprintln!(
        "JumpCloud simulator at {} ({users} users, {groups} groups, {systems} systems)",
        simulator.base_url()
    );
    let tenant_file = format!(
        "tenant = \"demo\"\naccountName = \"Demo JumpCloud\"\ntagWithAccountName = true\n\
         pollingInterval = \"ONE_HOUR\"\n[integration]\napiKey = \"{}\"\nbaseUrl = \"{}\"\n",
        simulator.api_key(),
        simulator.base_url()
    );
    let tenant = TenantConfig::parse(Path::new("(demo)"), &tenant_file).map_err(Failure::run)?;
    let rules = alert_rules::parse_rules(
        SHIPPED_RULES,
        alert_rules::Format::Json,
        "rules/jumpcloud-rules.json",
        &alert_rules::J1qlChecker,
    )
    .map_err(Failure::run)?;
    let (plugin, info) = load(None).await?;
    let store_url = monitoring::store_url(None, output);
    let store = graph_store::open(&store_url).await.map_err(Failure::run)?;
    store
        .upsert_tenant(&tenant.monitoring)
        .await
        .map_err(Failure::run)?;
    // Every demo starts from a baseline; other tenants of the store are left alone.
    store.reset_tenant("demo").await.map_err(Failure::run)?;

    println!("== run 1: the baseline");
    let progress = CliProgress::new();
    let spec = job::prepare(&tenant, &info, &[], Mode::Local, output, progress.clone())
        .map_err(Failure::run)?;
    let first = persist(&plugin, &info, spec, &*store, &tenant, &rules, &progress).await?;

    let report = simulator
        .apply_mutation(Mutation::Standard)
        .map_err(Failure::run)?;
    println!(
        "\n== the simulated tenant changes: {} user(s) suspended, {} added without MFA, {} member(s) removed, {} group(s) deleted, {} application assignment(s) added, {} system(s) lost disk encryption",
        report.suspended_users.len(),
        report.added_users.len(),
        report.removed_members.len(),
        report.deleted_groups.len(),
        report.added_assignments.len(),
        report.unencrypted_systems.len()
    );

    println!("\n== run 2: the change set");
    let progress = CliProgress::new();
    let spec = job::prepare(&tenant, &info, &[], Mode::Local, output, progress.clone())
        .map_err(Failure::run)?;
    let second = persist_quietly(&plugin, &info, spec, &*store, &tenant, &rules, &progress).await?;
    let set = store
        .changes(
            "demo",
            Some(second.run.id),
            &graph_store::ChangeFilter::default(),
        )
        .await
        .map_err(Failure::run)?;
    monitoring::print_change_set(&*store, &set, Some(5)).await;
    let evaluations = store
        .evaluations("demo", Some(second.run.id))
        .await
        .map_err(Failure::run)?;
    let alerts = store
        .alerts("demo", Some(graph_store::AlertStatus::Active))
        .await
        .map_err(Failure::run)?;
    println!("\nalerts opened by run 2:");
    for evaluation in evaluations
        .iter()
        .filter(|e| e.transition == graph_store::AlertTransition::Opened)
    {
        let mut added = Vec::new();
        for key in &evaluation.added {
            added.push(monitoring::named(&*store, "demo", key).await);
        }
        println!(
            "  {} ({}): {} result(s), new since the last evaluation: {}",
            monitoring::shown(&evaluation.rule),
            evaluation.alert_level.as_deref().unwrap_or("-"),
            evaluation.results,
            added.join(", ")
        );
    }
    println!("\nopen alerts: {}", alerts.len());
    println!(
        "\ndemo finished in {:.2} s against {} simulated requests; the store is {}",
        started.elapsed().as_secs_f64(),
        simulator.request_count(),
        store.location()
    );
    let code = first.summary.exit_code().max(second.summary.exit_code()) as u8;
    if let Some(listen) = console {
        drop(store);
        let served = demo_console(output, &simulator, listen).await;
        simulator.shutdown().await;
        return served.map(|serve_code| serve_code.max(code));
    }
    println!("next:");
    println!("  integration-host demo --serve   (the web console on this store)");
    println!("  integration-host runs --tenant demo");
    println!("  integration-host changes --tenant demo");
    println!(
        "  integration-host query --tenant demo 'FIND jumpcloud_user WITH mfaEnabled != true THAT IS Person'"
    );
    println!(
        "  integration-host query --tenant demo 'FIND jumpcloud_user AS u THAT ASSIGNED AS a jumpcloud_system AS s WHERE a.sudo = true RETURN u.name, s.name, a.passwordlessSudo'"
    );
    println!("  integration-host alerts --tenant demo");
    simulator.shutdown().await;
    Ok(code)
}

/// `demo --serve`: `serve` on the demo's store, its tenant on the still-running simulator
/// (manual runs only: "Run now" in the console), with the shipped rules. The tenants file
/// and the rules are written next to the store, so the same console opens again later
/// with `integration-host serve --tenants OUTPUT/demo-tenants.toml`.
async fn demo_console(
    output: &Path,
    simulator: &Simulator,
    listen: std::net::SocketAddr,
) -> Result<u8, Failure> {
    let rules = output.join("demo-rules.json");
    std::fs::write(&rules, SHIPPED_RULES)
        .map_err(|e| Failure::run(format!("cannot write {}: {e}", rules.display())))?;
    let quoted = |text: &str| toml::Value::String(text.to_owned()).to_string();
    let tenants = output.join("demo-tenants.toml");
    let text = format!(
        "# Written by `integration-host demo --serve`: the demo tenant on the simulator it ran.\n\
         [[tenant]]\ntenant = \"demo\"\naccountName = \"Demo JumpCloud\"\ntagWithAccountName = true\n\
         pollingInterval = \"DISABLED\"\nrules = {rules}\n\
         [tenant.integration]\napiKey = {key}\nbaseUrl = {base}\n\
         [tenant.sandbox]\nallowedHosts = [{authority}]\n",
        rules = quoted(&rules.display().to_string()),
        key = quoted(simulator.api_key()),
        base = quoted(&simulator.base_url()),
        authority = quoted(&simulator.local_addr().to_string()),
    );
    std::fs::write(&tenants, text)
        .map_err(|e| Failure::run(format!("cannot write {}: {e}", tenants.display())))?;
    println!("\n== the web console on the demo's store (Ctrl-C to stop)");
    if listen.port() != 0 {
        println!("open its graph view: http://{listen}/tenants/demo/graph");
    }
    serve(integration_host::serve::ServeOptions {
        store_url: monitoring::store_url(None, output),
        tenants_file: Some(tenants),
        output: output.to_owned(),
        listen,
        token: None,
        grace: Duration::from_secs(10),
        queue: None,
    })
    .await
}

async fn describe(component: Option<&Path>) -> Result<u8, Failure> {
    let (_, info) = load(component).await?;
    // Every name below is the plugin's text: shown escaped, never obeyed.
    println!(
        "{} ({}) {}",
        Untrusted(&info.name),
        info.id,
        Untrusted(&info.version)
    );
    println!("\nconfiguration ([integration] in tenant.toml):");
    for field in &info.config_fields {
        let mut notes = Vec::new();
        if field.required {
            notes.push("required".to_owned());
        }
        if field.secret {
            notes.push("secret".to_owned());
        }
        if let Some(default) = &field.default_value {
            notes.push(format!("default {}", Untrusted(default)));
        }
        if let Some(var) = &field.env_var {
            notes.push(format!("env {var}"));
        }
        println!(
            "  {:<10} {} [{}]",
            field.name,
            Untrusted(&field.description),
            notes.join(", ")
        );
    }
    println!(
        "\ndefault egress hosts: {}",
        Untrusted(&info.default_egress_hosts.join(", "))
    );
    println!(
        "\n{:<32} {:<8} {:<40} {:<12} depends on",
        "step", "kind", "_type", "_class"
    );
    for step in &info.steps {
        for declared in &step.declared_types {
            let kind = match declared.kind {
                ObjectKind::Entity => "entity",
                ObjectKind::Relationship => "relation",
            };
            println!(
                "{:<32} {:<8} {:<40} {:<12} {}",
                step.id,
                kind,
                declared.type_,
                declared.class,
                step.depends_on.join(", ")
            );
        }
    }
    Ok(0)
}

async fn validate(
    config_path: &Path,
    component: Option<&Path>,
    overrides: &[(String, String)],
) -> Result<u8, Failure> {
    let tenant = TenantConfig::load(config_path).map_err(Failure::usage)?;
    let (plugin, info) = load(component).await?;
    let spec = job::prepare(
        &tenant,
        &info,
        overrides,
        Mode::Local,
        Path::new("."),
        Arc::new(integration_host::services::NoProgress),
    )
    .map_err(Failure::usage)?;
    match steps::validate_job(&plugin, spec).await {
        Ok(()) => {
            println!("{}: configuration and credentials are valid", tenant.tenant);
            Ok(0)
        }
        Err(steps::ValidateError::Config(e)) => {
            Err(Failure::usage(format!("{}: {e}", config_path.display())))
        }
        Err(steps::ValidateError::Rejected(report)) => Err(Failure::run(format!(
            "{}: {} ({})",
            tenant.tenant,
            Untrusted(&report.message),
            report.kind
        ))),
    }
}

fn parse_mutation(text: &str) -> Result<Mutation, String> {
    Mutation::parse(text).map_err(|e| e.to_string())
}

async fn simulate(
    port: Option<u16>,
    dataset: Dataset,
    latency_ms: u64,
    mutate: Option<(Duration, Mutation)>,
) -> Result<u8, Failure> {
    let simulator = Simulator::start(SimulatorConfig {
        dataset,
        port,
        latency: Duration::from_millis(latency_ms),
        ..SimulatorConfig::default()
    })
    .await
    .context("cannot start the JumpCloud simulator")?;
    println!("JumpCloud simulator listening on {}", simulator.base_url());
    println!("API key: {}", simulator.api_key());
    println!(
        "try: integration-host run --config tenant.toml --set baseUrl={} --set apiKey={}",
        simulator.base_url(),
        simulator.api_key()
    );
    println!(
        "mutate: curl -X POST -H 'x-api-key: {}' '{}/_sim/mutate?mutation=standard'",
        simulator.api_key(),
        simulator.base_url()
    );
    if let Some((after, mutation)) = mutate {
        tokio::select! {
            _ = tokio::time::sleep(after) => match simulator.apply_mutation(mutation) {
                Ok(report) => println!("mutated: {}", report.to_json()),
                Err(error) => eprintln!("error: mutation not applied: {error}"),
            },
            interrupted = tokio::signal::ctrl_c() => {
                interrupted.context("waiting for Ctrl-C")?;
                simulator.shutdown().await;
                return Ok(0);
            }
        }
    }
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    simulator.shutdown().await;
    Ok(0)
}

fn print_summary(summary: &Summary, output: &Path) {
    let run = &summary.run;
    println!(
        "tenant {}: {} in {:.2} s: {} entities, {} relationships, {} HTTP requests ({} retries)",
        run.tenant,
        status_word(run.status),
        run.duration_ms as f64 / 1000.0,
        run.entities,
        run.relationships,
        run.http_requests,
        run.http_retries
    );
    println!(
        "{:<32} {:<44} {:>9} {:>9} {:>9}",
        "step", "status", "objects", "requests", "ms"
    );
    for step in &summary.integration_step_results {
        let status = match step.status {
            StepStatus::Success => "success",
            StepStatus::Failure => "failure",
            StepStatus::PartialSuccessDueToDependencyFailure => {
                "partial_success_due_to_dependency_failure"
            }
            StepStatus::Disabled => "disabled",
        };
        let objects: u64 = step.encountered_type_counts.values().sum();
        println!(
            "{:<32} {:<44} {:>9} {:>9} {:>9}",
            step.id, status, objects, step.http_requests, step.duration_ms
        );
        if let Some(error) = &step.error {
            println!("    {}: {}", error.kind, Untrusted(&error.message));
        }
    }
    if !summary.metadata.partial_datasets.types.is_empty() {
        println!(
            "partial types: {}",
            summary.metadata.partial_datasets.types.join(", ")
        );
    }
    println!(
        "graph written to {}/graph, summary to {}/summary.json",
        output.display(),
        output.display()
    );
}

/// Progress on stderr: bars on a terminal, a plain line every few seconds otherwise.
struct CliProgress {
    bars: Option<MultiProgress>,
    state: Mutex<ProgressState>,
}

#[derive(Default)]
struct ProgressState {
    bars: Vec<(String, ProgressBar)>,
    last_line: Option<Instant>,
}

impl CliProgress {
    fn new() -> Arc<CliProgress> {
        let bars = std::io::stderr().is_terminal().then(MultiProgress::new);
        Arc::new(CliProgress {
            bars,
            state: Mutex::new(ProgressState::default()),
        })
    }

    fn finish(&self) {
        if let Ok(state) = self.state.lock() {
            for (_, bar) in &state.bars {
                bar.finish();
            }
        }
    }
}

impl ProgressSink for CliProgress {
    fn report(&self, tenant: &str, step: &str, done: u64, total: Option<u64>) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let Some(multi) = &self.bars else {
            let due = state
                .last_line
                .is_none_or(|at| at.elapsed() >= Duration::from_secs(2));
            if due {
                state.last_line = Some(Instant::now());
                match total {
                    Some(total) => eprintln!("{tenant} {step}: {done}/{total}"),
                    None => eprintln!("{tenant} {step}: {done}"),
                }
            }
            return;
        };
        let label = format!("{tenant} {step}");
        let bar = match state.bars.iter().find(|(l, _)| *l == label) {
            Some((_, bar)) => bar.clone(),
            None => {
                for (_, bar) in &state.bars {
                    bar.finish();
                }
                let bar = multi.add(ProgressBar::new(0));
                bar.set_style(
                    ProgressStyle::with_template("{prefix:.bold} {bar:30} {pos}/{len} {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar.set_prefix(label.clone());
                state.bars.push((label, bar.clone()));
                bar
            }
        };
        bar.set_length(total.unwrap_or(done).max(done));
        bar.set_position(done);
    }
}
