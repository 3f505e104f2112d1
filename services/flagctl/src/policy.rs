//! `flagctl policy`: access policies, for privacy officers.
//!
//! Against the node (`--profile`): `show` the stored version in force (or
//! any other), `propose` a change and see its impact, its policy tests and
//! its validation without changing anything, `apply` it against the version
//! you saw, list `history`, `diff` two versions, `rollback` to an earlier
//! one, and, under the two-person rule, list what is `pending` and `approve`
//! or `reject` it. Impacts print as one row per who / change / whose flags /
//! purpose, so "rolla-pd dispatcher gains `safety` on phelps-so flags for
//! emergency_response" reads across a row; `--json` gives every flipped
//! decision.
//!
//! Offline: `policy test` runs the policy tests (`policies/tests/cases.csv`)
//! against a policy directory on this machine, with no node: each row
//! decided by the snapshot a node would serve and by casbin-rs, then every
//! tuple the policy names compared between the two. It prints each failure
//! with its line, the request, what was expected and what came out, and
//! fails on any. `--emit FILE` writes the decisions for
//! `policies/tests/oracle.py --compare FILE` (the pycasbin oracle).
//!
//! `policy review` is the break-the-glass review queue.

use crate::failure::Failure;
use crate::output;
use clap::{Args, Subcommand};
use flagnet_policy::{CrossCheck, PolicySnapshot, PolicySource, parse_policy_tests, run_policy_tests_on};
use flagnet_proto::v1 as pb;
use flagnet_proto::v1::policy_admin_client::PolicyAdminClient;
use flagnet_trust::client::ClientProfile;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use tonic::transport::Channel;

/// Casbin calls spent comparing the snapshot with casbin-rs beyond the rows
/// themselves; past this an even sample is compared.
const CROSS_CHECK_LIMIT: usize = 50_000;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// The policy in force at your node (or another stored version).
    Show(ShowArgs),
    /// Preview a change: validation, policy tests and every decision it flips; changes nothing.
    Propose(ChangeArgs),
    /// Apply a change against the version you saw (refused if it moved, is invalid, or fails a test).
    Apply(ApplyArgs),
    /// The stored versions, newest first.
    History(HistoryArgs),
    /// The rules and decisions that differ between two versions.
    Diff(DiffArgs),
    /// Make an earlier version's policy current again (as a new version).
    Rollback(RollbackArgs),
    /// Changes waiting for a second privacy officer (two-person rule).
    Pending {
        /// include approved and rejected ones
        #[arg(long)]
        all: bool,
    },
    /// Approve another privacy officer's pending change: it is tested again and applied.
    Approve {
        /// the proposal id, from `policy pending`
        id: String,
    },
    /// Reject a pending change (or withdraw your own).
    Reject {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Run the policy tests against a policy directory (offline; no node needed).
    Test(TestArgs),
    /// The break-the-glass review queue (privacy officers).
    #[command(subcommand)]
    Review(ReviewCommand),
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// a stored version [default: the one in force]
    #[arg(long, value_name = "N")]
    version: Option<u64>,
    /// print model.conf too
    #[arg(long)]
    model: bool,
}

/// A change: rules to add and remove, or a whole policy file.
#[derive(Debug, Args, Clone)]
pub struct ChangeArgs {
    /// a rule to add, as a policy file writes it ("p, dispatcher, any, same, safety, welfare_check, allow"
    /// or "g, user, role, agency"); repeat for more
    #[arg(long = "add", value_name = "RULE")]
    add: Vec<String>,
    /// a rule to remove, written as it is in the policy; repeat for more
    #[arg(long = "remove", value_name = "RULE")]
    remove: Vec<String>,
    /// a whole policy.csv instead of --add/--remove
    #[arg(long, value_name = "FILE", conflicts_with_all = ["add", "remove"])]
    policy_file: Option<PathBuf>,
    /// with --policy-file: a whole roles.csv too [default: keep the current one]
    #[arg(long, value_name = "FILE", requires = "policy_file")]
    roles_file: Option<PathBuf>,
    /// with --policy-file: a new model.conf too [default: keep the current one]
    #[arg(long, value_name = "FILE", requires = "policy_file")]
    model_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// the version you read and proposed against (`policy show`, `policy propose`)
    #[arg(long, value_name = "N")]
    expected_version: u64,
    /// why, for the history and the audit log
    #[arg(long)]
    reason: String,
    #[command(flatten)]
    change: ChangeArgs,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// at most this many versions
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// only versions below this one
    #[arg(long, value_name = "N")]
    before: Option<u64>,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// the earlier version
    from: u64,
    /// the later version [default: the one in force]
    to: Option<u64>,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// the version whose policy becomes current again
    #[arg(long, value_name = "N")]
    to: u64,
    #[arg(long)]
    reason: String,
    /// the version you saw in force; refused if it moved [default: whatever is in force]
    #[arg(long, value_name = "N")]
    expected_version: Option<u64>,
}

impl ChangeArgs {
    fn message(&self) -> Result<pb::PolicyChange, Failure> {
        let read = |path: &PathBuf| {
            std::fs::read_to_string(path).map_err(|error| Failure::usage(format!("{}: {error}", path.display())))
        };
        if let Some(policy) = &self.policy_file {
            return Ok(pb::PolicyChange {
                add: Vec::new(),
                remove: Vec::new(),
                whole: Some(pb::WholePolicy {
                    policy_csv: read(policy)?,
                    roles_csv: self.roles_file.as_ref().map(read).transpose()?,
                    model_conf: self.model_file.as_ref().map(read).transpose()?,
                }),
            });
        }
        if self.add.is_empty() && self.remove.is_empty() {
            return Err(Failure::usage(
                "give the change: --add RULE and --remove RULE (repeatable), or --policy-file FILE",
            ));
        }
        Ok(pb::PolicyChange {
            add: self.add.clone(),
            remove: self.remove.clone(),
            whole: None,
        })
    }

    /// The same change as flagctl arguments, for the "apply with" hint.
    fn as_arguments(&self) -> String {
        let quote = |value: &str| format!("'{}'", value.replace('\'', "'\\''"));
        let mut words = Vec::new();
        for rule in &self.add {
            words.push(format!("--add {}", quote(rule)));
        }
        for rule in &self.remove {
            words.push(format!("--remove {}", quote(rule)));
        }
        for (flag, path) in [
            ("--policy-file", &self.policy_file),
            ("--roles-file", &self.roles_file),
            ("--model-file", &self.model_file),
        ] {
            if let Some(path) = path {
                words.push(format!("{flag} {}", quote(&path.display().to_string())));
            }
        }
        words.join(" ")
    }
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
        command => administer(&crate::profile(profile)?, command, json).await,
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

async fn admin_client(profile: &ClientProfile) -> Result<PolicyAdminClient<Channel>, Failure> {
    let channel = profile
        .connect()
        .await
        .map_err(|error| Failure::Connection(error.to_string()))?;
    Ok(PolicyAdminClient::new(channel)
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(64 * 1024 * 1024))
}

async fn administer(profile: &ClientProfile, command: PolicyCommand, json: bool) -> Result<(), Failure> {
    let mut client = admin_client(profile).await?;
    let failed = |status| Failure::from_status(profile, status);
    match command {
        PolicyCommand::Show(args) => {
            let version = client
                .get_policy(pb::GetPolicyRequest {
                    version: args.version.unwrap_or(0),
                })
                .await
                .map_err(failed)?
                .into_inner();
            print_version(&version, args.model, json);
        }
        PolicyCommand::Propose(change) => {
            let review = client
                .propose(pb::ProposeRequest {
                    change: Some(change.message()?),
                })
                .await
                .map_err(failed)?
                .into_inner();
            if json {
                output::print_json(&review_json(&review));
            } else {
                print_review(&review);
                if review.applicable {
                    println!(
                        "\napply with: flagctl policy apply --expected-version {} --reason '…' {}",
                        review.base_version,
                        change.as_arguments()
                    );
                } else {
                    println!("\nnot applicable: an apply would be refused for the reasons above");
                }
            }
        }
        PolicyCommand::Apply(args) => {
            let applied = client
                .apply(pb::ApplyRequest {
                    expected_version: args.expected_version,
                    change: Some(args.change.message()?),
                    reason: args.reason,
                })
                .await
                .map_err(failed)?
                .into_inner();
            print_applied(&applied, json);
        }
        PolicyCommand::History(args) => {
            let versions = client
                .history(pb::HistoryRequest {
                    limit: args.limit,
                    before: args.before.unwrap_or(0),
                })
                .await
                .map_err(failed)?
                .into_inner()
                .versions;
            if json {
                output::print_json(&json!(versions.iter().map(version_json).collect::<Vec<_>>()));
            } else {
                let headers = ["version", "when", "by", "change", "reason", "impact", "hash"];
                let rows = versions
                    .iter()
                    .map(|version| {
                        vec![
                            version.version.to_string(),
                            version.created_at.clone(),
                            who(&version.author),
                            describe_kind(&version.kind, version.rolled_back_to, &version.approved_by),
                            version.reason.clone(),
                            version.impact_summary.clone(),
                            short_hash(&version.content_hash),
                        ]
                    })
                    .collect();
                println!("{}", output::table(&headers, rows));
            }
        }
        PolicyCommand::Diff(args) => {
            let diff = client
                .diff(pb::DiffRequest {
                    from_version: args.from,
                    to_version: args.to.unwrap_or(0),
                })
                .await
                .map_err(failed)?
                .into_inner();
            if json {
                output::print_json(&json!({
                    "from_version": diff.from_version,
                    "to_version": diff.to_version,
                    "rules": rules_json(diff.rules.as_ref()),
                    "impact": impact_json(diff.impact.as_ref()),
                }));
            } else {
                println!("from version {} to version {}", diff.from_version, diff.to_version);
                print_rules(diff.rules.as_ref());
                print_impact(diff.impact.as_ref());
            }
        }
        PolicyCommand::Rollback(args) => {
            let applied = client
                .rollback(pb::RollbackRequest {
                    to_version: args.to,
                    reason: args.reason,
                    expected_version: args.expected_version.unwrap_or(0),
                })
                .await
                .map_err(failed)?
                .into_inner();
            print_applied(&applied, json);
        }
        PolicyCommand::Pending { all } => {
            let changes = client
                .list_pending(pb::ListPendingRequest { include_closed: all })
                .await
                .map_err(failed)?
                .into_inner()
                .changes;
            if json {
                output::print_json(&json!(changes.iter().map(pending_json).collect::<Vec<_>>()));
            } else if changes.is_empty() {
                println!("no changes are waiting for approval");
            } else {
                let headers = [
                    "proposal",
                    "state",
                    "on version",
                    "by",
                    "when",
                    "change",
                    "reason",
                    "impact",
                ];
                let rows = changes
                    .iter()
                    .map(|change| {
                        vec![
                            change.proposal_id.clone(),
                            change.state.clone(),
                            change.base_version.to_string(),
                            who(&change.proposed_by),
                            change.proposed_at.clone(),
                            rules_brief(change.rules.as_ref(), &change.kind, change.rolled_back_to),
                            change.reason.clone(),
                            change.impact_summary.clone(),
                        ]
                    })
                    .collect();
                println!("{}", output::table(&headers, rows));
            }
        }
        PolicyCommand::Approve { id } => {
            let applied = client
                .approve(pb::ApproveRequest { proposal_id: id })
                .await
                .map_err(failed)?
                .into_inner();
            print_applied(&applied, json);
        }
        PolicyCommand::Reject { id, reason } => {
            let rejected = client
                .reject(pb::RejectRequest {
                    proposal_id: id,
                    reason,
                })
                .await
                .map_err(failed)?
                .into_inner();
            if json {
                output::print_json(&pending_json(&rejected));
            } else {
                println!("rejected {}: {}", rejected.proposal_id, rejected.close_reason);
            }
        }
        PolicyCommand::Test(_) | PolicyCommand::Review(_) => {
            return Err(Failure::usage("internal: not a node policy command"));
        }
    }
    Ok(())
}

/// `spiffe://fed/agency/phelps-so/user/privacy_officer1` as `phelps-so/privacy_officer1`.
fn who(spiffe_id: &str) -> String {
    match spiffe_id.split_once("/agency/") {
        Some((_, rest)) => rest.replacen("/user/", "/", 1),
        None => spiffe_id.to_owned(),
    }
}

fn short_hash(hash: &str) -> String {
    hash.chars().take(12).collect()
}

fn describe_kind(kind: &str, rolled_back_to: u64, approved_by: &str) -> String {
    let base = match kind {
        "rollback" => format!("rollback to v{rolled_back_to}"),
        other => other.to_owned(),
    };
    if approved_by.is_empty() {
        base
    } else {
        format!("{base}, approved by {}", who(approved_by))
    }
}

fn print_version(version: &pb::PolicyVersion, with_model: bool, json: bool) {
    if json {
        let mut value = version_json(version);
        value["model_conf"] = json!(version.model_conf);
        value["policy_csv"] = json!(version.policy_csv);
        value["roles_csv"] = json!(version.roles_csv);
        output::print_json(&value);
        return;
    }
    println!(
        "version {} ({}) by {} at {}",
        version.version,
        describe_kind(&version.kind, version.rolled_back_to, &version.approved_by),
        who(&version.author),
        version.created_at
    );
    println!("reason: {}", version.reason);
    if !version.impact_summary.is_empty() {
        println!("impact: {}", version.impact_summary);
    }
    println!("content hash: {}", version.content_hash);
    if with_model {
        println!("\n## model.conf\n{}", version.model_conf.trim_end());
    }
    println!("\n## policy.csv\n{}", version.policy_csv.trim_end());
    println!("\n## roles.csv\n{}", version.roles_csv.trim_end());
}

fn version_json(version: &pb::PolicyVersion) -> Value {
    json!({
        "version": version.version,
        "base_version": version.base_version,
        "author": version.author,
        "created_at": version.created_at,
        "reason": version.reason,
        "kind": version.kind,
        "rolled_back_to": (version.rolled_back_to != 0).then_some(version.rolled_back_to),
        "content_hash": version.content_hash,
        "impact_summary": version.impact_summary,
        "proposal_id": (!version.proposal_id.is_empty()).then_some(&version.proposal_id),
        "approved_by": (!version.approved_by.is_empty()).then_some(&version.approved_by),
        "approved_at": (!version.approved_at.is_empty()).then_some(&version.approved_at),
    })
}

fn rules_json(rules: Option<&pb::RuleChanges>) -> Value {
    let rules = rules.cloned().unwrap_or_default();
    json!({"added": rules.added, "removed": rules.removed, "model_changed": rules.model_changed})
}

fn impact_json(impact: Option<&pb::Impact>) -> Value {
    let Some(impact) = impact else {
        return Value::Null;
    };
    let flips: Vec<Value> = impact
        .flips
        .iter()
        .map(|flip| {
            json!({
                "role": flip.role,
                "actor_agency": flip.actor_agency,
                "owner_agency": flip.owner_agency,
                "purpose": flip.purpose,
                "field_class": flip.field_class,
                "change": if flip.allowed_after { "gains" } else { "loses" },
                "summary": flip.summary,
            })
        })
        .collect();
    json!({
        "summary": impact.summary,
        "gained": impact.gained,
        "lost": impact.lost,
        "compared": impact.compared,
        "complete": impact.complete,
        "flips_truncated": impact.flips_truncated,
        "flips": flips,
    })
}

fn tests_json(tests: Option<&pb::PolicyTestResults>) -> Value {
    let Some(tests) = tests else {
        return Value::Null;
    };
    let failures: Vec<Value> = tests
        .failures
        .iter()
        .map(|failure| {
            json!({
                "line": failure.line,
                "role": failure.role,
                "actor_agency": failure.actor_agency,
                "owner_agency": failure.owner_agency,
                "field_class": failure.field_class,
                "purpose": failure.purpose,
                "expected": failure.expected,
                "got": failure.got,
                "message": failure.message,
            })
        })
        .collect();
    json!({
        "source": tests.source,
        "ran": tests.ran,
        "rows": tests.rows,
        "passed": tests.passed,
        "failed": failures,
        "error": (!tests.error.is_empty()).then_some(&tests.error),
    })
}

fn review_json(review: &pb::ProposeResponse) -> Value {
    json!({
        "base_version": review.base_version,
        "valid": review.valid,
        "applicable": review.applicable,
        "problems": review.problems,
        "content_hash": review.content_hash,
        "rules": rules_json(review.rules.as_ref()),
        "tests": tests_json(review.tests.as_ref()),
        "impact": impact_json(review.impact.as_ref()),
    })
}

fn pending_json(change: &pb::PendingChange) -> Value {
    json!({
        "proposal_id": change.proposal_id,
        "state": change.state,
        "base_version": change.base_version,
        "proposed_by": change.proposed_by,
        "proposed_at": change.proposed_at,
        "reason": change.reason,
        "kind": change.kind,
        "rolled_back_to": (change.rolled_back_to != 0).then_some(change.rolled_back_to),
        "impact_summary": change.impact_summary,
        "rules": rules_json(change.rules.as_ref()),
        "content_hash": change.content_hash,
        "closed_by": (!change.closed_by.is_empty()).then_some(&change.closed_by),
        "closed_at": (!change.closed_at.is_empty()).then_some(&change.closed_at),
        "close_reason": (!change.close_reason.is_empty()).then_some(&change.close_reason),
        "applied_version": (change.applied_version != 0).then_some(change.applied_version),
    })
}

fn rules_brief(rules: Option<&pb::RuleChanges>, kind: &str, rolled_back_to: u64) -> String {
    if kind == "rollback" {
        return format!("rollback to v{rolled_back_to}");
    }
    let rules = rules.cloned().unwrap_or_default();
    let mut lines: Vec<String> = rules.added.iter().map(|rule| format!("+ {rule}")).collect();
    lines.extend(rules.removed.iter().map(|rule| format!("- {rule}")));
    if rules.model_changed {
        lines.push("model changed".to_owned());
    }
    lines.join("\n")
}

fn print_rules(rules: Option<&pb::RuleChanges>) {
    let rules = rules.cloned().unwrap_or_default();
    if rules.added.is_empty() && rules.removed.is_empty() && !rules.model_changed {
        println!("rules: none differ");
        return;
    }
    println!("rules:");
    for rule in &rules.added {
        println!("  + {rule}");
    }
    for rule in &rules.removed {
        println!("  - {rule}");
    }
    if rules.model_changed {
        println!("  the model (model.conf) changes");
    }
    let assignment = |rule: &&String| rule.starts_with("g,");
    let gains = rules.added.iter().filter(assignment);
    let losses = rules.removed.iter().filter(assignment);
    for (verb, rule) in gains
        .map(|rule| ("gains", rule))
        .chain(losses.map(|rule| ("loses", rule)))
    {
        let fields: Vec<&str> = rule.split(',').map(str::trim).collect();
        if let [_, user, role, agency] = fields.as_slice() {
            println!("  {agency} {user} {verb} the role {role}");
        }
    }
}

/// One table row per (who, change, whose flags, purpose): the classes gained
/// or lost together, so a row reads as one sentence.
fn print_impact(impact: Option<&pb::Impact>) {
    let Some(impact) = impact else {
        return;
    };
    let partial = if impact.complete {
        String::new()
    } else {
        "; the policy is too large to compare in full, so only what the changed rules name was compared".to_owned()
    };
    println!(
        "impact: {} gained, {} lost, of {} decisions compared{partial}",
        impact.gained, impact.lost, impact.compared
    );
    if impact.flips.is_empty() {
        return;
    }
    let mut rows: BTreeMap<(bool, String, String, String, String), Vec<String>> = BTreeMap::new();
    for flip in &impact.flips {
        rows.entry((
            !flip.allowed_after,
            flip.actor_agency.clone(),
            flip.role.clone(),
            flip.owner_agency.clone(),
            flip.purpose.clone(),
        ))
        .or_default()
        .push(format!("`{}`", flip.field_class));
    }
    let rows = rows
        .into_iter()
        .map(|((lost, actor, role, owner, purpose), classes)| {
            let change = if lost { "loses" } else { "gains" };
            vec![
                format!("{actor} {role}"),
                format!("{change} {}", classes.join(", ")),
                format!("on {owner} flags"),
                format!("for {purpose}"),
            ]
        })
        .collect();
    println!("{}", output::table(&["who", "change", "whose flags", "purpose"], rows));
    if impact.flips_truncated {
        println!("(only the first {} flipped decisions are listed)", impact.flips.len());
    }
}

fn print_tests(tests: Option<&pb::PolicyTestResults>) {
    let Some(tests) = tests else {
        return;
    };
    if !tests.ran {
        println!("policy tests ({}): not run: {}", tests.source, tests.error);
        return;
    }
    println!(
        "policy tests ({}): {} rows, {} passed, {} failed",
        tests.source,
        tests.rows,
        tests.passed,
        tests.failures.len()
    );
    for failure in &tests.failures {
        println!("  FAIL {}", failure.message);
    }
}

fn print_review(review: &pb::ProposeResponse) {
    println!(
        "against version {}{}",
        review.base_version,
        if review.content_hash.is_empty() {
            String::new()
        } else {
            format!(" (the result would hash to {})", short_hash(&review.content_hash))
        }
    );
    print_rules(review.rules.as_ref());
    if review.valid {
        println!("validation: ok");
    } else {
        println!("validation: refused");
        for problem in &review.problems {
            println!("  {problem}");
        }
    }
    print_tests(review.tests.as_ref());
    print_impact(review.impact.as_ref());
}

fn print_applied(applied: &pb::ApplyResponse, json: bool) {
    if json {
        output::print_json(&json!({
            "applied": applied.applied,
            "version": applied.version.as_ref().map(version_json),
            "pending": applied.pending.as_ref().map(pending_json),
            "review": applied.review.as_ref().map(review_json),
        }));
        return;
    }
    if let Some(review) = &applied.review {
        print_review(review);
        println!();
    }
    match (&applied.version, &applied.pending) {
        (Some(version), _) if applied.applied => println!(
            "applied: version {} is in force (it replaced version {}); impact {}",
            version.version, version.base_version, version.impact_summary
        ),
        (_, Some(pending)) => println!(
            "pending: proposal {} waits for a second privacy officer (flagctl policy approve {})",
            pending.proposal_id, pending.proposal_id
        ),
        _ => println!("nothing was applied"),
    }
}
