//! Backups when things go wrong, on real servers: pg_dump killed, the server stopped, the disk full, two
//! backups at once, writes going on, hostile role names and passwords, a restore on a machine with another
//! host name. In every failure: a non-zero exit, a clear message, nothing under a bundle's name that is not
//! a whole bundle, and the earlier bundle still verifies.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use qrd_testcontainers::Namespace;
use serde_json::Value;

use crate::backup::{backup_cmd, count, q1, site};
use crate::common::*;

/// A site grown to `mib` MiB, and a first bundle of it in `scratch/backups`.
fn site_with_a_bundle(major: u32, mib: u32) -> (Server, Scratch, PathBuf, PathBuf) {
    let (server, scratch) = site(major);
    if mib > 0 {
        qrd_testcontainers::fixtures::scale_qsr(&server, mib).unwrap();
    }
    let dir = scratch.path().join("backups");
    std::fs::create_dir(&dir).unwrap();
    let out = run_expect(backup_cmd(&server, &scratch, &dir).args(["--name", "first"]), 0);
    let bundle = PathBuf::from(serde_json::from_slice::<Value>(&out.stdout).unwrap()["bundle"].as_str().unwrap());
    (server, scratch, dir, bundle)
}

/// What the directory holds besides the lock file.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".qrd-backup.lock")
        .collect();
    names.sort();
    names
}

/// After a failed backup: only the first bundle is there, and it still verifies.
fn only_the_first_bundle_verifies(server: &Server, scratch: &Scratch, dir: &Path, bundle: &Path) {
    assert_eq!(entries(dir), ["first.tar.zst"], "a failed backup left files");
    run_expect(
        qrd(server, scratch)
            .args(["backup", "verify"])
            .arg(bundle)
            .arg("--pg-bin-dir")
            .arg(&server.installation().client_bin),
        0,
    );
}

/// The pids of `program` processes whose parent is `parent` and whose command line holds `needle`.
fn children_named(parent: u32, program: &str, needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // pid (comm) state ppid …
        let Some((comm, rest)) = stat.split_once(") ").map(|(a, b)| (a.split_once(" (").map(|x| x.1).unwrap_or(""), b))
        else {
            continue;
        };
        let ppid: u32 = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if ppid == parent && comm == program && cmdline.windows(needle.len()).any(|w| w == needle.as_bytes()) {
            found.push(pid);
        }
    }
    found
}

/// Starts a backup and waits until it runs a pg_dump of QSR's data; returns the child and pg_dump's pid.
fn backup_until_pg_dump(server: &Server, scratch: &Scratch, dir: &Path) -> (Child, u32) {
    // QSR's dump itself (the first pg_dump after pg_dumpall, the one that takes time): not the `--version`
    // probe that finds the tool, nor the small databases' dumps that run beside it.
    until_child(&mut backup_cmd(server, scratch, dir), "pg_dump", "/QSR")
}

/// Starts `cmd` and waits until it runs a `program` whose command line holds `needle`; returns the child
/// and that program's pid.
pub(crate) fn until_child(cmd: &mut Command, program: &str, needle: &str) -> (Child, u32) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("no {program} with {needle:?} appeared: {}", stderr(&out));
        }
        if let Some(pid) = children_named(child.id(), program, needle).first() {
            return (child, *pid);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Exactly one line of stderr starts with `error: ` and names the dump that failed (cron mails and the
/// journal show it); `detail` is somewhere in the message.
fn one_error_line(out: &std::process::Output, detail: &str) {
    let text = stderr(out);
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "{text}");
    assert!(errors[0].contains("failed to dump database"), "{text}");
    assert!(text.contains(detail), "{text}");
}

pub(crate) fn signal(pid: u32, name: &str) {
    let status = Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status().unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

pub(crate) fn finish(child: Child) -> std::process::Output {
    let out = child.wait_with_output().unwrap();
    eprintln!("--- stdout\n{}--- stderr\n{}---", stdout(&out), stderr(&out));
    out
}

/// `kill -9` of pg_dump in the middle of QSR's dump.
fn pg_dump_killed_mid_backup(major: u32) {
    let (server, scratch, dir, bundle) = site_with_a_bundle(major, 128);
    let (child, pg_dump) = backup_until_pg_dump(&server, &scratch, &dir);
    std::thread::sleep(Duration::from_millis(200));
    signal(pg_dump, "KILL");
    let out = finish(child);
    assert_eq!(out.status.code(), Some(5), "a killed pg_dump must fail the backup");
    one_error_line(&out, "SIGKILL");
    assert!(stderr(&out).contains("failed to dump database \"QSR\""), "{}", stderr(&out));
    only_the_first_bundle_verifies(&server, &scratch, &dir, &bundle);
}
per_major!(pg_dump_killed_mid_backup: pg16 = 16, pg15 = 15);

/// The server stops (fast shutdown: sessions ended) while QSR is being dumped.
fn server_stopped_mid_backup(major: u32) {
    let (mut server, scratch, dir, bundle) = site_with_a_bundle(major, 128);
    let (child, _) = backup_until_pg_dump(&server, &scratch, &dir);
    std::thread::sleep(Duration::from_millis(200));
    server.stop();
    let out = finish(child);
    // Whichever dump meets the stop first names it: a tool's failure (5) or a lost connection (3).
    assert!(matches!(out.status.code(), Some(3 | 5)), "the backup must fail: {}", stderr(&out));
    let text = stderr(&out);
    assert_eq!(text.lines().filter(|l| l.starts_with("error: ")).count(), 1, "{text}");
    let says_why = [
        "terminating connection due to administrator command",
        "the database system is shutting down",
        "server closed the connection",
        "connection closed",
        "failed to connect",
    ];
    assert!(says_why.iter().any(|w| text.contains(w)), "the server's stop is not named: {text}");
    server.restart();
    only_the_first_bundle_verifies(&server, &scratch, &dir, &bundle);
}
per_major!(server_stopped_mid_backup: pg16 = 16, pg15 = 15);

/// `sh -c SCRIPT` in a mount namespace of its own (the test's tmpfs is seen by nothing else), as root.
fn in_mount_namespace(script: &str) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-ec", script, "sh"]);
    cmd
}

/// A disk that is too small: refused up front with the numbers; a disk that fills during the dumps (a
/// `--before` hook fills it after the check): the backup fails, its staging and partial files are gone.
fn full_disk(major: u32) {
    let (server, scratch, dir, bundle) = site_with_a_bundle(major, 64);
    let small = scratch.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let qrd_line = |extra: &str| {
        let cmd = backup_cmd(&server, &scratch, &small);
        let mut line = String::new();
        for (k, v) in cmd.get_envs() {
            if let Some(v) = v {
                line.push_str(&format!("{}={} ", k.to_string_lossy(), qrd_pgbin::shell_quote(&v.to_string_lossy())));
            }
        }
        line.push_str("exec env ");
        line.push_str(&qrd_pgbin::shell_quote(&cmd.get_program().to_string_lossy()));
        for a in cmd.get_args() {
            line.push(' ');
            line.push_str(&qrd_pgbin::shell_quote(&a.to_string_lossy()));
        }
        format!("{line} {extra}")
    };
    // 8 MiB cannot hold the staged dumps of a 64 MiB QSR: refused before anything is written.
    let script = format!(
        "mount -t tmpfs -o size=8m qrd-test {dir}; {qrd}",
        dir = qrd_pgbin::shell_quote(&small.to_string_lossy()),
        qrd = qrd_line("")
    );
    let out = run(&mut in_mount_namespace(&script));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("free") && stderr(&out).contains("MiB"), "the numbers: {}", stderr(&out));

    // Room for the check, then a hook takes it: pg_dump hits ENOSPC.
    let script = format!(
        "mount -t tmpfs -o size=512m qrd-test {dir}; cp {first} {dir}/; {qrd}; \
         echo unreachable",
        dir = qrd_pgbin::shell_quote(&small.to_string_lossy()),
        first = qrd_pgbin::shell_quote(&bundle.to_string_lossy()),
        qrd = qrd_line(&format!(
            "--before {}",
            qrd_pgbin::shell_quote(&format!("dd if=/dev/zero of={}/filler bs=1M 2>/dev/null || true", small.display()))
        ))
    );
    let out = run(&mut in_mount_namespace(&script));
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("No space left on device"), "{}", stderr(&out));
    // The mount is gone with its namespace; what qrd left is checked inside it.
    let script = format!(
        "mount -t tmpfs -o size=512m qrd-test {dir}; cp {first} {dir}/; {qrd} || true; ls -A {dir}",
        dir = qrd_pgbin::shell_quote(&small.to_string_lossy()),
        first = qrd_pgbin::shell_quote(&bundle.to_string_lossy()),
        qrd = qrd_line(&format!(
            "--before {}",
            qrd_pgbin::shell_quote(&format!("dd if=/dev/zero of={}/filler bs=1M 2>/dev/null || true", small.display()))
        ))
        .replacen("exec env", "env", 1)
    );
    let out = run(&mut in_mount_namespace(&script));
    let listing = stdout(&out);
    let mut left: Vec<&str> = listing.lines().filter(|l| !l.starts_with('{') && !l.trim().is_empty()).collect();
    left.sort();
    assert_eq!(left, [".qrd-backup.lock", "filler", "first.tar.zst"], "{}", stdout(&out));
    only_the_first_bundle_verifies(&server, &scratch, &dir, &bundle);
}
per_major!(full_disk: pg16 = 16);

/// Two backups into one directory: the second is refused at once, naming the first; the first completes.
fn concurrent_backups(major: u32) {
    let (server, scratch, dir, bundle) = site_with_a_bundle(major, 128);
    let (child, _) = backup_until_pg_dump(&server, &scratch, &dir);
    let second = run(backup_cmd(&server, &scratch, &dir).args(["--name", "second"]));
    assert_eq!(second.status.code(), Some(4), "{}", stderr(&second));
    assert!(stderr(&second).contains("another qrd backup is working in"), "{}", stderr(&second));
    assert!(stderr(&second).contains(&format!("pid {}", child.id())), "{}", stderr(&second));
    let out = finish(child);
    assert_eq!(out.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let newer = PathBuf::from(report["bundle"].as_str().unwrap());
    assert_eq!(entries(&dir).len(), 2, "{:?}", entries(&dir));
    for b in [&bundle, &newer] {
        run_expect(
            qrd(&server, &scratch)
                .args(["backup", "verify"])
                .arg(b)
                .arg("--pg-bin-dir")
                .arg(&server.installation().client_bin),
            0,
        );
    }
}
per_major!(concurrent_backups: pg16 = 16, pg15 = 15);

/// A backup taken while pgbench writes to QSR: each dump is one snapshot, so the restore's row counts match
/// the manifest and pgbench's invariant holds (every transaction moved the same delta into accounts,
/// tellers, branches and history).
fn backup_during_writes_restores_consistently(major: u32) {
    let (server, scratch) = site(major);
    let pgbench = server.installation().client_bin.join("pgbench");
    let bench = |args: &[&str]| {
        let mut cmd = qrd_pgbin::scrubbed_command(&pgbench);
        cmd.envs(server.client_env()).env("PGDATABASE", "QSR").args(args);
        cmd
    };
    run_expect(&mut bench(&["-i", "-q", "-s", "2"]), 0);
    let mut load = bench(&["-c", "4", "-T", "30", "-n"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    // Let the writes start, then back up twice while they go on.
    let deadline = Instant::now() + Duration::from_secs(20);
    while q1(
        &server,
        "SELECT count(*)::text FROM pg_stat_activity WHERE application_name = 'pgbench' AND state = 'active'",
    )
    .as_deref()
        == Some("0")
    {
        assert!(Instant::now() < deadline, "pgbench did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    let dir = scratch.path().join("backups");
    std::fs::create_dir(&dir).unwrap();
    let out = run_expect(&mut backup_cmd(&server, &scratch, &dir), 0);
    let bundle = serde_json::from_slice::<Value>(&out.stdout).unwrap()["bundle"].as_str().unwrap().to_owned();
    assert!(load.try_wait().unwrap().is_none(), "pgbench stopped before the backup ended");
    signal(load.id(), "INT");
    let _ = load.wait();

    let target = Server::start(major);
    run_expect(
        qrd(&target, &scratch).args(["restore", &bundle, "--pg-bin-dir"]).arg(&target.installation().client_bin),
        0,
    );
    let sums: Vec<String> = block_on(async {
        let c = target.connect("QSR").await;
        let mut v = Vec::new();
        for sql in [
            "SELECT sum(abalance)::text FROM pgbench_accounts",
            "SELECT sum(tbalance)::text FROM pgbench_tellers",
            "SELECT sum(bbalance)::text FROM pgbench_branches",
            "SELECT coalesce(sum(delta), 0)::text FROM pgbench_history",
        ] {
            v.push(c.query_one(sql, &[]).await.unwrap().get(0));
        }
        v
    });
    assert!(sums.iter().all(|s| *s == sums[0]), "a torn snapshot: accounts, tellers, branches, history = {sums:?}");
    assert!(count(&target, "QSR", "pgbench_history") > 0, "no write happened before the snapshot");
}
per_major!(backup_during_writes_restores_consistently: pg16 = 16, pg15 = 15);

/// Roles whose names and passwords carry quotes, backslashes, dollar quotes and non-ASCII letters travel
/// through globals.sql to a new server intact: same names, and each logs in with its own password.
fn hostile_roles_travel_intact(major: u32) {
    let (server, scratch) = site(major);
    let roles = [
        ("o'brien", "pa'ss\"word"),
        ("back\\slash", "\\x27; DROP ROLE postgres; --"),
        ("dollar$$role", "$$ $q$ $$"),
        ("Ünïcødé Ρόλος", "пароль-密码-🔑"),
        ("\"quoted\"", "a b\tc"),
    ];
    block_on(async {
        let c = server.connect("postgres").await;
        for (name, password) in roles {
            let sql = format!(
                "CREATE ROLE {} LOGIN PASSWORD {}",
                qrd_pg::quote::ident(name).unwrap(),
                qrd_pg::quote::literal(password).unwrap()
            );
            c.batch_execute(&sql).await.unwrap();
        }
    });
    let dir = scratch.path().join("backups");
    std::fs::create_dir(&dir).unwrap();
    let out = run_expect(&mut backup_cmd(&server, &scratch, &dir), 0);
    let bundle = serde_json::from_slice::<Value>(&out.stdout).unwrap()["bundle"].as_str().unwrap().to_owned();

    let target = Server::start(major);
    let out = run_expect(
        qrd(&target, &scratch)
            .args(["restore", "--json", &bundle, "--pg-bin-dir"])
            .arg(&target.installation().client_bin),
        0,
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let created: Vec<&str> = report["roles_created"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for (name, password) in roles {
        assert!(created.contains(&name), "{name:?} not created: {created:?}");
        block_on(async { target.try_connect_tcp(target.host(), "postgres", name, password).await })
            .unwrap_or_else(|e| panic!("{name:?} cannot log in with its password after the restore: {e}"));
    }
    for (_, password) in roles {
        assert!(!stderr(&out).contains(password) && !stdout(&out).contains(password));
    }
}
per_major!(hostile_roles_travel_intact: pg16 = 16, pg15 = 15);

/// The new-hostname restore on a machine whose host name is the new one (a UTS namespace): QSR gets it,
/// and nothing in qrd takes the machine's own name for the old one.
fn new_hostname_restore_in_a_renamed_machine(major: u32) {
    let (source, scratch) = site(major);
    let dir = scratch.path().join("backups");
    std::fs::create_dir(&dir).unwrap();
    let out = run_expect(&mut backup_cmd(&source, &scratch, &dir), 0);
    let bundle = serde_json::from_slice::<Value>(&out.stdout).unwrap()["bundle"].as_str().unwrap().to_owned();

    let ns = Namespace::builder().hostname("qlik-new").start().unwrap();
    let target = Server::builder(major).namespace(ns.clone()).start().unwrap();
    let mut hostname = ns.command("hostname");
    assert_eq!(stdout(&run_expect(&mut hostname, 0)).trim(), "qlik-new");
    let mut cmd = qrd(&target, &scratch);
    cmd.args(["restore", &bundle, "--new-hostname", "qlik-new"])
        .arg("--pg-bin-dir")
        .arg(&target.installation().client_bin);
    ns.enter(&mut cmd);
    let out = run_expect(&mut cmd, 0);
    assert!(stdout(&out).contains("\"qlik-central.example.local\" → \"qlik-new\""), "{}", stdout(&out));
    let central: String = block_on(async {
        target
            .connect("QSR")
            .await
            .query_one("SELECT \"HostName\" FROM \"ServerNodeConfigurations\" WHERE \"IsCentral\"", &[])
            .await
            .unwrap()
            .get(0)
    });
    assert_eq!(central, "qlik-new");
}
per_major!(new_hostname_restore_in_a_renamed_machine: pg16 = 16, pg15 = 15);

/// Every process below `root` (children, their children …), as `(pid, command name)`.
pub(crate) fn descendants(root: u32) -> Vec<(u32, String)> {
    let mut parent_of = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Some((head, rest)) = stat.rsplit_once(") ") else { continue };
        let comm = head.split_once(" (").map(|x| x.1.to_owned()).unwrap_or_default();
        let ppid: u32 = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
        parent_of.push((pid, ppid, comm));
    }
    let mut found: Vec<(u32, String)> = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (pid, ppid, comm) in &parent_of {
            if *ppid == p && !found.iter().any(|(f, _)| f == pid) {
                found.push((*pid, comm.clone()));
                frontier.push(*pid);
            }
        }
    }
    found
}

/// Whether `pid` still runs (a zombie does not).
pub(crate) fn runs(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
}

/// After qrd stopped: every process it had started is gone, and so are pg_dump's sessions on the server.
fn nothing_left_running(server: &Server, started: &[(u32, String)]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left: Vec<_> = started.iter().filter(|(pid, _)| runs(*pid)).collect();
        let sessions = q1(
            server,
            "SELECT count(*)::text FROM pg_stat_activity WHERE application_name IN ('pg_dump', 'pg_restore')",
        );
        if left.is_empty() && sessions.as_deref() == Some("0") {
            return;
        }
        assert!(Instant::now() < deadline, "left behind: processes {left:?}, {sessions:?} tool sessions on the server");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// qrd itself stopped in the middle of QSR's dump. SIGTERM (what systemd's stop sends) and SIGINT (Ctrl-C):
/// it kills its pg_dump with the workers, removes its staging directory, says what it was doing and exits
/// 128 + the signal; the first bundle still verifies. SIGKILL: nothing of qrd's runs, yet its pg_dump still
/// dies with it (the parent-death signal).
fn qrd_stopped_mid_backup(major: u32) {
    let (server, scratch, dir, bundle) = site_with_a_bundle(major, 128);
    for (name, code) in [("TERM", Some(143)), ("INT", Some(130)), ("KILL", None)] {
        let (child, pg_dump) = backup_until_pg_dump(&server, &scratch, &dir);
        std::thread::sleep(Duration::from_millis(200));
        let started = descendants(child.id());
        assert!(started.iter().any(|(pid, _)| *pid == pg_dump), "{started:?}");
        signal(child.id(), name);
        let out = finish(child);
        assert_eq!(out.status.code(), code, "SIG{name}: {}", stderr(&out));
        nothing_left_running(&server, &started);
        if code.is_some() {
            let text = stderr(&out);
            assert!(text.contains(&format!("stopped because qrd received SIG{name}")), "SIG{name}: {text}");
            only_the_first_bundle_verifies(&server, &scratch, &dir, &bundle);
        } else {
            // What qrd could not clean up is an unfinished staging directory, never a bundle.
            for e in entries(&dir) {
                assert!(e == "first.tar.zst" || e.starts_with(".qrd-staging-"), "SIGKILL left {e}");
            }
            for e in entries(&dir).into_iter().filter(|e| e.starts_with(".qrd-staging-")) {
                std::fs::remove_dir_all(dir.join(e)).unwrap();
            }
        }
    }
}
per_major!(qrd_stopped_mid_backup: pg16 = 16);

/// qrd stopped while pg_restore fills QSR on a new server. SIGTERM: pg_restore and its session are gone,
/// qrd says why and exits 143, and the server holds the databases it held before (the half-restored QSR,
/// which this run created, was dropped). SIGKILL: nothing of qrd's runs, yet its pg_restore dies with it.
fn qrd_stopped_mid_restore(major: u32) {
    let (_source, scratch, _dir, bundle) = site_with_a_bundle(major, 128);
    let target = Server::start(major);
    let databases = || crate::backup::databases_like(&target, "%");
    let before = databases();
    for (name, code) in [("TERM", Some(143)), ("KILL", None)] {
        let mut restore = qrd(&target, &scratch);
        restore.args(["restore", "--jobs", "1"]).arg(&bundle);
        restore.arg("--pg-bin-dir").arg(&target.installation().client_bin);
        let (child, pg_restore) = until_child(&mut restore, "pg_restore", "dbname='QSR'");
        std::thread::sleep(Duration::from_millis(200));
        let started = descendants(child.id());
        assert!(started.iter().any(|(pid, _)| *pid == pg_restore), "{started:?}");
        signal(child.id(), name);
        let out = finish(child);
        assert_eq!(out.status.code(), code, "SIG{name}: {}", stderr(&out));
        nothing_left_running(&target, &started);
        if code.is_some() {
            let text = stderr(&out);
            // Said by the restore or by its pg_restore, whichever saw the signal first.
            assert!(text.contains(&format!("SIG{name}")), "SIG{name}: {text}");
            assert_eq!(databases(), before, "SIG{name}: the restore left databases behind");
        }
    }
}
per_major!(qrd_stopped_mid_restore: pg16 = 16);
