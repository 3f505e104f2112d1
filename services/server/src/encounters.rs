//! Encounters and alerts. An officer of any agency reports an encounter with
//! a subject found by a lookup; the home node stores it in its delivery queue
//! and offers it to the owner until the owner acknowledges it (idempotent by
//! encounter id). The owner stores it as an alert and pushes it to its
//! liaisons' `WatchAlerts` streams; a liaison who reconnects with a cursor
//! gets what was missed, in order, once.

use crate::caller::{Caller, require_person};
use crate::flag_index::FlagIndexCore;
use flagnet_core::{Alert, CoreError, CoreResult, Encounter};
use flagnet_proto::v1 as pb;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use uuid::Uuid;

/// The role that may report encounters (and every role inheriting it).
pub const REPORTING_ROLE: &str = "officer";
/// The role that receives alerts.
pub const ALERTED_ROLE: &str = "liaison";
/// How many alerts one backlog read fetches.
const BACKLOG_PAGE: usize = 200;
/// How many queued encounters one delivery round offers.
const DELIVERY_BATCH: usize = 100;
/// The longest one delivery call may take.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

pub fn encounter_message(encounter: &Encounter) -> pb::Encounter {
    pb::Encounter {
        encounter_id: encounter.id.to_string(),
        flag_id: encounter.flag_id.to_string(),
        owner_agency: encounter.owner.to_string(),
        occurred_at: crate::convert::instant_text(encounter.occurred_at),
        location: encounter.location.clone(),
        disposition: encounter.disposition.clone(),
        narrative: encounter.narrative.clone(),
        reporter_agency: encounter.reporter_agency.to_string(),
        reporter_user: encounter.reporter_user.to_string(),
        incident_id: encounter.incident_id.clone(),
    }
}

pub fn alert_message(alert: &Alert) -> pb::Alert {
    pb::Alert {
        cursor: alert.cursor,
        encounter: Some(encounter_message(&alert.encounter)),
        received_at: crate::convert::instant_text(alert.received_at),
    }
}

impl FlagIndexCore {
    /// An officer's report: stored here if this node owns the flag, otherwise
    /// queued and offered to the owner at once. Returns whether the owner has it.
    pub async fn report_encounter(&self, caller: &Caller, encounter: Encounter) -> CoreResult<bool> {
        require_person(caller)?;
        if !self.holds_role(caller, REPORTING_ROLE) {
            return Err(CoreError::PermissionDenied(
                "reporting encounters needs an officer role".into(),
            ));
        }
        encounter.validate()?;
        if encounter.owner == self.agency {
            self.receive_encounter(encounter).await?;
            return Ok(true);
        }
        if self.peers.by_agency(&encounter.owner).is_none() {
            return Err(CoreError::invalid(
                "encounter.owner_agency",
                format!("{} is not a peer of this node", encounter.owner),
            ));
        }
        self.store.enqueue_delivery(encounter.clone(), self.clock.now()).await?;
        tracing::info!(encounter_id = %encounter.id, owner = %encounter.owner, actor = %caller.spiffe_id(), "encounter queued");
        Ok(self.deliver(&encounter).await)
    }

    /// The owner's side: store once, then push to live watchers.
    pub async fn receive_encounter(&self, encounter: Encounter) -> CoreResult<bool> {
        let (alert, newly_stored) = self.store.store_alert(encounter, self.clock.now()).await?;
        if newly_stored {
            tracing::info!(encounter_id = %alert.encounter.id, cursor = alert.cursor, "encounter alert stored");
            // no receiver is not an error: watchers read the backlog when they connect
            let _ = self.alerts.send(alert);
        }
        Ok(newly_stored)
    }

    /// Offers one queued encounter to its owner; true once the owner has it.
    async fn deliver(&self, encounter: &Encounter) -> bool {
        let Some(peer) = self.peers.by_agency(&encounter.owner) else {
            return false;
        };
        let mut request = tonic::Request::new(pb::DeliverEncounterRequest {
            encounter: Some(encounter_message(encounter)),
        });
        request.set_timeout(DELIVERY_TIMEOUT);
        match tokio::time::timeout(DELIVERY_TIMEOUT, peer.client().deliver_encounter(request)).await {
            Ok(Ok(_)) => match self.store.mark_delivered(encounter.id, self.clock.now()).await {
                Ok(()) | Err(CoreError::NotFound(_)) => {
                    tracing::info!(encounter_id = %encounter.id, owner = %encounter.owner, "encounter delivered");
                    true
                }
                Err(error) => {
                    tracing::warn!(encounter_id = %encounter.id, %error, "encounter delivered but not marked; it will be offered again");
                    true
                }
            },
            Ok(Err(status)) => {
                tracing::warn!(encounter_id = %encounter.id, owner = %encounter.owner, code = ?status.code(), message = status.message(), "encounter delivery refused; will retry");
                false
            }
            Err(_) => {
                tracing::warn!(encounter_id = %encounter.id, owner = %encounter.owner, "encounter delivery timed out; will retry");
                false
            }
        }
    }

    /// One round of redelivery of everything still queued.
    pub async fn deliver_pending(&self) -> usize {
        let pending = match self.store.pending_deliveries(DELIVERY_BATCH).await {
            Ok(pending) => pending,
            Err(error) => {
                tracing::warn!(%error, "cannot read the encounter delivery queue");
                return 0;
            }
        };
        let mut delivered = 0;
        for encounter in &pending {
            if self.deliver(encounter).await {
                delivered += 1;
            }
        }
        delivered
    }

    pub fn require_liaison(&self, caller: &Caller) -> CoreResult<()> {
        self.require_own_agency_role(
            caller,
            ALERTED_ROLE,
            "encounter alerts go to the owner agency's liaisons",
        )
    }

    /// Streams alerts after `after_cursor`: the backlog from the store, then
    /// live ones, each exactly once and in cursor order.
    pub fn watch_alerts(&self, after_cursor: u64) -> mpsc::Receiver<Result<pb::Alert, CoreError>> {
        let (sender, receiver) = mpsc::channel(64);
        let mut live = self.alerts.subscribe();
        let core = self.clone();
        tokio::spawn(async move {
            let mut last = after_cursor;
            loop {
                // backlog first; subscribing before reading means nothing falls between
                loop {
                    let page = match core.store.alerts_after(&core.agency, last, BACKLOG_PAGE).await {
                        Ok(page) => page,
                        Err(error) => {
                            let _ = sender.send(Err(error)).await;
                            return;
                        }
                    };
                    let full = page.len() == BACKLOG_PAGE;
                    for alert in page {
                        last = alert.cursor;
                        if sender.send(Ok(alert_message(&alert))).await.is_err() {
                            return;
                        }
                    }
                    if !full {
                        break;
                    }
                }
                loop {
                    tokio::select! {
                        received = live.recv() => match received {
                            Ok(alert) if alert.cursor <= last => continue,
                            Ok(alert) if alert.cursor == last + 1 => {
                                last = alert.cursor;
                                if sender.send(Ok(alert_message(&alert))).await.is_err() {
                                    return;
                                }
                            }
                            // a gap (another owner's alert in the sequence, or lag): read the store again
                            Ok(_) | Err(RecvError::Lagged(_)) => break,
                            Err(RecvError::Closed) => return,
                        },
                        () = sender.closed() => return,
                    }
                }
            }
        });
        receiver
    }
}

/// Reads a reported encounter; the reporter is always the caller.
pub fn encounter_from_report(caller: &Caller, message: Option<pb::Encounter>) -> CoreResult<Encounter> {
    let message = crate::convert::required("encounter", message)?;
    encounter_from_message(
        message,
        caller.identity.agency.clone(),
        caller.identity.user_id().cloned(),
    )
}

/// Reads an encounter message; `reporter_agency` is what the transport
/// proved, never what the message says.
pub fn encounter_from_message(
    message: pb::Encounter,
    reporter_agency: flagnet_core::AgencyId,
    reporter_user: Option<flagnet_core::UserId>,
) -> CoreResult<Encounter> {
    let id = crate::convert::parse_uuid("encounter.encounter_id", &message.encounter_id)?;
    let flag_id = crate::convert::parse_uuid("encounter.flag_id", &message.flag_id)?;
    let owner = flagnet_core::AgencyId::parse(&message.owner_agency)
        .map_err(|error| CoreError::invalid("encounter.owner_agency", error.to_string()))?;
    let occurred_at = crate::convert::required_instant("encounter.occurred_at", &message.occurred_at)?;
    if !message.incident_id.is_empty() {
        crate::convert::incident_id(&message.incident_id).map_err(|error| error.under("encounter"))?;
    }
    let reporter_user = match reporter_user {
        Some(user) => user,
        None => flagnet_core::UserId::parse(&message.reporter_user)
            .map_err(|error| CoreError::invalid("encounter.reporter_user", error.to_string()))?,
    };
    let encounter = Encounter {
        id,
        flag_id,
        owner,
        occurred_at,
        location: message.location,
        disposition: message.disposition,
        narrative: message.narrative,
        reporter_agency,
        reporter_user,
        incident_id: message.incident_id,
    };
    encounter.validate()?;
    Ok(encounter)
}

/// Whether `id` parses; for handlers that echo an id back.
pub fn encounter_id_text(id: Uuid) -> String {
    id.to_string()
}
