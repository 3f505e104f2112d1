//! `flagctl audit …`, the auditor's commands: search the log, verify it,
//! export it as JSON lines (with a progress bar on a terminal), produce a
//! subject's accounting of disclosures, and show the signed checkpoint.

use crate::failure::Failure;
use crate::output::{print_json, table};
use clap::{Args, Subcommand};
use flagnet_proto::v1 as pb;
use flagnet_proto::v1::audit_log_client::AuditLogClient;
use flagnet_trust::client::ClientProfile;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use tonic::transport::Channel;

/// How an auditor names a subject: what they would type.
#[derive(Debug, Args, Clone)]
pub struct SubjectArgs {
    #[arg(long)]
    phone: Option<String>,
    /// "Given Family", with --dob
    #[arg(long, requires = "dob")]
    name: Option<String>,
    #[arg(long, requires = "name")]
    dob: Option<String>,
}

impl SubjectArgs {
    fn query(&self) -> Result<Option<pb::SubjectQuery>, Failure> {
        let key = if let Some(phone) = &self.phone {
            pb::subject_query::Key::Phone(phone.clone())
        } else if let Some(name) = &self.name {
            let (given, family) = name
                .trim()
                .rsplit_once(' ')
                .ok_or_else(|| Failure::usage("--name needs a given and a family name"))?;
            pb::subject_query::Key::NameAndBirthDate(pb::NameAndBirthDate {
                given_name: given.trim().into(),
                family_name: family.trim().into(),
                birth_date: self.dob.clone().unwrap_or_default(),
            })
        } else {
            return Ok(None);
        };
        Ok(Some(pb::SubjectQuery { key: Some(key) }))
    }
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// RFC 3339, inclusive
    #[arg(long, default_value = "")]
    from: String,
    /// RFC 3339, exclusive
    #[arg(long, default_value = "")]
    to: String,
    #[arg(long, default_value = "")]
    agency: String,
    #[arg(long, default_value = "")]
    user: String,
    /// lookup, federated_query, put_flag, authentication_refused, audit_read, …
    #[arg(long, default_value = "")]
    action: String,
    #[arg(long, default_value = "")]
    incident: String,
    #[arg(long, default_value = "")]
    request: String,
    /// ok, denied, invalid, unauthenticated, unavailable, error
    #[arg(long, default_value = "")]
    outcome: String,
    #[command(flatten)]
    subject: SubjectArgs,
    #[arg(long, default_value_t = 50)]
    page_size: u32,
    #[arg(long, default_value = "")]
    page_token: String,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Find records by time, actor, agency, incident, outcome or subject.
    Search(Box<SearchArgs>),
    /// Recompute the log and report the first bad record.
    Verify,
    /// Every record from an index on, as JSON lines.
    Export {
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// write here instead of standard output
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// A subject's accounting of disclosures.
    Disclosures(SubjectArgs),
    /// The newest signed checkpoint (--fresh signs one now).
    Checkpoint {
        #[arg(long)]
        fresh: bool,
    },
}

async fn client(profile: &ClientProfile) -> Result<AuditLogClient<Channel>, Failure> {
    let channel = profile
        .connect()
        .await
        .map_err(|error| Failure::Connection(error.to_string()))?;
    Ok(AuditLogClient::new(channel))
}

fn checkpoint_json(checkpoint: &pb::SignedCheckpoint) -> Value {
    json!({
        "agency": checkpoint.agency, "tree_size": checkpoint.tree_size, "root_hash": checkpoint.root_hash,
        "time": checkpoint.time, "signature": checkpoint.signature, "public_key_pem": checkpoint.public_key_pem,
    })
}

fn summary_row(entry: &pb::AuditEntry) -> Vec<String> {
    let record: Value = serde_json::from_str(&entry.record_json).unwrap_or(Value::Null);
    let text = |key: &str| match &record[key] {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    vec![
        entry.index.to_string(),
        text("time"),
        format!("{}/{}", text("actor_agency"), text("actor_user")),
        text("action"),
        text("outcome"),
        text("incident_id"),
        text("request_id"),
    ]
}

pub async fn run(profile: &ClientProfile, command: AuditCommand, json: bool) -> Result<(), Failure> {
    let mut client = client(profile).await?;
    let failed = |status| Failure::from_status(profile, status);
    match command {
        AuditCommand::Search(args) => {
            let request = pb::AuditSearchRequest {
                from: args.from.clone(),
                to: args.to.clone(),
                actor_agency: args.agency.clone(),
                actor_user: args.user.clone(),
                action: args.action.clone(),
                incident_id: args.incident.clone(),
                request_id: args.request.clone(),
                outcome: args.outcome.clone(),
                subject: args.subject.query()?,
                page_size: args.page_size,
                page_token: args.page_token.clone(),
            };
            let page = client.search(request).await.map_err(failed)?.into_inner();
            if json {
                let records: Vec<Value> = page
                    .records
                    .iter()
                    .map(|entry| {
                        json!({"index": entry.index, "leaf_hash": entry.leaf_hash,
                               "record": serde_json::from_str::<Value>(&entry.record_json).unwrap_or(Value::Null)})
                    })
                    .collect();
                print_json(&json!({"records": records, "next_page_token": page.next_page_token}));
            } else {
                let rows = page.records.iter().map(summary_row).collect();
                println!(
                    "{}",
                    table(
                        &["index", "time", "actor", "action", "outcome", "incident", "request"],
                        rows
                    )
                );
                if !page.next_page_token.is_empty() {
                    println!("more: --page-token {}", page.next_page_token);
                }
            }
        }
        AuditCommand::Verify => {
            let report = client
                .verify(pb::AuditVerifyRequest {})
                .await
                .map_err(failed)?
                .into_inner();
            if json {
                print_json(&json!({
                    "ok": report.ok, "size": report.size, "root_hash": report.root_hash,
                    "first_bad_index": (!report.ok).then_some(report.first_bad_index),
                    "reason": report.reason, "checkpoints_checked": report.checkpoints_checked,
                    "latest_checkpoint": report.latest_checkpoint.as_ref().map(checkpoint_json),
                }));
            } else if report.ok {
                println!(
                    "the log verifies: {} records, root {}, {} signed checkpoint(s) checked",
                    report.size, report.root_hash, report.checkpoints_checked
                );
            } else {
                println!(
                    "the log does NOT verify: record {} is bad: {}",
                    report.first_bad_index, report.reason
                );
            }
            if !report.ok {
                return Err(Failure::Status(tonic::Status::data_loss(format!(
                    "record {}: {}",
                    report.first_bad_index, report.reason
                ))));
            }
        }
        AuditCommand::Export { from, output } => {
            let mut stream = client
                .export(pb::AuditExportRequest { from_index: from })
                .await
                .map_err(failed)?
                .into_inner();
            let mut sink: Box<dyn Write> = match &output {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path)
                        .map_err(|error| Failure::usage(format!("{}: {error}", path.display())))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout())),
            };
            let progress = if std::io::stderr().is_terminal() && (output.is_some() || !std::io::stdout().is_terminal())
            {
                let bar = ProgressBar::new(0);
                bar.set_style(
                    ProgressStyle::with_template("{bar:40} {pos}/{len} records ({eta} left)")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                Some(bar)
            } else {
                None
            };
            let mut written = 0u64;
            while let Some(line) = stream.message().await.map_err(failed)? {
                if let Some(bar) = &progress {
                    bar.set_length(line.total.saturating_sub(from));
                    bar.inc(1);
                }
                writeln!(sink, "{}", line.json).map_err(|error| Failure::usage(format!("write: {error}")))?;
                written += 1;
            }
            sink.flush()
                .map_err(|error| Failure::usage(format!("write: {error}")))?;
            if let Some(bar) = progress {
                bar.finish_and_clear();
            }
            if output.is_some() {
                eprintln!("exported {written} records");
            }
        }
        AuditCommand::Disclosures(subject) => {
            let query = subject
                .query()?
                .ok_or_else(|| Failure::usage("name the subject with --phone or --name and --dob"))?;
            let answer = client
                .disclosures(pb::DisclosuresRequest { subject: Some(query) })
                .await
                .map_err(failed)?
                .into_inner();
            if json {
                let rows: Vec<Value> = answer
                    .disclosures
                    .iter()
                    .map(|d| {
                        json!({"time": d.time, "recipient_agency": d.recipient_agency, "recipient_user": d.recipient_user,
                               "recipient_roles": d.recipient_roles, "field_classes": d.field_classes, "purpose": d.purpose,
                               "incident_id": d.incident_id, "override_used": d.override_used, "request_id": d.request_id,
                               "owner_agency": d.owner_agency, "flag_id": d.flag_id})
                    })
                    .collect();
                print_json(&json!(rows));
            } else {
                let rows = answer
                    .disclosures
                    .iter()
                    .map(|d| {
                        vec![
                            d.time.clone(),
                            format!("{}/{}", d.recipient_agency, d.recipient_user),
                            d.field_classes.join(", "),
                            format!("{}{}", d.purpose, if d.override_used { " (override)" } else { "" }),
                            d.incident_id.clone(),
                        ]
                    })
                    .collect();
                println!(
                    "{}",
                    table(&["date", "recipient", "field classes", "purpose", "incident"], rows)
                );
            }
        }
        AuditCommand::Checkpoint { fresh } => {
            let checkpoint = client
                .checkpoint(pb::AuditCheckpointRequest { fresh })
                .await
                .map_err(failed)?
                .into_inner();
            if json {
                print_json(&checkpoint_json(&checkpoint));
            } else {
                let rows = vec![
                    vec!["agency".into(), checkpoint.agency.clone()],
                    vec!["tree size".into(), checkpoint.tree_size.to_string()],
                    vec!["root hash".into(), checkpoint.root_hash.clone()],
                    vec!["time".into(), checkpoint.time.clone()],
                    vec!["signature".into(), checkpoint.signature.clone()],
                ];
                println!("{}", table(&["checkpoint", "value"], rows));
                println!("{}", checkpoint.public_key_pem.trim_end());
            }
        }
    }
    Ok(())
}
