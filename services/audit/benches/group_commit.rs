//! Group commit against one durable commit per record, on the same rows
//! with the same pragmas (WAL, `synchronous=FULL`), in the same run:
//!
//! - `group_commit/{1,16,64}`: that many concurrent writers appending
//!   through `AuditLog` (queue, writer task, batching, checkpoints);
//! - `raw_insert/one_commit_per_row`: the store's own insert of the same
//!   prepared rows, one transaction (and fsync) per row, no writer task;
//! - `raw_insert/one_commit_for_all`: the same rows in one transaction, the
//!   ceiling no per-request durability can reach.
//!
//! After criterion's groups, a fixed-size run prints the ratios the audit
//! issue asks for. Run with `cargo bench -p flagnet-audit --bench group_commit`.

use criterion::{Criterion, Throughput};
use flagnet_audit::store::{FaultInjector, PreparedEntry, commit_batch, open_writer};
use flagnet_audit::{
    AuditAction, AuditLog, AuditLogConfig, AuditOutcome, AuditRecord, CheckpointSigner, DisclosedFields,
};
use flagnet_core::{AgencyId, FieldClass, Purpose, RoleName, UserId};
use std::path::Path;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use uuid::Uuid;

fn record(n: u64) -> AuditRecord {
    let mut record = AuditRecord::new(OffsetDateTime::now_utc(), Uuid::new_v4(), AuditAction::Lookup);
    record.outcome = AuditOutcome::Ok;
    record.grpc_code = 0;
    record.actor_agency = Some(AgencyId::parse("rolla-pd").unwrap());
    record.actor_user = Some(UserId::parse("d.jones").unwrap());
    record.actor_roles = vec![RoleName::parse("dispatcher").unwrap()];
    record.caller_identity = Some("spiffe://mo/agency/rolla-pd/user/d.jones".into());
    record.caller_fingerprint = Some([0xaa; 32]);
    record.incident_id = Some(format!("CAD-{n}"));
    record.purpose = Some(Purpose::EmergencyResponse);
    record.subject_refs = vec![[(n % 251) as u8; 32], [0x11; 32]];
    record.disclosed = vec![DisclosedFields {
        owner_agency: AgencyId::parse("phelps-so").unwrap(),
        flag_id: Uuid::from_u128(u128::from(n)),
        classes: [FieldClass::Presence, FieldClass::Response].into_iter().collect(),
    }];
    record
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn open_log(dir: &Path) -> AuditLog {
    std::fs::create_dir_all(dir).unwrap();
    let config = AuditLogConfig::new(dir.join("audit.sqlite"));
    AuditLog::open(
        config,
        CheckpointSigner::generate(AgencyId::parse("phelps-so").unwrap()),
    )
    .await
    .unwrap()
}

/// Appends `total` records from `writers` concurrent tasks; returns the time.
async fn group_commit_run(log: &AuditLog, writers: u64, total: u64) -> Duration {
    let per_writer = total.div_ceil(writers);
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|writer| {
            let log = log.clone();
            tokio::spawn(async move {
                for n in 0..per_writer {
                    log.append(record(writer * per_writer + n)).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    started.elapsed()
}

/// Inserts `total` prepared rows through the store, `per_commit` per
/// transaction, into a fresh file; returns the time.
fn raw_insert_run(dir: &Path, total: u64, per_commit: u64) -> Duration {
    let path = dir.join(format!("raw-{}.sqlite", Uuid::new_v4()));
    let mut conn = open_writer(&path).unwrap();
    let faults = FaultInjector::new();
    let entries: Vec<PreparedEntry> = (0..total).map(|n| PreparedEntry::new(n, &record(n))).collect();
    let started = Instant::now();
    for chunk in entries.chunks(per_commit as usize) {
        commit_batch(&mut conn, chunk, None, &faults).unwrap();
    }
    started.elapsed()
}

fn benches(c: &mut Criterion) {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("audit_append");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(1));
    for writers in [1u64, 16, 64] {
        let log = runtime.block_on(open_log(&dir.path().join(format!("group-{writers}"))));
        group.bench_function(format!("group_commit/{writers}"), |b| {
            b.iter_custom(|iters| runtime.block_on(group_commit_run(&log, writers, iters.max(writers))))
        });
        runtime.block_on(log.shutdown());
    }
    group.bench_function("raw_insert/one_commit_per_row", |b| {
        b.iter_custom(|iters| raw_insert_run(dir.path(), iters, 1))
    });
    group.bench_function("raw_insert/one_commit_for_all", |b| {
        b.iter_custom(|iters| raw_insert_run(dir.path(), iters, iters))
    });
    group.finish();
}

/// The ratios, from one fixed-size run of each, printed as a table.
fn ratio_report() {
    const ROWS: u64 = 2000;
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    let rate = |elapsed: Duration| ROWS as f64 / elapsed.as_secs_f64();
    let raw_per_row = rate(raw_insert_run(dir.path(), ROWS, 1));
    let raw_all = rate(raw_insert_run(dir.path(), ROWS, ROWS));
    println!("\naudit group commit, {ROWS} records each (records/s, ratio to raw inserts):");
    println!("  raw insert, one commit per row : {raw_per_row:>10.0}/s");
    println!("  raw insert, one commit for all : {raw_all:>10.0}/s");
    for writers in [1u64, 16, 64] {
        let log_dir = dir.path().join(format!("report-{writers}"));
        let (appends_per_second, commits) = runtime.block_on(async {
            let log = open_log(&log_dir).await;
            let elapsed = group_commit_run(&log, writers, ROWS).await;
            let commits = log.stats().commits;
            log.shutdown().await;
            (rate(elapsed), commits)
        });
        println!(
            "  group commit, {writers:>2} writers       : {appends_per_second:>10.0}/s  \
             ÷ per-row {:>6.2}  ÷ all-in-one {:>5.2}  ({commits} commits)",
            appends_per_second / raw_per_row,
            appends_per_second / raw_all,
        );
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();
    ratio_report();
}
