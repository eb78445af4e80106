//! `qrd standby rejoin`: a failed old primary becomes a standby of the new one.
//!
//! - The old primary must not run (qrd refuses while it does: stop it first). Its data directory may be in
//!   initdb's layout or a Debian cluster's (`/var/lib/postgresql/<major>/<name>`, or its `/etc` directory).
//! - `pg_rewind` of exactly its major, run as the data directory's owner, takes from the new primary what
//!   diverged after the timeline fork (it needs `wal_log_hints` or data checksums, which
//!   `prepare-primary` sets). From 13 pg_rewind recovers an uncleanly stopped directory itself; on 12 it
//!   must have stopped cleanly.
//! - pg_rewind copies the new primary's configuration files too. Where that would move the server — its
//!   `port`, `listen_addresses` or socket directory, read before the rewind with includes followed — its own
//!   values are written back into postgresql.auto.conf; a Debian cluster, which reads its configuration from
//!   `/etc`, loses the copied files instead. Then the directory is configured like a clone: `standby.signal`,
//!   `primary_conninfo` to the new primary with the replicator's password in a 0600 passfile.
//! - When rewinding is impossible (no wal_log_hints, a diverged history pg_rewind cannot follow), the error
//!   says why; with `--reclone` qrd then clones the directory afresh, keeping the old contents aside.
//! - `--start`: through the cluster's service (pg_ctlcluster, systemd, else pg_ctl), until it streams.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use qrd_pg::Secret;
use qrd_pg::connect::ChildConnection;
use qrd_pgbin::{Finder, Identity, PgVersion, Tool, ToolError, run, scrubbed_command};
use qrd_server::Layout;
use qrd_server::pgctl::running_postmaster;

use crate::clone::{self, CloneRequest};
use crate::configure::{Link, configure_standby};
use crate::error::ReplicaError;
use crate::local::{address_settings, kept_settings, remove_unread_copies, start_and_wait};

#[derive(Debug, Clone)]
pub struct RejoinRequest {
    pub data_dir: PathBuf,
    pub new_primary_host: String,
    pub new_primary_port: u16,
    pub replicator: String,
    pub password: Secret,
    pub slot: Option<String>,
    pub name: Option<String>,
    pub sslmode: String,
    pub reclone: bool,
    pub start: bool,
    pub superuser: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Rejoined {
    pub data_dir: PathBuf,
    /// `pg_rewind` or `re-clone`.
    pub method: String,
    pub new_primary: String,
    /// Why pg_rewind could not be used (with `--reclone`).
    pub rewind_failed: Option<String>,
    /// The server's own settings written back over the rewound copy's (`port`, `listen_addresses`,
    /// `unix_socket_directories`).
    pub kept: BTreeMap<String, String>,
    pub seconds: f64,
    pub streaming: Option<String>,
}

/// Rejoins `req.data_dir`; `source` connects to the new primary as a superuser (for pg_rewind).
pub async fn rejoin(req: &RejoinRequest, source: &ChildConnection, finder: &Finder) -> Result<Rejoined, ReplicaError> {
    let started = Instant::now();
    let layout = Layout::from_dir(&req.data_dir);
    let dir = layout.data_dir.clone();
    if let Some(pid) = running_postmaster(&dir) {
        return Err(ReplicaError::StillRunning { dir, pid });
    }
    let major = layout.major.ok_or_else(|| ReplicaError::NotADataDir { dir: dir.clone() })?;
    let owner = Identity::owner_of(&dir).map_err(|e| ReplicaError::OsUser { message: e.to_string() })?;
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "standby".into());
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_owned();
    // Where the server is reached, before pg_rewind brings the new primary's configuration.
    let before = address_settings(&layout)?;
    let new_primary = format!("{}:{}", req.new_primary_host, req.new_primary_port);

    let version = PgVersion { major, minor: 0, text: major.to_string() };
    source.give_to(owner.uid(), owner.gid()).map_err(|source| ReplicaError::Io {
        what: "give the password file to",
        path: dir.clone(),
        source,
    })?;
    // Without a pg_rewind of exactly this major there is no rewind: with --reclone that is a reason to
    // clone, otherwise the error names what to install.
    let rewound: Result<(), String> = match finder.find(Tool::PgRewind, &version) {
        Err(e) if req.reclone => Err(e.to_string()),
        Err(e) => return Err(e.into()),
        Ok(pg_rewind) => {
            let mut cmd = scrubbed_command(&pg_rewind.path);
            source.apply(&mut cmd);
            cmd.env("PGHOST", &req.new_primary_host).env("PGPORT", req.new_primary_port.to_string());
            cmd.arg("--target-pgdata").arg(&dir).args(["--source-server", "dbname=postgres"]).current_dir("/");
            if !owner.is_current() {
                owner.apply_to(&mut cmd);
            }
            tracing::info!("rewinding {} to follow {new_primary} (pg_rewind {})", dir.display(), pg_rewind.version);
            match run(cmd, "rewind the old primary (pg_rewind)").await {
                Ok(_) => Ok(()),
                // Stopped by Ctrl-C or SIGTERM: no reason to clone instead.
                Err(e @ ToolError::Interrupted { .. }) => return Err(e.into()),
                Err(e) => Err(e.to_string()),
            }
        }
    };
    let (method, rewind_failed, kept) = match rewound {
        Ok(_) => {
            remove_unread_copies(&dir, &layout)?;
            let keep = kept_settings(&before, &address_settings(&layout)?);
            let kept = keep.iter().cloned().collect();
            let link = Link {
                host: req.new_primary_host.clone(),
                port: req.new_primary_port,
                replicator: req.replicator.clone(),
                password: req.password.clone(),
                application_name: req.name.clone().unwrap_or_else(|| name.clone()),
                sslmode: req.sslmode.clone(),
                slot: req.slot.clone(),
                trigger_file: None,
                keep,
            };
            let passfile = parent.join(format!(".{name}.qrd-replication.pgpass"));
            configure_standby(&dir, &passfile, &link, &owner, major)?;
            ("pg_rewind".to_owned(), None, kept)
        }
        Err(e) if req.reclone => {
            tracing::warn!("pg_rewind could not rewind {}: {e}; cloning afresh (--reclone)", dir.display());
            let clone_req = CloneRequest {
                primary_host: req.new_primary_host.clone(),
                primary_port: req.new_primary_port,
                data_dir: dir.clone(),
                replicator: req.replicator.clone(),
                password: req.password.clone(),
                slot: req.slot.clone(),
                // The clone keeps the cluster's own address settings.
                port: None,
                trigger_file: None,
                os_user: owner.name().map(str::to_owned),
                name: req.name.clone(),
                force: true,
                start: false,
                sslmode: req.sslmode.clone(),
                superuser: req.superuser.clone(),
            };
            let cloned = clone::clone(&clone_req, finder).await?;
            ("re-clone".to_owned(), Some(e), cloned.kept)
        }
        Err(e) => return Err(ReplicaError::Rewind { dir, message: e }),
    };
    tracing::info!("{} is a standby of {new_primary} ({method})", dir.display());
    let streaming = if req.start {
        Some(start_and_wait(&Layout::from_dir(&dir), major, finder, &owner, req.superuser.as_deref()).await?)
    } else {
        None
    };
    Ok(Rejoined {
        data_dir: dir,
        method,
        new_primary,
        rewind_failed,
        kept,
        seconds: started.elapsed().as_secs_f64(),
        streaming,
    })
}
