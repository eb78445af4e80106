//! `qrd restore BUNDLE`: the guide's four `pg_restore` commands and its recipes for "database does not
//! exist" and "relation already exists", as one checked step.
//!
//! 1. The bundle is verified while it is extracted beside itself (a damaged bundle restores nothing).
//! 2. The roles: those missing on the target are created from `globals.sql` with everything the source
//!    said about them (attributes, verifiers, settings, memberships); existing roles are left as they are.
//!    Every recorder of the session is off meanwhile: the statements carry password verifiers.
//! 3. Each database: created when missing (UTF8 from template0, owned as on the source); a database that
//!    exists and holds tables is refused, before anything is written, unless it is empty. `pg_restore` of
//!    the source's and the target's major or newer fills it, in parallel for directory archives, stopping
//!    at the first error; a database this restore created and could not fill is dropped again.
//! 4. Proof: every table's rows counted and compared with the manifest, and the guide's provisioning
//!    checked (`qrd provision` would fix what differs: database grants are not part of a pg_dump archive).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use qrd_pg::connect::ConnectError;
use qrd_pg::inventory::{Inventory, QueryError};
use qrd_pg::template::{Template, Vars};
use qrd_pg::{RepoSpec, Session, sql_template};
use qrd_pgbin::{FindError, Finder, PgVersion, Tool, ToolError, run, scrubbed_command};

use crate::bundle::{self, ReadError};
use crate::globals::{Globals, GlobalsError};
use crate::hostname::{self, Rename, RenameError, Renamed};
use crate::manifest::{ArchiveFormat, Manifest};
use crate::space::{self, SpaceError};

const ROLES: Template = sql_template!("restore/roles.sql");
const DATABASE_EXISTS: Template = sql_template!("restore/database_exists.sql");
const USER_TABLES: Template = sql_template!("restore/user_tables.sql");
const DROP_DATABASE: Template = sql_template!("restore/drop_database.sql");
const CREATE_DATABASE: Template = sql_template!("provision/create_database.sql");
const RECORDERS_OFF: Template = sql_template!("security/recorders_off.sql");
const RECORDERS_RESET: Template = sql_template!("security/recorders_reset.sql");
const COUNT_ROWS: Template = sql_template!("backup/count_rows.sql");

#[derive(Debug, Clone)]
pub struct Request {
    pub bundle: PathBuf,
    /// Only these databases (default: every database of the bundle).
    pub databases: Vec<String>,
    /// pg_restore's parallel workers (directory archives).
    pub jobs: u32,
    /// The repository role whose provisioning is checked afterwards.
    pub repo_role: String,
    /// A new host name for the central node (with the shared folders' new paths), applied to QSR.
    pub rename: Option<Rename>,
}

/// The result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub bundle: PathBuf,
    pub roles_created: Vec<String>,
    pub roles_existing: Vec<String>,
    pub databases: Vec<RestoredDatabase>,
    /// What `qrd provision` would still change on the restored server (the guide's database grants are
    /// not in a pg_dump archive); empty when it matches the guide.
    pub provisioning_differs: Vec<String>,
    /// What the new-hostname change did to QSR.
    pub renamed: Option<Renamed>,
    /// What is left to do on the new Windows machine (with a new host name).
    pub runbook: Vec<String>,
    pub seconds: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RestoredDatabase {
    pub name: String,
    pub created: bool,
    pub tables: usize,
    pub rows: u64,
    pub seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Space(#[from] SpaceError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Tools(#[from] FindError),
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error(transparent)]
    Globals(#[from] GlobalsError),
    #[error("the bundle holds no database {name:?} (it holds {held})")]
    NotInBundle { name: String, held: String },
    #[error("database {name:?} already holds {tables} tables; nothing was restored")]
    NotEmpty { name: String, tables: i64 },
    #[error("creating role(s) from globals.sql failed at `{statement}`: {message}")]
    Roles { statement: String, message: String },
    #[error("after the restore, {} table(s) do not hold the rows the manifest counted:{}", mismatches.len(), mismatches.iter().map(|m| format!("\n  {m}")).collect::<String>())]
    RowCounts { mismatches: Vec<String> },
    #[error("failed to make a work directory beside {}: {source}", path.display())]
    Work { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Rename(#[from] RenameError),
    #[error("--new-hostname changes QSR, which this restore does not include")]
    RenameWithoutQsr,
}

impl RestoreError {
    pub fn hint(&self) -> String {
        match self {
            RestoreError::Read(e) => e.hint(),
            RestoreError::Space(e) => e.hint(),
            RestoreError::Connect(e) => e.hint(),
            RestoreError::Query(_) => "run again with -v for the statements qrd runs; restore as a superuser".into(),
            RestoreError::Tools(e) => e.hint(),
            RestoreError::Tool(_) => {
                "pg_restore's words are above; a database this restore created was dropped again".into()
            }
            RestoreError::Globals(_) => "globals.sql is not what pg_dumpall writes: verify the bundle".into(),
            RestoreError::NotInBundle { .. } => "`qrd backup list` shows what each bundle holds".into(),
            RestoreError::NotEmpty { .. } => {
                "restore into a server without those databases, or drop them first if they are expendable".into()
            }
            RestoreError::Roles { .. } => "the role statements are in globals.sql inside the bundle".into(),
            RestoreError::RowCounts { .. } => {
                "the restored data differs from the backup: do not put this server in service; verify the bundle".into()
            }
            RestoreError::Work { .. } => "check the directory's permissions and free space".into(),
            RestoreError::Rename(e) => e.hint(),
            RestoreError::RenameWithoutQsr => "add --database QSR, or drop --new-hostname".into(),
        }
    }

    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            RestoreError::Space(_)
                | RestoreError::Tools(_)
                | RestoreError::NotInBundle { .. }
                | RestoreError::NotEmpty { .. }
        )
    }
}

fn query_err(t: &Template, db: &str) -> impl Fn(tokio_postgres::Error) -> QueryError {
    let (name, db) = (t.name, db.to_owned());
    move |e| QueryError::query(name, &db, &e)
}

fn render(t: &Template, vars: &Vars, db: &str) -> Result<String, QueryError> {
    t.render_statement(vars).map_err(|e| QueryError::Query {
        sql: t.name,
        database: db.to_owned(),
        message: e.to_string(),
    })
}

/// Restores `req.bundle` onto the server `session` reaches (see the module documentation).
pub async fn restore(session: &Session, finder: &Finder, req: &Request) -> Result<Report, RestoreError> {
    let started = Instant::now();
    let manifest = bundle::read_manifest(&req.bundle)?;
    let chosen = choose(&manifest, &req.databases)?;
    let main_db = session.target().dbname.clone();
    if let Some(rename) = &req.rename {
        if !chosen.iter().any(|d| d == "QSR") {
            return Err(RestoreError::RenameWithoutQsr);
        }
        hostname::old_host(rename, manifest.site.as_ref())?;
    }

    // Refuse before anything is written: the databases must be missing or empty.
    let mut existing_dbs = BTreeSet::new();
    for name in &chosen {
        let present: bool = session
            .client()
            .query_one(DATABASE_EXISTS.text, &[name])
            .await
            .map_err(query_err(&DATABASE_EXISTS, &main_db))?
            .get("present");
        if present {
            let mut c = session.connector().clone();
            let client = c.connect(name).await?;
            let tables: i64 =
                client.query_one(USER_TABLES.text, &[]).await.map_err(query_err(&USER_TABLES, name))?.get(0);
            if tables > 0 {
                return Err(RestoreError::NotEmpty { name: name.clone(), tables });
            }
            existing_dbs.insert(name.clone());
        }
    }
    let target: i32 = session
        .client()
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .map_err(|e| QueryError::query("server_version_num", &main_db, &e))?
        .get(0);
    let major = (target as u32 / 10_000).max(manifest.source.server_major.unwrap_or(0));
    let pg_restore = finder.find(Tool::PgRestore, &PgVersion { major, minor: 0, text: major.to_string() })?;

    // Extract (and verify) beside the bundle.
    let dir = req.bundle.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let need: u64 = manifest.members.iter().map(|m| m.size).sum();
    space::ensure_free(dir, need, "extract the bundle for pg_restore")?;
    let work = tempfile::Builder::new()
        .prefix(".qrd-restore-")
        .tempdir_in(dir)
        .map_err(|source| RestoreError::Work { path: req.bundle.clone(), source })?;
    let unpacked = work.path().join("bundle");
    let path = req.bundle.clone();
    let dest = unpacked.clone();
    tokio::task::spawn_blocking(move || bundle::extract(&path, &dest)).await.expect("extraction does not panic")?;
    tracing::info!("{}: verified and unpacked", req.bundle.display());

    // The roles.
    let (created, existing, after_databases) = match &manifest.globals {
        Some(g) => {
            let text = std::fs::read_to_string(unpacked.join(&g.member))
                .map_err(|source| RestoreError::Work { path: unpacked.join(&g.member), source })?;
            roles(session, &Globals::parse(&text)?).await?
        }
        None => (Vec::new(), Vec::new(), Vec::new()),
    };

    // The databases.
    let mut restored = Vec::new();
    for name in &chosen {
        let db = manifest.databases.iter().find(|d| &d.name == name).expect("chosen from the manifest");
        let t0 = Instant::now();
        let create = !existing_dbs.contains(name);
        if create {
            let owner = db.owner.clone().unwrap_or_else(|| req.repo_role.clone());
            let sql = render(
                &CREATE_DATABASE,
                &Vars::new().set("database", name.as_str()).set("role", owner.as_str()),
                &main_db,
            )?;
            session.client().batch_execute(&sql).await.map_err(query_err(&CREATE_DATABASE, &main_db))?;
            tracing::info!("created database {name:?}");
        }
        let child = session.connector().child(name)?;
        let mut cmd = scrubbed_command(&pg_restore.path);
        child.apply(&mut cmd);
        cmd.args(["--no-password", "--exit-on-error"]);
        if db.format == ArchiveFormat::Directory && req.jobs > 1 {
            cmd.arg(format!("--jobs={}", req.jobs));
        }
        cmd.arg("--dbname").arg(format!("dbname={}", conninfo_value(name))).arg(unpacked.join(&db.member));
        tracing::info!("restoring {name:?} (pg_restore {})", pg_restore.version);
        let action = format!("restore database {name:?} (pg_restore)");
        let result = tokio::task::spawn_blocking(move || run(&mut cmd, &action)).await.expect("no panic");
        if let Err(e) = result {
            if create {
                let sql = render(&DROP_DATABASE, &Vars::new().set("database", name.as_str()), &main_db)?;
                if let Err(d) = session.client().batch_execute(&sql).await {
                    tracing::warn!(
                        "could not drop the half-restored database {name:?}: {}",
                        qrd_pg::connect::server_message(&d)
                    );
                }
            }
            return Err(e.into());
        }
        let (tables, rows) = compare_rows(session, db, name).await?;
        restored.push(RestoredDatabase {
            name: name.clone(),
            created: create,
            tables,
            rows,
            seconds: t0.elapsed().as_secs_f64(),
        });
        tracing::info!("restored {name:?}: {tables} tables, {rows} rows, as the manifest counted");
    }
    for sql in &after_databases {
        with_recorders_off(session, std::slice::from_ref(sql)).await?;
    }
    let renamed = match &req.rename {
        Some(rename) => {
            let mut c = session.connector().clone();
            let qsr = c.connect("QSR").await?;
            Some(hostname::apply(&qsr, rename, manifest.site.as_ref()).await?)
        }
        None => None,
    };
    let runbook = renamed.as_ref().map(|r| hostname::runbook(&r.new_host)).unwrap_or_default();

    // The guide's provisioning, as `qrd provision` sees it now.
    let spec = RepoSpec::new(&req.repo_role);
    let inv = Inventory::gather(session, &spec).await?;
    let plan = qrd_pg::provision::plan(&inv, &spec, None, &qrd_pg::provision::Options::default());
    let provisioning_differs: Vec<String> = plan.steps.iter().map(|s| s.summary.clone()).collect();
    if !provisioning_differs.is_empty() {
        tracing::warn!(
            "the restored server differs from the guide's provisioning in {} point(s): run `qrd provision` (it changes only those)",
            provisioning_differs.len()
        );
    }
    Ok(Report {
        bundle: req.bundle.clone(),
        roles_created: created,
        roles_existing: existing,
        databases: restored,
        provisioning_differs,
        renamed,
        runbook,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// `dbname=` value for a conninfo string: quoted as libpq reads it, so any database name is one value.
fn conninfo_value(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn choose(manifest: &Manifest, wanted: &[String]) -> Result<Vec<String>, RestoreError> {
    let held: Vec<String> = manifest.databases.iter().map(|d| d.name.clone()).collect();
    if wanted.is_empty() {
        return Ok(held);
    }
    for w in wanted {
        if !held.contains(w) {
            return Err(RestoreError::NotInBundle { name: w.clone(), held: held.join(", ") });
        }
    }
    Ok(held.into_iter().filter(|h| wanted.contains(h)).collect())
}

/// Creates the missing roles; returns (created, existing, statements that need the databases).
async fn roles(session: &Session, globals: &Globals) -> Result<(Vec<String>, Vec<String>, Vec<String>), RestoreError> {
    let db = session.target().dbname.clone();
    let rows = session.client().query(ROLES.text, &[]).await.map_err(query_err(&ROLES, &db))?;
    let existing: BTreeSet<String> = rows.iter().map(|r| r.get("name")).collect();
    let plan = globals.plan(&existing);
    with_recorders_off(session, &plan.statements).await?;
    if !plan.create.is_empty() {
        tracing::info!(
            "created role(s) {:?} from globals.sql; left {} existing role(s) as they are",
            plan.create,
            plan.existing.len()
        );
    }
    for s in &plan.skipped {
        tracing::warn!("globals.sql: not run (not a role): {s}");
    }
    Ok((plan.create, plan.existing, plan.after_databases))
}

/// Runs `statements` one by one with every recorder of the session switched off (they may carry
/// password verifiers); the error names the statement's first words, never the verifier.
async fn with_recorders_off(session: &Session, statements: &[String]) -> Result<(), RestoreError> {
    let db = session.target().dbname.clone();
    let client = session.client();
    for s in RECORDERS_OFF.render_statements(&Vars::new()).map_err(|e| QueryError::Query {
        sql: RECORDERS_OFF.name,
        database: db.clone(),
        message: e.to_string(),
    })? {
        client.batch_execute(&s).await.map_err(query_err(&RECORDERS_OFF, &db))?;
    }
    let mut failure = None;
    for s in statements {
        if let Err(e) = client.batch_execute(s).await {
            let shown: String = s.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
            failure = Some(RestoreError::Roles {
                statement: format!("{shown} …"),
                message: qrd_pg::connect::server_message(&e),
            });
            break;
        }
    }
    for s in RECORDERS_RESET.render_statements(&Vars::new()).map_err(|e| QueryError::Query {
        sql: RECORDERS_RESET.name,
        database: db.clone(),
        message: e.to_string(),
    })? {
        client.batch_execute(&s).await.map_err(query_err(&RECORDERS_RESET, &db))?;
    }
    failure.map_or(Ok(()), Err)
}

/// Counts, in database `into` (the restored copy of `db`), every table the manifest counted and compares.
pub(crate) async fn compare_rows(
    session: &Session,
    db: &crate::manifest::Database,
    into: &str,
) -> Result<(usize, u64), RestoreError> {
    let Some(counts) = &db.row_counts else { return Ok((0, 0)) };
    let mut c = session.connector().clone();
    let client = c.connect(into).await?;
    let mut mismatches = Vec::new();
    let mut total = 0;
    for t in &counts.tables {
        let sql = render(
            &COUNT_ROWS,
            &Vars::new().set("schema", t.schema.as_str()).set("table", t.table.as_str()),
            &db.name,
        )?;
        let rows = match client.query_one(&sql, &[]).await {
            Ok(r) => r.get::<_, i64>(0).max(0) as u64,
            Err(e) => {
                mismatches.push(format!(
                    "{}.{}.{}: {}",
                    db.name,
                    t.schema,
                    t.table,
                    qrd_pg::connect::server_message(&e)
                ));
                continue;
            }
        };
        total += rows;
        if rows != t.rows {
            mismatches
                .push(format!("{}.{}.{}: {} rows, the manifest says {}", db.name, t.schema, t.table, rows, t.rows));
        }
    }
    if mismatches.is_empty() { Ok((counts.tables.len(), total)) } else { Err(RestoreError::RowCounts { mismatches }) }
}
