//! TLS for tokio-postgres through native-tls (OpenSSL here), set up only when a connection will use it.
//!
//! Building a native-tls connector makes OpenSSL load the system CA bundle, tens of milliseconds per run,
//! although qrd never trusts it (as libpq: only `--sslrootcert`). Unix-socket connections and
//! `sslmode=disable` never use TLS, so the connector is built on first use by a TCP connection.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use tokio_postgres::Socket;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};

use crate::connect::SslMode;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A `MakeTlsConnect` that builds its native-tls connector lazily.
#[derive(Clone)]
pub struct Tls {
    inner: Arc<Inner>,
}

struct Inner {
    /// False for unix sockets and sslmode=disable: no handshake will ever happen.
    enabled: bool,
    mode: SslMode,
    root: Option<native_tls::Certificate>,
    built: OnceLock<Result<native_tls::TlsConnector, String>>,
}

impl Tls {
    /// Reads and parses the root certificate now (so a bad `--sslrootcert` is reported before connecting);
    /// the connector itself waits for the first TLS connection.
    pub fn new(mode: SslMode, rootcert: Option<&Path>, enabled: bool) -> Result<Self, String> {
        // libpq's default root certificate location, used when verifying and none was given.
        let default_root = std::env::var_os("HOME").map(|h| Path::new(&h).join(".postgresql/root.crt"));
        let root_path = rootcert.map(Path::to_path_buf).or_else(|| default_root.filter(|p| p.exists()));
        let verifying = matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) || rootcert.is_some();
        let root = match (verifying && mode != SslMode::Disable, root_path) {
            (false, _) => None,
            (true, None) => {
                return Err(format!(
                    "sslmode {mode} needs a root certificate: pass --sslrootcert FILE (or set PGSSLROOTCERT, \
                     or put it in ~/.postgresql/root.crt)"
                ));
            }
            (true, Some(path)) => {
                let pem = std::fs::read(&path)
                    .map_err(|e| format!("failed to read the root certificate {}: {e}", path.display()))?;
                Some(
                    native_tls::Certificate::from_pem(&pem)
                        .map_err(|e| format!("failed to parse the root certificate {} as PEM: {e}", path.display()))?,
                )
            }
        };
        Ok(Self { inner: Arc::new(Inner { enabled, mode, root, built: OnceLock::new() }) })
    }

    fn connector(&self) -> Result<native_tls::TlsConnector, String> {
        let inner = &self.inner;
        inner.built.get_or_init(|| build(inner.mode, inner.root.clone())).clone()
    }
}

fn build(mode: SslMode, root: Option<native_tls::Certificate>) -> Result<native_tls::TlsConnector, String> {
    let mut builder = native_tls::TlsConnector::builder();
    // As libpq (before sslrootcert=system in 16): the operating system's CA store is never trusted.
    builder.disable_built_in_roots(true);
    match root {
        // prefer/require without a root certificate: encryption without authentication, as libpq.
        None => {
            builder.danger_accept_invalid_certs(true).danger_accept_invalid_hostnames(true);
        }
        Some(cert) => {
            builder.add_root_certificate(cert);
            // libpq: require/verify-ca check the chain only; verify-full also the host name.
            if mode != SslMode::VerifyFull {
                builder.danger_accept_invalid_hostnames(true);
            }
        }
    }
    builder.build().map_err(|e| format!("failed to set up TLS: {e}"))
}

impl MakeTlsConnect<Socket> for Tls {
    type Stream = postgres_native_tls::TlsStream<Socket>;
    type TlsConnect = MaybeTls;
    type Error = BoxError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<MaybeTls, BoxError> {
        if !self.inner.enabled {
            return Ok(MaybeTls(None));
        }
        let connector = self.connector()?;
        Ok(MaybeTls(Some(postgres_native_tls::TlsConnector::new(connector, domain))))
    }
}

/// The per-connection half: `None` when TLS is disabled for this connection (never asked to connect,
/// since the configuration then says `sslmode=disable`).
pub struct MaybeTls(Option<postgres_native_tls::TlsConnector>);

impl TlsConnect<Socket> for MaybeTls {
    type Stream = postgres_native_tls::TlsStream<Socket>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Stream, BoxError>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        match self.0 {
            Some(c) => Box::pin(async move { c.connect(stream).await.map_err(BoxError::from) }),
            None => Box::pin(async { Err(BoxError::from("TLS is disabled for this connection")) }),
        }
    }
}
