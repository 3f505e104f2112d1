//! `flagctl certs`: the federation's certificate tooling over
//! [`flagnet_trust::pki::FederationDir`] (create a federation, an agency
//! CA, node and user certificates, list, revoke, renew a CRL), printing
//! every file it writes. See `certs/README.md` for the layout and the same
//! steps with the openssl command line.
//!
//! This module must never print a private key or a password, and never
//! decide anything about certificates itself: the trust crate does.

use flagnet_core::{AgencyId, UserId};
use flagnet_trust::pki::{CrlInfo, FederationDir, IssueOptions, IssuedCertificate, Revocation};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Certificate tooling for a federation directory.
#[derive(Debug, clap::Subcommand)]
pub enum CertsCommand {
    /// Create a federation directory (federation.toml and agencies/).
    InitFederation {
        /// The federation directory to create.
        #[arg(long)]
        dir: PathBuf,
        /// The federation's name, a SPIFFE trust domain such as flagnet.demo.
        #[arg(long)]
        name: String,
    },
    /// Create an agency's CA, its key and its first (empty) CRL.
    AddAgency {
        /// The federation directory.
        #[arg(long)]
        dir: PathBuf,
        /// The agency id, such as rolla-pd.
        #[arg(long)]
        agency: AgencyId,
    },
    /// Issue (or replace) an agency's node certificate.
    IssueNode {
        /// The federation directory.
        #[arg(long)]
        dir: PathBuf,
        /// The agency id, such as rolla-pd.
        #[arg(long)]
        agency: AgencyId,
        /// An extra DNS name for generic tools (flagnet never checks it).
        #[arg(long = "dns", value_name = "NAME")]
        dns_names: Vec<String>,
        /// An extra IP address for generic tools (flagnet never checks it).
        #[arg(long = "ip", value_name = "ADDRESS")]
        ip_addresses: Vec<IpAddr>,
    },
    /// Issue (or replace) a person's certificate, and a PKCS#12 file when a
    /// password is given.
    IssueUser {
        /// The federation directory.
        #[arg(long)]
        dir: PathBuf,
        /// The agency id, such as rolla-pd.
        #[arg(long)]
        agency: AgencyId,
        /// The person's user id within the agency.
        #[arg(long)]
        user: UserId,
        /// Password of the PKCS#12 file; prefer the environment variable,
        /// which other users of the machine cannot read in the process list.
        #[arg(long, env = "FLAGCTL_PKCS12_PASSWORD", hide_env_values = true)]
        pkcs12_password: Option<String>,
    },
    /// List each agency's CA, CRL and issued certificates.
    List {
        /// The federation directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Revoke a certificate (by agency and serial, or by file) and write the
    /// agency's new CRL.
    Revoke {
        /// The federation directory.
        #[arg(long)]
        dir: PathBuf,
        /// The agency whose CA issued the certificate (with --serial).
        #[arg(long, requires = "serial")]
        agency: Option<AgencyId>,
        /// The serial number in hex, as `list` shows it.
        #[arg(long, requires = "agency", conflicts_with = "file")]
        serial: Option<String>,
        /// The certificate's PEM file.
        #[arg(long, required_unless_present = "serial")]
        file: Option<PathBuf>,
    },
    /// Re-sign an agency's CRL with a new next update; run it well before
    /// the current one's, or nodes refuse the agency's certificates.
    RenewCrl {
        /// The federation directory.
        #[arg(long)]
        dir: PathBuf,
        /// The agency id, such as rolla-pd.
        #[arg(long)]
        agency: AgencyId,
    },
}

/// Runs one `flagctl certs` command.
pub fn run(command: CertsCommand) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        CertsCommand::InitFederation { dir, name } => {
            let federation = FederationDir::init(&dir, &name)?;
            println!("federation {} created", federation.federation());
            println!("  wrote {}", dir.join("federation.toml").display());
            println!("  wrote {}", federation.trust_dir().display());
        }
        CertsCommand::AddAgency { dir, agency } => {
            let federation = FederationDir::open(&dir)?;
            federation.add_agency(&agency)?;
            let agency_dir = federation.agency_dir(&agency);
            println!("agency {agency} ca created");
            println!("  wrote {}", federation.ca_certificate_path(&agency).display());
            println!(
                "  wrote {} (private, keep it offline)",
                agency_dir.join("ca.key").display()
            );
            println!("  wrote {}", federation.crl_path(&agency).display());
            println!("give every node this agency's ca.pem and crl.pem");
        }
        CertsCommand::IssueNode {
            dir,
            agency,
            dns_names,
            ip_addresses,
        } => {
            let options = IssueOptions {
                extra_dns_names: dns_names,
                extra_ip_addresses: ip_addresses,
                ..IssueOptions::default()
            };
            let issued = FederationDir::open(&dir)?.issue_node_with(&agency, &options)?;
            print_issued(&issued);
        }
        CertsCommand::IssueUser {
            dir,
            agency,
            user,
            pkcs12_password,
        } => {
            let issued = FederationDir::open(&dir)?.issue_user(&agency, &user, pkcs12_password.as_deref())?;
            print_issued(&issued);
        }
        CertsCommand::List { dir } => {
            let federation = FederationDir::open(&dir)?;
            println!("federation {}", federation.federation());
            for listing in federation.list()? {
                println!();
                println!(
                    "agency {}  ca {}  valid until {}",
                    listing.agency,
                    listing.ca_path.display(),
                    date(listing.ca_not_after)
                );
                print_crl("  ", &listing.crl);
                for record in &listing.certificates {
                    let identity = record
                        .identity
                        .as_ref()
                        .map_or_else(|| "(no flagnet identity)".to_owned(), |identity| identity.spiffe_uri());
                    let status = match record.revoked_at {
                        Some(revoked_at) => format!("revoked {}", date(revoked_at)),
                        None if record.not_after < OffsetDateTime::now_utc() => "expired".to_owned(),
                        None => "valid".to_owned(),
                    };
                    println!(
                        "  {serial:>6}  {identity}  until {until}  {status}  sha256 {fingerprint}",
                        serial = record.serial,
                        until = date(record.not_after),
                        fingerprint = record.fingerprint_sha256,
                    );
                }
            }
        }
        CertsCommand::Revoke {
            dir,
            agency,
            serial,
            file,
        } => {
            let federation = FederationDir::open(&dir)?;
            let revocation = match (agency, serial, file) {
                (Some(agency), Some(serial), None) => federation.revoke(&agency, &serial)?,
                (None, None, Some(file)) => federation.revoke_file(&file)?,
                _ => return Err("give --agency with --serial, or --file".into()),
            };
            print_revocation(&revocation);
        }
        CertsCommand::RenewCrl { dir, agency } => {
            let crl = FederationDir::open(&dir)?.renew_crl(&agency)?;
            println!("agency {agency} crl renewed");
            print_crl("  ", &crl);
            print_hand_out(&crl.path);
        }
    }
    Ok(())
}

fn print_issued(issued: &IssuedCertificate) {
    println!("issued {} serial {}", issued.identity, issued.serial);
    println!("  valid {} to {}", date(issued.not_before), date(issued.not_after));
    println!("  sha256 {}", issued.fingerprint_sha256);
    println!("  wrote {}", issued.cert_path.display());
    println!("  wrote {} (private)", issued.key_path.display());
    if let Some(pkcs12_path) = &issued.pkcs12_path {
        println!("  wrote {} (private, password protected)", pkcs12_path.display());
    }
}

fn print_revocation(revocation: &Revocation) {
    println!(
        "revoked serial {} of agency {} at {}",
        revocation.serial,
        revocation.agency,
        date(revocation.revoked_at)
    );
    print_crl("  ", &revocation.crl);
    print_hand_out(&revocation.crl.path);
}

fn print_crl(indent: &str, crl: &CrlInfo) {
    let next_update = crl.next_update.map_or_else(|| "never".to_owned(), date);
    println!(
        "{indent}crl {} number {}, {} revoked, next update {next_update}",
        crl.path.display(),
        crl.number,
        crl.revoked
    );
}

fn print_hand_out(crl_path: &Path) {
    println!("give every node the new {}", crl_path.display());
}

fn date(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}
