//! Deciding what a file is before anything writes to it.
//!
//! A file shadowdiff refuses must keep every byte: setting WAL mode, running a migration or
//! even creating a table would change another application's database or a store a newer
//! release owns. So both the writer and the readers first open the file with
//! `SQLITE_OPEN_READ_ONLY` and look at three things that need no write: the
//! `application_id` mark, `user_version`, and the names of the tables.

use super::schema::{self, SchemaError, APPLICATION_ID};
use super::StoreError;
use rusqlite::ffi::ErrorCode;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};

/// Tables every store since schema 1 has: how a store written before the
/// `application_id` mark existed is recognised.
const STORE_TABLES: &[&str] = &[
    "runs",
    "outcome_counts",
    "latency_buckets",
    "path_counts",
    "hidden_counts",
    "mismatches",
    "differences",
];

/// What a file turned out to be.
pub(super) enum Found {
    /// No file, a zero-length file or an SQLite database with nothing in it: a writer may
    /// make a store of it.
    Nothing,
    /// A shadowdiff store this release may use; `marked` is false for stores written before
    /// the `application_id` mark.
    Store { marked: bool },
}

/// Why the file is about to be used: a writer may migrate; a reader changes nothing.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Write,
    Read,
}

/// Inspects `path` for a writer without changing it; refuses a file that is not a store this
/// release may write.
pub(super) fn inspect_for_writing(path: &Path) -> Result<Found, StoreError> {
    inspect(path, Purpose::Write).map(|(found, _)| found)
}

/// Opens `path` read-only (also on read-only media) after checking that it is a store this
/// release may read.
pub(super) fn open_for_reading(path: &Path) -> Result<Connection, StoreError> {
    match inspect(path, Purpose::Read)? {
        (_, Some(conn)) => Ok(conn),
        // inspect never answers a reader without its connection; say so rather than panic.
        (_, None) => Err(StoreError::NotAStore {
            path: path.to_path_buf(),
            reason: "an SQLite file without the shadowdiff schema".into(),
        }),
    }
}

/// What `path` is, and for a reader the read-only connection it was inspected with.
fn inspect(path: &Path, purpose: Purpose) -> Result<(Found, Option<Connection>), StoreError> {
    let not_a_store = |reason: &str| StoreError::NotAStore {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return match purpose {
                Purpose::Write => Ok((Found::Nothing, None)),
                Purpose::Read => Err(not_a_store("no such file")),
            };
        }
        Err(e) => return Err(not_a_store(&format!("cannot be read ({e})"))),
        Ok(meta) if !meta.is_file() => return Err(not_a_store("not a regular file")),
        Ok(meta) if meta.len() == 0 && purpose == Purpose::Write => {
            return Ok((Found::Nothing, None))
        }
        Ok(_) => {}
    }
    let conn = open_read_only(path)?;
    let sqlite = |e| StoreError::from_sqlite(path, e);
    let application_id: i64 = conn
        .query_row("PRAGMA application_id", [], |row| row.get(0))
        .map_err(sqlite)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(sqlite)?;
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")
        .and_then(|mut s| s.query_map([], |row| row.get(0))?.collect())
        .map_err(sqlite)?;
    let marked = application_id == i64::from(APPLICATION_ID);
    if !marked {
        if application_id != 0 {
            return Err(not_a_store(&format!(
                "its application_id {application_id:#010x} marks another application's database"
            )));
        }
        if tables.is_empty() && version == 0 {
            return match purpose {
                Purpose::Write => Ok((Found::Nothing, None)),
                Purpose::Read => Err(not_a_store(
                    "an SQLite file without the shadowdiff schema (it is empty)",
                )),
            };
        }
        let has_store_tables = STORE_TABLES.iter().all(|t| tables.iter().any(|n| n == t));
        if version < 1 || !has_store_tables {
            return Err(not_a_store(
                "an SQLite file without the shadowdiff schema (another application's database?)",
            ));
        }
    }
    schema::check_version(&conn).map_err(|e| match e {
        SchemaError::Newer { found, min_writer } => StoreError::NewerSchema {
            path: path.to_path_buf(),
            found,
            min_writer,
        },
        SchemaError::Sqlite(e) => sqlite(e),
        other => StoreError::Damaged {
            path: path.to_path_buf(),
            reason: other.to_string(),
        },
    })?;
    let found = Found::Store { marked };
    match purpose {
        Purpose::Write => Ok((found, None)),
        Purpose::Read => Ok((found, Some(conn))),
    }
}

/// Opens `path` read-only, also on read-only media.
///
/// A store in WAL mode needs its `-shm` file even to be read, and SQLite creates it next to
/// the database: in a read-only directory or on a read-only filesystem that fails ("unable
/// to open database file"). A store closed cleanly has no write-ahead log left, so it is
/// then opened as `immutable=1`, which needs no `-shm`. A store whose `-wal` still holds
/// pages was not closed cleanly: reading it as immutable would silently ignore those pages,
/// so it is refused with what to do instead.
fn open_read_only(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let probe = |conn: Connection| {
        conn.query_row("PRAGMA user_version", [], |row| row.get::<_, i64>(0))
            .map(|_| conn)
    };
    let first = Connection::open_with_flags(path, flags).and_then(probe);
    let error = match first {
        Ok(conn) => return Ok(conn),
        Err(error) => error,
    };
    if !matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly)
    ) {
        return Err(StoreError::from_sqlite(path, error));
    }
    let wal = sibling(path, "-wal");
    if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
        return Err(StoreError::NeedsRecovery {
            path: path.to_path_buf(),
            wal,
        });
    }
    let uri = format!("{}?immutable=1", file_uri(path));
    Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI)
        .and_then(probe)
        .map_err(|_| StoreError::from_sqlite(path, error))
}

/// `path` with `suffix` appended to its file name, as SQLite names `-wal` and `-shm`.
pub(super) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The sidecar note next to a store that holds losses the store itself could not take
/// (the disk stayed full to the end): `FILE.losses`, read by `report` with the store.
pub(super) fn losses_note(path: &Path) -> PathBuf {
    sibling(path, ".losses")
}

/// A `file:` URI for `path` (SQLite URI filenames, <https://sqlite.org/uri.html>): every byte
/// but unreserved ones and `/` percent-encoded, so `?`, `#` and `%` in a name stay a name.
fn file_uri(path: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut uri = String::from("file:");
    for &byte in absolute.as_os_str().as_encoded_bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
            uri.push(byte as char);
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_uri_encodes_what_would_end_the_name() {
        assert_eq!(
            file_uri(Path::new("/a b/s?.db#1%")),
            "file:/a%20b/s%3F.db%231%25"
        );
    }

    #[test]
    fn sibling_appends_to_the_file_name() {
        assert_eq!(
            sibling(Path::new("/d/s.db"), "-wal"),
            Path::new("/d/s.db-wal")
        );
    }
}
