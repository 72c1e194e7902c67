//! The plugin's own code, compiled natively, run on the same data as the component:
//! every step against the JumpCloud simulator over loopback HTTP, with a host that
//! only keeps keys. It prints the time spent parsing and converting (the step reports'
//! `convert_nanos`, measured the same way inside the component), so the component's
//! CPU cost can be stated as a ratio to native code.
//!
//! `cargo bench -p jumpcloud-integration --bench native -- [users] [groups] [applications]`
//! (defaults 10000 500 20), to compare with
//! `integration-host bench --users .. --groups .. --applications .. --latency-ms 0`.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use jumpcloud_integration::config::Config;
use jumpcloud_integration::error::GraphError;
use jumpcloud_integration::host::{BatchOutcome, Host};
use jumpcloud_integration::model::{Entity, MappedRelationship, Relationship};
use jumpcloud_integration::steps::{self, StepContext};
use jumpcloud_integration::transport::{
    HttpRequest, HttpResponse, Level, Logger, Transport, TransportError,
};
use jumpcloud_simulator::{Dataset, Simulator, SimulatorConfig, TenantSpec};

/// Blocking HTTP/1.1 over std, one connection per request, answered in order: enough
/// for a benchmark that measures conversion, not the network.
#[derive(Default)]
struct StdTransport {
    done: std::collections::VecDeque<(u64, Result<HttpResponse, TransportError>)>,
}

impl StdTransport {
    fn get(request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        let io = |e: std::io::Error| TransportError::Connection(e.to_string());
        let mut stream = TcpStream::connect(&request.authority).map_err(io)?;
        let mut head = format!(
            "GET {} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n",
            request.path_and_query, request.authority
        );
        for (name, value) in &request.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).map_err(io)?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).map_err(io)?;
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| TransportError::Connection("no header end".into()))?;
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| TransportError::Connection("bad status line".into()))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Ok(HttpResponse {
            status,
            headers,
            body: raw[split + 4..].to_vec(),
        })
    }
}

impl Transport for StdTransport {
    fn start(&mut self, id: u64, request: &HttpRequest) {
        self.done.push_back((id, Self::get(request)));
    }

    fn next_response(&mut self) -> Option<(u64, Result<HttpResponse, TransportError>)> {
        self.done.pop_front()
    }

    fn cancel_all(&mut self) {
        self.done.clear();
    }

    fn now(&mut self) -> Duration {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        START.get_or_init(Instant::now).elapsed()
    }

    fn sleep(&mut self, duration: Duration) {
        std::thread::sleep(duration);
    }

    fn random_unit(&mut self) -> f64 {
        0.5
    }
}

/// A host that keeps keys and step data, and counts objects.
#[derive(Default)]
struct CountingHost {
    keys: HashSet<String>,
    data: HashMap<String, String>,
    objects: u64,
}

impl Host for CountingHost {
    fn add_entities(&mut self, entities: Vec<Entity>) -> Result<BatchOutcome, GraphError> {
        self.objects += entities.len() as u64;
        self.keys.extend(entities.into_iter().map(|e| e.key));
        Ok(BatchOutcome::default())
    }

    fn add_relationships(
        &mut self,
        relationships: Vec<Relationship>,
    ) -> Result<BatchOutcome, GraphError> {
        self.objects += relationships.len() as u64;
        self.keys.extend(relationships.into_iter().map(|r| r.key));
        Ok(BatchOutcome::default())
    }

    fn add_mapped_relationships(
        &mut self,
        relationships: Vec<MappedRelationship>,
    ) -> Result<BatchOutcome, GraphError> {
        self.objects += relationships.len() as u64;
        Ok(BatchOutcome::default())
    }

    fn has_key(&self, key: &str) -> bool {
        self.keys.contains(key)
    }

    fn set_data(&mut self, key: &str, value: &str) {
        self.data.insert(key.to_owned(), value.to_owned());
    }

    fn get_data(&self, key: &str) -> Option<String> {
        self.data.get(key).cloned()
    }

    fn progress(&self, _step_id: &str, _done: u64, _total: Option<u64>) {}
}

struct Quiet;

impl Logger for Quiet {
    fn log(&self, _level: Level, _message: &str, _fields: &[(&str, &str)]) {}
}

fn main() {
    let numbers: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let users = numbers.first().copied().unwrap_or(10_000);
    let groups = numbers.get(1).copied().unwrap_or(500);
    let applications = numbers.get(2).copied().unwrap_or(20);

    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let simulator = runtime
        .block_on(Simulator::start(SimulatorConfig {
            dataset: Dataset::Generated(TenantSpec {
                users,
                groups,
                applications,
                ..TenantSpec::default()
            }),
            ..SimulatorConfig::default()
        }))
        .expect("start the simulator");
    let base_url = simulator.base_url();
    let config = Config::from_entries([
        ("apiKey", simulator.api_key()),
        ("baseUrl", base_url.as_str()),
    ])
    .expect("config");

    let mut host = CountingHost::default();
    let mut total = Duration::ZERO;
    let started = Instant::now();
    println!("native run: {users} users, {groups} groups, {applications} applications");
    for step in steps::STEPS {
        let report = steps::execute_step(
            step.id,
            StepContext {
                config: &config,
                transport: &mut StdTransport::default(),
                host: &mut host,
                log: &Quiet,
                concurrency: 8,
            },
        )
        .unwrap_or_else(|e| panic!("{}: {e}", step.id));
        let convert = Duration::from_nanos(report.convert_nanos);
        total += convert;
        println!(
            "  {:<32} convert {:>8.1} ms  requests {:>5}",
            step.id,
            convert.as_secs_f64() * 1000.0,
            report.http_requests
        );
    }
    println!("  objects                          {}", host.objects);
    println!(
        "  parse + convert, native          {:.1} ms",
        total.as_secs_f64() * 1000.0
    );
    println!(
        "  wall (incl. loopback HTTP)       {:.2} s",
        started.elapsed().as_secs_f64()
    );
}
