//! A real headless Chromium driven over WebDriver (chromedriver + fantoccini), for the
//! console's browser tests. Screenshots go to `target/console-screenshots/`.
//!
//! When chromium or chromedriver is missing the tests skip with a message, so `cargo test`
//! stays green on a developer's bare machine. Where a browser is expected they fail
//! instead: `.ci/run` installs both and sets `CONSOLE_BROWSER_TESTS=required`, and any
//! run with `CI` set (CI sets `CI=true`) requires them too.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// Where a binary is: the environment variable when set, else the first candidate that
/// exists.
fn locate(var: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var) {
        return Some(PathBuf::from(path));
    }
    candidates.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// True where a missing browser is a failure, not a skip: `CONSOLE_BROWSER_TESTS=required`
/// (set by `.ci/run`) or a CI run (`CI` set to anything but `false`/`0`/empty).
fn browser_required() -> bool {
    if std::env::var("CONSOLE_BROWSER_TESTS").as_deref() == Ok("required") {
        return true;
    }
    std::env::var("CI").is_ok_and(|ci| !matches!(ci.trim(), "" | "0" | "false"))
}

/// The screenshots folder, created on first use.
pub fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("console-screenshots");
    std::fs::create_dir_all(&dir).expect("create the screenshots folder");
    dir
}

/// A chromedriver process in a process group of its own, with the chromium it starts:
/// the whole group is killed when dropped, so a test that fails before closing its
/// session leaves no browser running.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Browser {
    pub client: Client,
    _driver: Driver,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session; `None` (after saying why)
    /// when either is not installed and the browser tests are not required.
    pub async fn start() -> Option<Browser> {
        let chromium = locate(
            "CHROME",
            &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
        );
        let driver = locate("CHROMEDRIVER", &["/usr/bin/chromedriver"]);
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            let message = "chromium or chromedriver is not installed (apt-get install chromium chromium-driver)";
            if browser_required() {
                panic!("browser tests are required here, but {message}");
            }
            eprintln!("skipping the browser test: {message}");
            return None;
        };
        let driver = start_driver(&driver);
        let profile = tempfile::tempdir().expect("a profile folder");
        // The flags that work on this kind of machine: no sandbox as root, no GPU, and
        // nothing that phones home (the network here is closed).
        let args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--window-size=1500,950".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": chromium, "args": args}),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&driver.url)
            .await
            .expect("a WebDriver session in headless chromium");
        Some(Browser {
            client,
            _driver: driver,
            _profile: profile,
        })
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    /// Waits (up to 60 s) for an element matching the CSS selector, and returns it.
    pub async fn wait_css(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(60))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("no element {css} within 60 s: {error}"))
    }

    /// Evaluates a JS expression (`return ...;` body) in the page.
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|error| panic!("script failed: {error}\n{script}"))
    }

    /// Calls the console's API from the page (same origin, the page's credentials):
    /// `POST` with `body` when given, else `GET`. Panics on a non-2xx answer.
    pub async fn api(&self, path: &str, body: Option<Value>) -> Value {
        let script = r#"
            const [path, body, done] = arguments;
            const init = body === null ? {} : {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify(body)};
            fetch(path, init).then(async (r) => done({status: r.status, body: await r.json().catch(() => null)}))
              .catch((e) => done({status: 0, body: String(e)}));
        "#;
        let answer = self
            .client
            .execute_async(script, vec![json!(path), body.unwrap_or(Value::Null)])
            .await
            .unwrap_or_else(|error| panic!("fetch {path}: {error}"));
        let status = answer["status"].as_u64().unwrap_or(0);
        assert!(
            (200..300).contains(&status),
            "{path}: HTTP {status}: {}",
            answer["body"]
        );
        answer["body"].clone()
    }

    /// Waits (up to `secs`) until the JS expression is truthy; returns its value.
    pub async fn wait_js(&self, expression: &str, secs: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let value = self.js(&format!("return ({expression});")).await;
            let truthy = match &value {
                Value::Null | Value::Bool(false) => false,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return value;
            }
            if Instant::now() > deadline {
                let text = self
                    .js("return document.body.innerText.slice(0, 3000);")
                    .await;
                panic!("`{expression}` not true within {secs} s; the page says:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// The page's visible text.
    pub async fn text(&self, css: &str) -> String {
        let value = self
            .js(&format!(
                "const e = document.querySelector({}); return e ? e.innerText : null;",
                json!(css)
            ))
            .await;
        value.as_str().unwrap_or_default().to_owned()
    }

    pub async fn click(&self, css: &str) {
        self.wait_css(css)
            .await
            .click()
            .await
            .unwrap_or_else(|error| panic!("click {css}: {error}"));
    }

    /// Saves a PNG of the window as `target/console-screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
        let path = screenshot_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write the screenshot");
        path
    }

    /// Script errors, unhandled rejections and CSP violations the page recorded
    /// (`window.consoleProblems`, kept by the console's api.js).
    pub async fn problems(&self) -> Vec<String> {
        let value = self.js("return window.consoleProblems || null;").await;
        match value {
            Value::Array(items) => items
                .into_iter()
                .map(|v| v.as_str().unwrap_or_default().to_owned())
                .collect(),
            _ => vec!["the page did not load api.js".to_owned()],
        }
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}

fn start_driver(binary: &Path) -> Driver {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.local_addr().expect("its address").port()
    };
    let child = Command::new(binary)
        .process_group(0)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    driver
}
