//! A bundle: one backup as one file, `NAME.tar.zst` (see the crate documentation for its layout).
//! [`Writer`] builds one so that it exists under its final name only once complete; [`Reader`] checks
//! every member against the manifest and `SHA256SUMS` in one pass, and extracts safely.

mod name;
mod read;
#[cfg(test)]
mod tests;
mod write;

pub use name::{EXTENSION, PARTIAL_MARK, bundle_file_name, default_name, is_bundle_file_name, is_partial_file_name};
pub use read::{Problem, ReadError, Reader, Verified, extract, read_manifest, verify};
pub use write::{WriteError, Writer, WriterOptions, Written};

/// A file member's size and SHA-256 (lower-case hex), as `SHA256SUMS` records the checksum.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileSum {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}
