//! The store conformance suite: what every `Store` backend must do, written
//! once against `&dyn Store` so that SQLite and PostgreSQL run the very
//! same cases. A backend instantiates it with
//! [`store_conformance_tests!`](crate::store_conformance_tests), which makes
//! one `#[tokio::test]` per case.
//!
//! Each case makes its own agencies (random ids) and its own matching key,
//! so cases stay independent even when a backend shares one database between
//! them. Instants are whole microseconds, the finest PostgreSQL keeps.
//!
//! This is test code compiled into the library so other crates can run it;
//! it panics on failure and must never be called outside a test.

use crate::{MAX_CONSENT_QUERY_FLAGS, MAX_FLAG_TOKENS, MAX_LIST_LIMIT, MAX_LOOKUP_TOKENS};
use flagnet_core::consent::Revocation;
use flagnet_core::flag::{
    ClinicalContent, ContactEntry, FlagChange, HoldEntry, MAX_TEXT_LEN, PostalAddress, PresenceContent,
    RecommendedResponse, ResponseContent, SafetyContent, SubjectRecord,
};
use flagnet_core::{
    AgencyId, BlindToken, Consent, ConsentBasis, ConsentElements, ConsentScope, CoreError, CoreResult, Encounter,
    FieldClass, Flag, FlagContent, FlagMatch, FlagStatus, MatchingKey, NewConsent, NewFlag, Purpose, RoleName, Store,
    SubjectKeyKind, SubjectToken, TimeBoundBasis,
};
use std::collections::BTreeSet;
use std::fmt;
use time::OffsetDateTime;
use time::macros::{date, datetime};
use uuid::Uuid;

/// Declares one `#[tokio::test]` per conformance case.
///
/// `$make` names an async function returning `(store, guard)`: `store`
/// implements `flagnet_core::Store` and `guard` is kept alive until the case
/// ends (a temporary directory, a PostgreSQL schema to drop). The calling
/// crate needs `tokio` with the `macros` and `rt-multi-thread` features.
///
/// For a backend that needs a server the test run may not have, write
/// `optional: $make` instead: `$make` then returns
/// `Result<(store, guard), String>`, and a case that gets `Err(why)` writes
/// `SKIPPED <case>: <why>` to the terminal (past the test harness's output
/// capture, so a plain `cargo test` shows it) and passes.
///
/// ```text
/// async fn sqlite_store() -> (flagnet_store::SqliteStore, tempfile::TempDir) { ... }
/// flagnet_store::store_conformance_tests!(sqlite_store);
///
/// async fn postgres_store() -> Result<(flagnet_store::PostgresStore, SchemaGuard), String> { ... }
/// flagnet_store::store_conformance_tests!(optional: postgres_store);
/// ```
#[macro_export]
macro_rules! store_conformance_tests {
    (@cases $mode:ident $make:path; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::store_conformance_tests!(@run $mode $make, $case);
            }
        )+
    };
    (@run required $make:path, $case:ident) => {
        let (store, _guard) = $make().await;
        $crate::conformance::$case(&store).await;
    };
    (@run optional $make:path, $case:ident) => {
        let (store, _guard) = match $make().await {
            Ok(made) => made,
            Err(why) => {
                $crate::conformance::report_skipped(stringify!($case), &why);
                return;
            }
        };
        $crate::conformance::$case(&store).await;
    };
    (@all $mode:ident $make:path) => {
        $crate::store_conformance_tests!(@cases $mode $make;
            create_and_get_round_trip,
            every_status_and_empty_optionals_round_trip,
            replace_bumps_revision_and_keeps_history,
            replace_of_an_unknown_flag_is_not_found,
            another_agency_cannot_see_or_change_a_flag,
            find_by_each_token_kind,
            find_returns_each_flag_once_with_every_matched_token,
            find_returns_every_flag_carrying_a_token,
            replacing_a_flag_replaces_its_tokens,
            consent_record_list_revoke,
            consents_for_flags_groups_by_flag,
            list_flags_pages_by_id,
            invalid_inputs_are_refused_and_change_nothing,
            alerts_are_idempotent_and_ordered_by_cursor,
            deliveries_are_queued_once_until_delivered,
            review_items_open_resolve_once_and_stay_per_owner,
            policy_versions_append_in_order_and_refuse_a_stale_base,
            policy_proposals_close_once_by_approval_or_rejection,
        );
    };
    (optional: $make:path) => {
        $crate::store_conformance_tests!(@all optional $make);
    };
    ($make:path) => {
        $crate::store_conformance_tests!(@all required $make);
    };
}

/// Says on the terminal that test `name` was skipped and why. Writes to the
/// process's stderr handle rather than through `eprintln!`, which the test
/// harness captures and shows only for failing tests.
pub fn report_skipped(name: &str, why: &str) {
    use std::io::Write;
    // one write, so the line is not split by the harness's own output
    let line = format!("SKIPPED {name}: {why}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// The first instant of every case; later ones are minutes after it.
pub const T0: OffsetDateTime = datetime!(2026-01-13 09:30:00.123456 UTC);

/// `minutes` after [`T0`].
pub fn t(minutes: i64) -> OffsetDateTime {
    T0 + time::Duration::minutes(minutes)
}

/// A person as a records clerk would enter them.
#[derive(Debug, Clone)]
pub struct Subject {
    pub given_name: String,
    pub family_name: String,
    pub birth_date: String,
    pub phone: String,
    pub address: String,
}

impl Subject {
    /// Jordan Avery, the subject whose plaintext the SQLite tests look for
    /// in the database file.
    pub fn jordan() -> Self {
        Self {
            given_name: "Jordan".into(),
            family_name: "Avery".into(),
            birth_date: "1990-04-02".into(),
            phone: "+15735550100".into(),
            address: "1203 pine st|rolla|mo|65401".into(),
        }
    }

    /// A distinct subject numbered `n`.
    pub fn numbered(n: usize) -> Self {
        Self {
            given_name: format!("Casey{n}"),
            family_name: "Morgan".into(),
            birth_date: "1985-11-20".into(),
            phone: format!("+1573555{:04}", 2000 + n),
            address: format!("{n} elm st|rolla|mo|65401"),
        }
    }
}

/// One case's world: two agencies with fresh ids and a fresh matching key.
#[derive(Debug)]
pub struct Scene {
    pub matching_key: MatchingKey,
    pub owner: AgencyId,
    pub neighbour: AgencyId,
}

impl Default for Scene {
    fn default() -> Self {
        Self::new()
    }
}

impl Scene {
    pub fn new() -> Self {
        let suffix = &Uuid::new_v4().simple().to_string()[..12];
        let matching_key =
            MatchingKey::from_bytes(hex::decode(MatchingKey::generate_hex()).expect("generated matching key is hex"))
                .expect("generated matching key is long enough");
        Self {
            matching_key,
            owner: AgencyId::parse(&format!("so-{suffix}")).expect("agency id"),
            neighbour: AgencyId::parse(&format!("pd-{suffix}")).expect("agency id"),
        }
    }

    /// The token of an already normalised value.
    pub fn token(&self, kind: SubjectKeyKind, normalized: &str) -> SubjectToken {
        self.matching_key.token(kind, normalized)
    }

    /// One token of each kind for `subject`.
    pub fn tokens(&self, subject: &Subject) -> Vec<SubjectToken> {
        let name_birth = format!(
            "{} {}|{}",
            subject.given_name.to_lowercase(),
            subject.family_name.to_lowercase(),
            subject.birth_date
        );
        vec![
            self.token(SubjectKeyKind::Phone, &subject.phone),
            self.token(SubjectKeyKind::Address, &subject.address),
            self.token(SubjectKeyKind::NameBirthDate, &name_birth),
            self.token(SubjectKeyKind::PhoneticNameBirthDate, &format!("phonetic:{name_birth}")),
        ]
    }

    fn author(&self, agency: &AgencyId, user: &str) -> String {
        format!("spiffe://flagnet.test/agency/{agency}/user/{user}")
    }

    /// A new flag of `owner` about `subject` with every content field filled.
    pub fn flag(&self, owner: &AgencyId, subject: &Subject) -> NewFlag {
        NewFlag {
            id: None,
            owner: owner.clone(),
            status: FlagStatus::Active,
            review_date: Some(date!(2026 - 07 - 31)),
            basis: Some(TimeBoundBasis {
                kind: "96-hour evaluation hold".into(),
                expires_at: Some(datetime!(2026-01-17 09:30:00 UTC)),
                extended_until: Some(datetime!(2026-01-19 09:30:00 UTC)),
            }),
            content: FlagContent {
                subject: SubjectRecord {
                    given_name: subject.given_name.clone(),
                    family_name: subject.family_name.clone(),
                    birth_date: subject.birth_date.clone(),
                    phones: vec![subject.phone.clone(), "+15735550177".into()],
                    addresses: vec![PostalAddress {
                        street: "1203 Pine St".into(),
                        unit: "Apt 4".into(),
                        city: "Rolla".into(),
                        region: "MO".into(),
                        postal_code: "65401".into(),
                    }],
                },
                presence: PresenceContent {
                    contact_name: "Records unit".into(),
                    contact_phone: "+15735550199".into(),
                },
                response: ResponseContent {
                    recommended: RecommendedResponse::CitOfficer,
                    approach_guidance: "speak slowly, no sirens;\nask about their dog Zoë".into(),
                },
                safety: SafetyContent {
                    notes: "no weapons known\tsensitive to loud noise".into(),
                },
                contacts: vec![ContactEntry {
                    name: "Sam Avery".into(),
                    relationship: "sibling".into(),
                    phone: "+15735550142".into(),
                }],
                clinical: ClinicalContent {
                    conditions: vec!["bipolar I disorder".into(), "ptsd".into()],
                    care_provider: "Pathways Behavioral Health".into(),
                    crisis_plan: "call the liaison first; calm room at Phelps Health".into(),
                    hold_history: vec![HoldEntry {
                        date: "2025-11-02".into(),
                        kind: "96-hour evaluation".into(),
                        facility: "Phelps Health".into(),
                    }],
                },
            },
            subject_tokens: self.tokens(subject),
            author: self.author(owner, "records1"),
            reason: "intake after a crisis line referral".into(),
        }
    }

    /// The same flag as a replacement of `id`.
    pub fn replacement(&self, id: Uuid, owner: &AgencyId, subject: &Subject) -> NewFlag {
        NewFlag {
            id: Some(id),
            ..self.flag(owner, subject)
        }
    }

    /// A complete consent (every element of 42 CFR 2.31) for `flag`.
    pub fn consent(&self, flag: &Flag, subject_name: &str) -> NewConsent {
        NewConsent {
            flag_id: flag.id,
            owner: flag.owner.clone(),
            basis: ConsentBasis::Subject,
            elements: ConsentElements {
                subject_name: subject_name.into(),
                granted_by: String::new(),
                disclosing_party: "Phelps County Sheriff's Office".into(),
                information_description: "crisis flag: presence, response and safety notes".into(),
                purpose_description: "to send the right responder in a crisis".into(),
                revocation_instructions: "in writing to the records unit".into(),
                expiry_event: String::new(),
                signature_reference: "form-2026-0113".into(),
                signed_on: Some(date!(2026 - 01 - 13)),
            },
            scope: ConsentScope {
                recipients: vec![
                    self.neighbour.clone(),
                    AgencyId::parse("south-central-mo").expect("region"),
                ],
                roles: vec![
                    RoleName::parse("dispatcher").expect("role"),
                    RoleName::parse("cit_officer").expect("role"),
                ],
                purposes: vec![Purpose::EmergencyResponse, Purpose::CrisisFollowup],
                field_classes: vec![FieldClass::Presence, FieldClass::Response, FieldClass::Safety],
            },
            valid_from: T0,
            valid_until: Some(datetime!(2027-01-13 00:00:00 UTC)),
            recorded_by: self.author(&flag.owner, "records1"),
        }
    }

    /// A guardian's consent with an expiry event and no end date.
    pub fn guardian_consent(&self, flag: &Flag, subject_name: &str) -> NewConsent {
        let mut consent = self.consent(flag, subject_name);
        consent.basis = ConsentBasis::Guardian;
        consent.elements.granted_by = "Robin Avery, legal guardian".into();
        consent.elements.expiry_event = "the end of the guardianship".into();
        consent.valid_until = None;
        consent
    }
}

fn expect_ok<T>(result: CoreResult<T>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{what}: unexpected error: {error}"),
    }
}

fn expect_not_found<T: fmt::Debug>(result: CoreResult<T>, what: &str) {
    match result {
        Err(CoreError::NotFound(_)) => {}
        other => panic!("{what}: expected not found, got {other:?}"),
    }
}

fn expect_invalid<T: fmt::Debug>(result: CoreResult<T>, field: &str, what: &str) {
    match result {
        Err(CoreError::InvalidArgument { field: got, .. }) if got.starts_with(field) => {}
        other => panic!("{what}: expected invalid argument on {field}, got {other:?}"),
    }
}

fn matched_ids(matches: &[FlagMatch]) -> BTreeSet<Uuid> {
    matches.iter().map(|found| found.flag.id).collect()
}

fn sorted(tokens: &[SubjectToken]) -> Vec<SubjectToken> {
    let mut tokens = tokens.to_vec();
    tokens.sort();
    tokens
}

async fn create(store: &dyn Store, flag: NewFlag, at: OffsetDateTime) -> Flag {
    expect_ok(store.put_flag(flag, at).await, "put_flag")
}

async fn get(store: &dyn Store, owner: &AgencyId, id: Uuid) -> Flag {
    expect_ok(store.get_flag(owner, id).await, "get_flag").expect("the flag exists")
}

async fn history(store: &dyn Store, owner: &AgencyId, id: Uuid) -> Vec<FlagChange> {
    expect_ok(store.flag_history(owner, id).await, "flag_history")
}

async fn find(store: &dyn Store, tokens: &[SubjectToken]) -> Vec<FlagMatch> {
    expect_ok(store.find_flags(tokens).await, "find_flags")
}

fn assert_recorded(consent: &Consent, new: &NewConsent, at: OffsetDateTime) {
    assert_eq!(consent.flag_id, new.flag_id);
    assert_eq!(consent.owner, new.owner);
    assert_eq!(consent.basis, new.basis);
    assert_eq!(consent.elements, new.elements);
    assert_eq!(consent.scope, new.scope);
    assert_eq!(consent.valid_from, new.valid_from);
    assert_eq!(consent.valid_until, new.valid_until);
    assert_eq!(consent.recorded_at, at);
    assert_eq!(consent.recorded_by, new.recorded_by);
}

/// A created flag comes back whole, from `put_flag` and from `get_flag`,
/// with revision 1 and one history entry.
pub async fn create_and_get_round_trip(store: &dyn Store) {
    let scene = Scene::new();
    let new = scene.flag(&scene.owner, &Subject::jordan());
    let created = create(store, new.clone(), T0).await;
    assert_eq!(created.owner, new.owner);
    assert_eq!(created.status, new.status);
    assert_eq!(created.review_date, new.review_date);
    assert_eq!(created.basis, new.basis);
    assert_eq!(created.content, new.content);
    assert_eq!(created.subject_tokens, new.subject_tokens);
    assert_eq!(created.created_at, T0);
    assert_eq!(created.updated_at, T0);
    assert_eq!(created.updated_by, new.author);
    assert_eq!(created.revision, 1);
    assert_eq!(created.id.get_version_num(), 4, "ids are random v4 uuids");

    let stored = get(store, &scene.owner, created.id).await;
    assert_eq!(stored, created);

    let changes = history(store, &scene.owner, created.id).await;
    assert_eq!(
        changes,
        vec![FlagChange {
            flag_id: created.id,
            revision: 1,
            changed_at: T0,
            changed_by: new.author,
            reason: new.reason,
            status: FlagStatus::Active,
        }]
    );
    let unknown = expect_ok(store.get_flag(&scene.owner, Uuid::new_v4()).await, "get_flag");
    assert!(unknown.is_none(), "an unknown id is none");
}

/// Every status, and a flag with no review date, no basis, empty content and
/// no tokens, survive the round trip.
pub async fn every_status_and_empty_optionals_round_trip(store: &dyn Store) {
    let scene = Scene::new();
    for (index, status) in [
        FlagStatus::Active,
        FlagStatus::Unverified,
        FlagStatus::Lapsed,
        FlagStatus::Revoked,
        FlagStatus::Archived,
    ]
    .into_iter()
    .enumerate()
    {
        let mut new = scene.flag(&scene.owner, &Subject::numbered(index));
        new.status = status;
        if index % 2 == 1 {
            new.review_date = None;
            new.basis = None;
            new.content = FlagContent::default();
            new.subject_tokens = Vec::new();
        }
        let created = create(store, new.clone(), t(index as i64)).await;
        let stored = get(store, &scene.owner, created.id).await;
        assert_eq!(stored, created);
        assert_eq!(stored.status, status);
        assert_eq!(stored.review_date, new.review_date);
        assert_eq!(stored.basis, new.basis);
        assert_eq!(stored.content, new.content);
        assert_eq!(stored.subject_tokens, new.subject_tokens);
    }
}

/// Each replacement bumps the revision, keeps `created_at`, and appends who,
/// when, why and the new status to the history.
pub async fn replace_bumps_revision_and_keeps_history(store: &dyn Store) {
    let scene = Scene::new();
    let subject = Subject::jordan();
    let first = scene.flag(&scene.owner, &subject);
    let created = create(store, first.clone(), T0).await;

    let mut second = scene.replacement(created.id, &scene.owner, &subject);
    second.status = FlagStatus::Unverified;
    second.content.safety.notes = "owns a dog that guards the door".into();
    second.author = scene.author(&scene.owner, "records2");
    second.reason = "review date passed without a review".into();
    let replaced = create(store, second.clone(), t(60)).await;
    assert_eq!(replaced.id, created.id);
    assert_eq!(replaced.revision, 2);
    assert_eq!(replaced.status, FlagStatus::Unverified);
    assert_eq!(replaced.content, second.content);
    assert_eq!(replaced.created_at, T0);
    assert_eq!(replaced.updated_at, t(60));
    assert_eq!(replaced.updated_by, second.author);
    assert_eq!(get(store, &scene.owner, created.id).await, replaced);

    let mut third = scene.replacement(created.id, &scene.owner, &subject);
    third.status = FlagStatus::Archived;
    third.author = scene.author(&scene.owner, "supervisor");
    third.reason = "subject moved out of the county".into();
    let archived = create(store, third.clone(), t(120)).await;
    assert_eq!(archived.revision, 3);

    let changes = history(store, &scene.owner, created.id).await;
    let summary: Vec<_> = changes
        .iter()
        .map(|change| {
            assert_eq!(change.flag_id, created.id);
            (
                change.revision,
                change.changed_at,
                change.changed_by.as_str(),
                change.reason.as_str(),
                change.status,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, T0, first.author.as_str(), first.reason.as_str(), FlagStatus::Active),
            (
                2,
                t(60),
                second.author.as_str(),
                second.reason.as_str(),
                FlagStatus::Unverified
            ),
            (
                3,
                t(120),
                third.author.as_str(),
                third.reason.as_str(),
                FlagStatus::Archived
            ),
        ]
    );
}

/// Replacing a flag that does not exist is `NotFound` and creates nothing.
pub async fn replace_of_an_unknown_flag_is_not_found(store: &dyn Store) {
    let scene = Scene::new();
    let unknown = Uuid::new_v4();
    let subject = Subject::jordan();
    expect_not_found(
        store
            .put_flag(scene.replacement(unknown, &scene.owner, &subject), T0)
            .await,
        "replace an unknown flag",
    );
    let listed = expect_ok(store.list_flags(&scene.owner, None, 10).await, "list_flags");
    assert!(listed.is_empty(), "nothing was created: {listed:?}");
    assert!(find(store, &scene.tokens(&subject)).await.is_empty());
    assert!(expect_ok(store.get_flag(&scene.owner, unknown).await, "get_flag").is_none());
}

/// Another agency cannot get, replace, list, read the history of, or add or
/// revoke consents on a flag it does not own, and its attempts change nothing.
pub async fn another_agency_cannot_see_or_change_a_flag(store: &dyn Store) {
    let scene = Scene::new();
    let subject = Subject::jordan();
    let created = create(store, scene.flag(&scene.owner, &subject), T0).await;
    let consent = expect_ok(
        store
            .record_consent(scene.consent(&created, "Jordan Avery"), t(1))
            .await,
        "record_consent",
    );
    let neighbour = &scene.neighbour;

    let seen = expect_ok(store.get_flag(neighbour, created.id).await, "get_flag");
    assert!(seen.is_none(), "another agency's flag is invisible");
    let mut takeover = scene.replacement(created.id, neighbour, &subject);
    takeover.content.safety.notes = "overwritten".into();
    expect_not_found(store.put_flag(takeover, t(2)).await, "replace another agency's flag");
    let listed = expect_ok(store.list_flags(neighbour, None, MAX_LIST_LIMIT).await, "list_flags");
    assert!(listed.is_empty(), "another agency lists none: {listed:?}");
    expect_not_found(
        store.flag_history(neighbour, created.id).await,
        "history of another agency's flag",
    );
    expect_not_found(
        store.list_consents(neighbour, created.id).await,
        "consents of another agency's flag",
    );
    let mut foreign_consent = scene.consent(&created, "Jordan Avery");
    foreign_consent.owner = neighbour.clone();
    expect_not_found(
        store.record_consent(foreign_consent, t(3)).await,
        "consent on another agency's flag",
    );
    expect_not_found(
        store
            .revoke_consent(
                neighbour,
                consent.id,
                "spiffe://flagnet.test/agency/x/user/y",
                "no",
                t(4),
            )
            .await,
        "revoke another agency's consent",
    );

    assert_eq!(
        get(store, &scene.owner, created.id).await,
        created,
        "the flag is unchanged"
    );
    assert_eq!(history(store, &scene.owner, created.id).await.len(), 1);
    let consents = expect_ok(store.list_consents(&scene.owner, created.id).await, "list_consents");
    assert_eq!(
        consents,
        vec![consent],
        "the consent is unchanged and still the only one"
    );
}

/// A lookup finds a flag by a token of each kind; the same token bytes under
/// another kind, or an unknown token, find nothing.
pub async fn find_by_each_token_kind(store: &dyn Store) {
    let scene = Scene::new();
    let created = create(store, scene.flag(&scene.owner, &Subject::jordan()), T0).await;
    assert_eq!(created.subject_tokens.len(), SubjectKeyKind::ALL.len());
    for token in &created.subject_tokens {
        let found = find(store, &[*token]).await;
        assert_eq!(found.len(), 1, "{:?} finds the flag once", token.kind);
        assert_eq!(found[0].flag, created);
        assert_eq!(found[0].matched, vec![*token]);
        for other_kind in SubjectKeyKind::ALL.into_iter().filter(|kind| *kind != token.kind) {
            let mismatched = SubjectToken {
                kind: other_kind,
                token: token.token,
            };
            assert!(
                find(store, &[mismatched]).await.is_empty(),
                "{:?} bytes under {:?} must not match",
                token.kind,
                other_kind
            );
        }
    }
    let unknown = scene.token(SubjectKeyKind::Phone, "+15735550999");
    assert!(find(store, &[unknown]).await.is_empty());
    let zero = SubjectToken {
        kind: SubjectKeyKind::Phone,
        token: BlindToken([0; 32]),
    };
    assert!(find(store, &[zero]).await.is_empty());
    assert!(find(store, &[]).await.is_empty(), "no tokens, no matches");
}

/// Several matching tokens (and repeated ones) still give the flag once,
/// with each matched token once.
pub async fn find_returns_each_flag_once_with_every_matched_token(store: &dyn Store) {
    let scene = Scene::new();
    let subject = Subject::jordan();
    let created = create(store, scene.flag(&scene.owner, &subject), T0).await;
    let phone = scene.token(SubjectKeyKind::Phone, &subject.phone);
    let address = scene.token(SubjectKeyKind::Address, &subject.address);
    let unrelated = scene.token(SubjectKeyKind::Phone, "+15735550999");

    let found = find(store, &[phone, unrelated, address, phone]).await;
    assert_eq!(found.len(), 1, "one flag, once: {found:?}");
    assert_eq!(found[0].flag, created);
    assert_eq!(sorted(&found[0].matched), sorted(&[phone, address]));

    let every_token = find(store, &created.subject_tokens).await;
    assert_eq!(every_token.len(), 1);
    assert_eq!(sorted(&every_token[0].matched), sorted(&created.subject_tokens));
}

/// A token shared by several flags, of one agency or several, finds them all.
pub async fn find_returns_every_flag_carrying_a_token(store: &dyn Store) {
    let scene = Scene::new();
    let shelter = scene.token(SubjectKeyKind::Address, "100 shelter way|rolla|mo|65401");
    let mut expected = BTreeSet::new();
    for (index, owner) in [&scene.owner, &scene.owner, &scene.neighbour].into_iter().enumerate() {
        let mut new = scene.flag(owner, &Subject::numbered(index));
        new.subject_tokens.push(shelter);
        expected.insert(create(store, new, t(index as i64)).await.id);
    }
    let elsewhere = create(store, scene.flag(&scene.owner, &Subject::numbered(9)), t(9)).await;

    let found = find(store, &[shelter]).await;
    assert_eq!(found.len(), 3, "each flag once: {found:?}");
    assert_eq!(matched_ids(&found), expected);
    assert!(!matched_ids(&found).contains(&elsewhere.id));
    for found in &found {
        assert_eq!(found.matched, vec![shelter]);
        assert!(found.flag.subject_tokens.contains(&shelter));
        assert_eq!(found.flag.subject_tokens.len(), SubjectKeyKind::ALL.len() + 1);
    }
}

/// A replacement replaces the tokens: the old ones stop matching, the new
/// ones match the current revision.
pub async fn replacing_a_flag_replaces_its_tokens(store: &dyn Store) {
    let scene = Scene::new();
    let before = Subject::jordan();
    let created = create(store, scene.flag(&scene.owner, &before), T0).await;
    let old_phone = scene.token(SubjectKeyKind::Phone, &before.phone);
    let address = scene.token(SubjectKeyKind::Address, &before.address);

    let after = Subject {
        phone: "+15735550123".into(),
        ..before.clone()
    };
    let new_phone = scene.token(SubjectKeyKind::Phone, &after.phone);
    let mut replacement = scene.replacement(created.id, &scene.owner, &after);
    replacement.content.subject.phones = vec![after.phone.clone()];
    let replaced = create(store, replacement.clone(), t(5)).await;
    assert_eq!(replaced.subject_tokens, replacement.subject_tokens);

    assert!(
        find(store, &[old_phone]).await.is_empty(),
        "the old phone no longer matches"
    );
    let by_new_phone = find(store, &[new_phone]).await;
    assert_eq!(by_new_phone.len(), 1);
    assert_eq!(by_new_phone[0].flag, replaced);
    assert_eq!(by_new_phone[0].flag.revision, 2);
    let by_address = find(store, &[address]).await;
    assert_eq!(by_address.len(), 1, "a kept token still matches once");
    assert_eq!(by_address[0].flag, replaced);
    assert_eq!(
        get(store, &scene.owner, created.id).await.subject_tokens,
        replacement.subject_tokens
    );

    let mut without_tokens = scene.replacement(created.id, &scene.owner, &after);
    without_tokens.subject_tokens.clear();
    create(store, without_tokens, t(6)).await;
    assert!(
        find(store, &[address, new_phone]).await.is_empty(),
        "no tokens, no matches"
    );
}

/// Consents are recorded whole, listed oldest first, revoked once with who,
/// when and why; a second revocation is `FailedPrecondition`.
pub async fn consent_record_list_revoke(store: &dyn Store) {
    let scene = Scene::new();
    let flag = create(store, scene.flag(&scene.owner, &Subject::jordan()), T0).await;
    let none_yet = expect_ok(store.list_consents(&scene.owner, flag.id).await, "list_consents");
    assert!(none_yet.is_empty(), "a flag without consents lists none: {none_yet:?}");
    let first_new = scene.consent(&flag, "Jordan Avery");
    let first = expect_ok(store.record_consent(first_new.clone(), t(1)).await, "record_consent");
    assert_recorded(&first, &first_new, t(1));
    assert_eq!(first.revocation, None);
    assert_eq!(first.id.get_version_num(), 4);
    let second_new = scene.guardian_consent(&flag, "Jordan Avery");
    let second = expect_ok(store.record_consent(second_new.clone(), t(2)).await, "record_consent");
    assert_recorded(&second, &second_new, t(2));
    assert_ne!(first.id, second.id);

    let listed = expect_ok(store.list_consents(&scene.owner, flag.id).await, "list_consents");
    assert_eq!(listed, vec![first.clone(), second.clone()]);

    let revoker = scene.author(&scene.owner, "records2");
    let revoked = expect_ok(
        store
            .revoke_consent(
                &scene.owner,
                first.id,
                &revoker,
                "subject withdrew consent by phone",
                t(3),
            )
            .await,
        "revoke_consent",
    );
    assert_eq!(
        revoked.revocation,
        Some(Revocation {
            at: t(3),
            by: revoker.clone(),
            reason: "subject withdrew consent by phone".into(),
        })
    );
    assert_eq!(
        Consent {
            revocation: None,
            ..revoked.clone()
        },
        first,
        "revoking changes nothing but the revocation"
    );
    assert!(!revoked.is_active_at(t(3)));

    let again = store
        .revoke_consent(&scene.owner, first.id, &revoker, "again", t(4))
        .await;
    match again {
        Err(CoreError::FailedPrecondition(message)) => {
            assert!(message.contains("already revoked"), "{message}");
        }
        other => panic!("revoking twice: expected failed precondition, got {other:?}"),
    }
    let listed = expect_ok(store.list_consents(&scene.owner, flag.id).await, "list_consents");
    assert_eq!(listed, vec![revoked, second], "the first revocation stands");

    expect_not_found(
        store
            .revoke_consent(&scene.owner, Uuid::new_v4(), &revoker, "x", t(5))
            .await,
        "revoke an unknown consent",
    );
    let mut orphan = scene.consent(&flag, "Jordan Avery");
    orphan.flag_id = Uuid::new_v4();
    expect_not_found(store.record_consent(orphan, t(6)).await, "consent on an unknown flag");
    expect_not_found(
        store.list_consents(&scene.owner, Uuid::new_v4()).await,
        "consents of an unknown flag",
    );
}

/// `consents_for_flags` answers every asked flag (an empty list when it has
/// no consent), of any agency, in one call, oldest first per flag.
pub async fn consents_for_flags_groups_by_flag(store: &dyn Store) {
    let scene = Scene::new();
    let with_two = create(store, scene.flag(&scene.owner, &Subject::numbered(1)), T0).await;
    let with_revoked = create(store, scene.flag(&scene.owner, &Subject::numbered(2)), T0).await;
    let with_none = create(store, scene.flag(&scene.owner, &Subject::numbered(3)), T0).await;
    let neighbours = create(store, scene.flag(&scene.neighbour, &Subject::numbered(4)), T0).await;

    let record = |flag: &Flag, at| store.record_consent(scene.consent(flag, "Casey Morgan"), at);
    let first = expect_ok(record(&with_two, t(1)).await, "record_consent");
    let second = expect_ok(record(&with_two, t(2)).await, "record_consent");
    let to_revoke = expect_ok(record(&with_revoked, t(3)).await, "record_consent");
    let neighbours_consent = expect_ok(record(&neighbours, t(4)).await, "record_consent");
    let revoked = expect_ok(
        store
            .revoke_consent(
                &scene.owner,
                to_revoke.id,
                &scene.author(&scene.owner, "r"),
                "asked",
                t(5),
            )
            .await,
        "revoke_consent",
    );

    let unknown = Uuid::new_v4();
    let asked = [
        with_two.id,
        with_revoked.id,
        with_none.id,
        neighbours.id,
        with_two.id,
        unknown,
    ];
    let by_flag = expect_ok(store.consents_for_flags(&asked).await, "consents_for_flags");
    assert_eq!(
        by_flag.keys().copied().collect::<BTreeSet<_>>(),
        asked.iter().copied().collect::<BTreeSet<_>>(),
        "every asked flag has an entry"
    );
    assert_eq!(by_flag[&with_two.id], vec![first, second]);
    assert_eq!(by_flag[&with_revoked.id], vec![revoked]);
    assert_eq!(by_flag[&with_none.id], Vec::<Consent>::new());
    assert_eq!(by_flag[&neighbours.id], vec![neighbours_consent]);
    assert_eq!(by_flag[&unknown], Vec::<Consent>::new());

    let none = expect_ok(store.consents_for_flags(&[]).await, "consents_for_flags");
    assert!(none.is_empty());
}

/// `list_flags` pages an agency's flags by id: no flag twice, none missed,
/// none of another agency; limits are clamped to `1..=MAX_LIST_LIMIT`.
pub async fn list_flags_pages_by_id(store: &dyn Store) {
    let scene = Scene::new();
    let mut own = Vec::new();
    for index in 0..7 {
        own.push(
            create(
                store,
                scene.flag(&scene.owner, &Subject::numbered(index)),
                t(index as i64),
            )
            .await,
        );
    }
    for index in 7..9 {
        create(
            store,
            scene.flag(&scene.neighbour, &Subject::numbered(index)),
            t(index as i64),
        )
        .await;
    }
    own.sort_by_key(|flag| flag.id);

    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = expect_ok(store.list_flags(&scene.owner, after, 3).await, "list_flags");
        let Some(last) = page.last() else {
            break;
        };
        after = Some(last.id);
        pages.push(page);
        assert!(pages.len() <= 3, "paging must end");
    }
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), vec![3, 3, 1]);
    let listed: Vec<Flag> = pages.into_iter().flatten().collect();
    assert_eq!(listed, own, "every own flag once, in id order, whole");

    let one = expect_ok(store.list_flags(&scene.owner, None, 0).await, "list_flags");
    assert_eq!(one.len(), 1, "a limit of 0 is taken as 1");
    assert_eq!(one[0].id, own[0].id);
    let all = expect_ok(store.list_flags(&scene.owner, None, usize::MAX).await, "list_flags");
    assert_eq!(all.len(), 7, "a huge limit is clamped, not refused");
    let past_the_middle = expect_ok(store.list_flags(&scene.owner, Some(own[3].id), 10).await, "list_flags");
    assert_eq!(past_the_middle, own[4..].to_vec(), "`after` is exclusive");
    let unknown_agency = AgencyId::parse("nobody-here").expect("agency id");
    assert!(expect_ok(store.list_flags(&unknown_agency, None, 10).await, "list_flags").is_empty());
}

/// Over-long lookups and lists, over-long content, missing author or reason,
/// incomplete consents and anonymous revocations are `InvalidArgument`, and
/// none of them changes anything.
pub async fn invalid_inputs_are_refused_and_change_nothing(store: &dyn Store) {
    let scene = Scene::new();
    let subject = Subject::jordan();
    let created = create(store, scene.flag(&scene.owner, &subject), T0).await;
    let consent = expect_ok(
        store
            .record_consent(scene.consent(&created, "Jordan Avery"), t(1))
            .await,
        "record_consent",
    );
    let phone = scene.token(SubjectKeyKind::Phone, &subject.phone);

    let mut too_many_tokens: Vec<SubjectToken> = (0..MAX_LOOKUP_TOKENS)
        .map(|index| scene.token(SubjectKeyKind::Phone, &format!("+1573556{index:04}")))
        .collect();
    too_many_tokens.push(phone);
    expect_invalid(
        store.find_flags(&too_many_tokens).await,
        "tokens",
        "too many lookup tokens",
    );
    let at_the_limit = &too_many_tokens[1..];
    assert_eq!(at_the_limit.len(), MAX_LOOKUP_TOKENS);
    assert_eq!(find(store, at_the_limit).await.len(), 1, "exactly the limit is allowed");

    let mut overloaded = scene.replacement(created.id, &scene.owner, &subject);
    overloaded.subject_tokens = (0..=MAX_FLAG_TOKENS)
        .map(|index| scene.token(SubjectKeyKind::Address, &format!("{index} oak st")))
        .collect();
    expect_invalid(
        store.put_flag(overloaded, t(2)).await,
        "flag.subject_tokens",
        "too many flag tokens",
    );

    let mut too_long = scene.replacement(created.id, &scene.owner, &subject);
    too_long.content.safety.notes = "x".repeat(MAX_TEXT_LEN + 1);
    expect_invalid(
        store.put_flag(too_long, t(3)).await,
        "flag.safety.notes",
        "over-long content",
    );

    let mut anonymous = scene.flag(&scene.owner, &Subject::numbered(1));
    anonymous.author = String::new();
    expect_invalid(store.put_flag(anonymous, t(4)).await, "flag.author", "no author");

    let mut unexplained = scene.replacement(created.id, &scene.owner, &subject);
    unexplained.reason = "  ".into();
    expect_invalid(store.put_flag(unexplained, t(5)).await, "flag.reason", "no reason");

    let too_many_flags: Vec<Uuid> = (0..=MAX_CONSENT_QUERY_FLAGS).map(|_| Uuid::new_v4()).collect();
    expect_invalid(
        store.consents_for_flags(&too_many_flags).await,
        "flag_ids",
        "too many flags for consents",
    );

    let mut unsigned = scene.consent(&created, "Jordan Avery");
    unsigned.elements.signature_reference.clear();
    expect_invalid(
        store.record_consent(unsigned, t(6)).await,
        "consent.signature_reference",
        "unsigned consent",
    );

    expect_invalid(
        store.revoke_consent(&scene.owner, consent.id, "", "why", t(7)).await,
        "revocation.by",
        "anonymous revocation",
    );

    assert_eq!(
        get(store, &scene.owner, created.id).await,
        created,
        "the flag is unchanged"
    );
    assert_eq!(
        history(store, &scene.owner, created.id).await.len(),
        1,
        "no history was added"
    );
    let listed = expect_ok(store.list_flags(&scene.owner, None, 10).await, "list_flags");
    assert_eq!(listed, vec![created.clone()], "no flag was created");
    let consents = expect_ok(store.list_consents(&scene.owner, created.id).await, "list_consents");
    assert_eq!(consents, vec![consent], "no consent was added or revoked");
    let found = find(store, &[phone]).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].flag, created);
}

fn encounter_about(flag: &Flag, reporter: &str) -> Encounter {
    Encounter {
        id: Uuid::new_v4(),
        flag_id: flag.id,
        owner: flag.owner.clone(),
        occurred_at: T0,
        location: "Rolla, 10th St & Pine".into(),
        disposition: "transported for 96-hour evaluation".into(),
        narrative: "calm once the CIT officer spoke".into(),
        reporter_agency: AgencyId::parse(reporter).expect("agency"),
        reporter_user: flagnet_core::UserId::parse("officer1").expect("user"),
        incident_id: "CAD-7".into(),
    }
}

/// An encounter is stored once whatever the retries, gets the next cursor,
/// and alerts come back in cursor order, per owner, from any cursor.
pub async fn alerts_are_idempotent_and_ordered_by_cursor(store: &dyn Store) {
    let scene = Scene::new();
    let flag = create(store, scene.flag(&scene.owner, &Subject::jordan()), T0).await;
    let first = encounter_about(&flag, "pulaski-so");
    let second = encounter_about(&flag, "rolla-pd");
    let (stored_first, new_first) = expect_ok(store.store_alert(first.clone(), t(1)).await, "store_alert");
    assert!(new_first);
    let (again, new_again) = expect_ok(store.store_alert(first.clone(), t(2)).await, "store_alert again");
    assert!(!new_again, "the same encounter id is one encounter");
    assert_eq!(again, stored_first);
    let (stored_second, _) = expect_ok(store.store_alert(second.clone(), t(3)).await, "store_alert");
    assert!(stored_second.cursor > stored_first.cursor);

    let all = expect_ok(store.alerts_after(&scene.owner, 0, 100).await, "alerts_after");
    let ids: Vec<Uuid> = all.iter().map(|alert| alert.encounter.id).collect();
    assert_eq!(ids, vec![first.id, second.id]);
    assert_eq!(all[0].encounter, first);
    assert_eq!(all[0].received_at, t(1));
    let rest = expect_ok(
        store.alerts_after(&scene.owner, stored_first.cursor, 100).await,
        "alerts_after",
    );
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].encounter.id, second.id);
    assert!(
        expect_ok(
            store.alerts_after(&scene.owner, stored_second.cursor, 100).await,
            "alerts_after"
        )
        .is_empty()
    );
    assert!(
        expect_ok(store.alerts_after(&scene.neighbour, 0, 100).await, "alerts_after").is_empty(),
        "per owner"
    );

    let mut foreign = encounter_about(&flag, "pulaski-so");
    foreign.owner = scene.neighbour.clone();
    match store.store_alert(foreign, t(4)).await {
        Err(CoreError::NotFound(_)) => {}
        other => panic!("an alert about another agency's flag must be not found, got {other:?}"),
    }
    let mut bad = encounter_about(&flag, "pulaski-so");
    bad.location = "x".repeat(10_000);
    assert!(matches!(
        store.store_alert(bad, t(5)).await,
        Err(CoreError::InvalidArgument { .. })
    ));
    assert_eq!(
        expect_ok(store.alerts_after(&scene.owner, 0, 100).await, "alerts_after").len(),
        2
    );
}

/// The delivery queue keeps an encounter once until it is marked delivered.
pub async fn deliveries_are_queued_once_until_delivered(store: &dyn Store) {
    let scene = Scene::new();
    let flag = create(store, scene.flag(&scene.owner, &Subject::jordan()), T0).await;
    let encounter = encounter_about(&flag, "pulaski-so");
    assert!(expect_ok(
        store.enqueue_delivery(encounter.clone(), t(1)).await,
        "enqueue"
    ));
    assert!(!expect_ok(
        store.enqueue_delivery(encounter.clone(), t(2)).await,
        "enqueue again"
    ));
    let pending = expect_ok(store.pending_deliveries(100).await, "pending");
    assert_eq!(pending.iter().filter(|queued| queued.id == encounter.id).count(), 1);
    assert_eq!(
        pending.iter().find(|queued| queued.id == encounter.id),
        Some(&encounter)
    );
    expect_ok(store.mark_delivered(encounter.id, t(3)).await, "mark_delivered");
    let pending = expect_ok(store.pending_deliveries(100).await, "pending");
    assert!(pending.iter().all(|queued| queued.id != encounter.id));
    assert!(matches!(
        store.mark_delivered(encounter.id, t(4)).await,
        Err(CoreError::NotFound(_))
    ));
}

/// Break-the-glass review items: open, listed per owner, resolved once.
pub async fn review_items_open_resolve_once_and_stay_per_owner(store: &dyn Store) {
    let scene = Scene::new();
    let flag = create(store, scene.flag(&scene.owner, &Subject::jordan()), T0).await;
    let item = flagnet_core::ReviewItem {
        id: Uuid::new_v4(),
        request_id: Uuid::new_v4(),
        owner: scene.owner.clone(),
        flag_id: flag.id,
        actor_agency: scene.neighbour.clone(),
        actor_user: flagnet_core::UserId::parse("liaison1").expect("user"),
        actor_roles: vec![RoleName::parse("liaison").expect("role")],
        field_classes: vec![FieldClass::Presence, FieldClass::Clinical],
        reason: "subject threatening to jump from the bridge; crisis plan needed".into(),
        incident_id: "CAD-9".into(),
        created_at: t(1),
        resolution: None,
    };
    expect_ok(store.add_review_item(item.clone()).await, "add_review_item");
    let open = expect_ok(store.review_items(&scene.owner, false, 100).await, "review_items");
    assert_eq!(open, vec![item.clone()]);
    assert!(expect_ok(store.review_items(&scene.neighbour, true, 100).await, "review_items").is_empty());
    let resolution = flagnet_core::ReviewResolution {
        at: t(2),
        by: "spiffe://flagnet.test/agency/x/user/privacy_officer1".into(),
        justified: true,
        note: "override justified: documented emergency".into(),
    };
    let resolved = expect_ok(
        store
            .resolve_review_item(&scene.owner, item.id, resolution.clone())
            .await,
        "resolve",
    );
    assert_eq!(resolved.resolution, Some(resolution.clone()));
    assert!(expect_ok(store.review_items(&scene.owner, false, 100).await, "review_items").is_empty());
    assert_eq!(
        expect_ok(store.review_items(&scene.owner, true, 100).await, "review_items"),
        vec![resolved]
    );
    assert!(matches!(
        store
            .resolve_review_item(&scene.owner, item.id, resolution.clone())
            .await,
        Err(CoreError::FailedPrecondition(_))
    ));
    assert!(matches!(
        store.resolve_review_item(&scene.neighbour, item.id, resolution).await,
        Err(CoreError::NotFound(_))
    ));
}

/// A policy whose rows mention `marker`, so versions differ in content.
fn policy_content(marker: &str) -> flagnet_core::PolicyContent {
    flagnet_core::PolicyContent {
        model: "[request_definition]\nr = role, actor, owner, field, purpose\n".into(),
        policy: format!("# {marker}\np, dispatcher, any, same, presence, emergency_response, allow\n"),
        roles: format!("g, {marker}, dispatcher, phelps-so\n"),
    }
}

fn officer(agency: &AgencyId, user: &str) -> String {
    format!("spiffe://flagnet.test/agency/{agency}/user/{user}")
}

fn new_policy_version(
    agency: &AgencyId,
    base_version: u64,
    kind: flagnet_core::PolicyChangeKind,
    marker: &str,
    at: OffsetDateTime,
) -> flagnet_core::NewPolicyVersion {
    flagnet_core::NewPolicyVersion {
        agency: agency.clone(),
        base_version,
        author: officer(agency, "privacy_officer1"),
        created_at: at,
        reason: format!("version after {base_version}: {marker}"),
        kind,
        content: policy_content(marker),
        impact_summary: "+1/-0 decisions".into(),
        proposal: None,
        approval: None,
    }
}

fn expect_aborted<T: fmt::Debug>(result: CoreResult<T>, what: &str) {
    assert!(matches!(result, Err(CoreError::Aborted(_))), "{what}: {result:?}");
}

/// Policy versions: the seed is 1, each append the next number on the
/// latest base only, nothing stored on a stale base, history newest first,
/// every version read back exactly, per agency.
pub async fn policy_versions_append_in_order_and_refuse_a_stale_base(store: &dyn Store) {
    use flagnet_core::PolicyChangeKind::{Edit, Rollback, Seed};
    let scene = Scene::new();
    let agency = &scene.owner;
    assert_eq!(
        expect_ok(store.latest_policy_version(agency).await, "latest before the seed"),
        None
    );
    expect_aborted(
        store
            .append_policy_version(new_policy_version(agency, 1, Edit, "edit", t(1)))
            .await,
        "an edit before the seed",
    );
    let seed = expect_ok(
        store
            .append_policy_version(new_policy_version(agency, 0, Seed, "seed", t(0)))
            .await,
        "seed",
    );
    assert_eq!((seed.version, seed.base_version, seed.kind), (1, 0, Seed));
    assert_eq!(seed.content_hash, policy_content("seed").content_hash());
    expect_aborted(
        store
            .append_policy_version(new_policy_version(agency, 0, Seed, "seed again", t(0)))
            .await,
        "a second seed",
    );
    let second = expect_ok(
        store
            .append_policy_version(new_policy_version(agency, 1, Edit, "second", t(1)))
            .await,
        "second",
    );
    assert_eq!(second.version, 2);
    for stale in [1, 5] {
        expect_aborted(
            store
                .append_policy_version(new_policy_version(agency, stale, Edit, "stale", t(2)))
                .await,
            "a stale or future base",
        );
    }
    let mut rollback = new_policy_version(agency, 2, Rollback { to: 1 }, "seed", t(3));
    rollback.approval = Some(flagnet_core::PolicyApproval {
        by: officer(agency, "privacy_officer2"),
        at: t(3),
    });
    let third = expect_ok(store.append_policy_version(rollback.clone()).await, "rollback");
    assert_eq!(third.kind, Rollback { to: 1 });
    assert_eq!(third.content_hash, seed.content_hash);
    assert_eq!(third.approval, rollback.approval);

    assert_eq!(
        expect_ok(store.latest_policy_version(agency).await, "latest"),
        Some(third.clone())
    );
    assert_eq!(
        expect_ok(store.policy_version(agency, 2).await, "version 2"),
        Some(second.clone())
    );
    assert_eq!(expect_ok(store.policy_version(agency, 4).await, "version 4"), None);
    assert_eq!(expect_ok(store.policy_version(agency, u64::MAX).await, "huge"), None);
    assert_eq!(
        expect_ok(store.policy_history(agency, None, 100).await, "history"),
        vec![third.clone(), second.clone(), seed.clone()]
    );
    assert_eq!(
        expect_ok(store.policy_history(agency, Some(3), 1).await, "history page"),
        vec![second]
    );

    // refused inputs store nothing
    let mut unexplained = new_policy_version(agency, 3, Edit, "x", t(4));
    unexplained.reason = " ".into();
    expect_invalid(
        store.append_policy_version(unexplained).await,
        "policy.reason",
        "a version without a reason",
    );
    expect_invalid(
        store
            .append_policy_version(new_policy_version(agency, 3, Rollback { to: 4 }, "x", t(4)))
            .await,
        "policy.rollback_to",
        "a rollback to the future",
    );
    assert_eq!(
        expect_ok(store.latest_policy_version(agency).await, "latest").map(|v| v.version),
        Some(3)
    );

    // versions are per agency
    assert_eq!(
        expect_ok(store.latest_policy_version(&scene.neighbour).await, "neighbour"),
        None
    );
    assert_eq!(
        expect_ok(store.policy_version(&scene.neighbour, 1).await, "neighbour"),
        None
    );
    let neighbours = expect_ok(
        store
            .append_policy_version(new_policy_version(&scene.neighbour, 0, Seed, "theirs", t(5)))
            .await,
        "neighbour seed",
    );
    assert_eq!(neighbours.version, 1);
    assert_eq!(
        expect_ok(store.policy_history(agency, None, 100).await, "history").len(),
        3
    );
}

/// Two-person rule proposals: stored open, approved once into the next
/// version if their base is still the latest, or rejected once; closed
/// proposals stay listed only when asked.
pub async fn policy_proposals_close_once_by_approval_or_rejection(store: &dyn Store) {
    use flagnet_core::PolicyChangeKind::{Edit, Seed};
    use flagnet_core::{PolicyApproval, PolicyProposal, ProposalClosing, ProposalOutcome};
    let scene = Scene::new();
    let agency = &scene.owner;
    expect_ok(
        store
            .append_policy_version(new_policy_version(agency, 0, Seed, "seed", t(0)))
            .await,
        "seed",
    );
    let proposal = |marker: &str, base_version: u64, at: OffsetDateTime| {
        let content = policy_content(marker);
        PolicyProposal {
            id: Uuid::new_v4(),
            agency: agency.clone(),
            base_version,
            proposed_by: officer(agency, "privacy_officer1"),
            proposed_at: at,
            reason: format!("proposal {marker}"),
            kind: Edit,
            content_hash: content.content_hash(),
            content,
            impact_summary: "+2/-0 decisions".into(),
            closing: None,
        }
    };
    let first = proposal("first", 1, t(1));
    let second = proposal("second", 1, t(2));
    let third = proposal("third", 1, t(3));
    for open in [&first, &second, &third] {
        expect_ok(store.add_policy_proposal(open.clone()).await, "add proposal");
    }
    let mut forged = proposal("forged", 1, t(3));
    forged.content_hash = policy_content("other").content_hash();
    expect_invalid(
        store.add_policy_proposal(forged).await,
        "proposal.content_hash",
        "a proposal whose hash is not its content's",
    );
    assert_eq!(
        expect_ok(store.policy_proposals(agency, false, 100).await, "open proposals"),
        vec![first.clone(), second.clone(), third.clone()]
    );
    assert_eq!(
        expect_ok(store.policy_proposal(agency, second.id).await, "one proposal"),
        Some(second.clone())
    );
    assert!(expect_ok(store.policy_proposals(&scene.neighbour, true, 100).await, "neighbour").is_empty());
    assert_eq!(
        expect_ok(store.policy_proposal(&scene.neighbour, second.id).await, "neighbour"),
        None
    );

    let approval = PolicyApproval {
        by: officer(agency, "privacy_officer2"),
        at: t(4),
    };
    let applied = expect_ok(
        store.approve_policy_proposal(agency, first.id, approval.clone()).await,
        "approve",
    );
    assert_eq!(applied.version, 2);
    assert_eq!(applied.author, first.proposed_by);
    assert_eq!(applied.reason, first.reason);
    assert_eq!(applied.content, first.content);
    assert_eq!(applied.proposal, Some(first.id));
    assert_eq!(applied.approval, Some(approval.clone()));
    assert_eq!(
        expect_ok(store.latest_policy_version(agency).await, "latest"),
        Some(applied.clone())
    );
    assert!(matches!(
        store.approve_policy_proposal(agency, first.id, approval.clone()).await,
        Err(CoreError::FailedPrecondition(_))
    ));
    // the second was made on version 1, which is no longer the latest
    expect_aborted(
        store.approve_policy_proposal(agency, second.id, approval.clone()).await,
        "approving a proposal on a stale base",
    );
    assert!(
        expect_ok(store.policy_proposal(agency, second.id).await, "still open").is_some_and(|still| still.is_open())
    );
    assert!(matches!(
        store
            .approve_policy_proposal(&scene.neighbour, second.id, approval.clone())
            .await,
        Err(CoreError::NotFound(_))
    ));

    let rejection = ProposalClosing {
        by: officer(agency, "privacy_officer1"),
        at: t(5),
        outcome: ProposalOutcome::Rejected {
            reason: "superseded by version 2".into(),
        },
    };
    let rejected = expect_ok(
        store.reject_policy_proposal(agency, second.id, rejection.clone()).await,
        "reject",
    );
    assert_eq!(rejected.closing, Some(rejection.clone()));
    assert!(matches!(
        store.reject_policy_proposal(agency, second.id, rejection.clone()).await,
        Err(CoreError::FailedPrecondition(_))
    ));
    let approved_outcome = ProposalClosing {
        outcome: ProposalOutcome::Approved { version: 9 },
        ..rejection.clone()
    };
    expect_invalid(
        store.reject_policy_proposal(agency, third.id, approved_outcome).await,
        "proposal.outcome",
        "a rejection that says approved",
    );
    assert_eq!(
        expect_ok(store.policy_proposals(agency, false, 100).await, "open proposals"),
        vec![third.clone()]
    );
    let all = expect_ok(store.policy_proposals(agency, true, 100).await, "all proposals");
    assert_eq!(all.len(), 3);
    assert_eq!(
        all[0].closing.as_ref().map(|closing| &closing.outcome),
        Some(&ProposalOutcome::Approved { version: 2 })
    );
    assert_eq!(all[1], rejected);
}
