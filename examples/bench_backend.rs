//! A fast HTTP backend for the load benchmarks in bench/: answers every request with a
//! fixed JSON document, optionally after a delay (a slow secondary).
//!
//! Usage: bench_backend ADDR [DELAY_MS] [VARIANT]
//! VARIANT `b` changes one field, so shadowdiff has mismatches to store.

use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr: std::net::SocketAddr = args
        .next()
        .ok_or("usage: bench_backend ADDR [DELAY_MS] [VARIANT]")?
        .parse()?;
    let delay = Duration::from_millis(args.next().map(|d| d.parse()).transpose()?.unwrap_or(0));
    let variant = args.next().unwrap_or_else(|| "a".into());
    let body = Bytes::from(format!(
        r#"{{"id":42,"name":"Ada Lovelace","email":"ada@example.com","plan":"{}","tags":["admin","beta"],"balance":1234.5}}"#,
        if variant == "b" { "pro" } else { "free" }
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let body = body.clone();
            tokio::spawn(async move {
                let service = service_fn(move |_request| {
                    let body = body.clone();
                    async move {
                        if !delay.is_zero() {
                            tokio::time::sleep(delay).await;
                        }
                        Ok::<_, Infallible>(
                            Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(body))
                                .unwrap(),
                        )
                    }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
