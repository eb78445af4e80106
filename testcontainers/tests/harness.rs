//! The harness against real servers of every installed major: start, log in, psql, clean up; md5 and
//! trust host auth; namespaces with their own loopback addresses and hostname.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::time::Instant;

use qrd_testcontainers::{EVERY_RUN, HarnessError, HostAuth, Namespace, SMOKE, Server, installation};
use tokio_postgres::error::SqlState;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const LO2: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const LO3: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

/// Host lines of the server's pg_hba.conf as the server parsed them (pg_hba_file_rules exists since 10).
async fn host_auth_methods(client: &tokio_postgres::Client) -> Vec<String> {
    let rows = client
        .query("SELECT DISTINCT auth_method FROM pg_hba_file_rules WHERE type = 'host' ORDER BY 1", &[])
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

async fn stored_password(client: &tokio_postgres::Client, role: &str) -> String {
    let row = client.query_one("SELECT rolpassword FROM pg_authid WHERE rolname = $1", &[&role]).await.unwrap();
    row.get(0)
}

async fn current_user(client: &tokio_postgres::Client) -> String {
    client.query_one("SELECT current_user::text", &[]).await.unwrap().get(0)
}

/// How a TCP connect to `addr` failed (`None`: it connected).
fn tcp_refusal(addr: (IpAddr, u16)) -> Option<ErrorKind> {
    TcpStream::connect(addr).err().map(|e| e.kind())
}

/// The kind of I/O error under a failed connection attempt; otherwise what happened instead.
fn io_failure(result: Result<tokio_postgres::Client, tokio_postgres::Error>) -> Result<ErrorKind, String> {
    let err = match result {
        Ok(_) => return Err("connected".to_owned()),
        Err(e) => e,
    };
    let mut source = std::error::Error::source(&err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Ok(io.kind());
        }
        source = e.source();
    }
    Err(format!("{err:?}"))
}

/// Everything a test relies on for one major, then that drop leaves nothing behind.
async fn start_log_in_and_clean_up(major: u32) {
    let started = Instant::now();
    let server = Server::start(major);
    eprintln!("PostgreSQL {major}: initdb + start took {:?}", started.elapsed());
    let inst = installation(major).unwrap();
    assert_eq!(server.installation(), &inst);

    let client = server.connect("postgres").await;
    let num: String = client.query_one("SELECT current_setting('server_version_num')", &[]).await.unwrap().get(0);
    let num: u32 = num.parse().unwrap();
    assert_eq!(num / 10_000, major, "server_version_num {num}");
    assert_eq!(server.version().major, major);
    assert_eq!(server.version().text, inst.server_version, "the running server is the manifest's build");

    // scram-sha-256 by default, for the pg_hba host lines and the stored verifier alike.
    assert_eq!(host_auth_methods(&client).await, ["scram-sha-256"]);
    assert!(stored_password(&client, server.superuser()).await.starts_with("SCRAM-SHA-256$"));

    let tcp = server
        .try_connect_tcp(server.host(), "postgres", server.superuser(), server.password())
        .await
        .unwrap_or_else(|e| panic!("superuser login over TCP with its password failed: {e:?}"));
    let row = tcp.query_one("SELECT current_user::text, host(inet_client_addr())", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), server.superuser());
    assert_eq!(row.get::<_, String>(1), "127.0.0.1");

    let err = server
        .try_connect_tcp(server.host(), "postgres", server.superuser(), "not-the-password")
        .await
        .expect_err("a wrong password must not log in");
    let db = err.as_db_error().unwrap_or_else(|| panic!("expected the server's auth error, got {err:?}"));
    assert_eq!(db.code(), &SqlState::INVALID_PASSWORD, "{db:?}");
    assert!(db.message().starts_with("password authentication failed for user"), "{db:?}");

    let out = server.psql("postgres").args(["-At", "-c", "SELECT 1"]).output().unwrap();
    assert!(out.status.success(), "psql failed: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1\n");

    let env = server.client_env();
    let get = |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap();
    assert_eq!(get("PGHOST"), "127.0.0.1");
    assert_eq!(get("PGPORT"), server.port().to_string());
    assert_eq!(get("PGPASSWORD"), server.password());
    assert!(!env.iter().any(|(k, _)| k == "PGSSLMODE"));

    let (data, host, port, socket) =
        (server.data_dir().to_owned(), server.host(), server.port(), server.socket_dir().to_owned());
    assert!(data.join("PG_VERSION").exists());
    drop(tcp);
    drop(client);
    drop(server);
    assert!(!data.exists(), "{} should be gone", data.display());
    assert!(!socket.exists(), "{} should be gone", socket.display());
    assert_eq!(
        tcp_refusal((host, port)),
        Some(ErrorKind::ConnectionRefused),
        "port {port} still accepts connections after drop"
    );
}

#[tokio::test]
async fn every_run_16() {
    assert_eq!(EVERY_RUN[0], 16);
    start_log_in_and_clean_up(16).await;
}

#[tokio::test]
async fn every_run_15() {
    assert_eq!(EVERY_RUN[1], 15);
    start_log_in_and_clean_up(15).await;
}

#[tokio::test]
async fn smoke_14() {
    assert_eq!(SMOKE[0], 14);
    assert_eq!(installation(14).unwrap().server_version, "14.17", "14.17 is what Qlik Sense bundles");
    start_log_in_and_clean_up(14).await;
}

#[tokio::test]
async fn smoke_12() {
    assert_eq!(SMOKE[1], 12);
    start_log_in_and_clean_up(12).await;
}

/// md5 host auth stores md5 hashes, also on 14+ where initdb itself would store SCRAM.
#[tokio::test]
async fn md5_host_auth_stores_md5_hashes() {
    for major in [12, 16] {
        let server = Server::builder(major).host_auth(HostAuth::Md5).start().unwrap();
        let client = server.connect("postgres").await;
        assert!(stored_password(&client, "postgres").await.starts_with("md5"), "PostgreSQL {major}");
        assert_eq!(host_auth_methods(&client).await, ["md5"], "PostgreSQL {major}");
        let enc: String = client.query_one("SHOW password_encryption", &[]).await.unwrap().get(0);
        assert_eq!(enc, "md5", "PostgreSQL {major}");
        let tcp = server
            .try_connect_tcp(LOCALHOST, "postgres", "postgres", server.password())
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL {major}: md5 login failed: {e:?}"));
        assert_eq!(current_user(&tcp).await, "postgres", "PostgreSQL {major}");
    }
}

/// A superuser whose name needs quoting (and salts the md5 hash), with a chosen password, on 14.17.
#[tokio::test]
async fn superuser_names_that_need_quoting() {
    let server = Server::builder(14)
        .superuser("Qlik Admin")
        .password("pa:ss'word\\1")
        .host_auth(HostAuth::Md5)
        .setting("application_name", "it's quoted")
        .start()
        .unwrap();
    let client = server.connect("postgres").await;
    assert!(stored_password(&client, "Qlik Admin").await.starts_with("md5"));
    let tcp = server
        .try_connect_tcp(LOCALHOST, "postgres", "Qlik Admin", "pa:ss'word\\1")
        .await
        .unwrap_or_else(|e| panic!("md5 login with the chosen password failed: {e:?}"));
    assert_eq!(current_user(&tcp).await, "Qlik Admin");
    let out = server.psql("postgres").args(["-At", "-c", "SELECT current_user"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Qlik Admin\n", "{}", String::from_utf8_lossy(&out.stderr));
    let name: String = client.query_one("SELECT current_setting('application_name')", &[]).await.unwrap().get(0);
    assert_eq!(name, "it's quoted");
}

/// Trust on 12: initdb would store md5 there; the harness still stores SCRAM (password_encryption follows).
#[tokio::test]
async fn trust_host_auth_on_12() {
    let server = Server::builder(12).host_auth(HostAuth::Trust).start().unwrap();
    let client = server.connect("postgres").await;
    assert!(stored_password(&client, "postgres").await.starts_with("SCRAM-SHA-256$"));
    let tcp = server
        .try_connect_tcp(LOCALHOST, "postgres", "postgres", "anything")
        .await
        .unwrap_or_else(|e| panic!("trust accepts any password: {e:?}"));
    assert_eq!(current_user(&tcp).await, "postgres");
}

/// A reloaded pg_hba.conf applies to the next connection; restart keeps the port; stop + restart works.
#[tokio::test]
async fn reload_restart_stop() {
    let mut server = Server::start(15);
    let hba = server.data_dir().join("pg_hba.conf");
    let text = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(&hba, text.replace("127.0.0.0/8   scram-sha-256", "127.0.0.0/8   reject")).unwrap();
    server.reload();
    let err = server.try_connect_tcp(LOCALHOST, "postgres", "postgres", server.password()).await.err().unwrap();
    let db = err.as_db_error().unwrap_or_else(|| panic!("{err:?}"));
    assert!(db.message().starts_with("pg_hba.conf rejects connection"), "{db:?}");

    let port = server.port();
    server.restart();
    assert_eq!(server.port(), port);
    let client = server.connect("postgres").await;
    assert_eq!(client.query_one("SELECT 1", &[]).await.unwrap().get::<_, i32>(0), 1);
    drop(client);
    server.stop();
    assert_eq!(tcp_refusal((LOCALHOST, port)), Some(ErrorKind::ConnectionRefused), "the server is stopped");
    server.restart();
    server.connect("postgres").await;
    assert!(server.log().contains("database system is ready to accept connections"));
}

#[test]
fn namespace_has_its_own_addresses_and_hostname() {
    let ns = Namespace::builder().addr(LO2).addr(LO3).hostname("qrd-ns-test").start().unwrap();
    assert_eq!(ns.addrs(), [LO2, LO3]);
    assert_eq!(ns.hostname(), Some("qrd-ns-test"));
    let server = Server::builder(16).namespace(ns.clone()).listen(&[LOCALHOST, LO2]).start().unwrap();
    assert_eq!(server.host(), LOCALHOST);

    let out = ns.command("hostname").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "qrd-ns-test");
    assert_ne!(
        String::from_utf8_lossy(&std::process::Command::new("hostname").output().unwrap().stdout).trim(),
        "qrd-ns-test"
    );

    // Inside: a client connecting to 127.0.0.2 is seen as 127.0.0.2, one connecting to 127.0.0.1 as that.
    let server = &server;
    let (seen_via_2, seen_via_1, refused_on_3) = ns.block_on(async {
        let via = |host| async move {
            let c = server.try_connect_tcp(host, "postgres", "postgres", server.password()).await.unwrap();
            c.query_one("SELECT host(inet_client_addr())", &[]).await.unwrap().get::<_, String>(0)
        };
        let on_3 = io_failure(server.try_connect_tcp(LO3, "postgres", "postgres", server.password()).await);
        (via(LO2).await, via(LOCALHOST).await, on_3)
    });
    assert_eq!(seen_via_2, "127.0.0.2");
    assert_eq!(seen_via_1, "127.0.0.1");
    assert_eq!(refused_on_3, Ok(ErrorKind::ConnectionRefused), "the server does not listen on 127.0.0.3");

    // Outside: the host's namespace has no such listener; the unix socket still works.
    for host in [LOCALHOST, LO2] {
        assert_eq!(
            tcp_refusal((host, server.port())),
            Some(ErrorKind::ConnectionRefused),
            "{host}:{} must not be reachable from the host's namespace",
            server.port()
        );
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = server.connect("postgres").await;
        let addrs: String = client.query_one("SHOW listen_addresses", &[]).await.unwrap().get(0);
        assert_eq!(addrs, "127.0.0.1,127.0.0.2");
    });
    let out = server.psql("postgres").args(["-At", "-c", "SELECT 1"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1\n", "{}", String::from_utf8_lossy(&out.stderr));
}

/// pg_ctl enters the namespace before it switches to the server user: a restart and a reload keep the
/// server's TCP port inside its namespace, and a stop and a restart work there too.
#[test]
fn a_namespaced_server_restarts_and_reloads_inside_its_namespace() {
    let ns = Namespace::builder().addr(LO2).start().unwrap();
    let mut server = Server::builder(16).namespace(ns.clone()).listen(&[LO2]).start().unwrap();
    let port = server.port();
    let login = |server: &Server| {
        ns.block_on(async {
            let c = server.try_connect_tcp(LO2, "postgres", "postgres", server.password()).await.unwrap();
            c.query_one("SELECT pg_postmaster_start_time()::text", &[]).await.unwrap().get::<_, String>(0)
        })
    };
    let started = login(&server);
    server.restart();
    assert_eq!(server.port(), port);
    let restarted = login(&server);
    assert_ne!(started, restarted, "the postmaster was not restarted");
    assert_eq!(
        tcp_refusal((LO2, port)),
        Some(ErrorKind::ConnectionRefused),
        "the restarted server must listen in its namespace only"
    );
    server.reload();
    server.stop();
    let stopped =
        ns.block_on(async { io_failure(server.try_connect_tcp(LO2, "postgres", "postgres", server.password()).await) });
    assert_eq!(stopped, Ok(ErrorKind::ConnectionRefused), "the server is stopped");
    server.restart();
    login(&server);
}

#[test]
fn non_loopback_addresses_are_refused() {
    // Never used: refused before anything runs.
    for addr in ["10.1.2.3", "192.168.1.1", "0.0.0.0", "::", "fe80::1"] {
        let addr: IpAddr = addr.parse().unwrap();
        let err = Namespace::builder().addr(LO2).addr(addr).start().unwrap_err();
        assert!(matches!(err, HarnessError::NotLoopback { addr: a, .. } if a == addr), "{err}");
        assert!(err.to_string().contains("only loopback addresses"), "{err}");
        let err = Server::builder(16).listen(&[LOCALHOST, addr]).start().unwrap_err();
        assert!(matches!(err, HarnessError::NotLoopback { .. }), "{err}");
    }
}

/// A server that cannot start says why: the command, its output and the server's own log, then cleans up.
#[test]
fn a_failed_start_shows_the_command_and_the_server_log() {
    let err = Server::builder(16).setting("shared_buffers", "lots").start().unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, HarnessError::Start { major: 16, .. }), "{msg}");
    assert!(msg.starts_with("failed to start PostgreSQL 16"), "{msg}");
    assert!(msg.contains("pg_ctl start -D /tmp/qrd-pg-"), "{msg}");
    assert!(msg.contains(r#"invalid value for parameter "shared_buffers": "lots""#), "{msg}");
    let HarnessError::Start { data, .. } = err else { unreachable!() };
    assert!(!data.exists(), "{} should be gone", data.display());
}

// Servers and namespaces can be shared across threads: checked when this file compiles.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Server>();
    send_sync::<Namespace>();
    send_sync::<HarnessError>();
};

#[test]
fn a_missing_major_says_how_to_install() {
    let err = installation(11).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("PostgreSQL 11"), "{msg}");
    assert!(msg.contains("cargo make pg-install"), "{msg}");
    let err = Server::builder(11).start().unwrap_err();
    assert!(err.to_string().contains("cargo make pg-install"), "{err}");
}

/// Run in a child process by `a_panicking_test_prints_the_server_log`.
#[test]
#[ignore = "panics on purpose; run in a child process by a_panicking_test_prints_the_server_log"]
fn panics_with_a_server() {
    let _server = Server::start(15);
    panic!("deliberate panic");
}

#[test]
fn a_panicking_test_prints_the_server_log() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "panics_with_a_server", "--nocapture", "--test-threads=1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("deliberate panic"), "{stderr}");
    assert!(stderr.contains("===== qrd-testcontainers: PostgreSQL 15"), "{stderr}");
    assert!(stderr.contains("database system is ready to accept connections"), "{stderr}");
    assert!(stderr.contains("===== end of the server log (data /tmp/qrd-pg-"), "{stderr}");
}
