//! People: local accounts and OAuth identities.

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

use crate::entities::{identity, user};
use crate::store::conflict_on_unique;
use crate::{Error, Result};

/// Creates a user; `password_hash` is None for OAuth-only accounts.
pub async fn create(
    db: &impl ConnectionTrait,
    email: &str,
    name: &str,
    password_hash: Option<String>,
    email_verified: bool,
) -> Result<user::Model> {
    let now = Utc::now();
    user::ActiveModel {
        email: Set(email.to_owned()),
        name: Set(name.to_owned()),
        password_hash: Set(password_hash),
        email_verified: Set(email_verified),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(|e| conflict_on_unique(e, "an account with this email already exists"))
}

pub async fn find_by_email(db: &impl ConnectionTrait, email: &str) -> Result<Option<user::Model>> {
    Ok(user::Entity::find()
        .filter(user::Column::Email.eq(email))
        .one(db)
        .await?)
}

pub async fn get(db: &impl ConnectionTrait, id: i64) -> Result<user::Model> {
    user::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(Error::NotFound)
}

/// The user linked to `provider`'s `subject`, if any.
pub async fn find_by_identity(
    db: &impl ConnectionTrait,
    provider: &str,
    subject: &str,
) -> Result<Option<user::Model>> {
    let Some(link) = identity::Entity::find()
        .filter(identity::Column::Provider.eq(provider))
        .filter(identity::Column::Subject.eq(subject))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(get(db, link.user_id).await?))
}

/// Links an OAuth identity to a user.
pub async fn link_identity(
    db: &impl ConnectionTrait,
    user_id: i64,
    provider: &str,
    subject: &str,
    email: Option<&str>,
) -> Result<()> {
    identity::ActiveModel {
        user_id: Set(user_id),
        provider: Set(provider.to_owned()),
        subject: Set(subject.to_owned()),
        email: Set(email.map(str::to_owned)),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(|e| conflict_on_unique(e, "this identity is already linked"))?;
    Ok(())
}

/// What an identity provider says about the person signing in.
#[derive(Debug, Clone)]
pub struct ExternalIdentity {
    pub provider: String,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
}

/// The user for an external identity: the one already linked; else the account with the same
/// email, linked only when the provider verified that email; else a new account. Run it in a
/// transaction.
pub async fn sign_in_with_identity(
    db: &impl ConnectionTrait,
    identity: &ExternalIdentity,
) -> Result<user::Model> {
    if let Some(user) = find_by_identity(db, &identity.provider, &identity.subject).await? {
        return Ok(user);
    }
    let email = identity
        .email
        .as_deref()
        .map(crate::validate::email)
        .transpose()
        .map_err(|_| {
            Error::invalid(
                "email",
                "the provider sent an email address Sluice cannot use",
            )
        })?
        .ok_or_else(|| {
            Error::invalid(
                "email",
                "the provider did not share an email address; allow the email scope",
            )
        })?;
    let user = match find_by_email(db, &email).await? {
        Some(existing) if identity.email_verified => existing,
        Some(_) => {
            return Err(Error::Conflict(format!(
                "an account with {email} exists, and {} has not verified that address, so they cannot be linked; \
                 sign in with your password instead",
                identity.provider
            )));
        }
        None => {
            let name = identity
                .name
                .as_deref()
                .filter(|n| !n.trim().is_empty())
                .unwrap_or(&email);
            let name = crate::validate::name("name", name)?;
            create(db, &email, &name, None, identity.email_verified).await?
        }
    };
    link_identity(
        db,
        user.id,
        &identity.provider,
        &identity.subject,
        Some(&email),
    )
    .await?;
    Ok(user)
}
