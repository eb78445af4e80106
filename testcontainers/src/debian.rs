//! A PostgreSQL cluster as Debian and Ubuntu package it, for tests of what qrd does on such machines:
//! made with `pg_createcluster` (configuration in `/etc/postgresql/<version>/<name>/`, data in
//! `/var/lib/postgresql/<version>/<name>`, log in `/var/log/postgresql/`), started with `pg_ctlcluster`,
//! owned by the `postgres` user, `peer` authentication on the socket, and `ssl = on` with the snakeoil
//! certificate whose key (`/etc/ssl/private/ssl-cert-snakeoil.key`, 0640 root:ssl-cert) the server reads
//! only through its `ssl-cert` group. Removed with `pg_dropcluster --stop` on drop, also when a test panics
//! (its log printed first). Needs root, like the packaged tools themselves.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use qrd_pgbin::{Identity, ToolError, display_command, scrubbed_command};
use tokio_postgres::{Client, NoTls};

use crate::HarnessError;
use crate::error::run;
use crate::server::{error_text, random_password, spawn_connection, tail};

/// The major Debian packages on our machines (bookworm's postgresql-15).
pub const DEBIAN_MAJOR: u32 = 15;
/// The snakeoil certificate's key, which pg_createcluster configures when `postgres` is in `ssl-cert`.
pub const SNAKEOIL_KEY: &str = "/etc/ssl/private/ssl-cert-snakeoil.key";
const SNAKEOIL_CERT: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
/// Our clusters are named `qrd_<pid>_<random>`: the pid lets a later run remove what a killed one left.
const NAME_PREFIX: &str = "qrd_";
const LOG_TAIL_LINES: usize = 200;
const PORT_ATTEMPTS: u32 = 5;
const INSTALL_HINT: &str =
    "run testcontainers/install-postgres.sh as root (it installs postgresql-common and ssl-cert)";

/// A running Debian-packaged cluster; see the module documentation.
pub struct DebianCluster {
    name: String,
    port: u16,
    password: String,
    /// Holds the socket directory (`sock/`, made by pg_createcluster for `postgres`); removed on drop.
    dir: Option<tempfile::TempDir>,
    socket_dir: PathBuf,
    dropped: bool,
}

impl DebianCluster {
    /// Creates and starts a cluster of [`DEBIAN_MAJOR`] on a free loopback port; panics with the reason (and
    /// what to do) when it cannot.
    pub fn start() -> DebianCluster {
        Self::create().unwrap_or_else(|e| panic!("failed to create a Debian-packaged PostgreSQL cluster: {e}"))
    }

    pub fn create() -> Result<DebianCluster, HarnessError> {
        let action = "create a Debian-packaged cluster";
        if !nix::unistd::geteuid().is_root() {
            return Err(HarnessError::Unsupported {
                action: action.to_owned(),
                reason: "pg_createcluster and pg_dropcluster need root; run the tests as root (as CI does)".to_owned(),
            });
        }
        for tool in ["/usr/bin/pg_createcluster", "/usr/bin/pg_ctlcluster", "/usr/bin/pg_dropcluster"] {
            if !Path::new(tool).exists() {
                return Err(HarnessError::Unsupported {
                    action: action.to_owned(),
                    reason: format!("{tool} is missing; {INSTALL_HINT}"),
                });
            }
        }
        ensure_snakeoil()?;
        remove_stale_clusters();
        let mut attempt = 1;
        loop {
            match Self::create_once() {
                Ok(cluster) => return Ok(cluster),
                // Another process may take the probed port before the server binds it.
                Err((e, log))
                    if attempt < PORT_ATTEMPTS && (log.contains("could not bind") || log.contains("Port conflict")) =>
                {
                    tracing::debug!(attempt, error = %e, "port taken meanwhile; trying another");
                    attempt += 1;
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    /// One attempt; on failure, the error and the cluster's log (the cluster is dropped again).
    fn create_once() -> Result<DebianCluster, (HarnessError, String)> {
        let fail = |e: HarnessError| (e, String::new());
        let dir = tempfile::Builder::new()
            .prefix("qrd-deb-")
            .tempdir_in("/tmp")
            .map_err(|e| fail(HarnessError::io("create a temp dir in", "/tmp", e)))?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .map_err(|e| fail(HarnessError::io("set mode 755 on", dir.path(), e)))?;
        let socket_dir = dir.path().join("sock");
        let suffix: String = random_password().map_err(fail)?.to_lowercase().chars().take(8).collect();
        let name = format!("{NAME_PREFIX}{}_{suffix}", std::process::id());
        let port = free_port().map_err(fail)?;
        let cluster = DebianCluster {
            name,
            port,
            password: random_password().map_err(fail)?,
            dir: Some(dir),
            socket_dir,
            dropped: false,
        };

        let mut cmd = scrubbed_command("/usr/bin/pg_createcluster");
        cmd.args([&DEBIAN_MAJOR.to_string(), &cluster.name, "--port", &port.to_string(), "--socketdir"])
            .arg(&cluster.socket_dir)
            // Never started at boot; it is a throwaway.
            .args(["--start-conf", "manual", "--locale", "C.UTF-8"]);
        run(&mut cmd, &format!("create the cluster {DEBIAN_MAJOR}/{}", cluster.name)).map_err(fail)?;
        // Loopback only, whatever the packaged default says. Not through `--pgoption`: postgresql-common
        // writes a value that looks like a number (127.0.0.1) unquoted, which the server cannot parse.
        cluster.append_conf("listen_addresses = '127.0.0.1'").map_err(fail)?;
        let mut start = scrubbed_command("/usr/bin/pg_ctlcluster");
        start.args([&DEBIAN_MAJOR.to_string(), &cluster.name, "start"]);
        if let Err(e) = run(&mut start, &format!("start the cluster {DEBIAN_MAJOR}/{}", cluster.name)) {
            let log = cluster.log();
            return Err((e, log));
        }
        cluster.set_password().map_err(|e| (e, String::new()))?;
        tracing::debug!(name = %cluster.name, port, "Debian cluster ready");
        Ok(cluster)
    }

    /// Appends a line to postgresql.conf (the last occurrence of a setting wins); owner and mode stay.
    fn append_conf(&self, line: &str) -> Result<(), HarnessError> {
        let path = self.config_file();
        let mut file =
            std::fs::OpenOptions::new().append(true).open(&path).map_err(|e| HarnessError::io("open", &path, e))?;
        writeln!(file, "\n# qrd-testcontainers\n{line}").map_err(|e| HarnessError::io("append to", &path, e))
    }

    /// Gives `postgres` a password for TCP logins: the socket is `peer`, which root cannot pass. The SQL goes
    /// to psql on stdin, holding a SCRAM verifier computed here: no password in argv or in SQL text.
    fn set_password(&self) -> Result<(), HarnessError> {
        let verifier = qrd_pg::password::verifier::compute(
            qrd_pg::password::verifier::Encryption::ScramSha256,
            &qrd_pg::Secret::new(self.password.as_str()),
            "postgres",
        );
        let literal = qrd_pg::quote::literal(&verifier)
            .map_err(|e| HarnessError::Invalid { what: "password verifier", reason: e.to_string() })?;
        self.psql_as_owner(&format!("ALTER ROLE postgres PASSWORD {literal};\n")).map(drop)
    }

    /// Runs `sql` with psql as the `postgres` OS user through the socket (peer authentication), returning
    /// psql's unaligned, tuples-only output.
    pub fn psql_as_owner(&self, sql: &str) -> Result<String, HarnessError> {
        let owner = Identity::from_name("postgres").map_err(|e| HarnessError::Unsupported {
            action: "find the postgres OS user".to_owned(),
            reason: format!("{e}; {INSTALL_HINT}"),
        })?;
        let mut cmd = scrubbed_command(self.bin_dir().join("psql"));
        cmd.args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&self.socket_dir)
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", "postgres"])
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        owner.apply_to(&mut cmd);
        let action = format!("run SQL on the cluster {DEBIAN_MAJOR}/{}", self.name);
        let command = display_command(&cmd);
        let mut child = cmd.spawn().map_err(|e| ToolError::spawn(&action, &command, e))?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let written = stdin.write_all(sql.as_bytes());
        drop(stdin);
        let out = child.wait_with_output().map_err(|e| ToolError::spawn(&action, &command, e))?;
        if let Err(e) = written {
            return Err(ToolError::spawn(&action, &command, e).into());
        }
        if !out.status.success() {
            return Err(ToolError::exited(&action, &command, &out).into());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn major(&self) -> u32 {
        DEBIAN_MAJOR
    }

    /// 127.0.0.1: the only address the cluster listens on.
    pub fn host(&self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's own socket directory (not the shared /var/run/postgresql).
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// `/etc/postgresql/<major>/<name>`.
    pub fn config_dir(&self) -> PathBuf {
        PathBuf::from(format!("/etc/postgresql/{DEBIAN_MAJOR}/{}", self.name))
    }

    pub fn config_file(&self) -> PathBuf {
        self.config_dir().join("postgresql.conf")
    }

    /// `/var/lib/postgresql/<major>/<name>`.
    pub fn data_dir(&self) -> PathBuf {
        PathBuf::from(format!("/var/lib/postgresql/{DEBIAN_MAJOR}/{}", self.name))
    }

    /// `/var/log/postgresql/postgresql-<major>-<name>.log`, where pg_ctlcluster sends the server's output.
    pub fn log_path(&self) -> PathBuf {
        PathBuf::from(format!("/var/log/postgresql/postgresql-{DEBIAN_MAJOR}-{}.log", self.name))
    }

    /// The packaged server programs (pg_ctl, postgres, psql).
    pub fn bin_dir(&self) -> PathBuf {
        PathBuf::from(format!("/usr/lib/postgresql/{DEBIAN_MAJOR}/bin"))
    }

    pub fn log(&self) -> String {
        std::fs::read(self.log_path()).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    }

    pub fn superuser(&self) -> &str {
        "postgres"
    }

    /// The password of `postgres` for TCP logins (scram-sha-256 from 127.0.0.1, as packaged).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Environment for a client child process (e.g. the `qrd` binary): TCP to 127.0.0.1 as `postgres` with
    /// its password, database `postgres`.
    pub fn client_env(&self) -> Vec<(String, String)> {
        vec![
            ("PGHOST".to_owned(), self.host().to_string()),
            ("PGPORT".to_owned(), self.port.to_string()),
            ("PGUSER".to_owned(), "postgres".to_owned()),
            ("PGPASSWORD".to_owned(), self.password.clone()),
            ("PGDATABASE".to_owned(), "postgres".to_owned()),
        ]
    }

    /// A TCP connection (no TLS, 5 s timeout) as `postgres` with its password.
    pub async fn try_connect(&self, db: &str) -> Result<Client, tokio_postgres::Error> {
        let (client, connection) = tokio_postgres::Config::new()
            .host(self.host().to_string())
            .hostaddr(self.host())
            .port(self.port)
            .dbname(db)
            .user("postgres")
            .password(&self.password)
            .connect_timeout(Duration::from_secs(5))
            .connect(NoTls)
            .await?;
        spawn_connection(connection);
        Ok(client)
    }

    /// As [`DebianCluster::try_connect`]; panics with the server's message and the log's last lines.
    pub async fn connect(&self, db: &str) -> Client {
        match self.try_connect(db).await {
            Ok(c) => c,
            Err(e) => panic!(
                "failed to connect to the Debian cluster {DEBIAN_MAJOR}/{} at 127.0.0.1:{}: {}\n{}",
                self.name,
                self.port,
                error_text(&e),
                self.log_excerpt()
            ),
        }
    }

    /// Stops the cluster (`pg_ctlcluster … stop`, fast) as a DBA would; panics with the log when it fails.
    pub fn stop(&self) {
        let mut cmd = scrubbed_command("/usr/bin/pg_ctlcluster");
        cmd.args([&DEBIAN_MAJOR.to_string(), &self.name, "stop"]);
        if let Err(e) = run(&mut cmd, &format!("stop the cluster {DEBIAN_MAJOR}/{}", self.name)) {
            panic!("{e}\n{}", self.log_excerpt());
        }
    }

    /// What `pg_lsclusters` says of the cluster: its port (from its configuration in /etc) and status
    /// (`online`, `down`, `online,recovery` …).
    pub fn lsclusters(&self) -> (u16, String) {
        let mut cmd = scrubbed_command("/usr/bin/pg_lsclusters");
        cmd.args(["--no-header", &DEBIAN_MAJOR.to_string(), &self.name]);
        let out =
            run(&mut cmd, &format!("list the cluster {DEBIAN_MAJOR}/{}", self.name)).unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let fields: Vec<&str> = text.split_whitespace().collect();
        match fields.as_slice() {
            [_, name, port, status, ..] if *name == self.name => {
                (port.parse().unwrap_or_else(|_| panic!("pg_lsclusters: port {port:?}")), (*status).to_owned())
            }
            _ => panic!("pg_lsclusters does not list {DEBIAN_MAJOR}/{}: {text:?}", self.name),
        }
    }

    /// Whether a server runs for the cluster (`pg_ctlcluster … status`).
    pub fn is_running(&self) -> bool {
        let mut cmd = scrubbed_command("/usr/bin/pg_ctlcluster");
        cmd.args([&DEBIAN_MAJOR.to_string(), &self.name, "status"]).stdout(Stdio::null()).stderr(Stdio::null());
        cmd.status().is_ok_and(|s| s.success())
    }

    pub fn log_excerpt(&self) -> String {
        format!(
            "--- last lines of the cluster log {} ---\n{}--- end of the cluster log ---",
            self.log_path().display(),
            tail(&self.log(), LOG_TAIL_LINES)
        )
    }

    fn drop_cluster(&mut self) {
        if std::mem::replace(&mut self.dropped, true) {
            return;
        }
        let mut cmd = scrubbed_command("/usr/bin/pg_dropcluster");
        cmd.args(["--stop", &DEBIAN_MAJOR.to_string(), &self.name]);
        if let Err(e) = run(&mut cmd, &format!("drop the cluster {DEBIAN_MAJOR}/{}", self.name)) {
            eprintln!("qrd-testcontainers: {e}");
        }
        let _ = std::fs::remove_file(self.log_path());
        remove_leftovers(&self.name);
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
    }
}

impl std::fmt::Debug for DebianCluster {
    /// Without the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DebianCluster")
            .field("name", &self.name)
            .field("port", &self.port)
            .field("socket_dir", &self.socket_dir)
            .finish_non_exhaustive()
    }
}

impl Drop for DebianCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "===== qrd-testcontainers: Debian cluster {DEBIAN_MAJOR}/{} (port {}) =====\n{}",
                self.name,
                self.port,
                self.log_excerpt()
            );
        }
        self.drop_cluster();
    }
}

/// The snakeoil certificate must exist with its key readable only through `ssl-cert`, and `postgres` must
/// be in that group, or pg_createcluster leaves ssl off and the tests would prove nothing about groups.
fn ensure_snakeoil() -> Result<(), HarnessError> {
    if !Path::new(SNAKEOIL_KEY).exists() || !Path::new(SNAKEOIL_CERT).exists() {
        let mut cmd = Command::new("/usr/sbin/make-ssl-cert");
        cmd.arg("generate-default-snakeoil");
        run(&mut cmd, "make the snakeoil certificate")?;
    }
    let unsupported = |reason: String| HarnessError::Unsupported {
        action: "set up a Debian cluster whose TLS key is readable only through the ssl-cert group".to_owned(),
        reason: format!("{reason}; {INSTALL_HINT}"),
    };
    let group = nix::unistd::Group::from_name("ssl-cert")
        .ok()
        .flatten()
        .ok_or_else(|| unsupported("the group ssl-cert does not exist".to_owned()))?;
    let meta = std::fs::metadata(SNAKEOIL_KEY).map_err(|e| HarnessError::io("read", SNAKEOIL_KEY, e))?;
    if meta.gid() != group.gid.as_raw() || meta.mode() & 0o004 != 0 || meta.mode() & 0o040 == 0 {
        return Err(unsupported(format!(
            "{SNAKEOIL_KEY} is mode {:o}, group {}: it should be 0640 root:ssl-cert",
            meta.mode() & 0o777,
            meta.gid()
        )));
    }
    let postgres = Identity::from_name("postgres").map_err(|e| unsupported(e.to_string()))?;
    if !postgres.groups().contains(&group.gid.as_raw()) {
        return Err(unsupported("the postgres user is not in the ssl-cert group".to_owned()));
    }
    Ok(())
}

/// Drops clusters of ours whose creating process is gone (a run killed before its drops ran).
fn remove_stale_clusters() {
    let Ok(entries) = std::fs::read_dir(format!("/etc/postgresql/{DEBIAN_MAJOR}")) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) =
            name.strip_prefix(NAME_PREFIX).and_then(|r| r.split('_').next()).and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let mut cmd = scrubbed_command("/usr/bin/pg_dropcluster");
        cmd.args(["--stop", &DEBIAN_MAJOR.to_string(), &name]);
        match run(&mut cmd, &format!("drop the stale cluster {DEBIAN_MAJOR}/{name}")) {
            Ok(_) => eprintln!("qrd-testcontainers: dropped the stale cluster {DEBIAN_MAJOR}/{name} of a dead run"),
            Err(e) => eprintln!("qrd-testcontainers: {e}"),
        }
        remove_leftovers(&name);
    }
}

/// What qrd leaves beside a cluster's data directory, which pg_dropcluster does not know: a standby's
/// replication passfile (`.NAME.qrd-replication.pgpass`) and the contents a `--force` clone kept aside
/// (`NAME.qrd-old-…`). Our cluster names are unique, so these are ours.
fn remove_leftovers(name: &str) {
    let parent = PathBuf::from(format!("/var/lib/postgresql/{DEBIAN_MAJOR}"));
    let Ok(entries) = std::fs::read_dir(&parent) else { return };
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if file.starts_with(&format!("{name}.qrd-")) || file.starts_with(&format!(".{name}.qrd-")) {
            let path = entry.path();
            let _ = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        }
    }
}

fn free_port() -> Result<u16, HarnessError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| HarnessError::io("bind a probe socket on 127.0.0.1 port 0 (free port for)", "the cluster", e))?;
    Ok(listener.local_addr().map_err(|e| HarnessError::io("read the probe socket's port", "", e))?.port())
}
