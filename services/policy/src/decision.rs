//! The outcome of a decision: for each field class, allowed or denied with
//! the reason, so an answer can say what was withheld and why.

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
}

impl Disclosure {
    /// Every class denied for the same reason.
    pub fn denied_all(reason: DenyReason) -> Self {
        Self {
            verdicts: [ClassDecision::Denied(reason); 6],
        }
    }

    /// Allowed where `policy` and `consent` both allow; otherwise denied,
    /// naming policy first (the consent cannot widen what policy refuses).
    pub fn from_sets(policy: FieldClassSet, consent: FieldClassSet) -> Self {
        let verdicts = FieldClass::ALL.map(|class| match (policy.contains(class), consent.contains(class)) {
            (true, true) => ClassDecision::Allowed,
            (false, _) => ClassDecision::Denied(DenyReason::Policy),
            (true, false) => ClassDecision::Denied(DenyReason::Consent),
        });
        Self { verdicts }
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
        assert!(!Disclosure::denied_all(DenyReason::NoConsent).discloses_presence());
    }
}
