//! What the SQL backends share about a row, whatever the dialect: how each
//! value is encoded in its column, what each table seals and under which
//! [`RowBinding`], how a row read back is authenticated and turned into a
//! domain value, and the checks every write passes before any statement
//! runs. SQLite and PostgreSQL both go through this module, so a row is
//! encoded, sealed and validated alike on both; each backend keeps only its
//! statements and its locking.
//!
//! The encodings are those of the migrations' headers: ids as lowercase
//! hyphenated UUID text, instants as signed 64-bit unix nanoseconds (UTC),
//! dates as `YYYY-MM-DD` text, blind tokens as 32 raw bytes.
//!
//! This module must never put a subject's plaintext anywhere but a sealed
//! body, never put it in a log or an error message, and never return a row
//! whose body did not open under its binding.

use crate::seal::{RowBinding, Sealer};
use crate::{MAX_CONSENT_QUERY_FLAGS, MAX_FLAG_TOKENS, MAX_LIST_LIMIT, MAX_LOOKUP_TOKENS};
use flagnet_core::consent::Revocation;
use flagnet_core::flag::check_text;
use flagnet_core::{
    AgencyId, Alert, BlindToken, Consent, ConsentBasis, ConsentElements, ConsentScope, CoreError, CoreResult,
    Encounter, Flag, FlagContent, FlagStatus, NewConsent, NewFlag, NewPolicyVersion, PolicyProposal, PolicyVersion,
    ProposalClosing, ProposalOutcome, ReviewItem, ReviewResolution, SubjectKeyKind, SubjectToken, TimeBoundBasis,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashSet};
use std::fmt;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

pub(crate) const FLAGS: &str = "flags";
pub(crate) const FLAG_HISTORY: &str = "flag_history";
pub(crate) const CONSENTS: &str = "consents";
pub(crate) const ALERTS: &str = "alerts";
pub(crate) const OUTBOX: &str = "outbox";
pub(crate) const REVIEW_ITEMS: &str = "review_items";
pub(crate) const POLICY_VERSIONS: &str = "policy_versions";
pub(crate) const POLICY_PROPOSALS: &str = "policy_proposals";

/// What the data key check row holds, sealed.
pub(crate) const DATA_KEY_CHECK: &[u8] = b"flagnet data key check v1";
const DATE_FORMAT: &[BorrowedFormatItem<'static>] = format_description!("[year]-[month]-[day]");

/// The binding of the `store_meta` row that proves which data key a
/// database was written under.
pub(crate) fn data_key_check_binding() -> RowBinding {
    RowBinding::new("store_meta", "data_key_check")
}

/// Whether `stored` is the data key check sealed under this sealer's key.
pub(crate) fn data_key_check_opens(sealer: &Sealer, stored: &[u8]) -> bool {
    matches!(sealer.open_bytes(&data_key_check_binding(), stored), Ok(plaintext) if plaintext == DATA_KEY_CHECK)
}

pub(crate) fn corrupt(table: &str, row_id: &str, what: impl fmt::Display) -> CoreError {
    tracing::error!(table, row_id, what = %what, "store row is corrupt");
    CoreError::Internal(format!("{table} row {row_id} is corrupt: {what}"))
}

// ---- encodings (see the migrations' headers) ----

pub(crate) fn instant_to_sql(field: &str, at: OffsetDateTime) -> CoreResult<i64> {
    i64::try_from(at.unix_timestamp_nanos())
        .map_err(|_| CoreError::invalid(field, "must be between the years 1678 and 2261"))
}

pub(crate) fn instant_from_sql(table: &str, row_id: &str, nanos: i64) -> CoreResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos)).map_err(|error| corrupt(table, row_id, error))
}

pub(crate) fn optional_instant_from_sql(
    table: &str,
    row_id: &str,
    nanos: Option<i64>,
) -> CoreResult<Option<OffsetDateTime>> {
    nanos.map(|nanos| instant_from_sql(table, row_id, nanos)).transpose()
}

pub(crate) fn date_to_sql(date: Date) -> CoreResult<String> {
    date.format(DATE_FORMAT)
        .map_err(|error| CoreError::invalid("flag.review_date", error.to_string()))
}

pub(crate) fn date_from_sql(row_id: &str, text: &str) -> CoreResult<Date> {
    Date::parse(text, DATE_FORMAT).map_err(|error| corrupt(FLAGS, row_id, format_args!("review_date: {error}")))
}

pub(crate) fn uuid_from_sql(table: &str, row_id: &str, text: &str) -> CoreResult<Uuid> {
    Uuid::parse_str(text).map_err(|error| corrupt(table, row_id, format_args!("uuid: {error}")))
}

pub(crate) fn agency_from_sql(table: &str, row_id: &str, text: &str) -> CoreResult<AgencyId> {
    AgencyId::parse(text).map_err(|error| corrupt(table, row_id, format_args!("owner: {error}")))
}

pub(crate) fn status_from_sql(table: &str, row_id: &str, text: &str) -> CoreResult<FlagStatus> {
    match text {
        "active" => Ok(FlagStatus::Active),
        "unverified" => Ok(FlagStatus::Unverified),
        "lapsed" => Ok(FlagStatus::Lapsed),
        "revoked" => Ok(FlagStatus::Revoked),
        "archived" => Ok(FlagStatus::Archived),
        other => Err(corrupt(table, row_id, format_args!("unknown status {other:?}"))),
    }
}

pub(crate) fn revision_from_sql(table: &str, row_id: &str, revision: i64) -> CoreResult<u64> {
    u64::try_from(revision).map_err(|_| corrupt(table, row_id, "negative revision"))
}

pub(crate) fn token_from_sql(row_id: &str, kind: &str, token: &[u8]) -> CoreResult<SubjectToken> {
    let kind = SubjectKeyKind::parse(kind).map_err(|error| corrupt("flag_tokens", row_id, error))?;
    let token = BlindToken::from_slice(token).map_err(|error| corrupt("flag_tokens", row_id, error))?;
    Ok(SubjectToken { kind, token })
}

/// The tokens in their first-given order, each once.
pub(crate) fn distinct_in_order(tokens: &[SubjectToken]) -> Vec<SubjectToken> {
    let mut seen = HashSet::with_capacity(tokens.len());
    tokens.iter().copied().filter(|token| seen.insert(*token)).collect()
}

/// A page size as a `LIMIT`: clamped to `1..=MAX_LIST_LIMIT`, never refused.
pub(crate) fn list_limit(limit: usize) -> i64 {
    limit.clamp(1, MAX_LIST_LIMIT) as i64
}

/// An alert cursor as a column value; one past every stored cursor stays so.
pub(crate) fn cursor_to_sql(after: u64) -> i64 {
    i64::try_from(after).unwrap_or(i64::MAX)
}

pub(crate) fn cursor_from_sql(encounter_id: &str, cursor: i64) -> CoreResult<u64> {
    u64::try_from(cursor).map_err(|_| corrupt(ALERTS, encounter_id, "negative cursor"))
}

// ---- checks every call makes before touching the database ----

pub(crate) fn check_required_text(field: &str, value: &str) -> CoreResult<()> {
    check_text(field, value)?;
    if value.trim().is_empty() {
        return Err(CoreError::invalid(field, "is required"));
    }
    Ok(())
}

pub(crate) fn validate_new_flag(flag: &NewFlag) -> CoreResult<()> {
    flag.content.validate().map_err(|error| error.under("flag"))?;
    if let Some(basis) = &flag.basis {
        check_text("flag.basis.kind", &basis.kind)?;
    }
    if flag.subject_tokens.len() > MAX_FLAG_TOKENS {
        return Err(CoreError::invalid(
            "flag.subject_tokens",
            format!(
                "must have at most {MAX_FLAG_TOKENS} entries, got {}",
                flag.subject_tokens.len()
            ),
        ));
    }
    check_required_text("flag.author", &flag.author)?;
    check_required_text("flag.reason", &flag.reason)?;
    Ok(())
}

/// The distinct tokens of a lookup, in a fixed order; too many is refused.
pub(crate) fn lookup_tokens(tokens: &[SubjectToken]) -> CoreResult<Vec<SubjectToken>> {
    if tokens.len() > MAX_LOOKUP_TOKENS {
        return Err(CoreError::invalid(
            "tokens",
            format!("at most {MAX_LOOKUP_TOKENS} tokens per lookup, got {}", tokens.len()),
        ));
    }
    Ok(tokens.iter().copied().collect::<BTreeSet<_>>().into_iter().collect())
}

/// The distinct flags of a consent query, in a fixed order; too many is refused.
pub(crate) fn consent_query_flags(flag_ids: &[Uuid]) -> CoreResult<Vec<Uuid>> {
    if flag_ids.len() > MAX_CONSENT_QUERY_FLAGS {
        return Err(CoreError::invalid(
            "flag_ids",
            format!(
                "at most {MAX_CONSENT_QUERY_FLAGS} flags per query, got {}",
                flag_ids.len()
            ),
        ));
    }
    Ok(flag_ids.iter().copied().collect::<BTreeSet<_>>().into_iter().collect())
}

// ---- sealed bodies and their bindings ----

/// What a flag row seals: everything about the subject and who wrote it.
#[derive(Serialize, Deserialize)]
pub(crate) struct FlagBody {
    pub(crate) content: FlagContent,
    pub(crate) basis: Option<TimeBoundBasis>,
    pub(crate) updated_by: String,
}

/// What a history row seals: who made the change and why.
#[derive(Serialize, Deserialize)]
pub(crate) struct HistoryBody {
    pub(crate) changed_by: String,
    pub(crate) reason: String,
}

/// What a consent row seals: the form, its scope, and its revocation.
#[derive(Serialize, Deserialize)]
pub(crate) struct ConsentBody {
    pub(crate) basis: ConsentBasis,
    pub(crate) elements: ConsentElements,
    pub(crate) scope: ConsentScope,
    pub(crate) recorded_by: String,
    pub(crate) revocation: Option<Revocation>,
}

/// A flag row's plaintext columns, as stored.
pub(crate) struct FlagRow {
    pub(crate) id: String,
    pub(crate) owner: String,
    pub(crate) status: String,
    pub(crate) review_date: Option<String>,
    pub(crate) revision: i64,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    pub(crate) sealed: Vec<u8>,
}

impl FlagRow {
    /// Binds every plaintext column, and the flag's tokens in order, so that
    /// neither can be edited or re-pointed without the body failing to open.
    pub(crate) fn binding(&self, tokens: &[SubjectToken]) -> RowBinding {
        let mut binding = RowBinding::new(FLAGS, self.id.as_str())
            .text(&self.owner)
            .text(&self.status)
            .optional_text(self.review_date.as_deref())
            .integer(self.revision)
            .integer(self.created_at)
            .integer(self.updated_at)
            .integer(tokens.len() as i64);
        for token in tokens {
            binding = binding.text(token.kind.as_str()).bytes(token.token.as_bytes());
        }
        binding
    }

    pub(crate) fn open(self, sealer: &Sealer, tokens: Vec<SubjectToken>) -> CoreResult<Flag> {
        let body: FlagBody = sealer.open(&self.binding(&tokens), &self.sealed)?;
        let row_id = self.id.as_str();
        Ok(Flag {
            id: uuid_from_sql(FLAGS, row_id, row_id)?,
            owner: agency_from_sql(FLAGS, row_id, &self.owner)?,
            status: status_from_sql(FLAGS, row_id, &self.status)?,
            review_date: self
                .review_date
                .as_deref()
                .map(|text| date_from_sql(row_id, text))
                .transpose()?,
            basis: body.basis,
            content: body.content,
            subject_tokens: tokens,
            created_at: instant_from_sql(FLAGS, row_id, self.created_at)?,
            updated_at: instant_from_sql(FLAGS, row_id, self.updated_at)?,
            updated_by: body.updated_by,
            revision: revision_from_sql(FLAGS, row_id, self.revision)?,
        })
    }
}

pub(crate) fn history_binding(flag_id: &str, owner: &str, revision: i64, changed_at: i64, status: &str) -> RowBinding {
    RowBinding::new(FLAG_HISTORY, format!("{flag_id}/{revision}"))
        .text(owner)
        .integer(revision)
        .integer(changed_at)
        .text(status)
}

/// A `put_flag` checked and encoded, before the transaction decides its id
/// and revision.
pub(crate) struct FlagInput {
    flag: NewFlag,
    at: OffsetDateTime,
    at_nanos: i64,
    review_date: Option<String>,
    tokens: Vec<SubjectToken>,
}

/// One flag revision sealed and ready to write: the flag row, its tokens in
/// order, the sealed history entry, and the flag as the caller gets it back.
pub(crate) struct FlagWrite {
    pub(crate) row: FlagRow,
    pub(crate) tokens: Vec<SubjectToken>,
    pub(crate) history_sealed: Vec<u8>,
    pub(crate) flag: Flag,
}

impl FlagInput {
    /// Validates and encodes `flag` as written at `at`; nothing is sealed yet.
    pub(crate) fn new(flag: NewFlag, at: OffsetDateTime) -> CoreResult<Self> {
        validate_new_flag(&flag)?;
        let at_nanos = instant_to_sql("flag.updated_at", at)?;
        let review_date = flag.review_date.map(date_to_sql).transpose()?;
        let tokens = distinct_in_order(&flag.subject_tokens);
        Ok(Self {
            flag,
            at,
            at_nanos,
            review_date,
            tokens,
        })
    }

    /// The flag being replaced, or `None` for a new flag.
    pub(crate) fn replaces(&self) -> Option<Uuid> {
        self.flag.id
    }

    pub(crate) fn owner(&self) -> &str {
        self.flag.owner.as_str()
    }

    /// A new flag: a fresh id, revision 1, created now.
    pub(crate) fn create(self, sealer: &Sealer) -> CoreResult<FlagWrite> {
        let created_at = self.at_nanos;
        self.seal(sealer, Uuid::new_v4(), 1, created_at)
    }

    /// The next revision of flag `id`, given its stored owner, revision and
    /// creation instant (`None` when there is no such flag). Another
    /// agency's flag is `NotFound`, like a missing one.
    pub(crate) fn replace(
        self,
        sealer: &Sealer,
        id: Uuid,
        stored: Option<(String, i64, i64)>,
    ) -> CoreResult<FlagWrite> {
        match stored {
            Some((stored_owner, revision, created_at)) if stored_owner == self.owner() => {
                let next = revision
                    .checked_add(1)
                    .ok_or_else(|| corrupt(FLAGS, &id.to_string(), "revision overflow"))?;
                self.seal(sealer, id, next, created_at)
            }
            _ => Err(CoreError::NotFound("flag".into())),
        }
    }

    fn seal(self, sealer: &Sealer, id: Uuid, revision: i64, created_at: i64) -> CoreResult<FlagWrite> {
        let flag = self.flag;
        let mut row = FlagRow {
            id: id.to_string(),
            owner: flag.owner.as_str().to_owned(),
            status: flag.status.as_str().to_owned(),
            review_date: self.review_date,
            revision,
            created_at,
            updated_at: self.at_nanos,
            sealed: Vec::new(),
        };
        let body = FlagBody {
            content: flag.content,
            basis: flag.basis,
            updated_by: flag.author.clone(),
        };
        row.sealed = sealer.seal(&row.binding(&self.tokens), &body)?;
        let history = HistoryBody {
            changed_by: flag.author,
            reason: flag.reason,
        };
        let history_sealed = sealer.seal(
            &history_binding(&row.id, &row.owner, revision, self.at_nanos, &row.status),
            &history,
        )?;
        let stored = Flag {
            id,
            owner: flag.owner,
            status: flag.status,
            review_date: flag.review_date,
            basis: body.basis,
            content: body.content,
            subject_tokens: self.tokens.clone(),
            created_at: instant_from_sql(FLAGS, &row.id, created_at)?,
            updated_at: self.at,
            updated_by: body.updated_by,
            revision: revision_from_sql(FLAGS, &row.id, revision)?,
        };
        Ok(FlagWrite {
            row,
            tokens: self.tokens,
            history_sealed,
            flag: stored,
        })
    }
}

/// A flag row with its tokens, and which of them a lookup asked for.
pub(crate) struct LoadedFlag {
    pub(crate) row: FlagRow,
    pub(crate) tokens: Vec<SubjectToken>,
    pub(crate) matched: Vec<SubjectToken>,
}

/// Flags gathered from rows of one flag's columns plus one of its tokens,
/// ordered by flag id then token position: one entry per flag.
#[derive(Default)]
pub(crate) struct LoadedFlags(Vec<LoadedFlag>);

/// One joined row's token: its kind and bytes, and whether the lookup asked
/// for it.
pub(crate) struct JoinedToken<'a> {
    pub(crate) kind: &'a str,
    pub(crate) token: &'a [u8],
    pub(crate) matched: bool,
}

impl LoadedFlags {
    /// Adds one joined row of flag `id`: `read_row` is called only for the
    /// first row of each flag; `token` is `None` for a flag without tokens.
    pub(crate) fn push(
        &mut self,
        id: &str,
        read_row: impl FnOnce() -> CoreResult<FlagRow>,
        token: Option<JoinedToken<'_>>,
    ) -> CoreResult<()> {
        let is_next_flag = self.0.last().is_none_or(|last| last.row.id != id);
        if is_next_flag {
            self.0.push(LoadedFlag {
                row: read_row()?,
                tokens: Vec::new(),
                matched: Vec::new(),
            });
        }
        let Some(current) = self.0.last_mut() else {
            return Err(CoreError::Internal("a flag row was lost while grouping".into()));
        };
        let Some(joined) = token else {
            return Ok(());
        };
        let token = token_from_sql(id, joined.kind, joined.token)?;
        current.tokens.push(token);
        if joined.matched {
            current.matched.push(token);
        }
        Ok(())
    }

    pub(crate) fn into_vec(self) -> Vec<LoadedFlag> {
        self.0
    }
}

/// A consent row's plaintext columns, as stored.
pub(crate) struct ConsentRow {
    pub(crate) id: String,
    pub(crate) flag_id: String,
    pub(crate) owner: String,
    pub(crate) valid_from: i64,
    pub(crate) valid_until: Option<i64>,
    pub(crate) recorded_at: i64,
    pub(crate) revoked_at: Option<i64>,
    pub(crate) sealed: Vec<u8>,
}

impl ConsentRow {
    /// Validates `consent` as recorded at `at` and encodes it as a new row
    /// (a fresh id, not yet revoked) with the body it will seal.
    pub(crate) fn new_recorded(consent: NewConsent, at: OffsetDateTime) -> CoreResult<(ConsentRow, ConsentBody)> {
        consent.validate()?;
        check_required_text("consent.recorded_by", &consent.recorded_by)?;
        let row = ConsentRow {
            id: Uuid::new_v4().to_string(),
            flag_id: consent.flag_id.to_string(),
            owner: consent.owner.as_str().to_owned(),
            valid_from: instant_to_sql("consent.valid_from", consent.valid_from)?,
            valid_until: consent
                .valid_until
                .map(|until| instant_to_sql("consent.valid_until", until))
                .transpose()?,
            recorded_at: instant_to_sql("consent.recorded_at", at)?,
            revoked_at: None,
            sealed: Vec::new(),
        };
        let body = ConsentBody {
            basis: consent.basis,
            elements: consent.elements,
            scope: consent.scope,
            recorded_by: consent.recorded_by,
            revocation: None,
        };
        Ok((row, body))
    }

    pub(crate) fn binding(&self) -> RowBinding {
        RowBinding::new(CONSENTS, self.id.as_str())
            .text(&self.flag_id)
            .text(&self.owner)
            .integer(self.valid_from)
            .optional_integer(self.valid_until)
            .integer(self.recorded_at)
            .optional_integer(self.revoked_at)
    }

    pub(crate) fn open_body(&self, sealer: &Sealer) -> CoreResult<ConsentBody> {
        let body: ConsentBody = sealer.open(&self.binding(), &self.sealed)?;
        let sealed_revoked_at = body
            .revocation
            .as_ref()
            .map(|revocation| instant_to_sql("consent.revocation.at", revocation.at))
            .transpose()
            .map_err(|error| corrupt(CONSENTS, &self.id, error))?;
        if sealed_revoked_at != self.revoked_at {
            return Err(corrupt(CONSENTS, &self.id, "revocation does not match revoked_at"));
        }
        Ok(body)
    }

    /// Revokes this stored row: `FailedPrecondition` when it already is,
    /// otherwise the row gets `revoked_at` and a body resealed with the
    /// revocation in it (in `self.sealed`), which is returned.
    pub(crate) fn revoke(&mut self, sealer: &Sealer, revocation: Revocation) -> CoreResult<ConsentBody> {
        if self.revoked_at.is_some() {
            return Err(CoreError::FailedPrecondition("consent already revoked".into()));
        }
        let revoked_at = instant_to_sql("revocation.at", revocation.at)?;
        let mut body = self.open_body(sealer)?;
        body.revocation = Some(revocation);
        self.revoked_at = Some(revoked_at);
        self.sealed = sealer.seal(&self.binding(), &body)?;
        Ok(body)
    }

    pub(crate) fn into_consent(self, body: ConsentBody) -> CoreResult<Consent> {
        let row_id = self.id.as_str();
        Ok(Consent {
            id: uuid_from_sql(CONSENTS, row_id, row_id)?,
            flag_id: uuid_from_sql(CONSENTS, row_id, &self.flag_id)?,
            owner: agency_from_sql(CONSENTS, row_id, &self.owner)?,
            basis: body.basis,
            elements: body.elements,
            scope: body.scope,
            valid_from: instant_from_sql(CONSENTS, row_id, self.valid_from)?,
            valid_until: optional_instant_from_sql(CONSENTS, row_id, self.valid_until)?,
            recorded_at: instant_from_sql(CONSENTS, row_id, self.recorded_at)?,
            recorded_by: body.recorded_by,
            revocation: body.revocation,
        })
    }

    pub(crate) fn open(self, sealer: &Sealer) -> CoreResult<Consent> {
        let body = self.open_body(sealer)?;
        self.into_consent(body)
    }
}

/// Checks a revocation's who and why and encodes its instant.
pub(crate) fn new_revocation(by: &str, reason: &str, at: OffsetDateTime) -> CoreResult<Revocation> {
    check_required_text("revocation.by", by)?;
    check_text("revocation.reason", reason)?;
    instant_to_sql("revocation.at", at)?;
    Ok(Revocation {
        at,
        by: by.to_owned(),
        reason: reason.to_owned(),
    })
}

pub(crate) fn review_binding(id: &str, owner: &str, created_at: i64, resolved_at: Option<i64>) -> RowBinding {
    RowBinding::new(REVIEW_ITEMS, id)
        .text(owner)
        .integer(created_at)
        .optional_integer(resolved_at)
}

/// Checks a new review item and encodes its creation instant.
pub(crate) fn new_review_item(item: &ReviewItem) -> CoreResult<i64> {
    check_required_text("review.reason", &item.reason)?;
    if item.resolution.is_some() {
        return Err(CoreError::invalid("review.resolution", "a new review item is open"));
    }
    instant_to_sql("review.created_at", item.created_at)
}

/// Checks a resolution before any review item is read.
pub(crate) fn check_resolution(resolution: &ReviewResolution) -> CoreResult<()> {
    resolution.validate()?;
    instant_to_sql("review.resolved_at", resolution.at)?;
    Ok(())
}

/// A stored review item's columns, as read for resolving it.
pub(crate) struct ReviewRow {
    pub(crate) id: String,
    pub(crate) owner: String,
    pub(crate) created_at: i64,
    pub(crate) resolved_at: Option<i64>,
    pub(crate) sealed: Vec<u8>,
}

impl ReviewRow {
    pub(crate) fn open(&self, sealer: &Sealer) -> CoreResult<ReviewItem> {
        sealer.open(
            &review_binding(&self.id, &self.owner, self.created_at, self.resolved_at),
            &self.sealed,
        )
    }

    /// Resolves this stored item: `FailedPrecondition` when it already is,
    /// otherwise the row gets `resolved_at` and a resealed body (in
    /// `self.sealed`); returns the resolved item.
    pub(crate) fn resolve(&mut self, sealer: &Sealer, resolution: ReviewResolution) -> CoreResult<ReviewItem> {
        let resolved_at = instant_to_sql("review.resolved_at", resolution.at)?;
        let mut item = self.open(sealer)?;
        if self.resolved_at.is_some() || item.resolution.is_some() {
            return Err(CoreError::FailedPrecondition("review item already resolved".into()));
        }
        item.resolution = Some(resolution);
        self.resolved_at = Some(resolved_at);
        self.sealed = sealer.seal(
            &review_binding(&self.id, &self.owner, self.created_at, self.resolved_at),
            &item,
        )?;
        Ok(item)
    }
}

pub(crate) fn alert_binding(encounter_id: &str, owner: &str, flag_id: &str, received_at: i64) -> RowBinding {
    RowBinding::new(ALERTS, encounter_id)
        .text(owner)
        .text(flag_id)
        .integer(received_at)
}

pub(crate) fn outbox_binding(encounter_id: &str, owner: &str, queued_at: i64) -> RowBinding {
    RowBinding::new(OUTBOX, encounter_id).text(owner).integer(queued_at)
}

/// An `alerts` row as read, before its body is opened.
pub(crate) struct AlertRow {
    pub(crate) cursor: i64,
    pub(crate) encounter_id: String,
    pub(crate) flag_id: String,
    pub(crate) owner: String,
    pub(crate) received_at: i64,
    pub(crate) sealed: Vec<u8>,
}

impl AlertRow {
    pub(crate) fn open(self, sealer: &Sealer) -> CoreResult<Alert> {
        let binding = alert_binding(&self.encounter_id, &self.owner, &self.flag_id, self.received_at);
        let encounter: Encounter = sealer.open(&binding, &self.sealed)?;
        Ok(Alert {
            cursor: cursor_from_sql(&self.encounter_id, self.cursor)?,
            received_at: instant_from_sql(ALERTS, &self.encounter_id, self.received_at)?,
            encounter,
        })
    }
}

/// An encounter checked and sealed for the `alerts` row it will be, all but
/// its cursor, which the database assigns.
pub(crate) struct AlertInput {
    pub(crate) encounter: Encounter,
    pub(crate) encounter_id: String,
    pub(crate) flag_id: String,
    pub(crate) received_at: i64,
    pub(crate) at: OffsetDateTime,
}

impl AlertInput {
    pub(crate) fn new(encounter: Encounter, at: OffsetDateTime) -> CoreResult<Self> {
        encounter.validate()?;
        let received_at = instant_to_sql("alert.received_at", at)?;
        Ok(Self {
            encounter_id: encounter.id.to_string(),
            flag_id: encounter.flag_id.to_string(),
            encounter,
            received_at,
            at,
        })
    }

    pub(crate) fn owner(&self) -> &str {
        self.encounter.owner.as_str()
    }

    pub(crate) fn seal(&self, sealer: &Sealer) -> CoreResult<Vec<u8>> {
        let binding = alert_binding(&self.encounter_id, self.owner(), &self.flag_id, self.received_at);
        sealer.seal(&binding, &self.encounter)
    }

    /// The stored alert, once the database gave it `cursor`.
    pub(crate) fn into_alert(self, cursor: i64) -> CoreResult<Alert> {
        Ok(Alert {
            cursor: cursor_from_sql(&self.encounter_id, cursor)?,
            encounter: self.encounter,
            received_at: self.at,
        })
    }
}

// ---- policy versions and proposals ----

/// A policy version number as a column value; numbers past `i64::MAX` are refused.
pub(crate) fn version_to_sql(field: &str, version: u64) -> CoreResult<i64> {
    i64::try_from(version).map_err(|_| CoreError::invalid(field, "is too large"))
}

fn version_from_sql(table: &str, row_id: &str, version: i64) -> CoreResult<u64> {
    u64::try_from(version).map_err(|_| corrupt(table, row_id, "negative version"))
}

/// The error of an append or approval whose base is no longer the latest
/// version (`latest`, none before the seed).
pub(crate) fn stale_policy_base(base: u64, latest: Option<i64>) -> CoreError {
    let latest = latest.unwrap_or(0);
    CoreError::Aborted(format!(
        "policy version {base} is not the latest (the latest is {latest}); read the policy again and re-propose"
    ))
}

pub(crate) fn policy_version_binding(agency: &str, version: i64, created_at: i64, content_hash: &str) -> RowBinding {
    RowBinding::new(POLICY_VERSIONS, format!("{agency}/{version}"))
        .text(agency)
        .integer(version)
        .integer(created_at)
        .text(content_hash)
}

/// A `policy_versions` row: plaintext columns and the sealed version.
pub(crate) struct PolicyVersionRow {
    pub(crate) agency: String,
    pub(crate) version: i64,
    pub(crate) created_at: i64,
    pub(crate) content_hash: String,
    pub(crate) sealed: Vec<u8>,
}

impl PolicyVersionRow {
    /// Checks `new` and seals it as the version after its base. Returns the
    /// row to insert, the version as it will read back, and the base as a
    /// column value.
    pub(crate) fn create(new: NewPolicyVersion, sealer: &Sealer) -> CoreResult<(Self, PolicyVersion, i64)> {
        new.validate()?;
        let base = version_to_sql("policy.base_version", new.base_version)?;
        let created_at = instant_to_sql("policy.created_at", new.created_at)?;
        let version = new.into_version();
        let number = version_to_sql("policy.version", version.version)?;
        let agency = version.agency.as_str().to_owned();
        let binding = policy_version_binding(&agency, number, created_at, &version.content_hash);
        let sealed = sealer.seal(&binding, &version)?;
        let row = Self {
            agency,
            version: number,
            created_at,
            content_hash: version.content_hash.clone(),
            sealed,
        };
        Ok((row, version, base))
    }

    /// Opens the body and checks it against the row: the same agency,
    /// number, instant and hash, and a hash that is its content's.
    pub(crate) fn open(&self, sealer: &Sealer) -> CoreResult<PolicyVersion> {
        let row_id = format!("{}/{}", self.agency, self.version);
        let binding = policy_version_binding(&self.agency, self.version, self.created_at, &self.content_hash);
        let version: PolicyVersion = sealer.open(&binding, &self.sealed)?;
        let number = version_from_sql(POLICY_VERSIONS, &row_id, self.version)?;
        let created_at = instant_from_sql(POLICY_VERSIONS, &row_id, self.created_at)?;
        if version.agency.as_str() != self.agency
            || version.version != number
            || version.created_at != created_at
            || version.content_hash != self.content_hash
        {
            return Err(corrupt(POLICY_VERSIONS, &row_id, "body does not match its row"));
        }
        if version.content.content_hash() != self.content_hash {
            return Err(corrupt(POLICY_VERSIONS, &row_id, "content does not match its hash"));
        }
        Ok(version)
    }
}

pub(crate) fn policy_proposal_binding(
    id: &str,
    agency: &str,
    base_version: i64,
    proposed_at: i64,
    closed_at: Option<i64>,
) -> RowBinding {
    RowBinding::new(POLICY_PROPOSALS, id)
        .text(agency)
        .integer(base_version)
        .integer(proposed_at)
        .optional_integer(closed_at)
}

/// A `policy_proposals` row: plaintext columns and the sealed proposal.
pub(crate) struct ProposalRow {
    pub(crate) id: String,
    pub(crate) agency: String,
    pub(crate) base_version: i64,
    pub(crate) proposed_at: i64,
    pub(crate) closed_at: Option<i64>,
    pub(crate) sealed: Vec<u8>,
}

impl ProposalRow {
    /// Checks a new proposal and seals it.
    pub(crate) fn create(proposal: &PolicyProposal, sealer: &Sealer) -> CoreResult<Self> {
        proposal.validate_new()?;
        let id = proposal.id.to_string();
        let agency = proposal.agency.as_str().to_owned();
        let base_version = version_to_sql("proposal.base_version", proposal.base_version)?;
        let proposed_at = instant_to_sql("proposal.proposed_at", proposal.proposed_at)?;
        let binding = policy_proposal_binding(&id, &agency, base_version, proposed_at, None);
        let sealed = sealer.seal(&binding, proposal)?;
        Ok(Self {
            id,
            agency,
            base_version,
            proposed_at,
            closed_at: None,
            sealed,
        })
    }

    pub(crate) fn open(&self, sealer: &Sealer) -> CoreResult<PolicyProposal> {
        let binding = policy_proposal_binding(
            &self.id,
            &self.agency,
            self.base_version,
            self.proposed_at,
            self.closed_at,
        );
        let proposal: PolicyProposal = sealer.open(&binding, &self.sealed)?;
        let closed_at = proposal
            .closing
            .as_ref()
            .map(|closing| instant_to_sql("proposal.closed_at", closing.at))
            .transpose()?;
        if proposal.id.to_string() != self.id
            || proposal.agency.as_str() != self.agency
            || closed_at != self.closed_at
            || proposal.content.content_hash() != proposal.content_hash
        {
            return Err(corrupt(POLICY_PROPOSALS, &self.id, "body does not match its row"));
        }
        Ok(proposal)
    }

    /// Closes this stored proposal: `FailedPrecondition` when it already is;
    /// otherwise the row gets `closed_at` and a resealed body, and the
    /// closed proposal is returned.
    pub(crate) fn close(&mut self, sealer: &Sealer, closing: ProposalClosing) -> CoreResult<PolicyProposal> {
        flagnet_core::policy_version::check_closing(&closing)?;
        let closed_at = instant_to_sql("proposal.closed_at", closing.at)?;
        let mut proposal = self.open(sealer)?;
        if self.closed_at.is_some() || proposal.closing.is_some() {
            return Err(CoreError::FailedPrecondition("the proposal is already closed".into()));
        }
        proposal.closing = Some(closing);
        self.closed_at = Some(closed_at);
        self.sealed = sealer.seal(
            &policy_proposal_binding(
                &self.id,
                &self.agency,
                self.base_version,
                self.proposed_at,
                self.closed_at,
            ),
            &proposal,
        )?;
        Ok(proposal)
    }
}

/// Checks that a rejection is one, before any proposal is read.
pub(crate) fn check_rejection(closing: &ProposalClosing) -> CoreResult<()> {
    flagnet_core::policy_version::check_closing(closing)?;
    match closing.outcome {
        ProposalOutcome::Rejected { .. } => Ok(()),
        ProposalOutcome::Approved { .. } => Err(CoreError::invalid(
            "proposal.outcome",
            "a proposal is approved only together with its version",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DataKey;

    #[test]
    fn every_status_round_trips_through_its_column_text() {
        for status in [
            FlagStatus::Active,
            FlagStatus::Unverified,
            FlagStatus::Lapsed,
            FlagStatus::Revoked,
            FlagStatus::Archived,
        ] {
            assert_eq!(status_from_sql(FLAGS, "x", status.as_str()).unwrap(), status);
        }
        assert!(status_from_sql(FLAGS, "x", "Active").is_err());
    }

    #[test]
    fn instants_and_dates_round_trip() {
        let at = time::macros::datetime!(2026-03-05 12:34:56.123456789 UTC);
        let nanos = instant_to_sql("at", at).unwrap();
        assert_eq!(instant_from_sql(FLAGS, "x", nanos).unwrap(), at);
        let date = time::macros::date!(2026 - 06 - 30);
        assert_eq!(date_to_sql(date).unwrap(), "2026-06-30");
        assert_eq!(date_from_sql("x", "2026-06-30").unwrap(), date);
        let too_late = time::macros::datetime!(2300-01-01 0:00 UTC);
        assert!(matches!(
            instant_to_sql("at", too_late),
            Err(CoreError::InvalidArgument { .. })
        ));
    }

    #[test]
    fn uuid_text_sorts_like_uuids() {
        let mut ids: Vec<Uuid> = (0..64).map(|_| Uuid::new_v4()).collect();
        let mut texts: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        ids.sort();
        texts.sort();
        assert_eq!(ids.iter().map(Uuid::to_string).collect::<Vec<_>>(), texts);
    }

    #[test]
    fn limits_and_cursors_are_clamped() {
        assert_eq!(list_limit(0), 1);
        assert_eq!(list_limit(usize::MAX), MAX_LIST_LIMIT as i64);
        assert_eq!(cursor_to_sql(u64::MAX), i64::MAX);
        assert!(cursor_from_sql("x", -1).is_err());
    }

    #[test]
    fn the_data_key_check_opens_only_under_its_key() {
        let sealer = Sealer::new(&DataKey::from_bytes([7; 32]));
        let sealed = sealer.seal_bytes(&data_key_check_binding(), DATA_KEY_CHECK).unwrap();
        assert!(data_key_check_opens(&sealer, &sealed));
        let other = Sealer::new(&DataKey::from_bytes([8; 32]));
        assert!(!data_key_check_opens(&other, &sealed));
        let wrong_text = sealer.seal_bytes(&data_key_check_binding(), b"something else").unwrap();
        assert!(!data_key_check_opens(&sealer, &wrong_text));
    }
}
