//! `qrd backup verify BUNDLE`: every member's size and SHA-256 against the manifest and `SHA256SUMS` (one
//! pass over the bundle), and every database archive read whole by `pg_restore --list` of the source's major
//! or newer (and of the pg_dump's major or newer, whose archive format it must read) — the proof that the
//! archive restores, short of restoring it (`qrd drill` does that). A failure says whether the bundle is
//! damaged or could not be checked here ([`VerifyError::is_damage`]).

use qrd_exit::{ExitStatus, UserError};
use std::path::{Path, PathBuf};

use qrd_pgbin::{FindError, Finder, PgVersion, Tool, ToolError, run, scrubbed_command};

use crate::bundle::{ReadError, Reader};
use crate::manifest::ArchiveFormat;

#[derive(Debug, Clone, serde::Serialize)]
pub struct VerifyReport {
    pub bundle: PathBuf,
    /// Bytes checked (before compression).
    pub content_bytes: u64,
    pub files: usize,
    pub databases: Vec<ArchiveChecked>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ArchiveChecked {
    pub database: String,
    /// Entries in the archive's table of contents, as `pg_restore --list` reads them.
    pub entries: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Tools(#[from] FindError),
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error("failed to make a scratch directory beside {}: {source}", path.display())]
    Scratch { path: PathBuf, source: std::io::Error },
}

impl UserError for VerifyError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            // A bundle that is missing or not one is the input's problem; a damaged one fails verification.
            VerifyError::Read(e) => e.exit_status(),
            VerifyError::Tools(e) => e.exit_status(),
            VerifyError::Tool(_) | VerifyError::Scratch { .. } => ExitStatus::Failed,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(self.hint_text())
    }
}

impl VerifyError {
    /// Whether the bundle is damaged — its own fault: a member's size or checksum, the compressed stream, a
    /// file that is no bundle, or an archive that a pg_restore of a fitting major reads to an error although
    /// its checksums match (pg_dump wrote it so). Anything else is a check that could not be made here and
    /// says nothing about the bundle: no fitting pg_restore, no room or no right for the scratch extraction,
    /// a bundle this user may not read, a newer bundle format, a pg_restore that did not start or was
    /// killed by a signal. `qrd backup prune` deletes damaged bundles and keeps the others.
    pub fn is_damage(&self) -> bool {
        match self {
            VerifyError::Read(e) => e.is_damage(),
            VerifyError::Tools(_) | VerifyError::Scratch { .. } => false,
            VerifyError::Tool(e) => e.code().is_some(),
        }
    }

    fn hint_text(&self) -> String {
        match self {
            VerifyError::Read(e) => e.hint().unwrap_or_default(),
            VerifyError::Tools(e) => e.hint().unwrap_or_default(),
            VerifyError::Tool(_) => {
                "pg_restore could not read the archive (its words are above): this bundle cannot be restored".into()
            }
            VerifyError::Scratch { .. } => "check the directory's permissions and free space".into(),
        }
    }
}

/// Verifies `bundle` (see the module documentation). The tables of contents are extracted into a scratch
/// directory beside the bundle, removed afterwards.
pub async fn verify(bundle: &Path, finder: &Finder) -> Result<VerifyReport, VerifyError> {
    let reader = Reader::open(bundle)?;
    let manifest = reader.manifest().clone();
    // A manifest naming neither the server's major nor pg_dump's: the oldest supported server.
    let major = manifest.archive_major().unwrap_or(12);
    let pg_restore = finder.find(Tool::PgRestore, &PgVersion { major, minor: 0, text: major.to_string() })?;
    let dir = bundle.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let scratch = tempfile::Builder::new()
        .prefix(".qrd-verify-")
        .tempdir_in(dir)
        .map_err(|source| VerifyError::Scratch { path: bundle.to_owned(), source })?;
    let dest = scratch.path().join("bundle");
    // A directory archive's table of contents is its toc.dat; a tar archive is read whole.
    let wanted: Vec<String> = manifest
        .databases
        .iter()
        .map(|d| match d.format {
            ArchiveFormat::Directory => format!("{}/toc.dat", d.member),
            ArchiveFormat::Tar => d.member.clone(),
        })
        .collect();
    let keep = wanted.clone();
    // Decompressing and hashing the whole bundle is CPU work: on a thread of its own, off the runtime's.
    let into = dest.clone();
    let verified =
        tokio::task::spawn_blocking(move || reader.extract_matching(&into, move |m| keep.iter().any(|w| w == m)))
            .await
            .expect("no panic")?;
    tracing::info!("{}: every member's checksum matches", bundle.display());
    let mut databases = Vec::new();
    for d in &manifest.databases {
        let archive = dest.join(&d.member);
        let mut cmd = scrubbed_command(&pg_restore.path);
        cmd.arg("--list").arg(&archive);
        let out = run(cmd, &format!("read the archive of {:?} (pg_restore --list)", d.name)).await?;
        let entries = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
            .count();
        tracing::info!("{:?}: pg_restore {} reads {entries} entries", d.name, pg_restore.version);
        databases.push(ArchiveChecked { database: d.name.clone(), entries });
    }
    Ok(VerifyReport {
        bundle: bundle.to_owned(),
        content_bytes: verified.content_bytes,
        files: verified.files.len(),
        databases,
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    use super::*;
    use crate::bundle::Problem;

    #[test]
    fn damage_is_told_from_a_check_that_could_not_be_made() {
        let path = PathBuf::from("/b/x.tar.zst");
        let io = |kind| std::io::Error::from(kind);
        let tool = |status| {
            VerifyError::Tool(ToolError::Exit {
                action: "read the archive".into(),
                command: "pg_restore --list".into(),
                status,
                stdout: String::new(),
                stderr: "pg_restore: error: could not read from input file: end of file".into(),
            })
        };
        let cases: Vec<(VerifyError, bool)> = vec![
            (
                VerifyError::Read(ReadError::Damaged {
                    path: path.clone(),
                    problems: vec![Problem::Missing { member: "QSR".into() }],
                }),
                true,
            ),
            (VerifyError::Read(ReadError::NotABundle { path: path.clone(), reason: "no member".into() }), true),
            // pg_restore of a fitting major exits 1 on an archive whose checksums match: pg_dump wrote it so.
            (tool(ExitStatus::from_raw(1 << 8)), true),
            // Killed (the OOM killer), or never started: nothing is known about the archive.
            (tool(ExitStatus::from_raw(9)), false),
            (
                VerifyError::Tool(ToolError::spawn("read", "pg_restore", io(std::io::ErrorKind::PermissionDenied))),
                false,
            ),
            (
                VerifyError::Read(ReadError::Io {
                    what: "open",
                    path: path.clone(),
                    source: io(std::io::ErrorKind::PermissionDenied),
                }),
                false,
            ),
            (VerifyError::Read(ReadError::NewerFormat { path: path.clone(), format: 2, supported: 1 }), false),
            (VerifyError::Scratch { path: path.clone(), source: io(std::io::ErrorKind::StorageFull) }, false),
            (
                VerifyError::Tools(FindError {
                    tool: Tool::PgRestore,
                    server: PgVersion { major: 16, minor: 0, text: "16".into() },
                    searched: vec![],
                    rejected: vec![],
                }),
                false,
            ),
        ];
        for (e, damage) in cases {
            assert_eq!(e.is_damage(), damage, "{e}");
        }
    }
}
