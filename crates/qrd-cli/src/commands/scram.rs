//! `qrd scram status` and `qrd scram migrate`: the guide's "Changing from MD5 to SCRAM encryption" as one
//! command that locks nobody out.
//!
//! Order of the migration, each step verified before the next:
//! 1. plan everything first (roles, passwords, pg_hba.conf lines) and refuse before changing anything when
//!    a pg_hba.conf line would have to become scram-sha-256 while a role that still has an md5 hash logs
//!    in through it;
//! 2. `password_encryption = 'scram-sha-256'` through ALTER SYSTEM + reload, checked with SHOW;
//! 3. each role's password re-set from a SCRAM verifier computed here (the password is checked against the
//!    stored md5 hash first: a migration keeps passwords unless `--change-password`), then its stored
//!    hash and a real login are verified;
//! 4. `md5` → `scram-sha-256` in pg_hba.conf (backup, atomic write, rollback on server errors), reload;
//! 5. fresh logins as each role.
//!
//! md5 lines keep working for roles with SCRAM verifiers (the server then runs SCRAM), so steps 2–3 are
//! safe on their own; step 4 is the one that could lock someone out, hence the plan in step 1.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use qrd_conf::hba::{Facts, HbaFile, Method, Roles, admits_user};
use qrd_conf::write::FileEdit;
use qrd_pg::security::{self, RoleHash};
use qrd_pg::verifier::{Encryption, HashType};
use qrd_pg::{Inventory, RepoSpec, Secret, Session, password};
use qrd_pgbin::shell_quote;

use crate::commands::password::{mixes_character_sets, qlik_followups, require_role, verify_login, verify_stored};
use crate::error::{CliError, ExitStatus};
use crate::options::{ConnectArgs, FileArgs, HelpArg};
use crate::output::{note, write_checked};
use qrd_server::{CheckedWrite, FileKind, WriteOptions};

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct ScramArgs {
    #[command(subcommand)]
    pub command: ScramCommand,
    #[command(flatten)]
    pub help: HelpArg,
}

#[derive(Debug, Subcommand)]
pub enum ScramCommand {
    /// password_encryption, each login role's hash type, pg_hba.conf lines by method
    Status(StatusArgs),
    /// Switch to SCRAM-SHA-256: setting, role passwords, pg_hba.conf, verified at each step
    Migrate(MigrateArgs),
}

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct StatusArgs {
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    /// The repository role
    #[arg(long, value_name = "ROLE", default_value = qrd_pg::spec::DEFAULT_REPO_ROLE)]
    pub repo_user: String,
    #[command(flatten)]
    pub conn: ConnectArgs,
    #[command(flatten)]
    pub help: HelpArg,
}

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct MigrateArgs {
    /// A role whose password to re-hash (repeat); default: the repository role and the connecting superuser
    #[arg(long = "role", value_name = "ROLE")]
    pub roles: Vec<String>,
    /// ROLE=FILE: the role's password in FILE (repeat). Else QRD_PASSWORD_<ROLE> (upper case, other
    /// characters as _), QRD_REPO_PASSWORD for the repository role, else a prompt on a terminal.
    #[arg(long = "role-password-file", value_name = "ROLE=FILE", value_parser = parse_role_file)]
    pub role_password_files: Vec<(String, PathBuf)>,
    /// Accept a password that differs from the role's current one (it becomes the new password: every Qlik
    /// node's connection string must then be updated)
    #[arg(long)]
    pub change_password: bool,
    /// Switch only the md5 lines no md5 role logs in through, and leave the others md5 (instead of refusing)
    #[arg(long)]
    pub partial_hba: bool,
    /// The repository role
    #[arg(long, value_name = "ROLE", default_value = qrd_pg::spec::DEFAULT_REPO_ROLE)]
    pub repo_user: String,
    /// Print the plan and the pg_hba.conf diff; change nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub files: FileArgs,
    #[command(flatten)]
    pub conn: ConnectArgs,
    #[command(flatten)]
    pub help: HelpArg,
}

fn parse_role_file(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((role, file)) if !role.is_empty() && !file.is_empty() => Ok((role.to_owned(), PathBuf::from(file))),
        _ => Err("expected ROLE=FILE (the role's name, '=', then the path of a file holding its password)".to_owned()),
    }
}

pub async fn execute(args: ScramArgs) -> Result<ExitStatus, CliError> {
    match args.command {
        ScramCommand::Status(a) => status(a).await,
        ScramCommand::Migrate(a) => migrate(a).await,
    }
}

fn refused(msg: impl Into<String>) -> CliError {
    CliError::new(ExitStatus::Refused, msg)
}

/// `QRD_PASSWORD_<ROLE>`: the role name upper-cased, every character other than A–Z and 0–9 as `_`.
pub fn password_env(role: &str) -> String {
    let name: String =
        role.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    format!("QRD_PASSWORD_{name}")
}

/// pg_hba.conf lines by method, from the text the server has.
fn methods(file: &HbaFile) -> BTreeMap<String, Vec<usize>> {
    let mut by: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for r in file.records() {
        by.entry(r.record.method.to_string()).or_default().push(r.line);
    }
    by
}

async fn status(args: StatusArgs) -> Result<ExitStatus, CliError> {
    let session = Session::open(&args.conn.opts()).await?;
    let inv = Inventory::gather(&session, &RepoSpec::new(&args.repo_user)).await?;
    let Some(roles) = &inv.login_roles else {
        return Err(
            refused(format!("{} cannot read pg_authid", inv.current_user)).hint("connect as a superuser (-U postgres)")
        );
    };
    let hba = inv.hba_text.as_deref().map(|t| HbaFile::parse(t, std::path::Path::new("pg_hba.conf")));
    let by_method = match &hba {
        Some(Ok(f)) => Some(methods(f)),
        _ => None,
    };
    if args.json {
        let json = serde_json::json!({
            "password_encryption": inv.password_encryption,
            "roles": roles.iter().map(|(n, h)| serde_json::json!({"role": n, "hash": h.as_str()})).collect::<Vec<_>>(),
            "hba_lines_by_method": by_method,
        });
        println!("{}", serde_json::to_string_pretty(&json).expect("serialisable"));
        return Ok(ExitStatus::Success);
    }
    println!("password_encryption = {}", inv.password_encryption);
    println!("login roles and their stored password type:");
    for (name, hash) in roles {
        println!("  {:<14} {name}", hash.as_str());
    }
    match (&hba, &by_method) {
        (Some(Ok(_)), Some(by)) => {
            println!("pg_hba.conf lines by method:");
            for (method, lines) in by {
                let lines: Vec<String> = lines.iter().map(usize::to_string).collect();
                println!("  {method:<14} line {}", lines.join(", "));
            }
        }
        (Some(Err(e)), _) => println!("pg_hba.conf does not parse: {e}"),
        _ => println!("pg_hba.conf: not readable through this connection"),
    }
    let md5: Vec<&str> = roles.iter().filter(|(_, h)| *h == HashType::Md5).map(|(n, _)| n.as_str()).collect();
    if !md5.is_empty() || inv.password_encryption != "scram-sha-256" {
        note(format!(
            "to move to SCRAM-SHA-256: `qrd scram migrate{}`",
            md5.iter().map(|r| format!(" --role {}", shell_quote(r))).collect::<String>()
        ));
    }
    Ok(ExitStatus::Success)
}

/// One role of the migration.
struct RolePlan {
    name: String,
    /// The password to store as SCRAM; `None` when the role already has a SCRAM verifier.
    password: Option<Secret>,
    /// Whether the password differs from the current one (then Qlik's copies must be updated).
    changes: bool,
}

fn role_password(args: &MigrateArgs, role: &str) -> Result<Secret, CliError> {
    if let Some((_, file)) = args.role_password_files.iter().find(|(r, _)| r == role) {
        return password::from_file(file).map_err(|e| CliError::new(ExitStatus::Usage, e.to_string()));
    }
    let mut vars = vec![password_env(role)];
    if role == args.repo_user {
        vars.push(crate::commands::provision::REPO_PASSWORD_ENV.to_owned());
    }
    for var in &vars {
        if let Some(pw) = password::from_env(var).map_err(|e| refused(e.to_string()))? {
            return Ok(pw);
        }
    }
    password::prompt(&format!("Current password of role {role:?}"), false).map_err(|e| {
        refused(e.to_string()).hint(format!(
            "give --role-password-file {}=FILE (mode 0600) or set {}",
            shell_quote(role),
            vars.join(" or ")
        ))
    })
}

async fn migrate(args: MigrateArgs) -> Result<ExitStatus, CliError> {
    let loc = qrd_server::locate(FileKind::Hba, &args.files.choice(), &args.conn.opts()).await?;
    let (Some(session), Some(server)) = (&loc.session, &loc.server) else {
        return Err(refused("the migration needs a connection to the server (it changes roles and reloads)")
            .hint("start the server, or drop --offline"));
    };
    let me = session.target().user.clone();
    let defaults = args.roles.is_empty();
    let mut role_names: Vec<String> = Vec::new();
    for r in if defaults { vec![args.repo_user.clone(), me.clone()] } else { args.roles.clone() } {
        if !role_names.contains(&r) {
            role_names.push(r);
        }
    }

    // ---- 1. plan; nothing changes before every check has passed.
    let found = security::role_hashes(session, &role_names).await?;
    let mut plans = Vec::new();
    for name in &role_names {
        let current: &RoleHash = require_role(&found, name, &args.repo_user)?;
        if current.hash == HashType::ScramSha256 {
            plans.push(RolePlan { name: name.clone(), password: None, changes: false });
            continue;
        }
        // No password at all (e.g. a superuser that logs in by peer): nothing to re-hash, and giving it one
        // would open it to every password line. Only on request.
        if current.hash == HashType::None && !args.change_password {
            note(format!("role {name:?} has no password: nothing to re-hash (use `qrd password set` to give it one)"));
            plans.push(RolePlan { name: name.clone(), password: None, changes: false });
            continue;
        }
        let pw = role_password(&args, name)?;
        let same = current.matches(&pw);
        if !same && current.hash != HashType::None && !args.change_password {
            return Err(refused(format!(
                "the password given for role {name:?} is not its current one (it does not match the stored {} hash)",
                current.hash.as_str()
            ))
            .hint(
                "give the current password (the migration keeps it, so Qlik's connection strings stay valid), or \
                 pass --change-password to set a new one and then update every node",
            ));
        }
        if mixes_character_sets(pw.expose()) {
            note(format!(
                "warning: the password of {name:?} mixes character sets; the guide says Qlik's services fail on that"
            ));
        }
        plans.push(RolePlan { name: name.clone(), password: Some(pw), changes: !same });
    }

    // Login roles that keep an md5 hash after this migration.
    let all_login: Vec<(String, HashType)> = {
        let inv = Inventory::gather(session, &RepoSpec::new(&args.repo_user)).await?;
        inv.login_roles.ok_or_else(|| {
            refused(format!(
                "{me} cannot read every login role's password type, so qrd cannot tell who an md5 → scram-sha-256 \
                 switch would lock out; nothing was changed"
            ))
            .hint("run the migration as a superuser (-U postgres)")
        })?
    };
    let staying_md5: Vec<&str> = all_login
        .iter()
        .filter(|(n, h)| *h == HashType::Md5 && !plans.iter().any(|p| &p.name == n))
        .map(|(n, _)| n.as_str())
        .collect();

    let mut hba = HbaFile::parse(&loc.text, &loc.path)
        .map_err(|e| refused(e.to_string()).hint("fix pg_hba.conf at the place named above; nothing was changed"))?;
    let mut facts = Facts::new(server.major);
    facts.roles = Some(Roles::from_memberships(&qrd_pg::serverconf::memberships(session).await?));
    let md5_lines: Vec<usize> = hba.records().filter(|r| r.record.method == Method::Md5).map(|r| r.line).collect();
    let mut blocked: Vec<(usize, Vec<&str>)> = Vec::new();
    let mut switch: Vec<usize> = Vec::new();
    for r in hba.records().filter(|r| md5_lines.contains(&r.line)) {
        let users: Vec<&str> =
            staying_md5.iter().copied().filter(|u| admits_user(r.record, u, &facts) != Some(false)).collect();
        if users.is_empty() {
            switch.push(r.line);
        } else {
            blocked.push((r.line, users));
        }
    }
    if !blocked.is_empty() {
        let list: Vec<String> = blocked
            .iter()
            .map(|(line, users)| {
                format!("\n  line {line}: {}", users.iter().map(|u| format!("{u:?}")).collect::<Vec<_>>().join(", "))
            })
            .collect();
        let msg = format!(
            "these pg_hba.conf lines would become scram-sha-256 while roles that still have md5 hashes log in \
             through them (they would be locked out):{}",
            list.concat()
        );
        if !args.partial_hba {
            let roles: Vec<&str> = blocked.iter().flat_map(|(_, u)| u.iter().copied()).collect();
            let mut roles = roles;
            roles.sort_unstable();
            roles.dedup();
            let mut all: Vec<String> = role_names.clone();
            all.extend(roles.iter().map(|r| r.to_string()));
            let add: String = all.iter().map(|r| format!(" --role {}", shell_quote(r))).collect();
            return Err(refused(msg).hint(format!(
                "migrate those roles too (`qrd scram migrate{add}` with their passwords), or pass --partial-hba to \
                 leave those lines md5 for now; nothing was changed"
            )));
        }
        note(format!("warning: {msg}\n  --partial-hba: those lines stay md5"));
    }
    for line in &switch {
        hba.set_method(*line, Method::ScramSha256).map_err(|e| refused(e.to_string()))?;
    }
    let edit = FileEdit::new(&loc.path, loc.text.clone(), hba.render());

    let encryption_ok = server.password_encryption == "scram-sha-256";
    let to_rehash: Vec<&RolePlan> = plans.iter().filter(|p| p.password.is_some()).collect();
    for p in plans.iter().filter(|p| p.password.is_none()) {
        note(format!("role {:?} already has a SCRAM-SHA-256 verifier", p.name));
    }
    if encryption_ok && to_rehash.is_empty() && !edit.is_change() {
        note(
            "already migrated: password_encryption = scram-sha-256, the roles have SCRAM verifiers, no md5 line to switch",
        );
        return Ok(ExitStatus::Success);
    }
    if args.dry_run {
        if !encryption_ok {
            note(format!(
                "would run ALTER SYSTEM SET password_encryption = 'scram-sha-256' and reload (now {})",
                server.password_encryption
            ));
        }
        for p in &to_rehash {
            let how = if p.changes { "set a NEW password for" } else { "re-hash the current password of" };
            note(format!(
                "would {how} role {:?} as SCRAM-SHA-256 (verifier computed here) and log in to verify",
                p.name
            ));
        }
        if edit.is_change() {
            note(format!("would switch md5 → scram-sha-256 on pg_hba.conf line(s) {switch:?}:"));
        }
        write_checked(
            &CheckedWrite::one(edit, FileKind::Hba),
            Some(session),
            WriteOptions { dry_run: true, reload: false },
        )
        .await?;
        return Ok(ExitStatus::Success);
    }

    // ---- 2. password_encryption.
    if !encryption_ok {
        qrd_pg::serverconf::alter_system(session, "password_encryption", "scram-sha-256")
            .await
            .map_err(|e| CliError::new(ExitStatus::Failed, format!("ALTER SYSTEM failed: {e}")))?;
        qrd_pg::serverconf::reload(session).await?;
        let now = qrd_pg::serverconf::settings(session, &["password_encryption".to_owned()]).await?;
        let value = now.first().map(|r| r.setting.clone()).unwrap_or_default();
        if value != "scram-sha-256" {
            return Err(CliError::new(
                ExitStatus::Failed,
                format!("after ALTER SYSTEM and a reload, password_encryption is still {value:?}"),
            )
            .hint("look for a per-database or per-role setting of password_encryption, or a reload error in the server log"));
        }
        note("password_encryption = scram-sha-256 (ALTER SYSTEM, reloaded, verified)");
    }

    // ---- 3. role passwords.
    for p in &to_rehash {
        let pw = p.password.as_ref().expect("filtered");
        security::set_password(session, &p.name, pw, Encryption::ScramSha256).await?;
        verify_stored(session, &p.name, pw, HashType::ScramSha256).await?;
        note(format!("role {:?}: stored as SCRAM-SHA-256 (verified in pg_authid)", p.name));
        verify_login(session, &p.name, pw).await?;
    }

    // ---- 4. pg_hba.conf.
    if edit.is_change() {
        write_checked(
            &CheckedWrite::one(edit.clone(), FileKind::Hba),
            Some(session),
            WriteOptions { dry_run: false, reload: true },
        )
        .await?;
        note(format!("pg_hba.conf: md5 → scram-sha-256 on line(s) {switch:?}"));
        // ---- 5. fresh logins through the new lines.
        for p in &to_rehash {
            verify_login(session, &p.name, p.password.as_ref().expect("filtered")).await?;
        }
    }
    let changed: Vec<&&RolePlan> = to_rehash.iter().filter(|p| p.changes).collect();
    for p in changed {
        println!("The password of {:?} changed. Update every place that stores it:", p.name);
        for f in qlik_followups(&p.name, &args.repo_user) {
            println!("  - {f}");
        }
    }
    println!(
        "Way back, if a client cannot do SCRAM: put back the pg_hba.conf backup named above (or \
         `qrd hba` the lines back to md5) and reload; `ALTER SYSTEM SET password_encryption = 'md5'`, reload, and \
         `qrd password set ROLE` for each role that must have an md5 hash again (SCRAM verifiers cannot be turned \
         into md5 ones without the password)."
    );
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_env_names() {
        assert_eq!(password_env("qliksenserepository"), "QRD_PASSWORD_QLIKSENSEREPOSITORY");
        assert_eq!(password_env("it's me"), "QRD_PASSWORD_IT_S_ME");
    }
}
