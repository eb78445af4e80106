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
//!    at the first error; a database this restore created and could not fill is dropped again. What the
//!    archive leaves out — the database's privileges, settings and connection limit — comes from the
//!    manifest ([`crate::attributes`]), so a restored site has its grants without `qrd provision`.
//! 4. Proof: every table's rows counted and compared with the manifest, and the guide's provisioning
//!    checked (`qrd provision` would fix what differs: a bundle of an older qrd records no grants).
//!
//! `--clean` replaces databases that hold data, crash-safely: each is restored into a scratch database
//! (`NAME~qrd-new-<time>`), proven there (row counts, the new host name applied), given the privileges and
//! settings of the database it replaces, and only then swapped in: one transaction renames every replaced
//! database to `NAME~qrd-old-<time>` and every scratch database to its name. Until that commit the originals
//! are untouched and in service; a failure (or `kill -9`) before it leaves at most a scratch database,
//! which the next `--clean` drops; after it the old databases are kept until `--drop-old` (or a DBA) drops
//! them. The swap needs the replaced databases free of sessions: qrd refuses while there are some, unless
//! `--yes` lets it end them.

use qrd_exit::{ExitStatus, UserError};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use time::OffsetDateTime;

use qrd_pg::connect::ConnectError;
use qrd_pg::inventory::{Inventory, QueryError};
use qrd_pg::template::{Template, Vars};
use qrd_pg::{RepoSpec, Session, sql_template};
use qrd_pgbin::{FindError, Finder, PgVersion, Tool, ToolError};

use crate::archive::{self, Load, Ownership};
use crate::attributes::{self, AttributeError};
use crate::bundle::{self, ReadError};
use crate::globals::{Globals, GlobalsError};
use crate::hostname::{self, Rename, RenameError, Renamed};
use crate::manifest::Manifest;
use crate::progress::{Shared, Watch};
use crate::space::{self, SpaceError};

const ROLES: Template = sql_template!("restore/roles.sql");
const DATABASE_EXISTS: Template = sql_template!("restore/database_exists.sql");
const USER_TABLES: Template = sql_template!("restore/user_tables.sql");
const DROP_DATABASE: Template = sql_template!("restore/drop_database.sql");
const CREATE_DATABASE: Template = sql_template!("provision/create_database.sql");
const COUNT_ROWS: Template = sql_template!("backup/count_rows.sql");
const SESSIONS: Template = sql_template!("restore/sessions.sql");
const TERMINATE: Template = sql_template!("restore/terminate.sql");
const RENAME_DATABASE: Template = sql_template!("restore/rename_database.sql");
const LEFTOVERS: Template = sql_template!("restore/leftovers.sql");
const DROP_SCRATCH: Template = sql_template!("restore/drop_scratch.sql");

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
    /// `--clean`: replace databases that hold data (see the module documentation).
    pub clean: Option<Clean>,
    /// The repository role's password, for a bundle whose roles hold no verifiers (see
    /// [`crate::as_admin::needs_repo_password`]).
    pub repo_password: Option<qrd_pg::Secret>,
}

/// How `--clean` replaces databases.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clean {
    /// `--drop-old`: drop the replaced databases once the swap committed (default: keep them).
    pub drop_old: bool,
    /// `--yes`: end the other sessions of the replaced databases for the swap (default: refuse).
    pub terminate_sessions: bool,
}

/// What a restore will do to one database.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Action {
    /// Missing on the target: created, then filled.
    Create,
    /// Exists without tables: filled.
    FillEmpty,
    /// Holds data (`--clean`): restored into `scratch`, then swapped in; the old one becomes `kept_as`.
    Replace { tables: i64, sessions: i64, clients: String, scratch: String, kept_as: String },
}

/// The restore's plan: the target as it is, and what happens to each database.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Plan {
    pub databases: Vec<(String, Action)>,
    /// Scratch databases of interrupted `--clean` restores, dropped first.
    pub leftovers: Vec<String>,
}

/// The result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub bundle: PathBuf,
    pub roles_created: Vec<String>,
    pub roles_existing: Vec<String>,
    pub databases: Vec<RestoredDatabase>,
    /// What `qrd provision` would still change on the restored server (the source's own differences from
    /// the guide, or a bundle of an older qrd, which records no database grants); empty when it matches.
    pub provisioning_differs: Vec<String>,
    /// The repository role's password: kept, from the bundle, set from the one given, or not set.
    pub repo_password: crate::as_admin::RepoPassword,
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
    /// `--clean`: the name the replaced database is kept under (`None` when it was dropped, `--drop-old`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced: Option<Replaced>,
    pub tables: usize,
    pub rows: u64,
    pub seconds: f64,
}

/// A database `--clean` replaced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Replaced {
    /// Where the previous database is now (it is kept unless `--drop-old`).
    pub kept_as: Option<String>,
    pub dropped: bool,
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
    #[error(transparent)]
    Attributes(#[from] AttributeError),
    #[error("the bundle holds no database {name:?} (it holds {held})")]
    NotInBundle { name: String, held: String },
    #[error("database {name:?} already holds {tables} tables; nothing was restored")]
    NotEmpty { name: String, tables: i64 },
    #[error("{sessions} other session(s) are connected to {name:?} ({clients}); nothing was replaced")]
    SessionsOpen { name: String, sessions: i64, clients: String },
    #[error("this session is connected to {name:?}, which --clean would replace")]
    ConnectedToReplaced { name: String },
    #[error("database name {name:?} with the suffix {suffix:?} is longer than PostgreSQL's 63 bytes")]
    NameTooLong { name: String, suffix: String },
    #[error(
        "the swap of the restored databases failed: {message}; the original databases are unchanged and the restored copies were dropped"
    )]
    Swap { message: String },
    #[error("creating role(s) from globals.sql failed at `{statement}`: {message}")]
    Roles { statement: String, message: String },
    #[error(
        "failed to grant role {role:?} to {user:?}, which is no superuser and must act as the roles that own what it restores: {message}"
    )]
    ActAs { role: String, user: String, message: String },
    #[error("after the restore, {} table(s) do not hold the rows the manifest counted:{}", mismatches.len(), mismatches.iter().map(|m| format!("\n  {m}")).collect::<String>())]
    RowCounts { mismatches: Vec<String> },
    #[error("failed to make a work directory beside {}: {source}", path.display())]
    Work { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Rename(#[from] RenameError),
    #[error("--new-hostname changes QSR, which this restore does not include")]
    RenameWithoutQsr,
    #[error("pg_amcheck found problems in the restored {database:?}:{}", findings.iter().map(|f| format!("\n  {f}")).collect::<String>())]
    Amcheck { database: String, findings: Vec<String> },
    #[error("stopped by {signal}; the databases this run made were dropped")]
    Interrupted { signal: &'static str },
}

impl UserError for RestoreError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            RestoreError::Read(e) => e.exit_status(),
            RestoreError::Space(e) => e.exit_status(),
            RestoreError::Connect(e) => e.exit_status(),
            RestoreError::Query(e) => e.exit_status(),
            RestoreError::Tools(e) => e.exit_status(),
            RestoreError::Attributes(e) => e.exit_status(),
            RestoreError::Rename(e) => e.exit_status(),
            // Refused before anything changed.
            RestoreError::NotInBundle { .. }
            | RestoreError::NotEmpty { .. }
            | RestoreError::SessionsOpen { .. }
            | RestoreError::ConnectedToReplaced { .. }
            | RestoreError::NameTooLong { .. }
            | RestoreError::RenameWithoutQsr => ExitStatus::Refused,
            RestoreError::Tool(_)
            | RestoreError::Globals(_)
            | RestoreError::Swap { .. }
            | RestoreError::Roles { .. }
            | RestoreError::ActAs { .. }
            | RestoreError::RowCounts { .. }
            | RestoreError::Work { .. }
            | RestoreError::Amcheck { .. }
            | RestoreError::Interrupted { .. } => ExitStatus::Failed,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(self.hint_text())
    }
}

impl RestoreError {
    fn hint_text(&self) -> String {
        match self {
            RestoreError::Read(e) => e.hint().unwrap_or_default(),
            RestoreError::Space(e) => e.hint().unwrap_or_default(),
            RestoreError::Connect(e) => e.hint().unwrap_or_default(),
            RestoreError::Query(_) => "run again with -v for the statements qrd runs; restore as a superuser".into(),
            RestoreError::Tools(e) => e.hint().unwrap_or_default(),
            RestoreError::Tool(e @ (ToolError::Interrupted { .. } | ToolError::Timeout { .. })) => format!(
                "{}; a database this restore created was dropped again",
                e.hint().unwrap_or_default()
            ),
            RestoreError::Tool(_) => {
                "pg_restore's words are above; a database this restore created was dropped again".into()
            }
            RestoreError::Globals(_) => "globals.sql is not what pg_dumpall writes: verify the bundle".into(),
            RestoreError::Attributes(e) => e.hint().unwrap_or_default(),
            RestoreError::NotInBundle { .. } => "`qrd backup list` shows what each bundle holds".into(),
            RestoreError::NotEmpty { .. } => {
                "add --clean to replace them (crash-safe: the old ones are kept until --drop-old), or restore onto a server without them".into()
            }
            RestoreError::SessionsOpen { .. } => {
                "stop the Qlik services on every node first, or add --yes to end those sessions for the swap".into()
            }
            RestoreError::ConnectedToReplaced { .. } => "connect to another database, e.g. -d postgres".into(),
            RestoreError::NameTooLong { .. } => "restore that database onto a server without it".into(),
            RestoreError::Swap { .. } => "run the restore again once nothing holds those databases".into(),
            RestoreError::Roles { .. } => "the role statements are in globals.sql inside the bundle".into(),
            RestoreError::ActAs { role, user, .. } => format!(
                "a role that may grant it (a superuser; on PostgreSQL 16 also one holding ADMIN OPTION on it; on Amazon \
                 RDS the master user) runs GRANT {} TO {}, then run the restore again (the roles it made are kept)",
                qrd_pg::quote::ident(role).unwrap_or_default(),
                qrd_pg::quote::ident(user).unwrap_or_default()
            ),
            RestoreError::RowCounts { .. } => {
                "the restored data differs from the backup: do not put this server in service; verify the bundle".into()
            }
            RestoreError::Work { .. } => "check the directory's permissions and free space".into(),
            RestoreError::Rename(e) => e.hint().unwrap_or_default(),
            RestoreError::RenameWithoutQsr => "add --database QSR, or drop --new-hostname".into(),
            RestoreError::Amcheck { .. } => {
                "the archive restores into a damaged database: do not rely on this bundle; check the source server with pg_amcheck".into()
            }
            RestoreError::Interrupted { .. } => "run it again when it can finish".into(),
        }
    }
}

/// A failed query of template `t` on database `db`, as the error names it.
pub(crate) fn query_err(t: &Template, db: &str) -> impl Fn(tokio_postgres::Error) -> QueryError {
    let (name, db) = (t.name, db.to_owned());
    move |e| QueryError::query(name, &db, &e)
}

pub(crate) fn render(t: &Template, vars: &Vars, db: &str) -> Result<String, QueryError> {
    t.render_statement(vars).map_err(|e| QueryError::Query {
        sql: t.name,
        database: db.to_owned(),
        message: e.to_string(),
    })
}

/// What a restore of `req` would do on the server `session` reaches; refuses (before anything is written)
/// databases that hold data without `--clean`, and with it, replaced databases that have other sessions
/// unless `--yes`.
pub async fn plan(session: &Session, req: &Request) -> Result<Plan, RestoreError> {
    let manifest = bundle::read_manifest(&req.bundle)?;
    let chosen = choose(&manifest, &req.databases)?;
    plan_for(session, req, &chosen).await
}

async fn plan_for(session: &Session, req: &Request, chosen: &[String]) -> Result<Plan, RestoreError> {
    let main_db = session.target().dbname.clone();
    let stamp = OffsetDateTime::now_utc().format(STAMP).expect("a UTC time formats");
    let mut databases = Vec::new();
    let mut leftovers = Vec::new();
    for name in chosen {
        let present: bool = session
            .client()
            .query_one(DATABASE_EXISTS.text, &[name])
            .await
            .map_err(query_err(&DATABASE_EXISTS, &main_db))?
            .get("present");
        if !present {
            databases.push((name.clone(), Action::Create));
            continue;
        }
        let mut c = session.connector().clone();
        let client = c.connect(name).await?;
        let tables: i64 = client.query_one(USER_TABLES.text, &[]).await.map_err(query_err(&USER_TABLES, name))?.get(0);
        drop(client);
        if tables == 0 {
            databases.push((name.clone(), Action::FillEmpty));
            continue;
        }
        if req.clean.is_none() {
            return Err(RestoreError::NotEmpty { name: name.clone(), tables });
        }
        if *name == main_db {
            return Err(RestoreError::ConnectedToReplaced { name: name.clone() });
        }
        let (scratch, kept_as) = (format!("{name}~qrd-new-{stamp}"), format!("{name}~qrd-old-{stamp}"));
        if kept_as.len() > 63 {
            return Err(RestoreError::NameTooLong { name: name.clone(), suffix: format!("~qrd-old-{stamp}") });
        }
        let rows = session.client().query(LEFTOVERS.text, &[name]).await.map_err(query_err(&LEFTOVERS, &main_db))?;
        leftovers.extend(rows.iter().map(|r| r.get::<_, String>("name")));
        databases
            .push((name.clone(), Action::Replace { tables, sessions: 0, clients: String::new(), scratch, kept_as }));
    }
    let replaced: Vec<String> = replaced_names(&databases);
    if !replaced.is_empty() {
        // qrd's own connections that counted the tables above are still leaving for a moment: sessions count
        // only when they stay.
        let mut open = sessions_on(session, &replaced).await?;
        for _ in 0..20 {
            if open.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            open = sessions_on(session, &replaced).await?;
        }
        for (name, sessions, clients) in open {
            if let Some((_, Action::Replace { sessions: s, clients: c, .. })) =
                databases.iter_mut().find(|(n, _)| *n == name)
            {
                (*s, *c) = (sessions, clients.clone());
            }
            if !req.clean.is_some_and(|c| c.terminate_sessions) {
                return Err(RestoreError::SessionsOpen { name, sessions, clients });
            }
        }
    }
    Ok(Plan { databases, leftovers })
}

const STAMP: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");

fn replaced_names(databases: &[(String, Action)]) -> Vec<String> {
    databases.iter().filter(|(_, a)| matches!(a, Action::Replace { .. })).map(|(n, _)| n.clone()).collect()
}

/// Other sessions per database: (database, sessions, their clients).
async fn sessions_on(session: &Session, names: &[String]) -> Result<Vec<(String, i64, String)>, RestoreError> {
    let db = session.target().dbname.clone();
    let rows = session.client().query(SESSIONS.text, &[&names]).await.map_err(query_err(&SESSIONS, &db))?;
    Ok(rows.iter().map(|r| (r.get("database"), r.get("sessions"), r.get("clients"))).collect())
}

/// The target's `server_version_num` and a pg_restore of its major and the bundle source's, or newer.
pub(crate) async fn pg_restore_for(
    session: &Session,
    finder: &Finder,
    manifest: &Manifest,
) -> Result<(i32, qrd_pgbin::FoundTool), RestoreError> {
    let target: i32 = session
        .client()
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .map_err(|e| QueryError::query("server_version_num", &session.target().dbname, &e))?
        .get(0);
    let major = (target as u32 / 10_000).max(manifest.archive_major().unwrap_or(0));
    let pg_restore = finder.find(Tool::PgRestore, &PgVersion { major, minor: 0, text: major.to_string() })?;
    Ok((target, pg_restore))
}

/// Verifies and unpacks `bundle` into a work directory beside it (`prefix…/bundle`), after checking there
/// is room (`purpose` names why in the refusal); the directory goes when the returned handle is dropped.
pub(crate) async fn unpack(
    bundle: &Path,
    manifest: &Manifest,
    prefix: &str,
    purpose: &'static str,
    progress: &Shared,
) -> Result<(tempfile::TempDir, PathBuf), RestoreError> {
    let dir = bundle.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let need: u64 = manifest.members.iter().map(|m| m.size).sum();
    space::ensure_free(dir, need, purpose)?;
    let work = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(dir)
        .map_err(|source| RestoreError::Work { path: bundle.to_owned(), source })?;
    let unpacked = work.path().join("bundle");
    let (from, to) = (bundle.to_owned(), unpacked.clone());
    let watch = Watch::start(progress, "verifying and unpacking the bundle", Some(need), work.path().to_owned());
    // Decompression and checksums are CPU work: on a thread of its own, off the runtime's.
    let extracted = tokio::task::spawn_blocking(move || bundle::extract(&from, &to)).await.expect("no panic");
    drop(watch);
    extracted?;
    Ok((work, unpacked))
}

/// Restores `req.bundle` onto the server `session` reaches (see the module documentation), reporting the
/// long steps to `progress`.
pub async fn restore(
    session: &Session,
    finder: &Finder,
    req: &Request,
    progress: &Shared,
) -> Result<Report, RestoreError> {
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

    // Refuse before anything is written: the databases must be missing or empty, or --clean replaces them.
    let plan = plan_for(session, req, &chosen).await?;
    let (target, pg_restore) = pg_restore_for(session, finder, &manifest).await?;
    for leftover in &plan.leftovers {
        tracing::info!("dropping {leftover:?}, the scratch database of an interrupted --clean restore");
        drop_database(session, target, leftover).await;
    }

    // Extract (and verify) beside the bundle.
    let (_work, unpacked) =
        unpack(&req.bundle, &manifest, ".qrd-restore-", "extract the bundle for pg_restore", progress).await?;
    tracing::info!("{}: verified and unpacked", req.bundle.display());

    // The roles.
    let caller = crate::as_admin::caller(session).await?;
    let (created, existing, after_databases) = match &manifest.globals {
        Some(g) => {
            let text = std::fs::read_to_string(unpacked.join(&g.member))
                .map_err(|source| RestoreError::Work { path: unpacked.join(&g.member), source })?;
            roles(session, &caller, &Globals::parse(&text)?).await?
        }
        None => (Vec::new(), Vec::new(), Vec::new()),
    };
    // An admin that is no superuser acts as the roles that own what it restores (see crate::as_admin).
    let owners: Vec<String> = created
        .iter()
        .cloned()
        .chain(manifest.databases.iter().filter(|d| chosen.contains(&d.name)).filter_map(|d| d.owner.clone()))
        .collect();
    crate::as_admin::act_as(session, &caller, &owners).await?;
    let repo_password = crate::as_admin::repo_password(
        session,
        &caller,
        &manifest,
        &created,
        &existing,
        &req.repo_role,
        req.repo_password.as_ref(),
    )
    .await?;

    // The databases: the scratch ones of --clean, and a database created and not yet filled, are dropped
    // again on any failure (or Ctrl-C/SIGTERM) before the swap.
    let mut scratch_made: Vec<String> = Vec::new();
    let mut unfinished: Option<String> = None;
    let filled = async {
        let mut restored = Vec::new();
        for (name, action) in &plan.databases {
            let db = manifest.databases.iter().find(|d| &d.name == name).expect("chosen from the manifest");
            let t0 = Instant::now();
            let into = match action {
                Action::Replace { scratch, .. } => scratch.clone(),
                _ => name.clone(),
            };
            let create = !matches!(action, Action::FillEmpty);
            if create {
                let owner = db.owner.clone().unwrap_or_else(|| req.repo_role.clone());
                let sql = render(
                    &CREATE_DATABASE,
                    &Vars::new().set("database", into.as_str()).set("role", owner.as_str()),
                    &main_db,
                )?;
                // Listed before it exists: an interruption during CREATE DATABASE still drops it.
                if matches!(action, Action::Replace { .. }) {
                    scratch_made.push(into.clone());
                } else {
                    unfinished = Some(into.clone());
                }
                session.client().batch_execute(&sql).await.map_err(query_err(&CREATE_DATABASE, &main_db))?;
                if matches!(action, Action::Replace { .. }) {
                    tracing::info!("created {into:?} to restore {name:?} into (the original stays in service)");
                } else {
                    tracing::info!("created database {name:?}");
                }
                crate::as_admin::prepare_database(session, &caller, &into, &owner).await?;
            }
            let load = Load { pg_restore: &pg_restore, jobs: req.jobs, ownership: Ownership::Keep };
            archive::restore_into(session, load, db, &unpacked.join(&db.member), &into, progress).await?;
            unfinished = None;
            let (tables, rows) = compare_rows(session, db, &into).await?;
            give_attributes(session, db, action, &into).await?;
            restored.push(RestoredDatabase {
                name: name.clone(),
                created: create,
                replaced: None,
                tables,
                rows,
                seconds: t0.elapsed().as_secs_f64(),
            });
            tracing::info!("restored {name:?}: {tables} tables, {rows} rows, as the manifest counted");
        }
        // The new host name goes into QSR before any swap: the swap is the last change.
        let renamed = match &req.rename {
            Some(rename) => {
                let qsr = plan
                    .databases
                    .iter()
                    .find_map(|(n, a)| match a {
                        Action::Replace { scratch, .. } if n == "QSR" => Some(scratch.clone()),
                        _ => None,
                    })
                    .unwrap_or_else(|| "QSR".to_owned());
                let mut c = session.connector().clone();
                let client = c.connect(&qsr).await?;
                Some(hostname::apply(&client, rename, manifest.site.as_ref()).await?)
            }
            None => None,
        };
        swap(session, &plan, req.clean.unwrap_or_default()).await?;
        Ok::<_, RestoreError>((restored, renamed))
    };
    let filled = tokio::select! {
        done = filled => done,
        signal = qrd_pgbin::interrupt::interrupted() => Err(RestoreError::Interrupted { signal: signal.as_str() }),
    };
    let (mut restored, renamed) = match filled {
        Ok(done) => done,
        Err(e) => {
            // An interruption inside the swap's transaction leaves it open: end it first (the originals
            // stay as they were), so the drops are not refused inside a transaction block.
            let _ = session.client().batch_execute("ROLLBACK").await;
            for made in scratch_made.iter().chain(unfinished.iter()) {
                drop_database(session, target, made).await;
            }
            return Err(e);
        }
    };
    for (name, action) in &plan.databases {
        if let Action::Replace { kept_as, .. } = action {
            let dropped = req.clean.is_some_and(|c| c.drop_old) && drop_database(session, target, kept_as).await;
            if !dropped {
                tracing::info!("the previous {name:?} is kept as {kept_as:?} (DROP DATABASE it once the site runs)");
            }
            if let Some(r) = restored.iter_mut().find(|r| &r.name == name) {
                r.replaced = Some(Replaced { kept_as: (!dropped).then(|| kept_as.clone()), dropped });
            }
        }
    }
    crate::as_admin::run_statements(session, &caller, &after_databases).await?;
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
        repo_password,
        renamed,
        runbook,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// `--clean`'s swap: one transaction renames every replaced database aside and every scratch database into
/// its place. A session that is still leaving (ours included) makes PostgreSQL refuse the rename for a
/// moment: a few tries; with `--yes` other sessions are ended before each try.
async fn swap(session: &Session, plan: &Plan, clean: Clean) -> Result<(), RestoreError> {
    let replaced = replaced_names(&plan.databases);
    if replaced.is_empty() {
        return Ok(());
    }
    let db = session.target().dbname.clone();
    let mut statements = vec!["BEGIN".to_owned()];
    for (name, action) in &plan.databases {
        if let Action::Replace { scratch, kept_as, .. } = action {
            for (from, to) in [(name, kept_as), (scratch, name)] {
                let vars = Vars::new().set("from", from.as_str()).set("to", to.as_str());
                statements.push(render(&RENAME_DATABASE, &vars, &db)?);
            }
        }
    }
    statements.push("COMMIT".to_owned());
    let mut tries = 0;
    loop {
        if clean.terminate_sessions {
            let ended: i64 = session
                .client()
                .query_one(TERMINATE.text, &[&replaced])
                .await
                .map_err(query_err(&TERMINATE, &db))?
                .get(0);
            if ended > 0 {
                tracing::info!("ended {ended} session(s) of {} for the swap (--yes)", replaced.join(", "));
            }
        }
        let mut result = Ok(());
        for s in &statements {
            if let Err(e) = session.client().batch_execute(s).await {
                result = Err(e);
                break;
            }
        }
        match result {
            Ok(()) => {
                tracing::info!("swapped in the restored {} in one transaction", replaced.join(", "));
                return Ok(());
            }
            Err(e) => {
                let _ = session.client().batch_execute("ROLLBACK").await;
                let in_use = e.code() == Some(&tokio_postgres::error::SqlState::OBJECT_IN_USE);
                if in_use && tries < 40 {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                    continue;
                }
                if in_use
                    && !clean.terminate_sessions
                    && let Some((name, sessions, clients)) = sessions_on(session, &replaced).await?.into_iter().next()
                {
                    return Err(RestoreError::SessionsOpen { name, sessions, clients });
                }
                return Err(RestoreError::Swap { message: qrd_pg::connect::server_message(&e) });
            }
        }
    }
}

/// Gives the database `into`, just filled, what its archive leaves out: the privileges, settings and
/// connection limit of the database it replaces (`--clean`: the site's as they are now), else the
/// bundle's. A bundle of a qrd that did not record them leaves `into` as it was created, and says so.
async fn give_attributes(
    session: &Session,
    db: &crate::manifest::Database,
    action: &Action,
    into: &str,
) -> Result<(), RestoreError> {
    let wanted = match action {
        Action::Replace { .. } => {
            let main_db = session.target().dbname.clone();
            attributes::read(session.client(), &db.name, &main_db).await?.map(|a| (a.attributes, a.owner))
        }
        Action::Create | Action::FillEmpty => {
            let owner = db.owner.clone().unwrap_or_default();
            db.attributes.clone().map(|a| (a, owner))
        }
    };
    match wanted {
        Some((want, owner)) => {
            attributes::apply(session, into, &want, &owner).await?;
        }
        None => tracing::warn!(
            "the bundle records no privileges or settings of {:?} (an older qrd wrote it): the database keeps \
             those it was created with; `qrd provision` gives it the guide's grants",
            db.name
        ),
    }
    Ok(())
}

/// Drops a database this restore made (or the old one, `--drop-old`); a session still leaving holds it a
/// moment (FORCE from 13, a few tries before). Says so and returns false when it could not.
pub(crate) async fn drop_database(session: &Session, server_version_num: i32, name: &str) -> bool {
    let main_db = session.target().dbname.clone();
    let t = if server_version_num >= 130_000 { &DROP_SCRATCH } else { &DROP_DATABASE };
    let Ok(sql) = render(t, &Vars::new().set("database", name), &main_db) else { return false };
    let mut tries = 0;
    loop {
        match session.client().batch_execute(&sql).await {
            Ok(()) => return true,
            Err(_) if tries < 20 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            Err(e) => {
                tracing::warn!("could not drop database {name:?}: {}", qrd_pg::connect::server_message(&e));
                return false;
            }
        }
    }
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

/// Creates the missing roles (as the caller may: see [`crate::as_admin`]); returns (created, existing,
/// statements that need the databases).
async fn roles(
    session: &Session,
    caller: &crate::as_admin::Caller,
    globals: &Globals,
) -> Result<(Vec<String>, Vec<String>, Vec<String>), RestoreError> {
    let db = session.target().dbname.clone();
    let rows = session.client().query(ROLES.text, &[]).await.map_err(query_err(&ROLES, &db))?;
    let existing: BTreeSet<String> = rows.iter().map(|r| r.get("name")).collect();
    let plan = crate::as_admin::roles_plan(caller, globals, &existing);
    crate::as_admin::run_statements(session, caller, &plan.statements).await?;
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
