//! Host log lines a plugin can cause over and over (a full disk, a store
//! that cannot be opened): each kind is written at most once per interval,
//! so no plugin can flood the host's log by retrying.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::locks::lock;

/// When a kind of log line was last written.
pub(crate) struct Throttle {
    every: Duration,
    last: Mutex<Option<Instant>>,
}

impl Throttle {
    /// A throttle that lets one line through per `every`.
    pub(crate) const fn new(every: Duration) -> Self {
        Throttle {
            every,
            last: Mutex::new(None),
        }
    }

    /// Whether a line may be written now; if so, the interval starts again.
    /// Decided under the lock, written by the caller after it is released.
    pub(crate) fn ready(&self) -> bool {
        let mut last = lock(&self.last);
        let ready = last.is_none_or(|at| at.elapsed() >= self.every);
        if ready {
            *last = Some(Instant::now());
        }
        ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval() {
        let throttle = Throttle::new(Duration::from_millis(200));
        assert!(throttle.ready());
        assert!(!throttle.ready());
        std::thread::sleep(Duration::from_millis(250));
        assert!(throttle.ready());
        assert!(!throttle.ready());
    }
}
