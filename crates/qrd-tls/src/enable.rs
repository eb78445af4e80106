//! `qrd ssl enable`: install the certificate, set the guide's settings, retype `host` rules to `hostssl` in
//! place, reload, and prove it with real connections; any failure puts back what was there.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use qrd_conf::hba::{ConnType, EditError, Method};
use qrd_conf::pgconf::{PlanOptions, plan_settings};
use qrd_conf::write::{self, FileEdit};
use qrd_pg::connect::SslMode;
use qrd_server::proof::{self, TlsProof};
use qrd_server::{CheckedWrite, FileKind, Journal, LocalServer, WriteOptions};

use crate::error::TlsError;
use crate::material::{self, Material};
use crate::{CA_NAME, CERT_NAME, GUIDE_CIPHERS, KEY_NAME, ProofTarget, SAVED_DIR};

/// What enable would do. Empty when everything already is as asked.
#[derive(Debug)]
pub struct EnablePlan {
    pub material: Material,
    /// Files to install: path, content, mode (owned by the server's OS user).
    pub installs: Vec<(PathBuf, Vec<u8>, u32)>,
    /// postgresql.conf edits (one per file of the configuration tree that changes).
    pub conf: Vec<FileEdit>,
    /// pg_hba.conf: host → hostssl, and the lines retyped.
    pub hba: Option<(FileEdit, Vec<usize>)>,
    pub keep_host: bool,
}

impl EnablePlan {
    pub fn is_empty(&self) -> bool {
        self.installs.is_empty() && self.conf.is_empty() && self.hba.is_none()
    }

    /// The unified diffs of every file edit.
    pub fn diffs(&self) -> Vec<String> {
        self.conf.iter().chain(self.hba.iter().map(|(e, _)| e)).map(FileEdit::diff).collect()
    }
}

/// The proven result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Enabled {
    /// Where the proof ran; `None` when the server listens on no TCP address (nothing to prove over TCP).
    pub host: Option<String>,
    pub port: u16,
    pub tls: Option<TlsProof>,
    /// The sslmode the TLS proof used (verify-full when the CA and the host name allow it).
    pub sslmode: String,
    /// How plain connections fare: the server's refusal, or "kept (--keep-host)".
    pub plain: String,
    /// The lab CA clients need (`--self-signed`).
    pub lab_ca: Option<PathBuf>,
}

/// Plans enable on `server` with `material` (checked already). Refuses while TLS is temporarily disabled.
pub fn plan_enable(server: &LocalServer, material: Material, keep_host: bool) -> Result<EnablePlan, TlsError> {
    let saved = server.data_dir.join(SAVED_DIR);
    if saved.exists() {
        return Err(TlsError::TemporarilyDisabled { dir: saved });
    }
    let t = server.session.target();
    if !t.is_socket() && !material.leaf.covers_host(&t.host) {
        tracing::warn!(
            "the certificate does not name {} (its names: {}): clients using sslmode=verify-full with that host name \
             will refuse it",
            t.host,
            material.leaf.sans.join(", ")
        );
    }
    let installs: Vec<_> = material::files(&material, &server.data_dir)
        .into_iter()
        .filter(|(p, bytes, mode)| {
            let same = std::fs::read(p).is_ok_and(|old| old == *bytes);
            let right = std::fs::metadata(p).is_ok_and(|m| m.mode() & 0o7777 == *mode && m.uid() == server.owner.uid);
            !(same && right)
        })
        .collect();

    let mut wanted =
        vec![("ssl", "on".to_owned()), ("ssl_cert_file", CERT_NAME.to_owned()), ("ssl_key_file", KEY_NAME.to_owned())];
    if material.set_ca_file {
        wanted.push(("ssl_ca_file", CA_NAME.to_owned()));
    }
    wanted.push(("ssl_min_protocol_version", "TLSv1.2".to_owned()));
    wanted.push(("ssl_ciphers", GUIDE_CIPHERS.to_owned()));
    let wanted: Vec<(String, String)> = wanted.into_iter().map(|(n, v)| (n.to_owned(), v)).collect();
    let tree = server.conf_tree()?;
    let conf = plan_settings(&tree, &wanted, PlanOptions { skip_effective: true })?
        .edits
        .into_iter()
        .filter(FileEdit::is_change)
        .collect();

    let hba = server.hba()?;
    for r in
        hba.file.records().filter(|r| r.record.conn_type == ConnType::HostNoSsl && r.record.method != Method::Reject)
    {
        tracing::warn!(
            "{}:{} is a hostnossl rule: it admits plain connections whatever ssl is (remove it with `qrd hba remove \
             --line {}` to require TLS)",
            hba.path.display(),
            r.line,
            r.line
        );
    }
    let hba = if keep_host {
        None
    } else {
        let (after, lines) = retype(&hba, ConnType::Host, ConnType::HostSsl)?;
        (!lines.is_empty()).then(|| (FileEdit::new(&hba.path, hba.text.clone(), after), lines))
    };
    Ok(EnablePlan { material, installs, conf, hba, keep_host })
}

/// `from` rules retyped to `to` in place; the new text and the lines changed.
pub(crate) fn retype(
    hba: &qrd_server::local::HbaText,
    from: ConnType,
    to: ConnType,
) -> Result<(String, Vec<usize>), TlsError> {
    let mut file = hba.file.clone();
    let lines = file.retype(from, to).map_err(|e| match e {
        EditError::QuotedConnType { line, word } => TlsError::QuotedConnType { path: hba.path.clone(), line, word },
        other => TlsError::Internal(format!("retyping pg_hba.conf: {other}")),
    })?;
    Ok((file.render(), lines))
}

/// Installs, writes, reloads and proves (see the module documentation).
pub async fn enable(server: &LocalServer, plan: &EnablePlan, proof: &ProofTarget) -> Result<Enabled, TlsError> {
    let mut journal = Journal::new();
    for (path, bytes, mode) in &plan.installs {
        match write::install(path, bytes, server.perms(*mode)) {
            Ok(i) => {
                if let Some(b) = &i.backup {
                    tracing::info!("kept the previous {} as {}", path.display(), b.display());
                }
                tracing::info!("installed {} (mode {mode:04o})", path.display());
                journal.installed(i);
            }
            Err(source) => {
                let problems = journal.undo_files();
                return Err(TlsError::Install { path: path.clone(), source, problems });
            }
        }
    }
    // postgresql.conf first: pg_hba.conf's hostssl rules count as errors until ssl = on is loaded.
    let mut conf = CheckedWrite::new();
    for e in &plan.conf {
        conf.add(e.clone(), FileKind::Conf);
    }
    let mut stages = vec![conf];
    if let Some((e, lines)) = &plan.hba {
        tracing::info!("pg_hba.conf: host → hostssl on line(s) {lines:?}");
        stages.push(CheckedWrite::one(e.clone(), FileKind::Hba));
    }
    let opts = WriteOptions { dry_run: false, reload: true };
    match qrd_server::apply_in_order(&stages, &server.session, opts).await {
        Ok(w) => journal.append(w.journal),
        Err(e) => {
            let problems = journal.undo(Some(&server.session)).await;
            return Err(if problems.is_empty() { e.into() } else { undo_failed(e, problems) });
        }
    }
    if !plan.installs.is_empty() && plan.conf.is_empty() && plan.hba.is_none() {
        // New certificate files under unchanged settings: the server reads them at reload.
        qrd_pg::serverconf::reload(&server.session).await?;
        tracing::info!("reloaded");
    }

    let port = server.port();
    let lab_ca = plan.material.lab.then(|| server.data_dir.join(CA_NAME));
    let Some(host) = proof::proof_host(&server.session, proof.host.as_deref()).await? else {
        tracing::warn!("the server listens on no TCP address (listen_addresses is empty): nothing to prove over TCP");
        return Ok(Enabled { host: None, port, tls: None, sslmode: String::new(), plain: String::new(), lab_ca });
    };
    let leaf = &plan.material.leaf;
    let root = plan.material.ca_pem.as_ref().map(|_| server.data_dir.join(CA_NAME));
    let mode = if root.is_some() && leaf.covers_host(&host) { SslMode::VerifyFull } else { SslMode::Require };
    let root = root.filter(|_| mode == SslMode::VerifyFull);
    let tls =
        proof::prove_tls(&proof::proof_opts(&proof.base, &host, port, mode, root)).await.map_err(|e| e.to_string());
    // The server must present the certificate just installed, not one it kept from before (a TLS setup it
    // cannot load on reload is only logged, and the old certificate stays in use).
    let served =
        qrd_pg::tls::served_certificate(&host, port, proof.base.connect_timeout).await.map_err(|e| e.to_string());
    let tls = match (tls, served) {
        (Ok(t), Ok(der)) if der == leaf.der() => Ok(t),
        (Ok(_), Ok(der)) => {
            let what =
                qrd_cert::parse_der(&der).map(|c| c.subject).unwrap_or_else(|_| "another certificate".to_owned());
            Err(format!(
                "the server still presents {what}, not the certificate just installed: the reload did not load it \
                 (the server log says why)"
            ))
        }
        (Ok(_), Err(e)) => Err(e),
        (Err(e), _) => Err(e),
    };
    let plain = if plan.keep_host {
        Ok("kept (--keep-host)".to_owned())
    } else {
        proof::prove_plain_refused(&proof::proof_opts(&proof.base, &host, port, SslMode::Disable, None))
            .await
            .map_err(|e| e.to_string())
    };
    match (tls, plain) {
        (Ok(tls), Ok(plain)) => {
            Ok(Enabled { host: Some(host), port, tls: Some(tls), sslmode: mode.to_string(), plain, lab_ca })
        }
        (tls, plain) => {
            let reasons: Vec<String> = [tls.err(), plain.err()].into_iter().flatten().collect();
            let problems = journal.undo(Some(&server.session)).await;
            Err(TlsError::ProofFailed { host, port, reasons: reasons.join("; "), problems })
        }
    }
}

pub(crate) fn undo_failed(e: qrd_server::WriteError, problems: Vec<qrd_server::UndoProblem>) -> TlsError {
    TlsError::Write(qrd_server::WriteError::UndoFailed { cause: e.to_string(), problems })
}
