//! Finding the configuration file a command works on, and the optional server connection that checks and
//! reloads it.

use std::path::{Path, PathBuf};

use qrd_pg::Session;
use qrd_pg::serverconf::{self, ServerPaths};

use crate::error::{CliError, ExitStatus};
use crate::options::{ConnectArgs, FileArgs};
use crate::output::note;

/// The file to work on, its text, and the server when one is reachable.
pub struct Located {
    pub path: PathBuf,
    pub text: String,
    pub session: Option<Session>,
    pub server: Option<ServerPaths>,
}

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Conf,
    Hba,
}

impl Kind {
    pub fn file_name(self) -> &'static str {
        match self {
            Kind::Conf => "postgresql.conf",
            Kind::Hba => "pg_hba.conf",
        }
    }
}

/// Connects (unless `--offline`) and picks the file: `--file`, else `--data-dir`/`<name>`, else the path the
/// server reports. A connection failure is fatal only when the server is the only way to find the file;
/// otherwise qrd goes on with the file alone and says what that skips.
pub async fn locate(kind: Kind, files: &FileArgs, conn: &ConnectArgs) -> Result<Located, CliError> {
    let given = files.file.clone().or_else(|| files.data_dir.as_ref().map(|d| d.join(kind.file_name())));
    let session = if files.offline {
        None
    } else {
        match Session::open(&conn.opts()).await {
            Ok(s) => Some(s),
            Err(e) if given.is_some() => {
                note(format!(
                    "warning: {e}\n  going on with the file alone: no validation against the server, no reload"
                ));
                None
            }
            Err(e) => {
                let hint = format!(
                    "{}; or, on the server's machine, name the file with --data-dir DIR or --file FILE (add --offline \
                     when the server is stopped)",
                    e.hint()
                );
                return Err(CliError::from(e).hint(hint));
            }
        }
    };
    let mut server = match &session {
        Some(s) => Some(serverconf::paths(s).await?),
        None => None,
    };
    let mut session = session;
    // A file given by name may belong to another cluster than the one we reached (an old data directory,
    // a copy): then the server can neither validate it nor should it be reloaded for it.
    if let (Some(p), Some(sp)) = (&given, &server)
        && !belongs_to(kind, p, sp)
    {
        note(format!(
            "warning: {} is not a file the server we connected to reads (its data directory is {}): editing the \
             file alone, with no validation against the server and no reload",
            p.display(),
            sp.data_directory
        ));
        (session, server) = (None, None);
    }
    let path = match (given, &server) {
        (Some(p), _) => p,
        (None, Some(sp)) => PathBuf::from(match kind {
            Kind::Conf => &sp.config_file,
            Kind::Hba => &sp.hba_file,
        }),
        (None, None) => {
            return Err(CliError::new(
                ExitStatus::Usage,
                format!("which {}? --offline needs a file", kind.file_name()),
            )
            .hint("pass --data-dir DIR (or PGDATA) or --file FILE"));
        }
    };
    let text = read(&path, server.is_some() && files.file.is_none() && files.data_dir.is_none())?;
    Ok(Located { path, text, session, server })
}

/// Whether `path` is the server's own file of this kind, or (postgresql.conf) a file in its data
/// directory or beside its main configuration file (includes usually live there).
fn belongs_to(kind: Kind, path: &Path, sp: &ServerPaths) -> bool {
    let canon = |p: &Path| std::fs::canonicalize(p).ok();
    let Some(path) = canon(path) else { return false };
    let own = match kind {
        Kind::Conf => &sp.config_file,
        Kind::Hba => &sp.hba_file,
    };
    if canon(Path::new(own)).as_ref() == Some(&path) {
        return true;
    }
    match kind {
        Kind::Hba => false,
        Kind::Conf => [Some(Path::new(&sp.data_directory)), Path::new(&sp.config_file).parent()]
            .into_iter()
            .flatten()
            .filter_map(canon)
            .any(|dir| path.starts_with(dir)),
    }
}

fn read(path: &Path, from_server: bool) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|e| {
        let hint = if from_server {
            "the server reported this path: run qrd on the server's machine, as a user that can read its \
             configuration (root or the postgres account), or pass --file"
        } else {
            "check the path and that this user may read it"
        };
        CliError::new(ExitStatus::Usage, format!("cannot read {}: {e}", path.display())).hint(hint)
    })
}
