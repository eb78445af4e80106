//! `qrd ssl enable | disable --temporary | restore | status`: the guide's "Database traffic encryption" and
//! "Forcing the database connection to use TLS 1.2 only" as one checked step, and its workaround for Qlik's
//! installer ("Unable to upgrade Qlik Sense, missing database": the installer cannot use SSL) as a
//! disable that saves the exact files and a restore that puts them back byte for byte.
//!
//! Every change is proven on the server afterwards, with real connections: a TLS one that `pg_stat_ssl`
//! reports encrypted, presenting the certificate just installed, and (after enable) a plain one that the
//! server refuses. A failed proof puts back what was there and reloads.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use qrd_cert::{CertInfo, WARN_DAYS};
use qrd_conf::hba::{ConnType, HbaFile, Method};
use qrd_conf::pgconf::{ConfFile, ConfTree, parse_bool};
use qrd_conf::write::{self, Applied, FileEdit, Installed, Perms};
use qrd_pg::Session;
use qrd_pg::connect::{ConnectErrorKind, ConnectOpts, SslMode};
use qrd_pg::serverconf::{self, ServerPaths};
use qrd_pg::tlsinfo::{self, CertState, TlsInfo};
use sha2::{Digest, Sha256};

use crate::confwrite::{self, Which};
use crate::error::{CliError, ExitStatus};
use crate::options::{ConnectArgs, HelpArg};
use crate::output::note;

/// The guide's names for Qlik's exported certificate and key ("Database traffic encryption", step 4), and
/// Qlik's name for its exported root certificate.
const CERT_NAME: &str = "server.pem";
const KEY_NAME: &str = "server_key.pem";
const CA_NAME: &str = "root.pem";
/// The guide's cipher list ("Forcing the database connection to use TLS 1.2 only"). It governs TLS 1.2 and
/// below only: TLS 1.3 suites are OpenSSL's defaults (PostgreSQL 12–16 have no setting for them).
pub const GUIDE_CIPHERS: &str = "DEFAULT:!LOW:!EXP:!eNULL:!aNULL:!MD5:!RC2:!RC4:!DES:@STRENGTH";
/// Where `disable --temporary` keeps the files it will put back, inside the data directory.
const SAVED_DIR: &str = "qrd-ssl-saved";
const MANIFEST: &str = "manifest.json";

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct SslArgs {
    #[command(subcommand)]
    pub command: SslCommand,
    #[command(flatten)]
    pub help: HelpArg,
}

#[derive(Debug, Subcommand)]
pub enum SslCommand {
    /// Install a certificate, turn TLS on (TLS 1.2+, the guide's ciphers), host rules to hostssl, and prove it
    Enable(EnableArgs),
    /// The guide's workaround for Qlik's installer: TLS off until `qrd ssl restore` (the files are saved)
    Disable(DisableArgs),
    /// Put back exactly what `disable --temporary` saved, reload, and prove TLS works again
    Restore(RestoreArgs),
    /// Settings, certificate and this connection's TLS
    Status(StatusArgs),
}

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct EnableArgs {
    /// The server certificate (PEM; Qlik's exported server.pem as it is; a chain may follow it)
    #[arg(long, value_name = "FILE", requires = "key", conflicts_with = "self_signed")]
    pub cert: Option<PathBuf>,
    /// Its private key (PEM, unencrypted; Qlik's exported server_key.pem)
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// The CA certificate that signed it (installed as root.pem and set as ssl_ca_file)
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub ca: Option<PathBuf>,
    /// For labs: generate a CA and a server certificate for --hostname (the CA goes to root.pem for clients)
    #[arg(long, requires = "hostnames", required_unless_present = "cert")]
    pub self_signed: bool,
    /// Host names and IP addresses clients use to reach the server (repeatable; with --self-signed)
    #[arg(long = "hostname", value_name = "NAME", requires = "self_signed")]
    pub hostnames: Vec<String>,
    /// Validity of a generated certificate, in days
    #[arg(long, value_name = "DAYS", default_value_t = 365, requires = "self_signed",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub days: u32,
    /// Keep plain `host` rules (TLS is then offered but not required)
    #[arg(long)]
    pub keep_host: bool,
    /// Print the diffs and the files that would be installed; change nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub proof: ProofArgs,
    #[command(flatten)]
    pub help: HelpArg,
    #[command(flatten)]
    pub conn: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct ProofArgs {
    /// The TCP address to prove the result on [default: -h when it is TCP, else from listen_addresses]
    #[arg(long, value_name = "HOST")]
    pub proof_host: Option<String>,
}

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct DisableArgs {
    /// Required: TLS goes off until `qrd ssl restore` (for Qlik's installer, which cannot use SSL)
    #[arg(long, required = true)]
    pub temporary: bool,
    /// Print the diffs; change nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub proof: ProofArgs,
    #[command(flatten)]
    pub help: HelpArg,
    #[command(flatten)]
    pub conn: ConnectArgs,
}

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct RestoreArgs {
    /// Put the saved files back even if they were edited after `disable --temporary`
    #[arg(long)]
    pub force: bool,
    /// Print the diffs; change nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub proof: ProofArgs,
    #[command(flatten)]
    pub help: HelpArg,
    #[command(flatten)]
    pub conn: ConnectArgs,
}

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct StatusArgs {
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub help: HelpArg,
    #[command(flatten)]
    pub conn: ConnectArgs,
}

pub async fn execute(args: SslArgs) -> Result<ExitStatus, CliError> {
    match args.command {
        SslCommand::Enable(a) => enable(a).await,
        SslCommand::Disable(a) => disable(a).await,
        SslCommand::Restore(a) => restore(a).await,
        SslCommand::Status(a) => status(a).await,
    }
}

fn refused(msg: impl Into<String>) -> CliError {
    CliError::new(ExitStatus::Refused, msg)
}

fn failed(msg: impl Into<String>) -> CliError {
    CliError::new(ExitStatus::Failed, msg)
}

// ---- the server and its files ----

/// A connected server whose files qrd can reach on this machine.
struct Server {
    session: Session,
    paths: ServerPaths,
    data_dir: PathBuf,
    /// The server's OS user: the data directory's owner.
    uid: u32,
    gid: u32,
}

impl Server {
    /// Mode `mode`, owned by the server's OS user.
    fn perms(&self, mode: u32) -> Perms {
        Perms { mode, uid: self.uid, gid: self.gid }
    }
}

async fn open(conn: &ConnectArgs) -> Result<Server, CliError> {
    let session = Session::open(&conn.opts()).await?;
    let paths = serverconf::paths(&session).await?;
    let data_dir = PathBuf::from(&paths.data_directory);
    let meta = fs::metadata(&data_dir).map_err(|e| {
        refused(format!("cannot reach the server's data directory {} here: {e}", data_dir.display())).hint(
            "run qrd on the server's machine, as root or as the server's OS user (the owner of the data directory)",
        )
    })?;
    Ok(Server { session, paths, data_dir, uid: meta.uid(), gid: meta.gid() })
}

impl Server {
    fn read(&self, path: &Path) -> Result<String, CliError> {
        fs::read_to_string(path).map_err(|e| {
            refused(format!("cannot read {}: {e}", path.display()))
                .hint("run qrd as root or as the server's OS user (the owner of the data directory)")
        })
    }

    fn tree(&self) -> Result<ConfTree, CliError> {
        ConfTree::load_with_data_dir(Path::new(&self.paths.config_file), &self.data_dir)
            .map_err(|e| refused(e.to_string()).hint("fix the file at the place named above; nothing was changed"))
    }

    fn hba(&self) -> Result<(PathBuf, String, HbaFile), CliError> {
        let path = PathBuf::from(&self.paths.hba_file);
        let text = self.read(&path)?;
        let file = HbaFile::parse(&text, &path).map_err(|e| {
            refused(e.to_string()).hint("fix pg_hba.conf at the place named above; nothing was changed")
        })?;
        for (line, inc) in file.includes() {
            note(format!(
                "warning: {}:{line} includes {}: qrd edits only the main file's rules",
                path.display(),
                inc.path
            ));
        }
        Ok((path, text, file))
    }

    fn port(&self) -> u16 {
        self.session.target().port
    }
}

// ---- postgresql.conf ----

/// The edits that make the files say `wanted` (skipping settings whose effective value already says so),
/// grouped per file, in first-touched order. Refuses when ALTER SYSTEM would override a file edit.
fn conf_edits(tree: &ConfTree, wanted: &[(&str, String)]) -> Result<Vec<FileEdit>, CliError> {
    let mut edited: BTreeMap<PathBuf, ConfFile> = BTreeMap::new();
    let mut order: Vec<PathBuf> = Vec::new();
    for (name, value) in wanted {
        let target = tree.edit_target(name);
        if let Some(a) = &target.shadowed_by {
            if same_value(name, &a.value, value) {
                continue;
            }
            return Err(refused(format!(
                "{name} is set with ALTER SYSTEM ({}:{}, value {:?}), which overrides postgresql.conf; nothing was \
                 changed",
                a.file.display(),
                a.line,
                a.value
            ))
            .hint(format!("run `ALTER SYSTEM RESET {name}` and reload, then run this command again")));
        }
        if tree.effective(name).is_some_and(|s| same_value(name, &s.value, value)) {
            continue;
        }
        if !edited.contains_key(&target.file) {
            let f = tree
                .file(&target.file)
                .cloned()
                .ok_or_else(|| failed(format!("{} is not part of the configuration tree", target.file.display())))?;
            edited.insert(target.file.clone(), f);
            order.push(target.file.clone());
        }
        let file = edited.get_mut(&target.file).expect("inserted above");
        file.set(name, value).map_err(|e| refused(e.to_string()))?;
    }
    Ok(order
        .into_iter()
        .map(|path| {
            let before = tree.file(&path).map(ConfFile::render).unwrap_or_default();
            let after = edited[&path].render();
            FileEdit::new(path, before, after)
        })
        .filter(FileEdit::is_change)
        .collect())
}

fn same_value(name: &str, have: &str, want: &str) -> bool {
    if name == "ssl" {
        return parse_bool(have).is_some() && parse_bool(have) == parse_bool(want);
    }
    have == want
}

// ---- pg_hba.conf ----

/// Rewrites the connection type word of every `from` rule to `to`, in place: the rest of each line and every
/// other byte stay as they were (spaces after the word absorb the length change so columns stay aligned).
/// host → hostssl leaves `reject` rules alone (as `host` they already refuse both plain and TLS
/// connections); hostssl → host retypes them too, or with ssl off they would never match and the clients
/// they refuse would fall through to the rules below. Returns the new text and the lines changed.
fn retype(file: &HbaFile, text: &str, from: ConnType, to: ConnType) -> Result<(String, Vec<usize>), CliError> {
    let (bom, body) = match text.strip_prefix('\u{feff}') {
        Some(rest) => ("\u{feff}", rest),
        None => ("", text),
    };
    let mut lines: Vec<String> = body.split_inclusive('\n').map(str::to_owned).collect();
    let mut changed = Vec::new();
    for r in file.records() {
        let keep_reject = to == ConnType::HostSsl && r.record.method == Method::Reject;
        if r.record.conn_type != from || keep_reject {
            continue;
        }
        let pos = r.spans.conn_type;
        let line = lines.get_mut(pos.line - 1).ok_or_else(|| failed("pg_hba.conf changed while reading it"))?;
        let start: usize = line.char_indices().nth(pos.column - 1).map(|(i, _)| i).unwrap_or(line.len());
        let word = from.as_str();
        if !line[start..].starts_with(word) {
            // A quoted type ("host") works but is rare: say so rather than guess at its layout.
            return Err(refused(format!(
                "{}:{}: the connection type is not written plainly as {word}; nothing was changed",
                file.path().display(),
                pos.line
            ))
            .hint(format!("write it as {word} (no quotes) and run again")));
        }
        let after = start + word.len();
        let spaces = line[after..].chars().take_while(|&c| c == ' ').count();
        let (new_word, old_len) = (to.as_str(), word.len());
        let replaced = if new_word.len() > old_len {
            // Eat the spaces the longer word needs, keeping at least one separator.
            let eat = (new_word.len() - old_len).min(spaces.saturating_sub(1));
            (after + eat, new_word.to_owned())
        } else {
            let pad = if spaces > 0 { " ".repeat(old_len - new_word.len()) } else { String::new() };
            (after, format!("{new_word}{pad}"))
        };
        line.replace_range(start..replaced.0, &replaced.1);
        changed.push(pos.line);
    }
    let out = format!("{bom}{}", lines.concat());
    // The edit must change exactly the types of exactly those rules.
    let back = HbaFile::parse(&out, file.path()).map_err(|e| failed(format!("internal: retyped pg_hba.conf: {e}")))?;
    let old: Vec<_> = file.records().map(|r| r.record.clone()).collect();
    let new: Vec<_> = back.records().map(|r| r.record.clone()).collect();
    let consistent = old.len() == new.len()
        && old.iter().zip(&new).all(|(o, n)| {
            let mut o = o.clone();
            if o.conn_type == from && !(to == ConnType::HostSsl && o.method == Method::Reject) {
                o.conn_type = to;
            }
            &o == n
        });
    if !consistent {
        return Err(failed("internal: retyping pg_hba.conf would change more than the connection types")
            .hint("nothing was changed; edit the lines by hand (qrd hba add/remove)"));
    }
    Ok((out, changed))
}

// ---- files in the data directory ----

/// A file qrd put in place, and what was there before (for rollback).
/// Installs `bytes` at `path` for the server's OS user with `mode` (backup of other content beside it).
fn install(server: &Server, path: &Path, bytes: &[u8], mode: u32) -> Result<Installed, CliError> {
    let installed = write::install(path, bytes, server.perms(mode)).map_err(|e| {
        failed(e.to_string()).hint(
            "run qrd as root or as the server's OS user (the owner of the data directory); what was installed \
             before this step is rolled back",
        )
    })?;
    if let Some(b) = &installed.backup {
        note(format!("kept the previous {} as {}", path.display(), b.display()));
    }
    Ok(installed)
}

fn undo(installed: &[Installed]) -> Vec<String> {
    installed.iter().rev().filter_map(|i| i.undo().err().map(|e| format!("{}: {e}", i.path.display()))).collect()
}

// ---- proofs with real connections ----

/// The TCP host to prove on: `--proof-host`, else the connection's own host when TCP, else the first
/// listen address (a wildcard means this machine's loopback).
async fn proof_host(server: &Server, given: &Option<String>) -> Result<Option<String>, CliError> {
    if let Some(h) = given {
        return Ok(Some(h.clone()));
    }
    let t = server.session.target();
    if !t.is_socket() {
        return Ok(Some(t.host.clone()));
    }
    let rows = serverconf::settings(&server.session, &["listen_addresses".to_owned()]).await?;
    let listen = rows.first().map(|r| r.setting.clone()).unwrap_or_default();
    let first = listen.split(',').map(str::trim).find(|s| !s.is_empty());
    Ok(first.map(|a| match a {
        "*" | "0.0.0.0" => "127.0.0.1".to_owned(),
        "::" => "::1".to_owned(),
        other => other.to_owned(),
    }))
}

fn proof_opts(conn: &ConnectArgs, host: &str, port: u16, mode: SslMode, root: Option<PathBuf>) -> ConnectOpts {
    let mut opts = conn.opts();
    opts.host = Some(host.to_owned());
    opts.port = Some(port);
    opts.sslmode = mode;
    opts.sslrootcert = root;
    // A proof never prompts: a plain connection that gets as far as a password question has already
    // shown that pg_hba.conf admits it.
    opts.prompt = false;
    opts.application_name = "qrd ssl proof".to_owned();
    opts
}

#[derive(Debug, serde::Serialize)]
struct TlsProof {
    version: Option<String>,
    cipher: Option<String>,
    /// False when TLS was negotiated but the login (and so the pg_stat_ssl confirmation) failed.
    confirmed: bool,
}

/// A TLS connection (sslmode require, or verify-full against `root`) that pg_stat_ssl reports encrypted.
async fn prove_tls(opts: &ConnectOpts) -> Result<TlsProof, String> {
    match Session::open(opts).await {
        Ok(s) => match tlsinfo::connection(&s).await {
            Ok(Some(c)) if c.ssl => Ok(TlsProof { version: c.version, cipher: c.cipher, confirmed: true }),
            Ok(_) => Err("the server reports this connection as not encrypted (pg_stat_ssl)".to_owned()),
            Err(e) => Err(e.to_string()),
        },
        // With sslmode require or stricter, getting to authentication means TLS was negotiated.
        Err(e) if matches!(e.kind, ConnectErrorKind::Auth | ConnectErrorKind::PasswordMissing) => {
            note(format!(
                "warning: TLS was negotiated with {} but the login failed ({}), so pg_stat_ssl could not confirm it; \
                 give a password (--password-file or PGPASSWORD) for a full proof",
                e.target.address(),
                e.reason
            ));
            Ok(TlsProof { version: None, cipher: None, confirmed: false })
        }
        Err(e) => Err(e.to_string()),
    }
}

/// A plain (sslmode=disable) TCP connection must be refused by pg_hba.conf. Returns the server's refusal.
async fn prove_plain_refused(opts: &ConnectOpts) -> Result<String, String> {
    match Session::open(opts).await {
        Ok(_) => Err("a plain (sslmode=disable) connection still logs in".to_owned()),
        Err(e) if e.kind == ConnectErrorKind::NoHbaEntry => Ok(e.reason),
        Err(e) if matches!(e.kind, ConnectErrorKind::Auth | ConnectErrorKind::PasswordMissing) => Err(format!(
            "a plain (sslmode=disable) connection reached password authentication ({}): a pg_hba.conf rule still \
             admits it",
            e.reason
        )),
        Err(e) => Err(format!("a plain connection failed, but not with pg_hba.conf's refusal: {e}")),
    }
}

/// A plain connection must get through pg_hba.conf (logging in, or at least reaching authentication).
async fn prove_plain_admitted(opts: &ConnectOpts) -> Result<(), String> {
    match Session::open(opts).await {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.kind, ConnectErrorKind::Auth | ConnectErrorKind::PasswordMissing) => {
            note(format!(
                "note: a plain connection reached authentication ({}); not logged in without a password",
                e.reason
            ));
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

// ---- enable ----

/// What enable installs: the certificate, key and (optionally) CA, already checked.
struct Material {
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    ca_pem: Option<Vec<u8>>,
    /// Set ssl_ca_file (a CA given with --ca); a generated lab CA is for clients only.
    set_ca_file: bool,
    leaf: CertInfo,
}

fn read_input(path: &Path, what: &str) -> Result<Vec<u8>, CliError> {
    fs::read(path).map_err(|e| {
        CliError::new(ExitStatus::Usage, format!("cannot read the {what} {}: {e}", path.display()))
            .hint("check the path and that this user may read it")
    })
}

/// Reads and checks the given files: PEM parses, the key matches, the certificate is valid now, the CA
/// signed it. Nothing of the key ever goes into a message.
fn given_material(cert: &Path, key: &Path, ca: Option<&Path>) -> Result<Material, CliError> {
    let cert_pem = read_input(cert, "certificate")?;
    let key_pem = read_input(key, "key")?;
    let bad = |file: &Path, e: &dyn std::fmt::Display| refused(format!("{}: {e}; nothing was changed", file.display()));
    let certs = qrd_cert::parse_certs(&cert_pem).map_err(|e| bad(cert, &e))?;
    let leaf = certs[0].clone();
    let private = qrd_cert::parse_key(&key_pem).map_err(|e| {
        let hint = if matches!(e, qrd_cert::CertError::EncryptedKey) {
            "decrypt it first (openssl pkey -in KEY -out server_key.pem) and keep the result 0600"
        } else {
            "pass the certificate's private key in PEM (Qlik: server_key.pem from Exported Certificates)"
        };
        bad(key, &e).hint(hint)
    })?;
    qrd_cert::check_key_matches(&leaf, &private)
        .map_err(|e| bad(key, &e).hint("pass the key that belongs to the certificate (both from the same export)"))?;
    check_validity(&leaf, cert)?;
    let ca_pem = match ca {
        Some(p) => {
            let pem = read_input(p, "CA certificate")?;
            let cas = qrd_cert::parse_certs(&pem).map_err(|e| bad(p, &e))?;
            if !cas.iter().chain(certs.iter().skip(1)).any(|c| leaf.signed_by(c)) {
                return Err(refused(format!(
                    "{} ({}) did not sign {} (issuer {}); nothing was changed",
                    p.display(),
                    cas[0].subject,
                    cert.display(),
                    leaf.issuer
                ))
                .hint("pass the CA that issued the certificate (Qlik: root.pem from the same export)"));
            }
            Some(pem)
        }
        None => None,
    };
    Ok(Material { cert_pem, key_pem, set_ca_file: ca_pem.is_some(), ca_pem, leaf })
}

fn check_validity(leaf: &CertInfo, file: &Path) -> Result<(), CliError> {
    let now = qrd_cert::now();
    if leaf.expired(now) {
        return Err(refused(format!(
            "{}: the certificate ({}) expired on {}; nothing was changed",
            file.display(),
            leaf.subject,
            qrd_cert::format_utc(leaf.not_after)
        ))
        .hint("export or request a current certificate"));
    }
    if leaf.not_yet_valid(now) {
        return Err(refused(format!(
            "{}: the certificate is not valid before {}; nothing was changed",
            file.display(),
            qrd_cert::format_utc(leaf.not_before)
        ))
        .hint("check this machine's clock"));
    }
    let days = leaf.days_left(now);
    if days < WARN_DAYS {
        note(format!("warning: the certificate expires in {days} day(s), on {}", qrd_cert::format_utc(leaf.not_after)));
    }
    Ok(())
}

/// The lab material: the certificate already installed when it still fits (so a second run changes
/// nothing), else a new CA and certificate.
fn lab_material(server: &Server, hosts: &[String], days: u32) -> Result<Material, CliError> {
    let installed = || -> Option<Material> {
        let cert_pem = fs::read(server.data_dir.join(CERT_NAME)).ok()?;
        let key_pem = fs::read(server.data_dir.join(KEY_NAME)).ok()?;
        let ca_pem = fs::read(server.data_dir.join(CA_NAME)).ok()?;
        let leaf = qrd_cert::parse_certs(&cert_pem).ok()?.remove(0);
        let ca = qrd_cert::parse_certs(&ca_pem).ok()?.remove(0);
        let key = qrd_cert::parse_key(&key_pem).ok()?;
        // Only a lab certificate of ours is reused: a real one is replaced as asked (and backed up).
        let fits = ca.subject.contains("qrd lab CA")
            && qrd_cert::check_key_matches(&leaf, &key).is_ok()
            && leaf.signed_by(&ca)
            && hosts.iter().all(|h| leaf.covers_host(h))
            && leaf.days_left(qrd_cert::now()) >= WARN_DAYS
            && !leaf.not_yet_valid(qrd_cert::now());
        fits.then_some(Material { cert_pem, key_pem, ca_pem: Some(ca_pem), set_ca_file: false, leaf })
    };
    if let Some(m) = installed() {
        note(format!("the lab certificate in {} still fits: kept", server.data_dir.display()));
        return Ok(m);
    }
    let pki = qrd_cert::generate_lab(hosts, days)
        .map_err(|e| refused(format!("{e}; nothing was changed")).hint("check the --hostname values"))?;
    let leaf = qrd_cert::parse_certs(pki.cert_pem.as_bytes()).map_err(|e| failed(e.to_string()))?.remove(0);
    Ok(Material {
        cert_pem: pki.cert_pem.clone().into_bytes(),
        key_pem: pki.key_pem().as_bytes().to_vec(),
        ca_pem: Some(pki.ca_pem.clone().into_bytes()),
        set_ca_file: false,
        leaf,
    })
}

async fn enable(a: EnableArgs) -> Result<ExitStatus, CliError> {
    // Check the input before touching the server at all.
    let given = match (&a.cert, &a.key) {
        (Some(c), Some(k)) => Some(given_material(c, k, a.ca.as_deref())?),
        _ => None,
    };
    let server = open(&a.conn).await?;
    refuse_while_saved(&server)?;
    let material = match given {
        Some(m) => m,
        None => lab_material(&server, &a.hostnames, a.days)?,
    };
    let leaf = &material.leaf;
    let t = server.session.target();
    if !t.is_socket() && !leaf.covers_host(&t.host) {
        note(format!(
            "warning: the certificate does not name {} (its names: {}): clients using sslmode=verify-full with that \
             host name will refuse it",
            t.host,
            leaf.sans.join(", ")
        ));
    }

    // The plan: files, postgresql.conf, pg_hba.conf.
    let mut files: Vec<(PathBuf, &[u8], u32)> = vec![
        (server.data_dir.join(CERT_NAME), &material.cert_pem, 0o644),
        (server.data_dir.join(KEY_NAME), &material.key_pem, 0o600),
    ];
    if let Some(ca) = &material.ca_pem {
        files.push((server.data_dir.join(CA_NAME), ca, 0o644));
    }
    let files: Vec<_> = files
        .into_iter()
        .filter(|(p, bytes, mode)| {
            let same = fs::read(p).is_ok_and(|old| old == *bytes);
            let meta = fs::metadata(p).ok();
            let right_mode = meta.as_ref().is_some_and(|m| m.mode() & 0o7777 == *mode && m.uid() == server.uid);
            !(same && right_mode)
        })
        .collect();

    let mut wanted =
        vec![("ssl", "on".to_owned()), ("ssl_cert_file", CERT_NAME.to_owned()), ("ssl_key_file", KEY_NAME.to_owned())];
    if material.set_ca_file {
        wanted.push(("ssl_ca_file", CA_NAME.to_owned()));
    }
    wanted.push(("ssl_min_protocol_version", "TLSv1.2".to_owned()));
    wanted.push(("ssl_ciphers", GUIDE_CIPHERS.to_owned()));
    let tree = server.tree()?;
    let conf = conf_edits(&tree, &wanted)?;

    let (hba_path, hba_text, hba_file) = server.hba()?;
    for r in
        hba_file.records().filter(|r| r.record.conn_type == ConnType::HostNoSsl && r.record.method != Method::Reject)
    {
        note(format!(
            "warning: {}:{} is a hostnossl rule: it admits plain connections whatever ssl is (remove it with \
             `qrd hba remove --line {}` to require TLS)",
            hba_path.display(),
            r.line,
            r.line
        ));
    }
    let hba = if a.keep_host {
        None
    } else {
        let (after, lines) = retype(&hba_file, &hba_text, ConnType::Host, ConnType::HostSsl)?;
        (!lines.is_empty()).then(|| (FileEdit::new(&hba_path, hba_text.clone(), after), lines))
    };

    if files.is_empty() && conf.is_empty() && hba.is_none() {
        println!("ssl enable: nothing to do (certificate, settings and pg_hba.conf are already as asked)");
        return Ok(ExitStatus::Success);
    }

    if a.dry_run {
        for (path, _, mode) in &files {
            println!("would install {} (mode {mode:04o}, owner uid {})", path.display(), server.uid);
        }
        println!(
            "certificate: {} ({}), issued by {}, valid until {}",
            leaf.subject,
            leaf.sans.join(", "),
            leaf.issuer,
            qrd_cert::format_utc(leaf.not_after)
        );
        for e in &conf {
            print!("{}", e.diff());
        }
        if let Some((e, _)) = &hba {
            print!("{}", e.diff());
        }
        note("dry run: nothing was changed");
        return Ok(ExitStatus::Success);
    }

    // Install, write, reload; any failure puts back what was there.
    let mut installed = Vec::new();
    for (path, bytes, mode) in &files {
        match install(&server, path, bytes, *mode) {
            Ok(i) => {
                note(format!("installed {} (mode {mode:04o})", path.display()));
                installed.push(i);
            }
            Err(e) => {
                undo(&installed);
                return Err(e);
            }
        }
    }
    let mut applied: Vec<Applied> = Vec::new();
    let opts = confwrite::Options { dry_run: false, reload: true };
    let mut steps: Vec<(FileEdit, Which)> = conf.into_iter().map(|e| (e, Which::Conf)).collect();
    if let Some((e, lines)) = hba {
        note(format!("pg_hba.conf: host → hostssl on line(s) {lines:?}"));
        steps.push((e, Which::Hba));
    }
    for (edit, which) in &steps {
        match confwrite::write(edit, *which, Some(&server.session), &opts).await {
            Ok(w) => applied.extend(w.applied),
            Err(e) => {
                rollback(&server, &applied, &installed).await;
                return Err(e);
            }
        }
    }
    if !installed.is_empty() && steps.is_empty() {
        // New certificate files under unchanged settings: the server reads them at reload.
        serverconf::reload(&server.session).await?;
        note("reloaded");
    }

    // The proof.
    let host = proof_host(&server, &a.proof.proof_host).await?;
    let Some(host) = host else {
        note("warning: the server listens on no TCP address (listen_addresses is empty): nothing to prove over TCP");
        return Ok(ExitStatus::Success);
    };
    let root = material.ca_pem.as_ref().map(|_| server.data_dir.join(CA_NAME));
    let mode = if root.is_some() && leaf.covers_host(&host) { SslMode::VerifyFull } else { SslMode::Require };
    let tls =
        prove_tls(&proof_opts(&a.conn, &host, server.port(), mode, root.filter(|_| mode == SslMode::VerifyFull))).await;
    // The server must present the certificate just installed, not one it kept from before.
    let served = qrd_pg::tls::served_certificate(&host, server.port(), a.conn.opts().connect_timeout)
        .await
        .map_err(|e| e.to_string());
    let tls = match (tls, served) {
        (Ok(t), Ok(der)) if der == leaf.der() => Ok(t),
        (Ok(_), Ok(der)) => {
            let what =
                qrd_cert::parse_der(&der).map(|c| c.subject).unwrap_or_else(|_| "another certificate".to_owned());
            Err(format!(
                "the server still presents {what}, not the certificate just installed: the reload did not load it \
                 (the server log says why)"
            ))
        }
        (Ok(_), Err(e)) => Err(e),
        (Err(e), _) => Err(e),
    };
    let plain = if a.keep_host {
        Ok("kept (--keep-host)".to_owned())
    } else {
        prove_plain_refused(&proof_opts(&a.conn, &host, server.port(), SslMode::Disable, None)).await
    };
    match (tls, plain) {
        (Ok(tls), Ok(plain)) => {
            let how = match (&tls.version, &tls.cipher) {
                (Some(v), Some(c)) => format!("{v} {c}"),
                _ => "negotiated".to_owned(),
            };
            println!("ssl enabled on {host}:{}: TLS {how} (sslmode {mode}); plain connections: {plain}", server.port());
            if a.self_signed {
                note(format!(
                    "clients verify the server with the lab CA {}: copy it to them (sslrootcert, sslmode=verify-full)",
                    server.data_dir.join(CA_NAME).display()
                ));
            }
            Ok(ExitStatus::Success)
        }
        (tls, plain) => {
            let why: Vec<String> = [tls.err(), plain.err()].into_iter().flatten().collect();
            rollback(&server, &applied, &installed).await;
            Err(failed(format!(
                "the proof on {host}:{} failed: {}\neverything was put back as it was and reloaded",
                server.port(),
                why.join("; ")
            ))
            .hint("look at the server log for SSL errors; with --keep-host plain rules stay, or remove the rule named above"))
        }
    }
}

async fn rollback(server: &Server, applied: &[Applied], installed: &[Installed]) {
    let mut problems = Vec::new();
    for a in applied.iter().rev() {
        if let Err(e) = a.restore() {
            problems.push(format!("{}: {e} (backup: {})", a.path.display(), a.backup.display()));
        }
    }
    problems.extend(undo(installed));
    if let Err(e) = serverconf::reload(&server.session).await {
        problems.push(format!("reload: {e}"));
    }
    for p in &problems {
        note(format!("error: could not put back {p}"));
    }
    if problems.is_empty() {
        note("rolled back: the previous files are in place and the server reloaded them");
    }
}

// ---- disable --temporary / restore ----

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Manifest {
    /// Format of this file.
    version: u32,
    created_utc: String,
    port: u16,
    files: Vec<SavedFile>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct SavedFile {
    /// `conf` or `hba`.
    kind: String,
    path: PathBuf,
    /// The copy's name inside the saved directory.
    saved_as: String,
    mode: u32,
    uid: u32,
    gid: u32,
    sha256: String,
    /// What disable wrote (restore refuses, without --force, when the file changed since).
    written_sha256: Option<String>,
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn saved_dir(server: &Server) -> PathBuf {
    server.data_dir.join(SAVED_DIR)
}

fn refuse_while_saved(server: &Server) -> Result<(), CliError> {
    let dir = saved_dir(server);
    if dir.join(MANIFEST).exists() {
        return Err(refused(format!(
            "TLS is temporarily disabled (saved state in {}); nothing was changed",
            dir.display()
        ))
        .hint("run `qrd ssl restore` first (after the Qlik installer has finished)"));
    }
    Ok(())
}

fn write_manifest(server: &Server, m: &Manifest) -> Result<(), CliError> {
    let path = saved_dir(server).join(MANIFEST);
    let json = serde_json::to_vec_pretty(m).expect("serialisable");
    write::write_new(&path, &json, server.perms(0o600)).map_err(|e| failed(e.to_string()))
}

async fn disable(a: DisableArgs) -> Result<ExitStatus, CliError> {
    let server = open(&a.conn).await?;
    let dir = saved_dir(&server);
    if dir.exists() {
        return Err(refused(format!(
            "TLS is already temporarily disabled: {} holds the files to put back; nothing was changed",
            dir.display()
        ))
        .hint("run `qrd ssl restore` when the Qlik installer has finished (a second disable would overwrite the saved files)"));
    }
    let tree = server.tree()?;
    let ssl_on = tree.effective("ssl").is_some_and(|s| parse_bool(&s.value) == Some(true));
    let (hba_path, hba_text, hba_file) = server.hba()?;
    let (hba_after, lines) = retype(&hba_file, &hba_text, ConnType::HostSsl, ConnType::Host)?;
    if !ssl_on && lines.is_empty() {
        return Err(refused("ssl is already off and pg_hba.conf has no hostssl rules: nothing to disable")
            .hint("`qrd ssl status` shows the settings"));
    }
    let conf = conf_edits(&tree, &[("ssl", "off".to_owned())])?;
    let mut steps: Vec<(FileEdit, Which)> = Vec::new();
    if !lines.is_empty() {
        steps.push((FileEdit::new(&hba_path, hba_text.clone(), hba_after), Which::Hba));
    }
    steps.extend(conf.into_iter().map(|e| (e, Which::Conf)));

    if a.dry_run {
        for (e, _) in &steps {
            print!("{}", e.diff());
        }
        println!("would save the files above in {}", dir.display());
        note("dry run: nothing was changed");
        return Ok(ExitStatus::Success);
    }

    // Save the exact bytes and modes first.
    fs::create_dir(&dir).map_err(|e| failed(format!("failed to create {}: {e}", dir.display())))?;
    let _ = std::os::unix::fs::chown(&dir, Some(server.uid), Some(server.gid));
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| failed(format!("failed to set the mode of {}: {e}", dir.display())))?;
    let mut manifest = Manifest {
        version: 1,
        created_utc: qrd_cert::format_utc(qrd_cert::now()),
        port: server.port(),
        files: Vec::new(),
    };
    // The files edited, and in any case the main postgresql.conf and pg_hba.conf (restore then also notices
    // edits made to them while TLS was off).
    let mut to_save: Vec<(PathBuf, Which, Option<&str>)> =
        steps.iter().map(|(e, w)| (e.path.clone(), *w, Some(e.after.as_str()))).collect();
    for (path, which) in [(&server.paths.config_file, Which::Conf), (&server.paths.hba_file, Which::Hba)] {
        let path = PathBuf::from(path);
        if !to_save.iter().any(|(p, _, _)| *p == path) {
            to_save.push((path, which, None));
        }
    }
    for (i, (path, which, after)) in to_save.iter().enumerate() {
        let bytes = fs::read(path).map_err(|e| failed(format!("failed to read {}: {e}", path.display())))?;
        let meta = fs::metadata(path).map_err(|e| failed(format!("failed to stat {}: {e}", path.display())))?;
        let saved_as = format!("{}-{}", i + 1, path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
        write::write_new(&dir.join(&saved_as), &bytes, server.perms(0o600))
            .map_err(|e| failed(format!("failed to save {}: {e}", path.display())))?;
        manifest.files.push(SavedFile {
            kind: if *which == Which::Conf { "conf" } else { "hba" }.to_owned(),
            path: path.clone(),
            saved_as,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            sha256: sha256(&bytes),
            written_sha256: Some(sha256(after.map(str::as_bytes).unwrap_or(&bytes))),
        });
    }
    write_manifest(&server, &manifest)?;
    note(format!("saved {} file(s) in {}", manifest.files.len(), dir.display()));

    let opts = confwrite::Options { dry_run: false, reload: true };
    let mut applied = Vec::new();
    for (edit, which) in &steps {
        match confwrite::write(edit, *which, Some(&server.session), &opts).await {
            Ok(w) => applied.extend(w.applied),
            Err(e) => {
                rollback(&server, &applied, &[]).await;
                let _ = fs::remove_dir_all(&dir);
                return Err(e);
            }
        }
    }

    if let Some(host) = proof_host(&server, &a.proof.proof_host).await?
        && let Err(why) = prove_plain_admitted(&proof_opts(&a.conn, &host, server.port(), SslMode::Disable, None)).await
    {
        rollback(&server, &applied, &[]).await;
        let _ = fs::remove_dir_all(&dir);
        return Err(failed(format!("a plain connection to {host}:{} still fails: {why}", server.port()))
            .hint("everything was put back; check pg_hba.conf for the rule the installer's address needs"));
    }
    println!(
        "ssl is off until `qrd ssl restore` (saved in {}); plain connections work: run the Qlik installer now",
        dir.display()
    );
    Ok(ExitStatus::Success)
}

async fn restore(a: RestoreArgs) -> Result<ExitStatus, CliError> {
    let server = open(&a.conn).await?;
    let dir = saved_dir(&server);
    let manifest_path = dir.join(MANIFEST);
    let manifest: Manifest = match fs::read(&manifest_path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| refused(format!("{} is not readable: {e}", manifest_path.display())))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(refused(format!("nothing to restore: {} does not exist", dir.display()))
                .hint("`qrd ssl restore` undoes `qrd ssl disable --temporary`; to turn TLS on, run `qrd ssl enable`"));
        }
        Err(e) => return Err(failed(format!("cannot read {}: {e}", manifest_path.display()))),
    };

    // Check every file before writing any.
    let mut plan = Vec::new();
    for f in
        manifest.files.iter().filter(|f| f.kind == "conf").chain(manifest.files.iter().filter(|f| f.kind != "conf"))
    {
        let saved = fs::read(dir.join(&f.saved_as))
            .map_err(|e| failed(format!("the saved copy of {} is missing: {e}", f.path.display())))?;
        if sha256(&saved) != f.sha256 {
            return Err(failed(format!("the saved copy of {} is damaged (checksum differs)", f.path.display()))
                .hint(format!("compare {} with {} by hand", dir.join(&f.saved_as).display(), f.path.display())));
        }
        let current = fs::read(&f.path).map_err(|e| failed(format!("cannot read {}: {e}", f.path.display())))?;
        if current == saved {
            plan.push((f.clone(), saved, current, false));
            continue;
        }
        if f.written_sha256.as_deref() != Some(sha256(&current).as_str()) && !a.force {
            let edit = FileEdit::new(&f.path, String::from_utf8_lossy(&current), String::from_utf8_lossy(&saved));
            print!("{}", edit.diff());
            return Err(refused(format!(
                "{} changed after `qrd ssl disable --temporary`; restoring would undo those changes (diff above); \
                 nothing was changed",
                f.path.display()
            ))
            .hint("merge by hand, or run `qrd ssl restore --force` to put the saved file back anyway"));
        }
        plan.push((f.clone(), saved, current, true));
    }

    if a.dry_run {
        for (f, saved, current, _) in &plan {
            let edit = FileEdit::new(&f.path, String::from_utf8_lossy(current), String::from_utf8_lossy(saved));
            print!("{}", edit.diff());
        }
        note("dry run: nothing was changed");
        return Ok(ExitStatus::Success);
    }

    let opts = confwrite::Options { dry_run: false, reload: true };
    for (f, saved, current, write) in &plan {
        if *write {
            let (Ok(before), Ok(after)) = (String::from_utf8(current.clone()), String::from_utf8(saved.clone())) else {
                return Err(failed(format!("{} is not UTF-8 text", f.path.display())));
            };
            let which = if f.kind == "conf" { Which::Conf } else { Which::Hba };
            confwrite::write(&FileEdit::new(&f.path, before, after), which, Some(&server.session), &opts).await?;
        }
        // Mode and owner as they were saved.
        let meta = fs::metadata(&f.path).map_err(|e| failed(format!("cannot stat {}: {e}", f.path.display())))?;
        if meta.mode() & 0o7777 != f.mode {
            fs::set_permissions(&f.path, fs::Permissions::from_mode(f.mode))
                .map_err(|e| failed(format!("cannot set the mode of {}: {e}", f.path.display())))?;
        }
        if (meta.uid(), meta.gid()) != (f.uid, f.gid) {
            std::os::unix::fs::chown(&f.path, Some(f.uid), Some(f.gid))
                .map_err(|e| failed(format!("cannot set the owner of {}: {e}", f.path.display())))?;
        }
    }
    if plan.iter().all(|(_, _, _, w)| !w) {
        serverconf::reload(&server.session).await?;
    }

    let ssl_on = serverconf::paths(&server.session).await?.ssl;
    if ssl_on && let Some(host) = proof_host(&server, &a.proof.proof_host).await? {
        let tls = prove_tls(&proof_opts(&a.conn, &host, server.port(), SslMode::Require, None)).await;
        if let Err(why) = tls {
            return Err(failed(format!(
                "the saved files are back, but a TLS connection to {host}:{} fails: {why}",
                server.port()
            ))
            .hint(format!(
                "look at the server log for SSL errors; the saved state stays in {} until a restore proves TLS",
                dir.display()
            )));
        }
    }
    fs::remove_dir_all(&dir).map_err(|e| failed(format!("restored, but cannot remove {}: {e}", dir.display())))?;
    println!("restored {} file(s) byte for byte; ssl = {}", plan.len(), if ssl_on { "on, TLS proven" } else { "off" });
    Ok(ExitStatus::Success)
}

// ---- status ----

async fn status(a: StatusArgs) -> Result<ExitStatus, CliError> {
    let session = Session::open(&a.conn.opts()).await?;
    let Some(info) = tlsinfo::gather(&session).await? else {
        return Err(failed("the server reports no ssl settings"));
    };
    let now = qrd_cert::now();
    let saved =
        info.data_directory.as_ref().map(|d| Path::new(d).join(SAVED_DIR).join(MANIFEST)).filter(|p| p.exists());
    let mut warnings = Vec::new();
    if let Some(leaf) = info.certificate.leaf() {
        let days = leaf.days_left(now);
        if leaf.expired(now) {
            warnings.push(format!("the certificate expired on {}", qrd_cert::format_utc(leaf.not_after)));
        } else if days < WARN_DAYS {
            warnings.push(format!("the certificate expires in {days} day(s)"));
        }
    }
    if let Some(p) = &saved {
        warnings.push(format!("TLS is temporarily disabled: run `qrd ssl restore` (saved state: {})", p.display()));
    }
    if a.json {
        let leaf = info.certificate.leaf();
        let v = serde_json::json!({
            "ssl": info.ssl,
            "settings": settings_json(&info),
            "certificate": leaf.map(|c| serde_json::json!({
                "subject": c.subject, "issuer": c.issuer, "sans": c.sans, "serial": c.serial,
                "key_type": c.key_type,
                "not_before": qrd_cert::format_utc(c.not_before), "not_after": qrd_cert::format_utc(c.not_after),
                "days_left": c.days_left(now), "expired": c.expired(now),
            })),
            "certificate_state": info.certificate,
            "local": info.local,
            "connection": info.connection,
            "temporarily_disabled": saved.is_some(),
            "warnings": warnings,
        });
        println!("{}", serde_json::to_string_pretty(&v).expect("serialisable"));
        return Ok(ExitStatus::Success);
    }
    let row = |k: &str, v: &str| println!("{k:<26}{v}");
    row("ssl", if info.ssl { "on" } else { "off" });
    row("ssl_cert_file", &info.cert_file);
    let key_extra = info
        .local
        .as_ref()
        .and_then(|l| l.key_mode.map(|m| format!(" (mode {m:04o}, owner uid {})", l.key_uid.unwrap_or_default())))
        .unwrap_or_default();
    row("ssl_key_file", &format!("{}{key_extra}", info.key_file));
    row("ssl_ca_file", if info.ca_file.is_empty() { "(none)" } else { &info.ca_file });
    if let Some(v) = &info.min_protocol_version {
        row("ssl_min_protocol_version", if v.is_empty() { "'' (any)" } else { v });
    }
    if let Some(v) = &info.ciphers {
        row("ssl_ciphers", v);
    }
    match &info.certificate {
        CertState::Parsed { certs } => {
            let c = &certs[0];
            row("certificate subject", &c.subject);
            row("  SANs", &c.sans.join(", "));
            row("  issuer", &c.issuer);
            row("  key type", &c.key_type);
            let days = c.days_left(now);
            let flag = if c.expired(now) {
                "  EXPIRED"
            } else if days < WARN_DAYS {
                "  WARNING: renew soon"
            } else {
                ""
            };
            row("  not after", &format!("{} ({days} days left){flag}", qrd_cert::format_utc(c.not_after)));
        }
        CertState::NotRead => row("certificate", "not read (needs a superuser)"),
        CertState::Unreadable { reason } => row("certificate", &format!("unreadable: {reason}")),
        CertState::Invalid { reason } => row("certificate", &format!("invalid: {reason}")),
    }
    if let Some(l) = &info.local {
        let verdict = match &l.key_matches {
            Some(Ok(())) => "matches the certificate".to_owned(),
            Some(Err(e)) => format!("DOES NOT MATCH: {e}"),
            None => "not readable here".to_owned(),
        };
        row("  key", &verdict);
    }
    match &info.connection {
        Some(c) if c.ssl => row(
            "this connection",
            &format!(
                "{} {} ({} bits)",
                c.version.as_deref().unwrap_or("?"),
                c.cipher.as_deref().unwrap_or("?"),
                c.bits.unwrap_or_default()
            ),
        ),
        _ => row(
            "this connection",
            if session.target().is_socket() { "not encrypted (unix socket)" } else { "NOT encrypted" },
        ),
    }
    for w in &warnings {
        note(format!("warning: {w}"));
    }
    Ok(ExitStatus::Success)
}

fn settings_json(info: &TlsInfo) -> serde_json::Value {
    serde_json::json!({
        "ssl_cert_file": info.cert_file, "ssl_key_file": info.key_file, "ssl_ca_file": info.ca_file,
        "ssl_crl_file": info.crl_file, "ssl_min_protocol_version": info.min_protocol_version,
        "ssl_max_protocol_version": info.max_protocol_version, "ssl_ciphers": info.ciphers,
        "ssl_prefer_server_ciphers": info.prefer_server_ciphers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retyped(text: &str, from: ConnType, to: ConnType) -> (String, Vec<usize>) {
        let file = HbaFile::parse(text, Path::new("pg_hba.conf")).unwrap();
        retype(&file, text, from, to).unwrap()
    }

    #[test]
    fn host_to_hostssl_keeps_columns_comments_and_reject_lines() {
        let text = "# TYPE  DATABASE USER ADDRESS METHOD\r\n\
                    local   all      all          trust\r\n\
                    host    all      all  10.0.0.0/8 scram-sha-256 # nodes\r\n\
                    host\tQSR      all  10.9.9.9/32 reject\r\n\
                    host all all ::1/128 md5\r\n\
                    hostnossl all all 0.0.0.0/0 reject\r\n";
        let (out, lines) = retyped(text, ConnType::Host, ConnType::HostSsl);
        assert_eq!(lines, [3, 5]);
        assert_eq!(
            out,
            "# TYPE  DATABASE USER ADDRESS METHOD\r\n\
             local   all      all          trust\r\n\
             hostssl all      all  10.0.0.0/8 scram-sha-256 # nodes\r\n\
             host\tQSR      all  10.9.9.9/32 reject\r\n\
             hostssl all all ::1/128 md5\r\n\
             hostnossl all all 0.0.0.0/0 reject\r\n"
        );
        // And back: the layout of the original returns.
        let (back, _) = retyped(&out, ConnType::HostSsl, ConnType::Host);
        assert_eq!(back.lines().nth(2), text.lines().nth(2));
        assert_eq!(back.lines().nth(4).unwrap(), "host    all all ::1/128 md5");
    }

    #[test]
    fn quoted_types_are_refused_not_guessed() {
        let text = "\"host\" all all 10.0.0.0/8 md5\n";
        let file = HbaFile::parse(text, Path::new("pg_hba.conf")).unwrap();
        assert!(retype(&file, text, ConnType::Host, ConnType::HostSsl).is_err());
    }

    #[test]
    fn guide_ciphers_are_the_guides() {
        assert_eq!(GUIDE_CIPHERS, "DEFAULT:!LOW:!EXP:!eNULL:!aNULL:!MD5:!RC2:!RC4:!DES:@STRENGTH");
    }
}
