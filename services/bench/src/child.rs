//! A node in its own process, for an honest resident set size: R6 stops
//! the in-process home node and runs `BIN serve --config FILE` on the same
//! config (the same address, store and audit log). `BIN` is `flagnet-node`
//! when `--node-bin` names it, or this binary, whose hidden `serve` runs the
//! same `flagnet_server::start(NodeParts::new(config))` as `flagnet-node
//! serve`. Its memory is read from `/proc/PID/status`.

use crate::BenchError;
use flagnet_sandbox::Sandbox;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a child node may take to start serving.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A node running as a child process.
#[derive(Debug)]
pub struct ChildNode {
    child: Child,
    log: PathBuf,
}

/// Resident memory of a process, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Memory {
    /// `VmRSS`: resident now
    pub rss_bytes: u64,
    /// `VmHWM`: the most it was ever resident
    pub peak_rss_bytes: u64,
}

impl ChildNode {
    /// Starts `bin serve --config config`, logging to `log`, with the
    /// tracing filter `filter`, and waits until `agency`'s node answers a
    /// TLS handshake as it should.
    pub async fn start(
        sandbox: &Sandbox,
        agency: &str,
        bin: &Path,
        config: &Path,
        log: &Path,
        filter: &str,
    ) -> Result<Self, BenchError> {
        let output = std::fs::File::create(log).map_err(|error| BenchError::setup("child node log", error))?;
        let errors = output
            .try_clone()
            .map_err(|error| BenchError::setup("child node log", error))?;
        let child = Command::new(bin)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", filter)
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(errors)
            .spawn()
            .map_err(|error| BenchError::setup(format!("start {}", bin.display()), error))?;
        let mut node = Self {
            child,
            log: log.to_owned(),
        };
        let started = Instant::now();
        loop {
            if let Some(status) = node
                .child
                .try_wait()
                .map_err(|error| BenchError::setup("child node", error))?
            {
                return Err(BenchError::setup(
                    "child node",
                    format!("exited with {status}; see {}", node.log.display()),
                ));
            }
            if sandbox.client(agency, "dispatcher").await.is_ok() {
                return Ok(node);
            }
            if started.elapsed() > START_TIMEOUT {
                node.stop().await;
                return Err(BenchError::setup("child node", "did not start serving in time"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The child's resident memory now and at its peak.
    pub fn memory(&self) -> Result<Memory, BenchError> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .map_err(|error| BenchError::measure("child node memory", error))?;
        Ok(parse_status(&status))
    }

    /// SIGTERM, as an operator would stop it, then a kill if it lingers.
    pub async fn stop(mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.pid().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tracing::warn!(pid = self.pid(), "child node ignored SIGTERM; killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildNode {
    /// A run that fails half-way leaves no node behind.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `VmRSS` and `VmHWM` of a `/proc/PID/status` text.
pub fn parse_status(status: &str) -> Memory {
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    };
    Memory {
        rss_bytes: field("VmRSS:"),
        peak_rss_bytes: field("VmHWM:"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_are_read_in_bytes() {
        let status = "Name:\tflagnet-node\nVmHWM:\t   91234 kB\nVmRSS:\t   80000 kB\nThreads:\t7\n";
        assert_eq!(
            parse_status(status),
            Memory {
                rss_bytes: 80_000 * 1024,
                peak_rss_bytes: 91_234 * 1024
            }
        );
    }
}
