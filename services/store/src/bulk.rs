//! Loading many new flags, and their consents, at once: thousands of rows per
//! transaction instead of one transaction (and one fsync) per flag, for
//! seeding a benchmark or migrating an agency's existing index.
//!
//! Every row is validated, encoded and sealed exactly as `put_flag` and
//! `record_consent` would do it (the same [`FlagRow`], [`ConsentRow`] and
//! history bindings), so a bulk-loaded flag reads back like any other and its
//! revision 1 has a history entry. Sealing runs on a blocking thread before
//! the write lock is taken; the lock is held only for the inserts.
//!
//! This module must never write a row that `put_flag` or `record_consent`
//! would refuse, never store a consent for a flag outside the batch or of
//! another owner, and never leave part of a batch behind when one row fails.

use crate::seal::Sealer;
use crate::sqlite::{
    CONSENT_COLUMNS, ConsentBody, ConsentRow, FlagBody, FlagRow, HistoryBody, SqliteStore, check_required_text,
    date_to_sql, distinct_in_order, history_binding, instant_to_sql, sql_error, validate_new_flag,
};
use flagnet_core::{CoreError, CoreResult, NewConsent, NewFlag, SubjectToken};
use rusqlite::params;
use std::collections::HashMap;
use std::sync::Arc;
use time::OffsetDateTime;
use uuid::Uuid;

/// The most flags one [`SqliteStore::bulk_put_flags`] call takes; a larger
/// load is split by the caller, one transaction per call.
pub const MAX_BULK_FLAGS: usize = 50_000;

/// What one bulk call wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BulkLoaded {
    pub flags: usize,
    pub consents: usize,
}

/// A flag row, its tokens and its first history entry, sealed and ready to insert.
struct PreparedFlag {
    row: FlagRow,
    tokens: Vec<SubjectToken>,
    history_sealed: Vec<u8>,
}

/// Validates and seals the whole batch; nothing is written yet.
fn prepare(
    sealer: &Sealer,
    flags: Vec<NewFlag>,
    consents: Vec<NewConsent>,
    at: OffsetDateTime,
) -> CoreResult<(Vec<PreparedFlag>, Vec<ConsentRow>)> {
    let at_nanos = instant_to_sql("flag.updated_at", at)?;
    let recorded_at = instant_to_sql("consent.recorded_at", at)?;
    let mut owners: HashMap<Uuid, String> = HashMap::with_capacity(flags.len());
    let mut prepared_flags = Vec::with_capacity(flags.len());
    for flag in flags {
        validate_new_flag(&flag)?;
        let id = flag.id.unwrap_or_else(Uuid::new_v4);
        let owner = flag.owner.as_str().to_owned();
        if owners.insert(id, owner.clone()).is_some() {
            return Err(CoreError::invalid(
                "flags",
                format!("flag {id} appears twice in one batch"),
            ));
        }
        let tokens = distinct_in_order(&flag.subject_tokens);
        let row = FlagRow {
            id: id.to_string(),
            owner,
            status: flag.status.as_str().to_owned(),
            review_date: flag.review_date.map(date_to_sql).transpose()?,
            revision: 1,
            created_at: at_nanos,
            updated_at: at_nanos,
            sealed: Vec::new(),
        };
        let history = HistoryBody {
            changed_by: flag.author.clone(),
            reason: flag.reason,
        };
        let body = FlagBody {
            content: flag.content,
            basis: flag.basis,
            updated_by: flag.author,
        };
        let sealed = sealer.seal(&row.binding(&tokens), &body)?;
        let history_sealed = sealer.seal(
            &history_binding(&row.id, &row.owner, row.revision, at_nanos, &row.status),
            &history,
        )?;
        prepared_flags.push(PreparedFlag {
            row: FlagRow { sealed, ..row },
            tokens,
            history_sealed,
        });
    }
    let mut prepared_consents = Vec::with_capacity(consents.len());
    for consent in consents {
        consent.validate()?;
        check_required_text("consent.recorded_by", &consent.recorded_by)?;
        // a consent only for a flag of this batch, of the same owner: the
        // foreign key alone would accept another agency's flag
        match owners.get(&consent.flag_id) {
            Some(owner) if owner == consent.owner.as_str() => {}
            _ => return Err(CoreError::NotFound("flag".into())),
        }
        let row = ConsentRow {
            id: Uuid::new_v4().to_string(),
            flag_id: consent.flag_id.to_string(),
            owner: consent.owner.as_str().to_owned(),
            valid_from: instant_to_sql("consent.valid_from", consent.valid_from)?,
            valid_until: consent
                .valid_until
                .map(|until| instant_to_sql("consent.valid_until", until))
                .transpose()?,
            recorded_at,
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
        let sealed = sealer.seal(&row.binding(), &body)?;
        prepared_consents.push(ConsentRow { sealed, ..row });
    }
    Ok((prepared_flags, prepared_consents))
}

impl SqliteStore {
    /// Creates `flags` (each new: its `id`, if given, is the id it is created
    /// with) and records `consents` for flags of the same batch, all in one
    /// transaction: either every row is written or none is. Validation and
    /// encoding are those of `put_flag` and `record_consent`.
    pub async fn bulk_put_flags(
        &self,
        flags: Vec<NewFlag>,
        consents: Vec<NewConsent>,
        at: OffsetDateTime,
    ) -> CoreResult<BulkLoaded> {
        const OPERATION: &str = "bulk_put_flags";
        if flags.len() > MAX_BULK_FLAGS {
            return Err(CoreError::invalid(
                "flags",
                format!("at most {MAX_BULK_FLAGS} flags per call, got {}", flags.len()),
            ));
        }
        if flags.is_empty() {
            return Ok(BulkLoaded::default());
        }
        let sealer = Arc::clone(&self.sealer);
        let (prepared_flags, prepared_consents) =
            tokio::task::spawn_blocking(move || prepare(&sealer, flags, consents, at))
                .await
                .map_err(|error| CoreError::Internal(format!("bulk sealing did not complete: {error}")))??;
        let loaded = BulkLoaded {
            flags: prepared_flags.len(),
            consents: prepared_consents.len(),
        };
        self.pool
            .write(OPERATION, move |transaction| {
                let sql = sql_error(OPERATION);
                let mut insert_flag = transaction
                    .prepare_cached(
                        "INSERT INTO flags (id, owner, status, review_date, revision, created_at, updated_at, sealed) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    )
                    .map_err(&sql)?;
                let mut insert_token = transaction
                    .prepare_cached("INSERT INTO flag_tokens (flag_id, position, kind, token) VALUES (?1, ?2, ?3, ?4)")
                    .map_err(&sql)?;
                let mut insert_history = transaction
                    .prepare_cached(
                        "INSERT INTO flag_history (flag_id, revision, changed_at, status, sealed) \
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )
                    .map_err(&sql)?;
                for PreparedFlag {
                    row,
                    tokens,
                    history_sealed,
                } in &prepared_flags
                {
                    insert_flag
                        .execute(params![
                            row.id,
                            row.owner,
                            row.status,
                            row.review_date,
                            row.revision,
                            row.created_at,
                            row.updated_at,
                            row.sealed
                        ])
                        .map_err(&sql)?;
                    for (position, token) in tokens.iter().enumerate() {
                        insert_token
                            .execute(params![
                                row.id,
                                position as i64,
                                token.kind.as_str(),
                                token.token.as_bytes().as_slice()
                            ])
                            .map_err(&sql)?;
                    }
                    insert_history
                        .execute(params![
                            row.id,
                            row.revision,
                            row.updated_at,
                            row.status,
                            history_sealed
                        ])
                        .map_err(&sql)?;
                }
                let mut insert_consent = transaction
                    .prepare_cached(&format!(
                        "INSERT INTO consents ({CONSENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                    ))
                    .map_err(&sql)?;
                for row in &prepared_consents {
                    insert_consent
                        .execute(params![
                            row.id,
                            row.flag_id,
                            row.owner,
                            row.valid_from,
                            row.valid_until,
                            row.recorded_at,
                            row.revoked_at,
                            row.sealed
                        ])
                        .map_err(&sql)?;
                }
                Ok(())
            })
            .await?;
        tracing::debug!(flags = loaded.flags, consents = loaded.consents, "flags bulk-loaded");
        Ok(loaded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DataKey;
    use flagnet_core::{
        AgencyId, ConsentBasis, ConsentElements, ConsentScope, FieldClass, FlagContent, FlagStatus, MatchingKey,
        Purpose, RoleName, Store, SubjectKeyKind,
    };
    use time::macros::datetime;

    const AT: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

    fn store(dir: &tempfile::TempDir) -> SqliteStore {
        let key = DataKey::from_hex(&DataKey::generate_hex()).unwrap();
        SqliteStore::open(&dir.path().join("flags.sqlite"), key, 2).unwrap()
    }

    fn flag(owner: &str, index: u32, key: &MatchingKey) -> NewFlag {
        NewFlag {
            id: Some(Uuid::new_v4()),
            owner: AgencyId::parse(owner).unwrap(),
            status: FlagStatus::Active,
            review_date: Some(datetime!(2026-09-01 0:00 UTC).date()),
            basis: None,
            content: FlagContent::default(),
            subject_tokens: vec![key.token(SubjectKeyKind::Phone, &format!("+1573555{index:04}"))],
            author: "spiffe://flagnet.test/agency/phelps-so/user/clerk1".into(),
            reason: "bulk load".into(),
        }
    }

    fn consent(flag: &NewFlag) -> NewConsent {
        NewConsent {
            flag_id: flag.id.unwrap(),
            owner: flag.owner.clone(),
            basis: ConsentBasis::Subject,
            elements: ConsentElements {
                subject_name: "Test Subject".into(),
                granted_by: String::new(),
                disclosing_party: "records unit".into(),
                information_description: "crisis flag".into(),
                purpose_description: "crisis response".into(),
                revocation_instructions: "in writing".into(),
                expiry_event: String::new(),
                signature_reference: "form-1".into(),
                signed_on: Some(AT.date()),
            },
            scope: ConsentScope {
                recipients: vec![flag.owner.clone()],
                roles: vec![RoleName::parse("dispatcher").unwrap()],
                purposes: vec![Purpose::EmergencyResponse],
                field_classes: FieldClass::ALL.to_vec(),
            },
            valid_from: AT,
            valid_until: Some(datetime!(2027-03-01 12:00 UTC)),
            recorded_by: "spiffe://flagnet.test/agency/phelps-so/user/clerk1".into(),
        }
    }

    #[tokio::test]
    async fn a_bulk_loaded_flag_reads_back_like_a_put_one_with_history_and_consents() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let key = MatchingKey::from_bytes(vec![7; 32]).unwrap();
        let flags: Vec<NewFlag> = (0..300).map(|index| flag("phelps-so", index, &key)).collect();
        let consents: Vec<NewConsent> = flags.iter().map(consent).collect();
        let probe = flags[42].clone();
        let loaded = store.bulk_put_flags(flags, consents, AT).await.unwrap();
        assert_eq!(
            loaded,
            BulkLoaded {
                flags: 300,
                consents: 300
            }
        );

        let found = store.find_flags(&probe.subject_tokens).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].flag.id, probe.id.unwrap());
        assert_eq!(found[0].flag.revision, 1);
        assert_eq!(found[0].flag.updated_by, probe.author);
        let history = store.flag_history(&probe.owner, probe.id.unwrap()).await.unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].reason, "bulk load");
        let consents = store.consents_for_flags(&[probe.id.unwrap()]).await.unwrap();
        assert_eq!(consents[&probe.id.unwrap()].len(), 1);
    }

    #[tokio::test]
    async fn one_bad_row_leaves_nothing_of_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let key = MatchingKey::from_bytes(vec![7; 32]).unwrap();
        let flags: Vec<NewFlag> = (0..10).map(|index| flag("phelps-so", index, &key)).collect();
        let owner = flags[0].owner.clone();

        // a consent naming another agency's owner is refused before anything is written
        let mut foreign = consent(&flags[3]);
        foreign.owner = AgencyId::parse("rolla-pd").unwrap();
        let refused = store.bulk_put_flags(flags.clone(), vec![foreign], AT).await;
        assert!(matches!(refused, Err(CoreError::NotFound(_))), "{refused:?}");
        assert!(store.list_flags(&owner, None, 100).await.unwrap().is_empty());

        // a flag id that already exists fails the insert and rolls the batch back
        store.bulk_put_flags(flags[..1].to_vec(), vec![], AT).await.unwrap();
        let failed = store.bulk_put_flags(flags.clone(), vec![], AT).await;
        assert!(failed.is_err());
        assert_eq!(store.list_flags(&owner, None, 100).await.unwrap().len(), 1);
    }
}
