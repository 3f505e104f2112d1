//! Swapping the policy while requests decide: every decision is exactly the
//! old snapshot's or exactly the new one's, never a mixture, and a request
//! that holds a snapshot keeps it across a swap.

mod support;

use flagnet_core::{FieldClass, Purpose};
use flagnet_policy::{DecisionEngine, Disclosure, PolicySnapshot, RuleSet, parse_rules};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use support::{NOW, active_flag, actor, consent};

const MODEL: &str = include_str!("../../../policies/model.conf");

/// Old and new differ in every part a decision reads: the classes granted,
/// the role inheritance that grants them, and the region the consent names.
const OLD: &str = "
g2, rolla-pd, south-central-mo
g2, phelps-so, south-central-mo
g3, cit_officer, officer
p, officer, south-central-mo, south-central-mo, presence, emergency_response, allow
p, officer, south-central-mo, south-central-mo, response, emergency_response, allow
p, officer, south-central-mo, south-central-mo, safety, emergency_response, allow
";
const NEW: &str = "
g2, rolla-pd, ozarks
g2, phelps-so, ozarks
g3, cit_officer, liaison
p, liaison, ozarks, ozarks, presence, emergency_response, allow
p, liaison, ozarks, ozarks, contacts, emergency_response, allow
p, liaison, ozarks, ozarks, identity, emergency_response, allow
p, liaison, ozarks, ozarks, clinical, emergency_response, allow
";

async fn snapshot(text: &str) -> PolicySnapshot {
    let rules = RuleSet {
        model: MODEL.to_owned(),
        rules: parse_rules("swap", text).unwrap(),
    };
    PolicySnapshot::build(rules, &[]).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_decision_mixes_the_old_and_the_new_policy() {
    let engine = Arc::new(DecisionEngine::new(snapshot(OLD).await));
    let flag = Arc::new(active_flag("phelps-so"));
    // Each consent is covered under one policy only (its region, its role),
    // so a decision that took the policy from one snapshot and the consent
    // coverage from the other would come out as neither.
    let consents = Arc::new(vec![
        consent(
            &flag,
            &["south-central-mo"],
            &["officer"],
            &[FieldClass::Presence, FieldClass::Response],
        ),
        consent(
            &flag,
            &["ozarks"],
            &["liaison"],
            &[FieldClass::Presence, FieldClass::Contacts, FieldClass::Clinical],
        ),
    ]);
    let cit = actor("rolla-pd", &["cit_officer"]);
    let decide = |engine: &DecisionEngine| engine.decide(&cit, Purpose::EmergencyResponse, &flag, &consents, NOW);
    let old_decision = decide(&engine);
    engine.replace(snapshot(NEW).await);
    let new_decision = decide(&engine);
    let names = |decision: &Disclosure| decision.allowed().iter().collect::<Vec<_>>();
    assert_eq!(names(&old_decision), [FieldClass::Presence, FieldClass::Response]);
    assert_eq!(
        names(&new_decision),
        [FieldClass::Presence, FieldClass::Contacts, FieldClass::Clinical]
    );

    let done = Arc::new(AtomicBool::new(false));
    let deciders: Vec<_> = (0..4)
        .map(|_| {
            let (engine, flag, consents, cit, done) = (
                engine.clone(),
                flag.clone(),
                consents.clone(),
                cit.clone(),
                done.clone(),
            );
            let (old_decision, new_decision) = (old_decision.clone(), new_decision.clone());
            std::thread::spawn(move || {
                let (mut saw_old, mut saw_new, mut decisions) = (0u64, 0u64, 0u64);
                while !done.load(Ordering::Relaxed) || decisions < 1_000 {
                    let decision: Disclosure = engine.decide(&cit, Purpose::EmergencyResponse, &flag, &consents, NOW);
                    if decision == old_decision {
                        saw_old += 1;
                    } else if decision == new_decision {
                        saw_new += 1;
                    } else {
                        panic!("a mixed decision: {decision:?}");
                    }
                    decisions += 1;
                }
                (saw_old, saw_new)
            })
        })
        .collect();
    let (old, new) = (Arc::new(snapshot(OLD).await), Arc::new(snapshot(NEW).await));
    for swap in 0..400 {
        let next = if swap % 2 == 0 { &old } else { &new };
        engine.replace(snapshot_copy(next).await);
        tokio::task::yield_now().await;
    }
    done.store(true, Ordering::Relaxed);
    let (mut saw_old, mut saw_new) = (0, 0);
    for decider in deciders {
        let (old_seen, new_seen) = decider.join().expect("no decider saw a mixture");
        saw_old += old_seen;
        saw_new += new_seen;
    }
    assert!(
        saw_old > 0 && saw_new > 0,
        "both policies were seen: {saw_old} old, {saw_new} new"
    );
}

/// A fresh snapshot of the same policy as `of` (snapshots are not `Clone`).
async fn snapshot_copy(of: &PolicySnapshot) -> PolicySnapshot {
    PolicySnapshot::build(of.rules().clone(), &[]).await.unwrap()
}

#[tokio::test]
async fn a_request_holding_a_snapshot_keeps_it_across_a_swap() {
    let engine = DecisionEngine::new(snapshot(OLD).await);
    let held = engine.snapshot();
    engine.replace(snapshot(NEW).await);
    let officer = [support::role("officer")];
    let (rolla, phelps) = (support::agency("rolla-pd"), support::agency("phelps-so"));
    assert!(
        held.allowed_classes(&officer, &rolla, &phelps, Purpose::EmergencyResponse)
            .contains(FieldClass::Safety)
    );
    assert!(
        engine
            .snapshot()
            .allowed_classes(&officer, &rolla, &phelps, Purpose::EmergencyResponse)
            .is_empty()
    );
}
