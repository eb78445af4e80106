//! TLS as libpq's sslmodes promise it, against a server with a certificate from a test CA: verify-full
//! checks chain and host name, verify-ca the chain only, require neither; the server confirms the session
//! is encrypted (pg_stat_ssl).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::time::Duration;

use qrd_pg::connect::{ConnectOpts, SslMode};

use crate::common::*;

/// Installs the certificate in the data directory (owned by the server's user, key mode 0600) and turns
/// ssl on with a reload.
fn enable_tls(server: &Server, pki: &PemPki) {
    let data = server.data_dir();
    let meta = std::fs::metadata(data).unwrap();
    for (name, pem) in [("server.crt", &pki.cert_pem), ("server.key", &pki.key_pem)] {
        let p = data.join(name);
        std::fs::write(&p, pem).unwrap();
        std::os::unix::fs::chown(&p, Some(meta.uid()), Some(meta.gid())).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    block_on(async {
        let c = server.connect("postgres").await;
        c.batch_execute("ALTER SYSTEM SET ssl = on").await.unwrap();
    });
    server.reload();
}

fn opts(server: &Server, pw_file: PathBuf, host: &str, mode: SslMode, root: Option<PathBuf>) -> ConnectOpts {
    ConnectOpts {
        host: Some(host.to_owned()),
        port: Some(server.port()),
        user: Some(server.superuser().to_owned()),
        password_file: Some(pw_file),
        sslmode: mode,
        sslrootcert: root,
        connect_timeout: Duration::from_secs(5),
        prompt: false,
        ..Default::default()
    }
}

fn verify_modes_work(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    let good = PemPki::new("qrd", &["127.0.0.1"]);
    let other = PemPki::new("qrd", &["127.0.0.1"]);
    enable_tls(&server, &good);
    let good_ca = scratch.secret_file("ca.pem", &good.ca_pem);
    let other_ca = scratch.secret_file("other-ca.pem", &other.ca_pem);
    let pw_file = scratch.secret_file("pw", server.password());

    // verify-full through the library: the server itself says the session is encrypted.
    block_on(async {
        let session = qrd_pg::Session::open(&opts(
            &server,
            pw_file.clone(),
            "127.0.0.1",
            SslMode::VerifyFull,
            Some(good_ca.clone()),
        ))
        .await
        .unwrap();
        let row = session
            .client()
            .query_one("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
            .await
            .unwrap();
        assert!(row.get::<_, bool>(0), "pg_stat_ssl says the session is not encrypted");
        assert!(row.get::<_, String>(1).starts_with("TLSv1."), "{:?}", row.get::<_, String>(1));
        // require: encrypted too, with no root certificate at all; and a pooled connection to another
        // database is encrypted like the first.
        let session =
            qrd_pg::Session::open(&opts(&server, pw_file, "127.0.0.1", SslMode::Require, None)).await.unwrap();
        let pooled = session.db("template1").await.unwrap();
        for client in [session.client(), &**pooled] {
            let ssl: bool =
                client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await.unwrap().get(0);
            assert!(ssl, "sslmode=require gave an unencrypted session");
        }
    });

    // The binary: verify-full with the right CA connects (check then reports ssl on).
    let out = run_expect(
        qrd(&server, &scratch).args(["check", "--sslmode", "verify-full", "--sslrootcert"]).arg(&good_ca),
        1,
    );
    assert!(stdout(&out).contains("ok    server.ssl"), "{}", stdout(&out));

    // Another CA: refused, both verify modes, with the TLS hint.
    for mode in ["verify-ca", "verify-full"] {
        let out =
            run_expect(qrd(&server, &scratch).args(["check", "--sslmode", mode, "--sslrootcert"]).arg(&other_ca), 3);
        assert!(stderr(&out).contains("certificate verify failed"), "{}", stderr(&out));
        assert!(stderr(&out).contains("hint: check --sslmode and --sslrootcert"), "{}", stderr(&out));
    }

    // Host name not in the certificate: verify-full refuses, verify-ca accepts.
    let mut cmd = qrd(&server, &scratch);
    cmd.env("PGHOST", "localhost").args(["check", "--sslmode", "verify-full", "--sslrootcert"]).arg(&good_ca);
    let out = run_expect(&mut cmd, 3);
    assert!(stderr(&out).contains("hostname mismatch"), "{}", stderr(&out));
    let mut cmd = qrd(&server, &scratch);
    cmd.env("PGHOST", "localhost").args(["check", "--sslmode", "verify-ca", "--sslrootcert"]).arg(&good_ca);
    run_expect(&mut cmd, 1);

    // require: encrypted without verification, whatever the CA.
    run_expect(qrd(&server, &scratch).args(["check", "--sslmode", "require"]), 1);
    // A verify mode without any root certificate is an input error (exit 2) naming the fix.
    let out = run_expect(qrd(&server, &scratch).args(["check", "--sslmode", "verify-full"]), 2);
    assert!(stderr(&out).contains("needs a root certificate"), "{}", stderr(&out));
}
every_run!(verify_modes_work);

/// The connector's set-up (OpenSSL loading its CA bundle) is logged once per build; its count is what the
/// tests below assert on, since only the binary's own process shows how many it built.
const CONNECTOR_BUILT: &str = "built a TLS connector";

fn connector_builds(out: &std::process::Output) -> usize {
    stderr(out).matches(CONNECTOR_BUILT).count()
}

/// sslmode=prefer (the default) over TCP to a server with ssl = off: the server refuses TLS, so no
/// connector is ever built, and the session is plain.
fn no_connector_when_the_server_refuses_tls(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    let out = run_expect(qrd(&server, &scratch).env("QRD_LOG", "qrd_pg=debug").args(["check", "--json"]), 1);
    assert!(stderr(&out).contains("sslmode=prefer"), "not connected with the default sslmode: {}", stderr(&out));
    assert_eq!(connector_builds(&out), 0, "a TLS connector was built for a server without TLS");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["server"]["address"], format!("127.0.0.1:{}", server.port()));
}
per_major!(no_connector_when_the_server_refuses_tls: pg16 = 16);

/// Against a server with TLS, every connection of one run (the maintenance connection and the pooled ones
/// to the four Qlik databases) is encrypted through one connector built once.
fn one_connector_for_every_connection_of_a_run(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    let pki = PemPki::new("qrd", &["127.0.0.1"]);
    enable_tls(&server, &pki);
    provision(&server, &scratch, "Repo-pw-1");
    let mut cmd = qrd(&server, &scratch);
    cmd.env("QRD_LOG", "qrd_pg=debug").args(["check", "--json"]);
    let out = run(&mut cmd);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let status = |id: &str| {
        let checks = v["checks"].as_array().unwrap();
        checks.iter().find(|c| c["id"] == id).map(|c| c["status"].clone()).unwrap_or_default()
    };
    // Each database was entered through its own pooled connection: its public schema is read from inside.
    for db in DATABASES {
        assert_eq!(status(&format!("database.{db}.schema_public")), "ok", "{db} not checked from inside");
    }
    assert_eq!(status("server.ssl"), "ok", "the server does not report ssl on");
    assert_eq!(connector_builds(&out), 1, "one run built more or fewer than one TLS connector");
}
per_major!(one_connector_for_every_connection_of_a_run: pg16 = 16);

/// The certificate probe reads what the server presents (the installed certificate, byte for byte), and
/// says plainly when the server offers no TLS at all.
fn served_certificate_reads_what_the_server_presents(major: u32) {
    use qrd_pg::tls::{TlsProbeError, served_certificate};
    let server = Server::start(major);
    let timeout = Duration::from_secs(5);
    let refused = block_on(served_certificate("127.0.0.1", server.port(), timeout)).unwrap_err();
    assert!(matches!(refused, TlsProbeError::NotOffered { answer: 'N', .. }), "{refused:?}");
    assert!(refused.to_string().contains("does not offer TLS"), "{refused}");

    let pki = PemPki::new("qrd", &["127.0.0.1"]);
    enable_tls(&server, &pki);
    let der = block_on(served_certificate("127.0.0.1", server.port(), timeout)).unwrap();
    assert!(der == pki.cert_der, "the probe read another certificate than the one installed");
}
per_major!(served_certificate_reads_what_the_server_presents: pg16 = 16);

/// A peer that accepts TCP and never answers the SSLRequest: the probe gives up within its timeout and says
/// so (no timing is asserted; the test would hang if the timeout did not work).
#[test]
fn served_certificate_gives_up_on_a_silent_peer() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let err = block_on(qrd_pg::tls::served_certificate("127.0.0.1", port, Duration::from_millis(300))).unwrap_err();
    assert!(matches!(err, qrd_pg::tls::TlsProbeError::Timeout { .. }), "{err:?}");
    assert!(err.to_string().contains(&format!("no TLS handshake with 127.0.0.1 port {port}")), "{err}");
    drop(listener);
}
