//! The members' credentials: one environment file per member (mode 0600, read by systemd's
//! `EnvironmentFile=`), never the YAML. Patroni takes `PATRONI_SUPERUSER_*`, `PATRONI_REPLICATION_*`,
//! `PATRONI_REWIND_*` and `PATRONI_RESTAPI_*` from its environment; any *other* `PATRONI_<X>_PASSWORD`
//! it would silently turn into a bootstrap user, so nothing else of that shape is ever written here.

use qrd_pg::password::Secret;

use crate::HaError;

/// The variables Patroni reads, in the file's order.
pub const SUPERUSER: &str = "PATRONI_SUPERUSER_PASSWORD";
pub const REPLICATION: &str = "PATRONI_REPLICATION_PASSWORD";
pub const REWIND: &str = "PATRONI_REWIND_PASSWORD";
pub const RESTAPI_USER: &str = "PATRONI_RESTAPI_USERNAME";
pub const RESTAPI: &str = "PATRONI_RESTAPI_PASSWORD";

/// The cluster's secrets, the same on every member.
#[derive(Debug, Clone)]
pub struct Secrets {
    pub superuser: Secret,
    pub replication: Secret,
    pub rewind: Secret,
    pub restapi: Secret,
}

/// Where each secret came from, for the report (never the secret itself).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SecretOrigins {
    pub superuser: String,
    pub replication: String,
    pub rewind: String,
    pub restapi: String,
}

/// Secrets given by the caller (from `QRD_…_PASSWORD` variables or files); the rest is taken from an
/// existing env file (so a second `init` changes nothing) or generated.
#[derive(Debug, Clone, Default)]
pub struct GivenSecrets {
    pub superuser: Option<Secret>,
    pub replication: Option<Secret>,
    pub rewind: Option<Secret>,
    pub restapi: Option<Secret>,
}

impl GivenSecrets {
    /// The ones set in qrd's variables: `QRD_PASSWORD_<SUPERUSER>`, `QRD_REPLICATION_PASSWORD`,
    /// `QRD_PASSWORD_<REWINDER>` and `QRD_PATRONI_API_PASSWORD`. One set but empty is refused (as any
    /// password qrd reads), not taken for unset.
    pub fn from_env(superuser: &str, rewinder: &str) -> Result<GivenSecrets, HaError> {
        use qrd_auth::source;
        let var = |var: &str| {
            qrd_pg::password::from_env(var).map_err(|source| {
                let alternatives = format!("{var}, or leave it unset and qrd ha init generates one");
                HaError::Auth(qrd_auth::AuthError::Password { source, alternatives })
            })
        };
        Ok(GivenSecrets {
            superuser: var(&source::password_env(superuser))?,
            replication: source::replication_password(None, false, false)?,
            rewind: var(&source::password_env(rewinder))?,
            restapi: var(source::PATRONI_API_PASSWORD_ENV)?,
        })
    }
}

/// The repository role's password for the bootstrap script: `file`, else `QRD_REPO_PASSWORD`, else asked
/// on the terminal (twice), as for `qrd provision`.
pub fn repo_password(file: Option<&std::path::Path>, role: &str) -> Result<Secret, HaError> {
    match qrd_auth::source::repo_password(file)? {
        Some(p) => Ok(p),
        None => Ok(qrd_auth::source::prompt_repo_password(role)?),
    }
}

impl Secrets {
    pub fn resolve(given: GivenSecrets, existing: Option<&EnvFile>) -> Result<(Secrets, SecretOrigins), HaError> {
        let mut origins = SecretOrigins::default();
        let pick = |given: Option<Secret>, var: &str, origin: &mut String| -> Result<Secret, HaError> {
            if let Some(s) = given {
                *origin = "given".into();
                return Ok(s);
            }
            if let Some(v) = existing.and_then(|e| e.get(var)) {
                *origin = "kept from the existing env file".into();
                return Ok(Secret::new(v.to_owned()));
            }
            *origin = "generated".into();
            generate()
        };
        let superuser = pick(given.superuser, SUPERUSER, &mut origins.superuser)?;
        let replication = pick(given.replication, REPLICATION, &mut origins.replication)?;
        let rewind = pick(given.rewind, REWIND, &mut origins.rewind)?;
        let restapi = pick(given.restapi, RESTAPI, &mut origins.restapi)?;
        let secrets = Secrets { superuser, replication, rewind, restapi };
        let named = [
            ("superuser", &secrets.superuser),
            ("replication", &secrets.replication),
            ("rewind", &secrets.rewind),
            ("REST API", &secrets.restapi),
        ];
        for (what, s) in named {
            if s.expose().is_empty() || s.expose().contains(['\n', '\r', '\0']) {
                return Err(HaError::Spec { reason: format!("the {what} password is empty or spans several lines") });
            }
            // Measured with Debian's Patroni 3.0.2: a non-ASCII superuser password makes the bootstrap fail
            // (UnicodeDecodeError in its quote_literal while it creates the roles), and the cluster is never
            // made. Refused here, before any file is written.
            if !s.expose().chars().all(|c| c.is_ascii_graphic() || c == ' ') {
                return Err(HaError::Spec {
                    reason: format!(
                        "the {what} password has characters other than printable ASCII, which Patroni 3.0's \
                         bootstrap cannot quote (it fails with a UnicodeDecodeError): choose another, or leave it \
                         out and qrd generates one"
                    ),
                });
            }
        }
        Ok((secrets, origins))
    }
}

/// 24 random bytes, base64url: 32 characters that need no quoting in a URL, a pgpass line or an env file.
pub fn generate() -> Result<Secret, HaError> {
    use base64::Engine;
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 24];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| HaError::Spec { reason: "the system's random number generator failed".into() })?;
    Ok(Secret::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)))
}

/// A parsed env file: `NAME=value` lines, values optionally in double quotes with `\"` and `\\` escapes
/// (what systemd reads); comments and blank lines skipped.
#[derive(Debug, Clone, Default)]
pub struct EnvFile {
    vars: Vec<(String, String)>,
}

impl EnvFile {
    pub fn parse(text: &str) -> EnvFile {
        let mut vars = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            let Some((name, value)) = line.split_once('=') else { continue };
            let value = value.trim();
            let value = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                Some(inner) => {
                    let mut out = String::with_capacity(inner.len());
                    let mut chars = inner.chars();
                    while let Some(c) = chars.next() {
                        if c == '\\' {
                            if let Some(n) = chars.next() {
                                out.push(n);
                            }
                        } else {
                            out.push(c);
                        }
                    }
                    out
                }
                None => value.to_owned(),
            };
            vars.push((name.trim().to_owned(), value));
        }
        EnvFile { vars }
    }

    pub fn read(path: &std::path::Path) -> Result<Option<EnvFile>, HaError> {
        match std::fs::read_to_string(path) {
            Ok(t) => Ok(Some(EnvFile::parse(&t))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(HaError::io("read", path, e)),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn vars(&self) -> &[(String, String)] {
        &self.vars
    }
}

/// `NAME="value"` with systemd's escapes.
fn line(name: &str, value: &str) -> String {
    let escaped: String = value
        .chars()
        .flat_map(|c| match c {
            '"' | '\\' | '$' | '`' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    format!("{name}=\"{escaped}\"\n")
}

/// A member's env file.
pub fn render(scope: &str, member: &str, secrets: &Secrets) -> String {
    let mut out = format!(
        "# Credentials of Patroni member {member} of cluster {scope}, written by qrd ha init.\n\
         # Mode 0600, owned by the service user; systemd reads it (EnvironmentFile=). Patroni puts the\n\
         # replication and rewind passwords in its own 0600 pgpass, never in postgresql.conf.\n"
    );
    out.push_str(&line(SUPERUSER, secrets.superuser.expose()));
    out.push_str(&line(REPLICATION, secrets.replication.expose()));
    out.push_str(&line(REWIND, secrets.rewind.expose()));
    out.push_str(&line(RESTAPI_USER, crate::spec::API_USER));
    out.push_str(&line(RESTAPI, secrets.restapi.expose()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_the_file() {
        let hostile = "a\"b\\c$d`e f'g";
        let s = Secrets {
            superuser: Secret::new(hostile),
            replication: Secret::new("r"),
            rewind: Secret::new("w"),
            restapi: Secret::new("x"),
        };
        let text = render("qlik-repository", "pg1", &s);
        let env = EnvFile::parse(&text);
        assert_eq!(env.get(SUPERUSER), Some(hostile));
        assert_eq!(env.get(RESTAPI_USER), Some("qrd"));
        // Only Patroni's own variables: no other PATRONI_<X>_PASSWORD becomes a bootstrap user.
        for (n, _) in env.vars() {
            assert!([SUPERUSER, REPLICATION, REWIND, RESTAPI_USER, RESTAPI].contains(&n.as_str()), "{n}");
        }
    }

    #[test]
    fn existing_secrets_are_kept_and_new_ones_are_strong() {
        let env = EnvFile::parse("PATRONI_SUPERUSER_PASSWORD=\"old\"\n");
        let (s, o) = Secrets::resolve(GivenSecrets::default(), Some(&env)).unwrap();
        assert_eq!(s.superuser.expose(), "old");
        assert_eq!(o.superuser, "kept from the existing env file");
        assert_eq!(o.replication, "generated");
        assert_eq!(s.replication.expose().len(), 32);
        assert_ne!(s.replication.expose(), s.rewind.expose());
        let given = GivenSecrets { superuser: Some(Secret::new("pässword")), ..Default::default() };
        let err = Secrets::resolve(given, None).unwrap_err().to_string();
        assert!(err.contains("superuser password") && err.contains("ASCII"), "{err}");
    }
}
