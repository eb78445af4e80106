//! Proving a change with real connections, the way a client will meet the server: a TLS connection that
//! the server itself reports encrypted (`pg_stat_ssl`), a plain connection that pg_hba.conf refuses, or one
//! that it lets through.

use qrd_pg::Session;
use qrd_pg::connect::{ConnectError, ConnectErrorKind, ConnectOpts, SslMode};
use qrd_pg::inventory::QueryError;
use qrd_pg::{serverconf, tlsinfo};

/// A TLS connection that was proven.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TlsProof {
    pub version: Option<String>,
    pub cipher: Option<String>,
    /// False when TLS was negotiated but the login (and so the pg_stat_ssl confirmation) failed.
    pub confirmed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    #[error("the server reports this connection as not encrypted (pg_stat_ssl)")]
    NotEncrypted,
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("a plain (sslmode=disable) connection still logs in")]
    PlainLogsIn,
    #[error(
        "a plain (sslmode=disable) connection reached password authentication ({reason}): a pg_hba.conf rule \
         still admits it"
    )]
    PlainReachesAuth { reason: String },
    #[error("a plain connection failed, but not with pg_hba.conf's refusal: {0}")]
    PlainFailedOtherwise(ConnectError),
}

/// The options of a proof connection: the given host and port and sslmode, never a prompt (a plain
/// connection that gets as far as a password question has already shown that pg_hba.conf admits it).
pub fn proof_opts(
    base: &ConnectOpts,
    host: &str,
    port: u16,
    mode: SslMode,
    root: Option<std::path::PathBuf>,
) -> ConnectOpts {
    let mut opts = base.clone();
    opts.host = Some(host.to_owned());
    opts.port = Some(port);
    opts.sslmode = mode;
    opts.sslrootcert = root;
    opts.prompt = false;
    opts.application_name = "qrd proof".to_owned();
    opts
}

/// The TCP host to prove on: `given`, else the session's own host when it is TCP, else the first listen
/// address (a wildcard means this machine's loopback). `None` when the server listens on no TCP address.
pub async fn proof_host(session: &Session, given: Option<&str>) -> Result<Option<String>, QueryError> {
    if let Some(h) = given {
        return Ok(Some(h.to_owned()));
    }
    let t = session.target();
    if !t.is_socket() {
        return Ok(Some(t.host.clone()));
    }
    let rows = serverconf::settings(session, &["listen_addresses".to_owned()]).await?;
    let listen = rows.first().map(|r| r.setting.clone()).unwrap_or_default();
    let first = listen.split(',').map(str::trim).find(|s| !s.is_empty());
    Ok(first.map(|a| match a {
        "*" | "0.0.0.0" => "127.0.0.1".to_owned(),
        "::" => "::1".to_owned(),
        other => other.to_owned(),
    }))
}

/// A TLS connection (sslmode require, or verify-full against a root certificate) that pg_stat_ssl reports
/// encrypted.
pub async fn prove_tls(opts: &ConnectOpts) -> Result<TlsProof, ProofError> {
    match Session::open(opts).await {
        Ok(s) => match tlsinfo::connection(&s).await? {
            Some(c) if c.ssl => Ok(TlsProof { version: c.version, cipher: c.cipher, confirmed: true }),
            _ => Err(ProofError::NotEncrypted),
        },
        // With sslmode require or stricter, getting to authentication means TLS was negotiated.
        Err(e) if matches!(e.kind, ConnectErrorKind::Auth | ConnectErrorKind::PasswordMissing) => {
            tracing::warn!(
                "TLS was negotiated with {} but the login failed ({}), so pg_stat_ssl could not confirm it; give a \
                 password (--password-file or PGPASSWORD) for a full proof",
                e.target.address(),
                e.reason
            );
            Ok(TlsProof { version: None, cipher: None, confirmed: false })
        }
        Err(e) => Err(e.into()),
    }
}

/// A plain (sslmode=disable) TCP connection must be refused by pg_hba.conf. Returns the server's refusal.
pub async fn prove_plain_refused(opts: &ConnectOpts) -> Result<String, ProofError> {
    match Session::open(opts).await {
        Ok(_) => Err(ProofError::PlainLogsIn),
        Err(e) if e.kind == ConnectErrorKind::NoHbaEntry => Ok(e.reason),
        Err(e) if matches!(e.kind, ConnectErrorKind::Auth | ConnectErrorKind::PasswordMissing) => {
            Err(ProofError::PlainReachesAuth { reason: e.reason })
        }
        Err(e) => Err(ProofError::PlainFailedOtherwise(e)),
    }
}

/// A plain connection must get through pg_hba.conf (logging in, or at least reaching authentication).
pub async fn prove_plain_admitted(opts: &ConnectOpts) -> Result<(), ProofError> {
    match Session::open(opts).await {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.kind, ConnectErrorKind::Auth | ConnectErrorKind::PasswordMissing) => {
            tracing::info!(
                "note: a plain connection reached authentication ({}); not logged in without a password",
                e.reason
            );
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
