//! `qrd ssl status`: the settings the server runs with, its certificate as the server reads it, the key
//! file's mode here, this connection's TLS, and whether TLS is temporarily disabled.

use std::path::Path;

use qrd_cert::WARN_DAYS;
use qrd_pg::Session;
use qrd_pg::tlsinfo::{self, CertState, ConnectionTls, LocalFiles, TlsInfo};

use crate::SAVED_DIR;
use crate::error::TlsError;

/// The report (`--json` prints it as is).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub ssl: bool,
    pub settings: Settings,
    pub certificate: Option<CertificateSummary>,
    pub certificate_state: CertState,
    pub local: Option<LocalFiles>,
    pub connection: Option<ConnectionTls>,
    pub temporarily_disabled: bool,
    pub warnings: Vec<String>,
    /// This session goes through a unix socket (TLS does not apply).
    #[serde(skip)]
    pub via_socket: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Settings {
    pub ssl_cert_file: String,
    pub ssl_key_file: String,
    pub ssl_ca_file: String,
    pub ssl_crl_file: String,
    pub ssl_min_protocol_version: Option<String>,
    pub ssl_max_protocol_version: Option<String>,
    pub ssl_ciphers: Option<String>,
    pub ssl_prefer_server_ciphers: Option<String>,
}

/// The server's certificate, as a DBA reads it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CertificateSummary {
    pub subject: String,
    pub issuer: String,
    pub sans: Vec<String>,
    pub serial: String,
    pub key_type: String,
    pub not_before: String,
    pub not_after: String,
    pub days_left: i64,
    pub expired: bool,
}

pub async fn status(session: &Session) -> Result<Status, TlsError> {
    let Some(info) = tlsinfo::gather(session).await? else {
        return Err(TlsError::NoSettings);
    };
    let now = qrd_cert::now();
    let saved =
        info.data_directory.as_ref().map(|d| Path::new(d).join(SAVED_DIR).join("manifest.json")).filter(|p| p.exists());
    let mut warnings = Vec::new();
    let certificate = info.certificate.leaf().map(|c| CertificateSummary {
        subject: c.subject.clone(),
        issuer: c.issuer.clone(),
        sans: c.sans.clone(),
        serial: c.serial.clone(),
        key_type: c.key_type.clone(),
        not_before: qrd_cert::format_utc(c.not_before),
        not_after: qrd_cert::format_utc(c.not_after),
        days_left: c.days_left(now),
        expired: c.expired(now),
    });
    if let Some(c) = &certificate {
        if c.expired {
            warnings.push(format!("the certificate expired on {}", c.not_after));
        } else if c.days_left < WARN_DAYS {
            warnings.push(format!("the certificate expires in {} day(s)", c.days_left));
        }
    }
    if let Some(p) = &saved {
        warnings.push(format!("TLS is temporarily disabled: run `qrd ssl restore` (saved state: {})", p.display()));
    }
    let TlsInfo {
        ssl,
        cert_file,
        key_file,
        ca_file,
        crl_file,
        min_protocol_version,
        max_protocol_version,
        ciphers,
        prefer_server_ciphers,
        certificate: certificate_state,
        connection,
        local,
        ..
    } = info;
    Ok(Status {
        ssl,
        settings: Settings {
            ssl_cert_file: cert_file,
            ssl_key_file: key_file,
            ssl_ca_file: ca_file,
            ssl_crl_file: crl_file,
            ssl_min_protocol_version: min_protocol_version,
            ssl_max_protocol_version: max_protocol_version,
            ssl_ciphers: ciphers,
            ssl_prefer_server_ciphers: prefer_server_ciphers,
        },
        certificate,
        certificate_state,
        local,
        connection,
        temporarily_disabled: saved.is_some(),
        warnings,
        via_socket: session.target().is_socket(),
    })
}
