//! The configuration that makes a data directory a standby, as PostgreSQL 12–16 read it: `standby.signal`
//! and, in `postgresql.auto.conf`, `primary_conninfo` (with `passfile=`: the replicator's password lives in a
//! 0600 file beside the data directory, never in a file of it), `primary_slot_name`, the guide's
//! `promote_trigger_file` (12–15; 16 removed it), and the settings that say where this server is reached
//! when a copy of another server's files would move them (see [`crate::local::kept_settings`]).
//!
//! The guide's `recovery.conf` is gone since 12: a 12 server refuses to start when it finds one, and reads
//! the same settings from its configuration files instead. `postgresql.auto.conf` is the one file of the
//! configuration every layout keeps in the data directory (Debian's included), read last, so what qrd writes
//! there wins over the copied primary's `postgresql.conf`.

use std::path::{Path, PathBuf};

use qrd_conf::pgconf::ConfFile;
use qrd_pg::Secret;
use qrd_pgbin::{Identity, passfile_line};

use crate::error::ReplicaError;

/// How a standby reaches its primary.
#[derive(Debug, Clone)]
pub struct Link {
    pub host: String,
    pub port: u16,
    pub replicator: String,
    pub password: Secret,
    pub application_name: String,
    pub sslmode: String,
    pub slot: Option<String>,
    pub trigger_file: Option<PathBuf>,
    /// Settings written as they are (`port`, `listen_addresses`, `unix_socket_directories`): the server's
    /// own values where a copy brought another server's, or `--port`.
    pub keep: Vec<(String, String)>,
}

/// The recovery settings qrd owns in a standby's postgresql.auto.conf: one it does not write this time (a
/// slot or trigger file the copied primary's file named) is commented out, so nothing stale stays active.
const STANDBY_KEYS: [&str; 3] = ["primary_conninfo", "primary_slot_name", "promote_trigger_file"];
pub(crate) const STANDBY_MARK: &str =
    "# qrd standby: stream from the primary (the password is in the passfile, not here)";

/// The first major without `promote_trigger_file`.
const NO_TRIGGER_FILE: u32 = 16;

/// `primary_conninfo`'s value: the primary, the replicator, the passfile, the name the primary shows and
/// sslmode, each quoted as libpq reads a conninfo value. No password.
pub fn primary_conninfo(link: &Link, passfile: &Path) -> String {
    [
        ("host", link.host.clone()),
        ("port", link.port.to_string()),
        ("user", link.replicator.clone()),
        ("passfile", passfile.display().to_string()),
        ("application_name", link.application_name.clone()),
        ("sslmode", link.sslmode.clone()),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={}", qrd_pgbin::conninfo_value(v)))
    .collect::<Vec<_>>()
    .join(" ")
}

/// `old` (a postgresql.auto.conf, the copied primary's or the server's own) with the standby settings of a
/// PostgreSQL `major` server following `link`, edited with the configuration model: a setting already there
/// is replaced in place, a stale recovery setting commented out, the rest appended under qrd's mark.
/// Refuses `promote_trigger_file` on 16 and later, which would not start with it.
pub fn standby_auto_conf(
    major: u32,
    old: &str,
    path: &Path,
    link: &Link,
    passfile: &Path,
) -> Result<String, ReplicaError> {
    if link.trigger_file.is_some() && major >= NO_TRIGGER_FILE {
        return Err(ReplicaError::TriggerFileRemoved { major });
    }
    let mut text = old.to_owned();
    if !text.lines().any(|l| l == STANDBY_MARK) {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(STANDBY_MARK);
        text.push('\n');
    }
    let parse_err = |source| ReplicaError::AutoConf { path: path.to_owned(), source };
    let mut file = ConfFile::parse(&text, path).map_err(parse_err)?;
    let mut wanted: Vec<(String, String)> = vec![("primary_conninfo".into(), primary_conninfo(link, passfile))];
    if let Some(slot) = &link.slot {
        wanted.push(("primary_slot_name".into(), slot.clone()));
    }
    if let Some(trigger) = &link.trigger_file {
        wanted.push(("promote_trigger_file".into(), trigger.display().to_string()));
    }
    wanted.extend(link.keep.iter().cloned());
    let internal = |e: qrd_conf::pgconf::EditError| ReplicaError::Internal(e.to_string());
    for key in STANDBY_KEYS {
        if !wanted.iter().any(|(name, _)| name == key) {
            file.remove(key).map_err(internal)?;
        }
    }
    for (name, value) in &wanted {
        file.set(name, value).map_err(internal)?;
    }
    Ok(file.render())
}

/// Makes `dir` (a data directory of PostgreSQL `major`) a standby following `link`: the password in
/// `passfile` (0600, the owner's), the settings in postgresql.auto.conf ([`standby_auto_conf`]), and
/// `standby.signal`. Returns the passfile's path.
pub fn configure_standby(
    dir: &Path,
    passfile: &Path,
    link: &Link,
    owner: &Identity,
    major: u32,
) -> Result<PathBuf, ReplicaError> {
    let auto_path = dir.join(qrd_conf::pgconf::AUTO_CONF_FILE);
    let old = match std::fs::read_to_string(&auto_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => return Err(ReplicaError::Io { what: "read", path: auto_path, source }),
    };
    let auto = standby_auto_conf(major, &old, &auto_path, link, passfile)?;
    let line =
        passfile_line(&link.host, &link.port.to_string(), "replication", &link.replicator, link.password.expose())
            .map_err(|source| ReplicaError::Io { what: "write", path: passfile.to_owned(), source })?;
    write_owned(passfile, line.as_bytes(), 0o600, owner)?;
    write_owned(&auto_path, auto.as_bytes(), 0o600, owner)?;
    write_owned(&dir.join("standby.signal"), b"", 0o600, owner)?;
    Ok(passfile.to_owned())
}

fn write_owned(path: &Path, bytes: &[u8], mode: u32, owner: &Identity) -> Result<(), ReplicaError> {
    let perms = qrd_conf::write::Perms { uid: owner.uid(), gid: owner.gid(), mode };
    qrd_conf::write::replace_file(path, bytes, perms)
        .map_err(|e| ReplicaError::Io {
            what: "write",
            path: path.to_owned(),
            source: std::io::Error::other(e.to_string()),
        })
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> Link {
        Link {
            host: "10.0.0.11".into(),
            port: 4432,
            replicator: "replicator".into(),
            password: Secret::new("pw 'with' \\ and : in it"),
            application_name: "standby_a".into(),
            sslmode: "require".into(),
            slot: None,
            trigger_file: None,
            keep: Vec::new(),
        }
    }

    const PASSFILE: &str = "/var/lib/postgresql/.main.qrd-replication.pgpass";

    fn auto(major: u32, old: &str, link: &Link) -> Result<String, ReplicaError> {
        standby_auto_conf(major, old, Path::new("/d/postgresql.auto.conf"), link, Path::new(PASSFILE))
    }

    /// What the server reads from a file: its active `name = value` lines, decoded.
    fn active(text: &str) -> Vec<(String, String)> {
        ConfFile::parse(text, Path::new("/d/postgresql.auto.conf"))
            .unwrap()
            .settings()
            .map(|s| (s.key.clone(), s.value.clone()))
            .collect()
    }

    /// 12 through 16 read the same standby configuration: primary_conninfo in postgresql.auto.conf (no
    /// recovery.conf since 12), with the passfile and no password.
    #[test]
    fn every_major_streams_with_primary_conninfo_and_a_passfile() {
        for major in 12..=16 {
            let text = auto(major, "", &link()).unwrap();
            let conninfo = format!(
                "host='10.0.0.11' port='4432' user='replicator' passfile='{PASSFILE}' \
                 application_name='standby_a' sslmode='require'"
            );
            assert_eq!(active(&text), [("primary_conninfo".to_owned(), conninfo)], "{major}: {text}");
            assert!(text.starts_with(STANDBY_MARK), "{text}");
            assert!(!text.contains("pw "), "the password is in no configuration file: {text}");
            assert!(!text.contains("recovery"), "{text}");
        }
    }

    /// The guide's trigger-file failover: promote_trigger_file up to 15; 16 removed the setting (a server
    /// with it in its configuration does not start), so qrd refuses it there.
    #[test]
    fn promote_trigger_file_exists_up_to_15_only() {
        let mut l = link();
        l.trigger_file = Some("/var/lib/postgresql/failover".into());
        for major in 12..=15 {
            let text = auto(major, "", &l).unwrap();
            assert!(
                active(&text).contains(&("promote_trigger_file".into(), "/var/lib/postgresql/failover".into())),
                "{major}: {text}"
            );
        }
        assert!(matches!(auto(16, "", &l), Err(ReplicaError::TriggerFileRemoved { major: 16 })));
    }

    /// A copied primary's postgresql.auto.conf: its own ALTER SYSTEM values stay; a primary_conninfo that
    /// named another server is replaced in place (one active line); a slot the copy names but the link does
    /// not is commented out; a kept port replaces the copied one.
    #[test]
    fn a_copied_auto_conf_is_edited_not_duplicated() {
        let old = "# Do not edit this file manually!\n# It will be overwritten by the ALTER SYSTEM command.\n\
                   work_mem = '8MB'\nprimary_conninfo = 'host=old port=5432'\nprimary_slot_name = 'old_slot'\n\
                   port = '5433'\n";
        let mut l = link();
        l.keep = vec![("port".into(), "4433".into())];
        let text = auto(16, old, &l).unwrap();
        let set = active(&text);
        assert_eq!(set.iter().filter(|(k, _)| k == "primary_conninfo").count(), 1, "{text}");
        assert!(set.contains(&("work_mem".into(), "8MB".into())), "{text}");
        assert!(set.contains(&("port".into(), "4433".into())), "{text}");
        assert!(!set.iter().any(|(k, _)| k == "primary_slot_name"), "{text}");
        assert!(text.contains("#primary_slot_name = 'old_slot'"), "{text}");
        // Run again on its own output: nothing changes.
        assert_eq!(auto(16, &text, &l).unwrap(), text);
    }

    #[test]
    fn a_slot_is_named_when_given() {
        let mut l = link();
        l.slot = Some("standby_a".into());
        let text = auto(12, "", &l).unwrap();
        assert!(active(&text).contains(&("primary_slot_name".into(), "standby_a".into())), "{text}");
    }

    /// The standby's passfile line comes from the one passfile writer: every field escaped.
    #[test]
    fn the_passfile_holds_the_replication_entry() {
        let l = link();
        let line = passfile_line(&l.host, "4432", "replication", &l.replicator, l.password.expose()).unwrap();
        assert_eq!(line, "10.0.0.11:4432:replication:replicator:pw 'with' \\\\ and \\: in it\n");
    }
}
