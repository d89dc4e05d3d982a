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
    Database(#[source] sea_orm::DbErr),
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
    /// The principal is known but its role or scopes do not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// Input that breaks a rule; `field` names the part at fault.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// A unique name already taken, or a state that forbids the change.
    #[error("{0}")]
    Conflict(String),
    #[error("object storage: {0}")]
    Storage(#[from] object_store::Error),
    #[error("cryptography: {0}")]
    Crypto(&'static str),
}

impl From<sea_orm::DbErr> for Error {
    /// A row that vanished between reading and writing (a concurrent delete) is `NotFound`,
    /// not a server error.
    fn from(err: sea_orm::DbErr) -> Self {
        let vanished = matches!(
            err,
            sea_orm::DbErr::RecordNotFound(_) | sea_orm::DbErr::RecordNotUpdated
        ) || matches!(
            err.sql_err(),
            Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(_))
        );
        if vanished {
            Error::NotFound
        } else {
            Error::Database(err)
        }
    }
}

impl From<figment::Error> for Error {
    fn from(err: figment::Error) -> Self {
        Error::Config(Box::new(err))
    }
}

impl Error {
    /// A validation error for `field`.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Error {
        Error::Invalid {
            field,
            message: message.into(),
        }
    }
}

/// Result with the core error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
