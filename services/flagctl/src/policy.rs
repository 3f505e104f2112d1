//! `flagctl policy`: access policies. `policy test` runs the policy tests
//! (`policies/tests/cases.csv`) against a policy directory on this machine,
//! with no node: each row decided by the snapshot a node would serve and by
//! casbin-rs, then every tuple the policy names compared between the two. It
//! prints each failure with its line, the request, what was expected and what
//! came out, and fails on any. `--emit FILE` writes the decisions for
//! `policies/tests/oracle.py --compare FILE` (the pycasbin oracle).

use crate::failure::Failure;
use crate::output;
use clap::{Args, Subcommand};
use flagnet_policy::{CrossCheck, PolicySnapshot, PolicySource, parse_policy_tests, run_policy_tests_on};
use flagnet_proto::v1 as pb;
use flagnet_proto::v1::policy_admin_client::PolicyAdminClient;
use flagnet_trust::client::ClientProfile;
use serde_json::json;
use std::path::PathBuf;

/// Casbin calls spent comparing the snapshot with casbin-rs beyond the rows
/// themselves; past this an even sample is compared.
const CROSS_CHECK_LIMIT: usize = 50_000;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Run the policy tests against a policy directory (offline; no node needed).
    Test(TestArgs),
    /// The break-the-glass review queue (privacy officers).
    #[command(subcommand)]
    Review(ReviewCommand),
}

#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// Overrides of your agency's flags awaiting review.
    List {
        /// include resolved items too
        #[arg(long)]
        all: bool,
    },
    /// Close a review item.
    Resolve {
        id: String,
        /// the override was justified (otherwise it was not)
        #[arg(long)]
        justified: bool,
        /// what the review found
        #[arg(long)]
        note: String,
    },
}

fn review_row(item: &pb::ReviewItem) -> Vec<String> {
    let state = if item.resolved_at.is_empty() {
        "open".to_owned()
    } else {
        format!(
            "{} by {} ({})",
            if item.justified { "justified" } else { "not justified" },
            item.resolved_by,
            item.note
        )
    };
    vec![
        item.review_id.clone(),
        item.created_at.clone(),
        format!("{}/{}", item.actor_agency, item.actor_user),
        item.field_classes
            .iter()
            .map(|class| output::field_class_name(*class))
            .collect::<Vec<_>>()
            .join(", "),
        item.reason.clone(),
        item.incident_id.clone(),
        state,
    ]
}

async fn review(profile: &ClientProfile, command: ReviewCommand, json: bool) -> Result<(), Failure> {
    let channel = profile
        .connect()
        .await
        .map_err(|error| Failure::Connection(error.to_string()))?;
    let mut client = PolicyAdminClient::new(channel);
    let items = match command {
        ReviewCommand::List { all } => {
            client
                .review_queue(pb::ReviewQueueRequest { include_resolved: all })
                .await
                .map_err(|status| Failure::from_status(profile, status))?
                .into_inner()
                .items
        }
        ReviewCommand::Resolve { id, justified, note } => vec![
            client
                .resolve_review(pb::ResolveReviewRequest {
                    review_id: id,
                    justified,
                    note,
                })
                .await
                .map_err(|status| Failure::from_status(profile, status))?
                .into_inner(),
        ],
    };
    if json {
        let rows: Vec<serde_json::Value> = items
            .iter()
            .map(|item| {
                let row = review_row(item);
                json!({"review_id": row[0], "created_at": row[1], "actor": row[2], "field_classes": row[3],
                       "reason": row[4], "incident_id": row[5], "state": row[6], "request_id": item.request_id,
                       "flag_id": item.flag_id})
            })
            .collect();
        output::print_json(&json!(rows));
    } else {
        let headers = ["review", "when", "who", "classes", "reason", "incident", "state"];
        println!("{}", output::table(&headers, items.iter().map(review_row).collect()));
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// the policy directory, holding model.conf, policy.csv and roles.csv
    #[arg(long, value_name = "DIR", default_value = "policies")]
    policy: PathBuf,
    /// the policy tests [default: DIR/tests/cases.csv]
    #[arg(long, value_name = "FILE")]
    tests: Option<PathBuf>,
    /// write the snapshot's decisions, one line per row, for oracle.py --compare
    #[arg(long, value_name = "FILE")]
    emit: Option<PathBuf>,
}

pub async fn run(profile: Option<PathBuf>, command: PolicyCommand, json: bool) -> Result<(), Failure> {
    match command {
        PolicyCommand::Test(args) => test(args, json).await,
        PolicyCommand::Review(command) => review(&crate::profile(profile)?, command, json).await,
    }
}

async fn test(args: TestArgs, json: bool) -> Result<(), Failure> {
    let tests_file = args
        .tests
        .unwrap_or_else(|| args.policy.join("tests").join("cases.csv"));
    let rules = PolicySource::new(&args.policy)
        .read()
        .map_err(|error| Failure::usage(format!("policy {}: {error}", args.policy.display())))?;
    let snapshot = PolicySnapshot::build(rules, &[])
        .await
        .map_err(|error| Failure::usage(format!("policy {}: {error}", args.policy.display())))?;
    let text = std::fs::read_to_string(&tests_file)
        .map_err(|error| Failure::usage(format!("policy tests {}: {error}", tests_file.display())))?;
    let cases = parse_policy_tests(&tests_file.display().to_string(), &text)
        .map_err(|error| Failure::usage(error.to_string()))?;
    let report = run_policy_tests_on(&snapshot, &cases, CrossCheck::WithCasbin);
    let agreement = snapshot.verify_against_casbin(CROSS_CHECK_LIMIT);
    if let Some(emit) = &args.emit {
        std::fs::write(emit, report.decisions_csv())
            .map_err(|error| Failure::usage(format!("cannot write {}: {error}", emit.display())))?;
    }
    let failures = report.failures();

    if json {
        let failed: Vec<_> = failures
            .iter()
            .map(|failure| {
                let outcome = failure.outcome;
                json!({
                    "line": outcome.case.line,
                    "role": outcome.case.role.as_str(),
                    "actor_agency": outcome.case.actor.as_str(),
                    "owner_agency": outcome.case.owner.as_str(),
                    "field_class": outcome.case.request.object(),
                    "purpose": outcome.case.request.purpose(),
                    "expected": verdict(outcome.case.expected),
                    "got": verdict(outcome.got),
                    "casbin": outcome.casbin.map(verdict),
                    "message": failure.to_string(),
                })
            })
            .collect();
        output::print_json(&json!({
            "policy": args.policy.display().to_string(),
            "tests": tests_file.display().to_string(),
            "rows": report.rows(),
            "failed": failed,
            "casbin_cross_check": {
                "compared": agreement.checked,
                "sampled_out": agreement.skipped,
                "disagreements": agreement.disagreements,
            },
        }));
    } else {
        for failure in &failures {
            println!("FAIL {failure}");
        }
        for disagreement in &agreement.disagreements {
            println!("DISAGREE {disagreement}");
        }
        let sampled = if agreement.skipped > 0 {
            format!(" (a sample; {} not compared)", agreement.skipped)
        } else {
            String::new()
        };
        println!(
            "casbin-rs cross-check: {} decisions compared{sampled}, {} disagreements",
            agreement.checked,
            agreement.disagreements.len()
        );
        println!(
            "policy tests {}: {} rows, {} passed, {} failed",
            tests_file.display(),
            report.rows(),
            report.rows() - failures.len(),
            failures.len()
        );
    }

    if !failures.is_empty() || !agreement.disagreements.is_empty() {
        return Err(Failure::usage(format!(
            "policy tests failed: {} of {} rows, {} disagreements with casbin-rs",
            failures.len(),
            report.rows(),
            agreement.disagreements.len()
        )));
    }
    Ok(())
}

fn verdict(allowed: bool) -> &'static str {
    if allowed { "allow" } else { "deny" }
}
