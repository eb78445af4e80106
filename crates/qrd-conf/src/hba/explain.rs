//! Which line a connection would match, the way the server decides it (`check_hba` in `hba.c`): the first
//! record whose connection type, address, database and user all match wins; with none, the server refuses
//! the connection with a FATAL message we reproduce for each major version.
//!
//! What only the server or its host knows (role memberships, interface addresses, reverse DNS of the
//! client, the contents of `@file` lists) comes in as [`Facts`]. When a needed fact is missing the answer is
//! [`Outcome::Undecided`]: this line matches if …, otherwise the rest of the file decides. Nothing here
//! queries DNS: a lookup could leave the machine, and the server's answer depends on its own resolver.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::Serialize;

use super::address::{self, Address};
use super::file::Include;
use super::record::{ConnType, DatabaseKind, Method, Record, Token, UserKind};
use super::token::{self, Pos};

/// Where the connection comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "addr", rename_all = "snake_case")]
pub enum Client {
    /// A Unix-domain socket.
    Local,
    /// TCP from this address. An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) is treated as the IPv4
    /// address: the server sets `IPV6_V6ONLY` on its IPv6 sockets, so such clients reach it over IPv4.
    Tcp(IpAddr),
}

/// The kind of replication connection, if any.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Replication {
    #[default]
    No,
    /// `replication=true` (physical, e.g. pg_basebackup, standbys): only the `replication` keyword matches
    /// these, not `all`.
    Physical,
    /// `replication=database` (logical): matched like an ordinary connection to the database. PostgreSQL 12
    /// (and 13) still word the no-match message as a replication connection; 14 names the database.
    Logical,
}

/// A connection attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Request {
    pub client: Client,
    pub user: String,
    pub database: String,
    /// The connection uses SSL.
    pub ssl: bool,
    /// The connection uses GSSAPI encryption.
    pub gssenc: bool,
    pub replication: Replication,
}

impl Request {
    pub fn new(client: Client, user: &str, database: &str) -> Request {
        Request {
            client,
            user: user.to_string(),
            database: database.to_string(),
            ssl: false,
            gssenc: false,
            replication: Replication::No,
        }
    }

    pub fn with_ssl(mut self, ssl: bool) -> Request {
        self.ssl = ssl;
        self
    }

    pub fn with_gssenc(mut self, gssenc: bool) -> Request {
        self.gssenc = gssenc;
        self
    }

    pub fn with_replication(mut self, replication: Replication) -> Request {
        self.replication = replication;
        self
    }

    fn ip(&self) -> Option<IpAddr> {
        match self.client {
            Client::Local => None,
            Client::Tcp(IpAddr::V6(v6)) => Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)),
            Client::Tcp(ip) => Some(ip),
        }
    }
}

/// Every role of the server and the roles each is directly a member of (`pg_auth_members`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Roles {
    member_of: BTreeMap<String, BTreeSet<String>>,
}

impl Roles {
    pub fn new() -> Roles {
        Roles::default()
    }

    /// Every role with the roles it is directly a member of, as the catalog lists them
    /// (`qrd_pg::serverconf::memberships`).
    pub fn from_memberships<'a>(rows: impl IntoIterator<Item = &'a (String, Vec<String>)>) -> Roles {
        let mut roles = Roles::new();
        for (role, member_of) in rows {
            roles.add(role, member_of.iter().map(String::as_str));
        }
        roles
    }

    /// Adds `role` (it exists) as a direct member of each of `member_of`.
    pub fn with(mut self, role: &str, member_of: &[&str]) -> Roles {
        self.add(role, member_of.iter().copied());
        self
    }

    pub fn add<'a>(&mut self, role: &str, member_of: impl IntoIterator<Item = &'a str>) {
        let set = self.member_of.entry(role.to_string()).or_default();
        set.extend(member_of.into_iter().map(str::to_string));
    }

    pub fn exists(&self, role: &str) -> bool {
        self.member_of.contains_key(role)
    }

    /// `is_member` in hba.c: both roles exist and `user` is `group` or a member of it through any chain of
    /// grants (NOINHERIT ones too). Superuser status does not make a role a member here (checked on 16).
    pub fn is_member(&self, user: &str, group: &str) -> bool {
        if !self.exists(user) || !self.exists(group) {
            return false;
        }
        let mut seen = BTreeSet::new();
        let mut todo = vec![user];
        while let Some(r) = todo.pop() {
            if r == group {
                return true;
            }
            if seen.insert(r) {
                todo.extend(self.member_of.get(r).into_iter().flatten().map(String::as_str));
            }
        }
        false
    }
}

/// One of the server host's interface addresses with its prefix length (for `samehost`/`samenet`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Interface {
    pub addr: IpAddr,
    pub prefix: u8,
}

/// What the server would learn from reverse DNS of the client address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ClientHostname {
    /// Not looked up (the default: qrd does not query DNS on its own).
    #[default]
    Unknown,
    /// The address has no name: host-name lines cannot match.
    NoName,
    /// The reverse lookup gave `name`; `forward_confirmed` says whether `name` resolves back to the client
    /// address (the server requires both).
    Name { name: String, forward_confirmed: bool },
}

/// What only the server or its host knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Facts {
    /// Server major version (12–16); decides regular expressions and the wording of the FATAL message.
    pub major: u32,
    /// All roles and memberships, for `+group`, `samerole` and `samegroup`. `None`: unknown.
    pub roles: Option<Roles>,
    /// The server host's interfaces, for `samehost` and `samenet`. `None`: unknown.
    pub interfaces: Option<Vec<Interface>>,
    pub client_hostname: ClientHostname,
    /// Contents of `@file` lists, keyed by the name as written after `@` (nested references too).
    /// A missing key: unknown.
    pub token_files: BTreeMap<String, String>,
}

impl Facts {
    pub fn new(major: u32) -> Facts {
        Facts {
            major,
            roles: None,
            interfaces: None,
            client_hostname: ClientHostname::Unknown,
            token_files: BTreeMap::new(),
        }
    }
}

/// The answer for one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// `line` is the first match; `method` is what the server uses (`ident` on `local` becomes `peer`).
    /// For `reject`, `message` is the server's FATAL text.
    Matched {
        line: usize,
        record: Record,
        method: Method,
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// No line matches; `message` is the server's FATAL text for this major.
    NoMatch { message: String },
    /// `line` matches if `reason` holds; otherwise the answer is `otherwise`. `record` is `None` for an
    /// include directive.
    Undecided { line: usize, record: Option<Record>, reason: String, otherwise: Box<Outcome> },
}

enum Tri {
    Yes,
    No,
    Unknown(String),
}

fn all(parts: Vec<Tri>) -> Tri {
    let mut reasons = Vec::new();
    for p in parts {
        match p {
            Tri::No => return Tri::No,
            Tri::Unknown(r) => reasons.push(r),
            Tri::Yes => {}
        }
    }
    if reasons.is_empty() { Tri::Yes } else { Tri::Unknown(reasons.join("; ")) }
}

/// Like PostgreSQL's list checks: true if any token matches.
fn any(parts: impl IntoIterator<Item = Tri>) -> Tri {
    let mut reasons = Vec::new();
    for p in parts {
        match p {
            Tri::Yes => return Tri::Yes,
            Tri::Unknown(r) => reasons.push(r),
            Tri::No => {}
        }
    }
    if reasons.is_empty() { Tri::No } else { Tri::Unknown(reasons.join(" or ")) }
}

pub(crate) fn explain<'a>(
    entries: impl Iterator<Item = (usize, Result<&'a Record, &'a Include>)>,
    req: &Request,
    facts: &Facts,
) -> Outcome {
    let entries: Vec<_> = entries.collect();
    decide(&entries, req, facts)
}

fn decide(entries: &[(usize, Result<&Record, &Include>)], req: &Request, facts: &Facts) -> Outcome {
    for (k, (line, entry)) in entries.iter().enumerate() {
        let verdict = match entry {
            Ok(r) => check_record(r, req, facts),
            Err(inc) => Tri::Unknown(if facts.major >= 16 {
                format!("the rules of included \"{}\" are tried here and qrd did not read them", inc.path)
            } else {
                format!("PostgreSQL {} does not know include directives and refuses this file", facts.major)
            }),
        };
        match verdict {
            Tri::No => continue,
            Tri::Yes => {
                let r = entry.expect("includes are never Yes");
                let method = r.effective_method();
                let message = (method == Method::Reject).then(|| fatal(req, facts.major, true));
                return Outcome::Matched { line: *line, record: r.clone(), method, message };
            }
            Tri::Unknown(reason) => {
                return Outcome::Undecided {
                    line: *line,
                    record: entry.ok().cloned(),
                    reason,
                    otherwise: Box::new(decide(&entries[k + 1..], req, facts)),
                };
            }
        }
    }
    Outcome::NoMatch { message: fatal(req, facts.major, false) }
}

/// The FATAL text of `ClientAuthentication` in auth.c (implicit reject or a `reject` line).
fn fatal(req: &Request, major: u32, reject_line: bool) -> String {
    let host = req.ip().map_or_else(|| "[local]".to_string(), |ip| ip.to_string());
    // 12 and 13 say "SSL on/off" and know nothing of GSS encryption in this message; 14 rewrote it.
    let enc = if major >= 14 {
        if req.gssenc {
            "GSS encryption"
        } else if req.ssl {
            "SSL encryption"
        } else {
            "no encryption"
        }
    } else if req.ssl {
        "SSL on"
    } else {
        "SSL off"
    };
    // Before 14 any walsender, logical ones included, got the replication wording (checked on 12 and 14).
    let replication = match req.replication {
        Replication::Physical => true,
        Replication::Logical => major < 14,
        Replication::No => false,
    };
    let user = &req.user;
    match (reject_line, replication) {
        (false, true) => {
            format!("no pg_hba.conf entry for replication connection from host \"{host}\", user \"{user}\", {enc}")
        }
        (false, false) => {
            format!("no pg_hba.conf entry for host \"{host}\", user \"{user}\", database \"{}\", {enc}", req.database)
        }
        (true, true) => {
            format!("pg_hba.conf rejects replication connection for host \"{host}\", user \"{user}\", {enc}")
        }
        (true, false) => format!(
            "pg_hba.conf rejects connection for host \"{host}\", user \"{user}\", database \"{}\", {enc}",
            req.database
        ),
    }
}

fn check_record(r: &Record, req: &Request, facts: &Facts) -> Tri {
    let conn_ok = match (r.conn_type, req.ip()) {
        (ConnType::Local, ip) => ip.is_none(),
        (_, None) => false,
        (ConnType::Host, Some(_)) => true,
        (ConnType::HostSsl, Some(_)) => req.ssl,
        (ConnType::HostNoSsl, Some(_)) => !req.ssl,
        (ConnType::HostGssEnc, Some(_)) => req.gssenc,
        (ConnType::HostNoGssEnc, Some(_)) => !req.gssenc,
    };
    if !conn_ok {
        return Tri::No;
    }
    let addr = match (&r.address, req.ip()) {
        (Some(a), Some(ip)) => check_address(a, ip, facts),
        _ => Tri::Yes,
    };
    all(vec![addr, check_databases(&r.databases, req, facts), check_users(&r.users, req, facts)])
}

fn check_address(a: &Address, ip: IpAddr, facts: &Facts) -> Tri {
    if let Some(known) = a.admits(ip) {
        return if known { Tri::Yes } else { Tri::No };
    }
    match a {
        Address::SameHost | Address::SameNet => {
            let same_net = matches!(a, Address::SameNet);
            let word = if same_net { "samenet" } else { "samehost" };
            match &facts.interfaces {
                None => Tri::Unknown(format!("{word}: the server's interface addresses are not known")),
                Some(ifs) => {
                    let hit = ifs.iter().any(|i| {
                        let mask = if same_net {
                            address::interface_mask(i.addr, i.prefix)
                        } else {
                            address::interface_mask(i.addr, if i.addr.is_ipv4() { 32 } else { 128 })
                        };
                        address::in_net(ip, i.addr, mask)
                    });
                    if hit { Tri::Yes } else { Tri::No }
                }
            }
        }
        Address::Hostname { name } => match &facts.client_hostname {
            ClientHostname::Unknown => Tri::Unknown(format!(
                "{ip} reverse-resolves to a name matching \"{name}\" that resolves back to {ip} \
                 (qrd does not query DNS)"
            )),
            ClientHostname::NoName => Tri::No,
            ClientHostname::Name { name: actual, forward_confirmed } => {
                if *forward_confirmed && hostname_match(name, actual) { Tri::Yes } else { Tri::No }
            }
        },
        _ => Tri::No,
    }
}

/// `hostname_match`: case-insensitive, a leading dot means "ends with".
fn hostname_match(pattern: &str, actual: &str) -> bool {
    if pattern.starts_with('.') {
        actual.len() >= pattern.len() && actual[actual.len() - pattern.len()..].eq_ignore_ascii_case(pattern)
    } else {
        pattern.eq_ignore_ascii_case(actual)
    }
}

/// Replaces `@file` tokens by the tokens of the supplied file contents (the server does this when loading).
fn expand(tokens: &[Token], facts: &Facts, depth: usize) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    for t in tokens {
        match t.file_ref() {
            None => out.push(t.clone()),
            Some(_) if depth >= 10 => return Err("@file references nest more than 10 deep".into()),
            Some(name) => match facts.token_files.get(name) {
                None => return Err(format!("the contents of @{name} are not known")),
                Some(text) => out.extend(expand(&file_tokens(text), facts, depth + 1)?),
            },
        }
    }
    Ok(out)
}

/// Every token of every line of an `@file`, in order.
fn file_tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut logical = String::new();
    for line in text.split('\n') {
        let line = line.trim_end_matches(['\r', '\n']);
        match line.strip_suffix('\\') {
            Some(head) => {
                logical.push_str(head);
                continue;
            }
            None => logical.push_str(line),
        }
        let chars: Vec<char> = logical.chars().collect();
        let pos = vec![Pos { line: 1, column: 1 }; chars.len()];
        for f in token::tokenize(&chars, &pos, Pos { line: 1, column: 1 }) {
            out.extend(f.tokens.iter().map(Token::from_raw));
        }
        logical.clear();
    }
    out
}

fn check_databases(tokens: &[Token], req: &Request, facts: &Facts) -> Tri {
    let tokens = match expand(tokens, facts, 0) {
        Ok(t) => t,
        Err(e) => return Tri::Unknown(format!("database list: {e}")),
    };
    let db = req.database.as_str();
    any(tokens.iter().map(|t| {
        let kind = t.database_kind(facts.major);
        if req.replication == Replication::Physical {
            // A physical walsender has no database: only the replication keyword can match it.
            return if kind == DatabaseKind::Replication { Tri::Yes } else { Tri::No };
        }
        match kind {
            DatabaseKind::All => Tri::Yes,
            DatabaseKind::SameUser => yes_if(db == req.user),
            DatabaseKind::SameRole => match &facts.roles {
                Some(roles) => yes_if(roles.is_member(&req.user, db)),
                None => Tri::Unknown(format!("user \"{}\" is a member of role \"{db}\" (samerole)", req.user)),
            },
            DatabaseKind::Replication => Tri::No,
            DatabaseKind::Regex(re) => Tri::Unknown(format!("database \"{db}\" matches the regular expression /{re}")),
            DatabaseKind::Name(n) => yes_if(n == db),
            DatabaseKind::File(_) => Tri::Unknown("nested @file".into()),
        }
    }))
}

fn check_users(tokens: &[Token], req: &Request, facts: &Facts) -> Tri {
    let tokens = match expand(tokens, facts, 0) {
        Ok(t) => t,
        Err(e) => return Tri::Unknown(format!("user list: {e}")),
    };
    let user = req.user.as_str();
    any(tokens.iter().map(|t| match t.user_kind(facts.major) {
        UserKind::All => Tri::Yes,
        UserKind::Member(group) => match &facts.roles {
            Some(roles) => yes_if(roles.is_member(user, group)),
            None => Tri::Unknown(format!("user \"{user}\" is a member of role \"{group}\" (+{group})")),
        },
        UserKind::Regex(re) => Tri::Unknown(format!("user \"{user}\" matches the regular expression /{re}")),
        UserKind::Name(n) => yes_if(n == user),
        UserKind::File(_) => Tri::Unknown("nested @file".into()),
    }))
}

/// Whether the USER field of `record` admits `user`: `Some(true)`/`Some(false)`, or `None` when it
/// depends on something not known here (a regular expression, an unknown `@file`, unknown memberships).
/// For lock-out checks, callers treat `None` as "may admit".
pub fn admits_user(record: &Record, user: &str, facts: &Facts) -> Option<bool> {
    let req = Request::new(Client::Local, user, "");
    match check_users(&record.users, &req, facts) {
        Tri::Yes => Some(true),
        Tri::No => Some(false),
        Tri::Unknown(_) => None,
    }
}

fn yes_if(b: bool) -> Tri {
    if b { Tri::Yes } else { Tri::No }
}
