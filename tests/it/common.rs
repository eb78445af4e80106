//! Helpers shared by the integration tests: running qrd, reading the catalog, snapshots.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

pub use qrd_testcontainers::{DebianCluster, HostAuth, Server};

/// `per_major!(name: pg16 = 16, pg15 = 15)` generates `mod name { #[test] fn pg16() { super::name(16) } … }`.
macro_rules! per_major {
    ($test:ident: $($pg:ident = $major:literal),+ $(,)?) => {
        mod $test {
            $( #[test] fn $pg() { super::$test($major) } )+
        }
    };
}

/// Every supported major: 16 and 15 (every run) and the smoke set, 14.17 and 12.
macro_rules! all_majors {
    ($test:ident) => {
        $crate::common::per_major!($test: pg16 = 16, pg15 = 15, pg14 = 14, pg12 = 12);
    };
}

/// The majors of every run only.
macro_rules! every_run {
    ($test:ident) => {
        $crate::common::per_major!($test: pg16 = 16, pg15 = 15);
    };
}

pub(crate) use {all_majors, every_run, per_major};

/// Snapshot of qrd's output with the unstable parts (ports, temp paths) replaced.
macro_rules! qrd_snapshot {
    ($name:expr, $value:expr) => {
        insta::with_settings!({
            snapshot_path => "../snapshots",
            prepend_module_to_snapshot => false,
            filters => vec![
                (r"(127\.0\.0\.1|localhost):\d+", "$1:[PORT]"),
                (r"\.s\.PGSQL\.\d+", ".s.PGSQL.[PORT]"),
                (r"port = \d+, not the repository's 4432: every node's connection strings must name \d+",
                 "port = [PORT], not the repository's 4432: every node's connection strings must name [PORT]"),
                (r"/tmp/[^\s:/]+", "/tmp/[TMP]"),
            ],
        }, {
            insta::assert_snapshot!($name, $value);
        });
    };
}
pub(crate) use qrd_snapshot;

pub const ROLE: &str = "qliksenserepository";
pub const DATABASES: [&str; 4] = ["QSR", "SenseServices", "QSMQ", "Licenses"];

/// Runs a future to completion on a fresh current-thread runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

/// A scratch directory for password files and the like (its own HOME, so no ~/.pgpass leaks in).
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap() }
    }

    /// Writes a 0600 file and returns its path.
    pub fn secret_file(&self, name: &str, content: &str) -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The `qrd` binary with a clean environment pointing at `server` (password through PGPASSWORD, which only
/// this child sees), HOME in `scratch`, no colour.
pub fn qrd(server: &Server, scratch: &Scratch) -> Command {
    let mut cmd = qrd_bare(scratch);
    for (k, v) in server.client_env() {
        cmd.env(k, v);
    }
    cmd
}

/// The `qrd` binary with no server settings at all.
pub fn qrd_bare(scratch: &Scratch) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_qrd"));
    for (k, _) in std::env::vars_os() {
        if k.to_str().is_some_and(|k| k.starts_with("PG") || k.starts_with("QRD_")) {
            cmd.env_remove(k);
        }
    }
    cmd.env("HOME", scratch.path()).env("NO_COLOR", "1");
    cmd
}

/// The command as a shell line for logs, with PGPASSWORD's value hidden (even a throwaway server's password
/// stays out of logs).
pub fn shown(cmd: &Command) -> String {
    let mut parts: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| {
            let k = k.to_string_lossy();
            let v = if k.contains("PASSWORD") { "***".into() } else { v?.to_string_lossy() };
            Some(format!("{k}={v:?}"))
        })
        .collect();
    parts.push(format!("{:?}", cmd.get_program()));
    parts.extend(cmd.get_args().map(|a| format!("{a:?}")));
    parts.join(" ")
}

/// Runs `cmd`, returning its output; the command and its output are printed so a failing test shows them.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("failed to start qrd");
    eprintln!(
        "$ {}\nexit: {:?}\n--- stdout\n{}--- stderr\n{}---",
        shown(cmd),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `cmd` and asserts the exit code.
pub fn run_expect(cmd: &mut Command, code: i32) -> Output {
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(code), "unexpected exit code (output above)");
    out
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `qrd provision` with a repository password file; asserts success.
pub fn provision(server: &Server, scratch: &Scratch, password: &str) -> Output {
    let pw = scratch.secret_file("repo-password", password);
    run_expect(qrd(server, scratch).arg("provision").arg("--repo-password-file").arg(pw), 0)
}

/// What the server holds that provisioning is about, in comparable form. Every field comes from the
/// catalogs: pg_roles/pg_authid, pg_auth_members, pg_database (encoding, owner, raw datacl and its
/// aclexplode rows) and, inside each database, pg_namespace's public schema ACL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogState {
    /// rolname → `login inherit super createdb createrole replication validuntil`.
    pub roles: BTreeMap<String, String>,
    /// `role → member` pairs involving the repository role.
    pub memberships: Vec<String>,
    /// datname → (encoding, owner, datacl text, sorted aclexplode rows).
    pub databases: BTreeMap<String, DbState>,
    /// The repository role's stored password verifier type (`SCRAM-SHA-256`, `md5…`, or none).
    pub hash_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbState {
    pub encoding: String,
    pub owner: String,
    pub datacl: Option<String>,
    pub acl_rows: Vec<String>,
    pub public_nspacl: Option<String>,
    pub public_acl_rows: Vec<String>,
}

pub async fn catalog_state(server: &Server, role: &str) -> CatalogState {
    let c = server.connect("postgres").await;
    let mut roles = BTreeMap::new();
    for r in c
        .query(
            "SELECT rolname::text, concat_ws(' ', rolcanlogin, rolinherit, rolsuper, rolcreatedb, rolcreaterole,
                    rolreplication, coalesce(rolvaliduntil::text, 'null'))
               FROM pg_roles WHERE rolname = $1",
            &[&role],
        )
        .await
        .unwrap()
    {
        roles.insert(r.get(0), r.get(1));
    }
    let memberships = c
        .query(
            "SELECT r.rolname || ' -> ' || m.rolname FROM pg_auth_members am
               JOIN pg_roles r ON r.oid = am.roleid JOIN pg_roles m ON m.oid = am.member
              WHERE r.rolname = $1 OR m.rolname = $1 ORDER BY 1",
            &[&role],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let hash_type = c
        .query_opt("SELECT split_part(rolpassword, '$', 1) FROM pg_authid WHERE rolname = $1", &[&role])
        .await
        .unwrap()
        .and_then(|r| r.get::<_, Option<String>>(0))
        .map(|h| if h.starts_with("md5") { "md5".to_owned() } else { h });
    let mut databases = BTreeMap::new();
    for r in c
        .query(
            "SELECT datname::text, pg_encoding_to_char(encoding), pg_get_userbyid(datdba)::text, datacl::text,
                    coalesce((SELECT array_agg(coalesce(pg_get_userbyid(nullif(a.grantee, 0))::text, 'PUBLIC')
                                 || ' ' || a.privilege_type || ' by ' || pg_get_userbyid(a.grantor)
                                 || CASE WHEN a.is_grantable THEN ' grantable' ELSE '' END ORDER BY 1)
                                FROM aclexplode(datacl) a), '{}')
               FROM pg_database WHERE datname = ANY($1) ORDER BY 1",
            &[&DATABASES.to_vec()],
        )
        .await
        .unwrap()
    {
        let name: String = r.get(0);
        let db = server.connect(&name).await;
        let ns = db
            .query_one(
                "SELECT nspacl::text,
                        coalesce((SELECT array_agg(coalesce(pg_get_userbyid(nullif(a.grantee, 0))::text, 'PUBLIC')
                                     || ' ' || a.privilege_type ORDER BY 1) FROM aclexplode(nspacl) a), '{}')
                   FROM pg_namespace WHERE nspname = 'public'",
                &[],
            )
            .await
            .unwrap();
        databases.insert(
            name,
            DbState {
                encoding: r.get(1),
                owner: r.get(2),
                datacl: r.get(3),
                acl_rows: r.get(4),
                public_nspacl: ns.get(0),
                public_acl_rows: ns.get(1),
            },
        );
    }
    CatalogState { roles, memberships, databases, hash_type }
}

/// Whether `user` can log in over TCP with `password` to `db`.
pub async fn can_login(server: &Server, db: &str, user: &str, password: &str) -> Result<(), String> {
    server
        .try_connect_tcp(server.host(), db, user, password)
        .await
        .map(|_| ())
        .map_err(|e| e.as_db_error().map(|d| d.message().to_owned()).unwrap_or_else(|| e.to_string()))
}

/// A test CA and a server certificate it signed for `names` (IP addresses become IP SANs), as PEM.
pub struct PemPki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: Vec<u8>,
}

impl PemPki {
    pub fn new(prefix: &str, names: &[&str]) -> PemPki {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, format!("{prefix} test CA"));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        let cert = params.signed_by(&key, &ca).unwrap();
        PemPki { ca_pem: ca.pem(), cert_pem: cert.pem(), key_pem: key.serialize_pem(), cert_der: cert.der().to_vec() }
    }
}

/// role → hash type (`md5`, `scram`, `none`) of every login role, as pg_authid stores it.
pub fn hashes(server: &Server) -> Vec<(String, String)> {
    block_on(async {
        let c = server.connect("postgres").await;
        c.query(
            "SELECT rolname::text, CASE WHEN rolpassword LIKE 'md5%' THEN 'md5'
                                        WHEN rolpassword LIKE 'SCRAM-SHA-256$%' THEN 'scram' ELSE 'none' END
               FROM pg_authid WHERE rolcanlogin ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
    })
}

/// A real TCP login (no TLS) from 127.0.0.1 as `user`: `Ok` or the server's message.
pub fn login(server: &Server, user: &str, pw: &str) -> Result<(), String> {
    block_on(async {
        server
            .try_connect_tcp(std::net::Ipv4Addr::LOCALHOST.into(), "postgres", user, pw)
            .await
            .map(|_| ())
            .map_err(|e| e.as_db_error().map(|d| d.message().to_owned()).unwrap_or_else(|| e.to_string()))
    })
}

/// The first column of the one row `sql` returns, as the superuser in `postgres`.
pub fn q1(server: &Server, sql: &str) -> Option<String> {
    block_on(async { server.connect("postgres").await.query_one(sql, &[]).await.unwrap().get(0) })
}

/// Runs `sql` as the superuser in `postgres`.
pub fn exec(server: &Server, sql: &str) {
    block_on(async { server.connect("postgres").await.batch_execute(sql).await.unwrap() })
}
