//! Break-the-glass review items. An access granted under purpose
//! `emergency_override` is disclosed at once, and leaves an item here for
//! the owner agency's privacy officer to review: who, what, why, when.

use crate::error::{CoreError, CoreResult};
use crate::field_class::FieldClass;
use crate::flag::check_text;
use crate::identifier::{AgencyId, RoleName, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// One override to review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewItem {
    pub id: Uuid,
    /// the disclosure id, as in both nodes' audit logs
    pub request_id: Uuid,
    /// the agency whose flag was disclosed (and whose privacy officer reviews)
    pub owner: AgencyId,
    pub flag_id: Uuid,
    pub actor_agency: AgencyId,
    pub actor_user: UserId,
    pub actor_roles: Vec<RoleName>,
    pub field_classes: Vec<FieldClass>,
    /// the written nature of the emergency
    pub reason: String,
    pub incident_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub resolution: Option<ReviewResolution>,
}

/// How a privacy officer closed a review item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewResolution {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub by: String,
    /// justified, or not (and then followed up outside flagnet)
    pub justified: bool,
    pub note: String,
}

impl ReviewResolution {
    pub fn validate(&self) -> CoreResult<()> {
        check_text("note", &self.note)?;
        if self.note.trim().is_empty() {
            return Err(CoreError::invalid("note", "is required"));
        }
        if self.note.len() > 2000 {
            return Err(CoreError::invalid("note", "must be at most 2000 bytes"));
        }
        Ok(())
    }
}
