//! A fresh PKI per test, made with the pki module, and one real TLS
//! connection over 127.0.0.1 between a server and a client config.

use crate::bundle::TrustBundle;
use crate::error::CertificateRefusal;
use crate::pki::build::CertificateProfile;
use crate::pki::{FederationDir, IssueOptions, IssuedCertificate};
use crate::tls::{PeerCertificateInfo, build_client_config, build_server_config, crypto_provider, peer_identity};
use crate::verifier::{AgencyClientVerifier, AgencyServerVerifier, ExpectedServer, refusal_of};
use flagnet_core::{AgencyId, Identity, UserId};
use rustls::client::ResolvesClientCert;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, HandshakeKind, ServerConfig, SignatureScheme};
use rustls_pki_types::ServerName;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

pub(crate) const FEDERATION: &str = "flagnet.test";

/// A certificate and key on disk.
#[derive(Debug, Clone)]
pub(crate) struct Pair {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

impl From<&IssuedCertificate> for Pair {
    fn from(issued: &IssuedCertificate) -> Self {
        Self {
            cert: issued.cert_path.clone(),
            key: issued.key_path.clone(),
        }
    }
}

/// A federation of two agencies, rolla-pd (whose node serves) and
/// phelps-so, in a temporary directory.
pub(crate) struct TestFederation {
    pub(crate) temporary: tempfile::TempDir,
    pub(crate) dir: FederationDir,
    pub(crate) rolla: AgencyId,
    pub(crate) phelps: AgencyId,
    pub(crate) rolla_node: IssuedCertificate,
}

impl TestFederation {
    pub(crate) fn new() -> Self {
        let temporary = tempfile::tempdir().unwrap();
        let dir = FederationDir::init(&temporary.path().join("federation"), FEDERATION).unwrap();
        let rolla = AgencyId::parse("rolla-pd").unwrap();
        let phelps = AgencyId::parse("phelps-so").unwrap();
        dir.add_agency(&rolla).unwrap();
        dir.add_agency(&phelps).unwrap();
        let rolla_node = dir.issue_node(&rolla).unwrap();
        Self {
            temporary,
            dir,
            rolla,
            phelps,
            rolla_node,
        }
    }

    /// The bundle as it is on disk now (after any revocation).
    pub(crate) fn bundle(&self) -> Arc<TrustBundle> {
        Arc::new(TrustBundle::load(FEDERATION, &self.dir.trust_dir()).unwrap())
    }

    /// rolla-pd's node, through the public `server_config`.
    pub(crate) fn rolla_server(&self) -> Arc<ServerConfig> {
        crate::tls::server_config(self.bundle(), &self.rolla_node.cert_path, &self.rolla_node.key_path).unwrap()
    }

    pub(crate) fn user(&self, agency: &AgencyId, user: &str) -> IssuedCertificate {
        self.dir
            .issue_user(agency, &UserId::parse(user).unwrap(), None)
            .unwrap()
    }

    pub(crate) fn user_with(&self, agency: &AgencyId, user: &str, options: &IssueOptions) -> IssuedCertificate {
        self.dir
            .issue_user_with(agency, &UserId::parse(user).unwrap(), None, options)
            .unwrap()
    }

    /// The profile of an ordinary user certificate, to change one thing in.
    pub(crate) fn user_profile(&self, agency: &AgencyId, user: &str) -> CertificateProfile {
        let identity = Identity::user(FEDERATION, agency.clone(), UserId::parse(user).unwrap());
        CertificateProfile::user(&identity, &IssueOptions::default()).unwrap()
    }

    pub(crate) fn node_profile(&self, agency: &AgencyId) -> CertificateProfile {
        CertificateProfile::node(&Identity::node(FEDERATION, agency.clone()), &IssueOptions::default()).unwrap()
    }

    /// Signs `profile` with `signer`'s CA, whatever it says, and writes it
    /// beside the federation.
    pub(crate) fn odd(&self, signer: &AgencyId, profile: &CertificateProfile) -> Pair {
        let signed = self.dir.sign_leaf(signer, profile).unwrap();
        write_pair(
            &self.temporary.path().join("odd"),
            &signed.serial,
            &signed.certificate,
            &signed.key,
        )
    }
}

pub(crate) fn write_pair(
    directory: &Path,
    stem: &str,
    certificate: &openssl::x509::X509,
    key: &openssl::pkey::PKey<openssl::pkey::Private>,
) -> Pair {
    std::fs::create_dir_all(directory).unwrap();
    let pair = Pair {
        cert: directory.join(format!("{stem}.pem")),
        key: directory.join(format!("{stem}.key")),
    };
    std::fs::write(&pair.cert, certificate.to_pem().unwrap()).unwrap();
    std::fs::write(&pair.key, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    pair
}

/// A server presenting any pair, without `server_config`'s own checks.
pub(crate) fn server_presenting(bundle: &TrustBundle, pair: &Pair) -> Arc<ServerConfig> {
    let chain = crate::pem::certificates(&pair.cert).unwrap();
    let key = crate::pem::private_key(&pair.key).unwrap();
    let client_verifier = AgencyClientVerifier::new(bundle, crypto_provider()).unwrap();
    build_server_config(client_verifier, chain, key, crypto_provider()).unwrap()
}

/// A client presenting any pair (or none), without `client_config`'s own
/// checks and without rustls' client-side parse of its own certificate (so
/// that even a certificate webpki cannot read reaches the server).
pub(crate) fn client_presenting(bundle: &TrustBundle, expected: &AgencyId, pair: Option<&Pair>) -> Arc<ClientConfig> {
    let verifier =
        AgencyServerVerifier::new(bundle, ExpectedServer::Agency(expected.clone()), crypto_provider()).unwrap();
    let mut config = build_client_config(verifier, None, crypto_provider()).unwrap();
    if let Some(pair) = pair {
        let key = crypto_provider()
            .key_provider
            .load_private_key(crate::pem::private_key(&pair.key).unwrap())
            .unwrap();
        let certified = CertifiedKey::new(crate::pem::certificates(&pair.cert).unwrap(), key);
        config.client_auth_cert_resolver = Arc::new(AlwaysPresent(Arc::new(certified)));
    }
    Arc::new(config)
}

#[derive(Debug)]
struct AlwaysPresent(Arc<CertifiedKey>);

impl ResolvesClientCert for AlwaysPresent {
    fn resolve(&self, _root_hint_subjects: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The checked client of the public API.
pub(crate) fn client(bundle: Arc<TrustBundle>, expected: &AgencyId, pair: &Pair) -> Arc<ClientConfig> {
    crate::tls::client_config(bundle, ExpectedServer::Agency(expected.clone()), &pair.cert, &pair.key).unwrap()
}

/// What the server saw of an accepted connection.
#[derive(Debug)]
pub(crate) struct Accepted {
    pub(crate) peer: Option<PeerCertificateInfo>,
    pub(crate) handshake_kind: Option<HandshakeKind>,
    pub(crate) alpn: Option<Vec<u8>>,
}

/// Both ends of one connection attempt. A connection counts as accepted
/// only if a ping went one way and a pong the other.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) server: Result<Accepted, std::io::Error>,
    pub(crate) client: Result<(), std::io::Error>,
}

impl Outcome {
    pub(crate) fn accepted(self) -> Accepted {
        let client = self.client.map_err(|error| error.to_string());
        let server = self
            .server
            .unwrap_or_else(|error| panic!("server refused: {error} (client: {client:?})"));
        client.unwrap_or_else(|error| panic!("client failed: {error}"));
        server
    }

    /// The rustls error of the side that refused; the other side must
    /// have failed too.
    fn refused_by(self, side: Side) -> rustls::Error {
        let (refusing, other) = match side {
            Side::Server => (self.server.map(|_| ()), self.client),
            Side::Client => (self.client, self.server.map(|_| ())),
        };
        let Err(error) = refusing else {
            panic!("{side:?} accepted the connection");
        };
        assert!(other.is_err(), "the other side of a refused handshake went on");
        error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .unwrap_or_else(|| panic!("{side:?} failed without a tls error: {error}"))
            .clone()
    }

    /// The server's refusal.
    pub(crate) fn server_error(self) -> rustls::Error {
        self.refused_by(Side::Server)
    }

    /// The client's refusal.
    pub(crate) fn client_error(self) -> rustls::Error {
        self.refused_by(Side::Client)
    }

    /// The reason the server's verifier gave.
    pub(crate) fn server_refusal(self) -> CertificateRefusal {
        let error = self.server_error();
        refusal_of(&error)
            .unwrap_or_else(|| panic!("not a flagnet refusal: {error}"))
            .clone()
    }

    /// The reason the client's verifier gave.
    pub(crate) fn client_refusal(self) -> CertificateRefusal {
        let error = self.client_error();
        refusal_of(&error)
            .unwrap_or_else(|| panic!("not a flagnet refusal: {error}"))
            .clone()
    }
}

#[derive(Debug, Clone, Copy)]
enum Side {
    Server,
    Client,
}

pub(crate) async fn connect(server: Arc<ServerConfig>, client: Arc<ClientConfig>) -> Outcome {
    connect_to(server, client, ServerName::try_from("localhost").unwrap()).await
}

/// One connection on 127.0.0.1: handshake, ping, pong.
pub(crate) async fn connect_to(
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    server_name: ServerName<'static>,
) -> Outcome {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let serving = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut tls = TlsAcceptor::from(server).accept(tcp).await?;
        let (_, connection) = tls.get_ref();
        let accepted = Accepted {
            peer: peer_identity(connection),
            handshake_kind: connection.handshake_kind(),
            alpn: connection.alpn_protocol().map(<[u8]>::to_vec),
        };
        let mut ping = [0u8; 4];
        tls.read_exact(&mut ping).await?;
        assert_eq!(&ping, b"ping");
        tls.write_all(b"pong").await?;
        tls.flush().await?;
        tls.shutdown().await?;
        Ok::<_, std::io::Error>(accepted)
    });
    let calling = async {
        let tcp = TcpStream::connect(address).await?;
        let mut tls = TlsConnector::from(client).connect(server_name, tcp).await?;
        tls.write_all(b"ping").await?;
        tls.flush().await?;
        let mut pong = [0u8; 4];
        tls.read_exact(&mut pong).await?;
        assert_eq!(&pong, b"pong");
        Ok::<_, std::io::Error>(())
    };
    let client = tokio::time::timeout(Duration::from_secs(10), calling)
        .await
        .expect("client timed out");
    let server = tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("server timed out")
        .expect("server task panicked");
    Outcome { server, client }
}
