//! [`SqliteStore`]: the `Store` trait on one SQLite file in WAL mode, through
//! rusqlite on a small pool of blocking connections, with the schema migrated
//! at open and every flag and consent body sealed under the node data key.
//!
//! Every connection runs with `journal_mode=WAL`, `synchronous=FULL` (an
//! acknowledged consent revocation survives a power loss), `foreign_keys=ON`
//! and `busy_timeout=5000`. Each write is one immediate transaction. Rows
//! are encoded, sealed and checked by `crate::rows`, shared with the
//! PostgreSQL backend; this module keeps the statements and the connections.
//!
//! This module must never write a subject's name, birth date, phone,
//! address, clinical detail or consent text outside a sealed body, never put
//! such values in a log or an error message, and never return a row it could
//! not authenticate.

use crate::data_key::DataKey;
use crate::pool::ConnectionPool;
use crate::rows::{
    AlertInput, AlertRow, DATA_KEY_CHECK, FLAG_HISTORY, FlagInput, FlagWrite, JoinedToken, LoadedFlag, LoadedFlags,
    PolicyVersionRow, ProposalRow, ReviewRow, check_rejection, check_resolution, consent_query_flags, cursor_to_sql,
    data_key_check_binding, data_key_check_opens, instant_from_sql, list_limit, lookup_tokens, new_review_item,
    new_revocation, outbox_binding, review_binding, revision_from_sql, stale_policy_base, status_from_sql,
};
// The row types, encodings and checks live in `crate::rows`, shared with the
// PostgreSQL backend; these stay nameable here for code written against
// `crate::sqlite` (the bulk loader).
pub(crate) use crate::rows::{
    ConsentBody, ConsentRow, FlagBody, FlagRow, HistoryBody, check_required_text, date_to_sql, distinct_in_order,
    history_binding, instant_to_sql, validate_new_flag,
};
use crate::seal::Sealer;
use crate::{DEFAULT_POOL_SIZE, MAX_POOL_SIZE};
use async_trait::async_trait;
use flagnet_core::flag::FlagChange;
use flagnet_core::{
    AgencyId, Alert, Consent, CoreError, CoreResult, Encounter, Flag, FlagMatch, NewConsent, NewFlag, NewPolicyVersion,
    PolicyApproval, PolicyProposal, PolicyVersion, ProposalClosing, ProposalOutcome, ReviewItem, ReviewResolution,
    Store, SubjectToken,
};
use rusqlite::types::Value;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, Row, Transaction, params, params_from_iter};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

mod embedded {
    refinery::embed_migrations!("migrations/sqlite");
}

/// How long a connection waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);
/// Prepared statements kept per connection (lookups vary by token count).
const STATEMENT_CACHE_CAPACITY: usize = 96;
/// The flag columns every flag query selects, in this order, followed by the
/// token's `kind` and `token` (NULL when a flag has none).
const FLAG_COLUMNS: &str = "f.id, f.owner, f.status, f.review_date, f.revision, f.created_at, f.updated_at, f.sealed";
pub(crate) const CONSENT_COLUMNS: &str = "id, flag_id, owner, valid_from, valid_until, recorded_at, revoked_at, sealed";

/// A node's flags and consents in one SQLite file.
pub struct SqliteStore {
    path: PathBuf,
    pub(crate) pool: ConnectionPool,
    pub(crate) sealer: Arc<Sealer>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// The pool size a node uses unless configured otherwise.
    pub const DEFAULT_POOL_SIZE: usize = DEFAULT_POOL_SIZE;

    /// Opens (creating if need be) the database file at `path`, migrates it,
    /// checks that `data_key` is the key it was written under, and opens
    /// `pool_size` connections. Blocks while it does so: call it at start-up
    /// or inside `spawn_blocking`.
    pub fn open(path: &Path, data_key: DataKey, pool_size: usize) -> CoreResult<SqliteStore> {
        if !(1..=MAX_POOL_SIZE).contains(&pool_size) {
            return Err(CoreError::invalid(
                "store.pool_size",
                format!("must be between 1 and {MAX_POOL_SIZE}, got {pool_size}"),
            ));
        }
        create_private_file(path)?;
        let sealer = Sealer::new(&data_key);
        let mut first = open_connection(path)?;
        let report = embedded::migrations::runner()
            .set_abort_divergent(true)
            .set_abort_missing(true)
            .run(&mut first)
            .map_err(|error| {
                tracing::error!(path = %path.display(), %error, "database migration failed");
                CoreError::Internal(format!("cannot migrate database {}: {error}", path.display()))
            })?;
        check_data_key(&first, &sealer, path)?;
        let mut connections = Vec::with_capacity(pool_size);
        connections.push(first);
        for _ in 1..pool_size {
            connections.push(open_connection(path)?);
        }
        tracing::info!(
            path = %path.display(),
            pool_size,
            migrations_applied = report.applied_migrations().len(),
            "store opened"
        );
        Ok(SqliteStore {
            path: path.to_path_buf(),
            pool: ConnectionPool::new(connections),
            sealer: Arc::new(sealer),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Creates the file readable by its owner only, so SQLite gives the `-wal`
/// and `-shm` files the same mode. An existing file is left as it is.
fn create_private_file(path: &Path) -> CoreResult<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(CoreError::Unavailable(format!(
            "cannot create database file {}: {error}",
            path.display()
        ))),
    }
}

fn open_connection(path: &Path) -> CoreResult<Connection> {
    let unavailable = |what: &str, error: rusqlite::Error| {
        tracing::error!(path = %path.display(), %error, what, "cannot prepare database connection");
        CoreError::Unavailable(format!("cannot open database {}: {what}: {error}", path.display()))
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags).map_err(|error| unavailable("open", error))?;
    connection
        .busy_timeout(BUSY_TIMEOUT)
        .map_err(|error| unavailable("busy_timeout", error))?;
    let journal_mode: String = connection
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(|error| unavailable("journal_mode", error))?;
    if !journal_mode.eq_ignore_ascii_case("wal") {
        return Err(CoreError::Unavailable(format!(
            "database {} cannot use WAL journal mode (got {journal_mode})",
            path.display()
        )));
    }
    connection
        .pragma_update(None, "synchronous", "FULL")
        .map_err(|error| unavailable("synchronous", error))?;
    connection
        .pragma_update(None, "foreign_keys", "ON")
        .map_err(|error| unavailable("foreign_keys", error))?;
    let synchronous: i64 = connection
        .pragma_query_value(None, "synchronous", |row| row.get(0))
        .map_err(|error| unavailable("synchronous", error))?;
    let foreign_keys: i64 = connection
        .pragma_query_value(None, "foreign_keys", |row| row.get(0))
        .map_err(|error| unavailable("foreign_keys", error))?;
    // 2 is FULL
    if synchronous != 2 || foreign_keys != 1 {
        return Err(CoreError::Unavailable(format!(
            "database {} refused synchronous=FULL or foreign_keys=ON",
            path.display()
        )));
    }
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    Ok(connection)
}

/// Seals the check value on first open; on every later open, refuses a key
/// that cannot open it.
fn check_data_key(connection: &Connection, sealer: &Sealer, path: &Path) -> CoreResult<()> {
    let failed = |error: rusqlite::Error| {
        tracing::error!(path = %path.display(), %error, "cannot read the data key check");
        CoreError::Unavailable(format!("cannot read database {}: {error}", path.display()))
    };
    let sealed_check = sealer.seal_bytes(&data_key_check_binding(), DATA_KEY_CHECK)?;
    connection
        .execute(
            "INSERT OR IGNORE INTO store_meta (name, value) VALUES ('data_key_check', ?1)",
            [&sealed_check],
        )
        .map_err(failed)?;
    let stored: Vec<u8> = connection
        .query_row(
            "SELECT value FROM store_meta WHERE name = 'data_key_check'",
            [],
            |row| row.get(0),
        )
        .map_err(failed)?;
    if data_key_check_opens(sealer, &stored) {
        return Ok(());
    }
    tracing::error!(path = %path.display(), "data key does not open this database");
    Err(CoreError::Internal(format!(
        "{} cannot be decrypted with this data key: it was written under another key",
        path.display()
    )))
}

/// Maps a SQLite failure to the core error: a lock held too long or a disk
/// that cannot be written is `Unavailable`, anything else `Internal`.
pub(crate) fn sql_error(operation: &'static str) -> impl Fn(rusqlite::Error) -> CoreError {
    move |error| {
        tracing::error!(operation, %error, "store statement failed");
        match error.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                CoreError::Unavailable(format!("store is busy ({operation})"))
            }
            Some(
                ErrorCode::DiskFull
                | ErrorCode::SystemIoFailure
                | ErrorCode::CannotOpen
                | ErrorCode::ReadOnly
                | ErrorCode::OutOfMemory,
            ) => CoreError::Unavailable(format!("store cannot be written ({operation}): {error}")),
            _ => CoreError::Internal(format!("store operation {operation} failed: {error}")),
        }
    }
}

/// `(?1, ?2), (?3, ?4), ...` for `rows` rows of `width` parameters.
fn placeholders(rows: usize, width: usize) -> String {
    let mut text = String::with_capacity(rows * width * 5);
    for row in 0..rows {
        if row > 0 {
            text.push_str(", ");
        }
        text.push('(');
        for column in 0..width {
            if column > 0 {
                text.push_str(", ");
            }
            text.push('?');
            text.push_str(&(row * width + column + 1).to_string());
        }
        text.push(')');
    }
    text
}

// ---- reading rows (encodings and bindings are in `crate::rows`) ----

impl FlagRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            owner: row.get(1)?,
            status: row.get(2)?,
            review_date: row.get(3)?,
            revision: row.get(4)?,
            created_at: row.get(5)?,
            updated_at: row.get(6)?,
            sealed: row.get(7)?,
        })
    }
}

impl ConsentRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            flag_id: row.get(1)?,
            owner: row.get(2)?,
            valid_from: row.get(3)?,
            valid_until: row.get(4)?,
            recorded_at: row.get(5)?,
            revoked_at: row.get(6)?,
            sealed: row.get(7)?,
        })
    }
}

/// Groups rows of `FLAG_COLUMNS, kind, token [, matched]`, ordered by flag id
/// then token position, into one entry per flag.
fn collect_flags(
    mut rows: rusqlite::Rows<'_>,
    with_matched: bool,
    operation: &'static str,
) -> CoreResult<Vec<LoadedFlag>> {
    let sql = sql_error(operation);
    let mut loaded = LoadedFlags::default();
    while let Some(row) = rows.next().map_err(&sql)? {
        let id: String = row.get(0).map_err(&sql)?;
        let kind: Option<String> = row.get(8).map_err(&sql)?;
        let token: Option<Vec<u8>> = row.get(9).map_err(&sql)?;
        let joined = match (&kind, &token) {
            (Some(kind), Some(token)) => Some(JoinedToken {
                kind,
                token,
                matched: with_matched && row.get::<_, bool>(10).map_err(&sql)?,
            }),
            _ => None,
        };
        loaded.push(&id, || FlagRow::read(row).map_err(&sql), joined)?;
    }
    Ok(loaded.into_vec())
}

/// The owner of flag `id`, if there is such a flag.
fn flag_owner(transaction: &Transaction<'_>, id: &str, operation: &'static str) -> CoreResult<Option<String>> {
    transaction
        .prepare_cached("SELECT owner FROM flags WHERE id = ?1")
        .and_then(|mut statement| statement.query_row([id], |row| row.get(0)).optional())
        .map_err(sql_error(operation))
}

/// `NotFound` unless flag `id` exists and belongs to `owner`; another
/// agency's flag is indistinguishable from none.
fn require_own_flag(transaction: &Transaction<'_>, owner: &str, id: &str, operation: &'static str) -> CoreResult<()> {
    match flag_owner(transaction, id, operation)? {
        Some(stored_owner) if stored_owner == owner => Ok(()),
        _ => Err(CoreError::NotFound("flag".into())),
    }
}

impl AlertRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            cursor: row.get(0)?,
            encounter_id: row.get(1)?,
            flag_id: row.get(2)?,
            owner: row.get(3)?,
            received_at: row.get(4)?,
            sealed: row.get(5)?,
        })
    }
}

fn read_alert(
    transaction: &Transaction<'_>,
    sealer: &Sealer,
    condition: &str,
    value: &str,
    operation: &'static str,
) -> CoreResult<Option<Alert>> {
    let sql = sql_error(operation);
    let row = transaction
        .prepare_cached(&format!(
            "SELECT cursor, encounter_id, flag_id, owner, received_at, sealed FROM alerts WHERE {condition}"
        ))
        .map_err(&sql)?
        .query_row(params![value], AlertRow::read)
        .optional()
        .map_err(&sql)?;
    row.map(|row| row.open(sealer)).transpose()
}

/// Writes one sealed flag revision: the row, its tokens and its history entry.
fn write_flag(transaction: &Transaction<'_>, write: &FlagWrite, operation: &'static str) -> CoreResult<()> {
    let sql = sql_error(operation);
    let row = &write.row;
    if row.revision == 1 {
        transaction
            .prepare_cached(
                "INSERT INTO flags (id, owner, status, review_date, revision, created_at, updated_at, sealed) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    row.id,
                    row.owner,
                    row.status,
                    row.review_date,
                    row.revision,
                    row.created_at,
                    row.updated_at,
                    row.sealed
                ])
            })
            .map_err(&sql)?;
    } else {
        let updated = transaction
            .prepare_cached(
                "UPDATE flags SET status = ?2, review_date = ?3, revision = ?4, updated_at = ?5, sealed = ?6 \
                 WHERE id = ?1 AND revision = ?4 - 1",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    row.id,
                    row.status,
                    row.review_date,
                    row.revision,
                    row.updated_at,
                    row.sealed
                ])
            })
            .map_err(&sql)?;
        if updated != 1 {
            return Err(CoreError::Internal(format!(
                "flag {} changed under a write lock",
                row.id
            )));
        }
        transaction
            .prepare_cached("DELETE FROM flag_tokens WHERE flag_id = ?1")
            .and_then(|mut statement| statement.execute([&row.id]))
            .map_err(&sql)?;
    }
    {
        let mut insert_token = transaction
            .prepare_cached("INSERT INTO flag_tokens (flag_id, position, kind, token) VALUES (?1, ?2, ?3, ?4)")
            .map_err(&sql)?;
        for (position, token) in write.tokens.iter().enumerate() {
            insert_token
                .execute(params![
                    row.id,
                    position as i64,
                    token.kind.as_str(),
                    token.token.as_bytes().as_slice()
                ])
                .map_err(&sql)?;
        }
    }
    transaction
        .prepare_cached(
            "INSERT INTO flag_history (flag_id, revision, changed_at, status, sealed) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                row.id,
                row.revision,
                row.updated_at,
                row.status,
                write.history_sealed
            ])
        })
        .map_err(&sql)?;
    Ok(())
}

/// The columns every policy version query selects, in `PolicyVersionRow` order.
const POLICY_VERSION_COLUMNS: &str = "agency, version, created_at, content_hash, sealed";
/// The columns every proposal query selects, in `ProposalRow` order.
const PROPOSAL_COLUMNS: &str = "id, agency, base_version, proposed_at, closed_at, sealed";

impl PolicyVersionRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            agency: row.get(0)?,
            version: row.get(1)?,
            created_at: row.get(2)?,
            content_hash: row.get(3)?,
            sealed: row.get(4)?,
        })
    }
}

impl ProposalRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            agency: row.get(1)?,
            base_version: row.get(2)?,
            proposed_at: row.get(3)?,
            closed_at: row.get(4)?,
            sealed: row.get(5)?,
        })
    }
}

/// The highest version number of `agency`, or `None` before the seed.
fn latest_version_number(
    transaction: &Transaction<'_>,
    agency: &str,
    operation: &'static str,
) -> CoreResult<Option<i64>> {
    transaction
        .prepare_cached("SELECT max(version) FROM policy_versions WHERE agency = ?1")
        .and_then(|mut statement| statement.query_row(params![agency], |row| row.get::<_, Option<i64>>(0)))
        .map_err(sql_error(operation))
}

/// Inserts `row` as the version after `base`, if `base` is still the latest.
fn insert_policy_version(
    transaction: &Transaction<'_>,
    row: &PolicyVersionRow,
    base: i64,
    operation: &'static str,
) -> CoreResult<()> {
    let latest = latest_version_number(transaction, &row.agency, operation)?;
    if latest.unwrap_or(0) != base {
        return Err(stale_policy_base(u64::try_from(base).unwrap_or_default(), latest));
    }
    transaction
        .prepare_cached(
            "INSERT INTO policy_versions (agency, version, created_at, content_hash, sealed) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut statement| {
            statement.execute(params![row.agency, row.version, row.created_at, row.content_hash, row.sealed])
        })
        .map_err(sql_error(operation))?;
    Ok(())
}

fn read_policy_proposal(
    transaction: &Transaction<'_>,
    agency: &str,
    id: &str,
    operation: &'static str,
) -> CoreResult<Option<ProposalRow>> {
    transaction
        .prepare_cached(&format!(
            "SELECT {PROPOSAL_COLUMNS} FROM policy_proposals WHERE id = ?1 AND agency = ?2"
        ))
        .and_then(|mut statement| statement.query_row(params![id, agency], ProposalRow::read).optional())
        .map_err(sql_error(operation))
}

fn update_policy_proposal(transaction: &Transaction<'_>, row: &ProposalRow, operation: &'static str) -> CoreResult<()> {
    transaction
        .prepare_cached("UPDATE policy_proposals SET closed_at = ?2, sealed = ?3 WHERE id = ?1")
        .and_then(|mut statement| statement.execute(params![row.id, row.closed_at, row.sealed]))
        .map_err(sql_error(operation))?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn put_flag(&self, flag: NewFlag, at: OffsetDateTime) -> CoreResult<Flag> {
        const OPERATION: &str = "put_flag";
        let input = FlagInput::new(flag, at)?;
        let sealer = Arc::clone(&self.sealer);
        let stored = self
            .pool
            .write(OPERATION, move |transaction| {
                let sql = sql_error(OPERATION);
                let write = match input.replaces() {
                    None => input.create(&sealer)?,
                    Some(id) => {
                        let existing: Option<(String, i64, i64)> = transaction
                            .prepare_cached("SELECT owner, revision, created_at FROM flags WHERE id = ?1")
                            .and_then(|mut statement| {
                                statement
                                    .query_row([id.to_string()], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                                    .optional()
                            })
                            .map_err(&sql)?;
                        input.replace(&sealer, id, existing)?
                    }
                };
                write_flag(transaction, &write, OPERATION)?;
                Ok(write.flag)
            })
            .await?;
        tracing::debug!(flag_id = %stored.id, owner = %stored.owner, revision = stored.revision, "flag stored");
        Ok(stored)
    }

    async fn get_flag(&self, owner: &AgencyId, id: Uuid) -> CoreResult<Option<Flag>> {
        const OPERATION: &str = "get_flag";
        let owner = owner.as_str().to_owned();
        let sealer = Arc::clone(&self.sealer);
        self.pool
            .read(OPERATION, move |transaction| {
                let sql = sql_error(OPERATION);
                let mut statement = transaction
                    .prepare_cached(&format!(
                        "SELECT {FLAG_COLUMNS}, t.kind, t.token FROM flags f \
                         LEFT JOIN flag_tokens t ON t.flag_id = f.id \
                         WHERE f.id = ?1 AND f.owner = ?2 ORDER BY t.position"
                    ))
                    .map_err(&sql)?;
                let rows = statement.query(params![id.to_string(), owner]).map_err(&sql)?;
                let loaded = collect_flags(rows, false, OPERATION)?;
                loaded
                    .into_iter()
                    .next()
                    .map(|loaded| loaded.row.open(&sealer, loaded.tokens))
                    .transpose()
            })
            .await
    }

    async fn list_flags(&self, owner: &AgencyId, after: Option<Uuid>, limit: usize) -> CoreResult<Vec<Flag>> {
        const OPERATION: &str = "list_flags";
        let owner = owner.as_str().to_owned();
        // '' sorts before every uuid text
        let after = after.map(|id| id.to_string()).unwrap_or_default();
        let limit = list_limit(limit);
        let sealer = Arc::clone(&self.sealer);
        self.pool
            .read(OPERATION, move |transaction| {
                let sql = sql_error(OPERATION);
                let mut statement = transaction
                    .prepare_cached(&format!(
                        "SELECT {FLAG_COLUMNS}, t.kind, t.token FROM \
                         (SELECT * FROM flags WHERE owner = ?1 AND id > ?2 ORDER BY id LIMIT ?3) f \
                         LEFT JOIN flag_tokens t ON t.flag_id = f.id ORDER BY f.id, t.position"
                    ))
                    .map_err(&sql)?;
                let rows = statement.query(params![owner, after, limit]).map_err(&sql)?;
                collect_flags(rows, false, OPERATION)?
                    .into_iter()
                    .map(|loaded| loaded.row.open(&sealer, loaded.tokens))
                    .collect()
            })
            .await
    }

    async fn flag_history(&self, owner: &AgencyId, id: Uuid) -> CoreResult<Vec<FlagChange>> {
        const OPERATION: &str = "flag_history";
        let owner = owner.as_str().to_owned();
        let sealer = Arc::clone(&self.sealer);
        self.pool
            .read(OPERATION, move |transaction| {
                let sql = sql_error(OPERATION);
                let flag_id = id.to_string();
                require_own_flag(transaction, &owner, &flag_id, OPERATION)?;
                let mut statement = transaction
                    .prepare_cached(
                        "SELECT revision, changed_at, status, sealed FROM flag_history \
                         WHERE flag_id = ?1 ORDER BY revision",
                    )
                    .map_err(&sql)?;
                let rows = statement
                    .query_map([&flag_id], |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, i64>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, Vec<u8>>(3)?,
                        ))
                    })
                    .map_err(&sql)?;
                let mut changes = Vec::new();
                for row in rows {
                    let (revision, changed_at, status, sealed) = row.map_err(&sql)?;
                    let binding = history_binding(&flag_id, &owner, revision, changed_at, &status);
                    let body: HistoryBody = sealer.open(&binding, &sealed)?;
                    let row_id = binding.row_id();
                    changes.push(FlagChange {
                        flag_id: id,
                        revision: revision_from_sql(FLAG_HISTORY, row_id, revision)?,
                        changed_at: instant_from_sql(FLAG_HISTORY, row_id, changed_at)?,
                        changed_by: body.changed_by,
                        reason: body.reason,
                        status: status_from_sql(FLAG_HISTORY, row_id, &status)?,
                    });
                }
                Ok(changes)
            })
            .await
    }

    async fn find_flags(&self, tokens: &[SubjectToken]) -> CoreResult<Vec<FlagMatch>> {
        const OPERATION: &str = "find_flags";
        let asked = lookup_tokens(tokens)?;
        if asked.is_empty() {
            return Ok(Vec::new());
        }
        let query = format!(
            "WITH asked (kind, token) AS (VALUES {values}), \
             matched_flags AS (SELECT DISTINCT t.flag_id FROM asked a \
                JOIN flag_tokens t ON t.token = a.token AND t.kind = a.kind) \
             SELECT {FLAG_COLUMNS}, t.kind, t.token, \
                EXISTS (SELECT 1 FROM asked a WHERE a.token = t.token AND a.kind = t.kind) \
             FROM matched_flags m JOIN flags f ON f.id = m.flag_id \
             JOIN flag_tokens t ON t.flag_id = f.id \
             ORDER BY f.id, t.position",
            values = placeholders(asked.len(), 2)
        );
        let sealer = Arc::clone(&self.sealer);
        self.pool
            .read(OPERATION, move |transaction| {
                let sql = sql_error(OPERATION);
                let mut statement = transaction.prepare_cached(&query).map_err(&sql)?;
                let parameters = asked.iter().flat_map(|token| {
                    [
                        Value::Text(token.kind.as_str().to_owned()),
                        Value::Blob(token.token.as_bytes().to_vec()),
                    ]
                });
                let rows = statement.query(params_from_iter(parameters)).map_err(&sql)?;
                collect_flags(rows, true, OPERATION)?
                    .into_iter()
                    .map(|loaded| {
                        let matched = loaded.matched;
                        let flag = loaded.row.open(&sealer, loaded.tokens)?;
                        Ok(FlagMatch { flag, matched })
                    })
                    .collect()
            })
            .await
    }

    async fn record_consent(&self, consent: NewConsent, at: OffsetDateTime) -> CoreResult<Consent> {
        const OPERATION: &str = "record_consent";
        let (row, body) = ConsentRow::new_recorded(consent, at)?;
        let sealer = Arc::clone(&self.sealer);
        let recorded = self
            .pool
            .write(OPERATION, move |transaction| {
                let sql = sql_error(OPERATION);
                require_own_flag(transaction, &row.owner, &row.flag_id, OPERATION)?;
                let sealed = sealer.seal(&row.binding(), &body)?;
                transaction
                    .prepare_cached(&format!(
                        "INSERT INTO consents ({CONSENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                    ))
                    .and_then(|mut statement| {
                        statement.execute(params![
                            row.id,
                            row.flag_id,
                            row.owner,
                            row.valid_from,
                            row.valid_until,
                            row.recorded_at,
                            row.revoked_at,
                            sealed
                        ])
                    })
                    .map_err(&sql)?;
                row.into_consent(body)
            })
            .await?;
        tracing::debug!(consent_id = %recorded.id, flag_id = %recorded.flag_id, owner = %recorded.owner, "consent recorded");
        Ok(recorded)
    }

    async fn revoke_consent(
        &self,
        owner: &AgencyId,
        id: Uuid,
        by: &str,
        reason: &str,
        at: OffsetDateTime,
    ) -> CoreResult<Consent> {
        const OPERATION: &str = "revoke_consent";
        let revocation = new_revocation(by, reason, at)?;
        let owner = owner.as_str().to_owned();
        let sealer = Arc::clone(&self.sealer);
        let revoked = self
            .pool
            .write(OPERATION, move |transaction| {
                let sql = sql_error(OPERATION);
                let row = transaction
                    .prepare_cached(&format!(
                        "SELECT {CONSENT_COLUMNS} FROM consents WHERE id = ?1 AND owner = ?2"
                    ))
                    .and_then(|mut statement| {
                        statement
                            .query_row(params![id.to_string(), owner], ConsentRow::read)
                            .optional()
                    })
                    .map_err(&sql)?;
                let Some(mut row) = row else {
                    return Err(CoreError::NotFound("consent".into()));
                };
                let body = row.revoke(&sealer, revocation)?;
                let updated = transaction
                    .prepare_cached(
                        "UPDATE consents SET revoked_at = ?2, sealed = ?3 WHERE id = ?1 AND revoked_at IS NULL",
                    )
                    .and_then(|mut statement| statement.execute(params![row.id, row.revoked_at, row.sealed]))
                    .map_err(&sql)?;
                if updated != 1 {
                    return Err(CoreError::Internal(format!(
                        "consent {} changed under a write lock",
                        row.id
                    )));
                }
                row.into_consent(body)
            })
            .await?;
        tracing::info!(consent_id = %revoked.id, flag_id = %revoked.flag_id, owner = %revoked.owner, "consent revoked");
        Ok(revoked)
    }

    async fn list_consents(&self, owner: &AgencyId, flag_id: Uuid) -> CoreResult<Vec<Consent>> {
        const OPERATION: &str = "list_consents";
        let owner = owner.as_str().to_owned();
        let sealer = Arc::clone(&self.sealer);
        self.pool
            .read(OPERATION, move |transaction| {
                let sql = sql_error(OPERATION);
                let flag_id = flag_id.to_string();
                require_own_flag(transaction, &owner, &flag_id, OPERATION)?;
                let mut statement = transaction
                    .prepare_cached(&format!(
                        "SELECT {CONSENT_COLUMNS} FROM consents WHERE flag_id = ?1 AND owner = ?2 \
                         ORDER BY recorded_at, rowid"
                    ))
                    .map_err(&sql)?;
                let rows = statement
                    .query_map(params![flag_id, owner], ConsentRow::read)
                    .map_err(&sql)?;
                let mut consents = Vec::new();
                for row in rows {
                    consents.push(row.map_err(&sql)?.open(&sealer)?);
                }
                Ok(consents)
            })
            .await
    }

    async fn consents_for_flags(&self, flag_ids: &[Uuid]) -> CoreResult<HashMap<Uuid, Vec<Consent>>> {
        const OPERATION: &str = "consents_for_flags";
        let asked = consent_query_flags(flag_ids)?;
        let mut by_flag: HashMap<Uuid, Vec<Consent>> = asked.iter().map(|id| (*id, Vec::new())).collect();
        if asked.is_empty() {
            return Ok(by_flag);
        }
        let list = (1..=asked.len())
            .map(|index| format!("?{index}"))
            .collect::<Vec<_>>()
            .join(", ");
        let query = format!(
            "SELECT {CONSENT_COLUMNS} FROM consents WHERE flag_id IN ({list}) ORDER BY flag_id, recorded_at, rowid"
        );
        let sealer = Arc::clone(&self.sealer);
        let consents = self
            .pool
            .read(OPERATION, move |transaction| {
                let sql = sql_error(OPERATION);
                let mut statement = transaction.prepare_cached(&query).map_err(&sql)?;
                let rows = statement
                    .query_map(params_from_iter(asked.iter().map(Uuid::to_string)), ConsentRow::read)
                    .map_err(&sql)?;
                let mut consents = Vec::new();
                for row in rows {
                    consents.push(row.map_err(&sql)?.open(&sealer)?);
                }
                Ok(consents)
            })
            .await?;
        for consent in consents {
            by_flag.entry(consent.flag_id).or_default().push(consent);
        }
        Ok(by_flag)
    }

    async fn store_alert(&self, encounter: Encounter, at: OffsetDateTime) -> CoreResult<(Alert, bool)> {
        const OPERATION: &str = "store_alert";
        let input = AlertInput::new(encounter, at)?;
        let sealer = Arc::clone(&self.sealer);
        self.pool
            .write(OPERATION, move |transaction| {
                let sql = sql_error(OPERATION);
                if let Some(existing) =
                    read_alert(transaction, &sealer, "encounter_id = ?1", &input.encounter_id, OPERATION)?
                {
                    return Ok((existing, false));
                }
                require_own_flag(transaction, input.owner(), &input.flag_id, OPERATION)?;
                let sealed = input.seal(&sealer)?;
                transaction
                    .prepare_cached(
                        "INSERT INTO alerts (encounter_id, flag_id, owner, received_at, sealed) VALUES (?1, ?2, ?3, ?4, ?5)",
                    )
                    .and_then(|mut statement| {
                        statement.execute(params![
                            input.encounter_id,
                            input.flag_id,
                            input.owner(),
                            input.received_at,
                            sealed
                        ])
                    })
                    .map_err(&sql)?;
                let cursor = transaction.last_insert_rowid();
                Ok((input.into_alert(cursor)?, true))
            })
            .await
    }

    async fn alerts_after(&self, owner: &AgencyId, after: u64, limit: usize) -> CoreResult<Vec<Alert>> {
        const OPERATION: &str = "alerts_after";
        let owner = owner.as_str().to_owned();
        let limit = list_limit(limit);
        let after = cursor_to_sql(after);
        let sealer = Arc::clone(&self.sealer);
        self.pool
            .read(OPERATION, move |transaction| {
                let sql = sql_error(OPERATION);
                let mut statement = transaction
                    .prepare_cached(
                        "SELECT cursor, encounter_id, flag_id, owner, received_at, sealed FROM alerts \
                         WHERE owner = ?1 AND cursor > ?2 ORDER BY cursor LIMIT ?3",
                    )
                    .map_err(&sql)?;
                let rows = statement
                    .query_map(params![owner, after, limit], AlertRow::read)
                    .map_err(&sql)?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(&sql)?;
                rows.into_iter().map(|row| row.open(&sealer)).collect()
            })
            .await
    }

    async fn enqueue_delivery(&self, encounter: Encounter, at: OffsetDateTime) -> CoreResult<bool> {
        const OPERATION: &str = "enqueue_delivery";
        encounter.validate()?;
        let queued_at = instant_to_sql("outbox.queued_at", at)?;
        let sealer = Arc::clone(&self.sealer);
        self.pool
            .write(OPERATION, move |transaction| {
                let sql = sql_error(OPERATION);
                let encounter_id = encounter.id.to_string();
                let binding = outbox_binding(&encounter_id, encounter.owner.as_str(), queued_at);
                let sealed = sealer.seal(&binding, &encounter)?;
                let inserted = transaction
                    .prepare_cached(
                        "INSERT INTO outbox (encounter_id, owner, queued_at, delivered_at, sealed) \
                         VALUES (?1, ?2, ?3, NULL, ?4) ON CONFLICT (encounter_id) DO NOTHING",
                    )
                    .and_then(|mut statement| {
                        statement.execute(params![encounter_id, encounter.owner.as_str(), queued_at, sealed])
                    })
                    .map_err(&sql)?;
                Ok(inserted == 1)
            })
            .await
    }

    async fn pending_deliveries(&self, limit: usize) -> CoreResult<Vec<Encounter>> {
        const OPERATION: &str = "pending_deliveries";
        let limit = list_limit(limit);
        let sealer = Arc::clone(&self.sealer);
        self.pool
            .read(OPERATION, move |transaction| {
                let sql = sql_error(OPERATION);
                let mut statement = transaction
                    .prepare_cached(
                        "SELECT encounter_id, owner, queued_at, sealed FROM outbox \
                         WHERE delivered_at IS NULL ORDER BY queued_at, encounter_id LIMIT ?1",
                    )
                    .map_err(&sql)?;
                let rows = statement
                    .query_map(params![limit], |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, i64>(2)?,
                            row.get::<_, Vec<u8>>(3)?,
                        ))
                    })
                    .map_err(&sql)?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(&sql)?;
                rows.into_iter()
                    .map(|(encounter_id, owner, queued_at, sealed)| {
                        sealer.open::<Encounter>(&outbox_binding(&encounter_id, &owner, queued_at), &sealed)
                    })
                    .collect()
            })
            .await
    }

    async fn mark_delivered(&self, encounter_id: Uuid, at: OffsetDateTime) -> CoreResult<()> {
        const OPERATION: &str = "mark_delivered";
        let delivered_at = instant_to_sql("outbox.delivered_at", at)?;
        self.pool
            .write(OPERATION, move |transaction| {
                let changed = transaction
                    .prepare_cached(
                        "UPDATE outbox SET delivered_at = ?2 WHERE encounter_id = ?1 AND delivered_at IS NULL",
                    )
                    .and_then(|mut statement| statement.execute(params![encounter_id.to_string(), delivered_at]))
                    .map_err(sql_error(OPERATION))?;
                if changed == 0 {
                    return Err(CoreError::NotFound("queued encounter".into()));
                }
                Ok(())
            })
            .await
    }

    async fn add_review_item(&self, item: ReviewItem) -> CoreResult<()> {
        const OPERATION: &str = "add_review_item";
        let created_at = new_review_item(&item)?;
        let sealer = Arc::clone(&self.sealer);
        self.pool
            .write(OPERATION, move |transaction| {
                let id = item.id.to_string();
                let binding = review_binding(&id, item.owner.as_str(), created_at, None);
                let sealed = sealer.seal(&binding, &item)?;
                transaction
                    .prepare_cached(
                        "INSERT INTO review_items (id, owner, created_at, resolved_at, sealed) VALUES (?1, ?2, ?3, NULL, ?4)",
                    )
                    .and_then(|mut statement| statement.execute(params![id, item.owner.as_str(), created_at, sealed]))
                    .map_err(sql_error(OPERATION))?;
                Ok(())
            })
            .await
    }

    async fn review_items(
        &self,
        owner: &AgencyId,
        include_resolved: bool,
        limit: usize,
    ) -> CoreResult<Vec<ReviewItem>> {
        const OPERATION: &str = "review_items";
        let owner = owner.as_str().to_owned();
        let limit = list_limit(limit);
        let sealer = Arc::clone(&self.sealer);
        self.pool
            .read(OPERATION, move |transaction| {
                let sql = sql_error(OPERATION);
                let mut statement = transaction
                    .prepare_cached(
                        "SELECT id, owner, created_at, resolved_at, sealed FROM review_items \
                         WHERE owner = ?1 AND (?2 OR resolved_at IS NULL) ORDER BY created_at, id LIMIT ?3",
                    )
                    .map_err(&sql)?;
                let rows = statement
                    .query_map(params![owner, include_resolved, limit], |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, i64>(2)?,
                            row.get::<_, Option<i64>>(3)?,
                            row.get::<_, Vec<u8>>(4)?,
                        ))
                    })
                    .map_err(&sql)?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(&sql)?;
                rows.into_iter()
                    .map(|(id, owner, created_at, resolved_at, sealed)| {
                        sealer.open::<ReviewItem>(&review_binding(&id, &owner, created_at, resolved_at), &sealed)
                    })
                    .collect()
            })
            .await
    }

    async fn resolve_review_item(
        &self,
        owner: &AgencyId,
        id: Uuid,
        resolution: ReviewResolution,
    ) -> CoreResult<ReviewItem> {
        const OPERATION: &str = "resolve_review_item";
        check_resolution(&resolution)?;
        let owner = owner.as_str().to_owned();
        let sealer = Arc::clone(&self.sealer);
        self.pool
            .write(OPERATION, move |transaction| {
                let sql = sql_error(OPERATION);
                let id_text = id.to_string();
                let row = transaction
                    .prepare_cached(
                        "SELECT created_at, resolved_at, sealed FROM review_items WHERE id = ?1 AND owner = ?2",
                    )
                    .map_err(&sql)?
                    .query_row(params![id_text, owner], |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, Option<i64>>(1)?,
                            row.get::<_, Vec<u8>>(2)?,
                        ))
                    })
                    .optional()
                    .map_err(&sql)?;
                let Some((created_at, resolved_at, sealed)) = row else {
                    return Err(CoreError::NotFound("review item".into()));
                };
                let mut row = ReviewRow {
                    id: id_text,
                    owner,
                    created_at,
                    resolved_at,
                    sealed,
                };
                let item = row.resolve(&sealer, resolution)?;
                transaction
                    .prepare_cached("UPDATE review_items SET resolved_at = ?2, sealed = ?3 WHERE id = ?1")
                    .and_then(|mut statement| statement.execute(params![row.id, row.resolved_at, row.sealed]))
                    .map_err(&sql)?;
                Ok(item)
            })
            .await
    }

    async fn latest_policy_version(&self, agency: &AgencyId) -> CoreResult<Option<PolicyVersion>> {
        const OPERATION: &str = "latest_policy_version";
        let agency = agency.as_str().to_owned();
        let sealer = Arc::clone(&self.sealer);
        self.pool
            .read(OPERATION, move |transaction| {
                let row = transaction
                    .prepare_cached(&format!(
                        "SELECT {POLICY_VERSION_COLUMNS} FROM policy_versions WHERE agency = ?1 \
                         ORDER BY version DESC LIMIT 1"
                    ))
                    .and_then(|mut statement| statement.query_row(params![agency], PolicyVersionRow::read).optional())
                    .map_err(sql_error(OPERATION))?;
                row.map(|row| row.open(&sealer)).transpose()
            })
            .await
    }

    async fn policy_version(&self, agency: &AgencyId, version: u64) -> CoreResult<Option<PolicyVersion>> {
        const OPERATION: &str = "policy_version";
        let Ok(number) = i64::try_from(version) else {
            return Ok(None);
        };
        let agency = agency.as_str().to_owned();
        let sealer = Arc::clone(&self.sealer);
        self.pool
            .read(OPERATION, move |transaction| {
                let row = transaction
                    .prepare_cached(&format!(
                        "SELECT {POLICY_VERSION_COLUMNS} FROM policy_versions WHERE agency = ?1 AND version = ?2"
                    ))
                    .and_then(|mut statement| {
                        statement
                            .query_row(params![agency, number], PolicyVersionRow::read)
                            .optional()
                    })
                    .map_err(sql_error(OPERATION))?;
                row.map(|row| row.open(&sealer)).transpose()
            })
            .await
    }

    async fn policy_history(
        &self,
        agency: &AgencyId,
        before: Option<u64>,
        limit: usize,
    ) -> CoreResult<Vec<PolicyVersion>> {
        const OPERATION: &str = "policy_history";
        let agency = agency.as_str().to_owned();
        let before = before.map_or(i64::MAX, |before| i64::try_from(before).unwrap_or(i64::MAX));
        let limit = list_limit(limit);
        let sealer = Arc::clone(&self.sealer);
        self.pool
            .read(OPERATION, move |transaction| {
                let sql = sql_error(OPERATION);
                let mut statement = transaction
                    .prepare_cached(&format!(
                        "SELECT {POLICY_VERSION_COLUMNS} FROM policy_versions WHERE agency = ?1 AND version < ?2 \
                         ORDER BY version DESC LIMIT ?3"
                    ))
                    .map_err(&sql)?;
                let rows = statement
                    .query_map(params![agency, before, limit], PolicyVersionRow::read)
                    .map_err(&sql)?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(&sql)?;
                rows.iter().map(|row| row.open(&sealer)).collect()
            })
            .await
    }

    async fn append_policy_version(&self, version: NewPolicyVersion) -> CoreResult<PolicyVersion> {
        const OPERATION: &str = "append_policy_version";
        let (row, stored, base) = PolicyVersionRow::create(version, &self.sealer)?;
        self.pool
            .write(OPERATION, move |transaction| {
                insert_policy_version(transaction, &row, base, OPERATION)?;
                Ok(stored)
            })
            .await
    }

    async fn add_policy_proposal(&self, proposal: PolicyProposal) -> CoreResult<()> {
        const OPERATION: &str = "add_policy_proposal";
        let row = ProposalRow::create(&proposal, &self.sealer)?;
        self.pool
            .write(OPERATION, move |transaction| {
                transaction
                    .prepare_cached(&format!(
                        "INSERT INTO policy_proposals ({PROPOSAL_COLUMNS}) VALUES (?1, ?2, ?3, ?4, NULL, ?5)"
                    ))
                    .and_then(|mut statement| {
                        statement.execute(params![
                            row.id,
                            row.agency,
                            row.base_version,
                            row.proposed_at,
                            row.sealed
                        ])
                    })
                    .map_err(sql_error(OPERATION))?;
                Ok(())
            })
            .await
    }

    async fn policy_proposal(&self, agency: &AgencyId, id: Uuid) -> CoreResult<Option<PolicyProposal>> {
        const OPERATION: &str = "policy_proposal";
        let agency = agency.as_str().to_owned();
        let sealer = Arc::clone(&self.sealer);
        self.pool
            .read(OPERATION, move |transaction| {
                read_policy_proposal(transaction, &agency, &id.to_string(), OPERATION)?
                    .map(|row| row.open(&sealer))
                    .transpose()
            })
            .await
    }

    async fn policy_proposals(
        &self,
        agency: &AgencyId,
        include_closed: bool,
        limit: usize,
    ) -> CoreResult<Vec<PolicyProposal>> {
        const OPERATION: &str = "policy_proposals";
        let agency = agency.as_str().to_owned();
        let limit = list_limit(limit);
        let sealer = Arc::clone(&self.sealer);
        self.pool
            .read(OPERATION, move |transaction| {
                let sql = sql_error(OPERATION);
                let mut statement = transaction
                    .prepare_cached(&format!(
                        "SELECT {PROPOSAL_COLUMNS} FROM policy_proposals \
                         WHERE agency = ?1 AND (?2 OR closed_at IS NULL) ORDER BY proposed_at, id LIMIT ?3"
                    ))
                    .map_err(&sql)?;
                let rows = statement
                    .query_map(params![agency, include_closed, limit], ProposalRow::read)
                    .map_err(&sql)?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(&sql)?;
                rows.iter().map(|row| row.open(&sealer)).collect()
            })
            .await
    }

    async fn approve_policy_proposal(
        &self,
        agency: &AgencyId,
        id: Uuid,
        approval: PolicyApproval,
    ) -> CoreResult<PolicyVersion> {
        const OPERATION: &str = "approve_policy_proposal";
        let agency = agency.as_str().to_owned();
        let sealer = Arc::clone(&self.sealer);
        self.pool
            .write(OPERATION, move |transaction| {
                let Some(mut row) = read_policy_proposal(transaction, &agency, &id.to_string(), OPERATION)? else {
                    return Err(CoreError::NotFound("policy proposal".into()));
                };
                let proposal = row.open(&sealer)?;
                if !proposal.is_open() {
                    return Err(CoreError::FailedPrecondition("the proposal is already closed".into()));
                }
                let (version_row, stored, base) =
                    PolicyVersionRow::create(proposal.as_new_version(Some(approval.clone())), &sealer)?;
                insert_policy_version(transaction, &version_row, base, OPERATION)?;
                row.close(
                    &sealer,
                    ProposalClosing {
                        by: approval.by,
                        at: approval.at,
                        outcome: ProposalOutcome::Approved {
                            version: stored.version,
                        },
                    },
                )?;
                update_policy_proposal(transaction, &row, OPERATION)?;
                Ok(stored)
            })
            .await
    }

    async fn reject_policy_proposal(
        &self,
        agency: &AgencyId,
        id: Uuid,
        closing: ProposalClosing,
    ) -> CoreResult<PolicyProposal> {
        const OPERATION: &str = "reject_policy_proposal";
        check_rejection(&closing)?;
        let agency = agency.as_str().to_owned();
        let sealer = Arc::clone(&self.sealer);
        self.pool
            .write(OPERATION, move |transaction| {
                let Some(mut row) = read_policy_proposal(transaction, &agency, &id.to_string(), OPERATION)? else {
                    return Err(CoreError::NotFound("policy proposal".into()));
                };
                let closed = row.close(&sealer, closing)?;
                update_policy_proposal(transaction, &row, OPERATION)?;
                Ok(closed)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_each_parameter() {
        assert_eq!(placeholders(2, 2), "(?1, ?2), (?3, ?4)");
        assert_eq!(placeholders(1, 1), "(?1)");
    }
}
