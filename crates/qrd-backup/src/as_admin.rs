//! Restoring as an admin that is no superuser: a managed server's (Amazon RDS, Azure, Cloud SQL), a login
//! role with CREATEROLE and CREATEDB that reads neither `pg_authid` nor the server's files. What it does
//! differently from a superuser, and the repository role's password when the bundle holds no verifiers
//! (a backup taken by such an admin, `no_role_passwords` in the manifest).
//!
//! - The roles: `globals.sql` without what only a superuser may say ([`Globals::for_admin`]); a statement
//!   that only adds to a role (a membership, a setting, a comment) and is refused is skipped with a note,
//!   while creating a role or setting its attributes must succeed.
//! - The roles that own what is restored (those created here and the databases' owners) are granted to the
//!   admin, so that `CREATE DATABASE … OWNER` and pg_restore's `ALTER … OWNER TO` work and everything ends
//!   owned as on the source: on 16 `WITH INHERIT TRUE, SET TRUE` (its CREATE ROLE gave it ADMIN OPTION
//!   only), before 16 a plain GRANT (CREATEROLE may grant any role that is no superuser).
//! - PostgreSQL 15: a database it creates for a NOINHERIT owner gets the guide's grant on schema public
//!   before pg_restore, as `qrd provision` makes it (see grant_schema_public_15.sql): without it the admin
//!   may not create the tables there.

use qrd_pg::inventory::QueryError;
use qrd_pg::password::stored;
use qrd_pg::password::verifier::Encryption;
use qrd_pg::template::{Template, Vars};
use qrd_pg::{Secret, Session, sql_template};
use tokio_postgres::error::SqlState;

use crate::globals::{self, Globals};
use crate::manifest::Manifest;
use crate::restore::{RestoreError, query_err, render};

const CALLER: Template = sql_template!("restore/caller.sql");
const CANNOT_ACT_AS: Template = sql_template!("restore/cannot_act_as.sql");
const ROLE_INHERITS: Template = sql_template!("restore/role_inherits.sql");
const GRANT_ROLE: Template = sql_template!("provision/grant_role.sql");
const GRANT_ROLE_ADMIN: Template = sql_template!("provision/grant_role_admin.sql");
const GRANT_SCHEMA_PUBLIC: Template = sql_template!("provision/grant_schema_public.sql");
const GRANT_SCHEMA_PUBLIC_15: Template = sql_template!("provision/grant_schema_public_15.sql");

/// The role a restore runs as.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: String,
    pub superuser: bool,
    pub major: u32,
    pub password_encryption: String,
}

pub async fn caller(session: &Session) -> Result<Caller, RestoreError> {
    let db = &session.target().dbname;
    let row = session.client().query_one(CALLER.text, &[]).await.map_err(query_err(&CALLER, db))?;
    Ok(Caller {
        user: row.get("user"),
        superuser: row.get("superuser"),
        major: row.get::<_, i32>("version_num") as u32 / 10_000,
        password_encryption: row.get("password_encryption"),
    })
}

/// The roles of `globals` as `caller` may create them, on a target that has `existing`: returns the
/// statements to run now and after the databases (see [`Globals::plan`]) with what was left out.
pub fn roles_plan(
    caller: &Caller,
    globals: &Globals,
    existing: &std::collections::BTreeSet<String>,
) -> globals::RolesPlan {
    if caller.superuser {
        return globals.plan(existing);
    }
    let (admin, left_out) = globals.for_admin(&caller.user);
    let plan = admin.plan(existing);
    for (role, attr) in left_out.iter().filter(|(role, _)| plan.create.contains(role)) {
        tracing::warn!(
            "role {role:?} is restored without {attr}: {:?} is no superuser, and only a superuser may give it",
            caller.user
        );
    }
    plan
}

/// Runs role statements with every recorder the role may switch off switched off (they may carry
/// verifiers). A superuser's must all succeed; an admin that is no superuser is refused some that only add
/// to a role (memberships in roles it does not administer, settings only a superuser may make): those are
/// skipped, each with a note, while creating a role or setting its attributes must succeed. Errors name
/// the statement's first words, never a verifier.
pub(crate) async fn run_statements(
    session: &Session,
    caller: &Caller,
    statements: &[String],
) -> Result<(), RestoreError> {
    if statements.is_empty() {
        return Ok(());
    }
    stored::switch_recorders(session, true).await?;
    let mut failure = None;
    for s in statements {
        let Err(e) = session.client().batch_execute(s).await else { continue };
        let shown: String = s.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
        let refused = matches!(e.code(), Some(c) if *c == SqlState::INSUFFICIENT_PRIVILEGE || *c == SqlState::INVALID_GRANT_OPERATION);
        if !caller.superuser && refused && !globals::defines_role(s) {
            tracing::warn!(
                "globals.sql: skipped `{shown} …`, which {:?} may not run (no superuser): {}",
                caller.user,
                qrd_pg::connect::server_message(&e)
            );
            continue;
        }
        failure = Some(RestoreError::Roles {
            statement: format!("{shown} …"),
            message: qrd_pg::connect::server_message(&e),
        });
        break;
    }
    stored::switch_recorders(session, false).await?;
    failure.map_or(Ok(()), Err)
}

/// Grants the caller (no superuser) the roles of `owners` it may not act as yet, so it may create what they
/// own and hand it to them; returns those granted. A role it may not grant (16: one it holds no ADMIN
/// OPTION on) fails with the server's words.
pub(crate) async fn act_as(session: &Session, caller: &Caller, owners: &[String]) -> Result<Vec<String>, RestoreError> {
    if caller.superuser || owners.is_empty() {
        return Ok(Vec::new());
    }
    let db = session.target().dbname.clone();
    let rows = session.client().query(CANNOT_ACT_AS.text, &[&owners]).await.map_err(query_err(&CANNOT_ACT_AS, &db))?;
    let template = if caller.major >= 16 { &GRANT_ROLE_ADMIN } else { &GRANT_ROLE };
    let mut granted = Vec::new();
    for r in &rows {
        let role: String = r.get("name");
        let sql = render(template, &Vars::new().set("role", role.as_str()).set("member", caller.user.as_str()), &db)?;
        session.client().batch_execute(&sql).await.map_err(|e| RestoreError::ActAs {
            role: role.clone(),
            user: caller.user.clone(),
            message: qrd_pg::connect::server_message(&e),
        })?;
        granted.push(role);
    }
    if !granted.is_empty() {
        tracing::info!(
            "granted {} to {:?} (no superuser), so it may create what they own and hand it to them",
            granted.iter().map(|r| format!("{r:?}")).collect::<Vec<_>>().join(", "),
            caller.user
        );
    }
    Ok(granted)
}

/// PostgreSQL 15, an admin that is no superuser: the guide's grant on schema public of `database` (just
/// created for `owner`) to its owner, before pg_restore creates tables there through the owner's
/// privileges. A NOINHERIT owner inherits for the one transaction that grants (see
/// grant_schema_public_15.sql); other majors need nothing (16: the owner's pg_database_owner rights reach
/// the admin; before 15 PUBLIC may create in public).
pub(crate) async fn prepare_database(
    session: &Session,
    caller: &Caller,
    database: &str,
    owner: &str,
) -> Result<(), RestoreError> {
    if caller.superuser || caller.major != 15 {
        return Ok(());
    }
    let main_db = session.target().dbname.clone();
    let inherits: bool = session
        .client()
        .query_opt(ROLE_INHERITS.text, &[&owner])
        .await
        .map_err(query_err(&ROLE_INHERITS, &main_db))?
        .is_some_and(|r| r.get("inherit"));
    let template = if inherits { &GRANT_SCHEMA_PUBLIC } else { &GRANT_SCHEMA_PUBLIC_15 };
    let statements = template.render_statements(&Vars::new().set("role", owner)).map_err(|e| QueryError::Query {
        sql: template.name,
        database: database.to_owned(),
        message: e.to_string(),
    })?;
    let mut c = session.connector().clone();
    let client = c.connect(database).await?;
    for s in &statements {
        if let Err(e) = client.batch_execute(s).await {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(QueryError::query(template.name, database, &e).into());
        }
    }
    tracing::info!("PostgreSQL 15: {owner:?} may create in schema public of {database:?} (the guide's grant)");
    Ok(())
}

/// What became of the repository role's password.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum RepoPassword {
    /// The role was on the target already: it keeps its password.
    Existing,
    /// Created with the verifier the bundle holds.
    FromBundle,
    /// The bundle holds no verifiers: set from the password given, as a verifier computed here.
    Set,
    /// The bundle holds no verifiers and no password was given: the role has none, so Qlik's services
    /// cannot log in yet.
    NotSet { next_step: String },
    /// The bundle holds no such role (no roles, or another repository role).
    NotInBundle,
}

/// Whether a restore of the bundle described by `manifest` will create the repository role `role` without
/// a password: its roles were dumped without verifiers and the target has no such role. The caller then
/// asks for the password (`--repo-password-file`, `QRD_REPO_PASSWORD`, a prompt).
pub async fn needs_repo_password(session: &Session, manifest: &Manifest, role: &str) -> Result<bool, RestoreError> {
    if !manifest.globals.as_ref().is_some_and(|g| g.no_role_passwords) {
        return Ok(false);
    }
    let db = &session.target().dbname;
    let row = session.client().query_opt(ROLE_INHERITS.text, &[&role]).await.map_err(query_err(&ROLE_INHERITS, db))?;
    Ok(row.is_none())
}

/// The repository role's password after the roles were created (`created`): set from `password` when the
/// bundle holds no verifiers and the role was created here.
pub(crate) async fn repo_password(
    session: &Session,
    caller: &Caller,
    manifest: &Manifest,
    created: &[String],
    existing: &[String],
    role: &str,
    password: Option<&Secret>,
) -> Result<RepoPassword, RestoreError> {
    if existing.iter().any(|r| r == role) {
        return Ok(RepoPassword::Existing);
    }
    if !created.iter().any(|r| r == role) {
        return Ok(RepoPassword::NotInBundle);
    }
    if !manifest.globals.as_ref().is_some_and(|g| g.no_role_passwords) {
        return Ok(RepoPassword::FromBundle);
    }
    let Some(password) = password else {
        let next_step = if role == qrd_pg::spec::DEFAULT_REPO_ROLE {
            format!("run `qrd password set {}`", qrd_pgbin::shell_quote(role))
        } else {
            let quoted = qrd_pgbin::shell_quote(role);
            format!("run `qrd password set {quoted} --repo-user {quoted}`")
        };
        tracing::warn!(
            "the bundle holds no passwords (its backup could not read pg_authid): role {role:?} was created without \
             one, so Qlik's services cannot log in yet; {next_step}"
        );
        return Ok(RepoPassword::NotSet { next_step });
    };
    if !caller.superuser {
        let left = stored::recorders_left_on(session).await?;
        if let Some(n) = stored::recorders_note(&caller.user, &left) {
            tracing::info!("{n}");
        }
    }
    stored::set_password(session, role, password, Encryption::from_setting(&caller.password_encryption)).await?;
    tracing::info!("set the password of role {role:?} (the bundle holds none) as a verifier computed here");
    Ok(RepoPassword::Set)
}
