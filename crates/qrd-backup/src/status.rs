//! The state of a backup directory as monitoring wants it (`qrd check --backup-dir`): the newest bundle that
//! verifies, and the newer ones that do not.

use std::path::{Path, PathBuf};

use qrd_pgbin::Finder;
use time::OffsetDateTime;

use crate::retention::{self, ListError};

#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub dir: PathBuf,
    pub bundles: usize,
    /// The newest bundle that verifies (checksums and pg_restore --list), and when it was made.
    pub newest_verified: Option<(String, OffsetDateTime)>,
    /// Bundles newer than that one that do not verify, with why.
    pub damaged: Vec<(String, String)>,
}

/// Verifies the bundles of `dir`, newest first, until one verifies.
pub fn status(dir: &Path, finder: &Finder) -> Result<Status, ListError> {
    let listing = retention::list(dir)?;
    let mut damaged = Vec::new();
    let mut newest_verified = None;
    for b in listing.bundles.iter().rev() {
        match crate::verify::verify(&b.path, finder) {
            Ok(_) => {
                newest_verified = Some((b.file_name.clone(), b.summary.created_utc));
                break;
            }
            Err(e) => damaged.push((b.file_name.clone(), e.to_string())),
        }
    }
    Ok(Status { dir: dir.to_owned(), bundles: listing.bundles.len(), newest_verified, damaged })
}
