//! Bundles written, read, damaged and forged on real files in temporary directories.

use qrd_exit::UserError;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use time::macros::datetime;

use super::*;
use crate::manifest::{
    ArchiveFormat, CHECKSUMS_MEMBER, Database, Globals, MANIFEST_MEMBER, Manifest, Member, MemberKind, Source,
};

/// Bytes no compressor shrinks (xorshift), so that a byte flipped in the compressed file lands in a member's
/// data as stored, not in a compressed block's structure.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A staging directory as a backup leaves it: the roles file, a directory-format dump, a tar-format dump.
fn staging(root: &Path) -> PathBuf {
    let s = root.join("staging");
    fs::create_dir_all(s.join("QSR")).unwrap();
    fs::write(s.join("globals.sql"), "CREATE ROLE qliksenserepository;\nALTER ROLE qliksenserepository WITH LOGIN PASSWORD 'SCRAM-SHA-256$4096:…';\n").unwrap();
    fs::write(s.join("QSR/toc.dat"), b"PGDMP toc").unwrap();
    fs::write(s.join("QSR/3001.dat"), noise(300_000, 1)).unwrap();
    fs::write(s.join("QSR/3002.dat"), "row\n".repeat(50_000)).unwrap();
    fs::write(s.join("QSR/3003.dat"), b"").unwrap();
    fs::create_dir(s.join("QSR/blobs")).unwrap(); // not pg_dump's, but a tree is a tree
    fs::write(s.join("QSR/blobs/blob_1.dat"), b"blob").unwrap();
    fs::write(s.join("SenseServices.tar"), noise(20_000, 2)).unwrap();
    s
}

fn manifest() -> Manifest {
    let mut m = Manifest::new(
        datetime!(2026-11-23 10:15:00 UTC),
        Source {
            host: "qlik-central".into(),
            port: 4432,
            server_version: Some("16.4".into()),
            server_major: Some(16),
            system_identifier: None,
            data_directory: None,
        },
    );
    for (name, format, member) in
        [("QSR", ArchiveFormat::Directory, "QSR"), ("SenseServices", ArchiveFormat::Tar, "SenseServices.tar")]
    {
        m.databases.push(Database {
            name: name.into(),
            format,
            member: member.into(),
            owner: Some("qliksenserepository".into()),
            encoding: Some("UTF8".into()),
            dump_started_utc: datetime!(2026-11-23 10:15:01 UTC),
            dump_finished_utc: datetime!(2026-11-23 10:16:00 UTC),
            jobs: None,
            pg_dump_version: None,
            attributes: None,
            row_counts: None,
        });
    }
    m.globals = Some(Globals { member: "globals.sql".into(), pg_dumpall_version: None, no_role_passwords: false });
    m.finished_utc = Some(datetime!(2026-11-23 10:16:00 UTC));
    m
}

fn options() -> WriterOptions {
    WriterOptions { level: 3, threads: 2 }
}

/// A complete bundle of [`staging`] in `root/out`.
fn write_bundle(root: &Path, name: &str) -> Written {
    let s = staging(root);
    let out = root.join("out");
    fs::create_dir_all(&out).unwrap();
    let mut w = Writer::create(&out, name, options()).unwrap();
    w.add_file("globals.sql", &s.join("globals.sql")).unwrap();
    w.add_dir("QSR", &s.join("QSR")).unwrap();
    w.add_file("SenseServices.tar", &s.join("SenseServices.tar")).unwrap();
    w.finish(manifest()).unwrap()
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// Every file under `dir` by relative path, with its bytes.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                out.insert(format!("{rel}/"), Vec::new());
                walk(base, &p, out);
            } else {
                out.insert(rel, fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn damaged(result: Result<Verified, ReadError>) -> Vec<Problem> {
    match result {
        Err(ReadError::Damaged { problems, .. }) => problems,
        other => panic!("expected a damaged bundle, got {other:?}"),
    }
}

fn decompress(path: &Path) -> Vec<u8> {
    zstd::decode_all(fs::File::open(path).unwrap()).unwrap()
}

fn compress_to(path: &Path, tar: &[u8]) {
    fs::write(path, zstd::encode_all(tar, 3).unwrap()).unwrap();
}

#[test]
fn a_bundle_round_trips_through_verify_and_extract() {
    let root = tempfile::tempdir().unwrap();
    let written = write_bundle(root.path(), "nightly");
    assert_eq!(written.path, root.path().join("out/nightly.tar.zst"));
    assert_eq!(names_in(&root.path().join("out")), ["nightly.tar.zst"], "no partial file is left");
    assert_eq!(mode(&written.path), 0o600, "the bundle holds role verifiers");
    assert!(written.bytes < written.content_bytes, "{} !< {}", written.bytes, written.content_bytes);

    // The manifest lists every member in a stable order: the tree sorted by name.
    let members: Vec<(&str, MemberKind)> = written.manifest.members.iter().map(|m| (m.path.as_str(), m.kind)).collect();
    assert_eq!(
        members,
        [
            ("globals.sql", MemberKind::File),
            ("QSR", MemberKind::Dir),
            ("QSR/3001.dat", MemberKind::File),
            ("QSR/3002.dat", MemberKind::File),
            ("QSR/3003.dat", MemberKind::File),
            ("QSR/blobs", MemberKind::Dir),
            ("QSR/blobs/blob_1.dat", MemberKind::File),
            ("QSR/toc.dat", MemberKind::File),
            ("SenseServices.tar", MemberKind::File),
        ]
    );
    assert_eq!(written.manifest.member("QSR/3001.dat").unwrap().size, 300_000);

    // Reading the manifest alone gives what was written.
    assert_eq!(read_manifest(&written.path).unwrap(), written.manifest);

    let verified = verify(&written.path).unwrap();
    assert_eq!(verified.manifest, written.manifest);
    assert_eq!(verified.files, written.checksums, "what was read is what was written");
    assert_eq!(verified.content_bytes, written.content_bytes);
    assert_eq!(verified.files[0].path, MANIFEST_MEMBER);

    let dest = root.path().join("restore");
    extract(&written.path, &dest).unwrap();
    let mut want = tree(&root.path().join("staging"));
    want.insert(MANIFEST_MEMBER.into(), serde_json::to_vec_pretty(&written.manifest).unwrap());
    let mut got = tree(&dest);
    let sums = got.remove(CHECKSUMS_MEMBER).expect("SHA256SUMS is extracted too");
    assert_eq!(got, want, "the extracted tree equals the staged one");
    let sums = String::from_utf8(sums).unwrap();
    assert_eq!(sums.lines().count(), written.checksums.len());
    assert!(sums.lines().all(|l| l.len() > 66 && &l[64..66] == "  "), "{sums}");
    assert_eq!(mode(&dest.join("QSR/3001.dat")), 0o600);
    assert_eq!(mode(&dest.join("QSR/blobs")), 0o700);
    assert_eq!(names_in(root.path()), ["out", "restore", "staging"], "no temporary directory is left");

    // An existing destination is refused, and left alone.
    assert!(matches!(extract(&written.path, &dest), Err(ReadError::DestinationExists { .. })));
    assert!(dest.join("QSR/toc.dat").exists());
}

#[test]
fn the_partial_file_is_private_from_creation_and_a_dropped_writer_leaves_nothing() {
    let root = tempfile::tempdir().unwrap();
    let s = staging(root.path());
    let out = root.path().join("out");
    fs::create_dir(&out).unwrap();
    let mut w = Writer::create(&out, "nightly", options()).unwrap();
    let partial = w.partial_path().to_owned();
    assert_eq!(mode(&partial), 0o600);
    let partial_name = partial.file_name().unwrap().to_string_lossy().into_owned();
    assert!(is_partial_file_name(&partial_name) && !is_bundle_file_name(&partial_name), "{partial_name}");
    w.add_dir("QSR", &s.join("QSR")).unwrap();
    drop(w);
    assert!(names_in(&out).is_empty(), "{:?}", names_in(&out));

    // A failure inside finish (a source that vanished) removes it too.
    let mut w = Writer::create(&out, "nightly", options()).unwrap();
    w.add_file("globals.sql", &s.join("globals.sql")).unwrap();
    fs::remove_file(s.join("globals.sql")).unwrap();
    let err = w.finish(Manifest::new(datetime!(2026-11-23 10:15:00 UTC), manifest().source)).unwrap_err();
    assert!(matches!(err, WriteError::Io { .. }), "{err}");
    assert!(names_in(&out).is_empty(), "{:?}", names_in(&out));
}

#[test]
fn a_source_that_changes_while_it_is_added_fails_the_bundle() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    fs::create_dir(&out).unwrap();
    let src = root.path().join("QSR.tar");
    fs::write(&src, b"short").unwrap();
    let mut w = Writer::create(&out, "nightly", options()).unwrap();
    w.add_file("QSR.tar", &src).unwrap();
    fs::write(&src, b"longer now").unwrap();
    let err = w.finish(Manifest::new(datetime!(2026-11-23 10:15:00 UTC), manifest().source)).unwrap_err();
    assert!(matches!(err, WriteError::SourceChanged { .. }), "{err}");
    assert!(names_in(&out).is_empty());
}

#[test]
fn a_bundle_is_never_overwritten() {
    let root = tempfile::tempdir().unwrap();
    let first = write_bundle(root.path(), "nightly");
    let before = fs::read(&first.path).unwrap();
    let out = root.path().join("out");
    assert!(matches!(Writer::create(&out, "nightly", options()), Err(WriteError::Exists { .. })));

    // One that appears while the writer works (another process without the lock) is not replaced either.
    let mut w = Writer::create(&out, "later", options()).unwrap();
    w.add_bytes("globals.sql", b"-- roles\n".to_vec()).unwrap();
    fs::write(out.join("later.tar.zst"), b"someone else's").unwrap();
    let mut m = manifest();
    m.databases.clear();
    assert!(matches!(w.finish(m), Err(WriteError::Exists { .. })));
    assert_eq!(fs::read(out.join("later.tar.zst")).unwrap(), b"someone else's");
    assert_eq!(fs::read(&first.path).unwrap(), before);
    assert_eq!(names_in(&out), ["later.tar.zst", "nightly.tar.zst"]);

    // Two writers of one name (two runs in one second without the lock): the first to finish wins, the
    // second is refused and leaves nothing behind.
    let mut one = Writer::create(&out, "twin", options()).unwrap();
    let mut two = Writer::create(&out, "twin", options()).unwrap();
    assert_ne!(one.partial_path(), two.partial_path());
    one.add_bytes("globals.sql", b"-- one\n".to_vec()).unwrap();
    two.add_bytes("globals.sql", b"-- two\n".to_vec()).unwrap();
    let mut m = manifest();
    m.databases.clear();
    let first = one.finish(m.clone()).unwrap();
    assert!(matches!(two.finish(m), Err(WriteError::Exists { .. })));
    assert_eq!(names_in(&out), ["later.tar.zst", "nightly.tar.zst", "twin.tar.zst"]);
    verify(&first.path).unwrap();
}

#[test]
fn members_and_manifest_are_checked_before_anything_is_written() {
    let root = tempfile::tempdir().unwrap();
    let s = staging(root.path());
    let out = root.path().join("out");
    fs::create_dir(&out).unwrap();
    let mut w = Writer::create(&out, "nightly", options()).unwrap();
    for bad in ["../x", "/etc/passwd", "a//b", MANIFEST_MEMBER, CHECKSUMS_MEMBER] {
        assert!(matches!(w.add_bytes(bad, Vec::new()), Err(WriteError::BadMember { .. })), "{bad}");
    }
    w.add_bytes("globals.sql", Vec::new()).unwrap();
    assert!(matches!(w.add_bytes("globals.sql", Vec::new()), Err(WriteError::BadMember { .. })), "twice");
    assert!(matches!(w.add_file("QSR", &s.join("QSR")), Err(WriteError::BadMember { .. })), "a directory as a file");
    let link = root.path().join("link");
    std::os::unix::fs::symlink(s.join("globals.sql"), &link).unwrap();
    assert!(matches!(w.add_file("link", &link), Err(WriteError::BadMember { .. })), "a symlink");
    assert!(matches!(Writer::create(&out, ".hidden", options()), Err(WriteError::BadName { .. })));
    // The manifest names a QSR directory archive that was not added.
    let err = w.finish(manifest()).unwrap_err();
    assert!(matches!(err, WriteError::ManifestMismatch { .. }), "{err}");
    assert!(err.to_string().contains("\"QSR\""), "{err}");
    assert!(names_in(&out).is_empty());
}

#[test]
fn a_byte_flipped_inside_a_member_is_caught_and_named() {
    let root = tempfile::tempdir().unwrap();
    let written = write_bundle(root.path(), "nightly");
    let mut tar = decompress(&written.path);
    // The member's data as stored in the tar: find its first bytes.
    let data = fs::read(root.path().join("staging/QSR/3002.dat")).unwrap();
    let at = tar.windows(64).position(|w| w == &data[..64]).expect("the member's data") + 1000;
    tar[at] ^= 0x01;
    compress_to(&written.path, &tar);

    let problems = damaged(verify(&written.path));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].member(), Some("QSR/3002.dat"));
    assert!(problems[0].to_string().contains("SHA-256"), "{}", problems[0]);

    // Extracting refuses too, and leaves nothing.
    let dest = root.path().join("restore");
    let err = extract(&written.path, &dest).unwrap_err();
    assert!(err.to_string().contains("QSR/3002.dat: damaged"), "{err}");
    let hint = err.hint().unwrap();
    assert!(hint.contains("earlier one"), "{hint}");
    assert!(!dest.exists());
    assert_eq!(names_in(root.path()), ["out", "staging"]);
}

#[test]
fn a_byte_flipped_in_the_compressed_file_is_caught_and_named() {
    let root = tempfile::tempdir().unwrap();
    let written = write_bundle(root.path(), "nightly");
    let mut bytes = fs::read(&written.path).unwrap();
    // 3001.dat is 300 kB of noise, stored by zstd as it is: the middle of the file is inside it.
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    fs::write(&written.path, &bytes).unwrap();

    let problems = damaged(verify(&written.path));
    assert!(problems.iter().any(|p| p.member() == Some("QSR/3001.dat")), "{problems:?}");
    // zstd's own frame checksum notices it as well.
    assert!(problems.iter().any(|p| matches!(p, Problem::Stream { .. })), "{problems:?}");
}

#[test]
fn a_truncated_bundle_is_caught_naming_where_it_ends_and_what_is_missing() {
    let root = tempfile::tempdir().unwrap();
    let written = write_bundle(root.path(), "nightly");
    let whole = fs::read(&written.path).unwrap();

    fs::write(&written.path, &whole[..whole.len() / 2]).unwrap();
    let problems = damaged(verify(&written.path));
    assert!(
        problems.iter().any(|p| matches!(p, Problem::Damaged { member, reason } if member == "QSR/3001.dat" && reason.contains("unreadable"))),
        "{problems:?}"
    );
    for later in ["QSR/toc.dat", "SenseServices.tar"] {
        assert!(problems.contains(&Problem::Missing { member: later.into() }), "{later}: {problems:?}");
    }

    // Cut just before the end: every member and the checksum list are there, the frame's end is not.
    fs::write(&written.path, &whole[..whole.len() - 4]).unwrap();
    let problems = damaged(verify(&written.path));
    assert!(problems.iter().all(|p| matches!(p, Problem::Stream { .. })), "{problems:?}");

    // A tar stream that simply stops after a member (no checksum list, no end blocks).
    let tar = decompress(&{
        fs::write(&written.path, &whole).unwrap();
        written.path.clone()
    });
    let data = fs::read(root.path().join("staging/SenseServices.tar")).unwrap();
    let end = tar.windows(64).position(|w| w == &data[..64]).unwrap() + data.len();
    let end = end.div_ceil(512) * 512;
    compress_to(&written.path, &tar[..end]);
    let problems = damaged(verify(&written.path));
    assert_eq!(problems, [Problem::Truncated { after: "SenseServices.tar".into() }]);
    let problems = damaged(extract(&written.path, &root.path().join("restore")));
    assert_eq!(problems, [Problem::Truncated { after: "SenseServices.tar".into() }]);
    assert!(!root.path().join("restore").exists());
}

/// One raw tar entry, written as given (no path checks): what a forged bundle may hold.
struct Raw<'a> {
    name: &'a [u8],
    kind: tar::EntryType,
    data: Vec<u8>,
    link: Option<&'a [u8]>,
}

fn file<'a>(name: &'a str, data: &[u8]) -> Raw<'a> {
    Raw { name: name.as_bytes(), kind: tar::EntryType::Regular, data: data.to_vec(), link: None }
}

fn forge(path: &Path, entries: &[Raw<'_>]) {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..e.name.len()].copy_from_slice(e.name);
        if let Some(link) = e.link {
            h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        }
        h.set_entry_type(e.kind);
        h.set_size(e.data.len() as u64);
        h.set_mode(0o600);
        h.set_cksum();
        b.append(&h, e.data.as_slice()).unwrap();
    }
    compress_to(path, &b.into_inner().unwrap());
}

/// A manifest listing `members`, serialised, and its `SHA256SUMS` line.
fn forged_manifest(members: &[(&str, MemberKind, u64)]) -> Vec<u8> {
    let mut m = Manifest::new(datetime!(2026-11-23 10:15:00 UTC), manifest().source);
    m.members = members.iter().map(|(p, kind, size)| Member { path: (*p).into(), kind: *kind, size: *size }).collect();
    serde_json::to_vec(&m).unwrap()
}

fn sums(files: &[(&str, &[u8])]) -> Vec<u8> {
    files.iter().map(|(p, d)| format!("{}  {p}\n", qrd_server::checksum::sha256(d))).collect::<String>().into_bytes()
}

#[test]
fn extraction_refuses_paths_that_escape_and_links_even_when_the_manifest_lists_them() {
    let root = tempfile::tempdir().unwrap();
    let bundle = root.path().join("forged.tar.zst");
    let work = root.path().join("work");
    fs::create_dir(&work).unwrap();
    let m = forged_manifest(&[
        ("../evil", MemberKind::File, 4),
        ("/tmp/qrd-evil-absolute", MemberKind::File, 4),
        ("QSR", MemberKind::Dir, 0),
        ("QSR/link", MemberKind::File, 0),
        ("QSR/toc.dat", MemberKind::File, 2),
    ]);
    forge(
        &bundle,
        &[
            file(MANIFEST_MEMBER, &m),
            file("../evil", b"evil"),
            file("/tmp/qrd-evil-absolute", b"evil"),
            Raw { name: b"QSR", kind: tar::EntryType::Directory, data: Vec::new(), link: None },
            Raw { name: b"QSR/link", kind: tar::EntryType::Symlink, data: Vec::new(), link: Some(b"/etc") },
            file("QSR/link/passwd", b"evil"),
            Raw { name: b"QSR/hard", kind: tar::EntryType::Link, data: Vec::new(), link: Some(b"/etc/passwd") },
            file("QSR/toc.dat", b"ok"),
            file(CHECKSUMS_MEMBER, &sums(&[(MANIFEST_MEMBER, &m), ("QSR/toc.dat", b"ok")])),
        ],
    );
    let dest = work.join("restore");
    let err = extract(&bundle, &dest).unwrap_err();
    let ReadError::Damaged { problems, .. } = &err else { panic!("{err}") };
    let refused = |member: &str| problems.iter().any(|p| matches!(p, Problem::Unsafe { member: m, .. } if m == member));
    for member in ["../evil", "/tmp/qrd-evil-absolute", "QSR/link", "QSR/hard"] {
        assert!(refused(member), "{member} not refused: {problems:?}");
    }
    assert!(
        problems.contains(&Problem::Extra {
            member: "QSR/link/passwd".into(),
            reason: "the manifest does not list it".into()
        }),
        "{problems:?}"
    );
    assert!(!dest.exists());
    assert!(!root.path().join("evil").exists() && !work.join("evil").exists());
    assert!(!Path::new("/tmp/qrd-evil-absolute").exists());
    assert_eq!(names_in(&work), Vec::<String>::new(), "no temporary directory is left");
}

#[test]
fn missing_extra_and_unlisted_members_are_named() {
    let root = tempfile::tempdir().unwrap();
    let bundle = root.path().join("forged.tar.zst");
    let m = forged_manifest(&[("globals.sql", MemberKind::File, 3), ("QSR.tar", MemberKind::File, 3)]);
    forge(
        &bundle,
        &[
            file(MANIFEST_MEMBER, &m),
            file("globals.sql", b"sql"),
            file("stowaway.sql", b"DROP"),
            file(CHECKSUMS_MEMBER, &sums(&[(MANIFEST_MEMBER, &m), ("globals.sql", b"sql"), ("QSR.tar", b"tar")])),
        ],
    );
    let problems = damaged(verify(&bundle));
    assert_eq!(
        problems,
        [
            Problem::Extra { member: "stowaway.sql".into(), reason: "the manifest does not list it".into() },
            Problem::Missing { member: "QSR.tar".into() },
        ]
    );

    // A member whose size differs from the manifest's, and one the checksum list lacks.
    let m = forged_manifest(&[("globals.sql", MemberKind::File, 99), ("QSR.tar", MemberKind::File, 3)]);
    forge(
        &bundle,
        &[
            file(MANIFEST_MEMBER, &m),
            file("globals.sql", b"sql"),
            file("QSR.tar", b"tar"),
            file(CHECKSUMS_MEMBER, &sums(&[(MANIFEST_MEMBER, &m), ("globals.sql", b"sql")])),
        ],
    );
    let problems = damaged(verify(&bundle));
    let named: Vec<&str> = problems.iter().filter_map(Problem::member).collect();
    assert_eq!(named, ["globals.sql", "QSR.tar"], "{problems:?}");
}

#[test]
fn what_is_not_a_bundle_or_is_newer_is_refused_plainly() {
    let root = tempfile::tempdir().unwrap();
    let plain = root.path().join("plain.tar.zst");
    fs::write(&plain, b"not zstd at all").unwrap();
    assert!(matches!(verify(&plain), Err(ReadError::NotABundle { .. })));

    let other = root.path().join("other.tar.zst");
    forge(&other, &[file("etc/hosts", b"127.0.0.1 localhost\n")]);
    let err = read_manifest(&other).unwrap_err();
    assert!(err.to_string().contains("its first member is \"etc/hosts\""), "{err}");

    let newer = root.path().join("newer.tar.zst");
    forge(&newer, &[file(MANIFEST_MEMBER, br#"{"format": 2, "whatever": "changed"}"#)]);
    assert!(matches!(read_manifest(&newer), Err(ReadError::NewerFormat { format: 2, supported: 1, .. })));

    let garbled = root.path().join("garbled.tar.zst");
    forge(&garbled, &[file(MANIFEST_MEMBER, b"{\"format\": 1, \"qrd_vers")]);
    assert!(matches!(&damaged(verify(&garbled))[..], [Problem::Manifest { .. }]));
}

/// GNU tar and coreutils read a bundle without qrd, as the crate documentation tells a DBA.
#[test]
fn gnu_tar_lists_and_unpacks_a_bundle_and_sha256sum_checks_it() {
    let root = tempfile::tempdir().unwrap();
    let written = write_bundle(root.path(), "nightly");
    let run = |cmd: &mut Command| {
        let out = cmd.output().unwrap_or_else(|e| {
            panic!("{cmd:?}: {e}\nhint: GNU tar and zstd are needed (Debian: apt-get install tar zstd; `cargo make pg-install` does it)")
        });
        assert!(
            out.status.success(),
            "{cmd:?}: {}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let listed = run(Command::new("tar").arg("--zstd").arg("-tf").arg(&written.path));
    let listed: Vec<&str> = listed.lines().map(|l| l.trim_end_matches('/')).collect();
    let mut want = vec![MANIFEST_MEMBER];
    want.extend(written.manifest.members.iter().map(|m| m.path.as_str()));
    want.push(CHECKSUMS_MEMBER);
    assert_eq!(listed, want);

    let dest = root.path().join("unpacked");
    fs::create_dir(&dest).unwrap();
    run(Command::new("tar").arg("--zstd").arg("-xf").arg(&written.path).arg("-C").arg(&dest));
    run(Command::new("sha256sum").arg("--strict").arg("-c").arg(CHECKSUMS_MEMBER).current_dir(&dest));
    assert_eq!(fs::read(dest.join("QSR/3001.dat")).unwrap(), noise(300_000, 1));
    run(Command::new("zstd").arg("-q").arg("-t").arg(&written.path));
}

#[test]
fn compressing_on_the_calling_thread_gives_a_bundle_that_verifies() {
    let root = tempfile::tempdir().unwrap();
    let s = staging(root.path());
    let out = root.path().join("out");
    fs::create_dir(&out).unwrap();
    let mut w = Writer::create(&out, "single", WriterOptions { level: 1, threads: 0 }).unwrap();
    w.add_dir("QSR", &s.join("QSR")).unwrap();
    let mut m = manifest();
    m.databases.truncate(1);
    m.globals = None;
    let written = w.finish(m).unwrap();
    assert_eq!(verify(&written.path).unwrap().files, written.checksums);
}
