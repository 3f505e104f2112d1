//! Encounters: an officer of any agency met a flagged subject. The report is
//! delivered to the flag's owner agency, stored there durably, and pushed to
//! its liaisons as an alert with a cursor, so a liaison who reconnects gets
//! what they missed, in order, once.

use crate::error::{CoreError, CoreResult};
use crate::flag::check_text;
use crate::identifier::{AgencyId, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// The longest coarse location accepted, in bytes.
pub const MAX_LOCATION_LEN: usize = 120;
/// The longest narrative accepted, in bytes.
pub const MAX_NARRATIVE_LEN: usize = 2000;

/// One encounter report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encounter {
    pub id: Uuid,
    pub flag_id: Uuid,
    pub owner: AgencyId,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub location: String,
    pub disposition: String,
    pub narrative: String,
    pub reporter_agency: AgencyId,
    pub reporter_user: UserId,
    pub incident_id: String,
}

impl Encounter {
    /// Checks the free-text parts; the error names the field.
    pub fn validate(&self) -> CoreResult<()> {
        let bounded = |field: &str, value: &str, max: usize, required: bool| -> CoreResult<()> {
            check_text(field, value)?;
            if value.len() > max {
                return Err(CoreError::invalid(field, format!("must be at most {max} bytes")));
            }
            if required && value.trim().is_empty() {
                return Err(CoreError::invalid(field, "is required"));
            }
            Ok(())
        };
        bounded("encounter.location", &self.location, MAX_LOCATION_LEN, true)?;
        bounded("encounter.disposition", &self.disposition, MAX_LOCATION_LEN, true)?;
        bounded("encounter.narrative", &self.narrative, MAX_NARRATIVE_LEN, false)?;
        bounded("encounter.incident_id", &self.incident_id, 64, false)?;
        Ok(())
    }
}

/// An encounter as stored at the owner, with its place in the alert stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// strictly increasing per owner node
    pub cursor: u64,
    pub encounter: Encounter,
    pub received_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn encounter() -> Encounter {
        Encounter {
            id: Uuid::nil(),
            flag_id: Uuid::nil(),
            owner: AgencyId::parse("phelps-so").unwrap(),
            occurred_at: datetime!(2026-12-01 3:00 UTC),
            location: "Rolla, 10th St & Pine".into(),
            disposition: "transported for 96-hour evaluation".into(),
            narrative: "calm on arrival".into(),
            reporter_agency: AgencyId::parse("pulaski-so").unwrap(),
            reporter_user: UserId::parse("officer1").unwrap(),
            incident_id: "CAD-1".into(),
        }
    }

    #[test]
    fn validation_names_the_field() {
        encounter().validate().unwrap();
        let mut long = encounter();
        long.location = "x".repeat(MAX_LOCATION_LEN + 1);
        assert!(long.validate().unwrap_err().to_string().contains("encounter.location"));
        let mut empty = encounter();
        empty.disposition = " ".into();
        assert!(
            empty
                .validate()
                .unwrap_err()
                .to_string()
                .contains("encounter.disposition")
        );
        let mut control = encounter();
        control.narrative = "a\u{1b}[31m".into();
        assert!(
            control
                .validate()
                .unwrap_err()
                .to_string()
                .contains("encounter.narrative")
        );
    }
}
