//! What the run shows while it works: one line per phase on stderr and an
//! indicatif bar (seeding, samples) or spinner (saturated windows), all
//! hidden in quiet mode and whenever stderr is not a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::time::Instant;

/// Progress reporting for one run.
#[derive(Debug, Clone)]
pub struct Progress {
    quiet: bool,
    started: Instant,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        Self {
            quiet,
            started: Instant::now(),
        }
    }

    /// Shows nothing at all.
    pub fn hidden() -> Self {
        Self::new(true)
    }

    /// Announces a phase, with the time since the run began.
    pub fn phase(&self, what: &str) {
        if !self.quiet {
            eprintln!("[{:>6.1}s] {what}", self.started.elapsed().as_secs_f64());
        }
    }

    fn target(&self) -> ProgressDrawTarget {
        if self.quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        }
    }

    /// A bar counting to `length`, with rate and time left.
    pub fn bar(&self, label: &str, length: u64) -> ProgressBar {
        let bar = ProgressBar::with_draw_target(Some(length), self.target());
        bar.set_style(
            ProgressStyle::with_template("{msg:>28} [{bar:32}] {human_pos}/{human_len} {per_sec} eta {eta}")
                .expect("static template")
                .progress_chars("=> "),
        );
        bar.set_message(label.to_owned());
        bar
    }

    /// A spinner for work measured by time, not count.
    pub fn spinner(&self, label: &str) -> ProgressBar {
        let spinner = ProgressBar::with_draw_target(None, self.target());
        spinner.set_style(ProgressStyle::with_template("{msg:>28} {spinner} {elapsed}").expect("static template"));
        spinner.set_message(label.to_owned());
        spinner.enable_steady_tick(std::time::Duration::from_millis(200));
        spinner
    }
}
