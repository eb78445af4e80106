//! Locating a tool of a fitting major version: `--pg-bin-dir`, then `PATH`, then the Debian/Ubuntu layout
//! `/usr/lib/postgresql/<major>/bin`.

use std::fmt;

use qrd_exit::{ExitStatus, UserError};
use std::path::{Path, PathBuf};

use crate::version::PgVersion;

/// The PostgreSQL programs qrd or its harness run, and how their version must relate to the server's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tool {
    PgDump,
    PgDumpall,
    PgRestore,
    PgBasebackup,
    PgRewind,
    PgAmcheck,
    Psql,
    Initdb,
    PgCtl,
    Postgres,
    PgControldata,
}

impl Tool {
    pub fn name(self) -> &'static str {
        match self {
            Tool::PgDump => "pg_dump",
            Tool::PgDumpall => "pg_dumpall",
            Tool::PgRestore => "pg_restore",
            Tool::PgBasebackup => "pg_basebackup",
            Tool::PgRewind => "pg_rewind",
            Tool::PgAmcheck => "pg_amcheck",
            Tool::Psql => "psql",
            Tool::Initdb => "initdb",
            Tool::PgCtl => "pg_ctl",
            Tool::Postgres => "postgres",
            Tool::PgControldata => "pg_controldata",
        }
    }

    /// Whether a newer major than the server's is acceptable.
    ///
    /// Client tools speak the protocol and read older catalogs, so newer is fine (and the only way to
    /// dump a server whose own major has no packaged clients). Tools that read or write the data
    /// directory itself — pg_rewind, initdb, pg_ctl, postgres, pg_controldata — must match exactly:
    /// pg_rewind refuses a data directory of another major ("incompatible" catalog version).
    pub fn accepts_newer(self) -> bool {
        matches!(
            self,
            Tool::PgDump | Tool::PgDumpall | Tool::PgRestore | Tool::PgBasebackup | Tool::PgAmcheck | Tool::Psql
        )
    }

    fn fits(self, tool: &PgVersion, server: &PgVersion) -> bool {
        if self.accepts_newer() { tool.major >= server.major } else { tool.major == server.major }
    }

    fn requirement(self, server: &PgVersion) -> String {
        if self.accepts_newer() {
            format!("PostgreSQL {} or newer", server.major_text())
        } else {
            format!("exactly PostgreSQL {}", server.major_text())
        }
    }
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A tool that was found and fits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundTool {
    pub tool: Tool,
    pub path: PathBuf,
    pub version: PgVersion,
}

/// A candidate that was looked at and rejected, kept to explain the failure.
#[derive(Debug)]
pub struct Candidate {
    pub path: PathBuf,
    /// The version it reported, or why it could not be asked.
    pub version: Result<PgVersion, ProbeError>,
}

/// Why a tool could not say its version.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Run(#[from] crate::ToolError),
    #[error(transparent)]
    Version(#[from] crate::VersionError),
}

#[derive(Debug, thiserror::Error)]
pub struct FindError {
    pub tool: Tool,
    pub server: PgVersion,
    pub searched: Vec<PathBuf>,
    pub rejected: Vec<Candidate>,
}

impl fmt::Display for FindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no usable {tool} for the server's PostgreSQL {server}: it needs {req}",
            tool = self.tool,
            server = self.server,
            req = self.tool.requirement(&self.server),
        )?;
        for c in &self.rejected {
            match &c.version {
                Ok(v) if v.major < self.server.major => {
                    write!(f, "\n  {} is {} (older than the server's {})", c.path.display(), v, self.server)?
                }
                Ok(v) => write!(
                    f,
                    "\n  {} is {} (a different major than the server's {})",
                    c.path.display(),
                    v,
                    self.server
                )?,
                Err(e) => write!(f, "\n  {} could not report its version: {e}", c.path.display())?,
            }
        }
        if self.rejected.is_empty() {
            write!(f, "\n  searched: ")?;
            let dirs: Vec<String> = self.searched.iter().map(|d| d.display().to_string()).collect();
            write!(f, "{}", if dirs.is_empty() { "(nothing)".to_owned() } else { dirs.join(", ") })?;
        }
        Ok(())
    }
}

impl FindError {
    /// The rejected candidates in a few words: `/usr/bin/pg_dump 15.18, /opt/x/pg_dump (no version)`.
    pub fn rejected_summary(&self) -> String {
        let parts: Vec<String> = self
            .rejected
            .iter()
            .map(|c| match &c.version {
                Ok(v) => format!("{} {v}", c.path.display()),
                Err(_) => format!("{} (no version)", c.path.display()),
            })
            .collect();
        if parts.is_empty() { "none found".to_owned() } else { parts.join(", ") }
    }
}

impl UserError for FindError {
    /// Refused: no tool ran, nothing changed.
    fn exit_status(&self) -> ExitStatus {
        ExitStatus::Refused
    }

    fn hint(&self) -> Option<String> {
        Some(format!(
            "install the PostgreSQL {major} client tools (Debian/Ubuntu: postgresql-client-{major}) or pass \
             --pg-bin-dir DIR pointing at a bin directory with {tool} {req}",
            major = self.server.major_text(),
            tool = self.tool,
            req = self.tool.requirement(&self.server),
        ))
    }
}

/// Where to look for tools. Build once, ask many times.
#[derive(Debug, Clone)]
pub struct Finder {
    explicit: Vec<PathBuf>,
    path_dirs: Vec<PathBuf>,
    distro_root: PathBuf,
}

impl Finder {
    /// `explicit` is `--pg-bin-dir` (in order); when given they are the only places searched, so a wrong directory is an
    /// error rather than a silent fallback to some other installation.
    pub fn new(explicit: Vec<PathBuf>) -> Self {
        // Empty and relative PATH entries mean "the current directory" to a shell; a tool that runs as root
        // from cron must not pick up a pg_dump from wherever it was started, so only absolute entries count.
        let path_dirs = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).filter(|d| d.is_absolute()).collect())
            .unwrap_or_default();
        Self { explicit, path_dirs, distro_root: PathBuf::from("/usr/lib/postgresql") }
    }

    /// A finder over exactly these directories (the harness uses it with its manifest's bin dirs).
    pub fn in_dirs(dirs: impl IntoIterator<Item = PathBuf>) -> Self {
        Self { explicit: Vec::new(), path_dirs: dirs.into_iter().collect(), distro_root: PathBuf::new() }
    }

    /// Replaces `/usr/lib/postgresql` (for tests).
    pub fn with_distro_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.distro_root = root.into();
        self
    }

    /// The directories searched for `server`, in order.
    pub fn search_dirs(&self, server: &PgVersion) -> Vec<PathBuf> {
        if !self.explicit.is_empty() {
            return self.explicit.clone();
        }
        let mut dirs = self.path_dirs.clone();
        if !self.distro_root.as_os_str().is_empty() {
            // The server's own major first, then newer ones ascending: the closest fit wins.
            let mut majors: Vec<(u32, PathBuf)> = std::fs::read_dir(&self.distro_root)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok()?;
                    let major = PgVersion::parse(&name).ok()?.major;
                    Some((major, e.path().join("bin")))
                })
                .filter(|(m, _)| *m >= server.major)
                .collect();
            majors.sort();
            dirs.extend(majors.into_iter().map(|(_, d)| d));
        }
        dirs
    }

    /// Finds `tool` fitting a server of version `server`.
    pub fn find(&self, tool: Tool, server: &PgVersion) -> Result<FoundTool, FindError> {
        let searched = self.search_dirs(server);
        let mut rejected = Vec::new();
        let mut seen = Vec::new();
        for dir in &searched {
            let path = dir.join(tool.name());
            if !is_executable(&path) {
                continue;
            }
            // /bin and /usr/bin are often one directory: ask each real file once.
            let real = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
            if seen.contains(&real) {
                continue;
            }
            let wrapper = !self.distro_root.as_os_str().is_empty() && is_debian_wrapper(&real);
            seen.push(real);
            if wrapper {
                tracing::debug!(tool = tool.name(), path = %path.display(), "skipped: Debian's pg_wrapper");
                continue;
            }
            match tool_version(&path) {
                Ok(version) if tool.fits(&version, server) => {
                    tracing::debug!(tool = tool.name(), path = %path.display(), %version, "found");
                    return Ok(FoundTool { tool, path, version });
                }
                version => rejected.push(Candidate { path, version }),
            }
        }
        Err(FindError { tool, server: server.clone(), searched, rejected })
    }
}

/// Debian's and Ubuntu's `/usr/bin/pg_dump` (psql, pg_restore, pg_basebackup, …) is a link to
/// postgresql-common's perl `pg_wrapper`, which picks one of `/usr/lib/postgresql/<major>/bin` anew on each
/// call from its arguments and environment (PGCLUSTER, PGHOST/PGPORT, `--cluster`, ~/.postgresqlrc, the
/// default cluster). So the version it reports to a bare `--version` is not the one it would run for a
/// backup with `-h`/`-p` (then the newest installed), and each call starts perl, tens of milliseconds, most
/// of a `qrd check` over TCP. Those directories are searched directly after PATH, server's major first.
fn is_debian_wrapper(real: &Path) -> bool {
    real.file_name().is_some_and(|n| n == "pg_wrapper")
        && real.parent().and_then(Path::file_name).is_some_and(|d| d == "postgresql-common")
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// Runs `path --version` and parses what it prints.
pub(crate) fn tool_version(path: &Path) -> Result<PgVersion, ProbeError> {
    let mut cmd = crate::run::scrubbed_command(path);
    let out = crate::runner::run_blocking(cmd.arg("--version"), "ask a tool its version")?;
    Ok(PgVersion::from_version_output(&String::from_utf8_lossy(&out.stdout))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A fake tool that prints a version, the way the real ones do.
    fn fake(dir: &Path, name: &str, version: &str) {
        std::fs::create_dir_all(dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\necho '{name} (PostgreSQL) {version}'\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn prefers_first_fitting_and_explains_rejections() {
        let t = tempfile::tempdir().unwrap();
        let path15 = t.path().join("path15");
        fake(&path15, "pg_dump", "15.18");
        fake(&t.path().join("distro/16/bin"), "pg_dump", "16.2");
        fake(&t.path().join("distro/17/bin"), "pg_dump", "17.1");
        fake(&t.path().join("distro/14/bin"), "pg_dump", "14.17");
        let finder = Finder::in_dirs([path15.clone()]).with_distro_root(t.path().join("distro"));
        let server = PgVersion::parse("16.14").unwrap();

        let found = finder.find(Tool::PgDump, &server).unwrap();
        assert_eq!(found.version.text, "16.2", "the server's own major is preferred over newer ones");

        // pg_rewind must match exactly: a 17 is no good for a 16 server.
        fake(&t.path().join("distro/17/bin"), "pg_rewind", "17.1");
        let err = finder.find(Tool::PgRewind, &server).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("needs exactly PostgreSQL 16"), "{msg}");
        assert!(msg.contains("is 17.1 (a different major"), "{msg}");

        // Only older tools: the message names both versions.
        let finder = Finder::in_dirs([path15]).with_distro_root(t.path().join("none"));
        let msg = finder.find(Tool::PgDump, &server).unwrap_err().to_string();
        assert!(msg.contains("PostgreSQL 16.14"), "{msg}");
        assert!(msg.contains("is 15.18 (older than the server's 16.14)"), "{msg}");
    }

    /// A PATH entry that is Debian's pg_wrapper is never run: the distribution's directories it would choose
    /// from are searched directly, and the tool found is the real one with its own version.
    #[test]
    fn debian_pg_wrapper_is_not_run() {
        let t = tempfile::tempdir().unwrap();
        let common = t.path().join("share/postgresql-common");
        std::fs::create_dir_all(&common).unwrap();
        let ran = t.path().join("wrapper-ran");
        let wrapper = common.join("pg_wrapper");
        std::fs::write(&wrapper, format!("#!/bin/sh\ntouch '{}'\necho 'pg_dump (PostgreSQL) 15.18'\n", ran.display()))
            .unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = t.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink("../share/postgresql-common/pg_wrapper", bin.join("pg_dump")).unwrap();
        fake(&t.path().join("distro/15/bin"), "pg_dump", "15.18");
        fake(&t.path().join("distro/16/bin"), "pg_dump", "16.2");

        let finder = Finder::in_dirs([bin.clone()]).with_distro_root(t.path().join("distro"));
        let found = finder.find(Tool::PgDump, &PgVersion::parse("15.4").unwrap()).unwrap();
        assert_eq!(found.path, t.path().join("distro/15/bin/pg_dump"));
        let found = finder.find(Tool::PgDump, &PgVersion::parse("16.14").unwrap()).unwrap();
        assert_eq!(found.path, t.path().join("distro/16/bin/pg_dump"));
        assert!(!ran.exists(), "the wrapper was run");

        // Without a distribution directory to fall back on (the harness's own finder), it is a tool like any.
        let found = Finder::in_dirs([bin.clone()]).find(Tool::PgDump, &PgVersion::parse("15.4").unwrap()).unwrap();
        assert_eq!(found.path, bin.join("pg_dump"));
    }

    #[test]
    fn explicit_dir_is_the_only_place_searched() {
        let t = tempfile::tempdir().unwrap();
        fake(&t.path().join("distro/16/bin"), "pg_dump", "16.2");
        let finder = Finder::new(vec![t.path().join("empty")]).with_distro_root(t.path().join("distro"));
        let err = finder.find(Tool::PgDump, &PgVersion::parse("16.1").unwrap()).unwrap_err();
        assert_eq!(err.searched, vec![t.path().join("empty")]);
        assert!(err.hint().unwrap().contains("--pg-bin-dir"));
    }
}
