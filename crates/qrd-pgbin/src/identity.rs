//! Running a child process as another OS user, with that user's supplementary groups.
//!
//! PostgreSQL's programs refuse to run as root, so qrd (often run as root) starts pg_ctl as the data
//! directory's owner. The owner's supplementary groups matter: on Debian and Ubuntu the server's TLS key
//! (`/etc/ssl/private/ssl-cert-snakeoil.key`, mode 0640 root:ssl-cert) is readable only through the
//! `ssl-cert` group, so a server started without it fails with `could not access private key file …:
//! Permission denied`. std's `Command::uid`/`gid` keep no supplementary groups at all (std drops them when
//! root sets a uid), which is why the switch is done here, in a `pre_exec` hook, as login(1) would do it.

use std::ffi::CString;
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::unistd::{Gid, Uid, User};

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("failed to read the owner of {}: {source}", path.display())]
    Owner {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to look up the OS user {user} in the user database: {source}")]
    User {
        user: String,
        #[source]
        source: nix::Error,
    },
    #[error("the OS user {user} does not exist")]
    NoSuchUser { user: String },
    #[error("failed to list the groups of the OS user {user}: {source}")]
    Groups {
        user: String,
        #[source]
        source: nix::Error,
    },
}

/// An OS identity to run a child as: user, primary group and every supplementary group, prepared before
/// the fork so that switching to it in the child allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    name: Option<String>,
    uid: Uid,
    gid: Gid,
    /// Supplementary groups, the primary group among them (getgrouplist(3) puts it first).
    groups: Vec<Gid>,
}

impl Identity {
    /// The user named `name` with its primary group and the groups it is a member of.
    pub fn from_name(name: &str) -> Result<Self, IdentityError> {
        let user = User::from_name(name)
            .map_err(|source| IdentityError::User { user: name.to_owned(), source })?
            .ok_or_else(|| IdentityError::NoSuchUser { user: name.to_owned() })?;
        Self::of_user(&user)
    }

    /// The user owning `path` (a data directory, a configuration directory): its primary group and
    /// supplementary groups from the user database. A uid with no user entry (a data directory restored
    /// from another machine) runs with the file's group as its only group: there is nothing else to go by.
    pub fn owner_of(path: &Path) -> Result<Self, IdentityError> {
        let meta = std::fs::metadata(path).map_err(|source| IdentityError::Owner { path: path.to_owned(), source })?;
        let uid = Uid::from_raw(meta.uid());
        match User::from_uid(uid) {
            Ok(Some(user)) => Self::of_user(&user),
            Ok(None) => {
                let gid = Gid::from_raw(meta.gid());
                Ok(Identity { name: None, uid, gid, groups: vec![gid] })
            }
            Err(source) => Err(IdentityError::User { user: format!("with uid {uid}"), source }),
        }
    }

    fn of_user(user: &User) -> Result<Self, IdentityError> {
        let groups_error = |source| IdentityError::Groups { user: user.name.clone(), source };
        // A user name with a NUL byte cannot come from the user database; treat it like a failed lookup.
        let cname = CString::new(user.name.as_bytes()).map_err(|_| groups_error(nix::Error::EINVAL))?;
        let mut groups = nix::unistd::getgrouplist(&cname, user.gid).map_err(groups_error)?;
        if !groups.contains(&user.gid) {
            groups.insert(0, user.gid);
        }
        Ok(Identity { name: Some(user.name.clone()), uid: user.uid, gid: user.gid, groups })
    }

    /// The user name, when the user database knows the uid.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    pub fn uid(&self) -> u32 {
        self.uid.as_raw()
    }

    pub fn gid(&self) -> u32 {
        self.gid.as_raw()
    }

    /// Every group the child will have (primary group included).
    pub fn groups(&self) -> Vec<u32> {
        self.groups.iter().map(|g| g.as_raw()).collect()
    }

    /// Whether this process already runs as this user, so no switch is needed (nor possible without root).
    pub fn is_current(&self) -> bool {
        nix::unistd::geteuid() == self.uid
    }

    /// Switches the calling process to this identity: supplementary groups, then group, then user (after
    /// setuid nothing else could be changed). Async-signal-safe: three system calls on data prepared
    /// beforehand and no allocation, so it may run in a forked child before `exec`.
    pub fn enter(&self) -> nix::Result<()> {
        nix::unistd::setgroups(&self.groups)?;
        nix::unistd::setgid(self.gid)?;
        nix::unistd::setuid(self.uid)
    }

    /// Makes `cmd` run as this identity, through a `pre_exec` hook registered now: hooks run in the order
    /// they were added, so a hook that needs root (entering a namespace) must be added before this one.
    /// Do not combine with `Command::uid`/`gid`, which std applies before any hook.
    pub fn apply_to(&self, cmd: &mut Command) {
        let me = self.clone();
        // SAFETY: the closure runs in the forked child, where only async-signal-safe calls are allowed:
        // `enter` makes raw system calls on values cloned before the fork, and an errno converts to an
        // io::Error without allocating.
        unsafe {
            cmd.pre_exec(move || me.enter().map_err(std::io::Error::from));
        }
    }
}

impl fmt::Display for Identity {
    /// `postgres (uid 101, groups 104,103)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups: Vec<String> = self.groups.iter().map(|g| g.to_string()).collect();
        match &self.name {
            Some(name) => write!(f, "{name} (uid {}, groups {})", self.uid, groups.join(",")),
            None => write!(f, "uid {} (groups {})", self.uid, groups.join(",")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_of_a_file_is_its_user_with_the_user_databases_groups() {
        let me = User::from_uid(nix::unistd::geteuid()).unwrap().expect("the test user has a passwd entry");
        let t = tempfile::tempdir().unwrap();
        let id = Identity::owner_of(t.path()).unwrap();
        assert_eq!(id.uid(), me.uid.as_raw());
        assert_eq!(id.gid(), me.gid.as_raw());
        assert_eq!(id.name(), Some(me.name.as_str()));
        assert!(id.groups().contains(&me.gid.as_raw()));
        assert!(id.is_current());
        // `id -G` asks the same user database; the lists agree.
        let out = Command::new("id").arg("-G").arg(&me.name).output().unwrap();
        let mut want: Vec<u32> =
            String::from_utf8_lossy(&out.stdout).split_whitespace().map(|g| g.parse().unwrap()).collect();
        let mut got = id.groups();
        want.sort();
        got.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn unknown_users_and_paths_are_errors_that_say_so() {
        let err = Identity::from_name("qrd-no-such-user-x").unwrap_err();
        assert_eq!(err.to_string(), "the OS user qrd-no-such-user-x does not exist");
        let err = Identity::owner_of(Path::new("/nonexistent/data")).unwrap_err();
        assert!(err.to_string().starts_with("failed to read the owner of /nonexistent/data: "), "{err}");
    }

    /// A uid without a user entry keeps the file's group as its only group.
    #[test]
    fn an_owner_unknown_to_the_user_database_runs_with_the_files_group() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("not root: chown to a foreign uid needs root (CI runs as root); nothing to check");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let uid = (60000..65000).find(|u| User::from_uid(Uid::from_raw(*u)).ok().flatten().is_none()).unwrap();
        std::os::unix::fs::chown(t.path(), Some(uid), Some(uid)).unwrap();
        let id = Identity::owner_of(t.path()).unwrap();
        assert_eq!((id.uid(), id.gid(), id.groups(), id.name()), (uid, uid, vec![uid], None));
        assert_eq!(id.to_string(), format!("uid {uid} (groups {uid})"));
    }

    /// As root: the child runs as the user with all of its groups (the point of this module).
    #[test]
    fn a_child_runs_with_the_users_supplementary_groups() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("not root: switching users needs root (CI runs as root); nothing to check");
            return;
        }
        let id = Identity::from_name("postgres").expect("postgresql-common's postgres user (install-postgres.sh)");
        let mut cmd = Command::new("id");
        id.apply_to(&mut cmd);
        let out = cmd.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(text.starts_with(&format!("uid={}(postgres) gid={}", id.uid(), id.gid())), "{text}");
        for g in id.groups() {
            assert!(text.contains(&format!("{g}(")), "group {g} missing: {text}");
        }
        assert!(!text.contains("0(root)"), "root's groups must be gone: {text}");
    }
}
