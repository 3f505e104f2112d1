//! Policy administration over real nodes: privacy officers read the stored
//! policy, preview an edit's impact and policy tests, apply it against the
//! version they saw, list history, diff and roll back; an applied edit
//! governs the next lookup, survives a restart, and is never half seen; a
//! stale, invalid or test-breaking edit changes nothing; nobody else may
//! touch the policy; the two-person rule holds an edit for a second
//! officer; and a version another replica stored comes into force.

use flagnet_audit::{AuditAction, AuditOutcome, AuditQuery};
use flagnet_core::{AgencyId, FieldClass, UserId};
use flagnet_proto::v1 as pb;
use flagnet_proto::v1::flag_index_client::FlagIndexClient;
use flagnet_proto::v1::policy_admin_client::PolicyAdminClient;
use flagnet_sandbox::seed::ConsentCase;
use flagnet_sandbox::{Sandbox, SandboxOptions, SeededSubject, seed_demo};
use flagnet_trust::client::ClientProfile;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tonic::Code;
use tonic::transport::Channel;

const PHELPS: &str = "phelps-so";
const ROLLA: &str = "rolla-pd";

/// dispatcher1 of Phelps also holds a role no policy test speaks of, so
/// edits that flip what it sees pass the policy tests.
const CO_RESPONDER: &str = "g, dispatcher1, co_responder, phelps-so";
const CO_RESPONDER_SAFETY: &str = "p, co_responder, any, same, safety, emergency_response, allow";
const CO_RESPONDER_CONTACTS: &str = "p, co_responder, any, same, contacts, emergency_response, allow";
/// What a default-policy test row forbids: a neighbouring dispatcher seeing safety notes.
const NEIGHBOUR_SAFETY: &str = "p, dispatcher, south-central-mo, south-central-mo, safety, emergency_response, allow";

async fn federation(agencies: &[&str]) -> (Sandbox, Vec<SeededSubject>) {
    let sandbox = Sandbox::start(SandboxOptions {
        agencies: agencies.iter().map(|agency| (*agency).to_owned()).collect(),
        ..Default::default()
    })
    .await
    .unwrap();
    let subjects = seed_demo(&sandbox).await.unwrap();
    (sandbox, subjects)
}

async fn admin(sandbox: &Sandbox, agency: &str, role: &str) -> PolicyAdminClient<Channel> {
    PolicyAdminClient::new(sandbox.channel(agency, role).await.unwrap())
}

/// A person the sandbox did not make: a certificate issued now, and a client
/// of `node` with it.
async fn person(sandbox: &Sandbox, agency: &str, user: &str, node: &str) -> PolicyAdminClient<Channel> {
    let issued = sandbox
        .federation()
        .issue_user(&AgencyId::parse(agency).unwrap(), &UserId::parse(user).unwrap(), None)
        .unwrap();
    let template = ClientProfile::load(&sandbox.profile_path(node, "privacy_officer")).unwrap();
    let profile = ClientProfile {
        certificate: issued.cert_path.clone(),
        private_key: issued.key_path.clone(),
        ..template
    };
    PolicyAdminClient::new(profile.connect().await.unwrap())
}

fn rows(add: &[&str], remove: &[&str]) -> Option<pb::PolicyChange> {
    Some(pb::PolicyChange {
        add: add.iter().map(|row| (*row).to_owned()).collect(),
        remove: remove.iter().map(|row| (*row).to_owned()).collect(),
        whole: None,
    })
}

fn apply(expected_version: u64, change: Option<pb::PolicyChange>, reason: &str) -> pb::ApplyRequest {
    pb::ApplyRequest {
        expected_version,
        change,
        reason: reason.into(),
    }
}

async fn current(admin: &mut PolicyAdminClient<Channel>) -> pb::PolicyVersion {
    admin
        .get_policy(pb::GetPolicyRequest { version: 0 })
        .await
        .unwrap()
        .into_inner()
}

fn by_phone(phone: &str) -> pb::LookupRequest {
    pb::LookupRequest {
        subject: Some(pb::SubjectQuery {
            key: Some(pb::subject_query::Key::Phone(phone.into())),
        }),
        purpose: "emergency_response".into(),
        incident_id: "CAD-2026-0500".into(),
        scope: pb::LookupScope::Local as i32,
        override_reason: String::new(),
    }
}

/// The classes one lookup disclosed of the single match.
async fn disclosed(client: &mut FlagIndexClient<Channel>, phone: &str) -> BTreeSet<FieldClass> {
    let answer = client.lookup(by_phone(phone)).await.unwrap().into_inner();
    assert_eq!(answer.matches.len(), 1, "{answer:?}");
    let found = &answer.matches[0];
    [
        (found.presence.is_some(), FieldClass::Presence),
        (found.response.is_some(), FieldClass::Response),
        (found.safety.is_some(), FieldClass::Safety),
        (found.contacts.is_some(), FieldClass::Contacts),
        (found.clinical.is_some(), FieldClass::Clinical),
        (found.identity.is_some(), FieldClass::Identity),
    ]
    .into_iter()
    .filter_map(|(present, class)| present.then_some(class))
    .collect()
}

fn classes(list: &[FieldClass]) -> BTreeSet<FieldClass> {
    list.iter().copied().collect()
}

fn covered(subjects: &[SeededSubject]) -> &'static str {
    subjects
        .iter()
        .find(|subject| subject.agency == PHELPS && subject.consent == ConsentCase::Region)
        .unwrap()
        .phone
}

const DISPATCHER: [FieldClass; 3] = [FieldClass::Presence, FieldClass::Response, FieldClass::Identity];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_is_previewed_applied_and_governs_the_next_lookup() {
    let (sandbox, subjects) = federation(&[PHELPS]).await;
    let phone = covered(&subjects);
    let mut officer = admin(&sandbox, PHELPS, "privacy_officer").await;
    let mut dispatcher = sandbox.client(PHELPS, "dispatcher").await.unwrap();

    let seeded = current(&mut officer).await;
    assert_eq!((seeded.version, seeded.kind.as_str()), (1, "seed"));
    assert!(seeded.author.starts_with("seed:"));
    assert!(
        seeded.policy_csv.contains("# own agency"),
        "the seed keeps the reviewable file"
    );
    assert!(
        seeded
            .roles_csv
            .contains("g, privacy_officer1, privacy_officer, phelps-so")
    );
    assert_eq!(disclosed(&mut dispatcher, phone).await, classes(&DISPATCHER));

    let change = rows(&[CO_RESPONDER, CO_RESPONDER_SAFETY], &[]);
    let preview = officer
        .propose(pb::ProposeRequest { change: change.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(preview.valid && preview.applicable, "{preview:?}");
    assert_eq!(preview.base_version, 1);
    let tests = preview.tests.as_ref().unwrap();
    assert!(tests.ran && tests.failures.is_empty() && tests.rows >= 680, "{tests:?}");
    let impact = preview.impact.as_ref().unwrap();
    assert!(
        impact
            .flips
            .iter()
            .any(|flip| flip.summary
                == "phelps-so co_responder gains `safety` on phelps-so flags for emergency_response"),
        "{impact:?}"
    );
    // co_responder at each of the four agencies the policy names, on its own flags
    assert_eq!(
        (impact.gained, impact.lost, impact.summary.as_str()),
        (4, 0, "+4/-0 decisions")
    );
    assert_eq!(preview.rules.as_ref().unwrap().added.len(), 2);
    // a preview changes nothing
    assert_eq!(current(&mut officer).await.version, 1);
    assert_eq!(disclosed(&mut dispatcher, phone).await, classes(&DISPATCHER));

    let applied = officer
        .apply(apply(
            1,
            change,
            "dispatchers who co-respond need responder-safety notes",
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(applied.applied);
    let version = applied.version.unwrap();
    assert_eq!((version.version, version.base_version), (2, 1));
    assert_eq!(version.content_hash, preview.content_hash);
    assert_eq!(version.impact_summary, impact.summary);

    // the same connection, the next request: the new policy decides
    let mut expected = classes(&DISPATCHER);
    expected.insert(FieldClass::Safety);
    assert_eq!(disclosed(&mut dispatcher, phone).await, expected);

    let history = officer
        .history(pb::HistoryRequest { limit: 0, before: 0 })
        .await
        .unwrap()
        .into_inner()
        .versions;
    assert_eq!(history.iter().map(|v| v.version).collect::<Vec<_>>(), [2, 1]);
    assert_eq!(
        history[0].reason,
        "dispatchers who co-respond need responder-safety notes"
    );
    assert!(history[0].author.ends_with("/agency/phelps-so/user/privacy_officer1"));
    assert!(
        history[0].policy_csv.is_empty(),
        "history lists versions without their text"
    );
    let diff = officer
        .diff(pb::DiffRequest {
            from_version: 1,
            to_version: 2,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(diff.impact.unwrap().summary, impact.summary);
    assert_eq!(
        diff.rules.unwrap().added,
        [CO_RESPONDER_SAFETY, CO_RESPONDER],
        "policy.csv rows, then roles.csv rows"
    );

    // the apply and the proposal are audited with their reason and impact
    let log = sandbox.audit_log(PHELPS).unwrap();
    let changes = log
        .search(AuditQuery {
            action: Some(AuditAction::PolicyChange),
            ..Default::default()
        })
        .await
        .unwrap()
        .records;
    let lines: Vec<&str> = changes.iter().filter_map(|r| r.record.incident_id.as_deref()).collect();
    assert!(
        lines.iter().any(|line| line.starts_with("policy:seed v1 from ")),
        "{lines:?}"
    );
    assert!(lines.contains(&"policy:propose on v1 (+4/-0 decisions)"), "{lines:?}");
    assert!(
        lines.contains(&"policy:apply v2 (+4/-0 decisions): dispatchers who co-respond need responder-safety notes"),
        "{lines:?}"
    );
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_version_is_refused_and_nothing_changes() {
    let (sandbox, _) = federation(&[PHELPS]).await;
    let mut officer = admin(&sandbox, PHELPS, "privacy_officer").await;
    officer
        .apply(apply(
            1,
            rows(&[CO_RESPONDER], &[]),
            "co-responder role for dispatcher1",
        ))
        .await
        .unwrap();
    let before = current(&mut officer).await;
    assert_eq!(before.version, 2);
    // a second officer's edit made against version 1, which they read earlier
    let status = officer
        .apply(apply(1, rows(&[CO_RESPONDER_SAFETY], &[]), "safety notes"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    assert!(status.message().contains("version 2"), "{}", status.message());
    for future in [3, 99] {
        let status = officer
            .apply(apply(future, rows(&[CO_RESPONDER_SAFETY], &[]), "safety notes"))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Aborted);
    }
    let after = current(&mut officer).await;
    assert_eq!(
        (after.version, after.content_hash),
        (before.version, before.content_hash)
    );
    let status = officer
        .rollback(pb::RollbackRequest {
            to_version: 1,
            reason: "undo".into(),
            expected_version: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted);
    assert_eq!(current(&mut officer).await.version, 2);
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_that_breaks_a_policy_test_is_refused_and_nothing_changes() {
    let (sandbox, subjects) = federation(&[PHELPS, ROLLA]).await;
    let phone = covered(&subjects);
    let mut officer = admin(&sandbox, PHELPS, "privacy_officer").await;
    let mut neighbour = sandbox.client(ROLLA, "dispatcher").await.unwrap();
    let federated = || pb::LookupRequest {
        scope: pb::LookupScope::Federated as i32,
        ..by_phone(phone)
    };
    let seen = |answer: pb::LookupResponse| answer.matches[0].safety.is_some();
    assert!(!seen(neighbour.lookup(federated()).await.unwrap().into_inner()));

    let change = rows(&[NEIGHBOUR_SAFETY], &[]);
    let preview = officer
        .propose(pb::ProposeRequest { change: change.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(preview.valid && !preview.applicable);
    let tests = preview.tests.unwrap();
    let failure = tests
        .failures
        .iter()
        .find(|failure| failure.role == "dispatcher" && failure.actor_agency == ROLLA && failure.owner_agency == PHELPS)
        .expect("the rolla-pd dispatcher safety row fails");
    assert_eq!((failure.expected.as_str(), failure.got.as_str()), ("deny", "allow"));
    assert!(failure.line > 0);
    assert!(
        preview
            .impact
            .unwrap()
            .flips
            .iter()
            .any(|flip| flip.summary == "rolla-pd dispatcher gains `safety` on phelps-so flags for emergency_response"),
        "the impact is shown even when the tests fail"
    );

    let status = officer
        .apply(apply(1, change, "neighbours asked for safety notes"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("policy tests fail"), "{}", status.message());
    let after = current(&mut officer).await;
    assert_eq!(after.version, 1);
    assert!(!after.policy_csv.contains(NEIGHBOUR_SAFETY));
    assert!(!seen(neighbour.lookup(federated()).await.unwrap().into_inner()));
    let history = officer
        .history(pb::HistoryRequest { limit: 10, before: 0 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(history.versions.len(), 1);

    let log = sandbox.audit_log(PHELPS).unwrap();
    let refused = log
        .search(AuditQuery {
            action: Some(AuditAction::PolicyChange),
            outcome: Some(AuditOutcome::Error),
            ..Default::default()
        })
        .await
        .unwrap()
        .records;
    assert!(
        refused.iter().any(|r| r.record.incident_id.as_deref()
            == Some("policy:apply refused on v1 (+9/-0 decisions): neighbours asked for safety notes")
            && r.record.grpc_code == Code::FailedPrecondition as u32),
        "{:?}",
        refused.iter().map(|r| &r.record.incident_id).collect::<Vec<_>>()
    );
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_using_eval_or_regex_are_refused() {
    let (sandbox, _) = federation(&[PHELPS]).await;
    let mut officer = admin(&sandbox, PHELPS, "privacy_officer").await;
    let seeded = current(&mut officer).await;
    for row in [
        "p, dispatcher, any, same, eval(p.purpose), emergency_response, allow",
        "p, dispatcher, any, regexMatch(r.owner, p.owner), clinical, emergency_response, allow",
        "p, dispatcher, ^rolla.*$, same, clinical, emergency_response, allow",
        "g2, keyMatch2, south-central-mo",
    ] {
        let preview = officer
            .propose(pb::ProposeRequest {
                change: rows(&[row], &[]),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(!preview.valid && !preview.applicable, "{row}");
        assert!(
            preview
                .problems
                .iter()
                .any(|problem| problem.starts_with("change.add[0]: rule `")),
            "{row}: {:?}",
            preview.problems
        );
        assert!(!preview.tests.unwrap().ran);
        let status = officer
            .apply(apply(1, rows(&[row], &[]), "try a pattern"))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::FailedPrecondition, "{row}");
    }
    // the same in a whole policy file, and in the model
    let whole = |policy: String, model: Option<String>| {
        Some(pb::PolicyChange {
            add: vec![],
            remove: vec![],
            whole: Some(pb::WholePolicy {
                policy_csv: policy,
                roles_csv: None,
                model_conf: model,
            }),
        })
    };
    let status = officer
        .apply(apply(
            1,
            whole(
                format!("{}p, liaison, any, any, clinical, eval(1), allow\n", seeded.policy_csv),
                None,
            ),
            "whole file with eval",
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("policy.csv:") && status.message().contains("eval("),
        "{}",
        status.message()
    );
    let regex_model = seeded
        .model_conf
        .replace("r.field == p.field", "regexMatch(r.field, p.field)");
    assert_ne!(regex_model, seeded.model_conf);
    let status = officer
        .apply(apply(
            1,
            whole(seeded.policy_csv.clone(), Some(regex_model)),
            "regex matcher",
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("regexMatch"), "{}", status.message());
    let after = current(&mut officer).await;
    assert_eq!((after.version, after.content_hash), (1, seeded.content_hash));
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_restores_exactly_the_earlier_decisions() {
    let (sandbox, subjects) = federation(&[PHELPS]).await;
    let phone = covered(&subjects);
    let mut officer = admin(&sandbox, PHELPS, "privacy_officer").await;
    let mut dispatcher = sandbox.client(PHELPS, "dispatcher").await.unwrap();
    let seeded = current(&mut officer).await;
    officer
        .apply(apply(
            1,
            rows(&[CO_RESPONDER, CO_RESPONDER_SAFETY], &[]),
            "co-responders see safety notes",
        ))
        .await
        .unwrap();
    officer
        .apply(apply(2, rows(&[CO_RESPONDER_CONTACTS], &[]), "and contacts"))
        .await
        .unwrap();
    let mut widened = classes(&DISPATCHER);
    widened.extend([FieldClass::Safety, FieldClass::Contacts]);
    assert_eq!(disclosed(&mut dispatcher, phone).await, widened);

    let status = officer
        .rollback(pb::RollbackRequest {
            to_version: 3,
            reason: "no-op".into(),
            expected_version: 3,
        })
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "a rollback goes to an earlier version"
    );
    let rolled = officer
        .rollback(pb::RollbackRequest {
            to_version: 1,
            reason: "the co-responder pilot ended".into(),
            expected_version: 3,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(rolled.applied);
    let version = rolled.version.unwrap();
    assert_eq!(
        (version.version, version.kind.as_str(), version.rolled_back_to),
        (4, "rollback", 1)
    );
    assert_eq!(
        version.content_hash, seeded.content_hash,
        "the content is exactly version 1's"
    );
    let impact = rolled.review.unwrap().impact.unwrap();
    // safety and contacts, at each of the four agencies
    assert_eq!((impact.gained, impact.lost), (0, 8));

    assert_eq!(disclosed(&mut dispatcher, phone).await, classes(&DISPATCHER));
    let diff = officer
        .diff(pb::DiffRequest {
            from_version: 1,
            to_version: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(diff.to_version, 4);
    let rules = diff.rules.unwrap();
    assert!(rules.added.is_empty() && rules.removed.is_empty() && !rules.model_changed);
    let impact = diff.impact.unwrap();
    assert!(
        impact.flips.is_empty() && impact.complete && impact.compared > 1000,
        "{impact:?}"
    );
    let current = current(&mut officer).await;
    assert_eq!(
        (current.policy_csv, current.roles_csv, current.model_conf),
        (seeded.policy_csv, seeded.roles_csv, seeded.model_conf)
    );
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_privacy_officers_of_this_agency_administer_policy() {
    let (sandbox, _) = federation(&[PHELPS, ROLLA]).await;
    let log = sandbox.audit_log(PHELPS).unwrap();
    let denied_before = |log: Arc<flagnet_audit::AuditLog>| async move {
        log.search(AuditQuery {
            action: Some(AuditAction::PolicyChange),
            outcome: Some(AuditOutcome::Denied),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .records
    };
    let mut outsiders = Vec::new();
    for role in ["dispatcher", "records_clerk", "auditor", "liaison"] {
        outsiders.push((format!("{PHELPS}/{role}1"), admin(&sandbox, PHELPS, role).await));
    }
    // another agency's privacy officer, at this node
    outsiders.push((format!("{ROLLA}/privacy_officer1"), {
        let template = ClientProfile::load(&sandbox.profile_path(ROLLA, "privacy_officer")).unwrap();
        let at_phelps = ClientProfile {
            endpoint: format!("https://{}", sandbox.node_addr(PHELPS).unwrap()),
            agency: PHELPS.into(),
            ..template
        };
        PolicyAdminClient::new(at_phelps.connect().await.unwrap())
    }));
    let mut expected_refusals = 0;
    for (who, client) in &mut outsiders {
        let statuses = [
            client.get_policy(pb::GetPolicyRequest { version: 0 }).await.map(|_| ()),
            client
                .propose(pb::ProposeRequest {
                    change: rows(&[CO_RESPONDER], &[]),
                })
                .await
                .map(|_| ()),
            client
                .apply(apply(1, rows(&[CO_RESPONDER], &[]), "let me in"))
                .await
                .map(|_| ()),
            client.history(pb::HistoryRequest::default()).await.map(|_| ()),
            client
                .diff(pb::DiffRequest {
                    from_version: 1,
                    to_version: 1,
                })
                .await
                .map(|_| ()),
            client
                .rollback(pb::RollbackRequest {
                    to_version: 1,
                    reason: "x".into(),
                    expected_version: 0,
                })
                .await
                .map(|_| ()),
            client.list_pending(pb::ListPendingRequest::default()).await.map(|_| ()),
            client
                .approve(pb::ApproveRequest {
                    proposal_id: uuid::Uuid::new_v4().to_string(),
                })
                .await
                .map(|_| ()),
        ];
        for status in statuses {
            let status = status.expect_err(who);
            assert_eq!(status.code(), Code::PermissionDenied, "{who}: {status:?}");
            expected_refusals += 1;
        }
    }
    let denied = denied_before(log.clone()).await;
    assert_eq!(denied.len(), expected_refusals);
    for (who, _) in &outsiders {
        let (agency, user) = who.split_once('/').unwrap();
        let theirs: Vec<_> = denied
            .iter()
            .filter(|r| {
                r.record.actor_agency.as_ref().map(ToString::to_string).as_deref() == Some(agency)
                    && r.record.actor_user.as_ref().map(ToString::to_string).as_deref() == Some(user)
            })
            .collect();
        assert_eq!(theirs.len(), 8, "{who}");
        assert!(
            theirs
                .iter()
                .any(|r| r.record.incident_id.as_deref() == Some("policy:apply"))
        );
        assert!(
            theirs
                .iter()
                .all(|r| r.record.grpc_code == Code::PermissionDenied as u32)
        );
    }
    let mut officer = admin(&sandbox, PHELPS, "privacy_officer").await;
    assert_eq!(current(&mut officer).await.version, 1, "nothing was applied");
    sandbox.shutdown().await;
}

/// Turns the two-person rule on in `agency`'s config and restarts its node.
async fn require_two_people(sandbox: &mut Sandbox, agency: &str) {
    sandbox.stop_node(agency).await.unwrap();
    let path = sandbox.node_config_path(agency).unwrap();
    let config = std::fs::read_to_string(&path).unwrap();
    let edited = config.replacen("[policy]\n", "[policy]\ntwo_person_rule = true\n", 1);
    assert_ne!(edited, config);
    std::fs::write(&path, edited).unwrap();
    sandbox.start_node(agency).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_two_person_rule_holds_an_edit_until_a_second_officer_approves() {
    let (mut sandbox, subjects) = federation(&[PHELPS]).await;
    let phone = covered(&subjects);
    let mut first = admin(&sandbox, PHELPS, "privacy_officer").await;
    first
        .apply(apply(
            1,
            rows(&["g, privacy_officer2, privacy_officer, phelps-so", CO_RESPONDER], &[]),
            "a second privacy officer; dispatcher1 co-responds",
        ))
        .await
        .unwrap();
    require_two_people(&mut sandbox, PHELPS).await;
    let mut first = admin(&sandbox, PHELPS, "privacy_officer").await;
    let mut second = person(&sandbox, PHELPS, "privacy_officer2", PHELPS).await;
    let mut dispatcher = sandbox.client(PHELPS, "dispatcher").await.unwrap();

    let held = first
        .apply(apply(
            2,
            rows(&[CO_RESPONDER_SAFETY], &[]),
            "co-responders see safety notes",
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!held.applied && held.version.is_none());
    let pending = held.pending.unwrap();
    assert_eq!((pending.state.as_str(), pending.base_version), ("pending", 2));
    assert_eq!(pending.rules.as_ref().unwrap().added, [CO_RESPONDER_SAFETY]);
    assert_eq!(pending.impact_summary, "+4/-0 decisions");
    assert_eq!(current(&mut first).await.version, 2, "nothing applies yet");
    assert_eq!(disclosed(&mut dispatcher, phone).await, classes(&DISPATCHER));

    let listed = second
        .list_pending(pb::ListPendingRequest { include_closed: false })
        .await
        .unwrap()
        .into_inner()
        .changes;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].proposal_id, pending.proposal_id);
    assert!(listed[0].proposed_by.ends_with("/user/privacy_officer1"));

    // the proposer cannot be the second person
    let status = first
        .approve(pb::ApproveRequest {
            proposal_id: pending.proposal_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    // a rival change on the same version, made meanwhile
    let rival = first
        .apply(apply(2, rows(&[CO_RESPONDER_CONTACTS], &[]), "contacts instead"))
        .await
        .unwrap()
        .into_inner()
        .pending
        .unwrap();

    let approved = second
        .approve(pb::ApproveRequest {
            proposal_id: pending.proposal_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(approved.applied);
    let version = approved.version.unwrap();
    assert_eq!(version.version, 3);
    assert!(version.author.ends_with("/user/privacy_officer1"));
    assert!(version.approved_by.ends_with("/user/privacy_officer2"));
    assert_eq!(version.proposal_id, pending.proposal_id);
    let mut expected = classes(&DISPATCHER);
    expected.insert(FieldClass::Safety);
    assert_eq!(disclosed(&mut dispatcher, phone).await, expected);

    // twice is refused, and the rival is stale now
    let status = second
        .approve(pb::ApproveRequest {
            proposal_id: pending.proposal_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    let status = second
        .approve(pb::ApproveRequest {
            proposal_id: rival.proposal_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    let all = second
        .list_pending(pb::ListPendingRequest { include_closed: true })
        .await
        .unwrap()
        .into_inner()
        .changes;
    let states: Vec<(&str, &str)> = all
        .iter()
        .map(|change| (change.proposal_id.as_str(), change.state.as_str()))
        .collect();
    assert!(
        states.contains(&(pending.proposal_id.as_str(), "approved")),
        "{states:?}"
    );
    assert!(states.contains(&(rival.proposal_id.as_str(), "stale")), "{states:?}");
    let rejected = first
        .reject(pb::RejectRequest {
            proposal_id: rival.proposal_id.clone(),
            reason: "superseded by version 3".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rejected.state, "rejected");
    assert!(
        second
            .list_pending(pb::ListPendingRequest { include_closed: false })
            .await
            .unwrap()
            .into_inner()
            .changes
            .is_empty()
    );

    // a rollback waits for approval too
    let held = first
        .rollback(pb::RollbackRequest {
            to_version: 2,
            reason: "pilot over".into(),
            expected_version: 3,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!held.applied);
    assert_eq!(held.pending.as_ref().unwrap().kind, "rollback");
    assert_eq!(current(&mut first).await.version, 3);

    let log = sandbox.audit_log(PHELPS).unwrap();
    let lines: Vec<String> = log
        .search(AuditQuery {
            action: Some(AuditAction::PolicyChange),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .records
        .into_iter()
        .filter_map(|r| r.record.incident_id)
        .collect();
    let approve_line = format!(
        "policy:approve {} as v3 (+4/-0 decisions): co-responders see safety notes",
        pending.proposal_id
    );
    assert!(lines.contains(&approve_line), "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|line| line.starts_with("policy:apply pending ") && line.contains(" on v2 (+4/-0 decisions): ")),
        "{lines:?}"
    );
    assert!(lines.contains(&format!("policy:reject {}: superseded by version 3", rival.proposal_id)));
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_applied_version() {
    let (mut sandbox, subjects) = federation(&[PHELPS]).await;
    let phone = covered(&subjects);
    let mut officer = admin(&sandbox, PHELPS, "privacy_officer").await;
    let applied = officer
        .apply(apply(
            1,
            rows(&[CO_RESPONDER, CO_RESPONDER_SAFETY], &[]),
            "co-responders see safety notes",
        ))
        .await
        .unwrap()
        .into_inner()
        .version
        .unwrap();
    sandbox.stop_node(PHELPS).await.unwrap();
    sandbox.start_node(PHELPS).await.unwrap();

    let mut officer = admin(&sandbox, PHELPS, "privacy_officer").await;
    let after = current(&mut officer).await;
    assert_eq!((after.version, after.content_hash), (2, applied.content_hash));
    let mut dispatcher = sandbox.client(PHELPS, "dispatcher").await.unwrap();
    let mut expected = classes(&DISPATCHER);
    expected.insert(FieldClass::Safety);
    assert_eq!(disclosed(&mut dispatcher, phone).await, expected);
    // the policy directory was left as it was: it stays the reviewable source
    let on_disk = std::fs::read_to_string(sandbox.dir().join("policies/policy.csv")).unwrap();
    assert!(!on_disk.contains(CO_RESPONDER_SAFETY));
    sandbox.shutdown().await;
}

/// Lookups run while 100 edits are applied, each swapping what co_responder
/// sees between safety and contacts. Every answer is exactly the old or the
/// new policy's: with both classes or neither, some request would have seen
/// half an edit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_during_100_applies_see_the_old_or_the_new_policy_never_a_mixture() {
    let (sandbox, subjects) = federation(&[PHELPS]).await;
    let phone = covered(&subjects);
    let mut officer = admin(&sandbox, PHELPS, "privacy_officer").await;
    officer
        .apply(apply(
            1,
            rows(&[CO_RESPONDER, CO_RESPONDER_SAFETY], &[]),
            "start with safety",
        ))
        .await
        .unwrap();
    let with = |class: FieldClass| {
        let mut set = classes(&DISPATCHER);
        set.insert(class);
        set
    };
    let allowed = [with(FieldClass::Safety), with(FieldClass::Contacts)];

    let done = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(AtomicUsize::new(0));
    let mut lookers = Vec::new();
    for _ in 0..2 {
        let mut dispatcher = sandbox.client(PHELPS, "dispatcher").await.unwrap();
        let (done, seen, allowed) = (done.clone(), seen.clone(), allowed.clone());
        lookers.push(tokio::spawn(async move {
            let mut kinds = BTreeSet::new();
            while !done.load(Ordering::Relaxed) {
                let got = disclosed(&mut dispatcher, phone).await;
                assert!(allowed.contains(&got), "a lookup saw a mixture: {got:?}");
                kinds.insert(got.contains(&FieldClass::Safety));
                seen.fetch_add(1, Ordering::Relaxed);
            }
            kinds
        }));
    }
    for round in 0..100u64 {
        let (from, to) = if round % 2 == 0 {
            (CO_RESPONDER_SAFETY, CO_RESPONDER_CONTACTS)
        } else {
            (CO_RESPONDER_CONTACTS, CO_RESPONDER_SAFETY)
        };
        let applied = officer
            .apply(apply(round + 2, rows(&[to], &[from]), &format!("swap {round}")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(applied.version.unwrap().version, round + 3);
        // the edit governs the very next request
        let mut dispatcher = sandbox.client(PHELPS, "dispatcher").await.unwrap();
        let class = if round % 2 == 0 {
            FieldClass::Contacts
        } else {
            FieldClass::Safety
        };
        assert_eq!(disclosed(&mut dispatcher, phone).await, with(class));
    }
    done.store(true, Ordering::Relaxed);
    let mut kinds = BTreeSet::new();
    for looker in lookers {
        kinds.extend(looker.await.unwrap());
    }
    assert!(seen.load(Ordering::Relaxed) >= 100, "lookups ran throughout");
    assert_eq!(kinds.len(), 2, "lookups saw both policies");
    assert_eq!(current(&mut officer).await.version, 102);
    sandbox.shutdown().await;
}

/// A version another replica of the node stored (here: written straight
/// into the node's store, as a replica sharing it would) comes into force
/// within the poll interval, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_stored_by_another_replica_comes_into_force() {
    use flagnet_core::{NewPolicyVersion, PolicyChangeKind, Store};
    let (mut sandbox, subjects) = federation(&[PHELPS]).await;
    let phone = covered(&subjects);
    sandbox.stop_node(PHELPS).await.unwrap();
    let path = sandbox.node_config_path(PHELPS).unwrap();
    let config = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        config.replacen("[policy]\n", "[policy]\npoll_interval_ms = 200\n", 1),
    )
    .unwrap();
    sandbox.start_node(PHELPS).await.unwrap();

    let config = flagnet_server::NodeConfig::load(&path).unwrap();
    let key = flagnet_store::DataKey::load(&config.store.data_key_file).unwrap();
    let replica = flagnet_store::SqliteStore::open(&config.store.path, key, 1).unwrap();
    let agency = AgencyId::parse(PHELPS).unwrap();
    let latest = replica.latest_policy_version(&agency).await.unwrap().unwrap();
    let mut content = latest.content.clone();
    content.policy.push_str(&format!("{CO_RESPONDER_SAFETY}\n"));
    content.roles.push_str(&format!("{CO_RESPONDER}\n"));
    replica
        .append_policy_version(NewPolicyVersion {
            agency: agency.clone(),
            base_version: latest.version,
            author: "spiffe://flagnet.demo/agency/phelps-so/user/privacy_officer1".into(),
            created_at: time::OffsetDateTime::now_utc(),
            reason: "applied at the other replica".into(),
            kind: PolicyChangeKind::Edit,
            content,
            impact_summary: "+4/-0 decisions".into(),
            proposal: None,
            approval: None,
        })
        .await
        .unwrap();

    let mut dispatcher = sandbox.client(PHELPS, "dispatcher").await.unwrap();
    let mut expected = classes(&DISPATCHER);
    expected.insert(FieldClass::Safety);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while disclosed(&mut dispatcher, phone).await != expected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the node never took up version 2"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // and an edit here is made against it
    let mut officer = admin(&sandbox, PHELPS, "privacy_officer").await;
    let status = officer
        .apply(apply(1, rows(&[CO_RESPONDER_CONTACTS], &[]), "stale"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted);
    officer
        .apply(apply(2, rows(&[CO_RESPONDER_CONTACTS], &[]), "contacts too"))
        .await
        .unwrap();
    sandbox.shutdown().await;
}
