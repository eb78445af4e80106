//! A Patroni lab on loopback: one etcd, N Patroni members and HAProxy, each on its own loopback address of
//! a private `127.A.B.0/24` block (so every lab has its own ports 4432, 8008, 2379 … and pg_hba rules name
//! real, distinct addresses), their files in one temp dir written by `qrd ha init --install --prefix`.
//!
//! The lab runs the processes; it does not write their configuration: that is the product's job, and
//! the tests run `qrd ha init` with [`HaLab::init_args`] (a lab certificate: PostgreSQL, Patroni's REST
//! API and etcd speak TLS, verified against the lab's CA). Every process is stopped by PID and waited for
//! (Patroni first, so it stops its PostgreSQL cleanly; then HAProxy and etcd) before the directory is
//! removed; when a test panics, the end of each log is printed.

use std::convert::Infallible;
use std::fs::File;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use qrd_pgbin::{Check, Identity, WaitError, poll_until_blocking};

use crate::HarnessError;
use crate::server::tail;
use crate::user::{Entry, server_user};

/// Patroni's timing in the lab: a crashed leader is replaced within 20 s.
pub const LAB_TTL: u32 = 20;
pub const LAB_LOOP_WAIT: u32 = 5;
pub const LAB_RETRY_TIMEOUT: u32 = 5;

struct Proc {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Proc {
    fn pid(&self) -> Option<Pid> {
        self.child.as_ref().map(|c| Pid::from_raw(c.id() as i32))
    }

    /// SIGTERM, then wait up to `grace`; SIGKILL after that.
    fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else { return };
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let exited = poll_until_blocking(Instant::now() + grace, &format!("{} exits", self.name), || {
            Ok::<_, std::io::Error>(if child.try_wait()?.is_some() { Check::Done(()) } else { Check::pending() })
        });
        if let Err(WaitError::TimedOut(_)) = exited {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A Patroni + etcd + HAProxy lab. See the module documentation.
pub struct HaLab {
    major: u32,
    net: [u8; 2],
    names: Vec<String>,
    bin_dir: PathBuf,
    ids: Option<Identity>,
    members: Vec<Proc>,
    etcd: Proc,
    haproxy: Proc,
    dir: Option<tempfile::TempDir>,
}

impl HaLab {
    /// A lab for `members` members of PostgreSQL `major` (nothing runs yet).
    pub fn new(major: u32, members: usize) -> Result<HaLab, HarnessError> {
        for tool in ["patroni", "etcd", "haproxy"] {
            if !Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
            {
                return Err(HarnessError::Unsupported {
                    action: format!("find {tool}"),
                    reason: "the HA tests need Debian's patroni, etcd-server and haproxy: run `cargo make pg-install` \
                             (testcontainers/install-postgres.sh installs them)"
                        .into(),
                });
            }
        }
        let ids = server_user()?;
        let bin_dir = patroni_bin_dir(major)?;
        let dir = tempfile::Builder::new()
            .prefix("qrd-ha-")
            .tempdir_in("/tmp")
            .map_err(|e| HarnessError::io("create a temp dir in", "/tmp", e))?;
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .map_err(|e| HarnessError::io("set the mode of", dir.path(), e))?;
        let net = free_block()?;
        let names: Vec<String> = (1..=members).map(|i| format!("pg{i}")).collect();
        let proc = |name: &str, log: PathBuf| Proc { name: name.to_owned(), child: None, log };
        Ok(HaLab {
            major,
            net,
            members: names.iter().map(|n| proc(n, dir.path().join(format!("{n}.log")))).collect(),
            etcd: proc("etcd", dir.path().join("etcd.log")),
            haproxy: proc("haproxy", dir.path().join("haproxy.log")),
            names,
            bin_dir,
            ids,
            dir: Some(dir),
        })
    }

    pub fn prefix(&self) -> &Path {
        self.dir.as_ref().expect("alive").path()
    }

    pub fn major(&self) -> u32 {
        self.major
    }

    fn addr(&self, last: u8) -> Ipv4Addr {
        Ipv4Addr::new(127, self.net[0], self.net[1], last)
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Member `i`'s address (0-based): `127.A.B.(11 + i)`.
    pub fn member_host(&self, i: usize) -> Ipv4Addr {
        self.addr(11 + i as u8)
    }

    pub fn member_index(&self, name: &str) -> usize {
        self.names.iter().position(|n| n == name).unwrap_or_else(|| panic!("no member {name}"))
    }

    pub fn etcd_host(&self) -> Ipv4Addr {
        self.addr(2)
    }

    /// HAProxy's address: the endpoint, and the source it connects to the members from.
    pub fn endpoint_host(&self) -> Ipv4Addr {
        self.addr(3)
    }

    /// A Qlik node's address (for `--node`).
    pub fn node_host(&self) -> Ipv4Addr {
        self.addr(100)
    }

    /// The lab CA `qrd ha init --tls-generate` wrote (beside every member's certificate).
    pub fn ca(&self) -> PathBuf {
        self.prefix().join("pg1/tls/ca.crt")
    }

    /// What the lab's HTTPS servers (the REST APIs, etcd) are verified with: the lab CA.
    pub fn trust(&self) -> qrd_ha::api::Trust {
        qrd_ha::api::Trust::ca_file(&self.ca())
            .unwrap_or_else(|e| panic!("the lab CA (qrd ha init must have run with init_args): {e}"))
    }

    /// Member `i`'s REST API, `https://127.A.B.(11 + i):8008`.
    pub fn api_url(&self, i: usize) -> String {
        format!("https://{}:8008", self.member_host(i))
    }

    /// libpq's environment for a client of the endpoint (HAProxy) as `user`: TLS verified against the lab
    /// CA and the host name, a 5 s connect timeout; the password stays out of argv.
    pub fn endpoint_env(&self, user: &str, password: &str) -> Vec<(String, String)> {
        vec![
            ("PGHOST".into(), self.endpoint_host().to_string()),
            ("PGPORT".into(), "4432".into()),
            ("PGUSER".into(), user.into()),
            ("PGDATABASE".into(), "postgres".into()),
            ("PGPASSWORD".into(), password.into()),
            ("PGSSLMODE".into(), "verify-full".into()),
            ("PGSSLROOTCERT".into(), self.ca().display().to_string()),
            ("PGCONNECT_TIMEOUT".into(), "5".into()),
        ]
    }

    /// A member's patroni.yml (as `qrd ha init --prefix` writes it).
    pub fn config(&self, i: usize) -> PathBuf {
        self.prefix().join(&self.names[i]).join("patroni.yml")
    }

    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.prefix().join(&self.names[i]).join("data")
    }

    /// The arguments of `qrd ha init` for this lab (lab timing, a lab certificate, the service user).
    pub fn init_args(&self) -> Vec<String> {
        let mut a: Vec<String> = vec!["ha".into(), "init".into(), "--install".into()];
        a.extend(["--prefix".into(), self.prefix().display().to_string()]);
        a.extend(["--major".into(), self.major.to_string()]);
        a.extend(["--bin-dir".into(), self.bin_dir.display().to_string()]);
        for (i, n) in self.names.iter().enumerate() {
            a.extend(["--member".into(), format!("{n}={}", self.member_host(i))]);
        }
        a.extend(["--etcd".into(), format!("e1={}", self.etcd_host())]);
        a.extend(["--endpoint".into(), self.endpoint_host().to_string()]);
        a.extend(["--haproxy-source".into(), self.endpoint_host().to_string()]);
        a.extend(["--node".into(), self.node_host().to_string()]);
        a.extend(["--tls-generate".into()]);
        a.extend(["--ttl".into(), LAB_TTL.to_string(), "--loop-wait".into(), LAB_LOOP_WAIT.to_string()]);
        a.extend(["--retry-timeout".into(), LAB_RETRY_TIMEOUT.to_string()]);
        let user = match &self.ids {
            Some(_) => crate::SERVER_USER.to_owned(),
            None => {
                nix::unistd::User::from_uid(nix::unistd::geteuid()).ok().flatten().map(|u| u.name).unwrap_or_default()
            }
        };
        a.extend(["--service-user".into(), user]);
        a
    }

    /// `NAME=value` lines of an env file, as systemd would hand them to the service.
    fn env_of(path: &Path) -> Result<Vec<(String, String)>, HarnessError> {
        let text = std::fs::read_to_string(path).map_err(|e| HarnessError::io("read", path, e))?;
        Ok(qrd_ha::envfile::EnvFile::parse(&text).vars().to_vec())
    }

    fn spawn(proc: &mut Proc, mut cmd: Command, entry: Entry) -> Result<(), HarnessError> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&proc.log)
            .map_err(|e| HarnessError::io("open", &proc.log, e))?;
        let log2 = log.try_clone().map_err(|e| HarnessError::io("open", &proc.log, e))?;
        cmd.stdin(Stdio::null()).stdout(log).stderr(log2);
        entry.apply_to(&mut cmd);
        let child = cmd.spawn().map_err(|e| HarnessError::io(format!("start {}", proc.name), "", e))?;
        proc.child = Some(child);
        Ok(())
    }

    /// Starts etcd (again, after [`HaLab::stop_etcd`], on the same data) and waits for its `/health`.
    pub fn start_etcd(&mut self) -> Result<(), HarnessError> {
        let env = Self::env_of(&self.prefix().join("etcd-e1/etcd.env"))?;
        let mut cmd = Command::new("etcd");
        cmd.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default()).envs(env);
        Self::spawn(&mut self.etcd, cmd, Entry::default())?;
        let url = format!("https://{}:2379/health", self.etcd_host());
        let trust = self.trust();
        self.wait_for("etcd to answer /health", Duration::from_secs(30), || {
            qrd_ha::api::get(&url, &trust).ok().filter(|r| r.status == 200).map(|_| ())
        })
    }

    pub fn stop_etcd(&mut self) {
        self.etcd.stop(Duration::from_secs(10));
    }

    /// Starts member `i`'s Patroni as the server user, with its env file's variables.
    pub fn start_member(&mut self, i: usize) -> Result<(), HarnessError> {
        let dir = self.prefix().join(&self.names[i]);
        let env = Self::env_of(&dir.join("patroni.env"))?;
        let mut cmd = Command::new("patroni");
        cmd.arg(dir.join("patroni.yml")).current_dir(&dir);
        cmd.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default()).env("LANG", "C.UTF-8").envs(env);
        let entry = Entry { identity: self.ids.clone(), ..Default::default() };
        Self::spawn(&mut self.members[i], cmd, entry)
    }

    /// Starts every member, etcd first when it is not running.
    pub fn start_all(&mut self) -> Result<(), HarnessError> {
        if self.etcd.child.is_none() {
            self.start_etcd()?;
        }
        for i in 0..self.names.len() {
            self.start_member(i)?;
        }
        Ok(())
    }

    /// Stops member `i` as systemd would (SIGTERM to Patroni, which stops PostgreSQL cleanly).
    pub fn stop_member(&mut self, i: usize) {
        self.members[i].stop(Duration::from_secs(60));
        self.kill_postmaster(i);
    }

    /// A machine crash: Patroni and its PostgreSQL killed at once (SIGKILL), no clean shutdown.
    pub fn crash_member(&mut self, i: usize) {
        let postmaster = self.running_postmaster(i);
        self.members[i].kill9();
        if let Some(pid) = postmaster {
            let _ = kill(pid, Signal::SIGKILL);
            self.wait_gone(pid);
        }
    }

    /// The postmaster that runs on member `i`'s data directory now (its `postmaster.pid` names a live process).
    fn running_postmaster(&self, i: usize) -> Option<Pid> {
        qrd_server::pgctl::running_postmaster(&self.data_dir(i)).map(|pid| Pid::from_raw(pid as i32))
    }

    fn kill_postmaster(&self, i: usize) {
        if let Some(pid) = self.running_postmaster(i) {
            let _ = kill(pid, Signal::SIGQUIT);
            self.wait_gone(pid);
        }
    }

    fn wait_gone(&self, pid: Pid) {
        let _ = poll_until_blocking(Instant::now() + Duration::from_secs(10), &format!("{pid} is gone"), || {
            Ok::<_, Infallible>(if kill(pid, None).is_ok() { Check::pending() } else { Check::Done(()) })
        });
    }

    /// Starts HAProxy on the endpoint with the configuration `qrd ha init` wrote.
    pub fn start_haproxy(&mut self) -> Result<(), HarnessError> {
        let cfg = self.prefix().join("haproxy/haproxy.cfg");
        let mut cmd = Command::new("haproxy");
        cmd.arg("-f").arg(&cfg).arg("-db");
        Self::spawn(&mut self.haproxy, cmd, Entry::default())?;
        let url = format!("http://{}:7000/;csv", self.endpoint_host());
        let trust = qrd_ha::api::Trust::system();
        self.wait_for("HAProxy's statistics page", Duration::from_secs(20), || {
            qrd_ha::api::get(&url, &trust).ok().filter(|r| r.status == 200).map(|_| ())
        })
    }

    /// Polls `f` until it gives a value ([`poll_until_blocking`]); after `timeout` fails with the logs' ends.
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut() -> Option<T>,
    ) -> Result<T, HarnessError> {
        let waited = poll_until_blocking(Instant::now() + timeout, what, || {
            Ok::<_, Infallible>(f().map_or_else(Check::pending, Check::Done))
        });
        waited.map_err(|e| HarnessError::Unsupported {
            action: format!("wait for {what} ({} s)", timeout.as_secs()),
            reason: format!("it did not happen ({e})\n{}", self.logs()),
        })
    }

    /// The members' REST APIs (over HTTPS, verified against the lab CA).
    pub fn api(&self) -> qrd_ha::api::Api {
        qrd_ha::api::Api::new((0..self.names.len()).map(|i| self.api_url(i)).collect(), None, self.trust())
    }

    /// Waits for one leader and every other member running, streaming from it (in its
    /// pg_stat_replication) and not behind.
    pub fn wait_streaming(&self, timeout: Duration) -> Result<(), HarnessError> {
        let api = self.api();
        self.wait_for("a leader and streaming replicas", timeout, || {
            let c = api.cluster().ok()?;
            let streaming = api.streaming_members(&c).ok()??;
            let ok = c.members.len() == self.names.len()
                && c.members
                    .iter()
                    .filter(|m| !m.is_leader())
                    .all(|m| m.lag_bytes() == Some(0) && streaming.contains(&m.name));
            ok.then_some(())
        })
    }

    /// The end of every process's log.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for p in self.members.iter().chain([&self.etcd, &self.haproxy]) {
            let text = std::fs::read_to_string(&p.log).unwrap_or_default();
            out.push_str(&format!("===== {} ({}) =====\n{}", p.name, p.log.display(), tail(&text, 40)));
        }
        out
    }

    /// Member `i`'s whole log (Patroni's and its PostgreSQL's).
    pub fn member_log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.members[i].log).unwrap_or_default()
    }

    /// Whether member `i`'s Patroni still runs (it was not stopped or crashed).
    pub fn is_running(&self, i: usize) -> bool {
        self.members[i].pid().is_some()
    }
}

impl Drop for HaLab {
    fn drop(&mut self) {
        let keep = std::thread::panicking().then(|| {
            eprintln!("{}", self.logs());
            PathBuf::from(format!("{}-logs", self.prefix().display()))
        });
        // Replicas first, so stopping the leader last triggers no failover on the way down.
        let n = self.members.len();
        for i in 0..n {
            self.members[i].stop(Duration::from_secs(30));
        }
        for i in 0..n {
            self.kill_postmaster(i);
        }
        self.haproxy.stop(Duration::from_secs(5));
        self.etcd.stop(Duration::from_secs(5));
        // A failed test keeps every process's whole log (the excerpts above are their ends).
        if let Some(keep) = keep {
            let _ = std::fs::create_dir_all(&keep);
            for p in self.members.iter().chain([&self.etcd, &self.haproxy]) {
                let _ = std::fs::copy(&p.log, keep.join(format!("{}.log", p.name)));
            }
            eprintln!("the lab's whole logs are kept in {}", keep.display());
        }
        if let Some(dir) = self.dir.take()
            && let Err(e) = dir.close()
        {
            eprintln!("could not remove the HA lab's directory: {e}");
        }
    }
}

/// The programs Patroni runs (postgres, pg_ctl, initdb, pg_basebackup, pg_rewind, pg_controldata, psql):
/// one directory. Debian's 15 has them all; where the server and the client tools come from different
/// packages (16 here), a directory of links joins them.
fn patroni_bin_dir(major: u32) -> Result<PathBuf, HarnessError> {
    let inst = crate::installation(major)?;
    let needed = ["postgres", "pg_ctl", "initdb", "pg_basebackup", "pg_rewind", "pg_controldata", "pg_isready", "psql"];
    if needed.iter().all(|t| inst.server_bin.join(t).exists()) {
        return Ok(inst.server_bin);
    }
    // Every client program, then the server's own over them.
    let dir = PathBuf::from(format!("/tmp/qrd-patroni-bin-{major}"));
    std::fs::create_dir_all(&dir).map_err(|e| HarnessError::io("create", &dir, e))?;
    for bin in [&inst.client_bin, &inst.server_bin] {
        let entries = std::fs::read_dir(bin).map_err(|e| HarnessError::io("list", bin, e))?;
        for entry in entries.flatten() {
            let link = dir.join(entry.file_name());
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(entry.path(), &link).map_err(|e| HarnessError::io("link", &link, e))?;
        }
    }
    Ok(dir)
}

/// A `127.A.B.0/24` block whose etcd, endpoint and member ports are free: chosen at random, checked by
/// binding.
fn free_block() -> Result<[u8; 2], HarnessError> {
    let mut seed = [0u8; 2];
    for attempt in 0..50u32 {
        let mut f = File::open("/dev/urandom").map_err(|e| HarnessError::io("open", "/dev/urandom", e))?;
        std::io::Read::read_exact(&mut f, &mut seed).map_err(|e| HarnessError::io("read", "/dev/urandom", e))?;
        let net = [100 + seed[0] % 150, seed[1]];
        let free = [(2u8, 2379u16), (2, 2380), (3, 4432), (3, 7000), (11, 4432), (11, 8008), (12, 4432), (13, 4432)]
            .iter()
            .all(|(last, port)| TcpListener::bind((Ipv4Addr::new(127, net[0], net[1], *last), *port)).is_ok());
        if free {
            return Ok(net);
        }
        tracing::debug!(attempt, "127.{}.{}.0/24 is taken", net[0], net[1]);
    }
    Err(HarnessError::Unsupported { action: "find a free 127.A.B.0/24 block".into(), reason: "50 tries".into() })
}
