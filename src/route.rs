//! The route key of a request: its method plus its path with identifier segments templated,
//! so that `GET /users/17` and `GET /users/42` are counted and reported together as
//! `GET /users/{id}`. Explicit `[[route]]` patterns in the config take precedence; see
//! [`crate::compare`].

use http::Method;

/// `METHOD /path/{id}`: numeric, UUID and long hex segments become `{id}`.
pub fn auto_route(method: &Method, path: &str) -> String {
    let mut key = String::with_capacity(method.as_str().len() + 1 + path.len());
    key.push_str(method.as_str());
    key.push(' ');
    key.push_str(&template_path(path));
    key
}

/// The path with identifier-like segments replaced by `{id}`; an empty path becomes `/`.
pub fn template_path(path: &str) -> String {
    if path.is_empty() || path == "/" {
        return "/".to_string();
    }
    let mut out = String::with_capacity(path.len());
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if is_identifier(segment) {
            out.push_str("{id}");
        } else {
            out.push_str(segment);
        }
    }
    if !out.starts_with('/') {
        out.insert(0, '/');
    }
    out
}

/// Numeric ids, UUIDs, and hex ids of 16 characters or more (object ids, hashes).
pub fn is_identifier(segment: &str) -> bool {
    if segment.is_empty() {
        return false;
    }
    if segment.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    if is_uuid(segment) {
        return true;
    }
    segment.len() >= 16 && segment.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_identifier_segments() {
        let cases = [
            ("/users/42", "/users/{id}"),
            ("/users/42/orders/7", "/users/{id}/orders/{id}"),
            ("/items/3f2504e0-4f89-11d3-9a0c-0305e82c3301", "/items/{id}"),
            ("/blobs/0123456789abcdef0123", "/blobs/{id}"),
            ("/blobs/cafe", "/blobs/cafe"),
            ("/v2/users", "/v2/users"),
            ("/", "/"),
            ("", "/"),
            ("/users/", "/users/"),
        ];
        for (path, want) in cases {
            assert_eq!(template_path(path), want, "{path}");
        }
        assert_eq!(auto_route(&Method::GET, "/users/9"), "GET /users/{id}");
    }
}
