//! flagnet's durable state behind the `flagnet_core::Store` trait: SQLite,
//! the embedded default ([`SqliteStore`]), and PostgreSQL for agencies that
//! run several replicas of one node on one database ([`PostgresStore`]),
//! both run through the same backend-agnostic [`conformance`] suite.
//! Migrations are embedded per SQL dialect (`migrations/sqlite/`,
//! `migrations/postgres/`) and run at open. Both backends encode, seal and
//! validate rows through one shared module, so a row is sealed alike on
//! either.
//!
//! A node opens its store from a database URL with [`open_store`], which
//! picks the backend by scheme and hands back an `Arc<dyn Store>`:
//!
//! | URL | backend |
//! | --- | --- |
//! | `sqlite:///var/lib/flagnet/store.sqlite`, `sqlite://relative.sqlite`, or a bare path | [`SqliteStore`] on that file |
//! | `postgres://user@host:5432/db?schema=flagnet` (or `postgresql://`) | [`PostgresStore`] in that schema, [`DEFAULT_POSTGRES_SCHEMA`] without `?schema=`; other query parameters go to tokio-postgres |
//!
//! ```no_run
//! # async fn example() -> flagnet_core::CoreResult<()> {
//! let key = flagnet_store::DataKey::from_hex(&std::fs::read_to_string("/etc/flagnet/data.key").unwrap())?;
//! let store = flagnet_store::open_store("postgres://flagnet@db:5432/flagnet?schema=phelps_so", key, 8).await?;
//! # let _ = store; Ok(()) }
//! ```
//!
//! Flag and consent content is sealed with XChaCha20-Poly1305 under the node
//! [`DataKey`]; only ids, owner agency, status, review date, instants,
//! revisions and blind tokens are stored in the clear. This crate must never
//! store, log or return a subject's plaintext outside a sealed body, and
//! never hand back a row it could not authenticate.
#![forbid(unsafe_code)]

mod bulk;
pub mod conformance;
mod data_key;
mod open;
mod pool;
mod postgres;
mod rows;
mod seal;
mod sqlite;

pub use bulk::{BulkLoaded, MAX_BULK_FLAGS};
pub use data_key::{DATA_KEY_LEN, DataKey};
pub use open::{DEFAULT_POSTGRES_SCHEMA, open_store};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// The most tokens one `find_flags` call may carry.
pub const MAX_LOOKUP_TOKENS: usize = 64;
/// The most blind tokens one flag may carry (4 kinds of subject key, up to
/// `flagnet_core::flag::MAX_LIST_LEN` keys each).
pub const MAX_FLAG_TOKENS: usize = 4 * flagnet_core::flag::MAX_LIST_LEN;
/// The most flag ids one `consents_for_flags` call may carry.
pub const MAX_CONSENT_QUERY_FLAGS: usize = 500;
/// The largest page `list_flags` returns; larger limits are clamped to it,
/// and a limit of 0 is taken as 1.
pub const MAX_LIST_LIMIT: usize = 500;
/// The pool size a node uses unless configured otherwise.
pub const DEFAULT_POOL_SIZE: usize = 4;
/// The largest pool `SqliteStore::open` and `PostgresStore::connect` accept.
pub const MAX_POOL_SIZE: usize = 64;
