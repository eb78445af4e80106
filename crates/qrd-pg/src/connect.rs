//! Connecting the way libpq tools do: `-h/-p/-U/-d`, the `PG*` environment, `~/.pgpass`, sslmode, and
//! errors that name host, port, user and the server's own message, within `--connect-timeout`.

use qrd_exit::{ExitStatus, UserError};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use crate::password::Secret;
use crate::password::passfile;
use crate::password::{self, PasswordError};
use crate::tls::Tls;

/// The Qlik repository database's default port.
pub const DEFAULT_PORT: u16 = 4432;
pub const DEFAULT_USER: &str = "postgres";
pub const DEFAULT_DBNAME: &str = "postgres";
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// libpq's sslmode values (`allow` is treated as `prefer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    Disable,
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl FromStr for SslMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(format!(
                    "invalid sslmode {other:?}: use disable, prefer, require, verify-ca or verify-full"
                ));
            }
        })
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        })
    }
}

/// What the user asked for. Environment defaults (PGHOST, …) are applied by the command line layer; the
/// password sources that must not appear in `--help` (PGPASSWORD, PGPASSFILE) are read here.
#[derive(Debug, Clone)]
pub struct ConnectOpts {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub dbname: Option<String>,
    pub password_file: Option<PathBuf>,
    pub sslmode: SslMode,
    pub sslrootcert: Option<PathBuf>,
    pub connect_timeout: Duration,
    /// Whether to prompt on a terminal when the server asks for a password nobody gave.
    pub prompt: bool,
    pub application_name: String,
}

impl Default for ConnectOpts {
    fn default() -> Self {
        Self {
            host: None,
            port: None,
            user: None,
            dbname: None,
            password_file: None,
            sslmode: SslMode::default(),
            sslrootcert: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            prompt: true,
            application_name: "qrd".to_owned(),
        }
    }
}

/// Where we connect: resolved host, port, user and maintenance database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub dbname: String,
}

impl Target {
    pub fn is_socket(&self) -> bool {
        self.host.starts_with('/')
    }

    /// `127.0.0.1:4432`, or `socket /run/postgresql/.s.PGSQL.4432`.
    pub fn address(&self) -> String {
        if self.is_socket() {
            format!("socket {}/.s.PGSQL.{}", self.host.trim_end_matches('/'), self.port)
        } else if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} as user {:?}", self.address(), self.user)
    }
}

impl ConnectOpts {
    /// Applies defaults: port 4432, user `postgres`, database `postgres`, and for the host the first
    /// standard socket directory holding a socket for that port (as libpq would use), else `localhost`.
    pub fn target(&self) -> Target {
        let port = self.port.unwrap_or(DEFAULT_PORT);
        let host = match self.host.as_deref() {
            Some(h) if !h.is_empty() => h.to_owned(),
            _ => ["/run/postgresql", "/var/run/postgresql", "/tmp"]
                .iter()
                .find(|d| Path::new(d).join(format!(".s.PGSQL.{port}")).exists())
                .map(|d| d.to_string())
                .unwrap_or_else(|| "localhost".to_owned()),
        };
        Target {
            host,
            port,
            user: self.user.clone().filter(|u| !u.is_empty()).unwrap_or_else(|| DEFAULT_USER.to_owned()),
            dbname: self.dbname.clone().filter(|d| !d.is_empty()).unwrap_or_else(|| DEFAULT_DBNAME.to_owned()),
        }
    }
}

/// Why a connection failed, so the hint can say what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectErrorKind {
    /// Nothing listens there.
    Refused,
    /// No answer within the connect timeout.
    Timeout,
    /// The host name does not resolve.
    UnknownHost,
    /// Wrong password, unknown role.
    Auth,
    /// The server wants a password and none was given (and no prompt was possible).
    PasswordMissing,
    /// pg_hba.conf has no line for this client.
    NoHbaEntry,
    /// The database does not exist.
    NoDatabase,
    /// TLS could not be set up or verified.
    Tls,
    /// Bad options (unreadable root certificate, password file …).
    Config,
    /// Server starting up, shutting down, or out of connection slots.
    Unavailable,
    Other,
}

#[derive(Debug, thiserror::Error)]
#[error("failed to connect to {target}, database {dbname:?}: {reason}")]
pub struct ConnectError {
    pub target: Target,
    pub dbname: String,
    pub kind: ConnectErrorKind,
    /// The server's message (`FATAL: …`) or the local cause.
    pub reason: String,
}

impl UserError for ConnectError {
    /// A local input problem (a bad option) is not a connection failure: scripts can tell the two apart.
    fn exit_status(&self) -> ExitStatus {
        if self.kind == ConnectErrorKind::Config { ExitStatus::Usage } else { ExitStatus::Connect }
    }

    fn hint(&self) -> Option<String> {
        Some(self.hint_text())
    }
}

impl ConnectError {
    fn new(target: &Target, dbname: &str, kind: ConnectErrorKind, reason: impl Into<String>) -> Self {
        Self { target: target.clone(), dbname: dbname.to_owned(), kind, reason: reason.into() }
    }

    /// The next step for the user.
    fn hint_text(&self) -> String {
        let t = &self.target;
        match self.kind {
            ConnectErrorKind::Refused => format!(
                "is PostgreSQL running and listening on {}? Check `listen_addresses` and `port` in postgresql.conf, \
                 or pass the right -h/--host and -p/--port (the default port is {DEFAULT_PORT})",
                t.address()
            ),
            ConnectErrorKind::Timeout => format!(
                "no answer from {} in time: check the host name, firewalls between here and the server, \
                 or raise --connect-timeout",
                t.address()
            ),
            ConnectErrorKind::UnknownHost => format!(
                "the host name {:?} does not resolve: check its spelling and this machine's DNS, or pass an IP address",
                t.host
            ),
            // `peer` (Debian's and Ubuntu's default for the socket) asks the kernel who the client is and
            // wants the OS user named like the role; no password can help, so the password hint would mislead.
            ConnectErrorKind::Auth if self.reason.contains("Peer authentication failed") => format!(
                "the server authenticates socket connections by OS user (peer authentication in pg_hba.conf): \
                 run qrd as the OS user named like the role, e.g. `sudo -u {user} qrd …`, or connect over TCP \
                 with a password instead, e.g. `qrd … -h localhost -U {user}` with --password-file, PGPASSWORD \
                 or ~/.pgpass",
                user = qrd_pgbin::shell_quote(&t.user)
            ),
            ConnectErrorKind::Auth => format!(
                "check the user name and password for {:?}: qrd reads the password from --password-file, \
                 PGPASSWORD, or the password file (PGPASSFILE or ~/.pgpass), and asks on a terminal",
                t.user
            ),
            ConnectErrorKind::PasswordMissing => "the server asks for a password: give it with --password-file FILE, \
                 PGPASSWORD, or a ~/.pgpass entry (mode 0600), or run qrd on a terminal to be asked"
                .to_owned(),
            ConnectErrorKind::NoHbaEntry => "pg_hba.conf on the server has no line that lets this client in: add one \
                 for this address, user and database (and hostssl/host to match the sslmode), then reload"
                .to_owned(),
            ConnectErrorKind::NoDatabase => {
                format!("pass an existing database with -d/--dbname (the default is {DEFAULT_DBNAME:?})")
            }
            ConnectErrorKind::Tls => "check --sslmode and --sslrootcert (the CA that signed the server's certificate; \
                 verify-full also needs the host name to be in the certificate)"
                .to_owned(),
            ConnectErrorKind::Config => "fix the option named above and run the command again".to_owned(),
            ConnectErrorKind::Unavailable => "the server is not accepting connections right now (starting, \
                 stopping, in recovery, or out of connection slots): try again shortly"
                .to_owned(),
            ConnectErrorKind::Other => "run again with -v for details".to_owned(),
        }
    }

    /// Classifies a tokio-postgres error.
    pub fn from_pg(target: &Target, dbname: &str, err: &tokio_postgres::Error) -> Self {
        use ConnectErrorKind::*;
        if let Some(db) = err.as_db_error() {
            let code = db.code();
            let kind = if *code == SqlState::INVALID_PASSWORD {
                Auth
            } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
                // `no pg_hba.conf entry for …`, or `pg_hba.conf rejects connection for …` (a `reject` line).
                if db.message().starts_with("no pg_hba.conf entry") || db.message().starts_with("pg_hba.conf rejects") {
                    NoHbaEntry
                } else {
                    Auth
                }
            } else if *code == SqlState::INVALID_CATALOG_NAME {
                NoDatabase
            } else if *code == SqlState::TOO_MANY_CONNECTIONS
                || *code == SqlState::CANNOT_CONNECT_NOW
                || *code == SqlState::ADMIN_SHUTDOWN
            {
                Unavailable
            } else {
                Other
            };
            return Self::new(target, dbname, kind, server_message(err));
        }
        let text = error_chain(err);
        let kind = if text.contains("password missing") {
            PasswordMissing
        } else if text.contains("failed to lookup address") || text.contains("Name or service not known") {
            UnknownHost
        } else if let Some(io) = find_io_error(err) {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound => Refused,
                std::io::ErrorKind::TimedOut => Timeout,
                _ => Other,
            }
        } else if text.contains("tls") || text.contains("TLS") || text.contains("SSL") || text.contains("certificate") {
            Tls
        } else {
            Other
        };
        let reason =
            if kind == PasswordMissing { "the server asks for a password and none was given".to_owned() } else { text };
        Self::new(target, dbname, kind, reason)
    }
}

/// What the server said (`ERROR: …`, with its DETAIL when there is one), or the local cause chain.
pub fn server_message(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{}: {} (DETAIL: {detail})", db.severity(), db.message()),
            None => format!("{}: {}", db.severity(), db.message()),
        },
        None => error_chain(err),
    }
}

fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut src = err.source();
    while let Some(e) = src {
        let s = e.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        src = e.source();
    }
    parts.join(": ")
}

fn find_io_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        cur = e.source();
    }
    None
}

/// The environment that points a child PostgreSQL tool at a server ([`Connector::child`]); the password
/// file it names lives as long as this value.
pub struct ChildConnection {
    env: Vec<(&'static str, String)>,
    _passfile: Option<qrd_pgbin::Passfile>,
}

impl ChildConnection {
    /// Sets the variables on `cmd`.
    pub fn apply(&self, cmd: &mut std::process::Command) {
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
    }

    /// The variables, for logs (no password is among them).
    pub fn vars(&self) -> &[(&'static str, String)] {
        &self.env
    }

    /// Gives the private password file (if any) to the OS user `uid`/`gid`, for a child that runs as that
    /// user (pg_rewind as the data directory's owner); it stays mode 0600.
    pub fn give_to(&self, uid: u32, gid: u32) -> std::io::Result<()> {
        match &self._passfile {
            Some(file) => std::os::unix::fs::chown(file.path(), Some(uid), Some(gid)),
            None => Ok(()),
        }
    }
}

/// Opens connections to any database of one server with the same credentials and TLS settings.
#[derive(Clone)]
pub struct Connector {
    target: Target,
    opts: ConnectOpts,
    tls: Tls,
    /// A password given explicitly (file, PGPASSWORD, prompt); otherwise ~/.pgpass is asked per database.
    password: Option<Secret>,
    passfile: Option<PathBuf>,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector").field("target", &self.target).field("sslmode", &self.opts.sslmode).finish()
    }
}

impl Connector {
    pub fn new(opts: &ConnectOpts) -> Result<Self, ConnectError> {
        let target = opts.target();
        let config_err = |reason: String| ConnectError::new(&target, &target.dbname, ConnectErrorKind::Config, reason);
        let pw_err = |e: PasswordError| config_err(e.to_string());
        let password = match &opts.password_file {
            Some(path) => Some(password::from_file(path).map_err(pw_err)?),
            // Like libpq, an empty PGPASSWORD is no password (the password file is consulted).
            None if std::env::var_os("PGPASSWORD").is_some_and(|v| v.is_empty()) => None,
            None => password::from_env("PGPASSWORD").map_err(pw_err)?,
        };
        // libpq ignores sslmode for unix sockets; so do we (and then never set up TLS at all).
        let tls_used = !target.is_socket() && opts.sslmode != SslMode::Disable;
        let tls =
            Tls::new(opts.sslmode, opts.sslrootcert.as_deref(), tls_used).map_err(|e| config_err(e.to_string()))?;
        Ok(Self { target, opts: opts.clone(), tls, password, passfile: passfile::default_path() })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The same route for another role without any password (no file, no prompt): a login that tells
    /// whether the route asks for one ([`ConnectErrorKind::PasswordMissing`]). The server logs no failure
    /// for a client that leaves when asked for its password, as psql does before it prompts.
    pub fn as_role_without_password(&self, user: &str) -> Connector {
        let mut c = self.as_role(user, Secret::new(String::new()));
        c.password = None;
        c
    }

    /// The same route (host, port, TLS settings) for another role with a known password: no password
    /// file, no prompt. For verification logins after a password change.
    pub fn as_role(&self, user: &str, password: Secret) -> Connector {
        let mut c = self.clone();
        c.target.user = user.to_owned();
        c.opts.user = Some(user.to_owned());
        c.opts.prompt = false;
        c.password = Some(password);
        c.passfile = None;
        c
    }

    /// The tokio-postgres configuration for `dbname`, password included when one is known.
    pub fn config(&self, dbname: &str) -> tokio_postgres::Config {
        let t = &self.target;
        let mut cfg = tokio_postgres::Config::new();
        cfg.host(&t.host)
            .port(t.port)
            .user(&t.user)
            .dbname(dbname)
            .application_name(&self.opts.application_name)
            .connect_timeout(self.opts.connect_timeout)
            .ssl_mode(match self.opts.sslmode {
                _ if t.is_socket() => tokio_postgres::config::SslMode::Disable,
                SslMode::Disable => tokio_postgres::config::SslMode::Disable,
                SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
            });
        let from_passfile = || {
            let path = self.passfile.as_deref()?;
            passfile::lookup(path, &t.host, t.port, dbname, &t.user)
        };
        if let Some(pw) = self.password.clone().or_else(from_passfile) {
            cfg.password(pw.expose());
        }
        cfg
    }

    /// How a PostgreSQL tool run as a child process (pg_dump, pg_restore, pg_basebackup, psql) reaches the
    /// same server as this connector, database `dbname`: `PG*` variables for host, port, user, database,
    /// sslmode, root certificate, timeout and application name, and the password through a 0600 password
    /// file of its own — never argv, and not `PGPASSWORD` either (other processes of the same user can read a
    /// process's environment). A password found in `~/.pgpass` stays there: the child reads that file.
    /// Apply it to a command made with [`qrd_pgbin::scrubbed_command`], so nothing else of ours leaks in.
    pub fn child(&self, dbname: &str) -> Result<ChildConnection, ConnectError> {
        let t = &self.target;
        let mut env: Vec<(&'static str, String)> = vec![
            ("PGHOST", t.host.clone()),
            ("PGPORT", t.port.to_string()),
            ("PGUSER", t.user.clone()),
            ("PGDATABASE", dbname.to_owned()),
            ("PGAPPNAME", self.opts.application_name.clone()),
            ("PGCONNECT_TIMEOUT", self.opts.connect_timeout.as_secs().max(1).to_string()),
        ];
        if !t.is_socket() {
            env.push(("PGSSLMODE", self.opts.sslmode.to_string()));
            if let Some(root) = &self.opts.sslrootcert {
                env.push(("PGSSLROOTCERT", root.display().to_string()));
            }
        }
        let passfile = match &self.password {
            Some(pw) => {
                let file = qrd_pgbin::Passfile::for_entry("*", "*", "*", "*", pw.expose()).map_err(|e| {
                    ConnectError::new(t, dbname, ConnectErrorKind::Config, format!("cannot write a password file: {e}"))
                })?;
                env.push(("PGPASSFILE", file.path().display().to_string()));
                Some(file)
            }
            None => {
                if let Some(path) = &self.passfile {
                    env.push(("PGPASSFILE", path.display().to_string()));
                }
                None
            }
        };
        Ok(ChildConnection { env, _passfile: passfile })
    }

    pub fn tls(&self) -> Tls {
        self.tls.clone()
    }

    /// The limit for one connection's whole start-up (`--connect-timeout`).
    pub fn connect_timeout(&self) -> std::time::Duration {
        self.opts.connect_timeout
    }

    /// The error for a connection to `dbname` that did not complete within the connect timeout.
    pub fn timeout_error(&self, dbname: &str) -> ConnectError {
        ConnectError::new(
            &self.target,
            dbname,
            ConnectErrorKind::Timeout,
            format!("no complete answer within {} s", self.opts.connect_timeout.as_secs_f32()),
        )
    }

    /// Connects to `dbname`. When the server asks for a password nobody gave and we are on a terminal,
    /// asks once and remembers it for the other databases.
    pub async fn connect(&mut self, dbname: &str) -> Result<Client, ConnectError> {
        match self.connect_once(dbname).await {
            Err(e) if e.kind == ConnectErrorKind::PasswordMissing && self.opts.prompt && password::can_prompt() => {
                let label = format!("Password for user {} at {}", self.target.user, self.target.address());
                let pw = password::prompt(&label, false).map_err(|pe| {
                    ConnectError::new(&self.target, dbname, ConnectErrorKind::PasswordMissing, pe.to_string())
                })?;
                self.password = Some(pw);
                self.connect_once(dbname).await
            }
            other => other,
        }
    }

    async fn connect_once(&self, dbname: &str) -> Result<Client, ConnectError> {
        let cfg = self.config(dbname);
        tracing::debug!(target = %self.target, dbname, sslmode = %self.opts.sslmode, "connecting");
        // connect_timeout covers each TCP connect; this covers the whole start-up (TLS, authentication) too,
        // so a server that accepts and then hangs cannot hang us.
        let limit = self.opts.connect_timeout;
        let attempt = tokio::time::timeout(limit, cfg.connect(self.tls.clone())).await;
        let (client, connection) = match attempt {
            Err(_) => return Err(self.timeout_error(dbname)),
            Ok(Err(e)) => return Err(ConnectError::from_pg(&self.target, dbname, &e)),
            Ok(Ok(pair)) => pair,
        };
        let label = format!("{}/{dbname}", self.target.address());
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(connection = %label, "connection closed: {e}");
            }
        });
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_guide() {
        let t = ConnectOpts { host: Some("db.example".into()), ..Default::default() }.target();
        assert_eq!((t.port, t.user.as_str(), t.dbname.as_str()), (4432, "postgres", "postgres"));
        assert_eq!(t.to_string(), "db.example:4432 as user \"postgres\"");
        let t = ConnectOpts { host: Some("/tmp/x".into()), port: Some(5), ..Default::default() }.target();
        assert_eq!(t.address(), "socket /tmp/x/.s.PGSQL.5");
        let t = ConnectOpts { host: Some("::1".into()), ..Default::default() }.target();
        assert_eq!(t.address(), "[::1]:4432");
    }

    #[test]
    fn peer_authentication_gets_its_own_hint() {
        let target =
            ConnectOpts { host: Some("/run/postgresql".into()), port: Some(5432), ..Default::default() }.target();
        let peer = ConnectError::new(
            &target,
            "postgres",
            ConnectErrorKind::Auth,
            "FATAL: Peer authentication failed for user \"postgres\"",
        );
        let hint = peer.hint().unwrap();
        assert!(hint.contains("peer authentication"), "{hint}");
        assert!(hint.contains("`sudo -u postgres qrd …`"), "{hint}");
        assert!(hint.contains("-h localhost"), "{hint}");
        assert!(!hint.starts_with("check the user name and password"), "{hint}");

        // A wrong password keeps the password hint.
        let password = ConnectError::new(
            &target,
            "postgres",
            ConnectErrorKind::Auth,
            "FATAL: password authentication failed for user \"postgres\"",
        );
        let hint = password.hint().unwrap();
        assert!(hint.starts_with("check the user name and password"), "{hint}");
    }

    #[test]
    fn sslmode_names() {
        for m in ["disable", "prefer", "require", "verify-ca", "verify-full"] {
            assert_eq!(m.parse::<SslMode>().unwrap().to_string(), m);
        }
        assert_eq!(
            "bogus".parse::<SslMode>(),
            Err("invalid sslmode \"bogus\": use disable, prefer, require, verify-ca or verify-full".to_owned())
        );
    }

    #[test]
    fn verify_modes_need_a_root_certificate() {
        let err = Tls::new(SslMode::VerifyFull, Some(Path::new("/nonexistent/root.crt")), true).err().unwrap();
        assert!(err.to_string().contains("/nonexistent/root.crt"), "{err}");
    }
}
