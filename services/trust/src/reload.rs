//! A node's TLS server config that reloads from disk without a restart:
//! its own certificate and key, the trust bundle (agency CAs) and the CRLs.
//!
//! Every reload reads all of these files once, into memory, and builds a
//! whole new `rustls::ServerConfig` from those bytes with exactly the checks
//! of a start: every agency loads (CA valid now, CRL present, parsable and
//! signed by the CA), the key matches the certificate, and the certificate
//! is this node's identity and would be accepted by its peers (chain to its
//! agency's CA, not revoked, serverAuth). Only then is the new config
//! swapped in, atomically ([`ArcSwap`]), so a handshake sees either the old
//! set or the new one, never a mix. A set that fails any check is refused,
//! the last good set stays in use, and [`ReloadingServerConfig::status`]
//! reports the refusal until a later set loads.
//!
//! One exception keeps revocations from being held back: when the new
//! trust bundle loads whole but the node's own certificate and key are
//! refused (torn, missing, revoked, of another agency), the new bundle and
//! CRLs are taken into use with the node's previous certificate and key,
//! and the reload is still reported as refused
//! ([`TrustReloadRefused::bundle_applied`]). Otherwise a CRL that revokes
//! both a person and the node's own certificate would leave that person
//! accepted here until the node had a new certificate.
//!
//! The node's own calls to its peers follow the same set:
//! [`ReloadingServerConfig::peer_client_config`] presents the certificate
//! in use and checks the peer against the CAs and CRLs in use, at each
//! handshake.
//!
//! This module must never swap in a set it has not validated whole, never
//! drop the last good set because the files are being rewritten, and never
//! touch connections that are already open: the listener takes the current
//! config for each new handshake, and existing connections end by the
//! maximum connection age. Scheduling (the poll interval, SIGHUP) is the
//! node's; this module only says what changed and whether it loads.

use crate::bundle::{FileContents, TrustBundle, TrustDirFiles};
use crate::error::{CertificateRefusal, Result, TrustError};
use crate::events::{TrustEvent, TrustReloadRefused, TrustReloaded};
use crate::identity::{LeafCertificate, fingerprint_sha256, parse_certificate};
use crate::pki::build::serial_text;
use crate::tls::{
    NodeCertificate, build_dynamic_client_config, build_server_config, crypto_provider, node_server_config,
};
use crate::verifier::{AgencyClientVerifier, AgencyServerVerifier, ExpectedServer};
use arc_swap::ArcSwap;
use flagnet_core::{AgencyId, Identity};
use rustls::ServerConfig;
use rustls::client::ResolvesClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, OtherError, SignatureScheme};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use time::OffsetDateTime;

/// The files a node's trust is made of, and whom they must make it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTrustPaths {
    /// The federation's SPIFFE trust domain.
    pub federation: String,
    /// The node's agency: its certificate must hold this agency's node identity.
    pub agency: AgencyId,
    /// The node's certificate chain (PEM), leaf first.
    pub certificate: PathBuf,
    /// The node's private key (PEM).
    pub private_key: PathBuf,
    /// One subdirectory per agency, each with `ca.pem` and `crl.pem`.
    pub trust_dir: PathBuf,
}

/// What started a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadTrigger {
    /// The node started.
    Start,
    /// The periodic check found files that differ from the last attempt.
    Poll,
    /// SIGHUP: reload now, even if nothing seems to have changed.
    Signal,
    /// A call of the node's reload function (tests, an admin command).
    Manual,
}

impl fmt::Display for ReloadTrigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Start => "start",
            Self::Poll => "poll",
            Self::Signal => "signal",
            Self::Manual => "manual",
        })
    }
}

/// What is in use: the node's certificate and the agencies it trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustSetSummary {
    pub node_identity: Identity,
    /// Uppercase hex, as `flagctl certs list` shows it.
    pub node_serial: String,
    pub node_fingerprint_sha256: String,
    pub node_not_after: OffsetDateTime,
    /// The agencies of the trust bundle, sorted.
    pub agencies: Vec<AgencyId>,
    pub loaded_at: OffsetDateTime,
    pub trigger: ReloadTrigger,
}

/// The result of one reload attempt.
#[derive(Debug, Clone)]
pub enum ReloadOutcome {
    /// A periodic check found the same files as the last attempt.
    Unchanged,
    /// A new set is in use.
    Reloaded(TrustReloaded),
    /// The files on disk were refused; the last good set is in use.
    Refused(TrustReloadRefused),
}

impl ReloadOutcome {
    /// The event to report, if anything happened.
    pub fn event(&self) -> Option<TrustEvent> {
        match self {
            Self::Unchanged => None,
            Self::Reloaded(reloaded) => Some(TrustEvent::Reloaded(reloaded.clone())),
            Self::Refused(refused) => Some(TrustEvent::ReloadRefused(refused.clone())),
        }
    }
}

/// The state of a node's trust, for health output.
#[derive(Debug, Clone)]
pub struct TrustStatus {
    /// The set every new handshake uses.
    pub active: TrustSetSummary,
    /// Why the files on disk now are refused; `None` when the last attempt
    /// loaded (or nothing was attempted since the start).
    pub last_error: Option<TrustReloadRefused>,
    /// Sets swapped in since the start (the start's own set not counted).
    pub reloads: u64,
    /// Reload attempts refused since the start.
    pub refusals: u64,
}

/// A node's server config, reloadable. The listener calls
/// [`ReloadingServerConfig::current`] for each new handshake.
#[derive(Debug)]
pub struct ReloadingServerConfig {
    paths: NodeTrustPaths,
    active: ArcSwap<ActiveSet>,
    state: Mutex<ReloadState>,
}

#[derive(Debug)]
struct ActiveSet {
    config: Arc<ServerConfig>,
    summary: TrustSetSummary,
    files: FileDigests,
    /// How this node, calling a peer, checks the node of each agency.
    peer_verifiers: BTreeMap<AgencyId, Arc<AgencyServerVerifier>>,
    /// What this node presents when it calls a peer.
    client_certificate: Arc<CertifiedKey>,
    /// The node's chain and key in use, for a new bundle whose own pair is refused.
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

/// A new set, and the refusal of the node's pair when only the bundle is new.
struct Built {
    set: ActiveSet,
    pair_refused: Option<TrustError>,
}

#[derive(Debug)]
struct ReloadState {
    /// The digest of the files of the last attempt, good or refused.
    attempted: [u8; 32],
    last_error: Option<TrustReloadRefused>,
    reloads: u64,
    refusals: u64,
}

/// Each file read, and the SHA-256 of its contents (`None`: unreadable).
type FileDigests = BTreeMap<PathBuf, Option<[u8; 32]>>;

impl ReloadingServerConfig {
    /// Loads the set for the first time; an error here means the node
    /// cannot start.
    pub fn load(paths: NodeTrustPaths) -> Result<Self> {
        let snapshot = Snapshot::read(&paths);
        let digest = snapshot.digest;
        let Built { set, .. } = build(&paths, snapshot, ReloadTrigger::Start, None)?;
        Ok(Self {
            paths,
            active: ArcSwap::from_pointee(set),
            state: Mutex::new(ReloadState {
                attempted: digest,
                last_error: None,
                reloads: 0,
                refusals: 0,
            }),
        })
    }

    pub fn paths(&self) -> &NodeTrustPaths {
        &self.paths
    }

    /// The config for a new handshake.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.active.load().config.clone()
    }

    /// A client config for this node calling the node of `expected` (a
    /// peer) that follows reloads: each handshake presents the node's
    /// certificate in use and checks the peer against the CAs and CRLs in
    /// use, so a long-lived peer channel reconnects with the rotated
    /// certificate and refuses a peer revoked since. Fails when `expected`
    /// is not an agency of the bundle in use.
    pub fn peer_client_config(self: &Arc<Self>, expected: ExpectedServer) -> Result<Arc<ClientConfig>> {
        let ExpectedServer::Agency(agency) = expected;
        if !self.active.load().peer_verifiers.contains_key(&agency) {
            return Err(TrustError::NotFound(format!(
                "agency {agency} is not in the trust bundle of federation {}",
                self.paths.federation
            )));
        }
        let provider = crypto_provider();
        let verifier = ActivePeerVerifier {
            source: self.clone(),
            expected: agency,
            algorithms: provider.signature_verification_algorithms,
        };
        build_dynamic_client_config(
            Arc::new(verifier),
            Arc::new(ActiveClientCertificate(self.clone())),
            provider,
        )
        .map(Arc::new)
        .map_err(|source| TrustError::Tls {
            context: "peer client config".into(),
            source,
        })
    }

    /// Reads the files and, if they differ from the last attempt (or the
    /// trigger is not a poll), validates them whole and swaps them in.
    /// Blocking: it reads files and parses certificates (a few
    /// milliseconds); call it off the async workers.
    pub fn reload(&self, trigger: ReloadTrigger) -> ReloadOutcome {
        let mut state = self.lock_state();
        let snapshot = Snapshot::read(&self.paths);
        if trigger == ReloadTrigger::Poll && snapshot.digest == state.attempted {
            return ReloadOutcome::Unchanged;
        }
        state.attempted = snapshot.digest;
        let active = self.active.load_full();
        let changed = changed_files(&active.files, &snapshot.files);
        let bundle_changed = changed
            .iter()
            .any(|path| path != &self.paths.certificate && path != &self.paths.private_key);
        let at = OffsetDateTime::now_utc();
        let refusal = match build(&self.paths, snapshot, trigger, Some(&active)) {
            Ok(Built {
                set,
                pair_refused: None,
            }) => {
                let reloaded = TrustReloaded {
                    at,
                    trigger,
                    active: set.summary.clone(),
                    changed,
                };
                self.active.store(Arc::new(set));
                state.last_error = None;
                state.reloads += 1;
                return ReloadOutcome::Reloaded(reloaded);
            }
            Ok(Built {
                set,
                pair_refused: Some(error),
            }) if bundle_changed => {
                let kept = set.summary.clone();
                self.active.store(Arc::new(set));
                TrustReloadRefused {
                    at,
                    trigger,
                    error: error.to_string(),
                    kept,
                    bundle_applied: true,
                    changed,
                }
            }
            Ok(Built {
                pair_refused: Some(error),
                ..
            })
            | Err(error) => TrustReloadRefused {
                at,
                trigger,
                error: error.to_string(),
                kept: active.summary.clone(),
                bundle_applied: false,
                changed,
            },
        };
        state.last_error = Some(refusal.clone());
        state.refusals += 1;
        ReloadOutcome::Refused(refusal)
    }

    pub fn status(&self) -> TrustStatus {
        let state = self.lock_state();
        TrustStatus {
            active: self.active.load().summary.clone(),
            last_error: state.last_error.clone(),
            reloads: state.reloads,
            refusals: state.refusals,
        }
    }

    fn lock_state(&self) -> MutexGuard<'_, ReloadState> {
        // the state is a few counters; a panic elsewhere cannot leave it torn
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The bytes of every file of the set, read once, and their digests.
struct Snapshot {
    certificate: FileContents,
    private_key: FileContents,
    trust_dir: Result<TrustDirFiles>,
    files: FileDigests,
    digest: [u8; 32],
}

impl Snapshot {
    fn read(paths: &NodeTrustPaths) -> Self {
        let certificate = FileContents::read(paths.certificate.clone());
        let private_key = FileContents::read(paths.private_key.clone());
        let trust_dir = TrustDirFiles::read(&paths.trust_dir);
        let mut files = FileDigests::new();
        let mut hasher = Sha256::new();
        for file in [&certificate, &private_key] {
            files.insert(file.path.clone(), file.digest());
        }
        match &trust_dir {
            Ok(trust_files) => {
                for file in trust_files.files() {
                    files.insert(file.path.clone(), file.digest());
                }
            }
            Err(error) => {
                files.insert(paths.trust_dir.clone(), None);
                hasher.update(error.to_string().as_bytes());
            }
        }
        for (path, digest) in &files {
            hasher.update(path.as_os_str().as_encoded_bytes());
            hasher.update([0]);
            match digest {
                Some(digest) => {
                    hasher.update([1]);
                    hasher.update(digest);
                }
                None => hasher.update([0]),
            }
        }
        Self {
            certificate,
            private_key,
            trust_dir,
            files,
            digest: hasher.finalize().into(),
        }
    }
}

/// Builds the set the files make. Fails when the bundle is refused, or
/// at the start when anything is; with an `active` set, a refused node pair
/// gives the new bundle with the active pair and the pair's refusal.
fn build(
    paths: &NodeTrustPaths,
    snapshot: Snapshot,
    trigger: ReloadTrigger,
    active: Option<&ActiveSet>,
) -> Result<Built> {
    let Snapshot {
        certificate,
        private_key,
        trust_dir,
        files,
        ..
    } = snapshot;
    let bundle = TrustBundle::from_files(&paths.federation, &trust_dir?)?;
    let pair = crate::pem::certificates_in(&paths.certificate, certificate.bytes()?).and_then(|chain| {
        let key = crate::pem::private_key_in(&paths.private_key, private_key.bytes()?)?;
        let node = NodeCertificate {
            chain: chain.clone(),
            key: key.clone_key(),
            cert_path: &paths.certificate,
            key_path: &paths.private_key,
        };
        let (config, leaf) = node_server_config(&bundle, node, Some(&paths.agency))?;
        let summary = summarize(&bundle, &leaf, &chain[0], &paths.certificate, trigger)?;
        Ok(ActiveSet {
            config,
            summary,
            files: files.clone(),
            peer_verifiers: peer_verifiers(&bundle)?,
            client_certificate: certified_key(&chain, &key, paths)?,
            chain,
            key,
        })
    });
    let (pair_refused, active) = match (pair, active) {
        (Ok(set), _) => {
            return Ok(Built {
                set,
                pair_refused: None,
            });
        }
        (Err(error), None) => return Err(error),
        (Err(error), Some(active)) => (error, active),
    };
    let provider = crypto_provider();
    let client_verifier = AgencyClientVerifier::new(&bundle, provider.clone())?;
    let config = build_server_config(client_verifier, active.chain.clone(), active.key.clone_key(), provider).map_err(
        |source| TrustError::Tls {
            context: "the active node certificate with the new trust bundle".into(),
            source,
        },
    )?;
    let summary = TrustSetSummary {
        agencies: bundle.agencies().cloned().collect(),
        loaded_at: OffsetDateTime::now_utc(),
        trigger,
        ..active.summary.clone()
    };
    Ok(Built {
        set: ActiveSet {
            config,
            summary,
            files,
            peer_verifiers: peer_verifiers(&bundle)?,
            client_certificate: active.client_certificate.clone(),
            chain: active.chain.clone(),
            key: active.key.clone_key(),
        },
        pair_refused: Some(pair_refused),
    })
}

fn peer_verifiers(bundle: &TrustBundle) -> Result<BTreeMap<AgencyId, Arc<AgencyServerVerifier>>> {
    bundle
        .agencies()
        .map(|agency| {
            let verifier =
                AgencyServerVerifier::new(bundle, ExpectedServer::Agency(agency.clone()), crypto_provider())?;
            Ok((agency.clone(), Arc::new(verifier)))
        })
        .collect()
}

fn certified_key(
    chain: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
    paths: &NodeTrustPaths,
) -> Result<Arc<CertifiedKey>> {
    CertifiedKey::from_der(chain.to_vec(), key.clone_key(), &crypto_provider())
        .map(Arc::new)
        .map_err(|source| TrustError::Tls {
            context: format!(
                "certificate {} with key {}",
                paths.certificate.display(),
                paths.private_key.display()
            ),
            source,
        })
}

/// The server verifier of [`ReloadingServerConfig::peer_client_config`]:
/// the expected agency's verifier of the set in use at each handshake.
#[derive(Debug)]
struct ActivePeerVerifier {
    source: Arc<ReloadingServerConfig>,
    expected: AgencyId,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ActivePeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let verifier = self.source.active.load().peer_verifiers.get(&self.expected).cloned();
        match verifier {
            Some(verifier) => verifier.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now),
            None => Err(rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(
                Arc::new(CertificateRefusal::UnknownAgency(self.expected.clone())),
            )))),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The client certificate of [`ReloadingServerConfig::peer_client_config`]:
/// the node's pair in use at each handshake.
#[derive(Debug)]
struct ActiveClientCertificate(Arc<ReloadingServerConfig>);

impl ResolvesClientCert for ActiveClientCertificate {
    fn resolve(&self, _root_hint_subjects: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.active.load().client_certificate.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn summarize(
    bundle: &TrustBundle,
    leaf: &LeafCertificate,
    leaf_der: &[u8],
    cert_path: &Path,
    trigger: ReloadTrigger,
) -> Result<TrustSetSummary> {
    let certificate = parse_certificate(leaf_der).map_err(|refusal| TrustError::RefusedFile {
        path: cert_path.to_owned(),
        refusal,
    })?;
    Ok(TrustSetSummary {
        node_identity: leaf.identity.clone(),
        node_serial: serial_text(&certificate.serial.to_bytes_be()),
        node_fingerprint_sha256: fingerprint_sha256(leaf_der),
        node_not_after: certificate.validity().not_after.to_datetime(),
        agencies: bundle.agencies().cloned().collect(),
        loaded_at: OffsetDateTime::now_utc(),
        trigger,
    })
}

/// The files added, removed or changed between two reads.
fn changed_files(before: &FileDigests, after: &FileDigests) -> Vec<PathBuf> {
    let paths: BTreeSet<&PathBuf> = before.keys().chain(after.keys()).collect();
    paths
        .into_iter()
        .filter(|path| before.get(*path) != after.get(*path))
        .cloned()
        .collect()
}
