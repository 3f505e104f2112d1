//! Flags: what an agency records about a subject, split into field classes,
//! with a lifecycle (status, review date, time-bound basis) that decides
//! whether anything may be disclosed at all.

use crate::blind_token::SubjectToken;
use crate::error::{CoreError, CoreResult};
use crate::identifier::AgencyId;
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

/// The longest free-text field accepted in flag content, in bytes.
pub const MAX_TEXT_LEN: usize = 4096;
/// The most entries accepted in any list of a flag (contacts, conditions, holds, keys).
pub const MAX_LIST_LEN: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagStatus {
    Active,
    Unverified,
    Lapsed,
    Revoked,
    Archived,
}

impl FlagStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FlagStatus::Active => "active",
            FlagStatus::Unverified => "unverified",
            FlagStatus::Lapsed => "lapsed",
            FlagStatus::Revoked => "revoked",
            FlagStatus::Archived => "archived",
        }
    }
}

/// A basis that ends at a known time, such as a 96-hour evaluation hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeBoundBasis {
    pub kind: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub extended_until: Option<OffsetDateTime>,
}

impl TimeBoundBasis {
    /// When the basis ends, counting a recorded extension.
    pub fn ends_at(&self) -> Option<OffsetDateTime> {
        match (self.expires_at, self.extended_until) {
            (Some(expires), Some(extended)) => Some(expires.max(extended)),
            (expires, extended) => expires.or(extended),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecommendedResponse {
    #[default]
    Unspecified,
    CitOfficer,
    CoResponder,
    Liaison,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PresenceContent {
    pub contact_name: String,
    pub contact_phone: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ResponseContent {
    pub recommended: RecommendedResponse,
    pub approach_guidance: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SafetyContent {
    pub notes: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ContactEntry {
    pub name: String,
    pub relationship: String,
    pub phone: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HoldEntry {
    pub date: String,
    pub kind: String,
    pub facility: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ClinicalContent {
    pub conditions: Vec<String>,
    pub care_provider: String,
    pub crisis_plan: String,
    pub hold_history: Vec<HoldEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PostalAddress {
    pub street: String,
    pub unit: String,
    pub city: String,
    pub region: String,
    pub postal_code: String,
}

/// The subject as the records clerk entered them. Stored encrypted; only the
/// blind tokens of these keys are searchable.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SubjectRecord {
    pub given_name: String,
    pub family_name: String,
    pub birth_date: String,
    pub phones: Vec<String>,
    pub addresses: Vec<PostalAddress>,
}

/// A flag's content, one member per field class (identity is the subject record).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FlagContent {
    pub subject: SubjectRecord,
    pub presence: PresenceContent,
    pub response: ResponseContent,
    pub safety: SafetyContent,
    pub contacts: Vec<ContactEntry>,
    pub clinical: ClinicalContent,
}

impl FlagContent {
    /// Checks lengths and list sizes; the error names the field path.
    pub fn validate(&self) -> CoreResult<()> {
        let texts: [(&str, &str); 9] = [
            ("subject.given_name", &self.subject.given_name),
            ("subject.family_name", &self.subject.family_name),
            ("subject.birth_date", &self.subject.birth_date),
            ("presence.contact_name", &self.presence.contact_name),
            ("presence.contact_phone", &self.presence.contact_phone),
            ("response.approach_guidance", &self.response.approach_guidance),
            ("safety.notes", &self.safety.notes),
            ("clinical.care_provider", &self.clinical.care_provider),
            ("clinical.crisis_plan", &self.clinical.crisis_plan),
        ];
        for (field, value) in texts {
            check_text(field, value)?;
        }
        check_list("subject.phones", self.subject.phones.len())?;
        check_list("subject.addresses", self.subject.addresses.len())?;
        check_list("contacts.contacts", self.contacts.len())?;
        check_list("clinical.conditions", self.clinical.conditions.len())?;
        check_list("clinical.hold_history", self.clinical.hold_history.len())?;
        for (index, contact) in self.contacts.iter().enumerate() {
            for (name, value) in [
                ("name", &contact.name),
                ("relationship", &contact.relationship),
                ("phone", &contact.phone),
            ] {
                check_text(&format!("contacts.contacts[{index}].{name}"), value)?;
            }
        }
        for (index, condition) in self.clinical.conditions.iter().enumerate() {
            check_text(&format!("clinical.conditions[{index}]"), condition)?;
        }
        for (index, hold) in self.clinical.hold_history.iter().enumerate() {
            for (name, value) in [("date", &hold.date), ("kind", &hold.kind), ("facility", &hold.facility)] {
                check_text(&format!("clinical.hold_history[{index}].{name}"), value)?;
            }
        }
        Ok(())
    }
}

/// Refuses over-long text and control characters (other than newline and tab).
pub fn check_text(field: &str, value: &str) -> CoreResult<()> {
    if value.len() > MAX_TEXT_LEN {
        return Err(CoreError::invalid(
            field,
            format!("must be at most {MAX_TEXT_LEN} bytes, got {}", value.len()),
        ));
    }
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(CoreError::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

fn check_list(field: &str, len: usize) -> CoreResult<()> {
    if len > MAX_LIST_LEN {
        return Err(CoreError::invalid(
            field,
            format!("must have at most {MAX_LIST_LEN} entries, got {len}"),
        ));
    }
    Ok(())
}

/// A flag to create (no id) or to replace (with the id of an existing flag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFlag {
    pub id: Option<Uuid>,
    pub owner: AgencyId,
    pub status: FlagStatus,
    pub review_date: Option<Date>,
    pub basis: Option<TimeBoundBasis>,
    pub content: FlagContent,
    pub subject_tokens: Vec<SubjectToken>,
    /// who makes the change (a SPIFFE id)
    pub author: String,
    /// why, kept in the flag's history
    pub reason: String,
}

/// A stored flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    pub id: Uuid,
    pub owner: AgencyId,
    pub status: FlagStatus,
    pub review_date: Option<Date>,
    pub basis: Option<TimeBoundBasis>,
    pub content: FlagContent,
    pub subject_tokens: Vec<SubjectToken>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub updated_by: String,
    pub revision: u64,
}

/// Why a flag's lifecycle keeps it from being disclosed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleBlock {
    /// status is not active
    NotActive(FlagStatus),
    /// the review date has passed without a review
    ReviewOverdue,
    /// the time-bound basis ended with no recorded extension
    BasisExpired,
}

impl Flag {
    /// Whether the flag may be disclosed at `now`, judged by its lifecycle alone.
    pub fn lifecycle_at(&self, now: OffsetDateTime) -> Result<(), LifecycleBlock> {
        if self.status != FlagStatus::Active {
            return Err(LifecycleBlock::NotActive(self.status));
        }
        if let Some(review_date) = self.review_date
            && now.date() > review_date
        {
            return Err(LifecycleBlock::ReviewOverdue);
        }
        if let Some(ends_at) = self.basis.as_ref().and_then(TimeBoundBasis::ends_at)
            && now >= ends_at
        {
            return Err(LifecycleBlock::BasisExpired);
        }
        Ok(())
    }
}

/// One entry of a flag's history: who changed it, when and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagChange {
    pub flag_id: Uuid,
    pub revision: u64,
    pub changed_at: OffsetDateTime,
    pub changed_by: String,
    pub reason: String,
    pub status: FlagStatus,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    fn flag() -> Flag {
        Flag {
            id: Uuid::nil(),
            owner: AgencyId::parse("phelps-so").unwrap(),
            status: FlagStatus::Active,
            review_date: Some(date!(2026 - 06 - 30)),
            basis: None,
            content: FlagContent::default(),
            subject_tokens: vec![],
            created_at: datetime!(2026-01-01 0:00 UTC),
            updated_at: datetime!(2026-01-01 0:00 UTC),
            updated_by: String::new(),
            revision: 1,
        }
    }

    #[test]
    fn review_date_is_the_last_disclosable_day() {
        let flag = flag();
        assert!(flag.lifecycle_at(datetime!(2026-06-30 23:59:59 UTC)).is_ok());
        assert_eq!(
            flag.lifecycle_at(datetime!(2026-07-01 0:00 UTC)),
            Err(LifecycleBlock::ReviewOverdue)
        );
    }

    #[test]
    fn a_hold_expires_unless_extended() {
        let mut flag = flag();
        flag.basis = Some(TimeBoundBasis {
            kind: "96-hour evaluation hold".into(),
            expires_at: Some(datetime!(2026-03-05 12:00 UTC)),
            extended_until: None,
        });
        assert!(flag.lifecycle_at(datetime!(2026-03-05 11:59:59 UTC)).is_ok());
        assert_eq!(
            flag.lifecycle_at(datetime!(2026-03-05 12:00 UTC)),
            Err(LifecycleBlock::BasisExpired)
        );
        flag.basis.as_mut().unwrap().extended_until = Some(datetime!(2026-03-08 12:00 UTC));
        assert!(flag.lifecycle_at(datetime!(2026-03-06 0:00 UTC)).is_ok());
    }

    #[test]
    fn inactive_flags_are_never_disclosable() {
        let mut flag = flag();
        flag.status = FlagStatus::Revoked;
        assert_eq!(
            flag.lifecycle_at(datetime!(2026-01-02 0:00 UTC)),
            Err(LifecycleBlock::NotActive(FlagStatus::Revoked))
        );
    }

    #[test]
    fn content_validation_names_the_field() {
        let mut content = FlagContent::default();
        content.safety.notes = "x".repeat(MAX_TEXT_LEN + 1);
        let error = content.validate().unwrap_err();
        assert!(matches!(error, CoreError::InvalidArgument { ref field, .. } if field == "safety.notes"));
        let mut content = FlagContent::default();
        content.clinical.conditions = vec!["ok".into(), "bad\u{7}".into()];
        let error = content.validate().unwrap_err();
        assert!(matches!(error, CoreError::InvalidArgument { ref field, .. } if field == "clinical.conditions[1]"));
    }
}
