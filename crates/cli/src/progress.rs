//! Progress bars on standard error ([`indicatif`]); indicatif draws nothing when standard
//! error is not a terminal, so scripts and tests see only the reports.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `len` steps labelled `what`, showing position, length, rate and time left.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix:>10} [{bar:40}] {human_pos}/{human_len} {msg} ({elapsed}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    pb.set_prefix(what.to_string());
    pb
}

/// A spinner labelled `what` that redraws itself ten times a second; set its message to
/// say what is happening.
pub fn spinner(what: &str) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{prefix:>10} {spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.set_prefix(what.to_string());
    pb.enable_steady_tick(Duration::from_millis(100));
    pb
}

/// A bar for a phase planned to take `planned`, labelled `what`; move it with
/// [`set_elapsed`].
pub fn timed(what: &str, planned: Duration) -> ProgressBar {
    let pb = ProgressBar::new(planned.as_millis().max(1) as u64);
    pb.set_style(
        ProgressStyle::with_template("{prefix:>10} [{bar:40}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_prefix(what.to_string());
    pb
}

/// Moves a [`timed`] bar to `elapsed` (it stops short of the end until it is finished).
pub fn set_elapsed(pb: &ProgressBar, elapsed: Duration) {
    let len = pb.length().unwrap_or(1);
    let ms = elapsed.as_millis() as u64;
    pb.set_position(ms.min(len.saturating_sub(1)));
    pb.set_message(format!(
        "{:.1} s of ~{:.1} s",
        elapsed.as_secs_f64(),
        len as f64 / 1e3
    ));
}
