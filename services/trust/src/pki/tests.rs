use super::*;
use std::os::unix::fs::PermissionsExt;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

const FEDERATION: &str = "flagnet.test";

fn federation() -> (tempfile::TempDir, FederationDir, AgencyId) {
    let temporary = tempfile::tempdir().unwrap();
    let federation = FederationDir::init(&temporary.path().join("federation"), FEDERATION).unwrap();
    let rolla = AgencyId::parse("rolla-pd").unwrap();
    federation.add_agency(&rolla).unwrap();
    (temporary, federation, rolla)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn der_of(path: &Path) -> Vec<u8> {
    crate::pem::certificates(path).unwrap().remove(0).to_vec()
}

#[test]
fn init_writes_the_federation_file_and_open_reads_it() {
    let temporary = tempfile::tempdir().unwrap();
    let root = temporary.path().join("federation");
    let created = FederationDir::init(&root, FEDERATION).unwrap();
    assert_eq!(created.trust_dir(), root.join("agencies"));
    assert!(root.join("agencies").is_dir());
    assert_eq!(
        std::fs::read_to_string(root.join("federation.toml")).unwrap().trim(),
        "name = \"flagnet.test\""
    );
    let opened = FederationDir::open(&root).unwrap();
    assert_eq!(opened.federation(), FEDERATION);
    assert!(matches!(
        FederationDir::init(&root, FEDERATION),
        Err(TrustError::AlreadyExists {
            what: "federation file",
            ..
        })
    ));
}

#[test]
fn init_refuses_a_federation_name_that_is_not_a_trust_domain() {
    let temporary = tempfile::tempdir().unwrap();
    let error = FederationDir::init(temporary.path(), "Flagnet Test").unwrap_err();
    assert!(error.to_string().starts_with("invalid federation"), "{error}");
}

#[test]
fn open_refuses_unknown_fields() {
    let temporary = tempfile::tempdir().unwrap();
    FederationDir::init(temporary.path(), FEDERATION).unwrap();
    std::fs::write(
        temporary.path().join("federation.toml"),
        "name = \"flagnet.test\"\nnmae = \"x\"\n",
    )
    .unwrap();
    let error = FederationDir::open(temporary.path()).unwrap_err();
    assert!(error.to_string().starts_with("federation file"), "{error}");
}

#[test]
fn add_agency_makes_a_ca_with_the_required_extensions() {
    let (_temporary, federation, rolla) = federation();
    let directory = federation.agency_dir(&rolla);
    assert_eq!(mode(&directory.join(CA_KEY_FILE)), 0o600);
    assert_eq!(federation.agencies().unwrap(), vec![rolla.clone()]);

    let der = der_of(&directory.join(CA_CERTIFICATE_FILE));
    let (_, ca) = x509_parser::certificate::X509Certificate::from_der(&der).unwrap();
    let basic_constraints = ca.basic_constraints().unwrap().unwrap();
    assert!(basic_constraints.critical);
    assert!(basic_constraints.value.ca);
    assert_eq!(basic_constraints.value.path_len_constraint, Some(0));
    let key_usage = ca.key_usage().unwrap().unwrap();
    assert!(key_usage.critical);
    assert!(key_usage.value.key_cert_sign() && key_usage.value.crl_sign());
    assert!(!key_usage.value.digital_signature());
    assert_eq!(ca.subject().to_string(), "O=flagnet.test, CN=rolla-pd CA");
    assert_eq!(ca.subject(), ca.issuer());
    let validity = ca.validity().not_after.to_datetime() - ca.validity().not_before.to_datetime();
    assert_eq!(validity, CA_VALIDITY + BACKDATE);

    let crl = crate::pem::crls(&directory.join(CRL_FILE)).unwrap().remove(0);
    let (_, crl) = x509_parser::parse_x509_crl(&crl).unwrap();
    assert_eq!(crl.iter_revoked_certificates().count(), 0);
    assert_eq!(crl.issuer(), ca.subject());
    let lifetime = crl.next_update().unwrap().to_datetime() - crl.last_update().to_datetime();
    assert_eq!(lifetime, CRL_VALIDITY);
}

#[test]
fn add_agency_refuses_an_existing_agency() {
    let (_temporary, federation, rolla) = federation();
    let before = std::fs::read(federation.ca_certificate_path(&rolla)).unwrap();
    assert!(matches!(
        federation.add_agency(&rolla),
        Err(TrustError::AlreadyExists {
            what: "agency directory",
            ..
        })
    ));
    assert_eq!(std::fs::read(federation.ca_certificate_path(&rolla)).unwrap(), before);
}

#[test]
fn issue_node_writes_a_server_and_client_leaf() {
    let (_temporary, federation, rolla) = federation();
    let issued = federation.issue_node(&rolla).unwrap();
    assert_eq!(issued.cert_path, federation.agency_dir(&rolla).join("nodes/node.pem"));
    assert_eq!(issued.key_path, federation.agency_dir(&rolla).join("nodes/node.key"));
    assert_eq!(mode(&issued.key_path), 0o600);
    assert_eq!(issued.identity, Identity::node(FEDERATION, rolla.clone()));
    assert!(issued.pkcs12_path.is_none());

    let der = der_of(&issued.cert_path);
    assert_eq!(fingerprint_sha256(&der), issued.fingerprint_sha256);
    let (_, leaf) = x509_parser::certificate::X509Certificate::from_der(&der).unwrap();
    let names = &leaf.subject_alternative_name().unwrap().unwrap().value.general_names;
    assert_eq!(
        names,
        &vec![
            GeneralName::URI("spiffe://flagnet.test/agency/rolla-pd/node"),
            GeneralName::DNSName("localhost"),
            GeneralName::IPAddress(&[127, 0, 0, 1]),
        ]
    );
    let extended_key_usage = leaf.extended_key_usage().unwrap().unwrap().value;
    assert!(extended_key_usage.server_auth && extended_key_usage.client_auth);
    let key_usage = leaf.key_usage().unwrap().unwrap();
    assert!(key_usage.critical && key_usage.value.digital_signature() && !key_usage.value.key_cert_sign());
    let basic_constraints = leaf.basic_constraints().unwrap().unwrap();
    assert!(basic_constraints.critical && !basic_constraints.value.ca);
    let validity = leaf.validity().not_after.to_datetime() - leaf.validity().not_before.to_datetime();
    assert_eq!(validity, LEAF_VALIDITY + BACKDATE);
    assert_eq!(leaf.validity().not_after.to_datetime(), issued.not_after);
    assert_eq!(
        leaf.raw_serial_as_string().replace(':', "").to_uppercase(),
        issued.serial
    );
}

#[test]
fn issue_user_writes_a_client_leaf_and_a_pkcs12_file() {
    let (_temporary, federation, rolla) = federation();
    let user = UserId::parse("J.Doe@rolla").unwrap();
    let issued = federation.issue_user(&rolla, &user, Some("correct horse")).unwrap();
    let directory = federation.agency_dir(&rolla).join("users");
    assert_eq!(issued.cert_path, directory.join("J.Doe@rolla.pem"));
    assert_eq!(issued.key_path, directory.join("J.Doe@rolla.key"));
    let pkcs12_path = issued.pkcs12_path.clone().unwrap();
    assert_eq!(pkcs12_path, directory.join("J.Doe@rolla.p12"));
    assert_eq!(mode(&pkcs12_path), 0o600);
    assert_eq!(mode(&issued.key_path), 0o600);

    let der = der_of(&issued.cert_path);
    let (_, leaf) = x509_parser::certificate::X509Certificate::from_der(&der).unwrap();
    let names = &leaf.subject_alternative_name().unwrap().unwrap().value.general_names;
    assert_eq!(
        names,
        &vec![GeneralName::URI(
            "spiffe://flagnet.test/agency/rolla-pd/user/J.Doe@rolla"
        )]
    );
    let extended_key_usage = leaf.extended_key_usage().unwrap().unwrap().value;
    assert!(extended_key_usage.client_auth && !extended_key_usage.server_auth);

    let pkcs12 = openssl::pkcs12::Pkcs12::from_der(&std::fs::read(&pkcs12_path).unwrap()).unwrap();
    assert!(pkcs12.parse2("wrong").is_err());
    let parsed = pkcs12.parse2("correct horse").unwrap();
    assert_eq!(parsed.cert.unwrap().to_der().unwrap(), der);
    assert_eq!(parsed.ca.unwrap().len(), 1);
    let key_from_pem = PKey::private_key_from_pem(&std::fs::read(&issued.key_path).unwrap()).unwrap();
    assert!(parsed.pkey.unwrap().public_eq(&key_from_pem));
}

#[test]
fn issue_user_refuses_empty_passwords_and_node_only_options() {
    let (_temporary, federation, rolla) = federation();
    let user = UserId::parse("dispatcher1").unwrap();
    let error = federation.issue_user(&rolla, &user, Some("")).unwrap_err();
    assert!(error.to_string().contains("must not be empty"), "{error}");
    let error = federation.issue_user(&rolla, &user, Some("a\0b")).unwrap_err();
    assert!(error.to_string().contains("nul"), "{error}");
    let options = IssueOptions {
        extra_dns_names: vec!["node.example".into()],
        ..IssueOptions::default()
    };
    let error = federation.issue_user_with(&rolla, &user, None, &options).unwrap_err();
    assert!(error.to_string().contains("node certificates only"), "{error}");
}

#[test]
fn issue_refuses_an_unknown_agency_and_an_empty_validity() {
    let (_temporary, federation, _) = federation();
    let error = federation.issue_node(&AgencyId::parse("nowhere").unwrap()).unwrap_err();
    assert!(error.to_string().contains("agency nowhere has no ca"), "{error}");
    let now = OffsetDateTime::now_utc();
    let options = IssueOptions {
        not_before: Some(now),
        not_after: Some(now),
        ..IssueOptions::default()
    };
    let error = federation
        .issue_node_with(&AgencyId::parse("rolla-pd").unwrap(), &options)
        .unwrap_err();
    assert!(error.to_string().contains("must be later"), "{error}");
}

#[test]
fn extra_node_names_are_added() {
    let (_temporary, federation, rolla) = federation();
    let options = IssueOptions {
        extra_dns_names: vec!["rolla-pd.flagnet.example".into()],
        extra_ip_addresses: vec!["10.0.0.7".parse().unwrap()],
        ..IssueOptions::default()
    };
    let issued = federation.issue_node_with(&rolla, &options).unwrap();
    let der = der_of(&issued.cert_path);
    let (_, leaf) = x509_parser::certificate::X509Certificate::from_der(&der).unwrap();
    let names = &leaf.subject_alternative_name().unwrap().unwrap().value.general_names;
    assert!(names.contains(&GeneralName::DNSName("rolla-pd.flagnet.example")));
    assert!(names.contains(&GeneralName::IPAddress(&[10, 0, 0, 7])));
    let bad = IssueOptions {
        extra_dns_names: vec!["not a name".into()],
        ..IssueOptions::default()
    };
    assert!(federation.issue_node_with(&rolla, &bad).is_err());
}

#[test]
fn serials_count_up_and_every_issue_is_recorded() {
    let (_temporary, federation, rolla) = federation();
    let first = federation.issue_node(&rolla).unwrap();
    let second = federation.issue_node(&rolla).unwrap();
    let third = federation
        .issue_user(&rolla, &UserId::parse("dispatcher1").unwrap(), None)
        .unwrap();
    assert_eq!(
        (first.serial.as_str(), second.serial.as_str(), third.serial.as_str()),
        ("02", "03", "04")
    );
    let listing = federation.list().unwrap();
    assert_eq!(listing.len(), 1);
    let serials: Vec<&str> = listing[0]
        .certificates
        .iter()
        .map(|record| record.serial.as_str())
        .collect();
    assert_eq!(serials, vec!["02", "03", "04"]);
    assert_eq!(listing[0].certificates[2].identity.as_ref(), Some(&third.identity));
    assert_eq!(listing[0].certificates[2].fingerprint_sha256, third.fingerprint_sha256);
    assert!(listing[0].certificates.iter().all(|record| record.revoked_at.is_none()));
}

#[test]
fn revoke_writes_a_new_crl_and_list_shows_it() {
    let (_temporary, federation, rolla) = federation();
    let node = federation.issue_node(&rolla).unwrap();
    let user = federation
        .issue_user(&rolla, &UserId::parse("dispatcher1").unwrap(), None)
        .unwrap();
    let revocation = federation.revoke(&rolla, &user.serial.to_lowercase()).unwrap();
    assert_eq!(revocation.serial, user.serial);
    assert_eq!(revocation.crl.number, "2");
    assert_eq!(revocation.crl.revoked, 1);

    let listing = federation.list().unwrap();
    let by_serial = |serial: &str| {
        listing[0]
            .certificates
            .iter()
            .find(|record| record.serial == serial)
            .unwrap()
            .clone()
    };
    assert!(by_serial(&user.serial).revoked_at.is_some());
    assert!(by_serial(&node.serial).revoked_at.is_none());
    assert_eq!(listing[0].crl.number, "2");

    assert!(matches!(
        federation.revoke(&rolla, &user.serial),
        Err(TrustError::AlreadyRevoked { .. })
    ));
    let second = federation.revoke_file(&node.cert_path).unwrap();
    assert_eq!(second.serial, node.serial);
    assert_eq!(second.crl.number, "3");
    assert_eq!(second.crl.revoked, 2);
    let renewed = federation.renew_crl(&rolla).unwrap();
    assert_eq!((renewed.number.as_str(), renewed.revoked), ("4", 2));
}

#[test]
fn revoke_refuses_unknown_and_malformed_serials() {
    let (_temporary, federation, rolla) = federation();
    let error = federation.revoke(&rolla, "7f").unwrap_err();
    assert!(error.to_string().contains("no certificate with serial 7F"), "{error}");
    let error = federation.revoke(&rolla, "-1").unwrap_err();
    assert!(error.to_string().starts_with("invalid serial"), "{error}");
}

#[test]
fn revoke_file_refuses_a_certificate_of_another_ca() {
    let (temporary, federation, rolla) = federation();
    let elsewhere = FederationDir::init(&temporary.path().join("elsewhere"), FEDERATION).unwrap();
    elsewhere.add_agency(&rolla).unwrap();
    let stranger = elsewhere.issue_node(&rolla).unwrap();
    let error = federation.revoke_file(&stranger.cert_path).unwrap_err();
    assert!(
        error.to_string().contains("not issued by the ca of agency rolla-pd"),
        "{error}"
    );
}

#[test]
fn canonical_serials_match_what_openssl_prints() {
    assert_eq!(canonical_serial("1").unwrap(), "01");
    assert_eq!(canonical_serial("0a:ff").unwrap(), "0AFF");
    assert_eq!(canonical_serial("00ff").unwrap(), "FF");
    assert!(canonical_serial("").is_err());
    assert!(canonical_serial("xyz").is_err());
}

#[test]
fn concurrent_issues_get_distinct_serials() {
    let (_temporary, federation, rolla) = federation();
    let serials: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|worker| {
                let federation = &federation;
                let rolla = &rolla;
                scope.spawn(move || {
                    (0..3)
                        .map(|index| {
                            let user = UserId::parse(&format!("user{worker}-{index}")).unwrap();
                            federation.issue_user(rolla, &user, None).unwrap().serial
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|worker| worker.join().unwrap()).collect()
    });
    let distinct: std::collections::BTreeSet<_> = serials.iter().collect();
    assert_eq!(distinct.len(), 12, "{serials:?}");
    assert_eq!(federation.list().unwrap()[0].certificates.len(), 12);
}
