//! Password verifiers computed on the client, so a plaintext password never reaches the server, its logs
//! or `pg_stat_activity`; and checking a stored verifier against a candidate password, so that
//! provisioning twice with the same password changes nothing.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::password::Secret;

/// How a role's password is stored (`pg_authid.rolpassword`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HashType {
    /// No password: password authentication can never succeed.
    None,
    Md5,
    ScramSha256,
    /// Something else (plaintext from very old servers): treat as insecure.
    Other,
}

impl HashType {
    pub fn of(stored: Option<&str>) -> Self {
        match stored {
            None => HashType::None,
            Some(s) if s.starts_with("SCRAM-SHA-256$") => HashType::ScramSha256,
            Some(s) if s.len() == 35 && s.starts_with("md5") => HashType::Md5,
            Some(_) => HashType::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HashType::None => "none",
            HashType::Md5 => "md5",
            HashType::ScramSha256 => "scram-sha-256",
            HashType::Other => "other",
        }
    }
}

/// The password encryption a server applies (`password_encryption`); decides which verifier we send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    Md5,
    ScramSha256,
}

impl Encryption {
    /// From `SHOW password_encryption`. PostgreSQL 12/13 also accept `on`/`off`/`true`, meaning md5.
    pub fn from_setting(s: &str) -> Self {
        if s.eq_ignore_ascii_case("scram-sha-256") { Encryption::ScramSha256 } else { Encryption::Md5 }
    }

    pub fn hash_type(self) -> HashType {
        match self {
            Encryption::Md5 => HashType::Md5,
            Encryption::ScramSha256 => HashType::ScramSha256,
        }
    }
}

/// Computes the verifier to send in `CREATE/ALTER ROLE … PASSWORD '<verifier>'`.
pub fn compute(encryption: Encryption, password: &Secret, role: &str) -> String {
    match encryption {
        Encryption::ScramSha256 => postgres_protocol::password::scram_sha_256(password.expose().as_bytes()),
        // md5 salts with the role name: renaming the role invalidates it (the server says so too).
        Encryption::Md5 => postgres_protocol::password::md5(password.expose().as_bytes(), role),
    }
}

/// Whether `stored` (from `pg_authid`) is a verifier of `password` for `role`.
pub fn matches(stored: &str, password: &Secret, role: &str) -> bool {
    match HashType::of(Some(stored)) {
        HashType::Md5 => constant_time_eq(stored.as_bytes(), compute(Encryption::Md5, password, role).as_bytes()),
        HashType::ScramSha256 => scram_matches(stored, password).unwrap_or(false),
        HashType::None | HashType::Other => false,
    }
}

/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (RFC 5802 / PostgreSQL's format).
fn scram_matches(stored: &str, password: &Secret) -> Option<bool> {
    let rest = stored.strip_prefix("SCRAM-SHA-256$")?;
    let (iter_salt, keys) = rest.split_once('$')?;
    let (iterations, salt) = iter_salt.split_once(':')?;
    let (stored_key, server_key) = keys.split_once(':')?;
    let iterations: u32 = iterations.parse().ok()?;
    let salt = STANDARD.decode(salt).ok()?;
    let stored_key = STANDARD.decode(stored_key).ok()?;
    let server_key = STANDARD.decode(server_key).ok()?;

    // The same preparation as the server and libpq: SASLprep when it applies, raw bytes otherwise.
    let prepared = match stringprep::saslprep(password.expose()) {
        Ok(p) => p.into_owned().into_bytes(),
        Err(_) => password.expose().as_bytes().to_vec(),
    };
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(&prepared, &salt, iterations, &mut salted);
    let hmac = |key: &[u8], msg: &[u8]| -> Vec<u8> {
        let mut m = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key size");
        m.update(msg);
        m.finalize().into_bytes().to_vec()
    };
    let client_key = hmac(&salted, b"Client Key");
    let computed_stored = Sha256::digest(&client_key);
    let computed_server = hmac(&salted, b"Server Key");
    Some(constant_time_eq(&computed_stored, &stored_key) && constant_time_eq(&computed_server, &server_key))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scram_round_trip() {
        let pw = Secret::new("pä$$'\\word");
        let v = compute(Encryption::ScramSha256, &pw, "r");
        assert_eq!(HashType::of(Some(&v)), HashType::ScramSha256);
        assert!(matches(&v, &pw, "anyone"));
        assert!(!matches(&v, &Secret::new("pä$$'\\worD"), "r"));
    }

    #[test]
    fn md5_depends_on_role() {
        let pw = Secret::new("secret");
        let v = compute(Encryption::Md5, &pw, "qliksenserepository");
        assert_eq!(HashType::of(Some(&v)), HashType::Md5);
        assert!(matches(&v, &pw, "qliksenserepository"));
        assert!(!matches(&v, &pw, "other"));
    }
}
