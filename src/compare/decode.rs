//! Undoing what the transport did to a body before anyone compares it: Content-Encoding
//! (RFC 9110 section 8.4: codings are listed in the order applied, so they are undone in
//! reverse) and the charset of Content-Type (RFC 9110 section 8.3.2), so a gzip-encoded
//! body matches the same content sent plain, and Latin-1 matches UTF-8.

use http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use http::HeaderMap;
use std::borrow::Cow;
use std::io::Read;

/// What kind of content a body is, from its Content-Type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Declared {
    Json,
    Text,
    /// No type, or a type that says nothing (`application/octet-stream`, `text/plain`):
    /// the content decides.
    Generic,
    Binary,
}

/// A body ready for comparison.
pub struct Decoded<'a> {
    pub bytes: Cow<'a, [u8]>,
    pub declared: Declared,
}

/// The media type of a Content-Type value, lowercased and without parameters.
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let media = value.split(';').next()?.trim().to_ascii_lowercase();
    (!media.is_empty()).then_some(media)
}

fn charset(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    value.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"').to_ascii_lowercase())
    })
}

/// What a media type says of its content (`report::diffview` reads a bare content type).
pub(crate) fn declared(media: Option<&str>) -> Declared {
    match media {
        None => Declared::Generic,
        Some("application/octet-stream" | "text/plain") => Declared::Generic,
        Some(m) if m == "application/json" || m.ends_with("+json") || m.ends_with("/json") => {
            Declared::Json
        }
        Some(m)
            if m.starts_with("text/")
                || m.ends_with("+xml")
                || m.ends_with("/xml")
                || m == "application/javascript"
                || m == "application/x-www-form-urlencoded" =>
        {
            Declared::Text
        }
        Some(_) => Declared::Binary,
    }
}

/// Decodes a body; the error says what could not be undone, for a `decode` difference.
pub fn decode<'a>(headers: &HeaderMap, body: &'a [u8]) -> Result<Decoded<'a>, String> {
    let mut bytes = Cow::Borrowed(body);
    let codings: Vec<String> = headers
        .get_all(CONTENT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "identity")
        .collect();
    for coding in codings.iter().rev() {
        bytes = Cow::Owned(undo_coding(coding, &bytes)?);
    }
    let media = media_type(headers);
    let declared = declared(media.as_deref());
    if let Some(label) = charset(headers) {
        let encoding = encoding_rs::Encoding::for_label(label.as_bytes())
            .ok_or_else(|| format!("unknown charset {label:?}"))?;
        if encoding != encoding_rs::UTF_8 {
            let (text, had_errors) = encoding.decode_without_bom_handling(&bytes);
            if had_errors {
                return Err(format!("body is not valid {}", encoding.name()));
            }
            bytes = Cow::Owned(text.into_owned().into_bytes());
        }
    }
    Ok(Decoded { bytes, declared })
}

/// Largest decoded body compared. max-body caps what travels, not what it inflates to; a
/// small compressed body can expand without bound, and the compare thread must not.
pub const MAX_DECODED: u64 = 64 * 1024 * 1024;

fn undo_coding(coding: &str, input: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(input.len().saturating_mul(4));
    let limit = MAX_DECODED + 1;
    let result = match coding {
        "gzip" | "x-gzip" => flate2::read::MultiGzDecoder::new(input)
            .take(limit)
            .read_to_end(&mut out),
        // "deflate" is the zlib format (RFC 9110 section 8.4.1.2), though some servers
        // send raw deflate; accept both.
        "deflate" => {
            let zlib = flate2::read::ZlibDecoder::new(input)
                .take(limit)
                .read_to_end(&mut out);
            if zlib.is_err() {
                out.clear();
                flate2::read::DeflateDecoder::new(input)
                    .take(limit)
                    .read_to_end(&mut out)
            } else {
                zlib
            }
        }
        "br" => brotli::Decompressor::new(input, 4096)
            .take(limit)
            .read_to_end(&mut out),
        "zstd" => zstd::stream::read::Decoder::new(input)
            .and_then(|d| d.take(limit).read_to_end(&mut out)),
        other => return Err(format!("unsupported content-encoding {other:?}")),
    };
    result.map_err(|e| format!("content-encoding {coding}: {e}"))?;
    if out.len() as u64 > MAX_DECODED {
        return Err(format!(
            "content-encoding {coding}: decodes to more than {MAX_DECODED} bytes"
        ));
    }
    Ok(out)
}
