//! `qrd backup` on real servers: one bundle holds the roles and every Qlik database, its manifest tells the
//! site, the row counts match the server's, standard tools read it, and verify catches damage.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use qrd_testcontainers::fixtures::{Scale, load_site};
use serde_json::Value;

use crate::common::*;

/// A provisioned server with the QSR-like site loaded.
pub(crate) fn site(major: u32) -> (Server, Scratch) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    provision(&server, &scratch, "Repo-pw-1");
    load_site(&server, Scale::Seed).unwrap();
    (server, scratch)
}

pub(crate) fn backup_cmd(server: &Server, scratch: &Scratch, dir: &Path) -> std::process::Command {
    let mut cmd = qrd(server, scratch);
    cmd.args(["backup", "--json", "--out"]).arg(dir).arg("--pg-bin-dir").arg(&server.installation().client_bin);
    cmd
}

pub(crate) fn count(server: &Server, db: &str, table: &str) -> i64 {
    block_on(async {
        server.connect(db).await.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.unwrap().get(0)
    })
}

fn tar_members(bundle: &Path) -> Vec<String> {
    let out = std::process::Command::new("tar").arg("--zstd").arg("-tf").arg(bundle).output().unwrap();
    assert!(out.status.success(), "GNU tar cannot read the bundle: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

fn backup_holds_the_site_and_verifies(major: u32) {
    let (server, scratch) = site(major);
    let dir = scratch.path().join("backups");
    std::fs::create_dir(&dir).unwrap();
    let out = run_expect(&mut backup_cmd(&server, &scratch, &dir), 0);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let bundle = PathBuf::from(report["bundle"].as_str().unwrap());
    assert_eq!(std::fs::metadata(&bundle).unwrap().permissions().mode() & 0o777, 0o600, "the bundle holds verifiers");
    let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 2, "only the bundle and the lock file: {leftovers:?}");

    // Standard tools read it: the manifest first, the checksums last, one archive per Qlik database.
    let members = tar_members(&bundle);
    assert_eq!(members.first().map(String::as_str), Some("manifest.json"));
    assert_eq!(members.last().map(String::as_str), Some("SHA256SUMS"));
    for db in DATABASES {
        assert!(members.contains(&format!("{db}/toc.dat")), "{db} missing: {members:?}");
    }

    // The manifest tells the site and the exact rows, as the server has them.
    let manifest = qrd_backup::bundle::read_manifest(&bundle).unwrap();
    let names: Vec<&str> = manifest.databases.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, DATABASES);
    let qsr = &manifest.databases[0];
    let counts = qsr.row_counts.as_ref().unwrap();
    assert!(counts.in_dump_snapshot, "the counts come from the dump's own snapshot");
    for (table, sql_name) in [("ServerNodeConfigurations", "\"ServerNodeConfigurations\""), ("Users", "\"Users\"")] {
        let rows = counts.tables.iter().find(|t| t.table == table).unwrap().rows;
        assert_eq!(rows as i64, count(&server, "QSR", sql_name), "{table}");
    }
    let site = manifest.site.as_ref().expect("the site from QSR");
    let central = site.nodes.iter().find(|n| n.is_central).unwrap();
    assert_eq!(central.host_name, "qlik-central.example.local");
    let root = site.shared_persistence.as_ref().unwrap().root_folder.clone().unwrap();
    assert!(root.contains("qlik-central"), "{root}");
    assert_eq!(manifest.source.server_major, Some(major));

    // The roles: the repository role with its stored verifier, never a plain password.
    let dest = scratch.path().join("unpacked");
    qrd_backup::bundle::extract(&bundle, &dest).unwrap();
    let globals = std::fs::read_to_string(dest.join("globals.sql")).unwrap();
    assert!(globals.contains("CREATE ROLE qliksenserepository;"), "{globals}");
    assert!(globals.contains("PASSWORD 'SCRAM-SHA-256$") || globals.contains("PASSWORD 'md5"), "{globals}");
    assert!(!globals.contains("Repo-pw-1"));

    let out = run_expect(
        qrd(&server, &scratch)
            .args(["backup", "verify", "--json"])
            .arg(&bundle)
            .arg("--pg-bin-dir")
            .arg(&server.installation().client_bin),
        0,
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["databases"].as_array().unwrap().len(), 4);
    assert!(v["databases"][0]["entries"].as_u64().unwrap() > 20, "{v}");

    let out = run_expect(qrd(&server, &scratch).args(["backup", "list", "--json"]).arg(&dir), 0);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["bundles"].as_array().unwrap().len(), 1, "{v}");

    // Monitoring: the newest bundle verifies and is fresh; an empty directory fails the check.
    let check = |d: &Path| {
        let out = run(qrd(&server, &scratch)
            .args(["check", "--json", "--backup-dir"])
            .arg(d)
            .arg("--pg-bin-dir")
            .arg(&server.installation().client_bin));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["checks"].as_array().unwrap().iter().find(|c| c["id"] == "backup.newest").cloned().unwrap()
    };
    assert_eq!(check(&dir)["status"], "ok", "{}", check(&dir));
    let empty = scratch.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert_eq!(check(&empty)["status"], "fail");
}
every_run!(backup_holds_the_site_and_verifies);

/// One flipped byte: verify refuses and names the damage; the guide's tar format is an option.
fn damage_is_caught_and_tar_format_works(major: u32) {
    let (server, scratch) = site(major);
    let dir = scratch.path().join("backups");
    std::fs::create_dir(&dir).unwrap();
    let out = run_expect(backup_cmd(&server, &scratch, &dir).args(["--format", "tar", "--name", "nightly"]), 0);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let bundle = PathBuf::from(report["bundle"].as_str().unwrap());
    assert!(bundle.ends_with("nightly.tar.zst"));
    assert!(tar_members(&bundle).contains(&"QSR.tar".to_owned()));

    let damaged = dir.join("damaged.tar.zst");
    let mut bytes = std::fs::read(&bundle).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    std::fs::write(&damaged, bytes).unwrap();
    let out = run(qrd(&server, &scratch)
        .args(["backup", "verify"])
        .arg(&damaged)
        .arg("--pg-bin-dir")
        .arg(&server.installation().client_bin));
    assert_eq!(out.status.code(), Some(5), "a damaged bundle must fail verification: {}", stderr(&out));
    assert!(stderr(&out).contains("damaged") || stderr(&out).contains("checksum"), "{}", stderr(&out));

    // One byte flipped inside QSR's archive (recompressed, so only the member's checksum can tell), and a
    // bundle cut short: verify and restore refuse, naming the member; the target gets nothing.
    let plain = zstd::decode_all(std::fs::File::open(&bundle).unwrap()).unwrap();
    let at = plain.windows(8).position(|w| w == b"QSR.tar\0").expect("QSR.tar's tar header") + 512 + 4096;
    let mut flipped = plain.clone();
    flipped[at] ^= 0x01;
    let inner = dir.join("inner.tar.zst");
    std::fs::write(&inner, zstd::encode_all(&flipped[..], 1).unwrap()).unwrap();
    let bytes = std::fs::read(&bundle).unwrap();
    let cut = dir.join("cut.tar.zst");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let target = Server::start(major);
    for (bad, says) in [(&inner, "QSR.tar"), (&cut, "QSR.tar: damaged")] {
        let out = run(qrd(&server, &scratch)
            .args(["backup", "verify"])
            .arg(bad)
            .arg("--pg-bin-dir")
            .arg(&server.installation().client_bin));
        assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
        assert!(stderr(&out).contains(says), "the member is named: {}", stderr(&out));
        let out = run(qrd(&target, &scratch)
            .arg("restore")
            .arg(bad)
            .arg("--pg-bin-dir")
            .arg(&target.installation().client_bin));
        assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
        assert!(stderr(&out).contains(says), "the member is named: {}", stderr(&out));
        assert_eq!(
            q1(
                &target,
                "SELECT count(*)::text FROM pg_database WHERE datname IN ('QSR', 'SenseServices', 'QSMQ', 'Licenses')"
            )
            .as_deref(),
            Some("0"),
            "a damaged bundle restored something"
        );
    }
}
per_major!(damage_is_caught_and_tar_format_works: pg16 = 16);

/// A database that is missing is refused before anything is written; the dry run says what it needs.
fn dry_run_and_refusals(major: u32) {
    let (server, scratch) = site(major);
    let dir = scratch.path().join("backups");
    std::fs::create_dir(&dir).unwrap();
    let out = run_expect(backup_cmd(&server, &scratch, &dir).arg("--dry-run"), 0);
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["databases"].as_array().unwrap().len(), 4);
    assert!(plan["staging_bytes"].as_u64().unwrap() > 0);
    let out = run_expect(backup_cmd(&server, &scratch, &dir).args(["--database", "NoSuchDb"]), 4);
    assert!(stderr(&out).contains("\"NoSuchDb\" does not exist"), "{}", stderr(&out));
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "a refused backup writes nothing");
}
per_major!(dry_run_and_refusals: pg16 = 16, pg12 = 12);

/// The whole round trip onto a new, bare server: the roles come back with their verifiers (the repository
/// role logs in with its old password), the databases are created owned as before, every table holds the
/// manifest's rows, and the site's host names are there. A second restore is refused (the databases hold
/// tables now) and changes nothing.
fn restore_onto_a_new_server(major: u32) {
    let (source, scratch) = site(major);
    let dir = scratch.path().join("backups");
    std::fs::create_dir(&dir).unwrap();
    let out = run_expect(&mut backup_cmd(&source, &scratch, &dir), 0);
    let bundle = serde_json::from_slice::<Value>(&out.stdout).unwrap()["bundle"].as_str().unwrap().to_owned();

    let target = Server::start(major);
    let restore = || {
        let mut cmd = qrd(&target, &scratch);
        cmd.args(["restore", "--json", &bundle, "--pg-bin-dir"]).arg(&target.installation().client_bin);
        cmd
    };
    let out = run_expect(&mut restore(), 0);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["roles_created"], serde_json::json!(["qliksenserepository"]), "{report}");
    assert!(!stderr(&out).contains("not run"), "every statement of globals.sql is understood: {}", stderr(&out));
    assert_eq!(report["databases"].as_array().unwrap().len(), 4);
    for db in DATABASES {
        assert_eq!(
            q1(&target, &format!("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{db}'")).as_deref(),
            Some(ROLE),
            "{db} owned by the repository role"
        );
    }
    for table in ["\"ServerNodeConfigurations\"", "\"Users\"", "\"ExecutionResults\""] {
        assert_eq!(count(&target, "QSR", table), count(&source, "QSR", table), "{table}");
    }
    let host: String = block_on(async {
        target
            .connect("QSR")
            .await
            .query_one("SELECT \"HostName\" FROM \"ServerNodeConfigurations\" WHERE \"IsCentral\"", &[])
            .await
            .unwrap()
            .get(0)
    });
    assert_eq!(host, "qlik-central.example.local");
    // The repository role kept its verifier: its old password works on the new server.
    block_on(async { target.try_connect_tcp(target.host(), "QSR", ROLE, "Repo-pw-1").await })
        .expect("the repository role logs in with its password after the restore");

    let before = count(&target, "QSR", "\"Users\"");
    let out = run_expect(&mut restore(), 4);
    assert!(stderr(&out).contains("already holds"), "{}", stderr(&out));
    assert_eq!(count(&target, "QSR", "\"Users\""), before, "a refused restore changed data");
}
all_majors!(restore_onto_a_new_server);

/// What pg_dump leaves out without --create, per database: the ACL items (sorted), the settings of
/// `ALTER DATABASE … SET` and `ALTER ROLE … IN DATABASE … SET` (role, sorted values) and the connection limit.
type DatabaseLevel = (Vec<String>, Vec<(String, Vec<String>)>, i32);

fn database_level(server: &Server, db: &str) -> DatabaseLevel {
    block_on(async {
        let c = server.connect("postgres").await;
        let row = c
            .query_one(
                "SELECT coalesce(datacl::text[], '{}') AS acl, datconnlimit FROM pg_database WHERE datname = $1",
                &[&db],
            )
            .await
            .unwrap();
        let mut acl: Vec<String> = row.get("acl");
        acl.sort();
        let settings = c
            .query(
                "SELECT coalesce(pg_get_userbyid(nullif(s.setrole, 0))::text, '') AS role, s.setconfig \
                   FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = $1",
                &[&db],
            )
            .await
            .unwrap();
        let mut settings: Vec<(String, Vec<String>)> = settings
            .iter()
            .map(|r| {
                let mut values: Vec<String> = r.get("setconfig");
                values.sort();
                (r.get("role"), values)
            })
            .collect();
        settings.sort();
        (acl, settings, row.get("datconnlimit"))
    })
}

/// A site whose databases carry what pg_dump leaves out without --create — grants beyond the guide's (to a
/// role whose name needs quoting, one with grant option and what that role granted on), a database with
/// PUBLIC's rights revoked, database
/// settings (a list-valued search_path with a quoted element holding a comma), a role's setting in one
/// database, a connection limit — restored onto a new, bare server: each database's ACL, settings and
/// connection limit are the source's, and the guide's provisioning is complete without `qrd provision`.
fn restore_brings_the_database_grants_and_settings(major: u32) {
    let (source, scratch) = site(major);
    let extra = "Extra \"Db\"";
    let reader = qrd_pg::quote::ident("Qlik \"Reader\", ro").unwrap();
    let extra_q = qrd_pg::quote::ident(extra).unwrap();
    block_on(async {
        let c = source.connect("postgres").await;
        for sql in [
            format!("CREATE ROLE {reader} LOGIN"),
            format!("CREATE DATABASE {extra_q} OWNER qliksenserepository"),
            format!("REVOKE ALL ON DATABASE {extra_q} FROM PUBLIC"),
            format!("GRANT CONNECT ON DATABASE {extra_q} TO {reader} WITH GRANT OPTION"),
            // An item whose grantor is not the owner.
            "CREATE ROLE qlik_audit".to_owned(),
            format!("SET ROLE {reader}; GRANT CONNECT ON DATABASE {extra_q} TO qlik_audit; RESET ROLE"),
            format!("GRANT CONNECT, TEMPORARY ON DATABASE \"QSR\" TO {reader}"),
            "ALTER DATABASE \"QSR\" SET work_mem = '8MB'".to_owned(),
            "ALTER DATABASE \"QSR\" SET search_path = \"$user\", public, \"Odd, Schema\"".to_owned(),
            format!("ALTER ROLE {reader} IN DATABASE \"QSR\" SET statement_timeout = '5min'"),
            "ALTER DATABASE \"SenseServices\" CONNECTION LIMIT 50".to_owned(),
        ] {
            c.batch_execute(&sql).await.unwrap();
        }
    });
    let dir = scratch.path().join("backups");
    std::fs::create_dir(&dir).unwrap();
    let out = run_expect(backup_cmd(&source, &scratch, &dir).args(["--database", extra]), 0);
    let bundle = serde_json::from_slice::<Value>(&out.stdout).unwrap()["bundle"].as_str().unwrap().to_owned();

    let target = Server::start(major);
    let out = run_expect(
        qrd(&target, &scratch)
            .args(["restore", "--json", &bundle, "--pg-bin-dir"])
            .arg(&target.installation().client_bin),
        0,
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let all: Vec<&str> = DATABASES.iter().copied().chain([extra]).collect();
    for db in &all {
        assert_eq!(database_level(&target, db), database_level(&source, db), "{db}");
    }
    let (_, qsr_settings, _) = database_level(&target, "QSR");
    assert_eq!(qsr_settings.len(), 2, "the database's and the role's settings: {qsr_settings:?}");
    assert_eq!(report["provisioning_differs"], serde_json::json!([]), "{report}");

    let out = run(qrd(&target, &scratch).args(["check", "--json"]));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let privileges: Vec<&Value> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"].as_str().is_some_and(|id| id.starts_with("database.") && id.ends_with(".privileges")))
        .collect();
    assert_eq!(privileges.len(), 4, "{v}");
    for p in privileges {
        assert_eq!(p["status"], "ok", "{p}");
    }
}
all_majors!(restore_brings_the_database_grants_and_settings);

pub(crate) fn q1(server: &Server, sql: &str) -> Option<String> {
    block_on(async { server.connect("postgres").await.query_one(sql, &[]).await.unwrap().get(0) })
}

/// A restore onto a machine with another host name: the central node and the LocalConfigs rows that name
/// it (whatever their case) get the new name in one transaction, the rim node keeps its own, the shared
/// folders move, and the rest of the guide's runbook is printed. The dry run shows the UPDATEs and changes
/// nothing; a wrong old name changes nothing in QSR.
fn restore_with_a_new_hostname(major: u32) {
    let (source, scratch) = site(major);
    let dir = scratch.path().join("backups");
    std::fs::create_dir(&dir).unwrap();
    let out = run_expect(&mut backup_cmd(&source, &scratch, &dir), 0);
    let bundle = serde_json::from_slice::<Value>(&out.stdout).unwrap()["bundle"].as_str().unwrap().to_owned();
    let restore = |target: &Server, extra: &[&str]| {
        let mut cmd = qrd(target, &scratch);
        cmd.args(["restore", &bundle, "--new-hostname", "qlik-new.example.local"]);
        cmd.args(["--share-path", r"\\qlik-central\QlikShare=\\qlik-new\QlikShare"]);
        cmd.args(extra).arg("--pg-bin-dir").arg(&target.installation().client_bin);
        cmd
    };
    let qsr = |target: &Server, sql: &str| -> Vec<String> {
        block_on(async {
            target.connect("QSR").await.query(sql, &[]).await.unwrap().iter().map(|r| r.get(0)).collect()
        })
    };

    let target = Server::start(major);
    let out = run_expect(&mut restore(&target, &["--dry-run"]), 0);
    assert!(stdout(&out).contains("UPDATE public.\"ServerNodeConfigurations\""), "{}", stdout(&out));
    assert!(stdout(&out).contains("'qlik-central.example.local'"), "{}", stdout(&out));
    assert_eq!(
        q1(&target, "SELECT count(*)::text FROM pg_database WHERE datname = 'QSR'").as_deref(),
        Some("0"),
        "a dry run restored"
    );

    let out = run_expect(&mut restore(&target, &[]), 0);
    assert!(stdout(&out).contains("repository.exe -bootstrap -standalone -restorehostname"), "{}", stdout(&out));
    let central = qsr(&target, "SELECT \"HostName\" FROM \"ServerNodeConfigurations\" WHERE \"IsCentral\"");
    assert_eq!(central, ["qlik-new.example.local"]);
    let rim = qsr(&target, "SELECT \"HostName\" FROM \"ServerNodeConfigurations\" WHERE NOT \"IsCentral\"");
    assert_eq!(rim, ["qlik-rim1.example.local"], "the rim node keeps its name");
    let old_left =
        qsr(&target, "SELECT \"HostName\" FROM \"LocalConfigs\" WHERE lower(\"HostName\") LIKE 'qlik-central%'");
    assert!(old_left.is_empty(), "LocalConfigs still name the old host: {old_left:?}");
    let roots = qsr(
        &target,
        "SELECT \"RootFolder\" || '|' || \"AppFolder\" FROM \"ServiceClusterSettingsSharedPersistenceProperties\"",
    );
    assert!(
        roots.iter().all(|r| !r.to_lowercase().contains("qlik-central") && r.contains(r"\\qlik-new\QlikShare")),
        "{roots:?}"
    );

    let other = Server::start(major);
    let out = run_expect(&mut restore(&other, &["--old-hostname", "no-such-host"]), 5);
    assert!(stderr(&out).contains("no central node named \"no-such-host\""), "{}", stderr(&out));
    let central = qsr(&other, "SELECT \"HostName\" FROM \"ServerNodeConfigurations\" WHERE \"IsCentral\"");
    assert_eq!(central, ["qlik-central.example.local"], "a failed rename changes nothing");
}
every_run!(restore_with_a_new_hostname);

/// A drill restores the newest bundle of a directory into scratch databases on the same server, proves
/// every row count and drops them; the Qlik databases and roles are untouched; a damaged bundle fails it.
fn drill_proves_a_bundle_and_leaves_nothing(major: u32) {
    let (server, scratch) = site(major);
    let dir = scratch.path().join("backups");
    std::fs::create_dir(&dir).unwrap();
    run_expect(&mut backup_cmd(&server, &scratch, &dir), 0);
    let databases = || q1(&server, "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database");
    let before = databases();
    let drill = |what: &Path| {
        let mut cmd = qrd(&server, &scratch);
        cmd.args(["drill", "--json"]).arg(what).arg("--pg-bin-dir").arg(&server.installation().client_bin);
        cmd
    };
    let out = run_expect(&mut drill(&dir), 0);
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["databases"].as_array().unwrap().len(), 4, "{d}");
    assert!(d["databases"][0]["rows"].as_u64().unwrap() > 100, "{d}");
    assert!(d["rto_seconds"].as_f64().unwrap() > 0.0 && d["rpo_seconds"].as_i64().unwrap() >= 0, "{d}");
    // pg_amcheck checks each scratch database on 14 and newer; older servers lack verify_heapam.
    let amcheck = d["databases"][0]["amcheck"].as_str().unwrap();
    if major >= 14 {
        assert_eq!(amcheck, "ok", "{d}");
    } else {
        assert!(amcheck.starts_with("not run: pg_amcheck needs a server of PostgreSQL 14"), "{d}");
    }
    assert_eq!(databases(), before, "the scratch databases must be gone");

    let bundle = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".tar.zst"))
        .unwrap();
    let mut bytes = std::fs::read(&bundle).unwrap();
    let n = bytes.len();
    bytes.truncate(n / 2);
    let cut = scratch.path().join("cut.tar.zst");
    std::fs::write(&cut, bytes).unwrap();
    let out = run(&mut drill(&cut));
    assert_eq!(out.status.code(), Some(5), "a truncated bundle must fail the drill: {}", stderr(&out));
    assert_eq!(databases(), before, "a failed drill leaves nothing");
}
per_major!(drill_proves_a_bundle_and_leaves_nothing: pg16 = 16, pg12 = 12);

/// The guide's "after uninstalling" case: the server is gone, its data directory is left. qrd backs it up
/// through a private server on a copy; the bundle holds the site with its rows, and the original directory
/// is not modified (every file's size and modification time as before, no postmaster.pid), and the server
/// starts on it again. A data directory with a running server is refused.
fn backup_from_a_data_directory(major: u32) {
    let (mut server, scratch) = site(major);
    let dir = scratch.path().join("backups");
    std::fs::create_dir(&dir).unwrap();
    let users = count(&server, "QSR", "\"Users\"");
    // pg_ctl must be the data directory's own major: the server's bin directory, then the client tools'.
    let from_dir = |server: &Server| {
        let mut cmd = backup_cmd(server, &scratch, &dir);
        cmd.arg("--from-data-dir").arg(server.data_dir()).arg("--pg-bin-dir").arg(&server.installation().server_bin);
        cmd
    };
    let out = run_expect(&mut from_dir(&server), 4);
    assert!(stderr(&out).contains("a server is running on"), "{}", stderr(&out));

    server.stop();
    let files = |root: &Path| {
        let mut seen = std::collections::BTreeMap::new();
        let mut todo = vec![root.to_owned()];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                let m = e.metadata().unwrap();
                if m.is_dir() {
                    todo.push(e.path());
                } else {
                    seen.insert(e.path(), (m.len(), m.modified().unwrap()));
                }
            }
        }
        seen
    };
    let before = files(server.data_dir());
    let parent_before: Vec<_> =
        std::fs::read_dir(server.data_dir().parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    let out = run_expect(&mut from_dir(&server), 0);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let bundle = PathBuf::from(report["bundle"].as_str().unwrap());
    assert_eq!(files(server.data_dir()), before, "the original data directory changed");
    let parent_after: Vec<_> =
        std::fs::read_dir(server.data_dir().parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(parent_after, parent_before, "the copy was left behind");

    let manifest = qrd_backup::bundle::read_manifest(&bundle).unwrap();
    assert_eq!(manifest.source.data_directory.as_deref(), Some(server.data_dir().to_str().unwrap()));
    let names: Vec<&str> = manifest.databases.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, DATABASES);
    let rows =
        manifest.databases[0].row_counts.as_ref().unwrap().tables.iter().find(|t| t.table == "Users").unwrap().rows;
    assert_eq!(rows as i64, users);
    run_expect(
        qrd(&server, &scratch)
            .args(["backup", "verify"])
            .arg(&bundle)
            .arg("--pg-bin-dir")
            .arg(&server.installation().client_bin),
        0,
    );
    server.restart();
    assert_eq!(count(&server, "QSR", "\"Users\""), users);
}
per_major!(backup_from_a_data_directory: pg16 = 16, pg14 = 14);

/// A user added after the backup.
const LATE_USER: &str = "INSERT INTO \"Users\" (\"ID\", \"CreatedDate\", \"ModifiedDate\", \"UserId\", \"UserDirectory\", \"Name\") \
     VALUES (md5(random()::text)::uuid, now(), now(), 'late', 'QLIK', 'Late User')";

pub(crate) fn databases_like(server: &Server, pattern: &str) -> Vec<String> {
    block_on(async {
        server
            .connect("postgres")
            .await
            .query("SELECT datname FROM pg_database WHERE datname LIKE $1 ORDER BY 1", &[&pattern])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    })
}

/// `--clean` on a server whose databases hold newer data: refused without it and while a Qlik session is
/// connected (nothing changes); the dry run names the swap; with `--yes` the session is ended, the bundle's
/// data is in place under the old names with the privileges and settings the site had given them, and
/// the previous databases are kept under `~qrd-old-` names; `--drop-old` removes what it replaced.
fn clean_restore_swaps_in_the_bundle(major: u32) {
    let (server, scratch) = site(major);
    let dir = scratch.path().join("backups");
    std::fs::create_dir(&dir).unwrap();
    let users = count(&server, "QSR", "\"Users\"");
    let out = run_expect(&mut backup_cmd(&server, &scratch, &dir), 0);
    let bundle = serde_json::from_slice::<Value>(&out.stdout).unwrap()["bundle"].as_str().unwrap().to_owned();
    // After the backup the site changes: a new user, a hardened database, a database setting.
    block_on(async {
        let c = server.connect("QSR").await;
        c.batch_execute(LATE_USER).await.unwrap();
        let p = server.connect("postgres").await;
        p.batch_execute(
            "REVOKE CONNECT ON DATABASE \"QSR\" FROM PUBLIC; GRANT CONNECT ON DATABASE \"QSR\" TO qliksenserepository; \
             ALTER DATABASE \"QSR\" SET work_mem = '8MB'",
        )
        .await
        .unwrap();
    });
    let restore = |extra: &[&str]| {
        let mut cmd = qrd(&server, &scratch);
        cmd.args(["restore", &bundle]).args(extra).arg("--pg-bin-dir").arg(&server.installation().client_bin);
        cmd
    };
    let out = run_expect(&mut restore(&[]), 4);
    assert!(stderr(&out).contains("--clean"), "{}", stderr(&out));

    // A Qlik service's session on QSR: refused without --yes, before anything is written.
    let mut qlik = server.psql("QSR");
    qlik.env("PGAPPNAME", "Qlik Repository Service").args(["-c", "SELECT pg_sleep(600)"]);
    let mut qlik = qlik.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while q1(&server, "SELECT count(*)::text FROM pg_stat_activity WHERE application_name = 'Qlik Repository Service'")
        .as_deref()
        != Some("1")
    {
        assert!(std::time::Instant::now() < deadline, "the Qlik session did not connect");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = run_expect(&mut restore(&["--clean"]), 4);
    assert!(stderr(&out).contains("Qlik Repository Service"), "{}", stderr(&out));
    assert!(databases_like(&server, "%~qrd-%").is_empty(), "a refused restore made databases");
    assert_eq!(count(&server, "QSR", "\"Users\""), users + 1);

    let out = run_expect(&mut restore(&["--clean", "--yes", "--dry-run"]), 0);
    assert!(stdout(&out).contains("would replace"), "{}", stdout(&out));
    assert!(databases_like(&server, "%~qrd-%").is_empty(), "a dry run made databases");

    let out = run_expect(&mut restore(&["--clean", "--yes", "--json"]), 0);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ended = qlik.wait().unwrap();
    assert!(!ended.success(), "--yes ends the Qlik session for the swap");
    assert_eq!(count(&server, "QSR", "\"Users\""), users, "QSR holds the bundle's data");
    let old = databases_like(&server, "QSR~qrd-old-%");
    assert_eq!(old.len(), 1, "{old:?}");
    assert_eq!(report["databases"][0]["replaced"]["kept_as"], old[0].as_str(), "{report}");
    assert_eq!(count(&server, &old[0], "\"Users\""), users + 1, "the previous QSR is kept whole");
    assert!(databases_like(&server, "%~qrd-new-%").is_empty());
    let acl = q1(&server, "SELECT datacl::text FROM pg_database WHERE datname = 'QSR'").unwrap();
    assert!(!acl.contains("=Tc/") && !acl.contains("=c/"), "PUBLIC got CONNECT back: {acl}");
    assert!(acl.contains("qliksenserepository="), "{acl}");
    let setting = q1(
        &server,
        "SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase \
         WHERE d.datname = 'QSR' AND s.setrole = 0",
    );
    assert_eq!(setting.as_deref(), Some("work_mem=8MB"));
    assert_eq!(
        q1(&server, "SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = 'QSR'").as_deref(),
        Some(ROLE)
    );

    run_expect(&mut restore(&["--clean", "--drop-old"]), 0);
    assert_eq!(databases_like(&server, "%~qrd-old-%").len(), 4, "the first run's four are kept, this run's dropped");
    assert_eq!(count(&server, "QSR", "\"Users\""), users);
}
per_major!(clean_restore_swaps_in_the_bundle: pg16 = 16, pg12 = 12);

/// `kill -9` of qrd while a `--clean` restore fills its scratch database: the originals are intact and in
/// service; the next `--clean` drops the leftover and completes.
fn clean_restore_survives_kill_9(major: u32) {
    let (server, scratch) = site(major);
    qrd_testcontainers::fixtures::scale_qsr(&server, 128).unwrap();
    let dir = scratch.path().join("backups");
    std::fs::create_dir(&dir).unwrap();
    let out = run_expect(&mut backup_cmd(&server, &scratch, &dir), 0);
    let bundle = serde_json::from_slice::<Value>(&out.stdout).unwrap()["bundle"].as_str().unwrap().to_owned();
    block_on(async {
        server.connect("QSR").await.batch_execute(LATE_USER).await.unwrap();
    });
    let users = count(&server, "QSR", "\"Users\"");
    let restore = || {
        let mut cmd = qrd(&server, &scratch);
        cmd.args(["restore", &bundle, "--clean", "--jobs", "1"])
            .arg("--pg-bin-dir")
            .arg(&server.installation().client_bin);
        cmd
    };
    let mut child = restore().stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    // Wait until the scratch QSR exists (pg_restore is filling it), then kill qrd.
    while databases_like(&server, "QSR~qrd-new-%").is_empty() {
        assert!(std::time::Instant::now() < deadline, "no scratch database appeared");
        assert!(child.try_wait().unwrap().is_none(), "the restore ended before it could be killed");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "the restore ended before it could be killed");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(count(&server, "QSR", "\"Users\""), users, "the original QSR changed");
    assert!(databases_like(&server, "%~qrd-old-%").is_empty(), "nothing was swapped");

    let out = run_expect(restore().arg("--yes"), 0);
    assert!(stderr(&out).contains("interrupted --clean restore"), "{}", stderr(&out));
    assert!(databases_like(&server, "%~qrd-new-%").is_empty(), "the leftover is gone");
    assert_eq!(count(&server, "QSR", "\"Users\""), users - 1, "the bundle's QSR is in place");
}
per_major!(clean_restore_survives_kill_9: pg16 = 16);

/// Ctrl-C in the middle of a drill: it stops, says so, and its scratch databases are gone.
fn drill_interrupted_leaves_nothing(major: u32) {
    let (server, scratch) = site(major);
    qrd_testcontainers::fixtures::scale_qsr(&server, 128).unwrap();
    let dir = scratch.path().join("backups");
    std::fs::create_dir(&dir).unwrap();
    run_expect(&mut backup_cmd(&server, &scratch, &dir), 0);
    let mut cmd = qrd(&server, &scratch);
    cmd.args(["drill", "--jobs", "1"]).arg(&dir).arg("--pg-bin-dir").arg(&server.installation().client_bin);
    let mut child = cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while databases_like(&server, "qrd_drill_%").is_empty() {
        if std::time::Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("no scratch database appeared: {}", stderr(&child.wait_with_output().unwrap()));
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let status = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(stderr(&out).contains("stopped by SIGINT"), "{}", stderr(&out));
    assert!(databases_like(&server, "qrd_drill_%").is_empty(), "the drill's scratch databases are left");
}
per_major!(drill_interrupted_leaves_nothing: pg16 = 16);

/// The bundle files of `dir`, sorted (the lock file and anything else left out).
fn bundles_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tar.zst"))
        .collect();
    names.sort();
    names
}

/// `qrd backup prune` on real bundles. Bundles of a `major` server, an older one of a `major - 1` server:
/// with only `major - 1`'s pg_restore at hand the newer bundles cannot be checked, so they are kept and
/// named and prune exits 5, although the older bundle verifies (a nightly prune whose PATH lags a server
/// upgrade must not delete every new backup), and `qrd check` does not call them damaged; with the right
/// tools the policy deletes the older ones; a newest bundle with a flipped byte is damaged: reported,
/// deleted, and the one before it stays.
fn prune_keeps_what_it_cannot_check(major: u32) {
    let (old_server, scratch) = site(major - 1);
    let old_bin = old_server.installation().client_bin.clone();
    let dir = scratch.path().join("backups");
    std::fs::create_dir(&dir).unwrap();
    run_expect(backup_cmd(&old_server, &scratch, &dir).args(["--name", "a-older-major"]), 0);
    drop(old_server);
    let (server, _) = site(major);
    for name in ["b", "c", "d"] {
        run_expect(backup_cmd(&server, &scratch, &dir).args(["--name", name]), 0);
    }
    let all = ["a-older-major.tar.zst", "b.tar.zst", "c.tar.zst", "d.tar.zst"];
    assert_eq!(bundles_in(&dir), all);
    let prune = |bin: &Path, args: &[&str]| {
        let mut cmd = qrd(&server, &scratch);
        cmd.args(["backup", "prune"]).arg(&dir).args(args).arg("--pg-bin-dir").arg(bin);
        cmd
    };

    // (b) PostgreSQL `major - 1`'s tools only: nothing newer than the verified bundle is deleted.
    let out = run_expect(&mut prune(&old_bin, &["--keep-last", "1"]), 5);
    assert_eq!(bundles_in(&dir), all, "prune deleted bundles it could not check");
    let text = stderr(&out);
    for newer in ["b.tar.zst", "c.tar.zst", "d.tar.zst"] {
        assert!(text.contains(newer), "{newer} is not named: {text}");
    }
    assert!(text.contains("could not be checked"), "{text}");
    assert!(text.contains(&format!("no usable pg_restore for the server's PostgreSQL {major}")), "{text}");
    let check = run(qrd(&server, &scratch)
        .args(["check", "--json", "--backup-dir"])
        .arg(&dir)
        .arg("--pg-bin-dir")
        .arg(&old_bin));
    let v: Value = serde_json::from_slice(&check.stdout).unwrap();
    let newest = v["checks"].as_array().unwrap().iter().find(|c| c["id"] == "backup.newest").cloned().unwrap();
    let message = newest["message"].as_str().unwrap();
    assert_eq!(newest["status"], "warn", "{newest}");
    assert!(message.contains("could not be checked") && !message.contains("damaged"), "{newest}");

    // (a) The right tools: the newest verifies, the policy keeps two, the dry run deletes nothing.
    let bin = server.installation().client_bin.clone();
    let out = run_expect(&mut prune(&bin, &["--keep-last", "2", "--dry-run"]), 0);
    assert!(stdout(&out).contains("would delete b.tar.zst"), "{}", stdout(&out));
    assert_eq!(bundles_in(&dir), all, "a dry run deleted");
    run_expect(&mut prune(&bin, &["--keep-last", "2"]), 0);
    assert_eq!(bundles_in(&dir), ["c.tar.zst", "d.tar.zst"]);

    // (c) The newest is damaged: it fills no slot and goes; the one before it verifies and stays.
    let newest = dir.join("d.tar.zst");
    let mut bytes = std::fs::read(&newest).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    std::fs::write(&newest, bytes).unwrap();
    let out = run_expect(&mut prune(&bin, &["--keep-last", "1", "--json"]), 0);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["checked"][0]["file_name"], "d.tar.zst", "{report}");
    assert_eq!(report["checked"][0]["verdict"], "damaged", "{report}");
    assert_eq!(report["checked"][1]["verdict"], "verified", "{report}");
    assert_eq!(report["plan"]["delete"], serde_json::json!([{"file_name": "d.tar.zst", "reason": "damaged"}]));
    assert_eq!(bundles_in(&dir), ["c.tar.zst"]);
}
per_major!(prune_keeps_what_it_cannot_check: pg16 = 16);
