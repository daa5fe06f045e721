//! A progress bar for `harvester scan` on a terminal: hosts and ports done, rate, ETA.
//! Drawn on standard error, and only when it is a terminal; silent otherwise (pipes, logs,
//! the daemon), so `--json` output stays clean.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar when `wanted` and standard error is a terminal; otherwise nothing is drawn.
    pub fn new(wanted: bool) -> Self {
        let bar = (wanted && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self { bar }
    }

    pub fn hidden() -> Self {
        Self { bar: None }
    }

    pub fn discovering(&self, addresses: usize) {
        if let Some(bar) = &self.bar {
            bar.set_style(
                ProgressStyle::with_template("{spinner} discovering {msg} addresses  {elapsed}")
                    .expect("a valid template"),
            );
            bar.set_message(addresses.to_string());
        }
    }

    pub fn scanning(&self, ports: usize, hosts: usize) {
        if let Some(bar) = &self.bar {
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} hosts {msg}  [{bar:30}] {human_pos}/{human_len} ports  {per_sec}  ETA {eta}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar.set_length(ports as u64);
            bar.set_position(0);
            bar.reset_eta();
            bar.set_message(format!("0/{hosts}"));
        }
    }

    pub fn port_done(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    pub fn hosts_done(&self, done: usize, hosts: usize) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{done}/{hosts}"));
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
