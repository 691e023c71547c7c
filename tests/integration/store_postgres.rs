//! The PostgreSQL store against a real server (`support::postgres`: Debian's PostgreSQL,
//! started in a temporary directory as an unprivileged user on a loopback port): a fleet
//! writing one store, an outage mid-run, copy, prune, and refusals that change nothing.

use crate::support::postgres::Postgres;
use crate::support::store::{mismatched, run_info, standard_workload, write};
use crate::support::{self, Running};
use assert_cmd::Command;
use shadowdiff::store::{Location, StoreError, StoreOptions, StoreReader, StoreWriter};

/// `shadowdiff ARGS…` through the real binary: (exit code, stdout, stderr).
fn shadowdiff(args: &[&str]) -> (i32, String, String) {
    let output = Command::cargo_bin("shadowdiff")
        .unwrap()
        .args(args)
        .env_remove("SHADOWDIFF_STORE")
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn at(url: &str) -> Location {
    Location::parse(url).unwrap()
}

fn report(store: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["report", "--format", "json", "--store", store];
    args.extend_from_slice(extra);
    let (code, out, err) = shadowdiff(&args);
    assert_eq!(code, 0, "report failed: {err}");
    serde_json::from_str(&out).unwrap()
}

fn count(report: &serde_json::Value, field: &str) -> u64 {
    report["summary"][field].as_u64().unwrap()
}

/// A primary and a secondary that differ on `/diff/*` paths.
async fn upstreams() -> (support::Backend, support::Backend) {
    let primary = support::backend(|r| async move {
        support::text(
            200,
            &format!("{{\"path\": \"{}\", \"v\": 1}}", r.uri.path()),
        )
    })
    .await;
    let secondary = support::backend(|r| async move {
        let v = if r.uri.path().starts_with("/diff") {
            2
        } else {
            1
        };
        support::text(
            200,
            &format!("{{\"path\": \"{}\", \"v\": {v}}}", r.uri.path()),
        )
    })
    .await;
    (primary, secondary)
}

fn serve(
    store: &str,
    instance: &str,
    primary: &support::Backend,
    secondary: &support::Backend,
    extra: &[(&str, &str)],
) -> Running {
    let mut env = vec![
        ("SHADOWDIFF_PRIMARY", primary.url()),
        ("SHADOWDIFF_SECONDARY", secondary.url()),
        ("SHADOWDIFF_LISTEN", "127.0.0.1:0".to_string()),
        ("SHADOWDIFF_ADMIN", "127.0.0.1:0".to_string()),
        ("SHADOWDIFF_STORE", store.to_string()),
        ("SHADOWDIFF_INSTANCE", instance.to_string()),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    support::spawn_serve(&[], &env)
}

/// Sends `n` GETs (every third to a differing path); each must get the primary's answer.
async fn send(running: &Running, n: usize, tag: &str) {
    let http = support::client();
    for i in 0..n {
        let path = match i % 3 {
            0 => format!("/diff/{tag}/{i}"),
            _ => format!("/same/{tag}/{i}"),
        };
        let response = http
            .get(format!("http://{}{path}", running.listen))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body = response.text().await.unwrap();
        assert_eq!(
            body,
            format!("{{\"path\": \"{path}\", \"v\": 1}}"),
            "the client gets the primary's answer"
        );
    }
}

fn stop(mut running: Running) {
    running.signal("TERM");
    let status = running.wait();
    assert!(status.success(), "serve exited with {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_serve_processes_writing_one_postgres_give_one_report_with_exact_totals() {
    let Some(pg) = Postgres::start() else { return };
    let store = pg.create_database("fleet");
    let (primary, secondary) = upstreams().await;
    let replicas: Vec<Running> = ["replica-1", "replica-2", "replica-3"]
        .iter()
        .map(|name| serve(&store, name, &primary, &secondary, &[]))
        .collect();
    // All three at once, different amounts each.
    let sent = [30usize, 45, 60];
    let mut tasks = Vec::new();
    for (running, n) in replicas.iter().zip(sent) {
        let listen = running.listen;
        tasks.push(tokio::spawn(async move {
            let http = support::client();
            for i in 0..n {
                let path = if i % 3 == 0 {
                    format!("/diff/{i}")
                } else {
                    format!("/same/{i}")
                };
                let response = http
                    .get(format!("http://{listen}{path}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for running in replicas {
        stop(running);
    }
    let all = report(&store, &[]);
    assert_eq!(count(&all, "requests"), 135, "{all:#}");
    assert_eq!(count(&all, "mismatched"), 10 + 15 + 20);
    assert_eq!(count(&all, "matched"), 20 + 30 + 40);
    assert_eq!(all["runs"].as_array().unwrap().len(), 3);
    let instances = all["instances"].as_array().unwrap();
    let by_name = |name: &str| {
        instances
            .iter()
            .find(|i| i["instance"] == name)
            .unwrap_or_else(|| panic!("no {name} in {instances:#?}"))
    };
    assert_eq!(by_name("replica-1")["requests"], 30);
    assert_eq!(by_name("replica-2")["requests"], 45);
    assert_eq!(by_name("replica-3")["mismatched"], 20);
    let one = report(&store, &["--instance", "replica-2"]);
    assert_eq!(count(&one, "requests"), 45);
    assert_eq!(one["runs"].as_array().unwrap().len(), 1);
    // The gate reads the central store too.
    let (code, out, _) = shadowdiff(&["gate", "--store", &store, "--max-mismatch-rate", "50%"]);
    assert_eq!(code, 1, "GET /diff/{{id}} mismatches every time: {out}");
    assert!(out.contains("45 of 45"), "{out}");
    let (code, out, _) = shadowdiff(&["gate", "--store", &store, "--max-mismatch-rate", "100%"]);
    assert_eq!(code, 0, "{out}");
    // Plain SQL reads it.
    assert_eq!(
        pg.psql("fleet", "SELECT SUM(count) FROM outcome_counts"),
        "135"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_mid_run_changes_nothing_for_clients_and_every_observation_is_counted() {
    let Some(pg) = Postgres::start() else { return };
    let store = pg.create_database("outage");
    let (primary, secondary) = upstreams().await;
    // A small backlog, so the outage outlasts it and losses happen.
    let running = serve(
        &store,
        "solo",
        &primary,
        &secondary,
        &[("SHADOWDIFF_STORE_BACKLOG", "20")],
    );
    send(&running, 30, "before").await;
    let stored = || {
        pg.psql(
            "outage",
            "SELECT COALESCE(SUM(count), 0) FROM outcome_counts",
        )
    };
    support::wait_for("the first requests stored", || async { stored() == "30" }).await;

    pg.stop();
    send(&running, 60, "during").await;
    let admin = running.admin;
    support::wait_for("the store seen unreachable", || async move {
        support::status(admin).await["store"]["connected"] == false
    })
    .await;
    let (health, _) = support::get(format!("http://{admin}/healthz")).await;
    assert_eq!(
        health, 200,
        "an unreachable store does not make the proxy unhealthy"
    );
    let lost_metric = || async move {
        let text = support::metrics(admin).await;
        support::value(
            &text,
            r#"shadowdiff_store_lost_total{reason="store_unavailable"}"#,
        )
        .unwrap_or(0.0)
    };
    support::wait_for("losses past the backlog counted", || async move {
        lost_metric().await > 0.0
    })
    .await;

    pg.start_again();
    // The writer reconnects on its own, with nothing to write.
    let guard = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while support::status(admin).await["store"]["connected"] != true {
        assert!(
            std::time::Instant::now() < guard,
            "the store never came back: {:#}\n{}\n{}",
            support::status(admin).await,
            running.logs.lock().unwrap().join("\n"),
            pg.log_text()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    send(&running, 30, "after").await;
    support::wait_for("the last requests stored", || async {
        pg.psql(
            "outage",
            "SELECT COALESCE(SUM(count), 0) FROM outcome_counts",
        )
        .parse::<u64>()
        .unwrap()
            >= 60
    })
    .await;
    let lost = lost_metric().await as u64;
    stop(running);

    let after = report(&store, &[]);
    let written = count(&after, "requests");
    let recorded_loss = after["summary"]["lost"]["store_unavailable"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(
        recorded_loss, lost,
        "the store holds the losses the metric counted: {after:#}"
    );
    assert!(lost > 0 && lost <= 60, "{lost} lost");
    assert_eq!(
        written + lost,
        120,
        "every request is stored or counted lost: {after:#}"
    );
    assert_eq!(count(&after, "dropped"), 0);
}

#[test]
fn store_copy_twice_counts_once_and_again_after_growth_adds_exactly_the_new_rows() {
    let Some(pg) = Postgres::start() else { return };
    let central = pg.create_database("central");
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("sidecar.db");
    write(&local, standard_workload(), StoreOptions::default());
    let from = format!("sqlite:{}", local.display());
    let copy = || {
        let (code, out, err) = shadowdiff(&["store", "copy", "--from", &from, "--to", &central]);
        assert_eq!(code, 0, "{err}");
        out
    };
    let local_report = support::report_json(&local);
    let printed = copy();
    assert!(printed.contains("1 new runs"), "{printed}");
    let once = report(&central, &[]);
    copy();
    let twice = report(&central, &[]);
    for field in ["requests", "matched", "mismatched", "errors", "skipped"] {
        assert_eq!(count(&once, field), count(&local_report, field), "{field}");
        assert_eq!(
            count(&twice, field),
            count(&once, field),
            "{field} after a second copy"
        );
    }
    let mismatch_rows = || pg.psql("central", "SELECT COUNT(*) FROM mismatches");
    let difference_rows = || pg.psql("central", "SELECT COUNT(*) FROM differences");
    let (m1, d1) = (mismatch_rows(), difference_rows());
    assert_eq!(m1, "10");

    // The sidecar goes on: one more run, then a third copy adds exactly it.
    write(
        &local,
        vec![
            mismatched("GET /users/{id}", "/users/77", &["body/price"]),
            mismatched("GET /users/{id}", "/users/78", &["status"]),
        ],
        StoreOptions::default(),
    );
    copy();
    let grown = report(&central, &[]);
    assert_eq!(count(&grown, "mismatched"), count(&twice, "mismatched") + 2);
    assert_eq!(mismatch_rows(), "12");
    assert_eq!(
        difference_rows().parse::<u64>().unwrap(),
        d1.parse::<u64>().unwrap() + 2
    );
    // The report of the central store has the local one's examples, differences included.
    let route = grown["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route"] == "GET /users/{id}")
        .unwrap();
    assert!(!route["examples"].as_array().unwrap().is_empty());
    assert!(!route["examples"][0]["differences"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn a_database_of_another_application_is_refused_and_left_unchanged() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.create_database("app");
    pg.psql("app", "CREATE TABLE users (id int PRIMARY KEY, email text); INSERT INTO users VALUES (1, 'a@example.com');");
    let schema = || {
        pg.psql(
            "app",
            "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables WHERE table_schema = 'public'",
        )
    };
    let before = schema();
    let refused = StoreWriter::open(at(&url), run_info(&[]), StoreOptions::default())
        .err()
        .expect("a foreign database is refused");
    let message = refused.to_string();
    assert!(
        message.contains("not a shadowdiff database") && message.contains("users"),
        "{message}"
    );
    let (code, _, err) = shadowdiff(&["report", "--store", &url]);
    assert_eq!(code, 2);
    assert!(err.contains("not a shadowdiff database"), "{err}");
    let (code, _, err) = shadowdiff(&[
        "store",
        "copy",
        "--from",
        &url,
        "--to",
        "sqlite:/nonexistent/x.db",
    ]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(schema(), before, "nothing was created");
    assert_eq!(pg.psql("app", "SELECT email FROM users"), "a@example.com");
}

#[test]
fn a_store_of_a_newer_release_that_older_writers_may_not_use_is_refused_unchanged() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.create_database("newer");
    write(at(&url), standard_workload(), StoreOptions::default());
    // A later release's non-additive step: the store says so in meta.
    pg.psql(
        "newer",
        "UPDATE meta SET value = '9' WHERE key = 'schema_version';
         UPDATE meta SET value = '9' WHERE key = 'min_writer_schema';",
    );
    let dump = || pg.psql("newer", "SELECT COUNT(*), MAX(id) FROM runs");
    let before = dump();
    let refused = StoreWriter::open(at(&url), run_info(&[]), StoreOptions::default())
        .err()
        .expect("refused");
    assert!(
        matches!(refused, StoreError::PgSchema { .. }),
        "{refused:?}"
    );
    assert!(
        refused.to_string().contains("upgrade shadowdiff"),
        "{refused}"
    );
    assert!(StoreReader::open(at(&url)).is_err());
    assert_eq!(dump(), before);

    // A newer store whose changes were additive (min writer unchanged) is written.
    pg.psql(
        "newer",
        "UPDATE meta SET value = '1' WHERE key = 'min_writer_schema';",
    );
    write(at(&url), standard_workload(), StoreOptions::default());
    assert_eq!(pg.psql("newer", "SELECT COUNT(*) FROM runs"), "2");
}

#[test]
fn the_password_in_a_store_url_is_never_printed_or_stored() {
    let Some(pg) = Postgres::start() else { return };
    pg.create_database("secret");
    pg.psql("secret", "ALTER USER shadowdiff PASSWORD 'hunter2-pg'");
    let url = format!(
        "postgres://shadowdiff:hunter2-pg@127.0.0.1:{}/secret",
        pg.port()
    );
    write(at(&url), standard_workload(), StoreOptions::default());
    let (code, out, err) = shadowdiff(&["report", "--format", "text", "--store", &url]);
    assert_eq!(code, 0, "{err}");
    assert!(
        !out.contains("hunter2") && !err.contains("hunter2"),
        "{out}{err}"
    );
    assert!(out.contains("postgres://shadowdiff:***@127.0.0.1"), "{out}");
    // An error names the store without the password.
    let wrong_db = format!(
        "postgres://shadowdiff:hunter2-pg@127.0.0.1:{}/nosuchdb",
        pg.port()
    );
    let (code, _, err) = shadowdiff(&["report", "--store", &wrong_db]);
    assert_eq!(code, 2);
    assert!(
        err.contains("nosuchdb") && !err.contains("hunter2"),
        "{err}"
    );
    let (code, out, err) = Command::cargo_bin("shadowdiff")
        .unwrap()
        .args(["config", "check"])
        .env("SHADOWDIFF_PRIMARY", "http://127.0.0.1:1")
        .env("SHADOWDIFF_SECONDARY", "http://127.0.0.1:2")
        .env("SHADOWDIFF_STORE", &url)
        .output()
        .map(|o| {
            (
                o.status.code(),
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })
        .unwrap();
    let _ = code;
    assert!(
        !out.contains("hunter2") && !err.contains("hunter2"),
        "{out}{err}"
    );
    let dump = pg.psql(
        "secret",
        "SELECT string_agg(primary_url || secondary_url || rules, '') FROM runs",
    );
    assert!(!dump.contains("hunter2"));
}

#[test]
fn prune_keeps_the_counts_of_the_remaining_span_exact() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.create_database("prune");
    let dir = tempfile::tempdir().unwrap();
    let file = format!("sqlite:{}", dir.path().join("p.db").display());
    for location in [url.clone(), file] {
        let now = std::time::SystemTime::now();
        let old = now - std::time::Duration::from_secs(40 * 86_400);
        let mut records = standard_workload();
        let mut aged = standard_workload();
        for record in &mut aged {
            record.at = old;
        }
        records.extend(aged);
        write(at(&location), records, StoreOptions::default());
        let recent_before = report(&location, &["--since", "30d"]);
        let all_before = report(&location, &[]);
        assert_eq!(
            count(&all_before, "requests"),
            2 * count(&recent_before, "requests")
        );
        let (code, out, err) = shadowdiff(&[
            "store",
            "prune",
            "--store",
            &location,
            "--older-than",
            "30d",
        ]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("pruned"), "{out}");
        let after = report(&location, &[]);
        for field in ["requests", "matched", "mismatched", "errors", "skipped"] {
            assert_eq!(
                count(&after, field),
                count(&recent_before, field),
                "{location}: {field}"
            );
        }
        let (code, _, err) = shadowdiff(&[
            "store",
            "prune",
            "--store",
            &location,
            "--older-than",
            "soon",
        ]);
        assert_eq!(code, 2);
        assert!(err.contains("--older-than"), "{err}");
    }
}

#[test]
fn store_migrate_reports_the_schema_and_serve_refuses_what_only_migrate_may_do() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.create_database("migrate");
    let (code, out, err) = shadowdiff(&["store", "migrate", "--store", &url]);
    assert_eq!(code, 0, "{err}");
    // Every step from an empty database, to the newest version.
    let reached = out
        .split("schema 0 -> ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or_else(|| panic!("no `schema 0 -> N` in {out}"));
    assert!(reached >= 2, "{out}");
    let (code, out, _) = shadowdiff(&["store", "migrate", "--store", &url]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!("already at schema {reached}")),
        "{out}"
    );
}

/// A loopback relay to PostgreSQL that, once, forwards the client's `commit_to_cut`-th
/// COMMIT and then closes both sides before the server's answer comes back: a connection
/// lost while COMMIT was on its way, whose outcome the writer cannot know.
fn cutting_relay(
    server_port: u16,
    commit_to_cut: usize,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let cut = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicUsize::new(0));
    let done = cut.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { return };
            let Ok(mut server) = std::net::TcpStream::connect(("127.0.0.1", server_port)) else {
                return;
            };
            let (mut client_read, mut server_write) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (cut, commits) = (done.clone(), commits.clone());
            // Set just before the cut COMMIT goes out: from then on nothing the server says
            // reaches the client.
            let silenced = Arc::new(AtomicBool::new(false));
            let silence = silenced.clone();
            let upstream = std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let Ok(n) = client_read.read(&mut buf) else {
                        return;
                    };
                    let chunk = &buf[..n];
                    // The simple-query message COMMIT: 'Q', length 11, "COMMIT\0".
                    const COMMIT: &[u8] = b"Q\0\0\0\x0bCOMMIT\0";
                    let cutting = chunk.windows(COMMIT.len()).any(|w| w == COMMIT)
                        && commits.fetch_add(1, Ordering::SeqCst) + 1 == commit_to_cut
                        && !cut.swap(true, Ordering::SeqCst);
                    if cutting {
                        silence.store(true, Ordering::SeqCst);
                    }
                    if n == 0 || server_write.write_all(chunk).is_err() {
                        return;
                    }
                    if cutting {
                        // Let the server commit, then lose its answer.
                        std::thread::sleep(std::time::Duration::from_millis(300));
                        let _ = client_read.shutdown(std::net::Shutdown::Both);
                        let _ = server_write.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                }
            });
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let Ok(n) = server.read(&mut buf) else { return };
                    if n == 0 || silenced.load(Ordering::SeqCst) {
                        return;
                    }
                    if client.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
            drop(upstream);
        }
    });
    (port, cut)
}

#[test]
fn a_batch_whose_commit_answer_was_lost_is_counted_once_not_twice_and_not_lost() {
    let Some(pg) = Postgres::start() else { return };
    pg.create_database("cut");
    // COMMIT 1 is the schema's (the store is created), 2 the first batch's.
    let (port, cut) = cutting_relay(pg.port(), 2);
    let url = format!("postgres://shadowdiff@127.0.0.1:{port}/cut?sslmode=disable");
    let options = StoreOptions::default();
    let lost = options.lost.clone();
    let writer = StoreWriter::open(at(&url), run_info(&[]), options).unwrap();
    let sender = writer.sender();
    let workload = standard_workload();
    let sent: u64 = workload.iter().map(|r| r.count).sum();
    for record in workload {
        sender.send(record).unwrap();
    }
    drop(sender);
    writer.finish().unwrap();
    assert!(
        cut.load(std::sync::atomic::Ordering::SeqCst),
        "the relay cut a COMMIT"
    );
    for reason in shadowdiff::store::LossReason::ALL {
        assert_eq!(lost.get(reason), 0, "nothing counted lost ({reason:?})");
    }
    let direct = format!("postgres://shadowdiff@127.0.0.1:{}/cut", pg.port());
    let stored = report(&direct, &[]);
    assert_eq!(count(&stored, "requests"), sent, "stored once: {stored:#}");
    assert_eq!(pg.psql("cut", "SELECT COUNT(*) FROM batches"), "1");
}

/// The dashboard's data through `admin`, as the page polls it.
async fn dashboard(admin: std::net::SocketAddr, query: &str) -> serde_json::Value {
    let body = support::client()
        .get(format!("http://{admin}/dashboard/data?{query}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replicas_dashboard_shows_the_whole_fleet_and_filters_by_instance() {
    let Some(pg) = Postgres::start() else { return };
    let store = pg.create_database("dashboard");
    let (primary, secondary) = upstreams().await;
    let east = serve(&store, "east", &primary, &secondary, &[]);
    let west = serve(&store, "west", &primary, &secondary, &[]);
    send(&east, 6, "e").await;
    send(&west, 9, "w").await;
    // Until both replicas' batches are in the database.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let whole = loop {
        let data = dashboard(west.admin, "window=all").await;
        if data["summary"]["requests"] == 15 || std::time::Instant::now() > deadline {
            break data;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(whole["summary"]["requests"], 15, "{whole}");
    assert_eq!(whole["summary"]["mismatched"], 5, "{whole}");
    let mut names: Vec<&str> = whole["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["instance"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["east", "west"]);
    assert!(
        !whole["store"].as_str().unwrap().contains("pw"),
        "the store is named without its password"
    );
    // East's page shows west's traffic too, and the filter narrows it to one replica.
    let only_east = dashboard(west.admin, "window=all&instance=east").await;
    assert_eq!(only_east["summary"]["requests"], 6, "{only_east}");
    assert_eq!(only_east["summary"]["mismatched"], 2, "{only_east}");
    assert_eq!(
        only_east["instances"].as_array().unwrap().len(),
        2,
        "the filter offers both"
    );
    let from_east = dashboard(east.admin, "window=all&instance=west").await;
    assert_eq!(from_east["summary"]["requests"], 9, "{from_east}");
    let example = from_east["examples"][0]["id"].as_i64().unwrap();
    let shown: serde_json::Value = serde_json::from_str(
        &support::client()
            .get(format!(
                "http://{}/dashboard/mismatch/{example}",
                east.admin
            ))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(
        shown["diff_html"]
            .as_str()
            .unwrap()
            .contains("class=\"diff\""),
        "{shown}"
    );
    stop(east);
    stop(west);
}
