//! What one run measures, how much and for how long: the full run that
//! issue 8 asks for, `--quick` (under two minutes on two cores), and the
//! smoke sizes the test suite uses (seconds, figures meaningless).

use serde::Serialize;
use std::path::PathBuf;

/// Sizes and durations of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchOptions {
    /// flags at the home node and at each peer for every scenario but R6's large one
    pub flags: u64,
    /// flags at the home node for R6's large scenario
    pub big_flags: u64,
    /// recorded latency samples per closed-loop scenario (one request in flight)
    pub samples: usize,
    /// calls made and thrown away before recording
    pub warmup: usize,
    /// requests in flight in the saturated scenarios
    pub in_flight: usize,
    /// client connections the saturated requests share
    pub connections: usize,
    /// how long each saturated scenario counts completions
    pub throughput_secs: f64,
    /// how long each saturated scenario runs before counting
    pub throughput_warmup_secs: f64,
    /// policy rules of every node but R4's large-policy one
    pub policy_small: usize,
    /// policy rules of R4's large-policy node
    pub policy_large: usize,
    /// every node's per-peer deadline (`federation.peer_timeout_ms`)
    pub peer_deadline_ms: u64,
    /// federated lookups recorded with one peer black-holed (R3)
    pub blackhole_samples: usize,
    /// how many of those run at once (each one waits out the deadline);
    /// the home node restarts after every 100 - this many, before a peer's
    /// breaker would open and spare the rest
    pub blackhole_in_flight: usize,
    /// fsyncs timed on the database's disk
    pub fsync_samples: usize,
    /// the node binary R6 runs as a child process (`BIN serve --config FILE`);
    /// `None` runs this binary's own `serve`, which is the same code
    #[serde(skip)]
    pub node_bin: Option<PathBuf>,
    /// where to write the federations (kept); a temporary directory if `None`
    #[serde(skip)]
    pub dir: Option<PathBuf>,
    /// the tracing filter of the measured nodes (in process and child)
    pub node_log: String,
    /// hide progress bars
    #[serde(skip)]
    pub quiet: bool,
}

impl BenchOptions {
    /// The run issue 8 describes.
    pub fn full() -> Self {
        Self {
            flags: 10_000,
            big_flags: 1_000_000,
            samples: 20_000,
            warmup: 2_000,
            in_flight: 64,
            connections: 4,
            throughput_secs: 10.0,
            throughput_warmup_secs: 2.0,
            policy_small: 100,
            policy_large: 10_000,
            peer_deadline_ms: 250,
            blackhole_samples: 400,
            blackhole_in_flight: 4,
            fsync_samples: 1_000,
            node_bin: None,
            dir: None,
            // a stopped node's audit log warns that its writer stopped: expected here
            node_log: "warn,flagnet_audit::log=error,flagnet_server::audit_trail=error".to_owned(),
            quiet: false,
        }
    }

    /// Every ratio, with fewer samples and a 100k-flag R6: under two minutes on two cores.
    pub fn quick() -> Self {
        Self {
            flags: 2_000,
            big_flags: 100_000,
            samples: 1_000,
            warmup: 200,
            throughput_secs: 2.0,
            throughput_warmup_secs: 0.5,
            peer_deadline_ms: 100,
            blackhole_samples: 60,
            fsync_samples: 200,
            ..Self::full()
        }
    }

    /// Tiny sizes that prove the harness works end to end (the smoke test).
    pub fn smoke() -> Self {
        Self {
            flags: 20,
            big_flags: 60,
            samples: 20,
            warmup: 5,
            in_flight: 8,
            connections: 2,
            throughput_secs: 0.2,
            throughput_warmup_secs: 0.05,
            policy_large: 200,
            peer_deadline_ms: 50,
            blackhole_samples: 4,
            blackhole_in_flight: 4,
            fsync_samples: 5,
            quiet: true,
            ..Self::full()
        }
    }

    /// Refuses sizes that cannot produce the ratios.
    pub fn validate(&self) -> Result<(), String> {
        if self.flags == 0 || self.big_flags < self.flags {
            return Err("--flags must be at least 1 and --big-flags at least --flags".into());
        }
        if self.samples == 0 || self.blackhole_samples == 0 || self.fsync_samples == 0 {
            return Err("sample counts must be at least 1".into());
        }
        if self.in_flight == 0 || self.connections == 0 || self.blackhole_in_flight == 0 {
            return Err("--in-flight, --connections and --blackhole-in-flight must be at least 1".into());
        }
        if !(self.throughput_secs > 0.0 && self.throughput_warmup_secs >= 0.0) {
            return Err("--throughput-secs must be positive".into());
        }
        if self.blackhole_in_flight > 50 {
            return Err("--blackhole-in-flight must be at most 50 (a peer's breaker opens after 100 failures)".into());
        }
        if self.policy_large < self.policy_small {
            return Err("--policy-large must be at least --policy-small".into());
        }
        if !(10..=60_000).contains(&self.peer_deadline_ms) {
            return Err("--peer-deadline-ms must be between 10 and 60000 (the node's own bounds)".into());
        }
        Ok(())
    }
}
