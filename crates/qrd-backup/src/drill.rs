//! `qrd drill`: a disaster-recovery drill. The newest (or a given) bundle is verified, restored into scratch
//! databases on a target server, and every table's rows are compared with the manifest; the restore time is
//! the drill's RTO and the bundle's age its RPO. The scratch databases are dropped afterwards, also when the
//! drill fails. Nothing else on the target is touched: no role is created (the archives are restored
//! without owners and privileges), no existing database is written.
//!
//! Where the server (14 or newer) has the amcheck extension and a `pg_amcheck` of the server's major or
//! newer is found, every scratch database's tables and B-tree indexes are checked too; otherwise
//! the report says why not. A Ctrl-C or SIGTERM stops the drill and still drops its scratch databases.

use std::path::{Path, PathBuf};
use std::time::Instant;

use qrd_pg::Session;
use qrd_pg::inventory::QueryError;
use qrd_pg::sql_template;
use qrd_pg::template::{Template, Vars};
use qrd_pgbin::{Finder, PgVersion, Tool};
use time::OffsetDateTime;

use crate::archive::{self, Load, Ownership};
use crate::bundle;
use crate::progress::Shared;
use crate::restore::{RestoreError, compare_rows, drop_database, pg_restore_for, render, unpack};
use crate::retention;

const CREATE_SCRATCH: Template = sql_template!("restore/create_scratch.sql");
const AMCHECK_AVAILABLE: Template = sql_template!("drill/amcheck_available.sql");

/// The drill's result (`--json` for monitoring).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Drill {
    pub bundle: PathBuf,
    /// The bundle's age when the drill began: the data a real disaster would lose at most (RPO).
    pub rpo_seconds: i64,
    /// Verifying, unpacking and restoring every database: what a real restore would take (RTO).
    pub rto_seconds: f64,
    pub databases: Vec<DrilledDatabase>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct DrilledDatabase {
    pub name: String,
    pub scratch: String,
    pub tables: usize,
    pub rows: u64,
    pub restore_seconds: f64,
    /// `ok` when pg_amcheck found nothing wrong; otherwise why it did not run (a finding fails the drill).
    pub amcheck: String,
}

/// The bundle a drill takes: `path` itself, or the newest bundle of the directory `path`.
pub fn choose_bundle(path: &Path) -> Result<PathBuf, RestoreError> {
    if !path.is_dir() {
        return Ok(path.to_owned());
    }
    let listing = retention::list(path)
        .map_err(|e| RestoreError::Work { path: path.to_owned(), source: std::io::Error::other(e.to_string()) })?;
    listing.bundles.last().map(|b| b.path.clone()).ok_or_else(|| RestoreError::Work {
        path: path.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no bundle in this directory"),
    })
}

/// Runs the drill (see the module documentation) against the server `session` reaches.
pub async fn drill(
    session: &Session,
    finder: &Finder,
    bundle_path: &Path,
    jobs: u32,
    progress: &Shared,
) -> Result<Drill, RestoreError> {
    let started = Instant::now();
    let manifest = bundle::read_manifest(bundle_path)?;
    let rpo_seconds = (OffsetDateTime::now_utc() - manifest.created_utc).whole_seconds();
    let main_db = session.target().dbname.clone();
    let (target, pg_restore) = pg_restore_for(session, finder, &manifest).await?;
    let major = (target as u32 / 10_000).max(manifest.source.server_major.unwrap_or(0));
    let (_work, unpacked) =
        unpack(bundle_path, &manifest, ".qrd-drill-", "unpack the bundle for the drill", progress).await?;

    let amcheck = amcheck_tool(session, finder, target as u32 / 10_000, major).await;
    let stamp = OffsetDateTime::now_utc().unix_timestamp();
    let mut scratch_dbs: Vec<String> = Vec::new();
    let work = async {
        let mut drilled = Vec::new();
        for db in &manifest.databases {
            let t0 = Instant::now();
            let scratch = format!("qrd_drill_{stamp}_{}", drilled.len() + 1);
            let sql = render(&CREATE_SCRATCH, &Vars::new().set("database", scratch.as_str()), &main_db)?;
            // Listed before it exists: an interruption during CREATE DATABASE still drops it.
            scratch_dbs.push(scratch.clone());
            session
                .client()
                .batch_execute(&sql)
                .await
                .map_err(|e| QueryError::query(CREATE_SCRATCH.name, &main_db, &e))?;
            let load = Load { pg_restore: &pg_restore, jobs, ownership: Ownership::Skip };
            archive::restore_into(session, load, db, &unpacked.join(&db.member), &scratch, progress).await?;
            let (tables, rows) = compare_rows(session, db, &scratch).await?;
            tracing::info!("drill: {:?} restored, {tables} tables and {rows} rows as the manifest counted", db.name);
            let restore_seconds = t0.elapsed().as_secs_f64();
            let amcheck = match &amcheck {
                Ok(tool) => {
                    archive::amcheck(session, tool, &db.name, &scratch, progress).await?;
                    tracing::info!("drill: pg_amcheck found nothing wrong in {:?}", db.name);
                    "ok".to_owned()
                }
                Err(why) => format!("not run: {why}"),
            };
            drilled.push(DrilledDatabase { name: db.name.clone(), scratch, tables, rows, restore_seconds, amcheck });
        }
        Ok::<_, RestoreError>(drilled)
    };
    let outcome = tokio::select! {
        done = work => done,
        signal = qrd_pgbin::interrupt::interrupted() => Err(RestoreError::Interrupted { signal: signal.as_str() }),
    };
    let rto_seconds = started.elapsed().as_secs_f64();
    // The scratch databases go, whatever happened.
    for scratch in &scratch_dbs {
        drop_database(session, target, scratch).await;
    }
    let databases = outcome?;
    Ok(Drill { bundle: bundle_path.to_owned(), rpo_seconds, rto_seconds, databases })
}

/// pg_amcheck for the scratch databases, or why there is none. It needs amcheck 1.3 (`verify_heapam`),
/// which servers before 14 do not have.
async fn amcheck_tool(session: &Session, finder: &Finder, server_major: u32, major: u32) -> Result<PathBuf, String> {
    if server_major < 14 {
        return Err(format!("pg_amcheck needs a server of PostgreSQL 14 or newer (this one is {server_major})"));
    }
    let (available, superuser) = session
        .client()
        .query_one(AMCHECK_AVAILABLE.text, &[])
        .await
        .map(|r| (r.get::<_, bool>("available"), r.get::<_, bool>("superuser")))
        .unwrap_or((false, false));
    if !available {
        return Err("the server has no amcheck extension (PostgreSQL's contrib)".into());
    }
    if !superuser {
        return Err(format!(
            "{:?} is no superuser, and only a superuser may create the amcheck extension (it is not trusted) in \
             the scratch databases",
            session.target().user
        ));
    }
    let version = PgVersion { major: major.max(14), minor: 0, text: major.max(14).to_string() };
    match finder.find(Tool::PgAmcheck, &version) {
        Ok(found) => Ok(found.path),
        Err(e) => Err(format!(
            "no pg_amcheck of PostgreSQL {} or newer in {}",
            version.major,
            e.searched.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
        )),
    }
}
