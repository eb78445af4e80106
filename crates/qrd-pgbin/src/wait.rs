//! The one waiter: polling a condition until it holds or a deadline passes, and saying what was waited for
//! (and what was last seen) when it gives up. Async for code that awaits (connections, tools), blocking for
//! code that has no runtime (the HA REST client, the test harness).

use std::future::Future;
use std::time::{Duration, Instant};

/// What one look at the condition found.
#[derive(Debug)]
pub enum Check<T> {
    /// It holds; the wait ends with this value.
    Done(T),
    /// Not yet; what was seen, quoted in the message if the wait gives up ("state 'catchup'").
    Pending(String),
}

impl<T> Check<T> {
    /// Not yet, with nothing in particular to report.
    pub fn pending() -> Self {
        Check::Pending(String::new())
    }
}

/// A wait that gave up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("gave up after {} waiting until {what}{}", seconds(*waited), last_seen(last))]
pub struct TimedOut {
    /// The condition, worded to follow "until": "the standby streams from the primary".
    pub what: String,
    pub waited: Duration,
    /// What the last look saw, if it said.
    pub last: String,
}

fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn last_seen(last: &str) -> String {
    if last.is_empty() { String::new() } else { format!(" (last seen: {last})") }
}

/// How a wait ended without its value: the deadline passed, a look failed in a way that waiting longer
/// cannot fix (the probe's own error, returned at once), or qrd was interrupted (Ctrl-C, SIGTERM).
#[derive(Debug, thiserror::Error)]
pub enum WaitError<E> {
    #[error(transparent)]
    TimedOut(TimedOut),
    #[error(transparent)]
    Failed(E),
    #[error("stopped waiting until {what}: qrd received {signal}")]
    Interrupted { what: String, signal: String },
}

/// The pause between looks: short at first (most conditions hold within a moment: a reload, a promote),
/// then every 100 ms, never past the deadline. Failover and switchover report how long the site waited, so
/// a wait must not add much to what it measures; a look is one cheap query or request.
fn pause(attempt: u32, left: Duration) -> Duration {
    let step = Duration::from_millis(10u64 << attempt.min(4)).min(Duration::from_millis(100));
    step.min(left)
}

/// Looks at a condition with `probe` until it is [`Check::Done`], an error comes back, or `deadline`
/// passes; at least one look is always taken, and one more right at the deadline.
pub async fn poll_until<T, E, F, Fut>(deadline: Instant, what: &str, mut probe: F) -> Result<T, WaitError<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Check<T>, E>>,
{
    let started = Instant::now();
    let looking = async {
        let mut attempt = 0;
        loop {
            let last = match probe().await.map_err(WaitError::Failed)? {
                Check::Done(value) => return Ok(value),
                Check::Pending(seen) => seen,
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(timed_out(what, started, last));
            }
            tokio::time::sleep(pause(attempt, deadline - now)).await;
            attempt += 1;
        }
    };
    tokio::select! {
        done = looking => done,
        signal = crate::interrupt::interrupted() => {
            Err(WaitError::Interrupted { what: what.to_owned(), signal: signal.as_str().to_owned() })
        }
    }
}

/// [`poll_until`] for code without an async runtime: the same looks, sleeping on the calling thread.
pub fn poll_until_blocking<T, E>(
    deadline: Instant,
    what: &str,
    mut probe: impl FnMut() -> Result<Check<T>, E>,
) -> Result<T, WaitError<E>> {
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        if let Some(signal) = crate::interrupt::received() {
            return Err(WaitError::Interrupted { what: what.to_owned(), signal: signal.as_str().to_owned() });
        }
        let last = match probe().map_err(WaitError::Failed)? {
            Check::Done(value) => return Ok(value),
            Check::Pending(seen) => seen,
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(timed_out(what, started, last));
        }
        std::thread::sleep(pause(attempt, deadline - now));
        attempt += 1;
    }
}

fn timed_out<E>(what: &str, started: Instant, last: String) -> WaitError<E> {
    WaitError::TimedOut(TimedOut { what: what.to_owned(), waited: started.elapsed(), last })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ends_with_the_value_when_the_condition_holds() {
        let mut looks = 0;
        let value: Result<_, WaitError<()>> =
            poll_until(Instant::now() + Duration::from_secs(30), "three looks", || {
                looks += 1;
                let n = looks;
                async move { Ok(if n == 3 { Check::Done(n) } else { Check::Pending(format!("look {n}")) }) }
            })
            .await;
        assert_eq!(value.unwrap(), 3);
    }

    #[tokio::test]
    async fn gives_up_at_the_deadline_saying_what_it_waited_for_and_saw() {
        let err =
            poll_until::<(), (), _, _>(Instant::now() + Duration::from_millis(200), "the standby streams", || async {
                Ok(Check::Pending("state 'catchup'".into()))
            })
            .await
            .unwrap_err();
        let WaitError::TimedOut(t) = err else { panic!("expected a timeout, got {err:?}") };
        assert_eq!(t.what, "the standby streams");
        assert_eq!(t.last, "state 'catchup'");
        assert!(t.waited >= Duration::from_millis(200));
        assert!(t.to_string().starts_with("gave up after 0."), "{t}");
        assert!(t.to_string().ends_with(" s waiting until the standby streams (last seen: state 'catchup')"), "{t}");
    }

    #[tokio::test]
    async fn a_failed_look_ends_the_wait_at_once() {
        let mut looks = 0;
        let err = poll_until::<(), _, _, _>(Instant::now() + Duration::from_secs(30), "never", || {
            looks += 1;
            async { Err("connection refused") }
        })
        .await
        .unwrap_err();
        assert!(matches!(err, WaitError::Failed("connection refused")), "{err:?}");
        assert_eq!(looks, 1);
    }

    #[test]
    fn the_blocking_wait_looks_at_least_once_even_past_the_deadline() {
        let mut looks = 0;
        let err = poll_until_blocking::<(), ()>(Instant::now(), "the leader answers", || {
            looks += 1;
            Ok(Check::pending())
        })
        .unwrap_err();
        assert_eq!(looks, 1);
        let WaitError::TimedOut(err) = err else { panic!("expected a timeout, got {err:?}") };
        assert_eq!(err.to_string().split_once(" s ").map(|(_, rest)| rest), Some("waiting until the leader answers"));
        let value = poll_until_blocking::<_, ()>(Instant::now() + Duration::from_secs(5), "ready", || {
            looks += 1;
            Ok(if looks > 3 { Check::Done("ready") } else { Check::pending() })
        });
        assert_eq!(value.unwrap(), "ready");
    }
}
