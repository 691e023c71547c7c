//! Two small real HTTP servers for the replay tests: they record every request they get
//! and answer deterministically, the secondary differing only under `/diff/`.
#![allow(dead_code)]

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

pub use super::Received;

pub type Log = Arc<Mutex<Vec<Received>>>;

/// Primary and secondary, served from their own thread so blocking tests can use them.
pub struct Servers {
    pub primary: SocketAddr,
    pub secondary: SocketAddr,
    pub primary_log: Log,
    pub secondary_log: Log,
    _stop: std::sync::mpsc::Sender<()>,
}

impl Servers {
    pub fn start() -> Servers {
        let (addrs_tx, addrs_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let primary_log = Log::default();
                let secondary_log = Log::default();
                let primary = serve(false, primary_log.clone()).await;
                let secondary = serve(true, secondary_log.clone()).await;
                addrs_tx
                    .send((primary, secondary, primary_log, secondary_log))
                    .unwrap();
                let _ = tokio::task::spawn_blocking(move || stop_rx.recv()).await;
            });
        });
        let (primary, secondary, primary_log, secondary_log) = addrs_rx.recv().unwrap();
        Servers {
            primary,
            secondary,
            primary_log,
            secondary_log,
            _stop: stop_tx,
        }
    }

    pub fn primary_url(&self) -> String {
        format!("http://{}", self.primary)
    }

    pub fn secondary_url(&self) -> String {
        format!("http://{}", self.secondary)
    }

    pub fn primary_received(&self) -> Vec<Received> {
        self.primary_log.lock().unwrap().clone()
    }

    pub fn secondary_received(&self) -> Vec<Received> {
        self.secondary_log.lock().unwrap().clone()
    }
}

async fn serve(secondary: bool, log: Log) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let log = log.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    answer(secondary, log.clone(), request)
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

async fn answer(
    secondary: bool,
    log: Log,
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    log.lock().unwrap().push(Received {
        method: parts.method.clone(),
        uri: parts.uri.clone(),
        headers: parts.headers.clone(),
        body,
    });
    let path = parts.uri.path();
    let mut text = format!("{} {}", parts.method, parts.uri);
    if secondary && path.starts_with("/diff/") {
        text.push_str(" (changed)");
    }
    let mut response = Response::new(Full::new(Bytes::from(text)));
    if path == "/status/500" {
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    }
    Ok(response)
}

pub fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}
