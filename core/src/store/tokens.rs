//! API tokens: `slc_` + 32 random bytes in base62, shown once, stored as a SHA-256 hash with a
//! short prefix for lookup.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde_json::json;

use crate::crypto::{constant_time_eq, hash_token, random_base62};
use crate::entities::{api_token, user};
use crate::store::{Page, PageRequest, audit};
use crate::tenancy::{Principal, Role, Scope, TenantScope};
use crate::{Error, Result, validate};

/// Every token starts with this.
pub const TOKEN_PREFIX: &str = "slc_";
/// Characters of the token (including `slc_`) kept in clear for lookup and display.
const LOOKUP_LEN: usize = 12;
/// `last_used_at` is written at most this often per token.
const TOUCH_EVERY: Duration = Duration::minutes(1);

/// Creates a token in the scope's org for the calling user (admin). Returns the raw token.
pub async fn create(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    name: &str,
    scopes: &[Scope],
    expires_in_days: Option<u32>,
) -> Result<(api_token::Model, String)> {
    scope.require(Role::Admin)?;
    let name = validate::name("name", name)?;
    if name.len() > 100 {
        return Err(Error::invalid("name", "must be at most 100 characters"));
    }
    if scopes.is_empty() {
        return Err(Error::invalid(
            "scopes",
            "give at least one of read, write, admin",
        ));
    }
    let expires_at = match expires_in_days {
        Some(days @ 1..=3650) => Some(Utc::now() + Duration::days(i64::from(days))),
        Some(_) => {
            return Err(Error::invalid(
                "expires_in_days",
                "must be between 1 and 3650",
            ));
        }
        None => None,
    };
    let mut scopes = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    let raw = format!("{TOKEN_PREFIX}{}", random_base62(32));
    let token = api_token::ActiveModel {
        org_id: Set(scope.org_id()),
        created_by: Set(scope.user_id()),
        name: Set(name.clone()),
        prefix: Set(raw[..LOOKUP_LEN].to_owned()),
        token_hash: Set(hash_token(&raw)),
        scopes: Set(scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(",")),
        expires_at: Set(expires_at),
        last_used_at: Set(None),
        revoked_at: Set(None),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    audit::record(
        db,
        scope,
        "token.create",
        "token",
        token.id,
        json!({"name": name, "scopes": scopes}),
    )
    .await?;
    Ok((token, raw))
}

/// The scopes stored on a token row.
pub fn scopes_of(token: &api_token::Model) -> Vec<Scope> {
    token
        .scopes
        .split(',')
        .filter_map(|s| Scope::parse(s).ok())
        .collect()
}

/// The org's live and revoked tokens, without secrets (admin).
pub async fn list(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    page: &PageRequest,
) -> Result<Page<api_token::Model>> {
    scope.require(Role::Admin)?;
    let limit = page.limit()?;
    let mut query = api_token::Entity::find()
        .filter(api_token::Column::OrgId.eq(scope.org_id()))
        .order_by_asc(api_token::Column::Id)
        .limit(limit + 1);
    if let Some(after) = page.after()? {
        query = query.filter(api_token::Column::Id.gt(after));
    }
    Ok(Page::from_rows(query.all(db).await?, limit, |t| t.id))
}

/// Revokes a token of the scope's org at once (admin).
pub async fn revoke(db: &impl ConnectionTrait, scope: &TenantScope, id: i64) -> Result<()> {
    scope.require(Role::Admin)?;
    let token = api_token::Entity::find_by_id(id)
        .filter(api_token::Column::OrgId.eq(scope.org_id()))
        .one(db)
        .await?
        .ok_or(Error::NotFound)?;
    if token.revoked_at.is_none() {
        let name = token.name.clone();
        let mut active: api_token::ActiveModel = token.into();
        active.revoked_at = Set(Some(Utc::now()));
        active.update(db).await?;
        audit::record(
            db,
            scope,
            "token.revoke",
            "token",
            id,
            json!({"name": name}),
        )
        .await?;
    }
    Ok(())
}

/// The principal for a raw token, if it is live. `email`, when given (HTTP Basic), must be
/// the creator's.
pub async fn authenticate(
    db: &impl ConnectionTrait,
    raw: &str,
    email: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<Principal>> {
    let well_formed = raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !raw.starts_with(TOKEN_PREFIX) || raw.len() < LOOKUP_LEN || !well_formed {
        return Ok(None);
    }
    // One query: the token and its creator.
    let Some((token, Some(user))) = api_token::Entity::find()
        .filter(api_token::Column::Prefix.eq(&raw[..LOOKUP_LEN]))
        .find_also_related(user::Entity)
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let live = token.revoked_at.is_none() && token.expires_at.is_none_or(|at| now < at);
    if !constant_time_eq(&token.token_hash, &hash_token(raw)) || !live {
        return Ok(None);
    }
    if email.is_some_and(|e| !e.eq_ignore_ascii_case(&user.email)) {
        return Ok(None);
    }
    let token = if token.last_used_at.is_none_or(|at| now - at >= TOUCH_EVERY) {
        let mut active: api_token::ActiveModel = token.into();
        active.last_used_at = Set(Some(now));
        active.update(db).await?
    } else {
        token
    };
    let scopes = scopes_of(&token);
    Ok(Some(Principal::Token {
        user,
        token,
        scopes,
    }))
}
