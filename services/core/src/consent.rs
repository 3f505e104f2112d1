//! Consents: what the subject (or a guardian, or a recorded legal authority)
//! allows to be disclosed, to whom, for what, and for how long. A consent
//! cannot become active without the elements of 42 CFR 2.31.

use crate::error::{CoreError, CoreResult};
use crate::field_class::FieldClassSet;
use crate::flag::check_text;
use crate::identifier::{AgencyId, RoleName};
use crate::purpose::Purpose;
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentBasis {
    Subject,
    Guardian,
    LegalAuthority,
}

/// Which disclosures a consent covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentScope {
    /// agency ids or region names
    pub recipients: Vec<AgencyId>,
    pub roles: Vec<RoleName>,
    pub purposes: Vec<Purpose>,
    pub field_classes: FieldClassSetSerde,
}

/// A field class set as it is stored: a list of names.
pub type FieldClassSetSerde = Vec<crate::field_class::FieldClass>;

impl ConsentScope {
    pub fn field_class_set(&self) -> FieldClassSet {
        self.field_classes.iter().copied().collect()
    }
}

/// The elements of 42 CFR 2.31 written on the consent form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentElements {
    /// the name of the subject
    pub subject_name: String,
    /// who granted it, when not the subject
    pub granted_by: String,
    /// who may disclose
    pub disclosing_party: String,
    /// how much and what kind of information
    pub information_description: String,
    /// the purpose of the disclosure
    pub purpose_description: String,
    /// how to revoke
    pub revocation_instructions: String,
    /// an expiry event, when there is no expiry date
    pub expiry_event: String,
    /// reference to the signed form
    pub signature_reference: String,
    /// the date of signature
    pub signed_on: Option<Date>,
}

/// A consent to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConsent {
    pub flag_id: Uuid,
    pub owner: AgencyId,
    pub basis: ConsentBasis,
    pub elements: ConsentElements,
    pub scope: ConsentScope,
    pub valid_from: OffsetDateTime,
    pub valid_until: Option<OffsetDateTime>,
    pub recorded_by: String,
}

impl NewConsent {
    /// Refuses a consent that lacks any element of 42 CFR 2.31; the error
    /// names the missing element.
    pub fn validate(&self) -> CoreResult<()> {
        let elements = &self.elements;
        let required = |field: &str, value: &str| -> CoreResult<()> {
            check_text(field, value)?;
            if value.trim().is_empty() {
                return Err(CoreError::invalid(field, "is required by 42 CFR 2.31"));
            }
            Ok(())
        };
        required("consent.subject_name", &elements.subject_name)?;
        if self.basis != ConsentBasis::Subject {
            required("consent.granted_by", &elements.granted_by)?;
        } else {
            check_text("consent.granted_by", &elements.granted_by)?;
        }
        required("consent.disclosing_party", &elements.disclosing_party)?;
        required("consent.information_description", &elements.information_description)?;
        if self.scope.field_classes.is_empty() {
            return Err(CoreError::invalid(
                "consent.scope.field_classes",
                "must name at least one field class",
            ));
        }
        if self.scope.recipients.is_empty() {
            return Err(CoreError::invalid(
                "consent.scope.recipients",
                "must name at least one recipient agency or region",
            ));
        }
        if self.scope.roles.is_empty() {
            return Err(CoreError::invalid("consent.scope.roles", "must name at least one role"));
        }
        required("consent.purpose_description", &elements.purpose_description)?;
        if self.scope.purposes.is_empty() {
            return Err(CoreError::invalid(
                "consent.scope.purposes",
                "must name at least one purpose",
            ));
        }
        required("consent.revocation_instructions", &elements.revocation_instructions)?;
        check_text("consent.expiry_event", &elements.expiry_event)?;
        match self.valid_until {
            None if elements.expiry_event.trim().is_empty() => {
                return Err(CoreError::invalid(
                    "consent.valid_until",
                    "an expiry date or an expiry event is required by 42 CFR 2.31",
                ));
            }
            Some(until) if until <= self.valid_from => {
                return Err(CoreError::invalid("consent.valid_until", "must be after valid_from"));
            }
            _ => {}
        }
        required("consent.signature_reference", &elements.signature_reference)?;
        if elements.signed_on.is_none() {
            return Err(CoreError::invalid(
                "consent.signed_on",
                "the date of signature is required by 42 CFR 2.31",
            ));
        }
        Ok(())
    }
}

/// A revocation of a consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub by: String,
    pub reason: String,
}

/// A recorded consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub id: Uuid,
    pub flag_id: Uuid,
    pub owner: AgencyId,
    pub basis: ConsentBasis,
    pub elements: ConsentElements,
    pub scope: ConsentScope,
    pub valid_from: OffsetDateTime,
    pub valid_until: Option<OffsetDateTime>,
    pub recorded_at: OffsetDateTime,
    pub recorded_by: String,
    pub revocation: Option<Revocation>,
}

impl Consent {
    /// Active from `valid_from` (inclusive) until `valid_until` (exclusive),
    /// unless revoked at or before `now`.
    pub fn is_active_at(&self, now: OffsetDateTime) -> bool {
        if self.revocation.as_ref().is_some_and(|revocation| revocation.at <= now) {
            return false;
        }
        if now < self.valid_from {
            return false;
        }
        self.valid_until.is_none_or(|until| now < until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field_class::FieldClass;
    use time::macros::{date, datetime};

    pub(crate) fn complete_consent() -> NewConsent {
        NewConsent {
            flag_id: Uuid::nil(),
            owner: AgencyId::parse("phelps-so").unwrap(),
            basis: ConsentBasis::Subject,
            elements: ConsentElements {
                subject_name: "Jordan Avery".into(),
                granted_by: String::new(),
                disclosing_party: "Phelps County Sheriff's Office".into(),
                information_description: "crisis flag: presence, response and safety notes".into(),
                purpose_description: "to send the right responder in a crisis".into(),
                revocation_instructions: "in writing to the records unit".into(),
                expiry_event: String::new(),
                signature_reference: "form-2026-0113".into(),
                signed_on: Some(date!(2026 - 01 - 13)),
            },
            scope: ConsentScope {
                recipients: vec![AgencyId::parse("south-central-mo").unwrap()],
                roles: vec![RoleName::parse("dispatcher").unwrap()],
                purposes: vec![Purpose::EmergencyResponse],
                field_classes: vec![FieldClass::Presence],
            },
            valid_from: datetime!(2026-01-13 0:00 UTC),
            valid_until: Some(datetime!(2027-01-13 0:00 UTC)),
            recorded_by: "spiffe://flagnet.demo/agency/phelps-so/user/records1".into(),
        }
    }

    #[test]
    fn a_complete_consent_validates() {
        complete_consent().validate().unwrap();
    }

    #[test]
    fn each_missing_element_is_named() {
        type ConsentEdit = Box<dyn Fn(&mut NewConsent)>;
        let cases: Vec<(&str, ConsentEdit)> = vec![
            ("consent.subject_name", Box::new(|c| c.elements.subject_name.clear())),
            (
                "consent.disclosing_party",
                Box::new(|c| c.elements.disclosing_party = "  ".into()),
            ),
            (
                "consent.information_description",
                Box::new(|c| c.elements.information_description.clear()),
            ),
            ("consent.scope.recipients", Box::new(|c| c.scope.recipients.clear())),
            (
                "consent.purpose_description",
                Box::new(|c| c.elements.purpose_description.clear()),
            ),
            ("consent.scope.purposes", Box::new(|c| c.scope.purposes.clear())),
            (
                "consent.revocation_instructions",
                Box::new(|c| c.elements.revocation_instructions.clear()),
            ),
            ("consent.valid_until", Box::new(|c| c.valid_until = None)),
            (
                "consent.signature_reference",
                Box::new(|c| c.elements.signature_reference.clear()),
            ),
            ("consent.signed_on", Box::new(|c| c.elements.signed_on = None)),
            ("consent.granted_by", Box::new(|c| c.basis = ConsentBasis::Guardian)),
            (
                "consent.scope.field_classes",
                Box::new(|c| c.scope.field_classes.clear()),
            ),
        ];
        for (expected_field, break_it) in cases {
            let mut consent = complete_consent();
            break_it(&mut consent);
            match consent.validate() {
                Err(CoreError::InvalidArgument { field, .. }) => assert_eq!(field, expected_field),
                other => panic!("{expected_field}: expected invalid argument, got {other:?}"),
            }
        }
    }

    #[test]
    fn an_expiry_event_stands_in_for_a_date() {
        let mut consent = complete_consent();
        consent.valid_until = None;
        consent.elements.expiry_event = "discharge from the program".into();
        consent.validate().unwrap();
    }

    #[test]
    fn activity_boundaries() {
        let new = complete_consent();
        let mut consent = Consent {
            id: Uuid::nil(),
            flag_id: new.flag_id,
            owner: new.owner,
            basis: new.basis,
            elements: new.elements,
            scope: new.scope,
            valid_from: new.valid_from,
            valid_until: new.valid_until,
            recorded_at: new.valid_from,
            recorded_by: new.recorded_by,
            revocation: None,
        };
        let from = consent.valid_from;
        let until = consent.valid_until.unwrap();
        let second = time::Duration::seconds(1);
        assert!(!consent.is_active_at(from - second));
        assert!(consent.is_active_at(from));
        assert!(consent.is_active_at(from + second));
        assert!(consent.is_active_at(until - second));
        assert!(!consent.is_active_at(until));
        let revoked_at = datetime!(2026-05-01 12:00 UTC);
        consent.revocation = Some(Revocation {
            at: revoked_at,
            by: "x".into(),
            reason: "asked".into(),
        });
        assert!(consent.is_active_at(revoked_at - second));
        assert!(!consent.is_active_at(revoked_at));
    }
}
