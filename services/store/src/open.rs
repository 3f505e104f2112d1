//! Choosing a backend from a database URL: `sqlite://PATH` or a bare path
//! opens a [`SqliteStore`], `postgres://…` or `postgresql://…` connects a
//! [`PostgresStore`]. The node only ever sees `Arc<dyn Store>`.
//!
//! This module must never log or return a URL, since a PostgreSQL URL may
//! carry a password; errors name the part that is wrong.

use crate::data_key::DataKey;
use crate::postgres::PostgresStore;
use crate::sqlite::SqliteStore;
use flagnet_core::{CoreError, CoreResult, Store};
use std::path::PathBuf;
use std::sync::Arc;

/// The schema a `postgres://` URL without `?schema=` uses.
pub const DEFAULT_POSTGRES_SCHEMA: &str = "flagnet";

/// Which backend a database URL names, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoreLocation {
    Sqlite(PathBuf),
    /// the URL without `schema=`, and the schema
    Postgres {
        url: String,
        schema: String,
    },
}

impl StoreLocation {
    pub(crate) fn parse(url: &str) -> CoreResult<Self> {
        let url = url.trim();
        if url.is_empty() {
            return Err(CoreError::invalid("store.url", "is required"));
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(CoreError::invalid("store.url", "sqlite:// needs a file path"));
            }
            if path.contains('?') {
                return Err(CoreError::invalid(
                    "store.url",
                    "sqlite:// URLs take no query parameters",
                ));
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return split_schema(url);
        }
        if url.contains("://") {
            return Err(CoreError::invalid(
                "store.url",
                "must start with sqlite:// or postgres://, or be a file path",
            ));
        }
        Ok(Self::Sqlite(PathBuf::from(url)))
    }
}

/// Takes `schema=` out of the query string (tokio-postgres refuses options
/// it does not know) and keeps every other parameter.
fn split_schema(url: &str) -> CoreResult<StoreLocation> {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, query),
        None => (url, ""),
    };
    let mut schema = None;
    let mut kept = Vec::new();
    for parameter in query.split('&').filter(|parameter| !parameter.is_empty()) {
        match parameter.split_once('=') {
            Some(("schema", value)) => {
                if schema.replace(value.to_owned()).is_some() {
                    return Err(CoreError::invalid("store.url", "schema= appears twice"));
                }
            }
            _ => kept.push(parameter),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok(StoreLocation::Postgres {
        url,
        schema: schema.unwrap_or_else(|| DEFAULT_POSTGRES_SCHEMA.to_owned()),
    })
}

/// Opens the store a database URL names, migrated and checked against
/// `data_key`, with `pool_size` connections:
///
/// * `sqlite:///var/lib/flagnet/store.sqlite`, `sqlite://store.sqlite`
///   (relative) or a bare path: a [`SqliteStore`] on that file, opened on a
///   blocking thread;
/// * `postgres://user@host:5432/db?schema=flagnet` (or `postgresql://`): a
///   [`PostgresStore`] in that schema, [`DEFAULT_POSTGRES_SCHEMA`] when the
///   URL names none; every other query parameter goes to tokio-postgres.
///
/// Any other scheme is `InvalidArgument` on `store.url`.
pub async fn open_store(url: &str, data_key: DataKey, pool_size: usize) -> CoreResult<Arc<dyn Store>> {
    match StoreLocation::parse(url)? {
        StoreLocation::Sqlite(path) => {
            let store = tokio::task::spawn_blocking(move || SqliteStore::open(&path, data_key, pool_size))
                .await
                .map_err(|error| CoreError::Internal(format!("opening the store did not complete: {error}")))??;
            Ok(Arc::new(store))
        }
        StoreLocation::Postgres { url, schema } => {
            let store = PostgresStore::connect(&url, &schema, data_key, pool_size).await?;
            Ok(Arc::new(store))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn postgres(url: &str, schema: &str) -> StoreLocation {
        StoreLocation::Postgres {
            url: url.into(),
            schema: schema.into(),
        }
    }

    #[test]
    fn urls_choose_the_backend() {
        for (url, expected) in [
            (
                "sqlite:///var/lib/flagnet/store.sqlite",
                StoreLocation::Sqlite("/var/lib/flagnet/store.sqlite".into()),
            ),
            (
                "sqlite://data/store.sqlite",
                StoreLocation::Sqlite("data/store.sqlite".into()),
            ),
            ("/tmp/store.sqlite", StoreLocation::Sqlite("/tmp/store.sqlite".into())),
            ("store.sqlite", StoreLocation::Sqlite("store.sqlite".into())),
            (
                "postgres://postgres@127.0.0.1:5432/test",
                postgres("postgres://postgres@127.0.0.1:5432/test", DEFAULT_POSTGRES_SCHEMA),
            ),
            (
                "postgresql://u:p@db/flagnet?schema=agency_a",
                postgres("postgresql://u:p@db/flagnet", "agency_a"),
            ),
            (
                "postgres://db/x?connect_timeout=3&schema=s1&application_name=node",
                postgres("postgres://db/x?connect_timeout=3&application_name=node", "s1"),
            ),
        ] {
            assert_eq!(StoreLocation::parse(url).unwrap(), expected, "{url}");
        }
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_them() {
        for url in [
            "",
            "sqlite://",
            "sqlite://x.db?mode=rwc",
            "mysql://user:hunter2@db/x",
            "postgres://user:hunter2@db/x?schema=a&schema=b",
        ] {
            match StoreLocation::parse(url) {
                Err(CoreError::InvalidArgument { field, reason }) => {
                    assert_eq!(field, "store.url");
                    assert!(!reason.contains("hunter2"), "{reason}");
                }
                other => panic!("{url:?}: expected invalid argument, got {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn open_store_opens_sqlite_from_a_url() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("store.sqlite").display());
        let store = open_store(&url, DataKey::from_bytes([3; 32]), 1).await.unwrap();
        let owner = flagnet_core::AgencyId::parse("phelps-so").unwrap();
        assert!(store.list_flags(&owner, None, 10).await.unwrap().is_empty());
        assert!(format!("{store:?}").starts_with("SqliteStore"));
        let refused = open_store(&url, DataKey::from_bytes([3; 32]), 0).await;
        assert!(matches!(refused, Err(CoreError::InvalidArgument { .. })));
    }
}
