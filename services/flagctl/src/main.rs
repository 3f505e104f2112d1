//! `flagctl`, the flagnet command line for every role: lookups for
//! dispatchers, officers and liaisons; flags and consents for records clerks;
//! certificates for operators. It talks to the person's own node over mTLS
//! with the certificate named in a profile file, prints readable tables by
//! default and JSON with `--json`, and turns transport failures into messages
//! that say what to fix.
#![forbid(unsafe_code)]

mod audit;
mod certs;
mod encounters;
mod failure;
mod lookup;
mod output;
mod policy;
mod records;

use clap::{Parser, Subcommand};
use failure::Failure;
use flagnet_trust::client::ClientProfile;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "flagctl", version, about = "the flagnet command line")]
struct Cli {
    /// profile file: endpoint, trust directory, certificate and key
    #[arg(long, global = true, value_name = "FILE", env = "FLAGCTL_PROFILE")]
    profile: Option<PathBuf>,
    /// print JSON instead of tables
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Look a subject up by phone, address, or name and date of birth.
    Lookup(lookup::LookupArgs),
    /// Create, read and list your agency's flags (records clerk).
    #[command(subcommand)]
    Flag(records::FlagCommand),
    /// Record, revoke and list consents (records clerk).
    #[command(subcommand)]
    Consent(records::ConsentCommand),
    /// Report an encounter with a flagged subject (officers).
    #[command(subcommand)]
    Encounter(encounters::EncounterCommand),
    /// Watch encounter alerts (liaisons).
    #[command(subcommand)]
    Alerts(encounters::AlertsCommand),
    /// Search, verify and export the audit log (auditors).
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Make and inspect certificates for a federation.
    #[command(subcommand)]
    Certs(certs::CertsCommand),
    /// Access policies: show, propose, apply, history, diff, rollback, the
    /// two-person rule, the policy tests and the override review queue (privacy officers).
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
}

pub(crate) fn profile(cli_profile: Option<PathBuf>) -> Result<ClientProfile, Failure> {
    let path = cli_profile.ok_or_else(|| Failure::usage("this command needs --profile FILE (or FLAGCTL_PROFILE)"))?;
    ClientProfile::load(&path).map_err(|error| Failure::usage(format!("profile {}: {error}", path.display())))
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let json = cli.json;
    match cli.command {
        Command::Certs(command) => certs::run(command).map_err(|error| Failure::usage(error.to_string())),
        Command::Lookup(args) => lookup::run(&profile(cli.profile)?, args, json).await,
        Command::Flag(command) => records::run_flag(&profile(cli.profile)?, command, json).await,
        Command::Consent(command) => records::run_consent(&profile(cli.profile)?, command, json).await,
        Command::Encounter(command) => encounters::run_encounter(&profile(cli.profile)?, command, json).await,
        Command::Audit(command) => audit::run(&profile(cli.profile)?, command, json).await,
        Command::Alerts(command) => encounters::run_alerts(&profile(cli.profile)?, command, json).await,
        Command::Policy(command) => policy::run(cli.profile, command, json).await,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("flagctl: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}
