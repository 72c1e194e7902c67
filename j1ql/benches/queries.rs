//! Query latency, graph build time and graph memory on generated JumpCloud-shaped
//! tenants (data-model.md): N users with ~35 properties each, one employee (Person) per
//! mapped user, N/20 groups, applications, group memberships, direct and group
//! application assignments, the account's HAS edges, and J1 metadata on everything.
//!
//! ```text
//! cargo bench -p j1ql --bench queries                          # 10k and 100k users
//! cargo bench -p j1ql --bench queries -- --users 100000 --groups-per-user 2
//! ```
//!
//! Each query runs as an interactive one (LIMIT 250 by default, its J1 JSON built and
//! serialized, as the CLI and HTTP API do) and as an alert rule's (no cap, total and
//! entity ids). Wall time is shown next to this thread's CPU time: the machine is
//! shared, and the CPU time is what the query itself costs.
//!
//! Memory is the resident-set growth across the build (from /proc/self/statm), next to
//! the graph's own estimate of its heap ([`j1ql::Graph::heap_bytes`]).

use j1ql::{Entity, ExecOptions, Graph, GraphBuilder, Relationship, parse};
use serde_json::{Map, Value, json};
use std::time::{Duration, Instant};

const NOW: i64 = 1_718_409_600_000;
const DAY: i64 = 86_400_000;

const QUERIES: &[(&str, &str)] = &[
    (
        "(a) one-hop filter",
        "FIND jumpcloud_user WITH active = true AND mfaEnabled != true THAT IS Person",
    ),
    (
        "(b) two hops, negation",
        "FIND jumpcloud_user WITH suspended = true THAT HAS << jumpcloud_group THAT !ASSIGNED jumpcloud_application",
    ),
    (
        "(c) grouped count",
        "FIND jumpcloud_user AS u THAT HAS << jumpcloud_group AS g RETURN g.name, count(u)",
    ),
    (
        "(d) indexed lookup",
        "FIND jumpcloud_user WITH email = 'user42@example.com' THAT HAS << jumpcloud_group",
    ),
    (
        "(e) new users, table",
        "FIND User WITH _createdOn > date.now - 1 day AS u RETURN u.username, u.email",
    ),
];

/// xorshift64*: deterministic data without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn with_meta(mut m: Map<String, Value>, created: i64, version: u32) -> Map<String, Value> {
    m.insert("_createdOn".into(), json!(created));
    m.insert("_beginOn".into(), json!(created));
    m.insert("_version".into(), json!(version));
    m
}

fn entity(key: String, ty: &str, classes: &[&str], props: Map<String, Value>) -> Entity {
    Entity {
        key,
        entity_type: ty.into(),
        classes: classes.iter().map(|c| c.to_string()).collect(),
        properties: props,
        deleted: false,
    }
}

fn rel(from: &str, verb: &str, to: &str, ty: &str, extra: Value, created: i64) -> Relationship {
    let mut p = with_meta(obj(extra), created, 1);
    p.insert("displayName".into(), json!(verb));
    p.insert("_fromEntityKey".into(), json!(from));
    p.insert("_toEntityKey".into(), json!(to));
    Relationship {
        key: format!("{from}|{}|{to}", verb.to_lowercase()),
        relationship_type: ty.into(),
        class: verb.into(),
        from_key: from.into(),
        to_key: to.into(),
        properties: p,
        deleted: false,
    }
}

const DEPARTMENTS: &[&str] = &[
    "Engineering",
    "Sales",
    "Support",
    "Finance",
    "Marketing",
    "Legal",
    "HR",
    "Operations",
];
const TITLES: &[&str] = &[
    "Engineer",
    "Manager",
    "Analyst",
    "Director",
    "Associate",
    "Specialist",
];

/// Generates the tenant and hands each object to `sink`, so no copy of the whole tenant
/// in JSON form is ever held. Returns (entities, relationships).
fn generate(
    users: usize,
    groups_per_user: usize,
    sink: &mut dyn FnMut(Option<Entity>, Option<Relationship>),
) -> (usize, usize) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let groups = (users / 20).max(10);
    let apps = (users / 500).max(20);
    let (mut ne, mut nr) = (0, 0);
    let mut ent = |e: Entity, sink: &mut dyn FnMut(Option<Entity>, Option<Relationship>)| {
        ne += 1;
        sink(Some(e), None)
    };
    let acct = "5f0c1e2d3b4a596877665544".to_string();
    ent(
        entity(
            acct.clone(),
            "jumpcloud_account",
            &["Account", "Organization"],
            with_meta(
                obj(
                    json!({"name": "Example", "displayName": "Example", "vendor": "JumpCloud", "webLink": "https://console.jumpcloud.com"}),
                ),
                NOW - 900 * DAY,
                1,
            ),
        ),
        sink,
    );
    let mut rels: Vec<Relationship> = Vec::new();
    let mut flush =
        |rels: &mut Vec<Relationship>,
         sink: &mut dyn FnMut(Option<Entity>, Option<Relationship>)| {
            for r in rels.drain(..) {
                nr += 1;
                sink(None, Some(r));
            }
        };
    for g in 0..groups {
        let key = format!("group{g:06}aaaaaaaaaaaa");
        let name = format!("group-{g}");
        let props = json!({"id": key, "name": name, "displayName": name, "description": format!("Group {g}"),
            "email": format!("{name}@example.com"), "membershipMethod": if g % 3 == 0 { "DYNAMIC" } else { "STATIC" },
            "sudoEnabled": g % 7 == 0, "webLink": format!("https://console.jumpcloud.com/#/groups/user/{key}/details")});
        ent(
            entity(
                key.clone(),
                "jumpcloud_group",
                &["Group"],
                with_meta(obj(props), NOW - 400 * DAY, 1),
            ),
            sink,
        );
        rels.push(rel(
            &acct,
            "HAS",
            &key,
            "jumpcloud_account_has_group",
            json!({}),
            NOW - 400 * DAY,
        ));
    }
    for a in 0..apps {
        let key = format!("app{a:06}bbbbbbbbbbbbbbb");
        let name = format!("App {a}");
        let props = json!({"id": key, "name": name, "displayName": name, "catalogName": "saml", "ssoUrl": format!("https://sso.example.com/{a}"),
            "active": a % 10 != 0, "ssoType": "saml", "webLink": "https://console.jumpcloud.com/#/applications"});
        ent(
            entity(
                key.clone(),
                "jumpcloud_application",
                &["Application"],
                with_meta(obj(props), NOW - 300 * DAY, 1),
            ),
            sink,
        );
        rels.push(rel(
            &acct,
            "HAS",
            &key,
            "jumpcloud_account_has_application",
            json!({}),
            NOW - 300 * DAY,
        ));
        // A third of the groups are assigned some application.
        for g in (a..groups).step_by(apps * 3) {
            rels.push(rel(
                &format!("group{g:06}aaaaaaaaaaaa"),
                "ASSIGNED",
                &key,
                "jumpcloud_group_assigned_application",
                json!({"direct": true}),
                NOW - 200 * DAY,
            ));
        }
    }
    flush(&mut rels, sink);
    for u in 0..users {
        let key = format!("user{u:08}cccccccccccc");
        let (first, last) = (format!("First{u}"), format!("Last{}", u % 5000));
        let email = format!("user{u}@example.com");
        let suspended = rng.chance(5);
        let active = !suspended && rng.chance(95);
        let mfa = rng.chance(60);
        let created = if u % 1000 == 0 {
            NOW - DAY / 2
        } else {
            NOW - (rng.below(700) as i64 + 2) * DAY
        };
        let props = json!({
            "id": key, "username": format!("user{u}"), "shortLoginId": format!("user{u}"), "email": email,
            "emailDomain": "example.com", "firstName": first, "lastName": last, "name": format!("{first} {last}"),
            "displayName": format!("{first} {last}"), "state": if suspended { "suspended" } else { "activated" },
            "active": active, "isActive": active, "suspended": suspended, "locked": rng.chance(1),
            "mfaEnabled": mfa, "isMfaEnabled": mfa, "mfaConfigured": mfa, "mfaExclusion": rng.chance(3),
            "createdOn": created, "passwordExpired": rng.chance(2), "passwordNeverExpires": rng.chance(10),
            "passwordExpirationOn": NOW + rng.below(90) as i64 * DAY, "employeeId": format!("E{u:07}"),
            "employeeType": if rng.chance(2) { "service" } else { "employee" }, "company": "Example Inc",
            "department": DEPARTMENTS[rng.below(DEPARTMENTS.len())], "jobTitle": TITLES[rng.below(TITLES.len())],
            "costCenter": format!("CC{}", rng.below(40)), "location": format!("Site {}", rng.below(12)),
            "managerId": format!("user{:08}cccccccccccc", rng.below(users)), "externallyManaged": false,
            "ldapBindingUser": false, "sambaServiceUser": false, "sudo": rng.chance(5), "passwordlessSudo": false,
            "userTags": if rng.chance(30) { json!(["contractor", "remote"]) } else { json!(["staff"]) },
            "webLink": format!("https://console.jumpcloud.com/#/users/{key}/details"), "tag.AccountName": "Example",
        });
        ent(
            entity(
                key.clone(),
                "jumpcloud_user",
                &["User"],
                with_meta(obj(props), created, 1 + rng.below(3) as u32),
            ),
            sink,
        );
        rels.push(rel(
            &acct,
            "HAS",
            &key,
            "jumpcloud_account_has_user",
            json!({}),
            created,
        ));
        if u % 50 != 0 {
            let person = format!("employee:{email}");
            let props = json!({"email": email, "firstName": first, "lastName": last, "name": format!("{first} {last}"), "displayName": format!("{first} {last}")});
            ent(
                entity(
                    person.clone(),
                    "employee",
                    &["Person"],
                    with_meta(obj(props), created, 1),
                ),
                sink,
            );
            rels.push(rel(
                &key,
                "IS",
                &person,
                "jumpcloud_user_is_person",
                json!({}),
                created,
            ));
        }
        let mut mine: Vec<usize> = (0..groups_per_user).map(|_| rng.below(groups)).collect();
        mine.sort_unstable();
        mine.dedup();
        for g in mine {
            rels.push(rel(
                &format!("group{g:06}aaaaaaaaaaaa"),
                "HAS",
                &key,
                "jumpcloud_group_has_user",
                json!({}),
                created,
            ));
        }
        if rng.chance(30) {
            let a = rng.below(apps);
            rels.push(rel(
                &key,
                "ASSIGNED",
                &format!("app{a:06}bbbbbbbbbbbbbbb"),
                "jumpcloud_user_assigned_application",
                json!({"direct": true}),
                created,
            ));
        }
        flush(&mut rels, sink);
    }
    (ne, nr)
}

fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<usize>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

fn mib(b: usize) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn build(users: usize, groups_per_user: usize) -> Graph {
    // Generation alone, to subtract it from the build time.
    let (t, c) = (Instant::now(), cpu_ns());
    let (ne, nr) = generate(users, groups_per_user, &mut |e, r| {
        std::hint::black_box((e, r));
    });
    let (gen_time, gen_cpu) = (t.elapsed(), cpu_ns() - c);

    let rss0 = rss_bytes();
    let (t, c) = (Instant::now(), cpu_ns());
    let mut b = GraphBuilder::new();
    generate(users, groups_per_user, &mut |e, r| {
        if let Some(e) = e {
            b.add_entity(e);
        }
        if let Some(r) = r {
            b.add_relationship(r);
        }
    });
    let graph = b.build();
    let (total, total_cpu) = (t.elapsed(), cpu_ns() - c);
    let rss1 = rss_bytes();
    println!("  {ne} entities + {nr} relationships = {} objects", ne + nr);
    println!(
        "  build: wall {:.0} ms, cpu {:.0} ms; generating the JSON objects alone: wall {:.0} ms, cpu {:.0} ms; so GraphBuilder ≈ cpu {:.0} ms",
        ms(total),
        total_cpu as f64 / 1e6,
        ms(gen_time),
        gen_cpu as f64 / 1e6,
        total_cpu.saturating_sub(gen_cpu) as f64 / 1e6
    );
    println!(
        "  memory: RSS +{:.0} MiB across the build; graph heap estimate {:.0} MiB",
        mib(rss1.saturating_sub(rss0)),
        mib(graph.heap_bytes())
    );
    graph
}

/// CPU time of this thread in nanoseconds (/proc/thread-self/schedstat): unlike wall
/// time, it does not grow when other processes compete for the two cores.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// Per run: (wall, cpu), each sorted ascending; and the result's row count. The kernel
/// updates a running thread's CPU time at scheduler ticks, so take its mean, not a
/// percentile.
fn time_query(
    graph: &Graph,
    text: &str,
    opts: &ExecOptions,
    naive: bool,
) -> (Vec<Duration>, Vec<Duration>, usize) {
    let q = parse(text).unwrap_or_else(|e| panic!("{}", e.render(text)));
    // What a caller does with the result: an interactive query (capped) is shown, so its
    // J1 JSON is built; an alert rule (no cap) needs the total and the ids.
    let capped = opts.limit.is_none();
    let run = || {
        let result = if naive {
            q.execute_naive(graph, opts)
        } else {
            q.execute(graph, opts)
        };
        result.map(|r| {
            if capped {
                std::hint::black_box(r.to_j1_json().to_string().len());
            } else {
                std::hint::black_box(r.entity_ids().len());
            }
            r.total()
        })
    };
    let total = run().unwrap_or_else(|e| panic!("{text}: {e}"));
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    let start = Instant::now();
    // At least 5 runs, more while under two seconds, at most 30.
    while wall.len() < 5 || (start.elapsed() < Duration::from_secs(2) && wall.len() < 30) {
        let (t, c) = (Instant::now(), cpu_ns());
        std::hint::black_box(run().ok());
        wall.push(t.elapsed());
        cpu.push(Duration::from_nanos(cpu_ns().saturating_sub(c)));
    }
    wall.sort();
    cpu.sort();
    (wall, cpu, total)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<usize>().ok())
    };
    let sizes = match arg("--users") {
        Some(n) => vec![n],
        None => vec![10_000, 100_000],
    };
    let groups_per_user = arg("--groups-per-user").unwrap_or(10);
    let with_naive = args.iter().any(|a| a == "--naive");
    // `--repeat I N`: run query I (0-based) N times and nothing else, e.g. under perf.
    if let Some(i) = arg("--repeat") {
        let n = args
            .iter()
            .position(|a| a == "--repeat")
            .and_then(|p| args.get(p + 2))
            .and_then(|v| v.parse().ok())
            .unwrap_or(100);
        let graph = build(sizes[0], groups_per_user);
        let unlimited = args.iter().any(|a| a == "--unlimited");
        let opts = if unlimited {
            ExecOptions::unlimited(NOW)
        } else {
            ExecOptions::interactive(NOW)
        };
        let (mut wall, mut cpu, mut total) = (Vec::new(), Vec::new(), 0);
        for _ in 0..n {
            let (w, c, t) = time_query(&graph, QUERIES[i].1, &opts, false);
            (wall, cpu, total) = ([wall, w].concat(), [cpu, c].concat(), t);
        }
        wall.sort();
        println!(
            "{}: median wall {:.2} ms, mean cpu {:.2} ms, {total} rows",
            QUERIES[i].0,
            ms(wall[wall.len() / 2]),
            ms(cpu.iter().sum::<Duration>()) / cpu.len() as f64
        );
        return;
    }
    for users in sizes {
        println!("\n== {users} users, ~{groups_per_user} group memberships per user");
        let graph = build(users, groups_per_user);
        println!(
            "  {:<34} {:>9} {:>9} {:>9} {:>7}",
            "query (ms)", "wall p50", "cpu mean", "wall max", "rows"
        );
        for (name, text) in QUERIES {
            let mut modes = vec![
                (" [JSON]", ExecOptions::interactive(NOW), false),
                (" [rule: no cap, ids]", ExecOptions::unlimited(NOW), false),
            ];
            if with_naive {
                modes.push((" [naive, JSON]", ExecOptions::interactive(NOW), true));
            }
            for (mode, opts, naive) in modes {
                let (wall, cpu, total) = time_query(&graph, text, &opts, naive);
                println!(
                    "  {:<34} {:>9.2} {:>9.2} {:>9.2} {:>7}",
                    format!("{name}{mode}"),
                    ms(wall[wall.len() / 2]),
                    ms(cpu.iter().sum::<Duration>()) / cpu.len() as f64,
                    ms(wall[wall.len() - 1]),
                    total
                );
            }
            println!(
                "      plan: {}",
                parse(text)
                    .map(|q| q.explain(&graph, &ExecOptions::interactive(NOW)))
                    .unwrap_or_default()
            );
        }
    }
}
