//! A spinner with the seconds elapsed on stderr while a slow request runs (an upload
//! compiles for seconds), so a person sees the command is working.
//!
//! Only on a terminal: in a pipe or a log the line's carriage returns would be noise. It
//! appears after a moment, so a quick answer prints nothing, and it runs on a thread of its
//! own, so it turns while the request's runtime is busy.

use std::io::{IsTerminal, Write};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a request runs before the spinner shows.
const DELAY: Duration = Duration::from_millis(400);
/// How often it turns.
const TICK: Duration = Duration::from_millis(100);
const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// The spinner; dropping it stops it and clears its line.
pub(crate) struct Progress {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Start the spinner, labelled `label` (nothing when stderr is not a terminal).
    pub(crate) fn start(label: String) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self {
                stop: None,
                thread: None,
            };
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut shown = false;
            for frame in FRAMES.iter().cycle() {
                // A message or a dropped sender both mean stop.
                if !matches!(
                    stopped.recv_timeout(TICK),
                    Err(mpsc::RecvTimeoutError::Timeout)
                ) {
                    break;
                }
                let elapsed = started.elapsed();
                if elapsed < DELAY {
                    continue;
                }
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r{frame} {label} {:.1}s", elapsed.as_secs_f64());
                let _ = err.flush();
                shown = true;
            }
            if shown {
                // Back to the line's start, and erase it for what is printed next.
                let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
            }
        });
        Self {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            // Wait for the line to be cleared, so nothing printed after it lands on it.
            let _ = t.join();
        }
    }
}
