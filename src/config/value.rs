//! The grammar of each kind of setting value, shared by flags, the environment and the
//! file: one parser and one spelling (as a TOML value, for `config check`) per kind.

use http::HeaderName;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How one kind of value is read from text and written back as a TOML value.
pub struct Kind<T> {
    pub parse: fn(&str) -> Result<T, String>,
    pub spell: fn(&T) -> String,
}

/// A TOML basic string: what `config check` prints for text values.
pub fn quoted(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

pub const DURATION: Kind<Duration> = Kind {
    parse: parse_duration,
    spell: |d| quoted(&humantime::format_duration(*d).to_string()),
};

/// A size in bytes, written as bytes or as a human size (`1MiB`).
pub const SIZE: Kind<u64> = Kind {
    parse: parse_size,
    spell: |n| n.to_string(),
};

pub const RATE: Kind<f64> = Kind {
    parse: parse_rate,
    spell: |r| r.to_string(),
};

pub const SWITCH: Kind<bool> = Kind {
    parse: parse_switch,
    spell: |b| b.to_string(),
};

pub const PATH: Kind<PathBuf> = Kind {
    parse: |text| match text {
        "" => Err("an empty path".into()),
        text => Ok(PathBuf::from(text)),
    },
    spell: |p| quoted(&p.display().to_string()),
};

pub const ADDRESS: Kind<SocketAddr> = Kind {
    parse: |text| {
        text.trim()
            .parse::<SocketAddr>()
            .map_err(|e| format!("{text:?}: {e}"))
    },
    spell: |a| quoted(&a.to_string()),
};

/// An address, or `off` (also `none` or empty) for a listener that is not opened.
pub const ADDRESS_OR_OFF: Kind<Option<SocketAddr>> = Kind {
    parse: |text| match text.trim() {
        "off" | "none" | "" => Ok(None),
        value => value
            .parse::<SocketAddr>()
            .map(Some)
            .map_err(|e| format!("{value:?}: {e} (or `off`)")),
    },
    spell: |a| a.map_or_else(|| quoted("off"), |a| quoted(&a.to_string())),
};

/// Where a secret may hide (a password in the URL), the spelling masks it.
pub const UPSTREAM: Kind<url::Url> = Kind {
    parse: parse_upstream,
    spell: |u| quoted(&crate::redact::url::shown(u)),
};

pub const SAMPLE_KEY: Kind<SampleKey> = Kind {
    parse: parse_sample_key,
    spell: |key| {
        quoted(&match key {
            SampleKey::Header(name) => format!("header:{name}"),
            SampleKey::Query(name) => format!("query:{name}"),
            SampleKey::Path => "path".into(),
        })
    },
};

pub const COUNT: Kind<usize> = Kind {
    parse: |text| parse_number(text),
    spell: |n| n.to_string(),
};

pub const COUNT32: Kind<u32> = Kind {
    parse: |text| parse_number(text),
    spell: |n| n.to_string(),
};

fn parse_number<T: std::str::FromStr>(text: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    text.trim()
        .parse::<T>()
        .map_err(|e| format!("{text:?}: {e}"))
}

/// Which part of a request decides sampling when it must be stable per key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SampleKey {
    Header(HeaderName),
    Query(String),
    Path,
}

/// `true` or `false`: what a file's boolean, a set flag and clap's reading of a switch's
/// environment variable all become.
fn parse_switch(text: &str) -> Result<bool, String> {
    match text.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("{other:?} is not true or false")),
    }
}

/// `http`, `https` or `h2c` URL without query or fragment; its path becomes a prefix.
/// `h2c://host:port/base` names a cleartext HTTP/2 upstream (prior knowledge, RFC 9113
/// section 3.3), as gRPC services speak it.
pub fn parse_upstream(value: &str) -> Result<url::Url, String> {
    // `localhost:8080` parses as scheme "localhost"; say what the user actually missed.
    if !value.contains("://") {
        return Err(format!(
            "relative URL without a scheme ({value:?}); write http://{value}, https://{value} or h2c://{value}"
        ));
    }
    let url = url::Url::parse(value).map_err(|e| format!("{e} ({value:?})"))?;
    if crate::upstream::Protocol::from_scheme(url.scheme()).is_none() {
        return Err(format!(
            "scheme {:?} is not http, https or h2c ({value:?})",
            url.scheme()
        ));
    }
    if url.host_str().is_none() {
        return Err(format!("no host in {value:?}"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "an upstream URL cannot carry a query or fragment ({value:?})"
        ));
    }
    Ok(url)
}

/// The one grammar for a rate, in flags, files and gate thresholds alike: a fraction
/// (`0.05`) or a percentage (`5%`), between 0 and 1 inclusive.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let trimmed = text.trim();
    let (number, scale) = match trimmed.strip_suffix('%') {
        Some(number) => (number.trim(), 100.0),
        None => (trimmed, 1.0),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a rate (use a fraction like 0.05 or 5%)"))?;
    if !value.is_finite() {
        return Err(format!(
            "{text:?} is not a rate (use a fraction like 0.05 or 5%)"
        ));
    }
    let rate = value / scale;
    if !(0.0..=1.0).contains(&rate) {
        return Err(format!("{text:?} is outside 0..1 (0%..100%)"));
    }
    Ok(rate)
}

pub fn parse_sample_key(value: &str) -> Result<SampleKey, String> {
    if value == "path" {
        return Ok(SampleKey::Path);
    }
    if let Some(name) = value.strip_prefix("header:") {
        return HeaderName::try_from(name.trim())
            .map(SampleKey::Header)
            .map_err(|_| format!("{name:?} is not a valid header name"));
    }
    if let Some(name) = value.strip_prefix("query:") {
        if name.is_empty() {
            return Err("query: needs a parameter name".into());
        }
        return Ok(SampleKey::Query(name.to_string()));
    }
    Err(format!(
        "{value:?}: expected header:NAME, query:NAME or path"
    ))
}

/// Human sizes: `1MiB`, `512KB`, `1048576`.
pub fn parse_size(value: &str) -> Result<u64, String> {
    parse_size::parse_size(value.trim()).map_err(|e| format!("{value:?}: {e}"))
}

/// Human durations: `5s`, `250ms`, `1m 30s`.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    humantime::parse_duration(value.trim()).map_err(|e| format!("{value:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_keys() {
        assert_eq!(parse_sample_key("path"), Ok(SampleKey::Path));
        assert_eq!(
            parse_sample_key("query:user"),
            Ok(SampleKey::Query("user".into()))
        );
        assert!(matches!(
            parse_sample_key("header:X-User"),
            Ok(SampleKey::Header(h)) if h == "x-user"
        ));
        assert!(parse_sample_key("cookie:x").is_err());
        assert!(parse_rate("1.5").is_err());
    }

    #[test]
    fn each_spelling_reads_back_as_the_same_value() {
        let d = Duration::from_millis(1500);
        let spelled = (DURATION.spell)(&d);
        assert_eq!((DURATION.parse)(spelled.trim_matches('"')), Ok(d));
        assert_eq!((RATE.parse)(&(RATE.spell)(&0.25)), Ok(0.25));
        assert_eq!((ADDRESS_OR_OFF.spell)(&None), "\"off\"");
    }
}
