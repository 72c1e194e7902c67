//! One store test suite, two backends. Every test of `changes.rs` and `alerts.rs` runs
//! against SQLite always, and against PostgreSQL when `GRAPH_STORE_TEST_POSTGRES` names
//! a server (`scripts/fleet-servers.sh start` runs one; `.ci/run` always does); each
//! test gets a fresh database of its own. Without the variable the PostgreSQL half says
//! so on stderr and passes, so `cargo test` stays green on a bare machine.
#![allow(dead_code)] // each test file uses its own part of this

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use graph_store::{Store, StoreError, open};
use sqlx::Connection;

/// The variable naming the PostgreSQL server for tests (any database on it: each test
/// creates its own).
pub const POSTGRES_VAR: &str = "GRAPH_STORE_TEST_POSTGRES";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty store of one backend.
pub struct TestStore {
    pub backend: Backend,
    pub url: String,
    pub store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
}

/// The server's URL, or `None` after saying why the test is skipped.
pub fn postgres_server(test: &str) -> Option<String> {
    match std::env::var(POSTGRES_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!(
                "skipped {test} on PostgreSQL: {POSTGRES_VAR} is not set \
                 (scripts/fleet-servers.sh start, then source its env file)"
            );
            None
        }
    }
}

/// `url` with its database replaced by `database` (query parameters kept).
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// Creates an empty database on the test server and returns its URL.
pub async fn fresh_database(server: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "gs_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        graph_store::now_ms()
    );
    let mut admin = sqlx::PgConnection::connect(server)
        .await
        .unwrap_or_else(|e| panic!("{POSTGRES_VAR}={server} is set but unreachable: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create the test database");
    with_database(server, &name)
}

impl Backend {
    /// A fresh store, or `None` when this backend's server is not configured.
    pub async fn fresh(self, test: &str) -> Option<TestStore> {
        let (url, dir) = match self {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("store.db").display());
                (url, Some(dir))
            }
            Backend::Postgres => (fresh_database(&postgres_server(test)?).await, None),
        };
        let store = open(&url).await.expect("the store opens");
        Some(TestStore {
            backend: self,
            url,
            store,
            _dir: dir,
        })
    }
}

impl TestStore {
    /// Reopens the same store (a restarted process).
    pub async fn reopen(&self) -> Result<Arc<dyn Store>, StoreError> {
        open(&self.url).await
    }

    /// Records a migration this program does not know, as a newer program would.
    pub async fn record_future_migration(&self) {
        match self.backend {
            Backend::Sqlite => {
                let path = graph_store::parse_url(&self.url).expect("sqlite url");
                rusqlite::Connection::open(path)
                    .and_then(|c| {
                        c.execute(
                            "INSERT INTO schema_migrations VALUES (9999, 'future', 0)",
                            [],
                        )
                    })
                    .expect("bump the schema");
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url)
                    .await
                    .expect("connect");
                sqlx::query("INSERT INTO schema_migrations VALUES (9999, 'future', 0)")
                    .execute(&mut conn)
                    .await
                    .expect("bump the schema");
            }
        }
    }
}

/// Runs each named `async fn(TestStore)` once per backend: `sqlite::NAME` and
/// `postgres::NAME`.
#[allow(unused_macros)] // postgres.rs has tests of its own only
macro_rules! store_suite {
    ($($test:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    let store = crate::common::Backend::Sqlite
                        .fresh(stringify!($test))
                        .await
                        .expect("SQLite needs no server");
                    super::$test(store).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    if let Some(store) = crate::common::Backend::Postgres
                        .fresh(stringify!($test))
                        .await
                    {
                        super::$test(store).await;
                    }
                }
            )+
        }
    };
}

/// A TCP relay between a store and its PostgreSQL server that the test can cut (every
/// connection reset, new ones closed at once) and restore: the database unreachable
/// for a while, as a worker sees a restart or a network fault.
pub struct Relay {
    pub port: u16,
    cut: Arc<std::sync::atomic::AtomicBool>,
    connections: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Relays 127.0.0.1:(a free port) to `target` (`host:port`).
    pub async fn start(target: String) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the relay");
        let port = listener.local_addr().expect("address").port();
        let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let connections = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (cut2, connections2) = (cut.clone(), connections.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if cut2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                connections2
                    .lock()
                    .expect("relay lock")
                    .push(task.abort_handle());
            }
        });
        Relay {
            port,
            cut,
            connections,
            accept,
        }
    }

    /// Resets every relayed connection and refuses new ones until [`Relay::restore`].
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for connection in self.connections.lock().expect("relay lock").drain(..) {
            connection.abort();
        }
    }

    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// `host:port` of a PostgreSQL URL.
pub fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    }
}

/// `url` pointed at 127.0.0.1:`port` instead of its host.
pub fn via_port(url: &str, port: u16) -> String {
    let target = host_port(url);
    url.replacen(&target, &format!("127.0.0.1:{port}"), 1)
}
