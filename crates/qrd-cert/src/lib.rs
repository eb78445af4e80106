//! Server certificates for `qrd ssl` and `qrd check`: what a PEM certificate says (subject, SANs, issuer,
//! validity), whether a private key belongs to it, whether a CA signed it, and a lab CA plus server
//! certificate generated for given host names.
//!
//! Pure: no file or network I/O. Private key material stays inside [`PrivateKey`], whose `Debug` prints no
//! key bytes, and no error message ever quotes it.

use std::fmt;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use pkcs1::der::Decode;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

/// Days before expiry from which `qrd ssl status` and `qrd check` warn.
pub const WARN_DAYS: i64 = 30;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("no PEM block in the file (expected -----BEGIN CERTIFICATE-----)")]
    NoCertificate,
    #[error("the first PEM block is {label:?}, not a CERTIFICATE")]
    NotACertificate { label: String },
    #[error("not valid PEM: {0}")]
    Pem(String),
    #[error("certificate {index} in the file does not parse as X.509: {reason}")]
    X509 { index: usize, reason: String },
    #[error("no private key in the file (expected -----BEGIN PRIVATE KEY----- or RSA/EC PRIVATE KEY)")]
    NoKey,
    #[error(
        "the private key is encrypted with a passphrase: the server would need ssl_passphrase_command and \
         could not reload it unattended"
    )]
    EncryptedKey,
    #[error("unsupported private key ({0})")]
    UnsupportedKey(String),
    #[error("the private key does not parse: {0}")]
    BadKey(String),
    #[error("cannot generate the certificates: {0}")]
    Generate(String),
}

/// What one certificate says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    /// Subject alternative names as `DNS:name` and `IP:addr`.
    pub sans: Vec<String>,
    pub serial: String,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    pub is_ca: bool,
    pub self_signed: bool,
    /// `RSA 2048`, `EC P-256`, `Ed25519`, …
    pub key_type: String,
    /// The DER of the certificate (for signature checks against a CA).
    #[serde(skip)]
    der: Vec<u8>,
}

impl CertInfo {
    /// Whole days from `now` (Unix seconds) until `not_after`; negative once expired.
    pub fn days_left(&self, now: i64) -> i64 {
        (self.not_after - now).div_euclid(86_400)
    }

    pub fn expired(&self, now: i64) -> bool {
        now > self.not_after
    }

    pub fn not_yet_valid(&self, now: i64) -> bool {
        now < self.not_before
    }

    /// Whether the certificate names `host` (a DNS name, compared case-insensitively with `*.` wildcards
    /// for one label, or an IP address), as a verify-full client checks it.
    pub fn covers_host(&self, host: &str) -> bool {
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            return self.sans.iter().any(|s| s.strip_prefix("IP:").and_then(|a| a.parse::<IpAddr>().ok()) == Some(ip));
        }
        let host = host.to_ascii_lowercase();
        self.sans.iter().filter_map(|s| s.strip_prefix("DNS:")).any(|name| {
            let name = name.to_ascii_lowercase();
            match name.strip_prefix("*.") {
                Some(suffix) => host.split_once('.').is_some_and(|(first, rest)| !first.is_empty() && rest == suffix),
                None => name == host,
            }
        })
    }

    /// The certificate's DER, e.g. to compare with the one a server presents.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Whether `ca` signed this certificate (issuer name and signature).
    pub fn signed_by(&self, ca: &CertInfo) -> bool {
        let (Ok((_, cert)), Ok((_, ca))) = (X509Certificate::from_der(&self.der), X509Certificate::from_der(&ca.der))
        else {
            return false;
        };
        cert.issuer() == ca.subject() && cert.verify_signature(Some(ca.public_key())).is_ok()
    }

    fn spki_key(&self) -> Option<(Vec<u8>, KeyKind)> {
        let (_, cert) = X509Certificate::from_der(&self.der).ok()?;
        let spki = cert.public_key();
        let kind = match spki.parsed().ok()? {
            PublicKey::RSA(_) => KeyKind::Rsa,
            PublicKey::EC(_) => KeyKind::Ec,
            _ if spki.algorithm.algorithm.to_id_string() == OID_ED25519 => KeyKind::Ed25519,
            _ => KeyKind::Other,
        };
        Some((spki.subject_public_key.data.to_vec(), kind))
    }
}

/// What kind of key a certificate holds; its subject public key (an `RSAPublicKey` for RSA, the point for
/// EC, the raw key for Ed25519) travels beside it.
#[derive(Debug, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    Ec,
    Ed25519,
    Other,
}

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_ED25519: &str = "1.3.101.112";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";

/// The certificates of a PEM file, in order (the server's own first, then any chain). Text outside PEM
/// blocks (comments, `Bag Attributes` from openssl pkcs12) is ignored, as OpenSSL does; CRLF is fine.
pub fn parse_certs(pem_text: &[u8]) -> Result<Vec<CertInfo>, CertError> {
    let blocks = pem::parse_many(pem_text).map_err(|e| CertError::Pem(e.to_string()))?;
    let first = blocks.first().ok_or(CertError::NoCertificate)?;
    if first.tag() != "CERTIFICATE" && first.tag() != "TRUSTED CERTIFICATE" {
        return Err(CertError::NotACertificate { label: first.tag().to_owned() });
    }
    blocks
        .iter()
        .filter(|b| b.tag() == "CERTIFICATE" || b.tag() == "TRUSTED CERTIFICATE")
        .enumerate()
        .map(|(i, b)| cert_info(b.contents()).map_err(|reason| CertError::X509 { index: i + 1, reason }))
        .collect()
}

/// One certificate in DER (as a TLS handshake presents it).
pub fn parse_der(der: &[u8]) -> Result<CertInfo, CertError> {
    cert_info(der).map_err(|reason| CertError::X509 { index: 1, reason })
}

fn cert_info(der: &[u8]) -> Result<CertInfo, String> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(d) => sans.push(format!("DNS:{d}")),
                GeneralName::IPAddress(bytes) => {
                    let ip = match bytes.len() {
                        4 => Some(IpAddr::from(<[u8; 4]>::try_from(*bytes).expect("4 bytes"))),
                        16 => Some(IpAddr::from(<[u8; 16]>::try_from(*bytes).expect("16 bytes"))),
                        _ => None,
                    };
                    if let Some(ip) = ip {
                        sans.push(format!("IP:{ip}"));
                    }
                }
                GeneralName::RFC822Name(m) => sans.push(format!("email:{m}")),
                GeneralName::URI(u) => sans.push(format!("URI:{u}")),
                _ => {}
            }
        }
    }
    let spki = cert.public_key();
    let key_type = match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => format!("RSA {}", rsa.key_size()),
        Ok(PublicKey::EC(_)) => {
            let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).map(|o| o.to_id_string());
            match curve.as_deref() {
                Some(OID_P256) => "EC P-256".to_owned(),
                Some(OID_P384) => "EC P-384".to_owned(),
                Some("1.3.132.0.35") => "EC P-521".to_owned(),
                Some(other) => format!("EC {other}"),
                None => "EC".to_owned(),
            }
        }
        _ if spki.algorithm.algorithm.to_id_string() == OID_ED25519 => "Ed25519".to_owned(),
        _ => spki.algorithm.algorithm.to_id_string(),
    };
    Ok(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        sans,
        serial: cert.raw_serial_as_string(),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        is_ca: cert.is_ca(),
        self_signed: cert.subject() == cert.issuer() && cert.verify_signature(None).is_ok(),
        key_type,
        der: der.to_vec(),
    })
}

/// A private key as read from a PEM file. Holds the key's DER; prints nothing of it.
pub struct PrivateKey {
    der: Vec<u8>,
    format: KeyFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyFormat {
    /// `PRIVATE KEY` (PKCS #8).
    Pkcs8,
    /// `RSA PRIVATE KEY` (PKCS #1), what Qlik exports as `server_key.pem`.
    Pkcs1,
    /// `EC PRIVATE KEY` (SEC 1).
    Sec1,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({:?}, ***)", self.format)
    }
}

impl Drop for PrivateKey {
    fn drop(&mut self) {
        self.der.fill(0);
    }
}

/// The first private key in a PEM file. Encrypted keys are refused: PostgreSQL would have to ask for the
/// passphrase at every start and reload.
pub fn parse_key(pem_text: &[u8]) -> Result<PrivateKey, CertError> {
    let blocks = pem::parse_many(pem_text).map_err(|_| CertError::Pem("a PEM block is malformed".to_owned()))?;
    for b in blocks {
        let format = match b.tag() {
            "PRIVATE KEY" => KeyFormat::Pkcs8,
            "RSA PRIVATE KEY" => KeyFormat::Pkcs1,
            "EC PRIVATE KEY" => KeyFormat::Sec1,
            "ENCRYPTED PRIVATE KEY" => return Err(CertError::EncryptedKey),
            "EC PARAMETERS" => continue,
            t if t.ends_with("PRIVATE KEY") => return Err(CertError::UnsupportedKey(t.to_owned())),
            _ => continue,
        };
        if b.headers().get("Proc-Type").is_some_and(|v| v.contains("ENCRYPTED")) {
            return Err(CertError::EncryptedKey);
        }
        return Ok(PrivateKey { der: b.into_contents(), format });
    }
    Err(CertError::NoKey)
}

/// Why a key and a certificate do not belong together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyMismatch {
    #[error("the private key does not match the certificate's public key ({cert_key})")]
    Different { cert_key: String },
    #[error("the private key is {key} but the certificate's key is {cert_key}")]
    OtherType { key: String, cert_key: String },
    #[error(transparent)]
    Unreadable(#[from] CertError),
}

/// Checks that `key` is the private half of `cert`'s public key (as PostgreSQL checks at start and reload
/// with `SSL_CTX_check_private_key`).
pub fn check_key_matches(cert: &CertInfo, key: &PrivateKey) -> Result<(), KeyMismatch> {
    let (cert_pub, cert_kind) =
        cert.spki_key().ok_or_else(|| CertError::X509 { index: 1, reason: "no public key".to_owned() })?;
    let different = || KeyMismatch::Different { cert_key: cert.key_type.clone() };
    let other = |key: &str| KeyMismatch::OtherType { key: key.to_owned(), cert_key: cert.key_type.clone() };
    let bad = |what: &str| KeyMismatch::Unreadable(CertError::BadKey(what.to_owned()));
    let verdict = match key.format {
        KeyFormat::Pkcs1 => rsa_matches(&key.der, &cert_pub, &cert_kind).map_err(|_| bad("not a PKCS #1 RSA key"))?,
        KeyFormat::Sec1 => {
            if cert_kind != KeyKind::Ec {
                return Err(other("an EC key"));
            }
            ec_matches(&key.der, None, &cert_pub).map_err(|e| e.or_bad("not a SEC 1 EC key"))?
        }
        KeyFormat::Pkcs8 => {
            let info = pkcs8::PrivateKeyInfoRef::from_der(&key.der).map_err(|_| bad("not a PKCS #8 key"))?;
            let inner = info.private_key.as_bytes();
            match info.algorithm.oid.to_string().as_str() {
                OID_RSA => rsa_matches(inner, &cert_pub, &cert_kind).map_err(|_| bad("not an RSA key"))?,
                OID_EC if cert_kind == KeyKind::Ec => {
                    // PKCS #8 names the curve in the algorithm's parameters; the inner SEC 1 key may omit it.
                    let curve = info.algorithm.parameters_oid().ok().map(|oid| oid.to_string());
                    ec_matches(inner, curve.as_deref(), &cert_pub).map_err(|e| e.or_bad("not an EC key"))?
                }
                OID_EC => return Err(other("an EC key")),
                OID_ED25519 if cert_kind == KeyKind::Ed25519 => {
                    use ring::signature::KeyPair;
                    let kp = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&key.der)
                        .map_err(|_| bad("not an Ed25519 key"))?;
                    if kp.public_key().as_ref() == cert_pub { Match::Yes } else { Match::No }
                }
                OID_ED25519 => return Err(other("an Ed25519 key")),
                oid => return Err(KeyMismatch::Unreadable(CertError::UnsupportedKey(format!("algorithm {oid}")))),
            }
        }
    };
    match verdict {
        Match::Yes => Ok(()),
        Match::No => Err(different()),
        Match::NotRsa => Err(other("an RSA key")),
    }
}

enum Match {
    Yes,
    No,
    /// The key is RSA but the certificate's is not.
    NotRsa,
}

/// The key could not be decoded as the format its PEM label or PKCS #8 algorithm promised.
struct Undecodable;

enum EcError {
    Undecodable,
    /// A SEC 1 key without its public point, on a curve ring cannot derive the point for.
    NoPoint {
        curve: String,
    },
}

impl EcError {
    fn or_bad(self, what: &str) -> KeyMismatch {
        KeyMismatch::Unreadable(match self {
            EcError::Undecodable => CertError::BadKey(what.to_owned()),
            EcError::NoPoint { curve } => CertError::UnsupportedKey(format!(
                "an EC key on curve {curve} without its public point; `openssl ec -in KEY -out NEW` writes it back"
            )),
        })
    }
}

/// An RSA key matches when its modulus and public exponent are the certificate's. Both sides are read by
/// `pkcs1`, whose unsigned integers drop DER's leading zero, so encoders that differ there still compare
/// equal. Multi-prime keys (`otherPrimeInfos`) decode too, as OpenSSL accepts them.
fn rsa_matches(pkcs1_der: &[u8], cert_pub: &[u8], cert: &KeyKind) -> Result<Match, Undecodable> {
    let key = pkcs1::RsaPrivateKeyRef::from_der(pkcs1_der).map_err(|_| Undecodable)?;
    if *cert != KeyKind::Rsa {
        return Ok(Match::NotRsa);
    }
    // x509-parser already read this SPKI as RSA, so it decodes; if it did not, no key could match it.
    let cert_key = pkcs1::RsaPublicKeyRef::from_der(cert_pub).map_err(|_| Undecodable)?;
    Ok(if key.public_key() == cert_key { Match::Yes } else { Match::No })
}

/// An EC key matches when its public point is the certificate's. SEC 1 keys usually carry the point (OpenSSL
/// writes it unless told `-no_public`); when one does not, ring derives it from the private scalar and accepts
/// the pair only if it equals the certificate's point.
fn ec_matches(sec1_der: &[u8], pkcs8_curve: Option<&str>, cert_pub: &[u8]) -> Result<Match, EcError> {
    let ec = sec1::EcPrivateKey::from_der(sec1_der).map_err(|_| EcError::Undecodable)?;
    if let Some(point) = ec.public_key {
        return Ok(if point == cert_pub { Match::Yes } else { Match::No });
    }
    let curve = ec.parameters.and_then(sec1::EcParameters::named_curve).map(|oid| oid.to_string());
    let alg = match curve.as_deref().or(pkcs8_curve) {
        Some(OID_P256) => &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        Some(OID_P384) => &ring::signature::ECDSA_P384_SHA384_ASN1_SIGNING,
        Some(other) => return Err(EcError::NoPoint { curve: other.to_owned() }),
        None => return Err(EcError::Undecodable),
    };
    let rng = ring::rand::SystemRandom::new();
    Ok(match ring::signature::EcdsaKeyPair::from_private_key_and_public_key(alg, ec.private_key, cert_pub, &rng) {
        Ok(_) => Match::Yes,
        Err(_) => Match::No,
    })
}

/// Now, in Unix seconds.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// `2026-11-23 10:15:00 UTC` for Unix seconds.
pub fn format_utc(secs: i64) -> String {
    const UTC: &[time::format_description::BorrowedFormatItem<'_>] =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    match time::OffsetDateTime::from_unix_timestamp(secs).map(|t| t.format(UTC)) {
        Ok(Ok(text)) => text,
        _ => format!("{secs} s after 1970 (out of range)"),
    }
}

/// A lab CA and a server certificate it signed. The CA's private key is not kept: nothing else can ever be
/// signed by it, so it cannot be stolen from the server either.
pub struct LabPki {
    pub ca_pem: String,
    pub cert_pem: String,
    key_pem: String,
}

impl LabPki {
    /// The server key as PEM (PKCS #8), to be written to a 0600 file and nowhere else.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }
}

impl fmt::Debug for LabPki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LabPki").field("ca_pem", &self.ca_pem).field("cert_pem", &self.cert_pem).finish()
    }
}

/// A CA (`qrd lab CA`, pathlen 0) and a server certificate for `hosts` (IP addresses become IP SANs, names
/// DNS SANs; the first is the common name), both valid from a day ago (clock skew between machines) for
/// `days` days (and an hour). ECDSA P-256 keys.
pub fn generate_lab(hosts: &[String], days: u32) -> Result<LabPki, CertError> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let gen_err = |e: rcgen::Error| CertError::Generate(e.to_string());
    let first = hosts.first().ok_or_else(|| CertError::Generate("no host name given".to_owned()))?;
    let start = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    // An hour beyond the N days, so "days left" reads N for the first hour rather than N-1 a second later.
    let end = start + time::Duration::days(i64::from(days) + 1) + time::Duration::hours(1);

    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.distinguished_name.push(DnType::CommonName, format!("qrd lab CA for {first}"));
    ca_params.distinguished_name.push(DnType::OrganizationName, "qrd lab");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    (ca_params.not_before, ca_params.not_after) = (start, end);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(gen_err)?).map_err(gen_err)?;

    let key = KeyPair::generate().map_err(gen_err)?;
    let mut params = CertificateParams::new(hosts.to_vec()).map_err(gen_err)?;
    params.distinguished_name.push(DnType::CommonName, first.as_str());
    params.distinguished_name.push(DnType::OrganizationName, "qrd lab");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    (params.not_before, params.not_after) = (start, end);
    let cert = params.signed_by(&key, &ca).map_err(gen_err)?;
    Ok(LabPki { ca_pem: ca.pem(), cert_pem: cert.pem(), key_pem: key.serialize_pem() })
}

#[cfg(test)]
mod tests;
