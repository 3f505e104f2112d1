//! The harness end to end at tiny sizes, so CI proves every phase still
//! runs: the real `flagnet-bench` binary (which also serves R6's node in
//! its own process) stands up both federations, bulk-loads, measures, and
//! writes a JSON report whose ratios are all computed from checked answers.
//! Nothing here is timed; the figures at these sizes mean nothing.

use std::process::Command;

#[test]
fn the_harness_runs_every_phase_and_reports_every_ratio() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let output = Command::new(env!("CARGO_BIN_EXE_flagnet-bench"))
        .arg("--smoke")
        .arg("--json")
        .arg(&json)
        .arg("--dir")
        .arg(dir.path().join("work"))
        .output()
        .expect("flagnet-bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "flagnet-bench failed\n{stdout}\n{stderr}");
    for ratio in [
        "R1 ", "R1n p50", "R1n p99", "R2 ", "R3 ", "R4 ", "R5 ", "R6 ", "R6 RSS", "R7 ",
    ] {
        assert!(stdout.contains(ratio), "the table lacks {ratio}\n{stdout}");
    }

    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["clean"], true, "some answers were wrong\n{report:#}");
    let ratios = report["ratios"].as_array().unwrap();
    assert_eq!(ratios.len(), 9);
    for ratio in ratios {
        let value = ratio["value"].as_f64();
        assert!(
            value.is_some_and(|value| value.is_finite() && value > 0.0),
            "{} has no value: {ratio}",
            ratio["name"]
        );
    }
    let measurements = &report["measurements"];
    for scenario in [
        "echo",
        "local",
        "local_null_sink",
        "federated",
        "federated_black_hole",
        "local_large_policy",
        "child_local_small",
        "child_local_big",
    ] {
        let summary = &measurements[scenario];
        assert!(summary["samples"].as_u64().unwrap() > 0, "{scenario}: {summary}");
        assert_eq!(summary["errors"], 0, "{scenario}: {summary}");
    }
    // the own-process nodes were really measured, and R6's node really holds the big count
    assert!(measurements["child_memory_big"]["rss_bytes"].as_u64().unwrap() > 1_000_000);
    assert!(measurements["child_memory_small"]["rss_bytes"].as_u64().unwrap() > 1_000_000);
    assert_eq!(measurements["big_seeding"]["flags"], report["options"]["big_flags"]);
    // the echo mirrors the lookup's sizes
    assert!(
        measurements["lookup_response_bytes"].as_u64().unwrap()
            > measurements["lookup_request_bytes"].as_u64().unwrap()
    );
}
