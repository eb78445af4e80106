//! `qrd drill`: a disaster-recovery drill. The newest (or a given) bundle is verified, restored into scratch
//! databases on a target server, and every table's rows are compared with the manifest; the restore time is
//! the drill's RTO and the bundle's age its RPO. The scratch databases are dropped afterwards, also when the
//! drill fails. Nothing else on the target is touched: no role is created (the archives are restored
//! without owners and privileges), no existing database is written.

use std::path::{Path, PathBuf};
use std::time::Instant;

use qrd_pg::Session;
use qrd_pg::inventory::QueryError;
use qrd_pg::sql_template;
use qrd_pg::template::{Template, Vars};
use qrd_pgbin::{Finder, PgVersion, Tool, run, scrubbed_command};
use time::OffsetDateTime;

use crate::bundle;
use crate::manifest::ArchiveFormat;
use crate::restore::{RestoreError, compare_rows};
use crate::retention;
use crate::space;

const CREATE_SCRATCH: Template = sql_template!("restore/create_scratch.sql");
const DROP_DATABASE: Template = sql_template!("restore/drop_database.sql");
const DROP_SCRATCH: Template = sql_template!("restore/drop_scratch.sql");

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
pub async fn drill(session: &Session, finder: &Finder, bundle_path: &Path, jobs: u32) -> Result<Drill, RestoreError> {
    let started = Instant::now();
    let manifest = bundle::read_manifest(bundle_path)?;
    let rpo_seconds = (OffsetDateTime::now_utc() - manifest.created_utc).whole_seconds();
    let main_db = session.target().dbname.clone();
    let target: i32 = session
        .client()
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .map_err(|e| QueryError::query("server_version_num", &main_db, &e))?
        .get(0);
    let major = (target as u32 / 10_000).max(manifest.source.server_major.unwrap_or(0));
    let pg_restore = finder.find(Tool::PgRestore, &PgVersion { major, minor: 0, text: major.to_string() })?;

    let dir = bundle_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    space::ensure_free(dir, manifest.members.iter().map(|m| m.size).sum(), "unpack the bundle for the drill")?;
    let work = tempfile::Builder::new()
        .prefix(".qrd-drill-")
        .tempdir_in(dir)
        .map_err(|source| RestoreError::Work { path: bundle_path.to_owned(), source })?;
    let unpacked = work.path().join("bundle");
    let (from, to) = (bundle_path.to_owned(), unpacked.clone());
    tokio::task::spawn_blocking(move || bundle::extract(&from, &to)).await.expect("no panic")?;

    let stamp = OffsetDateTime::now_utc().unix_timestamp();
    let mut scratch_dbs: Vec<String> = Vec::new();
    let outcome = async {
        let mut drilled = Vec::new();
        for db in &manifest.databases {
            let t0 = Instant::now();
            let scratch = format!("qrd_drill_{stamp}_{}", drilled.len() + 1);
            let sql = render(&CREATE_SCRATCH, &Vars::new().set("database", scratch.as_str()), &main_db)?;
            session
                .client()
                .batch_execute(&sql)
                .await
                .map_err(|e| QueryError::query(CREATE_SCRATCH.name, &main_db, &e))?;
            scratch_dbs.push(scratch.clone());
            let child = session.connector().child(&scratch)?;
            let mut cmd = scrubbed_command(&pg_restore.path);
            child.apply(&mut cmd);
            cmd.args(["--no-password", "--exit-on-error", "--no-owner", "--no-privileges"]);
            if db.format == ArchiveFormat::Directory && jobs > 1 {
                cmd.arg(format!("--jobs={jobs}"));
            }
            cmd.arg("--dbname").arg(format!("dbname={scratch}")).arg(unpacked.join(&db.member));
            let action = format!("restore {:?} into {scratch} (pg_restore)", db.name);
            tracing::info!("drill: restoring {:?} into {scratch}", db.name);
            tokio::task::spawn_blocking(move || run(&mut cmd, &action)).await.expect("no panic")?;
            let (tables, rows) = compare_rows(session, db, &scratch).await?;
            tracing::info!("drill: {:?} restored, {tables} tables and {rows} rows as the manifest counted", db.name);
            drilled.push(DrilledDatabase {
                name: db.name.clone(),
                scratch,
                tables,
                rows,
                restore_seconds: t0.elapsed().as_secs_f64(),
            });
        }
        Ok::<_, RestoreError>(drilled)
    }
    .await;
    let rto_seconds = started.elapsed().as_secs_f64();
    // The scratch databases go, whatever happened. Before 13 (no FORCE) a connection that is still closing
    // can hold one for a moment: a few tries.
    let drop = if target >= 130_000 { &DROP_SCRATCH } else { &DROP_DATABASE };
    for scratch in &scratch_dbs {
        let sql = render(drop, &Vars::new().set("database", scratch.as_str()), &main_db)?;
        let mut tries = 0;
        loop {
            match session.client().batch_execute(&sql).await {
                Ok(()) => break,
                Err(_) if tries < 20 => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                }
                Err(e) => {
                    tracing::warn!(
                        "could not drop the drill's database {scratch}: {}",
                        qrd_pg::connect::server_message(&e)
                    );
                    break;
                }
            }
        }
    }
    let databases = outcome?;
    Ok(Drill { bundle: bundle_path.to_owned(), rpo_seconds, rto_seconds, databases })
}

fn render(t: &Template, vars: &Vars, db: &str) -> Result<String, QueryError> {
    t.render_statement(vars).map_err(|e| QueryError::Query {
        sql: t.name,
        database: db.to_owned(),
        message: e.to_string(),
    })
}
