//! The process-wide runtime (one engine, one linker, an epoch ticker), loading of
//! components with an on-disk cache of compiled code, and the per-run store.
//!
//! Three roles, three types: [`Runtime`] is shared by every run of the process,
//! [`Plugin`] is one loaded component (pre-instantiated once), [`PluginRun`] is one
//! tenant run in a fresh `Store` that shares nothing with other runs.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, ResourceLimiter, Store};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::bindings::{
    ConfigEntry, Integration, IntegrationError, IntegrationPre, PluginInfo, StepReport,
};
use crate::graph::{GraphStore, SharedGraph, StoreFailure};
use crate::sandbox::egress::{EgressHooks, EgressMeter};
use crate::sandbox::limits::LimitExceeded;
use crate::sandbox::names::{InvalidPluginInfo, check_plugin_info};
use crate::sandbox::policy::SandboxPolicy;
use crate::services::{DeadlinePassed, GuestLog, ProgressSink};

/// How often the epoch advances: the granularity of the CPU/time limit.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Ticks of guest execution between yields to the executor (and deadline checks).
const YIELD_TICKS: u64 = 5;
/// Captured guest stdout/stderr per run; the rest is dropped.
const STDIO_CAPTURE_BYTES: usize = 64 * 1024;
/// Table elements a guest may grow to (each costs a pointer of host memory).
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a WebAssembly component: {reason}")]
    NotAComponent { path: String, reason: String },
    #[error("{path}: does not implement the secgraph:integration@0.1.0 world: {reason}")]
    WrongWorld { path: String, reason: String },
}

/// How a run ended abnormally (a trap or a limit), as opposed to a plugin error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunFailure {
    #[error("time limit of {0:?} exceeded")]
    TimeLimit(Duration),
    #[error("memory limit of {limit_mib} MiB exceeded (the guest asked for {desired_mib} MiB)")]
    MemoryLimit { limit_mib: u64, desired_mib: u64 },
    /// The plugin asked the host to hold more than a budget of the run allows.
    #[error(transparent)]
    LimitExceeded(LimitExceeded),
    #[error("the plugin trapped: {0}")]
    Trap(String),
}

impl RunFailure {
    /// The error kind of `summary.json`: `time-limit`, `memory-limit`,
    /// `limit-exceeded` or `trap`.
    pub fn kind(&self) -> &'static str {
        match self {
            RunFailure::TimeLimit(_) => "time-limit",
            RunFailure::MemoryLimit { .. } => "memory-limit",
            RunFailure::LimitExceeded(_) => "limit-exceeded",
            RunFailure::Trap(_) => "trap",
        }
    }
}

/// Why a plugin's `describe()` gave nothing the host can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DescribeError {
    #[error(transparent)]
    Failure(#[from] RunFailure),
    /// It declares a name the host refuses (a step id that is not a folder name...).
    #[error("refused: {0}")]
    Invalid(#[from] InvalidPluginInfo),
}

/// The error a limiter raises; recognised again when the trap surfaces.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded: the guest asked for {desired} bytes")]
struct MemoryLimitExceeded {
    limit: u64,
    desired: u64,
}

/// Settings of the process-wide runtime.
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// Where compiled components are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
}

impl RuntimeOptions {
    /// `$INTEGRATION_HOST_CACHE_DIR`, else `$XDG_CACHE_HOME/integration-host`, else
    /// `~/.cache/integration-host`.
    pub fn from_env() -> RuntimeOptions {
        let dir = std::env::var_os("INTEGRATION_HOST_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("XDG_CACHE_HOME")
                    .map(|d| PathBuf::from(d).join("integration-host"))
            })
            .or_else(|| {
                std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".cache/integration-host"))
            });
        RuntimeOptions { cache_dir: dir }
    }
}

/// One engine and linker for the whole process.
pub struct Runtime {
    engine: Engine,
    linker: Linker<RunState>,
    options: RuntimeOptions,
}

impl Runtime {
    pub fn new(options: RuntimeOptions) -> wasmtime::Result<Runtime> {
        let mut config = Config::new();
        // Time limits: the epoch advances on a timer thread; a store traps past its deadline.
        config.epoch_interruption(true);
        let engine = Engine::new(&config)?;

        let mut linker = Linker::new(&engine);
        // All of wasi p2 is linked because Rust's std imports parts of it (environment,
        // stdio, preopens); the `WasiCtx` of a run grants none of it (no files, no env,
        // no sockets).
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        crate::services::add_to_linker(&mut linker)?;

        // The ticker lives as long as the engine does, through every `Plugin` and store
        // that holds it: a run must keep its deadline after the `Runtime` that loaded
        // its plugin is gone (the CLI drops it once the plugin is loaded).
        let ticker_engine = engine.weak();
        std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(EPOCH_TICK);
                    match ticker_engine.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })?;

        Ok(Runtime {
            engine,
            linker,
            options,
        })
    }

    /// Loads a component file.
    pub fn load_file(&self, path: &Path) -> Result<Plugin, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.display().to_string(),
            source,
        })?;
        self.load(&path.display().to_string(), &bytes)
    }

    /// Loads component bytes (`name` is only for messages), compiling them or taking
    /// the compiled code from the cache, and pre-instantiates them once.
    pub fn load(&self, name: &str, bytes: &[u8]) -> Result<Plugin, LoadError> {
        let started = Instant::now();
        // Refuse core modules and other files up front with a clear message.
        if !wasmparser_is_component(bytes) {
            return Err(LoadError::NotAComponent {
                path: name.into(),
                reason: "the file does not start with a component header".into(),
            });
        }
        let (component, cache_hit) =
            self.compile_cached(bytes)
                .map_err(|error| LoadError::NotAComponent {
                    path: name.into(),
                    reason: format!("{error:#}"),
                })?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .and_then(IntegrationPre::new)
            .map_err(|error| LoadError::WrongWorld {
                path: name.into(),
                reason: format!("{error:#}"),
            })?;
        tracing::debug!(component = name, cache_hit, elapsed = ?started.elapsed(), "component loaded");
        Ok(Plugin {
            engine: self.engine.clone(),
            pre,
            load_time: started.elapsed(),
            cache_hit,
        })
    }

    /// Compiled code is cached on disk, keyed by the component's hash and the engine's
    /// compatibility hash (wasmtime version, settings, CPU features): a key mismatch
    /// can never load stale code.
    fn compile_cached(&self, bytes: &[u8]) -> wasmtime::Result<(Component, bool)> {
        let Some(dir) = &self.options.cache_dir else {
            return Ok((Component::new(&self.engine, bytes)?, false));
        };
        let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut engine_hash);
        let mut digest = Sha256::new();
        digest.update(bytes);
        digest.update(engine_hash.finish().to_le_bytes());
        let key: String = digest
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let path = dir.join(format!("{key}.cwasm"));
        if path.exists() {
            // SAFETY: the file was written by `Component::serialize` of an engine with
            // the same compatibility hash (it is in the file name), in a directory
            // owned by this host; wasmtime checks version and settings again.
            match unsafe { Component::deserialize_file(&self.engine, &path) } {
                Ok(component) => return Ok((component, true)),
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "ignoring a bad cache entry")
                }
            }
        }
        let component = Component::new(&self.engine, bytes)?;
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(dir)?;
            let serialized = component.serialize().map_err(std::io::Error::other)?;
            // Write then rename, so a concurrent reader never sees half a file.
            let partial = dir.join(format!("{key}.{}.partial", std::process::id()));
            std::fs::write(&partial, serialized)?;
            std::fs::rename(partial, &path)
        };
        if let Err(error) = write() {
            tracing::warn!(dir = %dir.display(), %error, "cannot cache compiled code");
        }
        Ok((component, false))
    }
}

/// The component binary format: magic, then layer 1 (component) in the version field.
fn wasmparser_is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[0..4] == *b"\0asm" && bytes[6..8] == [1, 0]
}

/// One loaded component.
#[derive(Clone)]
pub struct Plugin {
    engine: Engine,
    pre: IntegrationPre<RunState>,
    /// How long loading took (compile or cache read, plus pre-instantiation).
    pub load_time: Duration,
    /// Whether compiled code came from the cache.
    pub cache_hit: bool,
}

/// Everything a run needs besides the component.
/// Several stores of one run (steps side by side) share all of it but the store.
#[derive(Clone)]
pub struct RunSetup {
    pub tenant: Arc<str>,
    pub policy: Arc<SandboxPolicy>,
    pub graph: SharedGraph,
    pub log: GuestLog,
    pub progress: Arc<dyn ProgressSink>,
    /// Outgoing requests in flight, for the whole run.
    pub slots: Arc<Semaphore>,
    /// When the whole run must end.
    pub deadline: Instant,
}

impl RunSetup {
    pub fn new(
        tenant: Arc<str>,
        policy: Arc<SandboxPolicy>,
        graph: GraphStore,
        log: GuestLog,
        progress: Arc<dyn ProgressSink>,
    ) -> RunSetup {
        let deadline = Instant::now() + policy.timeout;
        // The run's budgets and deadline hold in the graph and the log whoever made them.
        let graph = graph.with_budgets(policy.budgets).with_deadline(deadline);
        let log = log.with_budgets(&policy.budgets);
        RunSetup {
            slots: Arc::new(Semaphore::new(
                policy.max_concurrent_requests.max(1) as usize
            )),
            deadline,
            tenant,
            policy,
            graph: Arc::new(std::sync::Mutex::new(graph)),
            log,
            progress,
        }
    }
}

impl Plugin {
    /// Calls `describe()` in a throwaway store, and checks every name in it the host
    /// will use as a folder, a key or an environment variable (`sandbox::names`).
    pub async fn describe(&self) -> Result<PluginInfo, DescribeError> {
        let mut run = self.start(throwaway_setup()).await?;
        let info = run.describe().await?;
        check_plugin_info(&info)?;
        Ok(info)
    }

    /// Calls `check-config()` in a throwaway store: the offline configuration check.
    pub async fn check_config(
        &self,
        config: &[ConfigEntry],
    ) -> Result<Result<(), IntegrationError>, RunFailure> {
        let mut run = self.start(throwaway_setup()).await?;
        run.check_config(config).await
    }

    /// Instantiates the component in a fresh store with the run's limits.
    pub async fn start(&self, setup: RunSetup) -> Result<PluginRun, RunFailure> {
        let policy = setup.policy.clone();
        let meter = Arc::new(EgressMeter::default());
        let stdout = MemoryOutputPipe::new(STDIO_CAPTURE_BYTES);
        let stderr = MemoryOutputPipe::new(STDIO_CAPTURE_BYTES);
        // No preopened directories, no environment, no arguments, no sockets: the guest
        // reaches the world only through wasi-http and our imports.
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let state = RunState {
            table: ResourceTable::new(),
            wasi,
            http: WasiHttpCtx::new(),
            hooks: EgressHooks::new(
                policy.clone(),
                meter.clone(),
                setup.tenant.clone(),
                setup.slots.clone(),
                setup.deadline,
            ),
            limiter: MemoryLimiter {
                limit: policy.memory_bytes,
                peak: 0,
            },
            graph: setup.graph,
            deadline: setup.deadline,
            step: String::new(),
            log: setup.log,
            progress: setup.progress,
            max_concurrent_requests: policy.max_concurrent_requests,
            stdout,
            stderr,
            meter,
            retries: 0,
        };
        let mut store = Store::new(&self.engine, state);
        // Memory: every linear memory and table growth goes through the limiter.
        store.limiter(|state| &mut state.limiter);
        // CPU and time: every few ticks of guest execution the guest yields to the async
        // executor (a spinning tenant must not hold a worker thread its neighbours need),
        // and past the run's deadline it traps.
        let deadline = setup.deadline;
        store.set_epoch_deadline(YIELD_TICKS);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Ok(wasmtime::UpdateDeadline::Interrupt)
            } else {
                Ok(wasmtime::UpdateDeadline::Yield(YIELD_TICKS))
            }
        });
        let bindings = guard(
            deadline,
            policy.timeout,
            self.pre.instantiate_async(&mut store),
        )
        .await?;
        Ok(PluginRun {
            store,
            bindings,
            deadline,
            timeout: policy.timeout,
        })
    }
}

/// A store for a call that makes no request and stores nothing (describe, check-config):
/// no egress, a short deadline.
fn throwaway_setup() -> RunSetup {
    RunSetup::new(
        Arc::from("(plugin)"),
        Arc::new(SandboxPolicy {
            timeout: Duration::from_secs(10),
            ..SandboxPolicy::default()
        }),
        GraphStore::new(Box::new(crate::output::NullSink)),
        GuestLog::new(Arc::from("(plugin)"), Vec::new(), 1000),
        Arc::new(crate::services::NoProgress),
    )
}

/// One tenant run: a store and an instance, used for validate and every step.
pub struct PluginRun {
    store: Store<RunState>,
    bindings: Integration,
    deadline: Instant,
    timeout: Duration,
}

impl PluginRun {
    pub async fn describe(&mut self) -> Result<PluginInfo, RunFailure> {
        let plugin = self.bindings.secgraph_integration_plugin();
        guard(
            self.deadline,
            self.timeout,
            plugin.call_describe(&mut self.store),
        )
        .await
    }

    pub async fn check_config(
        &mut self,
        config: &[ConfigEntry],
    ) -> Result<Result<(), IntegrationError>, RunFailure> {
        let plugin = self.bindings.secgraph_integration_plugin();
        guard(
            self.deadline,
            self.timeout,
            plugin.call_check_config(&mut self.store, config),
        )
        .await
    }

    pub async fn validate(
        &mut self,
        config: &[ConfigEntry],
    ) -> Result<Result<(), IntegrationError>, RunFailure> {
        let plugin = self.bindings.secgraph_integration_plugin();
        guard(
            self.deadline,
            self.timeout,
            plugin.call_validate(&mut self.store, config),
        )
        .await
    }

    pub async fn execute_step(
        &mut self,
        step_id: &str,
        config: &[ConfigEntry],
    ) -> Result<Result<StepReport, IntegrationError>, RunFailure> {
        self.store.data_mut().step = step_id.to_owned();
        self.store.data_mut().log.set_step(step_id);
        let plugin = self.bindings.secgraph_integration_plugin();
        let result = guard(
            self.deadline,
            self.timeout,
            plugin.call_execute_step(&mut self.store, step_id, config),
        )
        .await;
        self.store.data_mut().log.set_step("");
        result
    }

    pub fn state(&mut self) -> &mut RunState {
        self.store.data_mut()
    }

    /// The store's data, once the run is over.
    pub fn into_state(self) -> RunState {
        self.store.into_data()
    }
}

/// Runs a guest call under the wall-clock backstop and turns traps into [`RunFailure`].
async fn guard<T>(
    deadline: Instant,
    timeout: Duration,
    call: impl Future<Output = wasmtime::Result<T>>,
) -> Result<T, RunFailure> {
    // The epoch deadline stops a spinning guest; this backstop also stops one blocked
    // in a host call (a request that never answers), a little after the deadline.
    let backstop = deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(2);
    match tokio::time::timeout(backstop, call).await {
        Err(_) => Err(RunFailure::TimeLimit(timeout)),
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(classify_trap(error, timeout)),
    }
}

fn classify_trap(error: wasmtime::Error, timeout: Duration) -> RunFailure {
    if let Some(limit) = error.downcast_ref::<LimitExceeded>() {
        return RunFailure::LimitExceeded(limit.clone());
    }
    match error.downcast_ref::<StoreFailure>() {
        Some(StoreFailure::Limit(limit)) => return RunFailure::LimitExceeded(limit.clone()),
        Some(StoreFailure::Deadline) => return RunFailure::TimeLimit(timeout),
        _ => {}
    }
    if error.downcast_ref::<DeadlinePassed>().is_some() {
        return RunFailure::TimeLimit(timeout);
    }
    if let Some(limit) = error.downcast_ref::<MemoryLimitExceeded>() {
        return RunFailure::MemoryLimit {
            limit_mib: limit.limit >> 20,
            desired_mib: limit.desired.div_ceil(1 << 20),
        };
    }
    if let Some(wasmtime::Trap::Interrupt) = error.downcast_ref::<wasmtime::Trap>() {
        return RunFailure::TimeLimit(timeout);
    }
    RunFailure::Trap(format!("{error:#}"))
}

/// Caps each linear memory and table, and records the peak memory.
pub struct MemoryLimiter {
    limit: u64,
    peak: u64,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let desired = desired as u64;
        if desired > self.limit {
            // An error, not `Ok(false)`: the guest traps with a message that names the
            // limit instead of seeing a failed allocation and aborting obscurely.
            return Err(MemoryLimitExceeded {
                limit: self.limit,
                desired,
            }
            .into());
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// The data of one store: wasi contexts, sandbox state, and the job's graph.
pub struct RunState {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: EgressHooks,
    limiter: MemoryLimiter,
    pub graph: SharedGraph,
    /// When the run must end: host calls check it too.
    pub deadline: Instant,
    /// The step this store is running: objects it adds belong to it.
    pub step: String,
    pub log: GuestLog,
    pub progress: Arc<dyn ProgressSink>,
    pub max_concurrent_requests: u32,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
    pub meter: Arc<EgressMeter>,
    /// Retries the plugin reported (`progress.retrying`), over the whole run.
    pub retries: u64,
}

impl RunState {
    /// The largest linear memory the guest grew to, in bytes.
    pub fn guest_peak_memory(&self) -> u64 {
        self.limiter.peak
    }

    /// What the guest wrote to stdout and stderr (capped).
    pub fn captured_stdio(&self) -> (Vec<u8>, Vec<u8>) {
        (
            self.stdout.contents().to_vec(),
            self.stderr.contents().to_vec(),
        )
    }
}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for RunState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Used by `services::add_to_linker` to hand the state to the generated bindings.
pub(crate) type StateData = HasSelf<RunState>;
