//! `qrd failover`: promotes a standby, waits until it accepts writes, and says what the Qlik nodes must
//! change.
//!
//! - Fencing first: with `--old-primary HOST:PORT`, when the old primary answers and is not in recovery,
//!   promoting a second writable primary would split the site's writes between two servers; qrd refuses
//!   unless `--force`. An old primary that does not answer, or answers as a standby, is fine.
//! - Promotion by `pg_promote()` over the connection (PostgreSQL 12+), or with `--data-dir` through the
//!   cluster's service (`pg_ctlcluster … promote` for a Debian cluster, else `pg_ctl promote` as the owner;
//!   the directory may be Debian's `/etc/postgresql/<major>/<name>` too, and must be the data directory of
//!   the server qrd is connected to), or — the guide's way, for monitors without database credentials — by creating the
//!   standby's `promote_trigger_file` (`--via-trigger-file`, PostgreSQL 12–15; 16 removed the setting).
//! - Then: the server must hand out a transaction id (which fails during recovery), and the report gives
//!   the time it took and the new timeline.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use qrd_pg::inventory::QueryError;
use qrd_pg::template::Template;
use qrd_pg::{ConnectOpts, Session, sql_template};
use qrd_pgbin::{Check, Finder, TimedOut, poll_until};
use qrd_server::Layout;
use qrd_server::service::Manager;

use crate::error::ReplicaError;
use crate::local::{check_data_dir, pg_ctl_for, service_of};
use crate::status::{query_err, role_of};

const PROMOTE: Template = sql_template!("replica/promote.sql");
const WRITABLE: Template = sql_template!("replica/writable.sql");

#[derive(Debug, Clone)]
pub enum Method {
    /// `pg_promote()` over the session.
    Connection,
    /// Through the service of the cluster whose data (or Debian configuration) directory this is.
    DataDir(PathBuf),
    /// Create this file (the standby's `promote_trigger_file`).
    TriggerFile(PathBuf),
}

#[derive(Debug, Clone)]
pub struct FailoverRequest {
    pub method: Method,
    /// How to reach the old primary for the fencing check (the session's options with its host and port).
    pub old_primary: Option<ConnectOpts>,
    pub force: bool,
    pub timeout: Duration,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct FailedOver {
    pub promoted: String,
    pub method: String,
    /// From the promotion request to the first transaction id handed out.
    pub seconds: f64,
    pub timeline: Option<i32>,
    /// What the fencing check found.
    pub old_primary: Option<String>,
    /// What every Qlik node must change now.
    pub qlik_steps: Vec<String>,
}

/// How long `pg_promote()` waits for the promotion (promote.sql).
const PROMOTE_WAIT: Duration = Duration::from_secs(60);

/// `pg_promote()` over `session`: the standby ends recovery (PostgreSQL waits up to 60 s for it).
pub(crate) async fn promote(session: &Session) -> Result<(), ReplicaError> {
    let promoted: bool =
        session.client().query_one(PROMOTE.text, &[]).await.map_err(query_err(&PROMOTE, session))?.get("promoted");
    if promoted {
        return Ok(());
    }
    // The server did the waiting; its answer is the timeout.
    let waited = TimedOut {
        what: "the server ends recovery".into(),
        waited: PROMOTE_WAIT,
        last: "pg_promote() returned false".into(),
    };
    Err(ReplicaError::NotPromoted { server: session.target().address(), waited })
}

/// Waits until the server hands out a transaction id (which fails during recovery), up to `deadline`.
pub(crate) async fn wait_writable(session: &Session, deadline: Instant) -> Result<(), ReplicaError> {
    let writable = poll_until(deadline, "it hands out a transaction id (it has left recovery)", || async {
        Ok(match session.client().query_one(WRITABLE.text, &[]).await {
            Ok(_) => Check::Done(()),
            Err(e) => Check::Pending(qrd_pg::connect::server_message(&e)),
        })
    })
    .await;
    writable.map_err(|e| {
        ReplicaError::from_wait(e, |waited| ReplicaError::NotPromoted { server: session.target().address(), waited })
    })
}

/// Fails over to the standby `session` reaches (see the module documentation).
pub async fn failover(session: &Session, finder: &Finder, req: &FailoverRequest) -> Result<FailedOver, ReplicaError> {
    let target = session.target().address();
    if !role_of(session).await?.0 {
        return Err(ReplicaError::NotAStandby { server: target });
    }
    let version: i32 = session
        .client()
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .map_err(|e| QueryError::query("server_version_num", &session.target().dbname, &e))?
        .get(0);
    let major = version as u32 / 10_000;

    // Fencing.
    let old_primary = match &req.old_primary {
        None => None,
        Some(opts) => {
            let address = format!("{}:{}", opts.host.clone().unwrap_or_default(), opts.port.unwrap_or(0));
            match Session::open(opts).await {
                Err(e) => Some(format!("{address} does not answer: {e}")),
                Ok(old) => {
                    if role_of(&old).await?.0 {
                        Some(format!("{address} answers as a standby"))
                    } else if req.force {
                        tracing::warn!("{address} still accepts writes: promoting anyway (--force); fence it now");
                        Some(format!("{address} still accepts writes (--force)"))
                    } else {
                        return Err(ReplicaError::OldPrimaryAlive { address });
                    }
                }
            }
        }
    };

    let started = Instant::now();
    let method = match &req.method {
        Method::Connection => {
            promote(session).await?;
            "pg_promote()".to_owned()
        }
        Method::DataDir(dir) => {
            let layout = Layout::from_dir(dir);
            check_data_dir(session, &layout).await?;
            let service = service_of(&layout, major, finder)?;
            let method = match service.manager() {
                Manager::PgCtlCluster { version, cluster, .. } => format!("pg_ctlcluster {version} {cluster} promote"),
                Manager::Systemd { .. } | Manager::PgCtl(_) => "pg_ctl promote".to_owned(),
            };
            service.promote(|| pg_ctl_for(&layout, major, finder)).await?;
            method
        }
        Method::TriggerFile(path) => {
            if major >= 16 {
                return Err(ReplicaError::TriggerFileRemoved { major });
            }
            let set: String = session
                .client()
                .query_one("SELECT current_setting('promote_trigger_file')", &[])
                .await
                .map_err(|e| QueryError::query("promote_trigger_file", &session.target().dbname, &e))?
                .get(0);
            if set.is_empty() || std::path::Path::new(&set) != path {
                return Err(ReplicaError::TriggerFileNotSet { given: path.clone(), set });
            }
            std::fs::write(path, b"").map_err(|source| ReplicaError::Io {
                what: "create",
                path: path.clone(),
                source,
            })?;
            format!("trigger file {}", path.display())
        }
    };
    tracing::info!("promotion requested ({method}); waiting for writes");

    wait_writable(session, started + req.timeout).await?;
    let seconds = started.elapsed().as_secs_f64();
    let (_, timeline) = role_of(session).await?;
    tracing::info!("{target} accepts writes after {seconds:.2} s (timeline {})", timeline.unwrap_or(0));
    let host = session.target().host.clone();
    Ok(FailedOver { promoted: target, method, seconds, timeline, old_primary, qlik_steps: qlik_steps(&host) })
}

/// What every Qlik Sense node needs after the database moved to `host` (the guide's failover steps).
pub fn qlik_steps(host: &str) -> Vec<String> {
    vec![
        format!(
            "On every Qlik Sense node (central and rim): run C:\\Program Files\\Qlik\\Sense\\Repository\\Util\\QlikSenseUtil\\QlikSenseUtil.exe \
             as an administrator, Connection String Editor → Read, set Host to {host}, then \"Save value in config file encrypted\"."
        ),
        format!(
            "In the appsettings.json of each service the Service Dispatcher runs that names the database \
             (C:\\Program Files\\Qlik\\Sense\\Licenses\\appsettings.json and the others), set \"host\" to {host}."
        ),
        "Restart the Qlik Sense services on every node, the central node first.".to_owned(),
    ]
}
