//! `flagnet-bench`: runs the benchmark suite of issue 8 and prints the
//! ratios (see `docs/performance.md`). `flagnet-bench serve --config FILE`
//! is the node R6 runs in its own process, the same code as `flagnet-node
//! serve`; `flagnet-bench profile SCENARIO` drives one scenario for a
//! profiler.
#![forbid(unsafe_code)]

use clap::{Args, Parser, Subcommand};
use flagnet_bench::run::{Scenario, profile, run};
use flagnet_bench::{BenchOptions, Report};
use flagnet_server::{NodeConfig, NodeParts};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "flagnet-bench",
    version,
    about = "measure a flagnet node against its baselines"
)]
struct Cli {
    #[command(flatten)]
    sizes: Sizes,
    /// where to write the JSON report
    #[arg(long, value_name = "FILE", default_value = "target/flagnet-bench.json")]
    json: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Args)]
struct Sizes {
    /// fewer samples and a 100k-flag R6: every ratio in under two minutes
    #[arg(long)]
    quick: bool,
    /// tiny sizes that only prove the harness works (the smoke test)
    #[arg(long, hide = true)]
    smoke: bool,
    /// flags at the home node and at each peer
    #[arg(long)]
    flags: Option<u64>,
    /// flags at the home node for R6's large measurement
    #[arg(long)]
    big_flags: Option<u64>,
    /// latency samples per closed-loop scenario, after warm-up
    #[arg(long)]
    samples: Option<usize>,
    /// calls made before recording
    #[arg(long)]
    warmup: Option<usize>,
    /// requests in flight when saturated
    #[arg(long)]
    in_flight: Option<usize>,
    /// client connections the saturated requests share
    #[arg(long)]
    connections: Option<usize>,
    /// seconds each saturated scenario is counted
    #[arg(long)]
    throughput_secs: Option<f64>,
    /// policy rules of the nodes (R4's denominator)
    #[arg(long)]
    policy_small: Option<usize>,
    /// policy rules of R4's large-policy node
    #[arg(long)]
    policy_large: Option<usize>,
    /// every node's per-peer deadline, in milliseconds (R3's denominator)
    #[arg(long)]
    peer_deadline_ms: Option<u64>,
    /// federated lookups recorded with a peer black-holed
    #[arg(long)]
    blackhole_samples: Option<usize>,
    /// fsyncs timed
    #[arg(long)]
    fsync_samples: Option<usize>,
    /// the node binary for R6's own-process node (default: this binary's `serve`)
    #[arg(long, value_name = "PATH")]
    node_bin: Option<PathBuf>,
    /// keep the federations under this directory (default: a temporary one)
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// tracing filter of the measured nodes
    #[arg(long, value_name = "FILTER")]
    node_log: Option<String>,
    /// no progress bars
    #[arg(long)]
    quiet: bool,
}

impl Sizes {
    fn options(&self) -> BenchOptions {
        let mut options = if self.smoke {
            BenchOptions::smoke()
        } else if self.quick {
            BenchOptions::quick()
        } else {
            BenchOptions::full()
        };
        macro_rules! set {
            ($($field:ident),*) => {
                $(if let Some(value) = self.$field.clone() { options.$field = value; })*
            };
        }
        set!(
            flags,
            big_flags,
            samples,
            warmup,
            in_flight,
            connections,
            throughput_secs,
            policy_small,
            policy_large,
            peer_deadline_ms,
            blackhole_samples,
            fsync_samples,
            node_log
        );
        options.node_bin = self.node_bin.clone();
        options.dir = self.dir.clone();
        options.quiet |= self.quiet;
        options
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve one node from its config file (the node R6 runs in its own process).
    #[command(hide = true)]
    Serve {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Stand the federation up and drive one scenario, for a profiler.
    Profile {
        scenario: Scenario,
        /// how long to drive it
        #[arg(long, default_value_t = 20.0)]
        secs: f64,
        /// requests in flight (1: closed loop)
        #[arg(long = "load", default_value_t = 1)]
        load: usize,
    },
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
}

async fn serve(config: PathBuf) -> Result<(), String> {
    let config = NodeConfig::load(&config).map_err(|error| error.to_string())?;
    init_logging(&config.log.filter);
    let node = flagnet_server::start(NodeParts::new(config))
        .await
        .map_err(|error| error.to_string())?;
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(|error| error.to_string())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    node.shutdown().await;
    Ok(())
}

fn write_report(path: &PathBuf, report: &Report) -> Result<(), String> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|error| format!("{}: {error}", parent.display()))?;
    }
    let text = serde_json::to_string_pretty(report).map_err(|error| error.to_string())?;
    std::fs::write(path, text + "\n").map_err(|error| format!("{}: {error}", path.display()))
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Serve { config }) => serve(config).await,
        Some(Command::Profile { scenario, secs, load }) => {
            let options = cli.sizes.options();
            init_logging(&options.node_log);
            profile(options, scenario, secs, load)
                .await
                .map(|summary| println!("{summary}"))
                .map_err(|error| error.to_string())
        }
        None => {
            let options = cli.sizes.options();
            init_logging(&options.node_log);
            let command = std::env::args().collect::<Vec<_>>().join(" ");
            match run(options, command).await {
                Ok(report) => {
                    print!("{}", report.table());
                    write_report(&cli.json, &report).map(|()| println!("report written to {}", cli.json.display()))
                }
                Err(error) => Err(error.to_string()),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("flagnet-bench: {error}");
            ExitCode::FAILURE
        }
    }
}
