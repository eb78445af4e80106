//! `qrd backup`: the roles and every Qlik database of one server into one bundle, safely for a nightly job.
//!
//! 1. Plan: the databases (the four, `QLogs` where an older site still has it, any `--database`), their
//!    sizes, the tools of the server's major or newer, and the disk space the uncompressed dumps need
//!    beside the bundle, refused before anything runs when it is not there. `--dry-run` stops here.
//! 2. Lock the directory (a second backup into it fails at once), run the `--before` hook (a failure
//!    aborts), dump the roles (`pg_dumpall --globals-only`), then each database in a snapshot of its own:
//!    qrd opens a read-only repeatable-read transaction, exports its snapshot, counts every table and reads
//!    the site from QSR in it, and `pg_dump --snapshot` dumps exactly that. The `--after` hook runs after
//!    the last dump, whether the dumps succeeded or not.
//! 3. Write the bundle ([`crate::bundle::Writer`]): under a temporary name, compressed with multithreaded
//!    zstd, flushed, renamed only when complete. The staged dumps are removed whatever happens.

use qrd_exit::{ExitStatus, UserError};
use std::path::{Path, PathBuf};
use std::time::Instant;

use qrd_pg::Session;
use qrd_pg::connect::ConnectError;
use qrd_pg::inventory::QueryError;
use qrd_pg::sql_template;
use qrd_pg::template::{Template, Vars};
use qrd_pgbin::{FindError, Finder, PgVersion, ToolError};
use time::OffsetDateTime;

use crate::bundle::{self, Writer, WriterOptions, Written};
use crate::dump::{self, Tools};
use crate::hook::{self, Hook, HookError};
use crate::lock::{DirLock, LockError};
use crate::manifest::{
    self, ArchiveFormat, Database, HookStage, Manifest, Node, RowCounts, SharedPersistence, Site, Source, TableRows,
};
use crate::progress::{Shared, Watch};
use crate::restore::query_err;
use crate::space::{self, SpaceError};

const DATABASES: Template = sql_template!("backup/databases.sql");
const SERVER: Template = sql_template!("backup/server.sql");
const SYSTEM_IDENTIFIER: Template = sql_template!("backup/system_identifier.sql");
const EXPORT_SNAPSHOT: Template = sql_template!("backup/export_snapshot.sql");
const TABLES: Template = sql_template!("backup/tables.sql");
const COUNT_ROWS: Template = sql_template!("backup/count_rows.sql");
const TABLE_EXISTS: Template = sql_template!("backup/table_exists.sql");
const SITE_ROWS: Template = sql_template!("backup/site_rows.sql");

/// The fifth database of older sites (the old centralized logging), backed up when present.
pub const QLOGS: &str = "QLogs";

/// What to back up and how.
#[derive(Debug, Clone)]
pub struct Request {
    pub dir: PathBuf,
    /// The bundle's name (without `.tar.zst`); default `qrd-backup-<UTC time>`.
    pub name: Option<String>,
    /// Databases beyond the four Qlik ones (and QLogs, taken when present).
    pub extra_databases: Vec<String>,
    pub format: ArchiveFormat,
    /// pg_dump's parallel workers for directory archives.
    pub jobs: u32,
    pub compression: WriterOptions,
    pub before: Option<Hook>,
    pub after: Option<Hook>,
    /// `--from-data-dir`: the data directory the session's private server runs a copy of (for the manifest).
    pub from_data_dir: Option<PathBuf>,
}

/// One database to dump.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlannedDatabase {
    pub name: String,
    pub owner: String,
    pub encoding: String,
    pub bytes: u64,
    #[serde(skip)]
    acts_as_owner: bool,
}

/// What a backup would do (`--dry-run` prints it).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Plan {
    pub dir: PathBuf,
    pub name: String,
    pub server_version: String,
    pub databases: Vec<PlannedDatabase>,
    /// Disk space the uncompressed dumps need in the backup directory while the bundle is written.
    pub staging_bytes: u64,
    pub free_bytes: u64,
    pub pg_dump: PathBuf,
    pub pg_dumpall: PathBuf,
    /// The roles are dumped without their password verifiers: this session may not read `pg_authid` (a
    /// managed server's admin).
    pub no_role_passwords: bool,
    /// `--from-data-dir`: the data directory a private server runs a copy of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_data_dir: Option<PathBuf>,
    #[serde(skip)]
    tools: Tools,
    #[serde(skip)]
    version: PgVersion,
    #[serde(skip)]
    created: OffsetDateTime,
}

/// A finished backup.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub bundle: PathBuf,
    /// The bundle file's size.
    pub bytes: u64,
    /// What it holds before compression.
    pub content_bytes: u64,
    pub databases: Vec<DumpedDatabase>,
    /// The roles were dumped without their password verifiers (see [`Plan::no_role_passwords`]).
    pub no_role_passwords: bool,
    pub seconds: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct DumpedDatabase {
    pub name: String,
    pub tables: usize,
    pub rows: u64,
    pub seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("database {name:?} does not exist on this server")]
    NoDatabase { name: String, qlik: bool },
    #[error("database {name:?} cannot be a bundle member: {reason}")]
    BadName { name: String, reason: &'static str },
    #[error("{user:?} is no superuser and does not have the privileges of {owner:?}, which owns database {database:?}")]
    NotOwner { database: String, owner: String, user: String },
    #[error(transparent)]
    Tools(#[from] FindError),
    #[error(transparent)]
    Space(#[from] SpaceError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error(transparent)]
    Bundle(#[from] bundle::WriteError),
    #[error("failed to {what} {}: {source}", path.display())]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
}

impl UserError for BackupError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            BackupError::Connect(e) => e.exit_status(),
            BackupError::Query(e) => e.exit_status(),
            BackupError::Tools(e) => e.exit_status(),
            BackupError::Space(e) => e.exit_status(),
            BackupError::Lock(e) => e.exit_status(),
            BackupError::Bundle(e) => e.exit_status(),
            // Refused before anything ran.
            BackupError::NoDatabase { .. } | BackupError::BadName { .. } | BackupError::NotOwner { .. } => {
                ExitStatus::Refused
            }
            BackupError::Hook(_) | BackupError::Tool(_) | BackupError::Io { .. } => ExitStatus::Failed,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(self.hint_text())
    }
}

impl BackupError {
    fn hint_text(&self) -> String {
        match self {
            BackupError::Connect(e) => e.hint().unwrap_or_default(),
            BackupError::Query(_) => "run again with -v for the statements qrd runs; back up as a superuser, or as an \
                                      admin the repository role is granted to (qrd provision grants it)"
                .into(),
            BackupError::NoDatabase { qlik: true, .. } => {
                "is this the Qlik repository server? `qrd check` lists the Qlik databases it finds".into()
            }
            BackupError::NoDatabase { qlik: false, .. } => {
                "check the --database name (names are case-sensitive)".into()
            }
            BackupError::BadName { .. } => "back that database up with pg_dump by hand".into(),
            BackupError::NotOwner { owner, user, .. } => format!(
                "back up as a superuser, or grant the owner to this admin: `qrd provision` does it for the repository \
                 role, else GRANT {} TO {}",
                qrd_pg::quote::ident(owner).unwrap_or_default(),
                qrd_pg::quote::ident(user).unwrap_or_default()
            ),
            BackupError::Tools(e) => e.hint().unwrap_or_default(),
            BackupError::Space(e) => e.hint().unwrap_or_default(),
            BackupError::Lock(e) => e.hint().unwrap_or_default(),
            BackupError::Hook(_) => "fix the hook command (it runs with /bin/sh -c) or its --hook-timeout".into(),
            BackupError::Tool(e @ (ToolError::Interrupted { .. } | ToolError::Timeout { .. })) => {
                format!("{}; earlier bundles in the directory are untouched", e.hint().unwrap_or_default())
            }
            BackupError::Tool(_) => {
                "the tool's own words are above; earlier bundles in the directory are untouched".into()
            }
            BackupError::Bundle(e) => e.hint().unwrap_or_default(),
            BackupError::Io { .. } => "check the backup directory's permissions and free space".into(),
        }
    }
}

/// Plans the backup of the server `session` reaches (see the module documentation).
pub async fn plan(session: &Session, finder: &Finder, req: &Request) -> Result<Plan, BackupError> {
    let db = &session.target().dbname;
    let row = session.client().query_one(SERVER.text, &[]).await.map_err(query_err(&SERVER, db))?;
    let server_version: String = row.get("version");
    let version = PgVersion::from_version_num(row.get::<_, i32>("version_num") as u32);
    let no_role_passwords = !row.get::<_, bool>("reads_authid");
    if no_role_passwords {
        tracing::warn!(
            "{:?} may not read pg_authid (it is no superuser): the roles are dumped without their passwords; a \
             restore that creates the repository role asks for its password",
            session.target().user
        );
    }
    let rows = session.client().query(DATABASES.text, &[]).await.map_err(query_err(&DATABASES, db))?;
    let present: Vec<PlannedDatabase> = rows
        .iter()
        .map(|r| PlannedDatabase {
            name: r.get("name"),
            owner: r.get("owner"),
            encoding: r.get("encoding"),
            bytes: r.get::<_, i64>("bytes").max(0) as u64,
            acts_as_owner: r.get("acts_as_owner"),
        })
        .collect();
    let mut wanted: Vec<(String, bool)> = qrd_pg::spec::QLIK_DATABASES.iter().map(|d| (d.to_string(), true)).collect();
    if present.iter().any(|d| d.name == QLOGS) {
        wanted.push((QLOGS.to_owned(), true));
    }
    for d in &req.extra_databases {
        if !wanted.iter().any(|(w, _)| w == d) {
            wanted.push((d.clone(), false));
        }
    }
    let mut databases = Vec::new();
    for (name, qlik) in wanted {
        let found =
            present.iter().find(|d| d.name == name).ok_or(BackupError::NoDatabase { name: name.clone(), qlik })?;
        if let Some(reason) = manifest::member_path_problem(&name) {
            return Err(BackupError::BadName { name, reason });
        }
        // An admin that is no superuser reads the tables through their owner (pg_dump would stop at the
        // first one with "permission denied").
        if !found.acts_as_owner {
            return Err(BackupError::NotOwner {
                database: name,
                owner: found.owner.clone(),
                user: session.target().user.clone(),
            });
        }
        databases.push(found.clone());
    }
    let tools = Tools::find(finder, &version)?;
    let created = OffsetDateTime::now_utc();
    let name = req.name.clone().unwrap_or_else(|| bundle::default_name(created));
    // pg_dump's uncompressed output is at most about the data's size on disk (indexes are rebuilt, not
    // dumped), staged beside the bundle until it is compressed.
    let staging_bytes = databases.iter().map(|d| d.bytes).sum();
    let free_bytes = space::free_space(&req.dir)?;
    Ok(Plan {
        dir: req.dir.clone(),
        name,
        server_version,
        databases,
        staging_bytes,
        free_bytes,
        pg_dump: tools.pg_dump.path.clone(),
        pg_dumpall: tools.pg_dumpall.path.clone(),
        no_role_passwords,
        from_data_dir: req.from_data_dir.clone(),
        tools,
        version,
        created,
    })
}

/// Runs the plan, reporting the long steps to `progress`.
pub async fn run(session: &Session, plan: Plan, req: &Request, progress: &Shared) -> Result<Report, BackupError> {
    let started = Instant::now();
    let _lock = DirLock::acquire(&req.dir)?;
    space::ensure_free(&req.dir, plan.staging_bytes, "stage the uncompressed dumps")?;
    let staging = tempfile::Builder::new()
        .prefix(".qrd-staging-")
        .tempdir_in(&req.dir)
        .map_err(|source| BackupError::Io { what: "make a staging directory in", path: req.dir.clone(), source })?;
    let mut manifest = Manifest::new(plan.created, source(session, &plan).await);

    if let Some(before) = &req.before {
        let (record, result) = hook::run(before, HookStage::Before).await;
        manifest.hooks.push(record);
        result?;
    }
    let dumped = dump_all(session, &plan, req, staging.path(), &mut manifest, progress).await;
    if let Some(after) = &req.after {
        let (record, result) = hook::run(after, HookStage::After).await;
        manifest.hooks.push(record);
        if let Err(e) = result {
            // The dumps' outcome decides; a failed --after hook is said, and fails a good backup.
            tracing::warn!("{e}");
            if dumped.is_ok() {
                return Err(e.into());
            }
        }
    }
    let dumped = dumped?;
    manifest.finished_utc = Some(OffsetDateTime::now_utc());

    tracing::info!("writing {}", plan.dir.join(format!("{}.tar.zst", plan.name)).display());
    let mut writer = Writer::create(&req.dir, &plan.name, req.compression)?.with_progress(progress.clone());
    writer.add_file(GLOBALS_MEMBER, &staging.path().join(GLOBALS_MEMBER))?;
    for d in &manifest.databases {
        let path = staging.path().join(&d.member);
        match d.format {
            ArchiveFormat::Directory => writer.add_dir(&d.member, &path)?,
            ArchiveFormat::Tar => writer.add_file(&d.member, &path)?,
        }
    }
    // Compression is CPU work: on a thread of its own, off the runtime's.
    let written: Written = tokio::task::spawn_blocking(move || writer.finish(manifest))
        .await
        .expect("the bundle writer does not panic")?;
    drop(staging);
    tracing::info!(
        "bundle complete: {} ({} from {} of dumps)",
        written.path.display(),
        space::human_bytes(written.bytes),
        space::human_bytes(written.content_bytes)
    );
    Ok(Report {
        bundle: written.path,
        bytes: written.bytes,
        content_bytes: written.content_bytes,
        databases: dumped,
        no_role_passwords: plan.no_role_passwords,
        seconds: started.elapsed().as_secs_f64(),
    })
}

const GLOBALS_MEMBER: &str = "globals.sql";

async fn source(session: &Session, plan: &Plan) -> Source {
    let t = session.target();
    // Superusers and pg_monitor members may read it; without, the manifest says null.
    let system_identifier =
        session.client().query_one(SYSTEM_IDENTIFIER.text, &[]).await.ok().map(|r| r.get::<_, String>("id"));
    Source {
        host: t.host.clone(),
        port: t.port,
        server_version: Some(plan.server_version.clone()),
        server_major: Some(plan.version.major),
        system_identifier,
        data_directory: plan.from_data_dir.as_ref().map(|d| d.display().to_string()),
    }
}

/// The roles, then each database in its own snapshot.
async fn dump_all(
    session: &Session,
    plan: &Plan,
    req: &Request,
    staging: &Path,
    manifest: &mut Manifest,
    progress: &Shared,
) -> Result<Vec<DumpedDatabase>, BackupError> {
    // The largest database (QSR) takes nearly all the time and both cores; the roles and the small
    // databases are mostly the tools' start-up and catalog queries, so they run beside it, not after it.
    let largest = plan.databases.iter().enumerate().max_by_key(|(_, d)| d.bytes).map(|(i, _)| i).unwrap_or(0);
    let big = async {
        match plan.databases.get(largest) {
            Some(d) => Some(dump_one(session, plan, req, d, staging, Some(progress)).await).transpose(),
            None => Ok(None),
        }
    };
    let small = async {
        tracing::info!("dumping the roles (pg_dumpall --globals-only)");
        let child = session.connector().child("postgres")?;
        let out = staging.join(GLOBALS_MEMBER);
        dump::dump_globals(&plan.tools, &child, plan.no_role_passwords, &out).await?;
        let mut out = Vec::new();
        for (i, d) in plan.databases.iter().enumerate() {
            if i != largest {
                out.push((i, dump_one(session, plan, req, d, staging, None).await?));
            }
        }
        Ok::<_, BackupError>(out)
    };
    let (big, small) = tokio::join!(big, small);
    let mut all = small?;
    manifest.globals = Some(manifest::Globals {
        member: GLOBALS_MEMBER.to_owned(),
        pg_dumpall_version: Some(plan.tools.pg_dumpall.version.text.clone()),
        no_role_passwords: plan.no_role_passwords,
    });
    if let Some(one) = big? {
        all.push((largest, one));
    }
    all.sort_by_key(|(i, _)| *i);
    let mut dumped = Vec::new();
    for (_, one) in all {
        if one.site.is_some() {
            manifest.site = one.site;
        }
        manifest.databases.push(one.database);
        dumped.push(one.dumped);
    }
    Ok(dumped)
}

/// One database's dump: its manifest entry, the site (from QSR), and the report line.
struct DumpedOne {
    database: Database,
    site: Option<Site>,
    dumped: DumpedDatabase,
}

async fn dump_one(
    session: &Session,
    plan: &Plan,
    req: &Request,
    d: &PlannedDatabase,
    staging: &Path,
    progress: Option<&Shared>,
) -> Result<DumpedOne, BackupError> {
    let started = Instant::now();
    let started_utc = OffsetDateTime::now_utc();
    tracing::info!("dumping {:?} ({})", d.name, space::human_bytes(d.bytes));
    let mut connector = session.connector().clone();
    let client = connector.connect(&d.name).await?;
    let q = |t: &'static Template| query_err(t, &d.name);
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(|e| QueryError::query("BEGIN", &d.name, &e))?;
    // A standby cannot export snapshots before PostgreSQL 10's rules allow it; then the counts are taken
    // beside the dump, and the manifest says so.
    let snapshot: Option<String> = match client.query_one(EXPORT_SNAPSHOT.text, &[]).await {
        Ok(r) => Some(r.get("snapshot")),
        // A lost connection (the server stopping) is a failure, not a reason to count beside the dump.
        Err(e) if e.as_db_error().is_none_or(|d| d.severity() != "ERROR") => {
            return Err(QueryError::query(EXPORT_SNAPSHOT.name, &d.name, &e).into());
        }
        Err(e) => {
            tracing::warn!(
                "cannot share a snapshot with pg_dump ({}): row counts are taken beside the dump",
                qrd_pg::connect::server_message(&e)
            );
            client
                .batch_execute("ROLLBACK; BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await
                .map_err(|e| QueryError::query("BEGIN", &d.name, &e))?;
            None
        }
    };
    let mut tables = Vec::new();
    for r in client.query(TABLES.text, &[]).await.map_err(q(&TABLES))? {
        let (schema, table): (String, String) = (r.get("schema"), r.get("table"));
        let sql = COUNT_ROWS
            .render_statement(&Vars::new().set("schema", schema.as_str()).set("table", table.as_str()))
            .map_err(|e| QueryError::Query {
                sql: COUNT_ROWS.name,
                database: d.name.clone(),
                message: e.to_string(),
            })?;
        let rows: i64 = client.query_one(&sql, &[]).await.map_err(q(&COUNT_ROWS))?.get("rows");
        tables.push(TableRows { schema, table, rows: rows.max(0) as u64 });
    }
    let site_found = if d.name == "QSR" { site(&client).await? } else { None };
    let attributes = crate::attributes::read(&client, &d.name, &d.name).await?.map(|a| a.attributes);
    let member = match req.format {
        ArchiveFormat::Directory => d.name.clone(),
        ArchiveFormat::Tar => format!("{}.tar", d.name),
    };
    let out = staging.join(&member);
    let child = session.connector().child(&d.name)?;
    let watch = progress.map(|p| Watch::start(p, &format!("dumping {}", d.name), None, out.clone()));
    let result =
        dump::dump_database(&plan.tools, &child, &d.name, req.format, req.jobs, snapshot.as_deref(), &out).await;
    drop(watch);
    // The snapshot is needed until pg_dump has taken it; the transaction ends either way.
    let _ = client.batch_execute("COMMIT").await;
    result?;
    let rows: u64 = tables.iter().map(|t| t.rows).sum();
    let count = tables.len();
    let database = Database {
        name: d.name.clone(),
        format: req.format,
        member,
        owner: Some(d.owner.clone()),
        encoding: Some(d.encoding.clone()),
        dump_started_utc: started_utc,
        dump_finished_utc: OffsetDateTime::now_utc(),
        jobs: (req.format == ArchiveFormat::Directory && req.jobs > 1).then_some(req.jobs),
        pg_dump_version: Some(plan.tools.pg_dump.version.text.clone()),
        row_counts: Some(RowCounts { in_dump_snapshot: snapshot.is_some(), tables }),
        attributes,
    };
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!("dumped {:?}: {count} tables, {rows} rows in {seconds:.1} s", d.name);
    Ok(DumpedOne {
        database,
        site: site_found,
        dumped: DumpedDatabase { name: d.name.clone(), tables: count, rows, seconds },
    })
}

/// The site as QSR describes it, read in the dump's snapshot; `None` when this release lacks the tables.
async fn site(client: &tokio_postgres::Client) -> Result<Option<Site>, BackupError> {
    let rows = |table: &'static str| async move {
        let vars = Vars::new().set("table", table).set("qualified", format!("public.\"{table}\""));
        let exists = TABLE_EXISTS.render_statement(&vars).map_err(|e| template_err(&TABLE_EXISTS, e))?;
        let present: bool =
            client.query_one(&exists, &[]).await.map_err(|e| QueryError::query(TABLE_EXISTS.name, "QSR", &e))?.get(0);
        if !present {
            return Ok::<_, BackupError>(None);
        }
        let sql = SITE_ROWS.render_statement(&vars).map_err(|e| template_err(&SITE_ROWS, e))?;
        let found = client.query(&sql, &[]).await.map_err(|e| QueryError::query(SITE_ROWS.name, "QSR", &e))?;
        let objects: Vec<serde_json::Value> =
            found.iter().filter_map(|r| serde_json::from_str(&r.get::<_, String>(0)).ok()).collect();
        Ok(Some(objects))
    };
    let text = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    let Some(nodes) = rows("ServerNodeConfigurations").await? else {
        tracing::warn!("QSR has no \"ServerNodeConfigurations\" table: the manifest records no site");
        return Ok(None);
    };
    let nodes = nodes
        .iter()
        .filter_map(|n| {
            Some(Node {
                host_name: text(n, "HostName")?,
                is_central: n.get("IsCentral").and_then(|x| x.as_bool()).unwrap_or(false),
                name: text(n, "Name"),
                id: text(n, "ID"),
            })
        })
        .collect();
    let local_config_host_names =
        rows("LocalConfigs").await?.unwrap_or_default().iter().filter_map(|r| text(r, "HostName")).collect();
    let shared_persistence = rows("ServiceClusterSettingsSharedPersistenceProperties").await?.and_then(|all| {
        all.first().map(|p| SharedPersistence {
            root_folder: text(p, "RootFolder"),
            app_folder: text(p, "AppFolder"),
            static_content_root_folder: text(p, "StaticContentRootFolder"),
            connector32_root_folder: text(p, "Connector32RootFolder"),
            connector64_root_folder: text(p, "Connector64RootFolder"),
            archived_logs_root_folder: text(p, "ArchivedLogsRootFolder"),
        })
    });
    Ok(Some(Site { nodes, local_config_host_names, shared_persistence }))
}

fn template_err(t: &Template, e: qrd_pg::template::TemplateError) -> BackupError {
    BackupError::Query(QueryError::Query { sql: t.name, database: "QSR".into(), message: e.to_string() })
}
