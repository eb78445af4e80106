//! What the server's TLS setup looks like, for `qrd ssl status` and `qrd check`: the settings it runs with
//! (`pg_settings`), its certificate as the server itself reads it (`pg_read_file`, superusers only), this
//! session's own TLS (`pg_stat_ssl`), and — when qrd runs on the server's machine and can read the files —
//! the key file's mode and owner and whether the key matches the certificate.
//!
//! The private key is never fetched through the connection (it would cross the network, possibly in
//! clear): it is read from the local file system only, and only its verdict is kept.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use qrd_cert::CertInfo;

use crate::Session;
use crate::inventory::QueryError;
use crate::sql_template;
use crate::template::Template;

const SETTINGS: Template = sql_template!("ssl/settings.sql");
const READ_CERT: Template = sql_template!("ssl/read_cert.sql");
const MAY_READ_CERT: Template = sql_template!("ssl/may_read_cert.sql");
const CONNECTION: Template = sql_template!("ssl/connection.sql");

/// The server's TLS settings and certificate, as far as a superuser connection can read them.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TlsInfo {
    pub ssl: bool,
    pub cert_file: String,
    pub key_file: String,
    pub ca_file: String,
    pub crl_file: String,
    pub min_protocol_version: Option<String>,
    pub max_protocol_version: Option<String>,
    pub ciphers: Option<String>,
    pub prefer_server_ciphers: Option<String>,
    /// Non-empty when the key needs a passphrase.
    pub passphrase_command: Option<String>,
    /// `None` without superuser (or pg_read_all_settings) rights.
    pub data_directory: Option<String>,
    /// The certificate file (leaf first, then any chain).
    pub certificate: CertState,
    /// This session's TLS as the server sees it.
    pub connection: Option<ConnectionTls>,
    /// The files as seen on this machine (only when the server is local and its certificate file here is
    /// the one the server reads).
    pub local: Option<LocalFiles>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CertState {
    /// Not read: needs superuser (pg_read_file).
    #[default]
    NotRead,
    /// The server could not read the file (its message).
    Unreadable {
        reason: String,
    },
    /// Read, but not a usable PEM certificate.
    Invalid {
        reason: String,
    },
    Parsed {
        certs: Vec<CertInfo>,
    },
}

impl CertState {
    /// The server's own certificate, when it was read and parsed.
    pub fn leaf(&self) -> Option<&CertInfo> {
        match self {
            CertState::Parsed { certs } => certs.first(),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ConnectionTls {
    pub ssl: bool,
    pub version: Option<String>,
    pub cipher: Option<String>,
    pub bits: Option<i32>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LocalFiles {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    /// Permission bits of the key file (`None` when it cannot be examined from here).
    pub key_mode: Option<u32>,
    pub key_uid: Option<u32>,
    pub data_dir_uid: Option<u32>,
    /// `Some(Ok)` the key matches the certificate, `Some(Err(why))` it does not or cannot be read as a key;
    /// `None` when the key file is not readable from here.
    #[serde(serialize_with = "key_verdict")]
    pub key_matches: Option<Result<(), String>>,
}

/// `"matches"`, the reason it does not, or null (not checked).
fn key_verdict<S: serde::Serializer>(v: &Option<Result<(), String>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        None => s.serialize_none(),
        Some(Ok(())) => s.serialize_str("matches"),
        Some(Err(why)) => s.serialize_str(why),
    }
}

/// Reads the server's TLS settings; `Ok(None)` when there is nothing to report (a server without the
/// ssl settings at all, which no supported version is).
pub async fn gather(session: &Session) -> Result<Option<TlsInfo>, QueryError> {
    let c = session.client();
    let db = session.target().dbname.clone();
    let rows = c.query(SETTINGS.text, &[]).await.map_err(|e| QueryError::query(SETTINGS.name, &db, &e))?;
    if rows.is_empty() {
        return Ok(None);
    }
    let get = |name: &str| rows.iter().find(|r| r.get::<_, String>("name") == name).map(|r| r.get::<_, String>(1));
    let mut info = TlsInfo {
        ssl: get("ssl").as_deref() == Some("on"),
        cert_file: get("ssl_cert_file").unwrap_or_default(),
        key_file: get("ssl_key_file").unwrap_or_default(),
        ca_file: get("ssl_ca_file").unwrap_or_default(),
        crl_file: get("ssl_crl_file").unwrap_or_default(),
        min_protocol_version: get("ssl_min_protocol_version"),
        max_protocol_version: get("ssl_max_protocol_version"),
        ciphers: get("ssl_ciphers"),
        prefer_server_ciphers: get("ssl_prefer_server_ciphers"),
        passphrase_command: get("ssl_passphrase_command").filter(|s| !s.is_empty()),
        data_directory: get("data_directory"),
        ..TlsInfo::default()
    };

    let mut server_pem = None;
    let may_read = c
        .query_one(MAY_READ_CERT.text, &[])
        .await
        .map_err(|e| QueryError::query(MAY_READ_CERT.name, &db, &e))?
        .get::<_, bool>("may_read");
    let read = if may_read { Some(c.query_one(READ_CERT.text, &[]).await) } else { None };
    info.certificate = match read {
        None => CertState::NotRead,
        Some(Ok(row)) => match (row.get::<_, bool>("may_read"), row.get::<_, bool>("file_exists")) {
            (false, _) => CertState::NotRead,
            (true, false) => CertState::Unreadable { reason: format!("{} does not exist", info.cert_file) },
            (true, true) => {
                let pem: Vec<u8> = row.get("pem");
                let state = match qrd_cert::parse_certs(&pem) {
                    Ok(certs) => CertState::Parsed { certs },
                    Err(e) => CertState::Invalid { reason: e.to_string() },
                };
                server_pem = Some(pem);
                state
            }
        },
        Some(Err(e)) => CertState::Unreadable { reason: crate::connect::server_message(&e) },
    };

    info.connection = connection(session).await?;

    if is_local(session)
        && let Some(dir) = &info.data_directory
    {
        info.local = local_files(Path::new(dir), &info, server_pem.as_deref());
    }
    Ok(Some(info))
}

/// This session's TLS as the server sees it (`pg_stat_ssl`).
pub async fn connection(session: &Session) -> Result<Option<ConnectionTls>, QueryError> {
    let db = &session.target().dbname;
    let row = session
        .client()
        .query_opt(CONNECTION.text, &[])
        .await
        .map_err(|e| QueryError::query(CONNECTION.name, db, &e))?;
    Ok(row.map(|r| ConnectionTls {
        ssl: r.get("ssl"),
        version: r.get("version"),
        cipher: r.get("cipher"),
        bits: r.get("bits"),
    }))
}

/// Whether the server runs on this machine: a unix socket or a loopback address.
fn is_local(session: &Session) -> bool {
    let t = session.target();
    t.is_socket()
        || t.host == "localhost"
        || t.host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `file` as the server resolves it: relative to the data directory.
pub fn resolve(data_dir: &Path, file: &str) -> PathBuf {
    let p = Path::new(file);
    if p.is_absolute() { p.to_path_buf() } else { data_dir.join(p) }
}

fn local_files(data_dir: &Path, info: &TlsInfo, server_pem: Option<&[u8]>) -> Option<LocalFiles> {
    if info.cert_file.is_empty() || info.key_file.is_empty() {
        return None;
    }
    let cert_path = resolve(data_dir, &info.cert_file);
    let key_path = resolve(data_dir, &info.key_file);
    let here = std::fs::read(&cert_path).ok();
    // The same path on this machine may be another file (a server elsewhere with the same layout): trust the
    // local files only when the certificate here is byte for byte the one the server reads.
    if let Some(server_pem) = server_pem
        && here.as_deref() != Some(server_pem)
    {
        return None;
    }
    let key_meta = std::fs::metadata(&key_path).ok();
    let key_matches = std::fs::read(&key_path).ok().map(|bytes| {
        let key = qrd_cert::parse_key(&bytes).map_err(|e| e.to_string())?;
        let certs = qrd_cert::parse_certs(here.as_deref().unwrap_or_default()).map_err(|e| e.to_string())?;
        qrd_cert::check_key_matches(&certs[0], &key).map_err(|e| e.to_string())
    });
    Some(LocalFiles {
        cert_path,
        key_path,
        key_mode: key_meta.as_ref().map(|m| m.mode() & 0o7777),
        key_uid: key_meta.as_ref().map(|m| m.uid()),
        data_dir_uid: std::fs::metadata(data_dir).ok().map(|m| m.uid()),
        key_matches,
    })
}
