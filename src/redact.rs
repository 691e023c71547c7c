//! Secrets never reach the disk: header values that carry credentials are replaced before a
//! request or response is stored or recorded.

use http::{HeaderMap, HeaderName, HeaderValue};

/// What a redacted value reads as in the store and in reports.
pub const REDACTED: &str = "[redacted]";

/// Headers whose values are credentials (RFC 9110 section 11.6, RFC 6265).
pub const SECRET_HEADERS: [HeaderName; 4] = [
    http::header::AUTHORIZATION,
    http::header::PROXY_AUTHORIZATION,
    http::header::COOKIE,
    http::header::SET_COOKIE,
];

/// Replaces the value of every secret header, keeping the header's presence and count so
/// that a difference in *whether* a credential was sent stays visible.
pub fn redact_headers(headers: &mut HeaderMap) {
    for name in SECRET_HEADERS.iter() {
        if let http::header::Entry::Occupied(mut entry) = headers.entry(name) {
            for value in entry.iter_mut() {
                *value = HeaderValue::from_static(REDACTED);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_every_value_of_secret_headers_only() {
        let mut h = HeaderMap::new();
        h.append("authorization", HeaderValue::from_static("Bearer abc"));
        h.append("cookie", HeaderValue::from_static("a=1"));
        h.append("cookie", HeaderValue::from_static("b=2"));
        h.append("x-request-id", HeaderValue::from_static("r1"));
        redact_headers(&mut h);
        assert_eq!(h["authorization"], REDACTED);
        let cookies: Vec<_> = h.get_all("cookie").iter().collect();
        assert_eq!(cookies, vec![REDACTED, REDACTED]);
        assert_eq!(h["x-request-id"], "r1");
    }
}
