//! The live dashboard on the admin listener: `/` is one self-contained page (no CDN, no
//! network but its own polling of `/dashboard/data`), which shows what the store holds for
//! this run (or a window, or everything), per route, with the latest examples opening
//! into the side-by-side diff of [`crate::report::diffview`].
//!
//! It reads the store, not the process's counters, so that with a PostgreSQL store every
//! instance of a fleet shows the whole fleet (with an instance filter), and what it shows
//! is what `report` will say. Reads run on a thread of their own: the store's clients
//! block, and the admin listener shares the serve runtime.
//!
//! It shows stored examples, so once `--admin-token` is set every page and every data
//! request needs it: as `Authorization: Bearer` (RFC 6750 section 2.1), or as a `token`
//! query parameter on a first load, which answers with a session cookie (HttpOnly,
//! SameSite=Strict, RFC 6265bis section 4.1.2.7) and a redirect that drops the token from
//! the address bar and the history.

mod data;

use crate::admin::reply;
use crate::config::AdminToken;
use crate::store::Location;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use sha2::{Digest, Sha256};

/// The page, with its style and script inline.
const PAGE: &str = include_str!("page.html");

/// The page with the diff view's style in it, made once.
fn page() -> &'static str {
    static PAGE_WITH_STYLE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PAGE_WITH_STYLE.get_or_init(|| PAGE.replace("/*DIFF_CSS*/", crate::report::diffview::DIFF_CSS))
}

/// The session cookie's name.
const COOKIE: &str = "shadowdiff_session";

/// What the dashboard reads and whom it lets in.
pub struct Dashboard {
    pub location: Location,
    /// When this process started: the default window ("since start").
    pub started_ms: i64,
    pub token: Option<AdminToken>,
}

/// Whether `path` is the dashboard's.
pub fn owns(path: &str) -> bool {
    path == "/" || path.starts_with("/dashboard/")
}

/// The cookie value a token opens: a digest of it, so the cookie is not the token itself
/// (a cookie read off a disk or a proxy log does not give the `/shadow/*` endpoints away).
fn session_of(token: &AdminToken) -> String {
    let mut hash = Sha256::new();
    hash.update(b"shadowdiff dashboard session\0");
    hash.update(token.expose().as_bytes());
    format!("{:x}", hash.finalize())
}

/// How a request proved it may look, if it did.
enum Access {
    /// No token configured, a bearer header, or the session cookie.
    Granted,
    /// `?token=` on this request: granted, and the cookie is set.
    ByQuery,
    Refused,
}

fn access(dashboard: &Dashboard, headers: &HeaderMap, query: Option<&str>) -> Access {
    let Some(token) = &dashboard.token else {
        return Access::Granted;
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer.is_some_and(|given| token.matches(given.trim())) {
        return Access::Granted;
    }
    let session = session_of(token);
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .any(|(name, value)| name == COOKIE && constant_time_eq(value, &session));
    if cookie {
        return Access::Granted;
    }
    let by_query = query
        .map(|q| form_urlencoded::parse(q.as_bytes()))
        .into_iter()
        .flatten()
        .any(|(name, value)| name == "token" && token.matches(&value));
    if by_query {
        Access::ByQuery
    } else {
        Access::Refused
    }
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Answers a dashboard path. Counted refusals go through `unauthorized`.
pub async fn handle(
    dashboard: &Dashboard,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    unauthorized: &std::sync::atomic::AtomicU64,
) -> Response<Full<Bytes>> {
    if method != Method::GET && method != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
    }
    let granted = match access(dashboard, headers, query) {
        Access::Refused => {
            unauthorized.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut refused = plain(
                StatusCode::UNAUTHORIZED,
                "the dashboard needs the admin token (--admin-token): open /?token=TOKEN once, or send Authorization: Bearer TOKEN\n",
            );
            refused.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"shadowdiff\""),
            );
            return refused;
        }
        other => other,
    };
    let mut response = if matches!(granted, Access::ByQuery) && path == "/" {
        // The token leaves the address bar: the page is loaded again without it.
        let mut moved = plain(StatusCode::SEE_OTHER, "");
        moved
            .headers_mut()
            .insert(header::LOCATION, HeaderValue::from_static("/"));
        moved
    } else {
        route(dashboard, path, query).await
    };
    if let (Access::ByQuery, Some(token)) = (&granted, &dashboard.token) {
        let cookie = format!(
            "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
            session_of(token)
        );
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
    }
    let headers = response.headers_mut();
    // Its own page only: nothing it loads comes from elsewhere, nothing goes elsewhere.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

async fn route(dashboard: &Dashboard, path: &str, query: Option<&str>) -> Response<Full<Bytes>> {
    if path == "/" {
        return reply(
            StatusCode::OK,
            "text/html; charset=utf-8",
            page().to_string(),
        );
    }
    let params: Vec<(String, String)> = query
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let location = dashboard.location.clone();
    let started_ms = dashboard.started_ms;
    let result = if path == "/dashboard/data" {
        let window = match data::Window::parse(param("window").as_deref(), started_ms) {
            Ok(window) => window,
            Err(reason) => return json_error(StatusCode::BAD_REQUEST, &reason),
        };
        let instance = param("instance").filter(|i| !i.is_empty());
        off_runtime(move || data::overview(&location, window, instance)).await
    } else if let Some(id) = path.strip_prefix("/dashboard/mismatch/") {
        let Ok(id) = id.parse::<i64>() else {
            return json_error(StatusCode::BAD_REQUEST, "a mismatch id is a number");
        };
        off_runtime(move || data::mismatch(&location, id)).await
    } else {
        return plain(StatusCode::NOT_FOUND, "not found: the dashboard is at /\n");
    };
    match result {
        Ok(value) => reply(StatusCode::OK, "application/json", value.to_string()),
        Err(data::DataError::NotFound(what)) => json_error(StatusCode::NOT_FOUND, &what),
        Err(data::DataError::Unavailable(why)) => json_error(StatusCode::SERVICE_UNAVAILABLE, &why),
        Err(data::DataError::Store(error)) => {
            // The store as shown (no password), and why: the page says it and retries.
            json_error(StatusCode::SERVICE_UNAVAILABLE, &error.to_string())
        }
    }
}

/// Runs a store read on a thread of its own and waits for it without blocking the runtime.
async fn off_runtime<T: Send + 'static>(
    read: impl FnOnce() -> Result<T, data::DataError> + Send + 'static,
) -> Result<T, data::DataError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("shadowdiff-dashboard".into())
        .spawn(move || {
            let _ = tx.send(read());
        });
    if let Err(error) = spawned {
        return Err(data::DataError::Unavailable(format!(
            "cannot start a reader thread: {error}"
        )));
    }
    rx.await.unwrap_or_else(|_| {
        Err(data::DataError::Unavailable(
            "the reader thread stopped".into(),
        ))
    })
}

fn json_error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    reply(
        status,
        "application/json",
        serde_json::json!({ "error": message }).to_string(),
    )
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    reply(status, "text/plain; charset=utf-8", text.into())
}

/// For the admin router: the parts of a request the dashboard reads.
pub fn parts<B>(request: &Request<B>) -> (Method, String, Option<String>, HeaderMap) {
    (
        request.method().clone(),
        request.uri().path().to_string(),
        request.uri().query().map(str::to_string),
        request.headers().clone(),
    )
}
