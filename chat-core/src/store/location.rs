//! Where a chat's data lives, parsed once from the URL a user gives.

use std::path::PathBuf;
use std::str::FromStr;

/// A store location: `memory`; `sqlite://PATH`, `sqlite:PATH` or a plain file path; `sled://DIR`;
/// `postgres://…` or `postgresql://…` (kept whole for its driver). `chat-server --database` and
/// the stores' own constructors read locations through this one parser.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// In memory: gone with the process.
    Memory,
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A sled directory.
    Sled(PathBuf),
    /// A PostgreSQL connection URL.
    Postgres(String),
}

/// A URL that names no store location.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{url:?} is not a store location: {why}")]
pub struct BadLocation {
    /// The URL as given.
    pub url: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl FromStr for Location {
    type Err = BadLocation;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let bad = |why| BadLocation {
            url: url.to_owned(),
            why,
        };
        if url == "memory" || url == "memory://" {
            return Ok(Self::Memory);
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        if let Some(dir) = url.strip_prefix("sled://") {
            if dir.is_empty() {
                return Err(bad("it names no directory"));
            }
            return Ok(Self::Sled(PathBuf::from(dir)));
        }
        let path = match url
            .strip_prefix("sqlite://")
            .or(url.strip_prefix("sqlite:"))
        {
            Some(path) => path.split('?').next().unwrap_or_default(),
            None if url.contains("://") => {
                return Err(bad("unknown scheme (memory, sqlite, sled, postgres)"));
            }
            None => url,
        };
        if path.is_empty() || path.starts_with(":memory:") {
            return Err(bad(
                "it names no database file (use `memory` for an in-memory store)",
            ));
        }
        Ok(Self::Sqlite(PathBuf::from(path)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_parses_to_one_location() {
        let parse = |url: &str| url.parse::<Location>();
        assert_eq!(parse("memory"), Ok(Location::Memory));
        for url in [
            "chat.db",
            "sqlite://chat.db",
            "sqlite:chat.db",
            "sqlite://chat.db?mode=rwc",
        ] {
            assert_eq!(parse(url), Ok(Location::Sqlite("chat.db".into())), "{url}");
        }
        assert_eq!(
            parse("sqlite:///var/lib/chat.db"),
            Ok(Location::Sqlite("/var/lib/chat.db".into()))
        );
        assert_eq!(parse("sled://data"), Ok(Location::Sled("data".into())));
        let pg = "postgres://chat@127.0.0.1:5432/chat";
        assert_eq!(parse(pg), Ok(Location::Postgres(pg.into())));
        for bad in ["", "sqlite://", "sqlite::memory:", "sled://", "mysql://x/y"] {
            let error = parse(bad).unwrap_err();
            assert_eq!(error.url, bad);
        }
    }
}
