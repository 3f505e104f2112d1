//! The seam between request handling and the audit log: the [`AuditSink`]
//! trait a handler appends through, the [`AuditHealth`] signal the health
//! service watches, and a [`NullAuditSink`] for benchmarks.
//!
//! A handler must answer only after `append` returned a receipt, and must
//! fail with UNAVAILABLE, disclosing nothing, when it returned an error. The
//! null sink must never be wired into a serving node: it makes nothing
//! durable.

use crate::error::AuditError;
use crate::merkle::{Hash, leaf_hash};
use crate::record::{AuditRecord, encode_entry};
use async_trait::async_trait;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::watch;

/// Proof of a durable append: where the record landed in the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendReceipt {
    pub index: u64,
    pub leaf_hash: Hash,
}

/// Whether the log can make records durable right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditHealth {
    Writable,
    Failing { reason: String },
}

impl AuditHealth {
    pub fn is_writable(&self) -> bool {
        matches!(self, AuditHealth::Writable)
    }
}

/// Where handlers send their audit records.
#[async_trait]
pub trait AuditSink: Send + Sync + Debug {
    /// Returns once the record is durable, or fails within the sink's
    /// deadline.
    async fn append(&self, record: AuditRecord) -> Result<AppendReceipt, AuditError>;

    /// Flips to `Failing` when records cannot be made durable in time.
    fn health(&self) -> watch::Receiver<AuditHealth>;
}

/// A sink that encodes and hashes each record and keeps nothing, so a
/// benchmark can measure what durability costs.
#[derive(Debug)]
pub struct NullAuditSink {
    next_index: AtomicU64,
    health: watch::Sender<AuditHealth>,
}

impl Default for NullAuditSink {
    fn default() -> Self {
        Self::new()
    }
}

impl NullAuditSink {
    pub fn new() -> Self {
        Self {
            next_index: AtomicU64::new(0),
            health: watch::Sender::new(AuditHealth::Writable),
        }
    }

    /// How many records it was given.
    pub fn appended(&self) -> u64 {
        self.next_index.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl AuditSink for NullAuditSink {
    async fn append(&self, record: AuditRecord) -> Result<AppendReceipt, AuditError> {
        let index = self.next_index.fetch_add(1, Ordering::Relaxed);
        let entry = encode_entry(index, &record);
        Ok(AppendReceipt {
            index,
            leaf_hash: leaf_hash(&entry),
        })
    }

    fn health(&self) -> watch::Receiver<AuditHealth> {
        self.health.subscribe()
    }
}
