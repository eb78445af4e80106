//! `cargo make bench`: qrd against the guide's manual procedure on the same machine, in one process, so
//! the ratios hold whatever the machine's speed. Each round uses fresh throwaway servers.
//!
//! Measured per major (default: 16 and 14):
//! - provisioning a fresh server: `qrd provision` vs the guide's PostgreSQL 15/16 script run with psql
//!   (`tests/fixtures/guide-pg15-16.sql`); same end state (the integration tests prove it);
//! - a re-run on a provisioned server: `qrd provision` (checks everything, changes nothing) vs the guide's
//!   script again (which fails at its first CREATE DATABASE: the guide has no re-run);
//! - `qrd check` on a provisioned server;
//! - `qrd check` over TCP ÷ a bare psql login over TCP (`psql -c 'select 1'`): both to 127.0.0.1 with the
//!   superuser's password from the same 0600 passfile (SCRAM), the server with `ssl = off` as it ships, qrd
//!   with the default `sslmode=prefer` and finding its tools on `PATH` as a DBA's shell would; and the same
//!   with `--sslmode disable`, which shows what TLS set-up still costs (nothing, when the server refuses it).
//!
//! The first three connect through the server's unix socket with trust authentication, so the ratio is the
//! tools' own cost. Prints a Markdown table (median of the rounds) for BENCHMARKS.md.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use qrd_testcontainers::Server;

const GUIDE_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/guide-pg15-16.sql");

fn main() {
    let mut rounds = 7;
    let mut majors = vec![16, 14];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rounds" => rounds = args.next().and_then(|v| v.parse().ok()).expect("--rounds N"),
            "--major" => majors = vec![args.next().and_then(|v| v.parse().ok()).expect("--major N")],
            other => panic!("unknown argument {other:?}; usage: qrd-bench [--rounds N] [--major N]"),
        }
    }
    let qrd = std::env::current_exe().unwrap().with_file_name("qrd");
    assert!(qrd.exists(), "{} is missing: run `cargo make bench`", qrd.display());
    let scratch = tempfile::tempdir().unwrap();
    let pw = scratch.path().join("pw");
    std::fs::write(&pw, "Bench-pw-1").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();

    println!("| major | operation | qrd (median ms) | baseline via psql (median ms) | ratio qrd/baseline |");
    println!("|---|---|---|---|---|");
    for major in majors {
        let mut fresh = (Vec::new(), Vec::new());
        let mut rerun = (Vec::new(), Vec::new());
        let mut check = Vec::new();
        let mut tcp = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            let (a, b) = (Server::start(major), Server::start(major));
            fresh.0.push(time(
                qrd_cmd(&qrd, &a, scratch.path()).args(["provision", "--repo-password-file"]).arg(&pw),
                true,
            ));
            fresh.1.push(time(&mut guide(&b), true));
            rerun.0.push(time(
                qrd_cmd(&qrd, &a, scratch.path()).args(["provision", "--repo-password-file"]).arg(&pw),
                true,
            ));
            rerun.1.push(time(&mut guide(&b), false));
            let bin = a.installation().client_bin.clone();
            check.push(time(qrd_cmd(&qrd, &a, scratch.path()).arg("check").arg("--pg-bin-dir").arg(bin), true));

            // Over TCP, on the provisioned server: psql, qrd, qrd without TLS, one after the other in each round
            // so that the machine's load weighs on all three alike.
            let passfile = superuser_passfile(&a, scratch.path());
            assert_ssl_off(&a);
            tcp.0.push(time(&mut psql_login_tcp(&a, &passfile, scratch.path()), true));
            tcp.1.push(time_check(qrd_tcp(&qrd, &a, &passfile, scratch.path()).arg("check")));
            tcp.2.push(time_check(qrd_tcp(&qrd, &a, &passfile, scratch.path()).args([
                "check",
                "--sslmode",
                "disable",
            ])));
        }
        row(major, "provision a fresh server", &fresh.0, Some(&fresh.1));
        // Not the same work: qrd verifies every object and changes nothing, the guide's script stops at its first
        // CREATE DATABASE. Both times are shown, without a ratio.
        let guide_rerun = median(&rerun.1);
        println!(
            "| {major} | re-run on a provisioned server | {:.1} | {guide_rerun:.1} (fails at once: no re-run) | – |",
            median(&rerun.0)
        );
        row(major, "check a provisioned server", &check, None);
        row(major, "qrd check over TCP ÷ a bare psql login over TCP (target ≤ 5)", &tcp.1, Some(&tcp.0));
        row(major, "the same with `--sslmode disable`", &tcp.2, Some(&tcp.0));
    }
    println!("\n{rounds} rounds per major; each round starts two fresh servers.");
}

/// qrd through the server's unix socket, as the harness's psql connects: the same (trust) authentication
/// for both, so the ratio is the tools' own cost, not SCRAM's.
fn qrd_cmd(qrd: &Path, server: &Server, home: &Path) -> Command {
    let mut cmd = qrd_pgbin::scrubbed_command(qrd);
    cmd.envs(server.client_env()).env("PGHOST", server.socket_dir()).env("HOME", home);
    cmd
}

/// A libpq password file (mode 0600) with the superuser's password for the server's TCP address.
fn superuser_passfile(server: &Server, dir: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(format!("pgpass-{}", server.port()));
    let line = format!("{}:{}:*:{}:{}\n", server.host(), server.port(), server.superuser(), server.password());
    std::fs::write(&path, line).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// The TCP rows compare against a server that refuses TLS; a harness that turned ssl on would silently
/// make them measure something else.
fn assert_ssl_off(server: &Server) {
    let out = server.psql("postgres").args(["-At", "-c", "SHOW ssl"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "off", "the benchmark server has ssl on");
}

/// qrd over TCP with the password from `passfile` (no PGPASSWORD) and the default sslmode.
fn qrd_tcp(qrd: &Path, server: &Server, passfile: &Path, home: &Path) -> Command {
    let mut cmd = qrd_pgbin::scrubbed_command(qrd);
    cmd.env("PGHOST", server.host().to_string())
        .env("PGPORT", server.port().to_string())
        .env("PGUSER", server.superuser())
        .env("PGDATABASE", "postgres")
        .env("PGPASSFILE", passfile)
        .env("HOME", home);
    cmd
}

/// The baseline: a bare psql login over TCP with the same credentials, one trivial query.
fn psql_login_tcp(server: &Server, passfile: &Path, home: &Path) -> Command {
    let psql = server.installation().client_bin.join("psql");
    let mut cmd = qrd_pgbin::scrubbed_command(psql);
    cmd.args(["-X", "-q", "-h", &server.host().to_string(), "-p", &server.port().to_string()])
        .args(["-U", server.superuser(), "-d", "postgres", "-c", "select 1"])
        .env("PGPASSFILE", passfile)
        .env("HOME", home);
    cmd
}

fn guide(server: &Server) -> Command {
    let mut cmd = server.psql("postgres");
    cmd.args(["-q", "-v", "repo_password=Bench-pw-1", "-f", GUIDE_SCRIPT]);
    cmd
}

/// Runs `cmd` with its output discarded and returns the wall time; `must_succeed` checks the exit.
fn time(cmd: &mut Command, must_succeed: bool) -> Duration {
    let start = Instant::now();
    let out = cmd.output().unwrap();
    let elapsed = start.elapsed();
    if must_succeed && !out.status.success() {
        panic!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    elapsed
}

/// `qrd check`: exit 0 (all passed) or 1 (some check failed, e.g. no client tools of the server's major on
/// this machine) both mean it ran every check; anything else (a connection failure) spoils the benchmark.
fn time_check(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let out = cmd.output().unwrap();
    let elapsed = start.elapsed();
    if !matches!(out.status.code(), Some(0 | 1)) {
        panic!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    elapsed
}

fn median(v: &[Duration]) -> f64 {
    let mut ms: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    ms[ms.len() / 2]
}

fn row(major: u32, what: &str, qrd: &[Duration], guide: Option<&Vec<Duration>>) {
    let q = median(qrd);
    match guide {
        Some(g) => {
            let g = median(g);
            println!("| {major} | {what} | {q:.1} | {g:.1} | {:.2} |", q / g);
        }
        None => println!("| {major} | {what} | {q:.1} | – | – |"),
    }
}
