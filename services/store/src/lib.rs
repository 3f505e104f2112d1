//! flagnet's durable state behind the `flagnet_core::Store` trait: SQLite
//! today ([`SqliteStore`]), PostgreSQL later, both run through the same
//! backend-agnostic [`conformance`] suite. Migrations are embedded per SQL
//! dialect (`migrations/sqlite/`) and run at open.
//!
//! Flag and consent content is sealed with XChaCha20-Poly1305 under the node
//! [`DataKey`]; only ids, owner agency, status, review date, instants,
//! revisions and blind tokens are stored in the clear. This crate must never
//! store, log or return a subject's plaintext outside a sealed body, and
//! never hand back a row it could not authenticate.
#![forbid(unsafe_code)]

pub mod conformance;
mod data_key;
mod pool;
mod seal;
mod sqlite;

pub use data_key::{DATA_KEY_LEN, DataKey};
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
/// The largest pool `SqliteStore::open` accepts.
pub const MAX_POOL_SIZE: usize = 64;
