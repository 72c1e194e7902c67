//! The web console in a real headless Chromium (WebDriver), against the real
//! `integration-host serve` binary whose store the real component fills from the
//! JumpCloud simulator. Each page is photographed into `target/console-screenshots/`.
//!
//! Skips with a message when chromium or chromedriver is missing (see `browser/mod.rs`).

mod browser;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use browser::Browser;
use jumpcloud_simulator::{Dataset, Mutation, Simulator, SimulatorConfig, TenantSpec};
use serde_json::{Value, json};

/// A scratch folder per test, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("console-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn host_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_integration-host"));
    command
        .env(
            "INTEGRATION_HOST_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("component-cache"),
        )
        .env_remove("JUMPCLOUD_API_KEY")
        .env_remove("INTEGRATION_HOST_TOKEN")
        .env("RUST_LOG", "warn");
    command
}

/// A running `integration-host serve`, stopped when dropped.
struct Serve {
    child: Child,
    url: String,
}

impl Serve {
    /// Starts `serve` on 127.0.0.1 (a free port) and reads the address it prints.
    fn start(tenants: &Path, store: &Path, output: &Path) -> Serve {
        let mut command = host_command();
        command
            .args(["serve", "--tenants"])
            .arg(tenants)
            .arg("--store")
            .arg(format!("sqlite://{}", store.display()))
            .arg("--output")
            .arg(output)
            .args(["--listen", "127.0.0.1:0"]);
        Serve::spawn(command)
    }

    /// Starts the command (which serves) and reads the address it prints.
    fn spawn(mut command: Command) -> Serve {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start integration-host serve");
        let streams = [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ];
        // From here on the guard kills and reaps the child, whatever happens.
        let mut serve = Serve {
            child,
            url: String::new(),
        };
        let (lines, seen) = mpsc::channel::<String>();
        for stream in streams {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    eprintln!("serve: {line}");
                    let _ = lines.send(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let line = seen
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("serve printed no http://127.0.0.1:PORT address within 120 s");
            // serve's own line ("... API and console at http://127.0.0.1:PORT/"), not
            // the simulator's address the demo prints before it.
            let Some(console) = line.find("console at ") else {
                continue;
            };
            if let Some(at) = line[console..]
                .find("http://127.0.0.1:")
                .map(|i| console + i)
            {
                let url: String = line[at..]
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != ')' && *c != ',')
                    .collect();
                serve.url = url.trim_end_matches('/').to_owned();
                return serve;
            }
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn shipped_rules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/jumpcloud-rules.json")
}

/// A tenants file with one tenant on the simulator, run only when triggered.
fn tenants_file(dir: &Path, sim: &Simulator, tenant: &str) -> PathBuf {
    let authority = sim.base_url().replace("http://", "");
    let text = format!(
        "[[tenant]]\ntenant = \"{tenant}\"\naccountName = \"Acme Corp\"\ndescription = \"simulated JumpCloud org\"\n\
         pollingInterval = \"DISABLED\"\nrules = {rules}\n\
         [tenant.integration]\napiKey = \"{key}\"\nbaseUrl = \"{base}\"\n\
         [tenant.sandbox]\nallowedHosts = [\"{authority}\"]\n",
        rules = json!(shipped_rules().display().to_string()),
        key = sim.api_key(),
        base = sim.base_url(),
    );
    let path = dir.join("tenants.toml");
    std::fs::write(&path, text).expect("write tenants.toml");
    path
}

async fn simulator(users: usize, groups: usize, applications: usize, latency_ms: u64) -> Simulator {
    Simulator::start(SimulatorConfig {
        dataset: Dataset::Generated(TenantSpec {
            users,
            groups,
            applications,
            ..TenantSpec::default()
        }),
        latency: Duration::from_millis(latency_ms),
        ..SimulatorConfig::default()
    })
    .await
    .expect("start the simulator")
}

/// Waits for the graph's viewport animation (focus, fit) to end: while it runs the
/// canvas shows a cached bitmap without edges, which is not what to photograph.
async fn settle(browser: &Browser) {
    browser
        .wait_js(
            "window.consoleGraph && !window.consoleGraph.cy.animated() && performance.now()",
            10,
        )
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Asserts the page has run without script errors or CSP violations.
async fn assert_clean(browser: &Browser, page: &str) {
    let problems = browser.problems().await;
    assert!(problems.is_empty(), "{page}: {problems:?}");
}

/// The story of the issue: two runs (the second after the simulator's standard
/// mutation), then every page of the console as a user would use it.
#[tokio::test(flavor = "multi_thread")]
async fn the_console_shows_a_tenants_graph_runs_changes_alerts_and_queries() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let sim = simulator(80, 8, 5, 0).await;
    let scratch = Scratch::new("story");
    let tenants = tenants_file(&scratch.0, &sim, "acme");
    let serve = Serve::start(
        &tenants,
        &scratch.0.join("store.db"),
        &scratch.0.join("out"),
    );
    let url = &serve.url;

    // Tenants: the tenant is there, never run, manual only; "Run now" makes the baseline.
    browser.goto(&format!("{url}/")).await;
    browser.wait_css("tr[data-tenant=acme]").await;
    let row = browser.text("tr[data-tenant=acme]").await;
    assert!(
        row.contains("Acme Corp") && row.contains("DISABLED") && row.contains("never"),
        "{row}"
    );
    browser.click("tr[data-tenant=acme] button.run-now").await;
    browser
        .wait_js("document.querySelector('tr[data-tenant=acme]')?.innerText.includes('#1') && !document.querySelector('tr[data-tenant=acme] button.run-now').disabled", 120)
        .await;
    let row = browser.text("tr[data-tenant=acme]").await;
    assert!(row.contains("success"), "the baseline run: {row}");
    assert_clean(&browser, "tenants").await;
    browser.screenshot("01-tenants").await;

    // The directory changes; the tenant page's "Run now" shows the run's live progress.
    let report = sim
        .apply_mutation(Mutation::Standard)
        .expect("mutate the tenant");
    let suspended = report
        .suspended_users
        .first()
        .expect("a suspended user")
        .clone();
    let added = report.added_users.first().expect("an added user").clone();
    // Slower answers stretch the second run to a few seconds, so its live progress shows.
    sim.set_latency(Duration::from_millis(400));
    browser.goto(&format!("{url}/tenants/acme")).await;
    browser.wait_css("#runs tbody tr[data-run]").await;
    browser.click("#run-now").await;
    browser
        .wait_js(
            "document.querySelectorAll('#progress-steps li').length > 0",
            60,
        )
        .await;
    browser.screenshot("02-run-progress").await;
    browser
        .wait_js(
            "document.getElementById('progress').innerText.includes('finished')",
            120,
        )
        .await;
    sim.set_latency(Duration::ZERO);
    browser
        .wait_js(
            "document.querySelectorAll('#runs tbody tr[data-run]').length === 2",
            30,
        )
        .await;
    let outcome = browser.text("#progress-steps").await;
    assert!(
        outcome.contains("fetch-users") && outcome.contains("success"),
        "each step's outcome after the run: {outcome}"
    );
    let second = browser
        .js("return document.querySelector('#runs tbody tr[data-run]').dataset.run;")
        .await;
    let second = second.as_str().expect("run id").to_owned();
    assert_clean(&browser, "tenant").await;
    browser.screenshot("03-tenant").await;

    // The run: the CLI's step table.
    browser
        .goto(&format!("{url}/tenants/acme/runs/{second}"))
        .await;
    browser
        .wait_css("#steps tbody tr[data-step=fetch-users]")
        .await;
    let steps = browser.text("#steps").await;
    for step in [
        "fetch-accounts",
        "fetch-users",
        "fetch-groups",
        "fetch-group-members",
        "fetch-applications",
    ] {
        assert!(steps.contains(step), "{step} missing from {steps}");
    }
    assert!(steps.contains("success"), "{steps}");
    assert_clean(&browser, "run").await;
    browser.screenshot("04-run").await;

    // The change set of the second run: the suspended user, its properties side by side.
    browser
        .goto(&format!(
            "{url}/tenants/acme/changes?run={second}&type=jumpcloud_user"
        ))
        .await;
    let card = format!("article.change[data-key='{suspended}'][data-change=updated]");
    browser.wait_css(&card).await;
    let diff = browser
        .text(&format!("{card} tr[data-property=suspended]"))
        .await;
    assert!(
        diff.contains("false") && diff.contains("true"),
        "suspended old/new: {diff}"
    );
    let created = browser
        .text(&format!(
            "article.change[data-key='{}'][data-change=created]",
            added.id
        ))
        .await;
    assert!(
        !created.is_empty(),
        "the added user is not listed as created"
    );
    assert_clean(&browser, "changes").await;
    browser.screenshot("05-changes").await;
    // Every change of the run: relationships name their two ends.
    browser
        .goto(&format!("{url}/tenants/acme/changes?run={second}"))
        .await;
    let edge = "article.change[data-type=jumpcloud_account_has_user][data-change=created] .ends";
    browser.wait_css(edge).await;
    let ends = browser.text(edge).await;
    assert!(
        ends.contains("Acme Corporation") && ends.contains('→'),
        "the account's and the user's names: {ends}"
    );
    let more = browser
        .js("return document.getElementById('more').offsetParent === null;")
        .await;
    assert_eq!(more, json!(true), "no 'Show more' when all is shown");
    assert_clean(&browser, "all changes").await;
    browser.screenshot("05b-changes-all").await;

    // Alerts: the second run opened the new-user-without-MFA alert.
    browser.goto(&format!("{url}/tenants/acme/alerts")).await;
    let alert = "article.alert[data-rule=jumpcloud-new-user-without-mfa][data-status=active]";
    browser.wait_css(alert).await;
    let text = browser.text(&format!("{alert} .new-results")).await;
    assert!(
        text.contains(&added.id),
        "the alert lists the new user as new in the run: {text}"
    );
    // By name, the key beside it.
    let shown = browser
        .api(&format!("/api/tenants/acme/entities/{}", added.id), None)
        .await;
    let name = shown["entity"]["displayName"]
        .as_str()
        .unwrap_or_else(|| panic!("the new user's displayName: {shown}"))
        .to_owned();
    let item = browser
        .wait_js(
            &format!(
                "document.querySelector(\"{alert} .new-results li[data-key='{}'] code.key\") && document.querySelector(\"{alert} .new-results li[data-key='{}'] a\").innerText",
                added.id, added.id
            ),
            20,
        )
        .await;
    assert_eq!(item, json!(name), "the new user's link shows its name");
    assert_clean(&browser, "alerts").await;
    browser.screenshot("06-alerts").await;

    // Graph: the start view, then a user found by email, expanded to its groups.
    let member = browser
        .api(
            "/api/query",
            Some(json!({"tenant": "acme", "query": "FIND jumpcloud_group THAT HAS jumpcloud_user AS u RETURN u._key, u.email LIMIT 1"})),
        )
        .await;
    let row = &member["data"][0];
    let (user_key, email) = (
        row["u._key"]
            .as_str()
            .unwrap_or_else(|| panic!("a member's key in {member}"))
            .to_owned(),
        // `email` is a list on a JumpCloud user (its primary address first).
        row["u.email"]
            .as_str()
            .or_else(|| row["u.email"][0].as_str())
            .unwrap_or_else(|| panic!("a member's email in {member}"))
            .to_owned(),
    );
    browser.goto(&format!("{url}/tenants/acme/graph")).await;
    browser
        .wait_js("document.getElementById('graph').dataset.ready", 60)
        .await;
    let drawn = browser
        .js("return window.consoleGraph.cy.nodes('[type = \"jumpcloud_group\"]').length;")
        .await;
    assert!(
        drawn.as_u64().unwrap_or(0) >= 7,
        "groups in the start view: {drawn}"
    );
    let legend = browser.text("#legend").await;
    for t in [
        "jumpcloud_user",
        "jumpcloud_group",
        "jumpcloud_application",
        "employee",
    ] {
        assert!(legend.contains(t), "legend lacks {t}: {legend}");
    }
    let changed = browser.text("#changed").await;
    assert!(
        changed.contains("updated") && changed.contains("created"),
        "{changed}"
    );
    assert_clean(&browser, "graph").await;
    settle(&browser).await;
    browser.screenshot("07-graph").await;

    // From an empty view, so that what the expansion draws is all there is.
    browser.click("#clear").await;
    browser
        .wait_js("window.consoleGraph.cy.nodes().length === 0", 10)
        .await;
    let search = browser.wait_css("#search").await;
    search
        .send_keys(&email[..email.find('@').unwrap_or(email.len())])
        .await
        .expect("type");
    let result = format!("#search-results button[data-key='{user_key}']");
    browser.click(&result).await;
    browser
        .wait_js(&format!("document.querySelector('#details .entity-title') && window.consoleGraph.cy.getElementById('{user_key}').selected()"), 30)
        .await;
    // Every group the user is in is drawn next to it and visible, however many systems
    // those groups let it log into.
    let neighbourhood = browser
        .api(&format!("/api/tenants/acme/entities/{user_key}"), None)
        .await;
    let member_of = neighbourhood["relationships"].as_array().map_or(0, |rels| {
        rels.iter()
            .filter(|r| r["_type"] == json!("jumpcloud_group_has_user"))
            .count()
    });
    assert!(member_of >= 1, "{neighbourhood}");
    let groups = browser
        .wait_js(&format!("window.consoleGraph.cy.getElementById('{user_key}').neighborhood('node[type = \"jumpcloud_group\"]:visible').length"), 30)
        .await;
    assert_eq!(
        groups.as_u64(),
        Some(member_of as u64),
        "the user's groups are drawn"
    );
    let details = browser.text("#details").await;
    assert!(
        details.contains(&email) && details.contains("jumpcloud_group_has_user"),
        "{details}"
    );
    assert_clean(&browser, "graph after expand").await;
    settle(&browser).await;
    browser.screenshot("08-graph-user-expanded").await;

    // The suspended user is ringed as updated once drawn.
    browser
        .goto(&format!("{url}/tenants/acme/graph?focus={suspended}"))
        .await;
    browser
        .wait_js("document.getElementById('graph').dataset.ready", 60)
        .await;
    let ringed = browser
        .js(&format!(
            "return window.consoleGraph.cy.getElementById('{suspended}').hasClass('updated');"
        ))
        .await;
    assert_eq!(
        ringed,
        Value::Bool(true),
        "the suspended user is highlighted as updated"
    );
    settle(&browser).await;
    browser.screenshot("09-graph-changed-user").await;

    // Query: a table of users without MFA; a bad query points at its column.
    browser.goto(&format!("{url}/query?tenant=acme")).await;
    browser.wait_css("#tenant-select option[value=acme]").await;
    browser.click("#run-query").await;
    browser.wait_css("#result-table tbody tr").await;
    let table = browser.text("#result-table").await;
    assert!(
        table.contains(&added.id),
        "the new user has no MFA: {table}"
    );
    assert_clean(&browser, "query").await;
    browser.screenshot("10-query-table").await;
    browser
        .js("document.getElementById('query').value = 'FIND jumpcloud_user WITH mfaEnabled = = true'; return null;")
        .await;
    browser.click("#run-query").await;
    browser
        .wait_js("!document.getElementById('query-error').hidden", 20)
        .await;
    let error = browser.text("#query-error").await;
    assert!(
        error.contains('^'),
        "the error has a caret under the column: {error}"
    );
    browser.screenshot("11-query-error").await;
    browser
        .js("document.getElementById('query').value = 'FIND jumpcloud_group THAT HAS jumpcloud_user RETURN TREE'; document.getElementById('view-select').value = 'graph'; return null;")
        .await;
    browser.click("#run-query").await;
    browser
        .wait_js("!document.getElementById('query-graph').hidden", 20)
        .await;
    browser.screenshot("12-query-graph").await;

    browser.close().await;
    sim.shutdown().await;
}

/// The console's pages under their Content-Security-Policy: scripts and styles from the
/// host only, and they run (cytoscape.js included, its injected style allowed by hash)
/// without a violation. No API behind the pages here: they show its absence as errors.
#[tokio::test(flavor = "multi_thread")]
async fn the_console_runs_under_its_content_security_policy() {
    use integration_host::serve::{console, security};
    let Some(browser) = Browser::start().await else {
        return;
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let policy = security::AccessPolicy::for_listener(addr, None).expect("loopback policy");
    let app = security::protect(console::router(), policy);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let url = format!("http://{addr}");

    browser.goto(&format!("{url}/tenants/acme/graph")).await;
    browser
        .wait_js("!!(window.consoleGraph && window.consoleGraph.cy)", 30)
        .await;
    browser
        .wait_js(
            "document.getElementById('graph-status').innerText.length > 0",
            30,
        )
        .await;
    let position = browser
        .js("return getComputedStyle(document.getElementById('graph')).position;")
        .await;
    assert_eq!(position, json!("relative"));
    let injected = browser
        .js("return !!document.getElementById('__________cytoscape_stylesheet') && document.getElementById('__________cytoscape_stylesheet').sheet.cssRules.length;")
        .await;
    assert_eq!(
        injected,
        json!(1),
        "cytoscape's style rule was applied (allowed by its hash)"
    );
    let csp: Vec<String> = browser
        .problems()
        .await
        .into_iter()
        .filter(|p| p.starts_with("csp:"))
        .collect();
    assert!(csp.is_empty(), "{csp:?}");

    // An inline script planted in a page would not run.
    let ran = browser
        .js("const s = document.createElement('script'); s.textContent = 'window.injected = 1'; document.body.append(s); return window.injected === 1;")
        .await;
    assert_eq!(ran, json!(false), "inline scripts are blocked");
    let problems = browser.problems().await;
    assert!(
        problems.iter().any(|p| p.starts_with("csp: script-src")),
        "{problems:?}"
    );

    for path in [
        "/",
        "/tenants/acme",
        "/tenants/acme/changes",
        "/tenants/acme/alerts",
        "/query",
    ] {
        browser.goto(&format!("{url}{path}")).await;
        browser
            .wait_js("window.consoleProblems !== undefined", 30)
            .await;
        let csp: Vec<String> = browser
            .problems()
            .await
            .into_iter()
            .filter(|p| !p.contains("404"))
            .collect();
        assert!(csp.is_empty(), "{path}: {csp:?}");
    }
    browser.close().await;
    server.abort();
}

/// A plain HTTP/1.1 request on loopback; the status code and the body.
fn http(url: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let authority = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(authority).expect("connect to serve");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// `demo --serve`: the demo's two runs, then the console on its store, its tenant still
/// on the demo's simulator, so that "Run now" runs a third time.
#[test]
fn demo_serve_opens_the_console_on_the_demos_store() {
    let scratch = Scratch::new("demo-serve");
    let mut command = host_command();
    command
        .args(["demo", "--users", "40", "--groups", "4", "--serve"])
        .arg("--output")
        .arg(&scratch.0)
        .args(["--listen", "127.0.0.1:0"]);
    let serve = Serve::spawn(command);
    let (status, page) = http(&serve.url, "GET", "/tenants/demo/graph", "");
    assert_eq!(status, 200);
    assert!(page.contains("/assets/js/graph-page.js"), "{page}");
    let (status, tenant) = http(&serve.url, "GET", "/api/tenants/demo", "");
    assert_eq!(status, 200, "{tenant}");
    // Chunked or not, the JSON object is the part between the outer braces.
    let json = &tenant[tenant.find('{').unwrap_or(0)..=tenant.rfind('}').unwrap_or(0)];
    let view: Value = serde_json::from_str(json).expect("the tenant's JSON");
    assert_eq!(view["runs"], json!(2), "{view}");
    assert_eq!(view["lastRun"]["status"], json!("success"), "{view}");
    // Names for bare keys (the alerts page's results): bounded, unknown keys left out.
    let (status, account) = http(
        &serve.url,
        "POST",
        "/api/query",
        r#"{"tenant": "demo", "query": "FIND jumpcloud_account RETURN jumpcloud_account._key"}"#,
    );
    assert_eq!(status, 200, "{account}");
    let account = &account[account.find('{').unwrap_or(0)..=account.rfind('}').unwrap_or(0)];
    let account: Value = serde_json::from_str(account).expect("the query's JSON");
    let key = account["data"][0]["jumpcloud_account._key"]
        .as_str()
        .unwrap_or_else(|| panic!("the account's key: {account}"))
        .to_owned();
    let body = json!({"keys": [key, "no-such-key"]}).to_string();
    let (status, names) = http(&serve.url, "POST", "/api/tenants/demo/names", &body);
    assert_eq!(status, 200, "{names}");
    assert!(
        names.contains(&key) && !names.contains("no-such-key"),
        "{names}"
    );
    let many = json!({"keys": vec!["k"; 1001]}).to_string();
    let (status, refused) = http(&serve.url, "POST", "/api/tenants/demo/names", &many);
    assert_eq!(status, 400, "{refused}");

    let (status, answer) = http(&serve.url, "POST", "/api/tenants/demo/trigger", "{}");
    assert!((200..300).contains(&status), "{status} {answer}");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, tenant) = http(&serve.url, "GET", "/api/tenants/demo", "");
        let json = &tenant[tenant.find('{').unwrap_or(0)..=tenant.rfind('}').unwrap_or(0)];
        let view: Value = serde_json::from_str(json).expect("the tenant's JSON");
        if view["runs"] == json!(3) && view["running"] == json!(false) {
            assert_eq!(view["lastRun"]["status"], json!("success"), "{view}");
            assert_eq!(view["lastRun"]["trigger"], json!("manual"), "{view}");
            break;
        }
        assert!(Instant::now() < deadline, "no third run: {view}");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(serve);
}

/// What the graph page reports of its start: nodes and edges drawn, the legend, the
/// time its layouts took, and each API request's duration (Resource Timing).
const PAGE_TIMINGS: &str = "return {drawn: window.consoleGraph.size(), legend: document.getElementById('legend').innerText, layoutMs: Math.round(window.consoleTimings.layoutMs), api: performance.getEntriesByType('resource').filter((r) => r.name.includes('/api/')).map((r) => ({path: new URL(r.name).pathname, ms: Math.round(r.duration)}))};";

/// Users in the tenant of the graph view's timing test: 10,000 (the issue's figure;
/// about 45 s of a debug test run, most of it the run that fills the store), or
/// `CONSOLE_GRAPH_USERS` to measure another size.
fn timing_tenant_users() -> usize {
    std::env::var("CONSOLE_GRAPH_USERS")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(10_000)
}

/// Runs the tenant now through `serve`'s API and waits (up to `secs`) for the run.
fn trigger_and_wait(url: &str, tenant: &str, secs: u64) {
    // serve registers its tenants in the store just after it starts listening.
    let deadline = Instant::now() + Duration::from_secs(30);
    while http(url, "GET", &format!("/api/tenants/{tenant}"), "").0 != 200 {
        assert!(Instant::now() < deadline, "serve never registered {tenant}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, answer) = http(url, "POST", &format!("/api/tenants/{tenant}/trigger"), "{}");
    assert!((200..300).contains(&status), "{status} {answer}");
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let (_, tenant_json) = http(url, "GET", &format!("/api/tenants/{tenant}"), "");
        let json =
            &tenant_json[tenant_json.find('{').unwrap_or(0)..=tenant_json.rfind('}').unwrap_or(0)];
        let view: Value = serde_json::from_str(json).expect("the tenant's JSON");
        if view["runs"] == json!(1) && view["running"] == json!(false) {
            assert_eq!(view["lastRun"]["status"], json!("success"), "{view}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the run did not end in {secs} s: {view}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The time the graph view takes to become interactive on a big tenant, measured in the
/// browser and reported (printed and written to `graph-timing.json` in the screenshots
/// folder), never asserted as a timing. Interactive means: the page's ready marker is set
/// (the start view is drawn and laid out, the legend's counts and the last run's changes
/// are in) and a real mouse click on a drawn node opens its properties.
#[tokio::test(flavor = "multi_thread")]
async fn the_graph_view_of_a_big_tenant_becomes_interactive_in_measured_time() {
    use fantoccini::actions::{InputSource, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
    let Some(browser) = Browser::start().await else {
        return;
    };
    let users = timing_tenant_users();
    let groups = (users / 50).max(8);
    // Systems at a tenth of the users (the generator's default is 1.2 per user): one
    // request each in the run, which is what a debug build spends its time on; the graph
    // view's start does not draw them.
    let systems = users / 10;
    let sim = Simulator::start(SimulatorConfig {
        dataset: Dataset::Generated(TenantSpec {
            users,
            groups,
            applications: 20,
            systems: Some(systems),
            ..TenantSpec::default()
        }),
        ..SimulatorConfig::default()
    })
    .await
    .expect("start the simulator");
    let scratch = Scratch::new("timing");
    let tenants = tenants_file(&scratch.0, &sim, "big");
    let serve = Serve::start(
        &tenants,
        &scratch.0.join("store.db"),
        &scratch.0.join("out"),
    );
    let url = &serve.url;
    let filled = Instant::now();
    // Blocking HTTP off the runtime's threads: the simulator answers on them.
    let base = url.clone();
    tokio::task::spawn_blocking(move || trigger_and_wait(&base, "big", 1_800))
        .await
        .expect("the run");
    let fill_secs = filled.elapsed().as_secs_f64();

    let navigated = Instant::now();
    browser.goto(&format!("{url}/tenants/big/graph")).await;
    let ready_ms = browser
        .wait_js(
            "Number(document.getElementById('graph').dataset.ready)",
            300,
        )
        .await
        .as_f64()
        .expect("the ready marker: ms since navigation");
    // A drawn group, clicked where it is on the screen, with a real mouse.
    let at = browser
        .js(r#"
            const cy = window.consoleGraph.cy;
            const box = cy.container().getBoundingClientRect();
            const inside = (n) => {
                const p = n.renderedPosition();
                return p.x > 20 && p.y > 20 && p.x < cy.width() - 20 && p.y < cy.height() - 20
                    && box.top + p.y < window.innerHeight - 20;
            };
            const n = cy.nodes('[type = "jumpcloud_group"]').filter(inside).first();
            if (n.empty()) return null;
            const p = n.renderedPosition();
            return {key: n.id(), x: box.left + p.x, y: box.top + p.y};
        "#)
        .await;
    let key = at["key"]
        .as_str()
        .unwrap_or_else(|| panic!("no group drawn inside the view: {at}"))
        .to_owned();
    let clicked = Instant::now();
    // At the node's place in the viewport (the canvas may reach below the window, so
    // not relative to the canvas's in-view centre).
    let click = MouseActions::new("mouse".into())
        .then(PointerAction::MoveTo {
            duration: None,
            x: at["x"].as_f64().unwrap_or(0.0).round(),
            y: at["y"].as_f64().unwrap_or(0.0).round(),
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    browser
        .client
        .perform_actions(click)
        .await
        .expect("click the node");
    browser
        .wait_js(&format!("document.querySelector('#details .entity-key')?.innerText === '{key}' && window.consoleGraph.cy.getElementById('{key}').selected()"), 60)
        .await;
    let click_ms = clicked.elapsed().as_secs_f64() * 1000.0;
    let interactive_ms = navigated.elapsed().as_secs_f64() * 1000.0;
    let page = browser.js(PAGE_TIMINGS).await;
    assert!(
        page["legend"]
            .as_str()
            .is_some_and(|legend| legend.contains(&format!("· {}", fmt_thousands(users)))),
        "the legend counts the {users} users: {page}"
    );
    assert_clean(&browser, "big graph").await;
    // The whole start view again (the click zoomed onto the group), for the screenshot.
    browser
        .js("window.consoleGraph.cy.animation && window.consoleGraph.cy.stop(); window.consoleGraph.fit(); return null;")
        .await;
    settle(&browser).await;
    browser.screenshot("13-graph-big-tenant").await;
    // Again: serve now holds the tenant's query graph (loaded once per persisted run).
    browser.goto(&format!("{url}/tenants/big/graph")).await;
    let again_ms = browser
        .wait_js(
            "Number(document.getElementById('graph').dataset.ready)",
            300,
        )
        .await
        .as_f64()
        .expect("the ready marker: ms since navigation");
    let again = browser.js(PAGE_TIMINGS).await;

    // A user opened by address (?focus=KEY), as the change set's "show in graph" does:
    // its groups are all drawn, whatever number of systems they let it log into.
    let member = browser
        .api(
            "/api/query",
            Some(json!({"tenant": "big", "query": "FIND jumpcloud_group THAT HAS jumpcloud_user AS u RETURN u._key LIMIT 1"})),
        )
        .await;
    let user = member["data"][0]["u._key"]
        .as_str()
        .unwrap_or_else(|| panic!("a member: {member}"))
        .to_owned();
    let around = browser
        .api(&format!("/api/tenants/big/entities/{user}"), None)
        .await;
    let count = |t: &str| {
        around["relationships"].as_array().map_or(0, |rels| {
            rels.iter().filter(|r| r["_type"] == json!(t)).count()
        })
    };
    let (member_of, systems_of) = (
        count("jumpcloud_group_has_user"),
        count("jumpcloud_user_assigned_system"),
    );
    browser
        .goto(&format!("{url}/tenants/big/graph?focus={user}"))
        .await;
    let focus_ms = browser
        .wait_js(
            "Number(document.getElementById('graph').dataset.ready)",
            300,
        )
        .await
        .as_f64()
        .expect("the ready marker");
    let drawn = browser
        .js(&format!("const n = window.consoleGraph.cy.getElementById('{user}'); return {{groups: n.neighborhood('node[type = \"jumpcloud_group\"]').length, systems: n.neighborhood('node[type = \"jumpcloud_system\"]').length}};"))
        .await;
    assert_eq!(
        drawn["groups"].as_u64(),
        Some(member_of as u64),
        "all the user's groups are drawn ({systems_of} systems assigned): {drawn}"
    );
    // Systems next to identities are capped per type (EXPAND_PER_OTHER_TYPE in the page).
    assert_eq!(
        drawn["systems"].as_u64(),
        Some(systems_of.min(30) as u64),
        "{drawn}"
    );
    assert_clean(&browser, "big graph, a user").await;
    settle(&browser).await;
    browser.screenshot("14-graph-big-tenant-user").await;

    let report = json!({
        "users": users,
        "groups": groups,
        "systems": systems,
        "fillSecs": (fill_secs * 10.0).round() / 10.0,
        "navigationToReadyMs": ready_ms.round(),
        "clickToDetailsMs": click_ms.round(),
        "navigationToClickedMs": interactive_ms.round(),
        "secondVisitNavigationToReadyMs": again_ms.round(),
        "drawn": page["drawn"],
        "api": page["api"],
        "layoutMs": page["layoutMs"],
        "secondVisitApi": again["api"],
        "secondVisitLayoutMs": again["layoutMs"],
        "focusUserNavigationToReadyMs": focus_ms.round(),
        "focusUser": {"groups": member_of, "systemsAssigned": systems_of, "drawn": drawn},
        "build": if cfg!(debug_assertions) { "debug" } else { "release" },
    });
    eprintln!("graph view timing: {report}");
    std::fs::write(
        browser::screenshot_dir().join("graph-timing.json"),
        serde_json::to_string_pretty(&report).expect("json"),
    )
    .expect("write graph-timing.json");
    browser.close().await;
    sim.shutdown().await;
}

/// 12345 as the console's `fmtCount` writes it (en-US grouping): "12,345".
fn fmt_thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
