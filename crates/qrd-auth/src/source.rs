//! Where a password comes from: a file named on the command line, an environment variable, or a prompt on
//! a terminal — never argv. The environment variables' names have their one home here.

use std::path::{Path, PathBuf};

use qrd_pg::{Secret, password};
use qrd_pgbin::shell_quote;

use crate::error::AuthError;

/// The repository role's password (for scripts; a file is safer). `qrd provision` reads it, and so does
/// `qrd scram migrate` for the repository role.
pub const REPO_PASSWORD_ENV: &str = "QRD_REPO_PASSWORD";

/// `qrd password set`'s new password when no file is given.
pub const NEW_PASSWORD_ENV: &str = "QRD_NEW_PASSWORD";

/// The prefix of [`password_env`]'s variables.
pub const ROLE_PASSWORD_ENV_PREFIX: &str = "QRD_PASSWORD_";

/// The variable holding `role`'s current password: `QRD_PASSWORD_<ROLE>`.
///
/// A role name of lower-case ASCII letters, digits and `_` (not starting with `_`) — every name written
/// unquoted in SQL, `qliksenserepository` and `postgres` among them — is simply upper-cased:
/// `QRD_PASSWORD_POSTGRES`. Any other name is written as `_` and the hexadecimal of its UTF-8 bytes:
/// `a-b` → `QRD_PASSWORD__612D62`, `Bob` → `QRD_PASSWORD__426F62`. The mapping is one-to-one: the plain form
/// never starts with `_` and upper-casing loses nothing on those names, so no two roles share a variable
/// (`a-b` and `a_b`, or `Bob` and `bob`, once did).
pub fn password_env(role: &str) -> String {
    let plain = role.bytes().next().is_some_and(|b| b != b'_')
        && role.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if plain {
        format!("{ROLE_PASSWORD_ENV_PREFIX}{}", role.to_ascii_uppercase())
    } else {
        let hex: String = role.bytes().map(|b| format!("{b:02X}")).collect();
        format!("{ROLE_PASSWORD_ENV_PREFIX}_{hex}")
    }
}

/// A new password for `role`: `file`, else [`NEW_PASSWORD_ENV`], else a prompt typed twice. Empty is refused.
pub fn new_password(file: Option<&Path>, role: &str) -> Result<Secret, AuthError> {
    let alternatives = format!("--new-password-file FILE (mode 0600) or set {NEW_PASSWORD_ENV}");
    let err = |e| AuthError::password(e, alternatives.clone());
    if let Some(path) = file {
        return password::from_file(path).map_err(err);
    }
    match password::from_env(NEW_PASSWORD_ENV).map_err(err)? {
        Some(pw) => Ok(pw),
        None => password::prompt(&format!("New password for role {role:?}"), true).map_err(err),
    }
}

/// The repository role's password for `qrd provision`, if given: `file`, else [`REPO_PASSWORD_ENV`].
pub fn repo_password(file: Option<&Path>) -> Result<Option<Secret>, AuthError> {
    let err = |e| AuthError::password(e, format!("--repo-password-file FILE (mode 0600) or set {REPO_PASSWORD_ENV}"));
    match file {
        Some(path) => password::from_file(path).map(Some).map_err(err),
        None => password::from_env(REPO_PASSWORD_ENV).map_err(err),
    }
}

/// A new password for the repository role asked on the terminal (typed twice): for a role that needs one
/// when none was given. Without a terminal (cron, systemd) this fails with the ways to give it.
pub fn prompt_repo_password(role: &str) -> Result<Secret, AuthError> {
    let alternatives = format!("--repo-password-file FILE (mode 0600) or set {REPO_PASSWORD_ENV}");
    if !password::can_prompt() {
        return Err(AuthError::NeedsPassword { role: role.to_owned(), alternatives });
    }
    password::prompt(&format!("New password for role {role}"), true).map_err(|e| AuthError::password(e, alternatives))
}

/// Where the current passwords of the roles of a migration come from.
#[derive(Debug, Clone, Default)]
pub struct RolePasswords {
    /// `--role-password-file ROLE=FILE`.
    pub files: Vec<(String, PathBuf)>,
    /// The repository role, which also reads [`REPO_PASSWORD_ENV`].
    pub repo_role: String,
}

impl RolePasswords {
    /// The variables `role`'s password is read from, in order.
    pub fn variables(&self, role: &str) -> Vec<String> {
        let mut vars = vec![password_env(role)];
        if role == self.repo_role {
            vars.push(REPO_PASSWORD_ENV.to_owned());
        }
        vars
    }

    /// `role`'s current password: its file, else its variables, else a prompt on a terminal.
    pub fn current(&self, role: &str) -> Result<Secret, AuthError> {
        let vars = self.variables(role);
        let alternatives =
            format!("--role-password-file {}=FILE (mode 0600) or set {}", shell_quote(role), vars.join(" or "));
        let err = |e| AuthError::password(e, alternatives.clone());
        if let Some((_, file)) = self.files.iter().find(|(r, _)| r == role) {
            return password::from_file(file).map_err(err);
        }
        for var in &vars {
            if let Some(pw) = password::from_env(var).map_err(err)? {
                return Ok(pw);
            }
        }
        password::prompt(&format!("Current password of role {role:?}"), false).map_err(err)
    }
}

/// The Patroni REST API user's password for `qrd ha` (else read from a member's env file).
pub const PATRONI_API_PASSWORD_ENV: &str = "QRD_PATRONI_API_PASSWORD";

/// The variable holding the replication role's password for `qrd standby` (prepare-primary and clone).
pub const REPLICATION_PASSWORD_ENV: &str = "QRD_REPLICATION_PASSWORD";

/// The replication role's password: `file`, else [`REPLICATION_PASSWORD_ENV`], else — with `prompt` and a
/// terminal — asked (twice when `confirm`); `None` when none was given and none may be asked.
pub fn replication_password(file: Option<&Path>, prompt: bool, confirm: bool) -> Result<Option<Secret>, AuthError> {
    let alternatives = format!("--replication-password-file FILE (mode 0600) or set {REPLICATION_PASSWORD_ENV}");
    let err = |e| AuthError::password(e, alternatives.clone());
    if let Some(path) = file {
        return password::from_file(path).map(Some).map_err(err);
    }
    if let Some(pw) = password::from_env(REPLICATION_PASSWORD_ENV).map_err(err)? {
        return Ok(Some(pw));
    }
    if prompt && password::can_prompt() {
        return password::prompt("Password of the replication role", confirm).map(Some).map_err(err);
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_role_names_keep_the_simple_variable() {
        assert_eq!(password_env("qliksenserepository"), "QRD_PASSWORD_QLIKSENSEREPOSITORY");
        assert_eq!(password_env("postgres"), "QRD_PASSWORD_POSTGRES");
        assert_eq!(password_env("qlik_repo2"), "QRD_PASSWORD_QLIK_REPO2");
    }

    #[test]
    fn other_role_names_are_escaped() {
        assert_eq!(password_env("a-b"), "QRD_PASSWORD__612D62");
        assert_eq!(password_env("Bob"), "QRD_PASSWORD__426F62");
        assert_eq!(password_env("_x"), "QRD_PASSWORD__5F78");
        assert_eq!(password_env("it's me"), "QRD_PASSWORD__69742773206D65");
        assert_eq!(password_env("ü"), "QRD_PASSWORD__C3BC");
    }

    /// Every name of up to three characters from an alphabet of look-alikes gets its own variable (the old
    /// mapping gave `a-b`, `a_b`, `A_B` and `a b` one variable).
    #[test]
    fn no_two_role_names_share_a_variable() {
        let alphabet = ["a", "A", "b", "_", "-", " ", "1", "ü", "."];
        let mut names = vec![String::new()];
        for _ in 0..3 {
            let longer: Vec<String> =
                names.iter().flat_map(|n| alphabet.iter().map(move |c| format!("{n}{c}"))).collect();
            names.extend(longer);
        }
        names.sort();
        names.dedup();
        let mut seen = std::collections::HashMap::new();
        for n in &names {
            if let Some(other) = seen.insert(password_env(n), n.clone()) {
                panic!("{other:?} and {n:?} both read {}", password_env(n));
            }
        }
        assert!(seen.len() > 800);
    }

    #[test]
    fn the_repository_role_also_reads_qrd_repo_password() {
        let p = RolePasswords { files: Vec::new(), repo_role: "qlik_repo".into() };
        assert_eq!(p.variables("qlik_repo"), ["QRD_PASSWORD_QLIK_REPO", REPO_PASSWORD_ENV]);
        assert_eq!(p.variables("postgres"), ["QRD_PASSWORD_POSTGRES"]);
    }
}
