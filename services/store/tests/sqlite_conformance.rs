//! The store conformance suite on SQLite, then what only SQLite can show:
//! the bytes of the database file, reopening it, another data key, tampered
//! rows, and concurrent writers.

use flagnet_core::{CoreError, Flag, FlagStatus, Store, SubjectKeyKind};
use flagnet_store::conformance::{Scene, Subject, T0, t};
use flagnet_store::{DataKey, SqliteStore};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tempfile::TempDir;

const STORE_FILE: &str = "store.sqlite";

fn key_a() -> DataKey {
    DataKey::from_bytes([0x11; 32])
}

fn key_b() -> DataKey {
    DataKey::from_bytes([0x22; 32])
}

async fn sqlite_store() -> (SqliteStore, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store =
        SqliteStore::open(&dir.path().join(STORE_FILE), key_a(), SqliteStore::DEFAULT_POOL_SIZE).expect("open store");
    (store, dir)
}

flagnet_store::store_conformance_tests!(sqlite_store);

fn open(path: &Path, key: DataKey) -> SqliteStore {
    SqliteStore::open(path, key, 2).expect("open store")
}

/// The main file and the write-ahead log, as they are on disk now.
fn file_bytes(path: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).expect("read database file");
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    if let Ok(wal_bytes) = std::fs::read(wal) {
        bytes.extend_from_slice(&wal_bytes);
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle.as_bytes())
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
async fn seed(store: &SqliteStore, scene: &Scene) -> Flag {
    let flag = store
        .put_flag(scene.flag(&scene.owner, &Subject::jordan()), T0)
        .await
        .expect("put_flag");
    let mut consent = scene.guardian_consent(&flag, "Jordan Quinn Avery");
    consent.elements.granted_by = "Robin Hollister".into();
    store.record_consent(consent, t(1)).await.expect("record_consent");
    flag
}

const PLAINTEXTS: [&str; 9] = [
    "Jordan",
    "Avery",
    "1990-04-02",
    "+15735550100",
    "5735550100",
    "Pine St",
    "Jordan Quinn Avery",
    "Robin Hollister",
    "bipolar",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_file_holds_no_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(STORE_FILE);
    let store = open(&path, key_a());
    let scene = Scene::new();
    let flag = seed(&store, &scene).await;
    store
        .put_flag(scene.replacement(flag.id, &scene.owner, &Subject::jordan()), t(2))
        .await
        .unwrap();

    let live = file_bytes(&path);
    assert!(
        contains(&live, scene.owner.as_str()),
        "index columns are in the clear, so this is reading the right bytes"
    );
    for plaintext in PLAINTEXTS {
        assert!(
            !contains(&live, plaintext),
            "{plaintext:?} is in the database file or its log"
        );
    }
    // closing checkpoints the log into the main file
    drop(store);
    let checkpointed = file_bytes(&path);
    for plaintext in PLAINTEXTS {
        assert!(
            !contains(&checkpointed, plaintext),
            "{plaintext:?} is in the checkpointed file"
        );
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_file_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(STORE_FILE);
    let store = open(&path, key_a());
    seed(&store, &Scene::new()).await;
    for file in [path.clone(), PathBuf::from(format!("{}-wal", path.display()))] {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} has mode {mode:o}", file.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_runs_with_the_required_pragmas() {
    let (store, dir) = sqlite_store().await;
    seed(&store, &Scene::new()).await;
    // the store's own connections are private; a fresh one shows what the file holds
    let raw = Connection::open(dir.path().join(STORE_FILE)).unwrap();
    let journal_mode: String = raw.pragma_query_value(None, "journal_mode", |row| row.get(0)).unwrap();
    assert_eq!(journal_mode, "wal", "WAL mode is a property of the file");
    let tables: Vec<String> = raw
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for table in [
        "consents",
        "flag_history",
        "flag_tokens",
        "flags",
        "refinery_schema_history",
        "store_meta",
    ] {
        assert!(
            tables.iter().any(|name| name == table),
            "{table} missing from {tables:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(STORE_FILE);
    let scene = Scene::new();
    let (flag, consents) = {
        let store = open(&path, key_a());
        let flag = seed(&store, &scene).await;
        let consents = store.list_consents(&scene.owner, flag.id).await.unwrap();
        (flag, consents)
    };
    let reopened = open(&path, key_a());
    assert_eq!(
        reopened.get_flag(&scene.owner, flag.id).await.unwrap(),
        Some(flag.clone())
    );
    assert_eq!(reopened.list_consents(&scene.owner, flag.id).await.unwrap(), consents);
    let phone = scene.token(SubjectKeyKind::Phone, &Subject::jordan().phone);
    assert_eq!(reopened.find_flags(&[phone]).await.unwrap()[0].flag, flag);
    // and the migrations are not run twice
    drop(reopened);
    open(&path, key_a());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_data_key_cannot_read_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(STORE_FILE);
    {
        let store = open(&path, key_a());
        seed(&store, &Scene::new()).await;
    }
    let error = SqliteStore::open(&path, key_b(), 2).unwrap_err();
    match error {
        CoreError::Internal(message) => {
            assert!(message.contains("cannot be decrypted"), "{message}");
            assert!(message.contains(STORE_FILE), "the message names the file: {message}");
        }
        other => panic!("expected an internal error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_under_another_key_fails_to_decrypt_instead_of_giving_garbage() {
    // Past the open-time check (say, a row restored from another node's
    // backup), a row sealed under another key is an error, not garbage.
    let dir = tempfile::tempdir().unwrap();
    let path_a = dir.path().join("a.sqlite");
    let path_b = dir.path().join("b.sqlite");
    let scene = Scene::new();
    let store_a = open(&path_a, key_a());
    let flag = seed(&store_a, &scene).await;
    let store_b = open(&path_b, key_b());
    seed(&store_b, &scene).await;
    drop(store_b);
    let raw_b = Connection::open(&path_b).unwrap();
    let sealed_b: Vec<u8> = raw_b
        .query_row("SELECT sealed FROM flags", [], |row| row.get(0))
        .unwrap();
    let raw_a = Connection::open(&path_a).unwrap();
    raw_a
        .execute(
            "UPDATE flags SET sealed = ?1 WHERE id = ?2",
            rusqlite::params![sealed_b, flag.id.to_string()],
        )
        .unwrap();
    assert_undecryptable(store_a.get_flag(&scene.owner, flag.id).await, "get_flag");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_ciphertext_byte_fails_to_decrypt() {
    let (store, dir) = sqlite_store().await;
    let scene = Scene::new();
    let flag = seed(&store, &scene).await;
    let raw = Connection::open(dir.path().join(STORE_FILE)).unwrap();
    let id = flag.id.to_string();
    let mut sealed: Vec<u8> = raw
        .query_row("SELECT sealed FROM flags WHERE id = ?1", [&id], |row| row.get(0))
        .unwrap();
    let last = sealed.len() - 20;
    sealed[last] ^= 0x01;
    raw.execute(
        "UPDATE flags SET sealed = ?1 WHERE id = ?2",
        rusqlite::params![sealed, id],
    )
    .unwrap();

    assert_undecryptable(store.get_flag(&scene.owner, flag.id).await, "get_flag");
    assert_undecryptable(store.list_flags(&scene.owner, None, 10).await, "list_flags");
    let phone = scene.token(SubjectKeyKind::Phone, &Subject::jordan().phone);
    assert_undecryptable(store.find_flags(&[phone]).await, "find_flags");

    let mut consent_sealed: Vec<u8> = raw
        .query_row("SELECT sealed FROM consents WHERE flag_id = ?1", [&id], |row| {
            row.get(0)
        })
        .unwrap();
    consent_sealed[30] ^= 0x80;
    raw.execute(
        "UPDATE consents SET sealed = ?1 WHERE flag_id = ?2",
        rusqlite::params![consent_sealed, id],
    )
    .unwrap();
    assert_undecryptable(store.consents_for_flags(&[flag.id]).await, "consents_for_flags");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_swapped_into_another_place_fails_to_decrypt() {
    let (store, dir) = sqlite_store().await;
    let scene = Scene::new();
    let first = seed(&store, &scene).await;
    let second = store
        .put_flag(scene.flag(&scene.owner, &Subject::numbered(1)), t(5))
        .await
        .unwrap();
    let raw = Connection::open(dir.path().join(STORE_FILE)).unwrap();
    raw.execute(
        "UPDATE flags SET sealed = (SELECT sealed FROM flags WHERE id = ?1) WHERE id = ?2",
        [first.id.to_string(), second.id.to_string()],
    )
    .unwrap();
    assert_undecryptable(store.get_flag(&scene.owner, second.id).await, "swapped flag body");
    assert_eq!(store.get_flag(&scene.owner, first.id).await.unwrap(), Some(first));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_index_columns_fail_to_decrypt() {
    let (store, dir) = sqlite_store().await;
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
    let raw = Connection::open(dir.path().join(STORE_FILE)).unwrap();
    let id = flag.id.to_string();

    // a revoked flag turned active again
    raw.execute("UPDATE flags SET status = 'active' WHERE id = ?1", [&id])
        .unwrap();
    assert_undecryptable(store.get_flag(&scene.owner, flag.id).await, "status edited");
    raw.execute("UPDATE flags SET status = 'revoked' WHERE id = ?1", [&id])
        .unwrap();
    assert!(store.get_flag(&scene.owner, flag.id).await.is_ok());

    // a token of this subject pointed at another subject's flag
    raw.execute(
        "UPDATE flag_tokens SET flag_id = ?1 WHERE flag_id = ?2 AND kind = 'phone'",
        [other.id.to_string(), id.clone()],
    )
    .unwrap();
    let phone = scene.token(SubjectKeyKind::Phone, &Subject::jordan().phone);
    assert_undecryptable(store.find_flags(&[phone]).await, "token re-pointed");

    // a revoked consent un-revoked
    raw.execute(
        "UPDATE consents SET revoked_at = NULL WHERE id = ?1",
        [consent.id.to_string()],
    )
    .unwrap();
    assert_undecryptable(store.consents_for_flags(&[flag.id]).await, "revocation removed");

    // a consent's end pushed out
    let current = store
        .record_consent(scene.consent(&other, "Casey1 Morgan"), t(4))
        .await
        .unwrap();
    raw.execute(
        "UPDATE consents SET valid_until = valid_until + 86400000000000 * 365 WHERE id = ?1",
        [current.id.to_string()],
    )
    .unwrap();
    assert_undecryptable(store.list_consents(&scene.owner, other.id).await, "valid_until edited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_puts_from_sixteen_tasks_all_land() {
    let (store, _dir) = sqlite_store().await;
    let store = Arc::new(store);
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

    // sixteen replacements of one flag: each gets its own revision
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_use_the_token_index() {
    let (store, dir) = sqlite_store().await;
    seed(&store, &Scene::new()).await;
    let raw = Connection::open(dir.path().join(STORE_FILE)).unwrap();
    let plan: Vec<String> = raw
        .prepare(
            "EXPLAIN QUERY PLAN WITH asked (kind, token) AS (VALUES (?1, ?2)) \
             SELECT DISTINCT t.flag_id FROM asked a JOIN flag_tokens t ON t.token = a.token AND t.kind = a.kind",
        )
        .unwrap()
        .query_map(rusqlite::params!["phone", vec![0u8; 32]], |row| row.get(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        plan.iter().any(|step| step.contains("flag_tokens_by_token")),
        "plan: {plan:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_pool_is_refused_and_an_unwritable_path_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        SqliteStore::open(&dir.path().join(STORE_FILE), key_a(), 0),
        Err(CoreError::InvalidArgument { .. })
    ));
    let missing_dir = dir.path().join("no-such-dir").join(STORE_FILE);
    match SqliteStore::open(&missing_dir, key_a(), 1) {
        Err(CoreError::Unavailable(message)) => {
            assert!(message.contains("no-such-dir"), "{message}")
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_calls_give_their_connection_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join(STORE_FILE), key_a(), 1).unwrap();
    let scene = Scene::new();
    for _ in 0..8 {
        let unknown = uuid::Uuid::new_v4();
        let replacement = scene.replacement(unknown, &scene.owner, &Subject::jordan());
        assert!(matches!(
            store.put_flag(replacement, T0).await,
            Err(CoreError::NotFound(_))
        ));
        assert!(matches!(
            store.flag_history(&scene.owner, unknown).await,
            Err(CoreError::NotFound(_))
        ));
    }
    let flag = seed(&store, &scene).await;
    assert_eq!(store.get_flag(&scene.owner, flag.id).await.unwrap(), Some(flag));
}

/// A policy version changed in the database behind the node's back (a
/// version renumbered, a body copied over the latest, or a closed proposal
/// reopened) does not open: the node would refuse to decide by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_policy_versions_fail_to_decrypt() {
    use flagnet_core::{NewPolicyVersion, PolicyChangeKind, PolicyContent};
    let (store, dir) = sqlite_store().await;
    let scene = Scene::new();
    let version = |base: u64, policy: &str| NewPolicyVersion {
        agency: scene.owner.clone(),
        base_version: base,
        author: "spiffe://flagnet.test/agency/a/user/privacy_officer1".into(),
        created_at: t(base as i64),
        reason: "test".into(),
        kind: if base == 0 {
            PolicyChangeKind::Seed
        } else {
            PolicyChangeKind::Edit
        },
        content: PolicyContent {
            model: "m".into(),
            policy: policy.into(),
            roles: String::new(),
        },
        impact_summary: String::new(),
        proposal: None,
        approval: None,
    };
    store
        .append_policy_version(version(0, "p, dispatcher, any, same, presence, welfare_check, allow\n"))
        .await
        .unwrap();
    store
        .append_policy_version(version(1, "p, dispatcher, any, any, clinical, welfare_check, allow\n"))
        .await
        .unwrap();
    let raw = Connection::open(dir.path().join(STORE_FILE)).unwrap();
    let agency = scene.owner.to_string();

    // the permissive version 2 removed, and version 1 renumbered to look latest
    raw.execute(
        "UPDATE policy_versions SET version = 3 WHERE agency = ?1 AND version = 1",
        [&agency],
    )
    .unwrap();
    assert_undecryptable(store.latest_policy_version(&scene.owner).await, "version renumbered");
    raw.execute(
        "UPDATE policy_versions SET version = 1 WHERE agency = ?1 AND version = 3",
        [&agency],
    )
    .unwrap();
    store.latest_policy_version(&scene.owner).await.unwrap();

    // version 1's body copied over version 2
    raw.execute(
        "UPDATE policy_versions SET sealed = (SELECT sealed FROM policy_versions WHERE agency = ?1 AND version = 1), \
         content_hash = (SELECT content_hash FROM policy_versions WHERE agency = ?1 AND version = 1) \
         WHERE agency = ?1 AND version = 2",
        [&agency],
    )
    .unwrap();
    assert_undecryptable(store.policy_version(&scene.owner, 2).await, "body copied");
}
