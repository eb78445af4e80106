//! `qrd provision`: what the guide's scripts create, planned from an [`Inventory`] so that only missing
//! pieces are created, a second run changes nothing, and nothing existing is ever dropped.
//!
//! The guide runs `CREATE DATABASE` and then `ALTER DATABASE … OWNER`; qrd creates each database with its
//! owner in one statement (same end state, no window where the superuser owns it). The guide's
//! `ALTER DATABASE "Licenses" OWNER TO qliksenserepository` happens to work unquoted only because the role
//! name is lower case; every name here is quoted.

use crate::connect::ConnectError;
use crate::inventory::{Inventory, QueryError};
use crate::password::Secret;
use crate::password::verifier::{self, Encryption, HashType};
use crate::session::Session;
use crate::spec::{RepoSpec, RoleAttrs, SUPPORTED_MAJORS};
use crate::sql_template;
use crate::template::{Template, TemplateError, Vars};
use qrd_exit::{ExitStatus, UserError};

const CREATE_ROLE: Template = sql_template!("provision/create_role.sql");
const ALTER_ROLE_ATTRIBUTES: Template = sql_template!("provision/alter_role_attributes.sql");
const ALTER_ROLE_ATTRIBUTES_ADMIN: Template = sql_template!("provision/alter_role_attributes_admin.sql");
const SET_PASSWORD: Template = sql_template!("provision/set_password.sql");
const GRANT_ROLE: Template = sql_template!("provision/grant_role.sql");
const GRANT_ROLE_ADMIN: Template = sql_template!("provision/grant_role_admin.sql");
const CREATE_DATABASE: Template = sql_template!("provision/create_database.sql");
const ALTER_DATABASE_OWNER: Template = sql_template!("provision/alter_database_owner.sql");
const GRANT_DATABASE_PUBLIC: Template = sql_template!("provision/grant_database_public.sql");
const GRANT_DATABASE_ALL: Template = sql_template!("provision/grant_database_all.sql");
const GRANT_DATABASE_CREATE: Template = sql_template!("provision/grant_database_create.sql");
const GRANT_SCHEMA_PUBLIC: Template = sql_template!("provision/grant_schema_public.sql");
const GRANT_SCHEMA_PUBLIC_15: Template = sql_template!("provision/grant_schema_public_15.sql");
const LOCK: Template = sql_template!("provision/lock.sql");

/// The psql variable that stands for the password verifier in `--dry-run` output.
pub const VERIFIER_VAR: &str = "verifier";

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Change the owner of existing Qlik databases owned by someone else (otherwise that blocks).
    pub fix_owner: bool,
}

/// One statement to run.
#[derive(Debug, Clone)]
pub struct Step {
    /// What it does, for humans: `create database "QSR"`.
    pub summary: String,
    /// The database to run it in; `None` is the maintenance connection.
    pub database: Option<String>,
    template: Template,
    vars: Vars,
    /// The password verifier, for steps that set one.
    verifier: Option<Secret>,
}

impl Step {
    fn new(summary: String, database: Option<String>, template: Template, vars: Vars) -> Self {
        Self { summary, database, template, vars, verifier: None }
    }

    /// A password step whose password is not known yet (`--dry-run` without one): shown with the verifier
    /// as a psql variable, never run (the plan is made again once a password is given).
    fn unset(mut self) -> Self {
        self.verifier = Some(Secret::new(String::new()));
        self
    }

    /// The statements as sent to the server, one message each (comments dropped), verifier included.
    fn statements(&self) -> Result<Vec<String>, TemplateError> {
        let vars = match &self.verifier {
            Some(v) => self.vars.clone().set(VERIFIER_VAR, v.expose()),
            None => self.vars.clone(),
        };
        self.template.render_statements(&vars)
    }

    /// The statement with its comments and with the verifier left as the psql variable `:'verifier'`:
    /// safe to print and to log.
    pub fn display_sql(&self) -> Result<String, TemplateError> {
        Ok(self.template.render(&self.display_vars())?.trim_end().to_owned())
    }

    /// [`Step::display_sql`] without the comments, for error messages and logs.
    pub fn display_statement(&self) -> Result<String, TemplateError> {
        self.template.render_statement(&self.display_vars())
    }

    fn display_vars(&self) -> Vars {
        if self.verifier.is_some() { self.vars.clone().unexpanded(VERIFIER_VAR) } else { self.vars.clone() }
    }

    pub fn sets_password(&self) -> bool {
        self.verifier.is_some()
    }
}

/// Something that stops provisioning before any change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocker {
    pub message: String,
    pub hint: String,
}

/// Provisioning refused before anything changed: every reason, each with its next step.
#[derive(Debug, Clone, thiserror::Error)]
#[error("provisioning refused, nothing was changed:{}", blockers.iter().map(|b| format!("\n  - {}", b.message)).collect::<String>())]
pub struct Refused {
    pub blockers: Vec<Blocker>,
}

impl UserError for Refused {
    fn exit_status(&self) -> ExitStatus {
        ExitStatus::Refused
    }

    /// The distinct next steps, one per line.
    fn hint(&self) -> Option<String> {
        let mut hints: Vec<&str> = Vec::new();
        for b in &self.blockers {
            if !hints.contains(&b.hint.as_str()) {
                hints.push(&b.hint);
            }
        }
        Some(hints.join("\n      "))
    }
}

/// What provisioning would do.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub blockers: Vec<Blocker>,
    /// Facts about what is already right, for the report (`role "x" exists`, `password unchanged`).
    pub unchanged: Vec<String>,
    /// A password is needed (new role, or a role without one) and none was given.
    pub needs_password: bool,
    /// Version-specific remarks on the statements (shown with `--dry-run`).
    pub notes: Vec<String>,
}

impl Plan {
    /// The refusal, when something blocks the plan.
    pub fn refused(&self) -> Option<Refused> {
        (!self.blockers.is_empty()).then(|| Refused { blockers: self.blockers.clone() })
    }

    pub fn is_noop(&self) -> bool {
        self.steps.is_empty() && self.blockers.is_empty() && !self.needs_password
    }

    /// The plan as a psql script (for `--dry-run`): `\connect` lines switch databases, each statement follows
    /// a `-- N. summary` line (the template's own explanation the first time it appears), and the verifier
    /// stays a psql variable so the script holds no secret and cannot run by accident without one.
    pub fn script(&self, maintenance_db: &str) -> Result<String, TemplateError> {
        let mut out = String::new();
        let mut current: Option<&str> = None;
        let mut explained: Vec<&str> = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            let db = step.database.as_deref();
            if db != current {
                let target = db.unwrap_or(maintenance_db);
                out.push_str(&format!("\\connect {}\n\n", crate::quote::ident(target).unwrap_or_default()));
                current = db;
            }
            let sql = step.display_sql()?;
            let first_time = !explained.contains(&step.template.name);
            explained.push(step.template.name);
            out.push_str(&format!("-- {}. {}\n", i + 1, step.summary));
            for line in sql.lines() {
                if first_time || !line.trim_start().starts_with("--") {
                    out.push_str(line);
                    out.push('\n');
                }
            }
            out.push('\n');
        }
        Ok(out)
    }
}

/// The psql script that provisions a new cluster of `major` right after initdb, run once by its
/// bootstrap superuser (Patroni's `post_bootstrap`): the same statements as `qrd provision` on an empty
/// server, with `ON_ERROR_STOP` so a failure stops the script (and the bootstrap), and the role's
/// `verifier` (see [`verifier::compute`]) set as the psql variable the statements use. The script holds
/// a verifier, not the password: keep it mode 0600 all the same (a verifier can be attacked offline).
pub fn bootstrap_script(
    major: u32,
    superuser: &str,
    password_encryption: &str,
    spec: &RepoSpec,
    verifier: &Secret,
) -> Result<String, TemplateError> {
    let inv = Inventory::empty_cluster(major, superuser, password_encryption);
    // Planned as if a password were given (the verifier is set below, not computed from it).
    let plan = plan(&inv, spec, Some(&Secret::new("x")), &Options::default());
    debug_assert!(plan.blockers.is_empty() && !plan.needs_password, "an empty cluster blocks nothing");
    // SCRAM and md5 verifiers are base64, hex and `$:+/=`: nothing psql would read inside quotes.
    let v = verifier.expose();
    if v.is_empty() || v.contains(['\'', '\\', '\n', '\r']) {
        return Err(TemplateError::Value { name: VERIFIER_VAR, reason: "not a password verifier".into() });
    }
    Ok(format!(
        "-- Provisions the Qlik repository on a new cluster (qrd {}): the role, the four databases and the\n\
         -- guide's grants. Run once by the bootstrap superuser; each statement as qrd provision sends it.\n\
         \\set ON_ERROR_STOP on\n\\set {VERIFIER_VAR} '{v}'\n\n{}",
        env!("CARGO_PKG_VERSION"),
        plan.script("postgres")?
    ))
}

/// Plans provisioning of `spec` on the server described by `inv`. `password` is the repository role's
/// password when the user gave one.
pub fn plan(inv: &Inventory, spec: &RepoSpec, password: Option<&Secret>, opts: &Options) -> Plan {
    let mut plan = Plan::default();
    let role = spec.role.as_str();
    let me = inv.current_user.as_str();

    if !SUPPORTED_MAJORS.contains(&inv.version.major) {
        plan.blockers.push(Blocker {
            message: format!(
                "the server runs PostgreSQL {}, which qrd does not support (supported: {}–{})",
                inv.version,
                SUPPORTED_MAJORS.start(),
                SUPPORTED_MAJORS.end()
            ),
            hint: "use a PostgreSQL 12–16 server (Qlik bundles 14.17)".to_owned(),
        });
    }
    if role == me {
        plan.blockers.push(Blocker {
            message: format!("the repository role {role:?} is the user qrd connects as"),
            hint: "connect as a superuser other than the repository role; the guide says not to use postgres as the \
                   repository user"
                .to_owned(),
        });
    }

    // The role and its password.
    let encryption = Encryption::from_setting(&inv.password_encryption);
    let vars_role = || Vars::new().set("role", role);
    match &inv.role {
        None => match password {
            Some(pw) => {
                let mut step = Step::new(format!("create role {role:?}"), None, CREATE_ROLE, vars_role());
                step.verifier = Some(Secret::new(verifier::compute(encryption, pw, role)));
                plan.steps.push(step);
            }
            None => {
                plan.needs_password = true;
                plan.steps.push(Step::new(format!("create role {role:?}"), None, CREATE_ROLE, vars_role()).unset());
            }
        },
        Some(info) => {
            let diffs = info.attrs.differences(&RoleAttrs::EXPECTED);
            if diffs.is_empty() {
                plan.unchanged.push(format!("role {role:?} exists with the guide's attributes"));
            } else {
                let changes: Vec<String> = diffs.iter().map(|(from, to)| format!("{from} → {to}")).collect();
                let template = if inv.is_superuser { ALTER_ROLE_ATTRIBUTES } else { ALTER_ROLE_ATTRIBUTES_ADMIN };
                plan.steps.push(Step::new(
                    format!("set the attributes of role {role:?}: {}", changes.join(", ")),
                    None,
                    template,
                    vars_role(),
                ));
            }
            let stored = info.password.as_ref();
            let stored_type = stored.map(|s| s.hash_type);
            match password {
                Some(pw) => {
                    // Without pg_authid (no superuser), a login as the role with the password tells.
                    let same = match stored.and_then(|s| s.verifier.as_ref()) {
                        Some(v) => verifier::matches(v.expose(), pw, role),
                        None => stored.is_none() && info.login_with_password == Some(true),
                    };
                    // Re-hash an md5 verifier when the server now encrypts with SCRAM; never downgrade.
                    let upgrade = same && stored_type == Some(HashType::Md5) && encryption == Encryption::ScramSha256;
                    if same && !upgrade {
                        plan.unchanged.push(format!("password of role {role:?} unchanged"));
                    } else {
                        let why = if upgrade { "re-hash as SCRAM-SHA-256" } else { "set" };
                        let mut step =
                            Step::new(format!("{why} the password of role {role:?}"), None, SET_PASSWORD, vars_role());
                        step.verifier = Some(Secret::new(verifier::compute(encryption, pw, role)));
                        plan.steps.push(step);
                    }
                }
                None if stored_type == Some(HashType::None) => {
                    plan.needs_password = true;
                    plan.steps.push(
                        Step::new(
                            format!("set the password of role {role:?} (it has none)"),
                            None,
                            SET_PASSWORD,
                            vars_role(),
                        )
                        .unset(),
                    );
                }
                None => plan.unchanged.push(format!("password of role {role:?} kept (no new password given)")),
            }
            if info.granted_to_current_user {
                plan.unchanged.push(format!("role {role:?} is granted to {me:?}"));
            }
        }
    }
    if !inv.role.as_ref().is_some_and(|r| r.granted_to_current_user) && role != me {
        // PostgreSQL 16: a membership says whether it allows SET ROLE and inheriting; an admin that is no
        // superuser needs both (see grant_role_admin.sql). Before 16 every membership allows SET ROLE.
        let template = if !inv.is_superuser && inv.version.major >= 16 { GRANT_ROLE_ADMIN } else { GRANT_ROLE };
        plan.steps.push(Step::new(
            format!("grant role {role:?} to {me:?}"),
            None,
            template,
            vars_role().set("member", me),
        ));
    }

    // The databases, then their privileges, then schema public inside each.
    let mut grants = Vec::new();
    let mut schema_grants = Vec::new();
    for db in &spec.databases {
        let vars_db = || Vars::new().set("database", db.as_str()).set("role", role);
        let grant = |summary: String, t: Template, vars: Vars| Step::new(summary, None, t, vars);
        let schema_grant = || {
            // An admin that is no superuser grants as pg_database_owner, through the role: see
            // grant_schema_public_15.sql for why 15 needs more.
            let template =
                if !inv.is_superuser && inv.version.major == 15 { GRANT_SCHEMA_PUBLIC_15 } else { GRANT_SCHEMA_PUBLIC };
            Step::new(
                format!("grant ALL on schema public in {db:?} to {role:?}"),
                Some(db.clone()),
                template,
                Vars::new().set("role", role),
            )
        };
        let existing = inv.database(db);
        match existing {
            None => {
                plan.steps.push(Step::new(
                    format!("create database {db:?} (UTF8, template0, owner {role:?})"),
                    None,
                    CREATE_DATABASE,
                    vars_db(),
                ));
            }
            Some(info) => {
                if !info.encoding.eq_ignore_ascii_case("UTF8") {
                    plan.blockers.push(Blocker {
                        message: format!("database {db:?} exists with encoding {}, not UTF8", info.encoding),
                        hint: format!(
                            "qrd never drops a database. If {db:?} holds nothing you need, drop it yourself \
                             (DROP DATABASE {}) and run qrd provision again; otherwise dump it, recreate it as UTF8 \
                             and restore",
                            crate::quote::ident(db).unwrap_or_default()
                        ),
                    });
                }
                if info.owner != role {
                    if opts.fix_owner {
                        plan.steps.push(Step::new(
                            format!("change the owner of database {db:?} from {:?} to {role:?}", info.owner),
                            None,
                            ALTER_DATABASE_OWNER,
                            vars_db(),
                        ));
                    } else {
                        plan.blockers.push(Blocker {
                            message: format!("database {db:?} exists but is owned by {:?}, not {role:?}", info.owner),
                            hint: "run again with --fix-owner to make the repository role its owner (objects inside \
                                   keep their owners), or check that this is the right server"
                                .to_owned(),
                        });
                    }
                } else {
                    plan.unchanged.push(format!("database {db:?} exists, UTF8, owned by {role:?}"));
                }
                if let Some(u) = &info.unreachable {
                    plan.blockers.push(Blocker {
                        message: format!("database {db:?} exists but qrd cannot look inside it: {}", u.reason),
                        hint: u.hint.clone(),
                    });
                } else if !info.allow_conn {
                    plan.blockers.push(Blocker {
                        message: format!("database {db:?} does not accept connections (datallowconn is false)"),
                        hint: format!(
                            "ALTER DATABASE {} WITH ALLOW_CONNECTIONS true, then run qrd provision again",
                            crate::quote::ident(db).unwrap_or_default()
                        ),
                    });
                } else if info.public_schema.is_none() {
                    plan.blockers.push(Blocker {
                        message: format!("database {db:?} has no schema public"),
                        hint: format!(
                            "connect to {db:?} and CREATE SCHEMA public, then run qrd provision again (Qlik keeps its \
                             tables there)"
                        ),
                    });
                }
            }
        }

        // Privileges: each GRANT is planned unless the privileges are already granted explicitly, so that a
        // database created by qrd ends with the same ACL as one set up by the guide's script.
        let has = |grantee: Option<&str>, privs: &[&str]| existing.is_some_and(|i| i.explicitly_grants(grantee, privs));
        if !has(None, &["TEMPORARY", "CONNECT"]) {
            grants.push(grant(
                format!("grant TEMPORARY, CONNECT on database {db:?} to PUBLIC"),
                GRANT_DATABASE_PUBLIC,
                vars_db(),
            ));
        }
        if !has(Some(me), &["CREATE", "TEMPORARY", "CONNECT"]) {
            grants.push(grant(
                format!("grant ALL on database {db:?} to {me:?}"),
                GRANT_DATABASE_ALL,
                vars_db().set("grantee", me),
            ));
        }
        if !has(Some(role), &["CREATE"]) {
            grants.push(grant(
                format!("grant CREATE on database {db:?} to {role:?}"),
                GRANT_DATABASE_CREATE,
                vars_db(),
            ));
        }
        let schema_done = existing
            .and_then(|i| i.public_schema.as_ref())
            .is_some_and(|s| ["CREATE", "USAGE"].iter().all(|p| s.role_explicit.iter().any(|e| e == p)));
        // Before 15 schema public belongs to the bootstrap superuser, so only a superuser may grant on it; PUBLIC
        // may create there, so the grant is redundant (see grant_schema_public.sql): an admin that is no
        // superuser leaves it (`qrd check` asks the server whether the role can really create there).
        let schema_owned_by_superuser = !inv.is_superuser
            && inv.version.major < 15
            && existing.and_then(|i| i.public_schema.as_ref()).is_none_or(|s| s.owner != role && s.owner != me);
        if schema_done {
            plan.unchanged.push(format!("{role:?} has USAGE and CREATE on schema public in {db:?}"));
        } else if schema_owned_by_superuser {
            plan.unchanged.push(format!(
                "schema public in {db:?}: PUBLIC may create there on PostgreSQL {}; the guide's explicit grant needs \
                 the schema's owner, a superuser, and is left out",
                inv.version.major
            ));
        } else {
            schema_grants.push(schema_grant());
        }
    }
    if !schema_grants.is_empty() {
        plan.notes.push(schema_grant_note(inv.version.major));
    }
    plan.steps.extend(grants);
    plan.steps.extend(schema_grants);
    if !inv.is_superuser {
        admin_blockers(inv, spec, &mut plan);
    }
    plan
}

/// What an admin that is no superuser (a managed server's: `LOGIN CREATEROLE CREATEDB`) cannot do of the
/// plan, as blockers: found before anything changes. The rules differ by major: before 16 CREATEROLE may
/// alter and grant any role that is no superuser (and no replication role); from 16 only roles it holds
/// ADMIN OPTION on, which it gets on the roles it creates.
fn admin_blockers(inv: &Inventory, spec: &RepoSpec, plan: &mut Plan) {
    let (role, me) = (spec.role.as_str(), inv.current_user.as_str());
    let touches_role = plan.steps.iter().any(|s| {
        [CREATE_ROLE.name, ALTER_ROLE_ATTRIBUTES_ADMIN.name, SET_PASSWORD.name, GRANT_ROLE.name, GRANT_ROLE_ADMIN.name]
            .contains(&s.template.name)
            || s.template.name == GRANT_SCHEMA_PUBLIC_15.name
    });
    let touches_databases =
        plan.steps.iter().any(|s| [CREATE_DATABASE.name, ALTER_DATABASE_OWNER.name].contains(&s.template.name));
    let superuser_hint = "run qrd provision as a superuser, or ask one (on Amazon RDS the master user) to do this step";
    if touches_role && !inv.can_create_role {
        plan.blockers.push(Blocker {
            message: format!("connected as {me:?}, which is neither a superuser nor has CREATEROLE"),
            hint: "connect as a superuser, or as a managed server's admin role (CREATEROLE CREATEDB) with -U"
                .to_owned(),
        });
    }
    if touches_databases && !inv.can_create_db {
        plan.blockers.push(Blocker {
            message: format!("connected as {me:?}, which is neither a superuser nor has CREATEDB"),
            hint: "connect as a superuser, or as a managed server's admin role (CREATEROLE CREATEDB) with -U"
                .to_owned(),
        });
    }
    let Some(info) = &inv.role else { return };
    if !touches_role {
        return;
    }
    if info.attrs.superuser || info.attrs.replication {
        let what = if info.attrs.superuser { "a superuser" } else { "a replication role" };
        plan.blockers.push(Blocker {
            message: format!("role {role:?} is {what}, which only a superuser may alter ({me:?} is none)"),
            hint: superuser_hint.to_owned(),
        });
    } else if inv.version.major >= 16 && !info.admin_option {
        plan.blockers.push(Blocker {
            message: format!(
                "PostgreSQL {}: {me:?} may alter and grant only roles it holds ADMIN OPTION on, and holds none on \
                 {role:?} (it did not create it)",
                inv.version.major
            ),
            hint: format!(
                "a role that holds it (a superuser, or the role that created {role:?}) runs GRANT {} TO {} WITH ADMIN \
                 OPTION; then run qrd provision again",
                crate::quote::ident(role).unwrap_or_default(),
                crate::quote::ident(me).unwrap_or_default()
            ),
        });
    }
}

/// Why the public-schema grants are there, for this server's major. The guide presents them as needed on
/// 15 and 16; exactly, only 15 needs them for the owner (see grant_schema_public.sql).
fn schema_grant_note(major: u32) -> String {
    match major {
        ..=14 => format!(
            "PostgreSQL {major}: the public-schema grants are redundant (PUBLIC may still create in public); qrd \
             applies them anyway so every version ends in the same state"
        ),
        15 => "PostgreSQL 15: the public-schema grants are required: PUBLIC may not create in public, and the \
               NOINHERIT owner does not get pg_database_owner's rights"
            .to_owned(),
        _ => format!(
            "PostgreSQL {major}: the public-schema grants are what the guide asks for 15/16; since 16 the owner gets \
             pg_database_owner's rights despite NOINHERIT, so they keep access if those are ever revoked"
        ),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("another qrd provision holds the provisioning lock on this server")]
    Locked,
    #[error("step {number} of {total} failed ({summary}): {message}\n  statement: {sql}")]
    Step { number: usize, total: usize, summary: String, sql: String, message: String },
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Query(#[from] QueryError),
}

impl UserError for ApplyError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            ApplyError::Locked => ExitStatus::Refused,
            ApplyError::Connect(e) => e.exit_status(),
            ApplyError::Query(e) => e.exit_status(),
            ApplyError::Step { .. } | ApplyError::Template(_) => ExitStatus::Failed,
        }
    }

    /// The next step for the DBA (for a failed step, the caller adds what exists now).
    fn hint(&self) -> Option<String> {
        match self {
            ApplyError::Locked => {
                Some("wait for the other run to finish (pg_locks shows it as an advisory lock), then run again".into())
            }
            ApplyError::Connect(e) => e.hint(),
            ApplyError::Query(QueryError::Connect(e)) => e.hint(),
            _ => None,
        }
    }
}

/// Where the stored verifier cannot be read (an admin that is no superuser cannot read `pg_authid`):
/// whether `password` is the repository role's, from a real login as the role over the session's route, so
/// that giving the same password again changes nothing. Only when the route asks for a password (a login
/// without one is refused first; on a `trust` route any password would do): otherwise, or when the login
/// fails for another reason (no pg_hba.conf line for us), the answer stays unknown and the password is set
/// again, which changes nothing but its salt.
pub async fn check_password_by_login(session: &Session, inv: &mut Inventory, password: &Secret) {
    let Some(info) = inv.role.as_mut().filter(|r| r.password.is_none()) else { return };
    info.login_with_password = crate::password::stored::login_proves(session, &info.name, password).await;
}

/// What exists of `spec` right now, from the maintenance connection alone (so it works even when the
/// databases themselves cannot be reached): `role "x" exists; "QSR" exists, "QSMQ" missing, …`.
pub async fn what_exists(session: &Session, spec: &RepoSpec) -> Result<String, QueryError> {
    use crate::inventory::{DATABASES, ROLE};
    let c = session.client();
    let db = &session.target().dbname;
    let role = c.query_opt(ROLE.text, &[&spec.role, &""]).await.map_err(|e| QueryError::query(ROLE.name, db, &e))?;
    let names: Vec<&str> = spec.databases.iter().map(String::as_str).collect();
    let rows = c.query(DATABASES.text, &[&names]).await.map_err(|e| QueryError::query(DATABASES.name, db, &e))?;
    let dbs: Vec<String> = spec
        .databases
        .iter()
        .map(|d| {
            let exists = rows.iter().any(|r| r.get::<_, String>("name") == *d);
            format!("{d:?} {}", if exists { "exists" } else { "missing" })
        })
        .collect();
    Ok(format!("role {:?} {}; {}", spec.role, if role.is_some() { "exists" } else { "missing" }, dbs.join(", ")))
}

/// The database the provisioning lock is taken in. Advisory locks belong to one database, so every run
/// must use the same one whatever its `-d`: `postgres`, which every cluster has unless someone dropped it.
pub const LOCK_DATABASE: &str = "postgres";

/// Holds the provisioning lock until dropped (the lock is session-level: it ends with its connection).
pub struct LockGuard {
    _conn: Option<deadpool_postgres::Object>,
}

/// Takes the provisioning lock, on a connection to [`LOCK_DATABASE`] (the maintenance connection when that
/// is where it points, or when `postgres` cannot be reached: then only runs with the same `-d` exclude
/// each other, and a debug message says so).
pub async fn lock(session: &Session) -> Result<LockGuard, ApplyError> {
    let pooled = if session.target().dbname == LOCK_DATABASE {
        None
    } else {
        match session.db(LOCK_DATABASE).await {
            Ok(conn) => Some(conn),
            Err(e) => {
                tracing::debug!("provisioning lock taken in the maintenance database instead: {e}");
                None
            }
        }
    };
    let (client, db) = match &pooled {
        Some(conn) => (&***conn, LOCK_DATABASE),
        None => (session.client(), session.target().dbname.as_str()),
    };
    let row = client.query_one(LOCK.text, &[]).await.map_err(|e| QueryError::query(LOCK.name, db, &e))?;
    if row.get::<_, bool>("locked") { Ok(LockGuard { _conn: pooled }) } else { Err(ApplyError::Locked) }
}

/// Runs the plan's steps in order, calling `done` after each. Stops at the first failure: every step is
/// idempotent against the state it leaves, so running `qrd provision` again continues where it stopped.
pub async fn apply(session: &Session, plan: &Plan, mut done: impl FnMut(&Step)) -> Result<(), ApplyError> {
    let total = plan.steps.len();
    for (i, step) in plan.steps.iter().enumerate() {
        let statements = step.statements()?;
        let shown = step.display_statement()?;
        tracing::debug!(step = %step.summary, sql = %shown, "running");
        let result = async {
            let pooled;
            let client = match &step.database {
                None => session.client(),
                Some(db) => {
                    pooled = session.db(db).await.map_err(|e| e.to_string())?;
                    &**pooled
                }
            };
            for sql in &statements {
                if let Err(e) = client.batch_execute(sql).await {
                    // A step that is one transaction (grant_schema_public_15.sql) leaves it aborted: end it,
                    // so nothing of it stays and the connection can be used again.
                    if statements.first().is_some_and(|s| s == "BEGIN;") {
                        let _ = client.batch_execute("ROLLBACK").await;
                    }
                    return Err(crate::connect::server_message(&e));
                }
            }
            Ok::<_, String>(())
        }
        .await;
        if let Err(message) = result {
            return Err(ApplyError::Step { number: i + 1, total, summary: step.summary.clone(), sql: shown, message });
        }
        done(step);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::StoredPassword;

    use crate::testing::{ROLE, bare_server, managed, provisioned};

    fn summaries(plan: &Plan) -> Vec<&str> {
        plan.steps.iter().map(|s| s.summary.as_str()).collect()
    }

    #[test]
    fn bare_server_gets_everything_in_order() {
        let pw = Secret::new("pw");
        let plan = plan(&bare_server(16), &RepoSpec::new(ROLE), Some(&pw), &Options::default());
        assert!(plan.blockers.is_empty() && !plan.needs_password);
        let s = summaries(&plan);
        assert_eq!(s.len(), 2 + 4 + 4 * 3 + 4, "{s:#?}");
        assert_eq!(s[0], "create role \"qliksenserepository\"");
        assert_eq!(s[1], "grant role \"qliksenserepository\" to \"postgres\"");
        assert!(s[2].starts_with("create database \"QSR\""));
        assert!(s.last().unwrap().starts_with("grant ALL on schema public in \"Licenses\""));
        assert!(plan.steps[0].sets_password());
        let sql = plan.steps[0].statements().unwrap().join("\n");
        assert!(sql.contains("PASSWORD 'SCRAM-SHA-256$4096:"), "{sql}");
        assert!(!plan.steps[0].display_sql().unwrap().contains("SCRAM-SHA-256$"), "the verifier is never displayed");
    }

    #[test]
    fn provisioned_server_is_a_noop_with_or_without_the_same_password() {
        let inv = provisioned(15, "pw");
        let spec = RepoSpec::new(ROLE);
        assert!(plan(&inv, &spec, None, &Options::default()).is_noop());
        assert!(plan(&inv, &spec, Some(&Secret::new("pw")), &Options::default()).is_noop());
        let changed = plan(&inv, &spec, Some(&Secret::new("other")), &Options::default());
        assert_eq!(summaries(&changed), ["set the password of role \"qliksenserepository\""]);
    }

    #[test]
    fn role_without_password_needs_one_and_the_dry_run_shows_the_step() {
        let mut inv = provisioned(16, "pw");
        inv.role.as_mut().unwrap().password = Some(StoredPassword { hash_type: HashType::None, verifier: None });
        let plan = plan(&inv, &RepoSpec::new(ROLE), None, &Options::default());
        assert!(plan.needs_password && !plan.is_noop());
        assert_eq!(summaries(&plan), ["set the password of role \"qliksenserepository\" (it has none)"]);
        assert!(plan.script("postgres").unwrap().contains("WITH PASSWORD :'verifier';"));
    }

    #[test]
    fn md5_verifier_is_rehashed_on_a_scram_server_and_never_downgraded() {
        let spec = RepoSpec::new(ROLE);
        let pw = Secret::new("pw");
        let mut inv = provisioned(14, "pw");
        inv.role.as_mut().unwrap().password = Some(StoredPassword {
            hash_type: HashType::Md5,
            verifier: Some(Secret::new(verifier::compute(Encryption::Md5, &pw, ROLE))),
        });
        let up = plan(&inv, &spec, Some(&pw), &Options::default());
        assert_eq!(summaries(&up), ["re-hash as SCRAM-SHA-256 the password of role \"qliksenserepository\""]);
        inv.password_encryption = "md5".into();
        assert!(plan(&inv, &spec, Some(&pw), &Options::default()).is_noop());
        let scram = provisioned(14, "pw");
        let mut md5_server = scram.clone();
        md5_server.password_encryption = "md5".into();
        assert!(plan(&md5_server, &spec, Some(&pw), &Options::default()).is_noop(), "no downgrade to md5");
    }

    #[test]
    fn wrong_encoding_or_owner_blocks_and_nothing_is_dropped() {
        let spec = RepoSpec::new(ROLE);
        let mut inv = provisioned(16, "pw");
        inv.databases[0].encoding = "SQL_ASCII".into();
        inv.databases[1].owner = "someone".into();
        let p = plan(&inv, &spec, None, &Options::default());
        assert_eq!(p.blockers.len(), 2, "{:?}", p.blockers);
        assert!(p.blockers[0].hint.contains("qrd never drops a database"));
        let fixed = plan(&inv, &spec, None, &Options { fix_owner: true });
        assert_eq!(fixed.blockers.len(), 1);
        assert!(summaries(&fixed).iter().any(|s| s.starts_with("change the owner of database \"SenseServices\"")));
        assert!(fixed.steps.iter().all(|s| !s.display_sql().unwrap().to_uppercase().contains("DROP")));
    }

    #[test]
    fn refusals_before_any_change() {
        let spec = RepoSpec::new(ROLE);
        let mut inv = bare_server(17);
        inv.is_superuser = false;
        inv.can_create_role = false;
        let p = plan(&inv, &spec, Some(&Secret::new("pw")), &Options::default());
        assert_eq!(p.blockers.len(), 2, "{:?}", p.blockers);
        assert!(p.blockers[1].message.contains("neither a superuser nor has CREATEROLE"), "{:?}", p.blockers);
        let me = plan(&bare_server(16), &RepoSpec::new("postgres"), Some(&Secret::new("pw")), &Options::default());
        assert!(me.blockers.iter().any(|b| b.message.contains("is the user qrd connects as")));
    }

    /// A managed server's admin (CREATEROLE CREATEDB, no superuser): the role is granted to it with SET and
    /// INHERIT on 16 (its CREATE ROLE gives ADMIN OPTION only), the attributes without the superuser-only
    /// words, the schema grant per major: through the owner on 16, with a role that inherits for one
    /// transaction on 15, left out before 15 (the schema is the bootstrap superuser's).
    #[test]
    fn a_managed_admin_gets_the_statements_it_may_run() {
        let spec = RepoSpec::new(ROLE);
        let pw = Secret::new("pw");
        let templates = |p: &Plan| p.steps.iter().map(|s| s.template.name).collect::<Vec<_>>();
        for major in [16, 15, 14, 12] {
            let p = plan(&managed(bare_server(major)), &spec, Some(&pw), &Options::default());
            assert!(p.blockers.is_empty(), "{major}: {:?}", p.blockers);
            let t = templates(&p);
            let grant = if major >= 16 { GRANT_ROLE_ADMIN.name } else { GRANT_ROLE.name };
            assert_eq!(t[..2], [CREATE_ROLE.name, grant], "{major}");
            assert_eq!(summaries(&p)[1], "grant role \"qliksenserepository\" to \"dba\"");
            let schema = t.iter().filter(|n| n.contains("schema_public")).collect::<Vec<_>>();
            match major {
                16 => assert_eq!(schema, [&GRANT_SCHEMA_PUBLIC.name; 4]),
                15 => assert_eq!(schema, [&GRANT_SCHEMA_PUBLIC_15.name; 4]),
                _ => {
                    assert!(schema.is_empty(), "{major}: {t:?}");
                    assert!(p.unchanged.iter().any(|u| u.contains("PUBLIC may create there")), "{:?}", p.unchanged);
                }
            }
        }
        let mut inv = managed(provisioned(15, "pw"));
        inv.role.as_mut().unwrap().attrs.inherit = true;
        let p = plan(&inv, &spec, None, &Options::default());
        assert_eq!(templates(&p), [ALTER_ROLE_ATTRIBUTES_ADMIN.name]);
        assert!(!p.steps[0].display_statement().unwrap().contains("SUPERUSER"));
    }

    /// What such an admin cannot do is refused before any change: a role it holds no ADMIN OPTION on (16),
    /// a superuser role, a role to create without CREATEROLE; a provisioned server needs none of it.
    #[test]
    fn a_managed_admin_is_refused_what_it_may_not_do() {
        let spec = RepoSpec::new(ROLE);
        let mut inv = managed(provisioned(16, "pw"));
        assert!(plan(&inv, &spec, None, &Options::default()).is_noop());
        inv.role.as_mut().unwrap().admin_option = false;
        assert!(plan(&inv, &spec, None, &Options::default()).is_noop(), "nothing to alter, nothing needed");
        let p = plan(&inv, &spec, Some(&Secret::new("new")), &Options::default());
        assert_eq!(p.blockers.len(), 1, "{:?}", p.blockers);
        assert!(p.blockers[0].message.contains("holds none on \"qliksenserepository\""), "{:?}", p.blockers);
        assert!(
            p.blockers[0].hint.contains(r#"GRANT "qliksenserepository" TO "dba" WITH ADMIN OPTION"#),
            "{}",
            p.blockers[0].hint
        );
        let mut inv15 = managed(provisioned(15, "pw"));
        inv15.role.as_mut().unwrap().admin_option = false;
        assert!(
            plan(&inv15, &spec, Some(&Secret::new("new")), &Options::default()).blockers.is_empty(),
            "15: CREATEROLE"
        );
        inv15.role.as_mut().unwrap().attrs.superuser = true;
        let p = plan(&inv15, &spec, None, &Options::default());
        assert!(p.blockers[0].message.contains("is a superuser, which only a superuser may alter"), "{:?}", p.blockers);
        let mut bare = managed(bare_server(16));
        bare.can_create_db = false;
        let p = plan(&bare, &spec, Some(&Secret::new("pw")), &Options::default());
        assert_eq!(p.blockers.len(), 1, "{:?}", p.blockers);
        assert!(p.blockers[0].message.contains("nor has CREATEDB"));
    }

    /// Without pg_authid, a login with the password given decides whether it changes.
    #[test]
    fn without_the_verifier_a_login_decides() {
        let spec = RepoSpec::new(ROLE);
        let mut inv = managed(provisioned(16, "pw"));
        let pw = Secret::new("pw");
        assert_eq!(summaries(&plan(&inv, &spec, Some(&pw), &Options::default())).len(), 1, "unknown: set again");
        inv.role.as_mut().unwrap().login_with_password = Some(true);
        assert!(plan(&inv, &spec, Some(&pw), &Options::default()).is_noop());
        inv.role.as_mut().unwrap().login_with_password = Some(false);
        assert_eq!(
            summaries(&plan(&inv, &spec, Some(&pw), &Options::default())),
            ["set the password of role \"qliksenserepository\""]
        );
    }
}
