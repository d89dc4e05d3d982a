//! Browser sessions: the id lives only in the cookie; the database keeps its SHA-256.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

use crate::Result;
use crate::crypto::{hash_token, random_base62};
use crate::entities::{session, user};

/// A session ends after this long without a request.
pub const IDLE_TIMEOUT: Duration = Duration::days(7);
/// A session ends this long after sign-in, however active.
pub const ABSOLUTE_TIMEOUT: Duration = Duration::days(30);
/// `last_seen_at` is written at most this often per session.
const TOUCH_EVERY: Duration = Duration::minutes(1);

/// Starts a session for `user_id`; returns the raw id for the cookie.
pub async fn create(db: &impl ConnectionTrait, user_id: i64) -> Result<String> {
    let raw = random_base62(32);
    let now = Utc::now();
    session::ActiveModel {
        token_hash: Set(hash_token(&raw)),
        user_id: Set(user_id),
        created_at: Set(now),
        last_seen_at: Set(now),
        expires_at: Set(now + ABSOLUTE_TIMEOUT),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(raw)
}

/// The live session with this raw id and its user; expired sessions are deleted.
pub async fn authenticate(
    db: &impl ConnectionTrait,
    raw: &str,
    now: DateTime<Utc>,
) -> Result<Option<user::Model>> {
    let found = session::Entity::find()
        .filter(session::Column::TokenHash.eq(hash_token(raw)))
        .one(db)
        .await?;
    let Some(session) = found else {
        return Ok(None);
    };
    let session_user = session.user_id;
    if now >= session.expires_at || now - session.last_seen_at >= IDLE_TIMEOUT {
        session::Entity::delete_by_id(session.id).exec(db).await?;
        return Ok(None);
    }
    if now - session.last_seen_at >= TOUCH_EVERY {
        let id = session.id;
        let mut active: session::ActiveModel = session.into();
        active.last_seen_at = Set(now);
        active.update(db).await?;
        tracing::trace!(session = id, "session touched");
    }
    Ok(user::Entity::find_by_id(session_user).one(db).await?)
}

/// Ends the session with this raw id (sign-out).
pub async fn delete(db: &impl ConnectionTrait, raw: &str) -> Result<()> {
    session::Entity::delete_many()
        .filter(session::Column::TokenHash.eq(hash_token(raw)))
        .exec(db)
        .await?;
    Ok(())
}
