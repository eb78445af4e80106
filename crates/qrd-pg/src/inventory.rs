//! What a server holds that qrd reasons about, gathered once per command: version and settings, the
//! repository role, and the Qlik databases with their privileges. Provisioning plans and checks are pure
//! functions of an [`Inventory`], so they can be tested without a server.

use futures_util::future::join_all;
use qrd_exit::{ExitStatus, UserError};
use qrd_pgbin::PgVersion;
use tokio_postgres::Row;

use crate::connect::ConnectError;
use crate::password::Secret;
use crate::password::verifier::HashType;
use crate::session::Session;
use crate::spec::{RepoSpec, RoleAttrs};
use crate::sql_template;
use crate::template::Template;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("failed to run {sql} on database {database:?}: {message}")]
    Query { sql: &'static str, database: String, message: String },
    #[error(transparent)]
    Connect(#[from] ConnectError),
}

impl UserError for QueryError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            QueryError::Connect(e) => e.exit_status(),
            QueryError::Query { .. } => ExitStatus::Failed,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            QueryError::Connect(e) => e.hint(),
            QueryError::Query { .. } => {
                Some("run again with -v for the statements qrd runs; the server log may say more".into())
            }
        }
    }
}

impl QueryError {
    pub fn query(sql: &'static str, database: &str, err: &tokio_postgres::Error) -> Self {
        QueryError::Query { sql, database: database.to_owned(), message: crate::connect::server_message(err) }
    }
}

#[derive(Debug, Clone)]
pub struct Inventory {
    pub version: PgVersion,
    /// `server_version` as the server prints it (e.g. `16.14 (Debian …)`).
    pub version_text: String,
    pub current_user: String,
    pub is_superuser: bool,
    /// The connecting user has CREATEROLE / CREATEDB (a managed server's admin has both, and no superuser).
    pub can_create_role: bool,
    pub can_create_db: bool,
    pub password_encryption: String,
    pub ssl: bool,
    pub max_connections: i32,
    pub listen_addresses: String,
    pub port: i32,
    /// pg_hba.conf's text as the server has it (`None` without superuser rights or when unreadable).
    pub hba_text: Option<String>,
    /// The rules of pg_hba.conf and the files it includes as the server parses them
    /// (`pg_hba_file_rules`), on PostgreSQL 16, where included files exist (`None` before 16, without
    /// superuser rights, or when unreadable).
    pub hba_rules: Option<Vec<HbaRule>>,
    /// Every role with the roles it is directly a member of (for `+group` and `samerole` in
    /// pg_hba.conf); read with `hba_text`.
    pub memberships: Option<Vec<(String, Vec<String>)>>,
    pub role: Option<RoleInfo>,
    /// Every role that can log in, with the type of its stored password (superusers only: `pg_authid`).
    pub login_roles: Option<Vec<(String, HashType)>>,
    /// TLS settings and the server certificate (see [`crate::tlsinfo`]).
    pub tls: Option<crate::tlsinfo::TlsInfo>,
    /// The Qlik databases that exist, in the spec's order.
    pub databases: Vec<DbInfo>,
    /// Maintenance database the inventory was taken from.
    pub maintenance_db: String,
}

/// One rule as the server parsed it (a `pg_hba_file_rules` row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HbaRule {
    /// The file the rule is written in, as the server names it.
    pub file: String,
    /// The rule is in pg_hba.conf itself, not in an included file.
    pub in_main_file: bool,
    pub line: usize,
    /// `local`, `host`, `hostssl` …
    pub conn_type: Option<String>,
    /// `None` for a line the server could not parse.
    pub method: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RoleInfo {
    pub name: String,
    pub attrs: RoleAttrs,
    pub valid_until: Option<String>,
    /// `VALID UNTIL` lies in the past: password logins fail.
    pub expired: bool,
    /// Whether the connecting user was granted the role: for a superuser explicitly (the guide's `GRANT
    /// role TO postgres`); for anyone else so that it may act as the role (SET ROLE, and its privileges):
    /// what creating databases owned by the role and granting on them need.
    pub granted_to_current_user: bool,
    /// The connecting user holds ADMIN OPTION on the role (on PostgreSQL 16 a CREATEROLE user may alter
    /// only roles it has ADMIN OPTION on; it gets it on the roles it creates).
    pub admin_option: bool,
    /// The stored verifier; `None` when it could not be read (not a superuser).
    pub password: Option<StoredPassword>,
    /// Without the stored verifier: whether a login as the role with the password given worked (see
    /// [`crate::provision::check_password_by_login`]); `None` when not tried or the login could not tell.
    pub login_with_password: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct StoredPassword {
    pub hash_type: HashType,
    pub verifier: Option<Secret>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AclEntry {
    /// `None` is PUBLIC.
    pub grantee: Option<String>,
    pub grantor: String,
    /// `CREATE`, `CONNECT`, `TEMPORARY`.
    pub privilege: String,
    pub grantable: bool,
}

#[derive(Debug, Clone)]
pub struct DbInfo {
    pub name: String,
    pub encoding: String,
    pub owner: String,
    pub allow_conn: bool,
    /// `datacl` is NULL: the built-in default applies (owner all, PUBLIC CONNECT and TEMPORARY).
    pub acl_is_default: bool,
    /// Effective privileges (the default expanded when `acl_is_default`).
    pub acl: Vec<AclEntry>,
    /// `None` when the database does not accept connections, could not be read, or has no schema `public`.
    pub public_schema: Option<SchemaInfo>,
    /// Why qrd could not look inside the database (connection refused by pg_hba.conf, …), if so.
    pub unreachable: Option<Unreachable>,
}

#[derive(Debug, Clone)]
pub struct Unreachable {
    pub reason: String,
    pub hint: String,
}

impl DbInfo {
    /// Whether `grantee` (None = PUBLIC) holds all of `privileges` through an *explicit* ACL entry.
    pub fn explicitly_grants(&self, grantee: Option<&str>, privileges: &[&str]) -> bool {
        !self.acl_is_default
            && privileges.iter().all(|p| self.acl.iter().any(|e| e.grantee.as_deref() == grantee && e.privilege == *p))
    }

    /// Whether `grantee` holds `privilege` directly (explicit or by default).
    pub fn grants(&self, grantee: Option<&str>, privilege: &str) -> bool {
        self.acl.iter().any(|e| e.grantee.as_deref() == grantee && e.privilege == privilege)
    }
}

#[derive(Debug, Clone)]
pub struct SchemaInfo {
    pub owner: String,
    pub acl_is_default: bool,
    /// Effective ACL as `grantee=PRIVILEGE` strings (PUBLIC for the public pseudo-role).
    pub acl: Vec<String>,
    /// What the repository role can really do (`None` when the role does not exist).
    pub role_usage: Option<bool>,
    pub role_create: Option<bool>,
    /// Privileges granted to the role explicitly (`USAGE`, `CREATE`).
    pub role_explicit: Vec<String>,
}

const SERVER: Template = sql_template!("inventory/server.sql");
pub(crate) const ROLE: Template = sql_template!("inventory/role.sql");
const ROLE_PASSWORD: Template = sql_template!("inventory/role_password.sql");
pub(crate) const DATABASES: Template = sql_template!("inventory/databases.sql");
const DATABASE_ACL: Template = sql_template!("inventory/database_acl.sql");
const SCHEMA_PUBLIC: Template = sql_template!("inventory/schema_public.sql");
const HBA_TEXT: Template = sql_template!("inventory/hba_text.sql");
const HBA_RULES: Template = sql_template!("inventory/hba_rules.sql");
const LOGIN_ROLES: Template = sql_template!("inventory/login_roles.sql");

impl Inventory {
    /// A cluster just made by initdb, as seen by its bootstrap superuser: no repository role, no Qlik
    /// database. What a new cluster's bootstrap script is planned from (see
    /// [`crate::provision::bootstrap_script`]), where no server can be asked yet.
    pub fn empty_cluster(major: u32, superuser: &str, password_encryption: &str) -> Self {
        Inventory {
            version: PgVersion { major, minor: 0, text: major.to_string() },
            version_text: major.to_string(),
            current_user: superuser.to_owned(),
            is_superuser: true,
            can_create_role: true,
            can_create_db: true,
            password_encryption: password_encryption.to_owned(),
            ssl: false,
            max_connections: 100,
            listen_addresses: String::new(),
            port: 0,
            hba_text: None,
            hba_rules: None,
            memberships: None,
            role: None,
            login_roles: None,
            tls: None,
            databases: Vec::new(),
            maintenance_db: "postgres".to_owned(),
        }
    }

    /// Reads everything through `session`. Databases that exist are visited concurrently.
    pub async fn gather(session: &Session, spec: &RepoSpec) -> Result<Self, QueryError> {
        let main_db = session.target().dbname.clone();
        let c = session.client();
        let q = |t: &'static Template| t.text;

        let server = c.query_one(q(&SERVER), &[]).await.map_err(|e| QueryError::query(SERVER.name, &main_db, &e))?;
        let version_num: i32 = server.get("version_num");
        let current_user: String = server.get("current_user");
        let is_superuser: bool = server.get::<_, Option<bool>>("is_superuser").unwrap_or(false);

        let role_row = c
            .query_opt(q(&ROLE), &[&spec.role, &current_user])
            .await
            .map_err(|e| QueryError::query(ROLE.name, &main_db, &e))?;
        let mut role = role_row.map(|r| role_info(&r, is_superuser));
        if let Some(role) = role.as_mut().filter(|_| is_superuser) {
            let row = c
                .query_opt(q(&ROLE_PASSWORD), &[&spec.role])
                .await
                .map_err(|e| QueryError::query(ROLE_PASSWORD.name, &main_db, &e))?;
            let stored: Option<String> = row.and_then(|r| r.get(0));
            role.password =
                Some(StoredPassword { hash_type: HashType::of(stored.as_deref()), verifier: stored.map(Secret::new) });
        }

        let hba_text = if is_superuser {
            match c.query_one(q(&HBA_TEXT), &[]).await {
                Ok(r) => r.get("hba"),
                Err(e) => {
                    tracing::debug!(
                        "cannot read pg_hba.conf through the server: {}",
                        crate::connect::server_message(&e)
                    );
                    None
                }
            }
        } else {
            None
        };

        // Before 16 the view holds the main file's rules only, which hba_text already gives.
        let hba_rules = if is_superuser && version_num >= 160000 {
            match c.query(q(&HBA_RULES), &[]).await {
                Ok(rows) => Some(
                    rows.iter()
                        .map(|r| HbaRule {
                            file: r.get("file_name"),
                            in_main_file: r.get("in_main_file"),
                            line: r.get::<_, i32>("line_number") as usize,
                            conn_type: r.get("type"),
                            method: r.get("auth_method"),
                        })
                        .collect(),
                ),
                Err(e) => {
                    tracing::debug!("cannot read pg_hba_file_rules: {}", crate::connect::server_message(&e));
                    None
                }
            }
        } else {
            None
        };

        let memberships = match &hba_text {
            Some(_) => Some(crate::serverconf::memberships(session).await?),
            None => None,
        };

        let login_roles = if is_superuser {
            let rows =
                c.query(q(&LOGIN_ROLES), &[]).await.map_err(|e| QueryError::query(LOGIN_ROLES.name, &main_db, &e))?;
            Some(
                rows.iter()
                    .map(|r| {
                        (r.get::<_, String>("name"), HashType::of(r.get::<_, Option<String>>("password").as_deref()))
                    })
                    .collect(),
            )
        } else {
            None
        };
        let tls = crate::tlsinfo::gather(session).await?;

        let names: Vec<&str> = spec.databases.iter().map(String::as_str).collect();
        let db_rows =
            c.query(q(&DATABASES), &[&names]).await.map_err(|e| QueryError::query(DATABASES.name, &main_db, &e))?;
        let acl_rows = c
            .query(q(&DATABASE_ACL), &[&names])
            .await
            .map_err(|e| QueryError::query(DATABASE_ACL.name, &main_db, &e))?;

        let role_exists = role.is_some();
        let visits = db_rows.iter().map(|row| {
            let name: String = row.get("name");
            let allow_conn: bool = row.get("allow_conn");
            async move {
                if !allow_conn {
                    return Ok::<_, QueryError>((name, Ok(None)));
                }
                // One database that cannot be entered must not hide what the others hold: record why.
                let client = match session.db(&name).await {
                    Ok(client) => client,
                    Err(e) => {
                        let hint = e.hint().unwrap_or_default();
                        return Ok((name, Err(Unreachable { reason: e.to_string(), hint })));
                    }
                };
                let row = match client.query_opt(q(&SCHEMA_PUBLIC), &[&spec.role, &role_exists]).await {
                    Ok(row) => row,
                    Err(e) => {
                        let reason = QueryError::query(SCHEMA_PUBLIC.name, &name, &e).to_string();
                        return Ok((name, Err(Unreachable { reason, hint: "run again with -v for details".into() })));
                    }
                };
                let Some(r) = row else { return Ok((name, Ok(None))) };
                let schema = SchemaInfo {
                    owner: r.get("owner"),
                    acl_is_default: r.get("acl_is_default"),
                    acl: r.get("acl"),
                    role_usage: r.get("role_usage"),
                    role_create: r.get("role_create"),
                    role_explicit: r.get("role_explicit"),
                };
                Ok((name, Ok(Some(schema))))
            }
        });
        let mut schemas = join_all(visits).await.into_iter().collect::<Result<Vec<_>, _>>()?;

        let mut databases = Vec::new();
        for wanted in &spec.databases {
            let Some(row) = db_rows.iter().find(|r| r.get::<_, String>("name") == *wanted) else { continue };
            let acl = acl_rows
                .iter()
                .filter(|a| a.get::<_, String>("database") == *wanted)
                .map(|a| AclEntry {
                    grantee: a.get("grantee"),
                    grantor: a.get("grantor"),
                    privilege: a.get("privilege"),
                    grantable: a.get("grantable"),
                })
                .collect();
            let visited = schemas.iter().position(|(n, _)| n == wanted).map(|i| schemas.swap_remove(i).1);
            let (public_schema, unreachable) = match visited {
                Some(Ok(schema)) => (schema, None),
                Some(Err(u)) => (None, Some(u)),
                None => (None, None),
            };
            databases.push(DbInfo {
                name: wanted.clone(),
                encoding: row.get("encoding"),
                owner: row.get("owner"),
                allow_conn: row.get("allow_conn"),
                acl_is_default: row.get("acl_is_default"),
                acl,
                public_schema,
                unreachable,
            });
        }

        Ok(Inventory {
            version: PgVersion::from_version_num(version_num as u32),
            version_text: server.get("version"),
            current_user,
            is_superuser,
            can_create_role: server.get::<_, Option<bool>>("createrole").unwrap_or(false),
            can_create_db: server.get::<_, Option<bool>>("createdb").unwrap_or(false),
            password_encryption: server.get("password_encryption"),
            ssl: server.get::<_, String>("ssl") == "on",
            max_connections: server.get("max_connections"),
            listen_addresses: server.get("listen_addresses"),
            port: server.get("port"),
            hba_text,
            hba_rules,
            memberships,
            role,
            login_roles,
            tls,
            databases,
            maintenance_db: main_db,
        })
    }

    pub fn database(&self, name: &str) -> Option<&DbInfo> {
        self.databases.iter().find(|d| d.name == name)
    }
}

fn role_info(r: &Row, is_superuser: bool) -> RoleInfo {
    RoleInfo {
        name: r.get("name"),
        attrs: RoleAttrs {
            login: r.get("login"),
            inherit: r.get("inherit"),
            superuser: r.get("superuser"),
            createdb: r.get("createdb"),
            createrole: r.get("createrole"),
            replication: r.get("replication"),
            never_expires: r.get("never_expires"),
        },
        valid_until: r.get("valid_until"),
        expired: r.get("expired"),
        granted_to_current_user: if is_superuser { r.get("granted_to_member") } else { r.get("acts_as") },
        admin_option: r.get("admin_option"),
        password: None,
        login_with_password: None,
    }
}
