//! The policy tests in `policies/tests/cases.csv` run against the default
//! policy, decided by the snapshot and by casbin-rs; and the runner's own
//! behaviour: readable failures, refused files, the decisions file.

use flagnet_core::{FieldClass, Purpose};
use flagnet_policy::{PolicySnapshot, PolicySource, TestedRequest, parse_policy_tests, run_policy_tests};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

fn cases_file() -> PathBuf {
    policies().join("tests/cases.csv")
}

#[tokio::test]
async fn the_default_policy_passes_its_policy_tests_in_both_engines() {
    let report = run_policy_tests(&policies(), &cases_file())
        .await
        .expect("policy and tests load");
    let failures: Vec<String> = report.failures().iter().map(ToString::to_string).collect();
    assert!(failures.is_empty(), "policy tests failed:\n{}", failures.join("\n"));
    assert!(report.outcomes.iter().all(|outcome| outcome.casbin.is_some()));
    assert!(report.rows() >= 150, "{} rows", report.rows());
}

#[tokio::test]
async fn the_policy_tests_cover_every_role_relation_class_and_purpose() {
    let text = std::fs::read_to_string(cases_file()).unwrap();
    let cases = parse_policy_tests("cases.csv", &text).unwrap();
    let region = ["phelps-so", "rolla-pd", "pulaski-so"];
    let relation = |actor: &str, owner: &str| {
        if actor == owner {
            "own"
        } else if region.contains(&actor) && region.contains(&owner) {
            "neighbour"
        } else {
            "unrelated"
        }
    };
    let covered: BTreeSet<(String, &str, FieldClass, Purpose)> = cases
        .iter()
        .filter_map(|case| match case.request {
            TestedRequest::Disclose { class, purpose } => Some((
                case.role.to_string(),
                relation(case.actor.as_str(), case.owner.as_str()),
                class,
                purpose,
            )),
            TestedRequest::MaintainRecords => None,
        })
        .collect();
    for role in [
        "dispatcher",
        "officer",
        "cit_officer",
        "liaison",
        "records_clerk",
        "privacy_officer",
        "auditor",
    ] {
        for relation in ["own", "neighbour", "unrelated"] {
            for class in FieldClass::ALL {
                for purpose in Purpose::ALL {
                    assert!(
                        covered.contains(&(role.to_owned(), relation, class, purpose)),
                        "no row for {role}, {relation}, {class}, {purpose}"
                    );
                }
            }
            assert!(
                cases.iter().any(|case| case.role.as_str() == role
                    && case.request == TestedRequest::MaintainRecords
                    && relation == relation_of(case.actor.as_str(), case.owner.as_str(), &region)),
                "no records row for {role}, {relation}"
            );
        }
    }
    let overrides_allowed = cases
        .iter()
        .filter(|case| {
            case.expected
                && matches!(
                    case.request,
                    TestedRequest::Disclose {
                        purpose: Purpose::EmergencyOverride,
                        ..
                    }
                )
        })
        .count();
    assert!(overrides_allowed > 0);
}

fn relation_of<'a>(actor: &str, owner: &str, region: &[&str]) -> &'a str {
    if actor == owner {
        "own"
    } else if region.contains(&actor) && region.contains(&owner) {
        "neighbour"
    } else {
        "unrelated"
    }
}

#[tokio::test]
async fn a_failing_row_is_reported_with_its_line_request_expectation_and_result() {
    let dir = tempfile::tempdir().unwrap();
    let tests = dir.path().join("cases.csv");
    std::fs::write(
        &tests,
        "role,actor_agency,owner_agency,field_class,purpose,expected\n\
         dispatcher,rolla-pd,phelps-so,presence,emergency_response,allow\n\
         # the next row is wrong on purpose\n\
         dispatcher,rolla-pd,phelps-so,clinical,emergency_response,allow\n\
         records_clerk,rolla-pd,phelps-so,flag_records,records_maintenance,allow\n",
    )
    .unwrap();
    let report = run_policy_tests(&policies(), &tests).await.unwrap();
    assert!(!report.passed());
    let failures: Vec<String> = report.failures().iter().map(ToString::to_string).collect();
    assert_eq!(
        failures,
        vec![
            "line 4: dispatcher at rolla-pd asking for clinical of a flag owned by phelps-so for emergency_response: \
             expected allow, got deny",
            "line 5: records_clerk at rolla-pd asking for flag_records of a flag owned by phelps-so for \
             records_maintenance: expected allow, got deny",
        ]
    );
    let decisions = report.decisions_csv();
    assert_eq!(
        decisions.lines().collect::<Vec<_>>(),
        vec![
            "line,role,actor_agency,owner_agency,field_class,purpose,decision",
            "2,dispatcher,rolla-pd,phelps-so,presence,emergency_response,allow",
            "4,dispatcher,rolla-pd,phelps-so,clinical,emergency_response,deny",
            "5,records_clerk,rolla-pd,phelps-so,flag_records,records_maintenance,deny",
        ]
    );
}

#[test]
fn a_bad_tests_file_is_refused_naming_the_line() {
    let header = "role,actor_agency,owner_agency,field_class,purpose,expected\n";
    for (text, expected) in [
        (
            "dispatcher,rolla-pd,phelps-so,presence,emergency_response,allow\n",
            "1: the first row must be the header",
        ),
        (
            &format!("{header}dispatcher,rolla-pd,phelps-so,presence,emergency_response\n") as &str,
            "2: row `",
        ),
        (
            &format!("{header}dispatcher,rolla-pd,phelps-so,presence,emergency_response,Allow\n"),
            "exactly `allow` or `deny`",
        ),
        (
            &format!("{header}dispatcher,rolla-pd,phelps-so,diagnosis,emergency_response,allow\n"),
            "field class",
        ),
        (
            &format!("{header}dispatcher,rolla-pd,phelps-so,presence,curiosity,allow\n"),
            "unknown purpose",
        ),
        (
            &format!("{header}dispatcher,DEFAULT,phelps-so,presence,emergency_response,allow\n"),
            "reserved",
        ),
        (
            &format!("{header}dispätcher,rolla-pd,phelps-so,presence,emergency_response,allow\n"),
            "not allowed",
        ),
        (
            &format!("{header}dispatcher,rolla-pd,phelps-so,flag_records,emergency_response,allow\n"),
            "goes only with",
        ),
        ("# only a comment\n", "no header"),
    ] {
        let error = parse_policy_tests("t.csv", text).unwrap_err().to_string();
        assert!(error.contains(expected), "{text:?}: {error}");
        assert!(error.starts_with("t.csv:"), "{error}");
    }
}

#[tokio::test]
async fn the_snapshot_agrees_with_casbin_on_every_named_tuple_of_the_default_policy() {
    let snapshot = PolicySnapshot::build(PolicySource::new(policies()).read().unwrap(), &[])
        .await
        .unwrap();
    assert!(snapshot.is_compiled());
    let agreement = snapshot.verify_against_casbin(usize::MAX);
    assert!(
        agreement.disagreements.is_empty(),
        "{}",
        agreement.disagreements.join("\n")
    );
    assert_eq!(agreement.skipped, 0);
    assert!(agreement.checked > 5_000, "{agreement:?}");
}
