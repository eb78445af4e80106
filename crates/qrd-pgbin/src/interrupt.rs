//! Ctrl-C and SIGTERM, once for the whole process: the CLI [`install`]s the handlers, and whatever is
//! running at the time ends at once and unwinds through its normal error path: the runner kills its
//! child's process group ([`crate::ToolError::Interrupted`]), a drill drops its scratch databases, a
//! password prompt puts the terminal's echo back. Nothing is left behind because every step's cleanup runs
//! as it would for any other failure.
//!
//! Without [`install`] (tests, the harness) nothing is ever interrupted and the signals keep their
//! default action.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::Signal;

/// The first signal received, as a number; 0 while none was.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// Wakes async waiters when a signal arrives, with how many have.
static NOTIFY: OnceLock<tokio::sync::watch::Sender<u32>> = OnceLock::new();

/// Takes over SIGINT and SIGTERM for the rest of the process. Must be called inside a tokio runtime (it
/// spawns the task that wakes async waiters); calling it again does nothing.
pub fn install() {
    if NOTIFY.get().is_some() {
        return;
    }
    let (tx, _) = tokio::sync::watch::channel(0);
    if NOTIFY.set(tx).is_err() {
        return;
    }
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // The flag for code that cannot await (a prompt reading the terminal). Storing to an atomic is
        // async-signal-safe.
        let number = signal as i32;
        // SAFETY: the action only stores to an atomic.
        let registered = unsafe {
            signal_hook_registry::register(number, move || {
                let _ = RECEIVED.compare_exchange(0, number, Ordering::SeqCst, Ordering::SeqCst);
            })
        };
        if let Err(e) = registered {
            tracing::debug!("could not take over {signal}: {e}");
            continue;
        }
        // And the wake-up for code that awaits.
        let kind = tokio::signal::unix::SignalKind::from_raw(number);
        match tokio::signal::unix::signal(kind) {
            Ok(mut stream) => {
                tokio::spawn(async move {
                    while stream.recv().await.is_some() {
                        let _ = RECEIVED.compare_exchange(0, number, Ordering::SeqCst, Ordering::SeqCst);
                        if let Some(tx) = NOTIFY.get() {
                            tx.send_modify(|count| *count += 1);
                        }
                    }
                });
            }
            Err(e) => tracing::debug!("could not listen for {signal}: {e}"),
        }
    }
}

/// The signal that interrupted qrd, if one did.
pub fn received() -> Option<Signal> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        n => Signal::try_from(n).ok(),
    }
}

/// Resolves when qrd is interrupted, with the (first) signal; never, when [`install`] was not called.
pub async fn interrupted() -> Signal {
    signals(1).await;
    received().unwrap_or(Signal::SIGINT)
}

/// Resolves once `n` signals have arrived (the CLI quits at once on the second); never without [`install`].
pub async fn signals(n: u32) {
    let Some(tx) = NOTIFY.get() else {
        return std::future::pending().await;
    };
    let mut rx = tx.subscribe();
    // The flag first: a signal whose wake-up task has not run yet still counts as the first.
    if n <= 1 && received().is_some() {
        return;
    }
    if rx.wait_for(|count| *count >= n).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The exit code of a process ended by `signal`, as shells report it: 128 + its number (130 for SIGINT,
/// 143 for SIGTERM).
pub fn exit_code(signal: Signal) -> u8 {
    128u8.saturating_add(signal as i32 as u8)
}
