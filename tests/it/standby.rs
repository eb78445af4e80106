//! `qrd standby` on real servers: a primary prepared for its major, a standby cloned from it that streams,
//! rows flowing, and the replicator's password in no configuration file.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

const REPL_PW: &str = "Repl-pw-1 'quoted' \\ $x";

/// A standby data directory that is stopped (fast) when the test ends, passed or not.
struct Standby {
    dir: PathBuf,
    pg_ctl: PathBuf,
    _parent: tempfile::TempDir,
}

impl Drop for Standby {
    fn drop(&mut self) {
        if self.dir.join("postmaster.pid").exists() {
            let _ = Command::new("runuser")
                .args(["-u", qrd_testcontainers::SERVER_USER, "--"])
                .arg(&self.pg_ctl)
                .arg("-D")
                .arg(&self.dir)
                .args(["-m", "immediate", "-w", "stop"])
                .current_dir("/")
                .output();
        }
    }
}

/// A directory for standbys, owned by the servers' OS user (as /var/lib/postgresql is), removed on drop.
fn standby_home() -> tempfile::TempDir {
    let parent = tempfile::Builder::new().prefix("qrd-standby-").tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(parent.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    assert!(Command::new("chown").arg(qrd_testcontainers::SERVER_USER).arg(parent.path()).status().unwrap().success());
    parent
}

/// `qrd standby prepare-primary` for standbys on 127.0.0.1, restarting when a setting needs it.
fn prepare_primary(primary: &Server, scratch: &Scratch) {
    let mut prepare = standby_cmd(primary, scratch);
    prepare.args(["prepare-primary", "--standby", "127.0.0.1", "--restart"]);
    prepare.arg("--data-dir").arg(primary.data_dir()).arg("--pg-bin-dir").arg(&primary.installation().server_bin);
    run_expect(&mut prepare, 0);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn standby_cmd(server: &Server, scratch: &Scratch) -> Command {
    let mut cmd = qrd(server, scratch);
    cmd.env("QRD_REPLICATION_PASSWORD", REPL_PW).arg("standby");
    cmd
}

/// The superuser's connection to the server on `port` through the socket directory `socket`.
async fn socket_client(socket: &Path, port: u16) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::Config::new()
        .host_path(socket)
        .port(port)
        .user("postgres")
        .dbname("postgres")
        .connect(tokio_postgres::NoTls)
        .await?;
    tokio::spawn(conn);
    Ok(client)
}

fn q(server_socket: &Path, port: u16, sql: &str) -> Option<String> {
    block_on(async {
        let client = socket_client(server_socket, port).await.ok()?;
        client.query_opt(sql, &[]).await.ok().flatten().and_then(|r| r.get::<_, Option<String>>(0))
    })
}

/// Runs `sql` on the server on `port`; panics on failure.
fn exec_on(socket: &Path, port: u16, sql: &str) {
    block_on(async { socket_client(socket, port).await.unwrap().batch_execute(sql).await.unwrap() })
}

/// Prepare (settings for the major, role, rule, slot; restart), then a second prepare changes nothing;
/// clone with --start streams; rows written on the primary arrive; the primary lists the standby; the
/// password is only in the 0600 passfile; a running or non-empty directory is refused.
fn primary_and_standby_stream(major: u32) {
    let primary = Server::start(major);
    let scratch = Scratch::new();
    let prepare = |extra: &[&str]| {
        let mut cmd = standby_cmd(&primary, &scratch);
        cmd.args(["prepare-primary", "--standby", "127.0.0.1", "--slot", "standby_a", "--restart", "--json"]);
        cmd.arg("--data-dir").arg(primary.data_dir()).arg("--pg-bin-dir").arg(&primary.installation().server_bin);
        cmd.args(extra);
        cmd
    };
    let out = run_expect(&mut prepare(&["--dry-run"]), 0);
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["role_action"], "create", "{plan}");
    let keep = if major >= 13 { "wal_keep_size" } else { "wal_keep_segments" };
    assert!(plan["settings"].as_array().unwrap().iter().any(|s| s["name"] == keep), "{plan}");
    assert_eq!(q1(&primary, "SELECT count(*)::text FROM pg_roles WHERE rolname = 'replicator'").as_deref(), Some("0"));

    let out = run_expect(&mut prepare(&[]), 0);
    let done: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(done["restarted"], true, "{done}");
    assert_eq!(q1(&primary, "SELECT current_setting('wal_log_hints')").as_deref(), Some("on"));
    assert_eq!(
        q1(&primary, "SELECT (rolreplication AND rolcanlogin)::text FROM pg_roles WHERE rolname = 'replicator'")
            .as_deref(),
        Some("true")
    );
    assert_eq!(
        q1(&primary, "SELECT count(*)::text FROM pg_replication_slots WHERE slot_name = 'standby_a'").as_deref(),
        Some("1")
    );
    let hba = std::fs::read_to_string(primary.data_dir().join("pg_hba.conf")).unwrap();
    assert!(
        hba.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == ["host", "replication", "replicator", "127.0.0.1/32", "scram-sha-256"]),
        "{hba}"
    );
    let again: Value = serde_json::from_slice(&run_expect(&mut prepare(&["--dry-run"]), 0).stdout).unwrap();
    assert_eq!(again["role_action"], "none", "{again}");
    assert!(
        again["settings"].as_array().unwrap().is_empty() && again["hba_rules"].as_array().unwrap().is_empty(),
        "{again}"
    );
    assert_eq!(again["set_password"], false, "{again}");

    // A slot nobody uses yet holds WAL back: qrd check warns.
    let out = run(qrd(&primary, &scratch).args(["check", "--json"]));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let slot = v["checks"].as_array().unwrap().iter().find(|c| c["id"] == "replication.slot").cloned();
    assert_eq!(slot.as_ref().map(|s| s["status"].clone()), Some(Value::from("warn")), "{v}");

    // The clone, as the server's OS user, in a directory of its own.
    let parent = standby_home();
    let dir = parent.path().join("standby_a");
    let port = free_port();
    let standby =
        Standby { dir: dir.clone(), pg_ctl: primary.installation().server_bin.join("pg_ctl"), _parent: parent };
    let clone = |extra: &[&str]| {
        let mut cmd = standby_cmd(&primary, &scratch);
        cmd.args(["clone", "--primary-host", "127.0.0.1", "--primary-port", &primary.port().to_string()]);
        cmd.arg("--data-dir").arg(&dir).args(["--slot", "standby_a", "--port", &port.to_string(), "--json"]);
        cmd.arg("--pg-bin-dir").arg(&primary.installation().client_bin);
        cmd.arg("--pg-bin-dir").arg(&primary.installation().server_bin);
        cmd.args(extra);
        cmd
    };
    let out = run_expect(&mut clone(&["--start"]), 0);
    let cloned: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cloned["streaming"], "streaming", "{cloned}");
    let socket = primary.socket_dir().to_owned();
    assert_eq!(q(&socket, port, "SELECT pg_is_in_recovery()::text").as_deref(), Some("true"));
    assert_eq!(
        q1(&primary, "SELECT state FROM pg_stat_replication WHERE application_name = 'standby_a'").as_deref(),
        Some("streaming")
    );

    // Rows flow.
    block_on(async {
        primary
            .connect("postgres")
            .await
            .batch_execute("CREATE TABLE flow (n int); INSERT INTO flow SELECT generate_series(1, 1000)")
            .await
            .unwrap()
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while q(&socket, port, "SELECT count(*)::text FROM flow").as_deref() != Some("1000") {
        assert!(Instant::now() < deadline, "the rows did not reach the standby");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The password lives in the passfile only.
    for file in ["postgresql.auto.conf", "standby.signal", "postgresql.conf"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        assert!(!text.contains("Repl-pw-1"), "{file} holds the replicator's password");
    }
    let passfile = PathBuf::from(cloned["passfile"].as_str().unwrap());
    let meta = std::fs::metadata(&passfile).unwrap();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777, 0o600);
    let owner_uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&dir).unwrap());
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), owner_uid, "the passfile belongs to the server's user");
    assert_ne!(owner_uid, 0, "the data directory belongs to the server's user, not root");

    // Refusals: a running standby's directory, even with --force.
    let out = run_expect(&mut clone(&["--force"]), 4);
    assert!(stderr(&out).contains("a server is running on"), "{}", stderr(&out));

    // A second standby, into a directory that is not empty: refused, then --force keeps the contents aside.
    // Meanwhile nothing's command line ever shows the replicator's password.
    let dir_b = standby._parent.path().join("standby_b");
    std::fs::create_dir(&dir_b).unwrap();
    std::fs::write(dir_b.join("keep-me"), "precious").unwrap();
    assert!(
        Command::new("chown").args(["-R", qrd_testcontainers::SERVER_USER]).arg(&dir_b).status().unwrap().success()
    );
    let port_b = free_port();
    let clone_b = |extra: &[&str]| {
        let mut cmd = standby_cmd(&primary, &scratch);
        cmd.args(["clone", "--primary-host", "127.0.0.1", "--primary-port", &primary.port().to_string()]);
        cmd.arg("--data-dir").arg(&dir_b).args(["--port", &port_b.to_string(), "--json"]);
        cmd.arg("--pg-bin-dir").arg(&primary.installation().client_bin);
        cmd.arg("--pg-bin-dir").arg(&primary.installation().server_bin);
        cmd.args(extra);
        cmd
    };
    let out = run_expect(&mut clone_b(&["--start"]), 4);
    assert!(stderr(&out).contains("is not empty"), "{}", stderr(&out));
    // The watch itself sees a command line that carries a secret (a marker of this test process: tests
    // running beside it must not see it as the password).
    let marker: &'static str = Box::leak(format!("qrd-cmdline-probe-{}", std::process::id()).into_boxed_str());
    let probe = CmdlineWatch::start(marker);
    assert!(Command::new("sh").args(["-c", "sleep 0.3", marker]).status().unwrap().success());
    assert!(!probe.stop().is_empty(), "the /proc watch misses command lines");
    let watch = CmdlineWatch::start("Repl-pw-1");
    let out = run_expect(&mut clone_b(&["--start", "--force"]), 0);
    assert_eq!(watch.stop(), Vec::<String>::new(), "a command line showed the password");
    let b: Value = serde_json::from_slice(&out.stdout).unwrap();
    let aside = PathBuf::from(b["kept_aside"].as_str().unwrap());
    assert_eq!(std::fs::read_to_string(aside.join("keep-me")).unwrap(), "precious");
    let _standby_b =
        Standby { dir: dir_b.clone(), pg_ctl: standby.pg_ctl.clone(), _parent: tempfile::tempdir().unwrap() };
    let deadline = Instant::now() + Duration::from_secs(30);
    while q1(&primary, "SELECT count(*)::text FROM pg_stat_replication WHERE state = 'streaming'").as_deref()
        != Some("2")
    {
        assert!(Instant::now() < deadline, "the second standby does not stream");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Status from both sides.
    let on_standby = |args: &[&str]| {
        let mut cmd = qrd(&primary, &scratch);
        cmd.env("PGPORT", port.to_string()).args(args);
        cmd
    };
    let st: Value =
        serde_json::from_slice(&run_expect(qrd(&primary, &scratch).args(["standby", "status", "--json"]), 0).stdout)
            .unwrap();
    assert_eq!(st["role"], "primary", "{st}");
    let names: Vec<&str> = st["standbys"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["standby_a", "standby_b"], "{st}");
    assert!(st["standbys"].as_array().unwrap().iter().all(|s| s["state"] == "streaming"), "{st}");
    assert_eq!(st["slots"][0]["active"], true, "{st}");
    let st: Value =
        serde_json::from_slice(&run_expect(&mut on_standby(&["standby", "status", "--json"]), 0).stdout).unwrap();
    assert_eq!(st["role"], "standby", "{st}");
    assert_eq!(st["receiver"]["status"], "streaming", "{st}");
    assert_eq!(st["receiver"]["timeline"], 1, "{st}");

    // qrd check watches it from both sides.
    let check = |cmd: &mut Command| -> Vec<Value> {
        let out = run(cmd.args(["check", "--json"]));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["id"].as_str().unwrap().starts_with("replication"))
            .cloned()
            .collect()
    };
    let found = check(&mut qrd(&primary, &scratch));
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.iter().all(|f| f["id"] == "replication.standby" && f["status"] == "ok"), "{found:?}");
    let found = check(&mut on_standby(&[]));
    assert_eq!(
        (found[0]["id"].as_str(), found[0]["status"].as_str()),
        (Some("replication.receiver"), Some("ok")),
        "{found:?}"
    );

    // Failover: refused while the old primary accepts writes; done once it is down.
    let old = format!("127.0.0.1:{}", primary.port());
    let out = run_expect(&mut on_standby(&["failover", "--old-primary", &old]), 4);
    assert!(stderr(&out).contains("still accepts writes"), "{}", stderr(&out));
    assert_eq!(
        q(&socket, port, "SELECT pg_is_in_recovery()::text").as_deref(),
        Some("true"),
        "a refused failover promoted"
    );
    stop_server(&primary);
    let out = run_expect(&mut on_standby(&["failover", "--old-primary", &old, "--json"]), 0);
    let f: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(f["timeline"], 2, "{f}");
    assert!(f["seconds"].as_f64().unwrap() > 0.0, "{f}");
    assert!(f["old_primary"].as_str().unwrap().contains("does not answer"), "{f}");
    assert!(f["qlik_steps"][0].as_str().unwrap().contains("Connection String Editor"), "{f}");
    assert_eq!(q(&socket, port, "SELECT pg_is_in_recovery()::text").as_deref(), Some("false"));
    exec_on(&socket, port, "INSERT INTO flow VALUES (1001)");
    let out = run_expect(&mut on_standby(&["failover"]), 4);
    assert!(stderr(&out).contains("is not a standby"), "{}", stderr(&out));

    // The old primary rejoins as a standby of the new one, and rows flow the other way: by pg_rewind on 16
    // and 15; the 14.17 and 12 installs here have no usable pg_rewind of their own major, so there
    // `--reclone` clones it afresh and says why.
    let new_primary = format!("127.0.0.1:{port}");
    let mut rejoin = standby_cmd(&primary, &scratch);
    rejoin.args(["rejoin", "--new-primary", &new_primary, "--start", "--json", "--data-dir"]).arg(primary.data_dir());
    rejoin.arg("--pg-bin-dir").arg(&primary.installation().server_bin);
    rejoin.arg("--pg-bin-dir").arg(&primary.installation().client_bin);
    if major < 15 {
        let out = run_expect(&mut rejoin, 4);
        assert!(stderr(&out).contains("pg_rewind"), "{}", stderr(&out));
        rejoin.arg("--reclone");
    }
    let r: Value = serde_json::from_slice(&run_expect(&mut rejoin, 0).stdout).unwrap();
    if major >= 15 {
        assert_eq!(r["method"], "pg_rewind", "{r}");
    } else {
        assert_eq!(r["method"], "re-clone", "{r}");
        assert!(r["rewind_failed"].as_str().unwrap().contains("pg_rewind"), "{r}");
    }
    assert_eq!(r["streaming"], "streaming", "{r}");
    let old_port = primary.port();
    assert_eq!(q(&socket, old_port, "SELECT pg_is_in_recovery()::text").as_deref(), Some("true"));
    exec_on(&socket, port, "INSERT INTO flow VALUES (1002)");
    let deadline = Instant::now() + Duration::from_secs(30);
    while q(&socket, old_port, "SELECT count(*)::text FROM flow").as_deref() != Some("1002") {
        assert!(Instant::now() < deadline, "rows written on the new primary did not reach the rejoined one");
        std::thread::sleep(Duration::from_millis(100));
    }
    let auto = std::fs::read_to_string(primary.data_dir().join("postgresql.auto.conf")).unwrap();
    assert!(!auto.contains("Repl-pw-1"), "{auto}");
    assert_eq!(auto.matches("primary_conninfo").count(), 1, "{auto}");
    drop(standby);
}

/// Stops a harness server behind its back (fast), as a crash of its machine would look to the standby.
fn stop_server(server: &Server) {
    let out = Command::new("runuser")
        .args(["-u", qrd_testcontainers::SERVER_USER, "--"])
        .arg(server.installation().server_bin.join("pg_ctl"))
        .arg("-D")
        .arg(server.data_dir())
        .args(["-m", "fast", "-w", "stop"])
        .current_dir("/")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
per_major!(primary_and_standby_stream: pg16 = 16, pg15 = 15, pg14 = 14, pg12 = 12);

fn q1(server: &Server, sql: &str) -> Option<String> {
    block_on(async { server.connect("postgres").await.query_one(sql, &[]).await.unwrap().get(0) })
}

/// The guide's failover trigger: on 12–15 a standby cloned with `--trigger-file` is promoted by creating the
/// file (no database credentials needed); on 16, which removed `promote_trigger_file`, the clone refuses it.
fn trigger_file_failover(major: u32) {
    let primary = Server::start(major);
    let scratch = Scratch::new();
    prepare_primary(&primary, &scratch);
    let parent = standby_home();
    let dir = parent.path().join("standby_t");
    let trigger = parent.path().join("failover");
    let port = free_port();
    let standby =
        Standby { dir: dir.clone(), pg_ctl: primary.installation().server_bin.join("pg_ctl"), _parent: parent };
    let mut clone = standby_cmd(&primary, &scratch);
    clone.args(["clone", "--primary-host", "127.0.0.1", "--primary-port", &primary.port().to_string()]);
    clone.arg("--data-dir").arg(&dir).args(["--port", &port.to_string(), "--start", "--trigger-file"]).arg(&trigger);
    clone.arg("--pg-bin-dir").arg(&primary.installation().client_bin);
    clone.arg("--pg-bin-dir").arg(&primary.installation().server_bin);
    if major >= 16 {
        let out = run_expect(&mut clone, 4);
        assert!(stderr(&out).contains("no promote_trigger_file"), "{}", stderr(&out));
        assert!(!dir.exists(), "a refused clone left a directory");
        return;
    }
    run_expect(&mut clone, 0);
    let mut failover = qrd(&primary, &scratch);
    failover.env("PGPORT", port.to_string()).args(["failover", "--json", "--via-trigger-file"]).arg(&trigger);
    let f: Value = serde_json::from_slice(&run_expect(&mut failover, 0).stdout).unwrap();
    assert!(f["method"].as_str().unwrap().starts_with("trigger file"), "{f}");
    assert_eq!(f["timeline"], 2, "{f}");
    assert_eq!(q(primary.socket_dir(), port, "SELECT pg_is_in_recovery()::text").as_deref(), Some("false"));
    drop(standby);
}
per_major!(trigger_file_failover: pg16 = 16, pg15 = 15, pg12 = 12);

/// qrd stopped by SIGTERM while pg_basebackup copies the primary: pg_basebackup (with its WAL streamer) and
/// its connections are gone, qrd says why and exits 143, and nothing is left of the standby: no data
/// directory, no partial copy beside it.
fn clone_stopped_mid_copy(major: u32) {
    let primary = Server::start(major);
    let scratch = Scratch::new();
    prepare_primary(&primary, &scratch);
    let parent = standby_home();
    let dir = parent.path().join("standby_i");
    // The real pg_basebackup, held to 1 MB/s so that the copy is still going when qrd is stopped.
    let bins = [&primary.installation().client_bin, &primary.installation().server_bin];
    let real = bins.iter().map(|b| b.join("pg_basebackup")).find(|p| p.exists()).expect("a pg_basebackup");
    let slow = parent.path().join("slow-bin");
    std::fs::create_dir(&slow).unwrap();
    let wrapper = slow.join("pg_basebackup");
    let script = format!("#!/bin/sh\nexec {} \"$@\" --max-rate=1M\n", qrd_pgbin::shell_quote(&real.to_string_lossy()));
    std::fs::write(&wrapper, script).unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let mut clone = standby_cmd(&primary, &scratch);
    clone.args(["clone", "--primary-host", "127.0.0.1", "--primary-port", &primary.port().to_string()]);
    clone.arg("--data-dir").arg(&dir).arg("--pg-bin-dir").arg(&slow);
    for bin in bins {
        clone.arg("--pg-bin-dir").arg(bin);
    }
    let (child, _) = crate::backup_faults::until_child(&mut clone, "pg_basebackup", "--pgdata");
    std::thread::sleep(Duration::from_millis(300));
    let started = crate::backup_faults::descendants(child.id());
    crate::backup_faults::signal(child.id(), "TERM");
    let out = crate::backup_faults::finish(child);
    assert_eq!(out.status.code(), Some(143), "{}", stderr(&out));
    assert!(stderr(&out).contains("was stopped because qrd received SIGTERM"), "{}", stderr(&out));

    let gone = qrd_pgbin::poll_until_blocking(
        Instant::now() + Duration::from_secs(20),
        "pg_basebackup and its walsenders are gone",
        || {
            let left: Vec<_> = started.iter().filter(|(pid, _)| crate::backup_faults::runs(*pid)).collect();
            let senders = q1(&primary, "SELECT count(*)::text FROM pg_stat_activity WHERE backend_type = 'walsender'");
            Ok::<_, std::convert::Infallible>(if left.is_empty() && senders.as_deref() == Some("0") {
                qrd_pgbin::Check::Done(())
            } else {
                qrd_pgbin::Check::Pending(format!("processes {left:?}, {senders:?} walsenders"))
            })
        },
    );
    gone.unwrap_or_else(|e| panic!("{e}"));
    let left: Vec<String> = std::fs::read_dir(parent.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("standby_i"))
        .collect();
    assert_eq!(left, Vec::<String>::new(), "the stopped clone left files beside {}", dir.display());
}
per_major!(clone_stopped_mid_copy: pg16 = 16);

/// A planned switchover under a steady write load: every insert the old primary acknowledged is on the new
/// primary, the old primary follows the new one, and the write gap is reported.
fn switchover_loses_nothing(major: u32) {
    let primary = Server::start(major);
    let scratch = Scratch::new();
    prepare_primary(&primary, &scratch);
    block_on(async {
        primary.connect("postgres").await.batch_execute("CREATE TABLE acks (id int PRIMARY KEY)").await.unwrap()
    });
    let parent = standby_home();
    let dir = parent.path().join("standby_s");
    let port = free_port();
    let standby =
        Standby { dir: dir.clone(), pg_ctl: primary.installation().server_bin.join("pg_ctl"), _parent: parent };
    let mut clone = standby_cmd(&primary, &scratch);
    clone.args(["clone", "--primary-host", "127.0.0.1", "--primary-port", &primary.port().to_string()]);
    clone.arg("--data-dir").arg(&dir).args(["--port", &port.to_string(), "--start"]);
    clone.arg("--pg-bin-dir").arg(&primary.installation().client_bin);
    clone.arg("--pg-bin-dir").arg(&primary.installation().server_bin);
    run_expect(&mut clone, 0);

    // Clients write to the primary, one acknowledged insert after another, until told to stop.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (flag, old_port, user, pw) =
        (stop.clone(), primary.port(), primary.superuser().to_owned(), primary.password().to_owned());
    let writer = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let mut acked: Vec<i32> = Vec::new();
            let mut next = 1;
            let mut client = None;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                if client.is_none() {
                    let connected = tokio_postgres::Config::new()
                        .host("127.0.0.1")
                        .port(old_port)
                        .user(&user)
                        .password(&pw)
                        .dbname("postgres")
                        .connect_timeout(Duration::from_secs(1))
                        .connect(tokio_postgres::NoTls)
                        .await;
                    match connected {
                        Ok((c, conn)) => {
                            tokio::spawn(conn);
                            client = Some(c);
                        }
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                    }
                }
                match client.as_ref().unwrap().execute("INSERT INTO acks VALUES ($1)", &[&next]).await {
                    Ok(_) => {
                        acked.push(next);
                        next += 1;
                    }
                    Err(_) => {
                        client = None;
                        next += 1;
                    }
                }
            }
            acked
        })
    });
    std::thread::sleep(Duration::from_millis(500));
    let new_primary = format!("127.0.0.1:{port}");
    let mut switch = qrd(&primary, &scratch);
    switch
        .env("QRD_REPLICATION_PASSWORD", REPL_PW)
        .args(["switchover", "--json", "--standby", &new_primary, "--data-dir"])
        .arg(primary.data_dir());
    switch.arg("--pg-bin-dir").arg(&primary.installation().server_bin);
    switch.arg("--pg-bin-dir").arg(&primary.installation().client_bin);
    let s: Value = serde_json::from_slice(&run_expect(&mut switch, 0).stdout).unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked = writer.join().unwrap();
    assert!(acked.len() > 10, "too few writes to tell anything: {}", acked.len());
    assert_eq!(s["timeline"], 2, "{s}");
    assert_eq!(s["old_primary_streaming"], "streaming", "{s}");
    assert!(s["write_downtime_seconds"].as_f64().unwrap() > 0.0, "{s}");

    let socket = primary.socket_dir().to_owned();
    let on_new = block_on(async {
        let client = socket_client(&socket, port).await.unwrap();
        let n: i64 = client.query_one("SELECT count(*) FROM acks WHERE id = ANY($1)", &[&acked]).await.unwrap().get(0);
        n
    });
    assert_eq!(on_new as usize, acked.len(), "acknowledged inserts are missing on the new primary");
    assert_eq!(q(&socket, primary.port(), "SELECT pg_is_in_recovery()::text").as_deref(), Some("true"));
    drop(standby);
}
per_major!(switchover_loses_nothing: pg16 = 16, pg15 = 15);

/// Scans every process's command line for a secret until stopped; returns what it found.
struct CmdlineWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<String>>,
}

impl CmdlineWatch {
    fn start(secret: &'static str) -> CmdlineWatch {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut hits = Vec::new();
            let mut scans = 0u64;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                for e in std::fs::read_dir("/proc").unwrap().flatten() {
                    if let Ok(cmdline) = std::fs::read(e.path().join("cmdline"))
                        && cmdline.windows(secret.len()).any(|w| w == secret.as_bytes())
                    {
                        hits.push(String::from_utf8_lossy(&cmdline).replace('\0', " "));
                    }
                }
                scans += 1;
            }
            assert!(scans > 3, "the /proc scan did not run while the command ran");
            hits
        });
        CmdlineWatch { stop, thread }
    }

    fn stop(self) -> Vec<String> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// The harness writes `port` and `unix_socket_directories` into postgresql.conf; a DBA's server often has
/// them in an included file. Moves them into `conf.d/10-site.conf`, read through `include_dir 'conf.d'`, and
/// restarts the server with that.
fn move_to_include(server: &mut Server) {
    let conf_path = server.data_dir().join("postgresql.conf");
    let conf = std::fs::read_to_string(&conf_path).unwrap();
    let key = |l: &str| l.split('=').next().unwrap_or("").trim().to_owned();
    let moved: Vec<&str> =
        conf.lines().filter(|l| ["port", "unix_socket_directories"].contains(&key(l).as_str())).collect();
    assert_eq!(moved.len(), 2, "{conf}");
    let kept: String = conf.lines().filter(|l| !moved.contains(l)).map(|l| format!("{l}\n")).collect();
    let conf_d = server.data_dir().join("conf.d");
    std::fs::create_dir(&conf_d).unwrap();
    std::fs::write(conf_d.join("10-site.conf"), moved.join("\n") + "\n").unwrap();
    std::fs::write(&conf_path, kept + "include_dir = 'conf.d'\n").unwrap();
    assert!(
        Command::new("chown").args(["-R", qrd_testcontainers::SERVER_USER]).arg(&conf_d).status().unwrap().success()
    );
    server.restart();
    assert_eq!(q1(server, "SHOW port"), Some(server.port().to_string()));
    assert_eq!(
        q1(server, "SELECT sourcefile FROM pg_settings WHERE name = 'port'"),
        Some(conf_d.join("10-site.conf").display().to_string())
    );
}

/// Port and socket directory set in an included file (`include_dir`), not in postgresql.conf itself: the
/// clone's `--start` sees its standby stream, a rejoin keeps the old primary on its own port, and a
/// switchover completes with the old primary streaming.
fn settings_in_included_files(major: u32) {
    let mut primary = Server::start(major);
    move_to_include(&mut primary);
    let scratch = Scratch::new();
    prepare_primary(&primary, &scratch);
    let bins = |cmd: &mut Command| {
        cmd.arg("--pg-bin-dir").arg(&primary.installation().server_bin);
        cmd.arg("--pg-bin-dir").arg(&primary.installation().client_bin);
    };
    let parent = standby_home();
    let dir = parent.path().join("standby_i");
    let port = free_port();
    let standby =
        Standby { dir: dir.clone(), pg_ctl: primary.installation().server_bin.join("pg_ctl"), _parent: parent };
    let mut clone = standby_cmd(&primary, &scratch);
    clone.args(["clone", "--primary-host", "127.0.0.1", "--primary-port", &primary.port().to_string()]);
    clone.arg("--data-dir").arg(&dir).args(["--port", &port.to_string(), "--start", "--json"]);
    bins(&mut clone);
    let cloned: Value = serde_json::from_slice(&run_expect(&mut clone, 0).stdout).unwrap();
    assert_eq!(cloned["streaming"], "streaming", "{cloned}");
    let socket = primary.socket_dir().to_owned();
    assert_eq!(q(&socket, port, "SELECT pg_is_in_recovery()::text").as_deref(), Some("true"));

    // Failover to the standby while the old primary still runs and takes a write of its own: its history
    // forks, so pg_rewind has to copy the new primary's files (postgresql.auto.conf with the new primary's
    // port among them). The old primary rejoins on its own port all the same, read from its included file.
    let old_port = primary.port();
    let mut failover = qrd(&primary, &scratch);
    failover.env("PGPORT", port.to_string()).args(["failover", "--json"]);
    run_expect(&mut failover, 0);
    exec_on(&socket, old_port, "CREATE TABLE diverged (n int); INSERT INTO diverged VALUES (1)");
    stop_server(&primary);
    let mut rejoin = standby_cmd(&primary, &scratch);
    rejoin.args(["rejoin", "--new-primary", &format!("127.0.0.1:{port}"), "--start", "--json", "--data-dir"]);
    rejoin.arg(primary.data_dir());
    bins(&mut rejoin);
    let r: Value = serde_json::from_slice(&run_expect(&mut rejoin, 0).stdout).unwrap();
    assert_eq!(r["streaming"], "streaming", "{r}");
    assert_eq!(r["method"], "pg_rewind", "{r}");
    assert_eq!(r["kept"]["port"], old_port.to_string(), "{r}");
    assert_eq!(q(&socket, old_port, "SHOW port"), Some(old_port.to_string()));
    assert_eq!(q(&socket, old_port, "SELECT pg_is_in_recovery()::text").as_deref(), Some("true"));
    assert_eq!(
        q(&socket, old_port, "SELECT coalesce(to_regclass('diverged')::text, 'rewound away')").as_deref(),
        Some("rewound away")
    );

    // A switchover back: the standby's directory has its port in postgresql.auto.conf and its socket
    // directory in the included file.
    let mut switch = qrd(&primary, &scratch);
    switch.env("PGPORT", port.to_string()).env("QRD_REPLICATION_PASSWORD", REPL_PW);
    switch.args(["switchover", "--json", "--standby", &format!("127.0.0.1:{old_port}"), "--data-dir"]).arg(&dir);
    bins(&mut switch);
    let s: Value = serde_json::from_slice(&run_expect(&mut switch, 0).stdout).unwrap();
    assert_eq!(s["old_primary_streaming"], "streaming", "{s}");
    assert_eq!(q(&socket, old_port, "SELECT pg_is_in_recovery()::text").as_deref(), Some("false"));
    assert_eq!(q(&socket, port, "SELECT pg_is_in_recovery()::text").as_deref(), Some("true"));
    assert_eq!(q(&socket, port, "SHOW port"), Some(port.to_string()));
    drop(standby);
}
per_major!(settings_in_included_files: pg16 = 16);

/// `qrd` aimed at a Debian cluster's port over TCP as `postgres` with `password`.
fn qrd_deb(port: u16, password: &str, scratch: &Scratch) -> Command {
    let mut cmd = qrd_bare(scratch);
    cmd.env("PGHOST", "127.0.0.1").env("PGPORT", port.to_string()).env("PGUSER", "postgres");
    cmd.env("PGPASSWORD", password).env("PGDATABASE", "postgres").env("QRD_REPLICATION_PASSWORD", REPL_PW);
    cmd
}

/// The first column of `sql`'s one row on the server at 127.0.0.1:`port`, as `postgres` with `password`.
fn tcp_q(port: u16, password: &str, sql: &str) -> String {
    block_on(async {
        let (client, conn) = tokio_postgres::Config::new()
            .host("127.0.0.1")
            .port(port)
            .user("postgres")
            .password(password)
            .dbname("postgres")
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
        tokio::spawn(conn);
        client.query_one(sql, &[]).await.unwrap_or_else(|e| panic!("{sql} on port {port}: {e}")).get(0)
    })
}

/// What a server on `port` says of itself: its port, whether it is in recovery, and its cluster name.
fn deb_state(port: u16, password: &str) -> (String, String, String) {
    (
        tcp_q(port, password, "SHOW port"),
        tcp_q(port, password, "SELECT pg_is_in_recovery()::text"),
        tcp_q(port, password, "SHOW cluster_name"),
    )
}

/// The state of the walsender to `name` on the server at `port` (`streaming`), or "none".
fn sender_state(port: u16, password: &str, name: &str) -> String {
    tcp_q(
        port,
        password,
        &format!("SELECT coalesce((SELECT state FROM pg_stat_replication WHERE application_name = '{name}'), 'none')"),
    )
}

/// Standbys on clusters as Debian packages them (pg_createcluster: configuration in
/// /etc/postgresql/15/NAME, data in /var/lib/postgresql/15/NAME, pg_ctlcluster): the DBA's fresh cluster
/// cloned over from another one, a failover with --data-dir, the old primary rejoined, and a switchover back.
/// After each step pg_lsclusters shows each cluster online, in recovery or not, on its own port, and the
/// servers say the same.
#[test]
fn debian_clusters_clone_failover_rejoin_switchover() {
    let a = DebianCluster::start();
    let b = DebianCluster::start();
    let scratch = Scratch::new();
    // After the clone, b holds a's catalog: a's password works on both.
    let pw = a.password().to_owned();
    let (a_name, b_name) = (format!("15/{}", a.name()), format!("15/{}", b.name()));
    let mut prepare = qrd_deb(a.port(), &pw, &scratch);
    prepare.args(["standby", "prepare-primary", "--standby", "127.0.0.1", "--restart"]);
    run_expect(&mut prepare, 0);

    // The DBA made b with pg_createcluster, stops it and clones over it (its contents are kept aside).
    b.stop();
    let mut clone = qrd_bare(&scratch);
    clone.env("QRD_REPLICATION_PASSWORD", REPL_PW).args(["standby", "clone", "--primary-host", "127.0.0.1"]);
    clone.args(["--primary-port", &a.port().to_string(), "--force", "--start", "--json", "--data-dir"]);
    clone.arg(b.data_dir());
    let cloned: Value = serde_json::from_slice(&run_expect(&mut clone, 0).stdout).unwrap();
    assert_eq!(cloned["streaming"], "streaming", "{cloned}");
    assert_eq!(b.lsclusters(), (b.port(), "online,recovery".to_owned()));
    assert_eq!(a.lsclusters(), (a.port(), "online".to_owned()));
    assert_eq!(deb_state(b.port(), &pw), (b.port().to_string(), "true".into(), b_name.clone()));
    assert_eq!(sender_state(a.port(), &pw, b.name()), "streaming");
    assert!(!b.data_dir().join("postgresql.conf").exists(), "the configuration stays in /etc");

    // Failover to b by pg_ctlcluster's promote, a being down.
    a.stop();
    let mut failover = qrd_deb(b.port(), &pw, &scratch);
    failover.args(["failover", "--json", "--data-dir"]).arg(b.data_dir());
    let f: Value = serde_json::from_slice(&run_expect(&mut failover, 0).stdout).unwrap();
    assert_eq!(f["timeline"], 2, "{f}");
    assert_eq!(b.lsclusters(), (b.port(), "online".to_owned()));
    assert_eq!(a.lsclusters(), (a.port(), "down".to_owned()));
    assert_eq!(deb_state(b.port(), &pw), (b.port().to_string(), "false".into(), b_name.clone()));

    // a rejoins as b's standby, started by pg_ctlcluster on its own port.
    let mut rejoin = qrd_deb(b.port(), &pw, &scratch);
    rejoin.args(["standby", "rejoin", "--new-primary", &format!("127.0.0.1:{}", b.port()), "--start", "--json"]);
    rejoin.arg("--data-dir").arg(a.data_dir());
    let r: Value = serde_json::from_slice(&run_expect(&mut rejoin, 0).stdout).unwrap();
    assert_eq!((r["method"].as_str(), r["streaming"].as_str()), (Some("pg_rewind"), Some("streaming")), "{r}");
    assert_eq!(a.lsclusters(), (a.port(), "online,recovery".to_owned()));
    assert_eq!(b.lsclusters(), (b.port(), "online".to_owned()));
    assert_eq!(deb_state(a.port(), &pw), (a.port().to_string(), "true".into(), a_name.clone()));
    assert_eq!(sender_state(b.port(), &pw, a.name()), "streaming");

    // A switchover back to a: b stops cleanly (pg_ctlcluster), a is promoted, b follows it.
    let mut switch = qrd_deb(b.port(), &pw, &scratch);
    switch.args(["switchover", "--json", "--standby", &format!("127.0.0.1:{}", a.port()), "--data-dir"]);
    switch.arg(b.data_dir());
    let s: Value = serde_json::from_slice(&run_expect(&mut switch, 0).stdout).unwrap();
    assert_eq!(s["old_primary_streaming"], "streaming", "{s}");
    assert_eq!(a.lsclusters(), (a.port(), "online".to_owned()));
    assert_eq!(b.lsclusters(), (b.port(), "online,recovery".to_owned()));
    assert_eq!(deb_state(a.port(), &pw), (a.port().to_string(), "false".into(), a_name));
    assert_eq!(deb_state(b.port(), &pw), (b.port().to_string(), "true".into(), b_name));
    assert_eq!(sender_state(a.port(), &pw, b.name()), "streaming");
}

/// A Debian cluster cloned from a primary in initdb's layout: the copy brings the primary's postgresql.conf,
/// pg_hba.conf and pg_ident.conf, which this cluster does not read (its own are in /etc). They are not left
/// in the data directory to be mistaken for its configuration, and the standby runs on its own port.
#[test]
fn a_debian_standby_of_an_initdb_primary_keeps_its_own_configuration() {
    let primary = Server::start(qrd_testcontainers::DEBIAN_MAJOR);
    let scratch = Scratch::new();
    prepare_primary(&primary, &scratch);
    let b = DebianCluster::start();
    b.stop();
    let mut clone = standby_cmd(&primary, &scratch);
    clone.args(["clone", "--primary-host", "127.0.0.1", "--primary-port", &primary.port().to_string()]);
    clone.args(["--force", "--start", "--json", "--data-dir"]).arg(b.data_dir());
    let cloned: Value = serde_json::from_slice(&run_expect(&mut clone, 0).stdout).unwrap();
    assert_eq!(cloned["streaming"], "streaming", "{cloned}");
    for file in ["postgresql.conf", "pg_hba.conf", "pg_ident.conf"] {
        assert!(!b.data_dir().join(file).exists(), "the primary's {file} was left in the data directory");
    }
    assert_eq!(b.lsclusters(), (b.port(), "online,recovery".to_owned()));
    assert_eq!(
        deb_state(b.port(), primary.password()),
        (b.port().to_string(), "true".into(), format!("15/{}", b.name()))
    );
    assert_eq!(
        q1(&primary, &format!("SELECT state FROM pg_stat_replication WHERE application_name = '{}'", b.name())),
        Some("streaming".to_owned())
    );
}
