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
const READS_AUTHID: Template = sql_template!("security/reads_authid.sql");
const ROLE_LOGINS: Template = sql_template!("security/role_logins.sql");
const RECORDERS_OFF: Template = sql_template!("security/recorders_off.sql");
const RECORDERS_LEFT_ON: Template = sql_template!("security/recorders_left_on.sql");
const RECORDERS_RESET: Template = sql_template!("security/recorders_reset.sql");

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

/// Whether this session may read `pg_authid` (the stored verifiers): superusers may, a managed server's
/// admin may not.
pub async fn reads_authid(session: &Session) -> Result<bool, QueryError> {
    let row = session
        .client()
        .query_one(READS_AUTHID.text, &[])
        .await
        .map_err(|e| QueryError::query(READS_AUTHID.name, &session.target().dbname, &e))?;
    Ok(row.get("reads_authid"))
}

/// The named roles that exist and whether each may log in, from `pg_roles` (readable by anyone): for a
/// session that may not read `pg_authid`.
pub async fn role_logins(session: &Session, roles: &[String]) -> Result<Vec<(String, bool)>, QueryError> {
    let rows = session
        .client()
        .query(ROLE_LOGINS.text, &[&roles])
        .await
        .map_err(|e| QueryError::query(ROLE_LOGINS.name, &session.target().dbname, &e))?;
    Ok(rows.iter().map(|r| (r.get("name"), r.get("can_login"))).collect())
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

/// Without the stored verifier (a session that may not read `pg_authid`): whether `password` is `role`'s,
/// from a real login as the role over the session's route. Only where the route asks for a password (a
/// login without one is refused first; on a `trust` route any password would do); `None` when it does not
/// or the login fails for another reason (no pg_hba.conf line for us).
pub async fn login_proves(session: &Session, role: &str, password: &Secret) -> Option<bool> {
    if route_asks_password(session, role).await != Some(true) {
        return None;
    }
    match verify_login(session, role, password).await {
        Ok(()) => Some(true),
        Err(e) if e.kind == crate::connect::ConnectErrorKind::Auth => Some(false),
        Err(e) => {
            tracing::debug!("a login as {role:?} cannot tell whether its password is the one given: {e}");
            None
        }
    }
}

/// Whether the route of `session` asks `role` for a password: a login without one (the server logs no
/// failure for it). `None` when the login fails for another reason (no pg_hba.conf line, NOLOGIN …).
pub async fn route_asks_password(session: &Session, role: &str) -> Option<bool> {
    let mut connector = session.connector().as_role_without_password(role);
    match connector.connect(&session.target().dbname.clone()).await {
        Ok(_) => Some(false),
        Err(e) if e.kind == crate::connect::ConnectErrorKind::PasswordMissing => Some(true),
        Err(e) => {
            tracing::debug!("a login as {role:?} without a password failed: {e}");
            None
        }
    }
}

/// Switches the session's statement recorders (logging, pg_stat_statements, pgaudit) off around statements
/// that carry password verifiers (`off`), or back to their defaults (`!off`): those the role may change
/// (see recorders_off.sql).
pub async fn switch_recorders(session: &Session, off: bool) -> Result<(), QueryError> {
    let t = if off { &RECORDERS_OFF } else { &RECORDERS_RESET };
    let db = &session.target().dbname;
    let statements = t.render_statements(&Vars::new()).map_err(|e| QueryError::Query {
        sql: t.name,
        database: db.clone(),
        message: e.to_string(),
    })?;
    for s in statements {
        session.client().batch_execute(&s).await.map_err(|e| QueryError::query(t.name, db, &e))?;
    }
    Ok(())
}

/// The statement recorders this session cannot switch off around a statement that carries a password
/// verifier, as `name = value`: the settings a role that is no superuser may not change (a managed
/// server's admin). Empty for a superuser.
pub async fn recorders_left_on(session: &Session) -> Result<Vec<String>, QueryError> {
    let db = session.target().dbname.clone();
    switch_recorders(session, true).await?;
    let left = session
        .client()
        .query(RECORDERS_LEFT_ON.text, &[])
        .await
        .map_err(|e| QueryError::query(RECORDERS_LEFT_ON.name, &db, &e));
    switch_recorders(session, false).await?;
    Ok(left?.iter().map(|r| format!("{} = {}", r.get::<_, String>("name"), r.get::<_, String>("setting"))).collect())
}

/// What [`recorders_left_on`] means for `user`, in one sentence; `None` when nothing is left on.
pub fn recorders_note(user: &str, left: &[String]) -> Option<String> {
    (!left.is_empty()).then(|| {
        format!(
            "{user:?} is no superuser and may not switch off {} for its session: a statement that carries a password \
             verifier (never the password) can reach the server's log (with log_min_error_statement: only one that \
             fails)",
            left.join(", ")
        )
    })
}
