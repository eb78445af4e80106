//! `qrd switchover`: the planned move of the primary role to a standby, losing nothing.
//!
//! 1. The standby must be streaming from this primary (`pg_stat_replication` shows it).
//! 2. The primary stops cleanly (`pg_ctl stop -m fast`): its walsenders send everything, up to the shutdown
//!    checkpoint, before it exits.
//! 3. qrd reads that checkpoint's location from the stopped primary's `global/pg_control` and waits until
//!    the standby has replayed past it: every transaction the primary acknowledged is on the standby.
//! 4. The standby is promoted and must hand out a transaction id.
//! 5. The old primary — stopped cleanly, so nothing to rewind — is configured as a standby of the new one
//!    and started; qrd waits until it streams.
//!
//! The write downtime clients see runs from step 2 to step 4; the report gives it and the total.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use qrd_pg::inventory::QueryError;
use qrd_pg::{Secret, Session};
use qrd_pgbin::{Finder, Identity, PgVersion, Tool};
use qrd_server::local::major_of;
use qrd_server::pgctl::{PgCtl, StopMode};

use crate::clone::{Link, configure_standby, socket_of, start_and_wait};
use crate::error::ReplicaError;
use crate::failover::{promote, wait_writable};
use crate::status::role_of;

#[derive(Debug, Clone)]
pub struct SwitchoverRequest {
    /// The primary's data directory (on this machine).
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

    // Stop the primary cleanly, then read where its last checkpoint is.
    let dir = req.data_dir.clone();
    let major = major_of(&dir).ok_or_else(|| ReplicaError::NotADataDir { dir: dir.clone() })?;
    let version = PgVersion { major, minor: 0, text: major.to_string() };
    let pg_ctl = finder.find(Tool::PgCtl, &version)?;
    let ctl = PgCtl::for_owner(&pg_ctl.path, &dir)?;
    let stop_at = Instant::now();
    tracing::info!("stopping the primary cleanly (pg_ctl stop -m fast)");
    let stopper = ctl.clone();
    tokio::task::spawn_blocking(move || stopper.stop(StopMode::Fast)).await.expect("no panic")?;
    let (state, checkpoint) = read_control(&dir)?;
    if state != DB_SHUTDOWNED {
        return Err(ReplicaError::NotCleanlyStopped { dir, state });
    }
    let lsn = format_lsn(checkpoint);
    tracing::info!("the primary stopped cleanly; its shutdown checkpoint is at {lsn}");

    // The standby must replay past it.
    let deadline = Instant::now() + req.timeout;
    loop {
        let past: bool = standby
            .client()
            .query_one("SELECT pg_last_wal_replay_lsn() > $1::text::pg_lsn", &[&lsn])
            .await
            .map_err(|e| QueryError::query("pg_last_wal_replay_lsn", &standby.target().dbname, &e))?
            .get(0);
        if past {
            break;
        }
        if Instant::now() > deadline {
            return Err(ReplicaError::NotCaughtUp { server: standby.target().address(), lsn });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Promote and wait for writes.
    promote(standby).await?;
    wait_writable(standby, deadline, req.timeout).await?;
    let write_downtime_seconds = stop_at.elapsed().as_secs_f64();
    let (_, timeline) = role_of(standby).await?;
    tracing::info!("{} is the primary (timeline {})", standby.target().address(), timeline.unwrap_or(0));

    // The old primary follows it.
    let owner = Identity::owner_of(&dir).map_err(|e| ReplicaError::OsUser { message: e.to_string() })?;
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "standby".into());
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_owned();
    let (_, own_port) = socket_of(&dir);
    let link = Link {
        host: req.standby_host.clone(),
        port: req.standby_port,
        replicator: req.replicator.clone(),
        password: req.password.clone(),
        application_name: name.clone(),
        sslmode: req.sslmode.clone(),
        slot: None,
        own_port: Some(own_port),
        trigger_file: None,
    };
    configure_standby(&dir, &parent.join(format!(".{name}.qrd-replication.pgpass")), &link, &owner)?;
    let (finder2, dir2, superuser) = (finder.clone(), dir.clone(), req.superuser.clone());
    let old_primary_streaming =
        tokio::task::spawn_blocking(move || start_and_wait(&dir2, &finder2, &owner, superuser.as_deref()))
            .await
            .expect("no panic")?;
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

/// `DBState` in pg_control: shut down cleanly.
const DB_SHUTDOWNED: i32 = 1;

/// The cluster state and the latest checkpoint's location from `global/pg_control`. The fields read lead
/// `ControlFileData` in every release qrd supports (12–16): system identifier (8 bytes), pg_control
/// version and catalog version (4 each), state (4), 4 bytes of padding, time (8), then the checkpoint
/// location (8), in the machine's byte order.
pub fn read_control(dir: &Path) -> Result<(i32, u64), ReplicaError> {
    let path = dir.join("global").join("pg_control");
    let bytes = std::fs::read(&path).map_err(|source| ReplicaError::Io { what: "read", path: path.clone(), source })?;
    if bytes.len() < 40 {
        return Err(ReplicaError::Internal(format!("{} is too short", path.display())));
    }
    let version = u32::from_ne_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if !(1100..2000).contains(&version) {
        return Err(ReplicaError::Internal(format!("{} has pg_control version {version}", path.display())));
    }
    let state = i32::from_ne_bytes(bytes[16..20].try_into().expect("4 bytes"));
    let checkpoint = u64::from_ne_bytes(bytes[32..40].try_into().expect("8 bytes"));
    Ok((state, checkpoint))
}

/// An LSN as PostgreSQL writes it: `16/B374D848`.
pub fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsns_print_as_postgresql_does() {
        assert_eq!(format_lsn(0x16_B374_D848), "16/B374D848");
        assert_eq!(format_lsn(0x0300_0028), "0/3000028");
    }
}
