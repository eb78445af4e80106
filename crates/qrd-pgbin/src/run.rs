//! Running PostgreSQL tools: a clean environment and secrets only through a private passfile.

use std::ffi::OsStr;
use std::io::Write;
use std::path::Path;
use std::process::Command;

/// A `Command` for a PostgreSQL program with every `PG*` variable of our own environment removed, so
/// nothing (PGPASSWORD, PGSERVICE, PGOPTIONS, a stray PGSSLMODE …) reaches the child by accident. Callers set
/// what they mean explicitly.
pub fn scrubbed_command(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k.starts_with("PG")) {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// A libpq password file holding one password, readable only by us (mode 0600), removed on drop.
///
/// This is how a password reaches a child process: never argv (visible in `ps` and /proc/*/cmdline) and
/// not PGPASSWORD either, which shows in /proc/<pid>/environ to the same user and is deprecated by libpq.
pub struct Passfile {
    file: tempfile::NamedTempFile,
}

impl Passfile {
    /// A passfile whose single entry matches any host, port, database and user.
    pub fn new(password: &str) -> std::io::Result<Self> {
        Self::for_entry("*", "*", "*", "*", password)
    }

    /// A passfile with one `host:port:database:user:password` entry; fields are escaped as libpq expects.
    pub fn for_entry(host: &str, port: &str, database: &str, user: &str, password: &str) -> std::io::Result<Self> {
        if password.contains(['\n', '\r']) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a password containing a line break cannot be passed through a libpq password file",
            ));
        }
        // tempfile creates the file with mode 0600.
        let mut file = tempfile::Builder::new().prefix("qrd-pgpass-").tempfile()?;
        let field = |s: &str| if s == "*" { s.to_owned() } else { escape(s) };
        writeln!(file, "{}:{}:{}:{}:{}", field(host), field(port), field(database), field(user), escape(password))?;
        file.flush()?;
        Ok(Self { file })
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Points `cmd` at this passfile.
    pub fn apply(&self, cmd: &mut Command) {
        cmd.env("PGPASSFILE", self.path());
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace(':', "\\:")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn passfile_is_private_and_escaped() {
        let p = Passfile::for_entry("/tmp/s", "4432", "QSR", "a:b", r"p\w:d").unwrap();
        let mode = std::fs::metadata(p.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_to_string(p.path()).unwrap(), "/tmp/s:4432:QSR:a\\:b:p\\\\w\\:d\n");
        let path = p.path().to_owned();
        drop(p);
        assert!(!path.exists());
        assert!(Passfile::new("a\nb").is_err());
    }

    #[test]
    fn scrubbed_command_drops_pg_variables() {
        // SAFETY: tests in this module do not read the environment concurrently.
        unsafe { std::env::set_var("PGPASSWORD", "leak") };
        let out = scrubbed_command("env").output().unwrap();
        assert!(!String::from_utf8_lossy(&out.stdout).contains("PGPASSWORD"));
    }
}
