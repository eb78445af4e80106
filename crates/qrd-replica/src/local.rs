//! The server of a data directory on this machine, as clone, failover, rejoin and switchover handle it:
//! found through `qrd_server::Layout` (initdb's layout, or Debian's with the configuration in
//! `/etc/postgresql/<major>/<name>`), started, stopped and promoted through `qrd_server::Service`
//! (`pg_ctlcluster` for a Debian cluster, its systemd unit, else pg_ctl as the owner), reached where its
//! configuration says (read with its includes and postgresql.auto.conf), and watched until it streams.
//!
//! A copy of another server's files (pg_basebackup's, pg_rewind's) brings that server's configuration
//! along. Where the copied files would move the server — another `port`, `listen_addresses` or socket
//! directory — the server's own values are written back ([`kept_settings`]); on Debian, where the copied
//! `postgresql.conf`, `pg_hba.conf` and `pg_ident.conf` are never read, they are removed
//! ([`remove_unread_copies`]), so nobody (qrd's own `--data-dir` included) mistakes them for the cluster's.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use qrd_pg::connect::ConnectErrorKind;
use qrd_pgbin::{Check, Finder, Identity, PgVersion, Tool, poll_until};
use qrd_server::pgctl::log_destination;
use qrd_server::service::Manager;
use qrd_server::{Layout, PgCtl, Service};

use crate::error::ReplicaError;
use crate::status::RECEIVER;

/// The settings that say where a server is reached.
pub const ADDRESS_SETTINGS: [&str; 3] = ["port", "listen_addresses", "unix_socket_directories"];

/// How long a started standby has to report its WAL receiver streaming.
const STREAM_WAIT: Duration = Duration::from_secs(60);

/// The configuration files a copy brings that a cluster configured elsewhere never reads.
const COPIED_CONF_FILES: [&str; 3] = ["postgresql.conf", "pg_hba.conf", "pg_ident.conf"];

/// The values `layout`'s configuration gives the [`ADDRESS_SETTINGS`] (`None`: no file sets it).
pub fn address_settings(layout: &Layout) -> Result<Vec<(String, Option<String>)>, ReplicaError> {
    let tree = layout.conf_tree()?;
    Ok(ADDRESS_SETTINGS.iter().map(|name| (name.to_string(), tree.effective(name).map(|s| s.value))).collect())
}

/// What to write into postgresql.auto.conf so a server whose files were replaced by a copy (`after`) is
/// reached where it was (`before`): each address setting whose value changed, with its old value. A value
/// the old configuration left to the server's default is written as that default where it is fixed (port
/// 5432, listen_addresses `localhost`); the default socket directory depends on the build, so that one is
/// left to the copy, with a warning.
pub fn kept_settings(before: &[(String, Option<String>)], after: &[(String, Option<String>)]) -> Vec<(String, String)> {
    let mut keep = Vec::new();
    for (name, old) in before {
        let new = after.iter().find(|(n, _)| n == name).and_then(|(_, v)| v.clone());
        if *old == new {
            continue;
        }
        let value = match (old.as_deref(), name.as_str()) {
            (Some(v), _) => v.to_owned(),
            (None, "port") => "5432".to_owned(),
            (None, "listen_addresses") => "localhost".to_owned(),
            (None, _) => {
                tracing::warn!(
                    "the copy sets {name} = {:?}, which this server left to its built-in default; it now uses the copy's",
                    new.unwrap_or_default()
                );
                continue;
            }
        };
        keep.push((name.clone(), value));
    }
    keep
}

/// Removes the copies of `postgresql.conf`, `pg_hba.conf` and `pg_ident.conf` from `data_dir` when the
/// cluster's own configuration (`layout`) lives elsewhere: the server never reads them, and a data
/// directory with a `postgresql.conf` looks like initdb's layout to whoever finds it next. They are copies
/// of the source server's files, which keeps its own. Returns what was removed.
pub fn remove_unread_copies(data_dir: &Path, layout: &Layout) -> Result<Vec<PathBuf>, ReplicaError> {
    if !layout.config_outside_data_dir() {
        return Ok(Vec::new());
    }
    let mut removed = Vec::new();
    for name in COPIED_CONF_FILES {
        let path = data_dir.join(name);
        if path == layout.config_file || path == layout.hba_file || !path.exists() {
            continue;
        }
        std::fs::remove_file(&path).map_err(|source| ReplicaError::Io {
            what: "remove",
            path: path.clone(),
            source,
        })?;
        tracing::info!(
            "removed {}: a copy of the source server's file, which this cluster does not read (its own are in {})",
            path.display(),
            layout.config_file.parent().unwrap_or(Path::new("/")).display()
        );
        removed.push(path);
    }
    Ok(removed)
}

/// pg_ctl of exactly `major` for `layout`'s data directory, as its owner, logging where the running server
/// logs (or, for a server that is down, to qrd's own file outside the data directory).
pub fn pg_ctl_for(layout: &Layout, major: u32, finder: &Finder) -> Result<PgCtl, ReplicaError> {
    let version = PgVersion { major, minor: 0, text: major.to_string() };
    let pg_ctl = finder.find(Tool::PgCtl, &version)?;
    let ctl = PgCtl::for_owner(&pg_ctl.path, &layout.data_dir)?;
    let log = log_destination(&layout.data_dir, ctl.identity())?;
    Ok(ctl.log_file(log))
}

/// What starts and stops the server of `layout`: pg_ctlcluster for a Debian cluster, its systemd unit, else
/// pg_ctl of `major` (looked for only then).
pub fn service_of(layout: &Layout, major: u32, finder: &Finder) -> Result<Service, ReplicaError> {
    Service::detect(&layout.data_dir, &layout.config_file, || pg_ctl_for(layout, major, finder))
}

/// Where the server of `service` logs, for the DBA to look.
pub fn log_of(service: &Service) -> String {
    match service.manager() {
        Manager::PgCtlCluster { version, cluster, .. } => {
            format!("/var/log/postgresql/postgresql-{version}-{cluster}.log")
        }
        Manager::Systemd { unit } => format!("journalctl -u {unit}"),
        Manager::PgCtl(ctl) => ctl.log().map(|p| p.display().to_string()).unwrap_or_else(|| "its log".into()),
    }
}

/// Starts the standby of `layout` (PostgreSQL `major`) through its service and waits until its WAL receiver
/// streams.
pub async fn start_and_wait(
    layout: &Layout,
    major: u32,
    finder: &Finder,
    owner: &Identity,
    superuser: Option<&str>,
) -> Result<String, ReplicaError> {
    let service = service_of(layout, major, finder)?;
    service.start().await?;
    tracing::info!("standby started ({service}); waiting for it to stream");
    wait_streaming(layout, owner, superuser, &log_of(&service)).await
}

/// Waits until the server of `layout` reports its WAL receiver streaming (`pg_stat_wal_receiver`), asked
/// through its own socket (port and socket directory from its configuration) as its owner: the role
/// `superuser`, else the owner's name, else `postgres`, the first the server knows. `log` names where the
/// server logs, for the error.
pub async fn wait_streaming(
    layout: &Layout,
    owner: &Identity,
    superuser: Option<&str>,
    log: &str,
) -> Result<String, ReplicaError> {
    let socket = layout.socket()?;
    let mut users: Vec<String> = Vec::new();
    for u in superuser.into_iter().chain(owner.name()).chain(["postgres"]) {
        if !users.iter().any(|known| known == u) {
            users.push(u.to_owned());
        }
    }
    // The role tried now; one the server refuses moves this on for good.
    let user = AtomicUsize::new(0);
    let (socket, users) = (&socket, &users);
    let streams = poll_until(Instant::now() + STREAM_WAIT, "its WAL receiver streams", || {
        let user = &user;
        async move {
            loop {
                let client = match socket
                    .connect_as_owner(&users[user.load(Ordering::Relaxed)], "postgres", owner)
                    .await
                {
                    Ok(client) => client,
                    // A role this server does not have, or one the socket's rule does not let in: the next one.
                    Err(e) if e.kind == ConnectErrorKind::Auth && user.load(Ordering::Relaxed) + 1 < users.len() => {
                        tracing::debug!("{e}; trying the next role");
                        user.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    // Waiting cannot change who may log in.
                    Err(e) if matches!(e.kind, ConnectErrorKind::Auth | ConnectErrorKind::PasswordMissing) => {
                        return Err(ReplicaError::from(e));
                    }
                    Err(e) => return Ok(Check::Pending(e.to_string())),
                };
                return Ok(match client.query_one(RECEIVER.text, &[]).await {
                    Ok(row) => match row.get::<_, Option<String>>("status") {
                        Some(status) if status == "streaming" => Check::Done(status),
                        status => Check::Pending(format!(
                            "its WAL receiver is {}",
                            status.as_deref().unwrap_or("not running")
                        )),
                    },
                    Err(e) => Check::Pending(qrd_pg::connect::server_message(&e)),
                });
            }
        }
    })
    .await;
    streams.map_err(|e| {
        ReplicaError::from_wait(e, |waited| ReplicaError::NotStreaming {
            dir: layout.data_dir.clone(),
            waited,
            log: log.to_owned(),
        })
    })
}

/// Refuses a `--data-dir` that is not the data directory of the server `session` reaches: qrd would stop,
/// promote or reconfigure another cluster than the one it talks to.
pub async fn check_data_dir(session: &qrd_pg::Session, layout: &Layout) -> Result<(), ReplicaError> {
    let actual: String = session
        .client()
        .query_one("SELECT current_setting('data_directory')", &[])
        .await
        .map_err(|e| qrd_pg::inventory::QueryError::query("data_directory", &session.target().dbname, &e))?
        .get(0);
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    if canon(Path::new(&actual)) != canon(&layout.data_dir) {
        return Err(qrd_server::LocalError::OtherDataDir {
            given: layout.data_dir.clone(),
            actual: PathBuf::from(actual),
            address: session.target().address(),
        }
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(port: Option<&str>, listen: Option<&str>, sockets: Option<&str>) -> Vec<(String, Option<String>)> {
        [("port", port), ("listen_addresses", listen), ("unix_socket_directories", sockets)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.map(str::to_owned)))
            .collect()
    }

    /// pg_rewind copied the new primary's postgresql.conf: its port and listen address; the old primary's
    /// own values come back, and what did not change is not written.
    #[test]
    fn a_copy_that_moves_the_server_gets_its_own_values_back() {
        let before = settings(Some("5433"), Some("10.0.0.11"), Some("/var/run/postgresql"));
        let after = settings(Some("5432"), Some("10.0.0.12"), Some("/var/run/postgresql"));
        assert_eq!(
            kept_settings(&before, &after),
            [("port".to_owned(), "5433".to_owned()), ("listen_addresses".to_owned(), "10.0.0.11".to_owned())]
        );
        assert_eq!(kept_settings(&before, &before), []);
    }

    /// A server that ran on the defaults keeps them where they are fixed values.
    #[test]
    fn defaults_are_written_where_they_are_known() {
        let before = settings(None, None, None);
        let after = settings(Some("5433"), Some("*"), Some("/tmp"));
        assert_eq!(
            kept_settings(&before, &after),
            [("port".to_owned(), "5432".to_owned()), ("listen_addresses".to_owned(), "localhost".to_owned())]
        );
    }

    /// On Debian's layout the copied configuration files go; in initdb's they are the server's own.
    #[test]
    fn copied_configuration_is_removed_only_where_it_is_not_read() {
        let d = tempfile::tempdir().unwrap();
        let data = d.path().join("data");
        let etc = d.path().join("etc");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::create_dir_all(&etc).unwrap();
        for f in COPIED_CONF_FILES.iter().chain(["postgresql.auto.conf"].iter()) {
            std::fs::write(data.join(f), "").unwrap();
        }
        let inside = Layout {
            data_dir: data.clone(),
            config_file: data.join("postgresql.conf"),
            hba_file: data.join("pg_hba.conf"),
            major: Some(15),
        };
        assert_eq!(remove_unread_copies(&data, &inside).unwrap(), Vec::<PathBuf>::new());
        let debian = Layout {
            data_dir: data.clone(),
            config_file: etc.join("postgresql.conf"),
            hba_file: etc.join("pg_hba.conf"),
            major: Some(15),
        };
        let removed = remove_unread_copies(&data, &debian).unwrap();
        assert_eq!(removed, COPIED_CONF_FILES.map(|f| data.join(f)));
        assert!(data.join("postgresql.auto.conf").exists(), "the server reads postgresql.auto.conf from here");
    }
}
