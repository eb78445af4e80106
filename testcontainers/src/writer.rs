//! A client that writes all along, as the Qlik repository's services do: a new connection and one INSERT
//! every ~100 ms through psql (TLS, libpq's own reconnect behaviour), each attempt's time and outcome
//! kept. What a failover or switchover costs a client is the longest time without an acknowledged write.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Where and how the writer connects (libpq environment variables: PGHOST, PGPORT, PGUSER, PGPASSWORD,
/// PGSSLMODE, PGSSLROOTCERT, PGTARGETSESSIONATTRS …; the password stays out of argv).
pub struct WriterTarget {
    pub psql: PathBuf,
    pub env: Vec<(String, String)>,
    /// An existing table with a `bigint` primary key `id`.
    pub table: String,
}

pub struct Writer {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Vec<(Instant, Result<i64, String>)>>,
}

/// What the writer saw.
#[derive(Debug)]
pub struct Written {
    /// The ids whose INSERT was acknowledged.
    pub acked: Vec<i64>,
    /// The failed attempts' errors.
    pub failed: Vec<String>,
    /// The longest time without an acknowledged write (from the start, between two, until the end).
    pub longest_gap: Duration,
}

impl Writer {
    pub fn start(target: WriterTarget) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut log = Vec::new();
            // Ids unique across writers on the same table: milliseconds since the epoch × 1000, plus one per
            // attempt.
            let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            let mut id = since.as_millis() as i64 * 1000;
            while !flag.load(Ordering::Relaxed) {
                id += 1;
                let at = Instant::now();
                let out = Command::new(&target.psql)
                    .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-c"])
                    .arg(format!("INSERT INTO {} (id) VALUES ({id})", target.table))
                    .env_clear()
                    .envs(target.env.iter().map(|(k, v)| (k, v)))
                    .output();
                let r = match out {
                    Ok(o) if o.status.success() => Ok(id),
                    Ok(o) => Err(String::from_utf8_lossy(&o.stderr).trim().to_owned()),
                    Err(e) => Err(e.to_string()),
                };
                log.push((at, r));
                std::thread::sleep(Duration::from_millis(100).saturating_sub(at.elapsed()));
            }
            log
        });
        Writer { stop, handle }
    }

    pub fn finish(self) -> Written {
        self.stop.store(true, Ordering::Relaxed);
        let log = self.handle.join().expect("the writer does not panic");
        let (first, end) = (log.first().map(|l| l.0), Instant::now());
        let mut w = Written { acked: Vec::new(), failed: Vec::new(), longest_gap: Duration::ZERO };
        let mut last_ok: Option<Instant> = first;
        for (at, r) in log {
            match r {
                Ok(id) => {
                    if let Some(prev) = last_ok {
                        w.longest_gap = w.longest_gap.max(at - prev);
                    }
                    last_ok = Some(at);
                    w.acked.push(id);
                }
                Err(e) => w.failed.push(e),
            }
        }
        if let Some(last) = last_ok {
            w.longest_gap = w.longest_gap.max(end - last);
        }
        w
    }
}
