//! `cargo make bench` (third part): standbys on a QSR-like site of `--size MIB` (default 1024), PostgreSQL 16
//! and 15, in `--rounds` (default 3) that alternate which side goes first; medians.
//!
//! - clone: `qrd standby clone` vs a raw `pg_basebackup -X stream -c fast -R` plus the hand configuration
//!   the guide's steps leave (the standby's own port), both as the server's user, neither started;
//! - failover: `qrd failover` (fencing check against the stopped old primary, `pg_promote()`, until a
//!   transaction id is handed out) vs a raw `pg_ctl promote -w`, each on a freshly cloned, streaming standby;
//! - switchover: `qrd switchover` back and forth between two servers, its total time and the longest gap
//!   between two acknowledged inserts of a client that writes all along (connecting to whichever server
//!   accepts writes, as `target_session_attrs=read-write` does).
//!
//! Prints Markdown tables for BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use qrd_testcontainers::Server;
use qrd_testcontainers::fixtures::{Scale, load_site};

const PW: &str = "Bench-repl-1";

fn main() {
    let (mut size, mut majors, mut rounds) = (1024, vec![16, 15], 3);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = || args.next().and_then(|v| v.parse::<u32>().ok()).expect("a number");
        match a.as_str() {
            "--size" => size = num(),
            "--major" => majors = vec![num()],
            "--rounds" => rounds = num().max(1),
            other => {
                panic!("unknown argument {other:?}; usage: qrd-bench-replica [--size MIB] [--major N] [--rounds N]")
            }
        }
    }
    let qrd = std::env::current_exe().unwrap().with_file_name("qrd");
    assert!(qrd.exists(), "{} is missing: run `cargo make bench`", qrd.display());
    let home = tempfile::tempdir_in("/tmp").unwrap();
    let work = tempfile::Builder::new().prefix("qrd-bench-replica-").tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(work.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    must(Command::new("chown").arg(qrd_testcontainers::SERVER_USER).arg(work.path()));

    println!("| major | QSR size | operation | qrd | baseline | ratio qrd/baseline |");
    println!("|---|---|---|---|---|---|");
    let mut switch_rows = Vec::new();
    for major in majors {
        let primary = Server::start(major);
        let server_bin = primary.installation().server_bin.clone();
        let client_bin = primary.installation().client_bin.clone();
        let pw = home.path().join("repo-pw");
        std::fs::write(&pw, "Bench-pw-1").unwrap();
        std::fs::set_permissions(&pw, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        must(qrd_cmd(&qrd, &primary, home.path()).args(["provision", "--repo-password-file"]).arg(&pw));
        let t = Instant::now();
        load_site(&primary, Scale::QsrMib(size)).unwrap();
        eprintln!("PostgreSQL {major}: QSR grown to {size} MiB in {:.1} s", t.elapsed().as_secs_f64());
        let mib = qsr_mib(&primary);
        let mut prepare = qrd_cmd(&qrd, &primary, home.path());
        prepare.args(["standby", "prepare-primary", "--standby", "127.0.0.1", "--restart", "--data-dir"]);
        prepare.arg(primary.data_dir()).arg("--pg-bin-dir").arg(&server_bin);
        must(&mut prepare);
        let bins = [client_bin.clone(), server_bin.clone()];

        // Clone.
        let (mut q, mut raw) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            for side in order(round) {
                let dir = work.path().join("clone");
                settle(&primary);
                let t = Instant::now();
                if side {
                    must(&mut clone_cmd(&qrd, &primary, home.path(), &dir, free_port(), &bins, false));
                    q.push(t.elapsed());
                } else {
                    raw_clone(&primary, &client_bin, &dir, free_port());
                    raw.push(t.elapsed());
                }
                std::fs::remove_dir_all(&dir).unwrap();
            }
        }
        row(major, mib, "standby clone (s)", median(&mut q), median(&mut raw), "pg_basebackup -R + port");

        // Failover, each on a fresh standby.
        let (mut q, mut raw) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            for side in order(round) {
                let dir = work.path().join("promote");
                let port = free_port();
                must(&mut clone_cmd(&qrd, &primary, home.path(), &dir, port, &bins, true));
                settle(&primary);
                let t = Instant::now();
                if side {
                    let mut f = qrd_cmd(&qrd, &primary, home.path());
                    f.env("PGPORT", port.to_string()).args(["failover", "--old-primary", "127.0.0.1:1"]);
                    must(&mut f);
                    q.push(t.elapsed());
                } else {
                    must(as_server_user(&server_bin.join("pg_ctl")).arg("-D").arg(&dir).args(["-w", "promote"]));
                    raw.push(t.elapsed());
                }
                must(as_server_user(&server_bin.join("pg_ctl")).arg("-D").arg(&dir).args([
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ]));
                std::fs::remove_dir_all(&dir).unwrap();
            }
        }
        row(major, mib, "failover until writable (s)", median(&mut q), median(&mut raw), "pg_ctl promote -w");

        // Switchover back and forth, with a client writing all along.
        let other = work.path().join("other");
        let other_port = free_port();
        must(&mut clone_cmd(&qrd, &primary, home.path(), &other, other_port, &bins, true));
        let servers = [(primary.data_dir().to_owned(), primary.port()), (other.clone(), other_port)];
        let stop = Arc::new(AtomicBool::new(false));
        let writer = writer(stop.clone(), &primary, [primary.port(), other_port]);
        std::thread::sleep(Duration::from_secs(1));
        let (mut totals, mut downtimes) = (Vec::new(), Vec::new());
        for round in 0..rounds as usize {
            let (from, to) = (&servers[round % 2], &servers[(round + 1) % 2]);
            let mut s = qrd_cmd(&qrd, &primary, home.path());
            s.env("PGPORT", from.1.to_string()).args(["switchover", "--json", "--standby"]);
            s.arg(format!("127.0.0.1:{}", to.1)).arg("--data-dir").arg(&from.0);
            s.arg("--pg-bin-dir").arg(&server_bin).arg("--pg-bin-dir").arg(&client_bin);
            let t = Instant::now();
            let out = s.output().unwrap();
            assert!(out.status.success(), "switchover failed: {}", String::from_utf8_lossy(&out.stderr));
            totals.push(t.elapsed());
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            downtimes.push(Duration::from_secs_f64(v["write_downtime_seconds"].as_f64().unwrap()));
            std::thread::sleep(Duration::from_secs(1));
        }
        stop.store(true, Ordering::Relaxed);
        let (acked, longest_gap) = writer.join().unwrap();
        switch_rows.push(format!(
            "| {major} | {mib:.0} MiB | {:.2} | {:.2} | {:.2} | {acked} |",
            median(&mut totals).as_secs_f64(),
            median(&mut downtimes).as_secs_f64(),
            longest_gap.as_secs_f64()
        ));
        let _ = as_server_user(&server_bin.join("pg_ctl"))
            .arg("-D")
            .arg(&other)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&other);
    }
    println!(
        "\n| major | QSR size | switchover total (s, median) | write downtime qrd measured (s, median) | longest gap a writing client saw (s, all rounds) | inserts acknowledged |"
    );
    println!("|---|---|---|---|---|---|");
    for r in switch_rows {
        println!("{r}");
    }
}

/// A client inserting one row at a time into whichever server accepts writes; returns the rows
/// acknowledged and the longest time between two acknowledgements.
fn writer(stop: Arc<AtomicBool>, server: &Server, ports: [u16; 2]) -> std::thread::JoinHandle<(usize, Duration)> {
    let (user, pw) = (server.superuser().to_owned(), server.password().to_owned());
    let mut psql = server.psql("postgres");
    must(psql.args([
        "-q",
        "-c",
        "CREATE TABLE IF NOT EXISTS bench_writes (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())",
    ]));
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let (mut acked, mut gap, mut last) = (0, Duration::ZERO, Instant::now());
            let mut client = None;
            while !stop.load(Ordering::Relaxed) {
                if client.is_none() {
                    let mut c = tokio_postgres::Config::new();
                    c.host("127.0.0.1").host("127.0.0.1").port(ports[0]).port(ports[1]).user(&user).password(&pw);
                    c.dbname("postgres").connect_timeout(Duration::from_secs(1));
                    c.target_session_attrs(tokio_postgres::config::TargetSessionAttrs::ReadWrite);
                    match c.connect(tokio_postgres::NoTls).await {
                        Ok((cl, conn)) => {
                            tokio::spawn(conn);
                            client = Some(cl);
                        }
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    }
                }
                match client.as_ref().unwrap().execute("INSERT INTO bench_writes DEFAULT VALUES", &[]).await {
                    Ok(_) => {
                        acked += 1;
                        gap = gap.max(last.elapsed());
                        last = Instant::now();
                    }
                    Err(_) => client = None,
                }
            }
            (acked, gap)
        })
    })
}

fn clone_cmd(
    qrd: &Path,
    primary: &Server,
    home: &Path,
    dir: &Path,
    port: u16,
    bins: &[PathBuf],
    start: bool,
) -> Command {
    let mut cmd = qrd_cmd(qrd, primary, home);
    cmd.args(["standby", "clone", "--primary-host", "127.0.0.1", "--primary-port", &primary.port().to_string()]);
    cmd.arg("--data-dir").arg(dir).args(["--port", &port.to_string()]);
    for b in bins {
        cmd.arg("--pg-bin-dir").arg(b);
    }
    if start {
        cmd.arg("--start");
    }
    cmd
}

/// The guide's way, with current tools: pg_basebackup -R as the server's user (the password through a
/// passfile, as qrd does), then the standby's own port by hand.
fn raw_clone(primary: &Server, client_bin: &Path, dir: &Path, port: u16) {
    let passfile = qrd_pgbin::Passfile::for_entry("*", "*", "*", "replicator", PW).unwrap();
    must(Command::new("chown").arg(qrd_testcontainers::SERVER_USER).arg(passfile.path()));
    let mut cmd = as_server_user(&client_bin.join("pg_basebackup"));
    cmd.env("PGPASSFILE", passfile.path()).args([
        "-h",
        "127.0.0.1",
        "-p",
        &primary.port().to_string(),
        "-U",
        "replicator",
    ]);
    cmd.arg("-D").arg(dir).args(["-X", "stream", "-c", "fast", "-R", "-w"]);
    must(&mut cmd);
    let auto = dir.join("postgresql.auto.conf");
    let mut text = std::fs::read_to_string(&auto).unwrap();
    text.push_str(&format!("port = {port}\n"));
    std::fs::write(&auto, text).unwrap();
}

fn as_server_user(program: &Path) -> Command {
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", qrd_testcontainers::SERVER_USER, "--"]).arg(program).current_dir("/");
    cmd
}

fn qrd_cmd(qrd: &Path, server: &Server, home: &Path) -> Command {
    let mut cmd = qrd_pgbin::scrubbed_command(qrd);
    cmd.envs(server.client_env()).env("HOME", home).env("QRD_REPLICATION_PASSWORD", PW);
    cmd
}

fn settle(server: &Server) {
    must(server.psql("postgres").args(["-q", "-c", "CHECKPOINT"]));
    must(&mut Command::new("sync"));
    std::thread::sleep(Duration::from_secs(2));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn qsr_mib(server: &Server) -> f64 {
    let out = server.psql("postgres").args(["-A", "-t", "-c", "SELECT pg_database_size('QSR')"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse::<f64>().unwrap() / 1048576.0
}

fn order(round: u32) -> [bool; 2] {
    if round.is_multiple_of(2) { [false, true] } else { [true, false] }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn must(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

fn row(major: u32, mib: f64, what: &str, q: Duration, b: Duration, baseline: &str) {
    println!(
        "| {major} | {mib:.0} MiB | {what} | {:.2} | {:.2} ({baseline}) | {:.2} |",
        q.as_secs_f64(),
        b.as_secs_f64(),
        q.as_secs_f64() / b.as_secs_f64()
    );
}
