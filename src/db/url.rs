//! `DATABASE_URL` → backend (SPEC §1). The scheme decides; nothing is guessed by trying
//! backends in turn, so a bad PostgreSQL URL reports the PostgreSQL error.

use std::fmt;
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};

use crate::settings::ConfigError;

#[derive(Clone)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    /// Kept secret: PostgreSQL URLs usually carry a password.
    Postgres(SecretString),
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let raw = raw.trim();
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return Ok(Self::Postgres(SecretString::from(raw.to_owned())));
        }
        let path = match raw.split_once("://") {
            Some(("sqlite", path)) => path,
            Some((scheme, _)) => {
                return Err(ConfigError::new(
                    "DATABASE_URL",
                    format!(
                        "unsupported scheme {scheme:?}; use sqlite://PATH, a bare path or postgres://"
                    ),
                ));
            }
            None => raw,
        };
        if path.is_empty() {
            return Err(ConfigError::new("DATABASE_URL", "the SQLite path is empty"));
        }
        Ok(Self::Sqlite(PathBuf::from(path)))
    }

    pub(crate) fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    pub(crate) fn expose_postgres(&self) -> Option<&str> {
        match self {
            Self::Postgres(url) => Some(url.expose_secret()),
            Self::Sqlite(_) => None,
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            Self::Postgres(_) => f.write_str("postgres://[redacted]"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_path(raw: &str) -> Option<PathBuf> {
        match DatabaseUrl::parse(raw) {
            Ok(DatabaseUrl::Sqlite(p)) => Some(p),
            _ => None,
        }
    }

    #[test]
    fn sqlite_forms() {
        assert_eq!(
            sqlite_path("sqlite:///var/opt/x.db"),
            Some(PathBuf::from("/var/opt/x.db"))
        );
        assert_eq!(
            sqlite_path("sqlite://instance/db.sqlite3"),
            Some(PathBuf::from("instance/db.sqlite3"))
        );
        assert_eq!(
            sqlite_path("data/db.sqlite3"),
            Some(PathBuf::from("data/db.sqlite3"))
        );
        assert!(DatabaseUrl::parse("sqlite://").is_err());
    }

    #[test]
    fn postgres_is_redacted_and_other_schemes_rejected() {
        let url = DatabaseUrl::parse("postgresql://u:hunter2@h/db");
        assert!(matches!(url, Ok(DatabaseUrl::Postgres(_))));
        assert!(!format!("{url:?}").contains("hunter2"));
        let err = DatabaseUrl::parse("mysql://u:hunter2@h/db")
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.starts_with("DATABASE_URL") && !e.contains("hunter2"))
        );
    }
}
