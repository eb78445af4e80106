//! `qrd password set ROLE`: the guide's `ALTER USER … WITH PASSWORD` done right. The verifier is computed
//! here for the server's `password_encryption`, so the plaintext never reaches the server or its logs;
//! the stored hash and a real login are checked afterwards.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use qrd_conf::hba::{Client, Facts, HbaFile, Method, Outcome, Request, Roles};
use qrd_pg::connect::ConnectErrorKind;
use qrd_pg::security::{self, RoleHash};
use qrd_pg::verifier::{Encryption, HashType};
use qrd_pg::{Secret, Session, password};

use crate::error::{CliError, ExitStatus};
use crate::options::{ConnectArgs, HelpArg};
use crate::output::note;

/// Where the new password comes from when no file is given.
pub const NEW_PASSWORD_ENV: &str = "QRD_NEW_PASSWORD";

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct PasswordArgs {
    #[command(subcommand)]
    pub command: PasswordCommand,
    #[command(flatten)]
    pub help: HelpArg,
}

#[derive(Debug, Subcommand)]
pub enum PasswordCommand {
    /// Set a role's password from a verifier computed here; verify the stored hash and a real login
    Set(SetArgs),
}

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct SetArgs {
    /// The role whose password to set
    #[arg(value_name = "ROLE")]
    pub role: String,
    /// Read the new password from FILE (else QRD_NEW_PASSWORD, else a prompt on a terminal, typed twice)
    #[arg(long, value_name = "FILE")]
    pub new_password_file: Option<PathBuf>,
    /// Say what would be done and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Skip the verification login as the role
    #[arg(long)]
    pub no_verify: bool,
    #[command(flatten)]
    pub conn: ConnectArgs,
    #[command(flatten)]
    pub help: HelpArg,
}

pub async fn execute(args: PasswordArgs) -> Result<ExitStatus, CliError> {
    match args.command {
        PasswordCommand::Set(a) => set(a).await,
    }
}

fn refused(msg: impl Into<String>) -> CliError {
    CliError::new(ExitStatus::Refused, msg)
}

/// The new password: --new-password-file, QRD_NEW_PASSWORD, or a prompt typed twice. Empty is refused.
fn new_password(args: &SetArgs) -> Result<Secret, CliError> {
    let pw = match &args.new_password_file {
        Some(path) => password::from_file(path).map_err(|e| CliError::new(ExitStatus::Usage, e.to_string()))?,
        None => match password::from_env(NEW_PASSWORD_ENV).map_err(|e| refused(e.to_string()))? {
            Some(pw) => pw,
            None => password::prompt(&format!("New password for role {:?}", args.role), true).map_err(|e| {
                refused(e.to_string())
                    .hint(format!("give --new-password-file FILE (mode 0600) or set {NEW_PASSWORD_ENV}"))
            })?,
        },
    };
    Ok(pw)
}

/// The guide's troubleshooting: Qlik's services fail to connect when the user name or password mixes
/// character sets. We call a text mixed when its characters come from more than one of: ASCII, other
/// Latin, Greek, Cyrillic, CJK, anything else.
pub(crate) fn mixes_character_sets(s: &str) -> bool {
    let class = |c: char| match c as u32 {
        0..=0x7f => 0,
        0x80..=0x24f | 0x1e00..=0x1eff => 1,
        0x370..=0x3ff => 2,
        0x400..=0x52f => 3,
        0x3040..=0x30ff | 0x3400..=0x4dbf | 0x4e00..=0x9fff | 0xac00..=0xd7af => 4,
        _ => 5,
    };
    let mut seen = [false; 6];
    s.chars().for_each(|c| seen[class(c)] = true);
    seen.iter().filter(|s| **s).count() > 1
}

/// Where a Qlik site keeps a copy of this role's password: after a change, each must be updated or the
/// services cannot connect.
pub(crate) fn qlik_followups(role: &str, repo_role: &str) -> Vec<String> {
    if role != repo_role {
        return vec![
            format!("anything that logs in as {role:?}: monitoring data connections, scripts, ~/.pgpass entries"),
            "if a Qlik node or service uses this role, update its connection settings too".to_owned(),
        ];
    }
    vec![
        "on EVERY Qlik Sense node: the repository connection string, with the Connection String Editor \
         (C:\\Program Files\\Qlik\\Sense\\Repository\\Util\\QlikSenseUtil\\QlikSenseUtil.exe, run as administrator: \
         Read, change the password, Save), then restart the Qlik Sense services"
            .to_owned(),
        "the services controlled by the Service Dispatcher that connect to the databases themselves, e.g. \
         C:\\Program Files\\Qlik\\Sense\\Licenses\\appsettings.json (Licenses) and the other services' appsettings"
            .to_owned(),
        "monitoring apps' data connections (qrs_* / QLogs style connections to the repository database) and any \
         backup or monitoring job that logs in as this role"
            .to_owned(),
    ]
}

/// Re-reads `role` and checks its stored verifier: the expected type, made from `password`.
pub(crate) async fn verify_stored(
    session: &Session,
    role: &str,
    password: &Secret,
    expect: HashType,
) -> Result<(), CliError> {
    let found = security::role_hashes(session, &[role.to_owned()]).await?;
    let ok = found.first().is_some_and(|r| r.hash == expect && r.matches(password));
    if ok {
        Ok(())
    } else {
        Err(CliError::new(
            ExitStatus::Failed,
            format!(
                "after ALTER ROLE, the stored password of {role:?} is not a {} verifier of the new password",
                expect.as_str()
            ),
        )
        .hint(
            "something else changed the role at the same time, or a hook rewrote the password; run the command again",
        ))
    }
}

/// A real login as `role`: `Ok(true)` when it worked, `Ok(false)` with a warning when the route cannot
/// say (no pg_hba line for us, a non-password method), an error when the server refuses the password.
pub(crate) async fn verify_login(session: &Session, role: &str, password: &Secret) -> Result<bool, CliError> {
    match security::verify_login(session, role, password).await {
        Ok(()) => {
            match route_method(session, role).await {
                Some(m) if !matches!(m, Method::ScramSha256 | Method::Md5 | Method::Password) => note(format!(
                    "warning: role {role:?} logged in, but the pg_hba.conf rule for this route uses {m}: the password \
                     itself was not exercised (connect with -h to an address whose rule asks for scram-sha-256)"
                )),
                _ => note(format!("verified: role {role:?} logs in with the password")),
            }
            Ok(true)
        }
        Err(e) if e.kind == ConnectErrorKind::Auth && e.reason.contains("password authentication failed") => {
            Err(CliError::new(
                ExitStatus::Failed,
                format!("the stored password is right, but logging in as {role:?} failed: {}", e.reason),
            )
            .hint("check the pg_hba.conf line this connection uses (`qrd hba explain`): md5 or scram-sha-256"))
        }
        Err(e) => {
            note(format!("warning: could not verify by logging in as {role:?} from here: {}", e.reason));
            Ok(false)
        }
    }
}

/// The method of the pg_hba.conf rule a login as `role` over this session's route meets, when the server
/// lets us read the file.
async fn route_method(session: &Session, role: &str) -> Option<Method> {
    let text = security::hba_text(session).await?;
    let file = HbaFile::parse(&text, std::path::Path::new("pg_hba.conf")).ok()?;
    let paths = qrd_pg::serverconf::paths(session).await.ok()?;
    let client = match security::client_addr(session).await.ok()? {
        Some(ip) => Client::Tcp(ip),
        None => Client::Local,
    };
    let ssl = security::session_uses_ssl(session).await.unwrap_or(false);
    let mut facts = Facts::new(paths.major);
    facts.roles = Some(Roles::from_memberships(&qrd_pg::serverconf::memberships(session).await.ok()?));
    let req = Request::new(client, role, &session.target().dbname).with_ssl(ssl);
    match file.explain(&req, &facts) {
        Outcome::Matched { method, .. } => Some(method),
        _ => None,
    }
}

pub(crate) fn require_role<'a>(found: &'a [RoleHash], role: &str, repo_role: &str) -> Result<&'a RoleHash, CliError> {
    let r = found.iter().find(|r| r.name == role).ok_or_else(|| {
        let hint = if role == repo_role {
            "create it with `qrd provision`".to_owned()
        } else {
            "check the name (role names are case-sensitive)".to_owned()
        };
        refused(format!("role {role:?} does not exist")).hint(hint)
    })?;
    if !r.can_login {
        note(format!("warning: role {role:?} cannot log in (NOLOGIN): its password is never used"));
    }
    Ok(r)
}

async fn set(args: SetArgs) -> Result<ExitStatus, CliError> {
    let repo_role = qrd_pg::spec::DEFAULT_REPO_ROLE;
    let session = Session::open(&args.conn.opts()).await?;
    let paths = qrd_pg::serverconf::paths(&session).await?;
    let found = security::role_hashes(&session, std::slice::from_ref(&args.role)).await?;
    let current = require_role(&found, &args.role, repo_role)?;
    // Never downgrade: a role with a SCRAM verifier keeps SCRAM even while password_encryption is md5 (an
    // md5 hash would lock it out of scram-sha-256 lines; md5 lines accept SCRAM verifiers).
    let encryption = match Encryption::from_setting(&paths.password_encryption) {
        Encryption::Md5 if current.hash == HashType::ScramSha256 => {
            note(format!(
                "role {:?} has a SCRAM-SHA-256 verifier: keeping SCRAM although password_encryption = md5",
                args.role
            ));
            Encryption::ScramSha256
        }
        e => e,
    };
    let pw = new_password(&args)?;
    if mixes_character_sets(pw.expose()) || mixes_character_sets(&args.role) {
        note(
            "warning: the role name or password mixes character sets; the guide's troubleshooting says Qlik's \
             services then fail to connect to the repository. Prefer one character set (e.g. ASCII only).",
        );
    }
    let expect = encryption.hash_type();
    if current.hash == expect && current.matches(&pw) {
        note(format!("role {:?} already has this password, stored as {}: nothing to do", args.role, expect.as_str()));
        if !args.no_verify && !args.dry_run {
            verify_login(&session, &args.role, &pw).await?;
        }
        return Ok(ExitStatus::Success);
    }
    let what = format!(
        "set the password of role {:?} as a {} verifier computed here; the stored hash was {}",
        args.role,
        expect.as_str(),
        current.hash.as_str()
    );
    if args.dry_run {
        note(format!("dry run: would {what}"));
        return Ok(ExitStatus::Success);
    }
    security::set_password(&session, &args.role, &pw, encryption).await?;
    verify_stored(&session, &args.role, &pw, expect).await?;
    note(format!("done: {what}"));
    // The list first: it holds whatever the verification login says.
    if !current.matches(&pw) {
        println!("The password of {:?} changed. Update every place that stores it:", args.role);
        for f in qlik_followups(&args.role, repo_role) {
            println!("  - {f}");
        }
    }
    if !args.no_verify {
        verify_login(&session, &args.role, &pw).await?;
    }
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_character_sets() {
        assert!(!mixes_character_sets("Plain-ascii_123!"));
        assert!(!mixes_character_sets("пароль"));
        assert!(mixes_character_sets("pass-пароль"));
        assert!(mixes_character_sets("Kennwort-ä"));
        assert!(!mixes_character_sets("äöüß"));
        assert!(mixes_character_sets("パスword"));
    }
}
