//! `qrd backup verify BUNDLE`: every member's size and SHA-256 against the manifest and `SHA256SUMS` (one
//! pass over the bundle), and every database archive read whole by `pg_restore --list` of the source's major
//! or newer — the proof that the archive restores, short of restoring it (`qrd drill` does that).

use std::path::{Path, PathBuf};

use qrd_pgbin::{FindError, Finder, PgVersion, Tool, ToolError, run_blocking, scrubbed_command};

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

impl VerifyError {
    pub fn hint(&self) -> String {
        match self {
            VerifyError::Read(e) => e.hint(),
            VerifyError::Tools(e) => e.hint(),
            VerifyError::Tool(_) => {
                "pg_restore could not read the archive (its words are above): this bundle cannot be restored".into()
            }
            VerifyError::Scratch { .. } => "check the directory's permissions and free space".into(),
        }
    }
}

/// Verifies `bundle` (see the module documentation). The tables of contents are extracted into a scratch
/// directory beside the bundle, removed afterwards.
pub fn verify(bundle: &Path, finder: &Finder) -> Result<VerifyReport, VerifyError> {
    let reader = Reader::open(bundle)?;
    let manifest = reader.manifest().clone();
    let major = manifest.source.server_major.unwrap_or(12);
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
    let verified = reader.extract_matching(&dest, move |m| keep.iter().any(|w| w == m))?;
    tracing::info!("{}: every member's checksum matches", bundle.display());
    let mut databases = Vec::new();
    for d in &manifest.databases {
        let archive = dest.join(&d.member);
        let mut cmd = scrubbed_command(&pg_restore.path);
        cmd.arg("--list").arg(&archive);
        let out = run_blocking(&mut cmd, &format!("read the archive of {:?} (pg_restore --list)", d.name))?;
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
