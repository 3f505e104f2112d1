//! The default policy grown with thousands of synthetic rules for other
//! agencies and roles: the real decisions stay exactly the same, and the
//! snapshot is still the compiled index (the figures are in
//! `benches/decision.rs`).

mod support;

use flagnet_policy::{CrossCheck, PolicySnapshot, PolicySource, parse_policy_tests, run_policy_tests_on};
use support::synthetic::grown_policy;

#[tokio::test]
async fn ten_thousand_rules_decide_the_policy_tests_exactly_like_the_default_policy() {
    let text = std::fs::read_to_string(support::policies().join("tests/cases.csv")).unwrap();
    let cases = parse_policy_tests("cases.csv", &text).unwrap();
    let default = PolicySnapshot::build(PolicySource::new(support::policies()).read().unwrap(), &[])
        .await
        .unwrap();
    let baseline = run_policy_tests_on(&default, &cases, CrossCheck::SnapshotOnly);
    for total in [1_000, 10_000] {
        let rules = grown_policy(&support::policies(), total);
        assert_eq!(rules.rules.len(), total);
        let grown = PolicySnapshot::build(rules, &[]).await.unwrap();
        assert!(grown.is_compiled());
        let report = run_policy_tests_on(&grown, &cases, CrossCheck::SnapshotOnly);
        let failures: Vec<String> = report.failures().iter().map(ToString::to_string).collect();
        assert!(failures.is_empty(), "{total} rules:\n{}", failures.join("\n"));
        assert_eq!(report, baseline, "{total} rules");
    }
}

#[tokio::test]
async fn a_grown_policy_agrees_with_casbin_on_a_sample() {
    let grown = PolicySnapshot::build(grown_policy(&support::policies(), 1_000), &[])
        .await
        .unwrap();
    let agreement = grown.verify_against_casbin(400);
    assert!(
        agreement.disagreements.is_empty(),
        "{}",
        agreement.disagreements.join("\n")
    );
    assert!(agreement.checked >= 100 && agreement.skipped > 0, "{agreement:?}");
}
