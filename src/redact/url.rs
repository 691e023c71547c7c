//! Upstream URLs as they may be printed or stored: a password in the userinfo (which RFC
//! 3986 section 3.2.1 deprecates, but `--secondary http://user:pw@host` still sends as
//! Basic credentials) is replaced by `***`. Every place that shows or stores an upstream
//! URL (the `runs` table, the startup log line, `config check`, errors) goes through
//! [`shown`].

/// What replaces a URL's password.
pub const MASK: &str = "***";

/// `url` with its password, if any, replaced by [`MASK`]; the user name stays, so an
/// operator can still tell which credentials were used.
pub fn shown(url: &url::Url) -> String {
    if url.password().is_none() {
        return url.to_string();
    }
    let mut masked = url.clone();
    // Only URLs that cannot have credentials refuse a password, and this one has one.
    let _ = masked.set_password(Some(MASK));
    masked.to_string()
}

/// `message` with every occurrence of `url` (as serialized) shown masked: for error texts
/// of the HTTP client, which name the URL they failed on.
pub fn scrub(message: &str, url: &url::Url) -> String {
    if url.password().is_none() {
        return message.to_string();
    }
    message.replace(url.as_str(), &shown(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_password_is_masked() {
        let url = url::Url::parse("http://user:s3cret@host:8080/v2").unwrap();
        assert_eq!(shown(&url), "http://user:***@host:8080/v2");
        let plain = url::Url::parse("http://user@host/").unwrap();
        assert_eq!(shown(&plain), "http://user@host/");
        let message = format!("error sending request for url ({url}): refused");
        assert_eq!(
            scrub(&message, &url),
            "error sending request for url (http://user:***@host:8080/v2): refused"
        );
    }
}
