//! One connection to a store of either engine, for what reads (reports, `show`, `suggest`)
//! and what moves stores (`store copy`, `store prune`). Queries are written once, in the SQL
//! both engines speak, with `?N` placeholders that become `$N` for PostgreSQL; where the
//! engines differ (SQLite's `rowid`), the caller picks by [`Conn::engine`].
//!
//! Integer columns are `BIGINT` in PostgreSQL and sums are cast to it, so every integer a
//! row holds reads as `i64` from both engines.

use super::location::{PgTarget, PgTls};
use std::cell::RefCell;

/// Which engine a connection speaks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A failed query or connection, with the engine's own error.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("{}", pg_detail(.0))]
    Postgres(#[from] postgres::Error),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{0}")]
    Invalid(String),
}

/// PostgreSQL's message with its detail and hint, which `postgres::Error`'s Display leaves
/// out ("db error" alone says nothing).
pub(crate) fn pg_detail(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => {
            let mut text = format!("{}: {}", db.severity(), db.message());
            if let Some(detail) = db.detail() {
                text.push_str(&format!(" ({detail})"));
            }
            if let Some(hint) = db.hint() {
                text.push_str(&format!("; hint: {hint}"));
            }
            text
        }
        None => crate::upstream::error_chain(error),
    }
}

/// A query argument, bound the same way in both engines.
#[derive(Clone, Copy, Debug)]
pub enum Arg<'a> {
    Int(Option<i64>),
    Text(Option<&'a str>),
    Bytes(Option<&'a [u8]>),
    Bool(bool),
}

/// A row of either engine, read by column index.
pub enum Row<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Postgres(&'a postgres::Row),
}

impl Row<'_> {
    pub fn int(&self, i: usize) -> Result<i64, DbError> {
        Ok(match self {
            Row::Sqlite(row) => row.get(i)?,
            Row::Postgres(row) => row.try_get(i)?,
        })
    }

    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, DbError> {
        Ok(match self {
            Row::Sqlite(row) => row.get(i)?,
            Row::Postgres(row) => row.try_get(i)?,
        })
    }

    pub fn text(&self, i: usize) -> Result<String, DbError> {
        Ok(match self {
            Row::Sqlite(row) => row.get(i)?,
            Row::Postgres(row) => row.try_get(i)?,
        })
    }

    pub fn opt_text(&self, i: usize) -> Result<Option<String>, DbError> {
        Ok(match self {
            Row::Sqlite(row) => row.get(i)?,
            Row::Postgres(row) => row.try_get(i)?,
        })
    }

    pub fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>, DbError> {
        Ok(match self {
            Row::Sqlite(row) => row.get(i)?,
            Row::Postgres(row) => row.try_get(i)?,
        })
    }

    pub fn bool(&self, i: usize) -> Result<bool, DbError> {
        Ok(match self {
            Row::Sqlite(row) => row.get(i)?,
            Row::Postgres(row) => row.try_get(i)?,
        })
    }
}

/// An open connection. PostgreSQL's client wants `&mut` for every query; readers hand out
/// `&self`, so it sits in a `RefCell` (a reader is used from one thread at a time).
pub enum Conn {
    Sqlite(rusqlite::Connection),
    Postgres(Box<RefCell<postgres::Client>>),
}

impl Conn {
    pub fn engine(&self) -> Engine {
        match self {
            Conn::Sqlite(_) => Engine::Sqlite,
            Conn::Postgres(_) => Engine::Postgres,
        }
    }

    /// Runs `sql` and hands each row to `visit` as it arrives: PostgreSQL's rows are
    /// streamed from the server, so a caller that keeps nothing keeps nothing.
    pub fn each(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        mut visit: impl FnMut(&Row<'_>) -> Result<(), DbError>,
    ) -> Result<(), DbError> {
        match self {
            Conn::Sqlite(conn) => {
                let mut statement = conn.prepare_cached(sql)?;
                let mut rows = statement.query(rusqlite::params_from_iter(sqlite_args(args)))?;
                while let Some(row) = rows.next()? {
                    visit(&Row::Sqlite(row))?;
                }
                Ok(())
            }
            Conn::Postgres(client) => {
                use postgres::fallible_iterator::FallibleIterator;
                let mut client = client.borrow_mut();
                let sql = pg_sql(sql);
                let values = pg_args(args);
                let mut rows = client.query_raw(sql.as_str(), values.iter().map(|v| v.as_ref()))?;
                while let Some(row) = rows.next()? {
                    visit(&Row::Postgres(&row))?;
                }
                Ok(())
            }
        }
    }

    /// Runs a statement that returns no rows; how many rows it changed.
    pub fn execute(&self, sql: &str, args: &[Arg<'_>]) -> Result<u64, DbError> {
        match self {
            Conn::Sqlite(conn) => {
                let mut statement = conn.prepare_cached(sql)?;
                Ok(statement.execute(rusqlite::params_from_iter(sqlite_args(args)))? as u64)
            }
            Conn::Postgres(client) => {
                let values = pg_args(args);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    values.iter().map(|v| v.as_ref()).collect();
                Ok(client.borrow_mut().execute(pg_sql(sql).as_str(), &refs)?)
            }
        }
    }

    /// Runs statements without arguments (`BEGIN`, `COMMIT`, DDL).
    pub fn batch(&self, sql: &str) -> Result<(), DbError> {
        match self {
            Conn::Sqlite(conn) => Ok(conn.execute_batch(sql)?),
            Conn::Postgres(client) => Ok(client.borrow_mut().batch_execute(sql)?),
        }
    }

    /// Every row of `sql`, each turned into a `T`.
    pub fn rows<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        mut map: impl FnMut(&Row<'_>) -> Result<T, DbError>,
    ) -> Result<Vec<T>, DbError> {
        let mut out = Vec::new();
        self.each(sql, args, |row| {
            out.push(map(row)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// The first row of `sql`, if any.
    pub fn first<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        mut map: impl FnMut(&Row<'_>) -> Result<T, DbError>,
    ) -> Result<Option<T>, DbError> {
        let mut found = None;
        self.each(sql, args, |row| {
            if found.is_none() {
                found = Some(map(row)?);
            }
            Ok(())
        })?;
        Ok(found)
    }

    /// Whether the store has `table`: a store of an older schema, read as it is, lacks the
    /// newer ones.
    pub fn has_table(&self, table: &str) -> Result<bool, DbError> {
        let sql = match self.engine() {
            Engine::Sqlite => {
                "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1)"
            }
            Engine::Postgres => "SELECT to_regclass(?1) IS NOT NULL",
        };
        Ok(self
            .first(sql, &[Arg::Text(Some(table))], |row| row.bool(0))?
            .unwrap_or(false))
    }

    /// Whether `table` has `column`.
    pub fn has_column(&self, table: &str, column: &str) -> Result<bool, DbError> {
        let sql = match self.engine() {
            Engine::Sqlite => "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)",
            Engine::Postgres => {
                "SELECT EXISTS (SELECT 1 FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = ?1 AND column_name = ?2)"
            }
        };
        Ok(self
            .first(
                sql,
                &[Arg::Text(Some(table)), Arg::Text(Some(column))],
                |row| row.bool(0),
            )?
            .unwrap_or(false))
    }
}

fn sqlite_args(args: &[Arg<'_>]) -> Vec<rusqlite::types::Value> {
    use rusqlite::types::Value;
    args.iter()
        .map(|arg| match arg {
            Arg::Int(Some(n)) => Value::Integer(*n),
            Arg::Text(Some(s)) => Value::Text((*s).to_string()),
            Arg::Bytes(Some(b)) => Value::Blob(b.to_vec()),
            Arg::Bool(b) => Value::Integer(i64::from(*b)),
            Arg::Int(None) | Arg::Text(None) | Arg::Bytes(None) => Value::Null,
        })
        .collect()
}

fn pg_args<'a>(args: &[Arg<'a>]) -> Vec<Box<dyn postgres::types::ToSql + Sync + 'a>> {
    args.iter()
        .map(|arg| -> Box<dyn postgres::types::ToSql + Sync + 'a> {
            match *arg {
                Arg::Int(n) => Box::new(n),
                Arg::Text(s) => Box::new(s),
                Arg::Bytes(b) => Box::new(b),
                Arg::Bool(b) => Box::new(b),
            }
        })
        .collect()
}

/// `?N` placeholders as PostgreSQL numbers them (`$N`). The queries here hold no string
/// literal with a `?`, so a plain scan is enough.
pub fn pg_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

/// Connects to `target` with the TLS its `sslmode` asks for.
pub fn connect_pg(target: &PgTarget) -> Result<postgres::Client, DbError> {
    let config = target.config();
    match target.tls() {
        PgTls::Off => Ok(config.connect(postgres::NoTls)?),
        PgTls::Prefer { root_cert } | PgTls::Require { root_cert } => {
            let trust = crate::upstream::Trust {
                extra_ca: root_cert.clone(),
                insecure: false,
            };
            let tls =
                crate::upstream::tls_config(&trust).map_err(|e| DbError::Tls(e.to_string()))?;
            let connector = tokio_postgres_rustls::MakeRustlsConnect::new(tls);
            Ok(config.connect(connector)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres() {
        assert_eq!(
            pg_sql("SELECT a FROM t WHERE (CAST(?1 AS BIGINT) IS NULL OR id = ?1) LIMIT ?12"),
            "SELECT a FROM t WHERE (CAST($1 AS BIGINT) IS NULL OR id = $1) LIMIT $12"
        );
    }
}
