//! TLS with rustls, and mutual TLS when client certificates are required: a certificate and
//! key in PEM files, optionally the CA that client certificates must chain to. The files are
//! read again when they change (checked at most once a second, at a handshake), so a renewed
//! certificate is served without a restart; a change that does not load (a half-written file,
//! a key that does not match) is logged and the previous certificate kept.
//!
//! Handshakes run in tasks of their own, bounded in time, so a client that opens a connection
//! and says nothing cannot hold up the others.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant, SystemTime},
};

use rustls::{
    RootCertStore, ServerConfig,
    crypto::ring,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::WebPkiClientVerifier,
};
use tokio::{net::TcpListener, sync::mpsc};
use tokio_rustls::{TlsAcceptor, server::TlsStream};

/// How often the files are looked at for changes, at most.
const RELOAD_CHECK: Duration = Duration::from_secs(1);
/// How long a client may take to complete its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections accepted but not yet taken by the server.
const PENDING: usize = 128;
/// Handshakes under way at once; the next connection waits to be accepted until one ends.
const HANDSHAKES: usize = 1024;

/// Where the server's certificate, key and client CA are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, PEM, the server's own certificate first.
    pub cert: PathBuf,
    /// The private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// When set, clients must present a certificate that chains to a CA in this PEM file.
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    fn paths(&self) -> impl Iterator<Item = &Path> {
        [Some(&self.cert), Some(&self.key), self.client_ca.as_ref()]
            .into_iter()
            .flatten()
            .map(PathBuf::as_path)
    }

    /// When each file was last changed, and its size: what tells a renewal.
    fn stamps(&self) -> Vec<Option<(SystemTime, u64)>> {
        self.paths()
            .map(|path| {
                std::fs::metadata(path)
                    .ok()
                    .and_then(|meta| Some((meta.modified().ok()?, meta.len())))
            })
            .collect()
    }

    /// The rustls configuration the files make now.
    pub fn load(&self) -> Result<ServerConfig, String> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))
        };
        let cert_pem = read(&self.cert)?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| format!("{}: {error}", self.cert.display()))?;
        if chain.is_empty() {
            return Err(format!("{} holds no certificate", self.cert.display()));
        }
        let key = PrivateKeyDer::from_pem_slice(&read(&self.key)?)
            .map_err(|error| format!("{}: {error}", self.key.display()))?;
        let provider = Arc::new(ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|error| error.to_string())?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let pem = read(path)?;
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(&pem) {
                    let cert = cert.map_err(|error| format!("{}: {error}", path.display()))?;
                    roots
                        .add(cert)
                        .map_err(|error| format!("{}: {error}", path.display()))?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .map_err(|error| format!("{}: {error}", path.display()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(|error| format!("the certificate and key do not go together: {error}"))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// The configuration in use and what its files looked like when it was read.
struct Current {
    config: Arc<ServerConfig>,
    stamps: Vec<Option<(SystemTime, u64)>>,
    checked: Instant,
}

/// Server configurations that follow their files.
pub struct Reloading {
    files: TlsFiles,
    current: Mutex<Current>,
}

impl Reloading {
    /// Reads the files; fails when they do not make a configuration.
    pub fn new(files: TlsFiles) -> Result<Self, String> {
        let stamps = files.stamps();
        let config = Arc::new(files.load()?);
        Ok(Self {
            files,
            current: Mutex::new(Current {
                config,
                stamps,
                checked: Instant::now(),
            }),
        })
    }

    /// The configuration for the next handshake, read again first if the files changed.
    fn config(&self) -> Arc<ServerConfig> {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if current.checked.elapsed() >= RELOAD_CHECK {
            current.checked = Instant::now();
            let stamps = self.files.stamps();
            if stamps != current.stamps {
                match self.files.load() {
                    Ok(config) => {
                        tracing::info!("TLS certificate files changed; serving the new ones");
                        current.config = Arc::new(config);
                        current.stamps = stamps;
                    }
                    // Tried again at the next check: a renewal may be half-written.
                    Err(error) => tracing::warn!(
                        %error,
                        "TLS certificate files changed but do not load; keeping the previous"
                    ),
                }
            }
        }
        current.config.clone()
    }
}

/// Accepts connections on `listener` and completes their TLS handshakes, each in a task of
/// its own; the receiver yields the connections ready for HTTP/2.
pub fn accept(
    listener: TcpListener,
    tls: Arc<Reloading>,
) -> (
    mpsc::Receiver<std::io::Result<TlsStream<tokio::net::TcpStream>>>,
    tokio::task::JoinHandle<()>,
) {
    let (ready, incoming) = mpsc::channel(PENDING);
    let handshakes = Arc::new(tokio::sync::Semaphore::new(HANDSHAKES));
    let task = tokio::spawn(async move {
        loop {
            let Ok(permit) = handshakes.clone().acquire_owned().await else {
                return;
            };
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let acceptor = TlsAcceptor::from(tls.config());
            let ready = ready.clone();
            tokio::spawn(async move {
                let _permit = permit;
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        let _ = ready.send(Ok(stream)).await;
                    }
                    Ok(Err(error)) => {
                        tracing::debug!(%peer, %error, "TLS handshake failed");
                    }
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    (incoming, task)
}
