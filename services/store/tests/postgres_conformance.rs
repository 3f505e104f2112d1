//! The store conformance suite on PostgreSQL, then what only PostgreSQL can
//! show: the bytes in the tables, concurrent writers taking row locks, two
//! stores (replicas) on one schema, reconnecting, another data key, tampered
//! rows, rows sealed on SQLite opening here, a terminated connection, and
//! the URL factory.
//!
//! These run when `FLAGNET_TEST_POSTGRES` names a server, for example
//! `FLAGNET_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test cargo test -p flagnet-store`.
//! Each test works in a fresh random schema that is dropped when it ends.
//! Without the variable every such test writes `SKIPPED <test>: ...` to the
//! terminal and passes; the checks that need no server always run.

use flagnet_core::{CoreError, Flag, FlagStatus, Store, SubjectKeyKind};
use flagnet_store::conformance::{Scene, Subject, T0, report_skipped, t};
use flagnet_store::{DataKey, PostgresStore};
use std::sync::Arc;
use tokio_postgres::{Client, NoTls};
use uuid::Uuid;

const SERVER_VARIABLE: &str = "FLAGNET_TEST_POSTGRES";

fn key_a() -> DataKey {
    DataKey::from_bytes([0x11; 32])
}

fn key_b() -> DataKey {
    DataKey::from_bytes([0x22; 32])
}

/// The test server's URL, or why there is none.
fn server_url() -> Result<String, String> {
    match std::env::var(SERVER_VARIABLE) {
        Ok(url) if !url.trim().is_empty() => Ok(url.trim().to_owned()),
        _ => Err(format!("{SERVER_VARIABLE} is not set, so PostgreSQL is not tested")),
    }
}

/// The server URL for a test, or `None` after saying the test was skipped.
fn server_or_skip(test: &str) -> Option<String> {
    match server_url() {
        Ok(url) => Some(url),
        Err(why) => {
            report_skipped(test, &why);
            None
        }
    }
}

fn fresh_schema() -> String {
    format!("flagnet_test_{}", Uuid::new_v4().simple())
}

/// Drops its schema, and everything in it, when the test ends (also when it
/// fails). Runs on a thread and runtime of its own, since the test's runtime
/// may be shutting down by then.
struct SchemaGuard {
    url: String,
    schema: String,
}

impl SchemaGuard {
    fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            schema: fresh_schema(),
        }
    }
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let url = self.url.clone();
        let schema = self.schema.clone();
        let dropped = std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| error.to_string())?;
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&url, NoTls)
                    .await
                    .map_err(|error| error.to_string())?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .await
                    .map_err(|error| error.to_string())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("cannot drop test schema {}: {error}", self.schema),
            Err(_) => eprintln!("dropping test schema {} panicked", self.schema),
        }
    }
}

async fn connect(url: &str, schema: &str, key: DataKey, pool_size: usize) -> PostgresStore {
    match PostgresStore::connect(url, schema, key, pool_size).await {
        Ok(store) => store,
        Err(error) => panic!("cannot connect to the {SERVER_VARIABLE} server: {error}"),
    }
}

/// A store in a fresh schema, or why there is none. A configured server
/// that cannot be reached fails the test: it is never a skip.
async fn postgres_store() -> Result<(PostgresStore, SchemaGuard), String> {
    let url = server_url()?;
    let guard = SchemaGuard::new(&url);
    let store = connect(&url, &guard.schema, key_a(), PostgresStore::DEFAULT_POOL_SIZE).await;
    Ok((store, guard))
}

flagnet_store::store_conformance_tests!(optional: postgres_store);

/// A plain connection looking at the test schema, for what the store itself
/// never shows.
async fn raw(guard: &SchemaGuard) -> Client {
    let mut config: tokio_postgres::Config = guard.url.parse().expect("test server URL");
    config.options(format!("-c search_path={}", guard.schema));
    let (client, connection) = config.connect(NoTls).await.expect("raw connection");
    tokio::spawn(connection);
    client
}

fn assert_undecryptable<T: std::fmt::Debug>(result: flagnet_core::CoreResult<T>, what: &str) {
    match result {
        Err(CoreError::Internal(message)) => {
            assert!(message.contains("cannot be decrypted"), "{what}: {message}");
        }
        other => panic!("{what}: expected an internal decryption error, got {other:?}"),
    }
}

/// Seeds Jordan Avery's flag and a consent naming a guardian, as a records
/// clerk would.
async fn seed(store: &PostgresStore, scene: &Scene) -> Flag {
    let flag = store
        .put_flag(scene.flag(&scene.owner, &Subject::jordan()), T0)
        .await
        .expect("put_flag");
    let mut consent = scene.guardian_consent(&flag, "Jordan Quinn Avery");
    consent.elements.granted_by = "Robin Hollister".into();
    store.record_consent(consent, t(1)).await.expect("record_consent");
    flag
}

fn encounter_about(flag: &Flag) -> flagnet_core::Encounter {
    flagnet_core::Encounter {
        id: Uuid::new_v4(),
        flag_id: flag.id,
        owner: flag.owner.clone(),
        occurred_at: T0,
        location: "Rolla, 10th St & Pine".into(),
        disposition: "transported for evaluation".into(),
        narrative: "calm once the CIT officer spoke about the dog".into(),
        reporter_agency: flagnet_core::AgencyId::parse("pulaski-so").expect("agency"),
        reporter_user: flagnet_core::UserId::parse("officer1").expect("user"),
        incident_id: "CAD-7".into(),
    }
}

const PLAINTEXTS: [&str; 12] = [
    "Jordan",
    "Avery",
    "1990-04-02",
    "+15735550100",
    "5735550100",
    "Pine St",
    "Jordan Quinn Avery",
    "Robin Hollister",
    "bipolar",
    "10th St",
    "CIT officer",
    "bridge",
];

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tables_hold_no_plaintext() {
    let Some(url) = server_or_skip("the_tables_hold_no_plaintext") else {
        return;
    };
    let guard = SchemaGuard::new(&url);
    let store = connect(&url, &guard.schema, key_a(), 2).await;
    let scene = Scene::new();
    let flag = seed(&store, &scene).await;
    store
        .put_flag(scene.replacement(flag.id, &scene.owner, &Subject::jordan()), t(2))
        .await
        .unwrap();
    store.store_alert(encounter_about(&flag), t(3)).await.unwrap();
    store.enqueue_delivery(encounter_about(&flag), t(4)).await.unwrap();
    store
        .add_review_item(flagnet_core::ReviewItem {
            id: Uuid::new_v4(),
            request_id: Uuid::new_v4(),
            owner: scene.owner.clone(),
            flag_id: flag.id,
            actor_agency: scene.neighbour.clone(),
            actor_user: flagnet_core::UserId::parse("liaison1").unwrap(),
            actor_roles: vec![flagnet_core::RoleName::parse("liaison").unwrap()],
            field_classes: vec![flagnet_core::FieldClass::Clinical],
            reason: "Jordan Avery on the bridge; crisis plan needed".into(),
            incident_id: "CAD-9".into(),
            created_at: t(5),
            resolution: None,
        })
        .await
        .unwrap();

    let raw = raw(&guard).await;
    let columns = raw
        .query(
            "SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = $1 AND data_type IN ('bytea', 'text') ORDER BY table_name, column_name",
            &[&guard.schema],
        )
        .await
        .unwrap();
    let mut tables = std::collections::BTreeSet::new();
    let mut sealed_bytes = 0;
    let mut saw_owner = false;
    for column in &columns {
        let (table, name, data_type): (String, String, String) = (column.get(0), column.get(1), column.get(2));
        tables.insert(table.clone());
        let query = format!("SELECT {name} FROM {table}");
        for row in raw.query(query.as_str(), &[]).await.unwrap() {
            let bytes: Vec<u8> = if data_type == "bytea" {
                row.get::<_, Option<Vec<u8>>>(0).unwrap_or_default()
            } else {
                row.get::<_, Option<String>>(0).unwrap_or_default().into_bytes()
            };
            if name == "sealed" {
                sealed_bytes += bytes.len();
            }
            saw_owner |= contains(&bytes, scene.owner.as_str());
            for plaintext in PLAINTEXTS {
                assert!(!contains(&bytes, plaintext), "{plaintext:?} is in {table}.{name}");
            }
        }
    }
    for table in [
        "alerts",
        "consents",
        "flag_history",
        "flag_tokens",
        "flags",
        "outbox",
        "review_items",
    ] {
        assert!(tables.contains(table), "{table} was searched: {tables:?}");
    }
    assert!(sealed_bytes > 1000, "sealed bodies were read ({sealed_bytes} bytes)");
    assert!(
        saw_owner,
        "index columns are in the clear, so this is reading the right rows"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_puts_from_sixteen_tasks_all_land() {
    let Some(url) = server_or_skip("concurrent_puts_from_sixteen_tasks_all_land") else {
        return;
    };
    let guard = SchemaGuard::new(&url);
    let store = Arc::new(connect(&url, &guard.schema, key_a(), 8).await);
    let scene = Arc::new(Scene::new());

    let mut creators = Vec::new();
    for index in 0..16 {
        let store = Arc::clone(&store);
        let scene = Arc::clone(&scene);
        creators.push(tokio::spawn(async move {
            store
                .put_flag(scene.flag(&scene.owner, &Subject::numbered(index)), t(index as i64))
                .await
                .expect("concurrent put")
        }));
    }
    let mut created = Vec::new();
    for creator in creators {
        created.push(creator.await.unwrap());
    }
    let listed = store.list_flags(&scene.owner, None, 100).await.unwrap();
    assert_eq!(listed.len(), 16);
    for flag in &created {
        assert!(listed.contains(flag), "{} landed", flag.id);
    }

    // sixteen replacements of one flag: the row lock gives each its own revision
    let target = created[0].id;
    let mut replacers = Vec::new();
    for index in 0..16 {
        let store = Arc::clone(&store);
        let scene = Arc::clone(&scene);
        replacers.push(tokio::spawn(async move {
            let mut replacement = scene.replacement(target, &scene.owner, &Subject::numbered(0));
            replacement.reason = format!("concurrent edit {index}");
            store
                .put_flag(replacement, t(100 + index))
                .await
                .expect("concurrent replace")
                .revision
        }));
    }
    let mut revisions = Vec::new();
    for replacer in replacers {
        revisions.push(replacer.await.unwrap());
    }
    revisions.sort_unstable();
    assert_eq!(revisions, (2..=17).collect::<Vec<u64>>());
    let history = store.flag_history(&scene.owner, target).await.unwrap();
    assert_eq!(
        history.iter().map(|change| change.revision).collect::<Vec<_>>(),
        (1..=17).collect::<Vec<u64>>()
    );
    let current = store.get_flag(&scene.owner, target).await.unwrap().unwrap();
    assert_eq!(current.revision, 17);
    let phone = scene.token(SubjectKeyKind::Phone, &Subject::numbered(0).phone);
    let found = store.find_flags(&[phone]).await.unwrap();
    assert_eq!(found.len(), 1, "the tokens were replaced, not duplicated");
    assert_eq!(found[0].flag, current);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_revocations_and_resolutions_happen_once() {
    let Some(url) = server_or_skip("concurrent_revocations_and_resolutions_happen_once") else {
        return;
    };
    let guard = SchemaGuard::new(&url);
    let store = Arc::new(connect(&url, &guard.schema, key_a(), 8).await);
    let scene = Arc::new(Scene::new());
    let flag = seed(&store, &scene).await;
    let consent = store.list_consents(&scene.owner, flag.id).await.unwrap().remove(0);

    let mut revokers = Vec::new();
    for index in 0..16 {
        let store = Arc::clone(&store);
        let scene = Arc::clone(&scene);
        revokers.push(tokio::spawn(async move {
            store
                .revoke_consent(
                    &scene.owner,
                    consent.id,
                    "spiffe://flagnet.test/agency/a/user/r",
                    &format!("attempt {index}"),
                    t(10 + index),
                )
                .await
        }));
    }
    let mut revoked = Vec::new();
    for revoker in revokers {
        match revoker.await.unwrap() {
            Ok(consent) => revoked.push(consent),
            Err(CoreError::FailedPrecondition(message)) => assert!(message.contains("already revoked"), "{message}"),
            Err(other) => panic!("a concurrent revocation failed with {other}"),
        }
    }
    assert_eq!(revoked.len(), 1, "exactly one revocation wins");
    let listed = store.list_consents(&scene.owner, flag.id).await.unwrap();
    assert_eq!(listed, revoked, "the winner's revocation is the stored one");

    let item = flagnet_core::ReviewItem {
        id: Uuid::new_v4(),
        request_id: Uuid::new_v4(),
        owner: scene.owner.clone(),
        flag_id: flag.id,
        actor_agency: scene.neighbour.clone(),
        actor_user: flagnet_core::UserId::parse("liaison1").unwrap(),
        actor_roles: vec![],
        field_classes: vec![flagnet_core::FieldClass::Presence],
        reason: "override".into(),
        incident_id: String::new(),
        created_at: t(30),
        resolution: None,
    };
    store.add_review_item(item.clone()).await.unwrap();
    let mut resolvers = Vec::new();
    for index in 0..16 {
        let store = Arc::clone(&store);
        let scene = Arc::clone(&scene);
        resolvers.push(tokio::spawn(async move {
            let resolution = flagnet_core::ReviewResolution {
                at: t(40 + index),
                by: "spiffe://flagnet.test/agency/a/user/po".into(),
                justified: index % 2 == 0,
                note: format!("resolution {index}"),
            };
            store.resolve_review_item(&scene.owner, item.id, resolution).await
        }));
    }
    let mut resolved = Vec::new();
    for resolver in resolvers {
        match resolver.await.unwrap() {
            Ok(item) => resolved.push(item),
            Err(CoreError::FailedPrecondition(_)) => {}
            Err(other) => panic!("a concurrent resolution failed with {other}"),
        }
    }
    assert_eq!(resolved.len(), 1, "exactly one resolution wins");
    assert_eq!(store.review_items(&scene.owner, true, 10).await.unwrap(), resolved);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_alerts_get_increasing_cursors_and_one_alert_per_encounter() {
    let Some(url) = server_or_skip("concurrent_alerts_get_increasing_cursors_and_one_alert_per_encounter") else {
        return;
    };
    let guard = SchemaGuard::new(&url);
    let store = Arc::new(connect(&url, &guard.schema, key_a(), 8).await);
    let scene = Scene::new();
    let flag = seed(&store, &scene).await;

    let repeated = encounter_about(&flag);
    let mut writers = Vec::new();
    for index in 0..32 {
        let store = Arc::clone(&store);
        // half retries of one encounter, half distinct ones
        let encounter = if index % 2 == 0 {
            repeated.clone()
        } else {
            encounter_about(&flag)
        };
        writers.push(tokio::spawn(async move {
            store.store_alert(encounter, t(index)).await.expect("concurrent alert")
        }));
    }
    let mut stored = Vec::new();
    for writer in writers {
        stored.push(writer.await.unwrap());
    }
    let new: Vec<_> = stored.iter().filter(|(_, new)| *new).map(|(alert, _)| alert).collect();
    assert_eq!(new.len(), 17, "sixteen distinct encounters and the repeated one once");
    let repeated_cursors: std::collections::BTreeSet<u64> = stored
        .iter()
        .filter(|(alert, _)| alert.encounter.id == repeated.id)
        .map(|(alert, _)| alert.cursor)
        .collect();
    assert_eq!(repeated_cursors.len(), 1, "every retry got the first alert back");

    let listed = store.alerts_after(&scene.owner, 0, 100).await.unwrap();
    assert_eq!(listed.len(), 17);
    assert!(
        listed.windows(2).all(|pair| pair[0].cursor < pair[1].cursor),
        "in cursor order"
    );
    let mut new_cursors: Vec<u64> = new.iter().map(|alert| alert.cursor).collect();
    new_cursors.sort_unstable();
    assert_eq!(listed.iter().map(|alert| alert.cursor).collect::<Vec<_>>(), new_cursors);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_schema_act_as_one() {
    let Some(url) = server_or_skip("two_stores_on_one_schema_act_as_one") else {
        return;
    };
    let guard = SchemaGuard::new(&url);
    // replicas starting together: the migration runs once, under its lock
    let (first, second) = tokio::join!(
        PostgresStore::connect(&url, &guard.schema, key_a(), 2),
        PostgresStore::connect(&url, &guard.schema, key_a(), 2),
    );
    let (first, second) = (first.expect("first replica"), second.expect("second replica"));
    let scene = Scene::new();
    let flag = seed(&first, &scene).await;
    assert_eq!(
        second.get_flag(&scene.owner, flag.id).await.unwrap(),
        Some(flag.clone())
    );
    let replaced = second
        .put_flag(scene.replacement(flag.id, &scene.owner, &Subject::jordan()), t(5))
        .await
        .unwrap();
    assert_eq!(replaced.revision, 2);
    assert_eq!(first.flag_history(&scene.owner, flag.id).await.unwrap().len(), 2);

    let raw = raw(&guard).await;
    let migrations: i64 = raw
        .query_one("SELECT count(*) FROM refinery_schema_history", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(migrations, 4, "each migration applied once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_keeps_the_data_and_another_key_is_refused() {
    let Some(url) = server_or_skip("reconnecting_keeps_the_data_and_another_key_is_refused") else {
        return;
    };
    let guard = SchemaGuard::new(&url);
    let scene = Scene::new();
    let (flag, consents) = {
        let store = connect(&url, &guard.schema, key_a(), 1).await;
        let flag = seed(&store, &scene).await;
        let consents = store.list_consents(&scene.owner, flag.id).await.unwrap();
        (flag, consents)
    };
    let reconnected = connect(&url, &guard.schema, key_a(), 1).await;
    assert_eq!(reconnected.schema(), guard.schema);
    assert_eq!(
        reconnected.get_flag(&scene.owner, flag.id).await.unwrap(),
        Some(flag.clone())
    );
    assert_eq!(
        reconnected.list_consents(&scene.owner, flag.id).await.unwrap(),
        consents
    );
    let phone = scene.token(SubjectKeyKind::Phone, &Subject::jordan().phone);
    assert_eq!(reconnected.find_flags(&[phone]).await.unwrap()[0].flag, flag);

    match PostgresStore::connect(&url, &guard.schema, key_b(), 1).await {
        Err(CoreError::Internal(message)) => {
            assert!(message.contains("cannot be decrypted"), "{message}");
            assert!(
                message.contains(&guard.schema),
                "the message names the schema: {message}"
            );
        }
        other => panic!("expected an internal error, got {other:?}"),
    }
}

/// Replicas applying policy edits at the same moment on one base: exactly
/// one version is stored, every other append is told the base moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_policy_edits_on_one_base_store_exactly_one() {
    use flagnet_core::{NewPolicyVersion, PolicyChangeKind, PolicyContent};
    let Some(url) = server_or_skip("concurrent_policy_edits_on_one_base_store_exactly_one") else {
        return;
    };
    let guard = SchemaGuard::new(&url);
    let replicas = [
        Arc::new(connect(&url, &guard.schema, key_a(), 4).await),
        Arc::new(connect(&url, &guard.schema, key_a(), 4).await),
    ];
    let scene = Arc::new(Scene::new());
    let version = move |scene: &Scene, base: u64, marker: String| NewPolicyVersion {
        agency: scene.owner.clone(),
        base_version: base,
        author: "spiffe://flagnet.test/agency/a/user/privacy_officer1".into(),
        created_at: t(base as i64),
        reason: marker.clone(),
        kind: if base == 0 {
            PolicyChangeKind::Seed
        } else {
            PolicyChangeKind::Edit
        },
        content: PolicyContent {
            model: "m".into(),
            policy: format!("# {marker}\n"),
            roles: String::new(),
        },
        impact_summary: String::new(),
        proposal: None,
        approval: None,
    };
    replicas[0]
        .append_policy_version(version(&scene, 0, "seed".into()))
        .await
        .unwrap();
    let mut appliers = Vec::new();
    for index in 0..16 {
        let store = Arc::clone(&replicas[index % 2]);
        let scene = Arc::clone(&scene);
        appliers.push(tokio::spawn(async move {
            store
                .append_policy_version(version(&scene, 1, format!("edit {index}")))
                .await
        }));
    }
    let mut stored = Vec::new();
    for applier in appliers {
        match applier.await.unwrap() {
            Ok(version) => stored.push(version),
            Err(CoreError::Aborted(_)) => {}
            Err(other) => panic!("a concurrent policy edit failed with {other}"),
        }
    }
    assert_eq!(stored.len(), 1, "exactly one edit on version 1 is stored");
    assert_eq!(stored[0].version, 2);
    let history = replicas[1].policy_history(&scene.owner, None, 10).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0], stored[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_or_swapped_rows_fail_to_decrypt() {
    let Some(url) = server_or_skip("edited_or_swapped_rows_fail_to_decrypt") else {
        return;
    };
    let guard = SchemaGuard::new(&url);
    let store = connect(&url, &guard.schema, key_a(), 2).await;
    let scene = Scene::new();
    let mut revoked = scene.flag(&scene.owner, &Subject::jordan());
    revoked.status = FlagStatus::Revoked;
    let flag = store.put_flag(revoked, T0).await.unwrap();
    let consent = store
        .record_consent(scene.consent(&flag, "Jordan Avery"), t(1))
        .await
        .unwrap();
    store
        .revoke_consent(
            &scene.owner,
            consent.id,
            "spiffe://flagnet.test/agency/a/user/b",
            "asked",
            t(2),
        )
        .await
        .unwrap();
    let other = store
        .put_flag(scene.flag(&scene.owner, &Subject::numbered(1)), t(3))
        .await
        .unwrap();
    let raw = raw(&guard).await;
    let id = flag.id.to_string();

    // a revoked flag turned active again
    raw.execute("UPDATE flags SET status = 'active' WHERE id = $1", &[&id])
        .await
        .unwrap();
    assert_undecryptable(store.get_flag(&scene.owner, flag.id).await, "status edited");
    raw.execute("UPDATE flags SET status = 'revoked' WHERE id = $1", &[&id])
        .await
        .unwrap();
    assert!(store.get_flag(&scene.owner, flag.id).await.is_ok());

    // a token of this subject pointed at another subject's flag
    raw.execute(
        "UPDATE flag_tokens SET flag_id = $1 WHERE flag_id = $2 AND kind = 'phone'",
        &[&other.id.to_string(), &id],
    )
    .await
    .unwrap();
    let phone = scene.token(SubjectKeyKind::Phone, &Subject::jordan().phone);
    assert_undecryptable(store.find_flags(&[phone]).await, "token re-pointed");

    // a revoked consent un-revoked
    raw.execute(
        "UPDATE consents SET revoked_at = NULL WHERE id = $1",
        &[&consent.id.to_string()],
    )
    .await
    .unwrap();
    assert_undecryptable(store.consents_for_flags(&[flag.id]).await, "revocation removed");

    // one flag's body swapped into another row
    let third = store
        .put_flag(scene.flag(&scene.owner, &Subject::numbered(2)), t(4))
        .await
        .unwrap();
    raw.execute(
        "UPDATE flags SET sealed = (SELECT sealed FROM flags WHERE id = $1) WHERE id = $2",
        &[&other.id.to_string(), &third.id.to_string()],
    )
    .await
    .unwrap();
    assert_undecryptable(store.get_flag(&scene.owner, third.id).await, "swapped flag body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_sealed_on_sqlite_open_on_postgres() {
    // Both backends bind and seal through one module: rows copied byte for
    // byte from a SQLite file open under the same data key here.
    let Some(url) = server_or_skip("rows_sealed_on_sqlite_open_on_postgres") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let scene = Scene::new();
    let (flag, consents, history) = {
        let sqlite = flagnet_store::SqliteStore::open(&path, key_a(), 1).unwrap();
        let created = sqlite
            .put_flag(scene.flag(&scene.owner, &Subject::jordan()), T0)
            .await
            .unwrap();
        let mut revoked = scene.guardian_consent(&created, "Jordan Quinn Avery");
        revoked.elements.granted_by = "Robin Hollister".into();
        let consent = sqlite.record_consent(revoked, t(1)).await.unwrap();
        sqlite
            .revoke_consent(
                &scene.owner,
                consent.id,
                "spiffe://flagnet.test/agency/a/user/b",
                "asked",
                t(2),
            )
            .await
            .unwrap();
        let flag = sqlite
            .put_flag(scene.replacement(created.id, &scene.owner, &Subject::jordan()), t(3))
            .await
            .unwrap();
        let consents = sqlite.list_consents(&scene.owner, flag.id).await.unwrap();
        let history = sqlite.flag_history(&scene.owner, flag.id).await.unwrap();
        (flag, consents, history)
    };

    let guard = SchemaGuard::new(&url);
    let postgres = connect(&url, &guard.schema, key_a(), 1).await;
    let raw_postgres = raw(&guard).await;
    let raw_sqlite = rusqlite::Connection::open(&path).unwrap();
    let copy = |table: &str, columns: &str| {
        let width = columns.split(',').count();
        let mut statement = raw_sqlite.prepare(&format!("SELECT {columns} FROM {table}")).unwrap();
        let rows: Vec<Vec<rusqlite::types::Value>> = statement
            .query_map([], |row| (0..width).map(|index| row.get(index)).collect())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let placeholders: Vec<String> = (1..=width).map(|index| format!("${index}")).collect();
        let insert = format!("INSERT INTO {table} ({columns}) VALUES ({})", placeholders.join(", "));
        (insert, rows)
    };
    for (table, columns) in [
        (
            "flags",
            "id, owner, status, review_date, revision, created_at, updated_at, sealed",
        ),
        ("flag_tokens", "flag_id, position, kind, token"),
        ("flag_history", "flag_id, revision, changed_at, status, sealed"),
        (
            "consents",
            "id, flag_id, owner, valid_from, valid_until, recorded_at, revoked_at, sealed",
        ),
    ] {
        let (insert, rows) = copy(table, columns);
        assert!(!rows.is_empty(), "{table} has rows to copy");
        for row in rows {
            let values: Vec<Box<dyn tokio_postgres::types::ToSql + Sync + Send>> = row
                .into_iter()
                .map(|value| -> Box<dyn tokio_postgres::types::ToSql + Sync + Send> {
                    match value {
                        // only integer columns are NULL here (valid_until, revoked_at)
                        rusqlite::types::Value::Null => Box::new(Option::<i64>::None),
                        rusqlite::types::Value::Integer(number) => Box::new(number),
                        rusqlite::types::Value::Text(text) => Box::new(text),
                        rusqlite::types::Value::Blob(bytes) => Box::new(bytes),
                        rusqlite::types::Value::Real(_) => panic!("the store has no real columns"),
                    }
                })
                .collect();
            let parameters: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = values
                .iter()
                .map(|value| value.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
                .collect();
            raw_postgres.execute(insert.as_str(), &parameters).await.unwrap();
        }
    }
    assert_eq!(
        postgres.get_flag(&scene.owner, flag.id).await.unwrap(),
        Some(flag.clone())
    );
    assert_eq!(postgres.list_consents(&scene.owner, flag.id).await.unwrap(), consents);
    assert_eq!(postgres.flag_history(&scene.owner, flag.id).await.unwrap(), history);
    let phone = scene.token(SubjectKeyKind::Phone, &Subject::jordan().phone);
    assert_eq!(postgres.find_flags(&[phone]).await.unwrap()[0].flag, flag);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_connection_is_replaced() {
    let Some(url) = server_or_skip("a_terminated_connection_is_replaced") else {
        return;
    };
    let guard = SchemaGuard::new(&url);
    let store = connect(&url, &guard.schema, key_a(), 1).await;
    let scene = Scene::new();
    let flag = seed(&store, &scene).await;
    let raw = raw(&guard).await;
    let terminated: i64 = raw
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
            &[&format!("flagnet-store/{}", guard.schema)],
        )
        .await
        .unwrap()
        .get(0);
    // the pooled connection, and possibly the migration connection still closing
    assert!(
        terminated >= 1,
        "the store's connection was found by its application name"
    );
    // the first call may still meet the dead connection; it must then be
    // `Unavailable`, and the call after it must work
    match store.get_flag(&scene.owner, flag.id).await {
        Ok(found) => assert_eq!(found, Some(flag.clone())),
        Err(CoreError::Unavailable(_)) => {
            assert_eq!(store.get_flag(&scene.owner, flag.id).await.unwrap(), Some(flag.clone()));
        }
        Err(other) => panic!("a lost connection must be unavailable, got {other:?}"),
    }
    assert_eq!(store.get_flag(&scene.owner, flag.id).await.unwrap(), Some(flag));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemas_keep_stores_apart_and_hold_every_table() {
    let Some(url) = server_or_skip("schemas_keep_stores_apart_and_hold_every_table") else {
        return;
    };
    let (guard_a, guard_b) = (SchemaGuard::new(&url), SchemaGuard::new(&url));
    let store_a = connect(&url, &guard_a.schema, key_a(), 1).await;
    let store_b = connect(&url, &guard_b.schema, key_b(), 1).await;
    let scene = Scene::new();
    let flag = seed(&store_a, &scene).await;
    assert_eq!(store_b.get_flag(&scene.owner, flag.id).await.unwrap(), None);
    let phone = scene.token(SubjectKeyKind::Phone, &Subject::jordan().phone);
    assert!(store_b.find_flags(&[phone]).await.unwrap().is_empty());

    let raw = raw(&guard_a).await;
    let tables: Vec<String> = raw
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1",
            &[&guard_a.schema],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(
        tables,
        [
            "alerts",
            "consents",
            "flag_history",
            "flag_tokens",
            "flags",
            "outbox",
            "policy_proposals",
            "policy_versions",
            "refinery_schema_history",
            "review_items",
            "store_meta"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_store_picks_postgres_and_the_schema_from_the_url() {
    let Some(url) = server_or_skip("open_store_picks_postgres_and_the_schema_from_the_url") else {
        return;
    };
    let guard = SchemaGuard::new(&url);
    let separator = if url.contains('?') { '&' } else { '?' };
    let store = flagnet_store::open_store(&format!("{url}{separator}schema={}", guard.schema), key_a(), 2)
        .await
        .expect("open_store");
    let shown = format!("{store:?}");
    assert!(shown.starts_with("PostgresStore"), "{shown}");
    assert!(shown.contains(&guard.schema), "{shown}");
    let scene = Scene::new();
    let flag = store
        .put_flag(scene.flag(&scene.owner, &Subject::jordan()), T0)
        .await
        .unwrap();
    let raw = raw(&guard).await;
    let count: i64 = raw
        .query_one("SELECT count(*) FROM flags WHERE id = $1", &[&flag.id.to_string()])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 1, "the flag landed in the schema the URL named");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_are_refused_before_connecting() {
    // no server needed: these fail before any connection is made
    let url = "postgres://flagnet:hunter2@127.0.0.1:1/none";
    for (schema, pool_size, field) in [
        ("flagnet", 0, "store.pool_size"),
        ("flagnet", 65, "store.pool_size"),
        ("Flagnet", 1, "store.schema"),
        ("a;drop schema public", 1, "store.schema"),
        ("pg_catalog", 1, "store.schema"),
    ] {
        match PostgresStore::connect(url, schema, key_a(), pool_size).await {
            Err(CoreError::InvalidArgument { field: got, .. }) => assert_eq!(got, field, "{schema} {pool_size}"),
            other => panic!("{schema} {pool_size}: expected invalid {field}, got {other:?}"),
        }
    }
    match PostgresStore::connect("postgres://host:notaport/db", "flagnet", key_a(), 1).await {
        Err(CoreError::InvalidArgument { field, .. }) => assert_eq!(field, "store.url"),
        other => panic!("expected an invalid url, got {other:?}"),
    }
    // nothing listens on port 1: unavailable, and the password is never shown
    match PostgresStore::connect(url, "flagnet", key_a(), 1).await {
        Err(CoreError::Unavailable(message)) => assert!(!message.contains("hunter2"), "{message}"),
        other => panic!("expected unavailable, got {other:?}"),
    }
    match flagnet_store::open_store("mysql://flagnet:hunter2@db/x", key_a(), 1).await {
        Err(CoreError::InvalidArgument { field, reason }) => {
            assert_eq!(field, "store.url");
            assert!(!reason.contains("hunter2"));
        }
        other => panic!("expected an invalid url, got {other:?}"),
    }
}
