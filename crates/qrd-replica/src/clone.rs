//! `qrd standby clone`: a new standby's data directory from the primary, configured to stream from it.
//!
//! - The target is a data directory, or on Debian and Ubuntu the data directory of a cluster the DBA made
//!   with `pg_createcluster` (`-D /var/lib/postgresql/16/main`, or its `/etc/postgresql/16/main`): then the
//!   data directory is replaced by the copy and the configuration stays in `/etc` — the cluster keeps its own
//!   port, socket directory, pg_hba.conf and start-up through `pg_ctlcluster`; the primary's configuration
//!   files that came with the copy are removed (the cluster never reads them).
//! - Refuses a data directory where a server runs, always, and a non-empty one unless `--force` (which
//!   keeps it aside as `DIR.qrd-old-<time>`: nothing is deleted). A clone over an existing cluster keeps where
//!   that cluster was reached (`port`, `listen_addresses`, `unix_socket_directories`).
//! - Asks the primary its version over a replication connection (the replication role may not open
//!   anything else), then runs a `pg_basebackup` of that major or newer, `-X stream` and a fast checkpoint,
//!   into `DIR.qrd-partial-…` beside the target, as the server's OS user; the directory gets its final
//!   name only when the copy is complete.
//! - Configures it the way PostgreSQL 12 and later read it ([`crate::configure`]): `standby.signal` and
//!   `primary_conninfo` in `postgresql.auto.conf`, with the password in a 0600 password file beside the data
//!   directory (`passfile=`), never in the conninfo, a file of the data directory, or anyone's argv.
//!   `pg_basebackup -R` would write the password into the conninfo; qrd does not use it.
//! - `--slot`, `--port` (a standby on the primary's machine needs its own), `--trigger-file` (the guide's
//!   failover trigger, `promote_trigger_file`: PostgreSQL 12–15 only; 16 removed it).
//! - `--start`: starts it through its service (pg_ctlcluster, systemd, else pg_ctl of its own major as its
//!   owner) and succeeds once `pg_stat_wal_receiver` shows it streaming.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use qrd_pg::Secret;
use qrd_pgbin::{Finder, Identity, Passfile, PgVersion, Tool, run, scrubbed_command};
use qrd_server::Layout;
use qrd_server::pgctl::running_postmaster;

use crate::configure::{Link, configure_standby};
use crate::error::ReplicaError;
use crate::local::{address_settings, kept_settings, remove_unread_copies, start_and_wait};

#[derive(Debug, Clone)]
pub struct CloneRequest {
    pub primary_host: String,
    pub primary_port: u16,
    pub data_dir: PathBuf,
    pub replicator: String,
    pub password: Secret,
    pub slot: Option<String>,
    /// The standby's own port (written to its postgresql.auto.conf); default: the cluster's own when the
    /// clone replaces one (a Debian cluster, `--force`), else the primary's.
    pub port: Option<u16>,
    pub trigger_file: Option<PathBuf>,
    /// The OS user the data directory belongs to; default: the owner of its parent directory.
    pub os_user: Option<String>,
    /// `application_name` the primary sees (pg_stat_replication); default: the data directory's name.
    pub name: Option<String>,
    pub force: bool,
    pub start: bool,
    /// `sslmode` of the standby's connection to the primary.
    pub sslmode: String,
    /// The standby's superuser for the `--start` check through its socket [default: the OS user's name,
    /// then `postgres`].
    pub superuser: Option<String>,
}

/// The result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Cloned {
    pub data_dir: PathBuf,
    pub primary: String,
    pub primary_version: String,
    pub pg_basebackup: String,
    pub passfile: PathBuf,
    pub application_name: String,
    /// Where a non-empty directory was kept (`--force`).
    pub kept_aside: Option<PathBuf>,
    pub seconds: f64,
    /// With `--start`: the receiver's status once it streams.
    pub streaming: Option<String>,
    /// Where the cluster's configuration lives (`/etc/postgresql/…` on Debian; else in the data directory).
    pub config_file: PathBuf,
    /// Settings written so the cluster stays reached where it was (and `--port`).
    pub kept: BTreeMap<String, String>,
}

/// Clones the primary into `req.data_dir` (see the module documentation).
///
/// Any failure before the copy has its final name (pg_basebackup's, or qrd interrupted by Ctrl-C or SIGTERM,
/// which stops pg_basebackup) removes the partial copy; the target is untouched until then.
pub async fn clone(req: &CloneRequest, finder: &Finder) -> Result<Cloned, ReplicaError> {
    let started = Instant::now();
    // A data directory, or Debian's configuration directory of one.
    let dir = Layout::from_dir(&req.data_dir).data_dir;
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_owned();
    let io = |what: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| ReplicaError::Io { what, path, source }
    };

    // The target: never where a server runs; empty, or kept aside with --force.
    if let Some(pid) = running_postmaster(&dir) {
        return Err(ReplicaError::ServerRunning { dir, pid });
    }
    let non_empty = std::fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(false);
    if non_empty && !req.force {
        return Err(ReplicaError::NotEmpty { dir });
    }
    if let Some(trigger) = &req.trigger_file
        && !trigger.is_absolute()
    {
        return Err(ReplicaError::TriggerNotAbsolute { path: trigger.clone() });
    }

    // Who owns it.
    let owner = match &req.os_user {
        Some(name) => Identity::from_name(name).map_err(|e| ReplicaError::OsUser { message: e.to_string() })?,
        None => Identity::owner_of(&parent).map_err(|e| ReplicaError::OsUser { message: e.to_string() })?,
    };
    if owner.uid() == 0 {
        return Err(ReplicaError::OsUser {
            message: format!("{} belongs to root; name the server's OS user with --os-user", parent.display()),
        });
    }
    let as_owner = |cmd: &mut std::process::Command| {
        if !owner.is_current() {
            owner.apply_to(cmd);
        }
    };

    // The password, for the children, in a file only the owner reads.
    let passfile = Passfile::for_entry("*", "*", "*", &req.replicator, req.password.expose())
        .map_err(|source| ReplicaError::Io { what: "write a password file", path: std::env::temp_dir(), source })?;
    std::os::unix::fs::chown(passfile.path(), Some(owner.uid()), Some(owner.gid()))
        .map_err(io("give the password file to the server's user", passfile.path()))?;
    let env = |cmd: &mut std::process::Command| {
        cmd.env("PGHOST", &req.primary_host)
            .env("PGPORT", req.primary_port.to_string())
            .env("PGUSER", &req.replicator)
            .env("PGSSLMODE", &req.sslmode)
            .env("PGAPPNAME", "qrd")
            .env("PGCONNECT_TIMEOUT", "10");
        passfile.apply(cmd);
        cmd.current_dir("/");
    };

    // The primary's version, over a replication connection.
    let any = PgVersion { major: 12, minor: 0, text: "12".into() };
    let psql = finder.find(Tool::Psql, &any)?;
    let mut cmd = scrubbed_command(&psql.path);
    env(&mut cmd);
    cmd.args(["-X", "-A", "-t", "--no-password", "-d", "replication=true", "-c", "SHOW server_version_num"]);
    as_owner(&mut cmd);
    let out = run(cmd, "ask the primary its version (a replication connection as the replicator)").await?;
    let num: u32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| ReplicaError::Internal("the primary did not say its server_version_num".into()))?;
    let primary_version =
        PgVersion { major: num / 10_000, minor: num % 100, text: format!("{}.{}", num / 10_000, num % 100) };
    let major = primary_version.major;
    if major >= 16 && req.trigger_file.is_some() {
        return Err(ReplicaError::TriggerFileRemoved { major });
    }

    // The cluster the copy becomes: Debian's when /etc/postgresql/<major>/<name> is there for this
    // directory (also when the DBA emptied it), else initdb's layout. An existing cluster's configuration
    // says where it is reached; the copy must not move it.
    let layout = Layout::for_major(&dir, major);
    if layout.config_outside_data_dir()
        && let Some(cluster_major) = layout.major
        && cluster_major != major
    {
        return Err(ReplicaError::ClusterMajor {
            dir,
            config: layout.config_file,
            cluster_major,
            primary_major: major,
        });
    }
    let before = if !layout.config_file.exists() {
        None
    } else if layout.config_outside_data_dir() {
        Some(address_settings(&layout)?)
    } else {
        // A directory being replaced whose configuration cannot be read keeps nothing of it.
        address_settings(&layout)
            .inspect_err(|e| tracing::warn!("the configuration in {} is not read: {e}", dir.display()))
            .ok()
    };
    let basebackup = finder.find(Tool::PgBasebackup, &primary_version)?;

    // The copy, beside the target, as the owner.
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "standby".into());
    let partial = tempfile::Builder::new()
        .prefix(&format!("{name}.qrd-partial-"))
        .tempdir_in(&parent)
        .map_err(io("make a directory in", &parent))?;
    std::os::unix::fs::chown(partial.path(), Some(owner.uid()), Some(owner.gid()))
        .map_err(io("give the new directory to the server's user", partial.path()))?;
    let mut cmd = scrubbed_command(&basebackup.path);
    env(&mut cmd);
    cmd.args(["--no-password", "--wal-method=stream", "--checkpoint=fast", "--pgdata"]).arg(partial.path());
    if let Some(slot) = &req.slot {
        cmd.arg(format!("--slot={slot}"));
    }
    // On a terminal, pg_basebackup's own progress line (its messages then go to the terminal, not into the
    // error); in a log, nothing but the result.
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        cmd.arg("--progress").stderr(std::process::Stdio::inherit());
    }
    as_owner(&mut cmd);
    tracing::info!(
        "cloning {}:{} with pg_basebackup {} (PostgreSQL {} primary)",
        req.primary_host,
        req.primary_port,
        basebackup.version,
        primary_version.text
    );
    // `partial` is removed when this returns early, after pg_basebackup (and its WAL streamer, in its
    // process group) was stopped.
    run(cmd, "copy the primary (pg_basebackup)").await?;

    // The copy's configuration as the cluster will read it: its own in /etc (the primary's copies go), or
    // the copied one.
    let copy = if layout.config_outside_data_dir() {
        remove_unread_copies(partial.path(), &layout)?;
        Layout { data_dir: partial.path().to_owned(), ..layout.clone() }
    } else {
        if !partial.path().join("postgresql.conf").exists() {
            return Err(ReplicaError::NoConfiguration { dir });
        }
        Layout::from_dir(partial.path())
    };
    let mut kept = match &before {
        Some(before) => kept_settings(before, &address_settings(&copy)?),
        None => Vec::new(),
    };
    if let Some(port) = req.port {
        kept.retain(|(name, _)| name != "port");
        kept.push(("port".into(), port.to_string()));
    }

    // Configuration, then the final name.
    let application_name = req.name.clone().unwrap_or_else(|| name.clone());
    let link = Link {
        host: req.primary_host.clone(),
        port: req.primary_port,
        replicator: req.replicator.clone(),
        password: req.password.clone(),
        application_name: application_name.clone(),
        sslmode: req.sslmode.clone(),
        slot: req.slot.clone(),
        trigger_file: req.trigger_file.clone(),
        keep: kept.clone(),
    };
    let pass_path = configure_standby(
        partial.path(),
        &parent.join(format!(".{name}.qrd-replication.pgpass")),
        &link,
        &owner,
        major,
    )?;

    let mut kept_aside = None;
    if non_empty {
        let stamp =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let aside = parent.join(format!("{name}.qrd-old-{stamp}"));
        std::fs::rename(&dir, &aside).map_err(io("keep aside", &dir))?;
        tracing::info!("kept the previous contents of {} as {}", dir.display(), aside.display());
        kept_aside = Some(aside);
    } else if dir.exists() {
        std::fs::remove_dir(&dir).map_err(io("replace the empty directory", &dir))?;
    }
    let partial = partial.keep();
    std::fs::rename(&partial, &dir).map_err(io("give its name to", &partial))?;
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .map_err(io("set the mode of", &dir))?;
    tracing::info!(
        "{} is a standby of {}:{} (standby.signal, primary_conninfo; configuration {})",
        dir.display(),
        req.primary_host,
        req.primary_port,
        layout.config_file.display()
    );

    let layout = Layout::for_major(&dir, major);
    let streaming = if req.start {
        Some(start_and_wait(&layout, major, finder, &owner, req.superuser.as_deref()).await?)
    } else {
        None
    };
    Ok(Cloned {
        data_dir: dir,
        primary: format!("{}:{}", req.primary_host, req.primary_port),
        primary_version: primary_version.text,
        pg_basebackup: basebackup.version.text,
        passfile: pass_path,
        application_name,
        kept_aside,
        seconds: started.elapsed().as_secs_f64(),
        streaming,
        config_file: layout.config_file,
        kept: kept.into_iter().collect(),
    })
}
