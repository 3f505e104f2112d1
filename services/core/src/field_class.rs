//! Field classes: the unit of disclosure that policy and consent speak about.

use crate::error::{CoreError, CoreResult};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One class of a flag's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldClass {
    Presence,
    Response,
    Safety,
    Contacts,
    Clinical,
    Identity,
}

impl FieldClass {
    /// Every class, in the order answers list them.
    pub const ALL: [FieldClass; 6] = [
        FieldClass::Presence,
        FieldClass::Response,
        FieldClass::Safety,
        FieldClass::Contacts,
        FieldClass::Clinical,
        FieldClass::Identity,
    ];

    /// The name used in policies, consents and the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldClass::Presence => "presence",
            FieldClass::Response => "response",
            FieldClass::Safety => "safety",
            FieldClass::Contacts => "contacts",
            FieldClass::Clinical => "clinical",
            FieldClass::Identity => "identity",
        }
    }

    pub fn parse(value: &str) -> CoreResult<Self> {
        FieldClass::ALL
            .into_iter()
            .find(|class| class.as_str() == value)
            .ok_or_else(|| {
                CoreError::invalid(
                    "field_class",
                    format!(
                        "unknown field class {value:?}; expected one of presence, response, safety, contacts, clinical, identity"
                    ),
                )
            })
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for FieldClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of field classes, as a bit set: cheap to copy and intersect.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FieldClassSet(u8);

impl FieldClassSet {
    pub const EMPTY: FieldClassSet = FieldClassSet(0);

    pub fn all() -> Self {
        FieldClass::ALL.into_iter().collect()
    }

    pub fn contains(self, class: FieldClass) -> bool {
        self.0 & class.bit() != 0
    }

    pub fn insert(&mut self, class: FieldClass) {
        self.0 |= class.bit();
    }

    #[must_use]
    pub fn intersection(self, other: FieldClassSet) -> FieldClassSet {
        FieldClassSet(self.0 & other.0)
    }

    #[must_use]
    pub fn union(self, other: FieldClassSet) -> FieldClassSet {
        FieldClassSet(self.0 | other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = FieldClass> {
        FieldClass::ALL.into_iter().filter(move |class| self.contains(*class))
    }
}

impl FromIterator<FieldClass> for FieldClassSet {
    fn from_iter<I: IntoIterator<Item = FieldClass>>(iter: I) -> Self {
        let mut set = FieldClassSet::EMPTY;
        for class in iter {
            set.insert(class);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for class in FieldClass::ALL {
            assert_eq!(FieldClass::parse(class.as_str()).unwrap(), class);
        }
        assert!(FieldClass::parse("Clinical").is_err());
        assert!(FieldClass::parse("").is_err());
    }

    #[test]
    fn set_operations() {
        let dispatcher: FieldClassSet = [FieldClass::Presence, FieldClass::Response].into_iter().collect();
        let consent: FieldClassSet = [FieldClass::Presence, FieldClass::Clinical].into_iter().collect();
        let both = dispatcher.intersection(consent);
        assert_eq!(both.iter().collect::<Vec<_>>(), vec![FieldClass::Presence]);
        assert!(!both.contains(FieldClass::Clinical));
        assert_eq!(FieldClassSet::all().iter().count(), 6);
        assert!(FieldClassSet::EMPTY.is_empty());
    }
}
