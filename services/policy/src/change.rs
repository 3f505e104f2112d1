//! Reviewing a candidate policy before it may govern a single decision: the
//! gate every edit, rollback and approval passes. The candidate's text is
//! checked and built into a fresh snapshot exactly as a policy file is (no
//! shortcut for text that came from the store), the policy tests are decided
//! by that snapshot and by Casbin, and the impact against the snapshot in
//! force is computed. A candidate may be applied only when it is valid,
//! changes something, keeps someone able to administer policy, and passes
//! every policy test; [`ChangeReview::refusal`] says why not otherwise.

use crate::impact::{DecisionImpact, RuleDiff, decision_impact, rule_diff};
use crate::policy_tests::{CrossCheck, PolicyTestCase, PolicyTestReport, run_policy_tests_on};
use crate::rules::RuleSet;
use crate::snapshot::PolicySnapshot;
use flagnet_core::{AgencyId, PolicyContent, RoleName};
use std::sync::Arc;

/// The policy tests an edit must pass, as read from a node's `policy.dir`.
#[derive(Debug, Clone)]
pub struct PolicyTestSet {
    /// where they were read from, for messages
    pub source: String,
    /// the rows, or why they could not be read (then nothing can be applied)
    pub cases: Result<Vec<PolicyTestCase>, String>,
}

/// What the gate needs to know besides the candidate.
#[derive(Debug, Clone)]
pub struct ReviewContext {
    /// the snapshot in force, and the hash of its content
    pub current: Arc<PolicySnapshot>,
    pub current_hash: String,
    /// agencies the snapshot is built with (the node's own)
    pub snapshot_agencies: Vec<AgencyId>,
    /// agencies the impact is computed over besides those the rules name
    pub impact_agencies: Vec<AgencyId>,
    /// a role someone at this agency must still hold afterwards (the node's
    /// privacy officers), so no edit locks the agency out of its own policy
    pub keep_role: Option<(AgencyId, RoleName)>,
    pub tests: Arc<PolicyTestSet>,
}

/// The verdict on one candidate.
#[derive(Debug)]
pub struct ChangeReview {
    pub content: PolicyContent,
    pub content_hash: String,
    /// validation problems; empty when the candidate is a valid policy
    pub problems: Vec<String>,
    /// the built snapshot, when valid: what `DecisionEngine::replace` takes
    pub snapshot: Option<PolicySnapshot>,
    /// the policy tests decided by the candidate, when it built
    pub tests: Option<PolicyTestReport>,
    /// why the tests could not be run at all
    pub tests_error: Option<String>,
    pub impact: DecisionImpact,
    pub rules: RuleDiff,
}

impl ChangeReview {
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn tests_pass(&self) -> bool {
        self.tests_error.is_none() && self.tests.as_ref().is_some_and(PolicyTestReport::passed)
    }

    /// Why this candidate may not be applied, or `None` when it may.
    pub fn refusal(&self) -> Option<String> {
        if !self.problems.is_empty() {
            return Some(format!("the policy is not valid: {}", self.problems.join("; ")));
        }
        if let Some(error) = &self.tests_error {
            return Some(format!("the policy tests cannot be run: {error}"));
        }
        let report = self.tests.as_ref()?;
        let failures = report.failures();
        if failures.is_empty() {
            return None;
        }
        let shown: Vec<String> = failures.iter().take(3).map(ToString::to_string).collect();
        let more = failures.len().saturating_sub(shown.len());
        let more = if more > 0 {
            format!(" (and {more} more)")
        } else {
            String::new()
        };
        Some(format!(
            "{} of {} policy tests fail: {}{more}",
            failures.len(),
            report.rows(),
            shown.join("; ")
        ))
    }
}

/// Checks, builds, tests and compares `candidate` against `context.current`.
/// Deciding the policy tests through Casbin and comparing every decision is
/// CPU work, so it runs on a blocking thread; a panic there refuses the
/// candidate instead of taking the caller down.
pub async fn review_change(context: &ReviewContext, candidate: PolicyContent) -> ChangeReview {
    let content_hash = candidate.content_hash();
    let mut review = ChangeReview {
        content: candidate,
        content_hash,
        problems: Vec::new(),
        snapshot: None,
        tests: None,
        tests_error: None,
        impact: DecisionImpact::default(),
        rules: RuleDiff::default(),
    };
    if let Err(error) = review.content.validate() {
        review.problems.push(error.to_string());
        return review;
    }
    let rules = match RuleSet::from_content(&review.content) {
        Ok(rules) => rules,
        Err(error) => {
            review.problems.push(error.to_string());
            return review;
        }
    };
    let snapshot = match PolicySnapshot::build(rules, &context.snapshot_agencies).await {
        Ok(snapshot) => snapshot,
        Err(error) => {
            review.problems.push(error.to_string());
            return review;
        }
    };
    if review.content_hash == context.current_hash {
        review
            .problems
            .push("the change changes nothing: the result is the policy in force".to_owned());
    }
    if let Some((agency, role)) = &context.keep_role
        && !snapshot
            .roles_held_at(agency)
            .iter()
            .any(|held| snapshot.role_includes(held, role))
    {
        review.problems.push(format!(
            "nobody at {agency} would hold the role {role} any more, and nobody could administer this policy; \
             assign it to someone in the same change"
        ));
    }
    let work = context.clone();
    let tested = tokio::task::spawn_blocking(move || {
        let rules = rule_diff(work.current.rules(), snapshot.rules());
        let impact = decision_impact(&work.current, &snapshot, &work.impact_agencies);
        let tests = match &work.tests.cases {
            Ok(cases) => Ok(run_policy_tests_on(&snapshot, cases, CrossCheck::WithCasbin)),
            Err(error) => Err(format!("{}: {error}", work.tests.source)),
        };
        (snapshot, rules, impact, tests)
    })
    .await;
    match tested {
        Ok((snapshot, rules, impact, tests)) => {
            review.rules = rules;
            review.impact = impact;
            match tests {
                Ok(report) => review.tests = Some(report),
                Err(error) => review.tests_error = Some(error),
            }
            review.snapshot = Some(snapshot);
        }
        Err(error) => {
            tracing::error!(%error, "testing a candidate policy failed; refusing it");
            review
                .problems
                .push("the policy engine failed while testing this policy".to_owned());
        }
    }
    review
}
