//! Real HTTP servers on 127.0.0.1:0 and the real proxy between them, for black-box tests.
#![allow(dead_code)]

pub mod browser;
pub mod postgres;
pub mod replay;
pub mod store;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use shadowdiff::config::ServeConfig;
use shadowdiff::proxy::ServeError;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub type Body = BoxBody<Bytes, Infallible>;

/// What a backend saw.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: http::Method,
    pub uri: http::Uri,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// A real HTTP server recording every request it receives.
pub struct Backend {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    task: JoinHandle<()>,
}

impl Backend {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// What it received once it has `n` requests (a shadow arrives after the client's
    /// answer), or after 30 s, whatever it has then.
    pub async fn received_at_least(&self, n: usize) -> Vec<Received> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let received = self.received();
            if received.len() >= n || std::time::Instant::now() > deadline {
                return received;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into()).boxed()
}

pub fn text(status: u16, body: &str) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .header("content-type", "text/plain")
        .body(full(body.to_string()))
        .unwrap()
}

/// Starts a backend whose responses come from `handler`.
pub async fn backend<F, Fut>(handler: F) -> Backend
where
    F: Fn(Received) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(Mutex::new(Vec::new()));
    let handler = Arc::new(handler);
    let log = received.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handler = handler.clone();
            let log = log.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let handler = handler.clone();
                    let log = log.clone();
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let received = Received {
                            method: parts.method,
                            uri: parts.uri,
                            headers: parts.headers,
                            body,
                        };
                        log.lock().unwrap().push(received.clone());
                        Ok::<_, Infallible>(handler(received).await)
                    }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Backend {
        addr,
        received,
        task,
    }
}

/// A backend that answers every request with the same text.
pub async fn fixed(status: u16, body: &'static str) -> Backend {
    backend(move |_| async move { text(status, body) }).await
}

/// A TCP server that accepts and immediately closes: a resetting upstream.
pub async fn resetting() -> (SocketAddr, JoinHandle<()>) {
    raw(b"").await
}

/// A TCP server that answers every connection with bytes that are not HTTP.
pub async fn garbage() -> (SocketAddr, JoinHandle<()>) {
    raw(b"SSH-2.0-OpenSSH_9.6 definitely not http\r\n\r\n").await
}

async fn raw(reply: &'static [u8]) -> (SocketAddr, JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(reply).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (addr, task)
}

/// An address nothing listens on.
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// The real proxy, serving on 127.0.0.1:0 until stopped.
pub struct Proxy {
    pub addr: SocketAddr,
    pub db: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
    _dir: Option<tempfile::TempDir>,
}

impl Proxy {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Graceful shutdown: waits until every shadow is stored.
    pub async fn stop(mut self) -> Db {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().unwrap();
        Db {
            path: self.db.clone(),
            _dir: self._dir.take(),
        }
    }
}

/// The database a stopped proxy wrote; its directory lives as long as this value.
pub struct Db {
    pub path: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl std::ops::Deref for Db {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.path
    }
}

/// A config between two upstreams with the database in a fresh temporary directory.
pub fn config(primary: &str, secondary: &str) -> (ServeConfig, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServeConfig::new(primary, secondary).unwrap();
    config.store.location = (dir.path().join("shadowdiff.db")).into();
    (config, dir)
}

pub async fn start(config: ServeConfig, dir: tempfile::TempDir) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let db = config
        .store
        .location
        .sqlite_path()
        .expect("an SQLite store")
        .to_path_buf();
    let task = tokio::spawn(shadowdiff::run(listener, config, async {
        let _ = stopped.await;
    }));
    Proxy {
        addr,
        db,
        stop: Some(stop),
        task: Some(task),
        _dir: Some(dir),
    }
}

/// The real proxy between `primary` and `secondary` with `toml` as its config file, the
/// store in the same temporary directory.
pub async fn proxy_with(toml: &str, primary: &Backend, secondary: &Backend) -> Proxy {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(&file, toml).unwrap();
    let flags = shadowdiff::config::Overrides::over_file(Some(file))
        .with("primary", primary.url())
        .with("secondary", secondary.url())
        .with("db", dir.path().join("shadowdiff.db").display().to_string());
    let config = ServeConfig::load(&flags).unwrap();
    start(config, dir).await
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// The real proxy with its admin endpoint, both on 127.0.0.1:0: (proxy, admin address).
pub async fn start_with_admin(config: ServeConfig, dir: tempfile::TempDir) -> (Proxy, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let admin_addr = admin.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let db = config
        .store
        .location
        .sqlite_path()
        .expect("an SQLite store")
        .to_path_buf();
    let task = tokio::spawn(shadowdiff::run_with_admin(listener, admin, config, async {
        let _ = stopped.await;
    }));
    let proxy = Proxy {
        addr,
        db,
        stop: Some(stop),
        task: Some(task),
        _dir: Some(dir),
    };
    (proxy, admin_addr)
}

/// A running `shadowdiff serve`, killed if the test fails midway.
pub struct Running {
    pub child: std::process::Child,
    pub listen: SocketAddr,
    pub admin: SocketAddr,
    /// The "serving" log line itself.
    pub serving: String,
    /// Every log line after the "serving" one, as it arrives.
    pub logs: Arc<Mutex<Vec<String>>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit on its own (after a signal).
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }
}

/// Starts serve and reads the listen and admin addresses from its "serving" log line,
/// written as text or as JSON.
pub fn spawn_serve(args: &[&str], env: &[(&str, &str)]) -> Running {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("shadowdiff"))
        .arg("serve")
        .args(args)
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stderr.take().unwrap()));
    let mut serving = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.contains("serving") {
            serving = Some(line);
            break;
        }
    }
    let line = serving.expect("serve exited before listening");
    let logs = Arc::new(Mutex::new(Vec::new()));
    let sink = logs.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let field = |name: &str| -> SocketAddr {
        if let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) {
            return json["fields"][name].as_str().unwrap().parse().unwrap();
        }
        let start = line.find(&format!("{name}=")).unwrap() + name.len() + 1;
        line[start..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    Running {
        listen: field("listen"),
        admin: field("admin"),
        serving: line.clone(),
        child,
        logs,
    }
}

/// Writes `request` as raw bytes (clients normalize what this must send verbatim) and reads
/// until the proxy closes the connection; the test's own request asks it to.
pub async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut response = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        stream.read_to_end(&mut response),
    );
    match read.await {
        Ok(_) => String::from_utf8_lossy(&response).into_owned(),
        Err(_) => panic!(
            "no end of response within 60s; got {:?}",
            String::from_utf8_lossy(&response)
        ),
    }
}
/// Polls until `done` holds; the guard is generous and only stops a broken test.
pub async fn wait_for<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let guard = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !done().await {
        assert!(
            std::time::Instant::now() < guard,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// `shadowdiff report --format json` of a store, through the real binary.
pub fn report_json(db: &std::path::Path) -> serde_json::Value {
    let output = assert_cmd::Command::cargo_bin("shadowdiff")
        .unwrap()
        .args(["report", "--format", "json", "--db"])
        .arg(db)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A GET through a plain client: (status, body).
pub async fn get(url: String) -> (u16, String) {
    let response = client().get(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// The admin listener's `/metrics` text.
pub async fn metrics(admin: SocketAddr) -> String {
    get(format!("http://{admin}/metrics")).await.1
}

/// The admin listener's `/status` JSON.
pub async fn status(admin: SocketAddr) -> serde_json::Value {
    serde_json::from_str(&get(format!("http://{admin}/status")).await.1).unwrap()
}

/// The value of one series, by its exact name and labels as the text format writes them.
pub fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Reads until the peer closes the connection: what it sent, or `None` if it has not closed
/// within a minute (a test failure, not a timing assertion: the deadlines under test are
/// a second or two).
pub async fn closed_by_peer<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut seen = Vec::new();
    let read = stream.read_to_end(&mut seen);
    match tokio::time::timeout(std::time::Duration::from_secs(60), read).await {
        Ok(_) => Some(seen),
        Err(_) => None,
    }
}
