//! Connection conventions and failures: libpq-style options and password sources, and clear errors
//! (host, port, user, the server's message, a hint, exit 3) for wrong passwords, dead or silent servers.

use std::net::TcpListener;

use crate::common::*;

/// Strips the password from the server's client env, to test the other password sources.
fn qrd_without_password(server: &Server, scratch: &Scratch) -> std::process::Command {
    let mut cmd = qrd(server, scratch);
    cmd.env_remove("PGPASSWORD");
    cmd
}

fn password_sources_work(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();

    // --password-file
    let f = scratch.secret_file("pw", &format!("{}\n", server.password()));
    run_expect(qrd_without_password(&server, &scratch).args(["check", "--password-file"]).arg(&f), 1);

    // PGPASSFILE with a matching entry (host:port:db:user:password)
    let line = format!("{}:{}:*:{}:{}\n", server.host(), server.port(), server.superuser(), server.password());
    let passfile = scratch.secret_file("pgpass", &line);
    run_expect(qrd_without_password(&server, &scratch).arg("check").env("PGPASSFILE", &passfile), 1);

    // ~/.pgpass (HOME is the scratch dir); an empty PGPASSWORD counts as unset, as in libpq.
    scratch.secret_file(".pgpass", &line);
    run_expect(qrd_without_password(&server, &scratch).arg("check"), 1);
    run_expect(qrd_without_password(&server, &scratch).arg("check").env("PGPASSWORD", ""), 1);

    // An unusable password file is an input error (exit 2), not a connection failure.
    let out =
        run_expect(qrd_without_password(&server, &scratch).args(["check", "--password-file", "/nonexistent/pw"]), 2);
    assert!(stderr(&out).contains("/nonexistent/pw"), "{}", stderr(&out));
}
every_run!(password_sources_work);

/// -h with a unix-socket directory and -p/-U/-d flags instead of the environment.
fn flags_and_unix_sockets_work(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    let mut cmd = qrd_bare(&scratch);
    cmd.arg("check").arg("-h").arg(server.socket_dir()).args([
        "-p",
        &server.port().to_string(),
        "-U",
        server.superuser(),
        "-d",
        "template1",
        "--json",
    ]);
    let out = run_expect(&mut cmd, 1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["server"]["address"], format!("socket {}/.s.PGSQL.{}", server.socket_dir().display(), server.port()));
}
every_run!(flags_and_unix_sockets_work);

#[test]
fn wrong_password_is_a_clear_error() {
    let server = Server::start(16);
    let scratch = Scratch::new();
    let out = run_expect(qrd(&server, &scratch).arg("check").env("PGPASSWORD", "wrong"), 3);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("failed to connect to {}:{} as user \"postgres\"", server.host(), server.port())),
        "{err}"
    );
    assert!(err.contains("FATAL: password authentication failed for user \"postgres\""), "{err}");
    assert!(err.contains("hint: check the user name and password"), "{err}");
    assert!(!err.contains("wrong"), "the password appears in the error: {err}");
    // Nothing was sent as a query, and the server logged the failed attempt.
    assert!(server.log().contains("password authentication failed"));
}

#[test]
fn no_password_and_no_terminal_is_a_clear_error() {
    let server = Server::start(16);
    let scratch = Scratch::new();
    let mut cmd = qrd(&server, &scratch);
    cmd.env_remove("PGPASSWORD").arg("check").stdin(std::process::Stdio::null());
    let out = run_expect(&mut cmd, 3);
    let err = stderr(&out);
    assert!(err.contains("the server asks for a password and none was given"), "{err}");
    assert!(err.contains("--password-file"), "{err}");
}

#[test]
fn server_down_is_a_clear_error() {
    let mut server = Server::start(16);
    let scratch = Scratch::new();
    server.stop();
    let out = run_expect(qrd(&server, &scratch).arg("check"), 3);
    let err = stderr(&out);
    assert!(err.contains(&format!("{}:{}", server.host(), server.port())), "{err}");
    assert!(err.contains("Connection refused"), "{err}");
    assert!(err.contains("hint: is PostgreSQL running and listening on"), "{err}");
}

/// A peer that accepts TCP and never answers: qrd gives up after --connect-timeout with a message
/// saying so (no timing is asserted; the test would hang if the timeout did not work).
#[test]
fn silent_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let scratch = Scratch::new();
    let mut cmd = qrd_bare(&scratch);
    cmd.args(["check", "-h", "127.0.0.1", "-p", &port.to_string(), "--connect-timeout", "1"]);
    let out = run_expect(&mut cmd, 3);
    let err = stderr(&out);
    assert!(err.contains(&format!("failed to connect to 127.0.0.1:{port}")), "{err}");
    assert!(err.contains("no complete answer within 1 s"), "{err}");
    assert!(err.contains("raise --connect-timeout"), "{err}");
    drop(listener);
}

/// sslmode=require against a server without TLS fails (no silent fallback to plain text).
#[test]
fn sslmode_require_without_server_tls_fails() {
    let server = Server::start(16);
    let scratch = Scratch::new();
    let out = run_expect(qrd(&server, &scratch).args(["check", "--sslmode", "require"]), 3);
    let err = stderr(&out);
    assert!(err.contains("TLS") || err.contains("SSL"), "{err}");
    assert!(err.contains("hint: check --sslmode"), "{err}");
}

/// A user who is neither a superuser nor may create roles cannot provision; nothing is created. (A managed
/// server's admin, CREATEROLE CREATEDB, can: see managed.rs.)
#[test]
fn non_superuser_cannot_provision() {
    let server = Server::start(16);
    let scratch = Scratch::new();
    block_on(async {
        server
            .connect("postgres")
            .await
            .batch_execute("CREATE ROLE dba LOGIN CREATEDB PASSWORD 'Dba-pw'")
            .await
            .unwrap();
    });
    let pw = scratch.secret_file("pw", "Repo-pw");
    let out = run_expect(
        qrd(&server, &scratch)
            .env("PGUSER", "dba")
            .env("PGPASSWORD", "Dba-pw")
            .args(["provision", "--repo-password-file"])
            .arg(&pw),
        4,
    );
    assert!(
        stderr(&out).contains(r#"connected as "dba", which is neither a superuser nor has CREATEROLE"#),
        "{}",
        stderr(&out)
    );
    assert!(block_on(catalog_state(&server, ROLE)).roles.is_empty());
}

/// A PostgreSQL 17 server (outside 12–16): provision refuses before any change, check fails
/// server.version and, since no 17 client tools exist here, names both versions for pg_dump.
#[test]
fn unsupported_version_is_refused() {
    let server = Server::start(17);
    let scratch = Scratch::new();
    let pw = scratch.secret_file("pw", "Repo-pw");
    let out = run_expect(qrd(&server, &scratch).args(["provision", "--repo-password-file"]).arg(&pw), 4);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("PostgreSQL {}, which qrd does not support (supported: 12–16)", server.version())),
        "{err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");
    let state = block_on(catalog_state(&server, ROLE));
    assert!(state.roles.is_empty() && state.databases.is_empty());

    let old = qrd_testcontainers::installation(15).unwrap().client_bin;
    let out = run_expect(qrd(&server, &scratch).args(["check", "--pg-bin-dir"]).arg(&old), 1);
    let text = stdout(&out);
    let version_line = text.lines().find(|l| l.contains("server.version")).unwrap();
    assert!(version_line.starts_with("fail"), "{text}");
    assert!(version_line.contains(&format!("PostgreSQL {} is not supported", server.version())), "{text}");
    assert!(
        text.contains(&format!("fitting PostgreSQL {}", server.version())) && text.contains("pg_dump 15."),
        "{text}"
    );
}

/// A PostgreSQL tool run as a child reaches the same server with the password from a private 0600 password
/// file (never argv, never PGPASSWORD), over TCP with SCRAM; a wrong password is the server's refusal.
fn child_tools_connect_with_a_private_passfile(major: u32) {
    use qrd_pg::connect::{ConnectOpts, Connector, SslMode};
    let server = Server::start(major);
    let scratch = Scratch::new();
    let psql = server.installation().client_bin.join("psql");
    let run_psql = |pw: &str| {
        let opts = ConnectOpts {
            host: Some(server.host().to_string()),
            port: Some(server.port()),
            user: Some(server.superuser().to_owned()),
            password_file: Some(scratch.secret_file("pw", pw)),
            sslmode: SslMode::Disable,
            prompt: false,
            ..Default::default()
        };
        let child = Connector::new(&opts).unwrap().child("template1").unwrap();
        let passfile = child.vars().iter().find(|(k, _)| *k == "PGPASSFILE").map(|(_, v)| v.clone()).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&passfile).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600, "the child's password file must be private");
        assert!(child.vars().iter().all(|(k, v)| *k != "PGPASSWORD" && !v.contains(pw)), "{:?}", child.vars());
        let mut cmd = qrd_pgbin::scrubbed_command(&psql);
        child.apply(&mut cmd);
        cmd.args(["-X", "-A", "-t", "-w", "-c", "SELECT current_user || '@' || current_database()"]);
        let out = cmd.output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).trim().to_owned(), stderr(&out))
    };
    let (ok, stdout, err) = run_psql(server.password());
    assert!(ok, "psql as a child failed: {err}");
    assert_eq!(stdout, format!("{}@template1", server.superuser()));
    let (ok, _, err) = run_psql("not-the-password");
    assert!(!ok && err.contains("password authentication failed"), "{err}");
}
every_run!(child_tools_connect_with_a_private_passfile);
