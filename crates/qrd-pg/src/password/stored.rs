//! Passwords done safely: the stored verifier type of roles, setting a password from a verifier computed
//! on the client (never the plaintext, with statement logging off), `password_encryption` through
//! ALTER SYSTEM, and verification logins as a role.

use std::net::IpAddr;

use crate::connect::ConnectError;
use crate::inventory::QueryError;
use crate::password::Secret;
use crate::password::verifier::{self, Encryption, HashType};
use crate::template::{Template, Vars};
use crate::{Session, sql_template};

const ROLE_HASHES: Template = sql_template!("security/role_hashes.sql");
const CLIENT_ADDR: Template = sql_template!("security/client_addr.sql");
const SET_PASSWORD: Template = sql_template!("provision/set_password.sql");
const SESSION_SSL: Template = sql_template!("security/session_ssl.sql");
const HBA_TEXT: Template = sql_template!("inventory/hba_text.sql");

/// A role's login capability and stored password verifier.
#[derive(Debug, Clone)]
pub struct RoleHash {
    pub name: String,
    pub can_login: bool,
    pub hash: HashType,
    verifier: Option<Secret>,
}

impl RoleHash {
    /// Whether `password` is what the stored verifier was made from (md5 or SCRAM), checked here.
    pub fn matches(&self, password: &Secret) -> bool {
        self.verifier.as_ref().is_some_and(|v| verifier::matches(v.expose(), password, &self.name))
    }
}

/// The named roles that exist (superusers only: reads `pg_authid`).
pub async fn role_hashes(session: &Session, roles: &[String]) -> Result<Vec<RoleHash>, QueryError> {
    let db = &session.target().dbname;
    let rows = session
        .client()
        .query(ROLE_HASHES.text, &[&roles])
        .await
        .map_err(|e| QueryError::query(ROLE_HASHES.name, db, &e))?;
    Ok(rows
        .iter()
        .map(|r| {
            let stored: Option<String> = r.get("password");
            RoleHash {
                name: r.get("name"),
                can_login: r.get("can_login"),
                hash: HashType::of(stored.as_deref()),
                verifier: stored.map(Secret::new),
            }
        })
        .collect())
}

/// Sets `role`'s password to `password`, as a verifier for `encryption` computed here. Statement logging
/// is switched off for the session around the ALTER ROLE, so not even the verifier reaches the log.
pub async fn set_password(
    session: &Session,
    role: &str,
    password: &Secret,
    encryption: Encryption,
) -> Result<(), QueryError> {
    let verifier = Secret::new(verifier::compute(encryption, password, role));
    let vars = Vars::new().set("role", role).set("verifier", verifier.expose());
    let statements = SET_PASSWORD.render_statements(&vars).map_err(|e| QueryError::Query {
        sql: SET_PASSWORD.name,
        database: session.target().dbname.clone(),
        message: e.to_string(),
    })?;
    for statement in statements {
        // The error text of a failed ALTER ROLE names the statement's position, never its text.
        session
            .client()
            .batch_execute(&statement)
            .await
            .map_err(|e| QueryError::query(SET_PASSWORD.name, &session.target().dbname, &e))?;
    }
    Ok(())
}

/// This session's client address as the server sees it (`None` through a unix socket).
pub async fn client_addr(session: &Session) -> Result<Option<IpAddr>, QueryError> {
    let row = session
        .client()
        .query_one(CLIENT_ADDR.text, &[])
        .await
        .map_err(|e| QueryError::query(CLIENT_ADDR.name, &session.target().dbname, &e))?;
    Ok(row.get::<_, Option<String>>("addr").and_then(|a| a.parse().ok()))
}

/// Whether this session is encrypted.
pub async fn session_uses_ssl(session: &Session) -> Result<bool, QueryError> {
    let row = session
        .client()
        .query_one(SESSION_SSL.text, &[])
        .await
        .map_err(|e| QueryError::query(SESSION_SSL.name, &session.target().dbname, &e))?;
    Ok(row.get("ssl"))
}

/// pg_hba.conf as the server has it on disk (`None` when this session may not read it).
pub async fn hba_text(session: &Session) -> Option<String> {
    session.client().query_one(HBA_TEXT.text, &[]).await.ok().and_then(|r| r.get("hba"))
}

/// Logs in as `role` with `password` over the same route as `session` (host, port, TLS mode), to the
/// session's database, and runs a query. The error is the server's own (wrong password, no pg_hba entry).
pub async fn verify_login(session: &Session, role: &str, password: &Secret) -> Result<(), ConnectError> {
    let mut connector = session.connector().as_role(role, password.clone());
    let db = session.target().dbname.clone();
    let client = connector.connect(&db).await?;
    client.simple_query("SELECT 1").await.map_err(|e| ConnectError::from_pg(connector.target(), &db, &e))?;
    Ok(())
}
