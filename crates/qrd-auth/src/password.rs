//! `qrd password set ROLE`: the guide's `ALTER USER … WITH PASSWORD` done right. The verifier is computed
//! here for the server's `password_encryption`, so the plaintext never reaches the server or its logs;
//! the stored hash and a real login are checked afterwards.

use std::path::PathBuf;

use qrd_pg::password::stored;
use qrd_pg::password::verifier::{Encryption, HashType};
use qrd_pg::{Secret, Session};

use crate::error::AuthError;
use crate::qlik::{mixes_character_sets, qlik_followups};
use crate::source;
use crate::verify::{self, Login};

/// What the DBA asked for.
#[derive(Debug, Clone)]
pub struct SetRequest {
    pub role: String,
    /// The repository role (`--repo-user`): its password is in every Qlik node's connection string.
    pub repo_role: String,
    /// `--new-password-file`; else [`source::NEW_PASSWORD_ENV`], else a prompt.
    pub new_password_file: Option<PathBuf>,
}

/// The change, decided; nothing changed yet.
#[derive(Debug, Clone)]
pub struct SetPlan {
    pub role: String,
    pub repo_role: String,
    /// The verifier to send: the server's `password_encryption`, except that SCRAM is never downgraded.
    pub encryption: Encryption,
    /// The type of the verifier stored now; `None` when this session may not read `pg_authid` (a managed
    /// server's admin): then the type cannot be kept or checked, and a login as the role proves the change.
    pub stored: Option<HashType>,
    /// The role already has this password, stored as `encryption` asks: nothing to do.
    pub unchanged: bool,
    /// The password differs from the current one (then every copy a Qlik site keeps must be updated).
    pub changes_password: bool,
    password: Secret,
}

impl SetPlan {
    pub fn is_noop(&self) -> bool {
        self.unchanged
    }

    /// The change in words: `set the password of role "r" as a scram-sha-256 verifier computed here; …`.
    pub fn describe(&self) -> String {
        format!(
            "set the password of role {:?} as a {} verifier computed here; the stored hash was {}",
            self.role,
            self.encryption.hash_type().as_str(),
            self.stored.map_or("not readable here (no pg_authid)", HashType::as_str)
        )
    }

    /// Where a Qlik site keeps a copy of the password; empty when the password stays the same.
    pub fn followups(&self) -> Vec<String> {
        if self.changes_password { qlik_followups(&self.role, &self.repo_role) } else { Vec::new() }
    }
}

/// Reads the role and the server's `password_encryption`, then the new password (the role is checked
/// first, so a typo in its name never costs a prompt).
pub async fn plan_set(session: &Session, req: &SetRequest) -> Result<SetPlan, AuthError> {
    if !stored::reads_authid(session).await? {
        return plan_set_without_authid(session, req).await;
    }
    let paths = qrd_pg::serverconf::facts(session).await?;
    let found = stored::role_hashes(session, std::slice::from_ref(&req.role)).await?;
    let current = verify::require_role(&found, &req.role, &req.repo_role)?;
    // Never downgrade: a role with a SCRAM verifier keeps SCRAM even while password_encryption is md5 (an
    // md5 hash would lock it out of scram-sha-256 lines; md5 lines accept SCRAM verifiers).
    let encryption = match Encryption::from_setting(&paths.password_encryption) {
        Encryption::Md5 if current.hash == HashType::ScramSha256 => {
            tracing::info!(
                "role {:?} has a SCRAM-SHA-256 verifier: keeping SCRAM although password_encryption = md5",
                req.role
            );
            Encryption::ScramSha256
        }
        e => e,
    };
    let password = new_password(req)?;
    let same = current.matches(&password);
    Ok(SetPlan {
        role: req.role.clone(),
        repo_role: req.repo_role.clone(),
        encryption,
        stored: Some(current.hash),
        unchanged: same && current.hash == encryption.hash_type(),
        changes_password: !same,
        password,
    })
}

/// Sets the password (statement logging and every other recorder off, see [`stored::set_password`])
/// and reads the stored verifier back.
pub async fn apply_set(session: &Session, plan: &SetPlan) -> Result<(), AuthError> {
    if plan.stored.is_none() {
        let left = stored::recorders_left_on(session).await?;
        if let Some(n) = stored::recorders_note(&session.target().user, &left) {
            tracing::info!("{n}");
        }
    }
    stored::set_password(session, &plan.role, &plan.password, plan.encryption).await?;
    match plan.stored {
        Some(_) => verify::verify_stored(session, &plan.role, &plan.password, plan.encryption.hash_type()).await,
        // Nothing to read back: the verification login (unless --no-verify) proves it.
        None => Ok(()),
    }
}

/// [`plan_set`] for a session that may not read `pg_authid` (a managed server's admin, no superuser): the
/// role from `pg_roles`, the verifier for the server's `password_encryption` (the stored type is unknown,
/// so SCRAM cannot be kept on an md5 server), and the same password again known by a login as the role.
async fn plan_set_without_authid(session: &Session, req: &SetRequest) -> Result<SetPlan, AuthError> {
    let paths = qrd_pg::serverconf::facts(session).await?;
    let found = stored::role_logins(session, std::slice::from_ref(&req.role)).await?;
    let Some((_, can_login)) = found.iter().find(|(name, _)| *name == req.role) else {
        return Err(AuthError::NoSuchRole {
            role: req.role.clone(),
            repo_role: (req.role == req.repo_role).then(|| req.repo_role.clone()),
        });
    };
    if !can_login {
        tracing::warn!("role {:?} cannot log in (NOLOGIN): its password is never used", req.role);
    }
    tracing::info!(
        "{:?} may not read pg_authid: the stored password is not compared or read back; a login as {:?} proves it",
        session.target().user,
        req.role
    );
    let password = new_password(req)?;
    let same = stored::login_proves(session, &req.role, &password).await == Some(true);
    Ok(SetPlan {
        role: req.role.clone(),
        repo_role: req.repo_role.clone(),
        encryption: Encryption::from_setting(&paths.password_encryption),
        stored: None,
        unchanged: same,
        changes_password: !same,
        password,
    })
}

/// A real login as the role with the (new) password, over the session's route.
pub async fn verify_set(session: &Session, plan: &SetPlan) -> Result<Login, AuthError> {
    verify::verify_login(session, &plan.role, &plan.password).await
}

/// The new password (file, variable or prompt), with the guide's warning about mixed character sets.
fn new_password(req: &SetRequest) -> Result<Secret, AuthError> {
    let password = source::new_password(req.new_password_file.as_deref(), &req.role)?;
    if mixes_character_sets(password.expose()) || mixes_character_sets(&req.role) {
        tracing::warn!(
            "the role name or password mixes character sets; the guide's troubleshooting says Qlik's services then \
             fail to connect to the repository. Prefer one character set (e.g. ASCII only)."
        );
    }
    Ok(password)
}
