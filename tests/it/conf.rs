//! `qrd conf` on real servers: edits land in the file the server reads, values are checked against
//! pg_settings first, reloads are confirmed, restarts are named or done.

use crate::common::*;
use std::process::Command;

fn show(server: &Server, name: &str) -> String {
    block_on(async { server.connect("postgres").await.query_one(&format!("SHOW {name}"), &[]).await.unwrap().get(0) })
}

fn set_edits_the_file_reloads_and_restarts(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    let conf = server.data_dir().join("postgresql.conf");
    let before = std::fs::read_to_string(&conf).unwrap();

    // Dry run: a diff, no change.
    let out = run_expect(qrd(&server, &scratch).args(["conf", "set", "work_mem=8MB", "--dry-run"]), 0);
    assert!(stdout(&out).contains("+work_mem = 8MB"), "{}", stdout(&out));
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), before);

    // A value the server would refuse: refused with the server's wording, nothing written.
    let out = run_expect(qrd(&server, &scratch).args(["conf", "set", "max_connections=lots"]), 4);
    assert!(stderr(&out).contains("invalid value for parameter \"max_connections\""), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), before);

    // A reloadable setting takes effect at once; a postmaster one is pending until a restart.
    let out = run_expect(qrd(&server, &scratch).args(["conf", "set", "work_mem=8MB", "max_connections=120"]), 0);
    assert!(stderr(&out).contains("restart needed for: max_connections"), "{}", stderr(&out));
    assert_eq!(show(&server, "work_mem"), "8MB");
    assert_eq!(show(&server, "max_connections"), "100");
    let after = std::fs::read_to_string(&conf).unwrap();
    assert!(after.lines().any(|l| l.starts_with("max_connections = 120")), "{after}");
    let backups: Vec<_> = std::fs::read_dir(server.data_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("postgresql.conf.qrd-"))
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(std::fs::read_to_string(server.data_dir().join(&backups[0])).unwrap(), before);

    // Again: nothing to write. With --restart, pg_ctl restarts the server as its owner.
    // (The harness's port stands in for 4432: the test must still find its server after the restart.)
    let port = server.port().to_string();
    let tune = ["conf", "tune", "--nodes", "2", "--listen", "127.0.0.1", "--set-port", &port];
    let out = run_expect(qrd(&server, &scratch).args(tune), 0);
    assert!(stderr(&out).contains("max_connections = 2 × (90 + 20) = 220"), "{}", stderr(&out));
    assert!(stderr(&out).contains("restart needed for: max_connections"), "{}", stderr(&out));
    let bin = server.installation().server_bin.clone();
    let out = run_expect(qrd(&server, &scratch).args(tune).arg("--restart").arg("--pg-bin-dir").arg(bin), 0);
    assert!(stderr(&out).contains("nothing to write"), "{}", stderr(&out));
    assert!(stderr(&out).contains("restarted"), "{}", stderr(&out));
    assert_eq!(show(&server, "max_connections"), "220");
    assert_eq!(show(&server, "listen_addresses"), "127.0.0.1");
    let conf_now = std::fs::read_to_string(&conf).unwrap();
    assert!(conf_now.lines().any(|l| l.starts_with("max_connections = 220")), "{conf_now}");
}
all_majors!(set_edits_the_file_reloads_and_restarts);

/// Where a value comes from: an included file, then ALTER SYSTEM over it; `set` edits the file that really
/// holds the line, and refuses while ALTER SYSTEM would override the edit.
fn get_follows_includes_and_alter_system(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    let data = server.data_dir();
    let conf = data.join("postgresql.conf");
    let included = data.join("qlik.conf");
    std::fs::write(&included, "# the site's own settings\nwork_mem = 6MB\n").unwrap();
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str("include 'qlik.conf'\n");
    std::fs::write(&conf, &text).unwrap();
    server.reload();

    let get = |scratch: &Scratch| {
        let out = run_expect(qrd(&server, scratch).args(["conf", "get", "work_mem", "--json"]), 0);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        v[0].clone()
    };
    let v = get(&scratch);
    assert_eq!(v["file"]["value"], "6MB", "{v}");
    assert_eq!(v["file"]["line"], 2);
    assert!(v["file"]["file"].as_str().unwrap().ends_with("qlik.conf"), "{v}");
    assert_eq!(v["server"]["setting"], "6144", "{v}");

    // set edits qlik.conf, where the effective line is, not the main file.
    run_expect(qrd(&server, &scratch).args(["conf", "set", "work_mem=7MB"]), 0);
    assert_eq!(std::fs::read_to_string(&included).unwrap(), "# the site's own settings\nwork_mem = 7MB\n");
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), text);
    assert_eq!(show(&server, "work_mem"), "7MB");

    // --online: ALTER SYSTEM, which now overrides the files; a file edit would have no effect and is refused.
    run_expect(qrd(&server, &scratch).args(["conf", "set", "work_mem=9MB", "--online"]), 0);
    assert_eq!(show(&server, "work_mem"), "9MB");
    let auto = std::fs::read_to_string(data.join("postgresql.auto.conf")).unwrap();
    assert!(auto.contains("work_mem = '9MB'"), "{auto}");
    let v = get(&scratch);
    assert_eq!(v["file"]["alter_system"], true, "{v}");
    assert_eq!(v["file"]["overrides_file"], true, "{v}");
    let out = run_expect(qrd(&server, &scratch).args(["conf", "set", "work_mem=10MB"]), 4);
    assert!(stderr(&out).contains("ALTER SYSTEM"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&included).unwrap(), "# the site's own settings\nwork_mem = 7MB\n");
    assert_eq!(show(&server, "work_mem"), "9MB");
}
all_majors!(get_follows_includes_and_alter_system);

/// A string value only the server can judge (a time zone name) is caught after the reload, where
/// pg_file_settings says "setting could not be applied" without a pending restart: the file goes back,
/// so the next restart cannot fail on it.
fn invalid_string_value_is_not_written(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    let conf = server.data_dir().join("postgresql.conf");
    let before = std::fs::read_to_string(&conf).unwrap();
    let out = run(qrd(&server, &scratch).args(["conf", "set", "log_timezone=Nowhere/Land"]));
    eprintln!("exit {:?}\nstdout {}\nstderr {}", out.status.code(), stdout(&out), stderr(&out));
    let after = std::fs::read_to_string(&conf).unwrap();
    assert_ne!(out.status.code(), Some(0), "qrd accepted a value the server rejects");
    assert_eq!(after, before, "postgresql.conf now holds a value the server cannot start with");
}
per_major!(invalid_string_value_is_not_written: pg16 = 16, pg12 = 12);

/// Setting names are case-insensitive, as the server treats them (pg_settings spells TimeZone, DateStyle).
fn mixed_case_settings_are_known(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    let out = run(qrd(&server, &scratch).args(["conf", "set", "TimeZone=UTC", "--dry-run"]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}
per_major!(mixed_case_settings_are_known: pg16 = 16);

/// `set` across several files is all or nothing: when a later file cannot be written (here: immutable,
/// standing for any I/O or permission failure), the earlier one is put back and nothing is reloaded.
fn set_is_all_or_nothing_across_files(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    let data = server.data_dir();
    let conf = data.join("postgresql.conf");
    let included = data.join("aaa.conf"); // sorts before postgresql.conf, so it is written first
    std::fs::write(&included, "work_mem = 6MB\n").unwrap();
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str("include 'aaa.conf'\n");
    std::fs::write(&conf, &text).unwrap();
    server.reload();
    let chattr = |flag: &str| assert!(Command::new("chattr").arg(flag).arg(&conf).status().unwrap().success());
    chattr("+i");
    let out = run(qrd(&server, &scratch).args(["conf", "set", "work_mem=7MB", "statement_timeout=5s"]));
    chattr("-i");
    eprintln!("exit {:?}\nstderr {}", out.status.code(), stderr(&out));
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&included).unwrap(), "work_mem = 6MB\n", "the first file was left edited");
    assert_eq!(show(&server, "work_mem"), "6MB", "the server runs with half of the edit");
}
per_major!(set_is_all_or_nothing_across_files: pg16 = 16);

/// Names qrd must never leave in a data directory (its backups are `<file>.qrd-<stamp>.bak`, beside the file
/// they belong to; nothing of qrd's own, such as a restart log, belongs there).
fn qrd_files_in(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("qrd"))
        .collect()
}

/// `--no-reload --restart`: the server never read the new file, so it cannot report the restart pending;
/// the restart is still owed and done (it applies everything, reloaded or not). It used to be skipped.
fn no_reload_still_restarts(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    let bin = server.installation().server_bin.clone();
    let out = run_expect(
        qrd(&server, &scratch)
            .args(["conf", "set", "max_connections=150", "work_mem=5MB", "--no-reload", "--restart", "--pg-bin-dir"])
            .arg(&bin),
        0,
    );
    assert!(stderr(&out).contains("not reloaded (--no-reload)"), "{}", stderr(&out));
    assert!(stderr(&out).contains("restarted"), "{}", stderr(&out));
    assert_eq!(show(&server, "max_connections"), "150");
    assert_eq!(show(&server, "work_mem"), "5MB", "the restart applies the reloadable edit too");
    assert_eq!(qrd_files_in(server.data_dir()), Vec::<String>::new());
    // The restarted server goes on logging where it did (the harness's log file, outside the data dir).
    assert_eq!(server.log().matches("database system is ready to accept connections").count(), 2, "{}", server.log());

    // Without --restart, the owed restart is named rather than silently forgotten.
    let out = run_expect(qrd(&server, &scratch).args(["conf", "set", "max_connections=160", "--no-reload"]), 0);
    assert!(stderr(&out).contains("restart needed for: max_connections"), "{}", stderr(&out));
    assert_eq!(show(&server, "max_connections"), "150");

    // The file already says 160 but the server never re-read it: `--restart` finds nothing to write, and the
    // restart it owes is still done.
    let out = run_expect(
        qrd(&server, &scratch).args(["conf", "set", "max_connections=160", "--restart", "--pg-bin-dir"]).arg(&bin),
        0,
    );
    assert!(stderr(&out).contains("nothing to write"), "{}", stderr(&out));
    assert!(stderr(&out).contains("restarted"), "{}", stderr(&out));
    assert_eq!(show(&server, "max_connections"), "160");
}
per_major!(no_reload_still_restarts: pg16 = 16, pg12 = 12);

/// A restart with a value the server accepts in the file but cannot start with (a socket directory that
/// cannot exist): exit 5, the previous file is back, the server runs again, and the message says all that
/// with the server's own words.
fn a_restart_that_fails_puts_the_previous_files_back(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    let conf = server.data_dir().join("postgresql.conf");
    let before = std::fs::read_to_string(&conf).unwrap();
    let bin = server.installation().server_bin.clone();
    let out = run_expect(
        qrd(&server, &scratch)
            .args(["conf", "set", "unix_socket_directories=/nonexistent/qrd-sockets", "--restart", "--pg-bin-dir"])
            .arg(&bin),
        5,
    );
    let err = stderr(&out);
    assert!(err.contains("the server did not start with the new settings"), "{err}");
    assert!(err.contains("/nonexistent/qrd-sockets"), "the server's own complaint is quoted: {err}");
    assert!(err.contains("the previous files are back in place"), "{err}");
    assert!(err.contains("the server runs again"), "{err}");
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), before);
    assert_eq!(show(&server, "unix_socket_directories"), server.socket_dir().to_string_lossy());
    assert_eq!(qrd_files_in(server.data_dir()), Vec::<String>::new());
}
per_major!(a_restart_that_fails_puts_the_previous_files_back: pg16 = 16, pg15 = 15);

/// `qrd` pointed at a Debian-packaged cluster over TCP (127.0.0.1, `postgres` with its password).
fn qrd_on(cluster: &DebianCluster, scratch: &Scratch) -> Command {
    let mut cmd = qrd_bare(scratch);
    for (k, v) in cluster.client_env() {
        cmd.env(k, v);
    }
    cmd
}

fn show_on(cluster: &DebianCluster, name: &str) -> String {
    block_on(async { cluster.connect("postgres").await.query_one(&format!("SHOW {name}"), &[]).await.unwrap().get(0) })
}

/// On a cluster as Debian packages it (configuration in /etc/postgresql, TLS key readable only through the
/// ssl-cert group), as root: `--restart` goes through pg_ctlcluster and the server comes back with the new
/// value and TLS, and qrd leaves nothing of its own in the data directory.
#[test]
fn debian_cluster_restarts_with_the_new_settings() {
    let cluster = DebianCluster::start();
    let scratch = Scratch::new();
    assert_eq!(show_on(&cluster, "ssl"), "on");
    let out = run_expect(qrd_on(&cluster, &scratch).args(["conf", "set", "max_connections=123", "--restart"]), 0);
    assert!(
        stderr(&out).contains(&format!("restarted with pg_ctlcluster 15 {} (for max_connections)", cluster.name())),
        "{}",
        stderr(&out)
    );
    assert!(cluster.is_running());
    assert_eq!(show_on(&cluster, "max_connections"), "123");
    assert_eq!(show_on(&cluster, "ssl"), "on", "the server read its key through ssl-cert again");
    let conf = std::fs::read_to_string(cluster.config_file()).unwrap();
    assert!(conf.lines().any(|l| l.starts_with("max_connections = 123")), "{conf}");
    assert_eq!(qrd_files_in(&cluster.data_dir()), Vec::<String>::new());
}

/// A value the packaged cluster cannot start with (a preload library that does not exist): exit 5, the
/// previous file is back, the server runs again (a real connection says so), and the message says that,
/// quoting the server's complaint.
#[test]
fn debian_cluster_failed_restart_comes_back_with_the_previous_files() {
    let cluster = DebianCluster::start();
    let scratch = Scratch::new();
    let before = std::fs::read_to_string(cluster.config_file()).unwrap();
    let out = run_expect(
        qrd_on(&cluster, &scratch).args(["conf", "set", "shared_preload_libraries=qrd_no_such_library", "--restart"]),
        5,
    );
    let err = stderr(&out);
    assert!(err.contains("the server did not start with the new settings"), "{err}");
    assert!(err.contains("qrd_no_such_library"), "the server's complaint is quoted: {err}");
    assert!(err.contains("the previous files are back in place"), "{err}");
    assert!(err.contains("the server runs again"), "{err}");
    assert_eq!(std::fs::read_to_string(cluster.config_file()).unwrap(), before);
    assert!(cluster.is_running(), "{}", cluster.log_excerpt());
    assert_eq!(show_on(&cluster, "shared_preload_libraries"), "");
    assert_eq!(show_on(&cluster, "ssl"), "on");
    assert_eq!(qrd_files_in(&cluster.data_dir()), Vec::<String>::new());
}

/// As root through the socket of a cluster with Debian's `peer` authentication: the hint names peer and the
/// ways in, not passwords.
#[test]
fn peer_authentication_as_root_gets_a_peer_hint() {
    let cluster = DebianCluster::start();
    let scratch = Scratch::new();
    let out = run_expect(
        qrd_bare(&scratch)
            .env("PGHOST", cluster.socket_dir())
            .env("PGPORT", cluster.port().to_string())
            .env("PGUSER", "postgres")
            .args(["conf", "get", "max_connections"]),
        3,
    );
    let err = stderr(&out);
    assert!(err.contains("Peer authentication failed for user \"postgres\""), "{err}");
    assert!(err.contains("peer authentication"), "{err}");
    assert!(err.contains("sudo -u postgres qrd"), "{err}");
    assert!(err.contains("-h localhost"), "{err}");
    assert!(!err.contains("check the user name and password"), "{err}");
}
