//! Printing: readable tables for people, JSON for scripts, and the names of
//! proto enums as people say them.

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use flagnet_proto::v1 as pb;
use serde_json::Value;

pub fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(headers.to_vec());
    for row in rows {
        table.add_row(row);
    }
    table.to_string()
}

pub fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into())
    );
}

pub fn field_class_name(value: i32) -> &'static str {
    match pb::FieldClass::try_from(value) {
        Ok(pb::FieldClass::Presence) => "presence",
        Ok(pb::FieldClass::Response) => "response",
        Ok(pb::FieldClass::Safety) => "safety",
        Ok(pb::FieldClass::Contacts) => "contacts",
        Ok(pb::FieldClass::Clinical) => "clinical",
        Ok(pb::FieldClass::Identity) => "identity",
        Ok(pb::FieldClass::Unspecified) | Err(_) => "unknown",
    }
}

pub fn withhold_reason_name(value: i32) -> &'static str {
    match pb::WithholdReason::try_from(value) {
        Ok(pb::WithholdReason::Policy) => "policy",
        Ok(pb::WithholdReason::Consent) => "consent",
        Ok(pb::WithholdReason::NoConsent) => "no consent",
        Ok(pb::WithholdReason::Lifecycle) => "flag lapsed or expired",
        Ok(pb::WithholdReason::Unspecified) | Err(_) => "unknown",
    }
}

pub fn recommended_name(value: i32) -> &'static str {
    match pb::RecommendedResponse::try_from(value) {
        Ok(pb::RecommendedResponse::CitOfficer) => "CIT officer",
        Ok(pb::RecommendedResponse::CoResponder) => "co-responder clinician",
        Ok(pb::RecommendedResponse::Liaison) => "behavioural-health liaison",
        Ok(pb::RecommendedResponse::Unspecified) | Err(_) => "not stated",
    }
}

pub fn flag_status_name(value: i32) -> &'static str {
    match pb::FlagStatus::try_from(value) {
        Ok(pb::FlagStatus::Active) => "active",
        Ok(pb::FlagStatus::Unverified) => "unverified",
        Ok(pb::FlagStatus::Lapsed) => "lapsed",
        Ok(pb::FlagStatus::Revoked) => "revoked",
        Ok(pb::FlagStatus::Archived) => "archived",
        Ok(pb::FlagStatus::Unspecified) | Err(_) => "unknown",
    }
}

pub fn peer_state_name(value: i32) -> &'static str {
    match pb::PeerState::try_from(value) {
        Ok(pb::PeerState::Ok) => "ok",
        Ok(pb::PeerState::Denied) => "denied",
        Ok(pb::PeerState::Timeout) => "timeout",
        Ok(pb::PeerState::Unavailable) => "unavailable",
        Ok(pb::PeerState::Error) => "error",
        Ok(pb::PeerState::Unspecified) | Err(_) => "unknown",
    }
}
