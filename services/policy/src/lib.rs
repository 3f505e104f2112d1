//! Access decisions for flagnet: which field classes of a flag a person with
//! given roles at a given agency may see for a purpose. A disclosure needs both
//! the Casbin policy (`policies/model.conf`, `policies/policy.csv`) and an
//! active consent of the subject that covers the request.
//!
//! Decisions come from an immutable [`PolicySnapshot`]; a new policy builds a
//! new snapshot that is swapped in whole, so no request sees half an edit.
//! This crate must never depend on tonic or on a database: callers hand it
//! the flag and its consents.
#![forbid(unsafe_code)]

mod consent_cover;
mod decision;
mod engine;
mod rules;
mod snapshot;

pub use consent_cover::consent_covers;
pub use decision::{ClassDecision, DenyReason, Disclosure};
pub use engine::{Actor, DecisionEngine, Operation};
pub use rules::{PolicyError, PolicySource, Rule, RuleSet};
pub use snapshot::PolicySnapshot;
