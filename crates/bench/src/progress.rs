//! The progress bar shown on stderr while a phase runs (off with `--quiet` or no terminal).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::timing::Timing;

/// How often the bar is redrawn.
const TICK: Duration = Duration::from_millis(200);

/// A bar for one phase; it ticks by itself until [`PhaseBar::finish`] or its deadline.
#[derive(Debug)]
pub struct PhaseBar {
    bar: ProgressBar,
    ticker: Option<JoinHandle<()>>,
}

impl PhaseBar {
    /// Starts a bar for phase `label`, reading the completed-request counter `done`.
    /// With `enabled` false nothing is drawn and no task is started.
    pub fn start(enabled: bool, label: &str, timing: Timing, done: Arc<AtomicU64>) -> Self {
        if !enabled {
            return Self {
                bar: ProgressBar::hidden(),
                ticker: None,
            };
        }
        let total_ms = timing.end.duration_since(timing.start).as_millis();
        let bar = ProgressBar::new(u64::try_from(total_ms).unwrap_or(u64::MAX));
        if let Ok(style) =
            ProgressStyle::with_template("{prefix:>16} [{bar:20}] {elapsed:>3} {msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(label.to_owned());
        let ticker_bar = bar.clone();
        let ticker = tokio::spawn(async move {
            let mut last = (Instant::now(), 0u64);
            // Bounded: stops at the phase's hard deadline even if never told to.
            while Instant::now() < timing.hard_end {
                tokio::time::sleep(TICK).await;
                let now = Instant::now();
                let count = done.load(Ordering::Relaxed);
                let rate = (count - last.1.min(count)) as f64
                    / now.duration_since(last.0).as_secs_f64().max(1e-3);
                last = (now, count);
                let stage = if now < timing.measure_start {
                    "warm-up"
                } else if now < timing.end {
                    "measuring"
                } else {
                    "draining"
                };
                let position = now.duration_since(timing.start).as_millis();
                ticker_bar.set_position(u64::try_from(position).unwrap_or(u64::MAX));
                ticker_bar.set_message(format!("{stage} {count} req, {rate:.0}/s"));
            }
        });
        Self {
            bar,
            ticker: Some(ticker),
        }
    }

    /// Stops the ticker and clears the bar.
    pub fn finish(self) {
        drop(self);
    }
}

impl Drop for PhaseBar {
    fn drop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.abort();
        }
        self.bar.finish_and_clear();
    }
}
