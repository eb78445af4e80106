//! `cargo make bench` (second part): `qrd backup` / `qrd restore` against the Qlik guide's procedure on a
//! QSR-like site scaled to a size (`--size MIB`, default 1024), on the same machine and in one process, so
//! the ratios hold whatever the machine's speed.
//!
//! - backup: the guide's four sequential `pg_dump -F t` (one per Qlik database) vs `qrd backup` (directory
//!   archives dumped with `--jobs`, one zstd bundle); sizes: the four tar files vs the bundle;
//! - restore: the guide's four sequential `pg_restore` into databases made with `createdb -T template0`
//!   (its recipe) on a fresh server vs `qrd restore` (verify, roles, databases, parallel pg_restore, row
//!   counts proven) on another fresh server;
//! - qrd's own peak RSS during the backup (VmHWM of the qrd process, sampled; pg_dump's is its own), at
//!   each `--rss-sizes` size (default 256, 512 and 1024 MiB).
//!
//! - on PostgreSQL 15 (Debian's pgBackRest 2.45 supports 12–15) also pgBackRest: a full backup (zstd level
//!   1 like qrd's bundle, `process-max` = cores, `start-fast`, WAL archived by `archive-push` as it must be),
//!   the repository's size, and a restore into an empty data directory until the server accepts
//!   connections (`pgbackrest restore`, then recovery from the archive).
//!
//! Every comparison runs `--rounds` times (default 3), alternating which side goes first, each step after
//! a checkpoint and `sync`; the tables give medians.
//!
//! Both sides use the same client tools of the server's major, through the socket with trust
//! authentication. Prints Markdown tables for BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use qrd_testcontainers::Server;
use qrd_testcontainers::fixtures::{Scale, load_site};

const QLIK: [&str; 4] = ["QSR", "SenseServices", "QSMQ", "Licenses"];

fn main() {
    let mut size = 1024;
    let mut majors = vec![16, 15];
    let mut rss_sizes = vec![256, 512, 1024];
    let mut hold = false;
    let mut rounds = 3;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = || args.next().and_then(|v| v.parse::<u32>().ok()).expect("a number");
        match a.as_str() {
            "--size" => size = num(),
            "--rounds" => rounds = num().max(1),
            // For profiling by hand: load the site, print its connection settings, wait for stdin to close.
            "--hold" => hold = true,
            "--major" => majors = vec![num()],
            "--rss-sizes" => {
                let list = args.next().expect("--rss-sizes 256,512");
                rss_sizes = list.split(',').map(|v| v.parse().expect("MiB")).collect();
            }
            other => {
                panic!(
                    "unknown argument {other:?}; usage: qrd-bench-backup [--size MIB] [--major N] [--rss-sizes A,B] [--rounds N] [--hold]"
                )
            }
        }
    }
    let qrd = std::env::current_exe().unwrap().with_file_name("qrd");
    assert!(qrd.exists(), "{} is missing: run `cargo make bench`", qrd.display());
    let scratch = tempfile::tempdir_in("/tmp").unwrap();
    let pw = scratch.path().join("pw");
    std::fs::write(&pw, "Bench-pw-1").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o755)).unwrap();

    if hold {
        let server = site(majors[0], size, &qrd, &pw, scratch.path(), false);
        println!(
            "export PGHOST={} PGPORT={} PGUSER={} BIN={}",
            server.socket_dir().display(),
            server.port(),
            server.superuser(),
            server.installation().client_bin.display()
        );
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
        return;
    }
    println!("| major | QSR size | operation | qrd | guide | ratio qrd/guide |");
    println!("|---|---|---|---|---|---|");
    let mut peers = Vec::new();
    for major in &majors {
        let pgbackrest =
            *major <= 15 && Command::new("pgbackrest").arg("version").output().is_ok_and(|o| o.status.success());
        let source = site(*major, size, &qrd, &pw, scratch.path(), pgbackrest);
        let bin = source.installation().client_bin.clone();
        let qsr_mib = qsr_mib(&source);
        let home = scratch.path();
        let guide_dir = home.join(format!("guide-{major}"));
        let qrd_dir = home.join(format!("qrd-{major}"));
        let bundle = qrd_dir.join("bench.tar.zst");

        // Backups, in rounds that alternate which side goes first; medians.
        let (mut gb, mut qb, mut rss_max) = (Vec::new(), Vec::new(), 0);
        let (mut guide_bytes, mut bundle_bytes) = (0, 0);
        for round in 0..rounds {
            for side in order(round) {
                let _ = std::fs::remove_dir_all(if side { &qrd_dir } else { &guide_dir });
                std::fs::create_dir(if side { &qrd_dir } else { &guide_dir }).unwrap();
                settle(&source);
                if side {
                    let (t, rss) = timed_with_rss(
                        qrd_cmd(&qrd, &source, home)
                            .args(["backup", "--name", "bench", "--out"])
                            .arg(&qrd_dir)
                            .arg("--pg-bin-dir")
                            .arg(&bin),
                    );
                    qb.push(t);
                    rss_max = rss_max.max(rss);
                    bundle_bytes = file_len(&bundle);
                } else {
                    let t = Instant::now();
                    for db in QLIK {
                        let mut cmd = tool(&source, &bin.join("pg_dump"));
                        cmd.args(["-F", "t", "-f"]).arg(guide_dir.join(format!("{db}_backup.tar"))).arg(db);
                        must(&mut cmd);
                    }
                    gb.push(t.elapsed());
                    guide_bytes = QLIK.iter().map(|db| file_len(&guide_dir.join(format!("{db}_backup.tar")))).sum();
                }
            }
        }
        let (qrd_backup, guide_backup) = (median(&mut qb), median(&mut gb));
        row(*major, qsr_mib, "backup (s)", secs(qrd_backup), secs(guide_backup));
        row(*major, qsr_mib, "backup size (MiB)", mib(bundle_bytes), mib(guide_bytes));

        // Restores, each onto a fresh server, in alternating rounds; medians.
        let (mut gr, mut qr) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            for side in order(round) {
                let target = Server::start(*major);
                settle(&target);
                let t = Instant::now();
                if side {
                    must(qrd_cmd(&qrd, &target, home).args(["restore"]).arg(&bundle).arg("--pg-bin-dir").arg(&bin));
                    qr.push(t.elapsed());
                } else {
                    // The guide's restore needs the role first (it forgets it; its install made it).
                    let mut psql = target.psql("postgres");
                    psql.args(["-q", "-c", "CREATE ROLE qliksenserepository LOGIN NOINHERIT"]);
                    must(&mut psql);
                    for db in QLIK {
                        let mut createdb = tool(&target, &bin.join("createdb"));
                        createdb.args(["-T", "template0", db]);
                        must(&mut createdb);
                        let mut cmd = tool(&target, &bin.join("pg_restore"));
                        cmd.args(["-d", db]).arg(guide_dir.join(format!("{db}_backup.tar")));
                        must(&mut cmd);
                    }
                    gr.push(t.elapsed());
                }
            }
        }
        let (qrd_restore, guide_restore) = (median(&mut qr), median(&mut gr));
        row(*major, qsr_mib, "restore (s)", secs(qrd_restore), secs(guide_restore));
        println!(
            "| {major} | {qsr_mib:.0} MiB | qrd's peak RSS during the backup (highest of the rounds) | {:.1} MiB | – | – |",
            rss_max as f64 / 1024.0
        );
        let _ = std::fs::remove_dir_all(&guide_dir);
        if pgbackrest {
            let (mut pb, mut pr, mut bytes) = (Vec::new(), Vec::new(), 0);
            for _ in 0..rounds {
                let (backup, size, restore) = pgbackrest_run(&source, home);
                pb.push(backup);
                pr.push(restore);
                bytes = size;
            }
            let (backup, restore) = (median(&mut pb), median(&mut pr));
            peers.push(format!(
                "| {major} | {qsr_mib:.0} MiB | backup (s) | {:.1} | {:.1} | {:.2} |",
                secs(qrd_backup),
                secs(backup),
                secs(qrd_backup) / secs(backup)
            ));
            peers.push(format!(
                "| {major} | {qsr_mib:.0} MiB | size (MiB) | {:.1} | {:.1} | {:.2} |",
                mib(bundle_bytes),
                mib(bytes),
                bundle_bytes as f64 / bytes as f64
            ));
            peers.push(format!(
                "| {major} | {qsr_mib:.0} MiB | restore (s) | {:.1} | {:.1} | {:.2} |",
                secs(qrd_restore),
                secs(restore),
                secs(qrd_restore) / secs(restore)
            ));
        }
        let _ = std::fs::remove_dir_all(&qrd_dir);
    }
    if !peers.is_empty() {
        println!("\n| major | QSR size | operation | qrd | pgBackRest | ratio qrd/pgBackRest |");
        println!("|---|---|---|---|---|---|");
        for p in &peers {
            println!("{p}");
        }
    }

    // qrd's peak RSS as the data grows (one major).
    println!("\n| QSR size | qrd's peak RSS during `qrd backup` |");
    println!("|---|---|");
    for mib_target in rss_sizes {
        let source = site(majors[0], mib_target, &qrd, &pw, scratch.path(), false);
        let bin = source.installation().client_bin.clone();
        let dir = scratch.path().join(format!("rss-{mib_target}"));
        std::fs::create_dir(&dir).unwrap();
        let (_, rss) = timed_with_rss(
            qrd_cmd(&qrd, &source, scratch.path()).args(["backup", "--out"]).arg(&dir).arg("--pg-bin-dir").arg(&bin),
        );
        println!("| {:.0} MiB | {:.1} MiB |", qsr_mib(&source), rss as f64 / 1024.0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A provisioned server with the QSR-like site grown to `size` MiB; with `archive`, WAL archiving on (its
/// command set later, by [`pgbackrest_run`]).
fn site(major: u32, size: u32, qrd: &Path, pw: &Path, home: &Path, archive: bool) -> Server {
    let mut builder = Server::builder(major);
    if archive {
        builder = builder.setting("archive_mode", "on").setting("archive_command", "/bin/true");
    }
    let server = builder.start().unwrap();
    must(qrd_cmd(qrd, &server, home).args(["provision", "--repo-password-file"]).arg(pw));
    let t = Instant::now();
    load_site(&server, Scale::QsrMib(size)).unwrap();
    eprintln!("PostgreSQL {major}: QSR grown to {size} MiB in {:.1} s", t.elapsed().as_secs_f64());
    server
}

/// pgBackRest on `server`: stanza, full backup (timed), repository size, restore into an empty data
/// directory and recovery until a server on it accepts connections (timed). Runs as the server's user.
fn pgbackrest_run(server: &Server, scratch: &Path) -> (Duration, u64, Duration) {
    let base = scratch.join("pgbackrest");
    let (repo, restored) = (base.join("repo"), base.join("restored"));
    for d in [&base, &repo, &base.join("log"), &base.join("lock"), &base.join("sock"), &base.join("spool")] {
        std::fs::create_dir_all(d).unwrap();
    }
    let conf = base.join("pgbackrest.conf");
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    std::fs::write(
        &conf,
        format!(
            "[global]\nrepo1-path={}\nrepo1-retention-full=1\nprocess-max={cores}\ncompress-type=zst\ncompress-level=1\n\
             start-fast=y\nlog-path={}\nlock-path={}\nspool-path={}\nlog-level-console=warn\n\n[bench]\npg1-path={}\npg1-port={}\n\
             pg1-socket-path={}\npg1-user={}\n",
            repo.display(),
            base.join("log").display(),
            base.join("lock").display(),
            base.join("spool").display(),
            server.data_dir().display(),
            server.port(),
            server.socket_dir().display(),
            server.superuser()
        ),
    )
    .unwrap();
    must(Command::new("chown").args(["-R", qrd_testcontainers::SERVER_USER]).arg(&base));
    let pgbr = |args: &[&str]| {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", qrd_testcontainers::SERVER_USER, "--", "pgbackrest"])
            .arg(format!("--config={}", conf.display()));
        cmd.args(["--stanza=bench"]).args(args);
        cmd
    };
    let mut psql = server.psql("postgres");
    psql.args(["-q", "-c"]).arg(format!(
        "ALTER SYSTEM SET archive_command = 'pgbackrest --config={} --stanza=bench archive-push %p'",
        conf.display()
    ));
    must(&mut psql);
    must(server.psql("postgres").args(["-q", "-c", "SELECT pg_reload_conf()"]));
    std::thread::sleep(Duration::from_millis(500));
    must(&mut pgbr(&["stanza-create"]));
    settle(server);
    let t = Instant::now();
    must(&mut pgbr(&["--type=full", "backup"]));
    let backup = t.elapsed();
    let bytes = dir_bytes(&repo);

    // Restore into an empty directory, then recovery until the server answers.
    std::fs::create_dir(&restored).unwrap();
    must(Command::new("chown").arg(qrd_testcontainers::SERVER_USER).arg(&restored));
    must(Command::new("chmod").arg("700").arg(&restored));
    let port = server.port() + 1;
    settle(server);
    let t = Instant::now();
    must(pgbr(&["restore", "--archive-mode=off"]).arg(format!("--pg1-path={}", restored.display())));
    let pg_ctl = server.installation().server_bin.join("pg_ctl");
    let mut start = Command::new("runuser");
    start
        .args(["-u", qrd_testcontainers::SERVER_USER, "--"])
        .arg(&pg_ctl)
        .arg("-D")
        .arg(&restored)
        .args(["-w", "-t", "600", "-l"]);
    start
        .arg(base.join("restored.log"))
        .arg("-o")
        .arg(format!("-p {port} -k {} -c listen_addresses=''", base.join("sock").display()));
    start.arg("start");
    must(&mut start);
    let restore = t.elapsed();
    let mut stop = Command::new("runuser");
    stop.args(["-u", qrd_testcontainers::SERVER_USER, "--"])
        .arg(&pg_ctl)
        .arg("-D")
        .arg(&restored)
        .args(["-m", "fast", "stop"]);
    must(&mut stop);
    let _ = std::fs::remove_dir_all(&base);
    (backup, bytes, restore)
}

fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let m = e.metadata().unwrap();
        total += if m.is_dir() { dir_bytes(&e.path()) } else { m.len() };
    }
    total
}

/// Before a timed step: the previous step's dirty pages written out (a checkpoint, then `sync`) and a
/// moment's rest, so no step pays for the one before it.
fn settle(server: &Server) {
    must(server.psql("postgres").args(["-q", "-c", "CHECKPOINT"]));
    must(&mut Command::new("sync"));
    std::thread::sleep(Duration::from_secs(3));
}

fn qsr_mib(server: &Server) -> f64 {
    let out = server.psql("postgres").args(["-A", "-t", "-c", "SELECT pg_database_size('QSR')"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse::<f64>().unwrap() / 1048576.0
}

/// A client tool through the server's socket as its superuser (trust), environment scrubbed.
fn tool(server: &Server, program: &Path) -> Command {
    let mut cmd = qrd_pgbin::scrubbed_command(program);
    cmd.env("PGHOST", server.socket_dir()).env("PGPORT", server.port().to_string()).env("PGUSER", server.superuser());
    cmd
}

fn qrd_cmd(qrd: &Path, server: &Server, home: &Path) -> Command {
    let mut cmd = qrd_pgbin::scrubbed_command(qrd);
    cmd.envs(server.client_env()).env("PGHOST", server.socket_dir()).env("HOME", home);
    cmd
}

fn must(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Runs `cmd`, sampling its peak resident set (VmHWM) until it exits; returns the time and the peak in KiB.
fn timed_with_rss(cmd: &mut Command) -> (Duration, u64) {
    let t = Instant::now();
    let mut child = cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let status_path = PathBuf::from(format!("/proc/{}/status", child.id()));
    let mut peak = 0;
    loop {
        if let Ok(text) = std::fs::read_to_string(&status_path)
            && let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{cmd:?} failed");
            return (t.elapsed(), peak);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Which side goes first in a round: the guide (false) in even rounds, qrd (true) in odd ones.
fn order(round: u32) -> [bool; 2] {
    if round.is_multiple_of(2) { [false, true] } else { [true, false] }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn mib(b: u64) -> f64 {
    b as f64 / 1048576.0
}

fn row(major: u32, qsr: f64, what: &str, q: f64, g: f64) {
    println!("| {major} | {qsr:.0} MiB | {what} | {q:.1} | {g:.1} | {:.2} |", q / g);
}
