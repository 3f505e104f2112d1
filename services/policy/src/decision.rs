//! The outcome of a decision: for each field class, allowed or denied with
//! the reason, so an answer can say what was withheld and why; and whether
//! it was granted by break-the-glass, so the caller audits it as an override
//! and opens a review item.

use flagnet_core::{FieldClass, FieldClassSet};

/// Why a field class was withheld.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// the access policy does not allow it to this role, agency and purpose
    Policy,
    /// an active consent exists but does not cover this class
    Consent,
    /// the subject has no active consent that covers this request
    NoConsent,
    /// the flag lapsed, is not active, or its time-bound basis ended
    Lifecycle,
}

impl DenyReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::Policy => "policy",
            DenyReason::Consent => "consent",
            DenyReason::NoConsent => "no_consent",
            DenyReason::Lifecycle => "lifecycle",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassDecision {
    Allowed,
    Denied(DenyReason),
}

/// The decision for one flag: one verdict per field class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disclosure {
    verdicts: [ClassDecision; 6],
    is_override: bool,
}

impl Disclosure {
    /// Every class denied for the same reason.
    pub fn denied_all(reason: DenyReason) -> Self {
        Self {
            verdicts: [ClassDecision::Denied(reason); 6],
            is_override: false,
        }
    }

    /// Break-the-glass: allowed wherever `policy` allows the override, without
    /// the subject's consent; the rest denied by policy. Marked as an override
    /// when anything at all is allowed.
    pub fn break_the_glass(policy: FieldClassSet) -> Self {
        let verdicts = FieldClass::ALL.map(|class| {
            if policy.contains(class) {
                ClassDecision::Allowed
            } else {
                ClassDecision::Denied(DenyReason::Policy)
            }
        });
        Self {
            verdicts,
            is_override: !policy.is_empty(),
        }
    }

    /// Whether this disclosure was granted by break-the-glass
    /// (`emergency_override`) rather than by the subject's consent. The caller
    /// must audit it as an override, with the written reason, and open a
    /// review item for the privacy officer. Never true when nothing is allowed.
    pub fn is_override(&self) -> bool {
        debug_assert!(!self.is_override || self.verdicts.contains(&ClassDecision::Allowed));
        self.is_override
    }

    /// Allowed where `policy` and `consent` both allow; otherwise denied,
    /// naming policy first (the consent cannot widen what policy refuses).
    pub fn from_sets(policy: FieldClassSet, consent: FieldClassSet) -> Self {
        let verdicts = FieldClass::ALL.map(|class| match (policy.contains(class), consent.contains(class)) {
            (true, true) => ClassDecision::Allowed,
            (false, _) => ClassDecision::Denied(DenyReason::Policy),
            (true, false) => ClassDecision::Denied(DenyReason::Consent),
        });
        Self {
            verdicts,
            is_override: false,
        }
    }

    pub fn verdict(&self, class: FieldClass) -> ClassDecision {
        self.verdicts[FieldClass::ALL.iter().position(|c| *c == class).unwrap_or_default()]
    }

    pub fn is_allowed(&self, class: FieldClass) -> bool {
        self.verdict(class) == ClassDecision::Allowed
    }

    /// Whether anything at all may be said: without presence the answer is
    /// the same as no match.
    pub fn discloses_presence(&self) -> bool {
        self.is_allowed(FieldClass::Presence)
    }

    pub fn allowed(&self) -> FieldClassSet {
        FieldClass::ALL
            .into_iter()
            .filter(|class| self.is_allowed(*class))
            .collect()
    }

    pub fn withheld(&self) -> Vec<(FieldClass, DenyReason)> {
        FieldClass::ALL
            .into_iter()
            .filter_map(|class| match self.verdict(class) {
                ClassDecision::Denied(reason) => Some((class, reason)),
                ClassDecision::Allowed => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_is_named_before_consent() {
        let policy: FieldClassSet = [FieldClass::Presence, FieldClass::Response].into_iter().collect();
        let consent: FieldClassSet = [FieldClass::Presence, FieldClass::Clinical].into_iter().collect();
        let disclosure = Disclosure::from_sets(policy, consent);
        assert!(disclosure.discloses_presence());
        assert_eq!(
            disclosure.verdict(FieldClass::Response),
            ClassDecision::Denied(DenyReason::Consent)
        );
        assert_eq!(
            disclosure.verdict(FieldClass::Clinical),
            ClassDecision::Denied(DenyReason::Policy)
        );
        assert_eq!(disclosure.withheld().len(), 5);
        assert!(!disclosure.is_override());
        assert!(!Disclosure::denied_all(DenyReason::NoConsent).discloses_presence());
    }

    #[test]
    fn break_the_glass_is_marked_only_when_it_grants_something() {
        let policy: FieldClassSet = [FieldClass::Presence, FieldClass::Clinical].into_iter().collect();
        let granted = Disclosure::break_the_glass(policy);
        assert!(granted.is_override());
        assert_eq!(granted.allowed(), policy);
        assert_eq!(
            granted.verdict(FieldClass::Response),
            ClassDecision::Denied(DenyReason::Policy)
        );
        let refused = Disclosure::break_the_glass(FieldClassSet::EMPTY);
        assert!(!refused.is_override());
        assert_eq!(refused, Disclosure::denied_all(DenyReason::Policy));
    }
}
