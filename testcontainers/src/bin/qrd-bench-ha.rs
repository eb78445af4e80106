//! `cargo make bench` (fourth part): what a failover or switchover costs the Qlik repository's clients on a
//! Patroni cluster made by `qrd ha init` (PostgreSQL 15, Debian's Patroni 3.0.2, etcd 3.4, HAProxy 2.6,
//! one etcd and three members on loopback, ttl 20 / loop_wait 5 / retry_timeout 5), measured as the
//! longest time without an acknowledged write by a client that opens a new TLS connection through HAProxy
//! and inserts one row every ~100 ms. In `--rounds` (default 3), medians:
//!
//! - `qrd ha switchover` and a raw `patronictl switchover --force`, alternating;
//! - a clean stop of the leader (SIGTERM to its Patroni, as `systemctl stop` does);
//! - a crash of the leader's machine (Patroni and PostgreSQL killed at once);
//! - beside them, the manual way of the replication commands: a primary and a standby without Patroni,
//!   the primary killed and `qrd failover` run at that moment (a DBA's time to notice not counted), the
//!   client going to whichever server takes writes (`target_session_attrs=read-write`).
//!
//! Prints a Markdown table for BENCHMARKS.md.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use qrd_ha::api::Api;
use qrd_testcontainers::{HaLab, Server, Writer, WriterTarget, Written, installation};

const SU_PW: &str = "Bench-ha-su-1";
const REPO_PW: &str = "Bench-ha-repo-1";
const REPL_PW: &str = "Bench-ha-repl-1";

fn main() {
    let mut rounds = 3;
    let mut only: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rounds" => rounds = args.next().and_then(|v| v.parse::<usize>().ok()).expect("a number").max(1),
            "--only" => only = args.next(),
            other => panic!(
                "unknown argument {other:?}; usage: qrd-bench-ha [--rounds N] [--only switchover|stop|crash|manual]"
            ),
        }
    }
    let wanted = |what: &str| only.as_deref().is_none_or(|o| o == what);
    let qrd = std::env::current_exe().unwrap().with_file_name("qrd");
    assert!(qrd.exists(), "{} is missing: run `cargo make bench`", qrd.display());
    let home = tempfile::tempdir_in("/tmp").unwrap();
    let psql = installation(15).unwrap().client_bin.join("psql");

    let mut lab = HaLab::new(15, 3).unwrap();
    let mut init = qrd_pgbin::scrubbed_command(&qrd);
    init.args(lab.init_args())
        .env("HOME", home.path())
        .env("QRD_REPO_PASSWORD", REPO_PW)
        .env("QRD_PASSWORD_POSTGRES", SU_PW);
    must(&mut init);
    lab.start_all().unwrap();
    lab.start_haproxy().unwrap();
    let api = lab.api();
    lab.wait_streaming(Duration::from_secs(180)).unwrap();
    let writer_env = lab.endpoint_env("postgres", SU_PW);
    let target = || WriterTarget { psql: psql.clone(), env: writer_env.clone(), table: "bench_writes".into() };
    let mut create = Command::new(&psql);
    create.args(["-X", "-q", "-c", "CREATE TABLE bench_writes (id bigint PRIMARY KEY)"]).env_clear().envs(target().env);
    must(&mut create);
    let api_env =
        qrd_ha::envfile::EnvFile::parse(&std::fs::read_to_string(lab.prefix().join("pg1/patroni.env")).unwrap());

    // One measured event: the writer runs a second before and until the cluster has a streaming leader and
    // replicas again (and a second more).
    let measure = |lab: &mut HaLab, event: &mut dyn FnMut(&mut HaLab) -> Duration| -> (Written, Duration) {
        lab.wait_streaming(Duration::from_secs(180)).unwrap();
        let w = Writer::start(target());
        std::thread::sleep(Duration::from_secs(1));
        let took = event(lab);
        wait_writable_through_haproxy(lab, &psql);
        std::thread::sleep(Duration::from_secs(1));
        (w.finish(), took)
    };
    let leader = |lab: &HaLab| -> (usize, String) {
        let c = api.cluster().unwrap();
        let name = c.leader().unwrap().name.clone();
        (lab.member_index(&name), name)
    };
    let candidate = |lab: &HaLab| -> String {
        let c = api.cluster().unwrap();
        let _ = lab;
        qrd_ha::switchover::pick_candidate(&c).unwrap()
    };

    let mut results: Vec<(&str, Vec<(Written, Duration)>)> = Vec::new();
    let (mut qrd_runs, mut ctl_runs) = (Vec::new(), Vec::new());
    for round in (0..rounds).filter(|_| wanted("switchover")) {
        for qrd_first in [round % 2 == 0, round % 2 != 0] {
            if qrd_first {
                qrd_runs.push(measure(&mut lab, &mut |lab: &mut HaLab| {
                    let mut s = qrd_pgbin::scrubbed_command(&qrd);
                    s.args(["ha", "switchover", "--json", "--config"]).arg(lab.config(0)).env("HOME", home.path());
                    let t = Instant::now();
                    let out = s.output().unwrap();
                    assert!(out.status.success(), "qrd ha switchover: {}", String::from_utf8_lossy(&out.stderr));
                    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                    let _ = t;
                    Duration::from_secs_f64(v["seconds_to_writable"].as_f64().unwrap())
                }));
            } else {
                ctl_runs.push(measure(&mut lab, &mut |lab: &mut HaLab| {
                    let (_, from) = leader(lab);
                    let to = candidate(lab);
                    let mut c = Command::new("patronictl");
                    c.arg("-c").arg(lab.config(0)).args([
                        "switchover",
                        "--leader",
                        &from,
                        "--candidate",
                        &to,
                        "--force",
                    ]);
                    c.envs(
                        api_env.vars().iter().filter(|(k, _)| k.starts_with("PATRONI_RESTAPI")).map(|(k, v)| (k, v)),
                    );
                    let t = Instant::now();
                    must(&mut c);
                    t.elapsed()
                }));
            }
        }
    }
    results.push(("`qrd ha switchover`", qrd_runs));
    results.push(("`patronictl switchover --force`", ctl_runs));

    let mut stops = Vec::new();
    for _ in (0..rounds).filter(|_| wanted("stop")) {
        stops.push(measure(&mut lab, &mut |lab: &mut HaLab| {
            let (i, _) = leader(lab);
            let t = Instant::now();
            lab.stop_member(i);
            let took = t.elapsed();
            lab.start_member(i).unwrap();
            took
        }));
    }
    results.push(("clean stop of the leader (SIGTERM to Patroni)", stops));

    let mut crashes = Vec::new();
    for _ in (0..rounds).filter(|_| wanted("crash")) {
        let mut crashed = None;
        crashes.push(measure(&mut lab, &mut |lab: &mut HaLab| {
            let (i, _) = leader(lab);
            let t = Instant::now();
            lab.crash_member(i);
            crashed = Some(i);
            // Until another member leads.
            while leader_other_than(&api, lab, i).is_none() {
                std::thread::sleep(Duration::from_millis(50));
            }
            t.elapsed()
        }));
        lab.start_member(crashed.unwrap()).unwrap();
    }
    results.push(("crash of the leader's machine (kill -9 Patroni and PostgreSQL)", crashes));
    drop(lab);

    let mut manual = Vec::new();
    for _ in (0..rounds).filter(|_| wanted("manual")) {
        manual.push(manual_failover(&qrd, home.path(), &psql));
    }
    results.push(("manual: primary killed, `qrd failover` run at once (no Patroni)", manual));

    println!(
        "| event | longest write gap a client saw (s, median) | all rounds (s) | the command returned / leader changed after (s, median) | failed attempts (all rounds) |"
    );
    println!("|---|---|---|---|---|");
    let mut gaps = Vec::new();
    for (what, runs) in &results {
        if runs.is_empty() {
            gaps.push(f64::NAN);
            continue;
        }
        // What the client was told, by kind (to stderr: the table stays clean).
        let mut kinds: std::collections::BTreeMap<String, usize> = Default::default();
        for (w, _) in runs {
            for f in &w.failed {
                *kinds.entry(f.lines().next().unwrap_or("").chars().take(110).collect()).or_default() += 1;
            }
        }
        eprintln!("{what}: {kinds:#?}");
        let mut g: Vec<f64> = runs.iter().map(|(w, _)| w.longest_gap.as_secs_f64()).collect();
        let all = g.iter().map(|x| format!("{x:.2}")).collect::<Vec<_>>().join(", ");
        let mut t: Vec<f64> = runs.iter().map(|(_, d)| d.as_secs_f64()).collect();
        let failed: usize = runs.iter().map(|(w, _)| w.failed.len()).sum();
        let (gm, tm) = (median(&mut g), median(&mut t));
        gaps.push(gm);
        println!("| {what} | {gm:.2} | {all} | {tm:.2} | {failed} |");
    }
    println!(
        "\nratio of the switchover write gaps, qrd ha switchover / patronictl switchover: {:.2} (target ≤ 1.2)",
        gaps[0] / gaps[1]
    );
}

fn leader_other_than(api: &Api, lab: &HaLab, i: usize) -> Option<usize> {
    let c = api.cluster().ok()?;
    let name = &c.leader()?.name;
    let j = lab.member_index(name);
    (j != i).then_some(j)
}

fn wait_writable_through_haproxy(lab: &HaLab, psql: &Path) {
    lab.wait_for("writes through HAProxy", Duration::from_secs(120), || {
        let out = Command::new(psql)
            .args([
                "-X",
                "-At",
                "-h",
                &lab.endpoint_host().to_string(),
                "-p",
                "4432",
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .args(["-c", "SELECT pg_is_in_recovery()"])
            .env_clear()
            .env("PGPASSWORD", SU_PW)
            .env("PGSSLMODE", "require")
            .env("PGCONNECT_TIMEOUT", "2")
            .output()
            .ok()?;
        (String::from_utf8_lossy(&out.stdout).trim() == "f").then_some(())
    })
    .unwrap();
}

/// A primary and a streaming standby made by qrd's replication commands; a writer on both
/// (read-write); the primary killed and `qrd failover` run at once.
fn manual_failover(qrd: &Path, home: &Path, psql: &Path) -> (Written, Duration) {
    let primary = Server::start(15);
    let bin = primary.installation().server_bin.clone();
    let dir = tempfile::Builder::new().prefix("qrd-bench-ha-standby-").tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    must(Command::new("chown").arg(qrd_testcontainers::SERVER_USER).arg(dir.path()));
    let data = dir.path().join("data");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let q = || {
        let mut c = qrd_pgbin::scrubbed_command(qrd);
        c.envs(primary.client_env()).env("HOME", home).env("QRD_REPLICATION_PASSWORD", REPL_PW);
        c
    };
    must(
        q().args(["standby", "prepare-primary", "--standby", "127.0.0.1", "--restart", "--data-dir"])
            .arg(primary.data_dir())
            .arg("--pg-bin-dir")
            .arg(&bin),
    );
    must(
        q().args([
            "standby",
            "clone",
            "--primary-host",
            "127.0.0.1",
            "--primary-port",
            &primary.port().to_string(),
            "--start",
        ])
        .arg("--data-dir")
        .arg(&data)
        .args(["--port", &port.to_string()])
        .arg("--pg-bin-dir")
        .arg(&bin),
    );
    must(primary.psql("postgres").args(["-q", "-c", "CREATE TABLE bench_writes (id bigint PRIMARY KEY)"]));
    std::thread::sleep(Duration::from_secs(1));
    let w = Writer::start(WriterTarget {
        psql: psql.to_owned(),
        env: vec![
            ("PGHOST".into(), "127.0.0.1,127.0.0.1".into()),
            ("PGPORT".into(), format!("{},{port}", primary.port())),
            ("PGTARGETSESSIONATTRS".into(), "read-write".into()),
            ("PGUSER".into(), primary.superuser().into()),
            ("PGDATABASE".into(), "postgres".into()),
            ("PGPASSWORD".into(), primary.password().into()),
            ("PGCONNECT_TIMEOUT".into(), "5".into()),
        ],
        table: "bench_writes".into(),
    });
    std::thread::sleep(Duration::from_secs(1));
    let pid: i32 = std::fs::read_to_string(primary.data_dir().join("postmaster.pid"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let t = Instant::now();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    let mut f = q();
    f.env("PGPORT", port.to_string()).args(["failover", "--old-primary", &format!("127.0.0.1:{}", primary.port())]);
    must(&mut f);
    let took = t.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    let written = w.finish();
    let mut stop = Command::new("runuser");
    stop.args(["-u", qrd_testcontainers::SERVER_USER, "--"])
        .arg(bin.join("pg_ctl"))
        .arg("-D")
        .arg(&data)
        .args(["-m", "immediate", "-w", "stop"])
        .current_dir("/");
    must(&mut stop);
    (written, took)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn must(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}
