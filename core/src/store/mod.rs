//! Reads and writes, one module per resource. Every function takes any connection
//! (`&impl ConnectionTrait`) so it runs inside or outside a transaction; the caller commits.
//! Org-owned rows are only reached through a [`crate::tenancy::TenantScope`].

pub mod artifacts;
pub mod audit;
pub mod changes;
pub mod environments;
pub mod execution;
pub mod gates;
pub mod invitations;
pub mod locks;
pub mod orgs;
pub mod params;
pub mod projects;
pub mod releases;
pub mod repo_credentials;
pub mod retention;
pub mod runs;
pub mod sessions;
pub mod tokens;
pub mod users;

use serde::Deserialize;

/// Keyset pagination: `?limit=` (default 50, max 200) and an opaque `?cursor=`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PageRequest {
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

/// One page of results and where the next one starts.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl PageRequest {
    /// The page size, checked.
    pub fn limit(&self) -> crate::Result<u64> {
        match self.limit {
            None => Ok(50),
            Some(n @ 1..=200) => Ok(n),
            Some(_) => Err(crate::Error::invalid("limit", "must be between 1 and 200")),
        }
    }

    /// The id after which the page starts.
    pub fn after(&self) -> crate::Result<Option<i64>> {
        match &self.cursor {
            None => Ok(None),
            Some(c) => c
                .parse::<i64>()
                .map(Some)
                .map_err(|_| crate::Error::invalid("cursor", "not a cursor returned by this list")),
        }
    }
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows fetched in id order.
    pub fn from_rows(mut rows: Vec<T>, limit: u64, id: impl Fn(&T) -> i64) -> Page<T> {
        let next_cursor = if rows.len() as u64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|last| id(last).to_string())
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

/// Maps a unique-constraint violation to [`crate::Error::Conflict`] with `message`.
pub(crate) fn conflict_on_unique(err: sea_orm::DbErr, message: &str) -> crate::Error {
    match err.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
            crate::Error::Conflict(message.to_owned())
        }
        _ => err.into(),
    }
}
