//! The OS identity servers run as, and entering it (plus a namespace) in a child process before `exec`.
//!
//! PostgreSQL refuses to run as root ("cannot be run as root"), so as root the servers run as the
//! unprivileged system user `qrd-pg`, created on first use; as anyone else they run as ourselves.

use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Mutex;

use nix::sched::CloneFlags;
use qrd_pgbin::{Identity, IdentityError};

use crate::HarnessError;
use crate::error::run;

/// The user servers run as when we are root.
pub const SERVER_USER: &str = "qrd-pg";

/// The server user's identity when we are root (creating the user if needed), `None` otherwise: then the
/// server runs as ourselves.
pub(crate) fn server_user() -> Result<Option<Identity>, HarnessError> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    // One creation attempt per process at a time; other processes (nextest, other test binaries) may race us,
    // which is why a failed useradd is followed by another look-up.
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(ids) = lookup()? {
        return Ok(Some(ids));
    }
    // Absolute when possible: a non-login root shell (CI) may not have /usr/sbin on PATH.
    let useradd = if std::path::Path::new("/usr/sbin/useradd").exists() { "/usr/sbin/useradd" } else { "useradd" };
    let mut cmd = Command::new(useradd);
    cmd.args(["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVER_USER]);
    let created = run(&mut cmd, &format!("create the OS user {SERVER_USER} that the test servers run as"));
    match (lookup()?, created) {
        (Some(ids), _) => Ok(Some(ids)),
        (None, Err(e)) => Err(e),
        (None, Ok(_)) => Err(HarnessError::Unsupported {
            action: format!("look up the OS user {SERVER_USER}"),
            reason: "useradd succeeded but the user is still unknown to getpwnam".to_owned(),
        }),
    }
}

fn lookup() -> Result<Option<Identity>, HarnessError> {
    match Identity::from_name(SERVER_USER) {
        Ok(identity) => Ok(Some(identity)),
        Err(IdentityError::NoSuchUser { .. }) => Ok(None),
        Err(e) => Err(HarnessError::Unsupported {
            action: format!("look up the OS user {SERVER_USER}"),
            reason: e.to_string(),
        }),
    }
}

/// What a child enters between `fork` and `exec`: namespaces (by file descriptors opened beforehand, owned
/// by the closure so they live as long as the `Command`), then an identity (the product's
/// [`Identity::enter`]: supplementary groups, group, user).
#[derive(Debug, Default)]
pub(crate) struct Entry {
    /// A user namespace to enter first (only when the namespace was made without root).
    pub user: Option<OwnedFd>,
    pub net: Option<OwnedFd>,
    pub uts: Option<OwnedFd>,
    pub identity: Option<Identity>,
}

impl Entry {
    pub fn is_empty(&self) -> bool {
        self.user.is_none() && self.net.is_none() && self.uts.is_none() && self.identity.is_none()
    }

    /// Installs the entry on `cmd`.
    ///
    /// All of it happens in one `pre_exec` closure, in this order, because std applies `Command::uid`/`gid`
    /// *before* `pre_exec` closures and setns needs the root we would have given up by then.
    pub fn apply_to(self, cmd: &mut Command) {
        if self.is_empty() {
            return;
        }
        // SAFETY: the closure runs in the forked child, where only async-signal-safe calls are allowed. It
        // makes raw syscalls only (setns, then Identity::enter's setgroups, setgid, setuid) on values prepared
        // before the fork, and builds its error from an errno without allocating.
        unsafe {
            cmd.pre_exec(move || self.enter().map_err(std::io::Error::from));
        }
    }

    fn enter(&self) -> nix::Result<()> {
        if let Some(fd) = &self.user {
            nix::sched::setns(fd, CloneFlags::CLONE_NEWUSER)?;
        }
        if let Some(fd) = &self.net {
            nix::sched::setns(fd, CloneFlags::CLONE_NEWNET)?;
        }
        if let Some(fd) = &self.uts {
            nix::sched::setns(fd, CloneFlags::CLONE_NEWUTS)?;
        }
        // After the namespaces: setns needs the root that the identity switch gives up.
        if let Some(identity) = &self.identity {
            identity.enter()?;
        }
        Ok(())
    }
}

/// Makes `path` belong to the server user (no-op when servers run as ourselves).
pub(crate) fn chown(path: &std::path::Path, identity: Option<&Identity>) -> Result<(), HarnessError> {
    if let Some(id) = identity {
        std::os::unix::fs::chown(path, Some(id.uid()), Some(id.gid()))
            .map_err(|e| HarnessError::io(format!("give to the server user {SERVER_USER}"), path, e))?;
    }
    Ok(())
}
