//! Finding the configuration file a command works on, and the optional server connection that checks and
//! reloads it: `--file`, else the file of the cluster `--data-dir` names, else the path the server reports.

use qrd_exit::{ExitStatus, UserError};
use std::path::{Path, PathBuf};

use qrd_pg::Session;
use qrd_pg::connect::{ConnectError, ConnectOpts};
use qrd_pg::inventory::QueryError;
use qrd_pg::serverconf::{self, ServerFacts};

use crate::FileKind;
use crate::local::Layout;

/// How the DBA named the file (`--data-dir`, `--file`, `--offline`).
#[derive(Debug, Clone, Default)]
pub struct FileChoice {
    pub data_dir: Option<PathBuf>,
    pub file: Option<PathBuf>,
    /// Work on the files alone: no connection.
    pub offline: bool,
}

/// The file to work on, its text, and the server when one is reachable.
pub struct Located {
    pub kind: FileKind,
    pub path: PathBuf,
    pub text: String,
    pub session: Option<Session>,
    pub server: Option<ServerFacts>,
    /// The cluster `--data-dir` named, as found on disk.
    pub layout: Option<Layout>,
    /// The file was named by the DBA (`--file`), not found from a data directory or the server: it may be a
    /// copy that does not describe this machine.
    pub named: bool,
}

impl Located {
    /// The server's major: from the connection, else from the data directory's `PG_VERSION`.
    pub fn major(&self) -> Option<u32> {
        self.server.as_ref().map(|s| s.major).or_else(|| self.layout.as_ref().and_then(|l| l.major))
    }

    /// The data directory: `--data-dir`'s cluster, else the server's, else the file's own directory.
    pub fn data_dir(&self) -> PathBuf {
        self.layout
            .as_ref()
            .map(|l| l.data_dir.clone())
            .or_else(|| self.server.as_ref().map(|s| PathBuf::from(&s.data_directory)))
            .unwrap_or_else(|| self.path.parent().map(Path::to_path_buf).unwrap_or_default())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    /// The server was the only way to find the file.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("which {}? --offline needs a file", kind.file_name())]
    NoFile { kind: FileKind },
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, from_server: bool, source: std::io::Error },
}

impl UserError for LocateError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            LocateError::Connect(e) => e.exit_status(),
            LocateError::Query(e) => e.exit_status(),
            // Options that name no usable file.
            LocateError::NoFile { .. } | LocateError::Read { .. } => ExitStatus::Usage,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(self.hint_text())
    }
}

impl LocateError {
    fn hint_text(&self) -> String {
        match self {
            LocateError::Connect(e) => format!(
                "{}; or, on the server's machine, name the file with --data-dir DIR or --file FILE (add --offline \
                 when the server is stopped)",
                e.hint().unwrap_or_default()
            ),
            LocateError::Query(_) => "run again with -v for the statements qrd runs".into(),
            LocateError::NoFile { .. } => "pass --data-dir DIR (or PGDATA) or --file FILE".into(),
            LocateError::Read { from_server: true, .. } => "the server reported this path: run qrd on the server's \
                 machine, as a user that can read its configuration (root or the postgres account), or pass --file"
                .into(),
            LocateError::Read { from_server: false, .. } => "check the path and that this user may read it".into(),
        }
    }
}

/// Connects (unless `--offline`) and picks the file. A connection failure is fatal only when the server is
/// the only way to find the file; otherwise qrd goes on with the file alone and says what that skips.
pub async fn locate(kind: FileKind, choice: &FileChoice, opts: &ConnectOpts) -> Result<Located, LocateError> {
    let layout = choice.data_dir.as_deref().map(Layout::from_dir);
    let given = choice.file.clone().or_else(|| {
        layout.as_ref().map(|l| match kind {
            FileKind::Conf => l.config_file.clone(),
            FileKind::Hba => l.hba_file.clone(),
        })
    });
    let mut session = if choice.offline {
        None
    } else {
        match Session::open(opts).await {
            Ok(s) => Some(s),
            Err(e) if given.is_some() => {
                tracing::warn!("{e}\n  going on with the file alone: no validation against the server, no reload");
                None
            }
            Err(e) => return Err(e.into()),
        }
    };
    let mut server = match &session {
        Some(s) => Some(serverconf::facts(s).await?),
        None => None,
    };
    // A file given by name may belong to another cluster than the one we reached (an old data directory,
    // a copy): then the server can neither validate it nor should it be reloaded for it.
    if let (Some(p), Some(sp)) = (&given, &server)
        && !belongs_to(kind, p, sp)
    {
        tracing::warn!(
            "{} is not a file the server we connected to reads (its data directory is {}): editing the file \
             alone, with no validation against the server and no reload",
            p.display(),
            sp.data_directory
        );
        (session, server) = (None, None);
    }
    let from_server = given.is_none();
    let path = match (given, &server) {
        (Some(p), _) => p,
        (None, Some(sp)) => PathBuf::from(match kind {
            FileKind::Conf => &sp.config_file,
            FileKind::Hba => &sp.hba_file,
        }),
        (None, None) => return Err(LocateError::NoFile { kind }),
    };
    let text = std::fs::read_to_string(&path).map_err(|source| LocateError::Read {
        path: path.clone(),
        from_server: from_server && server.is_some(),
        source,
    })?;
    Ok(Located { kind, path, text, session, server, layout, named: choice.file.is_some() })
}

/// Whether `path` is the server's own file of this kind, or (postgresql.conf) a file in its data
/// directory or beside its main configuration file (includes usually live there).
fn belongs_to(kind: FileKind, path: &Path, sp: &ServerFacts) -> bool {
    let canon = |p: &Path| std::fs::canonicalize(p).ok();
    let Some(path) = canon(path) else { return false };
    let own = match kind {
        FileKind::Conf => &sp.config_file,
        FileKind::Hba => &sp.hba_file,
    };
    if canon(Path::new(own)).as_ref() == Some(&path) {
        return true;
    }
    match kind {
        FileKind::Hba => false,
        FileKind::Conf => [Some(Path::new(&sp.data_directory)), Path::new(&sp.config_file).parent()]
            .into_iter()
            .flatten()
            .filter_map(canon)
            .any(|dir| path.starts_with(dir)),
    }
}
