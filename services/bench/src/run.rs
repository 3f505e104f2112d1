//! One run, phase by phase, on 127.0.0.1:
//!
//! 1. policies of `policy_small` and `policy_large` rules;
//! 2. a federation of four nodes (the home node `phelps-so` and three
//!    peers), each bulk-loaded with `flags` subjects;
//! 3. one fsync on the home node's disk, timed;
//! 4. the echo baseline, sized like a real lookup and its answer, closed
//!    loop and saturated;
//! 5. local lookups (durable audit log), closed loop and saturated;
//!    federated lookups over the three peers;
//! 6. the home node restarted on a null audit sink: local lookups again;
//! 7. one peer stopped and black-holed: federated lookups;
//! 8. a second, one-node federation on the large policy: local lookups;
//! 9. the home node as a child process at `flags` and, after bulk-loading
//!    up to `big_flags`, again: local lookups and resident memory.
//!
//! Every lookup asks for a subject drawn from the loaded ones and checks
//! the answer (the right flags, the right classes, the right peer states).

use crate::child::ChildNode;
use crate::echo::{EchoServer, pb as echo_pb, sized_request};
use crate::load::{Latency, Throughput, closed_loop, mix, saturated};
use crate::progress::Progress;
use crate::report::{LatencySummary, Measurements, Report, SeedingSummary, ThroughputSummary};
use crate::subjects::{self, HOME, PEERS};
use crate::{BenchError, BenchOptions, fsync, policy};
use flagnet_audit::NullAuditSink;
use flagnet_proto::v1 as pb;
use flagnet_proto::v1::flag_index_client::FlagIndexClient;
use flagnet_sandbox::{FederationTiming, Sandbox, SandboxOptions};
use flagnet_server::NodeConfig;
use flagnet_trust::client::ClientProfile;
use prost::Message;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tonic::transport::Channel;

/// How a lookup's answer is checked.
type Check = fn(&pb::LookupResponse) -> Result<(), String>;

fn check_local(answer: &pb::LookupResponse) -> Result<(), String> {
    if answer.matches.len() != 1 || !answer.peers.is_empty() {
        return Err(format!(
            "a local lookup found {} matches and asked {} peers",
            answer.matches.len(),
            answer.peers.len()
        ));
    }
    subjects::check_match(&answer.matches[0], HOME)
}

fn check_federated(answer: &pb::LookupResponse) -> Result<(), String> {
    if !answer.complete || answer.peers.len() != PEERS.len() || answer.matches.len() != 1 + PEERS.len() {
        return Err(format!(
            "a federated lookup was {}complete with {} matches from {} peers",
            if answer.complete { "" } else { "in" },
            answer.matches.len(),
            answer.peers.len()
        ));
    }
    for owner in std::iter::once(HOME).chain(PEERS) {
        let found = answer
            .matches
            .iter()
            .find(|found| found.owner_agency == owner)
            .ok_or_else(|| format!("no match from {owner}"))?;
        subjects::check_match(found, owner)?;
    }
    Ok(())
}

fn check_black_hole(answer: &pb::LookupResponse) -> Result<(), String> {
    let dead = PEERS[PEERS.len() - 1];
    let dead_state = answer
        .peers
        .iter()
        .find(|peer| peer.agency == dead)
        .map(|peer| peer.state())
        .ok_or_else(|| format!("no status for the black-holed peer {dead}"))?;
    if answer.complete || !matches!(dead_state, pb::PeerState::Timeout | pb::PeerState::Unavailable) {
        return Err(format!("the black-holed peer was reported {dead_state:?}"));
    }
    if answer.matches.len() != PEERS.len() {
        return Err(format!(
            "{} matches with one of four nodes black-holed, expected {}",
            answer.matches.len(),
            PEERS.len()
        ));
    }
    Ok(())
}

fn status_text(status: tonic::Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

/// Where a run writes: a fresh directory under `dir`, or a temporary one.
struct WorkDir {
    path: PathBuf,
    _temporary: Option<tempfile::TempDir>,
}

impl WorkDir {
    fn new(dir: Option<&Path>) -> Result<Self, BenchError> {
        match dir {
            Some(dir) => {
                let stamp = OffsetDateTime::now_utc().unix_timestamp();
                let path = dir.join(format!("run-{stamp}"));
                std::fs::create_dir_all(&path).map_err(|error| BenchError::setup("work dir", error))?;
                Ok(Self {
                    path,
                    _temporary: None,
                })
            }
            None => {
                let temporary = tempfile::Builder::new()
                    .prefix("flagnet-bench-")
                    .tempdir()
                    .map_err(|error| BenchError::setup("work dir", error))?;
                Ok(Self {
                    path: temporary.path().to_owned(),
                    _temporary: Some(temporary),
                })
            }
        }
    }
}

/// Loads subjects `indices` into `agency`'s store, with a progress bar.
async fn seed(
    sandbox: &Sandbox,
    agency: &str,
    indices: std::ops::Range<u64>,
    progress: &Progress,
) -> Result<SeedingSummary, BenchError> {
    let count = indices.end - indices.start;
    let bar = progress.bar(&format!("bulk seeding {agency}"), count);
    let shown = bar.clone();
    let now = OffsetDateTime::now_utc();
    let owner = agency.to_owned();
    let started = Instant::now();
    let loaded = sandbox
        .bulk_seed(
            agency,
            indices,
            move |index| subjects::subject(&owner, index, now),
            move |total| shown.set_position(total),
        )
        .await?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    Ok(SeedingSummary {
        flags: loaded,
        secs,
        flags_per_second: loaded as f64 / secs.max(1e-9),
    })
}

fn node_config(sandbox: &Sandbox, agency: &str) -> Result<NodeConfig, BenchError> {
    NodeConfig::load(&sandbox.node_config_path(agency)?).map_err(|error| BenchError::setup("node config", error))
}

async fn restart(sandbox: &mut Sandbox, agency: &str) -> Result<(), BenchError> {
    sandbox.stop_node(agency).await?;
    sandbox.start_node(agency).await?;
    Ok(())
}

/// Dispatcher clients of `agency`, each on its own connection.
async fn dispatchers(sandbox: &Sandbox, count: usize) -> Result<Vec<FlagIndexClient<Channel>>, BenchError> {
    let mut clients = Vec::with_capacity(count);
    for _ in 0..count {
        clients.push(sandbox.client(HOME, "dispatcher").await?);
    }
    Ok(clients)
}

/// Closed-loop lookups of random subjects among the first `population`.
async fn lookup_latency(
    sandbox: &Sandbox,
    label: &str,
    options: &BenchOptions,
    progress: &Progress,
    scope: pb::LookupScope,
    population: u64,
    check: Check,
) -> Result<Latency, BenchError> {
    lookup_latency_with(sandbox, label, progress, scope, population, check, options.warmup, options.samples, 1).await
}

#[allow(clippy::too_many_arguments)]
async fn lookup_latency_with(
    sandbox: &Sandbox,
    label: &str,
    progress: &Progress,
    scope: pb::LookupScope,
    population: u64,
    check: Check,
    warmup: usize,
    samples: usize,
    parallel: usize,
) -> Result<Latency, BenchError> {
    progress.phase(&format!("{label}: {samples} samples, {parallel} in flight"));
    let client = sandbox.client(HOME, "dispatcher").await?;
    Ok(closed_loop(label, progress, warmup, samples, parallel, move |sequence| {
        let mut client = client.clone();
        async move {
            let request = subjects::lookup(mix(sequence) % population, scope);
            let answer = client.lookup(request).await.map_err(status_text)?.into_inner();
            check(&answer)
        }
    })
    .await)
}

/// Saturated local lookups.
async fn lookup_throughput(
    sandbox: &Sandbox,
    label: &str,
    options: &BenchOptions,
    progress: &Progress,
    population: u64,
) -> Result<Throughput, BenchError> {
    progress.phase(&format!(
        "{label}: {} in flight over {} connections for {} s",
        options.in_flight, options.connections, options.throughput_secs
    ));
    let clients = dispatchers(sandbox, options.connections).await?;
    Ok(saturated(
        label,
        progress,
        options.in_flight,
        Duration::from_secs_f64(options.throughput_warmup_secs),
        Duration::from_secs_f64(options.throughput_secs),
        move |worker, sequence| {
            let mut client = clients[worker % clients.len()].clone();
            async move {
                let index = mix(sequence ^ ((worker as u64) << 40)) % population;
                let answer = client
                    .lookup(subjects::lookup(index, pb::LookupScope::Local))
                    .await
                    .map_err(status_text)?
                    .into_inner();
                check_local(&answer)
            }
        },
    )
    .await)
}

/// The echo baseline, closed loop and saturated.
async fn echo_baseline(
    sandbox: &Sandbox,
    options: &BenchOptions,
    progress: &Progress,
    request: echo_pb::EchoRequest,
) -> Result<(Latency, Throughput), BenchError> {
    let config = node_config(sandbox, HOME)?;
    let server = EchoServer::start(&config).await?;
    let mut profile = ClientProfile::load(&sandbox.profile_path(HOME, "dispatcher"))
        .map_err(|error| BenchError::setup("echo client", error))?;
    profile.endpoint = format!("https://{}", server.addr());
    let mut clients = Vec::with_capacity(options.connections);
    for _ in 0..options.connections {
        let channel = profile
            .connect()
            .await
            .map_err(|error| BenchError::setup("echo client", error))?;
        clients.push(echo_pb::echo_client::EchoClient::new(channel));
    }
    let expected_reply = request.reply_bytes as usize;
    let echo = move |mut client: echo_pb::echo_client::EchoClient<Channel>, request: echo_pb::EchoRequest| async move {
        let reply = client.echo(request).await.map_err(status_text)?.into_inner();
        if reply.payload.len() != expected_reply {
            return Err(format!("an echo of {} bytes, expected {expected_reply}", reply.payload.len()));
        }
        Ok(())
    };
    progress.phase(&format!("echo baseline: {} samples, 1 in flight", options.samples));
    let single = clients[0].clone();
    let single_request = request.clone();
    let latency = closed_loop("echo", progress, options.warmup, options.samples, 1, move |_| {
        echo(single.clone(), single_request.clone())
    })
    .await;
    progress.phase(&format!(
        "echo baseline: {} in flight over {} connections for {} s",
        options.in_flight, options.connections, options.throughput_secs
    ));
    let throughput = saturated(
        "echo saturated",
        progress,
        options.in_flight,
        Duration::from_secs_f64(options.throughput_warmup_secs),
        Duration::from_secs_f64(options.throughput_secs),
        move |worker, _| echo(clients[worker % clients.len()].clone(), request.clone()),
    )
    .await;
    server.shutdown().await;
    Ok((latency, throughput))
}

/// The four-node federation every scenario but R4's runs on.
async fn start_federation(
    root: &Path,
    options: &BenchOptions,
    progress: &Progress,
    policy_dir: PathBuf,
) -> Result<Sandbox, BenchError> {
    progress.phase("starting the federation: phelps-so (home), rolla-pd, pulaski-so, dent-so on 127.0.0.1");
    let sandbox = Sandbox::start(SandboxOptions {
        dir: Some(root.join("federation")),
        agencies: std::iter::once(HOME).chain(PEERS).map(str::to_owned).collect(),
        federation_timing: FederationTiming {
            peer_timeout_ms: options.peer_deadline_ms,
            // the worst case for R3: the breaker never spares a lookup the
            // dead peer's deadline (it opens only after 100 failures, for 10 ms)
            breaker_failures: 100,
            breaker_cooldown_ms: 10,
            ..FederationTiming::default()
        },
        policy_dir: Some(policy_dir),
        ..SandboxOptions::default()
    })
    .await?;
    Ok(sandbox)
}

/// The sizes of a real lookup and its answer, for the echo to mirror.
async fn lookup_sizes(sandbox: &Sandbox) -> Result<(usize, usize), BenchError> {
    let mut client = sandbox.client(HOME, "dispatcher").await?;
    let request = subjects::lookup(0, pb::LookupScope::Local);
    let request_bytes = request.encoded_len();
    let answer = client
        .lookup(request)
        .await
        .map_err(|status| BenchError::measure("first lookup", status_text(status)))?
        .into_inner();
    check_local(&answer).map_err(|reason| BenchError::measure("first lookup", reason))?;
    Ok((request_bytes, answer.encoded_len()))
}

/// Runs every phase and returns the report.
pub async fn run(options: BenchOptions, command: String) -> Result<Report, BenchError> {
    options.validate().map_err(|reason| BenchError::setup("options", reason))?;
    let progress = Progress::new(options.quiet);
    let started = Instant::now();
    let started_at = OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default();
    let work = WorkDir::new(options.dir.as_deref())?;
    let root = work.path.clone();
    let mut m = Measurements {
        peer_deadline_ms: options.peer_deadline_ms,
        ..Measurements::default()
    };

    m.policy_small_rules = policy::write_policy(&root.join("policy-small"), options.policy_small)?;
    m.policy_large_rules = policy::write_policy(&root.join("policy-large"), options.policy_large)?;
    let mut federation = start_federation(&root, &options, &progress, root.join("policy-small")).await?;
    progress.phase(&format!("bulk seeding {} flags at each of the four nodes", options.flags));
    m.seeding = seed(&federation, HOME, 0..options.flags, &progress).await?;
    for peer in PEERS {
        seed(&federation, peer, 0..options.flags, &progress).await?;
    }

    let store_dir = node_config(&federation, HOME)?
        .store
        .path
        .parent()
        .map(Path::to_owned)
        .unwrap_or_else(|| root.clone());
    progress.phase(&format!("fsync on {}: {} samples", store_dir.display(), options.fsync_samples));
    let fsync_samples = options.fsync_samples;
    let fsync = tokio::task::spawn_blocking(move || fsync::fsync_latency(&store_dir, fsync_samples))
        .await
        .map_err(|error| BenchError::measure("fsync", error))?
        .map_err(|error| BenchError::measure("fsync", error))?;
    m.fsync = LatencySummary::of(&fsync, 0, None);

    let (request_bytes, response_bytes) = lookup_sizes(&federation).await?;
    m.lookup_request_bytes = request_bytes;
    m.lookup_response_bytes = response_bytes;
    let (echo, echo_saturated) =
        echo_baseline(&federation, &options, &progress, sized_request(request_bytes, response_bytes)).await?;
    m.echo = LatencySummary::latency(&echo);
    m.echo_saturated = ThroughputSummary::of(&echo_saturated);

    let local = pb::LookupScope::Local;
    m.local = LatencySummary::latency(
        &lookup_latency(&federation, "lookup, local", &options, &progress, local, options.flags, check_local).await?,
    );
    m.local_saturated = ThroughputSummary::of(
        &lookup_throughput(&federation, "lookup, local, saturated", &options, &progress, options.flags).await?,
    );
    m.federated = LatencySummary::latency(
        &lookup_latency(
            &federation,
            "lookup, federated",
            &options,
            &progress,
            pb::LookupScope::Federated,
            options.flags,
            check_federated,
        )
        .await?,
    );

    progress.phase("restarting the home node on a null audit sink");
    federation.set_audit_sink(HOME, Some(Arc::new(NullAuditSink::new())))?;
    restart(&mut federation, HOME).await?;
    m.local_null_sink = LatencySummary::latency(
        &lookup_latency(&federation, "lookup, null sink", &options, &progress, local, options.flags, check_local).await?,
    );
    m.local_null_sink_saturated = ThroughputSummary::of(
        &lookup_throughput(&federation, "lookup, null sink, saturated", &options, &progress, options.flags).await?,
    );
    federation.set_audit_sink(HOME, None)?;
    restart(&mut federation, HOME).await?;

    let dead = PEERS[PEERS.len() - 1];
    progress.phase(&format!("black-holing {dead}"));
    let dead_addr = federation.node_addr(dead)?;
    federation.stop_node(dead).await?;
    let hole = crate::blackhole::BlackHole::open(dead_addr)
        .await
        .map_err(|error| BenchError::setup("black hole", error))?;
    m.federated_black_hole = LatencySummary::latency(
        &lookup_latency_with(
            &federation,
            "lookup, 1 peer black-holed",
            &progress,
            pb::LookupScope::Federated,
            options.flags,
            check_black_hole,
            options.blackhole_in_flight,
            options.blackhole_samples,
            options.blackhole_in_flight,
        )
        .await?,
    );
    drop(hole);
    federation.start_node(dead).await?;

    progress.phase(&format!("a one-node federation on the {}-rule policy", m.policy_large_rules));
    let large = Sandbox::start(SandboxOptions {
        dir: Some(root.join("large-policy")),
        agencies: vec![HOME.to_owned()],
        policy_dir: Some(root.join("policy-large")),
        ..SandboxOptions::default()
    })
    .await?;
    seed(&large, HOME, 0..options.flags, &progress).await?;
    m.local_large_policy = LatencySummary::latency(
        &lookup_latency(&large, "lookup, large policy", &options, &progress, local, options.flags, check_local).await?,
    );
    large.shutdown().await;

    progress.phase("the home node in its own process");
    federation.stop_node(HOME).await?;
    let bin = match &options.node_bin {
        Some(bin) => bin.clone(),
        None => std::env::current_exe().map_err(|error| BenchError::setup("own binary", error))?,
    };
    let config_path = federation.node_config_path(HOME)?;
    let child = ChildNode::start(
        &federation,
        HOME,
        &bin,
        &config_path,
        &root.join("child-small.log"),
        &options.node_log,
    )
    .await?;
    m.child_local_small = LatencySummary::latency(
        &lookup_latency(&federation, "lookup, own process", &options, &progress, local, options.flags, check_local)
            .await?,
    );
    m.child_memory_small = child.memory()?;
    child.stop().await;

    progress.phase(&format!("bulk seeding the home node up to {} flags", options.big_flags));
    m.big_seeding = seed(&federation, HOME, options.flags..options.big_flags, &progress).await?;
    let child = ChildNode::start(
        &federation,
        HOME,
        &bin,
        &config_path,
        &root.join("child-big.log"),
        &options.node_log,
    )
    .await?;
    m.child_local_big = LatencySummary::latency(
        &lookup_latency(
            &federation,
            "lookup, own process, big",
            &options,
            &progress,
            local,
            options.big_flags,
            check_local,
        )
        .await?,
    );
    m.child_memory_big = child.memory()?;
    child.stop().await;
    federation.shutdown().await;

    Ok(Report::new(
        started_at,
        started.elapsed().as_secs_f64(),
        command,
        options,
        m,
    ))
}

/// What `flagnet-bench profile` drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// the echo baseline
    Echo,
    /// local lookups, durable audit log
    Local,
    /// local lookups, null audit sink
    LocalNullSink,
    /// federated lookups over three peers
    Federated,
}

/// Stands the federation up, then drives one scenario for `secs` seconds
/// with `in_flight` requests (1: closed loop), printing this process's id
/// first so a profiler can attach (`perf record -g -p PID`).
pub async fn profile(
    options: BenchOptions,
    scenario: Scenario,
    secs: f64,
    in_flight: usize,
) -> Result<String, BenchError> {
    options.validate().map_err(|reason| BenchError::setup("options", reason))?;
    let progress = Progress::new(options.quiet);
    let work = WorkDir::new(options.dir.as_deref())?;
    let root = work.path.clone();
    policy::write_policy(&root.join("policy-small"), options.policy_small)?;
    let mut federation = start_federation(&root, &options, &progress, root.join("policy-small")).await?;
    seed(&federation, HOME, 0..options.flags, &progress).await?;
    for peer in PEERS {
        seed(&federation, peer, 0..options.flags, &progress).await?;
    }
    if scenario == Scenario::LocalNullSink {
        federation.set_audit_sink(HOME, Some(Arc::new(NullAuditSink::new())))?;
        restart(&mut federation, HOME).await?;
    }
    let (request_bytes, response_bytes) = lookup_sizes(&federation).await?;
    let profiled = BenchOptions {
        in_flight,
        throughput_secs: secs,
        throughput_warmup_secs: 1.0,
        ..options.clone()
    };
    eprintln!("flagnet-bench profile: pid {} drives {scenario:?} for {secs} s", std::process::id());
    let summary = match scenario {
        Scenario::Echo => {
            let (_, throughput) = echo_baseline(
                &federation,
                &profiled,
                &progress,
                sized_request(request_bytes, response_bytes),
            )
            .await?;
            throughput
        }
        Scenario::Local | Scenario::LocalNullSink => {
            lookup_throughput(&federation, "profiled lookups", &profiled, &progress, options.flags).await?
        }
        Scenario::Federated => {
            let clients = dispatchers(&federation, options.connections).await?;
            let population = options.flags;
            saturated(
                "profiled federated lookups",
                &progress,
                in_flight,
                Duration::from_secs(1),
                Duration::from_secs_f64(secs),
                move |worker, sequence| {
                    let mut client = clients[worker % clients.len()].clone();
                    async move {
                        let index = mix(sequence ^ ((worker as u64) << 40)) % population;
                        let answer = client
                            .lookup(subjects::lookup(index, pb::LookupScope::Federated))
                            .await
                            .map_err(status_text)?
                            .into_inner();
                        check_federated(&answer)
                    }
                },
            )
            .await
        }
    };
    federation.shutdown().await;
    let summary = ThroughputSummary::of(&summary);
    Ok(format!(
        "{scenario:?}: {:.0} calls/s with {in_flight} in flight, p50 {:.0} µs, p99 {:.0} µs, {} errors",
        summary.per_second, summary.latency.p50_us, summary.latency.p99_us, summary.errors
    ))
}
