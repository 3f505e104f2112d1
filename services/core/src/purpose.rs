//! Purposes of use. Every lookup names one; policy and consent are granted
//! per purpose.

use crate::error::{CoreError, CoreResult};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a person asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// a live call or a scene
    EmergencyResponse,
    /// a welfare check that is not an emergency
    WelfareCheck,
    /// a liaison following up after an encounter
    CrisisFollowup,
    /// break-the-glass: more than the normal decision, with a written reason
    EmergencyOverride,
}

impl Purpose {
    pub const ALL: [Purpose; 4] = [
        Purpose::EmergencyResponse,
        Purpose::WelfareCheck,
        Purpose::CrisisFollowup,
        Purpose::EmergencyOverride,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::EmergencyResponse => "emergency_response",
            Purpose::WelfareCheck => "welfare_check",
            Purpose::CrisisFollowup => "crisis_followup",
            Purpose::EmergencyOverride => "emergency_override",
        }
    }

    pub fn parse(value: &str) -> CoreResult<Self> {
        if value.is_empty() {
            return Err(CoreError::invalid("purpose", "is required"));
        }
        Purpose::ALL
            .into_iter()
            .find(|purpose| purpose.as_str() == value)
            .ok_or_else(|| {
                CoreError::invalid(
                    "purpose",
                    "unknown purpose; expected one of emergency_response, welfare_check, crisis_followup, emergency_override",
                )
            })
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_and_refuses_the_rest() {
        for purpose in Purpose::ALL {
            assert_eq!(Purpose::parse(purpose.as_str()).unwrap(), purpose);
        }
        assert!(Purpose::parse("").unwrap_err().to_string().contains("required"));
        assert!(Purpose::parse("curiosity").is_err());
        assert!(Purpose::parse("emergency_response\0").is_err());
    }
}
