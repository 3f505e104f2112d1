//! The one interface through which a node reports what happens to trust:
//! every refused TLS handshake and every reload of its certificate, trust
//! bundle and CRLs, good or refused. A [`TrustEventSink`] receives each
//! [`TrustEvent`]; the node's default sink, [`LogSink`], writes one
//! structured tracing line per event, and the audit log will be a second
//! sink (combine them with [`FanOut`]).
//!
//! An event holds descriptions only (identities, fingerprints, reasons,
//! file paths), never certificate or key material. A sink is called on the
//! connection's or the reload's own task and must not block for long:
//! queue the event if recording it needs I/O.

use crate::error::CertificateRefusal;
use crate::reload::{ReloadTrigger, TrustSetSummary};
use flagnet_core::Identity;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;

/// Something that happened to the node's trust.
#[derive(Debug, Clone)]
pub enum TrustEvent {
    /// A client's TLS handshake failed or was refused.
    HandshakeRefused(RefusedHandshake),
    /// A new certificate, trust bundle and CRL set was validated and is
    /// used for every new handshake from now on.
    Reloaded(TrustReloaded),
    /// A new set on disk was refused; the node keeps its last good set.
    ReloadRefused(TrustReloadRefused),
}

/// A client whose handshake did not complete.
#[derive(Debug, Clone)]
pub struct RefusedHandshake {
    pub at: OffsetDateTime,
    pub remote_addr: SocketAddr,
    pub reason: HandshakeRefusal,
    /// The identity the client's certificate claims, when it holds one
    /// (it is a claim, not an authenticated identity).
    pub claimed_identity: Option<Identity>,
    /// SHA-256 of the client's leaf certificate, when it presented one
    /// that the verifier looked at.
    pub fingerprint_sha256: Option<String>,
}

/// Why a handshake did not complete.
#[derive(Debug, Clone, PartialEq)]
pub enum HandshakeRefusal {
    /// The node's verifier refused the client's certificate.
    Certificate(CertificateRefusal),
    /// The client presented no certificate.
    NoCertificate,
    /// The handshake took longer than `tls.handshake_timeout_ms`.
    TimedOut(Duration),
    /// TLS failed otherwise: a protocol error, an alert from the client
    /// (for instance because it refused the node's certificate), or the
    /// connection closed mid-handshake.
    Tls(String),
}

impl HandshakeRefusal {
    /// A short, stable name of the reason, as [`CertificateRefusal::code`]
    /// for certificate refusals.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Certificate(refusal) => refusal.code(),
            Self::NoCertificate => "no_certificate",
            Self::TimedOut(_) => "handshake_timeout",
            Self::Tls(_) => "tls_error",
        }
    }
}

impl fmt::Display for HandshakeRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Certificate(refusal) => write!(f, "certificate refused: {refusal}"),
            Self::NoCertificate => f.write_str("no client certificate"),
            Self::TimedOut(after) => write!(f, "handshake not done after {} ms", after.as_millis()),
            Self::Tls(reason) => write!(f, "tls: {reason}"),
        }
    }
}

/// A reload that swapped in a new set.
#[derive(Debug, Clone)]
pub struct TrustReloaded {
    pub at: OffsetDateTime,
    pub trigger: ReloadTrigger,
    /// The set now in use.
    pub active: TrustSetSummary,
    /// The files whose contents differ from the previous set (added,
    /// changed or removed); empty when a signal reloaded unchanged files.
    pub changed: Vec<PathBuf>,
}

/// A reload that found an unusable set and kept the last good one.
#[derive(Debug, Clone)]
pub struct TrustReloadRefused {
    pub at: OffsetDateTime,
    pub trigger: ReloadTrigger,
    /// What is wrong with the files, naming the file.
    pub error: String,
    /// The set in use now.
    pub kept: TrustSetSummary,
    /// The new trust bundle and CRLs loaded whole and are in use, with the
    /// node's previous certificate and key, because only the node's own
    /// pair was refused: revocations are never held back by it.
    pub bundle_applied: bool,
    /// The files whose contents differ from the set in use.
    pub changed: Vec<PathBuf>,
}

/// Receives the node's trust events.
pub trait TrustEventSink: Send + Sync + fmt::Debug {
    fn record(&self, event: TrustEvent);
}

/// The node's default sink: one structured tracing line per event, with
/// `event` set to `handshake_refused`, `trust_reloaded` or
/// `trust_reload_refused`.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogSink;

impl TrustEventSink for LogSink {
    fn record(&self, event: TrustEvent) {
        match event {
            TrustEvent::HandshakeRefused(refused) => {
                let claimed_identity = refused.claimed_identity.as_ref().map(Identity::spiffe_uri);
                let claimed_identity = claimed_identity.as_deref().unwrap_or("-");
                let fingerprint_sha256 = refused.fingerprint_sha256.as_deref().unwrap_or("-");
                // a bare TLS failure is often a TCP health probe or a scanner; a refused
                // certificate is someone trying to get in
                if matches!(refused.reason, HandshakeRefusal::Tls(_)) {
                    tracing::info!(
                        event = "handshake_refused",
                        remote = %refused.remote_addr,
                        code = refused.reason.code(),
                        reason = %refused.reason,
                        claimed_identity,
                        fingerprint_sha256,
                        "tls handshake failed"
                    );
                } else {
                    tracing::warn!(
                        event = "handshake_refused",
                        remote = %refused.remote_addr,
                        code = refused.reason.code(),
                        reason = %refused.reason,
                        claimed_identity,
                        fingerprint_sha256,
                        "tls handshake refused"
                    );
                }
            }
            TrustEvent::Reloaded(reloaded) => tracing::info!(
                event = "trust_reloaded",
                trigger = %reloaded.trigger,
                node_identity = %reloaded.active.node_identity,
                node_serial = %reloaded.active.node_serial,
                node_fingerprint_sha256 = %reloaded.active.node_fingerprint_sha256,
                node_not_after = %reloaded.active.node_not_after,
                agencies = reloaded.active.agencies.len(),
                changed = ?reloaded.changed,
                "certificate, trust bundle and crls reloaded"
            ),
            TrustEvent::ReloadRefused(refused) => tracing::error!(
                event = "trust_reload_refused",
                trigger = %refused.trigger,
                error = %refused.error,
                kept_node_fingerprint_sha256 = %refused.kept.node_fingerprint_sha256,
                bundle_applied = refused.bundle_applied,
                changed = ?refused.changed,
                "new certificate, trust bundle or crls refused: still serving with the last good set"
            ),
        }
    }
}

/// Hands every event to each of several sinks, in order.
#[derive(Debug, Clone)]
pub struct FanOut(Vec<Arc<dyn TrustEventSink>>);

impl FanOut {
    pub fn new(sinks: Vec<Arc<dyn TrustEventSink>>) -> Self {
        Self(sinks)
    }
}

impl TrustEventSink for FanOut {
    fn record(&self, event: TrustEvent) {
        for sink in &self.0 {
            sink.record(event.clone());
        }
    }
}

/// Keeps every event in memory, for tests and tools that look at them
/// afterwards.
#[derive(Debug, Default)]
pub struct MemorySink {
    events: Mutex<Vec<TrustEvent>>,
}

impl MemorySink {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event recorded so far, oldest first.
    pub fn events(&self) -> Vec<TrustEvent> {
        self.events
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl TrustEventSink for MemorySink {
    fn record(&self, event: TrustEvent) {
        self.events
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(event);
    }
}
