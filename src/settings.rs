//! Reading one setting: the error that names its variable, secrets that may come from a
//! `NAME_FILE`, and durations. A leaf: every module that owns settings (`db`, `auth`,
//! `telemetry`, `config`) builds on it, and it knows none of them.

use std::path::Path;
use std::time::Duration;

use secrecy::SecretString;

/// A bad setting: names the variable and why, never the value of a secret.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

impl ConfigError {
    pub(crate) fn new(var: &'static str, reason: impl Into<String>) -> Self {
        Self {
            var,
            reason: reason.into(),
        }
    }
}

/// A secret from its variable or, taking precedence, from the file its `_FILE` variant
/// names. Trailing newlines (as editors and `kubectl create secret` leave them) are dropped.
pub(crate) fn read_secret(
    var: &'static str,
    value: Option<&str>,
    file: Option<&Path>,
) -> Result<Option<SecretString>, ConfigError> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(
                var,
                format!("cannot read {var}_FILE {}: {e}", path.display()),
            )
        })?;
        let trimmed = text.trim_end_matches(['\n', '\r']);
        if trimmed.is_empty() {
            return Err(ConfigError::new(
                var,
                format!("{var}_FILE {} is empty", path.display()),
            ));
        }
        return Ok(Some(SecretString::from(trimmed.to_owned())));
    }
    Ok(value
        .filter(|v| !v.is_empty())
        .map(|v| SecretString::from(v.to_owned())))
}

/// Accepts `[humantime](https://docs.rs/humantime)` durations (`3s`, `250ms`, `1h`) and a
/// bare number of seconds.
pub(crate) fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    if let Ok(secs) = raw.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(raw).map_err(|e| format!("expected a duration like 3s or 500ms: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn secret_file_wins_and_is_trimmed() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("url");
        std::fs::write(&path, "postgres://u:p@h/db\n")?;
        let secret = read_secret("DATABASE_URL", Some("ignored"), Some(&path))?;
        let exposed = secret.map(|s| secrecy::ExposeSecret::expose_secret(&s).to_owned());
        assert_eq!(exposed.as_deref(), Some("postgres://u:p@h/db"));
        let missing = read_secret("DATABASE_URL", None, Some(&dir.path().join("nope")));
        assert!(missing.is_err_and(|e| e.var == "DATABASE_URL"));
        Ok(())
    }
}
