//! The test site of `sql/fixtures/`, loaded onto a throwaway server: a QSR-like repository database with the
//! real table names (optionally grown to a size in MiB for benchmarks), the three other Qlik databases and,
//! for an older site, `QLogs` with its two roles. Everything runs through the manifest's psql with
//! `ON_ERROR_STOP`, the Qlik databases' scripts logged in as the repository role itself, so every object is
//! owned by it as in a real site and a missing grant fails the load the way it would fail Qlik's services.
//!
//! ```no_run
//! use qrd_testcontainers::Server;
//! use qrd_testcontainers::fixtures::{self, Scale};
//! let server = Server::start(16);
//! fixtures::provision_like_guide(&server, "Repo-pw-1").unwrap(); // or `qrd provision`
//! fixtures::load_site(&server, Scale::QsrMib(32)).unwrap();
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use crate::{HarnessError, Server};

/// The repository role the guide creates and the scripts default to.
pub const REPO_ROLE: &str = "qliksenserepository";
/// The Qlik databases, in the order they are loaded.
pub const DATABASES: [&str; 4] = ["QSR", "SenseServices", "QSMQ", "Licenses"];
/// The older site's logging database and its roles (`qlogs.sql`).
pub const QLOGS: &str = "QLogs";
pub const QLOGS_ROLES: [&str; 2] = ["qlogs_reader", "qlogs_writer"];
/// The central node's host name in the seed: "ServerNodeConfigurations"."HostName" of the central row and
/// "LocalConfigs"."HostName" (two rows, one in capitals).
pub const CENTRAL_HOST: &str = "qlik-central.example.local";
/// The rim node's host name in the seed.
pub const RIM_HOST: &str = "qlik-rim1.example.local";
/// The file share every shared-persistence path of the seed starts with (the central machine's short name).
pub const SHARE_ROOT: &str = r"\\qlik-central\QlikShare";
/// The QSR tables that hold most of the bytes, as in a long-running site; `qsr_scale.sql` grows these.
pub const WIDE_TABLES: [&str; 6] = [
    "AppObjects",
    "ExecutionResultDetails",
    "ExecutionResultDetailExecutionResults",
    "ExecutionResults",
    "ExecutionSessions",
    "LicenseUserAccessUsages",
];

/// Where the scripts live in the repository.
const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../sql/fixtures");
/// The guide's provisioning script for PostgreSQL 15/16 (valid on 12–16), as the tests keep it.
const GUIDE_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/guide-pg15-16.sql");

/// The path of a script in `sql/fixtures/` (`qsr_schema.sql`, `qsr_seed.sql`, `qsr_scale.sql`,
/// `senseservices.sql`, `qsmq.sql`, `licenses.sql`, `qlogs.sql`).
pub fn script(name: &str) -> PathBuf {
    PathBuf::from(DIR).join(name)
}

/// How much data QSR gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// The seed only: a two-node site with a handful of everything (QSR ~10 MiB, mostly system catalogs).
    Seed,
    /// The seed, then `qsr_scale.sql` until `pg_database_size('QSR')` reaches this many MiB.
    QsrMib(u32),
}

/// What to load; [`load_site`] is the common case.
#[derive(Debug, Clone)]
pub struct Site {
    repo_role: String,
    scale: Scale,
    qlogs: bool,
}

impl Default for Site {
    fn default() -> Self {
        Site { repo_role: REPO_ROLE.to_owned(), scale: Scale::Seed, qlogs: false }
    }
}

/// Loads the four Qlik databases' fixtures (and grows QSR to `scale`) as [`REPO_ROLE`].
pub fn load_site(server: &Server, scale: Scale) -> Result<(), HarnessError> {
    Site::default().scale(scale).load(server)
}

impl Site {
    pub fn new() -> Self {
        Self::default()
    }

    /// The repository role (default [`REPO_ROLE`]): it must exist, own nothing in the four databases yet,
    /// and be allowed to create in their `public` schemas (what `qrd provision` sets up).
    pub fn repo_role(mut self, role: &str) -> Self {
        self.repo_role = role.to_owned();
        self
    }

    pub fn scale(mut self, scale: Scale) -> Self {
        self.scale = scale;
        self
    }

    /// Also create the older site's `QLogs` database with its roles (as the superuser: it creates roles).
    pub fn qlogs(mut self, yes: bool) -> Self {
        self.qlogs = yes;
        self
    }

    /// Checks that the role and the four databases exist, then runs each database's script, the seed, the
    /// scaling and `qlogs.sql` as asked. A script that fails stops the load with psql's stderr; each
    /// schema script is one transaction, so the database it failed in is left as it was.
    pub fn load(&self, server: &Server) -> Result<(), HarnessError> {
        self.check_prerequisites(server)?;
        const HINT: &str = "load a site once per server, after `qrd provision` or fixtures::provision_like_guide \
                            (the scripts create tables that must not exist yet)";
        let role_var = format!("repo_role={}", self.repo_role);
        for (db, name) in [
            ("QSR", "qsr_schema.sql"),
            ("QSR", "qsr_seed.sql"),
            ("SenseServices", "senseservices.sql"),
            ("QSMQ", "qsmq.sql"),
            ("Licenses", "licenses.sql"),
        ] {
            let mut cmd = server.psql_as(db, &self.repo_role);
            cmd.args(["-q", "-v", &role_var, "-f"]).arg(script(name));
            run_script(&mut cmd, &format!("load sql/fixtures/{name} into {db:?} as {:?}", self.repo_role), HINT)?;
        }
        if let Scale::QsrMib(mib) = self.scale {
            let mut cmd = server.psql_as("QSR", &self.repo_role);
            cmd.args(["-q", "-v", &role_var, "-v", &format!("target_mb={mib}"), "-f"]).arg(script("qsr_scale.sql"));
            run_script(
                &mut cmd,
                &format!("grow \"QSR\" to {mib} MiB with sql/fixtures/qsr_scale.sql as {:?}", self.repo_role),
                "check the server log and the free space of the data directory's file system",
            )?;
        }
        if self.qlogs {
            load_qlogs(server)?;
        }
        Ok(())
    }

    fn check_prerequisites(&self, server: &Server) -> Result<(), HarnessError> {
        let sql_error = |e: tokio_postgres::Error| HarnessError::Sql {
            action: "look up the repository role and the Qlik databases".to_owned(),
            major: server.major(),
            socket: server.socket_dir().to_owned(),
            port: server.port(),
            message: crate::server::error_text(&e),
        };
        let (role_exists, missing) = crate::server::block_on_thread(async {
            let client = server.connect_socket("postgres").await.map_err(sql_error)?;
            let row = client
                .query_one(
                    "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1),
                            ARRAY(SELECT d FROM unnest($2::text[]) d
                                   WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = d))",
                    &[&self.repo_role, &DATABASES.to_vec()],
                )
                .await
                .map_err(sql_error)?;
            Ok::<(bool, Vec<String>), HarnessError>((row.get(0), row.get(1)))
        })?;
        let reason = match (role_exists, missing.is_empty()) {
            (true, true) => return Ok(()),
            (false, _) => format!("the repository role {:?} does not exist", self.repo_role),
            (true, false) => format!("the database(s) {} do not exist", missing.join(", ")),
        };
        Err(HarnessError::Fixture {
            major: server.major(),
            port: server.port(),
            reason,
            hint: "provision the server first: `qrd provision` (tests/it's common::provision) or \
                   qrd_testcontainers::fixtures::provision_like_guide",
        })
    }
}

/// Grows QSR of a loaded site to `mib` MiB (`qsr_scale.sql`; a larger target later continues).
pub fn scale_qsr(server: &Server, mib: u32) -> Result<(), HarnessError> {
    let mut cmd = server.psql_as("QSR", REPO_ROLE);
    cmd.args(["-q", "-v", &format!("target_mb={mib}"), "-f"]).arg(script("qsr_scale.sql"));
    run_script(
        &mut cmd,
        &format!("grow \"QSR\" to {mib} MiB with sql/fixtures/qsr_scale.sql"),
        "load the site first (fixtures::load_site); check the server log and the free disk space",
    )
}

/// Creates the older site's `QLogs` database, its roles `qlogs_reader`/`qlogs_writer` and a few log rows
/// (`qlogs.sql`, as the superuser).
pub fn load_qlogs(server: &Server) -> Result<(), HarnessError> {
    let mut cmd = server.psql("postgres");
    cmd.args(["-q", "-f"]).arg(script("qlogs.sql"));
    run_script(
        &mut cmd,
        "load sql/fixtures/qlogs.sql as the superuser",
        "QLogs's tables are created once per server; load it on a fresh one",
    )
}

/// Provisions the server with the guide's own script for PostgreSQL 15/16 (`tests/fixtures/guide-pg15-16.sql`;
/// valid on 12–16): the four databases, the repository role with `password`, the grants. The script grants
/// the role to `postgres`, so the server's superuser must have that name (the default). The password reaches
/// psql through a 0600 file, never argv.
pub fn provision_like_guide(server: &Server, password: &str) -> Result<(), HarnessError> {
    if password.is_empty() || password.contains(['\n', '\r']) {
        return Err(HarnessError::Invalid {
            what: "repository password",
            reason: "it must be non-empty and on one line".to_owned(),
        });
    }
    // psql's own quoting for a meta-command argument: '' for a quote, \\ for a backslash.
    let quote = |s: &str| format!("'{}'", s.replace('\\', r"\\").replace('\'', "''"));
    let mut wrapper = tempfile::Builder::new()
        .prefix("qrd-guide-")
        .suffix(".sql")
        .tempfile()
        .map_err(|e| HarnessError::io("create a temp file in", std::env::temp_dir(), e))?;
    writeln!(wrapper, "\\set repo_password {}\n\\i {}", quote(password), quote(GUIDE_SCRIPT))
        .map_err(|e| HarnessError::io("write", wrapper.path(), e))?;
    let mut cmd = server.psql("postgres");
    cmd.args(["-q", "-f"]).arg(wrapper.path());
    run_script(
        &mut cmd,
        "provision with the guide's script tests/fixtures/guide-pg15-16.sql",
        "the guide's script runs once on a fresh server whose superuser is \"postgres\"",
    )
}

fn run_script(cmd: &mut Command, action: &str, hint: &'static str) -> Result<(), HarnessError> {
    qrd_pgbin::run_blocking(cmd, action).map(drop).map_err(|source| HarnessError::CommandHint { source, hint })
}
