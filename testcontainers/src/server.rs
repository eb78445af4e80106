//! Throwaway PostgreSQL servers: initdb into a private temp dir, a free port, a private socket dir, and a
//! clean stop and removal on drop (with the server log on stderr when the test panicked).

use std::future::Future;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qrd_pgbin::{Check, Identity, Passfile, PgVersion, scrubbed_command};
use qrd_server::{PgCtl, PgCtlError, StopMode};
use tokio_postgres::{Client, NoTls};

use crate::error::run;
use crate::install::{Tools, installation, tools};
use crate::namespace::Namespace;
use crate::user::{Entry, chown, server_user};
use crate::{HarnessError, Installation};

/// How many ports to try when another process takes the free port between our probe and the server's bind.
const PORT_ATTEMPTS: u32 = 5;
/// Lines of the server log shown in errors and when a test panics.
const LOG_TAIL_LINES: usize = 200;
/// pg_ctl's `-t` for starts and stops.
const PG_CTL_TIMEOUT: Duration = Duration::from_secs(60);
/// What the postmaster logs when it takes a SIGHUP; `reload` waits for it.
const RELOAD_LOG_LINE: &str = "received SIGHUP, reloading configuration files";
/// The superuser's role and its stored password, checked right after the first start.
const SETUP_QUERY: &str = "SELECT current_setting('server_version_num')::int4, \
                           (SELECT rolpassword FROM pg_authid WHERE rolname = current_user)";

/// The pg_hba method of the `host` lines (TCP). The `local` lines (unix socket) are always `trust`, so the
/// harness and tests can always reach the server through its socket, whatever a test does to passwords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostAuth {
    ScramSha256,
    Md5,
    Trust,
}

impl HostAuth {
    /// The method as written in pg_hba.conf and to `initdb --auth-host`.
    pub fn method(self) -> &'static str {
        match self {
            HostAuth::ScramSha256 => "scram-sha-256",
            HostAuth::Md5 => "md5",
            HostAuth::Trust => "trust",
        }
    }

    /// The `password_encryption` that lets the superuser's password work with this method.
    fn default_encryption(self) -> &'static str {
        match self {
            HostAuth::Md5 => "md5",
            HostAuth::ScramSha256 | HostAuth::Trust => "scram-sha-256",
        }
    }
}

/// Options of a server to start; see [`Server::builder`].
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    major: u32,
    superuser: String,
    password: Option<String>,
    host_auth: HostAuth,
    password_encryption: Option<String>,
    settings: Vec<(String, String)>,
    listen: Vec<IpAddr>,
    namespace: Option<Arc<Namespace>>,
}

impl ServerBuilder {
    /// The bootstrap superuser (default `postgres`). Any name works, including ones that need quoting.
    pub fn superuser(mut self, name: &str) -> Self {
        self.superuser = name.to_owned();
        self
    }

    /// The superuser's password (default: 24 random letters and digits).
    pub fn password(mut self, pw: &str) -> Self {
        self.password = Some(pw.to_owned());
        self
    }

    /// The pg_hba method of the TCP (`host`) lines for 127.0.0.0/8 and ::1 (default scram-sha-256).
    pub fn host_auth(mut self, a: HostAuth) -> Self {
        self.host_auth = a;
        self
    }

    /// `md5` or `scram-sha-256`: how the superuser's password is stored and the server's
    /// `password_encryption` (default: what the host method needs, i.e. md5 for [`HostAuth::Md5`]).
    pub fn password_encryption(mut self, v: &str) -> Self {
        self.password_encryption = Some(v.to_owned());
        self
    }

    /// An extra postgresql.conf setting, appended after the harness's own ones (so it wins over them; leave
    /// `port`, `listen_addresses` and `unix_socket_directories` to the harness). The value is quoted.
    pub fn setting(mut self, name: &str, value: &str) -> Self {
        self.settings.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The TCP addresses to listen on (default 127.0.0.1); the first is [`Server::host`]. Only loopback
    /// addresses are accepted: anything else makes [`ServerBuilder::start`] fail before anything runs.
    pub fn listen(mut self, addrs: &[IpAddr]) -> Self {
        self.listen = addrs.to_vec();
        self
    }

    /// Runs the server inside `ns`: its TCP ports exist only there (the unix socket works from anywhere).
    pub fn namespace(mut self, ns: Arc<Namespace>) -> Self {
        self.namespace = Some(ns);
        self
    }

    pub fn start(self) -> Result<Server, HarnessError> {
        let started = Instant::now();
        self.validate()?;
        let inst = installation(self.major)?;
        let tools = tools(&inst)?;
        let ids = server_user()?;
        if self.namespace.as_ref().is_some_and(|ns| ns.needs_user_namespace()) {
            return Err(HarnessError::Unsupported {
                action: "start a server inside a namespace".to_owned(),
                reason: "the namespace was made without root, and inside its user namespace we are root, which \
                         PostgreSQL refuses; run the tests as root (as CI does)"
                    .to_owned(),
            });
        }
        let password = match &self.password {
            Some(pw) => pw.clone(),
            None => random_password()?,
        };
        let encryption =
            self.password_encryption.clone().unwrap_or_else(|| self.host_auth.default_encryption().to_owned());

        // One private directory per server, under /tmp so the server user can reach it (root's own temp dir
        // or $HOME may not be traversable) and the socket path stays short.
        let dir = tempfile::Builder::new()
            .prefix("qrd-pg-")
            .tempdir_in("/tmp")
            .map_err(|e| HarnessError::io("create a temp dir in", "/tmp", e))?;
        let root = dir.path().to_path_buf();
        set_mode(&root, 0o711)?;
        let data_dir = root.join("data");
        let socket_dir = root.join("sock");
        let log_path = root.join("server.log");
        make_dir(&data_dir, 0o700, ids.as_ref())?;
        make_dir(&socket_dir, 0o755, ids.as_ref())?;
        make_file(&log_path, 0o640, ids.as_ref(), b"")?;
        // The socket is sock/.s.PGSQL.<port>; sun_path holds 107 bytes plus a NUL.
        let longest_socket = socket_dir.join(".s.PGSQL.65535");
        if longest_socket.as_os_str().len() > 107 {
            return Err(HarnessError::Invalid {
                what: "socket directory",
                reason: format!(
                    "{} is longer than the 107 bytes a unix socket path may have",
                    longest_socket.display()
                ),
            });
        }
        let passfile = Passfile::for_entry("*", "*", "*", &self.superuser, &password)
            .map_err(|e| HarnessError::io("write a password file for psql in", std::env::temp_dir(), e))?;

        // pg_ctl as the server user, from the temp dir (our own cwd may be closed to that user), inside the
        // namespace if any: the namespace is entered first, while the child is still root.
        let mut pg_ctl = PgCtl::new(&tools.pg_ctl.path, &data_dir)
            .run_as(ids.clone())
            .log_file(&log_path)
            .current_dir(&root)
            .timeout(PG_CTL_TIMEOUT);
        if let Some(ns) = &self.namespace {
            let ns = ns.clone();
            pg_ctl = pg_ctl.before_identity(move |cmd| {
                ns.enter(cmd);
            });
        }

        // From here on, dropping `server` cleans up whatever was made.
        let mut server = Server {
            version: tools.postgres.version.clone(),
            installation: inst,
            tools,
            listen: self.listen.clone(),
            port: 0,
            superuser: self.superuser.clone(),
            password,
            passfile,
            namespace: self.namespace.clone(),
            ids,
            pg_ctl,
            data_dir,
            socket_dir,
            log_path,
            running: false,
            dir: Some(dir),
        };
        server.initdb(self.host_auth)?;
        let base_conf = std::fs::read_to_string(server.data_dir.join("postgresql.conf"))
            .map_err(|e| HarnessError::io("read", server.data_dir.join("postgresql.conf"), e))?;
        server.write_hba(self.host_auth)?;
        server.start_on_free_port(&base_conf, &encryption, &self.settings)?;
        server.finish_setup(&encryption)?;
        tracing::debug!(
            major = server.major(),
            port = server.port,
            data = %server.data_dir.display(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "server started"
        );
        Ok(server)
    }

    fn validate(&self) -> Result<(), HarnessError> {
        if self.listen.is_empty() {
            return Err(HarnessError::Invalid {
                what: "listen addresses",
                reason: "none given; a server needs at least one (e.g. 127.0.0.1)".to_owned(),
            });
        }
        for addr in &self.listen {
            if !addr.is_loopback() {
                return Err(HarnessError::NotLoopback { addr: *addr, what: "a listen address" });
            }
        }
        if self.superuser.is_empty() {
            return Err(HarnessError::Invalid { what: "superuser name", reason: "empty".to_owned() });
        }
        if let Some(pw) = &self.password
            && (pw.is_empty() || pw.contains(['\n', '\r']))
        {
            return Err(HarnessError::Invalid {
                what: "superuser password",
                reason: "it must be non-empty and on one line (initdb reads the first line of its --pwfile)".to_owned(),
            });
        }
        if let Some(enc) = &self.password_encryption
            && enc != "md5"
            && enc != "scram-sha-256"
        {
            return Err(HarnessError::Invalid {
                what: "password_encryption",
                reason: format!("{enc:?}: use \"md5\" or \"scram-sha-256\""),
            });
        }
        for (name, _) in &self.settings {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
                return Err(HarnessError::Invalid {
                    what: "setting name",
                    reason: format!("{name:?} is not a postgresql.conf parameter name"),
                });
            }
        }
        Ok(())
    }
}

/// A running throwaway PostgreSQL server. Stopped (`-m immediate`) and deleted on drop.
pub struct Server {
    installation: Installation,
    tools: Arc<Tools>,
    version: PgVersion,
    listen: Vec<IpAddr>,
    port: u16,
    superuser: String,
    password: String,
    /// Kept alive for `psql()` commands: the password reaches psql through it, never argv.
    passfile: Passfile,
    namespace: Option<Arc<Namespace>>,
    /// The server user when we are root; `None` runs the server as ourselves.
    ids: Option<Identity>,
    /// The product's pg_ctl control for this data directory.
    pg_ctl: PgCtl,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    log_path: PathBuf,
    running: bool,
    dir: Option<tempfile::TempDir>,
}

impl Server {
    /// Options for a server of `major` (one of the manifest's majors, e.g. [`crate::EVERY_RUN`]).
    pub fn builder(major: u32) -> ServerBuilder {
        ServerBuilder {
            major,
            superuser: "postgres".to_owned(),
            password: None,
            host_auth: HostAuth::ScramSha256,
            password_encryption: None,
            settings: Vec::new(),
            listen: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            namespace: None,
        }
    }

    /// A server of `major` with the defaults; panics with the reason (and what to do) if it cannot start.
    pub fn start(major: u32) -> Server {
        Self::builder(major).start().unwrap_or_else(|e| panic!("failed to start a PostgreSQL {major} test server: {e}"))
    }

    pub fn major(&self) -> u32 {
        self.installation.major
    }

    /// The version the running server reports (`server_version_num`).
    pub fn version(&self) -> &PgVersion {
        &self.version
    }

    pub fn installation(&self) -> &Installation {
        &self.installation
    }

    /// The first listen address.
    pub fn host(&self) -> IpAddr {
        self.listen[0]
    }

    /// All listen addresses.
    pub fn listen_addrs(&self) -> &[IpAddr] {
        &self.listen
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn superuser(&self) -> &str {
        &self.superuser
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    pub fn namespace(&self) -> Option<&Arc<Namespace>> {
        self.namespace.as_ref()
    }

    /// Environment for a client child process (e.g. the `qrd` binary): PGHOST (the first listen address),
    /// PGPORT, PGUSER, PGPASSWORD, PGDATABASE=postgres. PGSSLMODE is left unset (libpq's default, prefer).
    pub fn client_env(&self) -> Vec<(String, String)> {
        vec![
            ("PGHOST".to_owned(), self.host().to_string()),
            ("PGPORT".to_owned(), self.port.to_string()),
            ("PGUSER".to_owned(), self.superuser.clone()),
            ("PGPASSWORD".to_owned(), self.password.clone()),
            ("PGDATABASE".to_owned(), "postgres".to_owned()),
        ]
    }

    /// A connection as the superuser through the unix socket (works even when the server is in a network
    /// namespace), its connection task spawned on the current runtime. Panics with the server's message.
    pub async fn connect(&self, db: &str) -> Client {
        match self.connect_socket(db).await {
            Ok(client) => client,
            Err(e) => panic!(
                "failed to connect to PostgreSQL {} as {:?} through the socket in {} (port {}), database {db:?}: {}",
                self.major(),
                self.superuser,
                self.socket_dir.display(),
                self.port,
                error_text(&e)
            ),
        }
    }

    /// A TCP connection (no TLS, 5 s connect timeout) to `host` on the server's port. From a test's own
    /// thread this connects from the host's namespace; inside [`Namespace::block_on`], from the namespace.
    pub async fn try_connect_tcp(
        &self,
        host: IpAddr,
        db: &str,
        user: &str,
        password: &str,
    ) -> Result<Client, tokio_postgres::Error> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(host.to_string())
            .hostaddr(host)
            .port(self.port)
            .dbname(db)
            .user(user)
            .password(password)
            .connect_timeout(Duration::from_secs(5));
        let (client, connection) = config.connect(NoTls).await?;
        spawn_connection(connection);
        Ok(client)
    }

    /// `psql -X -v ON_ERROR_STOP=1` of the manifest's client tools, connected to `db` through the socket as
    /// the superuser. The password is in a passfile (never argv), `PG*` variables of ours are scrubbed, and
    /// when the server is namespaced so is the command.
    pub fn psql(&self, db: &str) -> Command {
        self.psql_as(db, &self.superuser)
    }

    /// [`Server::psql`] logged in as `user` instead: the socket's `trust` lines let any role in without a
    /// password (unless a test changed them), so what runs, runs with that role's own privileges.
    pub fn psql_as(&self, db: &str, user: &str) -> Command {
        let psql = match &self.tools.psql {
            Ok(psql) => psql,
            Err(e) => panic!("no psql for PostgreSQL {}: {e}", self.major()),
        };
        let mut cmd = scrubbed_command(&psql.path);
        cmd.args(["-X", "-v", "ON_ERROR_STOP=1", "-h"]).arg(&self.socket_dir).args([
            "-p",
            &self.port.to_string(),
            "-U",
            user,
            "-d",
            db,
        ]);
        self.passfile.apply(&mut cmd);
        if let Some(ns) = &self.namespace {
            ns.enter(&mut cmd);
        }
        cmd
    }

    /// `pg_ctl reload`, returning once the postmaster has processed it, so a *new* connection sees the new
    /// postgresql.conf / pg_hba.conf. Sessions already open pick it up at some later command.
    ///
    /// The wait watches the server log for the postmaster's "received SIGHUP" line; with a `setting` that
    /// hides it (logging_collector, log_min_messages above LOG) it gives up after 10 s with a warning.
    pub fn reload(&self) {
        let before = self.log().matches(RELOAD_LOG_LINE).count();
        if let Err(e) = self.pg_ctl.reload_blocking() {
            panic!("{e}\n{}", self.log_excerpt());
        }
        let seen = qrd_pgbin::poll_until_blocking(
            Instant::now() + Duration::from_secs(10),
            &format!("the server logs {RELOAD_LOG_LINE:?}"),
            || {
                let seen = self.log().matches(RELOAD_LOG_LINE).count() > before;
                Ok::<_, std::convert::Infallible>(if seen { Check::Done(()) } else { Check::pending() })
            },
        );
        if let Err(e) = seen {
            eprintln!("qrd-testcontainers: warning: {e} in {}; continuing", self.log_path.display());
        }
    }

    /// Stops the server (fast) and starts it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(e) = self.pg_ctl_start() {
            panic!("{e}");
        }
        self.running = true;
    }

    /// Stops the server (`-m fast`); the data dir stays until drop. A stopped server can be [`restart`]ed.
    ///
    /// [`restart`]: Server::restart
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        if let Err(e) = self.pg_ctl.stop_blocking(StopMode::Fast) {
            panic!("{e}\n{}", self.log_excerpt());
        }
        self.running = false;
    }

    /// The server log so far.
    pub fn log(&self) -> String {
        std::fs::read(&self.log_path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    }

    // ---- internals ----

    /// A command for a server program that needs no namespace (initdb), run as the server user from the
    /// temp dir (our own cwd may not be readable by the server user). pg_ctl goes through `self.pg_ctl`.
    fn server_command(&self, program: &Path) -> Command {
        let mut cmd = scrubbed_command(program);
        if let Some(dir) = &self.dir {
            cmd.current_dir(dir.path());
        }
        Entry { identity: self.ids.clone(), ..Entry::default() }.apply_to(&mut cmd);
        cmd
    }

    fn initdb(&mut self, auth: HostAuth) -> Result<(), HarnessError> {
        let root = self.dir.as_ref().expect("temp dir").path().to_path_buf();
        let pwfile = root.join("initdb.pw");
        make_file(&pwfile, 0o600, self.ids.as_ref(), format!("{}\n", self.password).as_bytes())?;
        let mut cmd = self.server_command(&self.tools.initdb.path);
        cmd.arg("-D")
            .arg(&self.data_dir)
            .args(["-U", &self.superuser, "-E", "UTF8", "--locale=C", "--no-sync", "--auth-local=trust"])
            .arg(format!("--auth-host={}", auth.method()))
            .arg(format!("--pwfile={}", pwfile.display()));
        let result = run(&mut cmd, &format!("initialise a PostgreSQL {} data directory", self.major()));
        let _ = std::fs::remove_file(&pwfile);
        result.map(drop)
    }

    /// Replaces initdb's pg_hba.conf: initdb allows 127.0.0.1/32 only, and clients in a namespace connect
    /// from other loopback addresses.
    fn write_hba(&self, auth: HostAuth) -> Result<(), HarnessError> {
        let m = auth.method();
        let hba = format!(
            "# Written by qrd-testcontainers: the socket is always trust (the harness's way in); TCP from loopback\n\
             # uses the test's method. Edit and reload() freely.\n\
             # TYPE  DATABASE     USER  ADDRESS       METHOD\n\
             local   all          all                 trust\n\
             host    all          all   127.0.0.0/8   {m}\n\
             host    all          all   ::1/128       {m}\n\
             local   replication  all                 trust\n\
             host    replication  all   127.0.0.0/8   {m}\n\
             host    replication  all   ::1/128       {m}\n"
        );
        let path = self.data_dir.join("pg_hba.conf");
        std::fs::write(&path, hba).map_err(|e| HarnessError::io("write", path, e))
    }

    /// initdb's postgresql.conf plus the harness's settings, then the test's.
    fn write_conf(
        &self,
        base: &str,
        port: u16,
        encryption: &str,
        settings: &[(String, String)],
    ) -> Result<(), HarnessError> {
        let listen = self.listen.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(",");
        let mut conf = base.trim_end().to_owned();
        conf.push_str("\n\n# ---- qrd-testcontainers: the harness's settings ----\n");
        let ours = [
            ("listen_addresses", listen.as_str()),
            ("port", &port.to_string()),
            ("unix_socket_directories", &self.socket_dir.to_string_lossy()),
            ("password_encryption", encryption),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        for (name, value) in &ours {
            conf.push_str(&conf_line(name, value)?);
        }
        if !settings.is_empty() {
            conf.push_str("# ---- qrd-testcontainers: the test's settings ----\n");
            for (name, value) in settings {
                conf.push_str(&conf_line(name, value)?);
            }
        }
        let path = self.data_dir.join("postgresql.conf");
        std::fs::write(&path, conf).map_err(|e| HarnessError::io("write", path, e))
    }

    /// Probes a free port, starts on it, and tries another when something else took it meanwhile (the
    /// server then fails to bind, or binds only some of its addresses).
    fn start_on_free_port(
        &mut self,
        base_conf: &str,
        encryption: &str,
        settings: &[(String, String)],
    ) -> Result<(), HarnessError> {
        let mut attempt = 1;
        loop {
            self.port = free_port(self.host())?;
            self.write_conf(base_conf, self.port, encryption, settings)?;
            let log_before = self.log().len();
            let result = self.pg_ctl_start();
            self.running = result.is_ok();
            let new_log = self.log().get(log_before..).unwrap_or_default().to_owned();
            let port_taken = new_log.contains("could not bind") || new_log.contains("Address already in use");
            match result {
                Ok(()) if !port_taken => return Ok(()),
                Ok(()) if attempt < PORT_ATTEMPTS => self.stop_immediate(),
                Err(_) if port_taken && attempt < PORT_ATTEMPTS => {}
                Ok(()) => {
                    return Err(HarnessError::Unsupported {
                        action: format!("find a free port for all of {:?}", self.listen),
                        reason: format!(
                            "after {PORT_ATTEMPTS} attempts the server still could not bind some address\n{}",
                            self.log_excerpt()
                        ),
                    });
                }
                Err(e) => return Err(e),
            }
            tracing::debug!(port = self.port, attempt, "port taken meanwhile; trying another");
            attempt += 1;
        }
    }

    /// Starts through the product's pg_ctl control; a failure keeps the harness's own wording (major, data
    /// dir, port) with pg_ctl's output and the whole log excerpt.
    fn pg_ctl_start(&self) -> Result<(), HarnessError> {
        match self.pg_ctl.start_blocking() {
            Ok(()) => Ok(()),
            Err(PgCtlError::Start { source, .. }) => Err(HarnessError::Start {
                major: self.major(),
                data: self.data_dir.clone(),
                port: self.port,
                command: source.command().to_owned(),
                outcome: source.outcome(),
                log_excerpt: self.log_excerpt(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Asks the running server its version and makes the superuser's stored password match `encryption`.
    ///
    /// initdb stores the --pwfile password with the password_encryption of the postgresql.conf it wrote:
    /// PostgreSQL 12 writes scram-sha-256 there when --auth-host is scram-sha-256 (md5 otherwise), 14+
    /// defaults to scram-sha-256 and initdb has no `-c` before 16. So with md5 on 14+ (or trust on 12) the
    /// stored verifier is of the other kind, and we replace it with one computed here: the plaintext
    /// password never appears in SQL.
    fn finish_setup(&mut self, encryption: &str) -> Result<(), HarnessError> {
        let sql_error = |action: &str, e: tokio_postgres::Error| HarnessError::Sql {
            action: action.to_owned(),
            major: self.major(),
            socket: self.socket_dir.clone(),
            port: self.port,
            message: error_text(&e),
        };
        let (num, stored) = block_on_thread(async {
            let client = self.connect_socket("postgres").await.map_err(|e| sql_error("connect as superuser", e))?;
            let row = client.query_one(SETUP_QUERY, &[]).await.map_err(|e| sql_error("ask the version", e))?;
            let num: i32 = row.get(0);
            let stored: Option<String> = row.get(1);
            let wanted_prefix = if encryption == "md5" { "md5" } else { "SCRAM-SHA-256$" };
            if !stored.as_deref().is_some_and(|s| s.starts_with(wanted_prefix)) {
                // The product's own verifier and quoting code: the harness holds itself to the same rules.
                let verifier = qrd_pg::password::verifier::compute(
                    qrd_pg::password::verifier::Encryption::from_setting(encryption),
                    &qrd_pg::Secret::new(self.password.as_str()),
                    &self.superuser,
                );
                let quote_err = |e: qrd_pg::quote::QuoteError| HarnessError::Invalid {
                    what: "superuser name",
                    reason: e.to_string(),
                };
                let sql = format!(
                    "ALTER ROLE {} PASSWORD {}",
                    qrd_pg::quote::ident(&self.superuser).map_err(quote_err)?,
                    qrd_pg::quote::literal(&verifier).map_err(quote_err)?
                );
                client.batch_execute(&sql).await.map_err(|e| sql_error("set the superuser's password", e))?;
            }
            Ok::<_, HarnessError>((num, stored))
        })?;
        tracing::debug!(num, stored_kind = stored.as_deref().map(|s| &s[..3.min(s.len())]), "setup done");
        self.version = PgVersion::from_version_num(num as u32);
        if self.version.major != self.major() {
            return Err(HarnessError::Invalid {
                what: "installation",
                reason: format!(
                    "the manifest's PostgreSQL {} binaries in {} started a server reporting {}",
                    self.major(),
                    self.installation.server_bin.display(),
                    self.version
                ),
            });
        }
        Ok(())
    }

    pub(crate) async fn connect_socket(&self, db: &str) -> Result<Client, tokio_postgres::Error> {
        let (client, connection) = tokio_postgres::Config::new()
            .host_path(&self.socket_dir)
            .port(self.port)
            .dbname(db)
            .user(&self.superuser)
            .connect(NoTls)
            .await?;
        spawn_connection(connection);
        Ok(client)
    }

    /// Best-effort immediate stop for drop and retries: pg_ctl, else SIGKILL to the postmaster.
    fn stop_immediate(&mut self) {
        // A pid file without `running` is a start that failed late (e.g. pg_ctl's wait timed out) and may
        // have left a postmaster behind.
        if !self.running && !self.data_dir.join("postmaster.pid").exists() {
            return;
        }
        self.running = false;
        if let Err(e) = self.pg_ctl.stop_blocking(StopMode::Immediate) {
            eprintln!("qrd-testcontainers: {e}\nkilling the postmaster instead");
            if let Some(pid) = qrd_server::pgctl::running_postmaster(&self.data_dir) {
                let _ =
                    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
            }
        }
    }

    fn log_excerpt(&self) -> String {
        format!(
            "--- last lines of the server log {} ---\n{}--- end of the server log ---",
            self.log_path.display(),
            tail(&self.log(), LOG_TAIL_LINES)
        )
    }
}

impl std::fmt::Debug for Server {
    /// Everything a failure report needs, without the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("version", &self.version.text)
            .field("listen", &self.listen)
            .field("port", &self.port)
            .field("socket_dir", &self.socket_dir)
            .field("data_dir", &self.data_dir)
            .field("superuser", &self.superuser)
            .field("namespace_pid", &self.namespace.as_ref().map(|ns| ns.holder_pid()))
            .field("running", &self.running)
            .finish_non_exhaustive()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "===== qrd-testcontainers: PostgreSQL {} (data {}, port {}): last {LOG_TAIL_LINES} lines of {} =====\n\
                 {}===== end of the server log (data {}, port {}) =====",
                self.version,
                self.data_dir.display(),
                self.port,
                self.log_path.display(),
                tail(&self.log(), LOG_TAIL_LINES),
                self.data_dir.display(),
                self.port,
            );
        }
        self.stop_immediate();
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_path_buf();
            if let Err(e) = dir.close() {
                eprintln!("qrd-testcontainers: failed to remove {}: {e}", path.display());
            }
        }
    }
}

pub(crate) fn spawn_connection<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %error_text(&e), "connection ended with an error");
        }
    });
}

/// The server's own message for a database error (severity, text, SQLSTATE), else the error and its causes.
pub(crate) fn error_text(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {} (SQLSTATE {})", db.severity(), db.message(), db.code().code());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Runs `f` on a fresh thread with its own runtime, so the synchronous builder also works when called
/// from inside a test's tokio runtime (where `block_on` would panic).
pub(crate) fn block_on_thread<F: Future + Send>(f: F) -> F::Output
where
    F::Output: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("failed to build a tokio runtime")
                .block_on(f)
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// A port nothing listens on right now at `addr` (the kernel's pick for port 0). Another process may take
/// it before the server binds; the caller retries then.
fn free_port(addr: IpAddr) -> Result<u16, HarnessError> {
    let listener = TcpListener::bind((addr, 0)).map_err(|e| {
        HarnessError::io(format!("bind a probe socket on {addr} port 0 (free port for)"), "the server", e)
    })?;
    let port = listener.local_addr().map_err(|e| HarnessError::io("read the probe socket's port", "", e))?.port();
    Ok(port)
}

/// `name = value`, the value written as qrd's own configuration editor writes it (quoted when it must be).
fn conf_line(name: &str, value: &str) -> Result<String, HarnessError> {
    let value = qrd_conf::pgconf::format_value(value).map_err(|_| HarnessError::Invalid {
        what: "a setting's value",
        reason: format!("{name}'s holds a NUL byte"),
    })?;
    Ok(format!("{name} = {value}\n"))
}

pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    let mut out = all[all.len().saturating_sub(lines)..].join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

fn set_mode(path: &Path, mode: u32) -> Result<(), HarnessError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| HarnessError::io(format!("set mode {mode:o} on"), path, e))
}

fn make_dir(path: &Path, mode: u32, ids: Option<&Identity>) -> Result<(), HarnessError> {
    std::fs::create_dir(path).map_err(|e| HarnessError::io("create", path, e))?;
    set_mode(path, mode)?;
    chown(path, ids)
}

fn make_file(path: &Path, mode: u32, ids: Option<&Identity>, contents: &[u8]) -> Result<(), HarnessError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| HarnessError::io("create", path, e))?;
    file.write_all(contents).map_err(|e| HarnessError::io("write", path, e))?;
    chown(path, ids)
}

/// 24 letters and digits from the kernel's random source.
pub fn random_password() -> Result<String, HarnessError> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(24);
    let mut file = std::fs::File::open("/dev/urandom").map_err(|e| HarnessError::io("open", "/dev/urandom", e))?;
    let mut buf = [0u8; 64];
    while out.len() < 24 {
        std::io::Read::read_exact(&mut file, &mut buf).map_err(|e| HarnessError::io("read", "/dev/urandom", e))?;
        // 248 = 4 × 62: rejecting the rest keeps every character equally likely.
        out.extend(buf.iter().filter(|&&b| b < 248).map(|&b| ALPHABET[b as usize % 62] as char).take(24 - out.len()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_values_are_quoted() {
        assert_eq!(conf_line("search_path", "a, 'b'").unwrap(), "search_path = 'a, ''b'''\n");
        assert_eq!(conf_line("port", "5432").unwrap(), "port = 5432\n");
        assert_eq!(conf_line("unix_socket_directories", "/tmp/a b").unwrap(), "unix_socket_directories = '/tmp/a b'\n");
    }

    #[test]
    fn random_passwords_are_alphanumeric() {
        let a = random_password().unwrap();
        assert_eq!(a.len(), 24);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()), "{a}");
        assert_ne!(a, random_password().unwrap());
    }

    #[test]
    fn non_loopback_listen_is_refused_before_anything_runs() {
        let err = Server::builder(16).listen(&["192.0.2.1".parse().unwrap()]).start().unwrap_err();
        assert!(matches!(err, HarnessError::NotLoopback { .. }), "{err}");
        assert!(err.to_string().contains("only loopback"), "{err}");
    }

    #[test]
    fn log_tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(tail("", 2), "");
    }
}
