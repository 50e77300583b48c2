//! Terminal progress bars for training loops.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Environment variable that hides every progress bar when set to `1`
/// (any value except empty, `0` and `false`).
pub const QUIET_ENV: &str = "KILN_QUIET";

const TEMPLATE: &str =
    "{prefix} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} ({per_sec}, eta {eta}) {msg}";

/// A progress bar drawn on stderr, e.g.
/// `ppo [00:01:02] ████░░ 41200/100000 (412/s, eta 2m) return 187.2`.
///
/// It is hidden (all methods become no-ops) when `quiet` is true, when
/// stdout is not a terminal (output piped to a file or run under CI), or
/// when the environment variable `KILN_QUIET=1` is set.
#[derive(Debug, Clone)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar counting up to `total`, labelled `label` (e.g. the algorithm name).
    pub fn new(total: u64, label: &str, quiet: bool) -> Self {
        let env = std::env::var(QUIET_ENV).ok();
        let visible = should_draw(quiet, std::io::stdout().is_terminal(), env.as_deref());
        let target = if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let style =
            ProgressStyle::with_template(TEMPLATE).unwrap_or_else(|_| ProgressStyle::default_bar());
        let bar = ProgressBar::with_draw_target(Some(total), target)
            .with_style(style)
            .with_prefix(label.to_string());
        Progress { bar }
    }

    /// Advances the bar by `n` (steps, updates, ...).
    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
    }

    /// Sets the position to `pos`.
    pub fn set_position(&self, pos: u64) {
        self.bar.set_position(pos);
    }

    /// Replaces the text after the bar, e.g. `"412 steps/s | return 187.2"`.
    pub fn set_message(&self, message: String) {
        self.bar.set_message(message);
    }

    /// Stops the bar, leaving its last state on screen.
    pub fn finish(&self) {
        self.bar.finish();
    }

    /// The current position.
    pub fn position(&self) -> u64 {
        self.bar.position()
    }

    /// Whether the bar draws nothing.
    pub fn is_hidden(&self) -> bool {
        self.bar.is_hidden()
    }
}

/// Whether a bar should be drawn, given the caller's `quiet` flag, whether
/// stdout is a terminal and the value of `KILN_QUIET`.
fn should_draw(quiet: bool, stdout_is_terminal: bool, quiet_env: Option<&str>) -> bool {
    let env_quiet = quiet_env.is_some_and(|v| !matches!(v.trim(), "" | "0" | "false"));
    !quiet && stdout_is_terminal && !env_quiet
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visibility_rules() {
        assert!(should_draw(false, true, None));
        assert!(!should_draw(true, true, None));
        assert!(!should_draw(false, false, None));
        assert!(!should_draw(false, true, Some("1")));
        assert!(should_draw(false, true, Some("0")));
        assert!(should_draw(false, true, Some("")));
    }

    #[test]
    fn quiet_bar_counts_but_draws_nothing() {
        let p = Progress::new(100, "ppo", true);
        assert!(p.is_hidden());
        p.inc(30);
        p.inc(12);
        p.set_message("412 steps/s | return 187.2".to_string());
        assert_eq!(p.position(), 42);
        p.set_position(100);
        p.finish();
        assert_eq!(p.position(), 100);
    }

    #[test]
    fn template_parses() {
        assert!(ProgressStyle::with_template(TEMPLATE).is_ok());
    }
}
