//! The one place where tenancy is decided: a principal plus an org slug become a
//! [`TenantScope`], and every org-owned row is read and written through one.

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};

use crate::entities::{api_token, membership, org, user};
use crate::{Error, Result};

/// A member's role in an org, ordered from least to most powerful.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Developer,
    Admin,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Developer => "developer",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    pub fn parse(value: &str) -> Result<Role> {
        match value {
            "viewer" => Ok(Role::Viewer),
            "developer" => Ok(Role::Developer),
            "admin" => Ok(Role::Admin),
            "owner" => Ok(Role::Owner),
            _ => Err(Error::invalid(
                "role",
                "must be one of owner, admin, developer, viewer",
            )),
        }
    }
}

/// What an API token may do, at most.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// GET requests.
    Read,
    /// Also projects, runs and secrets.
    Write,
    /// Also members and tokens.
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(value: &str) -> Result<Scope> {
        match value {
            "read" => Ok(Scope::Read),
            "write" => Ok(Scope::Write),
            "admin" => Ok(Scope::Admin),
            _ => Err(Error::invalid(
                "scopes",
                "each scope must be read, write or admin",
            )),
        }
    }

    /// The most a token with this scope may do, as a role.
    pub fn ceiling(self) -> Role {
        match self {
            Scope::Read => Role::Viewer,
            Scope::Write => Role::Developer,
            Scope::Admin => Role::Admin,
        }
    }
}

/// Who is calling: a signed-in person, or an API token acting for its creator.
#[derive(Debug, Clone)]
pub enum Principal {
    User(user::Model),
    Token {
        user: user::Model,
        token: api_token::Model,
        scopes: Vec<Scope>,
    },
}

impl Principal {
    pub fn user(&self) -> &user::Model {
        match self {
            Principal::User(user) | Principal::Token { user, .. } => user,
        }
    }

    pub fn token_id(&self) -> Option<i64> {
        match self {
            Principal::Token { token, .. } => Some(token.id),
            Principal::User(_) => None,
        }
    }

    /// The org a token belongs to; None for a person.
    pub fn token_org_id(&self) -> Option<i64> {
        match self {
            Principal::Token { token, .. } => Some(token.org_id),
            Principal::User(_) => None,
        }
    }

    /// The most this principal may do: a token's scopes cap its creator's role.
    pub fn ceiling(&self) -> Role {
        match self {
            Principal::User(_) => Role::Owner,
            Principal::Token { scopes, .. } => scopes
                .iter()
                .map(|s| s.ceiling())
                .max()
                .unwrap_or(Role::Viewer),
        }
    }
}

/// An org as seen by one principal, with the role it effectively holds there. Only
/// [`TenantScope::resolve`] makes one, so holding it proves membership.
#[derive(Debug, Clone)]
pub struct TenantScope {
    org: org::Model,
    role: Role,
    user_id: i64,
    token_id: Option<i64>,
}

impl TenantScope {
    /// The org `slug` for `principal`. Absent orgs, orgs the user is not a member of and orgs
    /// other than a token's own are all [`Error::NotFound`], so foreign orgs cannot be probed.
    pub async fn resolve(
        db: &impl ConnectionTrait,
        principal: &Principal,
        slug: &str,
    ) -> Result<TenantScope> {
        // A slug that breaks the rules cannot exist: no need to ask the database.
        if crate::validate::slug("org", slug).is_err() {
            return Err(Error::NotFound);
        }
        // One query: the org and the caller's membership in it.
        let found = org::Entity::find()
            .filter(org::Column::Slug.eq(slug))
            .find_also_related(membership::Entity)
            .filter(membership::Column::UserId.eq(principal.user().id))
            .one(db)
            .await?;
        let Some((org, Some(member))) = found else {
            return Err(Error::NotFound);
        };
        let user_id = principal.user().id;
        if let Principal::Token { token, .. } = principal
            && token.org_id != org.id
        {
            return Err(Error::NotFound);
        }
        let role = Role::parse(&member.role)?.min(principal.ceiling());
        Ok(TenantScope {
            org,
            role,
            user_id,
            token_id: principal.token_id(),
        })
    }

    pub fn org(&self) -> &org::Model {
        &self.org
    }

    pub fn org_id(&self) -> i64 {
        self.org.id
    }

    /// The effective role: the member's role, capped by a token's scopes.
    pub fn role(&self) -> Role {
        self.role
    }

    pub fn user_id(&self) -> i64 {
        self.user_id
    }

    pub fn token_id(&self) -> Option<i64> {
        self.token_id
    }

    /// Fails with [`Error::Forbidden`] unless the effective role is at least `needed`.
    pub fn require(&self, needed: Role) -> Result<()> {
        if self.role >= needed {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "this needs the {} role (or a token scope that grants it); you act as {}",
                needed.as_str(),
                self.role.as_str()
            )))
        }
    }
}
