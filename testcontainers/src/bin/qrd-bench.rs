//! `cargo make bench`: qrd against the guide's manual procedure on the same machine, in one process, so
//! the ratios hold whatever the machine's speed. Each round uses fresh throwaway servers.
//!
//! Measured per major (default: 16 and 14):
//! - provisioning a fresh server: `qrd provision` vs the guide's PostgreSQL 15/16 script run with psql
//!   (`tests/fixtures/guide-pg15-16.sql`); same end state (the integration tests prove it);
//! - a re-run on a provisioned server: `qrd provision` (checks everything, changes nothing) vs the guide's
//!   script again (which fails at its first CREATE DATABASE: the guide has no re-run);
//! - `qrd check` on a provisioned server.
//!
//! Both tools connect through the server's unix socket with trust authentication, so the ratio is the
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

    println!("| major | operation | qrd (median ms) | guide via psql (median ms) | ratio qrd/guide |");
    println!("|---|---|---|---|---|");
    for major in majors {
        let mut fresh = (Vec::new(), Vec::new());
        let mut rerun = (Vec::new(), Vec::new());
        let mut check = Vec::new();
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
