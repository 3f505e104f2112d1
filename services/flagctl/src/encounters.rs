//! `flagctl encounter report` (officers) and `flagctl alerts watch`
//! (liaisons): report an encounter with a subject found by a lookup, and
//! print encounter alerts as they arrive, resuming from a cursor.

use crate::failure::Failure;
use crate::output::print_json;
use clap::{Args, Subcommand};
use flagnet_proto::v1 as pb;
use flagnet_proto::v1::flag_index_client::FlagIndexClient;
use flagnet_trust::client::ClientProfile;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// the flag id from the lookup
    #[arg(long)]
    flag: String,
    /// the agency that owns the flag, from the lookup
    #[arg(long)]
    owner: String,
    /// coarse location: a town, a beat, a block; never a full address
    #[arg(long)]
    location: String,
    /// e.g. "transported for 96-hour evaluation", "resolved on scene"
    #[arg(long)]
    disposition: String,
    #[arg(long, default_value = "")]
    narrative: String,
    /// RFC 3339; default now
    #[arg(long)]
    occurred_at: Option<String>,
    #[arg(long, default_value = "")]
    incident: String,
    /// the encounter's id; a retry with the same id is the same encounter (default: a new one)
    #[arg(long)]
    id: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum EncounterCommand {
    /// Report an encounter to the flag's owner agency.
    Report(Box<ReportArgs>),
}

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Print encounter alerts as they arrive (liaisons of the owner agency).
    Watch {
        /// resume after this cursor (the last one printed)
        #[arg(long, default_value_t = 0)]
        after: u64,
    },
}

async fn client(profile: &ClientProfile) -> Result<FlagIndexClient<tonic::transport::Channel>, Failure> {
    let channel = profile
        .connect()
        .await
        .map_err(|error| Failure::Connection(error.to_string()))?;
    Ok(FlagIndexClient::new(channel))
}

pub async fn run_encounter(profile: &ClientProfile, command: EncounterCommand, json: bool) -> Result<(), Failure> {
    let EncounterCommand::Report(args) = command;
    let occurred_at = match &args.occurred_at {
        Some(text) => text.clone(),
        None => OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .map_err(|error| Failure::usage(error.to_string()))?,
    };
    let encounter_id = args.id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let request = pb::ReportEncounterRequest {
        encounter: Some(pb::Encounter {
            encounter_id: encounter_id.clone(),
            flag_id: args.flag.clone(),
            owner_agency: args.owner.clone(),
            occurred_at,
            location: args.location.clone(),
            disposition: args.disposition.clone(),
            narrative: args.narrative.clone(),
            reporter_agency: String::new(),
            reporter_user: String::new(),
            incident_id: args.incident.clone(),
        }),
    };
    let answer = client(profile)
        .await?
        .report_encounter(request)
        .await
        .map_err(|status| Failure::from_status(profile, status))?
        .into_inner();
    if json {
        print_json(&json!({"encounter_id": answer.encounter_id, "delivered": answer.delivered}));
    } else if answer.delivered {
        println!("encounter {} delivered to {}", answer.encounter_id, args.owner);
    } else {
        println!(
            "encounter {} queued: {} is not reachable now; it will be delivered when it is (retry with --id {} is safe)",
            answer.encounter_id, args.owner, answer.encounter_id
        );
    }
    Ok(())
}

pub async fn run_alerts(profile: &ClientProfile, command: AlertsCommand, json: bool) -> Result<(), Failure> {
    let AlertsCommand::Watch { after } = command;
    let mut stream = client(profile)
        .await?
        .watch_alerts(pb::WatchAlertsRequest { after_cursor: after })
        .await
        .map_err(|status| Failure::from_status(profile, status))?
        .into_inner();
    if !json {
        eprintln!("watching encounter alerts after cursor {after}; Ctrl-C stops");
    }
    loop {
        let alert = match stream.message().await {
            Ok(Some(alert)) => alert,
            Ok(None) => return Err(Failure::Connection("the node closed the alert stream".into())),
            Err(status) => return Err(Failure::from_status(profile, status)),
        };
        let encounter = alert.encounter.unwrap_or_default();
        if json {
            println!(
                "{}",
                json!({
                    "cursor": alert.cursor, "received_at": alert.received_at,
                    "encounter_id": encounter.encounter_id, "flag_id": encounter.flag_id,
                    "occurred_at": encounter.occurred_at, "location": encounter.location,
                    "disposition": encounter.disposition, "narrative": encounter.narrative,
                    "reporter": format!("{}/{}", encounter.reporter_agency, encounter.reporter_user),
                    "incident_id": encounter.incident_id,
                })
            );
        } else {
            println!(
                "[{}] {} flag {}: {} at {} ({}) reported by {}/{}{}",
                alert.cursor,
                encounter.occurred_at,
                encounter.flag_id,
                encounter.disposition,
                encounter.location,
                if encounter.narrative.is_empty() {
                    "no narrative"
                } else {
                    &encounter.narrative
                },
                encounter.reporter_agency,
                encounter.reporter_user,
                if encounter.incident_id.is_empty() {
                    String::new()
                } else {
                    format!(", incident {}", encounter.incident_id)
                }
            );
        }
    }
}
