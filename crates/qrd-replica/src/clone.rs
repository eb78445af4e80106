//! `qrd standby clone`: a new standby's data directory from the primary, configured to stream from it.
//!
//! - Refuses a data directory where a server runs, always, and a non-empty one unless `--force` (which
//!   keeps it aside as `DIR.qrd-old-<time>`: nothing is deleted).
//! - Asks the primary its version over a replication connection (the replication role may not open
//!   anything else), then runs a `pg_basebackup` of that major or newer, `-X stream` and a fast checkpoint,
//!   into `DIR.qrd-partial-…` beside the target, as the server's OS user; the directory gets its final
//!   name only when the copy is complete.
//! - Configures it the way PostgreSQL 12 and later read it — `standby.signal` and `primary_conninfo` in
//!   `postgresql.auto.conf`; the guide's `recovery.conf` is gone since 12 — with the password in a 0600
//!   password file beside the data directory (`passfile=`), never in the conninfo, a file of the data
//!   directory, or anyone's argv. `pg_basebackup -R` would write the password into the conninfo; qrd does not
//!   use it.
//! - `--slot`, `--port` (a standby on the primary's machine needs its own), `--trigger-file` (the guide's
//!   failover trigger, `promote_trigger_file`: PostgreSQL 12–15 only; 16 removed it).
//! - `--start`: starts it with pg_ctl of its own major, as its owner, and succeeds once
//!   `pg_stat_wal_receiver` shows it streaming.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use qrd_pg::Secret;
use qrd_pgbin::{Finder, Identity, Passfile, PgVersion, Tool, passfile_field, run_blocking, scrubbed_command};
use qrd_server::local::major_of;
use qrd_server::pgctl::{PgCtl, running_postmaster};

use crate::error::ReplicaError;

#[derive(Debug, Clone)]
pub struct CloneRequest {
    pub primary_host: String,
    pub primary_port: u16,
    pub data_dir: PathBuf,
    pub replicator: String,
    pub password: Secret,
    pub slot: Option<String>,
    /// The standby's own port (written to its postgresql.auto.conf); default: the primary's.
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
}

/// Clones the primary into `req.data_dir` (see the module documentation).
pub fn clone(req: &CloneRequest, finder: &Finder) -> Result<Cloned, ReplicaError> {
    let started = Instant::now();
    let dir = req.data_dir.clone();
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
    let out = run_blocking(&mut cmd, "ask the primary its version (a replication connection as the replicator)")?;
    let num: u32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| ReplicaError::Internal("the primary did not say its server_version_num".into()))?;
    let primary_version =
        PgVersion { major: num / 10_000, minor: num % 100, text: format!("{}.{}", num / 10_000, num % 100) };
    if primary_version.major >= 16 && req.trigger_file.is_some() {
        return Err(ReplicaError::TriggerFileRemoved { major: primary_version.major });
    }
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
    run_blocking(&mut cmd, "copy the primary (pg_basebackup)")?;

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
        own_port: req.port,
        trigger_file: req.trigger_file.clone(),
    };
    let pass_path =
        configure_standby(partial.path(), &parent.join(format!(".{name}.qrd-replication.pgpass")), &link, &owner)?;

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
        "{} is a standby of {}:{} (standby.signal, primary_conninfo)",
        dir.display(),
        req.primary_host,
        req.primary_port
    );

    let streaming =
        if req.start { Some(start_and_wait(&dir, finder, &owner, req.superuser.as_deref())?) } else { None };
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
    })
}

/// How a standby reaches its primary.
#[derive(Debug, Clone)]
pub struct Link {
    pub host: String,
    pub port: u16,
    pub replicator: String,
    pub password: Secret,
    pub application_name: String,
    pub sslmode: String,
    pub slot: Option<String>,
    /// The standby's own `port`, when it must differ from what its configuration says.
    pub own_port: Option<u16>,
    pub trigger_file: Option<PathBuf>,
}

/// The keys qrd writes into a standby's postgresql.auto.conf: older values of them (a copied
/// `primary_conninfo` that names the server itself after a failover, the source's `port`) are dropped.
const STANDBY_KEYS: [&str; 4] = ["primary_conninfo", "primary_slot_name", "promote_trigger_file", "port"];
const STANDBY_MARK: &str = "# qrd standby: stream from the primary (the password is in the passfile, not here)";

/// Makes `dir` a standby following `link`: the password in `passfile` (0600, the owner's), then
/// `primary_conninfo` with `passfile=`, the slot, port and trigger file in postgresql.auto.conf, and
/// `standby.signal`. Returns the passfile's path.
pub fn configure_standby(dir: &Path, passfile: &Path, link: &Link, owner: &Identity) -> Result<PathBuf, ReplicaError> {
    let line = format!(
        "{}:{}:replication:{}:{}\n",
        passfile_field(&link.host),
        link.port,
        passfile_field(&link.replicator),
        passfile_field(link.password.expose())
    );
    write_owned(passfile, line.as_bytes(), 0o600, owner)?;
    let conninfo = [
        ("host", link.host.clone()),
        ("port", link.port.to_string()),
        ("user", link.replicator.clone()),
        ("passfile", passfile.display().to_string()),
        ("application_name", link.application_name.clone()),
        ("sslmode", link.sslmode.clone()),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={}", qrd_pgbin::conninfo_value(v)))
    .collect::<Vec<_>>()
    .join(" ");
    let auto_path = dir.join("postgresql.auto.conf");
    let old = std::fs::read_to_string(&auto_path).unwrap_or_default();
    let drop_port = link.own_port.is_some();
    let mut auto: String = old
        .lines()
        .filter(|l| {
            let key = l.split('=').next().unwrap_or("").trim();
            *l != STANDBY_MARK && !(STANDBY_KEYS.contains(&key) && (key != "port" || drop_port))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    auto.push_str(STANDBY_MARK);
    auto.push('\n');
    auto.push_str(&format!("primary_conninfo = {}\n", conf_string(&conninfo)));
    if let Some(slot) = &link.slot {
        auto.push_str(&format!("primary_slot_name = {}\n", conf_string(slot)));
    }
    if let Some(port) = link.own_port {
        auto.push_str(&format!("port = {port}\n"));
    }
    if let Some(trigger) = &link.trigger_file {
        auto.push_str(&format!("promote_trigger_file = {}\n", conf_string(&trigger.display().to_string())));
    }
    write_owned(&auto_path, auto.as_bytes(), 0o600, owner)?;
    write_owned(&dir.join("standby.signal"), b"", 0o600, owner)?;
    Ok(passfile.to_owned())
}

/// Starts the standby (pg_ctl of its own major, as its owner) and waits until its WAL receiver streams.
pub fn start_and_wait(
    dir: &Path,
    finder: &Finder,
    owner: &Identity,
    superuser: Option<&str>,
) -> Result<String, ReplicaError> {
    let major = major_of(dir).ok_or_else(|| ReplicaError::Internal(format!("{} has no PG_VERSION", dir.display())))?;
    let version = PgVersion { major, minor: 0, text: major.to_string() };
    let pg_ctl = finder.find(Tool::PgCtl, &version)?;
    let log_dir = dir.join("log");
    if !log_dir.exists() {
        std::fs::create_dir(&log_dir)
            .and_then(|()| std::os::unix::fs::chown(&log_dir, Some(owner.uid()), Some(owner.gid())))
            .map_err(|source| ReplicaError::Io { what: "make", path: log_dir.clone(), source })?;
    }
    let log = log_dir.join("qrd-standby-start.log");
    let ctl = PgCtl::for_owner(&pg_ctl.path, dir)?.log_file(&log);
    ctl.start()?;
    tracing::info!("standby started; waiting for it to stream");
    let psql = finder.find(Tool::Psql, &version)?;
    let (socket, port) = socket_of(dir);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = String::new();
    // Through its socket as its owner: peer or trust lets the bootstrap superuser in.
    let mut users: Vec<&str> = superuser.into_iter().chain(owner.name()).chain(["postgres"]).collect();
    users.dedup();
    let mut user = 0;
    while Instant::now() < deadline {
        let mut cmd = scrubbed_command(&psql.path);
        cmd.args(["-X", "-A", "-t", "-w", "-d", "postgres", "-h"]).arg(&socket).arg("-p").arg(port.to_string());
        cmd.args(["-U", users[user]]);
        cmd.args(["-c", "SELECT status FROM pg_stat_wal_receiver"]).current_dir("/");
        if !owner.is_current() {
            owner.apply_to(&mut cmd);
        }
        match cmd.output() {
            Ok(out) if out.status.success() => {
                last = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                if last == "streaming" {
                    return Ok(last);
                }
            }
            Ok(out) => {
                last = String::from_utf8_lossy(&out.stderr).trim().to_owned();
                if last.contains("role") && last.contains("does not exist") && user + 1 < users.len() {
                    user += 1;
                    continue;
                }
            }
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(ReplicaError::NotStreaming { dir: dir.to_owned(), last })
}

/// The socket directory and port the standby's configuration names (as the copy holds it).
pub fn socket_of(dir: &Path) -> (String, u16) {
    let mut socket = "/var/run/postgresql".to_owned();
    let mut port = 5432;
    for file in ["postgresql.conf", "postgresql.auto.conf"] {
        for line in std::fs::read_to_string(dir.join(file)).unwrap_or_default().lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            let Some((k, v)) = line.split_once('=') else { continue };
            let v = v.trim().trim_matches('\'');
            match k.trim() {
                "port" => port = v.parse().unwrap_or(port),
                "unix_socket_directories" => {
                    socket = v.split(',').next().unwrap_or(v).trim().to_owned();
                }
                _ => {}
            }
        }
    }
    (socket, port)
}

fn write_owned(path: &Path, bytes: &[u8], mode: u32, owner: &Identity) -> Result<(), ReplicaError> {
    let perms = qrd_conf::write::Perms { uid: owner.uid(), gid: owner.gid(), mode };
    qrd_conf::write::replace_file(path, bytes, perms)
        .map_err(|e| ReplicaError::Io {
            what: "write",
            path: path.to_owned(),
            source: std::io::Error::other(e.to_string()),
        })
        .map(|_| ())
}

/// A postgresql.conf value, by the configuration editor's own rule. Its parts come from the command line
/// and file paths, which cannot hold a NUL.
fn conf_string(s: &str) -> String {
    qrd_conf::pgconf::format_value(s).expect("command-line values and paths hold no NUL")
}
