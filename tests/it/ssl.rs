//! `qrd ssl` on real servers: enable installs a checked certificate and proves TLS with real connections
//! (pg_stat_ssl says encrypted, a plain connection is refused by pg_hba.conf), disable --temporary and
//! restore give back byte-identical files, and every refusal or failed proof leaves the server as it was.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use qrd_pg::connect::{ConnectOpts, SslMode};
use rcgen::{CertificateParams, KeyPair};
use serde_json::Value;

use crate::common::*;

const LOCALHOST: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// A CA and a server certificate it signed for `names`, written to `scratch` with the given file names.
fn pki(scratch: &Scratch, prefix: &str, names: &[&str]) -> Pki {
    let p = PemPki::new(prefix, names);
    Pki {
        ca: scratch.secret_file(&format!("{prefix}-root.pem"), &p.ca_pem),
        cert: scratch.secret_file(&format!("{prefix}-server.pem"), &p.cert_pem),
        key: scratch.secret_file(&format!("{prefix}-server_key.pem"), &p.key_pem),
    }
}

/// Every file of the data directory (not subdirectories) with its bytes, for "nothing changed" checks.
fn data_files(server: &Server) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(server.data_dir())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file() && !e.file_name().to_string_lossy().starts_with("postmaster"))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect()
}

fn file(server: &Server, name: &str) -> Vec<u8> {
    std::fs::read(server.data_dir().join(name)).unwrap()
}

fn show(server: &Server, name: &str) -> String {
    block_on(async { server.connect("postgres").await.query_one(&format!("SHOW {name}"), &[]).await.unwrap().get(0) })
}

/// A plain (NoTls) TCP login as the superuser: the server's message when refused.
fn plain_login(server: &Server) -> Result<(), String> {
    block_on(async {
        match server.try_connect_tcp(LOCALHOST, "postgres", server.superuser(), server.password()).await {
            Ok(_) => Ok(()),
            Err(e) => Err(e.as_db_error().map(|d| d.message().to_owned()).unwrap_or_else(|| e.to_string())),
        }
    })
}

fn assert_plain_refused(server: &Server) {
    let msg = plain_login(server).expect_err("a plain TCP connection must be refused after enable");
    assert!(msg.starts_with("no pg_hba.conf entry for host \"127.0.0.1\""), "{msg}");
    // 14+ say "no encryption", 12 and 13 "SSL off".
    assert!(msg.ends_with("no encryption") || msg.ends_with("SSL off"), "{msg}");
}

/// A verify-full session through the library: the server says it is encrypted.
fn tls_session_version(server: &Server, scratch: &Scratch, host: &str, ca: &Path) -> String {
    let opts = ConnectOpts {
        host: Some(host.to_owned()),
        port: Some(server.port()),
        user: Some(server.superuser().to_owned()),
        password_file: Some(scratch.secret_file("pw", server.password())),
        sslmode: SslMode::VerifyFull,
        sslrootcert: Some(ca.to_owned()),
        connect_timeout: Duration::from_secs(5),
        prompt: false,
        ..Default::default()
    };
    block_on(async {
        let s = qrd_pg::Session::open(&opts).await.unwrap();
        let row = s
            .client()
            .query_one("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
            .await
            .unwrap();
        assert!(row.get::<_, bool>(0), "pg_stat_ssl says the verify-full session is not encrypted");
        row.get(1)
    })
}

fn enable_with_a_ca_proves_tls_and_refuses_plain(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    let pki = pki(&scratch, "site", &["127.0.0.1", "localhost"]);
    let enable = |extra: &[&str]| {
        let mut cmd = qrd(&server, &scratch);
        cmd.args(["ssl", "enable", "--cert"]).arg(&pki.cert).arg("--key").arg(&pki.key).arg("--ca").arg(&pki.ca);
        cmd.args(extra);
        cmd
    };
    plain_login(&server).expect("plain logins work before enable");

    // --dry-run: the diffs and the files it would install; nothing changes.
    let before = data_files(&server);
    let out = run_expect(&mut enable(&["--dry-run"]), 0);
    let text = stdout(&out);
    assert!(text.contains("would install") && text.contains("server_key.pem (mode 0600"), "{text}");
    assert!(text.contains("+ssl = on") && text.contains("+ssl_min_protocol_version = 'TLSv1.2'"), "{text}");
    assert!(text.contains("+hostssl all"), "{text}");
    assert_eq!(data_files(&server), before, "--dry-run changed the data directory");
    assert_eq!(show(&server, "ssl"), "off");

    // Enable: proven by the command itself, then by us.
    let out = run_expect(&mut enable(&[]), 0);
    assert!(stdout(&out).contains("ssl enabled on 127.0.0.1:"), "{}", stdout(&out));
    assert!(stdout(&out).contains("no pg_hba.conf entry"), "{}", stdout(&out));
    assert_eq!(show(&server, "ssl"), "on");
    assert_eq!(show(&server, "ssl_min_protocol_version"), "TLSv1.2");
    assert_eq!(show(&server, "ssl_ciphers"), "DEFAULT:!LOW:!EXP:!eNULL:!aNULL:!MD5:!RC2:!RC4:!DES:@STRENGTH");
    assert_eq!(show(&server, "ssl_ca_file"), "root.pem");
    assert_eq!(file(&server, "server.pem"), std::fs::read(&pki.cert).unwrap());
    let dir_owner = std::fs::metadata(server.data_dir()).unwrap().uid();
    for (name, mode) in [("server.pem", 0o644), ("server_key.pem", 0o600), ("root.pem", 0o644)] {
        let m = std::fs::metadata(server.data_dir().join(name)).unwrap();
        assert_eq!(m.mode() & 0o7777, mode, "{name}");
        assert_eq!(m.uid(), dir_owner, "{name} must belong to the server's user");
    }
    let hba = String::from_utf8(file(&server, "pg_hba.conf")).unwrap();
    assert!(hba.lines().any(|l| l.starts_with("hostssl all          all   127.0.0.0/8")), "{hba}");
    assert!(!hba.lines().any(|l| l.starts_with("host ")), "{hba}");
    assert_plain_refused(&server);
    assert!(tls_session_version(&server, &scratch, "127.0.0.1", &pki.ca).starts_with("TLSv1."));

    // The binary with verify-full against the CA: connects, and check reports TLS and the certificate.
    let out = run(qrd(&server, &scratch).args(["check", "--sslmode", "verify-full", "--sslrootcert"]).arg(&pki.ca));
    let text = stdout(&out);
    assert!(text.contains("ok    server.ssl "), "{text}");
    assert!(text.contains("ok    server.ssl_certificate") && text.contains("key matches"), "{text}");
    assert!(text.contains("ok    server.ssl_min_protocol_version"), "{text}");

    // Status: subject, SANs, days left, this connection's TLS.
    let out = run_expect(qrd(&server, &scratch).args(["ssl", "status", "--json"]), 0);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ssl"], true);
    assert_eq!(v["certificate"]["subject"], "CN=127.0.0.1");
    assert_eq!(v["certificate"]["sans"], serde_json::json!(["IP:127.0.0.1", "DNS:localhost"]));
    assert!(v["certificate"]["days_left"].as_i64().unwrap() > 1000, "{v}");
    assert_eq!(v["local"]["key_mode"], 0o600);
    assert_eq!(v["local"]["key_matches"], "matches");
    assert_eq!(v["connection"]["ssl"], true, "{v}");

    // Again: nothing to do, nothing touched.
    let before = data_files(&server);
    let out = run_expect(&mut enable(&[]), 0);
    assert!(stdout(&out).contains("nothing to do"), "{}", stdout(&out));
    assert_eq!(data_files(&server), before);
}
all_majors!(enable_with_a_ca_proves_tls_and_refuses_plain);

fn self_signed_lab_verifies_full_with_the_written_ca(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    let lab = ["ssl", "enable", "--self-signed", "--hostname", "localhost", "--hostname", "127.0.0.1", "--days", "90"];
    let out = run_expect(qrd(&server, &scratch).args(lab), 0);
    assert!(stdout(&out).contains("(sslmode verify-full)"), "{}", stdout(&out));
    assert_plain_refused(&server);
    // The CA is in the data directory for clients; ssl_ca_file stays unset (no client certificates).
    let ca = server.data_dir().join("root.pem");
    assert_eq!(show(&server, "ssl_ca_file"), "");
    tls_session_version(&server, &scratch, "localhost", &ca);
    let mut cmd = qrd(&server, &scratch);
    cmd.env("PGHOST", "localhost")
        .args(["ssl", "status", "--json", "--sslmode", "verify-full", "--sslrootcert"])
        .arg(&ca);
    let v: Value = serde_json::from_slice(&run_expect(&mut cmd, 0).stdout).unwrap();
    assert_eq!(v["certificate"]["sans"], serde_json::json!(["DNS:localhost", "IP:127.0.0.1"]));
    assert!(v["certificate"]["issuer"].as_str().unwrap().contains("qrd lab CA for localhost"), "{v}");
    assert_eq!(v["certificate"]["days_left"], 90);
    assert_eq!(v["warnings"], serde_json::json!([]));

    // A second run keeps the lab certificate: nothing to do.
    let before = data_files(&server);
    let out = run_expect(qrd(&server, &scratch).args(lab), 0);
    assert!(stdout(&out).contains("nothing to do"), "{}", stdout(&out));
    assert_eq!(data_files(&server), before);
}
every_run!(self_signed_lab_verifies_full_with_the_written_ca);

fn a_key_of_another_certificate_is_refused_untouched(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    let good = pki(&scratch, "good", &["127.0.0.1"]);
    let other = pki(&scratch, "other", &["127.0.0.1"]);
    let before = data_files(&server);
    let out = run_expect(
        qrd(&server, &scratch).args(["ssl", "enable", "--cert"]).arg(&good.cert).arg("--key").arg(&other.key),
        4,
    );
    let err = stderr(&out);
    assert!(err.contains("the private key does not match the certificate's public key"), "{err}");
    assert!(!err.contains("PRIVATE KEY-----"), "the key must never be printed: {err}");
    // A CA that did not sign the certificate is refused too.
    let out = run_expect(
        qrd(&server, &scratch)
            .args(["ssl", "enable", "--cert"])
            .arg(&good.cert)
            .arg("--key")
            .arg(&good.key)
            .arg("--ca")
            .arg(&other.ca),
        4,
    );
    assert!(stderr(&out).contains("did not sign"), "{}", stderr(&out));
    assert_eq!(data_files(&server), before, "a refused enable changed the data directory");
    assert_eq!(show(&server, "ssl"), "off");
    plain_login(&server).expect("plain logins still work");
    // With ssl off, check and status look for server.crt without leaving an ERROR in the server log.
    run(qrd(&server, &scratch).arg("check"));
    let out = run_expect(qrd(&server, &scratch).args(["ssl", "status"]), 0);
    assert!(stdout(&out).contains("unreadable: server.crt does not exist"), "{}", stdout(&out));
    assert!(!server.log().contains("server.crt"), "{}", server.log());
}
every_run!(a_key_of_another_certificate_is_refused_untouched);

fn disable_temporary_and_restore_give_back_the_exact_files(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    let pki = pki(&scratch, "site", &["127.0.0.1"]);
    run_expect(qrd(&server, &scratch).args(["ssl", "enable", "--cert"]).arg(&pki.cert).arg("--key").arg(&pki.key), 0);
    // Odd modes must come back as they were, too.
    let conf_path = server.data_dir().join("postgresql.conf");
    std::fs::set_permissions(&conf_path, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    let (conf, hba) = (file(&server, "postgresql.conf"), file(&server, "pg_hba.conf"));

    let out = run_expect(qrd(&server, &scratch).args(["ssl", "restore"]), 4);
    assert!(stderr(&out).contains("nothing to restore"), "{}", stderr(&out));
    run_expect(qrd(&server, &scratch).args(["ssl", "disable"]), 2);

    let out = run_expect(qrd(&server, &scratch).args(["ssl", "disable", "--temporary"]), 0);
    assert!(stdout(&out).contains("ssl is off until `qrd ssl restore`"), "{}", stdout(&out));
    assert_eq!(show(&server, "ssl"), "off");
    plain_login(&server).expect("the installer's plain connection works while disabled");
    let saved = server.data_dir().join("qrd-ssl-saved");
    assert_eq!(std::fs::metadata(&saved).unwrap().mode() & 0o777, 0o700);

    // Twice: refused, nothing touched. Enable meanwhile: refused too.
    let (conf_off, hba_off) = (file(&server, "postgresql.conf"), file(&server, "pg_hba.conf"));
    let out = run_expect(qrd(&server, &scratch).args(["ssl", "disable", "--temporary"]), 4);
    assert!(stderr(&out).contains("already temporarily disabled"), "{}", stderr(&out));
    assert!(stderr(&out).contains("hint: run `qrd ssl restore`"), "{}", stderr(&out));
    let out = run_expect(qrd(&server, &scratch).args(["ssl", "status"]), 0);
    assert!(stderr(&out).contains("temporarily disabled"), "{}", stderr(&out));
    assert_eq!((file(&server, "postgresql.conf"), file(&server, "pg_hba.conf")), (conf_off, hba_off));

    let out = run_expect(qrd(&server, &scratch).args(["ssl", "restore"]), 0);
    assert!(stdout(&out).contains("restored 2 file(s) byte for byte; ssl = on, TLS proven"), "{}", stdout(&out));
    assert!(file(&server, "postgresql.conf") == conf, "postgresql.conf is not byte-identical after restore");
    assert!(file(&server, "pg_hba.conf") == hba, "pg_hba.conf is not byte-identical after restore");
    assert_eq!(std::fs::metadata(&conf_path).unwrap().mode() & 0o7777, 0o640);
    assert!(!saved.exists(), "the saved state must be gone after a proven restore");
    assert_eq!(show(&server, "ssl"), "on");
    assert_plain_refused(&server);
    run_expect(qrd(&server, &scratch).args(["ssl", "restore"]), 4);
}
every_run!(disable_temporary_and_restore_give_back_the_exact_files);

fn a_failed_proof_puts_everything_back(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    let pki = pki(&scratch, "site", &["127.0.0.1"]);
    // A hostnossl rule in front: plain logins would still work after enable, so the proof must fail.
    let hba_path = server.data_dir().join("pg_hba.conf");
    let hba = std::fs::read_to_string(&hba_path).unwrap();
    std::fs::write(&hba_path, format!("hostnossl all all 127.0.0.1/32 scram-sha-256\n{hba}")).unwrap();
    server.reload();
    let before = data_files(&server);
    let out = run_expect(
        qrd(&server, &scratch).args(["ssl", "enable", "--cert"]).arg(&pki.cert).arg("--key").arg(&pki.key),
        5,
    );
    let err = stderr(&out);
    assert!(err.contains("a plain (sslmode=disable) connection still logs in"), "{err}");
    assert!(err.contains("pg_hba.conf:1 is a hostnossl rule"), "{err}");
    assert!(err.contains("put back"), "{err}");
    assert_eq!(show(&server, "ssl"), "off");
    let after = data_files(&server);
    for (name, bytes) in &before {
        assert!(after.get(name) == Some(bytes), "{name} differs after the rollback");
    }
    let new: Vec<&String> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    assert!(new.iter().all(|n| n.contains(".qrd-") && n.ends_with(".bak")), "only backups may remain: {new:?}");
    plain_login(&server).expect("plain logins work as before");
}
every_run!(a_failed_proof_puts_everything_back);

/// Qlik's export as it is: an RSA certificate with CRLF line endings and its PKCS #1 key
/// (`-----BEGIN RSA PRIVATE KEY-----`), not naming this host (so the proof uses sslmode=require).
fn qlik_exported_pem_files_work_as_they_are(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../qrd-cert/tests/fixtures");
    let out = run_expect(
        qrd(&server, &scratch)
            .args(["ssl", "enable", "--cert"])
            .arg(fixtures.join("server.pem"))
            .arg("--key")
            .arg(fixtures.join("server_key.pem"))
            .arg("--ca")
            .arg(fixtures.join("ca.pem")),
        0,
    );
    assert!(stdout(&out).contains("(sslmode require)"), "{}", stdout(&out));
    assert!(stderr(&out).contains("the certificate does not name 127.0.0.1"), "{}", stderr(&out));
    assert_eq!(file(&server, "server_key.pem"), std::fs::read(fixtures.join("server_key.pem")).unwrap());
    assert_plain_refused(&server);
    let out = run_expect(qrd(&server, &scratch).args(["ssl", "status"]), 0);
    let text = stdout(&out);
    let field = |key: &str| {
        let line = text.lines().find(|l| l.trim_start().starts_with(key)).unwrap_or_else(|| panic!("no {key}: {text}"));
        line.trim_start()[key.len()..].trim().to_owned()
    };
    assert_eq!(field("certificate subject"), "CN=qlik-central.example.com");
    assert_eq!(field("SANs"), "DNS:qlik-central.example.com, IP:10.0.4.11");
    assert_eq!(field("key type"), "RSA 2048");
    assert_eq!(field("key   "), "matches the certificate");
    assert_eq!(
        field("ssl_key_file"),
        "server_key.pem (mode 0600, owner uid 999)"
            .replace("999", &std::fs::metadata(server.data_dir()).unwrap().uid().to_string())
    );
    assert!(field("this connection").starts_with("TLSv1."), "{text}");
    assert!(field("not after").contains("days left)"), "{text}");
}
every_run!(qlik_exported_pem_files_work_as_they_are);

/// An expired certificate is refused before anything changes.
fn an_expired_certificate_is_refused(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let cert = scratch.secret_file("old.pem", &params.self_signed(&key).unwrap().pem());
    let key = scratch.secret_file("old_key.pem", &key.serialize_pem());
    let before = data_files(&server);
    let out = run_expect(qrd(&server, &scratch).args(["ssl", "enable", "--cert"]).arg(&cert).arg("--key").arg(&key), 4);
    assert!(stderr(&out).contains("expired on 2021-01-01 00:00:00 UTC; nothing was changed"), "{}", stderr(&out));
    assert_eq!(data_files(&server), before);
}
every_run!(an_expired_certificate_is_refused);

/// Restore refuses to undo edits made while TLS was off (showing them), unless --force.
fn restore_keeps_edits_made_meanwhile_unless_forced(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    let pki = pki(&scratch, "site", &["127.0.0.1"]);
    run_expect(qrd(&server, &scratch).args(["ssl", "enable", "--cert"]).arg(&pki.cert).arg("--key").arg(&pki.key), 0);
    let conf_enabled = file(&server, "postgresql.conf");
    run_expect(qrd(&server, &scratch).args(["ssl", "disable", "--temporary"]), 0);
    // Someone (an installer, a colleague) changes postgresql.conf while TLS is off.
    run_expect(qrd(&server, &scratch).args(["conf", "set", "work_mem=9MB"]), 0);
    let edited = file(&server, "postgresql.conf");
    let out = run_expect(qrd(&server, &scratch).args(["ssl", "restore"]), 4);
    assert!(stdout(&out).contains("-work_mem = 9MB"), "the diff shows what would be lost: {}", stdout(&out));
    assert!(stderr(&out).contains("restore --force"), "{}", stderr(&out));
    assert_eq!(file(&server, "postgresql.conf"), edited);
    assert!(server.data_dir().join("qrd-ssl-saved").exists());
    run_expect(qrd(&server, &scratch).args(["ssl", "restore", "--force"]), 0);
    assert_eq!(file(&server, "postgresql.conf"), conf_enabled);
    assert_eq!(show(&server, "ssl"), "on");
    assert_plain_refused(&server);
}
every_run!(restore_keeps_edits_made_meanwhile_unless_forced);

/// Through the unix socket (as a DBA on the server's machine would), the proof goes to the first
/// listen address; --keep-host leaves the plain rules, so TLS is offered but not required.
fn through_the_socket_with_keep_host(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    let pki = pki(&scratch, "site", &["127.0.0.1"]);
    let hba = file(&server, "pg_hba.conf");
    let mut cmd = qrd(&server, &scratch);
    cmd.env("PGHOST", server.socket_dir());
    cmd.args(["ssl", "enable", "--keep-host", "--cert"]).arg(&pki.cert).arg("--key").arg(&pki.key);
    let out = run_expect(&mut cmd, 0);
    assert!(stdout(&out).contains("ssl enabled on 127.0.0.1:"), "{}", stdout(&out));
    assert!(stdout(&out).contains("plain connections: kept (--keep-host)"), "{}", stdout(&out));
    assert_eq!(file(&server, "pg_hba.conf"), hba, "--keep-host must not touch pg_hba.conf");
    plain_login(&server).expect("plain rules were kept");
    tls_session_version(&server, &scratch, "127.0.0.1", &pki.ca);
    // Status through the socket: not encrypted, and says why.
    let mut cmd = qrd(&server, &scratch);
    cmd.env("PGHOST", server.socket_dir()).args(["ssl", "status"]);
    let text = stdout(&run_expect(&mut cmd, 0));
    assert!(text.contains("not encrypted (unix socket)"), "{text}");
}
every_run!(through_the_socket_with_keep_host);

/// A reload whose TLS setup the server cannot load keeps its previous certificate in use (it only logs
/// "SSL configuration was not reloaded"): the proof compares the certificate the server presents with
/// the one installed, and puts the previous files back.
fn a_certificate_the_server_did_not_load_is_caught(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    let first = pki(&scratch, "first", &["127.0.0.1"]);
    let second = pki(&scratch, "second", &["127.0.0.1"]);
    let enable = |p: &Pki| {
        let mut cmd = qrd(&server, &scratch);
        cmd.args(["ssl", "enable", "--cert"]).arg(&p.cert).arg("--key").arg(&p.key);
        cmd
    };
    run_expect(&mut enable(&first), 0);
    // A maximum below enable's minimum: every later TLS reload fails, the first certificate stays in use.
    let conf_path = server.data_dir().join("postgresql.conf");
    let mut conf = std::fs::read_to_string(&conf_path).unwrap();
    conf.push_str("ssl_max_protocol_version = 'TLSv1.1'\n");
    std::fs::write(&conf_path, conf).unwrap();
    server.reload();
    let before = data_files(&server);
    let out = run_expect(&mut enable(&second), 5);
    let err = stderr(&out);
    assert!(err.contains("not the certificate just installed"), "{err}");
    assert!(err.contains("everything was put back"), "{err}");
    assert_eq!(file(&server, "server.pem"), std::fs::read(&first.cert).unwrap());
    assert_eq!(file(&server, "server_key.pem"), std::fs::read(&first.key).unwrap());
    for (name, bytes) in &before {
        assert!(data_files(&server).get(name) == Some(bytes), "{name} differs after the rollback");
    }
    tls_session_version(&server, &scratch, "127.0.0.1", &first.ca);
}
every_run!(a_certificate_the_server_did_not_load_is_caught);

/// disable --temporary retypes `hostssl … reject` rules too: with ssl = off a hostssl line matches nothing,
/// and the user it refused would be let in by the host rules below it.
fn disable_keeps_reject_rules_effective(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    let pki = pki(&scratch, "site", &["127.0.0.1"]);
    block_on(async {
        server.connect("postgres").await.batch_execute("CREATE ROLE bob LOGIN PASSWORD 'bob-pw'").await.unwrap();
    });
    run_expect(qrd(&server, &scratch).args(["ssl", "enable", "--cert"]).arg(&pki.cert).arg("--key").arg(&pki.key), 0);
    // The site refuses bob over the network.
    let hba_path = server.data_dir().join("pg_hba.conf");
    let hba = std::fs::read_to_string(&hba_path).unwrap();
    std::fs::write(&hba_path, format!("hostssl all bob 0.0.0.0/0 reject\n{hba}")).unwrap();
    server.reload();
    // Over plain TCP (the harness's client has no TLS), bob meets his reject rule once it applies to plain
    // connections: the server's refusal must name the rule, not a missing entry or a password.
    let bob = || {
        block_on(async { server.try_connect_tcp(LOCALHOST, "postgres", "bob", "bob-pw").await.map(|_| ()) })
            .map_err(|e| e.as_db_error().map(|d| d.message().to_owned()).unwrap_or_else(|| e.to_string()))
    };
    let refused = bob().expect_err("bob must be refused while TLS is on");
    assert!(
        refused.starts_with("no pg_hba.conf entry for host"),
        "plain connections have no rule with TLS on: {refused}"
    );
    run_expect(qrd(&server, &scratch).args(["ssl", "disable", "--temporary"]), 0);
    let hba = std::fs::read_to_string(&hba_path).unwrap();
    let refused = bob().expect_err("bob gets in while TLS is temporarily off: his reject rule stayed hostssl");
    assert!(
        refused.starts_with("pg_hba.conf rejects connection for host \"127.0.0.1\", user \"bob\""),
        "bob must be refused by his reject rule: {refused}\n{hba}"
    );
}
per_major!(disable_keeps_reject_rules_effective: pg16 = 16);

/// An error the server already reported (a hostssl line while ssl = off, which it loads fine) that moves
/// down because a rule is inserted above it is not new: the valid edit stays.
fn a_moved_old_error_is_not_new(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    let hba_path = server.data_dir().join("pg_hba.conf");
    let mut hba = std::fs::read_to_string(&hba_path).unwrap();
    hba.push_str("hostssl all all 10.9.0.0/16 scram-sha-256\n");
    std::fs::write(&hba_path, &hba).unwrap();
    server.reload();
    let out = run(qrd(&server, &scratch).args([
        "hba",
        "add",
        "--type",
        "host",
        "--database",
        "QSR",
        "--user",
        "qliksenserepository",
        "--address",
        "10.0.4.0/24",
        "--method",
        "scram-sha-256",
    ]));
    assert_eq!(out.status.code(), Some(0), "a valid rule was refused: {}", stderr(&out));
}
per_major!(a_moved_old_error_is_not_new: pg16 = 16, pg12 = 12);

/// Every ssl subcommand takes -D/--data-dir as conf, hba and scram do; a directory of another cluster is
/// refused before anything changes (qrd would otherwise install into one cluster and prove on another).
fn data_dir_is_taken_and_checked(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    let other = tempfile::tempdir().unwrap();
    let before = data_files(&server);
    let enable = || {
        let mut cmd = qrd(&server, &scratch);
        cmd.args(["ssl", "enable", "--self-signed", "--hostname", "127.0.0.1"]);
        cmd
    };
    let out = run_expect(enable().arg("--data-dir").arg(other.path()), 4);
    assert!(stderr(&out).contains("is not the data directory of the server"), "{}", stderr(&out));
    assert_eq!(data_files(&server), before, "a refused enable changed the data directory");
    run_expect(enable().arg("-D").arg(server.data_dir()), 0);
    assert_eq!(show(&server, "ssl"), "on");
    run_expect(qrd(&server, &scratch).args(["ssl", "status", "-D"]).arg(server.data_dir()), 0);
    run_expect(qrd(&server, &scratch).args(["ssl", "status", "-D"]).arg(other.path()), 4);
    run_expect(qrd(&server, &scratch).args(["ssl", "disable", "--temporary", "-D"]).arg(server.data_dir()), 0);
    assert_eq!(show(&server, "ssl"), "off");
    run_expect(qrd(&server, &scratch).args(["ssl", "restore", "--data-dir"]).arg(server.data_dir()), 0);
    assert_eq!(show(&server, "ssl"), "on");
}
per_major!(data_dir_is_taken_and_checked: pg16 = 16);

/// The saved copy of `kind` in the saved set is replaced by `text`, with a checksum to match, as if the
/// DBA had saved a broken file: the server will reject it.
fn replace_saved(server: &Server, kind: &str, text: &str) {
    use sha2::Digest;
    let dir = server.data_dir().join("qrd-ssl-saved");
    let manifest_path = dir.join("manifest.json");
    let mut manifest: Value = serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let entry = manifest["files"].as_array_mut().unwrap().iter_mut().find(|f| f["kind"] == kind).unwrap();
    std::fs::write(dir.join(entry["saved_as"].as_str().unwrap()), text).unwrap();
    let sum: String = sha2::Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    entry["sha256"] = Value::String(sum);
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
}

/// restore writes its files as one change: when the server rejects the restored pg_hba.conf, the restored
/// postgresql.conf goes back too (not ssl = on over plain host rules), and the saved state stays.
fn restore_is_all_or_nothing(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    let pki = pki(&scratch, "site", &["127.0.0.1"]);
    run_expect(qrd(&server, &scratch).args(["ssl", "enable", "--cert"]).arg(&pki.cert).arg("--key").arg(&pki.key), 0);
    run_expect(qrd(&server, &scratch).args(["ssl", "disable", "--temporary"]), 0);
    let (conf, hba) = (file(&server, "postgresql.conf"), file(&server, "pg_hba.conf"));
    let saved_hba = String::from_utf8(hba.clone()).unwrap();
    replace_saved(&server, "hba", &format!("host all all 10.9.0.0/16 ldap\n{saved_hba}"));

    let out = run_expect(qrd(&server, &scratch).args(["ssl", "restore"]), 5);
    assert!(stderr(&out).contains("the server rejects the edited pg_hba.conf"), "{}", stderr(&out));
    assert!(file(&server, "postgresql.conf") == conf, "postgresql.conf stayed restored although pg_hba.conf was not");
    assert!(file(&server, "pg_hba.conf") == hba, "pg_hba.conf changed");
    assert_eq!(show(&server, "ssl"), "off", "the server runs with the half-restored configuration");
    plain_login(&server).expect("still disabled: the installer's plain connection works");
    assert!(server.data_dir().join("qrd-ssl-saved/manifest.json").exists(), "the saved state must stay");
}
per_major!(restore_is_all_or_nothing: pg16 = 16, pg15 = 15);

/// restore gives a file its saved owner and mode back with the owner first: chown clears the set-group-ID
/// bit of a group-executable file, so chmod then chown (as before) lost it.
fn restore_gives_back_owner_and_setgid_mode(major: u32) {
    let root = std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false);
    assert!(root, "this test changes file owners and needs root (CI runs the suite as root)");
    let server = Server::start(major);
    let scratch = Scratch::new();
    let pki = pki(&scratch, "site", &["127.0.0.1"]);
    run_expect(qrd(&server, &scratch).args(["ssl", "enable", "--cert"]).arg(&pki.cert).arg("--key").arg(&pki.key), 0);
    let conf_path = server.data_dir().join("postgresql.conf");
    std::fs::set_permissions(&conf_path, std::os::unix::fs::PermissionsExt::from_mode(0o2750)).unwrap();
    let owner = std::fs::metadata(&conf_path).unwrap().uid();
    assert_ne!(owner, 0, "the server's files belong to its own OS user");
    run_expect(qrd(&server, &scratch).args(["ssl", "disable", "--temporary"]), 0);
    // Meanwhile the file changed hands and mode.
    std::os::unix::fs::chown(&conf_path, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&conf_path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    run_expect(qrd(&server, &scratch).args(["ssl", "restore"]), 0);
    let meta = std::fs::metadata(&conf_path).unwrap();
    assert_eq!(meta.uid(), owner, "the saved owner is back");
    assert_eq!(meta.mode() & 0o7777, 0o2750, "the saved mode is back, set-group-ID bit included");
}
per_major!(restore_gives_back_owner_and_setgid_mode: pg16 = 16);

/// `ssl enable` connects several times after the reload (the TLS proof, the certificate probe, the plain
/// refusal): the proof and the probe trust the same way (no CA given: sslmode require), so one TLS connector
/// serves both; before the reload the server refused TLS and none was built.
fn enable_builds_one_tls_connector_for_its_proofs(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    let pki = pki(&scratch, "site", &["127.0.0.1"]);
    let mut cmd = qrd(&server, &scratch);
    cmd.env("QRD_LOG", "qrd_pg=debug").args(["ssl", "enable", "--cert"]).arg(&pki.cert).arg("--key").arg(&pki.key);
    let out = run_expect(&mut cmd, 0);
    assert!(stdout(&out).contains("ssl enabled on 127.0.0.1"), "{}", stdout(&out));
    assert_eq!(stderr(&out).matches("built a TLS connector").count(), 1, "not exactly one TLS connector built");
}
per_major!(enable_builds_one_tls_connector_for_its_proofs: pg16 = 16);
