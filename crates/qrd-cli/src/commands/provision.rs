//! `qrd provision`: create what the guide's scripts create, idempotently.

use std::path::PathBuf;

use clap::Args;
use qrd_auth::source::{self, REPO_PASSWORD_ENV};
use qrd_pg::inventory::Inventory;
use qrd_pg::provision::{self, ApplyError, Plan};
use qrd_pg::spec::DEFAULT_REPO_ROLE;
use qrd_pg::{RepoSpec, Session};

use crate::error::{CliError, ExitStatus};
use crate::options::ConnectArgs;
use crate::output::{note, paint_status};

#[derive(Debug, Args)]
pub struct ProvisionArgs {
    /// Name of the repository login role
    #[arg(long, value_name = "ROLE", default_value = DEFAULT_REPO_ROLE)]
    pub repo_user: String,
    /// Read the repository role's password from FILE (else QRD_REPO_PASSWORD, else a prompt on a terminal).
    /// Needed when the role is created; when given for an existing role, its password is set to it.
    #[arg(long, value_name = "FILE")]
    pub repo_password_file: Option<PathBuf>,
    /// Make the repository role the owner of existing Qlik databases owned by another role
    #[arg(long)]
    pub fix_owner: bool,
    /// Print the SQL that would run (a psql script) and change nothing
    #[arg(long)]
    pub dry_run: bool,
    // Flattened groups last: their help headings would otherwise capture the options above.
    #[command(flatten)]
    pub conn: ConnectArgs,
}

pub async fn execute(args: ProvisionArgs) -> Result<ExitStatus, CliError> {
    let spec = RepoSpec::for_role(&args.repo_user)?;
    let mut repo_password = source::repo_password(args.repo_password_file.as_deref())?;

    let session = Session::open(&args.conn.opts()).await?;
    // Held until qrd exits; a dry run changes nothing and needs no lock.
    let _lock = if args.dry_run { None } else { Some(provision::lock(&session).await?) };
    let mut inv = Inventory::gather(&session, &spec).await?;
    if let Some(pw) = &repo_password {
        // Without pg_authid (an admin that is no superuser): the same password again is known by a login.
        provision::check_password_by_login(&session, &mut inv, pw).await;
    }
    let opts = provision::Options { fix_owner: args.fix_owner };
    let mut plan = provision::plan(&inv, &spec, repo_password.as_ref(), &opts);
    if let Some(refused) = plan.refused() {
        return Err(refused.into());
    }
    if plan.needs_password && !args.dry_run {
        repo_password = Some(source::prompt_repo_password(&spec.role)?);
        plan = provision::plan(&inv, &spec, repo_password.as_ref(), &opts);
    }

    let header = format!("PostgreSQL {} at {}, repository role {:?}", inv.version, session.target(), spec.role);
    if args.dry_run {
        print_dry_run(&plan, &inv, &header)?;
        return Ok(ExitStatus::Success);
    }
    println!("qrd provision: {header}");
    if plan.steps.is_empty() {
        for fact in &plan.unchanged {
            println!("  {}  {fact}", paint_status("ok  "));
        }
        println!("nothing to do: the server already matches the guide");
        return Ok(ExitStatus::Success);
    }
    if !inv.is_superuser && plan.steps.iter().any(|s| s.sets_password()) {
        let left = qrd_pg::password::stored::recorders_left_on(&session).await?;
        if let Some(n) = qrd_pg::password::stored::recorders_note(&inv.current_user, &left) {
            note(n);
        }
    }
    let total = plan.steps.len();
    match provision::apply(&session, &plan, |step| println!("  {}  {}", paint_status("done"), step.summary)).await {
        Ok(()) => {
            println!("provisioned: {total} change{}", if total == 1 { "" } else { "s" });
            Ok(ExitStatus::Success)
        }
        Err(e @ ApplyError::Step { .. }) => {
            // Say what exists now, so the DBA knows the state before doing anything else.
            let now = provision::what_exists(&session, &spec).await.ok();
            Err(CliError::from(e).hint(format!(
                "{}fix the cause and run qrd provision again: it continues where it stopped and never drops anything",
                now.map(|s| format!("now on the server: {s}.\n      ")).unwrap_or_default()
            )))
        }
        Err(e) => Err(e.into()),
    }
}

fn print_dry_run(plan: &Plan, inv: &Inventory, header: &str) -> Result<(), CliError> {
    println!("-- qrd provision --dry-run: {header}");
    for fact in &plan.unchanged {
        println!("-- already so: {fact}");
    }
    if plan.steps.is_empty() {
        println!("-- nothing to do: the server already matches the guide");
        return Ok(());
    }
    if plan.steps.iter().any(|s| s.sets_password()) {
        println!(
            "-- :'{}' stands for the password verifier qrd computes on this machine; the password never appears here",
            provision::VERIFIER_VAR
        );
    }
    for note in &plan.notes {
        println!("-- note: {note}");
    }
    if plan.needs_password {
        println!(
            "-- the role needs a password: give --repo-password-file FILE or {REPO_PASSWORD_ENV}, or answer the prompt"
        );
    }
    println!("\\set ON_ERROR_STOP on\n");
    let script = plan.script(&inv.maintenance_db)?;
    print!("{script}");
    note(format!("dry run: {} statement(s) shown, nothing changed", plan.steps.len()));
    Ok(())
}
