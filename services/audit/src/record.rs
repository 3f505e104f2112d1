//! The audit record: one per request, decision, policy change, consent
//! change, certificate event and refused connection, with its canonical,
//! versioned binary encoding (the Merkle leaf data) specified in
//! `services/audit/FORMAT.md`.
//!
//! A record names subjects only by [`SubjectRef`]s: keyed HMACs of blind
//! tokens under the [`AuditTokenKey`], so the log holds neither what a person
//! typed nor the federation's matching tokens. This module must never accept
//! or encode a plaintext subject key, and its encoding must never change
//! without a new format version: stored leaf hashes and signed checkpoints
//! depend on every byte.

use crate::error::AuditError;
use flagnet_core::{AgencyId, BlindToken, FieldClass, FieldClassSet, Purpose, RoleName, UserId};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::Path;
use time::OffsetDateTime;
use uuid::Uuid;

/// The keyed HMAC that stands for one blind token in the log.
pub type SubjectRef = [u8; 32];
/// SHA-256 of a caller's DER certificate.
pub type Fingerprint = [u8; 32];

/// The version byte that opens every encoded entry.
pub const ENTRY_FORMAT_VERSION: u8 = 1;
/// The largest encoded entry accepted for appending.
pub const MAX_ENTRY_BYTES: usize = 64 * 1024;
/// The shortest audit token key accepted, in bytes.
pub const MIN_AUDIT_KEY_LEN: usize = 32;
/// The longest name of an extension action or withholding reason.
pub const MAX_NAME_LEN: usize = 64;

/// SHA-256 of a DER certificate, as recorded in `caller_fingerprint`.
pub fn certificate_fingerprint(der: &[u8]) -> Fingerprint {
    Sha256::digest(der).into()
}

/// The key that turns blind tokens into [`SubjectRef`]s. It is the node's
/// own, separate from the federation's matching key; its bytes never appear
/// in logs.
#[derive(Clone)]
pub struct AuditTokenKey(Vec<u8>);

impl fmt::Debug for AuditTokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditTokenKey(..)")
    }
}

impl AuditTokenKey {
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, AuditError> {
        if bytes.len() < MIN_AUDIT_KEY_LEN {
            return Err(AuditError::invalid(
                "audit_token_key",
                format!("must be at least {MIN_AUDIT_KEY_LEN} bytes, got {}", bytes.len()),
            ));
        }
        Ok(Self(bytes))
    }

    /// Reads a key file holding the key as hex (surrounding whitespace ignored).
    pub fn load(path: &Path) -> Result<Self, AuditError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| AuditError::Key(format!("cannot read {}: {error}", path.display())))?;
        let bytes = hex::decode(text.trim())
            .map_err(|error| AuditError::Key(format!("{} is not hex: {error}", path.display())))?;
        Self::from_bytes(bytes)
    }

    /// A fresh random 32-byte key, as hex for a key file.
    pub fn generate_hex() -> String {
        use rand::RngCore;
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        hex::encode(bytes)
    }

    /// HMAC-SHA256 of the token's 32 bytes under this key.
    pub fn subject_ref(&self, token: &BlindToken) -> SubjectRef {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("hmac accepts any key length");
        mac.update(token.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The refs of several tokens, sorted and without duplicates.
    pub fn subject_refs<'a>(&self, tokens: impl IntoIterator<Item = &'a BlindToken>) -> Vec<SubjectRef> {
        let mut refs: Vec<SubjectRef> = tokens.into_iter().map(|token| self.subject_ref(token)).collect();
        refs.sort_unstable();
        refs.dedup();
        refs
    }
}

fn check_extension_name(field: &str, name: &str) -> Result<(), AuditError> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(AuditError::invalid(field, format!("must be 1 to {MAX_NAME_LEN} bytes")));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
    {
        return Err(AuditError::invalid(field, "must be made of [a-z0-9_.]"));
    }
    Ok(())
}

macro_rules! named_enum_with_extension {
    ($(#[$doc:meta])* $name:ident, $field:literal, { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
            /// A name this version does not know; never one of the names above.
            Other(String),
        }

        impl $name {
            /// The stable name written to the log.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)+
                    $name::Other(name) => name,
                }
            }

            /// A known name gives its variant; any other well-formed name
            /// (`[a-z0-9_.]`, at most 64 bytes) gives `Other`.
            pub fn parse(name: &str) -> Result<Self, AuditError> {
                match name {
                    $($text => Ok($name::$variant),)+
                    other => {
                        check_extension_name($field, other)?;
                        Ok($name::Other(other.to_owned()))
                    }
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let name = String::deserialize(deserializer)?;
                $name::parse(&name).map_err(serde::de::Error::custom)
            }
        }
    };
}

named_enum_with_extension!(
    /// What the audited request or event did.
    AuditAction, "action", {
        Lookup => "lookup",
        FederatedQuery => "federated_query",
        PutFlag => "put_flag",
        GetFlag => "get_flag",
        ListFlags => "list_flags",
        RecordConsent => "record_consent",
        RevokeConsent => "revoke_consent",
        ListConsents => "list_consents",
        AuthenticationRefused => "authentication_refused",
        AuditRead => "audit_read",
        PolicyChange => "policy_change",
        CertificateEvent => "certificate_event",
        Encounter => "encounter",
    }
);

named_enum_with_extension!(
    /// Why a field class of a flag was not disclosed.
    WithholdReason, "withheld.reason", {
        /// the policy does not allow it for this role, agency and purpose
        Policy => "policy",
        /// an active consent exists but does not cover it
        Consent => "consent",
        /// the subject has no active consent for this recipient
        NoConsent => "no_consent",
        /// the flag is lapsed, revoked, archived or expired
        Lifecycle => "lifecycle",
    }
);

/// How the audited request ended, set from its final status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    Ok,
    Denied,
    Invalid,
    Unauthenticated,
    Unavailable,
    Error,
}

impl AuditOutcome {
    pub const ALL: [AuditOutcome; 6] = [
        AuditOutcome::Ok,
        AuditOutcome::Denied,
        AuditOutcome::Invalid,
        AuditOutcome::Unauthenticated,
        AuditOutcome::Unavailable,
        AuditOutcome::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Ok => "ok",
            AuditOutcome::Denied => "denied",
            AuditOutcome::Invalid => "invalid",
            AuditOutcome::Unauthenticated => "unauthenticated",
            AuditOutcome::Unavailable => "unavailable",
            AuditOutcome::Error => "error",
        }
    }

    pub fn parse(name: &str) -> Result<Self, AuditError> {
        AuditOutcome::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == name)
            .ok_or_else(|| AuditError::invalid("outcome", format!("unknown outcome {name:?}")))
    }
}

impl fmt::Display for AuditOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The field classes of one flag that were disclosed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisclosedFields {
    pub owner_agency: AgencyId,
    pub flag_id: Uuid,
    #[serde(with = "class_set_serde")]
    pub classes: FieldClassSet,
}

/// One field class of one flag that was withheld, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithheldField {
    pub owner_agency: AgencyId,
    pub flag_id: Uuid,
    pub class: FieldClass,
    pub reason: WithholdReason,
}

/// One audited request or event. Field order is encoding order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When the request was received, UTC; encoded to the nanosecond.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// The disclosure id: the same on both sides of a federated query.
    pub request_id: Uuid,
    pub action: AuditAction,
    pub outcome: AuditOutcome,
    /// The gRPC status code the caller saw (0 is OK).
    pub grpc_code: u32,
    /// The acting agency (for a federated query, the asking agency); none
    /// when authentication failed before an agency was known.
    pub actor_agency: Option<AgencyId>,
    /// The acting person; none for node callers.
    pub actor_user: Option<UserId>,
    pub actor_roles: Vec<RoleName>,
    /// The SPIFFE URI the caller's certificate presented.
    pub caller_identity: Option<String>,
    #[serde(with = "optional_hex32")]
    pub caller_fingerprint: Option<Fingerprint>,
    /// The CAD incident number the request serves.
    pub incident_id: Option<String>,
    pub purpose: Option<Purpose>,
    #[serde(with = "hex32_list")]
    pub subject_refs: Vec<SubjectRef>,
    pub disclosed: Vec<DisclosedFields>,
    pub withheld: Vec<WithheldField>,
    /// Break-the-glass was used.
    pub override_used: bool,
    /// The written nature of the emergency.
    pub override_reason: Option<String>,
}

impl AuditRecord {
    /// A record with nothing but its time, request id and action; its
    /// outcome is `Error` (gRPC UNKNOWN) until the caller sets the final one,
    /// so a forgotten outcome never reads as a success.
    pub fn new(time: OffsetDateTime, request_id: Uuid, action: AuditAction) -> Self {
        Self {
            time,
            request_id,
            action,
            outcome: AuditOutcome::Error,
            grpc_code: 2,
            actor_agency: None,
            actor_user: None,
            actor_roles: Vec::new(),
            caller_identity: None,
            caller_fingerprint: None,
            incident_id: None,
            purpose: None,
            subject_refs: Vec::new(),
            disclosed: Vec::new(),
            withheld: Vec::new(),
            override_used: false,
            override_reason: None,
        }
    }

    /// Whether any field class was disclosed.
    pub fn disclosed_anything(&self) -> bool {
        self.disclosed.iter().any(|fields| !fields.classes.is_empty())
    }
}

/// The canonical bytes of the entry at `leaf_index`: the Merkle leaf data.
/// The index is part of the entry, so a row moved to another position is
/// caught by that row alone.
pub fn encode_entry(leaf_index: u64, record: &AuditRecord) -> Vec<u8> {
    let mut out = EntryWriter(Vec::with_capacity(256));
    out.u8(ENTRY_FORMAT_VERSION);
    out.u64(leaf_index);
    let utc = record.time.to_offset(time::UtcOffset::UTC);
    out.i64(utc.unix_timestamp());
    out.u32(utc.nanosecond());
    out.fixed(record.request_id.as_bytes());
    out.str(record.action.as_str());
    out.str(record.outcome.as_str());
    out.u32(record.grpc_code);
    out.opt(record.actor_agency.as_ref(), |out, agency| out.str(agency.as_str()));
    out.opt(record.actor_user.as_ref(), |out, user| out.str(user.as_str()));
    out.count(record.actor_roles.len());
    for role in &record.actor_roles {
        out.str(role.as_str());
    }
    out.opt(record.caller_identity.as_ref(), |out, identity| out.str(identity));
    out.opt(record.caller_fingerprint.as_ref(), |out, fingerprint| {
        out.fixed(fingerprint)
    });
    out.opt(record.incident_id.as_ref(), |out, incident| out.str(incident));
    out.opt(record.purpose.as_ref(), |out, purpose| out.str(purpose.as_str()));
    out.count(record.subject_refs.len());
    for subject_ref in &record.subject_refs {
        out.fixed(subject_ref);
    }
    out.count(record.disclosed.len());
    for fields in &record.disclosed {
        out.str(fields.owner_agency.as_str());
        out.fixed(fields.flag_id.as_bytes());
        out.count(fields.classes.iter().count());
        for class in fields.classes.iter() {
            out.str(class.as_str());
        }
    }
    out.count(record.withheld.len());
    for field in &record.withheld {
        out.str(field.owner_agency.as_str());
        out.fixed(field.flag_id.as_bytes());
        out.str(field.class.as_str());
        out.str(field.reason.as_str());
    }
    out.u8(u8::from(record.override_used));
    out.opt(record.override_reason.as_ref(), |out, reason| out.str(reason));
    out.0
}

/// Decodes an entry, refusing anything [`encode_entry`] would not have
/// written: a bad version, tag or name, classes out of order, trailing bytes.
pub fn decode_entry(bytes: &[u8]) -> Result<(u64, AuditRecord), AuditError> {
    let mut input = EntryReader { bytes, at: 0 };
    let version = input.u8("version")?;
    if version != ENTRY_FORMAT_VERSION {
        return Err(input.error("version", &format!("unknown entry format version {version}")));
    }
    let leaf_index = input.u64("leaf_index")?;
    let seconds = input.i64("time.seconds")?;
    let nanos = input.u32("time.nanos")?;
    if nanos >= 1_000_000_000 {
        return Err(input.error("time.nanos", "must be below 1e9"));
    }
    let time = OffsetDateTime::from_unix_timestamp_nanos(i128::from(seconds) * 1_000_000_000 + i128::from(nanos))
        .map_err(|_| input.error("time", "out of range"))?;
    let request_id = Uuid::from_bytes(input.fixed::<16>("request_id")?);
    let action = AuditAction::parse(input.str("action")?).map_err(|error| input.wrap(error))?;
    let outcome = AuditOutcome::parse(input.str("outcome")?).map_err(|error| input.wrap(error))?;
    let grpc_code = input.u32("grpc_code")?;
    let actor_agency = input.opt("actor_agency", |input| input.agency("actor_agency"))?;
    let actor_user = input.opt("actor_user", |input| {
        let text = input.str("actor_user")?;
        UserId::parse(text).map_err(|error| input.error("actor_user", &error.to_string()))
    })?;
    let role_count = input.count("actor_roles", 4)?;
    let mut actor_roles = Vec::with_capacity(role_count);
    for _ in 0..role_count {
        let text = input.str("actor_roles")?;
        actor_roles.push(RoleName::parse(text).map_err(|error| input.error("actor_roles", &error.to_string()))?);
    }
    let caller_identity = input.opt("caller_identity", |input| {
        input.str("caller_identity").map(str::to_owned)
    })?;
    let caller_fingerprint = input.opt("caller_fingerprint", |input| input.fixed::<32>("caller_fingerprint"))?;
    let incident_id = input.opt("incident_id", |input| input.str("incident_id").map(str::to_owned))?;
    let purpose = input.opt("purpose", |input| {
        let text = input.str("purpose")?;
        Purpose::parse(text).map_err(|error| input.error("purpose", &error.to_string()))
    })?;
    let ref_count = input.count("subject_refs", 32)?;
    let mut subject_refs = Vec::with_capacity(ref_count);
    for _ in 0..ref_count {
        subject_refs.push(input.fixed::<32>("subject_refs")?);
    }
    let disclosed_count = input.count("disclosed", 4 + 1 + 16 + 4)?;
    let mut disclosed = Vec::with_capacity(disclosed_count);
    for _ in 0..disclosed_count {
        let owner_agency = input.agency("disclosed.owner_agency")?;
        let flag_id = Uuid::from_bytes(input.fixed::<16>("disclosed.flag_id")?);
        let class_count = input.count("disclosed.classes", 4)?;
        let mut classes = FieldClassSet::EMPTY;
        let mut previous: Option<usize> = None;
        for _ in 0..class_count {
            let class = input.field_class("disclosed.classes")?;
            let position = FieldClass::ALL
                .iter()
                .position(|known| *known == class)
                .unwrap_or_default();
            if previous.is_some_and(|before| before >= position) {
                return Err(input.error("disclosed.classes", "must be in canonical order without repeats"));
            }
            previous = Some(position);
            classes.insert(class);
        }
        disclosed.push(DisclosedFields {
            owner_agency,
            flag_id,
            classes,
        });
    }
    let withheld_count = input.count("withheld", 4 + 1 + 16 + 4 + 1 + 4 + 1)?;
    let mut withheld = Vec::with_capacity(withheld_count);
    for _ in 0..withheld_count {
        let owner_agency = input.agency("withheld.owner_agency")?;
        let flag_id = Uuid::from_bytes(input.fixed::<16>("withheld.flag_id")?);
        let class = input.field_class("withheld.class")?;
        let reason = WithholdReason::parse(input.str("withheld.reason")?).map_err(|error| input.wrap(error))?;
        withheld.push(WithheldField {
            owner_agency,
            flag_id,
            class,
            reason,
        });
    }
    let override_used = match input.u8("override_used")? {
        0 => false,
        1 => true,
        _ => return Err(input.error("override_used", "must be 0 or 1")),
    };
    let override_reason = input.opt("override_reason", |input| {
        input.str("override_reason").map(str::to_owned)
    })?;
    if input.at != bytes.len() {
        return Err(input.error("entry", &format!("{} trailing bytes", bytes.len() - input.at)));
    }
    let record = AuditRecord {
        time,
        request_id,
        action,
        outcome,
        grpc_code,
        actor_agency,
        actor_user,
        actor_roles,
        caller_identity,
        caller_fingerprint,
        incident_id,
        purpose,
        subject_refs,
        disclosed,
        withheld,
        override_used,
        override_reason,
    };
    Ok((leaf_index, record))
}

struct EntryWriter(Vec<u8>);

impl EntryWriter {
    fn u8(&mut self, value: u8) {
        self.0.push(value);
    }

    fn u32(&mut self, value: u32) {
        self.0.extend_from_slice(&value.to_be_bytes());
    }

    fn u64(&mut self, value: u64) {
        self.0.extend_from_slice(&value.to_be_bytes());
    }

    fn i64(&mut self, value: i64) {
        self.0.extend_from_slice(&value.to_be_bytes());
    }

    fn fixed(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    fn count(&mut self, count: usize) {
        let count = u32::try_from(count).expect("audit record lists hold fewer than 2^32 items");
        self.u32(count);
    }

    fn str(&mut self, text: &str) {
        self.count(text.len());
        self.0.extend_from_slice(text.as_bytes());
    }

    fn opt<T>(&mut self, value: Option<&T>, write: impl FnOnce(&mut Self, &T)) {
        match value {
            None => self.u8(0),
            Some(value) => {
                self.u8(1);
                write(self, value);
            }
        }
    }
}

struct EntryReader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> EntryReader<'a> {
    fn error(&self, field: &str, reason: &str) -> AuditError {
        AuditError::Store(format!("entry does not decode at byte {} ({field}): {reason}", self.at))
    }

    fn wrap(&self, error: AuditError) -> AuditError {
        match error {
            AuditError::Invalid { field, reason } => self.error(&field, &reason),
            other => other,
        }
    }

    fn take(&mut self, field: &str, len: usize) -> Result<&'a [u8], AuditError> {
        let end = self.at.checked_add(len).filter(|end| *end <= self.bytes.len());
        let Some(end) = end else {
            return Err(self.error(field, "truncated"));
        };
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn fixed<const N: usize>(&mut self, field: &str) -> Result<[u8; N], AuditError> {
        let slice = self.take(field, N)?;
        Ok(slice.try_into().expect("take returns exactly N bytes"))
    }

    fn u8(&mut self, field: &str) -> Result<u8, AuditError> {
        Ok(self.fixed::<1>(field)?[0])
    }

    fn u32(&mut self, field: &str) -> Result<u32, AuditError> {
        Ok(u32::from_be_bytes(self.fixed(field)?))
    }

    fn u64(&mut self, field: &str) -> Result<u64, AuditError> {
        Ok(u64::from_be_bytes(self.fixed(field)?))
    }

    fn i64(&mut self, field: &str) -> Result<i64, AuditError> {
        Ok(i64::from_be_bytes(self.fixed(field)?))
    }

    /// A list length, checked against the bytes left so a corrupt count
    /// cannot ask for a huge allocation.
    fn count(&mut self, field: &str, min_item_len: usize) -> Result<usize, AuditError> {
        let count = self.u32(field)? as usize;
        let left = self.bytes.len() - self.at;
        if count.saturating_mul(min_item_len) > left {
            return Err(self.error(field, &format!("count {count} exceeds the bytes left")));
        }
        Ok(count)
    }

    fn str(&mut self, field: &str) -> Result<&'a str, AuditError> {
        let len = self.u32(field)? as usize;
        let slice = self.take(field, len)?;
        std::str::from_utf8(slice).map_err(|_| self.error(field, "not utf-8"))
    }

    fn opt<T>(
        &mut self,
        field: &str,
        read: impl FnOnce(&mut Self) -> Result<T, AuditError>,
    ) -> Result<Option<T>, AuditError> {
        match self.u8(field)? {
            0 => Ok(None),
            1 => read(self).map(Some),
            tag => Err(self.error(field, &format!("option tag {tag} is neither 0 nor 1"))),
        }
    }

    fn agency(&mut self, field: &str) -> Result<AgencyId, AuditError> {
        let text = self.str(field)?;
        AgencyId::parse(text).map_err(|error| self.error(field, &error.to_string()))
    }

    fn field_class(&mut self, field: &str) -> Result<FieldClass, AuditError> {
        let text = self.str(field)?;
        FieldClass::parse(text).map_err(|_| self.error(field, &format!("unknown field class {text:?}")))
    }
}

mod class_set_serde {
    use flagnet_core::{FieldClass, FieldClassSet};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(classes: &FieldClassSet, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(classes.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<FieldClassSet, D::Error> {
        Ok(Vec::<FieldClass>::deserialize(deserializer)?.into_iter().collect())
    }
}

fn hex32(text: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(text).map_err(|error| format!("not hex: {error}"))?;
    bytes.try_into().map_err(|_| "must be 32 bytes".to_owned())
}

mod optional_hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<[u8; 32]>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(bytes) => serializer.serialize_some(&hex::encode(bytes)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<[u8; 32]>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| super::hex32(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

mod hex32_list {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(values: &[[u8; 32]], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(values.iter().map(hex::encode))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<[u8; 32]>, D::Error> {
        Vec::<String>::deserialize(deserializer)?
            .iter()
            .map(|text| super::hex32(text).map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    /// The record whose bytes `FORMAT.md` walks through.
    pub(crate) fn golden_record() -> AuditRecord {
        let mut record = AuditRecord::new(
            datetime!(2025-03-01 12:34:56.5 UTC),
            Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
            AuditAction::Lookup,
        );
        record.outcome = AuditOutcome::Ok;
        record.grpc_code = 0;
        record.actor_agency = Some(AgencyId::parse("rolla-pd").unwrap());
        record.actor_user = Some(UserId::parse("d.jones").unwrap());
        record.actor_roles = vec![RoleName::parse("dispatcher").unwrap()];
        record.caller_identity = Some("spiffe://mo/agency/rolla-pd/user/d.jones".to_owned());
        record.caller_fingerprint = Some([0xaa; 32]);
        record.incident_id = Some("CAD-1".to_owned());
        record.purpose = Some(Purpose::EmergencyResponse);
        record.subject_refs = vec![[0x11; 32]];
        record.disclosed = vec![DisclosedFields {
            owner_agency: AgencyId::parse("phelps-so").unwrap(),
            flag_id: Uuid::from_u128(1),
            classes: [FieldClass::Presence, FieldClass::Response].into_iter().collect(),
        }];
        record.withheld = vec![WithheldField {
            owner_agency: AgencyId::parse("phelps-so").unwrap(),
            flag_id: Uuid::from_u128(1),
            class: FieldClass::Clinical,
            reason: WithholdReason::Policy,
        }];
        record
    }

    const GOLDEN_ENTRY_HEX: &str = concat!(
        "01",                                                                               // version
        "0000000000000007",                                                                 // leaf index 7
        "0000000067c2fef0",                                                                 // seconds 1740832496
        "1dcd6500",                                                                         // nanos 500000000
        "0123456789abcdef0123456789abcdef",                                                 // request id
        "000000066c6f6f6b7570",                                                             // "lookup"
        "000000026f6b",                                                                     // "ok"
        "00000000",                                                                         // grpc code 0
        "0100000008726f6c6c612d7064",                                                       // Some("rolla-pd")
        "0100000007642e6a6f6e6573",                                                         // Some("d.jones")
        "000000010000000a64697370617463686572",                                             // ["dispatcher"]
        "0100000028",                                                                       // Some(40 bytes:
        "7370696666653a2f2f6d6f2f6167656e63792f726f6c6c612d70642f757365722f642e6a6f6e6573", // spiffe uri)
        "01aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",               // Some(fingerprint)
        "01000000054341442d31",                                                             // Some("CAD-1")
        "0100000012656d657267656e63795f726573706f6e7365", // Some("emergency_response")
        "00000001",                                       // 1 subject ref
        "1111111111111111111111111111111111111111111111111111111111111111",
        "00000001",                         // 1 disclosed entry
        "000000097068656c70732d736f",       // "phelps-so"
        "00000000000000000000000000000001", // flag id
        "00000002",                         // 2 classes
        "0000000870726573656e6365",         // "presence"
        "00000008726573706f6e7365",         // "response"
        "00000001",                         // 1 withheld entry
        "000000097068656c70732d736f",       // "phelps-so"
        "00000000000000000000000000000001", // flag id
        "00000008636c696e6963616c",         // "clinical"
        "00000006706f6c696379",             // "policy"
        "00",                               // override not used
        "00",                               // no override reason
    );

    #[test]
    fn golden_entry_bytes_are_fixed() {
        let bytes = encode_entry(7, &golden_record());
        assert_eq!(hex::encode(&bytes), GOLDEN_ENTRY_HEX);
        assert_eq!(
            hex::encode(crate::merkle::leaf_hash(&bytes)),
            "d541bcb1752824c7f344aeb85d776180206fb90ba1f21c46f0b8d747e5c00dcd",
            "leaf hash of the golden entry"
        );
    }

    #[test]
    fn entries_round_trip_and_re_encode_to_the_same_bytes() {
        let mut record = golden_record();
        record.action = AuditAction::parse("x.custom_event").unwrap();
        record.override_used = true;
        record.override_reason = Some("person threatening to jump, no consent on file".to_owned());
        record.time = datetime!(1969-12-31 23:59:59.25 UTC);
        let bytes = encode_entry(u64::MAX, &record);
        let (index, decoded) = decode_entry(&bytes).unwrap();
        assert_eq!(index, u64::MAX);
        assert_eq!(decoded, record);
        assert_eq!(encode_entry(index, &decoded), bytes);

        let empty = AuditRecord::new(
            OffsetDateTime::UNIX_EPOCH,
            Uuid::nil(),
            AuditAction::AuthenticationRefused,
        );
        let bytes = encode_entry(0, &empty);
        assert_eq!(decode_entry(&bytes).unwrap(), (0, empty));
    }

    #[test]
    fn non_canonical_or_damaged_bytes_are_refused() {
        let bytes = encode_entry(7, &golden_record());
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(decode_entry(&trailing).unwrap_err().to_string().contains("trailing"));
        for len in 0..bytes.len() {
            assert!(
                decode_entry(&bytes[..len]).is_err(),
                "a {len}-byte prefix must not decode"
            );
        }
        let mut version = bytes.clone();
        version[0] = 2;
        assert!(decode_entry(&version).unwrap_err().to_string().contains("version"));
        let mut tag = bytes.clone();
        tag[GOLDEN_ENTRY_HEX.find("0100000008726f6c6c61").unwrap() / 2] = 2;
        assert!(decode_entry(&tag).unwrap_err().to_string().contains("option tag"));

        let in_order = "000000020000000870726573656e636500000008726573706f6e7365";
        let reversed = "0000000200000008726573706f6e73650000000870726573656e6365";
        let repeated = "000000020000000870726573656e63650000000870726573656e6365";
        for bad in [reversed, repeated] {
            let bytes = hex::decode(GOLDEN_ENTRY_HEX.replace(in_order, bad)).unwrap();
            assert!(
                decode_entry(&bytes)
                    .unwrap_err()
                    .to_string()
                    .contains("canonical order")
            );
        }
    }

    #[test]
    fn json_view_uses_names_and_hex() {
        let json = serde_json::to_value(golden_record()).unwrap();
        assert_eq!(json["action"], "lookup");
        assert_eq!(json["outcome"], "ok");
        assert_eq!(json["time"], "2025-03-01T12:34:56.5Z");
        assert_eq!(
            json["disclosed"][0]["classes"],
            serde_json::json!(["presence", "response"])
        );
        assert_eq!(json["withheld"][0]["reason"], "policy");
        assert_eq!(json["subject_refs"][0], "11".repeat(32));
        let back: AuditRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, golden_record());
    }

    #[test]
    fn extension_names_are_checked_and_known_names_are_never_other() {
        assert_eq!(AuditAction::parse("lookup").unwrap(), AuditAction::Lookup);
        assert_eq!(AuditAction::parse("review.opened").unwrap().as_str(), "review.opened");
        assert!(AuditAction::parse("").is_err());
        assert!(AuditAction::parse("Lookup").is_err());
        assert!(AuditAction::parse(&"a".repeat(65)).is_err());
        assert_eq!(WithholdReason::parse("no_consent").unwrap(), WithholdReason::NoConsent);
        assert!(AuditOutcome::parse("maybe").is_err());
    }

    #[test]
    fn subject_refs_are_keyed_hmacs_of_the_token_bytes() {
        let key = AuditTokenKey::from_bytes(vec![0x0b; 32]).unwrap();
        let token = BlindToken([0x42; 32]);
        // python3 -c 'import hmac,hashlib; print(hmac.new(b"\x0b"*32, b"\x42"*32, hashlib.sha256).hexdigest())'
        assert_eq!(
            hex::encode(key.subject_ref(&token)),
            "735dc46db4f823580d6d9e2c375842e6a6fe54512f6f051b0abae294fc3ab8ef"
        );
        assert_ne!(key.subject_ref(&token), token.0);
        let other_key = AuditTokenKey::from_bytes(vec![0x0c; 32]).unwrap();
        assert_ne!(other_key.subject_ref(&token), key.subject_ref(&token));
        assert_eq!(key.subject_refs([&token, &token]).len(), 1);
        assert!(AuditTokenKey::from_bytes(vec![1; 31]).is_err());
        assert!(!format!("{key:?}").contains("0b"));
    }
}
