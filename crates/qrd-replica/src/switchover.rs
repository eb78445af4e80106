//! `qrd switchover`: the planned move of the primary role to a standby, losing nothing.
//!
//! 1. The standby must be streaming from this primary (`pg_stat_replication` shows it).
//! 2. The primary stops cleanly (fast) through its service — `pg_ctlcluster` for a Debian cluster, its
//!    systemd unit, else `pg_ctl stop -m fast` as the owner: its walsenders send everything, up to the
//!    shutdown checkpoint, before it exits.
//! 3. qrd reads that checkpoint's location with `pg_controldata` of the primary's major (which checks
//!    pg_control's CRC) and waits until the standby has replayed past it: every transaction the primary
//!    acknowledged is on the standby.
//! 4. The standby is promoted and must hand out a transaction id.
//! 5. The old primary — stopped cleanly, so nothing to rewind, and its own configuration untouched — is
//!    configured as a standby of the new one and started through its service; qrd waits until it streams
//!    (asked through its socket, as its configuration, includes followed, names it).
//!
//! The write downtime clients see runs from step 2 to step 4; the report gives it and the total.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use qrd_pg::inventory::QueryError;
use qrd_pg::{Secret, Session};
use qrd_pgbin::{Check, Finder, Identity, PgVersion, Tool, poll_until};
use qrd_server::{Layout, StopMode};

use crate::configure::{Link, configure_standby};
use crate::control::{self, SHUT_DOWN};
use crate::error::ReplicaError;
use crate::failover::{promote, wait_writable};
use crate::local::{check_data_dir, log_of, service_of, wait_streaming};
use crate::status::role_of;

#[derive(Debug, Clone)]
pub struct SwitchoverRequest {
    /// The primary's data directory (on this machine), or a Debian cluster's /etc directory.
    pub data_dir: PathBuf,
    /// How the old primary, once a standby, reaches the new one.
    pub standby_host: String,
    pub standby_port: u16,
    pub replicator: String,
    pub password: Secret,
    pub sslmode: String,
    pub timeout: Duration,
    pub superuser: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Switched {
    pub new_primary: String,
    pub old_primary_dir: PathBuf,
    /// The stopped primary's last checkpoint, which the standby replayed past before its promotion.
    pub shutdown_checkpoint: String,
    /// From the primary's stop to the new primary's first transaction id.
    pub write_downtime_seconds: f64,
    pub total_seconds: f64,
    pub timeline: Option<i32>,
    /// The old primary's WAL receiver once it follows the new one.
    pub old_primary_streaming: String,
}

/// Switches over from the primary `primary` reaches to the standby `standby` reaches.
pub async fn switchover(
    primary: &Session,
    standby: &Session,
    finder: &Finder,
    req: &SwitchoverRequest,
) -> Result<Switched, ReplicaError> {
    let started = Instant::now();
    if role_of(primary).await?.0 {
        return Err(ReplicaError::NotAPrimary { server: primary.target().address() });
    }
    if !role_of(standby).await?.0 {
        return Err(ReplicaError::NotAStandby { server: standby.target().address() });
    }
    let streaming: bool = standby
        .client()
        .query_one("SELECT coalesce((SELECT status = 'streaming' FROM pg_stat_wal_receiver), false)", &[])
        .await
        .map_err(|e| QueryError::query("pg_stat_wal_receiver", &standby.target().dbname, &e))?
        .get(0);
    if !streaming {
        return Err(ReplicaError::NotStreamingNow { server: standby.target().address() });
    }

    // Everything the stop commits to is found first: the primary's cluster, what stops and starts it (its
    // log decided while it runs), its owner and pg_controldata.
    let layout = Layout::from_dir(&req.data_dir);
    let dir = layout.data_dir.clone();
    let major = layout.major.ok_or_else(|| ReplicaError::NotADataDir { dir: dir.clone() })?;
    check_data_dir(primary, &layout).await?;
    let service = service_of(&layout, major, finder)?;
    let owner = Identity::owner_of(&dir).map_err(|e| ReplicaError::OsUser { message: e.to_string() })?;
    let version = PgVersion { major, minor: 0, text: major.to_string() };
    let pg_controldata = finder.find(Tool::PgControldata, &version)?;

    // Stop the primary cleanly, then read where its last checkpoint is.
    let stop_at = Instant::now();
    tracing::info!("stopping the primary cleanly ({service}, fast)");
    service.stop(StopMode::Fast).await?;
    let control = control::read(&pg_controldata, &dir).await?;
    if control.state != SHUT_DOWN {
        return Err(ReplicaError::NotCleanlyStopped { dir, state: control.state });
    }
    let lsn = control.checkpoint;
    tracing::info!("the primary stopped cleanly; its shutdown checkpoint is at {lsn}");

    // The standby must replay past it.
    let deadline = Instant::now() + req.timeout;
    let what = format!("it has replayed past {lsn}");
    let replayed = poll_until(deadline, &what, || async {
        let row = standby
            .client()
            .query_one(
                "SELECT pg_last_wal_replay_lsn() > $1::text::pg_lsn AS past, pg_last_wal_replay_lsn()::text AS at",
                &[&lsn],
            )
            .await
            .map_err(|e| QueryError::query("pg_last_wal_replay_lsn", &standby.target().dbname, &e))?;
        Ok(match row.get::<_, Option<bool>>("past") {
            Some(true) => Check::Done(()),
            _ => Check::Pending(format!("replayed up to {}", row.get::<_, Option<String>>("at").unwrap_or_default())),
        })
    })
    .await;
    replayed.map_err(|e| {
        ReplicaError::from_wait(e, |waited| ReplicaError::NotCaughtUp {
            server: standby.target().address(),
            lsn: lsn.clone(),
            waited,
        })
    })?;

    // Promote and wait for writes.
    promote(standby).await?;
    wait_writable(standby, deadline).await?;
    let write_downtime_seconds = stop_at.elapsed().as_secs_f64();
    let (_, timeline) = role_of(standby).await?;
    tracing::info!("{} is the primary (timeline {})", standby.target().address(), timeline.unwrap_or(0));

    // The old primary follows it, on its own configuration (nothing was copied over it).
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "standby".into());
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_owned();
    let link = Link {
        host: req.standby_host.clone(),
        port: req.standby_port,
        replicator: req.replicator.clone(),
        password: req.password.clone(),
        application_name: name.clone(),
        sslmode: req.sslmode.clone(),
        slot: None,
        trigger_file: None,
        keep: Vec::new(),
    };
    configure_standby(&dir, &parent.join(format!(".{name}.qrd-replication.pgpass")), &link, &owner, major)?;
    service.start().await?;
    tracing::info!("the old primary started as a standby ({service}); waiting for it to stream");
    let old_primary_streaming = wait_streaming(&layout, &owner, req.superuser.as_deref(), &log_of(&service)).await?;
    Ok(Switched {
        new_primary: standby.target().address(),
        old_primary_dir: dir,
        shutdown_checkpoint: lsn,
        write_downtime_seconds,
        total_seconds: started.elapsed().as_secs_f64(),
        timeline,
        old_primary_streaming,
    })
}
