//! `qrd restore BUNDLE`: arguments, a call into `qrd_backup::restore`, and its rendering.

use std::path::PathBuf;

use clap::Args;
use qrd_backup::as_admin::RepoPassword;
use qrd_backup::hostname::Rename;
use qrd_backup::restore::{self, Action, Clean, Request};
use qrd_pg::Session;

use crate::error::{CliError, ExitStatus};
use crate::options::{ConnectArgs, ToolArgs};
use crate::output::note;

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The bundle (NAME.tar.zst) made by `qrd backup`
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    /// Restore only this database (repeatable) [default: every database of the bundle]
    #[arg(long = "database", value_name = "NAME")]
    pub databases: Vec<String>,
    #[command(flatten)]
    pub jobs: crate::options::JobsArgs,
    /// The repository role whose provisioning is checked afterwards
    #[arg(long, value_name = "ROLE", default_value = qrd_pg::spec::DEFAULT_REPO_ROLE)]
    pub repo_user: String,
    /// The repository role's password from FILE (else QRD_REPO_PASSWORD, else a prompt on a terminal), for a
    /// bundle whose roles hold no passwords (taken by an admin that may not read pg_authid) when the restore
    /// creates the role; without one the role is left without a password
    #[arg(long, value_name = "FILE")]
    pub repo_password_file: Option<PathBuf>,
    /// The new machine's host name: the central node's name in QSR changes to it, as the repository's
    /// bootstrap would change it
    #[arg(long, value_name = "HOST")]
    pub new_hostname: Option<String>,
    /// The old central host name [default: the central node the bundle recorded]
    #[arg(long, value_name = "HOST", requires = "new_hostname")]
    pub old_hostname: Option<String>,
    /// OLD=NEW: a shared folder prefix to move, e.g. '\\oldhost\QlikShare=\\newhost\QlikShare' (repeatable)
    #[arg(long = "share-path", value_name = "OLD=NEW", requires = "new_hostname", value_parser = parse_share)]
    pub share_paths: Vec<(String, String)>,
    /// Replace databases that hold data: restore into a scratch database, prove it, then swap names in one
    /// transaction (the originals stay in service until then, and are kept afterwards)
    #[arg(long)]
    pub clean: bool,
    /// With --clean: drop the replaced databases once the swap committed
    #[arg(long, requires = "clean")]
    pub drop_old: bool,
    /// With --clean: end the other sessions of the replaced databases for the swap (stop the Qlik services
    /// instead where you can)
    #[arg(long, requires = "clean")]
    pub yes: bool,
    /// Show what would be done to each database (the host name UPDATEs included); change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: ConnectArgs,
    #[command(flatten)]
    pub tools: ToolArgs,
}

fn parse_share(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((old, new)) if !old.is_empty() && !new.is_empty() => Ok((old.to_owned(), new.to_owned())),
        _ => Err(format!("{s:?} is not OLD=NEW")),
    }
}

pub async fn execute(a: RestoreArgs) -> Result<ExitStatus, CliError> {
    let req = Request {
        bundle: a.bundle,
        databases: a.databases,
        jobs: a.jobs.get(),
        repo_role: a.repo_user,
        rename: a.new_hostname.map(|new_host| Rename { new_host, old_host: a.old_hostname, shares: a.share_paths }),
        clean: a.clean.then_some(Clean { drop_old: a.drop_old, terminate_sessions: a.yes }),
        repo_password: qrd_auth::source::repo_password(a.repo_password_file.as_deref())?,
    };
    let session = Session::open(&a.conn.opts()).await?;
    if a.dry_run {
        return dry_run(&session, &req, a.json).await;
    }
    let mut req = req;
    if req.repo_password.is_none() && qrd_pg::password::can_prompt() {
        let manifest = qrd_backup::bundle::read_manifest(&req.bundle).map_err(restore::RestoreError::from)?;
        if qrd_backup::as_admin::needs_repo_password(&session, &manifest, &req.repo_role).await? {
            note(format!(
                "the bundle holds no passwords (its backup could not read pg_authid): role {:?} is created, and needs one",
                req.repo_role
            ));
            req.repo_password = Some(qrd_auth::source::prompt_repo_password(&req.repo_role)?);
        }
    }
    let report = restore::restore(&session, &a.tools.finder(), &req, &crate::output::progress()).await?;
    if a.json {
        crate::output::print_json(&report);
        return Ok(ExitStatus::Success);
    }
    for d in &report.databases {
        let how = match &d.replaced {
            Some(r) => match &r.kept_as {
                Some(old) => format!("replaced (the previous one kept as {old:?})"),
                None => "replaced (the previous one dropped)".to_owned(),
            },
            None if d.created => "created and restored".to_owned(),
            None => "restored into the empty database".to_owned(),
        };
        println!(
            "{:<16} {how}: {} tables, {} rows as the manifest counted ({:.1} s)",
            d.name, d.tables, d.rows, d.seconds
        );
    }
    if !report.roles_created.is_empty() {
        println!("roles created from the bundle: {}", report.roles_created.join(", "));
    }
    for p in &report.provisioning_differs {
        println!("differs from the guide: {p} (run `qrd provision`)");
    }
    match &report.repo_password {
        RepoPassword::Set => {
            println!("password of role {:?} set from the one given (the bundle holds none)", req.repo_role)
        }
        RepoPassword::NotSet { next_step } => println!(
            "role {:?} has no password (the bundle holds none, and none was given): Qlik's services cannot log in \
             until it has one; {next_step}",
            req.repo_role
        ),
        _ => {}
    }
    if let Some(r) = &report.renamed {
        println!(
            "QSR: central node {:?} → {:?}, {} LocalConfigs row(s), shared folder rows {:?}",
            r.old_host, r.new_host, r.local_configs, r.share_rows
        );
        println!("Left to do on {}, in the guide's order:", r.new_host);
        for (i, step) in report.runbook.iter().enumerate() {
            println!("  {}. {step}", i + 1);
        }
    }
    println!("restore complete: {} ({:.1} s)", report.bundle.display(), report.seconds);
    Ok(ExitStatus::Success)
}

/// What the bundle would bring to each database of the target, and the host name statements.
async fn dry_run(session: &Session, req: &Request, json: bool) -> Result<ExitStatus, CliError> {
    let plan = restore::plan(session, req).await?;
    if json {
        crate::output::print_json(&plan);
        return Ok(ExitStatus::Success);
    }
    let manifest = qrd_backup::bundle::read_manifest(&req.bundle).map_err(qrd_backup::restore::RestoreError::from)?;
    for leftover in &plan.leftovers {
        println!("would drop {leftover:?} (left by an interrupted --clean restore)");
    }
    for (name, action) in &plan.databases {
        let Some(d) = manifest.databases.iter().find(|d| &d.name == name) else { continue };
        let rows: u64 = d.row_counts.iter().flat_map(|c| &c.tables).map(|t| t.rows).sum();
        let what = match action {
            Action::Create => "create and restore".to_owned(),
            Action::FillEmpty => "restore into the existing empty".to_owned(),
            Action::Replace { tables, sessions, scratch, kept_as, .. } => {
                let keep = if req.clean.is_some_and(|c| c.drop_old) {
                    "then drop".to_owned()
                } else {
                    format!("keep as {kept_as:?}")
                };
                let ended = if *sessions > 0 { format!(", end its {sessions} session(s)") } else { String::new() };
                format!("replace (it holds {tables} tables; restore into {scratch:?}, swap{ended}, {keep})")
            }
        };
        println!("would {what} {:<16} ({} rows, dumped {})", name, rows, d.dump_started_utc);
    }
    if let Some(rename) = &req.rename {
        let old = qrd_backup::hostname::old_host(rename, manifest.site.as_ref())
            .map_err(qrd_backup::restore::RestoreError::from)?;
        println!("then, in QSR, in one transaction:");
        let statements = qrd_backup::hostname::plan(rename, &old).map_err(qrd_backup::restore::RestoreError::from)?;
        for s in statements {
            println!("  {s}");
        }
        if let Some(site) = &manifest.site {
            let central: Vec<&str> = site.nodes.iter().filter(|n| n.is_central).map(|n| n.host_name.as_str()).collect();
            let local = site.local_config_host_names.iter().filter(|h| h.eq_ignore_ascii_case(&old)).count();
            println!("  (the bundle recorded central node {central:?} and {local} LocalConfigs row(s) naming {old:?})");
        }
    }
    crate::output::note("dry run: nothing was changed");
    Ok(ExitStatus::Success)
}
