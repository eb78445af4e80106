//! `qrd password set` on real servers: what pg_authid stores afterwards, a real login with the new
//! password, the Qlik follow-up list, and no password or verifier in any process's command line, the
//! server log, pg_stat_statements or qrd's own output.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::common::*;

/// `qrd password set`: hostile passwords stored as SCRAM, verified by a login; empty refused; nothing in
/// the server log (log_statement = all) and nothing in any process's command line while it runs.
fn password_set_is_safe(major: u32) {
    let server = Server::builder(major).setting("log_statement", "all").start().unwrap();
    let scratch = Scratch::new();
    provision(&server, &scratch, "first-pw");

    let hostile = format!("q'\"\\$$ ünïcödé {}", "x".repeat(1000));
    let pw_file = scratch.secret_file("new-pw", &hostile);
    let stop = Arc::new(AtomicBool::new(false));
    let scanner = {
        let stop = stop.clone();
        let needles = vec![hostile.clone(), "first-pw".to_owned(), "x".repeat(200)];
        std::thread::spawn(move || scan_cmdlines(&stop, &needles))
    };
    let out =
        run_expect(qrd(&server, &scratch).args(["password", "set", ROLE, "--new-password-file"]).arg(&pw_file), 0);
    stop.store(true, Ordering::SeqCst);
    let (scans, found) = scanner.join().unwrap();
    assert!(scans > 0, "the scanner ran");
    assert!(found.is_empty(), "a password appeared in a command line: {found:?}");
    assert!(stderr(&out).contains("logs in with the password"), "{}", stderr(&out));
    assert!(stdout(&out).contains("Connection String Editor"), "the Qlik follow-up list: {}", stdout(&out));
    assert!(hashes(&server).contains(&(ROLE.to_owned(), "scram".to_owned())));
    login(&server, ROLE, &hostile).unwrap();
    let log = server.log();
    let leaks: Vec<&str> = log.lines().filter(|l| l.contains("ünïcödé") || l.contains("SCRAM-SHA-256$4096:")).collect();
    assert!(leaks.is_empty(), "password or verifier in the server log: {leaks:#?}");

    // Through the socket (the harness's `local all all trust`) the login proves nothing, and qrd says so.
    let out = run_expect(
        qrd(&server, &scratch)
            .env("PGHOST", server.socket_dir())
            .args(["password", "set", ROLE, "--new-password-file"])
            .arg(&pw_file),
        0,
    );
    assert!(stderr(&out).contains("uses trust: the password itself was not exercised"), "{}", stderr(&out));

    // Again: nothing to do.
    let out =
        run_expect(qrd(&server, &scratch).args(["password", "set", ROLE, "--new-password-file"]).arg(&pw_file), 0);
    assert!(stderr(&out).contains("already has this password"), "{}", stderr(&out));

    // Empty refused; mixed character sets warned; a missing role refused with a hint.
    let empty = scratch.secret_file("empty", "\n");
    let out = run(qrd(&server, &scratch).args(["password", "set", ROLE, "--new-password-file"]).arg(&empty));
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("empty"), "{}", stderr(&out));
    login(&server, ROLE, &hostile).unwrap();
    let out =
        run_expect(qrd(&server, &scratch).env("QRD_NEW_PASSWORD", "pass-пароль").args(["password", "set", ROLE]), 0);
    assert!(stderr(&out).contains("mixes character sets"), "{}", stderr(&out));
    let out = run_expect(qrd(&server, &scratch).env("QRD_NEW_PASSWORD", "x").args(["password", "set", "nobody"]), 4);
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
}
every_run!(password_set_is_safe);

/// Runs `f` while another thread reads every process's command line, and asserts none held a needle.
fn while_scanning_cmdlines<T>(needles: &[&str], f: impl FnOnce() -> T) -> T {
    let stop = Arc::new(AtomicBool::new(false));
    let scanner = {
        let stop = stop.clone();
        let needles: Vec<String> = needles.iter().map(|n| n.to_string()).collect();
        std::thread::spawn(move || scan_cmdlines(&stop, &needles))
    };
    let out = f();
    stop.store(true, Ordering::SeqCst);
    let (scans, found) = scanner.join().unwrap();
    assert!(scans > 1, "the scanner ran while the command did");
    assert!(found.is_empty(), "a password appeared in a command line: {found:?}");
    out
}

/// Reads every `/proc/<pid>/cmdline` until `stop`, returning how many full scans ran and the needles seen.
fn scan_cmdlines(stop: &AtomicBool, needles: &[String]) -> (usize, Vec<String>) {
    let mut scans = 0;
    let mut found = Vec::new();
    loop {
        let done = stop.load(Ordering::SeqCst);
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            if !entry.file_name().to_string_lossy().chars().all(|c| c.is_ascii_digit()) {
                continue;
            }
            let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else { continue };
            let text = String::from_utf8_lossy(&raw).replace('\0', " ");
            for n in needles {
                if text.contains(n.as_str()) && !found.contains(n) {
                    found.push(n.clone());
                }
            }
        }
        scans += 1;
        if done {
            return (scans, found);
        }
    }
}

/// The scanner would see a password in argv: a child holding one for 300 ms is caught.
#[test]
fn the_cmdline_scanner_finds_a_planted_password() {
    let caught = std::panic::catch_unwind(|| {
        while_scanning_cmdlines(&["planted-needle-4711"], || {
            std::process::Command::new("sh").args(["-c", "sleep 0.3", "planted-needle-4711"]).status().unwrap()
        })
    });
    let msg = caught.expect_err("the planted password is found");
    let text = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.contains("planted-needle-4711"), "{text}");
}

// ---- found in review: each of these failed before its fix ----

/// A failed ALTER ROLE (here: a read-only session, as on a hot standby) logs no verifier: the statement
/// printed with an error (log_min_error_statement) is switched off too. An md5 hash in a log would be
/// enough to log in through md5 lines.
fn a_failed_alter_role_logs_no_verifier(major: u32) {
    let server = Server::builder(major).host_auth(HostAuth::Md5).start().unwrap();
    let scratch = Scratch::new();
    provision(&server, &scratch, "first-pw");
    exec(&server, "ALTER ROLE postgres SET default_transaction_read_only = on");
    let pw = scratch.secret_file("new", "second-pw");
    let out = run(qrd(&server, &scratch).args(["password", "set", ROLE, "--new-password-file"]).arg(&pw));
    assert_ne!(out.status.code(), Some(0));
    let log = server.log();
    let leaks: Vec<&str> = log.lines().filter(|l| l.contains("PASSWORD '")).collect();
    assert!(leaks.is_empty(), "verifier in the server log: {leaks:#?}");
}
every_run!(a_failed_alter_role_logs_no_verifier);

/// A route whose rule is ident (or peer, cert, gss) cannot prove the password: `password set` warns
/// instead of failing after the change, and prints the list of Qlik places to update.
fn password_set_on_an_ident_route_warns_and_lists_followups(major: u32) {
    let server = Server::builder(major).host_auth(HostAuth::Md5).start().unwrap();
    let scratch = Scratch::new();
    provision(&server, &scratch, "first-pw");
    let hba = server.data_dir().join("pg_hba.conf");
    let text = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(&hba, format!("host all {ROLE} 127.0.0.0/8 ident\n{text}")).unwrap();
    server.reload();
    let pw = scratch.secret_file("new", "second-pw");
    let stored = || q1(&server, &format!("SELECT rolpassword FROM pg_authid WHERE rolname = '{ROLE}'")).unwrap();
    let before = stored();
    let out = run(qrd(&server, &scratch).args(["password", "set", ROLE, "--new-password-file"]).arg(&pw));
    let changed = stored();
    assert_ne!(changed, before, "the stored verifier is still the old one");
    assert!(
        qrd_pg::password::verifier::matches(&changed, &qrd_pg::Secret::new("second-pw"), ROLE),
        "the stored verifier ({:.3}…) is not one of the new password",
        changed
    );
    assert!(
        out.status.code() == Some(0) && stdout(&out).contains("Connection String Editor"),
        "password changed, but exit {:?} and no follow-up list:\n{}",
        out.status.code(),
        stderr(&out)
    );
}
every_run!(password_set_on_an_ident_route_warns_and_lists_followups);

/// With password_encryption still md5 (PostgreSQL 12/13's default) and pg_hba.conf on scram-sha-256, a
/// role with a SCRAM verifier keeps SCRAM: an md5 hash would lock it out of every scram-sha-256 line.
fn password_set_never_downgrades_scram_to_md5(major: u32) {
    let server = Server::builder(major).host_auth(HostAuth::ScramSha256).password_encryption("md5").start().unwrap();
    let scratch = Scratch::new();
    let first = scratch.secret_file("first", "first-pw");
    run_expect(
        qrd(&server, &scratch)
            .env("PGHOST", server.socket_dir())
            .args(["provision", "--repo-password-file"])
            .arg(&first),
        0,
    );
    exec(&server, &format!("SET password_encryption = 'scram-sha-256'; ALTER ROLE {ROLE} PASSWORD 'first-pw'"));
    block_on(server.try_connect_tcp(std::net::Ipv4Addr::LOCALHOST.into(), "postgres", ROLE, "first-pw"))
        .expect("logs in before");
    let pw = scratch.secret_file("new", "second-pw");
    let out = run(qrd(&server, &scratch)
        .env("PGHOST", server.socket_dir())
        .args(["password", "set", ROLE, "--new-password-file"])
        .arg(&pw));
    let after = block_on(server.try_connect_tcp(std::net::Ipv4Addr::LOCALHOST.into(), "postgres", ROLE, "second-pw"));
    eprintln!(
        "TCP login with the new password after `password set`: {:?}",
        after.as_ref().map(|_| ()).map_err(|e| e.to_string())
    );
    let stored = q1(&server, &format!("SELECT rolpassword FROM pg_authid WHERE rolname = '{ROLE}'")).unwrap();
    assert!(
        stored.starts_with("SCRAM-SHA-256$"),
        "exit {:?}: the role now has {stored:.3}… and cannot log in through the scram-sha-256 lines:\n{}",
        out.status.code(),
        stderr(&out)
    );
}
every_run!(password_set_never_downgrades_scram_to_md5);

/// pg_stat_statements (track_utility defaults to on) would keep the ALTER ROLE text, verifier included,
/// readable by superusers and pg_read_all_stats members: qrd switches utility tracking off meanwhile.
fn pg_stat_statements_keeps_no_verifier(major: u32) {
    let server = Server::builder(major).setting("shared_preload_libraries", "pg_stat_statements").start().unwrap();
    let scratch = Scratch::new();
    provision(&server, &scratch, "first-pw");
    exec(&server, "CREATE EXTENSION pg_stat_statements");
    let pw = scratch.secret_file("new", "second-pw");
    run_expect(qrd(&server, &scratch).args(["password", "set", ROLE, "--new-password-file"]).arg(&pw), 0);
    let kept = q1(
        &server,
        "SELECT string_agg(query, ' | ') FROM pg_stat_statements WHERE query ILIKE '%ALTER ROLE%' OR query LIKE '%SCRAM-SHA-256$4096:%'",
    );
    assert!(kept.is_none(), "verifier kept in pg_stat_statements: {kept:?}");
}
every_run!(pg_stat_statements_keeps_no_verifier);

fn verbose_output_has_no_verifier(major: u32) {
    let server = Server::builder(major).start().unwrap();
    let scratch = Scratch::new();
    provision(&server, &scratch, "first-pw");
    let pw = scratch.secret_file("new", "second-pw");
    let out = run_expect(
        qrd(&server, &scratch)
            .env("QRD_LOG", "trace")
            .args(["-vv", "password", "set", ROLE, "--new-password-file"])
            .arg(&pw),
        0,
    );
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!all.contains("SCRAM-SHA-256$") && !all.contains("second-pw"), "leak in qrd output");
}
every_run!(verbose_output_has_no_verifier);

/// `--repo-user` names the repository role, as on the other commands: with a repository role that is not
/// the default one, setting its password prints the Qlik list (every node's connection string), another
/// role gets the short list, and a missing repository role is pointed at `qrd provision --repo-user`.
fn password_set_knows_a_non_default_repository_role(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    let repo = "qlik_repo";
    let first = scratch.secret_file("first", "first-pw");
    run_expect(qrd(&server, &scratch).args(["provision", "--repo-user", repo, "--repo-password-file"]).arg(&first), 0);
    exec(&server, "CREATE ROLE qliksenserepository LOGIN PASSWORD 'other-pw'");
    let pw = scratch.secret_file("new", "second-pw");
    let out = run_expect(
        qrd(&server, &scratch).args(["password", "set", repo, "--repo-user", repo, "--new-password-file"]).arg(&pw),
        0,
    );
    assert!(stdout(&out).contains("Connection String Editor"), "the repository role's list: {}", stdout(&out));
    login(&server, repo, "second-pw").unwrap();
    // The default name is just another role here.
    let out = run_expect(
        qrd(&server, &scratch).args(["password", "set", ROLE, "--repo-user", repo, "--new-password-file"]).arg(&pw),
        0,
    );
    assert!(!stdout(&out).contains("Connection String Editor"), "not the repository role: {}", stdout(&out));
    assert!(stdout(&out).contains(&format!("anything that logs in as \"{ROLE}\"")), "{}", stdout(&out));
    let out = run_expect(
        qrd(&server, &scratch).env("QRD_NEW_PASSWORD", "x").args([
            "password",
            "set",
            "qlik_new",
            "--repo-user",
            "qlik_new",
        ]),
        4,
    );
    assert!(stderr(&out).contains("qrd provision --repo-user qlik_new"), "{}", stderr(&out));
}
every_run!(password_set_knows_a_non_default_repository_role);
