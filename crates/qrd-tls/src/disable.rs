//! `qrd ssl disable --temporary` and `qrd ssl restore`: for Qlik's installer, which cannot use SSL, TLS goes
//! off with the exact files saved beside it ([`qrd_server::SavedSet`]); restore puts those bytes, owners and
//! modes back as one change (all files or none), reloads, and proves TLS again.

use std::path::PathBuf;

use qrd_conf::hba::ConnType;
use qrd_conf::pgconf::{PlanOptions, parse_bool, plan_settings};
use qrd_conf::write::FileEdit;
use qrd_pg::connect::SslMode;
use qrd_server::proof;
use qrd_server::saved::{SavedCheck, ToSave};
use qrd_server::{CheckedWrite, FileKind, LocalServer, SavedSet, WriteOptions};

use crate::enable::retype;
use crate::error::TlsError;
use crate::{ProofTarget, SAVED_DIR};

/// What disable would do: the edits, in the order they are written (pg_hba.conf first: hostssl rules count
/// as errors once ssl = off is loaded).
#[derive(Debug)]
pub struct DisablePlan {
    pub dir: PathBuf,
    pub hba: Option<FileEdit>,
    pub conf: Vec<FileEdit>,
}

impl DisablePlan {
    pub fn diffs(&self) -> Vec<String> {
        self.hba.iter().chain(&self.conf).map(FileEdit::diff).collect()
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Disabled {
    /// Where the saved files are.
    pub dir: PathBuf,
    pub saved: usize,
}

pub fn plan_disable(server: &LocalServer) -> Result<DisablePlan, TlsError> {
    let dir = server.data_dir.join(SAVED_DIR);
    if dir.exists() {
        return Err(TlsError::AlreadyDisabled { dir });
    }
    let tree = server.conf_tree()?;
    let ssl_on = tree.effective("ssl").is_some_and(|s| parse_bool(&s.value) == Some(true));
    let hba = server.hba()?;
    let (after, lines) = retype(&hba, ConnType::HostSsl, ConnType::Host)?;
    if !ssl_on && lines.is_empty() {
        return Err(TlsError::NothingToDisable);
    }
    let conf = plan_settings(&tree, &[("ssl".to_owned(), "off".to_owned())], PlanOptions { skip_effective: true })?
        .edits
        .into_iter()
        .filter(FileEdit::is_change)
        .collect();
    let hba = (!lines.is_empty()).then(|| FileEdit::new(&hba.path, hba.text.clone(), after));
    Ok(DisablePlan { dir, hba, conf })
}

/// Saves, writes, reloads, and proves that a plain connection gets through.
pub async fn disable(server: &LocalServer, plan: &DisablePlan, proof: &ProofTarget) -> Result<Disabled, TlsError> {
    // The files edited, and in any case the main postgresql.conf and pg_hba.conf (restore then also notices
    // edits made to them while TLS was off).
    let mut to_save: Vec<ToSave> = Vec::new();
    for (e, kind) in plan.hba.iter().map(|e| (e, FileKind::Hba)).chain(plan.conf.iter().map(|e| (e, FileKind::Conf))) {
        to_save.push(ToSave { path: e.path.clone(), kind, written: Some(e.after.clone().into_bytes()) });
    }
    for (path, kind) in [(server.config_file(), FileKind::Conf), (server.hba_file(), FileKind::Hba)] {
        if !to_save.iter().any(|f| f.path == path) {
            to_save.push(ToSave { path, kind, written: None });
        }
    }
    let saved = SavedSet::create(&plan.dir, server.owner, server.port(), &to_save)?;
    tracing::info!("saved {} file(s) in {}", saved.files().len(), plan.dir.display());

    let mut stages = Vec::new();
    if let Some(e) = &plan.hba {
        stages.push(CheckedWrite::one(e.clone(), FileKind::Hba));
    }
    let mut conf = CheckedWrite::new();
    for e in &plan.conf {
        conf.add(e.clone(), FileKind::Conf);
    }
    stages.push(conf);
    let written =
        match qrd_server::apply_in_order(&stages, &server.session, WriteOptions { dry_run: false, reload: true }).await
        {
            Ok(w) => w,
            Err(e) => {
                remove_saved(saved);
                return Err(e.into());
            }
        };
    let port = server.port();
    if let Some(host) = proof::proof_host(&server.session, proof.host.as_deref()).await?
        && let Err(why) =
            proof::prove_plain_admitted(&proof::proof_opts(&proof.base, &host, port, SslMode::Disable, None)).await
    {
        let problems = written.journal.undo(Some(&server.session)).await;
        remove_saved(saved);
        return Err(TlsError::PlainStillFails { host, port, reason: why.to_string(), problems });
    }
    Ok(Disabled { dir: plan.dir.clone(), saved: to_save.len() })
}

fn remove_saved(saved: SavedSet) {
    let dir = saved.dir().to_path_buf();
    if let Err(e) = saved.remove() {
        tracing::warn!("could not remove the saved files in {}: {e}; remove the directory by hand", dir.display());
    }
}

/// What restore would do: the saved files that differ from the files now, as edits (postgresql.conf files
/// first: hostssl rules need ssl = on loaded).
#[derive(Debug)]
pub struct RestorePlan {
    pub saved: SavedSet,
    pub edits: Vec<(FileEdit, FileKind)>,
    /// Files already as saved.
    pub same: usize,
}

impl RestorePlan {
    pub fn diffs(&self) -> Vec<String> {
        self.edits.iter().map(|(e, _)| e.diff()).collect()
    }

    pub fn files(&self) -> usize {
        self.edits.len() + self.same
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Restored {
    pub files: usize,
    pub ssl: bool,
    /// TLS was proven over TCP.
    pub proven: bool,
}

/// Checks every saved file before anything is written: the copies against their checksums, and the files
/// against what disable wrote (a file edited since is refused without `force`).
pub fn plan_restore(server: &LocalServer, force: bool) -> Result<RestorePlan, TlsError> {
    let dir = server.data_dir.join(SAVED_DIR);
    let saved = SavedSet::open(&dir)?.ok_or(TlsError::NothingToRestore { dir })?;
    let mut checks: Vec<SavedCheck> = saved.check()?;
    checks.sort_by_key(|c| c.file.kind == FileKind::Hba);
    let mut edits = Vec::new();
    let mut same = 0;
    for c in checks {
        if c.is_same() {
            same += 1;
            continue;
        }
        let (Ok(current), Ok(saved_text)) = (String::from_utf8(c.current.clone()), String::from_utf8(c.saved.clone()))
        else {
            return Err(TlsError::NotUtf8 { path: c.file.path.clone() });
        };
        let edit = FileEdit::new(&c.file.path, current, saved_text).with_perms(c.file.perms());
        if c.edited_since() && !force {
            return Err(TlsError::EditedSince { path: c.file.path.clone(), diff: edit.diff() });
        }
        edits.push((edit, c.file.kind));
    }
    Ok(RestorePlan { saved, edits, same })
}

/// Puts the saved files back (all or none), reloads, proves TLS when ssl is on, removes the saved set.
pub async fn restore(server: &LocalServer, plan: RestorePlan, proof: &ProofTarget) -> Result<Restored, TlsError> {
    let mut conf = CheckedWrite::new();
    let mut hba = CheckedWrite::new();
    for (e, kind) in &plan.edits {
        match kind {
            FileKind::Conf => conf.add(e.clone(), *kind),
            FileKind::Hba => hba.add(e.clone(), *kind),
        };
    }
    let opts = WriteOptions { dry_run: false, reload: true };
    qrd_server::apply_in_order(&[conf, hba], &server.session, opts).await?;
    if plan.edits.is_empty() {
        qrd_pg::serverconf::reload(&server.session).await?;
    }
    let ssl = qrd_pg::serverconf::facts(&server.session).await?.ssl;
    let mut proven = false;
    if ssl && let Some(host) = proof::proof_host(&server.session, proof.host.as_deref()).await? {
        let port = server.port();
        if let Err(why) = proof::prove_tls(&proof::proof_opts(&proof.base, &host, port, SslMode::Require, None)).await {
            return Err(TlsError::RestoredButNoTls {
                host,
                port,
                reason: why.to_string(),
                dir: plan.saved.dir().to_path_buf(),
            });
        }
        proven = true;
    }
    let files = plan.files();
    plan.saved.remove()?;
    Ok(Restored { files, ssl, proven })
}
