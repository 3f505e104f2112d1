//! `flagctl lookup`: what a dispatcher or officer types on a call. Shows each
//! match with only the classes the node disclosed, and says which classes
//! were withheld and why, so the user knows whom to ask.

use crate::failure::Failure;
use crate::output::{field_class_name, peer_state_name, print_json, recommended_name, table, withhold_reason_name};
use clap::Args;
use flagnet_proto::v1 as pb;
use flagnet_proto::v1::flag_index_client::FlagIndexClient;
use flagnet_trust::client::ClientProfile;
use serde_json::{Value, json};

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("key").required(true).args(["phone", "street", "name"])))]
pub struct LookupArgs {
    /// phone number, in any common notation
    #[arg(long)]
    phone: Option<String>,
    /// street line of an address (with --city, optionally --unit, --state, --zip)
    #[arg(long)]
    street: Option<String>,
    #[arg(long, requires = "street")]
    unit: Option<String>,
    #[arg(long, requires = "street")]
    city: Option<String>,
    #[arg(long, requires = "street")]
    state: Option<String>,
    #[arg(long, requires = "street")]
    zip: Option<String>,
    /// full name as "Given Family" (with --dob)
    #[arg(long, requires = "dob")]
    name: Option<String>,
    /// date of birth, YYYY-MM-DD
    #[arg(long, requires = "name")]
    dob: Option<String>,
    /// emergency_response, welfare_check, crisis_followup or emergency_override
    #[arg(long)]
    purpose: String,
    /// the CAD incident number
    #[arg(long)]
    incident: String,
    /// required with --purpose emergency_override
    #[arg(long)]
    override_reason: Option<String>,
    /// ask only your own node, not its peers
    #[arg(long)]
    local: bool,
}

fn subject(args: &LookupArgs) -> Result<pb::SubjectQuery, Failure> {
    let key = if let Some(phone) = &args.phone {
        pb::subject_query::Key::Phone(phone.clone())
    } else if let Some(street) = &args.street {
        pb::subject_query::Key::Address(pb::Address {
            street: street.clone(),
            unit: args.unit.clone().unwrap_or_default(),
            city: args.city.clone().unwrap_or_default(),
            region: args.state.clone().unwrap_or_default(),
            postal_code: args.zip.clone().unwrap_or_default(),
        })
    } else {
        let name = args.name.clone().unwrap_or_default();
        let (given, family) = name
            .trim()
            .rsplit_once(' ')
            .ok_or_else(|| Failure::usage("--name needs a given and a family name, as \"Jordan Avery\""))?;
        pb::subject_query::Key::NameAndBirthDate(pb::NameAndBirthDate {
            given_name: given.trim().to_owned(),
            family_name: family.trim().to_owned(),
            birth_date: args.dob.clone().unwrap_or_default(),
        })
    };
    Ok(pb::SubjectQuery { key: Some(key) })
}

pub fn match_json(found: &pb::Match) -> Value {
    json!({
        "owner_agency": found.owner_agency,
        "flag_id": found.flag_id,
        "phonetic_match": found.phonetic_match,
        "presence": found.presence.as_ref().map(|p| json!({"owner_agency": p.owner_agency, "contact_name": p.contact_name, "contact_phone": p.contact_phone})),
        "response": found.response.as_ref().map(|r| json!({"recommended": recommended_name(r.recommended), "approach_guidance": r.approach_guidance})),
        "safety": found.safety.as_ref().map(|s| json!({"notes": s.notes})),
        "contacts": found.contacts.as_ref().map(|c| c.contacts.iter().map(|c| json!({"name": c.name, "relationship": c.relationship, "phone": c.phone})).collect::<Vec<_>>()),
        "clinical": found.clinical.as_ref().map(|c| json!({
            "conditions": c.conditions, "care_provider": c.care_provider, "crisis_plan": c.crisis_plan,
            "hold_history": c.hold_history.iter().map(|h| json!({"date": h.date, "kind": h.kind, "facility": h.facility})).collect::<Vec<_>>(),
        })),
        "identity": found.identity.as_ref().map(|i| json!({"given_name": i.given_name, "family_name": i.family_name, "birth_date": i.birth_date})),
        "withheld": found.withheld.iter().map(|w| json!({"field_class": field_class_name(w.field_class), "reason": withhold_reason_name(w.reason)})).collect::<Vec<_>>(),
    })
}

fn match_rows(found: &pb::Match) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    if let Some(presence) = &found.presence {
        rows.push(vec![
            "presence".into(),
            format!(
                "flag held by {}; call {} at {}",
                presence.owner_agency, presence.contact_name, presence.contact_phone
            ),
        ]);
    }
    if let Some(response) = &found.response {
        rows.push(vec![
            "response".into(),
            format!(
                "send: {}\n{}",
                recommended_name(response.recommended),
                response.approach_guidance
            ),
        ]);
    }
    if let Some(safety) = &found.safety {
        rows.push(vec!["safety".into(), safety.notes.clone()]);
    }
    if let Some(contacts) = &found.contacts {
        let lines: Vec<String> = contacts
            .contacts
            .iter()
            .map(|c| format!("{} ({}) {}", c.name, c.relationship, c.phone))
            .collect();
        rows.push(vec!["contacts".into(), lines.join("\n")]);
    }
    if let Some(clinical) = &found.clinical {
        rows.push(vec![
            "clinical".into(),
            format!(
                "conditions: {}\nprovider: {}\ncrisis plan: {}",
                clinical.conditions.join(", "),
                clinical.care_provider,
                clinical.crisis_plan
            ),
        ]);
    }
    if let Some(identity) = &found.identity {
        rows.push(vec![
            "identity".into(),
            format!(
                "{} {}, born {}",
                identity.given_name, identity.family_name, identity.birth_date
            ),
        ]);
    }
    for withheld in &found.withheld {
        rows.push(vec![
            field_class_name(withheld.field_class).into(),
            format!("withheld ({})", withhold_reason_name(withheld.reason)),
        ]);
    }
    rows
}

pub async fn run(profile: &ClientProfile, args: LookupArgs, json: bool) -> Result<(), Failure> {
    let request = pb::LookupRequest {
        subject: Some(subject(&args)?),
        purpose: args.purpose.clone(),
        incident_id: args.incident.clone(),
        scope: if args.local {
            pb::LookupScope::Local
        } else {
            pb::LookupScope::Federated
        } as i32,
        override_reason: args.override_reason.clone().unwrap_or_default(),
    };
    let channel = profile
        .connect()
        .await
        .map_err(|error| Failure::Connection(error.to_string()))?;
    let answer = FlagIndexClient::new(channel)
        .lookup(request)
        .await
        .map_err(|status| Failure::from_status(profile, status))?
        .into_inner();
    if json {
        print_json(&json!({
            "request_id": answer.request_id,
            "complete": answer.complete,
            "matches": answer.matches.iter().map(match_json).collect::<Vec<_>>(),
            "peers": answer.peers.iter().map(|p| json!({"agency": p.agency, "state": peer_state_name(p.state), "detail": p.detail})).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    if answer.matches.is_empty() {
        println!("no match (request {})", answer.request_id);
    }
    for (index, found) in answer.matches.iter().enumerate() {
        let phonetic = if found.phonetic_match {
            " — matched by sound of name only, confirm identity"
        } else {
            ""
        };
        println!(
            "match {} of {}: {} flag {}{phonetic}",
            index + 1,
            answer.matches.len(),
            found.owner_agency,
            found.flag_id
        );
        println!("{}", table(&["class", "disclosed"], match_rows(found)));
    }
    for peer in &answer.peers {
        println!("peer {}: {} {}", peer.agency, peer_state_name(peer.state), peer.detail);
    }
    if !answer.complete {
        println!("warning: not every agency answered; these results may be partial");
    }
    if !answer.matches.is_empty() {
        println!("request {}", answer.request_id);
    }
    Ok(())
}
