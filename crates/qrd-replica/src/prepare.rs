//! `qrd standby prepare-primary`: what a primary needs before a standby can clone it and stream from it.
//!
//! - Settings, each only when the server's value falls short (so a second run changes nothing):
//!   `wal_level = replica` (when `minimal`; `logical` already includes it), `max_wal_senders` (at least the
//!   standbys plus two, for a clone's WAL stream and a spare), `wal_keep_size = 1GB` — on PostgreSQL 12
//!   `wal_keep_segments = 64`, the setting it replaced in 13 (the guide names only `wal_keep_segments`,
//!   which 13 and later refuse) — `hot_standby = on`, `wal_log_hints = on` (so a failed primary can be
//!   rewound with pg_rewind; not needed with data checksums), and `max_replication_slots` for `--slot`s.
//! - The replication role (`REPLICATION LOGIN`, nothing more), its password set as a verifier computed here.
//! - One `host replication ROLE ADDR` rule per standby (`hostssl` when the server has ssl on), with the
//!   method the server stores passwords for.
//! - A physical slot per `--slot`.
//!
//! Files are written as one checked change (the server judges them before they stay) and reloaded; the
//! settings that need a restart are named, and restarted only when asked.

use std::collections::BTreeSet;

use qrd_conf::hba::{AddOutcome, Address, ConnType, Method, Placement, rule_from_words};
use qrd_conf::pgconf::{PlanOptions, plan_settings};
use qrd_conf::write::FileEdit;
use qrd_pg::password::verifier::Encryption;
use qrd_pg::serverconf;
use qrd_pg::template::{Template, Vars};
use qrd_pg::{Secret, sql_template};
use qrd_server::{CheckedWrite, FileKind, LocalServer, WriteOptions};

use crate::error::ReplicaError;

const ROLE: Template = sql_template!("replica/role.sql");
const CREATE_ROLE: Template = sql_template!("replica/create_role.sql");
const ALTER_ROLE: Template = sql_template!("replica/alter_role.sql");
const SLOTS: Template = sql_template!("replica/slots.sql");
const CREATE_SLOT: Template = sql_template!("replica/create_slot.sql");

/// The role standbys connect as, unless `--replicator` names another.
pub const DEFAULT_REPLICATOR: &str = "replicator";

/// How much WAL the primary keeps for standbys that fall behind (without a slot): 1 GB.
const WAL_KEEP_MB: i64 = 1024;

#[derive(Debug, Clone)]
pub struct PrepareRequest {
    /// Standby addresses, `ADDR` or `ADDR/PREFIX`.
    pub standbys: Vec<String>,
    pub replicator: String,
    /// The replicator's password; required when the role is created, set again only when it differs.
    pub password: Option<Secret>,
    /// Physical replication slots to create (one per standby, by name).
    pub slots: Vec<String>,
}

/// One setting qrd changes: what the server has, what it gets.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SettingChange {
    pub name: String,
    pub from: String,
    pub to: String,
    /// The server must restart for it (`postmaster` context).
    pub restart: bool,
}

/// What the role gets.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleAction {
    Create,
    /// It exists without LOGIN or REPLICATION.
    Grant,
    None,
}

/// What prepare-primary would do.
#[derive(Debug, serde::Serialize)]
pub struct PreparePlan {
    pub major: u32,
    pub settings: Vec<SettingChange>,
    pub role: String,
    pub role_action: RoleAction,
    /// The password is set (a new role, or one whose stored verifier does not match it).
    pub set_password: bool,
    pub hba_rules: Vec<String>,
    pub slots: Vec<String>,
    #[serde(skip)]
    pub edits: Vec<(FileEdit, FileKind)>,
    #[serde(skip)]
    encryption: Encryption,
}

impl PreparePlan {
    pub fn is_empty(&self) -> bool {
        self.settings.is_empty()
            && self.role_action == RoleAction::None
            && !self.set_password
            && self.hba_rules.is_empty()
            && self.slots.is_empty()
    }

    /// Unified diffs of the file edits.
    pub fn diffs(&self) -> Vec<String> {
        self.edits.iter().map(|(e, _)| e.diff()).collect()
    }

    /// The SQL it would run, the password shown as a placeholder.
    pub fn statements(&self) -> Vec<String> {
        let mut out = Vec::new();
        let role = Vars::new().set("role", self.role.as_str());
        match self.role_action {
            RoleAction::Create => out.extend(CREATE_ROLE.render_statements(&role).unwrap_or_default()),
            RoleAction::Grant => out.extend(ALTER_ROLE.render_statements(&role).unwrap_or_default()),
            RoleAction::None => {}
        }
        if self.set_password {
            out.push(format!(
                "ALTER ROLE {} PASSWORD '<{} verifier computed by qrd>';",
                qrd_pg::quote::ident(&self.role).unwrap_or_default(),
                self.encryption.hash_type().as_str()
            ));
        }
        for slot in &self.slots {
            out.extend(CREATE_SLOT.render_statements(&Vars::new().set("slot", slot.as_str())).unwrap_or_default());
        }
        out
    }
}

/// The outcome.
#[derive(Debug, serde::Serialize)]
pub struct Prepared {
    pub plan: PreparePlan,
    /// Settings written that wait for a restart (empty after `--restart`).
    pub restart_pending: Vec<String>,
    pub restarted: bool,
}

/// The settings prepare-primary reads on a primary of PostgreSQL `major`: on 12 `wal_keep_segments`, which
/// 13 replaced by `wal_keep_size` (and refuses).
pub fn setting_names(major: u32) -> Vec<String> {
    [
        "wal_level",
        "max_wal_senders",
        if major >= 13 { "wal_keep_size" } else { "wal_keep_segments" },
        "hot_standby",
        "wal_log_hints",
        "data_checksums",
        "max_replication_slots",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The settings a primary of PostgreSQL `major` needs for `standbys` standbys and `slots` slots, given what
/// it has now (`now(name)`: pg_settings' `setting`, in the setting's own unit — MB for wal_keep_size,
/// segments for wal_keep_segments): only those that fall short, so a second run wants nothing.
pub fn wanted_settings(
    major: u32,
    now: &dyn Fn(&str) -> String,
    standbys: usize,
    slots: usize,
) -> Vec<(String, String)> {
    let int = |name: &str| now(name).parse::<i64>().unwrap_or(0);
    let mut wanted: Vec<(String, String)> = Vec::new();
    // `logical` includes what `replica` writes.
    if now("wal_level") == "minimal" {
        wanted.push(("wal_level".into(), "replica".into()));
    }
    let senders = standbys as i64 + 2;
    if int("max_wal_senders") < senders {
        wanted.push(("max_wal_senders".into(), senders.to_string()));
    }
    // The guide names wal_keep_segments only; 13 and later refuse it ("unrecognized configuration
    // parameter") and keep wal_keep_size instead. 64 segments of the default 16 MB are the same 1 GB.
    if major >= 13 {
        if int("wal_keep_size") < WAL_KEEP_MB {
            wanted.push(("wal_keep_size".into(), format!("{WAL_KEEP_MB}MB")));
        }
    } else if int("wal_keep_segments") < WAL_KEEP_MB / 16 {
        wanted.push(("wal_keep_segments".into(), (WAL_KEEP_MB / 16).to_string()));
    }
    if now("hot_standby") != "on" {
        wanted.push(("hot_standby".into(), "on".into()));
    }
    // pg_rewind needs hint bits WAL-logged; data checksums do that already.
    if now("wal_log_hints") != "on" && now("data_checksums") != "on" {
        wanted.push(("wal_log_hints".into(), "on".into()));
    }
    let slots_needed = slots as i64 + 2;
    if slots > 0 && int("max_replication_slots") < slots_needed {
        wanted.push(("max_replication_slots".into(), slots_needed.to_string()));
    }
    wanted
}

/// Plans prepare-primary on `server` (see the module documentation). Changes nothing.
pub async fn plan(server: &LocalServer, req: &PrepareRequest) -> Result<PreparePlan, ReplicaError> {
    let session = &server.session;
    let major = server.facts.major;
    if req.standbys.is_empty() {
        return Err(ReplicaError::NoStandby);
    }

    // Settings: only what falls short.
    let names = setting_names(major);
    let rows = serverconf::settings(session, &names).await?;
    let now = |name: &str| rows.iter().find(|r| r.name == name).map(|r| r.setting.clone()).unwrap_or_default();
    let wanted = wanted_settings(major, &now, req.standbys.len(), req.slots.len());
    let settings: Vec<SettingChange> = wanted
        .iter()
        .map(|(name, to)| SettingChange {
            name: name.clone(),
            from: now(name),
            to: to.clone(),
            restart: rows.iter().any(|r| &r.name == name && r.context == "postmaster"),
        })
        .collect();
    let mut edits: Vec<(FileEdit, FileKind)> = Vec::new();
    if !wanted.is_empty() {
        let tree = server.conf_tree()?;
        for e in plan_settings(&tree, &wanted, PlanOptions { skip_effective: false })?.edits {
            if e.is_change() {
                edits.push((e, FileKind::Conf));
            }
        }
    }

    // The role.
    let role_row = session
        .client()
        .query_opt(ROLE.text, &[&req.replicator])
        .await
        .map_err(|e| qrd_pg::inventory::QueryError::query(ROLE.name, &session.target().dbname, &e))?;
    let role_action = match &role_row {
        None => RoleAction::Create,
        Some(r) if !r.get::<_, bool>("login") || !r.get::<_, bool>("replication") => RoleAction::Grant,
        Some(_) => RoleAction::None,
    };
    let encryption = Encryption::from_setting(&server.facts.password_encryption);
    let set_password = match (&req.password, &role_action) {
        (None, RoleAction::Create) => return Err(ReplicaError::PasswordNeeded { role: req.replicator.clone() }),
        (None, _) => false,
        (Some(_), RoleAction::Create) => true,
        (Some(pw), _) => {
            let hashes = qrd_pg::password::stored::role_hashes(session, std::slice::from_ref(&req.replicator)).await?;
            !hashes.first().is_some_and(|h| h.matches(pw))
        }
    };

    // pg_hba.conf: one replication rule per standby.
    let hba = server.hba()?;
    let mut file = hba.file.clone();
    let method = if encryption == Encryption::Md5 { Method::Md5 } else { Method::ScramSha256 };
    let conn_type = if server.facts.ssl { ConnType::HostSsl } else { ConnType::Host };
    let mut hba_rules = Vec::new();
    for standby in &req.standbys {
        let address = Address::parse_node(standby)
            .map_err(|e| ReplicaError::Address { given: standby.clone(), message: e.to_string() })?;
        let record = rule_from_words(
            conn_type,
            &["replication".to_owned()],
            std::slice::from_ref(&req.replicator),
            Some(&address.to_string()),
            method,
            &[],
        )
        .map_err(|e| ReplicaError::Address { given: standby.clone(), message: e.to_string() })?;
        match file.add_rule(&record, Placement::Default) {
            Ok(AddOutcome::Added { .. }) => hba_rules.push(record.to_string()),
            Ok(AddOutcome::Present { line }) => {
                tracing::info!("{}:{line} already lets {standby} replicate", hba.path.display());
            }
            Err(e) => return Err(ReplicaError::Hba { path: hba.path.clone(), message: e.to_string() }),
        }
    }
    if !hba_rules.is_empty() {
        edits.push((FileEdit::new(&hba.path, hba.text.clone(), file.render()), FileKind::Hba));
    }

    // Slots.
    let existing: BTreeSet<String> = session
        .client()
        .query(SLOTS.text, &[])
        .await
        .map_err(|e| qrd_pg::inventory::QueryError::query(SLOTS.name, &session.target().dbname, &e))?
        .iter()
        .map(|r| r.get("name"))
        .collect();
    let slots = req.slots.iter().filter(|s| !existing.contains(*s)).cloned().collect();

    Ok(PreparePlan {
        major,
        settings,
        role: req.replicator.clone(),
        role_action,
        set_password,
        hba_rules,
        slots,
        edits,
        encryption,
    })
}

/// Applies `plan`: the role and its password, the slots, then the files as one checked change with one
/// reload; restarts for the settings that need it only with `restart` (pg_ctl's directory finder).
pub async fn apply(
    server: &LocalServer,
    plan: PreparePlan,
    password: Option<&Secret>,
    restart: Option<&qrd_pgbin::Finder>,
) -> Result<Prepared, ReplicaError> {
    let session = &server.session;
    let run = |t: &'static Template, vars: Vars| async move {
        for s in t.render_statements(&vars).map_err(|e| ReplicaError::Internal(e.to_string()))? {
            session
                .client()
                .batch_execute(&s)
                .await
                .map_err(|e| qrd_pg::inventory::QueryError::query(t.name, &session.target().dbname, &e))?;
        }
        Ok::<_, ReplicaError>(())
    };
    match plan.role_action {
        RoleAction::Create => run(&CREATE_ROLE, Vars::new().set("role", plan.role.as_str())).await?,
        RoleAction::Grant => run(&ALTER_ROLE, Vars::new().set("role", plan.role.as_str())).await?,
        RoleAction::None => {}
    }
    if plan.role_action != RoleAction::None {
        tracing::info!("role {:?}: LOGIN REPLICATION", plan.role);
    }
    if plan.set_password {
        let pw = password.ok_or_else(|| ReplicaError::PasswordNeeded { role: plan.role.clone() })?;
        qrd_pg::password::stored::set_password(session, &plan.role, pw, plan.encryption).await?;
        tracing::info!(
            "role {:?}: password set ({} verifier computed here)",
            plan.role,
            plan.encryption.hash_type().as_str()
        );
    }
    for slot in &plan.slots {
        run(&CREATE_SLOT, Vars::new().set("slot", slot.as_str())).await?;
        tracing::info!("physical replication slot {slot:?} created");
    }
    let mut change = CheckedWrite::new();
    for (e, kind) in &plan.edits {
        change.add(e.clone(), *kind);
    }
    let written = if plan.edits.is_empty() {
        None
    } else {
        Some(change.apply(Some(session), WriteOptions { dry_run: false, reload: true }).await?)
    };
    let names: Vec<String> = plan.settings.iter().map(|s| s.name.clone()).collect();
    let mut restart_pending = serverconf::restart_owed(session, &names).await?;
    let mut restarted = false;
    if let (Some(finder), false) = (restart, restart_pending.is_empty()) {
        let applied = written.as_ref().map(|w| w.applied.clone()).unwrap_or_default();
        qrd_server::settings::finish(session, &names, &applied, Some((&server.data_dir, finder))).await?;
        restart_pending.clear();
        restarted = true;
    } else if !restart_pending.is_empty() {
        tracing::info!(
            "restart needed for: {} (pass --restart, or restart the PostgreSQL service)",
            restart_pending.join(", ")
        );
    }
    Ok(Prepared { plan, restart_pending, restarted })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// initdb's defaults of each major (pg_settings' `setting`).
    fn defaults(major: u32) -> impl Fn(&str) -> String {
        move |name: &str| {
            match name {
                "wal_level" => "replica",
                "max_wal_senders" | "max_replication_slots" => "10",
                "wal_keep_segments" if major < 13 => "0",
                "wal_keep_size" if major >= 13 => "0",
                "hot_standby" => "on",
                "wal_log_hints" | "data_checksums" => "off",
                _ => "",
            }
            .to_owned()
        }
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// 12 keeps WAL for standbys with wal_keep_segments, the guide's setting.
    #[test]
    fn twelve_keeps_wal_by_segments() {
        assert!(setting_names(12).contains(&"wal_keep_segments".to_owned()));
        assert!(!setting_names(12).contains(&"wal_keep_size".to_owned()));
        assert_eq!(
            wanted_settings(12, &defaults(12), 1, 0),
            pairs(&[("wal_keep_segments", "64"), ("wal_log_hints", "on")])
        );
    }

    /// 13 and later refuse wal_keep_segments: wal_keep_size, the same 1 GB.
    #[test]
    fn thirteen_and_later_keep_wal_by_size() {
        for major in 13..=16 {
            assert!(!setting_names(major).contains(&"wal_keep_segments".to_owned()), "{major}");
            assert_eq!(
                wanted_settings(major, &defaults(major), 1, 0),
                pairs(&[("wal_keep_size", "1024MB"), ("wal_log_hints", "on")]),
                "{major}"
            );
        }
    }

    /// Once applied, a second run wants nothing.
    #[test]
    fn a_prepared_primary_wants_nothing() {
        for major in [12, 16] {
            let now = |name: &str| match name {
                "wal_keep_segments" => "64".to_owned(),
                "wal_keep_size" => "1024".to_owned(),
                "wal_log_hints" => "on".to_owned(),
                other => defaults(major)(other),
            };
            assert_eq!(wanted_settings(major, &now, 1, 1), [], "{major}");
        }
    }

    #[test]
    fn minimal_wal_more_standbys_and_slots_are_raised() {
        let now = |name: &str| match name {
            "wal_level" => "minimal".to_owned(),
            "max_wal_senders" => "0".to_owned(),
            "max_replication_slots" => "2".to_owned(),
            "data_checksums" => "on".to_owned(),
            other => defaults(15)(other),
        };
        assert_eq!(
            wanted_settings(15, &now, 3, 2),
            pairs(&[
                ("wal_level", "replica"),
                ("max_wal_senders", "5"),
                ("wal_keep_size", "1024MB"),
                ("max_replication_slots", "4"),
            ])
        );
        // `logical` already writes what a standby needs.
        let logical = |name: &str| if name == "wal_level" { "logical".to_owned() } else { defaults(15)(name) };
        assert!(!wanted_settings(15, &logical, 1, 0).iter().any(|(k, _)| k == "wal_level"));
    }
}
