//! The installed PostgreSQL majors, as listed by `install-postgres.sh` in its manifest `versions.tsv`, and
//! the tools of each (found through `qrd-pgbin`, like the product finds them).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use qrd_pgbin::{Finder, FoundTool, PgVersion, Tool};

use crate::HarnessError;

/// One installed major: where its server and client programs live, and the server's full version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Installation {
    pub major: u32,
    /// initdb, pg_ctl, postgres.
    pub server_bin: PathBuf,
    /// psql, pg_dump, pg_restore, pg_basebackup … of this major or newer (PostgreSQL 15's for 14 and 12).
    pub client_bin: PathBuf,
    /// As the installed `postgres --version` reports it, e.g. `14.17`.
    pub server_version: String,
}

/// Where `install-postgres.sh` writes its manifest: `$QRD_PG_PREFIX/versions.tsv`, else
/// `/opt/qrd-pg/versions.tsv` as root, else `~/.cache/qrd-pg/versions.tsv` (the script's own rule).
pub fn manifest_path() -> PathBuf {
    if let Some(prefix) = std::env::var_os("QRD_PG_PREFIX").filter(|p| !p.is_empty()) {
        return PathBuf::from(prefix).join("versions.tsv");
    }
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/opt/qrd-pg/versions.tsv");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/"));
    home.join(".cache/qrd-pg/versions.tsv")
}

/// The installation of `major` from the manifest. A missing manifest or major is an error that says how to
/// install it: tests never skip silently because a server is missing.
pub fn installation(major: u32) -> Result<Installation, HarnessError> {
    installation_from(manifest_path(), major)
}

fn installation_from(path: PathBuf, major: u32) -> Result<Installation, HarnessError> {
    let text = std::fs::read_to_string(&path)
        .map_err(|e| HarnessError::Manifest { path: path.clone(), reason: e.to_string() })?;
    let all = parse_manifest(&text).map_err(|reason| HarnessError::Manifest { path: path.clone(), reason })?;
    let available = all.iter().map(|i| i.major.to_string()).collect::<Vec<_>>().join(", ");
    all.into_iter().find(|i| i.major == major).ok_or_else(|| HarnessError::MissingMajor {
        major,
        path,
        available: if available.is_empty() { "nothing".to_owned() } else { available },
    })
}

/// Lines `major<TAB>server_bin<TAB>client_bin<TAB>server_version`; `#` lines and blank lines are ignored.
fn parse_manifest(text: &str) -> Result<Vec<Installation>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let bad =
            || format!("line {} is not `major<TAB>server_bin<TAB>client_bin<TAB>server_version`: {line:?}", n + 1);
        let [major, server_bin, client_bin, server_version] = fields[..] else { return Err(bad()) };
        out.push(Installation {
            major: major.trim().parse().map_err(|_| bad())?,
            server_bin: PathBuf::from(server_bin),
            client_bin: PathBuf::from(client_bin),
            server_version: server_version.trim().to_owned(),
        });
    }
    Ok(out)
}

/// The programs the harness runs for one installation.
#[derive(Debug)]
pub(crate) struct Tools {
    pub initdb: FoundTool,
    pub pg_ctl: FoundTool,
    pub postgres: FoundTool,
    /// `Err` for server-only installations (a major with no packaged clients, such as 17, used to test that
    /// qrd refuses unsupported servers): only `Server::psql` needs it, and says why it is missing.
    pub psql: Result<FoundTool, String>,
}

/// Finds (once per process and installation: each lookup runs `tool --version`) the tools of `inst`.
pub(crate) fn tools(inst: &Installation) -> Result<Arc<Tools>, HarnessError> {
    static CACHE: Mutex<Option<HashMap<Installation, Arc<Tools>>>> = Mutex::new(None);
    if let Some(t) = CACHE.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_default().get(inst) {
        return Ok(t.clone());
    }
    let version = PgVersion::parse(&inst.server_version).map_err(|e| HarnessError::Invalid {
        what: "server version in the manifest",
        reason: format!("{e} (PostgreSQL {})", inst.major),
    })?;
    let find = |dir: &Path, tool: Tool| {
        Finder::in_dirs([dir.to_path_buf()]).find(tool, &version).map_err(|source| HarnessError::Tool {
            major: inst.major,
            tool,
            source,
        })
    };
    let tools = Arc::new(Tools {
        initdb: find(&inst.server_bin, Tool::Initdb)?,
        pg_ctl: find(&inst.server_bin, Tool::PgCtl)?,
        postgres: find(&inst.server_bin, Tool::Postgres)?,
        psql: find(&inst.client_bin, Tool::Psql).map_err(|e| e.to_string()),
    });
    CACHE.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_default().insert(inst.clone(), tools.clone());
    Ok(tools)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_lines_and_header() {
        let text = "# major\tserver_bin\tclient_bin\tserver_version\n\
                    16\t/p/pg16/bin\t/p/client\t16.14\n\n14\t/p/pg14/bin\t/usr/lib/postgresql/15/bin\t14.17\n";
        let all = parse_manifest(text).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].major, 14);
        assert_eq!(all[1].client_bin, PathBuf::from("/usr/lib/postgresql/15/bin"));
        assert_eq!(all[1].server_version, "14.17");
        let err = parse_manifest("16 /a /b 16.1\n").unwrap_err();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn a_missing_manifest_says_how_to_install() {
        let dir = tempfile::tempdir().unwrap();
        let err = installation_from(dir.path().join("versions.tsv"), 16).unwrap_err().to_string();
        assert!(err.contains("failed to read the PostgreSQL manifest"), "{err}");
        assert!(err.contains("cargo make pg-install"), "{err}");

        std::fs::write(dir.path().join("versions.tsv"), "# header\n16\t/a\t/b\t16.14\n").unwrap();
        let err = installation_from(dir.path().join("versions.tsv"), 11).unwrap_err().to_string();
        assert!(err.contains("PostgreSQL 11") && err.contains("it lists: 16"), "{err}");
        assert!(err.contains("cargo make pg-install"), "{err}");
    }
}
