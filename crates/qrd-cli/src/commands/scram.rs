//! `qrd scram status` and `qrd scram migrate`: arguments, and the output of [`qrd_auth::scram`] (the
//! guide's "Changing from MD5 to SCRAM encryption" as one change that locks nobody out: see that module for
//! the order of the steps and what each verifies).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use qrd_auth::AuthError;
use qrd_auth::scram::{self, MigrateRequest};
use qrd_pg::Session;
use qrd_server::{FileKind, WriteOptions};

use crate::error::{CliError, ExitStatus};
use crate::options::{ConnectArgs, FileArgs};
use crate::output::{note, write_checked};

#[derive(Debug, Args)]
pub struct ScramArgs {
    #[command(subcommand)]
    pub command: ScramCommand,
}

#[derive(Debug, Subcommand)]
pub enum ScramCommand {
    /// password_encryption, each login role's hash type, pg_hba.conf lines by method
    Status(StatusArgs),
    /// Switch to SCRAM-SHA-256: setting, role passwords, pg_hba.conf, verified at each step
    Migrate(MigrateArgs),
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    /// The repository role
    #[arg(long, value_name = "ROLE", default_value = qrd_pg::spec::DEFAULT_REPO_ROLE)]
    pub repo_user: String,
    #[command(flatten)]
    pub conn: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// A role whose password to re-hash (repeat); default: the repository role and the connecting superuser
    #[arg(long = "role", value_name = "ROLE")]
    pub roles: Vec<String>,
    /// ROLE=FILE: the role's password in FILE (repeat). Else QRD_PASSWORD_<ROLE>: the name upper-cased when
    /// it is lower-case ASCII letters, digits and _ (QRD_PASSWORD_POSTGRES), else _ and the hex of its UTF-8
    /// bytes (a-b: QRD_PASSWORD__612D62); QRD_REPO_PASSWORD for the repository role; else a prompt on a
    /// terminal.
    #[arg(long = "role-password-file", value_name = "ROLE=FILE", value_parser = parse_role_file)]
    pub role_password_files: Vec<(String, PathBuf)>,
    /// Accept a password that differs from the role's current one (it becomes the new password: every Qlik
    /// node's connection string must then be updated)
    #[arg(long)]
    pub change_password: bool,
    /// Switch only the md5 lines no md5 role logs in through, and leave the others md5 (instead of refusing)
    #[arg(long)]
    pub partial_hba: bool,
    /// The repository role
    #[arg(long, value_name = "ROLE", default_value = qrd_pg::spec::DEFAULT_REPO_ROLE)]
    pub repo_user: String,
    /// Print the plan and the pg_hba.conf diff; change nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub files: FileArgs,
    #[command(flatten)]
    pub conn: ConnectArgs,
}

fn parse_role_file(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((role, file)) if !role.is_empty() && !file.is_empty() => Ok((role.to_owned(), PathBuf::from(file))),
        _ => Err("expected ROLE=FILE (the role's name, '=', then the path of a file holding its password)".to_owned()),
    }
}

pub async fn execute(args: ScramArgs) -> Result<ExitStatus, CliError> {
    match args.command {
        ScramCommand::Status(a) => status(a).await,
        ScramCommand::Migrate(a) => migrate(a).await,
    }
}

async fn status(args: StatusArgs) -> Result<ExitStatus, CliError> {
    let session = Session::open(&args.conn.opts()).await?;
    let st = scram::status(&session, &args.repo_user).await?;
    if args.json {
        crate::output::print_json(&st);
        return Ok(ExitStatus::Success);
    }
    println!("password_encryption = {}", st.password_encryption);
    println!("login roles and their stored password type:");
    for r in &st.roles {
        println!("  {:<14} {}", r.hash.as_str(), r.role);
    }
    match (&st.hba_lines_by_method, &st.hba_problem) {
        (Some(by), _) => {
            println!("pg_hba.conf lines by method:");
            for (method, lines) in by {
                let lines: Vec<String> = lines.iter().map(usize::to_string).collect();
                println!("  {method:<14} line {}", lines.join(", "));
            }
        }
        (None, Some(problem)) => println!("{problem}"),
        (None, None) => {}
    }
    if !st.hba_included_lines_by_method.is_empty() {
        println!("rules in files pg_hba.conf includes, by method:");
        for (method, places) in &st.hba_included_lines_by_method {
            println!("  {method:<14} {}", places.join(", "));
        }
    }
    if let Some(cmd) = st.next_step() {
        note(format!("to move to SCRAM-SHA-256: `{cmd}`"));
    }
    Ok(ExitStatus::Success)
}

async fn migrate(args: MigrateArgs) -> Result<ExitStatus, CliError> {
    let loc = qrd_server::locate(FileKind::Hba, &args.files.choice(), &args.conn.opts()).await?;
    let req = MigrateRequest {
        roles: args.roles,
        role_password_files: args.role_password_files,
        change_password: args.change_password,
        partial_hba: args.partial_hba,
        repo_user: args.repo_user,
    };
    let plan = scram::plan_migrate(&loc, &req).await?;
    let Some(session) = &loc.session else { return Err(AuthError::NoServer.into()) };
    if plan.is_noop() {
        note(
            "already migrated: password_encryption = scram-sha-256, the roles have SCRAM verifiers, no md5 line to switch",
        );
        return Ok(ExitStatus::Success);
    }
    if args.dry_run {
        plan.describe().into_iter().for_each(note);
        write_checked(&plan.write, Some(session), WriteOptions { dry_run: true, reload: false }).await?;
        return Ok(ExitStatus::Success);
    }
    let outcome = scram::apply_migrate(session, &plan).await?;
    for changed in &outcome.changed_passwords {
        println!("The password of {:?} changed. Update every place that stores it:", changed.role);
        for f in &changed.update {
            println!("  - {f}");
        }
    }
    println!("{}", scram::WAY_BACK);
    Ok(ExitStatus::Success)
}
