//! The server's pg_hba.conf as a command edits or explains it: found and parsed (with what the server's
//! major will read differently), written back as a checked change, and the facts first-match needs from
//! the server (role memberships) and from this machine (`@file` lists beside the file).

use qrd_conf::ParseError;
use qrd_conf::hba::{Facts, HbaFile, Method, Roles};
use qrd_conf::write::FileEdit;
use qrd_pg::connect::ConnectOpts;
use qrd_pg::inventory::QueryError;

use crate::FileKind;
use crate::checked::CheckedWrite;
use crate::locate::{FileChoice, LocateError, Located, locate};

/// pg_hba.conf loaded for a command: where it is, the server (if reached), and the parsed file to edit.
pub struct HbaEdit {
    pub loc: Located,
    pub file: HbaFile,
}

#[derive(Debug, thiserror::Error)]
pub enum HbaError {
    #[error(transparent)]
    Locate(#[from] LocateError),
    #[error("{0}")]
    Parse(#[from] ParseError),
}

impl HbaError {
    pub fn hint(&self) -> String {
        match self {
            HbaError::Locate(e) => e.hint(),
            HbaError::Parse(_) => "fix pg_hba.conf at the place named above; nothing was changed".into(),
        }
    }
}

/// Finds and parses pg_hba.conf; warns about what the server's major reads differently from what the file
/// seems to say (a byte-order mark, continuation lines on 12/13, …).
pub async fn load(choice: &FileChoice, opts: &ConnectOpts) -> Result<HbaEdit, HbaError> {
    let loc = locate(FileKind::Hba, choice, opts).await?;
    let file = HbaFile::parse(&loc.text, &loc.path)?;
    if let Some(major) = loc.major() {
        for d in file.diagnostics(major) {
            tracing::warn!("{}:{}:{}: {}", loc.path.display(), d.line, d.column, d.message);
        }
    }
    Ok(HbaEdit { loc, file })
}

impl HbaEdit {
    /// The edited file as a checked change.
    pub fn change(&self) -> CheckedWrite {
        CheckedWrite::one(FileEdit::new(&self.loc.path, self.loc.text.clone(), self.file.render()), FileKind::Hba)
    }

    /// The password method new rules get: what the server stores passwords as (`password_encryption`), else
    /// scram-sha-256.
    pub fn password_method(&self) -> Method {
        match self.loc.server.as_ref().map(|s| s.password_encryption.as_str()) {
            Some("md5") => Method::Md5,
            _ => Method::ScramSha256,
        }
    }

    /// Whether the server has `ssl = on` (new rules then are `hostssl`).
    pub fn server_ssl(&self) -> bool {
        self.loc.server.as_ref().is_some_and(|s| s.ssl)
    }

    /// What first-match needs: the role memberships (from the server, when reached) and the `@file` lists.
    /// The server host's interfaces (`samehost`, `samenet`) are the caller's to add: only it knows whether
    /// this machine is the server's.
    pub async fn facts(&self, major: u32) -> Result<Facts, QueryError> {
        let mut facts = Facts::new(major);
        if let Some(session) = &self.loc.session {
            facts.roles = Some(Roles::from_memberships(&qrd_pg::serverconf::memberships(session).await?));
        }
        facts.token_files = self.file.read_token_files();
        Ok(facts)
    }
}
