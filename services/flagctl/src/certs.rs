//! `flagctl certs`: the federation's certificate tooling over
//! [`flagnet_trust::pki::FederationDir`] (create a federation, an agency
//! CA, node and user certificates, list, revoke, renew a CRL), printing
//! every file it writes, and `inspect`, which shows a certificate and runs
//! a node's own handshake checks on it ([`flagnet_trust::inspect`]). See `certs/README.md` for the layout and the same
//! steps with the openssl command line.
//!
//! This module must never print a private key or a password, and never
//! decide anything about certificates itself: the trust crate does.

use flagnet_core::{AgencyId, UserId};
use flagnet_trust::TrustBundle;
use flagnet_trust::inspect::{Acceptance, CertificateDescription, acceptance, describe_certificate};
use flagnet_trust::pki::{CrlInfo, FederationDir, IssueOptions, IssuedCertificate, Revocation};
use flagnet_trust::rustls_pki_types::CertificateDer;
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
    /// Show a certificate (identity, validity, issuer, serial, usages) and,
    /// with --trust-dir, whether a node of the federation would accept it
    /// now, by the checks of a handshake; exits non-zero if it would not.
    Inspect {
        /// The certificate file: PEM (leaf first, then any intermediates) or DER.
        file: PathBuf,
        /// A node's trust directory (<agency>/ca.pem and <agency>/crl.pem),
        /// such as federation/agencies.
        #[arg(long, value_name = "DIR")]
        trust_dir: Option<PathBuf>,
        /// The federation's name; by default the one in the federation.toml
        /// beside the trust directory.
        #[arg(long, value_name = "NAME", requires = "trust_dir")]
        federation: Option<String>,
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
        CertsCommand::Inspect {
            file,
            trust_dir,
            federation,
        } => inspect(&file, trust_dir.as_deref(), federation)?,
    }
    Ok(())
}

fn inspect(
    file: &Path,
    trust_dir: Option<&Path>,
    federation: Option<String>,
) -> Result<(), Box<dyn std::error::Error>> {
    let chain = read_chain(file)?;
    let description = describe_certificate(&chain[0]).map_err(|refusal| format!("{}: {refusal}", file.display()))?;
    let verdict = match trust_dir {
        None => None,
        Some(trust_dir) => {
            let federation = match federation {
                Some(federation) => federation,
                None => federation_beside(trust_dir)?,
            };
            let bundle = TrustBundle::load(&federation, trust_dir)?;
            Some((acceptance(&bundle, &chain)?, trust_dir))
        }
    };
    let now = OffsetDateTime::now_utc();
    print!("{}", inspection_report(file, &description, chain.len(), now));
    match verdict {
        None => {
            println!("(give --trust-dir to check whether a node would accept it)");
            Ok(())
        }
        Some((verdict, trust_dir)) => {
            print!("{}", acceptance_report(&verdict, trust_dir));
            match verdict.refusal() {
                None => Ok(()),
                Some(refusal) => Err(format!(
                    "a node of federation {} would refuse {} ({}): {refusal}",
                    verdict.federation,
                    file.display(),
                    refusal.code()
                )
                .into()),
            }
        }
    }
}

/// The certificates of a PEM file, or the single certificate of a DER one.
fn read_chain(file: &Path) -> Result<Vec<CertificateDer<'static>>, Box<dyn std::error::Error>> {
    match flagnet_trust::pem::certificates(file) {
        Ok(chain) => Ok(chain),
        Err(pem_error) => {
            let bytes = std::fs::read(file).map_err(|error| format!("{}: {error}", file.display()))?;
            if bytes.first() == Some(&0x30) {
                Ok(vec![CertificateDer::from(bytes)])
            } else {
                Err(pem_error.into())
            }
        }
    }
}

fn federation_beside(trust_dir: &Path) -> Result<String, Box<dyn std::error::Error>> {
    let parent = trust_dir.parent().unwrap_or(Path::new("."));
    FederationDir::open(parent)
        .map(|federation| federation.federation().to_owned())
        .map_err(|error| {
            format!(
                "give --federation: no federation.toml beside {} ({error})",
                trust_dir.display()
            )
            .into()
        })
}

fn inspection_report(
    file: &Path,
    description: &CertificateDescription,
    chain_length: usize,
    now: OffsetDateTime,
) -> String {
    let identity = match &description.identity {
        Ok(identity) if identity.is_node() => format!("{identity} (the node of agency {})", identity.agency),
        Ok(identity) => format!("{identity} (a person of agency {})", identity.agency),
        Err(refusal) => format!("none: {refusal}"),
    };
    let validity = if now < description.not_before {
        "not yet valid"
    } else if now > description.not_after {
        "expired"
    } else {
        "valid now"
    };
    let list = |items: &[String]| {
        if items.is_empty() {
            "-".to_owned()
        } else {
            items.join(", ")
        }
    };
    let key_usage: Vec<String> = description.key_usage.iter().map(|usage| (*usage).to_owned()).collect();
    let extended_key_usage = description
        .extended_key_usage
        .as_deref()
        .map_or_else(|| "(no extension)".to_owned(), list);
    let mut report = format!("certificate {}\n", file.display());
    for (label, value) in [
        ("identity", identity),
        ("subject", description.subject.clone()),
        ("issuer", description.issuer.clone()),
        ("serial", description.serial.clone()),
        (
            "valid",
            format!(
                "{} to {} ({validity})",
                date(description.not_before),
                date(description.not_after)
            ),
        ),
        ("ca", if description.is_ca { "yes" } else { "no" }.to_owned()),
        ("key usage", list(&key_usage)),
        ("ext key usage", extended_key_usage),
        ("uri names", list(&description.uri_names)),
        ("dns names", list(&description.dns_names)),
        ("ip addresses", list(&description.ip_addresses)),
        ("sha256", description.fingerprint_sha256.clone()),
    ] {
        report.push_str(&format!("  {label:<14} {value}\n"));
    }
    if chain_length > 1 {
        report.push_str(&format!("  {:<14} {} more in the file\n", "chain", chain_length - 1));
    }
    report
}

fn acceptance_report(verdict: &Acceptance, trust_dir: &Path) -> String {
    let outcome = |result: &Result<(), flagnet_trust::CertificateRefusal>| match result {
        Ok(()) => "accepted".to_owned(),
        Err(refusal) => format!("refused ({}): {refusal}", refusal.code()),
    };
    let mut report = format!(
        "a node of federation {} with trust directory {}:\n",
        verdict.federation,
        trust_dir.display()
    );
    report.push_str(&format!("  {:<14} {}\n", "as a client", outcome(&verdict.as_client)));
    if let Some(as_server) = &verdict.as_server {
        report.push_str(&format!("  {:<14} {}\n", "as its node", outcome(as_server)));
    }
    report
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

#[cfg(test)]
mod tests {
    use super::*;
    use flagnet_core::UserId;

    fn federation() -> (tempfile::TempDir, FederationDir, AgencyId) {
        let temporary = tempfile::tempdir().unwrap();
        let federation = FederationDir::init(&temporary.path().join("federation"), "flagnet.test").unwrap();
        let agency = AgencyId::parse("rolla-pd").unwrap();
        federation.add_agency(&agency).unwrap();
        (temporary, federation, agency)
    }

    #[test]
    fn inspect_shows_the_fields_and_accepts_a_valid_person() {
        let (_temporary, federation, agency) = federation();
        let user = federation
            .issue_user(&agency, &UserId::parse("dispatcher1").unwrap(), None)
            .unwrap();
        let chain = read_chain(&user.cert_path).unwrap();
        let description = describe_certificate(&chain[0]).unwrap();
        let report = inspection_report(&user.cert_path, &description, chain.len(), OffsetDateTime::now_utc());
        for expected in [
            "spiffe://flagnet.test/agency/rolla-pd/user/dispatcher1 (a person of agency rolla-pd)",
            &format!("serial         {}", user.serial),
            "(valid now)",
            "ext key usage  clientAuth",
            "key usage      digitalSignature",
            &user.fingerprint_sha256,
        ] {
            assert!(report.contains(expected), "{expected:?} not in\n{report}");
        }
        assert_eq!(federation_beside(&federation.trust_dir()).unwrap(), "flagnet.test");
        inspect(&user.cert_path, Some(&federation.trust_dir()), None).unwrap();
    }

    #[test]
    fn inspect_fails_with_the_reason_for_a_revoked_certificate() {
        let (_temporary, federation, agency) = federation();
        let user = federation
            .issue_user(&agency, &UserId::parse("dispatcher1").unwrap(), None)
            .unwrap();
        federation.revoke(&agency, &user.serial).unwrap();
        let error = inspect(&user.cert_path, Some(&federation.trust_dir()), None).unwrap_err();
        assert!(error.to_string().contains("would refuse"), "{error}");
        assert!(error.to_string().contains("(revoked)"), "{error}");
        let bundle = TrustBundle::load("flagnet.test", &federation.trust_dir()).unwrap();
        let verdict = acceptance(&bundle, &read_chain(&user.cert_path).unwrap()).unwrap();
        let report = acceptance_report(&verdict, &federation.trust_dir());
        assert!(report.contains("as a client    refused (revoked)"), "{report}");
    }

    #[test]
    fn inspect_reads_der_and_checks_a_node_in_both_roles() {
        let (temporary, federation, agency) = federation();
        let node = federation.issue_node(&agency).unwrap();
        let der = flagnet_trust::pem::certificates(&node.cert_path).unwrap().remove(0);
        let der_path = temporary.path().join("node.der");
        std::fs::write(&der_path, der.as_ref()).unwrap();
        let chain = read_chain(&der_path).unwrap();
        let bundle = TrustBundle::load("flagnet.test", &federation.trust_dir()).unwrap();
        let verdict = acceptance(&bundle, &chain).unwrap();
        let report = acceptance_report(&verdict, &federation.trust_dir());
        assert!(report.contains("as a client    accepted"), "{report}");
        assert!(report.contains("as its node    accepted"), "{report}");
        assert!(inspect(&der_path, Some(&federation.trust_dir()), Some("elsewhere.test".into())).is_err());
    }
}
