//! The checks, in the order they are reported. Later features add entries here.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;

use qrd_conf::hba::{Address, Client, ConnType, Facts, HbaFile, Method, Outcome, Request, Roles};
use qrd_exit::UserError;
use qrd_pg::inventory::DbInfo;
use qrd_pg::password::verifier::HashType;
use qrd_pg::spec::{RoleAttrs, SUPPORTED_MAJORS};
use qrd_pgbin::shell_quote;

use crate::{Context, Finding};

/// A registered check: a stable id prefix, what it verifies, and the function producing its findings.
pub struct CheckDef {
    pub id: &'static str,
    pub about: &'static str,
    pub run: fn(&Context<'_>) -> Vec<Finding>,
}

pub static CHECKS: &[CheckDef] = &[
    CheckDef { id: "server.version", about: "the server's major version is one qrd supports (12–16)", run: version },
    CheckDef { id: "role", about: "the repository role exists with the guide's attributes and a password", run: role },
    CheckDef {
        id: "database",
        about: "the four Qlik databases: exist, UTF8, owner, privileges, schema public",
        run: databases,
    },
    CheckDef {
        id: "server.password_encryption",
        about: "new passwords are stored as SCRAM-SHA-256",
        run: password_encryption,
    },
    CheckDef { id: "auth.md5_hashes", about: "no login role still has an md5 password hash", run: md5_hashes },
    CheckDef {
        id: "auth.hba",
        about: "pg_hba.conf: md5 rules (warn), trust or password on TCP (fail)",
        run: hba_methods,
    },
    CheckDef { id: "server.ssl", about: "the server offers TLS", run: ssl },
    CheckDef {
        id: "server.ssl_certificate",
        about: "the server certificate is readable, matches its key and is not about to expire",
        run: crate::tls_checks::certificate,
    },
    CheckDef {
        id: "server.ssl_min_protocol_version",
        about: "TLS 1.2 or newer only (the guide's \"Forcing the database connection to use TLS 1.2 only\")",
        run: crate::tls_checks::tls_min_version,
    },
    CheckDef {
        id: "server.listen_addresses",
        about: "the server listens beyond loopback, so Qlik nodes can reach it",
        run: listen_addresses,
    },
    CheckDef { id: "server.port", about: "the server uses the repository's port, 4432", run: port },
    CheckDef {
        id: "server.max_connections",
        about: "max_connections covers the nodes' repository pools (the guide: 110 per node)",
        run: max_connections,
    },
    CheckDef {
        id: "hba.node",
        about: "pg_hba.conf lets each --node reach every Qlik database as the repository role, by password",
        run: hba_nodes,
    },
    CheckDef {
        id: "client-tools",
        about: "pg_dump/pg_restore fitting the server's major are installed here",
        run: client_tools,
    },
    CheckDef {
        id: "replication",
        about: "standbys stream without lagging past 64 MiB or 60 s; no inactive slot holds WAL; a standby's receiver streams",
        run: replication,
    },
    CheckDef {
        id: "backup.newest",
        about: "with --backup-dir: the newest bundle that verifies is younger than 26 hours (fails past 50)",
        run: backups,
    },
];

fn backups(ctx: &Context<'_>) -> Vec<Finding> {
    let Some(b) = &ctx.site.backups else { return Vec::new() };
    let id = "backup.newest";
    let run = format!("run `qrd backup --out {}` (and schedule it nightly)", qrd_pgbin::shell_quote(&b.dir));
    if let Some(reason) = &b.unreadable {
        return vec![Finding::fail(
            id,
            format!("cannot read the backup directory {}: {reason}", b.dir),
            "check the path and this user's rights",
        )];
    }
    let mut damaged = String::new();
    if !b.damaged.is_empty() {
        damaged = format!("; {} newer bundle(s) are damaged: {}", b.damaged.len(), b.damaged.join(", "));
    }
    // A bundle that could not be checked here is not called damaged: the next step is to make it checkable.
    let unchecked_hint = b.not_checked.first().map(|n| n.hint.clone());
    if let Some(first) = b.not_checked.first() {
        let files: Vec<&str> = b.not_checked.iter().map(|n| n.file.as_str()).collect();
        let why = first.reason.lines().next().unwrap_or_default();
        damaged.push_str(&format!(
            "; {} newer bundle(s) could not be checked here: {} ({}: {why})",
            files.len(),
            files.join(", "),
            first.file
        ));
    }
    let retry = "check the nightly job's log (cron or systemd), then run it again".to_owned();
    vec![match &b.newest_verified {
        None if b.bundles == 0 => Finding::fail(id, format!("no bundle in {}", b.dir), run),
        None => Finding::fail(
            id,
            format!("none of the {} bundle(s) in {} is known to verify{damaged}", b.bundles, b.dir),
            unchecked_hint.unwrap_or(run),
        ),
        Some((file, hours)) if *hours > crate::BACKUP_FAIL_HOURS => {
            Finding::fail(id, format!("the newest verified bundle, {file}, is {hours:.0} hours old{damaged}"), run)
        }
        Some((file, hours))
            if *hours > crate::BACKUP_WARN_HOURS || !b.damaged.is_empty() || !b.not_checked.is_empty() =>
        {
            let hint = match unchecked_hint {
                Some(h) if *hours <= crate::BACKUP_WARN_HOURS && b.damaged.is_empty() => h,
                _ => retry,
            };
            Finding::warn(id, format!("the newest verified bundle, {file}, is {hours:.0} hours old{damaged}"), hint)
        }
        Some((file, hours)) => Finding::ok(id, format!("{file} verifies and is {hours:.0} hours old")),
    }]
}

fn replication(ctx: &Context<'_>) -> Vec<Finding> {
    use qrd_replica::status::Status;
    let mib = |b: i64| format!("{:.1} MiB", b as f64 / 1048576.0);
    let Some(st) = &ctx.site.replication else { return Vec::new() };
    let mut out = Vec::new();
    match st {
        Status::Primary { standbys, slots, .. } => {
            for s in standbys {
                let id = "replication.standby";
                let behind = s.lag_bytes.is_some_and(|b| b > crate::LAG_WARN_BYTES)
                    || s.lag_seconds.is_some_and(|t| t > crate::LAG_WARN_SECONDS);
                let lag = format!(
                    "{} / {}",
                    s.lag_bytes.map(mib).unwrap_or_else(|| "?".into()),
                    s.lag_seconds.map(|t| format!("{t:.1} s")).unwrap_or_else(|| "?".into())
                );
                out.push(if s.state != "streaming" {
                    Finding::warn(
                        id,
                        format!(
                            "standby {} ({}) is {}, not streaming",
                            s.name,
                            s.address.as_deref().unwrap_or("?"),
                            s.state
                        ),
                        "`qrd standby status` on the standby; its log says why",
                    )
                } else if behind {
                    Finding::warn(
                        id,
                        format!("standby {} lags {lag}", s.name),
                        "check the standby's disk and network; a failover now would lose that much",
                    )
                } else {
                    Finding::ok(id, format!("standby {} streams, lag {lag}", s.name))
                });
            }
            for slot in slots.iter().filter(|s| !s.active) {
                let held = slot.retained_bytes.unwrap_or(0);
                if held > crate::SLOT_WARN_BYTES || standbys.is_empty() {
                    out.push(Finding::warn(
                        "replication.slot",
                        format!("slot {} is inactive and holds {} of WAL", slot.name, mib(held)),
                        format!(
                            "bring its standby back, or drop it: SELECT pg_drop_replication_slot({})",
                            qrd_pg::quote::literal(&slot.name).unwrap_or_default()
                        ),
                    ));
                }
            }
        }
        Status::Standby { receiver } => {
            let id = "replication.receiver";
            let status = receiver.status.as_deref().unwrap_or("not running");
            out.push(if status != "streaming" {
                Finding::warn(
                    id,
                    format!("this standby's WAL receiver is {status}"),
                    "check primary_conninfo, the primary's pg_hba.conf replication rule and the standby's log",
                )
            } else if receiver.replay_lag_bytes.is_some_and(|b| b > crate::LAG_WARN_BYTES) {
                Finding::warn(
                    id,
                    format!("replay is {} behind what was received", mib(receiver.replay_lag_bytes.unwrap_or(0))),
                    "the standby cannot keep up: check its disk and CPU",
                )
            } else {
                Finding::ok(
                    id,
                    format!(
                        "streaming from {} on timeline {}",
                        receiver.sender.as_deref().unwrap_or("?"),
                        receiver.timeline.unwrap_or(0)
                    ),
                )
            });
        }
    }
    out
}

fn provision_hint(ctx: &Context<'_>) -> String {
    provision_hint_with(ctx, "")
}

/// ``run `qrd provision [--repo-user R] <extra>` `` (the whole command inside the backticks).
fn provision_hint_with(ctx: &Context<'_>, extra: &str) -> String {
    let mut cmd = String::from("qrd provision");
    if ctx.spec.role != qrd_pg::spec::DEFAULT_REPO_ROLE {
        cmd.push_str(&format!(" --repo-user {}", shell_quote(&ctx.spec.role)));
    }
    if !extra.is_empty() {
        cmd.push(' ');
        cmd.push_str(extra);
    }
    format!("run `{cmd}`")
}

fn version(ctx: &Context<'_>) -> Vec<Finding> {
    let v = &ctx.inventory.version;
    let id = "server.version";
    if SUPPORTED_MAJORS.contains(&v.major) {
        let note = if v.major == 14 { " (the major Qlik bundles, 14.17)" } else { "" };
        vec![Finding::ok(id, format!("PostgreSQL {v}{note} is supported"))]
    } else {
        vec![Finding::fail(
            id,
            format!(
                "PostgreSQL {v} is not supported (supported: {}–{})",
                SUPPORTED_MAJORS.start(),
                SUPPORTED_MAJORS.end()
            ),
            "run the repository on PostgreSQL 12–16; Qlik bundles 14.17",
        )]
    }
}

fn role(ctx: &Context<'_>) -> Vec<Finding> {
    let role = &ctx.spec.role;
    let Some(info) = &ctx.inventory.role else {
        return vec![Finding::fail("role.exists", format!("role {role:?} does not exist"), provision_hint(ctx))];
    };
    let mut out = vec![Finding::ok("role.exists", format!("role {role:?} exists"))];

    let diffs = info.attrs.differences(&RoleAttrs::EXPECTED);
    let id = "role.attributes";
    if diffs.is_empty() {
        out.push(Finding::ok(id, "LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION, never expires"));
    } else {
        let list: Vec<String> = diffs.iter().map(|(found, wanted)| format!("{found} (guide: {wanted})")).collect();
        // Fatal: Qlik cannot log in, or the role holds powers far beyond what it needs. The rest work but
        // deviate from the guide.
        let fatal = !info.attrs.login || info.attrs.superuser || info.expired;
        let expiry = info.valid_until.as_deref().filter(|_| !info.attrs.never_expires);
        let message = match expiry {
            Some(date) if info.expired => {
                format!("{}; the password expired at {date}: password logins fail", list.join(", "))
            }
            Some(date) => format!("{}; password valid until {date}", list.join(", ")),
            None => list.join(", "),
        };
        let hint = format!("{} (it sets the guide's attributes)", provision_hint(ctx));
        out.push(if fatal { Finding::fail(id, message, hint) } else { Finding::warn(id, message, hint) });
    }

    let id = "role.password";
    match info.password.as_ref().map(|p| p.hash_type) {
        None => out.push(Finding::skip(
            id,
            format!("cannot see how the password is stored: {}", unreadable(ctx, "pg_authid")),
            "run qrd check as a superuser to see it; `qrd provision --repo-password-file FILE` proves the password \
             by a login as the role",
        )),
        Some(HashType::ScramSha256) => out.push(Finding::ok(id, "password stored as SCRAM-SHA-256")),
        Some(HashType::Md5) => out.push(Finding::warn(
            id,
            "password stored as md5",
            "set password_encryption = 'scram-sha-256', then set the password again (the guide's \"Changing from \
             MD5 to SCRAM encryption\")",
        )),
        Some(HashType::None) => out.push(Finding::fail(
            id,
            "the role has no password: Qlik's services cannot log in with password authentication",
            provision_hint_with(ctx, "--repo-password-file FILE"),
        )),
        Some(HashType::Other) => out.push(Finding::fail(
            id,
            "the password is stored in an unrecognised (possibly plaintext) form",
            format!("set it again: {}", provision_hint_with(ctx, "--repo-password-file FILE")),
        )),
    }

    // For a superuser the guide's explicit grant; for an admin that is no superuser (a managed server's),
    // what lets it own and grant for the role: SET ROLE to it and its privileges.
    let me = &ctx.inventory.current_user;
    let id = "role.granted";
    let how = if ctx.inventory.is_superuser { "" } else { " (it may SET ROLE to it and use its privileges)" };
    if info.granted_to_current_user {
        out.push(Finding::ok(id, format!("role {role:?} is granted to {me:?}{how}")));
    } else if ctx.inventory.is_superuser {
        out.push(Finding::warn(
            id,
            format!("role {role:?} is not granted to {me:?} (the guide's `GRANT {role} TO postgres`)"),
            provision_hint(ctx),
        ));
    } else {
        out.push(Finding::warn(
            id,
            format!(
                "role {role:?} is not granted to {me:?} so that it may act as the role: backups and restores as \
                 {me:?} cannot read or own the Qlik databases' tables"
            ),
            provision_hint(ctx),
        ));
    }
    out
}

/// Why something the server keeps is not readable here: said for the role connected.
fn unreadable(ctx: &Context<'_>, what: &str) -> String {
    let inv = ctx.inventory;
    if inv.is_superuser {
        format!("the server could not give {what} to {:?}", inv.current_user)
    } else {
        format!("{what} is readable by superusers only, and {:?} is none (as on a managed server)", inv.current_user)
    }
}

/// The hint of a skip: the same check as a superuser, or where a managed server shows it.
const AS_SUPERUSER: &str = "run qrd check as a superuser to check it; on a managed server (Amazon RDS, Azure, Cloud SQL) the provider \
     keeps it: see its console";

fn databases(ctx: &Context<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for name in &ctx.spec.databases {
        let prefix = format!("database.{name}");
        match ctx.inventory.database(name) {
            None => out.push(Finding::fail(
                format!("{prefix}.exists"),
                format!("database {name:?} does not exist"),
                provision_hint(ctx),
            )),
            Some(db) => {
                out.push(Finding::ok(format!("{prefix}.exists"), format!("database {name:?} exists")));
                out.extend(database(ctx, &prefix, db));
            }
        }
    }
    out
}

fn database(ctx: &Context<'_>, prefix: &str, db: &DbInfo) -> Vec<Finding> {
    let role = ctx.spec.role.as_str();
    let name = &db.name;
    let mut out = Vec::new();

    let id = format!("{prefix}.encoding");
    if db.encoding.eq_ignore_ascii_case("UTF8") {
        out.push(Finding::ok(id, "encoding UTF8"));
    } else {
        out.push(Finding::fail(
            id,
            format!("encoding {}, Qlik needs UTF8", db.encoding),
            "recreate the database as UTF8 from template0 (dump it first if it holds data); qrd never drops it",
        ));
    }

    let id = format!("{prefix}.owner");
    if db.owner == role {
        out.push(Finding::ok(id, format!("owned by {role:?}")));
    } else {
        out.push(Finding::fail(
            id,
            format!("owned by {:?}, not {role:?}", db.owner),
            provision_hint_with(ctx, "--fix-owner"),
        ));
    }

    // The role is NOINHERIT, so only its own entries (ownership included) and PUBLIC's count.
    let id = format!("{prefix}.privileges");
    let role_has = |p: &str| db.grants(Some(role), p) || db.grants(None, p);
    let missing: Vec<&str> = ["CONNECT", "CREATE", "TEMPORARY"].into_iter().filter(|p| !role_has(p)).collect();
    let public_missing: Vec<&str> = ["CONNECT", "TEMPORARY"].into_iter().filter(|p| !db.grants(None, p)).collect();
    if !missing.is_empty() {
        out.push(Finding::fail(
            id,
            format!("{role:?} lacks {} on the database", missing.join(", ")),
            provision_hint(ctx),
        ));
    } else if !public_missing.is_empty() {
        out.push(Finding::warn(
            id,
            format!("PUBLIC lacks {} (the guide grants TEMPORARY, CONNECT to PUBLIC)", public_missing.join(", ")),
            provision_hint(ctx),
        ));
    } else {
        out.push(Finding::ok(id, format!("{role:?} can connect, create and use temporary tables")));
    }

    let id = format!("{prefix}.schema_public");
    match &db.public_schema {
        None if db.unreachable.is_some() => {
            let u = db.unreachable.as_ref().expect("checked");
            out.push(Finding::fail(id, format!("cannot look inside the database: {}", u.reason), u.hint.clone()))
        }
        None if !db.allow_conn => out.push(Finding::fail(
            id,
            format!("database {name:?} does not accept connections (datallowconn is false)"),
            "ALTER DATABASE … WITH ALLOW_CONNECTIONS true",
        )),
        None => out.push(Finding::fail(id, "schema public does not exist", "CREATE SCHEMA public in the database")),
        Some(s) => match (s.role_usage, s.role_create) {
            (Some(true), Some(true)) => {
                out.push(Finding::ok(id, format!("{role:?} has USAGE and CREATE on schema public")))
            }
            (None, _) | (_, None) => out.push(Finding::fail(
                id,
                format!("role {role:?} does not exist, so it has no rights on schema public"),
                provision_hint(ctx),
            )),
            _ => {
                let why = match ctx.inventory.version.major {
                    15 => {
                        " (on PostgreSQL 15 PUBLIC may not create in public and the NOINHERIT role does not get \
                           the rights of pg_database_owner)"
                    }
                    m if m > 15 => " (on PostgreSQL 15+ PUBLIC may not create in public)",
                    _ => "",
                };
                out.push(Finding::fail(
                    id,
                    format!("{role:?} cannot create objects in schema public{why}"),
                    format!("{} (the guide's GRANT ALL ON SCHEMA public)", provision_hint(ctx)),
                ));
            }
        },
    }
    out
}

fn password_encryption(ctx: &Context<'_>) -> Vec<Finding> {
    let id = "server.password_encryption";
    let value = &ctx.inventory.password_encryption;
    if value == "scram-sha-256" {
        vec![Finding::ok(id, "password_encryption = scram-sha-256")]
    } else {
        vec![Finding::warn(
            id,
            format!("password_encryption = {value}: new passwords are stored as md5"),
            "run `qrd scram migrate` (the guide's MD5 to SCRAM procedure, without lock-outs)",
        )]
    }
}

/// Login roles whose stored password is still an md5 hash.
fn md5_hashes(ctx: &Context<'_>) -> Vec<Finding> {
    let id = "auth.md5_hashes";
    let Some(roles) = &ctx.inventory.login_roles else {
        return vec![Finding::skip(
            id,
            format!("cannot see how the login roles' passwords are stored: {}", unreadable(ctx, "pg_authid")),
            AS_SUPERUSER,
        )];
    };
    let md5: Vec<&str> = roles.iter().filter(|(_, h)| *h == HashType::Md5).map(|(n, _)| n.as_str()).collect();
    if md5.is_empty() {
        return vec![Finding::ok(id, "no login role has an md5 password hash")];
    }
    let names: Vec<String> = md5.iter().map(|n| format!("{n:?}")).collect();
    let roles_args: String = md5.iter().map(|n| format!(" --role {}", shell_quote(n))).collect();
    vec![Finding::warn(
        id,
        format!("md5 password hashes (deprecated, weaker than SCRAM): {}", names.join(", ")),
        format!("run `qrd scram migrate{roles_args}`"),
    )]
}

/// pg_hba.conf rules by method: md5 warns; trust or password on TCP fails (anyone on the network, or
/// passwords in clear text over it).
/// A pg_hba.conf rule for the method checks: where it is written, its connection type and method.
struct RuleAt {
    /// Its line in pg_hba.conf, or `file:line` in a file pg_hba.conf includes.
    place: String,
    conn_type: ConnType,
    method: Method,
}

/// Every rule the server reads. On PostgreSQL 16 from the server's own view, which also holds the rules of
/// included files (`include`, `include_if_exists`, `include_dir`) that pg_hba.conf's text does not show;
/// before 16 there are no includes and the text says it all.
fn hba_rules(inv: &qrd_pg::Inventory) -> Option<Vec<RuleAt>> {
    if let Some(rules) = &inv.hba_rules {
        let at = |r: &qrd_pg::inventory::HbaRule| {
            Some(RuleAt {
                place: if r.in_main_file { r.line.to_string() } else { format!("{}:{}", r.file, r.line) },
                conn_type: r.conn_type.as_deref()?.parse().ok()?,
                method: r.method.as_deref()?.parse().ok()?,
            })
        };
        return Some(rules.iter().filter_map(at).collect());
    }
    let file = HbaFile::parse(inv.hba_text.as_deref()?, Path::new("pg_hba.conf")).ok()?;
    let rules = file.records().map(|r| RuleAt {
        place: r.line.to_string(),
        conn_type: r.record.conn_type,
        method: r.record.method,
    });
    Some(rules.collect())
}

fn hba_methods(ctx: &Context<'_>) -> Vec<Finding> {
    let Some(rules) = hba_rules(ctx.inventory) else {
        let why = format!("pg_hba.conf not read: {}", unreadable(ctx, "it"));
        return ["auth.hba_md5", "auth.hba_tcp"].into_iter().map(|id| Finding::skip(id, &why, AS_SUPERUSER)).collect();
    };
    let lines = |pred: &dyn Fn(&RuleAt) -> bool| -> Vec<&str> {
        rules.iter().filter(|r| pred(r)).map(|r| r.place.as_str()).collect()
    };
    let list = |v: &[&str]| v.join(", ");
    let tcp = |r: &RuleAt| r.conn_type != ConnType::Local;
    // Plain TCP: `password` there sends the password in clear text (hostssl/hostgssenc encrypt it).
    let plain = |r: &RuleAt| matches!(r.conn_type, ConnType::Host | ConnType::HostNoSsl | ConnType::HostNoGssEnc);
    let mut out = Vec::new();
    let md5 = lines(&|r| r.method == Method::Md5);
    out.push(if md5.is_empty() {
        Finding::ok("auth.hba_md5", "no pg_hba.conf rule uses md5")
    } else {
        Finding::warn(
            "auth.hba_md5",
            format!("pg_hba.conf line(s) {} use md5", list(&md5)),
            "run `qrd scram migrate`: it switches them to scram-sha-256 once no md5 hash needs them",
        )
    });
    let trust = lines(&|r| tcp(r) && r.method == Method::Trust);
    let password = lines(&|r| plain(r) && r.method == Method::Password);
    out.push(match (trust.is_empty(), password.is_empty()) {
        (true, true) => Finding::ok("auth.hba_tcp", "no TCP rule uses trust or password"),
        _ => {
            let mut what = Vec::new();
            if !trust.is_empty() {
                what.push(format!("trust on line(s) {} lets anyone who reaches the port in without a password", list(&trust)));
            }
            if !password.is_empty() {
                what.push(format!("password on line(s) {} sends passwords in clear text", list(&password)));
            }
            Finding::fail(
                "auth.hba_tcp",
                format!("pg_hba.conf: {}", what.join("; ")),
                "change those lines to scram-sha-256 (`qrd hba remove --line N` and `qrd hba allow-nodes`), then reload",
            )
        }
    });
    out
}

fn ssl(ctx: &Context<'_>) -> Vec<Finding> {
    let id = "server.ssl";
    if ctx.inventory.ssl {
        vec![Finding::ok(id, "ssl = on")]
    } else {
        vec![Finding::warn(
            id,
            "ssl = off: traffic between the Qlik nodes and the repository is not encrypted",
            "enable TLS (the guide's \"Database traffic encryption\")",
        )]
    }
}

fn listen_addresses(ctx: &Context<'_>) -> Vec<Finding> {
    let id = "server.listen_addresses";
    let value = ctx.inventory.listen_addresses.trim();
    let loopback_only = value
        .split(',')
        .map(str::trim)
        .all(|a| a.is_empty() || a == "localhost" || a.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()));
    // A warning, not a failure: a lab with Qlik Sense on the same machine is fine this way.
    if loopback_only {
        vec![Finding::warn(
            id,
            format!("listen_addresses = '{value}': only this machine can connect, not Qlik nodes elsewhere"),
            "run `qrd conf set listen_addresses='*'` (or the server's own addresses) and restart the server",
        )]
    } else {
        vec![Finding::ok(id, format!("listen_addresses = '{value}'"))]
    }
}

fn port(ctx: &Context<'_>) -> Vec<Finding> {
    let id = "server.port";
    let port = ctx.inventory.port;
    if port == 4432 {
        vec![Finding::ok(id, "port = 4432")]
    } else {
        vec![Finding::warn(
            id,
            format!("port = {port}, not the repository's 4432: every node's connection strings must name {port}"),
            "keep it if the Qlik nodes were installed with this port; otherwise `qrd conf set port=4432` and restart",
        )]
    }
}

fn max_connections(ctx: &Context<'_>) -> Vec<Finding> {
    let id = "server.max_connections";
    let have = u32::try_from(ctx.inventory.max_connections).unwrap_or(0);
    let Some(nodes) = ctx.site.node_count else {
        return vec![Finding::ok(id, format!("max_connections = {have} (pass --nodes N to compare with the guide)"))];
    };
    let pool = ctx.site.pool_size;
    let guide = crate::guide_max_connections(nodes, pool);
    let fix = format!("run `qrd conf tune --nodes {nodes} --pool-size {pool}` and restart the server");
    if have < nodes * pool {
        vec![Finding::fail(
            id,
            format!(
                "max_connections = {have} is below the {nodes} node(s)' pools alone ({nodes} × {pool}): the repository services will be refused connections"
            ),
            fix,
        )]
    } else if have < guide {
        vec![Finding::warn(
            id,
            format!("max_connections = {have}, the guide asks for {guide} ({nodes} × ({pool} + 20))"),
            fix,
        )]
    } else {
        vec![Finding::ok(id, format!("max_connections = {have} covers {nodes} node(s) (guide: {guide})"))]
    }
}

/// The addresses to try for a `--node` value: the address itself, or both ends of a subnet.
fn node_probes(node: &str) -> Result<Vec<IpAddr>, String> {
    let bad = || format!("--node {node:?} is not an IP address or ADDR/PREFIX");
    let ends = Address::parse_node(node).ok().and_then(|a| a.ends()).ok_or_else(bad)?;
    Ok(if node.contains('/') { ends.to_vec() } else { vec![ends[0]] })
}

/// For each `--node`: would the server let the repository role in from there, to each Qlik database,
/// with a password method its stored hash can satisfy? Decided with the same first-match rules as the
/// server, on the pg_hba.conf text the server has on disk (reloaded or not).
fn hba_nodes(ctx: &Context<'_>) -> Vec<Finding> {
    let inv = ctx.inventory;
    if ctx.site.nodes.is_empty() {
        return Vec::new();
    }
    let id = |node: &str| format!("hba.node.{node}");
    let (Some(text), Some(memberships)) = (&inv.hba_text, &inv.memberships) else {
        return ctx
            .site
            .nodes
            .iter()
            .map(|n| {
                Finding::skip(
                    id(n),
                    format!("coverage of {n} not checked: {}", unreadable(ctx, "pg_hba.conf")),
                    "connect as a superuser, or run `qrd hba explain` on the server itself",
                )
            })
            .collect();
    };
    let file = match HbaFile::parse(text, Path::new("pg_hba.conf")) {
        Ok(f) => f,
        Err(e) => {
            return vec![Finding::fail(
                "hba.node",
                format!("the server's pg_hba.conf does not parse: {e}"),
                "fix the line named above (`qrd hba list` shows the rules)",
            )];
        }
    };
    let mut facts = Facts::new(inv.version.major);
    facts.roles = Some(Roles::from_memberships(memberships));
    let role = &ctx.spec.role;
    let hash = inv.role.as_ref().and_then(|r| r.password.as_ref()).map(|p| p.hash_type);
    let allow_hint = |node: &str| {
        let mut cmd = format!("qrd hba allow-nodes {}", shell_quote(node));
        if *role != qrd_pg::spec::DEFAULT_REPO_ROLE {
            cmd.push_str(&format!(" --repo-user {}", shell_quote(role)));
        }
        format!("run `{cmd}`")
    };

    let mut out = Vec::new();
    // Through a proxy, pg_hba sees the proxy's address, not the node's.
    let via = ctx.site.via.as_deref();
    let through = via.map(|v| format!(" through the proxy at {v} (the address the server sees)")).unwrap_or_default();
    for node in &ctx.site.nodes {
        let probes = match node_probes(via.unwrap_or(node)) {
            Ok(p) => p,
            Err(e) => {
                out.push(Finding::fail(id(node), e, "give each node as ADDR or ADDR/PREFIX"));
                continue;
            }
        };
        // Problems grouped by what goes wrong, with the databases it goes wrong for.
        let mut problems: Vec<Problem> = Vec::new();
        let mut lines = BTreeSet::new();
        for ip in &probes {
            for db in &ctx.spec.databases {
                let req = Request::new(Client::Tcp(*ip), role, db).with_ssl(inv.ssl);
                let (failed, what, says) = match file.explain(&req, &facts) {
                    Outcome::Matched { method: Method::Reject, line, message, .. } => {
                        (true, format!("line {line} rejects {ip}"), message)
                    }
                    Outcome::Matched { line, method, .. } => match (method, hash) {
                        (Method::ScramSha256, Some(HashType::Md5)) => (
                            true,
                            format!(
                                "line {line} asks {ip} for scram-sha-256 but {role}'s password is stored as md5, so logins fail"
                            ),
                            None,
                        ),
                        (Method::ScramSha256 | Method::Md5 | Method::Password, _) => {
                            lines.insert((line, method.to_string()));
                            continue;
                        }
                        (Method::Trust, _) => {
                            (false, format!("line {line} lets {ip} in with trust (no password)"), None)
                        }
                        (other, _) => (
                            false,
                            format!("line {line} asks {ip} for {other}, but the Qlik services log in with a password"),
                            None,
                        ),
                    },
                    Outcome::NoMatch { message } => (true, format!("no rule admits {ip}"), Some(message)),
                    Outcome::Undecided { line, reason, .. } => {
                        (false, format!("line {line} matches {ip} only if {reason}"), None)
                    }
                };
                match problems.iter_mut().find(|p| p.what == what) {
                    Some(p) => p.databases.push(db.clone()),
                    None => problems.push(Problem { failed, what, says, databases: vec![db.clone()] }),
                }
            }
        }
        if problems.is_empty() {
            let how: Vec<String> = lines.iter().map(|(l, m)| format!("line {l}, {m}")).collect();
            out.push(Finding::ok(
                id(node),
                format!(
                    "{node} reaches {} as {role}{}{through} ({})",
                    ctx.spec.databases.join(", "),
                    tls(inv.ssl),
                    how.join("; ")
                ),
            ));
            continue;
        }
        let failed = problems.iter().any(|p| p.failed);
        let text: Vec<String> = problems
            .iter()
            .map(|p| {
                let mut t = format!("{} (database {})", p.what, p.databases.join(", "));
                if let Some(says) = &p.says {
                    t.push_str(&format!("; the server says: {says}"));
                }
                t
            })
            .collect();
        let message = format!("{node}{through}: {}", text.join("; "));
        let admit = via.unwrap_or(node);
        out.push(if failed {
            Finding::fail(id(node), message, allow_hint(admit))
        } else {
            Finding::warn(id(node), message, format!("check the line named; {}", allow_hint(admit)))
        });
    }
    out
}

/// One way a node fails to get in, for the databases listed; `says` is the server's own message for the
/// first of them.
struct Problem {
    failed: bool,
    what: String,
    says: Option<String>,
    databases: Vec<String>,
}

fn tls(ssl: bool) -> &'static str {
    if ssl { " over TLS" } else { "" }
}

fn client_tools(ctx: &Context<'_>) -> Vec<Finding> {
    let id = "client-tools";
    let found: Vec<String> =
        ctx.tools.results.iter().filter_map(|r| r.as_ref().ok()).map(|t| format!("{} {}", t.tool, t.version)).collect();
    let missing: Vec<_> = ctx.tools.results.iter().filter_map(|r| r.as_ref().err()).collect();
    if ctx.tools.results.is_empty() {
        return Vec::new();
    }
    match missing.first() {
        None => vec![Finding::ok(id, format!("{} fit PostgreSQL {}", found.join(", "), ctx.inventory.version))],
        Some(first) => {
            let names: Vec<String> = missing.iter().map(|e| e.tool.to_string()).collect();
            vec![Finding::warn(
                id,
                format!(
                    "no {} fitting PostgreSQL {} here: backups from this machine cannot run (candidates: {})",
                    names.join(", "),
                    ctx.inventory.version,
                    first.rejected_summary()
                ),
                first.hint().unwrap_or_default(),
            )]
        }
    }
}

#[cfg(test)]
mod tests {
    use qrd_pg::RepoSpec;
    use qrd_pg::inventory::{Inventory, StoredPassword, Unreachable};
    use qrd_pg::password::verifier::HashType;
    use qrd_pg::testing::{ROLE, bare_server, provisioned};

    use crate::{Context, Finding, Site, Status, ToolsFound, run_all};

    fn findings(inv: &Inventory, role: &str) -> Vec<Finding> {
        run_all(&Context {
            inventory: inv,
            spec: &RepoSpec::new(role),
            tools: &ToolsFound::default(),
            site: &Site::default(),
        })
    }

    fn status_of<'a>(f: &'a [Finding], id: &str) -> &'a Finding {
        f.iter().find(|f| f.id == id).unwrap_or_else(|| panic!("no finding {id}: {f:#?}"))
    }

    #[test]
    fn provisioned_server_passes_with_only_the_ssl_warning() {
        let mut inv = provisioned(14, "pw");
        inv.login_roles = Some(vec![(ROLE.into(), HashType::ScramSha256)]);
        inv.hba_text = Some("local all all peer\nhost all all 10.0.0.0/8 scram-sha-256\n".into());
        let f = findings(&inv, ROLE);
        let not_ok: Vec<&str> = f.iter().filter(|f| f.status != Status::Ok).map(|f| f.id.as_str()).collect();
        assert_eq!(not_ok, ["server.ssl", "server.listen_addresses"]);
        assert!(f.iter().all(|f| f.status == Status::Ok || f.hint.is_some()), "every warn/fail has a hint");
    }

    /// A managed server's admin reads neither pg_authid nor pg_hba.conf: those checks are skipped, with
    /// the reason and a hint, never failed; the role is granted to it so it may act as the role.
    #[test]
    fn what_a_managed_admin_cannot_read_is_skipped() {
        let f = findings(&qrd_pg::testing::managed(provisioned(16, "pw")), ROLE);
        let skipped: Vec<&str> = f.iter().filter(|f| f.status == Status::Skip).map(|f| f.id.as_str()).collect();
        assert_eq!(skipped, ["role.password", "auth.md5_hashes", "auth.hba_md5", "auth.hba_tcp"]);
        assert!(f.iter().filter(|f| f.status == Status::Skip).all(|f| f.hint.is_some()));
        let md5 = status_of(&f, "auth.md5_hashes");
        assert!(md5.message.contains("readable by superusers only, and \"dba\" is none"), "{}", md5.message);
        assert!(f.iter().all(|f| f.status != Status::Fail), "{f:#?}");
        let granted = status_of(&f, "role.granted");
        assert_eq!(granted.status, Status::Ok);
        assert!(granted.message.contains("it may SET ROLE to it"), "{}", granted.message);
        let report = crate::Report::new(
            crate::ServerSummary {
                address: "x".into(),
                user: "dba".into(),
                version: "16.1".into(),
                major: 16,
                supported: true,
            },
            f,
        );
        assert_eq!(report.summary.skip, 4);
        assert!(report.passed());
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["summary"]["skip"], 4);
        assert!(json["checks"].as_array().unwrap().iter().any(|c| c["status"] == "skip"));
    }

    #[test]
    fn every_database_reports_every_aspect_even_on_a_bare_server() {
        let f = findings(&bare_server(16), ROLE);
        assert_eq!(status_of(&f, "role.exists").status, Status::Fail);
        for db in ["QSR", "SenseServices", "QSMQ", "Licenses"] {
            assert_eq!(status_of(&f, &format!("database.{db}.exists")).status, Status::Fail);
        }
        let mut inv = provisioned(16, "pw");
        inv.role = None;
        for db in &mut inv.databases {
            let schema = db.public_schema.as_mut().unwrap();
            (schema.role_usage, schema.role_create) = (None, None);
        }
        let f = findings(&inv, ROLE);
        assert_eq!(status_of(&f, "database.QSR.schema_public").status, Status::Fail, "always reported");
    }

    #[test]
    fn expired_password_fails_and_md5_warns() {
        let mut inv = provisioned(15, "pw");
        let role = inv.role.as_mut().unwrap();
        role.attrs.never_expires = false;
        role.expired = true;
        role.valid_until = Some("2020-01-01 00:00:00+00".into());
        role.password = Some(StoredPassword { hash_type: HashType::Md5, verifier: None });
        let f = findings(&inv, ROLE);
        let attrs = status_of(&f, "role.attributes");
        assert_eq!(attrs.status, Status::Fail);
        assert!(attrs.message.contains("expired"), "{}", attrs.message);
        assert_eq!(status_of(&f, "role.password").status, Status::Warn);
    }

    #[test]
    fn unreachable_database_is_a_failure_with_the_connection_hint() {
        let mut inv = provisioned(16, "pw");
        inv.databases[2].public_schema = None;
        inv.databases[2].unreachable =
            Some(Unreachable { reason: "no pg_hba.conf entry".into(), hint: "add a pg_hba.conf line".into() });
        let f = findings(&inv, ROLE);
        let s = status_of(&f, "database.QSMQ.schema_public");
        assert_eq!(s.status, Status::Fail);
        assert_eq!(s.hint.as_deref(), Some("add a pg_hba.conf line"));
        assert_eq!(status_of(&f, "database.QSR.schema_public").status, Status::Ok);
    }

    #[test]
    fn hints_hold_whole_commands() {
        let mut inv = provisioned(16, "pw");
        inv.databases[0].owner = "someone".into();
        let f = findings(&inv, "it's me");
        let owner = status_of(&f, "database.QSR.owner");
        assert_eq!(owner.hint.as_deref(), Some(r"run `qrd provision --repo-user 'it'\''s me' --fix-owner`"));
    }

    fn node_findings(inv: &Inventory, nodes: &[&str]) -> Vec<Finding> {
        let site = Site { nodes: nodes.iter().map(|n| n.to_string()).collect(), ..Site::default() };
        let spec = RepoSpec::new(ROLE);
        let ctx = Context { inventory: inv, spec: &spec, tools: &ToolsFound::default(), site: &site };
        super::hba_nodes(&ctx)
    }

    fn backup_finding(b: crate::Backups) -> Finding {
        let inv = provisioned(16, "pw");
        let site = Site { backups: Some(b), ..Site::default() };
        let spec = RepoSpec::new(ROLE);
        let ctx = Context { inventory: &inv, spec: &spec, tools: &ToolsFound::default(), site: &site };
        super::backups(&ctx).remove(0)
    }

    #[test]
    fn the_newest_verified_bundle_must_be_recent() {
        let b = |newest: Option<f64>, bundles, damaged: &[&str]| crate::Backups {
            dir: "/var/backups/qrd".into(),
            unreadable: None,
            bundles,
            newest_verified: newest.map(|h| ("qrd-backup-x.tar.zst".to_owned(), h)),
            damaged: damaged.iter().map(|d| d.to_string()).collect(),
            not_checked: Vec::new(),
        };
        assert_eq!(backup_finding(b(Some(3.0), 2, &[])).status, Status::Ok);
        assert_eq!(backup_finding(b(Some(30.0), 2, &[])).status, Status::Warn);
        assert_eq!(
            backup_finding(b(Some(3.0), 2, &["newer.tar.zst"])).status,
            Status::Warn,
            "a damaged newer one warns"
        );
        let f = backup_finding(b(Some(60.0), 2, &[]));
        assert_eq!(f.status, Status::Fail);
        assert!(f.hint.as_deref().unwrap().contains("qrd backup --out /var/backups/qrd"), "{f:?}");
        assert_eq!(backup_finding(b(None, 0, &[])).status, Status::Fail);
        let f = backup_finding(b(None, 3, &["a", "b", "c"]));
        assert!(f.status == Status::Fail && f.message.contains("none of the 3"), "{f:?}");
        assert!(f.message.contains("3 newer bundle(s) are damaged: a, b, c"), "{f:?}");

        // Bundles that could not be checked here are said so, not called damaged; the hint is how to check.
        let unchecked = |newest| {
            let mut x = b(newest, 2, &[]);
            x.not_checked = vec![crate::NotChecked {
                file: "new.tar.zst".into(),
                reason: "no usable pg_restore for the server's PostgreSQL 16: it needs PostgreSQL 16 or newer\n  …"
                    .into(),
                hint: "install the PostgreSQL 16 client tools".into(),
            }];
            backup_finding(x)
        };
        let f = unchecked(Some(3.0));
        assert_eq!(f.status, Status::Warn, "{f:?}");
        assert!(f.message.contains("1 newer bundle(s) could not be checked here: new.tar.zst (new.tar.zst: no usable pg_restore for the server's PostgreSQL 16: it needs PostgreSQL 16 or newer)"), "{f:?}");
        assert!(!f.message.contains("damaged"), "{f:?}");
        assert_eq!(f.hint.as_deref(), Some("install the PostgreSQL 16 client tools"));
        let f = unchecked(None);
        assert_eq!(f.status, Status::Fail, "nothing is known to verify: {f:?}");
        assert!(f.message.contains("none of the 2 bundle(s) in /var/backups/qrd is known to verify"), "{f:?}");
        assert_eq!(f.hint.as_deref(), Some("install the PostgreSQL 16 client tools"));
        let mut unreadable = b(None, 0, &[]);
        unreadable.unreadable = Some("No such file or directory".into());
        assert_eq!(backup_finding(unreadable).status, Status::Fail);
    }

    fn with_hba(text: &str) -> Inventory {
        let mut inv = provisioned(16, "pw");
        inv.hba_text = Some(text.to_owned());
        inv.memberships = Some(vec![(ROLE.to_owned(), vec![]), ("qlik".to_owned(), vec![])]);
        inv
    }

    #[test]
    fn through_a_proxy_the_proxys_address_is_what_counts() {
        // A qrd ha cluster: the rules admit HAProxy (10.0.4.30), not the nodes behind it.
        let inv = with_hba(
            "local all all peer\n\
             hostssl QSR,SenseServices,QSMQ,Licenses qliksenserepository 10.0.4.30/32 scram-sha-256\n",
        );
        let direct = node_findings(&inv, &["10.0.5.7"]);
        assert_eq!(status_of(&direct, "hba.node.10.0.5.7").status, Status::Fail);
        let site = Site { nodes: vec!["10.0.5.7".into()], via: Some("10.0.4.30".into()), ..Site::default() };
        let spec = RepoSpec::new(ROLE);
        let mut inv = inv;
        inv.ssl = true;
        let ctx = Context { inventory: &inv, spec: &spec, tools: &ToolsFound::default(), site: &site };
        let f = super::hba_nodes(&ctx);
        let node = status_of(&f, "hba.node.10.0.5.7");
        assert_eq!(node.status, Status::Ok, "{f:#?}");
        assert!(node.message.contains("through the proxy at 10.0.4.30"), "{}", node.message);
        // A proxy pg_hba does not admit: the hint names the proxy's address.
        let site = Site { nodes: vec!["10.0.5.7".into()], via: Some("10.0.4.31".into()), ..Site::default() };
        let ctx = Context { inventory: &inv, spec: &spec, tools: &ToolsFound::default(), site: &site };
        let f = super::hba_nodes(&ctx);
        assert_eq!(status_of(&f, "hba.node.10.0.5.7").hint.as_deref(), Some("run `qrd hba allow-nodes 10.0.4.31`"));
    }

    #[test]
    fn node_coverage_follows_the_first_matching_line() {
        let inv = with_hba(
            "local all all peer\n\
             host all all 10.0.0.9/32 reject\n\
             host QSR,SenseServices,QSMQ,Licenses qliksenserepository 10.0.0.0/24 scram-sha-256\n\
             host all all 10.0.1.0/24 trust\n\
             host all all 10.0.2.0/24 ident\n",
        );
        let f = node_findings(&inv, &["10.0.0.5", "10.0.0.9", "10.0.0.0/24", "10.0.1.7", "10.0.2.7", "10.9.9.9", "x"]);
        let s = |id: &str| status_of(&f, id);
        assert_eq!(s("hba.node.10.0.0.5").status, Status::Ok);
        assert!(s("hba.node.10.0.0.5").message.contains("line 3, scram-sha-256"), "{f:#?}");
        assert_eq!(s("hba.node.10.0.0.9").status, Status::Fail);
        assert!(s("hba.node.10.0.0.9").message.contains("pg_hba.conf rejects connection for host \"10.0.0.9\""));
        // Both ends of the subnet: 10.0.0.0 and 10.0.0.255 are covered by line 3.
        assert_eq!(s("hba.node.10.0.0.0/24").status, Status::Ok);
        assert_eq!(s("hba.node.10.0.1.7").status, Status::Warn, "trust lets anyone in: {f:#?}");
        assert_eq!(s("hba.node.10.0.2.7").status, Status::Warn, "ident is no password login");
        let none = s("hba.node.10.9.9.9");
        assert_eq!(none.status, Status::Fail);
        assert!(none.message.contains("no pg_hba.conf entry for host \"10.9.9.9\""), "{}", none.message);
        assert_eq!(none.hint.as_deref(), Some("run `qrd hba allow-nodes 10.9.9.9`"));
        assert_eq!(s("hba.node.x").status, Status::Fail);
    }

    #[test]
    fn a_scram_line_locks_out_an_md5_hash() {
        let mut inv = with_hba("host all qliksenserepository 10.0.0.0/8 scram-sha-256\n");
        inv.role.as_mut().unwrap().password = Some(StoredPassword { hash_type: HashType::Md5, verifier: None });
        let f = node_findings(&inv, &["10.1.2.3"]);
        assert_eq!(f[0].status, Status::Fail);
        assert!(f[0].message.contains("stored as md5"), "{}", f[0].message);
        // md5 lines accept SCRAM verifiers (the server runs SCRAM then): fine.
        let inv = with_hba("host all qliksenserepository 10.0.0.0/8 md5\n");
        assert_eq!(node_findings(&inv, &["10.1.2.3"])[0].status, Status::Ok);
    }

    #[test]
    fn without_the_file_coverage_is_skipped_and_without_nodes_nothing() {
        let inv = provisioned(16, "pw");
        let f = node_findings(&inv, &["10.1.2.3"]);
        assert_eq!(f[0].status, Status::Skip);
        assert!(node_findings(&with_hba("host all all 0.0.0.0/0 md5\n"), &[]).is_empty());
    }

    #[test]
    fn rules_of_included_files_count_as_file_and_line() {
        let rule = |file: &str, line, conn: &str, method: Option<&str>| qrd_pg::inventory::HbaRule {
            file: file.into(),
            in_main_file: file == "/d/pg_hba.conf",
            line,
            conn_type: Some(conn.into()),
            method: method.map(Into::into),
        };
        // The view wins over the text: on 16 it also holds the included files' rules.
        let mut inv = with_hba("host all all 10.0.0.0/8 scram-sha-256\n");
        inv.hba_rules = Some(vec![
            rule("/d/pg_hba.conf", 1, "host", Some("scram-sha-256")),
            rule("/d/pg_hba.conf", 2, "host", Some("md5")),
            rule("/d/hba.d/50-old.conf", 3, "host", Some("md5")),
            rule("/d/hba.d/50-old.conf", 4, "host", Some("trust")),
            rule("/d/hba.d/50-old.conf", 5, "local", Some("trust")),
            // A line the server could not parse has no method.
            rule("/d/hba.d/50-old.conf", 6, "host", None),
        ]);
        let f = findings(&inv, ROLE);
        let md5 = status_of(&f, "auth.hba_md5");
        assert_eq!(md5.status, Status::Warn);
        assert_eq!(md5.message, "pg_hba.conf line(s) 2, /d/hba.d/50-old.conf:3 use md5");
        let tcp = status_of(&f, "auth.hba_tcp");
        assert_eq!(tcp.status, Status::Fail);
        assert!(tcp.message.contains("trust on line(s) /d/hba.d/50-old.conf:4 lets"), "{}", tcp.message);
    }

    #[test]
    fn md5_and_insecure_tcp_methods() {
        let mut inv = with_hba(
            "local all all trust\nhost all all 10.0.0.0/8 md5\nhost all all 10.1.0.0/16 trust\nhost all all ::/0 password\n\
             hostssl all all 10.2.0.0/16 password\n",
        );
        inv.login_roles = Some(vec![("postgres".into(), HashType::ScramSha256), ("bob".into(), HashType::Md5)]);
        let f = findings(&inv, ROLE);
        let hashes = status_of(&f, "auth.md5_hashes");
        assert_eq!(hashes.status, Status::Warn);
        assert!(hashes.message.contains("\"bob\"") && !hashes.message.contains("postgres"), "{}", hashes.message);
        assert_eq!(hashes.hint.as_deref(), Some("run `qrd scram migrate --role bob`"));
        assert_eq!(status_of(&f, "auth.hba_md5").status, Status::Warn);
        let tcp = status_of(&f, "auth.hba_tcp");
        assert_eq!(tcp.status, Status::Fail);
        assert!(
            tcp.message.contains("trust on line(s) 3") && tcp.message.contains("password on line(s) 4 "),
            "{}",
            tcp.message
        );
        assert!(!tcp.message.contains('5'), "password over TLS is no clear text: {}", tcp.message);
        // local trust alone is fine; scram everywhere is fine.
        let mut inv = with_hba("local all all trust\nhost all all 10.0.0.0/8 scram-sha-256\n");
        inv.login_roles = Some(vec![("postgres".into(), HashType::ScramSha256)]);
        let f = findings(&inv, ROLE);
        for id in ["auth.md5_hashes", "auth.hba_md5", "auth.hba_tcp"] {
            assert_eq!(status_of(&f, id).status, Status::Ok, "{id}");
        }
    }
}
