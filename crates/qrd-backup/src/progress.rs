//! How far a long step has got, for whoever shows it: the CLI draws a bar on a terminal and nothing
//! otherwise (a nightly job's log gets the notes only). The library only reports.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Receives progress reports. `total` is `None` when the end is not known in advance.
pub trait Progress: Send + Sync + std::fmt::Debug {
    /// A step begins (`what` is its short description).
    fn start(&self, what: &str, total: Option<u64>);
    /// Bytes done so far in the current step.
    fn set(&self, done: u64);
    /// The step ended (successfully or not).
    fn finish(&self);
}

/// Reports to nobody.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: &str, _: Option<u64>) {}
    fn set(&self, _: u64) {}
    fn finish(&self) {}
}

/// Shared handle to a [`Progress`] receiver.
pub type Shared = Arc<dyn Progress>;

pub fn silent() -> Shared {
    Arc::new(Silent)
}

/// While alive, reports the size of `path` (a file or a directory tree, as a tool writes it) every
/// quarter second; the step is finished when it is dropped.
pub struct Watch {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    progress: Shared,
}

impl Watch {
    pub fn start(progress: &Shared, what: &str, total: Option<u64>, path: PathBuf) -> Watch {
        progress.start(what, total);
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, p) = (stop.clone(), progress.clone());
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                p.set(tree_bytes(&path));
                // Woken at once by the drop, so the step ends when the tool does.
                std::thread::park_timeout(Duration::from_millis(250));
            }
        });
        Watch { stop, thread: Some(thread), progress: progress.clone() }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
        self.progress.finish();
    }
}

/// The bytes of the files under `path` (or of `path` itself); what cannot be read counts as nothing.
pub fn tree_bytes(path: &Path) -> u64 {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            std::fs::read_dir(path).into_iter().flatten().flatten().map(|e| tree_bytes(&e.path())).sum()
        }
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

/// A reader that reports how much has passed through it, and fails once qrd is interrupted (Ctrl-C,
/// SIGTERM): the bundle is written on a blocking thread that the command's unwinding cannot stop, so the
/// copy stops itself and the command ends with everyone else.
pub struct Counting<R> {
    inner: R,
    done: u64,
    progress: Shared,
}

impl<R> Counting<R> {
    /// Continues from `done` bytes (several readers can add up to one step).
    pub fn new(inner: R, done: u64, progress: Shared) -> Self {
        Counting { inner, done, progress }
    }

    pub fn done(&self) -> u64 {
        self.done
    }

    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: std::io::Read> std::io::Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(signal) = qrd_pgbin::interrupt::received() {
            // Not ErrorKind::Interrupted: readers retry that one.
            return Err(std::io::Error::other(format!("stopped: qrd received {signal}")));
        }
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        self.progress.set(self.done);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::sync::Mutex;

    use super::*;

    #[derive(Debug, Default)]
    struct Record(Mutex<Vec<String>>);

    impl Progress for Record {
        fn start(&self, what: &str, total: Option<u64>) {
            self.0.lock().unwrap().push(format!("start {what} {total:?}"));
        }
        fn set(&self, done: u64) {
            self.0.lock().unwrap().push(format!("set {done}"));
        }
        fn finish(&self) {
            self.0.lock().unwrap().push("finish".into());
        }
    }

    #[test]
    fn counting_reports_running_totals() {
        let record = Arc::new(Record::default());
        let shared: Shared = record.clone();
        let mut r = Counting::new(&b"hello world"[..], 100, shared);
        let mut buf = [0u8; 5];
        r.read_exact(&mut buf).unwrap();
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        assert_eq!(r.done(), 111);
        let seen = record.0.lock().unwrap().clone();
        assert_eq!(seen.first().map(String::as_str), Some("set 105"));
        assert!(seen.contains(&"set 111".to_owned()), "{seen:?}");
    }

    #[test]
    fn a_watch_reports_a_growing_directory_and_finishes() {
        let dir = tempfile::tempdir().unwrap();
        let record = Arc::new(Record::default());
        let shared: Shared = record.clone();
        let watch = Watch::start(&shared, "dumping", None, dir.path().to_owned());
        std::fs::write(dir.path().join("a"), vec![0u8; 1000]).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/b"), vec![0u8; 24]).unwrap();
        // Until the watch has seen the whole tree (it looks every quarter second), however slow the machine.
        let seen_all = qrd_pgbin::poll_until_blocking::<_, ()>(
            std::time::Instant::now() + Duration::from_secs(30),
            "the watch reports 1024 bytes",
            || {
                let seen = record.0.lock().unwrap().iter().any(|l| l == "set 1024");
                Ok(if seen { qrd_pgbin::Check::Done(()) } else { qrd_pgbin::Check::pending() })
            },
        );
        assert!(matches!(seen_all, Ok(())), "{:?}", record.0.lock().unwrap());
        drop(watch);
        let seen = record.0.lock().unwrap().clone();
        assert_eq!(seen.first().map(String::as_str), Some("start dumping None"));
        assert!(seen.contains(&"set 1024".to_owned()), "{seen:?}");
        assert_eq!(seen.last().map(String::as_str), Some("finish"));
    }
}
