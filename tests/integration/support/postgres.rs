//! A real PostgreSQL server for the store tests: `initdb` in a temporary directory, a
//! postmaster on a loopback TCP port, stopped and removed when the value is dropped (a
//! failing test's too: `Drop` runs while the panic unwinds). No mock and no client crate:
//! SQL goes through `psql`.
//!
//! `Postgres::start()` is `None`, after one line on stderr, where no server binaries are
//! installed, so `cargo test` passes on a machine without PostgreSQL; with
//! `SHADOWDIFF_REQUIRE_POSTGRES` set (CI sets it) a missing server is a failure instead.
//!
//! initdb refuses to run as root, so as root the server runs as the `postgres` system user
//! (Debian's package creates it) or else `nobody`, through `runuser`, in a temporary
//! directory chowned to that user.
#![allow(dead_code)]

use std::collections::HashSet;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

/// The variable that turns "no PostgreSQL here" from a skip into a failure.
pub const REQUIRE: &str = "SHADOWDIFF_REQUIRE_POSTGRES";

/// The superuser initdb creates; trust authentication, so no password.
pub const USER: &str = "shadowdiff";

/// How many ports `start` tries when the one it picked is taken before the server binds it.
const PORT_ATTEMPTS: usize = 5;

/// Ports held by a live `Postgres` of this process, running or stopped: a new server never
/// picks one, so `start_again` finds its port free (as far as this process goes).
static RESERVED: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A running PostgreSQL server in its own temporary data directory.
pub struct Postgres {
    bin: PathBuf,
    psql: PathBuf,
    /// The system user the server runs as when this process is root.
    run_as: Option<String>,
    data: PathBuf,
    socket: PathBuf,
    log: PathBuf,
    port: u16,
    /// Last field: removed after `drop` has stopped the server.
    dir: tempfile::TempDir,
}

impl Postgres {
    /// Starts one. Returns None (after printing one line to stderr saying the test is
    /// skipped and why) when no PostgreSQL server binaries are found and
    /// `SHADOWDIFF_REQUIRE_POSTGRES` is not set; with the variable set (to anything), a
    /// missing server panics.
    pub fn start() -> Option<Postgres> {
        let bin = match find_bindir() {
            Ok(bin) => bin,
            Err(why) => {
                if std::env::var_os(REQUIRE).is_some() {
                    panic!("{REQUIRE} is set but no PostgreSQL server was found: {why}");
                }
                // libtest names each test's thread after the test. Written to the real
                // stderr, not through eprintln!, which libtest captures in a passing test:
                // a skip shows in every run.
                let test = std::thread::current().name().unwrap_or("test").to_string();
                let _ = writeln!(
                    std::io::stderr(),
                    "{test}: skipped: no PostgreSQL server binaries ({why}); install \
                     PostgreSQL or set {REQUIRE}=1 to make this a failure"
                );
                return None;
            }
        };
        let psql = if bin.join("psql").is_file() {
            bin.join("psql")
        } else {
            PathBuf::from("psql")
        };
        let run_as = if effective_uid() == 0 {
            Some(unprivileged_user())
        } else {
            None
        };
        let dir = temp_dir(run_as.is_some());
        let data = dir.path().join("data");
        let socket = dir.path().join("socket");
        let log = dir.path().join("server.log");
        std::fs::create_dir(&socket).expect("creating the socket directory");
        if let Some(user) = &run_as {
            run(
                Command::new("chown")
                    .arg("-R")
                    .arg(format!("{user}:"))
                    .arg(dir.path()),
                "chown of the temporary directory",
            );
        }
        let mut pg = Postgres {
            bin,
            psql,
            run_as,
            data,
            socket,
            log,
            port: 0,
            dir,
        };
        pg.initdb();
        for attempt in 1..=PORT_ATTEMPTS {
            pg.port = reserve_port();
            // Only this attempt's lines say whether its port was taken.
            let before = std::fs::metadata(&pg.log).map_or(0, |m| m.len() as usize);
            match pg.pg_ctl_start() {
                Ok(()) => return Some(pg),
                Err(failure) => {
                    release_port(pg.port);
                    let log = std::fs::read(&pg.log).unwrap_or_default();
                    let taken = log.get(before..).is_some_and(|new| {
                        String::from_utf8_lossy(new).contains("Address already in use")
                    });
                    let log = String::from_utf8_lossy(&log);
                    if !taken || attempt == PORT_ATTEMPTS {
                        pg.port = 0;
                        panic!(
                            "PostgreSQL did not start on 127.0.0.1 (attempt {attempt}): \
                             {failure}\n--- server log {} ---\n{log}",
                            pg.log.display()
                        );
                    }
                }
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// `postgres://shadowdiff@127.0.0.1:PORT/NAME`, for a database that exists (see
    /// `create_database`; `postgres` always does).
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{USER}@127.0.0.1:{}/{}",
            self.port,
            percent_encode(database)
        )
    }

    /// Creates a database (CREATE DATABASE) and returns its url.
    pub fn create_database(&self, name: &str) -> String {
        self.psql(
            "postgres",
            &format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\"")),
        );
        self.url(name)
    }

    /// Runs SQL through psql (`-X -q -At -v ON_ERROR_STOP=1`, the script on standard input,
    /// so each statement runs on its own as in a migration file) against `database`, and
    /// returns the trimmed standard output: the rows, `|`-separated, one a line, without
    /// command tags. Panics with psql's stderr on failure.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let conninfo = format!(
            "host=127.0.0.1 port={} user={USER} dbname={} connect_timeout=30",
            self.port,
            conninfo_value(database)
        );
        let mut command = Command::new(&self.psql);
        command
            .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-f", "-", "-d"])
            .arg(&conninfo);
        clean_env(&mut command);
        let output = run_with_input(&mut command, sql)
            .unwrap_or_else(|e| panic!("running {}: {e}", self.psql.display()));
        if !output.status.success() {
            panic!(
                "psql against database {database:?} failed ({}):\n{}\n--- the SQL ---\n{sql}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim_end()
            );
        }
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// Stops the server (`pg_ctl stop -m fast`), keeping its data; the port stays reserved
    /// for `start_again`.
    pub fn stop(&self) {
        let result = self.pg_ctl(&["stop", "-w", "-t", "120", "-m", "fast"]);
        if let Err(failure) = result {
            panic!(
                "pg_ctl stop failed: {failure}\n--- server log ---\n{}",
                self.log_text()
            );
        }
    }

    /// Starts the stopped server again on the same port with the same data.
    pub fn start_again(&self) {
        if let Err(failure) = self.pg_ctl_start() {
            panic!(
                "PostgreSQL did not start again on 127.0.0.1:{}: {failure}\n--- server log ---\n{}",
                self.port,
                self.log_text()
            );
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory of the server binaries (and of `psql`, where the client is installed
    /// beside them).
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    /// The data directory (it is removed on drop).
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_else(|e| format!("(no log: {e})"))
    }

    fn initdb(&self) {
        let mut command = self.server_command("initdb");
        command
            .arg("-D")
            .arg(&self.data)
            .args(["--auth=trust", "-U", USER, "--encoding=UTF8", "--locale=C"])
            .arg("--no-sync");
        let output = output_of(&mut command);
        if !output.status.success() {
            panic!(
                "initdb failed ({}):\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }

    fn pg_ctl_start(&self) -> Result<(), String> {
        // pg_ctl hands -o to the shell that starts the postmaster: quote the path.
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k '{}' -c fsync=off -c max_connections=200",
            self.port,
            self.socket.display()
        );
        let log = self.log.to_string_lossy().into_owned();
        self.pg_ctl(&["start", "-w", "-t", "120", "-l", &log, "-o", &options])
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<(), String> {
        let mut command = self.server_command("pg_ctl");
        command.arg("-D").arg(&self.data).args(args);
        let output = output_of(&mut command);
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "pg_ctl {} exited with {}: {}{}",
                args[0],
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    /// `BIN/name`, as the unprivileged user when this process is root, in the temporary
    /// directory (the test's own working directory may be closed to that user).
    fn server_command(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        let mut command = match &self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(program);
                command
            }
            None => Command::new(program),
        };
        command.current_dir(self.dir.path());
        clean_env(&mut command);
        command
    }

    /// The pid in the pid file, if that process is this server's postmaster (a stale file's
    /// pid may belong to another process by now).
    fn live_postmaster(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.data.join("postmaster.pid")).ok()?;
        let pid: u32 = text.lines().next()?.trim().parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let data = self.data.to_string_lossy();
        String::from_utf8_lossy(&cmdline)
            .split('\0')
            .any(|arg| arg == data)
            .then_some(pid)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Immediate: the data is thrown away anyway. Errors are ignored (it may be stopped).
        if self.data.exists() {
            let mut command = self.server_command("pg_ctl");
            command
                .arg("-D")
                .arg(&self.data)
                .args(["stop", "-w", "-t", "60", "-m", "immediate"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let _ = command.status();
            // pg_ctl could not stop it (or is gone): do not leave a postmaster behind.
            if let Some(pid) = self.live_postmaster() {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .stderr(Stdio::null())
                    .status();
            }
        }
        if self.port != 0 {
            release_port(self.port);
        }
        // `dir` (a TempDir) is removed when the fields drop, after this.
    }
}

/// The directory with initdb, pg_ctl and postgres: `pg_config --bindir` if pg_config is on
/// PATH and that directory has them (Debian's pg_config comes with libpq-dev, server or
/// not), else the highest `/usr/lib/postgresql/*/bin` that has them.
fn find_bindir() -> Result<PathBuf, String> {
    let complete = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|name| dir.join(name).is_file())
    };
    let mut tried = Vec::new();
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
        if output.status.success() {
            let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
            if complete(&dir) {
                return Ok(dir);
            }
            tried.push(format!(
                "pg_config --bindir: {} has no server",
                dir.display()
            ));
        }
    } else {
        tried.push("no pg_config on PATH".to_string());
    }
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let version = name
                .split('.')
                .map(|part| part.parse::<u32>().ok())
                .collect::<Option<Vec<u32>>>()?;
            let bin = entry.path().join("bin");
            complete(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => Ok(bin),
        None => {
            tried.push("no /usr/lib/postgresql/*/bin with initdb".to_string());
            Err(tried.join("; "))
        }
    }
}

/// The effective uid, from /proc/self/status (`Uid: real effective saved fs`), else `id -u`.
fn effective_uid() -> u32 {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        let uid = status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            .and_then(|id| id.parse().ok());
        if let Some(uid) = uid {
            return uid;
        }
    }
    let output = Command::new("id")
        .arg("-u")
        .output()
        .expect("running `id -u` to learn whether this is root");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("`id -u` printed a number")
}

/// `postgres` if that system user exists, else `nobody`.
fn unprivileged_user() -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let exists = |name: &str| {
        passwd
            .lines()
            .any(|line| line.split(':').next() == Some(name))
            || Command::new("id")
                .arg("-u")
                .arg(name)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
    };
    for name in ["postgres", "nobody"] {
        if exists(name) {
            return name.to_string();
        }
    }
    panic!("running as root, and neither a `postgres` nor a `nobody` user exists to run initdb as");
}

/// A fresh temporary directory. For a server run by another user, every directory above it
/// must let that user through: the usual temporary directory if so, else /tmp.
fn temp_dir(other_user: bool) -> tempfile::TempDir {
    let builder = || {
        let mut builder = tempfile::Builder::new();
        builder.prefix("shadowdiff-pg-");
        builder
    };
    let base = std::env::temp_dir();
    if !other_user || traversable(&base) {
        return builder()
            .tempdir_in(&base)
            .unwrap_or_else(|e| panic!("creating a directory in {}: {e}", base.display()));
    }
    let tmp = Path::new("/tmp");
    assert!(
        traversable(tmp),
        "the server runs as an unprivileged user, but neither {} nor /tmp lets others through",
        base.display()
    );
    builder()
        .tempdir_in(tmp)
        .expect("creating a directory in /tmp")
}

/// Whether `dir` and each directory above it are searchable by others (`o+x`).
fn traversable(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Ok(dir) = dir.canonicalize() else {
        return false;
    };
    dir.ancestors().all(|d| {
        std::fs::metadata(d).is_ok_and(|m| m.is_dir() && m.permissions().mode() & 0o001 != 0)
    })
}

/// A free loopback port, found by binding port 0, that no other live server of this process
/// holds. The listener is closed before the server binds it, so another process can take it
/// in between: `start` retries then.
fn reserve_port() -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
        let port = listener.local_addr().expect("a bound address").port();
        drop(listener);
        let mut reserved = RESERVED.lock().unwrap_or_else(|e| e.into_inner());
        if reserved.get_or_insert_with(HashSet::new).insert(port) {
            return port;
        }
    }
}

fn release_port(port: u16) {
    let mut reserved = RESERVED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(set) = reserved.as_mut() {
        set.remove(&port);
    }
}

/// libpq reads PG* variables (PGHOST, PGOPTIONS, PGSSLMODE...) for whatever the command does
/// not say; none of the caller's may leak in. The C locale makes every message English.
fn clean_env(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PG") {
            command.env_remove(&name);
        }
    }
    command.env("LC_ALL", "C").env("LANG", "C");
}

/// Runs a command that must succeed (a setup step).
fn run(command: &mut Command, what: &str) {
    let output = output_of(command);
    if !output.status.success() {
        panic!(
            "{what} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

fn output_of(command: &mut Command) -> Output {
    let program = command.get_program().to_owned();
    command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", Path::new(&program).display()))
}

fn run_with_input(command: &mut Command, input: &str) -> std::io::Result<Output> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_string();
    // A writer thread: a long script's output must not fill its pipe while we still write.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output()?;
    // psql stops reading on the first error (ON_ERROR_STOP): a broken pipe then is fine.
    let _ = writer.join();
    Ok(output)
}

/// A libpq conninfo value: quoted, with `\` and `'` escaped.
fn conninfo_value(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Percent-encodes everything but RFC 3986's unreserved characters, for a URL path segment.
fn percent_encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// Store tests may share one server between threads and tasks.
const _: fn() = || {
    fn is<T: Send + Sync>() {}
    is::<Postgres>();
};
