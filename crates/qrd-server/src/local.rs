//! Where a server's files are on this machine and who owns them: from a connection (the server reports
//! `data_directory`, `config_file`, `hba_file`), or from a directory the DBA names (`--data-dir`), in the
//! layout initdb makes (configuration inside the data directory) or the one Debian and Ubuntu make with
//! `pg_createcluster` (data in `/var/lib/postgresql/<major>/<name>`, configuration in
//! `/etc/postgresql/<major>/<name>`); and where such a server takes socket connections, connecting there as
//! its owner (peer authentication) when qrd runs as root.

use qrd_exit::{ExitStatus, UserError};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use qrd_conf::ParseError;
use qrd_conf::hba::HbaFile;
use qrd_conf::pgconf::{ConfTree, LoadError};
use qrd_conf::write::Perms;
use qrd_pg::Session;
use qrd_pg::connect::{ConnectError, ConnectErrorKind, ConnectOpts, DEFAULT_CONNECT_TIMEOUT, Target};
use qrd_pg::inventory::QueryError;
use qrd_pg::serverconf::{self, ServerFacts};
use qrd_pgbin::Identity;

/// Where Debian's postgresql-common keeps each cluster's configuration.
const DEBIAN_CONF_ROOT: &str = "/etc/postgresql";

/// The owner of a server's data directory: the OS user the server runs as. Files qrd installs for the
/// server belong to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

impl Owner {
    pub fn of(path: &Path) -> std::io::Result<Owner> {
        let m = std::fs::metadata(path)?;
        Ok(Owner { uid: m.uid(), gid: m.gid() })
    }

    /// `mode`, owned by this user.
    pub fn perms(self, mode: u32) -> Perms {
        Perms { mode, uid: self.uid, gid: self.gid }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("cannot reach the server's data directory {} here: {source}", path.display())]
    DataDirUnreachable { path: PathBuf, source: std::io::Error },
    #[error(
        "--data-dir {} is not the data directory of the server at {address} (it reports {})",
        given.display(),
        actual.display()
    )]
    OtherDataDir { given: PathBuf, actual: PathBuf, address: String },
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Conf(#[from] LoadError),
    #[error("{0}")]
    Hba(#[from] ParseError),
    #[error("{name} = {value:?} at {at} is not a valid value")]
    Setting { name: &'static str, value: String, at: String },
}

impl UserError for LocalError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            LocalError::Connect(e) => e.exit_status(),
            LocalError::Query(e) => e.exit_status(),
            LocalError::DataDirUnreachable { .. }
            | LocalError::OtherDataDir { .. }
            | LocalError::Read { .. }
            | LocalError::Conf(_)
            | LocalError::Hba(_)
            | LocalError::Setting { .. } => ExitStatus::Refused,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(self.hint_text())
    }
}

impl LocalError {
    fn hint_text(&self) -> String {
        match self {
            LocalError::Connect(e) => e.hint().unwrap_or_default(),
            LocalError::Query(_) => "run again with -v for the statements qrd runs; the server log may say more".into(),
            LocalError::DataDirUnreachable { .. } | LocalError::Read { .. } => {
                "run qrd on the server's machine, as root or as the server's OS user (the owner of the data directory)"
                    .into()
            }
            LocalError::OtherDataDir { .. } => {
                "connect to the server that uses that data directory (-h/-p), or drop --data-dir".into()
            }
            LocalError::Conf(_) => "fix the file at the place named above; nothing was changed".into(),
            LocalError::Hba(_) => "fix pg_hba.conf at the place named above; nothing was changed".into(),
            LocalError::Setting { .. } => {
                "fix the value at the place named above (the server would refuse it too)".into()
            }
        }
    }
}

/// A server's files found from a directory, without asking the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub data_dir: PathBuf,
    pub config_file: PathBuf,
    pub hba_file: PathBuf,
    /// From the data directory's `PG_VERSION`, when it is readable.
    pub major: Option<u32>,
}

impl Layout {
    /// The files of the cluster `dir` names: a data directory (with its configuration inside, or, in
    /// Debian's layout, in `/etc/postgresql/<major>/<name>`), or Debian's configuration directory itself.
    /// When nothing better is found, the files are assumed inside `dir` (initdb's layout), so a caller that
    /// reads them reports the missing path.
    pub fn from_dir(dir: &Path) -> Layout {
        Self::from_dir_in(dir, Path::new(DEBIAN_CONF_ROOT), None)
    }

    /// As [`Layout::from_dir`] for a directory that holds, or is about to hold, a data directory of `major`
    /// (a standby being cloned into an emptied or missing directory, which has no `PG_VERSION` yet): Debian's
    /// configuration for it is looked for under `major`.
    pub fn for_major(dir: &Path, major: u32) -> Layout {
        Self::from_dir_in(dir, Path::new(DEBIAN_CONF_ROOT), Some(major))
    }

    fn from_dir_in(dir: &Path, debian_root: &Path, major: Option<u32>) -> Layout {
        let inside = Layout {
            data_dir: dir.to_path_buf(),
            config_file: dir.join("postgresql.conf"),
            hba_file: dir.join("pg_hba.conf"),
            major: major_of(dir),
        };
        if inside.config_file.exists() {
            // Either initdb's layout, or a Debian configuration directory whose postgresql.conf names the
            // data directory elsewhere.
            let tree = ConfTree::load_with_data_dir(&inside.config_file, dir).ok();
            let setting = |name: &str| tree.as_ref().and_then(|t| t.effective(name)).map(|s| PathBuf::from(s.value));
            let data_dir = setting("data_directory").unwrap_or_else(|| dir.to_path_buf());
            return Layout {
                major: major_of(&data_dir),
                hba_file: setting("hba_file").unwrap_or(inside.hba_file),
                config_file: inside.config_file,
                data_dir,
            };
        }
        // Debian: /var/lib/postgresql/15/main → /etc/postgresql/15/main, if that one names this directory.
        if let (Some(major), Some(name)) = (inside.major.or(major), dir.file_name()) {
            let conf_dir = debian_root.join(major.to_string()).join(name);
            let candidate = Self::from_dir_in(&conf_dir, debian_root, None);
            if conf_dir.join("postgresql.conf").exists() && same_dir(&candidate.data_dir, dir) {
                return candidate;
            }
        }
        inside
    }

    /// The configuration lives outside the data directory (Debian's layout): the server does not read a
    /// `postgresql.conf`, `pg_hba.conf` or `pg_ident.conf` inside it.
    pub fn config_outside_data_dir(&self) -> bool {
        !self.config_file.parent().is_some_and(|dir| same_dir(dir, &self.data_dir))
    }

    /// postgresql.conf with its includes and the data directory's postgresql.auto.conf, as the server reads
    /// them.
    pub fn conf_tree(&self) -> Result<ConfTree, LocalError> {
        Ok(ConfTree::load_with_data_dir(&self.config_file, &self.data_dir)?)
    }

    /// Where the server of this layout takes connections on this machine, from its configuration: `port`
    /// and the directories of `unix_socket_directories`. A setting no file makes has the server's default:
    /// port 5432, and the socket directory the build was made with (`/var/run/postgresql` in Debian's and
    /// the PGDG packages, `/tmp` in PostgreSQL's own builds), which [`LocalSocket::path`] looks for.
    pub fn socket(&self) -> Result<LocalSocket, LocalError> {
        let tree = self.conf_tree()?;
        let port = match tree.effective("port") {
            None => DEFAULT_SERVER_PORT,
            Some(src) => src.value.trim().parse().map_err(|_| LocalError::Setting {
                name: "port",
                value: src.value.clone(),
                at: format!("{}:{}", src.file.display(), src.line),
            })?,
        };
        let dirs = match tree.effective("unix_socket_directories") {
            // Abstract-namespace sockets (`@name`, PostgreSQL 14+) have no directory to connect through.
            Some(src) => src
                .value
                .split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty() && !d.starts_with('@'))
                .map(|d| self.data_dir.join(d))
                .collect(),
            None => DEFAULT_SOCKET_DIRS.iter().map(PathBuf::from).collect(),
        };
        Ok(LocalSocket { dirs, port })
    }
}

/// The server's built-in port.
const DEFAULT_SERVER_PORT: u16 = 5432;
/// Where PostgreSQL builds put their socket unless configured otherwise, in the order libpq's users look.
const DEFAULT_SOCKET_DIRS: [&str; 3] = ["/run/postgresql", "/var/run/postgresql", "/tmp"];

/// Where a server on this machine takes socket connections: its port, and the directories its socket may
/// be in (the configured ones, or the builds' defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalSocket {
    pub dirs: Vec<PathBuf>,
    pub port: u16,
}

impl LocalSocket {
    /// The directory of the first of `dirs` that holds the socket `.s.PGSQL.<port>` now.
    pub fn path(&self) -> Option<PathBuf> {
        self.dirs.iter().find(|d| d.join(format!(".s.PGSQL.{}", self.port)).exists()).cloned()
    }

    /// `/var/run/postgresql/.s.PGSQL.5432`, or the choices when there are several.
    pub fn describe(&self) -> String {
        let dirs: Vec<String> = self.dirs.iter().map(|d| d.display().to_string()).collect();
        format!(
            "{}/.s.PGSQL.{}",
            if dirs.len() == 1 { dirs[0].clone() } else { format!("{{{}}}", dirs.join(",")) },
            self.port
        )
    }

    /// Connects to `dbname` as the role `user` through the socket, as the OS user `owner` (the data directory's
    /// owner) when we are root: so a `peer` rule (Debian's default for the socket) sees the owner, as it would
    /// for `sudo -u postgres psql`. No password is given; the socket's rule must let the owner in without one.
    pub async fn connect_as_owner(
        &self,
        user: &str,
        dbname: &str,
        owner: &Identity,
    ) -> Result<tokio_postgres::Client, ConnectError> {
        let dir = self.path();
        let target = Target {
            host: dir.as_ref().unwrap_or(&self.dirs.first().cloned().unwrap_or_default()).display().to_string(),
            port: self.port,
            user: user.to_owned(),
            dbname: dbname.to_owned(),
        };
        let fail =
            |kind, reason: String| ConnectError { target: target.clone(), dbname: dbname.to_owned(), kind, reason };
        let Some(dir) = dir else {
            return Err(fail(
                ConnectErrorKind::Refused,
                format!("no socket {} (is the server running?)", self.describe()),
            ));
        };
        let socket = dir.join(format!(".s.PGSQL.{}", self.port));
        let switch = (nix::unistd::geteuid().is_root() && !owner.is_current()).then(|| (owner.uid(), owner.gid()));
        let path = socket.clone();
        // The connect switches the calling thread's ids for a moment: a thread of its own, never the
        // runtime's, which other tasks share.
        let stream = tokio::task::spawn_blocking(move || connect_unix_as(&path, switch))
            .await
            .expect("connecting a socket does not panic")
            .and_then(|s| {
                s.set_nonblocking(true)?;
                tokio::net::UnixStream::from_std(s)
            })
            .map_err(|e| {
                let kind = match e.kind() {
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => ConnectErrorKind::Refused,
                    _ => ConnectErrorKind::Other,
                };
                fail(kind, format!("{}: {e}", socket.display()))
            })?;
        let mut cfg = tokio_postgres::Config::new();
        cfg.host_path(&dir).port(self.port).user(user).dbname(dbname).application_name("qrd");
        let started = tokio::time::timeout(DEFAULT_CONNECT_TIMEOUT, cfg.connect_raw(stream, tokio_postgres::NoTls));
        let (client, connection) = match started.await {
            Err(_) => return Err(fail(ConnectErrorKind::Timeout, "no complete answer in time".to_owned())),
            Ok(Err(e)) => return Err(ConnectError::from_pg(&target, dbname, &e)),
            Ok(Ok(pair)) => pair,
        };
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("socket connection closed: {e}");
            }
        });
        Ok(client)
    }
}

/// Connects the Unix socket `path`, as `ids` (uid, gid) when given. Peer authentication asks the kernel for
/// the credentials the connecting thread had at connect(2); Linux keeps credentials per thread, so only this
/// thread's effective ids change, and only around the connect. glibc's setresuid/setresgid would change every
/// thread of the process (other work of ours would run as the owner meanwhile), hence the raw system calls.
fn connect_unix_as(path: &Path, ids: Option<(u32, u32)>) -> std::io::Result<std::os::unix::net::UnixStream> {
    use nix::libc;
    let Some((uid, gid)) = ids else { return std::os::unix::net::UnixStream::connect(path) };
    let keep = libc::uid_t::MAX; // -1: leave the real and saved ids alone
    let set = |call: libc::c_long, id: u32| -> std::io::Result<()> {
        // SAFETY: setresuid/setresgid take three integer ids and touch no memory of ours; the real and saved
        // ids stay root's, so switching back is always allowed.
        let r = unsafe { libc::syscall(call, keep, id, keep) };
        if r == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
    };
    let root_gid = nix::unistd::getegid().as_raw();
    set(libc::SYS_setresgid, gid)?;
    let connected = set(libc::SYS_setresuid, uid).and_then(|()| {
        let stream = std::os::unix::net::UnixStream::connect(path);
        if set(libc::SYS_setresuid, 0).is_err() {
            // This thread would go on as the owner: stop before anything else runs with the wrong ids.
            std::process::abort();
        }
        stream
    });
    if set(libc::SYS_setresgid, root_gid).is_err() {
        std::process::abort();
    }
    connected
}

/// The major version in a data directory's `PG_VERSION` (`12`, `16`, …).
pub fn major_of(data_dir: &Path) -> Option<u32> {
    std::fs::read_to_string(data_dir.join("PG_VERSION")).ok()?.trim().parse().ok()
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// pg_hba.conf as read for an edit: where, its text, and the parsed file.
#[derive(Debug, Clone)]
pub struct HbaText {
    pub path: PathBuf,
    pub text: String,
    pub file: HbaFile,
}

/// A connected server whose files qrd can reach on this machine.
pub struct LocalServer {
    pub session: Session,
    pub facts: ServerFacts,
    pub data_dir: PathBuf,
    pub owner: Owner,
}

impl LocalServer {
    /// Connects and finds the data directory on this machine. With `data_dir`, refuses when the server
    /// reached uses another one (qrd would change the wrong cluster's files).
    pub async fn open(opts: &ConnectOpts, data_dir: Option<&Path>) -> Result<LocalServer, LocalError> {
        let session = Session::open(opts).await?;
        let facts = serverconf::facts(&session).await?;
        let actual = PathBuf::from(&facts.data_directory);
        if let Some(given) = data_dir {
            let layout = Layout::from_dir(given);
            if !same_dir(&layout.data_dir, &actual) {
                return Err(LocalError::OtherDataDir {
                    given: given.to_path_buf(),
                    actual,
                    address: session.target().address(),
                });
            }
        }
        let owner =
            Owner::of(&actual).map_err(|source| LocalError::DataDirUnreachable { path: actual.clone(), source })?;
        Ok(LocalServer { session, facts, data_dir: actual, owner })
    }

    /// Mode `mode`, owned by the server's OS user.
    pub fn perms(&self, mode: u32) -> Perms {
        self.owner.perms(mode)
    }

    pub fn port(&self) -> u16 {
        self.session.target().port
    }

    pub fn config_file(&self) -> PathBuf {
        PathBuf::from(&self.facts.config_file)
    }

    pub fn hba_file(&self) -> PathBuf {
        PathBuf::from(&self.facts.hba_file)
    }

    /// postgresql.conf with its includes and postgresql.auto.conf, as the server reads them.
    pub fn conf_tree(&self) -> Result<ConfTree, LocalError> {
        Ok(ConfTree::load_with_data_dir(&self.config_file(), &self.data_dir)?)
    }

    /// pg_hba.conf, parsed. Include directives (PostgreSQL 16) are reported: qrd edits the main file's rules.
    pub fn hba(&self) -> Result<HbaText, LocalError> {
        let path = self.hba_file();
        let text = std::fs::read_to_string(&path).map_err(|source| LocalError::Read { path: path.clone(), source })?;
        let file = HbaFile::parse(&text, &path)?;
        for (line, inc) in file.includes() {
            tracing::warn!("{}:{line} includes {}: qrd edits only the main file's rules", path.display(), inc.path);
        }
        Ok(HbaText { path, text, file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initdb_layout_keeps_everything_inside() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("PG_VERSION"), "12\n").unwrap();
        std::fs::write(d.path().join("postgresql.conf"), "port = 4432\n").unwrap();
        let l = Layout::from_dir(d.path());
        assert_eq!(l.data_dir, d.path());
        assert_eq!(l.hba_file, d.path().join("pg_hba.conf"));
        assert_eq!(l.major, Some(12));
    }

    #[test]
    fn debian_layout_is_found_from_either_directory() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("var/lib/postgresql/15/main");
        let etc = root.path().join("etc/postgresql");
        let conf = etc.join("15/main");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::write(data.join("PG_VERSION"), "15\n").unwrap();
        std::fs::write(
            conf.join("postgresql.conf"),
            format!("data_directory = '{}'\nhba_file = '{}'\n", data.display(), conf.join("pg_hba.conf").display()),
        )
        .unwrap();
        let from_data = Layout::from_dir_in(&data, &etc, None);
        assert_eq!(from_data.config_file, conf.join("postgresql.conf"));
        assert_eq!(from_data.hba_file, conf.join("pg_hba.conf"));
        assert_eq!(from_data.major, Some(15));
        let from_conf = Layout::from_dir_in(&conf, &etc, None);
        assert_eq!(from_conf, from_data);
        assert!(from_data.config_outside_data_dir());
        // A data directory the DBA emptied for a clone: found under the major it is to hold.
        std::fs::remove_file(data.join("PG_VERSION")).unwrap();
        assert_eq!(Layout::from_dir_in(&data, &etc, None).config_file, data.join("postgresql.conf"));
        let emptied = Layout::from_dir_in(&data, &etc, Some(15));
        assert_eq!((emptied.config_file, emptied.data_dir), (conf.join("postgresql.conf"), data.clone()));
        assert_eq!(Layout::from_dir_in(&data, &etc, Some(16)).config_file, data.join("postgresql.conf"));
    }

    /// The port and socket directory the server uses, with includes followed and postgresql.auto.conf last.
    #[test]
    fn the_socket_comes_from_included_files_and_the_auto_conf() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("conf.d")).unwrap();
        std::fs::write(d.path().join("postgresql.conf"), "port = 5432\ninclude_dir = 'conf.d'\n").unwrap();
        std::fs::write(
            d.path().join("conf.d/10-site.conf"),
            "port = 4432\nunix_socket_directories = '/run/x, sock, @abstract'\n",
        )
        .unwrap();
        let layout = Layout::from_dir(d.path());
        assert!(!layout.config_outside_data_dir());
        let socket = layout.socket().unwrap();
        assert_eq!(socket, LocalSocket { dirs: vec!["/run/x".into(), d.path().join("sock")], port: 4432 });
        assert_eq!(socket.path(), None);
        std::fs::create_dir(d.path().join("sock")).unwrap();
        std::fs::write(d.path().join("sock/.s.PGSQL.4432"), "").unwrap();
        assert_eq!(socket.path(), Some(d.path().join("sock")));

        std::fs::write(d.path().join("postgresql.auto.conf"), "port = '4433'\n").unwrap();
        assert_eq!(layout.socket().unwrap().port, 4433);
        std::fs::write(d.path().join("postgresql.auto.conf"), "port = 'x'\n").unwrap();
        assert!(matches!(layout.socket(), Err(LocalError::Setting { name: "port", .. })));

        // Nothing set: the server's defaults.
        std::fs::write(d.path().join("postgresql.conf"), "").unwrap();
        std::fs::remove_file(d.path().join("postgresql.auto.conf")).unwrap();
        let socket = layout.socket().unwrap();
        assert_eq!(socket.port, 5432);
        assert_eq!(socket.dirs, DEFAULT_SOCKET_DIRS.map(PathBuf::from));
    }
}
