//! The built-in traffic mix of the demo: every route, the noisy and the clean ones, a few
//! writes, in a fixed order so two runs see the same requests.

use crate::exchange::RecordedRequest;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method};

/// Requests the demo sends by default.
pub const DEMO_REQUESTS: usize = 200;

/// `count` requests cycling through the demo routes, deterministic for a given count.
pub fn traffic(count: usize) -> impl Iterator<Item = RecordedRequest> {
    (0..count).map(request)
}

/// The n-th request of the mix; one cycle is ten requests.
fn request(n: usize) -> RecordedRequest {
    let id = n / 10 + 1;
    let (method, target, body) = match n % 10 {
        0 => (Method::GET, "/health".to_string(), None),
        1 | 7 => (Method::GET, format!("/users/{id}"), None),
        2 => (Method::GET, format!("/users/{id}/orders"), None),
        3 | 9 => (Method::GET, format!("/products/{id}/price"), None),
        4 => (Method::GET, format!("/search?q=item{id}"), None),
        5 => (Method::GET, "/search?q=".to_string(), None),
        6 => (Method::GET, "/reports/daily".to_string(), None),
        _ => (
            Method::POST,
            "/orders".to_string(),
            Some(format!("{{\"product\":{id},\"quantity\":1}}")),
        ),
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    headers.insert(
        header::USER_AGENT,
        HeaderValue::from_static("shadowdiff-demo"),
    );
    if body.is_some() {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    RecordedRequest {
        method,
        uri: target.parse().expect("demo targets are valid"),
        headers,
        body: body.map(Bytes::from).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_write_in_ten() {
        let writes = traffic(DEMO_REQUESTS)
            .filter(|r| r.method != Method::GET)
            .count();
        assert_eq!(writes, DEMO_REQUESTS / 10);
    }
}
