//! `qrd backup --from-data-dir DIR`: the guide's "Backing up the Qlik Sense Repository Database after
//! uninstalling Qlik Sense" — a data directory whose server no longer runs. qrd copies it, starts a
//! private server on the copy (its own port, a unix socket in a private directory, no TCP, trust for the
//! local socket only, the copy's own minimal configuration so nothing points back at the original), takes
//! the same bundle, stops the server and removes the copy. The original files are only read.

use qrd_exit::{ExitStatus, UserError};
use std::path::{Path, PathBuf};

use qrd_pg::connect::{ConnectOpts, SslMode};
use qrd_pgbin::{FindError, Finder, PgVersion, Tool, ToolError, run};
use qrd_server::local::{Layout, major_of};
use qrd_server::pgctl::{PgCtl, PgCtlError, StopMode, running_postmaster};

use crate::space::{self, SpaceError};

#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    #[error("{} is not a PostgreSQL data directory (no readable PG_VERSION)", dir.display())]
    NotADataDir { dir: PathBuf },
    #[error("a server is running on {} (pid {pid}): back it up over a connection instead", dir.display())]
    Running { dir: PathBuf, pid: u32 },
    #[error(transparent)]
    Space(#[from] SpaceError),
    #[error(transparent)]
    Tools(#[from] FindError),
    #[error(transparent)]
    Copy(#[from] ToolError),
    #[error(transparent)]
    Server(#[from] PgCtlError),
    #[error("failed to {what} {}: {source}", path.display())]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
}

impl UserError for OfflineError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            OfflineError::Space(e) => e.exit_status(),
            OfflineError::Tools(e) => e.exit_status(),
            OfflineError::NotADataDir { .. } | OfflineError::Running { .. } => ExitStatus::Refused,
            OfflineError::Copy(_) | OfflineError::Io { .. } | OfflineError::Server(_) => ExitStatus::Failed,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(self.hint_text())
    }
}

impl OfflineError {
    fn hint_text(&self) -> String {
        match self {
            OfflineError::NotADataDir { .. } => {
                "name the data directory (it holds PG_VERSION, base/ and global/)".into()
            }
            OfflineError::Running { .. } => "drop --from-data-dir and connect with -h/-p".into(),
            OfflineError::Space(e) => e.hint().unwrap_or_default(),
            OfflineError::Tools(e) => e.hint().unwrap_or_default(),
            OfflineError::Copy(_) | OfflineError::Io { .. } => "check the free space and this user's rights".into(),
            OfflineError::Server(_) => {
                "the copy's server log is above; the original data directory is untouched".into()
            }
        }
    }
}

/// A private server on a copy of a data directory; stopped and removed on drop.
pub struct CopyServer {
    ctl: PgCtl,
    socket_dir: PathBuf,
    port: u16,
    _work: tempfile::TempDir,
}

impl CopyServer {
    /// Connection options for the copy's server, as `user`, through its socket.
    pub fn connect_opts(&self, user: &str) -> ConnectOpts {
        ConnectOpts {
            host: Some(self.socket_dir.display().to_string()),
            port: Some(self.port),
            user: Some(user.to_owned()),
            sslmode: SslMode::Disable,
            prompt: false,
            ..ConnectOpts::default()
        }
    }
}

impl Drop for CopyServer {
    fn drop(&mut self) {
        // Only a server that runs (a start that failed early left none).
        if running_postmaster(self.ctl.data_dir()).is_none() {
            return;
        }
        // A destructor cannot await: the blocking stop, which an interruption does not cut short either.
        if let Err(e) = self.ctl.stop_blocking(StopMode::Fast) {
            tracing::warn!("stopping the server on the copy: {e}");
        }
    }
}

/// Copies `data_dir` into a private directory beside it (its parent: the server's user reaches it, as it
/// reaches the original) and starts a server on the copy.
pub async fn start_copy(data_dir: &Path, finder: &Finder) -> Result<CopyServer, OfflineError> {
    let layout = Layout::from_dir(data_dir);
    let data = layout.data_dir.clone();
    let major = major_of(&data).ok_or_else(|| OfflineError::NotADataDir { dir: data.clone() })?;
    let work_in = data.parent().unwrap_or(Path::new("/"));
    if let Some(pid) = running_postmaster(&data) {
        return Err(OfflineError::Running { dir: data, pid });
    }
    let version = PgVersion { major, minor: 0, text: major.to_string() };
    let pg_ctl = finder.find(Tool::PgCtl, &version)?;
    let size = crate::progress::tree_bytes(&data);
    space::ensure_free(work_in, size, "copy the data directory")?;
    let io = |what, path: &Path| {
        let path = path.to_owned();
        move |source| OfflineError::Io { what, path, source }
    };
    let work = tempfile::Builder::new()
        .prefix(".qrd-offline-")
        .tempdir_in(work_in)
        .map_err(io("make a directory in", work_in))?;
    let owner = qrd_server::Owner::of(&data).map_err(io("read the owner of", &data))?;
    let copy = work.path().join("data");
    tracing::info!("copying {} ({}) to start a private server on the copy", data.display(), space::human_bytes(size));
    let mut cp = qrd_pgbin::scrubbed_command("cp");
    cp.arg("-a").arg(&data).arg(&copy);
    run(cp, "copy the data directory").await?;
    let _ = std::fs::remove_file(copy.join("postmaster.pid"));
    // The copy's own configuration: nothing in it names the original (Debian's data_directory would).
    let conf = work.path().join("qrd-copy.conf");
    let hba = work.path().join("qrd-copy-hba.conf");
    let ident = work.path().join("qrd-copy-ident.conf");
    let port = 40000 + (std::process::id() % 20000) as u16;
    let conf_text = format!(
        "data_directory = {}\nhba_file = {}\nident_file = {}\nport = {port}\nlisten_addresses = ''\n\
         unix_socket_directories = {}\n",
        quote(&copy),
        quote(&hba),
        quote(&ident),
        quote(work.path())
    );
    for (path, text) in [(&conf, conf_text.as_str()), (&hba, "local all all trust\n"), (&ident, "")] {
        qrd_conf::write::replace_file(path, text.as_bytes(), owner.perms(0o600)).map_err(|e| OfflineError::Io {
            what: "write",
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
    }
    let dir = work.path();
    qrd_conf::write::set_owner_and_mode(dir, owner.perms(0o700)).map_err(|e| OfflineError::Io {
        what: "give",
        path: dir.to_owned(),
        source: std::io::Error::other(e),
    })?;
    let ctl = PgCtl::for_owner(&pg_ctl.path, &copy)?.log_file(work.path().join("server.log"));
    // pg_ctl hands -o to a shell.
    let options = format!("-c {}", qrd_pgbin::shell_quote(&format!("config_file={}", conf.display())));
    // From here on, a failed or interrupted start still stops whatever postmaster came up (on drop).
    let server = CopyServer { ctl, socket_dir: work.path().to_owned(), port, _work: work };
    server.ctl.start_with_options(&options).await?;
    tracing::info!("a private PostgreSQL {major} server runs on the copy (port {port}, socket only)");
    Ok(server)
}

/// A path as a postgresql.conf value (quoted and escaped by the configuration editor's own rule).
fn quote(p: &Path) -> String {
    qrd_conf::pgconf::format_value(&p.display().to_string()).expect("a path holds no NUL")
}
