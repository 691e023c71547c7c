//! The demo API and the ways its "migrated" version differs.
//!
//! | route                         | primary                  | secondary                     |
//! |-------------------------------|--------------------------|-------------------------------|
//! | `GET /health`                 | `{"status":"ok"}`        | identical: a clean match      |
//! | `GET /users/{id}`             | `email`                  | renamed to `email_address`    |
//! | `GET /users/{id}/orders`      | orders oldest first      | the same orders, newest first |
//! | `GET /products/{id}/price`    | price rounded to 2 places| rounded to 3 places           |
//! | `GET /search?q=`              | empty `q`: 200, no hits  | empty `q`: 400                |
//! | `GET /reports/daily`          | fast                     | 40 ms slower                  |
//! | `POST /orders`                | 201                      | 201 (a write: skipped unless `--shadow-writes`) |
//!
//! Every JSON response except `/health` carries a `request_id` and a `generated_at`
//! timestamp, and every response an `x-request-id` header: values that always differ
//! between two systems, the noise that ignore rules exist to hide.

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::time::Duration;

/// Which of the two systems answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Primary,
    Secondary,
}

/// How much slower the secondary's report route is.
pub const SLOW_ROUTE_DELAY: Duration = Duration::from_millis(40);

/// Answers one request.
pub async fn respond(
    flavor: Flavor,
    delay: Duration,
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let (parts, body) = request.into_parts();
    // A body that fails mid-way is treated as empty: the demo judges responses, not clients.
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let segments: Vec<&str> = parts.uri.path().trim_matches('/').split('/').collect();
    let query = parts.uri.query().unwrap_or("");
    let (status, payload) = match (&parts.method, segments.as_slice()) {
        (&Method::GET, ["health"]) => {
            return Ok(json_response(
                flavor,
                StatusCode::OK,
                json!({"status": "ok"}),
                false,
            ))
        }
        (&Method::GET, ["users", id]) => user(flavor, id),
        (&Method::GET, ["users", id, "orders"]) => orders(flavor, id),
        (&Method::GET, ["products", id, "price"]) => price(flavor, id),
        (&Method::GET, ["search"]) => search(flavor, query),
        (&Method::GET, ["reports", "daily"]) => {
            if flavor == Flavor::Secondary {
                tokio::time::sleep(SLOW_ROUTE_DELAY).await;
            }
            (
                StatusCode::OK,
                json!({"day": "2026-11-21", "orders": 1234, "revenue": 56789.5}),
            )
        }
        (&Method::POST, ["orders"]) => (
            StatusCode::CREATED,
            json!({"id": 1000 + body.len(), "received": String::from_utf8_lossy(&body)}),
        ),
        _ => (StatusCode::NOT_FOUND, json!({"error": "no such route"})),
    };
    Ok(json_response(flavor, status, payload, true))
}

fn user(flavor: Flavor, id: &str) -> (StatusCode, Value) {
    let Ok(id) = id.parse::<u64>() else {
        return (
            StatusCode::BAD_REQUEST,
            json!({"error": "id must be a number"}),
        );
    };
    let email_key = match flavor {
        Flavor::Primary => "email",
        Flavor::Secondary => "email_address",
    };
    let mut user = json!({"id": id, "name": format!("User {id}")});
    user[email_key] = json!(format!("user{id}@example.com"));
    (StatusCode::OK, user)
}

fn orders(flavor: Flavor, id: &str) -> (StatusCode, Value) {
    let Ok(id) = id.parse::<u64>() else {
        return (
            StatusCode::BAD_REQUEST,
            json!({"error": "id must be a number"}),
        );
    };
    let mut orders: Vec<Value> = (1..=3)
        .map(|n| json!({"id": id * 10 + n, "total": (n * 5) as f64 + 0.5}))
        .collect();
    // The new system returns the same set in its storage order.
    if flavor == Flavor::Secondary {
        orders.reverse();
    }
    (StatusCode::OK, json!({"user": id, "orders": orders}))
}

fn price(flavor: Flavor, id: &str) -> (StatusCode, Value) {
    let Ok(id) = id.parse::<u64>() else {
        return (
            StatusCode::BAD_REQUEST,
            json!({"error": "id must be a number"}),
        );
    };
    let exact = (id as f64 + 10.0) / 3.0;
    let places = match flavor {
        Flavor::Primary => 100.0,
        Flavor::Secondary => 1000.0,
    };
    let price = (exact * places).round() / places;
    (
        StatusCode::OK,
        json!({"product": id, "price": price, "currency": "EUR"}),
    )
}

fn search(flavor: Flavor, query: &str) -> (StatusCode, Value) {
    let term = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "q")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if term.is_empty() {
        return match flavor {
            Flavor::Primary => (StatusCode::OK, json!({"query": "", "results": []})),
            Flavor::Secondary => (StatusCode::BAD_REQUEST, json!({"error": "q is required"})),
        };
    }
    let results: Vec<Value> = (1..=2)
        .map(|n| json!({"title": format!("{term} {n}")}))
        .collect();
    (StatusCode::OK, json!({"query": term, "results": results}))
}

fn json_response(
    flavor: Flavor,
    status: StatusCode,
    mut payload: Value,
    noisy: bool,
) -> Response<Full<Bytes>> {
    let request_id = format!("{:016x}", fastrand::u64(..));
    if noisy {
        if let Value::Object(map) = &mut payload {
            map.insert("request_id".into(), json!(request_id));
            map.insert(
                "generated_at".into(),
                json!(
                    chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now())
                        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                ),
            );
        }
    }
    let server = match flavor {
        Flavor::Primary => "demo-primary",
        Flavor::Secondary => "demo-secondary",
    };
    let body = serde_json::to_vec(&payload).expect("JSON values serialize");
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    headers.insert(header::SERVER, header::HeaderValue::from_static(server));
    if noisy {
        if let Ok(value) = header::HeaderValue::from_str(&request_id) {
            headers.insert("x-request-id", value);
        }
    }
    response
}
