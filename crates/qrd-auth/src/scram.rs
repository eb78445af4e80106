//! `qrd scram status` and `qrd scram migrate`: the guide's "Changing from MD5 to SCRAM encryption" as one
//! change that locks nobody out.
//!
//! Order of the migration, each step verified before the next:
//! 1. [`plan_migrate`]: everything first (roles, passwords, pg_hba.conf lines — in the main file and, on
//!    PostgreSQL 16, in every file it includes), refusing before changing anything when an md5 rule would
//!    have to become scram-sha-256 while a role that still has an md5 hash logs in through it;
//! 2. [`apply_migrate`]: `password_encryption = 'scram-sha-256'` through ALTER SYSTEM + reload, checked with
//!    SHOW;
//! 3. each role's password re-set from a SCRAM verifier computed here (the password is checked against the
//!    stored md5 hash first: a migration keeps passwords unless `change_password`), then its stored hash
//!    and a real login are verified;
//! 4. `md5` → `scram-sha-256` in pg_hba.conf and its included files, as one checked write (backup, atomic
//!    write, all files put back on any server error), reload;
//! 5. fresh logins as each role.
//!
//! md5 lines keep working for roles with SCRAM verifiers (the server then runs SCRAM), so steps 2–3 are
//! safe on their own; step 4 is the one that could lock someone out, hence the plan in step 1.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use qrd_conf::hba::{EditError, Facts, HbaFile, HbaTree, Method, Roles, admits_user};
use qrd_conf::write::FileEdit;
use qrd_pg::inventory::HbaRule;
use qrd_pg::password::stored;
use qrd_pg::password::verifier::{Encryption, HashType};
use qrd_pg::{Inventory, RepoSpec, Secret, Session};
use qrd_pgbin::shell_quote;
use qrd_server::{CheckedWrite, FileKind, Located, WriteOptions};
use serde::Serialize;

use crate::error::AuthError;
use crate::qlik::{mixes_character_sets, qlik_followups};
use crate::source::RolePasswords;
use crate::verify;

// ---- status ----

/// Where a server stands on md5 and SCRAM-SHA-256. The JSON of `qrd scram status --json`; its fields are in
/// alphabetical order, as the hand-built JSON before it printed them.
#[derive(Debug, Clone, Serialize)]
pub struct ScramStatus {
    /// Rules in files pg_hba.conf includes (PostgreSQL 16), by method, as `file:line`; left out when none.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub hba_included_lines_by_method: BTreeMap<String, Vec<String>>,
    /// pg_hba.conf's line numbers by method; `null` when the file could not be read or parsed.
    pub hba_lines_by_method: Option<BTreeMap<String, Vec<usize>>>,
    pub password_encryption: String,
    /// Every login role and the type of its stored password.
    pub roles: Vec<RoleHashType>,
    /// Why `hba_lines_by_method` is missing, in words.
    #[serde(skip)]
    pub hba_problem: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoleHashType {
    /// `md5`, `scram-sha-256`, `none`, `other` ([`HashType::as_str`]).
    #[serde(serialize_with = "hash_name")]
    pub hash: HashType,
    pub role: String,
}

fn hash_name<S: serde::Serializer>(hash: &HashType, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(hash.as_str())
}

impl ScramStatus {
    /// The login roles that still have an md5 hash.
    pub fn md5_roles(&self) -> Vec<&str> {
        self.roles.iter().filter(|r| r.hash == HashType::Md5).map(|r| r.role.as_str()).collect()
    }

    /// The command that moves this server to SCRAM-SHA-256, when anything is left to move.
    pub fn next_step(&self) -> Option<String> {
        let md5 = self.md5_roles();
        (!md5.is_empty() || self.password_encryption != "scram-sha-256").then(|| {
            format!(
                "qrd scram migrate{}",
                md5.iter().map(|r| format!(" --role {}", shell_quote(r))).collect::<String>()
            )
        })
    }
}

/// `password_encryption`, each login role's hash type, and the pg_hba.conf rules by method (superusers
/// only: it reads `pg_authid`).
pub async fn status(session: &Session, repo_role: &str) -> Result<ScramStatus, AuthError> {
    let inv = Inventory::gather(session, &RepoSpec::new(repo_role)).await?;
    let Some(roles) = inv.login_roles else {
        return Err(AuthError::CannotReadAuthid { user: inv.current_user });
    };
    let (lines, problem) = match inv.hba_text.as_deref().map(|t| HbaFile::parse(t, Path::new("pg_hba.conf"))) {
        Some(Ok(f)) => (Some(lines_by_method(&f)), None),
        Some(Err(e)) => (None, Some(format!("pg_hba.conf does not parse: {e}"))),
        None => (None, Some("pg_hba.conf: not readable through this connection".to_owned())),
    };
    Ok(ScramStatus {
        hba_included_lines_by_method: included_by_method(inv.hba_rules.as_deref().unwrap_or_default()),
        hba_lines_by_method: lines,
        password_encryption: inv.password_encryption,
        roles: roles.into_iter().map(|(role, hash)| RoleHashType { hash, role }).collect(),
        hba_problem: problem,
    })
}

/// pg_hba.conf's lines by method.
fn lines_by_method(file: &HbaFile) -> BTreeMap<String, Vec<usize>> {
    let mut by: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for r in file.records() {
        by.entry(r.record.method.to_string()).or_default().push(r.line);
    }
    by
}

/// The rules of included files by method, as the server reports them (PostgreSQL 16).
fn included_by_method(rules: &[HbaRule]) -> BTreeMap<String, Vec<String>> {
    let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in rules.iter().filter(|r| !r.in_main_file) {
        if let Some(m) = &r.method {
            by.entry(m.clone()).or_default().push(format!("{}:{}", r.file, r.line));
        }
    }
    by
}

// ---- the pg_hba.conf part of a migration: pure, tested without a server ----

/// Where a pg_hba.conf rule is written: `line N` of pg_hba.conf, or `file:N` in a file it includes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HbaPlace {
    pub file: PathBuf,
    pub line: usize,
    /// In a file pg_hba.conf includes, not pg_hba.conf itself.
    pub included: bool,
}

impl fmt::Display for HbaPlace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.included { write!(f, "{}:{}", self.file.display(), self.line) } else { write!(f, "line {}", self.line) }
    }
}

/// An md5 rule that cannot become scram-sha-256: these roles keep md5 hashes and may log in through it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blocked {
    pub place: HbaPlace,
    pub roles: Vec<String>,
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let roles: Vec<String> = self.roles.iter().map(|r| format!("{r:?}")).collect();
        write!(f, "{}: {}", self.place, roles.join(", "))
    }
}

/// The md5 rules of pg_hba.conf and its included files, sorted into the ones to switch and the blocked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HbaSwitch {
    pub switch: Vec<HbaPlace>,
    pub blocked: Vec<Blocked>,
}

/// How to go back after a migration, if a client cannot do SCRAM.
pub const WAY_BACK: &str = "Way back, if a client cannot do SCRAM: put back the pg_hba.conf backup named above (or \
     `qrd hba` the lines back to md5) and reload; `ALTER SYSTEM SET password_encryption = 'md5'`, reload, and \
     `qrd password set ROLE` for each role that must have an md5 hash again (SCRAM verifiers cannot be turned \
     into md5 ones without the password).";

/// Sorts every md5 rule of `tree`: a rule no role of `staying_md5` may log in through switches; the
/// others are blocked. A rule counts as admitting a role unless it surely does not (a regular expression,
/// an unread `@file` or unknown memberships may admit it): a lock-out is worse than a rule left md5.
pub fn plan_hba_switch(tree: &HbaTree, staying_md5: &[&str], facts: &Facts) -> HbaSwitch {
    let mut out = HbaSwitch::default();
    for f in tree.files() {
        for r in f.file.records().filter(|r| r.record.method == Method::Md5) {
            let place = HbaPlace { file: f.path.clone(), line: r.line, included: !f.is_main() };
            let roles: Vec<String> = staying_md5
                .iter()
                .filter(|u| admits_user(r.record, u, facts) != Some(false))
                .map(|u| u.to_string())
                .collect();
            if roles.is_empty() {
                out.switch.push(place);
            } else {
                out.blocked.push(Blocked { place, roles });
            }
        }
    }
    out
}

/// The edits that switch `switch`'s rules to scram-sha-256 (the METHOD word only), one per file, as one
/// checked write.
pub fn hba_edits(tree: &HbaTree, switch: &[HbaPlace]) -> Result<CheckedWrite, EditError> {
    let mut write = CheckedWrite::new();
    for f in tree.files() {
        let lines: Vec<usize> = switch.iter().filter(|p| p.file == f.path).map(|p| p.line).collect();
        if lines.is_empty() {
            continue;
        }
        let mut file = f.file.clone();
        for line in lines {
            file.set_method(line, Method::ScramSha256)?;
        }
        write.add(FileEdit::new(&f.path, f.text.clone(), file.render()), FileKind::Hba);
    }
    Ok(write)
}

/// `places` by file, in order: `pg_hba.conf` for the main file, else the included file's path.
fn by_file(places: &[HbaPlace]) -> Vec<(String, Vec<usize>)> {
    let mut out: Vec<(String, Vec<usize>)> = Vec::new();
    for p in places {
        let name = if p.included { p.file.display().to_string() } else { "pg_hba.conf".to_owned() };
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, lines)) => lines.push(p.line),
            None => out.push((name, vec![p.line])),
        }
    }
    out
}

// ---- migrate ----

/// What the DBA asked for.
#[derive(Debug, Clone, Default)]
pub struct MigrateRequest {
    /// The roles whose passwords to re-hash; empty: the repository role and the connecting user.
    pub roles: Vec<String>,
    /// `--role-password-file ROLE=FILE`; else the roles' variables, else a prompt.
    pub role_password_files: Vec<(String, PathBuf)>,
    /// Accept a password that differs from the role's current one (it becomes the new password).
    pub change_password: bool,
    /// Switch only the md5 rules no md5 role logs in through instead of refusing.
    pub partial_hba: bool,
    pub repo_user: String,
}

/// One role of the migration.
#[derive(Debug, Clone)]
pub struct RolePlan {
    pub name: String,
    /// The type of the verifier stored now.
    pub stored: HashType,
    /// The password given differs from the current one (then Qlik's copies must be updated).
    pub changes_password: bool,
    /// The password to store as SCRAM; `None` when the role keeps what it has.
    password: Option<Secret>,
}

impl RolePlan {
    /// The role's password is re-set as a SCRAM verifier.
    pub fn rehash(&self) -> bool {
        self.password.is_some()
    }
}

/// The whole migration, decided and checked for lock-outs; nothing changed yet.
#[derive(Debug, Clone)]
pub struct MigratePlan {
    pub roles: Vec<RolePlan>,
    /// The repository role (its password is in every Qlik node's connection string).
    pub repo_user: String,
    /// `password_encryption` now.
    pub password_encryption: String,
    pub hba: HbaSwitch,
    /// pg_hba.conf and the included files with md5 rules to switch.
    pub write: CheckedWrite,
}

impl MigratePlan {
    /// `password_encryption` is scram-sha-256 already.
    pub fn encryption_ok(&self) -> bool {
        self.password_encryption == "scram-sha-256"
    }

    pub fn to_rehash(&self) -> impl Iterator<Item = &RolePlan> {
        self.roles.iter().filter(|p| p.rehash())
    }

    /// Nothing left to do: setting, roles and pg_hba.conf are SCRAM already.
    pub fn is_noop(&self) -> bool {
        self.encryption_ok() && self.to_rehash().next().is_none() && !self.write.is_change()
    }

    /// The rules to switch, by file (`pg_hba.conf` for the main file), for messages.
    /// What applying the plan would do, one sentence per step (`--dry-run`).
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.encryption_ok() {
            out.push(format!(
                "would run ALTER SYSTEM SET password_encryption = 'scram-sha-256' and reload (now {})",
                self.password_encryption
            ));
        }
        for p in self.to_rehash() {
            let how = if p.changes_password { "set a NEW password for" } else { "re-hash the current password of" };
            out.push(format!(
                "would {how} role {:?} as SCRAM-SHA-256 (verifier computed here) and log in to verify",
                p.name
            ));
        }
        if self.write.is_change() {
            let lines: Vec<String> =
                self.switch_by_file().iter().map(|(file, lines)| format!("{file} line(s) {lines:?}")).collect();
            out.push(format!("would switch md5 → scram-sha-256 on {}:", lines.join("; ")));
        }
        out
    }

    pub fn switch_by_file(&self) -> Vec<(String, Vec<usize>)> {
        by_file(&self.hba.switch)
    }
}

/// A role whose password the migration changed, and where a Qlik site keeps a copy of it.
#[derive(Debug, Clone, Serialize)]
pub struct PasswordChanged {
    pub role: String,
    pub update: Vec<String>,
}

/// What the migration did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MigrateOutcome {
    pub changed_passwords: Vec<PasswordChanged>,
}

/// Step 1: plans the migration of the server `loc` reaches (its pg_hba.conf found by
/// [`qrd_server::locate()`]). Passwords are read (file, variable, prompt) and checked against the stored
/// hashes; every login role's hash type is read so that no md5 rule a role keeping md5 logs in through is
/// switched ([`AuthError::LockOut`], unless `partial_hba`).
pub async fn plan_migrate(loc: &Located, req: &MigrateRequest) -> Result<MigratePlan, AuthError> {
    let (Some(session), Some(server)) = (&loc.session, &loc.server) else {
        return Err(AuthError::NoServer);
    };
    let me = session.target().user.clone();
    let mut role_names: Vec<String> = Vec::new();
    let asked = if req.roles.is_empty() { vec![req.repo_user.clone(), me.clone()] } else { req.roles.clone() };
    for r in asked {
        if !role_names.contains(&r) {
            role_names.push(r);
        }
    }

    let sources = RolePasswords { files: req.role_password_files.clone(), repo_role: req.repo_user.clone() };
    let found = stored::role_hashes(session, &role_names).await?;
    let mut roles = Vec::new();
    for name in &role_names {
        let current = verify::require_role(&found, name, &req.repo_user)?;
        let keep = |password| RolePlan { name: name.clone(), stored: current.hash, changes_password: false, password };
        if current.hash == HashType::ScramSha256 {
            roles.push(keep(None));
            continue;
        }
        // No password at all (e.g. a superuser that logs in by peer): nothing to re-hash, and giving it one
        // would open it to every password line. Only on request.
        if current.hash == HashType::None && !req.change_password {
            tracing::info!("role {name:?} has no password: nothing to re-hash (use `qrd password set` to give it one)");
            roles.push(keep(None));
            continue;
        }
        let pw = sources.current(name)?;
        let same = current.matches(&pw);
        if !same && current.hash != HashType::None && !req.change_password {
            return Err(AuthError::NotCurrentPassword { role: name.clone(), hash: current.hash });
        }
        if mixes_character_sets(pw.expose()) {
            tracing::warn!(
                "the password of {name:?} mixes character sets; the guide says Qlik's services fail on that"
            );
        }
        roles.push(RolePlan { changes_password: !same, ..keep(Some(pw)) });
    }

    // Login roles that keep an md5 hash after this migration.
    let inv = Inventory::gather(session, &RepoSpec::new(&req.repo_user)).await?;
    let all_login = inv.login_roles.ok_or(AuthError::LoginRolesUnknown { user: me })?;
    let staying_md5: Vec<&str> = all_login
        .iter()
        .filter(|(n, h)| *h == HashType::Md5 && !roles.iter().any(|p| &p.name == n))
        .map(|(n, _)| n.as_str())
        .collect();

    // PostgreSQL 12–15 refuse a pg_hba.conf with include lines: only 16 reads included files.
    let tree = if server.major >= 16 {
        HbaTree::load(&loc.path, &loc.text)?
    } else {
        HbaTree::main_only(&loc.path, &loc.text)?
    };
    for (path, from) in tree.skipped() {
        tracing::debug!("{from}: {} does not exist; the server skips it too (include_if_exists)", path.display());
    }
    let mut facts = Facts::new(server.major);
    facts.roles = Some(Roles::from_memberships(&qrd_pg::serverconf::memberships(session).await?));
    let hba = plan_hba_switch(&tree, &staying_md5, &facts);
    if !hba.blocked.is_empty() {
        let mut with_roles = role_names.clone();
        let mut blocking: Vec<&String> = hba.blocked.iter().flat_map(|b| &b.roles).collect();
        blocking.sort_unstable();
        blocking.dedup();
        with_roles.extend(blocking.into_iter().cloned());
        let refusal = AuthError::LockOut { blocked: hba.blocked.clone(), with_roles };
        if !req.partial_hba {
            return Err(refusal);
        }
        tracing::warn!("{refusal}\n  --partial-hba: those lines stay md5");
    }
    let write = hba_edits(&tree, &hba.switch)?;
    for p in roles.iter().filter(|p| p.stored == HashType::ScramSha256) {
        tracing::info!("role {:?} already has a SCRAM-SHA-256 verifier", p.name);
    }
    Ok(MigratePlan {
        roles,
        repo_user: req.repo_user.clone(),
        password_encryption: server.password_encryption.clone(),
        hba,
        write,
    })
}

/// Steps 2–5: setting, role passwords, pg_hba.conf and its included files, fresh logins; each verified
/// before the next.
pub async fn apply_migrate(session: &Session, plan: &MigratePlan) -> Result<MigrateOutcome, AuthError> {
    // ---- 2. password_encryption.
    if !plan.encryption_ok() {
        qrd_pg::serverconf::alter_system(session, "password_encryption", "scram-sha-256")
            .await
            .map_err(|e| AuthError::AlterSystem { message: e.message })?;
        qrd_pg::serverconf::reload(session).await?;
        let now = qrd_pg::serverconf::settings(session, &["password_encryption".to_owned()]).await?;
        let value = now.first().map(|r| r.setting.clone()).unwrap_or_default();
        if value != "scram-sha-256" {
            return Err(AuthError::EncryptionNotApplied { value });
        }
        tracing::info!("password_encryption = scram-sha-256 (ALTER SYSTEM, reloaded, verified)");
    }

    // ---- 3. role passwords.
    let rehash: Vec<(&RolePlan, &Secret)> = plan.roles.iter().filter_map(|p| Some((p, p.password.as_ref()?))).collect();
    for (p, pw) in &rehash {
        stored::set_password(session, &p.name, pw, Encryption::ScramSha256).await?;
        verify::verify_stored(session, &p.name, pw, HashType::ScramSha256).await?;
        tracing::info!("role {:?}: stored as SCRAM-SHA-256 (verified in pg_authid)", p.name);
        verify::verify_login(session, &p.name, pw).await?;
    }

    // ---- 4. pg_hba.conf and the files it includes: one change, all or nothing.
    if plan.write.is_change() {
        plan.write.apply(Some(session), WriteOptions { dry_run: false, reload: true }).await?;
        for (file, lines) in plan.switch_by_file() {
            tracing::info!("{file}: md5 → scram-sha-256 on line(s) {lines:?}");
        }
        // ---- 5. fresh logins through the new rules.
        for (p, pw) in &rehash {
            verify::verify_login(session, &p.name, pw).await?;
        }
    }
    Ok(MigrateOutcome {
        changed_passwords: rehash
            .iter()
            .filter(|(p, _)| p.changes_password)
            .map(|(p, _)| PasswordChanged { role: p.name.clone(), update: qlik_followups(&p.name, &plan.repo_user) })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(memberships: &[(&str, &[&str])]) -> Facts {
        let mut f = Facts::new(16);
        let mut roles = Roles::new();
        for (role, of) in memberships {
            roles.add(role, of.iter().copied());
        }
        f.roles = Some(roles);
        f
    }

    fn place(file: &Path, line: usize, included: bool) -> HbaPlace {
        HbaPlace { file: file.to_path_buf(), line, included }
    }

    #[test]
    fn a_rule_an_md5_role_logs_in_through_is_blocked() {
        let path = Path::new("/d/pg_hba.conf");
        let text = "local all all peer\n\
                    host all qliksenserepository 10.0.0.0/8 md5\n\
                    host all bob 10.0.0.0/8 md5\n\
                    host all +monitoring 10.0.0.0/8 md5\n\
                    host all /^b 10.0.0.0/8 md5\n\
                    host all all 10.0.0.0/8 scram-sha-256\n";
        let tree = HbaTree::main_only(path, text).unwrap();
        // bob keeps md5 and is a member of monitoring; carol keeps md5 and is in no group.
        let f = facts(&[("bob", &["monitoring"]), ("carol", &[]), ("monitoring", &[]), ("qliksenserepository", &[])]);
        let plan = plan_hba_switch(&tree, &["bob", "carol"], &f);
        assert_eq!(plan.switch, [place(path, 2, false)]);
        let blocked: Vec<String> = plan.blocked.iter().map(ToString::to_string).collect();
        // A regular expression may admit anyone: both count as blocked there.
        assert_eq!(blocked, [r#"line 3: "bob""#, r#"line 4: "bob""#, r#"line 5: "bob", "carol""#]);
        // Nobody left on md5: every md5 rule switches.
        let plan = plan_hba_switch(&tree, &[], &f);
        assert_eq!(plan.switch.iter().map(|p| p.line).collect::<Vec<_>>(), [2, 3, 4, 5]);
        assert!(plan.blocked.is_empty());
    }

    #[test]
    fn md5_rules_switch_in_every_file_and_only_the_method_word_changes() {
        let d = tempfile::tempdir().unwrap();
        let main = d.path().join("pg_hba.conf");
        let inc = d.path().join("hba.d/10-nodes.conf");
        std::fs::create_dir(d.path().join("hba.d")).unwrap();
        let inc_text = "# nodes\r\nhost  QSR  qliksenserepository  10.0.0.0/24  md5   # node 1\r\nhost all bob 10.1.0.0/16 md5\r\n";
        std::fs::write(&inc, inc_text).unwrap();
        let text = "local all all peer\ninclude_dir hba.d\nhost all all ::1/128 md5\n";
        std::fs::write(&main, text).unwrap();
        let tree = HbaTree::load(&main, text).unwrap();
        let f = facts(&[("bob", &[]), ("qliksenserepository", &[])]);
        let plan = plan_hba_switch(&tree, &["bob"], &f);
        assert_eq!(plan.switch, [place(&inc, 2, true)]);
        assert_eq!(plan.blocked.len(), 2);
        assert_eq!(plan.blocked[0].to_string(), r#"line 3: "bob""#);
        assert_eq!(plan.blocked[1].to_string(), format!(r#"{}:3: "bob""#, inc.display()));
        let write = hba_edits(&tree, &plan.switch).unwrap();
        let diffs = write.diffs();
        assert_eq!(diffs.len(), 1, "only the included file changes: {diffs:?}");
        assert!(
            diffs[0].contains("+host  QSR  qliksenserepository  10.0.0.0/24  scram-sha-256   # node 1"),
            "{}",
            diffs[0]
        );
        // Without bob: both files, one change.
        let plan = plan_hba_switch(&tree, &[], &f);
        let write = hba_edits(&tree, &plan.switch).unwrap();
        assert_eq!(write.diffs().len(), 2);
        let by = by_file(&plan.switch);
        assert_eq!(by, [("pg_hba.conf".to_owned(), vec![3]), (inc.display().to_string(), vec![2, 3])]);
    }

    #[test]
    fn status_json_keeps_its_shape() {
        let s = ScramStatus {
            hba_included_lines_by_method: BTreeMap::new(),
            hba_lines_by_method: Some(BTreeMap::from([("md5".to_owned(), vec![2, 3])])),
            password_encryption: "md5".into(),
            roles: vec![RoleHashType { hash: HashType::ScramSha256, role: "it's me".into() }],
            hba_problem: None,
        };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"hba_lines_by_method":{"md5":[2,3]},"password_encryption":"md5","roles":[{"hash":"scram-sha-256","role":"it's me"}]}"#
        );
        assert_eq!(s.next_step().as_deref(), Some("qrd scram migrate"));
    }
}
