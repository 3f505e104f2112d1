//! The durable audit log: one writer task that batches concurrent appends
//! into one SQLite transaction (group commit) and acknowledges each append
//! only after that transaction is on disk, signs checkpoints every N records
//! or T seconds, and reports whether the log is writable; plus the auditors'
//! reads (search, get, export, verify, accounting of disclosures, proofs) on
//! a small pool of read-only connections.
//!
//! Fail closed: an append that cannot be made durable within its deadline
//! returns [`AuditError::Unavailable`] and flips the health signal to
//! `Failing` until a later commit (or the writer's periodic probe) succeeds
//! in time. A log that fails its open check refuses every append. This
//! module must never acknowledge a record before its commit returned.

use crate::checkpoint::{Checkpoint, CheckpointSigner, CheckpointVerifier};
use crate::error::AuditError;
use crate::merkle::{self, Frontier};
use crate::query::{
    AuditPage, AuditQuery, ConsistencyProof, DisclosureAccount, InclusionProof, StoredRecord, VerifyReport,
};
use crate::record::{AuditRecord, MAX_ENTRY_BYTES, SubjectRef};
use crate::sink::{AppendReceipt, AuditHealth, AuditSink};
use crate::store::{self, FaultInjector, PreparedEntry};
use async_trait::async_trait;
use flagnet_core::AgencyId;
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, timeout, timeout_at};

/// How many records one export page reads.
const EXPORT_PAGE_SIZE: u32 = 256;

/// How the log is run. Build with [`AuditLogConfig::new`] and adjust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLogConfig {
    /// The log's own SQLite file.
    pub path: PathBuf,
    /// Appends that may wait for the writer; beyond it, appends wait for
    /// room until their deadline.
    pub queue_capacity: usize,
    /// How long an append may take before it returns `Unavailable`.
    pub append_deadline: Duration,
    /// The most records one commit carries.
    pub max_batch: usize,
    /// Sign a checkpoint once this many records follow the last one...
    pub checkpoint_every: u64,
    /// ...or once this long has passed with records not yet covered.
    pub checkpoint_interval: Duration,
    /// While failing, how often the writer tries a durable probe write.
    pub probe_interval: Duration,
    /// How many idle read-only connections to keep.
    pub reader_connections: usize,
}

impl AuditLogConfig {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            queue_capacity: 4096,
            append_deadline: Duration::from_secs(2),
            max_batch: 1024,
            checkpoint_every: 1000,
            checkpoint_interval: Duration::from_secs(60),
            probe_interval: Duration::from_millis(250),
            reader_connections: 4,
        }
    }

    pub fn validate(&self) -> Result<(), AuditError> {
        if self.queue_capacity == 0 {
            return Err(AuditError::invalid("audit.queue_capacity", "must be at least 1"));
        }
        if self.max_batch == 0 {
            return Err(AuditError::invalid("audit.max_batch", "must be at least 1"));
        }
        if self.append_deadline.is_zero() {
            return Err(AuditError::invalid("audit.append_deadline", "must be positive"));
        }
        if self.checkpoint_every == 0 {
            return Err(AuditError::invalid("audit.checkpoint_every", "must be at least 1"));
        }
        if self.checkpoint_interval.is_zero() || self.probe_interval.is_zero() {
            return Err(AuditError::invalid(
                "audit.checkpoint_interval",
                "intervals must be positive",
            ));
        }
        Ok(())
    }
}

/// Counters since open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditStats {
    /// Records made durable.
    pub appended: u64,
    /// Successful commits that carried records.
    pub commits: u64,
    pub failed_commits: u64,
    /// Appends that returned an error.
    pub refused_appends: u64,
    pub checkpoints: u64,
    pub largest_batch: u64,
    /// Records in the committed tree.
    pub tree_size: u64,
}

#[derive(Debug, Default)]
struct Counters {
    appended: AtomicU64,
    commits: AtomicU64,
    failed_commits: AtomicU64,
    refused_appends: AtomicU64,
    checkpoints: AtomicU64,
    largest_batch: AtomicU64,
    tree_size: AtomicU64,
}

#[derive(Debug)]
struct AppendRequest {
    record: AuditRecord,
    deadline: Instant,
    ack: oneshot::Sender<Result<AppendReceipt, AuditError>>,
}

#[derive(Debug)]
enum WriterMessage {
    Append(Box<AppendRequest>),
    Control(Control),
}

#[derive(Debug)]
enum Control {
    Checkpoint(oneshot::Sender<Result<Checkpoint, AuditError>>),
    Shutdown(oneshot::Sender<()>),
}

/// Read-only connections, opened on demand and kept up to a limit.
#[derive(Debug)]
struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    keep: usize,
}

impl ReaderPool {
    fn with<T>(&self, work: impl FnOnce(&Connection) -> Result<T, AuditError>) -> Result<T, AuditError> {
        let idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => store::open_reader(&self.path)?,
        };
        let result = work(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() < self.keep {
            idle.push(conn);
        }
        result
    }
}

fn set_health(health: &watch::Sender<AuditHealth>, next: AuditHealth) {
    let changed = health.send_if_modified(|current| {
        if *current == next {
            return false;
        }
        *current = next.clone();
        true
    });
    if !changed {
        return;
    }
    match &next {
        AuditHealth::Writable => tracing::info!("audit log writable again"),
        AuditHealth::Failing { reason } => tracing::warn!(reason = %reason, "audit log failing"),
    }
}

#[derive(Debug)]
struct Inner {
    config: AuditLogConfig,
    queue: mpsc::Sender<WriterMessage>,
    health: Arc<watch::Sender<AuditHealth>>,
    counters: Arc<Counters>,
    faults: Arc<FaultInjector>,
    readers: ReaderPool,
    verifier: CheckpointVerifier,
    agency: AgencyId,
}

/// The node's durable, tamper-evident audit log. Cheap to clone; the writer
/// stops when the last clone is dropped or [`AuditLog::shutdown`] is called.
#[derive(Debug, Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

impl AuditLog {
    /// Opens (or creates) the log and starts its writer. A file that cannot
    /// be written is `Unavailable`. A stored log whose leaf indices have a
    /// gap, or whose roots disagree with its stored checkpoints, opens for
    /// reading and verification but refuses every append.
    pub async fn open(config: AuditLogConfig, signer: CheckpointSigner) -> Result<AuditLog, AuditError> {
        config.validate()?;
        let path = config.path.clone();
        let (conn, state) = tokio::task::spawn_blocking(move || -> Result<_, AuditError> {
            let conn = store::open_writer(&path)?;
            let state = store::load_state(&conn)?;
            Ok((conn, state))
        })
        .await
        .map_err(|_| AuditError::Store("audit open panicked".into()))??;

        let refused = state
            .problem
            .map(|problem| format!("the audit log failed its open check: {problem}"));
        let initial_health = match &refused {
            Some(reason) => {
                tracing::error!(path = %config.path.display(), reason = %reason, "audit log refuses appends");
                AuditHealth::Failing { reason: reason.clone() }
            }
            None => AuditHealth::Writable,
        };
        let health = Arc::new(watch::Sender::new(initial_health));
        let counters = Arc::new(Counters::default());
        counters.tree_size.store(state.frontier.size(), Ordering::SeqCst);
        let faults = Arc::new(FaultInjector::new());
        let (queue, receiver) = mpsc::channel(config.queue_capacity);
        let inner = Arc::new(Inner {
            readers: ReaderPool {
                path: config.path.clone(),
                idle: Mutex::new(Vec::new()),
                keep: config.reader_connections,
            },
            config: config.clone(),
            queue,
            health: health.clone(),
            counters: counters.clone(),
            faults: faults.clone(),
            verifier: signer.verifier(),
            agency: signer.agency().clone(),
        });
        tracing::info!(
            path = %config.path.display(),
            tree_size = state.frontier.size(),
            "audit log open"
        );
        let writer = Writer {
            config,
            conn: Some(conn),
            signer,
            faults,
            frontier: state.frontier,
            latest_checkpoint: state.latest_checkpoint,
            last_checkpoint_at: Instant::now(),
            refused,
            health,
            counters,
            queue: receiver,
        };
        tokio::spawn(writer.run());
        Ok(AuditLog { inner })
    }

    /// Makes `record` durable and returns where it landed, or fails with
    /// `Unavailable` within the append deadline.
    pub async fn append(&self, record: AuditRecord) -> Result<AppendReceipt, AuditError> {
        let deadline = Instant::now() + self.inner.config.append_deadline;
        let (ack, receipt) = oneshot::channel();
        let request = WriterMessage::Append(Box::new(AppendRequest { record, deadline, ack }));
        let result = match timeout_at(deadline, self.inner.queue.send(request)).await {
            Ok(Ok(())) => match timeout_at(deadline, receipt).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(AuditError::Unavailable("the audit writer has stopped".into())),
                Err(_) => Err(self.timed_out("an audit record was not durable within the deadline")),
            },
            Ok(Err(_)) => Err(AuditError::Unavailable("the audit writer has stopped".into())),
            Err(_) => Err(self.timed_out("the audit queue stayed full past the deadline")),
        };
        if result.is_err() {
            self.inner.counters.refused_appends.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    fn timed_out(&self, reason: &str) -> AuditError {
        set_health(
            &self.inner.health,
            AuditHealth::Failing {
                reason: reason.to_owned(),
            },
        );
        AuditError::Unavailable(reason.to_owned())
    }

    pub fn health(&self) -> watch::Receiver<AuditHealth> {
        self.inner.health.subscribe()
    }

    pub fn stats(&self) -> AuditStats {
        let counters = &self.inner.counters;
        AuditStats {
            appended: counters.appended.load(Ordering::SeqCst),
            commits: counters.commits.load(Ordering::SeqCst),
            failed_commits: counters.failed_commits.load(Ordering::SeqCst),
            refused_appends: counters.refused_appends.load(Ordering::SeqCst),
            checkpoints: counters.checkpoints.load(Ordering::SeqCst),
            largest_batch: counters.largest_batch.load(Ordering::SeqCst),
            tree_size: counters.tree_size.load(Ordering::SeqCst),
        }
    }

    /// Records in the committed tree.
    pub fn size(&self) -> u64 {
        self.inner.counters.tree_size.load(Ordering::SeqCst)
    }

    /// The failure hook at the store boundary, for tests.
    pub fn fault_injector(&self) -> Arc<FaultInjector> {
        self.inner.faults.clone()
    }

    /// The public key this log's checkpoints verify with.
    pub fn verifier(&self) -> &CheckpointVerifier {
        &self.inner.verifier
    }

    pub fn agency(&self) -> &AgencyId {
        &self.inner.agency
    }

    pub fn path(&self) -> &Path {
        &self.inner.config.path
    }

    /// Signs and stores a checkpoint of the committed tree now (or returns
    /// the latest one when it already covers every record).
    pub async fn checkpoint_now(&self) -> Result<Checkpoint, AuditError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .queue
            .send(WriterMessage::Control(Control::Checkpoint(reply)))
            .await
            .map_err(|_| AuditError::Unavailable("the audit writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| AuditError::Unavailable("the audit writer has stopped".into()))?
    }

    /// Commits what is queued, signs a final checkpoint and stops the
    /// writer; later appends return `Unavailable`.
    pub async fn shutdown(&self) {
        let (reply, done) = oneshot::channel();
        if self
            .inner
            .queue
            .send(WriterMessage::Control(Control::Shutdown(reply)))
            .await
            .is_ok()
        {
            let _ = done.await;
        }
    }

    async fn read<T, F>(&self, work: F) -> Result<T, AuditError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, AuditError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.readers.with(work))
            .await
            .map_err(|_| AuditError::Store("audit reader panicked".into()))?
    }

    /// One page of records matching `query`, oldest first.
    pub async fn search(&self, query: AuditQuery) -> Result<AuditPage, AuditError> {
        self.read(move |conn| store::search(conn, &query)).await
    }

    pub async fn get(&self, index: u64) -> Result<StoredRecord, AuditError> {
        self.read(move |conn| store::get(conn, index))
            .await?
            .ok_or_else(|| AuditError::NotFound(format!("audit record {index}")))
    }

    /// Every committed record from `from_index` on, in order, read page by
    /// page until the end of the log (records committed meanwhile included);
    /// a gap or a damaged row ends the stream with an error. Dropping the
    /// receiver stops the export.
    pub fn export(&self, from_index: u64) -> mpsc::Receiver<Result<StoredRecord, AuditError>> {
        let (sender, receiver) = mpsc::channel(EXPORT_PAGE_SIZE as usize);
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut next = from_index;
            loop {
                let page = inner
                    .readers
                    .with(|conn| store::export_page(conn, next, i64::MAX as u64, EXPORT_PAGE_SIZE));
                let records = match page {
                    Ok(records) if records.is_empty() => return,
                    Ok(records) => records,
                    Err(error) => {
                        let _ = sender.blocking_send(Err(error));
                        return;
                    }
                };
                for record in records {
                    next = record.index + 1;
                    if sender.blocking_send(Ok(record)).is_err() {
                        return;
                    }
                }
            }
        });
        receiver
    }

    /// Recomputes the log from its stored bytes and checks it against every
    /// stored checkpoint.
    pub async fn verify(&self) -> Result<VerifyReport, AuditError> {
        self.verify_against(Vec::new()).await
    }

    /// As [`AuditLog::verify`], also checking checkpoints kept elsewhere
    /// (by a peer or an auditor), so a truncation that also removed the
    /// stored checkpoints is caught.
    pub async fn verify_against(&self, trusted: Vec<Checkpoint>) -> Result<VerifyReport, AuditError> {
        let verifier = self.inner.verifier.clone();
        self.read(move |conn| store::verify(conn, &verifier, &trusted)).await
    }

    /// A subject's accounting of disclosures: every successful record naming
    /// any of `subject_refs` that disclosed at least one field class, one
    /// entry per disclosed flag.
    pub async fn disclosures(&self, subject_refs: Vec<SubjectRef>) -> Result<Vec<DisclosureAccount>, AuditError> {
        self.read(move |conn| store::disclosures(conn, &subject_refs)).await
    }

    pub async fn inclusion_proof(&self, index: u64, tree_size: u64) -> Result<InclusionProof, AuditError> {
        if index >= tree_size {
            return Err(AuditError::invalid(
                "leaf_index",
                format!("{index} is not below the tree size {tree_size}"),
            ));
        }
        self.read(move |conn| {
            let leaves = store::leaf_hashes(conn, tree_size)?;
            let hashes = merkle::inclusion_proof(&leaves, index)?;
            Ok(InclusionProof {
                leaf_index: index,
                tree_size,
                leaf_hash: leaves[index as usize],
                root_hash: merkle::root(&leaves),
                hashes,
            })
        })
        .await
    }

    pub async fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<ConsistencyProof, AuditError> {
        if old_size > new_size {
            return Err(AuditError::invalid("old_size", "must not exceed new_size"));
        }
        self.read(move |conn| {
            let leaves = store::leaf_hashes(conn, new_size)?;
            let hashes = merkle::consistency_proof(&leaves, old_size)?;
            Ok(ConsistencyProof {
                old_size,
                new_size,
                old_root: merkle::root(&leaves[..old_size as usize]),
                new_root: merkle::root(&leaves),
                hashes,
            })
        })
        .await
    }

    pub async fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, AuditError> {
        self.read(store::latest_checkpoint).await
    }

    /// Every stored checkpoint, smallest tree first.
    pub async fn checkpoints(&self) -> Result<Vec<Checkpoint>, AuditError> {
        self.read(store::all_checkpoints).await
    }
}

#[async_trait]
impl AuditSink for AuditLog {
    async fn append(&self, record: AuditRecord) -> Result<AppendReceipt, AuditError> {
        AuditLog::append(self, record).await
    }

    fn health(&self) -> watch::Receiver<AuditHealth> {
        AuditLog::health(self)
    }
}

/// The one task that writes the log.
struct Writer {
    config: AuditLogConfig,
    /// `None` after a failed write: the next write reopens it first.
    conn: Option<Connection>,
    signer: CheckpointSigner,
    faults: Arc<FaultInjector>,
    frontier: Frontier,
    latest_checkpoint: Option<Checkpoint>,
    last_checkpoint_at: Instant,
    /// Set when the stored log cannot be extended safely.
    refused: Option<String>,
    health: Arc<watch::Sender<AuditHealth>>,
    counters: Arc<Counters>,
    queue: mpsc::Receiver<WriterMessage>,
}

impl Writer {
    async fn run(mut self) {
        let mut shutdown_waiters = Vec::new();
        let tick = self.config.probe_interval.min(self.config.checkpoint_interval);
        loop {
            let first = match timeout(tick, self.queue.recv()).await {
                Ok(Some(message)) => Some(message),
                Ok(None) => break,
                Err(_) => None,
            };
            let mut appends = Vec::new();
            let mut controls = Vec::new();
            let mut next = first;
            while let Some(message) = next.take() {
                match message {
                    WriterMessage::Append(request) => appends.push(*request),
                    WriterMessage::Control(control) => controls.push(control),
                }
                if appends.len() < self.config.max_batch {
                    next = self.queue.try_recv().ok();
                }
            }
            if !appends.is_empty() {
                self.commit_appends(appends).await;
            } else if self.refused.is_none() && !self.health.borrow().is_writable() {
                self.probe().await;
            }
            if self.refused.is_none()
                && self.checkpoint_due(self.frontier.size())
                && let Err(error) = self.store_checkpoint().await
            {
                tracing::warn!(error = %error, "timed audit checkpoint failed");
            }
            for control in controls {
                match control {
                    Control::Checkpoint(reply) => {
                        let _ = reply.send(self.checkpoint_now().await);
                    }
                    Control::Shutdown(reply) => {
                        self.queue.close();
                        shutdown_waiters.push(reply);
                    }
                }
            }
        }
        if self.refused.is_none()
            && let Err(error) = self.checkpoint_now().await
        {
            tracing::warn!(error = %error, "final audit checkpoint failed");
        }
        self.conn = None;
        set_health(
            &self.health,
            AuditHealth::Failing {
                reason: "the audit writer has stopped".into(),
            },
        );
        for waiter in shutdown_waiters {
            let _ = waiter.send(());
        }
    }

    fn checkpoint_due(&self, size: u64) -> bool {
        let covered = self
            .latest_checkpoint
            .as_ref()
            .map_or(0, |checkpoint| checkpoint.tree_size);
        size > covered
            && (size - covered >= self.config.checkpoint_every
                || self.last_checkpoint_at.elapsed() >= self.config.checkpoint_interval)
    }

    fn fail(&mut self, reason: String) {
        self.conn = None;
        set_health(&self.health, AuditHealth::Failing { reason });
    }

    /// Runs blocking store work on the writer's connection.
    async fn with_conn<T, F>(&mut self, work: F) -> Result<T, AuditError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, AuditError> + Send + 'static,
    {
        let Some(mut conn) = self.conn.take() else {
            return Err(AuditError::Unavailable("no writable audit connection".into()));
        };
        match tokio::task::spawn_blocking(move || {
            let result = work(&mut conn);
            (conn, result)
        })
        .await
        {
            Ok((conn, result)) => {
                self.conn = Some(conn);
                result
            }
            Err(_) => Err(AuditError::Store("audit writer thread panicked".into())),
        }
    }

    /// Reopens the connection after a failure, proving it writable, and
    /// reloads the tree if the file no longer matches what was acknowledged.
    async fn ensure_conn(&mut self) -> Result<(), AuditError> {
        if self.conn.is_some() {
            return Ok(());
        }
        let path = self.config.path.clone();
        let faults = self.faults.clone();
        let expected = self.frontier.size();
        let (conn, reloaded) = tokio::task::spawn_blocking(move || -> Result<_, AuditError> {
            let mut conn = store::open_writer(&path)?;
            store::probe(&mut conn, &faults)?;
            let (count, last) = store::row_count_and_last(&conn)?;
            let consistent = count == expected && last.map_or(expected == 0, |last| last + 1 == expected);
            let reloaded = if consistent {
                None
            } else {
                Some(store::load_state(&conn)?)
            };
            Ok((conn, reloaded))
        })
        .await
        .map_err(|_| AuditError::Store("audit reopen panicked".into()))??;
        if let Some(state) = reloaded {
            tracing::warn!(
                acknowledged = expected,
                stored = state.frontier.size(),
                "audit file differs from the acknowledged tree; reloaded"
            );
            if let Some(problem) = state.problem {
                self.refused = Some(format!("the audit log failed its reopen check: {problem}"));
            }
            self.frontier = state.frontier;
            self.latest_checkpoint = state.latest_checkpoint;
            self.counters.tree_size.store(self.frontier.size(), Ordering::SeqCst);
        }
        self.conn = Some(conn);
        Ok(())
    }

    async fn probe(&mut self) {
        let started = Instant::now();
        let result = if self.conn.is_none() {
            self.ensure_conn().await
        } else {
            let faults = self.faults.clone();
            self.with_conn(move |conn| store::probe(conn, &faults)).await
        };
        match result {
            Ok(()) if started.elapsed() <= self.config.append_deadline => {
                set_health(&self.health, AuditHealth::Writable)
            }
            Ok(()) => set_health(
                &self.health,
                AuditHealth::Failing {
                    reason: "an audit probe write was slower than the append deadline".into(),
                },
            ),
            Err(error) => {
                tracing::debug!(error = %error, "audit probe failed");
                self.fail(format!("audit probe failed: {error}"));
            }
        }
    }

    async fn commit_appends(&mut self, appends: Vec<AppendRequest>) {
        let now = Instant::now();
        let mut live = Vec::with_capacity(appends.len());
        for request in appends {
            if request.ack.is_closed() || request.deadline <= now {
                let _ = request.ack.send(Err(AuditError::Unavailable(
                    "an audit record was not durable within the deadline".into(),
                )));
                continue;
            }
            live.push(request);
        }
        if live.is_empty() {
            return;
        }
        if self.refused.is_none()
            && let Err(error) = self.ensure_conn().await
        {
            self.fail(format!("audit log not writable: {error}"));
        }
        if let Some(reason) = self
            .refused
            .clone()
            .or_else(|| self.conn.is_none().then(|| "audit log not writable".into()))
        {
            for request in live {
                let _ = request.ack.send(Err(AuditError::Unavailable(reason.clone())));
            }
            return;
        }

        let mut frontier = self.frontier.clone();
        let mut entries = Vec::with_capacity(live.len());
        let mut waiting = Vec::with_capacity(live.len());
        let mut earliest_deadline = None::<Instant>;
        for request in live {
            let prepared = PreparedEntry::new(frontier.size(), &request.record);
            if prepared.entry.len() > MAX_ENTRY_BYTES {
                let _ = request.ack.send(Err(AuditError::invalid(
                    "audit_record",
                    format!("encodes to {} bytes, more than {MAX_ENTRY_BYTES}", prepared.entry.len()),
                )));
                continue;
            }
            frontier.push(prepared.leaf_hash);
            earliest_deadline =
                Some(earliest_deadline.map_or(request.deadline, |earliest| earliest.min(request.deadline)));
            waiting.push((
                request.ack,
                AppendReceipt {
                    index: prepared.index,
                    leaf_hash: prepared.leaf_hash,
                },
            ));
            entries.push(prepared);
        }
        let Some(earliest_deadline) = earliest_deadline else {
            return;
        };
        let checkpoint = self.checkpoint_due(frontier.size()).then(|| {
            self.signer
                .sign(frontier.size(), frontier.root(), OffsetDateTime::now_utc())
        });
        let batch_len = entries.len() as u64;
        let faults = self.faults.clone();
        let checkpoint_to_store = checkpoint.clone();
        let started = Instant::now();
        let result = self
            .with_conn(move |conn| store::commit_batch(conn, &entries, checkpoint_to_store.as_ref(), &faults))
            .await;
        let elapsed = started.elapsed();
        match result {
            Ok(()) => {
                self.frontier = frontier;
                let counters = &self.counters;
                counters.tree_size.store(self.frontier.size(), Ordering::SeqCst);
                counters.appended.fetch_add(batch_len, Ordering::SeqCst);
                counters.commits.fetch_add(1, Ordering::SeqCst);
                counters.largest_batch.fetch_max(batch_len, Ordering::SeqCst);
                if let Some(checkpoint) = checkpoint {
                    self.checkpoint_stored(checkpoint);
                }
                if Instant::now() > earliest_deadline {
                    set_health(
                        &self.health,
                        AuditHealth::Failing {
                            reason: format!(
                                "an audit commit took {} ms, past the append deadline",
                                elapsed.as_millis()
                            ),
                        },
                    );
                } else {
                    set_health(&self.health, AuditHealth::Writable);
                }
                tracing::trace!(
                    batch = batch_len,
                    elapsed_us = elapsed.as_micros() as u64,
                    "audit batch committed"
                );
                for (ack, receipt) in waiting {
                    let _ = ack.send(Ok(receipt));
                }
            }
            Err(error) => {
                self.counters.failed_commits.fetch_add(1, Ordering::SeqCst);
                tracing::error!(error = %error, batch = batch_len, "audit commit failed");
                self.fail(format!("an audit commit failed: {error}"));
                for (ack, _) in waiting {
                    let _ = ack.send(Err(AuditError::Unavailable("the audit commit failed".into())));
                }
            }
        }
    }

    fn checkpoint_stored(&mut self, checkpoint: Checkpoint) {
        tracing::debug!(tree_size = checkpoint.tree_size, "audit checkpoint signed");
        self.counters.checkpoints.fetch_add(1, Ordering::SeqCst);
        self.last_checkpoint_at = Instant::now();
        self.latest_checkpoint = Some(checkpoint);
    }

    /// Signs and stores a checkpoint of the committed tree in its own commit.
    async fn store_checkpoint(&mut self) -> Result<Checkpoint, AuditError> {
        if let Err(error) = self.ensure_conn().await {
            self.fail(format!("audit log not writable: {error}"));
            return Err(AuditError::Unavailable(format!("audit log not writable: {error}")));
        }
        let checkpoint = self
            .signer
            .sign(self.frontier.size(), self.frontier.root(), OffsetDateTime::now_utc());
        let faults = self.faults.clone();
        let to_store = checkpoint.clone();
        match self
            .with_conn(move |conn| store::commit_checkpoint(conn, &to_store, &faults))
            .await
        {
            Ok(()) => {
                self.checkpoint_stored(checkpoint.clone());
                Ok(checkpoint)
            }
            Err(error) => {
                self.fail(format!("an audit checkpoint commit failed: {error}"));
                Err(AuditError::Unavailable(format!(
                    "the checkpoint commit failed: {error}"
                )))
            }
        }
    }

    async fn checkpoint_now(&mut self) -> Result<Checkpoint, AuditError> {
        if let Some(reason) = &self.refused {
            return Err(AuditError::Unavailable(reason.clone()));
        }
        if let Some(latest) = &self.latest_checkpoint
            && latest.tree_size == self.frontier.size()
        {
            return Ok(latest.clone());
        }
        self.store_checkpoint().await
    }
}
