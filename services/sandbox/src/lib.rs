//! One way to stand up a flagnet federation: a fresh PKI made with the
//! project's own certificate tooling, keys, node configs, SQLite files, one
//! flagctl profile per person, and N real nodes on 127.0.0.1, optionally
//! seeded with sample subjects through the real FlagIndex API. The demo, the
//! integration tests and the benchmark all use this; none has its own copy.
#![forbid(unsafe_code)]

pub mod layout;
pub mod seed;

pub use layout::{BulkSubject, FederationTiming, Sandbox, SandboxError, SandboxOptions, TlsTiming};
pub use seed::{SeededSubject, seed_demo};

/// The demo federation's SPIFFE trust domain.
pub const DEMO_FEDERATION: &str = "flagnet.demo";
/// The demo's agencies, all in the region `south-central-mo`.
pub const DEMO_AGENCIES: [&str; 3] = ["phelps-so", "rolla-pd", "pulaski-so"];
/// Every role; each demo agency has one person of each, with user id `<role>1`.
pub const DEMO_ROLES: [&str; 7] = [
    "dispatcher",
    "officer",
    "cit_officer",
    "liaison",
    "records_clerk",
    "privacy_officer",
    "auditor",
];

/// The user id of the demo person holding `role`.
pub fn demo_user(role: &str) -> String {
    format!("{role}1")
}
