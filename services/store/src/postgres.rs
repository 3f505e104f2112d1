//! [`PostgresStore`]: the `Store` trait on PostgreSQL through tokio-postgres,
//! for agencies that run several replicas of one node on one database. All
//! of the store's tables live in one schema of its own (created if missing),
//! so the audit log can have another schema in the same database, and tests
//! can use a fresh schema each.
//!
//! Rows are encoded, sealed and validated by the same code as on SQLite
//! (`crate::rows`): the same columns in the clear, the same sealed bodies
//! under the same bindings, the same checks before any statement runs. What
//! differs is locking. SQLite has one writer at a time; here concurrent
//! writers are real, so every read-modify-write locks the row it reads
//! (`FOR NO KEY UPDATE` on a replaced flag, `FOR UPDATE` on a revoked consent
//! or a resolved review item), and alerts take a table lock so that cursors
//! become visible in the order they were given: a liaison who has seen
//! cursor 7 can never later find a 6 committed behind it. Each write is one
//! transaction; each read is one statement, so it sees one snapshot.
//!
//! This module must never write a subject's name, birth date, phone,
//! address, clinical detail or consent text outside a sealed body, never put
//! such values in a log or an error message, never log a connection
//! password, and never return a row it could not authenticate.

mod pool;

use crate::data_key::DataKey;
use crate::rows::{
    AlertInput, AlertRow, ConsentRow, FLAG_HISTORY, FlagInput, FlagRow, FlagWrite, HistoryBody, JoinedToken,
    LoadedFlags, POLICY_PROPOSALS, PolicyVersionRow, ProposalRow, REVIEW_ITEMS, ReviewRow, check_rejection,
    check_resolution, consent_query_flags, corrupt, cursor_to_sql, data_key_check_binding, data_key_check_opens,
    history_binding, instant_from_sql, instant_to_sql, list_limit, lookup_tokens, new_review_item, new_revocation,
    outbox_binding, revision_from_sql, stale_policy_base, status_from_sql,
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
use pool::{ConnectionPool, Session, pg_error};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio_postgres::Row;
use tokio_postgres::config::Host;
use tokio_postgres::types::FromSql;
use uuid::Uuid;

mod embedded {
    refinery::embed_migrations!("migrations/postgres");
}

/// The longest schema name PostgreSQL keeps (NAMEDATALEN - 1).
const MAX_SCHEMA_LEN: usize = 63;
/// How long opening one connection may take unless the URL says otherwise.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The flag columns every flag query selects, in this order, followed by the
/// token's `kind` and `token` (NULL when a flag has none). A macro so that
/// statements stay `&'static str` and are prepared once per connection.
macro_rules! flag_columns {
    () => {
        "f.id, f.owner, f.status, f.review_date, f.revision, f.created_at, f.updated_at, f.sealed"
    };
}
macro_rules! consent_columns {
    () => {
        "c.id, c.flag_id, c.owner, c.valid_from, c.valid_until, c.recorded_at, c.revoked_at, c.sealed"
    };
}
macro_rules! alert_columns {
    () => {
        "cursor, encounter_id, flag_id, owner, received_at, sealed"
    };
}

const SELECT_FLAG_FOR_REPLACE: &str = "SELECT owner, revision, created_at FROM flags WHERE id = $1 FOR NO KEY UPDATE";
const INSERT_FLAG: &str = "INSERT INTO flags (id, owner, status, review_date, revision, created_at, updated_at, sealed) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const UPDATE_FLAG: &str = "UPDATE flags SET status = $2, review_date = $3, revision = $4, updated_at = $5, sealed = $6 \
     WHERE id = $1 AND revision = $7";
const DELETE_FLAG_TOKENS: &str = "DELETE FROM flag_tokens WHERE flag_id = $1";
const INSERT_FLAG_TOKENS: &str = "INSERT INTO flag_tokens (flag_id, position, kind, token) \
     SELECT $1, u.position, u.kind, u.token FROM unnest($2::bigint[], $3::text[], $4::bytea[]) AS u (position, kind, token)";
const INSERT_FLAG_HISTORY: &str =
    "INSERT INTO flag_history (flag_id, revision, changed_at, status, sealed) VALUES ($1, $2, $3, $4, $5)";
const SELECT_FLAG: &str = concat!(
    "SELECT ",
    flag_columns!(),
    ", t.kind, t.token FROM flags f LEFT JOIN flag_tokens t ON t.flag_id = f.id \
     WHERE f.id = $1 AND f.owner = $2 ORDER BY t.position"
);
const LIST_FLAGS: &str = concat!(
    "SELECT ",
    flag_columns!(),
    ", t.kind, t.token FROM (SELECT * FROM flags WHERE owner = $1 AND id > $2 ORDER BY id LIMIT $3) f \
     LEFT JOIN flag_tokens t ON t.flag_id = f.id ORDER BY f.id, t.position"
);
const FIND_FLAGS: &str = concat!(
    "WITH asked (kind, token) AS (SELECT * FROM unnest($1::text[], $2::bytea[])), \
     matched_flags AS (SELECT DISTINCT t.flag_id FROM asked a \
        JOIN flag_tokens t ON t.token = a.token AND t.kind = a.kind) \
     SELECT ",
    flag_columns!(),
    ", t.kind, t.token, \
        EXISTS (SELECT 1 FROM asked a WHERE a.token = t.token AND a.kind = t.kind) \
     FROM matched_flags m JOIN flags f ON f.id = m.flag_id \
     JOIN flag_tokens t ON t.flag_id = f.id \
     ORDER BY f.id, t.position"
);
/// The history of an own flag; no row at all means no such flag (of this owner).
const SELECT_FLAG_HISTORY: &str = "SELECT h.revision, h.changed_at, h.status, h.sealed FROM flags f \
     LEFT JOIN flag_history h ON h.flag_id = f.id WHERE f.id = $1 AND f.owner = $2 ORDER BY h.revision";
const SELECT_FLAG_OWNER: &str = "SELECT owner FROM flags WHERE id = $1";
const INSERT_CONSENT: &str = "INSERT INTO consents \
     (id, flag_id, owner, valid_from, valid_until, recorded_at, revoked_at, sealed) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const SELECT_CONSENT_FOR_REVOKE: &str = concat!(
    "SELECT ",
    consent_columns!(),
    " FROM consents c WHERE c.id = $1 AND c.owner = $2 FOR UPDATE"
);
const REVOKE_CONSENT: &str = "UPDATE consents SET revoked_at = $2, sealed = $3 WHERE id = $1 AND revoked_at IS NULL";
/// The consents of an own flag; no row at all means no such flag (of this
/// owner), one row of NULLs a flag without consents.
const LIST_CONSENTS: &str = concat!(
    "SELECT ",
    consent_columns!(),
    " FROM flags f LEFT JOIN consents c ON c.flag_id = f.id AND c.owner = f.owner \
     WHERE f.id = $1 AND f.owner = $2 ORDER BY c.recorded_at, c.seq"
);
const CONSENTS_FOR_FLAGS: &str = concat!(
    "SELECT ",
    consent_columns!(),
    " FROM consents c WHERE c.flag_id = ANY($1::text[]) ORDER BY c.flag_id, c.recorded_at, c.seq"
);
/// Serialises alert writers until commit, so cursors commit in order; plain
/// reads are not blocked.
const LOCK_ALERTS: &str = "LOCK TABLE alerts IN SHARE ROW EXCLUSIVE MODE";
const SELECT_ALERT_BY_ENCOUNTER: &str = concat!("SELECT ", alert_columns!(), " FROM alerts WHERE encounter_id = $1");
const INSERT_ALERT: &str = "INSERT INTO alerts (encounter_id, flag_id, owner, received_at, sealed) \
     VALUES ($1, $2, $3, $4, $5) RETURNING cursor";
const ALERTS_AFTER: &str = concat!(
    "SELECT ",
    alert_columns!(),
    " FROM alerts WHERE owner = $1 AND cursor > $2 ORDER BY cursor LIMIT $3"
);
const ENQUEUE_DELIVERY: &str = "INSERT INTO outbox (encounter_id, owner, queued_at, delivered_at, sealed) \
     VALUES ($1, $2, $3, NULL, $4) ON CONFLICT (encounter_id) DO NOTHING";
const PENDING_DELIVERIES: &str = "SELECT encounter_id, owner, queued_at, sealed FROM outbox \
     WHERE delivered_at IS NULL ORDER BY queued_at, encounter_id LIMIT $1";
const MARK_DELIVERED: &str =
    "UPDATE outbox SET delivered_at = $2 WHERE encounter_id = $1 AND delivered_at IS NULL RETURNING encounter_id";
const INSERT_REVIEW_ITEM: &str =
    "INSERT INTO review_items (id, owner, created_at, resolved_at, sealed) VALUES ($1, $2, $3, NULL, $4)";
const SELECT_REVIEW_ITEMS: &str = "SELECT id, owner, created_at, resolved_at, sealed FROM review_items \
     WHERE owner = $1 AND ($2::boolean OR resolved_at IS NULL) ORDER BY created_at, id LIMIT $3";
const SELECT_REVIEW_ITEM_FOR_RESOLVE: &str =
    "SELECT id, owner, created_at, resolved_at, sealed FROM review_items WHERE id = $1 AND owner = $2 FOR UPDATE";
const RESOLVE_REVIEW_ITEM: &str = "UPDATE review_items SET resolved_at = $2, sealed = $3 WHERE id = $1";

macro_rules! policy_version_columns {
    () => {
        "agency, version, created_at, content_hash, sealed"
    };
}
macro_rules! proposal_columns {
    () => {
        "id, agency, base_version, proposed_at, closed_at, sealed"
    };
}
const LATEST_POLICY_VERSION: &str = concat!(
    "SELECT ",
    policy_version_columns!(),
    " FROM policy_versions WHERE agency = $1 ORDER BY version DESC LIMIT 1"
);
const SELECT_POLICY_VERSION: &str = concat!(
    "SELECT ",
    policy_version_columns!(),
    " FROM policy_versions WHERE agency = $1 AND version = $2"
);
const POLICY_HISTORY: &str = concat!(
    "SELECT ",
    policy_version_columns!(),
    " FROM policy_versions WHERE agency = $1 AND version < $2 ORDER BY version DESC LIMIT $3"
);
const LATEST_POLICY_VERSION_NUMBER: &str = "SELECT max(version) FROM policy_versions WHERE agency = $1";
/// A concurrent writer of the same number makes this insert nothing: the
/// primary key decides which of two replicas' edits on one base is stored.
const INSERT_POLICY_VERSION: &str = concat!(
    "INSERT INTO policy_versions (",
    policy_version_columns!(),
    ") VALUES ($1, $2, $3, $4, $5) ON CONFLICT (agency, version) DO NOTHING"
);
const INSERT_POLICY_PROPOSAL: &str = concat!(
    "INSERT INTO policy_proposals (",
    proposal_columns!(),
    ") VALUES ($1, $2, $3, $4, NULL, $5)"
);
const SELECT_POLICY_PROPOSAL: &str = concat!(
    "SELECT ",
    proposal_columns!(),
    " FROM policy_proposals WHERE id = $1 AND agency = $2"
);
const SELECT_POLICY_PROPOSAL_FOR_CLOSE: &str = concat!(
    "SELECT ",
    proposal_columns!(),
    " FROM policy_proposals WHERE id = $1 AND agency = $2 FOR UPDATE"
);
const SELECT_POLICY_PROPOSALS: &str = concat!(
    "SELECT ",
    proposal_columns!(),
    " FROM policy_proposals WHERE agency = $1 AND ($2::boolean OR closed_at IS NULL) ORDER BY proposed_at, id LIMIT $3"
);
const CLOSE_POLICY_PROPOSAL: &str = "UPDATE policy_proposals SET closed_at = $2, sealed = $3 WHERE id = $1";

/// A node's flags and consents in one schema of a PostgreSQL database.
pub struct PostgresStore {
    schema: String,
    /// host, port, database and user, never the password
    target: String,
    pool: ConnectionPool,
    sealer: Arc<Sealer>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.target)
            .field("schema", &self.schema)
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

/// Refuses anything but a plain lowercase identifier, so the schema name can
/// go into DDL and `search_path` without quoting.
fn check_schema_name(schema: &str) -> CoreResult<()> {
    let mut characters = schema.chars();
    let starts_well = characters
        .next()
        .is_some_and(|first| first.is_ascii_lowercase() || first == '_');
    let rest_is_plain = characters.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !starts_well || !rest_is_plain || schema.len() > MAX_SCHEMA_LEN {
        return Err(CoreError::invalid(
            "store.schema",
            format!("must be 1 to {MAX_SCHEMA_LEN} of a-z, 0-9 and _, not starting with a digit, got {schema:?}"),
        ));
    }
    if schema.starts_with("pg_") || schema == "information_schema" {
        return Err(CoreError::invalid(
            "store.schema",
            format!("{schema:?} is reserved by PostgreSQL"),
        ));
    }
    Ok(())
}

/// Where a config points, for logs and errors: never the password.
fn describe(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(name)) => name.clone(),
        #[cfg(unix)]
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{host}:{port}/{}",
        config.get_user().unwrap_or("?"),
        config.get_dbname().unwrap_or("?")
    )
}

impl PostgresStore {
    /// The pool size a node uses unless configured otherwise.
    pub const DEFAULT_POOL_SIZE: usize = DEFAULT_POOL_SIZE;

    /// Connects to the database at `url` (`postgres://user[:password]@host[:port]/database`
    /// with any tokio-postgres options), creates `schema` if it is missing,
    /// migrates it, checks that `data_key` is the key it was written under,
    /// and opens `pool_size` connections whose `search_path` is `schema`
    /// alone. Several processes may connect to one schema at once: the
    /// migration runs under an advisory lock.
    pub async fn connect(url: &str, schema: &str, data_key: DataKey, pool_size: usize) -> CoreResult<PostgresStore> {
        if !(1..=MAX_POOL_SIZE).contains(&pool_size) {
            return Err(CoreError::invalid(
                "store.pool_size",
                format!("must be between 1 and {MAX_POOL_SIZE}, got {pool_size}"),
            ));
        }
        check_schema_name(schema)?;
        // the tokio-postgres message names the bad part, not the URL (which may hold a password)
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|error| CoreError::invalid("store.url", format!("is not a PostgreSQL URL: {error}")))?;
        let options = match config.get_options() {
            Some(options) if !options.trim().is_empty() => format!("{options} -c search_path={schema}"),
            _ => format!("-c search_path={schema}"),
        };
        config.options(options);
        if config.get_application_name().is_none() {
            config.application_name(format!("flagnet-store/{schema}"));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let target = describe(&config);
        let sealer = Sealer::new(&data_key);
        let applied = prepare_schema(&config, schema, &target, &sealer).await?;
        let pool = ConnectionPool::open(config, pool_size).await?;
        tracing::info!(
            target = %target,
            schema,
            pool_size,
            migrations_applied = applied,
            "store opened"
        );
        Ok(PostgresStore {
            schema: schema.to_owned(),
            target,
            pool,
            sealer: Arc::new(sealer),
        })
    }

    /// The schema holding the store's tables.
    pub fn schema(&self) -> &str {
        &self.schema
    }
}

/// Creates and migrates the schema and checks the data key, on a connection
/// of its own holding an advisory lock, so replicas starting together
/// migrate once. Returns how many migrations were applied.
async fn prepare_schema(
    config: &tokio_postgres::Config,
    schema: &str,
    target: &str,
    sealer: &Sealer,
) -> CoreResult<usize> {
    const OPERATION: &str = "migrate";
    let unavailable = |what: &'static str| {
        move |error: tokio_postgres::Error| {
            tracing::error!(target, schema, what, %error, "cannot prepare the store schema");
            pg_error(OPERATION)(error)
        }
    };
    let (mut client, connection) = config.connect(tokio_postgres::NoTls).await.map_err(|error| {
        tracing::error!(target, %error, source = ?std::error::Error::source(&error), "cannot connect to postgres");
        CoreError::Unavailable(format!("cannot connect to the store database {target}: {error}"))
    })?;
    let connection_task = tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "store migration connection ended");
        }
    });
    let lock_key = format!("flagnet-store/migrate/{schema}");
    client
        .execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", &[&lock_key])
        .await
        .map_err(unavailable("advisory lock"))?;
    // checked to be a plain identifier: no quoting needed
    client
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}; SET search_path TO {schema}"
        ))
        .await
        .map_err(unavailable("create schema"))?;
    let report = embedded::migrations::runner()
        .set_abort_divergent(true)
        .set_abort_missing(true)
        .run_async(&mut client)
        .await
        .map_err(|error| {
            tracing::error!(target, schema, %error, "database migration failed");
            CoreError::Internal(format!("cannot migrate schema {schema} of {target}: {error}"))
        })?;
    check_data_key(&client, sealer, schema, target).await?;
    client
        .execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", &[&lock_key])
        .await
        .map_err(unavailable("advisory unlock"))?;
    drop(client);
    // the connection ends once its client is gone
    let _ = connection_task.await;
    Ok(report.applied_migrations().len())
}

/// Seals the check value on first connect; on every later connect, refuses a
/// key that cannot open it.
async fn check_data_key(
    client: &tokio_postgres::Client,
    sealer: &Sealer,
    schema: &str,
    target: &str,
) -> CoreResult<()> {
    let sealed_check = sealer.seal_bytes(&data_key_check_binding(), crate::rows::DATA_KEY_CHECK)?;
    client
        .execute(
            "INSERT INTO store_meta (name, value) VALUES ('data_key_check', $1) ON CONFLICT (name) DO NOTHING",
            &[&sealed_check],
        )
        .await
        .map_err(pg_error("check_data_key"))?;
    let stored: Vec<u8> = client
        .query_one("SELECT value FROM store_meta WHERE name = 'data_key_check'", &[])
        .await
        .map_err(pg_error("check_data_key"))
        .and_then(|row| column(&row, 0))?;
    if data_key_check_opens(sealer, &stored) {
        return Ok(());
    }
    tracing::error!(target, schema, "data key does not open this schema");
    Err(CoreError::Internal(format!(
        "schema {schema} of {target} cannot be decrypted with this data key: it was written under another key"
    )))
}

/// One column of a row, typed; a type the schema does not have is a bug.
fn column<'a, T: FromSql<'a>>(row: &'a Row, index: usize) -> CoreResult<T> {
    row.try_get(index).map_err(|error| {
        tracing::error!(index, %error, "store row has an unexpected column");
        CoreError::Internal(format!("store row has an unexpected column {index}: {error}"))
    })
}

/// The flag row of `flag_columns!()` starting at column 0.
fn flag_row(row: &Row) -> CoreResult<FlagRow> {
    Ok(FlagRow {
        id: column(row, 0)?,
        owner: column(row, 1)?,
        status: column(row, 2)?,
        review_date: column(row, 3)?,
        revision: column(row, 4)?,
        created_at: column(row, 5)?,
        updated_at: column(row, 6)?,
        sealed: column(row, 7)?,
    })
}

/// Groups rows of `flag_columns!(), kind, token [, matched]`, ordered by flag
/// id then token position, into one entry per flag.
fn collect_flags(rows: &[Row], with_matched: bool) -> CoreResult<LoadedFlags> {
    let mut loaded = LoadedFlags::default();
    for row in rows {
        let id: &str = column(row, 0)?;
        let kind: Option<&str> = column(row, 8)?;
        let token: Option<&[u8]> = column(row, 9)?;
        let joined = match (kind, token) {
            (Some(kind), Some(token)) => Some(JoinedToken {
                kind,
                token,
                matched: with_matched && column::<bool>(row, 10)?,
            }),
            _ => None,
        };
        loaded.push(id, || flag_row(row), joined)?;
    }
    Ok(loaded)
}

/// The consent row of `consent_columns!()`, or `None` for the NULLs of an
/// outer join that found none.
fn consent_row(row: &Row) -> CoreResult<Option<ConsentRow>> {
    let Some(id) = column::<Option<String>>(row, 0)? else {
        return Ok(None);
    };
    Ok(Some(ConsentRow {
        id,
        flag_id: column(row, 1)?,
        owner: column(row, 2)?,
        valid_from: column(row, 3)?,
        valid_until: column(row, 4)?,
        recorded_at: column(row, 5)?,
        revoked_at: column(row, 6)?,
        sealed: column(row, 7)?,
    }))
}

fn alert_row(row: &Row) -> CoreResult<AlertRow> {
    Ok(AlertRow {
        cursor: column(row, 0)?,
        encounter_id: column(row, 1)?,
        flag_id: column(row, 2)?,
        owner: column(row, 3)?,
        received_at: column(row, 4)?,
        sealed: column(row, 5)?,
    })
}

fn review_row(row: &Row) -> CoreResult<ReviewRow> {
    Ok(ReviewRow {
        id: column(row, 0)?,
        owner: column(row, 1)?,
        created_at: column(row, 2)?,
        resolved_at: column(row, 3)?,
        sealed: column(row, 4)?,
    })
}

fn policy_version_row(row: &Row) -> CoreResult<PolicyVersionRow> {
    Ok(PolicyVersionRow {
        agency: column(row, 0)?,
        version: column(row, 1)?,
        created_at: column(row, 2)?,
        content_hash: column(row, 3)?,
        sealed: column(row, 4)?,
    })
}

fn proposal_row(row: &Row) -> CoreResult<ProposalRow> {
    Ok(ProposalRow {
        id: column(row, 0)?,
        agency: column(row, 1)?,
        base_version: column(row, 2)?,
        proposed_at: column(row, 3)?,
        closed_at: column(row, 4)?,
        sealed: column(row, 5)?,
    })
}

/// Inserts `row` as the version after `base`, if `base` is still the latest
/// and no concurrent writer stored that number first.
async fn insert_policy_version(session: &mut Session<'_>, row: &PolicyVersionRow, base: i64) -> CoreResult<()> {
    let latest = session
        .query_opt(LATEST_POLICY_VERSION_NUMBER, &[&row.agency])
        .await?
        .map(|latest| column::<Option<i64>>(&latest, 0))
        .transpose()?
        .flatten();
    let stale = || stale_policy_base(u64::try_from(base).unwrap_or_default(), latest);
    if latest.unwrap_or(0) != base {
        return Err(stale());
    }
    let inserted = session
        .execute(
            INSERT_POLICY_VERSION,
            &[
                &row.agency,
                &row.version,
                &row.created_at,
                &row.content_hash,
                &row.sealed,
            ],
        )
        .await?;
    if inserted != 1 {
        return Err(CoreError::Aborted(format!(
            "policy version {} was stored by another replica at the same moment; read the policy again and re-propose",
            row.version
        )));
    }
    Ok(())
}

/// `NotFound` unless flag `id` exists and belongs to `owner`; another
/// agency's flag is indistinguishable from none. Owners never change and
/// flags are never deleted, so no lock is needed.
async fn require_own_flag(session: &mut Session<'_>, owner: &str, id: &str) -> CoreResult<()> {
    let row = session.query_opt(SELECT_FLAG_OWNER, &[&id]).await?;
    match row {
        Some(row) if column::<&str>(&row, 0)? == owner => Ok(()),
        _ => Err(CoreError::NotFound("flag".into())),
    }
}

/// Writes one sealed flag revision: the row, its tokens and its history entry.
async fn write_flag(session: &mut Session<'_>, write: &FlagWrite) -> CoreResult<()> {
    let row = &write.row;
    if row.revision == 1 {
        session
            .execute(
                INSERT_FLAG,
                &[
                    &row.id,
                    &row.owner,
                    &row.status,
                    &row.review_date,
                    &row.revision,
                    &row.created_at,
                    &row.updated_at,
                    &row.sealed,
                ],
            )
            .await?;
    } else {
        let previous = row.revision - 1;
        let updated = session
            .execute(
                UPDATE_FLAG,
                &[
                    &row.id,
                    &row.status,
                    &row.review_date,
                    &row.revision,
                    &row.updated_at,
                    &row.sealed,
                    &previous,
                ],
            )
            .await?;
        if updated != 1 {
            return Err(CoreError::Internal(format!("flag {} changed under a row lock", row.id)));
        }
        session.execute(DELETE_FLAG_TOKENS, &[&row.id]).await?;
    }
    if !write.tokens.is_empty() {
        let positions: Vec<i64> = (0..write.tokens.len() as i64).collect();
        let kinds: Vec<&str> = write.tokens.iter().map(|token| token.kind.as_str()).collect();
        let tokens: Vec<&[u8]> = write
            .tokens
            .iter()
            .map(|token| token.token.as_bytes().as_slice())
            .collect();
        session
            .execute(INSERT_FLAG_TOKENS, &[&row.id, &positions, &kinds, &tokens])
            .await?;
    }
    session
        .execute(
            INSERT_FLAG_HISTORY,
            &[
                &row.id,
                &row.revision,
                &row.updated_at,
                &row.status,
                &write.history_sealed,
            ],
        )
        .await?;
    Ok(())
}

#[async_trait]
impl Store for PostgresStore {
    async fn put_flag(&self, flag: NewFlag, at: OffsetDateTime) -> CoreResult<Flag> {
        const OPERATION: &str = "put_flag";
        let input = FlagInput::new(flag, at)?;
        let mut lease = self.pool.get(OPERATION).await?;
        let mut session = lease.begin().await?;
        let write = match input.replaces() {
            None => input.create(&self.sealer)?,
            Some(id) => {
                let stored = session.query_opt(SELECT_FLAG_FOR_REPLACE, &[&id.to_string()]).await?;
                let stored = match stored {
                    Some(row) => Some((column(&row, 0)?, column(&row, 1)?, column(&row, 2)?)),
                    None => None,
                };
                input.replace(&self.sealer, id, stored)?
            }
        };
        write_flag(&mut session, &write).await?;
        session.commit().await?;
        let stored = write.flag;
        tracing::debug!(flag_id = %stored.id, owner = %stored.owner, revision = stored.revision, "flag stored");
        Ok(stored)
    }

    async fn get_flag(&self, owner: &AgencyId, id: Uuid) -> CoreResult<Option<Flag>> {
        const OPERATION: &str = "get_flag";
        let mut lease = self.pool.get(OPERATION).await?;
        let rows = lease.query(SELECT_FLAG, &[&id.to_string(), &owner.as_str()]).await?;
        collect_flags(&rows, false)?
            .into_vec()
            .into_iter()
            .next()
            .map(|loaded| loaded.row.open(&self.sealer, loaded.tokens))
            .transpose()
    }

    async fn list_flags(&self, owner: &AgencyId, after: Option<Uuid>, limit: usize) -> CoreResult<Vec<Flag>> {
        const OPERATION: &str = "list_flags";
        // '' sorts before every uuid text
        let after = after.map(|id| id.to_string()).unwrap_or_default();
        let limit = list_limit(limit);
        let mut lease = self.pool.get(OPERATION).await?;
        let rows = lease.query(LIST_FLAGS, &[&owner.as_str(), &after, &limit]).await?;
        collect_flags(&rows, false)?
            .into_vec()
            .into_iter()
            .map(|loaded| loaded.row.open(&self.sealer, loaded.tokens))
            .collect()
    }

    async fn flag_history(&self, owner: &AgencyId, id: Uuid) -> CoreResult<Vec<FlagChange>> {
        const OPERATION: &str = "flag_history";
        let flag_id = id.to_string();
        let mut lease = self.pool.get(OPERATION).await?;
        let rows = lease.query(SELECT_FLAG_HISTORY, &[&flag_id, &owner.as_str()]).await?;
        if rows.is_empty() {
            return Err(CoreError::NotFound("flag".into()));
        }
        let mut changes = Vec::with_capacity(rows.len());
        for row in &rows {
            let Some(revision) = column::<Option<i64>>(row, 0)? else {
                continue;
            };
            let changed_at: i64 = column(row, 1)?;
            let status: &str = column(row, 2)?;
            let sealed: &[u8] = column(row, 3)?;
            let binding = history_binding(&flag_id, owner.as_str(), revision, changed_at, status);
            let body: HistoryBody = self.sealer.open(&binding, sealed)?;
            let row_id = binding.row_id();
            changes.push(FlagChange {
                flag_id: id,
                revision: revision_from_sql(FLAG_HISTORY, row_id, revision)?,
                changed_at: instant_from_sql(FLAG_HISTORY, row_id, changed_at)?,
                changed_by: body.changed_by,
                reason: body.reason,
                status: status_from_sql(FLAG_HISTORY, row_id, status)?,
            });
        }
        Ok(changes)
    }

    async fn find_flags(&self, tokens: &[SubjectToken]) -> CoreResult<Vec<FlagMatch>> {
        const OPERATION: &str = "find_flags";
        let asked = lookup_tokens(tokens)?;
        if asked.is_empty() {
            return Ok(Vec::new());
        }
        let kinds: Vec<&str> = asked.iter().map(|token| token.kind.as_str()).collect();
        let token_bytes: Vec<&[u8]> = asked.iter().map(|token| token.token.as_bytes().as_slice()).collect();
        let mut lease = self.pool.get(OPERATION).await?;
        let rows = lease.query(FIND_FLAGS, &[&kinds, &token_bytes]).await?;
        collect_flags(&rows, true)?
            .into_vec()
            .into_iter()
            .map(|loaded| {
                let matched = loaded.matched;
                let flag = loaded.row.open(&self.sealer, loaded.tokens)?;
                Ok(FlagMatch { flag, matched })
            })
            .collect()
    }

    async fn record_consent(&self, consent: NewConsent, at: OffsetDateTime) -> CoreResult<Consent> {
        const OPERATION: &str = "record_consent";
        let (mut row, body) = ConsentRow::new_recorded(consent, at)?;
        let mut lease = self.pool.get(OPERATION).await?;
        let mut session = lease.begin().await?;
        require_own_flag(&mut session, &row.owner, &row.flag_id).await?;
        row.sealed = self.sealer.seal(&row.binding(), &body)?;
        session
            .execute(
                INSERT_CONSENT,
                &[
                    &row.id,
                    &row.flag_id,
                    &row.owner,
                    &row.valid_from,
                    &row.valid_until,
                    &row.recorded_at,
                    &row.revoked_at,
                    &row.sealed,
                ],
            )
            .await?;
        session.commit().await?;
        let recorded = row.into_consent(body)?;
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
        let mut lease = self.pool.get(OPERATION).await?;
        let mut session = lease.begin().await?;
        let stored = session
            .query_opt(SELECT_CONSENT_FOR_REVOKE, &[&id.to_string(), &owner.as_str()])
            .await?;
        let Some(mut row) = stored.as_ref().map(consent_row).transpose()?.flatten() else {
            return Err(CoreError::NotFound("consent".into()));
        };
        let body = row.revoke(&self.sealer, revocation)?;
        let updated = session
            .execute(REVOKE_CONSENT, &[&row.id, &row.revoked_at, &row.sealed])
            .await?;
        if updated != 1 {
            return Err(CoreError::Internal(format!(
                "consent {} changed under a row lock",
                row.id
            )));
        }
        session.commit().await?;
        let revoked = row.into_consent(body)?;
        tracing::info!(consent_id = %revoked.id, flag_id = %revoked.flag_id, owner = %revoked.owner, "consent revoked");
        Ok(revoked)
    }

    async fn list_consents(&self, owner: &AgencyId, flag_id: Uuid) -> CoreResult<Vec<Consent>> {
        const OPERATION: &str = "list_consents";
        let mut lease = self.pool.get(OPERATION).await?;
        let rows = lease
            .query(LIST_CONSENTS, &[&flag_id.to_string(), &owner.as_str()])
            .await?;
        if rows.is_empty() {
            return Err(CoreError::NotFound("flag".into()));
        }
        let mut consents = Vec::with_capacity(rows.len());
        for row in &rows {
            if let Some(row) = consent_row(row)? {
                consents.push(row.open(&self.sealer)?);
            }
        }
        Ok(consents)
    }

    async fn consents_for_flags(&self, flag_ids: &[Uuid]) -> CoreResult<HashMap<Uuid, Vec<Consent>>> {
        const OPERATION: &str = "consents_for_flags";
        let asked = consent_query_flags(flag_ids)?;
        let mut by_flag: HashMap<Uuid, Vec<Consent>> = asked.iter().map(|id| (*id, Vec::new())).collect();
        if asked.is_empty() {
            return Ok(by_flag);
        }
        let asked_text: Vec<String> = asked.iter().map(Uuid::to_string).collect();
        let mut lease = self.pool.get(OPERATION).await?;
        let rows = lease.query(CONSENTS_FOR_FLAGS, &[&asked_text]).await?;
        for row in &rows {
            if let Some(row) = consent_row(row)? {
                let consent = row.open(&self.sealer)?;
                by_flag.entry(consent.flag_id).or_default().push(consent);
            }
        }
        Ok(by_flag)
    }

    async fn store_alert(&self, encounter: Encounter, at: OffsetDateTime) -> CoreResult<(Alert, bool)> {
        const OPERATION: &str = "store_alert";
        let input = AlertInput::new(encounter, at)?;
        let mut lease = self.pool.get(OPERATION).await?;
        let mut session = lease.begin().await?;
        session.batch_execute(LOCK_ALERTS).await?;
        if let Some(existing) = session
            .query_opt(SELECT_ALERT_BY_ENCOUNTER, &[&input.encounter_id])
            .await?
        {
            let existing = alert_row(&existing)?.open(&self.sealer)?;
            session.commit().await?;
            return Ok((existing, false));
        }
        require_own_flag(&mut session, input.owner(), &input.flag_id).await?;
        let sealed = input.seal(&self.sealer)?;
        let inserted = session
            .query_opt(
                INSERT_ALERT,
                &[
                    &input.encounter_id,
                    &input.flag_id,
                    &input.owner(),
                    &input.received_at,
                    &sealed,
                ],
            )
            .await?;
        let Some(inserted) = inserted else {
            return Err(CoreError::Internal("an alert insert returned no cursor".into()));
        };
        let cursor: i64 = column(&inserted, 0)?;
        session.commit().await?;
        Ok((input.into_alert(cursor)?, true))
    }

    async fn alerts_after(&self, owner: &AgencyId, after: u64, limit: usize) -> CoreResult<Vec<Alert>> {
        const OPERATION: &str = "alerts_after";
        let limit = list_limit(limit);
        let after = cursor_to_sql(after);
        let mut lease = self.pool.get(OPERATION).await?;
        let rows = lease.query(ALERTS_AFTER, &[&owner.as_str(), &after, &limit]).await?;
        rows.iter().map(|row| alert_row(row)?.open(&self.sealer)).collect()
    }

    async fn enqueue_delivery(&self, encounter: Encounter, at: OffsetDateTime) -> CoreResult<bool> {
        const OPERATION: &str = "enqueue_delivery";
        encounter.validate()?;
        let queued_at = instant_to_sql("outbox.queued_at", at)?;
        let encounter_id = encounter.id.to_string();
        let binding = outbox_binding(&encounter_id, encounter.owner.as_str(), queued_at);
        let sealed = self.sealer.seal(&binding, &encounter)?;
        let mut lease = self.pool.get(OPERATION).await?;
        let mut session = lease.begin().await?;
        let inserted = session
            .execute(
                ENQUEUE_DELIVERY,
                &[&encounter_id, &encounter.owner.as_str(), &queued_at, &sealed],
            )
            .await?;
        session.commit().await?;
        Ok(inserted == 1)
    }

    async fn pending_deliveries(&self, limit: usize) -> CoreResult<Vec<Encounter>> {
        const OPERATION: &str = "pending_deliveries";
        let limit = list_limit(limit);
        let mut lease = self.pool.get(OPERATION).await?;
        let rows = lease.query(PENDING_DELIVERIES, &[&limit]).await?;
        rows.iter()
            .map(|row| {
                let encounter_id: &str = column(row, 0)?;
                let owner: &str = column(row, 1)?;
                let queued_at: i64 = column(row, 2)?;
                let sealed: &[u8] = column(row, 3)?;
                self.sealer
                    .open::<Encounter>(&outbox_binding(encounter_id, owner, queued_at), sealed)
            })
            .collect()
    }

    async fn mark_delivered(&self, encounter_id: Uuid, at: OffsetDateTime) -> CoreResult<()> {
        const OPERATION: &str = "mark_delivered";
        let delivered_at = instant_to_sql("outbox.delivered_at", at)?;
        let mut lease = self.pool.get(OPERATION).await?;
        let changed = lease
            .query(MARK_DELIVERED, &[&encounter_id.to_string(), &delivered_at])
            .await?;
        if changed.is_empty() {
            return Err(CoreError::NotFound("queued encounter".into()));
        }
        Ok(())
    }

    async fn add_review_item(&self, item: ReviewItem) -> CoreResult<()> {
        const OPERATION: &str = "add_review_item";
        let created_at = new_review_item(&item)?;
        let id = item.id.to_string();
        let binding = crate::rows::review_binding(&id, item.owner.as_str(), created_at, None);
        let sealed = self.sealer.seal(&binding, &item)?;
        let mut lease = self.pool.get(OPERATION).await?;
        let mut session = lease.begin().await?;
        session
            .execute(INSERT_REVIEW_ITEM, &[&id, &item.owner.as_str(), &created_at, &sealed])
            .await?;
        session.commit().await
    }

    async fn review_items(
        &self,
        owner: &AgencyId,
        include_resolved: bool,
        limit: usize,
    ) -> CoreResult<Vec<ReviewItem>> {
        const OPERATION: &str = "review_items";
        let limit = list_limit(limit);
        let mut lease = self.pool.get(OPERATION).await?;
        let rows = lease
            .query(SELECT_REVIEW_ITEMS, &[&owner.as_str(), &include_resolved, &limit])
            .await?;
        rows.iter().map(|row| review_row(row)?.open(&self.sealer)).collect()
    }

    async fn resolve_review_item(
        &self,
        owner: &AgencyId,
        id: Uuid,
        resolution: ReviewResolution,
    ) -> CoreResult<ReviewItem> {
        const OPERATION: &str = "resolve_review_item";
        check_resolution(&resolution)?;
        let mut lease = self.pool.get(OPERATION).await?;
        let mut session = lease.begin().await?;
        let stored = session
            .query_opt(SELECT_REVIEW_ITEM_FOR_RESOLVE, &[&id.to_string(), &owner.as_str()])
            .await?;
        let Some(stored) = stored else {
            return Err(CoreError::NotFound("review item".into()));
        };
        let mut row = review_row(&stored)?;
        let item = row.resolve(&self.sealer, resolution)?;
        let updated = session
            .execute(RESOLVE_REVIEW_ITEM, &[&row.id, &row.resolved_at, &row.sealed])
            .await?;
        if updated != 1 {
            return Err(corrupt(REVIEW_ITEMS, &row.id, "vanished under a row lock"));
        }
        session.commit().await?;
        Ok(item)
    }

    async fn latest_policy_version(&self, agency: &AgencyId) -> CoreResult<Option<PolicyVersion>> {
        const OPERATION: &str = "latest_policy_version";
        let mut lease = self.pool.get(OPERATION).await?;
        let rows = lease.query(LATEST_POLICY_VERSION, &[&agency.as_str()]).await?;
        rows.first()
            .map(|row| policy_version_row(row)?.open(&self.sealer))
            .transpose()
    }

    async fn policy_version(&self, agency: &AgencyId, version: u64) -> CoreResult<Option<PolicyVersion>> {
        const OPERATION: &str = "policy_version";
        let Ok(number) = i64::try_from(version) else {
            return Ok(None);
        };
        let mut lease = self.pool.get(OPERATION).await?;
        let rows = lease.query(SELECT_POLICY_VERSION, &[&agency.as_str(), &number]).await?;
        rows.first()
            .map(|row| policy_version_row(row)?.open(&self.sealer))
            .transpose()
    }

    async fn policy_history(
        &self,
        agency: &AgencyId,
        before: Option<u64>,
        limit: usize,
    ) -> CoreResult<Vec<PolicyVersion>> {
        const OPERATION: &str = "policy_history";
        let before = before.map_or(i64::MAX, |before| i64::try_from(before).unwrap_or(i64::MAX));
        let limit = list_limit(limit);
        let mut lease = self.pool.get(OPERATION).await?;
        let rows = lease
            .query(POLICY_HISTORY, &[&agency.as_str(), &before, &limit])
            .await?;
        rows.iter()
            .map(|row| policy_version_row(row)?.open(&self.sealer))
            .collect()
    }

    async fn append_policy_version(&self, version: NewPolicyVersion) -> CoreResult<PolicyVersion> {
        const OPERATION: &str = "append_policy_version";
        let (row, stored, base) = PolicyVersionRow::create(version, &self.sealer)?;
        let mut lease = self.pool.get(OPERATION).await?;
        let mut session = lease.begin().await?;
        insert_policy_version(&mut session, &row, base).await?;
        session.commit().await?;
        tracing::info!(agency = %stored.agency, version = stored.version, "policy version stored");
        Ok(stored)
    }

    async fn add_policy_proposal(&self, proposal: PolicyProposal) -> CoreResult<()> {
        const OPERATION: &str = "add_policy_proposal";
        let row = ProposalRow::create(&proposal, &self.sealer)?;
        let mut lease = self.pool.get(OPERATION).await?;
        let mut session = lease.begin().await?;
        session
            .execute(
                INSERT_POLICY_PROPOSAL,
                &[&row.id, &row.agency, &row.base_version, &row.proposed_at, &row.sealed],
            )
            .await?;
        session.commit().await
    }

    async fn policy_proposal(&self, agency: &AgencyId, id: Uuid) -> CoreResult<Option<PolicyProposal>> {
        const OPERATION: &str = "policy_proposal";
        let mut lease = self.pool.get(OPERATION).await?;
        let rows = lease
            .query(SELECT_POLICY_PROPOSAL, &[&id.to_string(), &agency.as_str()])
            .await?;
        rows.first()
            .map(|row| proposal_row(row)?.open(&self.sealer))
            .transpose()
    }

    async fn policy_proposals(
        &self,
        agency: &AgencyId,
        include_closed: bool,
        limit: usize,
    ) -> CoreResult<Vec<PolicyProposal>> {
        const OPERATION: &str = "policy_proposals";
        let limit = list_limit(limit);
        let mut lease = self.pool.get(OPERATION).await?;
        let rows = lease
            .query(SELECT_POLICY_PROPOSALS, &[&agency.as_str(), &include_closed, &limit])
            .await?;
        rows.iter().map(|row| proposal_row(row)?.open(&self.sealer)).collect()
    }

    async fn approve_policy_proposal(
        &self,
        agency: &AgencyId,
        id: Uuid,
        approval: PolicyApproval,
    ) -> CoreResult<PolicyVersion> {
        const OPERATION: &str = "approve_policy_proposal";
        let mut lease = self.pool.get(OPERATION).await?;
        let mut session = lease.begin().await?;
        let stored = session
            .query_opt(SELECT_POLICY_PROPOSAL_FOR_CLOSE, &[&id.to_string(), &agency.as_str()])
            .await?;
        let Some(stored) = stored else {
            return Err(CoreError::NotFound("policy proposal".into()));
        };
        let mut row = proposal_row(&stored)?;
        let proposal = row.open(&self.sealer)?;
        if !proposal.is_open() {
            return Err(CoreError::FailedPrecondition("the proposal is already closed".into()));
        }
        let (version_row, version, base) =
            PolicyVersionRow::create(proposal.as_new_version(Some(approval.clone())), &self.sealer)?;
        insert_policy_version(&mut session, &version_row, base).await?;
        row.close(
            &self.sealer,
            ProposalClosing {
                by: approval.by,
                at: approval.at,
                outcome: ProposalOutcome::Approved {
                    version: version.version,
                },
            },
        )?;
        let updated = session
            .execute(CLOSE_POLICY_PROPOSAL, &[&row.id, &row.closed_at, &row.sealed])
            .await?;
        if updated != 1 {
            return Err(corrupt(POLICY_PROPOSALS, &row.id, "vanished under a row lock"));
        }
        session.commit().await?;
        Ok(version)
    }

    async fn reject_policy_proposal(
        &self,
        agency: &AgencyId,
        id: Uuid,
        closing: ProposalClosing,
    ) -> CoreResult<PolicyProposal> {
        const OPERATION: &str = "reject_policy_proposal";
        check_rejection(&closing)?;
        let mut lease = self.pool.get(OPERATION).await?;
        let mut session = lease.begin().await?;
        let stored = session
            .query_opt(SELECT_POLICY_PROPOSAL_FOR_CLOSE, &[&id.to_string(), &agency.as_str()])
            .await?;
        let Some(stored) = stored else {
            return Err(CoreError::NotFound("policy proposal".into()));
        };
        let mut row = proposal_row(&stored)?;
        let closed = row.close(&self.sealer, closing)?;
        session
            .execute(CLOSE_POLICY_PROPOSAL, &[&row.id, &row.closed_at, &row.sealed])
            .await?;
        session.commit().await?;
        Ok(closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers() {
        for good in ["flagnet", "flagnet_audit", "_t1", "a"] {
            check_schema_name(good).unwrap();
        }
        let too_long = "a".repeat(MAX_SCHEMA_LEN + 1);
        for bad in [
            "",
            "Flagnet",
            "1abc",
            "a-b",
            "a;drop schema public",
            "\"x\"",
            "pg_temp",
            "information_schema",
            too_long.as_str(),
        ] {
            assert!(
                matches!(check_schema_name(bad), Err(CoreError::InvalidArgument { ref field, .. }) if field == "store.schema"),
                "{bad:?} must be refused"
            );
        }
    }

    #[test]
    fn descriptions_never_show_the_password() {
        let config: tokio_postgres::Config = "postgres://flagnet:s3cret@db.example:6432/agency".parse().unwrap();
        let shown = describe(&config);
        assert_eq!(shown, "flagnet@db.example:6432/agency");
        assert!(!shown.contains("s3cret"));
    }

    #[test]
    fn statements_name_only_the_intended_columns() {
        // the column order is what flag_row, consent_row and alert_row read
        assert!(SELECT_FLAG.starts_with("SELECT f.id, f.owner, f.status, f.review_date, f.revision,"));
        assert!(LIST_CONSENTS.starts_with("SELECT c.id, c.flag_id, c.owner, c.valid_from, c.valid_until,"));
        assert!(ALERTS_AFTER.starts_with("SELECT cursor, encounter_id, flag_id, owner, received_at, sealed"));
    }
}
