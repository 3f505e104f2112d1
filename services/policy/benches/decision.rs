//! A decision costs the same with 100, 1,000 or 10,000 rules.
//!
//! The default policy is grown with synthetic rules for other agencies and
//! roles (`tests/support/synthetic.rs`), so the real decisions stay the same;
//! setup checks that by running `policies/tests/cases.csv` against every size.
//! `decide` is the engine's whole decision (policy, consent, lifecycle) for a
//! neighbouring officer; `decide_override` is a liaison's break-the-glass;
//! `casbin_enforce` is one casbin-rs `enforce()` on the same snapshot, which
//! scans every rule, for contrast.
//!
//! Run: `cargo bench -p flagnet-policy --bench decision -- --warm-up-time 1 --measurement-time 3`

#[path = "../tests/support/synthetic.rs"]
mod synthetic;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use flagnet_core::{
    AgencyId, Consent, ConsentBasis, ConsentElements, ConsentScope, FieldClass, Flag, FlagContent, FlagStatus, Purpose,
    RoleName,
};
use flagnet_policy::{
    Actor, CrossCheck, DecisionEngine, Disclosure, PolicySnapshot, parse_policy_tests, run_policy_tests_on,
};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;
use time::OffsetDateTime;
use time::macros::datetime;
use uuid::Uuid;

const SIZES: [usize; 3] = [100, 1_000, 10_000];
const NOW: OffsetDateTime = datetime!(2026-12-01 12:00 UTC);

fn policies() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies"))
}

fn actor(agency: &str, role: &str) -> Actor {
    Actor {
        agency: AgencyId::parse(agency).unwrap(),
        user: None,
        roles: vec![RoleName::parse(role).unwrap()],
    }
}

fn flag() -> Flag {
    Flag {
        id: Uuid::new_v4(),
        owner: AgencyId::parse("phelps-so").unwrap(),
        status: FlagStatus::Active,
        review_date: Some(datetime!(2027-06-30 0:00 UTC).date()),
        basis: None,
        content: FlagContent::default(),
        subject_tokens: vec![],
        created_at: datetime!(2026-01-01 0:00 UTC),
        updated_at: datetime!(2026-01-01 0:00 UTC),
        updated_by: String::new(),
        revision: 1,
    }
}

fn consent(flag: &Flag) -> Consent {
    Consent {
        id: Uuid::new_v4(),
        flag_id: flag.id,
        owner: flag.owner.clone(),
        basis: ConsentBasis::Subject,
        elements: ConsentElements {
            subject_name: "Jordan Avery".into(),
            granted_by: String::new(),
            disclosing_party: "Phelps County Sheriff".into(),
            information_description: "crisis flag".into(),
            purpose_description: "crisis response".into(),
            revocation_instructions: "in writing".into(),
            expiry_event: String::new(),
            signature_reference: "form-1".into(),
            signed_on: None,
        },
        scope: ConsentScope {
            recipients: vec![AgencyId::parse("south-central-mo").unwrap()],
            roles: ["dispatcher", "officer", "liaison"]
                .iter()
                .map(|role| RoleName::parse(role).unwrap())
                .collect(),
            purposes: Purpose::ALL.to_vec(),
            field_classes: FieldClass::ALL.to_vec(),
        },
        valid_from: datetime!(2026-01-01 0:00 UTC),
        valid_until: Some(datetime!(2027-01-01 0:00 UTC)),
        recorded_at: datetime!(2026-01-01 0:00 UTC),
        recorded_by: String::new(),
        revocation: None,
    }
}

/// Builds each size once, checks the real decisions did not move, and
/// reports how long each build took.
fn engines() -> Vec<(usize, DecisionEngine)> {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let cases_text = std::fs::read_to_string(policies().join("tests/cases.csv")).unwrap();
    let cases = parse_policy_tests("cases.csv", &cases_text).unwrap();
    SIZES
        .into_iter()
        .map(|total| {
            let rules = synthetic::grown_policy(&policies(), total);
            assert_eq!(rules.rules.len(), total);
            let started = Instant::now();
            let snapshot = runtime.block_on(PolicySnapshot::build(rules, &[])).unwrap();
            let built_in = started.elapsed();
            assert!(snapshot.is_compiled());
            let report = run_policy_tests_on(&snapshot, &cases, CrossCheck::SnapshotOnly);
            assert!(report.passed(), "the policy tests fail at {total} rules");
            eprintln!(
                "{total} rules: snapshot built in {built_in:?}; {} policy test rows pass",
                report.rows()
            );
            (total, DecisionEngine::new(snapshot))
        })
        .collect()
}

fn decisions(criterion: &mut Criterion) {
    let engines = engines();
    let flag = flag();
    let consents = [consent(&flag)];
    let neighbour_officer = actor("rolla-pd", "officer");
    let neighbour_liaison = actor("pulaski-so", "liaison");
    let expected: Vec<Disclosure> = engines
        .iter()
        .map(|(_, engine)| engine.decide(&neighbour_officer, Purpose::EmergencyResponse, &flag, &consents, NOW))
        .collect();
    assert!(expected.windows(2).all(|pair| pair[0] == pair[1]));
    assert_eq!(expected[0].allowed().iter().count(), 3);

    let mut group = criterion.benchmark_group("decide");
    for (total, engine) in &engines {
        group.bench_with_input(BenchmarkId::from_parameter(total), engine, |bencher, engine| {
            bencher.iter(|| {
                engine.decide(
                    black_box(&neighbour_officer),
                    Purpose::EmergencyResponse,
                    black_box(&flag),
                    black_box(&consents),
                    NOW,
                )
            })
        });
    }
    group.finish();

    let mut group = criterion.benchmark_group("decide_override");
    for (total, engine) in &engines {
        group.bench_with_input(BenchmarkId::from_parameter(total), engine, |bencher, engine| {
            bencher.iter(|| {
                let disclosure = engine.decide(
                    black_box(&neighbour_liaison),
                    Purpose::EmergencyOverride,
                    black_box(&flag),
                    &[],
                    NOW,
                );
                debug_assert!(disclosure.is_override());
                disclosure
            })
        });
    }
    group.finish();

    let mut group = criterion.benchmark_group("casbin_enforce");
    group.sample_size(10);
    let (officer, rolla, phelps) = (
        RoleName::parse("officer").unwrap(),
        AgencyId::parse("rolla-pd").unwrap(),
        AgencyId::parse("phelps-so").unwrap(),
    );
    for (total, engine) in &engines {
        let snapshot = engine.snapshot();
        group.bench_with_input(BenchmarkId::from_parameter(total), &snapshot, |bencher, snapshot| {
            bencher
                .iter(|| snapshot.casbin_allows(black_box(&officer), &rolla, &phelps, "safety", "emergency_response"))
        });
    }
    group.finish();
}

criterion_group!(benches, decisions);
criterion_main!(benches);
