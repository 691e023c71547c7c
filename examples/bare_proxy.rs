//! The ceiling of shadowdiff's design, for bench/run.sh and bench/callgrind.sh: a reverse
//! proxy built on hyper and hyper-util alone, doing nothing but forwarding.
//!
//! shadowdiff serves clients with hyper-util's `auto` server and sends each leg through a
//! pooled hyper-util client on a tokio multi-thread runtime. This program is that skeleton
//! with everything else taken away: no routing, no sampling, no body capture, no header
//! rewriting, no metrics, no compare thread, no store. Whatever it costs per request, a
//! proxy built this way cannot cost less; so `shadowdiff --sample 0` against it tells how
//! much shadowdiff's own pass-through path adds, and full shadowing against it tells what
//! the shadow leg, the compare and the store add on top.
//!
//! Usage: bare_proxy LISTEN_ADDR UPSTREAM_HOST:PORT
//!
//! Every request goes to `http://UPSTREAM_HOST:PORT` + its path and query through one
//! shared client (keep-alive pool, TCP_NODELAY, the same idle settings as shadowdiff's);
//! the upstream's response body streams back as it arrives. If the upstream cannot be
//! reached the client gets a 502. It allocates with mimalloc, as shadowdiff's binary does,
//! so that the two differ in their code paths and not in their allocators.

use bytes::Bytes;
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

type Body = Either<Incoming, Full<Bytes>>;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bare_proxy LISTEN_ADDR UPSTREAM_HOST:PORT";
    let listen: std::net::SocketAddr = args.next().ok_or(usage)?.parse()?;
    let upstream = args.next().ok_or(usage)?;
    // Checked once here, so that the per-request URI can only fail on the request's part.
    let _: http::uri::Authority = upstream.parse()?;
    let upstream: Arc<str> = upstream.into();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client: Client<HttpConnector, Incoming> = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(256)
            .build(connector);

        let listener = tokio::net::TcpListener::bind(listen).await?;
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                // Out of file descriptors and the like: try again rather than exit.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let client = client.clone();
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let service =
                    service_fn(move |request| forward(client.clone(), upstream.clone(), request));
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

async fn forward(
    client: Client<HttpConnector, Incoming>,
    upstream: Arc<str>,
    mut request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let path = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let uri: Uri = match format!("http://{upstream}{path}").parse() {
        Ok(uri) => uri,
        Err(_) => return Ok(status(StatusCode::BAD_REQUEST)),
    };
    *request.uri_mut() = uri;
    // The pool speaks HTTP/1.1 upstream; an HTTP/2 client's request is sent as one.
    *request.version_mut() = Version::HTTP_11;
    Ok(match client.request(request).await {
        Ok(response) => response.map(Either::Left),
        Err(_) => status(StatusCode::BAD_GATEWAY),
    })
}

fn status(code: StatusCode) -> Response<Body> {
    let mut response = Response::new(Either::Right(Full::new(Bytes::new())));
    *response.status_mut() = code;
    response
}
