//! One run, phase by phase, on 127.0.0.1:
//!
//! 1. policies of `policy_small` and `policy_large` rules;
//! 2. a federation of four nodes (the home node `phelps-so` and three
//!    peers), each bulk-loaded with `flags` subjects;
//! 3. R1: the echo baseline (sized like a real lookup and its answer)
//!    paired with local lookups on the durable audit log, with one fsync
//!    on the home node's disk timed just before and just after;
//! 4. R7: echo and lookups saturated, in alternating windows;
//! 5. R2: federated lookups over the three peers paired with local ones;
//! 6. R4: a one-node federation on the large policy, paired with the home node;
//! 7. R1n, R5: the home node restarted on a null audit sink, paired with
//!    the echo, then saturated;
//! 8. R3: one peer stopped and black-holed, federated lookups;
//! 9. R6: a one-node federation of `big_flags` flags and the home node,
//!    each in its own process, paired, and their resident memory.
//!
//! Two scenarios that a ratio compares are measured as a pair, in
//! alternating blocks of calls, one call in flight at a time, so a disk that
//! slows down or a neighbour that starts a build moves both alike. Every lookup asks for a subject drawn from the
//! loaded ones and checks the answer (the right flags, the right classes,
//! the right peer states).

use crate::child::ChildNode;
use crate::echo::{EchoServer, pb as echo_pb, sized_request};
use crate::load::{Latency, Throughput, closed_loop, mix, paired_closed_loop, saturated};
use crate::progress::Progress;
use crate::report::{LatencySummary, Measurements, Report, SeedingSummary, ThroughputSummary, load_average};
use crate::subjects::{self, HOME, PEERS};
use crate::{BenchError, BenchOptions, fsync, policy};
use echo_pb::echo_client::EchoClient;
use flagnet_audit::NullAuditSink;
use flagnet_proto::v1 as pb;
use flagnet_proto::v1::flag_index_client::FlagIndexClient;
use flagnet_sandbox::{FederationTiming, Sandbox, SandboxOptions};
use flagnet_server::NodeConfig;
use flagnet_trust::client::ClientProfile;
use futures::future::BoxFuture;
use hdrhistogram::Histogram;
use prost::Message;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tonic::transport::Channel;

/// Consecutive failures before a peer's breaker opens: the most a node's
/// config accepts.
const BREAKER_FAILURES: u32 = 100;

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
                Ok(Self { path, _temporary: None })
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

/// One call of a closed loop.
type Call = Box<dyn Fn(u64) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// A lookup of a random subject among the first `population`, checked.
fn lookup_call(client: FlagIndexClient<Channel>, scope: pb::LookupScope, population: u64, check: Check) -> Call {
    Box::new(move |sequence| {
        let mut client = client.clone();
        Box::pin(async move {
            let request = subjects::lookup(mix(sequence) % population, scope);
            let answer = client.lookup(request).await.map_err(status_text)?.into_inner();
            check(&answer)
        })
    })
}

/// One echo of the lookup's sizes, checked.
fn echo_call(client: EchoClient<Channel>, request: echo_pb::EchoRequest) -> Call {
    Box::new(move |_| {
        let mut client = client.clone();
        let request = request.clone();
        Box::pin(async move {
            let expected = request.reply_bytes as usize;
            let reply = client.echo(request).await.map_err(status_text)?.into_inner();
            if reply.payload.len() != expected {
                return Err(format!("an echo of {} bytes, expected {expected}", reply.payload.len()));
            }
            Ok(())
        })
    })
}

/// Two scenarios as a pair (see [`paired_closed_loop`]).
async fn pair(
    label: &str,
    options: &BenchOptions,
    progress: &Progress,
    first: Call,
    second: Call,
) -> (Latency, Latency) {
    progress.phase(&format!(
        "{label}: {} samples of each, one call at a time, in alternating blocks",
        options.samples
    ));
    paired_closed_loop(label, progress, options.warmup, options.samples, first, second).await
}

/// Saturated calls of `call(worker, sequence)` for one window.
async fn saturate<F, Fut>(
    label: &str,
    options: &BenchOptions,
    progress: &Progress,
    window: Duration,
    call: F,
) -> Throughput
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    saturated(
        label,
        progress,
        options.in_flight,
        Duration::from_secs_f64(options.throughput_warmup_secs),
        window,
        call,
    )
    .await
}

/// Saturated local lookups over `clients`.
fn saturated_lookups(
    clients: Vec<FlagIndexClient<Channel>>,
    population: u64,
) -> impl Fn(usize, u64) -> BoxFuture<'static, Result<(), String>> + Send + Sync + 'static {
    move |worker, sequence| {
        let mut client = clients[worker % clients.len()].clone();
        Box::pin(async move {
            let index = mix(sequence ^ ((worker as u64) << 40)) % population;
            let answer = client
                .lookup(subjects::lookup(index, pb::LookupScope::Local))
                .await
                .map_err(status_text)?
                .into_inner();
            check_local(&answer)
        })
    }
}

/// Saturated echoes over `clients`.
fn saturated_echoes(
    clients: Vec<EchoClient<Channel>>,
    request: echo_pb::EchoRequest,
) -> impl Fn(usize, u64) -> BoxFuture<'static, Result<(), String>> + Send + Sync + 'static {
    move |worker, sequence| echo_call(clients[worker % clients.len()].clone(), request.clone())(sequence)
}

/// Adds one window's counts to another's.
fn merge(total: &mut Throughput, window: Throughput) {
    total.completed += window.completed;
    total.errors += window.errors;
    if total.first_error.is_none() {
        total.first_error = window.first_error;
    }
    total.window += window.window;
    total.histogram.add(&window.histogram).expect("same bounds");
    total.per_second = total.completed as f64 / total.window.as_secs_f64().max(1e-9);
}

/// Echo clients reaching the echo server as the dispatcher of the home node.
async fn echo_clients(
    sandbox: &Sandbox,
    server: &EchoServer,
    count: usize,
) -> Result<Vec<EchoClient<Channel>>, BenchError> {
    let mut profile = ClientProfile::load(&sandbox.profile_path(HOME, "dispatcher"))
        .map_err(|error| BenchError::setup("echo client", error))?;
    profile.endpoint = format!("https://{}", server.addr());
    let mut clients = Vec::with_capacity(count);
    for _ in 0..count {
        let channel = profile
            .connect()
            .await
            .map_err(|error| BenchError::setup("echo client", error))?;
        clients.push(EchoClient::new(channel));
    }
    Ok(clients)
}

/// fsync latencies on `dir`, off the async workers.
async fn fsyncs(dir: &Path, samples: usize, four_at_once: bool) -> Result<Histogram<u64>, BenchError> {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || {
        if four_at_once {
            fsync::four_at_once_latency(&dir, samples)
        } else {
            fsync::fsync_latency(&dir, samples)
        }
    })
    .await
    .map_err(|error| BenchError::measure("fsync", error))?
    .map_err(|error| BenchError::measure("fsync", error))
}

/// The four-node federation every scenario but R4's and R6's runs on.
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
            // the worst case for R3: the breaker opens as late as the config
            // allows, for as short as it allows (see the black-hole phase)
            breaker_failures: BREAKER_FAILURES,
            breaker_cooldown_ms: 10,
            ..FederationTiming::default()
        },
        policy_dir: Some(policy_dir),
        ..SandboxOptions::default()
    })
    .await?;
    Ok(sandbox)
}

/// A federation of the home node alone, on `policy_dir`, loaded with `flags`.
async fn start_single(
    root: &Path,
    name: &str,
    policy_dir: PathBuf,
    flags: u64,
    progress: &Progress,
) -> Result<(Sandbox, SeedingSummary), BenchError> {
    let sandbox = Sandbox::start(SandboxOptions {
        dir: Some(root.join(name)),
        agencies: vec![HOME.to_owned()],
        policy_dir: Some(policy_dir),
        ..SandboxOptions::default()
    })
    .await?;
    let seeding = seed(&sandbox, HOME, 0..flags, progress).await?;
    // one checked lookup proves the load is visible through the API (and
    // gives the audit log a record before any restart: a log whose only
    // checkpoint is at size 0 fails its open check)
    lookup_sizes(&sandbox).await?;
    Ok((sandbox, seeding))
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
    options
        .validate()
        .map_err(|reason| BenchError::setup("options", reason))?;
    let progress = Progress::new(options.quiet);
    let started = Instant::now();
    let started_at = OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default();
    let work = WorkDir::new(options.dir.as_deref())?;
    let root = work.path.clone();
    let mut m = Measurements {
        load_average_start: load_average(),
        peer_deadline_ms: options.peer_deadline_ms,
        ..Measurements::default()
    };
    let local = pb::LookupScope::Local;
    let federated = pb::LookupScope::Federated;
    let window = Duration::from_secs_f64(options.throughput_secs);

    let small_policy = root.join("policy-small");
    let large_policy = root.join("policy-large");
    m.policy_small_rules = policy::write_policy(&small_policy, options.policy_small)?;
    m.policy_large_rules = policy::write_policy(&large_policy, options.policy_large)?;
    let mut federation = start_federation(&root, &options, &progress, small_policy.clone()).await?;
    progress.phase(&format!(
        "bulk seeding {} flags at each of the four nodes",
        options.flags
    ));
    m.seeding = seed(&federation, HOME, 0..options.flags, &progress).await?;
    for peer in PEERS {
        seed(&federation, peer, 0..options.flags, &progress).await?;
    }

    // R1: the durable lookup beside its floor, the echo and one fsync
    let (request_bytes, response_bytes) = lookup_sizes(&federation).await?;
    m.lookup_request_bytes = request_bytes;
    m.lookup_response_bytes = response_bytes;
    let echo_request = sized_request(request_bytes, response_bytes);
    let echo_server = EchoServer::start(&node_config(&federation, HOME)?).await?;
    let echoes = echo_clients(&federation, &echo_server, options.connections).await?;
    let store_dir = node_config(&federation, HOME)?
        .store
        .path
        .parent()
        .map(Path::to_owned)
        .unwrap_or_else(|| root.clone());
    progress.phase(&format!(
        "fsync on {}: {} samples",
        store_dir.display(),
        options.fsync_samples
    ));
    let mut fsync = fsyncs(&store_dir, options.fsync_samples.div_ceil(2), false).await?;
    let dispatcher = federation.client(HOME, "dispatcher").await?;
    let (echo, durable) = pair(
        "echo ⇄ lookup, local",
        &options,
        &progress,
        echo_call(echoes[0].clone(), echo_request.clone()),
        lookup_call(dispatcher.clone(), local, options.flags, check_local),
    )
    .await;
    fsync
        .add(fsyncs(&store_dir, options.fsync_samples / 2, false).await?)
        .expect("same bounds");
    m.fsync = LatencySummary::of(&fsync, 0, None);
    m.fsync_four_at_once = LatencySummary::of(&fsyncs(&store_dir, options.fsync_samples / 2 + 1, true).await?, 0, None);
    m.echo = LatencySummary::latency(&echo);
    m.local = LatencySummary::latency(&durable);

    // R7 (and R5's numerator): saturated, in alternating windows
    progress.phase(&format!(
        "saturated echo ⇄ lookups: {} in flight over {} connections, {} s of each in two windows",
        options.in_flight, options.connections, options.throughput_secs
    ));
    let lookups = dispatchers(&federation, options.connections).await?;
    let half = window / 2;
    let mut echo_total = saturate(
        "echo, saturated",
        &options,
        &progress,
        half,
        saturated_echoes(echoes.clone(), echo_request.clone()),
    )
    .await;
    let mut durable_total = saturate(
        "lookup, saturated",
        &options,
        &progress,
        half,
        saturated_lookups(lookups.clone(), options.flags),
    )
    .await;
    merge(
        &mut durable_total,
        saturate(
            "lookup, saturated",
            &options,
            &progress,
            half,
            saturated_lookups(lookups, options.flags),
        )
        .await,
    );
    merge(
        &mut echo_total,
        saturate(
            "echo, saturated",
            &options,
            &progress,
            half,
            saturated_echoes(echoes.clone(), echo_request.clone()),
        )
        .await,
    );
    m.echo_saturated = ThroughputSummary::of(&echo_total);
    m.local_saturated = ThroughputSummary::of(&durable_total);

    // R2: federated beside local
    let (fanned_out, alone) = pair(
        "lookup, federated ⇄ local",
        &options,
        &progress,
        lookup_call(dispatcher.clone(), federated, options.flags, check_federated),
        lookup_call(dispatcher.clone(), local, options.flags, check_local),
    )
    .await;
    m.federated = LatencySummary::latency(&fanned_out);
    m.local_beside_federated = LatencySummary::latency(&alone);

    // R4: the large policy beside the small one
    progress.phase(&format!(
        "a one-node federation on the {}-rule policy",
        m.policy_large_rules
    ));
    let (large, _) = start_single(&root, "large-policy", large_policy, options.flags, &progress).await?;
    let (at_large, at_small) = pair(
        "lookup, large ⇄ small policy",
        &options,
        &progress,
        lookup_call(
            large.client(HOME, "dispatcher").await?,
            local,
            options.flags,
            check_local,
        ),
        lookup_call(dispatcher.clone(), local, options.flags, check_local),
    )
    .await;
    m.local_large_policy = LatencySummary::latency(&at_large);
    m.local_beside_large_policy = LatencySummary::latency(&at_small);
    large.shutdown().await;

    // R1n and R5's denominator: the null sink
    progress.phase("restarting the home node on a null audit sink");
    federation.set_audit_sink(HOME, Some(Arc::new(NullAuditSink::new())))?;
    restart(&mut federation, HOME).await?;
    let (echo, null_sink) = pair(
        "echo ⇄ lookup, null sink",
        &options,
        &progress,
        echo_call(echoes[0].clone(), echo_request.clone()),
        lookup_call(
            federation.client(HOME, "dispatcher").await?,
            local,
            options.flags,
            check_local,
        ),
    )
    .await;
    m.echo_beside_null_sink = LatencySummary::latency(&echo);
    m.local_null_sink = LatencySummary::latency(&null_sink);
    progress.phase("saturated lookups, null sink");
    m.local_null_sink_saturated = ThroughputSummary::of(
        &saturate(
            "lookup, null sink, saturated",
            &options,
            &progress,
            window,
            saturated_lookups(dispatchers(&federation, options.connections).await?, options.flags),
        )
        .await,
    );
    federation.set_audit_sink(HOME, None)?;
    restart(&mut federation, HOME).await?;
    drop(echoes);
    echo_server.shutdown().await;

    // R3: one peer black-holed
    let dead = PEERS[PEERS.len() - 1];
    progress.phase(&format!(
        "black-holing {dead}: {} federated lookups, {} at once",
        options.blackhole_samples, options.blackhole_in_flight
    ));
    let dead_addr = federation.node_addr(dead)?;
    federation.stop_node(dead).await?;
    let hole = crate::blackhole::BlackHole::open(dead_addr)
        .await
        .map_err(|error| BenchError::setup("black hole", error))?;
    // a peer's breaker opens after at most 100 consecutive failures (the
    // config's bound) and then spares lookups the deadline; restarting the
    // home node between rounds of fewer lookups keeps every sample the
    // worst case, a lookup that waits the dead peer out
    let per_round = BREAKER_FAILURES as usize - options.blackhole_in_flight;
    let mut black_holed: Option<Latency> = None;
    let mut remaining = options.blackhole_samples;
    let mut round = 0u64;
    while remaining > 0 {
        let samples = remaining.min(per_round);
        let client = federation.client(HOME, "dispatcher").await?;
        let population = options.flags;
        let offset = round * per_round as u64;
        let part = closed_loop(
            "lookup, 1 peer black-holed",
            &progress,
            options.blackhole_in_flight,
            samples,
            options.blackhole_in_flight,
            move |sequence| lookup_call(client.clone(), federated, population, check_black_hole)(sequence + offset),
        )
        .await;
        match &mut black_holed {
            Some(total) => {
                total.histogram.add(&part.histogram).expect("same bounds");
                total.errors += part.errors;
                if total.first_error.is_none() {
                    total.first_error = part.first_error;
                }
            }
            None => black_holed = Some(part),
        }
        remaining -= samples;
        round += 1;
        if remaining > 0 {
            restart(&mut federation, HOME).await?;
        }
    }
    let black_holed = black_holed.expect("at least one round");
    m.federated_black_hole = LatencySummary::latency(&black_holed);
    drop(hole);
    federation.start_node(dead).await?;

    // R6: a node of `big_flags` beside the home node, each in its own process
    progress.phase(&format!("a one-node federation of {} flags", options.big_flags));
    let (mut big, big_seeding) = start_single(&root, "big", small_policy, options.big_flags, &progress).await?;
    m.big_seeding = big_seeding;
    progress.phase("both nodes in their own processes");
    federation.stop_node(HOME).await?;
    big.stop_node(HOME).await?;
    let bin = match &options.node_bin {
        Some(bin) => bin.clone(),
        None => std::env::current_exe().map_err(|error| BenchError::setup("own binary", error))?,
    };
    let small_child = ChildNode::start(
        &federation,
        HOME,
        &bin,
        &federation.node_config_path(HOME)?,
        &root.join("child-small.log"),
        &options.node_log,
    )
    .await?;
    let big_child = ChildNode::start(
        &big,
        HOME,
        &bin,
        &big.node_config_path(HOME)?,
        &root.join("child-big.log"),
        &options.node_log,
    )
    .await?;
    let (at_big, at_small) = pair(
        "lookup, big ⇄ small, own processes",
        &options,
        &progress,
        lookup_call(
            big.client(HOME, "dispatcher").await?,
            local,
            options.big_flags,
            check_local,
        ),
        lookup_call(
            federation.client(HOME, "dispatcher").await?,
            local,
            options.flags,
            check_local,
        ),
    )
    .await;
    m.child_local_big = LatencySummary::latency(&at_big);
    m.child_local_small = LatencySummary::latency(&at_small);
    m.child_memory_big = big_child.memory()?;
    m.child_memory_small = small_child.memory()?;
    big_child.stop().await;
    small_child.stop().await;
    big.shutdown().await;
    federation.shutdown().await;
    m.load_average_end = load_average();

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
    options
        .validate()
        .map_err(|reason| BenchError::setup("options", reason))?;
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
        throughput_warmup_secs: 1.0,
        ..options.clone()
    };
    let window = Duration::from_secs_f64(secs);
    let population = options.flags;
    eprintln!(
        "flagnet-bench profile: pid {} drives {scenario:?} for {secs} s",
        std::process::id()
    );
    let throughput = match scenario {
        Scenario::Echo => {
            let server = EchoServer::start(&node_config(&federation, HOME)?).await?;
            let clients = echo_clients(&federation, &server, options.connections).await?;
            let request = sized_request(request_bytes, response_bytes);
            let throughput = saturate("echo", &profiled, &progress, window, saturated_echoes(clients, request)).await;
            server.shutdown().await;
            throughput
        }
        Scenario::Local | Scenario::LocalNullSink => {
            let clients = dispatchers(&federation, options.connections).await?;
            saturate(
                "lookups",
                &profiled,
                &progress,
                window,
                saturated_lookups(clients, population),
            )
            .await
        }
        Scenario::Federated => {
            let clients = dispatchers(&federation, options.connections).await?;
            saturate(
                "federated lookups",
                &profiled,
                &progress,
                window,
                move |worker, sequence| {
                    let call = lookup_call(
                        clients[worker % clients.len()].clone(),
                        pb::LookupScope::Federated,
                        population,
                        check_federated,
                    );
                    call(mix(sequence ^ ((worker as u64) << 40)))
                },
            )
            .await
        }
    };
    federation.shutdown().await;
    let summary = ThroughputSummary::of(&throughput);
    Ok(format!(
        "{scenario:?}: {:.0} calls/s with {in_flight} in flight, p50 {:.0} µs, p99 {:.0} µs, {} errors",
        summary.per_second, summary.latency.p50_us, summary.latency.p99_us, summary.errors
    ))
}
