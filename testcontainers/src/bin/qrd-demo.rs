//! The README's main job on an embedded default: start a throwaway PostgreSQL server (14.17, the version
//! Qlik bundles, unless `--major N`), run `qrd provision`, `qrd check`, `qrd conf` and `qrd hba` against it
//! as a DBA would, then `qrd scram status` and `qrd ssl enable --self-signed`, show their output, and remove
//! the server; then backups, restores and drills, a standby and a failover, and a Patroni cluster
//! (`qrd ha`) that adopts the site.
//!
//! Run it with `cargo make demo`, which installs the servers and builds `qrd` next to this binary.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use qrd_testcontainers::Server;

fn main() -> ExitCode {
    let mut major = 14;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--major" => major = args.next().and_then(|m| m.parse().ok()).unwrap_or_else(|| usage()),
            _ => usage(),
        }
    }
    match run(major) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> ! {
    eprintln!("usage: qrd-demo [--major 12|14|15|16]");
    std::process::exit(2)
}

fn run(major: u32) -> Result<(), String> {
    let qrd = qrd_binary()?;
    say(&format!("starting a throwaway PostgreSQL {major} server (initdb into a temp dir, free port)"));
    let mut server = Server::builder(major).start().map_err(|e| e.to_string())?;
    say(&format!(
        "PostgreSQL {} is up on {}:{} (data in {})",
        server.version(),
        server.host(),
        server.port(),
        server.data_dir().display()
    ));

    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let pw_file = scratch.path().join("repo-password");
    std::fs::write(&pw_file, qrd_testcontainers::random_password().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pw_file, std::fs::Permissions::from_mode(0o600)).map_err(|e| e.to_string())?;

    let client_env = server.client_env();
    let qrd_cmd = |args: &[&str]| {
        let mut cmd = Command::new(&qrd);
        for (k, _) in std::env::vars_os() {
            if k.to_str().is_some_and(|k| k.starts_with("PG")) {
                cmd.env_remove(k);
            }
        }
        cmd.envs(client_env.iter().cloned()).env("HOME", scratch.path()).args(args);
        cmd
    };
    let client_bin = server.installation().client_bin.to_str().unwrap().to_owned();
    let backups = scratch.path().join("backups");
    std::fs::create_dir(&backups).map_err(|e| e.to_string())?;
    let backups_dir = backups.to_str().unwrap().to_owned();
    let bundle = backups.join("demo.tar.zst").to_str().unwrap().to_owned();
    let steps: [(&str, Vec<&str>, &[i32]); 17] = [
        ("what would provisioning do? (nothing is changed)", vec!["provision", "--dry-run"], &[0]),
        (
            "provision the four Qlik databases and the repository role",
            vec!["provision", "--repo-password-file", pw_file.to_str().unwrap()],
            &[0],
        ),
        ("run it again: idempotent", vec!["provision", "--repo-password-file", pw_file.to_str().unwrap()], &[0]),
        ("check the server (exit 1 only if a check fails)", vec!["check", "--pg-bin-dir", &client_bin], &[0]),
        (
            "the guide's postgresql.conf values for a two-node site, as a diff (nothing is changed)",
            vec!["conf", "tune", "--nodes", "2", "--listen", "*", "--dry-run"],
            &[0],
        ),
        (
            "let a Qlik node at 127.0.0.2 in (pg_hba.conf: backup, atomic write, reload)",
            vec!["hba", "allow-nodes", "127.0.0.2"],
            &[0],
        ),
        (
            "which pg_hba.conf line would that node's repository service meet?",
            vec!["hba", "explain", "--address", "127.0.0.2", "--user", "qliksenserepository", "--database", "QSR"],
            &[0],
        ),
        (
            "check again for a one-node site at 127.0.0.2: pg_hba.conf coverage, max_connections",
            vec!["check", "--pg-bin-dir", &client_bin, "--node", "127.0.0.2", "--nodes", "1"],
            &[0],
        ),
        (
            "passwords: which roles still have md5 hashes, which pg_hba.conf lines use which method",
            vec!["scram", "status"],
            &[0],
        ),
        (
            "back up the roles and every Qlik database into one bundle (each database in its own snapshot, row \
             counts from that snapshot, the site's nodes and shared folders from QSR)",
            vec!["backup", "--out", &backups_dir, "--name", "demo", "--pg-bin-dir", &client_bin],
            &[0],
        ),
        ("what the backup directory holds", vec!["backup", "list", &backups_dir], &[0]),
        (
            "verify the bundle: every member's checksum, every archive read by pg_restore --list",
            vec!["backup", "verify", &bundle, "--pg-bin-dir", &client_bin],
            &[0],
        ),
        (
            "a disaster-recovery drill: the bundle restored into scratch databases, every row count proven, RTO \
             and RPO, the scratch databases dropped",
            vec!["drill", &bundle, "--pg-bin-dir", &client_bin],
            &[0],
        ),
        (
            "what a nightly job's retention would delete (here: nothing)",
            vec!["backup", "prune", &backups_dir, "--keep-last", "7", "--dry-run", "--pg-bin-dir", &client_bin],
            &[0],
        ),
        (
            "roll the site back to the bundle in place: each database restored into a scratch one, proven, then all \
             swapped in by one transaction (the originals in service until then; --drop-old drops them after)",
            vec!["restore", &bundle, "--clean", "--drop-old", "--pg-bin-dir", &client_bin],
            &[0],
        ),
        (
            "TLS for a lab: a generated CA and server certificate, the guide's settings, host rules → hostssl, \
             proven by a TLS login and a refused plain one",
            vec!["ssl", "enable", "--self-signed", "--hostname", "localhost", "--hostname", "127.0.0.1"],
            &[0],
        ),
        ("what the server now presents", vec!["ssl", "status"], &[0]),
    ];
    for (what, args, ok_codes) in steps {
        if what == "check the server (exit 1 only if a check fails)" {
            say("loading a QSR-like site into the four databases (sql/fixtures: two nodes, users, apps, history)");
            qrd_testcontainers::fixtures::load_site(&server, qrd_testcontainers::fixtures::Scale::Seed)
                .map_err(|e| e.to_string())?;
        }
        say(&format!("{what}\n$ qrd {}", args.join(" ")));
        let status = qrd_cmd(&args).status().map_err(|e| format!("failed to run {}: {e}", qrd.display()))?;
        if !ok_codes.contains(&status.code().unwrap_or(-1)) {
            return Err(format!("qrd {} exited with {status}", args.join(" ")));
        }
    }
    say("a disaster: a second throwaway server stands in for the new host; restore the bundle onto it (the roles, \
         the data, and each database's grants and settings from the manifest: nothing is left for qrd provision)");
    let target = Server::builder(major).start().map_err(|e| e.to_string())?;
    let mut restore = Command::new(&qrd);
    for (k, _) in std::env::vars_os() {
        if k.to_str().is_some_and(|k| k.starts_with("PG")) {
            restore.env_remove(k);
        }
    }
    restore.envs(target.client_env()).env("HOME", scratch.path());
    restore.args(["restore", &bundle, "--pg-bin-dir", &client_bin]);
    println!("$ qrd restore {bundle} --pg-bin-dir {client_bin}");
    let status = restore.status().map_err(|e| format!("failed to run {}: {e}", qrd.display()))?;
    if !status.success() {
        return Err(format!("qrd restore exited with {status}"));
    }
    say("the new host on a managed service (Amazon RDS, Azure, Cloud SQL) has an admin that is no superuser \
         (CREATEROLE CREATEDB, pg_read_all_settings, pg_monitor); qrd check as that admin: what it may not read \
         (pg_authid, pg_hba.conf) is skip, never a failure");
    let admin_pw = qrd_testcontainers::random_password().map_err(|e| e.to_string())?;
    let create_admin = format!(
        "CREATE ROLE qlik_admin LOGIN CREATEROLE CREATEDB PASSWORD {}; GRANT pg_read_all_settings, pg_monitor TO qlik_admin",
        qrd_pg::quote::literal(&admin_pw).map_err(|e| e.to_string())?
    );
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime
        .block_on(async { target.connect("postgres").await.batch_execute(&create_admin).await })
        .map_err(|e| e.to_string())?;
    let mut check = Command::new(&qrd);
    for (k, _) in std::env::vars_os() {
        if k.to_str().is_some_and(|k| k.starts_with("PG")) {
            check.env_remove(k);
        }
    }
    // The admin's password reaches qrd through its environment, as PGPASSWORD does for psql; never argv.
    check.envs(target.client_env()).env("PGUSER", "qlik_admin").env("PGPASSWORD", &admin_pw);
    check.env("HOME", scratch.path()).args(["check", "-U", "qlik_admin"]);
    println!("$ qrd check -U qlik_admin");
    let status = check.status().map_err(|e| format!("failed to run {}: {e}", qrd.display()))?;
    if !matches!(status.code(), Some(0 | 1)) {
        return Err(format!("qrd check as the managed admin exited with {status}"));
    }
    say("a standby of the site on this machine: the primary prepared for its major, a clone that streams");
    let server_bin = server.installation().server_bin.to_str().unwrap().to_owned();
    let data_dir = server.data_dir().to_str().unwrap().to_owned();
    let standbys = tempfile::Builder::new().prefix("qrd-demo-standby-").tempdir().map_err(|e| e.to_string())?;
    std::fs::set_permissions(standbys.path(), std::fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
    let owner = qrd_pgbin::Identity::owner_of(server.data_dir()).map_err(|e| e.to_string())?;
    std::os::unix::fs::chown(standbys.path(), Some(owner.uid()), Some(owner.gid())).map_err(|e| e.to_string())?;
    let standby_dir = standbys.path().join("standby1").to_str().unwrap().to_owned();
    let standby_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port()
        .to_string();
    let primary_port = server.port().to_string();
    let old_primary = format!("127.0.0.1:{primary_port}");
    let replication_pw = qrd_testcontainers::random_password().map_err(|e| e.to_string())?;
    let standby_steps: [(&str, Vec<&str>, bool); 4] = [
        (
            "prepare the primary: WAL settings for its major, a replication role, a pg_hba rule, a slot; restart",
            vec![
                "standby",
                "prepare-primary",
                "--standby",
                "127.0.0.1",
                "--slot",
                "standby1",
                "--restart",
                "--data-dir",
                &data_dir,
                "--pg-bin-dir",
                &server_bin,
            ],
            false,
        ),
        (
            "clone a standby with pg_basebackup as the server's user, start it, wait until it streams",
            vec![
                "standby",
                "clone",
                "--primary-host",
                "127.0.0.1",
                "--primary-port",
                &primary_port,
                "--data-dir",
                &standby_dir,
                "--slot",
                "standby1",
                "--port",
                &standby_port,
                "--start",
                "--pg-bin-dir",
                &client_bin,
                "--pg-bin-dir",
                &server_bin,
            ],
            false,
        ),
        ("replication as the primary sees it", vec!["standby", "status"], false),
        (
            "the primary's machine is lost (stopped here); fail over: fencing check, promotion, the Qlik steps",
            vec!["failover", "--old-primary", &old_primary],
            true,
        ),
    ];
    for (what, args, on_standby) in standby_steps {
        if on_standby {
            server.stop();
        }
        say(&format!("{what}\n$ qrd {}", args.join(" ")));
        let mut cmd = qrd_cmd(&args);
        cmd.env("QRD_REPLICATION_PASSWORD", &replication_pw);
        if on_standby {
            cmd.env("PGPORT", &standby_port);
        }
        let status = cmd.status().map_err(|e| format!("failed to run {}: {e}", qrd.display()))?;
        if !status.success() {
            return Err(format!("qrd {} exited with {status}", args.join(" ")));
        }
    }
    let pg_ctl = server.installation().server_bin.join("pg_ctl");
    if let Ok(ctl) = qrd_server::PgCtl::for_owner(&pg_ctl, standbys.path().join("standby1")) {
        let _ = ctl.stop_blocking(qrd_server::StopMode::Fast);
    }

    ha_demo(&qrd, &bundle)?;

    say("stopping and removing the throwaway servers");
    drop(target);
    drop(server);
    say("demo complete");
    Ok(())
}

/// High availability: a Patroni cluster for the repository written by `qrd ha init` and run here (etcd,
/// three members, HAProxy on a private loopback block, PostgreSQL 15 as Debian packages it for Patroni),
/// the demo site adopted from its bundle, checked, switched over, and `qrd check` through the endpoint.
fn ha_demo(qrd: &std::path::Path, bundle: &str) -> Result<(), String> {
    use qrd_testcontainers::HaLab;
    let e = |e: qrd_testcontainers::HarnessError| e.to_string();
    say(
        "high availability: a Patroni + etcd + HAProxy cluster for the repository (PostgreSQL 15, three members on a private loopback block)",
    );
    let mut lab = HaLab::new(15, 3).map_err(e)?;
    let su_pw = qrd_testcontainers::random_password().map_err(e)?;
    let repo_pw = qrd_testcontainers::random_password().map_err(e)?;
    let client_bin = qrd_testcontainers::installation(15).map_err(e)?.client_bin.display().to_string();
    let config = lab.config(0).display().to_string();
    let ca = lab.ca().display().to_string();
    let endpoint = lab.endpoint_host().to_string();
    let run = |what: &str, args: &[String]| -> Result<(), String> {
        say(&format!("{what}\n$ qrd {}", args.join(" ")));
        let status = qrd_pgbin::scrubbed_command(qrd)
            .args(args)
            .env("QRD_REPO_PASSWORD", &repo_pw)
            .env("QRD_PASSWORD_POSTGRES", &su_pw)
            .env("PGPASSWORD", &su_pw)
            .env("PGUSER", "postgres")
            .status()
            .map_err(|e| format!("failed to run {}: {e}", qrd.display()))?;
        if status.success() { Ok(()) } else { Err(format!("qrd {} exited with {status}", args.join(" "))) }
    };
    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    run(
        "write every member's patroni.yml, credentials (0600 env file) and bootstrap SQL, etcd's and HAProxy's settings",
        &lab.init_args(),
    )?;
    say("start etcd, the three Patroni members (as the service user) and HAProxy");
    lab.start_all().map_err(e)?;
    lab.start_haproxy().map_err(e)?;
    lab.wait_streaming(std::time::Duration::from_secs(180)).map_err(e)?;
    run("the cluster as Patroni, etcd and HAProxy report it", &owned(&["ha", "status", "--config", &config]))?;
    run(
        "adopt the demo site's bundle into the leader (restore, row counts proven, every replica caught up)",
        &owned(&["ha", "adopt", "--bundle", bundle, "--config", &config, "--pg-bin-dir", &client_bin]),
    )?;
    run(
        "check the cluster, each member's own settings compared",
        &owned(&["ha", "check", "--members", "--config", &config]),
    )?;
    run("a planned switchover (the candidate must stream first)", &owned(&["ha", "switchover", "--config", &config]))?;
    run(
        "qrd check through HAProxy: the one Host the Qlik nodes name",
        &owned(&["check", "-h", &endpoint, "-p", "4432", "--sslmode", "verify-full", "--sslrootcert", &ca]),
    )?;
    say("stopping the cluster (replicas, leader, HAProxy, etcd) and removing it");
    drop(lab);
    Ok(())
}

fn say(msg: &str) {
    println!("\n==> {msg}");
}

/// `qrd` is built next to this binary (`cargo build` puts both in target/<profile>/).
fn qrd_binary() -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let qrd = me.with_file_name("qrd");
    if qrd.exists() {
        Ok(qrd)
    } else {
        Err(format!("{} not found: build it first (cargo build --bin qrd), or run `cargo make demo`", qrd.display()))
    }
}
