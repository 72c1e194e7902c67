//! `integration-host bench`: the real component in the real host against the JumpCloud
//! simulator (in a child process, so the host's memory figures are its own), with
//! tenant size, latency and concurrency as arguments. Prints wall time, requests,
//! objects per second, guest and host peak memory, cold and warm start, and the ratio
//! of wall time to the network floor (requests x latency / concurrency).

mod fleet;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use integration_host::config::{TenantConfig, TenantsConfig};
use integration_host::job::{self, Mode};
use integration_host::run_all::{self, DefaultComponent};
use integration_host::runtime::{Runtime, RuntimeOptions};
use integration_host::services::NoProgress;
use integration_host::steps;

/// What to measure (the `bench` command's arguments).
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Users in the generated tenant.
    #[arg(long, default_value_t = 10_000)]
    pub users: usize,
    /// User groups in the generated tenant.
    #[arg(long, default_value_t = 500)]
    pub groups: usize,
    /// Applications in the generated tenant.
    #[arg(long, default_value_t = 20)]
    pub applications: usize,
    /// Systems (devices) in the generated tenant; 1.2 per user when omitted.
    #[arg(long)]
    pub systems: Option<usize>,
    /// The component to measure instead of the bundled one (for instance an older
    /// build, for a before/after comparison on the same tenant).
    #[arg(long, value_name = "WASM")]
    pub component: Option<std::path::PathBuf>,
    /// Simulated network latency per request, in milliseconds.
    #[arg(long, default_value_t = 20)]
    pub latency_ms: u64,
    /// Requests in flight at once (the sandbox's maxConcurrentRequests).
    #[arg(long, default_value_t = 8)]
    pub concurrency: u32,
    /// Tenants of this size run side by side (run-all); 1 for a single run.
    #[arg(long, default_value_t = 1)]
    pub tenants: usize,
    /// The sandbox memory cap per tenant, in MiB.
    #[arg(long, default_value_t = 64)]
    pub memory_mib: u64,
    /// Persists to a SQLite store too: a baseline run, then a second run after the
    /// simulator retitled `--changed-percent` of the users; prints persist + diff time,
    /// its share of the run, and the store's size on disk.
    #[arg(long, conflicts_with = "tenants")]
    pub store: bool,
    /// Share of users changed between the two runs of `--store`.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub changed_percent: u32,
    /// Measures the fleet instead: `--tenants` tenants scheduled at once by a
    /// `serve --queue` child and run by `worker` children, for each count of
    /// `--fleet-workers`; needs --fleet-store and --fleet-queue.
    #[arg(long, conflicts_with = "store")]
    pub fleet: bool,
    /// The fleet's shared store (postgres://...).
    #[arg(long, value_name = "URL")]
    pub fleet_store: Option<String>,
    /// The fleet's NATS server (nats://...).
    #[arg(long, value_name = "URL")]
    pub fleet_queue: Option<String>,
    /// Worker counts to measure, one round each.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    pub fleet_workers: Vec<usize>,
    /// Job slots per worker (`worker --concurrency`).
    #[arg(long, default_value_t = 2)]
    pub worker_concurrency: usize,
    /// A round that has not finished after this long fails.
    #[arg(long, default_value_t = 1800)]
    pub fleet_timeout_seconds: u64,
}

/// The simulator child process; killed on drop.
struct SimulatorProcess {
    child: Child,
    base_url: String,
    api_key: String,
}

impl Drop for SimulatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_simulator(args: &BenchArgs) -> Result<SimulatorProcess, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let mut child = Command::new(exe)
        .args(["simulate", "--users", &args.users.to_string()])
        .args(["--groups", &args.groups.to_string()])
        .args(["--applications", &args.applications.to_string()])
        .args(["--latency-ms", &args.latency_ms.to_string()])
        .args(
            args.systems
                .map(|n| vec!["--systems".to_owned(), n.to_string()])
                .unwrap_or_default(),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the simulator: {e}"))?;
    let stdout = child.stdout.take().ok_or("no simulator stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut base_url = None;
    let mut api_key = None;
    for line in lines.by_ref().take(3) {
        let line = line.map_err(|e| format!("reading the simulator: {e}"))?;
        if let Some(url) = line.strip_prefix("JumpCloud simulator listening on ") {
            base_url = Some(url.trim().to_owned());
        }
        if let Some(key) = line.strip_prefix("API key: ") {
            api_key = Some(key.trim().to_owned());
        }
    }
    // Keep draining its stdout so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    match (base_url, api_key) {
        (Some(base_url), Some(api_key)) => Ok(SimulatorProcess {
            child,
            base_url,
            api_key,
        }),
        _ => Err("the simulator did not announce its address".into()),
    }
}

/// Peak and current resident memory of this process, in bytes (Linux).
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// User + system CPU time of this process (Linux, clock ticks of 10 ms).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after ") ".
    let after = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

pub async fn run(args: BenchArgs) -> Result<(), String> {
    let component: std::borrow::Cow<'static, [u8]> = match &args.component {
        Some(path) => std::fs::read(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?
            .into(),
        None => integration_host::BUNDLED_COMPONENT.into(),
    };
    let simulator = start_simulator(&args)?;
    if args.fleet {
        return fleet::run(&args, &simulator).await;
    }
    let scratch =
        std::env::temp_dir().join(format!("integration-host-bench-{}", std::process::id()));
    let cache = scratch.join("cache");

    // Cold start: compile; warm start: the compiled-code cache, in a fresh runtime.
    let cold_runtime = Runtime::new(RuntimeOptions {
        cache_dir: Some(cache.clone()),
    })
    .map_err(|e| e.to_string())?;
    let started = Instant::now();
    cold_runtime
        .load("bundled", &component)
        .map_err(|e| e.to_string())?;
    let cold = started.elapsed();
    drop(cold_runtime);
    let runtime = Runtime::new(RuntimeOptions {
        cache_dir: Some(cache),
    })
    .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let plugin = runtime
        .load("bundled", &component)
        .map_err(|e| e.to_string())?;
    let warm = started.elapsed();
    let info = plugin.describe().await.map_err(|e| e.to_string())?;
    let (_, rss_before) = rss();
    let cpu_before = cpu_time();
    let host = simulator.base_url.trim_start_matches("http://").to_owned();
    let sandbox = format!(
        "allowedHosts = [\"{host}\"]\nmaxConcurrentRequests = {}\nmemoryMiB = {}\n",
        args.concurrency, args.memory_mib
    );
    let integration = format!(
        "apiKey = \"{}\"\nbaseUrl = \"{}\"\n",
        simulator.api_key, simulator.base_url
    );

    let started = Instant::now();
    let (requests, objects, entities, relationships, guest_peak, convert_ms, statuses) = if args
        .tenants
        <= 1
    {
        let text = format!("tenant = \"bench\"\n[integration]\n{integration}[sandbox]\n{sandbox}");
        let tenant = TenantConfig::parse(Path::new("(bench)"), &text).map_err(|e| e.to_string())?;
        let spec = job::prepare(
            &tenant,
            &info,
            &[],
            Mode::Local,
            &scratch.join("out"),
            Arc::new(NoProgress),
        )
        .map_err(|e| e.to_string())?;
        let summary = steps::run_job(&plugin, &info, spec)
            .await
            .map_err(|e| e.to_string())?;
        let convert_ms: u64 = summary
            .integration_step_results
            .iter()
            .map(|s| s.convert_nanos)
            .sum::<u64>()
            / 1_000_000;
        (
            summary.run.http_requests,
            summary.run.entities + summary.run.relationships,
            summary.run.entities,
            summary.run.relationships,
            summary.run.guest_peak_memory_bytes,
            convert_ms,
            format!("{:?}", summary.run.status),
        )
    } else {
        let mut text = format!("maxConcurrentTenants = {}\n", args.tenants);
        for i in 0..args.tenants {
            text.push_str(&format!(
                "[[tenant]]\ntenant = \"bench-{i}\"\n[tenant.integration]\n{integration}[tenant.sandbox]\n{sandbox}"
            ));
        }
        let tenants =
            TenantsConfig::parse(Path::new("(bench)"), &text).map_err(|e| e.to_string())?;
        let report = run_all::run_all(
            &runtime,
            &tenants,
            DefaultComponent {
                name: "bundled",
                bytes: &component,
            },
            &scratch.join("out"),
            Arc::new(NoProgress),
        )
        .await
        .map_err(|e| e.to_string())?;
        let ok = report.tenants.iter().filter(|t| t.exit_code == 0).count();
        let entities: u64 = report.tenants.iter().map(|t| t.entities).sum();
        let relationships: u64 = report.tenants.iter().map(|t| t.relationships).sum();
        let mut requests = 0;
        let mut guest_peak = 0;
        for tenant in &report.tenants {
            let summary =
                std::fs::read_to_string(Path::new(&tenant.output_dir).join("summary.json"))
                    .unwrap_or_default();
            let summary: serde_json::Value = serde_json::from_str(&summary).unwrap_or_default();
            requests += summary["run"]["httpRequests"].as_u64().unwrap_or(0);
            guest_peak =
                guest_peak.max(summary["run"]["guestPeakMemoryBytes"].as_u64().unwrap_or(0));
        }
        (
            requests,
            entities + relationships,
            entities,
            relationships,
            guest_peak,
            0,
            format!("{ok}/{} tenants succeeded", report.tenants.len()),
        )
    };
    let wall = started.elapsed();
    let cpu = cpu_time().saturating_sub(cpu_before);
    let store_figures = if args.store {
        Some(
            bench_store(
                &args,
                &simulator,
                &plugin,
                &info,
                &integration,
                &sandbox,
                &scratch,
            )
            .await?,
        )
    } else {
        None
    };
    let (peak_rss, _) = rss();
    let _ = std::fs::remove_dir_all(&scratch);

    let floor = Duration::from_millis(args.latency_ms) * requests as u32
        / args.concurrency.max(1)
        / args.tenants.max(1) as u32;
    println!(
        "bench: {} tenant(s) x {} users, {} groups, {} applications, latency {} ms, {} requests in flight",
        args.tenants.max(1),
        args.users,
        args.groups,
        args.applications,
        args.latency_ms,
        args.concurrency
    );
    println!("  result               {statuses}");
    println!("  wall time            {:.3} s", wall.as_secs_f64());
    println!(
        "  host CPU time        {:.3} s (includes wasm execution)",
        cpu.as_secs_f64()
    );
    println!("  requests             {requests}");
    println!("  entities             {entities}");
    println!("  relationships        {relationships}");
    println!(
        "  objects per second   {:.0}",
        objects as f64 / wall.as_secs_f64()
    );
    if args.latency_ms > 0 {
        println!(
            "  network floor        {:.3} s (requests x latency / concurrency{})",
            floor.as_secs_f64(),
            if args.tenants > 1 { " / tenants" } else { "" }
        );
        println!(
            "  wall / floor         {:.2}",
            wall.as_secs_f64() / floor.as_secs_f64().max(1e-9)
        );
    }
    if args.tenants <= 1 {
        println!("  guest convert time   {convert_ms} ms (parse + convert inside the component)");
    }
    println!(
        "  guest peak memory    {:.1} MiB{}",
        mib(guest_peak),
        if args.tenants > 1 {
            " (largest tenant)"
        } else {
            ""
        }
    );
    println!(
        "  host peak RSS        {:.1} MiB (before the run {:.1} MiB)",
        mib(peak_rss),
        mib(rss_before)
    );
    if args.tenants > 1 {
        println!(
            "  host RSS per tenant  {:.1} MiB ((peak - before) / tenants)",
            mib(peak_rss.saturating_sub(rss_before)) / args.tenants as f64
        );
    }
    if let Some(figures) = &store_figures {
        figures.print();
    }
    println!(
        "  cold start           {:.1} ms (compile the component)",
        cold.as_secs_f64() * 1000.0
    );
    println!(
        "  warm start           {:.1} ms (compiled-code cache + pre-instantiation)",
        warm.as_secs_f64() * 1000.0
    );
    Ok(())
}

/// One run through the store: the run's wall time and the persist (read the output,
/// diff, one transaction) after it.
struct StoredRound {
    run: Duration,
    persist: Duration,
    changes: graph_store::ChangeCounts,
}

struct StoreFigures {
    changed_percent: u32,
    baseline: StoredRound,
    second: StoredRound,
    size_on_disk: u64,
}

impl StoreFigures {
    fn print(&self) {
        let share = |round: &StoredRound| {
            100.0 * round.persist.as_secs_f64() / round.run.as_secs_f64().max(1e-9)
        };
        println!(
            "  store: baseline      run {:.3} s, persist + diff {:.3} s (+{:.1}% of the run), {}",
            self.baseline.run.as_secs_f64(),
            self.baseline.persist.as_secs_f64(),
            share(&self.baseline),
            self.baseline.changes
        );
        println!(
            "  store: {}% changed    run {:.3} s, persist + diff {:.3} s (+{:.1}% of the run), {}",
            self.changed_percent,
            self.second.run.as_secs_f64(),
            self.second.persist.as_secs_f64(),
            share(&self.second),
            self.second.changes
        );
        println!(
            "  store size on disk   {:.1} MiB (SQLite, database + WAL)",
            mib(self.size_on_disk)
        );
    }
}

/// Two runs of the tenant persisted to a fresh SQLite store, the simulator retitling
/// users between them (its `POST /_sim/mutate`).
async fn bench_store(
    args: &BenchArgs,
    simulator: &SimulatorProcess,
    plugin: &integration_host::runtime::Plugin,
    info: &integration_host::bindings::PluginInfo,
    integration: &str,
    sandbox: &str,
    scratch: &Path,
) -> Result<StoreFigures, String> {
    let db = scratch.join("store.db");
    let store = graph_store::open(&format!("sqlite://{}", db.display()))
        .await
        .map_err(|e| e.to_string())?;
    let text = format!("tenant = \"bench\"\n[integration]\n{integration}[sandbox]\n{sandbox}");
    let tenant = TenantConfig::parse(Path::new("(bench)"), &text).map_err(|e| e.to_string())?;
    store
        .upsert_tenant(&tenant.monitoring)
        .await
        .map_err(|e| e.to_string())?;
    let mut rounds = Vec::new();
    for round in 0..2 {
        if round == 1 {
            mutate(
                simulator,
                &format!("retitle-users:{}", args.changed_percent),
            )?;
        }
        let output = scratch.join(format!("store-run-{round}"));
        let spec = job::prepare(
            &tenant,
            info,
            &[],
            Mode::Local,
            &output,
            Arc::new(NoProgress),
        )
        .map_err(|e| e.to_string())?;
        let run = store
            .begin_run("bench", graph_store::Trigger::Manual, 0)
            .await
            .map_err(|e| e.to_string())?;
        let started = Instant::now();
        let summary = steps::run_job(plugin, info, spec)
            .await
            .map_err(|e| e.to_string())?;
        let run_time = started.elapsed();
        let started = Instant::now();
        let objects = graph_store::sdk::OutputReader::open(&output).map_err(|e| e.to_string())?;
        let report = store
            .persist_run(
                run,
                integration_host::monitor::outcome_of(&summary, None),
                Box::new(objects),
            )
            .await
            .map_err(|e| e.to_string())?;
        rounds.push(StoredRound {
            run: run_time,
            persist: started.elapsed(),
            changes: report.changes,
        });
    }
    drop(store);
    let size_on_disk = ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| std::fs::metadata(format!("{}{suffix}", db.display())).ok())
        .map(|m| m.len())
        .sum();
    let second = rounds.pop().ok_or("no second round")?;
    let baseline = rounds.pop().ok_or("no baseline round")?;
    Ok(StoreFigures {
        changed_percent: args.changed_percent,
        baseline,
        second,
        size_on_disk,
    })
}

/// Asks the simulator child for a mutation (`POST /_sim/mutate`).
fn mutate(simulator: &SimulatorProcess, mutation: &str) -> Result<(), String> {
    use std::io::{Read, Write};
    let authority = simulator.base_url.trim_start_matches("http://");
    let authority = authority.split('/').next().unwrap_or(authority);
    let mut stream = std::net::TcpStream::connect(authority)
        .map_err(|e| format!("cannot reach the simulator: {e}"))?;
    write!(
        stream,
        "POST /_sim/mutate?mutation={mutation} HTTP/1.1\r\nHost: {authority}\r\nx-api-key: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        simulator.api_key
    )
    .map_err(|e| format!("mutate: {e}"))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| format!("mutate: {e}"))?;
    if response.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        Err(format!(
            "the simulator refused the mutation: {}",
            response.lines().next().unwrap_or("")
        ))
    }
}
