//! `qrd ssl enable | disable --temporary | restore | status`: arguments, a call into `qrd-tls`, and the
//! rendering of its result. What each step does and proves is documented there.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use qrd_server::LocalServer;
use qrd_tls::{ProofTarget, Status, TlsError};

use crate::error::{CliError, ExitStatus};
use crate::options::{ConnectArgs, DataDirArg};
use crate::output::note;

#[derive(Debug, Args)]
pub struct SslArgs {
    #[command(subcommand)]
    pub command: SslCommand,
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
    #[command(flatten)]
    pub change: ChangeArgs,
}

/// What every ssl change takes: a dry run, where to prove the result, and the server.
#[derive(Debug, Args)]
pub struct ChangeArgs {
    /// Print the diffs (and, for enable, the files it would install); change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// The TCP address to prove the result on [default: -h when it is TCP, else from listen_addresses]
    #[arg(long, value_name = "HOST")]
    pub proof_host: Option<String>,
    #[command(flatten)]
    pub dir: DataDirArg,
    #[command(flatten)]
    pub conn: ConnectArgs,
}

impl ChangeArgs {
    async fn open(&self) -> Result<LocalServer, CliError> {
        Ok(LocalServer::open(&self.conn.opts(), self.dir.data_dir.as_deref()).await?)
    }

    fn proof(&self) -> ProofTarget {
        ProofTarget { base: self.conn.opts(), host: self.proof_host.clone() }
    }
}

#[derive(Debug, Args)]
pub struct DisableArgs {
    /// Required: TLS goes off until `qrd ssl restore` (for Qlik's installer, which cannot use SSL)
    #[arg(long, required = true)]
    pub temporary: bool,
    #[command(flatten)]
    pub change: ChangeArgs,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Put the saved files back even if they were edited after `disable --temporary`
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub change: ChangeArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub dir: DataDirArg,
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

async fn enable(a: EnableArgs) -> Result<ExitStatus, CliError> {
    // The input is checked before the server is touched at all.
    let given = match (&a.cert, &a.key) {
        (Some(c), Some(k)) => Some(qrd_tls::read_given(c, k, a.ca.as_deref())?),
        _ => None,
    };
    let server = a.change.open().await?;
    let material = match given {
        Some(m) => m,
        None => qrd_tls::lab(&server.data_dir, &a.hostnames, a.days)?,
    };
    let plan = qrd_tls::plan_enable(&server, material, a.keep_host)?;
    if plan.is_empty() {
        println!("ssl enable: nothing to do (certificate, settings and pg_hba.conf are already as asked)");
        return Ok(ExitStatus::Success);
    }
    if a.change.dry_run {
        for (path, _, mode) in &plan.installs {
            println!("would install {} (mode {mode:04o}, owner uid {})", path.display(), server.owner.uid);
        }
        let leaf = &plan.material.leaf;
        println!(
            "certificate: {} ({}), issued by {}, valid until {}",
            leaf.subject,
            leaf.sans.join(", "),
            leaf.issuer,
            qrd_cert::format_utc(leaf.not_after)
        );
        plan.diffs().iter().for_each(|d| print!("{d}"));
        note("dry run: nothing was changed");
        return Ok(ExitStatus::Success);
    }
    let done = qrd_tls::enable(&server, &plan, &a.change.proof()).await?;
    let (Some(host), Some(tls)) = (&done.host, &done.tls) else { return Ok(ExitStatus::Success) };
    let how = match (&tls.version, &tls.cipher) {
        (Some(v), Some(c)) => format!("{v} {c}"),
        _ => "negotiated".to_owned(),
    };
    println!(
        "ssl enabled on {host}:{}: TLS {how} (sslmode {}); plain connections: {}",
        done.port, done.sslmode, done.plain
    );
    if let Some(ca) = &done.lab_ca {
        note(format!(
            "clients verify the server with the lab CA {}: copy it to them (sslrootcert, sslmode=verify-full)",
            ca.display()
        ));
    }
    Ok(ExitStatus::Success)
}

async fn disable(a: DisableArgs) -> Result<ExitStatus, CliError> {
    let server = a.change.open().await?;
    let plan = qrd_tls::plan_disable(&server)?;
    if a.change.dry_run {
        plan.diffs().iter().for_each(|d| print!("{d}"));
        println!("would save the files above in {}", plan.dir.display());
        note("dry run: nothing was changed");
        return Ok(ExitStatus::Success);
    }
    let done = qrd_tls::disable(&server, &plan, &a.change.proof()).await?;
    println!(
        "ssl is off until `qrd ssl restore` (saved in {}); plain connections work: run the Qlik installer now",
        done.dir.display()
    );
    Ok(ExitStatus::Success)
}

async fn restore(a: RestoreArgs) -> Result<ExitStatus, CliError> {
    let server = a.change.open().await?;
    let plan = match qrd_tls::plan_restore(&server, a.force) {
        Err(e @ TlsError::EditedSince { .. }) => {
            // What restoring would lose, as data on stdout, before the refusal.
            if let TlsError::EditedSince { diff, .. } = &e {
                print!("{diff}");
            }
            return Err(e.into());
        }
        other => other?,
    };
    if a.change.dry_run {
        plan.diffs().iter().for_each(|d| print!("{d}"));
        note("dry run: nothing was changed");
        return Ok(ExitStatus::Success);
    }
    let done = qrd_tls::restore(&server, plan, &a.change.proof()).await?;
    println!(
        "restored {} file(s) byte for byte; ssl = {}",
        done.files,
        if done.ssl { "on, TLS proven" } else { "off" }
    );
    Ok(ExitStatus::Success)
}

async fn status(a: StatusArgs) -> Result<ExitStatus, CliError> {
    // With --data-dir, the server reached must be the one using it (as for the other subcommands).
    let session = match &a.dir.data_dir {
        Some(dir) => LocalServer::open(&a.conn.opts(), Some(dir)).await?.session,
        None => qrd_pg::Session::open(&a.conn.opts()).await?,
    };
    let st = qrd_tls::status(&session).await?;
    if a.json {
        crate::output::print_json(&st);
        return Ok(ExitStatus::Success);
    }
    print_status(&st);
    for w in &st.warnings {
        tracing::warn!("{w}");
    }
    Ok(ExitStatus::Success)
}

fn print_status(st: &Status) {
    use qrd_pg::tlsinfo::CertState;
    let row = |k: &str, v: &str| println!("{k:<26}{v}");
    let s = &st.settings;
    row("ssl", if st.ssl { "on" } else { "off" });
    row("ssl_cert_file", &s.ssl_cert_file);
    let key_extra = st
        .local
        .as_ref()
        .and_then(|l| l.key_mode.map(|m| format!(" (mode {m:04o}, owner uid {})", l.key_uid.unwrap_or_default())))
        .unwrap_or_default();
    row("ssl_key_file", &format!("{}{key_extra}", s.ssl_key_file));
    row("ssl_ca_file", if s.ssl_ca_file.is_empty() { "(none)" } else { &s.ssl_ca_file });
    if let Some(v) = &s.ssl_min_protocol_version {
        row("ssl_min_protocol_version", if v.is_empty() { "'' (any)" } else { v });
    }
    if let Some(v) = &s.ssl_ciphers {
        row("ssl_ciphers", v);
    }
    match (&st.certificate, &st.certificate_state) {
        (Some(c), _) => {
            row("certificate subject", &c.subject);
            row("  SANs", &c.sans.join(", "));
            row("  issuer", &c.issuer);
            row("  key type", &c.key_type);
            let flag = if c.expired {
                "  EXPIRED"
            } else if c.days_left < qrd_cert::WARN_DAYS {
                "  WARNING: renew soon"
            } else {
                ""
            };
            row("  not after", &format!("{} ({} days left){flag}", c.not_after, c.days_left));
        }
        (None, CertState::Unreadable { reason }) => row("certificate", &format!("unreadable: {reason}")),
        (None, CertState::Invalid { reason }) => row("certificate", &format!("invalid: {reason}")),
        (None, _) => row("certificate", "not read (needs a superuser)"),
    }
    if let Some(l) = &st.local {
        let verdict = match &l.key_matches {
            Some(Ok(())) => "matches the certificate".to_owned(),
            Some(Err(e)) => format!("DOES NOT MATCH: {e}"),
            None => "not readable here".to_owned(),
        };
        row("  key", &verdict);
    }
    match &st.connection {
        Some(c) if c.ssl => row(
            "this connection",
            &format!(
                "{} {} ({} bits)",
                c.version.as_deref().unwrap_or("?"),
                c.cipher.as_deref().unwrap_or("?"),
                c.bits.unwrap_or_default()
            ),
        ),
        _ => row("this connection", if st.via_socket { "not encrypted (unix socket)" } else { "NOT encrypted" }),
    }
}
