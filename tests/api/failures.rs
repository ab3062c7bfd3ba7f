//! Failures of the parts around Backplane: PostgreSQL dying under load, and
//! SIGTERM arriving while a 10,000-item bulk mutation runs. Real servers, real
//! processes, every wait bounded.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use backplane::app::Application;
use backplane::config::{Config, Mode};
use backplane::store::{Store, StoreOptions, seed};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};

use crate::helpers::TestIssuer;
use crate::helpers::readyz_until;

const BULK: &str = "mutation Bulk($input: BulkOrganizationStatusInput!) {
  bulkUpdateOrganizationStatus(input: $input) { requested changed unchanged failed { id reason } }
}";

/// What an answer must never show: internals of the database or of a panic.
const LEAKS: &[&str] = &["SELECT", "INSERT", "UPDATE ", "sqlx", "panicked", "DbErr"];

// ---------------------------------------------------------------------------
// A PostgreSQL server of the test's own, which it may kill.
// ---------------------------------------------------------------------------

/// The directory of `initdb` and `pg_ctl`: on PATH, or the newest
/// /usr/lib/postgresql/*/bin (as scripts/postgres.sh looks).
fn pg_bin() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let initdb = dir.join("initdb");
            if initdb.is_file() && dir.join("pg_ctl").is_file() {
                let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
                return real.parent().map(Path::to_path_buf);
            }
        }
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|d| d.join("initdb").is_file())
        .collect();
    dirs.sort_by_key(|d| {
        d.parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A throwaway PostgreSQL server; stopped (immediately) when dropped, panics
/// included.
struct OwnPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// initdb refuses root: then the server runs as `postgres`, like
    /// scripts/postgres.sh does it.
    as_postgres: bool,
}

impl OwnPostgres {
    fn start() -> Self {
        let bin = pg_bin().expect(
            "no PostgreSQL binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin",
        );
        let dir = tempfile::Builder::new()
            .prefix("backplane-own-pg")
            .tempdir()
            .expect("temp dir");
        let as_postgres = is_root();
        if as_postgres {
            let exists = Command::new("id")
                .arg("postgres")
                .output()
                .is_ok_and(|o| o.status.success());
            if !exists {
                let ok = Command::new("useradd")
                    .args(["--system", "--no-create-home", "postgres"])
                    .status()
                    .is_ok_and(|s| s.success());
                assert!(ok, "could not create the postgres user");
            }
            let ok = Command::new("chown")
                .arg("postgres")
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown of the data directory");
        }
        let pg = Self {
            dir,
            bin,
            port: free_port(),
            as_postgres,
        };
        let data = pg.data();
        let out = pg.run(
            "initdb",
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        assert!(out.0, "initdb failed: {}", out.1);
        pg.start_server();
        pg
    }

    fn data(&self) -> String {
        format!("{}/data", self.dir.path().display())
    }

    /// Runs a PostgreSQL binary (as `postgres` when we are root): (success, output).
    fn run(&self, program: &str, args: &[&str]) -> (bool, String) {
        let exe = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        match cmd.args(args).output() {
            Ok(o) => (
                o.status.success(),
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                ),
            ),
            Err(e) => (false, format!("cannot run {}: {e}", exe.display())),
        }
    }

    fn start_server(&self) {
        let data = self.data();
        let log = format!("{}/server.log", self.dir.path().display());
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100",
            self.port,
            self.dir.path().display()
        );
        let (ok, out) = self.run(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-w", "-t", "60", "-o", &opts, "start",
            ],
        );
        assert!(
            ok,
            "pg_ctl start failed: {out}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    fn stop_immediately(&self) -> (bool, String) {
        let data = self.data();
        self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"])
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self.stop_immediately();
    }
}

async fn raw_rows(db: &DatabaseConnection, sql: &str) -> Vec<sea_orm::QueryResult> {
    db.query_all_raw(sea_orm::Statement::from_string(
        db.get_database_backend(),
        sql.to_owned(),
    ))
    .await
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Every organization's status, by id, read straight from the database.
async fn statuses(db: &DatabaseConnection) -> BTreeMap<i64, String> {
    raw_rows(db, "SELECT id, status FROM organizations ORDER BY id")
        .await
        .iter()
        .map(|r| {
            (
                r.try_get::<i64>("", "id").expect("id"),
                r.try_get::<String>("", "status").expect("status"),
            )
        })
        .collect()
}

/// Bulk audit events: (event id, parsed details), in chain order.
async fn bulk_events(db: &DatabaseConnection) -> Vec<(i64, Value)> {
    raw_rows(
        db,
        "SELECT id, details FROM audit_events WHERE details IS NOT NULL ORDER BY id",
    )
    .await
    .iter()
    .filter_map(|r| {
        let id = r.try_get::<i64>("", "id").ok()?;
        let details = r.try_get::<Option<String>>("", "details").ok()??;
        let v = serde_json::from_str::<Value>(&details).ok()?;
        (v["mutation"] == "bulkUpdateOrganizationStatus").then_some((id, v))
    })
    .collect()
}

// ---------------------------------------------------------------------------
// 1. PostgreSQL dies mid-stream.
// ---------------------------------------------------------------------------

/// How one request ended, as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Seen {
    Ok,
    /// HTTP 200 with errors, every one carrying this code.
    GraphqlError(String),
    /// Another HTTP status (503 is the one allowed).
    Status(u16),
    /// The connection failed (no answer).
    Transport,
}

struct Mutation {
    marker: String,
    row: i64,
    to: &'static str,
    changed: Option<i64>,
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    query: &str,
    variables: Value,
    limit: Duration,
) -> (Seen, Value) {
    let send = async {
        let resp = client
            .post(url)
            .bearer_auth(token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        Ok::<_, reqwest::Error>((status, text))
    };
    let (status, text) = match tokio::time::timeout(limit, send).await {
        Err(_) => panic!("a request hung past {limit:?}: {query} {variables}"),
        Ok(Err(_)) => return (Seen::Transport, Value::Null),
        Ok(Ok(r)) => r,
    };
    for leak in LEAKS {
        assert!(
            !text.contains(leak),
            "an answer shows internals ({leak}): {status} {text}"
        );
    }
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    assert_ne!(status, 500, "a 500: {text}");
    let seen = match status {
        200 => match body.get("errors").and_then(Value::as_array) {
            None => Seen::Ok,
            Some(errors) => {
                let codes: Vec<&str> = errors
                    .iter()
                    .map(|e| e["extensions"]["code"].as_str().unwrap_or("-"))
                    .collect();
                assert!(
                    codes.iter().all(|c| *c == "UNAVAILABLE"),
                    "an error other than UNAVAILABLE while the database was away: {text}"
                );
                Seen::GraphqlError(codes[0].to_owned())
            }
        },
        503 => Seen::Status(503),
        other => panic!("unexpected status {other}: {text}"),
    };
    (seen, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_dying_mid_stream_gives_clean_errors_and_loses_no_audit_event() {
    let pg = OwnPostgres::start();
    let admin = Database::connect(pg.url("postgres").as_str())
        .await
        .expect("connect to our own PostgreSQL");
    admin
        .execute_unprepared("CREATE DATABASE backplane_fault")
        .await
        .expect("create database");
    admin.close().await.ok();
    let url = pg.url("backplane_fault");
    {
        let store = Store::connect(&StoreOptions::new(url.clone()))
            .await
            .expect("store");
        store.migrate().await.expect("migrate");
        seed::seed(&store, 50).await.expect("seed");
    }

    let request_timeout = Duration::from_secs(5);
    let issuer = TestIssuer::start().await;
    let mut config = Config::new(
        Mode::Serve,
        "127.0.0.1:0".parse().expect("addr"),
        StoreOptions::new(url.clone()),
    );
    config.oidc = Some(issuer.settings());
    config.dev_seed_orgs = 0;
    config.request_timeout = request_timeout;
    let app = Application::build(config).await.expect("build app");
    let addr = app.local_addr();
    let server = tokio::spawn(async move {
        app.run_until_stopped(std::future::pending()).await.ok();
    });
    let graphql = format!("http://{addr}/graphql");
    let readyz = format!("http://{addr}/readyz");
    let client = reqwest::Client::new();
    let limit = request_timeout + Duration::from_secs(5);
    assert!(
        readyz_until(&client, &readyz, 200, Duration::from_secs(20))
            .await
            .0
    );

    // Organizations that may go ACTIVE <-> SUSPENDED, each owned by one task
    // so that the order of its changes is the order of its requests.
    let raw = Database::connect(url.as_str()).await.expect("raw");
    let before = statuses(&raw).await;
    let movable: Vec<i64> = before
        .iter()
        .filter(|(_, s)| *s == "ACTIVE" || *s == "SUSPENDED")
        .map(|(id, _)| *id)
        .collect();
    assert!(movable.len() >= 8, "{before:?}");

    const TASKS: usize = 4;
    const TOTAL: usize = 300;
    let started = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let recovered = Arc::new(AtomicBool::new(false));
    let reader = issuer.token("admin-1", &["admin"]);
    let writer = issuer.token("ops-1", &["ops"]);
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let mine: Vec<i64> = movable.iter().copied().skip(t).step_by(TASKS).collect();
        let mut next: HashMap<i64, &'static str> = mine
            .iter()
            .map(|row| {
                let to = if before[row] == "ACTIVE" {
                    "SUSPENDED"
                } else {
                    "ACTIVE"
                };
                (*row, to)
            })
            .collect();
        let (client, graphql, reader, writer) = (
            client.clone(),
            graphql.clone(),
            reader.clone(),
            writer.clone(),
        );
        let (started, done, recovered) = (started.clone(), done.clone(), recovered.clone());
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut mutations = Vec::new();
            let mut i = 0usize;
            loop {
                let n = started.fetch_add(1, Ordering::SeqCst);
                if n >= TOTAL {
                    break;
                }
                let after = recovered.load(Ordering::SeqCst);
                if i.is_multiple_of(2) {
                    let (s, _) = post(
                        &client,
                        &graphql,
                        &reader,
                        "query Read { organizations(first: 5, orderBy: NAME_ASC) { nodes { id status users(first: 2) { nodes { email } } } } }",
                        json!({}),
                        limit,
                    )
                    .await;
                    seen.push((s, after));
                } else {
                    let row = mine[(i / 2) % mine.len()];
                    let to = next[&row];
                    let marker = format!("fault-{t}-{i}");
                    let (s, body) = post(
                        &client,
                        &graphql,
                        &writer,
                        BULK,
                        json!({ "input": { "ids": [format!("org_{row}")], "status": to, "reason": marker } }),
                        limit,
                    )
                    .await;
                    let changed = body["data"]["bulkUpdateOrganizationStatus"]["changed"].as_i64();
                    if s == Seen::Ok {
                        // Seen applied (or already there): the next call goes back.
                        next.insert(row, if to == "ACTIVE" { "SUSPENDED" } else { "ACTIVE" });
                    }
                    mutations.push(Mutation {
                        marker,
                        row,
                        to,
                        changed,
                    });
                    seen.push((s, after));
                }
                i += 1;
                done.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            (seen, mutations)
        }));
    }

    // Partway: PostgreSQL dies, stays away ~2 s, comes back.
    let wait_start = Instant::now();
    while done.load(Ordering::SeqCst) < 60 {
        assert!(
            wait_start.elapsed() < Duration::from_secs(60),
            "60 requests did not finish in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let down_at = Instant::now();
    let (ok, out) = pg.stop_immediately();
    assert!(ok, "pg_ctl stop: {out}");
    let requests_at_stop = done.load(Ordering::SeqCst);
    let (saw_503, polls_down, last) =
        readyz_until(&client, &readyz, 503, Duration::from_secs(15)).await;
    assert!(
        saw_503,
        "/readyz did not answer 503 while the database was down ({polls_down} polls, last {last:?})"
    );
    let ready_503_after = down_at.elapsed();
    // Down for at least 2 s, and until a few requests have ended during the
    // outage (a request waits for a connection for a while, so a short outage
    // is ridden out without errors), at most 20 s.
    while down_at.elapsed() < Duration::from_secs(2)
        || (done.load(Ordering::SeqCst) < requests_at_stop + 4
            && down_at.elapsed() < Duration::from_secs(20))
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // It stays 503 for the whole outage.
    let (_, _, still) = readyz_until(&client, &readyz, 200, Duration::from_millis(1)).await;
    assert_eq!(still, Some(503), "/readyz during the outage");
    pg.start_server();
    let up_at = Instant::now();
    let requests_at_start = done.load(Ordering::SeqCst);
    let (back, polls_up, last) = readyz_until(&client, &readyz, 200, Duration::from_secs(30)).await;
    assert!(
        back,
        "/readyz did not come back to 200 within 30 s of PostgreSQL's restart ({polls_up} polls, last {last:?})"
    );
    let ready_200_after = up_at.elapsed();
    recovered.store(true, Ordering::SeqCst);

    let mut seen = Vec::new();
    let mut mutations = Vec::new();
    for t in tasks {
        let joined = tokio::time::timeout(Duration::from_secs(120), t)
            .await
            .expect("the request tasks ended within 120 s")
            .expect("a request task panicked");
        seen.extend(joined.0);
        mutations.extend(joined.1);
    }

    // Afterwards: reads and writes succeed again.
    let (s, body) = post(
        &client,
        &graphql,
        &reader,
        "{ organizations(first: 3) { nodes { id } } }",
        json!({}),
        limit,
    )
    .await;
    assert_eq!(s, Seen::Ok, "a read after the database came back: {body}");
    let row = movable[0];
    let current: String = raw_rows(
        &raw,
        &format!("SELECT status FROM organizations WHERE id = {row}"),
    )
    .await[0]
        .try_get("", "status")
        .expect("status");
    // `raw`'s pooled connection died with the server; the query above reconnected.
    let to = if current == "ACTIVE" {
        "SUSPENDED"
    } else {
        "ACTIVE"
    };
    let (s, body) = post(
        &client,
        &graphql,
        &writer,
        BULK,
        json!({ "input": { "ids": [format!("org_{row}")], "status": to, "reason": "fault-after" } }),
        limit,
    )
    .await;
    assert_eq!(
        s,
        Seen::Ok,
        "a mutation after the database came back: {body}"
    );
    assert_eq!(
        body["data"]["bulkUpdateOrganizationStatus"]["changed"], 1,
        "{body}"
    );
    mutations.push(Mutation {
        marker: "fault-after".into(),
        row,
        to,
        changed: Some(1),
    });

    // The distribution, before and after recovery.
    let mut distribution: BTreeMap<(bool, Seen), usize> = BTreeMap::new();
    for (s, after) in &seen {
        *distribution.entry((*after, s.clone())).or_default() += 1;
    }
    eprintln!(
        "postgres dies mid-stream: {} requests; stopped after {requests_at_stop}, restarted after {requests_at_start}; /readyz 503 after {ready_503_after:?} ({polls_down} polls), 200 {ready_200_after:?} after restart ({polls_up} polls)",
        seen.len()
    );
    for ((after, s), n) in &distribution {
        eprintln!(
            "  {:<22} {s:?}: {n}",
            if *after {
                "after recovery"
            } else {
                "before/during outage"
            }
        );
    }
    assert!(
        seen.iter().any(|(s, _)| *s != Seen::Ok),
        "no request met the outage: {distribution:?}"
    );

    // Every change the client saw has its audit event, and every status is
    // explained by the audit log: the last applied event of each organization
    // names its status, or it has none and kept its first one.
    let events = bulk_events(&raw).await;
    let by_marker: HashMap<String, &Value> = events
        .iter()
        .filter_map(|(_, d)| d["reason"].as_str().map(|r| (r.to_owned(), d)))
        .collect();
    let mut seen_changed = 0;
    let mut missing = Vec::new();
    for m in &mutations {
        if m.changed == Some(1) {
            seen_changed += 1;
            match by_marker.get(&m.marker) {
                Some(d)
                    if d["applied"] == true
                        && d["changedIds"] == json!([m.row])
                        && d["change"]["status"] == m.to => {}
                other => missing.push(format!(
                    "{} (org {} to {}): {other:?}",
                    m.marker, m.row, m.to
                )),
            }
        }
    }
    assert!(
        missing.is_empty(),
        "changes the client saw succeed without their audit event: {missing:#?}"
    );
    let mut expected = before.clone();
    let mut applied_events = 0;
    for (_, d) in &events {
        if d["applied"] == true {
            applied_events += 1;
            let status = d["change"]["status"].as_str().expect("status").to_owned();
            for id in d["changedIds"].as_array().expect("changedIds") {
                expected.insert(id.as_i64().expect("row id"), status.clone());
            }
        }
    }
    let after = statuses(&raw).await;
    let unexplained: Vec<_> = after
        .iter()
        .filter(|(id, s)| expected.get(id) != Some(s))
        .map(|(id, s)| {
            format!(
                "org_{id}: {} -> {s}, audit says {:?}",
                before[id],
                expected.get(id)
            )
        })
        .collect();
    assert!(
        unexplained.is_empty(),
        "statuses changed without an audit event: {unexplained:#?}"
    );
    eprintln!(
        "  mutations: {} sent, {seen_changed} seen changed, {applied_events} applied audit events; chain verified below",
        mutations.len()
    );
    raw.close().await.ok();

    let out = Command::new(env!("CARGO_BIN_EXE_backplane"))
        .args(["audit", "verify", "--database-url", &url])
        .output()
        .expect("run backplane audit verify");
    assert!(
        out.status.success(),
        "the audit chain is broken after the outage: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    server.abort();
    drop(pg);
}

// ---------------------------------------------------------------------------
// 2. SIGTERM during a 10,000-item bulk mutation.
// ---------------------------------------------------------------------------

const ITEMS: usize = 10_000;

/// Seeds `url` with 10,000 organizations through the binary.
fn seed_cli(url: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_backplane"))
        .args(["seed", "--orgs", &ITEMS.to_string(), "--database-url", url])
        .output()
        .expect("run backplane seed");
    assert!(
        out.status.success(),
        "seed failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// How one round ended in the database.
#[derive(Debug, PartialEq, Eq)]
enum Landed {
    /// Nothing changed, no event.
    Nothing,
    /// All 10,000 changed, with their event.
    Everything,
}

async fn sigterm_round(url: &str, dir: &Path, round: usize, delay: Duration) -> (Landed, String) {
    let raw = Database::connect(url).await.expect("raw connection");
    raw.execute_unprepared("UPDATE organizations SET status = 'ACTIVE'")
        .await
        .expect("reset statuses");
    raw.close().await.ok();

    let port = free_port();
    let log_path = dir.join(format!("server-{round}.log"));
    let mut child = crate::helpers::backplane_process(&log_path)
        .args([
            "dev",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            url,
        ])
        .spawn()
        .expect("start backplane dev");
    let pid = child.id().expect("pid");
    let server_log = || std::fs::read_to_string(&log_path).unwrap_or_default();

    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let (ready, polls, last) = readyz_until(
        &client,
        &format!("{base}/readyz"),
        200,
        Duration::from_secs(60),
    )
    .await;
    assert!(
        ready,
        "dev did not get ready ({polls} polls, {last:?}): {}",
        server_log()
    );

    let marker = format!("sigterm-{round}-{}", uuid::Uuid::new_v4().simple());
    let ids: Vec<String> = (1..=ITEMS).map(|i| format!("org_{i}")).collect();
    let body = json!({ "query": BULK, "variables": { "input": {
        "ids": ids, "status": "SUSPENDED", "reason": marker } } });
    let sent = Instant::now();
    let request = tokio::spawn({
        let client = client.clone();
        let url = format!("{base}/graphql");
        async move {
            let r = async {
                let resp = client.post(&url).json(&body).send().await?;
                let status = resp.status().as_u16();
                Ok::<_, reqwest::Error>((status, resp.text().await?))
            };
            let out = tokio::time::timeout(Duration::from_secs(90), r).await;
            (out, sent.elapsed())
        }
    });
    tokio::time::sleep(delay).await;
    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(killed, "kill -TERM {pid}");
    let term_at = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the server did not exit within 60 s of SIGTERM: {}",
                server_log()
            )
        })
        .expect("wait for the server");
    let exit_after = term_at.elapsed();
    assert!(
        status.success(),
        "exit after SIGTERM: {status}: {}",
        server_log()
    );
    let (response, took) = tokio::time::timeout(Duration::from_secs(30), request)
        .await
        .unwrap_or_else(|_| {
            // Seen once under a fully loaded machine: say what the server did.
            panic!(
                "round {round}: the client's request had not ended 30 s after the server exited \
                 (it exited {exit_after:?} after SIGTERM, sent {delay:?} after the request started; port {port}): {}",
                server_log()
            )
        })
        .expect("request task");
    let response = response.expect("the request did not hang 90 s");

    let raw = Database::connect(url).await.expect("raw connection");
    let suspended: i64 = raw_rows(
        &raw,
        "SELECT count(*) AS n FROM organizations WHERE status = 'SUSPENDED'",
    )
    .await[0]
        .try_get("", "n")
        .expect("count");
    let events: Vec<Value> = bulk_events(&raw)
        .await
        .into_iter()
        .map(|(_, d)| d)
        .filter(|d| d["reason"] == marker.as_str())
        .collect();
    raw.close().await.ok();
    let listed = events
        .iter()
        .filter(|d| d["applied"] == true)
        .map(|d| d["changedIds"].as_array().map_or(0, Vec::len))
        .collect::<Vec<_>>();

    let client_saw = match &response {
        Ok((status, text)) => {
            let short: String = text.chars().take(200).collect();
            format!("HTTP {status} {short}")
        }
        Err(e) => format!("connection error: {e}"),
    };
    let landed = if suspended == ITEMS as i64 && listed == [ITEMS] {
        Landed::Everything
    } else if suspended == 0 && listed.is_empty() {
        Landed::Nothing
    } else {
        panic!(
            "round {round}: half a bulk change: {suspended} suspended, events listing {listed:?}; client saw {client_saw}\n{}",
            server_log()
        );
    };
    if let Ok((200, text)) = &response {
        let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        if body["data"]["bulkUpdateOrganizationStatus"]["changed"] == ITEMS {
            assert_eq!(landed, Landed::Everything, "the client saw success: {text}");
        }
    }
    if let Ok((status, text)) = &response {
        for leak in LEAKS {
            assert!(!text.contains(leak), "{status} {text}");
        }
    }
    let report = format!(
        "round {round}: SIGTERM {delay:?} after sending; {landed:?} landed; client saw {client_saw} after {took:?}; exited {exit_after:?} after SIGTERM"
    );
    (landed, report)
}

async fn sigterm_rounds(url: &str, dir: &Path, label: &str) {
    let mut reports = Vec::new();
    for (round, ms) in [0u64, 20, 150].into_iter().enumerate() {
        let (_, report) = sigterm_round(url, dir, round, Duration::from_millis(ms)).await;
        eprintln!("sigterm ({label}) {report}");
        reports.push(report);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_bulk_mutation_leaves_all_or_nothing_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/sigterm.db", dir.path().display());
    seed_cli(&url);
    sigterm_rounds(&url, dir.path(), "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_bulk_mutation_leaves_all_or_nothing_postgres() {
    let admin_url = std::env::var("BACKPLANE_TEST_POSTGRES_URL")
        .expect("BACKPLANE_TEST_POSTGRES_URL (scripts/test sets it)");
    let name = format!("bp_sigterm_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(admin_url.as_str())
        .await
        .expect("connect to the test PostgreSQL server");
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create database");
    admin.close().await.ok();
    let url = match admin_url.rfind('/') {
        Some(i) => format!("{}/{name}", &admin_url[..i]),
        None => format!("{admin_url}/{name}"),
    };
    let dir = tempfile::tempdir().expect("temp dir");
    seed_cli(&url);
    sigterm_rounds(&url, dir.path(), "postgres").await;
}
