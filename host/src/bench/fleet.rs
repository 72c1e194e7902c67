//! `bench --fleet`: throughput of the fleet on real servers. For each worker count,
//! `--tenants` tenants (all served by one simulator child) are scheduled at once by a
//! `serve --queue` child and run by that many `worker` children; measured from the
//! moment the scheduler starts (every tenant is due then) to each tenant's persisted
//! run: tenants per minute, p50/p95 time from due to done, and each worker's peak RSS.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{BenchArgs, SimulatorProcess, mib};

/// A child process, ended by its PID (SIGTERM, then SIGKILL) when dropped.
struct Proc(Child);

impl Proc {
    fn peak_rss(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The tenants' secret, as the workers read it: a reference in the store, the value
/// in the workers' environment.
const API_KEY_VAR: &str = "BENCH_FLEET_JUMPCLOUD_API_KEY";

fn spawn(args: &[String], api_key: &str, log: &Path) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = file.try_clone().map_err(|e| e.to_string())?;
    Command::new(exe)
        .args(args)
        .env("RUST_LOG", "warn")
        .env(API_KEY_VAR, api_key)
        .stdout(Stdio::piped())
        .stderr(err)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", args[0]))
}

/// Starts a worker and waits for its "ready" line (component compiled, connected).
fn start_worker(args: Vec<String>, api_key: &str, log: &Path) -> Result<Proc, String> {
    let mut child = spawn(&args, api_key, log)?;
    let stdout = child.stdout.take().ok_or("no worker stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let ready = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|line| line.starts_with("worker ") && line.contains(" ready"));
    std::thread::spawn(move || lines.for_each(drop));
    if !ready {
        let _ = child.kill();
        let text = std::fs::read_to_string(log).unwrap_or_default();
        return Err(format!("a worker did not start:\n{text}"));
    }
    Ok(Proc(child))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub async fn run(args: &BenchArgs, simulator: &SimulatorProcess) -> Result<(), String> {
    let store_url = args
        .fleet_store
        .clone()
        .ok_or("--fleet needs --fleet-store postgres://...")?;
    let queue_url = args
        .fleet_queue
        .clone()
        .ok_or("--fleet needs --fleet-queue nats://...")?;
    let store = graph_store::open(&store_url)
        .await
        .map_err(|e| e.to_string())?;
    let scratch = std::env::temp_dir().join(format!(
        "integration-host-bench-fleet-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    let host = simulator.base_url.trim_start_matches("http://").to_owned();
    let stamp = graph_store::now_ms();
    println!(
        "bench --fleet: {} tenants x {} users, {} groups, latency {} ms, {} requests in flight per tenant, {} job slot(s) per worker",
        args.tenants,
        args.users,
        args.groups,
        args.latency_ms,
        args.concurrency,
        args.worker_concurrency
    );
    println!("  workers  tenants/min  p50 due->done  p95 due->done  wall     peak RSS per worker");
    for &workers in &args.fleet_workers {
        let round = format!("b{stamp}w{workers}");
        let mut text = String::new();
        for i in 0..args.tenants {
            text.push_str(&format!(
                "[[tenant]]\ntenant = \"{round}-{i}\"\npollingInterval = \"ONE_DAY\"\n\
                 [tenant.integration]\napiKey = {{ env = \"{API_KEY_VAR}\" }}\nbaseUrl = \"{}\"\n\
                 [tenant.sandbox]\nallowedHosts = [\"{host}\"]\nmaxConcurrentRequests = {}\nmemoryMiB = {}\n",
                simulator.base_url, args.concurrency, args.memory_mib
            ));
        }
        let tenants_file = scratch.join(format!("{round}.toml"));
        std::fs::write(&tenants_file, text).map_err(|e| e.to_string())?;
        let import_log = scratch.join(format!("{round}-import.log"));
        let imported = spawn(
            &[
                "tenants".into(),
                "import".into(),
                tenants_file.display().to_string(),
                "--store".into(),
                store_url.clone(),
            ],
            &simulator.api_key,
            &import_log,
        )?
        .wait()
        .map_err(|e| e.to_string())?;
        if !imported.success() {
            let text = std::fs::read_to_string(&import_log).unwrap_or_default();
            return Err(format!("tenants import failed:\n{text}"));
        }
        let common = |role: &str| -> Vec<String> {
            vec![
                role.to_owned(),
                "--store".into(),
                store_url.clone(),
                "--queue".into(),
                queue_url.clone(),
                "--queue-namespace".into(),
                round.clone(),
            ]
        };
        let mut procs = Vec::new();
        for w in 0..workers {
            let mut worker = common("worker");
            worker.extend([
                "--name".into(),
                format!("w{w}"),
                "--output".into(),
                scratch.join("out").display().to_string(),
                "--concurrency".into(),
                args.worker_concurrency.to_string(),
            ]);
            procs.push(start_worker(
                worker,
                &simulator.api_key,
                &scratch.join(format!("{round}-w{w}.log")),
            )?);
        }
        let started = Instant::now();
        let due_ms = graph_store::now_ms();
        let mut scheduler = common("serve");
        scheduler.extend(["--listen".into(), "127.0.0.1:0".into()]);
        let _scheduler = Proc(spawn(
            &scheduler,
            "",
            &scratch.join(format!("{round}-s.log")),
        )?);

        // Until every tenant has a persisted run.
        let deadline = Duration::from_secs(args.fleet_timeout_seconds);
        let done = loop {
            let states = store.tenants().await.map_err(|e| e.to_string())?;
            let finished: Vec<i64> = states
                .iter()
                .filter(|s| s.settings.tenant.starts_with(&format!("{round}-")))
                .filter_map(|s| s.last_run.as_ref())
                .filter(|r| r.persisted)
                .filter_map(|r| r.finished_at_ms)
                .collect();
            if finished.len() >= args.tenants {
                break finished;
            }
            if started.elapsed() > deadline {
                return Err(format!(
                    "{workers} worker(s): only {} of {} tenants done after {} s (logs in {})",
                    finished.len(),
                    args.tenants,
                    deadline.as_secs(),
                    scratch.display()
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let wall = started.elapsed();
        let mut latencies: Vec<f64> = done
            .iter()
            .map(|f| (f - due_ms).max(0) as f64 / 1000.0)
            .collect();
        latencies.sort_by(f64::total_cmp);
        let rss: Vec<String> = procs
            .iter()
            .map(|p| format!("{:.0}", mib(p.peak_rss())))
            .collect();
        let last = latencies.last().copied().unwrap_or(wall.as_secs_f64());
        println!(
            "  {workers:>7}  {:>11.1}  {:>12.1} s  {:>12.1} s  {:>5.1} s  {} MiB",
            args.tenants as f64 / last.max(1e-9) * 60.0,
            percentile(&latencies, 50.0),
            percentile(&latencies, 95.0),
            wall.as_secs_f64(),
            rss.join(" / ")
        );
        drop(procs);
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}
