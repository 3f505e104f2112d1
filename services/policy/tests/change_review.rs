//! The gate every policy edit passes, on the default policy and its policy
//! tests: a harmless edit passes with its impact, an edit that breaks a
//! policy test or uses a function is refused saying why, and an edit that
//! changes nothing or locks the privacy officers out is refused too.

use flagnet_core::{AgencyId, PolicyContent, RoleName};
use flagnet_policy::{
    ChangeReview, PolicyEdit, PolicySnapshot, PolicySource, PolicyTestSet, ReviewContext, RuleSet, apply_edit,
    parse_policy_tests, review_change,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

fn phelps() -> AgencyId {
    AgencyId::parse("phelps-so").unwrap()
}

struct Current {
    content: PolicyContent,
    snapshot: Arc<PolicySnapshot>,
    tests: PolicyTestSet,
}

async fn current() -> Current {
    let content = PolicySource::new(policies()).read_content().unwrap();
    let snapshot = Arc::new(
        PolicySnapshot::build(RuleSet::from_content(&content).unwrap(), &[phelps()])
            .await
            .unwrap(),
    );
    let text = std::fs::read_to_string(policies().join("tests/cases.csv")).unwrap();
    let tests = PolicyTestSet {
        source: "policies/tests/cases.csv".into(),
        cases: parse_policy_tests("cases.csv", &text).map_err(|error| error.to_string()),
    };
    Current {
        content,
        snapshot,
        tests,
    }
}

async fn review(current: &Current, edit: PolicyEdit) -> ChangeReview {
    let candidate = apply_edit(&current.content, &edit).expect("the edit applies to the text");
    let context = ReviewContext {
        current: current.snapshot.clone(),
        current_hash: current.content.content_hash(),
        snapshot_agencies: vec![phelps()],
        impact_agencies: vec![phelps()],
        keep_role: Some((phelps(), RoleName::parse("privacy_officer").unwrap())),
        tests: Arc::new(current.tests.clone()),
    };
    review_change(&context, candidate).await
}

fn rows(add: &[&str], remove: &[&str]) -> PolicyEdit {
    PolicyEdit::Rows {
        add: add.iter().map(|row| (*row).to_owned()).collect(),
        remove: remove.iter().map(|row| (*row).to_owned()).collect(),
    }
}

#[tokio::test]
async fn a_harmless_edit_passes_with_its_impact() {
    let current = current().await;
    let started = std::time::Instant::now();
    let review = review(
        &current,
        rows(
            &[
                "g, dispatcher1, co_responder, phelps-so",
                "p, co_responder, any, same, safety, emergency_response, allow",
            ],
            &[],
        ),
    )
    .await;
    eprintln!("review took {:?}", started.elapsed());
    assert_eq!(review.refusal(), None);
    assert!(review.tests_pass());
    let lines: Vec<String> = review.impact.flips.iter().map(ToString::to_string).collect();
    assert!(
        lines.contains(&"phelps-so co_responder gains `safety` on phelps-so flags for emergency_response".to_owned()),
        "{lines:?}"
    );
    assert!(review.impact.flips.iter().all(|flip| flip.actor == flip.owner));
    assert_eq!(review.rules.added.len(), 2);
    assert_eq!(review.rules.role_assignments().0.len(), 1);
    assert!(review.snapshot.is_some());
}

#[tokio::test]
async fn an_edit_that_breaks_a_policy_test_is_refused_naming_the_row() {
    let current = current().await;
    let review = review(
        &current,
        rows(
            &["p, dispatcher, south-central-mo, south-central-mo, safety, emergency_response, allow"],
            &[],
        ),
    )
    .await;
    assert!(review.is_valid());
    assert!(!review.tests_pass());
    let refusal = review.refusal().expect("refused");
    assert!(
        refusal.contains("policy tests fail") && refusal.contains("dispatcher at rolla-pd asking for safety"),
        "{refusal}"
    );
    assert!(
        review
            .impact
            .flips
            .iter()
            .any(|flip| flip.to_string()
                == "rolla-pd dispatcher gains `safety` on phelps-so flags for emergency_response"),
        "the impact is shown even when refused"
    );
}

#[tokio::test]
async fn a_function_a_lockout_or_no_change_is_refused() {
    let current = current().await;
    let whole = |policy: String| PolicyEdit::Whole {
        policy,
        roles: None,
        model: None,
    };
    let with_eval = review(
        &current,
        whole(format!(
            "{}p, dispatcher, any, same, eval(p.purpose), emergency_response, allow\n",
            current.content.policy
        )),
    )
    .await;
    assert!(!with_eval.is_valid());
    assert!(
        with_eval.refusal().unwrap().contains("`eval(`"),
        "{:?}",
        with_eval.refusal()
    );

    let regex_model = PolicyEdit::Whole {
        policy: current.content.policy.clone(),
        roles: None,
        model: Some(
            current
                .content
                .model
                .replace("r.field == p.field", "regexMatch(r.field, p.field)"),
        ),
    };
    let with_regex = review(&current, regex_model).await;
    assert!(
        with_regex.refusal().unwrap().contains("regexMatch"),
        "{:?}",
        with_regex.refusal()
    );

    let lockout = review(
        &current,
        rows(&[], &["g, privacy_officer1, privacy_officer, phelps-so"]),
    )
    .await;
    assert!(
        lockout.refusal().unwrap().contains("privacy_officer"),
        "{:?}",
        lockout.refusal()
    );

    let unchanged = review(&current, whole(current.content.policy.clone())).await;
    assert!(unchanged.refusal().unwrap().contains("changes nothing"));
}

#[tokio::test]
async fn unreadable_policy_tests_refuse_every_edit() {
    let mut current = current().await;
    current.tests.cases = Err("no such file".into());
    let review = review(&current, rows(&["g, dispatcher2, dispatcher, phelps-so"], &[])).await;
    assert!(review.is_valid());
    assert!(review.refusal().unwrap().contains("cannot be run"));
}
