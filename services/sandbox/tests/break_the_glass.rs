//! Break-the-glass over real nodes: an override with a written reason is
//! granted what the policy names for it, without consent, marked in the
//! audit log, and opens a review item for the owner's privacy officer.

use flagnet_audit::AuditAction;
use flagnet_proto::v1 as pb;
use flagnet_proto::v1::policy_admin_client::PolicyAdminClient;
use flagnet_sandbox::seed::ConsentCase;
use flagnet_sandbox::{Sandbox, SandboxOptions, seed_demo};
use tonic::Code;

const PHELPS: &str = "phelps-so";
const ROLLA: &str = "rolla-pd";

fn override_lookup(phone: &str, reason: &str) -> pb::LookupRequest {
    pb::LookupRequest {
        subject: Some(pb::SubjectQuery {
            key: Some(pb::subject_query::Key::Phone(phone.into())),
        }),
        purpose: "emergency_override".into(),
        incident_id: "CAD-2026-1201-0099".into(),
        scope: pb::LookupScope::Federated as i32,
        override_reason: reason.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_discloses_marks_and_opens_a_review() {
    let sandbox = Sandbox::start(SandboxOptions {
        agencies: vec![PHELPS.into(), ROLLA.into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let subjects = seed_demo(&sandbox).await.unwrap();
    let unconsented = subjects
        .iter()
        .find(|s| s.agency == PHELPS && s.consent == ConsentCase::None)
        .unwrap()
        .clone();
    let reason = "man on the Hwy 63 bridge threatening to jump; need the crisis plan";

    // without consent, normal purposes find nothing
    let mut liaison = sandbox.client(ROLLA, "liaison").await.unwrap();
    let normal = pb::LookupRequest {
        purpose: "crisis_followup".into(),
        override_reason: String::new(),
        ..override_lookup(unconsented.phone, "")
    };
    assert!(liaison.lookup(normal).await.unwrap().into_inner().matches.is_empty());

    // an override needs a reason
    let status = liaison
        .lookup(override_lookup(unconsented.phone, "  "))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    // a neighbouring liaison's override: granted what the policy names, clinical included
    let answer = liaison
        .lookup(override_lookup(unconsented.phone, reason))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.matches.len(), 1, "{:?}", answer.peers);
    assert_eq!(answer.matches[0].owner_agency, PHELPS);
    assert!(answer.matches[0].clinical.is_some());

    // a dispatcher has no override in the policy: nothing, and no review item
    let mut dispatcher = sandbox.client(ROLLA, "dispatcher").await.unwrap();
    assert!(
        dispatcher
            .lookup(override_lookup(unconsented.phone, reason))
            .await
            .unwrap()
            .into_inner()
            .matches
            .is_empty()
    );

    // the owner's log marks the override with its reason, under the asking node's request id
    let owner_log = sandbox.audit_log(PHELPS).unwrap();
    let request_id: uuid::Uuid = answer.request_id.parse().unwrap();
    let records = owner_log
        .search(flagnet_audit::AuditQuery {
            request_id: Some(request_id),
            ..Default::default()
        })
        .await
        .unwrap()
        .records;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].record.action, AuditAction::FederatedQuery);
    assert!(records[0].record.override_used);
    assert_eq!(records[0].record.override_reason.as_deref(), Some(reason));

    // exactly one review item, for the owner's privacy officer only
    let mut officer = PolicyAdminClient::new(sandbox.channel(PHELPS, "privacy_officer").await.unwrap());
    let queue = officer
        .review_queue(pb::ReviewQueueRequest {
            include_resolved: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(queue.items.len(), 1);
    let item = &queue.items[0];
    assert_eq!(item.request_id, answer.request_id);
    assert_eq!(
        (item.actor_agency.as_str(), item.actor_user.as_str()),
        (ROLLA, "liaison1")
    );
    assert_eq!(item.reason, reason);
    assert!(item.field_classes.contains(&(pb::FieldClass::Clinical as i32)));
    let mut auditor = PolicyAdminClient::new(sandbox.channel(PHELPS, "auditor").await.unwrap());
    assert_eq!(
        auditor
            .review_queue(pb::ReviewQueueRequest { include_resolved: true })
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let mut rolla_officer = PolicyAdminClient::new(sandbox.channel(ROLLA, "privacy_officer").await.unwrap());
    assert!(
        rolla_officer
            .review_queue(pb::ReviewQueueRequest { include_resolved: true })
            .await
            .unwrap()
            .into_inner()
            .items
            .is_empty()
    );

    let resolve = pb::ResolveReviewRequest {
        review_id: item.review_id.clone(),
        justified: true,
        note: "documented crisis, CAD confirms".into(),
    };
    let resolved = officer.resolve_review(resolve.clone()).await.unwrap().into_inner();
    assert!(resolved.justified && !resolved.resolved_at.is_empty());
    assert!(resolved.resolved_by.ends_with("/user/privacy_officer1"));
    assert_eq!(
        officer.resolve_review(resolve).await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    assert!(
        officer
            .review_queue(pb::ReviewQueueRequest {
                include_resolved: false
            })
            .await
            .unwrap()
            .into_inner()
            .items
            .is_empty()
    );
    sandbox.shutdown().await;
}
