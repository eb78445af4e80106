//! Reading a bundle in one pass: the manifest first (what must follow), then every member hashed as it
//! streams past (and, when extracting, written as it streams), then `SHA256SUMS` (what each member's
//! checksum must be), then the end of the zstd frame, whose own checksum covers every byte. Every
//! disagreement is a [`Problem`] naming the member: missing, extra, damaged (size, checksum, unreadable),
//! unsafe (absolute or `..` paths, links, devices: never written anywhere), or a bundle that ends early.
//!
//! Extraction writes into a fresh temporary directory beside the destination (mode 0700; files 0600,
//! created exclusively and without following symlinks; only regular files and directories) and renames it
//! to the destination only when every member checked out, so a directory under the destination's name
//! is complete and verified.

use qrd_exit::{ExitStatus, UserError};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use qrd_server::checksum::HashingWriter;
use serde::Serialize;

use super::FileSum;
use crate::manifest::{CHECKSUMS_MEMBER, FORMAT, MANIFEST_MEMBER, Manifest, MemberKind, member_path_problem};

/// The manifest and the checksum list are read into memory: a bound, so a damaged header cannot ask for
/// gigabytes.
const MAX_TEXT_MEMBER: u64 = 64 << 20;

type Stream = tar::Archive<zstd::Decoder<'static, BufReader<File>>>;

/// Something wrong with a bundle, naming the member where it can.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    /// Listed in the manifest, absent from the bundle.
    Missing { member: String },
    /// In the bundle, not listed in the manifest (or after `SHA256SUMS`, or twice): not extracted.
    Extra { member: String, reason: String },
    /// A path or entry type that extraction refuses (absolute, `..`, a link, a device): never written.
    Unsafe { member: String, reason: String },
    /// Present, but not what was written: another size or checksum, unreadable, or another kind.
    Damaged { member: String, reason: String },
    /// The bundle ends after this member, before its checksum list.
    Truncated { after: String },
    /// The compressed stream or the tar structure is broken after this member.
    Stream { after: String, reason: String },
    /// `SHA256SUMS` is unreadable or disagrees with the manifest.
    Checksums { reason: String },
    /// `manifest.json` is unreadable.
    Manifest { reason: String },
}

impl Problem {
    /// The member the problem is about.
    pub fn member(&self) -> Option<&str> {
        match self {
            Problem::Missing { member }
            | Problem::Extra { member, .. }
            | Problem::Unsafe { member, .. }
            | Problem::Damaged { member, .. } => Some(member),
            Problem::Checksums { .. } => Some(CHECKSUMS_MEMBER),
            Problem::Manifest { .. } => Some(MANIFEST_MEMBER),
            Problem::Truncated { .. } | Problem::Stream { .. } => None,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing { member } => write!(f, "{member}: missing (the manifest lists it)"),
            Problem::Extra { member, reason } => write!(f, "{member}: extra ({reason}); not extracted"),
            Problem::Unsafe { member, reason } => write!(f, "{member}: refused ({reason}); not extracted"),
            Problem::Damaged { member, reason } => write!(f, "{member}: damaged ({reason})"),
            Problem::Truncated { after } => {
                write!(f, "the bundle ends after {after}, before its checksum list {CHECKSUMS_MEMBER}: it is truncated")
            }
            Problem::Stream { after, reason } => write!(f, "the bundle is unreadable after {after}: {reason}"),
            Problem::Checksums { reason } => write!(f, "{CHECKSUMS_MEMBER}: {reason}"),
            Problem::Manifest { reason } => write!(f, "{MANIFEST_MEMBER}: unreadable ({reason})"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("failed to {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not a qrd backup bundle: {reason}", path.display())]
    NotABundle { path: PathBuf, reason: String },
    #[error("{} is a bundle of format {format}; this qrd reads up to format {supported}", path.display())]
    NewerFormat { path: PathBuf, format: u32, supported: u32 },
    #[error(
        "{} is damaged:{}",
        path.display(),
        problems.iter().map(|p| format!("\n  {p}")).collect::<String>()
    )]
    Damaged { path: PathBuf, problems: Vec<Problem> },
    #[error("{} already exists; a bundle is extracted only into a new directory", path.display())]
    DestinationExists { path: PathBuf },
}

impl UserError for ReadError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            // The file is missing or unreadable: the input's problem.
            ReadError::Io { .. } => ExitStatus::Usage,
            ReadError::NotABundle { .. }
            | ReadError::NewerFormat { .. }
            | ReadError::Damaged { .. }
            | ReadError::DestinationExists { .. } => ExitStatus::Failed,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(self.hint_text())
    }
}

impl ReadError {
    /// Whether the bundle itself is wrong (a member's size or checksum, the compressed stream, a file that
    /// is no bundle) rather than unreadable from here: a file this user may not open, no room or no right
    /// to extract beside it, a bundle format newer than this qrd reads.
    pub fn is_damage(&self) -> bool {
        match self {
            ReadError::Damaged { .. } | ReadError::NotABundle { .. } => true,
            ReadError::Io { .. } | ReadError::NewerFormat { .. } | ReadError::DestinationExists { .. } => false,
        }
    }

    fn hint_text(&self) -> String {
        match self {
            ReadError::Io { .. } => {
                "check that the file exists and is readable, and the free space where it is extracted".into()
            }
            ReadError::NotABundle { .. } => "qrd bundles are NAME.tar.zst files written by `qrd backup`".into(),
            ReadError::NewerFormat { .. } => "use the qrd version that wrote the bundle, or a newer one".into(),
            ReadError::Damaged { .. } => {
                "do not restore from this bundle: use an earlier one (`qrd backup list DIR`), and keep \
                                          this one for inspection; nothing was extracted"
                    .into()
            }
            ReadError::DestinationExists { .. } => "choose a directory that does not exist yet".into(),
        }
    }
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ReadError + 'a {
    move |source| ReadError::Io { what, path: path.to_owned(), source }
}

/// A bundle that checked out.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    pub path: PathBuf,
    pub manifest: Manifest,
    /// `manifest.json` and every file member, with the size and checksum read.
    pub files: Vec<FileSum>,
    /// Bytes before compression: `manifest.json` and every file member.
    pub content_bytes: u64,
}

/// A bundle whose manifest has been read.
#[derive(Debug, Clone)]
pub struct Reader {
    path: PathBuf,
    manifest: Manifest,
}

/// The manifest of the bundle at `path` (its first member only: cheap whatever the bundle's size).
pub fn read_manifest(path: &Path) -> Result<Manifest, ReadError> {
    Ok(Reader::open(path)?.manifest)
}

/// Reads the whole bundle once and checks every member; see [`Reader::verify`].
pub fn verify(path: &Path) -> Result<Verified, ReadError> {
    Reader::open(path)?.verify()
}

/// Verifies the bundle while extracting it into `dest`; see [`Reader::extract`].
pub fn extract(path: &Path, dest: &Path) -> Result<Verified, ReadError> {
    Reader::open(path)?.extract(dest)
}

impl Reader {
    /// Opens the bundle and reads its manifest (the first member), refusing what is not a bundle or is
    /// of a newer format.
    pub fn open(path: &Path) -> Result<Reader, ReadError> {
        let mut stream = open_stream(path)?;
        let mut entries = stream.entries().map_err(io_err("read", path))?;
        let (manifest, _) = read_manifest_member(path, &mut entries, None)?;
        Ok(Reader { path: path.to_owned(), manifest })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the whole bundle once: every member's size and SHA-256 against the manifest and
    /// `SHA256SUMS`, and the zstd frame checksum. [`ReadError::Damaged`] lists every problem found.
    pub fn verify(self) -> Result<Verified, ReadError> {
        scan(&self.path, None)
    }

    /// As [`Reader::verify`], writing the members into `dest` (a new directory; its parent must exist)
    /// as they stream past. `dest` appears only when everything checked out; otherwise nothing is left.
    pub fn extract(self, dest: &Path) -> Result<Verified, ReadError> {
        self.extract_filtered(dest, None)
    }

    /// As [`Reader::extract`], writing only the members `keep` accepts (every member is still verified):
    /// e.g. the tables of contents that `pg_restore --list` reads.
    pub fn extract_matching(self, dest: &Path, keep: impl Fn(&str) -> bool + 'static) -> Result<Verified, ReadError> {
        self.extract_filtered(dest, Some(Box::new(keep)))
    }

    fn extract_filtered(self, dest: &Path, keep: Option<MemberFilter>) -> Result<Verified, ReadError> {
        if fs::symlink_metadata(dest).is_ok() {
            return Err(ReadError::DestinationExists { path: dest.to_owned() });
        }
        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}.partial-"))
            .tempdir_in(parent)
            .map_err(io_err("create a directory in", parent))?;
        let mut into = Extraction { root: tmp.path().to_owned(), dirs: BTreeSet::new(), keep };
        let verified = scan(&self.path, Some(&mut into))?;
        into.sync_dirs()?;
        rename_no_replace(&tmp.keep(), dest)?;
        qrd_conf::write::sync_dir(parent).map_err(|e| ReadError::Io {
            what: "flush",
            path: parent.to_owned(),
            source: io::Error::other(e),
        })?;
        tracing::debug!(bundle = %self.path.display(), into = %dest.display(), "bundle extracted and verified");
        Ok(verified)
    }
}

fn open_stream(path: &Path) -> Result<Stream, ReadError> {
    let file = File::open(path).map_err(io_err("open", path))?;
    let zstd = zstd::Decoder::new(file).map_err(io_err("read", path))?;
    Ok(tar::Archive::new(zstd))
}

/// Reads the first member, which must be `manifest.json`, of a format this qrd reads.
fn read_manifest_member(
    path: &Path,
    entries: &mut tar::Entries<'_, zstd::Decoder<'static, BufReader<File>>>,
    into: Option<&mut Extraction>,
) -> Result<(Manifest, FileSum), ReadError> {
    let not_a_bundle = |reason: String| ReadError::NotABundle { path: path.to_owned(), reason };
    let mut entry = match entries.next() {
        None => return Err(not_a_bundle("it holds no member".into())),
        Some(Err(e)) => return Err(not_a_bundle(e.to_string())),
        Some(Ok(e)) => e,
    };
    let first = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
    if first != MANIFEST_MEMBER || !entry.header().entry_type().is_file() {
        return Err(not_a_bundle(format!("its first member is {first:?}, not {MANIFEST_MEMBER}")));
    }
    let damaged =
        |reason: String| ReadError::Damaged { path: path.to_owned(), problems: vec![Problem::Manifest { reason }] };
    let (bytes, sum) = read_text_member(&mut entry, MANIFEST_MEMBER).map_err(damaged)?;
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
        // A newer format may not parse as this one: say so rather than "damaged".
        match serde_json::from_slice::<serde_json::Value>(&bytes).ok().and_then(|v| v["format"].as_u64()) {
            Some(format) if format > u64::from(FORMAT) => {
                ReadError::NewerFormat { path: path.to_owned(), format: format as u32, supported: FORMAT }
            }
            _ => damaged(e.to_string()),
        }
    })?;
    if manifest.format > FORMAT {
        return Err(ReadError::NewerFormat { path: path.to_owned(), format: manifest.format, supported: FORMAT });
    }
    if let Some(into) = into {
        into.write_file(MANIFEST_MEMBER, &bytes)?;
    }
    Ok((manifest, sum))
}

fn read_text_member(entry: &mut impl Read, member: &str) -> Result<(Vec<u8>, FileSum), String> {
    let mut w = HashingWriter::new(Vec::new());
    let n = io::copy(&mut entry.take(MAX_TEXT_MEMBER + 1), &mut w).map_err(|e| e.to_string())?;
    if n > MAX_TEXT_MEMBER {
        return Err(format!("larger than {MAX_TEXT_MEMBER} bytes"));
    }
    let (bytes, size, sha256) = w.finish();
    Ok((bytes, FileSum { path: member.to_owned(), size, sha256 }))
}

/// Which members an extraction writes.
type MemberFilter = Box<dyn Fn(&str) -> bool>;

/// Where members go while extracting.
struct Extraction {
    root: PathBuf,
    /// Directories made so far, relative to `root`.
    dirs: BTreeSet<String>,
    /// The members to write (all when `None`); the others are only verified.
    keep: Option<MemberFilter>,
}

impl Extraction {
    fn keeps(&self, member: &str) -> bool {
        self.keep.as_ref().is_none_or(|k| k(member))
    }

    fn dir(&mut self, member: &str) -> Result<(), ReadError> {
        // Member paths are checked (relative, no `..`), and nobody else writes into our fresh 0700
        // directory, so the parents made here are real directories of ours.
        let mut at = String::new();
        for part in member.split('/') {
            if !at.is_empty() {
                at.push('/');
            }
            at.push_str(part);
            if self.dirs.contains(&at) {
                continue;
            }
            let path = self.root.join(&at);
            fs::DirBuilder::new().mode(0o700).create(&path).map_err(io_err("create the directory", &path))?;
            self.dirs.insert(at.clone());
        }
        Ok(())
    }

    fn create(&mut self, member: &str) -> Result<(File, PathBuf), ReadError> {
        if let Some((parent, _)) = member.rsplit_once('/') {
            self.dir(parent)?;
        }
        let path = self.root.join(member);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path)
            .map_err(io_err("create", &path))?;
        Ok((file, path))
    }

    fn write_file(&mut self, member: &str, bytes: &[u8]) -> Result<(), ReadError> {
        let (mut file, path) = self.create(member)?;
        file.write_all(bytes).map_err(io_err("write", &path))?;
        file.sync_all().map_err(io_err("flush", &path))
    }

    fn sync_dirs(&self) -> Result<(), ReadError> {
        for d in self.dirs.iter().map(|d| self.root.join(d)).chain([self.root.clone()]) {
            File::open(&d).and_then(|f| f.sync_all()).map_err(io_err("flush", &d))?;
        }
        Ok(())
    }
}

/// What one pass found.
struct Scan {
    files: Vec<FileSum>,
    /// Every member read whole, files and directories.
    seen: BTreeSet<String>,
    problems: Vec<Problem>,
    /// The last member read whole.
    last: String,
    checksums: Option<Vec<u8>>,
    /// The stream broke (reading stopped there).
    broken: bool,
}

fn scan(path: &Path, mut into: Option<&mut Extraction>) -> Result<Verified, ReadError> {
    let mut stream = open_stream(path)?;
    let mut entries = stream.entries().map_err(io_err("read", path))?;
    let (manifest, manifest_sum) = read_manifest_member(path, &mut entries, into.as_deref_mut())?;
    let expected: BTreeMap<&str, &crate::manifest::Member> =
        manifest.members.iter().map(|m| (m.path.as_str(), m)).collect();
    let mut s = Scan {
        files: vec![manifest_sum],
        seen: BTreeSet::from([MANIFEST_MEMBER.to_owned()]),
        problems: Vec::new(),
        last: MANIFEST_MEMBER.to_owned(),
        checksums: None,
        broken: false,
    };
    for m in &manifest.members {
        if let Some(reason) = member_path_problem(&m.path) {
            s.problems.push(Problem::Unsafe { member: m.path.clone(), reason: format!("the manifest lists {reason}") });
        }
    }

    let mut buf = vec![0u8; 256 << 10];
    loop {
        // This runs on a blocking thread that the command's unwinding cannot stop: an interruption (Ctrl-C,
        // SIGTERM) ends the scan between members, and nothing is claimed about the bundle.
        if let Some(signal) = qrd_pgbin::interrupt::received() {
            return Err(ReadError::Io {
                what: "read",
                path: path.to_owned(),
                source: io::Error::other(format!("stopped: qrd received {signal}")),
            });
        }
        let mut entry = match entries.next() {
            None => break,
            Some(Ok(e)) => e,
            Some(Err(e)) => {
                s.problems.push(Problem::Stream { after: s.last.clone(), reason: e.to_string() });
                s.broken = true;
                break;
            }
        };
        let raw = entry.path_bytes().into_owned();
        let Ok(name) = String::from_utf8(raw) else {
            let member = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            s.problems.push(Problem::Unsafe { member, reason: "the path is not UTF-8".into() });
            continue;
        };
        let kind = entry.header().entry_type();
        // A tar names directories with a trailing slash; the manifest does not.
        let name = if kind.is_dir() { name.trim_end_matches('/').to_owned() } else { name };
        if s.checksums.is_some() {
            s.problems.push(Problem::Extra { member: name, reason: format!("after {CHECKSUMS_MEMBER}") });
            continue;
        }
        if let Some(reason) = member_path_problem(&name) {
            s.problems.push(Problem::Unsafe { member: name, reason: reason.into() });
            continue;
        }
        let member_kind = if kind.is_file() {
            MemberKind::File
        } else if kind.is_dir() {
            MemberKind::Dir
        } else {
            let what = if kind.is_symlink() {
                "a symbolic link"
            } else if kind.is_hard_link() {
                "a hard link"
            } else {
                "neither a file nor a directory"
            };
            s.problems.push(Problem::Unsafe { member: name, reason: what.into() });
            continue;
        };
        if name == CHECKSUMS_MEMBER && member_kind == MemberKind::File {
            match read_text_member(&mut entry, CHECKSUMS_MEMBER) {
                Ok((bytes, _)) => {
                    if let Some(into) = into.as_deref_mut() {
                        into.write_file(CHECKSUMS_MEMBER, &bytes)?;
                    }
                    s.checksums = Some(bytes);
                    s.last = name;
                }
                Err(reason) => {
                    s.problems.push(Problem::Checksums { reason: format!("unreadable: {reason}") });
                    s.broken = true;
                    break;
                }
            }
            continue;
        }
        let Some(member) = expected.get(name.as_str()) else {
            s.problems.push(Problem::Extra { member: name, reason: "the manifest does not list it".into() });
            continue;
        };
        if s.seen.contains(&name) {
            s.problems.push(Problem::Extra { member: name, reason: "a second copy".into() });
            continue;
        }
        if member.kind != member_kind {
            s.problems.push(Problem::Damaged {
                member: name,
                reason: format!("a {member_kind:?} in the bundle, a {:?} in the manifest", member.kind).to_lowercase(),
            });
            continue;
        }
        if member_kind == MemberKind::Dir {
            if let Some(into) = into.as_deref_mut()
                && into.keeps(&name)
            {
                into.dir(&name)?;
            }
            s.seen.insert(name.clone());
            s.last = name;
            continue;
        }
        let header_size = entry.header().size().unwrap_or(0);
        let target = match into.as_deref_mut() {
            Some(into) if into.keeps(&name) => Some(into.create(&name)?),
            _ => None,
        };
        let (size, sha256, read_error) = copy_member(&mut entry, target.as_ref(), &mut buf)?;
        if let Some(e) = read_error {
            s.problems.push(Problem::Damaged { member: name, reason: format!("unreadable after {size} bytes: {e}") });
            s.broken = true;
            break;
        }
        if size < header_size {
            s.problems.push(Problem::Damaged {
                member: name,
                reason: format!("ends after {size} of its {header_size} bytes: the bundle is truncated"),
            });
            s.broken = true;
            break;
        }
        if size != member.size {
            s.problems.push(Problem::Damaged {
                member: name.clone(),
                reason: format!("{size} bytes, the manifest says {}", member.size),
            });
        }
        s.files.push(FileSum { path: name.clone(), size, sha256 });
        s.seen.insert(name.clone());
        s.last = name;
    }

    if !s.broken {
        // The rest of the zstd frame: the tar's end blocks, then the frame checksum over every byte.
        let mut rest = stream.into_inner();
        let mut nonzero = false;
        let drained = loop {
            match rest.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => nonzero |= buf[..n].iter().any(|b| *b != 0),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(e),
            }
        };
        match drained {
            Err(e) => s.problems.push(Problem::Stream { after: s.last.clone(), reason: e.to_string() }),
            Ok(()) if nonzero => s
                .problems
                .push(Problem::Stream { after: s.last.clone(), reason: "data after the end of the archive".into() }),
            Ok(()) => {}
        }
    }
    compare(&manifest, &mut s);
    if !s.problems.is_empty() {
        return Err(ReadError::Damaged { path: path.to_owned(), problems: s.problems });
    }
    let content_bytes = s.files.iter().map(|f| f.size).sum();
    Ok(Verified { path: path.to_owned(), manifest, files: s.files, content_bytes })
}

/// Streams one member's content into `target` (or nowhere), hashing it. A write error (the destination's
/// disk) ends the extraction; a read error (the bundle) is returned beside the size and checksum so far,
/// for the caller to report as damage.
fn copy_member(
    entry: &mut impl Read,
    target: Option<&(File, PathBuf)>,
    buf: &mut [u8],
) -> Result<(u64, String, Option<io::Error>), ReadError> {
    let out: Box<dyn Write + '_> = match target {
        Some((file, _)) => Box::new(BufWriter::with_capacity(1 << 20, file)),
        None => Box::new(io::sink()),
    };
    let mut w = HashingWriter::new(out);
    let write_err =
        |e| ReadError::Io { what: "write", path: target.map(|t| t.1.clone()).unwrap_or_default(), source: e };
    let read_error = loop {
        match entry.read(buf) {
            Ok(0) => break None,
            Ok(n) => w.write_all(&buf[..n]).map_err(write_err)?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Some(e),
        }
    };
    let (mut out, size, sha256) = w.finish();
    out.flush().map_err(write_err)?;
    drop(out);
    if let Some((file, path)) = target {
        file.sync_all().map_err(io_err("flush", path))?;
    }
    Ok((size, sha256, read_error))
}

/// What was read against the manifest and `SHA256SUMS`.
fn compare(manifest: &Manifest, s: &mut Scan) {
    for m in &manifest.members {
        let reported = s.problems.iter().any(|p| p.member() == Some(m.path.as_str()));
        if !s.seen.contains(&m.path) && !reported {
            s.problems.push(Problem::Missing { member: m.path.clone() });
        }
    }
    let Some(text) = &s.checksums else {
        if !s.broken {
            s.problems.push(Problem::Truncated { after: s.last.clone() });
        }
        return;
    };
    let listed = match parse_checksums(text) {
        Ok(l) => l,
        Err(reason) => {
            s.problems.push(Problem::Checksums { reason });
            return;
        }
    };
    for f in &s.files {
        match listed.get(f.path.as_str()) {
            None => s.problems.push(Problem::Damaged {
                member: f.path.clone(),
                reason: format!("{CHECKSUMS_MEMBER} has no checksum for it"),
            }),
            Some(want) if *want != f.sha256 => s.problems.push(Problem::Damaged {
                member: f.path.clone(),
                reason: format!("its SHA-256 is {}, {CHECKSUMS_MEMBER} says {want}", f.sha256),
            }),
            Some(_) => {}
        }
    }
    for path in listed.keys() {
        if *path != MANIFEST_MEMBER && manifest.member(path).is_none() {
            s.problems.push(Problem::Checksums { reason: format!("lists {path:?}, which the manifest does not") });
        }
    }
}

/// `SHA256SUMS` lines (`<64 hex digits>  <path>`) by path.
fn parse_checksums(text: &[u8]) -> Result<BTreeMap<&str, &str>, String> {
    let text = std::str::from_utf8(text).map_err(|_| "not UTF-8 text".to_owned())?;
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let parsed = line.split_once("  ").filter(|(sum, path)| {
            sum.len() == 64 && sum.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) && !path.is_empty()
        });
        let Some((sum, path)) = parsed else {
            return Err(format!("line {} is not `<sha256>  <path>`", i + 1));
        };
        if out.insert(path, sum).is_some() {
            return Err(format!("lists {path:?} twice"));
        }
    }
    Ok(out)
}

/// Renames `from` to `to` unless `to` exists meanwhile (renameat2's RENAME_NOREPLACE; where a file system
/// lacks it, a check just before the rename).
fn rename_no_replace(from: &Path, to: &Path) -> Result<(), ReadError> {
    use nix::errno::Errno;
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    match renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE) {
        Ok(()) => Ok(()),
        Err(Errno::EEXIST) | Err(Errno::ENOTEMPTY) => {
            let _ = fs::remove_dir_all(from);
            Err(ReadError::DestinationExists { path: to.to_owned() })
        }
        Err(Errno::EINVAL) | Err(Errno::ENOSYS) if fs::symlink_metadata(to).is_err() => {
            fs::rename(from, to).map_err(|e| {
                let _ = fs::remove_dir_all(from);
                ReadError::Io { what: "rename the extracted directory to", path: to.to_owned(), source: e }
            })
        }
        Err(e) => {
            let _ = fs::remove_dir_all(from);
            Err(ReadError::Io { what: "rename the extracted directory to", path: to.to_owned(), source: e.into() })
        }
    }
}
