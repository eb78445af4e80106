//! `qrd password set ROLE`: arguments, and the output of [`qrd_auth::password`]'s plan and apply (the
//! guide's `ALTER USER … WITH PASSWORD` done right: a verifier computed here, the stored hash read back, a
//! real login).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use qrd_auth::password::{self, SetRequest};
use qrd_pg::Session;

use crate::error::{CliError, ExitStatus};
use crate::options::ConnectArgs;
use crate::output::note;

#[derive(Debug, Args)]
pub struct PasswordArgs {
    #[command(subcommand)]
    pub command: PasswordCommand,
}

#[derive(Debug, Subcommand)]
pub enum PasswordCommand {
    /// Set a role's password from a verifier computed here; verify the stored hash and a real login
    Set(SetArgs),
}

#[derive(Debug, Args)]
pub struct SetArgs {
    /// The role whose password to set
    #[arg(value_name = "ROLE")]
    pub role: String,
    /// Read the new password from FILE (else QRD_NEW_PASSWORD, else a prompt on a terminal, typed twice)
    #[arg(long, value_name = "FILE")]
    pub new_password_file: Option<PathBuf>,
    /// Say what would be done and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Skip the verification login as the role
    #[arg(long)]
    pub no_verify: bool,
    /// The repository role: its password is in every Qlik node's connection string, so changing it prints
    /// where to update them
    #[arg(long, value_name = "ROLE", default_value = qrd_pg::spec::DEFAULT_REPO_ROLE)]
    pub repo_user: String,
    #[command(flatten)]
    pub conn: ConnectArgs,
}

pub async fn execute(args: PasswordArgs) -> Result<ExitStatus, CliError> {
    match args.command {
        PasswordCommand::Set(a) => set(a).await,
    }
}

async fn set(args: SetArgs) -> Result<ExitStatus, CliError> {
    let session = Session::open(&args.conn.opts()).await?;
    let req = SetRequest { role: args.role, repo_role: args.repo_user, new_password_file: args.new_password_file };
    let plan = password::plan_set(&session, &req).await?;
    if plan.is_noop() {
        let stored = match plan.stored {
            Some(_) => format!("stored as {}", plan.encryption.hash_type().as_str()),
            None => "a login with it works".to_owned(),
        };
        note(format!("role {:?} already has this password, {stored}: nothing to do", plan.role));
        if !args.no_verify && !args.dry_run {
            password::verify_set(&session, &plan).await?;
        }
        return Ok(ExitStatus::Success);
    }
    if args.dry_run {
        note(format!("dry run: would {}", plan.describe()));
        return Ok(ExitStatus::Success);
    }
    password::apply_set(&session, &plan).await?;
    note(format!("done: {}", plan.describe()));
    // The list first: it holds whatever the verification login says.
    let followups = plan.followups();
    if !followups.is_empty() {
        println!("The password of {:?} changed. Update every place that stores it:", plan.role);
        for f in followups {
            println!("  - {f}");
        }
    }
    if !args.no_verify {
        password::verify_set(&session, &plan).await?;
    }
    Ok(ExitStatus::Success)
}
