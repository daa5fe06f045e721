//! A refused value in `nester.toml`: the key it is under and what is wrong with it, and the
//! line it is on when the file names it.

use std::time::Duration;

/// What one section's `check` found wrong: `key` is its dotted path (`ingest.max_body_bytes`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    pub key: String,
    message: String,
}

impl ConfigError {
    /// `message` already names the key.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }

    /// "`key` must ..." from the bound alone.
    pub fn bound(key: &str, must: &str) -> Self {
        Self::new(key, format!("`{key}` {must}"))
    }

    /// The line (1-based) of `text` that sets this key, when the file sets it.
    pub fn line_in(&self, text: &str) -> Option<usize> {
        let (table, leaf) = self.key.rsplit_once('.').unwrap_or(("", &self.key));
        let mut current = String::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if let Some(header) = line.strip_prefix('[') {
                current = header.trim_matches(['[', ']', ' ']).to_string();
            } else if current == table
                && line
                    .strip_prefix(leaf)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            {
                return Some(n + 1);
            }
        }
        None
    }
}

/// `key` at least `min` (and at most `max` when given), in humantime words.
pub fn within(
    key: &str,
    value: Duration,
    min: Duration,
    max: Option<Duration>,
) -> Result<(), ConfigError> {
    let human = |d: Duration| humantime::format_duration(d).to_string();
    match max {
        Some(max) if value < min || value > max => Err(ConfigError::bound(
            key,
            &format!("must be between {} and {}", human(min), human(max)),
        )),
        None if value < min => Err(ConfigError::bound(
            key,
            &format!("must be at least {}", human(min)),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_is_found_under_its_table_only() {
        let text = "data_dir = \"/x\"\n[web]\nmax_body_bytes = 1\n[ingest]\nmax_body_bytes = 2\n";
        let e = ConfigError::bound("ingest.max_body_bytes", "must be at least 1024");
        assert_eq!(e.line_in(text), Some(5));
        assert_eq!(
            e.to_string(),
            "`ingest.max_body_bytes` must be at least 1024"
        );
        assert_eq!(
            ConfigError::bound("web.max_body_bytes", "").line_in(text),
            Some(3)
        );
        assert_eq!(ConfigError::bound("web.listen", "").line_in(text), None);
    }

    #[test]
    fn durations_are_bounded_in_words() {
        let m = Duration::from_secs(60);
        let e = within("retention.every", Duration::from_secs(5), m, None).unwrap_err();
        assert_eq!(e.to_string(), "`retention.every` must be at least 1m");
        assert!(within("x", m, m, Some(m)).is_ok());
        let e = within("x", m * 2, m, Some(m)).unwrap_err();
        assert_eq!(e.to_string(), "`x` must be between 1m and 1m");
    }
}
