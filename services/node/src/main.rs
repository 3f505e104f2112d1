//! `flagnet-node`: serve one agency node from a config file, or start the
//! demo federation (three agencies on 127.0.0.1 with sample subjects and a
//! flagctl profile for every person). All the work is in `flagnet-server`
//! and `flagnet-sandbox`; this binary parses arguments, sets up logging and
//! waits for Ctrl-C or SIGTERM.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use flagnet_sandbox::{DEMO_AGENCIES, Sandbox, SandboxOptions, seed_demo};
use flagnet_server::config::LogFormat;
use flagnet_server::{NodeConfig, NodeParts};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "flagnet-node", version, about = "a flagnet agency node")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve one node from its config file.
    Serve {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Start the demo federation: phelps-so, rolla-pd and pulaski-so.
    Demo {
        /// where to write the PKI, configs, databases and profiles (default: a new temporary directory)
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

fn init_logging(format: LogFormat, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the node");
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

async fn serve(config: PathBuf) -> Result<(), String> {
    let config = NodeConfig::load(&config).map_err(|error| error.to_string())?;
    init_logging(config.log.format, &config.log.filter);
    let node = flagnet_server::start(NodeParts::new(config))
        .await
        .map_err(|error| error.to_string())?;
    tokio::select! {
        () = shutdown_signal() => {
            tracing::info!("shutting down");
            node.shutdown().await;
            Ok(())
        }
    }
}

async fn demo(dir: Option<PathBuf>) -> Result<(), String> {
    init_logging(LogFormat::Human, "warn");
    let keep_dir = dir.is_some();
    let sandbox = Sandbox::start(SandboxOptions {
        dir,
        ..SandboxOptions::default()
    })
    .await
    .map_err(|error| error.to_string())?;
    let subjects = seed_demo(&sandbox).await.map_err(|error| error.to_string())?;
    let root = sandbox.dir().display().to_string();
    println!(
        "flagnet demo federation {} is up in {root}",
        flagnet_sandbox::DEMO_FEDERATION
    );
    if !keep_dir {
        println!("(a temporary directory, removed when the demo stops; pass --dir to keep it)");
    }
    println!();
    for agency in DEMO_AGENCIES {
        let addr = sandbox.node_addr(agency).map_err(|error| error.to_string())?;
        println!(
            "  {agency:<11} https://{addr}   config {}",
            sandbox.node_config_path(agency).map_err(|e| e.to_string())?.display()
        );
    }
    println!();
    println!("seeded subjects:");
    for subject in &subjects {
        println!(
            "  {:<11} {} {} (born {}), phone {}: {}",
            subject.agency,
            subject.given_name,
            subject.family_name,
            subject.birth_date,
            subject.phone,
            subject.consent.describe()
        );
    }
    println!();
    println!("profiles: {root}/profiles/<agency>-<role>.toml; try, in another terminal:");
    let flagctl = "cargo run -q --release --bin flagctl --";
    let profiles = format!("{root}/profiles");
    for (profile, arguments) in [
        (
            "phelps-so-dispatcher",
            "lookup --phone '573-555-0142' --purpose emergency_response --incident CAD-2026-0001",
        ),
        (
            "phelps-so-liaison",
            "lookup --phone '573-555-0142' --purpose crisis_followup --incident CAD-2026-0001",
        ),
        (
            "rolla-pd-dispatcher",
            "lookup --phone '573-555-0142' --purpose emergency_response --incident RPD-2026-0311",
        ),
        ("phelps-so-liaison", "alerts watch"),
        ("phelps-so-records_clerk", "flag list"),
        ("phelps-so-auditor", "audit search --phone '573-555-0142'"),
    ] {
        println!("  {flagctl} --profile {profiles}/{profile}.toml {arguments}");
    }
    println!("(README.md has the whole tour, encounters included)");
    println!();
    println!("Ctrl-C stops the demo.");
    shutdown_signal().await;
    println!("stopping");
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config } => serve(config).await,
        Command::Demo { dir } => demo(dir).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("flagnet-node: {error}");
            ExitCode::FAILURE
        }
    }
}
