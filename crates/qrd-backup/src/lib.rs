//! Backup bundles of a Qlik Sense repository server: the format, writing one atomically, reading and
//! verifying it member by member, extracting it safely, the lock of a backup directory, retention, and
//! free-space checks. Running pg_dump and pg_restore builds on this (later); nothing here talks to a
//! server. Progress goes through `tracing`; results are `Serialize` structs; errors are typed, each with
//! a `hint()`.
//!
//! # The bundle format (format 1)
//!
//! One backup is one file, `NAME.tar.zst` (qrd names it `qrd-backup-20261123T101500Z.tar.zst`): a tar
//! archive (GNU headers) compressed as one zstd frame with a content checksum. Standard tools read it:
//!
//! ```text
//! tar --zstd -tvf qrd-backup-20261123T101500Z.tar.zst          # list the members
//! mkdir restore && tar --zstd -xf qrd-backup-….tar.zst -C restore
//! cd restore && sha256sum -c SHA256SUMS                          # check every member
//! pg_restore -j 2 -d QSR QSR                                     # a directory-format archive
//! ```
//!
//! The members, in this order:
//!
//! | member | what |
//! |---|---|
//! | `manifest.json` | always first: the [`manifest::Manifest`] — qrd and server versions, source host and port, when each database's dump started and ended (each is its own snapshot), row counts, each database's privileges, settings and connection limit (which a pg_dump archive leaves out), the site's nodes and shared folders from QSR, the hooks run, and every member that follows with its kind and size |
//! | `globals.sql` | the roles (`pg_dumpall --globals-only`; passwords only as stored verifiers) |
//! | `QSR/`, `SenseServices/`, … | one pg_dump archive per database: a directory (`pg_dump -Fd`, the default) or `QSR.tar` (`pg_dump -Ft`, the Qlik guide's format) |
//! | `SHA256SUMS` | always last: the SHA-256 of `manifest.json` and of every file member, in `sha256sum` format |
//!
//! Files are mode 0600 and directories 0700 inside the tar, and the bundle file itself is 0600 from the
//! moment it is created: `globals.sql` holds password verifiers.
//!
//! **Why the manifest first and the checksums last.** A checksum is known only once its member has been
//! written, and each member is read once, while it is compressed; so the checksums cannot precede the
//! members without reading every dump twice. The description of the backup, though, is known before the
//! first member is written, and belongs at the front: `qrd backup list` reads only the first few
//! kilobytes of each bundle instead of decompressing gigabytes to reach a trailing manifest, and a reader
//! knows from the start which members must follow and how large each is, so it can refuse an unexpected
//! or unsafe member before writing anything, and checks everything in one pass (hash while streaming,
//! compare with `SHA256SUMS` at the end). `SHA256SUMS` in coreutils' format lets a DBA check an unpacked
//! bundle with `sha256sum -c` and no qrd at hand. A bundle whose `SHA256SUMS` is missing is truncated;
//! the zstd frame checksum covers every byte, the checksum list included.
//!
//! **A bundle under its final name is complete.** [`bundle::Writer`] writes `.NAME.tar.zst.partial-…`
//! (a name nothing takes for a bundle), flushes it, renames it (never over an existing bundle) and
//! flushes the directory; any failure or a dropped writer removes the partial file. [`lock::DirLock`]
//! keeps a second backup out of the same directory.

mod archive;
pub mod as_admin;
pub mod attributes;
pub mod backup;
pub mod bundle;
pub mod drill;
pub mod dump;
pub mod globals;
pub mod hook;
pub mod hostname;
pub mod lock;
pub mod manifest;
pub mod offline;
pub mod progress;
pub mod restore;
pub mod retention;
pub mod space;
pub mod status;
pub mod verify;

pub use bundle::{Problem, ReadError, Reader, Verified, WriteError, Writer, WriterOptions, Written};
pub use lock::{DirLock, LockError};
pub use manifest::Manifest;
pub use retention::{Candidate, ListError, Listing, Policy, PrunePlan, list, plan_prune};
pub use space::{SpaceError, ensure_free};
