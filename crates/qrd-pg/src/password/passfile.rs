//! libpq's password file (`~/.pgpass`, `PGPASSFILE`): `hostname:port:database:username:password`, `*`
//! wildcards, `\:` and `\\` escapes, `#` comments, first match wins, ignored when group/world readable.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::password::Secret;

/// Socket directories libpq treats as "localhost" for password-file matching.
const DEFAULT_SOCKET_DIRS: [&str; 3] = ["/var/run/postgresql", "/run/postgresql", "/tmp"];

/// The password file to read: `PGPASSFILE`, else `~/.pgpass`.
pub fn default_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PGPASSFILE") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pgpass"))
}

/// The password for this connection, if the file has one. Problems (unreadable file, loose permissions)
/// are logged as warnings, as libpq prints them, and mean "no password from the file".
pub fn lookup(path: &Path, host: &str, port: u16, database: &str, user: &str) -> Option<Secret> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(
            "password file {} has group or world access; permissions should be u=rw (0600) or less: ignoring it",
            path.display()
        );
        return None;
    }
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!("could not read password file {}: {e}", path.display());
            return None;
        }
    };
    lookup_in(&text, host, port, database, user)
}

pub(crate) fn lookup_in(text: &str, host: &str, port: u16, database: &str, user: &str) -> Option<Secret> {
    let port = port.to_string();
    let host_is_default_socket = DEFAULT_SOCKET_DIRS.contains(&host.trim_end_matches('/'));
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let fields = split_fields(line);
        let [h, p, d, u, pw] = fields.as_slice() else { continue };
        let host_ok = h.matches(host) || (host_is_default_socket && h.value == "localhost");
        if host_ok && p.matches(&port) && d.matches(database) && u.matches(user) {
            return if pw.value.is_empty() { None } else { Some(Secret::new(pw.value.clone())) };
        }
    }
    None
}

#[derive(Debug, Default)]
struct Field {
    value: String,
    /// The field is a bare `*` (an escaped `\*` is a literal star, as in libpq).
    wildcard: bool,
    escaped: bool,
}

impl Field {
    fn matches(&self, s: &str) -> bool {
        self.wildcard || self.value == s
    }
}

/// Splits on unescaped `:`; the fifth field takes the rest of the line.
fn split_fields(line: &str) -> Vec<Field> {
    fn finish(f: &mut Field) {
        f.wildcard = !f.escaped && f.value == "*";
    }
    let mut fields = vec![Field::default()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        let full = fields.len() == 5;
        let f = fields.last_mut().expect("non-empty");
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    f.value.push(n);
                    f.escaped = true;
                }
            }
            ':' if !full => {
                finish(f);
                fields.push(Field::default());
            }
            c => f.value.push(c),
        }
    }
    finish(fields.last_mut().expect("non-empty"));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# comment\n\
        db1.example:4432:QSR:qliksenserepository:repo\\:pw\n\
        localhost:*:*:postgres:local\\\\pw\n\
        *:4432:*:postgres:any:colon\n\
        *:*:*:empty:\n\
        *:*:\\*:star:literal\n";

    fn get(host: &str, port: u16, db: &str, user: &str) -> Option<String> {
        lookup_in(FILE, host, port, db, user).map(|s| s.expose().to_owned())
    }

    #[test]
    fn matches_like_libpq() {
        assert_eq!(get("db1.example", 4432, "QSR", "qliksenserepository").as_deref(), Some("repo:pw"));
        assert_eq!(get("db1.example", 4432, "qsr", "qliksenserepository"), None, "database names are case-sensitive");
        assert_eq!(get("localhost", 5432, "x", "postgres").as_deref(), Some("local\\pw"));
        assert_eq!(get("/var/run/postgresql", 5432, "x", "postgres").as_deref(), Some("local\\pw"));
        assert_eq!(get("/tmp/other", 4432, "x", "postgres").as_deref(), Some("any:colon"));
        assert_eq!(get("h", 1, "d", "empty"), None, "an empty password means none");
        assert_eq!(get("h", 1, "*", "star").as_deref(), Some("literal"), "an escaped star is a star");
        assert_eq!(get("h", 1, "QSR", "star"), None, "an escaped star is no wildcard");
    }

    #[test]
    fn loose_permissions_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pgpass");
        std::fs::write(&p, "*:*:*:*:pw\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(lookup(&p, "h", 1, "d", "u").is_none());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(lookup(&p, "h", 1, "d", "u").unwrap().expose(), "pw");
    }
}
