//! Writing a bundle: members are planned first (files, byte buffers, whole directory trees in a stable
//! order), then [`Writer::finish`] streams the manifest, every member and `SHA256SUMS` through one tar
//! stream into multithreaded zstd, counting each member's size and SHA-256 as it passes (every source is
//! read once). The file is `.NAME.tar.zst.partial-…`, mode 0600 from creation (the roles file holds
//! password verifiers), until it is complete and flushed; then it is renamed to `NAME.tar.zst` (never over
//! an existing file) and the directory is flushed. Dropping a [`Writer`], or any failure, removes it.

use qrd_exit::{ExitStatus, UserError};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use qrd_conf::write::{AtomicFile, WriteError as FileWriteError};
use qrd_server::checksum::HashingReader;
use serde::Serialize;

use super::FileSum;
use super::name::{bundle_file_name, partial_prefix};
use crate::manifest::{
    ArchiveFormat, CHECKSUMS_MEMBER, MANIFEST_MEMBER, Manifest, Member, MemberKind, member_path_problem,
};
use crate::progress::{Counting, Shared};

/// Compression settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// zstd level (1–19). 1 by default: on the 1 GiB QSR-like set it compressed 950 MiB of directory
    /// archives to 151 MiB in 1.6 s with two threads, while zstd's own default 3 took 2.6 s for 165 MiB.
    pub level: i32,
    /// zstd worker threads; 0 compresses on the calling thread.
    pub threads: u32,
}

impl Default for WriterOptions {
    /// Level 1, one worker per core.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1);
        WriterOptions { level: 1, threads: cores }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{name:?} cannot name a bundle: {reason}")]
    BadName { name: String, reason: &'static str },
    #[error("{} already exists; a bundle is never overwritten", path.display())]
    Exists { path: PathBuf },
    #[error("{member:?} cannot be a member of a bundle: {reason}")]
    BadMember { member: String, reason: String },
    #[error("the manifest does not match the members added: {reason}")]
    ManifestMismatch { reason: String },
    #[error("{} changed while it was added to the bundle ({reason})", path.display())]
    SourceChanged { path: PathBuf, reason: String },
    #[error("failed to {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to write the bundle {}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: FileWriteError,
    },
}

impl UserError for WriteError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            // Refused before the bundle was started.
            WriteError::BadName { .. } | WriteError::Exists { .. } => ExitStatus::Refused,
            _ => ExitStatus::Failed,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(self.hint_text())
    }
}

impl WriteError {
    fn hint_text(&self) -> String {
        match self {
            WriteError::BadName { .. } => "choose a name without slashes that does not start with a dot".into(),
            WriteError::Exists { .. } => "the earlier bundle is kept; choose another name or directory".into(),
            WriteError::BadMember { .. } | WriteError::ManifestMismatch { .. } => {
                "this is a defect in qrd; no bundle was written (please report it)".into()
            }
            WriteError::SourceChanged { .. } => {
                "something else wrote into qrd's staging directory; no bundle was written, run the backup again".into()
            }
            WriteError::Io { .. } | WriteError::File { .. } => {
                "no bundle was written (the partial file is removed); check the free space and permissions of the \
                 backup directory"
                    .into()
            }
        }
    }
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> WriteError + 'a {
    move |source| WriteError::Io { what, path: path.to_owned(), source }
}

/// Where a member's content comes from.
#[derive(Debug)]
enum Content {
    File(PathBuf),
    Bytes(Vec<u8>),
    Dir,
}

#[derive(Debug)]
struct Planned {
    path: String,
    size: u64,
    content: Content,
}

/// A bundle being built. See the module documentation.
#[derive(Debug)]
pub struct Writer {
    file: AtomicFile,
    options: WriterOptions,
    planned: Vec<Planned>,
    progress: Shared,
}

/// A bundle under its final name.
#[derive(Debug, Clone, Serialize)]
pub struct Written {
    pub path: PathBuf,
    /// Size of the bundle file (compressed).
    pub bytes: u64,
    /// Bytes before compression: `manifest.json` and every file member.
    pub content_bytes: u64,
    /// The manifest as written (with its member list).
    pub manifest: Manifest,
    /// `manifest.json` and every file member with its size and SHA-256, as `SHA256SUMS` holds them.
    pub checksums: Vec<FileSum>,
}

impl Writer {
    /// Starts `DIR/NAME.tar.zst` as a partial file (mode 0600). Fails at once if a bundle of that name
    /// exists, rather than after hours of dumping.
    pub fn create(dir: &Path, name: &str, options: WriterOptions) -> Result<Writer, WriteError> {
        let file_name = bundle_file_name(name).map_err(|reason| WriteError::BadName { name: name.into(), reason })?;
        let path = dir.join(&file_name);
        if fs::symlink_metadata(&path).is_ok() {
            return Err(WriteError::Exists { path });
        }
        let file = AtomicFile::create(&path, &partial_prefix(&file_name), 0o600)
            .map_err(|source| WriteError::File { path: path.clone(), source })?;
        Ok(Writer { file, options, planned: Vec::new(), progress: crate::progress::silent() })
    }

    /// Reports the bytes taken in by [`Writer::finish`] to `progress`.
    pub fn with_progress(mut self, progress: Shared) -> Self {
        self.progress = progress;
        self
    }

    /// The final path (`DIR/NAME.tar.zst`).
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// The partial file's path, while it is being written.
    pub fn partial_path(&self) -> &Path {
        self.file.temp_path()
    }

    fn plan(&mut self, path: String, size: u64, content: Content) -> Result<(), WriteError> {
        if let Some(reason) = member_path_problem(&path) {
            return Err(WriteError::BadMember { member: path, reason: reason.into() });
        }
        if path == MANIFEST_MEMBER || path == CHECKSUMS_MEMBER {
            return Err(WriteError::BadMember { member: path, reason: "the bundle format reserves this name".into() });
        }
        if self.planned.iter().any(|p| p.path == path) {
            return Err(WriteError::BadMember { member: path, reason: "added twice".into() });
        }
        self.planned.push(Planned { path, size, content });
        Ok(())
    }

    /// Adds the regular file `source` as member `member` (read in [`Writer::finish`]).
    pub fn add_file(&mut self, member: &str, source: &Path) -> Result<(), WriteError> {
        let meta = fs::symlink_metadata(source).map_err(io_err("read", source))?;
        if !meta.file_type().is_file() {
            return Err(WriteError::BadMember {
                member: member.into(),
                reason: format!("{} is not a regular file", source.display()),
            });
        }
        self.plan(member.into(), meta.len(), Content::File(source.to_owned()))
    }

    /// Adds `bytes` as the file member `member`.
    pub fn add_bytes(&mut self, member: &str, bytes: Vec<u8>) -> Result<(), WriteError> {
        self.plan(member.into(), bytes.len() as u64, Content::Bytes(bytes))
    }

    /// Adds the directory `source` and everything under it as `member/…` (pg_dump's directory format),
    /// entries sorted by name so that the same tree always gives the same member order. Only regular files
    /// and directories are accepted: a symlink or a device in a dump directory is not pg_dump's doing.
    pub fn add_dir(&mut self, member: &str, source: &Path) -> Result<(), WriteError> {
        let meta = fs::symlink_metadata(source).map_err(io_err("read", source))?;
        if !meta.file_type().is_dir() {
            return Err(WriteError::BadMember {
                member: member.into(),
                reason: format!("{} is not a directory", source.display()),
            });
        }
        self.plan(member.into(), 0, Content::Dir)?;
        let mut entries: Vec<fs::DirEntry> = fs::read_dir(source)
            .map_err(io_err("read the directory", source))?
            .collect::<Result<_, _>>()
            .map_err(io_err("read the directory", source))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                return Err(WriteError::BadMember {
                    member: format!("{member}/{}", entry.file_name().to_string_lossy()),
                    reason: "the file name is not UTF-8".into(),
                });
            };
            let child = format!("{member}/{name}");
            let kind = entry.file_type().map_err(io_err("read", &path))?;
            if kind.is_dir() {
                self.add_dir(&child, &path)?;
            } else if kind.is_file() {
                self.add_file(&child, &path)?;
            } else {
                return Err(WriteError::BadMember {
                    member: child,
                    reason: format!("{} is neither a file nor a directory", path.display()),
                });
            }
        }
        Ok(())
    }

    /// Writes the bundle: `manifest.json` (with `manifest.members` set to what was added), the members,
    /// `SHA256SUMS`; flushes it and gives it its final name. Checks first that every database archive and
    /// the roles file the manifest names were added, as what they claim to be.
    pub fn finish(mut self, mut manifest: Manifest) -> Result<Written, WriteError> {
        manifest.members = self
            .planned
            .iter()
            .map(|p| Member {
                path: p.path.clone(),
                kind: if matches!(p.content, Content::Dir) { MemberKind::Dir } else { MemberKind::File },
                size: p.size,
            })
            .collect();
        check_references(&manifest)?;
        let started = Instant::now();
        let path = self.file.path().to_owned();
        let partial = self.file.temp_path().to_owned();
        let json = serde_json::to_vec_pretty(&manifest).expect("a manifest serialises");
        let mtime = manifest.created_utc.unix_timestamp().max(0) as u64;
        let (uid, gid) = (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
        let header = |kind: tar::EntryType, size: u64, mode: u32| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_size(size);
            h.set_mode(mode);
            h.set_mtime(mtime);
            h.set_uid(uid.into());
            h.set_gid(gid.into());
            h
        };

        let out = BufWriter::with_capacity(1 << 20, self.file.as_file_mut());
        let mut zstd = zstd::Encoder::new(out, self.options.level).map_err(io_err("start compressing", &partial))?;
        // The frame checksum lets `zstd -t` and `tar --zstd` notice damage without qrd.
        zstd.include_checksum(true).map_err(io_err("start compressing", &partial))?;
        if self.options.threads > 0 {
            zstd.multithread(self.options.threads).map_err(io_err("start compressing", &partial))?;
        }
        let mut tar = tar::Builder::new(zstd);
        let mut sums: Vec<FileSum> = Vec::new();
        let total: u64 = self.planned.iter().map(|p| p.size).sum();
        self.progress.start("writing the bundle", Some(total));
        let _finished = Finished(self.progress.clone());
        let mut done = 0;

        let file_header = |size: u64| header(tar::EntryType::Regular, size, 0o600);
        let (_, sum) =
            append_hashed(&mut tar, file_header(json.len() as u64), MANIFEST_MEMBER, json.as_slice(), &partial)?;
        sums.push(sum);

        for p in &self.planned {
            match &p.content {
                Content::Dir => {
                    tar.append_data(&mut header(tar::EntryType::Directory, 0, 0o700), &p.path, io::empty())
                        .map_err(io_err("write", &partial))?;
                }
                Content::Bytes(bytes) => {
                    let (_, sum) = append_hashed(&mut tar, file_header(p.size), &p.path, bytes.as_slice(), &partial)?;
                    done += sum.size;
                    sums.push(sum);
                }
                Content::File(source) => {
                    let file = File::open(source).map_err(io_err("open", source))?;
                    let now = file.metadata().map_err(io_err("read", source))?;
                    if now.size() != p.size {
                        return Err(changed(source, p.size, now.size()));
                    }
                    // At most the size in the header, whatever happens to the file meanwhile: a tar member
                    // longer than its header says would corrupt every member after it.
                    let counted = Counting::new(file.take(p.size), done, self.progress.clone());
                    let (counted, sum) = append_hashed(&mut tar, file_header(p.size), &p.path, counted, &partial)?;
                    done = counted.done();
                    let mut rest = counted.into_inner();
                    rest.set_limit(1);
                    let grew = rest.read(&mut [0u8]).map_err(io_err("read", source))? > 0;
                    if sum.size != p.size || grew {
                        return Err(changed(source, p.size, if grew { p.size + 1 } else { sum.size }));
                    }
                    tracing::debug!(member = %p.path, bytes = sum.size, "added");
                    sums.push(sum);
                }
            }
        }

        let list: String = sums.iter().map(|s| format!("{}  {}\n", s.sha256, s.path)).collect();
        tar.append_data(&mut file_header(list.len() as u64), CHECKSUMS_MEMBER, list.as_bytes())
            .map_err(io_err("write", &partial))?;
        let zstd = tar.into_inner().map_err(io_err("write", &partial))?;
        let mut out = zstd.finish().map_err(io_err("finish compressing", &partial))?;
        out.flush().map_err(io_err("write", &partial))?;
        drop(out);

        let bytes = self.file.as_file().metadata().map_err(io_err("read", &partial))?.len();
        self.file.commit_new().map_err(|source| match source {
            FileWriteError::Exists { path } => WriteError::Exists { path },
            source => WriteError::File { path: path.clone(), source },
        })?;
        let content_bytes = sums.iter().map(|s| s.size).sum();
        tracing::debug!(
            bundle = %path.display(),
            members = manifest.members.len(),
            content_bytes,
            bytes,
            seconds = started.elapsed().as_secs_f64(),
            "bundle written"
        );
        Ok(Written { path, bytes, content_bytes, manifest, checksums: sums })
    }
}

/// Ends the progress step however `finish` returns.
struct Finished(Shared);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.finish();
    }
}

/// Appends one file member, hashing and counting its content as the tar stream takes it; returns the
/// source (to look past what was read) and the sum.
fn append_hashed<W: Write, R: Read>(
    tar: &mut tar::Builder<W>,
    mut header: tar::Header,
    member: &str,
    source: R,
    partial: &Path,
) -> Result<(R, FileSum), WriteError> {
    let mut reader = HashingReader::new(source);
    tar.append_data(&mut header, member, &mut reader).map_err(io_err("write", partial))?;
    let (source, size, sha256) = reader.finish();
    Ok((source, FileSum { path: member.to_owned(), size, sha256 }))
}

fn changed(path: &Path, planned: u64, now: u64) -> WriteError {
    WriteError::SourceChanged { path: path.to_owned(), reason: format!("{planned} bytes when added, {now} now") }
}

/// Every member the manifest names was added, as the kind it claims.
fn check_references(m: &Manifest) -> Result<(), WriteError> {
    let kind_of = |path: &str| m.member(path).map(|x| x.kind);
    for db in &m.databases {
        let want = match db.format {
            ArchiveFormat::Directory => MemberKind::Dir,
            ArchiveFormat::Tar => MemberKind::File,
        };
        if kind_of(&db.member) != Some(want) {
            return Err(WriteError::ManifestMismatch {
                reason: format!("database {:?}'s archive {:?} was not added as a {want:?} member", db.name, db.member),
            });
        }
    }
    if let Some(g) = &m.globals
        && kind_of(&g.member) != Some(MemberKind::File)
    {
        return Err(WriteError::ManifestMismatch { reason: format!("the roles file {:?} was not added", g.member) });
    }
    Ok(())
}
