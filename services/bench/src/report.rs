//! What a run found: every measurement summarised, the ratios of issue 8
//! computed from them with their goals, a table for people and JSON for
//! tools. A ratio is computed only from measurements of the same run.

use crate::child::Memory;
use crate::load::{Latency, Throughput};
use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use hdrhistogram::Histogram;
use serde::Serialize;

/// One latency distribution, in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    pub samples: u64,
    pub errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
}

fn micros(nanos: u64) -> f64 {
    nanos as f64 / 1_000.0
}

impl LatencySummary {
    pub fn of(histogram: &Histogram<u64>, errors: u64, first_error: Option<String>) -> Self {
        if histogram.is_empty() {
            return Self {
                errors,
                first_error,
                ..Self::default()
            };
        }
        Self {
            samples: histogram.len(),
            errors,
            first_error,
            p50_us: micros(histogram.value_at_quantile(0.50)),
            p90_us: micros(histogram.value_at_quantile(0.90)),
            p99_us: micros(histogram.value_at_quantile(0.99)),
            p999_us: micros(histogram.value_at_quantile(0.999)),
            max_us: micros(histogram.max()),
            mean_us: histogram.mean() / 1_000.0,
        }
    }

    pub fn latency(latency: &Latency) -> Self {
        Self::of(&latency.histogram, latency.errors, latency.first_error.clone())
    }
}

/// One saturated scenario.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ThroughputSummary {
    pub in_flight: usize,
    pub per_second: f64,
    pub completed: u64,
    pub errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    pub window_secs: f64,
    /// latency of each call under this load
    pub latency: LatencySummary,
}

impl ThroughputSummary {
    pub fn of(throughput: &Throughput) -> Self {
        Self {
            in_flight: throughput.in_flight,
            per_second: throughput.per_second,
            completed: throughput.completed,
            errors: throughput.errors,
            first_error: throughput.first_error.clone(),
            window_secs: throughput.window.as_secs_f64(),
            latency: LatencySummary::of(&throughput.histogram, 0, None),
        }
    }
}

/// How the flags were loaded.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SeedingSummary {
    pub flags: u64,
    pub secs: f64,
    pub flags_per_second: f64,
}

/// Every measurement of one run. Scenarios that a ratio compares were
/// measured as a pair, in alternating blocks of calls (see
/// [`crate::load::paired_closed_loop`]), except where noted.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Measurements {
    /// `/proc/loadavg` when the run began and ended: other work on the machine
    pub load_average_start: String,
    pub load_average_end: String,
    /// encoded sizes of a lookup, which the echo mirrors
    pub lookup_request_bytes: usize,
    pub lookup_response_bytes: usize,
    /// one fsync on the home node's disk, timed just before and just after `local`
    pub fsync: LatencySummary,
    /// four fsyncs at once on that disk, until the last is done
    pub fsync_four_at_once: LatencySummary,
    /// the echo, paired with `local`
    pub echo: LatencySummary,
    /// local lookups at `flags` flags and the small policy, durable audit log
    pub local: LatencySummary,
    /// saturated, in alternating windows with `local_saturated`
    pub echo_saturated: ThroughputSummary,
    pub local_saturated: ThroughputSummary,
    /// the echo, paired with `local_null_sink`
    pub echo_beside_null_sink: LatencySummary,
    /// local lookups with the audit log on a null sink
    pub local_null_sink: LatencySummary,
    pub local_null_sink_saturated: ThroughputSummary,
    /// federated lookups over three answering peers, paired with `local_beside_federated`
    pub federated: LatencySummary,
    pub local_beside_federated: LatencySummary,
    /// federated lookups with one peer black-holed, `blackhole_in_flight` at once
    pub federated_black_hole: LatencySummary,
    pub peer_deadline_ms: u64,
    /// local lookups at a node of the large policy, paired with `local_beside_large_policy`
    pub local_large_policy: LatencySummary,
    pub local_beside_large_policy: LatencySummary,
    pub policy_small_rules: usize,
    pub policy_large_rules: usize,
    /// local lookups of nodes in their own processes, at `flags` and at
    /// `big_flags` flags, paired
    pub child_local_small: LatencySummary,
    pub child_local_big: LatencySummary,
    pub child_memory_small: Memory,
    pub child_memory_big: Memory,
    /// bulk loading `flags` at the home node, and `big_flags` at R6's node
    pub seeding: SeedingSummary,
    pub big_seeding: SeedingSummary,
}

/// Which way a ratio's goal points.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Goal {
    #[serde(rename = "<=")]
    AtMost(f64),
    #[serde(rename = ">=")]
    AtLeast(f64),
}

impl Goal {
    fn met(self, value: f64) -> bool {
        match self {
            Goal::AtMost(goal) => value <= goal,
            Goal::AtLeast(goal) => value >= goal,
        }
    }

    fn text(self) -> String {
        match self {
            Goal::AtMost(goal) => format!("≤ {goal}"),
            Goal::AtLeast(goal) => format!("≥ {goal}"),
        }
    }
}

/// One ratio of issue 8.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ratio {
    pub name: &'static str,
    pub definition: &'static str,
    pub value: f64,
    pub goal: Goal,
    pub met: bool,
}

fn ratio(name: &'static str, definition: &'static str, numerator: f64, denominator: f64, goal: Goal) -> Ratio {
    let value = if denominator > 0.0 {
        numerator / denominator
    } else {
        f64::NAN
    };
    Ratio {
        name,
        definition,
        value,
        goal,
        met: goal.met(value),
    }
}

/// R6's memory goal: the node's resident set at the large flag count.
pub const RSS_GOAL_BYTES: u64 = 150_000_000;

/// The machine's load averages, as `/proc/loadavg` gives them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The machine a run was made on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub kernel: String,
    pub cpu_model: String,
}

impl Machine {
    pub fn this() -> Self {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines().find_map(|line| {
                    line.strip_prefix("model name")
                        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
                })
            })
            .unwrap_or_default();
        Self {
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|text| text.trim().to_owned())
                .unwrap_or_default(),
            cpu_model,
        }
    }
}

/// The whole result of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub started_at: String,
    pub duration_secs: f64,
    pub command: String,
    pub machine: Machine,
    pub options: crate::BenchOptions,
    pub measurements: Measurements,
    pub ratios: Vec<Ratio>,
    pub rss_at_big_flags_mb: f64,
    pub rss_goal_mb: f64,
    pub rss_met: bool,
    /// every scenario answered correctly every time
    pub clean: bool,
}

impl Report {
    /// The ratios of issue 8 from `measurements`.
    pub fn ratios(m: &Measurements) -> Vec<Ratio> {
        vec![
            ratio(
                "R1",
                "local lookup p50 ÷ (echo p50 + fsync p50)",
                m.local.p50_us,
                m.echo.p50_us + m.fsync.p50_us,
                Goal::AtMost(1.2),
            ),
            ratio(
                "R1n p50",
                "local lookup, null audit sink, p50 ÷ echo p50",
                m.local_null_sink.p50_us,
                m.echo_beside_null_sink.p50_us,
                Goal::AtMost(1.3),
            ),
            ratio(
                "R1n p99",
                "local lookup, null audit sink, p99 ÷ echo p99",
                m.local_null_sink.p99_us,
                m.echo_beside_null_sink.p99_us,
                Goal::AtMost(1.5),
            ),
            ratio(
                "R2",
                "federated lookup (3 peers) p50 ÷ local lookup p50",
                m.federated.p50_us,
                m.local_beside_federated.p50_us,
                Goal::AtMost(1.3),
            ),
            ratio(
                "R3",
                "lookup p99, one peer black-holed ÷ per-peer deadline",
                m.federated_black_hole.p99_us,
                m.peer_deadline_ms as f64 * 1_000.0,
                Goal::AtMost(1.05),
            ),
            ratio(
                "R4",
                "lookup p50, large policy ÷ small policy",
                m.local_large_policy.p50_us,
                m.local_beside_large_policy.p50_us,
                Goal::AtMost(1.1),
            ),
            ratio(
                "R5",
                "saturated lookups/s, durable audit ÷ null sink",
                m.local_saturated.per_second,
                m.local_null_sink_saturated.per_second,
                Goal::AtLeast(0.7),
            ),
            ratio(
                "R6",
                "lookup p50 at big flag count ÷ at small (own process)",
                m.child_local_big.p50_us,
                m.child_local_small.p50_us,
                Goal::AtMost(1.2),
            ),
            ratio(
                "R7",
                "saturated audited lookups/s ÷ saturated echo calls/s",
                m.local_saturated.per_second,
                m.echo_saturated.per_second,
                Goal::AtLeast(0.5),
            ),
        ]
    }

    fn errors(m: &Measurements) -> u64 {
        [
            &m.echo,
            &m.local,
            &m.echo_beside_null_sink,
            &m.local_null_sink,
            &m.federated,
            &m.local_beside_federated,
            &m.federated_black_hole,
            &m.local_large_policy,
            &m.local_beside_large_policy,
            &m.child_local_small,
            &m.child_local_big,
        ]
        .iter()
        .map(|summary| summary.errors)
        .sum::<u64>()
            + [&m.echo_saturated, &m.local_saturated, &m.local_null_sink_saturated]
                .iter()
                .map(|summary| summary.errors)
                .sum::<u64>()
    }

    pub fn new(
        started_at: String,
        duration_secs: f64,
        command: String,
        options: crate::BenchOptions,
        measurements: Measurements,
    ) -> Self {
        let ratios = Self::ratios(&measurements);
        let rss = measurements.child_memory_big.rss_bytes;
        Self {
            started_at,
            duration_secs,
            command,
            machine: Machine::this(),
            options,
            clean: Self::errors(&measurements) == 0,
            ratios,
            rss_at_big_flags_mb: rss as f64 / 1e6,
            rss_goal_mb: RSS_GOAL_BYTES as f64 / 1e6,
            rss_met: rss > 0 && rss <= RSS_GOAL_BYTES,
            measurements,
        }
    }

    /// The tables a person reads: ratios first, then what they came from.
    pub fn table(&self) -> String {
        let mut ratios = Table::new();
        ratios.load_preset(UTF8_FULL_CONDENSED);
        ratios.set_header(vec!["ratio", "definition", "value", "goal", "met"]);
        for ratio in &self.ratios {
            ratios.add_row(vec![
                Cell::new(ratio.name),
                Cell::new(ratio.definition),
                Cell::new(format!("{:.3}", ratio.value)).set_alignment(CellAlignment::Right),
                Cell::new(ratio.goal.text()),
                Cell::new(if ratio.met { "yes" } else { "NO" }),
            ]);
        }
        ratios.add_row(vec![
            Cell::new("R6 RSS"),
            Cell::new(format!("node resident set at {} flags, MB", self.options.big_flags)),
            Cell::new(format!("{:.1}", self.rss_at_big_flags_mb)).set_alignment(CellAlignment::Right),
            Cell::new(format!("≤ {:.0}", self.rss_goal_mb)),
            Cell::new(if self.rss_met { "yes" } else { "NO" }),
        ]);

        let m = &self.measurements;
        let mut latencies = Table::new();
        latencies.load_preset(UTF8_FULL_CONDENSED);
        latencies.set_header(vec![
            "closed loop (1 in flight)",
            "samples",
            "errors",
            "p50 µs",
            "p90 µs",
            "p99 µs",
            "p99.9 µs",
            "max µs",
        ]);
        let flags = self.options.flags;
        let big = self.options.big_flags;
        for (label, summary) in [
            ("fsync (database disk)".to_owned(), &m.fsync),
            ("4 fsyncs at once".to_owned(), &m.fsync_four_at_once),
            ("echo (same mTLS, same bytes)".to_owned(), &m.echo),
            (format!("  ⇄ lookup, local, {flags} flags"), &m.local),
            ("echo".to_owned(), &m.echo_beside_null_sink),
            ("  ⇄ lookup, local, null audit sink".to_owned(), &m.local_null_sink),
            ("lookup, federated, 3 peers".to_owned(), &m.federated),
            ("  ⇄ lookup, local".to_owned(), &m.local_beside_federated),
            ("lookup, 1 peer black-holed".to_owned(), &m.federated_black_hole),
            (format!("lookup, {} rules", m.policy_large_rules), &m.local_large_policy),
            (
                format!("  ⇄ lookup, {} rules", m.policy_small_rules),
                &m.local_beside_large_policy,
            ),
            (format!("lookup, own process, {flags} flags"), &m.child_local_small),
            (format!("  ⇄ lookup, own process, {big} flags"), &m.child_local_big),
        ] {
            latencies.add_row(vec![
                Cell::new(label),
                Cell::new(summary.samples).set_alignment(CellAlignment::Right),
                Cell::new(summary.errors).set_alignment(CellAlignment::Right),
                Cell::new(format!("{:.0}", summary.p50_us)).set_alignment(CellAlignment::Right),
                Cell::new(format!("{:.0}", summary.p90_us)).set_alignment(CellAlignment::Right),
                Cell::new(format!("{:.0}", summary.p99_us)).set_alignment(CellAlignment::Right),
                Cell::new(format!("{:.0}", summary.p999_us)).set_alignment(CellAlignment::Right),
                Cell::new(format!("{:.0}", summary.max_us)).set_alignment(CellAlignment::Right),
            ]);
        }

        let mut saturated = Table::new();
        saturated.load_preset(UTF8_FULL_CONDENSED);
        saturated.set_header(vec!["saturated", "in flight", "calls/s", "errors", "p50 µs", "p99 µs"]);
        for (label, summary) in [
            ("echo", &m.echo_saturated),
            ("  ⇄ lookup, local, durable audit", &m.local_saturated),
            ("lookup, local, null audit sink", &m.local_null_sink_saturated),
        ] {
            saturated.add_row(vec![
                Cell::new(label),
                Cell::new(summary.in_flight).set_alignment(CellAlignment::Right),
                Cell::new(format!("{:.0}", summary.per_second)).set_alignment(CellAlignment::Right),
                Cell::new(summary.errors).set_alignment(CellAlignment::Right),
                Cell::new(format!("{:.0}", summary.latency.p50_us)).set_alignment(CellAlignment::Right),
                Cell::new(format!("{:.0}", summary.latency.p99_us)).set_alignment(CellAlignment::Right),
            ]);
        }

        let memory = format!(
            "node RSS (own process): {:.1} MB at {flags} flags, {:.1} MB at {big} flags (peak {:.1} MB)",
            m.child_memory_small.rss_bytes as f64 / 1e6,
            m.child_memory_big.rss_bytes as f64 / 1e6,
            m.child_memory_big.peak_rss_bytes as f64 / 1e6,
        );
        let seeding = format!(
            "bulk seeding: {} flags in {:.1} s ({:.0} flags/s, with a consent each)",
            m.big_seeding.flags, m.big_seeding.secs, m.big_seeding.flags_per_second
        );
        let load = format!(
            "⇄: measured as a pair, in alternating blocks of calls, one call in flight; load average at start {}, at end {}",
            m.load_average_start, m.load_average_end
        );
        let payload = format!(
            "lookup sizes mirrored by the echo: request {} B, response {} B; per-peer deadline {} ms; policies {} and {} rules",
            m.lookup_request_bytes,
            m.lookup_response_bytes,
            m.peer_deadline_ms,
            m.policy_small_rules,
            m.policy_large_rules
        );
        let verdict = if self.clean {
            "every answer was checked and correct".to_owned()
        } else {
            "SOME ANSWERS WERE WRONG OR FAILED: see the errors columns and the JSON".to_owned()
        };
        format!("{ratios}\n{latencies}\n{saturated}\n{memory}\n{seeding}\n{payload}\n{load}\n{verdict}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_follow_their_definitions_and_goals() {
        let summary = |p50: f64, p99: f64| LatencySummary {
            samples: 1,
            p50_us: p50,
            p99_us: p99,
            ..LatencySummary::default()
        };
        let throughput = |per_second: f64| ThroughputSummary {
            per_second,
            ..ThroughputSummary::default()
        };
        let m = Measurements {
            fsync: summary(3_000.0, 6_000.0),
            echo: summary(100.0, 200.0),
            echo_beside_null_sink: summary(100.0, 200.0),
            local: summary(3_300.0, 5_000.0),
            local_beside_federated: summary(3_300.0, 5_000.0),
            local_beside_large_policy: summary(3_300.0, 5_000.0),
            local_null_sink: summary(150.0, 400.0),
            federated: summary(4_000.0, 7_000.0),
            federated_black_hole: summary(0.0, 260_000.0),
            peer_deadline_ms: 250,
            local_large_policy: summary(3_400.0, 5_000.0),
            child_local_small: summary(3_000.0, 0.0),
            child_local_big: summary(3_300.0, 0.0),
            echo_saturated: throughput(10_000.0),
            local_saturated: throughput(4_000.0),
            local_null_sink_saturated: throughput(5_000.0),
            ..Measurements::default()
        };
        let ratios = Report::ratios(&m);
        let value = |name: &str| ratios.iter().find(|ratio| ratio.name == name).unwrap();
        assert!((value("R1").value - 3_300.0 / 3_100.0).abs() < 1e-9);
        assert!(value("R1").met);
        assert!((value("R1n p50").value - 1.5).abs() < 1e-9);
        assert!(!value("R1n p50").met);
        assert!((value("R1n p99").value - 2.0).abs() < 1e-9);
        assert!((value("R3").value - 1.04).abs() < 1e-9);
        assert!((value("R5").value - 0.8).abs() < 1e-9 && value("R5").met);
        assert!((value("R7").value - 0.4).abs() < 1e-9 && !value("R7").met);
        assert!((value("R6").value - 1.1).abs() < 1e-9);
    }
}
