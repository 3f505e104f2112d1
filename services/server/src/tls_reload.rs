//! Keeping the node's TLS trust current without a restart: every
//! `tls.reload_interval_ms` the node re-reads its certificate, key, trust
//! bundle and CRLs and swaps in a new set when they changed and validate
//! whole; SIGHUP does the same at once, even when nothing seems changed.
//! The work itself is [`ReloadingServerConfig::reload`] in the trust crate.
//!
//! Each reload, good or refused, is reported to the node's
//! [`TrustEventSink`], and the gRPC health entry [`TRUST_HEALTH_SERVICE`]
//! says whether the files on disk are in use: `SERVING` when the last
//! attempt loaded, `NOT_SERVING` when it was refused and the node serves on
//! with its last good set (the node's other health entries stay `SERVING`:
//! it still answers). [`TrustReload::status`] gives the detail.
//!
//! This module must never run a reload on an async worker (it reads files
//! and parses certificates), and never stop the node because a reload
//! failed.

use crate::config::NodeConfig;
use flagnet_trust::events::TrustEventSink;
use flagnet_trust::reload::{NodeTrustPaths, ReloadOutcome, ReloadTrigger, ReloadingServerConfig, TrustStatus};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// The health entry of the node's trust files.
pub const TRUST_HEALTH_SERVICE: &str = "flagnet.v1.Trust";

/// The files of the node's trust, as its config names them.
pub fn trust_paths(config: &NodeConfig) -> NodeTrustPaths {
    NodeTrustPaths {
        federation: config.node.federation.clone(),
        agency: config.agency(),
        certificate: config.tls.certificate.clone(),
        private_key: config.tls.private_key.clone(),
        trust_dir: config.tls.trust_dir.clone(),
    }
}

/// Runs reloads and reports them.
#[derive(Debug, Clone)]
pub struct TrustReload {
    reloading: Arc<ReloadingServerConfig>,
    events: Arc<dyn TrustEventSink>,
    health: HealthReporter,
}

impl TrustReload {
    /// Marks the trust health entry `SERVING` (the start's set loaded).
    pub async fn new(
        reloading: Arc<ReloadingServerConfig>,
        events: Arc<dyn TrustEventSink>,
        health: HealthReporter,
    ) -> Self {
        health
            .set_service_status(TRUST_HEALTH_SERVICE, ServingStatus::Serving)
            .await;
        Self {
            reloading,
            events,
            health,
        }
    }

    pub fn status(&self) -> TrustStatus {
        self.reloading.status()
    }

    /// One reload, exactly as the poll and SIGHUP run it: on a blocking
    /// thread, reported as an event and in the health entry.
    pub async fn reload(&self, trigger: ReloadTrigger) -> ReloadOutcome {
        let reloading = self.reloading.clone();
        let outcome = match tokio::task::spawn_blocking(move || reloading.reload(trigger)).await {
            Ok(outcome) => outcome,
            Err(error) => {
                tracing::error!(%error, %trigger, "trust reload task failed; keeping the current set");
                return ReloadOutcome::Unchanged;
            }
        };
        let health = match &outcome {
            ReloadOutcome::Unchanged => None,
            ReloadOutcome::Reloaded(_) => Some(ServingStatus::Serving),
            ReloadOutcome::Refused(_) => Some(ServingStatus::NotServing),
        };
        if let Some(event) = outcome.event() {
            self.events.record(event);
        }
        if let Some(status) = health {
            self.health.set_service_status(TRUST_HEALTH_SERVICE, status).await;
        }
        outcome
    }

    /// Polls every `interval` and reloads on SIGHUP, until the returned
    /// task is dropped. The SIGHUP handler is installed before this returns.
    pub fn spawn(&self, interval: Duration) -> ReloadTask {
        let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(signal) => Some(signal),
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGHUP; trust files are only polled");
                None
            }
        };
        let reload = self.clone();
        ReloadTask(tokio::spawn(async move {
            let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let signalled = async {
                    match hangup.as_mut() {
                        Some(signal) => signal.recv().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = ticker.tick() => {
                        reload.reload(ReloadTrigger::Poll).await;
                    }
                    received = signalled => {
                        if received.is_none() {
                            hangup = None;
                            continue;
                        }
                        tracing::info!("SIGHUP: reloading certificate, trust bundle and crls");
                        reload.reload(ReloadTrigger::Signal).await;
                    }
                }
            }
        }))
    }
}

/// The poll loop; dropping it stops it.
#[derive(Debug)]
pub struct ReloadTask(JoinHandle<()>);

impl Drop for ReloadTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}
