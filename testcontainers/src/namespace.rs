//! Private network + UTS namespaces on loopback: a client inside one can connect from 127.0.0.2 and have a
//! hostname of its own, which is what pg_hba and `qrd check` tests need to see distinct clients. No
//! address outside 127.0.0.0/8 and ::1 is ever configured.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use nix::sched::CloneFlags;

use qrd_pgbin::{ToolError, display_command};

use crate::HarnessError;
use crate::user::Entry;

/// What the holder runs: bring lo up, add the extra loopback addresses, set the hostname, say so, then sleep
/// until killed. Values arrive as positional parameters, never pasted into the script.
const HOLDER_SCRIPT: &str = r#"set -e
ip link set lo up
h=$1; shift
for a in "$@"; do ip addr add "$a" dev lo; done
if [ -n "$h" ]; then hostname "$h"; fi
echo ready
exec sleep 2147483647"#;

#[derive(Debug, Default)]
pub struct NamespaceBuilder {
    addrs: Vec<IpAddr>,
    hostname: Option<String>,
}

impl NamespaceBuilder {
    /// An extra loopback address in the namespace (127.0.0.1 and ::1 are always there). Anything outside
    /// 127.0.0.0/8 and ::1 makes [`NamespaceBuilder::start`] fail before anything runs.
    pub fn addr(mut self, addr: IpAddr) -> Self {
        self.addrs.push(addr);
        self
    }

    /// The hostname processes inside the namespace see (default: a copy of the host's).
    pub fn hostname(mut self, name: &str) -> Self {
        self.hostname = Some(name.to_owned());
        self
    }

    pub fn start(self) -> Result<Arc<Namespace>, HarnessError> {
        for addr in &self.addrs {
            if !addr.is_loopback() {
                return Err(HarnessError::NotLoopback { addr: *addr, what: "a namespace address" });
            }
        }
        if let Some(h) = &self.hostname {
            let ok = !h.is_empty()
                && h.len() <= 64
                && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
                && !h.starts_with(['-', '.']);
            if !ok {
                return Err(HarnessError::Invalid {
                    what: "namespace hostname",
                    reason: format!("{h:?}: use 1–64 letters, digits, '-' and '.'"),
                });
            }
        }
        let as_root = nix::unistd::geteuid().is_root();
        let mut cmd = Command::new("unshare");
        if !as_root {
            // Without root, a user namespace in which we are root makes the net/UTS changes possible.
            cmd.args(["--user", "--map-root-user"]);
        }
        cmd.args(["--net", "--uts", "--", "sh", "-c", HOLDER_SCRIPT, "qrd-ns"]);
        cmd.arg(self.hostname.as_deref().unwrap_or(""));
        for addr in &self.addrs {
            match addr {
                // Present as soon as lo is up; adding it again fails with "File exists".
                IpAddr::V4(v4) if v4.octets() == [127, 0, 0, 1] => {}
                IpAddr::V4(v4) => {
                    cmd.arg(format!("{v4}/32"));
                }
                // ::1 is the only IPv6 loopback address, and lo has it already.
                IpAddr::V6(_) => {}
            }
        }
        // ip lives in /usr/sbin, which a non-login root shell (CI) may not have on PATH.
        cmd.env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let command = display_command(&cmd);
        let action = "start a network namespace";
        tracing::debug!(%command, "starting namespace holder");
        let mut child = cmd.spawn().map_err(|source| ToolError::spawn(action, command.clone(), source))?;

        let mut line = String::new();
        let read = BufReader::new(child.stdout.take().expect("stdout is piped")).read_line(&mut line);
        if read.is_err() || line.trim_end() != "ready" {
            let _ = child.kill();
            let mut stderr = Vec::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_end(&mut stderr);
            }
            let status = child.wait().map_err(|source| ToolError::spawn(action, command.clone(), source))?;
            let source =
                ToolError::exited(action, command, &std::process::Output { status, stdout: line.into_bytes(), stderr });
            return Err(if as_root {
                source.into()
            } else {
                HarnessError::CommandHint {
                    source,
                    hint: "without root this needs unprivileged user namespaces (kernel.unprivileged_userns_clone=1)",
                }
            });
        }

        let pid = child.id();
        let open = |kind: &str| -> Result<OwnedFd, HarnessError> {
            let path = format!("/proc/{pid}/ns/{kind}");
            File::open(&path).map(OwnedFd::from).map_err(|e| HarnessError::io("open the namespace", path, e))
        };
        let ns = Namespace {
            user: if as_root { None } else { Some(open("user")?) },
            net: open("net")?,
            uts: open("uts")?,
            addrs: self.addrs,
            hostname: self.hostname,
            holder: Mutex::new(child),
            pid,
        };
        tracing::debug!(pid, addrs = ?ns.addrs, hostname = ?ns.hostname, "namespace ready");
        Ok(Arc::new(ns))
    }
}

/// A private network namespace (its own lo with extra loopback addresses) and UTS namespace (its own
/// hostname), kept alive by a holder process that is killed on drop.
///
/// Only the holder's namespaces are private: the file system, users and processes are shared with the host,
/// so a server in the namespace is still reached through its unix socket from anywhere, while its TCP ports
/// exist only inside.
#[derive(Debug)]
pub struct Namespace {
    holder: Mutex<Child>,
    pid: u32,
    /// Set when the namespace was made without root: entering the net/UTS namespaces then needs the user
    /// namespace that owns them first.
    user: Option<OwnedFd>,
    net: OwnedFd,
    uts: OwnedFd,
    addrs: Vec<IpAddr>,
    hostname: Option<String>,
}

impl Namespace {
    pub fn builder() -> NamespaceBuilder {
        NamespaceBuilder::default()
    }

    /// The extra addresses given to the builder (127.0.0.1 and ::1 exist besides).
    pub fn addrs(&self) -> &[IpAddr] {
        &self.addrs
    }

    pub fn hostname(&self) -> Option<&str> {
        self.hostname.as_deref()
    }

    /// The pid of the process holding the namespace (for `nsenter -t PID -n -u` when debugging by hand).
    pub fn holder_pid(&self) -> u32 {
        self.pid
    }

    /// A command that runs inside the namespace.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        self.enter(&mut cmd);
        cmd
    }

    /// Makes an existing command (e.g. one from [`qrd_pgbin::scrubbed_command`]) run inside the namespace.
    ///
    /// Panics if the namespace's file descriptors cannot be duplicated (out of file descriptors).
    pub fn enter<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        self.entry().apply_to(cmd);
        cmd
    }

    /// The namespace descriptors for a child's `pre_exec`, duplicated so the command owns its copies.
    pub(crate) fn entry(&self) -> Entry {
        let dup = |fd: &OwnedFd| fd.try_clone().expect("failed to duplicate a namespace file descriptor");
        Entry {
            user: self.user.as_ref().map(dup),
            net: Some(dup(&self.net)),
            uts: Some(dup(&self.uts)),
            identity: None,
        }
    }

    pub(crate) fn needs_user_namespace(&self) -> bool {
        self.user.is_some()
    }

    /// Runs `f` to completion on a fresh thread that has entered the namespace, with its own current-thread
    /// tokio runtime: sockets created there (e.g. a `try_connect_tcp` to 127.0.0.2) belong to the namespace.
    ///
    /// Needs root: a multithreaded process cannot enter a user namespace, which a namespace made without root
    /// would require. Panics of `f` propagate.
    pub fn block_on<F: Future + Send>(&self, f: F) -> F::Output
    where
        F::Output: Send,
    {
        assert!(
            !self.needs_user_namespace(),
            "Namespace::block_on needs root: this namespace was made without root, and a multithreaded process \
             cannot enter its user namespace; run the client through Namespace::command instead"
        );
        std::thread::scope(|s| {
            let thread = std::thread::Builder::new().name(format!("qrd-ns-{}", self.pid));
            let handle = thread
                .spawn_scoped(s, || {
                    // setns on a thread moves only that thread (net and UTS namespaces are per thread).
                    nix::sched::setns(&self.net, CloneFlags::CLONE_NEWNET)
                        .unwrap_or_else(|e| panic!("failed to enter the network namespace of pid {}: {e}", self.pid));
                    nix::sched::setns(&self.uts, CloneFlags::CLONE_NEWUTS)
                        .unwrap_or_else(|e| panic!("failed to enter the UTS namespace of pid {}: {e}", self.pid));
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("failed to build a tokio runtime inside the namespace");
                    rt.block_on(f)
                })
                .expect("failed to spawn a thread for the namespace");
            handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let child = self.holder.get_mut().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}
