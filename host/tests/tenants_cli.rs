//! `tenants import` and `tenants list` through the real binary, on a SQLite store (the
//! fleet's PostgreSQL store takes the same calls; `fleet.rs` imports into it): a whole
//! file checked before anything is stored, secrets refused unless they are references,
//! revisions that grow only on change.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("tenants-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A value the import's environment holds but the store must never.
const SECRET: &str = "jca_tenants_cli_secret_value_7f3a9c";

fn host(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_integration-host"))
        .args(args)
        .env(
            "INTEGRATION_HOST_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("component-cache"),
        )
        .env("TENANTS_CLI_KEY", SECRET)
        .output()
        .expect("run integration-host")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn tenant(name: &str, api_key: &str, base_url: &str) -> String {
    format!(
        "[[tenant]]\ntenant = \"{name}\"\npollingInterval = \"ONE_HOUR\"\n\
         [tenant.integration]\napiKey = {api_key}\nbaseUrl = \"{base_url}\"\n"
    )
}

#[test]
fn a_plain_text_secret_is_refused_by_field_and_nothing_is_stored() {
    let scratch = Scratch::new("plain");
    let store = format!("sqlite://{}", scratch.0.join("store.db").display());
    let file = scratch.0.join("tenants.toml");
    // The first tenant is fine; the second writes its key in plain text.
    std::fs::write(
        &file,
        tenant(
            "acme",
            "{ env = \"TENANTS_CLI_KEY\" }",
            "https://console.jumpcloud.com",
        ) + &tenant(
            "beta",
            &format!("\"{SECRET}\""),
            "https://console.jumpcloud.com",
        ),
    )
    .expect("write");
    let output = host(&[
        "tenants",
        "import",
        file.to_str().unwrap(),
        "--store",
        &store,
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let said = text(&output);
    assert!(said.contains("tenant[1].integration.apiKey"), "{said}");
    assert!(said.contains("not stored in plain text"), "{said}");
    assert!(
        !said.contains(SECRET),
        "the refusal does not echo the secret: {said}"
    );

    let listed = host(&["tenants", "list", "--store", &store]);
    assert!(listed.status.success(), "{}", text(&listed));
    assert!(
        text(&listed).contains("no tenants"),
        "the good tenant was not stored either: {}",
        text(&listed)
    );
}

#[test]
fn imports_store_references_and_revisions_grow_only_on_change() {
    let scratch = Scratch::new("revisions");
    let db = scratch.0.join("store.db");
    let store = format!("sqlite://{}", db.display());
    let file = scratch.0.join("tenants.toml");
    let file_arg = file.to_str().unwrap().to_owned();
    let import = || host(&["tenants", "import", &file_arg, "--store", &store]);

    let key = "{ env = \"TENANTS_CLI_KEY\" }";
    std::fs::write(&file, tenant("acme", key, "https://console.jumpcloud.com")).unwrap();
    let first = import();
    assert!(first.status.success(), "{}", text(&first));
    assert!(
        text(&first).contains("revision 1    new"),
        "{}",
        text(&first)
    );

    let again = import();
    assert!(
        text(&again).contains("revision 1    unchanged"),
        "{}",
        text(&again)
    );

    std::fs::write(
        &file,
        tenant("acme", key, "https://console.eu.jumpcloud.com"),
    )
    .unwrap();
    let changed = import();
    assert!(
        text(&changed).contains("revision 2    changed"),
        "{}",
        text(&changed)
    );

    let listed = host(&["tenants", "list", "--store", &store, "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json");
    assert_eq!(list[0]["tenant"], "acme");
    assert_eq!(list[0]["configRevision"], 2);
    assert_eq!(list[0]["pollingInterval"], "ONE_HOUR");

    // The reference is stored, the value its variable held on this machine is not.
    let bytes = std::fs::read(&db).expect("store file");
    let holds = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(holds("TENANTS_CLI_KEY"), "the reference is in the store");
    assert!(!holds(SECRET), "the secret is not");

    // Removed: listed as disabled without a configuration; an unknown id is an error.
    let removed = host(&["tenants", "remove", "acme", "--store", &store]);
    assert!(removed.status.success(), "{}", text(&removed));
    let listed = host(&["tenants", "list", "--store", &store, "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json");
    assert_eq!(list[0]["configRevision"], serde_json::Value::Null);
    assert_eq!(list[0]["pollingInterval"], "DISABLED");
    let unknown = host(&["tenants", "remove", "nobody", "--store", &store]);
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown));
    assert!(
        text(&unknown).contains("no tenant nobody"),
        "{}",
        text(&unknown)
    );
    // Imported again, it is back at a new revision.
    let back = import();
    assert!(text(&back).contains("revision 4    new"), "{}", text(&back));

    // An unknown field is refused before anything changes.
    std::fs::write(
        &file,
        tenant("acme", key, "https://console.jumpcloud.com") + "bogusField = \"x\"\n",
    )
    .unwrap();
    let refused = import();
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("tenant[0].integration.bogusField"),
        "{}",
        text(&refused)
    );
}

#[test]
fn serve_with_a_queue_takes_its_tenants_from_the_store_not_a_file() {
    let output = host(&[
        "serve",
        "--tenants",
        "tenants.toml",
        "--store",
        "postgres://nobody@127.0.0.1:1/none",
        "--queue",
        "nats://127.0.0.1:1",
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("tenants import FILE --store URL")
            && text(&output).contains("without --tenants"),
        "{}",
        text(&output)
    );
}
