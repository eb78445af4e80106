//! The server's pg_hba.conf as a command edits or explains it: found and parsed (with what the server's
//! major will read differently), written back as a checked change, and the facts first-match needs from
//! the server (role memberships) and from this machine (`@file` lists beside the file).

use qrd_exit::{ExitStatus, UserError};
use std::net::IpAddr;

use qrd_conf::ParseError;
use qrd_conf::hba::{
    AddOutcome, Address, AddressError, Client, ConnType, EditError, Facts, HbaFile, Method, NodeRules, NodeRulesReport,
    Outcome, Placement, Record, RecordMatch, Replication, Request, Roles, RuleError, Token,
};
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
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("{0}")]
    Parse(#[from] ParseError),
    #[error("{0}")]
    Edit(#[from] EditError),
    #[error("{0}")]
    Rule(#[from] RuleError),
    #[error("{0}")]
    Address(#[from] AddressError),
    #[error("say which rules: --line N or at least one --match-… option")]
    NoSelection,
}

impl UserError for HbaError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            HbaError::Locate(e) => e.exit_status(),
            HbaError::Query(e) => e.exit_status(),
            HbaError::Parse(_)
            | HbaError::Address(_)
            | HbaError::Edit(_)
            | HbaError::Rule(_)
            | HbaError::NoSelection => ExitStatus::Refused,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(self.hint_text())
    }
}

impl HbaError {
    fn hint_text(&self) -> String {
        match self {
            HbaError::Locate(e) => e.hint().unwrap_or_default(),
            HbaError::Query(_) => "run again with -v for the statements qrd runs".into(),
            HbaError::Parse(_) => "fix pg_hba.conf at the place named above; nothing was changed".into(),
            HbaError::Address(_) => "give node addresses as ADDR or ADDR/PREFIX".into(),
            HbaError::Edit(_) | HbaError::Rule(_) | HbaError::NoSelection => {
                "nothing was changed; `qrd hba list` shows the rules and their lines".into()
            }
        }
    }
}

/// Which rules `remove` takes.
#[derive(Debug, Clone)]
pub enum Selection {
    Line(usize),
    Matching(RecordMatch),
}

/// The guide's node rules as a command asks for them; `None` fields follow the server.
#[derive(Debug, Clone)]
pub struct AllowNodes {
    /// `ADDR` (one host) or `ADDR/PREFIX` (a subnet).
    pub nodes: Vec<String>,
    pub databases: Vec<String>,
    pub role: String,
    /// Default: the server's `password_encryption` (md5 or scram-sha-256).
    pub method: Option<Method>,
    /// Default: `hostssl` when the server has ssl on.
    pub ssl: Option<bool>,
    pub replace_localhost: bool,
}

/// A connection to explain.
#[derive(Debug, Clone)]
pub struct Explain {
    /// `None`: through the unix socket.
    pub address: Option<IpAddr>,
    pub user: String,
    pub database: String,
    pub ssl: bool,
    pub replication: bool,
    /// The major whose rules and wording apply; default: the server's, else PG_VERSION's, else 16.
    pub major: Option<u32>,
}

fn warn_if_everything(address: Option<&Address>) {
    if let Some(a) = address.filter(|a| a.covers_everything()) {
        tracing::warn!("{a} admits every address: prefer one rule per node (/32, /128) or the site's subnet");
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

    /// Adds `record` where it takes effect (see [`Placement`]); false when the file has it already.
    pub fn add(&mut self, record: &Record, at: Placement) -> Result<bool, HbaError> {
        warn_if_everything(record.address.as_ref());
        match self.file.add_rule(record, at)? {
            AddOutcome::Present { line } => {
                tracing::info!("line {line} already is this rule: nothing to do");
                Ok(false)
            }
            AddOutcome::Added { line } => {
                tracing::info!("rule at line {line}: {record}");
                Ok(true)
            }
        }
    }

    /// Removes the selected rules; returns how many.
    pub fn remove(&mut self, which: &Selection) -> Result<usize, HbaError> {
        let lines: Vec<usize> = match which {
            Selection::Line(line) => vec![*line],
            Selection::Matching(m) if *m == RecordMatch::default() => return Err(HbaError::NoSelection),
            Selection::Matching(m) => self.file.find(m).map(|r| r.line).collect(),
        };
        if lines.is_empty() {
            tracing::info!("no rule matches: nothing to do");
        }
        let removed = self.file.remove_lines(&lines)?;
        for (line, text) in &removed {
            tracing::info!("removing line {line}: {}", text.trim_end());
        }
        Ok(removed.len())
    }

    /// One rule per node (the guide's step; see [`NodeRules`]).
    pub fn allow_nodes(&mut self, req: &AllowNodes) -> Result<NodeRulesReport, HbaError> {
        let nodes: Vec<Address> = req.nodes.iter().map(|n| Address::parse_node(n)).collect::<Result<_, _>>()?;
        nodes.iter().for_each(|a| warn_if_everything(Some(a)));
        if self.loc.server.is_none() && req.method.is_none() {
            tracing::info!(
                "no server connection: using scram-sha-256 (pass --method md5 if the server still stores md5 hashes)"
            );
        }
        let ssl = req.ssl.unwrap_or_else(|| self.server_ssl());
        let rules = NodeRules {
            nodes,
            databases: req.databases.iter().map(|d| Token::name(d)).collect(),
            user: Token::name(&req.role),
            conn_type: if ssl { ConnType::HostSsl } else { ConnType::Host },
            method: req.method.unwrap_or(self.password_method()),
            replace_localhost: req.replace_localhost,
        };
        let report = self.file.allow_nodes(&rules)?;
        if let Some((line, text)) = &report.replaced {
            tracing::info!(
                "replacing line {line}: {text} (TCP connections from this machine now need a rule of their own)"
            );
        }
        if report.no_localhost_rule {
            tracing::info!("no `host all all 127.0.0.1/32` line to replace: adding the node rules");
        }
        for (line, address) in &report.present {
            tracing::info!("line {line} already lets {address} in");
        }
        for (line, record) in &report.added {
            tracing::info!("rule at line {line}: {record}");
        }
        Ok(report)
    }

    /// Which line a connection meets, with the server's first-match rules, and what happens then.
    pub async fn explain(&self, req: &Explain) -> Result<Outcome, HbaError> {
        // The major words the refusal: the server's, else the data directory's PG_VERSION, else the newest.
        let major = req.major.or(self.loc.major()).unwrap_or(16);
        let mut facts = self.facts(major).await?;
        // The file came from this machine's data directory or its server: this machine is the server host,
        // so its interfaces are the server's (`samehost`, `samenet`). A copy given with --file may not be.
        if !self.loc.named {
            facts.interfaces = crate::interfaces();
        }
        let client = req.address.map(Client::Tcp).unwrap_or(Client::Local);
        let replication = if req.replication { Replication::Physical } else { Replication::No };
        let mut ssl = req.ssl;
        if ssl && self.loc.server.as_ref().is_some_and(|s| !s.ssl) {
            tracing::warn!(
                "the server has ssl = off, so no connection can use SSL (hostssl lines never match): explaining the \
                 connection without it"
            );
            ssl = false;
        }
        let request = Request::new(client, &req.user, &req.database).with_ssl(ssl).with_replication(replication);
        Ok(self.file.explain(&request, &facts))
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
