//! `qrd hba list | add | remove | allow-nodes | explain`: pg_hba.conf edited line by line (everything else
//! byte for byte as it was), checked by the server before it loads it, and explained the way the server
//! matches: first matching line wins.

use std::collections::BTreeMap;
use std::net::IpAddr;

use clap::{Args, Subcommand};
use qrd_conf::hba::{
    Address, Client, ConnType, Facts, HbaFile, Method, Outcome, Record, RecordMatch, Replication, Request, Roles, Token,
};
use qrd_conf::write::FileEdit;
use qrd_pg::spec::{DEFAULT_REPO_ROLE, QLIK_DATABASES};

use crate::confwrite::{self, Which};
use crate::error::{CliError, ExitStatus};
use crate::files::{self, Kind, Located};
use crate::options::{ConnectArgs, FileArgs, HelpArg};
use crate::output::note;

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct HbaArgs {
    #[command(subcommand)]
    pub command: HbaCommand,

    #[command(flatten)]
    pub help: HelpArg,
}

#[derive(Debug, Subcommand)]
pub enum HbaCommand {
    /// List the rules in the order the server tries them
    List(ListArgs),
    /// Add a rule (before the first TCP rule unless --append or --before-line)
    Add(AddArgs),
    /// Remove rules, by line number or by what they match
    Remove(RemoveArgs),
    /// The guide's step: let Qlik nodes reach the four databases as the repository role
    AllowNodes(AllowNodesArgs),
    /// Which line a connection would match, with which method, or the server's exact refusal
    Explain(ExplainArgs),
}

/// Where the file is and how to write it.
#[derive(Debug, Args)]
pub struct Common {
    #[command(flatten)]
    pub files: FileArgs,
    #[command(flatten)]
    pub conn: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct WriteArgs {
    /// Print the diff and change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Write the file but do not reload the server
    #[arg(long)]
    pub no_reload: bool,
}

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct ListArgs {
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub help: HelpArg,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct AddArgs {
    /// Connection type: local, host, hostssl, hostnossl, hostgssenc, hostnogssenc
    #[arg(long = "type", value_name = "TYPE", default_value = "host")]
    pub conn_type: ConnType,
    /// Database(s): names, or all, sameuser, samerole, replication (repeat or comma-separate)
    #[arg(long = "database", value_name = "DB", value_delimiter = ',', required = true)]
    pub databases: Vec<String>,
    /// User(s): names, all, or +group (repeat or comma-separate)
    #[arg(long = "user", value_name = "USER", value_delimiter = ',', required = true)]
    pub users: Vec<String>,
    /// ADDR/PREFIX, "ADDR NETMASK", a host name, .domain, samehost, samenet or all (not for local)
    #[arg(long, value_name = "ADDRESS")]
    pub address: Option<String>,
    /// Authentication method (scram-sha-256, md5, reject, …)
    #[arg(long, value_name = "METHOD")]
    pub method: Method,
    /// Authentication option NAME=VALUE (repeatable), e.g. clientcert=verify-full
    #[arg(long = "option", value_name = "NAME=VALUE")]
    pub options: Vec<String>,
    /// Put the rule at the end (after rules that may match first)
    #[arg(long, conflicts_with = "before_line")]
    pub append: bool,
    /// Put the rule before this line
    #[arg(long, value_name = "LINE")]
    pub before_line: Option<usize>,
    #[command(flatten)]
    pub write: WriteArgs,
    #[command(flatten)]
    pub help: HelpArg,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct RemoveArgs {
    /// The rule on this line
    #[arg(long, value_name = "LINE", conflicts_with_all = ["match_type", "match_database", "match_user", "match_address", "match_method"])]
    pub line: Option<usize>,
    /// Every rule of this connection type
    #[arg(long = "match-type", value_name = "TYPE")]
    pub match_type: Option<ConnType>,
    /// Every rule listing this database token
    #[arg(long = "match-database", value_name = "DB")]
    pub match_database: Option<String>,
    /// Every rule listing this user token
    #[arg(long = "match-user", value_name = "USER")]
    pub match_user: Option<String>,
    /// Every rule with this address
    #[arg(long = "match-address", value_name = "ADDRESS")]
    pub match_address: Option<String>,
    /// Every rule with this method
    #[arg(long = "match-method", value_name = "METHOD")]
    pub match_method: Option<Method>,
    #[command(flatten)]
    pub write: WriteArgs,
    #[command(flatten)]
    pub help: HelpArg,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct AllowNodesArgs {
    /// The nodes: ADDR (one host: /32 or /128) or ADDR/PREFIX (a subnet)
    #[arg(required = true, value_name = "ADDR[/PREFIX]")]
    pub nodes: Vec<String>,
    /// The repository role
    #[arg(long, value_name = "ROLE", default_value = DEFAULT_REPO_ROLE)]
    pub repo_user: String,
    /// Method [default: scram-sha-256, or md5 when the server's password_encryption is md5]
    #[arg(long, value_name = "METHOD")]
    pub method: Option<Method>,
    /// hostssl rules [default: when the server has ssl on]
    #[arg(long, conflicts_with = "no_ssl")]
    pub ssl: bool,
    /// Plain host rules even when the server has ssl on
    #[arg(long)]
    pub no_ssl: bool,
    /// Replace the default `host all all 127.0.0.1/32 …` line with the node rules, as the guide describes
    /// (local TCP connections then need a rule of their own; the unix socket is not affected)
    #[arg(long)]
    pub replace_localhost_rule: bool,
    #[command(flatten)]
    pub write: WriteArgs,
    #[command(flatten)]
    pub help: HelpArg,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct ExplainArgs {
    /// The client's IP address (omit with --local)
    #[arg(long, value_name = "ADDR", required_unless_present = "local")]
    pub address: Option<IpAddr>,
    /// A unix-socket connection
    #[arg(long, conflicts_with = "address")]
    pub local: bool,
    #[arg(long, value_name = "USER")]
    pub user: String,
    #[arg(long, value_name = "DB")]
    pub database: String,
    /// The client uses TLS
    #[arg(long)]
    pub ssl: bool,
    /// A physical replication connection
    #[arg(long)]
    pub replication: bool,
    /// Server major for the wording and rules [default: the server's, else 16]
    #[arg(long, value_name = "MAJOR")]
    pub major: Option<u32>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub help: HelpArg,
    #[command(flatten)]
    pub common: Common,
}

pub async fn execute(args: HbaArgs) -> Result<ExitStatus, CliError> {
    match args.command {
        HbaCommand::List(a) => list(a).await,
        HbaCommand::Add(a) => add(a).await,
        HbaCommand::Remove(a) => remove(a).await,
        HbaCommand::AllowNodes(a) => allow_nodes(a).await,
        HbaCommand::Explain(a) => explain(a).await,
    }
}

fn refused(msg: impl Into<String>) -> CliError {
    CliError::new(ExitStatus::Refused, msg)
}

async fn load(common: &Common) -> Result<(Located, HbaFile), CliError> {
    let loc = files::locate(Kind::Hba, &common.files, &common.conn).await?;
    let file = HbaFile::parse(&loc.text, &loc.path)
        .map_err(|e| refused(e.to_string()).hint("fix pg_hba.conf at the place named above; nothing was changed"))?;
    if let Some(server) = &loc.server {
        for d in file.diagnostics(server.major) {
            note(format!("warning: {}:{}:{}: {}", loc.path.display(), d.line, d.column, d.message));
        }
    }
    Ok((loc, file))
}

async fn save(loc: &Located, file: &HbaFile, write: &WriteArgs) -> Result<(), CliError> {
    let edit = FileEdit::new(&loc.path, loc.text.clone(), file.render());
    let opts = confwrite::Options { dry_run: write.dry_run, reload: !write.no_reload };
    confwrite::write(&edit, Which::Hba, loc.session.as_ref(), &opts).await.map(|_| ())
}

/// A database or user token as typed: keywords stay keywords, `+role` and `@file` keep their meaning,
/// anything else is a literal name (quoted in the file when needed).
fn token(s: &str) -> Token {
    match s {
        "all" | "sameuser" | "samerole" | "samegroup" | "replication" => Token::keyword(s),
        _ if s.len() > 1 && s.starts_with('+') => Token::member_of(&s[1..]),
        _ if s.len() > 1 && s.starts_with('@') => Token::file(&s[1..]),
        _ => Token::name(s),
    }
}

fn warn_if_everything(address: &Option<Address>) {
    if address.as_ref().is_some_and(Address::covers_everything) {
        note(format!(
            "warning: {} admits every address: prefer one rule per node (/32, /128) or the site's subnet",
            address.as_ref().expect("checked")
        ));
    }
}

async fn list(args: ListArgs) -> Result<ExitStatus, CliError> {
    let (loc, file) = load(&args.common).await?;
    if args.json {
        let rows: Vec<_> =
            file.records().map(|r| serde_json::json!({ "line": r.line, "record": r.record, "text": r.text })).collect();
        let json = serde_json::json!({ "file": loc.path, "rules": rows });
        println!("{}", serde_json::to_string_pretty(&json).expect("serialisable"));
        return Ok(ExitStatus::Success);
    }
    println!("# {}", loc.path.display());
    for r in file.records() {
        println!("{:>4}  {}", r.line, r.record);
    }
    Ok(ExitStatus::Success)
}

/// Where a new rule goes by default: before the first rule of its kind (local rules before the first rule,
/// TCP rules before the first TCP rule), so that catch-all rules further down cannot shadow it — but never
/// above a `reject` rule whose addresses overlap the new rule's: a deny the site wrote must keep winning.
fn default_position(file: &HbaFile, record: &Record) -> usize {
    let records: Vec<_> = file.records().collect();
    let local = record.conn_type == ConnType::Local;
    let mut position =
        records.iter().position(|r| local || r.record.conn_type != ConnType::Local).unwrap_or(records.len());
    for (i, r) in records.iter().enumerate().skip(position) {
        let both_local = local == (r.record.conn_type == ConnType::Local);
        if r.record.method == Method::Reject && both_local && addresses_overlap(&r.record.address, &record.address) {
            position = i + 1;
        }
    }
    position
}

/// Whether two ADDRESS fields may admit a common client (`true` when it cannot be told here: host names,
/// samehost, samenet). Local rules have none and always overlap.
fn addresses_overlap(a: &Option<Address>, b: &Option<Address>) -> bool {
    let (Some(a), Some(b)) = (a, b) else { return true };
    let ends = |x: &Address| -> Option<Vec<IpAddr>> {
        match x {
            Address::Cidr { addr, prefix, .. } => Some(network_ends(*addr, *prefix)),
            _ => None,
        }
    };
    match (ends(a), ends(b)) {
        (Some(ea), Some(eb)) => {
            ea.iter().any(|ip| b.admits(*ip) != Some(false)) || eb.iter().any(|ip| a.admits(*ip) != Some(false))
        }
        _ => true,
    }
}

/// The first and last address of `addr/prefix`.
fn network_ends(addr: IpAddr, prefix: u8) -> Vec<IpAddr> {
    match addr {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix.min(32))).unwrap_or(0);
            let first = u32::from(v4) & mask;
            vec![IpAddr::V4(first.into()), IpAddr::V4((first | !mask).into())]
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix.min(128))).unwrap_or(0);
            let first = u128::from(v6) & mask;
            vec![IpAddr::V6(first.into()), IpAddr::V6((first | !mask).into())]
        }
    }
}

fn same_rule(a: &Record, b: &Record) -> bool {
    a.conn_type == b.conn_type
        && a.databases == b.databases
        && a.users == b.users
        && a.address == b.address
        && a.method == b.method
        && a.options == b.options
}

async fn add(args: AddArgs) -> Result<ExitStatus, CliError> {
    let address = match &args.address {
        Some(a) => Some(Address::parse(a).map_err(refused)?),
        None => None,
    };
    if (args.conn_type == ConnType::Local) != address.is_none() {
        return Err(refused("local rules take no --address; every other type needs one"));
    }
    warn_if_everything(&address);
    let mut record = Record::new(
        args.conn_type,
        args.databases.iter().map(|d| token(d)).collect(),
        args.users.iter().map(|u| token(u)).collect(),
        address,
        args.method,
    );
    for o in &args.options {
        let (n, v) = o.split_once('=').ok_or_else(|| refused(format!("option {o:?} is not NAME=VALUE")))?;
        record = record.with_option(n, v);
    }
    let (loc, mut file) = load(&args.common).await?;
    if let Some(existing) = file.records().find(|r| same_rule(r.record, &record)) {
        note(format!("line {} already is this rule: nothing to do", existing.line));
        return Ok(ExitStatus::Success);
    }
    let edited = match (args.append, args.before_line) {
        (true, _) => file.push(&record),
        (_, Some(line)) => file.insert_before_line(line, &record),
        _ => file.insert(default_position(&file, &record), &record),
    };
    let line = edited.map_err(|e| refused(e.to_string()))?;
    note(format!("rule at line {line}: {record}"));
    save(&loc, &file, &args.write).await?;
    Ok(ExitStatus::Success)
}

async fn remove(args: RemoveArgs) -> Result<ExitStatus, CliError> {
    let (loc, mut file) = load(&args.common).await?;
    let lines: Vec<usize> = match args.line {
        Some(line) => vec![line],
        None => {
            let m = RecordMatch {
                conn_type: args.match_type,
                database: args.match_database.as_deref().map(token),
                user: args.match_user.as_deref().map(token),
                address: args.match_address.as_deref().map(Address::parse).transpose().map_err(refused)?,
                method: args.match_method,
            };
            if m == RecordMatch::default() {
                return Err(refused("say which rules: --line N or at least one --match-… option"));
            }
            file.find(&m).map(|r| r.line).collect()
        }
    };
    if lines.is_empty() {
        note("no rule matches: nothing to do");
        return Ok(ExitStatus::Success);
    }
    // Bottom up, so earlier line numbers stay valid.
    for line in lines.iter().rev() {
        let text = file.remove(*line).map_err(|e| refused(e.to_string()))?;
        note(format!("removing line {line}: {}", text.trim_end()));
    }
    save(&loc, &file, &args.write).await?;
    Ok(ExitStatus::Success)
}

/// `ADDR` → `ADDR/32` or `/128`; `ADDR/PREFIX` as given.
fn node_address(node: &str) -> Result<Address, CliError> {
    let text = if node.contains('/') {
        node.to_owned()
    } else {
        let ip: IpAddr = node.parse().map_err(|_| {
            refused(format!("{node:?} is not an IP address")).hint("give node addresses as ADDR or ADDR/PREFIX")
        })?;
        format!("{ip}/{}", if ip.is_ipv4() { 32 } else { 128 })
    };
    Address::parse(&text).map_err(refused)
}

async fn allow_nodes(args: AllowNodesArgs) -> Result<ExitStatus, CliError> {
    let addresses: Vec<Address> = args.nodes.iter().map(|n| node_address(n)).collect::<Result<_, _>>()?;
    for a in &addresses {
        warn_if_everything(&Some(a.clone()));
    }
    let (loc, mut file) = load(&args.common).await?;
    let server = loc.server.as_ref();
    let method = args.method.unwrap_or(match server.map(|s| s.password_encryption.as_str()) {
        Some("md5") => Method::Md5,
        _ => Method::ScramSha256,
    });
    let ssl = args.ssl || (!args.no_ssl && server.is_some_and(|s| s.ssl));
    if server.is_none() && args.method.is_none() {
        note("no server connection: using scram-sha-256 (pass --method md5 if the server still stores md5 hashes)");
    }
    let conn_type = if ssl { ConnType::HostSsl } else { ConnType::Host };
    let databases: Vec<Token> = QLIK_DATABASES.iter().map(|d| Token::name(d)).collect();
    let records: Vec<Record> = addresses
        .into_iter()
        .map(|a| Record::new(conn_type, databases.clone(), vec![Token::name(&args.repo_user)], Some(a), method))
        .collect();

    let localhost = Address::parse("127.0.0.1/32").expect("valid");
    let mut position = records.iter().map(|r| default_position(&file, r)).max().unwrap_or(0);
    if args.replace_localhost_rule {
        let m = RecordMatch {
            conn_type: Some(ConnType::Host),
            database: Some(Token::keyword("all")),
            user: Some(Token::keyword("all")),
            address: Some(localhost),
            method: None,
        };
        let found: Vec<usize> = file
            .find(&m)
            .filter(|r| r.record.databases.len() == 1 && r.record.users.len() == 1)
            .map(|r| r.line)
            .collect();
        match found.first() {
            Some(&line) => {
                position = file.records().position(|r| r.line == line).expect("found above");
                let text = file.remove(line).map_err(|e| refused(e.to_string()))?;
                note(format!(
                    "replacing line {line}: {} (TCP connections from this machine now need a rule of their own)",
                    text.trim_end()
                ));
            }
            None => note("no `host all all 127.0.0.1/32` line to replace: adding the node rules"),
        }
    }
    let mut added = 0;
    for record in &records {
        if let Some(existing) = file.records().find(|r| same_rule(r.record, record)) {
            note(format!("line {} already lets {} in", existing.line, record.address.as_ref().expect("set")));
            continue;
        }
        let line = file.insert(position + added, record).map_err(|e| refused(e.to_string()))?;
        note(format!("rule at line {line}: {record}"));
        added += 1;
    }
    save(&loc, &file, &args.write).await?;
    Ok(ExitStatus::Success)
}

async fn explain(args: ExplainArgs) -> Result<ExitStatus, CliError> {
    let (loc, file) = load(&args.common).await?;
    let major = args.major.or(loc.server.as_ref().map(|s| s.major)).unwrap_or(16);
    let mut facts = Facts::new(major);
    if let Some(session) = &loc.session {
        let mut roles = Roles::new();
        for (role, member_of) in qrd_pg::serverconf::memberships(session).await? {
            roles.add(&role, member_of.iter().map(String::as_str));
        }
        facts.roles = Some(roles);
    }
    // The file came from this machine's data directory or its server: this machine is the server host,
    // so its interfaces are the server's (`samehost`, `samenet`). A copy given with --file may not be.
    if args.common.files.file.is_none() {
        facts.interfaces = qrd_server::interfaces();
    }
    facts.token_files = token_files(&file, &loc.path);
    let client = match args.address {
        Some(ip) => Client::Tcp(ip),
        None => Client::Local,
    };
    let replication = if args.replication { Replication::Physical } else { Replication::No };
    let mut ssl = args.ssl;
    if ssl && loc.server.as_ref().is_some_and(|s| !s.ssl) {
        note(
            "warning: the server has ssl = off, so no connection can use SSL (hostssl lines never match): explaining the connection without it",
        );
        ssl = false;
    }
    let req = Request::new(client, &args.user, &args.database).with_ssl(ssl).with_replication(replication);
    let outcome = file.explain(&req, &facts);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome).expect("serialisable"));
    } else {
        print_outcome(&outcome, &loc);
    }
    Ok(match outcome {
        Outcome::Matched { method: Method::Reject, .. } | Outcome::NoMatch { .. } => ExitStatus::ChecksFailed,
        _ => ExitStatus::Success,
    })
}

/// The contents of the `@file` lists the rules refer to (and the lists those name), read the way the
/// server reads them: relative to the directory of pg_hba.conf. Unreadable ones stay unknown.
fn token_files(file: &HbaFile, hba_path: &std::path::Path) -> BTreeMap<String, String> {
    let dir = hba_path.parent().unwrap_or(std::path::Path::new("."));
    let mut out = BTreeMap::new();
    let mut pending: Vec<String> = file.file_refs().into_iter().map(|(_, name)| name).collect();
    while let Some(name) = pending.pop() {
        if out.contains_key(&name) || out.len() >= 100 {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(dir.join(&name)) else { continue };
        pending.extend(
            text.lines()
                .map(|l| l.split('#').next().unwrap_or_default())
                .flat_map(|l| l.split([' ', '\t', ',']))
                .filter_map(|w| w.strip_prefix('@'))
                .filter(|w| !w.is_empty())
                .map(str::to_owned),
        );
        out.insert(name, text);
    }
    out
}

fn print_outcome(outcome: &Outcome, loc: &Located) {
    match outcome {
        Outcome::Matched { line, record, method, message } => {
            println!("{}:{line}: {record}", loc.path.display());
            match message {
                Some(m) => println!("refused: {m}"),
                None => println!("matches: the server authenticates with {method}"),
            }
        }
        Outcome::NoMatch { message } => println!("no line matches; the server says: {message}"),
        Outcome::Undecided { line, record, reason, otherwise } => {
            let shown = record.as_ref().map(|r| r.to_string()).unwrap_or_else(|| "(include directive)".to_owned());
            println!("{}:{line}: {shown}\nmatches only if {reason}; otherwise:", loc.path.display());
            print_outcome(otherwise, loc);
        }
    }
}
