//! `qrd hba list | add | remove | allow-nodes | explain`: pg_hba.conf edited line by line (everything else
//! byte for byte as it was), checked by the server before it loads it, and explained the way the server
//! matches: first matching line wins.

use std::net::IpAddr;

use clap::{Args, Subcommand};
use qrd_conf::hba::{Address, ConnType, Method, Outcome, Placement, Record, RecordMatch, Token, rule_from_words};
use qrd_pg::spec::{DEFAULT_REPO_ROLE, QLIK_DATABASES};
use qrd_server::hba::{AllowNodes, Explain, HbaEdit, HbaError, Selection};
use qrd_server::{Located, WriteOptions};

use crate::error::{CliError, ExitStatus};
use crate::options::{ConnectArgs, FileArgs};
use crate::output::write_checked;

#[derive(Debug, Args)]
pub struct HbaArgs {
    #[command(subcommand)]
    pub command: HbaCommand,
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
pub struct ListArgs {
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
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
    pub common: Common,
}

#[derive(Debug, Args)]
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
    pub common: Common,
}

#[derive(Debug, Args)]
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
    pub common: Common,
}

#[derive(Debug, Args)]
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

async fn load(common: &Common) -> Result<HbaEdit, CliError> {
    Ok(qrd_server::hba::load(&common.files.choice(), &common.conn.opts()).await?)
}

async fn save(edit: &HbaEdit, write: &WriteArgs) -> Result<ExitStatus, CliError> {
    let opts = WriteOptions { dry_run: write.dry_run, reload: !write.no_reload };
    write_checked(&edit.change(), edit.loc.session.as_ref(), opts).await?;
    Ok(ExitStatus::Success)
}

/// `hba list --json`.
#[derive(serde::Serialize)]
struct Listing<'a> {
    file: &'a std::path::Path,
    rules: Vec<ListedRule<'a>>,
}

#[derive(serde::Serialize)]
struct ListedRule<'a> {
    line: usize,
    record: &'a Record,
    text: &'a str,
}

async fn list(args: ListArgs) -> Result<ExitStatus, CliError> {
    let edit = load(&args.common).await?;
    if args.json {
        let rules = edit.file.records().map(|r| ListedRule { line: r.line, record: r.record, text: r.text }).collect();
        let listing = Listing { file: &edit.loc.path, rules };
        crate::output::print_json(&listing);
        return Ok(ExitStatus::Success);
    }
    println!("# {}", edit.loc.path.display());
    for r in edit.file.records() {
        println!("{:>4}  {}", r.line, r.record);
    }
    Ok(ExitStatus::Success)
}

async fn add(args: AddArgs) -> Result<ExitStatus, CliError> {
    let a = &args;
    let record = rule_from_words(a.conn_type, &a.databases, &a.users, a.address.as_deref(), a.method, &a.options)
        .map_err(HbaError::from)?;
    let mut edit = load(&args.common).await?;
    let at = match (args.append, args.before_line) {
        (true, _) => Placement::Append,
        (_, Some(line)) => Placement::BeforeLine(line),
        _ => Placement::Default,
    };
    if !edit.add(&record, at)? {
        return Ok(ExitStatus::Success);
    }
    save(&edit, &args.write).await
}

async fn remove(args: RemoveArgs) -> Result<ExitStatus, CliError> {
    let which = match args.line {
        Some(line) => Selection::Line(line),
        None => Selection::Matching(RecordMatch {
            conn_type: args.match_type,
            database: args.match_database.as_deref().map(Token::from_word),
            user: args.match_user.as_deref().map(Token::from_word),
            address: args.match_address.as_deref().map(Address::parse).transpose().map_err(HbaError::from)?,
            method: args.match_method,
        }),
    };
    let mut edit = load(&args.common).await?;
    if edit.remove(&which)? == 0 {
        return Ok(ExitStatus::Success);
    }
    save(&edit, &args.write).await
}

async fn allow_nodes(args: AllowNodesArgs) -> Result<ExitStatus, CliError> {
    // The addresses are checked before anything is read or asked.
    for n in &args.nodes {
        Address::parse_node(n).map_err(HbaError::from)?;
    }
    let mut edit = load(&args.common).await?;
    let ssl = if args.ssl {
        Some(true)
    } else if args.no_ssl {
        Some(false)
    } else {
        None
    };
    let req = AllowNodes {
        nodes: args.nodes.clone(),
        databases: QLIK_DATABASES.iter().map(|d| d.to_string()).collect(),
        role: args.repo_user.clone(),
        method: args.method,
        ssl,
        replace_localhost: args.replace_localhost_rule,
    };
    edit.allow_nodes(&req)?;
    save(&edit, &args.write).await
}

async fn explain(args: ExplainArgs) -> Result<ExitStatus, CliError> {
    let edit = load(&args.common).await?;
    let req = Explain {
        address: args.address,
        user: args.user.clone(),
        database: args.database.clone(),
        ssl: args.ssl,
        replication: args.replication,
        major: args.major,
    };
    let outcome = edit.explain(&req).await?;
    if args.json {
        crate::output::print_json(&outcome);
    } else {
        print_outcome(&outcome, &edit.loc);
    }
    Ok(match outcome {
        Outcome::Matched { method: Method::Reject, .. } | Outcome::NoMatch { .. } => ExitStatus::ChecksFailed,
        _ => ExitStatus::Success,
    })
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
