//! The Debian-packaged cluster harness, and the product's pg_ctl control on such a cluster: the server's TLS
//! key is readable only through the `ssl-cert` group, so pg_ctl run as `postgres` without its supplementary
//! groups cannot start it. Needs root (as CI runs).

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;

use qrd_server::{PgCtl, StopMode};
use qrd_testcontainers::{DebianCluster, SNAKEOIL_KEY};

async fn show(cluster: &DebianCluster, name: &str) -> String {
    cluster.connect("postgres").await.query_one(&format!("SHOW {name}"), &[]).await.unwrap().get(0)
}

async fn start_time(cluster: &DebianCluster) -> String {
    let c = cluster.connect("postgres").await;
    c.query_one("SELECT pg_postmaster_start_time()::text", &[]).await.unwrap().get(0)
}

/// The cluster is what Debian makes: packaged layout, peer on the socket, TLS with the snakeoil key
/// (readable through ssl-cert only), loopback only; dropping it removes everything.
#[tokio::test]
async fn a_debian_cluster_is_packaged_like_debians_and_goes_away() {
    let cluster = DebianCluster::start();
    assert!(cluster.config_file().exists());
    assert!(cluster.data_dir().join("PG_VERSION").exists());
    assert!(!cluster.data_dir().join("postgresql.conf").exists(), "configuration lives in /etc, not the data dir");
    assert_eq!(show(&cluster, "ssl").await, "on");
    assert_eq!(show(&cluster, "ssl_key_file").await, SNAKEOIL_KEY);
    assert_eq!(show(&cluster, "listen_addresses").await, "127.0.0.1");
    assert_eq!(show(&cluster, "unix_socket_directories").await, cluster.socket_dir().to_string_lossy());
    let key = std::fs::metadata(SNAKEOIL_KEY).unwrap();
    assert_eq!(key.mode() & 0o777, 0o640);
    assert_eq!(key.uid(), 0);
    let hba = std::fs::read_to_string(cluster.config_dir().join("pg_hba.conf")).unwrap();
    assert!(
        hba.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["local", "all", "postgres", "peer"]),
        "{hba}"
    );
    assert_eq!(cluster.psql_as_owner("SELECT current_user").unwrap(), "postgres\n");
    assert!(cluster.is_running());

    let (config, data, log, port) = (cluster.config_dir(), cluster.data_dir(), cluster.log_path(), cluster.port());
    drop(cluster);
    assert!(!config.exists() && !data.exists() && !log.exists(), "pg_dropcluster left files behind");
    let refused = std::net::TcpStream::connect(("127.0.0.1", port)).err().map(|e| e.kind());
    assert_eq!(refused, Some(std::io::ErrorKind::ConnectionRefused), "port {port} still accepts connections");
}

/// pg_ctl as the data directory's owner keeps the owner's groups, so the server can read its key again
/// after a restart. The same restart without the supplementary groups (what `Command::uid`/`gid` do, and
/// what qrd did before) cannot: that is checked first, so this test cannot pass by accident.
#[tokio::test]
async fn pg_ctl_restarts_a_debian_cluster_as_the_owner_with_its_groups() {
    let cluster = DebianCluster::start();
    let pg_ctl = cluster.bin_dir().join("pg_ctl");
    let before = start_time(&cluster).await;

    // Without groups: stop works (signals need no key), the start cannot read the key.
    let meta = std::fs::metadata(cluster.data_dir()).unwrap();
    let mut cmd = std::process::Command::new(&pg_ctl);
    cmd.args(["restart", "-m", "fast", "-w", "-t", "60", "-D"])
        .arg(cluster.data_dir())
        .arg("-l")
        .arg(cluster.log_path())
        .current_dir("/")
        .uid(meta.uid())
        .gid(meta.gid());
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "the key was readable without the ssl-cert group: the test proves nothing");
    assert!(cluster.log().contains("could not access private key file"), "{}", cluster.log_excerpt());
    assert!(!cluster.is_running());

    // The product's control: the owner with its groups, started with the options the server last had
    // (its configuration lives in /etc), logging to the packaged log file as before.
    let ctl = PgCtl::for_owner(&pg_ctl, cluster.data_dir()).unwrap().log_file(cluster.log_path());
    assert!(ctl.identity().is_some_and(|id| id.name() == Some("postgres")), "{ctl:?}");
    ctl.start_as_before().await.unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(start_time(&cluster).await, before);
    // A restart with no log file given keeps the one the running server writes to.
    let ctl = PgCtl::for_owner(&pg_ctl, cluster.data_dir()).unwrap();
    ctl.restart(StopMode::Fast).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(show(&cluster, "ssl").await, "on");
    assert_eq!(cluster.log().matches("database system is ready to accept connections").count(), 3, "{}", cluster.log());
    ctl.reload().await.unwrap();
    assert!(matches!(ctl.status().await.unwrap(), qrd_server::pgctl::Status::Running { pid: Some(_) }));
    ctl.stop(StopMode::Fast).await.unwrap();
    assert_eq!(ctl.status().await.unwrap(), qrd_server::pgctl::Status::Stopped);
    assert!(!cluster.is_running());
}

/// The service detection picks pg_ctlcluster for a packaged cluster, and its restart brings it back.
#[tokio::test]
async fn a_debian_cluster_restarts_through_pg_ctlcluster() {
    let cluster = DebianCluster::start();
    let before = start_time(&cluster).await;
    let service = qrd_server::Service::detect(&cluster.data_dir(), &cluster.config_file(), || {
        Err::<PgCtl, _>("pg_ctl must not be needed")
    })
    .unwrap();
    assert_eq!(service.to_string(), format!("pg_ctlcluster 15 {}", cluster.name()));
    assert!(service.is_running().await.unwrap());
    service.restart().await.unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(start_time(&cluster).await, before);
    assert_eq!(show(&cluster, "ssl").await, "on");
}
