//! Access decisions for flagnet: which field classes of a flag a person with
//! given roles at a given agency may see for a purpose. A disclosure needs both
//! the Casbin policy (`policies/model.conf`, `policies/policy.csv`) and an
//! active consent of the subject that covers the request.
//!
//! Decisions come from an immutable [`PolicySnapshot`]; a new policy builds a
//! new snapshot that is swapped in whole, so no request sees half an edit.
//! Policy tests (`policies/tests/cases.csv`) run against a snapshot before it
//! is trusted; see [`run_policy_tests`].
//! This crate must never depend on tonic or on a database: callers hand it
//! the flag and its consents.
#![forbid(unsafe_code)]

mod compiled;
mod consent_cover;
mod decision;
mod engine;
mod model_check;
mod policy_tests;
mod rules;
mod snapshot;

pub use consent_cover::consent_covers;
pub use decision::{ClassDecision, DenyReason, Disclosure};
pub use engine::{Actor, DecisionEngine, Operation};
pub use policy_tests::{
    CrossCheck, POLICY_TESTS_HEADER, PolicyTestCase, PolicyTestFailure, PolicyTestOutcome, PolicyTestReport,
    TestedRequest, parse_policy_tests, run_policy_tests, run_policy_tests_on,
};
pub use rules::{MAX_ROLE_CHAIN_DEPTH, PolicyError, PolicySource, Rule, RuleSet, parse_rules};
pub use snapshot::{CasbinAgreement, PolicySnapshot};
