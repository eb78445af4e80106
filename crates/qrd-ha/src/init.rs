//! `qrd ha init`: the cluster's files, planned against what is already there (so a second run changes
//! nothing and `--dry-run` shows each diff), then written atomically with their owner and mode, a changed
//! file's previous content kept beside it.
//!
//! Where they go: `--out DIR` stages every machine's files under `DIR/<machine>/<path on that machine>`
//! (copy each tree onto its machine's `/`); `--install` writes them at their paths on this machine (a lab
//! with `--prefix`, or one member's files with `--only`).

use std::path::{Path, PathBuf};

use qrd_conf::write::{FileEdit, Perms};
use qrd_pg::password::Secret;
use qrd_pg::password::verifier::{self, Encryption};
use serde::Serialize;

use crate::HaError;
use crate::envfile::{EnvFile, GivenSecrets, SecretOrigins, Secrets};
use crate::render::{self, File, Inputs, TlsMaterial};
use crate::spec::{ClusterSpec, Tls};

/// Where the files go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Staging(PathBuf),
    Install,
}

pub struct InitRequest {
    pub spec: ClusterSpec,
    pub secrets: GivenSecrets,
    /// The repository role's password (its verifier goes into the bootstrap script).
    pub repo_password: Secret,
    pub destination: Destination,
    /// Only these machines' files (member names, `etcd-<name>`, `haproxy`); all when empty.
    pub only: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Unchanged,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedFile {
    #[serde(flatten)]
    pub file: File,
    /// Where it is written (its path, or its place in the staging directory).
    pub dest: PathBuf,
    pub action: Action,
    /// The unified diff; `None` for secret files and unchanged ones.
    pub diff: Option<String>,
}

impl PlannedFile {
    /// What `--dry-run` shows of it: its diff, a line for a secret file (never its content), nothing when
    /// it is unchanged.
    pub fn preview(&self) -> Option<String> {
        match (&self.action, &self.diff) {
            (Action::Unchanged, _) => None,
            (_, Some(d)) => Some(d.clone()),
            (action, None) => Some(format!(
                "{action:?} {} (secret, {} bytes: not shown)\n",
                self.dest.display(),
                self.file.contents.len()
            )),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub files: Vec<PlannedFile>,
    pub secrets: SecretOrigins,
    /// What the DBA should know before going on (certificate names, etcd count …).
    pub warnings: Vec<String>,
    /// The host and port the Qlik nodes' connection strings and appsettings.json name.
    pub endpoint: String,
    /// The service user's uid and gid the files get (when it exists here and we may give files away).
    #[serde(skip)]
    owner: Option<(u32, u32)>,
    /// Other users files are given to (etcd's key), with their uid and gid.
    #[serde(skip)]
    users: Vec<(String, u32, u32)>,
    /// Directories to make for the lab layout (owned by the service user).
    #[serde(skip)]
    dirs: Vec<PathBuf>,
}

impl Plan {
    pub fn changes(&self) -> usize {
        self.files.iter().filter(|f| f.action != Action::Unchanged).count()
    }

    /// The endpoint's host (what `qrd check -h` names).
    pub fn endpoint_host(&self) -> String {
        qrd_pg::HostPort::parse(&self.endpoint).map(|e| e.host).unwrap_or_else(|_| self.endpoint.clone())
    }
}

/// What `qrd ha init` did: the plan and the files written.
#[derive(Debug, Clone, Serialize)]
pub struct InitReport {
    pub plan: Plan,
    pub written: Vec<Written>,
}

fn dest_of(destination: &Destination, machine: &str, path: &Path) -> PathBuf {
    match destination {
        Destination::Install => path.to_owned(),
        Destination::Staging(dir) => dir.join(machine).join(path.strip_prefix("/").unwrap_or(path)),
    }
}

/// Plans the files; reads what exists (secrets and a matching verifier or certificate are kept, so a second
/// run changes nothing) but writes nothing.
pub fn plan(req: &InitRequest) -> Result<Plan, HaError> {
    let spec = &req.spec;
    spec.validate()?;
    let mut warnings = Vec::new();
    let first = &spec.members[0];
    let paths = spec.member_paths(first);
    let dest = |machine: &str, p: &Path| dest_of(&req.destination, machine, p);

    // Secrets: given, else kept from the first member's env file, else generated.
    let existing_env = EnvFile::read(&dest(&first.name, &paths.env))?;
    let (secrets, origins) = Secrets::resolve(req.secrets.clone(), existing_env.as_ref())?;

    // The repository verifier: the existing script's when it still matches the password (a new salt would
    // change the file on every run).
    let old_sql = std::fs::read_to_string(dest(&first.name, &paths.bootstrap_sql)).ok();
    let kept =
        old_sql.as_deref().and_then(existing_verifier).filter(|v| verifier::matches(v, &req.repo_password, &spec.role));
    let repo_verifier =
        Secret::new(kept.unwrap_or_else(|| verifier::compute(Encryption::ScramSha256, &req.repo_password, &spec.role)));

    let old = [&paths.tls_cert, &paths.tls_key, &paths.tls_ca].map(|p| dest(&first.name, p));
    let tls = tls_material(spec, &old, &mut warnings)?;
    let files = render::render(spec, &Inputs { secrets: &secrets, repo_verifier: &repo_verifier, tls: tls.as_ref() })?;

    if spec.etcd.len() < 3 {
        warnings.push(format!(
            "{} etcd member(s): etcd is a single point of failure (failsafe_mode keeps the leader writing while it \
             reaches every member); production wants three, on three machines",
            spec.etcd.len()
        ));
    }
    if spec.members.len() < 2 {
        warnings.push("one member cannot fail over: add --member for at least one replica".into());
    }
    if spec.nodes.is_empty() {
        warnings.push(
            "no --node: only HAProxy's address is admitted for the repository role; the Qlik nodes connect \
             through it"
                .into(),
        );
    }

    let owner = service_owner(&spec.service_user, &mut warnings);
    let mut users = Vec::new();
    for name in files.iter().filter_map(|f| f.user.as_deref()) {
        if !users.iter().any(|(n, _, _)| n == name)
            && let Some((uid, gid)) = service_owner(name, &mut warnings)
        {
            users.push((name.to_owned(), uid, gid));
        }
    }
    let mut planned = Vec::new();
    for file in files {
        if !req.only.is_empty() && !req.only.contains(&file.machine) {
            continue;
        }
        let dest = dest(&file.machine, &file.path);
        let before = match std::fs::read(&dest) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(HaError::io("read", &dest, e)),
        };
        let action = match &before {
            None => Action::Create,
            Some(b) if *b == file.contents => Action::Unchanged,
            Some(_) => Action::Update,
        };
        let diff = (action != Action::Unchanged && !file.secret).then(|| {
            let old = before.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
            FileEdit::new(&dest, old.into_owned(), String::from_utf8_lossy(&file.contents).into_owned()).diff()
        });
        planned.push(PlannedFile { file, dest, action, diff });
    }
    // The lab layout's per-member directories, where Patroni makes the data directory and the socket lives.
    let mut dirs = Vec::new();
    if spec.prefix.is_some() && req.destination == Destination::Install {
        for m in &spec.members {
            if req.only.is_empty() || req.only.contains(&m.name) {
                let p = spec.member_paths(m);
                dirs.extend([p.data_dir.parent().expect("under the prefix").to_owned(), p.socket_dir]);
            }
        }
    }
    Ok(Plan {
        files: planned,
        secrets: origins,
        warnings,
        endpoint: qrd_pg::HostPort { host: spec.endpoint.0.clone(), port: Some(spec.endpoint.1) }.to_string(),
        owner,
        users,
        dirs,
    })
}

/// The `\set verifier '…'` of an earlier bootstrap script.
fn existing_verifier(sql: &str) -> Option<String> {
    let line = sql.lines().find(|l| l.starts_with(&format!("\\set {} '", qrd_pg::provision::VERIFIER_VAR)))?;
    let start = line.find('\'')? + 1;
    let end = line.rfind('\'')?;
    (end > start).then(|| line[start..end].to_owned())
}

/// The certificate every member and etcd presents: the given files (checked to name every member, the
/// etcd members and the endpoint), or a lab CA and certificate, kept from an earlier run while it still
/// fits.
fn tls_material(
    spec: &ClusterSpec,
    old: &[PathBuf; 3],
    warnings: &mut Vec<String>,
) -> Result<Option<TlsMaterial>, HaError> {
    let [old_cert, old_key, old_ca] = old;
    let mut names: Vec<String> = spec.members.iter().map(|m| m.host.clone()).collect();
    names.extend(spec.etcd.iter().map(|e| e.host.clone()));
    names.push(spec.endpoint.0.clone());
    if let Some(vip) = &spec.vip {
        names.push(vip.address.split('/').next().unwrap_or_default().to_owned());
    }
    let mut seen = Vec::new();
    names.retain(|n| {
        !seen.contains(n) && {
            seen.push(n.clone());
            true
        }
    });
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| HaError::io("read", p, e));
    let covers = |pem: &str| -> Result<Vec<String>, HaError> {
        let certs = qrd_cert::parse_certs(pem.as_bytes())?;
        let leaf = certs
            .first()
            .ok_or_else(|| HaError::Spec { reason: "the certificate file holds no certificate".into() })?;
        Ok(names.iter().filter(|n| !leaf.covers_host(n)).cloned().collect())
    };
    match &spec.tls {
        Tls::Off => {
            warnings.push(
                "TLS is off: the Qlik nodes' repository password, and the REST API password of every switchover \
                 or restart, would cross the network in the clear"
                    .into(),
            );
            Ok(None)
        }
        Tls::Files { cert, key, ca } => {
            let cert_pem = read(cert)?;
            let key_pem = Secret::new(read(key)?);
            let info = qrd_cert::parse_certs(cert_pem.as_bytes())?;
            let k = qrd_cert::parse_key(key_pem.expose().as_bytes())?;
            if let Some(leaf) = info.first() {
                qrd_cert::check_key_matches(leaf, &k)
                    .map_err(|e| HaError::Spec { reason: format!("{}: {e}", key.display()) })?;
            }
            let missing = covers(&cert_pem)?;
            if !missing.is_empty() {
                warnings.push(format!(
                    "{} does not name {}: Patroni (to etcd and to the other members' REST API) and clients that \
                     verify the host name (sslmode=verify-full) will refuse those",
                    cert.display(),
                    missing.join(", ")
                ));
            }
            let ca_pem = read(ca)?;
            // The leaf's issuer: in the CA file, or an intermediate in the certificate file itself.
            let issuers: Vec<qrd_cert::CertInfo> =
                qrd_cert::parse_certs(ca_pem.as_bytes())?.into_iter().chain(info.iter().skip(1).cloned()).collect();
            if info.first().is_some_and(|leaf| !issuers.iter().any(|i| leaf.signed_by(i))) {
                warnings.push(format!(
                    "{} did not sign {}: Patroni and HAProxy will refuse the members' REST API and etcd",
                    ca.display(),
                    cert.display()
                ));
            }
            Ok(Some(TlsMaterial { cert_pem, key_pem, ca_pem: Some(ca_pem) }))
        }
        Tls::Generate => {
            // Keep the earlier lab certificate while it names everyone and has a month left.
            if let (Ok(cert_pem), Ok(key_pem)) = (std::fs::read_to_string(old_cert), std::fs::read_to_string(old_key)) {
                let fits = covers(&cert_pem).is_ok_and(|m| m.is_empty())
                    && qrd_cert::parse_certs(cert_pem.as_bytes())
                        .ok()
                        .and_then(|c| c.first().map(|c| c.days_left(qrd_cert::now()) > 30))
                        .unwrap_or(false);
                if let (true, Ok(ca_pem)) = (fits, std::fs::read_to_string(old_ca)) {
                    return Ok(Some(TlsMaterial { cert_pem, key_pem: Secret::new(key_pem), ca_pem: Some(ca_pem) }));
                }
            }
            // localhost and 127.0.0.1: etcd and PostgreSQL listen there too, for the tools on each machine.
            let mut hosts = names.clone();
            hosts.extend(["localhost".into(), "127.0.0.1".into()]);
            let lab = qrd_cert::generate_lab(&hosts, 825)?;
            warnings.push(
                "the certificate is a lab certificate (its own CA): for production pass --tls-cert/--tls-key from your CA".into(),
            );
            Ok(Some(TlsMaterial {
                cert_pem: lab.cert_pem.clone(),
                key_pem: Secret::new(lab.key_pem().to_owned()),
                ca_pem: Some(lab.ca_pem.clone()),
            }))
        }
    }
}

/// The service user's uid and gid, when files can be given to it (we are root and it exists here).
fn service_owner(user: &str, warnings: &mut Vec<String>) -> Option<(u32, u32)> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    match nix::unistd::User::from_name(user) {
        Ok(Some(u)) => Some((u.uid.as_raw(), u.gid.as_raw())),
        _ => {
            warnings.push(format!(
                "there is no OS user {user:?} here: the files stay owned by root; give them to it where they go"
            ));
            None
        }
    }
}

/// What `apply` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Written {
    pub path: PathBuf,
    pub action: Action,
    /// The previous content, kept beside it.
    pub backup: Option<PathBuf>,
}

/// Writes the planned files that change (atomic, mode, owner, a backup of the previous content).
pub fn apply(plan: &Plan) -> Result<Vec<Written>, HaError> {
    let (uid, gid) = plan.owner.unwrap_or_else(|| (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw()));
    for d in &plan.dirs {
        make_dir(d, uid, gid)?;
    }
    let mut done = Vec::new();
    for f in &plan.files {
        if f.action == Action::Unchanged {
            continue;
        }
        if let Some(parent) = f.dest.parent()
            && !parent.exists()
        {
            make_dir(parent, uid, gid)?;
        }
        let named = f.file.user.as_ref().and_then(|n| plan.users.iter().find(|(u, _, _)| u == n));
        let (u, g) = match named {
            Some((_, u, g)) => (*u, *g),
            None if f.file.root_owned || f.file.user.is_some() => (0, 0),
            None => (uid, gid),
        };
        let (u, g) = if nix::unistd::geteuid().is_root() {
            (u, g)
        } else {
            (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw())
        };
        let installed =
            qrd_conf::write::install(&f.dest, &f.file.contents, Perms { mode: f.file.mode, uid: u, gid: g })?;
        done.push(Written { path: f.dest.clone(), action: f.action, backup: installed.backup });
    }
    Ok(done)
}

fn make_dir(d: &Path, uid: u32, gid: u32) -> Result<(), HaError> {
    std::fs::create_dir_all(d).map_err(|e| HaError::io("create the directory", d, e))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o750))
        .map_err(|e| HaError::io("set the mode of", d, e))?;
    if nix::unistd::geteuid().is_root() {
        nix::unistd::chown(d, Some(uid.into()), Some(gid.into()))
            .map_err(|e| HaError::io("give to the service user", d, std::io::Error::from(e)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::tests::lab;

    fn request(dir: &Path) -> InitRequest {
        InitRequest {
            spec: lab(),
            secrets: GivenSecrets::default(),
            repo_password: Secret::new("Repo-pw".to_string()),
            destination: Destination::Staging(dir.to_owned()),
            only: Vec::new(),
        }
    }

    #[test]
    fn a_second_run_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let req = request(dir.path());
        let first = plan(&req).unwrap();
        assert!(first.files.iter().all(|f| f.action == Action::Create));
        apply(&first).unwrap();
        let env = dir.path().join("pg2/etc/patroni/15-qlik-repository.env");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&env).unwrap().permissions().mode() & 0o777, 0o600);
        let second = plan(&req).unwrap();
        let changed: Vec<_> = second.files.iter().filter(|f| f.action != Action::Unchanged).map(|f| &f.dest).collect();
        assert!(changed.is_empty(), "{changed:?}");
        assert_eq!(second.secrets.superuser, "kept from the existing env file");

        // A new repository password: only the bootstrap scripts change, and their diff is never shown.
        let mut req = request(dir.path());
        req.repo_password = Secret::new("Other-pw".to_string());
        let third = plan(&req).unwrap();
        let changed: Vec<_> = third.files.iter().filter(|f| f.action != Action::Unchanged).collect();
        assert_eq!(changed.len(), 3, "{:?}", changed.iter().map(|f| &f.dest).collect::<Vec<_>>());
        assert!(changed.iter().all(|f| f.diff.is_none() && f.file.secret));
    }

    #[test]
    fn bootstrap_sql_provisions_like_qrd_provision() {
        let dir = tempfile::tempdir().unwrap();
        let p = plan(&request(dir.path())).unwrap();
        let sql = p.files.iter().find(|f| f.file.path.ends_with("15-qlik-repository-qrd-bootstrap.sql")).unwrap();
        let text = String::from_utf8_lossy(&sql.file.contents);
        assert!(text.contains("\\set ON_ERROR_STOP on"));
        assert!(text.contains("CREATE DATABASE \"SenseServices\""), "{text}");
        assert!(text.contains("GRANT ALL ON SCHEMA public TO"), "{text}");
        assert!(existing_verifier(&text).unwrap().starts_with("SCRAM-SHA-256$4096:"));
        assert!(!text.contains("Repo-pw"));
    }
}
