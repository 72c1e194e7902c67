//! `serve`: every tenant of a tenants file on its polling interval (the scheduler),
//! each run persisted to the store and its rules evaluated, and the JSON API (and the
//! console) on one listener.

pub mod api;
pub mod console;
pub mod security;
pub mod state;

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use alert_rules::{RetryPolicy, Rule};
use axum::Router;
use graph_store::{Store, Trigger};
use tokio::sync::watch;

use crate::config::{ConfigError, TenantsConfig};
use crate::monitor::graphs::GraphCache;
use crate::monitor::scheduler::{RunResult, ScheduledTenant, Scheduler, TenantRunner};
use crate::monitor::webhook::EgressTransport;
use crate::monitor::{self, rules};
use crate::run_all::{DefaultComponent, PreparedTenant, RunAllError, prepare_all};
use crate::runtime::Runtime;
use crate::sandbox::text::Untrusted;
use state::{AppState, LiveProgress, ServedTenants};

/// What `serve` was asked to do.
pub struct ServeOptions {
    /// The tenants file; `None` only with `queue` (the fleet's tenants are in the store).
    pub tenants_file: Option<PathBuf>,
    pub store_url: String,
    /// Runs write their files under `OUTPUT/<tenant>/`.
    pub output: PathBuf,
    pub listen: SocketAddr,
    /// The access token (`security::load_token`); required when `listen` is not a
    /// loopback address.
    pub token: Option<security::AccessToken>,
    /// How long runs in flight may go on after a stop signal.
    pub grace: Duration,
    /// The fleet's queue (`nats://...`): this `serve` publishes jobs for `worker`s
    /// instead of running tenants itself.
    pub queue: Option<(String, crate::fleet::queue::QueueSettings)>,
}

/// Why `serve` did not start (or stopped).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Bad input: exit status 2, nothing run.
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Rules(String),
    #[error(transparent)]
    Prepare(#[from] RunAllError),
    /// A non-loopback address without a token, or a token not fit for use.
    #[error(transparent)]
    Access(#[from] security::SecurityError),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] graph_store::StoreError),
    #[error(transparent)]
    Queue(#[from] crate::fleet::queue::QueueError),
}

impl ServeError {
    /// 2 for bad input, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            ServeError::Config(_)
            | ServeError::Rules(_)
            | ServeError::Prepare(_)
            | ServeError::Access(_) => 2,
            _ => 1,
        }
    }
}

/// A tenant as `serve` runs it.
struct ServedTenant {
    prepared: PreparedTenant,
    rules: Arc<Vec<Rule>>,
    transport: Arc<EgressTransport>,
}

/// Runs one tenant for the scheduler: the sandboxed run, persist, rules.
struct ServeRunner {
    store: Arc<dyn Store>,
    tenants: HashMap<String, Arc<ServedTenant>>,
    progress: Arc<LiveProgress>,
    /// The graph the rules evaluate is kept for the console.
    graphs: Arc<GraphCache>,
}

impl TenantRunner for ServeRunner {
    fn run(
        &self,
        tenant: String,
        trigger: Trigger,
    ) -> Pin<Box<dyn Future<Output = RunResult> + Send + 'static>> {
        let store = self.store.clone();
        let served = self.tenants.get(&tenant).cloned();
        let progress = self.progress.clone();
        let graphs = self.graphs.clone();
        Box::pin(async move {
            let served = served.ok_or_else(|| format!("tenant {tenant:?} is not served"))?;
            progress.begin(&tenant);
            let prepared = &served.prepared;
            let result = monitor::run_and_persist(
                &prepared.plugin,
                &prepared.info,
                prepared.spec.clone(),
                &*store,
                trigger,
            )
            .await;
            progress.end(&tenant);
            let monitored = result.map_err(|error| error.to_string())?;
            // A rule that cannot be evaluated is recorded as such; the run stands.
            if let Err(error) = rules::evaluate_after_run_kept(
                &*store,
                &graphs,
                &monitored.run,
                &served.rules,
                &*served.transport,
                &RetryPolicy::default(),
            )
            .await
            {
                tracing::error!(tenant = %tenant, "rules not evaluated: {}", Untrusted(&error.to_string()));
            }
            Ok(monitored.run)
        })
    }
}

/// Checks everything, then serves until `shutdown` resolves: the scheduler stops
/// (runs in flight get `grace`), then the listener.
pub async fn serve(
    runtime: &Runtime,
    options: ServeOptions,
    default_component: DefaultComponent<'_>,
    extra_routes: Option<Router>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let access = security::AccessPolicy::for_listener(options.listen, options.token.clone())?;
    if let Some((queue_url, settings)) = options.queue.clone() {
        if let Some(file) = &options.tenants_file {
            return Err(ServeError::Config(ConfigError::new(
                file,
                "(file)",
                "serve --queue schedules the tenants in the store: load them with \
                 `integration-host tenants import FILE --store URL`, and start serve without --tenants",
            )));
        }
        return serve_fleet(
            options,
            access,
            &queue_url,
            settings,
            extra_routes,
            shutdown,
        )
        .await;
    }
    let Some(tenants_file) = &options.tenants_file else {
        return Err(ServeError::Config(ConfigError::new(
            std::path::Path::new("serve"),
            "--tenants",
            "required (without --queue, serve runs the tenants of a tenants file)",
        )));
    };
    let tenants = TenantsConfig::load(tenants_file)?;
    let mut rules_by_file: HashMap<PathBuf, Arc<Vec<Rule>>> = HashMap::new();
    for tenant in &tenants.tenants {
        if let Some(path) = &tenant.rules
            && !rules_by_file.contains_key(path)
        {
            let loaded = rules::load(path).map_err(|e| ServeError::Rules(e.to_string()))?;
            rules_by_file.insert(path.clone(), Arc::new(loaded));
        }
    }
    let progress = Arc::new(LiveProgress::default());
    let prepared = prepare_all(
        runtime,
        &tenants,
        default_component,
        &options.output,
        progress.clone(),
    )
    .await?;
    let store = graph_store::open(&options.store_url).await?;

    let mut served = HashMap::new();
    let mut scheduled = Vec::new();
    for (config, prepared) in tenants.tenants.iter().zip(prepared) {
        let rules = config
            .rules
            .as_ref()
            .and_then(|path| rules_by_file.get(path).cloned())
            .unwrap_or_default();
        let transport = Arc::new(EgressTransport::for_rules(&rules));
        served.insert(
            config.tenant.clone(),
            Arc::new(ServedTenant {
                prepared,
                rules,
                transport,
            }),
        );
        scheduled.push(ScheduledTenant {
            settings: config.monitoring.clone(),
        });
    }
    let names: BTreeSet<String> = served.keys().cloned().collect();
    let graphs = Arc::new(GraphCache::new(
        crate::monitor::graphs::DEFAULT_BUDGET_BYTES,
    ));
    let runner = Arc::new(ServeRunner {
        store: store.clone(),
        tenants: served,
        progress: progress.clone(),
        graphs: graphs.clone(),
    });
    let scheduler = Scheduler::new(
        store.clone(),
        scheduled,
        runner,
        tenants.max_concurrent_tenants,
    )
    .with_grace(options.grace);
    let state = Arc::new(AppState::new(
        store.clone(),
        scheduler.handle(),
        ServedTenants::Listed(names.clone()),
        progress,
        graphs,
    ));
    let mut app = api::router(state).merge(console::router());
    if let Some(extra) = extra_routes {
        app = app.merge(extra);
    }
    let (listener, address) = bind(options.listen).await?;
    println!(
        "serving {} tenant(s) from {}; store {}; API and console at http://{address}/",
        names.len(),
        tenants_file.display(),
        store.location()
    );
    let (stopped, server) = spawn_http(listener, app, access, shutdown);
    let scheduled = scheduler.run(stopped).await;
    let _ = server.await;
    scheduled?;
    Ok(())
}

/// Serves `app` behind the access rules (loopback Host, token, same-origin for state
/// changes, no CORS) until `shutdown` resolves; returns the stop signal the scheduler
/// watches and the server's task.
fn spawn_http(
    listener: tokio::net::TcpListener,
    app: Router,
    access: security::AccessPolicy,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> (watch::Receiver<bool>, tokio::task::JoinHandle<()>) {
    let app = security::protect(app, access);
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("stop requested");
        stop.send_replace(true);
    });
    let mut server_stopped = stopped.clone();
    let server = tokio::spawn(async move {
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_stopped.wait_for(|stop| *stop).await;
            })
            .await;
        if let Err(error) = result {
            tracing::error!("the HTTP server failed: {error}");
        }
    });
    (stopped, server)
}

async fn bind(listen: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), ServeError> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| ServeError::Listen {
            address: listen,
            source,
        })?;
    let address = listener.local_addr().map_err(|source| ServeError::Listen {
        address: listen,
        source,
    })?;
    Ok((listener, address))
}

/// `serve --queue`: the fleet's scheduler (jobs published for `worker`s, for every
/// tenant in the shared store) and the same API and console over that store.
async fn serve_fleet(
    options: ServeOptions,
    access: security::AccessPolicy,
    queue_url: &str,
    settings: crate::fleet::queue::QueueSettings,
    extra_routes: Option<Router>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let store = graph_store::open(&options.store_url).await?;
    let queue = crate::fleet::queue::Queue::connect(queue_url, settings).await?;
    // The workers' step progress, for the console's "Run now".
    let progress = Arc::new(LiveProgress::default());
    let notes = tokio::spawn(crate::fleet::scheduler::follow_progress(
        queue.progress_notes().await?,
        progress.clone(),
    ));
    let state = Arc::new(AppState::new(
        store.clone(),
        crate::monitor::scheduler::SchedulerHandle::detached(store.clone()),
        ServedTenants::Store,
        progress,
        Arc::new(GraphCache::new(
            crate::monitor::graphs::DEFAULT_BUDGET_BYTES,
        )),
    ));
    let mut app = api::router(state).merge(console::router());
    if let Some(extra) = extra_routes {
        app = app.merge(extra);
    }
    let (listener, address) = bind(options.listen).await?;
    let tenants = store.tenants().await?.len();
    println!(
        "scheduling the store's tenants ({tenants} now) on {queue_url}; store {}; API and console at http://{address}/",
        store.location()
    );
    let (stopped, server) = spawn_http(listener, app, access, shutdown);
    let scheduled =
        crate::fleet::scheduler::run(store, queue, Duration::from_secs(1), stopped).await;
    let _ = server.await;
    notes.abort();
    scheduled?;
    Ok(())
}
