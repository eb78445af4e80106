//! One pg_hba.conf record: its connection type, database and user lists, address, method and options,
//! read with the server's rules and messages (`parse_hba_line`), and written back so the server reads the
//! same thing.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use super::address::{self, Address, FirstField};
use super::token::{Pos, RawField, RawToken};

/// The TYPE column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnType {
    /// Unix-domain socket connections.
    Local,
    /// TCP/IP, with or without SSL or GSSAPI encryption.
    Host,
    HostSsl,
    HostNoSsl,
    HostGssEnc,
    HostNoGssEnc,
}

impl ConnType {
    pub const ALL: [ConnType; 6] = [
        ConnType::Local,
        ConnType::Host,
        ConnType::HostSsl,
        ConnType::HostNoSsl,
        ConnType::HostGssEnc,
        ConnType::HostNoGssEnc,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConnType::Local => "local",
            ConnType::Host => "host",
            ConnType::HostSsl => "hostssl",
            ConnType::HostNoSsl => "hostnossl",
            ConnType::HostGssEnc => "hostgssenc",
            ConnType::HostNoGssEnc => "hostnogssenc",
        }
    }
}

impl fmt::Display for ConnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ConnType {
    type Err = String;
    /// Exact, case-sensitive names as the server compares them.
    fn from_str(s: &str) -> Result<Self, String> {
        ConnType::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| format!("invalid connection type \"{s}\""))
    }
}

/// The METHOD column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Method {
    #[serde(rename = "trust")]
    Trust,
    #[serde(rename = "reject")]
    Reject,
    #[serde(rename = "scram-sha-256")]
    ScramSha256,
    #[serde(rename = "md5")]
    Md5,
    #[serde(rename = "password")]
    Password,
    #[serde(rename = "gss")]
    Gss,
    #[serde(rename = "sspi")]
    Sspi,
    #[serde(rename = "ident")]
    Ident,
    #[serde(rename = "peer")]
    Peer,
    #[serde(rename = "ldap")]
    Ldap,
    #[serde(rename = "radius")]
    Radius,
    #[serde(rename = "cert")]
    Cert,
    #[serde(rename = "pam")]
    Pam,
    #[serde(rename = "bsd")]
    Bsd,
}

impl Method {
    pub const ALL: [Method; 14] = [
        Method::Trust,
        Method::Reject,
        Method::ScramSha256,
        Method::Md5,
        Method::Password,
        Method::Gss,
        Method::Sspi,
        Method::Ident,
        Method::Peer,
        Method::Ldap,
        Method::Radius,
        Method::Cert,
        Method::Pam,
        Method::Bsd,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Trust => "trust",
            Method::Reject => "reject",
            Method::ScramSha256 => "scram-sha-256",
            Method::Md5 => "md5",
            Method::Password => "password",
            Method::Gss => "gss",
            Method::Sspi => "sspi",
            Method::Ident => "ident",
            Method::Peer => "peer",
            Method::Ldap => "ldap",
            Method::Radius => "radius",
            Method::Cert => "cert",
            Method::Pam => "pam",
            Method::Bsd => "bsd",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Method::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("invalid authentication method \"{s}\""))
    }
}

/// A database or user token after the server's unquoting. `quoted` is true only when the written token
/// began with a double quote: that is what stops `"all"` from being a keyword.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Token {
    pub value: String,
    pub quoted: bool,
}

/// What a DATABASE token means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum DatabaseKind<'a> {
    All,
    SameUser,
    /// `samerole` or its old spelling `samegroup`.
    SameRole,
    /// Physical replication connections only.
    Replication,
    /// `@file`: tokens read from a file (relative to the directory of pg_hba.conf).
    File(&'a str),
    /// PostgreSQL 16: a regular expression (the text after `/`), whether quoted or not.
    Regex(&'a str),
    Name(&'a str),
}

/// What a USER token means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum UserKind<'a> {
    All,
    /// `+role`: members of the role, directly or indirectly (superusers are not members by default).
    Member(&'a str),
    File(&'a str),
    Regex(&'a str),
    Name(&'a str),
}

const KEYWORDS: [&str; 7] = ["all", "sameuser", "samerole", "samegroup", "replication", "samehost", "samenet"];

impl Token {
    /// An unquoted keyword such as `all`, `sameuser`, `samerole` or `replication`.
    pub fn keyword(k: &str) -> Token {
        Token { value: k.to_string(), quoted: false }
    }

    /// A literal database or role name; quoted when it would otherwise read as a keyword, `+role` or
    /// `@file`, or when it contains characters the tokenizer treats specially.
    pub fn name(n: &str) -> Token {
        let quoted = KEYWORDS.contains(&n) || n.starts_with(['+', '@']) || n.is_empty() || needs_quotes(n);
        Token { value: n.to_string(), quoted }
    }

    /// A database or user token as a DBA types it on the command line: keywords stay keywords, `+role`
    /// and `@file` keep their meaning, anything else is a literal name (quoted in the file when needed).
    pub fn from_word(s: &str) -> Token {
        match s {
            "all" | "sameuser" | "samerole" | "samegroup" | "replication" => Token::keyword(s),
            _ if s.len() > 1 && s.starts_with('+') => Token::member_of(&s[1..]),
            _ if s.len() > 1 && s.starts_with('@') => Token::file(&s[1..]),
            _ => Token::name(s),
        }
    }

    /// `+role`: matches members of `role`.
    pub fn member_of(role: &str) -> Token {
        Token { value: format!("+{role}"), quoted: false }
    }

    /// `@file`: tokens read from `file`.
    pub fn file(file: &str) -> Token {
        Token { value: format!("@{file}"), quoted: false }
    }

    /// PostgreSQL 16 `/regex`.
    pub fn regex(re: &str) -> Token {
        let value = format!("/{re}");
        let quoted = needs_quotes(&value);
        Token { value, quoted }
    }

    pub(crate) fn from_raw(t: &RawToken) -> Token {
        Token { value: t.text.clone(), quoted: t.quoted }
    }

    /// `token_is_keyword`: the word itself, unquoted.
    pub fn is_keyword(&self, k: &str) -> bool {
        !self.quoted && self.value == k
    }

    /// `@file` reference, if this token is one (the server checks this while tokenizing).
    pub fn file_ref(&self) -> Option<&str> {
        (!self.quoted && self.value.len() > 1).then(|| self.value.strip_prefix('@')).flatten()
    }

    /// PostgreSQL 16 reads tokens starting with `/` as regular expressions, quoted or not; older servers
    /// take them as plain names.
    pub fn regex_for(&self, major: u32) -> Option<&str> {
        if major >= 16 { self.value.strip_prefix('/') } else { None }
    }

    pub fn database_kind(&self, major: u32) -> DatabaseKind<'_> {
        if let Some(f) = self.file_ref() {
            return DatabaseKind::File(f);
        }
        if !self.quoted {
            match self.value.as_str() {
                "all" => return DatabaseKind::All,
                "sameuser" => return DatabaseKind::SameUser,
                "samerole" | "samegroup" => return DatabaseKind::SameRole,
                "replication" => return DatabaseKind::Replication,
                _ => {}
            }
        }
        match self.regex_for(major) {
            Some(re) => DatabaseKind::Regex(re),
            None => DatabaseKind::Name(&self.value),
        }
    }

    pub fn user_kind(&self, major: u32) -> UserKind<'_> {
        if let Some(f) = self.file_ref() {
            return UserKind::File(f);
        }
        if !self.quoted {
            if let Some(role) = self.value.strip_prefix('+') {
                return UserKind::Member(role);
            }
            if self.value == "all" {
                return UserKind::All;
            }
        }
        match self.regex_for(major) {
            Some(re) => UserKind::Regex(re),
            None => UserKind::Name(&self.value),
        }
    }
}

/// Characters that end or change an unquoted token.
fn needs_quotes(s: &str) -> bool {
    s.chars().any(|c| matches!(c, ' ' | '\t' | '\r' | ',' | '"' | '#')) || s.ends_with('\\')
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

impl fmt::Display for Token {
    /// Written so that the server's tokenizer gives back this token, `quoted` flag included.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.quoted {
            return f.write_str(&quote(&self.value));
        }
        if !needs_quotes(&self.value) {
            return f.write_str(&self.value);
        }
        // Unquoted tokens never start with a special character; quoting after the first one keeps the
        // token unquoted for the server (`+"my group"`).
        let mut chars = self.value.chars();
        let first = chars.next().unwrap_or_default();
        write!(f, "{first}{}", quote(chars.as_str()))
    }
}

/// `name=value` after the method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthOption {
    pub name: String,
    pub value: String,
}

impl fmt::Display for AuthOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Quote the value only: the server takes the token text up to the first '='.
        if needs_quotes(&self.value) || self.value.is_empty() {
            write!(f, "{}={}", self.name, quote(&self.value))
        } else {
            write!(f, "{}={}", self.name, self.value)
        }
    }
}

/// A record. Build one with [`Record::new`] to add it with [`super::HbaFile::push`] and friends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    pub conn_type: ConnType,
    pub databases: Vec<Token>,
    pub users: Vec<Token>,
    /// `None` exactly for `local` records.
    pub address: Option<Address>,
    /// As written. For `local` records the server turns `ident` into `peer`; see [`Record::effective_method`].
    pub method: Method,
    pub options: Vec<AuthOption>,
}

/// A record the server would not read back as built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("invalid record: {0}")]
    Invalid(String),
    #[error("the record would be read back differently by PostgreSQL: `{0}`")]
    NotRoundTrip(String),
}

impl Record {
    pub fn new(
        conn_type: ConnType,
        databases: Vec<Token>,
        users: Vec<Token>,
        address: Option<Address>,
        method: Method,
    ) -> Record {
        Record { conn_type, databases, users, address, method, options: Vec::new() }
    }

    /// The same rule: type, databases, users, address, method and options (layout and comments aside).
    pub fn same_rule(&self, other: &Record) -> bool {
        self.conn_type == other.conn_type
            && self.databases == other.databases
            && self.users == other.users
            && self.address == other.address
            && self.method == other.method
            && self.options == other.options
    }

    pub fn with_option(mut self, name: &str, value: &str) -> Record {
        self.options.push(AuthOption { name: name.to_string(), value: value.to_string() });
        self
    }

    /// The method the server uses: `ident` on a `local` line means `peer` ("for backwards compatibility",
    /// says hba.c).
    pub fn effective_method(&self) -> Method {
        if self.conn_type == ConnType::Local && self.method == Method::Ident { Method::Peer } else { self.method }
    }

    /// The record as one line (no line ending), columns padded like PostgreSQL's sample file. Fails when the
    /// server would refuse the line or read it differently.
    pub fn to_line(&self) -> Result<String, RecordError> {
        let line = self.layout();
        let chars: Vec<char> = line.chars().collect();
        if chars.iter().any(|&c| c == '\n' || c == '\0') {
            return Err(RecordError::Invalid("names cannot contain line breaks or NUL characters".into()));
        }
        let pos: Vec<Pos> = (0..chars.len()).map(|k| Pos { line: 1, column: k + 1 }).collect();
        let end = Pos { line: 1, column: chars.len() + 1 };
        let fields = super::token::tokenize(&chars, &pos, end);
        match parse_record(&fields, end) {
            Ok((back, _)) if back == *self => Ok(line),
            Ok(_) => Err(RecordError::NotRoundTrip(line)),
            Err((_, msg)) => Err(RecordError::Invalid(msg)),
        }
    }

    fn layout(&self) -> String {
        fn column(out: &mut String, text: &str, width: usize) {
            out.push_str(text);
            let n = text.chars().count();
            out.push_str(&" ".repeat(if n < width { width - n } else { 1 }));
        }
        let list = |t: &[Token]| t.iter().map(Token::to_string).collect::<Vec<_>>().join(",");
        let mut out = String::new();
        column(&mut out, self.conn_type.as_str(), 8);
        column(&mut out, &list(&self.databases), 16);
        column(&mut out, &list(&self.users), 16);
        match &self.address {
            Some(a) => {
                let written: Vec<String> = a
                    .fields()
                    .iter()
                    .map(|f| if matches!(a, Address::Hostname { .. }) { host_token(f) } else { f.clone() })
                    .collect();
                column(&mut out, &written.join(" "), 24);
            }
            None => column(&mut out, "", 24),
        }
        out.push_str(self.method.as_str());
        for o in &self.options {
            out.push(' ');
            out.push_str(&o.to_string());
        }
        out
    }
}

/// A host name that reads as a keyword or needs quoting is written quoted (the server then takes it as a name).
fn host_token(name: &str) -> String {
    if KEYWORDS.contains(&name) || needs_quotes(name) || name.is_empty() { quote(name) } else { name.to_string() }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.layout())
    }
}

/// Where each part of a parsed record starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Spans {
    pub conn_type: Pos,
    pub databases: Pos,
    pub users: Pos,
    pub address: Option<Pos>,
    pub netmask: Option<Pos>,
    pub method: Pos,
    pub options: Vec<Pos>,
}

/// `parse_hba_line`: the server's checks, in its order, with its messages; errors carry the position of the
/// offending field (`end` when a field is missing).
pub(crate) fn parse_record(fields: &[RawField], end: Pos) -> Result<(Record, Spans), (Pos, String)> {
    let mut it = fields.iter();
    let single = |f: &RawField, what: &str| -> Result<RawToken, (Pos, String)> {
        if f.tokens.len() > 1 {
            return Err((f.tokens[1].pos, format!("multiple values specified for {what}")));
        }
        Ok(f.tokens[0].clone())
    };

    let field = it.next().ok_or((end, "empty record".to_string()))?;
    let t = single(field, "connection type")?;
    // Compared as text: a quoted "host" is still host.
    let conn_type = ConnType::from_str(&t.text).map_err(|m| (t.pos, m))?;

    let field = it.next().ok_or((end, "end-of-line before database specification".to_string()))?;
    let databases: Vec<Token> = field.tokens.iter().map(Token::from_raw).collect();
    let db_pos = field.pos();
    let field = it.next().ok_or((end, "end-of-line before role specification".to_string()))?;
    let users: Vec<Token> = field.tokens.iter().map(Token::from_raw).collect();
    let user_pos = field.pos();

    let (mut address, mut address_pos, mut netmask_pos) = (None, None, None);
    if conn_type != ConnType::Local {
        let field = it.next().ok_or((end, "end-of-line before IP address specification".to_string()))?;
        let t = single(field, "host address")?;
        address_pos = Some(t.pos);
        address = Some(match address::parse_first_field(&t.text, t.quoted).map_err(|m| (t.pos, m))? {
            FirstField::Done(a) => a,
            FirstField::NeedsMask(addr, zone) => {
                let field = it.next().ok_or((end, "end-of-line before netmask specification".to_string()))?;
                let m = single(field, "netmask")?;
                netmask_pos = Some(m.pos);
                address::with_netmask(addr, zone, &m.text).map_err(|msg| (m.pos, msg))?
            }
        });
    }

    let field = it.next().ok_or((end, "end-of-line before authentication method".to_string()))?;
    let t = single(field, "authentication type")?;
    let method = Method::from_str(&t.text).map_err(|m| (t.pos, m))?;
    let method_pos = t.pos;
    let effective = if conn_type == ConnType::Local && method == Method::Ident { Method::Peer } else { method };
    match (conn_type, effective) {
        (ConnType::Local, Method::Gss) => {
            return Err((t.pos, "gssapi authentication is not supported on local sockets".into()));
        }
        (c, Method::Peer) if c != ConnType::Local => {
            return Err((t.pos, "peer authentication is only supported on local sockets".into()));
        }
        (c, Method::Cert) if c != ConnType::HostSsl => {
            return Err((t.pos, "cert authentication is only supported on hostssl connections".into()));
        }
        _ => {}
    }

    let mut options = Vec::new();
    let mut option_pos = Vec::new();
    for field in it {
        for t in &field.tokens {
            let Some((name, value)) = t.text.split_once('=') else {
                return Err((t.pos, format!("authentication option not in name=value format: {}", t.text)));
            };
            check_option(name, conn_type, effective).map_err(|m| (t.pos, m))?;
            options.push(AuthOption { name: name.to_string(), value: value.to_string() });
            option_pos.push(t.pos);
        }
    }

    let record = Record { conn_type, databases, users, address, method, options };
    let spans = Spans {
        conn_type: fields[0].pos(),
        databases: db_pos,
        users: user_pos,
        address: address_pos,
        netmask: netmask_pos,
        method: method_pos,
        options: option_pos,
    };
    Ok((record, spans))
}

/// `parse_hba_auth_opt`: known option names and the methods they belong to (union of 12–16; values that
/// only some majors accept are reported by `HbaFile::diagnostics`). Mandatory options (an `ldap` line
/// without `ldapserver`, say) are not checked here.
fn check_option(name: &str, conn_type: ConnType, method: Method) -> Result<(), String> {
    use Method::*;
    let only = |allowed: &[Method], list: &str| {
        if allowed.contains(&method) {
            Ok(())
        } else {
            Err(format!("authentication option \"{name}\" is only valid for authentication methods {list}"))
        }
    };
    match name {
        "map" => only(&[Ident, Peer, Gss, Sspi, Cert], "ident, peer, gssapi, sspi, and cert"),
        "clientcert" | "clientname" => {
            if conn_type == ConnType::HostSsl {
                Ok(())
            } else {
                Err(format!("{name} can only be configured for \"hostssl\" rows"))
            }
        }
        "pamservice" | "pam_use_hostname" => only(&[Pam], "pam"),
        "ldapurl"
        | "ldaptls"
        | "ldapscheme"
        | "ldapserver"
        | "ldapport"
        | "ldapbinddn"
        | "ldapbindpasswd"
        | "ldapsearchattribute"
        | "ldapsearchfilter"
        | "ldapbasedn"
        | "ldapprefix"
        | "ldapsuffix" => only(&[Ldap], "ldap"),
        "krb_realm" | "include_realm" => only(&[Gss, Sspi], "gssapi and sspi"),
        "compat_realm" | "upn_username" => only(&[Sspi], "sspi"),
        "radiusservers" | "radiusserver" | "radiussecrets" | "radiussecret" | "radiusidentifiers"
        | "radiusidentifier" | "radiusports" | "radiusport" => only(&[Radius], "radius"),
        _ => Err(format!("unrecognized authentication option name: \"{name}\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Record, (usize, String)> {
        let chars: Vec<char> = line.chars().collect();
        let pos: Vec<Pos> = (0..chars.len()).map(|k| Pos { line: 1, column: k + 1 }).collect();
        let end = Pos { line: 1, column: chars.len() + 1 };
        let fields = super::super::token::tokenize(&chars, &pos, end);
        parse_record(&fields, end).map(|(r, _)| r).map_err(|(p, m)| (p.column, m))
    }

    fn err(line: &str) -> (usize, String) {
        parse(line).unwrap_err()
    }

    #[test]
    fn every_connection_type_and_method_parses() {
        for c in ConnType::ALL {
            let addr = if c == ConnType::Local { "" } else { " 127.0.0.1/32" };
            let r = parse(&format!("{c} all all{addr} trust")).unwrap();
            assert_eq!(r.conn_type, c);
        }
        for m in Method::ALL {
            let c = match m {
                Method::Peer => "local all all",
                Method::Cert => "hostssl all all ::1/128",
                _ => "host all all samenet",
            };
            assert_eq!(parse(&format!("{c} {m}")).unwrap().method, m, "{m}");
            assert_eq!(m.as_str().parse::<Method>(), Ok(m));
        }
        assert_eq!("hostssl".parse::<ConnType>(), Ok(ConnType::HostSsl));
        assert_eq!("HOST".parse::<ConnType>(), Err("invalid connection type \"HOST\"".to_owned()), "case-sensitive");
    }

    /// `at` is the text the column must point at; `None` means the end of the line.
    fn check(line: &str, at: Option<&str>, message: &str) {
        let column = at.map_or(line.chars().count() + 1, |a| line.find(a).expect(a) + 1);
        assert_eq!(err(line), (column, message.to_string()), "{line}");
    }

    #[test]
    fn errors_name_the_field() {
        check("hots all all ::1/128 trust", Some("hots"), "invalid connection type \"hots\"");
        check("host all all ::1/128 trusted", Some("trusted"), "invalid authentication method \"trusted\"");
        check("local,host all all trust", Some("host"), "multiple values specified for connection type");
        check("host all", None, "end-of-line before role specification");
        check("local", None, "end-of-line before database specification");
        check("host all all", None, "end-of-line before IP address specification");
        check("host all all 10.0.0.0", None, "end-of-line before netmask specification");
        check("host all all ::1/128", None, "end-of-line before authentication method");
        check("host all all ::1/129 md5", Some("::1"), "invalid CIDR mask in address \"::1/129\"");
        check("host all all a,b md5", Some("b md5"), "multiple values specified for host address");
        check("host all all 1.2.3.4 ffff:: md5", Some("ffff"), "IP address and mask do not match");
        check("host all all ::1/128 md5 foo", Some("foo"), "authentication option not in name=value format: foo");
        check("host all all ::1/128 md5 bogus=1", Some("bogus"), "unrecognized authentication option name: \"bogus\"");
        check(
            "host all all ::1/128 trust map=x",
            Some("map"),
            "authentication option \"map\" is only valid for authentication methods ident, peer, gssapi, sspi, and cert",
        );
        check(
            "host all all ::1/128 md5 clientcert=verify-full",
            Some("clientcert"),
            "clientcert can only be configured for \"hostssl\" rows",
        );
        check("host all all ::1/128 peer", Some("peer"), "peer authentication is only supported on local sockets");
        check("local all all gss", Some("gss"), "gssapi authentication is not supported on local sockets");
        check(
            "host all all ::1/128 cert",
            Some("cert"),
            "cert authentication is only supported on hostssl connections",
        );
        // A host line without an address takes the method for a host name and then misses the method.
        check("host all all trust", None, "end-of-line before authentication method");
        // `ident` on a local line is `peer` for the server, so it passes.
        assert_eq!(parse("local all all ident map=m").unwrap().effective_method(), Method::Peer);
    }

    #[test]
    fn fields_lists_and_options() {
        let r = parse("hostssl \"all\",sameuser +admins,\"+x\",@users.txt 10.0.0.0 255.0.0.0 cert map=m,clientcert=verify-full ldap=x=y")
            .unwrap_err();
        assert_eq!(r.1, "unrecognized authentication option name: \"ldap\"");
        let r = parse(
            "hostssl \"all\",sameuser +admins,\"+x\",@users.txt 10.0.0.0 255.0.0.0 cert map=m,clientcert=verify-full",
        )
        .unwrap();
        assert_eq!(r.databases, vec![Token::name("all"), Token::keyword("sameuser")]);
        assert_eq!(r.databases[0].database_kind(16), DatabaseKind::Name("all"));
        assert_eq!(r.databases[1].database_kind(16), DatabaseKind::SameUser);
        let kinds: Vec<UserKind> = r.users.iter().map(|u| u.user_kind(16)).collect();
        assert_eq!(kinds, vec![UserKind::Member("admins"), UserKind::Name("+x"), UserKind::File("users.txt")]);
        assert_eq!(r.options.len(), 2);
        assert_eq!(r.options[1], AuthOption { name: "clientcert".into(), value: "verify-full".into() });
        // A value may contain '=' and quoted commas.
        let r = parse("host all all ::1/128 radius radiusservers=\"a,b\" radiussecrets=s=t").unwrap();
        assert_eq!(r.options[0].value, "a,b");
        assert_eq!(r.options[1].value, "s=t");
    }

    #[test]
    fn regex_tokens_are_version_dependent() {
        let r = parse("host /^qs_.*$,\"/x y\" /^svc all md5").unwrap();
        assert_eq!(r.databases[0].database_kind(16), DatabaseKind::Regex("^qs_.*$"));
        assert_eq!(r.databases[1].database_kind(16), DatabaseKind::Regex("x y"));
        assert_eq!(r.databases[0].database_kind(15), DatabaseKind::Name("/^qs_.*$"));
        assert_eq!(r.users[0].user_kind(16), UserKind::Regex("^svc"));
        // A lone '@' is a name, not a file reference.
        assert_eq!(Token::keyword("@").database_kind(16), DatabaseKind::Name("@"));
        assert_eq!(Token::keyword("samegroup").database_kind(12), DatabaseKind::SameRole);
    }

    #[test]
    fn new_records_line_up_like_the_sample_file() {
        let r = Record::new(
            ConnType::Host,
            vec![Token::keyword("all")],
            vec![Token::keyword("all")],
            Some(Address::parse("127.0.0.1/32").unwrap()),
            Method::ScramSha256,
        );
        assert_eq!(
            r.to_line().unwrap(),
            "host    all             all             127.0.0.1/32            scram-sha-256"
        );
        let l =
            Record::new(ConnType::Local, vec![Token::keyword("all")], vec![Token::keyword("all")], None, Method::Peer);
        assert_eq!(l.to_line().unwrap(), "local   all             all                                     peer");
        let long = Record::new(
            ConnType::HostSsl,
            vec![Token::name("QSR"), Token::name("my db")],
            vec![Token::name("qliksenserepository")],
            Some(Address::parse("10.0.0.0 255.0.0.0").unwrap()),
            Method::Cert,
        )
        .with_option("clientcert", "verify-full")
        .with_option("map", "a b");
        assert_eq!(
            long.to_line().unwrap(),
            "hostssl QSR,\"my db\"     qliksenserepository 10.0.0.0 255.0.0.0      cert clientcert=verify-full map=\"a b\""
        );
    }

    #[test]
    fn quoting_when_writing_round_trips_through_the_tokenizer() {
        let names =
            ["all", "replication", "+notgroup", "@notfile", "a\"b", "x,y", "#hash", "sp ace", "", "end\\", "tab\t"];
        for n in names {
            let r = Record::new(ConnType::Local, vec![Token::name(n)], vec![Token::name(n)], None, Method::Trust);
            let line = r.to_line().unwrap_or_else(|e| panic!("{n:?}: {e}"));
            assert_eq!(parse(&line).unwrap(), r, "{line}");
        }
        let group = Token::member_of("my group");
        assert_eq!(group.to_string(), "+\"my group\"");
        let r = Record::new(ConnType::Local, vec![Token::file("db list")], vec![group], None, Method::Trust);
        assert_eq!(parse(&r.to_line().unwrap()).unwrap(), r);
        assert_eq!(Token::regex("^a b$").to_string(), "\"/^a b$\"");
    }

    #[test]
    fn records_the_server_would_refuse_are_not_written() {
        let bad =
            Record::new(ConnType::Host, vec![Token::keyword("all")], vec![Token::keyword("all")], None, Method::Md5);
        assert!(matches!(bad.to_line(), Err(RecordError::Invalid(_))));
        let peer = Record::new(
            ConnType::Host,
            vec![Token::keyword("all")],
            vec![Token::keyword("all")],
            Some(Address::All),
            Method::Peer,
        );
        assert_eq!(
            peer.to_line(),
            Err(RecordError::Invalid("peer authentication is only supported on local sockets".into()))
        );
        let newline =
            Record::new(ConnType::Local, vec![Token::name("a\nb")], vec![Token::keyword("all")], None, Method::Md5);
        assert_eq!(
            newline.to_line(),
            Err(RecordError::Invalid("names cannot contain line breaks or NUL characters".into()))
        );
        let empty = Record::new(ConnType::Local, vec![], vec![Token::keyword("all")], None, Method::Md5);
        assert_eq!(empty.to_line(), Err(RecordError::Invalid("end-of-line before authentication method".into())));
    }
}
