//! TLS for tokio-postgres through native-tls (OpenSSL here): one connector per process and trust
//! configuration, built only once a server has agreed to TLS. Also reads the certificate a server presents.
//!
//! Building a native-tls connector makes OpenSSL load the system CA bundle, about 60 ms on our CI machine,
//! although qrd never trusts it (as libpq: only `--sslrootcert`). tokio-postgres asks for the per-connection
//! half ([`MakeTlsConnect::make_tls_connect`]) *before* it sends SSLRequest, and calls that half's
//! [`TlsConnect::connect`] only after the server answered 'S'. So the connector is built in `connect`:
//! with `sslmode=prefer` (the default) against a server with `ssl = off`, unix sockets and `sslmode=disable`,
//! none is ever built. Once built it is kept for the whole process, so the pooled connections of a session,
//! a second session (the proofs of `qrd ssl enable`) and the certificate probe share it.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_postgres::Socket;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};

use crate::connect::SslMode;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why the root certificate cannot be used; found before connecting, so a bad `--sslrootcert` is an input
/// error rather than a connection failure.
#[derive(Debug, thiserror::Error)]
pub enum RootCertError {
    #[error(
        "sslmode {mode} needs a root certificate: pass --sslrootcert FILE (or set PGSSLROOTCERT, or put it in \
         ~/.postgresql/root.crt)"
    )]
    Missing { mode: SslMode },
    #[error("failed to read the root certificate {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("failed to parse the root certificate {} as PEM: {source}", path.display())]
    Parse { path: PathBuf, source: native_tls::Error },
}

/// The connector could not be built (OpenSSL refused its configuration).
#[derive(Debug, thiserror::Error)]
#[error("failed to set up TLS: {0}")]
pub struct TlsSetupError(#[source] native_tls::Error);

/// What makes two connectors differ: the root certificate trusted (none: encryption without
/// authentication) and whether the host name is checked too. The sslmode itself is folded in here:
/// prefer and require without a root certificate need the same connector.
#[derive(Clone)]
struct Policy {
    root: Option<Root>,
    verify_host: bool,
}

#[derive(Clone)]
struct Root {
    /// The key: `native_tls::Certificate` has no equality.
    der: Vec<u8>,
    cert: native_tls::Certificate,
}

impl PartialEq for Policy {
    fn eq(&self, other: &Self) -> bool {
        self.verify_host == other.verify_host
            && self.root.as_ref().map(|r| &r.der) == other.root.as_ref().map(|r| &r.der)
    }
}

impl Policy {
    /// Accepts any certificate and host name: encryption only (prefer/require without a root
    /// certificate), and the certificate probe, which reads rather than verifies.
    const ANY: Policy = Policy { root: None, verify_host: false };

    fn build(&self) -> Result<native_tls::TlsConnector, TlsSetupError> {
        let mut builder = native_tls::TlsConnector::builder();
        // As libpq (before sslrootcert=system in 16): the operating system's CA store is never trusted.
        builder.disable_built_in_roots(true);
        match &self.root {
            // prefer/require without a root certificate: encryption without authentication, as libpq.
            None => {
                builder.danger_accept_invalid_certs(true).danger_accept_invalid_hostnames(true);
            }
            Some(root) => {
                builder.add_root_certificate(root.cert.clone());
                // libpq: require/verify-ca check the chain only; verify-full also the host name.
                if !self.verify_host {
                    builder.danger_accept_invalid_hostnames(true);
                }
            }
        }
        builder.build().map_err(TlsSetupError)
    }
}

/// The connectors built so far in this process, one per policy (in practice one or two).
static CONNECTORS: Mutex<Vec<(Policy, native_tls::TlsConnector)>> = Mutex::new(Vec::new());

/// The process's connector for `policy`, built on first use. The lock is held while building so that
/// connections opened concurrently build it once; no `.await` happens under it.
fn connector(policy: &Policy) -> Result<native_tls::TlsConnector, TlsSetupError> {
    let mut built = CONNECTORS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, c)) = built.iter().find(|(p, _)| p == policy) {
        return Ok(c.clone());
    }
    let started = Instant::now();
    let c = policy.build()?;
    // The integration tests count this line: it must appear at most once per policy and process.
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        verifying = policy.root.is_some(),
        verify_host = policy.verify_host,
        "built a TLS connector"
    );
    built.push((policy.clone(), c.clone()));
    Ok(c)
}

/// A `MakeTlsConnect` that knows how to trust the server but builds nothing until a server accepts TLS.
#[derive(Clone)]
pub struct Tls {
    inner: Arc<Inner>,
}

struct Inner {
    /// False for unix sockets and sslmode=disable: no handshake will ever happen.
    enabled: bool,
    policy: Policy,
}

impl Tls {
    /// Reads and parses the root certificate now (so a bad `--sslrootcert` is reported before connecting);
    /// the connector itself waits for the first server that accepts TLS.
    pub fn new(mode: SslMode, rootcert: Option<&Path>, enabled: bool) -> Result<Self, RootCertError> {
        // libpq's default root certificate location, used when verifying and none was given.
        let default_root = std::env::var_os("HOME").map(|h| Path::new(&h).join(".postgresql/root.crt"));
        let root_path = rootcert.map(Path::to_path_buf).or_else(|| default_root.filter(|p| p.exists()));
        let verifying = matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) || rootcert.is_some();
        let root = match (verifying && mode != SslMode::Disable, root_path) {
            (false, _) => None,
            (true, None) => return Err(RootCertError::Missing { mode }),
            (true, Some(path)) => {
                let pem = std::fs::read(&path).map_err(|source| RootCertError::Read { path: path.clone(), source })?;
                let parse = |source| RootCertError::Parse { path: path.clone(), source };
                let cert = native_tls::Certificate::from_pem(&pem).map_err(parse)?;
                Some(Root { der: cert.to_der().map_err(parse)?, cert })
            }
        };
        let policy = Policy { root, verify_host: mode == SslMode::VerifyFull };
        Ok(Self { inner: Arc::new(Inner { enabled, policy }) })
    }
}

impl MakeTlsConnect<Socket> for Tls {
    type Stream = postgres_native_tls::TlsStream<Socket>;
    type TlsConnect = MaybeTls;
    type Error = BoxError;

    /// Called before SSLRequest is sent: only remembers what to do if the server says yes.
    fn make_tls_connect(&mut self, domain: &str) -> Result<MaybeTls, BoxError> {
        let inner = self.inner.enabled.then(|| self.inner.clone());
        Ok(MaybeTls { inner, domain: domain.to_owned() })
    }
}

/// The per-connection half: `inner` is `None` when TLS is disabled for this connection (never asked to
/// connect, since the configuration then says `sslmode=disable`).
pub struct MaybeTls {
    inner: Option<Arc<Inner>>,
    domain: String,
}

impl TlsConnect<Socket> for MaybeTls {
    type Stream = postgres_native_tls::TlsStream<Socket>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Stream, BoxError>> + Send>>;

    /// Called after the server answered 'S' to SSLRequest: the first such call of the process builds the
    /// connector.
    fn connect(self, stream: Socket) -> Self::Future {
        Box::pin(async move {
            let inner = self.inner.ok_or("TLS is disabled for this connection")?;
            let c = postgres_native_tls::TlsConnector::new(connector(&inner.policy)?, &self.domain);
            c.connect(stream).await.map_err(BoxError::from)
        })
    }
}

/// Why the certificate a server presents could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TlsProbeError {
    #[error("cannot resolve {host}: {source}")]
    Resolve { host: String, source: std::io::Error },
    #[error("{host} has no address")]
    NoAddress { host: String },
    #[error("connect {addr}: {source}")]
    Connect { addr: SocketAddr, source: std::io::Error },
    #[error("SSLRequest to {addr}: {source}")]
    SslRequest { addr: SocketAddr, source: std::io::Error },
    #[error("{addr} does not offer TLS (it answered {answer:?} to the SSLRequest)")]
    NotOffered { addr: SocketAddr, answer: char },
    #[error(transparent)]
    Setup(#[from] TlsSetupError),
    #[error("TLS handshake with {addr}: {source}")]
    Handshake { addr: SocketAddr, source: native_tls::Error },
    #[error("{addr} presented no certificate")]
    NoCertificate { addr: SocketAddr },
    #[error("failed to read the certificate {addr} presented: {source}")]
    Certificate { addr: SocketAddr, source: native_tls::Error },
    #[error("no TLS handshake with {host} port {port} within {} s", timeout.as_secs_f32())]
    Timeout { host: String, port: u16, timeout: Duration },
}

/// PostgreSQL's SSLRequest: length 8, then the code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// The certificate the server at `host`:`port` presents in a TLS handshake (after PostgreSQL's SSLRequest),
/// as DER, all within `timeout`. This tells a new certificate from the old one still in use after a reload
/// that could not load it (the server then logs the error and keeps its previous TLS context). It reads
/// rather than verifies, so it uses the accept-any-certificate connector of sslmode=require.
pub async fn served_certificate(host: &str, port: u16, timeout: Duration) -> Result<Vec<u8>, TlsProbeError> {
    let host = host.trim_matches(['[', ']']);
    tokio::time::timeout(timeout, probe(host, port))
        .await
        .unwrap_or_else(|_| Err(TlsProbeError::Timeout { host: host.to_owned(), port, timeout }))
}

async fn probe(host: &str, port: u16) -> Result<Vec<u8>, TlsProbeError> {
    let addr = tokio::net::lookup_host((host, port))
        .await
        .map_err(|source| TlsProbeError::Resolve { host: host.to_owned(), source })?
        .next()
        .ok_or_else(|| TlsProbeError::NoAddress { host: host.to_owned() })?;
    let mut tcp =
        tokio::net::TcpStream::connect(addr).await.map_err(|source| TlsProbeError::Connect { addr, source })?;
    tcp.write_all(&SSL_REQUEST).await.map_err(|source| TlsProbeError::SslRequest { addr, source })?;
    let answer = tcp.read_u8().await.map_err(|source| TlsProbeError::SslRequest { addr, source })?;
    if answer != b'S' {
        return Err(TlsProbeError::NotOffered { addr, answer: answer as char });
    }
    let tls = tokio_native_tls::TlsConnector::from(connector(&Policy::ANY)?)
        .connect(host, tcp)
        .await
        .map_err(|source| TlsProbeError::Handshake { addr, source })?;
    let cert = tls
        .get_ref()
        .peer_certificate()
        .map_err(|source| TlsProbeError::Certificate { addr, source })?
        .ok_or(TlsProbeError::NoCertificate { addr })?;
    cert.to_der().map_err(|source| TlsProbeError::Certificate { addr, source })
}
