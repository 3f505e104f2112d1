//! Access decisions for flagnet: which field classes of a flag a person with
//! given roles at a given agency may see for a purpose. A disclosure needs both
//! the Casbin policy (`policies/model.conf`, `policies/policy.csv`) and an
//! active consent of the subject that covers the request.
//!
//! Decisions come from an immutable [`PolicySnapshot`]; a new policy builds a
//! new snapshot that is swapped in whole, so no request sees half an edit.
//! Policy tests (`policies/tests/cases.csv`) run against a snapshot before it
//! is trusted; see [`run_policy_tests`]. A privacy officer's edit
//! ([`PolicyEdit`]) becomes a candidate that passes [`review_change`]: it is
//! checked, built, tested and compared with the policy in force
//! ([`decision_impact`]) before it may replace it.
//! This crate must never depend on tonic or on a database: callers hand it
//! the flag and its consents.
#![forbid(unsafe_code)]

mod change;
mod compiled;
mod consent_cover;
mod decision;
mod edit;
mod engine;
mod impact;
mod model_check;
mod policy_tests;
mod rules;
mod snapshot;

pub use change::{ChangeReview, PolicyTestSet, ReviewContext, review_change};
pub use consent_cover::consent_covers;
pub use decision::{ClassDecision, DenyReason, Disclosure};
pub use edit::{MAX_EDIT_ROWS, PolicyEdit, apply_edit};
pub use engine::{Actor, DecisionEngine, Operation};
pub use impact::{DecisionFlip, DecisionImpact, MAX_IMPACT_TUPLES, RuleDiff, decision_impact, rule_diff};
pub use policy_tests::{
    CrossCheck, POLICY_TESTS_HEADER, PolicyTestCase, PolicyTestFailure, PolicyTestOutcome, PolicyTestReport,
    TestedRequest, parse_policy_tests, run_policy_tests, run_policy_tests_on,
};
pub use rules::{MAX_ROLE_CHAIN_DEPTH, PolicyError, PolicySource, Rule, RuleSet, parse_rules};
pub use snapshot::{CasbinAgreement, PolicySnapshot};
