//! Where a server's files are on this machine and who owns them: from a connection (the server reports
//! `data_directory`, `config_file`, `hba_file`), or from a directory the DBA names (`--data-dir`), in the
//! layout initdb makes (configuration inside the data directory) or the one Debian and Ubuntu make with
//! `pg_createcluster` (data in `/var/lib/postgresql/<major>/<name>`, configuration in
//! `/etc/postgresql/<major>/<name>`).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use qrd_conf::ParseError;
use qrd_conf::hba::HbaFile;
use qrd_conf::pgconf::{ConfTree, LoadError};
use qrd_conf::write::Perms;
use qrd_pg::Session;
use qrd_pg::connect::{ConnectError, ConnectOpts};
use qrd_pg::inventory::QueryError;
use qrd_pg::serverconf::{self, ServerFacts};

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
}

impl LocalError {
    pub fn hint(&self) -> String {
        match self {
            LocalError::Connect(e) => e.hint(),
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
        Self::from_dir_in(dir, Path::new(DEBIAN_CONF_ROOT))
    }

    fn from_dir_in(dir: &Path, debian_root: &Path) -> Layout {
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
        if let (Some(major), Some(name)) = (inside.major, dir.file_name()) {
            let conf_dir = debian_root.join(major.to_string()).join(name);
            let candidate = Self::from_dir_in(&conf_dir, debian_root);
            if conf_dir.join("postgresql.conf").exists() && same_dir(&candidate.data_dir, dir) {
                return candidate;
            }
        }
        inside
    }
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
        let from_data = Layout::from_dir_in(&data, &etc);
        assert_eq!(from_data.config_file, conf.join("postgresql.conf"));
        assert_eq!(from_data.hba_file, conf.join("pg_hba.conf"));
        assert_eq!(from_data.major, Some(15));
        let from_conf = Layout::from_dir_in(&conf, &etc);
        assert_eq!(from_conf, from_data);
    }
}
