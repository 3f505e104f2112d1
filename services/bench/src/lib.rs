//! `flagnet-bench`: one run on loopback that measures a flagnet node against
//! the baselines it cannot beat (a bare tonic echo over the same mutual TLS,
//! and one fsync on the database's own disk) and against itself (a null
//! audit sink, ten thousand policy rules, a million flags, a black-holed
//! peer), and reports the ratios R1 to R7 of issue 8. How to run it, what
//! each ratio means and what limits it: `docs/performance.md`.
//!
//! The harness stands its nodes up through `flagnet-sandbox` like the demo
//! and the tests do, loads flags through the store's bulk path, and talks
//! to the nodes only over their public gRPC API. It must never measure a
//! node that answered wrongly: every answer is checked, and a wrong one
//! counts as an error, not as a sample.
#![forbid(unsafe_code)]

pub mod blackhole;
pub mod child;
pub mod echo;
pub mod fsync;
pub mod load;
pub mod options;
pub mod policy;
pub mod progress;
pub mod report;
pub mod run;
pub mod subjects;

pub use options::BenchOptions;
pub use report::Report;

/// Why a run could not finish.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{step}: {reason}")]
    Setup { step: String, reason: String },
    #[error("{scenario}: {reason}")]
    Measure { scenario: String, reason: String },
    #[error(transparent)]
    Sandbox(#[from] flagnet_sandbox::SandboxError),
}

impl BenchError {
    pub(crate) fn setup(step: impl Into<String>, reason: impl ToString) -> Self {
        BenchError::Setup {
            step: step.into(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn measure(scenario: impl Into<String>, reason: impl ToString) -> Self {
        BenchError::Measure {
            scenario: scenario.into(),
            reason: reason.to_string(),
        }
    }
}
