//! The core error type; the API maps it once to the JSON error shape.

use std::path::PathBuf;

/// Errors raised by the core: configuration, storage and backing services.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("configuration error: {0}")]
    Config(#[from] Box<figment::Error>),
    #[error("invalid setting `{field}`: {message}")]
    InvalidSetting {
        field: &'static str,
        message: String,
    },
    #[error("database error")]
    Database(#[from] sea_orm::DbErr),
    #[error("redis error")]
    Redis(#[from] redis::RedisError),
    #[error("{action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("not found")]
    NotFound,
}

impl From<figment::Error> for Error {
    fn from(err: figment::Error) -> Self {
        Error::Config(Box::new(err))
    }
}

/// Result with the core error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
