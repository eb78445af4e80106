//! Options shared by subcommands, flattened into each (connection, client tools).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use qrd_pg::connect::{ConnectOpts, SslMode};

/// Connection options, as psql's, plus the Qlik default port. `-h` is the host, so help is `--help` only.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Connection")]
pub struct ConnectArgs {
    /// Server host name, IP address, or unix-socket directory [default: a local socket for the port, else localhost]
    #[arg(short = 'h', long, env = "PGHOST", value_name = "HOST")]
    pub host: Option<String>,
    /// Server port [default: 4432, the Qlik repository's]
    #[arg(short = 'p', long, env = "PGPORT", value_name = "PORT")]
    pub port: Option<u16>,
    /// User to connect as; provisioning needs a superuser [default: postgres]
    #[arg(short = 'U', long = "username", env = "PGUSER", value_name = "USER")]
    pub username: Option<String>,
    /// Maintenance database to connect to first [default: postgres]
    #[arg(short = 'd', long, env = "PGDATABASE", value_name = "DBNAME")]
    pub dbname: Option<String>,
    /// Read the connecting user's password from FILE (else PGPASSWORD, PGPASSFILE or ~/.pgpass, else a prompt on a terminal)
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Never prompt for a password
    #[arg(short = 'w', long)]
    pub no_password: bool,
    /// TLS: disable, prefer, require, verify-ca or verify-full
    #[arg(long, env = "PGSSLMODE", value_name = "MODE", default_value = "prefer")]
    pub sslmode: SslMode,
    /// CA certificate (PEM) that signed the server's certificate, for verify-ca and verify-full
    #[arg(long, env = "PGSSLROOTCERT", value_name = "FILE")]
    pub sslrootcert: Option<PathBuf>,
    /// Give up connecting after this many seconds
    #[arg(long, env = "PGCONNECT_TIMEOUT", value_name = "SECONDS", default_value_t = 5)]
    pub connect_timeout: u64,
}

impl ConnectArgs {
    pub fn opts(&self) -> ConnectOpts {
        ConnectOpts {
            host: self.host.clone(),
            port: self.port,
            user: self.username.clone(),
            dbname: self.dbname.clone(),
            password_file: self.password_file.clone(),
            sslmode: self.sslmode,
            sslrootcert: self.sslrootcert.clone(),
            // libpq treats 0 as "wait forever"; so do we, within reason.
            connect_timeout: Duration::from_secs(if self.connect_timeout == 0 { 3600 } else { self.connect_timeout }),
            prompt: !self.no_password,
            application_name: "qrd".to_owned(),
        }
    }
}

/// Where to find PostgreSQL client tools.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Client tools")]
pub struct ToolArgs {
    /// Directory with pg_dump, pg_restore … of the server's major or newer (searched instead of PATH and /usr/lib/postgresql/<major>/bin; repeat it, or separate with ':', to search several in order)
    #[arg(long, env = "QRD_PG_BIN_DIR", value_name = "DIR", value_delimiter = ':')]
    pub pg_bin_dir: Vec<PathBuf>,
}

impl ToolArgs {
    pub fn finder(&self) -> qrd_pgbin::Finder {
        qrd_pgbin::Finder::new(self.pg_bin_dir.clone())
    }
}

/// The server's data directory, for commands that read or write the server's files.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Configuration files")]
pub struct DataDirArg {
    /// The server's data directory (initdb's layout, or Debian's /var/lib/postgresql/<major>/<name> with its
    /// configuration in /etc/postgresql/<major>/<name>)
    #[arg(short = 'D', long, env = "PGDATA", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Where the configuration files are. Without `--file`/`--data-dir` qrd asks the server (`config_file`,
/// `hba_file`), which works when qrd runs on the server's machine, as the guide's steps do.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Configuration files")]
pub struct FileArgs {
    #[command(flatten)]
    pub dir: DataDirArg,
    /// The file to read or edit, instead of the one in the data directory
    #[arg(long, value_name = "FILE", conflicts_with = "data_dir")]
    pub file: Option<PathBuf>,
    /// Work on the files alone: no server connection (no validation against pg_settings, no reload)
    #[arg(long)]
    pub offline: bool,
}

impl FileArgs {
    pub fn choice(&self) -> qrd_server::FileChoice {
        qrd_server::FileChoice { data_dir: self.dir.data_dir.clone(), file: self.file.clone(), offline: self.offline }
    }
}

/// The replication role and where its password comes from (standby prepare-primary, clone, rejoin,
/// switchover).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Replication role")]
pub struct ReplicationArgs {
    /// The role standbys stream as
    #[arg(long, value_name = "ROLE", default_value = qrd_replica::prepare::DEFAULT_REPLICATOR)]
    pub replicator: String,
    /// File holding the replication role's password [or QRD_REPLICATION_PASSWORD, or a prompt]
    #[arg(long, value_name = "FILE")]
    pub replication_password_file: Option<std::path::PathBuf>,
}

impl ReplicationArgs {
    /// The password, asked on a terminal when neither the file nor the variable gives it; required.
    pub fn password(&self) -> Result<qrd_pg::Secret, crate::error::CliError> {
        qrd_auth::source::replication_password(self.replication_password_file.as_deref(), true, false)?.ok_or_else(
            || {
                crate::error::CliError::from(qrd_replica::ReplicaError::PasswordNeeded {
                    role: self.replicator.clone(),
                })
            },
        )
    }
}

/// clap's parser for `HOST:PORT` options (`--old-primary`, `--primary`): an IPv6 address in brackets.
pub fn host_port(s: &str) -> Result<(String, u16), String> {
    qrd_pg::HostPort::parse_with_port(s).map_err(|e| e.to_string())
}

/// `--jobs N`: parallel workers for pg_dump/pg_restore (and the bundle's compression threads).
#[derive(Debug, Clone, Copy, Args)]
pub struct JobsArgs {
    /// Parallel pg_dump/pg_restore workers; a backup compresses with as many threads [default: the machine's cores]
    #[arg(long = "jobs", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<u32>,
}

impl JobsArgs {
    /// The number given, else one per core of this machine.
    pub fn get(&self) -> u32 {
        self.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u32))
    }
}
