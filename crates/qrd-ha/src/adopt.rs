//! `qrd ha adopt`: an existing Qlik repository moved into the cluster's leader with qrd's own backup and
//! restore. The source is a bundle from `qrd backup`, or a standalone server, which is backed up first
//! (the bundle is kept: it is also the way back). The restore proves every row count against the bundle's
//! manifest; then qrd waits until every replica has streamed it all, so the adopted repository survives a
//! failover from the moment `adopt` returns.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use qrd_backup::progress::Shared;
use qrd_backup::restore::{self, Clean, Request};
use qrd_pg::Session;
use qrd_pgbin::{Check, Finder, poll_until};
use serde::Serialize;

use crate::HaError;
use crate::status::ClusterRef;

pub enum Source<'a> {
    /// A bundle made by `qrd backup`.
    Bundle(PathBuf),
    /// A standalone server, backed up into `dir` first.
    Server { session: &'a Session, dir: PathBuf },
}

pub struct AdoptRequest {
    pub jobs: u32,
    pub repo_role: String,
    pub rename: Option<qrd_backup::hostname::Rename>,
    pub clean: Option<Clean>,
    /// How long replicas may take to receive everything.
    pub wait: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReplicaCaughtUp {
    pub member: String,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct AdoptReport {
    /// The bundle restored (made from the standalone server when that was the source).
    pub bundle: PathBuf,
    /// The standalone server's backup took this long (when it was the source).
    pub backup_seconds: Option<f64>,
    pub restore: restore::Report,
    /// The leader the restore went to.
    pub leader: String,
    pub replicas: Vec<ReplicaCaughtUp>,
}

/// Backs up the source when it is a server, restores onto `target` (the cluster's leader, directly or
/// through HAProxy), and waits for the replicas.
pub async fn adopt(
    cref: &ClusterRef,
    target: &Session,
    finder: &Finder,
    source: Source<'_>,
    req: &AdoptRequest,
    progress: &Shared,
) -> Result<AdoptReport, HaError> {
    // A bundle that cannot be read is refused before the cluster is asked anything.
    if let Source::Bundle(b) = &source {
        qrd_backup::bundle::read_manifest(b).map_err(restore::RestoreError::from)?;
    }
    let cluster = {
        let api = cref.api();
        // The REST client (ureq) blocks: on a thread of its own, so the runtime's thread stays free.
        tokio::task::spawn_blocking(move || api.cluster()).await.expect("no panic")?
    };
    let leader = cluster
        .leader()
        .ok_or_else(|| HaError::Refused("the cluster has no leader to adopt into (qrd ha status)".into()))?
        .clone();
    // The target must be the leader: a replica refuses writes, and anything else is not this cluster.
    let in_recovery: bool = target
        .client()
        .query_one("SELECT pg_is_in_recovery()", &[])
        .await
        .map_err(|e| {
            HaError::Refused(format!(
                "could not ask the target whether it leads: {}",
                qrd_pg::connect::server_message(&e)
            ))
        })?
        .get(0);
    if in_recovery {
        return Err(HaError::Refused(format!(
            "{} is a replica: adopt into the leader ({}) or through HAProxy's endpoint",
            target.target().address(),
            leader.name
        )));
    }

    let (bundle, backup_seconds) = match source {
        Source::Bundle(b) => (b, None),
        Source::Server { session, dir } => {
            let started = Instant::now();
            let breq = qrd_backup::backup::Request {
                dir,
                name: None,
                extra_databases: Vec::new(),
                format: qrd_backup::manifest::ArchiveFormat::Directory,
                jobs: req.jobs,
                compression: qrd_backup::bundle::WriterOptions { level: 1, threads: req.jobs },
                before: None,
                after: None,
                from_data_dir: None,
            };
            let plan = qrd_backup::backup::plan(session, finder, &breq).await?;
            let report = qrd_backup::backup::run(session, plan, &breq, progress).await?;
            (report.bundle, Some(started.elapsed().as_secs_f64()))
        }
    };

    let rreq = Request {
        bundle: bundle.clone(),
        databases: Vec::new(),
        jobs: req.jobs,
        repo_role: req.repo_role.clone(),
        rename: req.rename.clone(),
        clean: req.clean,
        // The leader's bootstrap made the repository role: it keeps its password.
        repo_password: None,
    };
    let restored = restore::restore(target, finder, &rreq, progress).await?;

    // Every replica streaming and caught up with the leader's WAL after the restore.
    let target_lsn: String = target
        .client()
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .map_err(|e| HaError::Refused(qrd_pg::connect::server_message(&e)))?
        .get(0);
    let replicas: Vec<String> = cluster.members.iter().filter(|m| !m.is_leader()).map(|m| m.name.clone()).collect();
    let started = Instant::now();
    let what = format!("{} have replayed the adopted repository (the leader is at {target_lsn})", replicas.join(", "));
    let caught_up = Mutex::new(Vec::new());
    let caught_up_ref = &caught_up;
    let target_lsn = &target_lsn;
    let replicas = &replicas;
    let replayed = poll_until(started + req.wait, &what, || async move {
        let rows = target
            .client()
            .query(
                "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming' AND replay_lsn >= $1::text::pg_lsn",
                &[target_lsn],
            )
            .await
            .map_err(|e| HaError::Refused(qrd_pg::connect::server_message(&e)))?;
        let done: Vec<String> = rows.iter().map(|r| r.get::<_, String>(0)).collect();
        let mut caught_up = caught_up_ref.lock().expect("not poisoned");
        for m in replicas {
            if done.contains(m) && !caught_up.iter().any(|c: &ReplicaCaughtUp| &c.member == m) {
                caught_up.push(ReplicaCaughtUp { member: m.clone(), seconds: started.elapsed().as_secs_f64() });
            }
        }
        let waiting: Vec<&str> =
            replicas.iter().filter(|m| !caught_up.iter().any(|c| &c.member == *m)).map(String::as_str).collect();
        Ok(if waiting.is_empty() {
            Check::Done(())
        } else {
            Check::Pending(format!("still behind: {} (qrd ha status shows their lag)", waiting.join(", ")))
        })
    })
    .await;
    replayed?;
    let replicas = caught_up.into_inner().expect("not poisoned");
    Ok(AdoptReport { bundle, backup_seconds, restore: restored, leader: leader.name, replicas })
}
