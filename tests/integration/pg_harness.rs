//! The PostgreSQL harness itself (`support::postgres`): a real server that keeps its data
//! across a stop, one port and one directory per server, and nothing left after drop.

use crate::support::postgres::Postgres;
use std::net::TcpStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::Command;
use std::time::Duration;

fn accepts(port: u16) -> bool {
    let addr = ([127, 0, 0, 1], port).into();
    TcpStream::connect_timeout(&addr, Duration::from_secs(5)).is_ok()
}

#[test]
fn data_survives_stop_and_start_again() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.create_database("harness");
    assert_eq!(
        url,
        format!("postgres://shadowdiff@127.0.0.1:{}/harness", pg.port())
    );
    assert_eq!(url, pg.url("harness"));
    let out = pg.psql(
        "harness",
        "CREATE TABLE t(x int); INSERT INTO t VALUES (1), (2), (3); SELECT count(*) FROM t;",
    );
    assert_eq!(out, "3", "command tags are not in the output");

    pg.stop();
    assert!(!accepts(pg.port()), "a stopped server still accepts");

    let port = pg.port();
    pg.start_again();
    assert_eq!(pg.port(), port);
    assert!(accepts(pg.port()));
    assert_eq!(pg.psql("harness", "SELECT sum(x) FROM t"), "6");
    assert_eq!(pg.psql("harness", "SHOW port"), port.to_string());
}

#[test]
fn the_url_is_one_a_client_can_use() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.create_database("by_url");
    let psql = pg.bin_dir().join("psql");
    let output = Command::new(&psql)
        .args(["-X", "-At", "-d", &url, "-c"])
        .arg("SELECT current_user || ' ' || current_database()")
        .env_remove("PGPASSWORD")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "psql -d {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "shadowdiff by_url"
    );
}

#[test]
fn two_servers_have_their_own_port_and_data() {
    let Some(a) = Postgres::start() else { return };
    let Some(b) = Postgres::start() else { return };
    assert_ne!(a.port(), b.port());
    assert_ne!(a.data_dir(), b.data_dir());
    assert_eq!(a.psql("postgres", "SHOW port"), a.port().to_string());
    assert_eq!(b.psql("postgres", "SHOW port"), b.port().to_string());

    a.create_database("only_in_a");
    let names = "SELECT count(*) FROM pg_database WHERE datname = 'only_in_a'";
    assert_eq!(a.psql("postgres", names), "1");
    assert_eq!(b.psql("postgres", names), "0");
}

#[test]
fn listens_on_loopback_only_and_not_as_root() {
    use std::os::unix::fs::MetadataExt;
    let Some(pg) = Postgres::start() else { return };
    // initdb made the data directory as the user the server runs as.
    let owner = std::fs::metadata(pg.data_dir()).unwrap().uid();
    assert_ne!(owner, 0, "the server runs as root");
    assert_eq!(pg.psql("postgres", "SHOW listen_addresses"), "127.0.0.1");
    assert_eq!(pg.psql("postgres", "SHOW fsync"), "off");
    assert_eq!(pg.psql("postgres", "SHOW max_connections"), "200");
    assert_eq!(pg.psql("postgres", "SHOW server_encoding"), "UTF8");
}

#[test]
fn drop_stops_the_server_and_removes_its_directory() {
    let Some(pg) = Postgres::start() else { return };
    let port = pg.port();
    let data = pg.data_dir().to_path_buf();
    assert!(data.join("PG_VERSION").is_file());
    assert!(accepts(port));

    drop(pg);
    assert!(!data.exists(), "{} is still there", data.display());
    assert!(
        !data.parent().unwrap().exists(),
        "the temporary directory is still there"
    );
    assert!(!accepts(port), "port {port} still accepts after drop");
}

#[test]
fn a_panicking_test_still_stops_its_server() {
    let Some(pg) = Postgres::start() else { return };
    let port = pg.port();
    let data = pg.data_dir().to_path_buf();
    let failed = catch_unwind(AssertUnwindSafe(move || {
        let _pg = pg;
        panic!("a failing store test");
    }));
    assert!(failed.is_err());
    assert!(!data.exists());
    assert!(!accepts(port));
}

#[test]
fn failing_sql_panics_with_psql_error() {
    let Some(pg) = Postgres::start() else { return };
    let failed = catch_unwind(AssertUnwindSafe(|| {
        pg.psql(
            "postgres",
            "SELECT 1; SELECT * FROM no_such_table; SELECT 2;",
        )
    }));
    let payload = failed.expect_err("SQL on a missing table must panic");
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        message.contains("relation \"no_such_table\" does not exist"),
        "{message}"
    );
    // The server is unharmed.
    assert_eq!(pg.psql("postgres", "SELECT 40 + 2"), "42");
}
