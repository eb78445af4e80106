//! Proof that a password change took: the role exists and logs in, its stored verifier is of the expected
//! type and made from the password (read back from `pg_authid`), and a real login over the session's route
//! works — said plainly when that route's pg_hba.conf rule does not ask for the password at all.

use qrd_conf::hba::{Client, Facts, HbaFile, Method, Outcome, Request, Roles};
use qrd_pg::connect::ConnectErrorKind;
use qrd_pg::password::stored::{self, RoleHash};
use qrd_pg::password::verifier::HashType;
use qrd_pg::{Secret, Session};

use crate::error::AuthError;

/// `role` among `found` (from [`stored::role_hashes`]); a role that cannot log in earns a warning.
pub fn require_role<'a>(found: &'a [RoleHash], role: &str, repo_role: &str) -> Result<&'a RoleHash, AuthError> {
    let r = found.iter().find(|r| r.name == role).ok_or_else(|| AuthError::NoSuchRole {
        role: role.to_owned(),
        repo_role: (role == repo_role).then(|| repo_role.to_owned()),
    })?;
    if !r.can_login {
        tracing::warn!("role {role:?} cannot log in (NOLOGIN): its password is never used");
    }
    Ok(r)
}

/// Re-reads `role` and checks its stored verifier: the expected type, made from `password`.
pub async fn verify_stored(
    session: &Session,
    role: &str,
    password: &Secret,
    expect: HashType,
) -> Result<(), AuthError> {
    let found = stored::role_hashes(session, &[role.to_owned()]).await?;
    if found.first().is_some_and(|r| r.hash == expect && r.matches(password)) {
        Ok(())
    } else {
        Err(AuthError::StoredMismatch { role: role.to_owned(), expect })
    }
}

/// What a verification login showed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "login")]
pub enum Login {
    /// Logged in through a rule that asks for the password.
    Verified,
    /// Logged in, but the route's rule (trust, peer, ident …) never asked for the password.
    NotExercised { method: String },
    /// Could not log in from here for a reason other than the password (no pg_hba.conf line for us …).
    NotVerified { reason: String },
}

/// A real login as `role` over this session's route. A refused password is an error; a route that cannot
/// say (no pg_hba.conf line for us, a method that asks no password) is a warning.
pub async fn verify_login(session: &Session, role: &str, password: &Secret) -> Result<Login, AuthError> {
    match stored::verify_login(session, role, password).await {
        Ok(()) => match route_method(session, role).await {
            Some(m) if !matches!(m, Method::ScramSha256 | Method::Md5 | Method::Password) => {
                tracing::warn!(
                    "role {role:?} logged in, but the pg_hba.conf rule for this route uses {m}: the password itself \
                     was not exercised (connect with -h to an address whose rule asks for scram-sha-256)"
                );
                Ok(Login::NotExercised { method: m.to_string() })
            }
            _ => {
                tracing::info!("verified: role {role:?} logs in with the password");
                Ok(Login::Verified)
            }
        },
        Err(e) if e.kind == ConnectErrorKind::Auth && e.reason.contains("password authentication failed") => {
            Err(AuthError::LoginFailed { role: role.to_owned(), reason: e.reason })
        }
        Err(e) => {
            tracing::warn!("could not verify by logging in as {role:?} from here: {}", e.reason);
            Ok(Login::NotVerified { reason: e.reason })
        }
    }
}

/// The method of the pg_hba.conf rule a login as `role` over this session's route meets, when the server
/// lets us read the file.
async fn route_method(session: &Session, role: &str) -> Option<Method> {
    let text = stored::hba_text(session).await?;
    let file = HbaFile::parse(&text, std::path::Path::new("pg_hba.conf")).ok()?;
    let paths = qrd_pg::serverconf::facts(session).await.ok()?;
    let client = match stored::client_addr(session).await.ok()? {
        Some(ip) => Client::Tcp(ip),
        None => Client::Local,
    };
    let ssl = stored::session_uses_ssl(session).await.unwrap_or(false);
    let mut facts = Facts::new(paths.major);
    facts.roles = Some(Roles::from_memberships(&qrd_pg::serverconf::memberships(session).await.ok()?));
    let req = Request::new(client, role, &session.target().dbname).with_ssl(ssl);
    match file.explain(&req, &facts) {
        Outcome::Matched { method, .. } => Some(method),
        _ => None,
    }
}
