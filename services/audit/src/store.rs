//! The audit log's own SQLite file: schema, the writer's durable batch
//! commit (WAL, `synchronous=FULL`), the readers' queries and the
//! recomputation behind `verify`. Everything here is blocking and runs on
//! the writer's or a reader's blocking thread.
//!
//! The canonical entry bytes are the truth; the plaintext index columns and
//! the subject side table only make searches fast. This module must never
//! update or delete a record row, and never return a row whose bytes do not
//! decode to the index they are stored at. The [`FaultInjector`] is the
//! failure hook at this store boundary, for tests; nothing in production
//! arms it.

use crate::checkpoint::{Checkpoint, CheckpointVerifier};
use crate::error::AuditError;
use crate::merkle::{Frontier, Hash, leaf_hash};
use crate::query::{
    AuditPage, AuditQuery, DisclosureAccount, MAX_DISCLOSURE_ENTRIES, StoredRecord, VerifyReport, page_token_after,
};
use crate::record::{AuditRecord, SubjectRef, decode_entry, encode_entry};
use flagnet_core::AgencyId;
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params, params_from_iter};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use time::OffsetDateTime;

/// The schema version this crate writes.
pub const SCHEMA_VERSION: &str = "1";

/// The schema, also used by the benchmark's raw-insert baseline.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS audit_records (
    leaf_index INTEGER PRIMARY KEY,
    entry BLOB NOT NULL,
    leaf_hash BLOB NOT NULL,
    time_unix_ns INTEGER NOT NULL,
    request_id BLOB NOT NULL,
    actor_agency TEXT,
    actor_user TEXT,
    action TEXT NOT NULL,
    incident_id TEXT,
    outcome TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS audit_records_time ON audit_records (time_unix_ns);
CREATE INDEX IF NOT EXISTS audit_records_actor ON audit_records (actor_agency, actor_user);
CREATE INDEX IF NOT EXISTS audit_records_incident ON audit_records (incident_id);
CREATE INDEX IF NOT EXISTS audit_records_request ON audit_records (request_id);
CREATE TABLE IF NOT EXISTS audit_subjects (
    subject_ref BLOB NOT NULL,
    leaf_index INTEGER NOT NULL,
    PRIMARY KEY (subject_ref, leaf_index)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    tree_size INTEGER PRIMARY KEY,
    root_hash BLOB NOT NULL,
    time_unix INTEGER NOT NULL,
    agency TEXT NOT NULL,
    signature BLOB NOT NULL
) STRICT;
INSERT OR IGNORE INTO audit_meta (key, value) VALUES ('schema_version', '1');
";

const INSERT_RECORD: &str = "INSERT INTO audit_records
    (leaf_index, entry, leaf_hash, time_unix_ns, request_id, actor_agency, actor_user, action, incident_id, outcome)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
const INSERT_SUBJECT: &str = "INSERT OR IGNORE INTO audit_subjects (subject_ref, leaf_index) VALUES (?1, ?2)";
const INSERT_CHECKPOINT: &str = "INSERT OR REPLACE INTO audit_checkpoints (tree_size, root_hash, time_unix, agency, signature) VALUES (?1, ?2, ?3, ?4, ?5)";

/// A failure hook at the store boundary: tests arm it to make the next
/// commits fail or stall. Inert unless armed.
#[derive(Debug, Default)]
pub struct FaultInjector {
    failing_commits: AtomicU64,
    delay_ms: AtomicU64,
}

impl FaultInjector {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `count` commits (and probes) fail.
    pub fn fail_next_commits(&self, count: u64) {
        self.failing_commits.store(count, Ordering::SeqCst);
    }

    /// Every commit fails until [`FaultInjector::clear`].
    pub fn fail_all_commits(&self) {
        self.failing_commits.store(u64::MAX, Ordering::SeqCst);
    }

    /// Every commit first stalls this long, as a slow disk would.
    pub fn delay_commits(&self, delay: Duration) {
        let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.delay_ms.store(millis, Ordering::SeqCst);
    }

    pub fn clear(&self) {
        self.failing_commits.store(0, Ordering::SeqCst);
        self.delay_ms.store(0, Ordering::SeqCst);
    }

    pub fn is_armed(&self) -> bool {
        self.failing_commits.load(Ordering::SeqCst) > 0 || self.delay_ms.load(Ordering::SeqCst) > 0
    }

    /// Called just before each commit.
    fn before_commit(&self) -> Result<(), AuditError> {
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(Duration::from_millis(delay));
        }
        let armed = self
            .failing_commits
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| match left {
                0 => None,
                u64::MAX => Some(u64::MAX),
                left => Some(left - 1),
            })
            .is_ok();
        if armed {
            return Err(AuditError::Store("injected commit failure".into()));
        }
        Ok(())
    }
}

fn to_i64(value: u64, field: &str) -> Result<i64, AuditError> {
    i64::try_from(value).map_err(|_| AuditError::invalid(field, "too large"))
}

/// A stored size or index; a negative one (only a hand-edited file holds
/// one) becomes `u64::MAX`, which no continuity check accepts.
fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

fn hash_from_blob(blob: Vec<u8>, what: &str) -> Result<Hash, AuditError> {
    blob.try_into()
        .map_err(|_| AuditError::Store(format!("{what} is not 32 bytes")))
}

pub(crate) fn time_key(time: OffsetDateTime) -> i64 {
    i64::try_from(time.unix_timestamp_nanos()).unwrap_or(if time.unix_timestamp() < 0 { i64::MIN } else { i64::MAX })
}

/// A record encoded at its index, with the columns that index it.
#[derive(Debug, Clone)]
pub struct PreparedEntry {
    pub index: u64,
    pub entry: Vec<u8>,
    pub leaf_hash: Hash,
    time_unix_ns: i64,
    request_id: [u8; 16],
    actor_agency: Option<String>,
    actor_user: Option<String>,
    action: String,
    incident_id: Option<String>,
    outcome: &'static str,
    subject_refs: Vec<SubjectRef>,
}

impl PreparedEntry {
    pub fn new(index: u64, record: &AuditRecord) -> Self {
        let entry = encode_entry(index, record);
        Self {
            index,
            leaf_hash: leaf_hash(&entry),
            entry,
            time_unix_ns: time_key(record.time),
            request_id: *record.request_id.as_bytes(),
            actor_agency: record.actor_agency.as_ref().map(|agency| agency.as_str().to_owned()),
            actor_user: record.actor_user.as_ref().map(|user| user.as_str().to_owned()),
            action: record.action.as_str().to_owned(),
            incident_id: record.incident_id.clone(),
            outcome: record.outcome.as_str(),
            subject_refs: record.subject_refs.clone(),
        }
    }
}

fn configure_writer(conn: &Connection) -> Result<(), AuditError> {
    conn.busy_timeout(Duration::from_secs(1))?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(AuditError::Unavailable(format!("journal mode is {mode}, not wal")));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    let synchronous: i64 = conn.pragma_query_value(None, "synchronous", |row| row.get(0))?;
    if synchronous != 2 {
        return Err(AuditError::Unavailable(format!(
            "synchronous is {synchronous}, not full"
        )));
    }
    Ok(())
}

/// Opens (creating if need be) the log's file for writing, with the
/// durability pragmas and the schema. A file that cannot be written is
/// `Unavailable`.
pub fn open_writer(path: &Path) -> Result<Connection, AuditError> {
    let unavailable = |error: AuditError| match error {
        AuditError::Store(reason) => {
            AuditError::Unavailable(format!("cannot open {} for writing: {reason}", path.display()))
        }
        other => other,
    };
    let conn = Connection::open(path).map_err(|error| unavailable(error.into()))?;
    if conn
        .is_readonly(rusqlite::MAIN_DB)
        .map_err(|error| unavailable(error.into()))?
    {
        return Err(AuditError::Unavailable(format!("{} is read-only", path.display())));
    }
    configure_writer(&conn).map_err(unavailable)?;
    conn.execute_batch(SCHEMA).map_err(|error| unavailable(error.into()))?;
    let version: String = conn.query_row("SELECT value FROM audit_meta WHERE key = 'schema_version'", [], |row| {
        row.get(0)
    })?;
    if version != SCHEMA_VERSION {
        return Err(AuditError::Store(format!(
            "schema version {version} is not {SCHEMA_VERSION}"
        )));
    }
    Ok(conn)
}

/// Opens the log's file for reading only.
pub fn open_reader(path: &Path) -> Result<Connection, AuditError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

fn insert_checkpoint(conn: &Connection, checkpoint: &Checkpoint) -> Result<(), AuditError> {
    conn.execute(
        INSERT_CHECKPOINT,
        params![
            to_i64(checkpoint.tree_size, "tree_size")?,
            &checkpoint.root_hash[..],
            checkpoint.time.unix_timestamp(),
            checkpoint.agency.as_str(),
            &checkpoint.signature[..],
        ],
    )?;
    Ok(())
}

/// Inserts `entries` (and a checkpoint over them) in one transaction and
/// commits it durably.
pub fn commit_batch(
    conn: &mut Connection,
    entries: &[PreparedEntry],
    checkpoint: Option<&Checkpoint>,
    faults: &FaultInjector,
) -> Result<(), AuditError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut insert_record = tx.prepare_cached(INSERT_RECORD)?;
        let mut insert_subject = tx.prepare_cached(INSERT_SUBJECT)?;
        for entry in entries {
            let index = to_i64(entry.index, "leaf_index")?;
            insert_record.execute(params![
                index,
                &entry.entry,
                &entry.leaf_hash[..],
                entry.time_unix_ns,
                &entry.request_id[..],
                entry.actor_agency,
                entry.actor_user,
                entry.action,
                entry.incident_id,
                entry.outcome,
            ])?;
            for subject_ref in &entry.subject_refs {
                insert_subject.execute(params![&subject_ref[..], index])?;
            }
        }
    }
    if let Some(checkpoint) = checkpoint {
        insert_checkpoint(&tx, checkpoint)?;
    }
    faults.before_commit()?;
    tx.commit()?;
    Ok(())
}

/// A durable write that touches no record: proves the file is writable.
pub fn probe(conn: &mut Connection, faults: &FaultInjector) -> Result<(), AuditError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT OR REPLACE INTO audit_meta (key, value) VALUES ('last_probe', ?1)",
        params![OffsetDateTime::now_utc().unix_timestamp().to_string()],
    )?;
    faults.before_commit()?;
    tx.commit()?;
    Ok(())
}

/// What the writer needs to carry on after open.
#[derive(Debug)]
pub struct LoadedState {
    pub frontier: Frontier,
    pub latest_checkpoint: Option<Checkpoint>,
    /// Why the stored log cannot be extended safely.
    pub problem: Option<String>,
}

/// Rebuilds the tree from the stored leaf hashes, checking index continuity
/// and the stored checkpoints' roots (not the record bytes: that is
/// `verify`'s job).
pub fn load_state(conn: &Connection) -> Result<LoadedState, AuditError> {
    let checkpoints = all_checkpoints(conn)?;
    let mut pending = checkpoints.iter().peekable();
    let mut frontier = Frontier::new();
    let mut problem = None;
    // checkpoints of the empty tree (a node stopped before its first record)
    while let Some(checkpoint) = pending.next_if(|checkpoint| checkpoint.tree_size == 0) {
        if checkpoint.root_hash != frontier.root() {
            problem.get_or_insert_with(|| "root at size 0 differs from its checkpoint".to_owned());
        }
    }
    let mut statement = conn.prepare("SELECT leaf_index, leaf_hash FROM audit_records ORDER BY leaf_index")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let index = to_u64(row.get(0)?);
        if index != frontier.size() {
            problem.get_or_insert_with(|| format!("record {} is missing", frontier.size()));
            break;
        }
        let Ok(stored_hash) = hash_from_blob(row.get(1)?, "leaf hash") else {
            problem.get_or_insert_with(|| format!("the leaf hash of record {} is malformed", frontier.size()));
            break;
        };
        frontier.push(stored_hash);
        while let Some(checkpoint) = pending.next_if(|checkpoint| checkpoint.tree_size <= frontier.size()) {
            if checkpoint.tree_size == frontier.size() && checkpoint.root_hash != frontier.root() {
                problem.get_or_insert_with(|| format!("root at size {} differs from its checkpoint", frontier.size()));
            }
        }
    }
    if problem.is_none()
        && let Some(checkpoint) = pending.last()
    {
        problem = Some(format!(
            "log holds {} records but a checkpoint was signed at size {}",
            frontier.size(),
            checkpoint.tree_size
        ));
    }
    Ok(LoadedState {
        frontier,
        latest_checkpoint: checkpoints.last().cloned(),
        problem,
    })
}

/// Stores a checkpoint in its own durable transaction.
pub fn commit_checkpoint(
    conn: &mut Connection,
    checkpoint: &Checkpoint,
    faults: &FaultInjector,
) -> Result<(), AuditError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    insert_checkpoint(&tx, checkpoint)?;
    faults.before_commit()?;
    tx.commit()?;
    Ok(())
}

/// The number of stored records and the highest index (`None` when empty).
pub fn row_count_and_last(conn: &Connection) -> Result<(u64, Option<u64>), AuditError> {
    let (count, last): (i64, Option<i64>) =
        conn.query_row("SELECT COUNT(*), MAX(leaf_index) FROM audit_records", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
    Ok((to_u64(count), last.map(to_u64)))
}

/// A checkpoint row: size, root, unix time, agency, signature.
type CheckpointRow = (i64, Vec<u8>, i64, String, Vec<u8>);

fn checkpoint_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<CheckpointRow> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
}

fn decode_checkpoint((size, root, time, agency, signature): CheckpointRow) -> Result<Checkpoint, AuditError> {
    Ok(Checkpoint {
        agency: AgencyId::parse(&agency).map_err(|error| AuditError::Store(format!("checkpoint agency: {error}")))?,
        tree_size: to_u64(size),
        root_hash: hash_from_blob(root, "checkpoint root")?,
        time: OffsetDateTime::from_unix_timestamp(time)
            .map_err(|_| AuditError::Store("checkpoint time out of range".into()))?,
        signature: signature
            .try_into()
            .map_err(|_| AuditError::Store("checkpoint signature is not 64 bytes".into()))?,
    })
}

/// Every stored checkpoint, smallest tree first.
pub fn all_checkpoints(conn: &Connection) -> Result<Vec<Checkpoint>, AuditError> {
    let mut statement = conn.prepare_cached(
        "SELECT tree_size, root_hash, time_unix, agency, signature FROM audit_checkpoints ORDER BY tree_size",
    )?;
    let rows = statement.query_map([], checkpoint_from_row)?;
    rows.map(|row| decode_checkpoint(row?)).collect()
}

pub fn latest_checkpoint(conn: &Connection) -> Result<Option<Checkpoint>, AuditError> {
    let row = conn
        .query_row(
            "SELECT tree_size, root_hash, time_unix, agency, signature FROM audit_checkpoints
             ORDER BY tree_size DESC LIMIT 1",
            [],
            checkpoint_from_row,
        )
        .optional()?;
    row.map(decode_checkpoint).transpose()
}

fn stored_record(index: i64, entry: Vec<u8>, stored_hash: Vec<u8>) -> Result<StoredRecord, AuditError> {
    let index = to_u64(index);
    let leaf = hash_from_blob(stored_hash, "leaf hash")?;
    if leaf_hash(&entry) != leaf {
        return Err(AuditError::Store(format!(
            "record {index} does not match its leaf hash"
        )));
    }
    let (decoded_index, record) =
        decode_entry(&entry).map_err(|error| AuditError::Store(format!("record {index}: {error}")))?;
    if decoded_index != index {
        return Err(AuditError::Store(format!(
            "record {index} carries index {decoded_index}"
        )));
    }
    Ok(StoredRecord {
        index,
        leaf_hash: leaf,
        entry,
        record,
    })
}

pub fn get(conn: &Connection, index: u64) -> Result<Option<StoredRecord>, AuditError> {
    let row: Option<(i64, Vec<u8>, Vec<u8>)> = conn
        .query_row(
            "SELECT leaf_index, entry, leaf_hash FROM audit_records WHERE leaf_index = ?1",
            params![to_i64(index, "index")?],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()?;
    row.map(|(index, entry, leaf)| stored_record(index, entry, leaf))
        .transpose()
}

/// Records `from_index..end_index` in order, at most `limit`; a gap is an error.
pub fn export_page(
    conn: &Connection,
    from_index: u64,
    end_index: u64,
    limit: u32,
) -> Result<Vec<StoredRecord>, AuditError> {
    let mut statement = conn.prepare_cached(
        "SELECT leaf_index, entry, leaf_hash FROM audit_records
         WHERE leaf_index >= ?1 AND leaf_index < ?2 ORDER BY leaf_index LIMIT ?3",
    )?;
    let rows = statement.query_map(
        params![
            to_i64(from_index, "from_index")?,
            to_i64(end_index, "end_index")?,
            limit
        ],
        |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, Vec<u8>>(1)?,
                row.get::<_, Vec<u8>>(2)?,
            ))
        },
    )?;
    let mut records = Vec::new();
    for (expected, row) in (from_index..).zip(rows) {
        let (index, entry, leaf) = row?;
        if to_u64(index) != expected {
            return Err(AuditError::Store(format!("record {expected} is missing")));
        }
        records.push(stored_record(index, entry, leaf)?);
    }
    Ok(records)
}

fn subject_filter(refs: &[SubjectRef], values: &mut Vec<Value>) -> String {
    let placeholders = vec!["?"; refs.len()].join(", ");
    values.extend(refs.iter().map(|subject_ref| Value::Blob(subject_ref.to_vec())));
    format!("leaf_index IN (SELECT leaf_index FROM audit_subjects WHERE subject_ref IN ({placeholders}))")
}

pub fn search(conn: &Connection, query: &AuditQuery) -> Result<AuditPage, AuditError> {
    query.validate()?;
    let page_size = query.effective_page_size();
    let mut conditions = vec!["leaf_index >= ?".to_owned()];
    let mut values = vec![Value::Integer(to_i64(query.start_index()?, "page_token")?)];
    if let Some(from) = query.from {
        conditions.push("time_unix_ns >= ?".into());
        values.push(Value::Integer(time_key(from)));
    }
    if let Some(to) = query.to {
        conditions.push("time_unix_ns < ?".into());
        values.push(Value::Integer(time_key(to)));
    }
    let text_filters = [
        (
            "actor_agency",
            query.actor_agency.as_ref().map(|agency| agency.as_str()),
        ),
        ("actor_user", query.actor_user.as_ref().map(|user| user.as_str())),
        ("action", query.action.as_ref().map(|action| action.as_str())),
        ("incident_id", query.incident_id.as_deref()),
        ("outcome", query.outcome.map(|outcome| outcome.as_str())),
    ];
    for (column, value) in text_filters {
        if let Some(value) = value {
            conditions.push(format!("{column} = ?"));
            values.push(Value::Text(value.to_owned()));
        }
    }
    if let Some(request_id) = query.request_id {
        conditions.push("request_id = ?".into());
        values.push(Value::Blob(request_id.as_bytes().to_vec()));
    }
    if !query.subject_refs.is_empty() {
        conditions.push(subject_filter(&query.subject_refs, &mut values));
    }
    let sql = format!(
        "SELECT leaf_index, entry, leaf_hash FROM audit_records WHERE {} ORDER BY leaf_index LIMIT {}",
        conditions.join(" AND "),
        page_size + 1
    );
    let mut statement = conn.prepare(&sql)?;
    let rows = statement.query_map(params_from_iter(values.iter()), |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, Vec<u8>>(1)?,
            row.get::<_, Vec<u8>>(2)?,
        ))
    })?;
    let mut records = Vec::new();
    for row in rows {
        let (index, entry, leaf) = row?;
        records.push(stored_record(index, entry, leaf)?);
    }
    let next_page_token = if records.len() > page_size as usize {
        records.truncate(page_size as usize);
        records.last().map(|last| page_token_after(last.index))
    } else {
        None
    };
    Ok(AuditPage {
        records,
        next_page_token,
    })
}

pub fn disclosures(conn: &Connection, refs: &[SubjectRef]) -> Result<Vec<DisclosureAccount>, AuditError> {
    if refs.is_empty() {
        return Err(AuditError::invalid(
            "subject_refs",
            "at least one subject ref is required",
        ));
    }
    let query = AuditQuery {
        subject_refs: refs.to_vec(),
        ..AuditQuery::default()
    };
    query.validate()?;
    let mut values = Vec::new();
    let filter = subject_filter(refs, &mut values);
    let sql = format!(
        "SELECT leaf_index, entry, leaf_hash FROM audit_records WHERE outcome = 'ok' AND {filter} ORDER BY leaf_index"
    );
    let mut statement = conn.prepare(&sql)?;
    let rows = statement.query_map(params_from_iter(values.iter()), |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, Vec<u8>>(1)?,
            row.get::<_, Vec<u8>>(2)?,
        ))
    })?;
    let mut accounts = Vec::new();
    for row in rows {
        let (index, entry, leaf) = row?;
        let stored = stored_record(index, entry, leaf)?;
        let record = &stored.record;
        for fields in record.disclosed.iter().filter(|fields| !fields.classes.is_empty()) {
            if accounts.len() == MAX_DISCLOSURE_ENTRIES {
                tracing::warn!(limit = MAX_DISCLOSURE_ENTRIES, "accounting of disclosures truncated");
                return Ok(accounts);
            }
            accounts.push(DisclosureAccount {
                index: stored.index,
                time: record.time,
                request_id: record.request_id,
                action: record.action.clone(),
                recipient_agency: record.actor_agency.clone(),
                recipient_user: record.actor_user.clone(),
                recipient_roles: record.actor_roles.clone(),
                owner_agency: fields.owner_agency.clone(),
                flag_id: fields.flag_id,
                classes: fields.classes,
                purpose: record.purpose,
                incident_id: record.incident_id.clone(),
                override_used: record.override_used,
            });
        }
    }
    Ok(accounts)
}

/// The stored leaf hashes of the first `tree_size` records; fewer stored
/// records, or a gap, is an error.
pub fn leaf_hashes(conn: &Connection, tree_size: u64) -> Result<Vec<Hash>, AuditError> {
    let mut statement = conn
        .prepare_cached("SELECT leaf_index, leaf_hash FROM audit_records WHERE leaf_index < ?1 ORDER BY leaf_index")?;
    let rows = statement.query_map(params![to_i64(tree_size, "tree_size")?], |row| {
        Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
    })?;
    let mut hashes = Vec::new();
    for row in rows {
        let (index, hash) = row?;
        if to_u64(index) != hashes.len() as u64 {
            return Err(AuditError::Store(format!("record {} is missing", hashes.len())));
        }
        hashes.push(hash_from_blob(hash, "leaf hash")?);
    }
    if (hashes.len() as u64) < tree_size {
        return Err(AuditError::NotFound(format!("tree of size {tree_size}")));
    }
    Ok(hashes)
}

/// Recomputes every leaf hash from the stored bytes, checks index
/// continuity and each record's own index, and checks the roots against
/// every stored checkpoint and every `trusted` one (saved elsewhere, for
/// example by a peer). Runs inside one read transaction, so it sees one
/// snapshot of a live log.
pub fn verify(
    conn: &Connection,
    verifier: &CheckpointVerifier,
    trusted: &[Checkpoint],
) -> Result<VerifyReport, AuditError> {
    let tx = conn.unchecked_transaction()?;
    let stored = all_checkpoints(&tx)?;
    let latest_checkpoint = stored.last().cloned();
    let mut checkpoints: Vec<Checkpoint> = stored.into_iter().chain(trusted.iter().cloned()).collect();
    checkpoints.sort_by_key(|checkpoint| checkpoint.tree_size);
    checkpoints.dedup();
    let mut pending = checkpoints.iter().peekable();

    let mut frontier = Frontier::new();
    let mut first_bad: Option<(u64, String)> = None;
    let mut vouched_size = 0u64;
    let mut checkpoints_checked = 0u64;
    let mut statement = tx.prepare("SELECT leaf_index, entry, leaf_hash FROM audit_records ORDER BY leaf_index")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let stored_index = to_u64(row.get(0)?);
        let entry: Vec<u8> = row.get(1)?;
        let stored_hash: Vec<u8> = row.get(2)?;
        let recomputed = leaf_hash(&entry);
        let expected = frontier.size();
        frontier.push(recomputed);
        if first_bad.is_some() {
            continue;
        }
        if stored_index != expected {
            first_bad = Some((
                expected,
                format!("record missing: index {expected} is absent, the next stored index is {stored_index}"),
            ));
            continue;
        }
        if stored_hash.as_slice() != recomputed.as_slice() {
            first_bad = Some((expected, "the stored leaf hash does not match the record bytes".into()));
            continue;
        }
        match decode_entry(&entry) {
            Err(error) => {
                first_bad = Some((expected, format!("the record bytes do not decode: {error}")));
                continue;
            }
            Ok((carried, _)) if carried != expected => {
                first_bad = Some((
                    expected,
                    format!("the record carries index {carried} but is stored at {expected}"),
                ));
                continue;
            }
            Ok(_) => {}
        }
        while let Some(checkpoint) = pending.next_if(|checkpoint| checkpoint.tree_size <= frontier.size()) {
            if let Some(problem) = check_checkpoint(checkpoint, verifier, &frontier) {
                first_bad = Some((vouched_size, problem));
                break;
            }
            checkpoints_checked += 1;
            vouched_size = checkpoint.tree_size;
        }
    }
    if first_bad.is_none() {
        for checkpoint in pending {
            if checkpoint.tree_size == 0 {
                continue;
            }
            if checkpoint.verify(verifier).is_err() {
                first_bad = Some((
                    vouched_size,
                    format!("the checkpoint at size {} has a bad signature", checkpoint.tree_size),
                ));
            } else {
                first_bad = Some((
                    frontier.size(),
                    format!(
                        "truncated: the log holds {} records but a signed checkpoint covers {}",
                        frontier.size(),
                        checkpoint.tree_size
                    ),
                ));
            }
            break;
        }
    }
    Ok(VerifyReport {
        size: frontier.size(),
        root: frontier.root(),
        first_bad,
        checkpoints_checked,
        latest_checkpoint,
    })
}

fn check_checkpoint(checkpoint: &Checkpoint, verifier: &CheckpointVerifier, frontier: &Frontier) -> Option<String> {
    if checkpoint.verify(verifier).is_err() {
        return Some(format!(
            "the checkpoint at size {} has a bad signature",
            checkpoint.tree_size
        ));
    }
    if checkpoint.tree_size == frontier.size() && checkpoint.root_hash != frontier.root() {
        return Some(format!(
            "the root at size {} does not match its signed checkpoint: a record below it was rewritten",
            checkpoint.tree_size
        ));
    }
    None
}
