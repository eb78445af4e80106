//! What `enable` installs: a certificate, its key and optionally a CA, read from Qlik's exported files and
//! checked before anything changes, or generated for a lab. Nothing of the key ever goes into a message.

use std::path::{Path, PathBuf};

use qrd_cert::{CertInfo, WARN_DAYS};

use crate::error::TlsError;
use crate::{CA_NAME, CERT_NAME, KEY_NAME};

/// The certificate, key and (optionally) CA to install, already checked.
#[derive(Clone)]
pub struct Material {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    pub ca_pem: Option<Vec<u8>>,
    /// Set ssl_ca_file (a CA given with --ca); a generated lab CA is for clients only.
    pub set_ca_file: bool,
    pub leaf: CertInfo,
    /// Generated here (`--self-signed`), or the lab certificate already installed and kept.
    pub lab: bool,
}

impl std::fmt::Debug for Material {
    /// Without the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Material").field("leaf", &self.leaf.subject).field("lab", &self.lab).finish_non_exhaustive()
    }
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::ReadInput { what, path: path.to_owned(), source })
}

/// Reads and checks the given files: the PEM parses (a chain may follow the certificate), the key is
/// unencrypted and belongs to the certificate, the certificate is valid now, the CA signed it.
pub fn read_given(cert: &Path, key: &Path, ca: Option<&Path>) -> Result<Material, TlsError> {
    let cert_pem = read(cert, "certificate")?;
    let key_pem = read(key, "key")?;
    let certs = qrd_cert::parse_certs(&cert_pem)
        .map_err(|source| TlsError::BadCertificate { path: cert.to_owned(), source })?;
    let leaf = certs[0].clone();
    let private = qrd_cert::parse_key(&key_pem).map_err(|source| TlsError::BadKey { path: key.to_owned(), source })?;
    qrd_cert::check_key_matches(&leaf, &private)
        .map_err(|source| TlsError::KeyMismatch { path: key.to_owned(), source })?;
    check_validity(&leaf, cert)?;
    let ca_pem = match ca {
        Some(p) => {
            let pem = read(p, "CA certificate")?;
            let cas = qrd_cert::parse_certs(&pem)
                .map_err(|source| TlsError::BadCertificate { path: p.to_owned(), source })?;
            if !cas.iter().chain(certs.iter().skip(1)).any(|c| leaf.signed_by(c)) {
                return Err(TlsError::CaDidNotSign {
                    ca: p.to_owned(),
                    ca_subject: cas[0].subject.clone(),
                    cert: cert.to_owned(),
                    issuer: leaf.issuer.clone(),
                });
            }
            Some(pem)
        }
        None => None,
    };
    Ok(Material { cert_pem, key_pem, set_ca_file: ca_pem.is_some(), ca_pem, leaf, lab: false })
}

fn check_validity(leaf: &CertInfo, file: &Path) -> Result<(), TlsError> {
    let now = qrd_cert::now();
    if leaf.expired(now) {
        return Err(TlsError::Expired {
            path: file.to_owned(),
            subject: leaf.subject.clone(),
            not_after: qrd_cert::format_utc(leaf.not_after),
        });
    }
    if leaf.not_yet_valid(now) {
        return Err(TlsError::NotYetValid { path: file.to_owned(), not_before: qrd_cert::format_utc(leaf.not_before) });
    }
    let days = leaf.days_left(now);
    if days < WARN_DAYS {
        tracing::warn!("the certificate expires in {days} day(s), on {}", qrd_cert::format_utc(leaf.not_after));
    }
    Ok(())
}

/// The lab material: the certificate already installed in `data_dir` when it still fits (so a second run
/// changes nothing), else a new CA and certificate for `hosts`.
pub fn lab(data_dir: &Path, hosts: &[String], days: u32) -> Result<Material, TlsError> {
    if let Some(m) = installed_lab(data_dir, hosts) {
        tracing::info!("the lab certificate in {} still fits: kept", data_dir.display());
        return Ok(m);
    }
    let pki = qrd_cert::generate_lab(hosts, days).map_err(TlsError::BadHostname)?;
    let leaf = qrd_cert::parse_certs(pki.cert_pem.as_bytes()).map_err(TlsError::Generate)?.remove(0);
    Ok(Material {
        cert_pem: pki.cert_pem.clone().into_bytes(),
        key_pem: pki.key_pem().as_bytes().to_vec(),
        ca_pem: Some(pki.ca_pem.clone().into_bytes()),
        set_ca_file: false,
        leaf,
        lab: true,
    })
}

/// Only a lab certificate of ours is reused: a real one is replaced as asked (and backed up).
fn installed_lab(data_dir: &Path, hosts: &[String]) -> Option<Material> {
    let cert_pem = std::fs::read(data_dir.join(CERT_NAME)).ok()?;
    let key_pem = std::fs::read(data_dir.join(KEY_NAME)).ok()?;
    let ca_pem = std::fs::read(data_dir.join(CA_NAME)).ok()?;
    let leaf = qrd_cert::parse_certs(&cert_pem).ok()?.remove(0);
    let ca = qrd_cert::parse_certs(&ca_pem).ok()?.remove(0);
    let key = qrd_cert::parse_key(&key_pem).ok()?;
    let now = qrd_cert::now();
    let fits = ca.subject.contains("qrd lab CA")
        && qrd_cert::check_key_matches(&leaf, &key).is_ok()
        && leaf.signed_by(&ca)
        && hosts.iter().all(|h| leaf.covers_host(h))
        && leaf.days_left(now) >= WARN_DAYS
        && !leaf.not_yet_valid(now);
    fits.then_some(Material { cert_pem, key_pem, ca_pem: Some(ca_pem), set_ca_file: false, leaf, lab: true })
}

/// Where the certificate files go in the data directory, with their modes (PostgreSQL refuses a key file
/// with group or world access).
pub(crate) fn files(material: &Material, data_dir: &Path) -> Vec<(PathBuf, Vec<u8>, u32)> {
    let mut files = vec![
        (data_dir.join(CERT_NAME), material.cert_pem.clone(), 0o644),
        (data_dir.join(KEY_NAME), material.key_pem.clone(), 0o600),
    ];
    if let Some(ca) = &material.ca_pem {
        files.push((data_dir.join(CA_NAME), ca.clone(), 0o644));
    }
    files
}
