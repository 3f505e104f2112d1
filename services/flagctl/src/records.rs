//! `flagctl flag …` and `flagctl consent …`: what a records clerk does. Every
//! consent element of 42 CFR 2.31 is its own flag with no default, so a
//! consent cannot be recorded by accident without one.

use crate::failure::Failure;
use crate::lookup::match_json;
use crate::output::{field_class_name, flag_status_name, print_json, table};
use clap::{Args, Subcommand, ValueEnum};
use flagnet_proto::v1 as pb;
use flagnet_proto::v1::flag_index_client::FlagIndexClient;
use flagnet_trust::client::ClientProfile;
use serde_json::json;
use tonic::transport::Channel;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StatusArg {
    Active,
    Unverified,
    Lapsed,
    Revoked,
    Archived,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RecommendedArg {
    CitOfficer,
    CoResponder,
    Liaison,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BasisArg {
    Subject,
    Guardian,
    LegalAuthority,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ClassArg {
    Presence,
    Response,
    Safety,
    Contacts,
    Clinical,
    Identity,
}

#[derive(Debug, Args)]
pub struct FlagPutArgs {
    /// replace this flag instead of creating one
    #[arg(long)]
    id: Option<String>,
    #[arg(long)]
    given_name: String,
    #[arg(long)]
    family_name: String,
    /// YYYY-MM-DD
    #[arg(long)]
    dob: String,
    /// repeat for several numbers
    #[arg(long)]
    phone: Vec<String>,
    #[arg(long, requires = "city")]
    street: Option<String>,
    #[arg(long)]
    city: Option<String>,
    #[arg(long)]
    state: Option<String>,
    #[arg(long)]
    zip: Option<String>,
    #[arg(long, value_enum, default_value = "active")]
    status: StatusArg,
    /// YYYY-MM-DD after which an unreviewed flag lapses
    #[arg(long)]
    review_date: Option<String>,
    #[arg(long, value_enum)]
    recommended: Option<RecommendedArg>,
    #[arg(long, default_value = "")]
    guidance: String,
    #[arg(long, default_value = "")]
    safety: String,
    /// "name|relationship|phone"; repeat for several
    #[arg(long)]
    contact: Vec<String>,
    #[arg(long)]
    condition: Vec<String>,
    #[arg(long, default_value = "")]
    care_provider: String,
    #[arg(long, default_value = "")]
    crisis_plan: String,
    #[arg(long, default_value = "")]
    contact_name: String,
    #[arg(long, default_value = "")]
    contact_phone: String,
    /// why the flag is created or changed
    #[arg(long)]
    reason: String,
}

#[derive(Debug, Subcommand)]
pub enum FlagCommand {
    /// Create a flag, or replace one with --id.
    Put(Box<FlagPutArgs>),
    /// Show one flag in full.
    Get { id: String },
    /// List your agency's flags.
    List {
        #[arg(long, default_value_t = 50)]
        page_size: u32,
        #[arg(long, default_value = "")]
        page_token: String,
    },
}

#[derive(Debug, Args)]
pub struct ConsentGrantArgs {
    #[arg(long)]
    flag: String,
    #[arg(long, value_enum)]
    basis: BasisArg,
    /// the subject's name as on the form
    #[arg(long)]
    subject_name: String,
    /// the guardian or authority, when not the subject
    #[arg(long, default_value = "")]
    granted_by: String,
    /// who may disclose, as on the form
    #[arg(long)]
    disclosing_party: String,
    /// what information, as on the form
    #[arg(long)]
    information: String,
    /// the purpose, as on the form
    #[arg(long)]
    purpose_description: String,
    /// how to revoke, as on the form
    #[arg(long)]
    revocation_instructions: String,
    /// agency id or region; repeat
    #[arg(long, required = true)]
    recipient: Vec<String>,
    /// repeat
    #[arg(long, required = true)]
    role: Vec<String>,
    /// repeat
    #[arg(long, required = true)]
    purpose: Vec<String>,
    /// repeat
    #[arg(long = "class", value_enum, required = true)]
    classes: Vec<ClassArg>,
    /// RFC 3339; default now
    #[arg(long, default_value = "")]
    valid_from: String,
    /// RFC 3339 expiry date, or give --expiry-event
    #[arg(long, default_value = "")]
    valid_until: String,
    #[arg(long, default_value = "")]
    expiry_event: String,
    /// the signed form's reference
    #[arg(long)]
    signature_ref: String,
    /// YYYY-MM-DD the form was signed
    #[arg(long)]
    signed_on: String,
}

#[derive(Debug, Subcommand)]
pub enum ConsentCommand {
    /// Record a consent for a flag.
    Grant(Box<ConsentGrantArgs>),
    /// Revoke a consent; takes effect on the next lookup everywhere.
    Revoke {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// List a flag's consents.
    List {
        #[arg(long)]
        flag: String,
    },
}

async fn client(profile: &ClientProfile) -> Result<FlagIndexClient<Channel>, Failure> {
    let channel = profile
        .connect()
        .await
        .map_err(|error| Failure::Connection(error.to_string()))?;
    Ok(FlagIndexClient::new(channel))
}

fn flag_input(args: &FlagPutArgs) -> Result<pb::FlagInput, Failure> {
    let contacts = args
        .contact
        .iter()
        .map(|text| {
            let parts: Vec<&str> = text.split('|').collect();
            match parts.as_slice() {
                [name, relationship, phone] => Ok(pb::Contact {
                    name: name.trim().into(),
                    relationship: relationship.trim().into(),
                    phone: phone.trim().into(),
                }),
                _ => Err(Failure::usage(format!(
                    "--contact {text:?}: expected \"name|relationship|phone\""
                ))),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let status = match args.status {
        StatusArg::Active => pb::FlagStatus::Active,
        StatusArg::Unverified => pb::FlagStatus::Unverified,
        StatusArg::Lapsed => pb::FlagStatus::Lapsed,
        StatusArg::Revoked => pb::FlagStatus::Revoked,
        StatusArg::Archived => pb::FlagStatus::Archived,
    };
    let recommended = match args.recommended {
        None => pb::RecommendedResponse::Unspecified,
        Some(RecommendedArg::CitOfficer) => pb::RecommendedResponse::CitOfficer,
        Some(RecommendedArg::CoResponder) => pb::RecommendedResponse::CoResponder,
        Some(RecommendedArg::Liaison) => pb::RecommendedResponse::Liaison,
    };
    Ok(pb::FlagInput {
        subject: Some(pb::Subject {
            given_name: args.given_name.clone(),
            family_name: args.family_name.clone(),
            birth_date: args.dob.clone(),
            phones: args.phone.clone(),
            addresses: args
                .street
                .iter()
                .map(|street| pb::Address {
                    street: street.clone(),
                    unit: String::new(),
                    city: args.city.clone().unwrap_or_default(),
                    region: args.state.clone().unwrap_or_default(),
                    postal_code: args.zip.clone().unwrap_or_default(),
                })
                .collect(),
        }),
        status: status as i32,
        review_date: args.review_date.clone().unwrap_or_default(),
        basis: None,
        presence: Some(pb::Presence {
            owner_agency: String::new(),
            contact_name: args.contact_name.clone(),
            contact_phone: args.contact_phone.clone(),
        }),
        response: Some(pb::Response {
            recommended: recommended as i32,
            approach_guidance: args.guidance.clone(),
        }),
        safety: Some(pb::Safety {
            notes: args.safety.clone(),
        }),
        contacts: Some(pb::Contacts { contacts }),
        clinical: Some(pb::Clinical {
            conditions: args.condition.clone(),
            care_provider: args.care_provider.clone(),
            crisis_plan: args.crisis_plan.clone(),
            hold_history: Vec::new(),
        }),
    })
}

fn print_flag(record: &pb::FlagRecord, json: bool) {
    let input = record.flag.clone().unwrap_or_default();
    let subject = input.subject.clone().unwrap_or_default();
    if json {
        let as_match = pb::Match {
            owner_agency: record.owner_agency.clone(),
            flag_id: record.flag_id.clone(),
            phonetic_match: false,
            presence: input.presence.clone(),
            response: input.response.clone(),
            safety: input.safety.clone(),
            contacts: input.contacts.clone(),
            clinical: input.clinical.clone(),
            identity: Some(pb::Identity {
                given_name: subject.given_name.clone(),
                family_name: subject.family_name.clone(),
                birth_date: subject.birth_date.clone(),
                address: subject.addresses.first().cloned(),
            }),
            withheld: Vec::new(),
        };
        let mut value = match_json(&as_match);
        value["status"] = json!(flag_status_name(input.status));
        value["review_date"] = json!(input.review_date);
        value["phones"] = json!(subject.phones);
        value["revision"] = json!(record.revision);
        value["updated_at"] = json!(record.updated_at);
        value["updated_by"] = json!(record.updated_by);
        print_json(&value);
        return;
    }
    let rows = vec![
        vec!["flag".into(), record.flag_id.clone()],
        vec!["owner".into(), record.owner_agency.clone()],
        vec!["status".into(), flag_status_name(input.status).into()],
        vec!["review date".into(), input.review_date.clone()],
        vec![
            "subject".into(),
            format!(
                "{} {}, born {}",
                subject.given_name, subject.family_name, subject.birth_date
            ),
        ],
        vec!["phones".into(), subject.phones.join(", ")],
        vec![
            "revision".into(),
            format!("{} ({} by {})", record.revision, record.updated_at, record.updated_by),
        ],
    ];
    println!("{}", table(&["field", "value"], rows));
}

pub async fn run_flag(profile: &ClientProfile, command: FlagCommand, json: bool) -> Result<(), Failure> {
    let mut client = client(profile).await?;
    let failed = |status| Failure::from_status(profile, status);
    match command {
        FlagCommand::Put(args) => {
            let request = pb::PutFlagRequest {
                flag_id: args.id.clone().unwrap_or_default(),
                flag: Some(flag_input(&args)?),
                change_reason: args.reason.clone(),
            };
            let stored = client.put_flag(request).await.map_err(failed)?.into_inner();
            if let Some(record) = stored.flag {
                print_flag(&record, json);
            }
        }
        FlagCommand::Get { id } => {
            let found = client
                .get_flag(pb::GetFlagRequest { flag_id: id })
                .await
                .map_err(failed)?
                .into_inner();
            if let Some(record) = found.flag {
                print_flag(&record, json);
            }
        }
        FlagCommand::List { page_size, page_token } => {
            let page = client
                .list_flags(pb::ListFlagsRequest { page_size, page_token })
                .await
                .map_err(failed)?
                .into_inner();
            if json {
                print_json(&json!({
                    "flags": page.flags.iter().map(|f| json!({"flag_id": f.flag_id, "subject": f.subject_name, "status": flag_status_name(f.status), "review_date": f.review_date, "updated_at": f.updated_at, "revision": f.revision})).collect::<Vec<_>>(),
                    "next_page_token": page.next_page_token,
                }));
            } else {
                let rows = page
                    .flags
                    .iter()
                    .map(|f| {
                        vec![
                            f.flag_id.clone(),
                            f.subject_name.clone(),
                            flag_status_name(f.status).into(),
                            f.review_date.clone(),
                            f.updated_at.clone(),
                            f.revision.to_string(),
                        ]
                    })
                    .collect();
                println!(
                    "{}",
                    table(
                        &["flag", "subject", "status", "review date", "updated", "revision"],
                        rows
                    )
                );
                if !page.next_page_token.is_empty() {
                    println!("more: --page-token {}", page.next_page_token);
                }
            }
        }
    }
    Ok(())
}

fn consent_row(record: &pb::ConsentRecord) -> Vec<String> {
    let consent = record.consent.clone().unwrap_or_default();
    let scope = consent.scope.unwrap_or_default();
    let state = if record.revoked_at.is_empty() {
        "recorded".to_owned()
    } else {
        format!("revoked {} ({})", record.revoked_at, record.revocation_reason)
    };
    vec![
        record.consent_id.clone(),
        scope.recipients.join(", "),
        scope.roles.join(", "),
        scope.purposes.join(", "),
        scope
            .field_classes
            .iter()
            .map(|c| field_class_name(*c))
            .collect::<Vec<_>>()
            .join(", "),
        format!(
            "{} → {}",
            consent.valid_from,
            if consent.valid_until.is_empty() {
                consent.expiry_event
            } else {
                consent.valid_until
            }
        ),
        state,
    ]
}

fn consent_json(record: &pb::ConsentRecord) -> serde_json::Value {
    let row = consent_row(record);
    json!({
        "consent_id": row[0], "recipients": row[1], "roles": row[2], "purposes": row[3],
        "field_classes": row[4], "period": row[5], "state": row[6],
        "recorded_at": record.recorded_at, "recorded_by": record.recorded_by,
    })
}

const CONSENT_HEADERS: [&str; 7] = [
    "consent",
    "recipients",
    "roles",
    "purposes",
    "classes",
    "period",
    "state",
];

pub async fn run_consent(profile: &ClientProfile, command: ConsentCommand, json: bool) -> Result<(), Failure> {
    let mut client = client(profile).await?;
    let failed = |status| Failure::from_status(profile, status);
    let records = match command {
        ConsentCommand::Grant(args) => {
            let basis = match args.basis {
                BasisArg::Subject => pb::ConsentBasis::Subject,
                BasisArg::Guardian => pb::ConsentBasis::Guardian,
                BasisArg::LegalAuthority => pb::ConsentBasis::LegalAuthority,
            };
            let field_classes = args
                .classes
                .iter()
                .map(|class| match class {
                    ClassArg::Presence => pb::FieldClass::Presence,
                    ClassArg::Response => pb::FieldClass::Response,
                    ClassArg::Safety => pb::FieldClass::Safety,
                    ClassArg::Contacts => pb::FieldClass::Contacts,
                    ClassArg::Clinical => pb::FieldClass::Clinical,
                    ClassArg::Identity => pb::FieldClass::Identity,
                } as i32)
                .collect();
            let consent = pb::ConsentInput {
                flag_id: args.flag.clone(),
                basis: basis as i32,
                subject_name: args.subject_name.clone(),
                granted_by: args.granted_by.clone(),
                disclosing_party: args.disclosing_party.clone(),
                information_description: args.information.clone(),
                purpose_description: args.purpose_description.clone(),
                revocation_instructions: args.revocation_instructions.clone(),
                scope: Some(pb::ConsentScope {
                    recipients: args.recipient.clone(),
                    roles: args.role.clone(),
                    purposes: args.purpose.clone(),
                    field_classes,
                }),
                valid_from: args.valid_from.clone(),
                valid_until: args.valid_until.clone(),
                expiry_event: args.expiry_event.clone(),
                signature_reference: args.signature_ref.clone(),
                signed_on: args.signed_on.clone(),
            };
            let recorded = client
                .record_consent(pb::RecordConsentRequest { consent: Some(consent) })
                .await
                .map_err(failed)?
                .into_inner();
            recorded.consent.into_iter().collect::<Vec<_>>()
        }
        ConsentCommand::Revoke { id, reason } => client
            .revoke_consent(pb::RevokeConsentRequest { consent_id: id, reason })
            .await
            .map_err(failed)?
            .into_inner()
            .consent
            .into_iter()
            .collect(),
        ConsentCommand::List { flag } => {
            client
                .list_consents(pb::ListConsentsRequest { flag_id: flag })
                .await
                .map_err(failed)?
                .into_inner()
                .consents
        }
    };
    if json {
        print_json(&json!(records.iter().map(consent_json).collect::<Vec<_>>()));
    } else {
        println!("{}", table(&CONSENT_HEADERS, records.iter().map(consent_row).collect()));
    }
    Ok(())
}
