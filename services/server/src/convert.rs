//! Conversions between `flagnet.v1` messages and domain types. Proto types
//! stop here: a missing or bad field becomes `InvalidArgument` naming its
//! path (`flag.subject.phones[1]`), and the domain never sees a proto type.

use flagnet_core::consent::{ConsentElements, ConsentScope, Revocation};
use flagnet_core::flag::{
    ClinicalContent, ContactEntry, HoldEntry, PostalAddress, PresenceContent, RecommendedResponse, ResponseContent,
    SafetyContent, SubjectRecord, check_text,
};
use flagnet_core::normalize;
use flagnet_core::{
    AgencyId, Consent, ConsentBasis, CoreError, CoreResult, FieldClass, Flag, FlagContent, FlagStatus, MatchingKey,
    NewConsent, Purpose, RoleName, SubjectToken, TimeBoundBasis,
};
use flagnet_policy::{DenyReason, Disclosure};
use flagnet_proto::v1 as pb;
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

/// The longest incident id accepted.
pub const MAX_INCIDENT_ID_LEN: usize = 64;

pub fn required<T>(field: &str, value: Option<T>) -> CoreResult<T> {
    value.ok_or_else(|| CoreError::invalid(field, "is required"))
}

pub fn parse_uuid(field: &str, value: &str) -> CoreResult<Uuid> {
    if value.is_empty() {
        return Err(CoreError::invalid(field, "is required"));
    }
    if value.len() > 64 {
        return Err(CoreError::invalid(field, "is not an id"));
    }
    Uuid::parse_str(value).map_err(|_| CoreError::invalid(field, "is not an id"))
}

fn optional_instant(field: &str, value: &str) -> CoreResult<Option<OffsetDateTime>> {
    if value.is_empty() {
        return Ok(None);
    }
    if value.len() > 64 {
        return Err(CoreError::invalid(field, "is not an RFC 3339 time"));
    }
    OffsetDateTime::parse(value, &Rfc3339)
        .map(|instant| Some(instant.to_offset(time::UtcOffset::UTC)))
        .map_err(|_| CoreError::invalid(field, "is not an RFC 3339 time such as 2026-12-01T09:30:00Z"))
}

/// A required RFC 3339 instant.
pub fn required_instant(field: &str, value: &str) -> CoreResult<OffsetDateTime> {
    optional_instant(field, value)?.ok_or_else(|| CoreError::invalid(field, "is required"))
}

fn optional_date(field: &str, value: &str) -> CoreResult<Option<Date>> {
    if value.is_empty() {
        return Ok(None);
    }
    normalize::birth_date(value)
        .map(Some)
        .map_err(|error| CoreError::invalid(field, error_reason(&error)))
}

fn error_reason(error: &CoreError) -> String {
    match error {
        CoreError::InvalidArgument { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

pub fn instant_text(instant: OffsetDateTime) -> String {
    instant.format(&Rfc3339).unwrap_or_default()
}

/// Checks a CAD incident number: required, short, printable ASCII.
pub fn incident_id(value: &str) -> CoreResult<String> {
    const FIELD: &str = "incident_id";
    if value.is_empty() {
        return Err(CoreError::invalid(FIELD, "is required"));
    }
    if value.len() > MAX_INCIDENT_ID_LEN {
        return Err(CoreError::invalid(
            FIELD,
            format!("must be at most {MAX_INCIDENT_ID_LEN} bytes"),
        ));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/' | '#'))
    {
        return Err(CoreError::invalid(
            FIELD,
            "may hold only ASCII letters, digits and - _ . : / #",
        ));
    }
    Ok(value.to_owned())
}

fn postal_address(address: pb::Address) -> PostalAddress {
    PostalAddress {
        street: address.street,
        unit: address.unit,
        city: address.city,
        region: address.region,
        postal_code: address.postal_code,
    }
}

fn proto_address(address: &PostalAddress) -> pb::Address {
    pb::Address {
        street: address.street.clone(),
        unit: address.unit.clone(),
        city: address.city.clone(),
        region: address.region.clone(),
        postal_code: address.postal_code.clone(),
    }
}

/// The blind tokens for what a person typed to look a subject up.
pub fn query_tokens(
    query: Option<pb::SubjectQuery>,
    key: &MatchingKey,
    phone_region: &str,
) -> CoreResult<Vec<SubjectToken>> {
    let query = required("subject", query)?;
    match required("subject.key", query.key)? {
        pb::subject_query::Key::Phone(phone) => Ok(vec![
            normalize::phone_token(key, &phone, phone_region).map_err(|e| e.under("subject"))?,
        ]),
        pb::subject_query::Key::Address(address) => Ok(vec![
            normalize::address_token(key, &postal_address(address)).map_err(|e| e.under("subject"))?,
        ]),
        pb::subject_query::Key::NameAndBirthDate(person) => {
            Ok(
                normalize::name_birth_date_tokens(key, &person.given_name, &person.family_name, &person.birth_date)
                    .map_err(|e| e.under("subject.name_and_birth_date"))?
                    .to_vec(),
            )
        }
    }
}

/// A flag as a records clerk sent it, checked and turned into tokens.
#[derive(Debug)]
pub struct FlagDraft {
    pub status: FlagStatus,
    pub review_date: Option<Date>,
    pub basis: Option<TimeBoundBasis>,
    pub content: FlagContent,
    pub subject_tokens: Vec<SubjectToken>,
}

fn flag_status(status: i32) -> CoreResult<FlagStatus> {
    match pb::FlagStatus::try_from(status) {
        Ok(pb::FlagStatus::Active) => Ok(FlagStatus::Active),
        Ok(pb::FlagStatus::Unverified) => Ok(FlagStatus::Unverified),
        Ok(pb::FlagStatus::Lapsed) => Ok(FlagStatus::Lapsed),
        Ok(pb::FlagStatus::Revoked) => Ok(FlagStatus::Revoked),
        Ok(pb::FlagStatus::Archived) => Ok(FlagStatus::Archived),
        Ok(pb::FlagStatus::Unspecified) => Err(CoreError::invalid("flag.status", "is required")),
        Err(_) => Err(CoreError::invalid("flag.status", format!("unknown status {status}"))),
    }
}

fn proto_flag_status(status: FlagStatus) -> pb::FlagStatus {
    match status {
        FlagStatus::Active => pb::FlagStatus::Active,
        FlagStatus::Unverified => pb::FlagStatus::Unverified,
        FlagStatus::Lapsed => pb::FlagStatus::Lapsed,
        FlagStatus::Revoked => pb::FlagStatus::Revoked,
        FlagStatus::Archived => pb::FlagStatus::Archived,
    }
}

fn recommended(value: i32) -> CoreResult<RecommendedResponse> {
    match pb::RecommendedResponse::try_from(value) {
        Ok(pb::RecommendedResponse::Unspecified) => Ok(RecommendedResponse::Unspecified),
        Ok(pb::RecommendedResponse::CitOfficer) => Ok(RecommendedResponse::CitOfficer),
        Ok(pb::RecommendedResponse::CoResponder) => Ok(RecommendedResponse::CoResponder),
        Ok(pb::RecommendedResponse::Liaison) => Ok(RecommendedResponse::Liaison),
        Err(_) => Err(CoreError::invalid(
            "flag.response.recommended",
            format!("unknown value {value}"),
        )),
    }
}

fn proto_recommended(value: RecommendedResponse) -> pb::RecommendedResponse {
    match value {
        RecommendedResponse::Unspecified => pb::RecommendedResponse::Unspecified,
        RecommendedResponse::CitOfficer => pb::RecommendedResponse::CitOfficer,
        RecommendedResponse::CoResponder => pb::RecommendedResponse::CoResponder,
        RecommendedResponse::Liaison => pb::RecommendedResponse::Liaison,
    }
}

/// Checks a flag input and derives its blind tokens.
pub fn flag_draft(input: Option<pb::FlagInput>, key: &MatchingKey, phone_region: &str) -> CoreResult<FlagDraft> {
    let input = required("flag", input)?;
    let status = flag_status(input.status)?;
    let review_date = optional_date("flag.review_date", &input.review_date)?;
    let basis = match input.basis {
        None => None,
        Some(basis) => {
            check_text("flag.basis.kind", &basis.kind)?;
            if basis.kind.trim().is_empty() {
                return Err(CoreError::invalid(
                    "flag.basis.kind",
                    "is required when a basis is given",
                ));
            }
            Some(TimeBoundBasis {
                kind: basis.kind,
                expires_at: optional_instant("flag.basis.expires_at", &basis.expires_at)?,
                extended_until: optional_instant("flag.basis.extended_until", &basis.extended_until)?,
            })
        }
    };
    let subject = required("flag.subject", input.subject)?;
    if subject.phones.len() > flagnet_core::flag::MAX_LIST_LEN {
        return Err(CoreError::invalid("flag.subject.phones", "too many entries"));
    }
    if subject.addresses.len() > flagnet_core::flag::MAX_LIST_LEN {
        return Err(CoreError::invalid("flag.subject.addresses", "too many entries"));
    }
    let mut subject_tokens =
        normalize::name_birth_date_tokens(key, &subject.given_name, &subject.family_name, &subject.birth_date)
            .map_err(|e| e.under("flag.subject"))?
            .to_vec();
    for (index, phone) in subject.phones.iter().enumerate() {
        let token = normalize::phone_token(key, phone, phone_region)
            .map_err(|e| e.under(&format!("flag.subject.phones[{index}]")))?;
        subject_tokens.push(token);
    }
    let addresses: Vec<PostalAddress> = subject.addresses.into_iter().map(postal_address).collect();
    for (index, address) in addresses.iter().enumerate() {
        let token =
            normalize::address_token(key, address).map_err(|e| e.under(&format!("flag.subject.addresses[{index}]")))?;
        subject_tokens.push(token);
    }
    subject_tokens.sort();
    subject_tokens.dedup();

    let response = input.response.unwrap_or_default();
    let content = FlagContent {
        subject: SubjectRecord {
            given_name: subject.given_name,
            family_name: subject.family_name,
            birth_date: subject.birth_date,
            phones: subject.phones,
            addresses,
        },
        presence: input
            .presence
            .map(|presence| PresenceContent {
                contact_name: presence.contact_name,
                contact_phone: presence.contact_phone,
            })
            .unwrap_or_default(),
        response: ResponseContent {
            recommended: recommended(response.recommended)?,
            approach_guidance: response.approach_guidance,
        },
        safety: SafetyContent {
            notes: input.safety.unwrap_or_default().notes,
        },
        contacts: input
            .contacts
            .unwrap_or_default()
            .contacts
            .into_iter()
            .map(|contact| ContactEntry {
                name: contact.name,
                relationship: contact.relationship,
                phone: contact.phone,
            })
            .collect(),
        clinical: {
            let clinical = input.clinical.unwrap_or_default();
            ClinicalContent {
                conditions: clinical.conditions,
                care_provider: clinical.care_provider,
                crisis_plan: clinical.crisis_plan,
                hold_history: clinical
                    .hold_history
                    .into_iter()
                    .map(|hold| HoldEntry {
                        date: hold.date,
                        kind: hold.kind,
                        facility: hold.facility,
                    })
                    .collect(),
            }
        },
    };
    content.validate().map_err(|e| e.under("flag"))?;
    Ok(FlagDraft {
        status,
        review_date,
        basis,
        content,
        subject_tokens,
    })
}

fn presence(flag: &Flag) -> pb::Presence {
    pb::Presence {
        owner_agency: flag.owner.to_string(),
        contact_name: flag.content.presence.contact_name.clone(),
        contact_phone: flag.content.presence.contact_phone.clone(),
    }
}

fn response(flag: &Flag) -> pb::Response {
    pb::Response {
        recommended: proto_recommended(flag.content.response.recommended) as i32,
        approach_guidance: flag.content.response.approach_guidance.clone(),
    }
}

fn safety(flag: &Flag) -> pb::Safety {
    pb::Safety {
        notes: flag.content.safety.notes.clone(),
    }
}

fn contacts(flag: &Flag) -> pb::Contacts {
    pb::Contacts {
        contacts: flag
            .content
            .contacts
            .iter()
            .map(|contact| pb::Contact {
                name: contact.name.clone(),
                relationship: contact.relationship.clone(),
                phone: contact.phone.clone(),
            })
            .collect(),
    }
}

fn clinical(flag: &Flag) -> pb::Clinical {
    let clinical = &flag.content.clinical;
    pb::Clinical {
        conditions: clinical.conditions.clone(),
        care_provider: clinical.care_provider.clone(),
        crisis_plan: clinical.crisis_plan.clone(),
        hold_history: clinical
            .hold_history
            .iter()
            .map(|hold| pb::HoldEvent {
                date: hold.date.clone(),
                kind: hold.kind.clone(),
                facility: hold.facility.clone(),
            })
            .collect(),
    }
}

fn identity(flag: &Flag) -> pb::Identity {
    let subject = &flag.content.subject;
    pb::Identity {
        given_name: subject.given_name.clone(),
        family_name: subject.family_name.clone(),
        birth_date: subject.birth_date.clone(),
        address: subject.addresses.first().map(proto_address),
    }
}

pub fn proto_field_class(class: FieldClass) -> pb::FieldClass {
    match class {
        FieldClass::Presence => pb::FieldClass::Presence,
        FieldClass::Response => pb::FieldClass::Response,
        FieldClass::Safety => pb::FieldClass::Safety,
        FieldClass::Contacts => pb::FieldClass::Contacts,
        FieldClass::Clinical => pb::FieldClass::Clinical,
        FieldClass::Identity => pb::FieldClass::Identity,
    }
}

pub fn field_class(value: i32, field: &str) -> CoreResult<FieldClass> {
    match pb::FieldClass::try_from(value) {
        Ok(pb::FieldClass::Presence) => Ok(FieldClass::Presence),
        Ok(pb::FieldClass::Response) => Ok(FieldClass::Response),
        Ok(pb::FieldClass::Safety) => Ok(FieldClass::Safety),
        Ok(pb::FieldClass::Contacts) => Ok(FieldClass::Contacts),
        Ok(pb::FieldClass::Clinical) => Ok(FieldClass::Clinical),
        Ok(pb::FieldClass::Identity) => Ok(FieldClass::Identity),
        Ok(pb::FieldClass::Unspecified) | Err(_) => {
            Err(CoreError::invalid(field, format!("unknown field class {value}")))
        }
    }
}

fn withhold_reason(reason: DenyReason) -> pb::WithholdReason {
    match reason {
        DenyReason::Policy => pb::WithholdReason::Policy,
        DenyReason::Consent => pb::WithholdReason::Consent,
        DenyReason::NoConsent => pb::WithholdReason::NoConsent,
        DenyReason::Lifecycle => pb::WithholdReason::Lifecycle,
    }
}

/// A match carrying exactly the classes `disclosure` allows; each withheld
/// class is absent and listed with its reason. Call only when presence is
/// disclosed: otherwise there is no match to show.
pub fn disclosed_match(flag: &Flag, disclosure: &Disclosure, phonetic_only: bool) -> pb::Match {
    debug_assert!(disclosure.discloses_presence());
    let allowed = |class: FieldClass| disclosure.is_allowed(class);
    pb::Match {
        owner_agency: flag.owner.to_string(),
        flag_id: flag.id.to_string(),
        phonetic_match: phonetic_only,
        presence: allowed(FieldClass::Presence).then(|| presence(flag)),
        response: allowed(FieldClass::Response).then(|| response(flag)),
        safety: allowed(FieldClass::Safety).then(|| safety(flag)),
        contacts: allowed(FieldClass::Contacts).then(|| contacts(flag)),
        clinical: allowed(FieldClass::Clinical).then(|| clinical(flag)),
        identity: allowed(FieldClass::Identity).then(|| identity(flag)),
        withheld: disclosure
            .withheld()
            .into_iter()
            .map(|(class, reason)| pb::WithheldClass {
                field_class: proto_field_class(class) as i32,
                reason: withhold_reason(reason) as i32,
            })
            .collect(),
    }
}

/// The whole flag, for its own agency's records clerk.
pub fn flag_record(flag: &Flag) -> pb::FlagRecord {
    let subject = &flag.content.subject;
    pb::FlagRecord {
        flag_id: flag.id.to_string(),
        owner_agency: flag.owner.to_string(),
        flag: Some(pb::FlagInput {
            subject: Some(pb::Subject {
                given_name: subject.given_name.clone(),
                family_name: subject.family_name.clone(),
                birth_date: subject.birth_date.clone(),
                phones: subject.phones.clone(),
                addresses: subject.addresses.iter().map(proto_address).collect(),
            }),
            status: proto_flag_status(flag.status) as i32,
            review_date: flag.review_date.map(|date| date.to_string()).unwrap_or_default(),
            basis: flag.basis.as_ref().map(|basis| pb::Basis {
                kind: basis.kind.clone(),
                expires_at: basis.expires_at.map(instant_text).unwrap_or_default(),
                extended_until: basis.extended_until.map(instant_text).unwrap_or_default(),
            }),
            presence: Some(presence(flag)),
            response: Some(response(flag)),
            safety: Some(safety(flag)),
            contacts: Some(contacts(flag)),
            clinical: Some(clinical(flag)),
        }),
        created_at: instant_text(flag.created_at),
        updated_at: instant_text(flag.updated_at),
        updated_by: flag.updated_by.clone(),
        revision: flag.revision,
    }
}

pub fn flag_summary(flag: &Flag) -> pb::FlagSummary {
    pb::FlagSummary {
        flag_id: flag.id.to_string(),
        status: proto_flag_status(flag.status) as i32,
        review_date: flag.review_date.map(|date| date.to_string()).unwrap_or_default(),
        updated_at: instant_text(flag.updated_at),
        revision: flag.revision,
        subject_name: format!(
            "{} {}",
            flag.content.subject.given_name, flag.content.subject.family_name
        ),
    }
}

fn consent_basis(value: i32) -> CoreResult<ConsentBasis> {
    match pb::ConsentBasis::try_from(value) {
        Ok(pb::ConsentBasis::Subject) => Ok(ConsentBasis::Subject),
        Ok(pb::ConsentBasis::Guardian) => Ok(ConsentBasis::Guardian),
        Ok(pb::ConsentBasis::LegalAuthority) => Ok(ConsentBasis::LegalAuthority),
        Ok(pb::ConsentBasis::Unspecified) => Err(CoreError::invalid("consent.basis", "is required")),
        Err(_) => Err(CoreError::invalid("consent.basis", format!("unknown basis {value}"))),
    }
}

fn proto_consent_basis(basis: ConsentBasis) -> pb::ConsentBasis {
    match basis {
        ConsentBasis::Subject => pb::ConsentBasis::Subject,
        ConsentBasis::Guardian => pb::ConsentBasis::Guardian,
        ConsentBasis::LegalAuthority => pb::ConsentBasis::LegalAuthority,
    }
}

/// Checks a consent input; the 42 CFR 2.31 elements are checked by the domain.
pub fn new_consent(
    input: Option<pb::ConsentInput>,
    owner: AgencyId,
    recorded_by: String,
    now: OffsetDateTime,
) -> CoreResult<NewConsent> {
    let input = required("consent", input)?;
    let flag_id = parse_uuid("consent.flag_id", &input.flag_id)?;
    let scope = required("consent.scope", input.scope)?;
    let list_limit = |field: &str, len: usize| {
        if len > flagnet_core::flag::MAX_LIST_LEN {
            Err(CoreError::invalid(field, "too many entries"))
        } else {
            Ok(())
        }
    };
    list_limit("consent.scope.recipients", scope.recipients.len())?;
    list_limit("consent.scope.roles", scope.roles.len())?;
    list_limit("consent.scope.purposes", scope.purposes.len())?;
    list_limit("consent.scope.field_classes", scope.field_classes.len())?;
    let recipients = scope
        .recipients
        .iter()
        .enumerate()
        .map(|(i, r)| {
            AgencyId::parse(r)
                .map_err(|e| CoreError::invalid(format!("consent.scope.recipients[{i}]"), error_reason(&e)))
        })
        .collect::<CoreResult<Vec<_>>>()?;
    let roles = scope
        .roles
        .iter()
        .enumerate()
        .map(|(i, r)| {
            RoleName::parse(r).map_err(|e| CoreError::invalid(format!("consent.scope.roles[{i}]"), error_reason(&e)))
        })
        .collect::<CoreResult<Vec<_>>>()?;
    let purposes = scope
        .purposes
        .iter()
        .enumerate()
        .map(|(i, p)| {
            Purpose::parse(p).map_err(|e| CoreError::invalid(format!("consent.scope.purposes[{i}]"), error_reason(&e)))
        })
        .collect::<CoreResult<Vec<_>>>()?;
    let mut field_classes = scope
        .field_classes
        .iter()
        .enumerate()
        .map(|(i, c)| field_class(*c, &format!("consent.scope.field_classes[{i}]")))
        .collect::<CoreResult<Vec<_>>>()?;
    field_classes.sort();
    field_classes.dedup();
    let consent = NewConsent {
        flag_id,
        owner,
        basis: consent_basis(input.basis)?,
        elements: ConsentElements {
            subject_name: input.subject_name,
            granted_by: input.granted_by,
            disclosing_party: input.disclosing_party,
            information_description: input.information_description,
            purpose_description: input.purpose_description,
            revocation_instructions: input.revocation_instructions,
            expiry_event: input.expiry_event,
            signature_reference: input.signature_reference,
            signed_on: optional_date("consent.signed_on", &input.signed_on)?,
        },
        scope: ConsentScope {
            recipients,
            roles,
            purposes,
            field_classes,
        },
        valid_from: optional_instant("consent.valid_from", &input.valid_from)?.unwrap_or(now),
        valid_until: optional_instant("consent.valid_until", &input.valid_until)?,
        recorded_by,
    };
    consent.validate()?;
    Ok(consent)
}

pub fn consent_record(consent: &Consent) -> pb::ConsentRecord {
    let elements = &consent.elements;
    let revocation: Option<&Revocation> = consent.revocation.as_ref();
    pb::ConsentRecord {
        consent_id: consent.id.to_string(),
        consent: Some(pb::ConsentInput {
            flag_id: consent.flag_id.to_string(),
            basis: proto_consent_basis(consent.basis) as i32,
            subject_name: elements.subject_name.clone(),
            granted_by: elements.granted_by.clone(),
            disclosing_party: elements.disclosing_party.clone(),
            information_description: elements.information_description.clone(),
            purpose_description: elements.purpose_description.clone(),
            revocation_instructions: elements.revocation_instructions.clone(),
            scope: Some(pb::ConsentScope {
                recipients: consent.scope.recipients.iter().map(ToString::to_string).collect(),
                roles: consent.scope.roles.iter().map(ToString::to_string).collect(),
                purposes: consent.scope.purposes.iter().map(ToString::to_string).collect(),
                field_classes: consent
                    .scope
                    .field_classes
                    .iter()
                    .map(|c| proto_field_class(*c) as i32)
                    .collect(),
            }),
            valid_from: instant_text(consent.valid_from),
            valid_until: consent.valid_until.map(instant_text).unwrap_or_default(),
            expiry_event: elements.expiry_event.clone(),
            signature_reference: elements.signature_reference.clone(),
            signed_on: elements.signed_on.map(|date| date.to_string()).unwrap_or_default(),
        }),
        recorded_at: instant_text(consent.recorded_at),
        recorded_by: consent.recorded_by.clone(),
        revoked_at: revocation.map(|r| instant_text(r.at)).unwrap_or_default(),
        revoked_by: revocation.map(|r| r.by.clone()).unwrap_or_default(),
        revocation_reason: revocation.map(|r| r.reason.clone()).unwrap_or_default(),
    }
}
